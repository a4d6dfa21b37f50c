//! Paxos ("Paxos Made Simple", Lamport 2001, §2) in the shape of the course's 2015 lab 3A
//! library (reference `6824-old-labs.md` §4.2), as a pure core: a sequence of independent
//! agreement instances, each run by proposers and acceptors on every peer.
//!
//! The library's surface: [`Paxos::start`] (propose a value for an instance; returns at
//! once), [`Paxos::status`] (`Decided`, `Pending` or `Forgotten`; local state only),
//! [`Paxos::done`] (the application no longer needs instances up to a number),
//! [`Paxos::max`] and [`Paxos::min`] (one more than the lowest `done` over all peers;
//! instances below it are forgotten and their memory freed). `done` values travel piggybacked
//! on every message. A peer reaches its own acceptor by function call, never by the network
//! (reference §4.5: a deaf peer must still count itself).
//!
//! Proposal numbers are unique per peer (`round × npeers + me + 1`). A proposer that fails to
//! get a majority — rejections, failed calls — retries with a higher number after a backoff
//! drawn from its seeded stream (10 ms doubling to 1 s), until the instance is decided or
//! forgotten. Time is an input (`now_ms`); the core never reads a clock.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A peer's index in the peer list.
pub type PeerId = usize;

/// First and largest retry backoff of a proposer, in ms.
pub const BACKOFF_MS_MIN: u64 = 10;
/// The largest retry backoff of a proposer, in ms (the backoff doubles up to it).
pub const BACKOFF_MS_MAX: u64 = 1000;
/// How long a proposer's round (prepare, then accept) may wait for its answers, in ms,
/// before it is abandoned and retried with a higher number. A round otherwise ends only
/// when every peer has answered or its call failed; an answer the network holds (a clogged
/// link, a message held until a protocol event) arrives late, not never, and a round
/// waiting on it would stall its instance for as long — for good, when the event it waits
/// for needs that very instance decided. The course's proposer never waits so: its RPC
/// returns false once the connection gives up. A rejection ends a round at once (see
/// `Paxos::on_reply`), so this backstop is for rounds that heard too few answers at all:
/// longer than a round can take on this network (labrpc's long delays fail a call after up
/// to 7 s; long reordering holds a reply up to 2.2 s). At 2 s, rounds whose replies were
/// merely reordered timed out and retried with higher numbers, rejecting the other peers'
/// rounds: four peers dueled over the same holes for seconds (`kvpaxos::swarm_3b` seed 466).
pub const ROUND_TIMEOUT_MS: u64 = 10_000;

/// The course's `Fate` of an instance at one peer, with the decided value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate<V> {
    /// Decided, with the value chosen.
    Decided(V),
    /// Not decided yet as far as this peer knows.
    Pending,
    /// Below `Min`: decided and released.
    Forgotten,
}

/// The body of a request between peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PxRequest<V> {
    /// Phase 1a.
    Prepare {
        /// The instance.
        seq: u64,
        /// The proposal number.
        n: u64,
    },
    /// Phase 2a.
    Accept {
        /// The instance.
        seq: u64,
        /// The proposal number.
        n: u64,
        /// The value proposed.
        v: V,
    },
    /// The value chosen for `seq` (learners).
    Decided {
        /// The instance.
        seq: u64,
        /// The value chosen.
        v: V,
    },
}

/// The body of a reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PxReply<V> {
    /// Phase 1b: promise not to accept below `n`, with the highest proposal accepted so far.
    Promise {
        /// The highest-numbered proposal accepted so far, with its value.
        accepted: Option<(u64, V)>,
    },
    /// Phase 2b.
    Accepted,
    /// The acceptor promised `n_p`, higher than the proposal.
    Reject {
        /// The acceptor's promise.
        n_p: u64,
    },
    /// The instance is below the acceptor's `Min`: decided and released everywhere.
    Forgotten,
    /// A `Decided` was taken.
    Ack,
    /// The acceptor is too far behind to take part in this instance (its log engine set an
    /// accept limit: [`Paxos::set_accept_limit`]); nothing was promised, accepted or learned.
    /// Counts as an answer without a vote, like a failed call.
    Behind,
}

/// What travels on the wire: the sender, its `done` value (piggybacked) and the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<B> {
    /// The sending peer.
    pub from: PeerId,
    /// The highest instance the sender's application called `Done` with (-1: none).
    pub done: i64,
    /// The request or reply.
    pub body: B,
}

/// Planted bugs (switched on by scenarios and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PxBugs {
    /// `ignore-accepted`: phase 2 proposes the proposer's own value even when a promise
    /// reported an accepted one.
    pub ignore_accepted: bool,
    /// `min-too-early`: `Min` skips the peers that never called `Done`, so it advances past
    /// instances such a peer may still need.
    pub min_too_early: bool,
    /// `accept-below-promise`: an acceptor takes any Accept, even below its promise.
    pub accept_below_promise: bool,
    /// `no-retry`: a proposer whose round failed gives up instead of trying a higher number.
    pub no_retry: bool,
    /// `no-decided-broadcast`: a proposer that got its value chosen tells no other peer.
    pub no_decided_broadcast: bool,
    /// `forget-promise`: an acceptor keeps only decisions across a restart: the promises it
    /// made, and the proposals it accepted on them, are forgotten, so a restarted acceptor
    /// promises again to a proposer it had refused and reports no accepted value (read by
    /// [`Paxos::restore_acceptor`]; the library-shaped peers never restart).
    pub forget_promise: bool,
}

/// A call the shell must make: send `request` to peer `to`, and hand the outcome back to
/// [`Paxos::on_reply`] with `tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PxCall<V> {
    /// The peer called.
    pub to: PeerId,
    /// The core's number for the call, handed back with its outcome.
    pub tag: u64,
    /// What to send.
    pub request: Envelope<PxRequest<V>>,
}

#[derive(Clone, Debug)]
enum Phase<V> {
    Prepare {
        promises: BTreeSet<PeerId>,
        highest: Option<(u64, V)>,
    },
    Accept {
        v: V,
        accepts: BTreeSet<PeerId>,
    },
    /// Waiting to retry with a higher number.
    Backoff {
        until_ms: u64,
    },
}

#[derive(Clone, Debug)]
struct Proposer<V> {
    value: V,
    n: u64,
    /// Rounds tried, for the backoff.
    rounds: u32,
    /// When the current round began, for [`ROUND_TIMEOUT_MS`].
    round_started_ms: u64,
    phase: Phase<V>,
    /// Peers that answered or failed in the current phase.
    answered: BTreeSet<PeerId>,
}

impl<V> Proposer<V> {
    /// When this proposer next acts on its own: at the end of its backoff, or when its
    /// round has waited [`ROUND_TIMEOUT_MS`] for answers.
    fn due_ms(&self) -> u64 {
        match self.phase {
            Phase::Backoff { until_ms } => until_ms,
            Phase::Prepare { .. } | Phase::Accept { .. } => self.round_started_ms + ROUND_TIMEOUT_MS,
        }
    }
}

/// What an acceptor (and learner) holds of one instance: what must survive a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptorState<V> {
    /// The highest proposal number promised (0: none).
    pub n_p: u64,
    /// The highest-numbered proposal accepted, with its value.
    pub accepted: Option<(u64, V)>,
    /// The value chosen, once this peer learned it.
    pub decided: Option<V>,
}

#[derive(Clone, Debug)]
struct Instance<V> {
    /// Highest proposal promised.
    n_p: u64,
    /// Highest proposal accepted, with its value.
    accepted: Option<(u64, V)>,
    decided: Option<V>,
    proposer: Option<Proposer<V>>,
}

impl<V> Default for Instance<V> {
    fn default() -> Self {
        Instance { n_p: 0, accepted: None, decided: None, proposer: None }
    }
}

/// One Paxos peer.
#[derive(Clone, Debug)]
pub struct Paxos<V> {
    me: PeerId,
    npeers: usize,
    instances: BTreeMap<u64, Instance<V>>,
    /// Highest `done` argument of every peer as known here (-1: none).
    done: Vec<i64>,
    /// Highest instance number known (-1: none).
    max_seq: i64,
    /// Instances at or past this one are refused ([`PxReply::Behind`]); `None`: no limit.
    accept_limit: Option<u64>,
    /// Highest proposal number seen anywhere, to pick a higher one.
    max_n_seen: u64,
    /// Calls out, by tag: (instance, proposal number, peer, phase: 1 prepare, 2 accept,
    /// 3 decided).
    calls: BTreeMap<u64, (u64, u64, PeerId, u8)>,
    next_tag: u64,
    out: Vec<PxCall<V>>,
    /// Instances this peer learned decided since the last `take_decided`, for checkers.
    newly_decided: Vec<(u64, V)>,
    rng: ChaCha8Rng,
    bugs: PxBugs,
    /// Forget below this peer's own `done` rather than below `Min` (the log engine's mode,
    /// [`Paxos::forgetting_at_own_done`]).
    local_forget: bool,
    /// Instances whose acceptor state changed since the last [`Paxos::take_dirty`].
    dirty: BTreeSet<u64>,
    /// Instances that had a proposer when last looked at (a superset of those that have one),
    /// so retries are found without a pass over every instance held.
    active: BTreeSet<u64>,
    /// (peer, instance) of every `Forgotten` answer a proposer got since the last
    /// [`Paxos::take_forgotten`].
    forgotten_at: Vec<(PeerId, u64)>,
}

impl<V: Clone + PartialEq + std::fmt::Debug> Paxos<V> {
    /// Peer `me` of `npeers`, with its own random stream (for backoffs).
    pub fn new(me: PeerId, npeers: usize, rng: ChaCha8Rng, bugs: PxBugs) -> Paxos<V> {
        assert!(me < npeers, "peer {me} of {npeers}");
        Paxos {
            me,
            npeers,
            instances: BTreeMap::new(),
            done: vec![-1; npeers],
            max_seq: -1,
            accept_limit: None,
            max_n_seen: 0,
            calls: BTreeMap::new(),
            next_tag: 1,
            out: Vec::new(),
            newly_decided: Vec::new(),
            rng,
            bugs,
            local_forget: false,
            dirty: BTreeSet::new(),
            active: BTreeSet::new(),
            forgotten_at: Vec::new(),
        }
    }

    /// The same peer, forgetting every instance up to its own `done` at once instead of
    /// waiting for `Min` (for a log whose applied prefix is covered by a snapshot: a peer
    /// that needs a forgotten instance is sent the snapshot instead, see
    /// [`crate::paxos_log`]). An acceptor that forgot an instance never promises for it
    /// again, so the forgetting is safe: every forgotten instance was decided here.
    pub fn forgetting_at_own_done(mut self) -> Self {
        self.local_forget = true;
        self
    }

    /// The lowest instance this peer still holds: `Min`, or in the log engine's mode one
    /// more than its own `done`.
    pub fn floor(&self) -> i64 {
        if self.local_forget {
            self.done[self.me] + 1
        } else {
            self.min()
        }
    }

    /// Whether this peer runs a proposer for `seq`.
    pub fn is_proposing(&self, seq: u64) -> bool {
        self.instances.get(&seq).is_some_and(|i| i.proposer.is_some())
    }

    /// The acceptor state this peer holds for `seq` (`None`: nothing, or forgotten).
    pub fn acceptor(&self, seq: u64) -> Option<AcceptorState<V>> {
        let i = self.instances.get(&seq)?;
        Some(AcceptorState { n_p: i.n_p, accepted: i.accepted.clone(), decided: i.decided.clone() })
    }

    /// Reloads the acceptor state of `seq` after a restart (what [`Paxos::acceptor`] gave
    /// before the crash). The planted bug `forget-promise` keeps only a decision.
    pub fn restore_acceptor(&mut self, seq: u64, mut state: AcceptorState<V>) {
        if self.bugs.forget_promise && state.decided.is_none() {
            state.n_p = 0;
            state.accepted = None;
        }
        self.max_seq = self.max_seq.max(seq as i64);
        self.max_n_seen = self.max_n_seen.max(state.n_p).max(state.accepted.as_ref().map_or(0, |(n, _)| *n));
        let inst = self.instances.entry(seq).or_default();
        inst.n_p = state.n_p;
        inst.accepted = state.accepted;
        inst.decided = state.decided;
    }

    /// Reloads the highest instance known after a restart.
    pub fn restore_max(&mut self, max: i64) {
        self.max_seq = self.max_seq.max(max);
    }

    /// The instances whose acceptor state changed (or were forgotten) since the last call,
    /// in order: what a persisting driver must save again.
    pub fn take_dirty(&mut self) -> BTreeSet<u64> {
        std::mem::take(&mut self.dirty)
    }

    /// (peer, instance) of each `Forgotten` answer a proposer got since the last call: that
    /// peer released the instance (a log engine fetches its snapshot).
    pub fn take_forgotten(&mut self) -> Vec<(PeerId, u64)> {
        std::mem::take(&mut self.forgotten_at)
    }

    /// This peer's own highest `Done` argument (-1: none).
    pub fn own_done(&self) -> i64 {
        self.done[self.me]
    }

    fn majority(&self) -> usize {
        self.npeers / 2 + 1
    }

    /// The course's `Start(seq, v)`: propose `v` for instance `seq` (ignored below `Min`, or if
    /// this peer already proposes for it or knows it decided).
    pub fn start(&mut self, seq: u64, v: V, now_ms: u64) {
        if (seq as i64) < self.floor() {
            return;
        }
        self.max_seq = self.max_seq.max(seq as i64);
        let inst = self.instances.entry(seq).or_default();
        if inst.decided.is_some() || inst.proposer.is_some() {
            return;
        }
        inst.proposer = Some(Proposer {
            value: v,
            n: 0,
            rounds: 0,
            round_started_ms: now_ms,
            phase: Phase::Backoff { until_ms: now_ms },
            answered: BTreeSet::new(),
        });
        self.active.insert(seq);
        self.new_round(seq, now_ms);
        self.check_invariants(Some(seq));
    }

    /// From now on, refuse every instance at or past `limit` as an acceptor and a learner
    /// (`None`: none). A log engine sets it to keep a peer that fell behind from retaining
    /// instances it cannot apply before it has caught up; the library's own users set none.
    pub fn set_accept_limit(&mut self, limit: Option<u64>) {
        self.accept_limit = limit;
    }

    /// The course's `Status(seq)`: local state only.
    pub fn status(&self, seq: u64) -> Fate<V> {
        if (seq as i64) < self.floor() {
            return Fate::Forgotten;
        }
        match self.instances.get(&seq).and_then(|i| i.decided.clone()) {
            Some(v) => Fate::Decided(v),
            None => Fate::Pending,
        }
    }

    /// The course's `Done(seq)`: this peer's application no longer needs instances ≤ `seq`
    /// (calls with lower numbers than before are ignored: the maximum counts).
    pub fn done(&mut self, seq: u64) {
        self.done[self.me] = self.done[self.me].max(seq as i64);
        self.forget();
    }

    /// The course's `Max()`: the highest instance this peer knows of, or -1. It survives
    /// forgetting.
    pub fn max(&self) -> i64 {
        self.max_seq
    }

    /// The course's `Min()`: one more than the lowest `done` over all peers; every instance
    /// below it is forgotten here.
    pub fn min(&self) -> i64 {
        let counted = self.done.iter().filter(|&&d| d >= 0 || !self.bugs.min_too_early);
        counted.copied().min().unwrap_or(-1) + 1
    }

    /// Instances held (decided or not): the retained memory the course's TestForgetMem bounds.
    pub fn retained_instances(&self) -> usize {
        self.instances.len()
    }

    /// When the core next wants [`Paxos::tick`] (a proposer's retry, or the end of a round
    /// that waited [`ROUND_TIMEOUT_MS`]), in ms.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.active.iter().filter_map(|s| Some(self.instances.get(s)?.proposer.as_ref()?.due_ms())).min()
    }

    /// Time passed: proposers whose backoff ended, or whose round waited too long, start a
    /// new round.
    pub fn tick(&mut self, now_ms: u64) {
        let instances = &self.instances;
        self.active.retain(|s| instances.get(s).is_some_and(|i| i.proposer.is_some()));
        let due: Vec<u64> = self
            .active
            .iter()
            .filter(|s| instances[s].proposer.as_ref().is_some_and(|p| p.due_ms() <= now_ms))
            .copied()
            .collect();
        for seq in due {
            self.new_round(seq, now_ms);
        }
        self.check_invariants(None);
    }

    /// Takes the (instance, value) pairs this peer learned decided since the last call.
    pub fn take_decided(&mut self) -> Vec<(u64, V)> {
        std::mem::take(&mut self.newly_decided)
    }

    /// Takes the calls to make, in order.
    pub fn take_calls(&mut self) -> Vec<PxCall<V>> {
        std::mem::take(&mut self.out)
    }

    fn envelope<B>(&self, body: B) -> Envelope<B> {
        Envelope { from: self.me, done: self.done[self.me], body }
    }

    fn learn_done(&mut self, from: PeerId, done: i64) {
        if from < self.npeers && done > self.done[from] {
            self.done[from] = done;
            self.forget();
        }
    }

    /// Frees every instance below `Min`.
    fn forget(&mut self) {
        let min = self.floor();
        if min > 0 {
            let kept = self.instances.split_off(&(min as u64));
            self.dirty.extend(self.instances.keys());
            self.instances = kept;
            self.active = self.active.split_off(&(min as u64));
            self.calls.retain(|_, (seq, _, _, _)| *seq as i64 >= min);
        }
    }

    /// Sends `request` to every peer; this peer's own acceptor answers by function call.
    fn broadcast(&mut self, seq: u64, n: u64, request: PxRequest<V>) {
        let phase = match request {
            PxRequest::Prepare { .. } => 1,
            PxRequest::Accept { .. } => 2,
            PxRequest::Decided { .. } => 3,
        };
        let mut local = None;
        for to in 0..self.npeers {
            if to == self.me {
                local = Some(self.handle(self.envelope(request.clone())));
                continue;
            }
            let tag = self.next_tag;
            self.next_tag += 1;
            self.calls.insert(tag, (seq, n, to, phase));
            self.out.push(PxCall { to, tag, request: self.envelope(request.clone()) });
        }
        if let Some(reply) = local {
            self.on_answer(seq, n, phase, self.me, Some(reply.body));
        }
    }

    /// Starts a new round for `seq` with a number above every one seen.
    fn new_round(&mut self, seq: u64, now_ms: u64) {
        let (npeers, me) = (self.npeers as u64, self.me as u64);
        let n = (self.max_n_seen / npeers + 1) * npeers + me + 1;
        self.max_n_seen = n;
        let Some(p) = self.instances.get_mut(&seq).and_then(|i| i.proposer.as_mut()) else { return };
        p.n = n;
        p.rounds += 1;
        p.round_started_ms = now_ms;
        p.answered.clear();
        p.phase = Phase::Prepare { promises: BTreeSet::new(), highest: None };
        self.broadcast(seq, n, PxRequest::Prepare { seq, n });
    }

    /// An acceptor's (or learner's) answer to a request, whoever sent it.
    pub fn handle(&mut self, req: Envelope<PxRequest<V>>) -> Envelope<PxReply<V>> {
        self.learn_done(req.from, req.done);
        let seq = match &req.body {
            PxRequest::Prepare { seq, .. } | PxRequest::Accept { seq, .. } | PxRequest::Decided { seq, .. } => *seq,
        };
        if (seq as i64) < self.floor() {
            return self.envelope(PxReply::Forgotten);
        }
        self.max_seq = self.max_seq.max(seq as i64);
        if self.accept_limit.is_some_and(|limit| seq >= limit) {
            // Refusing is always safe (an acceptor may ignore any request); it only keeps a
            // peer that fell behind from holding instances it cannot apply yet.
            return self.envelope(PxReply::Behind);
        }
        let inst = self.instances.entry(seq).or_default();
        let body = match req.body {
            PxRequest::Prepare { n, .. } => {
                self.max_n_seen = self.max_n_seen.max(n);
                if n > inst.n_p {
                    inst.n_p = n;
                    self.dirty.insert(seq);
                    PxReply::Promise { accepted: inst.accepted.clone() }
                } else {
                    PxReply::Reject { n_p: inst.n_p }
                }
            }
            PxRequest::Accept { n, v, .. } => {
                self.max_n_seen = self.max_n_seen.max(n);
                if n >= inst.n_p || self.bugs.accept_below_promise {
                    inst.n_p = inst.n_p.max(n);
                    inst.accepted = Some((n, v));
                    self.dirty.insert(seq);
                    PxReply::Accepted
                } else {
                    PxReply::Reject { n_p: inst.n_p }
                }
            }
            PxRequest::Decided { v, .. } => {
                // A second, different decision (only a planted bug makes one) is ignored here:
                // the checkers see both peers' first decisions and judge them.
                if inst.decided.is_none() {
                    self.newly_decided.push((seq, v.clone()));
                    inst.decided = Some(v);
                    self.dirty.insert(seq);
                }
                inst.proposer = None;
                self.active.remove(&seq);
                PxReply::Ack
            }
        };
        self.check_invariants(Some(seq));
        self.envelope(body)
    }

    /// The outcome of call `tag`: the reply, or `None` if the call failed.
    pub fn on_reply(&mut self, tag: u64, reply: Option<Envelope<PxReply<V>>>, now_ms: u64) {
        let Some((seq, n, from, phase)) = self.calls.remove(&tag) else { return };
        let body = reply.map(|r| {
            self.learn_done(r.from, r.done);
            r.body
        });
        let rejected = self.on_answer(seq, n, phase, from, body);
        // A round that ended without a majority waits, then tries again. A round some peer
        // rejected (it promised a higher number) ends at once: waiting for the others' answers
        // gains nothing, and one of them may be held by the network for a long time.
        if let Some(inst) = self.instances.get_mut(&seq) {
            let npeers = self.npeers;
            let ended = |p: &Proposer<V>| {
                p.n == n && (rejected || p.answered.len() == npeers) && !matches!(p.phase, Phase::Backoff { .. })
            };
            if inst.proposer.as_ref().is_some_and(ended) {
                if self.bugs.no_retry {
                    inst.proposer = None;
                } else if let Some(p) = inst.proposer.as_mut() {
                    let cap = (BACKOFF_MS_MIN << p.rounds.min(7)).min(BACKOFF_MS_MAX);
                    let wait = self.rng.gen_range(cap / 2..=cap);
                    p.phase = Phase::Backoff { until_ms: now_ms + wait };
                }
            }
        }
        if self.instances.get(&seq).is_none_or(|i| i.proposer.is_none()) {
            self.active.remove(&seq);
        }
        self.check_invariants(Some(seq));
    }

    /// Takes one answer to the round `n` of instance `seq`'s proposer; true when it is a
    /// rejection of the current round.
    fn on_answer(&mut self, seq: u64, n: u64, phase: u8, from: PeerId, body: Option<PxReply<V>>) -> bool {
        let majority = self.majority();
        let ignore_accepted = self.bugs.ignore_accepted;
        let Some(inst) = self.instances.get_mut(&seq) else { return false };
        let Some(p) = inst.proposer.as_mut() else { return false };
        let current = match p.phase {
            Phase::Prepare { .. } => 1,
            Phase::Accept { .. } => 2,
            Phase::Backoff { .. } => 0,
        };
        if p.n != n || phase != current || !p.answered.insert(from) {
            return false; // an answer from an earlier round or phase, or a repeat
        }
        let mut send = None;
        let mut rejected = false;
        match (body, &mut p.phase) {
            (Some(PxReply::Reject { n_p }), _) => {
                self.max_n_seen = self.max_n_seen.max(n_p);
                rejected = true;
            }
            (Some(PxReply::Forgotten), _) => {
                inst.proposer = None;
                self.forgotten_at.push((from, seq));
            }
            (Some(PxReply::Promise { accepted }), Phase::Prepare { promises, highest }) => {
                promises.insert(from);
                if let Some((na, va)) = accepted {
                    if highest.as_ref().is_none_or(|(h, _)| na > *h) {
                        *highest = Some((na, va));
                    }
                }
                if promises.len() == majority {
                    let v = match highest.take() {
                        Some((_, va)) if !ignore_accepted => va,
                        _ => p.value.clone(),
                    };
                    p.phase = Phase::Accept { v: v.clone(), accepts: BTreeSet::new() };
                    p.answered.clear();
                    send = Some(PxRequest::Accept { seq, n, v });
                }
            }
            (Some(PxReply::Accepted), Phase::Accept { v, accepts }) => {
                accepts.insert(from);
                if accepts.len() == majority {
                    send = Some(PxRequest::Decided { seq, v: v.clone() });
                    inst.proposer = None;
                }
            }
            _ => {}
        }
        match send {
            Some(req @ PxRequest::Accept { .. }) => self.broadcast(seq, n, req),
            Some(PxRequest::Decided { v, .. }) if self.bugs.no_decided_broadcast => {
                let _ = self.handle(self.envelope(PxRequest::Decided { seq, v }));
            }
            Some(req @ PxRequest::Decided { .. }) => self.broadcast(seq, n, req),
            Some(PxRequest::Prepare { .. }) => unreachable!("no prepare from an answer"),
            None => {}
        }
        rejected
    }

    /// The core's own invariants, after every step: the acceptor of the instance the step
    /// touched (`seq`) never accepted above its promise; nothing is held below `Min` (or the
    /// log engine's floor). Only what a step can change is looked at, so a step costs the
    /// same however many instances are held.
    fn check_invariants(&self, seq: Option<u64>) {
        let min = self.floor();
        if let Some((&first, _)) = self.instances.first_key_value() {
            assert!(first as i64 >= min, "instance {first} held below Min {min}");
        }
        if let Some(inst) = seq.and_then(|s| self.instances.get(&s)) {
            if let Some((na, _)) = &inst.accepted {
                assert!(*na <= inst.n_p, "instance {seq:?}: accepted {na} above promise {}", inst.n_p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn peers(n: usize, bugs: PxBugs) -> Vec<Paxos<u64>> {
        (0..n).map(|i| Paxos::new(i, n, ChaCha8Rng::seed_from_u64(i as u64), bugs)).collect()
    }

    /// Delivers every call at once, in order, until none is left (a reliable network).
    fn settle(px: &mut [Paxos<u64>], now_ms: u64) {
        loop {
            let mut any = false;
            for i in 0..px.len() {
                for call in px[i].take_calls() {
                    any = true;
                    let reply = px[call.to].handle(call.request);
                    px[i].on_reply(call.tag, Some(reply), now_ms);
                }
            }
            if !any {
                return;
            }
        }
    }

    #[test]
    fn one_proposer_decides_everywhere_with_its_own_acceptor_by_function_call() {
        let mut px = peers(3, PxBugs::default());
        px[0].start(0, 7, 0);
        let calls = px[0].take_calls();
        assert_eq!(calls.len(), 2, "prepares to the two others only");
        for call in calls {
            let reply = px[call.to].handle(call.request);
            px[0].on_reply(call.tag, Some(reply), 0);
        }
        settle(&mut px, 0);
        assert!(px.iter().all(|p| p.status(0) == Fate::Decided(7)));
        assert_eq!(px[0].max(), 0);
    }

    /// `kvpaxos::swarm_3b` seed 446: a proposer's prepare to one peer was held by the
    /// network until a protocol event that needed this very instance decided. A round ended
    /// only when every peer had answered, so it waited for the held answer for good.
    #[test]
    fn a_round_waiting_on_a_held_answer_is_retried_after_the_round_timeout() {
        let mut px = peers(3, PxBugs::default());
        px[0].start(0, 7, 0);
        let mut held = Vec::new();
        for call in px[0].take_calls() {
            if call.to == 1 {
                held.push(call); // the network holds it
            } else {
                px[0].on_reply(call.tag, None, 0); // lost: the call fails
            }
        }
        assert_eq!(px[0].status(0), Fate::Pending);
        assert_eq!(px[0].next_deadline_ms(), Some(ROUND_TIMEOUT_MS), "the round's timeout is a deadline");
        px[0].tick(ROUND_TIMEOUT_MS - 1);
        assert!(px[0].take_calls().is_empty(), "the round waits its time");
        px[0].tick(ROUND_TIMEOUT_MS);
        let calls = px[0].take_calls();
        assert_eq!(calls.len(), 2, "a new round: prepares to both others");
        for call in calls {
            let reply = px[call.to].handle(call.request);
            px[0].on_reply(call.tag, Some(reply), ROUND_TIMEOUT_MS);
        }
        settle(&mut px, ROUND_TIMEOUT_MS);
        assert!(px.iter().all(|p| p.status(0) == Fate::Decided(7)));
        // The held answer, delivered at last, belongs to an abandoned round: ignored.
        for call in held {
            let reply = px[call.to].handle(call.request);
            px[0].on_reply(call.tag, Some(reply), ROUND_TIMEOUT_MS + 1);
        }
        assert_eq!(px[0].status(0), Fate::Decided(7));
    }

    /// A rejection ends the round at once: the proposer backs off and tries a higher number
    /// without waiting for the other answers (one of which the network may hold).
    #[test]
    fn a_rejected_round_backs_off_without_waiting_for_the_other_answers() {
        let mut px = peers(3, PxBugs::default());
        // Peer 2 has promised a higher number than peer 0's first round will use.
        let _ = px[2].handle(Envelope { from: 1, done: -1, body: PxRequest::Prepare { seq: 0, n: 100 } });
        px[0].start(0, 7, 0);
        for call in px[0].take_calls() {
            if call.to == 2 {
                let reply = px[2].handle(call.request);
                px[0].on_reply(call.tag, Some(reply), 0);
            } // the call to peer 1 is held
        }
        let due = px[0].next_deadline_ms().unwrap();
        assert!(due <= 2 * BACKOFF_MS_MIN, "the first backoff, not the round timeout: {due}");
        px[0].tick(due);
        let calls = px[0].take_calls();
        assert_eq!(calls.len(), 2);
        assert!(calls.iter().all(|c| matches!(c.request.body, PxRequest::Prepare { n, .. } if n > 100)));
    }

    /// A peer past its accept limit takes no part: it neither votes nor learns, holds
    /// nothing for the instance, and the others still decide with their majority.
    #[test]
    fn an_acceptor_past_its_accept_limit_answers_behind_and_holds_nothing() {
        let mut px = peers(3, PxBugs::default());
        px[2].set_accept_limit(Some(5));
        let prepare = |seq| Envelope { from: 0, done: -1, body: PxRequest::Prepare { seq, n: 1 } };
        assert!(matches!(px[2].handle(prepare(4)).body, PxReply::Promise { .. }));
        assert!(matches!(px[2].handle(prepare(5)).body, PxReply::Behind));
        let decided = Envelope { from: 0, done: -1, body: PxRequest::Decided { seq: 7, v: 70 } };
        assert!(matches!(px[2].handle(decided).body, PxReply::Behind));
        assert_eq!(px[2].status(7), Fate::Pending, "not learned");
        assert_eq!(px[2].retained_instances(), 1, "only instance 4");
        assert_eq!(px[2].max(), 7, "Max still counts what it heard of");
        px[0].start(6, 60, 0);
        settle(&mut px, 0);
        assert_eq!((px[0].status(6), px[1].status(6)), (Fate::Decided(60), Fate::Decided(60)));
        assert_eq!(px[2].status(6), Fate::Pending);
        px[2].set_accept_limit(None);
        px[0].start(8, 80, 0);
        settle(&mut px, 0);
        assert_eq!(px[2].status(8), Fate::Decided(80), "without a limit it takes part again");
    }

    #[test]
    fn competing_proposers_agree_and_a_later_proposer_adopts_the_chosen_value() {
        let mut px = peers(3, PxBugs::default());
        px[0].start(1, 100, 0);
        px[1].start(1, 101, 0);
        px[2].start(1, 102, 0);
        let mut now = 0;
        for _ in 0..100 {
            settle(&mut px, now);
            now += 50;
            for p in px.iter_mut() {
                p.tick(now);
            }
        }
        let d = px[0].status(1);
        assert!(matches!(d, Fate::Decided(100..=102)), "{d:?}");
        assert!(px.iter().all(|p| p.status(1) == d));
    }

    #[test]
    fn min_follows_the_lowest_done_and_forgets_below_it() {
        let mut px = peers(3, PxBugs::default());
        for seq in 0..3 {
            px[0].start(seq, seq * 10, 0);
            settle(&mut px, 0);
        }
        px[0].done(1);
        px[1].done(1);
        assert_eq!(px[0].min(), 0, "peer 2 has not called done");
        px[2].done(0);
        // Done values travel piggybacked: as in the course's TestForget, every peer starts
        // an instance to spread them.
        for i in 0..3 {
            px[i].start(5 + i as u64, 50, 0);
            settle(&mut px, 0);
        }
        assert!(px.iter().all(|p| p.min() == 1), "{:?}", px.iter().map(|p| p.min()).collect::<Vec<_>>());
        assert_eq!(px[0].status(0), Fate::Forgotten);
        assert_eq!(px[0].status(1), Fate::Decided(10));
        assert_eq!(px[0].retained_instances(), 5, "instances 1, 2, 5, 6 and 7");
        px[0].start(0, 99, 0);
        assert!(px[0].take_calls().is_empty(), "Start below Min is ignored");
        assert_eq!(px[0].max(), 7);
    }

    #[test]
    fn the_planted_min_too_early_forgets_what_a_silent_peer_still_needs() {
        for (bugs, want) in [(PxBugs::default(), 0), (PxBugs { min_too_early: true, ..PxBugs::default() }, 1)] {
            let mut px = peers(3, bugs);
            px[0].start(0, 1, 0);
            settle(&mut px, 0);
            px[0].done(0);
            px[1].done(0);
            px[1].start(1, 2, 0);
            settle(&mut px, 0);
            // Peer 2 never called Done: only the bug lets Min pass instance 0.
            assert_eq!(px[0].min(), want, "{bugs:?}");
        }
    }

    /// Random deliveries, losses, duplicates and ticks over 3–5 peers; after every step, no
    /// two peers have decided different values for an instance and every decided value was
    /// proposed. Returns the first violation.
    fn random_run(seed: u64, bugs: PxBugs) -> Result<(), String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = rng.gen_range(3..=5);
        let mut px: Vec<Paxos<u64>> =
            (0..n).map(|i| Paxos::new(i, n, ChaCha8Rng::seed_from_u64(seed ^ i as u64), bugs)).collect();
        let mut flight: Vec<(usize, PxCall<u64>)> = Vec::new();
        let mut proposed: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        let mut now = 0;
        for _ in 0..3000 {
            match rng.gen_range(0..10) {
                0 => {
                    let (p, seq, v) = (rng.gen_range(0..n), rng.gen_range(0..3), rng.gen_range(0..1000));
                    proposed.entry(seq).or_default().insert(v);
                    px[p].start(seq, v, now);
                }
                1 => {
                    now += rng.gen_range(1..100);
                    for p in px.iter_mut() {
                        p.tick(now);
                    }
                }
                _ if !flight.is_empty() => {
                    let (from, call) = flight.swap_remove(rng.gen_range(0..flight.len()));
                    match rng.gen_range(0..10) {
                        0 => px[from].on_reply(call.tag, None, now), // request lost
                        1 => {
                            let _ = px[call.to].handle(call.request);
                            px[from].on_reply(call.tag, None, now); // reply lost
                        }
                        2 => {
                            // Delivered twice (a late duplicate of the request).
                            let _ = px[call.to].handle(call.request.clone());
                            flight.push((from, call));
                        }
                        _ => {
                            let reply = px[call.to].handle(call.request);
                            px[from].on_reply(call.tag, Some(reply), now);
                        }
                    }
                }
                _ => {}
            }
            for (i, p) in px.iter_mut().enumerate() {
                flight.extend(p.take_calls().into_iter().map(|c| (i, c)));
            }
            for seq in 0..3 {
                let decided: Vec<u64> = px
                    .iter()
                    .filter_map(|p| match p.status(seq) {
                        Fate::Decided(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                if decided.windows(2).any(|w| w[0] != w[1]) {
                    return Err(format!("seed {seed}: instance {seq} decided {decided:?}"));
                }
                if let Some(v) = decided.first() {
                    if !proposed.get(&seq).is_some_and(|s| s.contains(v)) {
                        return Err(format!("seed {seed}: instance {seq} decided {v}, never proposed"));
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn agreement_and_validity_hold_under_random_loss_duplication_and_reordering() {
        for seed in 0..200 {
            random_run(seed, PxBugs::default()).unwrap();
        }
    }

    #[test]
    fn a_proposer_that_ignores_accepted_values_is_caught() {
        let bugs = PxBugs { ignore_accepted: true, ..PxBugs::default() };
        let found = (0..200).find(|&seed| random_run(seed, bugs).is_err());
        assert!(found.is_some(), "the planted bug ignore-accepted breaks agreement on some seed");
    }
}
