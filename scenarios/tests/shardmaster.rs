//! The shardmaster family (lab 4A on Paxos): every scenario passes on a seed with correct
//! servers and fails, caught by the named check, with a planted bug — the replicated state
//! machine's (`reply-before-commit`, `local-reads`) or the Paxos core's (`ignore-accepted`).

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

/// Each scenario, a planted bug that breaks it at seed 0, and the check that catches it.
const CASES: &[(&str, &str, &str)] = &[
    ("shardmaster::basic_4a", "reply-before-commit", "shardctrler::check"),
    ("shardmaster::unreliable_4a", "reply-before-commit", "shardctrler::check"),
    ("shardmaster::unreliable_strict_4a", "ignore-accepted", "state-machine-safety"),
    ("shardmaster::fresh_query_4a", "reply-before-commit", "shardmaster::check"),
    ("shardmaster::fresh_query_strict_4a", "local-reads", "shardmaster::check"),
];

#[test]
fn every_shardmaster_scenario_passes_on_a_seed_and_fails_with_a_planted_bug() {
    let cat = scenarios::catalogue();
    for sc in cat.select("shardmaster").unwrap() {
        assert!(CASES.iter().any(|c| c.0 == sc.name), "{} has no failing case here", sc.name);
    }
    for &(name, bug, checker) in CASES {
        let sc = cat.scenario(name).unwrap();
        let r = registry::run_scenario(&sc, 1, &Opts::default(), TraceMode::Hash, None);
        assert!(r.outcome.is_pass(), "{name}: {}", r.outcome);
        let opts = Opts { bug: Some(bug.into()), ..Opts::default() };
        match registry::run_scenario(&sc, 0, &opts, TraceMode::Hash, None).outcome {
            Outcome::Fail(f) => {
                assert_eq!(f.checker, checker, "{name} with --bug {bug}: {f}");
                assert_eq!(f.class, FailureClass::Safety, "{name}: {f}");
            }
            other => panic!("{name} with --bug {bug} was not caught: {other}"),
        }
    }
}
