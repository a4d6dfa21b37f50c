//! The register's checkers: a linearizability model for `checkers::linearizability` (what a
//! read may return, given the writes before it), and the chain's own invariant, judged after
//! every step of every server.

use checkers::linearizability::Model;
use std::collections::BTreeMap;

/// What a client asks the register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    Read,
    Write(u64),
}

/// What the register answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    Value(u64),
    Written,
}

/// A single read/write register holding a `u64`, 0 at first: a read returns the last value
/// written before it (in the linearization's order).
pub struct RegisterModel;

impl Model for RegisterModel {
    type Input = RegisterInput;
    type Output = RegisterOutput;
    type State = u64;

    fn init(&self) -> u64 {
        0
    }

    fn step(&self, state: &u64, input: &RegisterInput, output: Option<&RegisterOutput>) -> Option<u64> {
        match (input, output) {
            (RegisterInput::Write(v), _) => Some(*v),
            (RegisterInput::Read, None) => Some(*state),
            (RegisterInput::Read, Some(RegisterOutput::Value(v))) => (v == state).then_some(*state),
            (RegisterInput::Read, Some(RegisterOutput::Written)) => None,
        }
    }

    fn is_read_only(&self, input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }

    fn describe_operation(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        match (input, output) {
            (RegisterInput::Write(v), _) => format!("write({v})"),
            (RegisterInput::Read, Some(RegisterOutput::Value(v))) => format!("read() -> {v}"),
            (RegisterInput::Read, _) => "read() -> ?".to_string(),
        }
    }

    fn describe_state(&self, state: &u64) -> String {
        state.to_string()
    }
}

/// The chain's invariant over what the servers hold, after every step of every server:
/// - a server's version never goes down (it applies updates in version order);
/// - a server never holds a version its predecessor does not (updates reach it only through
///   the predecessor): versions are non-increasing from head to tail;
/// - every server that holds version v holds the same value for it.
#[derive(Debug, Default)]
pub struct ChainChecker {
    /// Each server's last reported version.
    versions: Vec<u64>,
    /// version → (value, the server that first reported it).
    values: BTreeMap<u64, (u64, usize)>,
}

impl ChainChecker {
    /// A checker for a chain of `servers`.
    pub fn new(servers: usize) -> ChainChecker {
        ChainChecker { versions: vec![0; servers], values: BTreeMap::new() }
    }

    /// Server `server` now holds `value` at `version`.
    ///
    /// # Errors
    /// One line naming the servers, versions and values that break the invariant.
    pub fn observe(&mut self, server: usize, version: u64, value: u64) -> Result<(), String> {
        let before = self.versions[server];
        if version < before {
            return Err(format!("server {server} went back from version {before} to {version}"));
        }
        if server > 0 && version > self.versions[server - 1] {
            return Err(format!(
                "server {server} holds version {version}, ahead of its predecessor's {}",
                self.versions[server - 1]
            ));
        }
        if version > 0 {
            match self.values.get(&version) {
                Some(&(v, other)) if v != value => {
                    return Err(format!("server {server} holds {value} at version {version}, server {other} held {v}"));
                }
                Some(_) => {}
                None => {
                    self.values.insert(version, (value, server));
                }
            }
        }
        self.versions[server] = version;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::linearizability::{check, CheckOptions, History, Operation, Verdict};

    fn verdict(ops: Vec<Operation<RegisterInput, RegisterOutput>>) -> Verdict {
        check(&RegisterModel, &History::new(ops).unwrap(), &CheckOptions::default()).verdict
    }

    #[test]
    fn the_model_accepts_reads_of_the_latest_write_and_refutes_stale_ones() {
        use RegisterInput::*;
        use RegisterOutput::*;
        // write(1) returns, then a read sees 1: fine; a read that starts later seeing 0 is not.
        let good = vec![Operation::new(0, Write(1), 0, Written, 10), Operation::new(1, Read, 11, Value(1), 12)];
        assert_eq!(verdict(good), Verdict::Linearizable);
        let stale = vec![Operation::new(0, Write(1), 0, Written, 10), Operation::new(1, Read, 11, Value(0), 12)];
        assert_eq!(verdict(stale), Verdict::NotLinearizable);
        // Concurrent with the write, either value is fine.
        let racing = vec![Operation::new(0, Write(1), 0, Written, 10), Operation::new(1, Read, 5, Value(0), 6)];
        assert_eq!(verdict(racing), Verdict::Linearizable);
        // A write whose outcome is unknown may or may not have happened.
        let maybe = vec![Operation::pending(0, Write(2), 0), Operation::new(1, Read, 20, Value(2), 21)];
        assert_eq!(verdict(maybe), Verdict::Linearizable);
        // Reads that see a new value, then an old one, cannot both be right.
        let flicker = vec![
            Operation::new(0, Write(1), 0, Written, 10),
            Operation::new(0, Write(2), 11, Written, 20),
            Operation::new(1, Read, 21, Value(2), 22),
            Operation::new(1, Read, 23, Value(1), 24),
        ];
        assert_eq!(verdict(flicker), Verdict::NotLinearizable);
    }

    #[test]
    fn the_chain_invariant_catches_rewinds_skips_ahead_and_disagreements() {
        let mut c = ChainChecker::new(3);
        assert!(c.observe(0, 1, 10).is_ok());
        assert!(c.observe(1, 1, 10).is_ok());
        assert!(c.observe(0, 2, 20).is_ok());
        assert!(c.observe(2, 1, 10).is_ok());
        assert!(c.observe(2, 2, 20).unwrap_err().contains("ahead of its predecessor"));
        assert!(c.observe(1, 2, 21).unwrap_err().contains("server 0 held 20"));
        assert!(c.observe(1, 0, 0).unwrap_err().contains("went back"));
    }
}
