//! Histories: operations with call and return times, or ordered call/return events.
//!
//! Intervals are closed: an operation `[10, 20]` overlaps one that starts at 20, so at
//! equal times a call sorts before a return. An operation whose outcome is unknown (the
//! client gave up, the reply was lost) has no return time; the checker places its return
//! after the last event of the history, and the model accepts any output for it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time. Any monotonic unit works (simulated nanoseconds, log line numbers).
pub type Time = u64;

/// Who issued an operation: one row of the HTML page per client.
pub type ClientId = u64;

/// One call and its return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation<I, O> {
    /// The client that made the call.
    pub client: ClientId,
    /// What was asked.
    pub input: I,
    /// When the call was made.
    pub call: Time,
    /// What came back; `None` when the result is unknown (any output is acceptable).
    pub output: Option<O>,
    /// When the call returned; `None` when it never did (the outcome is unknown, and the
    /// return is placed after the last event of the history). Requires `output == None`.
    pub ret: Option<Time>,
}

impl<I, O> Operation<I, O> {
    /// An operation that returned `output` at `ret`.
    pub fn new(client: ClientId, input: I, call: Time, output: O, ret: Time) -> Self {
        Operation { client, input, call, output: Some(output), ret: Some(ret) }
    }

    /// An operation that returned at `ret` without a usable result (e.g. a timed-out read):
    /// it still happened within `[call, ret]`, but any output is acceptable.
    pub fn unknown_result(client: ClientId, input: I, call: Time, ret: Time) -> Self {
        Operation { client, input, call, output: None, ret: Some(ret) }
    }

    /// An operation whose outcome is unknown: it may take effect at any time after `call`,
    /// or never visibly.
    pub fn pending(client: ClientId, input: I, call: Time) -> Self {
        Operation { client, input, call, output: None, ret: None }
    }

    /// True when the operation never returned.
    pub fn is_pending(&self) -> bool {
        self.ret.is_none()
    }
}

/// One element of a history in event form: the position in the sequence is the time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event<I, O> {
    /// A call; `id` names the operation and must be unique within the history.
    Call {
        /// The client making the call.
        client: ClientId,
        /// The operation's name in this history, matched by its return.
        id: u64,
        /// What was asked.
        input: I,
    },
    /// The return of the operation `id`; `output: None` when its result is unknown.
    Return {
        /// The id of the call this return ends.
        id: u64,
        /// What came back.
        output: Option<O>,
    },
}

/// Why a list of operations or events is not a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// An operation returned before it was called.
    ReturnBeforeCall {
        /// The operation's index in the list.
        op: usize,
        /// Its call time.
        call: Time,
        /// Its return time, earlier than `call`.
        ret: Time,
    },
    /// An operation that never returned claims an output.
    OutputWithoutReturn {
        /// The operation's index in the list.
        op: usize,
    },
    /// Two call events used the same id.
    DuplicateId {
        /// The second call event's index in the list.
        event: usize,
        /// The id used twice.
        id: u64,
    },
    /// A return event names no pending call.
    UnmatchedReturn {
        /// The return event's index in the list.
        event: usize,
        /// The id it names.
        id: u64,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::ReturnBeforeCall { op, call, ret } => {
                write!(f, "operation {op} returns at {ret}, before its call at {call}")
            }
            HistoryError::OutputWithoutReturn { op } => {
                write!(f, "operation {op} never returned but has an output")
            }
            HistoryError::DuplicateId { event, id } => {
                write!(f, "event {event}: call id {id} is already used")
            }
            HistoryError::UnmatchedReturn { event, id } => {
                write!(f, "event {event}: return for id {id}, which has no pending call")
            }
        }
    }
}

impl std::error::Error for HistoryError {}

/// A validated list of operations, in the order given (indices are operation ids).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History<I, O> {
    ops: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History { ops: Vec::new() }
    }
}

impl<I, O> History<I, O> {
    /// Validates the operations: every return is at or after its call, and an operation
    /// without a return has no output.
    ///
    /// # Errors
    /// [`HistoryError::ReturnBeforeCall`] or [`HistoryError::OutputWithoutReturn`] for the first
    /// operation that breaks the rule.
    pub fn new(ops: Vec<Operation<I, O>>) -> Result<Self, HistoryError> {
        for (i, op) in ops.iter().enumerate() {
            match op.ret {
                Some(ret) if ret < op.call => return Err(HistoryError::ReturnBeforeCall { op: i, call: op.call, ret }),
                None if op.output.is_some() => return Err(HistoryError::OutputWithoutReturn { op: i }),
                _ => {}
            }
        }
        Ok(History { ops })
    }

    /// Builds a history from ordered events; event `k` happens at time `k`. Operations are
    /// numbered in the order of their calls; a call without a return is pending.
    ///
    /// # Errors
    /// [`HistoryError::DuplicateId`] for a call that reuses an id, [`HistoryError::UnmatchedReturn`]
    /// for a return naming no pending call.
    pub fn from_events(events: Vec<Event<I, O>>) -> Result<Self, HistoryError> {
        // Ids are arbitrary u64s: an ordered map keeps this deterministic and simple.
        let mut pending: std::collections::BTreeMap<u64, usize> = Default::default();
        let mut used: std::collections::BTreeSet<u64> = Default::default();
        let mut ops: Vec<Operation<I, O>> = Vec::new();
        for (k, event) in events.into_iter().enumerate() {
            let time = k as Time;
            match event {
                Event::Call { client, id, input } => {
                    if !used.insert(id) {
                        return Err(HistoryError::DuplicateId { event: k, id });
                    }
                    pending.insert(id, ops.len());
                    ops.push(Operation::pending(client, input, time));
                }
                Event::Return { id, output } => {
                    let Some(op) = pending.remove(&id) else {
                        return Err(HistoryError::UnmatchedReturn { event: k, id });
                    };
                    ops[op].ret = Some(time);
                    ops[op].output = output;
                }
            }
        }
        History::new(ops)
    }

    /// The operations; an operation's index is its id everywhere in this crate.
    pub fn ops(&self) -> &[Operation<I, O>] {
        &self.ops
    }

    /// Gives the operations back.
    pub fn into_ops(self) -> Vec<Operation<I, O>> {
        self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The time of the last event (call or return); pending operations return after it.
    pub fn last_event(&self) -> Time {
        self.ops.iter().map(|op| op.ret.unwrap_or(op.call).max(op.call)).max().unwrap_or(0)
    }

    /// The distinct clients, ascending.
    pub fn clients(&self) -> Vec<ClientId> {
        let set: std::collections::BTreeSet<ClientId> = self.ops.iter().map(|op| op.client).collect();
        set.into_iter().collect()
    }

    /// True when `a` must precede `b` in any linearization (`a` returned before `b` was
    /// called; intervals are closed, so equal times overlap).
    pub fn precedes(&self, a: usize, b: usize) -> bool {
        match self.ops[a].ret {
            Some(ret) => ret < self.ops[b].call,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_operations_with_index_times() {
        let h: History<&str, u8> = History::from_events(vec![
            Event::Call { client: 1, id: 7, input: "a" },
            Event::Call { client: 2, id: 9, input: "b" },
            Event::Return { id: 7, output: Some(1) },
            Event::Return { id: 9, output: None },
            Event::Call { client: 1, id: 3, input: "c" },
        ])
        .unwrap();
        assert_eq!(h.ops()[0], Operation::new(1, "a", 0, 1, 2));
        assert_eq!(h.ops()[1], Operation::unknown_result(2, "b", 1, 3));
        assert_eq!(h.ops()[2], Operation::pending(1, "c", 4));
        assert_eq!(h.last_event(), 4);
        assert!(h.precedes(0, 2));
        assert!(!h.precedes(0, 1));
        assert!(!h.precedes(2, 0));
    }

    #[test]
    fn malformed_inputs_are_rejected() {
        let dup: Result<History<(), ()>, _> = History::from_events(vec![
            Event::Call { client: 0, id: 1, input: () },
            Event::Return { id: 1, output: Some(()) },
            Event::Call { client: 0, id: 1, input: () },
        ]);
        assert_eq!(dup.unwrap_err(), HistoryError::DuplicateId { event: 2, id: 1 });
        let orphan: Result<History<(), ()>, _> = History::from_events(vec![Event::Return { id: 4, output: None }]);
        assert_eq!(orphan.unwrap_err(), HistoryError::UnmatchedReturn { event: 0, id: 4 });
        let backwards = History::new(vec![Operation::new(0, (), 5, (), 4)]);
        assert_eq!(backwards.unwrap_err(), HistoryError::ReturnBeforeCall { op: 0, call: 5, ret: 4 });
        let bogus: Operation<(), ()> = Operation { client: 0, input: (), call: 1, output: Some(()), ret: None };
        assert_eq!(History::new(vec![bogus]).unwrap_err(), HistoryError::OutputWithoutReturn { op: 0 });
    }
}
