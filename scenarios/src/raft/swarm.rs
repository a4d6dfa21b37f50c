//! Raft swarm scenarios: every knob drawn from the seed — cluster size (3–7), which fault
//! classes are on (loss, long reordering, duplicates, latency, two-sided partitions and
//! isolation, one-way cuts, hold-and-release clogs, crashes, crashes right after a save)
//! and their rates — and printed at the start of the run.
//!
//! The engine's timing (election timeouts, heartbeat interval, batch size) and the
//! code-level fault points are drawn too (`crate::swarm::Knobs`), unless `--plain-swarm`.
//!
//! The faults form an explicit schedule (`sim::faults`), drawn from the seed or loaded with
//! `--faults FILE`, saved with `--save-faults FILE`. A safety phase runs the schedule under
//! a steady stream of proposals; then every fault stops (heal, release, reliable, restart
//! everyone) and the liveness phase requires every server to apply a new command within the
//! course's 10 s. The safety checker and the tester's applier judge every step throughout.

use super::tester::{int_cmd, Cluster};
use super::ELECTION;
use crate::engine::{timed_config, TestEngine};
use crate::raft::observer::{MESSAGE_KINDS, TRIGGERS};
use crate::registry::{Opts, Scenario};
use crate::spec::{Workload, WorkloadKind};
use crate::swarm::{
    apply_spec_shape, knobs_without, play_safety_phase, record_spec, safety_phase_end_ms, schedule_for, spec,
    stop_faults, Params, CLIENT_POINTS, SERVERS,
};
use rand::Rng;
use sim::Failure;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    let budget = Duration::from_secs(120);
    vec![
        Scenario::new(
            "raft::swarm_2c",
            "3-7 peers, fault mix and rates drawn from the seed, proposals throughout; then faults stop and all must agree",
            budget,
            |o| Box::pin(swarm::<E>(o, false)),
        )
        .with_fault_schedule(safety_phase_end_ms)
        .with_holds(&TRIGGERS, &MESSAGE_KINDS)
        .with_scenario_files(WorkloadKind::Proposals)
        .with_swarm_knobs(E::TAKES_TIMING, E::FAULT_POINT_REACH),
        Scenario::new(
            "raft::swarm_2d",
            "as swarm_2c with the snapshotting service (every 10 entries), so InstallSnapshot runs under faults",
            budget,
            |o| Box::pin(swarm::<E>(o, true)),
        )
        .with_fault_schedule(safety_phase_end_ms)
        .with_holds(&TRIGGERS, &MESSAGE_KINDS)
        .with_scenario_files(WorkloadKind::ProposalsWithSnapshots)
        .with_swarm_knobs(E::TAKES_TIMING, E::FAULT_POINT_REACH),
    ]
}

async fn swarm<E: TestEngine>(opts: Opts, snapshots: bool) -> Result<(), Failure> {
    // Every draw is made as the seed orders it, and a scenario file's values replace the
    // drawn ones only afterwards, so the seed's later draws do not move (crate::spec).
    let mut rng = sim::rng("swarm");
    let drawn = Params::draw(&mut rng, SERVERS);
    let mut p = drawn.clone();
    apply_spec_shape(&opts, &mut p);
    let mut proposals_max = u64::MAX;
    let mut bursts = Vec::new();
    if let Some(Workload::Proposals { propose_gap_ms, proposals, bursts: b, .. }) = spec(&opts).map(|s| &s.workload) {
        p.propose_gap_ms = *propose_gap_ms;
        proposals_max = *proposals;
        bursts.clone_from(b);
    }
    p.describe_run(true, &opts);
    let schedule = schedule_for::<E>(&opts, &drawn, &mut rng, snapshots);
    // No clerk here: the tester proposes.
    let knobs = knobs_without::<E>(&opts, &CLIENT_POINTS);
    let config = timed_config::<E>(p.servers, opts.bug.as_deref(), knobs.timing.as_ref());
    let mut cfg = Cluster::<E>::with_engine(p.servers, false, snapshots, config);
    let mut every = Vec::new();
    if snapshots {
        // Servers snapshot at different intervals, so a leader's snapshot can fall between a
        // follower's own snapshot and its commit index.
        every = (0..drawn.servers).map(|_| rng.gen_range(3..=15)).collect();
        if let Some(Workload::Proposals { snapshot_every, .. }) = spec(&opts).map(|s| &s.workload) {
            every.clone_from(snapshot_every);
        }
        sim::describe(format!("snapshot intervals: {every:?}"));
        cfg.logs.borrow_mut().snapshot_every = every.clone();
    }
    // A file's bursts are part of what it resolves to (`shrink FILE` starts from them).
    let workload = Workload::Proposals {
        propose_gap_ms: p.propose_gap_ms,
        proposals: 0,
        snapshot_every: every,
        bursts: bursts.clone(),
    };
    record_spec(&opts, &p, &knobs, workload, &schedule);
    let stop = Rc::new(Cell::new(false));

    // Faults: play the schedule during the safety phase (a loaded one was checked to fit it).
    let roles = cfg.roles();
    play_safety_phase(schedule, cfg.nodes.clone(), Rc::new(move || roles.leader()), stop.clone(), p.safety_ms);
    // A steady stream of proposals to every live server; only a leader accepts.
    {
        let stop = stop.clone();
        let roles = cfg.roles();
        let gap = Duration::from_millis(p.propose_gap_ms);
        let recorder = opts.record_scenario.clone();
        sim::spawn(async move {
            let mut x = 1_000_000u64;
            if bursts.is_empty() {
                let mut rounds = 0;
                while !stop.get() && rounds < proposals_max {
                    rounds += 1;
                    if let Some(r) = &recorder {
                        r.count_operation(0);
                    }
                    x += 1;
                    roles.start_everywhere(int_cmd(x));
                    sim::sleep(gap).await;
                }
                return;
            }
            if bursts[0].at_ms > 0 {
                sim::sleep(Duration::from_millis(bursts[0].at_ms)).await;
            }
            // A file's bursts (the shrinker's compact rounds), in this same task and with
            // the same sleeps as the steady rounds they replace (one after each round, the
            // next round's distance; `gap` after the last), so bursts standing for steady
            // rounds are the same run. A file with bursts has no steady rounds
            // (`ScenarioSpec::check`).
            for (i, b) in bursts.iter().enumerate() {
                if stop.get() {
                    break;
                }
                for _ in 0..b.commands {
                    x += 1;
                    roles.start_everywhere(int_cmd(x));
                }
                let wait = bursts.get(i + 1).map_or(gap, |next| Duration::from_millis(next.at_ms - b.at_ms));
                sim::sleep(wait).await;
            }
        });
    }
    sim::sleep(Duration::from_millis(p.safety_ms)).await;

    // Liveness phase: every fault stops and the whole cluster must agree again.
    stop.set(true);
    stop_faults(&cfg.nodes, sim::NetConfig { long_delays: true, ..sim::NetConfig::default() });
    for i in 0..cfg.n {
        if !cfg.alive(i) {
            cfg.start1(i);
        }
        cfg.connect(i);
    }
    sim::sleep(ELECTION).await;
    let cmd = cfg.rand_cmd();
    cfg.one(cmd, cfg.n, true)
        .await
        .map_err(|f| Failure::liveness("raft::swarm-liveness", format!("after every fault stopped: {}", f.message)))?;
    Ok(())
}
