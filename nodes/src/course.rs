//! The course's shape for an implementation under test: an async node made with its peers, its
//! index, a persister and an apply channel (the course's `Make(peers, me, persister, applyCh)`),
//! offering `start`, `get_state` and `snapshot`, and making its RPCs through the simulated
//! network — the way the course and MadRaft ask students to write Raft. [`CourseEngine`] runs
//! any such [`CourseRaft`] behind the same testers as this project's own cores.
//!
//! What the adapter sees of the node is what the course's tester sees: the apply stream and
//! `get_state()`. So the safety checkers it can feed are those that need nothing more: one
//! leader per term (from `get_state` sampled after every step of the node: each request it
//! handles, each `Start`, each poll of a task it spawned with [`CourseEnv::spawn`]), apply
//! order and state-machine safety (from applies). Log matching and leader completeness need
//! the log, which such a node does not expose; [`COURSE_CHECKS`] says which checks run.
//!
//! The shape of a node (a real one is `examples/student-raft`):
//!
//! ```no_run
//! use nodes::course::{ApplySender, CourseEnv, CourseRaft, Persister};
//! use serde::{Deserialize, Serialize};
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! /// Every RPC between peers, and every reply (serialized on every hop).
//! #[derive(Serialize, Deserialize)]
//! pub enum Rpc {
//!     RequestVote { term: u64, candidate: usize },
//! }
//! #[derive(Serialize, Deserialize)]
//! pub enum Reply {
//!     Vote { term: u64, granted: bool },
//! }
//!
//! pub struct MyRaft {
//!     env: CourseEnv,
//!     persister: Persister,
//!     apply: ApplySender,
//!     /// Everything behind one "lock"; never hold a borrow across an `.await`.
//!     state: RefCell<State>,
//! }
//!
//! #[derive(Default)]
//! struct State {
//!     current_term: u64,
//!     voted_for: Option<usize>,
//!     // log, commit_index, last_applied, role, next_index, match_index, ...
//! }
//!
//! impl CourseRaft for MyRaft {
//!     type Config = (); // what `config` builds: e.g. which planted mistake is on
//!     type Rpc = Rpc;
//!     type RpcReply = Reply;
//!
//!     fn config(_peers: usize, _bug: Option<&str>) {}
//!
//!     fn make(_: &(), env: CourseEnv, persister: Persister, apply: ApplySender) -> Rc<Self> {
//!         let state = State::default(); // restore from persister.read_raft_state() here
//!         let rf = Rc::new(MyRaft { env, persister, apply, state: RefCell::new(state) });
//!         let me = rf.clone();
//!         // A background task (the course's `go rf.ticker()`): it dies with this instance.
//!         rf.env.spawn(async move {
//!             loop {
//!                 sim::sleep(Duration::from_millis(300)).await;
//!                 let term = me.state.borrow().current_term;
//!                 for peer in (0..me.env.peers()).filter(|&p| p != me.env.me()) {
//!                     let args = Rpc::RequestVote { term, candidate: me.env.me() };
//!                     if let Ok(Reply::Vote { .. }) = me.env.call::<Rpc, Reply>(peer, &args).await {
//!                         // count the vote, become leader, ...
//!                     }
//!                 }
//!             }
//!         });
//!         rf
//!     }
//!
//!     fn start(&self, command: Vec<u8>) -> (u64, u64, bool) {
//!         // A leader appends `command`, persists, and returns (its index, the term, true).
//!         // Once an entry commits, it goes to the service, in order:
//!         // self.apply.send(nodes::course::ApplyMsg::Command { index, term, command });
//!         let _ = (command, &self.apply);
//!         (0, self.state.borrow().current_term, false)
//!     }
//!
//!     fn get_state(&self) -> (u64, bool) {
//!         (self.state.borrow().current_term, false)
//!     }
//!
//!     fn snapshot(&self, _index: u64, _snapshot: Vec<u8>) {
//!         // Trim the log through `index`; persister.save(state, Some(snapshot)).
//!     }
//!
//!     fn handle(&self, _from: usize, rpc: Rpc) -> Reply {
//!         let mut s = self.state.borrow_mut();
//!         match rpc {
//!             Rpc::RequestVote { term, candidate } => {
//!                 let granted = term >= s.current_term && s.voted_for.is_none();
//!                 if granted {
//!                     s.voted_for = Some(candidate);
//!                 }
//!                 // Persist before returning: the reply leaves when `handle` returns.
//!                 self.persister.save(vec![/* your encoding of s */], None);
//!                 Reply::Vote { term: s.current_term, granted }
//!             }
//!         }
//!     }
//! }
//! ```

use crate::replica::{Engine, NodeSpec, Observer, ReplicaHandle, Service, ServiceApi, Wire, WireReply};
use cores::replica::{Observation, Proposal, Proposer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sim::{Incoming, NodeCtx, NodeId};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

/// What the node sends its service: a committed command, or a snapshot to install (the
/// course's `ApplyMsg` with `CommandValid` / `SnapshotValid`).
pub use cores::replica::ApplyMsg;
/// Why a call failed (labrpc's `false`): the request or reply was lost, or the peer is
/// unreachable or down.
pub use sim::RpcError;

/// Which safety checks run on a [`CourseRaft`], and which cannot (it exposes no log).
pub const COURSE_CHECKS: (&[&str], &[&str]) = (
    &["election-safety (sampled from get_state)", "state-machine-safety (from applies)", "apply-order"],
    &["log-matching", "leader-completeness", "commit-majority", "match-index", "commit before apply"],
);

/// The course's persister: the node's replicated state and snapshot, saved together
/// atomically, surviving crashes exactly as saved.
#[derive(Clone, Copy)]
pub struct Persister {
    ctx: NodeCtx,
}

impl Persister {
    /// `Persister.Save(raftstate, snapshot)`: replaces both atomically; `None` keeps the stored
    /// snapshot.
    pub fn save(&self, raft_state: Vec<u8>, snapshot: Option<Vec<u8>>) {
        self.ctx.save(raft_state, snapshot);
    }

    /// `Persister.ReadRaftState()` (empty at first boot).
    pub fn read_raft_state(&self) -> Vec<u8> {
        self.ctx.read_state()
    }

    /// `Persister.ReadSnapshot()` (empty if none).
    pub fn read_snapshot(&self) -> Vec<u8> {
        self.ctx.read_snapshot().to_vec()
    }

    /// `Persister.RaftStateSize()`, in bytes.
    pub fn raft_state_size(&self) -> usize {
        self.ctx.state_size()
    }
}

/// The apply channel: what the node sends its service, in order.
pub struct ApplySender {
    queue: Rc<RefCell<VecDeque<ApplyMsg>>>,
    ctx: NodeCtx,
}

impl ApplySender {
    /// Sends one message to the service (the course's `applyCh <- msg`).
    pub fn send(&self, msg: ApplyMsg) {
        self.queue.borrow_mut().push_back(msg);
        self.ctx.wake();
    }
}

/// A task of the node's, waiting for the node's own event loop to start it.
type PendingTask = Pin<Box<dyn Future<Output = ()>>>;

/// The node's tasks: those asked for and not yet started, and what runs after every poll of
/// one of them (the role sampler).
#[derive(Default)]
struct Tasks {
    pending: RefCell<Vec<PendingTask>>,
    after_poll: RefCell<Option<Rc<dyn Fn()>>>,
}

/// What `Make` hands a node: its identity, its peers, the network, a seeded random stream,
/// and a way to start background tasks ([`CourseEnv::spawn`]) that die with this instance.
/// Time comes from `sim` (`sim::now`, `sim::sleep`, `sim::sleep_until`, `sim::timeout`).
pub struct CourseEnv {
    ctx: NodeCtx,
    me: usize,
    peers: Vec<NodeId>,
    tasks: Rc<Tasks>,
}

impl CourseEnv {
    /// This node's index among its peers (the course's `me`).
    pub fn me(&self) -> usize {
        self.me
    }

    /// How many peers there are, this node included.
    pub fn peers(&self) -> usize {
        self.peers.len()
    }

    /// labrpc's `peers[to].Call(...)`: sends `args` to peer `to` and waits for its reply, or
    /// for the network's verdict that the call failed (lost request or reply, peer down).
    pub async fn call<A: Serialize, R: DeserializeOwned>(&self, to: usize, args: &A) -> Result<R, RpcError> {
        let bytes = sim::encode(args);
        let reply: WireReply<Vec<u8>, ()> = self.ctx.call(self.peers[to], &Wire::<Vec<u8>, ()>::Peer(bytes)).await?;
        match reply {
            WireReply::Peer(bytes) => Ok(sim::decode(&bytes)),
            WireReply::Service(()) => panic!("a peer answered a Raft call with a service reply"),
        }
    }

    /// A random stream of this instance's own, derived from the run's seed.
    pub fn rng(&self, label: &str) -> rand_chacha::ChaCha8Rng {
        self.ctx.rng(label)
    }

    /// The course's `go func() { ... }()`: runs `task` on this instance, which it dies with
    /// when the instance crashes. Use this, not `sim::spawn`, for every background task
    /// (tickers, RPC senders, appliers): `Start` runs on the tester's own task, so a task that
    /// `sim::spawn` starts from there would belong to the tester and outlive a crash; and the
    /// node's role is sampled for the election-safety check after every poll of a task
    /// started here (a leader that wins and loses an election inside one task of its own is
    /// seen). The task starts when the node's event loop next runs, at the same simulated
    /// instant.
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.tasks.pending.borrow_mut().push(Box::pin(task));
        self.ctx.wake();
    }

    /// The node's context in the simulated world (for notes in the trace).
    pub fn ctx(&self) -> NodeCtx {
        self.ctx
    }
}

/// An implementation written the course's way. The adapter calls `make` once per instance,
/// `handle` for each request from a peer (the reply leaves when it returns, so persist before
/// returning), and the course's `Start`, `GetState` and `Snapshot` for the tester and service.
///
/// Everything runs on one thread: keep the node's state in a `RefCell` and never hold a
/// borrow across an `.await`. `start`, `get_state`, `snapshot` and `handle` must not block;
/// anything that waits (an RPC, a timer) belongs in a task started with [`CourseEnv::spawn`].
pub trait CourseRaft: Sized + 'static {
    /// Engine-wide settings, e.g. which planted mistake is switched on.
    type Config: Clone + 'static;
    /// Every RPC request between peers.
    type Rpc: Serialize + DeserializeOwned;
    /// Every RPC reply.
    type RpcReply: Serialize + DeserializeOwned;

    /// A short name for reports.
    const NAME: &'static str = "course";

    /// (name, one-line description) of each planted mistake the implementation can switch on
    /// (`--bug NAME`); none by default.
    fn bugs() -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// The configuration for a cluster of `peers` servers with planted mistake `bug` (one of
    /// [`CourseRaft::bugs`], already checked by the command line) switched on.
    fn config(peers: usize, bug: Option<&str>) -> Self::Config;

    /// The course's `Make(peers, me, persister, applyCh)`: restore from `persister`, start the
    /// node's background tasks, and return it.
    fn make(config: &Self::Config, env: CourseEnv, persister: Persister, apply: ApplySender) -> Rc<Self>;
    /// The course's `Start(command)`: (index, term, is_leader).
    fn start(&self, command: Vec<u8>) -> (u64, u64, bool);
    /// The course's `GetState()`: (term, is_leader).
    fn get_state(&self) -> (u64, bool);
    /// The course's `Snapshot(index, snapshot)`: the service's state through `index`.
    fn snapshot(&self, index: u64, snapshot: Vec<u8>);
    /// An RPC from peer `from`.
    fn handle(&self, from: usize, request: Self::Rpc) -> Self::RpcReply;
}

/// A [`CourseRaft`] as the testers' [`Engine`].
pub struct CourseEngine<R>(PhantomData<R>);

/// A running course node, as the tester holds it.
pub struct CourseHandle<R: CourseRaft> {
    node: Rc<R>,
    ctx: NodeCtx,
}

impl<R: CourseRaft> Clone for CourseHandle<R> {
    fn clone(&self) -> Self {
        CourseHandle { node: self.node.clone(), ctx: self.ctx }
    }
}

impl<R: CourseRaft> ReplicaHandle for CourseHandle<R> {
    fn start(&self, command: Vec<u8>) -> (u64, u64, bool) {
        if !self.ctx.is_current() {
            return (0, 0, false);
        }
        let r = self.node.start(command);
        self.ctx.wake();
        r
    }

    fn get_state(&self) -> (u64, bool) {
        self.node.get_state()
    }
}

impl<R: CourseRaft> CourseHandle<R> {
    /// The node itself (inspection in tests).
    pub fn node(&self) -> &R {
        &self.node
    }
}

/// The engine side of the service API for a course node: `Start` and `GetState`; a proposal
/// can still land while the node leads the proposal's term.
struct CourseProposer<'a, R>(&'a R);

impl<R: CourseRaft> Proposer for CourseProposer<'_, R> {
    fn start(&mut self, command: Vec<u8>) -> Option<Proposal> {
        let (index, term, leader) = self.0.start(command);
        leader.then_some(Proposal { index, term })
    }
    fn get_state(&self) -> (u64, bool) {
        self.0.get_state()
    }
    fn may_still_land(&self, proposal: &Proposal) -> bool {
        self.0.get_state() == (proposal.term, true)
    }
}

impl<R: CourseRaft> Engine for CourseEngine<R> {
    type Config = R::Config;
    type Handle<S: Service> = CourseHandle<R>;
    const EXPOSES_LOG: bool = false;

    fn spawn<S: Service>(name: &str, spec: NodeSpec<R::Config, S, CourseHandle<R>>) -> NodeId {
        sim::spawn_process(name, move |ctx| run_course_node::<R, S>(ctx, spec.clone()))
    }
}

fn now_ms() -> u64 {
    sim::now().as_millis() as u64
}

/// Samples the node's `get_state` and reports each change of (term, leader) to the observer:
/// one leader per term is checked from these samples. It runs after every step of the node
/// (a request handled, applies delivered, a poll of one of its tasks), so a leadership is
/// seen even if it begins and ends inside one task of the node's.
struct RoleSampler<R> {
    ctx: NodeCtx,
    me: usize,
    node: Weak<R>,
    observer: Option<Rc<RefCell<dyn Observer>>>,
    /// The last (term, leader) reported.
    seen: Cell<Option<(u64, bool)>>,
}

impl<R: CourseRaft> RoleSampler<R> {
    fn sample(&self) {
        let Some(node) = self.node.upgrade() else { return };
        if !self.ctx.is_current() {
            return;
        }
        let (term, leader) = node.get_state();
        if self.seen.get() != Some((term, leader)) {
            self.seen.set(Some((term, leader)));
            let (role_code, role) = if leader { (2, "leader") } else { (0, "not leader") };
            self.ctx.note(sim::NoteCode::Role, term, role_code, || format!("{role} in term {term}"));
            report(&self.observer, self.me, &Observation::Role { term, leader, role_code, role });
        }
    }
}

fn report(observer: &Option<Rc<RefCell<dyn Observer>>>, me: usize, observation: &Observation<'_>) {
    let Some(observer) = observer else { return };
    let r = observer.borrow_mut().observe(me, observation);
    if let Err(f) = r {
        sim::fail(f);
    }
}

/// A task of the node's: after every poll, the node's role is sampled.
struct Sampled {
    task: PendingTask,
    after_poll: Option<Rc<dyn Fn()>>,
}

impl Future for Sampled {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let p = self.task.as_mut().poll(cx);
        if let Some(after) = &self.after_poll {
            after();
        }
        p
    }
}

/// Everything the adapter's loop keeps beside the node.
struct Host<R: CourseRaft, S: Service> {
    ctx: NodeCtx,
    me: usize,
    peers: Vec<NodeId>,
    node: Rc<R>,
    service: S,
    applies: Rc<RefCell<VecDeque<ApplyMsg>>>,
    observer: Option<Rc<RefCell<dyn Observer>>>,
    sampler: Rc<RoleSampler<R>>,
    tasks: Rc<Tasks>,
    service_timer_ms: Option<u64>,
    next_tag: u64,
    service_calls: BTreeSet<u64>,
}

macro_rules! course_api {
    ($h:expr, $proposer:ident) => {
        ServiceApi::new(
            $h.ctx,
            &mut $proposer,
            now_ms(),
            &mut $h.service_timer_ms,
            &mut $h.next_tag,
            &mut $h.service_calls,
        )
    };
}

impl<R: CourseRaft, S: Service> Host<R, S> {
    fn report(&self, observation: &Observation<'_>) {
        report(&self.observer, self.me, observation);
    }

    /// Starts the tasks the node asked for since the loop last ran. They run on this node
    /// (the loop's), whoever asked: `Start` runs on the tester's task.
    fn start_tasks(&mut self) {
        loop {
            let pending = std::mem::take(&mut *self.tasks.pending.borrow_mut());
            if pending.is_empty() {
                return;
            }
            for task in pending {
                let after_poll = self.tasks.after_poll.borrow().clone();
                // Detached: the task ends when it returns or when this instance crashes.
                drop(sim::spawn(Sampled { task, after_poll }));
            }
        }
    }

    /// Delivers the node's applies to the service, in order, and hands back its snapshots.
    fn deliver_applies(&mut self) {
        loop {
            if !self.ctx.is_current() {
                return;
            }
            let Some(msg) = self.applies.borrow_mut().pop_front() else { break };
            self.report(&Observation::of_apply(&msg));
            let node = self.node.clone();
            let mut proposer = CourseProposer(&*node);
            if let Some(data) = self.service.apply(&mut course_api!(self, proposer), &msg) {
                node.snapshot(msg.index(), data);
            }
        }
    }

    fn after_event(&mut self) {
        self.deliver_applies();
        if !self.ctx.is_current() {
            return;
        }
        self.start_tasks();
        self.sampler.sample();
        let node = self.node.clone();
        let mut proposer = CourseProposer(&*node);
        self.service.after_step(&mut course_api!(self, proposer));
    }

    fn on_incoming(&mut self, msg: Incoming) {
        match msg {
            Incoming::Request { from, payload, reply_to } => match sim::decode::<Wire<Vec<u8>, S::Request>>(&payload) {
                Wire::Peer(bytes) => {
                    let peer = self.peers.iter().position(|p| *p == from).expect("a peer request from a non-peer");
                    let reply = self.node.handle(peer, sim::decode(&bytes));
                    self.ctx.reply(reply_to, &WireReply::<Vec<u8>, ()>::Peer(sim::encode(&reply)));
                }
                Wire::Service(req) => {
                    let node = self.node.clone();
                    let mut proposer = CourseProposer(&*node);
                    self.service.on_request(&mut course_api!(self, proposer), from, req, reply_to);
                }
            },
            Incoming::Response { tag, result, .. } => {
                assert!(self.service_calls.remove(&tag), "a response to call {tag}, which this node never made");
                let node = self.node.clone();
                let mut proposer = CourseProposer(&*node);
                self.service.on_reply(&mut course_api!(self, proposer), crate::replica::CallTag(tag), result);
            }
        }
    }

    fn on_timer(&mut self) {
        if self.service_timer_ms.is_some_and(|t| now_ms() >= t) {
            self.service_timer_ms = None;
            let node = self.node.clone();
            let mut proposer = CourseProposer(&*node);
            self.service.on_timer(&mut course_api!(self, proposer));
        }
    }
}

/// The process body of a course node: `Make`, then serve peers and the service, start the
/// node's tasks, and carry the apply stream to the service, until the process dies.
async fn run_course_node<R: CourseRaft, S: Service>(ctx: NodeCtx, spec: NodeSpec<R::Config, S, CourseHandle<R>>) {
    let applies = Rc::new(RefCell::new(VecDeque::new()));
    let snapshot = ctx.read_snapshot();
    let mut service = (spec.make_service)(ctx);
    service.restore(&snapshot);
    let tasks = Rc::new(Tasks::default());
    let env = CourseEnv { ctx, me: spec.me, peers: spec.peers.clone(), tasks: tasks.clone() };
    let node = R::make(&spec.config, env, Persister { ctx }, ApplySender { queue: applies.clone(), ctx });
    let sampler = Rc::new(RoleSampler {
        ctx,
        me: spec.me,
        node: Rc::downgrade(&node),
        observer: spec.observer.clone(),
        seen: Cell::new(None),
    });
    {
        let sampler = sampler.clone();
        *tasks.after_poll.borrow_mut() = Some(Rc::new(move || sampler.sample()));
    }
    let mut host = Host {
        ctx,
        me: spec.me,
        peers: spec.peers.clone(),
        node: node.clone(),
        service,
        applies,
        observer: spec.observer.clone(),
        sampler,
        tasks,
        service_timer_ms: None,
        next_tag: 1,
        service_calls: BTreeSet::new(),
    };
    // The node does not say where its snapshot ends: apply order resumes wherever it resumes.
    host.report(&Observation::Restart { snapshot_index: None });
    {
        let node = host.node.clone();
        let mut proposer = CourseProposer(&*node);
        host.service.on_boot(&mut course_api!(host, proposer));
    }
    host.after_event();
    (spec.on_start)(CourseHandle { node, ctx });
    loop {
        let deadline = Duration::from_millis(host.service_timer_ms.unwrap_or(u64::MAX));
        let event = HostEvent { applies: &host.applies, tasks: &host.tasks, recv: ctx.recv_until(deadline) }.await;
        match event {
            Some(Some(m)) => host.on_incoming(m),
            Some(None) => host.on_timer(),
            None => {}
        }
        host.after_event();
        if !ctx.is_current() {
            return;
        }
    }
}

/// Waits for an apply from the node, a task to start, a message, or the service's timer:
/// `None` for applies and tasks, `Some(Some(message))`, `Some(None)` for the deadline.
struct HostEvent<'a> {
    applies: &'a Rc<RefCell<VecDeque<ApplyMsg>>>,
    tasks: &'a Rc<Tasks>,
    recv: sim::Recv,
}

impl Future for HostEvent<'_> {
    type Output = Option<Option<Incoming>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.applies.borrow().is_empty() || !self.tasks.pending.borrow().is_empty() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.recv).poll(cx) {
            Poll::Ready(m) => Poll::Ready(Some(m)),
            Poll::Pending => Poll::Pending,
        }
    }
}
