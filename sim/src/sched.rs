//! Scheduler and time: the world's own timed-action heap, the one supervisor task that
//! carries its actions out, and the sleeps, timeouts and clock that nodes and scenarios use.
//!
//! One task and one pending madsim timer serve the whole run, however much traffic there
//! is; deadlines are exact to the nanosecond (madsim's own sleeps last at least 1 ms).

use crate::net::{Hop, Reason};
use crate::world::{try_with, with, Kernel, World};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A timed action of the world's own scheduler.
pub(crate) enum Action {
    /// Wake a sleeping future. Its waker is kept here; a sleep that ends or is dropped
    /// before its time takes its action out of the scheduler (see [`Scheduler::cancel`]).
    Wake(Waker),
    /// A network hop reaches its destination.
    Deliver(Hop),
    /// A call fails (labrpc's `false`).
    Fail { call: u64, reason: Reason },
    /// labrpc's 100 ms re-check of a call whose handler is running.
    DeadCheck { call: u64 },
    /// A closure run outside the world borrow (fault schedules, delayed crash points).
    Callback(Box<dyn FnOnce()>),
}

/// A heap key: due time (ns), sequence number, slot of the action.
type HeapKey = (u64, u64, u32);

/// An action waiting in its slot, with the sequence number of its heap key and where that
/// key is in the heap.
struct Entry {
    seq: u64,
    pos: u32,
    action: Option<Action>,
}

/// Timed actions ordered by (time, sequence): two actions due at the same instant run in
/// the order they were scheduled. The heap holds only small keys; the actions wait in a
/// slab beside it, so reordering the heap moves 24 bytes, not a message. Each slot knows
/// its key's place in the heap, so a cancelled sleep leaves the heap at once: an abandoned
/// sleep (a node's event loop makes a new one for every message it takes) neither grows
/// the heap nor wakes the scheduler task at its time.
#[derive(Default)]
pub(crate) struct Scheduler {
    /// A binary min-heap of keys, each slot's `pos` kept equal to its key's index.
    heap: Vec<HeapKey>,
    /// Actions by slot; `free` lists the empty slots.
    actions: Vec<Entry>,
    free: Vec<u32>,
    seq: u64,
    waker: Option<Waker>,
    /// The deadline the scheduler task is currently sleeping towards.
    armed: Option<u64>,
}

impl Scheduler {
    /// Adds an action; returns its key (slot and sequence number).
    fn push(&mut self, at: u64, action: Action) -> WakeKey {
        let seq = self.seq;
        self.seq += 1;
        let pos = self.heap.len() as u32;
        let entry = Entry { seq, pos, action: Some(action) };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.actions[slot as usize] = entry;
                slot
            }
            None => {
                self.actions.push(entry);
                (self.actions.len() - 1) as u32
            }
        };
        self.heap.push((at, seq, slot));
        self.sift_up(pos as usize);
        WakeKey { slot, seq }
    }

    /// The waker of a pending `Wake`, if `key` still names it (it has not fired).
    fn waker_mut(&mut self, key: WakeKey) -> Option<&mut Waker> {
        match self.actions.get_mut(key.slot as usize) {
            Some(Entry { seq, action: Some(Action::Wake(w)), .. }) if *seq == key.seq => Some(w),
            _ => None,
        }
    }

    /// Takes a pending `Wake` out of the scheduler, if `key` still names it (it has not
    /// fired). The scheduler task may still wake at its time if it was the earliest action,
    /// and then finds nothing due.
    fn cancel(&mut self, key: WakeKey) {
        if self.waker_mut(key).is_some() {
            let pos = self.actions[key.slot as usize].pos as usize;
            self.remove_at(pos);
        }
    }

    /// The earliest action if it is due at `now`; otherwise when the earliest is due.
    fn pop_due(&mut self, now: u64) -> Result<Action, Option<u64>> {
        match self.heap.first() {
            Some(&(at, _, _)) if at <= now => Ok(self.remove_at(0)),
            Some(&(at, _, _)) => Err(Some(at)),
            None => Err(None),
        }
    }

    /// Removes the key at heap index `pos`, frees its slot and returns its action.
    fn remove_at(&mut self, pos: usize) -> Action {
        let (_, _, slot) = self.heap[pos];
        let last = self.heap.pop().expect("a key at pos");
        if pos < self.heap.len() {
            self.place(pos, last);
            if pos > 0 && last < self.heap[(pos - 1) / 2] {
                self.sift_up(pos);
            } else {
                self.sift_down(pos);
            }
        }
        self.free.push(slot);
        self.actions[slot as usize].action.take().expect("a scheduled action")
    }

    fn sift_up(&mut self, mut pos: usize) {
        let key = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.heap[parent];
            if key >= p {
                break;
            }
            self.place(pos, p);
            pos = parent;
        }
        self.place(pos, key);
    }

    fn sift_down(&mut self, mut pos: usize) {
        let key = self.heap[pos];
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right] < self.heap[left] { right } else { left };
            let c = self.heap[child];
            if key <= c {
                break;
            }
            self.place(pos, c);
            pos = child;
        }
        self.place(pos, key);
    }

    /// Puts `key` at heap index `pos` and records the position in its slot.
    fn place(&mut self, pos: usize, key: HeapKey) {
        self.heap[pos] = key;
        self.actions[key.2 as usize].pos = pos as u32;
    }

    /// Checks the heap order and every slot's position (tests).
    #[cfg(test)]
    fn check(&self) {
        for (i, k) in self.heap.iter().enumerate() {
            assert_eq!(self.actions[k.2 as usize].pos as usize, i);
            assert_eq!(self.actions[k.2 as usize].seq, k.1);
            if i > 0 {
                assert!(self.heap[(i - 1) / 2] < *k);
            }
        }
    }
}

impl Kernel {
    /// Schedules `action` at simulated time `at` (ns), waking the scheduler if it is earlier
    /// than what the scheduler sleeps towards.
    pub fn schedule(&mut self, at: u64, action: Action) -> WakeKey {
        let s = &mut self.sched;
        let key = s.push(at, action);
        if s.armed.is_none_or(|armed| at < armed) {
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
        key
    }
}

impl World {
    /// Carries out one due action (callbacks run outside the world borrow instead).
    fn run_action(&mut self, action: Action) {
        match action {
            Action::Wake(waker) => waker.wake(),
            Action::Deliver(hop) => self.net.deliver(&mut self.kernel, hop),
            Action::Fail { call, reason } => self.net.fail_call(&mut self.kernel, call, reason),
            Action::DeadCheck { call } => self.net.dead_check(&mut self.kernel, call),
            Action::Callback(_) => unreachable!("callbacks run outside the world borrow"),
        }
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
            // Carry out the next due action, if any, in the same borrow; a callback runs
            // outside it. Otherwise note the next deadline.
            let step = with(|w| {
                let now = w.kernel.now_ns();
                match w.kernel.sched.pop_due(now) {
                    Ok(Action::Callback(f)) => Ok(Some(f)),
                    Ok(action) => {
                        w.run_action(action);
                        Ok(None)
                    }
                    Err(next) => Err(next.map(|at| (at, w.kernel.base + Duration::from_nanos(at)))),
                }
            });
            match step {
                Ok(Some(f)) => f(),
                Ok(None) => {}
                Err(None) => {
                    with(|w| {
                        w.kernel.sched.armed = None;
                        w.kernel.sched.waker = Some(cx.waker().clone());
                    });
                    return Poll::Pending;
                }
                Err(Some((at, deadline))) => {
                    // One madsim sleep, kept and moved: `reset` keeps the exact deadline
                    // (madsim's constructors round up to 1 ms) and allocates nothing. Each
                    // pending poll registers a madsim timer, as a fresh sleep's would.
                    let sleep = match &mut self.sleep {
                        Some(s) => s,
                        None => {
                            let time = with(|w| w.kernel.time.clone());
                            self.sleep.insert(Box::pin(time.sleep(Duration::ZERO)))
                        }
                    };
                    if sleep.deadline() != deadline {
                        sleep.as_mut().reset(deadline);
                    }
                    match sleep.as_mut().poll(cx) {
                        Poll::Ready(()) => continue,
                        Poll::Pending => {
                            with(|w| {
                                w.kernel.sched.armed = Some(at);
                                w.kernel.sched.waker = Some(cx.waker().clone());
                            });
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Time: the clock, sleeps, timeouts, timed callbacks.
// ---------------------------------------------------------------------------------------

thread_local! {
    /// The run's clock, kept so that reading the time costs no reference counting (madsim's
    /// `TimeHandle::current()` clones two `Arc`s on every call).
    static CLOCK: RefCell<Option<madsim::time::TimeHandle>> = const { RefCell::new(None) };
}

/// Installs (or, with `None`, removes) the clock of the run on this thread.
pub(crate) fn set_clock(time: Option<madsim::time::TimeHandle>) {
    CLOCK.with(|c| *c.borrow_mut() = time);
}

/// Simulated time since the run started.
pub fn now() -> Duration {
    step_now().unwrap_or_else(clock_now)
}

/// The time of the process step being polled, if one is ([`with_step_time`]).
#[inline]
pub(crate) fn step_now() -> Option<Duration> {
    STEP_NOW.get()
}

/// The clock itself: madsim's, behind its lock.
fn clock_now() -> Duration {
    CLOCK
        .with(|c| c.borrow().as_ref().map(|t| t.elapsed()))
        .unwrap_or_else(|| madsim::time::TimeHandle::current().elapsed())
}

thread_local! {
    /// The time of the process step being polled ([`with_step_time`]), or `None` between
    /// steps.
    static STEP_NOW: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Runs one poll of a node's process with the clock read once: madsim moves its clock only
/// between polls (to the next timer, or 50–100 ns after each poll), so every `now()` inside
/// the step is the same instant, and each read of it took a lock (1.3 % of a key/value run's
/// wall time). Asserts the clock did not move meanwhile.
pub(crate) fn with_step_time<R>(f: impl FnOnce() -> R) -> R {
    let t = clock_now();
    let outer = STEP_NOW.replace(Some(t));
    let r = f();
    STEP_NOW.set(outer);
    debug_assert_eq!(clock_now(), t, "sim: the clock moved inside a process step");
    r
}

/// Sleeps for exactly `d` of simulated time (no 1 ms minimum, unlike madsim's sleep).
pub fn sleep(d: Duration) -> Sleep {
    sleep_until(now() + d)
}

/// Sleeps until simulated time `t`.
pub fn sleep_until(t: Duration) -> Sleep {
    Sleep { deadline_ns: t.as_nanos() as u64, key: None }
}

/// Names a scheduled action: its slot, and its sequence number (a slot is reused once its
/// action has run, under a new sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WakeKey {
    slot: u32,
    seq: u64,
}

/// A sleep on the world's own scheduler. Its waker lives in the world, which is dropped at
/// the end of every run — unlike madsim's timers, which hold the waker of a task whose sleep
/// holds the timers: a task still sleeping when a run ends would never be freed.
pub struct Sleep {
    deadline_ns: u64,
    /// The scheduler's `Wake` for this sleep, once it has been polled.
    key: Option<WakeKey>,
}

impl Sleep {
    /// Takes this sleep's `Wake` out of the scheduler (it ended, or was dropped).
    fn disarm(&mut self) {
        if let Some(key) = self.key.take() {
            try_with(|w| w.kernel.sched.cancel(key));
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline_ns;
        let Some(now) = try_now_ns() else { return Poll::Pending };
        if now >= deadline {
            self.disarm();
            return Poll::Ready(());
        }
        let waker = cx.waker().clone();
        match self.key {
            Some(key) => with(|w| {
                if let Some(slot) = w.kernel.sched.waker_mut(key) {
                    *slot = waker;
                }
            }),
            None => self.key = Some(with(|w| w.kernel.schedule(deadline, Action::Wake(waker)))),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

fn try_now_ns() -> Option<u64> {
    CLOCK
        .with(|c| c.borrow().as_ref().map(|t| t.elapsed()))
        .or_else(|| madsim::time::TimeHandle::try_current().map(|t| t.elapsed()))
        .map(|d| d.as_nanos() as u64)
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

/// Schedules `f` to run on the scheduler at simulated time `at` (fault schedules use this).
pub fn at(at: Duration, f: impl FnOnce() + 'static) {
    with(|w| w.kernel.schedule(at.as_nanos() as u64, Action::Callback(Box::new(f))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    /// The indexed heap against a sorted set: pushes, cancels of pending and of already
    /// fired sleeps, and pops in (time, sequence) order, with the heap's own order and every
    /// slot's position checked after each step.
    #[test]
    fn indexed_heap_matches_a_sorted_set() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut s = Scheduler::default();
        let mut model: BTreeSet<(u64, u64)> = BTreeSet::new();
        let mut keys: Vec<(WakeKey, u64)> = Vec::new();
        let mut now = 0u64;
        for _ in 0..20_000 {
            match rng.gen_range(0..10) {
                0..=4 => {
                    let at = now + rng.gen_range(0..50);
                    let key = s.push(at, Action::Wake(Waker::noop().clone()));
                    model.insert((at, key.seq));
                    keys.push((key, at));
                }
                5..=6 if !keys.is_empty() => {
                    // Cancel a key that may have fired already (then nothing happens).
                    let (key, at) = keys.swap_remove(rng.gen_range(0..keys.len()));
                    s.cancel(key);
                    model.remove(&(at, key.seq));
                }
                _ => {
                    now += rng.gen_range(0..5);
                    loop {
                        let top = s.heap.first().map(|k| (k.0, k.1));
                        match s.pop_due(now) {
                            Ok(_) => {
                                let first = *model.iter().next().expect("the model has it too");
                                assert_eq!(top, Some(first), "pops in (time, sequence) order");
                                assert!(first.0 <= now);
                                model.remove(&first);
                            }
                            Err(next) => {
                                assert_eq!(next, model.iter().next().map(|k| k.0));
                                break;
                            }
                        }
                    }
                }
            }
            s.check();
            assert_eq!(s.heap.len(), model.len());
        }
    }
}
