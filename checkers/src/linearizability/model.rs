//! The sequential specification a history is checked against.

use std::hash::Hash;

use super::history::Operation;

/// A sequential specification: a deterministic state machine over operations.
///
/// The checker calls [`Model::step`] on the operations of one partition at a time,
/// starting from [`Model::init`], so when [`Model::partition`] splits a history the
/// state only needs to describe one partition (one key's value, say).
pub trait Model {
    /// What a client asks.
    type Input;
    /// What a client is told.
    type Output;
    /// The specification's state. `Eq` and `Hash` are how the search recognises a state it
    /// has already explored; cloning it should be cheap (share big payloads).
    type State: Clone + Eq + Hash;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies one operation: `Some(next state)` when the specification allows `input` to
    /// produce `output` in `state`, `None` when it does not. `output` is `None` when the
    /// result is unknown: any output is acceptable then. Must be a pure function.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;

    /// Splits a history into independent partitions (P-compositionality: the history is
    /// linearizable exactly when every partition is), as lists of operation indices that
    /// together name every operation exactly once. `None` keeps the history whole.
    fn partition(&self, _history: &[Operation<Self::Input, Self::Output>]) -> Option<Vec<Vec<usize>>> {
        None
    }

    /// A short name for a partition, for humans (e.g. `key "3"`); `ops` are the indices of
    /// its operations in `history`.
    fn describe_partition(&self, _history: &[Operation<Self::Input, Self::Output>], _ops: &[usize]) -> String {
        String::new()
    }

    /// Whether the operation never changes the state (`step` gives back the state it was
    /// given, or `None`). The search then takes it as soon as it is legal, without trying
    /// alternatives — a sound pruning that keeps many concurrent reads of one value cheap.
    /// Say `true` only when that holds for every state and output.
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }

    /// An operation for humans, e.g. `get("x") -> "y"`; `output` is `None` when the
    /// result is unknown.
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    /// A state for humans.
    fn describe_state(&self, state: &Self::State) -> String;
}
