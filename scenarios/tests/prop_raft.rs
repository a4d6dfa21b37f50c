//! The runtime-free Raft property tests under `cargo test`: correct cores pass with a modest
//! case count, planted bugs are found from scratch, counterexamples are saved and replayed.

use cores::raft::Bug;
use std::path::{Path, PathBuf};

use scenarios::prop::{self, PropOutcome, PropTest};

fn test(name: &str) -> PropTest {
    prop::all().into_iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no property test {name}"))
}

/// The repository's saved counterexamples (read only: tests write under `target/` alone).
fn repo_saved_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(prop::SAVED_DIR)
}

/// A fresh, empty folder under `target/`, so a planted bug has to be found from scratch and a
/// failing test never writes into the source tree.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prop-raft-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn expect_pass(name: &str, cases: u32) {
    let t = test(name);
    assert!(t.planted_bug.is_none());
    // The saved counterexamples are replayed by `every_saved_counterexample_…` below; a new
    // one found here is written under target/, never into seeds/.
    match prop::run(&t, cases, None, &scratch_dir(name.trim_start_matches("raft::"))) {
        PropOutcome::Passed { cases: ran } => assert_eq!(ran, cases),
        PropOutcome::Failed { message, steps, saved_to } => panic!(
            "{name} failed: {message}\ncounterexample (saved to {}):\n  {}",
            saved_to.display(),
            steps.join("\n  ")
        ),
    }
}

#[test]
fn every_saved_counterexample_fails_with_its_bug_and_its_check_and_passes_without() {
    let replays = prop::replay_saved_both_ways(&repo_saved_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(replays.len() >= 7, "one saved counterexample per planted bug at least: {}", replays.len());
    let tests: std::collections::BTreeSet<&str> = replays.iter().map(|r| r.test).collect();
    // Every planted bug with a property test has a saved counterexample. (A stale append
    // reply has none: the property world cannot hold a message across two leadership
    // changes, and `prop::all` gives it no test.)
    let field_bugs = [Bug::StaleAppendReply];
    for bug in Bug::all().iter().filter(|b| !field_bugs.contains(b)) {
        let t = prop::all().into_iter().find(|t| t.planted_bug == Some(bug.name())).unwrap();
        assert!(tests.contains(t.name), "no saved counterexample for {}", t.name);
    }
    let problems: Vec<String> = replays.iter().filter_map(|r| r.problem()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_replay_that_fails_with_another_check_or_on_a_correct_core_is_reported() {
    let base = prop::SavedReplay {
        file: PathBuf::from("x.json"),
        test: "raft::bug_no_persist_term",
        index: 0,
        recorded_check: Some("election-safety".into()),
        with_bug: Some(Err("step 3: election-safety: two leaders".into())),
        without_bug: Ok(()),
    };
    assert_eq!(base.problem(), None);
    let other = prop::SavedReplay { with_bug: Some(Err("step 3: log-matching: x".into())), ..base.clone() };
    assert!(other.problem().unwrap().contains("log-matching"));
    let gone = prop::SavedReplay { with_bug: Some(Ok(())), ..base.clone() };
    assert!(gone.problem().unwrap().contains("no longer fails"));
    let correct_fails = prop::SavedReplay { without_bug: Err("step 2: apply-order: y".into()), ..base };
    assert!(correct_fails.problem().unwrap().contains("correct core"));
    assert_eq!(prop::check_of("step 12: core assertion failed: boom").as_deref(), Some("core-assertion"));
    assert_eq!(prop::check_of("after healing: liveness: no fresh command").as_deref(), Some("liveness"));
}

#[test]
fn safety_holds_for_three_correct_cores() {
    expect_pass("raft::safety_3", 4096);
}

#[test]
fn safety_holds_for_five_correct_cores() {
    expect_pass("raft::safety_5", 2048);
}

#[test]
fn a_healed_cluster_of_three_makes_progress() {
    expect_pass("raft::liveness_3", 2048);
}

#[test]
fn a_healed_cluster_of_five_makes_progress() {
    expect_pass("raft::liveness_5", 1024);
}

/// Run a planted-bug test from scratch with the default seed and its default budget; it must
/// fail, through one of the `expected` checkers (or a core assertion where listed).
fn expect_caught(name: &str, expected: &[&str]) -> (String, Vec<String>) {
    let t = test(name);
    assert!(t.planted_bug.is_some());
    let dir = scratch_dir(name.trim_start_matches("raft::"));
    let outcome = prop::run(&t, t.default_cases, None, &dir);
    let PropOutcome::Failed { message, steps, saved_to } = outcome else {
        panic!("{name}: the planted bug went unnoticed in {} cases", t.default_cases);
    };
    assert!(
        expected.iter().any(|e| message.contains(e)),
        "{name} was caught, but not by {expected:?}: {message}\n  {}",
        steps.join("\n  ")
    );
    assert!(steps.len() >= 2, "a readable step list ending with the violation: {steps:?}");
    assert!(steps.last().unwrap().starts_with("=> "), "{steps:?}");
    assert!(saved_to.is_file(), "counterexample saved to {}", saved_to.display());
    let _ = std::fs::remove_dir_all(&dir);
    (message, steps)
}

#[test]
fn planted_vote_without_up_to_date_check_is_caught() {
    expect_caught(
        "raft::bug_vote_without_up_to_date_check",
        &["leader-completeness", "state-machine-safety", "log-matching"],
    );
}

#[test]
fn planted_no_persist_term_is_caught() {
    expect_caught("raft::bug_no_persist_term", &["election-safety"]);
}

#[test]
fn planted_no_persist_voted_for_is_caught() {
    expect_caught("raft::bug_no_persist_voted_for", &["election-safety"]);
}

#[test]
fn planted_no_truncate_conflict_is_caught() {
    expect_caught("raft::bug_no_truncate_conflict", &["log-matching", "state-machine-safety"]);
}

#[test]
fn planted_accept_stale_term_append_is_caught() {
    expect_caught(
        "raft::bug_accept_stale_term_append",
        &["state-machine-safety", "leader-completeness", "log-matching", "core assertion failed"],
    );
}

#[test]
fn planted_commit_old_term_is_caught() {
    expect_caught("raft::bug_commit_old_term", &["leader-completeness", "state-machine-safety"]);
}

#[test]
fn planted_stale_snapshot_install_is_caught() {
    expect_caught("raft::bug_apply_out_of_order_after_snapshot", &["apply-order"]);
}

#[test]
fn planted_stale_snapshot_install_is_caught_by_its_saved_counterexample() {
    // The repository keeps the counterexample a long run found; replaying it is instant and
    // keeps the bug's detection under test even if schedule generation changes.
    let t = test("raft::bug_apply_out_of_order_after_snapshot");
    let saved = repo_saved_dir();
    assert!(prop::saved_path(&t, &saved).is_file(), "a saved counterexample for {}", t.name);
    match prop::run(&t, 0, None, &saved) {
        PropOutcome::Failed { message, .. } => {
            assert!(message.contains("apply-order") && message.contains("saved counterexample"), "{message}")
        }
        PropOutcome::Passed { .. } => panic!("the saved counterexample no longer shows the bug"),
    }
}

#[test]
fn a_counterexample_is_saved_then_replayed_first() {
    let t = test("raft::bug_no_persist_term");
    let dir = scratch_dir("replay");
    let PropOutcome::Failed { message: first, steps, saved_to } = prop::run(&t, 512, Some(7), &dir) else {
        panic!("expected the bug to be found");
    };
    assert_eq!(saved_to, prop::saved_path(&t, &dir));
    let text = std::fs::read_to_string(&saved_to).unwrap();
    assert!(text.contains("\"raft::bug_no_persist_term\"") && text.contains("\"steps\""), "{text}");
    // With no fresh cases at all, the saved one still fails, first and identically.
    let PropOutcome::Failed { message, steps: again, .. } = prop::run(&t, 0, Some(7), &dir) else {
        panic!("the saved counterexample was not replayed");
    };
    assert!(message.contains("saved counterexample"), "{message}");
    assert_eq!(again, steps);
    assert_eq!(first.split(" (").next(), message.split(" (").next());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_is_a_pure_function_of_its_seed() {
    let t = test("raft::bug_no_truncate_conflict");
    let once = prop::run(&t, 512, Some(11), &scratch_dir("det-a"));
    let twice = prop::run(&t, 512, Some(11), &scratch_dir("det-b"));
    let strip = |o: PropOutcome| match o {
        PropOutcome::Failed { message, steps, .. } => (message, steps),
        PropOutcome::Passed { cases } => (format!("passed {cases}"), Vec::new()),
    };
    assert_eq!(strip(once), strip(twice));
    let _ = std::fs::remove_dir_all(scratch_dir("det-a"));
    let _ = std::fs::remove_dir_all(scratch_dir("det-b"));
}

#[test]
fn the_catalogue_names_every_planted_bug_once() {
    let all = prop::all();
    let mut names: Vec<&str> = all.iter().map(|t| t.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "unique names");
    for bug in cores::raft::Bug::all() {
        let tests: Vec<&PropTest> = all.iter().filter(|t| t.planted_bug == Some(bug.name())).collect();
        // A stale append reply needs a message held across two leadership changes, which the
        // property world never makes: it alone has no property test.
        let expected = usize::from(*bug != cores::raft::Bug::StaleAppendReply);
        assert_eq!(tests.len(), expected, "property tests that plant {}", bug.name());
        assert!(tests.iter().all(|t| t.name.starts_with("raft::bug_")));
    }
    assert_eq!(prop::select("safety").len(), 2);
    assert_eq!(prop::select("").len(), all.len());
    assert_eq!(prop::resolve_cases(&all[0], Some(7)), 7);
}

#[test]
fn schedules_reach_the_rare_paths() {
    // A harness that stopped reaching these would pass vacuously; 500 cases reach each at least
    // times (the counts are printed with --nocapture).
    for name in ["raft::safety_3", "raft::safety_5", "raft::liveness_3"] {
        let params = test(name).params();
        let marks = prop::raft::coverage(&params, 500, prop::DEFAULT_SEED);
        println!("{name}: {marks:?}");
        for mark in prop::raft::MARKS {
            if *mark == "healed cluster made progress" && !params.heal {
                continue;
            }
            assert!(marks[mark] > 0, "{name} never reached {mark:?}: {marks:?}");
        }
    }
}
