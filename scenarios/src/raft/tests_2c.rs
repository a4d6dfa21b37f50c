//! Part 2C, persistence: the course's eight tests.

use super::tester::{int_cmd, show, Cluster, Cmd};
use super::{targeted, ELECTION};
use crate::engine::TestEngine;
use crate::registry::{Opts, Scenario};
use nodes::replica::Engine;
use rand::Rng;
use sim::{net, Failure};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    vec![
        targeted(
            "raft::persist1_2c",
            "3 peers: crash and restart all, then the leader, then a follower; state survives",
            |o| Box::pin(persist1::<E>(o)),
        ),
        targeted(
            "raft::persist2_2c",
            "5 peers, 5 rounds of partial crashes: the restarted majority adopts the longest log",
            |o| Box::pin(persist2::<E>(o)),
        ),
        targeted(
            "raft::persist3_2c",
            "leader and one follower crash while the third is partitioned; restart and agree",
            |o| Box::pin(persist3::<E>(o)),
        ),
        targeted(
            "raft::figure8_2c",
            "5 peers, 1000 rounds of Start then crash the leader soon after; final agreement",
            |o| Box::pin(figure8::<E>(o)),
        ),
        targeted(
            "raft::unreliable_agree_2c",
            "5 peers, unreliable network, 49 rounds of 5 concurrent agreements",
            |o| Box::pin(unreliable_agree::<E>(o)),
        ),
        targeted(
            "raft::figure8_unreliable_2c",
            "5 peers, unreliable, long reordering from round 200, leaders disconnected; final agreement",
            |o| Box::pin(figure8_unreliable::<E>(o)),
        ),
        targeted(
            "raft::reliable_churn_2c",
            "5 peers, 3 clients, 20 rounds of random disconnect/restart/crash: no committed value lost",
            |o| Box::pin(reliable_churn::<E>(o)),
        ),
        targeted(
            "raft::unreliable_churn_2c",
            "the churn test on an unreliable network: no committed value lost",
            |o| Box::pin(unreliable_churn::<E>(o)),
        ),
    ]
}

/// A tester task's result, surfaced at once like the course's `t.Fatalf` in a goroutine.
fn report<T>(r: Result<T, Failure>) -> Result<T, Failure> {
    if let Err(f) = &r {
        sim::fail(f.clone());
    }
    r
}

/// TestPersist12C. Goal: state survives crashes of everyone, of the leader, of a follower.
/// Steps: one(11); restart all 3 and reconnect; one(12); restart the leader; one(13);
/// disconnect leader2, one(14) on two, restart leader2 and wait until all have index 4;
/// restart a follower after one(15) on two; one(16) on all. Traps: term, vote or log not
/// persisted; a restarted server that cannot catch up.
async fn persist1<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(11), servers, true).await?;
    // Crash and restart all: the committed entry must come back from the persisters.
    for i in 0..servers {
        cfg.start1(i);
    }
    for i in 0..servers {
        cfg.disconnect(i);
        cfg.connect(i);
    }
    cfg.one(int_cmd(12), servers, true).await?;
    // Restart the leader alone.
    let leader1 = cfg.check_one_leader().await?;
    cfg.disconnect(leader1);
    cfg.start1(leader1);
    cfg.connect(leader1);
    cfg.one(int_cmd(13), servers, true).await?;
    // The new leader misses an entry while down, then restarts and must catch up.
    let leader2 = cfg.check_one_leader().await?;
    cfg.disconnect(leader2);
    cfg.one(int_cmd(14), servers - 1, true).await?;
    cfg.start1(leader2);
    cfg.connect(leader2);
    // Wait for leader2 to join before the next server goes down.
    cfg.wait(4, servers, None).await?;
    // A follower misses an entry while down, then restarts.
    let i3 = (cfg.check_one_leader().await? + 1) % servers;
    cfg.disconnect(i3);
    cfg.one(int_cmd(15), servers - 1, true).await?;
    cfg.start1(i3);
    cfg.connect(i3);
    cfg.one(int_cmd(16), servers, true).await?;
    Ok(())
}

/// TestPersist22C. Goal: across restarts, a majority elects the server with the newest log.
/// Steps, 5 rounds: one(x) on all 5; disconnect L+1, L+2; one(x) on 3; disconnect L, L+3,
/// L+4; restart L+1, L+2 (their logs are short) and wait an election timeout; restart L+3
/// (long log); one(x) on 3; reconnect L+4 and L. Finally one(1000) on all 5.
/// Traps: the election restriction forgotten or logs not persisted: L+1/L+2 would win with
/// short logs and lose the entry L+3 holds.
async fn persist2<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 5;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    let mut index = 1;
    for iter in 0..5 {
        sim::note(sim::NoteCode::TesterStep, iter, || format!("tester: persist2 round {iter}"));
        cfg.one(int_cmd(10 + index), servers, true).await?;
        index += 1;
        // Two followers miss the next entry.
        let leader1 = cfg.check_one_leader().await?;
        cfg.disconnect((leader1 + 1) % servers);
        cfg.disconnect((leader1 + 2) % servers);
        cfg.one(int_cmd(10 + index), servers - 2, true).await?;
        index += 1;
        // Everyone down; the two with short logs come back first, from their persisters.
        cfg.disconnect(leader1 % servers);
        cfg.disconnect((leader1 + 3) % servers);
        cfg.disconnect((leader1 + 4) % servers);
        cfg.start1((leader1 + 1) % servers);
        cfg.start1((leader1 + 2) % servers);
        cfg.connect((leader1 + 1) % servers);
        cfg.connect((leader1 + 2) % servers);
        // Two of five cannot elect anyone.
        sim::sleep(ELECTION).await;
        // The third has the long log: only it may be elected, and the three agree.
        cfg.start1((leader1 + 3) % servers);
        cfg.connect((leader1 + 3) % servers);
        cfg.one(int_cmd(10 + index), servers - 2, true).await?;
        index += 1;
        cfg.connect((leader1 + 4) % servers);
        cfg.connect(leader1 % servers);
    }
    cfg.one(int_cmd(1000), servers, true).await?;
    Ok(())
}

/// TestPersist32C. Goal: a leader and a follower crash while the third is partitioned; the
/// restarted leader and the partitioned one agree, then all three. Steps: one(101);
/// disconnect L+2; one(102) on two; crash L and L+1; reconnect L+2; restart L; one(103) on
/// two; restart L+1; one(104) on all. Traps: the committed 102 lost because the restarted
/// leader forgot it, or a vote cast twice after a restart.
async fn persist3<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(101), 3, true).await?;
    // The third server misses 102.
    let leader = cfg.check_one_leader().await?;
    cfg.disconnect((leader + 2) % servers);
    cfg.one(int_cmd(102), 2, true).await?;
    // The two that hold 102 crash; the one without it comes back.
    cfg.crash1(leader % servers);
    cfg.crash1((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    // The old leader restarts: with L+2 it is a majority, and must keep 102.
    cfg.start1(leader % servers);
    cfg.connect(leader % servers);
    cfg.one(int_cmd(103), 2, true).await?;
    // The last one restarts and catches up.
    cfg.start1((leader + 1) % servers);
    cfg.connect((leader + 1) % servers);
    cfg.one(int_cmd(104), servers, true).await?;
    Ok(())
}

/// The course's Figure 8 sleep: 10 % of the time up to half an election timeout, else up
/// to 12 ms.
fn figure8_pause<E: Engine>(cfg: &mut Cluster<E>) -> Duration {
    let ms = if cfg.rng.gen_range(0..1000) < 100 {
        cfg.rng.gen_range(0..ELECTION.as_millis() as u64 / 2)
    } else {
        cfg.rng.gen_range(0..13)
    };
    Duration::from_millis(ms)
}

/// TestFigure82C. Goal: Figure 8 of the paper — leaders crash right after taking entries,
/// again and again; nothing committed may be lost or contradicted. Steps: one(rand) on
/// one server; 1000 rounds: Start(rand) on every live server, the last accepter is the
/// leader; pause (10 %: ≤ 499 ms, else ≤ 12 ms); crash the leader; if fewer than 3 are up,
/// restart a random dead one. Then restart all, one(rand) on all 5. Traps: committing an
/// entry of an older term by counting replicas; lost persisted state.
async fn figure8<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 5;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    let c = cfg.rand_cmd();
    cfg.one(c, 1, true).await?;
    let mut nup = servers;
    for iter in 0..1000 {
        sim::note(sim::NoteCode::TesterStep, iter, || format!("tester: figure8 round {iter}"));
        // Offer a command to every live server; whoever takes it is (or thinks it is) leader.
        let mut leader = None;
        for i in 0..servers {
            if cfg.alive(i) {
                let c = cfg.rand_cmd();
                if cfg.start(i, c).2 {
                    leader = Some(i);
                }
            }
        }
        // Mostly a short pause (the entry is half replicated), sometimes long enough to commit.
        let pause = figure8_pause(&mut cfg);
        sim::sleep(pause).await;
        // Crash the leader, leaving its entries on some servers only.
        if let Some(l) = leader {
            cfg.crash1(l);
            nup -= 1;
        }
        // Keep a majority possible: bring a random dead server back.
        if nup < 3 {
            let s = cfg.rng.gen_range(0..servers);
            if !cfg.alive(s) {
                cfg.start1(s);
                cfg.connect(s);
                nup += 1;
            }
        }
    }
    // Everyone back; all five must agree on a new command (and so on all before it).
    for i in 0..servers {
        if !cfg.alive(i) {
            cfg.start1(i);
            cfg.connect(i);
        }
    }
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    Ok(())
}

/// TestUnreliableAgree2C. Goal: agreement on an unreliable network (10 % of requests and
/// of replies lost, delays), with many commands in flight. Steps: 49 rounds of 4 concurrent
/// one(100·round + j) plus one(round) on at least one server; then the network becomes
/// reliable, the concurrent ones finish, one(100) on all 5. Traps: giving up on lost RPCs,
/// mishandling reordered or duplicated replies.
async fn unreliable_agree<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 5;
    let cfg = Cluster::<E>::for_test(servers, true, false, &opts);
    let mut tasks = Vec::new();
    for iters in 1..50u64 {
        // Four goroutines each push a command through; they are not waited for per round.
        for j in 0..4u64 {
            let c = cfg.share("raft-unreliable-agree");
            tasks.push(sim::spawn(async move { report(c.one(int_cmd(100 * iters + j), 1, true).await) }));
        }
        cfg.one(int_cmd(iters), 1, true).await?;
    }
    // Make the network reliable, let everything in flight finish, and agree on all five.
    net::set_reliable(true);
    for t in tasks {
        t.await.map_err(|e| Failure::panic(format!("one() task: {e}")))??;
    }
    cfg.one(int_cmd(100), servers, true).await?;
    Ok(())
}

/// TestFigure8Unreliable2C. Goal: Figure 8 on an unreliable network with long reordering,
/// leaders disconnected instead of crashed. Steps: one(rand%10000) on one; 1000 rounds:
/// from round 200 long reordering is on (never turned off); Start(rand%10000) on all, the
/// last connected accepter is the leader; pause as in Figure 8; with probability 1/2
/// disconnect the leader; if fewer than 3 connected, connect a random disconnected one.
/// Then connect all; one(rand%10000) on all 5, still unreliable. Traps: stale replies
/// (old terms, old nextIndex) misapplied; slow catch-up with huge divergent logs.
async fn figure8_unreliable<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 5;
    let mut cfg = Cluster::<E>::for_test(servers, true, false, &opts);
    let x = cfg.rng.gen_range(0..10000);
    cfg.one(int_cmd(x), 1, true).await?;
    let mut nup = servers;
    for iters in 0..1000 {
        sim::note(sim::NoteCode::TesterStep, iters, || format!("tester: figure8 unreliable round {iters}"));
        // Replies may now come back up to 2.2 s late, out of order.
        if iters == 200 {
            net::set_long_reordering(true);
        }
        // Offer a command to everyone; the leader is a connected server that took it.
        let mut leader = None;
        for i in 0..servers {
            let x = cfg.rng.gen_range(0..10000);
            let (_, _, ok) = cfg.start(i, int_cmd(x));
            if ok && cfg.connected(i) {
                leader = Some(i);
            }
        }
        let pause = figure8_pause(&mut cfg);
        sim::sleep(pause).await;
        // Half the time cut the leader off, stranding its fresh entries.
        if let Some(l) = leader {
            if cfg.rng.gen_range(0..1000) < ELECTION.as_millis() as u32 / 2 {
                cfg.disconnect(l);
                nup -= 1;
            }
        }
        // Keep a majority possible.
        if nup < 3 {
            let s = cfg.rng.gen_range(0..servers);
            if !cfg.connected(s) {
                cfg.connect(s);
                nup += 1;
            }
        }
    }
    // Everyone connected (network still unreliable, reordering on): all five must agree.
    for i in 0..servers {
        if !cfg.connected(i) {
            cfg.connect(i);
        }
    }
    let x = cfg.rng.gen_range(0..10000);
    cfg.one(int_cmd(x), servers, true).await?;
    Ok(())
}

async fn reliable_churn<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    churn::<E>(opts, false).await
}

async fn unreliable_churn<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    churn::<E>(opts, true).await
}

/// One churn client (the course's `cfn`): until stopped, Start a random value on every live
/// server; if one took it, poll that index for a while and remember the value if it was
/// committed there; else back off 79 + 17·me ms. Returns the values it saw committed.
async fn churn_client<E: Engine>(mut cfg: Cluster<E>, me: u64, stop: Rc<Cell<bool>>) -> Result<Vec<Cmd>, Failure> {
    let mut values = Vec::new();
    while !stop.get() {
        // rand.Int(): 63 random bits, so two clients practically never pick the same value.
        let x = int_cmd(cfg.rng.gen::<u64>() >> 1);
        let mut index = None;
        for i in 0..cfg.n {
            // Try them all; maybe one of them is a leader.
            let (index1, _, ok1) = cfg.start(i, x.clone());
            if ok1 {
                index = Some(index1);
            }
        }
        match index {
            Some(index) => {
                // Maybe the leader will commit the value, maybe not; don't wait forever.
                for to in [10, 20, 50, 100, 200] {
                    let (nd, cmd) = cfg.n_committed(index)?;
                    if nd > 0 {
                        if cmd.as_ref() == Some(&x) {
                            values.push(x.clone());
                        }
                        break;
                    }
                    sim::sleep(Duration::from_millis(to)).await;
                }
            }
            None => sim::sleep(Duration::from_millis(79 + me * 17)).await,
        }
    }
    Ok(values)
}

/// TestReliableChurn2C / TestUnreliableChurn2C. Goal: under random disconnects, crashes and
/// restarts, every value a client saw committed is in the final log of all 5. Steps: 3
/// clients Start values on every live server all along; 20 rounds of: 20 % disconnect a
/// random server, 50 % restart-if-dead and connect a random one, 20 % crash a random one,
/// then 700 ms; then 1 s, reliable net, everyone restarted and connected, clients stopped,
/// 1 s; one(rand) on all 5 at lastIndex; every index up to it applied on all 5.
/// Traps: committed entries lost across crashes (persistence), overwritten (election
/// restriction, Figure 8), or never replicated to restarted servers.
async fn churn<E: TestEngine>(opts: Opts, unreliable: bool) -> Result<(), Failure> {
    let servers = 5;
    let mut cfg = Cluster::<E>::for_test(servers, unreliable, false, &opts);
    let stop = Rc::new(Cell::new(false));
    // Create concurrent clients, each with its own random stream.
    let ncli = 3;
    let mut clients = Vec::new();
    for me in 0..ncli {
        let c = cfg.share(&format!("raft-churn-client-{me}"));
        let stop = stop.clone();
        clients.push(sim::spawn(async move { report(churn_client(c, me, stop).await) }));
    }
    for iters in 0..20 {
        sim::note(sim::NoteCode::TesterStep, iters, || format!("tester: churn round {iters}"));
        // Sometimes cut a server off.
        if cfg.rng.gen_range(0..1000) < 200 {
            let i = cfg.rng.gen_range(0..servers);
            cfg.disconnect(i);
        }
        // Often bring one back (restarting it if it was crashed).
        if cfg.rng.gen_range(0..1000) < 500 {
            let i = cfg.rng.gen_range(0..servers);
            if !cfg.alive(i) {
                cfg.start1(i);
            }
            cfg.connect(i);
        }
        // Sometimes crash one.
        if cfg.rng.gen_range(0..1000) < 200 {
            let i = cfg.rng.gen_range(0..servers);
            if cfg.alive(i) {
                cfg.crash1(i);
            }
        }
        // Infrequent enough that peers often keep up, frequent enough that things rarely
        // settle between changes: shorter than an election timeout, but not hugely.
        sim::sleep(ELECTION * 7 / 10).await;
    }
    sim::sleep(ELECTION).await;
    // Heal everything.
    net::set_reliable(true);
    for i in 0..servers {
        if !cfg.alive(i) {
            cfg.start1(i);
        }
        cfg.connect(i);
    }
    // Stop the clients and collect what each saw committed.
    stop.set(true);
    let mut values = Vec::new();
    for c in clients {
        values.extend(c.await.map_err(|e| Failure::panic(format!("churn client: {e}")))??);
    }
    sim::sleep(ELECTION).await;
    // One more agreement on all five; then every index up to it must be applied everywhere.
    let c = cfg.rand_cmd();
    let last_index = cfg.one(c, servers, true).await?;
    // A set: the course scans a list per value, quadratic in the log's length.
    let mut really = std::collections::BTreeSet::new();
    for index in 1..=last_index {
        if let Some(v) = cfg.wait(index, servers, None).await? {
            really.insert(v);
        }
    }
    // Every value a client saw committed is in the final log.
    for v1 in &values {
        if !really.contains(v1) {
            return Err(Failure::safety(
                "raft::committed",
                format!("didn't find a value: {} was seen committed but is not in the final log", show(v1)),
            ));
        }
    }
    Ok(())
}
