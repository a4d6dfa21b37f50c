//! A replicated log made of Paxos instances (the course's 2015 lab 3B design, reference
//! `6824-old-labs.md` §5.2), behind the replication seam ([`ReplicaCore`]): the same
//! key/value server, shard controller and testers that run on Raft run on it.
//!
//! - **Slots.** Log index `i` (1-based, as the seam's) is Paxos instance `i − 1` of the
//!   library core ([`crate::paxos::Paxos`]). Every peer proposes: [`ReplicaCore::propose`]
//!   starts the command in the next instance this peer knows to be free (one past its `Max`)
//!   and returns that index. If another command is chosen there, the service above sees a
//!   different entry land at its index and the clerk retries (the course's kvpaxos servers
//!   retry in the next instance themselves; the seam's services already retry through the
//!   clerk, so the engine does not).
//! - **Only near the applied prefix.** A peer whose applied prefix trails the highest
//!   instance it knows of by [`PROPOSE_LAG_MAX`] or more refuses new proposals (the service
//!   answers "wrong leader" and the clerk tries another peer), as a Raft follower does. Its
//!   requests could not be answered before it learns every instance below them, and each
//!   new instance it opened would be one more for every peer to learn: under steady crashes
//!   (a peer restarted with holes, proposers lost) peers that keep proposing at `Max + 1`
//!   open instances faster than holes are filled, the applied prefix falls further behind
//!   forever, and no request is ever answered. Refusing lets the peer catch up first, as the
//!   course's kvpaxos server learns every earlier instance before it proposes. Likewise it
//!   takes part as an acceptor only up to [`ACCEPT_LAG_MAX`] past its applied prefix: a peer
//!   that can receive but not send would otherwise hold every instance the others open,
//!   unapplied, past lab 3B's size bound.
//! - **In order.** Decided instances are applied in instance order. An instance this peer
//!   knows of (its `Max` passed it) that stays undecided here for [`HOLE_MS`] is a hole: the
//!   peer proposes a no-op there (an empty command, which the replicated state machine skips),
//!   and Paxos hands it whatever was already accepted, or the no-op if nothing was — the
//!   course's hint for a server that fell behind.
//! - **Done and forgetting.** The service's snapshot at index `i` is the course's `Done(i − 1)`:
//!   the peer forgets every instance the snapshot covers at once, and answers `Forgotten` for
//!   them. The course's `Min` (the lowest `Done` over all peers, piggybacked) waits for every
//!   peer, so it cannot advance while one is down or cut off, and 3B's size bound would fail
//!   in every partition scenario; with snapshots it need not wait: a peer told `Forgotten`
//!   for an instance it still needs asks that peer for its snapshot (the snapshots of what is
//!   forgotten) and installs it, as Raft's InstallSnapshot does. Forgetting early is safe: a
//!   forgotten instance was decided here, and an acceptor never promises for it again.
//!   Without snapshots (lab 3A's `maxraftstate = -1`) nothing is forgotten, as Raft keeps its
//!   whole log. [`PaxosLog::retained_instances`] and [`PaxosLog::retained_bytes`] account
//!   for what is kept (in place of the course's Go heap readings).
//! - **Persistence.** Every acceptor's promise, accepted proposal and decision is saved before
//!   any reply leaves (the seam's persist-then-send order), one shared part per instance, so a
//!   save costs what changed; with the snapshot's coverage and the highest instance known.
//!   The planted bug `forget-promise` restores acceptors without their promises.
//! - **Leader.** Paxos has none. [`ReplicaCore::get_state`] names the proposer whose command
//!   was applied last here (term: that instance's index), so a scenario that names a leader
//!   (kvraft's `one_partition_3a`, the swarm's roles) picks the proposer that last succeeded.

use crate::paxos::{AcceptorState, Envelope, Fate, Paxos, PxBugs, PxReply, PxRequest};
use crate::replica::{
    ApplyMsg, Observation, Observed, Outgoing, Persist, PersistedImage, Proposal, Ready, ReplicaCore, RestoreError,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::rc::Rc;

/// How long an instance below `Max` may stay undecided here before this peer proposes a
/// no-op in it to learn its value, in ms (the course suggests polling `Status` from 10 ms
/// with back-off; a proposer in flight normally decides within a few ms).
pub const HOLE_MS: u64 = 100;

/// How many holes past the next instance to apply a peer fills at once (a peer far behind
/// learns the rest as these decide, or gets a snapshot).
pub const HOLE_WINDOW: u64 = 16;

/// Instances per persisted chunk: a save shares every chunk but the ones that changed.
pub const CHUNK: u64 = 64;

/// How often an idle peer wakes to look for holes, in ms.
pub const IDLE_MS: u64 = 1000;

/// A peer refuses new proposals while the next one would land this many instances or more
/// past its applied prefix (see the module comment): two hole windows, more than the
/// instances a healthy peer has in flight, so it only ever refuses a peer that fell behind.
/// Not more: instances past the applied prefix cannot be forgotten, and they count towards
/// the persisted size that lab 3B bounds by 8 × `maxraftstate`. At 64 (session 9), six peers
/// with 18 clerks kept up to ~60 instances of ~100 bytes open, over the 5 192 bytes allowed
/// for `maxraftstate` 649 (`kvpaxos::swarm_3b` seeds 127, 584 and 947).
pub const PROPOSE_LAG_MAX: u64 = 2 * HOLE_WINDOW;

/// A peer takes part as an acceptor in instances up to this many past its applied prefix
/// (see `PaxosLog::settle`): twice [`PROPOSE_LAG_MAX`], so a peer a little behind still
/// votes in what its peers propose.
pub const ACCEPT_LAG_MAX: u64 = 2 * PROPOSE_LAG_MAX;

/// The value of one instance: the proposing peer and the command (empty: a no-op).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The peer that proposed this value (the log's "leader" when it is applied).
    pub by: u32,
    /// The command's bytes; empty for a no-op that filled a hole.
    #[serde(with = "serde_bytes")]
    pub cmd: Vec<u8>,
}

/// The engine's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaxosLogConfig {
    /// Planted bugs of the Paxos core (`forget-promise` among them).
    pub bugs: PxBugs,
}

/// A request between peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PxlRequest {
    /// A Paxos message of the core, with the core's call tag.
    Paxos {
        /// The core's tag for the call.
        tag: u64,
        /// The message.
        env: Envelope<PxRequest<Slot>>,
    },
    /// "Send me your snapshot": the sender was told an instance it needs is forgotten here.
    Snapshot {
        /// The caller's tag for the call.
        tag: u64,
    },
}

/// The reply to a [`PxlRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PxlReply {
    /// The core's answer.
    Paxos {
        /// The tag of the call answered.
        tag: u64,
        /// The answer.
        env: Envelope<PxReply<Slot>>,
    },
    /// This peer's snapshot, covering log indexes up to `index` (0: none).
    Snapshot {
        /// The tag of the call answered.
        tag: u64,
        /// The last log index the snapshot covers.
        index: u64,
        /// The service's snapshot bytes.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

/// What to keep of a call to report its failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PxlCall {
    /// A Paxos call of the core, by its tag.
    Paxos(u64),
    /// A snapshot request.
    Snapshot,
}

/// The persisted state: a header, then one part per retained instance.
#[derive(Clone, Debug, Default)]
pub struct PxlImage {
    header: Rc<Vec<u8>>,
    parts: Vec<Rc<Vec<u8>>>,
    len: usize,
}

impl PartialEq for PxlImage {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for PxlImage {}

impl PersistedImage for PxlImage {
    fn parts(&self) -> Vec<Rc<dyn AsRef<[u8]>>> {
        let mut v: Vec<Rc<dyn AsRef<[u8]>>> = Vec::with_capacity(self.parts.len() + 1);
        v.push(self.header.clone());
        v.extend(self.parts.iter().map(|p| p.clone() as Rc<dyn AsRef<[u8]>>));
        v
    }
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.len);
        b.extend_from_slice(&self.header);
        for p in &self.parts {
            b.extend_from_slice(p);
        }
        b
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// The persisted header.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Header {
    /// Log indexes up to this one are covered by the snapshot (0: none).
    snapshot_index: u64,
    /// The highest instance known (-1: none).
    max: i64,
}

/// One peer of the Paxos log.
#[derive(Debug)]
pub struct PaxosLog {
    me: usize,
    px: Paxos<Slot>,
    /// The next instance to apply (= the last applied log index).
    next_apply: u64,
    /// Log indexes up to this one are covered by `snapshot`.
    snapshot_index: u64,
    snapshot: Rc<Vec<u8>>,
    /// Undecided instances below `Max`, with when each was first seen undecided (ms).
    holes: BTreeMap<u64, u64>,
    /// Each retained instance's persisted bytes.
    parts: BTreeMap<u64, Rc<Vec<u8>>>,
    /// The persisted image's body: the parts of instances `k × CHUNK ..` in one piece.
    chunks: BTreeMap<u64, Rc<Vec<u8>>>,
    header_dirty: bool,
    snapshot_dirty: bool,
    /// A snapshot request is in flight.
    asking_snapshot: bool,
    /// The instance last applied with a command, and its proposer.
    leader: Option<(u64, u32)>,
    ready: Ready<PxlRequest, PxlImage>,
    now_ms: u64,
}

impl PaxosLog {
    /// Instances this peer holds (decided or not): what `Done` frees.
    pub fn retained_instances(&self) -> usize {
        self.px.retained_instances()
    }

    /// Bytes of the acceptor state this peer holds and persists for its instances.
    pub fn retained_bytes(&self) -> usize {
        self.parts.values().map(|p| p.len()).sum()
    }

    /// The course's `Min()` over what this peer heard (accounting; forgetting follows the
    /// peer's own `Done`, see the module comment).
    pub fn min(&self) -> i64 {
        self.px.min()
    }

    /// The course's `Max()`.
    pub fn max(&self) -> i64 {
        self.px.max()
    }

    /// The last log index applied here.
    pub fn last_applied(&self) -> u64 {
        self.next_apply
    }

    /// Applies every decided instance from `next_apply` on, and fills holes, asks for a
    /// snapshot, and stages the save and the sends.
    fn settle(&mut self) {
        let now = self.now_ms;
        let _ = self.px.take_decided();
        while let Fate::Decided(slot) = self.px.status(self.next_apply) {
            let index = self.next_apply + 1;
            if !slot.cmd.is_empty() {
                self.leader = Some((self.next_apply, slot.by));
            }
            self.ready.applies.push(ApplyMsg::Command { index, term: 0, command: slot.cmd });
            self.next_apply += 1;
        }
        for (from, seq) in self.px.take_forgotten() {
            if seq >= self.next_apply && !self.asking_snapshot {
                self.asking_snapshot = true;
                self.ready.messages.push(Outgoing { to: from, request: PxlRequest::Snapshot { tag: 0 } });
            }
        }
        // As an acceptor, take part only up to ACCEPT_LAG_MAX past what is applied here (twice
        // the furthest a peer level with this one proposes): a peer cut off from sending keeps
        // receiving every instance the others open and would hold them all, unapplied, past
        // lab 3B's size bound, as a Raft follower does not (it refuses entries that do not
        // join its log). Its holes below the limit are filled as before.
        self.px.set_accept_limit(Some(self.next_apply + ACCEPT_LAG_MAX));
        self.holes = self.holes.split_off(&self.next_apply);
        let max = self.px.max();
        let upto = (max.max(-1) + 1) as u64;
        for seq in self.next_apply..upto.min(self.next_apply + HOLE_WINDOW) {
            if self.px.is_proposing(seq) || matches!(self.px.status(seq), Fate::Decided(_)) {
                self.holes.remove(&seq);
                continue;
            }
            let since = *self.holes.entry(seq).or_insert(now);
            if now >= since + HOLE_MS {
                self.holes.remove(&seq);
                self.px.start(seq, Slot { by: self.me as u32, cmd: Vec::new() }, now);
            }
        }
        for call in self.px.take_calls() {
            self.ready
                .messages
                .push(Outgoing { to: call.to, request: PxlRequest::Paxos { tag: call.tag, env: call.request } });
        }
        self.stage_persist();
    }

    fn stage_persist(&mut self) {
        let dirty = self.px.take_dirty();
        if dirty.is_empty() && !self.header_dirty && !self.snapshot_dirty {
            return;
        }
        let mut stale: std::collections::BTreeSet<u64> = dirty.iter().map(|s| s / CHUNK).collect();
        for seq in dirty {
            match self.px.acceptor(seq) {
                Some(st) => {
                    self.parts.insert(seq, Rc::new(postcard::to_allocvec(&(seq, st)).expect("encodes")));
                }
                None => {
                    self.parts.remove(&seq);
                }
            }
        }
        let floor = self.px.floor().max(0) as u64;
        self.parts = self.parts.split_off(&floor);
        if self
            .chunks
            .first_key_value()
            .is_some_and(|(&k, _)| k < floor / CHUNK || (k == floor / CHUNK && !floor.is_multiple_of(CHUNK)))
        {
            stale.insert(floor / CHUNK);
        }
        self.chunks = self.chunks.split_off(&(floor / CHUNK));
        for k in stale {
            let body: Vec<u8> =
                self.parts.range(k * CHUNK..(k + 1) * CHUNK).flat_map(|(_, p)| p.iter().copied()).collect();
            if body.is_empty() {
                self.chunks.remove(&k);
            } else {
                self.chunks.insert(k, Rc::new(body));
            }
        }
        self.header_dirty = false;
        let header = Header { snapshot_index: self.snapshot_index, max: self.px.max() };
        let header = Rc::new(postcard::to_allocvec(&header).expect("encodes"));
        let parts: Vec<Rc<Vec<u8>>> = self.chunks.values().cloned().collect();
        let len = header.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let snapshot = std::mem::take(&mut self.snapshot_dirty).then(|| self.snapshot.clone());
        self.ready.persist = Some(Persist { state: PxlImage { header, parts, len }, snapshot });
    }

    /// Makes the snapshot at log index `index` this peer's: `Done` up to its instance.
    fn adopt_snapshot(&mut self, index: u64, data: Rc<Vec<u8>>) {
        self.snapshot_index = index;
        self.snapshot = data;
        self.px.done(index - 1);
        self.header_dirty = true;
        self.snapshot_dirty = true;
    }
}

impl ReplicaCore for PaxosLog {
    type Config = PaxosLogConfig;
    /// Every peer proposes: Paxos has no leader.
    const LEADERLESS: bool = true;
    type Request = PxlRequest;
    type Reply = PxlReply;
    type CallContext = PxlCall;
    type Image = PxlImage;

    fn boot(
        config: &PaxosLogConfig,
        me: usize,
        peers: usize,
        seed: u64,
        state: &[u8],
        snapshot: &[u8],
        now_ms: u64,
    ) -> Result<Self, RestoreError> {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let mut px = Paxos::new(me, peers, rng, config.bugs).forgetting_at_own_done();
        let mut parts = BTreeMap::new();
        let mut header = Header::default();
        if !state.is_empty() {
            let (h, mut rest) = postcard::take_from_bytes::<Header>(state).map_err(|e| RestoreError(e.to_string()))?;
            header = h;
            if header.snapshot_index > 0 {
                px.done(header.snapshot_index - 1);
            }
            px.restore_max(header.max);
            while !rest.is_empty() {
                let before = rest;
                let ((seq, st), r) = postcard::take_from_bytes::<(u64, AcceptorState<Slot>)>(rest)
                    .map_err(|e| RestoreError(e.to_string()))?;
                rest = r;
                parts.insert(seq, Rc::new(before[..before.len() - rest.len()].to_vec()));
                px.restore_acceptor(seq, st);
            }
            let _ = px.take_dirty();
        }
        if header.snapshot_index > 0 && snapshot.is_empty() {
            return Err(RestoreError(format!(
                "the state names a snapshot at {} but none was saved",
                header.snapshot_index
            )));
        }
        let mut log = PaxosLog {
            me,
            px,
            next_apply: header.snapshot_index,
            snapshot_index: header.snapshot_index,
            snapshot: Rc::new(snapshot.to_vec()),
            holes: BTreeMap::new(),
            chunks: BTreeMap::new(),
            parts,
            header_dirty: false,
            snapshot_dirty: false,
            asking_snapshot: false,
            leader: None,
            ready: Ready::default(),
            now_ms,
        };
        let keys: Vec<u64> = log.parts.keys().map(|s| s / CHUNK).collect();
        for k in keys {
            if !log.chunks.contains_key(&k) {
                let body: Vec<u8> =
                    log.parts.range(k * CHUNK..(k + 1) * CHUNK).flat_map(|(_, p)| p.iter().copied()).collect();
                log.chunks.insert(k, Rc::new(body));
            }
        }
        log.settle();
        Ok(log)
    }

    fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.px.tick(self.now_ms);
        self.settle();
    }

    fn handle_request(&mut self, now_ms: u64, _from: usize, request: PxlRequest) -> PxlReply {
        self.now_ms = self.now_ms.max(now_ms);
        let reply = match request {
            PxlRequest::Paxos { tag, env } => PxlReply::Paxos { tag, env: self.px.handle(env) },
            PxlRequest::Snapshot { tag } => {
                PxlReply::Snapshot { tag, index: self.snapshot_index, data: self.snapshot.as_ref().clone() }
            }
        };
        self.settle();
        reply
    }

    fn handle_reply(&mut self, now_ms: u64, _from: usize, reply: PxlReply) {
        self.now_ms = self.now_ms.max(now_ms);
        match reply {
            PxlReply::Paxos { tag, env } => self.px.on_reply(tag, Some(env), self.now_ms),
            PxlReply::Snapshot { index, data, .. } => {
                self.asking_snapshot = false;
                if index > self.next_apply {
                    let data = Rc::new(data);
                    self.ready.applies.push(ApplyMsg::Snapshot { index, term: 0, data: data.as_ref().clone() });
                    self.next_apply = index;
                    self.adopt_snapshot(index, data);
                }
            }
        }
        self.settle();
    }

    fn handle_call_failed(&mut self, now_ms: u64, _to: usize, context: PxlCall) {
        self.now_ms = self.now_ms.max(now_ms);
        match context {
            PxlCall::Paxos(tag) => self.px.on_reply(tag, None, self.now_ms),
            PxlCall::Snapshot => self.asking_snapshot = false,
        }
        self.settle();
    }

    fn call_context(request: &PxlRequest) -> PxlCall {
        match request {
            PxlRequest::Paxos { tag, .. } => PxlCall::Paxos(*tag),
            PxlRequest::Snapshot { .. } => PxlCall::Snapshot,
        }
    }

    fn propose(&mut self, now_ms: u64, command: Vec<u8>) -> Option<Proposal> {
        assert!(!command.is_empty(), "an empty command is the engine's no-op");
        self.now_ms = self.now_ms.max(now_ms);
        let seq = ((self.px.max() + 1).max(0) as u64).max(self.next_apply);
        if seq - self.next_apply >= PROPOSE_LAG_MAX {
            // Far behind: learn the instances below first (holes are being filled).
            return None;
        }
        self.px.start(seq, Slot { by: self.me as u32, cmd: command }, self.now_ms);
        self.settle();
        Some(Proposal { index: seq + 1, term: 0 })
    }

    fn snapshot(&mut self, now_ms: u64, index: u64, data: Vec<u8>) -> bool {
        self.now_ms = self.now_ms.max(now_ms);
        if index <= self.snapshot_index || index > self.next_apply {
            return false;
        }
        self.adopt_snapshot(index, Rc::new(data));
        self.settle();
        true
    }

    fn take_ready(&mut self) -> Ready<PxlRequest, PxlImage> {
        std::mem::take(&mut self.ready)
    }

    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn next_deadline_ms(&self) -> u64 {
        let hole = self.holes.values().map(|since| since + HOLE_MS).min();
        let idle = self.now_ms + IDLE_MS;
        [self.px.next_deadline_ms(), hole].into_iter().flatten().fold(idle, u64::min)
    }

    fn get_state(&self) -> (u64, bool) {
        match self.leader {
            Some((seq, by)) => (seq + 1, by as usize == self.me),
            None => (0, false),
        }
    }

    fn may_still_land(&self, proposal: &Proposal) -> bool {
        let seq = proposal.index - 1;
        match self.px.status(seq) {
            Fate::Forgotten => false,
            Fate::Decided(slot) => slot.by as usize == self.me && !slot.cmd.is_empty(),
            Fate::Pending => self.px.is_proposing(seq),
        }
    }

    fn observe<'a>(&'a self, seen: &mut Observed, _log_written_from: Option<u64>, out: &mut Vec<Observation<'a>>) {
        if seen.fresh {
            out.push(Observation::Restart { snapshot_index: Some(self.snapshot_index) });
            seen.fresh = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(n: usize, bugs: PxBugs) -> Vec<PaxosLog> {
        let config = PaxosLogConfig { bugs };
        (0..n).map(|i| PaxosLog::boot(&config, i, n, i as u64, &[], &[], 0).unwrap()).collect()
    }

    /// Delivers every staged message at once, in order, with replies, until none is left;
    /// returns every peer's applies.
    fn settle(px: &mut [PaxosLog], now: u64, applied: &mut [Vec<ApplyMsg>], up: &[bool]) {
        loop {
            let mut any = false;
            for i in 0..px.len() {
                let ready = px[i].take_ready();
                applied[i].extend(ready.applies);
                for m in ready.messages {
                    any = true;
                    if !up[m.to] || !up[i] {
                        px[i].handle_call_failed(now, m.to, PaxosLog::call_context(&m.request));
                        continue;
                    }
                    let reply = px[m.to].handle_request(now, i, m.request);
                    px[i].handle_reply(now, m.to, reply);
                }
            }
            if !any {
                return;
            }
        }
    }

    #[test]
    fn every_peer_proposes_and_all_apply_the_same_log_in_order() {
        let mut px = boot(3, PxBugs::default());
        let mut applied = vec![Vec::new(); 3];
        let up = [true; 3];
        for round in 0..5u8 {
            // All three propose in the same free slot: one command is chosen there, and the
            // two others can no longer land (their clerks retry).
            let props: Vec<Proposal> = (0..3).map(|i| px[i].propose(0, vec![round, i as u8]).unwrap()).collect();
            assert!(props.iter().all(|p| p.index == round as u64 + 1));
            settle(&mut px, 0, &mut applied, &up);
            let landing = (0..3).filter(|&i| px[i].may_still_land(&props[i])).count();
            assert_eq!(landing, 1, "round {round}");
        }
        assert_eq!(applied[0].len(), 5);
        assert_eq!(applied[0], applied[1]);
        assert_eq!(applied[1], applied[2]);
        assert!(px.iter().any(|p| p.get_state().1), "the last successful proposer leads");
    }

    #[test]
    fn a_peer_that_missed_instances_fills_the_holes_and_a_snapshot_covers_what_others_forgot() {
        let mut px = boot(3, PxBugs::default());
        let mut applied = vec![Vec::new(); 3];
        let mut up = [true, true, false];
        for k in 0..10u8 {
            px[0].propose(0, vec![k + 1]).unwrap();
            settle(&mut px, 0, &mut applied, &up);
        }
        assert_eq!(applied[1].len(), 10);
        // Peers 0 and 1 snapshot (Done) everything they applied: they forget it.
        for i in 0..2 {
            assert!(px[i].snapshot(0, 10, vec![9, 9]));
            settle(&mut px, 0, &mut applied, &up);
            assert_eq!(px[i].retained_instances(), 0);
        }
        up[2] = true;
        px[0].propose(0, vec![42]).unwrap();
        settle(&mut px, 0, &mut applied, &up);
        // Peer 2 now knows Max = 10; after HOLE_MS it fills holes, is told Forgotten, and
        // installs peer 0's or 1's snapshot, then applies instance 10.
        px[2].tick(HOLE_MS);
        settle(&mut px, HOLE_MS, &mut applied, &up);
        px[2].tick(2 * HOLE_MS + 10);
        settle(&mut px, 2 * HOLE_MS + 10, &mut applied, &up);
        let kinds: Vec<u64> = applied[2].iter().map(|m| m.index()).collect();
        assert_eq!(kinds, vec![10, 11], "{:?}", applied[2]);
        assert!(matches!(applied[2][0], ApplyMsg::Snapshot { index: 10, .. }));
    }

    /// The stuck shape of `shardkv_paxos::swarm_4b` seed 46 (controller peers crashing every
    /// second or so): a peer whose applied prefix trails the instances it knows of must not
    /// open yet another instance at `Max + 1` — a request there could not be answered before
    /// every hole below it is filled, and peers that kept doing so opened instances faster than
    /// holes were filled, so no request was ever answered. It refuses instead, catches up by
    /// filling holes, and then proposes again.
    #[test]
    fn a_peer_far_behind_refuses_proposals_until_it_has_caught_up() {
        let mut px = boot(3, PxBugs::default());
        let mut applied = vec![Vec::new(); 3];
        let mut up = [true, true, false];
        let behind = PROPOSE_LAG_MAX + 10;
        for k in 0..behind {
            px[0].propose(0, vec![1, k as u8]).unwrap();
            settle(&mut px, 0, &mut applied, &up);
        }
        up[2] = true;
        // Peer 2 hears of the newest instance (its Prepare, Accept and Decided), not of the
        // ones before it.
        px[0].propose(0, vec![2]).unwrap();
        settle(&mut px, 0, &mut applied, &up);
        assert_eq!(px[2].max(), behind as i64);
        assert_eq!(px[2].last_applied(), 0);
        assert_eq!(px[2].propose(0, vec![3]), None, "far behind: no new instance");
        assert!(!px[2].has_ready(), "a refused proposal sends and saves nothing");
        let mut now = 0;
        while px[2].last_applied() <= behind {
            assert!(now < 100 * HOLE_MS, "peer 2 never caught up: {}", px[2].last_applied());
            now += HOLE_MS;
            px[2].tick(now);
            settle(&mut px, now, &mut applied, &up);
        }
        assert_eq!(applied[2], applied[0], "the holes were filled with what peers 0 and 1 chose");
        let p = px[2].propose(now, vec![4]).expect("caught up: it proposes again");
        assert_eq!(p.index, behind + 2);
        settle(&mut px, now, &mut applied, &up);
        assert!(px[2].may_still_land(&p));
        assert_eq!(applied[0].len() as u64, behind + 2);
    }

    #[test]
    fn a_restarted_peer_reloads_its_acceptors_and_replays_what_it_decided() {
        let mut px = boot(3, PxBugs::default());
        let mut applied = vec![Vec::new(); 3];
        let mut saved: Option<PxlImage> = None;
        for k in 0..4u8 {
            px[1].propose(0, vec![k + 1]).unwrap();
            // Peer 2's saves, as the shell keeps them; the others' deliveries as usual.
            for _ in 0..20 {
                let ready = px[2].take_ready();
                if let Some(p) = ready.persist.clone() {
                    saved = Some(p.state);
                }
                applied[2].extend(ready.applies);
                for m in ready.messages {
                    let reply = px[m.to].handle_request(0, 2, m.request);
                    px[2].handle_reply(0, m.to, reply);
                }
                for i in 0..2 {
                    let ready = px[i].take_ready();
                    applied[i].extend(ready.applies);
                    for m in ready.messages {
                        let reply = px[m.to].handle_request(0, i, m.request);
                        px[i].handle_reply(0, m.to, reply);
                    }
                }
            }
        }
        assert_eq!(applied[2].len(), 4);
        let bytes = saved.expect("peer 2 saved its acceptors").to_bytes();
        let mut again = PaxosLog::boot(&PaxosLogConfig::default(), 2, 3, 7, &bytes, &[], 0).unwrap();
        assert_eq!(again.take_ready().applies, applied[2], "the decided log is replayed in order");
        assert_eq!(again.retained_instances(), 4);
    }
}
