//! The sharded swarm: 2–4 replica groups of 3–5 servers and a controller of 3, clerks on
//! random keys, joins, leaves and moves at random times, and faults, every knob drawn from
//! the seed and printed. A safety phase plays the fault schedule (whole groups down,
//! partitions inside a group and between groups, the controller's servers partitioned,
//! single crashes, crashes right after a save, an unreliable network, duplicated requests,
//! clogged links inside a group) while the
//! configuration changes; then every fault stops, every server restarts, and within a bound
//! every clerk finishes its request and one more, and every key is read and written by a
//! fresh clerk. The whole history must be linearizable, and ownership, configurations and
//! Raft safety are judged throughout, as in every shardkv scenario.
//!
//! The run's resolved scenario — groups and controller, clerks, keys, snapshot threshold,
//! configuration changes, fault schedule, safety phase, timing knobs and fault points — is a
//! scenario file (`crate::spec::Workload::Sharded`): `--save-scenario` writes it, `run FILE`
//! runs it, and the shrinker cuts it down. Every draw of the seed is made as in a run
//! without a file, and the file's values replace the drawn ones afterwards.
//!
//! At least one group is always present: data does not survive a configuration without
//! groups (see `cores::shardkv`), so a swarm that emptied the service would lose keys by
//! design, not by a bug.

use super::tester::{OwnShardKv, ShardCluster, ShardKvClerk, ShardKvService};
use crate::engine::{RaftEngine, TestEngine};
use crate::kvraft::tester::NET;
use crate::kvraft::COURSE_LIMIT;
use crate::raft::observer::{MESSAGE_KINDS, TRIGGERS};
use crate::registry::{Opts, Scenario};
use crate::spec::{Clerk, ConfigChange, ReplicaGroup, Workload, WorkloadKind};
use crate::swarm::{chosen_schedule, play_schedule, record_resolved, spec, stop_faults};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::faults::{Fault, FaultEvent, FaultSchedule, Target};
use sim::{Failure, NodeId};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

/// After faults stop, every clerk's next requests and every key's read and write must
/// complete within this: a group down for the whole safety phase may have to take every
/// configuration made meanwhile, one at a time, each with its handoffs.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(40);

/// Mark: the swarm asked for a configuration change while some server was down.
pub const CONFIG_CHANGE_DURING_CRASH: &str = "shardkv: configuration change during a crash";

/// The marks the sharded swarm sets itself.
pub const MARKS: [(&str, &str); 1] =
    [(CONFIG_CHANGE_DURING_CRASH, "a join, leave or move was asked for while a server was down")];

/// The stream the knobs are drawn from first (so the safety phase's end is known before the
/// run: [`safety_phase_end_ms`]).
const STREAM: &str = "shardkv-swarm";

pub fn scenarios() -> Vec<Scenario> {
    scenarios_on::<RaftEngine, OwnShardKv>()
}

/// The swarm on engine `E` with service `S` (a user's group server and clerk).
pub fn scenarios_on<E: TestEngine, S: ShardKvService>() -> Vec<Scenario> {
    vec![Scenario::new(
        "shardkv::swarm_4b",
        "2-4 groups of 3-5 servers, clerks on random keys, joins/leaves/moves and faults drawn from the seed; then faults stop and every key and clerk progresses",
        COURSE_LIMIT,
        |o| Box::pin(swarm::<E, S>(o)),
    )
    .with_fault_schedule(safety_phase_end_ms)
    .with_holds(&TRIGGERS, &MESSAGE_KINDS)
    .with_scenario_files(WorkloadKind::Sharded)
    .with_client_history()
    .with_swarm_knobs(E::TAKES_TIMING, E::FAULT_POINT_REACH)]
}

/// The knobs of one sharded swarm run.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub safety_ms: u64,
    /// Servers of each group (gids 100, 101, …).
    pub group_sizes: Vec<usize>,
    /// Controller servers: the course's 3, not drawn; a scenario file may give fewer.
    pub ctrlers: usize,
    pub clerks: usize,
    pub keys: usize,
    pub maxraftstate: i64,
    /// Mean gap between configuration changes, and between faults.
    pub change_gap_ms: u64,
    pub fault_gap_ms: u64,
    /// Unreliable network: request and reply loss (per mille) and request delay (ms).
    pub loss: Option<(u32, u32, u32)>,
    pub groups_down: bool,
    pub partitions_in_group: bool,
    pub partitions_between_groups: bool,
    pub ctrler_partitions: bool,
    pub crashes: bool,
    pub crash_after_save: bool,
}

impl Knobs {
    fn draw(rng: &mut ChaCha8Rng) -> Knobs {
        let mut k = Knobs {
            safety_ms: rng.gen_range(10_000..25_000),
            group_sizes: (0..rng.gen_range(2..=4)).map(|_| rng.gen_range(3..=5)).collect(),
            ctrlers: 3,
            clerks: rng.gen_range(1..=8),
            keys: rng.gen_range(1..=20),
            maxraftstate: if rng.gen_bool(0.5) { rng.gen_range(200..3000) } else { -1 },
            change_gap_ms: rng.gen_range(300..3000),
            fault_gap_ms: rng.gen_range(300..2500),
            loss: rng.gen_bool(0.4).then(|| (rng.gen_range(10..150), rng.gen_range(10..150), rng.gen_range(0..30))),
            groups_down: rng.gen_bool(0.4),
            partitions_in_group: rng.gen_bool(0.5),
            partitions_between_groups: rng.gen_bool(0.4),
            ctrler_partitions: rng.gen_bool(0.4),
            crashes: rng.gen_bool(0.5),
            crash_after_save: rng.gen_bool(0.4),
        };
        if !(k.groups_down
            || k.partitions_in_group
            || k.partitions_between_groups
            || k.ctrler_partitions
            || k.crashes
            || k.crash_after_save)
        {
            match rng.gen_range(0..6) {
                0 => k.groups_down = true,
                1 => k.partitions_in_group = true,
                2 => k.partitions_between_groups = true,
                3 => k.ctrler_partitions = true,
                4 => k.crashes = true,
                _ => k.crash_after_save = true,
            }
        }
        k
    }

    /// The knobs on one line, as the seed draws them.
    fn describe(&self) -> String {
        let mut on = Vec::new();
        if let Some((a, b, d)) = self.loss {
            on.push(format!("unreliable: loss req {a}‰ reply {b}‰ delay ≤{d}ms"));
        }
        for (flag, name) in [
            (self.groups_down, "whole groups down"),
            (self.partitions_in_group, "partitions inside a group"),
            (self.partitions_between_groups, "partitions between groups"),
            (self.ctrler_partitions, "controller partitions"),
            (self.crashes, "crashes"),
            (self.crash_after_save, "crashes after a save"),
        ] {
            if flag {
                on.push(name.into());
            }
        }
        format!(
            "{}, a configuration change every ~{}ms, a fault every ~{}ms; {}",
            self.head(),
            self.change_gap_ms,
            self.fault_gap_ms,
            on.join(", ")
        )
    }

    /// The line shown in place of [`Knobs::describe`]'s when a file gives the fault
    /// schedule (and, a scenario file, the configuration changes): what the file plays.
    fn describe_given(&self, schedule: &FaultSchedule, changes_given: bool) -> String {
        let changes = if changes_given {
            "the file's configuration changes".to_string()
        } else {
            format!("a configuration change every ~{}ms", self.change_gap_ms)
        };
        format!("{}, {changes}; the file's fault schedule: {}", self.head(), schedule.summary())
    }

    fn head(&self) -> String {
        use crate::count;
        format!(
            "groups of {:?} servers, {}, {} on {}, maxraftstate {}, safety phase {:.1}s",
            self.group_sizes,
            count(self.ctrlers, "controller server"),
            count(self.clerks, "clerk"),
            count(self.keys, "key"),
            self.maxraftstate,
            self.safety_ms as f64 / 1000.0,
        )
    }
}

/// The end of the swarm's safety phase for `seed`, in simulated ms: the knobs' first draw,
/// computed outside the run so a `--faults` file with events it would never play is refused.
pub fn safety_phase_end_ms(seed: u64) -> u64 {
    Knobs::draw(&mut sim::rng::stream(seed, STREAM, u64::MAX)).safety_ms
}

fn gid(g: usize) -> u64 {
    100 + g as u64
}

fn server(g: usize, i: usize) -> Target {
    Target::node(&format!("s{}-{i}", gid(g)))
}

/// The random stream of [`draw_network`]: a stream of its own, so the network's extra
/// faults move none of the knobs', the schedule's or the configuration changes' draws.
const NETWORK_STREAM: &str = "shardkv-swarm-network";

/// Draws the network faults the main schedule lacks, as the Raft and key/value swarms have
/// them: duplicated requests (in about a third of the runs, 10–200‰ from time 0), and in
/// about two runs in five, clogs between two servers of one group at random gaps, each
/// holding the link's messages 300–3000 ms and then releasing them in a burst.
fn draw_network(k: &Knobs, rng: &mut ChaCha8Rng) -> Vec<FaultEvent> {
    let mut events = Vec::new();
    let duplicate = rng.gen_bool(0.3);
    let permille = rng.gen_range(10..200);
    if duplicate {
        events.push(FaultEvent { at_ms: 0, fault: Fault::Duplicate { permille } });
    }
    if !rng.gen_bool(0.4) {
        return events;
    }
    let end = k.safety_ms.saturating_sub(300);
    let mut t = 0;
    loop {
        t += rng.gen_range(k.fault_gap_ms / 2..=k.fault_gap_ms * 3 / 2);
        if t >= end {
            break;
        }
        let g = rng.gen_range(0..k.group_sizes.len());
        let n = k.group_sizes[g];
        let from = rng.gen_range(0..n);
        let to = (from + rng.gen_range(1..n)) % n;
        let back = (t + rng.gen_range(300..3000)).min(end);
        events.push(FaultEvent { at_ms: t, fault: Fault::Clog { from: server(g, from), to: server(g, to) } });
        events.push(FaultEvent { at_ms: back, fault: Fault::Release { from: server(g, from), to: server(g, to) } });
    }
    events
}

/// Draws the fault schedule: the network's loss at time 0, then faults at random gaps, each
/// undone after a random hold.
fn draw_schedule(k: &Knobs, rng: &mut ChaCha8Rng) -> FaultSchedule {
    let mut events = Vec::new();
    if let Some((a, b, d)) = k.loss {
        events.push(FaultEvent {
            at_ms: 0,
            fault: Fault::Unreliable { request_loss_permille: a, reply_loss_permille: b, request_delay_ms_max: d },
        });
    }
    let mut classes = Vec::new();
    for (on, c) in [
        (k.groups_down, 0),
        (k.partitions_in_group, 1),
        (k.partitions_between_groups, 2),
        (k.ctrler_partitions, 3),
        (k.crashes, 4),
        (k.crash_after_save, 5),
    ] {
        if on {
            classes.push(c);
        }
    }
    let groups = k.group_sizes.len();
    let end = k.safety_ms.saturating_sub(300);
    let mut t = 0;
    loop {
        t += rng.gen_range(k.fault_gap_ms / 2..=k.fault_gap_ms * 3 / 2);
        if t >= end {
            break;
        }
        let undo_at = (t + rng.gen_range(300..4000)).min(end);
        let g = rng.gen_range(0..groups);
        let n = k.group_sizes[g];
        let mut at = |at_ms, fault| events.push(FaultEvent { at_ms, fault });
        match classes[rng.gen_range(0..classes.len())] {
            0 => {
                for i in 0..n {
                    at(t, Fault::Crash { node: server(g, i) });
                    at(undo_at, Fault::Restart { node: server(g, i) });
                }
            }
            1 => {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for i in 0..n {
                    if rng.gen_bool(0.5) {
                        a.push(server(g, i));
                    } else {
                        b.push(server(g, i));
                    }
                }
                if rng.gen_bool(0.5) {
                    // The leader on the first side, whatever its size.
                    a.push(Target::role(&format!("leader@{}", gid(g))));
                }
                at(t, Fault::Partition { a, b });
                at(undo_at, Fault::Heal);
            }
            2 => {
                let other = (g + rng.gen_range(1..groups)) % groups;
                let a = (0..n).map(|i| server(g, i)).collect();
                let b = (0..k.group_sizes[other]).map(|i| server(other, i)).collect();
                at(t, Fault::Partition { a, b });
                at(undo_at, Fault::Heal);
            }
            3 => {
                let mut a = vec![Target::node(&format!("ctrler{}", rng.gen_range(0..3)))];
                if rng.gen_bool(0.5) {
                    a.push(Target::role("leader@ctrler"));
                }
                let b = (0..3).map(|i| Target::node(&format!("ctrler{i}"))).collect();
                at(t, Fault::Partition { a, b });
                at(undo_at, Fault::Heal);
            }
            4 => {
                let node = if rng.gen_bool(0.5) {
                    Target::role(&format!("leader@{}", gid(g)))
                } else {
                    server(g, rng.gen_range(0..n))
                };
                at(t, Fault::Crash { node });
                at(undo_at, Fault::Restart { node: Target::role(&format!("down@{}", gid(g))) });
            }
            _ => {
                let node = if rng.gen_bool(0.5) {
                    Target::role(&format!("leader@{}", gid(g)))
                } else {
                    server(g, rng.gen_range(0..n))
                };
                let delay_ms = if rng.gen_bool(0.5) { 0 } else { rng.gen_range(1..30) };
                let back = if rng.gen_bool(0.5) { (t + rng.gen_range(20..400)).min(end) } else { undo_at };
                at(t, Fault::CrashAfterSave { node, saves: rng.gen_range(1..4), delay_ms });
                at(back, Fault::Restart { node: Target::role(&format!("down@{}", gid(g))) });
            }
        }
    }
    events.sort_by_key(|e| e.at_ms);
    FaultSchedule { events }
}

/// One configuration change the tester makes.
#[derive(Clone, Debug)]
enum Change {
    Join(Vec<usize>),
    Leave(Vec<usize>),
    Move { shard: usize, group: usize },
}

impl Change {
    /// The change as a scenario file writes it (groups by gid), asked for at `at_ms`.
    fn resolved(self, at_ms: u64) -> ConfigChange {
        let gids = |gs: Vec<usize>| gs.into_iter().map(gid).collect();
        match self {
            Change::Join(gs) => ConfigChange::Join { at_ms, gids: gids(gs) },
            Change::Leave(gs) => ConfigChange::Leave { at_ms, gids: gids(gs) },
            Change::Move { shard, group } => ConfigChange::Move { at_ms, shard, gid: gid(group) },
        }
    }
}

/// Draws the configuration changes at random times: first a join of some groups at once,
/// then joins of absent groups, leaves of present ones (never the last) and moves of a shard
/// to a present group.
fn draw_changes(k: &Knobs, rng: &mut ChaCha8Rng) -> Vec<(u64, Change)> {
    let groups = k.group_sizes.len();
    let mut present: BTreeSet<usize> = BTreeSet::new();
    let mut first: Vec<usize> = (0..groups).filter(|_| rng.gen_bool(0.5)).collect();
    if first.is_empty() {
        first.push(rng.gen_range(0..groups));
    }
    present.extend(first.iter().copied());
    let mut changes = vec![(0, Change::Join(first))];
    let mut t = 0;
    loop {
        t += rng.gen_range(k.change_gap_ms / 2..=k.change_gap_ms * 3 / 2);
        if t >= k.safety_ms {
            break;
        }
        let absent: Vec<usize> = (0..groups).filter(|g| !present.contains(g)).collect();
        let change = match rng.gen_range(0..3) {
            0 if !absent.is_empty() => {
                let mut pick: Vec<usize> = absent.iter().copied().filter(|_| rng.gen_bool(0.5)).collect();
                if pick.is_empty() {
                    pick.push(*absent.choose(rng).expect("non-empty"));
                }
                present.extend(pick.iter().copied());
                Change::Join(pick)
            }
            1 if present.len() > 1 => {
                let mut list: Vec<usize> = present.iter().copied().collect();
                list.shuffle(rng);
                list.truncate(rng.gen_range(1..present.len()));
                for g in &list {
                    present.remove(g);
                }
                Change::Leave(list)
            }
            _ => {
                let list: Vec<usize> = present.iter().copied().collect();
                Change::Move {
                    shard: rng.gen_range(0..nodes::shardkv::NSHARDS),
                    group: *list.choose(rng).expect("one present"),
                }
            }
        };
        changes.push((t, change));
    }
    changes
}

/// Who leads a group now, as its tester sees it (a live server believing it leads), if any.
type LeaderView = Box<dyn Fn() -> Option<NodeId>>;

/// Resolves the swarm's roles: `leader@<gid>` / `leader@ctrler` (a live server that believes
/// it leads), `down@<gid>` (a crashed server of the group, drawn), `any`.
fn resolver(
    groups: Vec<(u64, Vec<NodeId>, LeaderView)>,
    ctrler_leader: LeaderView,
    all: Vec<NodeId>,
) -> impl Fn(&str) -> Option<NodeId> {
    let rng = RefCell::new(sim::rng("shardkv-fault-resolve"));
    move |role: &str| {
        if role == "any" {
            return Some(all[rng.borrow_mut().gen_range(0..all.len())]);
        }
        let (what, whom) = role.split_once('@')?;
        if whom == "ctrler" {
            return (what == "leader").then(&ctrler_leader).flatten();
        }
        let gid: u64 = whom.parse().ok()?;
        let (_, servers, leader) = groups.iter().find(|(g, _, _)| *g == gid)?;
        match what {
            "leader" => leader(),
            "down" => {
                let down: Vec<NodeId> = servers.iter().copied().filter(|&n| !sim::is_alive(n)).collect();
                (!down.is_empty()).then(|| down[rng.borrow_mut().gen_range(0..down.len())])
            }
            _ => None,
        }
    }
}

async fn swarm<E: TestEngine, S: ShardKvService>(opts: Opts) -> Result<(), Failure> {
    // Every draw is made as the seed orders it, and a scenario file's values replace the
    // drawn ones only afterwards, so the seed's later draws do not move (crate::spec).
    let mut rng = sim::rng(STREAM);
    let drawn = Knobs::draw(&mut rng);
    let mut k = drawn.clone();
    let mut groups: Vec<(u64, usize)> = drawn.group_sizes.iter().enumerate().map(|(g, &n)| (gid(g), n)).collect();
    let mut ctrlers = 3;
    let (mut append_percent, mut put_percent) = (45, 10);
    let mut clerks: Vec<Clerk> = (0..drawn.clerks as u64).map(|id| Clerk::new(id, u64::MAX)).collect();
    let file = spec(&opts);
    if let Some(s) = file {
        k.safety_ms = s.safety_ms;
        if let Workload::Sharded {
            ctrlers: c,
            keys,
            maxraftstate,
            append_percent: a,
            put_percent: u,
            groups: gs,
            clerks: cs,
            ..
        } = &s.workload
        {
            groups = gs.iter().map(|g| (g.gid, g.servers)).collect();
            (ctrlers, k.keys, k.maxraftstate, append_percent, put_percent) = (*c, *keys, *maxraftstate, *a, *u);
            clerks.clone_from(cs);
            // Made in id order, so a missing id's draws can be skipped (ShardCluster::skip_client).
            clerks.sort_by_key(|c| c.id);
        }
        k.group_sizes = groups.iter().map(|&(_, n)| n).collect();
        k.ctrlers = ctrlers;
        k.clerks = clerks.len();
    }
    // A file's schedule (and a scenario file's changes) are shown for the drawn ones, which
    // the trace hash keeps (sim::describe_as).
    crate::swarm::describe_knobs(&opts, k.describe(), |s| k.describe_given(s, file.is_some()));
    if groups.iter().enumerate().any(|(g, &(id, _))| id != gid(g)) {
        let gids: Vec<u64> = groups.iter().map(|&(id, _)| id).collect();
        sim::describe(format!("groups {gids:?}"));
    }
    // Drawn whether or not a file replaces it, so every later draw is the same either way.
    let mut from_seed = draw_schedule(&drawn, &mut rng);
    let network = draw_network(&drawn, &mut sim::rng(NETWORK_STREAM));
    if !network.is_empty() {
        let dup = network.iter().find_map(|e| match e.fault {
            Fault::Duplicate { permille } => Some(permille),
            _ => None,
        });
        let clogs = network.iter().filter(|e| matches!(e.fault, Fault::Clog { .. })).count();
        let line = format!("network: duplicates {}‰, {clogs} clogs inside groups", dup.unwrap_or(0));
        // Part of the drawn schedule, which a file's replaces.
        sim::describe_as(&line, crate::swarm::given_schedule(&opts).is_none().then(|| line.clone()));
        from_seed.events.extend(network);
        // A stable sort: events drawn for one instant keep their drawing order.
        from_seed.events.sort_by_key(|e| e.at_ms);
    }
    let schedule = chosen_schedule(&opts, from_seed);
    let drawn_changes = draw_changes(&drawn, &mut rng);
    let changes: Vec<ConfigChange> = match file.map(|s| &s.workload) {
        Some(Workload::Sharded { changes, .. }) => changes.clone(),
        _ => drawn_changes.into_iter().map(|(at_ms, c)| c.resolved(at_ms)).collect(),
    };
    sim::describe(format!("{} configuration changes", changes.len()));

    // The engine's timing and the code-level fault points, from a stream of their own.
    let knobs = crate::swarm::knobs::<E>(&opts);
    let recorded = Workload::Sharded {
        ctrlers,
        keys: k.keys,
        maxraftstate: k.maxraftstate,
        append_percent,
        put_percent,
        groups: groups.iter().map(|&(gid, servers)| ReplicaGroup { gid, servers }).collect(),
        clerks: clerks.iter().map(|c| Clerk { operations: 0, ..*c }).collect(),
        changes: changes.clone(),
    };
    let servers = ctrlers + groups.iter().map(|&(_, n)| n).sum::<usize>();
    record_resolved(&opts, servers, k.safety_ms, &knobs, recorded, &schedule);
    let mut cfg = ShardCluster::<E, S>::with_groups(
        opts.scenario_or("shardkv::swarm_4b"),
        &groups,
        ctrlers,
        false,
        k.maxraftstate,
        opts.bug.as_deref(),
        knobs.timing.as_ref(),
    )
    .attaching_history(opts.attach_history);
    let index = |gids: &[u64]| -> Vec<usize> {
        gids.iter().map(|g| groups.iter().position(|&(id, _)| id == *g).expect("checked: a file's groups")).collect()
    };
    let all: Vec<NodeId> =
        cfg.ctrler.servers.iter().copied().chain(cfg.groups.iter().flat_map(|g| g.servers.iter().copied())).collect();
    let groups: Vec<(u64, Vec<NodeId>, LeaderView)> = (0..cfg.groups.len())
        .map(|gi| {
            let view: LeaderView = Box::new(cfg.leader_view(gi));
            (cfg.groups[gi].gid, cfg.groups[gi].servers.clone(), view)
        })
        .collect();
    let ctrler_view = cfg.ctrler.leader_view();
    let ctrler_servers = cfg.ctrler.servers.clone();
    let ctrler_leader: LeaderView = Box::new(move || ctrler_view().map(|i| ctrler_servers[i]));
    let stop = Rc::new(Cell::new(false));
    play_schedule(schedule, all.clone(), resolver(groups, ctrler_leader, all.clone()), stop.clone(), k.safety_ms);

    // The first join, before any clerk starts — bounded by the safety phase like every
    // later change: the fault points stop only when the safety phase ends, so a controller
    // they keep crashing might never commit it, and a wait without bound here would hold the
    // faults on for the whole run. Cut off, it is sent again once the faults stop (below).
    let keys: Vec<String> = (0..k.keys).map(|i| i.to_string()).collect();
    let ConfigChange::Join { gids: first, .. } = &changes[0] else { unreachable!("the first change is a join") };
    let first = index(first);
    let safety_left = Duration::from_millis(k.safety_ms).saturating_sub(sim::now());
    let first_joined = match sim::timeout(safety_left, cfg.joinm(&first)).await {
        Some(result) => {
            result?;
            true
        }
        None => false,
    };

    // The clerks: random operations on random keys until told to stop (or, from a scenario
    // file, after their number of operations). Each draws from a stream named by its id.
    let n = clerks.len();
    let completed: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(vec![0; n]));
    let finished = Rc::new(Cell::new(0usize));
    let clerks_stop = Rc::new(Cell::new(false));
    for (slot, clerk) in clerks.iter().copied().enumerate() {
        // A left-out clerk's number and draws are taken, so each kept clerk is `c<id>`.
        cfg.skip_clients_to(clerk.id);
        let mut ck = cfg.make_client();
        let cli = clerk.id;
        debug_assert_eq!(ck.cli, cli, "the clerk is c<id>");
        let (stop, completed, finished, keys) =
            (clerks_stop.clone(), completed.clone(), finished.clone(), keys.clone());
        let mut rng = sim::rng(&format!("shardkv-swarm-client-{cli}"));
        let recorder = opts.record_scenario.clone();
        sim::spawn(async move {
            clerk.start(&mut rng, keys.len()).await;
            // Skipped operations count, as in the key/value swarm.
            let mut j = clerk.skip;
            while !stop.get() && j - clerk.skip < clerk.operations {
                if let Some(r) = &recorder {
                    r.count_operation(cli);
                }
                let (key, pick) = Clerk::draw_operation(&mut rng, keys.len());
                let (key, value) = (&keys[key], format!("x {cli} {j} y"));
                if pick < append_percent {
                    ck.append(key, &value).await;
                } else if pick < append_percent + put_percent {
                    ck.put(key, &value).await;
                } else {
                    ck.get(key).await;
                }
                j += 1;
                completed.borrow_mut()[slot] += 1;
            }
            finished.set(finished.get() + 1);
        });
    }

    // The configuration changes, at their drawn times, during the safety phase — which
    // ends on time even if a change is still waiting then (a controller that the faults keep
    // crashing may not commit one before the faults stop: the liveness phase is what must
    // finish it). A change cut off is not followed up: the tester's clerk drops its call.
    // None follows a first join cut off: the controller's clerk still owes that request (its
    // next call would reuse the sequence number), and the safety phase is over anyway.
    let skip = if first_joined { 1 } else { changes.len() };
    let safety_left = Duration::from_millis(k.safety_ms).saturating_sub(sim::now());
    let changed = sim::timeout(safety_left, async {
        for change in changes.into_iter().skip(skip) {
            sim::sleep_until(Duration::from_millis(change.at_ms())).await;
            if all.iter().any(|&n| !sim::is_alive(n)) {
                sim::mark(CONFIG_CHANGE_DURING_CRASH);
            }
            match change {
                ConfigChange::Join { gids, .. } => cfg.joinm(&index(&gids)).await?,
                ConfigChange::Leave { gids, .. } => cfg.leavem(&index(&gids)).await?,
                ConfigChange::Move { shard, gid, .. } => {
                    sim::note(sim::NoteCode::ShardMove, shard as u64, || {
                        format!("tester: move shard {shard} to {gid}")
                    });
                    let out = cfg.mck.move_shard(shard, gid).await;
                    if out != nodes::shardctrler::CtrlerOut::Ok {
                        return Err(Failure::safety(
                            "shardkv::tester",
                            format!("the controller answered a move with {out:?}"),
                        ));
                    }
                }
            }
        }
        Ok::<(), Failure>(())
    })
    .await;
    if let Some(result) = changed {
        result?;
    }
    sim::sleep_until(Duration::from_millis(k.safety_ms)).await;

    // Liveness: every fault stops and every server restarts.
    stop.set(true);
    stop_faults(&all, NET);
    for &n in &all {
        if !sim::is_alive(n) {
            sim::restart(n);
        }
    }
    let t0 = sim::now();
    let not_live = |what: &str| {
        Failure::liveness(
            "shardkv::swarm-liveness",
            format!("within {}s after every fault stopped: {what}", LIVENESS_BOUND.as_secs()),
        )
    };
    if !first_joined {
        // The same request again (the clerk keeps its sequence number until a call
        // succeeds), so it takes effect once even if the cut-off call landed; within the
        // liveness bound, which counts it.
        match sim::timeout(LIVENESS_BOUND, cfg.joinm(&first)).await {
            Some(result) => result?,
            None => return Err(not_live("the first join was not committed")),
        }
    }
    let at_stop = completed.borrow().clone();
    // Every key read and written by a fresh clerk, numbered after every clerk the seed drew
    // (a file that left out the last ones does not give their number to the probe: it is
    // c<drawn clerks>, as in the run the file came from).
    cfg.skip_clients_to(drawn.clerks as u64);
    let mut probe: ShardKvClerk<S::Clerk> = cfg.make_client();
    let probed = Rc::new(Cell::new(0usize));
    {
        let (probed, keys) = (probed.clone(), keys.clone());
        sim::spawn(async move {
            for key in &keys {
                probe.get(key).await;
                probe.append(key, "z").await;
                probed.set(probed.get() + 1);
            }
        });
    }
    loop {
        // A clerk's next request and one more — or as many as a scenario file leaves it.
        let behind: Vec<usize> =
            (0..n).filter(|&c| completed.borrow()[c] < (at_stop[c] + 2).min(clerks[c].operations)).collect();
        if behind.is_empty() && probed.get() == keys.len() {
            break;
        }
        if sim::now() - t0 > LIVENESS_BOUND {
            let mut what: BTreeMap<&str, String> = BTreeMap::new();
            if !behind.is_empty() {
                what.insert(
                    "clerks",
                    format!("{} of {n} clerks made no progress (first: c{})", behind.len(), clerks[behind[0]].id),
                );
            }
            if probed.get() < keys.len() {
                what.insert("keys", format!("key {:?} was not read and written", keys[probed.get()]));
            }
            return Err(not_live(&what.values().cloned().collect::<Vec<_>>().join("; ")));
        }
        sim::sleep(Duration::from_millis(10)).await;
    }
    sim::describe(format!(
        "liveness: every clerk and key progressed {:.1}s after faults stopped",
        (sim::now() - t0).as_secs_f64()
    ));
    clerks_stop.set(true);
    while finished.get() < n {
        sim::sleep(Duration::from_millis(10)).await;
    }
    cfg.checklogs()?;
    cfg.finish()
}
