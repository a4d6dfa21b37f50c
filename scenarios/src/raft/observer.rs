//! Connects the Raft shells' observations to `checkers::raft::SafetyChecker`, so election
//! safety, log matching, leader completeness, state-machine safety and apply order are
//! judged after every step of every server, over the whole run.

use checkers::raft::{entry_hash, SafetyChecker, Violation};
use nodes::raft::Observer;
use sim::Failure;

pub struct SafetyObserver {
    pub checker: SafetyChecker,
}

impl SafetyObserver {
    pub fn new(nodes: usize) -> Self {
        SafetyObserver { checker: SafetyChecker::new(nodes) }
    }
}

fn judge(r: Result<(), Violation>) -> Result<(), Failure> {
    r.map_err(|v| Failure::safety(v.checker(), v.message))
}

impl Observer for SafetyObserver {
    fn role(&mut self, node: usize, term: u64, leader: bool) -> Result<(), Failure> {
        judge(self.checker.observe_role(node, term, leader))
    }
    fn snapshot(&mut self, node: usize, index: u64, term: u64) -> Result<(), Failure> {
        judge(self.checker.observe_snapshot(node, index, term))
    }
    fn entries(&mut self, node: usize, first: u64, entries: &[(u64, &[u8])]) -> Result<(), Failure> {
        let hashed: Vec<(u64, u64)> = entries.iter().map(|(t, c)| (*t, entry_hash(c))).collect();
        judge(self.checker.observe_entries(node, first, &hashed))
    }
    fn log_end(&mut self, node: usize, last: u64) -> Result<(), Failure> {
        judge(self.checker.observe_log_end(node, last))
    }
    fn commit(&mut self, node: usize, commit_index: u64) -> Result<(), Failure> {
        judge(self.checker.observe_commit(node, commit_index))
    }
    fn apply(&mut self, node: usize, index: u64, command: &[u8]) -> Result<(), Failure> {
        judge(self.checker.observe_apply(node, index, entry_hash(command)))
    }
    fn apply_snapshot(&mut self, node: usize, index: u64) -> Result<(), Failure> {
        judge(self.checker.observe_apply_snapshot(node, index))
    }
    fn restart(&mut self, node: usize, snapshot_index: u64) {
        self.checker.observe_restart(node, snapshot_index)
    }
}
