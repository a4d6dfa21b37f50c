//! How a run ends: pass, or a failure with its class, the check that caught it, and why.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Failure classes, ordered by severity (a sweep exits with the most severe one it saw).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// A simulated-time budget ran out, or every task blocked forever.
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

    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Safety => "safety",
            FailureClass::Liveness => "liveness",
            FailureClass::Panic => "panic",
        }
    }

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
    pub fn safety(checker: impl Into<String>, message: impl Into<String>) -> Self {
        Failure { class: FailureClass::Safety, checker: checker.into(), message: message.into(), location: None }
    }
    pub fn liveness(checker: impl Into<String>, message: impl Into<String>) -> Self {
        Failure { class: FailureClass::Liveness, checker: checker.into(), message: message.into(), location: None }
    }
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
        write!(f, "{} violation caught by {}: {}", self.class.name(), self.checker, self.message)?;
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
    Pass,
    Fail(Failure),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail(f) => f.class.exit_code(),
        }
    }
    pub fn class(&self) -> Option<FailureClass> {
        match self {
            Outcome::Pass => None,
            Outcome::Fail(f) => Some(f.class),
        }
    }
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
