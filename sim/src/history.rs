//! Client histories: every call and return of the run's clients, in `checkers`' types, so a
//! linearizability checker can judge them. A call that never returned is kept with an
//! unknown outcome.
//!
//! **Times are positions in the order events were recorded**, not simulated instants: many
//! events share one simulated instant (a clerk calls again at the very instant its previous
//! call returned), and closed intervals would make such touching operations concurrent,
//! hiding a client that does not see its own completed write. The recorder numbers its
//! call and return events 0, 1, 2, … in the order they happened, so a return recorded
//! before a call precedes it, and a call recorded before a return overlaps it — which is
//! exactly what the run did: an implementation's effects are events of the same run, so an
//! operation takes effect strictly between its call and its return in this order. The
//! simulated instants are kept: [`Recorder::history_with_times`] states them in each
//! operation's metadata, and [`Recorder::span`] turns a simulated time span (a crash, a
//! partition) into positions for the history page.

use crate::sched;
use crate::trace::Kind;
use crate::world::{with, NO_NODE};
use checkers::linearizability::{ClientId, History, Operation, Time};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::rc::Rc;

/// The trace field of an input or output: the checkers' fixed word-at-a-time hash, the same
/// on every machine (formatting a long value on every event would cost O(value) per
/// operation; hashing it a byte at a time, as FNV-1a did, cost 3 % of a key/value run).
fn field_hash<T: Hash>(v: &T) -> u64 {
    checkers::linearizability::hash::hash_of(v)
}

struct Inner<I, O> {
    /// Operations in call order; `call` and `ret` are positions in `event_ns`.
    ops: Vec<Operation<I, O>>,
    /// The simulated time (nanoseconds) of every call and return event, in recording
    /// order (never decreasing).
    event_ns: Vec<u64>,
    /// Each client's latest operation, with whether its handle still exists: a client is
    /// one sequential caller (the course's `cli`, Porcupine's client), so two concurrent
    /// clerks must not share an id. The handle goes when the operation returns, or when its
    /// caller gives up waiting (e.g. under a timeout; the operation then stays pending in
    /// the history): either way the client may call again.
    open: BTreeMap<ClientId, (usize, Rc<Cell<bool>>)>,
}

/// A recorder shared by the run's clients.
pub struct Recorder<I, O> {
    inner: Rc<RefCell<Inner<I, O>>>,
}

impl<I, O> Clone for Recorder<I, O> {
    fn clone(&self) -> Self {
        Recorder { inner: self.inner.clone() }
    }
}

impl<I, O> Default for Recorder<I, O> {
    fn default() -> Self {
        Recorder {
            inner: Rc::new(RefCell::new(Inner { ops: Vec::new(), event_ns: Vec::new(), open: BTreeMap::new() })),
        }
    }
}

/// An operation in progress; hand it back to [`Recorder::ret`].
#[must_use = "an operation that is never returned is recorded with an unknown outcome"]
pub struct OpHandle {
    index: usize,
    /// Set while the handle exists (see `Inner::open`).
    live: Rc<Cell<bool>>,
}

impl Drop for OpHandle {
    fn drop(&mut self) {
        self.live.set(false);
    }
}

fn now_ns() -> u64 {
    sched::now().as_nanos() as u64
}

/// `1.234567890 s`: a simulated time in nanoseconds, exactly.
fn seconds(ns: u64) -> String {
    format!("{}.{:09} s", ns / 1_000_000_000, ns % 1_000_000_000)
}

impl<I, O> Inner<I, O> {
    /// Records an event at simulated time `ns`; returns its position.
    fn event(&mut self, ns: u64) -> Time {
        debug_assert!(self.event_ns.last().is_none_or(|&last| last <= ns), "simulated time never goes back");
        self.event_ns.push(ns);
        (self.event_ns.len() - 1) as Time
    }
}

impl<I: Clone + Debug + Hash, O: Clone + Debug + Hash> Recorder<I, O> {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a call now, and a `call` line in the trace.
    pub fn call(&self, client: ClientId, input: I) -> OpHandle {
        let t = now_ns();
        let h = field_hash(&input);
        // Formatting a long value on every call would cost O(value): only for traces.
        let shown = with(|w| w.kernel.trace.wants_lines()).then(|| format!("{input:?}"));
        let mut inner = self.inner.borrow_mut();
        let index = inner.ops.len();
        let live = Rc::new(Cell::new(true));
        if let Some((earlier, held)) = inner.open.insert(client, (index, live.clone())) {
            assert!(
                !held.get(),
                "client {client} calls op {index} while its op {earlier} is in progress: each concurrent clerk needs a client id of its own"
            );
        }
        let position = inner.event(t);
        inner.ops.push(Operation::pending(client, input, position));
        with(|w| {
            w.kernel.record(Kind::Call, NO_NODE, [client, index as u64, h], |_| {
                format!("client {client} op {index}: {}", shown.unwrap_or_default())
            })
        });
        OpHandle { index, live }
    }

    /// Records the return of `op` now, and a `return` line in the trace.
    pub fn ret(&self, op: OpHandle, output: O) {
        let t = now_ns();
        let h = field_hash(&output);
        let shown = with(|w| w.kernel.trace.wants_lines()).then(|| format!("{output:?}"));
        let mut inner = self.inner.borrow_mut();
        let position = inner.event(t);
        let o = &mut inner.ops[op.index];
        o.output = Some(output);
        o.ret = Some(position);
        // `op` is consumed here: its drop frees the client for its next call (`Inner::open`).
        let (client, index) = (o.client, op.index);
        with(|w| {
            w.kernel.record(Kind::Return, NO_NODE, [client, index as u64, h], |_| {
                format!("client {client} op {index} -> {}", shown.unwrap_or_default())
            })
        });
    }

    /// How many operations were called so far.
    pub fn len(&self) -> usize {
        self.inner.borrow().ops.len()
    }

    /// Whether no operation was called yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The history so far, as the checker needs it: times are event positions (see the
    /// module's documentation); calls without a return have an unknown outcome. No metadata:
    /// formatting every operation's simulated times cost 2 % of a key/value run whose
    /// history passed; [`Recorder::history_with_times`] adds them where a person reads them.
    pub fn history(&self) -> History<I, O> {
        let inner = self.inner.borrow();
        History::new(inner.ops.clone()).expect("recorded operations form a history")
    }

    /// [`Recorder::history`] with each operation's metadata giving the simulated times of its
    /// call and return (`simulated 1.000000000 s to 1.250000000 s`): for a history page or an
    /// exported history. The same operations in the same order.
    pub fn history_with_times(&self) -> History<I, O> {
        let inner = self.inner.borrow();
        let ops = inner
            .ops
            .iter()
            .map(|op| {
                let call = seconds(inner.event_ns[op.call as usize]);
                let metadata = match op.ret {
                    Some(ret) => format!("simulated {call} to {}", seconds(inner.event_ns[ret as usize])),
                    None => format!("simulated {call}, never returned"),
                };
                op.clone().with_metadata(metadata)
            })
            .collect();
        History::new(ops).expect("recorded operations form a history")
    }

    /// The positions, in [`Recorder::history`]'s times, of a simulated time span
    /// `[start_ns, end_ns]` (for an annotation band): it starts before every event at or
    /// after `start_ns` and ends after every event at or before `end_ns`.
    pub fn span(&self, start_ns: u64, end_ns: u64) -> (Time, Time) {
        let inner = self.inner.borrow();
        let start = inner.event_ns.partition_point(|&t| t < start_ns) as Time;
        let end = (inner.event_ns.partition_point(|&t| t <= end_ns) as Time).saturating_sub(1);
        (start, end.max(start))
    }
}

/// A captured trace event read as a recorded call ([`Recorder::call`]): the calling client.
/// `None` for any other event.
pub fn call_client(ev: &crate::CapturedEvent) -> Option<ClientId> {
    (ev.kind == Kind::Call).then_some(ev.fields[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Failure, RunConfig};
    use checkers::linearizability::{check, CheckOptions, Verdict};
    use checkers::models::kv::{KvInput, KvModel, KvOutput};
    use std::time::Duration;

    /// Runs `f` in a world and hands back what it returns.
    fn in_a_run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let out = std::sync::Arc::new(std::sync::Mutex::new(None));
        let out2 = out.clone();
        let report = crate::run(RunConfig::new(1, Duration::from_secs(60)), move || async move {
            *out2.lock().unwrap() = Some(f());
            Ok::<(), Failure>(())
        });
        assert!(report.outcome.is_pass(), "{}", report.outcome);
        let value = out.lock().unwrap().take().expect("the run ran");
        value
    }

    /// Issue 9's history as the simulator records it: at one simulated instant, client 0's
    /// append returns and the same client reads; client 1's call, recorded before that
    /// return, overlaps it.
    fn touching_history(read: &'static str) -> (History<KvInput, KvOutput>, (Time, Time)) {
        in_a_run(move || {
            let r: Recorder<KvInput, KvOutput> = Recorder::new();
            let append = r.call(0, KvInput::append("k", "x"));
            let other = r.call(1, KvInput::get("k"));
            r.ret(append, KvOutput::Ack);
            let get = r.call(0, KvInput::get("k"));
            r.ret(get, KvOutput::value(read));
            r.ret(other, KvOutput::value(""));
            let _pending = r.call(2, KvInput::put("k", "never"));
            let now = now_ns();
            (r.history_with_times(), r.span(now, now))
        })
    }

    #[test]
    fn a_return_recorded_before_a_call_at_the_same_instant_precedes_it() {
        let (h, span) = touching_history("");
        let ops = h.ops();
        // All at simulated time 0, yet ordered as recorded.
        assert_eq!((ops[0].call, ops[0].ret), (0, Some(2)));
        assert_eq!((ops[1].call, ops[1].ret), (1, Some(5)));
        assert_eq!((ops[2].call, ops[2].ret), (3, Some(4)));
        assert_eq!((ops[3].call, ops[3].ret), (6, None));
        assert!(h.precedes(0, 2), "client 0's append returned before its get was called");
        assert!(!h.precedes(0, 1) && !h.precedes(1, 0), "client 1's get was called before the append returned");
        let at = ops[0].metadata.as_deref().unwrap().strip_prefix("simulated ").unwrap().split(" to ").next().unwrap();
        assert!(at.starts_with("0.0") && at.ends_with(" s"), "{at}");
        assert_eq!(ops[0].metadata, Some(format!("simulated {at} to {at}")));
        assert_eq!(ops[3].metadata, Some(format!("simulated {at}, never returned")));
        assert_eq!(span, (0, 6), "a band over the instant covers all its events");
        // The client's read of "" after its own append returned is a violation; the other
        // client's read of "" is not.
        let r = check(&KvModel, &h, &CheckOptions::default());
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert_eq!(r.failing_ops(), vec![2]);
        let (h, _) = touching_history("x");
        assert!(check(&KvModel, &h, &CheckOptions::default()).is_linearizable());
    }

    #[test]
    fn a_client_is_one_sequential_caller_unless_it_gave_up_waiting() {
        // A clerk that gave up on an operation (its handle dropped) may call again; the
        // operation stays pending in the history.
        let h = in_a_run(|| {
            let r: Recorder<KvInput, KvOutput> = Recorder::new();
            drop(r.call(0, KvInput::put("k", "lost")));
            let get = r.call(0, KvInput::get("k"));
            r.ret(get, KvOutput::value(""));
            let again = r.call(0, KvInput::get("k"));
            r.ret(again, KvOutput::value(""));
            r.history()
        });
        assert_eq!(h.len(), 3);
        assert!(h.ops()[0].is_pending());
        // Two clerks sharing one client id, each with an operation in progress: refused,
        // since the history would claim one caller overlapped itself.
        let report = crate::run(RunConfig::new(1, Duration::from_secs(60)), || async {
            let r: Recorder<KvInput, KvOutput> = Recorder::new();
            let _a = r.call(3, KvInput::get("k"));
            let _b = r.call(3, KvInput::get("k"));
            Ok::<(), Failure>(())
        });
        let outcome = report.outcome.to_string();
        assert!(outcome.contains("client 3 calls op 1 while its op 0 is in progress"), "{outcome}");
    }

    #[test]
    fn spans_map_simulated_times_to_positions() {
        let (h, spans) = in_a_run(|| {
            let r: Recorder<KvInput, KvOutput> = Recorder::new();
            let inner = r.inner.clone();
            // Events at 10, 20, 20, 30 ns, without a clock: record positions by hand.
            for t in [10, 20, 20, 30] {
                inner.borrow_mut().event(t);
            }
            (r.history(), [r.span(0, 5), r.span(15, 20), r.span(20, 25), r.span(31, 40), r.span(10, 30)])
        });
        assert!(h.is_empty());
        assert_eq!(spans, [(0, 0), (1, 2), (1, 2), (4, 4), (0, 3)]);
    }
}
