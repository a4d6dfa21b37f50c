//! The course's shape for an implementation under test: an async node made with its peers, its
//! index, a persister and an apply channel (the course's `Make(peers, me, persister, applyCh)`),
//! offering `start`, `get_state` and `snapshot`, and making its RPCs through the simulated
//! network — the way the course and MadRaft ask students to write Raft. [`CourseEngine`] runs
//! any such [`CourseRaft`] behind the same testers as this project's own cores.
//!
//! What the adapter sees of the node is what the course's tester sees: the apply stream and
//! `get_state()`. So the safety checkers it can feed are those that need nothing more: one
//! leader per term (from `get_state` sampled after every event of the node), apply order and
//! state-machine safety (from applies). Log matching and leader completeness need the log,
//! which such a node does not expose; [`COURSE_CHECKS`] says which checks run.

use crate::replica::{Engine, NodeSpec, Observer, ReplicaHandle, Service, ServiceApi, Wire, WireReply};
use cores::replica::{ApplyMsg, Observation, Proposal, Proposer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sim::{Incoming, NodeCtx, NodeId, RpcError};
use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// What `Make` hands a node: its identity, its peers, the network, a seeded random stream.
/// Time and tasks come from `sim` (`sim::now`, `sim::sleep`, `sim::spawn`); tasks die with the
/// node when it crashes.
pub struct CourseEnv {
    ctx: NodeCtx,
    me: usize,
    peers: Vec<NodeId>,
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

    /// The node's context in the simulated world (for notes in the trace).
    pub fn ctx(&self) -> NodeCtx {
        self.ctx
    }
}

/// An implementation written the course's way. The adapter calls `make` once per instance,
/// `handle` for each request from a peer (the reply leaves when it returns, so persist before
/// returning), and the course's `Start`, `GetState` and `Snapshot` for the tester and service.
pub trait CourseRaft: Sized + 'static {
    /// Engine-wide settings, e.g. which planted mistake is switched on.
    type Config: Clone + 'static;
    /// Every RPC request between peers.
    type Rpc: Serialize + DeserializeOwned;
    /// Every RPC reply.
    type RpcReply: Serialize + DeserializeOwned;

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

/// Everything the adapter's loop keeps beside the node.
struct Host<R: CourseRaft, S: Service> {
    ctx: NodeCtx,
    me: usize,
    peers: Vec<NodeId>,
    node: Rc<R>,
    service: S,
    applies: Rc<RefCell<VecDeque<ApplyMsg>>>,
    observer: Option<Rc<RefCell<dyn Observer>>>,
    /// The last (term, leader) reported, sampled from `get_state`.
    seen_state: Option<(u64, bool)>,
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
        let Some(observer) = &self.observer else { return };
        let r = observer.borrow_mut().observe(self.me, observation);
        if let Err(f) = r {
            sim::fail(f);
        }
    }

    /// Samples `get_state` and reports a change (one leader per term is checked from these).
    fn sample_role(&mut self) {
        let (term, leader) = self.node.get_state();
        if self.seen_state != Some((term, leader)) {
            self.seen_state = Some((term, leader));
            let (role_code, role) = if leader { (2, "leader") } else { (0, "not leader") };
            self.ctx.note(sim::NoteCode::Role, term, role_code, || format!("{role} in term {term}"));
            self.report(&Observation::Role { term, leader, role_code, role });
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
        self.sample_role();
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

/// The process body of a course node: `Make`, then serve peers and the service, and carry the
/// apply stream to the service, until the process dies.
async fn run_course_node<R: CourseRaft, S: Service>(ctx: NodeCtx, spec: NodeSpec<R::Config, S, CourseHandle<R>>) {
    let applies = Rc::new(RefCell::new(VecDeque::new()));
    let snapshot = ctx.read_snapshot();
    let mut service = (spec.make_service)(ctx);
    service.restore(&snapshot);
    let env = CourseEnv { ctx, me: spec.me, peers: spec.peers.clone() };
    let node = R::make(&spec.config, env, Persister { ctx }, ApplySender { queue: applies.clone(), ctx });
    let mut host = Host {
        ctx,
        me: spec.me,
        peers: spec.peers.clone(),
        node: node.clone(),
        service,
        applies,
        observer: spec.observer.clone(),
        seen_state: None,
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
        let event = HostEvent { applies: &host.applies, recv: ctx.recv_until(deadline) }.await;
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

/// Waits for an apply from the node, a message, or the service's timer: `None` for applies,
/// `Some(Some(message))`, `Some(None)` for the deadline.
struct HostEvent<'a> {
    applies: &'a Rc<RefCell<VecDeque<ApplyMsg>>>,
    recv: sim::Recv,
}

impl Future for HostEvent<'_> {
    type Output = Option<Option<Incoming>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.applies.borrow().is_empty() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.recv).poll(cx) {
            Poll::Ready(m) => Poll::Ready(Some(m)),
            Poll::Pending => Poll::Pending,
        }
    }
}
