//! Targeted Raft scenarios beyond the course, each built around one fault shape from
//! `what-finds-bugs.md` that the course's tests reach only by luck.

use super::tester::Cluster;
use super::{targeted, ELECTION};
use crate::engine::TestEngine;
use crate::registry::{Opts, Scenario};
use rand::Rng;
use sim::{net, Failure};
use std::time::Duration;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    vec![targeted(
        "raft::vote_amnesia_2c",
        "two candidates that cannot hear each other compete for one voter, who crashes just after saving its vote and restarts at once",
        |o| Box::pin(vote_amnesia::<E>(o)),
    )]
}

/// Goal: a vote, once given, is never given again in the same term — even across a crash.
/// Steps, 40 rounds: cut the link between two servers X and Y both ways, so each can win
/// only with the third server Z's vote; arm Z to crash a few milliseconds after its next
/// save (its vote or term change — the reply has left by then) and restart it moments later;
/// let elections run; heal. The safety checker watches every step for two leaders in a term.
/// Traps: `voted_for` or `current_term` not persisted (the voter forgets and votes again),
/// and leader churn with bare majorities in general.
async fn vote_amnesia<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = Cluster::<E>::for_test(3, false, false, &opts);
    cfg.check_one_leader().await?;
    for round in 0..40u64 {
        let z = cfg.rng.gen_range(0..3);
        let (x, y) = ((z + 1) % 3, (z + 2) % 3);
        // X and Y cannot talk: whoever leads holds only Z's vote.
        net::cut(cfg.nodes[x], cfg.nodes[y]);
        net::cut(cfg.nodes[y], cfg.nodes[x]);
        let crash_delay = Duration::from_millis(cfg.rng.gen_range(1..20));
        sim::crash_after_saves(cfg.nodes[z], 1, crash_delay);
        // Elections run while Z dies and comes back; restart it soon after each crash.
        let until = sim::now() + Duration::from_millis(cfg.rng.gen_range(600..1500));
        while sim::now() < until {
            sim::sleep(Duration::from_millis(5)).await;
            if !cfg.alive(z) {
                sim::sleep(Duration::from_millis(cfg.rng.gen_range(1..60))).await;
                cfg.start1(z);
                cfg.connect(z);
                sim::note(sim::NoteCode::RestartedVoter, round, || "restarted the voter".into());
            }
        }
        sim::disarm_fault_points();
        net::uncut(cfg.nodes[x], cfg.nodes[y]);
        net::uncut(cfg.nodes[y], cfg.nodes[x]);
    }
    // With every fault gone, the cluster must agree again.
    sim::sleep(ELECTION).await;
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, 3, true).await?;
    Ok(())
}
