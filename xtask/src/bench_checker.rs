//! `cargo xtask bench-checker`: times the linearizability checker on the shared Porcupine
//! histories and on generated ones, each row in a child process so that its peak memory
//! is its own.
//!
//! Rows: all non-empty etcd logs, the two slowest etcd logs, the 50-client key/value logs,
//! random concurrent key/value histories (generated from listed seeds), and single-key
//! histories exported from simulator runs (committed under [`SIM_DIR`], so that changes to
//! the simulated service never change them; see `checker_histories` for both). All are in
//! Porcupine's key/value log format, and `--list` prints each row's files so that
//! Porcupine can be timed on exactly the same ones. A child parses its row's files,
//! reads its resident memory, checks the row `--repeat` times with the default options but
//! the scenarios' step budget ([`BENCH_BUDGET`]; one thread, explanations on) and prints one tab-separated line; the parent prints a
//! Markdown table. Timing excludes parsing. Peak memory is the child's VmHWM (the whole
//! process: program, parsed histories and search), with the part added while checking.
//! It reports only what it measures: a comparison with Porcupine is made by hand, timing
//! Porcupine's own checker on the same rows on the same machine (none is recorded today;
//! BENCHMARKS.md's history has the earlier sessions' harness).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use checkers::formats::{jepsen_etcd::read_etcd_log, porcupine_kv::read_kv_log};
use checkers::linearizability::{check, CheckOptions, Verdict};
use checkers::models::{cas_register::CasRegisterModel, kv::KvModel};

use crate::checker_histories::Generated;

/// Set in a child's environment to the row it measures. The parent re-runs its own
/// command line with it, so the child works however the subcommand is wired.
const CHILD_ENV: &str = "SIMLAB_BENCH_CHECKER_ROW";

/// The step budget of every row: the one the key/value scenarios check their histories
/// with (`scenarios::kvraft::tester::CHECK_BUDGET`, 200 million), not the library's default
/// of 10 million. Porcupine, timed beside this, has no budget; every row is decided well
/// inside this one (the hardest, `sim-swarm-590`, in about 44 million steps), and the memory
/// budget stays the default 2 GiB.
const BENCH_BUDGET: u64 = scenarios::kvraft::tester::CHECK_BUDGET;

/// Which parser and model a row uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Etcd,
    Kv,
}

/// Where a row's files come from.
#[derive(Clone, Debug)]
enum Files {
    /// Paths under the shared Porcupine histories.
    Shared(Vec<String>),
    /// Paths in this repository, relative to the checkout's root (the working directory).
    Committed(Vec<String>),
    /// Generated histories (under `--histories`).
    Generated(Vec<Generated>),
}

struct Row {
    name: &'static str,
    kind: Kind,
    files: Files,
}

/// Where the simulator rows' histories are committed, relative to the checkout's root.
pub const SIM_DIR: &str = "xtask/checker-histories";

/// The swarm runs whose single-key histories make the simulator rows (see
/// `checker_histories`): seeds of `kvraft::swarm_3b` under `--plain-swarm` that drew one
/// key and whose histories both this checker and Porcupine decide.
const SIM_SEEDS: &[u64] = &[279, 7, 58, 465, 590];

/// The committed history of `kvraft::swarm_3b` under `seed` with `--plain-swarm`.
fn sim_file(seed: u64) -> String {
    format!("{SIM_DIR}/sim-kvraft__swarm_3b-s{seed}-plain.txt")
}

fn rows() -> Vec<Row> {
    let etcd = |numbers: Vec<usize>| Files::Shared(numbers.iter().map(|i| format!("jepsen/etcd_{i:03}.log")).collect());
    let random =
        |seed, ops, stale| Files::Generated(vec![Generated::Random { seed, clients: 10, keys: 3, ops, stale }]);
    let mut rows = vec![
        Row { name: "etcd-all", kind: Kind::Etcd, files: etcd((0..=102).collect()) },
        Row { name: "etcd-002", kind: Kind::Etcd, files: etcd(vec![2]) },
        Row { name: "etcd-007", kind: Kind::Etcd, files: etcd(vec![7]) },
        Row { name: "c50-ok", kind: Kind::Kv, files: Files::Shared(vec!["kv/c50-ok.txt".into()]) },
        Row { name: "c50-bad", kind: Kind::Kv, files: Files::Shared(vec!["kv/c50-bad.txt".into()]) },
        Row { name: "random-10k-ok", kind: Kind::Kv, files: random(1, 10_000, false) },
        Row { name: "random-10k-stale", kind: Kind::Kv, files: random(1, 10_000, true) },
        Row { name: "random-20k-ok", kind: Kind::Kv, files: random(2, 20_000, false) },
        Row { name: "random-20k-stale", kind: Kind::Kv, files: random(2, 20_000, true) },
    ];
    const SIM_NAMES: [&str; 5] = ["sim-swarm-279", "sim-swarm-7", "sim-swarm-58", "sim-swarm-465", "sim-swarm-590"];
    for (&seed, name) in SIM_SEEDS.iter().zip(SIM_NAMES) {
        rows.push(Row { name, kind: Kind::Kv, files: Files::Committed(vec![sim_file(seed)]) });
    }
    rows
}

/// Benchmark the linearizability checker on the shared Porcupine histories and generated ones.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchCheckerArgs {
    /// The Porcupine histories (default: $SIMLAB_SHARED_DIR/histories/porcupine, else
    /// ../shared/histories/porcupine next to the working directory).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where generated histories are kept (made when missing).
    #[arg(long, value_name = "DIR", default_value = "target/checker-histories")]
    pub histories: PathBuf,
    /// Timed repetitions per row; the median is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Only these rows (repeatable); `--list` shows them.
    #[arg(long = "row", value_name = "ROW")]
    pub rows: Vec<String>,
    /// Print each row's model and files (making generated ones) instead of timing.
    #[arg(long)]
    pub list: bool,
}

/// Runs the benchmark (or one row of it, as a child) and returns the exit status.
pub fn run(args: &BenchCheckerArgs) -> i32 {
    let result = match std::env::var(CHILD_ENV) {
        Ok(row) => child(&row, args),
        Err(_) => parent(args),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("bench-checker: error: {message}");
            4
        }
    }
}

/// The shared histories, found from the working directory or an option, never from a
/// compile-time path (a copied checkout must not read the original's files).
fn data_dir(args: &BenchCheckerArgs) -> PathBuf {
    args.data.clone().unwrap_or_else(|| {
        let shared =
            std::env::var_os("SIMLAB_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared"));
        shared.join("histories/porcupine")
    })
}

/// The row's files, generated first when missing.
fn files(row: &Row, args: &BenchCheckerArgs) -> Result<Vec<PathBuf>, String> {
    match &row.files {
        Files::Shared(names) => {
            let dir = data_dir(args);
            if !dir.join("EXPECTED.tsv").is_file() {
                return Err(format!("no Porcupine histories at {} (use --data DIR)", dir.display()));
            }
            Ok(names.iter().map(|n| dir.join(n)).collect())
        }
        Files::Committed(names) => names
            .iter()
            .map(|n| {
                let path = PathBuf::from(n);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!("no {n} here: run from the checkout's root"))
                }
            })
            .collect(),
        Files::Generated(list) => list.iter().map(|g| g.ensure(&args.histories)).collect(),
    }
}

/// Wall time, for measuring only.
#[allow(clippy::disallowed_methods)] // allow-entropy: wall time for reporting only
fn now() -> Instant {
    Instant::now()
}

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// Times `check_all` `repeat` times; it returns (steps, verdicts).
fn measure(repeat: u32, mut check_all: impl FnMut() -> (u64, Vec<Verdict>)) -> (Vec<Duration>, u64, Vec<Verdict>) {
    let mut times = Vec::new();
    let mut last = (0, Vec::new());
    for _ in 0..repeat {
        let started = now();
        last = check_all();
        times.push(started.elapsed());
    }
    (times, last.0, last.1)
}

fn verdict_counts(verdicts: &[Verdict]) -> String {
    let n = |v| verdicts.iter().filter(|&&x| x == v).count();
    let mut parts = Vec::new();
    for (v, name) in [(Verdict::Linearizable, "ok"), (Verdict::NotLinearizable, "bad"), (Verdict::Unknown, "unknown")] {
        if n(v) > 0 {
            parts.push(format!("{} {name}", n(v)));
        }
    }
    parts.join(", ")
}

fn find(name: &str) -> Result<Row, String> {
    rows().into_iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = rows().iter().map(|r| r.name).collect();
        format!("unknown row {name:?}: expected one of {}", names.join(", "))
    })
}

fn child(name: &str, args: &BenchCheckerArgs) -> Result<(), String> {
    let row = find(name)?;
    let paths = files(&row, args)?;
    let options = CheckOptions { budget: BENCH_BUDGET, ..CheckOptions::default() };
    let (times, steps, verdicts, files, ops, rss_before_kb) = match row.kind {
        Kind::Etcd => {
            let histories = paths
                .iter()
                .map(|p| read_etcd_log(p).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|h| !h.is_empty())
                .collect::<Vec<_>>();
            let rss = status_kb("VmRSS")?;
            let (times, steps, verdicts) = measure(args.repeat, || {
                let results: Vec<_> = histories.iter().map(|h| check(&CasRegisterModel, h, &options)).collect();
                (results.iter().map(|r| r.steps).sum(), results.iter().map(|r| r.verdict).collect())
            });
            (times, steps, verdicts, histories.len(), histories.iter().map(|h| h.len()).sum::<usize>(), rss)
        }
        Kind::Kv => {
            let histories =
                paths.iter().map(|p| read_kv_log(p).map_err(|e| e.to_string())).collect::<Result<Vec<_>, _>>()?;
            let rss = status_kb("VmRSS")?;
            let (times, steps, verdicts) = measure(args.repeat, || {
                let results: Vec<_> = histories.iter().map(|h| check(&KvModel, h, &options)).collect();
                (results.iter().map(|r| r.steps).sum(), results.iter().map(|r| r.verdict).collect())
            });
            (times, steps, verdicts, histories.len(), histories.iter().map(|h| h.len()).sum::<usize>(), rss)
        }
    };
    let mut sorted = times.clone();
    let median = median(&mut sorted);
    println!(
        "{name}\t{}\t{}\t{files}\t{ops}\t{steps}\t{}\t{rss_before_kb}\t{}",
        median.as_nanos(),
        sorted[0].as_nanos(),
        verdict_counts(&verdicts),
        status_kb("VmHWM")?
    );
    Ok(())
}

fn show(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn parent(args: &BenchCheckerArgs) -> Result<(), String> {
    let selected: Vec<Row> = if args.rows.is_empty() {
        rows()
    } else {
        args.rows.iter().map(|name| find(name)).collect::<Result<_, _>>()?
    };
    // Generated files are made here, before any child is timed.
    let mut listed = Vec::new();
    for row in &selected {
        listed.push((row, files(row, args)?));
    }
    if args.list {
        for (row, paths) in &listed {
            let kind = if row.kind == Kind::Etcd { "etcd" } else { "kv" };
            let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            println!("{}\t{kind}\t{}", row.name, paths.join(" "));
        }
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    println!("checker benchmark: {} repetitions per row (median, min), one child process per row", args.repeat);
    println!("data: {}; generated: {}", data_dir(args).display(), args.histories.display());
    println!();
    println!("| row | files | operations | search steps | verdicts | median | min | peak RSS | added by checking |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|");
    for (row, _) in listed {
        let output = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            // Same arguments and environment, so the child finds the same data.
            .env(CHILD_ENV, row.name)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !output.status.success() {
            return Err(format!("row {} failed: {}", row.name, String::from_utf8_lossy(&output.stderr).trim()));
        }
        let line = String::from_utf8_lossy(&output.stdout);
        let f: Vec<&str> = line.trim().split('\t').collect();
        if f.len() != 9 || f[0] != row.name {
            return Err(format!("row {}: unexpected child output {line:?}", row.name));
        }
        let num = |i: usize| f[i].parse::<u64>().map_err(|_| format!("row {}: bad field {:?}", row.name, f[i]));
        let (median, min) = (Duration::from_nanos(num(1)?), Duration::from_nanos(num(2)?));
        let (rss, peak) = (num(7)?, num(8)?);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            f[3],
            f[4],
            f[5],
            f[6],
            show(median),
            show(min),
            mib(peak),
            mib(peak.saturating_sub(rss))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_distinct_names_and_files() {
        let rows = super::rows();
        let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len());
        assert!(rows.iter().all(|r| match &r.files {
            super::Files::Shared(f) | super::Files::Committed(f) =>
                !f.is_empty() && f.iter().all(|p| !std::path::Path::new(p).is_absolute()),
            super::Files::Generated(g) => !g.is_empty(),
        }));
    }

    /// The committed simulator histories are there, single-key, and hold the operations
    /// their first line announces (what Porcupine's parser will read too).
    #[test]
    fn committed_simulator_histories_are_whole() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for &seed in super::SIM_SEEDS {
            let path = root.join(super::sim_file(seed));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let announced: usize = text
                .lines()
                .next()
                .and_then(|l| l.split(": ").nth(1))
                .and_then(|l| l.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{}: no operation count on the first line", path.display()));
            let history = checkers::formats::porcupine_kv::read_kv_log(&path).unwrap();
            assert_eq!(history.len(), announced, "{}", path.display());
            let keys: std::collections::BTreeSet<&str> = history.ops().iter().map(|o| o.input.key()).collect();
            assert_eq!(keys.len(), 1, "{}: one key", path.display());
        }
    }

    /// Every committed simulator history is decided within the bench's step budget (and
    /// the default memory budget): a row that answered `unknown` would time a give-up, not
    /// a check. Seed 590's is the slowest, about 44 million steps.
    #[test]
    fn committed_simulator_histories_are_decided_within_the_bench_budget() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let options = CheckOptions { budget: super::BENCH_BUDGET, ..CheckOptions::default() };
        for &seed in super::SIM_SEEDS {
            let path = root.join(super::sim_file(seed));
            let history = checkers::formats::porcupine_kv::read_kv_log(&path).unwrap();
            let result = check(&KvModel, &history, &options);
            assert_eq!(result.verdict, Verdict::Linearizable, "{} in {} steps", path.display(), result.steps);
        }
    }
}
