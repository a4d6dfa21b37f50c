//! The simulated world of one run: node table, timed-action scheduler, node contexts,
//! crash/restart, the crash-consistent persister, and the failure signal.
//!
//! One `World` lives in a thread-local for the duration of a run (each run has its own
//! OS thread), so node futures capture only plain ids and stay `Send`-free of `Rc`s.
//! Every public entry point borrows the world exactly once; anything that must call back
//! into madsim (kill, restart, build a node) happens after the borrow ends.

use crate::failure::Failure;
use crate::fs::FsState;
use crate::net::{Hop, Incoming, NetState, Reason};
use crate::rng::{self, ChaCha8Rng};
use crate::trace::{fmt_time, hash_bytes, Kind, Trace, TraceMode};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A node of the simulated world: a server process, a worker, or a client endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u16);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Marker for trace events that belong to no node.
pub(crate) const NO_NODE: u64 = 0xFFFF;

pub(crate) type Factory = Rc<dyn Fn(NodeCtx) -> Pin<Box<dyn Future<Output = ()>>>>;

pub(crate) enum Host {
    /// A crashable process on its own madsim node; `init` re-runs the factory on restart.
    /// `madsim` is `None` only while the node is being built.
    Process { madsim: Option<madsim::task::NodeId>, factory: Factory },
    /// A client endpoint whose tasks run on the supervisor; never crashes.
    Client,
}

/// Bytes held as shared parts, so saving a large state that mostly did not change costs
/// one pointer per part instead of a copy (a Raft log saved after every append).
#[derive(Clone, Default)]
pub struct Rope {
    parts: Vec<Rc<dyn AsRef<[u8]>>>,
    len: usize,
}

impl Rope {
    pub fn from_vec(v: Vec<u8>) -> Self {
        let len = v.len();
        Rope { parts: vec![Rc::new(v)], len }
    }

    pub fn from_parts(parts: Vec<Rc<dyn AsRef<[u8]>>>) -> Self {
        let len = parts.iter().map(|p| (**p).as_ref().len()).sum();
        Rope { parts, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

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

    /// A cheap fingerprint for the trace: length, first and last parts (a full hash of a
    /// large state on every save would cost O(state) again).
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

/// What a node has saved: raft state and snapshot, replaced atomically together.
#[derive(Clone, Default, Debug)]
pub struct Persisted {
    pub raft_state: Rope,
    pub snapshot: Rc<Vec<u8>>,
}

pub(crate) struct Node {
    pub name: String,
    pub host: Host,
    pub alive: bool,
    pub incarnation: u32,
    pub inbox: VecDeque<Incoming>,
    pub waker: Option<Waker>,
    pub persisted: Persisted,
    /// Requests dispatched to a handler of this node (labrpc's GetCount).
    pub rpc_count: u64,
    /// Bytes of requests and replies this node sent.
    pub bytes_sent: u64,
    /// Crash the node after its next `n`-th save (a fault point), if set: (n, delay ns).
    pub crash_after_saves: Option<(u32, u64)>,
    /// Until when the node is busy with messages already taken (the service queue).
    pub busy_until: u64,
}

/// Where a sleeping future keeps its waker: shared with the scheduler's entry for it, and
/// emptied when the future is dropped.
pub(crate) type WakeSlot = Rc<RefCell<Option<Waker>>>;

/// A timed action of the world's own scheduler.
pub(crate) enum Action {
    Wake(WakeSlot),
    Deliver(Hop),
    Fail { call: u64, reason: Reason },
    DeadCheck { call: u64 },
    Callback(Box<dyn FnOnce()>),
}

struct Timed {
    at: u64,
    seq: u64,
    action: Action,
}

impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
pub(crate) struct Scheduler {
    heap: BinaryHeap<Reverse<Timed>>,
    seq: u64,
    waker: Option<Waker>,
    /// The deadline the scheduler task is currently sleeping towards.
    armed: Option<u64>,
}

/// Counters a run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// RPC calls made (labrpc's rpcTotal), including those that failed.
    pub rpc_total: u64,
    /// Request bytes of every call plus reply bytes of delivered replies (labrpc's bytesTotal).
    pub bytes_total: u64,
    /// Messages (requests and replies) delivered to their destination.
    pub delivered: u64,
    /// Messages lost for any reason.
    pub dropped: u64,
    pub crashes: u64,
    pub restarts: u64,
}

pub(crate) struct World {
    pub seed: u64,
    pub nodes: Vec<Node>,
    pub net: NetState,
    pub sched: Scheduler,
    pub trace: Trace,
    pub failure: Option<Failure>,
    pub failure_waker: Option<Waker>,
    pub fs: FsState,
    pub stats: Stats,
    /// Simulated-time origin, to turn nanosecond deadlines into madsim `Instant`s.
    pub base: std::time::Instant,
    pub time: madsim::time::TimeHandle,
    /// Annotations for history pictures: (start ns, end ns or None, label, node).
    pub annotations: Vec<Annotation>,
    /// Lines a scenario wants printed with the run's result (its drawn parameters).
    pub description: Vec<String>,
    /// Advanced by `disarm_fault_points`: a crash scheduled under an older epoch is void.
    pub fault_epoch: u64,
    /// The simulated second being watched for a livelock, and its events so far.
    watch_s: u64,
    watch_events: u64,
}

/// More events than this within one simulated second is a livelock: nodes busy forever at
/// (nearly) one instant — a zero-delay message loop advances time only by the executor's
/// 50–100 ns per poll, so the run would never reach its simulated-time budget. Healthy runs
/// stay far below it (the busiest, 20 clerks on 5 servers, make ~60k a second).
pub const LIVELOCK_EVENTS_PER_S: u64 = 500_000;

/// A labelled interval of the run (crash, partition, leader change), for history pictures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub label: String,
    pub node: Option<NodeId>,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs `f` on the current run's world. Panics outside a run: that is a harness bug.
pub(crate) fn with<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|c| {
        let mut b = c.borrow_mut();
        f(b.as_mut().expect("sim: no world on this thread (call inside sim::run)"))
    })
}

/// Like `with`, but a no-op when there is no world or it is busy (used from `Drop`).
pub(crate) fn try_with(f: impl FnOnce(&mut World)) {
    WORLD.with(|c| {
        if let Ok(mut b) = c.try_borrow_mut() {
            if let Some(w) = b.as_mut() {
                f(w)
            }
        }
    })
}

pub(crate) fn install(seed: u64, mode: TraceMode) {
    let time = madsim::time::TimeHandle::current();
    let base = time.now_instant() - time.elapsed();
    let world = World {
        seed,
        nodes: Vec::new(),
        net: NetState::new(rng::stream(seed, "net", 0)),
        sched: Scheduler::default(),
        trace: Trace::new(mode),
        failure: None,
        failure_waker: None,
        fs: FsState::default(),
        stats: Stats::default(),
        base,
        time,
        annotations: Vec::new(),
        description: Vec::new(),
        fault_epoch: 0,
        watch_s: 0,
        watch_events: 0,
    };
    WORLD.with(|c| *c.borrow_mut() = Some(world));
}

/// The madsim nodes of the run's processes (to free their tasks when it ends).
pub(crate) fn madsim_nodes() -> Vec<madsim::task::NodeId> {
    WORLD.with(|c| {
        c.borrow()
            .as_ref()
            .map(|w| {
                w.nodes
                    .iter()
                    .filter_map(|n| if let Host::Process { madsim, .. } = &n.host { *madsim } else { None })
                    .collect()
            })
            .unwrap_or_default()
    })
}

pub(crate) fn uninstall() -> Option<World> {
    WORLD.with(|c| c.borrow_mut().take())
}

impl World {
    pub fn now_ns(&self) -> u64 {
        self.time.elapsed().as_nanos() as u64
    }

    /// Records a trace event stamped with the current simulated time.
    #[inline]
    pub fn record(&mut self, kind: Kind, node: u64, fields: [u64; 3], detail: impl FnOnce(&World) -> String) {
        let now = self.now_ns();
        let sec = now / 1_000_000_000;
        if sec != self.watch_s {
            self.watch_s = sec;
            self.watch_events = 0;
        } else {
            self.watch_events += 1;
            if self.watch_events == LIVELOCK_EVENTS_PER_S && self.failure.is_none() {
                self.set_failure(Failure::liveness(
                    "livelock",
                    format!(
                        "{LIVELOCK_EVENTS_PER_S} events within one simulated second (at {}): nodes are busy without end at nearly one instant",
                        fmt_time(now).trim()
                    ),
                ));
            }
        }
        if self.trace.wants_lines() {
            let name = if node == NO_NODE { "-".to_string() } else { self.nodes[node as usize].name.clone() };
            let line = format!("{} {:<10} {:<8} {}", fmt_time(now), name, kind.label(), detail(self));
            self.trace.record(now, kind, node, fields, move || line);
        } else {
            self.trace.record(now, kind, node, fields, String::new);
        }
    }

    pub fn name(&self, n: u16) -> &str {
        &self.nodes[n as usize].name
    }

    /// Schedules `action` at simulated time `at` (ns), waking the scheduler if it is earlier
    /// than what the scheduler sleeps towards.
    pub fn schedule(&mut self, at: u64, action: Action) {
        let seq = self.sched.seq;
        self.sched.seq += 1;
        self.sched.heap.push(Reverse(Timed { at, seq, action }));
        if self.sched.armed.is_none_or(|armed| at < armed) {
            if let Some(w) = self.sched.waker.take() {
                w.wake();
            }
        }
    }

    pub fn set_failure(&mut self, f: Failure) {
        if self.failure.is_none() {
            let (c, m) = (hash_bytes(f.checker.as_bytes()), hash_bytes(f.message.as_bytes()));
            let line = f.to_string();
            self.record(Kind::Check, NO_NODE, [c, m, f.class as u64], |_| format!("FAILED {line}"));
            self.failure = Some(f);
            if let Some(w) = self.failure_waker.take() {
                w.wake();
            }
        }
    }

    /// Delivers into a node's inbox, waking the task waiting on it.
    pub fn push_inbox(&mut self, node: u16, msg: Incoming) {
        let n = &mut self.nodes[node as usize];
        n.inbox.push_back(msg);
        if let Some(w) = n.waker.take() {
            w.wake();
        }
    }

    /// Marks a node dead and discards everything in flight for it; returns the madsim node to
    /// kill once the world borrow has ended.
    pub fn crash_inner(&mut self, node: NodeId, why: &str) -> Option<madsim::task::NodeId> {
        let n = &mut self.nodes[node.index()];
        if !n.alive {
            return None;
        }
        n.alive = false;
        n.incarnation += 1;
        n.inbox.clear();
        n.waker.take();
        let target = match &n.host {
            Host::Process { madsim, .. } => *madsim,
            Host::Client => None,
        };
        self.stats.crashes += 1;
        let inc = self.nodes[node.index()].incarnation as u64;
        let why = why.to_string();
        self.record(Kind::Crash, node.0 as u64, [inc, 0, 0], |_| format!("incarnation {} ended ({why})", inc - 1));
        // Whatever the dead instance was doing (leading, say) ends with it.
        self.end_annotations(node, "");
        let now = self.now_ns();
        self.annotations.push(Annotation {
            start_ns: now,
            end_ns: None,
            label: format!("{} down", self.nodes[node.index()].name),
            node: Some(node),
        });
        self.net_on_crash(node.0);
        target
    }
}

/// The scheduler: one task on the supervisor that carries out every timed action of the
/// world (delayed deliveries, failed calls, dead checks, fault callbacks) in time order.
/// One task and one pending madsim timer, whatever the number of messages in flight.
pub(crate) struct SchedulerTask {
    sleep: Option<Pin<Box<madsim::time::Sleep>>>,
}

impl SchedulerTask {
    pub fn new() -> Self {
        SchedulerTask { sleep: None }
    }
}

impl Future for SchedulerTask {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // Take the next due action, if any, and note the next deadline otherwise.
            let step = with(|w| {
                let now = w.now_ns();
                match w.sched.heap.peek() {
                    Some(Reverse(t)) if t.at <= now => {
                        let Reverse(t) = w.sched.heap.pop().unwrap();
                        Ok(t.action)
                    }
                    Some(Reverse(t)) => Err(Some((t.at, w.base + Duration::from_nanos(t.at)))),
                    None => Err(None),
                }
            });
            match step {
                Ok(Action::Callback(f)) => f(),
                Ok(action) => with(|w| w.run_action(action)),
                Err(None) => {
                    with(|w| {
                        w.sched.armed = None;
                        w.sched.waker = Some(cx.waker().clone());
                    });
                    self.sleep = None;
                    return Poll::Pending;
                }
                Err(Some((at, deadline))) => {
                    let need_new = self.sleep.as_ref().is_none_or(|s| s.deadline() != deadline);
                    if need_new {
                        let time = with(|w| w.time.clone());
                        let mut s = Box::pin(time.sleep(Duration::ZERO));
                        // `reset` keeps the exact deadline; madsim's constructors round up to 1 ms.
                        s.as_mut().reset(deadline);
                        self.sleep = Some(s);
                    }
                    match self.sleep.as_mut().unwrap().as_mut().poll(cx) {
                        Poll::Ready(()) => continue,
                        Poll::Pending => {
                            with(|w| {
                                w.sched.armed = Some(at);
                                w.sched.waker = Some(cx.waker().clone());
                            });
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

impl World {
    fn run_action(&mut self, action: Action) {
        match action {
            Action::Wake(slot) => {
                let waker = slot.borrow_mut().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Action::Deliver(hop) => self.deliver(hop),
            Action::Fail { call, reason } => self.fail_call(call, reason),
            Action::DeadCheck { call } => self.dead_check(call),
            Action::Callback(_) => unreachable!("callbacks run outside the world borrow"),
        }
    }
}

/// The handle a node's code uses to talk to the world: its identity and incarnation.
/// Every operation from a stale incarnation (a crashed instance) is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCtx {
    pub(crate) id: NodeId,
    pub(crate) incarnation: u32,
}

impl NodeCtx {
    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    pub fn name(&self) -> String {
        with(|w| w.nodes[self.id.index()].name.clone())
    }

    /// Whether this instance is still the live one.
    pub fn is_current(&self) -> bool {
        with(|w| w.is_current(*self))
    }

    /// A random stream private to this node incarnation, derived from the run's seed.
    pub fn rng(&self, label: &str) -> ChaCha8Rng {
        let seed = with(|w| w.seed);
        rng::stream(seed, label, ((self.id.0 as u64) << 32) | self.incarnation as u64)
    }

    /// Waits for the next message (request, or completion of a `start_call`).
    pub fn recv(&self) -> Recv {
        Recv { ctx: *self, sleep: None, deadline: None }
    }

    /// Waits for the next message until simulated time `deadline`; `None` if it passed first.
    pub fn recv_until(&self, deadline: Duration) -> Recv {
        Recv { ctx: *self, sleep: None, deadline: Some(deadline) }
    }

    /// Takes a message if one is queued, without waiting.
    pub fn try_recv(&self) -> Option<Incoming> {
        with(|w| if w.is_current(*self) { w.nodes[self.id.index()].inbox.pop_front() } else { None })
    }

    /// Atomically replaces the persisted raft state, and the snapshot when one is given.
    pub fn save(&self, raft_state: Vec<u8>, snapshot: Option<Vec<u8>>) {
        self.save_rope(Rope::from_vec(raft_state), snapshot)
    }

    /// Like `save`, with the raft state as shared parts (cheap for large, mostly unchanged
    /// states).
    pub fn save_rope(&self, raft_state: Rope, snapshot: Option<Vec<u8>>) {
        let kill = with(|w| w.save(*self, raft_state, snapshot));
        if let Some(id) = kill {
            madsim::runtime::Handle::current().kill(id);
        }
    }

    /// The saved raft state, in one piece (restoring reads it).
    pub fn read_raft_state(&self) -> Vec<u8> {
        with(|w| w.nodes[self.id.index()].persisted.raft_state.to_vec())
    }

    /// The saved raft state's size (the course's `RaftStateSize`).
    pub fn raft_state_size(&self) -> usize {
        with(|w| w.nodes[self.id.index()].persisted.raft_state.len())
    }

    pub fn read_snapshot(&self) -> Rc<Vec<u8>> {
        with(|w| w.nodes[self.id.index()].persisted.snapshot.clone())
    }

    /// Wakes whatever this node's current instance waits on in `recv`/`recv_until`, so its
    /// event loop looks again (after an outside call changed its state). The waker lives
    /// in the world, never in the node's own data: a task that held its own waker would
    /// keep itself alive after the run.
    pub fn wake(&self) {
        with(|w| {
            if w.is_current(*self) {
                if let Some(waker) = w.nodes[self.id.index()].waker.take() {
                    waker.wake();
                }
            }
        })
    }

    /// Records a protocol note in the trace (became leader, applied an entry, ...).
    /// `code`/`a`/`b` go into the trace hash; the text is built only when lines are wanted.
    pub fn note(&self, code: u64, a: u64, b: u64, text: impl FnOnce() -> String) {
        with(|w| {
            if w.is_current(*self) {
                w.record(Kind::Note, self.id.0 as u64, [code, a, b], |_| text());
            }
        })
    }

    /// Ends this process as `exit(1)` would: it is marked dead at once, so nothing it does
    /// afterwards (sends, saves, file writes) takes effect.
    pub fn crash_self(&self, why: &str) {
        if self.is_current() {
            crash_with_reason(self.id, why);
        }
    }
}

impl World {
    pub fn is_current(&self, ctx: NodeCtx) -> bool {
        // Once the run has failed, every node is as good as crashed: nothing it does takes
        // effect and nothing new reaches it. Otherwise nodes busy with each other at zero
        // delay would keep madsim's ready queue from ever draining, and the run from ending.
        let n = &self.nodes[ctx.id.index()];
        n.alive && n.incarnation == ctx.incarnation && self.failure.is_none()
    }

    fn save(&mut self, ctx: NodeCtx, raft_state: Rope, snapshot: Option<Vec<u8>>) -> Option<madsim::task::NodeId> {
        if !self.is_current(ctx) {
            return None;
        }
        let n = &mut self.nodes[ctx.id.index()];
        let sh = snapshot.as_ref().map(|s| crate::trace::fingerprint_bytes(s)).unwrap_or(0);
        let (rs, ss) = (raft_state.len(), snapshot.as_ref().map(|s| s.len()));
        let h = raft_state.fingerprint();
        n.persisted.raft_state = raft_state;
        if let Some(s) = snapshot {
            n.persisted.snapshot = Rc::new(s);
        }
        let crash_now = match n.crash_after_saves.as_mut() {
            Some((k, delay)) if *k <= 1 => {
                let delay = *delay;
                n.crash_after_saves = None;
                if delay > 0 {
                    // Later: the step that saved may finish (a reply may leave) first.
                    let (node, inc, epoch) = (ctx.id, ctx.incarnation, self.fault_epoch);
                    let at = self.now_ns() + delay;
                    self.schedule(
                        at,
                        Action::Callback(Box::new(move || {
                            let still = with(|w| {
                                w.fault_epoch == epoch && w.is_current(NodeCtx { id: node, incarnation: inc })
                            });
                            if still {
                                crash_with_reason(node, "fault point: soon after a save");
                            }
                        })),
                    );
                }
                delay == 0
            }
            Some((k, _)) => {
                *k -= 1;
                false
            }
            None => false,
        };
        self.record(Kind::Persist, ctx.id.0 as u64, [h, sh, rs as u64], |_| match ss {
            Some(ss) => format!("state {rs}B snapshot {ss}B"),
            None => format!("state {rs}B"),
        });
        if crash_now {
            self.crash_inner(ctx.id, "fault point: right after a save")
        } else {
            None
        }
    }
}

/// Future of `NodeCtx::recv`/`recv_until`.
pub struct Recv {
    ctx: NodeCtx,
    deadline: Option<Duration>,
    sleep: Option<Sleep>,
}

impl Future for Recv {
    type Output = Option<Incoming>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        let ctx = self.ctx;
        let got = with(|w| {
            if !w.is_current(ctx) {
                return Err(());
            }
            let n = &mut w.nodes[ctx.id.index()];
            match n.inbox.pop_front() {
                Some(m) => Ok(Some(m)),
                None => {
                    n.waker = Some(cx.waker().clone());
                    Ok(None)
                }
            }
        });
        match got {
            Ok(Some(m)) => return Poll::Ready(Some(m)),
            // A dead instance waits forever; madsim drops the task.
            Err(()) => return Poll::Pending,
            Ok(None) => {}
        }
        let Some(deadline) = self.deadline else { return Poll::Pending };
        let sleep = self.sleep.get_or_insert_with(|| sleep_until(deadline));
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => {
                with(|w| {
                    if w.is_current(ctx) {
                        w.nodes[ctx.id.index()].waker = None;
                        w.record(Kind::Timer, ctx.id.0 as u64, [deadline.as_nanos() as u64, 0, 0], |_| "wakeup".into());
                    }
                });
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Supervisor-side API: time, nodes, crash/restart, failure signal.
// ---------------------------------------------------------------------------------------

/// Simulated time since the run started.
pub fn now() -> Duration {
    madsim::time::TimeHandle::current().elapsed()
}

/// Sleeps for exactly `d` of simulated time (no 1 ms rounding).
pub fn sleep(d: Duration) -> Sleep {
    sleep_until(now() + d)
}

/// Sleeps until simulated time `t`.
pub fn sleep_until(t: Duration) -> Sleep {
    Sleep { deadline_ns: t.as_nanos() as u64, slot: None }
}

/// A sleep on the world's own scheduler. Its waker lives in the world, which is dropped at
/// the end of every run — unlike madsim's timers, which hold the waker of a task whose sleep
/// holds the timers: a task still sleeping when a run ends would never be freed.
pub struct Sleep {
    deadline_ns: u64,
    slot: Option<WakeSlot>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline_ns;
        let Some(now) = try_now_ns() else { return Poll::Pending };
        if now >= deadline {
            if let Some(slot) = self.slot.take() {
                slot.borrow_mut().take();
            }
            return Poll::Ready(());
        }
        match &self.slot {
            Some(slot) => *slot.borrow_mut() = Some(cx.waker().clone()),
            None => {
                let slot: WakeSlot = Rc::new(RefCell::new(Some(cx.waker().clone())));
                with(|w| w.schedule(deadline, Action::Wake(slot.clone())));
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.borrow_mut().take();
        }
    }
}

fn try_now_ns() -> Option<u64> {
    madsim::time::TimeHandle::try_current().map(|t| t.elapsed().as_nanos() as u64)
}

/// Runs `fut` until simulated time `d` has passed; `None` if it had not finished by then.
pub async fn timeout<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    let mut fut = fut;
    let mut s = sleep(d);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        match Pin::new(&mut s).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The run's seed.
pub fn seed() -> u64 {
    with(|w| w.seed)
}

/// A random stream for scenario-level choices (workloads, fault schedules, swarm knobs).
pub fn rng(label: &str) -> ChaCha8Rng {
    rng::stream(seed(), label, u64::MAX)
}

fn add_node(name: &str, host: Host) -> NodeId {
    with(|w| {
        assert!(w.nodes.len() < NO_NODE as usize, "too many nodes");
        assert!(w.nodes.iter().all(|n| n.name != name), "duplicate node name {name}");
        let id = NodeId(w.nodes.len() as u16);
        w.nodes.push(Node {
            name: name.to_string(),
            host,
            alive: true,
            incarnation: 0,
            inbox: VecDeque::new(),
            waker: None,
            persisted: Persisted::default(),
            rpc_count: 0,
            bytes_sent: 0,
            crash_after_saves: None,
            busy_until: 0,
        });
        w.net.add_node();
        id
    })
}

/// Starts a crashable process. `factory` builds a fresh instance from the world (its
/// persister, the files) each time the node starts: now, and after every restart.
pub fn spawn_process<F, Fut>(name: &str, factory: F) -> NodeId
where
    F: Fn(NodeCtx) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let factory: Factory = Rc::new(move |ctx| Box::pin(factory(ctx)));
    let id = add_node(name, Host::Process { madsim: None, factory });
    let idx = id.index();
    let handle = madsim::runtime::Handle::current();
    // `init` runs now (inside `build`) and again on every restart.
    let node = handle
        .create_node()
        .name(name)
        .init(move || {
            let (factory, ctx) = with(|w| {
                let n = &w.nodes[idx];
                let Host::Process { factory, .. } = &n.host else { unreachable!("process node without factory") };
                (factory.clone(), NodeCtx { id: NodeId(idx as u16), incarnation: n.incarnation })
            });
            let fut = factory(ctx);
            ProcessMain { ctx, fut, done: false }
        })
        .build()
        .id();
    with(|w| {
        if let Host::Process { madsim, .. } = &mut w.nodes[idx].host {
            *madsim = Some(node);
        }
    });
    id
}

/// Wraps a process's main future: catches its panic as a run failure, and marks the node
/// exited when the future returns (a worker that finished its job).
struct ProcessMain {
    ctx: NodeCtx,
    fut: Pin<Box<dyn Future<Output = ()>>>,
    done: bool,
}

impl Future for ProcessMain {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Pending;
        }
        let ctx = self.ctx;
        // Everything, exit bookkeeping included, runs under the catch: a panic must become
        // the run's outcome, never madsim's.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let p = self.fut.as_mut().poll(cx);
            if p.is_ready() {
                with(|w| {
                    if w.is_current(ctx) {
                        let n = &mut w.nodes[ctx.id.index()];
                        n.alive = false;
                        n.incarnation += 1;
                        n.inbox.clear();
                        w.record(Kind::Exit, ctx.id.0 as u64, [0; 3], |_| "process exited".into());
                        w.net_on_crash(ctx.id.0);
                        w.notify_exit(ctx.id);
                    }
                });
            }
            p
        }));
        match r {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => {
                self.done = true;
                Poll::Ready(())
            }
            Err(payload) => {
                self.done = true;
                let msg = crate::run::panic_text(&payload);
                try_with(|w| {
                    let name = w.nodes[ctx.id.index()].name.clone();
                    w.set_failure(Failure::panic(format!("node {name}: {msg}")))
                });
                Poll::Pending
            }
        }
    }
}

/// A client endpoint: a network identity whose tasks run on the supervisor (clerks, the
/// tester's own calls). Clients never crash.
pub fn client(name: &str) -> NodeCtx {
    let id = add_node(name, Host::Client);
    NodeCtx { id, incarnation: 0 }
}

/// Spawns a task on the current node (the supervisor, or the calling process — then it
/// dies with that process). A panic in it ends the run as a panic failure.
pub fn spawn<F>(fut: F) -> madsim::task::JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    madsim::task::spawn_local(CatchPanic { fut: Box::pin(fut) })
}

pub(crate) struct CatchPanic<F: Future> {
    pub fut: Pin<Box<F>>,
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fut.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                let msg = crate::run::panic_text(&payload);
                try_with(|w| w.set_failure(Failure::panic(msg)));
                Poll::Pending
            }
        }
    }
}

fn crash_with_reason(node: NodeId, why: &str) {
    if let Some(id) = with(|w| w.crash_inner(node, why)) {
        madsim::runtime::Handle::current().kill(id);
    }
}

/// Crashes a process: its tasks end, its inbox and in-flight calls are discarded, replies
/// it had sent are never delivered, and only what it had saved survives.
pub fn crash(node: NodeId) {
    crash_with_reason(node, "crash");
}

/// Restarts a crashed (or exited) process as a fresh instance built from its persister.
/// Like the course's testers, restart does not change the node's links.
pub fn restart(node: NodeId) {
    let target = with(|w| {
        let n = &mut w.nodes[node.index()];
        assert!(!n.alive, "restart of a live node {}", n.name);
        let Host::Process { madsim: Some(id), .. } = &n.host else { panic!("restart of a client endpoint {}", n.name) };
        let id = *id;
        n.alive = true;
        n.inbox.clear();
        n.busy_until = 0;
        w.stats.restarts += 1;
        let inc = n.incarnation as u64;
        w.record(Kind::Restart, node.0 as u64, [inc, 0, 0], |_| format!("incarnation {inc} starts"));
        let now = w.now_ns();
        let name = w.nodes[node.index()].name.clone();
        if let Some(a) = w
            .annotations
            .iter_mut()
            .rev()
            .find(|a| a.node == Some(node) && a.end_ns.is_none() && a.label.ends_with(" down"))
        {
            a.end_ns = Some(now);
        } else {
            w.annotations.push(Annotation {
                start_ns: now,
                end_ns: Some(now),
                label: format!("{name} restart"),
                node: Some(node),
            });
        }
        id
    });
    madsim::runtime::Handle::current().restart(target);
}

/// Whether the node's current instance is running.
pub fn is_alive(node: NodeId) -> bool {
    with(|w| w.nodes[node.index()].alive)
}

/// How many nodes the world has so far (the next node gets this id).
pub fn node_count() -> u16 {
    with(|w| w.nodes.len() as u16)
}

/// The node's current incarnation: 0 at start, +1 at every crash or exit.
pub fn incarnation(node: NodeId) -> u32 {
    with(|w| w.nodes[node.index()].incarnation)
}

/// The node's name.
pub fn node_name(node: NodeId) -> String {
    with(|w| w.nodes[node.index()].name.clone())
}

/// What the node has persisted (raft state, snapshot) — readable even while it is down,
/// as the course's tester reads a dead server's persister.
pub fn persisted(node: NodeId) -> Persisted {
    with(|w| w.nodes[node.index()].persisted.clone())
}

/// Arms a fault point: the node crashes `delay` after its `n`-th next save (n ≥ 1); with
/// no delay, right after the save, before anything else of that step happens.
pub fn crash_after_saves(node: NodeId, n: u32, delay: Duration) {
    assert!(n >= 1);
    with(|w| w.nodes[node.index()].crash_after_saves = Some((n, delay.as_nanos() as u64)));
}

/// Disarms every pending crash point (a swarm's liveness phase stops all faults).
pub fn disarm_fault_points() {
    with(|w| {
        for n in &mut w.nodes {
            n.crash_after_saves = None;
        }
        // Crashes already scheduled (a delay after a save) are called off too.
        w.fault_epoch += 1;
        w.record(Kind::Fault, NO_NODE, [0xD15A, 0, 0], |_| "disarm every crash point".into());
    });
}

/// Ends the run with this failure (the first one wins).
pub fn fail(f: Failure) {
    with(|w| w.set_failure(f));
}

/// Whether some check has already failed the run.
pub fn failed() -> bool {
    with(|w| w.failure.is_some())
}

/// Records a scenario-level event (a tester step, a fault) in the trace. `text` runs inside
/// the world, only when lines are wanted: it must not call back into `sim`.
pub fn note(code: u64, a: u64, text: impl FnOnce() -> String) {
    with(|w| w.record(Kind::Note, NO_NODE, [code, a, 0], |_| text()));
}

/// Describes the run (a swarm's drawn parameters): recorded in the trace and printed by
/// `run`, `replay` and failing sweep runs.
pub fn describe(line: impl Into<String>) {
    let line = line.into();
    with(|w| {
        let h = crate::trace::hash_bytes(line.as_bytes());
        let l = line.clone();
        w.record(Kind::Note, NO_NODE, [0xDE5C, h, 0], |_| l);
        w.description.push(line);
    });
}

/// Adds a labelled interval to the run's annotations (for history pictures).
pub fn annotate(start: Duration, end: Option<Duration>, label: impl Into<String>, node: Option<NodeId>) {
    with(|w| {
        w.annotations.push(Annotation {
            start_ns: start.as_nanos() as u64,
            end_ns: end.map(|e| e.as_nanos() as u64),
            label: label.into(),
            node,
        })
    });
}

/// Ends the node's open annotations (no end yet) whose label starts with `prefix`, now.
pub fn end_annotations(node: NodeId, prefix: &str) {
    with(|w| w.end_annotations(node, prefix));
}

impl World {
    fn end_annotations(&mut self, node: NodeId, prefix: &str) {
        let now = self.now_ns();
        for a in self
            .annotations
            .iter_mut()
            .filter(|a| a.node == Some(node) && a.end_ns.is_none() && a.label.starts_with(prefix))
        {
            a.end_ns = Some(now);
        }
    }
}

/// The run's annotations so far (crashes, restarts, partitions, leader changes).
pub fn annotations() -> Vec<Annotation> {
    with(|w| w.annotations.clone())
}

/// Run-wide counters so far.
pub fn stats() -> Stats {
    with(|w| w.stats)
}

/// Schedules `f` to run on the scheduler at simulated time `at` (fault schedules use this).
pub fn at(at: Duration, f: impl FnOnce() + 'static) {
    with(|w| w.schedule(at.as_nanos() as u64, Action::Callback(Box::new(f))));
}

/// Future that resolves when some check fails the run.
pub(crate) struct FailureSignal;

impl Future for FailureSignal {
    type Output = Failure;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Failure> {
        with(|w| match &w.failure {
            Some(f) => Poll::Ready(f.clone()),
            None => {
                w.failure_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}
