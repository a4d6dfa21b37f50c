//! The persister: each node's stable storage — its replicated state and its snapshot,
//! replaced together atomically — and the fault points that crash a node right after (or a
//! little after) a save.
//!
//! It speaks neutral words: *state* is whatever the node's replication engine must keep
//! (for Raft: term, vote and log), *snapshot* is the service's compacted state. What a node
//! saved survives every crash exactly as saved (madsim's file system keeps unsynced data, so
//! it is not used). The course's names (`ReadRaftState`, `RaftStateSize`) live where code
//! reads like the course: the testers' `log_size` and the course-shaped adapter's
//! `nodes::course::Persister`.

use crate::node::NodeCtx;
use crate::process::crash_with_reason;
use crate::sched::Action;
use crate::trace::Kind;
use crate::world::{with, Kernel, NodeId, World, NO_NODE};
use std::rc::Rc;
use std::time::Duration;

/// Bytes held as shared parts, so saving a large state that mostly did not change costs
/// one pointer per part instead of a copy (a Raft log saved after every append).
#[derive(Clone, Default)]
pub struct Rope {
    parts: Vec<Rc<dyn AsRef<[u8]>>>,
    len: usize,
}

impl Rope {
    /// The bytes of `v`, as one part.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let len = v.len();
        Rope { parts: vec![Rc::new(v)], len }
    }

    /// The bytes of `parts` one after the other, sharing them. The trace fingerprints a
    /// saved state by its length and its first and last parts (each by
    /// [`fingerprint_bytes`](crate::trace::fingerprint_bytes)), so a caller that splits the
    /// same bytes differently changes the trace.
    pub fn from_parts(parts: Vec<Rc<dyn AsRef<[u8]>>>) -> Self {
        let len = parts.iter().map(|p| (**p).as_ref().len()).sum();
        Rope { parts, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes in one piece.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for p in &self.parts {
            v.extend_from_slice((**p).as_ref());
        }
        v
    }

    /// A cheap fingerprint for the trace: length, first and last parts, each sampled by
    /// `fingerprint_bytes` (a full hash of a large state on every save would cost O(state)
    /// again).
    fn fingerprint(&self) -> u64 {
        let h =
            |p: Option<&Rc<dyn AsRef<[u8]>>>| p.map(|p| crate::trace::fingerprint_bytes((**p).as_ref())).unwrap_or(0);
        crate::rng::mix64(h(self.parts.first()) ^ h(self.parts.last()).rotate_left(17) ^ self.len as u64)
    }
}

impl std::fmt::Debug for Rope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rope({} bytes in {} parts)", self.len, self.parts.len())
    }
}

/// What a node has saved: its replicated state and its snapshot, replaced atomically
/// together (the course's `Persister`, which calls the state `raftstate`).
#[derive(Clone, Default, Debug)]
pub struct Persisted {
    /// The replicated state (for Raft: term, vote, log), as the node last saved it.
    pub state: Rope,
    /// The snapshot as last saved; empty if the node never saved one.
    pub snapshot: Rc<Vec<u8>>,
}

/// One node's storage.
#[derive(Default)]
struct Slot {
    state: Rope,
    snapshot: Rc<Vec<u8>>,
    /// Crash the node after its next `n`-th save (a fault point), if set: (n, delay ns).
    crash_after_saves: Option<(u32, u64)>,
}

/// Every node's storage, and the fault points armed on it.
#[derive(Default)]
pub(crate) struct Persister {
    slots: Vec<Slot>,
    /// Advanced by `disarm_fault_points`: a crash scheduled under an older epoch is void.
    fault_epoch: u64,
}

impl Persister {
    pub fn add_node(&mut self) {
        self.slots.push(Slot::default());
    }

    /// Replaces the node's state, and its snapshot when one is given, then counts down its
    /// fault point. Returns whether the node must crash right now (a fault point with no
    /// delay); a delayed one is scheduled on the kernel.
    fn save(&mut self, k: &mut Kernel, ctx: NodeCtx, state: Rope, snapshot: Option<Rc<Vec<u8>>>) -> bool {
        let slot = &mut self.slots[ctx.id.index()];
        let sh = snapshot.as_ref().map(|s| crate::trace::fingerprint_bytes(s)).unwrap_or(0);
        let (rs, ss) = (state.len(), snapshot.as_ref().map(|s| s.len()));
        let h = state.fingerprint();
        slot.state = state;
        if let Some(s) = snapshot {
            slot.snapshot = s;
        }
        let crash_now = match slot.crash_after_saves.as_mut() {
            Some((n, delay)) if *n <= 1 => {
                let delay = *delay;
                slot.crash_after_saves = None;
                *k.marks.entry(crate::world::CRASH_AFTER_SAVE).or_insert(0) += 1;
                if delay > 0 {
                    // Later: the step that saved may finish (a reply may leave) first.
                    let (node, inc, epoch) = (ctx.id, ctx.incarnation, self.fault_epoch);
                    let at = k.now_ns() + delay;
                    k.schedule(
                        at,
                        Action::Callback(Box::new(move || {
                            let still = with(|w| {
                                w.store.fault_epoch == epoch
                                    && w.kernel.is_current(NodeCtx { id: node, incarnation: inc })
                            });
                            if still {
                                crash_with_reason(node, "fault point: soon after a save");
                            }
                        })),
                    );
                }
                delay == 0
            }
            Some((n, _)) => {
                *n -= 1;
                false
            }
            None => false,
        };
        k.record(Kind::Persist, ctx.id.0 as u64, [h, sh, rs as u64], |_| match ss {
            Some(ss) => format!("state {rs}B snapshot {ss}B"),
            None => format!("state {rs}B"),
        });
        crash_now
    }

    fn persisted(&self, node: NodeId) -> Persisted {
        let slot = &self.slots[node.index()];
        Persisted { state: slot.state.clone(), snapshot: slot.snapshot.clone() }
    }
}

impl World {
    /// A save from `ctx`; returns the madsim node to kill if a fault point fired.
    fn save(&mut self, ctx: NodeCtx, state: Rope, snapshot: Option<Rc<Vec<u8>>>) -> Option<madsim::task::NodeId> {
        if !self.kernel.is_current(ctx) {
            return None;
        }
        if self.store.save(&mut self.kernel, ctx, state, snapshot) {
            return self.crash_inner(ctx.id, "fault point: right after a save");
        }
        let back_ms = crate::points::reach_in(&mut self.kernel, crate::FaultPoint::CrashAfterSave, Some(ctx.id))?;
        self.crash_and_restart_later(ctx, back_ms, "fault point persist.crash_after_save")
    }

    /// A fault point crashes `ctx`'s node now and restarts it `back_ms` later; returns the
    /// madsim node to kill once the world borrow has ended.
    pub(crate) fn crash_and_restart_later(
        &mut self,
        ctx: NodeCtx,
        back_ms: u64,
        why: &str,
    ) -> Option<madsim::task::NodeId> {
        let kill = self.crash_inner(ctx.id, why);
        // The point restarts what it crashed, unless something else did first or every
        // fault has stopped since (the liveness phase restarts servers itself).
        let (node, inc, epoch) = (ctx.id, ctx.incarnation + 1, self.store.fault_epoch);
        let at = self.kernel.now_ns() + back_ms * 1_000_000;
        self.kernel.schedule(
            at,
            Action::Callback(Box::new(move || {
                let down = with(|w| {
                    let n = &w.kernel.nodes[node.index()];
                    w.store.fault_epoch == epoch && !n.alive && n.incarnation == inc
                });
                if down {
                    crate::process::restart(node);
                }
            })),
        );
        kill
    }
}

impl NodeCtx {
    /// Atomically replaces the persisted state, and the snapshot when one is given (the
    /// course's `Persister.Save(raftstate, snapshot)`). Ignored from a crashed instance.
    pub fn save(&self, state: Vec<u8>, snapshot: Option<Vec<u8>>) {
        self.save_rope(Rope::from_vec(state), snapshot.map(Rc::new))
    }

    /// Like `save`, with the state as shared parts (cheap for large, mostly unchanged
    /// states).
    pub fn save_rope(&self, state: Rope, snapshot: Option<Rc<Vec<u8>>>) {
        let kill = with(|w| w.save(*self, state, snapshot));
        if let Some(id) = kill {
            madsim::runtime::Handle::current().kill(id);
        }
    }

    /// The saved state, in one piece (restoring reads it); empty if nothing was saved.
    pub fn read_state(&self) -> Vec<u8> {
        with(|w| w.store.slots[self.id.index()].state.to_vec())
    }

    /// The saved state's size in bytes (the course's `RaftStateSize`).
    pub fn state_size(&self) -> usize {
        with(|w| w.store.slots[self.id.index()].state.len())
    }

    /// The saved snapshot; empty if none was saved.
    pub fn read_snapshot(&self) -> Rc<Vec<u8>> {
        with(|w| w.store.slots[self.id.index()].snapshot.clone())
    }
}

/// What the node has persisted (state, snapshot) — readable even while it is down, as the
/// course's tester reads a dead server's persister.
pub fn persisted(node: NodeId) -> Persisted {
    with(|w| w.store.persisted(node))
}

/// Arms a fault point: the node crashes `delay` after its `n`-th next save (n ≥ 1); with
/// no delay, right after the save, before anything else of that step happens.
///
/// # Panics
/// If `n` is 0, or outside a run.
pub fn crash_after_saves(node: NodeId, n: u32, delay: Duration) {
    assert!(n >= 1);
    with(|w| w.store.slots[node.index()].crash_after_saves = Some((n, delay.as_nanos() as u64)));
}

/// Disarms every pending crash point and disables every code-level fault point
/// ([`crate::FaultPoint`]): a swarm's liveness phase stops all faults.
pub fn disarm_fault_points() {
    with(|w| {
        for s in &mut w.store.slots {
            s.crash_after_saves = None;
        }
        crate::points::disable_all(&mut w.kernel.points);
        // Crashes already scheduled (a delay after a save) are called off too.
        w.store.fault_epoch += 1;
        w.kernel.record(Kind::Fault, NO_NODE, [0xD15A, 0, 0], |_| "disarm every crash point".into());
    });
}
