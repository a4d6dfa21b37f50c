//! The view service of the course's 2015 lab 2A (reference `6824-old-labs.md` §2), as a pure
//! core: it decides which server is primary and which is backup from the pings it receives
//! and the passage of time, under the acknowledgement rule.
//!
//! Rules (reference §2.2): a server that has not pinged for `DEAD_PINGS × PING_INTERVAL_MS` is
//! dead; a primary or backup that pings with view number 0 has restarted and is treated as
//! dead (when the view may change at that moment; it keeps pinging 0 until it learns a view); the view may move from `n` to `n + 1` only after the primary of `n` pinged with `n`
//! (acknowledged it); the primary of `n + 1` is the primary or the backup of `n` (any server
//! for the first view); an idle server that has only pinged with 0 never becomes primary
//! directly, only backup.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A server's identity (the simulated node's number).
pub type ServerId = u16;

/// The course's `PingInterval`: servers and the service tick every 100 ms.
pub const PING_INTERVAL_MS: u64 = 100;
/// The course's `DeadPings`: a server is dead after this many missed ping intervals.
pub const DEAD_PINGS: u64 = 5;

/// The course's `View`: `None` where the Go code has "".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The view's number (0: no view yet).
    pub viewnum: u64,
    /// The primary, if any.
    pub primary: Option<ServerId>,
    /// The backup, if any.
    pub backup: Option<ServerId>,
}

impl View {
    /// Whether `server` is this view's primary or backup.
    pub fn has(&self, server: ServerId) -> bool {
        self.primary == Some(server) || self.backup == Some(server)
    }
}

/// Requests to the view service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VsRequest {
    /// `Ping(me, viewnum)`: a heartbeat that also acknowledges `viewnum` (0: just started).
    Ping {
        /// The pinging server.
        me: ServerId,
        /// The view it acknowledges (0: it just started).
        viewnum: u64,
    },
    /// `Get()`: the current view, without volunteering the caller.
    Get,
}

/// Planted bugs of the view service (switched on by scenarios).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsBugs {
    /// `vs-no-ack`: moves to a new view without the primary's acknowledgement of the current.
    pub advance_without_ack: bool,
}

/// What a checker sees after each step: the view, and the highest view number its primary
/// acknowledged (an acknowledgement and the change it permits can come in one ping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VsObservation {
    /// The current view.
    pub view: View,
    /// The highest view number its primary acknowledged.
    pub acked_viewnum: u64,
}

/// The view service's state.
#[derive(Clone, Debug, Default)]
pub struct ViewService {
    view: View,
    /// The primary of `view` has pinged with `view.viewnum`.
    acked: bool,
    /// The highest view number acknowledged by its primary.
    acked_viewnum: u64,
    /// Last ping time of every server heard from, in ms (dead servers are dropped).
    last_ping_ms: BTreeMap<ServerId, u64>,
    /// The member that announced a restart in the ping being handled (cleared after it).
    restarted: Option<ServerId>,
    bugs: VsBugs,
}

impl ViewService {
    /// A view service with no view yet, with planted bugs `bugs`.
    pub fn new(bugs: VsBugs) -> ViewService {
        ViewService { bugs, ..ViewService::default() }
    }

    /// The current view (the course's `Get`).
    pub fn view(&self) -> View {
        self.view
    }

    /// The view and its acknowledgement, for checkers.
    pub fn observe(&self) -> VsObservation {
        VsObservation { view: self.view, acked_viewnum: self.acked_viewnum }
    }

    fn may_change(&self) -> bool {
        self.acked || self.bugs.advance_without_ack
    }

    /// `Ping(me, viewnum)` at `now_ms`; returns the view the server gets back.
    pub fn on_ping(&mut self, me: ServerId, viewnum: u64, now_ms: u64) -> View {
        self.last_ping_ms.insert(me, now_ms);
        if self.view.viewnum == 0 {
            // The first view: any server may become primary.
            self.view = View { viewnum: 1, primary: Some(me), backup: None };
            self.acked = false;
            return self.step();
        }
        if self.view.primary == Some(me) && viewnum == self.view.viewnum {
            self.acked = true;
            self.acked_viewnum = viewnum;
        }
        if viewnum == 0 && self.view.has(me) {
            self.restarted = Some(me);
        }
        let view = self.step();
        // A restart counts only if the view may change as it is announced: a server that
        // keeps pinging 0 announces it again, and the course's Test1 pings a fresh backup
        // with 0 before the primary acknowledged its view.
        self.restarted = None;
        view
    }

    /// The ping interval's tick at `now_ms`: forget servers that missed `DEAD_PINGS` pings,
    /// then change the view if it must and may.
    pub fn tick(&mut self, now_ms: u64) {
        let dead_after = DEAD_PINGS * PING_INTERVAL_MS;
        self.last_ping_ms.retain(|_, &mut t| now_ms.saturating_sub(t) < dead_after);
        self.step();
    }

    fn alive(&self, s: ServerId) -> bool {
        self.last_ping_ms.contains_key(&s) && self.restarted != Some(s)
    }

    /// A live server in neither role of `view` (the current one, so no member leaving now),
    /// the lowest id first (deterministic).
    fn idle_for(&self, view: &View) -> Option<ServerId> {
        self.last_ping_ms.keys().copied().find(|&s| !view.has(s) && self.restarted != Some(s))
    }

    /// Applies at most one view change, then returns the view.
    fn step(&mut self) -> View {
        if !self.may_change() {
            return self.view;
        }
        let cur = self.view;
        let mut next = cur;
        match (cur.primary, cur.backup) {
            (Some(p), b) if !self.alive(p) => match b {
                // Only a live backup may succeed a primary; without one the service is stuck.
                Some(b) if self.alive(b) => next = View { primary: Some(b), backup: None, ..cur },
                _ => return cur,
            },
            (Some(p), Some(b)) if !self.alive(b) => next = View { primary: Some(p), backup: None, ..cur },
            _ => {}
        }
        if next.backup.is_none() {
            // Not a member leaving now: a restarted one needs a view change of its own to
            // come back, so that the primary hands it the state again.
            next.backup = self.idle_for(&cur);
        }
        if (next.primary, next.backup) != (cur.primary, cur.backup) {
            let Some(p) = next.primary else { unreachable!("a view always has a primary") };
            assert!(cur.has(p), "the primary of view n+1 was primary or backup of view n");
            assert!(next.backup != next.primary, "the backup is not the primary");
            self.view = View { viewnum: cur.viewnum + 1, ..next };
            self.acked = false;
        }
        self.view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(viewnum: u64, p: Option<ServerId>, b: Option<ServerId>) -> View {
        View { viewnum, primary: p, backup: b }
    }

    #[test]
    fn first_primary_then_backup_after_ack() {
        let mut vs = ViewService::default();
        assert_eq!(vs.on_ping(1, 0, 0), v(1, Some(1), None));
        // 2 pings before 1 acknowledged view 1: no change yet.
        assert_eq!(vs.on_ping(2, 0, 10), v(1, Some(1), None));
        assert_eq!(vs.on_ping(1, 1, 20), v(2, Some(1), Some(2)));
        assert_eq!(vs.observe().acked_viewnum, 1);
    }

    #[test]
    fn backup_takes_over_a_dead_primary_only_after_the_ack() {
        let mut vs = ViewService::default();
        vs.on_ping(1, 0, 0);
        vs.on_ping(1, 1, 0);
        vs.on_ping(2, 0, 0);
        assert_eq!(vs.view(), v(2, Some(1), Some(2)));
        // 1 dies without acknowledging view 2: stuck however long 2 keeps pinging.
        for t in (100..2000).step_by(100) {
            vs.on_ping(2, 2, t);
            vs.tick(t);
        }
        assert_eq!(vs.view(), v(2, Some(1), Some(2)), "no ack, no change");
        let mut vs2 = ViewService::default();
        vs2.on_ping(1, 0, 0);
        vs2.on_ping(1, 1, 0);
        vs2.on_ping(2, 0, 0);
        vs2.on_ping(1, 2, 0);
        for t in (100..=600).step_by(100) {
            vs2.on_ping(2, 2, t);
            vs2.tick(t);
        }
        assert_eq!(vs2.view(), v(3, Some(2), None));
    }

    #[test]
    fn a_restarted_primary_is_treated_as_dead_and_may_return_as_backup() {
        let mut vs = ViewService::default();
        vs.on_ping(1, 0, 0);
        vs.on_ping(1, 1, 0);
        vs.on_ping(2, 0, 0);
        vs.on_ping(1, 2, 0);
        // 1 restarts: view 3 has 2 as primary; once 2 acknowledges it, 1 (pinging, idle)
        // becomes backup.
        assert_eq!(vs.on_ping(1, 0, 50), v(3, Some(2), None));
        assert_eq!(vs.on_ping(1, 0, 60), v(3, Some(2), None), "no ack yet");
        assert_eq!(vs.on_ping(2, 3, 70), v(4, Some(2), Some(1)));
    }

    #[test]
    fn a_restarted_backup_leaves_and_comes_back_in_a_new_view() {
        let mut vs = ViewService::default();
        vs.on_ping(1, 0, 0);
        vs.on_ping(1, 1, 0);
        vs.on_ping(2, 0, 0);
        vs.on_ping(1, 2, 0);
        assert_eq!(vs.on_ping(2, 0, 10), v(3, Some(1), None), "the restart removes it");
        assert_eq!(vs.on_ping(1, 3, 20), v(4, Some(1), Some(2)), "then it returns, to be given the state");
    }

    #[test]
    fn an_idle_server_never_becomes_primary() {
        let mut vs = ViewService::default();
        vs.on_ping(1, 0, 0);
        vs.on_ping(1, 1, 0);
        // Primary 1 with no backup dies; 3 only ever pings 0.
        for t in (100..3000).step_by(100) {
            vs.on_ping(3, 0, t);
            vs.tick(t);
            assert_ne!(vs.view().primary, Some(3));
        }
    }

    #[test]
    fn the_planted_bug_advances_without_the_ack() {
        let mut vs = ViewService::new(VsBugs { advance_without_ack: true });
        vs.on_ping(1, 0, 0);
        vs.on_ping(2, 0, 0);
        assert!(vs.observe().acked_viewnum == 0 && vs.view().viewnum == 2, "moved past an unacknowledged view");
    }
}
