//! The replicated state machine's pure part: a state machine trait, the deduplicating
//! wrapper every replica applies log entries to, and the key/value state machine of lab 3.
//!
//! Duplicate detection is by (client id, sequence number): a clerk has one request
//! outstanding and numbers them 1, 2, 3, …, so an entry whose sequence number is not above
//! the client's last applied one is a retry of an operation that already took effect, and
//! gets the recorded output instead of being applied again — across crashes and snapshots,
//! because the table is part of the replicated state.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// A deterministic state machine replicated through the log.
pub trait StateMachine: Clone + Default + Debug + Serialize + DeserializeOwned + 'static {
    type Op: Clone + Debug + PartialEq + Serialize + DeserializeOwned + 'static;
    type Out: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + 'static;

    /// Applies one operation.
    fn apply(&mut self, op: &Self::Op) -> Self::Out;

    /// The output of a read-only operation from the current state without changing it, or
    /// `None` if `op` writes. (Used only by a planted bug that answers reads locally.)
    fn read(&self, op: &Self::Op) -> Option<Self::Out>;
}

/// What goes into the log: who asked, which of their requests it is, and the operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command<Op> {
    pub client: u64,
    pub seq: u64,
    pub op: Op,
}

/// A client's last applied request: its sequence number and output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastApplied<Out> {
    pub seq: u64,
    pub out: Out,
}

/// The state every replica holds: the state machine and the duplicate table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Rsm<SM: StateMachine> {
    pub sm: SM,
    pub last: BTreeMap<u64, LastApplied<SM::Out>>,
}

/// Planted bugs of the replicated state machine, all off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsmBugs {
    /// Apply every entry, retries included: a retried append takes effect twice.
    pub no_duplicate_detection: bool,
    /// Leave the duplicate table out of snapshots: after a restart from a snapshot, a retry
    /// of an operation applied before it takes effect again.
    pub dup_table_not_in_snapshot: bool,
    /// A server that believes it leads answers reads from its local state, without the log:
    /// a deposed leader serves stale values.
    pub local_reads: bool,
    /// The leader answers as soon as it appends the entry, before it commits: the entry may
    /// be lost with the leader's term while the client believes it happened.
    pub reply_before_commit: bool,
}

impl RsmBugs {
    /// (name, description) of every planted bug.
    pub const ALL: &'static [(&'static str, &'static str)] = &[
        ("no-duplicate-detection", "every log entry is applied, so a retried request takes effect twice"),
        (
            "dup-table-not-in-snapshot",
            "the duplicate table is left out of snapshots, so retries re-apply after a restart",
        ),
        ("local-reads", "a server that believes it leads answers Get from local state, without the log"),
        ("reply-before-commit", "the leader replies when it appends the entry, before the entry commits"),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        let mut b = RsmBugs::default();
        match name {
            "no-duplicate-detection" => b.no_duplicate_detection = true,
            "dup-table-not-in-snapshot" => b.dup_table_not_in_snapshot = true,
            "local-reads" => b.local_reads = true,
            "reply-before-commit" => b.reply_before_commit = true,
            _ => return None,
        }
        Some(b)
    }
}

impl<SM: StateMachine> Rsm<SM> {
    /// Applies a log entry: a new request is applied and recorded; a retry of the client's
    /// last request gets that request's output; an older one (a stale duplicate nobody waits
    /// for) changes nothing.
    pub fn apply(&mut self, cmd: &Command<SM::Op>, bugs: &RsmBugs) -> SM::Out {
        if !bugs.no_duplicate_detection {
            if let Some(last) = self.last.get(&cmd.client) {
                if cmd.seq == last.seq {
                    return last.out.clone();
                }
                if cmd.seq < last.seq {
                    return SM::Out::default();
                }
            }
        }
        let out = self.sm.apply(&cmd.op);
        self.last.insert(cmd.client, LastApplied { seq: cmd.seq, out: out.clone() });
        out
    }

    /// The snapshot of this state.
    /// `size_hint`: the previous snapshot's size, so the buffer is allocated once.
    pub fn snapshot(&self, bugs: &RsmBugs, size_hint: usize) -> Vec<u8> {
        let buf = Vec::with_capacity(size_hint + size_hint / 8 + 64);
        if bugs.dup_table_not_in_snapshot {
            let bare = Rsm::<SM> { sm: self.sm.clone(), last: BTreeMap::new() };
            postcard::to_extend(&bare, buf).expect("state encodes")
        } else {
            postcard::to_extend(self, buf).expect("state encodes")
        }
    }

    /// Restores from a snapshot made by [`Rsm::snapshot`].
    pub fn restore(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes)
            .map_err(|e| format!("malformed state machine snapshot ({} bytes): {e}", bytes.len()))
    }
}

/// Operations of the key/value service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
}

/// What the key/value store answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResult {
    /// A Get's value.
    Value(String),
    /// A Put or Append took effect on a value of `prev_len` bytes with digest `prev_digest`:
    /// an observation a history checker can verify, which pins the write to the exact state
    /// it followed.
    Wrote { prev_len: u64, prev_digest: u64 },
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

    fn append(client: u64, seq: u64, v: &str) -> Command<KvOp> {
        Command { client, seq, op: KvOp::Append { key: "k".into(), value: v.into() } }
    }

    #[test]
    fn retries_take_effect_once_and_get_the_first_answer() {
        let mut r = Rsm::<Kv>::default();
        let ok = RsmBugs::default();
        r.apply(&append(1, 1, "a"), &ok);
        r.apply(&append(1, 1, "a"), &ok);
        r.apply(&append(2, 1, "b"), &ok);
        r.apply(&append(1, 2, "c"), &ok);
        r.apply(&append(1, 1, "a"), &ok); // a stale duplicate
        assert_eq!(r.sm.data["k"], "abc");
        let get = Command { client: 3, seq: 1, op: KvOp::Get { key: "k".into() } };
        assert_eq!(r.apply(&get, &ok), KvResult::Value("abc".into()));
        r.apply(&append(2, 2, "d"), &ok);
        assert_eq!(
            r.apply(&get, &ok),
            KvResult::Value("abc".into()),
            "a retried Get returns what it returned the first time"
        );
        assert_eq!(
            r.apply(&append(2, 3, "e"), &ok),
            KvResult::Wrote { prev_len: 4, prev_digest: value_digest("abcd") },
            "a write reports what it followed"
        );
    }

    #[test]
    fn snapshots_keep_the_duplicate_table_unless_the_bug_is_planted() {
        let ok = RsmBugs::default();
        let mut r = Rsm::<Kv>::default();
        r.apply(&append(1, 1, "a"), &ok);
        let mut back = Rsm::<Kv>::restore(&r.snapshot(&ok, 0)).unwrap();
        back.apply(&append(1, 1, "a"), &ok);
        assert_eq!(back.sm.data["k"], "a");

        let bug = RsmBugs::from_name("dup-table-not-in-snapshot").unwrap();
        let mut lost = Rsm::<Kv>::restore(&r.snapshot(&bug, 0)).unwrap();
        lost.apply(&append(1, 1, "a"), &bug);
        assert_eq!(lost.sm.data["k"], "aa");

        let nodup = RsmBugs::from_name("no-duplicate-detection").unwrap();
        let mut twice = Rsm::<Kv>::default();
        twice.apply(&append(1, 1, "a"), &nodup);
        twice.apply(&append(1, 1, "a"), &nodup);
        assert_eq!(twice.sm.data["k"], "aa");
        assert!(Rsm::<Kv>::restore(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn bug_names_round_trip() {
        for (name, _) in RsmBugs::ALL {
            assert_ne!(RsmBugs::from_name(name), Some(RsmBugs::default()), "{name}");
        }
        assert_eq!(RsmBugs::from_name("nope"), None);
    }
}
