//! Each Raft safety checker accepts a correct observation sequence and rejects a broken one.

use checkers::raft::{entry_hash, Property, SafetyChecker, Violation};

fn h(x: &str) -> u64 {
    entry_hash(x.as_bytes())
}

fn expect(result: Result<(), Violation>, property: Property, words: &[&str]) {
    let v = result.expect_err("the checker should object");
    assert_eq!(v.property, property, "{v}");
    assert_eq!(v.checker(), property.name());
    let text = v.to_string();
    assert!(text.starts_with(property.name()), "{text}");
    for w in words {
        assert!(text.contains(w), "{text:?} should mention {w:?}");
    }
}

/// Node `n` appends entries `first..` and learns commit `commit`, applying up to it.
fn replicate(c: &mut SafetyChecker, n: usize, first: u64, entries: &[(u64, &str)], commit: u64) {
    let es: Vec<(u64, u64)> = entries.iter().map(|&(t, x)| (t, h(x))).collect();
    c.observe_entries(n, first, &es).unwrap();
    c.observe_commit(n, commit).unwrap();
}

#[test]
fn a_correct_run_passes_every_check() {
    let mut c = SafetyChecker::new(3);
    // Term 1: node 0 leads and replicates a, b, c everywhere; everyone applies them.
    c.observe_role(0, 1, true).unwrap();
    for n in 1..3 {
        c.observe_role(n, 1, false).unwrap();
    }
    for n in 0..3 {
        replicate(&mut c, n, 1, &[(1, "a"), (1, "b"), (1, "c")], 0);
    }
    for n in 0..3 {
        c.observe_commit(n, 3).unwrap();
        for (i, x) in ["a", "b", "c"].iter().enumerate() {
            c.observe_apply(n, i as u64 + 1, h(x)).unwrap();
        }
    }
    // Node 2 has an uncommitted entry of term 1 that the next leader overwrites.
    replicate(&mut c, 2, 4, &[(1, "d")], 3);
    // Node 1 snapshots at 3, then crashes and restarts from it.
    c.observe_snapshot(1, 3, 1).unwrap();
    c.observe_restart(1, 3);
    // Term 2: node 1 leads (its log is complete), replaces node 2's suffix.
    c.observe_role(0, 2, false).unwrap();
    c.observe_role(1, 2, true).unwrap();
    c.observe_role(2, 2, false).unwrap();
    replicate(&mut c, 1, 4, &[(2, "e")], 3);
    replicate(&mut c, 2, 4, &[(2, "e")], 4);
    c.observe_commit(1, 4).unwrap();
    c.observe_apply(1, 4, h("e")).unwrap();
    c.observe_apply(2, 4, h("e")).unwrap();
    // Node 0 was partitioned and catches up by snapshot.
    c.observe_snapshot(0, 4, 2).unwrap();
    c.observe_commit(0, 4).unwrap();
    c.observe_apply_snapshot(0, 4).unwrap();
    // Same leader observed again, and leaders of different terms, are fine.
    c.observe_role(1, 2, true).unwrap();
    c.observe_role(1, 3, true).unwrap();
    assert!(c.observations() > 20);
}

#[test]
fn election_safety_rejects_two_leaders_in_one_term() {
    let mut c = SafetyChecker::new(3);
    c.observe_role(0, 4, true).unwrap();
    c.observe_role(0, 4, false).unwrap();
    // Even after the first stepped down: one leader per term over the whole run.
    expect(c.observe_role(2, 4, true), Property::ElectionSafety, &["nodes 0 and 2", "term 4"]);
}

#[test]
fn log_matching_rejects_equal_index_and_term_with_different_prefixes() {
    let mut c = SafetyChecker::new(2);
    c.observe_entries(0, 1, &[(1, h("a")), (2, h("b"))]).unwrap();
    c.observe_entries(1, 1, &[(2, h("x"))]).unwrap();
    expect(
        c.observe_entries(1, 2, &[(2, h("b"))]),
        Property::LogMatching,
        &["nodes 0 and 1", "index 2, term 2", "before it"],
    );
}

#[test]
fn log_matching_rejects_equal_index_and_term_with_different_commands() {
    let mut c = SafetyChecker::new(2);
    c.observe_entries(0, 1, &[(1, h("a"))]).unwrap();
    expect(c.observe_entries(1, 1, &[(1, h("z"))]), Property::LogMatching, &["index 1, term 1", "different commands"]);
}

#[test]
fn leader_completeness_rejects_a_leader_elected_without_a_committed_entry() {
    let mut c = SafetyChecker::new(3);
    c.observe_role(0, 1, true).unwrap();
    replicate(&mut c, 0, 1, &[(1, "a")], 0);
    replicate(&mut c, 1, 1, &[(1, "a")], 0);
    c.observe_commit(0, 1).unwrap();
    c.observe_role(2, 2, false).unwrap();
    expect(c.observe_role(2, 2, true), Property::LeaderCompleteness, &["node 2", "term 2", "entry 1"]);
}

#[test]
fn leader_completeness_rejects_a_later_leader_holding_another_entry() {
    let mut c = SafetyChecker::new(3);
    c.observe_role(0, 2, true).unwrap();
    replicate(&mut c, 1, 1, &[(2, "a")], 0);
    replicate(&mut c, 0, 1, &[(2, "a")], 1);
    // Node 2 holds a stale entry of term 1 at index 1 and wins term 3 anyway.
    c.observe_entries(2, 1, &[(1, h("old"))]).unwrap();
    expect(c.observe_role(2, 3, true), Property::LeaderCompleteness, &["node 2", "term 3", "index 1"]);
}

#[test]
fn leader_completeness_rejects_a_commit_that_an_existing_later_leader_lacks() {
    let mut c = SafetyChecker::new(3);
    c.observe_role(2, 5, true).unwrap();
    c.observe_role(0, 4, false).unwrap();
    c.observe_entries(0, 1, &[(4, h("a"))]).unwrap();
    expect(c.observe_commit(0, 1), Property::LeaderCompleteness, &["leader 2", "term 5", "entry 1"]);
}

#[test]
fn commit_majority_rejects_a_leader_committing_what_only_a_minority_holds() {
    // Issue 13's stale-reply shape: 5 servers; leader 0 of term 3 holds (3, term 1) from its
    // first term, one follower acknowledged everything, and a stale success counted for a
    // third server whose index 3 was overwritten in term 2.
    let mut c = SafetyChecker::new(5);
    c.observe_role(0, 3, true).unwrap();
    let ours = [(1, h("a")), (1, h("b")), (1, h("c")), (3, h("d")), (3, h("e"))];
    c.observe_entries(0, 1, &ours).unwrap();
    c.observe_entries(1, 1, &ours).unwrap();
    c.observe_entries(2, 1, &[(1, h("a")), (1, h("b")), (2, h("x"))]).unwrap();
    c.observe_entries(3, 1, &[(1, h("a")), (1, h("b"))]).unwrap();
    // Index 2 is on four servers: committing it is fine.
    c.observe_commit(0, 2).unwrap();
    expect(
        c.observe_commit(0, 3),
        Property::CommitMajority,
        &["leader 0 of term 3 commits index 3", "only 2 of 5", "[0, 1]", "majority is 3"],
    );
    // A follower learning a commit index is not judged: it trusts its leader.
    let mut f = c.clone();
    f.observe_role(1, 3, false).unwrap();
    f.observe_commit(1, 3).unwrap();
    // Once a third server holds the same entry, the same commit passes; a snapshot past it
    // counts as holding it.
    let mut ok = c.clone();
    ok.observe_entries(3, 3, &ours[2..]).unwrap();
    ok.observe_commit(0, 3).unwrap();
    let mut snap = c.clone();
    snap.observe_snapshot(4, 4, 3).unwrap();
    snap.observe_commit(0, 3).unwrap();
    // Same index but another term does not count.
    c.observe_entries(4, 1, &[(1, h("a")), (1, h("b")), (2, h("x"))]).unwrap();
    expect(c.observe_commit(0, 3), Property::CommitMajority, &["only 2 of 5"]);
}

#[test]
fn match_index_rejects_a_leader_believing_a_follower_holds_what_it_does_not() {
    let mut c = SafetyChecker::new(3);
    c.observe_role(0, 2, true).unwrap();
    c.observe_role(1, 2, false).unwrap();
    c.observe_role(2, 2, false).unwrap();
    let ours = [(1, h("a")), (2, h("b")), (2, h("c"))];
    c.observe_entries(0, 1, &ours).unwrap();
    c.observe_entries(1, 1, &ours).unwrap();
    c.observe_match(0, &[3, 3, 0]).unwrap();
    // Issue 13's snapshot-install bug: node 1 installs a snapshot at 1 and wipes entries 2–3
    // that continue it, while its leader of the same term still counts them.
    // (The replica reports the snapshot, then its log's new end.)
    let mut wiped = c.clone();
    wiped.observe_snapshot(1, 1, 1).unwrap();
    expect(
        wiped.observe_log_end(1, 1),
        Property::MatchIndex,
        &["leader 0 of term 2 has match index 3 for node 1", "ends at 1 (snapshot at 1)"],
    );
    // A truncation below the match index is caught too, and so is a match index claimed
    // beyond what the follower holds, or over an entry of another term.
    let mut cut = c.clone();
    expect(cut.observe_log_end(1, 2), Property::MatchIndex, &["match index 3 for node 1", "ends at 2"]);
    let mut over = c.clone();
    expect(over.observe_match(0, &[3, 3, 1]), Property::MatchIndex, &["match index 1 for node 2", "ends at 0"]);
    c.observe_entries(2, 1, &[(1, h("a")), (1, h("z"))]).unwrap();
    expect(c.observe_match(0, &[3, 3, 2]), Property::MatchIndex, &["node 2, which holds term 1", "leader's term 2"]);
    // A follower of a later term, and a deposed leader's stale bookkeeping, are not judged.
    let mut later = c.clone();
    later.observe_role(1, 3, false).unwrap();
    later.observe_log_end(1, 1).unwrap();
    c.observe_role(0, 3, false).unwrap();
    c.observe_log_end(1, 1).unwrap();
}

#[test]
fn state_machine_safety_rejects_different_applies_at_one_index() {
    let mut c = SafetyChecker::new(2);
    c.observe_entries(0, 1, &[(1, h("a"))]).unwrap();
    c.observe_entries(1, 1, &[(2, h("b"))]).unwrap();
    c.observe_commit(0, 1).unwrap();
    c.observe_apply(0, 1, h("a")).unwrap();
    expect(c.observe_commit(1, 1), Property::StateMachineSafety, &["node 1 commits (index 1, term 2)", "node 0"]);
    // Had the commit not been observed, the apply itself is caught.
    let mut c = SafetyChecker::new(2);
    c.observe_entries(0, 1, &[(1, h("a"))]).unwrap();
    c.observe_entries(1, 1, &[(2, h("b"))]).unwrap();
    c.observe_commit(0, 1).unwrap();
    c.observe_commit(1, 0).unwrap();
    c.observe_apply(0, 1, h("a")).unwrap();
    expect(
        c.observe_apply(1, 1, h("b")),
        Property::StateMachineSafety,
        &["node 1 applied index 1 beyond its commit index 0"],
    );
}

#[test]
fn state_machine_safety_rejects_an_apply_of_something_else_than_committed() {
    let mut c = SafetyChecker::new(1);
    c.observe_entries(0, 1, &[(1, h("a"))]).unwrap();
    c.observe_commit(0, 1).unwrap();
    expect(c.observe_apply(0, 1, h("other")), Property::StateMachineSafety, &["node 0", "index 1"]);
}

#[test]
fn state_machine_safety_rejects_changing_or_dropping_a_committed_entry() {
    let mut c = SafetyChecker::new(2);
    c.observe_entries(1, 1, &[(1, h("a")), (1, h("b")), (1, h("c"))]).unwrap();
    c.observe_commit(1, 2).unwrap();
    // Index 3 is not committed: replacing it is normal.
    c.observe_entries(1, 3, &[(2, h("d"))]).unwrap();
    expect(
        c.observe_entries(1, 2, &[(2, h("e"))]),
        Property::StateMachineSafety,
        &["node 1 replaced its committed entry at index 2"],
    );
    let mut c = SafetyChecker::new(1);
    c.observe_entries(0, 1, &[(1, h("a")), (1, h("b"))]).unwrap();
    c.observe_commit(0, 2).unwrap();
    expect(c.observe_log_end(0, 1), Property::StateMachineSafety, &["node 0 dropped committed entries"]);
    // Rewriting the same committed entries (a restart re-observing its log) is fine.
    let mut c = SafetyChecker::new(1);
    c.observe_entries(0, 1, &[(1, h("a")), (1, h("b"))]).unwrap();
    c.observe_commit(0, 2).unwrap();
    c.observe_entries(0, 1, &[(1, h("a")), (1, h("b"))]).unwrap();
}

#[test]
fn state_machine_safety_rejects_a_snapshot_unlike_the_committed_log() {
    let mut c = SafetyChecker::new(2);
    c.observe_entries(0, 1, &[(1, h("a")), (1, h("b"))]).unwrap();
    c.observe_commit(0, 2).unwrap();
    expect(c.observe_snapshot(1, 2, 3), Property::StateMachineSafety, &["node 1", "index 2, term 3"]);
}

#[test]
fn apply_order_rejects_gaps_repeats_and_rewinding_snapshots() {
    let mut c = SafetyChecker::new(1);
    c.observe_entries(0, 1, &[(1, h("a")), (1, h("b")), (1, h("c")), (1, h("d"))]).unwrap();
    c.observe_commit(0, 4).unwrap();
    expect(c.observe_apply(0, 2, h("b")), Property::ApplyOrder, &["node 0 applied index 2, expected 1"]);
    c.observe_apply(0, 1, h("a")).unwrap();
    c.observe_apply(0, 2, h("b")).unwrap();
    c.observe_apply(0, 3, h("c")).unwrap();
    expect(c.observe_apply(0, 3, h("c")), Property::ApplyOrder, &["expected 4"]);
    expect(c.observe_apply_snapshot(0, 2), Property::ApplyOrder, &["snapshot at index 2 after applying up to 3"]);
    // After a snapshot at 3... (equal is harmless) applying resumes at 4, not later.
    c.observe_apply_snapshot(0, 3).unwrap();
    expect(c.observe_apply(0, 5, h("e")), Property::ApplyOrder, &["expected 4"]);
}

#[test]
fn a_restart_resumes_applying_after_its_snapshot() {
    let mut c = SafetyChecker::new(1);
    c.observe_entries(0, 1, &[(1, h("a")), (1, h("b")), (1, h("c"))]).unwrap();
    c.observe_commit(0, 3).unwrap();
    for (i, x) in ["a", "b", "c"].iter().enumerate() {
        c.observe_apply(0, i as u64 + 1, h(x)).unwrap();
    }
    c.observe_snapshot(0, 2, 1).unwrap();
    c.observe_restart(0, 2);
    // Committed knowledge is volatile: the node re-learns commit 3 and re-applies index 3.
    expect(c.observe_apply(0, 3, h("c")), Property::StateMachineSafety, &["beyond its commit index 2"]);
    c.observe_commit(0, 3).unwrap();
    c.observe_apply(0, 3, h("c")).unwrap();
}

#[test]
fn writes_outside_the_log_are_reported() {
    let mut c = SafetyChecker::new(1);
    expect(c.observe_entries(0, 3, &[(1, h("a"))]), Property::LogMatching, &["outside its log"]);
    c.observe_snapshot(0, 5, 1).unwrap();
    expect(c.observe_entries(0, 5, &[(1, h("a"))]), Property::LogMatching, &["outside its log"]);
    c.observe_entries(0, 6, &[(1, h("a"))]).unwrap();
}

#[test]
fn long_runs_stay_cheap() {
    // 3 nodes, 20 000 entries each, committed and applied one at a time: incremental checks
    // keep this well under a second; a quadratic checker would take minutes.
    let mut c = SafetyChecker::new(3);
    c.observe_role(0, 1, true).unwrap();
    for i in 1..=20_000u64 {
        let x = i.to_le_bytes();
        for n in 0..3 {
            c.observe_entries(n, i, &[(1, entry_hash(&x))]).unwrap();
        }
        for n in 0..3 {
            c.observe_commit(n, i).unwrap();
            c.observe_apply(n, i, entry_hash(&x)).unwrap();
            if i % 1000 == 0 {
                c.observe_snapshot(n, i - 10, 1).unwrap();
            }
        }
    }
    assert_eq!(c.observations(), 1 + 3 * 20_000 * 3 + 3 * 20);
}

#[test]
fn roles_and_applies_alone_still_judge_election_safety_apply_order_and_agreement() {
    // An implementation that exposes only get_state and its applies: nothing is known of logs
    // or commits, so applying is never "beyond commit", but the rest can still fail.
    let mut c = SafetyChecker::for_roles_and_applies(3);
    assert!(!c.sees_logs());
    c.observe_role(0, 1, true).unwrap();
    c.observe_apply(0, 1, h("a")).unwrap();
    c.observe_apply(1, 1, h("a")).unwrap();
    expect(c.observe_apply(2, 1, h("b")), Property::StateMachineSafety, &["different commands", "index 1"]);
    expect(c.observe_apply(0, 3, h("c")), Property::ApplyOrder, &["expected 2"]);
    expect(c.observe_role(1, 1, true), Property::ElectionSafety, &["both leader in term 1"]);
    // A restart that does not say where the state machine resumes: the next apply sets it,
    // and order is judged from there.
    c.observe_restart_unknown(0);
    c.observe_apply(0, 5, h("e")).unwrap();
    expect(c.observe_apply(0, 7, h("g")), Property::ApplyOrder, &["expected 6"]);
    // The full checker still refuses an apply beyond what it saw committed.
    let mut full = SafetyChecker::new(1);
    expect(full.observe_apply(0, 1, h("a")), Property::StateMachineSafety, &["beyond its commit index"]);
}
