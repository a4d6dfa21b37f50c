//! The shard controller and sharded key/value families: every scenario passes with correct
//! nodes on a seed; each of the sharded service's planted bugs is caught by its named check
//! (the ownership invariant fires, from observations, for the four that break it); the Raft
//! engine's planted bugs are accepted under every service family.

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

fn run(name: &str, seed: u64, bug: Option<&str>) -> Outcome {
    let sc = registry::select(name).unwrap()[0];
    registry::run_scenario(&sc, seed, &Opts::with_bug(bug), TraceMode::Hash, None).outcome
}

#[test]
fn every_shardctrler_and_shardkv_scenario_passes_on_a_seed() {
    for family in ["shardctrler", "shardkv"] {
        for sc in registry::select(family).unwrap() {
            let r = registry::run_scenario(&sc, 1, &Opts::default(), TraceMode::Hash, None);
            assert!(r.outcome.is_pass(), "{}: {}", sc.name, r.outcome);
            let line = r.description.iter().find(|l| l.contains("configurations by Join/Leave moved"));
            let line = line.unwrap_or_else(|| panic!("{}: no transfer line in {:?}", sc.name, r.description));
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[5], words[words.len() - 1], "{}: moved as many as the minimum: {line}", sc.name);
        }
    }
}

#[test]
fn each_sharded_bug_is_caught_by_its_named_check() {
    // (bug, scenario, seed, the checks allowed to catch it)
    let cases: [(&str, &str, u64, &[&str]); 5] = [
        ("serve-during-handoff", "shardkv::static_shards_4b", 0, &["single-owner"]),
        ("serve-before-arrival", "shardkv::static_shards_4b", 0, &["serve-after-arrival"]),
        ("delete-before-handoff", "shardkv::static_shards_4b", 0, &["handoff"]),
        ("config-out-of-order", "shardkv::static_shards_4b", 0, &["config-order"]),
        ("forget-dup-table", "shardkv::concurrent3_4b", 0, &["linearizability", "shardkv::get"]),
    ];
    for (bug, name, seed, checks) in cases {
        match run(name, seed, Some(bug)) {
            Outcome::Fail(f) => {
                assert_eq!(f.class, FailureClass::Safety, "{bug}: {f:?}");
                assert!(
                    checks.contains(&f.checker.as_str()),
                    "{bug} caught by {} ({}), not {checks:?}",
                    f.checker,
                    f.message
                );
            }
            Outcome::Pass => panic!("{bug} was not found by {name} seed {seed}"),
        }
    }
}

#[test]
fn the_engines_planted_bugs_switch_on_under_every_service_family() {
    let cat = scenarios::catalogue();
    for family in ["kvraft", "shardctrler", "shardkv"] {
        let f = cat.family(family).unwrap();
        for raft_bug in ["commit-old-term", "no-persist-voted-for", "apply-out-of-order-after-snapshot"] {
            assert!(f.knows_bug(raft_bug), "{family} offers the engine's {raft_bug}");
        }
    }
    // A planted Raft bug runs in a sharded scenario (here the voting bug, which a crash of a
    // whole group lets loose; the run may or may not catch it, but it must not refuse it).
    let out = run("shardkv::concurrent3_4b", 0, Some("vote-without-up-to-date-check"));
    assert!(!matches!(out.class(), Some(FailureClass::Panic)), "{out}");
}
