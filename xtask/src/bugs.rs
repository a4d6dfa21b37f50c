//! `bugs [FILTER] --seeds A..B`: sweeps every planted bug of the selected families over the
//! selected scenarios and seeds, and reports per bug the first failing seed, the fraction of
//! runs that failed, and the checks that caught it by name (saying so when only a core's own
//! assert — a panic — caught it). `--save` writes each bug's first failing seed to seeds/,
//! which `cargo test` (and so CI) replays instead of sweeping.
//!
//! Exit status: 0 when every bug was found, 6 when one was not, 4 for bad input (or a seed
//! file that could not be written).

use crate::sweep::{parallel, progress, save_failing_seed, Resolved, Selection, Slim};
use crate::{bad_input, exit};
use clap::Args;
use scenarios::registry::{run_scenario, Catalogue, Opts, Scenario};
use scenarios::seeds::{self, summary_of};
use sim::{FailureClass, Outcome, TraceMode};
use std::collections::BTreeMap;
use std::path::PathBuf;
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

pub fn run(cat: &Catalogue, a: &BugsArgs) -> u8 {
    let Resolved { range, scenarios, jobs } = match a.sel.resolve(cat) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    if a.save && a.sel.plain_swarm {
        return bad_input("--save with --plain-swarm: a seed file cannot record --plain-swarm; save without it");
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
    let items: Vec<(&'static str, Scenario, u64)> = bugs
        .iter()
        .flat_map(|(bug, scs)| range.clone().flat_map(move |seed| scs.iter().map(move |s| (*bug, *s, seed))))
        .collect();
    println!(
        "bugs: {} planted bugs, {} runs on {jobs} jobs (seeds {}..{})",
        bugs.len(),
        items.len(),
        range.start,
        range.end
    );
    let pb = progress(items.len(), "bugs");
    let t0 = Instant::now();
    let reports: Vec<Slim> = parallel(&items, jobs, &pb, |(bug, sc, seed)| {
        let opts = Opts { plain_swarm: a.sel.plain_swarm, ..Opts::with_bug(Some(bug)) };
        Slim::of(&run_scenario(sc, *seed, &opts, TraceMode::Hash, None))
    });
    let mut missed = 0;
    let mut unsaved = false;
    for (bug, _) in &bugs {
        let runs: Vec<(&Scenario, &Slim)> =
            items.iter().zip(&reports).filter(|((b, _, _), _)| b == bug).map(|((_, s, _), r)| (s, r)).collect();
        let failed: Vec<&(&Scenario, &Slim)> = runs.iter().filter(|(_, r)| !r.outcome.is_pass()).collect();
        let mut by_checker: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in &failed {
            if let Outcome::Fail(f) = &r.outcome {
                let name =
                    if f.class == FailureClass::Panic { "core assert (panic)".to_string() } else { f.checker.clone() };
                *by_checker.entry(name).or_default() += 1;
            }
        }
        // The first failing seed: lowest seed, then scenario order.
        let first = failed.iter().min_by_key(|(s, r)| (r.seed, scenarios.iter().position(|x| x.name == s.name)));
        match first {
            None => {
                missed += 1;
                println!("bug {bug}: NOT FOUND in {} runs", runs.len());
            }
            Some((sc, r)) => {
                let checkers: Vec<String> = by_checker.iter().map(|(c, n)| format!("{c} x{n}")).collect();
                let only_asserts = by_checker.keys().all(|c| c == "core assert (panic)");
                println!(
                    "bug {bug}: first failing seed {} ({}), {} of {} runs failed ({:.1}%); caught by {}{}",
                    r.seed,
                    sc.name,
                    failed.len(),
                    runs.len(),
                    100.0 * failed.len() as f64 / runs.len() as f64,
                    checkers.join(", "),
                    if only_asserts { " — only by the core's own asserts" } else { "" }
                );
                println!("  {}", summary_of(&r.outcome));
                let opts = Opts { plain_swarm: a.sel.plain_swarm, ..Opts::with_bug(Some(bug)) };
                println!("  REPRODUCE WITH: {}", seeds::reproduce_command(cat.command(), sc.name, r.seed, &opts));
                if a.save {
                    unsaved |= !save_failing_seed(&a.seeds_dir, sc.name, r.seed, &opts, &r.outcome, "  ");
                }
            }
        }
    }
    println!("{} of {} planted bugs found ({:.1}s wall)", bugs.len() - missed, bugs.len(), t0.elapsed().as_secs_f64());
    if unsaved {
        exit::BAD_INPUT
    } else if missed > 0 {
        exit::BUG_NOT_FOUND
    } else {
        exit::PASS
    }
}
