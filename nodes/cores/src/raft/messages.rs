//! Wire types of the Raft core (labrpc-shaped requests and replies) and the outputs it hands the shell.

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

/// A message for the service, in the order the core applies them (the course's ApplyMsg).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyMsg {
    Command {
        index: u64,
        term: u64,
        #[serde(with = "serde_bytes")]
        command: Vec<u8>,
    },
    /// Replace the service state with `data`, which covers every entry up to `index`.
    Snapshot {
        index: u64,
        term: u64,
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

/// One atomic save (the course's `Persister.Save(state, snapshot)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    /// The encoded Raft state (term, vote, log); replaces the stored one. An image whose
    /// bytes equal the full encoding, cheap to save (see `image.rs`).
    pub raft_state: super::StateImage,
    /// The new snapshot when it changed; `None` means keep the stored snapshot as it is.
    pub snapshot: Option<Vec<u8>>,
}

/// A request to send to peer `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub to: usize,
    pub request: Request,
}

/// Everything an input produced, for the shell to carry out in field order: persist, then
/// send, then apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Save this before anything else leaves the peer (replies included): a vote or an
    /// acknowledged entry must survive a crash.
    pub persist: Option<Persist>,
    /// Requests to send once `persist` is durable.
    pub messages: Vec<Outgoing>,
    /// Messages for the service, in order, after the messages are sent.
    pub applies: Vec<ApplyMsg>,
    /// For observers only (checkers, traces): the lowest log index written since the last
    /// `take_ready` and still in the log; entries from there to the last index are new or
    /// replaced. A snapshot that moved `snapshot_index` shows in `Raft::status`. Persistence
    /// is covered by `persist`, so a shell may ignore this.
    pub log_written_from: Option<u64>,
}

impl Ready {
    /// Whether the input produced nothing to carry out.
    pub fn is_empty(&self) -> bool {
        self.persist.is_none() && self.messages.is_empty() && self.applies.is_empty() && self.log_written_from.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Entry` as it was declared before its command became one block of bytes.
    #[derive(Serialize)]
    struct SeqEntry {
        term: u64,
        command: Vec<u8>,
    }

    #[test]
    fn byte_blocks_encode_as_the_sequence_of_u8_did() {
        // Wire bytes, message hashes and persisted sizes depend on it.
        for n in [0usize, 1, 127, 128, 300, 5000] {
            let command: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let e = Entry { term: 300, command: command.clone() };
            let bytes = postcard::to_allocvec(&e).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&SeqEntry { term: 300, command }).unwrap());
            assert_eq!(postcard::from_bytes::<Entry>(&bytes).unwrap(), e);
        }
    }
}
