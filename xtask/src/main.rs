//! `cargo xtask`: the project's command line — list, run, sweep, replay, determinism,
//! check-history, bench. Wall time is measured here, outside the simulated runtime.
//!
//! Exit status of run, sweep, replay and determinism: 0 pass, 1 safety violation,
//! 2 liveness failure, 3 panic, 4 bad input.

// xtask runs outside every simulation: wall clocks and threads are its job.
#![allow(clippy::disallowed_methods)]

mod bench;
mod bench_checker;
mod bugs;
mod check_history;
mod checker_histories;
mod prop;
mod sweep;

use clap::{Args, Parser, Subcommand};
use scenarios::seeds::{self, SeedFile};
use scenarios::{registry, Opts, Scenario};
use sim::{Outcome, RunReport, TraceMode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Exit status for bad input (usage errors, unknown names, malformed files).
pub const BAD_INPUT: u8 = 4;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Deterministic simulation laboratory for the 6.824 systems",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List scenarios matching FILTER (default: all) with one-line descriptions.
    List {
        /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all`.
        filter: Option<String>,
    },
    /// Run one scenario under one seed; print outcome, trace hash, times and speed.
    Run {
        scenario: String,
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Run every matching scenario over every seed of a half-open range, in parallel.
    Sweep(sweep::SweepArgs),
    /// Re-run one seed with its full trace: `replay SCENARIO --seed N` or `replay seeds/FILE`.
    Replay {
        /// A scenario name, or a saved seed file (a path ending in .toml).
        target: String,
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        opts: RunOpts,
        /// `RUST_LOG`-style filter over trace targets (sim::net, sim::node, sim::timer,
        /// sim::client, sim::fault, sim::persist, sim::fs, sim::note, sim::check).
        #[arg(long, default_value = "info")]
        filter: String,
        /// Write the trace to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run each (scenario, seed) twice and compare the traces event by event.
    Determinism(sweep::DeterminismArgs),
    /// Check a history file for linearizability (kv or etcd model), optionally drawing its page.
    CheckHistory(check_history::CheckHistoryArgs),
    /// Benchmark the linearizability checker on the shared Porcupine histories.
    BenchChecker(bench_checker::BenchCheckerArgs),
    /// Sweep every planted bug: first failing seed, failure fraction, catching checks.
    Bugs(bugs::BugsArgs),
    /// Runtime-free property tests of the cores, with shrinking and saved counterexamples.
    Prop(prop::PropArgs),
    /// Performance figures for BENCHMARKS.md: network yardstick, scenario speed, sweep scaling.
    Bench(bench::BenchArgs),
}

/// Options shared by run and replay.
#[derive(Args, Clone, Default)]
pub struct RunOpts {
    /// Plant a bug of the scenario's family (see `cargo xtask list --bugs`).
    #[arg(long)]
    pub bug: Option<String>,
    /// Replay this fault schedule instead of drawing one from the seed.
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Write the fault schedule the run used to this file.
    #[arg(long)]
    pub save_faults: Option<PathBuf>,
    /// Write the run's client history (kvraft scenarios) to this file: `.json` gets the JSON
    /// form (everything the checker uses), any other name Porcupine's key/value log format.
    /// Repeat it for both; `check-history --model kv FILE` reads either.
    #[arg(long, value_name = "FILE")]
    pub history: Vec<PathBuf>,
}

impl RunOpts {
    pub fn to_opts(&self) -> Opts {
        Opts {
            bug: self.bug.clone(),
            faults: self.faults.clone(),
            save_faults: self.save_faults.clone(),
            history: self.history.clone(),
        }
    }
}

/// Before a run with `--history`: the scenario must record a client history, and every
/// file must be writable (it is created empty now, so nothing is lost at the end).
fn prepare_history_files(sc: &Scenario, opts: &Opts) -> Result<(), String> {
    if opts.history.is_empty() {
        return Ok(());
    }
    // The kvraft family's tester records every clerk call; other families have no history.
    if sc.family() != "kvraft" {
        return Err(format!("--history: {} records no client history (the kvraft scenarios do)", sc.name));
    }
    for path in &opts.history {
        std::fs::File::create(path).map_err(|e| format!("--history: cannot create {}: {e}", path.display()))?;
    }
    Ok(())
}

/// After a run with `--history`: says what each file holds, or that it could not be written.
fn report_history_files(opts: &Opts) -> Result<(), String> {
    for path in &opts.history {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.is_empty() {
            return Err(format!(
                "--history: {} could not be written (Porcupine's format cannot carry a key or value with a quote, backslash or line break: use a .json file)",
                path.display()
            ));
        }
        let what = if path.extension().is_some_and(|e| e == "json") {
            "JSON form".to_string()
        } else {
            text.lines().next().unwrap_or_default().trim_start_matches("; simlab key/value history in ").to_string()
        };
        println!("history:        {} ({what})", path.display());
    }
    Ok(())
}

/// A one-line error and exit status 4.
pub fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(BAD_INPUT)
}

/// Resolves a filter and an optional bug, or says what is wrong.
pub fn resolve(filter: &str, bug: Option<&str>) -> Result<Vec<Scenario>, String> {
    let scenarios = registry::select(filter)?;
    if let Some(b) = bug {
        registry::validate_bug(&scenarios, b)?;
    }
    Ok(scenarios)
}

/// Checks that an options' fault file exists before any run starts.
pub fn check_opts(opts: &Opts) -> Result<(), String> {
    if let Some(f) = &opts.faults {
        sim::faults::FaultSchedule::load(f)?;
    }
    Ok(())
}

fn exit_for(outcome: &Outcome) -> ExitCode {
    ExitCode::from(outcome.exit_code() as u8)
}

/// Prints a run's result block.
pub fn print_report(sc: &Scenario, r: &RunReport, opts: &Opts, wall: std::time::Duration) {
    let wall_s = wall.as_secs_f64().max(1e-9);
    println!("scenario:       {}", sc.name);
    println!("seed:           {}", r.seed);
    if let Some(b) = &opts.bug {
        println!("planted bug:    {b}");
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
    if !r.outcome.is_pass() {
        println!("REPRODUCE WITH: {}", seeds::reproduce_command(sc.name, r.seed, opts));
    }
}

fn cmd_list(filter: Option<String>) -> ExitCode {
    let scenarios = match registry::select(filter.as_deref().unwrap_or("all")) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &scenarios {
        println!("{:width$}  {}", s.name, s.description);
    }
    let fams: Vec<&str> = scenarios.iter().map(|s| s.family()).collect();
    for f in registry::families() {
        let bugs = (f.bugs)();
        if fams.contains(&f.name) && !bugs.is_empty() {
            println!("\nplanted bugs of {} (--bug NAME):", f.name);
            for (name, what) in bugs {
                println!("  {name:24} {what}");
            }
        }
    }
    ExitCode::SUCCESS
}

fn one_scenario(name: &str) -> Result<Scenario, String> {
    let s = registry::select(name)?;
    match s.as_slice() {
        [one] if one.name == name => Ok(*one),
        _ => Err(format!(
            "'{name}' is not one scenario: give a full name such as mapreduce::crash (see `cargo xtask list`)"
        )),
    }
}

fn cmd_run(scenario: &str, seed: u64, opts: &RunOpts) -> ExitCode {
    let opts = opts.to_opts();
    let sc = match one_scenario(scenario).and_then(|s| resolve(s.name, opts.bug.as_deref()).map(|_| s)) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    if let Err(e) = check_opts(&opts).and_then(|_| prepare_history_files(&sc, &opts)) {
        return bad_input(e);
    }
    let t0 = Instant::now();
    let r = registry::run_scenario(&sc, seed, &opts, TraceMode::Hash, None);
    print_report(&sc, &r, &opts, t0.elapsed());
    if let Err(e) = report_history_files(&opts) {
        return bad_input(e);
    }
    exit_for(&r.outcome)
}

fn cmd_replay(target: &str, seed: Option<u64>, opts: &RunOpts, filter: &str, out: Option<PathBuf>) -> ExitCode {
    let (sc, seed, opts, saved): (Scenario, u64, Opts, Option<SeedFile>) = if target.ends_with(".toml")
        || std::path::Path::new(target).is_file()
    {
        let path = PathBuf::from(target);
        let sf = match seeds::load(&path) {
            Ok(sf) => sf,
            Err(e) => return bad_input(e),
        };
        if seed.is_some() || opts.bug.is_some() || opts.faults.is_some() {
            return bad_input(
                "a seed file already names its seed, bug and faults: give either a file or SCENARIO --seed N",
            );
        }
        let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let sc = match one_scenario(&sf.scenario) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        let mut o = sf.opts(&dir);
        o.save_faults = opts.save_faults.clone();
        o.history = opts.history.clone();
        (sc, sf.seed, o, Some(sf))
    } else {
        let Some(seed) = seed else { return bad_input("replay needs --seed N with a scenario name (or a seed file)") };
        let opts = opts.to_opts();
        match one_scenario(target).and_then(|s| resolve(s.name, opts.bug.as_deref()).map(|_| s)) {
            Ok(s) => (s, seed, opts, None),
            Err(e) => return bad_input(e),
        }
    };
    if let Err(e) = check_opts(&opts).and_then(|_| prepare_history_files(&sc, &opts)) {
        return bad_input(e);
    }
    let env_filter = match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(f) => f,
        Err(e) => return bad_input(format!("bad --filter '{filter}': {e}")),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter).with_ansi(false).event_format(LineOnly);
    let dispatch = match &out {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => tracing::Dispatch::new(builder.with_writer(std::sync::Mutex::new(file)).finish()),
            Err(e) => return bad_input(format!("cannot create {}: {e}", path.display())),
        },
        None => tracing::Dispatch::new(builder.with_writer(std::io::stdout).finish()),
    };
    if let Some(sf) = &saved {
        println!(
            "replaying {} (recorded {} on {}, status {:?}): {}",
            target,
            sf.class.name(),
            sf.date,
            sf.status,
            sf.summary
        );
    }
    let t0 = Instant::now();
    let r = registry::run_scenario(&sc, seed, &opts, TraceMode::Emit, Some(dispatch));
    let wall = t0.elapsed();
    println!("---");
    print_report(&sc, &r, &opts, wall);
    if let Some(path) = &out {
        println!("trace written to {}", path.display());
    }
    if let Err(e) = report_history_files(&opts) {
        return bad_input(e);
    }
    exit_for(&r.outcome)
}

/// Formats a trace event as its line alone: the line carries its own simulated time and
/// node, and madsim's span context would only repeat them.
struct LineOnly;

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

fn main() -> ExitCode {
    // Die quietly when the reader of our output goes away (`replay ... | head`), as
    // command-line tools do, instead of panicking on every later write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(BAD_INPUT)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first line, without its usage block.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            return bad_input(format!("{first} (see `cargo xtask --help`)"));
        }
    };
    match cli.cmd {
        Cmd::List { filter } => cmd_list(filter),
        Cmd::Run { scenario, seed, opts } => cmd_run(&scenario, seed, &opts),
        Cmd::Sweep(a) => sweep::sweep(&a),
        Cmd::Replay { target, seed, opts, filter, out } => cmd_replay(&target, seed, &opts, &filter, out),
        Cmd::Determinism(a) => sweep::determinism(&a),
        Cmd::Bench(a) => bench::run(&a),
        Cmd::Bugs(a) => bugs::run(&a),
        Cmd::CheckHistory(a) => ExitCode::from(check_history::run(&a) as u8),
        Cmd::BenchChecker(a) => ExitCode::from(bench_checker::run(&a) as u8),
        Cmd::Prop(a) => prop::run(&a),
    }
}
