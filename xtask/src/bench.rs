//! `bench`: the performance figures of BENCHMARKS.md, measured in wall time outside the
//! simulated runtime.
//!
//! - `bench net`: messages delivered per wall second by a bare madsim `Endpoint` loop and by
//!   this project's harness on the same workload (5 nodes, request/reply with 16 calls in
//!   flight per node, 5 % loss per message, 1–20 ms latency per message).
//! - `bench scenarios [FILTER]`: wall time, simulated seconds per wall second and events per
//!   wall second of each scenario on one seed.
//! - `bench sweep FILTER --seeds A..B`: runs per second of a sweep with 1 job and with 2.

use crate::sweep::{parallel_in_order, parse_range};
use crate::{bad_input, exit};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use scenarios::registry::{run_scenario, Catalogue, Opts};
use serde::{Deserialize, Serialize};
use sim::{Incoming, NetConfig, NodeId, RunConfig, TraceMode};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Bare madsim message loop versus the harness, same workload.
    Net {
        /// Simulated seconds per measurement.
        #[arg(long, default_value_t = 60)]
        sim_secs: u64,
        /// Repetitions; the best (least disturbed) figure is reported.
        #[arg(long, default_value_t = 3)]
        reps: u32,
    },
    /// Each scenario on one seed: wall time, x real time, events per wall second.
    Scenarios {
        #[arg(default_value = "all")]
        filter: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Key/value service: committed operations per simulated second with N clerks on a
    /// reliable network, and the wall time to check the resulting history.
    Kv {
        /// Clerk counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "5,20")]
        clerks: Vec<usize>,
        /// Simulated seconds of load per measurement.
        #[arg(long, default_value_t = 15)]
        sim_secs: u64,
    },
    /// Runs per second of a sweep with 1 job and with 2 jobs.
    Sweep {
        filter: String,
        /// Half-open seed range, e.g. 0..20.
        #[arg(long, value_name = "A..B", value_parser = parse_range)]
        seeds: std::ops::Range<u64>,
    },
}

pub fn run(cat: &Catalogue, a: &BenchArgs) -> u8 {
    match &a.what {
        What::Net { sim_secs, reps } => bench_net(*sim_secs, *reps),
        What::Scenarios { filter, seed } => bench_scenarios(cat, filter, *seed),
        What::Sweep { filter, seeds } => bench_sweep(cat, filter, seeds.clone()),
        What::Kv { clerks, sim_secs } => bench_kv(clerks, *sim_secs),
    }
}

const NODES: usize = 5;
const WINDOW: u64 = 16;

#[derive(Serialize, Deserialize)]
struct Msg {
    client: u64,
    seq: u64,
    body: [u8; 16],
}

/// The bare loop: madsim `Endpoint`s, a server task and WINDOW client tasks per node; a
/// client sends a request to a random peer and waits for the reply (or 100 ms).
fn bare_madsim(sim_secs: u64) -> u64 {
    use madsim::net::Endpoint;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let mut cfg = madsim::Config::default();
    cfg.net.packet_loss_rate = 0.05;
    cfg.net.send_latency = Duration::from_millis(1)..Duration::from_millis(20);
    let rt = madsim::runtime::Runtime::with_seed_and_config(1, cfg);
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    rt.block_on(async move {
        let addr = |i: usize| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), 1);
        let handle = madsim::runtime::Handle::current();
        for i in 0..NODES {
            let d = d.clone();
            handle
                .create_node()
                .ip(addr(i).ip())
                .init(move || {
                    let d = d.clone();
                    async move {
                        let ep = Arc::new(Endpoint::bind(addr(i)).await.unwrap());
                        for c in 0..WINDOW {
                            let (ep, d) = (ep.clone(), d.clone());
                            madsim::task::spawn(async move {
                                let mut rng = sim::rng::stream(i as u64, "bench", c);
                                let mut buf = [0u8; 64];
                                for seq in 0.. {
                                    let peer = rand::Rng::gen_range(&mut rng, 0..NODES);
                                    let bytes =
                                        postcard::to_allocvec(&Msg { client: c + 1, seq, body: [7; 16] }).unwrap();
                                    ep.send_to(addr(peer), 0, &bytes).await.unwrap();
                                    if let Ok(Ok((n, _))) =
                                        madsim::time::timeout(Duration::from_millis(100), ep.recv_from(c + 1, &mut buf))
                                            .await
                                    {
                                        let _: Msg = postcard::from_bytes(&buf[..n]).unwrap();
                                        d.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            });
                        }
                        let mut buf = [0u8; 64];
                        loop {
                            let (n, from) = ep.recv_from(0, &mut buf).await.unwrap();
                            let m: Msg = postcard::from_bytes(&buf[..n]).unwrap();
                            d.fetch_add(1, Ordering::Relaxed);
                            let bytes =
                                postcard::to_allocvec(&Msg { client: m.client, seq: m.seq, body: m.body }).unwrap();
                            ep.send_to(from, m.client, &bytes).await.unwrap();
                        }
                    }
                })
                .build();
        }
        madsim::time::sleep(Duration::from_secs(sim_secs)).await;
    });
    delivered.load(Ordering::Relaxed)
}

/// The same workload on the harness: per node WINDOW calls in flight through `start_call`,
/// a new one as each completes; handlers reply at once.
fn harness(sim_secs: u64) -> (u64, u64) {
    let r = sim::run(RunConfig::new(1, Duration::from_secs(sim_secs + 10)), move || async move {
        sim::net::set_config(NetConfig {
            reliable: false,
            request_delay_ms_max: 0,
            request_loss_permille: 50,
            reply_loss_permille: 50,
            hop_delay_ms_min: 1,
            hop_delay_ms_max: 20,
            ..NetConfig::default()
        });
        for i in 0..NODES {
            sim::spawn_process(&format!("n{i}"), move |ctx| async move {
                let mut rng = ctx.rng("bench");
                let mut seq = 0;
                for c in 0..WINDOW {
                    let peer = NodeId(rand::Rng::gen_range(&mut rng, 0..NODES) as u16);
                    ctx.start_call(peer, &Msg { client: c, seq, body: [7; 16] }, c);
                    seq += 1;
                }
                loop {
                    match ctx.recv().await {
                        Some(Incoming::Request { payload, reply_to, .. }) => {
                            let m: Msg = sim::decode(&payload);
                            ctx.reply(reply_to, &m);
                        }
                        Some(Incoming::Response { tag, result, .. }) => {
                            if let Ok(bytes) = result {
                                let _: Msg = sim::decode(&bytes);
                            }
                            let peer = NodeId(rand::Rng::gen_range(&mut rng, 0..NODES) as u16);
                            ctx.start_call(peer, &Msg { client: tag, seq, body: [7; 16] }, tag);
                            seq += 1;
                        }
                        None => {}
                    }
                }
            });
        }
        sim::sleep(Duration::from_secs(sim_secs)).await;
        Ok(())
    });
    (r.stats.delivered, r.events)
}

fn bench_net(sim_secs: u64, reps: u32) -> u8 {
    if sim_secs == 0 || reps == 0 {
        return bad_input("--sim-secs and --reps must be at least 1");
    }
    let mut best_bare: f64 = 0.0;
    let mut best_harness: f64 = 0.0;
    let mut best_events: f64 = 0.0;
    for _ in 0..reps {
        let t = Instant::now();
        let n = bare_madsim(sim_secs);
        best_bare = best_bare.max(n as f64 / t.elapsed().as_secs_f64());
        // The harness runs on its own thread like every run; measure around it.
        let t = Instant::now();
        let (n, events) = harness(sim_secs);
        let w = t.elapsed().as_secs_f64();
        best_harness = best_harness.max(n as f64 / w);
        best_events = best_events.max(events as f64 / w);
    }
    println!("workload: {NODES} nodes, {WINDOW} calls in flight per node, 5% loss and 1-20 ms latency per message, {sim_secs} simulated s, best of {reps}");
    println!("bare madsim Endpoint loop: {best_bare:>10.0} messages delivered per wall second");
    println!("harness (sim crate):       {best_harness:>10.0} messages delivered per wall second ({best_events:.0} trace events per wall second)");
    println!("harness / bare:            {:>10.2}", best_harness / best_bare);
    exit::PASS
}

fn bench_scenarios(cat: &Catalogue, filter: &str, seed: u64) -> u8 {
    let scenarios = match cat.select(filter) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    println!("{:48} {:>9} {:>9} {:>10} {:>12} {:>8}", "scenario", "wall ms", "sim s", "x real", "events/s", "outcome");
    let (mut wall_total, mut sim_total, mut ev_total) = (0.0, 0.0, 0u64);
    // The most severe class seen (panic, then safety, then liveness), as every command ranks.
    let mut worst: Option<sim::FailureClass> = None;
    for sc in &scenarios {
        let t = Instant::now();
        let r = run_scenario(sc, seed, &Opts::default(), TraceMode::Hash, None);
        let w = t.elapsed().as_secs_f64();
        wall_total += w;
        sim_total += r.sim_time.as_secs_f64();
        ev_total += r.events;
        worst = worst.max(r.outcome.class());
        let outcome = match r.outcome.class() {
            None => "pass".to_string(),
            Some(c) => c.name().to_string(),
        };
        println!(
            "{:48} {:>9.1} {:>9.1} {:>10.0} {:>12.0} {:>8}",
            sc.name,
            w * 1e3,
            r.sim_time.as_secs_f64(),
            r.sim_time.as_secs_f64() / w,
            r.events as f64 / w,
            outcome
        );
    }
    println!(
        "{:48} {:>9.1} {:>9.1} {:>10.0} {:>12.0}",
        format!("total ({} scenarios, seed {seed}, 1 thread)", scenarios.len()),
        wall_total * 1e3,
        sim_total,
        sim_total / wall_total,
        ev_total as f64 / wall_total
    );
    worst.map_or(exit::PASS, exit::of_class)
}

fn bench_sweep(cat: &Catalogue, filter: &str, range: std::ops::Range<u64>) -> u8 {
    let scenarios = match cat.select(filter) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let total = match crate::plan::grid_runs(
        &format!("'{filter}' ({})", crate::count(scenarios.len() as u64, "scenario")),
        scenarios.len() as u64,
        &range,
    ) {
        Ok(n) => n,
        Err(e) => return bad_input(e),
    };
    let set = crate::plan::RunSet::whole(scenarios.len(), range.end - range.start);
    let mut rates = Vec::new();
    for jobs in [1usize, 2] {
        let pb = ProgressBar::hidden();
        let t = Instant::now();
        let mut failed = 0u64;
        parallel_in_order(
            total,
            jobs,
            &pb,
            |i| {
                let (g, offset) = set.get(i);
                !run_scenario(&scenarios[g], range.start + offset, &Opts::default(), TraceMode::Hash, None)
                    .outcome
                    .is_pass()
            },
            |_, fail| failed += u64::from(fail),
        );
        let w = t.elapsed().as_secs_f64();
        let rate = total as f64 / w;
        println!(
            "jobs={jobs}: {total} runs in {w:.2}s = {rate:.1} runs/s = {:.0} runs/hour ({failed} failed)",
            rate * 3600.0
        );
        rates.push(rate);
    }
    println!("speed-up with 2 jobs: {:.2}x", rates[1] / rates[0]);
    exit::PASS
}

type KvHistory = checkers::linearizability::History<checkers::models::kv::KvInput, checkers::models::kv::KvOutput>;

/// `clerks` clerks on their own keys (as GenericTest) for `sim_secs` on 5 servers; returns the
/// history, carried out of the run so the check can be timed in wall-clock time.
fn kv_load(clerks: usize, sim_secs: u64) -> (KvHistory, f64) {
    use scenarios::kvraft::tester::{KvBugs, KvCluster};
    use std::sync::{Arc, Mutex};
    let out: Arc<Mutex<Option<(KvHistory, f64)>>> = Arc::new(Mutex::new(None));
    let out2 = out.clone();
    let r = sim::run(RunConfig::new(1, Duration::from_secs(sim_secs + 60)), move || async move {
        let mut cfg = KvCluster::new("bench::kv", 5, false, -1, KvBugs::default());
        let all = cfg.all();
        let mut warm = cfg.make_client(&all);
        warm.get("warm").await;
        let stop = std::rc::Rc::new(std::cell::Cell::new(false));
        let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
        for c in 0..clerks {
            let mut ck = cfg.make_client(&all);
            ck.cli = c as u64 + 1;
            let (stop, count) = (stop.clone(), count.clone());
            sim::spawn(async move {
                let key = c.to_string();
                let mut j = 0;
                while !stop.get() {
                    if j % 2 == 0 {
                        ck.append(&key, &format!("x {c} {j} y")).await;
                    } else {
                        ck.get(&key).await;
                    }
                    j += 1;
                    count.set(count.get() + 1);
                }
            });
        }
        let t0 = sim::now();
        let c0 = count.get();
        sim::sleep(Duration::from_secs(sim_secs)).await;
        let rate = (count.get() - c0) as f64 / (sim::now() - t0).as_secs_f64();
        stop.set(true);
        sim::sleep(Duration::from_secs(2)).await;
        *out2.lock().unwrap() = Some((cfg.history.history(), rate));
        Ok(())
    });
    assert!(r.outcome.is_pass(), "bench run failed: {}", r.outcome);
    let got = out.lock().unwrap().take().expect("the run stored its history");
    got
}

fn bench_kv(clerks: &[usize], sim_secs: u64) -> u8 {
    use checkers::linearizability::{check, CheckOptions};
    use checkers::models::kv::KvModel;
    // Every value before the first measurement: a rate over 0 simulated seconds is no figure.
    if clerks.contains(&0) {
        return bad_input("--clerks must be at least 1");
    }
    if sim_secs == 0 {
        return bad_input("--sim-secs must be at least 1");
    }
    println!(
        "{:>7} {:>22} {:>12} {:>14} {:>10}",
        "clerks", "ops / simulated second", "history ops", "check wall ms", "verdict"
    );
    for &n in clerks {
        let (history, rate) = kv_load(n, sim_secs);
        let t = Instant::now();
        let r = check(
            &KvModel,
            &history,
            &CheckOptions { budget: scenarios::kvraft::tester::CHECK_BUDGET, ..CheckOptions::default() },
        );
        let ms = t.elapsed().as_secs_f64() * 1e3;
        println!("{n:>7} {rate:>22.0} {:>12} {ms:>14.1} {:>10}", history.len(), r.verdict);
    }
    exit::PASS
}
