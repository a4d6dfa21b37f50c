//! Sharding checks over plain data: whether a shard controller's configurations are balanced
//! and moved no more shards than needed ([`check_rebalance`], [`check_minimal_again_join`],
//! [`check_minimal_again_leave`]), and whether the sharded service's groups hand shards over
//! safely ([`ownership::OwnershipChecker`]).
//!
//! A configuration is seen as a shard array (`shards[s]` = the gid serving shard `s`, 0 = none)
//! plus the set of groups present; any number of shards works (the course uses 10).
//!
//! # Why the course's minimal-transfer checks are not enough
//! TestBasic and TestMulti ("Minimal transfers after joins/leaves/multijoins/multileaves")
//! compare two configurations only for gids 1..10, after joining and leaving gids 11..15: none
//! of gids 1..10 exist at that point, so the comparison never looks at a shard and cannot fail.
//! The 2024 TestMinimalAgain is a real but narrow check (one join of a third group, one leave),
//! ported as [`check_minimal_again_join`] / [`check_minimal_again_leave`]. [`check_rebalance`]
//! goes beyond both: after any Join or Leave, the number of shards that changed group must
//! equal [`min_moves`], the fewest any balanced assignment needs, computed here by a closed
//! form rather than by the controller's method.

pub mod ownership;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Which property a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Property {
    /// Shards spread as evenly as possible: every shard on a present group (all on gid 0 when
    /// there are none), max − min ≤ 1 shards per group.
    Balance,
    /// A Join or Leave moved exactly the fewest shards any balanced assignment needs.
    MinimalTransfer,
    /// The course's TestMinimalAgain: on a join shards move only to the joined groups, on a
    /// leave only away from the leaving groups, and no more than a bound.
    MinimalAgain,
    /// For every shard and configuration, at most one group accepts operations on it, and only
    /// the group that configuration assigns it to.
    SingleOwner,
    /// A group serves a shard in a configuration only once it holds that shard's data.
    ServeAfterArrival,
    /// Data is handed over whole: the previous owner keeps a shard frozen until the new owner
    /// holds it, and a new owner installs only data its previous owner froze.
    Handoff,
    /// Each replica takes configurations one at a time, in order.
    ConfigOrder,
    /// Everyone agrees on what configuration `n` is.
    ConfigAgreement,
}

impl Property {
    /// The checker's name as printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Property::Balance => "balance",
            Property::MinimalTransfer => "minimal-transfer",
            Property::MinimalAgain => "minimal-again",
            Property::SingleOwner => "single-owner",
            Property::ServeAfterArrival => "serve-after-arrival",
            Property::Handoff => "handoff",
            Property::ConfigOrder => "config-order",
            Property::ConfigAgreement => "config-agreement",
        }
    }

    /// Every property, in the order of this enum.
    pub fn all() -> &'static [Property] {
        &[
            Property::Balance,
            Property::MinimalTransfer,
            Property::MinimalAgain,
            Property::SingleOwner,
            Property::ServeAfterArrival,
            Property::Handoff,
            Property::ConfigOrder,
            Property::ConfigAgreement,
        ]
    }
}

/// A broken property, with a one-line explanation naming shards, groups and configurations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property broken.
    pub property: Property,
    /// One line naming the shards, groups and configurations involved.
    pub message: String,
}

impl Violation {
    /// The checker's name, e.g. `"minimal-transfer"`.
    pub fn checker(&self) -> &'static str {
        self.property.name()
    }

    pub(crate) fn new(property: Property, message: String) -> Violation {
        Violation { property, message }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property.name(), self.message)
    }
}

impl std::error::Error for Violation {}

/// Number of shards each group in `groups` serves in `shards` (groups serving none count 0).
fn counts(shards: &[u64], groups: &BTreeSet<u64>) -> BTreeMap<u64, usize> {
    let mut counts: BTreeMap<u64, usize> = groups.iter().map(|&g| (g, 0)).collect();
    for gid in shards {
        if let Some(c) = counts.get_mut(gid) {
            *c += 1;
        }
    }
    counts
}

/// Number of shards whose group differs between `prev` and `next` (equal lengths).
///
/// # Panics
/// If `prev` and `next` differ in length.
pub fn moves(prev: &[u64], next: &[u64]) -> usize {
    assert_eq!(prev.len(), next.len(), "configurations of different shard counts");
    prev.iter().zip(next).filter(|(a, b)| a != b).count()
}

/// Balance as the course's `check()` judges it: with groups, every shard is on one of them
/// and max − min ≤ 1 shards per group (a group with none counts 0); without groups, every
/// shard is on gid 0.
///
/// # Errors
/// A [`Violation`] of balance naming the first shard off the groups, or the two group sizes that differ by more
/// than one.
pub fn check_balance(shards: &[u64], groups: &BTreeSet<u64>) -> Result<(), Violation> {
    if groups.is_empty() {
        return match shards.iter().position(|&g| g != 0) {
            Some(s) => {
                Err(Violation::new(Property::Balance, format!("no groups, yet shard {s} is on group {}", shards[s])))
            }
            None => Ok(()),
        };
    }
    if let Some(s) = shards.iter().position(|g| !groups.contains(g)) {
        let what =
            if shards[s] == 0 { "unassigned (gid 0)".to_string() } else { format!("on absent group {}", shards[s]) };
        return Err(Violation::new(Property::Balance, format!("shard {s} is {what} while groups {groups:?} exist")));
    }
    let counts = counts(shards, groups);
    let (max_gid, max) = counts.iter().max_by_key(|(g, c)| (**c, std::cmp::Reverse(**g))).expect("groups exist");
    let (min_gid, min) = counts.iter().min_by_key(|(g, c)| (**c, **g)).expect("groups exist");
    if max - min > 1 {
        return Err(Violation::new(
            Property::Balance,
            format!("group {max_gid} serves {max} shards but group {min_gid} serves {min}: {shards:?}"),
        ));
    }
    Ok(())
}

/// The fewest shards any balanced assignment of `groups` must move away from `prev`.
///
/// Closed form. With `n` groups, `q = N / n`, `r = N % n`, a balanced assignment gives
/// exactly `r` groups `q + 1` shards and the rest `q` (max − min ≤ 1 and the sum is `N`
/// force it). A group holding `c` shards now and given target `t` keeps at most `min(c, t)`
/// of them, and that many can always be kept (the free shards fill the remaining places, as
/// the targets sum to `N`). Since `min(c, q + 1) = min(c, q) + [c > q]`, the most shards kept is
/// `Σ min(c_g, q) + min(r, #{g : c_g > q})` (give the larger targets to groups above `q`),
/// and the fewest moved is `N` minus that. Without groups every shard must go to gid 0.
pub fn min_moves(prev: &[u64], groups: &BTreeSet<u64>) -> usize {
    let n_shards = prev.len();
    if groups.is_empty() {
        return prev.iter().filter(|&&g| g != 0).count();
    }
    let (q, r) = (n_shards / groups.len(), n_shards % groups.len());
    let held = counts(prev, groups);
    let kept = held.values().map(|&c| c.min(q)).sum::<usize>() + r.min(held.values().filter(|&&c| c > q).count());
    n_shards - kept
}

/// After a Join or Leave: `next` is balanced over `next_groups` and moved exactly
/// [`min_moves`] shards away from `prev`.
///
/// # Errors
/// A [`Violation`]: balance as [`check_balance`]; minimal-transfer when more shards moved than [`min_moves`].
pub fn check_rebalance(prev: &[u64], next: &[u64], next_groups: &BTreeSet<u64>) -> Result<(), Violation> {
    check_balance(next, next_groups)?;
    let (moved, least) = (moves(prev, next), min_moves(prev, next_groups));
    if moved != least {
        return Err(Violation::new(
            Property::MinimalTransfer,
            format!("{moved} shards changed group where {least} would do: {prev:?} -> {next:?}"),
        ));
    }
    Ok(())
}

/// The course's TestMinimalAgain check after a Join of `joined`: every shard that changed
/// group now belongs to a joined group, and at most `max_moved` changed (the course joins a
/// third group to two and allows `NShards / 3 + 1`).
///
/// Minimality implies the first part only when `prev` was balanced (after a Move it need
/// not be: an old group under its target may rightly gain), which is how the course uses it.
pub fn check_minimal_again_join(
    prev: &[u64],
    next: &[u64],
    joined: &BTreeSet<u64>,
    max_moved: usize,
) -> Result<(), Violation> {
    for (s, (a, b)) in prev.iter().zip(next).enumerate() {
        if a != b && !joined.contains(b) {
            return Err(Violation::new(
                Property::MinimalAgain,
                format!("on joining {joined:?}, shard {s} moved from group {a} to group {b}, which did not join"),
            ));
        }
    }
    check_moved_at_most(prev, next, max_moved)
}

/// The course's TestMinimalAgain check after a Leave of `left`: every shard that changed
/// group was on a leaving group, and at most `max_moved` changed.
pub fn check_minimal_again_leave(
    prev: &[u64],
    next: &[u64],
    left: &BTreeSet<u64>,
    max_moved: usize,
) -> Result<(), Violation> {
    for (s, (a, b)) in prev.iter().zip(next).enumerate() {
        if a != b && !left.contains(a) {
            return Err(Violation::new(
                Property::MinimalAgain,
                format!("on {left:?} leaving, shard {s} moved from staying group {a} to group {b}"),
            ));
        }
    }
    check_moved_at_most(prev, next, max_moved)
}

fn check_moved_at_most(prev: &[u64], next: &[u64], max_moved: usize) -> Result<(), Violation> {
    let moved = moves(prev, next);
    if moved > max_moved {
        return Err(Violation::new(
            Property::MinimalAgain,
            format!("{moved} shards changed group, more than {max_moved}: {prev:?} -> {next:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(g: &[u64]) -> BTreeSet<u64> {
        g.iter().copied().collect()
    }

    #[test]
    fn balance_accepts_even_spreads_and_rejects_the_rest() {
        assert!(check_balance(&[0; 10], &set(&[])).is_ok());
        assert!(check_balance(&[1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2])).is_ok());
        assert!(check_balance(&[1, 1, 1, 1, 2, 2, 2, 3, 3, 3], &set(&[1, 2, 3])).is_ok());
        // Eleven groups, ten shards: one group has none, which still counts as 0.
        assert!(check_balance(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &set(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])).is_ok());

        let unbalanced = check_balance(&[1, 1, 1, 1, 1, 1, 2, 2, 2, 2], &set(&[1, 2])).unwrap_err();
        assert_eq!(unbalanced.property, Property::Balance);
        assert!(unbalanced.message.contains("group 1 serves 6"), "{unbalanced}");
        let idle = check_balance(&[1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2, 3])).unwrap_err();
        assert!(idle.message.contains("group 3 serves 0"), "{idle}");
        let unassigned = check_balance(&[0, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2])).unwrap_err();
        assert!(unassigned.message.contains("unassigned"), "{unassigned}");
        let absent = check_balance(&[7, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2])).unwrap_err();
        assert!(absent.message.contains("absent group 7"), "{absent}");
        assert!(check_balance(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], &set(&[])).is_err());
    }

    #[test]
    fn a_balanced_but_wasteful_assignment_fails_minimal_transfer() {
        let prev = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2];
        // Swapping every shard is balanced, and moves 10 where 0 would do.
        let swapped = [2, 2, 2, 2, 2, 1, 1, 1, 1, 1];
        let v = check_rebalance(&prev, &swapped, &set(&[1, 2])).unwrap_err();
        assert_eq!(v.property, Property::MinimalTransfer);
        assert!(v.message.starts_with("10 shards changed group where 0 would do"), "{v}");
        // Joining 3: 3 shards must move; moving 4 (one extra between 1 and 2) is balanced but wasteful.
        let good = [3, 1, 1, 1, 3, 3, 2, 2, 2, 2];
        assert!(check_rebalance(&prev, &good, &set(&[1, 2, 3])).is_ok());
        let wasteful = [3, 1, 1, 1, 2, 3, 3, 2, 2, 1];
        assert!(check_balance(&wasteful, &set(&[1, 2, 3])).is_ok());
        let v = check_rebalance(&prev, &wasteful, &set(&[1, 2, 3])).unwrap_err();
        assert_eq!(v.property, Property::MinimalTransfer, "{v}");
        // An unbalanced result fails on balance first.
        let v = check_rebalance(&prev, &[3, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2, 3])).unwrap_err();
        assert_eq!(v.property, Property::Balance);
    }

    #[test]
    fn min_moves_worked_examples() {
        // From configuration 0, every shard must move to the first group.
        assert_eq!(min_moves(&[0; 10], &set(&[1])), 10);
        // Balanced already: nothing.
        assert_eq!(min_moves(&[1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2])), 0);
        // Join a third group to 5/5: q = 3, r = 1; both hold 5 > 3 but only one can keep 4.
        assert_eq!(min_moves(&[1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[1, 2, 3])), 3);
        // After Moves made it 8/2, joining a third still costs only 4 (1 keeps 4, 2 keeps 2).
        assert_eq!(min_moves(&[1, 1, 1, 1, 1, 1, 1, 1, 2, 2], &set(&[1, 2, 3])), 4);
        // Everyone leaves.
        assert_eq!(min_moves(&[1, 1, 1, 1, 1, 2, 2, 2, 2, 2], &set(&[])), 10);
        assert_eq!(min_moves(&[0; 10], &set(&[])), 0);
    }

    #[test]
    fn minimal_again_like_the_course() {
        // Join 1, join 2 → c1; join 3 → c2; leave 1 → c3; bound NShards / 3 + 1 = 4.
        let c1 = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2];
        let c2 = [3, 1, 1, 1, 3, 3, 2, 2, 2, 2];
        assert!(check_minimal_again_join(&c1, &c2, &set(&[3]), 4).is_ok());
        let c3 = [3, 2, 3, 3, 3, 3, 2, 2, 2, 2];
        assert!(check_minimal_again_leave(&c2, &c3, &set(&[1]), 4).is_ok());

        // A shard moving between old groups on a join, or off a staying group on a leave.
        let v = check_minimal_again_join(&c1, &[3, 1, 1, 1, 2, 3, 3, 2, 2, 1], &set(&[3]), 4).unwrap_err();
        assert_eq!(v.property, Property::MinimalAgain);
        assert!(v.message.contains("shard 4 moved from group 1 to group 2, which did not join"), "{v}");
        let v = check_minimal_again_leave(&c2, &[3, 2, 3, 3, 2, 3, 3, 2, 2, 2], &set(&[1]), 4).unwrap_err();
        assert!(v.message.contains("from staying group 3"), "{v}");
        // Too many moves, all to the joined group.
        let v = check_minimal_again_join(&c1, &[3, 3, 3, 3, 3, 2, 2, 2, 2, 2], &set(&[3]), 4).unwrap_err();
        assert!(v.message.starts_with("5 shards changed group, more than 4"), "{v}");
    }
}
