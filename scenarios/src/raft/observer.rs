//! Connects replicas' observations to `checkers::raft::SafetyChecker`, so election safety, log
//! matching, leader completeness, state-machine safety, apply order, commit-majority and
//! match-index are judged after every step of every server, over the whole run. [`judge`] is
//! the one mapping from observations to checker calls, used by the actor shell's observer and
//! the property-test world alike.

use checkers::raft::{entry_hash, SafetyChecker, Violation};
use cores::replica::Observation;
use nodes::replica::{Engine, Observer};
use sim::Failure;

/// Shows `checker` one observation of `node`.
pub fn judge(checker: &mut SafetyChecker, node: usize, observation: &Observation<'_>) -> Result<(), Violation> {
    match observation {
        Observation::Restart { snapshot_index: Some(snapshot_index) } => {
            checker.observe_restart(node, *snapshot_index);
            Ok(())
        }
        Observation::Restart { snapshot_index: None } => {
            checker.observe_restart_unknown(node);
            Ok(())
        }
        Observation::Role { term, leader, .. } => checker.observe_role(node, *term, *leader),
        Observation::Snapshot { index, term } => checker.observe_snapshot(node, *index, *term),
        Observation::Entries { first, entries } => {
            let hashed: Vec<(u64, u64)> = entries.iter().map(|(t, c)| (*t, entry_hash(c))).collect();
            checker.observe_entries(node, *first, &hashed)
        }
        Observation::LogEnd { last } => checker.observe_log_end(node, *last),
        Observation::Match { indexes } => checker.observe_match(node, indexes),
        Observation::Commit { index } => checker.observe_commit(node, *index),
        Observation::Apply { index, command } => checker.observe_apply(node, *index, entry_hash(command)),
        Observation::ApplySnapshot { index } => checker.observe_apply_snapshot(node, *index),
    }
}

/// The shells' observer: every observation goes to one run-wide safety checker.
pub struct SafetyObserver {
    pub checker: SafetyChecker,
}

impl SafetyObserver {
    /// A checker of every property, for engines that report their logs.
    pub fn new(nodes: usize) -> Self {
        SafetyObserver { checker: SafetyChecker::new(nodes) }
    }

    /// The checker engine `E`'s observations can feed: every property if it reports its logs,
    /// else those that roles and applies show (and the run says which checks ran).
    pub fn for_engine<E: Engine>(nodes: usize) -> Self {
        if E::EXPOSES_LOG {
            SafetyObserver::new(nodes)
        } else {
            let (ran, not) = nodes::course::COURSE_CHECKS;
            sim::describe(format!(
                "safety checks: {}; not checked (no log exposed): {}",
                ran.join(", "),
                not.join(", ")
            ));
            SafetyObserver { checker: SafetyChecker::for_roles_and_applies(nodes) }
        }
    }
}

impl Observer for SafetyObserver {
    fn observe(&mut self, node: usize, observation: &Observation<'_>) -> Result<(), Failure> {
        judge(&mut self.checker, node, observation).map_err(|v| Failure::safety(v.checker(), v.message))
    }
}
