//! Swarm testing, shared by the families: every knob drawn from the seed — cluster size,
//! which fault classes are on and their rates — and printed at the start of the run; the
//! faults as an explicit schedule (`sim::faults`) drawn from the seed or loaded from a file;
//! a safety phase that plays it, then a liveness phase in which every fault stops. Beside
//! the schedule, the engine's timing and the code-level fault points ([`Knobs`]) are drawn
//! from a stream of their own, printed, and recorded in scenario files.

use crate::engine::{fault_point_reach, TestEngine};
use crate::registry::Opts;
use crate::spec::{ScenarioSpec, Timing, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::faults::{self, Fault, FaultEvent, FaultSchedule, Target};
use sim::{net, FaultPoint, NetConfig, NodeId};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The knobs of one swarm run.
#[derive(Clone, Debug)]
pub struct Params {
    pub servers: usize,
    pub safety_ms: u64,
    pub mean_gap_ms: u64,
    pub propose_gap_ms: u64,
    pub loss: Option<(u32, u32, u32)>,
    pub reordering: bool,
    pub duplicate_permille: u32,
    pub delay_ms: Option<(u32, u32)>,
    pub partitions: bool,
    pub cuts: bool,
    pub clogs: bool,
    pub crashes: bool,
    pub crash_after_save: bool,
    /// Figure-8 style churn: crash the leader, restart someone soon after.
    pub churn: bool,
}

impl Params {
    /// Draws the knobs; `servers` is the family's range of cluster sizes.
    pub fn draw(rng: &mut ChaCha8Rng, servers: std::ops::RangeInclusive<usize>) -> Params {
        let mut p = Params {
            servers: rng.gen_range(servers),
            safety_ms: rng.gen_range(10_000..30_000),
            mean_gap_ms: rng.gen_range(200..2000),
            propose_gap_ms: rng.gen_range(5..100),
            loss: rng.gen_bool(0.5).then(|| (rng.gen_range(10..200), rng.gen_range(10..200), rng.gen_range(0..30))),
            reordering: rng.gen_bool(0.3),
            duplicate_permille: if rng.gen_bool(0.3) { rng.gen_range(10..200) } else { 0 },
            delay_ms: rng.gen_bool(0.3).then(|| {
                let lo = rng.gen_range(0..10);
                (lo, lo + rng.gen_range(1..40))
            }),
            partitions: rng.gen_bool(0.5),
            cuts: rng.gen_bool(0.5),
            clogs: rng.gen_bool(0.5),
            crashes: rng.gen_bool(0.5),
            crash_after_save: rng.gen_bool(0.5),
            churn: rng.gen_bool(0.3),
        };
        if !(p.partitions || p.cuts || p.clogs || p.crashes || p.crash_after_save || p.churn) {
            // Swarm testing wants some fault in every run: fall back to one class.
            match rng.gen_range(0..6) {
                0 => p.partitions = true,
                1 => p.cuts = true,
                2 => p.clogs = true,
                3 => p.crashes = true,
                4 => p.crash_after_save = true,
                _ => p.churn = true,
            }
        }
        p
    }

    /// The run's knobs on one line, as the seed draws them. `proposals`: the workload is
    /// the Raft swarms' stream of proposals (a clerk workload describes itself).
    pub fn describe(&self, proposals: bool) -> String {
        let mut on = Vec::new();
        if let Some((a, b, d)) = self.loss {
            on.push(format!("loss req {a}‰ reply {b}‰ delay ≤{d}ms"));
        }
        if self.reordering {
            on.push("long reordering".into());
        }
        if self.duplicate_permille > 0 {
            on.push(format!("duplicates {}‰", self.duplicate_permille));
        }
        if let Some((lo, hi)) = self.delay_ms {
            on.push(format!("latency {lo}-{hi}ms"));
        }
        for (flag, name) in [
            (self.partitions, "partitions"),
            (self.cuts, "one-way cuts"),
            (self.clogs, "clogs"),
            (self.crashes, "crashes"),
            (self.crash_after_save, "crashes after a save"),
            (self.churn, "leader churn"),
        ] {
            if flag {
                on.push(name.into());
            }
        }
        format!(
            "{}, a fault every ~{}ms{}; {}",
            self.head(),
            self.mean_gap_ms,
            self.proposing(proposals),
            on.join(", ")
        )
    }

    /// Describes the run's knobs ([`sim::describe_as`]): the line the seed draws, hashed in
    /// every run; shown as is, unless a file gives the fault schedule — network settings
    /// included — and the line shows the file's instead.
    pub fn describe_run(&self, proposals: bool, opts: &Opts) {
        // A scenario file's workload as it proposes: its bursts, when it gives bursts
        // instead of steady rounds (shown only; the hashed line stays the seed's).
        let proposing = match spec(opts).map(|s| &s.workload) {
            Some(Workload::Proposals { bursts, proposals: 0, .. }) if proposals && !bursts.is_empty() => {
                format!(", {} of proposals", crate::count(bursts.len(), "burst"))
            }
            _ => self.proposing(proposals),
        };
        describe_knobs(opts, self.describe(proposals), |s| {
            format!("{}{proposing}; the file's fault schedule: {}", self.head(), s.summary())
        });
    }

    fn head(&self) -> String {
        format!("{} servers, safety phase {:.1}s", self.servers, self.safety_ms as f64 / 1000.0)
    }

    fn proposing(&self, proposals: bool) -> String {
        if proposals {
            format!(", a proposal every {}ms", self.propose_gap_ms)
        } else {
            String::new()
        }
    }
}

/// The search knobs of a swarm run beyond its fault schedule: the engine's timing and the
/// code-level fault points (`sim::FaultPoint`). Drawn from a stream of their own
/// (`swarm-knobs`), so turning them off (`--plain-swarm`) or replacing them from a scenario
/// file leaves the cluster, the workload and the fault schedule exactly as the seed draws
/// them: a plain run is the run the swarm made before the knobs existed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// The engine's timing; `None`: the engine's defaults.
    pub timing: Option<Timing>,
    /// The enabled fault points and their firing probabilities (per mille when reached).
    pub fault_points: BTreeMap<FaultPoint, u32>,
}

/// How many of [`FaultPoint::ALL`] the knobs drew before the stream's later draws (commit
/// news, the vote retry, the profile's quarter); the points after them are drawn last.
const FIRST_POINTS: usize = 8;

/// The fault points the key/value swarm's draw leaves out (its Paxos port's too, which runs
/// the same swarm): the two that slow a server's messages, `net.delay_send` and `node.pause`.
/// Over 1 000 seeds of `kvraft::swarm_3b` the knob runs found latest-only-duplicates less
/// often than the same seeds' plain runs (222 against 236), and leaving these two out
/// recovered the most on their own seeds (20 → 30 of 171 seeds with `net.delay_send`, 28 →
/// 40 of 168 with `node.pause`), bringing every key/value-service bug to at least its plain
/// rate. The cost: accept-stale-term-append, which `node.pause` kept up, fails there less
/// often (124 plain, 122 with both, 95 without). The Raft and sharded swarms keep them.
/// BENCHMARKS.md, "Session 11: the key/value swarm without the two message-slowing points".
pub const KV_SWARM_LEFT_OUT: [FaultPoint; 2] = [FaultPoint::DelaySend, FaultPoint::PauseNode];

/// The fault points only a clerk reaches (`clerk.late_duplicate`): a swarm without clerks
/// (the Raft swarm, which proposes from the tester) never enables them, its family declares
/// no coverage mark for them, and a scenario file enabling one in a scenario without a
/// client history is refused.
pub const CLIENT_POINTS: [FaultPoint; 1] = [FaultPoint::LateDuplicate];

/// The coverage marks of the fault points a swarm without clerks can fire
/// ([`sim::fault_point_marks`] without [`CLIENT_POINTS`]), for its family to declare.
pub fn clerkless_fault_point_marks() -> Vec<(&'static str, &'static str)> {
    let clerk: Vec<&str> = CLIENT_POINTS.iter().map(|p| p.mark()).collect();
    sim::fault_point_marks().into_iter().filter(|(mark, _)| !clerk.contains(mark)).collect()
}

/// The random stream the knobs are drawn from.
const KNOBS_STREAM: &str = "swarm-knobs";

/// A swarm run's knob profile, drawn from the knobs' stream (its eighth first). Swarm
/// testing's point is diversity of configurations (Groce et al., "Swarm Testing", ISSTA
/// 2012): a knob that exposes one bug hides another (fault points and quick elections add
/// saves and term changes, which close the window an unsaved acknowledgement needs; slow
/// heartbeats make fewer stale snapshots), so no single setting is drawn for every run.
/// Measured per profile in BENCHMARKS.md ("Failure rates before and after the swarm
/// knobs", session 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// No knob: the engine's timing, no fault point — the run `--plain-swarm` makes.
    Plain,
    /// Fast elections: heartbeats every 100–130 ms, election timeouts from 150–400 ms with a
    /// spread of 50–300 ms; no fault point. More elections and term changes: more chances
    /// for a leader of an old term or a forgotten term to matter.
    Fast,
    /// Slow elections: heartbeats every 150–200 ms, election timeouts from 500–1000 ms with a
    /// spread of 100–600 ms; no fault point. Long terms: long windows between saves.
    Slow,
    /// Timing anywhere in the allowed range (heartbeats 100–200 ms, election timeouts from
    /// 200–700 ms with a spread of 50–600 ms, batches of 1–8 entries a third of the time and
    /// 20–200 otherwise), each fault point enabled with probability 1/2.
    Chaos,
    /// Amnesia: fast elections' timing with two fault points, `replica.crash_after_reply`
    /// and `replica.crash_after_vote` (drawn as chaos draws them, always on): a node crashes
    /// right after some of its replies, and after many of its granted votes, and is back
    /// within 200 ms, so a vote or an acknowledgement it sent before saving is forgotten
    /// while the election or the replication it answered still runs. Aimed at the
    /// persistence bugs the other profiles reach rarely (an unsaved vote, term or
    /// acknowledgement); measured in BENCHMARKS.md.
    Amnesia,
    /// Vote retry: the engine's own timing and no fault point, with failed votes retried
    /// within their term (`retry_failed_votes` always on) and commit news with the next
    /// AppendEntries. The near-plain profile: the schedule's hold episodes meet the timing
    /// they were drawn for, which a stale append reply needs (fault points, commit news at
    /// once and other timing each made stale-append-reply rarer than plain in the
    /// measurements; this profile a little more frequent).
    VoteRetry,
    /// Faults: the engine's own timing with chaos's fault points (each enabled with
    /// probability 1/2) except `replica.hold_snapshot`, which halves snapshot-wipes-log. The
    /// fault points raise accept-stale-term-append, no-persist-term and the unsaved-vote and
    /// acknowledgement bugs; the engine's timing keeps snapshot-wipes-log at its plain rate,
    /// which chaos's timing does not.
    Faults,
}

impl Profile {
    /// The profile's name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Plain => "plain",
            Profile::Fast => "fast elections",
            Profile::Slow => "slow elections",
            Profile::Chaos => "chaos",
            Profile::Amnesia => "amnesia",
            Profile::VoteRetry => "vote retry",
            Profile::Faults => "faults",
        }
    }
}

impl Knobs {
    /// Draws the profile ([`Profile`], in 32nds of the runs: plain 8, fast elections 2, slow
    /// elections 1, chaos 2, amnesia 3, vote retry 6, faults 10) and every value of every
    /// profile, whether or not the profile uses it, so one knob never moves another's draw.
    /// Timing stays within what the course allows: at most ten heartbeats a second, an
    /// election timeout above the heartbeat interval, a leader well within 5 s.
    pub fn draw(rng: &mut ChaCha8Rng) -> (Profile, Knobs) {
        // The profile's eighth is the stream's first draw, as it has been since the profiles
        // came (so a seed's plain run is the same seed's plain run of every earlier build),
        // and a quarter within it the last draw (so adding it moved nothing else).
        let eighth = rng.gen_range(0..8u32);
        let fast_heartbeat = rng.gen_range(100..=130);
        let fast_min = rng.gen_range(fast_heartbeat + 50..=400);
        let fast_spread = rng.gen_range(50..=300);
        let slow_heartbeat = rng.gen_range(150..=200);
        let slow_min = rng.gen_range(500..=1000);
        let slow_spread = rng.gen_range(100..=600);
        let heartbeat_interval_ms = rng.gen_range(100..=200);
        let election_timeout_ms_min = rng.gen_range(heartbeat_interval_ms + 100..=700);
        let election_timeout_ms_max = election_timeout_ms_min + rng.gen_range(50..=600);
        let small = rng.gen_bool(1.0 / 3.0);
        let (a, b) = (rng.gen_range(1..=8usize), rng.gen_range(20..=200usize));
        let mut fault_points = BTreeMap::new();
        let mut permilles = BTreeMap::new();
        let mut draw_point = |rng: &mut ChaCha8Rng, p: FaultPoint| {
            let on = rng.gen_bool(0.5);
            let permille = rng.gen_range(p.firing_range_permille());
            permilles.insert(p, permille);
            if on {
                fault_points.insert(p, permille);
            }
        };
        for &p in &FaultPoint::ALL[..FIRST_POINTS] {
            draw_point(rng, p);
        }
        // Drawn last, so that it moved none of the draws above when it was added.
        let commit_news_at_once = rng.gen_bool(0.5);
        // Drawn after it, for the same reason; likewise the quarter of the eighth.
        let retry_failed_votes = rng.gen_bool(0.5);
        let quarter = rng.gen_range(0..4u32);
        // The points added since (session 9), drawn after everything else for the same
        // reason: every earlier draw of a seed, its profile included, is unchanged.
        for &p in &FaultPoint::ALL[FIRST_POINTS..] {
            draw_point(rng, p);
        }
        // The shares, measured per profile over 2 000 Raft swarm runs each (BENCHMARKS.md,
        // "Session 8"): no single profile finds every bug at least as often as plain, so the
        // mix leans on the two that lower the fewest (vote retry and faults, both at the
        // engine's timing) and keeps the timing profiles for their diversity.
        let profile = match eighth * 4 + quarter {
            0..=7 => Profile::Plain,
            8..=9 => Profile::Fast,
            10 => Profile::Slow,
            11..=12 => Profile::Chaos,
            13..=15 => Profile::Amnesia,
            16..=21 => Profile::VoteRetry,
            _ => Profile::Faults,
        };
        // raft::Config's own timing, which the plain runs keep.
        let engine_timing = |commit_news_at_once, retry_failed_votes| Timing {
            election_timeout_ms_min: 300,
            election_timeout_ms_max: 600,
            heartbeat_interval_ms: 100,
            max_entries_per_append: 100,
            commit_news_at_once,
            retry_failed_votes,
        };
        // The engine's own batch (raft::Config's default).
        let default_batch = 100;
        let knobs = match profile {
            Profile::Plain => Knobs::default(),
            Profile::Fast => Knobs {
                timing: Some(Timing {
                    election_timeout_ms_min: fast_min,
                    election_timeout_ms_max: fast_min + fast_spread,
                    heartbeat_interval_ms: fast_heartbeat,
                    max_entries_per_append: default_batch,
                    commit_news_at_once,
                    retry_failed_votes,
                }),
                fault_points: BTreeMap::new(),
            },
            Profile::Slow => Knobs {
                timing: Some(Timing {
                    election_timeout_ms_min: slow_min,
                    election_timeout_ms_max: slow_min + slow_spread,
                    heartbeat_interval_ms: slow_heartbeat,
                    max_entries_per_append: default_batch,
                    commit_news_at_once,
                    retry_failed_votes,
                }),
                fault_points: BTreeMap::new(),
            },
            Profile::Amnesia => Knobs {
                timing: Some(Timing {
                    election_timeout_ms_min: fast_min,
                    election_timeout_ms_max: fast_min + fast_spread,
                    heartbeat_interval_ms: fast_heartbeat,
                    max_entries_per_append: default_batch,
                    commit_news_at_once,
                    retry_failed_votes,
                }),
                fault_points: [FaultPoint::CrashAfterReply, FaultPoint::CrashAfterVote]
                    .map(|p| (p, permilles[&p]))
                    .into(),
            },
            Profile::Chaos => Knobs {
                timing: Some(Timing {
                    election_timeout_ms_min,
                    election_timeout_ms_max,
                    heartbeat_interval_ms,
                    max_entries_per_append: if small { a } else { b },
                    commit_news_at_once,
                    retry_failed_votes,
                }),
                fault_points,
            },
            Profile::VoteRetry => Knobs { timing: Some(engine_timing(false, true)), fault_points: BTreeMap::new() },
            Profile::Faults => {
                fault_points.remove(&FaultPoint::HoldSnapshot);
                Knobs { timing: Some(engine_timing(commit_news_at_once, retry_failed_votes)), fault_points }
            }
        };
        (profile, knobs)
    }

    /// The knobs a scenario file gives.
    pub fn of_spec(spec: &ScenarioSpec) -> Knobs {
        let fault_points = spec
            .fault_points
            .iter()
            .map(|(name, &n)| (FaultPoint::from_name(name).expect("checked before the run"), n))
            .collect();
        Knobs { timing: spec.timing, fault_points }
    }

    /// The fault points as a scenario file writes them.
    pub fn fault_point_names(&self) -> BTreeMap<String, u32> {
        self.fault_points.iter().map(|(p, &n)| (p.name().to_string(), n)).collect()
    }

    /// One line for the run's description.
    pub fn describe(&self) -> String {
        let timing = match &self.timing {
            Some(t) => format!(
                "election timeout {}-{}ms, heartbeat every {}ms, at most {} entries per append, commit news {}{}",
                t.election_timeout_ms_min,
                t.election_timeout_ms_max,
                t.heartbeat_interval_ms,
                t.max_entries_per_append,
                if t.commit_news_at_once { "at once" } else { "with the next append" },
                if t.retry_failed_votes { ", failed votes retried" } else { "" }
            ),
            None => "engine's default timing".into(),
        };
        let points: Vec<String> = self.fault_points.iter().map(|(p, n)| format!("{p} {n}‰")).collect();
        format!("timing: {timing}; fault points: {}", if points.is_empty() { "none".into() } else { points.join(", ") })
    }
}

/// The run's knobs for a scenario on engine `E`: drawn from the seed; replaced by a
/// scenario file's; none with `--plain-swarm`. Enables the fault points and prints the knobs
/// (a plain run prints nothing and enables nothing, so its trace is the knob-less swarm's).
/// An engine that does not `takes_timing` (`TestEngine::TAKES_TIMING`) gets the drawn fault
/// points and no timing: the draws are the same, so its runs are too; only the line printed
/// and the file recorded no longer show timing it ignores. The drawn firing rates are scaled
/// to the engine's reach of each point (`TestEngine::FAULT_POINT_REACH`, [`scale_to_reach`]).
///
/// # Panics
/// When a scenario file gives timing and `E` takes none (the command line refuses such a
/// file before the run: `Scenario::check_faults`).
pub fn knobs<E: TestEngine>(opts: &Opts) -> Knobs {
    knobs_without::<E>(opts, &[])
}

/// As [`knobs`], with the points in `left_out` and the engine's `TestEngine::SWARM_LEFT_OUT`
/// never enabled by the seed's draw (a scenario file's knobs still enable them). The draws are the same, so every other knob of every
/// seed is the same too. The key/value swarm leaves out [`KV_SWARM_LEFT_OUT`].
///
/// # Panics
/// As [`knobs`].
pub fn knobs_without<E: TestEngine>(opts: &Opts, left_out: &[FaultPoint]) -> Knobs {
    let takes_timing = E::TAKES_TIMING;
    let (_profile, mut drawn) = Knobs::draw(&mut sim::rng(KNOBS_STREAM));
    if opts.plain_swarm {
        return Knobs::default();
    }
    if !takes_timing {
        drawn.timing = None;
    }
    drawn.fault_points.retain(|p, _| !left_out.contains(p) && !E::SWARM_LEFT_OUT.contains(p));
    scale_to_reach(&mut drawn.fault_points, E::FAULT_POINT_REACH);
    // The profile is not printed on its own: the knobs show it (default timing and no fault
    // point: plain; heartbeats above 130 ms and no fault point: slow elections…), and the
    // printed line must be the same whether the knobs were drawn or read back from the
    // scenario file that recorded them, which holds the knobs, not the profile.
    let k = match spec(opts) {
        Some(s) => Knobs::of_spec(s),
        None => drawn,
    };
    assert!(takes_timing || k.timing.is_none(), "a [timing] for an engine without one was not refused");
    if !k.fault_points.is_empty() {
        sim::enable_fault_points(&k.fault_points);
    }
    // A file without knobs, or the plain profile, is a plain run, and must reproduce one
    // event for event.
    if k != Knobs::default() {
        sim::describe(k.describe());
    }
    k
}

/// Scales drawn firing rates to an engine's reach of each point
/// (`TestEngine::FAULT_POINT_REACH`): a point the engine reaches `k` times as often as Raft
/// fires at 1/`k` of the drawn rate (rounded, at least 1‰), so it fires about as often per
/// run as the same draw does on Raft; a point it never reaches is dropped. The Raft engine's
/// rates stay as drawn. Why: the Paxos ports at Raft's rates crashed 4–5 times as often per
/// run, and found their key/value-service bugs less often than without the knobs
/// (BENCHMARKS.md, sessions 11 and 12).
pub fn scale_to_reach(fault_points: &mut BTreeMap<FaultPoint, u32>, reach: &[(FaultPoint, u32)]) {
    fault_points.retain(|&p, _| fault_point_reach(reach, p) > 0);
    for (&p, permille) in fault_points.iter_mut() {
        let k = fault_point_reach(reach, p);
        *permille = ((*permille + k / 2) / k).max(1);
    }
}

fn name(i: usize) -> Target {
    Target::node(&format!("s{i}"))
}

/// Draws the fault schedule of a run: network conditions at time 0, then faults at random
/// gaps, each undone after a random hold (heal, uncut, release, restart).
pub fn draw_schedule(p: &Params, rng: &mut ChaCha8Rng) -> FaultSchedule {
    let mut events = Vec::new();
    let at0 = |fault| FaultEvent { at_ms: 0, fault };
    if let Some((a, b, d)) = p.loss {
        events.push(at0(Fault::Unreliable {
            request_loss_permille: a,
            reply_loss_permille: b,
            request_delay_ms_max: d,
        }));
    }
    if p.reordering {
        events.push(at0(Fault::LongReordering { on: true }));
    }
    if p.duplicate_permille > 0 {
        events.push(at0(Fault::Duplicate { permille: p.duplicate_permille }));
    }
    if let Some((lo, hi)) = p.delay_ms {
        events.push(at0(Fault::Delay { min_ms: lo, max_ms: hi }));
    }
    let mut classes = Vec::new();
    for (on, c) in [(p.partitions, 0), (p.cuts, 1), (p.clogs, 2), (p.crashes, 3), (p.crash_after_save, 4), (p.churn, 5)]
    {
        if on {
            classes.push(c);
        }
    }
    let end = p.safety_ms.saturating_sub(300);
    let mut t = 0;
    loop {
        t += rng.gen_range(p.mean_gap_ms / 2..=p.mean_gap_ms * 3 / 2);
        if t >= end {
            break;
        }
        let undo_at = (t + rng.gen_range(300..3000)).min(end);
        let leader_or_any = |rng: &mut ChaCha8Rng| {
            if rng.gen_bool(0.4) {
                Target::role("leader")
            } else {
                name(rng.gen_range(0..p.servers))
            }
        };
        let (fault, undo) = match classes[rng.gen_range(0..classes.len())] {
            0 => {
                if rng.gen_bool(0.3) {
                    // Raft-tester style: isolate one node (often the leader).
                    (Fault::Isolate { node: leader_or_any(rng) }, Fault::Heal)
                } else {
                    let mut a = Vec::new();
                    let mut b = Vec::new();
                    for i in 0..p.servers {
                        if rng.gen_bool(0.5) {
                            a.push(name(i))
                        } else {
                            b.push(name(i))
                        }
                    }
                    if rng.gen_bool(0.5) {
                        // Put the leader in the first side, whatever its size.
                        a.push(Target::role("leader"));
                    }
                    (Fault::Partition { a, b }, Fault::Heal)
                }
            }
            1 | 2 => {
                let from = rng.gen_range(0..p.servers);
                let to = (from + rng.gen_range(1..p.servers)) % p.servers;
                let (from, to) = (name(from), name(to));
                if classes.contains(&1) && (!classes.contains(&2) || rng.gen_bool(0.5)) {
                    (Fault::Cut { from: from.clone(), to: to.clone() }, Fault::Uncut { from, to })
                } else {
                    (Fault::Clog { from: from.clone(), to: to.clone() }, Fault::Release { from, to })
                }
            }
            3 => (Fault::Crash { node: leader_or_any(rng) }, Fault::Restart { node: Target::role("down") }),
            4 => {
                // Half the time the node comes back almost at once, while the election it
                // voted in may still be running: a forgotten vote shows up only then.
                let back = if rng.gen_bool(0.5) { (t + rng.gen_range(20..400)).min(end) } else { undo_at };
                // Right after the save, or a few ms later once its reply (a vote, an
                // acknowledgement) has left.
                let delay_ms = if rng.gen_bool(0.5) { 0 } else { rng.gen_range(1..30) };
                let node = if rng.gen_bool(0.5) { Target::role("follower") } else { leader_or_any(rng) };
                events.push(FaultEvent {
                    at_ms: t,
                    fault: Fault::CrashAfterSave { node, saves: rng.gen_range(1..4), delay_ms },
                });
                events.push(FaultEvent { at_ms: back, fault: Fault::Restart { node: Target::role("down") } });
                continue;
            }
            _ => {
                // Figure 8: the leader dies soon after taking proposals, someone restarts soon.
                let back = (t + rng.gen_range(10..500)).min(end);
                events.push(FaultEvent { at_ms: t, fault: Fault::Crash { node: Target::role("leader") } });
                events.push(FaultEvent { at_ms: back, fault: Fault::Restart { node: Target::role("down") } });
                continue;
            }
        };
        events.push(FaultEvent { at_ms: t, fault });
        events.push(FaultEvent { at_ms: undo_at, fault: undo });
    }
    events.sort_by_key(|e| e.at_ms);
    FaultSchedule { events }
}

/// The random stream of [`draw_holds`]: a stream of its own, so drawing holds moves none of
/// the knobs' or the fault schedule's draws.
const HOLDS_STREAM: &str = "swarm-holds";

/// Draws the run's holds (`Fault::Hold`, messages kept until a protocol event), in about
/// half the runs, as episodes at random gaps, each one of
/// - *stale reply* (issue 13's first field bug): follower B's append acknowledgements to the
///   leader A are held until A leads again; A and B are cut off from the rest, then B
///   crashes (keeping what it stored, without inflating its term) while A rejoins the rest
///   (whose leader overwrites A's uncommitted entries); a leader is isolated so another
///   election runs; B restarts. If A wins, it gets B's reply from its earlier term;
/// - *snapshot crossing* (the second): follower F is isolated a while; when it is back, the
///   leader's appends to it are held until the leader's next snapshot and every answer
///   of F's until F's next snapshot, so an InstallSnapshot reaches F after the
///   entries it continues, with the leader not knowing F has them;
/// - the leader's next append to a follower, until the leader's term changes once or twice.
///
/// Targets are drawn by name where the shape needs one node throughout. The message kinds
/// and triggers are the Raft observer's (`raft::observer`); a family that names no messages
/// just never has a message taken. Everything is released when the faults stop
/// (`net::release_all`).
///
/// `stale_reply_focus` ([`stale_reply_focus`]): draw episodes even in a run whose own switch
/// says none (the switch is drawn either way, so the draws after it stay put), and play the
/// stale-reply shape where the draw picked the snapshot crossing.
pub fn draw_holds(p: &Params, rng: &mut ChaCha8Rng, stale_reply_focus: bool) -> Vec<FaultEvent> {
    let mut events = Vec::new();
    let drawn_on = rng.gen_bool(0.5);
    if !drawn_on && !stale_reply_focus {
        return events;
    }
    let mean_gap_ms = rng.gen_range(2000..5000u64);
    let end = p.safety_ms.saturating_sub(300);
    let leader = || Target::role("leader");
    let ack = || Some("append_entries_ok".to_string());
    let mut t = 0;
    loop {
        t += rng.gen_range(mean_gap_ms / 2..=mean_gap_ms * 3 / 2);
        if t >= end {
            break;
        }
        let f = rng.gen_range(0..p.servers);
        let others: Vec<Target> = (0..p.servers).filter(|&i| i != f).map(name).collect();
        let mut at = |dt: u64, fault: Fault| {
            events.push(FaultEvent { at_ms: (t + dt).min(end), fault });
        };
        let kind = match rng.gen_range(0..10) {
            5..=7 if stale_reply_focus => 0,
            kind => kind,
        };
        match kind {
            0..=4 => {
                at(
                    0,
                    Fault::Hold {
                        from: name(f),
                        to: leader(),
                        message: ack(),
                        messages: 0,
                        until: "leader".into(),
                        of: Some(leader()),
                        count: 1,
                        after_ms: rng.gen_range(0..400),
                    },
                );
                at(0, Fault::Partition { a: vec![leader(), name(f)], b: others });
                let crash = rng.gen_range(300..900);
                at(crash, Fault::Crash { node: name(f) });
                at(crash, Fault::Heal);
                let isolate = crash + rng.gen_range(500..2000);
                at(isolate, Fault::Isolate { node: leader() });
                let back = isolate + rng.gen_range(400..1500);
                at(back, Fault::Heal);
                at(back + rng.gen_range(0..1000), Fault::Restart { node: name(f) });
            }
            5..=7 => {
                at(0, Fault::Isolate { node: name(f) });
                let back = rng.gen_range(300..1500);
                at(
                    back,
                    Fault::Hold {
                        from: leader(),
                        to: name(f),
                        message: Some("append_entries".into()),
                        messages: 0,
                        until: "snapshot".into(),
                        of: Some(leader()),
                        count: 1,
                        after_ms: 0,
                    },
                );
                at(
                    back,
                    Fault::Hold {
                        from: name(f),
                        to: leader(),
                        message: None,
                        messages: 0,
                        until: "snapshot".into(),
                        of: None,
                        count: 1,
                        after_ms: 0,
                    },
                );
                at(back, Fault::Connect { node: name(f) });
            }
            _ => at(
                0,
                Fault::Hold {
                    from: leader(),
                    to: name(f),
                    message: Some("append_entries".into()),
                    messages: 1,
                    until: "term".into(),
                    of: None,
                    count: rng.gen_range(1..=2),
                    after_ms: 0,
                },
            ),
        }
    }
    events
}

/// Resolves roles: `leader` (from `leader`, the scenario's view of who leads), `down` (a
/// crashed server), `follower` (a live non-leader), `any` — the last three drawn from `rng`.
pub fn resolver(nodes: Vec<NodeId>, leader: Rc<dyn Fn() -> Option<usize>>) -> impl Fn(&str) -> Option<NodeId> {
    let rng = RefCell::new(sim::rng("fault-resolve"));
    move |role: &str| match role {
        "leader" => leader().map(|i| nodes[i]),
        "down" => {
            let down: Vec<usize> = (0..nodes.len()).filter(|&i| !sim::is_alive(nodes[i])).collect();
            (!down.is_empty()).then(|| nodes[down[rng.borrow_mut().gen_range(0..down.len())]])
        }
        "follower" => {
            let l = leader();
            let f: Vec<usize> = (0..nodes.len()).filter(|&i| sim::is_alive(nodes[i]) && Some(i) != l).collect();
            (!f.is_empty()).then(|| nodes[f[rng.borrow_mut().gen_range(0..f.len())]])
        }
        "any" => Some(nodes[rng.borrow_mut().gen_range(0..nodes.len())]),
        _ => None,
    }
}

/// The cluster sizes a swarm draws from (both families' swarms use it).
pub const SERVERS: std::ops::RangeInclusive<usize> = 3..=7;

/// The swarms' random stream: the first draws of `sim::rng("swarm")`, a pure function of the
/// seed, are the [`Params`].
const STREAM: &str = "swarm";

/// The end of a swarm's safety phase for `seed`, in simulated milliseconds: the
/// `safety_ms` that [`Params::draw`] gives as a swarm's first draws. Computed outside the run
/// so that a `--faults` file with events the run would never play is refused before it
/// starts; [`schedule_for`] asserts inside every run that this is the phase it plays.
pub fn safety_phase_end_ms(seed: u64) -> u64 {
    Params::draw(&mut sim::rng::stream(seed, STREAM, u64::MAX), SERVERS).safety_ms
}

/// The run's schedule: the scenario file's events if one is given, else `--faults FILE`,
/// else drawn; handed to [`Opts::record_faults`] for `--save-faults`. `drawn` are the knobs
/// the seed drew (before a scenario file replaced any). The schedule is drawn either way, so
/// a replayed file leaves every later draw of the seed as it was: the same schedule from a
/// file reproduces the run event for event. The options were checked before the run
/// (`Scenario::check_faults`): no file is read or written here.
pub fn schedule_for<E: TestEngine>(
    opts: &Opts,
    drawn: &Params,
    rng: &mut ChaCha8Rng,
    snapshots: bool,
) -> FaultSchedule {
    assert_eq!(
        drawn.safety_ms,
        safety_phase_end_ms(sim::seed()),
        "the swarm drew its Params first from sim::rng(\"{STREAM}\") with {SERVERS:?}, as safety_phase_end_ms assumes"
    );
    let mut from_seed = draw_schedule(drawn, rng);
    from_seed.events.extend(draw_holds(
        drawn,
        &mut sim::rng(HOLDS_STREAM),
        stale_reply_focus(opts, snapshots, fault_point_reach(E::FAULT_POINT_REACH, FaultPoint::HoldAppendReply) > 0),
    ));
    // A stable sort: events drawn for one instant keep their drawing order.
    from_seed.events.sort_by_key(|e| e.at_ms);
    chosen_schedule(opts, from_seed)
}

/// Describes a swarm's knobs ([`sim::describe_as`]): `drawn`, the line its seed draws, is
/// hashed in every run and shown unless a file gives the fault schedule; then `given`
/// describes what the file plays in its place.
pub fn describe_knobs(opts: &Opts, drawn: String, given: impl FnOnce(&FaultSchedule) -> String) {
    let shown = given_schedule(opts).map_or_else(|| drawn.clone(), |s| given(&s));
    sim::describe_as(&drawn, Some(shown));
}

/// The fault schedule a file gives a swarm run, if one does: a scenario file's events, else
/// `--faults FILE`'s.
pub fn given_schedule(opts: &Opts) -> Option<FaultSchedule> {
    match (&opts.scenario_file, &opts.faults) {
        (Some(file), _) => Some(file.spec.schedule()),
        (None, Some(file)) => Some(file.schedule.clone()),
        (None, None) => None,
    }
}

/// The schedule a swarm run plays: the scenario file's events if one is given, else
/// `--faults FILE`, else `from_seed` (drawn by the caller either way, so later draws stay
/// put); handed to [`Opts::record_faults`] and described.
pub fn chosen_schedule(opts: &Opts, from_seed: FaultSchedule) -> FaultSchedule {
    let schedule = given_schedule(opts).unwrap_or(from_seed);
    if let Some(recorder) = &opts.record_faults {
        recorder.record(&schedule);
    }
    sim::describe(format!("fault schedule: {} events", schedule.events.len()));
    schedule
}

/// Whether the run focuses its hold episodes ([`draw_holds`]) on the stale-reply shape: in
/// every knob profile but plain, in a scenario without snapshots. There the snapshot-crossing
/// episode can reach nothing, and the profiles' fault points and timing break up some
/// stale-reply episodes (BENCHMARKS.md, session 8: stale-append-reply 4–14 per 2 000 runs
/// under the other profiles against plain's 15), so every such run plays episodes, all but
/// the next-append kind of the stale-reply shape. Runs that snapshot keep the draw: more
/// episodes there made snapshot-wipes-log rarer (session 9). Plain (and `--plain-swarm`)
/// keeps it too: the run as it was before the knobs. The profile is drawn again from the
/// knobs' own stream, a pure function of the seed. Only for an engine that acknowledges
/// appended entries (`acknowledges_entries`: it reaches `replica.hold_append_reply`,
/// `TestEngine::FAULT_POINT_REACH`): elsewhere there is no stale reply to focus on, and the
/// extra episodes' partitions, crashes and isolations around the leader only replaced the
/// seed's schedule. On the Paxos port they made its knob runs find the key/value service's
/// bugs less often than its plain runs, with no fault point needed for it (BENCHMARKS.md,
/// session 12).
pub fn stale_reply_focus(opts: &Opts, snapshots: bool, acknowledges_entries: bool) -> bool {
    acknowledges_entries
        && !snapshots
        && !opts.plain_swarm
        && Knobs::draw(&mut sim::rng(KNOBS_STREAM)).0 != Profile::Plain
}

/// The scenario file's resolved scenario, if the run was given one.
pub fn spec(opts: &Opts) -> Option<&ScenarioSpec> {
    opts.scenario_file.as_ref().map(|f| &f.spec)
}

/// Replaces the drawn shape and safety phase with the scenario file's, if there is one.
pub fn apply_spec_shape(opts: &Opts, p: &mut Params) {
    if let Some(s) = spec(opts) {
        p.servers = s.servers;
        p.safety_ms = s.safety_ms;
    }
}

/// Hands the run's resolved scenario to [`Opts::record_scenario`], if asked for (operation
/// counts start at zero; the clients count what they start).
pub fn record_spec(opts: &Opts, p: &Params, knobs: &Knobs, workload: Workload, schedule: &FaultSchedule) {
    record_resolved(opts, p.servers, p.safety_ms, knobs, workload, schedule);
}

/// As [`record_spec`], for a swarm with knobs of its own (`servers` in all, the safety
/// phase's end in ms).
pub fn record_resolved(
    opts: &Opts,
    servers: usize,
    safety_ms: u64,
    knobs: &Knobs,
    workload: Workload,
    schedule: &FaultSchedule,
) {
    if let Some(r) = &opts.record_scenario {
        r.record(ScenarioSpec {
            scenario: String::new(),
            seed: sim::seed(),
            bug: opts.bug.clone(),
            servers,
            safety_ms,
            workload,
            timing: knobs.timing,
            fault_points: knobs.fault_point_names(),
            events: schedule.events.clone(),
        });
    }
}

/// Plays the schedule's events on a task of its own, until `stop`. Every event comes before
/// `safety_ms`: drawn schedules end 300 ms before it, and a loaded one was checked before
/// the run (`Scenario::check_faults`), so none is dropped.
pub fn play_safety_phase(
    schedule: FaultSchedule,
    servers: Vec<NodeId>,
    leader: Rc<dyn Fn() -> Option<usize>>,
    stop: Rc<Cell<bool>>,
    safety_ms: u64,
) {
    let resolve = resolver(servers.clone(), leader);
    play_schedule(schedule, servers, resolve, stop, safety_ms);
}

/// As [`play_safety_phase`], with the scenario's own resolver of roles (a swarm of several
/// clusters names roles per cluster).
pub fn play_schedule(
    schedule: FaultSchedule,
    servers: Vec<NodeId>,
    resolve: impl Fn(&str) -> Option<NodeId> + 'static,
    stop: Rc<Cell<bool>>,
    safety_ms: u64,
) {
    if let Some(late) = schedule.events.iter().find(|e| e.at_ms >= safety_ms) {
        panic!(
            "a {} event at {} ms is past the safety phase ({safety_ms} ms): unchecked options",
            late.fault.kind(),
            late.at_ms
        );
    }
    sim::spawn(async move {
        for ev in &schedule.events {
            sim::sleep_until(Duration::from_millis(ev.at_ms)).await;
            if stop.get() {
                return;
            }
            faults::apply(&ev.fault, &servers, &resolve);
        }
    });
}

/// Stops every fault: crash points disarmed, clogs released, the network back to `base`,
/// every link among `servers` up. Restarting crashed servers is the caller's (it knows how).
pub fn stop_faults(servers: &[NodeId], base: NetConfig) {
    sim::note(sim::NoteCode::LivenessPhase, 0, || "liveness phase: faults stop".into());
    stop_all_network_faults(servers, base);
}

fn stop_all_network_faults(servers: &[NodeId], base: NetConfig) {
    sim::disarm_fault_points();
    net::release_all();
    net::set_config(base);
    net::heal(servers);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_divided_by_the_engines_reach_rounded_at_least_one_and_unreached_points_dropped() {
        let drawn: BTreeMap<FaultPoint, u32> = [
            (FaultPoint::CrashAfterSave, 2),
            (FaultPoint::CrashAfterReply, 13),
            (FaultPoint::ShortenTimeout, 161),
            (FaultPoint::SkewTimer, 400),
            (FaultPoint::CrashAfterVote, 300),
        ]
        .into();
        let mut raft = drawn.clone();
        scale_to_reach(&mut raft, <crate::engine::RaftEngine as TestEngine>::FAULT_POINT_REACH);
        assert_eq!(raft, drawn, "Raft, the reference, keeps the drawn rates");
        let mut paxos = drawn.clone();
        let table = [
            (FaultPoint::CrashAfterSave, 5),
            (FaultPoint::CrashAfterReply, 5),
            (FaultPoint::ShortenTimeout, 3),
            (FaultPoint::CrashAfterVote, 0),
        ];
        scale_to_reach(&mut paxos, &table);
        let want: BTreeMap<FaultPoint, u32> = [
            (FaultPoint::CrashAfterSave, 1),  // 0.4, at least 1
            (FaultPoint::CrashAfterReply, 3), // 2.6
            (FaultPoint::ShortenTimeout, 54), // 53.7
            (FaultPoint::SkewTimer, 400),     // not listed: 1
        ]
        .into();
        assert_eq!(paxos, want);
    }

    #[test]
    fn a_stale_reply_focus_plays_episodes_in_every_run_and_no_snapshot_crossing() {
        let (mut drawn_runs, mut focused_runs) = (0, 0);
        for seed in 0..300 {
            let p = Params::draw(&mut sim::rng::stream(seed, STREAM, u64::MAX), SERVERS);
            let holds = |focus| draw_holds(&p, &mut sim::rng::stream(seed, HOLDS_STREAM, u64::MAX), focus);
            let untils = |events: &[FaultEvent]| -> Vec<String> {
                events
                    .iter()
                    .filter_map(|e| match &e.fault {
                        Fault::Hold { until, .. } => Some(until.clone()),
                        _ => None,
                    })
                    .collect()
            };
            let (as_drawn, focused) = (holds(false), holds(true));
            drawn_runs += usize::from(!as_drawn.is_empty());
            focused_runs += usize::from(!focused.is_empty());
            if !as_drawn.is_empty() {
                // The switch and the first gap are the same draws either way.
                assert_eq!(as_drawn[0].at_ms, focused[0].at_ms, "seed {seed}");
            }
            assert!(!untils(&focused).iter().any(|u| u == "snapshot"), "seed {seed}: a snapshot crossing");
        }
        assert!((100..200).contains(&drawn_runs), "about half the runs draw episodes: {drawn_runs}");
        assert!(focused_runs >= 290, "every run with room for one plays episodes: {focused_runs}");
    }

    #[test]
    fn every_profile_is_drawn_and_its_knobs_are_within_the_courses_bounds() {
        let mut seen = BTreeMap::new();
        let runs = 3200;
        for seed in 0..runs {
            let (profile, k) = Knobs::draw(&mut sim::rng::stream(seed, KNOBS_STREAM, 0));
            *seen.entry(profile.name()).or_insert(0) += 1;
            match profile {
                Profile::Plain => assert_eq!(k, Knobs::default(), "a plain run has no knob"),
                _ => {
                    let t = k.timing.expect("every other profile sets the timing");
                    t.check().unwrap_or_else(|e| panic!("seed {seed} {}: {e}", profile.name()));
                    let points: Vec<FaultPoint> = k.fault_points.keys().copied().collect();
                    match profile {
                        Profile::Chaos => {}
                        Profile::Faults => assert!(
                            !points.contains(&FaultPoint::HoldSnapshot),
                            "faults leaves replica.hold_snapshot to chaos"
                        ),
                        Profile::Amnesia => assert_eq!(
                            points,
                            [FaultPoint::CrashAfterReply, FaultPoint::CrashAfterVote],
                            "amnesia enables the two crash-after-reply points"
                        ),
                        _ => assert!(points.is_empty(), "only chaos, faults and amnesia enable fault points"),
                    }
                    let engine = (t.election_timeout_ms_min, t.election_timeout_ms_max, t.heartbeat_interval_ms);
                    match profile {
                        Profile::Fast | Profile::Amnesia => {
                            assert!(t.heartbeat_interval_ms <= 130 && t.election_timeout_ms_max <= 700)
                        }
                        Profile::Slow => assert!(t.heartbeat_interval_ms >= 150 && t.election_timeout_ms_min >= 500),
                        Profile::VoteRetry => {
                            assert_eq!(engine, (300, 600, 100), "the engine's own timing");
                            assert!(t.retry_failed_votes && !t.commit_news_at_once);
                        }
                        Profile::Faults => assert_eq!(engine, (300, 600, 100), "the engine's own timing"),
                        _ => {}
                    }
                }
            }
        }
        // Each profile's share in 32nds of the runs, give or take the draw.
        let shares = [
            ("plain", 8),
            ("fast elections", 2),
            ("slow elections", 1),
            ("chaos", 2),
            ("amnesia", 3),
            ("vote retry", 6),
            ("faults", 10),
        ];
        assert_eq!(seen.len(), shares.len(), "{seen:?}");
        for (name, share) in shares {
            let expected = runs as f64 * share as f64 / 32.0;
            let n = seen[name] as f64;
            assert!((n - expected).abs() <= 4.0 * expected.sqrt() + 5.0, "{name}: {n} of {runs}, {seen:?}");
        }
    }

    #[test]
    fn the_plain_runs_are_the_seeds_they_always_were() {
        // The plain profile is the first draw's first two eighths, as before the later
        // profiles came: a seed's plain run stays that seed's plain run.
        for seed in 0..400 {
            let mut rng = sim::rng::stream(seed, KNOBS_STREAM, 0);
            let eighth = rng.clone().gen_range(0..8u32);
            let (profile, _) = Knobs::draw(&mut rng);
            assert_eq!(profile == Profile::Plain, eighth < 2, "seed {seed}");
        }
    }
}
