//! Checking a whole history: partitions, the deterministic interleaving, verdicts.
//!
//! Partitions are searched in a round-robin of step slices on one thread, so the verdict
//! and every step count are a pure function of the history and the options. Each round
//! gives every unfinished partition the same allowance (`slice`, or an equal share of
//! what is left of the budget), so when the budget runs out every unfinished partition
//! has had the same number of steps, and whether some partition is refuted within the
//! budget does not depend on the order partitions are listed in. The first refutation
//! ends the check: a refutation anywhere wins over a budget running out elsewhere.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::history::{History, Operation, Time};
use super::model::Model;
use super::search::{Progress, Search, SearchStats};

/// The default step budget: ten times what the largest history of the Porcupine suite
/// needs (about a second of search), yet finite so that a pathological history inside a
/// simulation sweep ends with `unknown` rather than exhausting memory: a search keeps
/// every configuration it visits, and with long key/value strings ten million steps can
/// take several hundred megabytes.
pub const DEFAULT_BUDGET: u64 = 10_000_000;

/// Steps a partition runs before the next partition's turn.
pub const DEFAULT_SLICE: u64 = 10_000;

/// How to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Search steps allowed over the whole history; when they run out before a verdict,
    /// the verdict is [`Verdict::Unknown`].
    pub budget: u64,
    /// Steps per partition per round of the interleaving (at least 1).
    pub slice: u64,
    /// Record, during the search, the longest linearizable prefix containing each
    /// operation, for the explanation of a refutation (Porcupine's partial
    /// linearizations). Costs a little time per step and 8 bytes per configuration.
    pub explain: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { budget: DEFAULT_BUDGET, slice: DEFAULT_SLICE, explain: true }
    }
}

/// The answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// There is an order of the operations consistent with real time and the model.
    Linearizable,
    /// There is none.
    NotLinearizable,
    /// The search stopped (budget exhausted, or asked to stop) before an answer.
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
    /// The caller's stop function said to stop (e.g. a wall-clock timeout).
    Stopped,
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
    /// Not searched to completion (budget, stop, or another partition was refuted first).
    Unfinished,
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
        let PartitionOutcome::NotLinearizable { explanation: Some(e) } = &self.outcome else {
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
    /// with real time and, restricted to each partition, is that partition's witness.
    ///
    /// Each operation is given a linearization point, the latest call among it and the
    /// operations before it in its partition's witness; the points are non-decreasing
    /// along a witness, lie within each operation's interval (a later operation of the
    /// witness cannot have returned before an earlier one was called), and so sorting by
    /// them merges the partitions without breaking real time.
    pub fn witness<I, O>(&self, history: &History<I, O>) -> Option<Vec<usize>> {
        if !self.is_linearizable() {
            return None;
        }
        let ops = history.ops();
        let mut keyed: Vec<(Time, usize, usize, usize)> = Vec::with_capacity(ops.len());
        for (p, report) in self.partitions.iter().enumerate() {
            let PartitionOutcome::Linearizable { order } = &report.outcome else {
                unreachable!("a linearizable verdict has only linearizable partitions");
            };
            let mut point = 0;
            for (k, &op) in order.iter().enumerate() {
                point = point.max(ops[op].call);
                keyed.push((point, p, k, op));
            }
        }
        keyed.sort_unstable();
        Some(keyed.into_iter().map(|(_, _, _, op)| op).collect())
    }
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
        }
    }
}

impl std::error::Error for ReplayError {}

/// Replays `order` (operation indices, a prefix or a whole linearization of one partition)
/// through the model from its initial state, checking real-time order too. Returns the
/// state after each step.
pub fn replay<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    order: &[usize],
) -> Result<Vec<M::State>, ReplayError> {
    let mut placed = vec![false; ops.len()];
    let mut latest_call: Time = 0;
    let mut state = model.init();
    let mut states = Vec::with_capacity(order.len());
    for (pos, &i) in order.iter().enumerate() {
        let op = ops.get(i).ok_or(ReplayError::BadIndex { pos })?;
        if std::mem::replace(&mut placed[i], true) {
            return Err(ReplayError::Duplicate { pos });
        }
        latest_call = latest_call.max(op.call);
        if op.ret.is_some_and(|ret| ret < latest_call) {
            return Err(ReplayError::RealTime { pos });
        }
        state = model.step(&state, &op.input, op.output.as_ref()).ok_or(ReplayError::Illegal { pos })?;
        states.push(state.clone());
    }
    Ok(states)
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
    let mut searches: Vec<Option<Search<'_, M>>> =
        parts.iter().map(|p| Some(Search::new(model, ops, p, options.explain))).collect();
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
        for &p in &active {
            let search = searches[p].as_mut().expect("active partitions have a search");
            let before = search.steps();
            let progress = search.run(share);
            remaining -= search.steps() - before;
            record(model, ops, &mut reports[p], &mut searches[p], progress, &parts[p]);
            match progress {
                Progress::Paused => still.push(p),
                Progress::Linearizable => {}
                Progress::Refuted => {
                    refuted = true;
                    break 'rounds;
                }
            }
        }
        active = still;
    }
    drop(searches);
    finish(reports, options, refuted, reason)
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
    let worker = |w: usize| -> Vec<(usize, PartitionReport)> {
        let mut mine: Vec<(usize, PartitionReport, Option<Search<'_, M>>)> = (w..parts_ref.len())
            .step_by(threads)
            .map(|p| {
                let search = Search::new(model, ops, &parts_ref[p], options.explain);
                (p, unfinished_report(model, ops, &parts_ref[p]), Some(search))
            })
            .collect();
        'rounds: loop {
            let mut any = false;
            for (p, report, slot) in mine.iter_mut() {
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
                let progress = search.run(grant);
                let used = search.steps() - before;
                remaining.fetch_add(grant - used, Ordering::Relaxed);
                record(model, ops, report, slot, progress, &parts_ref[*p]);
                match progress {
                    Progress::Paused | Progress::Linearizable => {}
                    Progress::Refuted => {
                        refuted.store(true, Ordering::Relaxed);
                        break 'rounds;
                    }
                }
            }
            if !any {
                break;
            }
        }
        mine.into_iter().map(|(p, report, _)| (p, report)).collect()
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
    let all_done = reports.iter().all(|r| !matches!(r.outcome, PartitionOutcome::Unfinished));
    let reason = if refuted || all_done {
        None
    } else if exhausted.load(Ordering::Relaxed) || !stopped.load(Ordering::Relaxed) {
        Some(UnknownReason::BudgetExhausted)
    } else {
        Some(UnknownReason::Stopped)
    };
    finish(reports, options, refuted, reason)
}

fn unfinished_report<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>], part: &[usize]) -> PartitionReport {
    PartitionReport {
        label: model.describe_partition(ops, part),
        ops: part.to_vec(),
        steps: 0,
        stats: SearchStats::default(),
        outcome: PartitionOutcome::Unfinished,
    }
}

/// Copies a search's progress into its report. A finished search is dropped, freeing its
/// memory; a refuted one first gives up its partial linearizations.
fn record<'h, M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
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
            let explanation = search.tracks().then(|| explain(model, ops, part, search.partials()));
            report.outcome = PartitionOutcome::NotLinearizable { explanation };
        }
    }
}

fn finish(
    reports: Vec<PartitionReport>,
    options: &CheckOptions,
    refuted: bool,
    reason: Option<UnknownReason>,
) -> CheckResult {
    let steps = reports.iter().map(|r| r.steps).sum();
    let verdict = if refuted {
        Verdict::NotLinearizable
    } else if reports.iter().all(|r| matches!(r.outcome, PartitionOutcome::Linearizable { .. })) {
        Verdict::Linearizable
    } else {
        Verdict::Unknown
    };
    let unknown_reason =
        if verdict == Verdict::Unknown { Some(reason.expect("an unknown verdict has a reason")) } else { None };
    CheckResult { verdict, unknown_reason, steps, budget: options.budget, partitions: reports }
}

/// Turns a refuted search's records into partial linearizations, and works out which
/// operations block each of them.
fn explain<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    part: &[usize],
    (mut local_prefixes, per_op): (Vec<Vec<usize>>, Vec<Option<usize>>),
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
            let blocked = blocked_after(model, ops, part, &order);
            PartialLinearization { order, blocked }
        })
        .collect();
    Explanation { prefixes, longest: per_op }
}

/// The operations of `part` that real time allows right after `order` (called no later
/// than the earliest return among the rest), all of which the model must reject: were one
/// accepted, the search would have recorded a longer prefix for every operation of `order`.
fn blocked_after<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    part: &[usize],
    order: &[usize],
) -> Vec<usize> {
    let states = replay(model, ops, order).expect("a recorded prefix replays");
    let state = states.last().cloned().unwrap_or_else(|| model.init());
    let mut placed = vec![false; ops.len()];
    for &i in order {
        placed[i] = true;
    }
    let rest: Vec<usize> = part.iter().copied().filter(|&i| !placed[i]).collect();
    assert!(!rest.is_empty(), "a refuted partition's prefix leaves operations out");
    let earliest_return = rest.iter().map(|&i| ops[i].ret.unwrap_or(Time::MAX)).min().unwrap_or(Time::MAX);
    let blocked: Vec<usize> = rest.into_iter().filter(|&i| ops[i].call <= earliest_return).collect();
    for &i in &blocked {
        assert!(
            model.step(&state, &ops[i].input, ops[i].output.as_ref()).is_none(),
            "operation {i} extends a longest prefix: the model's step is not a pure function"
        );
    }
    blocked
}
