//! `cargo xtask check-history`: checks a history file for linearizability and can write
//! its HTML page.
//!
//! The first line of output is exactly `linearizable`, `not linearizable` or `unknown`
//! (exit status 0, 1, 2), followed by details and timing. Any other failure (unreadable or
//! malformed file, bad option) prints one line on stderr and exits with 4 (clap's errors
//! too: `main` turns them into one line and status 4, never clap's usage status 2, which
//! would read as `unknown`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkers::formats::jepsen_etcd::parse_etcd_log;
use checkers::formats::json::{is_json, parse_json};
use checkers::formats::porcupine_kv::parse_kv_log;
use checkers::html::{render, HtmlOptions};
use checkers::linearizability::{
    check_parallel, check_until, replay, CheckOptions, CheckResult, History, Model, PartitionOutcome, UnknownReason,
    Verdict, DEFAULT_BUDGET, DEFAULT_MEMORY_LIMIT,
};
use checkers::models::{cas_register::CasRegisterModel, kv::KvModel};

/// How many failing operations to list before summarizing the rest.
const LISTED: usize = 10;

/// The models `check-history` knows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelName {
    /// Porcupine's key/value logs: get/put/append, partitioned by key.
    Kv,
    /// Jepsen's etcd logs: one compare-and-set register.
    Etcd,
}

/// A byte count: a number with an optional unit (`K`, `M`, `G`, binary: `2G` is 2 GiB).
fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim().trim_end_matches(['B', 'b']).trim_end_matches(['i', 'I']);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: usize =
        digits.trim().replace('_', "").parse().map_err(|_| format!("{text:?} is not a number of bytes (e.g. 2G)"))?;
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(|| format!("{text:?}: give a positive size"))
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

/// Check a history file for linearizability.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckHistoryArgs {
    /// The model. Either also reads the history's JSON form (as `run --history FILE.json`
    /// writes it).
    #[arg(long, value_enum)]
    pub model: ModelName,
    /// The history file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write the history's HTML page to this file.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Search steps allowed over the whole history before the verdict is `unknown`.
    /// Deterministic: the verdict is a function of the file.
    #[arg(long, value_name = "STEPS", default_value_t = DEFAULT_BUDGET, value_parser = clap::value_parser!(u64).range(1..))]
    pub budget: u64,
    /// Bytes the search may hold (e.g. 512M, 4G) before the verdict is `unknown` (default
    /// 2 GiB). Deterministic too: what the search holds is counted, not measured.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<usize>,
    /// After a refutation, keep searching the other partitions, so that each gets its own
    /// verdict and evidence (on the page too).
    #[arg(long)]
    pub all_partitions: bool,
    /// Also give up after this many seconds of wall time (interactive use only: the
    /// verdict may then depend on the machine).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Search partitions on this many threads (interactive use only: step counts then
    /// depend on timing; verdicts do not, unless a budget or timeout runs out).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
}

/// Runs the command, prints its output and returns the exit status.
pub fn run(args: &CheckHistoryArgs) -> i32 {
    match run_inner(args) {
        Ok((output, status)) => {
            print!("{output}");
            status
        }
        // The same one line as every other command's refusal (`crate::bad_input`).
        Err(message) => i32::from(crate::bad_input(message)),
    }
}

/// Wall time, for reporting and for the optional interactive timeout only.
#[allow(clippy::disallowed_methods)] // allow-entropy: wall time for reporting only
fn now() -> Instant {
    Instant::now()
}

fn run_inner(args: &CheckHistoryArgs) -> Result<(String, i32), String> {
    let file = args.file.as_path();
    let options = CheckOptions {
        budget: args.budget,
        memory_limit: args.memory.unwrap_or(DEFAULT_MEMORY_LIMIT),
        all_partitions: args.all_partitions,
        ..CheckOptions::default()
    };
    let settings = Settings {
        options,
        timeout: args.timeout.map(Duration::from_secs_f64),
        threads: args.threads as usize,
        html: args.html.as_deref(),
    };
    let started = now();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let name = file.display().to_string();
    // The JSON form (`run --history FILE.json`) or the model's own log format.
    let json = is_json(&text);
    match args.model {
        ModelName::Kv => {
            let history = if json { parse_json(&text, &name, "kv") } else { parse_kv_log(&text, &name) }
                .map_err(|e| e.to_string())?;
            report(&KvModel, "kv", file, &history, started.elapsed(), &settings)
        }
        ModelName::Etcd => {
            let history = if json { parse_json(&text, &name, "etcd") } else { parse_etcd_log(&text, &name) }
                .map_err(|e| e.to_string())?;
            report(&CasRegisterModel, "etcd", file, &history, started.elapsed(), &settings)
        }
    }
}

struct Settings<'a> {
    options: CheckOptions,
    timeout: Option<Duration>,
    threads: usize,
    html: Option<&'a Path>,
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
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
    let options = &settings.options;
    let started = now();
    let stop = || settings.timeout.is_some_and(|t| started.elapsed() > t);
    let result = if settings.threads > 1 {
        check_parallel(model, history, options, settings.threads, &stop)
    } else {
        check_until(model, history, options, &stop)
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
    describe(w, model, history, &result, options.all_partitions);
    let held: usize = result.partitions.iter().map(|p| p.stats.bytes).sum();
    let _ = writeln!(
        w,
        "search: {} steps (budget {}), {} counted when the partitions stopped (memory budget {})",
        result.steps,
        result.budget,
        mib(held),
        mib(options.memory_limit)
    );
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
fn describe<M: Model>(
    w: &mut String,
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult,
    all_partitions: bool,
) {
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
                let why = if all_partitions {
                    "a budget ran out"
                } else {
                    "the check stops at the first refutation; --all-partitions searches them too"
                };
                let _ = writeln!(w, "{unfinished} other partition(s) not searched to the end ({why})");
            }
        }
        Verdict::Unknown => {
            let why = match result.unknown_reason {
                Some(UnknownReason::Stopped) => "stopped by the timeout".to_string(),
                Some(UnknownReason::MemoryExhausted) => "the memory budget ran out".to_string(),
                Some(UnknownReason::ClientOrderAcrossPartitions) => {
                    "the partitions' witnesses cannot be merged keeping each sequential client's order".to_string()
                }
                Some(UnknownReason::BudgetExhausted) | None => format!("the step budget of {} ran out", result.budget),
            };
            let _ = writeln!(
                w,
                "{why}: {unfinished} of {} partition(s) unfinished, {linearizable} linearizable",
                result.partitions.len()
            );
        }
    }
}
