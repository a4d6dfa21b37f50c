//! The node-side API: a node's handle on the world ([`NodeCtx`]) — its identity and
//! incarnation, its inbox, its random streams, notes, and ending itself. Calls, replies and
//! files are in `net.rs` and `fs.rs`, saving in `persist.rs`.

use crate::net::Incoming;
use crate::process::crash_with_reason;
use crate::rng::{self, ChaCha8Rng};
use crate::sched::{sleep_until, Sleep};
use crate::trace::Kind;
use crate::world::{with, NodeId};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The handle a node's code uses to talk to the world: its identity and incarnation.
/// Every operation from a stale incarnation (a crashed instance) is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCtx {
    pub(crate) id: NodeId,
    pub(crate) incarnation: u32,
}

impl NodeCtx {
    /// The node this instance runs as.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Which instance of the node this is: 0 at start, +1 at every crash or exit.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The node's name (`s0`, `worker-2`, …).
    pub fn name(&self) -> String {
        with(|w| w.kernel.nodes[self.id.index()].name.clone())
    }

    /// Whether this instance is still the live one.
    pub fn is_current(&self) -> bool {
        with(|w| w.kernel.is_current(*self))
    }

    /// A random stream private to this node incarnation, derived from the run's seed.
    pub fn rng(&self, label: &str) -> ChaCha8Rng {
        let seed = with(|w| w.kernel.seed);
        rng::stream(seed, label, ((self.id.0 as u64) << 32) | self.incarnation as u64)
    }

    /// Waits for the next message (request, or completion of a `start_call`).
    pub fn recv(&self) -> Recv {
        Recv { ctx: *self, sleep: None, deadline: None, pause: None }
    }

    /// Waits for the next message until simulated time `deadline`; `None` if it passed first.
    pub fn recv_until(&self, deadline: Duration) -> Recv {
        Recv { ctx: *self, sleep: None, deadline: Some(deadline), pause: None }
    }

    /// Takes a message if one is queued, without waiting.
    pub fn try_recv(&self) -> Option<Incoming> {
        with(|w| if w.kernel.is_current(*self) { w.kernel.nodes[self.id.index()].inbox.pop_front() } else { None })
    }

    /// Wakes whatever this node's current instance waits on in `recv`/`recv_until`, so its
    /// event loop looks again (after an outside call changed its state). The waker lives
    /// in the world, never in the node's own data: a task that held its own waker would
    /// keep itself alive after the run.
    pub fn wake(&self) {
        with(|w| {
            if w.kernel.is_current(*self) {
                if let Some(waker) = w.kernel.nodes[self.id.index()].waker.take() {
                    waker.wake();
                }
            }
        })
    }

    /// Records a protocol note in the trace (became leader, applied an entry, ...).
    /// `code`/`a`/`b` go into the trace hash; the text is built only when lines are wanted.
    pub fn note(&self, code: crate::trace::NoteCode, a: u64, b: u64, text: impl FnOnce() -> String) {
        with(|w| {
            if w.kernel.is_current(*self) {
                w.kernel.record(Kind::Note, self.id.0 as u64, [code.value(), a, b], |_| text());
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

/// Future of `NodeCtx::recv`/`recv_until`.
pub struct Recv {
    ctx: NodeCtx,
    deadline: Option<Duration>,
    sleep: Option<Sleep>,
    /// While fault point `node.pause` stalls this instance: the wait for its end.
    pause: Option<Sleep>,
}

impl Future for Recv {
    type Output = Option<Incoming>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        let ctx = self.ctx;
        // A paused instance (fault point `node.pause`) takes nothing until its pause ends,
        // neither messages nor its deadline.
        loop {
            if let Some(p) = self.pause.as_mut() {
                match Pin::new(p).poll(cx) {
                    Poll::Ready(()) => self.pause = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            let until = with(|w| {
                let k = &mut w.kernel;
                if !k.points.pauses_possible() {
                    return None;
                }
                let key = (ctx.id.0, ctx.incarnation);
                let now = k.now_ns();
                match k.points.paused_until.get(&key) {
                    Some(&t) if t > now => return Some(t),
                    Some(_) => {
                        // The pause is over: the message it held back is taken now.
                        k.points.paused_until.remove(&key);
                        return None;
                    }
                    None => {}
                }
                let n = &k.nodes[ctx.id.index()];
                if !k.is_current(ctx) || n.inbox.is_empty() {
                    return None;
                }
                // Reached each time the node is about to take a message.
                let ms = crate::points::reach_in(k, crate::FaultPoint::PauseNode, Some(ctx.id))?;
                let t = now + ms * 1_000_000;
                k.points.paused_until.insert(key, t);
                Some(t)
            });
            match until {
                Some(t) => self.pause = Some(sleep_until(Duration::from_nanos(t))),
                None => break,
            }
        }
        let got = with(|w| {
            if !w.kernel.is_current(ctx) {
                return Err(());
            }
            let n = &mut w.kernel.nodes[ctx.id.index()];
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
                    if w.kernel.is_current(ctx) {
                        w.kernel.nodes[ctx.id.index()].waker = None;
                        w.kernel.record(Kind::Timer, ctx.id.0 as u64, [deadline.as_nanos() as u64, 0, 0], |_| {
                            "wakeup".into()
                        });
                    }
                });
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
