//! The scenario registry: names, filters, planted-bug validation, and running one scenario
//! under one seed.
//!
//! Names are `family::name_lab`. A filter selects a family by its `::`-prefix (`raft`
//! selects `raft::…`, never `kvraft::…`), a single scenario by its full name, several by a
//! glob (`raft::*_2c`), or everything with `all`. A filter that matches nothing is an error.

use sim::{Failure, RunConfig, RunReport, TraceMode};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub type ScenarioFuture = Pin<Box<dyn Future<Output = Result<(), Failure>>>>;

/// Options of one run beyond (scenario, seed): a planted bug, a fault file, files to
/// write the client history to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// A planted bug of the scenario's family, by name.
    pub bug: Option<String>,
    /// A fault schedule to replay instead of drawing one from the seed.
    pub faults: Option<PathBuf>,
    /// Where to write the fault schedule the run used.
    pub save_faults: Option<PathBuf>,
    /// Where to write the run's client history (scenarios that record one: kvraft): a
    /// `.json` file gets the JSON form, any other Porcupine's key/value log format. Output
    /// only: never part of what a run is a function of.
    pub history: Vec<PathBuf>,
}

/// One scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    /// Simulated-time budget; running out is a liveness failure.
    pub budget: Duration,
    pub run: fn(Opts) -> ScenarioFuture,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Scenario {
    pub fn family(&self) -> &'static str {
        self.name.split("::").next().unwrap_or(self.name)
    }
}

/// A family of scenarios and the planted bugs its nodes know.
pub struct Family {
    pub name: &'static str,
    /// (name, one-line description) of each planted bug.
    pub bugs: fn() -> Vec<(&'static str, &'static str)>,
    pub scenarios: fn() -> Vec<Scenario>,
}

/// Every family, in listing order.
pub fn families() -> Vec<Family> {
    vec![crate::mapreduce::family(), crate::raft::family(), crate::kvraft::family()]
}

/// Every scenario, in listing order.
pub fn all() -> Vec<Scenario> {
    families().iter().flat_map(|f| (f.scenarios)()).collect()
}

/// Matches `*` (any run) and `?` (one character).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// The names a filter selects among `names` (same rules as scenarios: family, full name,
/// glob, `all`), or an error when nothing matches.
pub fn filter_names(filter: &str, names: &[&'static str]) -> Result<Vec<&'static str>, String> {
    let family = |n: &str| n.split("::").next().unwrap_or(n).to_string();
    let picked: Vec<&'static str> = names
        .iter()
        .copied()
        .filter(|n| {
            filter == "all"
                || if filter.contains(['*', '?']) {
                    glob(filter.as_bytes(), n.as_bytes())
                } else if filter.contains("::") {
                    *n == filter
                } else {
                    family(n) == filter
                }
        })
        .collect();
    if picked.is_empty() {
        return Err(format!("nothing matches '{filter}': use a family, a full name, a glob, or 'all'"));
    }
    Ok(picked)
}

/// The scenarios a filter selects, or a one-line error saying what to do.
pub fn select(filter: &str) -> Result<Vec<Scenario>, String> {
    let all = all();
    let picked: Vec<Scenario> = if filter == "all" {
        all.clone()
    } else if filter.contains(['*', '?']) {
        all.iter().filter(|s| glob(filter.as_bytes(), s.name.as_bytes())).copied().collect()
    } else if filter.contains("::") {
        all.iter().filter(|s| s.name == filter).copied().collect()
    } else {
        all.iter().filter(|s| s.family() == filter).copied().collect()
    };
    if picked.is_empty() {
        let fams: Vec<&str> = families().iter().map(|f| f.name).collect();
        return Err(format!(
            "no scenario matches '{filter}': use a family ({}), a full name, a glob such as 'raft::*_2c', or 'all'; `cargo xtask list` shows them",
            fams.join(", ")
        ));
    }
    Ok(picked)
}

/// Checks that `bug` names a planted bug of every selected scenario's family.
pub fn validate_bug(scenarios: &[Scenario], bug: &str) -> Result<(), String> {
    for fam in families() {
        let bugs = (fam.bugs)();
        if scenarios.iter().any(|s| s.family() == fam.name) && !bugs.iter().any(|(n, _)| *n == bug) {
            let known: Vec<&str> = bugs.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown planted bug '{bug}' for family {}: known bugs are {}",
                fam.name,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        }
    }
    Ok(())
}

/// Runs one scenario under one seed.
pub fn run_scenario(
    sc: &Scenario,
    seed: u64,
    opts: &Opts,
    trace: TraceMode,
    dispatch: Option<tracing::Dispatch>,
) -> RunReport {
    let run = sc.run;
    let opts = opts.clone();
    let cfg = RunConfig { seed, trace, budget: sc.budget, dispatch };
    sim::run(cfg, move || run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        assert!(glob(b"raft::*_2c", b"raft::figure8_2c"));
        assert!(!glob(b"raft::*_2c", b"kvraft::x_2c"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
    }

    #[test]
    fn filters_select_by_family_name_and_glob() {
        let mr = select("mapreduce").unwrap();
        assert_eq!(mr.len(), 7);
        assert!(mr.iter().all(|s| s.name.starts_with("mapreduce::")));
        assert_eq!(select("mapreduce::crash").unwrap().len(), 1);
        assert_eq!(select("mapreduce::*_parallelism").unwrap().len(), 2);
        assert_eq!(select("all").unwrap().len(), all().len());
        assert!(select("mapred").is_err(), "a family is matched whole, not as a string prefix");
        assert!(select("nosuch::thing").unwrap_err().contains("no scenario matches"));
        let names: Vec<&str> = all().iter().map(|s| s.name).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(names.len(), dedup.len(), "scenario names are unique");
        assert!(validate_bug(&mr, "no-reissue").is_ok());
        assert!(validate_bug(&mr, "no-such-bug").unwrap_err().contains("known bugs are"));
    }
}
