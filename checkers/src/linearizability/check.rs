//! Checking a whole history: partitions, the deterministic interleaving, verdicts.
//!
//! Partitions are searched in a round-robin of step slices on one thread, so the verdict
//! and every step count are a pure function of the history and the options. Each round
//! gives every unfinished partition the same allowance (`slice`, or an equal share of
//! what is left of the budget), so when the budget runs out every unfinished partition
//! has had the same number of steps, and whether some partition is refuted within the
//! budget does not depend on the order partitions are listed in. The first refutation
//! ends the check (unless [`CheckOptions::all_partitions`]): a refutation anywhere wins over
//! a budget running out elsewhere.
//!
//! Memory is budgeted too, in bytes, and just as deterministically: every search counts
//! what it holds (its cache, its states, its bookkeeping, as the model reports state sizes)
//! and is given, at each turn, the budget less what the other unfinished searches hold; a
//! search that would need more stops, its partition is left unfinished, and the verdict is
//! [`Verdict::Unknown`] unless another partition is refuted. The same history and budgets
//! give the same verdict on any machine.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::history::{ClientId, History, Operation, Time};
use super::model::Model;
use super::search::{Progress, Search, SearchStats};

/// The default step budget: several times what the largest history of the Porcupine suite
/// needs, yet finite so that a pathological history ends with `unknown` in about a second.
pub const DEFAULT_BUDGET: u64 = 10_000_000;

/// The default memory budget, in bytes (2 GiB): what the searches of one check may hold at
/// once. Two sweep jobs checking their worst histories at the same time then hold 4 GiB,
/// well inside the 24 GiB of this project's machine alongside the runs themselves.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// Steps a partition runs before the next partition's turn.
pub const DEFAULT_SLICE: u64 = 10_000;

/// How to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Search steps allowed over the whole history; when they run out before a verdict,
    /// the verdict is [`Verdict::Unknown`].
    pub budget: u64,
    /// Bytes the searches may hold at once (see the module's documentation); when a search
    /// would need more, its partition is left unfinished.
    pub memory_limit: usize,
    /// Steps per partition per round of the interleaving (at least 1).
    pub slice: u64,
    /// Record, during the search, the longest linearizable prefix containing each
    /// operation, for the explanation of a refutation (Porcupine's partial
    /// linearizations). Costs a little time per step and 8 bytes per configuration.
    pub explain: bool,
    /// After a refutation, keep searching the other partitions (within the budgets), so
    /// that every partition ends with its own verdict and evidence, as Porcupine's verbose
    /// mode does. Off: the first refutation ends the check, and the other partitions keep
    /// what they found so far.
    pub all_partitions: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            budget: DEFAULT_BUDGET,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            slice: DEFAULT_SLICE,
            explain: true,
            all_partitions: false,
        }
    }
}

/// The answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// There is an order of the operations consistent with real time and the model.
    Linearizable,
    /// There is none.
    NotLinearizable,
    /// The search stopped (a budget ran out, or it was asked to stop) before an answer.
    Unknown,
}

impl Verdict {
    /// `linearizable`, `not linearizable` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a verdict is [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownReason {
    /// The step budget ran out.
    BudgetExhausted,
    /// A search would have needed more memory than [`CheckOptions::memory_limit`].
    MemoryExhausted,
    /// The caller's stop function said to stop (e.g. a wall-clock timeout).
    Stopped,
    /// Every partition is linearizable on its own, but the witnesses found cannot be
    /// merged into one order that keeps each sequential client's order: a client's
    /// operations on different partitions that return and call at the same instant tie
    /// the partitions together (real-time order alone never does; see
    /// [`History::with_sequential_clients`]). Deciding it needs a model that does not
    /// partition the history.
    ClientOrderAcrossPartitions,
}

/// A linearizable prefix of a refuted partition, and where it gets stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialLinearization {
    /// Operation indices (into the history) in linearization order.
    pub order: Vec<usize>,
    /// The operations that real time allows next but the model rejects in the state the
    /// prefix reaches: the ones that could not be linearized.
    pub blocked: Vec<usize>,
}

/// Porcupine's partial linearizations for a refuted partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The distinct prefixes that are the longest containing some operation, longest first
    /// (just the empty prefix when no operation can go first).
    pub prefixes: Vec<PartialLinearization>,
    /// Aligned with [`PartitionReport::ops`]: the index in `prefixes` of the longest
    /// linearizable prefix containing that operation (`None`: no prefix contains it).
    pub longest: Vec<Option<usize>>,
}

impl Explanation {
    /// The operations that could not be linearized: those blocked after the longest
    /// prefixes, ascending.
    pub fn failing_ops(&self) -> Vec<usize> {
        let Some(max) = self.prefixes.first().map(|p| p.order.len()) else {
            return Vec::new();
        };
        let mut ops: Vec<usize> =
            self.prefixes.iter().filter(|p| p.order.len() == max).flat_map(|p| p.blocked.iter().copied()).collect();
        ops.sort_unstable();
        ops.dedup();
        ops
    }
}

/// How one partition ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionOutcome {
    /// Linearizable, with a witness: operation indices in linearization order.
    Linearizable {
        /// Operation indices of this partition, in a linearization order.
        order: Vec<usize>,
    },
    /// Refuted; the explanation is there when [`CheckOptions::explain`] was set.
    NotLinearizable {
        /// Why, when [`CheckOptions::explain`] was set.
        explanation: Option<Explanation>,
    },
    /// Not searched to completion (a budget ran out, the check was stopped, or another
    /// partition was refuted first). With [`CheckOptions::explain`], the longest
    /// linearizable prefixes the search had found (their `blocked` operations are those
    /// the model rejects right after them; others may not have been tried yet).
    Unfinished {
        /// The longest linearizable prefixes found, when [`CheckOptions::explain`] was set.
        explanation: Option<Explanation>,
        /// Whether the search stopped because the memory budget ran out.
        out_of_memory: bool,
    },
}

/// One partition's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReport {
    /// The model's name for it (may be empty).
    pub label: String,
    /// Its operations (indices into the history), ascending.
    pub ops: Vec<usize>,
    /// Search steps spent on it.
    pub steps: u64,
    /// Sizes its search reached.
    pub stats: SearchStats,
    /// How it ended.
    pub outcome: PartitionOutcome,
}

impl PartitionReport {
    /// The longest linearizable prefix containing `op` (an index into the history), for a
    /// refuted and explained partition.
    pub fn longest_prefix_containing(&self, op: usize) -> Option<&PartialLinearization> {
        let (PartitionOutcome::NotLinearizable { explanation: Some(e) }
        | PartitionOutcome::Unfinished { explanation: Some(e), .. }) = &self.outcome
        else {
            return None;
        };
        let pos = self.ops.binary_search(&op).ok()?;
        e.longest[pos].map(|i| &e.prefixes[i])
    }
}

/// The answer with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The verdict.
    pub verdict: Verdict,
    /// Why it is unknown, when it is.
    pub unknown_reason: Option<UnknownReason>,
    /// Search steps spent over all partitions (the explanation pass not included).
    pub steps: u64,
    /// The budget the check ran with.
    pub budget: u64,
    /// One report per partition, in the model's partition order.
    pub partitions: Vec<PartitionReport>,
}

impl CheckResult {
    /// True for [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        self.verdict == Verdict::Linearizable
    }

    /// The operations that could not be linearized, over all refuted partitions, ascending.
    pub fn failing_ops(&self) -> Vec<usize> {
        let mut ops: Vec<usize> = self
            .partitions
            .iter()
            .filter_map(|p| match &p.outcome {
                PartitionOutcome::NotLinearizable { explanation: Some(e) } => Some(e.failing_ops()),
                _ => None,
            })
            .flatten()
            .collect();
        ops.sort_unstable();
        ops
    }

    /// For a linearizable history: one order of all its operations that is consistent
    /// with real time (and each sequential client's order) and, restricted to each
    /// partition, is that partition's witness. See [`merge_witnesses`].
    pub fn witness<I, O>(&self, history: &History<I, O>) -> Option<Vec<usize>> {
        if !self.is_linearizable() {
            return None;
        }
        let orders: Vec<&[usize]> = self
            .partitions
            .iter()
            .map(|report| match &report.outcome {
                PartitionOutcome::Linearizable { order } => order.as_slice(),
                _ => unreachable!("a linearizable verdict has only linearizable partitions"),
            })
            .collect();
        merge_witnesses(history, &orders)
    }
}

/// Merges per-partition witnesses into one order of the whole history that keeps each
/// partition's order, real time and, when the history declares them, its clients' orders;
/// `None` when the clients' orders tie the partitions into a cycle.
///
/// Each operation is given a linearization point, the latest call among it and the
/// operations before it in its partition's witness; the points are non-decreasing along a
/// witness and lie within each operation's interval (a later operation of a witness cannot
/// have returned before an earlier one was called). Repeatedly taking, among the partitions'
/// next operations whose client predecessor is already placed, one with the smallest point
/// never places an operation after one that returned before it was called: a waiting
/// operation's predecessor, and that predecessor's partition's next operation, have points
/// no greater than its own. Without sequential clients nothing waits, and this is a plain
/// merge by points (linearizability's locality).
pub fn merge_witnesses<I, O>(history: &History<I, O>, orders: &[&[usize]]) -> Option<Vec<usize>> {
    use std::cmp::Reverse;
    let ops = history.ops();
    let mut point = vec![0; ops.len()];
    for order in orders {
        let mut p = 0;
        for &op in order.iter() {
            p = p.max(ops[op].call);
            point[op] = p;
        }
    }
    let total: usize = orders.iter().map(|o| o.len()).sum();
    let mut merged = Vec::with_capacity(total);
    let mut placed = vec![false; ops.len()];
    let mut next = vec![0usize; orders.len()];
    let mut ready: std::collections::BinaryHeap<Reverse<(Time, usize)>> = Default::default();
    // Per operation: the partitions whose next operation waits for it to be placed.
    let mut waiting: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    let offer = |p: usize,
                 next: &[usize],
                 placed: &[bool],
                 ready: &mut std::collections::BinaryHeap<Reverse<(Time, usize)>>,
                 waiting: &mut std::collections::BTreeMap<usize, Vec<usize>>| {
        let Some(&op) = orders[p].get(next[p]) else { return };
        match history.client_predecessor(op) {
            Some(before) if !placed[before] => waiting.entry(before).or_default().push(p),
            _ => ready.push(Reverse((point[op], p))),
        }
    };
    for p in 0..orders.len() {
        offer(p, &next, &placed, &mut ready, &mut waiting);
    }
    while let Some(Reverse((_, p))) = ready.pop() {
        let op = orders[p][next[p]];
        placed[op] = true;
        merged.push(op);
        next[p] += 1;
        offer(p, &next, &placed, &mut ready, &mut waiting);
        for q in waiting.remove(&op).unwrap_or_default() {
            offer(q, &next, &placed, &mut ready, &mut waiting);
        }
    }
    if merged.len() < total {
        return None;
    }
    debug_assert_eq!(check_order(history, &merged), Ok(()), "a merged witness keeps every order");
    Some(merged)
}

/// Why an order does not replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Position `pos` names an operation outside the history.
    BadIndex {
        /// The position in the order (0-based).
        pos: usize,
    },
    /// Position `pos` names an operation already placed.
    Duplicate {
        /// The position in the order (0-based).
        pos: usize,
    },
    /// The operation at `pos` returned before an earlier-placed operation was called.
    RealTime {
        /// The position in the order (0-based).
        pos: usize,
    },
    /// The model rejects the operation at `pos`.
    Illegal {
        /// The position in the order (0-based).
        pos: usize,
    },
    /// The operation at `pos` returned, and its sequential client called an operation
    /// already placed after it.
    ClientOrder {
        /// The position in the order (0-based).
        pos: usize,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::BadIndex { pos } => write!(f, "position {pos}: no such operation"),
            ReplayError::Duplicate { pos } => write!(f, "position {pos}: operation placed twice"),
            ReplayError::RealTime { pos } => write!(f, "position {pos}: breaks real-time order"),
            ReplayError::Illegal { pos } => {
                write!(f, "position {pos}: the model rejects the operation")
            }
            ReplayError::ClientOrder { pos } => {
                write!(f, "position {pos}: breaks its client's order")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// Replays `order` (operation indices, a prefix or a whole linearization of one partition)
/// through the model from its initial state, checking real-time order (and each sequential
/// client's order) among the operations it names too. Returns the state after each step.
pub fn replay<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    order: &[usize],
) -> Result<Vec<M::State>, ReplayError> {
    check_order(history, order)?;
    let ops = history.ops();
    let mut state = model.init();
    let mut states = Vec::with_capacity(order.len());
    for (pos, &i) in order.iter().enumerate() {
        let op = &ops[i];
        state = model.step(&state, &op.input, op.output.as_ref()).ok_or(ReplayError::Illegal { pos })?;
        states.push(state.clone());
    }
    Ok(states)
}

/// Checks that `order` names distinct operations of `history` and places none of them
/// after an operation it must precede (real time; a sequential client's order).
fn check_order<I, O>(history: &History<I, O>, order: &[usize]) -> Result<(), ReplayError> {
    let ops = history.ops();
    let ranks = history.client_ranks();
    let mut placed = vec![false; ops.len()];
    let mut latest_call: Time = 0;
    // Sequential clients: the latest position in its client's order placed so far.
    let mut latest_rank: std::collections::BTreeMap<ClientId, u32> = Default::default();
    for (pos, &i) in order.iter().enumerate() {
        let op = ops.get(i).ok_or(ReplayError::BadIndex { pos })?;
        if std::mem::replace(&mut placed[i], true) {
            return Err(ReplayError::Duplicate { pos });
        }
        latest_call = latest_call.max(op.call);
        if op.ret.is_some_and(|ret| ret < latest_call) {
            return Err(ReplayError::RealTime { pos });
        }
        if !ranks.is_empty() {
            let latest = latest_rank.entry(op.client).or_insert(ranks[i]);
            if op.ret.is_some() && *latest > ranks[i] {
                return Err(ReplayError::ClientOrder { pos });
            }
            *latest = (*latest).max(ranks[i]);
        }
    }
    Ok(())
}

/// The model's partitions, checked to name every operation once, each sorted ascending;
/// empty partitions are dropped.
///
/// # Panics
/// If the model's [`Model::partition`] names an operation outside the history or names one twice.
pub fn partitions<M: Model>(model: &M, history: &History<M::Input, M::Output>) -> Vec<Vec<usize>> {
    let ops = history.ops();
    let Some(mut parts) = model.partition(ops) else {
        return if ops.is_empty() { Vec::new() } else { vec![(0..ops.len()).collect()] };
    };
    let mut seen = vec![false; ops.len()];
    for part in &mut parts {
        part.sort_unstable();
        for &i in part.iter() {
            assert!(i < ops.len(), "Model::partition named operation {i} of a history of {}", ops.len());
            assert!(!std::mem::replace(&mut seen[i], true), "Model::partition named operation {i} twice");
        }
    }
    assert!(seen.iter().all(|&s| s), "Model::partition left out an operation");
    parts.retain(|p| !p.is_empty());
    parts
}

/// Checks `history` against `model`: deterministic, single-threaded.
pub fn check<M: Model>(model: &M, history: &History<M::Input, M::Output>, options: &CheckOptions) -> CheckResult {
    check_until(model, history, options, &|| false)
}

/// As [`check`], but `stop` is polled between slices; when it returns true the check ends
/// with [`Verdict::Unknown`] (for interactive use: a wall-clock timeout lives in `stop`,
/// never in the search).
///
/// # Panics
/// If `options.slice` is 0.
pub fn check_until<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
    stop: &dyn Fn() -> bool,
) -> CheckResult {
    assert!(options.slice > 0, "CheckOptions::slice must be at least 1");
    let ops = history.ops();
    let parts = partitions(model, history);
    let mut reports: Vec<PartitionReport> = parts.iter().map(|p| unfinished_report(model, ops, p)).collect();
    let mut searches: Vec<Option<Search<'_, M>>> = Vec::with_capacity(parts.len());
    // What every unfinished search holds, and their sum.
    let mut held: Vec<usize> = Vec::with_capacity(parts.len());
    for p in &parts {
        let search = Search::new(model, history, p, options.explain);
        held.push(search.bytes());
        searches.push(Some(search));
    }
    let mut held_total: usize = held.iter().sum();
    let mut active: Vec<usize> = (0..parts.len()).collect();
    let mut remaining = options.budget;
    let mut refuted = false;
    let mut reason = None;
    'rounds: while !active.is_empty() {
        if stop() {
            reason = Some(UnknownReason::Stopped);
            break;
        }
        let share = options.slice.min(remaining / active.len() as u64);
        if share == 0 {
            reason = Some(UnknownReason::BudgetExhausted);
            break;
        }
        let mut still = Vec::with_capacity(active.len());
        for (k, &p) in active.iter().enumerate() {
            let search = searches[p].as_mut().expect("active partitions have a search");
            let before = search.steps();
            let room = options.memory_limit.saturating_sub(held_total - held[p]);
            let progress = search.run(share, room);
            remaining -= search.steps() - before;
            held_total -= held[p];
            held[p] = if progress == Progress::Paused { search.bytes() } else { 0 };
            held_total += held[p];
            record(model, history, &mut reports[p], &mut searches[p], progress, &parts[p]);
            match progress {
                Progress::Paused => still.push(p),
                Progress::Linearizable | Progress::OutOfMemory => {}
                Progress::Refuted => {
                    refuted = true;
                    if !options.all_partitions {
                        still.extend_from_slice(&active[k + 1..]);
                        active = still;
                        break 'rounds;
                    }
                }
            }
        }
        active = still;
    }
    // What the unfinished searches found so far.
    for &p in &active {
        let search = searches[p].take().expect("active partitions have a search");
        reports[p].outcome = PartitionOutcome::Unfinished {
            explanation: search.tracks().then(|| explain(model, history, &parts[p], search.into_partials(), false)),
            out_of_memory: false,
        };
    }
    drop(searches);
    finish(history, reports, options, refuted, reason)
}

/// As [`check_until`], with the partitions spread over `threads` OS threads (each
/// interleaving its own partitions) and one shared budget. For interactive use: the
/// verdict is the same whenever the search completes, but step counts, and whether a
/// tight budget suffices, depend on thread timing. `threads <= 1` is [`check_until`].
///
/// # Panics
/// If `options.slice` is 0.
pub fn check_parallel<M>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
    threads: usize,
    stop: &(dyn Fn() -> bool + Sync),
) -> CheckResult
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    let ops = history.ops();
    let parts = partitions(model, history);
    let threads = threads.min(parts.len());
    if threads <= 1 {
        return check_until(model, history, options, stop);
    }
    assert!(options.slice > 0, "CheckOptions::slice must be at least 1");
    let remaining = AtomicU64::new(options.budget);
    let refuted = AtomicBool::new(false);
    let stopped = AtomicBool::new(false);
    let exhausted = AtomicBool::new(false);
    let parts_ref = &parts;
    // Each thread may hold an equal share of the memory budget.
    let memory = options.memory_limit / threads;
    let worker = |w: usize| -> Vec<(usize, PartitionReport)> {
        let mut mine: Vec<(usize, PartitionReport, Option<Search<'_, M>>, usize)> = (w..parts_ref.len())
            .step_by(threads)
            .map(|p| {
                let search = Search::new(model, history, &parts_ref[p], options.explain);
                let held = search.bytes();
                (p, unfinished_report(model, ops, &parts_ref[p]), Some(search), held)
            })
            .collect();
        let mut held_total: usize = mine.iter().map(|m| m.3).sum();
        'rounds: loop {
            let mut any = false;
            for (p, report, slot, held) in mine.iter_mut() {
                let Some(search) = slot.as_mut() else {
                    continue;
                };
                any = true;
                if refuted.load(Ordering::Relaxed) {
                    break 'rounds;
                }
                if stop() {
                    stopped.store(true, Ordering::Relaxed);
                    break 'rounds;
                }
                let grant = match remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| (r > 0).then(|| r - r.min(options.slice)))
                {
                    Ok(before) => before.min(options.slice),
                    Err(_) => {
                        exhausted.store(true, Ordering::Relaxed);
                        break 'rounds;
                    }
                };
                let before = search.steps();
                let progress = search.run(grant, memory.saturating_sub(held_total - *held));
                held_total -= *held;
                *held = if progress == Progress::Paused { search.bytes() } else { 0 };
                held_total += *held;
                let used = search.steps() - before;
                remaining.fetch_add(grant - used, Ordering::Relaxed);
                record(model, history, report, slot, progress, &parts_ref[*p]);
                match progress {
                    Progress::Paused | Progress::Linearizable | Progress::OutOfMemory => {}
                    Progress::Refuted => {
                        refuted.store(true, Ordering::Relaxed);
                        if !options.all_partitions {
                            break 'rounds;
                        }
                    }
                }
            }
            if !any {
                break;
            }
        }
        mine.into_iter()
            .map(|(p, mut report, slot, _)| {
                if let Some(search) = slot {
                    report.outcome = PartitionOutcome::Unfinished {
                        explanation: search
                            .tracks()
                            .then(|| explain(model, history, &parts_ref[p], search.into_partials(), false)),
                        out_of_memory: false,
                    };
                }
                (p, report)
            })
            .collect()
    };
    let worker = &worker;
    let mut reports: Vec<Option<PartitionReport>> = vec![None; parts.len()];
    // Opt-in OS threads, never used by `check`: simulations stay single-threaded.
    #[allow(clippy::disallowed_methods)]
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|w| scope.spawn(move || worker(w))).collect();
        for handle in handles {
            for (p, report) in handle.join().expect("a checker thread panicked") {
                reports[p] = Some(report);
            }
        }
    });
    let reports: Vec<PartitionReport> = reports.into_iter().map(|r| r.expect("every partition reported")).collect();
    let refuted = refuted.load(Ordering::Relaxed);
    let all_done = reports.iter().all(|r| !matches!(r.outcome, PartitionOutcome::Unfinished { .. }));
    let reason = if refuted || all_done {
        None
    } else if exhausted.load(Ordering::Relaxed) || !stopped.load(Ordering::Relaxed) {
        Some(UnknownReason::BudgetExhausted)
    } else {
        Some(UnknownReason::Stopped)
    };
    finish(history, reports, options, refuted, reason)
}

fn unfinished_report<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>], part: &[usize]) -> PartitionReport {
    PartitionReport {
        label: model.describe_partition(ops, part),
        ops: part.to_vec(),
        steps: 0,
        stats: SearchStats::default(),
        outcome: PartitionOutcome::Unfinished { explanation: None, out_of_memory: false },
    }
}

/// Copies a search's progress into its report. A finished search is dropped, freeing its
/// memory; a refuted one, or one out of memory, first gives up its partial linearizations.
fn record<'h, M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    report: &mut PartitionReport,
    slot: &mut Option<Search<'h, M>>,
    progress: Progress,
    part: &[usize],
) {
    let search = slot.as_ref().expect("a running partition has a search");
    report.steps = search.steps();
    report.stats = search.stats();
    match progress {
        Progress::Paused => {}
        Progress::Linearizable => {
            report.outcome =
                PartitionOutcome::Linearizable { order: search.witness().into_iter().map(|i| part[i]).collect() };
            *slot = None;
        }
        Progress::Refuted => {
            let search = slot.take().expect("a running partition has a search");
            let explanation = search.tracks().then(|| explain(model, history, part, search.into_partials(), true));
            report.outcome = PartitionOutcome::NotLinearizable { explanation };
        }
        Progress::OutOfMemory => {
            let search = slot.take().expect("a running partition has a search");
            let explanation = search.tracks().then(|| explain(model, history, part, search.into_partials(), false));
            report.outcome = PartitionOutcome::Unfinished { explanation, out_of_memory: true };
        }
    }
}

fn finish<I, O>(
    history: &History<I, O>,
    reports: Vec<PartitionReport>,
    options: &CheckOptions,
    refuted: bool,
    mut reason: Option<UnknownReason>,
) -> CheckResult {
    let steps = reports.iter().map(|r| r.steps).sum();
    let mut verdict = if refuted {
        Verdict::NotLinearizable
    } else if reports.iter().all(|r| matches!(r.outcome, PartitionOutcome::Linearizable { .. })) {
        Verdict::Linearizable
    } else {
        Verdict::Unknown
    };
    if verdict == Verdict::Linearizable && history.sequential_clients() && reports.len() > 1 {
        let orders: Vec<&[usize]> = reports
            .iter()
            .map(|r| match &r.outcome {
                PartitionOutcome::Linearizable { order } => order.as_slice(),
                _ => unreachable!("every partition is linearizable"),
            })
            .collect();
        if merge_witnesses(history, &orders).is_none() {
            verdict = Verdict::Unknown;
            reason = Some(UnknownReason::ClientOrderAcrossPartitions);
        }
    }
    let out_of_memory =
        reports.iter().any(|r| matches!(r.outcome, PartitionOutcome::Unfinished { out_of_memory: true, .. }));
    if verdict == Verdict::Unknown && out_of_memory {
        reason = Some(UnknownReason::MemoryExhausted);
    }
    let unknown_reason =
        if verdict == Verdict::Unknown { Some(reason.expect("an unknown verdict has a reason")) } else { None };
    CheckResult { verdict, unknown_reason, steps, budget: options.budget, partitions: reports }
}

/// Turns a search's records into partial linearizations, and works out which operations
/// block each of them (`complete`: the search was refuted, so every operation real time
/// allows next must be rejected).
fn explain<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    part: &[usize],
    (mut local_prefixes, per_op): (Vec<Vec<usize>>, Vec<Option<usize>>),
    complete: bool,
) -> Explanation {
    if local_prefixes.is_empty() {
        // Not one operation can go first: the empty prefix is the longest, and what
        // blocks it is what could not be linearized.
        local_prefixes.push(Vec::new());
    }
    let prefixes = local_prefixes
        .into_iter()
        .map(|local| {
            let order: Vec<usize> = local.iter().map(|&i| part[i]).collect();
            let blocked = blocked_after(model, history, part, &order, complete);
            PartialLinearization { order, blocked }
        })
        .collect();
    Explanation { prefixes, longest: per_op }
}

/// The operations of `part` that real time allows right after `order` (called no later
/// than the earliest return among the rest, and not after an unplaced operation of `part`
/// that returned, in a sequential client's order) and the model rejects there. After a
/// refutation (`complete`) that is all of them: were one accepted, the search would have
/// recorded a longer prefix for every operation of `order`.
fn blocked_after<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    part: &[usize],
    order: &[usize],
    complete: bool,
) -> Vec<usize> {
    let ops = history.ops();
    let states = replay(model, history, order).expect("a recorded prefix replays");
    let state = states.last().cloned().unwrap_or_else(|| model.init());
    let mut placed = vec![false; ops.len()];
    for &i in order {
        placed[i] = true;
    }
    let rest: Vec<usize> = part.iter().copied().filter(|&i| !placed[i]).collect();
    assert!(!rest.is_empty(), "a refuted partition's prefix leaves operations out");
    let earliest_return = rest.iter().map(|&i| ops[i].ret.unwrap_or(Time::MAX)).min().unwrap_or(Time::MAX);
    // Sequential clients: per client, the earliest (in its order) operation of the rest that
    // returned; a later operation of that client must wait for it.
    let ranks = history.client_ranks();
    let mut first_waiting: std::collections::BTreeMap<ClientId, u32> = Default::default();
    if !ranks.is_empty() {
        for &i in rest.iter().filter(|&&i| ops[i].ret.is_some()) {
            let rank = first_waiting.entry(ops[i].client).or_insert(ranks[i]);
            *rank = (*rank).min(ranks[i]);
        }
    }
    let ready = |i: usize| first_waiting.get(&ops[i].client).is_none_or(|&first| first >= ranks[i]);
    let allowed = rest.into_iter().filter(|&i| ops[i].call <= earliest_return && ready(i));
    let rejected = |i: &usize| model.step(&state, &ops[*i].input, ops[*i].output.as_ref()).is_none();
    if !complete {
        return allowed.filter(rejected).collect();
    }
    let blocked: Vec<usize> = allowed.collect();
    for i in &blocked {
        assert!(rejected(i), "operation {i} extends a longest prefix: the model's step is not a pure function");
    }
    blocked
}
