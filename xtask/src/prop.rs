//! `prop [FILTER] [--cases N] [--seed S]`: the catalogue's runtime-free property tests.
//! Saved counterexamples (`--saved-dir`, default seeds/prop) are replayed first; a new
//! failure is shrunk, printed as a step list, and saved so the next run tries it first. Tests
//! that run a core with a planted bug are expected to fail: they pass when the harness finds
//! the bug.
//!
//! Exit status: 0 when every test did what it should, 7 when a property of a correct core
//! failed, 6 when a planted bug was not found (7 wins when both happen), 4 for bad input.

use crate::{bad_input, exit};
use clap::Args;
use scenarios::prop::{self, PropOutcome, PropTest};
use scenarios::registry::{Catalogue, Filter};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct PropArgs {
    /// A family (`raft`), a full name (`raft::safety_3`), a glob (`raft::bug_*`), or `all`.
    #[arg(default_value = "all")]
    pub filter: String,
    /// Cases per test (default: the PROPTEST_CASES environment variable, else each test's own
    /// default); with `all`, 0 lists the tests instead.
    #[arg(long, env = "PROPTEST_CASES")]
    pub cases: Option<u32>,
    /// Seed of the case generator (default: a fixed seed, so runs are reproducible).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run each test's default budget times this (CI runs a larger budget than a person at a
    /// terminal); refused beside --cases (or PROPTEST_CASES) and --discovery, which fix
    /// the count themselves.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// Measure instead of test: for each selected planted-bug test, the fresh cases (no
    /// shrinking, no saved counterexamples) it takes to find the bug under each of the seeds
    /// 0..K, at most --cases each (default 100 000), beside the test's default budget.
    #[arg(long, value_name = "K")]
    pub discovery: Option<u64>,
    /// Folder of saved counterexamples, relative to the working directory (default:
    /// `seeds/prop`, `scenarios::prop::SAVED_DIR`).
    #[arg(long)]
    pub saved_dir: Option<PathBuf>,
}

/// The catalogue's property tests that `filter` selects.
pub fn pick<'a>(cat: &'a Catalogue, filter: &str) -> Result<Vec<&'a PropTest>, String> {
    let all = cat.property_tests();
    if all.is_empty() {
        return Err("this command line's catalogue has no property tests".into());
    }
    let f = Filter::parse(filter).map_err(|e| e.to_string())?;
    let picked: Vec<&PropTest> = all.iter().filter(|t| f.matches(t.name)).collect();
    if picked.is_empty() {
        return Err(format!(
            "no property test matches '{filter}': use a family, a full name, a glob, or 'all' (list them with `{} prop all --cases 0`)",
            cat.command()
        ));
    }
    Ok(picked)
}

/// `--discovery K`: cases to the first failure of every selected planted-bug test under the
/// seeds 0..K, one line per test: each seed's count (`-` for not found within `max_cases`),
/// the most, the median and the default budget with the margin it leaves.
fn discovery(picked: &[&PropTest], seeds: u64, max_cases: u32) -> u8 {
    let mut missed = 0;
    for t in picked.iter().filter(|t| t.planted_bug.is_some()) {
        let t0 = Instant::now();
        let found: Vec<Option<u32>> = (0..seeds).map(|seed| prop::cases_to_first_failure(t, max_cases, seed)).collect();
        let secs = t0.elapsed().as_secs_f64();
        let mut counts: Vec<u32> = found.iter().flatten().copied().collect();
        counts.sort_unstable();
        let each: Vec<String> = found.iter().map(|f| f.map_or("-".to_string(), |n| n.to_string())).collect();
        let not_found = found.len() - counts.len();
        missed += usize::from(not_found > 0);
        let most = counts.last().copied();
        let median = counts.get(counts.len() / 2).copied();
        println!(
            "{}: seeds 0..{seeds}: [{}]; found {}/{seeds}, most {}, median {}; default {} ({}) ({secs:.1}s)",
            t.name,
            each.join(" "),
            counts.len(),
            most.map_or("-".into(), |m| m.to_string()),
            median.map_or("-".into(), |m| m.to_string()),
            t.default_cases,
            match most {
                Some(m) if not_found == 0 => format!("{:.1}x the most", f64::from(t.default_cases) / f64::from(m)),
                _ => format!("{not_found} seeds not found within {max_cases}"),
            },
        );
    }
    if missed > 0 {
        exit::BUG_NOT_FOUND
    } else {
        exit::PASS
    }
}

pub fn run(cat: &Catalogue, a: &PropArgs) -> u8 {
    let picked = match pick(cat, &a.filter) {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    if a.cases == Some(0) && a.filter == "all" {
        // Listing runs nothing, so an option about running would be ignored.
        let ignored = [
            (a.seed.is_some(), "--seed"),
            (a.scale != 1, "--scale"),
            (a.discovery.is_some(), "--discovery"),
            (a.saved_dir.is_some(), "--saved-dir"),
        ];
        if let Some((_, name)) = ignored.iter().find(|(given, _)| *given) {
            return bad_input(format!(
                "`prop all --cases 0` lists the tests and runs none, so {name} would change nothing: drop it"
            ));
        }
        for t in &picked {
            println!("{:44} {}", t.name, t.description);
        }
        return exit::PASS;
    }
    if a.scale == 0 {
        return bad_input("--scale 0 would run no cases: give 1 or more (it multiplies each test's default)");
    }
    if a.cases == Some(0) {
        return bad_input(
            "--cases 0 (or PROPTEST_CASES=0) would run no case: give 1 or more (`prop all --cases 0` lists the tests)",
        );
    }
    // --scale multiplies the defaults; a fixed count, or a measurement, would ignore it.
    if a.scale != 1 && a.cases.is_some() {
        return bad_input(
            "--scale multiplies each test's default, but --cases (or PROPTEST_CASES) fixes the count: give one of them",
        );
    }
    if a.scale != 1 && a.discovery.is_some() {
        return bad_input("--discovery measures fresh cases up to --cases, not the defaults: drop --scale");
    }
    if let Some(k) = a.discovery {
        if a.seed.is_some() {
            return bad_input("--discovery runs seeds 0..K: drop --seed");
        }
        if k == 0 {
            return bad_input("--discovery 0 measures nothing: give the number of seeds, e.g. --discovery 5");
        }
        if a.saved_dir.is_some() {
            return bad_input("--discovery measures fresh cases and reads no saved counterexamples: drop --saved-dir");
        }
        if !picked.iter().any(|t| t.planted_bug.is_some()) {
            return bad_input(format!(
                "--discovery measures planted-bug tests, and '{}' selects none: select some, e.g. `{} prop raft --discovery {k}` (`{} prop all --cases 0` lists which are)",
                a.filter,
                cat.command(),
                cat.command()
            ));
        }
        return discovery(&picked, k, a.cases.unwrap_or(100_000));
    }
    // Written into only when a test fails: checked now, not after the search.
    let saved_dir = a.saved_dir.as_deref().unwrap_or(Path::new(prop::SAVED_DIR));
    if let Err(e) = crate::artifacts::probe_dir("--saved-dir", saved_dir) {
        return bad_input(e);
    }
    let (mut failed, mut missed) = (0, 0);
    for t in picked {
        let cases = a.cases.unwrap_or_else(|| prop::resolve_cases(t, None).saturating_mul(a.scale));
        let t0 = Instant::now();
        let outcome = prop::run(t, cases, a.seed, saved_dir);
        let secs = t0.elapsed().as_secs_f64();
        match (outcome, t.planted_bug) {
            (PropOutcome::Passed { cases }, None) => println!("{}: passed {cases} cases ({secs:.2}s)", t.name),
            (PropOutcome::Passed { cases }, Some(bug)) => {
                missed += 1;
                println!("{}: planted bug {bug} NOT FOUND in {cases} cases ({secs:.2}s)", t.name);
            }
            (PropOutcome::Failed { message, steps, saved_to }, planted) => {
                match planted {
                    Some(bug) => println!("{}: found planted bug {bug} ({secs:.2}s): {message}", t.name),
                    None => {
                        failed += 1;
                        println!("{}: FAILED ({secs:.2}s): {message}", t.name);
                    }
                }
                // The case's steps are numbered; the healing probe's line and the verdict
                // (`=> …`) that follow them are not steps.
                let is_step = |s: &str| !s.starts_with("=> ") && !s.starts_with("healed");
                println!(
                    "  shrunk counterexample ({}):",
                    crate::count(steps.iter().filter(|s| is_step(s.as_str())).count() as u64, "step")
                );
                let mut n = 0;
                for s in steps {
                    if is_step(s.as_str()) {
                        n += 1;
                        println!("  {n:>4}. {s}");
                    } else {
                        println!("        {s}");
                    }
                }
                println!("  saved to {} (tried first next time)", saved_to.display());
            }
        }
    }
    if failed > 0 {
        exit::PROPERTY_FAILED
    } else if missed > 0 {
        exit::BUG_NOT_FOUND
    } else {
        exit::PASS
    }
}
