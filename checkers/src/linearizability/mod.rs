//! Porcupine-style linearizability checking.
//!
//! A [`History`] of operations (call and return times, or ordered call/return events) is
//! checked against a [`Model`], a sequential specification, by the search of Wing & Gong
//! with Lowe's memoization of visited (linearized set, state) configurations. An operation
//! may take effect only after every operation that returned before it was called, and,
//! when the history declares its clients sequential, after its client's earlier operations
//! that returned. Models may
//! split a history into independent partitions (P-compositionality); partitions are
//! searched interleaved, in a deterministic round-robin of step slices, and the first
//! refutation ends the check. The verdict is [`Verdict::Linearizable`] with a witness
//! order, [`Verdict::NotLinearizable`] with partial linearizations (for each operation, the
//! longest linearizable prefix containing it) or [`Verdict::Unknown`] when the step budget
//! runs out; every step count is a pure function of the history and the options.
//! Specifications whose step may lead to several states are checked through
//! [`PowerSet`] (see [`NondeterministicModel`]).
//!
//! ```
//! use checkers::linearizability::{check, CheckOptions, History, Operation, Verdict};
//! use checkers::models::kv::{KvInput, KvModel, KvOutput};
//!
//! let history = History::new(vec![
//!     Operation::new(0, KvInput::put("k", "a"), 0, KvOutput::Ack, 10),
//!     Operation::new(1, KvInput::get("k"), 5, KvOutput::value("a"), 6),
//!     Operation::new(1, KvInput::get("k"), 7, KvOutput::value(""), 8),
//! ])
//! .unwrap();
//! let result = check(&KvModel, &history, &CheckOptions::default());
//! assert_eq!(result.verdict, Verdict::NotLinearizable);
//! assert_eq!(result.failing_ops(), vec![2]);
//! ```

mod bitset;
mod check;
pub mod hash;
mod history;
mod memo;
mod model;
mod nondeterministic;
mod search;

pub use check::{
    check, check_parallel, check_until, merge_witnesses, partitions, replay, CheckOptions, CheckResult, Explanation,
    PartialLinearization, PartitionOutcome, PartitionReport, ReplayError, UnknownReason, Verdict, DEFAULT_BUDGET,
    DEFAULT_MEMORY_LIMIT, DEFAULT_SLICE,
};
pub use history::{ClientId, Event, History, HistoryError, Operation, Time};
pub use model::Model;
pub use nondeterministic::{NondeterministicModel, PowerSet, StateSet};
pub use search::SearchStats;
