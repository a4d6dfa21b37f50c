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
//! The search is resumable: [`Search::run`] takes at most a given number of steps and
//! returns, so that the caller can interleave partitions deterministically.

use super::bitset::Bitset;
use super::history::History;
use super::memo::{MemoTable, StateArena};
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
}

/// One choice on the stack: the call entry linearized and the state before it.
#[derive(Clone, Copy, Debug)]
struct Frame {
    entry: u32,
    state: u32,
    /// A read-only operation taken as soon as it was legal: it had no alternatives worth
    /// trying (see [`Search::run`]), so backtracking over it backtracks one level further.
    eager: bool,
}

const NONE: u32 = u32::MAX;

/// The search of one partition.
pub(crate) struct Search<'h, M: Model> {
    model: &'h M,
    inputs: Vec<&'h M::Input>,
    outputs: Vec<Option<&'h M::Output>>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per entry: operation index shifted left once, low bit set for a return.
    code: Vec<u32>,
    /// Per operation: its return entry.
    ret_entry: Vec<u32>,
    /// Per operation: an operation of this partition it may not precede (its client's
    /// previous operation, when the history declares clients sequential), or `NONE`.
    after: Vec<u32>,
    tail: u32,
    linearized: Bitset,
    states: StateArena<M::State>,
    memo: MemoTable,
    stack: Vec<Frame>,
    entry: u32,
    state: u32,
    steps: u64,
    done: Option<Progress>,
    tracker: Option<Tracker>,
}

impl<'h, M: Model> Search<'h, M> {
    /// A search over the operations `part` of `ops` (local operation `i` is `ops[part[i]]`).
    /// With `track`, it records for every operation the longest linearizable prefix
    /// containing it (Porcupine's partial linearizations), at a small cost per step and
    /// 8 bytes per configuration.
    pub(crate) fn new(model: &'h M, history: &'h History<M::Input, M::Output>, part: &[usize], track: bool) -> Self {
        let ops = history.ops();
        let n = part.len();
        assert!(n < (1 << 30), "a partition of {n} operations is too large");
        // Sort key: pending returns after every timed event; at equal times calls first;
        // then by operation, so that the order is total and deterministic.
        let mut events: Vec<((bool, u64, bool, u32), u32)> = Vec::with_capacity(2 * n);
        for (i, &g) in part.iter().enumerate() {
            let op = &ops[g];
            let i = i as u32;
            events.push(((false, op.call, false, i), i << 1));
            events.push(((op.ret.is_none(), op.ret.unwrap_or(0), true, i), (i << 1) | 1));
        }
        events.sort_unstable_by_key(|e| e.0);
        let len = 2 * n + 2;
        let tail = (len - 1) as u32;
        let mut code = vec![NONE; len];
        let mut ret_entry = vec![NONE; n];
        for (k, &(_, c)) in events.iter().enumerate() {
            let entry = k + 1;
            code[entry] = c;
            if c & 1 == 1 {
                ret_entry[(c >> 1) as usize] = entry as u32;
            }
        }
        let next: Vec<u32> = (1..=len as u32).map(|k| k.min(tail)).collect();
        let prev: Vec<u32> = (0..len as u32).map(|k| k.saturating_sub(1)).collect();
        let words = n.div_ceil(64).max(1);
        // Each operation waits for the latest earlier operation of its sequential client in
        // this partition that returned (the client's order restricted to the partition);
        // the order between partitions is the caller's concern (see `merge_witnesses`).
        let mut after = vec![NONE; n];
        let ranks = history.client_ranks();
        if !ranks.is_empty() {
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
        }
        Search {
            model,
            inputs: part.iter().map(|&g| &ops[g].input).collect(),
            outputs: part.iter().map(|&g| ops[g].output.as_ref()).collect(),
            next,
            prev,
            code,
            ret_entry,
            after,
            tail,
            linearized: Bitset::new(n),
            states: StateArena::new(model.init()),
            memo: MemoTable::new(words),
            stack: Vec::with_capacity(n),
            entry: 1,
            state: 0,
            steps: 0,
            done: if n == 0 { Some(Progress::Linearizable) } else { None },
            tracker: track.then(|| Tracker::new(n)),
        }
    }

    #[inline]
    fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    #[inline]
    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[n as usize] = x;
    }

    /// Takes up to `allowance` steps. A step is one visit of an entry: trying a call
    /// against the model, or backtracking at a return.
    pub(crate) fn run(&mut self, allowance: u64) -> Progress {
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
            let code = self.code[entry as usize];
            let mut backtrack = code & 1 == 1;
            if !backtrack {
                let op = (code >> 1) as usize;
                let after = self.after[op];
                if after != NONE && !self.linearized.contains(after as usize) {
                    // Its client's previous operation must take effect first.
                    entry = self.next[entry as usize];
                    continue;
                }
                let stepped = self.model.step(self.states.get(self.state), self.inputs[op], self.outputs[op]);
                if let Some(next_state) = stepped {
                    // A read-only operation legal now can be linearized now: if any completion
                    // of this configuration exists, one starts with it (it leaves the state as
                    // it is, and no remaining operation must precede it in real time, since
                    // its call comes before every remaining return). So it needs no
                    // alternatives — which stops concurrent reads of one value from making
                    // the search try every subset of them. (Its client's previous operation
                    // is already linearized, or it would not be tried.)
                    let eager = self.model.is_read_only(self.inputs[op]);
                    let id = self.states.intern(next_state, Some(self.state));
                    self.linearized.insert(op);
                    if self.memo.insert(self.linearized.words(), self.linearized.hash(), id) {
                        if let Some(tracker) = &mut self.tracker {
                            tracker.push(op, self.stack.len());
                        }
                        self.stack.push(Frame { entry, state: self.state, eager });
                        self.state = id;
                        self.unlink(entry);
                        self.unlink(self.ret_entry[op]);
                        entry = self.next[0];
                        if entry == self.tail {
                            break Progress::Linearizable;
                        }
                        continue;
                    }
                    self.linearized.remove(op);
                    // Already explored and dead: then so is this configuration.
                    backtrack = eager;
                }
                if !backtrack {
                    entry = self.next[entry as usize];
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
                let op = (self.code[frame.entry as usize] >> 1) as usize;
                if let Some(tracker) = &mut self.tracker {
                    tracker.pop(op, self.stack.len());
                }
                self.linearized.remove(op);
                self.state = frame.state;
                self.relink(self.ret_entry[op]);
                self.relink(frame.entry);
                entry = self.next[frame.entry as usize];
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
        let order: Vec<usize> = self.stack.iter().map(|f| (self.code[f.entry as usize] >> 1) as usize).collect();
        assert_eq!(order.len(), self.inputs.len(), "a witness names every operation");
        order
    }

    /// After [`Progress::Refuted`] of a tracking search: the distinct longest prefixes
    /// (local operation indices, longest first) and, per local operation, the index of the
    /// longest prefix containing it (`None`: no linearizable prefix contains it).
    pub(crate) fn partials(self) -> (Vec<Vec<usize>>, Vec<Option<usize>>) {
        assert_eq!(self.done, Some(Progress::Refuted), "partial linearizations come from a refutation");
        let tracker = self.tracker.expect("partials need a tracking search");
        tracker.finish()
    }

    /// Memory and size statistics.
    pub(crate) fn stats(&self) -> SearchStats {
        SearchStats { configurations: self.memo.len(), states: self.states.len(), memo_bytes: self.memo.bytes() }
    }
}

/// Sizes reached by one search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Configurations in Lowe's cache.
    pub configurations: usize,
    /// Distinct model states interned.
    pub states: usize,
    /// Approximate bytes held by the cache.
    pub memo_bytes: usize,
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
    node_op: Vec<u32>,
    node_parent: Vec<u32>,
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
            node_op: Vec::new(),
            node_parent: Vec::new(),
            position_node: vec![NONE; n],
            peak_len: vec![0; n],
            peak_node: vec![NONE; n],
            best_len: vec![0; n],
            best_node: vec![NONE; n],
        }
    }

    /// `op` was pushed at stack position `p`.
    #[inline]
    fn push(&mut self, op: usize, p: usize) {
        let parent = if p == 0 { NONE } else { self.position_node[p - 1] };
        let node = self.node_op.len() as u32;
        assert!(node != NONE, "more than 2^32 pushes in one search");
        self.node_op.push(op as u32);
        self.node_parent.push(parent);
        self.position_node[p] = node;
        self.peak_len[p] = p as u32 + 1;
        self.peak_node[p] = node;
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
                ops.push(self.node_op[node as usize] as usize);
                node = self.node_parent[node as usize];
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
