//! Safety of a view service (the course's 2015 lab 2A rules, reference `6824-old-labs.md`
//! §2.2), over the sequence of states it went through: each view has a primary; the primary
//! of view n + 1 was the primary or the backup of view n; the backup is never the primary;
//! and the view never moves on from a view its primary had not acknowledged.

/// One observed state of a view service: the view, and the highest view number its primary
/// ever acknowledged (an acknowledgement and the change it permits may happen in one step).
/// Servers are plain numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewState {
    /// The view's number (0: no view yet).
    pub viewnum: u64,
    /// The primary, if any.
    pub primary: Option<u16>,
    /// The backup, if any.
    pub backup: Option<u16>,
    /// The highest view number its primary acknowledged so far.
    pub acked_viewnum: u64,
}

/// Checks each new state against the last one; feed it every state, in order.
#[derive(Clone, Debug, Default)]
pub struct ViewChecker {
    last: Option<ViewState>,
    /// States checked so far.
    pub steps: u64,
}

impl ViewChecker {
    /// Checks `next` after the previous state; servers are named `s<id>`.
    ///
    /// # Errors
    /// One line naming the rule broken and both views.
    pub fn step(&mut self, next: ViewState) -> Result<(), String> {
        self.step_named(next, &|s| format!("s{s}"))
    }

    /// [`ViewChecker::step`], naming server `id` as `name(id)` (the run's node names).
    ///
    /// # Errors
    /// One line naming the rule broken and both views.
    pub fn step_named(&mut self, next: ViewState, name: &dyn Fn(u16) -> String) -> Result<(), String> {
        let show = |v: &ViewState| show(v, name);
        self.steps += 1;
        let prev = self.last.replace(next);
        if next.viewnum > 0 && next.primary.is_none() {
            return Err(format!("view {} has no primary", next.viewnum));
        }
        if next.primary.is_some() && next.primary == next.backup {
            return Err(format!("view {}: the backup is the primary", next.viewnum));
        }
        let Some(prev) = prev else { return Ok(()) };
        if next.viewnum == prev.viewnum {
            if (next.primary, next.backup) != (prev.primary, prev.backup) {
                return Err(format!("view {} changed without a new number", next.viewnum));
            }
            if next.acked_viewnum < prev.acked_viewnum {
                return Err(format!("view {} lost its acknowledgement", next.viewnum));
            }
            return Ok(());
        }
        if next.viewnum != prev.viewnum + 1 {
            return Err(format!("view {} followed view {}", next.viewnum, prev.viewnum));
        }
        if prev.viewnum > 0 && next.acked_viewnum < prev.viewnum {
            return Err(format!(
                "view {} ({}) replaced view {} ({}) which its primary never acknowledged",
                next.viewnum,
                show(&next),
                prev.viewnum,
                show(&prev)
            ));
        }
        let p = next.primary;
        if prev.viewnum > 0 && p != prev.primary && p != prev.backup {
            return Err(format!(
                "the primary of view {} ({}) was neither primary nor backup of view {} ({})",
                next.viewnum,
                show(&next),
                prev.viewnum,
                show(&prev)
            ));
        }
        Ok(())
    }
}

fn show(v: &ViewState, name: &dyn Fn(u16) -> String) -> String {
    let name = |s: Option<u16>| s.map_or("-".to_string(), name);
    format!("primary {}, backup {}", name(v.primary), name(v.backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(viewnum: u64, p: Option<u16>, b: Option<u16>, acked_viewnum: u64) -> ViewState {
        ViewState { viewnum, primary: p, backup: b, acked_viewnum }
    }

    #[test]
    fn accepts_a_legal_sequence() {
        let mut c = ViewChecker::default();
        for s in [
            st(0, None, None, 0),
            st(1, Some(1), None, 0),
            st(1, Some(1), None, 1),
            st(2, Some(1), Some(2), 1),
            // The acknowledgement of view 2 and the change it permits, in one step.
            st(3, Some(2), Some(3), 2),
        ] {
            c.step(s).unwrap();
        }
    }

    #[test]
    fn a_violation_names_servers_as_told() {
        let mut c = ViewChecker::default();
        c.step(st(1, Some(1), None, 0)).unwrap();
        let e = c.step_named(st(2, Some(1), Some(3), 0), &|id| format!("ck{id}")).unwrap_err();
        assert!(e.contains("(primary ck1, backup ck3)") && e.contains("(primary ck1, backup -)"), "{e}");
        let mut c = ViewChecker::default();
        c.step(st(1, Some(1), None, 0)).unwrap();
        assert!(c.step(st(2, Some(1), Some(3), 0)).unwrap_err().contains("(primary s1, backup s3)"));
    }

    #[test]
    fn refuses_each_broken_rule() {
        let bad = [
            (st(1, Some(1), None, 0), st(2, Some(1), Some(2), 0), "never acknowledged"),
            (st(2, Some(1), Some(2), 2), st(2, Some(1), Some(2), 1), "lost its acknowledgement"),
            (st(1, Some(1), None, 1), st(2, Some(3), None, 1), "neither primary nor backup"),
            (st(1, Some(1), None, 1), st(3, Some(1), Some(2), 1), "followed"),
            (st(1, Some(1), None, 1), st(1, Some(1), Some(2), 1), "without a new number"),
            (st(1, Some(1), None, 1), st(2, Some(1), Some(1), 1), "backup is the primary"),
            (st(1, Some(1), None, 1), st(2, None, Some(1), 1), "no primary"),
        ];
        for (a, b, why) in bad {
            let mut c = ViewChecker::default();
            c.step(a).unwrap();
            let e = c.step(b).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
    }
}
