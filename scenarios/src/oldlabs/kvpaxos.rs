//! Lab 3B (2015): the key/value service on Paxos — every test of reference
//! `6824-old-labs.md` §5.3 on the old network mode, and beside them the whole kvraft suite
//! (the course's 23 later tests and the swarm) run through the kvraft tester on the Paxos
//! engine instead of Raft: one suite, two engines.
//!
//! Both halves run simlab's key/value server and clerk ([`OwnKv`]) over the Paxos log
//! ([`PaxosEngine`], `cores::paxos_log`): any server proposes, in the next free instance;
//! decided instances apply in order; a server behind fills holes with no-ops. Every client
//! history is judged linearizable, every apply checked against every other replica's
//! (`state-machine-safety`: no two servers apply different commands at one index).
//!
//! Port decisions (reference §5.4, §8):
//! - The course's servers call `Done` after every instance; here `Done` is the snapshot the
//!   server takes once the engine's persisted state passes [`MAXSTATE`] bytes (snapshotting
//!   after every operation would re-encode the whole store each time).
//! - TestDone's Go heap reading becomes the bytes each replica's Paxos state retains (its
//!   persisted acceptor state, one record per instance kept), summed over the 3 replicas —
//!   the course's bound minus the live data it allows for.
//! - A clerk "with only server i" (`cka[i]`) reaches only that server; its calls to the
//!   others fail at once, as dials of a missing socket do.
//! - TestManyPartition asserts only what its clients check, and its clients finish while the
//!   network stays unreliable; `many_partition_strict_3b` also fails a client that cannot
//!   finish within 30 simulated seconds of the last partition.
//! - Where the kvraft scenarios name a leader (`one_partition_3a`, the swarm's roles), the
//!   Paxos engine's leader is the proposer whose command applied last (the engine's
//!   `get_state`); 3B's size bound applies to what each server keeps after its own `Done`.

use crate::engine::{PaxosEngine, TestEngine, PAXOS_ENGINE_BUGS};
use crate::kvraft::tester::{check_clnt_appends, check_get, KvClerk, KvCluster};
use crate::kvraft::OwnKv;
use crate::registry::{Family, Opts, Scenario};
use cores::rsm::RsmBugs;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::net::old;
use sim::{Failure, NodeId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// The budget of each old test: the course's have none but `go test`'s 10 minutes.
const BUDGET: Duration = Duration::from_secs(600);

/// A server snapshots (and so calls `Done`) once its engine state passes this many bytes.
pub const MAXSTATE: i64 = 10_000;

/// TestDone's bound on retained Paxos bytes over all three replicas: the course's heap bound
/// `3 × 10 × 1e6 × 2` less the 30 MB of live data (3 replicas × 10 keys × 1 MB) it allows for.
pub const DONE_RETAINED_BOUND: usize = 3 * 10 * 1_000_000 * 2 - 3 * 10 * 1_000_000;

type Cluster = KvCluster<PaxosEngine, OwnKv>;
type Ck = KvClerk;

/// The family: the old lab 3B tests and the kvraft suite on Paxos, with the key/value
/// server's planted bugs and the Paxos engine's (`forget-promise`).
pub fn family() -> Family {
    let course = crate::kvraft::conformance::<PaxosEngine, OwnKv>("kvpaxos");
    let s = |name, description, run| Scenario::new(name, description, BUDGET, run).with_client_history();
    let old = vec![
        s("kvpaxos::basic_3b", "put/append/get through one or all servers; 20 rounds of 15 concurrent clients", |o| {
            Box::pin(basic(o))
        }),
        s("kvpaxos::done_3b", "20 puts of 1 MB: the servers free their Paxos state (retained bytes bounded)", |o| {
            Box::pin(done(o))
        }),
        s(
            "kvpaxos::partition_3b",
            "progress in a majority, none in a minority; a minority Put completes after heal, after 16",
            |o| Box::pin(partition(o)),
        ),
        s(
            "kvpaxos::unreliable_3b",
            "unreliable servers: sequences of appends, concurrent clients, concurrent appends to one key",
            |o| Box::pin(unreliable(o)),
        ),
        s("kvpaxos::hole_3b", "a majority makes progress past instances a cut-off minority left half-proposed", |o| {
            Box::pin(hole(o))
        }),
        s(
            "kvpaxos::many_partition_3b",
            "10 clients, partitions changing every 0-200 ms on an unreliable network for 20 s",
            |o| Box::pin(many_partition(o, false)),
        ),
        s(
            "kvpaxos::many_partition_strict_3b",
            "many_partition_3b, and every client must finish within 30 s after the partitions stop",
            |o| Box::pin(many_partition(o, true)),
        ),
        s(
            "kvpaxos::restart_storm_3b",
            "beyond the course: 6 clerks pinned to 3 unreliable servers contend while servers crash and restart at once",
            |o| Box::pin(restart_storm(o)),
        ),
    ];
    course
        .with_scenarios(old)
        .with_marks(sim::WORLD_MARKS)
        .with_marks(sim::HOLD_MARKS)
        .with_marks(nodes::replica::MARKS)
        // The rsm's retry-after-snapshot mark; not its stepped-down mark, which counts steps
        // at which a replica that is not its engine's leader has requests waiting: every
        // Paxos server proposes, so that says nothing here.
        .with_marks(nodes::rsm::MARKS.into_iter().filter(|&(mark, _)| mark == nodes::rsm::RETRY_AFTER_SNAPSHOT))
        .with_marks(crate::engine::swarm_fault_point_marks::<PaxosEngine>())
}

/// The old tests' cluster: `n` servers on the old network mode, snapshotting past
/// [`MAXSTATE`], with the run's planted bug switched on where it belongs.
fn cluster(name: &'static str, n: usize, opts: &Opts) -> Cluster {
    let bug = opts.bug.as_deref();
    let rsm = bug.and_then(RsmBugs::from_name).unwrap_or_default();
    let engine_bug = bug.filter(|b| PAXOS_ENGINE_BUGS.iter().any(|(x, _)| x == b));
    if let Some(b) = bug {
        assert!(RsmBugs::from_name(b).is_some() || engine_bug.is_some(), "unknown kvpaxos bug {b}");
    }
    let cfg = KvCluster::with_engine(name, n, false, MAXSTATE, rsm, PaxosEngine::config(n, engine_bug))
        .attaching_history(opts.attach_history);
    old::set_old_mode(true);
    cfg
}

/// `part(p1, p2, p3)` over the cluster's servers.
fn part(cfg: &Cluster, groups: &[&[usize]]) {
    let nodes: Vec<Vec<NodeId>> = groups.iter().map(|g| g.iter().map(|&i| cfg.servers[i]).collect()).collect();
    let refs: Vec<&[NodeId]> = nodes.iter().map(|g| g.as_slice()).collect();
    old::part(&cfg.servers, &refs);
}

fn set_unreliable(cfg: &Cluster, on: bool) {
    for &s in &cfg.servers {
        old::set_unreliable(s, on);
    }
}

/// A clerk with every server, in a random order (the course's shuffled `sa`).
fn shuffled(cfg: &mut Cluster) -> Ck {
    let all = cfg.all();
    cfg.make_client(&all)
}

/// Waits until `flag` is set or `limit` passes; returns whether it was set.
async fn wait_flag(flag: &Cell<bool>, limit: Duration) -> bool {
    let t0 = sim::now();
    while !flag.get() {
        if sim::now() - t0 >= limit {
            return false;
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// The first failure a client task reported (the course's `t.Fatalf` in a goroutine).
type Fail = Rc<RefCell<Option<Failure>>>;

fn report(fail: &Fail, f: Failure) {
    fail.borrow_mut().get_or_insert(f);
}

fn take(fail: &Fail) -> Result<(), Failure> {
    match fail.borrow_mut().take() {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Waits for `n` clients to finish (each sets its slot), failing on the first reported error.
async fn join(done: &RefCell<Vec<bool>>, fail: &Fail) -> Result<(), Failure> {
    while !done.borrow().iter().all(|d| *d) {
        take(fail)?;
        sim::sleep(Duration::from_millis(10)).await;
    }
    take(fail)
}

/// A random string of `n` printable characters from `rng` (the course's `randstring`).
fn randstring(rng: &mut ChaCha8Rng, n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

/// TestBasic. Goal: appends, puts and gets agree whichever server serves them, and
/// concurrent clients leave every server with the same value. Steps: Append app x, y; Put
/// a=aa; Put a=aaa through server 1; read through 2, 1 and all; then 20 rounds of 15
/// clients, each on one random server, putting or reading "b"; after each round every
/// server reads the same "b".
async fn basic(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster("kvpaxos::basic_3b", 3, &opts);
    let mut ck = shuffled(&mut cfg);
    let mut cka: Vec<Ck> = (0..3).map(|i| cfg.make_client(&[i])).collect();
    ck.append("app", "x").await;
    ck.append("app", "y").await;
    check_get(&mut ck, "app", "xy").await?;
    ck.put("a", "aa").await;
    check_get(&mut ck, "a", "aa").await?;
    cka[1].put("a", "aaa").await;
    check_get(&mut cka[2], "a", "aaa").await?;
    check_get(&mut cka[1], "a", "aaa").await?;
    check_get(&mut ck, "a", "aaa").await?;
    concurrent_rounds(&mut cfg, &mut cka, 20, |rng| vec![rng.gen_range(0..3)]).await?;
    cfg.check_linearizable()
}

/// `rounds` rounds of 15 clients Putting or Getting "b", each through the servers `pick`
/// draws; after each round every server reads the same "b".
async fn concurrent_rounds(
    cfg: &mut Cluster,
    cka: &mut [Ck],
    rounds: usize,
    pick: impl Fn(&mut ChaCha8Rng) -> Vec<usize>,
) -> Result<(), Failure> {
    const NPARA: usize = 15;
    let mut rng = sim::rng("kvpaxos-concurrent");
    for _ in 0..rounds {
        let done = Rc::new(RefCell::new(vec![false; NPARA]));
        let fail: Fail = Rc::default();
        for nth in 0..NPARA {
            let to = pick(&mut rng);
            let mut myck = cfg.make_client(&to);
            let mut r = sim::rng(&format!("kvpaxos-client-{}", myck.node.0));
            let done = done.clone();
            sim::spawn(async move {
                if r.gen_range(0..1000) < 500 {
                    myck.put("b", &r.gen::<u32>().to_string()).await;
                } else {
                    myck.get("b").await;
                }
                done.borrow_mut()[nth] = true;
            });
        }
        join(&done, &fail).await?;
        let mut vals = Vec::new();
        for ck in cka.iter_mut() {
            vals.push(ck.get("b").await);
        }
        if vals.iter().any(|v| v != &vals[0]) {
            return Err(Failure::safety("kvpaxos::concurrent", format!("servers disagree on b: {vals:?}")));
        }
    }
    Ok(())
}

/// The bytes of Paxos state each server retains (its persisted acceptor records).
fn retained_bytes(cfg: &Cluster) -> Vec<usize> {
    cfg.servers.iter().map(|&n| sim::persisted(n).state.len()).collect()
}

/// TestDone. Goal: servers free their Paxos log once applied (the course reads the Go heap;
/// here the retained Paxos bytes of all three replicas). Steps: Put a=aa; two rounds of ten
/// 1 MB Puts, each checked through server i % 3; two rounds of Put a=aa through every
/// server; sleep 1 s. The retained bytes summed over the replicas must stay within the
/// course's heap allowance less the live data ([`DONE_RETAINED_BOUND`]).
async fn done(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster("kvpaxos::done_3b", 3, &opts);
    let mut ck = shuffled(&mut cfg);
    let mut cka: Vec<Ck> = (0..3).map(|i| cfg.make_client(&[i])).collect();
    ck.put("a", "aa").await;
    check_get(&mut ck, "a", "aa").await?;
    let mut rng = sim::rng("kvpaxos-done");
    for _ in 0..2 {
        for i in 0..10 {
            let v = randstring(&mut rng, 1_000_000);
            ck.put(&i.to_string(), &v).await;
            check_get(&mut cka[i % 3], &i.to_string(), &v).await?;
        }
    }
    for _ in 0..2 {
        for ck in cka.iter_mut() {
            ck.put("a", "aa").await;
            check_get(ck, "a", "aa").await?;
        }
    }
    sim::sleep(Duration::from_secs(1)).await;
    let kept = retained_bytes(&cfg);
    let total: usize = kept.iter().sum();
    sim::describe(format!("retained Paxos bytes per replica: {kept:?}"));
    if total > DONE_RETAINED_BOUND {
        return Err(Failure::safety(
            "kvpaxos::done",
            format!("replicas retain {total} bytes of Paxos state ({kept:?}), bound {DONE_RETAINED_BOUND}"),
        ));
    }
    cfg.check_linearizable()
}

/// TestPartition. Goal: a majority makes progress, a minority completes nothing, and a
/// minority's Put completes after it rejoins, ordered after what the majority did. Steps
/// (5 servers): Put 1=12, 1=13; part {2,3,4} | {0,1}: Put 1=14 in the majority; a Put 1=15
/// through server 0 and a Get through server 1 must not finish within 1 s; Put 1=16; part
/// {0,2,3,4} | {1}: the Put finishes within 3 s, the Get does not, 1 reads 15; part {0,1,2}
/// | {3,4}: the Get finishes within 10 s; server 1 reads 15.
async fn partition(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster("kvpaxos::partition_3b", 5, &opts);
    let mut cka: Vec<Ck> = (0..5).map(|i| cfg.make_client(&[i])).collect();
    part(&cfg, &[&[0, 1, 2, 3, 4]]);
    cka[0].put("1", "12").await;
    cka[2].put("1", "13").await;
    check_get(&mut cka[3], "1", "13").await?;
    part(&cfg, &[&[2, 3, 4], &[0, 1]]);
    cka[2].put("1", "14").await;
    check_get(&mut cka[4], "1", "14").await?;
    let put_done = Rc::new(Cell::new(false));
    let get_done = Rc::new(Cell::new(false));
    let got: Rc<RefCell<Option<String>>> = Rc::default();
    {
        let mut c0 = cfg.make_client(&[0]);
        let d = put_done.clone();
        sim::spawn(async move {
            c0.put("1", "15").await;
            d.set(true);
        });
        let mut c1 = cfg.make_client(&[1]);
        let (d, got) = (get_done.clone(), got.clone());
        sim::spawn(async move {
            let v = c1.get("1").await;
            *got.borrow_mut() = Some(v);
            d.set(true);
        });
    }
    sim::sleep(Duration::from_secs(1)).await;
    if put_done.get() || get_done.get() {
        return Err(Failure::safety("kvpaxos::partition", "a Put or Get in the minority completed"));
    }
    check_get(&mut cka[4], "1", "14").await?;
    cka[3].put("1", "16").await;
    check_get(&mut cka[4], "1", "16").await?;
    part(&cfg, &[&[0, 2, 3, 4], &[1]]);
    if !wait_flag(&put_done, Duration::from_secs(3)).await {
        return Err(Failure::liveness(
            "kvpaxos::partition",
            "the Put did not complete within 3 s of joining a majority",
        ));
    }
    if get_done.get() {
        return Err(Failure::safety("kvpaxos::partition", "the Get completed while its server is alone"));
    }
    check_get(&mut cka[4], "1", "15").await?;
    check_get(&mut cka[0], "1", "15").await?;
    part(&cfg, &[&[0, 1, 2], &[3, 4]]);
    if !wait_flag(&get_done, Duration::from_secs(10)).await {
        return Err(Failure::liveness("kvpaxos::partition", "the Get did not complete within 10 s of healing"));
    }
    check_get(&mut cka[1], "1", "15").await?;
    cfg.check_linearizable()
}

/// TestUnreliable. Goal: exactly-once operations while every server loses 10 % of requests
/// and 18 % of replies. Steps (3 servers, all unreliable): Put a=aa, Put a=aaa through
/// server 1, read it through 2, 1 and all; 6 rounds of 5 clients (shuffled servers) each
/// reading its key, appending 0, 1, 2, and reading the predicted value twice; 20 rounds of
/// 15 shuffled clients putting or reading "b", all servers agreeing after each; Put k="",
/// then 5 clients append 5 elements each to k: each appears once, in order, and every
/// server reads the same k.
async fn unreliable(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster("kvpaxos::unreliable_3b", 3, &opts);
    set_unreliable(&cfg, true);
    let mut ck = shuffled(&mut cfg);
    let mut cka: Vec<Ck> = (0..3).map(|i| cfg.make_client(&[i])).collect();
    // Basic put/get.
    ck.put("a", "aa").await;
    check_get(&mut ck, "a", "aa").await?;
    cka[1].put("a", "aaa").await;
    check_get(&mut cka[2], "a", "aaa").await?;
    check_get(&mut cka[1], "a", "aaa").await?;
    check_get(&mut ck, "a", "aaa").await?;
    // Sequence of puts.
    for _ in 0..6 {
        const NCLI: usize = 5;
        let done = Rc::new(RefCell::new(vec![false; NCLI]));
        let fail: Fail = Rc::default();
        for cli in 0..NCLI {
            let mut myck = shuffled(&mut cfg);
            let (done, fail) = (done.clone(), fail.clone());
            sim::spawn(async move {
                let key = cli.to_string();
                let mut vv = myck.get(&key).await;
                for e in ["0", "1", "2"] {
                    myck.append(&key, e).await;
                    vv.push_str(e);
                }
                sim::sleep(Duration::from_millis(100)).await;
                for _ in 0..2 {
                    if myck.get(&key).await != vv {
                        report(&fail, Failure::safety("kvpaxos::unreliable", format!("wrong value for key {key}")));
                    }
                }
                done.borrow_mut()[cli] = true;
            });
        }
        join(&done, &fail).await?;
    }
    // Concurrent clients.
    concurrent_rounds(&mut cfg, &mut cka, 20, |_| vec![0, 1, 2]).await?;
    // Concurrent Append to same key.
    ck.put("k", "").await;
    const NCLI: usize = 5;
    const NAPPEND: usize = 5;
    let done = Rc::new(RefCell::new(vec![false; NCLI]));
    let fail: Fail = Rc::default();
    for me in 0..NCLI {
        let mut myck = shuffled(&mut cfg);
        let done = done.clone();
        sim::spawn(async move {
            for n in 0..NAPPEND {
                myck.append("k", &format!("x {me} {n} y")).await;
            }
            done.borrow_mut()[me] = true;
        });
    }
    join(&done, &fail).await?;
    let v = ck.get("k").await;
    for me in 0..NCLI {
        check_clnt_appends(me, &v, NAPPEND)?;
    }
    for ck in cka.iter_mut() {
        let vi = ck.get("k").await;
        if vi != v {
            return Err(Failure::safety("kvpaxos::unreliable", "servers disagree on k after concurrent appends"));
        }
    }
    cfg.check_linearizable()
}

/// TestHole. Goal: a majority makes progress past instances a cut-off minority left
/// half-proposed. Steps, 5 rounds (5 servers): heal; Put q=q through server 2; 10 clients,
/// each on its own key through servers 0 and 1 only, put or read (reads must see their last
/// put); after 3 s, part {2,3,4} | {0,1}; through server 2, q reads q, Put q=qq, reads qq;
/// heal; stop the clients, which must all finish correctly; q reads qq.
async fn hole(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster("kvpaxos::hole_3b", 5, &opts);
    let all = [0, 1, 2, 3, 4];
    for iters in 0..5 {
        part(&cfg, &[&all]);
        let mut ck2 = cfg.make_client(&[2]);
        ck2.put("q", "q").await;
        let stop = Rc::new(Cell::new(false));
        const NCLI: usize = 10;
        let done = Rc::new(RefCell::new(vec![false; NCLI]));
        let fail: Fail = Rc::default();
        for cli in 0..NCLI {
            let mut cka = [cfg.make_client(&[0]), cfg.make_client(&[1])];
            let mut rng = sim::rng(&format!("kvpaxos-hole-{iters}-{cli}"));
            let (stop, done, fail) = (stop.clone(), done.clone(), fail.clone());
            sim::spawn(async move {
                let key = cli.to_string();
                let mut last = String::new();
                cka[0].put(&key, &last).await;
                while !stop.get() {
                    let ci = rng.gen_range(0..2);
                    if rng.gen_range(0..1000) < 500 {
                        let nv = rng.gen::<u32>().to_string();
                        cka[ci].put(&key, &nv).await;
                        last = nv;
                    } else {
                        let v = cka[ci].get(&key).await;
                        if v != last {
                            report(
                                &fail,
                                Failure::safety(
                                    "kvpaxos::hole",
                                    format!("key {key}: wrong value {v:?}, expected {last:?}"),
                                ),
                            );
                            break;
                        }
                    }
                }
                done.borrow_mut()[cli] = true;
            });
        }
        sim::sleep(Duration::from_secs(3)).await;
        part(&cfg, &[&[2, 3, 4], &[0, 1]]);
        // Can the majority partition make progress even though minority servers were
        // interrupted in the middle of Paxos agreements?
        check_get(&mut ck2, "q", "q").await?;
        ck2.put("q", "qq").await;
        check_get(&mut ck2, "q", "qq").await?;
        // Restore network, wait for all threads to exit.
        part(&cfg, &[&all]);
        stop.set(true);
        join(&done, &fail).await?;
        check_get(&mut ck2, "q", "qq").await?;
    }
    cfg.check_linearizable()
}

/// TestManyPartition. Goal: clients stay correct while partitions change every 0–200 ms on
/// an unreliable network. Steps (5 servers, all unreliable): 10 clients on shuffled servers,
/// each on its own key, append or read (reads must see every append); after 20 s the
/// partitioner stops and the servers heal (still unreliable); every client finishes. The
/// course fails only when a client's read is wrong; `strict` also fails a client that does
/// not finish within 30 s of the heal.
async fn many_partition(opts: Opts, strict: bool) -> Result<(), Failure> {
    let name = if strict { "kvpaxos::many_partition_strict_3b" } else { "kvpaxos::many_partition_3b" };
    let mut cfg = cluster(name, 5, &opts);
    let all = [0, 1, 2, 3, 4];
    part(&cfg, &[&all]);
    set_unreliable(&cfg, true);
    let stop = Rc::new(Cell::new(false));
    let partitioner_done = Rc::new(Cell::new(false));
    {
        let (stop, pdone, servers) = (stop.clone(), partitioner_done.clone(), cfg.servers.clone());
        let mut rng = sim::rng("kvpaxos-partitioner");
        sim::spawn(async move {
            while !stop.get() {
                let mut groups: Vec<Vec<NodeId>> = vec![Vec::new(); 3];
                for &s in &servers {
                    groups[rng.gen_range(0..3)].push(s);
                }
                let refs: Vec<&[NodeId]> = groups.iter().map(|g| g.as_slice()).collect();
                old::part(&servers, &refs);
                sim::sleep(Duration::from_millis(rng.gen_range(0..200))).await;
            }
            pdone.set(true);
        });
    }
    const NCLI: usize = 10;
    let done = Rc::new(RefCell::new(vec![false; NCLI]));
    let fail: Fail = Rc::default();
    for cli in 0..NCLI {
        let mut myck = shuffled(&mut cfg);
        let mut rng = sim::rng(&format!("kvpaxos-many-partition-{cli}"));
        let (stop, done, fail) = (stop.clone(), done.clone(), fail.clone());
        sim::spawn(async move {
            let key = cli.to_string();
            let mut last = String::new();
            myck.put(&key, &last).await;
            while !stop.get() {
                if rng.gen_range(0..1000) < 500 {
                    let nv = rng.gen::<u32>().to_string();
                    myck.append(&key, &nv).await;
                    last.push_str(&nv);
                } else {
                    let v = myck.get(&key).await;
                    if v != last {
                        report(
                            &fail,
                            Failure::safety(
                                "kvpaxos::many-partition",
                                format!("key {key}: wrong value, {} bytes instead of {}", v.len(), last.len()),
                            ),
                        );
                        break;
                    }
                }
            }
            done.borrow_mut()[cli] = true;
        });
    }
    sim::sleep(Duration::from_secs(20)).await;
    stop.set(true);
    while !partitioner_done.get() {
        sim::sleep(Duration::from_millis(10)).await;
    }
    part(&cfg, &[&all]);
    let t0 = sim::now();
    while !done.borrow().iter().all(|d| *d) {
        take(&fail)?;
        if strict && sim::now() - t0 > Duration::from_secs(30) {
            let behind = done.borrow().iter().filter(|d| !**d).count();
            return Err(Failure::liveness(
                "kvpaxos::many-partition-finish",
                format!("{behind} of {NCLI} clients did not finish within 30 s after the partitions stopped"),
            ));
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    take(&fail)?;
    cfg.check_linearizable()
}

/// Beyond the course (its kvpaxos servers never restart): acceptors must keep their promises
/// across a restart. Goal: every instance keeps one value while proposers contend and
/// acceptors crash between a promise and the next Accept. Steps (3 unreliable servers,
/// snapshotting past [`MAXSTATE`]; lost decisions make servers fill holes, running Paxos
/// again on decided instances): 6 clerks, two pinned to each server, put and append to 3 shared keys for
/// 10 s, so every server proposes into the same instances; every 5–50 ms one random server
/// crashes and restarts from what it persisted 0–2 ms later. Then the crashes stop; every
/// clerk finishes within 30 s. Checked: every apply against every other replica's
/// (`state-machine-safety`), and the history's linearizability.
async fn restart_storm(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster("kvpaxos::restart_storm_3b", 3, &opts);
    set_unreliable(&cfg, true);
    let stop = Rc::new(Cell::new(false));
    const NCLI: usize = 6;
    let done = Rc::new(RefCell::new(vec![false; NCLI]));
    for cli in 0..NCLI {
        let mut myck = cfg.make_client(&[cli % 3]);
        myck.cli = cli as u64;
        let mut rng = sim::rng(&format!("kvpaxos-storm-{cli}"));
        let (stop, done) = (stop.clone(), done.clone());
        sim::spawn(async move {
            let mut j = 0;
            while !stop.get() {
                let key = rng.gen_range(0..3).to_string();
                if rng.gen_bool(0.5) {
                    myck.append(&key, &format!("x {cli} {j} y")).await;
                } else {
                    myck.put(&key, &format!("{cli}.{j}")).await;
                }
                j += 1;
            }
            done.borrow_mut()[cli] = true;
        });
    }
    let mut rng = sim::rng("kvpaxos-storm-crasher");
    let t0 = sim::now();
    while sim::now() - t0 < Duration::from_secs(10) {
        sim::sleep(Duration::from_millis(rng.gen_range(5..50))).await;
        let i = rng.gen_range(0..3);
        cfg.shutdown_server(i);
        sim::sleep(Duration::from_micros(rng.gen_range(0..2000))).await;
        cfg.start_server(i);
    }
    stop.set(true);
    let t1 = sim::now();
    while !done.borrow().iter().all(|d| *d) {
        if sim::now() - t1 > Duration::from_secs(30) {
            return Err(Failure::liveness(
                "kvpaxos::restart-storm",
                "clerks did not finish within 30 s of the last crash",
            ));
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    cfg.check_linearizable()
}
