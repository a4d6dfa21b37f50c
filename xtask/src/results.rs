//! Machine-readable results: the JSON-lines files `sweep --format json` writes, `merge`
//! combines and `compare` compares.
//!
//! One line per run, in the golden table's format (`scenarios::golden::GoldenRun`: scenario,
//! seed, bug, outcome, checker, trace_hash, events, sim_time_ns) plus what only a sweep knows
//! (`wall_ms`, and `message` for a failing run); then one summary line, `{"summary": {…}}`,
//! which says what was selected and which shard this is, so `merge` can tell a missing part
//! or pair from a complete set. The golden table (`seeds/golden/runs.jsonl`) is such a file
//! without a summary line: one format, one comparison.

use scenarios::golden::GoldenRun;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::Path;

/// One run of a results file: the golden table's fields, then the sweep's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunLine {
    /// Everything about the run that is a function of (scenario, seed, build).
    #[serde(flatten)]
    pub run: GoldenRun,
    /// Wall time of the run on the machine that ran it, in milliseconds (not deterministic:
    /// never compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<f64>,
    /// For a failing run, its one-line summary (`scenarios::seeds::summary_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl RunLine {
    /// The run's identity.
    pub fn key(&self) -> RunKey {
        RunKey { scenario: self.run.scenario.clone(), seed: self.run.seed, bug: self.run.bug.clone() }
    }

    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.run.outcome == "pass"
    }

    /// The line as written to a results file.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a run line encodes")
    }
}

/// What identifies a run: the scenario, the seed, and the planted bug (a results file may
/// mix bugs, as the golden table does).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunKey {
    /// The scenario's full name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// The planted bug switched on, if any.
    pub bug: Option<String>,
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seed {}", self.scenario, self.seed)?;
        if let Some(b) = &self.bug {
            write!(f, " (bug {b})")?;
        }
        Ok(())
    }
}

/// Which shard of a sweep a results file holds: part `index` of `count` (0 ≤ index < count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId {
    /// K, from 0.
    pub index: u64,
    /// N, at least 1.
    pub count: u64,
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Every run a whole (unsharded) sweep consists of, as its summary line states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Each scenario over each seed of a half-open range, scenario by scenario, with one
    /// planted bug or none.
    Grid {
        /// Full names, in sweep order.
        scenarios: Vec<String>,
        /// `A..B`, half-open.
        seeds: String,
        /// The planted bug of every run, if any.
        bug: Option<String>,
    },
    /// The runs listed in a results file (`sweep --rerun FILE`), in its order.
    Listed {
        /// The file, as given.
        from: String,
        /// Its runs.
        runs: Vec<RunKey>,
    },
}

impl Selection {
    /// The runs in sweep order, as an index: position of a key, key at a position.
    ///
    /// # Errors
    /// A grid's seed range does not parse.
    pub fn index(&self) -> Result<SelectionIndex<'_>, String> {
        Ok(SelectionIndex(match self {
            Selection::Grid { scenarios, seeds, bug } => {
                let range = crate::sweep::parse_range(seeds)?;
                crate::plan::grid_runs("the summary's selection", scenarios.len() as u64, &range)?;
                let positions = scenarios.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
                Index::Grid { scenarios, positions, range, bug: bug.as_deref() }
            }
            Selection::Listed { runs, .. } => {
                let positions = runs.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
                Index::Listed { runs, positions }
            }
        }))
    }
}

/// Positions of the runs of a [`Selection`], without listing every key of a large grid.
pub struct SelectionIndex<'a>(Index<'a>);

enum Index<'a> {
    Grid { scenarios: &'a [String], positions: BTreeMap<&'a str, usize>, range: Range<u64>, bug: Option<&'a str> },
    Listed { runs: &'a [RunKey], positions: BTreeMap<RunKey, usize> },
}

impl SelectionIndex<'_> {
    /// How many runs the whole sweep has.
    pub fn len(&self) -> usize {
        match &self.0 {
            Index::Grid { scenarios, range, .. } => scenarios.len() * (range.end - range.start) as usize,
            Index::Listed { runs, .. } => runs.len(),
        }
    }

    /// Whether the sweep has no run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The run's position in sweep order, or `None` when it is not part of the sweep.
    pub fn position(&self, key: &RunKey) -> Option<usize> {
        match &self.0 {
            Index::Grid { positions, range, bug, .. } => {
                let s = *positions.get(key.scenario.as_str())?;
                (range.contains(&key.seed) && key.bug.as_deref() == *bug)
                    .then(|| s * (range.end - range.start) as usize + (key.seed - range.start) as usize)
            }
            Index::Listed { positions, .. } => positions.get(key).copied(),
        }
    }

    /// The run at a position (below [`SelectionIndex::len`]).
    pub fn key_at(&self, i: usize) -> RunKey {
        match &self.0 {
            Index::Grid { scenarios, range, bug, .. } => {
                let n = (range.end - range.start) as usize;
                RunKey {
                    scenario: scenarios[i / n].clone(),
                    seed: range.start + (i % n) as u64,
                    bug: bug.map(String::from),
                }
            }
            Index::Listed { runs, .. } => runs[i].clone(),
        }
    }
}

/// The last line of a results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Runs in this file.
    pub runs: u64,
    /// Of them, passed.
    pub passed: u64,
    /// Of them, failed.
    pub failed: u64,
    /// Failing runs by outcome class (`safety`, `liveness`, `panic`).
    pub failures: BTreeMap<String, u64>,
    /// Wall time of the whole sweep (for a merge: the sum over parts), in seconds.
    pub wall_s: f64,
    /// Simulated time of all runs, in nanoseconds.
    pub sim_time_ns: u64,
    /// Trace events of all runs.
    pub events: u64,
    /// The part of the sweep this file holds; `None` for a whole sweep or a merge.
    pub shard: Option<ShardId>,
    /// For a part: a fingerprint of the cost table it was split by (parts split by different
    /// tables do not fit together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_table: Option<String>,
    /// The fault file every run played (`sweep --faults`), as given.
    pub faults: Option<String>,
    /// The whole sweep this file is (a part of).
    pub selection: Selection,
}

#[derive(Serialize, Deserialize)]
struct SummaryLine {
    summary: Summary,
}

/// Formats a summary line.
pub fn summary_json(s: &Summary) -> String {
    serde_json::to_string(&SummaryLine { summary: s.clone() }).expect("a summary encodes")
}

/// One line of a results file.
pub enum Line {
    /// A run.
    Run(Box<RunLine>),
    /// The summary (last) line.
    Summary(Box<Summary>),
}

/// Reads a results file line by line, calling `each(line_number, raw_text, line)`; blank
/// lines are skipped.
///
/// # Errors
/// `FILE: cannot read: …` or `FILE line N: …` for a line that is neither a run nor a summary.
pub fn read(path: &Path, mut each: impl FnMut(usize, &str, Line) -> Result<(), String>) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    for (i, text) in BufReader::new(file).lines().enumerate() {
        let text = text.map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |e: serde_json::Error| format!("{} line {}: not a results line: {e}", path.display(), i + 1);
        let line = if text.trim_start().starts_with("{\"summary\"") {
            Line::Summary(Box::new(serde_json::from_str::<SummaryLine>(&text).map_err(bad)?.summary))
        } else {
            let run: RunLine = serde_json::from_str(&text).map_err(bad)?;
            if !["pass", "safety", "liveness", "panic"].contains(&run.run.outcome.as_str()) {
                return Err(format!(
                    "{} line {}: outcome '{}' is none of pass, safety, liveness, panic",
                    path.display(),
                    i + 1,
                    run.run.outcome
                ));
            }
            Line::Run(Box::new(run))
        };
        each(i + 1, &text, line)?;
    }
    Ok(())
}

/// Counts of a set of runs, for the human summary and JUnit.
#[derive(Default)]
pub struct Tally {
    /// Runs counted.
    pub runs: u64,
    /// Of them, passed.
    pub passed: u64,
    /// Failing runs by outcome class.
    pub failures: BTreeMap<String, u64>,
    /// Simulated nanoseconds, summed.
    pub sim_time_ns: u64,
    /// Trace events, summed.
    pub events: u64,
    /// Per scenario, in name order: runs, failing runs, wall milliseconds.
    pub per_scenario: BTreeMap<String, ScenarioTally>,
    /// Every failing run, in the order added.
    pub failing: Vec<RunLine>,
}

/// One scenario's share of a [`Tally`].
#[derive(Clone, Copy, Default)]
pub struct ScenarioTally {
    /// Runs of the scenario.
    pub runs: u64,
    /// Of them, failed.
    pub failed: u64,
    /// Wall milliseconds, summed.
    pub wall_ms: f64,
    /// Simulated seconds, summed.
    pub sim_s: f64,
}

impl Tally {
    /// Counts one run.
    pub fn add(&mut self, line: &RunLine) {
        self.runs += 1;
        self.sim_time_ns += line.run.sim_time_ns;
        self.events += line.run.events;
        let s = self.per_scenario.entry(line.run.scenario.clone()).or_default();
        s.runs += 1;
        s.wall_ms += line.wall_ms.unwrap_or(0.0);
        s.sim_s += line.run.sim_time_ns as f64 / 1e9;
        if line.passed() {
            self.passed += 1;
        } else {
            s.failed += 1;
            *self.failures.entry(line.run.outcome.clone()).or_default() += 1;
            self.failing.push(line.clone());
        }
    }

    /// The summary line of these runs.
    pub fn summary(
        &self,
        wall_s: f64,
        shard: Option<(ShardId, String)>,
        faults: Option<String>,
        selection: Selection,
    ) -> Summary {
        Summary {
            runs: self.runs,
            passed: self.passed,
            failed: self.runs - self.passed,
            failures: self.failures.clone(),
            wall_s: (wall_s * 1e3).round() / 1e3,
            sim_time_ns: self.sim_time_ns,
            events: self.events,
            shard: shard.as_ref().map(|s| s.0),
            cost_table: shard.map(|s| s.1),
            faults,
            selection,
        }
    }

    /// The exit status these runs call for: the most severe failing class, or 0.
    pub fn status(&self) -> u8 {
        self.failures
            .keys()
            .filter_map(|c| sim::FailureClass::from_name(c))
            .max()
            .map_or(crate::exit::PASS, crate::exit::of_class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(scenario: &str, seed: u64) -> GoldenRun {
        GoldenRun {
            scenario: scenario.into(),
            seed,
            bug: None,
            outcome: "pass".into(),
            checker: None,
            trace_hash: "0123456789abcdef".into(),
            events: 10,
            sim_time_ns: 5,
        }
    }

    #[test]
    fn the_status_is_the_most_severe_class_not_the_highest_number() {
        let status = |classes: &[&str]| {
            let mut t = Tally::default();
            for c in classes {
                *t.failures.entry(c.to_string()).or_default() += 1;
            }
            t.status()
        };
        assert_eq!(status(&[]), crate::exit::PASS);
        assert_eq!(status(&["liveness"]), crate::exit::LIVENESS);
        assert_eq!(status(&["liveness", "safety"]), crate::exit::SAFETY);
        assert_eq!(status(&["safety", "panic", "liveness"]), crate::exit::PANIC);
    }

    #[test]
    fn a_run_line_without_extras_is_a_golden_line() {
        let g = golden("raft::x", 3);
        let line = RunLine { run: g.clone(), wall_ms: None, message: None };
        assert_eq!(line.to_json(), serde_json::to_string(&g).unwrap());
        let with = RunLine { run: g.clone(), wall_ms: Some(1.5), message: None };
        let back: RunLine = serde_json::from_str(&with.to_json()).unwrap();
        assert_eq!(back, with);
        let plain: GoldenRun = serde_json::from_str(&with.to_json()).unwrap();
        assert_eq!(plain, g, "a golden reader reads a sweep's line");
    }

    #[test]
    fn grid_positions_are_scenario_major() {
        let sel = Selection::Grid { scenarios: vec!["a::x".into(), "a::y".into()], seeds: "5..8".into(), bug: None };
        let idx = sel.index().unwrap();
        assert_eq!(idx.len(), 6);
        for i in 0..6 {
            assert_eq!(idx.position(&idx.key_at(i)), Some(i));
        }
        let key = |s: &str, seed, bug: Option<&str>| RunKey { scenario: s.into(), seed, bug: bug.map(String::from) };
        assert_eq!(idx.position(&key("a::y", 5, None)), Some(3));
        assert_eq!(idx.position(&key("a::y", 8, None)), None, "half-open");
        assert_eq!(idx.position(&key("a::y", 5, Some("b"))), None, "another bug is another run");
        assert_eq!(idx.position(&key("a::z", 5, None)), None);
    }
}
