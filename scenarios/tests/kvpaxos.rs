//! The kvpaxos family: its old lab 3B scenarios pass on a seed with correct servers, each of
//! them fails, caught by the named check, with a planted bug — and the Paxos engine's own
//! bug, an acceptor that forgets its promises across a restart, is caught by the apply
//! checker. (The kvraft suite on the Paxos engine is swept like any family: `cargo xtask
//! sweep kvpaxos`.)

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

/// The old lab 3B scenarios and the check that catches `reply-before-commit` in each.
const OLD: &[(&str, &str, &str)] = &[
    ("kvpaxos::basic_3b", "reply-before-commit", "kv::get"),
    ("kvpaxos::done_3b", "reply-before-commit", "kv::get"),
    ("kvpaxos::partition_3b", "reply-before-commit", "kv::get"),
    ("kvpaxos::unreliable_3b", "reply-before-commit", "kv::get"),
    ("kvpaxos::hole_3b", "reply-before-commit", "kv::get"),
    ("kvpaxos::many_partition_3b", "reply-before-commit", "kvpaxos::many-partition"),
    ("kvpaxos::many_partition_strict_3b", "reply-before-commit", "kvpaxos::many-partition"),
    ("kvpaxos::restart_storm_3b", "forget-promise", "state-machine-safety"),
];

#[test]
fn every_old_kvpaxos_scenario_passes_on_a_seed_and_fails_with_a_planted_bug() {
    let cat = scenarios::catalogue();
    for sc in cat.select("kvpaxos::*_3b").unwrap() {
        let old = !sc.name.contains("snapshot") && !sc.name.contains("speed") && !sc.name.contains("swarm");
        assert!(!old || OLD.iter().any(|o| o.0 == sc.name), "{} has no failing case here", sc.name);
    }
    for &(name, bug, checker) in OLD {
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
