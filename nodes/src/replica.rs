//! The replica actor shell: one event loop that feeds any [`ReplicaCore`] (Raft, or another
//! engine behind the seam) and carries out its outputs in order — persist, then send, then
//! apply — making no protocol decisions.
//!
//! A replica node is a process that hosts the core and a [`Service`] above it (the course
//! tester's applier, the key/value server, a shard group). Requests to the node are either
//! the engine's messages between peers or the service's own requests; both arrive in the
//! node's inbox as a [`Wire`]. A service can also ask for a timer and make calls of its own to
//! any node; their replies and failures come back to it.
//!
//! Testers see a node only through its handle ([`ReplicaHandle`]: the course's `Start` and
//! `GetState`) and through the [`Engine`] that spawns it, so an engine that is not a pure core
//! (a course-shaped async node) can stand behind the same testers. After every step the
//! shell reports what changed ([`Observation`]s, derived by [`ReplicaCore::observe`]) to an
//! optional [`Observer`] — in practice the scenario's safety checker; a violation fails the
//! run.

use cores::replica::{ApplyMsg, AtTime, Observation, Observed, PersistedImage, Proposal, Proposer, ReplicaCore};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sim::{Failure, Incoming, NodeCtx, NodeId, ReplyTo, RpcError};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Every request a replica node receives: an engine message from a peer, or a request of the
/// service's. (The variant order is the wire encoding.)
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Wire<R, Q> {
    Peer(R),
    Service(Q),
}

/// Every reply a replica node sends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WireReply<R, P> {
    Peer(R),
    Service(P),
}

/// A request to a service, as a node outside the engine sends it (a clerk, another group):
/// the bytes equal `Wire::Service(q)` whatever the engine.
pub type ServiceWire<Q> = Wire<(), Q>;
/// A service's reply, as a node outside the engine reads it.
pub type ServiceWireReply<P> = WireReply<(), P>;

/// Decodes the bytes of a service's reply to a call made with [`ServiceApi::call`].
pub fn decode_service_reply<P: DeserializeOwned>(bytes: &[u8]) -> P {
    match sim::decode::<ServiceWireReply<P>>(bytes) {
        WireReply::Service(p) => p,
        WireReply::Peer(()) => panic!("a service call was answered by a peer message"),
    }
}

/// Identifies a call a service made with [`ServiceApi::call`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallTag(pub u64);

/// The service above an engine: it consumes the apply stream, may ask for snapshots, serves
/// its own clients through the node's inbox, and may keep a timer and make calls of its own.
pub trait Service: 'static {
    type Request: Serialize + DeserializeOwned;
    type Reply: Serialize + DeserializeOwned;

    /// Called once per instance before anything is applied, with the persisted snapshot
    /// (empty if there is none).
    fn restore(&mut self, snapshot: &[u8]);

    /// One applied message, in order. Returning `Some(data)` asks the engine to snapshot at
    /// this message's index with `data` (the course's `Snapshot(index, data)`).
    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>>;

    /// Called once per instance when it starts serving, after [`Service::restore`]: the place
    /// to arm a first timer or make first calls.
    fn on_boot(&mut self, api: &mut ServiceApi<'_>) {
        let _ = api;
    }

    /// A request from a client of the service; answer with `api.reply` now or later.
    fn on_request(&mut self, api: &mut ServiceApi<'_>, from: NodeId, req: Self::Request, reply_to: ReplyTo) {
        let _ = (api, from, req, reply_to);
    }

    /// Called after every step, so the service can notice a lost leadership promptly.
    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        let _ = api;
    }

    /// The deadline asked for with [`ServiceApi::set_timer`] passed.
    fn on_timer(&mut self, api: &mut ServiceApi<'_>) {
        let _ = api;
    }

    /// A call made with [`ServiceApi::call`] returned (the reply's bytes, for
    /// [`decode_service_reply`]) or failed. Every call gets exactly one of these.
    fn on_reply(&mut self, api: &mut ServiceApi<'_>, call: CallTag, result: Result<Vec<u8>, RpcError>) {
        let _ = (api, result);
        panic!("the service made call {call:?} but does not implement Service::on_reply");
    }
}

/// The node's outgoing calls: engine calls (with what a failure report needs) and the
/// service's own, in one tag space.
struct Calls<X> {
    next_tag: u64,
    engine: BTreeMap<u64, (usize, X)>,
    service: BTreeSet<u64>,
}

impl<X> Calls<X> {
    fn tag(&mut self) -> u64 {
        let t = self.next_tag;
        self.next_tag += 1;
        t
    }
}

/// What a service may do while it runs inside the shell.
pub struct ServiceApi<'a> {
    pub ctx: NodeCtx,
    engine: &'a mut dyn Proposer,
    now_ms: u64,
    timer_ms: &'a mut Option<u64>,
    next_tag: &'a mut u64,
    service_calls: &'a mut BTreeSet<u64>,
}

impl<'a> ServiceApi<'a> {
    /// The API over an engine's parts (for shells of other engine shapes).
    pub(crate) fn new(
        ctx: NodeCtx,
        engine: &'a mut dyn Proposer,
        now_ms: u64,
        timer_ms: &'a mut Option<u64>,
        next_tag: &'a mut u64,
        service_calls: &'a mut BTreeSet<u64>,
    ) -> ServiceApi<'a> {
        ServiceApi { ctx, engine, now_ms, timer_ms, next_tag, service_calls }
    }

    /// The course's `Start(command)`: (index, term, is_leader).
    pub fn start(&mut self, command: Vec<u8>) -> (u64, u64, bool) {
        match self.engine.start(command) {
            Some(p) => (p.index, p.term, true),
            None => (0, self.engine.get_state().0, false),
        }
    }

    /// The course's `GetState()`: (current term, is leader).
    pub fn get_state(&self) -> (u64, bool) {
        self.engine.get_state()
    }

    /// Whether the engine has no leader, so every replica may propose at any time
    /// ([`cores::replica::Proposer::leaderless`]: Paxos).
    pub fn leaderless(&self) -> bool {
        self.engine.leaderless()
    }

    /// The engine, for the pure RSM core's decisions.
    pub fn engine(&mut self) -> &mut dyn Proposer {
        &mut *self.engine
    }

    /// The node's clock now, in milliseconds: simulated time, unless a fault point skewed or
    /// advanced this replica's clock (`sim::FaultPoint::SkewTimer`, `ShortenTimeout`); it
    /// never runs backwards within an incarnation.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Answers a client request of the service.
    pub fn reply<P: Serialize>(&self, reply_to: ReplyTo, reply: &P) {
        self.ctx.reply(reply_to, &WireReply::<(), &P>::Service(reply));
    }

    /// Asks for [`Service::on_timer`] at simulated time `at_ms` (replacing an earlier request).
    pub fn set_timer(&mut self, at_ms: u64) {
        *self.timer_ms = Some(at_ms);
    }

    /// Calls another node's service with `request` (its `Service::Request`, or anything encoded
    /// the same); the answer comes to [`Service::on_reply`] with the returned tag.
    pub fn call<Q: Serialize>(&mut self, to: NodeId, request: &Q) -> CallTag {
        let tag = *self.next_tag;
        *self.next_tag += 1;
        self.service_calls.insert(tag);
        self.ctx.start_call(to, &ServiceWire::<&Q>::Service(request), tag);
        CallTag(tag)
    }

    /// The size of the engine's persisted state, in bytes (the course's `RaftStateSize`).
    pub fn state_size(&self) -> usize {
        self.ctx.state_size()
    }
}

/// The coverage marks the replica shell sets (`sim::mark`), with what each means; a family
/// of scenarios on replicas declares them so a sweep names those it never reached.
pub const MARKS: [(&str, &str); 6] = [
    (cores::raft::VOTE_DENIED_OUT_OF_DATE_LOG, "a vote was denied: the candidate's log was less up to date (§5.4.1)"),
    (LEADER_STEPPED_DOWN, "a leader became a follower or candidate"),
    (SNAPSHOT_INSTALLED, "the service was handed a snapshot to install"),
    (SNAPSHOT_DURING_PARTITION, "a snapshot was installed while a link to or from a peer was down"),
    (RESTART_FROM_SNAPSHOT, "a node restarted from a persisted snapshot"),
    (SUFFIX_REWRITTEN, "a follower's log was rewritten from an index it already held (a conflicting suffix)"),
];
/// Mark: a leader stepped down.
pub const LEADER_STEPPED_DOWN: &str = "replica: leader stepped down";
/// Mark: the service installed a snapshot.
pub const SNAPSHOT_INSTALLED: &str = "replica: snapshot installed";
/// Mark: a snapshot installed while some link of the node was down.
pub const SNAPSHOT_DURING_PARTITION: &str = "replica: snapshot installed during a partition";
/// Mark: a restart from a snapshot.
pub const RESTART_FROM_SNAPSHOT: &str = "replica: restart from a snapshot";
/// Mark: a log suffix rewritten.
pub const SUFFIX_REWRITTEN: &str = "replica: log suffix rewritten";

/// Receives, after every step of every node, what changed — plain data, so a checker can
/// judge the whole run. An `Err` is a violation and fails the run.
pub trait Observer {
    fn observe(&mut self, node: usize, observation: &Observation<'_>) -> Result<(), Failure>;
}

struct Shell<C: ReplicaCore, S: Service> {
    ctx: NodeCtx,
    me: usize,
    peers: Vec<NodeId>,
    core: C,
    service: S,
    calls: Calls<C::CallContext>,
    /// When the service asked to be woken, if it did.
    service_timer_ms: Option<u64>,
    observer: Option<Rc<RefCell<dyn Observer>>>,
    seen: Observed,
    /// Set when an outside call changed the core, so the event loop recomputes its deadline.
    kicked: bool,
    /// The observations buffer, kept empty between steps so a step does not allocate one
    /// (that allocation and its growth were 2.5 % of a Raft run).
    observations: Vec<Observation<'static>>,
    /// The clock the engine and the service read.
    clock: NodeClock,
    /// The engine's deadline when the loop last slept, to reach `replica.shorten_timeout`
    /// once per new deadline rather than once per message.
    last_deadline_ms: u64,
}

fn sim_ms() -> u64 {
    sim::now().as_millis() as u64
}

/// A replica's own clock, which its engine and service read: simulated time, unless fault
/// point `replica.skew_timer` made it run faster or slower for this incarnation, or
/// `replica.shorten_timeout` made it leap forward. It never runs backwards.
#[derive(Clone, Copy, Debug)]
struct NodeClock {
    /// Simulated ms at boot (the clock reads this at boot).
    boot_ms: u64,
    /// The clock's rate, per mille of simulated time's.
    rate_permille: u64,
    /// Leaps forward so far, in ms.
    leap_ms: u64,
}

impl NodeClock {
    fn boot(node: sim::NodeId) -> NodeClock {
        let rate_permille = sim::fault_point(sim::FaultPoint::SkewTimer, Some(node)).unwrap_or(1000);
        NodeClock { boot_ms: sim_ms(), rate_permille, leap_ms: 0 }
    }

    /// The clock's reading now, in ms.
    fn now_ms(&self) -> u64 {
        let sim = sim_ms();
        if self.rate_permille == 1000 {
            // Unskewed (every course run): the same reading without the scaling.
            return sim + self.leap_ms;
        }
        let elapsed = sim.saturating_sub(self.boot_ms);
        self.boot_ms + elapsed * self.rate_permille / 1000 + self.leap_ms
    }

    /// The simulated ms at which the clock reads `at_ms` (`u64::MAX` stays so).
    fn sim_ms_at(&self, at_ms: u64) -> u64 {
        if at_ms == u64::MAX {
            return u64::MAX;
        }
        if self.rate_permille == 1000 {
            // `boot + (at − boot − leap)`, never before boot, without the scaling.
            return at_ms.saturating_sub(self.leap_ms).max(self.boot_ms);
        }
        let ahead = at_ms.saturating_sub(self.boot_ms + self.leap_ms);
        self.boot_ms + (ahead * 1000).div_ceil(self.rate_permille)
    }
}

/// Builds the service's API over the shell's parts (a macro, so the borrows stay disjoint
/// from `self.service`).
macro_rules! api {
    ($sh:expr, $proposer:ident) => {
        ServiceApi {
            ctx: $sh.ctx,
            now_ms: $proposer.now_ms,
            engine: &mut $proposer,
            timer_ms: &mut $sh.service_timer_ms,
            next_tag: &mut $sh.calls.next_tag,
            service_calls: &mut $sh.calls.service,
        }
    };
}

impl<C: ReplicaCore, S: Service> Shell<C, S> {
    /// Carries out everything the core produced, in order: persist, then the reply to the
    /// request being handled (if any) and the requests to peers, then apply; repeats while
    /// applying produced more (a service snapshot).
    fn drain(&mut self) {
        self.drain_with_reply(None);
    }

    fn drain_with_reply(&mut self, mut reply: Option<(ReplyTo, C::Reply)>) {
        loop {
            // A crashed instance stops dead, even mid-step (a crash point right after a
            // save): nothing after it may run, be observed, or be applied.
            if !self.ctx.is_current() {
                return;
            }
            if !self.core.has_ready() && reply.is_none() {
                break;
            }
            let ready = self.core.take_ready();
            self.carry_out(ready, reply.take());
        }
        let mut engine = AtTime { core: &mut self.core, now_ms: self.clock.now_ms() };
        self.service.after_step(&mut api!(self, engine));
        if self.core.has_ready() {
            self.drain();
        }
    }

    fn carry_out(&mut self, ready: cores::replica::Ready<C::Request, C::Image>, reply: Option<(ReplyTo, C::Reply)>) {
        if let Some(p) = ready.persist {
            self.ctx.save_rope(sim::Rope::from_parts(p.state.parts()), p.snapshot);
            if !self.ctx.is_current() {
                return;
            }
        }
        if let Some((to, r)) = reply {
            let (vote, ack) = (C::grants_vote(&r), C::acknowledges_entries(&r));
            let wire = WireReply::<C::Reply, S::Reply>::Peer(r);
            if ack {
                // Fault point `replica.hold_append_reply`: the acknowledgement may reach the
                // leader only after it has led again, in a later term.
                let (me, caller) = (self.ctx.id(), to.caller());
                sim::fault_point_hold(sim::FaultPoint::HoldAppendReply, me, caller, || self.ctx.reply(to, &wire));
            } else {
                self.ctx.reply(to, &wire);
            }
            // Whatever the reply promised was saved above, or never will be: a crash now
            // shows which (fault points `replica.crash_after_vote`, for a granted vote only,
            // and `replica.crash_after_reply`, for any reply). The observer still sees the log
            // this step wrote — the reply told the caller about it — so a check compares the
            // caller's view with what the instance held, and its restart shows what of it was
            // durable.
            let crashed = (vote && sim::fault_point_crash(sim::FaultPoint::CrashAfterVote, self.ctx))
                || sim::fault_point_crash(sim::FaultPoint::CrashAfterReply, self.ctx);
            if crashed {
                self.observe(ready.log_written_from);
                return;
            }
        }
        for out in ready.messages {
            let tag = self.calls.tag();
            self.calls.engine.insert(tag, (out.to, C::call_context(&out.request)));
            let snapshot = C::carries_snapshot(&out.request);
            let dropped =
                if snapshot { sim::fault_point(sim::FaultPoint::DropSnapshot, Some(self.ctx.id())) } else { None };
            let wire = Wire::<C::Request, S::Request>::Peer(out.request);
            let to = self.peers[out.to];
            match dropped {
                Some(ms) => self.ctx.start_lost_call(to, &wire, tag, Duration::from_millis(ms)),
                None if snapshot => sim::fault_point_hold(sim::FaultPoint::HoldSnapshot, self.ctx.id(), to, || {
                    self.ctx.start_call(to, &wire, tag)
                }),
                None => self.ctx.start_call(to, &wire, tag),
            }
        }
        self.observe(ready.log_written_from);
        for msg in &ready.applies {
            if !self.ctx.is_current() {
                return;
            }
            self.report(&[Observation::of_apply(msg)]);
            if let ApplyMsg::Snapshot { .. } = msg {
                sim::mark(SNAPSHOT_INSTALLED);
                let me = self.ctx.id();
                let cut_off =
                    self.peers.iter().any(|&p| p != me && !(sim::net::link_up(p, me) && sim::net::link_up(me, p)));
                if cut_off {
                    sim::mark(SNAPSHOT_DURING_PARTITION);
                }
            }
            let mut engine = AtTime { core: &mut self.core, now_ms: self.clock.now_ms() };
            if let Some(data) = self.service.apply(&mut api!(self, engine), msg) {
                self.core.snapshot(self.clock.now_ms(), msg.index(), data);
            }
        }
    }

    /// Reports what changed to the observer, and role changes to the trace.
    fn observe(&mut self, written_from: Option<u64>) {
        let before = self.seen;
        // An empty `Vec<Observation<'static>>` is one of any shorter lifetime.
        let mut observations: Vec<Observation<'_>> = std::mem::take(&mut self.observations);
        // Without an observer only role changes matter (for the trace): skip the log.
        let written_from = if self.observer.is_some() { written_from } else { None };
        self.core.observe(&mut self.seen, written_from, &mut observations);
        for o in &observations {
            if let Observation::Commit { index } = *o {
                // A fact for pictures (the timeline's commit index), outside the trace and
                // its hash: only a subscriber that asks for `sim::detail` sees it, and without
                // one the macro costs a cached check.
                tracing::debug!(
                    target: "sim::detail",
                    node = %self.ctx.name(),
                    at_ns = sim::now().as_nanos() as u64,
                    commit_index = index
                );
            }
            if let Observation::Restart { snapshot_index: Some(i) } = *o {
                if i > 0 {
                    sim::mark(RESTART_FROM_SNAPSHOT);
                }
            }
            if let Observation::Entries { first, .. } = *o {
                if !before.fresh && first <= before.last_log_index {
                    sim::mark(SUFFIX_REWRITTEN);
                }
            }
            if let Observation::Role { term, role_code, role, leader } = *o {
                if before.leader && !leader {
                    sim::mark(LEADER_STEPPED_DOWN);
                }
                self.ctx.note(sim::NoteCode::Role, term, role_code, || format!("{role} in term {term}"));
                // A band on the node's row for as long as it leads (for history pictures).
                if before.leader {
                    sim::end_annotations(self.ctx.id(), "leader");
                }
                if leader {
                    sim::annotate(sim::now(), None, format!("leader, term {term}"), Some(self.ctx.id()));
                }
            }
        }
        self.report(&observations);
        observations.clear();
        // Back to the buffer: an in-place collect of an empty vector keeps its allocation and
        // ends the borrow of the core.
        self.observations = observations.into_iter().map(|_| unreachable!("cleared")).collect();
    }

    fn report(&self, observations: &[Observation<'_>]) {
        let Some(observer) = &self.observer else { return };
        let mut o = observer.borrow_mut();
        for obs in observations {
            if let Err(f) = o.observe(self.me, obs) {
                drop(o);
                sim::fail(f);
                return;
            }
        }
    }

    fn kick(&mut self) {
        self.kicked = true;
        self.ctx.wake();
    }

    fn on_incoming(&mut self, msg: Incoming) {
        let now = self.clock.now_ms();
        match msg {
            Incoming::Request { from, payload, reply_to } => {
                match sim::decode::<Wire<C::Request, S::Request>>(&payload) {
                    Wire::Peer(req) => {
                        let peer = self.peers.iter().position(|p| *p == from).expect("a peer request from a non-peer");
                        let reply = self.core.handle_request(now, peer, req);
                        if let Some(event) = self.core.take_coverage_event() {
                            sim::mark(event);
                        }
                        // The reply may acknowledge a vote or entries: it leaves after the save.
                        self.drain_with_reply(Some((reply_to, reply)));
                    }
                    Wire::Service(req) => {
                        let mut engine = AtTime { core: &mut self.core, now_ms: now };
                        self.service.on_request(&mut api!(self, engine), from, req, reply_to);
                        self.drain();
                    }
                }
            }
            Incoming::Response { tag, result, .. } => {
                if let Some((peer, context)) = self.calls.engine.remove(&tag) {
                    match result {
                        Ok(bytes) => match sim::decode::<WireReply<C::Reply, S::Reply>>(&bytes) {
                            WireReply::Peer(reply) => self.core.handle_reply(now, peer, reply),
                            WireReply::Service(_) => panic!("a peer answered an engine call with a service reply"),
                        },
                        Err(_) => self.core.handle_call_failed(now, peer, context),
                    }
                } else {
                    assert!(self.calls.service.remove(&tag), "a response to call {tag}, which this node never made");
                    let mut engine = AtTime { core: &mut self.core, now_ms: now };
                    self.service.on_reply(&mut api!(self, engine), CallTag(tag), result);
                }
                self.drain();
            }
        }
    }

    /// The time of the next wake-up: the core's deadline or the service's timer.
    fn next_deadline_ms(&self) -> u64 {
        self.core.next_deadline_ms().min(self.service_timer_ms.unwrap_or(u64::MAX))
    }

    /// The simulated time of the next wake-up. Reaches fault point `replica.shorten_timeout`
    /// when the engine has set a new deadline: if it fires, the node's clock leaps forward by
    /// part of the wait, so every pending timeout of the engine ends that much sooner.
    fn next_wakeup_sim_ms(&mut self) -> u64 {
        let core_deadline = self.core.next_deadline_ms();
        if core_deadline != self.last_deadline_ms {
            self.last_deadline_ms = core_deadline;
            // Disabled (every course run), the point is not reached and the clock not read.
            if core_deadline != u64::MAX && sim::fault_point_enabled(sim::FaultPoint::ShortenTimeout) {
                let now = self.clock.now_ms();
                if core_deadline > now {
                    if let Some(percent) = sim::fault_point(sim::FaultPoint::ShortenTimeout, Some(self.ctx.id())) {
                        self.clock.leap_ms += (core_deadline - now) * percent / 100;
                    }
                }
            }
        }
        self.clock.sim_ms_at(self.next_deadline_ms())
    }

    /// A deadline passed: tick the core if its deadline did, then the service's timer.
    fn on_deadline(&mut self) {
        let now = self.clock.now_ms();
        if now >= self.core.next_deadline_ms() {
            self.core.tick(now);
        }
        if self.service_timer_ms.is_some_and(|t| now >= t) {
            self.service_timer_ms = None;
            let mut engine = AtTime { core: &mut self.core, now_ms: now };
            self.service.on_timer(&mut api!(self, engine));
        }
        self.drain();
    }
}

/// What a tester holds of one running replica: the course's `Start` and `GetState`.
pub trait ReplicaHandle: Clone + 'static {
    /// The course's `Start(command)`: (index, term, is_leader).
    fn start(&self, command: Vec<u8>) -> (u64, u64, bool);
    /// The course's `GetState()`: (current term, is leader).
    fn get_state(&self) -> (u64, bool);
}

/// Handle to one running node of the shell: the course's `Start` and `GetState`, and the core
/// and service for inspection.
pub struct NodeHandle<C: ReplicaCore, S: Service> {
    shell: Rc<RefCell<Shell<C, S>>>,
}

impl<C: ReplicaCore, S: Service> Clone for NodeHandle<C, S> {
    fn clone(&self) -> Self {
        NodeHandle { shell: self.shell.clone() }
    }
}

impl<C: ReplicaCore, S: Service> ReplicaHandle for NodeHandle<C, S> {
    fn start(&self, command: Vec<u8>) -> (u64, u64, bool) {
        let mut sh = self.shell.borrow_mut();
        if !sh.ctx.is_current() {
            return (0, 0, false);
        }
        let now = sh.clock.now_ms();
        let r = match sh.core.propose(now, command) {
            Some(Proposal { index, term }) => (index, term, true),
            None => (0, sh.core.get_state().0, false),
        };
        sh.drain();
        sh.kick();
        r
    }

    fn get_state(&self) -> (u64, bool) {
        self.shell.borrow().core.get_state()
    }
}

impl<C: ReplicaCore, S: Service> NodeHandle<C, S> {
    /// Runs `f` on the core (inspection in tests and traces).
    pub fn with_core<R>(&self, f: impl FnOnce(&C) -> R) -> R {
        f(&self.shell.borrow().core)
    }

    /// Runs `f` on the service (tester inspection).
    pub fn with_service<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shell.borrow_mut().service)
    }

    /// The node this instance runs on.
    pub fn node(&self) -> NodeId {
        self.shell.borrow().ctx.id()
    }
}

/// How to build each instance of a replica node hosting service `S`; `H` is the handle the
/// tester is given for each new instance.
pub struct NodeSpec<Cfg, S: Service, H> {
    /// This node's position among `peers`.
    pub me: usize,
    pub peers: Vec<NodeId>,
    /// The engine's configuration (timeouts, planted bugs); identity and seed come per instance.
    pub config: Cfg,
    pub observer: Option<Rc<RefCell<dyn Observer>>>,
    /// Builds the service of a new instance.
    pub make_service: Rc<dyn Fn(NodeCtx) -> S>,
    /// Told about each new instance's handle (the tester keeps the latest).
    pub on_start: Rc<dyn Fn(H)>,
}

impl<Cfg: Clone, S: Service, H> Clone for NodeSpec<Cfg, S, H> {
    fn clone(&self) -> Self {
        NodeSpec {
            me: self.me,
            peers: self.peers.clone(),
            config: self.config.clone(),
            observer: self.observer.clone(),
            make_service: self.make_service.clone(),
            on_start: self.on_start.clone(),
        }
    }
}

/// A replication engine as testers see it: how to start a node hosting a service, and the
/// handle each instance offers. Testers are generic over this, not over a core, so engines
/// that are not pure cores can stand behind them too.
pub trait Engine: 'static {
    /// The engine's configuration (timeouts, planted bugs).
    type Config: Clone + 'static;
    /// The handle of a running instance hosting `S`.
    type Handle<S: Service>: ReplicaHandle;
    /// Whether its nodes' observations include their logs and commit indexes (a core's do); if
    /// not, only roles and applies are reported and only what they show can be checked.
    const EXPOSES_LOG: bool = true;
    /// Without the log ([`Engine::EXPOSES_LOG`] false): the safety checks its observations
    /// feed, and those they cannot, as the run's description names them. The course adapter's
    /// by default ([`crate::course::COURSE_CHECKS`]).
    const CHECKS_WITHOUT_LOG: (&'static [&'static str], &'static [&'static str]) = crate::course::COURSE_CHECKS;

    /// Spawns the process `name` whose every instance runs `spec`; returns its node.
    fn spawn<S: Service>(name: &str, spec: NodeSpec<Self::Config, S, Self::Handle<S>>) -> NodeId;
}

/// Any [`ReplicaCore`], run by this module's shell.
pub struct CoreEngine<C>(PhantomData<C>);

impl<C: ReplicaCore> Engine for CoreEngine<C> {
    type Config = C::Config;
    type Handle<S: Service> = NodeHandle<C, S>;

    fn spawn<S: Service>(name: &str, spec: NodeSpec<C::Config, S, NodeHandle<C, S>>) -> NodeId {
        sim::spawn_process(name, move |ctx| run_node::<C, S>(ctx, spec.clone()))
    }
}

/// The process body of a replica node: restore, then serve until the process dies.
pub async fn run_node<C: ReplicaCore, S: Service>(ctx: NodeCtx, spec: NodeSpec<C::Config, S, NodeHandle<C, S>>) {
    let seed = ctx.rng("raft-core").gen();
    let state = ctx.read_state();
    let snapshot = ctx.read_snapshot();
    let clock = NodeClock::boot(ctx.id());
    let core = match C::boot(&spec.config, spec.me, spec.peers.len(), seed, &state, &snapshot, clock.now_ms()) {
        Ok(c) => c,
        Err(e) => {
            sim::fail(Failure::safety(
                "raft::restore",
                format!("node {} cannot restore its persisted state: {}", spec.me, e.0),
            ));
            return;
        }
    };
    let mut service = (spec.make_service)(ctx);
    service.restore(&snapshot);
    let shell = Rc::new(RefCell::new(Shell {
        ctx,
        me: spec.me,
        peers: spec.peers.clone(),
        core,
        service,
        calls: Calls { next_tag: 1, engine: BTreeMap::new(), service: BTreeSet::new() },
        service_timer_ms: None,
        observer: spec.observer.clone(),
        seen: Observed::restarted(),
        kicked: false,
        observations: Vec::new(),
        clock,
        last_deadline_ms: u64::MAX,
    }));
    {
        let mut sh = shell.borrow_mut();
        sh.observe(Some(1));
        let sh = &mut *sh;
        let mut engine = AtTime { core: &mut sh.core, now_ms: sh.clock.now_ms() };
        sh.service.on_boot(&mut api!(sh, engine));
        sh.drain();
    }
    (spec.on_start)(NodeHandle { shell: shell.clone() });
    loop {
        let deadline = Duration::from_millis(shell.borrow_mut().next_wakeup_sim_ms());
        match (Next { shell: &shell, recv: ctx.recv_until(deadline) }).await {
            Event::Message(m) => shell.borrow_mut().on_incoming(m),
            Event::Deadline => shell.borrow_mut().on_deadline(),
            Event::Kicked => {}
        }
    }
}

enum Event {
    Message(Incoming),
    Deadline,
    Kicked,
}

/// Waits for a message, the next deadline, or a kick from an outside call.
struct Next<'a, C: ReplicaCore, S: Service> {
    shell: &'a Rc<RefCell<Shell<C, S>>>,
    recv: sim::Recv,
}

impl<C: ReplicaCore, S: Service> Future for Next<'_, C, S> {
    type Output = Event;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Event> {
        {
            let mut sh = self.shell.borrow_mut();
            if sh.kicked {
                sh.kicked = false;
                return Poll::Ready(Event::Kicked);
            }
        }
        match Pin::new(&mut self.recv).poll(cx) {
            Poll::Ready(Some(m)) => Poll::Ready(Event::Message(m)),
            Poll::Ready(None) => Poll::Ready(Event::Deadline),
            Poll::Pending => Poll::Pending,
        }
    }
}
