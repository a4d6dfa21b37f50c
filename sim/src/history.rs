//! Client histories: every call and return of the run's clients, stamped with simulated
//! time (nanoseconds), in `checkers`' types, so a linearizability checker can judge them.
//! A call that never returned is kept with an unknown outcome.

use crate::sched;
use crate::trace::Kind;
use crate::world::{with, NO_NODE};
use checkers::linearizability::{ClientId, History, Operation};
use std::cell::RefCell;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// FNV-1a as a `Hasher`, fixed across runs, for the trace fields of inputs and outputs
/// (formatting a long value on every event would cost O(value) per operation).
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn field_hash<T: Hash>(v: &T) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    v.hash(&mut h);
    h.finish()
}

struct Inner<I, O> {
    ops: Vec<Operation<I, O>>,
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
        Recorder { inner: Rc::new(RefCell::new(Inner { ops: Vec::new() })) }
    }
}

/// An operation in progress; hand it back to [`Recorder::ret`].
#[must_use = "an operation that is never returned is recorded with an unknown outcome"]
pub struct OpHandle {
    index: usize,
}

fn now_ns() -> u64 {
    sched::now().as_nanos() as u64
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
        inner.ops.push(Operation::pending(client, input, t));
        with(|w| {
            w.kernel.record(Kind::Call, NO_NODE, [client, index as u64, h], |_| {
                format!("client {client} op {index}: {}", shown.unwrap_or_default())
            })
        });
        OpHandle { index }
    }

    /// Records the return of `op` now, and a `return` line in the trace.
    pub fn ret(&self, op: OpHandle, output: O) {
        let t = now_ns();
        let h = field_hash(&output);
        let shown = with(|w| w.kernel.trace.wants_lines()).then(|| format!("{output:?}"));
        let mut inner = self.inner.borrow_mut();
        let o = &mut inner.ops[op.index];
        o.output = Some(output);
        o.ret = Some(t);
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

    /// The history so far; calls without a return have an unknown outcome.
    pub fn history(&self) -> History<I, O> {
        History::new(self.inner.borrow().ops.clone()).expect("recorded operations form a history")
    }
}
