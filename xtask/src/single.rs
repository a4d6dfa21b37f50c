//! `list`, `run` and `replay`: the commands about one scenario (or one listing), with the
//! run options they share and the report block a run prints.

use crate::{artifacts, bad_input, exit, timeline};
use clap::Args;
use scenarios::registry::{run_scenario, Catalogue, FaultFile, FaultRecorder, Opts, Scenario};
use scenarios::seeds::{self, SavedSeed};
use scenarios::spec::{SpecFile, SpecRecorder};
use sim::{RunReport, TraceMode};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

#[derive(Args)]
pub struct ListArgs {
    /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all` (the default).
    pub filter: Option<String>,
    /// Only the planted bugs of the selected scenarios' families.
    #[arg(long)]
    pub bugs: bool,
}

/// Options shared by run and replay.
#[derive(Args, Clone, Default)]
pub struct RunOpts {
    /// Plant a bug of the scenario's family (`cargo xtask list --bugs` names them).
    #[arg(long)]
    pub bug: Option<String>,
    /// Play this fault schedule instead of drawing one from the seed (scenarios that take a
    /// fault schedule only; `cargo xtask list` marks them).
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// Write the fault schedule the run played to this file (scenarios that take one only).
    #[arg(long, value_name = "FILE")]
    pub save_faults: Option<PathBuf>,
    /// Write the run's client history to this file (scenarios that record one; `cargo xtask
    /// list` marks them): a `.json` name gets the JSON form (everything the checker uses),
    /// any other Porcupine's key/value log format. Repeat it for both; `check-history --model
    /// kv FILE` reads either.
    #[arg(long, value_name = "FILE")]
    pub history: Vec<PathBuf>,
    /// Folder for the other files the run attaches (a failing history's page), relative to
    /// the working directory.
    #[arg(long, value_name = "DIR", default_value = artifacts::DEFAULT_DIR)]
    pub artifacts: PathBuf,
    /// Write the run's resolved scenario — shape, workload, safety phase, fault schedule — to
    /// this file, which `run FILE --seed N` runs again (swarms only).
    #[arg(long, value_name = "FILE")]
    pub save_scenario: Option<PathBuf>,
    /// Swarm runs only: run without the timing knobs and fault points (the swarm as it was
    /// before them, to compare); refused where it would change nothing (a scenario that
    /// draws no knobs, a scenario file that gives none).
    #[arg(long)]
    pub plain_swarm: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// The scenario's full name, e.g. raft::figure8_unreliable_2c, or a scenario file
    /// (written by --save-scenario or `shrink`).
    pub scenario: String,
    /// The run's seed: every random choice of the run derives from it (with a scenario file,
    /// the file's seed when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub opts: RunOpts,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// A scenario name, a saved seed file, or a scenario file (a path ending in .toml).
    pub target: String,
    /// The run's seed (with a scenario name or a scenario file; a seed file names its own).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub opts: RunOpts,
    /// `RUST_LOG`-style filter over trace targets (sim::net, sim::node, sim::timer,
    /// sim::client, sim::fault, sim::persist, sim::fs, sim::note, sim::check).
    #[arg(long, default_value = "info")]
    pub filter: String,
    /// Write the trace to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the run's timeline to DIR/timeline.html (one self-contained page: a lane
    /// per node, messages, faults, client operations, the failing check marked) and, for a
    /// key/value run, its client history to DIR/history.html, linked both ways.
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

/// Whether `replay`'s target names a file (a seed file or a scenario file) rather than a
/// scenario.
pub fn is_seed_file(target: &str) -> bool {
    target.ends_with(".toml") || Path::new(target).is_file()
}

/// Whether `target` is a readable scenario file (`scenarios::spec`), not a seed file.
pub fn is_scenario_file(target: &str) -> bool {
    is_seed_file(target) && std::fs::read_to_string(target).is_ok_and(|text| scenarios::spec::is_scenario_text(&text))
}

/// Whether `target` is a readable saved seed file (`seeds/*.toml`: a failure's class and
/// status), which `replay` takes and `run` and `shrink` do not.
pub fn is_saved_seed(target: &str) -> bool {
    std::fs::read_to_string(target).is_ok_and(|text| {
        toml::from_str::<toml::Table>(&text)
            .is_ok_and(|t| t.contains_key("class") && t.contains_key("status") && !t.contains_key("workload"))
    })
}

/// The one line refusing a target that is neither a scenario name nor a file the command
/// reads: a folder, or a fault schedule (`[[event]]`s and nothing else) given where a
/// scenario (file) goes. `sub` is the command's name (`run`, `replay`, `shrink`).
pub fn misplaced_target(command: &str, sub: &str, target: &str) -> Option<String> {
    let path = Path::new(target);
    if path.is_dir() {
        return Some(format!(
            "{target} is a folder: give a scenario's full name (`{command} list` shows them) or a scenario file"
        ));
    }
    let text = std::fs::read_to_string(path).ok()?;
    if is_history_text(&text) {
        return Some(format!(
            "{target} is a client history, not a scenario or seed file: check it with `{command} check-history --model kv {target}` (--model etcd for a Jepsen etcd log)"
        ));
    }
    let is_schedule =
        toml::from_str::<toml::Table>(&text).is_ok_and(|t| t.contains_key("event") && !t.contains_key("scenario"));
    is_schedule.then(|| {
        format!(
            "{target} is a fault schedule, not a scenario file: pass it with --faults, e.g. `{command} {sub} raft::swarm_2c --seed N --faults {target}`"
        )
    })
}

/// Whether `text` is a history `check-history` reads rather than a TOML file: the JSON that
/// `--history` writes, or a Porcupine key/value or Jepsen etcd log with at least one
/// operation. A TOML file is never taken for one (its first line is a comment, a table or a
/// key, none of which those formats accept).
fn is_history_text(text: &str) -> bool {
    use checkers::formats::{jepsen_etcd::parse_etcd_log, json::is_json, porcupine_kv::parse_kv_log};
    if toml::from_str::<toml::Table>(text).is_ok() {
        return false;
    }
    is_json(text)
        || parse_kv_log(text, "").is_ok_and(|h| !h.is_empty())
        || parse_etcd_log(text, "").is_ok_and(|h| !h.is_empty())
}

/// The one line refusing a saved seed file where a scenario file is wanted.
pub fn seed_file_is_not_a_scenario(command: &str, target: &str) -> String {
    format!("{target} is a saved seed file, not a scenario file: replay it with `{command} replay {target}`")
}

/// The trace's targets, one per kind of line (`sim::trace`), which `replay --filter` selects.
pub const TRACE_TARGETS: [&str; 9] = [
    "sim::net",
    "sim::node",
    "sim::timer",
    "sim::client",
    "sim::fault",
    "sim::persist",
    "sim::fs",
    "sim::note",
    "sim::check",
];

/// Checks that each directive of a `--filter` (`RUST_LOG` syntax: `target=level`, `target`
/// or `level`, comma-separated) names a trace target — one of [`TRACE_TARGETS`] or a prefix
/// of some (`sim`) — so a misspelt one (`sim::nett`) is refused rather than print an empty
/// trace. Span directives (`[…]`) are left to the filter.
///
/// # Errors
/// One line naming the directive and the targets.
pub fn check_filter_targets(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if filter.split(',').all(|d| d.trim().is_empty()) {
        return Err(format!(
            "--filter '{filter}' names no target, so it would select nothing; give targets such as --filter 'sim::net,sim::fault' (the targets are {}), or drop it for the whole trace",
            TRACE_TARGETS.join(", ")
        ));
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty() && !d.contains('[')) {
        let target = directive.split_once('=').map_or(directive, |(t, _)| t).trim();
        if !directive.contains('=') && LEVELS.contains(&target.to_ascii_lowercase().as_str()) {
            continue;
        }
        if !TRACE_TARGETS.iter().any(|t| t.starts_with(target)) {
            return Err(format!(
                "--filter '{filter}': '{target}' names no trace target, so it would select nothing; the targets are {} (or sim for all), e.g. --filter 'sim::net,sim::fault'",
                TRACE_TARGETS.join(", ")
            ));
        }
    }
    Ok(())
}

/// A scenario file given as a command's target, with the `--seed` and `--bug` given beside
/// it: the scenario it names, the seed (the file's when none is given) and the options that
/// run it. A `--bug` must agree with the file's bug, if it has one; `--faults` is refused
/// later (the file holds its schedule).
pub fn from_scenario_file(
    cat: &Catalogue,
    path: &Path,
    seed: Option<u64>,
    bug: Option<&str>,
) -> Result<(Scenario, u64, Opts), String> {
    let file = SpecFile::load(path)?;
    let sc = cat.scenario(&file.spec.scenario).map_err(|e| format!("{}: {e}", path.display()))?;
    let bug = match (bug, file.spec.bug.as_deref()) {
        (Some(given), Some(in_file)) if given != in_file => {
            return Err(format!(
                "--bug {given} but {} plants {in_file}: drop --bug or edit the file's bug",
                path.display()
            ))
        }
        (given, in_file) => given.or(in_file).map(str::to_string),
    };
    let seed = seed.unwrap_or(file.spec.seed);
    Ok((sc, seed, Opts { bug, scenario_file: Some(file), ..Opts::default() }))
}

pub fn list(cat: &Catalogue, a: &ListArgs) -> u8 {
    let scenarios = match cat.select(a.filter.as_deref().unwrap_or("all")) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    if !a.bugs {
        let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &scenarios {
            let faults = if s.takes_scenario_files() {
                " [takes --faults/--save-faults, scenario files (--save-scenario, run FILE), shrink]"
            } else if s.takes_fault_schedule() {
                " [takes --faults/--save-faults]"
            } else {
                ""
            };
            let history = if s.records_client_history() { " [takes --history]" } else { "" };
            println!("{:width$}  {}{faults}{history}", s.name, s.description);
        }
    }
    let mut blocks = 0;
    for f in cat.families() {
        if scenarios.iter().any(|s| s.family() == f.name()) && !f.bugs().is_empty() {
            // A blank line between blocks, and after the scenarios.
            if blocks > 0 || !a.bugs {
                println!();
            }
            blocks += 1;
            println!("planted bugs of {} (--bug NAME):", f.name());
            let width = f.bugs().iter().map(|b| b.name.len()).max().unwrap_or(0);
            for b in f.bugs() {
                println!("  {:width$}  {}", b.name, b.description);
            }
        }
    }
    exit::PASS
}

/// The run options of a command line, checked for one scenario and seed before the run: the
/// fault file read, the planted bug, the fault and history options fit the scenario, the
/// files for `--save-faults` and `--history` and the `--artifacts` folder created (so an
/// unwritable path is refused before anything runs).
pub struct Prepared {
    pub opts: Opts,
    save_faults: Option<(PathBuf, File, FaultRecorder)>,
    history: Vec<PathBuf>,
    artifacts: PathBuf,
    save_scenario: Option<(PathBuf, File, SpecRecorder)>,
}

impl Prepared {
    pub fn new(cat: &Catalogue, sc: &Scenario, seed: u64, mut opts: Opts, given: &RunOpts) -> Result<Prepared, String> {
        let save_faults = given.save_faults.as_deref();
        let save_scenario = given.save_scenario.as_deref();
        let recorder = save_faults.map(|_| FaultRecorder::new());
        opts.record_faults = recorder.clone();
        opts.attach_history = !given.history.is_empty();
        opts.plain_swarm |= given.plain_swarm;
        let spec_recorder = save_scenario.map(|_| SpecRecorder::new(sc.name));
        opts.record_scenario = spec_recorder.clone();
        cat.check_opts(sc, seed, &opts).map_err(|e| e.to_string())?;
        artifacts::prepare_dir(&given.artifacts)?;
        // Every output path before any file is truncated: one bad path must not empty the
        // file another option named.
        let outputs = given
            .history
            .iter()
            .map(|p| ("--history", p.as_path()))
            .chain(save_scenario.map(|p| ("--save-scenario", p)))
            .chain(save_faults.map(|p| ("--save-faults", p)));
        artifacts::probe_writable(outputs)?;
        for path in &given.history {
            File::create(path).map_err(|e| format!("--history {}: cannot write: {e}", path.display()))?;
        }
        let save_scenario = match (save_scenario, spec_recorder) {
            (Some(path), Some(recorder)) => {
                let file = File::create(path).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
                Some((path.to_path_buf(), file, recorder))
            }
            _ => None,
        };
        let save_faults = match (save_faults, recorder) {
            (Some(path), Some(recorder)) => {
                let file = File::create(path).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
                Some((path.to_path_buf(), file, recorder))
            }
            _ => None,
        };
        Ok(Prepared {
            opts,
            save_faults,
            history: given.history.clone(),
            artifacts: given.artifacts.clone(),
            save_scenario,
        })
    }

    /// After the run: writes what it attached (`--history`, `--artifacts`), its resolved
    /// scenario (`--save-scenario`) and the schedule it played (`--save-faults`). Returns the
    /// status to exit with instead of the run's when one of them fails.
    pub fn finish(self, r: &RunReport) -> Option<u8> {
        let Prepared { save_faults, history, artifacts: dir, save_scenario, .. } = self;
        let mut status = None;
        match artifacts::write_all(&dir, r) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => status = Some(bad_input(e)),
        }
        for path in &history {
            let written = match artifacts::history_of(r) {
                Some(a) => artifacts::write_history(a, path),
                None => Err(format!("--history {}: the run attached no history", path.display())),
            };
            match written {
                Ok(what) => println!("history:        {} ({what})", path.display()),
                Err(e) => status = Some(bad_input(e)),
            }
        }
        let scenario_status = save_scenario.and_then(|(path, file, recorder)| {
            let spec = recorder.take().map(|spec| spec.to_toml());
            write_recorded(&path, file, spec, "scenario", "it resolved its scenario")
        });
        let faults_status = save_faults.and_then(|(path, file, recorder)| {
            let schedule = recorder.take().map(|schedule| schedule.to_toml());
            write_recorded(&path, file, schedule, "fault schedule", "it chose a fault schedule")
        });
        status.or(scenario_status).or(faults_status)
    }
}

/// Writes what a run recorded (`--save-faults`, `--save-scenario`) into the file opened for
/// it before the run, or removes that file when the run ended before recording anything.
/// Returns the status to exit with when that fails (bad input, 4).
fn write_recorded(path: &Path, mut file: File, text: Option<String>, what: &str, before: &str) -> Option<u8> {
    match text {
        Some(text) => match file.write_all(text.as_bytes()) {
            Ok(()) => {
                println!("{what} written to {}", path.display());
                None
            }
            Err(e) => Some(bad_input(format!("{}: cannot write: {e}", path.display()))),
        },
        None => {
            drop(file);
            let _ = std::fs::remove_file(path);
            Some(bad_input(format!("{}: not written: the run ended before {before}", path.display())))
        }
    }
}

/// Reads `--faults FILE` if given.
pub fn load_faults(path: Option<&Path>) -> Result<Option<FaultFile>, String> {
    path.map(FaultFile::load).transpose().map_err(|e| e.to_string())
}

/// Prints a run's result block.
pub fn print_report(cat: &Catalogue, sc: &Scenario, r: &RunReport, opts: &Opts, wall: std::time::Duration) {
    let wall_s = wall.as_secs_f64().max(1e-9);
    println!("scenario:       {}", sc.name);
    println!("seed:           {}", r.seed);
    if let Some(b) = &opts.bug {
        println!("planted bug:    {b}");
    }
    if let Some(f) = &opts.faults {
        println!("fault schedule: {} ({} events)", f.path.display(), f.schedule.events.len());
    }
    if let Some(f) = &opts.scenario_file {
        let s = &f.spec;
        println!(
            "scenario file:  {} ({}, {}, safety phase {:.3}s)",
            f.path.display(),
            s.workload.shape(s.servers),
            crate::count(s.events.len() as u64, "fault event"),
            s.safety_ms as f64 / 1000.0
        );
    }
    for line in &r.description {
        println!("parameters:     {line}");
    }
    println!("outcome:        {}", r.outcome);
    println!("trace hash:     {:016x}", r.trace_hash);
    println!("simulated time: {:.3}s", r.sim_time.as_secs_f64());
    println!("wall time:      {:.3}s ({:.0}x real time)", wall_s, r.sim_time.as_secs_f64() / wall_s);
    println!("events:         {} ({:.0} per wall second)", r.events, r.events as f64 / wall_s);
    println!(
        "messages:       {} delivered, {} dropped ({:.0} delivered per wall second); {} RPCs, {} bytes",
        r.stats.delivered,
        r.stats.dropped,
        r.stats.delivered as f64 / wall_s,
        r.stats.rpc_total,
        r.stats.bytes_total
    );
    print_skipped_faults(&r.skipped_faults);
    if !r.outcome.is_pass() {
        println!("REPRODUCE WITH: {}", seeds::reproduce_command(cat.command(), sc.name, r.seed, opts));
    }
}

/// The most skipped fault events a report lists one by one.
const SKIPPED_LISTED: usize = 10;

/// Says which fault events were skipped because they named no node when they fired (a
/// server beyond this run's cluster, a role nobody held): a schedule serves every cluster
/// size, so they are not refused, but a run must not drop them silently.
fn print_skipped_faults(skipped: &[String]) {
    if skipped.is_empty() {
        return;
    }
    println!(
        "faults skipped: {} event{} named no node when {} fired:",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        if skipped.len() == 1 { "it" } else { "they" }
    );
    for s in skipped.iter().take(SKIPPED_LISTED) {
        println!("  {s}");
    }
    if skipped.len() > SKIPPED_LISTED {
        println!("  … and {} more (`replay --filter sim::fault` shows each)", skipped.len() - SKIPPED_LISTED);
    }
}

fn status_of(r: &RunReport) -> u8 {
    r.outcome.class().map_or(exit::PASS, exit::of_class)
}

pub fn run(cat: &Catalogue, a: &RunArgs) -> u8 {
    if let Some(e) = misplaced_target(cat.command(), "run", &a.scenario) {
        return bad_input(e);
    }
    if is_saved_seed(&a.scenario) {
        return bad_input(seed_file_is_not_a_scenario(cat.command(), &a.scenario));
    }
    let (sc, seed, opts) = if is_seed_file(&a.scenario) {
        match from_scenario_file(cat, Path::new(&a.scenario), a.seed, a.opts.bug.as_deref()) {
            Ok(x) => x,
            Err(e) => return bad_input(e),
        }
    } else {
        let sc = match cat.scenario(&a.scenario) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        let Some(seed) = a.seed else {
            return bad_input("run needs --seed N with a scenario name (or a scenario file)");
        };
        (sc, seed, Opts { bug: a.opts.bug.clone(), ..Opts::default() })
    };
    let faults = match load_faults(a.opts.faults.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_input(e),
    };
    let opts = Opts { faults, ..opts };
    let prepared = match Prepared::new(cat, &sc, seed, opts, &a.opts) {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    let t0 = Instant::now();
    let r = run_scenario(&sc, seed, &prepared.opts, TraceMode::Hash, None);
    print_report(cat, &sc, &r, &prepared.opts, t0.elapsed());
    prepared.finish(&r).unwrap_or_else(|| status_of(&r))
}

pub fn replay(cat: &Catalogue, a: &ReplayArgs) -> u8 {
    if let Some(e) = misplaced_target(cat.command(), "replay", &a.target) {
        return bad_input(e);
    }
    let (sc, seed, opts, saved): (Scenario, u64, Opts, Option<SavedSeed>) = if is_scenario_file(&a.target) {
        let (sc, seed, opts) = match from_scenario_file(cat, Path::new(&a.target), a.seed, a.opts.bug.as_deref()) {
            Ok(x) => x,
            Err(e) => return bad_input(e),
        };
        let faults = match load_faults(a.opts.faults.as_deref()) {
            Ok(f) => f,
            Err(e) => return bad_input(e),
        };
        (sc, seed, Opts { faults, ..opts }, None)
    } else if is_seed_file(&a.target) {
        if let Err(e) = std::fs::metadata(&a.target) {
            return bad_input(format!("{}: cannot read: {e}", a.target));
        }
        if a.seed.is_some() || a.opts.bug.is_some() || a.opts.faults.is_some() {
            return bad_input(
                "a seed file already names its seed, bug and faults: give either a file or SCENARIO --seed N",
            );
        }
        // Seeds are saved from full swarm runs (sweep and bugs refuse --save with
        // --plain-swarm), so a plain replay would not be the recorded run.
        if a.opts.plain_swarm {
            return bad_input(
                "--plain-swarm with a seed file: the seed was recorded with the swarm's knobs; replay SCENARIO --seed N --plain-swarm instead",
            );
        }
        let saved = match seeds::load(cat, Path::new(&a.target)) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        (saved.scenario, saved.file.seed, saved.opts.clone(), Some(saved))
    } else {
        let Some(seed) = a.seed else {
            return bad_input("replay needs --seed N with a scenario name (or a seed file)");
        };
        let sc = match cat.scenario(&a.target) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        let faults = match load_faults(a.opts.faults.as_deref()) {
            Ok(f) => f,
            Err(e) => return bad_input(e),
        };
        (sc, seed, Opts { bug: a.opts.bug.clone(), faults, ..Opts::default() }, None)
    };
    // replay's own options before `Prepared` creates the run's output files, so a bad
    // --filter, --html or --out refuses the command without emptying any of them.
    let env_filter = match tracing_subscriber::EnvFilter::try_new(&a.filter) {
        Ok(f) => f,
        Err(e) => return bad_input(format!("bad --filter '{}': {e}", a.filter)),
    };
    if let Err(e) = check_filter_targets(&a.filter) {
        return bad_input(e);
    }
    // The folder for --html is made before the run, so an unwritable one costs nothing.
    if let Some(dir) = &a.html {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return bad_input(format!("--html {}: cannot create the folder: {e}", dir.display()));
        }
    }
    if let Err(e) = artifacts::probe_writable(a.out.as_deref().map(|p| ("--out", p))) {
        return bad_input(e);
    }
    let prepared = match Prepared::new(cat, &sc, seed, opts, &a.opts) {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    // The printed trace (filtered by --filter) and, for --html, everything the timeline needs
    // (every trace line and the `sim::detail` facts), from one run.
    let collector = a.html.as_ref().map(|_| timeline::Collector::default());
    let every_sim_event = || tracing_subscriber::filter::Targets::new().with_target("sim", tracing::Level::TRACE);
    let printer = tracing_subscriber::fmt::layer().with_ansi(false).event_format(LineOnly);
    let dispatch = match &a.out {
        Some(path) => match File::create(path) {
            Ok(file) => tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(printer.with_writer(std::sync::Mutex::new(file)).with_filter(env_filter))
                    .with(collector.clone().map(|c| c.with_filter(every_sim_event()))),
            ),
            Err(e) => return bad_input(format!("cannot create {}: {e}", path.display())),
        },
        None => tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(printer.with_writer(std::io::stdout).with_filter(env_filter))
                .with(collector.clone().map(|c| c.with_filter(every_sim_event()))),
        ),
    };
    if let Some(s) = &saved {
        println!(
            "replaying {} (recorded {} caught by {} on {}, status {}): {}",
            a.target,
            s.file.class.name(),
            s.file.checker,
            s.file.date,
            s.file.status.name(),
            s.file.summary
        );
    }
    let t0 = Instant::now();
    let r = run_scenario(&sc, seed, &prepared.opts, TraceMode::Emit, Some(dispatch));
    let wall = t0.elapsed();
    println!("---");
    print_report(cat, &sc, &r, &prepared.opts, wall);
    if let Some(path) = &a.out {
        println!("trace written to {}", path.display());
    }
    let mut status = None;
    if let (Some(dir), Some(c)) = (&a.html, &collector) {
        match write_timeline(cat.command(), dir, &sc, &prepared.opts, &r, &c.take()) {
            Ok(pages) => pages.iter().for_each(|p| println!("{p}")),
            Err(e) => status = Some(bad_input(e)),
        }
    }
    if let Some(s) = &saved {
        match s.file.verify(&r.outcome) {
            Ok(()) => println!("as recorded"),
            Err(e) => println!("NOT AS RECORDED: {e}"),
        }
    }
    let finished = prepared.finish(&r);
    status.or(finished).unwrap_or_else(|| status_of(&r))
}

/// Writes `timeline.html` (and for a key/value run `history.html`) into `dir`; returns what
/// to print about each page.
fn write_timeline(
    command: &str,
    dir: &Path,
    sc: &Scenario,
    opts: &Opts,
    r: &RunReport,
    collected: &[timeline::Collected],
) -> Result<Vec<String>, String> {
    let info = timeline::RunInfo {
        scenario: sc.name,
        seed: r.seed,
        bug: opts.bug.as_deref(),
        outcome: r.outcome.to_string(),
        passed: r.outcome.is_pass(),
        description: &r.description,
        reproduce: seeds::reproduce_command(command, sc.name, r.seed, opts),
        events: r.events,
        end_ns: r.sim_time.as_nanos() as u64,
    };
    let mut t = timeline::build(&info, collected);
    let mut printed = Vec::new();
    let lines: Vec<&str> = collected
        .iter()
        .filter_map(|c| match c {
            timeline::Collected::Line(l) => Some(l.as_str()),
            timeline::Collected::Commit { .. } => None,
        })
        .collect();
    if let Some(rebuilt) = timeline::kv::rebuild(&lines) {
        // The history page's bands: partitions, nodes down or cut off, and leaders' terms.
        let mut bands: Vec<(u64, u64, String, Option<String>)> = t
            .bands
            .iter()
            .filter(|b| matches!(b.kind, "partition" | "down" | "disconnect"))
            .map(|b| (b.t0, b.t1, b.label.clone(), b.lane.map(|l| t.lanes[l as usize].name.clone())))
            .collect();
        for (lane, roles) in &t.roles {
            for (k, &(t0, role, term)) in roles.iter().enumerate() {
                let t1 = roles.get(k + 1).map_or(t.end, |n| n.0);
                if t.role_names[role as usize] == "leader" && t1 > t0 {
                    bands.push((t0, t1, format!("leader, term {term}"), Some(t.lanes[*lane as usize].name.clone())));
                }
            }
        }
        let (page, result) = timeline::kv::page(&rebuilt, &t.title, &bands, "timeline.html");
        for i in result.failing_ops() {
            if let Some(op) = t.ops.get_mut(i) {
                op.failed = true;
            }
        }
        timeline::point_at_failing_op(&mut t);
        let path = dir.join("history.html");
        std::fs::write(&path, page).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
        t.history_link = Some("history.html".into());
        printed.push(format!(
            "history page written to {} ({} operations, {})",
            path.display(),
            rebuilt.history.len(),
            result.verdict
        ));
    }
    let path = dir.join("timeline.html");
    std::fs::write(&path, timeline::render(&t)).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    printed.insert(
        0,
        format!(
            "timeline written to {} ({} lanes, {} messages{})",
            path.display(),
            t.lanes.len(),
            t.msgs.id.len(),
            if t.check.is_some() { ", the failing check marked" } else { "" }
        ),
    );
    Ok(printed)
}

/// Formats a trace event as its line alone: the line carries its own simulated time and
/// node, and madsim's span context would only repeat them.
pub(crate) struct LineOnly;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LineOnly
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::FormatFields;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
