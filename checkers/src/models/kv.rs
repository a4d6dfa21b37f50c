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
    Get { key: String },
    /// Replace a key's value.
    Put { key: String, value: String },
    /// Append to a key's value.
    Append { key: String, value: String },
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
    /// An Append was acknowledged together with the length the value had just before it —
    /// where the append landed. A store that reports it lets the checker place each append
    /// exactly (legal only when the state has that length), so histories of many concurrent
    /// appends with few reads stay cheap to check instead of exploding combinatorially.
    AppendedAt(u64),
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
            (KvInput::Append { value, .. }, Some(KvOutput::AppendedAt(at))) => {
                (state.as_str().len() as u64 == *at).then(|| state.appended(value))
            }
            _ => None,
        }
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
            Some(KvOutput::AppendedAt(at)) => format!(" at {at}"),
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
        // An append that says where it landed is legal only there.
        assert_eq!(m.step(&ab, &KvInput::append("k", "c"), Some(&KvOutput::AppendedAt(2))), Some(abc.clone()));
        assert_eq!(m.step(&ab, &KvInput::append("k", "c"), Some(&KvOutput::AppendedAt(1))), None);
        assert_eq!(m.step(&ab, &KvInput::get("k"), Some(&KvOutput::AppendedAt(2))), None);
        assert_eq!(
            m.describe_operation(&KvInput::append("k", "v"), Some(&KvOutput::AppendedAt(3))),
            r#"append("k", "v") at 3"#
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
