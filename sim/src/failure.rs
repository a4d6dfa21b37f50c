//! How a run ends: pass, or a failure with its class, the check that caught it, and why.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Failure classes, ordered by severity (a sweep exits with the most severe one it saw).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// A simulated-time budget or a course bound on time ran out, every task blocked forever,
    /// or the livelock watchdog saw too many events in one simulated second.
    Liveness,
    /// A checker or a course bound said no.
    Safety,
    /// Code panicked: a core's own assert, or a bug in the harness.
    Panic,
}

impl FailureClass {
    /// The process exit status of a run that ended in this class.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Safety => 1,
            FailureClass::Liveness => 2,
            FailureClass::Panic => 3,
        }
    }

    /// The class's name as written in reports and seed files (`safety`, `liveness`, `panic`).
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Safety => "safety",
            FailureClass::Liveness => "liveness",
            FailureClass::Panic => "panic",
        }
    }

    /// Parses a name written by [`FailureClass::name`]; `None` for any other string.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "safety" => Some(FailureClass::Safety),
            "liveness" => Some(FailureClass::Liveness),
            "panic" => Some(FailureClass::Panic),
            _ => None,
        }
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure it is; decides the run's exit status.
    pub class: FailureClass,
    /// The name of the check that caught it, e.g. `election-safety`, `mr::output`, `budget`.
    pub checker: String,
    /// One line: what was wrong, with nodes, terms, indexes or files.
    pub message: String,
    /// For a panic, where it happened (`file:line`, the file relative to its crate's folder,
    /// so no machine's paths are in it). Shown, never hashed into the trace: a line number
    /// moves with every edit above the assert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Failure {
    /// A safety failure caught by `checker`, with a one-line `message`.
    pub fn safety(checker: impl Into<String>, message: impl Into<String>) -> Self {
        Failure { class: FailureClass::Safety, checker: checker.into(), message: message.into(), location: None }
    }
    /// A liveness failure caught by `checker` (`budget`, a course test's time bound, …).
    pub fn liveness(checker: impl Into<String>, message: impl Into<String>) -> Self {
        Failure { class: FailureClass::Liveness, checker: checker.into(), message: message.into(), location: None }
    }
    /// A panic with its message; the checker is `panic` and no location is set (see [`Failure::at`]).
    pub fn panic(message: impl Into<String>) -> Self {
        Failure { class: FailureClass::Panic, checker: "panic".into(), message: message.into(), location: None }
    }

    /// The same failure, located at `location` (a panic's `file:line`).
    pub fn at(self, location: Option<String>) -> Self {
        Failure { location, ..self }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A panic has no checker to name (its `checker` is the class again): say what it is.
        if self.class == FailureClass::Panic {
            write!(f, "panic: {}", self.message)?;
        } else {
            write!(f, "{} violation caught by {}: {}", self.class.name(), self.checker, self.message)?;
        }
        match &self.location {
            Some(at) => write!(f, " (at {at})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Failure {}

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The run ended with every check passing.
    Pass,
    /// The run failed.
    Fail(Failure),
}

impl Outcome {
    /// The process exit status of a run with this outcome: 0 for a pass, else
    /// [`FailureClass::exit_code`].
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail(f) => f.class.exit_code(),
        }
    }
    /// The failure's class, `None` for a pass.
    pub fn class(&self) -> Option<FailureClass> {
        match self {
            Outcome::Pass => None,
            Outcome::Fail(f) => Some(f.class),
        }
    }
    /// Whether the run passed.
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => write!(f, "pass"),
            Outcome::Fail(x) => write!(f, "{x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_as_its_class_and_check_and_a_panic_as_a_panic() {
        let f = Failure::safety("election-safety", "two leaders in term 3");
        assert_eq!(f.to_string(), "safety violation caught by election-safety: two leaders in term 3");
        let p = Failure::panic("index out of bounds").at(Some("src/raft/mod.rs:7".into()));
        assert_eq!(p.to_string(), "panic: index out of bounds (at src/raft/mod.rs:7)");
    }
}
