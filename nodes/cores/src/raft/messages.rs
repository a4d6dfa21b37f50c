//! Wire types of the Raft core (labrpc-shaped requests and replies), and its outputs as the seam's neutral types.

use serde::{Deserialize, Serialize};

/// One log entry; the command is opaque bytes chosen by the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The leader's term when it received the command (Raft §5.3).
    pub term: u64,
    /// Encoded as one block of bytes: the same bytes as a sequence of u8, much faster.
    #[serde(with = "serde_bytes")]
    pub command: Vec<u8>,
}

/// A request from one peer to another. The simulated network is RPC-shaped: each request gets
/// exactly one reply, or the call fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Asks for a vote in an election (Raft §5.2, Figure 2 "RequestVote RPC").
    RequestVote(RequestVoteArgs),
    /// Replicates entries, or is a heartbeat when `entries` is empty (Raft §5.3, Figure 2 "AppendEntries RPC").
    AppendEntries(AppendEntriesArgs),
    /// Sends a follower the leader's snapshot in one piece (Raft §7, Figure 13; no chunks, as in
    /// the course's lab 2D).
    InstallSnapshot(InstallSnapshotArgs),
}

/// The reply to a [`Request`]; each carries what the caller needs to act on it, so the caller
/// keeps no table of outstanding calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answers a [`Request::RequestVote`].
    RequestVote(RequestVoteReply),
    /// Answers a [`Request::AppendEntries`].
    AppendEntries(AppendEntriesReply),
    /// Answers a [`Request::InstallSnapshot`].
    InstallSnapshot(InstallSnapshotReply),
}

/// Arguments of RequestVote (Raft Figure 2): a candidate asks a peer for its vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteArgs {
    /// The candidate's term.
    pub term: u64,
    /// The candidate asking for the vote (peer index, 0-based).
    pub candidate_id: usize,
    /// Index of the candidate's last log entry (0 for an empty log), for the up-to-date check
    /// (Raft §5.4.1).
    pub last_log_index: u64,
    /// Term of the candidate's last log entry (0 for an empty log), for the up-to-date check
    /// (Raft §5.4.1).
    pub last_log_term: u64,
}

/// Reply to RequestVote (Raft Figure 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteReply {
    /// The voter's current term, for the candidate to update itself.
    pub term: u64,
    /// True means the voter gave the candidate its vote for `request_term`.
    pub vote_granted: bool,
    /// The term of the request this answers: a vote counts only in the election that asked.
    pub request_term: u64,
}

/// Arguments of AppendEntries (Raft Figure 2): the leader replicates entries or, with none,
/// sends a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesArgs {
    /// The leader's term.
    pub term: u64,
    /// The leader (peer index, 0-based), so followers can point clients at it.
    pub leader_id: usize,
    /// Index of the entry just before `entries` (the consistency check of Raft §5.3).
    pub prev_log_index: u64,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: u64,
    /// Entries to store from `prev_log_index + 1` on; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The leader's commit_index; the follower commits up to it, within what it has matched
    /// (Raft §5.3).
    pub leader_commit: u64,
}

/// Reply to AppendEntries (Raft Figure 2), extended with the context the leader needs and the
/// fast back-up hint (Raft §5.3 end; the course's "accelerated log backtracking").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesReply {
    /// The follower's current term, for the leader to update itself.
    pub term: u64,
    /// True when the follower's log matched at `prev_log_index` and now holds the entries.
    pub success: bool,
    /// Context copied from the request: the leader ignores replies to requests of other terms,
    /// and on success learns `match_index = prev_log_index + entries_len`.
    pub request_term: u64,
    /// The request's `prev_log_index`.
    pub prev_log_index: u64,
    /// How many entries the request carried.
    pub entries_len: u64,
    /// On a log mismatch: the term of the follower's entry at `prev_log_index` (None when the
    /// follower's log is too short) and the first index the leader should consider resending
    /// from, so the leader backs up a whole term per round trip instead of one entry.
    pub conflict_term: Option<u64>,
    /// First index the leader should consider resending from (see `conflict_term`): the
    /// follower's log length + 1 when it is too short, else the first index of `conflict_term`
    /// in its log.
    pub conflict_index: u64,
}

/// Arguments of InstallSnapshot (Raft §7, Figure 13), sent whole rather than in chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotArgs {
    /// The leader's term.
    pub term: u64,
    /// The leader (peer index, 0-based).
    pub leader_id: usize,
    /// The snapshot replaces every entry up to and including this index.
    pub last_included_index: u64,
    /// Term of the entry at `last_included_index`.
    pub last_included_term: u64,
    /// The service's snapshot bytes, opaque to Raft.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Reply to InstallSnapshot (Raft Figure 13), with context copied from the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotReply {
    /// The follower's current term, for the leader to update itself.
    pub term: u64,
    /// The term of the request this answers: the leader ignores replies to other terms.
    pub request_term: u64,
    /// The request's `last_included_index`: on success the leader's match_index for this peer
    /// rises to it.
    pub last_included_index: u64,
}

/// What a caller must remember about a request it sent, to report a failed call with
/// [`crate::raft::Raft::handle_call_failed`]. Small, so the shell need not keep the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallContext {
    /// A RequestVote call.
    RequestVote {
        /// The request's term.
        term: u64,
    },
    /// An AppendEntries call.
    AppendEntries {
        /// The request's term.
        term: u64,
        /// The request's `prev_log_index`.
        prev_log_index: u64,
        /// How many entries the request carried.
        entries_len: u64,
    },
    /// An InstallSnapshot call.
    InstallSnapshot {
        /// The request's term.
        term: u64,
        /// The request's `last_included_index`.
        last_included_index: u64,
    },
}

impl Request {
    /// The context to hand back if this call fails.
    pub fn context(&self) -> CallContext {
        match self {
            Request::RequestVote(args) => CallContext::RequestVote { term: args.term },
            Request::AppendEntries(args) => CallContext::AppendEntries {
                term: args.term,
                prev_log_index: args.prev_log_index,
                entries_len: args.entries.len() as u64,
            },
            Request::InstallSnapshot(args) => {
                CallContext::InstallSnapshot { term: args.term, last_included_index: args.last_included_index }
            }
        }
    }

    /// The sender's term when it made the request.
    pub fn term(&self) -> u64 {
        match self {
            Request::RequestVote(args) => args.term,
            Request::AppendEntries(args) => args.term,
            Request::InstallSnapshot(args) => args.term,
        }
    }
}

impl Reply {
    /// The replier's term when it answered.
    pub fn term(&self) -> u64 {
        match self {
            Reply::RequestVote(reply) => reply.term,
            Reply::AppendEntries(reply) => reply.term,
            Reply::InstallSnapshot(reply) => reply.term,
        }
    }
}

/// The Raft core's outputs in the seam's neutral shape: requests to peers and the persisted
/// state image.
pub type Ready = crate::replica::Ready<Request, super::StateImage>;
/// One atomic save of the Raft state image and, when it changed, the snapshot.
pub type Persist = crate::replica::Persist<super::StateImage>;
/// A request to send to a peer.
pub type Outgoing = crate::replica::Outgoing<Request>;
pub use crate::replica::ApplyMsg;
