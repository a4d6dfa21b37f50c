//! The student Raft: Figure 2 of the Raft paper (Ongaro and Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", extended version), written the way the course asks —
//! one struct behind a lock (here a `RefCell`: the simulation is single-threaded), background
//! tasks for the election timer and for each follower's replication, RPC handlers that
//! persist before they reply, and an apply channel.
//!
//! Tasks:
//! - the **ticker** (one per instance) sleeps until the election deadline and starts an
//!   election if no leader was heard from by then (§5.2);
//! - a **vote requester** per peer per election, which asks again while the election lasts
//!   if the request or the reply is lost;
//! - a **replicator** per peer per term led (§5.3): it sends AppendEntries — or
//!   InstallSnapshot when the entries the peer needs are gone (§7) — at every heartbeat,
//!   and at once when `Start` or a reply leaves something to send; each call is its own task,
//!   so a slow reply never holds back the heartbeats that keep followers from timing out.
//!
//! Beyond Figure 2: a rejected AppendEntries says where the follower's log stops matching
//! (the conflicting term and its first index, the optimisation §5.3 sketches), so a leader
//! backs up a term per round trip rather than an entry; and a follower truncates only at
//! the first entry that conflicts, so a stale, reordered AppendEntries never cuts entries off.

use crate::persist::{self, Durable};
use nodes::course::{ApplyMsg, ApplySender, CourseEnv, CourseRaft, Persister};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// A leader contacts every follower this often at least (the lab allows ten heartbeats a
/// second).
const HEARTBEAT: Duration = Duration::from_millis(100);
/// Election timeouts are drawn from this range, in milliseconds: well above the heartbeat,
/// and short enough that several elections fit in the tests' five seconds.
const ELECTION_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 300..=600;
/// At most this many entries ride in one AppendEntries.
const MAX_ENTRIES_PER_APPEND: usize = 64;

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub command: Vec<u8>,
}

/// A classic mistake that can be switched on, to see the suite catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mistake {
    /// `voted_for` is left out of what `persist()` saves: a voter that crashes and restarts
    /// has forgotten its vote and may vote again in the same term (Figure 2 lists
    /// `votedFor` as persistent state for exactly this reason).
    VoteNotPersisted,
}

impl Mistake {
    /// Every mistake: (name for `--bug`, what it is).
    pub const ALL: &'static [(Mistake, &'static str, &'static str)] = &[(
        Mistake::VoteNotPersisted,
        "vote-not-persisted",
        "voted_for is left out of the persisted state: a restarted voter may vote twice in a term",
    )];

    fn from_name(name: &str) -> Option<Mistake> {
        Mistake::ALL.iter().find(|(_, n, _)| *n == name).map(|(m, _, _)| *m)
    }
}

/// The engine's configuration: which mistake, if any, is switched on.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub mistake: Option<Mistake>,
}

/// Every RPC between peers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Rpc {
    RequestVote {
        term: u64,
        candidate: usize,
        last_log_index: u64,
        last_log_term: u64,
    },
    AppendEntries {
        term: u64,
        leader: usize,
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Entry>,
        leader_commit: u64,
    },
    InstallSnapshot {
        term: u64,
        leader: usize,
        last_included_index: u64,
        last_included_term: u64,
        data: Vec<u8>,
    },
}

/// Every RPC reply.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    Vote {
        term: u64,
        granted: bool,
    },
    /// On a rejection, where the follower's log stops matching: the first index of its
    /// conflicting term (`conflict_term`), or its log's end + 1 if it is too short (`None`).
    Append {
        term: u64,
        success: bool,
        conflict_index: u64,
        conflict_term: Option<u64>,
    },
    Snapshot {
        term: u64,
    },
}

impl Reply {
    fn term(&self) -> u64 {
        match self {
            Reply::Vote { term, .. } | Reply::Append { term, .. } | Reply::Snapshot { term } => *term,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

/// The log after the last snapshot: `entries[i]` is the entry at index `base_index + 1 + i`;
/// the snapshot covers everything up to `base_index`, whose term is `base_term`.
#[derive(Clone, Debug, Default)]
struct Log {
    base_index: u64,
    base_term: u64,
    entries: Vec<Entry>,
}

impl Log {
    fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.base_term, |e| e.term)
    }

    /// The term of the entry at `index`, if the log knows it (the snapshot's last entry
    /// included).
    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.base_index {
            Some(self.base_term)
        } else if index < self.base_index || index > self.last_index() {
            None
        } else {
            Some(self.entries[(index - self.base_index - 1) as usize].term)
        }
    }

    fn entry(&self, index: u64) -> &Entry {
        &self.entries[(index - self.base_index - 1) as usize]
    }

    /// Up to `max` entries from `index` on.
    fn entries_from(&self, index: u64, max: usize) -> Vec<Entry> {
        let from = (index - self.base_index - 1) as usize;
        self.entries[from..].iter().take(max).cloned().collect()
    }

    /// Drops the entry at `index` and everything after it.
    fn truncate_from(&mut self, index: u64) {
        self.entries.truncate((index - self.base_index - 1) as usize);
    }

    /// The log now starts after a snapshot through `index`, whose entry has `term`.
    fn compact(&mut self, index: u64, term: u64) {
        if self.term_at(index) == Some(term) {
            self.entries.drain(..(index - self.base_index) as usize);
        } else {
            self.entries.clear();
        }
        self.base_index = index;
        self.base_term = term;
    }

    /// The first index of the run of entries of `term` that contains `index`.
    fn first_index_of_term_run(&self, index: u64, term: u64) -> u64 {
        let mut first = index;
        while first - 1 > self.base_index && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term`, if any.
    fn last_index_of_term(&self, term: u64) -> Option<u64> {
        let i = self.entries.iter().rposition(|e| e.term == term)?;
        Some(self.base_index + 1 + i as u64)
    }
}

/// What a leader keeps per follower about sending.
#[derive(Clone, Copy, Debug, Default)]
struct SendState {
    /// When the last message left (heartbeats are due `HEARTBEAT` later).
    last_sent: Option<Duration>,
    /// Calls still waiting for their reply.
    in_flight: u32,
    /// Something is worth sending before the next heartbeat (new entries, a new commit
    /// index, a rejection to answer).
    pending: bool,
}

/// Everything behind the lock.
struct State {
    // Persistent state on all servers (Figure 2).
    current_term: u64,
    voted_for: Option<usize>,
    log: Log,
    // Volatile state on all servers.
    commit_index: u64,
    last_applied: u64,
    role: Role,
    election_deadline: Duration,
    // Volatile state on leaders, reinitialized after each election.
    next_index: Vec<u64>,
    match_index: Vec<u64>,
    sends: Vec<SendState>,
    rng: rand_chacha::ChaCha8Rng,
}

impl State {
    fn reset_election_timer(&mut self) {
        let ms = self.rng.gen_range(ELECTION_TIMEOUT_MS);
        self.election_deadline = sim::now() + Duration::from_millis(ms);
    }

    /// §5.1: a higher term seen anywhere makes this server a follower of that term.
    fn become_follower(&mut self, term: u64) {
        assert!(term > self.current_term, "terms only grow");
        self.current_term = term;
        self.voted_for = None;
        self.role = Role::Follower;
    }

    /// What `persist()` saves. With the planted mistake, the vote is left out.
    fn durable(&self, mistake: Option<Mistake>) -> Durable<'_> {
        Durable {
            current_term: self.current_term,
            voted_for: if mistake == Some(Mistake::VoteNotPersisted) { None } else { self.voted_for },
            snapshot_index: self.log.base_index,
            snapshot_term: self.log.base_term,
            entries: Cow::Borrowed(&self.log.entries),
        }
    }

    /// The invariants every step keeps.
    fn check(&self) {
        assert!(
            self.log.base_index <= self.last_applied
                && self.last_applied <= self.commit_index
                && self.commit_index <= self.log.last_index(),
            "snapshot {} <= applied {} <= commit {} <= last {} broken",
            self.log.base_index,
            self.last_applied,
            self.commit_index,
            self.log.last_index()
        );
        assert!(self.log.entries.iter().all(|e| e.term <= self.current_term), "an entry from a future term");
    }
}

/// Wakes whoever waits on it; waiters compare generations, so a wake-up is never lost.
#[derive(Default)]
struct Signal {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Signal {
    fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.waiters.take() {
            w.wake();
        }
    }

    /// Resolves once the generation differs from `seen`.
    fn changed(&self, seen: u64) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.generation.get() != seen {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// One Raft server.
pub struct StudentRaft {
    me: usize,
    peers: usize,
    mistake: Option<Mistake>,
    env: CourseEnv,
    persister: Persister,
    apply: ApplySender,
    state: RefCell<State>,
    /// Per peer: wakes its replicator when there is something to send.
    wakeups: Vec<Signal>,
}

impl StudentRaft {
    fn others(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.peers).filter(move |&p| p != self.me)
    }

    /// Saves Figure 2's persistent state (the snapshot stays as it is).
    fn persist(&self, s: &State) {
        self.persister.save(persist::encode(&s.durable(self.mistake)), None);
    }

    /// Sends every newly committed entry to the service, in order.
    fn apply_committed(&self, s: &mut State) {
        while s.last_applied < s.commit_index {
            s.last_applied += 1;
            let e = s.log.entry(s.last_applied);
            self.apply.send(ApplyMsg::Command { index: s.last_applied, term: e.term, command: e.command.clone() });
        }
    }

    /// Marks `peer` as having something to send and wakes its replicator.
    fn kick(&self, s: &mut State, peer: usize) {
        s.sends[peer].pending = true;
        self.wakeups[peer].notify();
    }

    // ---- elections (§5.2) ----

    async fn ticker(self: Rc<Self>) {
        loop {
            let deadline = self.state.borrow().election_deadline;
            sim::sleep_until(deadline).await;
            let timed_out = {
                let mut s = self.state.borrow_mut();
                if sim::now() < s.election_deadline {
                    false
                } else if s.role == Role::Leader {
                    s.reset_election_timer();
                    false
                } else {
                    true
                }
            };
            if timed_out {
                self.start_election();
            }
        }
    }

    fn start_election(self: &Rc<Self>) {
        let mut s = self.state.borrow_mut();
        s.current_term += 1;
        s.role = Role::Candidate;
        s.voted_for = Some(self.me);
        s.reset_election_timer();
        self.persist(&s);
        let term = s.current_term;
        let args = Rpc::RequestVote {
            term,
            candidate: self.me,
            last_log_index: s.log.last_index(),
            last_log_term: s.log.last_term(),
        };
        let votes = Rc::new(Cell::new(1));
        if 2 > self.peers {
            self.become_leader(&mut s);
            return;
        }
        drop(s);
        for peer in self.others() {
            let (rf, args, votes) = (self.clone(), args.clone(), votes.clone());
            self.env.spawn(async move { rf.request_vote(peer, term, args, votes).await });
        }
    }

    /// Asks `peer` for its vote in `term`, again if the request or reply is lost, while the
    /// election lasts.
    async fn request_vote(self: Rc<Self>, peer: usize, term: u64, args: Rpc, votes: Rc<Cell<usize>>) {
        loop {
            {
                let s = self.state.borrow();
                if s.role != Role::Candidate || s.current_term != term {
                    return;
                }
            }
            match self.env.call::<Rpc, Reply>(peer, &args).await {
                Err(_) => sim::sleep(Duration::from_millis(10)).await,
                Ok(Reply::Vote { term: reply_term, granted }) => {
                    let mut s = self.state.borrow_mut();
                    if reply_term > s.current_term {
                        s.become_follower(reply_term);
                        self.persist(&s);
                    } else if granted && s.role == Role::Candidate && s.current_term == term {
                        votes.set(votes.get() + 1);
                        if votes.get() * 2 > self.peers {
                            self.become_leader(&mut s);
                        }
                    }
                    return;
                }
                Ok(other) => panic!("server {} answered RequestVote with {other:?}", peer),
            }
        }
    }

    fn become_leader(self: &Rc<Self>, s: &mut State) {
        s.role = Role::Leader;
        let last = s.log.last_index();
        s.next_index = vec![last + 1; self.peers];
        s.match_index = vec![0; self.peers];
        s.match_index[self.me] = last;
        s.sends = vec![SendState::default(); self.peers];
        let term = s.current_term;
        for peer in self.others() {
            let rf = self.clone();
            self.env.spawn(async move { rf.replicator(peer, term).await });
        }
    }

    fn on_request_vote(&self, term: u64, candidate: usize, last_log_index: u64, last_log_term: u64) -> Reply {
        let mut s = self.state.borrow_mut();
        if term < s.current_term {
            return Reply::Vote { term: s.current_term, granted: false };
        }
        let mut dirty = false;
        if term > s.current_term {
            s.become_follower(term);
            dirty = true;
        }
        // §5.4.1: only for a candidate whose log is at least as up to date as ours.
        let up_to_date = last_log_term > s.log.last_term()
            || (last_log_term == s.log.last_term() && last_log_index >= s.log.last_index());
        let granted = up_to_date && s.voted_for.is_none_or(|v| v == candidate);
        if granted {
            dirty |= s.voted_for != Some(candidate);
            s.voted_for = Some(candidate);
            s.reset_election_timer();
        }
        if dirty {
            self.persist(&s);
        }
        Reply::Vote { term: s.current_term, granted }
    }

    // ---- log replication (§5.3) and snapshots (§7) ----

    /// Keeps `peer` up to date while this server leads `term`.
    async fn replicator(self: Rc<Self>, peer: usize, term: u64) {
        loop {
            let seen = self.wakeups[peer].generation.get();
            let wait = {
                let mut s = self.state.borrow_mut();
                if s.role != Role::Leader || s.current_term != term {
                    return;
                }
                let now = sim::now();
                let send = s.sends[peer];
                let heartbeat_due = send.last_sent.is_none_or(|t| now >= t + HEARTBEAT);
                if heartbeat_due || (send.pending && send.in_flight == 0) {
                    s.sends[peer] = SendState { last_sent: Some(now), in_flight: send.in_flight + 1, pending: false };
                    let msg = self.message_for(&s, peer);
                    let rf = self.clone();
                    self.env.spawn(async move { rf.send(peer, term, msg).await });
                }
                s.sends[peer].last_sent.expect("just sent") + HEARTBEAT - now
            };
            sim::timeout(wait, self.wakeups[peer].changed(seen)).await;
        }
    }

    /// What `peer` needs next: entries from its next index, or the snapshot if they are gone.
    fn message_for(&self, s: &State, peer: usize) -> Rpc {
        let next = s.next_index[peer];
        if next <= s.log.base_index {
            Rpc::InstallSnapshot {
                term: s.current_term,
                leader: self.me,
                last_included_index: s.log.base_index,
                last_included_term: s.log.base_term,
                data: self.persister.read_snapshot(),
            }
        } else {
            let prev = next - 1;
            Rpc::AppendEntries {
                term: s.current_term,
                leader: self.me,
                prev_log_index: prev,
                prev_log_term: s.log.term_at(prev).expect("next_index is within the log"),
                entries: s.log.entries_from(next, MAX_ENTRIES_PER_APPEND),
                leader_commit: s.commit_index,
            }
        }
    }

    /// One call to `peer` and what its reply teaches the leader of `term`.
    async fn send(self: Rc<Self>, peer: usize, term: u64, msg: Rpc) {
        let result = self.env.call::<Rpc, Reply>(peer, &msg).await;
        let mut s = self.state.borrow_mut();
        if let Ok(reply) = &result {
            if reply.term() > s.current_term {
                s.become_follower(reply.term());
                self.persist(&s);
                return;
            }
        }
        if s.role != Role::Leader || s.current_term != term {
            return; // a reply to an earlier leadership
        }
        s.sends[peer].in_flight -= 1;
        let last = s.log.last_index();
        match (msg, result) {
            // Lost, or the peer is unreachable: the next heartbeat tries again. (Not at once: a
            // call can fail at the instant it is made — a one-way cut drops the reply at
            // zero delay — and an immediate retry would spin without simulated time passing.)
            (_, Err(_)) => {}
            (Rpc::AppendEntries { prev_log_index, entries, .. }, Ok(Reply::Append { success: true, .. })) => {
                let matched = prev_log_index + entries.len() as u64;
                s.match_index[peer] = s.match_index[peer].max(matched);
                s.next_index[peer] = s.next_index[peer].max(s.match_index[peer] + 1);
                self.advance_commit(&mut s);
                if s.next_index[peer] <= last {
                    self.kick(&mut s, peer);
                }
            }
            (Rpc::AppendEntries { .. }, Ok(Reply::Append { success: false, conflict_index, conflict_term, .. })) => {
                // Skip the follower's whole conflicting term: past our last entry of that
                // term if we have one, else to where its run of that term starts.
                let next = conflict_term.and_then(|t| s.log.last_index_of_term(t)).map_or(conflict_index, |i| i + 1);
                s.next_index[peer] = next.clamp(s.match_index[peer] + 1, last + 1);
                self.kick(&mut s, peer);
            }
            (Rpc::InstallSnapshot { last_included_index, .. }, Ok(Reply::Snapshot { .. })) => {
                s.match_index[peer] = s.match_index[peer].max(last_included_index);
                s.next_index[peer] = s.next_index[peer].max(s.match_index[peer] + 1);
                self.advance_commit(&mut s);
                if s.next_index[peer] <= last {
                    self.kick(&mut s, peer);
                }
            }
            (msg, Ok(reply)) => panic!("server {peer} answered {msg:?} with {reply:?}"),
        }
        s.check();
    }

    /// §5.3 and §5.4.2: commit the highest index a majority holds, if it is of the current
    /// term (an entry of an earlier term is committed only by one of the current term after
    /// it: Figure 8).
    fn advance_commit(&self, s: &mut State) {
        let mut n = s.log.last_index();
        while n > s.commit_index && s.log.term_at(n) == Some(s.current_term) {
            let holders = (0..self.peers).filter(|&p| p == self.me || s.match_index[p] >= n).count();
            if holders * 2 > self.peers {
                s.commit_index = n;
                self.apply_committed(s);
                // Tell the followers at once rather than at the next heartbeat.
                for peer in self.others() {
                    self.kick(s, peer);
                }
                return;
            }
            n -= 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_entries(
        &self,
        term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        mut entries: Vec<Entry>,
        leader_commit: u64,
    ) -> Reply {
        let mut s = self.state.borrow_mut();
        if term < s.current_term {
            return Reply::Append { term: s.current_term, success: false, conflict_index: 0, conflict_term: None };
        }
        let mut dirty = false;
        if term > s.current_term {
            s.become_follower(term);
            dirty = true;
        }
        assert!(s.role != Role::Leader, "server {} leads term {term} and heard another leader of it", self.me);
        s.role = Role::Follower;
        s.reset_election_timer();

        // Entries our snapshot covers are committed, so they match: skip them.
        let (mut prev, mut prev_term) = (prev_log_index, prev_log_term);
        if prev < s.log.base_index {
            let covered = (s.log.base_index - prev) as usize;
            if covered >= entries.len() {
                if dirty {
                    self.persist(&s);
                }
                return Reply::Append { term: s.current_term, success: true, conflict_index: 0, conflict_term: None };
            }
            prev_term = entries[covered - 1].term;
            prev = s.log.base_index;
            entries.drain(..covered);
            assert_eq!(prev_term, s.log.base_term, "a leader disagrees with our snapshot");
        }

        // §5.3: reply false if the log has no entry at prev_log_index of prev_log_term.
        let reject = if prev > s.log.last_index() {
            Some((s.log.last_index() + 1, None))
        } else if s.log.term_at(prev) != Some(prev_term) {
            let t = s.log.term_at(prev).expect("prev is within the log");
            assert!(prev > s.commit_index, "a leader disagrees with committed entry {prev}");
            Some((s.log.first_index_of_term_run(prev, t), Some(t)))
        } else {
            None
        };
        if let Some((conflict_index, conflict_term)) = reject {
            if dirty {
                self.persist(&s);
            }
            return Reply::Append { term: s.current_term, success: false, conflict_index, conflict_term };
        }

        // Append what is new; cut the log at the first entry that conflicts, and only there.
        let count = entries.len() as u64;
        for (i, e) in entries.into_iter().enumerate() {
            let index = prev + 1 + i as u64;
            if index <= s.log.last_index() {
                if s.log.term_at(index) == Some(e.term) {
                    continue;
                }
                assert!(index > s.commit_index, "server {} would drop committed entry {index}", self.me);
                s.log.truncate_from(index);
            }
            s.log.entries.push(e);
            dirty = true;
        }
        if dirty {
            self.persist(&s);
        }
        if leader_commit > s.commit_index {
            s.commit_index = s.commit_index.max(leader_commit.min(prev + count));
            self.apply_committed(&mut s);
        }
        s.check();
        Reply::Append { term: s.current_term, success: true, conflict_index: 0, conflict_term: None }
    }

    fn on_install_snapshot(
        &self,
        term: u64,
        last_included_index: u64,
        last_included_term: u64,
        data: Vec<u8>,
    ) -> Reply {
        let mut s = self.state.borrow_mut();
        if term < s.current_term {
            return Reply::Snapshot { term: s.current_term };
        }
        if term > s.current_term {
            s.become_follower(term);
            self.persist(&s);
        }
        s.role = Role::Follower;
        s.reset_election_timer();
        // A snapshot of what we have already committed teaches nothing.
        if last_included_index <= s.commit_index {
            return Reply::Snapshot { term: s.current_term };
        }
        // §7: keep the entries after the snapshot if our log agrees with it there.
        s.log.compact(last_included_index, last_included_term);
        s.commit_index = last_included_index;
        s.last_applied = last_included_index;
        self.persister.save(persist::encode(&s.durable(self.mistake)), Some(data.clone()));
        self.apply.send(ApplyMsg::Snapshot { index: last_included_index, term: last_included_term, data });
        s.check();
        Reply::Snapshot { term: s.current_term }
    }
}

impl CourseRaft for StudentRaft {
    type Config = Config;
    type Rpc = Rpc;
    type RpcReply = Reply;
    const NAME: &'static str = "student";

    fn bugs() -> Vec<(&'static str, &'static str)> {
        Mistake::ALL.iter().map(|(_, name, what)| (*name, *what)).collect()
    }

    fn config(_peers: usize, bug: Option<&str>) -> Config {
        Config { mistake: bug.map(|b| Mistake::from_name(b).unwrap_or_else(|| panic!("no mistake named {b}"))) }
    }

    fn make(config: &Config, env: CourseEnv, persister: Persister, apply: ApplySender) -> Rc<Self> {
        let d = persist::decode(&persister.read_raft_state())
            .unwrap_or_else(|e| panic!("server {} cannot read its persisted state: {e}", env.me()));
        let peers = env.peers();
        let mut state = State {
            current_term: d.current_term,
            voted_for: d.voted_for,
            log: Log { base_index: d.snapshot_index, base_term: d.snapshot_term, entries: d.entries.into_owned() },
            // The service reloads the snapshot itself; everything after it is applied again
            // once a leader says it is committed.
            commit_index: d.snapshot_index,
            last_applied: d.snapshot_index,
            role: Role::Follower,
            election_deadline: Duration::ZERO,
            next_index: vec![0; peers],
            match_index: vec![0; peers],
            sends: vec![SendState::default(); peers],
            rng: env.rng("student-raft"),
        };
        state.reset_election_timer();
        let rf = Rc::new(StudentRaft {
            me: env.me(),
            peers,
            mistake: config.mistake,
            env,
            persister,
            apply,
            state: RefCell::new(state),
            wakeups: (0..peers).map(|_| Signal::default()).collect(),
        });
        let ticker = rf.clone();
        rf.env.spawn(async move { ticker.ticker().await });
        rf
    }

    fn start(&self, command: Vec<u8>) -> (u64, u64, bool) {
        let mut s = self.state.borrow_mut();
        if s.role != Role::Leader {
            return (s.log.last_index() + 1, s.current_term, false);
        }
        let term = s.current_term;
        s.log.entries.push(Entry { term, command });
        let index = s.log.last_index();
        s.match_index[self.me] = index;
        self.persist(&s);
        for peer in self.others() {
            self.kick(&mut s, peer);
        }
        if self.peers == 1 {
            self.advance_commit(&mut s);
        }
        (index, term, true)
    }

    fn get_state(&self) -> (u64, bool) {
        let s = self.state.borrow();
        (s.current_term, s.role == Role::Leader)
    }

    fn snapshot(&self, index: u64, snapshot: Vec<u8>) {
        let mut s = self.state.borrow_mut();
        // Too old (a newer snapshot already replaced the log there), or not applied yet.
        if index <= s.log.base_index || index > s.last_applied {
            return;
        }
        let term = s.log.term_at(index).expect("an applied index is in the log");
        s.log.compact(index, term);
        self.persister.save(persist::encode(&s.durable(self.mistake)), Some(snapshot));
        s.check();
    }

    fn handle(&self, _from: usize, rpc: Rpc) -> Reply {
        match rpc {
            Rpc::RequestVote { term, candidate, last_log_index, last_log_term } => {
                self.on_request_vote(term, candidate, last_log_index, last_log_term)
            }
            Rpc::AppendEntries { term, prev_log_index, prev_log_term, entries, leader_commit, .. } => {
                self.on_append_entries(term, prev_log_index, prev_log_term, entries, leader_commit)
            }
            Rpc::InstallSnapshot { term, last_included_index, last_included_term, data, .. } => {
                self.on_install_snapshot(term, last_included_index, last_included_term, data)
            }
        }
    }
}
