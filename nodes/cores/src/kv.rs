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
    extend_digest(0, text)
}

/// A stored value and its [`value_digest`], which appends extend in step (the digest is a
/// running fold over the bytes), so a write reports what it followed at the cost of what it
/// writes rather than of the value's whole length — appending to one key for a whole run is
/// otherwise quadratic. Encoded as the bare string: snapshots are those of a plain string map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Value {
    text: String,
    digest: u64,
}

impl Value {
    fn new(text: String) -> Value {
        let digest = value_digest(&text);
        Value { text, digest }
    }

    fn push_str(&mut self, more: &str) {
        self.digest = extend_digest(self.digest, more);
        self.text.push_str(more);
    }

    /// What a write that follows this value reports.
    fn written(&self) -> KvResult {
        KvResult::Wrote { prev_len: self.text.len() as u64, prev_digest: self.digest }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        String::deserialize(deserializer).map(Value::new)
    }
}

/// [`value_digest`] of `text` followed by `more`, from the digest of `text`.
fn extend_digest(digest: u64, more: &str) -> u64 {
    more.bytes().fold(digest, |h, b| h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(b) + 1))
}

/// The key/value store of lab 3: a missing key reads as "".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    data: BTreeMap<String, Value>,
}

impl Kv {
    /// The value of `key`, if it was ever written.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(|v| v.text.as_str())
    }

    /// Whether no key was ever written.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Every key and its value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.data.iter().map(|(k, v)| (k.as_str(), v.text.as_str()))
    }
}

impl StateMachine for Kv {
    type Op = KvOp;
    type Out = KvResult;

    fn apply(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Get { key } => KvResult::Value(self.get(key).unwrap_or_default().to_string()),
            KvOp::Put { key, value } => match self.data.insert(key.clone(), Value::new(value.clone())) {
                Some(prev) => prev.written(),
                None => Value::default().written(),
            },
            KvOp::Append { key, value } => {
                // An existing key (the common case) is found without allocating a copy of it.
                let v = match self.data.get_mut(key) {
                    Some(v) => v,
                    None => self.data.entry(key.clone()).or_default(),
                };
                let out = v.written();
                v.push_str(value);
                out
            }
        }
    }

    fn read(&self, op: &KvOp) -> Option<KvResult> {
        match op {
            KvOp::Get { key } => Some(KvResult::Value(self.get(key).unwrap_or_default().to_string())),
            _ => None,
        }
    }

    fn is_read(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get { .. })
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

    #[test]
    fn digests_kept_by_appends_equal_digests_of_whole_values_and_survive_a_snapshot() {
        let mut kv = Kv::default();
        let mut whole = String::new();
        for i in 0..50 {
            let piece = format!("x {i} y");
            let out = kv.apply(&KvOp::Append { key: "k".into(), value: piece.clone() });
            assert_eq!(out, KvResult::Wrote { prev_len: whole.len() as u64, prev_digest: value_digest(&whole) });
            whole.push_str(&piece);
        }
        let bytes = postcard::to_allocvec(&kv).unwrap();
        let plain: BTreeMap<String, String> = [("k".to_string(), whole.clone())].into();
        assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap(), "encoded as a plain string map");
        let mut back: Kv = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, kv);
        let out = back.apply(&KvOp::Put { key: "k".into(), value: "new".into() });
        assert_eq!(out, KvResult::Wrote { prev_len: whole.len() as u64, prev_digest: value_digest(&whole) });
        assert_eq!((back.get("k"), back.len(), back.is_empty()), (Some("new"), 1, false));
        assert_eq!(back.iter().collect::<Vec<_>>(), vec![("k", "new")]);
    }
}
