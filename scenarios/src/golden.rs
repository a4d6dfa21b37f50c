//! The golden table: what a seed means, pinned. A fixed list of (scenario, seed, planted bug)
//! runs with their outcome and trace hash, and golden values of the seeded randomness the
//! world draws on (`sim::rng` streams and the `gen_range` / `gen_bool` / `shuffle` draws made
//! on them), kept in `seeds/golden/`.
//!
//! `scenarios/tests/golden.rs` recomputes both and fails, naming every line that changed, when
//! they differ: a refactor that moves an event, or a dependency bump that changes what a seed
//! draws, cannot pass unnoticed. The files are rewritten only on purpose, with
//! `SIMLAB_UPDATE_GOLDEN=1 cargo test --test golden`, and the commit that does so says why.
//!
//! The runs file is JSON lines, one [`GoldenRun`] per line, so the machine-readable results of
//! a sweep can be compared against it with the same format.

use crate::registry::{run_scenario, select, Opts};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sim::{Outcome, RunReport, TraceMode};

/// The pinned runs: (scenario, seed, planted bug). Spread over every family, the swarms, and
/// planted-bug failures of each class, so outcome classification is pinned too.
pub const GOLDEN_PAIRS: &[(&str, u64, Option<&str>)] = &[
    ("mapreduce::wc", 0, None),
    ("mapreduce::crash", 1, None),
    ("mapreduce::crash", 0, Some("no-reissue")),
    ("mapreduce::swarm", 4, None),
    ("mapreduce::swarm", 0, Some("shared-temp-name")),
    ("raft::initial_election_2a", 0, None),
    ("raft::figure8_unreliable_2c", 2, None),
    ("raft::reliable_churn_2c", 0, None),
    ("raft::snapshot_install_2d", 1, None),
    ("raft::vote_amnesia_2c", 0, None),
    ("raft::swarm_2c", 3, None),
    ("raft::swarm_2d", 4, None),
    ("raft::figure8_unreliable_2c", 195, Some("commit-old-term")),
    ("kvraft::basic_3a", 0, None),
    ("kvraft::one_partition_3a", 3, None),
    ("kvraft::persist_partition_unreliable_3a", 1, None),
    ("kvraft::snapshot_rpc_3b", 1, None),
    ("kvraft::snapshot_unreliable_recover_3b", 2, None),
    ("kvraft::swarm_3b", 5, None),
    ("kvraft::unreliable_3a", 0, Some("no-duplicate-detection")),
    ("shardkv::swarm_4b", 3, None),
    ("shardkv::swarm_4b", 0, Some("serve-during-handoff")),
];

/// One pinned run: everything about it that is a function of (scenario, seed, build).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenRun {
    pub scenario: String,
    pub seed: u64,
    /// The planted bug switched on, if any.
    pub bug: Option<String>,
    /// `pass`, `safety`, `liveness` or `panic`.
    pub outcome: String,
    /// The check that failed the run (none for a pass).
    pub checker: Option<String>,
    /// The run's trace hash, 16 hex digits.
    pub trace_hash: String,
    /// Trace events in the run.
    pub events: u64,
    /// Simulated time at the end of the run, in nanoseconds.
    pub sim_time_ns: u64,
}

impl GoldenRun {
    /// What a finished run means, in the table's terms. Sweeps write their per-run result
    /// lines with this too (`sweep --format json`), so a sweep's output and the golden table
    /// are one format and `cargo xtask compare` reads both.
    pub fn of(scenario: &str, seed: u64, bug: Option<&str>, r: &RunReport) -> GoldenRun {
        let (outcome, checker) = match &r.outcome {
            Outcome::Pass => ("pass".to_string(), None),
            Outcome::Fail(f) => (f.class.name().to_string(), Some(f.checker.clone())),
        };
        GoldenRun {
            scenario: scenario.to_string(),
            seed,
            bug: bug.map(str::to_string),
            outcome,
            checker,
            trace_hash: format!("{:016x}", r.trace_hash),
            events: r.events,
            sim_time_ns: r.sim_time.as_nanos() as u64,
        }
    }
}

/// Runs one pinned pair and records what it produced.
pub fn run_pair(scenario: &str, seed: u64, bug: Option<&str>) -> GoldenRun {
    let sc = select(scenario).unwrap_or_else(|e| panic!("{e}"))[0];
    let opts = Opts { bug: bug.map(str::to_string), ..Opts::default() };
    let r = run_scenario(&sc, seed, &opts, TraceMode::Hash, None);
    GoldenRun::of(scenario, seed, bug, &r)
}

/// One JSON line per run, in [`GOLDEN_PAIRS`] order.
pub fn runs_lines(runs: &[GoldenRun]) -> Vec<String> {
    runs.iter().map(|r| serde_json::to_string(r).expect("a golden run encodes")).collect()
}

/// Golden values of the seeded randomness: the first words of a few `sim::rng` streams, and
/// the draws the world makes on them (`gen_range` over the network's ranges, `gen_bool`,
/// `shuffle`), one line each. A change of `rand`, `rand_chacha` or of `sim::rng::stream`
/// that changes what a seed means changes these lines.
pub fn rng_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for (seed, label, index) in [(0u64, "net", 0u64), (7, "net", 0), (7, "net", 1), (u64::MAX, "raft-tester", 3)] {
        let mut r = sim::rng::stream(seed, label, index);
        let words: Vec<String> = (0..4).map(|_| format!("{:016x}", r.gen::<u64>())).collect();
        lines.push(format!("stream({seed}, {label:?}, {index}) u64: {}", words.join(" ")));
    }
    let mut r = sim::rng::stream(42, "draws", 0);
    let u32s: Vec<u32> = (0..4).map(|_| r.gen::<u32>()).collect();
    lines.push(format!("stream(42, \"draws\", 0) u32: {u32s:?}"));
    let per_mille: Vec<u64> = (0..8).map(|_| r.gen_range(0..1000u64)).collect();
    lines.push(format!("gen_range(0..1000): {per_mille:?}"));
    let inclusive: Vec<u64> = (0..8).map(|_| r.gen_range(200..=2199u64)).collect();
    lines.push(format!("gen_range(200..=2199): {inclusive:?}"));
    let small: Vec<usize> = (0..8).map(|_| r.gen_range(0..5usize)).collect();
    lines.push(format!("gen_range(0..5usize): {small:?}"));
    let bools: Vec<u8> = (0..16).map(|_| u8::from(r.gen_bool(0.5))).collect();
    lines.push(format!("gen_bool(0.5): {bools:?}"));
    let rare: Vec<u8> = (0..16).map(|_| u8::from(r.gen_bool(0.1))).collect();
    lines.push(format!("gen_bool(0.1): {rare:?}"));
    let mut v: Vec<u32> = (0..10).collect();
    v.shuffle(&mut r);
    lines.push(format!("shuffle(0..10): {v:?}"));
    let chosen: Vec<u32> = (0..4).map(|_| *[1u32, 2, 3, 4, 5].choose(&mut r).expect("non-empty")).collect();
    lines.push(format!("choose([1..=5]): {chosen:?}"));
    lines
}
