//! Coverage marks: runs report the rare paths they reached, a sweep sums them and names the
//! declared marks no run reached; marking is not tracing, so no trace hash moves.

use scenarios::coverage::Coverage;
use scenarios::{registry, Opts};
use sim::TraceMode;

fn sweep(cat: &scenarios::Catalogue, name: &str, seeds: std::ops::Range<u64>) -> Coverage {
    let sc = cat.scenario(name).unwrap();
    let mut c = Coverage::new(cat.marks_of(&[sc]));
    for seed in seeds {
        c.add(&registry::run_scenario(&sc, seed, &Opts::default(), TraceMode::Hash, None).marks);
    }
    c
}

#[test]
fn a_swarm_sweep_reaches_the_replica_and_world_marks_and_a_quiet_scenario_does_not() {
    let cat = scenarios::catalogue();
    let declared = cat.marks_of(&[cat.scenario("raft::swarm_2d").unwrap()]);
    assert!(declared.len() >= 8, "raft declares the world's and the replica shell's marks");
    // 30 seeds: the fault points fire only in chaos runs (a quarter) and amnesia runs (an
    // eighth, `replica.crash_after_reply` only) (swarm::Profile).
    let swarm = sweep(&cat, "raft::swarm_2d", 0..30);
    assert!(swarm.never_reached().is_empty(), "{}", swarm.lines().join("\n"));
    assert!(swarm.count(nodes::replica::SNAPSHOT_DURING_PARTITION).0 > 0);
    // No faults, no snapshots: the report names what was not reached instead of passing.
    let quiet = sweep(&cat, "raft::initial_election_2a", 0..3);
    let never = quiet.never_reached();
    // The world's marks: held messages released, a request duplicated (sim::WORLD_MARKS).
    for m in [nodes::replica::SNAPSHOT_INSTALLED, sim::WORLD_MARKS[0].0, sim::WORLD_MARKS[1].0] {
        assert!(never.contains(&m), "{m} reported as reached: {}", quiet.lines().join("\n"));
    }
    assert!(quiet.lines().last().unwrap().starts_with("never reached"));
}
