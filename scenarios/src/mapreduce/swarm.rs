//! The MapReduce swarm (`mapreduce::swarm`): one job of the crash app with extra keys
//! (`App::CrashKeys`: several keys per reduce partition, stalls that may outlast the 10 s
//! reissue timeout) under a fault schedule, every knob drawn from the seed and printed —
//! workers (1–6), map tasks (1–8 input files), reduce tasks (1–10), extra keys (0–40), the
//! crash and stall odds and the longest stall, and which fault classes are on (worker
//! crashes, worker isolation, message loss, latency).
//!
//! The crash and stall odds are divided by the keys a partition holds on average, so a
//! reduce run survives its hazards about as often as the course's crash app does with one
//! key per partition, and a run's stalls add up to a few seconds on average — past the
//! reissue timeout in the tail, which is where two runs of one task overlap.
//!
//! Every worker is restarted a second after it dies while the coordinator runs, as the
//! course's crash test does. The safety phase plays the schedule; then faults stop (the
//! app's own hazards go on, as in the course) and the coordinator must exit within
//! [`LIVENESS_BOUND`], and every worker within 10 s plus the longest its last run can
//! still stall (a stall per key of the largest partition). Two safety checks judge the output: every `mr-out-Y`, whenever it
//! changes, must be partition Y of the sequential MapReduce (`mr::output`), and a visible
//! output never changes (`mr::atomic-output`); then the union must equal the sequential
//! run, and every worker must exit.
//!
//! A run's resolved scenario is a scenario file (`crate::spec`, workload kind
//! `mapreduce`; the workers are its `servers`, named `s0`…); the job's tasks are its
//! operations. The seed's draws are all made before a file's values replace them, so a run
//! from the file is the same run. The swarm draws none of the Raft swarms' knobs (`Knobs`:
//! engine timing, fault points), so `--plain-swarm` leaves its runs as they are.

use super::{compare_lines, generate_inputs, install_atomic_output_check, output_lines, wait_exit};
use crate::registry::{Opts, Scenario};
use crate::spec::{ScenarioSpec, Workload, WorkloadKind};
use crate::swarm::{play_schedule, spec, stop_faults};
use cores::mapreduce::ihash;
use nodes::mapreduce::{
    self,
    apps::{App, CrashKeys},
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::faults::{Fault, FaultEvent, FaultSchedule, Target};
use sim::{Failure, NodeId};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// After the safety phase, the coordinator must exit within this (simulated time).
pub const LIVENESS_BOUND: Duration = Duration::from_secs(180);

/// The swarm's random stream: its first draws are the [`Params`].
const STREAM: &str = "mr-swarm";

/// The scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![Scenario::new(
        "mapreduce::swarm",
        "1-6 workers, 1-8 maps, 1-10 reduces, several keys a partition, crash/stall odds and faults drawn from the seed",
        Duration::from_secs(1500),
        |o| Box::pin(swarm(o)),
    )
    .with_fault_schedule(safety_phase_end_ms)
    .with_scenario_files(WorkloadKind::MapReduce)]
}

/// The knobs of one run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Worker processes, `s0`….
    pub workers: usize,
    /// Map tasks (the first input files).
    pub maps: u32,
    /// Reduce tasks.
    pub reduces: u32,
    /// The app: its extra keys and hazards.
    pub app: CrashKeys,
    /// Faults play before this simulated time.
    pub safety_ms: u64,
    /// Mean gap between scheduled worker faults, in ms.
    pub mean_gap_ms: u64,
    /// Workers crash at scheduled times (beside the app's own crashes).
    pub crashes: bool,
    /// Workers are cut off from everyone for 1–15 s (alive and writing, but silent).
    pub isolations: bool,
    /// Request and reply loss, per mille.
    pub loss: Option<(u32, u32)>,
    /// Latency range, ms.
    pub delay_ms: Option<(u32, u32)>,
}

impl Params {
    /// Draws the knobs, in a fixed order (a scenario file replaces them afterwards).
    pub fn draw(rng: &mut ChaCha8Rng) -> Params {
        let safety_ms = rng.gen_range(10_000..=40_000);
        let workers = rng.gen_range(1..=6);
        let maps = rng.gen_range(1..=8u32);
        let reduces = rng.gen_range(1..=10u32);
        let keys = rng.gen_range(0..=40u32);
        // Keys per partition, on average (the crash app's four plus the extra ones).
        let per_partition = (keys + 4).div_ceil(reduces).max(1);
        let crash_permille = rng.gen_range(0..=330) / per_partition;
        let stall_permille = rng.gen_range(100..=660) / per_partition;
        let stall_ms_max = rng.gen_range(2_000..=25_000);
        let mean_gap_ms = rng.gen_range(1_000..=8_000);
        let crashes = rng.gen_bool(0.5);
        let isolations = rng.gen_bool(0.5);
        let loss = rng.gen_bool(0.2).then(|| (rng.gen_range(10..=100), rng.gen_range(10..=100)));
        let delay_ms = rng.gen_bool(0.3).then(|| {
            let lo = rng.gen_range(0..10);
            (lo, lo + rng.gen_range(1..40))
        });
        Params {
            workers,
            maps,
            reduces,
            app: CrashKeys { keys, crash_permille, stall_permille, stall_ms_max },
            safety_ms,
            mean_gap_ms,
            crashes,
            isolations,
            loss,
            delay_ms,
        }
    }

    /// The workload as a scenario file writes it.
    pub fn workload(&self) -> Workload {
        let a = self.app;
        Workload::MapReduce {
            maps: self.maps,
            reduces: self.reduces,
            keys: a.keys,
            crash_permille: a.crash_permille,
            stall_permille: a.stall_permille,
            stall_ms_max: a.stall_ms_max,
        }
    }

    /// The knobs in one line, as the seed draws them.
    pub fn describe(&self) -> String {
        let mut on = Vec::new();
        if self.crashes {
            on.push("worker crashes".to_string());
        }
        if self.isolations {
            on.push("worker isolation".into());
        }
        if let Some((q, r)) = self.loss {
            on.push(format!("loss req {q}‰ reply {r}‰"));
        }
        if let Some((lo, hi)) = self.delay_ms {
            on.push(format!("latency {lo}-{hi}ms"));
        }
        format!(
            "{}, a fault every ~{}ms; {}",
            self.head(),
            self.mean_gap_ms,
            if on.is_empty() { "no scheduled faults".into() } else { on.join(", ") }
        )
    }

    /// Describes the knobs at the start of the run ([`sim::describe_as`]): the drawn line,
    /// or, when a file gives the fault schedule, the file's schedule in its place.
    pub fn describe_run(&self, opts: &Opts) {
        crate::swarm::describe_knobs(opts, self.describe(), |s| {
            format!("{}; the file's fault schedule: {}", self.head(), s.summary())
        });
    }

    fn head(&self) -> String {
        let a = self.app;
        format!(
            "{} workers, {} maps, {} reduces, crash app with {} extra keys: crash {}‰, stall {}‰ up to {:.1}s per call; \
             safety phase {:.1}s",
            self.workers,
            self.maps,
            self.reduces,
            a.keys,
            a.crash_permille,
            a.stall_permille,
            a.stall_ms_max as f64 / 1000.0,
            self.safety_ms as f64 / 1000.0,
        )
    }
}

/// The end of the safety phase for `seed`, in simulated ms (the first draw of the swarm's
/// stream), so a `--faults` file is checked before the run.
pub fn safety_phase_end_ms(seed: u64) -> u64 {
    Params::draw(&mut sim::rng::stream(seed, STREAM, u64::MAX)).safety_ms
}

fn worker_name(i: usize) -> String {
    format!("s{i}")
}

/// The fault schedule: loss and latency from time 0, then at random gaps a worker crash
/// (the restart loop brings it back) or an isolation healed 1–15 s later.
pub fn draw_schedule(p: &Params, rng: &mut ChaCha8Rng) -> FaultSchedule {
    let mut events = Vec::new();
    if let Some((a, b)) = p.loss {
        events.push(FaultEvent {
            at_ms: 0,
            fault: Fault::Unreliable { request_loss_permille: a, reply_loss_permille: b, request_delay_ms_max: 0 },
        });
    }
    if let Some((lo, hi)) = p.delay_ms {
        events.push(FaultEvent { at_ms: 0, fault: Fault::Delay { min_ms: lo, max_ms: hi } });
    }
    let mut classes = Vec::new();
    if p.crashes {
        classes.push(0);
    }
    if p.isolations {
        classes.push(1);
    }
    let end = p.safety_ms.saturating_sub(300);
    let mut t = 0;
    while !classes.is_empty() {
        t += rng.gen_range(p.mean_gap_ms / 2..=p.mean_gap_ms * 3 / 2);
        if t >= end {
            break;
        }
        let node = Target::node(&worker_name(rng.gen_range(0..p.workers)));
        if classes[rng.gen_range(0..classes.len())] == 0 {
            events.push(FaultEvent { at_ms: t, fault: Fault::Crash { node } });
        } else {
            let heal = (t + rng.gen_range(1_000..=15_000)).min(end);
            events.push(FaultEvent { at_ms: t, fault: Fault::Isolate { node } });
            events.push(FaultEvent { at_ms: heal, fault: Fault::Heal });
        }
    }
    events.sort_by_key(|e| e.at_ms);
    FaultSchedule { events }
}

/// Fails the run the moment an `mr-out-Y` holds anything but partition Y of the
/// sequential MapReduce (`expected[Y]`, sorted lines): an output must appear whole and
/// right, whichever run renamed it.
fn install_partition_check(expected: Vec<Vec<String>>) {
    sim::fs::watch(Box::new(move |path, _op, content| {
        let r: usize = path.strip_prefix("mr-out-")?.parse().ok()?;
        let want = expected.get(r)?;
        let mut got: Vec<String> = String::from_utf8_lossy(content.unwrap_or(&[]))
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        got.sort();
        compare_lines("mr::output", &got, want)
            .err()
            .map(|f| Failure::safety("mr::output", format!("{path} is not partition {r}: {}", f.message)))
    }));
}

async fn swarm(opts: Opts) -> Result<(), Failure> {
    // Every draw is made as the seed orders it; a scenario file's values replace the drawn
    // ones only afterwards (crate::spec).
    let mut rng = sim::rng(STREAM);
    let drawn = Params::draw(&mut rng);
    let from_seed = draw_schedule(&drawn, &mut rng);
    let mut p = drawn.clone();
    if let Some(s) = spec(&opts) {
        p.workers = s.servers;
        p.safety_ms = s.safety_ms;
        if let Workload::MapReduce { maps, reduces, keys, crash_permille, stall_permille, stall_ms_max } = s.workload {
            (p.maps, p.reduces) = (maps, reduces);
            p.app = CrashKeys { keys, crash_permille, stall_permille, stall_ms_max };
        }
    }
    p.describe_run(&opts);
    let schedule = crate::swarm::chosen_schedule(&opts, from_seed);
    if let Some(r) = &opts.record_scenario {
        r.record(ScenarioSpec {
            scenario: String::new(),
            seed: sim::seed(),
            bug: opts.bug.clone(),
            servers: p.workers,
            safety_ms: p.safety_ms,
            workload: p.workload(),
            timing: None,
            fault_points: BTreeMap::new(),
            events: schedule.events.clone(),
        });
    }

    // The job.
    let mut inputs = generate_inputs(&mut sim::rng("mr-input"));
    inputs.truncate(p.maps as usize);
    for (name, text) in &inputs {
        sim::fs::put(name, text.clone().into_bytes());
    }
    let app = App::CrashKeys(p.app);
    let expected = mapreduce::sequential(app, &inputs).expect("crash_keys is deterministic");
    let mut partitions = vec![Vec::new(); p.reduces as usize];
    for line in &expected {
        let key = line.split(' ').next().unwrap_or_default();
        partitions[(ihash(key) % p.reduces) as usize].push(line.clone());
    }
    // A late run may still be working through its partition when the job ends: it stalls
    // at most once per key, then learns the coordinator is gone.
    let most_keys = partitions.iter().map(Vec::len).max().unwrap_or(0) as u64;
    let exit_bound = Duration::from_secs(10) + Duration::from_millis(p.app.stall_ms_max * (most_keys + 1));
    install_partition_check(partitions);
    install_atomic_output_check();
    let bugs = super::bugs(&opts);
    let files: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
    let reduces = p.reduces;
    let coord = sim::spawn_process("coord", move |ctx| mapreduce::coordinator(ctx, files.clone(), reduces, bugs));
    let workers: Vec<NodeId> = (0..p.workers)
        .map(|i| sim::spawn_process(&worker_name(i), move |ctx| mapreduce::worker(ctx, coord, app, bugs)))
        .collect();
    // Every worker comes back a second after it dies, while the coordinator runs.
    for &w in &workers {
        super::restart_while_coordinator_runs(w, coord);
    }

    // Faults during the safety phase, then none.
    let stop = Rc::new(Cell::new(false));
    let resolve_rng = RefCell::new(sim::rng("mr-swarm-resolve"));
    let ws = workers.clone();
    let resolve = move |role: &str| match role {
        "down" => {
            let down: Vec<NodeId> = ws.iter().copied().filter(|&w| !sim::is_alive(w)).collect();
            (!down.is_empty()).then(|| down[resolve_rng.borrow_mut().gen_range(0..down.len())])
        }
        "any" => Some(ws[resolve_rng.borrow_mut().gen_range(0..ws.len())]),
        _ => None,
    };
    play_schedule(schedule, workers.clone(), resolve, stop.clone(), p.safety_ms);
    {
        let stop = stop.clone();
        let mut everyone = workers.clone();
        everyone.push(coord);
        let safety = Duration::from_millis(p.safety_ms);
        sim::spawn(async move {
            sim::sleep_until(safety).await;
            stop.set(true);
            stop_faults(&everyone, sim::NetConfig::default());
        });
    }

    let limit = Duration::from_millis(p.safety_ms) + LIVENESS_BOUND;
    if !wait_exit(coord, limit).await {
        return Err(Failure::liveness(
            "mr::deadline",
            format!("the coordinator had not exited {}s into the job", limit.as_secs()),
        ));
    }
    compare_lines("mr::output", &output_lines(), &expected)?;
    // Give the restart loops time to notice the coordinator is gone.
    sim::sleep(Duration::from_secs(2)).await;
    let until = sim::now() + exit_bound;
    for &w in &workers {
        if !wait_exit(w, until).await {
            return Err(Failure::liveness(
                "mr::worker-exit",
                format!(
                    "worker {} still running {}s after the job ended (10 s, plus a stall per key of its partition)",
                    sim::node_name(w),
                    exit_bound.as_secs()
                ),
            ));
        }
    }
    Ok(())
}
