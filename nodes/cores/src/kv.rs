//! The key/value state machine of lab 3 (and of each shard group's data in lab 4): Get, Put
//! and Append over string keys, where a missing key reads as "".

use crate::rsm::StateMachine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Operations of the key/value service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Reads a key's value ("" if the key is missing).
    Get {
        /// The key.
        key: String,
    },
    /// Replaces a key's value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Appends to a key's value (a missing key counts as "").
    Append {
        /// The key.
        key: String,
        /// The text added at the end.
        value: String,
    },
}

/// What the key/value store answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResult {
    /// A Get's value.
    Value(String),
    /// A Put or Append took effect on a value of `prev_len` bytes with digest `prev_digest`:
    /// an observation a history checker can verify, which pins the write to the exact state
    /// it followed.
    Wrote {
        /// Length of the value before the write, in bytes.
        prev_len: u64,
        /// [`value_digest`] of the value before the write.
        prev_digest: u64,
    },
}

impl Default for KvResult {
    fn default() -> Self {
        KvResult::Value(String::new())
    }
}

/// A value's digest: a polynomial hash (h = h * B + byte + 1, B = 0x100000001b3, mod 2^64).
/// It must equal the history checker's (`checkers::models::kv::value_digest`); a scenario
/// test compares them.
pub fn value_digest(text: &str) -> u64 {
    text.bytes().fold(0u64, |h, b| h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(b) + 1))
}

/// The key/value store of lab 3: a missing key reads as "".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    /// Every key with its value; keys never written are absent.
    pub data: BTreeMap<String, String>,
}

impl StateMachine for Kv {
    type Op = KvOp;
    type Out = KvResult;

    fn apply(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Get { key } => KvResult::Value(self.data.get(key).cloned().unwrap_or_default()),
            KvOp::Put { key, value } => {
                let prev = self.data.insert(key.clone(), value.clone()).unwrap_or_default();
                KvResult::Wrote { prev_len: prev.len() as u64, prev_digest: value_digest(&prev) }
            }
            KvOp::Append { key, value } => {
                let v = self.data.entry(key.clone()).or_default();
                let out = KvResult::Wrote { prev_len: v.len() as u64, prev_digest: value_digest(v) };
                v.push_str(value);
                out
            }
        }
    }

    fn read(&self, op: &KvOp) -> Option<KvResult> {
        match op {
            KvOp::Get { key } => Some(KvResult::Value(self.data.get(key).cloned().unwrap_or_default())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_report_what_they_followed_and_missing_keys_read_empty() {
        let mut kv = Kv::default();
        assert_eq!(kv.apply(&KvOp::Get { key: "k".into() }), KvResult::Value(String::new()));
        assert_eq!(
            kv.apply(&KvOp::Append { key: "k".into(), value: "ab".into() }),
            KvResult::Wrote { prev_len: 0, prev_digest: value_digest("") }
        );
        assert_eq!(
            kv.apply(&KvOp::Put { key: "k".into(), value: "c".into() }),
            KvResult::Wrote { prev_len: 2, prev_digest: value_digest("ab") }
        );
        assert_eq!(kv.read(&KvOp::Get { key: "k".into() }), Some(KvResult::Value("c".into())));
        assert_eq!(kv.read(&KvOp::Put { key: "k".into(), value: "d".into() }), None);
    }
}
