//! `sweep` and `determinism`: many runs in parallel (a fresh OS thread per run, as the run
//! contract requires), with a progress bar and a summary.

use crate::{bad_input, check_opts, resolve};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scenarios::determinism::{compare_twice, Difference};
use scenarios::seeds::{self, SeedFile, Status};
use scenarios::{registry, Opts, Scenario};
use sim::{FailureClass, Outcome, RunReport, TraceMode};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
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

/// Parses a half-open seed range `A..B` with A < B.
pub fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("bad seed range '{s}': want A..B with A < B (half-open, decimal), e.g. 0..200");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a >= b {
        return Err(bad());
    }
    Ok(a..b)
}

/// What many-run commands select: scenarios, seeds, parallelism, a planted bug.
#[derive(Args)]
pub struct Selection {
    /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all` (the default).
    #[arg(default_value = "all")]
    pub filter: String,
    /// Half-open seed range, e.g. 0..200.
    #[arg(long)]
    pub seeds: String,
    /// Parallel runs (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
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
    /// Checks every argument; the error is the one line to print before exiting with 4.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let range = parse_range(&self.seeds)?;
        let scenarios = resolve(&self.filter, self.bug.as_deref())?;
        if self.jobs == Some(0) {
            return Err("--jobs must be at least 1".into());
        }
        Ok(Resolved { range, scenarios, jobs: self.jobs.unwrap_or_else(default_jobs) })
    }
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Write each failing seed to seeds/ (status open).
    #[arg(long)]
    pub save: bool,
    /// Replay this fault schedule in every run.
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Folder for --save.
    #[arg(long, default_value = "seeds")]
    pub seeds_dir: PathBuf,
}

#[derive(Args)]
pub struct DeterminismArgs {
    #[command(flatten)]
    pub sel: Selection,
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn progress(total: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} runs, {per_sec}, eta {eta}")
            .unwrap()
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

/// Today's date as YYYY-MM-DD (wall clock; used only for saved seed files).
pub fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0)
            as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes a failing run as an `open` seed file under `dir` and says where.
pub fn save_failing_seed(
    dir: &std::path::Path,
    scenario: &str,
    seed: u64,
    bug: Option<&str>,
    outcome: &Outcome,
    indent: &str,
) {
    let Some(class) = outcome.class() else { return };
    let sf = SeedFile {
        scenario: scenario.to_string(),
        seed,
        bug: bug.map(str::to_string),
        faults: None,
        class,
        date: today(),
        summary: summary_of(outcome),
        status: Status::Open,
    };
    match seeds::save(dir, &sf) {
        Ok(p) => println!("{indent}saved {}", p.display()),
        Err(e) => eprintln!("error: {e}"),
    }
}

/// One line of summary for a failure.
pub fn summary_of(outcome: &Outcome) -> String {
    let mut s = outcome.to_string().replace('\n', " ");
    if s.len() > 200 {
        let cut = (0..=200).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

pub fn sweep(a: &SweepArgs) -> ExitCode {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve() {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let opts = Opts { bug: a.sel.bug.clone(), faults: a.faults.clone(), ..Opts::default() };
    if let Err(e) = check_opts(&opts) {
        return bad_input(e);
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
        let r = registry::run_scenario(sc, *seed, &opts, TraceMode::Hash, None);
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
    if scenarios.len() > 1 && std::env::var_os("SWEEP_PER_SCENARIO").is_some() {
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
        println!("REPRODUCE WITH: {}", seeds::reproduce_command(sc.name, r.seed, &opts));
    }
    if a.save {
        for (sc, r) in &failures {
            save_failing_seed(&a.seeds_dir, sc.name, r.seed, opts.bug.as_deref(), &r.outcome, "");
        }
    }
    ExitCode::from(worst.map(|c| c.exit_code() as u8).unwrap_or(0))
}

pub fn determinism(a: &DeterminismArgs) -> ExitCode {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve() {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let opts = Opts { bug: a.sel.bug.clone(), ..Opts::default() };
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
            println!("REPRODUCE WITH: cargo xtask determinism {} --seeds {}..{}", sc.name, seed, seed + 1);
        }
    }
    println!("{} of {} runs differ between two executions ({:.2}s wall)", n, items.len(), t0.elapsed().as_secs_f64());
    if n > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
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
    fn date_format() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }
}
