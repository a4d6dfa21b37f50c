//! The Raft suite as a conformance suite: the same scenarios, checkers and planted bugs run
//! on any engine as a family of its own.

use scenarios::engine::{RaftEngine, TestEngine};
use scenarios::raft::conformance;
use scenarios::registry::{run_scenario, Opts};
use sim::TraceMode;

#[test]
fn the_suite_on_an_engine_is_a_family_of_its_own_with_the_same_runs() {
    let theirs = conformance::<RaftEngine>("theirs");
    let ours = scenarios::raft::family();
    assert_eq!(theirs.scenarios().len(), ours.scenarios().len());
    assert!(theirs.scenarios().len() >= 31, "28 course tests, the targeted one and the swarms");
    for (t, o) in theirs.scenarios().iter().zip(ours.scenarios()) {
        assert_eq!(t.name.strip_prefix("theirs::"), o.name.strip_prefix("raft::"), "same suffixes");
        assert_eq!(t.takes_fault_schedule(), o.takes_fault_schedule());
    }
    assert_eq!(theirs.bugs().len(), RaftEngine::bugs().len(), "the engine's planted bugs come along");
    // Renaming changes nothing a run does: same engine, same seed, same trace.
    let pick = |f: &scenarios::registry::Family, suffix: &str| {
        *f.scenarios().iter().find(|s| s.name.ends_with(suffix)).expect("present")
    };
    for suffix in ["::figure8_unreliable_2c", "::swarm_2d"] {
        let a = run_scenario(&pick(&theirs, suffix), 3, &Opts::default(), TraceMode::Hash, None);
        let b = run_scenario(&pick(&ours, suffix), 3, &Opts::default(), TraceMode::Hash, None);
        assert!(a.outcome.is_pass(), "{suffix}: {}", a.outcome);
        assert_eq!(a.trace_hash, b.trace_hash, "{suffix}");
    }
    // A planted bug of the engine is switched on through the family.
    let bug = Opts { bug: Some("commit-old-term".into()), ..Opts::default() };
    let r = run_scenario(&pick(&theirs, "::figure8_unreliable_2c"), 195, &bug, TraceMode::Hash, None);
    assert!(!r.outcome.is_pass(), "the planted bug is on");
}
