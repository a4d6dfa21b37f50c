//! The replicated state machine's pure part: a state machine trait, what a replica applies
//! log entries to ([`Replicated`]: the deduplicating wrapper [`Deduplicated`] around a
//! [`StateMachine`], or a state that detects duplicates itself), and the server's decisions
//! ([`RsmCore`]): which request waits at which log index, what answers it, when to snapshot.
//!
//! Duplicate detection, for services that leave it to this layer ([`Rsm`], the lab 3 design),
//! is by (client id, sequence number): a clerk has one request outstanding and numbers them
//! 1, 2, 3, …, so an entry whose sequence number is not above the client's last applied one
//! is a retry of an operation that already took effect, and gets the recorded output instead
//! of being applied again — across crashes and snapshots, because the table is part of the
//! replicated state. A service whose state must decide for itself (the sharded key/value
//! group keeps a table per shard, and must not record "wrong group" answers) implements
//! [`Replicated`] directly, and proposes its own internal operations through
//! [`RsmCore::propose`] as well.

use crate::replica::{ApplyMsg, Proposal, Proposer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// A deterministic state machine replicated through the log.
pub trait StateMachine: Clone + Default + Debug + Serialize + DeserializeOwned + 'static {
    /// An operation clients submit; it travels in the log inside a [`Command`].
    type Op: Clone + Debug + PartialEq + Serialize + DeserializeOwned + 'static;
    /// What applying an operation answers; `Default` is what a stale duplicate gets (nobody waits
    /// for it).
    type Out: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + 'static;

    /// Applies one operation.
    fn apply(&mut self, op: &Self::Op) -> Self::Out;

    /// The output of a read-only operation from the current state without changing it, or
    /// `None` if `op` writes. Used only by the planted bug `local-reads`, so the default says
    /// every operation writes.
    fn read(&self, op: &Self::Op) -> Option<Self::Out> {
        let _ = op;
        None
    }

    /// Whether `op` is read-only, without computing its output: a replica that nobody waits
    /// on skips such an operation (a follower's Get). The default asks [`StateMachine::read`];
    /// a state machine whose reads copy values says so directly.
    fn is_read(&self, op: &Self::Op) -> bool {
        self.read(op).is_some()
    }
}

/// What goes into the log: who asked, which of their requests it is, and the operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command<Op> {
    /// The client's id, unique among clients.
    pub client: u64,
    /// The client's sequence number for this request: 1, 2, 3, … with one outstanding at a time.
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

/// A client's last applied request: its sequence number and output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastApplied<Out> {
    /// The sequence number of the client's last applied request.
    pub seq: u64,
    /// What that request answered, returned again to a retry of it.
    pub out: Out,
}

/// The state every replica holds: the state machine and the duplicate table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Rsm<SM: StateMachine> {
    /// The replicated state machine.
    pub sm: SM,
    /// The duplicate table: each client's last applied request, by client id.
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
    /// Only a retry of the client's latest request counts as a duplicate: an older request
    /// delayed in the network (a late duplicate) is applied again.
    pub latest_only_duplicates: bool,
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
        (
            "latest-only-duplicates",
            "only a retry of a client's latest request is a duplicate; an older delayed one applies again",
        ),
    ];

    /// The bugs with this `name` (one on), or `None` for a name not in [`RsmBugs::ALL`].
    pub fn from_name(name: &str) -> Option<Self> {
        let mut b = RsmBugs::default();
        match name {
            "no-duplicate-detection" => b.no_duplicate_detection = true,
            "dup-table-not-in-snapshot" => b.dup_table_not_in_snapshot = true,
            "local-reads" => b.local_reads = true,
            "reply-before-commit" => b.reply_before_commit = true,
            "latest-only-duplicates" => b.latest_only_duplicates = true,
            _ => return None,
        }
        Some(b)
    }
}

impl<SM: StateMachine> Rsm<SM> {
    /// Applies a log entry: a new write is applied and recorded, a new read
    /// ([`StateMachine::read`]) answered and not recorded; a retry of the client's last
    /// recorded request gets that request's output; an older one (a stale duplicate nobody waits
    /// for) changes nothing.
    pub fn apply(&mut self, cmd: &Command<SM::Op>, bugs: &RsmBugs) -> SM::Out {
        self.step(cmd, bugs, true).expect("an answered step has an output")
    }

    /// [`Rsm::apply`] when nobody waits for the output (a follower's copy of the entry): the
    /// same change of state, but a read is skipped and no output is computed.
    pub fn apply_unanswered(&mut self, cmd: &Command<SM::Op>, bugs: &RsmBugs) {
        self.step(cmd, bugs, false);
    }

    /// One entry; the output only when `answer` asks for it.
    fn step(&mut self, cmd: &Command<SM::Op>, bugs: &RsmBugs, answer: bool) -> Option<SM::Out> {
        if !bugs.no_duplicate_detection {
            if let Some(last) = self.last.get(&cmd.client) {
                if cmd.seq == last.seq {
                    return answer.then(|| last.out.clone());
                }
                if cmd.seq < last.seq && !bugs.latest_only_duplicates {
                    return answer.then(SM::Out::default);
                }
            }
        }
        // A read changes nothing, so a retry of it may run again: it is answered without
        // entering the table (keeping a value in the table would copy it into every snapshot).
        if !answer && self.sm.is_read(&cmd.op) {
            return None;
        }
        if let Some(out) = self.sm.read(&cmd.op) {
            return Some(out);
        }
        let out = self.sm.apply(&cmd.op);
        self.last.insert(cmd.client, LastApplied { seq: cmd.seq, out: out.clone() });
        Some(out)
    }

    /// The snapshot of this state.
    /// `size_hint`: the previous snapshot's size, so the buffer is allocated once.
    pub fn snapshot(&self, bugs: &RsmBugs, size_hint: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(size_hint + size_hint / 8 + 64);
        if bugs.dup_table_not_in_snapshot {
            let bare = Rsm::<SM> { sm: self.sm.clone(), last: BTreeMap::new() };
            crate::bytes::encode_into(&bare, &mut buf);
        } else {
            crate::bytes::encode_into(self, &mut buf);
        }
        buf
    }

    /// Restores from a snapshot made by [`Rsm::snapshot`].
    ///
    /// # Errors
    /// [`RsmError::MalformedSnapshot`] if the bytes are not such a snapshot.
    pub fn restore(bytes: &[u8]) -> Result<Self, RsmError> {
        postcard::from_bytes(bytes).map_err(|e| RsmError::MalformedSnapshot { len: bytes.len(), reason: e.to_string() })
    }
}

/// What a replica applies its log entries to: a state machine together with whatever
/// duplicate detection it does, and how it is saved in a snapshot. [`RsmCore`] is generic
/// over it.
pub trait Replicated: Clone + Debug + 'static {
    /// One log entry.
    type Entry: Debug + Serialize + DeserializeOwned + 'static;
    /// What applying an entry produced (the answer to whoever proposed it).
    type Out: Clone + Debug + PartialEq + 'static;

    /// Applies one committed entry, in log order.
    fn apply(&mut self, entry: &Self::Entry) -> Self::Out;

    /// [`Replicated::apply`] when nobody waits for the output: the same change of state; an
    /// implementation may skip computing the output (and a read altogether).
    fn apply_unanswered(&mut self, entry: &Self::Entry) {
        let _ = self.apply(entry);
    }

    /// The output of a read-only entry from the current state, or `None` if it writes (only
    /// the planted bug `local-reads` asks).
    fn read(&self, entry: &Self::Entry) -> Option<Self::Out> {
        let _ = entry;
        None
    }

    /// The state as snapshot bytes; `size_hint` is the previous snapshot's size, so the buffer
    /// is allocated once.
    fn snapshot(&self, size_hint: usize) -> Vec<u8>;

    /// Replaces the state with one saved by [`Replicated::snapshot`].
    ///
    /// # Errors
    /// [`RsmError::MalformedSnapshot`] when the bytes are not such a snapshot.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), RsmError>;
}

/// A [`StateMachine`] behind the global duplicate table ([`Rsm`]): the lab 3 server's
/// replicated state. Log entries are [`Command`]s; the duplicate-table bugs of `bugs` apply.
#[derive(Clone, Debug, Default)]
pub struct Deduplicated<SM: StateMachine> {
    /// The state machine with its duplicate table (the latest sequence number and reply of
    /// each client).
    pub rsm: Rsm<SM>,
    /// The planted duplicate-table bugs switched on (none in a correct run).
    pub bugs: RsmBugs,
}

impl<SM: StateMachine> Deduplicated<SM> {
    /// An empty state with planted bugs `bugs`.
    pub fn new(bugs: RsmBugs) -> Self {
        Deduplicated { rsm: Rsm::default(), bugs }
    }
}

impl<SM: StateMachine> Replicated for Deduplicated<SM> {
    type Entry = Command<SM::Op>;
    type Out = SM::Out;

    fn apply(&mut self, entry: &Command<SM::Op>) -> SM::Out {
        self.rsm.apply(entry, &self.bugs)
    }

    fn apply_unanswered(&mut self, entry: &Command<SM::Op>) {
        self.rsm.apply_unanswered(entry, &self.bugs)
    }

    fn read(&self, entry: &Command<SM::Op>) -> Option<SM::Out> {
        self.rsm.sm.read(&entry.op)
    }

    fn snapshot(&self, size_hint: usize) -> Vec<u8> {
        self.rsm.snapshot(&self.bugs, size_hint)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RsmError> {
        self.rsm = Rsm::restore(bytes)?;
        Ok(())
    }
}

/// What the replicated state machine cannot apply: bytes that are not what its own code wrote
/// (a bug in an engine or a service, never a client's doing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RsmError {
    /// A snapshot that does not decode as the replicated state.
    #[error("malformed state machine snapshot ({len} bytes): {reason}")]
    MalformedSnapshot {
        /// The snapshot's size, in bytes.
        len: usize,
        /// The decoder's complaint.
        reason: String,
    },
    /// A log entry that does not decode as a command.
    #[error("malformed command at index {index} ({len} bytes): {reason}")]
    MalformedCommand {
        /// The entry's log index.
        index: u64,
        /// The entry's command size, in bytes.
        len: usize,
        /// The decoder's complaint.
        reason: String,
    },
}

/// A clerk's request: who asks, which of their requests it is, and the operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClerkRequest<Op> {
    /// The client's id, unique among clients.
    pub client: u64,
    /// The client's sequence number for this request (1, 2, 3, …).
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

/// The server's answer to a clerk. The variants' order is their wire encoding: add new ones
/// at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClerkReply<Out> {
    /// The operation took effect (once) with this output.
    Ok(Out),
    /// This server cannot commit the request (it does not lead, or lost leadership, or a
    /// different entry took the request's place): try another server.
    WrongLeader,
    /// This replica group does not serve the key (lab 4's ErrWrongGroup): ask the controller
    /// for the current configuration.
    WrongGroup,
}

/// A request waiting for its proposal to apply.
#[derive(Clone, Debug)]
struct Pending<T> {
    reply_to: T,
    /// The proposed entry's bytes: the entry that lands at the index is this request's own
    /// exactly when its bytes are these (postcard encodes deterministically).
    entry: Vec<u8>,
    proposal: Proposal,
}

/// The replicated-state-machine server's decisions, as a pure core. The shell feeds it the
/// clerks' requests (and, for a service that has them, its own internal operations), the
/// engine's applies and every step's end; it proposes through the engine ([`Proposer`]) and
/// hands back the replies to send and the snapshots to take.
///
/// Rules (the course's lab 3 design):
/// - a request becomes a proposal (a log entry); its reply waits for that index to apply;
/// - when the index applies, the request gets the output if the entry is its own (the very
///   entry it proposed: for a clerk, the same client, sequence number and operation), "wrong
///   leader" if a different entry landed there;
/// - a request whose proposal can no longer land as proposed ([`Proposer::may_still_land`]:
///   leadership lost, term moved on) fails at once, so the clerk retries elsewhere promptly;
/// - a snapshot from the leader that covers a waiting index fails that request (its output
///   cannot be learnt here);
/// - once the engine's persisted state exceeds `max_state_bytes`, the service snapshots (the
///   course's `maxraftstate`), whatever duplicate detection the state does included.
///
/// An operation nobody waits for (a shard group's reconfiguration) is proposed the same way
/// with no reply address; its effect is learnt from the state when it applies.
///
/// Gets go through the log too, which makes them linearizable without any clock.
#[derive(Debug)]
pub struct RsmCore<R: Replicated, T> {
    state: R,
    /// Snapshot when the engine's persisted state exceeds this many bytes (`None`: never).
    max_state_bytes: Option<usize>,
    bugs: RsmBugs,
    /// Requests waiting for their log index to apply, by index.
    pending: BTreeMap<u64, Pending<T>>,
    last_applied: u64,
    /// The size of the last snapshot, so the next one allocates once.
    last_snapshot_len: usize,
    /// Replies decided and not yet taken by the shell, in order.
    replies: Vec<(T, ClerkReply<R::Out>)>,
}

impl<SM: StateMachine, T> RsmCore<Deduplicated<SM>, T> {
    /// A lab 3 server: an empty `SM` behind the duplicate table, snapshotting past
    /// `max_state_bytes`, with planted bugs `bugs`.
    pub fn new(max_state_bytes: Option<usize>, bugs: RsmBugs) -> Self {
        RsmCore::with_state(Deduplicated::new(bugs), max_state_bytes, bugs)
    }

    /// A clerk's request: proposed through `engine`, answered when it applies (or at once if
    /// the engine refuses it).
    pub fn on_request(&mut self, engine: &mut dyn Proposer, request: ClerkRequest<SM::Op>, reply_to: T) {
        let command = Command { client: request.client, seq: request.seq, op: request.op };
        self.propose(engine, command, Some(reply_to));
    }
}

impl<R: Replicated, T> RsmCore<R, T> {
    /// A server whose replicated state starts as `state`. Of `bugs`, the server's own apply
    /// here (`local-reads`, `reply-before-commit`); the duplicate-table bugs belong to the
    /// state ([`Deduplicated`]).
    pub fn with_state(state: R, max_state_bytes: Option<usize>, bugs: RsmBugs) -> Self {
        RsmCore {
            state,
            max_state_bytes,
            bugs,
            pending: BTreeMap::new(),
            last_applied: 0,
            last_snapshot_len: 0,
            replies: Vec::new(),
        }
    }

    /// Loads the persisted snapshot at boot (empty: nothing to load).
    ///
    /// # Errors
    /// [`RsmError::MalformedSnapshot`].
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), RsmError> {
        if !snapshot.is_empty() {
            self.state.restore(snapshot)?;
        }
        Ok(())
    }

    /// The replica's state (tests, checks, and the pure decisions of a service above).
    pub fn state(&self) -> &R {
        &self.state
    }

    /// The highest log index applied.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// How many requests wait for their entry to apply.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// The replies decided since the last call, in the order they were decided.
    pub fn take_replies(&mut self) -> Vec<(T, ClerkReply<R::Out>)> {
        std::mem::take(&mut self.replies)
    }

    /// Proposes `entry` through `engine`. With `reply_to`, the answer is decided when the
    /// entry applies (or at once: "wrong leader" if the engine refuses it); without, nobody
    /// waits and a refusal is simply dropped (the proposer will try again, as a shard group's
    /// internal operations do on their next poll).
    pub fn propose(&mut self, engine: &mut dyn Proposer, entry: R::Entry, reply_to: Option<T>) {
        let reply_to = match reply_to {
            Some(to) if self.bugs.local_reads && engine.get_state().1 => match self.state.read(&entry) {
                Some(out) => {
                    self.replies.push((to, ClerkReply::Ok(out)));
                    return;
                }
                None => Some(to),
            },
            other => other,
        };
        let bytes = encode(&entry);
        let Some(reply_to) = reply_to else {
            let _ = engine.start(bytes);
            return;
        };
        let Some(proposal) = engine.start(bytes.clone()) else {
            self.replies.push((reply_to, ClerkReply::WrongLeader));
            return;
        };
        if self.bugs.reply_before_commit {
            // Answer from a copy of the state as if the entry had applied.
            let out = self.state.clone().apply(&entry);
            self.replies.push((reply_to, ClerkReply::Ok(out)));
            return;
        }
        let waiting = Pending { reply_to, entry: bytes, proposal };
        // A request already waiting at this index was for an entry that was overwritten.
        if let Some(old) = self.pending.insert(proposal.index, waiting) {
            self.replies.push((old.reply_to, ClerkReply::WrongLeader));
        }
    }

    /// One applied message, in order. Returns the snapshot to hand the engine at this
    /// message's index, when the engine's persisted state (`state_bytes`, asked only when a
    /// limit is set) has grown past the limit.
    ///
    /// # Errors
    /// [`RsmError`] for a command or snapshot that does not decode.
    ///
    /// # Panics
    /// If a command's index is not above the last applied one: the engine must apply in log order.
    pub fn on_apply(
        &mut self,
        msg: &ApplyMsg,
        state_bytes: impl FnOnce() -> usize,
    ) -> Result<Option<Vec<u8>>, RsmError> {
        self.apply_message(msg, state_bytes, None::<fn(&R, Option<&R::Out>)>)
    }

    /// [`RsmCore::on_apply`], and `seen` is shown the state right after the message took
    /// effect with the entry's output (`None` for a snapshot, which replaced the state): for
    /// a service that reports its state to observers.
    ///
    /// # Errors
    /// As [`RsmCore::on_apply`].
    pub fn on_apply_seen(
        &mut self,
        msg: &ApplyMsg,
        state_bytes: impl FnOnce() -> usize,
        seen: impl FnOnce(&R, Option<&R::Out>),
    ) -> Result<Option<Vec<u8>>, RsmError> {
        self.apply_message(msg, state_bytes, Some(seen))
    }

    /// [`RsmCore::on_apply_seen`], with `seen` optional: without it, an entry nobody here
    /// waits for is applied without its output ([`Replicated::apply_unanswered`]).
    fn apply_message(
        &mut self,
        msg: &ApplyMsg,
        state_bytes: impl FnOnce() -> usize,
        seen: Option<impl FnOnce(&R, Option<&R::Out>)>,
    ) -> Result<Option<Vec<u8>>, RsmError> {
        match msg {
            ApplyMsg::Command { index, command, .. } if command.is_empty() => {
                // An engine's no-op (a Paxos log fills a hole with one; no service proposes
                // empty bytes): it changes nothing, and a request waiting there lost its slot.
                assert!(*index > self.last_applied, "applied {index} after {}", self.last_applied);
                self.last_applied = *index;
                if let Some(p) = self.pending.remove(index) {
                    self.replies.push((p.reply_to, ClerkReply::WrongLeader));
                }
                Ok(None)
            }
            ApplyMsg::Command { index, command, .. } => {
                assert!(*index > self.last_applied, "applied {index} after {}", self.last_applied);
                let entry: R::Entry = postcard::from_bytes(command).map_err(|e| RsmError::MalformedCommand {
                    index: *index,
                    len: command.len(),
                    reason: e.to_string(),
                })?;
                // Only a request waiting here for this very entry, or an observer, reads the
                // output: a follower does not copy out the value of every Get it applies.
                let own = self.pending.get(index).is_some_and(|p| p.entry == *command);
                let out = if own || seen.is_some() {
                    Some(self.state.apply(&entry))
                } else {
                    self.state.apply_unanswered(&entry);
                    None
                };
                self.last_applied = *index;
                if let Some(seen) = seen {
                    seen(&self.state, out.as_ref());
                }
                if let Some(p) = self.pending.remove(index) {
                    let reply = match out {
                        Some(out) if own => ClerkReply::Ok(out),
                        _ => ClerkReply::WrongLeader,
                    };
                    self.replies.push((p.reply_to, reply));
                }
                Ok(match self.max_state_bytes {
                    Some(max) if state_bytes() > max => {
                        let snapshot = self.state.snapshot(self.last_snapshot_len);
                        self.last_snapshot_len = snapshot.len();
                        Some(snapshot)
                    }
                    _ => None,
                })
            }
            ApplyMsg::Snapshot { index, data, .. } => {
                self.state.restore(data)?;
                self.last_applied = *index;
                if let Some(seen) = seen {
                    seen(&self.state, None);
                }
                // Requests waiting at indexes the snapshot covers cannot learn their result here.
                let upto = *index;
                self.fail_waiting(|i, _| i > upto);
                Ok(None)
            }
        }
    }

    /// The end of every engine step: requests whose proposals can no longer land as proposed
    /// fail, so their clerks retry elsewhere.
    pub fn after_step(&mut self, engine: &dyn Proposer) {
        if self.pending.is_empty() {
            return;
        }
        self.fail_waiting(|_, p| engine.may_still_land(&p.proposal));
    }

    /// Fails every waiting request that `keep` rejects, in index order.
    fn fail_waiting(&mut self, keep: impl Fn(u64, &Pending<T>) -> bool) {
        let gone: Vec<u64> = self.pending.iter().filter(|(i, p)| !keep(**i, p)).map(|(i, _)| *i).collect();
        for i in gone {
            let p = self.pending.remove(&i).expect("listed above");
            self.replies.push((p.reply_to, ClerkReply::WrongLeader));
        }
    }
}

fn encode<V: Serialize>(value: &V) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    crate::bytes::encode_into(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{value_digest, Kv, KvOp, KvResult};

    fn append(client: u64, seq: u64, v: &str) -> Command<KvOp> {
        Command { client, seq, op: KvOp::Append { key: "k".into(), value: v.into() } }
    }

    #[test]
    fn an_unanswered_entry_changes_the_state_as_an_answered_one_does() {
        // Writes, reads, retries of the latest request and stale duplicates, under every
        // duplicate-table bug: a follower's copy (no output) must end in the leader's state.
        let get = |client, seq| Command { client, seq, op: KvOp::Get { key: "k".into() } };
        let put = |client, seq, v: &str| Command { client, seq, op: KvOp::Put { key: "j".into(), value: v.into() } };
        let entries = [
            append(1, 1, "a"),
            get(2, 1),
            append(1, 1, "a"),
            put(2, 2, "x"),
            append(1, 2, "b"),
            get(1, 3),
            append(1, 1, "a"),
            put(2, 2, "x"),
            get(2, 3),
            append(2, 4, "c"),
        ];
        for bugs in [
            RsmBugs::default(),
            RsmBugs { no_duplicate_detection: true, ..RsmBugs::default() },
            RsmBugs { latest_only_duplicates: true, ..RsmBugs::default() },
        ] {
            let (mut leader, mut follower) = (Rsm::<Kv>::default(), Rsm::<Kv>::default());
            for e in &entries {
                leader.apply(e, &bugs);
                follower.apply_unanswered(e, &bugs);
                assert_eq!(leader.snapshot(&bugs, 0), follower.snapshot(&bugs, 0), "after {e:?} with {bugs:?}");
            }
        }
        assert!(Kv::default().is_read(&KvOp::Get { key: "k".into() }));
        assert!(!Kv::default().is_read(&KvOp::Put { key: "k".into(), value: "v".into() }));
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
        assert_eq!(r.sm.get("k").unwrap(), "abc");
        let get = Command { client: 3, seq: 1, op: KvOp::Get { key: "k".into() } };
        assert_eq!(r.apply(&get, &ok), KvResult::Value("abc".into()));
        assert!(!r.last.contains_key(&3), "a read is not recorded");
        r.apply(&append(2, 2, "d"), &ok);
        assert_eq!(
            r.apply(&get, &ok),
            KvResult::Value("abcd".into()),
            "a retried Get reads again (its client still waits, so this is linearizable)"
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
        assert_eq!(back.sm.get("k").unwrap(), "a");

        let bug = RsmBugs::from_name("dup-table-not-in-snapshot").unwrap();
        let mut lost = Rsm::<Kv>::restore(&r.snapshot(&bug, 0)).unwrap();
        lost.apply(&append(1, 1, "a"), &bug);
        assert_eq!(lost.sm.get("k").unwrap(), "aa");

        let nodup = RsmBugs::from_name("no-duplicate-detection").unwrap();
        let mut twice = Rsm::<Kv>::default();
        twice.apply(&append(1, 1, "a"), &nodup);
        twice.apply(&append(1, 1, "a"), &nodup);
        assert_eq!(twice.sm.get("k").unwrap(), "aa");
        assert!(Rsm::<Kv>::restore(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn bug_names_round_trip() {
        for (name, _) in RsmBugs::ALL {
            assert_ne!(RsmBugs::from_name(name), Some(RsmBugs::default()), "{name}");
        }
        assert_eq!(RsmBugs::from_name("nope"), None);
    }

    /// An engine the tests steer: it leads in `term` while `leader`, and numbers proposals
    /// from `next_index`.
    struct FakeEngine {
        term: u64,
        leader: bool,
        next_index: u64,
        started: Vec<Vec<u8>>,
    }

    impl FakeEngine {
        fn leading(term: u64) -> Self {
            FakeEngine { term, leader: true, next_index: 1, started: Vec::new() }
        }
    }

    impl Proposer for FakeEngine {
        fn start(&mut self, command: Vec<u8>) -> Option<Proposal> {
            if !self.leader {
                return None;
            }
            self.started.push(command);
            let index = self.next_index;
            self.next_index += 1;
            Some(Proposal { index, term: self.term })
        }
        fn get_state(&self) -> (u64, bool) {
            (self.term, self.leader)
        }
        fn may_still_land(&self, p: &Proposal) -> bool {
            self.leader && p.term == self.term
        }
    }

    type Server = RsmCore<Deduplicated<Kv>, &'static str>;

    fn req(client: u64, seq: u64, op: KvOp) -> ClerkRequest<KvOp> {
        ClerkRequest { client, seq, op }
    }

    fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put { key: key.into(), value: value.into() }
    }

    fn entry(index: u64, client: u64, seq: u64, op: KvOp) -> ApplyMsg {
        ApplyMsg::Command { index, term: 1, command: encode(&Command { client, seq, op }) }
    }

    fn no_size() -> usize {
        panic!("the state size is asked only when a limit is set")
    }

    #[test]
    fn a_request_is_answered_when_its_own_entry_applies() {
        let mut s = Server::new(None, RsmBugs::default());
        let mut e = FakeEngine::leading(1);
        s.on_request(&mut e, req(7, 1, put("k", "v")), "a");
        assert_eq!(e.started.len(), 1);
        assert!(s.take_replies().is_empty(), "nothing is answered before the entry applies");
        assert_eq!(s.waiting(), 1);
        let msg = ApplyMsg::Command { index: 1, term: 1, command: e.started[0].clone() };
        assert_eq!(s.on_apply(&msg, no_size).unwrap(), None);
        assert_eq!(s.take_replies(), vec![("a", ClerkReply::Ok(KvResult::Wrote { prev_len: 0, prev_digest: 0 }))]);
        assert_eq!(s.state().rsm.sm.get("k").unwrap(), "v");
        assert_eq!(s.last_applied(), 1);
    }

    #[test]
    fn a_different_entry_at_the_requests_index_means_leadership_was_lost() {
        let mut s = Server::new(None, RsmBugs::default());
        let mut e = FakeEngine::leading(1);
        s.on_request(&mut e, req(7, 1, put("k", "mine")), "a");
        // Another leader's entry took index 1.
        s.on_apply(&entry(1, 9, 1, put("k", "theirs")), no_size).unwrap();
        assert_eq!(s.take_replies(), vec![("a", ClerkReply::WrongLeader)]);
        assert_eq!(s.state().rsm.sm.get("k").unwrap(), "theirs");
        // The same client and a different sequence number is a different entry too.
        s.on_request(&mut e, req(7, 2, put("k", "x")), "b");
        s.on_apply(&entry(2, 7, 1, put("k", "mine")), no_size).unwrap();
        assert_eq!(s.take_replies(), vec![("b", ClerkReply::WrongLeader)]);
    }

    #[test]
    fn a_term_change_or_lost_leadership_fails_waiting_requests() {
        let mut s = Server::new(None, RsmBugs::default());
        let mut e = FakeEngine::leading(3);
        s.on_request(&mut e, req(1, 1, put("a", "1")), "a");
        s.on_request(&mut e, req(2, 1, put("b", "1")), "b");
        s.after_step(&e);
        assert!(s.take_replies().is_empty(), "still leader of the same term: keep waiting");
        e.term = 4; // re-elected in a new term: the old term's proposals may never commit as made
        s.after_step(&e);
        assert_eq!(s.take_replies(), vec![("a", ClerkReply::WrongLeader), ("b", ClerkReply::WrongLeader)]);
        assert_eq!(s.waiting(), 0);
        s.on_request(&mut e, req(3, 1, put("c", "1")), "c");
        e.leader = false;
        s.after_step(&e);
        assert_eq!(s.take_replies(), vec![("c", ClerkReply::WrongLeader)]);
        // A follower refuses at once.
        s.on_request(&mut e, req(4, 1, put("d", "1")), "d");
        assert_eq!(s.take_replies(), vec![("d", ClerkReply::WrongLeader)]);
    }

    #[test]
    fn a_snapshot_covering_waiting_requests_fails_them_and_keeps_later_ones() {
        let mut s = Server::new(None, RsmBugs::default());
        let mut e = FakeEngine::leading(1);
        for (i, who) in ["a", "b", "c"].into_iter().enumerate() {
            s.on_request(&mut e, req(i as u64 + 1, 1, put(who, "1")), who);
        }
        let mut donor = Rsm::<Kv>::default();
        donor.apply(&Command { client: 9, seq: 1, op: put("z", "snap") }, &RsmBugs::default());
        let snap = ApplyMsg::Snapshot { index: 2, term: 1, data: donor.snapshot(&RsmBugs::default(), 0) };
        assert_eq!(s.on_apply(&snap, no_size).unwrap(), None);
        assert_eq!(s.take_replies(), vec![("a", ClerkReply::WrongLeader), ("b", ClerkReply::WrongLeader)]);
        assert_eq!(s.waiting(), 1, "index 3 is past the snapshot and still waits");
        assert_eq!(s.state().rsm.sm.get("z").unwrap(), "snap");
        assert_eq!(s.last_applied(), 2);
    }

    #[test]
    fn a_retried_request_after_its_entry_applied_gets_the_first_output() {
        let mut s = Server::new(None, RsmBugs::default());
        let mut e = FakeEngine::leading(1);
        let append = KvOp::Append { key: "k".into(), value: "x".into() };
        s.on_request(&mut e, req(5, 1, append.clone()), "first");
        s.on_apply(&ApplyMsg::Command { index: 1, term: 1, command: e.started[0].clone() }, no_size).unwrap();
        let first = s.take_replies();
        // The reply was lost; the clerk retries the same (client, seq).
        s.on_request(&mut e, req(5, 1, append), "retry");
        s.on_apply(&ApplyMsg::Command { index: 2, term: 1, command: e.started[1].clone() }, no_size).unwrap();
        let retry = s.take_replies();
        assert_eq!(first[0].1, retry[0].1, "the retry gets the output the operation had");
        assert_eq!(s.state().rsm.sm.get("k").unwrap(), "x", "and takes effect once");
    }

    #[test]
    fn snapshots_are_taken_past_the_state_size_limit_only() {
        let mut s = Server::new(Some(100), RsmBugs::default());
        assert_eq!(s.on_apply(&entry(1, 1, 1, put("k", "v")), || 100).unwrap(), None, "at the limit: not yet");
        let snap = s.on_apply(&entry(2, 1, 2, put("k", "w")), || 101).unwrap().expect("past the limit");
        let back = Rsm::<Kv>::restore(&snap).unwrap();
        assert_eq!(back.sm.get("k").unwrap(), "w");
        assert_eq!(back.last[&1].seq, 2, "the duplicate table is in the snapshot");
        let mut never = Server::new(None, RsmBugs::default());
        assert_eq!(never.on_apply(&entry(1, 1, 1, put("k", "v")), no_size).unwrap(), None);
    }

    #[test]
    fn a_second_request_at_the_same_index_replaces_the_first() {
        // Re-elected leaders may hand out an index again after their entry there was lost.
        let mut s = Server::new(None, RsmBugs::default());
        let mut e = FakeEngine::leading(1);
        s.on_request(&mut e, req(1, 1, put("a", "1")), "a");
        e.next_index = 1;
        s.on_request(&mut e, req(2, 1, put("b", "1")), "b");
        assert_eq!(s.take_replies(), vec![("a", ClerkReply::WrongLeader)]);
        assert_eq!(s.waiting(), 1);
    }

    #[test]
    fn planted_bugs_answer_without_the_log() {
        let get = KvOp::Get { key: "k".into() };
        let mut e = FakeEngine::leading(1);
        let mut s = Server::new(None, RsmBugs::from_name("local-reads").unwrap());
        s.on_request(&mut e, req(1, 1, get.clone()), "read");
        assert_eq!(s.take_replies(), vec![("read", ClerkReply::Ok(KvResult::Value(String::new())))]);
        assert!(e.started.is_empty(), "a local read skips the log");
        let mut s = Server::new(None, RsmBugs::from_name("reply-before-commit").unwrap());
        s.on_request(&mut e, req(1, 1, put("k", "v")), "early");
        assert_eq!(s.take_replies().len(), 1, "answered on append, before commit");
        assert_eq!(s.waiting(), 0);
        assert!(s.state().rsm.sm.is_empty(), "the state itself is untouched until the entry applies");
    }

    /// A state that detects duplicates itself and has an operation of its own: a running sum
    /// that remembers each client's last added sequence number, and refuses (without
    /// recording) additions above a cap — as a shard group answers "wrong group" and leaves
    /// no record.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Tally {
        sum: u64,
        cap: u64,
        last: BTreeMap<u64, u64>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum TallyEntry {
        Add {
            client: u64,
            seq: u64,
            n: u64,
        },
        /// The service's own operation: raise the cap.
        Raise {
            cap: u64,
        },
    }

    impl Replicated for Tally {
        type Entry = TallyEntry;
        type Out = Option<u64>;
        fn apply(&mut self, entry: &TallyEntry) -> Option<u64> {
            match *entry {
                TallyEntry::Add { client, seq, n } => {
                    if self.last.get(&client).is_some_and(|&s| s >= seq) {
                        return Some(self.sum);
                    }
                    if self.sum + n > self.cap {
                        return None;
                    }
                    self.sum += n;
                    self.last.insert(client, seq);
                    Some(self.sum)
                }
                TallyEntry::Raise { cap } => {
                    self.cap = self.cap.max(cap);
                    Some(self.cap)
                }
            }
        }
        fn snapshot(&self, _size_hint: usize) -> Vec<u8> {
            encode(self)
        }
        fn restore(&mut self, bytes: &[u8]) -> Result<(), RsmError> {
            *self = postcard::from_bytes(bytes)
                .map_err(|e| RsmError::MalformedSnapshot { len: bytes.len(), reason: e.to_string() })?;
            Ok(())
        }
    }

    fn applied(index: u64, e: &FakeEngine) -> ApplyMsg {
        ApplyMsg::Command { index, term: 1, command: e.started[index as usize - 1].clone() }
    }

    #[test]
    fn a_state_with_its_own_duplicate_detection_and_internal_operations() {
        let mut s = RsmCore::<Tally, &'static str>::with_state(Tally::default(), None, RsmBugs::default());
        let mut e = FakeEngine::leading(1);
        // Refused by the state (over the cap): answered, and nothing recorded.
        s.propose(&mut e, TallyEntry::Add { client: 1, seq: 1, n: 5 }, Some("first"));
        s.on_apply(&applied(1, &e), no_size).unwrap();
        assert_eq!(s.take_replies(), vec![("first", ClerkReply::Ok(None))]);
        // An internal operation nobody waits for: proposed, applied, no reply.
        s.propose(&mut e, TallyEntry::Raise { cap: 10 }, None);
        assert_eq!(s.waiting(), 0, "nobody waits for it");
        let mut outs = Vec::new();
        s.on_apply_seen(&applied(2, &e), no_size, |st, out| outs.push((st.cap, out.cloned()))).unwrap();
        assert!(s.take_replies().is_empty());
        assert_eq!(outs, vec![(10, Some(Some(10)))], "the service sees the state and the output");
        // The retry of the refused request now takes effect, once.
        s.propose(&mut e, TallyEntry::Add { client: 1, seq: 1, n: 5 }, Some("retry"));
        s.propose(&mut e, TallyEntry::Add { client: 1, seq: 1, n: 5 }, Some("again"));
        s.on_apply(&applied(3, &e), no_size).unwrap();
        s.on_apply(&applied(4, &e), no_size).unwrap();
        assert_eq!(s.take_replies(), vec![("retry", ClerkReply::Ok(Some(5))), ("again", ClerkReply::Ok(Some(5)))]);
        assert_eq!(s.state().sum, 5);
        // A waited-for internal operation, and another entry landing in its place.
        s.propose(&mut e, TallyEntry::Raise { cap: 20 }, Some("raise"));
        let other = ApplyMsg::Command { index: 5, term: 2, command: encode(&TallyEntry::Raise { cap: 30 }) };
        s.on_apply(&other, no_size).unwrap();
        assert_eq!(s.take_replies(), vec![("raise", ClerkReply::WrongLeader)], "not the entry it proposed");
        assert_eq!(s.state().cap, 30);
        // A follower drops an unwaited proposal silently and refuses a waited one.
        e.leader = false;
        s.propose(&mut e, TallyEntry::Raise { cap: 40 }, None);
        s.propose(&mut e, TallyEntry::Raise { cap: 40 }, Some("follower"));
        assert_eq!(s.take_replies(), vec![("follower", ClerkReply::WrongLeader)]);
        // A snapshot replaces the state; the service is shown it with no output.
        let snap =
            ApplyMsg::Snapshot { index: 9, term: 2, data: encode(&Tally { sum: 1, cap: 2, last: BTreeMap::new() }) };
        let mut seen = None;
        s.on_apply_seen(&snap, no_size, |st, out| seen = Some((st.sum, out.is_none()))).unwrap();
        assert_eq!(seen, Some((1, true)));
        assert_eq!(s.last_applied(), 9);
    }
}
