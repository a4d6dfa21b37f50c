//! `simlab_cli`: the simulation laboratory's command line as a library — list, run, sweep,
//! replay, shrink, determinism, bugs, prop, check-history, bench, bench-checker, and for sweeps across
//! machines merge, compare and costs — for any [`Catalogue`] of scenario families.
//!
//! This project's `cargo xtask` is the thin binary `fn main() -> ExitCode {
//! simlab_cli::main(scenarios::catalogue()) }`; a downstream crate does the same with a
//! catalogue of its own — the project's families, its own, or both — and gets every command
//! for it, with no private path this project takes and it cannot:
//!
//! ```no_run
//! use scenarios::registry::{Catalogue, Family, Opts, Scenario, ScenarioFuture};
//! use std::time::Duration;
//!
//! fn basic(opts: Opts) -> ScenarioFuture {
//!     Box::pin(async move {
//!         // Make a cluster on `sim`, act, check; `opts.bug` names a planted bug, if any.
//!         let _ = opts;
//!         Ok(())
//!     })
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let mine = Family::new("register")
//!         .with_bug("stale-read", "the backup answers reads from its own copy")
//!         .with_scenario(Scenario::new("register::basic", "one client, two servers", Duration::from_secs(60), basic));
//!     simlab_cli::main(scenarios::catalogue().with_family(mine))
//! }
//! ```
//!
//! Commands that take a scenario filter, a planted bug or a fault file check them against the
//! catalogue before any run starts; bad input of any kind is one line on stderr and exit
//! status 4 ([`exit`] lists every status). Wall time is measured here, outside the
//! simulated runtime; a run itself is a pure function of (scenario, seed, build).

#![deny(missing_docs)]
// The command line runs outside every simulation: wall clocks and threads are its job.
#![allow(clippy::disallowed_methods)]

mod artifacts;
mod bench;
mod bench_checker;
mod bugs;
mod check_history;
mod checker_histories;
mod compare;
mod costs;
mod junit;
mod merge;
mod plan;
mod prop;
pub mod results;
pub mod shard;
mod shrink;
mod single;
mod sweep;
pub mod timeline;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

use scenarios::registry::DEFAULT_COMMAND;

pub use scenarios::registry::{
    Catalogue, Family, FaultFile, FaultRecorder, FaultSupport, Filter, InputError, Opts, PlantedBug, Scenario,
    ScenarioFuture,
};

/// Exit statuses, the same for every catalogue. A command that can end several ways exits
/// with the most severe; 0–4 are a run's classes and bad input, 5 and up belong to the
/// commands that judge something other than one run.
pub mod exit {
    /// Everything passed.
    pub const PASS: u8 = 0;
    /// A run ended in a safety violation (a checker or a course bound said no). For
    /// `check-history`: the history is not linearizable.
    pub const SAFETY: u8 = 1;
    /// A run ended in a liveness failure (budget ran out, every task blocked, livelock).
    /// For `check-history`: the verdict is unknown (its step budget or timeout ran out).
    pub const LIVENESS: u8 = 2;
    /// A run panicked (a core's own assert, or a harness bug).
    pub const PANIC: u8 = 3;
    /// Bad input: a usage error, an unknown name, an option the scenario does not take, a
    /// file that cannot be read, parsed or written. One line on stderr says what to do.
    pub const BAD_INPUT: u8 = 4;
    /// `determinism`: some seed's two executions differ. `compare`: two results files
    /// disagree about a run (or one holds a run the other lacks).
    pub const NONDETERMINISTIC: u8 = 5;
    /// `bugs`, and `prop`'s planted-bug tests: a planted bug was not found.
    pub const BUG_NOT_FOUND: u8 = 6;
    /// `prop`: a property of a correct core failed.
    pub const PROPERTY_FAILED: u8 = 7;

    /// The status of a run that ended in `class`.
    pub fn of_class(class: sim::FailureClass) -> u8 {
        class.exit_code() as u8
    }
}

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Deterministic simulation laboratory: list, run, sweep and replay scenarios; property tests; history checks",
    after_help = "Exit status: 0 pass, 1 safety violation, 2 liveness failure, 3 panic, 4 bad input, \
                  5 nondeterminism (determinism, compare), 6 planted bug not found (bugs, prop), 7 property failed (prop)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List scenarios matching FILTER (default: all) with one-line descriptions, then the
    /// planted bugs of their families.
    List(single::ListArgs),
    /// Run one scenario under one seed; print outcome, trace hash, times and speed.
    Run(single::RunArgs),
    /// Run every matching scenario over every seed of a half-open range, in parallel; or one
    /// part of them (--shard K/N); results for people, JSON lines or JUnit.
    Sweep(sweep::SweepArgs),
    /// Combine the results files of a sharded sweep's parts, refusing a missing or repeated
    /// part or run.
    Merge(merge::MergeArgs),
    /// Name the first run whose outcome or trace hash differs between two results files.
    Compare(compare::CompareArgs),
    /// Measure each scenario's wall time per run: the cost table --shard splits by.
    Costs(costs::CostsArgs),
    /// Re-run one seed with its full trace: `replay SCENARIO --seed N` or `replay seeds/FILE`.
    Replay(single::ReplayArgs),
    /// Shrink a failing swarm run by delta debugging: the smallest scenario file that still
    /// fails with the same class and check, with its trace and sizes before and after.
    Shrink(shrink::ShrinkArgs),
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

/// The clap definition of the whole command line, for documentation tools and tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The command line as `name` serves it: its usage lines and every help text that names a
/// command (`cargo xtask list` marks them) name `name` instead.
fn named(cmd: clap::Command, name: &'static str) -> clap::Command {
    fn rename(cmd: clap::Command, name: &'static str) -> clap::Command {
        let swap = |text: Option<&clap::builder::StyledStr>| {
            text.map(|t| t.to_string())
                .filter(|t| t.contains(DEFAULT_COMMAND))
                .map(|t| t.replace(DEFAULT_COMMAND, name))
        };
        let mut cmd = cmd.mut_args(|arg| {
            let (help, long) = (swap(arg.get_help()), swap(arg.get_long_help()));
            let arg = match help {
                Some(h) => arg.help(h),
                None => arg,
            };
            match long {
                Some(h) => arg.long_help(h),
                None => arg,
            }
        });
        if let Some(h) = swap(cmd.get_about()) {
            cmd = cmd.about(h);
        }
        if let Some(h) = swap(cmd.get_long_about()) {
            cmd = cmd.long_about(h);
        }
        if let Some(h) = swap(cmd.get_after_help()) {
            cmd = cmd.after_help(h);
        }
        let subs: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_string()).collect();
        for sub in subs {
            cmd = cmd.mut_subcommand(sub, |c| rename(c, name));
        }
        cmd
    }
    let cmd = cmd.name(name).bin_name(name);
    if name == DEFAULT_COMMAND {
        cmd
    } else {
        rename(cmd, name)
    }
}

/// `n` and the noun, plural unless `n` is 1 (`1 run`, `2 runs`); `noun` is its singular,
/// made plural with an `s`.
pub(crate) fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Prints a one-line error on stderr and returns [`exit::BAD_INPUT`].
pub(crate) fn bad_input(msg: impl std::fmt::Display) -> u8 {
    eprintln!("error: {msg}");
    exit::BAD_INPUT
}

/// Parses `args` (the program name first), or gives the status to exit with at once: 0
/// after printing help, 4 after one line for a usage error.
fn parse(name: &'static str, args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Cli, u8> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // The subcommand typed, for an error whose text has no usage line (a bad value).
    let cmd = named(command(), name);
    let typed = args.iter().skip(1).find_map(|a| {
        let a = a.to_str()?;
        cmd.get_subcommands().any(|c| c.get_name() == a).then(|| format!("{name} {a}"))
    });
    let matches = cmd.try_get_matches_from(args).and_then(|m| Cli::from_arg_matches(&m));
    matches.map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                exit::PASS
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                // No command: one line naming them, as for every other usage error.
                let commands: Vec<String> = named(command(), name)
                    .get_subcommands()
                    .filter(|c| !c.is_hide_set())
                    .map(|c| c.get_name().to_string())
                    .collect();
                bad_input(format!("no command given: one of {} (see `{name} --help`)", commands.join(", ")))
            }
            _ => {
                // One line: clap's first paragraph (the error and, for a typed value, the
                // values it takes) and its tip (`a similar argument exists: '--seed'`),
                // without its usage block; the help to read is the subcommand's, named by
                // that usage line (`Usage: cargo xtask run [OPTIONS] <SCENARIO>`).
                let text = e.render().to_string();
                let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
                let mut line = first.join(" ").trim_start_matches("error: ").to_string();
                // Only the "a similar … exists" tips: clap's "to pass '--x' as a value, use
                // '-- --x'" would suggest a scenario filter named like an option.
                for tip in text.lines().map(str::trim).filter(|l| l.starts_with("tip: a similar")) {
                    line.push_str("; ");
                    line.push_str(tip);
                }
                let command = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Usage: "))
                    .map(|u| u.split_whitespace().take_while(|w| !w.starts_with(['[', '<', '-'])).collect::<Vec<_>>())
                    .filter(|words| !words.is_empty())
                    .map(|words| words.join(" "))
                    .or(typed)
                    .unwrap_or_else(|| name.to_string());
                bad_input(format!("{line} (see `{command} --help`)"))
            }
        }
    })
}

/// Runs one command line (`args`, the program name first) against `catalogue` and returns
/// its exit status (see [`exit`]). Output goes to stdout, errors to stderr.
pub fn run<I, T>(catalogue: &Catalogue, args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match parse(catalogue.command(), args) {
        Ok(c) => c,
        Err(status) => return status,
    };
    match cli.cmd {
        Cmd::List(a) => single::list(catalogue, &a),
        Cmd::Run(a) => single::run(catalogue, &a),
        Cmd::Sweep(a) => sweep::sweep(catalogue, &a),
        Cmd::Merge(a) => merge::run(catalogue.command(), &a),
        Cmd::Compare(a) => compare::run(catalogue.command(), &a),
        Cmd::Costs(a) => costs::run(catalogue, &a),
        Cmd::Replay(a) => single::replay(catalogue, &a),
        Cmd::Shrink(a) => shrink::run(catalogue, &a),
        Cmd::Determinism(a) => sweep::determinism(catalogue, &a),
        Cmd::Bench(a) => bench::run(catalogue, &a),
        Cmd::Bugs(a) => bugs::run(catalogue, &a),
        Cmd::CheckHistory(a) => check_history::run(&a) as u8,
        Cmd::BenchChecker(a) => bench_checker::run(&a) as u8,
        Cmd::Prop(a) => prop::run(catalogue, &a),
    }
}

/// Checks a command line without running anything: it parses, and the scenario filters,
/// scenario names, planted bugs and saved seed files it names exist in `catalogue`. For
/// documentation tests: every command line a README quotes must pass.
///
/// # Errors
/// One line saying what is wrong.
pub fn check_command_line<I, T>(catalogue: &Catalogue, args: I) -> Result<(), String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args).map_err(|e| e.render().to_string())?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.render().to_string())?;
    let selection = |filter: &str, bug: Option<&str>| -> Result<(), String> {
        let scenarios = catalogue.select(filter).map_err(|e| e.to_string())?;
        bug.map_or(Ok(()), |b| catalogue.check_bug(&scenarios, b).map_err(|e| e.to_string()))
    };
    match &cli.cmd {
        Cmd::List(a) => a.filter.as_deref().map_or(Ok(()), |f| selection(f, None)),
        Cmd::Run(a) if single::is_seed_file(&a.scenario) => {
            single::from_scenario_file(catalogue, std::path::Path::new(&a.scenario), a.seed, a.opts.bug.as_deref())
                .map(|_| ())
        }
        Cmd::Run(a) => {
            catalogue.scenario(&a.scenario).map_err(|e| e.to_string())?;
            selection(&a.scenario, a.opts.bug.as_deref())
        }
        Cmd::Shrink(a) if single::is_seed_file(&a.target) => {
            single::from_scenario_file(catalogue, std::path::Path::new(&a.target), a.seed, a.bug.as_deref()).map(|_| ())
        }
        Cmd::Shrink(a) => {
            catalogue.scenario(&a.target).map_err(|e| e.to_string())?;
            selection(&a.target, a.bug.as_deref())
        }
        Cmd::Replay(a) if single::is_scenario_file(&a.target) => {
            single::from_scenario_file(catalogue, std::path::Path::new(&a.target), a.seed, a.opts.bug.as_deref())
                .map(|_| ())
        }
        Cmd::Replay(a) if single::is_seed_file(&a.target) => {
            scenarios::seeds::load(catalogue, std::path::Path::new(&a.target)).map(|_| ()).map_err(|e| e.to_string())
        }
        Cmd::Replay(a) => {
            catalogue.scenario(&a.target).map_err(|e| e.to_string())?;
            selection(&a.target, a.opts.bug.as_deref())
        }
        Cmd::Sweep(a) if a.rerun.is_some() => Ok(()),
        Cmd::Sweep(a) => selection(a.filter.as_deref().unwrap_or("all"), a.bug.as_deref()),
        Cmd::Costs(a) => selection(&a.filter, None),
        Cmd::Determinism(a) => selection(&a.sel.filter, a.sel.bug.as_deref()),
        Cmd::Bugs(a) => selection(&a.sel.filter, a.sel.bug.as_deref()),
        Cmd::Prop(a) => prop::pick(catalogue, &a.filter).map(|_| ()),
        Cmd::CheckHistory(_) | Cmd::BenchChecker(_) | Cmd::Bench(_) | Cmd::Merge(_) | Cmd::Compare(_) => Ok(()),
    }
}

/// The whole program: runs the process's command line against `catalogue` and returns the
/// status to exit with. Call it from a binary's `main`.
pub fn main(catalogue: Catalogue) -> ExitCode {
    // Die quietly when the reader of our output goes away (`replay ... | head`), as
    // command-line tools do, instead of panicking on every later write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    ExitCode::from(run(&catalogue, std::env::args_os()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downstream_command_lines_help_names_its_own_command() {
        // Before, `cargo lab run --help` told its users to run `cargo xtask list --bugs`.
        let mut cmd = named(command(), "cargo lab");
        let top = cmd.render_long_help().to_string();
        assert!(top.contains("cargo lab") && !top.contains("cargo xtask"), "{top}");
        let subs: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_string()).collect();
        assert!(subs.len() > 10);
        for sub in subs {
            let help = cmd.find_subcommand_mut(&sub).unwrap().render_long_help().to_string();
            assert!(!help.contains("cargo xtask"), "{sub}: {help}");
        }
        let run = command().find_subcommand("run").unwrap().clone().render_long_help().to_string();
        assert!(run.contains("cargo xtask list"), "the project's own help keeps its name");
    }
}
