//! `shrink`: the smallest scenario file that still fails like a failing swarm run — same
//! class, same catching check — by delta debugging over its resolved scenario
//! (`scenarios::shrink`); writes the file and its trace and reports sizes before and after.

use crate::single::{from_scenario_file, is_seed_file, LineOnly};
use crate::{bad_input, exit};
use clap::Args;
use scenarios::registry::{run_scenario, Catalogue, Opts};
use scenarios::shrink::{self, Sizes};
use scenarios::spec::SpecRecorder;
use sim::TraceMode;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

#[derive(Args)]
pub struct ShrinkArgs {
    /// A swarm scenario's full name, one that takes scenario files (`cargo xtask list` marks
    /// them: `raft::swarm_2c`, `kvpaxos::swarm_3b`, `mapreduce::swarm`, …), or a scenario file.
    pub target: String,
    /// The failing run's seed (with a scenario file, the file's seed when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The planted bug the run fails with.
    #[arg(long)]
    pub bug: Option<String>,
    /// Shrink the swarm run without its timing knobs and fault points (as `run
    /// --plain-swarm`): the file it writes records none, so it runs plain too.
    #[arg(long)]
    pub plain_swarm: bool,
    /// Where to write the smallest failing scenario file; its trace goes beside it
    /// (`FILE.trace.txt`); its folder must exist. Default: `target/shrink/<scenario>-<seed>[-<bug>].toml`
    /// (that folder is made).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// At most this many candidate runs.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: u64,
}

fn default_out(scenario: &str, seed: u64, bug: Option<&str>) -> PathBuf {
    let mut name = format!("{}-{seed}", scenario.replace("::", "__"));
    if let Some(b) = bug {
        name.push_str(&format!("-{b}"));
    }
    Path::new("target").join("shrink").join(format!("{name}.toml"))
}

fn line(label: &str, s: &Sizes) -> String {
    let of_them = if s.config_changes > 0 {
        crate::count(s.config_changes as u64, "configuration change")
    } else {
        crate::count(s.commands, "command")
    };
    let s_ = |n: u64| if n == 1 { "" } else { "s" };
    format!(
        "{label} {:>4} fault event{}, {:>6} operation{} ({of_them}), {}, {:>2} client{}, {:>8.3}s simulated, {:>8} trace events",
        s.fault_events,
        s_(s.fault_events as u64),
        s.operations,
        s_(s.operations),
        crate::count(s.servers as u64, "server"),
        s.clients,
        s_(s.clients as u64),
        s.sim_time_ns as f64 / 1e9,
        s.trace_events
    )
}

pub fn run(cat: &Catalogue, a: &ShrinkArgs) -> u8 {
    if let Some(e) = crate::single::misplaced_target(cat.command(), "shrink", &a.target) {
        return bad_input(e);
    }
    if crate::single::is_saved_seed(&a.target) {
        return bad_input(crate::single::seed_file_is_not_a_scenario(cat.command(), &a.target));
    }
    let (sc, seed, opts) = if is_seed_file(&a.target) {
        if a.plain_swarm {
            return bad_input("--plain-swarm with a scenario file: the file's [timing] and [fault_points] decide; delete them instead");
        }
        match from_scenario_file(cat, Path::new(&a.target), a.seed, a.bug.as_deref()) {
            Ok(x) => x,
            Err(e) => return bad_input(e),
        }
    } else {
        let sc = match cat.scenario(&a.target) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        let Some(seed) = a.seed else {
            return bad_input("shrink needs --seed N with a scenario name (or a scenario file)");
        };
        (sc, seed, Opts { bug: a.bug.clone(), plain_swarm: a.plain_swarm, ..Opts::default() })
    };
    // Checked as the shrinker runs it: recording its resolved scenario (only swarms can).
    let checked = Opts { record_scenario: Some(SpecRecorder::new(sc.name)), ..opts.clone() };
    if let Err(e) = cat.check_opts(&sc, seed, &checked) {
        return bad_input(e);
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(sc.name, seed, opts.bug.as_deref()));
    let trace_path = PathBuf::from(format!("{}.trace.txt", out.display()));
    match &a.out {
        // A path given is taken as given, as every other output option does: a missing
        // folder is refused before the search, not created.
        Some(given) => {
            let files = [("--out", given.as_path()), ("--out (its trace)", trace_path.as_path())];
            if let Err(e) = crate::artifacts::probe_writable(files) {
                return bad_input(e);
            }
        }
        // The default's folder (`target/shrink`) is the command's own to make.
        None => {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    return bad_input(format!("{}: cannot create the folder: {e}", dir.display()));
                }
            }
        }
    }
    // Both files are created before the search, so an unwritable path costs nothing.
    let (mut out_file, trace_file) = match (File::create(&out), File::create(&trace_path)) {
        (Ok(o), Ok(t)) => (o, t),
        (Err(e), _) => return bad_input(format!("{}: cannot write: {e}", out.display())),
        (_, Err(e)) => return bad_input(format!("{}: cannot write: {e}", trace_path.display())),
    };
    println!(
        "shrinking {} --seed {seed}{}",
        sc.name,
        opts.bug.as_ref().map(|b| format!(" --bug {b}")).unwrap_or_default()
    );
    let t0 = Instant::now();
    let mut progress = |l: &str| println!("{l}");
    let shrunk = match shrink::shrink(&sc, seed, &opts, a.max_runs as usize, &mut progress) {
        Ok(s) => s,
        Err(e) => {
            drop((out_file, trace_file));
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(&trace_path);
            return bad_input(e);
        }
    };
    use std::io::Write as _;
    if let Err(e) = out_file.write_all(shrunk.smallest.to_toml().as_bytes()) {
        return bad_input(format!("{}: cannot write: {e}", out.display()));
    }
    // The smallest candidate once more, every trace line to its file.
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(LineOnly)
                .with_writer(std::sync::Mutex::new(trace_file))
                .with_filter(tracing_subscriber::filter::Targets::new().with_target("sim", tracing::Level::INFO)),
        ),
    );
    // It fails under the seed it records (another than the original's when the search had to
    // reseed a candidate: scenarios::shrink).
    let seed = shrunk.smallest.seed;
    let last = run_scenario(&sc, seed, &shrink::spec_opts(&shrunk.smallest), TraceMode::Emit, Some(dispatch));
    let kept = shrink::FailureKind::of(&last.outcome).as_ref() == Some(&shrunk.failure);
    let what = match shrunk.failure.class {
        sim::FailureClass::Panic => "a panic".to_string(),
        class => format!("{} violation caught by {}", class.name(), shrunk.failure.checker),
    };
    println!(
        "kept: {what} ({} candidate runs, {} accepted, {:.1}s)",
        shrunk.runs,
        shrunk.accepted,
        t0.elapsed().as_secs_f64()
    );
    if shrunk.runs as u64 >= a.max_runs {
        println!(
            "budget:         the search used all {} candidate runs of --max-runs; a larger budget may shrink further",
            a.max_runs
        );
    }
    println!("{}", line("before:", &shrunk.before));
    println!("{}", line("after: ", &shrunk.after));
    println!("outcome:        {}", last.outcome);
    println!("scenario written to {}", out.display());
    println!("trace written to {}", trace_path.display());
    // The catalogue's own command: a downstream crate's users type theirs (`cargo lab …`).
    println!("REPRODUCE WITH: {} replay {} --seed {seed}", cat.command(), out.display());
    if !kept {
        // Cannot happen for a deterministic run; said loudly if it does.
        println!("NOT KEPT: the smallest scenario ended '{}' when run again", last.outcome);
        return exit::NONDETERMINISTIC;
    }
    exit::of_class(shrunk.failure.class)
}
