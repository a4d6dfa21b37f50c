//! The course's key/value store: Get, Put and Append on string keys, partitioned by key.
//!
//! Per key the state is a string, initially empty (a missing key reads as ""). Get is
//! legal when its output equals the state, Put replaces it, Append concatenates. An
//! operation with an unknown outcome accepts any output and still takes its effect.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::linearizability::{Model, Operation};

/// What a client asks the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvInput {
    /// Read a key.
    Get {
        /// The key.
        key: String,
    },
    /// Replace a key's value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Append to a key's value.
    Append {
        /// The key.
        key: String,
        /// The text added at the end of the value.
        value: String,
    },
}

impl KvInput {
    /// `Get(key)`.
    pub fn get(key: impl Into<String>) -> Self {
        KvInput::Get { key: key.into() }
    }

    /// `Put(key, value)`.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        KvInput::Put { key: key.into(), value: value.into() }
    }

    /// `Append(key, value)`.
    pub fn append(key: impl Into<String>, value: impl Into<String>) -> Self {
        KvInput::Append { key: key.into(), value: value.into() }
    }

    /// The key the operation is about.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

/// What the store answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOutput {
    /// The value a Get read.
    Value(String),
    /// A Put or Append was acknowledged.
    Ack,
    /// A Put or Append was acknowledged together with the length and [`value_digest`] of the
    /// value it replaced or extended. A store that reports it pins each write to the exact
    /// state it followed (legal only there), so histories of many concurrent writes with few
    /// reads stay cheap to decide instead of exploding combinatorially.
    Wrote {
        /// The length of the value before the write, in bytes.
        prev_len: u64,
        /// [`value_digest`] of the value before the write.
        prev_digest: u64,
    },
}

/// The digest a store reports with [`KvOutput::Wrote`]: the model's own polynomial hash of
/// a value, so checking it costs nothing extra.
pub fn value_digest(text: &str) -> u64 {
    poly_hash(0, text.as_bytes())
}

impl KvOutput {
    /// `Value(v)`.
    pub fn value(v: impl Into<String>) -> Self {
        KvOutput::Value(v.into())
    }
}

/// One key's value. Cloning shares the text; the hash is kept incrementally (a polynomial
/// hash extends by the appended part alone), so the checker never rehashes a long value.
#[derive(Clone, Debug)]
pub struct KvState {
    text: Arc<String>,
    hash: u64,
}

/// The polynomial hash's base (odd, so that multiplying by it is invertible mod 2^64).
const BASE: u64 = 0x100_0000_01b3;

fn poly_hash(start: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(start, |h, &b| h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1))
}

impl KvState {
    /// A state holding `text`.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        KvState { hash: poly_hash(0, text.as_bytes()), text: Arc::new(text) }
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is the value of `len` bytes with digest `digest`.
    fn is(&self, len: u64, digest: u64) -> bool {
        self.text.len() as u64 == len && self.hash == digest
    }

    fn appended(&self, suffix: &str) -> Self {
        let mut text = String::with_capacity(self.text.len() + suffix.len());
        text.push_str(&self.text);
        text.push_str(suffix);
        KvState { hash: poly_hash(self.hash, suffix.as_bytes()), text: Arc::new(text) }
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The key/value model, partitioned by key.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type Input = KvInput;
    type Output = KvOutput;
    type State = KvState;

    fn init(&self) -> KvState {
        KvState::new("")
    }

    fn step(&self, state: &KvState, input: &KvInput, output: Option<&KvOutput>) -> Option<KvState> {
        match (input, output) {
            (KvInput::Get { .. }, None) => Some(state.clone()),
            (KvInput::Get { .. }, Some(KvOutput::Value(v))) => (v.as_str() == state.as_str()).then(|| state.clone()),
            (KvInput::Put { value, .. }, None | Some(KvOutput::Ack)) => Some(KvState::new(value.as_str())),
            (KvInput::Append { value, .. }, None | Some(KvOutput::Ack)) => Some(state.appended(value)),
            (KvInput::Append { value, .. }, Some(KvOutput::Wrote { prev_len, prev_digest })) => {
                state.is(*prev_len, *prev_digest).then(|| state.appended(value))
            }
            (KvInput::Put { value, .. }, Some(KvOutput::Wrote { prev_len, prev_digest })) => {
                state.is(*prev_len, *prev_digest).then(|| KvState::new(value.as_str()))
            }
            _ => None,
        }
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    fn partition(&self, history: &[Operation<KvInput, KvOutput>]) -> Option<Vec<Vec<usize>>> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, op) in history.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(i);
        }
        Some(by_key.into_values().collect())
    }

    fn describe_partition(&self, history: &[Operation<KvInput, KvOutput>], ops: &[usize]) -> String {
        ops.first().map(|&i| format!("key {:?}", history[i].input.key())).unwrap_or_default()
    }

    fn describe_operation(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        let result = match output {
            None => " -> ?".to_string(),
            Some(KvOutput::Value(v)) => format!(" -> {v:?}"),
            Some(KvOutput::Ack) => String::new(),
            Some(KvOutput::Wrote { prev_len, .. }) => format!(" after {prev_len} bytes"),
        };
        match input {
            KvInput::Get { key } => format!("get({key:?}){result}"),
            KvInput::Put { key, value } => format!("put({key:?}, {value:?}){result}"),
            KvInput::Append { key, value } => format!("append({key:?}, {value:?}){result}"),
        }
    }

    fn describe_state(&self, state: &KvState) -> String {
        format!("{:?}", state.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_specification() {
        let m = KvModel;
        let empty = m.init();
        assert_eq!(m.step(&empty, &KvInput::get("k"), Some(&KvOutput::value(""))), Some(empty.clone()));
        assert_eq!(m.step(&empty, &KvInput::get("k"), Some(&KvOutput::value("x"))), None);
        assert_eq!(m.step(&empty, &KvInput::get("k"), Some(&KvOutput::Ack)), None);
        assert_eq!(m.step(&empty, &KvInput::get("k"), None), Some(empty.clone()));
        let ab = m.step(&empty, &KvInput::put("k", "ab"), Some(&KvOutput::Ack)).unwrap();
        assert_eq!(ab.as_str(), "ab");
        let abc = m.step(&ab, &KvInput::append("k", "c"), None).unwrap();
        assert_eq!(abc, KvState::new("abc"), "incremental hash equals the direct one");
        assert_eq!(m.step(&ab, &KvInput::put("k", "z"), Some(&KvOutput::value("z"))), None);
        assert_ne!(KvState::new("ab"), KvState::new("ba"));
        assert_eq!(m.describe_operation(&KvInput::append("k", "v"), Some(&KvOutput::Ack)), r#"append("k", "v")"#);
        assert_eq!(m.describe_operation(&KvInput::get("k"), Some(&KvOutput::value("v"))), r#"get("k") -> "v""#);
        assert_eq!(m.describe_operation(&KvInput::get("k"), None), r#"get("k") -> ?"#);
        assert_eq!(m.describe_state(&abc), r#""abc""#);
        // A write that says what it followed is legal only there.
        let wrote = |s: &str| KvOutput::Wrote { prev_len: s.len() as u64, prev_digest: value_digest(s) };
        assert_eq!(m.step(&ab, &KvInput::append("k", "c"), Some(&wrote("ab"))), Some(abc.clone()));
        assert_eq!(m.step(&ab, &KvInput::append("k", "c"), Some(&wrote("ba"))), None, "same length, other value");
        assert_eq!(m.step(&ab, &KvInput::append("k", "c"), Some(&wrote("a"))), None);
        assert_eq!(m.step(&ab, &KvInput::put("k", "z"), Some(&wrote("ab"))), Some(KvState::new("z")));
        assert_eq!(m.step(&ab, &KvInput::put("k", "z"), Some(&wrote(""))), None);
        assert_eq!(m.step(&ab, &KvInput::get("k"), Some(&wrote("ab"))), None);
        assert_eq!(
            m.describe_operation(&KvInput::append("k", "v"), Some(&wrote("abc"))),
            r#"append("k", "v") after 3 bytes"#
        );
    }

    #[test]
    fn partitions_by_key_in_key_order() {
        let ops = vec![
            Operation::new(0, KvInput::get("b"), 0, KvOutput::value(""), 1),
            Operation::new(0, KvInput::put("a", "1"), 2, KvOutput::Ack, 3),
            Operation::new(1, KvInput::append("b", "2"), 2, KvOutput::Ack, 3),
        ];
        assert_eq!(KvModel.partition(&ops), Some(vec![vec![1], vec![0, 2]]));
        assert_eq!(KvModel.describe_partition(&ops, &[0, 2]), r#"key "b""#);
    }
}
