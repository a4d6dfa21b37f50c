//! `prop [FILTER] [--cases N] [--seed S]`: the runtime-free property tests of the cores.
//! Saved counterexamples (seeds/prop/) are replayed first; a new failure is shrunk, printed
//! as a step list, and saved so the next run tries it first. Tests that run a core with a
//! planted bug are expected to fail: they pass when the harness finds the bug.

use crate::bad_input;
use clap::Args;
use scenarios::prop::{self, PropOutcome};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct PropArgs {
    /// A family (`raft`), a full name (`raft::safety_3`), a glob (`raft::bug_*`), or `all`.
    #[arg(default_value = "all")]
    pub filter: String,
    /// Cases per test (default: PROPTEST_CASES, else each test's own default).
    #[arg(long)]
    pub cases: Option<u32>,
    /// Seed of the case generator (default: a fixed seed, so runs are reproducible).
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(a: &PropArgs) -> ExitCode {
    let all = prop::all();
    let names: Vec<&'static str> = all.iter().map(|t| t.name).collect();
    let picked = match scenarios::registry::filter_names(&a.filter, &names) {
        Ok(p) => p,
        Err(e) => return bad_input(format!("{e} (see the list with `cargo xtask prop all --cases 0`)")),
    };
    if a.cases == Some(0) && a.filter == "all" {
        for t in &all {
            println!("{:44} {}", t.name, t.description);
        }
        return ExitCode::SUCCESS;
    }
    let saved_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(prop::SAVED_DIR);
    let mut bad = 0;
    for t in all.iter().filter(|t| picked.contains(&t.name)) {
        let cases = prop::resolve_cases(t, a.cases);
        let t0 = Instant::now();
        let outcome = prop::run(t, cases, a.seed, &saved_dir);
        let secs = t0.elapsed().as_secs_f64();
        match (outcome, t.planted_bug) {
            (PropOutcome::Passed { cases }, None) => println!("{}: passed {cases} cases ({secs:.2}s)", t.name),
            (PropOutcome::Passed { cases }, Some(bug)) => {
                bad += 1;
                println!("{}: planted bug {bug} NOT FOUND in {cases} cases ({secs:.2}s)", t.name);
            }
            (PropOutcome::Failed { message, steps, saved_to }, planted) => {
                match planted {
                    Some(bug) => println!("{}: found planted bug {bug} ({secs:.2}s): {message}", t.name),
                    None => {
                        bad += 1;
                        println!("{}: FAILED ({secs:.2}s): {message}", t.name);
                    }
                }
                println!("  shrunk counterexample ({} steps):", steps.len());
                for (i, s) in steps.iter().enumerate() {
                    println!("  {:>4}. {s}", i + 1);
                }
                println!("  saved to {} (tried first next time)", saved_to.display());
            }
        }
    }
    if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
