//! The student Raft under simlab's suite, through the same library calls its command line
//! makes: the family holds the whole suite; course tests from each part pass; the planted
//! mistake is rejected, by name, by the election-safety check; every run says which safety
//! checks ran and which could not. (The full proof is the sweep:
//! `cargo student sweep student --seeds 0..100`.)

use scenarios::registry::{run_scenario, Opts};
use sim::{FailureClass, Outcome, RunReport, TraceMode};

fn report(name: &str, seed: u64, bug: Option<&str>) -> RunReport {
    let cat = student_raft::catalogue();
    let sc = cat.scenario(name).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&sc, seed, &Opts::with_bug(bug), TraceMode::Hash, None)
}

fn run(name: &str, seed: u64, bug: Option<&str>) -> Outcome {
    report(name, seed, bug).outcome
}

#[test]
fn the_family_is_the_whole_suite_with_the_mistake() {
    let family = student_raft::family();
    assert_eq!(family.name(), "student");
    assert_eq!(family.scenarios().len(), scenarios::raft::family().scenarios().len());
    assert_eq!(family.bugs().len(), 1);
    assert_eq!(family.bugs()[0].name, "vote-not-persisted");
    // And the kvraft suite (23 course tests and the swarm) with the student's own service on it.
    let kv = student_raft::kv_family();
    assert_eq!(kv.name(), "student-kv");
    assert_eq!(kv.scenarios().len(), scenarios::kvraft::family().scenarios().len());
    assert!(kv.bugs().iter().any(|b| b.name == "vote-not-persisted"), "the engine's mistake comes along");
    assert!(kv.bugs().iter().any(|b| b.name == "no-duplicate-detection"), "and the service's");
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

#[test]
fn every_run_says_which_safety_checks_ran_and_which_could_not() {
    // The node exposes only get_state and its applies: the run's description (printed by
    // run, replay and a failing sweep run as "parameters:") names both lists.
    let r = report("student::figure8_2c", 0, None);
    let line =
        r.description.iter().find(|l| l.starts_with("safety checks: ")).expect("the run names its safety checks");
    let (ran, not) = line.split_once("; not checked (no log exposed): ").expect("and those it could not run");
    for check in ["election-safety", "state-machine-safety", "apply-order"] {
        assert!(ran.contains(check), "{check} runs: {line}");
    }
    for check in ["log-matching", "leader-completeness", "commit before apply"] {
        assert!(not.contains(check), "{check} cannot run: {line}");
    }
    // simlab's own Raft exposes its log: every check runs and nothing is said to be missing.
    let ours = scenarios::raft::family();
    let sc = ours.scenarios().iter().find(|s| s.name == "raft::figure8_2c").expect("present");
    let r = run_scenario(sc, 0, &Opts::default(), TraceMode::Hash, None);
    assert!(r.description.iter().all(|l| !l.contains("not checked")), "{:?}", r.description);
}

#[test]
fn the_students_own_kv_service_passes_and_its_mistake_is_caught_by_the_appends_check() {
    // The student's server and clerk (src/kv.rs) on the student Raft: the course's test of
    // resent appends on an unreliable network.
    let name = "student-kv::unreliable_one_key_3a";
    assert_eq!(run(name, 0, None), Outcome::Pass);
    // Without duplicate detection a resent append lands twice, and the course's own check of
    // each client's appends says so (`cargo student bugs student-kv --seeds 0..3`).
    match run(name, 0, Some("no-duplicate-detection")) {
        Outcome::Fail(f) => {
            assert_eq!(f.class, FailureClass::Safety, "{f}");
            assert_eq!(f.checker, "kv::appends", "{f}");
        }
        Outcome::Pass => panic!("an append applied twice went unnoticed"),
    }
}
