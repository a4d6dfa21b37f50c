//! The search's two tables: interned model states and Lowe's cache of visited configurations.
//!
//! States are interned once and named by a `u32`, so a configuration (set of linearized
//! operations, state) is a bitset plus an integer: comparing two is a few word compares,
//! however big the model state is, and each distinct state is stored once.
//!
//! Both tables are open-addressed with linear probing, and a slot's first word packs the
//! high 32 bits of the key's hash (which also choose the slot) with a 32-bit name plus one
//! (zero = empty): a probe rejects most non-matches with one compare, and growing needs no
//! rehashing of the keys.

use std::hash::Hash;

use super::hash::{fmix64, hash_of};

const EMPTY: u64 = 0;

#[inline]
fn slot_of(hash: u64, index: usize) -> u64 {
    debug_assert!(index < u32::MAX as usize, "table index {index} overflows a slot");
    (hash & 0xffff_ffff_0000_0000) | (index as u64 + 1)
}

#[inline]
fn slot_index(slot: u64) -> usize {
    (slot & 0xffff_ffff) as usize - 1
}

#[inline]
fn home(hash_hi: u64, mask: usize) -> usize {
    ((hash_hi >> 32) as usize) & mask
}

/// Slot array shared by both tables.
#[derive(Debug)]
struct Slots {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

impl Slots {
    fn with_capacity(entries: usize) -> Self {
        let cap = (entries * 2).next_power_of_two().max(16);
        Slots { slots: vec![EMPTY; cap], mask: cap - 1, len: 0 }
    }

    /// Keeps the load at most 5/8 so that probe chains stay short.
    #[inline]
    fn reserve_one(&mut self) {
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let mask = cap - 1;
        let mut slots = vec![EMPTY; cap];
        for &s in self.slots.iter().filter(|&&s| s != EMPTY) {
            let mut pos = home(s, mask);
            while slots[pos] != EMPTY {
                pos = (pos + 1) & mask;
            }
            slots[pos] = s;
        }
        self.slots = slots;
        self.mask = mask;
    }
}

/// Every distinct model state the search reached, each stored once.
#[derive(Debug)]
pub(crate) struct StateArena<S> {
    states: Vec<S>,
    slots: Slots,
}

impl<S: Eq + Hash> StateArena<S> {
    /// An arena holding `init` as state 0.
    pub(crate) fn new(init: S) -> Self {
        let mut arena = StateArena { states: Vec::new(), slots: Slots::with_capacity(16) };
        let id = arena.intern(init, None);
        assert_eq!(id, 0);
        arena
    }

    /// The state named `id`.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &S {
        &self.states[id as usize]
    }

    /// The name of `state`, adding it if new. `same_as` is a state the caller expects it
    /// to equal (the one stepped from: reads leave it unchanged); checking that first
    /// skips hashing in the common case.
    #[inline]
    pub(crate) fn intern(&mut self, state: S, same_as: Option<u32>) -> u32 {
        if let Some(id) = same_as {
            if self.states[id as usize] == state {
                return id;
            }
        }
        let hash = hash_of(&state);
        let mut pos = home(hash, self.slots.mask);
        loop {
            let s = self.slots.slots[pos];
            if s == EMPTY {
                break;
            }
            if (s ^ hash) >> 32 == 0 && self.states[slot_index(s)] == state {
                return slot_index(s) as u32;
            }
            pos = (pos + 1) & self.slots.mask;
        }
        let id = self.states.len();
        assert!(id < u32::MAX as usize - 1, "more than 2^32 distinct model states");
        self.slots.slots[pos] = slot_of(hash, id);
        self.slots.len += 1;
        self.states.push(state);
        self.slots.reserve_one();
        id as u32
    }

    /// Number of distinct states.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }
}

/// Lowe's cache: the configurations (linearized set, state) already explored.
///
/// Keys live inline in one flat array, `1 + stride` words per slot: the first word packs
/// the high 32 bits of the key's hash with the state's name plus one (zero = empty), the
/// rest is the set. A lookup thus touches one place in memory, and a single compare of
/// the first word rejects nearly every non-match.
#[derive(Debug)]
pub(crate) struct MemoTable {
    stride: usize,
    table: Vec<u64>,
    mask: usize,
    len: usize,
}

/// Equality of two short word slices, without a call to `memcmp`.
#[inline]
fn same_words(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl MemoTable {
    const INITIAL_SLOTS: usize = 64;

    /// An empty cache for sets of `stride` words.
    pub(crate) fn new(stride: usize) -> Self {
        assert!(stride > 0, "sets have at least one word");
        MemoTable {
            stride,
            table: vec![EMPTY; Self::INITIAL_SLOTS * (stride + 1)],
            mask: Self::INITIAL_SLOTS - 1,
            len: 0,
        }
    }

    /// Records the configuration; false when it was already there.
    #[inline]
    pub(crate) fn insert(&mut self, set: &[u64], set_hash: u64, state: u32) -> bool {
        debug_assert_eq!(set.len(), self.stride);
        assert!(state < u32::MAX, "state names fit in 32 bits with room for the empty mark");
        let hash = fmix64(set_hash ^ (u64::from(state) + 1).wrapping_mul(0xd6e8_feb8_6659_fd93));
        let tag = (hash & 0xffff_ffff_0000_0000) | (u64::from(state) + 1);
        let width = self.stride + 1;
        let mut pos = home(hash, self.mask);
        loop {
            let base = pos * width;
            let head = self.table[base];
            if head == EMPTY {
                self.table[base] = tag;
                self.table[base + 1..base + width].copy_from_slice(set);
                self.len += 1;
                // Keep the load at most 7/10 so that probe runs stay short.
                if self.len * 10 > (self.mask + 1) * 7 {
                    self.grow();
                }
                return true;
            }
            if head == tag && same_words(&self.table[base + 1..base + width], set) {
                return false;
            }
            pos = (pos + 1) & self.mask;
        }
    }

    fn grow(&mut self) {
        let width = self.stride + 1;
        let slots = (self.mask + 1) * 2;
        let mask = slots - 1;
        let mut table = vec![EMPTY; slots * width];
        for entry in self.table.chunks_exact(width).filter(|e| e[0] != EMPTY) {
            let mut pos = home(entry[0], mask);
            while table[pos * width] != EMPTY {
                pos = (pos + 1) & mask;
            }
            table[pos * width..(pos + 1) * width].copy_from_slice(entry);
        }
        self.table = table;
        self.mask = mask;
    }

    /// Number of configurations recorded.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.table.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_interned_once() {
        let mut arena = StateArena::new(String::new());
        let a = arena.intern("a".to_string(), Some(0));
        let b = arena.intern("b".to_string(), None);
        assert_eq!((a, b), (1, 2));
        assert_eq!(arena.intern(String::new(), None), 0);
        assert_eq!(arena.intern("a".to_string(), Some(2)), 1);
        for i in 0..1000 {
            arena.intern(i.to_string(), None);
        }
        assert_eq!(arena.intern("a".to_string(), None), 1);
        assert_eq!(arena.get(1), "a");
        assert_eq!(arena.len(), 3 + 1000);
    }

    #[test]
    fn memo_distinguishes_sets_and_states() {
        let mut memo = MemoTable::new(2);
        assert!(memo.insert(&[1, 0], 11, 0));
        assert!(!memo.insert(&[1, 0], 11, 0));
        assert!(memo.insert(&[1, 0], 11, 1));
        // Same hash, different set: must not be confused.
        assert!(memo.insert(&[2, 0], 11, 0));
        for i in 0..5000u64 {
            assert!(memo.insert(&[i, 7], i.wrapping_mul(31), 3));
        }
        for i in 0..5000u64 {
            assert!(!memo.insert(&[i, 7], i.wrapping_mul(31), 3));
        }
        assert_eq!(memo.len(), 5003);
        assert!(memo.bytes() >= 5003 * 24);
    }
}
