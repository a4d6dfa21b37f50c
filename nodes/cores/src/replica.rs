//! The replication seam: one interface, [`ReplicaCore`], for a replication engine written as a
//! pure state machine, and the neutral types that cross it.
//!
//! Everything above an engine speaks to this trait: the actor shell that runs a core on the
//! simulated world (`nodes::replica`), the replicated-state-machine layer ([`crate::rsm`]), both
//! course testers and the runtime-free property-test world. Raft implements it
//! ([`crate::raft::Raft`]); a second engine (Paxos, a user's Raft, a test's deliberately broken
//! log) plugs in by implementing it too.
//!
//! The shape is etcd raft's `Step`/`Tick`/`Ready` and the 6.824 API: inputs carry the current
//! simulated time; outputs accumulate in a [`Ready`] that the shell carries out in field order
//! (persist, then send, then apply); `get_state()` and `start()` are the course's `GetState` and
//! `Start`. Nothing here names Raft: an engine's wire messages and persisted image are
//! associated types, and what the safety checkers see is the neutral [`Observation`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::rc::Rc;

/// A command accepted by an engine: where it may land in the log and the engine's epoch (Raft's
/// term) when it was accepted — the course's `Start` returns exactly these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The log index (Paxos: the instance) at which the command will appear if it commits.
    pub index: u64,
    /// The proposer's term (or ballot epoch) when it accepted the command.
    pub term: u64,
}

/// A message for the service, in the order the engine applies them (the course's ApplyMsg).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyMsg {
    /// The committed command at `index`, of term `term`.
    Command {
        /// The command's log index (Raft: 1-based).
        index: u64,
        /// The term in which the command entered the log.
        term: u64,
        // One block of bytes: postcard writes the same bytes as a sequence of u8, at once.
        /// The command's bytes, as the service proposed them.
        #[serde(with = "serde_bytes")]
        command: Vec<u8>,
    },
    /// Replace the service state with `data`, which covers every entry up to `index`.
    Snapshot {
        /// The last log index the snapshot covers.
        index: u64,
        /// The term of the entry at `index`.
        term: u64,
        /// The service's snapshot bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

impl ApplyMsg {
    /// The log index this message brings the service up to.
    pub fn index(&self) -> u64 {
        match self {
            ApplyMsg::Command { index, .. } | ApplyMsg::Snapshot { index, .. } => *index,
        }
    }
}

/// A persisted replicated state, as shared byte parts whose concatenation is its encoding: a
/// save may keep unchanged parts shared, so it costs what changed (see `raft/image.rs`).
pub trait PersistedImage: Clone + Debug {
    /// The parts, in order; their concatenation is the state's bytes.
    fn parts(&self) -> Vec<Rc<dyn AsRef<[u8]>>>;
    /// The state's bytes, in one piece.
    fn to_bytes(&self) -> Vec<u8>;
    /// The state's length in bytes.
    fn len(&self) -> usize;
    /// Whether the state is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Plain bytes are a state image of one part (for engines with small states).
impl PersistedImage for Vec<u8> {
    fn parts(&self) -> Vec<Rc<dyn AsRef<[u8]>>> {
        vec![Rc::new(self.clone())]
    }
    fn to_bytes(&self) -> Vec<u8> {
        self.clone()
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// One atomic save (the course's `Persister.Save(state, snapshot)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist<I> {
    /// The engine's replicated state; replaces the stored one.
    pub state: I,
    /// The new snapshot when it changed; `None` keeps the stored snapshot as it is. Shared
    /// with the engine, which keeps it to send to lagging peers.
    pub snapshot: Option<std::rc::Rc<Vec<u8>>>,
}

/// A request to send to peer `to` (an index into the cluster's peers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing<R> {
    /// The peer's index in the cluster (0-based).
    pub to: usize,
    /// The request.
    pub request: R,
}

/// Everything an input produced, for the shell to carry out in field order: persist, then
/// send, then apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready<R, I> {
    /// Save this before anything else leaves the peer (replies included): a vote or an
    /// acknowledged entry must survive a crash.
    pub persist: Option<Persist<I>>,
    /// Requests to send once `persist` is durable.
    pub messages: Vec<Outgoing<R>>,
    /// Messages for the service, in order, after the messages are sent.
    pub applies: Vec<ApplyMsg>,
    /// For observers only: the lowest log index written since the last `take_ready` and still
    /// in the log; entries from there to the last index are new or replaced. A shell may
    /// ignore it (persistence is covered by `persist`).
    pub log_written_from: Option<u64>,
}

impl<R, I> Default for Ready<R, I> {
    fn default() -> Self {
        Ready { persist: None, messages: Vec::new(), applies: Vec::new(), log_written_from: None }
    }
}

impl<R, I> Ready<R, I> {
    /// Whether the input produced nothing to carry out.
    pub fn is_empty(&self) -> bool {
        self.persist.is_none() && self.messages.is_empty() && self.applies.is_empty() && self.log_written_from.is_none()
    }
}

/// Why a core could not be rebuilt from what it persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError(pub String);

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot restore persisted state: {}", self.0)
    }
}

impl std::error::Error for RestoreError {}

/// What a safety checker sees of one replica: changes since the previous observation, in
/// the vocabulary of a replicated log (Raft §5; a Paxos log of instances reports the subset it
/// has). Produced by [`ReplicaCore::observe`] after every step, by the shell and the
/// property-test world alike, and by the shell for applies and restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation<'a> {
    /// A new instance of the node starts, its state machine at `snapshot_index` (`None`: the
    /// engine does not say, as a course-shaped node does not; applies resume wherever they do).
    Restart {
        /// The snapshot the instance restored, if the engine says.
        snapshot_index: Option<u64>,
    },
    /// The node's term or role changed. `role_code` and `role` name the role for traces
    /// (Raft: 0 follower, 1 candidate, 2 leader).
    Role {
        /// The node's current term.
        term: u64,
        /// Whether it now leads (Raft §5.2: at most one leader per term).
        leader: bool,
        /// The role as a number, for the trace.
        role_code: u64,
        /// The role's name, for the trace.
        role: &'static str,
    },
    /// The node's snapshot now covers the log up to `index`, whose entry had term `term`.
    Snapshot {
        /// The last log index the snapshot covers.
        index: u64,
        /// The term of the entry at `index`.
        term: u64,
    },
    /// The log from `first` on is now `entries` (term, command); anything after them is gone.
    Entries {
        /// The log index of the first entry given.
        first: u64,
        /// (term, command bytes) of each entry from `first` on.
        entries: Vec<(u64, &'a [u8])>,
    },
    /// The log now ends at `last`.
    LogEnd {
        /// The last log index (the snapshot's when no entry follows it).
        last: u64,
    },
    /// The leader's match index for each server is now `indexes[server]` (its own slot: its
    /// last log index). Reported while it leads, whenever one of them changes.
    Match {
        /// The match index per server, indexed by server id.
        indexes: Vec<u64>,
    },
    /// The node's commit index is now `index`.
    Commit {
        /// The new commit index.
        index: u64,
    },
    /// The node applied the command at `index`.
    Apply {
        /// The log index applied.
        index: u64,
        /// The command's bytes.
        command: &'a [u8],
    },
    /// The node's service installed a snapshot covering everything up to `index`.
    ApplySnapshot {
        /// The last log index the snapshot covers.
        index: u64,
    },
}

/// What an observer was last told about a node, so [`ReplicaCore::observe`] reports changes
/// only. A fresh instance starts from [`Observed::restarted`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Nothing was observed of this instance yet: the next observation starts with
    /// [`Observation::Restart`].
    pub fresh: bool,
    /// The term last reported.
    pub term: u64,
    /// The role code last reported (see [`Observation::Role`]).
    pub role_code: u64,
    /// Whether the node was last reported leading.
    pub leader: bool,
    /// The commit index last reported.
    pub commit_index: u64,
    /// The snapshot index last reported.
    pub snapshot_index: u64,
    /// The last log index last reported.
    pub last_log_index: u64,
    /// A digest of the match indexes last reported (0: none, not leading).
    pub match_digest: u64,
}

impl Observed {
    /// Before a new instance's first observation: it is announced ([`Observation::Restart`])
    /// and everything it restored is reported (its snapshot and whole log, when observed with
    /// `log_written_from = Some(1)`), since the previous instance may have saved more than it
    /// reported before it crashed.
    pub fn restarted() -> Observed {
        Observed {
            fresh: true,
            term: 0,
            role_code: 0,
            leader: false,
            commit_index: 0,
            snapshot_index: u64::MAX,
            last_log_index: 0,
            match_digest: 0,
        }
    }
}

/// The engine's side of the service API, object-safe so a service (and the pure RSM core) can
/// drive any engine: the course's `Start` and `GetState`, and whether a proposal can still
/// commit as proposed.
pub trait Proposer {
    /// The course's `Start(command)`: the proposal if this replica accepted the command (it
    /// believes it leads), `None` otherwise.
    fn start(&mut self, command: Vec<u8>) -> Option<Proposal>;
    /// The course's `GetState()`: (current term, believes it is the leader).
    fn get_state(&self) -> (u64, bool);
    /// False once this replica can no longer see `proposal` commit as proposed (Raft: it lost
    /// leadership or its term moved on), so whoever waits for it should stop waiting. True is
    /// no promise that it will commit.
    fn may_still_land(&self, proposal: &Proposal) -> bool;
    /// True for an engine with no leader, where every replica may propose at any time
    /// (Paxos): a service that acts only where [`Proposer::get_state`] says "leader" (the
    /// sharded servers' polling of the controller) acts on every replica instead, as every
    /// server of the old labs polled (reference `6824-old-labs.md` §7.1). False by default.
    fn leaderless(&self) -> bool {
        false
    }
}

/// A replication engine as a pure state machine (the seam every layer above an engine uses).
///
/// # The driver's contract
/// 1. Build with [`ReplicaCore::boot`] from the persisted state and snapshot (both empty at
///    first boot).
/// 2. Feed every input with the current simulated time: [`ReplicaCore::tick`] when
///    [`ReplicaCore::next_deadline_ms`] is reached; each incoming request to
///    [`ReplicaCore::handle_request`] (its reply is returned at once, to be released after the
///    next persist); each reply to [`ReplicaCore::handle_reply`]; each failed call to
///    [`ReplicaCore::handle_call_failed`] with [`ReplicaCore::call_context`] of the request;
///    the service's `Start` to [`ReplicaCore::propose`] and `Snapshot` to
///    [`ReplicaCore::snapshot`].
/// 3. After every input, [`ReplicaCore::take_ready`] and carry it out in order: save `persist`
///    atomically; only then release the reply and send `messages`; then deliver `applies`.
/// 4. Sleep until [`ReplicaCore::next_deadline_ms`] or the next message; never poll.
pub trait ReplicaCore: Sized + 'static {
    /// Engine-wide settings (timeouts, planted bugs); a node's identity comes separately.
    type Config: Clone + Debug + 'static;
    /// Whether the engine has no leader: every replica may propose at any time
    /// ([`Proposer::leaderless`]). False by default (Raft).
    const LEADERLESS: bool = false;
    /// A request between peers.
    type Request: Clone + Debug + Serialize + DeserializeOwned + 'static;
    /// The reply to a [`ReplicaCore::Request`].
    type Reply: Clone + Debug + Serialize + DeserializeOwned + 'static;
    /// What the caller must keep of a request to report its failure.
    type CallContext: Clone + Copy + Debug + 'static;
    /// The persisted replicated state.
    type Image: PersistedImage + 'static;

    /// Peer `me` of `peers`, rebuilt from what it persisted; `seed` drives its own randomness
    /// (election jitter) and nothing else.
    fn boot(
        config: &Self::Config,
        me: usize,
        peers: usize,
        seed: u64,
        state: &[u8],
        snapshot: &[u8],
        now_ms: u64,
    ) -> Result<Self, RestoreError>;

    /// Let time pass; calling it early is harmless.
    fn tick(&mut self, now_ms: u64);
    /// A request from peer `from`; the reply leaves only after the next persist.
    fn handle_request(&mut self, now_ms: u64, from: usize, request: Self::Request) -> Self::Reply;
    /// The reply to a request this peer sent to `from`.
    fn handle_reply(&mut self, now_ms: u64, from: usize, reply: Self::Reply);
    /// A call to `to` failed (lost, or the peer unreachable).
    fn handle_call_failed(&mut self, now_ms: u64, to: usize, context: Self::CallContext);
    /// The context to keep for `request` in case its call fails.
    fn call_context(request: &Self::Request) -> Self::CallContext;
    /// Whether `request` carries a snapshot (Raft's InstallSnapshot), so a driver's fault
    /// point may lose it on purpose (`replica.drop_snapshot`). An engine without snapshot
    /// messages keeps the default, `false`.
    fn carries_snapshot(request: &Self::Request) -> bool {
        let _ = request;
        false
    }
    /// Whether `reply` acknowledges entries the caller sent (Raft: a successful
    /// AppendEntries reply that carried entries), so a driver's fault point may hold it until
    /// the caller has moved on (`replica.hold_append_reply`). The default engine says no.
    fn acknowledges_entries(reply: &Self::Reply) -> bool {
        let _ = reply;
        false
    }
    /// Whether `reply` grants the caller a vote (Raft: a RequestVote reply with
    /// `vote_granted`), so a driver's fault point may crash the voter right after it
    /// (`replica.crash_after_vote`). The default engine says no.
    fn grants_vote(reply: &Self::Reply) -> bool {
        let _ = reply;
        false
    }
    /// A named rare path the last [`ReplicaCore::handle_request`] took (Raft: a vote denied
    /// because the candidate's log is out of date), taken once, for a driver's coverage
    /// marks. The default engine reports none.
    fn take_coverage_event(&mut self) -> Option<&'static str> {
        None
    }
    /// The course's `Start`: the proposal if this peer accepted `command`.
    fn propose(&mut self, now_ms: u64, command: Vec<u8>) -> Option<Proposal>;
    /// The course's `Snapshot(index, data)`: the service's state after applying everything up
    /// to `index`. Returns whether the engine took it (false if it already has a later one).
    fn snapshot(&mut self, now_ms: u64, index: u64, data: Vec<u8>) -> bool;

    /// The outputs accumulated since the last call.
    fn take_ready(&mut self) -> Ready<Self::Request, Self::Image>;
    /// Whether [`ReplicaCore::take_ready`] has anything to hand out.
    fn has_ready(&self) -> bool;
    /// The simulated time (ms) at which the core next needs a tick.
    fn next_deadline_ms(&self) -> u64;
    /// The course's `GetState()`: (current term, believes it is the leader).
    fn get_state(&self) -> (u64, bool);
    /// See [`Proposer::may_still_land`].
    fn may_still_land(&self, proposal: &Proposal) -> bool;

    /// The changes since `seen` for the safety checkers (role, snapshot, log writes from
    /// `log_written_from`, commit), appended to `out` in that order; `seen` is brought up to
    /// date. The one derivation of observations, shared by every driver.
    fn observe<'a>(&'a self, seen: &mut Observed, log_written_from: Option<u64>, out: &mut Vec<Observation<'a>>);
}

/// A core at a given instant is a [`Proposer`] for the service above it.
pub struct AtTime<'a, C> {
    /// The core.
    pub core: &'a mut C,
    /// The instant, in simulated ms, at which the core is asked.
    pub now_ms: u64,
}

impl<C: ReplicaCore> Proposer for AtTime<'_, C> {
    fn start(&mut self, command: Vec<u8>) -> Option<Proposal> {
        self.core.propose(self.now_ms, command)
    }
    fn get_state(&self) -> (u64, bool) {
        self.core.get_state()
    }
    fn may_still_land(&self, proposal: &Proposal) -> bool {
        self.core.may_still_land(proposal)
    }
    fn leaderless(&self) -> bool {
        C::LEADERLESS
    }
}

impl<'a> Observation<'a> {
    /// The observation of an applied message.
    pub fn of_apply(msg: &'a ApplyMsg) -> Observation<'a> {
        match msg {
            ApplyMsg::Command { index, command, .. } => Observation::Apply { index: *index, command },
            ApplyMsg::Snapshot { index, .. } => Observation::ApplySnapshot { index: *index },
        }
    }
}
