//! Part 2A, leader election: the course's three tests.

use super::tester::Cluster;
use super::{targeted, ELECTION};
use crate::engine::TestEngine;
use crate::registry::{Opts, Scenario};
use sim::Failure;
use std::time::Duration;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    vec![
        targeted(
            "raft::initial_election_2a",
            "3 peers elect one leader; terms agree; the leader keeps its term without failures",
            |o| Box::pin(initial_election::<E>(o)),
        ),
        targeted(
            "raft::re_election_2a",
            "3 peers re-elect after the leader is disconnected; no leader without a quorum",
            |o| Box::pin(re_election::<E>(o)),
        ),
        targeted(
            "raft::many_elections_2a",
            "7 peers, 9 rounds of disconnecting up to 3 at random: a leader every time",
            |o| Box::pin(many_elections::<E>(o)),
        ),
    ]
}

/// TestInitialElection2A. Goal: a leader is elected and stays, with all terms in agreement.
/// Traps: no election at all, split terms, needless re-elections (the course only warns).
async fn initial_election<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = Cluster::<E>::for_test(3, false, false, &opts);
    // Is a leader elected?
    cfg.check_one_leader().await?;
    // Sleep a bit to avoid racing with followers learning of the election, then check that
    // all peers agree on the term.
    sim::sleep(Duration::from_millis(50)).await;
    let term1 = cfg.check_terms()?;
    if term1 < 1 {
        return Err(Failure::safety("raft::terms", format!("term is {term1}, but should be at least 1")));
    }
    // Does the leader and term stay the same if there is no network failure?
    sim::sleep(2 * ELECTION).await;
    let term2 = cfg.check_terms()?;
    if term1 != term2 {
        // The course prints a warning here, not a failure.
        sim::note(sim::NoteCode::TesterWarning, term2, || {
            format!("warning: term changed even though there were no failures ({term1} -> {term2})")
        });
    }
    // There should still be a leader.
    cfg.check_one_leader().await?;
    Ok(())
}

/// TestReElection2A. Goal: losing the leader elects another; a returning old leader does
/// not disturb; without a quorum nobody leads. Traps: stuck elections, stale leaders.
async fn re_election<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = Cluster::<E>::for_test(3, false, false, &opts);
    let leader1 = cfg.check_one_leader().await?;
    // If the leader disconnects, a new one should be elected.
    cfg.disconnect(leader1);
    cfg.check_one_leader().await?;
    // If the old leader rejoins, that shouldn't disturb the new leader.
    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader().await?;
    // If there's no quorum, no new leader should be elected.
    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % 3);
    sim::sleep(2 * ELECTION).await;
    // Check that the one connected server does not think it is the leader.
    cfg.check_no_leader()?;
    // If a quorum arises, it should elect a leader.
    cfg.connect((leader2 + 1) % 3);
    cfg.check_one_leader().await?;
    // Re-join of the last node shouldn't prevent leader from existing.
    cfg.connect(leader2);
    cfg.check_one_leader().await?;
    Ok(())
}

/// TestManyElections2A. Goal: with 7 peers, any 4 connected elect a leader, round after
/// round. Traps: elections that need everyone, or that never settle.
async fn many_elections<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    use rand::Rng;
    let servers = 7;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.check_one_leader().await?;
    for _ in 1..10 {
        // Disconnect three nodes (possibly the same one more than once).
        let i1 = cfg.rng.gen_range(0..servers);
        let i2 = cfg.rng.gen_range(0..servers);
        let i3 = cfg.rng.gen_range(0..servers);
        cfg.disconnect(i1);
        cfg.disconnect(i2);
        cfg.disconnect(i3);
        // Either the current leader should still be alive, or the remaining four should
        // elect a new one.
        cfg.check_one_leader().await?;
        cfg.connect(i1);
        cfg.connect(i2);
        cfg.connect(i3);
    }
    cfg.check_one_leader().await?;
    Ok(())
}
