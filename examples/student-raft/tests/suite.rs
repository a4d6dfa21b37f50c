//! The student Raft under simlab's suite, through the same library calls its command line
//! makes: the family holds the whole suite; course tests from each part pass; the planted
//! mistake is rejected, by name, by the election-safety check. (The full proof is the sweep:
//! `cargo student sweep student --seeds 0..100`.)

use scenarios::registry::{run_scenario, Opts};
use sim::{FailureClass, Outcome, TraceMode};

fn run(name: &str, seed: u64, bug: Option<&str>) -> Outcome {
    let cat = student_raft::catalogue();
    let sc = cat.scenario(name).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&sc, seed, &Opts::with_bug(bug), TraceMode::Hash, None).outcome
}

#[test]
fn the_family_is_the_whole_suite_with_the_mistake() {
    let family = student_raft::family();
    assert_eq!(family.name(), "student");
    assert_eq!(family.scenarios().len(), scenarios::raft::family().scenarios().len());
    assert_eq!(family.bugs().len(), 1);
    assert_eq!(family.bugs()[0].name, "vote-not-persisted");
}

#[test]
fn course_tests_of_every_part_pass() {
    for name in
        ["student::re_election_2a", "student::backup_2b", "student::figure8_2c", "student::snapshot_install_crash_2d"]
    {
        assert_eq!(run(name, 0, None), Outcome::Pass, "{name}");
    }
}

#[test]
fn the_planted_mistake_is_caught_by_election_safety() {
    // Seed 1 is the first that catches it (`cargo student bugs student --seeds 0..20`).
    match run("student::vote_amnesia_2c", 1, Some("vote-not-persisted")) {
        Outcome::Fail(f) => {
            assert_eq!(f.class, FailureClass::Safety, "{f}");
            assert_eq!(f.checker, "election-safety", "{f}");
        }
        Outcome::Pass => panic!("a voter that forgets its vote went unnoticed"),
    }
    // The same seed without the mistake passes.
    assert_eq!(run("student::vote_amnesia_2c", 1, None), Outcome::Pass);
}
