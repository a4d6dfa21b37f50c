//! The search's two tables: interned model states and Lowe's cache of visited configurations,
//! both counting the bytes they hold for the checker's memory budget.
//!
//! States are interned once and named by a `u32`, so a configuration (set of linearized
//! operations, state) is a short key plus an integer: comparing two is a few word compares,
//! however big the model state is, and each distinct state is stored once.
//!
//! Both tables are open-addressed with linear probing. The cache is split into
//! [`SEGMENTS`] segments chosen by the key's hash, each growing on its own: a growth copies
//! one segment (a 64th of the table), so the table never pauses to copy itself whole, and
//! while it grows it holds at most one extra segment rather than a second, larger table.
//! Growing is refused, not done, when it would pass the caller's byte allowance, so the
//! search can stop at a deterministic point with everything it holds counted.

use std::hash::Hash;

use super::hash::hash_of;

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

/// The memory the search would need beyond its allowance: the search stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutOfMemory;

/// Every distinct model state the search reached, each stored once.
#[derive(Debug)]
pub(crate) struct StateArena<S> {
    states: Vec<S>,
    /// Per state: its hash (the one the slots are keyed by).
    hashes: Vec<u64>,
    slots: Vec<u64>,
    mask: usize,
    /// Heap bytes the states hold beyond their own size (as the model reports them).
    heap_bytes: usize,
}

impl<S: Eq + Hash> StateArena<S> {
    const INITIAL_SLOTS: usize = 16;

    /// An arena holding `init` as state 0, which holds `init_bytes` of heap, with room for
    /// `expected` states before it first grows (the search passes its partition's number of
    /// operations, which bounds the states on any one path; capped at 2^16, so a long
    /// partition whose states repeat does not hold a large table for nothing).
    pub(crate) fn new(init: S, init_bytes: usize, expected: usize) -> Self {
        let expected = expected.clamp(Self::INITIAL_SLOTS / 2, 1 << 16);
        // Slots for a load of at most 5/8 (see `intern`).
        let slots = (expected * 8 / 5 + 1).next_power_of_two();
        let mut arena = StateArena {
            states: Vec::with_capacity(expected),
            hashes: Vec::with_capacity(expected),
            slots: vec![EMPTY; slots],
            mask: slots - 1,
            heap_bytes: 0,
        };
        let hash = hash_of(&init);
        let id = arena.intern(init, hash, None, init_bytes, || usize::MAX);
        assert_eq!(id, Ok(0));
        arena
    }

    /// The state named `id`.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> &S {
        &self.states[id as usize]
    }

    /// The hash of the state named `id` (`hash::hash_of` of it).
    #[inline]
    pub(crate) fn hash(&self, id: u32) -> u64 {
        self.hashes[id as usize]
    }

    /// The name of `state`, whose `hash_of` is `hash`, adding it if new (with `heap` bytes
    /// of its own) unless the arena would then hold more than `limit()` bytes (asked only
    /// then). `same_as` is a state the caller expects it to equal (the one stepped from:
    /// reads leave it unchanged); checking that first skips the table.
    #[inline]
    pub(crate) fn intern(
        &mut self,
        state: S,
        hash: u64,
        same_as: Option<u32>,
        heap: usize,
        limit: impl FnOnce() -> usize,
    ) -> Result<u32, OutOfMemory> {
        debug_assert_eq!(hash, hash_of(&state));
        if let Some(id) = same_as {
            if self.hashes[id as usize] == hash && self.states[id as usize] == state {
                return Ok(id);
            }
        }
        let mut pos = home(hash, self.mask);
        loop {
            let s = self.slots[pos];
            if s == EMPTY {
                break;
            }
            if (s ^ hash) >> 32 == 0 && self.states[slot_index(s)] == state {
                return Ok(slot_index(s) as u32);
            }
            pos = (pos + 1) & self.mask;
        }
        let id = self.states.len();
        assert!(id < u32::MAX as usize - 1, "more than 2^32 distinct model states");
        // What adding it may cost: its heap, a doubled state list, a doubled slot array.
        let mut growth = heap;
        if self.states.len() == self.states.capacity() {
            growth += self.states.capacity().max(4) * (std::mem::size_of::<S>() + 8);
        }
        let grows = (id + 2) * 8 > self.slots.len() * 5;
        if grows {
            growth += self.slots.len() * 2 * 8;
        }
        if self.bytes().saturating_add(growth) > limit() {
            return Err(OutOfMemory);
        }
        self.slots[pos] = slot_of(hash, id);
        self.states.push(state);
        self.hashes.push(hash);
        self.heap_bytes += heap;
        // Keep the load at most 5/8 so that probe chains stay short.
        if grows {
            self.grow();
        }
        Ok(id as u32)
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

    /// Number of distinct states.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Bytes held: the state list and hashes, the slots, and the states' own heap.
    pub(crate) fn bytes(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<S>()
            + self.hashes.capacity() * 8
            + self.slots.len() * 8
            + self.heap_bytes
    }
}

/// Segments with fewer slots than this grow fourfold (filling a small segment copies its
/// entries fewer times), larger ones twofold (so a table is at least 35 % full: fourfold
/// growth left large tables as little as 17 % full, memory the search held for nothing).
const GROW_FOURFOLD_BELOW: usize = 512;

/// Segments of the cache (a power of two): the top bits of a key's hash choose one.
pub(crate) const SEGMENTS: usize = 64;
const SEGMENT_SHIFT: u32 = 64 - SEGMENTS.trailing_zeros();

/// Lowe's cache: the configurations (linearized set, state) already explored.
///
/// A key is `width` words: the first packs the high 32 bits of the key's hash with the
/// state's name plus one (so it is never zero, which marks an empty slot); the rest
/// describe the set (see `search`). Keys live inline, so a lookup touches one place in
/// memory, and the first word alone rejects nearly every non-match. The top bits of the
/// hash choose the segment, the bits below them the slot.
#[derive(Debug)]
pub(crate) struct MemoTable {
    width: usize,
    /// Slots a segment gets when first used.
    first_slots: usize,
    segments: Vec<Segment>,
    len: usize,
    /// Bytes held by all segments.
    bytes: usize,
}

#[derive(Debug)]
struct Segment {
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
    const INITIAL_SLOTS: usize = 8;
    /// The most slots a segment starts with (when the partition is long).
    const MAX_FIRST_SLOTS: usize = 1024;
    /// Segments with fewer slots than this grow fourfold, larger ones twofold.
    const FOURFOLD_BELOW: usize = GROW_FOURFOLD_BELOW;

    /// An empty cache for keys of `width` words (at least two), for a partition of
    /// `expected` operations. Segments get their first slots when first used, so a small
    /// partition holds little; they start with room for the partition's operations (a
    /// linearizable partition records at least one configuration per operation) spread
    /// over the segments, so that a long partition does not grow every segment from 8 slots.
    pub(crate) fn new(width: usize, expected: usize) -> Self {
        assert!(width >= 2, "a key has a hash and state word and at least one more");
        let segments: Vec<Segment> = (0..SEGMENTS).map(|_| Segment { table: Vec::new(), mask: 0, len: 0 }).collect();
        // At most 7/10 full (see `insert`).
        let first = (expected.div_ceil(SEGMENTS) * 10 / 7 + 1)
            .next_power_of_two()
            .clamp(Self::INITIAL_SLOTS, Self::MAX_FIRST_SLOTS);
        MemoTable { width, len: 0, bytes: 0, segments, first_slots: first }
    }

    /// Reads the slot where a key of hash `hash` would start its probe, so that the memory is
    /// on its way while the caller does something else (interns the state, say).
    #[inline]
    pub(crate) fn touch(&self, hash: u64) {
        let seg = &self.segments[(hash >> SEGMENT_SHIFT) as usize];
        if !seg.table.is_empty() {
            std::hint::black_box(seg.table[home(hash, seg.mask) * self.width]);
        }
    }

    /// The first word of a key: the high half of `hash`, and `state` plus one.
    #[inline]
    pub(crate) fn head(hash: u64, state: u32) -> u64 {
        (hash & 0xffff_ffff_0000_0000) | (u64::from(state) + 1)
    }

    /// Records the configuration `key` (whose first word is [`MemoTable::head`]); `Ok(false)`
    /// when it was already there, `Err` when recording it would make the table hold more
    /// than `limit()` bytes (asked only when it must grow; then nothing is recorded).
    #[inline]
    pub(crate) fn insert(&mut self, key: &[u64], limit: impl Fn() -> usize) -> Result<bool, OutOfMemory> {
        debug_assert_eq!(key.len(), self.width);
        let width = self.width;
        let head = key[0];
        let seg = &mut self.segments[(head >> SEGMENT_SHIFT) as usize];
        if seg.table.is_empty() {
            let bytes = self.first_slots * width * 8;
            if self.bytes + bytes > limit() {
                return Err(OutOfMemory);
            }
            seg.table = vec![EMPTY; self.first_slots * width];
            seg.mask = self.first_slots - 1;
            self.bytes += bytes;
        }
        let mut pos = home(head, seg.mask);
        loop {
            let base = pos * width;
            let there = seg.table[base];
            if there == EMPTY {
                break;
            }
            if there == head && same_words(&seg.table[base + 1..base + width], &key[1..]) {
                return Ok(false);
            }
            pos = (pos + 1) & seg.mask;
        }
        // Keep each segment's load at most 7/10 so that probe runs stay short; small
        // segments grow fourfold (see `GROW_FOURFOLD_BELOW`).
        let grows = (seg.len + 1) * 10 > (seg.mask + 1) * 7;
        let factor = if seg.mask + 1 < Self::FOURFOLD_BELOW { 4 } else { 2 };
        if grows && self.bytes + (seg.mask + 1) * factor * width * 8 > limit() {
            return Err(OutOfMemory);
        }
        let base = pos * width;
        seg.table[base..base + width].copy_from_slice(key);
        seg.len += 1;
        self.len += 1;
        if grows {
            let old = seg.table.len() * 8;
            seg.grow(width, factor);
            self.bytes = self.bytes - old + seg.table.len() * 8;
        }
        Ok(true)
    }

    /// Number of configurations recorded.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Segment {
    fn grow(&mut self, width: usize, factor: usize) {
        let slots = (self.mask + 1) * factor;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_interned_once() {
        let mut arena = StateArena::new(String::new(), 0, 0);
        let intern = |arena: &mut StateArena<String>, s: &str, same_as, heap, limit: usize| {
            arena.intern(s.to_string(), hash_of(&s.to_string()), same_as, heap, || limit)
        };
        let a = intern(&mut arena, "a", Some(0), 1, usize::MAX).unwrap();
        let b = intern(&mut arena, "b", None, 1, usize::MAX).unwrap();
        assert_eq!((a, b), (1, 2));
        assert_eq!(intern(&mut arena, "", None, 0, usize::MAX), Ok(0));
        assert_eq!(intern(&mut arena, "a", Some(2), 1, usize::MAX), Ok(1));
        for i in 0..1000 {
            intern(&mut arena, &i.to_string(), None, 3, usize::MAX).unwrap();
        }
        assert_eq!(intern(&mut arena, "a", None, 1, usize::MAX), Ok(1));
        assert_eq!(arena.hash(1), hash_of(&"a".to_string()));
        assert_eq!(arena.get(1), "a");
        assert_eq!(arena.len(), 3 + 1000);
        assert!(arena.bytes() >= 1003 * std::mem::size_of::<String>() + 3002);
        // Refused, not added, past the room; a state already there is still found.
        let held = arena.bytes();
        assert_eq!(intern(&mut arena, "new", None, 10_000, held + 9_999), Err(OutOfMemory));
        assert_eq!(intern(&mut arena, "a", None, 1, 0), Ok(1));
        assert_eq!(arena.len(), 1003);
    }

    fn key(i: u64, state: u32, set: u64) -> [u64; 3] {
        [MemoTable::head(crate::linearizability::hash::fmix64(i), state), set, !set]
    }

    #[test]
    fn memo_distinguishes_keys_and_grows_by_segment() {
        let mut memo = MemoTable::new(3, 0);
        assert_eq!(memo.insert(&key(1, 0, 1), || usize::MAX), Ok(true));
        assert_eq!(memo.insert(&key(1, 0, 1), || usize::MAX), Ok(false));
        assert_eq!(memo.insert(&key(1, 1, 1), || usize::MAX), Ok(true));
        // Same hash and state, different set: must not be confused.
        assert_eq!(memo.insert(&key(1, 0, 2), || usize::MAX), Ok(true));
        for i in 0..50_000u64 {
            assert_eq!(memo.insert(&key(i + 7, 3, i), || usize::MAX), Ok(true));
        }
        for i in 0..50_000u64 {
            assert_eq!(memo.insert(&key(i + 7, 3, i), || usize::MAX), Ok(false));
        }
        assert_eq!(memo.len(), 50_003);
        let counted: usize = memo.segments.iter().map(|s| s.table.len() * 8).sum();
        assert_eq!(memo.bytes(), counted);
        assert!(memo.bytes() >= 50_003 * 24 && memo.bytes() < 50_003 * 24 * 4, "{}", memo.bytes());
        // A growth that would pass the allowance is refused and records nothing.
        let mut refused = 0;
        for i in 0..100_000u64 {
            match memo.insert(&key(i + 1_000_000, 3, i), || counted) {
                Ok(true) => {}
                Ok(false) => unreachable!("new keys"),
                Err(OutOfMemory) => refused += 1,
            }
        }
        assert!(refused > 0 && memo.bytes() == counted, "no segment grew");
    }
}
