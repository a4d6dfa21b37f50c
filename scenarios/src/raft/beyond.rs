//! Targeted Raft scenarios beyond the course, each built around one fault shape from
//! `what-finds-bugs.md` that the course's tests reach only by luck.

use super::tester::Cluster;
use super::{targeted, ELECTION};
use crate::engine::TestEngine;
use crate::registry::{Opts, Scenario};
use rand::Rng;
use sim::{net, Failure, NodeId};
use std::time::Duration;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    vec![
        targeted(
            "raft::vote_amnesia_2c",
            "two candidates that cannot hear each other compete for one voter, who crashes just after saving its vote and restarts at once",
            |o| Box::pin(vote_amnesia::<E>(o)),
        ),
        targeted(
            "raft::stale_append_reply_2c",
            "a follower's append reply is held while its leader loses leadership, is overwritten and leads again; then it arrives",
            |o| Box::pin(stale_append_reply::<E>(o)),
        ),
        targeted(
            "raft::snapshot_crosses_probe_2d",
            "a follower gets its leader's appends only once the leader snapshots, and its acknowledgements only reach the leader after an InstallSnapshot crossed them",
            |o| Box::pin(snapshot_crosses_probe::<E>(o)),
        ),
    ]
}

/// A hold on one link until a protocol event (see `sim::net::hold`).
fn hold(from: NodeId, to: NodeId, message: &str, messages: u32, until: &str, of: NodeId) -> net::HoldSpec {
    net::HoldSpec { from, to, message: Some(message.into()), messages, until: until.into(), of, count: 1, after_ms: 0 }
}

/// Goal: a leader acts only on replies to requests of its current term (issue 13's first
/// field bug, in the shape of its report). Steps, on 5 servers: leader A, with one committed
/// entry, is left alone with follower B and appends entries 2-3, which B stores; B's
/// acknowledgements are held until A next leads, and arrive 500 ms after that. A and B are
/// isolated; the other three elect a leader, which commits one entry of its own at index 2;
/// A rejoins them (its entries 2-3 are overwritten) and leaders are isolated in turn until A
/// leads again. At once A is left with one other server X, and appends two entries (3-4, of
/// its new term), which X stores. Then B's old reply arrives. A leader that counts it
/// believes entry 3 is on A, X and B — a majority — and commits it while only A and X hold
/// it: the run-wide commit-majority invariant fails (and match-index, once B hears the
/// leader). A correct leader ignores the reply; the run then heals and must agree again.
async fn stale_append_reply<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = Cluster::<E>::for_test(5, false, false, &opts);
    let a = cfg.check_one_leader().await?;
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, 5, true).await?;
    let b = (a + 1) % 5;
    let others: Vec<usize> = (0..5).filter(|&i| i != a && i != b).collect();
    net::hold(net::HoldSpec {
        after_ms: 500,
        ..hold(cfg.nodes[b], cfg.nodes[a], "append_entries_ok", 0, "leader", cfg.nodes[a])
    });
    for &i in &others {
        cfg.disconnect(i);
    }
    for _ in 0..2 {
        let cmd = cfg.rand_cmd();
        cfg.start(a, cmd);
    }
    sim::sleep(Duration::from_millis(300)).await;
    cfg.disconnect(a);
    cfg.disconnect(b);
    for &i in &others {
        cfg.connect(i);
    }
    sim::sleep(ELECTION).await;
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, 3, true).await?;
    cfg.connect(a);
    sim::sleep(ELECTION).await;
    // Isolate whoever leads until A does (its log is now the others' log).
    let mut led = false;
    for _ in 0..40 {
        let Some(l) = leader_now(&cfg, Duration::from_secs(3)).await else { continue };
        if l == a {
            led = true;
            break;
        }
        cfg.disconnect(l);
        while leader_now(&cfg, Duration::from_secs(3)).await.is_none_or(|n| n == l) {}
        cfg.connect(l);
    }
    if !led {
        // The shape needs A to lead again, which rotating the leader out does not force: in
        // the student Raft example (seed 44) a deposed leader keeps its expired election
        // deadline, so the server just reconnected starts the next election first and wins
        // every round — legal Raft, and the cluster keeps electing leaders. So the run ends
        // here having judged what it reached (the run-wide safety invariants held
        // throughout); `scenarios/tests/field_bugs.rs` shows that simlab's Raft reaches the
        // shape and that the planted bug fails it.
        sim::describe(format!("stale-reply shape not reached: server {a} never led again in 40 rounds"));
        return Ok(());
    }
    let x = others.iter().copied().find(|&i| i != a && cfg.connected(i)).expect("a connected follower");
    for i in 0..5 {
        if i != a && i != x {
            cfg.disconnect(i);
        }
    }
    for _ in 0..2 {
        let cmd = cfg.rand_cmd();
        cfg.start(a, cmd);
    }
    sim::sleep(ELECTION).await;
    for i in 0..5 {
        cfg.connect(i);
    }
    sim::sleep(ELECTION).await;
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, 5, true).await?;
    Ok(())
}

/// The connected server that leads in the highest term, polled every 5 ms for up to
/// `within` (a deposed leader that has not yet heard of a newer term still says it leads).
async fn leader_now<E: TestEngine>(cfg: &Cluster<E>, within: Duration) -> Option<usize> {
    let until = sim::now() + within;
    while sim::now() < until {
        let best = (0..cfg.n)
            .filter(|&i| cfg.connected(i))
            .map(|i| (cfg.get_state(i), i))
            .filter(|((_, leads), _)| *leads)
            .max_by_key(|((term, _), _)| *term)
            .map(|(_, i)| i);
        if let Some(l) = best {
            if (0..cfg.n).filter(|&i| cfg.connected(i)).all(|i| cfg.get_state(i).0 <= cfg.get_state(l).0) {
                return Some(l);
            }
        }
        sim::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Goal: InstallSnapshot keeps the follower's entries after the snapshot when they continue
/// it (Figure 13, step 6; issue 13's second field bug). Steps, on 3 servers with the leader
/// snapshotting every 10 entries and follower F never snapshotting by itself: every append
/// with entries from the leader to F is held until the leader's next snapshot, and every
/// answer of F's until F's next snapshot. Proposals flow; when the leader snapshots,
/// F receives the held appends (entries past the snapshot, commit index below it) and its
/// acknowledgements are held, so the leader still probes F and sends InstallSnapshot, which
/// F takes as its next snapshot, releasing the acknowledgements. A follower that wiped its
/// log on install no longer holds what the leader now records as matched: the match-index
/// invariant fails. A correct one keeps the entries and the run passes.
async fn snapshot_crosses_probe<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = Cluster::<E>::for_test(3, false, true, &opts);
    let l = cfg.check_one_leader().await?;
    let f = (l + 1) % 3;
    {
        let mut logs = cfg.logs.borrow_mut();
        logs.snapshot_every = vec![10; 3];
        logs.snapshot_every[f] = 1_000_000;
    }
    // F misses a few entries: the calls to it fail (quickly, without long delays), so the
    // leader probes it when it is back.
    net::set_long_delays(false);
    // Briefly: F must not time out and start an election meanwhile.
    cfg.disconnect(f);
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, 2, true).await?;
    sim::sleep(Duration::from_millis(100)).await;
    net::hold(hold(cfg.nodes[l], cfg.nodes[f], "append_entries", 0, "snapshot", cfg.nodes[l]));
    // Every answer of F's, heartbeat acknowledgements too: one success would end the probing.
    net::hold(net::HoldSpec { message: None, ..hold(cfg.nodes[f], cfg.nodes[l], "", 0, "snapshot", cfg.nodes[f]) });
    // Latency lets the leader's log run ahead of its commit index, so the appends F gets
    // carry entries past the snapshot that the commit index they carry does not cover.
    net::set_config(sim::NetConfig { hop_delay_ms_min: 20, hop_delay_ms_max: 40, ..net::config() });
    cfg.connect(f);
    for _ in 0..25 {
        let cmd = cfg.rand_cmd();
        cfg.start(l, cmd);
        sim::sleep(Duration::from_millis(20)).await;
    }
    sim::sleep(ELECTION).await;
    net::release_all();
    net::set_config(sim::NetConfig { hop_delay_ms_min: 0, hop_delay_ms_max: 0, ..net::config() });
    sim::sleep(ELECTION).await;
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, 3, true).await?;
    Ok(())
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
