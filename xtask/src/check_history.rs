//! `cargo xtask check-history`: checks a history file for linearizability and can write
//! its HTML page.
//!
//! The first line of output is exactly `linearizable`, `not linearizable` or `unknown`
//! (exit status 0, 1, 2), followed by details and timing. Any other failure (unreadable or
//! malformed file, unknown model, bad option) prints one line on stderr and exits with 4.
//! Numeric options are taken as text and validated here, so that their errors get status 4
//! too rather than clap's usage status (2, which would read as `unknown`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkers::formats::jepsen_etcd::parse_etcd_log;
use checkers::formats::json::{is_json, parse_json};
use checkers::formats::porcupine_kv::parse_kv_log;
use checkers::html::{render, HtmlOptions};
use checkers::linearizability::{
    check_parallel, check_until, replay, CheckOptions, CheckResult, History, Model, PartitionOutcome, UnknownReason,
    Verdict, DEFAULT_BUDGET,
};
use checkers::models::{cas_register::CasRegisterModel, kv::KvModel};

/// Exit status for anything that is not a verdict.
pub const EXIT_ERROR: i32 = 4;

/// How many failing operations to list before summarizing the rest.
const LISTED: usize = 10;

/// Check a history file for linearizability.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckHistoryArgs {
    /// The model: `kv` (Porcupine key/value log: get/put/append, partitioned by key) or
    /// `etcd` (Jepsen etcd log: one compare-and-set register). Either also reads the
    /// history's JSON form (as `run --history FILE.json` writes it).
    #[arg(long, value_name = "kv|etcd")]
    pub model: Option<String>,
    /// The history file.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Write the history's HTML page to this file.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Search steps allowed over the whole history before the verdict is `unknown`
    /// (default 10000000). Deterministic: the verdict is a function of the file.
    #[arg(long, value_name = "STEPS")]
    pub budget: Option<String>,
    /// Also give up after this many seconds of wall time (interactive use only: the
    /// verdict may then depend on the machine).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<String>,
    /// Search partitions on this many threads (interactive use only: step counts then
    /// depend on timing; verdicts do not, unless a budget or timeout runs out).
    #[arg(long, value_name = "N")]
    pub threads: Option<String>,
}

/// Runs the command, prints its output and returns the exit status.
pub fn run(args: &CheckHistoryArgs) -> i32 {
    match run_inner(args) {
        Ok((output, status)) => {
            print!("{output}");
            status
        }
        Err(message) => {
            eprintln!("check-history: error: {message}");
            EXIT_ERROR
        }
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &Option<String>) -> Result<Option<T>, String> {
    value
        .as_deref()
        .map(|v| v.trim().replace('_', "").parse::<T>().map_err(|_| format!("--{name} {v:?}: expected a number")))
        .transpose()
}

/// Wall time, for reporting and for the optional interactive timeout only.
#[allow(clippy::disallowed_methods)] // allow-entropy: wall time for reporting only
fn now() -> Instant {
    Instant::now()
}

fn run_inner(args: &CheckHistoryArgs) -> Result<(String, i32), String> {
    let model = args.model.as_deref().ok_or("missing --model kv|etcd")?;
    let file = args.file.as_deref().ok_or("missing the history FILE to check")?;
    let budget: u64 = parse_number("budget", &args.budget)?.unwrap_or(DEFAULT_BUDGET);
    let timeout: Option<f64> = parse_number("timeout", &args.timeout)?;
    if timeout.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let threads: usize = parse_number("threads", &args.threads)?.unwrap_or(1);
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let settings =
        Settings { budget, timeout: timeout.map(Duration::from_secs_f64), threads, html: args.html.as_deref() };
    let started = now();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let name = file.display().to_string();
    // The JSON form (`run --history FILE.json`) or the model's own log format.
    let json = is_json(&text);
    match model {
        "kv" => {
            let history = if json { parse_json(&text, &name, "kv") } else { parse_kv_log(&text, &name) }
                .map_err(|e| e.to_string())?;
            report(&KvModel, "kv", file, &history, started.elapsed(), &settings)
        }
        "etcd" => {
            let history = if json { parse_json(&text, &name, "etcd") } else { parse_etcd_log(&text, &name) }
                .map_err(|e| e.to_string())?;
            report(&CasRegisterModel, "etcd", file, &history, started.elapsed(), &settings)
        }
        other => Err(format!("unknown model {other:?}: expected kv or etcd")),
    }
}

struct Settings<'a> {
    budget: u64,
    timeout: Option<Duration>,
    threads: usize,
    html: Option<&'a Path>,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn report<M>(
    model: &M,
    model_name: &str,
    file: &Path,
    history: &History<M::Input, M::Output>,
    parse_time: Duration,
    settings: &Settings<'_>,
) -> Result<(String, i32), String>
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    let options = CheckOptions { budget: settings.budget, ..CheckOptions::default() };
    let started = now();
    let stop = || settings.timeout.is_some_and(|t| started.elapsed() > t);
    let result = if settings.threads > 1 {
        check_parallel(model, history, &options, settings.threads, &stop)
    } else {
        check_until(model, history, &options, &stop)
    };
    let check_time = started.elapsed();

    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "{}", result.verdict);
    let _ = writeln!(
        w,
        "history: {} ({model_name} model): {} operations, {} clients, {} partition(s)",
        file.display(),
        history.len(),
        history.clients().len(),
        result.partitions.len()
    );
    describe(w, model, history, &result);
    let _ = writeln!(w, "search: {} steps (budget {})", result.steps, result.budget);
    let mut timing = format!("time: parse {}, check {}", ms(parse_time), ms(check_time));
    if let Some(path) = settings.html {
        let started = now();
        let title = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        let page = render(model, history, &result, &[], &HtmlOptions { title, ..HtmlOptions::default() });
        std::fs::write(path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let _ = write!(timing, ", page {}", ms(started.elapsed()));
        let _ = writeln!(w, "page: {}", path.display());
    }
    let _ = writeln!(w, "{timing}");
    let status = match result.verdict {
        Verdict::Linearizable => 0,
        Verdict::NotLinearizable => 1,
        Verdict::Unknown => 2,
    };
    Ok((out, status))
}

/// `s` cut in the middle to about `max` characters.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max / 3).collect();
    let tail: String = s.chars().skip(n - (max - max / 3 - 1)).collect();
    format!("{head}…{tail}")
}

/// The details between the verdict and the totals.
fn describe<M: Model>(w: &mut String, model: &M, history: &History<M::Input, M::Output>, result: &CheckResult) {
    let ops = history.ops();
    let count = |f: fn(&PartitionOutcome) -> bool| result.partitions.iter().filter(|p| f(&p.outcome)).count();
    let linearizable = count(|o| matches!(o, PartitionOutcome::Linearizable { .. }));
    let unfinished = count(|o| matches!(o, PartitionOutcome::Unfinished { .. }));
    let name = |label: &str, i: usize| if label.is_empty() { format!("partition {i}") } else { label.to_string() };
    match result.verdict {
        Verdict::Linearizable if history.is_empty() => {
            let _ = writeln!(w, "the history is empty");
        }
        Verdict::Linearizable => {
            let _ = writeln!(w, "every partition has a linearization ({linearizable} witness(es) found)");
        }
        Verdict::NotLinearizable => {
            for (i, part) in result.partitions.iter().enumerate() {
                let PartitionOutcome::NotLinearizable { explanation } = &part.outcome else { continue };
                let _ = write!(w, "{}: not linearizable after {} steps", name(&part.label, i), part.steps);
                let Some(e) = explanation else {
                    let _ = writeln!(w);
                    continue;
                };
                let longest = e.prefixes.first().map_or(0, |p| p.order.len());
                let _ =
                    writeln!(w, "; the longest linearizable prefix has {longest} of its {} operations", part.ops.len());
                if let Some(prefix) = e.prefixes.first() {
                    let states = replay(model, history, &prefix.order).expect("a partial linearization replays");
                    let state = states.last().cloned().unwrap_or_else(|| model.init());
                    let _ = writeln!(w, "state after that prefix: {}", shorten(&model.describe_state(&state), 120));
                }
                let failing = e.failing_ops();
                let _ = writeln!(w, "could not be linearized next ({}):", failing.len());
                for &f in failing.iter().take(LISTED) {
                    let op = &ops[f];
                    let ret = op.ret.map_or_else(|| "never returned".to_string(), |r| r.to_string());
                    let _ = writeln!(
                        w,
                        "  op {f}, client {}, [{}, {ret}]: {}",
                        op.client,
                        op.call,
                        shorten(&model.describe_operation(&op.input, op.output.as_ref()), 200)
                    );
                }
                if failing.len() > LISTED {
                    let _ = writeln!(w, "  ... and {} more", failing.len() - LISTED);
                }
            }
            if unfinished > 0 {
                let _ = writeln!(
                    w,
                    "{unfinished} other partition(s) not searched to the end (the check stops at the first refutation)"
                );
            }
        }
        Verdict::Unknown => {
            let why = match result.unknown_reason {
                Some(UnknownReason::Stopped) => "stopped by the timeout".to_string(),
                _ => format!("the step budget of {} ran out", result.budget),
            };
            let _ = writeln!(
                w,
                "{why}: {unfinished} of {} partition(s) unfinished, {linearizable} linearizable",
                result.partitions.len()
            );
        }
    }
}
