//! The course's key/value store: Get, Put and Append on string keys, partitioned by key.
//!
//! Per key the state is a string, initially empty (a missing key reads as ""). Get is
//! legal when its output equals the state, Put replaces it, Append concatenates. An
//! operation with an unknown outcome accepts any output and still takes its effect.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

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

/// One key's value: a persistent string of chunks. Cloning shares everything; appending
/// shares the value it extends and copies at most [`CHUNK`] bytes into one new allocation,
/// so a search that builds thousands of values of one long key costs memory and time in
/// proportion to what it appends, not to the values' lengths. The hash (a polynomial hash,
/// which extends by the appended part alone) and the length are kept, so most comparisons
/// are one or two word compares; a value is compared byte by byte from its end, where
/// values that differ in the order of their last appends differ. Chunks are shared by
/// reference counts that are not atomic (a search keeps its states on its own thread), so a
/// state is not `Send`.
#[derive(Clone, Debug)]
pub struct KvState {
    chunk: Rc<Chunk>,
}

/// Bytes one chunk holds: an append copies at most this much, and comparisons walk one
/// chunk per this many bytes. 23 makes a chunk 48 bytes, one 64-byte allocation with its
/// reference counts: most states of a search are one chunk of their own (an append of a
/// few bytes), so a state costs a third of what 128-byte chunks did, in memory and in
/// bytes copied per step, while values of the course's tests (appends of 5–20 bytes)
/// still fit two or three appends to a chunk.
pub const CHUNK: usize = 23;

const _: () = assert!(std::mem::size_of::<Chunk>() == 48, "a chunk and its counts fill 64 bytes");

/// The last bytes of a value, and the value before them.
#[derive(Debug)]
struct Chunk {
    /// The value before these bytes, shared with the state it was appended to.
    prefix: Option<Rc<Chunk>>,
    /// Length in bytes of the whole value.
    len: u64,
    /// [`value_digest`] of the whole value.
    hash: u64,
    /// How many bytes of `bytes` are used (at least one, except in the empty value).
    used: u8,
    bytes: [u8; CHUNK],
}

impl Chunk {
    fn tail(&self) -> &[u8] {
        &self.bytes[..usize::from(self.used)]
    }
}

/// Long values are long chains: free them one chunk at a time, not by recursion.
impl Drop for Chunk {
    fn drop(&mut self) {
        let mut next = self.prefix.take();
        while let Some(chunk) = next {
            match Rc::try_unwrap(chunk) {
                Ok(mut chunk) => next = chunk.prefix.take(),
                Err(_) => break,
            }
        }
    }
}

/// The polynomial hash's base (odd, so that multiplying by it is invertible mod 2^64).
const BASE: u64 = 0x100_0000_01b3;

fn poly_hash(start: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(start, |h, &b| h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1))
}

impl KvState {
    /// A state holding `text`.
    pub fn new(text: &str) -> Self {
        let empty = Chunk { prefix: None, len: 0, hash: 0, used: 0, bytes: [0; CHUNK] };
        KvState { chunk: Rc::new(empty) }.extended(text.as_bytes())
    }

    /// This value followed by `more`, in new chunks.
    fn extended(self, more: &[u8]) -> Self {
        let mut prefix = (self.chunk.len > 0).then_some(self.chunk);
        let (mut len, mut hash) = match &prefix {
            Some(p) => (p.len, p.hash),
            None => (0, 0),
        };
        let mut bytes = [0u8; CHUNK];
        let mut used = 0;
        for piece in more.chunks(CHUNK) {
            if used + piece.len() > CHUNK {
                let chunk = Chunk { prefix: prefix.take(), len, hash, used: used as u8, bytes };
                prefix = Some(Rc::new(chunk));
                used = 0;
            }
            bytes[used..used + piece.len()].copy_from_slice(piece);
            used += piece.len();
            len += piece.len() as u64;
            hash = poly_hash(hash, piece);
        }
        if used == 0 {
            return match prefix {
                Some(chunk) => KvState { chunk },
                None => KvState { chunk: Rc::new(Chunk { prefix: None, len: 0, hash: 0, used: 0, bytes }) },
            };
        }
        KvState { chunk: Rc::new(Chunk { prefix, len, hash, used: used as u8, bytes }) }
    }

    /// The value, as one string.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        let mut chunk = Some(&self.chunk);
        while let Some(c) = chunk {
            parts.push(c.tail());
            chunk = c.prefix.as_ref();
        }
        let bytes: Vec<u8> = parts.iter().rev().flat_map(|p| p.iter().copied()).collect();
        String::from_utf8(bytes).expect("a value is the concatenation of whole strings")
    }

    /// Length of the value in bytes.
    pub fn len(&self) -> u64 {
        self.chunk.len
    }

    /// True for the empty value.
    pub fn is_empty(&self) -> bool {
        self.chunk.len == 0
    }

    /// Heap bytes this state added to the values it shares (its last chunk).
    pub fn own_bytes(&self) -> usize {
        std::mem::size_of::<Chunk>() + 2 * std::mem::size_of::<usize>()
    }

    /// Whether this is the value of `len` bytes with digest `digest`.
    fn is(&self, len: u64, digest: u64) -> bool {
        self.chunk.len == len && self.chunk.hash == digest
    }

    fn appended(&self, suffix: &str) -> Self {
        let c = &self.chunk;
        if usize::from(c.used) + suffix.len() <= CHUNK {
            // Room in the last chunk: copy it and the suffix into a new one.
            let mut bytes = c.bytes;
            let used = usize::from(c.used);
            bytes[used..used + suffix.len()].copy_from_slice(suffix.as_bytes());
            let chunk = Chunk {
                prefix: c.prefix.clone(),
                len: c.len + suffix.len() as u64,
                hash: poly_hash(c.hash, suffix.as_bytes()),
                used: (used + suffix.len()) as u8,
                bytes,
            };
            return KvState { chunk: Rc::new(chunk) };
        }
        if suffix.len() <= CHUNK {
            // A chunk of its own after the last one (which is not empty: it had no room).
            let mut bytes = [0u8; CHUNK];
            bytes[..suffix.len()].copy_from_slice(suffix.as_bytes());
            let chunk = Chunk {
                prefix: Some(Rc::clone(c)),
                len: c.len + suffix.len() as u64,
                hash: poly_hash(c.hash, suffix.as_bytes()),
                used: suffix.len() as u8,
                bytes,
            };
            return KvState { chunk: Rc::new(chunk) };
        }
        self.clone().extended(suffix.as_bytes())
    }

    /// Whether the value is `text`: the lengths, then the bytes from the end.
    pub fn equals(&self, text: &str) -> bool {
        if self.chunk.len != text.len() as u64 {
            return false;
        }
        let mut rest = text.as_bytes();
        let mut chunk = Some(&self.chunk);
        while let Some(c) = chunk {
            let tail = c.tail();
            let Some(head) = rest.len().checked_sub(tail.len()) else {
                return false;
            };
            if &rest[head..] != tail {
                return false;
            }
            rest = &rest[..head];
            chunk = c.prefix.as_ref();
        }
        rest.is_empty()
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.chunk, &other.chunk);
        if Rc::ptr_eq(a, b) {
            return true;
        }
        if a.len != b.len || a.hash != b.hash {
            return false;
        }
        let same_prefix = match (&a.prefix, &b.prefix) {
            (Some(p), Some(q)) => Rc::ptr_eq(p, q),
            (None, None) => true,
            _ => false,
        };
        if same_prefix {
            return a.tail() == b.tail();
        }
        // Chunked differently (reached by other writes): compare the bytes.
        self.text() == other.text()
    }
}

impl Eq for KvState {}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.chunk.hash);
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
            (KvInput::Get { .. }, Some(KvOutput::Value(v))) => state.equals(v).then(|| state.clone()),
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

    fn equivalent(&self, a: &KvInput, a_output: Option<&KvOutput>, b: &KvInput, b_output: Option<&KvOutput>) -> bool {
        a == b && a_output == b_output
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
        format!("{:?}", state.text())
    }

    fn state_bytes(&self, state: &KvState) -> usize {
        state.own_bytes()
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
        assert_eq!(ab.text(), "ab");
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
    fn long_values_share_their_chunks_and_compare_exactly() {
        let m = KvModel;
        let mut state = m.init();
        let mut text = String::new();
        for i in 0..1000 {
            let v = format!("x {i} y");
            state = m.step(&state, &KvInput::append("k", v.as_str()), None).unwrap();
            text.push_str(&v);
            if i % 97 == 0 {
                assert!(state.equals(&text) && state.text() == text && state.len() == text.len() as u64);
                assert_eq!(state, KvState::new(&text), "chunked differently, equal all the same");
                assert!(state.is(text.len() as u64, value_digest(&text)));
            }
        }
        assert!(state.own_bytes() <= 64, "an append copies at most a chunk: {}", state.own_bytes());
        // A long put is chunked too, and a chain of chunks is freed without recursion.
        let long = "y".repeat(10 * CHUNK + 3);
        assert_eq!(KvState::new(&long).text(), long);
        let mut deep = m.init();
        for _ in 0..200_000 {
            deep = deep.appended("0123456789");
        }
        assert_eq!(deep.len(), 2_000_000);
        drop(deep);
        // Values that differ only in the order of their last appends, or anywhere else.
        let ab = state.appended("a").appended("b");
        let ba = state.appended("b").appended("a");
        assert_ne!(ab, ba);
        assert!(!ab.equals(&format!("{text}ba")) && ab.equals(&format!("{text}ab")));
        let mut early = text.clone();
        early.replace_range(3..4, "?");
        assert!(!state.equals(&early) && !state.equals(&text[1..]) && !state.equals(&format!("{text}z")));
        assert_ne!(state, KvState::new(&early));
        assert_eq!(m.step(&state, &KvInput::get("k"), Some(&KvOutput::value(early))), None);
        assert_eq!(KvState::new(""), m.init());
        assert!(m.init().is_empty() && m.init().equals(""));
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
