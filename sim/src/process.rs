//! Processes: adding nodes, each process's lifecycle (start, exit, crash, restart from its
//! factory) on its own madsim node, client endpoints, and panics caught as run failures.
//!
//! A crash marks the incarnation dead at once (so nothing it does afterwards takes effect),
//! tells the network, and kills the madsim node once the world borrow has ended.

use crate::failure::Failure;
use crate::trace::Kind;
use crate::world::{peek, try_with, with, Node, NodeId, World, NO_NODE};
use crate::NodeCtx;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub(crate) type Factory = Rc<dyn Fn(NodeCtx) -> Pin<Box<dyn Future<Output = ()>>>>;

pub(crate) enum Host {
    /// A crashable process on its own madsim node; `init` re-runs the factory on restart.
    /// `madsim` is `None` only while the node is being built.
    Process { madsim: Option<madsim::task::NodeId>, factory: Factory },
    /// A client endpoint whose tasks run on the supervisor; never crashes.
    Client,
}

/// The madsim nodes of the run's processes (to free their tasks when it ends).
pub(crate) fn madsim_nodes() -> Vec<madsim::task::NodeId> {
    peek(|w| {
        w.kernel
            .nodes
            .iter()
            .filter_map(|n| if let Host::Process { madsim, .. } = &n.host { *madsim } else { None })
            .collect()
    })
    .unwrap_or_default()
}

fn add_node(name: &str, host: Host) -> NodeId {
    with(|w| {
        let k = &mut w.kernel;
        assert!(k.nodes.len() < NO_NODE as usize, "too many nodes");
        assert!(k.nodes.iter().all(|n| n.name != name), "duplicate node name {name}");
        let id = NodeId(k.nodes.len() as u16);
        k.nodes.push(Node {
            name: name.to_string(),
            host,
            alive: true,
            incarnation: 0,
            inbox: VecDeque::new(),
            waker: None,
        });
        w.net.add_node();
        w.store.add_node();
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
                let n = &w.kernel.nodes[idx];
                let Host::Process { factory, .. } = &n.host else { unreachable!("process node without factory") };
                (factory.clone(), NodeCtx { id: NodeId(idx as u16), incarnation: n.incarnation })
            });
            let fut = factory(ctx);
            ProcessMain { ctx, fut, done: false }
        })
        .build()
        .id();
    with(|w| {
        if let Host::Process { madsim, .. } = &mut w.kernel.nodes[idx].host {
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
        let r = crate::sched::with_step_time(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let p = self.fut.as_mut().poll(cx);
                if p.is_ready() {
                    with(|w| w.exit(ctx));
                }
                p
            }))
        });
        match r {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => {
                self.done = true;
                Poll::Ready(())
            }
            Err(payload) => {
                self.done = true;
                let (msg, at) = crate::run::panic_text(&payload);
                try_with(|w| {
                    let name = w.kernel.nodes[ctx.id.index()].name.clone();
                    w.kernel.set_failure(Failure::panic(format!("node {name}: {msg}")).at(at))
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
                let (msg, at) = crate::run::panic_text(&payload);
                try_with(|w| w.kernel.set_failure(Failure::panic(msg).at(at)));
                Poll::Pending
            }
        }
    }
}

impl World {
    /// The process's main future returned: the incarnation ends as if it had crashed, and
    /// the exit watchers see it.
    fn exit(&mut self, ctx: NodeCtx) {
        if !self.kernel.is_current(ctx) {
            return;
        }
        let n = &mut self.kernel.nodes[ctx.id.index()];
        n.alive = false;
        n.incarnation += 1;
        n.inbox.clear();
        self.kernel.record(Kind::Exit, ctx.id.0 as u64, [0; 3], |_| "process exited".into());
        self.net.on_crash(&mut self.kernel, ctx.id.0);
        self.fs.notify_exit(&self.kernel, ctx.id);
    }

    /// Marks a node dead and discards everything in flight for it; returns the madsim node to
    /// kill once the world borrow has ended.
    pub(crate) fn crash_inner(&mut self, node: NodeId, why: &str) -> Option<madsim::task::NodeId> {
        let k = &mut self.kernel;
        let n = &mut k.nodes[node.index()];
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
        k.stats.crashes += 1;
        let inc = k.nodes[node.index()].incarnation as u64;
        let why = why.to_string();
        k.record(Kind::Crash, node.0 as u64, [inc, 0, 0], |_| format!("incarnation {} ended ({why})", inc - 1));
        // Whatever the dead instance was doing (leading, say) ends with it.
        k.end_annotations(node, "");
        let label = format!("{} down", k.nodes[node.index()].name);
        k.open_annotation(label, Some(node));
        self.net.on_crash(k, node.0);
        target
    }
}

pub(crate) fn crash_with_reason(node: NodeId, why: &str) {
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
///
/// # Panics
/// If the node is alive, or is a client endpoint.
pub fn restart(node: NodeId) {
    let target = with(|w| {
        let k = &mut w.kernel;
        let n = &mut k.nodes[node.index()];
        assert!(!n.alive, "restart of a live node {}", n.name);
        let Host::Process { madsim: Some(id), .. } = &n.host else { panic!("restart of a client endpoint {}", n.name) };
        let id = *id;
        n.alive = true;
        n.inbox.clear();
        w.net.on_restart(node.0);
        k.stats.restarts += 1;
        let inc = k.nodes[node.index()].incarnation as u64;
        k.record(Kind::Restart, node.0 as u64, [inc, 0, 0], |_| format!("incarnation {inc} starts"));
        k.annotate_restart(node);
        id
    });
    madsim::runtime::Handle::current().restart(target);
}

/// Whether the node's current instance is running.
pub fn is_alive(node: NodeId) -> bool {
    with(|w| w.kernel.nodes[node.index()].alive)
}

/// How many nodes the world has so far (the next node gets this id).
pub fn node_count() -> u16 {
    with(|w| w.kernel.nodes.len() as u16)
}

/// The node's current incarnation: 0 at start, +1 at every crash or exit.
pub fn incarnation(node: NodeId) -> u32 {
    with(|w| w.kernel.nodes[node.index()].incarnation)
}

/// The node's name.
pub fn node_name(node: NodeId) -> String {
    with(|w| w.kernel.nodes[node.index()].name.clone())
}
