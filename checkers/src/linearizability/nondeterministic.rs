//! Nondeterministic specifications: a step may lead to several states (a write that may be
//! lost, a queue that may hand out any of its elements), checked through the power-set
//! construction, as Porcupine's `NondeterministicModel.ToModel` does.
//!
//! [`PowerSet`] turns a [`NondeterministicModel`] into a [`Model`] whose state is the set of
//! states the specification may be in ([`StateSet`]): a step maps every member and keeps the
//! distinct results, and is illegal when none remains. A history is linearizable under the
//! nondeterministic model exactly when it is under the power-set model: some order and some
//! choice at every step accept it exactly when the set of states reachable along that order
//! never becomes empty.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::hash::hash_of;
use super::history::Operation;
use super::model::Model;

/// A sequential specification whose step may lead to several states.
pub trait NondeterministicModel {
    /// What a client asks.
    type Input;
    /// What a client is told.
    type Output;
    /// The specification's state. `Eq` and `Hash` identify equal states (see [`StateSet`]).
    type State: Clone + Eq + Hash;

    /// The states before any operation (at least one).
    fn init(&self) -> Vec<Self::State>;

    /// Every state `input` may lead to from `state` while producing `output` (`None`:
    /// unknown, any output); empty when the specification does not allow it. Must be a
    /// pure function.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Vec<Self::State>;

    /// As [`Model::partition`].
    fn partition(&self, _history: &[Operation<Self::Input, Self::Output>]) -> Option<Vec<Vec<usize>>> {
        None
    }

    /// As [`Model::describe_partition`].
    fn describe_partition(&self, _history: &[Operation<Self::Input, Self::Output>], _ops: &[usize]) -> String {
        String::new()
    }

    /// As [`Model::equivalent`]: interchangeable operations lead to the same sets of
    /// states in every state.
    fn equivalent(
        &self,
        _a: &Self::Input,
        _a_output: Option<&Self::Output>,
        _b: &Self::Input,
        _b_output: Option<&Self::Output>,
    ) -> bool {
        false
    }

    /// As [`Model::describe_operation`].
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    /// As [`Model::describe_state`], for one state.
    fn describe_state(&self, state: &Self::State) -> String;
}

/// A set of states: distinct members, kept in a canonical order (by a fixed hash, and in
/// order of discovery among equal hashes) and compared as a set. Cloning shares it.
#[derive(Clone, Debug)]
pub struct StateSet<S> {
    members: Arc<[S]>,
    /// Combined (order-independent) hash of the members.
    hash: u64,
}

impl<S: Eq + Hash> StateSet<S> {
    /// The distinct members of `states`; `None` when there are none.
    pub fn new(states: Vec<S>) -> Option<Self> {
        let mut keyed: Vec<(u64, S)> = Vec::with_capacity(states.len());
        for s in states {
            let h = hash_of(&s);
            if !keyed.iter().any(|(k, t)| *k == h && *t == s) {
                keyed.push((h, s));
            }
        }
        if keyed.is_empty() {
            return None;
        }
        keyed.sort_by_key(|(h, _)| *h);
        let hash = keyed.iter().fold(0u64, |acc, (h, _)| acc.wrapping_add(super::hash::fmix64(*h)));
        Some(StateSet { members: keyed.into_iter().map(|(_, s)| s).collect(), hash })
    }

    /// The members.
    pub fn members(&self) -> &[S] {
        &self.members
    }
}

impl<S: Eq + Hash> PartialEq for StateSet<S> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.members, &other.members)
            || (self.hash == other.hash
                && self.members.len() == other.members.len()
                && self.members.iter().all(|s| other.members.contains(s)))
    }
}

impl<S: Eq + Hash> Eq for StateSet<S> {}

impl<S> Hash for StateSet<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The power-set construction: `PowerSet(model)` checks histories against a
/// [`NondeterministicModel`] (see the module's documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct PowerSet<N>(pub N);

impl<N: NondeterministicModel> Model for PowerSet<N> {
    type Input = N::Input;
    type Output = N::Output;
    type State = StateSet<N::State>;

    fn init(&self) -> Self::State {
        StateSet::new(self.0.init()).expect("a nondeterministic model starts in at least one state")
    }

    fn step(&self, state: &Self::State, input: &N::Input, output: Option<&N::Output>) -> Option<Self::State> {
        let next: Vec<N::State> = state.members.iter().flat_map(|s| self.0.step(s, input, output)).collect();
        StateSet::new(next)
    }

    fn partition(&self, history: &[Operation<N::Input, N::Output>]) -> Option<Vec<Vec<usize>>> {
        self.0.partition(history)
    }

    fn describe_partition(&self, history: &[Operation<N::Input, N::Output>], ops: &[usize]) -> String {
        self.0.describe_partition(history, ops)
    }

    fn equivalent(&self, a: &N::Input, ao: Option<&N::Output>, b: &N::Input, bo: Option<&N::Output>) -> bool {
        self.0.equivalent(a, ao, b, bo)
    }

    fn state_bytes(&self, state: &Self::State) -> usize {
        state.members.len() * std::mem::size_of::<N::State>()
    }

    fn describe_operation(&self, input: &N::Input, output: Option<&N::Output>) -> String {
        self.0.describe_operation(input, output)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        let members: Vec<String> = state.members.iter().map(|s| self.0.describe_state(s)).collect();
        format!("{{{}}}", members.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_sets() {
        let a = StateSet::new(vec![3, 1, 3, 2]).unwrap();
        let b = StateSet::new(vec![2, 3, 1]).unwrap();
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(a.members().len(), 3);
        assert_ne!(a, StateSet::new(vec![1, 2]).unwrap());
        assert_ne!(a, StateSet::new(vec![1, 2, 4]).unwrap());
        assert!(StateSet::<u8>::new(vec![]).is_none());
    }
}
