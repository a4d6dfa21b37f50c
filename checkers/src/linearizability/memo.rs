//! The search's two tables: interned model states and Lowe's cache of visited configurations,
//! both counting the bytes they hold for the checker's memory budget.
//!
//! States are interned once and named by a `u32`, so a configuration (set of linearized
//! operations, state) is a short key plus an integer: comparing two is a few word compares,
//! however big the model state is, and each distinct state is stored once.
//!
//! Both tables are open-addressed with linear probing ([`SegmentedTable`]), split into
//! [`SEGMENTS`] segments chosen by the top bits of the key's hash, each growing on its own:
//! a growth copies one segment (a 64th of the table: tens of kilobytes for tables of a few
//! megabytes, copied inside the processor's cache), so the table never copies itself whole,
//! and while it grows it holds at most one extra segment rather than a second, larger
//! table. The states themselves, and the tracker's nodes (see `search`), live in
//! [`Blocks`]: lists that grow by whole blocks and never move what they hold, so that
//! growing one copies nothing. Growing is refused, not done, when it would pass the
//! caller's byte allowance, so the search can stop at a deterministic point with everything
//! it holds counted.

use std::hash::Hash;

use super::hash::hash_of;

const EMPTY: u64 = 0;

/// The first word of a state's slot: the high half of its hash, and its name plus one.
#[inline]
fn slot_of(hash: u64, index: usize) -> u64 {
    debug_assert!(index < u32::MAX as usize, "table index {index} overflows a slot");
    (hash & 0xffff_ffff_0000_0000) | (index as u64 + 1)
}

#[inline]
fn slot_index(slot: u64) -> usize {
    (slot & 0xffff_ffff) as usize - 1
}

/// Where an entry whose first word is `head` starts its probe in a segment of `mask + 1`
/// slots: the bits just above the low half (the segment is chosen by the top bits).
#[inline]
fn home(head: u64, mask: usize) -> usize {
    ((head >> 32) as usize) & mask
}

/// The memory the search would need beyond its allowance: the search stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutOfMemory;

/// Segments of both tables (a power of two): the top bits of an entry's first word choose
/// one.
pub(crate) const SEGMENTS: usize = 64;
const SEGMENT_SHIFT: u32 = 64 - SEGMENTS.trailing_zeros();

/// Segments with fewer slots than this grow fourfold (filling a small segment copies its
/// entries fewer times), larger ones twofold (so a table is at least 35 % full: fourfold
/// growth left large tables as little as 17 % full, memory the search held for nothing).
const GROW_FOURFOLD_BELOW: usize = 512;

/// The most slots a segment starts with (when the partition is long).
const MAX_FIRST_SLOTS: usize = 1024;

/// The fewest slots a segment starts with.
const MIN_FIRST_SLOTS: usize = 8;

/// An open-addressed table of entries of `W` words (`W == 0`: of the width given at run
/// time), in [`SEGMENTS`] segments that each grow on their own (see the module's
/// documentation). An entry's first word, its *head*, is never zero (zero marks an empty
/// slot); its top bits choose the segment, the bits of its high half below those the slot
/// where its probe starts. A fixed `W` lets the compiler see each entry's length, so the
/// common narrow tables (states: one word; packed keys: two) index without run-time widths.
#[derive(Debug)]
struct SegmentedTable<const W: usize> {
    /// Words an entry (`W`, or the run-time width when `W == 0`).
    width: usize,
    /// Slots a segment gets when first used.
    first_slots: usize,
    /// A segment grows when an insertion would make it more than `load.0 / load.1` full.
    load: (usize, usize),
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
    /// The most entries it holds before it grows (zero while it has no slots, so that the
    /// first insertion takes the growing path, which gives it its first slots).
    grow_at: usize,
}

/// Where an entry that is not in a [`SegmentedTable`] goes.
#[derive(Clone, Copy, Debug)]
struct Vacant {
    segment: usize,
    /// The empty slot the probe ended at (meaningless while the segment has no slots).
    pos: usize,
    /// Whether an entry put there makes the segment grow (or get its first slots).
    grows: bool,
}

impl<const W: usize> SegmentedTable<W> {
    /// An empty table for entries of `width` words (`W` unless that is zero), kept at most
    /// `load.0 / load.1` full, whose segments start with room for about `expected` entries
    /// in all (between [`MIN_FIRST_SLOTS`] and [`MAX_FIRST_SLOTS`] slots each).
    fn new(width: usize, expected: usize, load: (usize, usize)) -> Self {
        assert!(width >= 1 && (W == 0 || W == width), "entries of {W} words cannot be {width} wide");
        assert!(load.0 < load.1, "a table keeps empty slots");
        let first = (expected.div_ceil(SEGMENTS) * load.1 / load.0 + 1)
            .next_power_of_two()
            .clamp(MIN_FIRST_SLOTS, MAX_FIRST_SLOTS);
        // The first insertion into a new segment never makes it grow.
        assert!(load.1 < first * load.0, "a segment's first slots hold at least one entry");
        SegmentedTable {
            width,
            first_slots: first,
            load,
            segments: (0..SEGMENTS).map(|_| Segment { table: Vec::new(), mask: 0, len: 0, grow_at: 0 }).collect(),
            len: 0,
            bytes: 0,
        }
    }

    #[inline]
    fn width(&self) -> usize {
        if W == 0 {
            self.width
        } else {
            W
        }
    }

    #[inline]
    fn segment_of(head: u64) -> usize {
        (head >> SEGMENT_SHIFT) as usize
    }

    /// Reads the slot where a probe for `head` starts, so that the memory is on its way
    /// while the caller does something else.
    #[inline]
    fn touch(&self, head: u64) {
        let seg = &self.segments[Self::segment_of(head)];
        if !seg.table.is_empty() {
            prefetch(&seg.table[home(head, seg.mask) * self.width()]);
        }
    }

    /// The head of the entry met on the probe for `head` whose head `same_head` accepts and
    /// whose whole entry `matches` then accepts (the head alone rejects nearly every other
    /// entry, without building a slice), or where such an entry would go.
    #[inline]
    fn probe(
        &self,
        head: u64,
        same_head: impl Fn(u64) -> bool,
        mut matches: impl FnMut(&[u64]) -> bool,
    ) -> Result<u64, Vacant> {
        debug_assert_ne!(head, EMPTY, "a head is never zero");
        let segment = Self::segment_of(head);
        let seg = &self.segments[segment];
        if seg.table.is_empty() {
            return Err(Vacant { segment, pos: 0, grows: true });
        }
        let width = self.width();
        let mut pos = home(head, seg.mask);
        loop {
            // Cannot wrap: `pos` is a slot of a table held in memory (and indexing checks).
            let base = pos.wrapping_mul(width);
            let there = seg.table[base];
            if there == EMPTY {
                return Err(Vacant { segment, pos, grows: seg.len >= seg.grow_at });
            }
            if same_head(there) && matches(&seg.table[base..base + width]) {
                return Ok(there);
            }
            pos = (pos + 1) & seg.mask;
        }
    }

    /// Bytes that inserting at `vacant` would add to what the table holds at its peak: a
    /// new segment's first slots, or a growing segment's new slots (held beside the old
    /// ones while they are copied); zero when the segment has room.
    #[inline]
    fn growth(&self, vacant: Vacant) -> usize {
        if !vacant.grows {
            return 0;
        }
        self.growth_of(vacant.segment)
    }

    #[cold]
    fn growth_of(&self, segment: usize) -> usize {
        let seg = &self.segments[segment];
        let slots = if seg.table.is_empty() { self.first_slots } else { (seg.mask + 1) * Self::factor(seg.mask + 1) };
        slots * self.width() * 8
    }

    /// How many times larger a segment of `slots` slots grows.
    #[inline]
    fn factor(slots: usize) -> usize {
        if slots < GROW_FOURFOLD_BELOW {
            4
        } else {
            2
        }
    }

    /// Puts the entry `head` followed by `rest` (`head` being the one `vacant` was probed
    /// for) at `vacant`, growing its segment when it would pass its load (the caller checked
    /// [`SegmentedTable::growth`] against its allowance).
    #[inline(always)]
    fn insert_at(&mut self, vacant: Vacant, head: u64, rest: &[u64]) {
        let width = self.width();
        debug_assert_eq!(rest.len() + 1, width);
        if vacant.grows {
            return self.insert_growing(vacant.segment, head, rest);
        }
        let seg = &mut self.segments[vacant.segment];
        debug_assert!(seg.len < seg.grow_at);
        write_entry(&mut seg.table[vacant.pos * width..vacant.pos * width + width], head, rest);
        seg.len += 1;
        self.len += 1;
    }

    /// [`SegmentedTable::insert_at`] into a segment without slots or at its load: first
    /// slots, or the entry and then a larger table.
    #[cold]
    #[inline(never)]
    fn insert_growing(&mut self, segment: usize, head: u64, rest: &[u64]) {
        let width = self.width();
        let (first, load) = (self.first_slots, self.load);
        let seg = &mut self.segments[segment];
        let old = seg.table.len() * 8;
        if seg.table.is_empty() {
            seg.resize::<W>(width, first, load);
            seg.put::<W>(width, head, rest);
        } else {
            seg.put::<W>(width, head, rest);
            let slots = (seg.mask + 1) * Self::factor(seg.mask + 1);
            seg.resize::<W>(width, slots, load);
        }
        debug_assert!(seg.len <= seg.grow_at);
        self.bytes = self.bytes - old + seg.table.len() * 8;
        self.len += 1;
    }
}

/// Asks the processor to start loading `word`'s cache line into its caches, and goes on
/// without waiting for it (a plain read would hold the instructions after it from retiring
/// until the line arrives).
#[inline(always)]
fn prefetch(word: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint to the cache: it never faults, reads nothing the program
    // sees and changes no state of the program (the address is a live reference's anyway).
    // SSE, which provides it, is part of every x86_64 processor.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((word as *const u64).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::hint::black_box(*word);
}

/// Writes the entry `head` followed by `rest` into `to`; the common narrow entries without
/// a call to `memcpy`.
#[inline(always)]
fn write_entry(to: &mut [u64], head: u64, rest: &[u64]) {
    match (to, rest) {
        ([a, b], [y]) => {
            *a = head;
            *b = *y;
        }
        ([a], []) => *a = head,
        (to, rest) => {
            to[0] = head;
            to[1..].copy_from_slice(rest);
        }
    }
}

impl Segment {
    /// Adds the entry `head` followed by `rest` (absent) at the end of its probe run, without
    /// growing.
    #[inline]
    fn put<const W: usize>(&mut self, width: usize, head: u64, rest: &[u64]) {
        let width = if W == 0 { width } else { W };
        let mut pos = home(head, self.mask);
        while self.table[pos * width] != EMPTY {
            pos = (pos + 1) & self.mask;
        }
        write_entry(&mut self.table[pos * width..pos * width + width], head, rest);
        self.len += 1;
    }

    /// Moves the entries into a table of `slots` slots (a power of two), kept at most
    /// `load.0 / load.1` full.
    fn resize<const W: usize>(&mut self, width: usize, slots: usize, load: (usize, usize)) {
        let width = if W == 0 { width } else { W };
        let old = std::mem::replace(&mut self.table, vec![EMPTY; slots * width]);
        self.mask = slots - 1;
        self.grow_at = slots * load.0 / load.1;
        let entries = self.len;
        self.len = 0;
        for entry in old.chunks_exact(width).filter(|e| e[0] != EMPTY) {
            self.put::<W>(width, entry[0], &entry[1..]);
        }
        debug_assert_eq!(self.len, entries);
    }
}

/// Elements a full block of [`Blocks`] holds (a power of two).
const BLOCK: usize = 1 << 12;

/// A list that grows by whole blocks of [`BLOCK`] elements and never moves what it holds:
/// growing it copies nothing (only the first block grows, by doubling, up to [`BLOCK`]).
#[derive(Debug)]
pub(crate) struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
    /// Elements the blocks have room for.
    capacity: usize,
}

impl<T> Blocks<T> {
    /// An empty list with room for `first` elements (at most [`BLOCK`]) before it grows.
    pub(crate) fn with_capacity(first: usize) -> Self {
        let first = first.clamp(1, BLOCK);
        Blocks { blocks: vec![Vec::with_capacity(first)], len: 0, capacity: first }
    }

    /// The element at `index`.
    #[inline(always)]
    pub(crate) fn get(&self, index: usize) -> &T {
        &self.blocks[index / BLOCK][index % BLOCK]
    }

    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements the next growth adds: the first block doubles up to [`BLOCK`], then whole
    /// blocks are added.
    #[inline]
    fn step(&self) -> usize {
        if self.capacity < BLOCK {
            (2 * self.capacity).min(BLOCK) - self.capacity
        } else {
            BLOCK
        }
    }

    /// Bytes the next [`Blocks::push`] adds (zero when there is room).
    #[inline]
    pub(crate) fn growth(&self) -> usize {
        if self.len < self.capacity {
            0
        } else {
            self.step() * std::mem::size_of::<T>()
        }
    }

    /// Appends `value`.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: T) {
        if self.len == self.capacity {
            self.grow();
        }
        // Block boundaries are fixed (element `i` is in block `i / BLOCK`), whatever room
        // the allocator gave a block beyond what was asked.
        let block = &mut self.blocks[self.len / BLOCK];
        debug_assert!(block.len() < BLOCK && block.len() < block.capacity());
        block.push(value);
        self.len += 1;
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let step = self.step();
        if self.capacity < BLOCK {
            self.blocks[0].reserve_exact(step);
        } else {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        self.capacity += step;
    }

    /// Bytes the blocks hold.
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        self.capacity * std::mem::size_of::<T>()
    }
}

/// Every distinct model state the search reached, each stored once.
#[derive(Debug)]
pub(crate) struct StateArena<S> {
    /// Per state: the state and its hash (the one its slot is keyed by).
    states: Blocks<(S, u64)>,
    /// One-word entries: [`slot_of`] the state's hash and name.
    slots: SegmentedTable<1>,
    /// Heap bytes the states hold beyond their own size (as the model reports them).
    heap_bytes: usize,
}

impl<S: Eq + Hash> StateArena<S> {
    /// An arena holding `init` as state 0, which holds `init_bytes` of heap, with room for
    /// `expected` states before it first grows (the search passes its partition's number of
    /// operations, which bounds the states on any one path; capped at a block of states and
    /// [`MAX_FIRST_SLOTS`] slots a segment, so a long partition whose states repeat does not
    /// hold a large table for nothing).
    pub(crate) fn new(init: S, init_bytes: usize, expected: usize) -> Self {
        let expected = expected.max(MIN_FIRST_SLOTS);
        let mut arena = StateArena {
            states: Blocks::with_capacity(expected),
            // Slots at most 5/8 full, so that probe runs stay short.
            slots: SegmentedTable::new(1, expected, (5, 8)),
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
        &self.states.get(id as usize).0
    }

    /// The hash of the state named `id` (`hash::hash_of` of it).
    #[inline]
    pub(crate) fn hash(&self, id: u32) -> u64 {
        self.states.get(id as usize).1
    }

    /// Starts loading the slot where interning a state of hash `hash` looks first, so that
    /// it arrives while the caller does something else.
    #[inline]
    pub(crate) fn touch(&self, hash: u64) {
        self.slots.touch(slot_of(hash, 0));
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
            let (known, known_hash) = self.states.get(id as usize);
            if *known_hash == hash && *known == state {
                return Ok(id);
            }
        }
        let states = &self.states;
        let head = slot_of(hash, 0);
        let vacant = match self.slots.probe(
            head,
            |there| (there ^ hash) >> 32 == 0,
            |e| states.get(slot_index(e[0])).0 == state,
        ) {
            Ok(found) => return Ok(slot_index(found) as u32),
            Err(vacant) => vacant,
        };
        let id = self.states.len();
        assert!(id < u32::MAX as usize - 1, "more than 2^32 distinct model states");
        // What adding it may cost: its heap, a new block of states, a segment's new slots.
        let growth = heap + self.states.growth() + self.slots.growth(vacant);
        if self.bytes().saturating_add(growth) > limit() {
            return Err(OutOfMemory);
        }
        self.slots.insert_at(vacant, slot_of(hash, id), &[]);
        self.states.push((state, hash));
        self.heap_bytes += heap;
        Ok(id as u32)
    }

    /// Number of distinct states.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Bytes held: the states and their hashes, the slots, and the states' own heap.
    pub(crate) fn bytes(&self) -> usize {
        self.states.bytes() + self.slots.bytes + self.heap_bytes
    }
}

/// Lowe's cache: the configurations (linearized set, state) already explored.
///
/// A key is `width` words: the first packs the high 32 bits of the key's hash with the
/// state's name plus one (so it is never zero, which marks an empty slot); the rest
/// describe the set (see `search`). Keys live inline, so a lookup touches one place in
/// memory, and the first word alone rejects nearly every non-match. The top bits of the
/// hash choose the segment, the bits below them the slot.
#[derive(Debug)]
pub(crate) struct MemoTable {
    keys: Keys,
}

/// The cache's table: of two-word keys (the common case, with the width known to the
/// compiler), or of any width.
#[derive(Debug)]
enum Keys {
    Two(SegmentedTable<2>),
    Wide(SegmentedTable<0>),
}

impl MemoTable {
    /// An empty cache for keys of `width` words (at least two), for a partition of
    /// `expected` operations. Segments get their first slots when first used, so a small
    /// partition holds little; they start with room for the partition's operations (a
    /// linearizable partition records at least one configuration per operation) spread
    /// over the segments, so that a long partition does not grow every segment from 8 slots.
    pub(crate) fn new(width: usize, expected: usize) -> Self {
        assert!(width >= 2, "a key has a hash and state word and at least one more");
        // At most 7/10 full, so that probe runs stay short.
        let load = (7, 10);
        let keys = if width == 2 {
            Keys::Two(SegmentedTable::new(width, expected, load))
        } else {
            Keys::Wide(SegmentedTable::new(width, expected, load))
        };
        MemoTable { keys }
    }

    /// Reads the slot where a key of hash `hash` would start its probe, so that the memory is
    /// on its way while the caller does something else (interns the state, say).
    #[inline]
    pub(crate) fn touch(&self, hash: u64) {
        match &self.keys {
            Keys::Two(table) => table.touch(hash),
            Keys::Wide(table) => table.touch(hash),
        }
    }

    /// The first word of a key: the high half of `hash`, and `state` plus one.
    #[inline]
    pub(crate) fn head(hash: u64, state: u32) -> u64 {
        (hash & 0xffff_ffff_0000_0000) | (u64::from(state) + 1)
    }

    /// Records the configuration whose key is `head` (see [`MemoTable::head`]) followed by
    /// `rest`; `Ok(false)` when it was already there, `Err` when recording it would make
    /// the table hold more than `limit()` bytes (asked only when it must grow; then nothing
    /// is recorded).
    #[inline]
    pub(crate) fn insert(
        &mut self,
        head: u64,
        rest: &[u64],
        limit: impl FnOnce() -> usize,
    ) -> Result<bool, OutOfMemory> {
        match &mut self.keys {
            Keys::Two(table) => {
                let second = rest[0];
                record(table, head, rest, |e| e[1] == second, limit)
            }
            Keys::Wide(table) => record(table, head, rest, |e| same_words(&e[1..], rest), limit),
        }
    }

    fn table_len_bytes(&self) -> (usize, usize) {
        match &self.keys {
            Keys::Two(table) => (table.len, table.bytes),
            Keys::Wide(table) => (table.len, table.bytes),
        }
    }

    /// Number of configurations recorded.
    pub(crate) fn len(&self) -> usize {
        self.table_len_bytes().0
    }

    /// Bytes held.
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        self.table_len_bytes().1
    }
}

/// [`MemoTable::insert`] into `table`, whose entries equal to the key are those with its
/// head that `matches` accepts.
#[inline]
fn record<const W: usize>(
    table: &mut SegmentedTable<W>,
    head: u64,
    rest: &[u64],
    matches: impl FnMut(&[u64]) -> bool,
    limit: impl FnOnce() -> usize,
) -> Result<bool, OutOfMemory> {
    let Err(vacant) = table.probe(head, |there| there == head, matches) else {
        return Ok(false);
    };
    let growth = table.growth(vacant);
    if growth > 0 && table.bytes + growth > limit() {
        return Err(OutOfMemory);
    }
    table.insert_at(vacant, head, rest);
    Ok(true)
}

/// Equality of two short word slices, without a call to `memcmp`.
#[inline]
fn same_words(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts a whole key.
    fn ins(memo: &mut MemoTable, key: &[u64], limit: impl FnOnce() -> usize) -> Result<bool, OutOfMemory> {
        memo.insert(key[0], &key[1..], limit)
    }

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
        assert_eq!(ins(&mut memo, &key(1, 0, 1), || usize::MAX), Ok(true));
        assert_eq!(ins(&mut memo, &key(1, 0, 1), || usize::MAX), Ok(false));
        assert_eq!(ins(&mut memo, &key(1, 1, 1), || usize::MAX), Ok(true));
        // Same hash and state, different set: must not be confused.
        assert_eq!(ins(&mut memo, &key(1, 0, 2), || usize::MAX), Ok(true));
        for i in 0..50_000u64 {
            assert_eq!(ins(&mut memo, &key(i + 7, 3, i), || usize::MAX), Ok(true));
        }
        for i in 0..50_000u64 {
            assert_eq!(ins(&mut memo, &key(i + 7, 3, i), || usize::MAX), Ok(false));
        }
        assert_eq!(memo.len(), 50_003);
        let Keys::Wide(table) = &memo.keys else { unreachable!("three-word keys") };
        let counted: usize = table.segments.iter().map(|s| s.table.len() * 8).sum();
        assert_eq!(memo.bytes(), counted);
        assert!(memo.bytes() >= 50_003 * 24 && memo.bytes() < 50_003 * 24 * 4, "{}", memo.bytes());
        // A growth that would pass the allowance is refused and records nothing.
        let mut refused = 0;
        for i in 0..100_000u64 {
            match ins(&mut memo, &key(i + 1_000_000, 3, i), || counted) {
                Ok(true) => {}
                Ok(false) => unreachable!("new keys"),
                Err(OutOfMemory) => refused += 1,
            }
        }
        assert!(refused > 0 && memo.bytes() == counted, "no segment grew");
    }

    #[test]
    fn memo_keys_wider_than_two_words() {
        let mut memo = MemoTable::new(5, 1000);
        let wide = |i: u64| [MemoTable::head(crate::linearizability::hash::fmix64(i), 1), i, 2 * i, 3 * i, !i];
        for i in 0..20_000u64 {
            assert_eq!(ins(&mut memo, &wide(i), || usize::MAX), Ok(true));
        }
        // Same first word, one later word different: a new key.
        let mut near = wide(5);
        near[4] ^= 1;
        assert_eq!(ins(&mut memo, &near, || usize::MAX), Ok(true));
        for i in 0..20_000u64 {
            assert_eq!(ins(&mut memo, &wide(i), || usize::MAX), Ok(false));
        }
        assert_eq!(memo.len(), 20_001);
    }

    #[test]
    fn blocks_grow_without_moving_and_count_their_bytes() {
        let mut blocks: Blocks<(u32, u32)> = Blocks::with_capacity(100);
        assert_eq!((blocks.len(), blocks.bytes(), blocks.growth()), (0, 800, 0));
        let mut first = std::ptr::null();
        for i in 0..3 * BLOCK as u32 + 7 {
            let growth = blocks.growth();
            let before = blocks.bytes();
            blocks.push((i, !i));
            assert_eq!(blocks.bytes(), before + growth, "growth() foretells what push adds");
            if i as usize == BLOCK {
                first = blocks.get(0) as *const _;
            }
        }
        // The first block doubled up to a whole block (100, 200, ... 3200, then 4096), and
        // whole blocks followed; nothing moved once the second block began.
        assert_eq!(blocks.bytes(), 4 * BLOCK * 8);
        assert_eq!(blocks.get(0) as *const _, first);
        assert_eq!(blocks.len(), 3 * BLOCK + 7);
        for i in [0, 99, 100, BLOCK - 1, BLOCK, 2 * BLOCK + 3, 3 * BLOCK + 6] {
            assert_eq!(*blocks.get(i), (i as u32, !(i as u32)));
        }
    }

    #[test]
    fn state_slots_grow_by_segment_and_refuse_past_the_allowance() {
        let mut arena = StateArena::new(0u64, 0, 0);
        for i in 1..100_000u64 {
            assert_eq!(arena.intern(i, hash_of(&i), None, 0, || usize::MAX), Ok(i as u32));
        }
        for i in (0..100_000u64).step_by(7) {
            assert_eq!(arena.intern(i, hash_of(&i), None, 0, || usize::MAX), Ok(i as u32));
        }
        let slots: usize = arena.slots.segments.iter().map(|s| s.table.len() * 8).sum();
        assert_eq!(arena.slots.bytes, slots);
        // At most 5/8 full, at least about a quarter (a segment that just grew twofold).
        assert!((100_000 * 8 * 8 / 5..=100_000 * 8 * 4).contains(&slots), "{slots}");
        assert_eq!(arena.bytes(), slots + arena.states.bytes());
        // A new state whose segment must grow is refused when the growth does not fit.
        let held = arena.bytes();
        let refused = (100_000..200_000u64)
            .map(|i| arena.intern(i, hash_of(&i), None, 0, || held))
            .filter(|r| *r == Err(OutOfMemory))
            .count();
        assert!(refused > 0);
        assert!(arena.bytes() <= held);
    }
}
