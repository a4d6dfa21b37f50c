//! The Raft actor shell: one event loop that feeds `cores::raft::Raft` and carries out its
//! outputs in order — persist, then send, then apply — making no protocol decisions.
//!
//! A Raft node is a process that hosts the core and a [`Service`] above it (the course
//! tester's applier, or the key/value server). Requests to the node are either Raft RPCs
//! between peers or the service's own RPCs; both arrive in the node's inbox as a [`Wire`].
//! The course's API is a [`RaftHandle`]: `start`, `get_state`, and the service's `snapshot`
//! happen through the apply stream.
//!
//! After every step the shell reports what changed (role, log writes, snapshot, commit,
//! applies) to an optional [`Observer`] — in practice the scenario's safety checker; a
//! violation fails the run.

use cores::raft::{ApplyMsg, CallContext, Config, Raft, Ready, Reply, Request};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sim::{Failure, Incoming, NodeCtx, NodeId, ReplyTo};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Every request a Raft node receives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Wire<Q> {
    Raft(Request),
    Service(Q),
}

/// Every reply a Raft node sends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WireReply<P> {
    Raft(Reply),
    Service(P),
}

/// The service above Raft: it consumes the apply stream, may ask for snapshots, and may
/// serve its own clients through the node's inbox.
pub trait Service: 'static {
    type Request: Serialize + DeserializeOwned;
    type Reply: Serialize + DeserializeOwned;

    /// Called once per instance before anything is applied, with the persisted snapshot
    /// (empty if there is none).
    fn restore(&mut self, snapshot: &[u8]);

    /// One applied message, in order. Returning `Some(data)` asks Raft to snapshot at this
    /// message's index with `data` (the course's `Snapshot(index, data)`).
    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>>;

    /// A request from a client of the service; answer with `api.reply` now or later.
    fn on_request(&mut self, api: &mut ServiceApi<'_>, from: NodeId, req: Self::Request, reply_to: ReplyTo) {
        let _ = (api, from, req, reply_to);
    }

    /// Called after every step, so the service can notice a lost leadership promptly.
    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        let _ = api;
    }
}

/// What a service may do while it runs inside the shell.
pub struct ServiceApi<'a> {
    pub ctx: NodeCtx,
    pub core: &'a mut Raft,
    pub now_ms: u64,
}

impl ServiceApi<'_> {
    /// The course's `Start(command)`: (index, term, is_leader).
    pub fn start(&mut self, command: Vec<u8>) -> (u64, u64, bool) {
        match self.core.propose(self.now_ms, command) {
            Some((index, term)) => (index, term, true),
            None => (0, self.core.get_state().0, false),
        }
    }

    /// Answers a client request of the service.
    pub fn reply<P: Serialize>(&self, reply_to: ReplyTo, reply: &P) {
        self.ctx.reply(reply_to, &WireReply::<&P>::Service(reply));
    }
}

/// Receives, after every step of every node, what changed — plain data, so a checker can
/// judge the whole run. An `Err` is a violation and fails the run.
pub trait Observer {
    fn role(&mut self, node: usize, term: u64, leader: bool) -> Result<(), Failure>;
    fn snapshot(&mut self, node: usize, index: u64, term: u64) -> Result<(), Failure>;
    /// The log from `first` on is now `entries` (term, command), anything after them gone.
    fn entries(&mut self, node: usize, first: u64, entries: &[(u64, &[u8])]) -> Result<(), Failure>;
    /// The log now ends at `last`.
    fn log_end(&mut self, node: usize, last: u64) -> Result<(), Failure>;
    fn commit(&mut self, node: usize, commit_index: u64) -> Result<(), Failure>;
    fn apply(&mut self, node: usize, index: u64, command: &[u8]) -> Result<(), Failure>;
    fn apply_snapshot(&mut self, node: usize, index: u64) -> Result<(), Failure>;
    /// A new instance of the node starts, its state machine at `snapshot_index`.
    fn restart(&mut self, node: usize, snapshot_index: u64);
}

/// What the shell last told the observer, so it reports only changes.
#[derive(Clone, Copy)]
struct Seen {
    term: u64,
    role: cores::raft::Role,
    leader: bool,
    commit: u64,
    snapshot_index: u64,
    last_log_index: u64,
}

struct Shell<S: Service> {
    ctx: NodeCtx,
    me: usize,
    peers: Vec<NodeId>,
    core: Raft,
    service: S,
    /// Calls in flight: tag -> (peer, context for a failure report).
    pending: BTreeMap<u64, (usize, CallContext)>,
    next_tag: u64,
    observer: Option<Rc<RefCell<dyn Observer>>>,
    seen: Seen,
    /// Set when an outside call changed the core, so the event loop recomputes its deadline.
    kicked: bool,
}

fn now_ms() -> u64 {
    sim::now().as_millis() as u64
}

impl<S: Service> Shell<S> {
    /// Carries out everything the core produced, in order: persist, then the reply to the
    /// request being handled (if any) and the requests to peers, then apply; repeats while
    /// applying produced more (a service snapshot).
    fn drain(&mut self) {
        self.drain_with_reply(None);
    }

    fn drain_with_reply(&mut self, mut reply: Option<(ReplyTo, Reply)>) {
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
        let mut api = ServiceApi { ctx: self.ctx, core: &mut self.core, now_ms: now_ms() };
        self.service.after_step(&mut api);
        if self.core.has_ready() {
            self.drain();
        }
    }

    fn carry_out(&mut self, ready: Ready, reply: Option<(ReplyTo, Reply)>) {
        if let Some(p) = ready.persist {
            let (header, chunks) = p.raft_state.parts();
            let mut parts: Vec<Rc<dyn AsRef<[u8]>>> = Vec::with_capacity(chunks.len() + 1);
            parts.push(Rc::new(header.to_vec()));
            parts.extend(chunks.iter().map(|c| c.clone() as Rc<dyn AsRef<[u8]>>));
            self.ctx.save_rope(sim::Rope::from_parts(parts), p.snapshot);
            if !self.ctx.is_current() {
                return;
            }
        }
        if let Some((to, r)) = reply {
            self.ctx.reply(to, &WireReply::<S::Reply>::Raft(r));
        }
        for out in ready.messages {
            let tag = self.next_tag;
            self.next_tag += 1;
            self.pending.insert(tag, (out.to, out.request.context()));
            self.ctx.start_call(self.peers[out.to], &Wire::<S::Request>::Raft(out.request), tag);
        }
        self.observe(ready.log_written_from);
        for msg in &ready.applies {
            if !self.ctx.is_current() {
                return;
            }
            self.observe_apply(msg);
            let mut api = ServiceApi { ctx: self.ctx, core: &mut self.core, now_ms: now_ms() };
            if let Some(data) = self.service.apply(&mut api, msg) {
                self.core.snapshot(now_ms(), msg.index(), data);
            }
        }
    }

    /// Reports role, snapshot, log writes and commit changes to the observer, and role
    /// changes to the trace.
    fn observe(&mut self, written_from: Option<u64>) {
        let st = self.core.status();
        if st.current_term != self.seen.term || st.role != self.seen.role {
            let (term, role) = (st.current_term, st.role);
            self.ctx.note(1, term, role as u64, || format!("{role:?} in term {term}").to_lowercase());
            // A band on the node's row for as long as it leads (for history pictures).
            if self.seen.role == cores::raft::Role::Leader {
                sim::end_annotations(self.ctx.id(), "leader");
            }
            if role == cores::raft::Role::Leader {
                sim::annotate(sim::now(), None, format!("leader, term {term}"), Some(self.ctx.id()));
            }
        }
        let Some(observer) = self.observer.clone() else {
            self.seen.term = st.current_term;
            self.seen.role = st.role;
            return;
        };
        let mut o = observer.borrow_mut();
        let me = self.me;
        let leader = st.role == cores::raft::Role::Leader;
        let mut result = Ok(());
        if st.current_term != self.seen.term || leader != self.seen.leader {
            result = result.and_then(|_| o.role(me, st.current_term, leader));
        }
        if st.snapshot_index != self.seen.snapshot_index {
            result = result.and_then(|_| o.snapshot(me, st.snapshot_index, st.snapshot_term));
        }
        if let Some(from) = written_from {
            let from = from.max(st.snapshot_index + 1);
            if from <= st.last_log_index {
                let entries: Vec<(u64, &[u8])> = (from..=st.last_log_index)
                    .map(|i| {
                        let e = self.core.entry(i).expect("written entry is in the log");
                        (e.term, e.command.as_slice())
                    })
                    .collect();
                result = result.and_then(|_| o.entries(me, from, &entries));
            } else {
                result = result.and_then(|_| o.log_end(me, st.last_log_index));
            }
        } else if st.last_log_index < self.seen.last_log_index {
            result = result.and_then(|_| o.log_end(me, st.last_log_index));
        }
        if st.commit_index != self.seen.commit {
            result = result.and_then(|_| o.commit(me, st.commit_index));
        }
        self.seen = Seen {
            term: st.current_term,
            role: st.role,
            leader,
            commit: st.commit_index,
            snapshot_index: st.snapshot_index,
            last_log_index: st.last_log_index,
        };
        drop(o);
        if let Err(f) = result {
            sim::fail(f);
        }
    }

    fn observe_apply(&mut self, msg: &ApplyMsg) {
        let Some(observer) = self.observer.clone() else { return };
        let r = match msg {
            ApplyMsg::Command { index, command, .. } => observer.borrow_mut().apply(self.me, *index, command),
            ApplyMsg::Snapshot { index, .. } => observer.borrow_mut().apply_snapshot(self.me, *index),
        };
        if let Err(f) = r {
            sim::fail(f);
        }
    }

    fn kick(&mut self) {
        self.kicked = true;
        self.ctx.wake();
    }

    fn on_incoming(&mut self, msg: Incoming) {
        let now = now_ms();
        match msg {
            Incoming::Request { from, payload, reply_to } => match sim::decode::<Wire<S::Request>>(&payload) {
                Wire::Raft(req) => {
                    let peer = self.peers.iter().position(|p| *p == from).expect("raft request from a non-peer");
                    let reply = self.core.handle_request(now, peer, req);
                    // The reply may acknowledge a vote or entries: it leaves after the save.
                    self.drain_with_reply(Some((reply_to, reply)));
                }
                Wire::Service(req) => {
                    let mut api = ServiceApi { ctx: self.ctx, core: &mut self.core, now_ms: now };
                    self.service.on_request(&mut api, from, req, reply_to);
                    self.drain();
                }
            },
            Incoming::Response { tag, result, .. } => {
                let Some((peer, context)) = self.pending.remove(&tag) else { return };
                match result {
                    Ok(bytes) => match sim::decode::<WireReply<S::Reply>>(&bytes) {
                        WireReply::Raft(reply) => self.core.handle_reply(now, peer, reply),
                        WireReply::Service(_) => panic!("a peer answered a Raft call with a service reply"),
                    },
                    Err(_) => self.core.handle_call_failed(now, peer, context),
                }
                self.drain();
            }
        }
    }
}

/// Handle to one running Raft node, for the tester: the course's `Start` and `GetState`.
pub struct RaftHandle<S: Service> {
    shell: Rc<RefCell<Shell<S>>>,
}

impl<S: Service> Clone for RaftHandle<S> {
    fn clone(&self) -> Self {
        RaftHandle { shell: self.shell.clone() }
    }
}

impl<S: Service> RaftHandle<S> {
    /// The course's `Start(command)`: (index, term, is_leader).
    pub fn start(&self, command: Vec<u8>) -> (u64, u64, bool) {
        let mut sh = self.shell.borrow_mut();
        if !sh.ctx.is_current() {
            return (0, 0, false);
        }
        let r = match sh.core.propose(now_ms(), command) {
            Some((index, term)) => (index, term, true),
            None => (0, sh.core.get_state().0, false),
        };
        sh.drain();
        sh.kick();
        r
    }

    /// The course's `GetState()`: (current term, is leader).
    pub fn get_state(&self) -> (u64, bool) {
        self.shell.borrow().core.get_state()
    }

    /// The core's full status (for traces and tests).
    pub fn status(&self) -> cores::raft::Status {
        self.shell.borrow().core.status()
    }

    /// Runs `f` on the service (tester inspection).
    pub fn with_service<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shell.borrow_mut().service)
    }

    pub fn node(&self) -> NodeId {
        self.shell.borrow().ctx.id()
    }
}

/// How to build each instance of a Raft node.
pub struct RaftNodeSpec<S: Service> {
    pub me: usize,
    pub peers: Vec<NodeId>,
    /// The core's configuration, minus `seed`, which each instance draws from the run.
    pub config: Config,
    pub observer: Option<Rc<RefCell<dyn Observer>>>,
    /// Builds the service of a new instance.
    pub make_service: Rc<dyn Fn(NodeCtx) -> S>,
    /// Told about each new instance's handle (the tester keeps the latest).
    pub on_start: Rc<dyn Fn(RaftHandle<S>)>,
}

impl<S: Service> Clone for RaftNodeSpec<S> {
    fn clone(&self) -> Self {
        RaftNodeSpec {
            me: self.me,
            peers: self.peers.clone(),
            config: self.config.clone(),
            observer: self.observer.clone(),
            make_service: self.make_service.clone(),
            on_start: self.on_start.clone(),
        }
    }
}

/// The process body of a Raft node: restore, then serve until the process dies.
pub async fn run_node<S: Service>(ctx: NodeCtx, spec: RaftNodeSpec<S>) {
    let mut config = spec.config.clone();
    config.me = spec.me;
    config.peers = spec.peers.len();
    config.seed = ctx.rng("raft-core").gen();
    let state = ctx.read_raft_state();
    let snapshot = ctx.read_snapshot();
    let core = match Raft::new(config, &state, &snapshot, now_ms()) {
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
    let st = core.status();
    if let Some(o) = &spec.observer {
        o.borrow_mut().restart(spec.me, st.snapshot_index);
    }
    let shell = Rc::new(RefCell::new(Shell {
        ctx,
        me: spec.me,
        peers: spec.peers.clone(),
        core,
        service,
        pending: BTreeMap::new(),
        next_tag: 1,
        observer: spec.observer.clone(),
        seen: Seen {
            term: 0,
            role: cores::raft::Role::Follower,
            leader: false,
            commit: st.commit_index,
            // Unknown: the first observation reports the restored snapshot, which may be one
            // the previous instance saved but crashed before reporting.
            snapshot_index: u64::MAX,
            last_log_index: 0,
        },
        kicked: false,
    }));
    shell.borrow_mut().observe(Some(1));
    (spec.on_start)(RaftHandle { shell: shell.clone() });
    loop {
        let deadline = Duration::from_millis(shell.borrow().core.next_deadline_ms());
        match (Next { shell: &shell, recv: ctx.recv_until(deadline) }).await {
            Event::Message(m) => shell.borrow_mut().on_incoming(m),
            Event::Deadline => {
                let mut sh = shell.borrow_mut();
                sh.core.tick(now_ms());
                sh.drain();
            }
            Event::Kicked => {}
        }
    }
}

enum Event {
    Message(Incoming),
    Deadline,
    Kicked,
}

/// Waits for a message, the core's deadline, or a kick from an outside call.
struct Next<'a, S: Service> {
    shell: &'a Rc<RefCell<Shell<S>>>,
    recv: sim::Recv,
}

impl<S: Service> Future for Next<'_, S> {
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
