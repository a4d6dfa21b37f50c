//! The search of one partition: Wing & Gong's backtracking with Lowe's memoization.
//!
//! The partition's calls and returns are sorted by time into a doubly linked list kept in
//! arrays (`next`/`prev` hold entry indices; index 0 is the head sentinel and the last
//! index the tail sentinel). Walking the list from the head, every call met before the
//! first return is an operation that may take effect next. Linearizing one removes its
//! call and return from the list ("lift") and restarts from the head; reaching a return
//! means its operation can no longer be placed after those already chosen, so the search
//! backtracks by undoing the last choice ("unlift" puts both entries back, in reverse
//! order, exactly where they were). A configuration (set of linearized operations, model
//! state) already explored is never explored again: its future does not depend on the
//! order that led to it.
//!
//! **Compact configurations.** The first return left in the list — the *frontier*, the
//! earliest return of an operation not yet linearized — pins the linearized set down to a
//! few bits: every operation that returned before it is linearized (else it would be the
//! frontier), and none called after it is (the search never reaches past it). Only the
//! operations open at the frontier (called before it, returning after it) can go either
//! way. So a configuration is stored as (state, frontier, one bit per operation open at the
//! frontier): a few words however long the history, where the whole set would take a bit
//! per operation — 470 words a configuration for 30 000 operations. The first word is a
//! hash of the whole set, kept incrementally (see `bitset`). When no frontier has more than
//! 34 operations open, the frontier's operation (30 bits) and the window's bits share one
//! word: a key of two words, 16 bytes a slot.
//!
//! **What may go next** besides real time: an operation waits for one other operation of
//! the partition (`after`): its sequential client's previous operation that returned, or,
//! for interchangeable operations ([`Model::equivalent`]), the nearest one before it in
//! the order of their intervals.
//!
//! The search is resumable: [`Search::run`] takes at most a given number of steps and
//! returns, so that the caller can interleave partitions deterministically. It counts the
//! bytes it holds and stops, deterministically, rather than grow past an allowance.

use super::bitset::Bitset;
use super::hash::{fmix64, hash_of};
use super::history::History;
use super::memo::{Blocks, MemoTable, OutOfMemory, StateArena};
use super::model::Model;

/// Where a search stands after [`Search::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The step allowance ran out first; call `run` again to continue.
    Paused,
    /// Every operation was linearized: the stack is a witness.
    Linearizable,
    /// Every order was tried or ruled out.
    Refuted,
    /// Going on would take more memory than allowed; the search cannot continue.
    OutOfMemory,
}

/// One choice on the stack: the call entry linearized, and the state and frontier before it.
#[derive(Clone, Copy, Debug)]
struct Frame {
    entry: u32,
    state: u32,
    frontier: u32,
    /// A read-only operation taken as soon as it was legal: it had no alternatives worth
    /// trying (see [`Search::run`]), so backtracking over it backtracks one level further.
    eager: bool,
}

const NONE: u32 = u32::MAX;

/// Bits of a packed compact key's second word that hold the frontier's operation (a
/// partition has fewer than 2^30 operations).
const FRONTIER_BITS: u32 = 30;

/// The widest window whose bits fit above the frontier in one word: a compact key is then
/// two words (hash and state, frontier and bits).
const PACKED_WINDOW: usize = 64 - FRONTIER_BITS as usize;

/// How many earlier operations are examined for an interchangeable one (the nearest is
/// enough; a bound keeps building the search linear).
const SYMMETRY_SCAN: usize = 32;

/// How configurations are keyed in the memo table.
enum KeyShape {
    /// (state, frontier, bits of the operations open at the frontier): per operation `m`,
    /// the `open_len[m]` operations from `open[open_start[m]]` on are those open at its
    /// return.
    Compact { open_start: Vec<u32>, open_len: Vec<u32>, open: Vec<u32> },
    /// (state, the whole linearized set): for short partitions, where copying the set's
    /// few words costs less than gathering the open operations' bits, and when some
    /// frontier has about as many operations open as there are in the partition.
    Full,
}

/// One call or return in the time-sorted list.
#[derive(Clone, Copy, Debug)]
struct Entry {
    next: u32,
    prev: u32,
    /// Operation index shifted left once, low bit set for a return.
    code: u32,
}

/// What the search needs about one operation, in one place.
#[derive(Clone, Copy, Debug)]
struct OpInfo {
    /// Its return entry.
    ret_entry: u32,
    /// An operation that must be linearized before it (see the module's documentation),
    /// or `NONE`.
    after: u32,
    /// The last state it was tried in, and the state it led to there (`NONE`: the model
    /// rejected it): `Model::step` is pure and states are interned, so trying it again in
    /// that state needs neither the model nor a new state.
    tried_in: u32,
    led_to: u32,
    read_only: bool,
}

/// The search of one partition.
pub(crate) struct Search<'h, M: Model> {
    model: &'h M,
    inputs: Vec<&'h M::Input>,
    outputs: Vec<Option<&'h M::Output>>,
    entries: Vec<Entry>,
    info: Vec<OpInfo>,
    tail: u32,
    linearized: Bitset,
    /// The first return entry left in the list (the tail when none is left).
    frontier: u32,
    shape: KeyShape,
    /// A compact key's words after the first, as `build_key` builds them (empty for the
    /// whole set's keys, whose rest is the set's words).
    key: Vec<u64>,
    states: StateArena<M::State>,
    memo: MemoTable,
    stack: Vec<Frame>,
    entry: u32,
    state: u32,
    steps: u64,
    done: Option<Progress>,
    tracker: Option<Tracker>,
    /// Bytes of the arrays sized once from the partition.
    fixed_bytes: usize,
}

impl<'h, M: Model> Search<'h, M> {
    /// A search over the operations `part` of `history` (local operation `i` is
    /// `history.ops()[part[i]]`). With `track`, it records for every operation the longest
    /// linearizable prefix containing it (Porcupine's partial linearizations), at a small
    /// cost per step and 8 bytes per configuration.
    pub(crate) fn new(model: &'h M, history: &'h History<M::Input, M::Output>, part: &[usize], track: bool) -> Self {
        let ops = history.ops();
        let n = part.len();
        assert!(n < (1 << 30), "a partition of {n} operations is too large");
        // Order: time (pending returns last), then calls before returns, then by operation,
        // so that the order is total and deterministic.
        // Calls and returns are sorted apart (a history listed in call order has its calls
        // sorted already, which the sort notices at once) and then merged.
        let mut calls: Vec<(u64, u32)> = part.iter().enumerate().map(|(i, &g)| (ops[g].call, i as u32)).collect();
        let mut rets: Vec<(u64, u32)> =
            part.iter().enumerate().map(|(i, &g)| (ops[g].ret.unwrap_or(u64::MAX), i as u32)).collect();
        calls.sort_unstable();
        rets.sort_unstable();
        let mut events: Vec<u32> = Vec::with_capacity(2 * n);
        let (mut c, mut r) = (0, 0);
        while c < n || r < n {
            // At equal times calls go first (closed intervals).
            if c < n && (r == n || calls[c].0 <= rets[r].0) {
                events.push(calls[c].1 << 1);
                c += 1;
            } else {
                events.push((rets[r].1 << 1) | 1);
                r += 1;
            }
        }
        let len = 2 * n + 2;
        let tail = (len - 1) as u32;
        let mut entries: Vec<Entry> =
            (0..len as u32).map(|k| Entry { next: (k + 1).min(tail), prev: k.saturating_sub(1), code: NONE }).collect();
        let after = waits_for(model, history, part);
        let mut info: Vec<OpInfo> = (0..n)
            .map(|i| OpInfo {
                ret_entry: NONE,
                after: after[i],
                tried_in: NONE,
                led_to: NONE,
                read_only: model.is_read_only(&ops[part[i]].input),
            })
            .collect();
        for (k, &c) in events.iter().enumerate() {
            let entry = k + 1;
            entries[entry].code = c;
            if c & 1 == 1 {
                info[(c >> 1) as usize].ret_entry = entry as u32;
            }
        }
        let frontier = (1..tail).find(|&e| entries[e as usize].code & 1 == 1).unwrap_or(tail);
        let codes: Vec<u32> = entries.iter().map(|e| e.code).collect();
        let shape = key_shape(&codes, n);
        // The key: the hash and state, then the frontier and the bits (compact; one word
        // when the widest window fits beside the frontier), or the whole set (full).
        let width = match &shape {
            KeyShape::Compact { open_len, .. } => {
                let widest = open_len.iter().copied().max().unwrap_or(0) as usize;
                if widest <= PACKED_WINDOW {
                    2
                } else {
                    2 + widest.div_ceil(64)
                }
            }
            KeyShape::Full => 1 + n.div_ceil(64).max(1),
        };
        let shape_bytes = match &shape {
            KeyShape::Compact { open_start, open_len, open } => 4 * (open_start.len() + open_len.len() + open.len()),
            KeyShape::Full => 0,
        };
        // The entry list, the operations' information, inputs and outputs, the stack (at
        // most a frame an operation), the set, and the tracker's fixed arrays.
        let fixed_bytes = len * std::mem::size_of::<Entry>()
            + n * (std::mem::size_of::<OpInfo>() + 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Frame>())
            + if track { Tracker::fixed_bytes(n) } else { 0 }
            + shape_bytes
            + 8 * n.div_ceil(64);
        let rest_words = if matches!(shape, KeyShape::Full) { 0 } else { width - 1 };
        let init = model.init();
        let init_bytes = model.state_bytes(&init);
        Search {
            model,
            inputs: part.iter().map(|&g| &ops[g].input).collect(),
            outputs: part.iter().map(|&g| ops[g].output.as_ref()).collect(),
            entries,
            info,
            tail,
            linearized: Bitset::new(n),
            frontier,
            shape,
            key: vec![0; rest_words],
            states: StateArena::new(init, init_bytes, n),
            memo: MemoTable::new(width, n),
            stack: Vec::with_capacity(n),
            entry: 1,
            state: 0,
            steps: 0,
            done: if n == 0 { Some(Progress::Linearizable) } else { None },
            tracker: track.then(|| Tracker::new(n)),
            fixed_bytes,
        }
    }

    #[inline]
    fn unlink(&mut self, x: u32) {
        let Entry { prev: p, next: n, .. } = self.entries[x as usize];
        self.entries[p as usize].next = n;
        self.entries[n as usize].prev = p;
    }

    #[inline]
    fn relink(&mut self, x: u32) {
        let Entry { prev: p, next: n, .. } = self.entries[x as usize];
        self.entries[p as usize].next = x;
        self.entries[n as usize].prev = x;
    }

    /// Bytes held now: what counts against the allowance of [`Search::run`].
    pub(crate) fn bytes(&self) -> usize {
        self.fixed_bytes
            + self.memo.bytes()
            + self.states.bytes()
            + self.tracker.as_ref().map_or(0, Tracker::growing_bytes)
    }

    /// The hash of a configuration: its set's hash and its state's.
    #[inline]
    fn config_hash(set_hash: u64, state_hash: u64) -> u64 {
        fmix64(set_hash ^ state_hash.wrapping_mul(0xd6e8_feb8_6659_fd93))
    }

    /// The memo key of the configuration (linearized set, `state`) at the current frontier:
    /// returns its first word, and leaves the rest in `key` (compact keys; the whole set's
    /// key is the set's own words).
    #[inline]
    fn build_key(&mut self, state: u32) -> u64 {
        let hash = Self::config_hash(self.linearized.hash(), self.states.hash(state));
        let head = MemoTable::head(hash, state);
        match &self.shape {
            // The rest is the whole set, as it is.
            KeyShape::Full => {}
            KeyShape::Compact { .. } if self.frontier == self.tail => {
                // Every operation is linearized: the set is whole.
                self.key[0] = self.inputs.len() as u64;
                for w in &mut self.key[1..] {
                    *w = 0;
                }
            }
            KeyShape::Compact { open_start, open_len, open } => {
                let m = (self.entries[self.frontier as usize].code >> 1) as usize;
                let start = open_start[m] as usize;
                let window = &open[start..start + open_len[m] as usize];
                if let [packed] = &mut self.key[..] {
                    // Packed: the window's bits above the frontier's operation.
                    let mut bits = 0u64;
                    for (k, &op) in window.iter().enumerate() {
                        bits |= u64::from(self.linearized.contains(op as usize)) << k;
                    }
                    *packed = m as u64 | bits << FRONTIER_BITS;
                    return head;
                }
                self.key[0] = m as u64;
                let words = &mut self.key[1..];
                for w in words.iter_mut() {
                    *w = 0;
                }
                for (k, &op) in window.iter().enumerate() {
                    words[k / 64] |= u64::from(self.linearized.contains(op as usize)) << (k % 64);
                }
            }
        }
        head
    }

    /// The state `op` leads to from the current state, or `None` when the model rejects it
    /// there; `Err` when a new state would take the search past `memory` bytes.
    #[inline]
    fn next_state(&mut self, op: usize, memory: usize) -> Result<Option<u32>, OutOfMemory> {
        let info = self.info[op];
        if info.tried_in == self.state {
            return Ok((info.led_to != NONE).then_some(info.led_to));
        }
        let led_to = match self.model.step(self.states.get(self.state), self.inputs[op], self.outputs[op]) {
            None => NONE,
            Some(next_state) => {
                // Start fetching the state slot and the cache slot this configuration will
                // probe, so that they arrive together (two memory waits at once, not in turn).
                let hash = hash_of(&next_state);
                self.states.touch(hash);
                self.memo.touch(Self::config_hash(self.linearized.hash_with(op), hash));
                let heap = self.model.state_bytes(&next_state);
                let (fixed, memo, tracker) = (self.fixed_bytes, &self.memo, &self.tracker);
                let limit =
                    || memory.saturating_sub(fixed + memo.bytes() + tracker.as_ref().map_or(0, Tracker::growing_bytes));
                self.states.intern(next_state, hash, Some(self.state), heap, limit)?
            }
        };
        let info = &mut self.info[op];
        info.tried_in = self.state;
        info.led_to = led_to;
        Ok((led_to != NONE).then_some(led_to))
    }

    /// Takes up to `allowance` steps, holding at most `memory` bytes. A step is one visit
    /// of an entry: trying a call against the model, or backtracking at a return.
    pub(crate) fn run(&mut self, allowance: u64, memory: usize) -> Progress {
        if let Some(done) = self.done {
            return done;
        }
        let mut left = allowance;
        let mut entry = self.entry;
        let progress = loop {
            if left == 0 {
                break Progress::Paused;
            }
            left -= 1;
            debug_assert!(entry != 0 && entry != self.tail, "walked off the entry list");
            let code = self.entries[entry as usize].code;
            let mut backtrack = code & 1 == 1;
            if !backtrack {
                let op = (code >> 1) as usize;
                let OpInfo { after, ret_entry: ret, read_only: eager, .. } = self.info[op];
                if after != NONE && !self.linearized.contains(after as usize) {
                    // It must wait for another operation (its client's previous one, or an
                    // interchangeable one that goes first).
                    entry = self.entries[entry as usize].next;
                    continue;
                }
                let next = match self.next_state(op, memory) {
                    Ok(next) => next,
                    Err(OutOfMemory) => break Progress::OutOfMemory,
                };
                if let Some(id) = next {
                    // A read-only operation legal now can be linearized now: if any completion
                    // of this configuration exists, one starts with it (it leaves the state as
                    // it is, no remaining operation must precede it in real time, since its
                    // call comes before every remaining return, and what it waits for is
                    // linearized already). So it needs no alternatives — which stops
                    // concurrent reads of one value from making the search try every subset.
                    self.linearized.insert(op);
                    // The frontier moves past this operation's return when that was it.
                    let old_frontier = self.frontier;
                    if ret == old_frontier {
                        let mut e = self.entries[ret as usize].next;
                        while e != self.tail && self.entries[e as usize].code & 1 == 0 {
                            e = self.entries[e as usize].next;
                        }
                        self.frontier = e;
                    }
                    let head = self.build_key(id);
                    let (fixed, states, tracker) = (self.fixed_bytes, &self.states, &self.tracker);
                    let limit = || {
                        memory
                            .saturating_sub(fixed + states.bytes() + tracker.as_ref().map_or(0, Tracker::growing_bytes))
                    };
                    let rest = match self.shape {
                        KeyShape::Full => self.linearized.words(),
                        KeyShape::Compact { .. } => &self.key[..],
                    };
                    match self.memo.insert(head, rest, limit) {
                        Ok(true) => {
                            let (fixed, states, memo) = (self.fixed_bytes, &self.states, &self.memo);
                            let room = || memory.saturating_sub(fixed + states.bytes() + memo.bytes());
                            if let Some(tracker) = &mut self.tracker {
                                if !tracker.push(op, self.stack.len(), room) {
                                    self.linearized.remove(op);
                                    self.frontier = old_frontier;
                                    break Progress::OutOfMemory;
                                }
                            }
                            self.stack.push(Frame { entry, state: self.state, frontier: old_frontier, eager });
                            self.state = id;
                            self.unlink(entry);
                            self.unlink(ret);
                            entry = self.entries[0].next;
                            if entry == self.tail {
                                break Progress::Linearizable;
                            }
                            continue;
                        }
                        Ok(false) => {
                            self.linearized.remove(op);
                            self.frontier = old_frontier;
                            // Already explored and dead: then so is this configuration.
                            backtrack = eager;
                        }
                        Err(OutOfMemory) => {
                            self.linearized.remove(op);
                            self.frontier = old_frontier;
                            break Progress::OutOfMemory;
                        }
                    }
                }
                if !backtrack {
                    entry = self.entries[entry as usize].next;
                    continue;
                }
            }
            // Undo the last choice, and the one before it while the undone one was eager.
            // With no choice left to undo, every order has been tried or ruled out.
            let mut refuted = false;
            loop {
                let Some(frame) = self.stack.pop() else {
                    refuted = true;
                    break;
                };
                let op = (self.entries[frame.entry as usize].code >> 1) as usize;
                if let Some(tracker) = &mut self.tracker {
                    tracker.pop(op, self.stack.len());
                }
                self.linearized.remove(op);
                self.state = frame.state;
                self.frontier = frame.frontier;
                self.relink(self.info[op].ret_entry);
                self.relink(frame.entry);
                entry = self.entries[frame.entry as usize].next;
                if !frame.eager {
                    break;
                }
            }
            if refuted {
                break Progress::Refuted;
            }
        };
        self.entry = entry;
        self.steps += allowance - left;
        if progress != Progress::Paused {
            self.done = Some(progress);
        }
        progress
    }

    /// True when the search records partial linearizations.
    pub(crate) fn tracks(&self) -> bool {
        self.tracker.is_some()
    }

    /// Steps taken so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// After [`Progress::Linearizable`]: the local operation indices in witness order.
    pub(crate) fn witness(&self) -> Vec<usize> {
        assert_eq!(self.done, Some(Progress::Linearizable), "no witness before success");
        let order: Vec<usize> =
            self.stack.iter().map(|f| (self.entries[f.entry as usize].code >> 1) as usize).collect();
        assert_eq!(order.len(), self.inputs.len(), "a witness names every operation");
        order
    }

    /// For a tracking search that did not succeed: the distinct longest prefixes found so
    /// far (local operation indices, longest first) and, per local operation, the index of
    /// the longest prefix containing it (`None`: no linearizable prefix contains it). For a
    /// refuted search these are final; for an unfinished one, the best seen until it
    /// stopped (the prefixes on the stack count as explored).
    pub(crate) fn into_partials(mut self) -> (Vec<Vec<usize>>, Vec<Option<usize>>) {
        assert_ne!(self.done, Some(Progress::Linearizable), "a linearizable partition has a witness");
        let mut tracker = self.tracker.take().expect("partials need a tracking search");
        for (p, frame) in self.stack.iter().enumerate().rev() {
            tracker.pop((self.entries[frame.entry as usize].code >> 1) as usize, p);
        }
        tracker.finish()
    }

    /// Memory and size statistics.
    pub(crate) fn stats(&self) -> SearchStats {
        SearchStats {
            configurations: self.memo.len(),
            states: self.states.len(),
            memo_bytes: self.memo.bytes(),
            bytes: self.bytes(),
        }
    }
}

/// Per local operation, the one operation of the partition it waits for (see the module's
/// documentation), or `NONE`.
fn waits_for<M: Model>(model: &M, history: &History<M::Input, M::Output>, part: &[usize]) -> Vec<u32> {
    let ops = history.ops();
    let n = part.len();
    let mut after = vec![NONE; n];
    let ranks = history.client_ranks();
    if !ranks.is_empty() {
        // Each operation waits for the latest earlier operation of its sequential client in
        // this partition that returned (the client's order restricted to the partition);
        // the order between partitions is the caller's concern (see `merge_witnesses`).
        let mut by_client: Vec<u32> = (0..n as u32).collect();
        by_client.sort_unstable_by_key(|&i| (ops[part[i as usize]].client, ranks[part[i as usize]]));
        let mut last: Option<(u64, u32)> = None;
        for &i in &by_client {
            let op = &ops[part[i as usize]];
            if let Some((client, before)) = last {
                if client == op.client {
                    after[i as usize] = before;
                } else {
                    last = None;
                }
            }
            if op.ret.is_some() {
                last = Some((op.client, i));
            }
        }
        // Interchangeable operations are not reordered here: swapping two of them could
        // break their clients' orders.
        return after;
    }
    // Interchangeable operations go in the order of their intervals. Of two with
    // a.call <= b.call and a.ret <= b.ret, any linearization with b first stays one when
    // they trade places (every operation between them overlaps both), so requiring each
    // operation to follow the nearest such one loses no linearization and no prefix length.
    // Read-only operations are left out: the search takes them as soon as they are legal.
    let mut by_call: Vec<(u64, u64, u32)> = (0..n as u32)
        .filter(|&i| !model.is_read_only(&ops[part[i as usize]].input))
        .map(|i| {
            let op = &ops[part[i as usize]];
            (op.call, op.ret.unwrap_or(u64::MAX), i)
        })
        .collect();
    by_call.sort_unstable();
    for (k, &(call_b, end_b, b)) in by_call.iter().enumerate() {
        let ob = &ops[part[b as usize]];
        for &(_, end_a, a) in by_call[..k].iter().rev().take(SYMMETRY_SCAN) {
            if end_a > end_b {
                continue;
            }
            let oa = &ops[part[a as usize]];
            if model.equivalent(&oa.input, oa.output.as_ref(), &ob.input, ob.output.as_ref()) {
                // The nearest one. When it returned before `b` was called, real time orders
                // the two already and the rule adds nothing: `b` waits for no one. Looking
                // further back instead would tie `b` to an older one that overlaps it, which
                // keeps every linearization but loses the prefixes holding `b` without that
                // one — and with them `b`'s longest prefix in an explanation.
                if end_a >= call_b {
                    after[b as usize] = a;
                }
                break;
            }
        }
    }
    after
}

/// How to key configurations: compact when every frontier has at most [`PACKED_WINDOW`]
/// operations open and the set takes three words or more (partitions of more than 128
/// operations: a compact key is then two words, the whole set's key at least four), or
/// when compact saves at least four words a configuration (partitions of more than 256
/// operations with wider windows); and only while the windows' lists stay within 32
/// entries an operation. Else the whole set: for short partitions copying a word or two
/// costs less than gathering the window's bits at every step (measured on the Jepsen etcd
/// logs of 80–100 operations, whose windows are wide).
fn key_shape(code: &[u32], n: usize) -> KeyShape {
    let full_words = n.div_ceil(64).max(1);
    if full_words < 3 {
        return KeyShape::Full;
    }
    // Returns come in time order: each window is written once, where it will stay.
    let mut open: Vec<u32> = Vec::new();
    let mut at = vec![NONE; n];
    let mut starts = vec![(0u32, 0u32); n];
    let mut flat: Vec<u32> = Vec::new();
    for &c in &code[1..code.len() - 1] {
        let op = (c >> 1) as usize;
        if c & 1 == 0 {
            at[op] = open.len() as u32;
            open.push(op as u32);
        } else {
            let k = at[op] as usize;
            open.swap_remove(k);
            if k < open.len() {
                at[open[k] as usize] = k as u32;
            }
            let too_wide = open.len() > PACKED_WINDOW && open.len().div_ceil(64).max(1) + 4 > full_words;
            if too_wide || flat.len() + open.len() > 32 * n + 1024 {
                return KeyShape::Full;
            }
            starts[op] = (flat.len() as u32, open.len() as u32);
            flat.extend_from_slice(&open);
        }
    }
    // Per operation in index order, its window's place in `flat` (windows are stored in
    // the order of the returns, so `open_start[m + 1]` is not the end: keep the ends apart).
    KeyShape::Compact {
        open_start: starts.iter().map(|&(start, _)| start).collect(),
        open_len: starts.iter().map(|&(_, len)| len).collect(),
        open: flat,
    }
}

/// Sizes reached by one search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Configurations in Lowe's cache.
    pub configurations: usize,
    /// Distinct model states interned.
    pub states: usize,
    /// Bytes held by the cache.
    pub memo_bytes: usize,
    /// Bytes held by the whole search (what the memory budget counts).
    pub bytes: usize,
}

/// For every operation, the longest linearizable prefix seen that contains it, in O(1)
/// per push and pop.
///
/// Prefixes are persistent: each push adds a node (operation, parent node), so the stack
/// at any moment is named by its top node and a snapshot costs nothing. Each stack
/// position keeps the deepest configuration reached since it was pushed (its peak); when
/// the position is popped, its operation's record takes the peak if longer, and the peak
/// passes down to the position below. Every pushed configuration of a refuted search is
/// popped exactly once, so an operation's record ends as the longest prefix explored that
/// contains it (the first found, among equals), as recording the whole stack at every
/// backtrack would give, without the cost proportional to the depth.
struct Tracker {
    /// Per node: its operation and its parent node.
    nodes: Blocks<(u32, u32)>,
    /// Per stack position: its node, and the length and node of its peak.
    position_node: Vec<u32>,
    peak_len: Vec<u32>,
    peak_node: Vec<u32>,
    /// Per operation: the length and node of its record.
    best_len: Vec<u32>,
    best_node: Vec<u32>,
}

impl Tracker {
    fn new(n: usize) -> Self {
        Tracker {
            nodes: Blocks::with_capacity(n),
            position_node: vec![NONE; n],
            peak_len: vec![0; n],
            peak_node: vec![NONE; n],
            best_len: vec![0; n],
            best_node: vec![NONE; n],
        }
    }

    /// Bytes of the arrays sized from the partition.
    fn fixed_bytes(n: usize) -> usize {
        5 * 4 * n
    }

    /// Bytes of the node list, which grows with every push.
    fn growing_bytes(&self) -> usize {
        self.nodes.bytes()
    }

    /// `op` was pushed at stack position `p`; false (and nothing recorded) when recording
    /// it would need more than `room()` more bytes (asked only then).
    #[inline]
    fn push(&mut self, op: usize, p: usize, room: impl FnOnce() -> usize) -> bool {
        let grown = self.nodes.growth();
        if grown > 0 && grown > room() {
            return false;
        }
        let parent = if p == 0 { NONE } else { self.position_node[p - 1] };
        let node = self.nodes.len() as u32;
        assert!(node != NONE, "more than 2^32 pushes in one search");
        self.nodes.push((op as u32, parent));
        self.position_node[p] = node;
        self.peak_len[p] = p as u32 + 1;
        self.peak_node[p] = node;
        true
    }

    /// `op` is being popped from stack position `p`.
    #[inline]
    fn pop(&mut self, op: usize, p: usize) {
        let (len, node) = (self.peak_len[p], self.peak_node[p]);
        if len > self.best_len[op] {
            self.best_len[op] = len;
            self.best_node[op] = node;
        }
        if p > 0 && len > self.peak_len[p - 1] {
            self.peak_len[p - 1] = len;
            self.peak_node[p - 1] = node;
        }
    }

    fn finish(self) -> (Vec<Vec<usize>>, Vec<Option<usize>>) {
        let mut nodes: Vec<u32> = self.best_node.iter().copied().filter(|&n| n != NONE).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let prefix = |mut node: u32| {
            let mut ops = Vec::new();
            while node != NONE {
                let (op, parent) = *self.nodes.get(node as usize);
                ops.push(op as usize);
                node = parent;
            }
            ops.reverse();
            ops
        };
        let mut prefixes: Vec<(u32, Vec<usize>)> = nodes.into_iter().map(|n| (n, prefix(n))).collect();
        // Longest first; among equals, the one found first.
        prefixes.sort_by_key(|(n, ops)| (std::cmp::Reverse(ops.len()), *n));
        let rank: std::collections::BTreeMap<u32, usize> =
            prefixes.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
        let per_op = self.best_node.iter().map(|&b| (b != NONE).then(|| rank[&b])).collect();
        (prefixes.into_iter().map(|(_, ops)| ops).collect(), per_op)
    }
}
