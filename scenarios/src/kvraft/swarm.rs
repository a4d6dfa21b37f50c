//! The key/value swarm: 3–7 servers, 1–20 clerks, random keys, snapshots on or off, the
//! fault mix and rates drawn from the seed and printed. A safety phase plays the fault
//! schedule under the clerks' load; then every fault stops and each clerk must finish its
//! current request and one more within 10 s. The whole history must be linearizable.

use super::tester::{KvService, OwnKv, NET};
use super::{cluster, COURSE_LIMIT};
use crate::engine::{RaftEngine, TestEngine};
use crate::registry::{Opts, Scenario};
use crate::swarm::{play_safety_phase, safety_phase_end_ms, schedule_for, stop_faults, Params, SERVERS};
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
    .with_client_history()]
}

async fn swarm<E: TestEngine, S: KvService>(opts: Opts) -> Result<(), Failure> {
    let mut rng = sim::rng("swarm");
    let p = Params::draw(&mut rng, SERVERS);
    let clerks = rng.gen_range(1..=20usize);
    let keys = rng.gen_range(1..=10usize);
    let maxraftstate: i64 = if rng.gen_bool(0.5) { rng.gen_range(500..5000) } else { -1 };
    sim::describe(p.describe());
    sim::describe(format!("{clerks} clerks on {keys} keys, maxraftstate {maxraftstate}"));
    let schedule = schedule_for(&opts, &p, &mut rng);
    let mut cfg = cluster::<E, S>("kvraft::swarm_3b", p.servers, false, maxraftstate, &opts)
        .attaching_history(opts.attach_history);
    let all = cfg.all();
    let stop = Rc::new(Cell::new(false));
    let handles = cfg.leader_view();
    play_safety_phase(schedule, cfg.servers.clone(), Rc::new(handles), stop.clone(), p.safety_ms);

    // The clerks: random operations on random keys until told to stop.
    let completed: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(vec![0; clerks]));
    let finished = Rc::new(Cell::new(0usize));
    for cli in 0..clerks {
        let mut ck = cfg.make_client(&all);
        ck.cli = cli as u64;
        let (stop, completed, finished) = (stop.clone(), completed.clone(), finished.clone());
        let mut rng = sim::rng(&format!("kv-swarm-client-{cli}"));
        sim::spawn(async move {
            let mut j = 0;
            while !stop.get() {
                let key = rng.gen_range(0..keys).to_string();
                match rng.gen_range(0..100) {
                    0..=44 => {
                        ck.append(&key, &format!("x {cli} {j} y")).await;
                    }
                    45..=54 => {
                        ck.put(&key, &format!("x {cli} {j} y")).await;
                    }
                    _ => {
                        ck.get(&key).await;
                    }
                }
                j += 1;
                completed.borrow_mut()[cli] += 1;
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
    let at_stop = completed.borrow().clone();
    let t0 = sim::now();
    loop {
        let behind: Vec<usize> = (0..clerks).filter(|&c| completed.borrow()[c] < at_stop[c] + 2).collect();
        if behind.is_empty() {
            break;
        }
        if sim::now() - t0 > LIVENESS_BOUND {
            return Err(Failure::liveness(
                "kv::swarm-liveness",
                format!(
                    "{} of {clerks} clerks made no progress within {}s after every fault stopped (first: c{})",
                    behind.len(),
                    LIVENESS_BOUND.as_secs(),
                    behind[0]
                ),
            ));
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    stop.set(true);
    while finished.get() < clerks {
        sim::sleep(Duration::from_millis(10)).await;
    }
    cfg.check_sizes()?;
    cfg.check_linearizable()
}
