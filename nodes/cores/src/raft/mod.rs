//! The pure Raft core: a plain struct driven by inputs (tick, request, reply, failed call,
//! proposal, service snapshot) that accumulates outputs (persist, send, apply) in a [`Ready`].
//!
//! No async, no runtime, no clock, no ambient randomness: time arrives as `now_ms` on every
//! input, and election jitter comes from a ChaCha8 generator seeded from [`Config::seed`].
//!
//! # Driving it (the shell's contract)
//! 1. Build with [`Raft::new`] from the persisted state and snapshot (both empty at first boot).
//! 2. Feed every input with the current simulated time: [`Raft::tick`] when
//!    [`Raft::next_deadline_ms`] is reached, [`Raft::handle_request`] for each incoming request
//!    (its reply is returned at once), [`Raft::handle_reply`] when a call returns,
//!    [`Raft::handle_call_failed`] when a call fails, [`Raft::propose`] for the service's Start,
//!    [`Raft::snapshot`] for the service's Snapshot.
//! 3. After every input, [`Raft::take_ready`] and carry it out in order: save `persist`
//!    atomically; only then release the reply of a `handle_request` and send `messages`; then
//!    deliver `applies` to the service, in order.
//! 4. Sleep until [`Raft::next_deadline_ms`] (or the next message), never polling.

mod config;
mod image;
mod log;
mod messages;
mod persist;
mod replica;
#[cfg(test)]
mod tests;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use config::{Bug, Bugs, Config};
pub use image::{EntryChunk, StateImage};
pub use messages::{
    AppendEntriesArgs, AppendEntriesReply, ApplyMsg, CallContext, Entry, InstallSnapshotArgs, InstallSnapshotReply,
    Outgoing, Persist, Ready, Reply, Request, RequestVoteArgs, RequestVoteReply,
};
pub use persist::RestoreError;

use log::Log;

/// The part a peer currently plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Waits for AppendEntries from a leader; becomes a candidate when its election timer fires
    /// (Raft §5.2).
    Follower,
    /// Asks for votes for itself in `current_term` (Raft §5.2).
    Candidate,
    /// Won a majority of votes in `current_term`: replicates its log to the others (Raft §5.3).
    Leader,
}

/// A read-only view of a peer, for shells, traces and checkers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This peer's index in the cluster (0-based).
    pub me: usize,
    /// The part it plays now.
    pub role: Role,
    /// The latest term it has seen (Raft Figure 2, persisted).
    pub current_term: u64,
    /// The candidate it voted for in `current_term`, if any (Raft Figure 2, persisted).
    pub voted_for: Option<usize>,
    /// The leader it knows of in `current_term` (itself when leading), if any.
    pub leader_id: Option<usize>,
    /// Highest log index known committed (Raft Figure 2).
    pub commit_index: u64,
    /// Highest log index handed to the service, as an apply or a snapshot (Raft Figure 2).
    pub last_applied: u64,
    /// Index of the last entry the snapshot covers (0 with no snapshot).
    pub snapshot_index: u64,
    /// Term of the entry at `snapshot_index` (0 with no snapshot).
    pub snapshot_term: u64,
    /// Index of the last entry in the log, or `snapshot_index` when no entry follows it.
    pub last_log_index: u64,
    /// Term of the entry at `last_log_index`.
    pub last_log_term: u64,
}

/// What a leader knows about one follower's log.
#[derive(Clone, Debug)]
struct Progress {
    /// Next entry to send.
    next_index: u64,
    /// Highest entry known to be replicated on the follower.
    match_index: u64,
    /// While probing, the leader does not yet know where the logs agree, so it sends one
    /// request at a time without moving `next_index`; once a request succeeds it pipelines,
    /// moving `next_index` past what is in flight so nothing is sent twice.
    probing: bool,
    /// Calls of this term that carry data (AppendEntries with entries, InstallSnapshot) still
    /// awaiting a reply or failure. Eager sends wait for zero, which batches proposals made
    /// while a call is in flight. Heartbeats do not count: with replies delayed by seconds
    /// (long reordering), counting them kept this above zero forever and starved a lagging
    /// follower of entries.
    inflight: u32,
    /// When the latest data-carrying call was sent: a probe unanswered for two heartbeat
    /// intervals is presumed lost, and the next heartbeat carries the entries again.
    data_sent_ms: Option<u64>,
    /// When the follower was last sent anything; a heartbeat is due one interval later.
    last_sent_ms: Option<u64>,
    /// The leader_commit carried by the last AppendEntries, to send commit news at once
    /// when [`Config::commit_news_at_once`] asks for it.
    commit_sent: u64,
    /// When the snapshot in flight was sent, so a large snapshot is not resent every heartbeat.
    snapshot_sent_ms: Option<u64>,
}

impl Progress {
    fn new(next_index: u64) -> Progress {
        Progress {
            next_index,
            match_index: 0,
            probing: true,
            inflight: 0,
            data_sent_ms: None,
            last_sent_ms: None,
            commit_sent: 0,
            snapshot_sent_ms: None,
        }
    }
}

/// A candidate's RequestVote to one peer, for [`Config::retry_failed_votes`].
#[derive(Clone, Copy, Debug, Default)]
struct VoteCall {
    /// When it was last sent.
    sent_ms: u64,
    /// It failed and waits to be sent again, one heartbeat interval after `sent_ms`.
    retry: bool,
}

/// The values the invariant check compares against at the end of the previous input.
#[derive(Clone, Debug)]
struct Audit {
    term: u64,
    voted_for: Option<usize>,
    commit_index: u64,
    leader_last_index: Option<u64>,
}

/// One Raft peer.
pub struct Raft {
    config: Config,
    rng: ChaCha8Rng,
    // Persistent state (saved through `Ready::persist` before anything depending on it leaves).
    current_term: u64,
    voted_for: Option<usize>,
    log: Log,
    /// Shared with the persister (saving it hands over a reference, not a copy).
    snapshot: std::rc::Rc<Vec<u8>>,
    // Volatile state.
    role: Role,
    leader_id: Option<usize>,
    commit_index: u64,
    last_applied: u64,
    election_deadline_ms: u64,
    votes: Vec<bool>,
    /// While a candidate: per peer, when its RequestVote of this term was last sent, and
    /// whether a failed one waits to be sent again ([`Config::retry_failed_votes`]).
    vote_calls: Vec<VoteCall>,
    progress: Vec<Progress>,
    now_ms: u64,
    // Outputs not yet taken by the shell.
    ready: Ready,
    state_dirty: bool,
    snapshot_dirty: bool,
    audit: Audit,
    /// A rare path the last request took, for the driver's coverage marks (decides nothing).
    coverage_event: Option<&'static str>,
}

/// Coverage event: a vote denied because the candidate's log is less up to date than the
/// voter's (Raft §5.4.1, the election restriction), in the candidate's own term.
pub const VOTE_DENIED_OUT_OF_DATE_LOG: &str = "raft: vote denied for an out-of-date log";

impl Raft {
    /// Build a peer from what it persisted (`persisted_state` and `snapshot` are both empty at
    /// first boot). After a restart the service is expected to have loaded `snapshot` already,
    /// so applying resumes at the snapshot's index + 1.
    ///
    /// # Errors
    /// [`RestoreError`] when `persisted_state` does not decode, names a vote for no peer, or
    /// says the log is compacted while `snapshot` is empty (6.824 TestSnapshotInit2D).
    ///
    /// # Panics
    /// On a malformed `config`: `me` not below `peers`, an election timeout range that is
    /// empty or not above the heartbeat interval, or `max_entries_per_append` of 0.
    pub fn new(config: Config, persisted_state: &[u8], snapshot: &[u8], now_ms: u64) -> Result<Raft, RestoreError> {
        assert!(config.peers >= 1 && config.me < config.peers);
        assert!(config.election_timeout_ms_min > config.heartbeat_interval_ms);
        assert!(config.election_timeout_ms_min <= config.election_timeout_ms_max);
        assert!(config.max_entries_per_append >= 1);
        let state = persist::decode(persisted_state)?;
        if let Some(v) = state.voted_for {
            if v >= config.peers {
                return Err(RestoreError(format!("voted_for {v} is not a peer")));
            }
        }
        if state.snapshot_index > 0 && snapshot.is_empty() {
            // The course's TestSnapshotInit: saving the state without re-passing the snapshot
            // silently erases it.
            return Err(RestoreError(format!(
                "the log is compacted up to index {} but the snapshot is empty",
                state.snapshot_index
            )));
        }
        let log = Log::from_parts(state.snapshot_index, state.snapshot_term, state.log);
        // A correct save always has current_term ≥ the last entry's term; the max is how a
        // peer that did not save its term (planted bug no-persist-term) recovers one.
        let current_term = state.current_term.max(log.last_term());
        let rng = ChaCha8Rng::seed_from_u64(mix_seed(config.seed, config.me as u64));
        let peers = config.peers;
        let snapshot_index = log.snapshot_index();
        let mut raft = Raft {
            config,
            rng,
            current_term,
            voted_for: state.voted_for,
            log,
            snapshot: std::rc::Rc::new(snapshot.to_vec()),
            role: Role::Follower,
            leader_id: None,
            commit_index: snapshot_index,
            last_applied: snapshot_index,
            election_deadline_ms: 0,
            votes: vec![false; peers],
            vote_calls: vec![VoteCall::default(); peers],
            progress: Vec::new(),
            now_ms,
            ready: Ready::default(),
            state_dirty: false,
            snapshot_dirty: false,
            audit: Audit {
                term: current_term,
                voted_for: state.voted_for,
                commit_index: snapshot_index,
                leader_last_index: None,
            },
            coverage_event: None,
        };
        raft.reset_election_deadline();
        raft.check_invariants();
        Ok(raft)
    }

    // ----- Inputs -----

    /// Let time pass: start an election when the election timeout has run out, or, as leader,
    /// send heartbeats that are due. Calling it early is harmless.
    pub fn tick(&mut self, now_ms: u64) {
        self.begin(now_ms);
        if self.role == Role::Leader {
            for peer in 0..self.config.peers {
                if peer != self.config.me && self.heartbeat_due(peer) {
                    self.send_append(peer, true);
                }
            }
        } else if now_ms >= self.election_deadline_ms {
            self.start_election();
        } else if self.role == Role::Candidate {
            self.send_due_vote_retries();
        }
        self.finish();
    }

    /// Handle a request from peer `from` and return its reply. The reply may be released only
    /// after the `persist` of the following [`Raft::take_ready`] is durable.
    ///
    /// # Panics
    /// If `from` is not another peer of the cluster.
    pub fn handle_request(&mut self, now_ms: u64, from: usize, request: Request) -> Reply {
        self.begin(now_ms);
        assert!(from < self.config.peers && from != self.config.me, "request from {from}");
        let reply = match request {
            Request::RequestVote(args) => Reply::RequestVote(self.on_request_vote(args)),
            Request::AppendEntries(args) => Reply::AppendEntries(self.on_append_entries(args)),
            Request::InstallSnapshot(args) => Reply::InstallSnapshot(self.on_install_snapshot(args)),
        };
        self.finish();
        reply
    }

    /// Handle the reply to a request this peer sent to `from`. Duplicated, late and reordered
    /// replies are tolerated: each carries the term and position of the request it answers.
    ///
    /// # Panics
    /// If `from` is not another peer of the cluster.
    pub fn handle_reply(&mut self, now_ms: u64, from: usize, reply: Reply) {
        self.begin(now_ms);
        assert!(from < self.config.peers && from != self.config.me, "reply from {from}");
        if reply.term() > self.current_term {
            self.become_follower(reply.term());
        } else {
            match reply {
                Reply::RequestVote(r) => self.on_request_vote_reply(from, r),
                Reply::AppendEntries(r) => self.on_append_entries_reply(from, r),
                Reply::InstallSnapshot(r) => self.on_install_snapshot_reply(from, r),
            }
        }
        self.finish();
    }

    /// A call to `to` failed (lost request or reply, or unreachable peer); `context` is
    /// [`Request::context`] of the request. Optional for correctness, since heartbeats repair
    /// everything, but reporting failures frees the in-flight slot that eager sends wait for,
    /// and makes the next heartbeat resend the lost entries. The resend waits for that
    /// heartbeat on purpose: a call to an unreachable peer may fail within milliseconds, and
    /// resending at once would turn every failure into another call. A failed RequestVote is
    /// sent again only with [`Config::retry_failed_votes`], while this peer is still a
    /// candidate of the request's term without that peer's vote, and at most once per
    /// heartbeat interval per peer (a call over a one-way cut fails the instant it is
    /// answered; the next term ends the retries).
    ///
    /// # Panics
    /// If `to` is not another peer of the cluster.
    pub fn handle_call_failed(&mut self, now_ms: u64, to: usize, context: CallContext) {
        self.begin(now_ms);
        assert!(to < self.config.peers && to != self.config.me, "call to {to}");
        if self.role == Role::Candidate {
            if let CallContext::RequestVote { term } = context {
                if self.config.retry_failed_votes && term == self.current_term && !self.votes[to] {
                    self.vote_calls[to].retry = true;
                    self.send_due_vote_retries();
                }
            }
        } else if self.role == Role::Leader {
            match context {
                CallContext::AppendEntries { term, prev_log_index, entries_len } if term == self.current_term => {
                    let p = &mut self.progress[to];
                    if entries_len > 0 {
                        p.inflight = p.inflight.saturating_sub(1);
                    }
                    if entries_len > 0 && prev_log_index >= p.match_index {
                        // The entries may never have arrived: resend them now rather than
                        // wait for the follower to reject a later heartbeat.
                        p.next_index = p.next_index.min(prev_log_index + 1).max(p.match_index + 1);
                        p.probing = true;
                    }
                }
                CallContext::InstallSnapshot { term, .. } if term == self.current_term => {
                    let p = &mut self.progress[to];
                    p.inflight = p.inflight.saturating_sub(1);
                    p.snapshot_sent_ms = None;
                }
                _ => {}
            }
        }
        self.finish();
    }

    /// The course's Start: append `command` if this peer is the leader and return its
    /// (index, term); None otherwise. Replication starts at once, without waiting for a
    /// heartbeat.
    pub fn propose(&mut self, now_ms: u64, command: Vec<u8>) -> Option<(u64, u64)> {
        self.begin(now_ms);
        let result = if self.role == Role::Leader {
            let term = self.current_term;
            self.log.append(Entry { term, command });
            let index = self.log.last_index();
            self.state_dirty = true;
            self.note_written(index);
            // A single-peer cluster commits right here.
            self.advance_commit();
            for peer in 0..self.config.peers {
                if peer != self.config.me {
                    self.maybe_send_append(peer);
                }
            }
            Some((index, term))
        } else {
            None
        };
        self.finish();
        result
    }

    /// The service's Snapshot: `data` holds the service state after applying every entry up to
    /// `index` (which it has been sent). The log before it is discarded. Returns false when
    /// the core already has a snapshot at or past `index` (for example one installed from the
    /// leader meanwhile), in which case nothing changes.
    ///
    /// # Panics
    /// When the snapshot is taken and `index` is past what was applied, or `data` is empty.
    pub fn snapshot(&mut self, now_ms: u64, index: u64, data: Vec<u8>) -> bool {
        self.begin(now_ms);
        let taken = index > self.log.snapshot_index();
        if taken {
            assert!(
                index <= self.last_applied,
                "service snapshot at {index} beyond last applied {}",
                self.last_applied
            );
            assert!(!data.is_empty(), "a snapshot must not be empty bytes");
            self.log.compact_to(index);
            self.snapshot = std::rc::Rc::new(data);
            self.snapshot_dirty = true;
            self.state_dirty = true;
            self.clamp_written_from();
        }
        self.finish();
        taken
    }

    // ----- Outputs and observation -----

    /// Take the outputs accumulated since the last call; see [`Ready`] for the order.
    pub fn take_ready(&mut self) -> Ready {
        let mut ready = std::mem::take(&mut self.ready);
        if self.state_dirty || self.snapshot_dirty {
            ready.persist = Some(Persist {
                state: self.encode_state(),
                snapshot: self.snapshot_dirty.then(|| std::rc::Rc::clone(&self.snapshot)),
            });
            self.state_dirty = false;
            self.snapshot_dirty = false;
        }
        ready
    }

    /// Whether [`Raft::take_ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        self.state_dirty || self.snapshot_dirty || !self.ready.is_empty()
    }

    /// The simulated time at which the core next needs [`Raft::tick`]: the election deadline
    /// for followers and candidates, the earliest heartbeat for a leader (`u64::MAX` for a
    /// leader with no peers). Sleep until then, or until a message arrives.
    pub fn next_deadline_ms(&self) -> u64 {
        if self.role == Role::Leader {
            (0..self.config.peers)
                .filter(|&p| p != self.config.me)
                .map(|p| self.heartbeat_due_ms(p))
                .min()
                .unwrap_or(u64::MAX)
        } else if self.role == Role::Candidate {
            (0..self.config.peers)
                .filter(|&p| self.vote_calls[p].retry)
                .map(|p| self.vote_retry_due_ms(p))
                .fold(self.election_deadline_ms, u64::min)
        } else {
            self.election_deadline_ms
        }
    }

    /// The course's GetState: (current_term, is_leader).
    pub fn get_state(&self) -> (u64, bool) {
        (self.current_term, self.role == Role::Leader)
    }

    /// A snapshot of the peer's state for traces and checkers.
    pub fn status(&self) -> Status {
        Status {
            me: self.config.me,
            role: self.role,
            current_term: self.current_term,
            voted_for: self.voted_for,
            leader_id: self.leader_id,
            commit_index: self.commit_index,
            last_applied: self.last_applied,
            snapshot_index: self.log.snapshot_index(),
            snapshot_term: self.log.snapshot_term(),
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        }
    }

    /// While this peer leads: its match index for `peer` (for itself, its last log index),
    /// the highest entry it knows `peer` holds matching its own log (Figure 2's matchIndex).
    pub fn match_index(&self, peer: usize) -> Option<u64> {
        if self.role != Role::Leader {
            return None;
        }
        if peer == self.config.me {
            return Some(self.log.last_index());
        }
        self.progress.get(peer).map(|p| p.match_index)
    }

    /// The number of peers in the cluster, this one included.
    pub fn peers(&self) -> usize {
        self.config.peers
    }

    /// The entry at `index`, if it has not been compacted into the snapshot.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// The snapshot the peer holds (empty if none).
    pub fn snapshot_data(&self) -> &[u8] {
        &self.snapshot
    }

    /// The configuration the peer was built with (timeouts, planted bugs).
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- Elections -----

    fn start_election(&mut self) {
        self.current_term += 1;
        self.role = Role::Candidate;
        self.voted_for = Some(self.config.me);
        self.leader_id = None;
        self.state_dirty = true;
        self.votes = vec![false; self.config.peers];
        self.vote_calls = vec![VoteCall { sent_ms: self.now_ms, retry: false }; self.config.peers];
        self.votes[self.config.me] = true;
        self.reset_election_deadline();
        if self.is_majority(self.votes.iter().filter(|&&v| v).count()) {
            self.become_leader();
            return;
        }
        let args = self.vote_request();
        for peer in 0..self.config.peers {
            if peer != self.config.me {
                self.send(peer, Request::RequestVote(args.clone()));
            }
        }
    }

    /// When peer `peer`'s failed RequestVote may go again: a heartbeat interval after the
    /// last one, the pace a leader keeps with each follower.
    fn vote_retry_due_ms(&self, peer: usize) -> u64 {
        self.vote_calls[peer].sent_ms + self.config.heartbeat_interval_ms
    }

    /// Sends the failed RequestVotes whose retry is due ([`Config::retry_failed_votes`]).
    fn send_due_vote_retries(&mut self) {
        for peer in 0..self.config.peers {
            if self.vote_calls[peer].retry && !self.votes[peer] && self.now_ms >= self.vote_retry_due_ms(peer) {
                self.vote_calls[peer] = VoteCall { sent_ms: self.now_ms, retry: false };
                let args = self.vote_request();
                self.send(peer, Request::RequestVote(args));
            }
        }
    }

    /// This candidate's RequestVote for its current term (Figure 2). A candidate's log does
    /// not change while it stands, so a retry asks exactly what the first request asked.
    fn vote_request(&self) -> RequestVoteArgs {
        RequestVoteArgs {
            term: self.current_term,
            candidate_id: self.config.me,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        }
    }

    fn on_request_vote(&mut self, args: RequestVoteArgs) -> RequestVoteReply {
        if args.term > self.current_term {
            self.become_follower(args.term);
        }
        // The election restriction: only a candidate whose log is at least as up to date as
        // ours may win, so every committed entry reaches every future leader.
        let up_to_date = (args.last_log_term, args.last_log_index) >= (self.log.last_term(), self.log.last_index());
        let log_ok = up_to_date || self.config.bugs.vote_without_up_to_date_check;
        let vote_free = self.voted_for.is_none() || self.voted_for == Some(args.candidate_id);
        let granted = args.term == self.current_term && vote_free && log_ok;
        if args.term == self.current_term && !up_to_date {
            self.coverage_event = Some(VOTE_DENIED_OUT_OF_DATE_LOG);
        }
        if granted {
            if self.voted_for.is_none() {
                self.voted_for = Some(args.candidate_id);
                self.state_dirty = true;
            }
            // Granting a vote is the one time a follower defers its own candidacy for a peer
            // that is not (yet) a leader.
            self.reset_election_deadline();
        }
        RequestVoteReply { term: self.current_term, vote_granted: granted, request_term: args.term }
    }

    fn on_request_vote_reply(&mut self, from: usize, reply: RequestVoteReply) {
        if self.role != Role::Candidate || reply.request_term != self.current_term || !reply.vote_granted {
            return;
        }
        self.votes[from] = true;
        if self.is_majority(self.votes.iter().filter(|&&v| v).count()) {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader_id = Some(self.config.me);
        let next = self.log.last_index() + 1;
        self.progress = (0..self.config.peers).map(|_| Progress::new(next)).collect();
        // Announce the victory at once so other candidates of this term stand down.
        for peer in 0..self.config.peers {
            if peer != self.config.me {
                self.send_append(peer, true);
            }
        }
    }

    /// Adopt a higher term seen in any message, as a follower without a vote in it.
    fn become_follower(&mut self, term: u64) {
        assert!(term > self.current_term);
        let was_leader = self.role == Role::Leader;
        self.current_term = term;
        self.voted_for = None;
        self.role = Role::Follower;
        self.leader_id = None;
        self.state_dirty = true;
        if was_leader {
            // A leader's election deadline is long past; give the new leader a full timeout.
            self.reset_election_deadline();
        }
    }

    /// A leader of the current term spoke (AppendEntries or InstallSnapshot).
    fn accept_leader(&mut self, leader: usize, term: u64) {
        if self.role == Role::Leader {
            // Two leaders in one term would break election safety; only the planted bug
            // accept-stale-term-append lets a leader hear from an older one.
            assert!(
                term < self.current_term,
                "peer {} is leader in term {} and hears from leader {leader} of the same term",
                self.config.me,
                self.current_term
            );
        }
        self.role = Role::Follower;
        self.leader_id = Some(leader);
        self.reset_election_deadline();
    }

    // ----- Replication, follower side -----

    fn on_append_entries(&mut self, args: AppendEntriesArgs) -> AppendEntriesReply {
        let entries_len = args.entries.len() as u64;
        let mut reply = AppendEntriesReply {
            term: self.current_term,
            success: false,
            request_term: args.term,
            prev_log_index: args.prev_log_index,
            entries_len,
            conflict_term: None,
            conflict_index: 0,
        };
        if args.term < self.current_term && !self.config.bugs.accept_stale_term_append {
            return reply;
        }
        if args.term > self.current_term {
            self.become_follower(args.term);
            reply.term = self.current_term;
        }
        self.accept_leader(args.leader_id, args.term);

        let prev = args.prev_log_index;
        let snapshot_index = self.log.snapshot_index();
        if prev > self.log.last_index() {
            reply.conflict_index = self.log.last_index() + 1;
            return reply;
        }
        if prev >= snapshot_index {
            let term = self.log.term_at(prev).expect("prev is within the log");
            if term != args.prev_log_term {
                reply.conflict_term = Some(term);
                reply.conflict_index = if prev > snapshot_index {
                    self.log.first_index_of_term(term, prev)
                } else {
                    // A mismatch on the snapshot's own entry means committed entries differ:
                    // unreachable unless safety is already broken.
                    prev
                };
                return reply;
            }
        }
        // Entries at or below our snapshot are committed, and committed entries agree with
        // every later leader's log, so they are skipped rather than compared.
        for (i, entry) in args.entries.into_iter().enumerate() {
            let index = prev + 1 + i as u64;
            if index <= snapshot_index {
                continue;
            }
            match self.log.term_at(index) {
                // Same index and term: the same entry (Log Matching). Never truncate here: this
                // request may be an old one overtaken by newer, longer ones.
                Some(term) if term == entry.term => {}
                Some(_) => {
                    if self.config.bugs.no_truncate_conflict {
                        self.log.overwrite(index, entry);
                    } else {
                        self.log.truncate_from(index);
                        self.log.append(entry);
                    }
                    self.state_dirty = true;
                    self.note_written(index);
                }
                None => {
                    self.log.append(entry);
                    // The planted bug leaves the new entries unsaved: the reply leaves now, the
                    // entries reach storage only with the next save of something else.
                    if !self.config.bugs.ack_before_durable {
                        self.state_dirty = true;
                    }
                    self.note_written(index);
                }
            }
        }
        // Commit only what this request proved we share with the leader: entries past
        // prev + len may be stale leftovers of another leader.
        let last_new = prev + entries_len;
        let new_commit = args.leader_commit.min(last_new);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
        }
        reply.success = true;
        reply
    }

    fn on_install_snapshot(&mut self, args: InstallSnapshotArgs) -> InstallSnapshotReply {
        let mut reply = InstallSnapshotReply {
            term: self.current_term,
            request_term: args.term,
            last_included_index: args.last_included_index,
        };
        if args.term < self.current_term {
            return reply;
        }
        if args.term > self.current_term {
            self.become_follower(args.term);
            reply.term = self.current_term;
        }
        self.accept_leader(args.leader_id, args.term);

        let index = args.last_included_index;
        // A snapshot that does not go past what the service already has would rewind it.
        let stale = if self.config.bugs.apply_out_of_order_after_snapshot {
            index <= self.log.snapshot_index()
        } else {
            index <= self.commit_index
        };
        if stale {
            return reply;
        }
        let continues = index <= self.log.last_index() && self.log.term_at(index) == Some(args.last_included_term);
        if continues && !self.config.bugs.snapshot_wipes_log {
            // Our log continues the snapshot: keep the entries after it.
            self.log.compact_to(index);
        } else {
            self.log.reset_to_snapshot(index, args.last_included_term);
        }
        self.snapshot = std::rc::Rc::new(args.data);
        self.snapshot_dirty = true;
        self.state_dirty = true;
        self.clamp_written_from();
        self.commit_index = self.commit_index.max(index);
        self.last_applied = index;
        self.ready.applies.push(ApplyMsg::Snapshot {
            index,
            term: args.last_included_term,
            data: self.snapshot.to_vec(),
        });
        reply
    }

    // ----- Replication, leader side -----

    fn on_append_entries_reply(&mut self, from: usize, reply: AppendEntriesReply) {
        let stale = reply.request_term != self.current_term;
        if self.role != Role::Leader || (stale && !self.config.bugs.stale_append_reply) {
            return;
        }
        let last_index = self.log.last_index();
        let p = &mut self.progress[from];
        if reply.entries_len > 0 && !stale {
            p.inflight = p.inflight.saturating_sub(1);
        }
        if reply.success && stale && reply.prev_log_index + reply.entries_len > last_index {
            // Even the planted bug does not count entries its own log no longer has.
            return;
        }
        if reply.success {
            let matched = reply.prev_log_index + reply.entries_len;
            // Everything this leader sent in its term is still in its log.
            assert!(matched <= last_index, "follower {from} matched {matched} > {last_index}");
            p.match_index = p.match_index.max(matched);
            p.next_index = p.next_index.max(p.match_index + 1);
            p.probing = false;
            self.advance_commit();
        } else if reply.prev_log_index >= p.match_index {
            // Back up a whole term at a time: past our last entry of the follower's conflicting
            // term if we have that term, else to where the follower's run of it starts.
            let hint = match reply.conflict_term {
                Some(term) => self.log.last_index_of_term(term).map_or(reply.conflict_index, |i| i + 1),
                None => reply.conflict_index,
            };
            let p = &mut self.progress[from];
            p.next_index = hint.min(reply.prev_log_index).max(p.match_index + 1);
            p.probing = true;
        }
        // (A rejection below match_index is an old one overtaken by a success: ignore it.)
        self.maybe_send_append(from);
    }

    fn on_install_snapshot_reply(&mut self, from: usize, reply: InstallSnapshotReply) {
        if self.role != Role::Leader || reply.request_term != self.current_term {
            return;
        }
        let p = &mut self.progress[from];
        p.inflight = p.inflight.saturating_sub(1);
        p.snapshot_sent_ms = None;
        // The follower now holds everything up to the snapshot (or had it committed already).
        p.match_index = p.match_index.max(reply.last_included_index);
        p.next_index = p.next_index.max(p.match_index + 1);
        p.probing = false;
        self.advance_commit();
        self.maybe_send_append(from);
    }

    /// Commit the highest index stored on a majority, if it is of the current term (entries
    /// of earlier terms commit only indirectly, Figure 8 of the paper).
    fn advance_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matched: Vec<u64> = (0..self.config.peers)
            .map(|p| if p == self.config.me { self.log.last_index() } else { self.progress[p].match_index })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        // peers/2 + 1 peers (a majority) hold at least matched[peers/2].
        let candidate = matched[self.config.peers / 2];
        if candidate <= self.commit_index {
            return;
        }
        let of_current_term = self.log.term_at(candidate) == Some(self.current_term);
        if of_current_term || self.config.bugs.commit_old_term {
            self.commit_index = candidate;
            // By default followers learn it from the next AppendEntries, entries or heartbeat
            // (paper §5.3): a request only to carry commit news nearly doubles the messages
            // of a client waiting on each write, and only the leader answers clients.
            if self.config.commit_news_at_once {
                for peer in 0..self.config.peers {
                    if peer != self.config.me {
                        self.maybe_send_append(peer);
                    }
                }
            }
        }
    }

    /// Send to `peer` if it lacks entries (or commit news, with
    /// [`Config::commit_news_at_once`]) and nothing is in flight to it. One call in flight per
    /// follower batches proposals made meanwhile into the next request.
    fn maybe_send_append(&mut self, peer: usize) {
        let p = &self.progress[peer];
        if p.inflight > 0 {
            return;
        }
        let lacks_entries = p.next_index <= self.log.last_index();
        let lacks_commit = self.config.commit_news_at_once && p.commit_sent < self.commit_index;
        if lacks_entries || lacks_commit {
            self.send_append(peer, false);
        }
    }

    /// Send `peer` an AppendEntries from its `next_index`, or the snapshot if that entry is
    /// compacted. A `heartbeat` always sends something, to keep the leader's authority.
    fn send_append(&mut self, peer: usize, heartbeat: bool) {
        let now = self.now_ms;
        let snapshot_index = self.log.snapshot_index();
        let retry_ms = self.config.election_timeout_ms_max;
        let p = &self.progress[peer];
        if p.next_index <= snapshot_index {
            let snapshot_travelling = p.snapshot_sent_ms.is_some_and(|t| now < t + retry_ms);
            if !snapshot_travelling {
                let args = InstallSnapshotArgs {
                    term: self.current_term,
                    leader_id: self.config.me,
                    last_included_index: snapshot_index,
                    last_included_term: self.log.snapshot_term(),
                    data: self.snapshot.to_vec(),
                };
                let p = &mut self.progress[peer];
                p.inflight += 1;
                p.data_sent_ms = Some(now);
                p.last_sent_ms = Some(now);
                p.snapshot_sent_ms = Some(now);
                // Installing the snapshot commits everything in it.
                p.commit_sent = p.commit_sent.max(snapshot_index);
                self.send(peer, Request::InstallSnapshot(args));
                return;
            }
            if !heartbeat {
                return;
            }
            // While the snapshot travels, an empty AppendEntries at its boundary keeps the
            // follower from starting an election.
            let args = AppendEntriesArgs {
                term: self.current_term,
                leader_id: self.config.me,
                prev_log_index: snapshot_index,
                prev_log_term: self.log.snapshot_term(),
                entries: Vec::new(),
                leader_commit: self.commit_index,
            };
            let p = &mut self.progress[peer];
            p.last_sent_ms = Some(now);
            p.commit_sent = self.commit_index;
            self.send(peer, Request::AppendEntries(args));
            return;
        }
        let prev = p.next_index - 1;
        let prev_log_term = self.log.term_at(prev).expect("next_index is past the snapshot");
        // A heartbeat while a probe is unanswered stays empty, so a dead follower is not sent
        // the same entries every interval.
        let probe_fresh = p.data_sent_ms.is_some_and(|t| now < t + 2 * self.config.heartbeat_interval_ms);
        let entries = if heartbeat && p.probing && p.inflight > 0 && probe_fresh {
            Vec::new()
        } else {
            self.log.slice_from(p.next_index, self.config.max_entries_per_append).to_vec()
        };
        let n = entries.len() as u64;
        let args = AppendEntriesArgs {
            term: self.current_term,
            leader_id: self.config.me,
            prev_log_index: prev,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
        };
        let p = &mut self.progress[peer];
        if !p.probing {
            p.next_index += n;
        }
        if n > 0 {
            p.inflight += 1;
            p.data_sent_ms = Some(now);
        }
        p.last_sent_ms = Some(now);
        p.commit_sent = self.commit_index;
        self.send(peer, Request::AppendEntries(args));
    }

    fn heartbeat_due_ms(&self, peer: usize) -> u64 {
        self.progress[peer].last_sent_ms.map_or(self.now_ms, |t| t + self.config.heartbeat_interval_ms)
    }

    fn heartbeat_due(&self, peer: usize) -> bool {
        self.now_ms >= self.heartbeat_due_ms(peer)
    }

    // ----- Plumbing -----

    fn send(&mut self, to: usize, request: Request) {
        self.ready.messages.push(Outgoing { to, request });
    }

    fn note_written(&mut self, index: u64) {
        let from = self.ready.log_written_from.get_or_insert(index);
        *from = (*from).min(index);
    }

    /// After compaction, entries written earlier in this Ready may now be inside the
    /// snapshot: observers are pointed at the first entry still in the log, if any.
    fn clamp_written_from(&mut self) {
        if let Some(from) = self.ready.log_written_from {
            let first = self.log.snapshot_index() + 1;
            self.ready.log_written_from = (first <= self.log.last_index()).then_some(from.max(first));
        }
    }

    fn is_majority(&self, count: usize) -> bool {
        count > self.config.peers / 2
    }

    fn reset_election_deadline(&mut self) {
        let timeout = self.rng.gen_range(self.config.election_timeout_ms_min..=self.config.election_timeout_ms_max);
        self.election_deadline_ms = self.now_ms + timeout;
    }

    fn encode_state(&self) -> StateImage {
        let bugs = &self.config.bugs;
        let current_term = if bugs.no_persist_term { 0 } else { self.current_term };
        let voted_for = if bugs.no_persist_voted_for { None } else { self.voted_for };
        debug_assert_eq!(self.log.image().count(), self.log.entries().len(), "the image follows the log");
        StateImage::new(current_term, voted_for, self.log.snapshot_index(), self.log.snapshot_term(), self.log.image())
    }

    fn begin(&mut self, now_ms: u64) {
        assert!(now_ms >= self.now_ms, "time went backwards: {now_ms} < {}", self.now_ms);
        self.now_ms = now_ms;
    }

    /// End of every input: hand committed entries to the service, then check invariants.
    fn finish(&mut self) {
        while self.last_applied < self.commit_index {
            let index = self.last_applied + 1;
            let entry = self.log.entry(index).expect("committed entries past the snapshot are in the log");
            self.ready.applies.push(ApplyMsg::Command { index, term: entry.term, command: entry.command.clone() });
            self.last_applied = index;
        }
        self.check_invariants();
    }

    /// The core's own invariants, checked after every input (asserts are on in every profile
    /// this project runs).
    fn check_invariants(&mut self) {
        let me = self.config.me;
        let snapshot_index = self.log.snapshot_index();
        let last_index = self.log.last_index();
        assert!(
            snapshot_index <= self.last_applied
                && self.last_applied <= self.commit_index
                && self.commit_index <= last_index,
            "peer {me}: want snapshot_index {snapshot_index} ≤ last_applied {} ≤ commit_index {} ≤ last_log_index {last_index}",
            self.last_applied,
            self.commit_index
        );
        assert!(
            self.current_term >= self.audit.term,
            "peer {me}: current_term decreased from {} to {}",
            self.audit.term,
            self.current_term
        );
        if self.current_term == self.audit.term && self.audit.voted_for.is_some() {
            assert_eq!(
                self.voted_for, self.audit.voted_for,
                "peer {me}: vote changed within term {}",
                self.current_term
            );
        }
        assert!(
            self.commit_index >= self.audit.commit_index,
            "peer {me}: commit_index decreased from {} to {}",
            self.audit.commit_index,
            self.commit_index
        );
        assert!(
            self.log.last_term() <= self.current_term,
            "peer {me}: last log term {} is ahead of current_term {}",
            self.log.last_term(),
            self.current_term
        );
        let mut leader_last_index = None;
        if self.role == Role::Leader {
            assert_eq!(self.voted_for, Some(me), "peer {me}: leader without own vote");
            if self.audit.term == self.current_term {
                if let Some(before) = self.audit.leader_last_index {
                    assert!(
                        last_index >= before,
                        "peer {me}: leader of term {} truncated its log from {before} to {last_index}",
                        self.current_term
                    );
                }
            }
            for (peer, p) in self.progress.iter().enumerate() {
                if peer != me {
                    assert!(
                        p.match_index < p.next_index && p.next_index <= last_index + 1,
                        "peer {me}: follower {peer} has match_index {} next_index {} with last index {last_index}",
                        p.match_index,
                        p.next_index
                    );
                }
            }
            leader_last_index = Some(last_index);
        }
        if self.role == Role::Candidate {
            assert_eq!(self.voted_for, Some(me), "peer {me}: candidate without own vote");
        }
        self.audit = Audit {
            term: self.current_term,
            voted_for: self.voted_for,
            commit_index: self.commit_index,
            leader_last_index,
        };
    }
}

/// Splitmix64 of the seed and peer id, so peers sharing a seed draw different timeouts.
fn mix_seed(seed: u64, me: u64) -> u64 {
    let mut z = seed ^ me.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
