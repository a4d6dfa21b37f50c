//! Lab 4A (2015): the shard master on Paxos — every test of reference `6824-old-labs.md` §6.3
//! on the old network mode (`sim::net::old`), 3 servers replicated by the Paxos engine
//! ([`PaxosEngine`], `cores::paxos_log`), with the shard controller's own state machine, clerk
//! and checks (`crate::shardctrler`: the course's `check`, the server-list and same-config
//! comparisons, the minimal-transfer checks of `checkers::shards`). Beyond the course, every
//! configuration any replica applies is judged as it happens ([`ShardJudge`]: replicas agree,
//! and after every Join and Leave the shards are balanced and exactly the fewest moved), and
//! every apply is checked against every other replica's (`state-machine-safety`).
//!
//! Port decisions (reference §6.4, §8):
//! - The 2015 interface joins one gid and leaves one gid; here a Join of a one-entry map and a
//!   Leave of a one-entry set. The old tests never read what a Join or Leave returned, so a
//!   repeated Join of a present gid or Leave of an absent one (TestBasic does both; its
//!   concurrent part re-joins gid 2) may be refused (`Invalid`, no new configuration): that
//!   is the controller's rule, and the old test only checks the groups afterwards.
//! - `sm.px.Min() > 0` reads the Paxos engine's `Min()` on every server. The old servers call
//!   `Done` after each applied instance; here `Done` is the snapshot a server takes once its
//!   Paxos state passes [`MAXSTATE`] bytes (the engine's design; `kvpaxos` does the same).
//! - A clerk `MakeClerk([]string{kvh[i]})` reaches only server i; the all-servers clerk tries
//!   them in a random order; a call to a deaf or renamed server fails at once (the old mode).
//! - TestUnreliable's only fault is deafness (its `setunreliable(true)` is commented out, since
//!   duplicate detection was not required): `unreliable_4a` ports exactly that, and its twin
//!   `unreliable_strict_4a` makes all three servers unreliable (two draws per request) as the
//!   name promised — simlab's controller detects duplicates, so it must pass.
//! - TestFreshQuery's `os.Rename` of server 0's socket: every node but the clerk given the
//!   new name (`ck0`) loses its link to server 0, server 0 itself included (its own peer list
//!   names the old socket), and server 0 still calls out.
//! - The old "minimal transfers" checks compare gids 1..10, which exist then (unlike the later
//!   course's), so they are real checks and ported as they are; the judge checks every Join
//!   and Leave for exact minimality anyway.
//! - Planted bugs: the replicated state machine's `reply-before-commit` and `local-reads`, and
//!   the Paxos core's `ignore-accepted` under the engine. The engine's `forget-promise` does
//!   not apply: no lab 4A test restarts a server.

use crate::engine::{PaxosEngine, TestEngine};
use crate::registry::{Family, Opts, Scenario};
use crate::shardctrler::tester::{check, gids, groups, CtrlerCluster};
use crate::shardctrler::{check_servers, concurrently, move_halves, ok, part};
use crate::shards::ShardJudge;
use cores::rsm::RsmBugs;
use nodes::shardctrler::{Config, CtrlerClerk, CtrlerOut, NSHARDS};
use rand::Rng;
use sim::net::old;
use sim::{Failure, NodeId};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The budget of each old test: the course's have none but `go test`'s 10 minutes.
const BUDGET: Duration = Duration::from_secs(600);

/// A server snapshots (the course's `Done`) once its Paxos state passes this many bytes.
pub const MAXSTATE: usize = 2_000;

/// The family's planted bugs: the replicated state machine's that the lab 4A tests can see,
/// and the Paxos core's `ignore-accepted` under the engine.
pub const BUGS: &[(&str, &str)] = &[
    ("reply-before-commit", "the server replies when it proposes the request, before its instance is decided"),
    ("local-reads", "a server that applied last answers Query from local state, without the log"),
    ("ignore-accepted", "phase 2 proposes the proposer's own value even when a promise reported an accepted one"),
];

type Cluster = CtrlerCluster<PaxosEngine>;

/// The family: every lab 4A (2015) test, and the strengthened twin of TestUnreliable.
pub fn family() -> Family {
    let s = |name, description, run| Scenario::new(name, description, BUDGET, run);
    Family::new("shardmaster")
        .with_bugs(BUGS.iter().copied())
        .with_scenarios([
            s(
                "shardmaster::basic_4a",
                "TestBasic: join/leave (repeated), historical queries, moves, 10 concurrent clerks, Min advances, minimal transfers",
                |o| Box::pin(basic(o)),
            ),
            s(
                "shardmaster::unreliable_4a",
                "TestUnreliable as written: 20 concurrent clerks join and leave while server 0 goes deaf (no unreliability)",
                |o| Box::pin(unreliable(o, false)),
            ),
            s(
                "shardmaster::unreliable_strict_4a",
                "unreliable_4a with every server unreliable (10 % requests lost, 18 % replies lost), as its name promised",
                |o| Box::pin(unreliable(o, true)),
            ),
            s(
                "shardmaster::fresh_query_4a",
                "TestFreshQuery: server 0 renamed (reachable only by its own clerk) answers Query(-1) with a join it never heard of",
                |o| Box::pin(fresh_query(o, false)),
            ),
            s(
                "shardmaster::fresh_query_strict_4a",
                "fresh_query_4a after server 0 itself committed the last change, so a server answering from local state is caught",
                |o| Box::pin(fresh_query(o, true)),
            ),
        ])
        .with_marks(sim::WORLD_MARKS)
        .with_marks(nodes::replica::MARKS)
        // The rsm's retry-after-snapshot mark; not its stepped-down mark, which counts steps
        // at which a replica that is not its engine's leader has requests waiting: every
        // Paxos server proposes, so that says nothing here.
        .with_marks(nodes::rsm::MARKS.into_iter().filter(|&(mark, _)| mark == nodes::rsm::RETRY_AFTER_SNAPSHOT))
}

/// The old tests' cluster: 3 servers on the old network mode, on Paxos, snapshotting past
/// [`MAXSTATE`], with the run's planted bug.
fn cluster(opts: &Opts) -> (Cluster, Rc<RefCell<ShardJudge>>) {
    let bug = opts.bug.as_deref();
    if let Some(b) = bug {
        assert!(BUGS.iter().any(|(x, _)| *x == b), "unknown shardmaster bug {b}");
    }
    let rsm = bug.and_then(RsmBugs::from_name).unwrap_or_default();
    let mut config = PaxosEngine::config(3, None);
    config.bugs.ignore_accepted = bug == Some("ignore-accepted");
    let judge = Rc::new(RefCell::new(ShardJudge::new()));
    sim::net::set_config(sim::NetConfig { reliable: true, ..crate::kvraft::tester::NET });
    let cfg = CtrlerCluster::start_with("sm", 3, config, judge.clone(), Some(MAXSTATE), rsm);
    old::set_old_mode(true);
    (cfg, judge)
}

/// A Join or Leave whose answer the old test ignores: done, or refused as a repeat.
fn done_or_refused(out: CtrlerOut, what: &str) -> Result<(), Failure> {
    match out {
        CtrlerOut::Ok | CtrlerOut::Invalid(_) => Ok(()),
        other => ok(other, what),
    }
}

async fn join1(ck: &mut CtrlerClerk, gid: u64, servers: &[&str]) -> Result<(), Failure> {
    done_or_refused(ck.join(groups(&[(gid, servers)])).await, "join")
}

async fn leave1(ck: &mut CtrlerClerk, gid: u64) -> Result<(), Failure> {
    done_or_refused(ck.leave(gids(&[gid])).await, "leave")
}

fn fatal(what: impl Into<String>) -> Failure {
    Failure::safety("shardmaster::check", what)
}

/// TestBasic. Goal: Join/Leave/Move/Query semantics on Paxos, historical configurations,
/// concurrent clerks, `Min` advancing, minimal transfers. Steps (the old test's parts, one
/// cluster): join 1, join 2, join 2 again, leave 1, leave 1 again, recording the latest
/// configuration after each and checking the groups ({}, {1}, {1,2}, {1,2}, {2}, {2}) and the
/// server lists; read every recorded configuration back by number; join 503 and 504 and move
/// shards 0–4 to 503, 5–9 to 504, each move that changes a shard increasing the number; leave
/// both; 10 clerks, each on server i % 3, join gid+1000 and gid, then leave gid+1000 through
/// server (i+1) % 3, gids 1..10; every server's `Min()` > 0; join 11..15 — no shard of gids
/// 1..10 arrives from elsewhere; leave 11..15 — none of theirs leaves.
async fn basic(opts: Opts) -> Result<(), Failure> {
    let (mut cfg, judge) = cluster(&opts);
    let mut ck = cfg.make_client();

    part("Basic leave/join");
    let mut cfa: Vec<Config> = vec![ck.query(None).await];
    check(&mut ck, &[]).await?;
    join1(&mut ck, 1, &["x", "y", "z"]).await?;
    check(&mut ck, &[1]).await?;
    cfa.push(ck.query(None).await);
    join1(&mut ck, 2, &["a", "b", "c"]).await?;
    check(&mut ck, &[1, 2]).await?;
    cfa.push(ck.query(None).await);
    join1(&mut ck, 2, &["a", "b", "c"]).await?;
    check(&mut ck, &[1, 2]).await?;
    cfa.push(ck.query(None).await);
    let cfx = ck.query(None).await;
    check_servers(&cfx, 1, &["x", "y", "z"])?;
    check_servers(&cfx, 2, &["a", "b", "c"])?;
    leave1(&mut ck, 1).await?;
    check(&mut ck, &[2]).await?;
    cfa.push(ck.query(None).await);
    leave1(&mut ck, 1).await?;
    check(&mut ck, &[2]).await?;
    cfa.push(ck.query(None).await);

    part("Historical queries");
    for c in &cfa {
        let got = ck.query(Some(c.num)).await;
        // The old test compares Num, Shards, the number of groups and each group's servers
        // element by element: all of a configuration.
        if &got != c {
            return Err(fatal(format!("Query({}) read back {got:?}, expected {c:?}", c.num)));
        }
    }

    part("Move");
    let (gid3, gid4) = (503, 504);
    join1(&mut ck, gid3, &["3a", "3b", "3c"]).await?;
    join1(&mut ck, gid4, &["4a", "4b", "4c"]).await?;
    move_halves(&mut ck, gid3, gid4, "shardmaster::check").await?;
    leave1(&mut ck, gid3).await?;
    leave1(&mut ck, gid4).await?;

    part("Concurrent leave/join");
    const NPARA: usize = 10;
    let para: Vec<u64> = (1..=NPARA as u64).collect();
    // Goroutine i uses cka[i % 3] for its joins and cka[(i + 1) % 3] for its leave: two clerks
    // on the servers' positions.
    let pairs: Vec<(CtrlerClerk, CtrlerClerk)> =
        (0..NPARA).map(|i| (cfg.make_client_to(&[i % 3]), cfg.make_client_to(&[(i + 1) % 3]))).collect();
    concurrently(pairs, move |i, (mut a, mut b)| {
        let gid = i as u64 + 1;
        async move {
            join1(&mut a, gid + 1000, &["a", "b", "c"]).await?;
            join1(&mut a, gid, &["a", "b", "c"]).await?;
            leave1(&mut b, gid + 1000).await
        }
    })
    .await?;
    check(&mut ck, &para).await?;

    part("Min advances after joins");
    for i in 0..cfg.n {
        let min = cfg.with_handle(i, |h| h.with_core(|c| c.min())).unwrap_or(-1);
        if min <= 0 {
            return Err(fatal(format!("server {i}: px.Min() = {min} didn't advance")));
        }
    }

    part("Minimal transfers after joins");
    let c1 = ck.query(None).await;
    for i in 0..5 {
        join1(&mut ck, NPARA as u64 + 1 + i, &["a", "b", "c"]).await?;
    }
    let c2 = ck.query(None).await;
    for &gid in &para {
        for j in 0..NSHARDS {
            if c2.shards[j] == gid && c1.shards[j] != gid {
                return Err(fatal(format!("non-minimal transfer after Join()s: shard {j} moved to {gid}")));
            }
        }
    }

    part("Minimal transfers after leaves");
    for i in 0..5 {
        leave1(&mut ck, NPARA as u64 + 1 + i).await?;
    }
    let c3 = ck.query(None).await;
    for &gid in &para {
        for j in 0..NSHARDS {
            if c2.shards[j] == gid && c3.shards[j] != gid {
                return Err(fatal(format!("non-minimal transfer after Leave()s: shard {j} left {gid}")));
            }
        }
    }
    judge.borrow().describe();
    Ok(())
}

/// TestUnreliable ("Concurrent leave/join, failure"). Goal: configuration changes from many
/// clerks survive a server going deaf mid-way. Steps: 20 clerks, each through server 1 or 2
/// at random per call, join gid+1000 and gid, leave gid+1000 (gids 1..20), then make server 0
/// deaf (the first to finish does; the rest repeat it); the all-servers clerk checks gids
/// 1..20 are the groups, every shard on one, max ≤ min + 1. `strict`: every server unreliable
/// from the start (the twin; the old test has the line commented out).
async fn unreliable(opts: Opts, strict: bool) -> Result<(), Failure> {
    let (mut cfg, judge) = cluster(&opts);
    if strict {
        for &s in &cfg.servers {
            old::set_unreliable(s, true);
        }
    }
    let mut ck = cfg.make_client();
    const NPARA: usize = 20;
    let para: Vec<u64> = (1..=NPARA as u64).collect();
    let server0 = cfg.servers[0];
    let clerks: Vec<Vec<CtrlerClerk>> =
        (0..NPARA).map(|_| vec![cfg.make_client_to(&[1]), cfg.make_client_to(&[2])]).collect();
    concurrently(clerks, move |i, mut two| {
        let gid = i as u64 + 1;
        let mut rng = sim::rng(&format!("shardmaster-unreliable-{i}"));
        async move {
            join1(&mut two[rng.gen_range(0..2)], gid + 1000, &["a", "b", "c"]).await?;
            join1(&mut two[rng.gen_range(0..2)], gid, &["a", "b", "c"]).await?;
            leave1(&mut two[rng.gen_range(0..2)], gid + 1000).await?;
            old::set_deaf(server0, true);
            Ok(())
        }
    })
    .await?;
    check(&mut ck, &para).await?;
    judge.borrow().describe();
    Ok(())
}

/// TestFreshQuery ("Query() returns latest configuration"). Goal: a server cut off from its
/// peers still answers Query(-1) with every change completed before the query, catching up
/// through Paxos first. Steps: rename server 0 (only `ck0` reaches it; it still calls out);
/// `ck1` (server 1 only) joins 1001; `ck0.Query(-1)` must include gid 1001. `strict` (the
/// twin): first `ck0` joins 1000 through server 0, so server 0 proposed the last change it
/// applied and has every reason to think itself current — the old test only ever asks a
/// server that proposed nothing, which a server answering Query from its own state passes.
async fn fresh_query(opts: Opts, strict: bool) -> Result<(), Failure> {
    let (mut cfg, judge) = cluster(&opts);
    let mut ck1 = cfg.make_client_to(&[1]);
    let mut ck0 = cfg.make_client_to(&[0]);
    if strict {
        ok(ck0.join(groups(&[(1000, &["x", "y", "z"])])).await, "join 1000")?;
    }
    // The clerk just made is the newest node: it alone keeps a link to server 0.
    let ck0_node = NodeId(sim::node_count() - 1);
    assert_eq!(sim::node_name(ck0_node), "sm-ck1", "ck0 is the newest node");
    let s0 = cfg.servers[0];
    for n in 0..sim::node_count() {
        if NodeId(n) != ck0_node {
            sim::net::cut(NodeId(n), s0);
        }
    }
    ok(ck1.join(groups(&[(1001, &["a", "b", "c"])])).await, "join 1001")?;
    let c = ck0.query(None).await;
    if !c.groups.contains_key(&1001) {
        return Err(fatal(format!("Query(-1) produced a stale configuration: {c:?}")));
    }
    judge.borrow().describe();
    Ok(())
}
