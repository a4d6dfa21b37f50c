//! Lab 4B (2015): the sharded key/value service with every replica group and the shard master
//! replicated by Paxos — every test of reference `6824-old-labs.md` §7.2 on the old network
//! mode (`sim::net::old`), and beside them the whole later shardkv suite (the course's lab 4B
//! tests, both challenges, TestRejection and the swarm) run through the sharded tester on the
//! Paxos engine instead of Raft: one suite, two engines.
//!
//! Both halves run simlab's group server and clerk ([`OwnShardKv`]) and simlab's shard
//! controller on the Paxos log ([`PaxosEngine`], `cores::paxos_log`), with the sharded
//! tester's checks: every clerk call recorded and the history judged linearizable, every
//! configuration and shard change judged as it happens (`crate::shards`), every apply of every
//! group checked against its other replicas' (`state-machine-safety`).
//!
//! Port decisions (reference §7.3, §8):
//! - The old harness's 3 shard masters, never unreliable, and 3 groups (gids 100, 101, 102)
//!   of 3 replicas, not joined at setup. `Setunreliable(true)` flags the group servers only:
//!   with the old mode's per-receiver flags that covers clerk requests, Paxos traffic and
//!   shard transfers into them, as the old servers' shared listener did.
//! - Paxos has no leader, so every replica polls the controller (the old `tick()`; simlab's
//!   server polls every 100 ms where the old skeleton ticked every 250 ms) and proposes the
//!   reconfiguration; the log orders them. The old servers call `Done` after every applied
//!   instance; here `Done` is the snapshot a replica takes once its Paxos state passes
//!   [`MAXSTATE`] bytes, as in `kvpaxos`.
//! - Killing a server (`kill()`) is a crash (it never restarts in these tests); removing a
//!   group's sockets is making its servers deaf (they still call out).
//! - TestMove's leaked Gets (to the deaf group's shards) are dropped when the run ends; its
//!   check is the open interval 3 < count < 6. The twin `move_strict_4b` requires exactly the
//!   shards the live group owns in the latest configuration to answer, and no other.
//! - Where the later suite names a leader (the swarm's roles), the Paxos engine's leader is
//!   the proposer whose command applied last (the engine's `get_state`); its size bounds
//!   (`checklogs`, TestChallenge1Delete) apply to what each replica's Paxos keeps after its
//!   own `Done`.
//! - Planted bugs: the group server's (`serve-during-handoff`, `forget-dup-table`,
//!   `config-out-of-order`, `delete-before-handoff`, `serve-before-arrival`) and the Paxos
//!   engine's `forget-promise` (acceptors forget their promises across a restart: only the
//!   later suite restarts servers).

use crate::engine::PaxosEngine;
use crate::registry::{Family, Opts, Scenario};
use crate::shardkv::tester::{check, ShardCluster, ShardKvClerk};
use crate::shardkv::OwnShardKv;
use nodes::shardctrler::NSHARDS;
use nodes::shardkv::key2shard;
use rand::Rng;
use sim::net::old;
use sim::Failure;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// The budget of each old test: the course's have none but `go test`'s 10 minutes.
const BUDGET: Duration = Duration::from_secs(600);

/// A replica snapshots (the course's `Done`) once its Paxos state passes this many bytes.
pub const MAXSTATE: i64 = 10_000;

type Cluster = ShardCluster<PaxosEngine, OwnShardKv>;

/// The family: the old lab 4B tests and the later shardkv suite on Paxos, with the group
/// server's planted bugs and the Paxos engine's (`forget-promise`).
pub fn family() -> Family {
    let course = crate::shardkv::conformance::<PaxosEngine, OwnShardKv>("shardkv_paxos");
    let s = |name, description, run| Scenario::new(name, description, BUDGET, run).with_client_history();
    let old = vec![
        s(
            "shardkv_paxos::basic_4b",
            "TestBasic (2015): join 0; 10 keys read and rewritten after joining 1, 2 and after leaving 0, 1",
            |o| Box::pin(basic(o)),
        ),
        s(
            "shardkv_paxos::move_4b",
            "TestMove (2015): one key per shard; join 1; group 0 deaf: between 4 and 5 of 10 Gets answer",
            |o| Box::pin(move_shards(o, false)),
        ),
        s(
            "shardkv_paxos::move_strict_4b",
            "move_4b, and exactly the shards the live group owns answer (the old check is the open interval 3..6)",
            |o| Box::pin(move_shards(o, true)),
        ),
        s(
            "shardkv_paxos::limp_4b",
            "TestLimp (2015): one replica of every group killed; joins, then leaves with the leaving group killed after 2 s",
            |o| Box::pin(limp(o)),
        ),
        s(
            "shardkv_paxos::concurrent_4b",
            "TestConcurrent (2015): 11 clerks append, read back and move random shards to random groups",
            |o| Box::pin(concurrent(o, false)),
        ),
        s(
            "shardkv_paxos::concurrent_unreliable_4b",
            "TestConcurrentUnreliable (2015): concurrent_4b with every group server unreliable",
            |o| Box::pin(concurrent(o, true)),
        ),
    ];
    course
        .with_scenarios(old)
        .with_marks(sim::WORLD_MARKS)
        .with_marks(sim::HOLD_MARKS)
        .with_marks(nodes::replica::MARKS)
        .with_marks(crate::shardkv::swarm::MARKS)
        .with_marks(crate::engine::swarm_fault_point_marks::<PaxosEngine>())
}

/// `setup(tag, unreliable)`: 3 masters and 3 groups of 3 on the old network mode, groups
/// unreliable if asked, nothing joined.
fn setup(name: &'static str, unreliable: bool, opts: &Opts) -> Cluster {
    let cfg = ShardCluster::new(name, 3, false, MAXSTATE, opts.bug.as_deref()).attaching_history(opts.attach_history);
    old::set_old_mode(true);
    if unreliable {
        for g in &cfg.groups {
            for &s in &g.servers {
                old::set_unreliable(s, true);
            }
        }
    }
    cfg
}

async fn sleep_s(s: u64) {
    sim::sleep(Duration::from_secs(s)).await;
}

/// The course's `strconv.Itoa(rand.Int())`.
fn rand_int(cfg: &mut Cluster) -> String {
    cfg.rng.gen::<u32>().to_string()
}

/// Reads every key (it must hold its last value) and rewrites it with a fresh random value.
async fn check_and_rewrite(
    cfg: &mut Cluster,
    ck: &mut ShardKvClerk,
    keys: &[String],
    vals: &mut [String],
) -> Result<(), Failure> {
    for i in 0..keys.len() {
        check(ck, &keys[i], &vals[i]).await?;
        vals[i] = rand_int(cfg);
        ck.put(&keys[i], &vals[i]).await;
    }
    Ok(())
}

/// TestBasic ("Basic Join/Leave"). Goal: data follows shards as groups join and leave.
/// Steps: join 0; Put a=x, Append a b, Get a == "xb"; 10 random keys Put; for groups 1, 2:
/// join, sleep 1 s, read every key and rewrite it; for groups 0, 1: leave, sleep 1 s, read
/// and rewrite.
async fn basic(opts: Opts) -> Result<(), Failure> {
    let mut cfg = setup("shardkv_paxos::basic_4b", false, &opts);
    cfg.join(0).await?;
    let mut ck = cfg.make_client();
    ck.put("a", "x").await;
    ck.append("a", "b").await;
    check(&mut ck, "a", "xb").await?;
    let keys: Vec<String> = (0..10).map(|_| rand_int(&mut cfg)).collect();
    let mut vals: Vec<String> = (0..10).map(|_| rand_int(&mut cfg)).collect();
    for i in 0..keys.len() {
        ck.put(&keys[i], &vals[i]).await;
    }
    for g in 1..3 {
        cfg.join(g).await?;
        sleep_s(1).await;
        check_and_rewrite(&mut cfg, &mut ck, &keys, &mut vals).await?;
    }
    for g in 0..2 {
        cfg.leave(g).await?;
        sleep_s(1).await;
        check_and_rewrite(&mut cfg, &mut ck, &keys, &mut vals).await?;
    }
    cfg.finish()
}

/// TestMove ("Shards really move"). Goal: a joined group really takes over shards, so they
/// are served with the old group unreachable. Steps: join 0; Put key `'0'+i` = itself for
/// i in 0..10 (one key per shard); join 1; sleep 5 s; every key still there; make group 0's
/// servers deaf; 10 fresh clerks each Get one key; after 10 s, 3 < answered < 6. `strict`:
/// the keys that answered are exactly those of the shards group 1 owns in the latest
/// configuration (5 of a 5/5 split).
async fn move_shards(opts: Opts, strict: bool) -> Result<(), Failure> {
    let name = if strict { "shardkv_paxos::move_strict_4b" } else { "shardkv_paxos::move_4b" };
    let mut cfg = setup(name, false, &opts);
    cfg.join(0).await?;
    let mut ck = cfg.make_client();
    let key = |i: usize| char::from(b'0' + i as u8).to_string();
    for i in 0..NSHARDS {
        ck.put(&key(i), &key(i)).await;
    }
    cfg.join(1).await?;
    sleep_s(5).await;
    for i in 0..NSHARDS {
        check(&mut ck, &key(i), &key(i)).await?;
    }
    for &s in &cfg.groups[0].servers {
        old::set_deaf(s, true);
    }
    let answered: Rc<RefCell<Vec<usize>>> = Rc::default();
    let wrong: Rc<RefCell<Option<Failure>>> = Rc::default();
    for i in 0..NSHARDS {
        let mut myck = cfg.make_client();
        let (answered, wrong) = (answered.clone(), wrong.clone());
        sim::spawn(async move {
            let v = myck.get(&key(i)).await;
            if v == key(i) {
                answered.borrow_mut().push(i);
            } else {
                wrong
                    .borrow_mut()
                    .get_or_insert(Failure::safety("shardkv_paxos::move", format!("Get({i}) yielded {v:?}")));
            }
        });
    }
    sleep_s(10).await;
    if let Some(f) = wrong.borrow_mut().take() {
        return Err(f);
    }
    let got = answered.borrow().clone();
    let count = got.len();
    if !(count > NSHARDS / 3 && count < 2 * (NSHARDS / 3)) {
        return Err(Failure::safety(
            "shardkv_paxos::move",
            format!("{count} keys worked after killing 1/2 of groups; wanted {}", NSHARDS / 2),
        ));
    }
    if strict {
        let c = cfg.query().await;
        let gid1 = cfg.groups[1].gid;
        let mut want: Vec<usize> = (0..NSHARDS).filter(|&i| c.shards[key2shard(&key(i))] == gid1).collect();
        let mut got = got;
        want.sort_unstable();
        got.sort_unstable();
        if got != want {
            return Err(Failure::safety(
                "shardkv_paxos::move",
                format!("the keys {got:?} answered, but group {gid1} owns the shards of {want:?}"),
            ));
        }
    }
    cfg.finish()
}

/// TestLimp ("Reconfiguration with some dead replicas"). Goal: groups with one replica dead
/// still reconfigure, and a leaving group hands its shards off within 2 s with 2 of 3
/// replicas. Steps: join 0; Put a=b, read it; kill one random replica of every group; 10
/// random keys Put; join 1, 2 (sleep 1 s each, read and rewrite every key); leave 0, 1, each
/// followed by 2 s, killing every replica of the leaving group, and reading and rewriting
/// every key.
async fn limp(opts: Opts) -> Result<(), Failure> {
    let mut cfg = setup("shardkv_paxos::limp_4b", false, &opts);
    cfg.join(0).await?;
    let mut ck = cfg.make_client();
    ck.put("a", "b").await;
    check(&mut ck, "a", "b").await?;
    for gi in 0..cfg.groups.len() {
        let ns = cfg.groups[gi].servers.len();
        let victim = cfg.rng.gen_range(0..ns);
        cfg.shutdown_server(gi, victim);
    }
    let keys: Vec<String> = (0..10).map(|_| rand_int(&mut cfg)).collect();
    let mut vals: Vec<String> = (0..10).map(|_| rand_int(&mut cfg)).collect();
    for i in 0..keys.len() {
        ck.put(&keys[i], &vals[i]).await;
    }
    for g in 1..3 {
        cfg.join(g).await?;
        sleep_s(1).await;
        check_and_rewrite(&mut cfg, &mut ck, &keys, &mut vals).await?;
    }
    for gi in 0..2 {
        cfg.leave(gi).await?;
        sleep_s(2).await;
        cfg.shutdown_group(gi);
        check_and_rewrite(&mut cfg, &mut ck, &keys, &mut vals).await?;
    }
    cfg.finish()
}

/// TestConcurrent / TestConcurrentUnreliable ("Concurrent Put/Get/Move"). Goal: clerks keep
/// their own keys right while shards move under them. Steps: join all 3 groups; 11 clerks,
/// each with key = its index and 3 iterations: Append a random value, Get must equal every
/// value appended so far, Move a random shard to a random group through its own master
/// clerk, sleep 0–29 ms. `unreliable`: every group server unreliable.
async fn concurrent(opts: Opts, unreliable: bool) -> Result<(), Failure> {
    let name = if unreliable { "shardkv_paxos::concurrent_unreliable_4b" } else { "shardkv_paxos::concurrent_4b" };
    let mut cfg = setup(name, unreliable, &opts);
    for gi in 0..3 {
        cfg.join(gi).await?;
    }
    const NPARA: usize = 11;
    let gids: Vec<u64> = cfg.groups.iter().map(|g| g.gid).collect();
    let done = Rc::new(Cell::new(0usize));
    let fail: Rc<RefCell<Option<Failure>>> = Rc::default();
    for me in 0..NPARA {
        let mut ck = cfg.make_client();
        let mut mymck = cfg.ctrler.make_client();
        let mut rng = sim::rng(&format!("shardkv-paxos-concurrent-{me}"));
        let (done, fail, gids) = (done.clone(), fail.clone(), gids.clone());
        sim::spawn(async move {
            let key = me.to_string();
            let mut last = String::new();
            for _ in 0..3 {
                let nv = rng.gen::<u32>().to_string();
                ck.append(&key, &nv).await;
                last += &nv;
                if let Err(f) = check(&mut ck, &key, &last).await {
                    fail.borrow_mut().get_or_insert(f);
                    break;
                }
                let gid = gids[rng.gen_range(0..gids.len())];
                // The old test ignores what Move answers.
                let _ = mymck.move_shard(rng.gen_range(0..NSHARDS), gid).await;
                sim::sleep(Duration::from_millis(rng.gen_range(0..30))).await;
            }
            done.set(done.get() + 1);
        });
    }
    while done.get() < NPARA {
        if let Some(f) = fail.borrow_mut().take() {
            return Err(f);
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    if let Some(f) = fail.borrow_mut().take() {
        return Err(f);
    }
    cfg.finish()
}
