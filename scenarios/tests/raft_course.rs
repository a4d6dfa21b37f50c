//! Every ported course test of Raft (2A–2D) is registered under its name and passes with the
//! correct core on a couple of seeds.

use scenarios::{registry, Opts};
use sim::TraceMode;

const SEEDS: std::ops::Range<u64> = 0..2;

const PART_2A: &[&str] = &["raft::initial_election_2a", "raft::re_election_2a", "raft::many_elections_2a"];

const PART_2B: &[&str] = &[
    "raft::basic_agree_2b",
    "raft::rpc_bytes_2b",
    "raft::follower_failure_2b",
    "raft::leader_failure_2b",
    "raft::fail_agree_2b",
    "raft::fail_no_agree_2b",
    "raft::concurrent_starts_2b",
    "raft::rejoin_2b",
    "raft::backup_2b",
    "raft::count_2b",
];

const PART_2C: &[&str] = &[
    "raft::persist1_2c",
    "raft::persist2_2c",
    "raft::persist3_2c",
    "raft::figure8_2c",
    "raft::unreliable_agree_2c",
    "raft::figure8_unreliable_2c",
    "raft::reliable_churn_2c",
    "raft::unreliable_churn_2c",
];

const PART_2D: &[&str] = &[
    "raft::snapshot_basic_2d",
    "raft::snapshot_install_2d",
    "raft::snapshot_install_unreliable_2d",
    "raft::snapshot_install_crash_2d",
    "raft::snapshot_install_uncrash_2d",
    "raft::snapshot_all_crash_2d",
    "raft::snapshot_init_2d",
];

/// Runs each named scenario on every seed of `SEEDS` and asserts it passes.
fn passes(names: &[&str]) {
    for name in names {
        let picked = registry::select(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(picked.len(), 1, "{name} names exactly one scenario");
        for seed in SEEDS {
            let report = registry::run_scenario(&picked[0], seed, &Opts::default(), TraceMode::Hash, None);
            assert!(
                report.outcome.is_pass(),
                "{name} seed {seed}: {} (reproduce with: cargo xtask replay {name} --seed {seed})",
                report.outcome
            );
        }
    }
}

#[test]
fn the_family_filter_selects_every_course_test() {
    let raft: Vec<&str> = registry::select("raft").unwrap().iter().map(|s| s.name).collect();
    for name in PART_2A.iter().chain(PART_2B).chain(PART_2C).chain(PART_2D) {
        assert!(raft.contains(name), "`raft` does not select {name}");
    }
}

#[test]
fn part_2a_passes() {
    passes(PART_2A);
}

#[test]
fn part_2b_passes() {
    passes(PART_2B);
}

#[test]
fn part_2c_passes() {
    passes(PART_2C);
}

#[test]
fn part_2d_passes() {
    passes(PART_2D);
}
