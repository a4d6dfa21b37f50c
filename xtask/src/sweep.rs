//! `sweep` and `determinism`: many runs in parallel (a fresh OS thread per run, as the run
//! contract requires), with a progress bar (on a terminal only) and a summary.
//!
//! A sweep runs each selected scenario over a seed range, or the runs a results file lists
//! (`--rerun`); with `--shard K/N` only its part of them (see [`crate::shard`]). Its results
//! are human lines, or with `--format json` one JSON line per run and a summary line on
//! stdout (see [`crate::results`]; everything else then goes to stderr), and with `--junit
//! FILE` a JUnit report.

use crate::plan::{self, RunSet};
use crate::results::ShardId;
use crate::results::{self, RunKey, RunLine, Tally};
use crate::shard::{split, CostTable, ShardArgs, ShardEnv};
use crate::single::load_faults;
use crate::{bad_input, count, exit, junit};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scenarios::determinism::{compare_twice_judged, Difference};
use scenarios::golden::GoldenRun;
use scenarios::registry::{run_scenario, Catalogue, FaultFile, Opts, Scenario};
use scenarios::seeds::{self, summary_of};
use sim::{Outcome, RunReport, TraceMode};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

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
    match s.parse::<NonZeroUsize>() {
        Ok(n) if n.get() <= MAX_JOBS => Ok(n),
        _ => Err(format!("want a number of parallel jobs from 1 to {MAX_JOBS} (each job is a thread), got '{s}'")),
    }
}

/// The most parallel jobs a command accepts: each is an operating-system thread running one
/// simulation at a time, so more than a large machine's cores only adds threads.
pub const MAX_JOBS: usize = 256;

/// What many-run commands select: scenarios, seeds, parallelism, a planted bug.
#[derive(Args)]
pub struct Selection {
    /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all` (the default).
    #[arg(default_value = "all")]
    pub filter: String,
    /// Half-open seed range, e.g. 0..200.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    pub seeds: Range<u64>,
    /// Parallel runs, 1 to 256 (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub jobs: Option<NonZeroUsize>,
    /// Plant a bug (of the selected scenarios' family) in every run.
    #[arg(long)]
    pub bug: Option<String>,
    /// Swarm runs without their timing knobs and fault points: the search as it was before
    /// them (the "before" column of BENCHMARKS.md's failure-rate table).
    #[arg(long)]
    pub plain_swarm: bool,
}

/// A validated selection.
pub struct Resolved {
    pub range: Range<u64>,
    pub scenarios: Vec<Scenario>,
    pub jobs: usize,
}

/// `--plain-swarm` over a selection: refused (one line) when no selected scenario draws
/// swarm knobs, since it would change no run; the scenarios that draw none run as they are.
pub fn plain_swarm_fits(filter: &str, scenarios: &[Scenario]) -> Result<(), String> {
    if scenarios.iter().any(Scenario::draws_swarm_knobs) {
        Ok(())
    } else {
        Err(scenarios::registry::InputError::NoSwarmKnobs { scenario: format!("'{filter}'") }.to_string())
    }
}

impl Selection {
    /// Checks the filter and the bug against the catalogue; the error is the one line to
    /// print before exiting with 4.
    pub fn resolve(&self, cat: &Catalogue) -> Result<Resolved, String> {
        let scenarios = cat.select(&self.filter).map_err(|e| e.to_string())?;
        if let Some(b) = &self.bug {
            cat.check_bug(&scenarios, b).map_err(|e| e.to_string())?;
        }
        if self.plain_swarm {
            plain_swarm_fits(&self.filter, &scenarios)?;
        }
        Ok(Resolved {
            range: self.seeds.clone(),
            scenarios,
            jobs: self.jobs.map_or_else(default_jobs, NonZeroUsize::get),
        })
    }
}

/// A run's coverage marks (`RunReport::marks`).
type Marks = Vec<(&'static str, u64)>;

/// How a sweep reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Lines for people: counts, failing runs and the command that reproduces each.
    Text,
    /// One JSON line per run on stdout (the golden table's fields plus wall_ms and, for a
    /// failing run, message), then one summary line; everything else goes to stderr.
    Json,
}

#[derive(Args)]
pub struct SweepArgs {
    /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all` (the default).
    #[arg(conflicts_with = "rerun")]
    pub filter: Option<String>,
    /// Half-open seed range, e.g. 0..200.
    #[arg(long, value_name = "A..B", value_parser = parse_range, required_unless_present = "rerun", conflicts_with = "rerun")]
    pub seeds: Option<Range<u64>>,
    /// Parallel runs, 1 to 256 (default: all cores).
    #[arg(long, value_parser = at_least_one)]
    pub jobs: Option<NonZeroUsize>,
    /// Plant a bug (of the selected scenarios' family) in every run.
    #[arg(long, conflicts_with = "rerun")]
    pub bug: Option<String>,
    /// Run exactly the runs a results file lists (its run lines: scenario, seed, bug), in
    /// its order — e.g. the golden table, or the failing runs of another machine's sweep —
    /// instead of FILTER --seeds.
    #[arg(long, value_name = "FILE")]
    pub rerun: Option<PathBuf>,
    #[command(flatten)]
    pub shard: ShardArgs,
    /// How to report: text for people, json for machines (one line per run).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also write a JUnit report here: a test case per scenario and per failing run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write each failing seed to the seeds folder (status open); with --faults, a copy of
    /// the schedule goes next to each seed file.
    #[arg(long)]
    pub save: bool,
    /// Play this fault schedule in every run (every selected scenario must take one).
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// Folder for --save (given without --save, it is refused: nothing would be written).
    #[arg(long, default_value = "seeds", requires = "save")]
    pub seeds_dir: PathBuf,
    /// Folder for the files failing runs attach (a failing history's page), relative to the
    /// working directory.
    #[arg(long, value_name = "DIR", default_value = crate::artifacts::DEFAULT_DIR)]
    pub artifacts: PathBuf,
    /// Also print, per scenario, its runs, wall time per run and simulated time per run.
    #[arg(long)]
    pub per_scenario: bool,
    /// Also print each coverage mark (a rare path: a snapshot installed during a partition, a
    /// leader stepping down, held messages released…) with how often the runs reached it,
    /// and name the marks no run reached.
    #[arg(long)]
    pub coverage: bool,
    /// Swarm runs without their timing knobs and fault points: the search as it was before
    /// them, to compare coverage and failure rates. Text output only (a results file or a
    /// saved seed could not record it).
    #[arg(long, conflicts_with = "rerun")]
    pub plain_swarm: bool,
}

#[derive(Args)]
pub struct DeterminismArgs {
    #[command(flatten)]
    pub sel: Selection,
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A progress bar on stderr, drawn only when stderr is a terminal (a CI log or a file gets
/// no bar, and stdout never does).
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let pb = ProgressBar::with_draw_target(Some(total), target);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} runs, {per_sec}, eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs `f` over positions `0..n` on `jobs` threads, in any order, handing each result to
/// `emit` in position order as soon as it and every earlier one are done (so results stream
/// out in a deterministic order). Holds only the results that finished ahead of an earlier
/// one, never a list of every position: a caller that keeps results keeps them in `emit`.
pub fn parallel_in_order<R: Send>(
    n: u64,
    jobs: usize,
    pb: &ProgressBar,
    f: impl Fn(u64) -> R + Sync,
    mut emit: impl FnMut(u64, R) + Send,
) {
    let next = AtomicU64::new(0);
    let state = Mutex::new(InOrder { pending: BTreeMap::new(), emitted: 0, emit: &mut emit });
    let threads = (jobs.max(1) as u64).min(n.max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let r = f(i);
                let mut st = state.lock().unwrap();
                let InOrder { pending, emitted, emit } = &mut *st;
                pending.insert(i, r);
                while let Some(r) = pending.remove(emitted) {
                    emit(*emitted, r);
                    *emitted += 1;
                }
                drop(st);
                pb.inc(1);
            });
        }
    });
    pb.finish_and_clear();
}

/// The results finished ahead of an earlier one, the first position not yet handed to
/// `emit`, and `emit`.
struct InOrder<'a, R> {
    pending: BTreeMap<u64, R>,
    emitted: u64,
    emit: &'a mut (dyn FnMut(u64, R) + Send),
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
    save_failing_seed_to(&mut std::io::stdout(), dir, scenario, seed, opts, outcome, indent)
}

/// [`save_failing_seed`], saying where on `out`.
pub fn save_failing_seed_to(
    out: &mut dyn Write,
    dir: &std::path::Path,
    scenario: &str,
    seed: u64,
    opts: &Opts,
    outcome: &Outcome,
    indent: &str,
) -> bool {
    let Outcome::Fail(failure) = outcome else { return true };
    match seeds::save_failure(dir, scenario, seed, opts, failure, today()) {
        Ok(seeds::Saved { path, written: true }) => {
            let _ = writeln!(out, "{indent}saved {}", path.display());
            true
        }
        Ok(seeds::Saved { path, written: false }) => {
            let _ = writeln!(out, "{indent}kept {} (it already records this failure)", path.display());
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// One run of a sweep: a scenario, a seed, and the planted bug (a `--rerun` file may list
/// several).
#[derive(Clone)]
pub struct Item {
    pub scenario: Scenario,
    pub seed: u64,
    pub bug: Option<String>,
    /// `--plain-swarm`.
    pub plain_swarm: bool,
}

impl Item {
    fn opts(&self, faults: &Option<FaultFile>) -> Opts {
        Opts { bug: self.bug.clone(), faults: faults.clone(), plain_swarm: self.plain_swarm, ..Opts::default() }
    }
}

/// The runs a results file lists, checked against the catalogue; a run listed twice is
/// refused (it would run twice).
fn listed_runs(cat: &Catalogue, path: &Path) -> Result<(Vec<Item>, Vec<RunKey>), String> {
    let mut keys = Vec::new();
    let mut seen = BTreeSet::new();
    results::read(path, |n, _, line| {
        if let results::Line::Run(run) = line {
            let key = run.key();
            if !seen.insert(key.clone()) {
                return Err(format!("{} line {n}: {key} is listed twice", path.display()));
            }
            keys.push(key);
        }
        Ok(())
    })?;
    if keys.is_empty() {
        return Err(format!("{}: lists no runs", path.display()));
    }
    let mut items = Vec::with_capacity(keys.len());
    for k in &keys {
        let sc = cat.scenario(&k.scenario).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(b) = &k.bug {
            cat.check_bug(&[sc], b).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        items.push(Item { scenario: sc, seed: k.seed, bug: k.bug.clone(), plain_swarm: false });
    }
    Ok((items, keys))
}

/// Where a sweep's lines for people go: stdout, or stderr when stdout carries JSON.
fn human(json: bool) -> Box<dyn Write> {
    if json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    }
}

pub fn sweep(cat: &Catalogue, a: &SweepArgs) -> u8 {
    let json = a.format == Format::Json;
    if a.plain_swarm && a.rerun.is_some() {
        return bad_input("--plain-swarm with --rerun: the listed runs are rerun as they were recorded; drop one");
    }
    if a.plain_swarm && (json || a.save || a.junit.is_some()) {
        return bad_input(
            "--plain-swarm is for text output: a results file, JUnit file or saved seed cannot record it",
        );
    }
    let faults = match load_faults(a.faults.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_input(e),
    };
    // What the whole sweep is, before any sharding: a grid is planned, not listed.
    let (whole, selection) = if let Some(path) = &a.rerun {
        match listed_runs(cat, path) {
            Ok((items, runs)) => {
                (Runs::Listed(items), results::Selection::Listed { from: path.display().to_string(), runs })
            }
            Err(e) => return bad_input(e),
        }
    } else {
        let range = a.seeds.clone().expect("clap requires --seeds without --rerun");
        let filter = a.filter.as_deref().unwrap_or("all");
        let scenarios = match cat.select(filter) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        if let Some(b) = &a.bug {
            if let Err(e) = cat.check_bug(&scenarios, b) {
                return bad_input(e);
            }
        }
        if a.plain_swarm {
            if let Err(e) = plain_swarm_fits(filter, &scenarios) {
                return bad_input(e);
            }
        }
        let per = match plan::grid_runs(
            &format!("'{filter}' ({})", count(scenarios.len() as u64, "scenario")),
            scenarios.len() as u64,
            &range,
        ) {
            Ok(_) => range.end - range.start,
            Err(e) => return bad_input(e),
        };
        let selection = results::Selection::Grid {
            scenarios: scenarios.iter().map(|s| s.name.to_string()).collect(),
            seeds: format!("{}..{}", range.start, range.end),
            bug: a.bug.clone(),
        };
        let set = RunSet::whole(scenarios.len(), per);
        (Runs::Grid { scenarios, start: range.start, set, bug: a.bug.clone(), plain_swarm: a.plain_swarm }, selection)
    };
    // Every run before any starts: a schedule must fit each seed's safety phase.
    for i in 0..whole.len() {
        let it = whole.item(i);
        if let Err(e) = cat.check_opts(&it.scenario, it.seed, &it.opts(&faults)) {
            return bad_input(e);
        }
    }
    // The attachments' folder before any run, so an unwritable one costs nothing.
    if let Err(e) = crate::artifacts::prepare_dir(&a.artifacts) {
        return bad_input(e);
    }
    if a.save {
        if let Err(e) = crate::artifacts::probe_dir("--seeds-dir", &a.seeds_dir) {
            return bad_input(e);
        }
    }
    // The JUnit report's file too: found unwritable after hours of runs, it would be lost.
    if let Err(e) = crate::artifacts::probe_writable(a.junit.as_deref().map(|p| ("--junit", p))) {
        return bad_input(e);
    }
    let shard = match a.shard.resolve(&ShardEnv::read()) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    if let (None, Some(path)) = (&shard, &a.shard.costs) {
        return bad_input(format!(
            "--costs {}: a cost table only splits a sharded sweep; add --shard K/N or drop --costs",
            path.display()
        ));
    }
    let total = whole.len();
    let mut out = human(json);
    let mut table_print = None;
    let runs: Runs = match &shard {
        None => whole,
        Some((id, from)) => {
            let table = match a.shard.cost_table() {
                Ok(t) => t,
                Err(e) => return bad_input(e),
            };
            table_print = Some(table.fingerprint());
            let unknown: BTreeSet<&str> = whole.scenario_names().filter(|n| !table.micros.contains_key(*n)).collect();
            if !unknown.is_empty() {
                eprintln!(
                    "note: {} scenarios are not in the cost table and count at its median (regenerate it: {} costs --out xtask/costs.tsv)",
                    unknown.len(),
                    cat.command()
                );
            }
            let (mine, mine_cost, all_cost) = whole.part(&table, *id);
            let _ = writeln!(
                out,
                "shard {id} ({from}): {} of {}, {:.1}% of the estimated cost",
                mine.len(),
                count(total, "run"),
                mine_cost as f64 * 100.0 / all_cost.max(1) as f64
            );
            mine
        }
    };
    let jobs = a.jobs.map_or_else(default_jobs, NonZeroUsize::get);
    let selected: Vec<Scenario> = runs.scenarios();
    let _ = writeln!(
        out,
        "sweep: {} of {} on {}",
        count(runs.len(), "run"),
        count(selected.len() as u64, "scenario"),
        count(jobs as u64, "job")
    );
    let pb = progress(runs.len(), "sweep");
    let t0 = Instant::now();
    // Keep only what the summary needs, folded in as each run is handed over in sweep order:
    // a sweep of millions of runs holds its counts, its failing runs' lines, their
    // attachments' paths and (for --save) their outcomes, never a record of every run. JSON
    // lines stream out in sweep order as runs finish.
    let stdout = std::io::stdout();
    let mut tally = Tally::default();
    let mut delivered = 0;
    let mut coverage = scenarios::coverage::Coverage::new(cat.marks_of(&selected));
    let mut attached: Vec<Result<String, String>> = Vec::new();
    let mut to_save: Vec<(Item, Outcome)> = Vec::new();
    parallel_in_order(
        runs.len(),
        jobs,
        &pb,
        |i| {
            let it = runs.item(i);
            let t = Instant::now();
            let r = run_scenario(&it.scenario, it.seed, &it.opts(&faults), TraceMode::Hash, None);
            let wall_ms = t.elapsed().as_secs_f64() * 1e3;
            let failure = (!r.outcome.is_pass()).then(|| r.outcome.clone());
            // A failing run's attachments are written as it ends, so the sweep holds only their paths.
            let a_dir = &a.artifacts;
            let files: Vec<Result<String, String>> = match failure {
                Some(_) => r
                    .attachments
                    .iter()
                    .map(|att| {
                        crate::artifacts::write_one(a_dir, att).map(|p| format!("{}: {}", att.what, p.display()))
                    })
                    .collect(),
                None => Vec::new(),
            };
            (run_line(&it, &r, wall_ms), r.stats.delivered, failure, files, r.marks)
        },
        |i, (line, d, failure, files, marks): (RunLine, u64, Option<Outcome>, Vec<Result<String, String>>, Marks)| {
            if json {
                let _ = writeln!(stdout.lock(), "{}", line.to_json());
            }
            tally.add(&line);
            delivered += d;
            coverage.add(&marks);
            attached.extend(files);
            if let (true, Some(outcome)) = (a.save, failure) {
                to_save.push((runs.item(i), outcome));
            }
        },
    );
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "runs: {}  passed: {}  failed: {}  ({:.2}s wall, {:.1} runs/s, {:.0} runs/hour, {:.0}x real time, {:.0} events/s, {:.0} messages/s)",
        tally.runs,
        tally.passed,
        tally.runs - tally.passed,
        wall,
        tally.runs as f64 / wall,
        tally.runs as f64 / wall * 3600.0,
        tally.sim_time_ns as f64 / 1e9 / wall,
        tally.events as f64 / wall,
        delivered as f64 / wall
    );
    for (c, n) in &tally.failures {
        let _ = writeln!(out, "  {c}: {n} (caught by {})", caught_by(&tally.failing, c));
    }
    if a.per_scenario {
        for (name, s) in &tally.per_scenario {
            let _ = writeln!(
                out,
                "  {name:50} {}, {:.1} ms wall/run, {:.1}s simulated/run",
                count(s.runs, "run"),
                s.wall_ms / s.runs as f64,
                s.sim_s / s.runs as f64
            );
        }
    }
    if a.coverage {
        for l in coverage.lines() {
            let _ = writeln!(out, "{l}");
        }
    }
    let faults_text = a.faults.as_ref().map(|p| p.display().to_string());
    let reproduce = |l: &RunLine| {
        let opts =
            Opts { bug: l.run.bug.clone(), faults: faults.clone(), plain_swarm: a.plain_swarm, ..Opts::default() };
        seeds::reproduce_command(cat.command(), &l.run.scenario, l.run.seed, &opts)
    };
    let mut status_attach = exit::PASS;
    for l in &tally.failing {
        let _ = writeln!(out, "FAILED {} seed {}: {}", l.run.scenario, l.run.seed, l.message.as_deref().unwrap_or(""));
        let _ = writeln!(out, "REPRODUCE WITH: {}", reproduce(l));
    }
    for line in &attached {
        match line {
            Ok(l) => {
                let _ = writeln!(out, "attached {l}");
            }
            Err(e) => {
                eprintln!("error: {e}");
                status_attach = exit::BAD_INPUT;
            }
        }
    }
    // A long list pushes the summary out of sight: say the count again below it.
    if tally.failing.len() > FAILURES_BEFORE_RECAP {
        let classes: Vec<String> = tally.failures.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let _ = writeln!(
            out,
            "failed: {} of {} ({}); the summary above counts them by check",
            tally.failing.len(),
            count(tally.runs, "run"),
            classes.join(", ")
        );
    }
    let mut status = tally.status().max(status_attach);
    if json {
        let part = shard.as_ref().map(|(id, _)| (*id, table_print.clone().expect("a part has a cost table")));
        let summary = tally.summary(wall, part, faults_text, selection);
        let _ = writeln!(stdout.lock(), "{}", results::summary_json(&summary));
        let _ = stdout.lock().flush();
    }
    if let Some(path) = &a.junit {
        let name = match &shard {
            Some((id, _)) => format!("simlab sweep, shard {id}"),
            None => "simlab sweep".to_string(),
        };
        if let Err(e) = std::fs::write(path, junit::render(&name, &tally, &reproduce)) {
            status = status.max(bad_input(format!("{}: cannot write the JUnit report: {e}", path.display())));
        }
    }
    for (it, outcome) in &to_save {
        if !save_failing_seed_to(&mut out, &a.seeds_dir, it.scenario.name, it.seed, &it.opts(&faults), outcome, "") {
            status = status.max(exit::BAD_INPUT);
        }
    }
    status
}

/// Failing runs listed before the sweep repeats its failure count below the list.
const FAILURES_BEFORE_RECAP: usize = 10;

/// The checks that caught the failing runs of class `class`, most first (ties by name):
/// `budget 3300` or `linearizability 2, kv::get 1`.
fn caught_by(failing: &[RunLine], class: &str) -> String {
    let mut by: BTreeMap<&str, u64> = BTreeMap::new();
    for l in failing.iter().filter(|l| l.run.outcome == class) {
        *by.entry(l.run.checker.as_deref().unwrap_or("no check named")).or_default() += 1;
    }
    let mut by: Vec<(&str, u64)> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    by.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")
}

/// The runs of a sweep or of its part, in sweep order: a grid (each scenario over a seed
/// range, or a shard's share of it) computed position by position, or the runs a results
/// file listed.
enum Runs {
    /// `set`'s (scenario position, seed offset) pairs; a seed is `start` + offset.
    Grid { scenarios: Vec<Scenario>, start: u64, set: RunSet, bug: Option<String>, plain_swarm: bool },
    /// Listed runs, in the file's order (or a shard's share of them).
    Listed(Vec<Item>),
}

impl Runs {
    fn len(&self) -> u64 {
        match self {
            Runs::Grid { set, .. } => set.len(),
            Runs::Listed(items) => items.len() as u64,
        }
    }

    /// The run at position `i` (below [`Runs::len`]).
    fn item(&self, i: u64) -> Item {
        match self {
            Runs::Grid { scenarios, start, set, bug, plain_swarm } => {
                let (g, offset) = set.get(i);
                let s = scenarios[g];
                // Only where it changes something (the others refuse it).
                Item {
                    scenario: s,
                    seed: start + offset,
                    bug: bug.clone(),
                    plain_swarm: *plain_swarm && s.draws_swarm_knobs(),
                }
            }
            Runs::Listed(items) => items[i as usize].clone(),
        }
    }

    /// The names of the scenarios with a run here, with repeats.
    fn scenario_names(&self) -> Box<dyn Iterator<Item = &'static str> + '_> {
        match self {
            Runs::Grid { scenarios, set, .. } if !set.is_empty() => Box::new(scenarios.iter().map(|s| s.name)),
            Runs::Grid { .. } => Box::new(std::iter::empty()),
            Runs::Listed(items) => Box::new(items.iter().map(|it| it.scenario.name)),
        }
    }

    /// The scenarios with a run here, once each.
    fn scenarios(&self) -> Vec<Scenario> {
        let mut seen = BTreeSet::new();
        let all: Vec<Scenario> = match self {
            Runs::Grid { scenarios, set, .. } => {
                let with: BTreeSet<usize> = set.groups().collect();
                scenarios.iter().enumerate().filter(|(g, _)| with.contains(g)).map(|(_, s)| *s).collect()
            }
            Runs::Listed(items) => items.iter().map(|it| it.scenario).collect(),
        };
        all.into_iter().filter(|s| seen.insert(s.name)).collect()
    }

    /// Part `id` of these runs, split by `table` (see [`crate::shard`]), with its estimated
    /// cost and the whole's.
    fn part(self, table: &CostTable, id: ShardId) -> (Runs, u128, u128) {
        match self {
            Runs::Grid { scenarios, start, set, bug, plain_swarm } => {
                let costs: Vec<u64> = scenarios.iter().map(|s| table.cost(s.name)).collect();
                let per = if scenarios.is_empty() { 0 } else { set.len() / scenarios.len() as u64 };
                let (mine, mine_cost, all_cost) = plan::grid_part(&costs, per, id.count, id.index);
                (Runs::Grid { scenarios, start, set: mine, bug, plain_swarm }, mine_cost, all_cost)
            }
            Runs::Listed(items) => {
                let costs: Vec<u64> = items.iter().map(|it| table.cost(it.scenario.name)).collect();
                let parts = split(&costs, id.count);
                let mine_cost: u128 =
                    costs.iter().zip(&parts).filter(|(_, &p)| p == id.index).map(|(c, _)| *c as u128).sum();
                let all_cost: u128 = costs.iter().map(|&c| c as u128).sum();
                let mine: Vec<Item> =
                    items.into_iter().zip(&parts).filter(|(_, &p)| p == id.index).map(|(it, _)| it).collect();
                (Runs::Listed(mine), mine_cost, all_cost)
            }
        }
    }
}

/// A run's result line.
pub fn run_line(it: &Item, r: &RunReport, wall_ms: f64) -> RunLine {
    RunLine {
        run: GoldenRun::of(it.scenario.name, it.seed, it.bug.as_deref(), r),
        wall_ms: Some((wall_ms * 1e3).round() / 1e3),
        message: (!r.outcome.is_pass()).then(|| summary_of(&r.outcome)),
    }
}

pub fn determinism(cat: &Catalogue, a: &DeterminismArgs) -> u8 {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve(cat) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let total = match plan::grid_runs(
        &format!("'{}' ({})", a.sel.filter, count(scenarios.len() as u64, "scenario")),
        scenarios.len() as u64,
        &range,
    ) {
        Ok(n) => n,
        Err(e) => return bad_input(e),
    };
    let opts = Opts { plain_swarm: a.sel.plain_swarm, ..Opts::with_bug(a.sel.bug.as_deref()) };
    let set = RunSet::whole(scenarios.len(), range.end - range.start);
    let run_at = |i: u64| {
        let (g, offset) = set.get(i);
        (scenarios[g], range.start + offset)
    };
    println!("determinism: {}, each twice, on {}", count(total, "run"), count(jobs as u64, "job"));
    let pb = progress(total, "determinism");
    let t0 = Instant::now();
    let mut diffs: Vec<(Scenario, u64, Difference)> = Vec::new();
    let mut failed: BTreeMap<&'static str, u64> = BTreeMap::new();
    parallel_in_order(
        total,
        jobs,
        &pb,
        |i| {
            let (sc, seed) = run_at(i);
            compare_twice_judged(&sc, seed, &opts)
        },
        |i, (d, class)| {
            if let Some(class) = class {
                *failed.entry(class.name()).or_default() += 1;
            }
            if let Some(d) = d {
                let (sc, seed) = run_at(i);
                diffs.push((sc, seed, d));
            }
        },
    );
    for (sc, seed, d) in &diffs {
        println!("DIFFERENCE in {} seed {} at event {}:", sc.name, seed, d.index);
        println!("  run 1: {}", d.first);
        println!("  run 2: {}", d.second);
        let bug = a.sel.bug.as_ref().map(|b| format!(" --bug {b}")).unwrap_or_default();
        println!("REPRODUCE WITH: {} determinism {} --seeds {}..{}{bug}", cat.command(), sc.name, seed, seed + 1);
    }
    let n = diffs.len();
    println!(
        "{n} of {} differ{} between two executions ({:.2}s wall)",
        count(total, "run"),
        if n == 1 { "s" } else { "" },
        t0.elapsed().as_secs_f64()
    );
    // The command judges repeatability, not the runs; a failing run is still worth knowing.
    if !failed.is_empty() {
        let by_class: Vec<String> = failed.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!(
            "{} of the {} failed ({}); `{} sweep` with the same selection reports them",
            failed.values().sum::<u64>(),
            count(total, "run"),
            by_class.join(", "),
            cat.command()
        );
    }
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
