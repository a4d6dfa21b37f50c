//! A Paxos peer process (`cores::paxos::Paxos`) and the handle its application — the course's
//! tester, or a service on the same node — uses to `start`, ask `status`, declare `done`.
//! The loop answers peers' requests with the core's acceptor, feeds it replies and time, and
//! makes the calls it asks for. It keeps no disk state (the course's peers have none).

use cores::paxos::{Envelope, Fate, Paxos, PxBugs, PxReply, PxRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sim::{Incoming, NodeCtx, NodeId};
use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::rc::Rc;
use std::time::Duration;

/// Sees every (peer, instance, value) decision as a peer learns it, for safety checkers.
pub type PxObserver<V> = Rc<dyn Fn(usize, u64, &V)>;

/// The application's handle on one peer: the course's `Start`, `Status`, `Done`, `Max`,
/// `Min`, in-process as in Go.
pub struct PxHandle<V> {
    pub node: NodeId,
    me: usize,
    core: Rc<RefCell<Paxos<V>>>,
    ctx: Rc<Cell<Option<NodeCtx>>>,
    peers: Rc<RefCell<Vec<NodeId>>>,
    observer: PxObserver<V>,
}

impl<V: Clone + PartialEq + Debug + Serialize + DeserializeOwned + 'static> PxHandle<V> {
    /// `Start(seq, v)`: returns at once; the peer's calls go out now.
    pub fn start(&self, seq: u64, v: V) {
        self.core.borrow_mut().start(seq, v, now_ms());
        self.flush();
    }

    /// `Status(seq)`.
    pub fn status(&self, seq: u64) -> Fate<V> {
        self.core.borrow().status(seq)
    }

    /// `Done(seq)`.
    pub fn done(&self, seq: u64) {
        self.core.borrow_mut().done(seq);
    }

    /// `Max()`.
    pub fn max(&self) -> i64 {
        self.core.borrow().max()
    }

    /// `Min()`.
    pub fn min(&self) -> i64 {
        self.core.borrow().min()
    }

    /// Instances the peer holds (the tests' memory accounting).
    pub fn retained_instances(&self) -> usize {
        self.core.borrow().retained_instances()
    }

    /// Makes the calls the core asked for and reports new decisions.
    fn flush(&self) {
        flush(&self.core, self.ctx.get(), &self.peers.borrow(), self.me, &self.observer);
    }
}

fn now_ms() -> u64 {
    sim::now().as_millis() as u64
}

fn flush<V: Clone + PartialEq + Debug + Serialize>(
    core: &RefCell<Paxos<V>>,
    ctx: Option<NodeCtx>,
    peers: &[NodeId],
    me: usize,
    observer: &PxObserver<V>,
) {
    let (calls, decided) = {
        let mut c = core.borrow_mut();
        (c.take_calls(), c.take_decided())
    };
    if let Some(ctx) = ctx {
        for call in calls {
            ctx.start_call(peers[call.to], &call.request, call.tag);
        }
    }
    for (seq, v) in decided {
        observer(me, seq, &v);
    }
}

/// Starts peer `me` as process `name`. `peers` lists every peer's node (filled in by the
/// caller once all are spawned); the handle is the application's.
pub fn spawn_paxos_peer<V>(
    name: &str,
    me: usize,
    peers: Rc<RefCell<Vec<NodeId>>>,
    npeers: usize,
    bugs: PxBugs,
    observer: PxObserver<V>,
) -> PxHandle<V>
where
    V: Clone + PartialEq + Debug + Serialize + DeserializeOwned + 'static,
{
    let cell = Rc::new(Cell::new(None));
    let core: Rc<RefCell<Paxos<V>>> = Rc::new(RefCell::new(Paxos::new(me, npeers, sim::rng(name), bugs)));
    let (c2, k2, p2, o2) = (core.clone(), cell.clone(), peers.clone(), observer.clone());
    let node = sim::spawn_process(name, move |ctx: NodeCtx| {
        k2.set(Some(ctx));
        let (core, peers, observer) = (c2.clone(), p2.clone(), o2.clone());
        async move {
            loop {
                let deadline = core.borrow().next_deadline_ms();
                let msg = match deadline {
                    Some(t) => ctx.recv_until(Duration::from_millis(t)).await,
                    None => ctx.recv().await,
                };
                match msg {
                    None => core.borrow_mut().tick(now_ms()),
                    Some(Incoming::Request { payload, reply_to, .. }) => {
                        let req: Envelope<PxRequest<V>> = sim::decode(&payload);
                        let reply = core.borrow_mut().handle(req);
                        ctx.reply(reply_to, &reply);
                    }
                    Some(Incoming::Response { tag, result, .. }) => {
                        let reply = result.ok().map(|b| sim::decode::<Envelope<PxReply<V>>>(&b));
                        core.borrow_mut().on_reply(tag, reply, now_ms());
                    }
                }
                flush(&core, Some(ctx), &peers.borrow(), me, &observer);
            }
        }
    });
    PxHandle { node, me, core, ctx: cell, peers, observer }
}
