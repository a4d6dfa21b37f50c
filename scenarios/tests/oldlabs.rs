//! The old labs' families (view service, primary/backup, Paxos): every scenario passes on a seed
//! with correct nodes, and every scenario fails, caught by the named check, with one of the
//! planted bugs — so none of them is a check that cannot fail.

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

#[test]
fn every_old_lab_scenario_passes_on_a_seed() {
    for family in ["viewservice", "pbservice", "paxos"] {
        for sc in registry::select(family).unwrap() {
            let r = registry::run_scenario(&sc, 5, &Opts::default(), TraceMode::Hash, None);
            assert!(r.outcome.is_pass(), "{}: {}", sc.name, r.outcome);
        }
    }
}

/// (scenario, planted bug, the check that must catch it on one of seeds 0..3).
const CAUGHT: &[(&str, &str, &str)] = &[
    ("viewservice::test1_2a", "vs-no-ack", "view-service"),
    ("viewservice::test1_strict_2a", "vs-no-ack", "view-service"),
    ("pbservice::basic_fail_2b", "empty-transfer", "pb::check"),
    ("pbservice::at_most_once_2b", "no-duplicate-detection", "pb::check"),
    ("pbservice::at_most_once_backup_2b", "no-duplicate-detection", "pb::check"),
    ("pbservice::fail_put_2b", "empty-transfer", "pb::check"),
    ("pbservice::concurrent_same_2b", "vs-no-ack", "view-service"),
    ("pbservice::concurrent_same_append_2b", "vs-no-ack", "view-service"),
    ("pbservice::concurrent_same_unreliable_2b", "no-duplicate-detection", "linearizability"),
    ("pbservice::repeated_crash_2b", "vs-no-ack", "view-service"),
    ("pbservice::repeated_crash_unreliable_2b", "empty-transfer", "pb::check-appends"),
    ("pbservice::repeated_crash_unreliable_strict_2b", "reply-before-backup", "pb::check-appends"),
    ("pbservice::partition1_2b", "gets-not-forwarded", "pb::stale-get"),
    ("pbservice::partition2_2b", "gets-not-forwarded", "pb::stale-get"),
    ("paxos::basic_3a", "accept-below-promise", "paxos-agreement"),
    ("paxos::deaf_3a", "ignore-accepted", "paxos-agreement"),
    ("paxos::forget_3a", "min-too-early", "paxos-min"),
    ("paxos::many_forget_3a", "min-too-early", "paxos-min"),
    ("paxos::forget_mem_3a", "min-too-early", "paxos-min"),
    ("paxos::done_max_3a", "min-too-early", "paxos-min"),
    ("paxos::rpc_count_3a", "no-decided-broadcast", "paxos::waitn"),
    ("paxos::many_3a", "accept-below-promise", "paxos-agreement"),
    ("paxos::old_3a", "ignore-accepted", "paxos-agreement"),
    ("paxos::many_unreliable_3a", "ignore-accepted", "paxos-agreement"),
    ("paxos::partition_3a", "ignore-accepted", "paxos-agreement"),
    ("paxos::lots_3a", "ignore-accepted", "paxos-agreement"),
];

#[test]
fn every_old_lab_scenario_can_fail() {
    let cat = scenarios::catalogue();
    for family in ["viewservice", "pbservice", "paxos"] {
        for sc in cat.select(family).unwrap() {
            assert!(CAUGHT.iter().any(|c| c.0 == sc.name), "{} has no failing case here", sc.name);
        }
    }
    for &(name, bug, checker) in CAUGHT {
        let sc = cat.scenario(name).unwrap();
        let opts = Opts { bug: Some(bug.into()), ..Opts::default() };
        let caught =
            (0..3).find_map(|seed| match registry::run_scenario(&sc, seed, &opts, TraceMode::Hash, None).outcome {
                Outcome::Fail(f) if f.checker == checker => Some(f),
                _ => None,
            });
        let f = caught.unwrap_or_else(|| panic!("{name} with --bug {bug} was not caught by {checker}"));
        // A decision that never reaches enough peers within waitn's polls is a deadline
        // that passed; every other case here is a wrong answer.
        let class = if checker == "paxos::waitn" { FailureClass::Liveness } else { FailureClass::Safety };
        assert_eq!(f.class, class, "{name}: {f}");
    }
}

#[test]
fn a_primary_backup_history_that_is_not_linearizable_attaches_its_page() {
    // Primary/backup histories are judged as every key/value history is: the refutation
    // attaches the history page and names it, with the planted bug in its name.
    let sc = registry::select("pbservice::concurrent_same_unreliable_2b").unwrap()[0];
    let opts = Opts { bug: Some("no-duplicate-detection".into()), ..Opts::default() };
    let r = registry::run_scenario(&sc, 0, &opts, TraceMode::Hash, None);
    let Outcome::Fail(f) = &r.outcome else { panic!("passed: {}", r.outcome) };
    assert_eq!(f.checker, "linearizability", "{f}");
    let page = "pbservice__concurrent_same_unreliable_2b-seed0-no-duplicate-detection.html";
    assert!(f.message.ends_with(&format!("picture attached as {page}")), "{f}");
    let attached = r.attachments.iter().find(|a| a.name == page).expect("the page is attached");
    assert!(String::from_utf8_lossy(&attached.bytes).contains("<html"));
}
