//! Wire types of the Raft core (labrpc-shaped requests and replies), and its outputs as the seam's neutral types.

use serde::{Deserialize, Serialize};

/// One log entry; the command is opaque bytes chosen by the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    /// Encoded as one block of bytes: the same bytes as a sequence of u8, much faster.
    #[serde(with = "serde_bytes")]
    pub command: Vec<u8>,
}

/// A request from one peer to another. The simulated network is RPC-shaped: each request gets
/// exactly one reply, or the call fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    RequestVote(RequestVoteArgs),
    AppendEntries(AppendEntriesArgs),
    InstallSnapshot(InstallSnapshotArgs),
}

/// The reply to a [`Request`]; each carries what the caller needs to act on it, so the caller
/// keeps no table of outstanding calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    RequestVote(RequestVoteReply),
    AppendEntries(AppendEntriesReply),
    InstallSnapshot(InstallSnapshotReply),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteArgs {
    pub term: u64,
    pub candidate_id: usize,
    pub last_log_index: u64,
    pub last_log_term: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteReply {
    /// The voter's current term, for the candidate to update itself.
    pub term: u64,
    pub vote_granted: bool,
    /// The term of the request this answers: a vote counts only in the election that asked.
    pub request_term: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesArgs {
    pub term: u64,
    pub leader_id: usize,
    pub prev_log_index: u64,
    pub prev_log_term: u64,
    pub entries: Vec<Entry>,
    pub leader_commit: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesReply {
    /// The follower's current term, for the leader to update itself.
    pub term: u64,
    pub success: bool,
    /// Context copied from the request: the leader ignores replies to requests of other terms,
    /// and on success learns `match_index = prev_log_index + entries_len`.
    pub request_term: u64,
    pub prev_log_index: u64,
    pub entries_len: u64,
    /// On a log mismatch: the term of the follower's entry at `prev_log_index` (None when the
    /// follower's log is too short) and the first index the leader should consider resending
    /// from, so the leader backs up a whole term per round trip instead of one entry.
    pub conflict_term: Option<u64>,
    pub conflict_index: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotArgs {
    pub term: u64,
    pub leader_id: usize,
    pub last_included_index: u64,
    pub last_included_term: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotReply {
    pub term: u64,
    pub request_term: u64,
    pub last_included_index: u64,
}

/// What a caller must remember about a request it sent, to report a failed call with
/// [`crate::raft::Raft::handle_call_failed`]. Small, so the shell need not keep the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallContext {
    RequestVote { term: u64 },
    AppendEntries { term: u64, prev_log_index: u64, entries_len: u64 },
    InstallSnapshot { term: u64, last_included_index: u64 },
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
