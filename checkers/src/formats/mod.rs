//! History files: Porcupine's key/value logs and Jepsen's etcd logs (the files of
//! `shared/histories/porcupine/`), read and, for key/value histories, written; and this
//! project's JSON form, which keeps everything exactly.
//!
//! Times read from a log are line numbers (1-based), so a history's times point back into
//! its file. Every error names the file and the line.

use std::fmt;
use std::path::Path;

pub mod jepsen_etcd;
pub mod json;
pub mod porcupine_kv;

/// A malformed history file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file (as given).
    pub file: String,
    /// The 1-based line, or 0 when the problem is the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        ParseError { file: file.to_string(), line, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads a file to a string, naming the file in the error.
pub(crate) fn read(path: &Path) -> Result<String, ParseError> {
    std::fs::read_to_string(path)
        .map_err(|e| ParseError::new(&path.display().to_string(), 0, format!("cannot read: {e}")))
}
