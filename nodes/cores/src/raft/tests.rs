//! Unit tests of single cores fed hand-made messages: the tricky paths, one at a time.

use super::*;

fn cmd(x: u8) -> Vec<u8> {
    vec![x]
}

/// A peer restored from a hand-written persisted state whose log has the given terms.
fn restored(me: usize, peers: usize, term: u64, log_terms: &[u64], bugs: Bugs) -> Raft {
    let entries: Vec<Entry> =
        log_terms.iter().enumerate().map(|(i, &t)| Entry { term: t, command: cmd(i as u8 + 1) }).collect();
    let state = persist::encode(term, None, 0, 0, &entries);
    Raft::new(Config::new(me, peers, 7).with_bugs(bugs), &state, &[], 0).unwrap()
}

fn fresh(me: usize, peers: usize) -> Raft {
    Raft::new(Config::new(me, peers, 7), &[], &[], 0).unwrap()
}

/// Run `raft`'s election to victory with every other peer granting; returns the time reached.
fn elect(raft: &mut Raft) -> u64 {
    let now = raft.next_deadline_ms();
    raft.tick(now);
    let term = raft.get_state().0;
    assert_eq!(raft.status().role, Role::Candidate);
    let peers = raft.config().peers;
    let me = raft.config().me;
    for peer in (0..peers).filter(|&p| p != me) {
        raft.handle_reply(
            now,
            peer,
            Reply::RequestVote(RequestVoteReply { term, vote_granted: true, request_term: term }),
        );
    }
    assert_eq!(raft.get_state(), (term, true));
    now
}

fn appends_to(ready: &Ready, to: usize) -> Vec<AppendEntriesArgs> {
    ready
        .messages
        .iter()
        .filter(|m| m.to == to)
        .filter_map(|m| match &m.request {
            Request::AppendEntries(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn append_reply(args: &AppendEntriesArgs, term: u64, success: bool) -> Reply {
    Reply::AppendEntries(AppendEntriesReply {
        term,
        success,
        request_term: args.term,
        prev_log_index: args.prev_log_index,
        entries_len: args.entries.len() as u64,
        conflict_term: None,
        conflict_index: 0,
    })
}

fn ae(term: u64, prev: (u64, u64), entry_terms: &[u64], leader_commit: u64) -> Request {
    Request::AppendEntries(AppendEntriesArgs {
        term,
        leader_id: 0,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries: entry_terms.iter().map(|&t| Entry { term: t, command: cmd(100 + t as u8) }).collect(),
        leader_commit,
    })
}

fn log_terms(raft: &Raft) -> Vec<u64> {
    let s = raft.status();
    (s.snapshot_index + 1..=s.last_log_index).map(|i| raft.entry(i).unwrap().term).collect()
}

fn command_indexes(ready: &Ready) -> Vec<u64> {
    ready
        .applies
        .iter()
        .filter_map(|a| match a {
            ApplyMsg::Command { index, .. } => Some(*index),
            ApplyMsg::Snapshot { .. } => None,
        })
        .collect()
}

#[test]
fn election_persists_the_vote_and_announces_the_winner() {
    let mut raft = fresh(0, 3);
    let deadline = raft.next_deadline_ms();
    assert!((300..=600).contains(&deadline));
    raft.tick(deadline - 1);
    assert!(raft.take_ready().is_empty(), "nothing happens before the deadline");
    raft.tick(deadline);
    let ready = raft.take_ready();
    let saved = ready.persist.expect("term and vote persisted before asking");
    let state = persist::decode(&saved.state.to_bytes()).unwrap();
    assert_eq!((state.current_term, state.voted_for), (1, Some(0)));
    assert_eq!(ready.messages.len(), 2);
    assert!(ready.messages.iter().all(|m| matches!(m.request, Request::RequestVote(_))));
    // A vote from an older election does not count.
    raft.handle_reply(
        deadline,
        1,
        Reply::RequestVote(RequestVoteReply { term: 1, vote_granted: true, request_term: 0 }),
    );
    assert!(!raft.get_state().1);
    raft.handle_reply(
        deadline,
        1,
        Reply::RequestVote(RequestVoteReply { term: 1, vote_granted: true, request_term: 1 }),
    );
    assert_eq!(raft.get_state(), (1, true));
    let ready = raft.take_ready();
    assert_eq!(appends_to(&ready, 1).len(), 1);
    assert_eq!(appends_to(&ready, 2).len(), 1);
    // Then heartbeats every interval, and nothing in between.
    assert_eq!(raft.next_deadline_ms(), deadline + 100);
}

#[test]
fn votes_once_per_term_and_only_for_up_to_date_logs() {
    let mut raft = restored(0, 3, 2, &[1, 2], Bugs::default());
    let rv = |candidate: usize, term: u64, last: (u64, u64)| {
        Request::RequestVote(RequestVoteArgs {
            term,
            candidate_id: candidate,
            last_log_index: last.0,
            last_log_term: last.1,
        })
    };
    let granted = |reply: Reply| match reply {
        Reply::RequestVote(r) => r.vote_granted,
        other => panic!("unexpected {other:?}"),
    };
    // Longer log but older last term: not up to date.
    assert!(!granted(raft.handle_request(1, 1, rv(1, 3, (5, 1)))));
    assert_eq!(raft.get_state().0, 3, "the higher term is adopted anyway");
    // Same last term, shorter log: not up to date.
    assert!(!granted(raft.handle_request(1, 1, rv(1, 3, (1, 2)))));
    assert!(granted(raft.handle_request(1, 1, rv(1, 3, (2, 2)))));
    // A second candidate of the same term is refused, even after a restart.
    assert!(!granted(raft.handle_request(1, 2, rv(2, 3, (9, 3)))));
    let saved = raft.take_ready().persist.unwrap();
    let mut again = Raft::new(Config::new(0, 3, 8), &saved.state.to_bytes(), &[], 5).unwrap();
    assert!(!granted(again.handle_request(5, 2, rv(2, 3, (9, 3)))));
    assert!(granted(again.handle_request(5, 1, rv(1, 3, (2, 2)))), "same candidate again");
}

#[test]
fn follower_truncates_only_a_conflicting_suffix() {
    let mut raft = restored(1, 3, 3, &[1, 1, 2, 2], Bugs::default());
    // Entry 3 conflicts (term 3 vs 2): everything from 3 on goes.
    let reply = raft.handle_request(1, 0, ae(3, (2, 1), &[3], 0));
    assert!(matches!(reply, Reply::AppendEntries(ref r) if r.success));
    assert_eq!(log_terms(&raft), vec![1, 1, 3]);
    assert_eq!(raft.take_ready().log_written_from, Some(3));
    // A late, shorter request that matches must not cut the entries after it.
    raft.handle_request(2, 0, ae(3, (1, 1), &[1], 0));
    assert_eq!(log_terms(&raft), vec![1, 1, 3]);
    assert_eq!(raft.take_ready().log_written_from, None);
    // Commit only up to what the request proved: prev + len = 2, not leader_commit 3.
    raft.handle_request(3, 0, ae(3, (1, 1), &[1], 3));
    assert_eq!(raft.status().commit_index, 2);
    assert_eq!(command_indexes(&raft.take_ready()), vec![1, 2]);
}

#[test]
fn planted_no_truncate_conflict_keeps_the_stale_suffix() {
    let mut raft = restored(1, 3, 3, &[1, 1, 2, 2], Bugs::only(Bug::NoTruncateConflict));
    raft.handle_request(1, 0, ae(3, (2, 1), &[3], 0));
    assert_eq!(log_terms(&raft), vec![1, 1, 3, 2]);
}

#[test]
fn rejection_names_the_conflicting_term_and_where_it_starts() {
    let mut raft = restored(1, 3, 5, &[1, 1, 4, 4, 4], Bugs::default());
    // prev (5, term 5) mismatches our term 4, whose run starts at index 3.
    match raft.handle_request(1, 0, ae(5, (5, 5), &[], 0)) {
        Reply::AppendEntries(r) => {
            assert!(!r.success);
            assert_eq!((r.conflict_term, r.conflict_index), (Some(4), 3));
        }
        other => panic!("unexpected {other:?}"),
    }
    // prev beyond our log: the log is too short, resend from its end.
    match raft.handle_request(1, 0, ae(5, (9, 5), &[], 0)) {
        Reply::AppendEntries(r) => {
            assert!(!r.success);
            assert_eq!((r.conflict_term, r.conflict_index), (None, 6));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn stale_term_append_is_rejected_unless_the_bug_is_planted() {
    for bug in [false, true] {
        let bugs = if bug { Bugs::only(Bug::AcceptStaleTermAppend) } else { Bugs::default() };
        let mut raft = restored(1, 3, 5, &[1, 5], bugs);
        let reply = raft.handle_request(1, 0, ae(3, (1, 1), &[3], 0));
        let Reply::AppendEntries(r) = reply else { panic!() };
        assert_eq!(r.term, 5);
        assert_eq!(r.success, bug);
        assert_eq!(log_terms(&raft), if bug { vec![1, 3] } else { vec![1, 5] });
    }
}

#[test]
fn leader_backs_up_a_whole_term_per_round_trip() {
    // Leader log terms [1,1,1,5,5,6]; follower has [1,1,1,4,4,4,4] (term 4 unknown to the
    // leader) — the course's TestBackup2B situation in miniature.
    let mut leader = restored(0, 3, 6, &[1, 1, 1, 5, 5, 6], Bugs::default());
    let now = elect(&mut leader);
    let ready = leader.take_ready();
    let probe = appends_to(&ready, 1).pop().unwrap();
    assert_eq!((probe.prev_log_index, probe.entries.len()), (6, 0));
    let mut follower = restored(1, 3, 4, &[1, 1, 1, 4, 4, 4, 4], Bugs::default());
    let reply = follower.handle_request(now, 0, Request::AppendEntries(probe));
    leader.handle_reply(now, 1, reply);
    let retry = appends_to(&leader.take_ready(), 1).pop().unwrap();
    // The follower's run of term 4 starts at 4, and the leader has no term 4: resend from 4.
    assert_eq!(retry.prev_log_index, 3);
    assert_eq!(retry.entries.len(), 3);
    let reply = follower.handle_request(now, 0, Request::AppendEntries(retry));
    assert!(matches!(reply, Reply::AppendEntries(ref r) if r.success));
    assert_eq!(log_terms(&follower), vec![1, 1, 1, 5, 5, 6]);
    leader.handle_reply(now, 1, reply);
    // Entries of term 6 are now on a majority, but the leader is in term 7: nothing commits
    // until an entry of term 7 does (Figure 8), and then everything before it does too.
    assert_eq!(leader.status().commit_index, 0);
    leader.take_ready();
    leader.propose(now, cmd(7)).unwrap();
    let last = appends_to(&leader.take_ready(), 1).pop().unwrap();
    assert_eq!((last.prev_log_index, last.entries.len()), (6, 1));
    let reply = follower.handle_request(now, 0, Request::AppendEntries(last));
    leader.handle_reply(now, 1, reply);
    assert_eq!(leader.status().commit_index, 7);
}

#[test]
fn leader_jumps_past_its_own_run_of_the_conflicting_term() {
    // Follower [1,2,2,2] vs leader [1,2,3,3]: the leader has term 2 up to index 2, so it
    // resends from 3 without probing index 4 and 3 separately.
    let mut leader = restored(0, 3, 4, &[1, 2, 3, 3], Bugs::default());
    let now = elect(&mut leader);
    let probe = appends_to(&leader.take_ready(), 1).pop().unwrap();
    let mut follower = restored(1, 3, 3, &[1, 2, 2, 2], Bugs::default());
    let reply = follower.handle_request(now, 0, Request::AppendEntries(probe));
    leader.handle_reply(now, 1, reply);
    let retry = appends_to(&leader.take_ready(), 1).pop().unwrap();
    assert_eq!(retry.prev_log_index, 2);
}

#[test]
fn figure8_entries_of_older_terms_commit_only_indirectly() {
    for planted in [false, true] {
        let bugs = if planted { Bugs::only(Bug::CommitOldTerm) } else { Bugs::default() };
        // The leader of term 4 holds an entry of term 2 that a follower also stores.
        let mut leader = restored(0, 3, 3, &[1, 2], bugs);
        let now = elect(&mut leader);
        assert_eq!(leader.get_state().0, 4);
        let probe = appends_to(&leader.take_ready(), 1).pop().unwrap();
        leader.handle_reply(now, 1, append_reply(&probe, 4, true));
        // Index 2 is on a majority but of term 2: committing it by counting is the bug.
        assert_eq!(leader.status().commit_index, if planted { 2 } else { 0 });
        if !planted {
            // Once an entry of term 4 reaches the majority, everything before it commits too.
            let (index, term) = leader.propose(now, cmd(9)).unwrap();
            assert_eq!((index, term), (3, 4));
            let send = appends_to(&leader.take_ready(), 1).pop().unwrap();
            leader.handle_reply(now, 1, append_reply(&send, 4, true));
            assert_eq!(leader.status().commit_index, 3);
            assert_eq!(command_indexes(&leader.take_ready()), vec![1, 2, 3]);
        }
    }
}

#[test]
fn proposals_made_while_a_call_is_in_flight_travel_together() {
    let mut leader = fresh(0, 3);
    let now = elect(&mut leader);
    let hello = appends_to(&leader.take_ready(), 1).pop().unwrap();
    leader.handle_reply(now, 1, append_reply(&hello, 1, true));
    let hello2 = appends_to(&leader.take_ready(), 2).pop();
    assert!(hello2.is_none());
    // The first proposal leaves at once...
    leader.propose(now, cmd(1)).unwrap();
    let first = appends_to(&leader.take_ready(), 1);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].entries.len(), 1);
    // ...the next ones wait for that call and then travel in one request.
    for x in 2..=12 {
        leader.propose(now, cmd(x)).unwrap();
        assert!(appends_to(&leader.take_ready(), 1).is_empty());
    }
    leader.handle_reply(now, 1, append_reply(&first[0], 1, true));
    let ready = leader.take_ready();
    assert_eq!(leader.status().commit_index, 1, "committed without waiting for a heartbeat");
    assert_eq!(command_indexes(&ready), vec![1]);
    let batch = appends_to(&ready, 1);
    assert_eq!(batch.len(), 1);
    assert_eq!((batch[0].prev_log_index, batch[0].entries.len()), (1, 11));
    assert_eq!(batch[0].leader_commit, 1);
    leader.handle_reply(now, 1, append_reply(&batch[0], 1, true));
    let ready = leader.take_ready();
    assert_eq!(leader.status().commit_index, 12);
    // Commit news waits for the next AppendEntries (paper §5.3): nothing goes out for it alone.
    assert!(appends_to(&ready, 1).is_empty());
    // The next heartbeat carries it, and never resends entries the follower has acknowledged
    // or has in flight.
    leader.tick(now + 100);
    let beats = appends_to(&leader.take_ready(), 1);
    assert_eq!(beats.len(), 1);
    assert!(beats[0].entries.is_empty());
    assert_eq!(beats[0].leader_commit, 12);
}

#[test]
fn commit_news_rides_on_the_next_proposal() {
    let mut leader = fresh(0, 3);
    let now = elect(&mut leader);
    let term = leader.get_state().0;
    let hellos = leader.take_ready();
    for peer in [1, 2] {
        let hello = appends_to(&hellos, peer).pop().unwrap();
        leader.handle_reply(now, peer, append_reply(&hello, term, true));
    }
    leader.take_ready();
    leader.propose(now, cmd(1)).unwrap();
    let first = appends_to(&leader.take_ready(), 1).pop().unwrap();
    leader.handle_reply(now, 1, append_reply(&first, term, true));
    assert_eq!(leader.status().commit_index, 1);
    // No request only to tell follower 1 that index 1 committed...
    assert!(appends_to(&leader.take_ready(), 1).is_empty());
    // ...the next proposal's AppendEntries tells it.
    leader.propose(now + 1, cmd(2)).unwrap();
    let second = appends_to(&leader.take_ready(), 1);
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].prev_log_index, second[0].entries.len(), second[0].leader_commit), (1, 1, 1));
}

#[test]
fn a_failed_call_makes_the_next_heartbeat_resend_its_entries() {
    let mut leader = fresh(0, 3);
    let now = elect(&mut leader);
    let hello = appends_to(&leader.take_ready(), 1).pop().unwrap();
    leader.handle_reply(now, 1, append_reply(&hello, 1, true));
    leader.take_ready();
    leader.propose(now, cmd(1)).unwrap();
    let sent = appends_to(&leader.take_ready(), 1).pop().unwrap();
    leader.handle_call_failed(now, 1, Request::AppendEntries(sent.clone()).context());
    assert!(appends_to(&leader.take_ready(), 1).is_empty(), "no retry storm");
    leader.tick(leader.next_deadline_ms());
    let again = appends_to(&leader.take_ready(), 1).pop().unwrap();
    assert_eq!(again.prev_log_index, sent.prev_log_index);
    assert_eq!(again.entries, sent.entries);
}

#[test]
fn snapshot_install_replaces_the_log_and_is_applied_first() {
    let mut follower = restored(1, 3, 2, &[1, 1, 2], Bugs::default());
    let data = b"state@5".to_vec();
    let reply = follower.handle_request(
        10,
        0,
        Request::InstallSnapshot(InstallSnapshotArgs {
            term: 3,
            leader_id: 0,
            last_included_index: 5,
            last_included_term: 3,
            data: data.clone(),
        }),
    );
    assert!(matches!(reply, Reply::InstallSnapshot(ref r) if r.term == 3));
    let s = follower.status();
    assert_eq!((s.snapshot_index, s.last_log_index, s.commit_index), (5, 5, 5));
    let ready = follower.take_ready();
    let saved = ready.persist.unwrap();
    assert_eq!(saved.snapshot.as_deref().map(Vec::as_slice), Some(&data[..]));
    assert_eq!(ready.applies, vec![ApplyMsg::Snapshot { index: 5, term: 3, data: data.clone() }]);
    // Restarting from what was saved resumes after the snapshot.
    let mut again = Raft::new(Config::new(1, 3, 1), &saved.state.to_bytes(), &data, 20).unwrap();
    assert_eq!(again.status().last_applied, 5);
    again.handle_request(20, 0, ae(3, (5, 3), &[3, 3], 7));
    assert_eq!(command_indexes(&again.take_ready()), vec![6, 7]);
}

#[test]
fn snapshot_install_keeps_a_matching_suffix() {
    let mut follower = restored(1, 3, 2, &[1, 1, 2, 2], Bugs::default());
    follower.handle_request(
        1,
        0,
        Request::InstallSnapshot(InstallSnapshotArgs {
            term: 2,
            leader_id: 0,
            last_included_index: 3,
            last_included_term: 2,
            data: b"s".to_vec(),
        }),
    );
    let s = follower.status();
    assert_eq!((s.snapshot_index, s.last_log_index), (3, 4));
    assert_eq!(log_terms(&follower), vec![2]);
}

#[test]
fn stale_snapshot_is_ignored_unless_the_bug_rewinds_the_service() {
    for planted in [false, true] {
        let bugs = if planted { Bugs::only(Bug::ApplyOutOfOrderAfterSnapshot) } else { Bugs::default() };
        let mut follower = restored(1, 3, 1, &[1, 1, 1, 1], bugs);
        follower.handle_request(1, 0, ae(1, (4, 1), &[], 4));
        assert_eq!(command_indexes(&follower.take_ready()), vec![1, 2, 3, 4]);
        // A duplicated snapshot at index 2 arrives late.
        follower.handle_request(
            2,
            0,
            Request::InstallSnapshot(InstallSnapshotArgs {
                term: 1,
                leader_id: 0,
                last_included_index: 2,
                last_included_term: 1,
                data: b"s".to_vec(),
            }),
        );
        let ready = follower.take_ready();
        let indexes: Vec<u64> = ready.applies.iter().map(ApplyMsg::index).collect();
        if planted {
            assert_eq!(indexes, vec![2, 3, 4], "the service rewinds and re-applies 3 and 4");
        } else {
            assert!(indexes.is_empty());
            assert_eq!(follower.status().snapshot_index, 0);
        }
    }
}

#[test]
fn leader_sends_its_snapshot_to_a_follower_behind_it() {
    // Follower 1 answers everything; follower 2 is unreachable, so every call to it fails.
    let mut leader = fresh(0, 3);
    let mut now = elect(&mut leader);
    let mut to_2: Vec<Request> = Vec::new();
    let step = |leader: &mut Raft, now: u64, to_2: &mut Vec<Request>| {
        let ready = leader.take_ready();
        for m in &ready.messages {
            if matches!(m.request, Request::RequestVote(_)) {
                continue; // the election is already won
            }
            match m.to {
                1 => {
                    let Request::AppendEntries(args) = &m.request else { panic!("follower 1 is up to date") };
                    leader.handle_reply(now, 1, append_reply(args, 1, true));
                }
                _ => {
                    leader.handle_call_failed(now, 2, m.request.context());
                    to_2.push(m.request.clone());
                }
            }
        }
    };
    step(&mut leader, now, &mut to_2);
    for x in 1..=3 {
        leader.propose(now, cmd(x)).unwrap();
        step(&mut leader, now, &mut to_2);
        step(&mut leader, now, &mut to_2);
    }
    assert_eq!(leader.status().commit_index, 3);
    assert!(leader.snapshot(now, 3, b"upto3".to_vec()));
    assert!(!leader.snapshot(now, 2, b"old".to_vec()), "older than what is held");
    let saved = leader.take_ready().persist.unwrap();
    assert_eq!(saved.snapshot.as_deref().map(Vec::as_slice), Some(&b"upto3"[..]));
    // Follower 2's next_index is now compacted: the next heartbeat carries the snapshot.
    to_2.clear();
    now += 100;
    leader.tick(now);
    step(&mut leader, now, &mut to_2);
    let snap = to_2
        .iter()
        .find_map(|r| match r {
            Request::InstallSnapshot(a) => Some(a.clone()),
            _ => None,
        })
        .expect("snapshot sent to follower 2");
    assert_eq!((snap.last_included_index, snap.last_included_term), (3, 1));
    // Follower 2 comes back: the snapshot arrives and is acknowledged; replication resumes
    // right after it.
    let mut follower = fresh(2, 3);
    let reply = follower.handle_request(now, 0, Request::InstallSnapshot(snap));
    assert_eq!(follower.status().snapshot_index, 3);
    leader.handle_reply(now, 2, reply);
    leader.propose(now, cmd(4)).unwrap();
    let next = appends_to(&leader.take_ready(), 2).pop().unwrap();
    assert_eq!((next.prev_log_index, next.prev_log_term), (3, 1));
    assert_eq!(next.entries.len(), 1);
}

#[test]
fn a_snapshot_in_flight_is_not_resent_every_heartbeat() {
    let mut leader = fresh(0, 3);
    let now = elect(&mut leader);
    leader.take_ready();
    leader.propose(now, cmd(1)).unwrap();
    leader.take_ready();
    // Commit via follower 1 without letting follower 2 hear anything.
    leader.handle_reply(
        now,
        1,
        Reply::AppendEntries(AppendEntriesReply {
            term: 1,
            success: true,
            request_term: 1,
            prev_log_index: 0,
            entries_len: 1,
            conflict_term: None,
            conflict_index: 0,
        }),
    );
    leader.snapshot(now, 1, b"one".to_vec());
    leader.take_ready();
    let mut snapshots = 0;
    for t in 1..=10 {
        leader.tick(now + 100 * t);
        snapshots += leader
            .take_ready()
            .messages
            .iter()
            .filter(|m| m.to == 2 && matches!(m.request, Request::InstallSnapshot(_)))
            .count();
    }
    // One second of heartbeats, a retry only after an election timeout (600 ms).
    assert_eq!(snapshots, 2);
}

#[test]
fn restart_rebuilds_term_vote_log_and_snapshot() {
    let mut leader = fresh(0, 1);
    let now = leader.next_deadline_ms();
    leader.tick(now);
    assert_eq!(leader.get_state(), (1, true), "a lone peer elects itself");
    for x in 1..=5 {
        leader.propose(now, cmd(x)).unwrap();
    }
    assert_eq!(leader.status().commit_index, 5);
    leader.take_ready();
    leader.snapshot(now, 3, b"three".to_vec());
    let saved = leader.take_ready().persist.unwrap();
    let again = Raft::new(
        Config::new(0, 1, 2),
        &saved.state.to_bytes(),
        saved.snapshot.as_deref().map(Vec::as_slice).unwrap(),
        now,
    )
    .unwrap();
    let s = again.status();
    assert_eq!((s.current_term, s.voted_for), (1, Some(0)));
    assert_eq!((s.snapshot_index, s.last_log_index), (3, 5));
    assert_eq!((s.commit_index, s.last_applied), (3, 3));
    assert_eq!(again.snapshot_data(), b"three");
    // Losing the snapshot while keeping a compacted log is refused.
    assert!(Raft::new(Config::new(0, 1, 2), &saved.state.to_bytes(), &[], now).is_err());
}

#[test]
fn planted_persistence_bugs_lose_the_vote_or_the_term() {
    let mut raft = fresh(1, 3);
    let rv = Request::RequestVote(RequestVoteArgs { term: 7, candidate_id: 0, last_log_index: 0, last_log_term: 0 });
    raft.handle_request(1, 0, rv.clone());
    let saved = raft.take_ready().persist.unwrap().state.to_bytes();
    let state = persist::decode(&saved).unwrap();
    assert_eq!((state.current_term, state.voted_for), (7, Some(0)));

    let mut bad = Raft::new(Config::new(1, 3, 1).with_bugs(Bugs::only(Bug::NoPersistVotedFor)), &[], &[], 0).unwrap();
    bad.handle_request(1, 0, rv.clone());
    let saved = bad.take_ready().persist.unwrap().state.to_bytes();
    let state = persist::decode(&saved).unwrap();
    assert_eq!((state.current_term, state.voted_for), (7, None));

    let mut bad = Raft::new(Config::new(1, 3, 1).with_bugs(Bugs::only(Bug::NoPersistTerm)), &[], &[], 0).unwrap();
    bad.handle_request(1, 0, rv);
    let saved = bad.take_ready().persist.unwrap().state.to_bytes();
    let again = Raft::new(Config::new(1, 3, 1).with_bugs(Bugs::only(Bug::NoPersistTerm)), &saved, &[], 0).unwrap();
    assert_eq!(again.get_state().0, 0, "the term is recovered from an empty log");
}

#[test]
fn planted_vote_bug_elects_a_candidate_with_a_shorter_log() {
    let mut raft = restored(0, 3, 2, &[1, 2, 2], Bugs::only(Bug::VoteWithoutUpToDateCheck));
    let reply = raft.handle_request(
        1,
        1,
        Request::RequestVote(RequestVoteArgs { term: 3, candidate_id: 1, last_log_index: 1, last_log_term: 1 }),
    );
    assert!(matches!(reply, Reply::RequestVote(r) if r.vote_granted));
}

#[test]
fn persisted_state_stays_small_with_snapshots_every_ten_entries() {
    // The course bounds the raft state at 2000 bytes when the service snapshots every 10.
    let mut leader = fresh(0, 1);
    let now = leader.next_deadline_ms();
    leader.tick(now);
    let mut largest = 0;
    for x in 0..200u32 {
        leader.propose(now, x.to_le_bytes().to_vec()).unwrap();
        let index = leader.status().last_applied;
        if index % 10 == 9 {
            leader.snapshot(now, index, vec![1; 64]);
        }
        if let Some(p) = leader.take_ready().persist {
            largest = largest.max(p.state.len());
        }
    }
    assert!(largest < 200, "raft state reached {largest} bytes");
}

#[test]
fn written_entries_compacted_before_the_ready_is_taken_are_not_reported() {
    let mut leader = fresh(0, 1);
    let now = leader.next_deadline_ms();
    leader.tick(now);
    leader.take_ready();
    for x in 1..=4 {
        leader.propose(now, cmd(x)).unwrap();
    }
    // Entries 1..4 were written and applied; the service snapshots at 2 before the shell
    // takes the Ready: observers are told about 3..4 only.
    leader.snapshot(now, 2, b"two".to_vec());
    assert_eq!(leader.take_ready().log_written_from, Some(3));
    leader.propose(now, cmd(5)).unwrap();
    leader.snapshot(now, 5, b"five".to_vec());
    assert_eq!(leader.take_ready().log_written_from, None, "everything written is compacted");
}

/// The RequestVote messages in `ready`, by receiver.
fn vote_requests(ready: &Ready) -> Vec<(usize, RequestVoteArgs)> {
    ready
        .messages
        .iter()
        .filter_map(|m| match &m.request {
            Request::RequestVote(a) => Some((m.to, a.clone())),
            _ => None,
        })
        .collect()
}

/// A fresh peer of 3 with [`Config::retry_failed_votes`] set as given and `bugs` planted.
fn with_vote_retry(me: usize, retry: bool, bugs: Bugs) -> Raft {
    Raft::new(Config { retry_failed_votes: retry, ..Config::new(me, 3, 7) }.with_bugs(bugs), &[], &[], 0).unwrap()
}

#[test]
fn a_failed_vote_call_is_retried_in_its_term_only_with_the_knob() {
    // Without the knob (the default), a lost vote waits for the next election.
    let mut raft = with_vote_retry(0, false, Bugs::default());
    let now = raft.next_deadline_ms();
    raft.tick(now);
    let (_, args) = vote_requests(&raft.take_ready()).pop().unwrap();
    raft.handle_call_failed(now + 5, 1, Request::RequestVote(args).context());
    assert!(raft.take_ready().messages.is_empty(), "no retry by default");

    // With it, the same request goes again to the peer whose call failed, and only to it,
    // a heartbeat interval (100 ms) after the first: a call over a one-way cut fails the
    // instant it is answered, and must not become a storm of calls.
    let mut raft = with_vote_retry(0, true, Bugs::default());
    let now = raft.next_deadline_ms();
    raft.tick(now);
    let first = vote_requests(&raft.take_ready());
    assert_eq!(first.len(), 2);
    let args = first[0].1.clone();
    raft.handle_call_failed(now + 5, 1, Request::RequestVote(args.clone()).context());
    assert!(raft.take_ready().messages.is_empty(), "not before a heartbeat interval");
    assert_eq!(raft.next_deadline_ms(), now + 100, "the retry is the next deadline");
    raft.tick(now + 100);
    assert_eq!(vote_requests(&raft.take_ready()), vec![(1, args.clone())], "the same request, to peer 1");
    // A call that fails later than that goes again at once.
    raft.handle_call_failed(now + 250, 1, Request::RequestVote(args.clone()).context());
    assert_eq!(vote_requests(&raft.take_ready()), vec![(1, args.clone())]);
    assert!(raft.next_deadline_ms() > now + 250, "nothing else is due");
    // Not once the election is won (the peer's vote came through a retry or a duplicate).
    raft.handle_reply(
        now + 260,
        1,
        Reply::RequestVote(RequestVoteReply { term: 1, vote_granted: true, request_term: 1 }),
    );
    assert_eq!(raft.get_state(), (1, true), "peer 1's vote wins the election");
    raft.take_ready();
    raft.handle_call_failed(now + 400, 1, Request::RequestVote(args.clone()).context());
    raft.handle_call_failed(now + 400, 2, Request::RequestVote(args).context());
    assert!(vote_requests(&raft.take_ready()).is_empty(), "a leader retries no vote");

    // Not for a request of an earlier term: the candidate has moved on.
    let mut raft = with_vote_retry(0, true, Bugs::default());
    let first = raft.next_deadline_ms();
    raft.tick(first);
    let (_, old) = vote_requests(&raft.take_ready()).pop().unwrap();
    let second = raft.next_deadline_ms();
    raft.tick(second);
    assert_eq!(raft.get_state(), (2, false));
    raft.take_ready();
    raft.handle_call_failed(second + 1, 2, Request::RequestVote(old).context());
    assert!(raft.take_ready().messages.is_empty(), "a term-1 failure in term 2 is not retried");

    // Nor after the candidate stepped down to a follower of the same term's leader.
    let mut raft = with_vote_retry(0, true, Bugs::default());
    let now = raft.next_deadline_ms();
    raft.tick(now);
    let (_, args) = vote_requests(&raft.take_ready()).pop().unwrap();
    raft.handle_request(now + 1, 1, ae(1, (0, 0), &[], 0));
    assert_eq!(raft.status().role, Role::Follower);
    raft.take_ready();
    raft.handle_call_failed(now + 2, 2, Request::RequestVote(args).context());
    assert!(raft.take_ready().messages.is_empty(), "a follower retries no vote");
}

/// The shape the retry opens for planted bug no-persist-voted-for (Raft §5.2: one vote per
/// term, persisted): voter 2 grants candidate 0 in term 1 and restarts; candidate 1 of the
/// same term, whose request met the voter down, retries it. With the bug the restarted voter
/// has forgotten its vote and grants it again: two leaders of term 1. Without it, refused.
#[test]
fn a_retried_vote_meets_a_restarted_voter_that_forgot_its_vote() {
    for bug in [false, true] {
        let bugs = if bug { Bugs::only(Bug::NoPersistVotedFor) } else { Bugs::default() };
        let mut a = with_vote_retry(0, true, bugs);
        let mut b = with_vote_retry(1, true, bugs);
        let mut voter = with_vote_retry(2, true, bugs);
        // Both stand in term 1 (a split vote): each has its own vote.
        let (a_start, b_start) = (a.next_deadline_ms(), b.next_deadline_ms());
        a.tick(a_start);
        b.tick(b_start);
        let to_voter = |r: &mut Raft| vote_requests(&r.take_ready()).into_iter().find(|(to, _)| *to == 2).unwrap().1;
        let (from_a, from_b) = (to_voter(&mut a), to_voter(&mut b));
        assert_eq!((from_a.term, from_b.term), (1, 1));
        // Both are still candidates at `t` (their timeouts are 300-600 ms).
        let t = a_start.max(b_start) + 1;
        // The voter grants a, saves, and crashes right after its reply.
        let reply = voter.handle_request(t, 0, Request::RequestVote(from_a));
        a.handle_reply(t, 2, reply);
        assert_eq!(a.get_state(), (1, true));
        let saved = voter.take_ready().persist.unwrap().state.to_bytes();
        // b's request found the voter down; the call fails, and b asks again a heartbeat
        // interval after its first request, still in term 1.
        b.handle_call_failed(t, 2, Request::RequestVote(from_b).context());
        let due = b.next_deadline_ms();
        assert_eq!(due, t.max(b_start + 100));
        b.tick(due);
        assert_eq!(b.get_state(), (1, false));
        let (to, retry) = vote_requests(&b.take_ready()).pop().expect("the retry");
        assert_eq!((to, retry.term), (2, 1));
        let mut restarted = Raft::new(Config::new(2, 3, 8).with_bugs(bugs), &saved, &[], due).unwrap();
        let reply = restarted.handle_request(due, 1, Request::RequestVote(retry));
        b.handle_reply(due, 2, reply);
        assert_eq!(b.get_state(), (1, bug), "two leaders of term 1 only with the bug (bug: {bug})");
    }
}
