//! `bugs [FILTER] --seeds A..B`: sweeps every planted bug of the selected families over the
//! selected scenarios and seeds, and reports per bug, as soon as its runs are done, the first
//! failing seed, the fraction of runs that failed, and the checks that caught it by name
//! (saying so when only a core's own assert — a panic — caught it). A run that fails the same
//! way without the bug (same class, same check; a user's service may fail some scenario on
//! its own) is not the bug's doing: each failing (scenario, seed) is run once more without
//! any bug, and such runs are set apart, not counted as found. `--save` writes each
//! bug's first failing seed to seeds/, which `cargo test` (and so CI) replays instead of
//! sweeping.
//!
//! Exit status: 0 when every bug was found, 6 when one was not, 4 for bad input (or a seed
//! file that could not be written).

use crate::plan::MAX_RUNS;
use crate::sweep::{parallel_in_order, progress, save_failing_seed, Resolved, Selection};
use crate::{bad_input, count, exit};
use clap::Args;
use scenarios::registry::{run_scenario, Catalogue, Opts, Scenario};
use scenarios::seeds::{self, summary_of};
use sim::{FailureClass, Outcome, TraceMode};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Args)]
pub struct BugsArgs {
    /// Scenarios to sweep (`all` for every family); every planted bug of their families is
    /// tried, or only `--bug`.
    #[command(flatten)]
    pub sel: Selection,
    /// Write each bug's first failing seed to the seeds folder (status open).
    #[arg(long)]
    pub save: bool,
    /// Folder for --save (given without --save, it is refused: nothing would be written).
    #[arg(long, default_value = "seeds", requires = "save")]
    pub seeds_dir: PathBuf,
}

/// What a bug's runs found.
#[derive(Default)]
struct Found {
    runs: u64,
    /// Runs that failed and pass (or fail otherwise) without the bug.
    failed: u64,
    /// Runs that failed the same way without the bug: not the bug's doing.
    failed_without: u64,
    /// Failing runs by the check that caught them.
    by_checker: BTreeMap<String, u64>,
    /// The first failing run: scenario, seed, outcome.
    first: Option<(Scenario, u64, Outcome)>,
}

/// How a scenario and seed end without any bug: `None` when they pass, else the failure's
/// class and check.
type WithoutBug = Option<(FailureClass, String)>;

/// What [`report`] printed for one bug.
enum Reported {
    /// No run failed.
    Missed,
    /// A run failed; `saved` is false when `--save` could not write its seed file.
    Found { saved: bool },
}

/// Prints one bug's result: its first failing seed (with the failure and the command that
/// reproduces it), the share of runs that failed and the checks that caught them, or that
/// no run failed; with `--save`, writes the first failing seed's file.
/// `label` names the bug as printed: with its family when the selection spans several
/// (two families may plant bugs of one name, such as the Raft engine's).
fn report(cat: &Catalogue, a: &BugsArgs, bug: &str, label: &str, f: &Found) -> Reported {
    let Some((sc, seed, outcome)) = &f.first else {
        let why = match f.failed_without {
            0 => String::new(),
            n => format!(": {} failed, each the same way without the bug", count(n, "run")),
        };
        println!("bug {label}: NOT FOUND in {}{why}", count(f.runs, "run"));
        return Reported::Missed;
    };
    let without = match f.failed_without {
        0 => String::new(),
        n => format!("; not counted: {} that failed the same way without the bug", count(n, "other run")),
    };
    let checkers: Vec<String> = f.by_checker.iter().map(|(c, n)| format!("{c} x{n}")).collect();
    let only_asserts = f.by_checker.keys().all(|c| c == "core assert (panic)");
    println!(
        "bug {label}: first failing seed {seed} ({}), {} of {} failed ({:.1}%); caught by {}{}{without}",
        sc.name,
        f.failed,
        count(f.runs, "run"),
        100.0 * f.failed as f64 / f.runs as f64,
        checkers.join(", "),
        if only_asserts { " — only by the core's own asserts" } else { "" }
    );
    println!("  {}", summary_of(outcome));
    let opts = Opts { plain_swarm: a.sel.plain_swarm, ..Opts::with_bug(Some(bug)) };
    println!("  REPRODUCE WITH: {}", seeds::reproduce_command(cat.command(), sc.name, *seed, &opts));
    let saved = !a.save || save_failing_seed(&a.seeds_dir, sc.name, *seed, &opts, outcome, "  ");
    Reported::Found { saved }
}

pub fn run(cat: &Catalogue, a: &BugsArgs) -> u8 {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve(cat) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    if a.save && a.sel.plain_swarm {
        return bad_input("--save with --plain-swarm: a seed file cannot record --plain-swarm; save without it");
    }
    if a.save {
        if let Err(e) = crate::artifacts::probe_dir("--seeds-dir", &a.seeds_dir) {
            return bad_input(e);
        }
    }
    // (bug, scenario, seed) for every bug of every selected scenario's family.
    let mut bugs: Vec<(&'static str, Vec<Scenario>)> = Vec::new();
    for fam in cat.families() {
        let members: Vec<Scenario> = scenarios.iter().filter(|s| s.family() == fam.name()).copied().collect();
        if members.is_empty() {
            continue;
        }
        for bug in fam.bugs() {
            if a.sel.bug.as_deref().is_none_or(|b| b == bug.name) {
                bugs.push((bug.name, members.clone()));
            }
        }
    }
    if bugs.is_empty() {
        return bad_input(format!("the scenarios selected by '{}' have no planted bugs", a.sel.filter));
    }
    // Runs in order: bug by bug, then seed by seed, then the bug's scenarios; each bug's
    // block starts at `starts[b]`. Planned, not listed.
    let per_seed: Vec<u64> = bugs.iter().map(|(_, scs)| scs.len() as u64).collect();
    // Every bug's scenarios over every seed, counted exactly (a u128 holds any such sum).
    let seeds = u128::from(range.end.saturating_sub(range.start));
    let planned: u128 = per_seed.iter().map(|&n| u128::from(n) * seeds).sum();
    if planned > u128::from(MAX_RUNS) {
        return bad_input(format!(
            "{} over '{}' and seeds {}..{} is {planned} runs ({} scenario runs per seed); one command plans at most {MAX_RUNS}: \
             narrow the seed range, the filter or --bug",
            count(bugs.len() as u64, "planted bug"),
            a.sel.filter,
            range.start,
            range.end,
            per_seed.iter().sum::<u64>()
        ));
    }
    let per_bug: Vec<u64> = per_seed.iter().map(|&n| n * (seeds as u64)).collect();
    let total: u64 = per_bug.iter().sum();
    let starts: Vec<u64> = per_bug.iter().scan(0, |acc, &n| Some(std::mem::replace(acc, *acc + n))).collect();
    let run_at = |i: u64| -> (usize, Scenario, u64) {
        let b = starts.partition_point(|&s| s <= i) - 1;
        let within = i - starts[b];
        let n = per_seed[b];
        (b, bugs[b].1[(within % n) as usize], range.start + within / n)
    };
    println!(
        "bugs: {}, {} on {} (seeds {}..{})",
        count(bugs.len() as u64, "planted bug"),
        count(total, "run"),
        count(jobs as u64, "job"),
        range.start,
        range.end
    );
    let several_families = bugs.iter().any(|(_, scs)| scs[0].family() != bugs[0].1[0].family());
    let pb = progress(total, "bugs");
    let t0 = Instant::now();
    // Per bug, folded in as runs are handed over in order: runs, failures by check, and the
    // first failing run (lowest seed, then scenario order: the first one handed over). A
    // bug's block of runs is contiguous, so its report is printed as soon as its last run is
    // handed over, not after every bug has run (a long `bugs` run shows results as it goes).
    let mut found = Found::default();
    let (mut missed, mut unsaved) = (0, false);
    // How each failing (scenario, seed) ends without any bug, run once whichever bugs fail it
    // (the outcome is a function of scenario, seed and build, so sharing it changes nothing).
    let without_bug: Mutex<BTreeMap<(&'static str, u64), WithoutBug>> = Mutex::default();
    parallel_in_order(
        total,
        jobs,
        &pb,
        |i| {
            let (b, sc, seed) = run_at(i);
            let opts = Opts { plain_swarm: a.sel.plain_swarm, ..Opts::with_bug(Some(bugs[b].0)) };
            let outcome = run_scenario(&sc, seed, &opts, TraceMode::Hash, None).outcome;
            let Outcome::Fail(fail) = &outcome else { return (outcome, false) };
            let known = without_bug.lock().expect("no run panics holding it").get(&(sc.name, seed)).cloned();
            let plain = known.unwrap_or_else(|| {
                let opts = Opts { plain_swarm: a.sel.plain_swarm, ..Opts::default() };
                let plain = match run_scenario(&sc, seed, &opts, TraceMode::Hash, None).outcome {
                    Outcome::Fail(f) => Some((f.class, f.checker)),
                    Outcome::Pass => None,
                };
                without_bug.lock().expect("no run panics holding it").insert((sc.name, seed), plain.clone());
                plain
            });
            let same = plain.is_some_and(|(class, checker)| class == fail.class && checker == fail.checker);
            (outcome, same)
        },
        |i, (outcome, fails_without_bug)| {
            let (b, sc, seed) = run_at(i);
            found.runs += 1;
            if fails_without_bug {
                found.failed_without += 1;
            } else if let Outcome::Fail(fail) = &outcome {
                found.failed += 1;
                let name = if fail.class == FailureClass::Panic {
                    "core assert (panic)".to_string()
                } else {
                    fail.checker.clone()
                };
                *found.by_checker.entry(name).or_default() += 1;
                if found.first.is_none() {
                    found.first = Some((sc, seed, outcome));
                }
            }
            if i + 1 == starts[b] + per_bug[b] {
                let f = std::mem::take(&mut found);
                let family = bugs[b].1[0].family();
                let label = if several_families { format!("{} ({family})", bugs[b].0) } else { bugs[b].0.to_string() };
                pb.suspend(|| match report(cat, a, bugs[b].0, &label, &f) {
                    Reported::Missed => missed += 1,
                    Reported::Found { saved } => unsaved |= !saved,
                });
            }
        },
    );
    println!(
        "{} of {} found ({:.1}s wall)",
        bugs.len() - missed,
        count(bugs.len() as u64, "planted bug"),
        t0.elapsed().as_secs_f64()
    );
    if unsaved {
        exit::BAD_INPUT
    } else if missed > 0 {
        exit::BUG_NOT_FOUND
    } else {
        exit::PASS
    }
}
