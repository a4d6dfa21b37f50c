//! The register's scenarios through the library calls its command line makes: both pass on
//! the correct chain; each planted mistake is rejected by the check named for it.

use scenarios::registry::{run_scenario, Opts};
use sim::{FailureClass, Outcome, TraceMode};

fn run(name: &str, seed: u64, bug: Option<&str>) -> Outcome {
    let sc = chain_register::catalogue().scenario(name).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&sc, seed, &Opts::with_bug(bug), TraceMode::Hash, None).outcome
}

fn caught_by(outcome: Outcome) -> String {
    match outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.class, FailureClass::Safety, "{f}");
            f.checker
        }
        Outcome::Pass => panic!("the mistake went unnoticed"),
    }
}

#[test]
fn both_scenarios_pass_on_the_correct_chain() {
    for seed in 0..5 {
        assert_eq!(run("register::basic", seed, None), Outcome::Pass, "basic seed {seed}");
        assert_eq!(run("register::lossy", seed, None), Outcome::Pass, "lossy seed {seed}");
    }
}

#[test]
fn each_planted_mistake_is_caught_by_name() {
    // Writes acknowledged before the tail holds them: a later read misses them.
    assert_eq!(caught_by(run("register::basic", 0, Some("ack-before-tail"))), "linearizability");
    // Updates applied out of version order: a server's version goes back.
    assert_eq!(caught_by(run("register::lossy", 0, Some("no-version-check"))), "register::chain");
}
