//! `compare A.jsonl B.jsonl`: determinism across machines, builds and toolchains. Two results
//! files (sweeps' `--format json` output, merged results, or the golden table
//! `seeds/golden/runs.jsonl`) are compared run by run on everything that is a function of
//! (scenario, seed, build): outcome, checker, trace hash, events and simulated time — never
//! wall time. The first run (in A's order) that differs is named with both values and the
//! line that replays it.
//!
//! Both files must hold the same runs, unless `--common` (then only runs in both are
//! compared, and there must be some). Exit status: 0 the same, 5 a run differs (or is in
//! one file only), 4 bad input.

use crate::results::{self, Line, RunKey, RunLine};
use crate::{bad_input, exit};
use clap::Args;
use scenarios::registry::Opts;
use scenarios::seeds;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CompareArgs {
    /// The first results file (JSON lines: a sweep's, a merge's, or the golden table).
    pub a: PathBuf,
    /// The second results file.
    pub b: PathBuf,
    /// Compare only the runs both files hold (at least one), e.g. a small sweep against a
    /// larger file.
    #[arg(long)]
    pub common: bool,
}

/// A file's runs in order, each with its line number.
fn read_runs(path: &Path) -> Result<Vec<(usize, RunLine)>, String> {
    let mut runs = Vec::new();
    let mut seen: BTreeMap<RunKey, usize> = BTreeMap::new();
    results::read(path, |n, _, line| {
        if let Line::Run(r) = line {
            if let Some(first) = seen.insert(r.key(), n) {
                return Err(format!("{} lines {first} and {n}: {} is listed twice", path.display(), r.key()));
            }
            runs.push((n, *r));
        }
        Ok(())
    })?;
    Ok(runs)
}

/// The fields of two lines of one run that differ: (name, value in A, value in B).
pub fn differences(a: &RunLine, b: &RunLine) -> Vec<(&'static str, String, String)> {
    let (x, y) = (&a.run, &b.run);
    let mut d = Vec::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    if x.outcome != y.outcome {
        d.push(("outcome", x.outcome.clone(), y.outcome.clone()));
    }
    if x.checker != y.checker {
        d.push(("checker", opt(&x.checker), opt(&y.checker)));
    }
    if x.trace_hash != y.trace_hash {
        d.push(("trace_hash", x.trace_hash.clone(), y.trace_hash.clone()));
    }
    if x.events != y.events {
        d.push(("events", x.events.to_string(), y.events.to_string()));
    }
    if x.sim_time_ns != y.sim_time_ns {
        d.push(("sim_time_ns", x.sim_time_ns.to_string(), y.sim_time_ns.to_string()));
    }
    d
}

/// `compare`: its status; `command` names the program in the line that reproduces a difference.
pub fn run(command: &str, a: &CompareArgs) -> u8 {
    let (runs_a, runs_b) = match (read_runs(&a.a), read_runs(&a.b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return bad_input(e),
    };
    let (name_a, name_b) = (a.a.display().to_string(), a.b.display().to_string());
    let in_b: BTreeMap<RunKey, usize> = runs_b.iter().enumerate().map(|(i, (_, r))| (r.key(), i)).collect();
    let in_a: BTreeMap<RunKey, usize> = runs_a.iter().enumerate().map(|(i, (_, r))| (r.key(), i)).collect();
    let common = runs_a.iter().filter(|(_, r)| in_b.contains_key(&r.key())).count();
    println!("compare: {} runs in {name_a}, {} in {name_b}, {common} in both", runs_a.len(), runs_b.len());
    if a.common && common == 0 {
        return bad_input(format!("{name_a} and {name_b} have no run in common"));
    }
    // Every difference, in A's order, then runs only B holds.
    let mut first: Option<(RunKey, Vec<String>)> = None;
    let mut differing = 0usize;
    let mut note = |key: RunKey, lines: Vec<String>| {
        differing += 1;
        if first.is_none() {
            first = Some((key, lines));
        }
    };
    for (n, ra) in &runs_a {
        match in_b.get(&ra.key()) {
            Some(&j) => {
                let (m, rb) = &runs_b[j];
                let d = differences(ra, rb);
                if !d.is_empty() {
                    let lines = d
                        .into_iter()
                        .map(|(field, x, y)| format!("  {field}: {x} ({name_a} line {n}) vs {y} ({name_b} line {m})"))
                        .collect();
                    note(ra.key(), lines);
                }
            }
            None if !a.common => note(ra.key(), vec![format!("  only in {name_a} (line {n}), not in {name_b}")]),
            None => {}
        }
    }
    if !a.common {
        for (m, rb) in &runs_b {
            if !in_a.contains_key(&rb.key()) {
                note(rb.key(), vec![format!("  only in {name_b} (line {m}), not in {name_a}")]);
            }
        }
    }
    match first {
        None => {
            println!("no difference: every run compared has the same outcome, checker, trace hash, events and simulated time");
            exit::PASS
        }
        Some((key, lines)) => {
            println!("first difference: {key}");
            for l in lines {
                println!("{l}");
            }
            println!("{differing} run(s) differ");
            let opts = Opts::with_bug(key.bug.as_deref());
            println!("REPRODUCE WITH: {}", seeds::reproduce_command(command, &key.scenario, key.seed, &opts));
            exit::NONDETERMINISTIC
        }
    }
}
