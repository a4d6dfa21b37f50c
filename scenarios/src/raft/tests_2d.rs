//! Part 2D, log compaction: the course's seven tests (five through `snapcommon`).

use super::targeted;
use super::tester::{ensure, Cluster, MAX_LOG_SIZE, SNAPSHOT_INTERVAL};
use crate::engine::TestEngine;
use crate::registry::{Opts, Scenario};
use nodes::replica::Engine;
use rand::Rng;
use sim::Failure;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    vec![
        targeted(
            "raft::snapshot_basic_2d",
            "30 rounds of 5-14 entries with everyone up: snapshots every 10, log under 2000 bytes",
            |o| Box::pin(snapshot_basic::<E>(o)),
        ),
        targeted(
            "raft::snapshot_install_2d",
            "30 rounds, a peer disconnected each round catches up by InstallSnapshot",
            |o| Box::pin(snapshot_install::<E>(o)),
        ),
        targeted(
            "raft::snapshot_install_unreliable_2d",
            "30 rounds, a peer disconnected each round, unreliable network",
            |o| Box::pin(snapshot_install_unreliable::<E>(o)),
        ),
        targeted("raft::snapshot_install_crash_2d", "30 rounds, a peer crashed and restarted each round", |o| {
            Box::pin(snapshot_install_crash::<E>(o))
        }),
        targeted(
            "raft::snapshot_install_uncrash_2d",
            "30 rounds, a peer crashed and restarted each round, unreliable network",
            |o| Box::pin(snapshot_install_uncrash::<E>(o)),
        ),
        targeted(
            "raft::snapshot_all_crash_2d",
            "5 rounds of 5-14 agreements then crash and restart all: the log index never decreases",
            |o| Box::pin(snapshot_all_crash::<E>(o)),
        ),
        targeted(
            "raft::snapshot_init_2d",
            "snapshot, crash all, one op, crash all, one op: the snapshot stays persisted",
            |o| Box::pin(snapshot_init::<E>(o)),
        ),
    ]
}

/// TestSnapshotBasic2D: `snapcommon` with no fault, reliable network.
async fn snapshot_basic<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    snapcommon::<E>(opts, false, true, false).await
}

/// TestSnapshotInstall2D: `snapcommon` disconnecting a victim each round, reliable network.
async fn snapshot_install<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    snapcommon::<E>(opts, true, true, false).await
}

/// TestSnapshotInstallUnreliable2D: `snapcommon` disconnecting a victim, unreliable network.
async fn snapshot_install_unreliable<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    snapcommon::<E>(opts, true, false, false).await
}

/// TestSnapshotInstallCrash2D: `snapcommon` crashing a victim each round, reliable network.
async fn snapshot_install_crash<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    snapcommon::<E>(opts, false, true, true).await
}

/// TestSnapshotInstallUnCrash2D: `snapcommon` crashing a victim, unreliable network.
async fn snapshot_install_uncrash<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    snapcommon::<E>(opts, false, false, true).await
}

/// Fails if some server's persisted Raft state (its log, snapshot excluded) is too big.
fn check_log_size<E: Engine>(cfg: &Cluster<E>) -> Result<(), Failure> {
    let size = cfg.log_size();
    ensure(size < MAX_LOG_SIZE, "raft::log-size", || {
        format!("Log size too large: {size} bytes of persisted Raft state (limit {MAX_LOG_SIZE})")
    })
}

/// The course's `snapcommon(name, disconnect, reliable, crash)`. Goal: the tester's service
/// snapshots every 10 applied entries; Raft must trim its log (persisted state under 2000
/// bytes) and bring lagging or restarted peers up to date, by InstallSnapshot when the
/// entries they need are gone. Steps: one(rand) on 3; 30 rounds: victim = leader+1 and
/// sender = leader, except on rounds with i % 3 == 1 where the victim is the leader and
/// the sender its follower (so those Starts are no-ops); with a fault, disconnect or crash
/// the victim and one(rand) on 2; Start 5 + [0, 9] random commands on the sender; one(rand)
/// on 3 without a fault, on 2 with one; check the log size; heal the victim (reconnect, or
/// restart and connect), one(rand) on 3, find the leader again.
/// Traps: no log trimming; InstallSnapshot missing or mishandled (wrong offsets after the
/// snapshot, re-applying or skipping entries: every applied index must be the next one);
/// a restarted peer that loses or ignores its snapshot.
async fn snapcommon<E: TestEngine>(opts: Opts, disconnect: bool, reliable: bool, crash: bool) -> Result<(), Failure> {
    let iters = 30;
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, !reliable, true, &opts);
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    let mut leader1 = cfg.check_one_leader().await?;
    for i in 0..iters {
        sim::note(sim::NoteCode::TesterStep, i, || format!("tester: snapshot round {i}"));
        // Usually a follower is the victim; every third round it is the leader itself.
        let (mut victim, mut sender) = ((leader1 + 1) % servers, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        // The victim misses what follows; the other two still agree.
        if disconnect {
            cfg.disconnect(victim);
            let c = cfg.rand_cmd();
            cfg.one(c, servers - 1, true).await?;
        }
        if crash {
            cfg.crash1(victim);
            let c = cfg.rand_cmd();
            cfg.one(c, servers - 1, true).await?;
        }
        // Perhaps send enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rng.gen_range(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = cfg.rand_cmd();
            cfg.start(sender, c);
        }
        // Let the appliers catch up with the Starts. Without a fault, make sure all
        // followers have caught up, so snapshot_basic never needs InstallSnapshot.
        let c = cfg.rand_cmd();
        if !disconnect && !crash {
            cfg.one(c, servers, true).await?;
        } else {
            cfg.one(c, servers - 1, true).await?;
        }
        // Snapshots must have trimmed every persisted log.
        check_log_size(&cfg)?;
        // Reconnect the victim, who may be behind and need a snapshot to catch up.
        if disconnect {
            cfg.connect(victim);
            let c = cfg.rand_cmd();
            cfg.one(c, servers, true).await?;
            leader1 = cfg.check_one_leader().await?;
        }
        // Restart the victim from its snapshot and state, then it catches up.
        if crash {
            cfg.start1(victim);
            cfg.connect(victim);
            let c = cfg.rand_cmd();
            cfg.one(c, servers, true).await?;
            leader1 = cfg.check_one_leader().await?;
        }
    }
    Ok(())
}

/// TestSnapshotAllCrash2D. Goal: after everyone crashes and restarts from snapshots, the
/// log goes on where it was. Steps, 5 rounds: 5 + [0, 9] one(rand) on 3; index1 =
/// one(rand); crash all; restart and connect all; index2 = one(rand) must be > index1.
/// Traps: a restarted Raft that forgets its snapshot's index (numbering restarts low) or
/// loses its state.
async fn snapshot_all_crash<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let iters = 5;
    let mut cfg = Cluster::<E>::for_test(servers, false, true, &opts);
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    for i in 0..iters {
        sim::note(sim::NoteCode::TesterStep, i, || format!("tester: all-crash round {i}"));
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rng.gen_range(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = cfg.rand_cmd();
            cfg.one(c, servers, true).await?;
        }
        let c = cfg.rand_cmd();
        let index1 = cfg.one(c, servers, true).await?;
        // Crash all, then revive all from what each persisted.
        cfg.crash_and_restart_all();
        // The next command goes after everything committed before the crash.
        let c = cfg.rand_cmd();
        let index2 = cfg.one(c, servers, true).await?;
        ensure(index2 > index1, "raft::index", || format!("index decreased from {index1} to {index2}"))?;
    }
    Ok(())
}

/// TestSnapshotInit2D. Goal: a restarted Raft keeps its snapshot when it persists again.
/// Steps: one(rand); 11 × one(rand) (the service snapshots at index 9); crash and restart
/// all; one(rand) (something new is persisted); crash and restart all; one(rand).
/// Traps: persisting the Raft state without re-passing the snapshot (the 2023 Persister
/// then erases it), so the second restart finds a log that starts after a missing snapshot.
async fn snapshot_init<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, true, &opts);
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    // Enough ops to make a snapshot.
    for _ in 0..SNAPSHOT_INTERVAL + 1 {
        let c = cfg.rand_cmd();
        cfg.one(c, servers, true).await?;
    }
    // Crash and revive all.
    cfg.crash_and_restart_all();
    // A single op, to get something written back to persistent storage.
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    // Crash and revive all again: now the state written since the restart is what loads.
    cfg.crash_and_restart_all();
    // Another op, to trigger a potential bug.
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    Ok(())
}
