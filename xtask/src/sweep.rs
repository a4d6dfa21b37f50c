//! `sweep` and `determinism`: many runs in parallel (a fresh OS thread per run, as the run
//! contract requires), with a progress bar and a summary.

use crate::single::load_faults;
use crate::{bad_input, exit};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scenarios::determinism::{compare_twice, Difference};
use scenarios::registry::{run_scenario, Catalogue, Opts, Scenario};
use scenarios::seeds::{self, summary_of};
use sim::{FailureClass, Outcome, RunReport, TraceMode};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a sweep keeps of one run.
pub struct Slim {
    pub seed: u64,
    pub outcome: Outcome,
    pub sim_s: f64,
    pub events: u64,
    pub delivered: u64,
}

impl Slim {
    pub fn of(r: &RunReport) -> Slim {
        Slim {
            seed: r.seed,
            outcome: r.outcome.clone(),
            sim_s: r.sim_time.as_secs_f64(),
            events: r.events,
            delivered: r.stats.delivered,
        }
    }
}

/// Parses a half-open seed range `A..B` with A < B (clap's value parser for `--seeds`).
pub fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("want A..B with A < B (half-open, decimal), e.g. 0..200; got '{s}'");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a >= b {
        return Err(bad());
    }
    Ok(a..b)
}

/// clap's value parser for counts that must be at least 1.
pub fn at_least_one(s: &str) -> Result<NonZeroUsize, String> {
    s.parse().map_err(|_| format!("want a whole number of at least 1, got '{s}'"))
}

/// What many-run commands select: scenarios, seeds, parallelism, a planted bug.
#[derive(Args)]
pub struct Selection {
    /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all` (the default).
    #[arg(default_value = "all")]
    pub filter: String,
    /// Half-open seed range, e.g. 0..200.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    pub seeds: Range<u64>,
    /// Parallel runs (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub jobs: Option<NonZeroUsize>,
    /// Plant a bug (of the selected scenarios' family) in every run.
    #[arg(long)]
    pub bug: Option<String>,
}

/// A validated selection.
pub struct Resolved {
    pub range: Range<u64>,
    pub scenarios: Vec<Scenario>,
    pub jobs: usize,
}

impl Selection {
    /// Checks the filter and the bug against the catalogue; the error is the one line to
    /// print before exiting with 4.
    pub fn resolve(&self, cat: &Catalogue) -> Result<Resolved, String> {
        let scenarios = cat.select(&self.filter).map_err(|e| e.to_string())?;
        if let Some(b) = &self.bug {
            cat.check_bug(&scenarios, b).map_err(|e| e.to_string())?;
        }
        Ok(Resolved {
            range: self.seeds.clone(),
            scenarios,
            jobs: self.jobs.map_or_else(default_jobs, NonZeroUsize::get),
        })
    }
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Write each failing seed to the seeds folder (status open); with --faults, a copy of
    /// the schedule goes next to each seed file.
    #[arg(long)]
    pub save: bool,
    /// Play this fault schedule in every run (every selected scenario must take one).
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// Folder for --save.
    #[arg(long, default_value = "seeds")]
    pub seeds_dir: PathBuf,
    /// Also print, per scenario, its runs, wall time per run and simulated time per run.
    #[arg(long)]
    pub per_scenario: bool,
}

#[derive(Args)]
pub struct DeterminismArgs {
    #[command(flatten)]
    pub sel: Selection,
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub fn progress(total: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} runs, {per_sec}, eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs `f` over `items` on `jobs` threads, in any order; results come back in item order.
pub fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, pb: &ProgressBar, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    return;
                }
                let r = f(&items[i]);
                results.lock().unwrap()[i] = Some(r);
                pb.inc(1);
            });
        }
    });
    pb.finish_and_clear();
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every item ran")).collect()
}

/// Today's date in UTC (wall clock; used only for saved seed files).
pub fn today() -> jiff::civil::Date {
    jiff::tz::Offset::UTC.to_datetime(jiff::Timestamp::now()).date()
}

/// Writes a failing run as an `open` seed file under `dir` (with a copy of its fault file,
/// if it played one) and says where, after `indent`; returns false when it could not be
/// written.
pub fn save_failing_seed(
    dir: &std::path::Path,
    scenario: &str,
    seed: u64,
    opts: &Opts,
    outcome: &Outcome,
    indent: &str,
) -> bool {
    let Outcome::Fail(failure) = outcome else { return true };
    match seeds::save_failure(dir, scenario, seed, opts, failure, today()) {
        Ok(p) => {
            println!("{indent}saved {}", p.display());
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

pub fn sweep(cat: &Catalogue, a: &SweepArgs) -> u8 {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve(cat) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let faults = match load_faults(a.faults.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_input(e),
    };
    let opts = Opts { bug: a.sel.bug.clone(), faults, record_faults: None };
    // Every (scenario, seed) before any run: a schedule must fit each seed's safety phase.
    for sc in &scenarios {
        for seed in range.clone() {
            if let Err(e) = cat.check_opts(sc, seed, &opts) {
                return bad_input(e);
            }
        }
    }
    let items: Vec<(Scenario, u64)> =
        scenarios.iter().flat_map(|s| range.clone().map(move |seed| (*s, seed))).collect();
    println!(
        "sweep: {} scenarios x {} seeds = {} runs on {jobs} jobs",
        scenarios.len(),
        range.end - range.start,
        items.len()
    );
    let pb = progress(items.len(), "sweep");
    let t0 = Instant::now();
    // Keep only what the summary needs: a sweep of thousands of runs must not hold every
    // run's annotations and counters.
    let reports: Vec<(Slim, f64)> = parallel(&items, jobs, &pb, |(sc, seed)| {
        let t = Instant::now();
        let r = run_scenario(sc, *seed, &opts, TraceMode::Hash, None);
        (Slim::of(&r), t.elapsed().as_secs_f64())
    });
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    let mut by_class: BTreeMap<FailureClass, usize> = BTreeMap::new();
    let mut by_scenario: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    let (mut sim_s, mut events, mut delivered) = (0.0, 0u64, 0u64);
    let mut worst: Option<FailureClass> = None;
    let mut failures = Vec::new();
    for ((sc, _), (r, w)) in items.iter().zip(&reports) {
        sim_s += r.sim_s;
        events += r.events;
        delivered += r.delivered;
        let e = by_scenario.entry(sc.name).or_default();
        e.0 += 1;
        e.1 += w;
        e.2 += r.sim_s;
        if let Some(c) = r.outcome.class() {
            *by_class.entry(c).or_default() += 1;
            worst = worst.max(Some(c));
            failures.push((sc, r));
        }
    }
    println!(
        "runs: {}  passed: {}  failed: {}  ({:.2}s wall, {:.1} runs/s, {:.0} runs/hour, {:.0}x real time, {:.0} events/s, {:.0} messages/s)",
        items.len(),
        items.len() - failures.len(),
        failures.len(),
        wall,
        items.len() as f64 / wall,
        items.len() as f64 / wall * 3600.0,
        sim_s / wall,
        events as f64 / wall,
        delivered as f64 / wall
    );
    for (c, n) in &by_class {
        println!("  {}: {n}", c.name());
    }
    if a.per_scenario {
        for (name, (n, w, s)) in &by_scenario {
            println!(
                "  {name:50} {n} runs, {:.1} ms wall/run, {:.1}s simulated/run",
                w / *n as f64 * 1e3,
                s / *n as f64
            );
        }
    }
    for (sc, r) in &failures {
        println!("FAILED {} seed {}: {}", sc.name, r.seed, summary_of(&r.outcome));
        println!("REPRODUCE WITH: {}", seeds::reproduce_command(cat.command(), sc.name, r.seed, &opts));
    }
    let mut status = worst.map_or(exit::PASS, exit::of_class);
    if a.save {
        for (sc, r) in &failures {
            if !save_failing_seed(&a.seeds_dir, sc.name, r.seed, &opts, &r.outcome, "") {
                status = status.max(exit::BAD_INPUT);
            }
        }
    }
    status
}

pub fn determinism(cat: &Catalogue, a: &DeterminismArgs) -> u8 {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve(cat) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let opts = Opts::with_bug(a.sel.bug.as_deref());
    let items: Vec<(Scenario, u64)> =
        scenarios.iter().flat_map(|s| range.clone().map(move |seed| (*s, seed))).collect();
    println!("determinism: {} runs, each twice, on {jobs} jobs", items.len());
    let pb = progress(items.len(), "determinism");
    let t0 = Instant::now();
    let diffs: Vec<Option<Difference>> = parallel(&items, jobs, &pb, |(sc, seed)| compare_twice(sc, *seed, &opts));
    let mut n = 0;
    for ((sc, seed), d) in items.iter().zip(&diffs) {
        if let Some(d) = d {
            n += 1;
            println!("DIFFERENCE in {} seed {} at event {}:", sc.name, seed, d.index);
            println!("  run 1: {}", d.first);
            println!("  run 2: {}", d.second);
            let bug = a.sel.bug.as_ref().map(|b| format!(" --bug {b}")).unwrap_or_default();
            println!("REPRODUCE WITH: {} determinism {} --seeds {}..{}{bug}", cat.command(), sc.name, seed, seed + 1);
        }
    }
    println!("{} of {} runs differ between two executions ({:.2}s wall)", n, items.len(), t0.elapsed().as_secs_f64());
    if n > 0 {
        exit::NONDETERMINISTIC
    } else {
        exit::PASS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0..200"), Ok(0..200));
        assert!(parse_range("5..5").is_err());
        assert!(parse_range("9..3").is_err());
        assert!(parse_range("x..3").unwrap_err().contains("A..B"));
        assert!(parse_range("3").is_err());
        assert!(parse_range("-1..3").is_err());
    }

    #[test]
    fn today_is_a_date_of_this_century() {
        assert_eq!(today().year() / 100, 20);
    }
}
