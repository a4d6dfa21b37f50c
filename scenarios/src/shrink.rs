//! Shrinking a failing swarm run: keep the failure — the same class, caught by the same
//! check — while removing fault events, clerks, servers and operations, shortening the
//! safety phase and lowering rates. Each candidate is a [`ScenarioSpec`] run with the same
//! seed; it is accepted while it still fails the same way.
//!
//! First of all, the run without its swarm knobs (the engine's own timing, no fault point),
//! then without its timing alone: a failure that does not need them keeps neither, and
//! shrinks further without them (a hold point or another timing moves every later event).
//! Fault events and clerks go by delta debugging ([`ddmin`], Zeller and Hildebrandt,
//! "Simplifying and Isolating Failure-Inducing Input", TSE 2002: try halves, then
//! complements, then finer splits), servers one at a time from the highest-numbered (events
//! naming a removed server lose it; a sharded file's groups by delta debugging, then each
//! group's and the controller's last server), a sharded file's configuration changes by
//! delta debugging and each one's time by bisection towards the one before it (an earlier
//! change needs fewer operations before it), operation caps and the safety phase by bisection, rates,
//! a key/value or sharded workload's snapshot threshold and keys by halving, idle time
//! between timed steps closed by bisection (everything later moves earlier together); the enabled fault points by delta debugging too (each point draws from its
//! own stream, so disabling one leaves the others' draws as they were). The passes repeat until a whole round changes nothing or the run budget is
//! spent.
//!
//! Draws stay put where the design allows (see `crate::spec`): the knobs are in the file,
//! not redrawn; each clerk draws from a stream named by its id; the drawn schedule is drawn
//! and discarded, so the streams after it do not move. What cannot stay put is drawn in
//! event order — the fault resolver's choice of a `follower` or `down` node, the network's
//! loss and delay draws — so a candidate can pass by chance of those; it is then simply not
//! accepted, and the search goes on with the next candidate.

use crate::registry::{run_scenario, Opts, Scenario};
use crate::spec::{server_index, Burst, Clerk, ConfigChange, ScenarioSpec, SpecFile, SpecRecorder, Workload};
use sim::faults::{Fault, FaultEvent, Target};
use sim::trace::Kind;
use sim::{CapturedEvent, FailureClass, FaultPoint, Outcome, RunReport, TraceMode};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// How a run failed: what a shrunk candidate must keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureKind {
    /// Safety, liveness or panic.
    pub class: FailureClass,
    /// The check that caught it (`Failure::checker`).
    pub checker: String,
}

impl FailureKind {
    /// The kind of a failing outcome; `None` for a pass.
    pub fn of(outcome: &Outcome) -> Option<FailureKind> {
        match outcome {
            Outcome::Pass => None,
            Outcome::Fail(f) => Some(FailureKind { class: f.class, checker: f.checker.clone() }),
        }
    }
}

/// The sizes the shrinker reports before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Fault events in the schedule.
    pub fault_events: usize,
    /// Operation events started: proposal rounds (a burst counting once), or the clerks'
    /// operations (and a sharded workload's configuration changes, one each).
    pub operations: u64,
    /// The configuration changes among `operations` (a sharded workload's; else 0).
    pub config_changes: usize,
    /// Commands those operations offered (a burst offers several; otherwise as
    /// `operations`).
    pub commands: u64,
    /// Servers.
    pub servers: usize,
    /// Clients: the proposer, or the clerks.
    pub clients: usize,
    /// Simulated time of the run, in nanoseconds.
    pub sim_time_ns: u64,
    /// Trace events of the run.
    pub trace_events: u64,
}

impl Sizes {
    /// The sizes of `spec` run as `report`.
    pub fn of(spec: &ScenarioSpec, report: &RunReport) -> Sizes {
        Sizes {
            fault_events: spec.events.len(),
            operations: spec.workload.operations(),
            config_changes: spec.workload.config_changes(),
            commands: spec.workload.commands(),
            servers: spec.servers,
            clients: spec.workload.clients(),
            sim_time_ns: report.sim_time.as_nanos() as u64,
            trace_events: report.events,
        }
    }

    /// Fault events plus operations: the "events" a person reads in a reproduction.
    pub fn fault_and_operation_events(&self) -> u64 {
        self.fault_events as u64 + self.operations
    }
}

/// What [`shrink`] found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// How every accepted candidate fails.
    pub failure: FailureKind,
    /// The resolved scenario of the original run.
    pub original: ScenarioSpec,
    /// The smallest candidate found that fails the same way.
    pub smallest: ScenarioSpec,
    /// Sizes of the original run and of the smallest.
    pub before: Sizes,
    /// See `before`.
    pub after: Sizes,
    /// Candidate runs made (the original's two runs not counted).
    pub runs: usize,
    /// Candidates accepted.
    pub accepted: usize,
}

/// Why a run could not be shrunk: bad input for the caller to report (exit 4).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShrinkError {
    /// The run passes: there is no failure to keep.
    #[error("{scenario} --seed {seed} passes: there is no failure to shrink")]
    Passes {
        /// The scenario.
        scenario: &'static str,
        /// The seed.
        seed: u64,
    },
    /// The run ended before the scenario recorded its resolved knobs.
    #[error("{scenario} --seed {seed} failed before it resolved its scenario ({failure}): nothing to shrink")]
    NotResolved {
        /// The scenario.
        scenario: &'static str,
        /// The seed.
        seed: u64,
        /// How it failed.
        failure: String,
    },
    /// The resolved scenario run from its file does not fail as the original did: a bug of
    /// the scenario's file support, reported rather than shrunk around.
    #[error(
        "{scenario} --seed {seed}: the resolved scenario run from its file ended '{got}', the original '{want}'; it cannot be shrunk"
    )]
    NotReproduced {
        /// The scenario.
        scenario: &'static str,
        /// The seed.
        seed: u64,
        /// The original outcome.
        want: String,
        /// The outcome from the file.
        got: String,
    },
}

/// Runs `sc` under `seed` with `opts` (its planted bug, and a scenario file if it is one),
/// recording the resolved scenario. The options must have been checked
/// (`Catalogue::check_opts`).
pub fn resolve(sc: &Scenario, seed: u64, opts: &Opts) -> (RunReport, Option<ScenarioSpec>) {
    let recorder = SpecRecorder::new(sc.name);
    let opts = Opts { record_scenario: Some(recorder.clone()), ..opts.clone() };
    let report = run_scenario(sc, seed, &opts, TraceMode::Hash, None);
    (report, recorder.take())
}

/// Runs `spec` as a scenario file of `sc` under `seed`.
pub fn run_spec(sc: &Scenario, seed: u64, spec: &ScenarioSpec, trace: TraceMode) -> RunReport {
    run_scenario(sc, seed, &spec_opts(spec), trace, None)
}

/// The options that run `spec`: its file and its planted bug.
pub fn spec_opts(spec: &ScenarioSpec) -> Opts {
    Opts {
        bug: spec.bug.clone(),
        scenario_file: Some(SpecFile {
            path: PathBuf::from("<shrink candidate>"),
            spec: spec.clone(),
            text: String::new(),
        }),
        ..Opts::default()
    }
}

/// Shrinks the failing run of `sc` under `seed` with `opts` (checked by the caller: a
/// scenario that takes scenario files, its bug, maybe a file). At most `max_runs` candidate
/// runs; `progress` hears one line per accepted candidate.
///
/// # Errors
/// [`ShrinkError`] when the run passes, fails before resolving its scenario, or its
/// resolved scenario does not reproduce the failure.
pub fn shrink(
    sc: &Scenario,
    seed: u64,
    opts: &Opts,
    max_runs: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Shrunk, ShrinkError> {
    let (report, spec) = resolve(sc, seed, opts);
    let Some(failure) = FailureKind::of(&report.outcome) else {
        return Err(ShrinkError::Passes { scenario: sc.name, seed });
    };
    let Some(original) = spec else {
        return Err(ShrinkError::NotResolved { scenario: sc.name, seed, failure: report.outcome.to_string() });
    };
    let again = run_spec(sc, seed, &original, TraceMode::Hash);
    if FailureKind::of(&again.outcome).as_ref() != Some(&failure) {
        return Err(ShrinkError::NotReproduced {
            scenario: sc.name,
            seed,
            want: report.outcome.to_string(),
            got: again.outcome.to_string(),
        });
    }
    let before = Sizes::of(&original, &again);
    let mut s = Search {
        sc,
        seed,
        original_seed: seed,
        failure,
        best: original.clone(),
        best_report: again,
        runs: 0,
        max_runs,
        accepted: 0,
    };
    // First the run without its swarm knobs: a failure that does not need them shrinks
    // further without them (a hold point or skewed timing moves every later event, so most
    // removals lose the failure), and the file then names none.
    s.knobs(progress);
    loop {
        let accepted_before = s.accepted;
        s.events(progress);
        s.config_changes(progress);
        s.config_change_times(progress);
        s.fault_points(progress);
        s.clerks(progress);
        // Crashes at fixed times before early operations go: a crash point's firings follow
        // the saves and replies reached, which removing an operation moves.
        s.crash_points_as_events(progress);
        s.clerk_starts(progress);
        s.servers(progress);
        s.snapshot_threshold(progress);
        s.operations(progress);
        s.bursts(progress);
        s.safety_phase(progress);
        s.rates(progress);
        s.keys(progress);
        s.close_gaps(progress);
        if s.accepted == accepted_before || s.runs >= s.max_runs {
            break;
        }
    }
    let after = Sizes::of(&s.best, &s.best_report);
    Ok(Shrunk { failure: s.failure, original, smallest: s.best, before, after, runs: s.runs, accepted: s.accepted })
}

/// Other seeds a candidate is tried under when it does not fail the same way under the
/// current one.
const RESEEDS: usize = 2;

/// The `n`th other seed tried: a hash of the original seed and a counter, so a shrink is a
/// function of its inputs and the seeds tried do not repeat.
fn reseed(original: u64, n: usize) -> u64 {
    sim::rng::mix64(original ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 16
}

/// Proposal rounds delta debugging takes on one by one: each removal is a run, and a long
/// list is first shortened by merging neighbours.
const MAX_ROUNDS_TO_DDMIN: usize = 128;

/// The search's state: the smallest failing candidate so far and the run budget.
struct Search<'a> {
    sc: &'a Scenario,
    /// The seed the best candidate fails under (`best.seed`).
    seed: u64,
    /// The seed of the run being shrunk.
    original_seed: u64,
    failure: FailureKind,
    best: ScenarioSpec,
    best_report: RunReport,
    runs: usize,
    max_runs: usize,
    accepted: usize,
}

impl Search<'_> {
    /// Runs `candidate`; makes it the best if it fails the same way. False once the budget
    /// is spent.
    fn try_candidate(&mut self, candidate: ScenarioSpec, what: &str, progress: &mut dyn FnMut(&str)) -> bool {
        if self.runs >= self.max_runs || candidate == self.best {
            return false;
        }
        // A candidate that no longer fits its scenario (it cannot be written as a valid
        // file) is not run.
        let kind = self.sc.faults.and_then(|f| f.workload);
        if kind.is_some_and(|k| candidate.check(self.sc.name, k).is_err()) {
            return false;
        }
        // The candidate under the current seed; if it passes or fails otherwise, under a few
        // other seeds: a removed event or a merged round shifts the draws made in event
        // order (the network's), so whether the failure stays is partly chance. A seed
        // that keeps it is recorded in the candidate (`seed`), and the file runs under it.
        let mut kept = None;
        for attempt in 0..=RESEEDS {
            if self.runs >= self.max_runs {
                return false;
            }
            let seed = if attempt == 0 { self.seed } else { reseed(self.original_seed, self.runs) };
            self.runs += 1;
            let mut c = candidate.clone();
            c.seed = seed;
            let r = run_spec(self.sc, seed, &c, TraceMode::Hash);
            if FailureKind::of(&r.outcome).as_ref() == Some(&self.failure) {
                kept = Some((c, r));
                break;
            }
        }
        let Some((candidate, r)) = kept else { return false };
        self.seed = candidate.seed;
        self.accepted += 1;
        // The last timed step is shown so that closing idle time, which changes no count,
        // does not print the same line again and again; a step that moved while the rest
        // stayed (a change's or a burst's time) is named by its old and new time.
        let (before, after) = (step_times(&self.best), step_times(&candidate));
        let moved = (before.len() == after.len())
            .then(|| before.iter().zip(&after).find(|(b, a)| b != a))
            .flatten()
            .map(|(b, a)| format!(", a step moved {:.3}s -> {:.3}s", *b as f64 / 1000.0, *a as f64 / 1000.0))
            .unwrap_or_default();
        progress(&format!(
            "  kept ({what}): {}, {}, {:.3}s safety phase, last step at {:.3}s{moved}",
            crate::count(candidate.events.len(), "fault event"),
            candidate.workload.shape(candidate.servers),
            candidate.safety_ms as f64 / 1000.0,
            after.last().copied().unwrap_or(0) as f64 / 1000.0
        ));
        self.best = candidate;
        self.best_report = r;
        true
    }

    fn events(&mut self, progress: &mut dyn FnMut(&str)) {
        let events = self.best.events.clone();
        let kept = ddmin(events, &mut |subset: &[FaultEvent]| {
            let candidate = ScenarioSpec { events: subset.to_vec(), ..self.best.clone() };
            self.try_candidate(candidate, "fault events", progress)
        });
        debug_assert_eq!(kept, self.best.events);
    }

    /// Tries the best candidate without every swarm knob (the engine's own timing and no
    /// fault point), then without its timing alone; keeps the first that still fails the
    /// same way.
    fn knobs(&mut self, progress: &mut dyn FnMut(&str)) {
        let plain = ScenarioSpec { timing: None, fault_points: Default::default(), ..self.best.clone() };
        if !self.try_candidate(plain, "knobs", progress) {
            let untimed = ScenarioSpec { timing: None, ..self.best.clone() };
            self.try_candidate(untimed, "timing", progress);
        }
    }

    /// Disables the code-level fault points the failure does not need (delta debugging over
    /// the enabled set), so the shrunk file names only those it does.
    fn fault_points(&mut self, progress: &mut dyn FnMut(&str)) {
        let points: Vec<(String, u32)> = self.best.fault_points.clone().into_iter().collect();
        ddmin(points, &mut |subset: &[(String, u32)]| {
            let candidate = ScenarioSpec { fault_points: subset.iter().cloned().collect(), ..self.best.clone() };
            self.try_candidate(candidate, "fault points", progress)
        });
    }

    /// Replaces the enabled crash points (`persist.crash_after_save`,
    /// `replica.crash_after_reply`, `replica.crash_after_vote`) with the crashes they made in
    /// the best candidate's run, as schedule events: a crash right after the node's next save
    /// from the millisecond the point fired in (`crash_after_save`; the same save unless the
    /// node saved earlier in that millisecond), or a crash in the next millisecond (after the
    /// reply left), and a restart when the point would have restarted it. A point's firings
    /// follow its own stream, once per save or reply reached, so removing an operation or a
    /// clerk moves every later crash and loses most failures that need one; crashes at fixed
    /// times stay put while the rest shrinks, and delta debugging then removes those the
    /// failure does not need.
    fn crash_points_as_events(&mut self, progress: &mut dyn FnMut(&str)) {
        let enabled: Vec<String> = self.best.fault_points.keys().filter(|p| is_crash_point(p)).cloned().collect();
        if enabled.is_empty() || self.runs >= self.max_runs {
            return;
        }
        self.runs += 1;
        let r = run_spec(self.sc, self.seed, &self.best, TraceMode::Capture);
        let mut events = self.best.events.clone();
        // Each node's saves in the current millisecond, so that an armed crash comes after
        // the same save as the point's (`saves`: the k-th from the millisecond's start).
        let mut saves: std::collections::BTreeMap<String, (u64, u32)> = Default::default();
        for ev in &r.captured {
            if let (Kind::Persist, Some(node)) = (ev.kind, ev.node) {
                let at_ms = ev.at_ns / 1_000_000;
                let n = saves.entry(r.node_names[usize::from(node)].clone()).or_insert((at_ms, 0));
                *n = if n.0 == at_ms { (n.0, n.1 + 1) } else { (at_ms, 1) };
                continue;
            }
            let Some(firing) = CrashFiring::of(ev, &r.node_names) else { continue };
            let nth = saves.get(&firing.node).filter(|(ms, _)| *ms == firing.at_us / 1000).map_or(1, |&(_, n)| n);
            events.extend(firing.events(self.best.safety_ms, nth));
        }
        // A stable sort: the candidate's own events keep their order within a millisecond.
        events.sort_by_key(|e| e.at_ms);
        let mut fault_points = self.best.fault_points.clone();
        fault_points.retain(|p, _| !enabled.contains(p));
        let candidate = ScenarioSpec { events, fault_points, ..self.best.clone() };
        self.try_candidate(candidate, "crash points as events", progress);
    }

    /// Removes each clerk's early operations, keeping its later ones as they were: the
    /// clerk skips its first `m` operations' draws ([`crate::spec::Clerk::skip`]) and starts
    /// when its `m`-th operation started in the best candidate's run (`start_ms`), so the
    /// operations a failure needs near a crash or a partition stay where they were while
    /// those that only filled the time before go. Bisection for the largest `m` per clerk.
    fn clerk_starts(&mut self, progress: &mut dyn FnMut(&str)) {
        let clerks = self.best.workload.clerks().to_vec();
        if clerks.is_empty() || self.runs >= self.max_runs {
            return;
        }
        self.runs += 1;
        let r = run_spec(self.sc, self.seed, &self.best, TraceMode::Capture);
        let mut calls: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for ev in &r.captured {
            if let Some(client) = sim::history::call_client(ev) {
                calls.entry(client).or_default().push(ev.at_ns / 1_000_000);
            }
        }
        for (i, c) in clerks.iter().enumerate() {
            let Some(starts) = calls.get(&c.id) else { continue };
            let (mut keep, mut most) = (0, (starts.len() as u64).min(c.operations).saturating_sub(1));
            while keep < most && self.runs < self.max_runs {
                let m = keep + (most - keep).div_ceil(2);
                let mut candidate = self.best.clone();
                let Some(clerks) = candidate.workload.clerks_mut() else { return };
                clerks[i] = Clerk {
                    skip: c.skip + m,
                    start_ms: starts[m as usize].max(c.start_ms),
                    operations: c.operations - m,
                    ..*c
                };
                if self.try_candidate(candidate, "clerks' early operations", progress) {
                    keep = m;
                } else {
                    most = m - 1;
                }
            }
        }
    }

    fn clerks(&mut self, progress: &mut dyn FnMut(&str)) {
        let Some(clerks) = self.best.workload.clone().clerks_mut().map(|c| c.clone()) else { return };
        ddmin(clerks, &mut |subset| {
            let mut candidate = self.best.clone();
            if let Some(clerks) = candidate.workload.clerks_mut() {
                *clerks = subset.to_vec();
            }
            self.try_candidate(candidate, "clerks", progress)
        });
    }

    /// A sharded workload's configuration changes after the first join (the service needs
    /// one), by delta debugging: a candidate that leaves a change meaningless (a leave of a
    /// group no join brought) does not fit its scenario and is not run.
    fn config_changes(&mut self, progress: &mut dyn FnMut(&str)) {
        let Workload::Sharded { changes, .. } = &self.best.workload else { return };
        let Some((first, rest)) = changes.split_first() else { return };
        let (first, rest) = (first.clone(), rest.to_vec());
        ddmin(rest, &mut |subset: &[ConfigChange]| {
            let mut candidate = self.best.clone();
            if let Workload::Sharded { changes, .. } = &mut candidate.workload {
                *changes = std::iter::once(first.clone()).chain(subset.iter().cloned()).collect();
            }
            self.try_candidate(candidate, "configuration changes", progress)
        });
    }

    /// Each configuration change after the first, as early as the failure allows (bisected
    /// down to the change before it): a change that comes earlier needs fewer of the
    /// clerks' operations before it, so the operation caps that follow can go lower.
    fn config_change_times(&mut self, progress: &mut dyn FnMut(&str)) {
        for i in 1..self.best.workload.config_changes() {
            let at = |spec: &ScenarioSpec, i: usize| match &spec.workload {
                Workload::Sharded { changes, .. } => changes.get(i).map(ConfigChange::at_ms),
                _ => None,
            };
            let (Some(prev), Some(cur)) = (at(&self.best, i - 1), at(&self.best, i)) else { return };
            let (mut lo, mut hi) = (prev, cur);
            while lo < hi && self.runs < self.max_runs {
                let mid = lo + (hi - lo) / 2;
                let mut candidate = self.best.clone();
                if let Workload::Sharded { changes, .. } = &mut candidate.workload {
                    let (ConfigChange::Join { at_ms, .. }
                    | ConfigChange::Leave { at_ms, .. }
                    | ConfigChange::Move { at_ms, .. }) = &mut changes[i];
                    *at_ms = mid;
                }
                if self.try_candidate(candidate, "configuration change times", progress) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
    }

    fn servers(&mut self, progress: &mut dyn FnMut(&str)) {
        if let Workload::Sharded { .. } = self.best.workload {
            return self.sharded_servers(progress);
        }
        while self.best.servers > 1 {
            let candidate = without_last_server(&self.best);
            if !self.try_candidate(candidate, "servers", progress) {
                break;
            }
        }
    }

    /// A sharded workload's servers: whole groups by delta debugging (what names a removed
    /// group goes with it: [`without_groups`]), then each group's last server and the
    /// controller's, one at a time, while the failure stays.
    fn sharded_servers(&mut self, progress: &mut dyn FnMut(&str)) {
        let Workload::Sharded { groups, .. } = &self.best.workload else { return };
        let gids: Vec<u64> = groups.iter().map(|g| g.gid).collect();
        ddmin(gids.clone(), &mut |subset: &[u64]| {
            let gone: BTreeSet<u64> = gids.iter().copied().filter(|g| !subset.contains(g)).collect();
            let candidate = without_groups(&self.best, &gone);
            self.try_candidate(candidate, "groups", progress)
        });
        let Workload::Sharded { groups, .. } = &self.best.workload else { return };
        for gid in groups.iter().map(|g| g.gid).collect::<Vec<_>>() {
            while let Some(candidate) = without_last_of(&self.best, Some(gid)) {
                if !self.try_candidate(candidate, "group servers", progress) {
                    break;
                }
            }
        }
        while let Some(candidate) = without_last_of(&self.best, None) {
            if !self.try_candidate(candidate, "controller servers", progress) {
                break;
            }
        }
    }

    /// Halves the workload number `field` names (nothing when the workload has none) while
    /// the failure stays, down to 1.
    fn halve_while_failing<T>(
        &mut self,
        what: &str,
        field: fn(&mut Workload) -> Option<&mut T>,
        progress: &mut dyn FnMut(&str),
    ) where
        T: Copy + PartialOrd + From<u8> + std::ops::Div<Output = T>,
    {
        loop {
            let Some(&mut value) = field(&mut self.best.workload.clone()) else { return };
            if value <= T::from(1) || self.runs >= self.max_runs {
                return;
            }
            let mut candidate = self.best.clone();
            if let Some(v) = field(&mut candidate.workload) {
                *v = value / T::from(2);
            }
            if !self.try_candidate(candidate, what, progress) {
                return;
            }
        }
    }

    /// A key/value workload's snapshot threshold (`maxraftstate`), halved while the failure
    /// stays: a failure that needs a snapshot then needs fewer operations to reach one, so
    /// the operation caps that follow can go lower. Down to 1 (a snapshot after every
    /// apply); a candidate that fails another way first, for instance by the course's size
    /// check (saved state at most 8 × `maxraftstate`), is not accepted.
    fn snapshot_threshold(&mut self, progress: &mut dyn FnMut(&str)) {
        self.halve_while_failing("snapshot threshold", Workload::maxraftstate_mut, progress);
    }

    fn operations(&mut self, progress: &mut dyn FnMut(&str)) {
        let caps = match &self.best.workload {
            Workload::Proposals { proposals, .. } => vec![*proposals],
            Workload::Clerks { clerks, .. } | Workload::Sharded { clerks, .. } => {
                clerks.iter().map(|c| c.operations).collect()
            }
            Workload::MapReduce { .. } => return self.map_reduce_tasks(progress),
        };
        for (i, cap) in caps.into_iter().enumerate() {
            // Bisect for the smallest cap that still fails: [lo, hi] with hi failing.
            let (mut lo, mut hi) = (0, cap);
            while lo < hi && self.runs < self.max_runs {
                let mid = lo + (hi - lo) / 2;
                let mut candidate = self.best.clone();
                match &mut candidate.workload {
                    Workload::Proposals { proposals, .. } => *proposals = mid,
                    Workload::Clerks { clerks, .. } | Workload::Sharded { clerks, .. } => clerks[i].operations = mid,
                    Workload::MapReduce { .. } => unreachable!("map_reduce_tasks shrinks a job"),
                }
                if self.try_candidate(candidate, "operations", progress) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
    }

    /// The Raft swarms' proposal rounds, compacted: the steady rounds become explicit
    /// one-command bursts at the same times (the same run); runs of neighbouring rounds
    /// merge into one burst at the last one's time, so the latest command of each run is
    /// offered when it was (the whole list, then halves, quarters …), then neighbours
    /// pairwise; once few are left, rounds go by delta debugging anywhere in the phase (not
    /// only from its end); last, each burst's command count is halved while the failure
    /// stays. A long log then costs a few operation events.
    fn bursts(&mut self, progress: &mut dyn FnMut(&str)) {
        let Workload::Proposals { propose_gap_ms, proposals, ref bursts, .. } = self.best.workload else { return };
        if proposals > 0 && bursts.is_empty() {
            let explicit: Vec<Burst> =
                (0..proposals).map(|i| Burst { at_ms: i * propose_gap_ms, commands: 1 }).collect();
            let candidate = with_bursts(&self.best, 0, explicit);
            if !self.try_candidate(candidate, "rounds as bursts", progress) {
                return;
            }
        }
        let mut n = 1;
        while n < bursts_of(&self.best).len() && self.runs < self.max_runs {
            let mut chunks = split(&bursts_of(&self.best), n);
            for i in 0..chunks.len() {
                if chunks[i].len() < 2 {
                    continue;
                }
                let last = chunks[i][chunks[i].len() - 1].at_ms;
                let one = Burst { at_ms: last, commands: chunks[i].iter().map(|b| b.commands).sum() };
                let mut list: Vec<Burst> = chunks[..i].concat();
                list.push(one);
                list.extend(chunks[i + 1..].concat());
                if self.try_candidate(with_bursts(&self.best, 0, list), "rounds merged", progress) {
                    chunks[i] = vec![one];
                }
            }
            n *= 2;
        }
        // Neighbours the aligned chunks above never paired: each round into the next one,
        // at the next one's time, then at its own.
        let mut i = 0;
        while i + 1 < bursts_of(&self.best).len() && self.runs < self.max_runs {
            let list = bursts_of(&self.best);
            let commands = list[i].commands + list[i + 1].commands;
            let mut merged = false;
            for at_ms in [list[i + 1].at_ms, list[i].at_ms] {
                let mut candidate = list.clone();
                candidate[i + 1] = Burst { at_ms, commands };
                candidate.remove(i);
                if self.try_candidate(with_bursts(&self.best, 0, candidate), "neighbouring rounds merged", progress) {
                    merged = true;
                    break;
                }
            }
            if !merged {
                i += 1;
            }
        }
        // Removal anywhere costs about as many runs as there are rounds: only once merging
        // has left few.
        if bursts_of(&self.best).len() <= MAX_ROUNDS_TO_DDMIN {
            ddmin(bursts_of(&self.best), &mut |subset: &[Burst]| {
                let candidate = with_bursts(&self.best, 0, subset.to_vec());
                self.try_candidate(candidate, "proposal rounds", progress)
            });
        }
        // Fewer commands per burst: halve while the failure stays.
        for i in 0..bursts_of(&self.best).len() {
            loop {
                let mut list = bursts_of(&self.best);
                let Some(b) = list.get_mut(i) else { break };
                if b.commands < 2 {
                    break;
                }
                b.commands /= 2;
                if !self.try_candidate(with_bursts(&self.best, 0, list), "burst commands", progress) {
                    break;
                }
            }
        }
    }

    /// A MapReduce job's operations are its tasks: bisect the map tasks, then the reduce
    /// tasks, each down to one (a job needs both).
    fn map_reduce_tasks(&mut self, progress: &mut dyn FnMut(&str)) {
        for field in 0..2 {
            let Workload::MapReduce { maps, reduces, .. } = self.best.workload else { return };
            let (mut lo, mut hi) = (1, if field == 0 { maps } else { reduces });
            while lo < hi && self.runs < self.max_runs {
                let mid = lo + (hi - lo) / 2;
                let mut candidate = self.best.clone();
                if let Workload::MapReduce { maps, reduces, .. } = &mut candidate.workload {
                    *(if field == 0 { maps } else { reduces }) = mid;
                }
                if self.try_candidate(candidate, "tasks", progress) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
    }

    fn safety_phase(&mut self, progress: &mut dyn FnMut(&str)) {
        // The phase must outlast its last event and the workload's last timed step; bisect
        // down to that.
        let floor = self.best.events.last().map_or(1, |e| e.at_ms + 1).max(self.best.workload.latest_at_ms() + 1);
        let (mut lo, mut hi) = (floor, self.best.safety_ms);
        while lo < hi && self.runs < self.max_runs {
            let mid = lo + (hi - lo) / 2;
            let candidate = ScenarioSpec { safety_ms: mid, ..self.best.clone() };
            if self.try_candidate(candidate, "safety phase", progress) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
    }

    /// Idle time closed up: for each gap between consecutive times of the fault events and
    /// the workload's timed steps (configuration changes, bursts), everything from the later
    /// time on — and the safety phase's end — moves earlier together, by bisection on the
    /// gap. The clients run from the start whatever the schedule, so a failure that needs a
    /// step to come after some operations needs fewer once the step comes earlier, and the
    /// operation caps of the next round can go lower. Steps keep their order.
    fn close_gaps(&mut self, progress: &mut dyn FnMut(&str)) {
        let mut i = 1;
        loop {
            let times = step_times(&self.best);
            if i >= times.len() || self.runs >= self.max_runs {
                return;
            }
            let (prev, cur) = (times[i - 1], times[i]);
            let (mut lo, mut hi) = (prev, cur);
            while lo < hi && self.runs < self.max_runs {
                let mid = lo + (hi - lo) / 2;
                if self.try_candidate(shifted_earlier(&self.best, cur, cur - mid), "idle time", progress) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            i += 1;
        }
    }

    /// Fewer keys, halved while the failure stays: the sharded swarm's liveness phase reads
    /// and writes every key, and a failure on one key needs no others.
    fn keys(&mut self, progress: &mut dyn FnMut(&str)) {
        self.halve_while_failing("keys", Workload::keys_mut, progress);
    }

    fn rates(&mut self, progress: &mut dyn FnMut(&str)) {
        for i in 0..self.best.events.len() {
            while let Some(lower) = self.best.events.get(i).and_then(|e| lower_rate(&e.fault)) {
                let mut candidate = self.best.clone();
                candidate.events[i].fault = lower;
                if !self.try_candidate(candidate, "rates", progress) {
                    break;
                }
            }
        }
        if let Workload::Proposals { propose_gap_ms, .. } = self.best.workload {
            // A lower proposal rate: a longer gap, up to a second.
            if propose_gap_ms < 1000 {
                let mut candidate = self.best.clone();
                if let Workload::Proposals { propose_gap_ms: g, .. } = &mut candidate.workload {
                    *g = (propose_gap_ms * 2).min(1000);
                }
                self.try_candidate(candidate, "proposal rate", progress);
            }
        }
    }
}

/// The fault points that crash a node when they fire.
const CRASH_POINTS: [FaultPoint; 3] =
    [FaultPoint::CrashAfterSave, FaultPoint::CrashAfterReply, FaultPoint::CrashAfterVote];

/// Whether `name` names one of [`CRASH_POINTS`].
fn is_crash_point(name: &str) -> bool {
    FaultPoint::from_name(name).is_some_and(|p| CRASH_POINTS.contains(&p))
}

/// One firing of a crash point, read from its trace event.
#[derive(Debug, PartialEq, Eq)]
struct CrashFiring {
    /// When it fired, in simulated microseconds.
    at_us: u64,
    /// The node it crashed.
    node: String,
    /// Whether it was `persist.crash_after_save` (else a crash after a reply).
    after_save: bool,
    /// After how many ms the point restarts the node.
    restart_ms: u64,
}

impl CrashFiring {
    /// Reads a crash point's firing (`sim::fault_point_fired`) from a captured event, naming
    /// its node by `node_names`; `None` for any other event.
    fn of(ev: &CapturedEvent, node_names: &[String]) -> Option<CrashFiring> {
        let (point, restart_ms) = sim::fault_point_fired(ev)?;
        if !CRASH_POINTS.contains(&point) {
            return None;
        }
        Some(CrashFiring {
            at_us: ev.at_ns / 1000,
            node: node_names.get(usize::from(ev.node?))?.clone(),
            after_save: point == FaultPoint::CrashAfterSave,
            restart_ms,
        })
    }

    /// The schedule events that make the same crash and restart, within a safety phase
    /// ending at `safety_ms` (a restart due after it is left to the liveness phase, which
    /// restarts every server).
    ///
    /// `nth`: which of the node's saves in the firing's millisecond was the one the point
    /// crashed after (1: its first).
    fn events(&self, safety_ms: u64, nth: u32) -> Vec<FaultEvent> {
        let node = Target::node(&self.node);
        let (crash_ms, fault) = if self.after_save {
            (self.at_us / 1000, Fault::CrashAfterSave { node: node.clone(), saves: nth.max(1), delay_ms: 0 })
        } else {
            (self.at_us / 1000 + 1, Fault::Crash { node: node.clone() })
        };
        let restart_ms = self.at_us.div_ceil(1000) + self.restart_ms;
        [(crash_ms, fault), (restart_ms, Fault::Restart { node })]
            .into_iter()
            .filter(|(at_ms, _)| *at_ms < safety_ms)
            .map(|(at_ms, fault)| FaultEvent { at_ms, fault })
            .collect()
    }
}

/// The distinct times, in order, at which `spec` has a fault event or a timed workload step
/// (a configuration change, a burst), with 0 first.
fn step_times(spec: &ScenarioSpec) -> Vec<u64> {
    let mut times: BTreeSet<u64> = spec.events.iter().map(|e| e.at_ms).collect();
    times.insert(0);
    match &spec.workload {
        Workload::Sharded { changes, .. } => times.extend(changes.iter().map(ConfigChange::at_ms)),
        Workload::Proposals { bursts, .. } => times.extend(bursts.iter().map(|b| b.at_ms)),
        Workload::Clerks { .. } | Workload::MapReduce { .. } => {}
    }
    times.extend(spec.workload.clerks().iter().map(|c| c.start_ms));
    times.into_iter().collect()
}

/// `spec` with every fault event and timed workload step at or after `from` ms, and the end
/// of its safety phase, `by` ms earlier (`by` at most the gap before `from`, so the order
/// stays).
fn shifted_earlier(spec: &ScenarioSpec, from: u64, by: u64) -> ScenarioSpec {
    let mut out = spec.clone();
    let earlier = |at: &mut u64| {
        if *at >= from {
            *at -= by;
        }
    };
    out.events.iter_mut().for_each(|e| earlier(&mut e.at_ms));
    match &mut out.workload {
        Workload::Sharded { changes, .. } => changes.iter_mut().for_each(|c| {
            let (ConfigChange::Join { at_ms, .. }
            | ConfigChange::Leave { at_ms, .. }
            | ConfigChange::Move { at_ms, .. }) = c;
            earlier(at_ms)
        }),
        Workload::Proposals { bursts, .. } => bursts.iter_mut().for_each(|b| earlier(&mut b.at_ms)),
        Workload::Clerks { .. } | Workload::MapReduce { .. } => {}
    }
    if let Some(clerks) = out.workload.clerks_mut() {
        clerks.iter_mut().for_each(|c| earlier(&mut c.start_ms));
    }
    out.safety_ms = out.safety_ms.saturating_sub(by).max(1);
    out
}

/// The bursts of a Raft swarm's workload (none for a clerks or MapReduce workload).
fn bursts_of(spec: &ScenarioSpec) -> Vec<Burst> {
    match &spec.workload {
        Workload::Proposals { bursts, .. } => bursts.clone(),
        Workload::Clerks { .. } | Workload::MapReduce { .. } | Workload::Sharded { .. } => Vec::new(),
    }
}

/// `spec` with `proposals` steady rounds and `bursts`.
fn with_bursts(spec: &ScenarioSpec, proposals: u64, bursts: Vec<Burst>) -> ScenarioSpec {
    let mut out = spec.clone();
    if let Workload::Proposals { proposals: p, bursts: b, .. } = &mut out.workload {
        *p = proposals;
        *b = bursts;
    }
    out
}

/// The fault with its rates halved (loss, duplicates, delay), or `None` when it has no rate
/// left to lower.
fn lower_rate(f: &Fault) -> Option<Fault> {
    match *f {
        Fault::Unreliable { request_loss_permille: a, reply_loss_permille: b, request_delay_ms_max: d }
            if a + b + d > 0 =>
        {
            Some(Fault::Unreliable {
                request_loss_permille: a / 2,
                reply_loss_permille: b / 2,
                request_delay_ms_max: d / 2,
            })
        }
        Fault::Duplicate { permille } if permille > 0 => Some(Fault::Duplicate { permille: permille / 2 }),
        Fault::Delay { min_ms, max_ms } if max_ms > 0 => Some(Fault::Delay { min_ms: min_ms / 2, max_ms: max_ms / 2 }),
        _ => None,
    }
}

/// `spec` without its highest-numbered server: events naming it lose it (a partition side
/// drops it; an event about it alone goes), its snapshot interval goes.
pub fn without_last_server(spec: &ScenarioSpec) -> ScenarioSpec {
    let gone = spec.servers - 1;
    let mut out = spec.clone();
    out.servers = gone;
    drop_targets(&mut out.events, &|t: &Target| server_index(t) == Some(gone));
    if let Workload::Proposals { snapshot_every, .. } = &mut out.workload {
        snapshot_every.truncate(gone);
    }
    out
}

/// A sharded `spec` without the groups `gone`: fault events naming their servers or roles
/// (`leader@<gid>`, `down@<gid>`) lose them as in [`without_last_server`], joins and leaves
/// drop them (a change left naming no group goes), moves to them go.
pub fn without_groups(spec: &ScenarioSpec, gone: &BTreeSet<u64>) -> ScenarioSpec {
    let mut out = spec.clone();
    let Workload::Sharded { groups, changes, ctrlers, .. } = &mut out.workload else { return out };
    groups.retain(|g| !gone.contains(&g.gid));
    changes.retain_mut(|c| match c {
        ConfigChange::Join { gids, .. } | ConfigChange::Leave { gids, .. } => {
            gids.retain(|g| !gone.contains(g));
            !gids.is_empty()
        }
        ConfigChange::Move { gid, .. } => !gone.contains(gid),
    });
    out.servers = *ctrlers + groups.iter().map(|g| g.servers).sum::<usize>();
    let of_gone = |t: &Target| {
        let gid = match t.0.split_once('@') {
            Some((_, gid)) => gid,
            None => t.0.strip_prefix('s').and_then(|r| r.split_once('-')).map_or("", |(gid, _)| gid),
        };
        gid.parse().is_ok_and(|g: u64| gone.contains(&g))
    };
    drop_targets(&mut out.events, &of_gone);
    out
}

/// A sharded `spec` without the last server of group `gid`, or of the controller (`None`),
/// and what names it; `None` when that leaves no server.
pub fn without_last_of(spec: &ScenarioSpec, gid: Option<u64>) -> Option<ScenarioSpec> {
    let mut out = spec.clone();
    let Workload::Sharded { groups, ctrlers, .. } = &mut out.workload else { return None };
    let count = match gid {
        Some(gid) => &mut groups.iter_mut().find(|g| g.gid == gid)?.servers,
        None => ctrlers,
    };
    if *count <= 1 {
        return None;
    }
    *count -= 1;
    let name = match gid {
        Some(gid) => format!("s{gid}-{count}"),
        None => format!("ctrler{count}"),
    };
    out.servers -= 1;
    drop_targets(&mut out.events, &|t: &Target| t.0 == name);
    Some(out)
}

/// Removes from `events` the nodes and roles `gone` says are gone: a partition side drops
/// them; an event about one of them alone goes.
fn drop_targets(events: &mut Vec<FaultEvent>, is_gone: &dyn Fn(&Target) -> bool) {
    events.retain_mut(|e| match &mut e.fault {
        Fault::Partition { a, b } => {
            a.retain(|t| !is_gone(t));
            b.retain(|t| !is_gone(t));
            true
        }
        Fault::Isolate { node }
        | Fault::Connect { node }
        | Fault::Crash { node }
        | Fault::CrashAfterSave { node, .. }
        | Fault::Restart { node } => !is_gone(node),
        Fault::Cut { from, to }
        | Fault::Uncut { from, to }
        | Fault::Clog { from, to }
        | Fault::Release { from, to } => !is_gone(from) && !is_gone(to),
        Fault::Hold { from, to, of, .. } => !is_gone(from) && !is_gone(to) && !of.as_ref().is_some_and(is_gone),
        _ => true,
    });
}

/// Delta debugging: a smallest-by-removal subsequence of `items` for which `test` holds,
/// given that it holds for `items` (not re-tested). `test` is called on candidate
/// subsequences; a `true` makes that candidate the new current one. The result is
/// 1-minimal when `test` is deterministic and the budget (inside `test`) lasts: removing
/// any single item makes `test` fail. The empty sequence is tried last.
pub fn ddmin<T: Clone>(items: Vec<T>, test: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut current = items;
    let mut n = 2;
    while current.len() >= 2 {
        let chunks = split(&current, n);
        let mut reduced = false;
        for chunk in &chunks {
            if test(chunk) {
                current = chunk.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && n > 2 {
            for i in 0..chunks.len() {
                let complement: Vec<T> =
                    chunks.iter().enumerate().filter(|&(j, _)| j != i).flat_map(|(_, c)| c.iter().cloned()).collect();
                if test(&complement) {
                    current = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    if !current.is_empty() && test(&[]) {
        current.clear();
    }
    current
}

/// `items` in `n` contiguous chunks of nearly equal length (the first ones longer).
fn split<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.min(items.len()).max(1);
    let (base, extra) = (items.len() / n, items.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        out.push(items[start..start + len].to_vec());
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_items_a_failure_needs() {
        // Fails when both 3 and 7 are present: ddmin must end with exactly them.
        let mut calls = 0;
        let got = ddmin((0..20).collect(), &mut |s: &[i32]| {
            calls += 1;
            s.contains(&3) && s.contains(&7)
        });
        assert_eq!(got, vec![3, 7]);
        assert!(calls < 80, "{calls} tests");
        // A failure that needs nothing shrinks to nothing; one that needs everything keeps it.
        assert!(ddmin((0..5).collect(), &mut |_: &[i32]| true).is_empty());
        assert_eq!(ddmin((0..5).collect(), &mut |s: &[i32]| s.len() == 5), vec![0, 1, 2, 3, 4]);
        // 1-minimal: removing any single item of the result passes.
        let needs = |s: &[i32]| s.iter().filter(|&&x| x % 5 == 0).count() >= 3;
        let got = ddmin((0..30).collect(), &mut |s: &[i32]| needs(s));
        assert_eq!(got.len(), 3);
        for i in 0..got.len() {
            let mut less = got.clone();
            less.remove(i);
            assert!(!needs(&less));
        }
    }

    #[test]
    fn a_crash_points_firing_becomes_a_crash_and_a_restart_in_the_schedule() {
        let f = CrashFiring { at_us: 395_306, node: "s1".into(), after_save: true, restart_ms: 635 };
        let s1 = || Target::node("s1");
        assert_eq!(
            f.events(10_000, 2),
            [
                FaultEvent { at_ms: 395, fault: Fault::CrashAfterSave { node: s1(), saves: 2, delay_ms: 0 } },
                FaultEvent { at_ms: 1031, fault: Fault::Restart { node: s1() } },
            ]
        );
        // After a reply: the crash comes in the next millisecond; a restart past the safety
        // phase is the liveness phase's.
        let reply = CrashFiring { at_us: 12_500_000, node: "s2".into(), after_save: false, restart_ms: 90 };
        assert_eq!(
            reply.events(12_550, 1),
            [FaultEvent { at_ms: 12_501, fault: Fault::Crash { node: Target::node("s2") } }]
        );
    }

    #[test]
    fn split_covers_every_item_once_in_order() {
        let items: Vec<u32> = (0..10).collect();
        for n in 1..=12 {
            let chunks = split(&items, n);
            assert_eq!(chunks.concat(), items);
            assert!(chunks.iter().all(|c| !c.is_empty()));
        }
    }

    #[test]
    fn removing_a_server_removes_what_names_it() {
        let ev = |at_ms, fault| FaultEvent { at_ms, fault };
        let spec = ScenarioSpec {
            scenario: "raft::swarm_2d".into(),
            seed: 1,
            bug: None,
            servers: 3,
            safety_ms: 100,
            workload: Workload::Proposals {
                propose_gap_ms: 5,
                proposals: 9,
                snapshot_every: vec![3, 4, 5],
                bursts: Vec::new(),
            },
            timing: None,
            fault_points: Default::default(),
            events: vec![
                ev(
                    1,
                    Fault::Partition { a: vec![Target::node("s0"), Target::node("s2")], b: vec![Target::node("s1")] },
                ),
                ev(2, Fault::Crash { node: Target::node("s2") }),
                ev(3, Fault::Cut { from: Target::node("s1"), to: Target::node("s2") }),
                ev(4, Fault::Crash { node: Target::role("leader") }),
            ],
        };
        let out = without_last_server(&spec);
        assert_eq!(out.servers, 2);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.events[0].fault, Fault::Partition { a: vec![Target::node("s0")], b: vec![Target::node("s1")] });
        assert_eq!(out.events[1].at_ms, 4);
        assert_eq!(
            out.workload,
            Workload::Proposals { propose_gap_ms: 5, proposals: 9, snapshot_every: vec![3, 4], bursts: Vec::new() }
        );
    }

    #[test]
    fn closing_a_gap_moves_every_later_step_and_the_phase_end_together() {
        use crate::spec::{Clerk, ReplicaGroup};
        let ev = |at_ms| FaultEvent { at_ms, fault: Fault::Heal };
        let spec = ScenarioSpec {
            scenario: "shardkv::swarm_4b".into(),
            seed: 1,
            bug: None,
            servers: 4,
            safety_ms: 900,
            workload: Workload::Sharded {
                ctrlers: 1,
                keys: 1,
                maxraftstate: -1,
                append_percent: 45,
                put_percent: 10,
                groups: vec![ReplicaGroup { gid: 100, servers: 3 }],
                clerks: vec![Clerk::new(0, 3)],
                changes: vec![
                    ConfigChange::Join { at_ms: 0, gids: vec![100] },
                    ConfigChange::Move { at_ms: 500, shard: 1, gid: 100 },
                ],
            },
            timing: None,
            fault_points: Default::default(),
            events: vec![ev(100), ev(500), ev(800)],
        };
        assert_eq!(step_times(&spec), [0, 100, 500, 800]);
        let out = shifted_earlier(&spec, 500, 300);
        assert_eq!(out.events.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [100, 200, 500]);
        assert_eq!(out.workload.latest_at_ms(), 200);
        assert_eq!(out.safety_ms, 600);
        assert!(out.check("shardkv::swarm_4b", crate::spec::WorkloadKind::Sharded).is_ok());
        // Closing a gap whole merges two instants; the order stays.
        assert_eq!(step_times(&shifted_earlier(&spec, 500, 400)), [0, 100, 400]);
    }

    #[test]
    fn rates_halve_down_to_nothing() {
        let mut f = Fault::Duplicate { permille: 5 };
        let mut steps = 0;
        while let Some(g) = lower_rate(&f) {
            f = g;
            steps += 1;
        }
        assert_eq!((f, steps), (Fault::Duplicate { permille: 0 }, 3));
        assert_eq!(lower_rate(&Fault::Heal), None);
    }
}
