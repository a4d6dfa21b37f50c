//! shardkv (lab 4B, with both challenges, and TestRejection of 2024's lab 5A): every test of
//! the course's suite as a scenario, with its groups, servers, faults, timings and bounds.
//! Unlike the course (which checks only TestUnreliable3, and passes it on a timeout), every
//! scenario records every clerk call and judges the whole history for linearizability, an
//! undecided history failing; and every configuration and every change of a group's shards
//! is judged as it happens (`crate::shards`).

pub mod swarm;
pub mod tester;

use crate::engine::{RaftEngine, TestEngine};
use crate::kvraft::KvClient;
use crate::kvraft::COURSE_LIMIT;
use crate::registry::{Family, Opts, Scenario, ScenarioFuture};
use crate::shardctrler::tester::CtrlerCluster;
use crate::shards::ShardJudge;
use cores::shardkv::ShardKvBugs;
use nodes::shardkv::key2shard;
use rand::Rng;
use sim::{net, Failure};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use tester::{check, ShardCluster, ShardKvClerk, SERVERS};
pub use tester::{OwnShardKv, ShardKvService};

pub fn family() -> Family {
    Family::new("shardkv")
        .with_bugs(ShardKvBugs::ALL.iter().copied())
        .with_bugs(RaftEngine::bugs())
        .with_scenarios(course::<RaftEngine>())
        .with_scenarios(swarm::scenarios())
        .with_marks(sim::WORLD_MARKS)
        .with_marks(sim::HOLD_MARKS)
        .with_marks(nodes::replica::MARKS)
        .with_marks(swarm::MARKS)
        // The controller's replicas are RSM servers: a leader of theirs steps down with
        // requests pending (426 of 1 000 swarm runs). Their other mark, a retry reaching a
        // replica restored from a snapshot, is not declared: the controller's clerks are the
        // groups' pollers and the swarm's joins, whose retries reached no restored replica
        // in those 1 000 runs.
        .with_marks(nodes::rsm::MARKS.into_iter().filter(|&(mark, _)| mark == nodes::rsm::STEP_DOWN_WITH_PENDING))
        .with_marks(sim::fault_point_marks())
}

fn scenario(name: &'static str, description: &'static str, run: fn(Opts) -> ScenarioFuture) -> Scenario {
    Scenario::new(name, description, COURSE_LIMIT, run).with_client_history()
}

/// The whole shardkv suite — the course's lab 4B tests, both challenges, TestRejection and
/// the swarm, every history judged for linearizability and every configuration by the shard
/// judge — on a sharded key/value service `S` of one's own (its group server and clerk) over
/// engine `E` (simlab's Raft, or one's own through `nodes::course`), on simlab's shard
/// controller, as a family named `family` whose planted bugs are the service's and the
/// engine's. Scenario names keep their suffix (`<family>::join_leave_4b`). Each run says which
/// shard checks ran (`shard checks: …`): the ownership checks need the service's servers to
/// report their shard changes ([`ShardKvService`]).
pub fn conformance<E: TestEngine, S: ShardKvService>(family: &'static str) -> Family {
    let mut scenarios = service_course::<E, S>();
    scenarios.extend(swarm::scenarios_on::<E, S>());
    let scenarios = scenarios.into_iter().map(|sc| {
        let suffix = sc.name.strip_prefix("shardkv::").expect("shardkv scenarios are named shardkv::…");
        // The catalogue lives for the whole process: a name built once is leaked once.
        sc.renamed(Box::leak(format!("{family}::{suffix}").into_boxed_str()))
    });
    let mut bugs = S::bugs();
    bugs.extend(E::bugs());
    Family::new(family).with_bugs(bugs).with_scenarios(scenarios)
}

/// The course's shardkv tests on engine `E`, with simlab's own service.
pub fn course<E: TestEngine>() -> Vec<Scenario> {
    service_course::<E, OwnShardKv>()
}

/// The course's shardkv tests with service `S` (a user's own group server and clerk) on
/// engine `E`.
pub fn service_course<E: TestEngine, S: ShardKvService>() -> Vec<Scenario> {
    vec![
        scenario(
            "shardkv::static_shards_4b",
            "TestStaticShards: 2 groups; with one shut down exactly 5 of 10 Gets complete; all after it restarts",
            |o| Box::pin(static_shards::<E, S>(o)),
        ),
        scenario(
            "shardkv::rejection_4b",
            "TestRejection (2024): clerks misled by a second controller; group 100 rejects the 5 keys it does not own",
            |o| Box::pin(rejection::<E, S>(o)),
        ),
        scenario(
            "shardkv::join_leave_4b",
            "TestJoinLeave: data follows shards on join and leave; still there with the first group shut down",
            |o| Box::pin(join_leave::<E, S>(o)),
        ),
        scenario(
            "shardkv::snapshot_4b",
            "TestSnapshot: 30 keys through joins and leaves with maxraftstate 1000, then every group restarted",
            |o| Box::pin(snapshot::<E, S>(o)),
        ),
        scenario(
            "shardkv::miss_change_4b",
            "TestMissChange: one server of every group down across several configuration changes catches up",
            |o| Box::pin(miss_change::<E, S>(o)),
        ),
        scenario(
            "shardkv::concurrent1_4b",
            "TestConcurrent1: appends during joins, leaves and every group restarted (maxraftstate 100)",
            |o| Box::pin(concurrent1::<E, S>(o)),
        ),
        scenario(
            "shardkv::concurrent2_4b",
            "TestConcurrent2: appends during configuration changes 3 s apart, two groups restarted",
            |o| Box::pin(concurrent2::<E, S>(o)),
        ),
        scenario(
            "shardkv::concurrent3_4b",
            "TestConcurrent3: 12 s of joins and leaves interleaved with restarting every group (maxraftstate 300)",
            |o| Box::pin(concurrent3::<E, S>(o)),
        ),
        scenario(
            "shardkv::unreliable1_4b",
            "TestUnreliable1: unreliable network, sequential checks and appends across moves",
            |o| Box::pin(unreliable1::<E, S>(o)),
        ),
        scenario(
            "shardkv::unreliable2_4b",
            "TestUnreliable2: unreliable network, concurrent appends across moves",
            |o| Box::pin(unreliable2::<E, S>(o)),
        ),
        scenario(
            "shardkv::unreliable3_4b",
            "TestUnreliable3: unreliable network, random gets, puts and appends across moves; linearizable",
            |o| Box::pin(unreliable3::<E, S>(o)),
        ),
        scenario(
            "shardkv::challenge1_delete_4b",
            "TestChallenge1Delete: shards deleted once moved: 9 servers persist at most 117 000 bytes",
            |o| Box::pin(challenge1_delete::<E, S>(o)),
        ),
        scenario(
            "shardkv::challenge2_unaffected_4b",
            "TestChallenge2Unaffected: shards owned before and after are served while a change is stuck",
            |o| Box::pin(challenge2_unaffected::<E, S>(o)),
        ),
        scenario(
            "shardkv::challenge2_partial_4b",
            "TestChallenge2Partial: shards that arrived are served while others never arrive",
            |o| Box::pin(challenge2_partial::<E, S>(o)),
        ),
    ]
}

/// The course's cluster: 3 groups of 3 servers, 3 controller servers.
fn cluster<E: TestEngine, S: ShardKvService>(
    name: &'static str,
    unreliable: bool,
    maxraftstate: i64,
    opts: &Opts,
) -> ShardCluster<E, S> {
    ShardCluster::new(opts.scenario_or(name), 3, unreliable, maxraftstate, opts.bug.as_deref())
        .attaching_history(opts.attach_history)
}

/// Keys "0".."n-1" (keys "0".."9" fall on shards 8, 9, 0, …, 7: one per shard), each Put a
/// random value of `len` characters through `ck`; returns the keys and values.
async fn put_keys<E: TestEngine, S: ShardKvService>(
    cfg: &mut ShardCluster<E, S>,
    ck: &mut ShardKvClerk<impl KvClient>,
    n: usize,
    len: usize,
) -> (Vec<String>, Vec<String>) {
    let mut ka = Vec::new();
    let mut va = Vec::new();
    for i in 0..n {
        ka.push(i.to_string());
        va.push(cfg.randstring(len));
        ck.put(&ka[i], &va[i]).await;
    }
    (ka, va)
}

/// For every key: check its value, then append `len` random characters to it.
async fn check_and_append<E: TestEngine, S: ShardKvService>(
    cfg: &mut ShardCluster<E, S>,
    ck: &mut ShardKvClerk<impl KvClient>,
    ka: &[String],
    va: &mut [String],
    len: usize,
) -> Result<(), Failure> {
    for i in 0..ka.len() {
        check(ck, &ka[i], &va[i]).await?;
        let x = cfg.randstring(len);
        ck.append(&ka[i], &x).await;
        va[i].push_str(&x);
    }
    Ok(())
}

async fn check_all(ck: &mut ShardKvClerk<impl KvClient>, ka: &[String], va: &[String]) -> Result<(), Failure> {
    for i in 0..ka.len() {
        check(ck, &ka[i], &va[i]).await?;
    }
    Ok(())
}

fn sleep_ms(ms: u64) -> sim::Sleep {
    sim::sleep(Duration::from_millis(ms))
}

/// Concurrent appenders, one per key, each with its own clerk, until `done`: the course's
/// `ff` goroutines. `pause_ms` between appends (0: none); `len` characters each.
struct Appenders {
    done: Rc<Cell<bool>>,
    finished: Rc<Cell<usize>>,
    values: Rc<RefCell<Vec<String>>>,
    n: usize,
}

impl Appenders {
    fn start<E: TestEngine, S: ShardKvService>(
        cfg: &mut ShardCluster<E, S>,
        ka: &[String],
        va: Vec<String>,
        len: usize,
        pause_ms: u64,
    ) -> Appenders {
        let a = Appenders {
            done: Rc::new(Cell::new(false)),
            finished: Rc::new(Cell::new(0)),
            values: Rc::new(RefCell::new(va)),
            n: ka.len(),
        };
        for (i, key) in ka.iter().enumerate() {
            let mut ck1 = cfg.make_client();
            ck1.cli = i as u64 + 1;
            let (done, finished, values, key) = (a.done.clone(), a.finished.clone(), a.values.clone(), key.clone());
            let mut rng = sim::rng(&format!("shardkv-appender-{i}"));
            sim::spawn(async move {
                while !done.get() {
                    let x: String =
                        (&mut rng).sample_iter(&rand::distributions::Alphanumeric).take(len).map(char::from).collect();
                    ck1.append(&key, &x).await;
                    values.borrow_mut()[i].push_str(&x);
                    if pause_ms > 0 {
                        sleep_ms(pause_ms).await;
                    }
                }
                finished.set(finished.get() + 1);
            });
        }
        a
    }

    /// Tells every appender to stop and waits for each to finish its current append.
    async fn stop(self) -> Vec<String> {
        self.done.set(true);
        while self.finished.get() < self.n {
            sleep_ms(10).await;
        }
        self.values.borrow().clone()
    }
}

/// TestStaticShards. Goal: the data really is sharded, and a group serves only its own
/// shards. Steps: join 100 and 101; put keys 0..9 (one per shard, 20 characters); check them;
/// shut 101 down; check the logs (no snapshots allowed); ten new clerks each Get one key;
/// count completions until 2 s pass with none: exactly 5 (101's five shards cannot answer);
/// restart 101; every key reads back. Traps: a group answering for shards it does not own,
/// or data that is not sharded.
async fn static_shards<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::static_shards_4b", false, -1, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    cfg.join(1).await?;
    let (ka, va) = put_keys(&mut cfg, &mut ck, 10, 20).await;
    check_all(&mut ck, &ka, &va).await?;
    // Make sure the data really is sharded by shutting down one group and checking that
    // some Gets don't succeed.
    cfg.shutdown_group(1);
    cfg.checklogs()?;
    let done = gets_in_quiet_window(&mut cfg, &ka, &va, None).await?;
    if done != 5 {
        return Err(Failure::safety(
            "shardkv::static",
            format!("expected 5 completions with one shard dead; got {done}"),
        ));
    }
    // Bring the crashed group back to life.
    cfg.start_group(1);
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// Ten new clerks (misled by `ctrler` if given) each Get one key; completions are counted
/// until 2 s pass with none (the course's select on the channel or a 2 s timer). A wrong
/// value fails the run; "" where a value was expected means a group answered for a shard it
/// should have rejected.
async fn gets_in_quiet_window<E: TestEngine, S: ShardKvService>(
    cfg: &mut ShardCluster<E, S>,
    ka: &[String],
    va: &[String],
    ctrler: Option<&mut CtrlerCluster<E>>,
) -> Result<usize, Failure> {
    // Each completion with its time.
    type Completions = Rc<RefCell<Vec<(Duration, Result<(), Failure>)>>>;
    let results: Completions = Rc::new(RefCell::new(Vec::new()));
    let mut ctrler = ctrler;
    for i in 0..ka.len() {
        // Only one call allowed per client.
        let mut ck1 = match ctrler.as_deref_mut() {
            None => cfg.make_client(),
            Some(other) => {
                let ctx = sim::client(&format!("misled{i}"));
                let mck = other.make_client_on(ctx);
                cfg.make_client_with(ctx, mck, 100 + i as u64)
            }
        };
        ck1.cli = 100 + i as u64;
        let (key, want, results) = (ka[i].clone(), va[i].clone(), results.clone());
        sim::spawn(async move {
            let v = ck1.get(&key).await;
            let r = if v == want {
                Ok(())
            } else if v.is_empty() {
                Err(Failure::safety(
                    "shardkv::get",
                    format!("Get({key:?}) returned a value when the server should have rejected it"),
                ))
            } else {
                Err(Failure::safety("shardkv::get", format!("Get({key:?}): expected {want:?}, received {v:?}")))
            };
            results.borrow_mut().push((sim::now(), r));
        });
    }
    // Wait until 2 s pass with no completion.
    let mut last = sim::now();
    loop {
        sim::sleep_until(last + Duration::from_secs(2)).await;
        let latest = results.borrow().iter().map(|(t, _)| *t).max().unwrap_or(last);
        if latest <= last {
            break;
        }
        last = latest;
    }
    let results = results.replace(Vec::new());
    for (_, r) in &results {
        r.clone()?;
    }
    Ok(results.len())
}

/// TestRejection (added in 2024 as TestRejection5A). Goal: a group rejects requests for
/// shards it does not own even when the clerk is sure it does. Steps: join 100 and 101; put
/// and check keys 0..9; start a second controller service that knows only group 100; ten
/// clerks using it each Get one key, all sent to group 100: it must reject the five keys of
/// 101's shards, so exactly 5 complete within the 2 s quiet window (a "" answer is flagged
/// as a request it should have rejected).
async fn rejection<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::rejection_4b", false, -1, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    cfg.join(1).await?;
    let (ka, va) = put_keys(&mut cfg, &mut ck, 10, 20).await;
    check_all(&mut ck, &ka, &va).await?;
    // A second controller service that knows only group 100; its configurations are its
    // own, judged apart from the real controller's.
    let raft_bug = crate::engine::engine_bug::<E>(opts.bug.as_deref());
    let mut other = CtrlerCluster::<E>::start_named(
        "ctrlerB",
        SERVERS,
        E::config(SERVERS, raft_bug),
        Rc::new(RefCell::new(ShardJudge::new())),
    );
    let mut mck = other.make_client();
    let args = cfg.join_args(&[0]);
    if mck.join(args).await != nodes::shardctrler::CtrlerOut::Ok {
        return Err(Failure::safety("shardkv::tester", "the second controller refused the join"));
    }
    let done = gets_in_quiet_window(&mut cfg, &ka, &va, Some(&mut other)).await?;
    if done != 5 {
        return Err(Failure::safety("shardkv::rejection", format!("expected 5 completions; got {done}")));
    }
    cfg.finish()
}

/// TestJoinLeave. Goal: data follows its shards on join and on leave. Steps: join 100; put
/// keys 0..9 (5 characters); check; join 101; check and append each key; leave 100; check
/// and append each; wait 1 s for shards to move; check the logs; shut 100 down; every key
/// still reads back (from 101). Traps: shards not handed over, or handed over without
/// appends made during the move.
async fn join_leave<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::join_leave_4b", false, -1, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, mut va) = put_keys(&mut cfg, &mut ck, 10, 5).await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.join(1).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 5).await?;
    cfg.leave(0).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 5).await?;
    // Allow time for shards to transfer.
    sleep_ms(1000).await;
    cfg.checklogs()?;
    cfg.shutdown_group(0);
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestSnapshot. Goal: snapshots keep logs short and hold the shards, their duplicate
/// tables and the configurations, so a group restarted from them serves correctly. Steps
/// (maxraftstate 1000): join 100; put keys 0..29 (20 characters); check; join 101, join 102,
/// leave 100; check and append each key; leave 101, join 100; check and append; wait 1 s;
/// check; wait 1 s; check the logs; shut down and restart every group; every key reads back.
async fn snapshot<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::snapshot_4b", false, 1000, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, mut va) = put_keys(&mut cfg, &mut ck, 30, 20).await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.join(1).await?;
    cfg.join(2).await?;
    cfg.leave(0).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 20).await?;
    cfg.leave(1).await?;
    cfg.join(0).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 20).await?;
    sleep_ms(1000).await;
    check_all(&mut ck, &ka, &va).await?;
    sleep_ms(1000).await;
    cfg.checklogs()?;
    for gi in 0..3 {
        cfg.shutdown_group(gi);
    }
    for gi in 0..3 {
        cfg.start_group(gi);
    }
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestMissChange. Goal: a replica down across several configuration changes catches up
/// through the log (or a snapshot) and takes each one in order. Steps (maxraftstate 1000):
/// join 100; put keys 0..9; check; join 101; shut down server 0 of every group; join 102,
/// leave 101, leave 100; check and append; join 101; check and append; restart the servers 0;
/// check and append; wait 2 s; shut down server 1 of every group; join 100, leave 102; check
/// and append; restart the servers 1; every key reads back.
async fn miss_change<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::miss_change_4b", false, 1000, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, mut va) = put_keys(&mut cfg, &mut ck, 10, 20).await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.join(1).await?;
    for gi in 0..3 {
        cfg.shutdown_server(gi, 0);
    }
    cfg.join(2).await?;
    cfg.leave(1).await?;
    cfg.leave(0).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 20).await?;
    cfg.join(1).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 20).await?;
    for gi in 0..3 {
        cfg.start_server(gi, 0);
    }
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 20).await?;
    sleep_ms(2000).await;
    for gi in 0..3 {
        cfg.shutdown_server(gi, 1);
    }
    cfg.join(0).await?;
    cfg.leave(2).await?;
    check_and_append(&mut cfg, &mut ck, &ka, &mut va, 20).await?;
    for gi in 0..3 {
        cfg.start_server(gi, 1);
    }
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestConcurrent1. Goal: appends stay exactly-once and in place while shards move and every
/// group restarts. Steps (maxraftstate 100): join 100; put keys 0..9 (5 characters); ten
/// clerks append 5 characters to their key every 10 ms; +150 ms join 101; +500 ms join 102;
/// +500 ms leave 100 and shut 100 down; +100 ms shut 101 down; +100 ms shut 102 down and
/// leave 102 (every group down); +100 ms restart all three; +100 ms join 100, leave 101;
/// +500 ms join 101; +1 s stop; every key is the exact concatenation of its appends.
async fn concurrent1<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::concurrent1_4b", false, 100, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, va) = put_keys(&mut cfg, &mut ck, 10, 5).await;
    let appenders = Appenders::start(&mut cfg, &ka, va, 5, 10);
    sleep_ms(150).await;
    cfg.join(1).await?;
    sleep_ms(500).await;
    cfg.join(2).await?;
    sleep_ms(500).await;
    cfg.leave(0).await?;
    cfg.shutdown_group(0);
    sleep_ms(100).await;
    cfg.shutdown_group(1);
    sleep_ms(100).await;
    cfg.shutdown_group(2);
    cfg.leave(2).await?;
    sleep_ms(100).await;
    for gi in 0..3 {
        cfg.start_group(gi);
    }
    sleep_ms(100).await;
    cfg.join(0).await?;
    cfg.leave(1).await?;
    sleep_ms(500).await;
    cfg.join(1).await?;
    sleep_ms(1000).await;
    let va = appenders.stop().await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestConcurrent2. Goal: as TestConcurrent1 with slower changes and appends, and two groups
/// restarted. Steps (no snapshots): join 101, 100, 102; put keys 0..9 (1 character); ten
/// clerks append 1 character every 50 ms; leave 100, leave 102; 3 s; join 100, join 102,
/// leave 101; 3 s; join 101, leave 100, leave 102; 3 s; shut 101 and 102 down; 1 s; restart
/// them; 2 s; stop; exact values.
async fn concurrent2<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::concurrent2_4b", false, -1, &opts);
    let mut ck = cfg.make_client();
    cfg.join(1).await?;
    cfg.join(0).await?;
    cfg.join(2).await?;
    let (ka, va) = put_keys(&mut cfg, &mut ck, 10, 1).await;
    let appenders = Appenders::start(&mut cfg, &ka, va, 1, 50);
    cfg.leave(0).await?;
    cfg.leave(2).await?;
    sleep_ms(3000).await;
    cfg.join(0).await?;
    cfg.join(2).await?;
    cfg.leave(1).await?;
    sleep_ms(3000).await;
    cfg.join(1).await?;
    cfg.leave(0).await?;
    cfg.leave(2).await?;
    sleep_ms(3000).await;
    cfg.shutdown_group(1);
    cfg.shutdown_group(2);
    sleep_ms(1000).await;
    cfg.start_group(1);
    cfg.start_group(2);
    sleep_ms(2000).await;
    let va = appenders.stop().await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestConcurrent3. Goal: configuration changes interleaved with restarts of every group,
/// under appends without pause. Steps (maxraftstate 300): join 100; put keys 0..9
/// (1 character); ten clerks append 1 character continuously; for 12 s: join 102, join 101,
/// sleep 0–899 ms, shut down and restart all three groups, sleep 0–899 ms, leave 101, leave
/// 102, sleep 0–899 ms; then 2 s; stop; exact values.
async fn concurrent3<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::concurrent3_4b", false, 300, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, va) = put_keys(&mut cfg, &mut ck, 10, 1).await;
    let appenders = Appenders::start(&mut cfg, &ka, va, 1, 0);
    let t0 = sim::now();
    while sim::now() - t0 < Duration::from_secs(12) {
        cfg.join(2).await?;
        cfg.join(1).await?;
        let pause = cfg.rng.gen_range(0..900);
        sleep_ms(pause).await;
        for gi in 0..3 {
            cfg.shutdown_group(gi);
        }
        for gi in 0..3 {
            cfg.start_group(gi);
        }
        let pause = cfg.rng.gen_range(0..900);
        sleep_ms(pause).await;
        cfg.leave(1).await?;
        cfg.leave(2).await?;
        let pause = cfg.rng.gen_range(0..900);
        sleep_ms(pause).await;
    }
    sleep_ms(2000).await;
    let va = appenders.stop().await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestUnreliable1. Goal: exactly-once across moves when requests and replies are lost.
/// Steps (unreliable, maxraftstate 100): join 100; put keys 0..9 (5 characters); join 101,
/// join 102, leave 100; 20 times check key i % 10 and append to it; join 100, leave 101; 20
/// checks.
async fn unreliable1<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::unreliable1_4b", true, 100, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, mut va) = put_keys(&mut cfg, &mut ck, 10, 5).await;
    cfg.join(1).await?;
    cfg.join(2).await?;
    cfg.leave(0).await?;
    for ii in 0..ka.len() * 2 {
        let i = ii % ka.len();
        check(&mut ck, &ka[i], &va[i]).await?;
        let x = cfg.randstring(5);
        ck.append(&ka[i], &x).await;
        va[i].push_str(&x);
    }
    cfg.join(0).await?;
    cfg.leave(1).await?;
    for ii in 0..ka.len() * 2 {
        let i = ii % ka.len();
        check(&mut ck, &ka[i], &va[i]).await?;
    }
    cfg.finish()
}

/// The configuration schedule of TestUnreliable2 and 3: +150 ms join 101; +500 ms join 102;
/// +500 ms leave 100; +500 ms leave 101; +500 ms join 101, join 100; +2 s.
async fn unreliable_schedule<E: TestEngine, S: ShardKvService>(cfg: &mut ShardCluster<E, S>) -> Result<(), Failure> {
    sleep_ms(150).await;
    cfg.join(1).await?;
    sleep_ms(500).await;
    cfg.join(2).await?;
    sleep_ms(500).await;
    cfg.leave(0).await?;
    sleep_ms(500).await;
    cfg.leave(1).await?;
    sleep_ms(500).await;
    cfg.join(1).await?;
    cfg.join(0).await?;
    sleep_ms(2000).await;
    Ok(())
}

/// TestUnreliable2. Goal: concurrent appends stay exactly-once across moves on an unreliable
/// network. Steps (unreliable, maxraftstate 100): join 100; put keys 0..9 (5 characters); ten
/// clerks append 5 characters continuously; the schedule of joins and leaves; stop; make the
/// network reliable; wait for the clerks; exact values.
async fn unreliable2<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::unreliable2_4b", true, 100, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, va) = put_keys(&mut cfg, &mut ck, 10, 5).await;
    let appenders = Appenders::start(&mut cfg, &ka, va, 5, 0);
    unreliable_schedule(&mut cfg).await?;
    appenders.done.set(true);
    net::set_reliable(true);
    let va = appenders.stop().await;
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestUnreliable3. Goal: random operations across moves on an unreliable network are
/// linearizable. Steps (unreliable, maxraftstate 100): join 100; put keys 0..9 (5 characters,
/// recorded as client 0); ten clerks pick a random key and Append (½), Put (≈5 %) or Get;
/// the schedule of joins and leaves; stop; make the network reliable; wait for the clerks.
/// The history is the only value check (as every scenario's, it must be decided: the
/// course passes an undecided one).
async fn unreliable3<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::unreliable3_4b", true, 100, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let (ka, _) = put_keys(&mut cfg, &mut ck, 10, 5).await;
    let done = Rc::new(Cell::new(false));
    let finished = Rc::new(Cell::new(0usize));
    let n = ka.len();
    for i in 0..n {
        let mut ck1 = cfg.make_client();
        ck1.cli = i as u64 + 1;
        let (done, finished, ka) = (done.clone(), finished.clone(), ka.clone());
        let mut rng = sim::rng(&format!("shardkv-random-client-{i}"));
        sim::spawn(async move {
            while !done.get() {
                let key = &ka[rng.gen_range(0..n)];
                let nv: String =
                    (&mut rng).sample_iter(&rand::distributions::Alphanumeric).take(5).map(char::from).collect();
                if rng.gen_range(0..1000) < 500 {
                    ck1.append(key, &nv).await;
                } else if rng.gen_range(0..1000) < 100 {
                    ck1.put(key, &nv).await;
                } else {
                    ck1.get(key).await;
                }
            }
            finished.set(finished.get() + 1);
        });
    }
    unreliable_schedule(&mut cfg).await?;
    done.set(true);
    net::set_reliable(true);
    while finished.get() < n {
        sleep_ms(10).await;
    }
    cfg.finish()
}

/// TestChallenge1Delete. Goal: a group deletes the shards it handed over (challenge 1), so
/// what the groups persist stays near one copy of the data. Steps (maxraftstate 1: snapshot
/// after every entry): join 100; put keys 0..29 with 1000-character values (30 000 bytes);
/// check keys 0–2; twice: join 101, leave 100, join 102, wait 3 s, check 0–2, leave 101, join
/// 100, leave 102, wait 3 s, check 0–2; join 101, join 102; three times wait 1 s and check
/// 0–2; then Σ over the 9 servers of Raft state + snapshot must be at most 3 × (27 × 1000 +
/// 2 × 3 × 1000 + 6000) = 117 000 bytes (the course's budget: 27 keys once, 3 also in
/// duplicate tables, 3 replicas, slop); every key reads back.
async fn challenge1_delete<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::challenge1_delete_4b", false, 1, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let n = 30;
    let (ka, va) = put_keys(&mut cfg, &mut ck, n, 1000).await;
    check_all(&mut ck, &ka[..3], &va[..3]).await?;
    for _ in 0..2 {
        cfg.join(1).await?;
        cfg.leave(0).await?;
        cfg.join(2).await?;
        sleep_ms(3000).await;
        check_all(&mut ck, &ka[..3], &va[..3]).await?;
        cfg.leave(1).await?;
        cfg.join(0).await?;
        cfg.leave(2).await?;
        sleep_ms(3000).await;
        check_all(&mut ck, &ka[..3], &va[..3]).await?;
    }
    cfg.join(1).await?;
    cfg.join(2).await?;
    for _ in 0..3 {
        sleep_ms(1000).await;
        check_all(&mut ck, &ka[..3], &va[..3]).await?;
    }
    let total = cfg.total_persisted();
    let expected = 3 * (((n - 3) * 1000) + 2 * 3 * 1000 + 6000);
    sim::describe(format!("9 servers persist {total} bytes (bound {expected})"));
    if total > expected {
        return Err(Failure::safety(
            "shardkv::challenge1-size",
            format!("snapshot + persisted Raft state are too big: {total} > {expected}"),
        ));
    }
    check_all(&mut ck, &ka, &va).await?;
    cfg.finish()
}

/// TestChallenge2Unaffected. Goal: during a configuration change stuck on a dead group, a
/// group keeps serving the shards it owns in both configurations (challenge 2). Steps
/// (unreliable, maxraftstate 100): join 100; put "100" to keys 0..9; join 101; read which
/// shards 101 now owns; wait 1 s; put "101" to the keys i with owned[i]; shut 100 down; leave
/// 100 (101 can never fetch 100's shards); wait 1 s; for each key whose shard 101 owns: it
/// reads back, takes a Put of value + "-1", and reads that back.
///
/// Quirk §12.6: the course marks the keys to overwrite by indexing owned[] with the key's
/// number, not its shard (the check loop then uses the real shard). Kept: it is
/// self-consistent, as the expected values follow what was actually written.
async fn challenge2_unaffected<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::challenge2_unaffected_4b", true, 100, &opts);
    let mut ck = cfg.make_client();
    cfg.join(0).await?;
    let n = 10;
    let ka: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut va: Vec<String> = vec!["100".to_string(); n];
    for i in 0..n {
        ck.put(&ka[i], &va[i]).await;
    }
    cfg.join(1).await?;
    let c = cfg.query().await;
    let owned: Vec<bool> = c.shards.iter().map(|&gid| gid == cfg.groups[1].gid).collect();
    // Wait for the migration to complete, and for clerks to use the new configuration.
    sleep_ms(1000).await;
    for i in 0..n {
        if owned[i] {
            va[i] = "101".to_string();
            ck.put(&ka[i], &va[i]).await;
        }
    }
    cfg.shutdown_group(0);
    // 101 does not get a chance to migrate the shards 100 owned.
    cfg.leave(0).await?;
    sleep_ms(1000).await;
    // Gets and Puts of the keys 101 owned still complete.
    for i in 0..n {
        if owned[key2shard(&ka[i])] {
            check(&mut ck, &ka[i], &va[i]).await?;
            let v = format!("{}-1", va[i]);
            ck.put(&ka[i], &v).await;
            check(&mut ck, &ka[i], &v).await?;
        }
    }
    cfg.finish()
}

/// TestChallenge2Partial. Goal: a group serves each shard as soon as it arrives, not when the
/// whole change completes (challenge 2). Steps (unreliable, maxraftstate 100): join 100, 101
/// and 102 in one request; wait 1 s; put "100" to keys 0..9; read which shards 102 owns; shut
/// 100 down; leave 100 and 102 in one request (101 can pull 102's shards, never 100's); wait
/// 1 s; each key of a shard 102 owned reads back, takes a Put of value + "-2", reads that back.
async fn challenge2_partial<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    let mut cfg = cluster::<E, S>("shardkv::challenge2_partial_4b", true, 100, &opts);
    let mut ck = cfg.make_client();
    cfg.joinm(&[0, 1, 2]).await?;
    sleep_ms(1000).await;
    let n = 10;
    let ka: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let va: Vec<String> = vec!["100".to_string(); n];
    for i in 0..n {
        ck.put(&ka[i], &va[i]).await;
    }
    let c = cfg.query().await;
    let owned: Vec<bool> = c.shards.iter().map(|&gid| gid == cfg.groups[2].gid).collect();
    cfg.shutdown_group(0);
    cfg.leavem(&[0, 2]).await?;
    sleep_ms(1000).await;
    for i in 0..n {
        if owned[key2shard(&ka[i])] {
            check(&mut ck, &ka[i], &va[i]).await?;
            let v = format!("{}-2", va[i]);
            ck.put(&ka[i], &v).await;
            check(&mut ck, &ka[i], &v).await?;
        }
    }
    cfg.finish()
}
