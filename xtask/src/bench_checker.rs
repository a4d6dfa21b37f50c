//! `cargo xtask bench-checker`: times the linearizability checker on the shared Porcupine
//! histories, each row in a child process so that its peak memory is its own.
//!
//! Rows: all non-empty etcd logs, the two slowest etcd logs, and the 50-client key/value
//! logs. A child parses its row's files, reads its resident memory, checks the row
//! `--repeat` times with the default options (single thread, explanations on) and prints
//! one tab-separated line; the parent prints a Markdown table (for BENCHMARKS.md).
//! Timing includes no parsing. Peak memory is the child's VmHWM (whole process: binary,
//! parsed histories and search), with the part added during checking next to it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use checkers::formats::{jepsen_etcd::read_etcd_log, porcupine_kv::read_kv_log};
use checkers::linearizability::{check, CheckOptions, Verdict};
use checkers::models::{cas_register::CasRegisterModel, kv::KvModel};

/// Set in a child's environment to the row it measures. The parent re-runs its own
/// command line with it, so the child works however the subcommand is wired.
const CHILD_ENV: &str = "SIMLAB_BENCH_CHECKER_ROW";

/// The rows, with Porcupine's time on this machine kind (from the data's README).
const ROWS: &[(&str, &str)] = &[
    ("etcd-all", "~0.55 s"),
    ("etcd-002", "~0.17 s"),
    ("etcd-007", "~0.17 s"),
    ("c50-ok", "~0.2 s"),
    ("c50-bad", "10–75 ms"),
];

/// Benchmark the linearizability checker on the shared Porcupine histories.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchCheckerArgs {
    /// The histories (default: $SIMLAB_SHARED_DIR/histories/porcupine, else
    /// ../shared/histories/porcupine next to the workspace).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Timed repetitions per row; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: u32,
    /// Only these rows (etcd-all, etcd-002, etcd-007, c50-ok, c50-bad, c10-ok, c10-bad);
    /// repeatable.
    #[arg(long = "row", value_name = "ROW")]
    pub rows: Vec<String>,
}

/// Runs the benchmark (or one row of it, as a child) and returns the exit status.
pub fn run(args: &BenchCheckerArgs) -> i32 {
    let result = match std::env::var(CHILD_ENV) {
        Ok(row) => child(&row, &data_dir(args), args.repeat.max(1)),
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

fn data_dir(args: &BenchCheckerArgs) -> PathBuf {
    args.data.clone().unwrap_or_else(|| {
        let shared = std::env::var_os("SIMLAB_SHARED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")));
        shared.join("histories/porcupine")
    })
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

/// One row's measurements.
struct Measured {
    median: Duration,
    min: Duration,
    files: usize,
    ops: usize,
    steps: u64,
    verdicts: String,
    rss_before_kb: u64,
    peak_kb: u64,
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

fn child(row: &str, dir: &Path, repeat: u32) -> Result<(), String> {
    let options = CheckOptions::default();
    let etcd = |numbers: Vec<usize>| -> Result<Vec<_>, String> {
        let histories = numbers
            .into_iter()
            .map(|i| read_etcd_log(&dir.join(format!("jepsen/etcd_{i:03}.log"))).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(histories.into_iter().filter(|h| !h.is_empty()).collect())
    };
    let (times, steps, verdicts, files, ops, rss_before_kb) = match row {
        "etcd-all" | "etcd-002" | "etcd-007" => {
            let numbers = match row {
                "etcd-all" => (0..=102).collect(),
                "etcd-002" => vec![2],
                _ => vec![7],
            };
            let histories = etcd(numbers)?;
            let rss = status_kb("VmRSS")?;
            let (times, steps, verdicts) = measure(repeat, || {
                let results: Vec<_> = histories.iter().map(|h| check(&CasRegisterModel, h, &options)).collect();
                (results.iter().map(|r| r.steps).sum(), results.iter().map(|r| r.verdict).collect())
            });
            (times, steps, verdicts, histories.len(), histories.iter().map(|h| h.len()).sum(), rss)
        }
        "c50-ok" | "c50-bad" | "c10-ok" | "c10-bad" => {
            let history = read_kv_log(&dir.join(format!("kv/{row}.txt"))).map_err(|e| e.to_string())?;
            let rss = status_kb("VmRSS")?;
            let (times, steps, verdicts) = measure(repeat, || {
                let r = check(&KvModel, &history, &options);
                (r.steps, vec![r.verdict])
            });
            (times, steps, verdicts, 1, history.len(), rss)
        }
        other => return Err(format!("unknown row {other:?}")),
    };
    let mut sorted = times.clone();
    let m = Measured {
        median: median(&mut sorted),
        min: sorted[0],
        files,
        ops,
        steps,
        verdicts: verdict_counts(&verdicts),
        rss_before_kb,
        peak_kb: status_kb("VmHWM")?,
    };
    println!(
        "{row}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        m.median.as_nanos(),
        m.min.as_nanos(),
        m.files,
        m.ops,
        m.steps,
        m.verdicts,
        m.rss_before_kb,
        m.peak_kb
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
    let dir = data_dir(args);
    if !dir.join("EXPECTED.tsv").is_file() {
        return Err(format!("no Porcupine histories at {} (use --data DIR)", dir.display()));
    }
    let rows: Vec<&str> = if args.rows.is_empty() {
        ROWS.iter().map(|r| r.0).collect()
    } else {
        args.rows.iter().map(String::as_str).collect()
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    println!("checker benchmark: {} repetitions per row (median, min), one child process per row", args.repeat);
    println!("data: {}", dir.display());
    println!();
    println!("| row | files | operations | search steps | verdicts | median | min | Porcupine | peak RSS | added by checking |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let porcupine = ROWS.iter().find(|r| r.0 == row).map_or("", |r| r.1);
        let output = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            // Same arguments and environment, so the child finds the same data.
            .env(CHILD_ENV, row)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !output.status.success() {
            return Err(format!("row {row} failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        let line = String::from_utf8_lossy(&output.stdout);
        let f: Vec<&str> = line.trim().split('\t').collect();
        if f.len() != 9 || f[0] != row {
            return Err(format!("row {row}: unexpected child output {line:?}"));
        }
        let num = |i: usize| f[i].parse::<u64>().map_err(|_| format!("row {row}: bad field {:?}", f[i]));
        let (median, min) = (Duration::from_nanos(num(1)?), Duration::from_nanos(num(2)?));
        let (rss, peak) = (num(7)?, num(8)?);
        println!(
            "| {row} | {} | {} | {} | {} | {} | {} | {porcupine} | {} | {} |",
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
