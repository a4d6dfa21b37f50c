//! Issue 13's bugs from the field, each caught by its named safety check in the scenario
//! built for its shape, and the same scenario passing without it.

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

fn run(name: &str, seed: u64, bug: Option<&str>) -> Outcome {
    let sc = registry::select(name).unwrap()[0];
    registry::run_scenario(&sc, seed, &Opts::with_bug(bug), TraceMode::Hash, None).outcome
}

fn caught(name: &str, seed: u64, bug: &str, check: &str) {
    match run(name, seed, Some(bug)) {
        Outcome::Fail(f) => {
            assert_eq!(f.class, FailureClass::Safety, "{bug}: {f:?}");
            assert_eq!(f.checker, check, "{bug} on {name} seed {seed}: {}", f.message);
        }
        other => panic!("{bug} on {name} seed {seed} not caught: {other}"),
    }
    let r = run(name, seed, None);
    assert!(r.is_pass(), "{name} seed {seed} without a bug: {r}");
}

#[test]
fn a_stale_append_reply_is_caught_by_commit_majority_in_the_reported_shape() {
    for seed in 0..3 {
        caught("raft::stale_append_reply_2c", seed, "stale-append-reply", "commit-majority");
    }
}

#[test]
fn a_snapshot_that_wipes_a_continuing_log_is_caught_by_match_index() {
    caught("raft::snapshot_crosses_probe_2d", 1, "snapshot-wipes-log", "match-index");
}

#[test]
fn the_swarms_catch_each_field_bug_by_its_named_check() {
    // The first failing seed of each in `cargo xtask bugs 'raft::swarm_*' --seeds 0..200`,
    // and a failing seed of `bugs kvraft::swarm_3b --seeds 0..40` (the first without knobs),
    // with the knob profiles (BENCHMARKS.md,
    // "Failure rates before and after the swarm knobs"): the stale reply through a hold
    // episode of the swarm.
    caught("raft::swarm_2c", 40, "stale-append-reply", "match-index");
    caught("raft::swarm_2d", 12, "snapshot-wipes-log", "match-index");
    caught("raft::swarm_2d", 1, "ack-before-durable", "match-index");
    match run("kvraft::swarm_3b", 4, Some("latest-only-duplicates")) {
        Outcome::Fail(f) => assert_eq!((f.class, f.checker.as_str()), (FailureClass::Safety, "linearizability")),
        other => panic!("latest-only-duplicates not caught: {other}"),
    }
}

#[test]
fn workers_sharing_a_temporary_file_name_are_caught_by_the_output_check_and_shrink_small() {
    // The first failing seed of `cargo xtask sweep mapreduce::swarm --bug shared-temp-name
    // --seeds 0..100` (BENCHMARKS.md): a reduce stalled past the reissue timeout while its
    // second run truncated and rewrote the same temporary file.
    caught("mapreduce::swarm", 0, "shared-temp-name", "mr::output");
    let sc = registry::select("mapreduce::swarm").unwrap()[0];
    let shrunk =
        scenarios::shrink::shrink(&sc, 0, &Opts::with_bug(Some("shared-temp-name")), 200, &mut |_| {}).unwrap();
    assert_eq!((shrunk.failure.class, shrunk.failure.checker.as_str()), (FailureClass::Safety, "mr::output"));
    let (b, a) = (shrunk.before, shrunk.after);
    assert!(a.fault_and_operation_events() <= 20, "{a:?}");
    assert!(a.fault_and_operation_events() < b.fault_and_operation_events(), "{b:?} -> {a:?}");
}
