//! The key/value swarm: 3–7 servers, 1–20 clerks, random keys, snapshots on or off, the
//! fault mix and rates drawn from the seed and printed. A safety phase plays the fault
//! schedule under the clerks' load, with the engine's timing and the code-level fault points
//! drawn too (`crate::swarm::Knobs`, unless `--plain-swarm`; never the two points of
//! `crate::swarm::KV_SWARM_LEFT_OUT`); then every fault stops and each clerk must finish its
//! current request and one more within 10 s. The whole history must be linearizable.

use super::tester::{KvService, OwnKv, NET};
use super::{cluster_timed, COURSE_LIMIT};
use crate::engine::{RaftEngine, TestEngine};
use crate::raft::observer::{MESSAGE_KINDS, TRIGGERS};
use crate::registry::{Opts, Scenario};
use crate::spec::{Clerk, Workload, WorkloadKind};
use crate::swarm::{
    apply_spec_shape, knobs_without, play_safety_phase, record_spec, safety_phase_end_ms, schedule_for, spec,
    stop_faults, Params, KV_SWARM_LEFT_OUT, SERVERS,
};
use rand::Rng;
use sim::Failure;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// After faults stop, each clerk's next request must complete within this.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(10);

/// The kvraft family's swarm: simlab's service on simlab's Raft.
pub fn scenarios() -> Vec<Scenario> {
    scenarios_on::<RaftEngine, OwnKv>()
}

/// The swarm with service `S` on engine `E`.
pub fn scenarios_on<E: TestEngine, S: KvService>() -> Vec<Scenario> {
    vec![Scenario::new(
        "kvraft::swarm_3b",
        "3-7 servers, 1-20 clerks on random keys, snapshots maybe, fault mix drawn from the seed; then faults stop and every clerk progresses",
        COURSE_LIMIT,
        |o| Box::pin(swarm::<E, S>(o)),
    )
    .with_fault_schedule(safety_phase_end_ms)
    .with_holds(&TRIGGERS, &MESSAGE_KINDS)
    .with_scenario_files(WorkloadKind::Clerks)
    .with_client_history()
    .with_swarm_knobs(E::TAKES_TIMING, E::FAULT_POINT_REACH)]
}

async fn swarm<E: TestEngine, S: KvService>(opts: Opts) -> Result<(), Failure> {
    // Every draw is made as the seed orders it, and a scenario file's values replace the
    // drawn ones only afterwards, so the seed's later draws do not move (crate::spec).
    let mut rng = sim::rng("swarm");
    let drawn = Params::draw(&mut rng, SERVERS);
    let mut p = drawn.clone();
    apply_spec_shape(&opts, &mut p);
    let n_clerks = rng.gen_range(1..=20usize);
    let mut keys = rng.gen_range(1..=10usize);
    let mut maxraftstate: i64 = if rng.gen_bool(0.5) { rng.gen_range(500..5000) } else { -1 };
    let (mut append_percent, mut put_percent) = (45, 10);
    let mut clerks: Vec<Clerk> = (0..n_clerks as u64).map(|id| Clerk::new(id, u64::MAX)).collect();
    if let Some(Workload::Clerks { keys: k, maxraftstate: m, append_percent: a, put_percent: u, clerks: c }) =
        spec(&opts).map(|s| &s.workload)
    {
        (keys, maxraftstate, append_percent, put_percent) = (*k, *m, *a, *u);
        clerks.clone_from(c);
        // Made in id order, so a missing id's draws can be skipped (KvCluster::skip_client).
        clerks.sort_by_key(|c| c.id);
    }
    p.describe_run(false, &opts);
    let count = crate::count;
    sim::describe(format!("{} on {}, maxraftstate {maxraftstate}", count(clerks.len(), "clerk"), count(keys, "key")));
    let schedule = schedule_for::<E>(&opts, &drawn, &mut rng, maxraftstate >= 0);
    let knobs = knobs_without::<E>(&opts, &KV_SWARM_LEFT_OUT);
    let recorded: Vec<Clerk> = clerks.iter().map(|c| Clerk { operations: 0, ..*c }).collect();
    let workload = Workload::Clerks { keys, maxraftstate, append_percent, put_percent, clerks: recorded };
    record_spec(&opts, &p, &knobs, workload, &schedule);
    let mut cfg =
        cluster_timed::<E, S>("kvraft::swarm_3b", p.servers, false, maxraftstate, &opts, knobs.timing.as_ref())
            .attaching_history(opts.attach_history);
    let all = cfg.all();
    let stop = Rc::new(Cell::new(false));
    let handles = cfg.leader_view();
    play_safety_phase(schedule, cfg.servers.clone(), Rc::new(handles), stop.clone(), p.safety_ms);

    // The clerks: random operations on random keys until told to stop (or, from a scenario
    // file, after their number of operations). Each draws from a stream named by its id.
    let n = clerks.len();
    let completed: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(vec![0; n]));
    let finished = Rc::new(Cell::new(0usize));
    for (slot, clerk) in clerks.iter().copied().enumerate() {
        // A clerk a scenario file left out still takes its number and draws, so each kept
        // clerk is `c<id>` on the trace, as in the run it was shrunk from.
        cfg.skip_clients_to(clerk.id);
        let mut ck = cfg.make_client(&all);
        let cli = clerk.id;
        debug_assert_eq!(ck.cli, cli, "the clerk is c<id>");
        let (stop, completed, finished) = (stop.clone(), completed.clone(), finished.clone());
        let mut rng = sim::rng(&format!("kv-swarm-client-{cli}"));
        let recorder = opts.record_scenario.clone();
        sim::spawn(async move {
            clerk.start(&mut rng, keys).await;
            // `j` numbers the clerk's operations, skipped ones included, so a kept
            // operation writes what it wrote in the run it was shrunk from.
            let mut j = clerk.skip;
            while !stop.get() && j - clerk.skip < clerk.operations {
                if let Some(r) = &recorder {
                    r.count_operation(cli);
                }
                let (key, pick) = Clerk::draw_operation(&mut rng, keys);
                let key = key.to_string();
                if pick < append_percent {
                    ck.append(&key, &format!("x {cli} {j} y")).await;
                } else if pick < append_percent + put_percent {
                    ck.put(&key, &format!("x {cli} {j} y")).await;
                } else {
                    ck.get(&key).await;
                }
                j += 1;
                completed.borrow_mut()[slot] += 1;
            }
            finished.set(finished.get() + 1);
        });
    }
    sim::sleep(Duration::from_millis(p.safety_ms)).await;

    // Liveness: every fault stops; each clerk finishes its request in flight and one more.
    stop_faults(&cfg.servers, NET);
    cfg.connect_all_clients();
    for i in 0..cfg.n {
        cfg.start_server(i);
    }
    // A clerk's next request and one more — or as many as a scenario file leaves it.
    let need: Vec<u64> = completed.borrow().iter().zip(&clerks).map(|(&c, k)| (c + 2).min(k.operations)).collect();
    let t0 = sim::now();
    loop {
        let behind: Vec<usize> = (0..n).filter(|&c| completed.borrow()[c] < need[c]).collect();
        if behind.is_empty() {
            break;
        }
        if sim::now() - t0 > LIVENESS_BOUND {
            return Err(Failure::liveness(
                "kv::swarm-liveness",
                format!(
                    "{} of {n} clerks made no progress within {}s after every fault stopped (first: c{})",
                    behind.len(),
                    LIVENESS_BOUND.as_secs(),
                    clerks[behind[0]].id
                ),
            ));
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    stop.set(true);
    while finished.get() < n {
        sim::sleep(Duration::from_millis(10)).await;
    }
    cfg.check_sizes()?;
    cfg.check_linearizable()
}
