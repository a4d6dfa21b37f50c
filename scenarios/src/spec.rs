//! Scenarios as data: a swarm run's *resolved* scenario — cluster shape, workload, safety
//! phase and fault schedule — as a TOML file that runs again (`cargo xtask run FILE --seed N`)
//! and that the shrinker (`cargo xtask shrink`) cuts down.
//!
//! A swarm draws its knobs from the seed; `--save-scenario FILE` writes what it drew (and,
//! for the workload, how many operations each client started), and a run from that file
//! with the same seed is the same run, event for event: the scenario still makes every draw
//! it would have made, in the same order, and only then replaces the drawn values with the
//! file's, so every later draw of the seed — each client's own stream, the network's — is
//! unchanged. A workload's operation counts are caps: a client stops after starting that
//! many, which is exactly where the recorded run stopped it.
//!
//! A Raft swarm's workload is `kind = "proposals"`: `propose_gap_ms`, `proposals` (steady
//! rounds), `snapshot_every` (`raft::swarm_2d`) and, in shrunk files, `[[workload.burst]]`
//! tables (`at_ms`, `commands`: that many commands offered back to back at that time).
//!
//! ```toml
//! scenario = "kvraft::swarm_3b"
//! seed = 7                      # the seed it was resolved from (`--seed` may differ)
//! bug = "no-duplicate-detection" # optional planted bug
//! servers = 5
//! safety_ms = 12000             # faults play before this simulated time, then stop
//!
//! [workload]
//! kind = "clerks"               # or "proposals" (Raft swarms)
//! keys = 4
//! maxraftstate = 1200           # -1: no snapshots
//! append_percent = 45           # the rest of the mix: put_percent, then gets
//! put_percent = 10
//! # or kind = "mapreduce" (mapreduce::swarm): maps, reduces, keys, crash_permille,
//! # stall_permille, stall_ms_max; its workers are the `servers` s0…
//! # or kind = "sharded" (shardkv::swarm_4b): ctrlers, keys, maxraftstate, the two
//! # percents, [[workload.group]] (gid, servers: s<gid>-0…), [[workload.clerk]] and
//! # [[workload.change]] (kind = "join"/"leave" with gids = [..], or "move" with shard and
//! # gid; at_ms; the first a join at 0 ms); `servers` is the groups' and controller's sum
//! [[workload.clerk]]
//! id = 0                        # the clerk's random stream is `kv-swarm-client-<id>`
//! operations = 31
//!
//! [timing]                      # the engine's timing knobs (absent: its defaults)
//! election_timeout_ms_min = 250
//! election_timeout_ms_max = 400
//! heartbeat_interval_ms = 120
//! max_entries_per_append = 7
//!
//! [fault_points]                # enabled code-level fault points, per mille when reached
//! "net.delay_send" = 40
//! "persist.crash_after_save" = 6
//!
//! [[event]]                     # the fault schedule, as in `--faults` files
//! at_ms = 1200
//! kind = "crash"
//! node = "leader"
//! ```

use serde::{Deserialize, Serialize};
use sim::faults::{Fault, FaultEvent, FaultSchedule, Target};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A swarm run's resolved scenario. See the module documentation for the format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The scenario's full name, e.g. `raft::swarm_2c`.
    pub scenario: String,
    /// The seed the knobs were resolved from. Informational: the run's seed is the command
    /// line's `--seed` (this one when it is not given).
    pub seed: u64,
    /// A planted bug of the scenario's family, if the scenario is to run with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug: Option<String>,
    /// The number of servers, named `s0` … `s<servers-1>`.
    pub servers: usize,
    /// The end of the safety phase, in simulated milliseconds: every fault event comes
    /// before it; at it every fault stops and the liveness phase begins.
    pub safety_ms: u64,
    /// What the clients do.
    pub workload: Workload,
    /// The engine's timing knobs the run drew (`crate::swarm::Knobs`); absent: the engine's
    /// defaults, as in a run with `--plain-swarm` (and in files written before the knobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// The code-level fault points enabled for the run (`sim::FaultPoint` names) with their
    /// firing probabilities, per mille of the times each is reached; empty: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fault_points: BTreeMap<String, u32>,
    /// The fault schedule, in time order (`[[event]]` tables, as in a `--faults` file).
    #[serde(default, rename = "event")]
    pub events: Vec<FaultEvent>,
}

/// The clients of a swarm: the Raft swarms' stream of proposals, or the key/value swarm's
/// clerks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Workload {
    /// The Raft swarms: every `propose_gap_ms` a command is offered to every live server
    /// (only a leader takes it), `proposals` rounds in all at most; and, in a file (the
    /// shrinker writes them; a swarm never draws them), explicit [`Burst`]s.
    Proposals {
        /// Simulated milliseconds between rounds.
        propose_gap_ms: u64,
        /// Rounds started before the run ended or the safety phase did.
        proposals: u64,
        /// Explicit rounds, each offering several commands back to back, in time order:
        /// what the shrinker turns the steady rounds into, so that a long log costs one
        /// operation event, not one per entry (`[[workload.burst]]` tables).
        #[serde(default, rename = "burst", skip_serializing_if = "Vec::is_empty")]
        bursts: Vec<Burst>,
        /// Per server, the applied entries between snapshots (`raft::swarm_2d`; empty for
        /// `raft::swarm_2c`, which takes no snapshots).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        snapshot_every: Vec<u64>,
    },
    /// The key/value swarm: closed-loop clerks (one request outstanding each) on random
    /// keys.
    Clerks {
        /// Keys are `0` … `keys-1`.
        keys: usize,
        /// Snapshot threshold in bytes of Raft state; -1 for none.
        maxraftstate: i64,
        /// Percent of operations that are appends.
        append_percent: u32,
        /// Percent that are puts; the rest (to 100) are gets.
        put_percent: u32,
        /// The clerks, each with its own random stream and operation cap.
        #[serde(rename = "clerk")]
        clerks: Vec<Clerk>,
    },
    /// The MapReduce swarm (`mapreduce::swarm`): one job of the crash app with extra keys
    /// (`nodes::mapreduce::apps::CrashKeys`) on the first `maps` input files with `reduces`
    /// reduce tasks; the workers are the file's `servers`, named `s0`….
    #[serde(rename = "mapreduce")]
    MapReduce {
        /// Map tasks: the first `maps` of the eight input files (1–8).
        maps: u32,
        /// Reduce tasks (nReduce).
        reduces: u32,
        /// Extra keys each map emits beside the crash app's four.
        keys: u32,
        /// Per mille of map/reduce calls that crash their worker.
        crash_permille: u32,
        /// Per mille of map/reduce calls that stall.
        stall_permille: u32,
        /// Longest stall, in simulated ms (the reissue timeout is 10 000).
        stall_ms_max: u64,
    },
    /// The sharded swarm (`shardkv::swarm_4b`): replica groups and a shard controller,
    /// closed-loop clerks on random keys (as [`Workload::Clerks`]), and the tester's
    /// configuration changes at their times. The file's `servers` is the whole count: every
    /// group's servers plus the controller's.
    Sharded {
        /// The shard controller's servers, named `ctrler0` ….
        ctrlers: usize,
        /// Keys are `0` … `keys-1`.
        keys: usize,
        /// Snapshot threshold of every group, in bytes of Raft state; -1 for none.
        maxraftstate: i64,
        /// Percent of operations that are appends.
        append_percent: u32,
        /// Percent that are puts; the rest (to 100) are gets.
        put_percent: u32,
        /// The replica groups (`[[workload.group]]`), each a Raft cluster whose servers are
        /// named `s<gid>-0` ….
        #[serde(rename = "group")]
        groups: Vec<ReplicaGroup>,
        /// The clerks, each with its own random stream (`shardkv-swarm-client-<id>`) and
        /// operation cap.
        #[serde(default, rename = "clerk", skip_serializing_if = "Vec::is_empty")]
        clerks: Vec<Clerk>,
        /// The configuration changes the tester asks the controller for, in time order
        /// (`[[workload.change]]`); the first is a join at 0 ms, made before any clerk
        /// starts. Each counts as one operation event.
        #[serde(default, rename = "change")]
        changes: Vec<ConfigChange>,
    },
}

/// One replica group of a sharded workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaGroup {
    /// Its group id (the course's GID: not 0, which the controller's configurations use for
    /// "no group"); the swarm draws 100, 101, ….
    pub gid: u64,
    /// Its servers, `s<gid>-0` … `s<gid>-<servers-1>`.
    pub servers: usize,
}

/// A configuration change of a sharded workload: the tester's Join, Leave or Move request to
/// the shard controller (6.824 lab 4A), at `at_ms` simulated milliseconds. A change still
/// waiting when the safety phase ends is dropped with every later one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConfigChange {
    /// These groups join (absent ones).
    Join {
        /// When, in ms.
        at_ms: u64,
        /// The joining groups.
        gids: Vec<u64>,
    },
    /// These groups leave (present ones, never all of them: data does not survive a
    /// configuration without groups).
    Leave {
        /// When, in ms.
        at_ms: u64,
        /// The leaving groups.
        gids: Vec<u64>,
    },
    /// A shard moves to a present group.
    Move {
        /// When, in ms.
        at_ms: u64,
        /// The shard, `0` … `NSHARDS-1`.
        shard: usize,
        /// Its new group.
        gid: u64,
    },
}

impl ConfigChange {
    /// When it is asked for, in ms.
    pub fn at_ms(&self) -> u64 {
        match self {
            ConfigChange::Join { at_ms, .. } | ConfigChange::Leave { at_ms, .. } | ConfigChange::Move { at_ms, .. } => {
                *at_ms
            }
        }
    }

    /// Its kind as a file writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigChange::Join { .. } => "join",
            ConfigChange::Leave { .. } => "leave",
            ConfigChange::Move { .. } => "move",
        }
    }

    /// The groups it names.
    pub fn gids(&self) -> Vec<u64> {
        match self {
            ConfigChange::Join { gids, .. } | ConfigChange::Leave { gids, .. } => gids.clone(),
            ConfigChange::Move { gid, .. } => vec![*gid],
        }
    }
}

/// A swarm's timing knobs for its replication engine, drawn from the seed within what the
/// course allows: at most ten heartbeats a second (`heartbeat_interval_ms` ≥ 100) and a
/// new leader within 5 s of a failure (election timeouts well under a second), with the
/// election timeout above the heartbeat interval (Raft §5.2, §9.3: broadcast time ≪
/// election timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Lower bound of the randomized election timeout, in ms.
    pub election_timeout_ms_min: u64,
    /// Upper bound (inclusive) of the randomized election timeout, in ms.
    pub election_timeout_ms_max: u64,
    /// A leader contacts each follower at least this often, in ms.
    pub heartbeat_interval_ms: u64,
    /// Most entries one AppendEntries carries (the batch size).
    pub max_entries_per_append: usize,
    /// A leader sends commit news at once rather than with the next AppendEntries
    /// (`raft::Config::commit_news_at_once`); absent in a file: false, the engine's default.
    #[serde(default)]
    pub commit_news_at_once: bool,
    /// A candidate sends a failed RequestVote again within its term
    /// (`raft::Config::retry_failed_votes`); absent in a file: false, the engine's default.
    #[serde(default)]
    pub retry_failed_votes: bool,
}

impl Timing {
    /// Checks the knobs against the course's bounds.
    ///
    /// # Errors
    /// One line naming the knob that is out of range.
    pub fn check(&self) -> Result<(), String> {
        if !(100..=1000).contains(&self.heartbeat_interval_ms) {
            return Err(format!(
                "timing.heartbeat_interval_ms = {}: give 100 to 1000 (the course allows at most 10 heartbeats a second)",
                self.heartbeat_interval_ms
            ));
        }
        if self.election_timeout_ms_min <= self.heartbeat_interval_ms {
            return Err(format!(
                "timing.election_timeout_ms_min = {} must exceed heartbeat_interval_ms = {}",
                self.election_timeout_ms_min, self.heartbeat_interval_ms
            ));
        }
        if self.election_timeout_ms_max < self.election_timeout_ms_min || self.election_timeout_ms_max > 2000 {
            return Err(format!(
                "timing.election_timeout_ms_max = {}: give election_timeout_ms_min ({}) to 2000 (a leader within 5 s)",
                self.election_timeout_ms_max, self.election_timeout_ms_min
            ));
        }
        if self.max_entries_per_append == 0 {
            return Err("timing.max_entries_per_append = 0: give at least 1".into());
        }
        Ok(())
    }
}

/// One clerk of a key/value workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clerk {
    /// Its identity: it draws its operations from the stream `kv-swarm-client-<id>` and is
    /// client `<id>` in the history, so removing another clerk leaves it as it was.
    pub id: u64,
    /// Operations it starts at most (after the skipped ones).
    pub operations: u64,
    /// Its first operations that are drawn and not made (0: none): the clerk's next
    /// operations are the ones it made after them, with the same keys, kinds and values,
    /// so the shrinker can remove a clerk's early operations and keep its later ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skip: u64,
    /// When it starts its first operation, in simulated ms from the run's start (0: as
    /// soon as the workload starts); set with `skip`, to the time the first kept operation
    /// started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_ms: u64,
}

impl Clerk {
    /// A clerk that makes at most `operations` operations from the workload's start.
    pub fn new(id: u64, operations: u64) -> Clerk {
        Clerk { id, operations, ..Clerk::default() }
    }

    /// One operation's draws from the clerk's stream `rng`, as both swarms make them: the
    /// index of its key among `keys`, then its kind as a percentile (0–99) that the
    /// workload's `append_percent` and `put_percent` split.
    pub fn draw_operation(rng: &mut rand_chacha::ChaCha8Rng, keys: usize) -> (usize, u32) {
        use rand::Rng;
        let key = rng.gen_range(0..keys);
        (key, rng.gen_range(0..100u32))
    }

    /// Before the clerk's first operation: makes and discards its skipped operations' draws
    /// ([`Clerk::draw_operation`]), then waits until its `start_ms`.
    pub async fn start(&self, rng: &mut rand_chacha::ChaCha8Rng, keys: usize) {
        for _ in 0..self.skip {
            Clerk::draw_operation(rng, keys);
        }
        let start = std::time::Duration::from_millis(self.start_ms);
        if sim::now() < start {
            sim::sleep_until(start).await;
        }
    }
}

/// The most operations a clerk may skip ([`Clerk::skip`]): far more than any clerk makes in
/// a run (a 30 s safety phase at a few ms per operation is about 10 000), and skipped in
/// milliseconds (each skipped operation is two draws).
pub const MAX_SKIP: u64 = 1_000_000;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One explicit proposal round of a Raft swarm's file: at `at_ms` simulated milliseconds after
/// the proposer starts, `commands` fresh commands are offered back to back to every live
/// server (only a leader takes them). It counts as one operation event: a reproduction
/// reads "propose 40 commands at 1.2 s" as one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// When, in ms after the proposer's start (the start of the run).
    pub at_ms: u64,
    /// Commands offered back to back (at least 1).
    pub commands: u64,
}

/// The kinds of [`Workload`], for a scenario to declare which one it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// [`Workload::Proposals`] without snapshots (`snapshot_every` empty).
    Proposals,
    /// [`Workload::Proposals`] with a snapshot interval per server.
    ProposalsWithSnapshots,
    /// [`Workload::Clerks`].
    Clerks,
    /// [`Workload::MapReduce`].
    MapReduce,
    /// [`Workload::Sharded`].
    Sharded,
}

impl Workload {
    /// Its kind.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Proposals { snapshot_every, .. } if snapshot_every.is_empty() => WorkloadKind::Proposals,
            Workload::Proposals { .. } => WorkloadKind::ProposalsWithSnapshots,
            Workload::Clerks { .. } => WorkloadKind::Clerks,
            Workload::MapReduce { .. } => WorkloadKind::MapReduce,
            Workload::Sharded { .. } => WorkloadKind::Sharded,
        }
    }

    /// Operation events the workload starts: proposal rounds (steady ones plus bursts, a
    /// burst counting once), the clerks' operations summed, a MapReduce job's tasks (maps
    /// plus reduces), or a sharded workload's clerk operations plus its configuration
    /// changes (each change is one request to the controller, so one event).
    pub fn operations(&self) -> u64 {
        match self {
            Workload::Proposals { proposals, bursts, .. } => *proposals + bursts.len() as u64,
            Workload::Clerks { clerks, .. } => clerks.iter().map(|c| c.operations).sum(),
            Workload::MapReduce { maps, reduces, .. } => u64::from(*maps) + u64::from(*reduces),
            Workload::Sharded { clerks, changes, .. } => {
                clerks.iter().map(|c| c.operations).sum::<u64>() + changes.len() as u64
            }
        }
    }

    /// The run's shape in its own words, for `servers` servers (MapReduce's are its workers):
    /// `3 servers, 1 proposer, 12 operations`, `5 servers, 2 clerks, 40 operations`,
    /// `5 workers, 8 map and 2 reduce tasks`, or a sharded one's clerks and operations with
    /// its configuration changes among them.
    pub fn shape(&self, servers: usize) -> String {
        use crate::count;
        let ops = count(self.operations() as usize, "operation");
        match self {
            Workload::Proposals { .. } => format!("{}, 1 proposer, {ops}", count(servers, "server")),
            Workload::Clerks { clerks, .. } => {
                format!("{}, {}, {ops}", count(servers, "server"), count(clerks.len(), "clerk"))
            }
            Workload::MapReduce { maps, reduces, .. } => {
                format!("{}, {maps} map and {reduces} reduce tasks", count(servers, "worker"))
            }
            Workload::Sharded { clerks, changes, .. } => format!(
                "{}, {}, {ops} ({} among them)",
                count(servers, "server"),
                count(clerks.len(), "clerk"),
                count(changes.len(), "configuration change")
            ),
        }
    }

    /// The configuration changes among [`Workload::operations`] (a sharded workload's; none
    /// for the others).
    pub fn config_changes(&self) -> usize {
        match self {
            Workload::Sharded { changes, .. } => changes.len(),
            _ => 0,
        }
    }

    /// The clerks of a workload that has them (key/value and sharded; none otherwise).
    pub fn clerks(&self) -> &[Clerk] {
        match self {
            Workload::Clerks { clerks, .. } | Workload::Sharded { clerks, .. } => clerks,
            Workload::Proposals { .. } | Workload::MapReduce { .. } => &[],
        }
    }

    /// The clerks of a workload that has them (key/value and sharded), to edit.
    pub fn clerks_mut(&mut self) -> Option<&mut Vec<Clerk>> {
        match self {
            Workload::Clerks { clerks, .. } | Workload::Sharded { clerks, .. } => Some(clerks),
            Workload::Proposals { .. } | Workload::MapReduce { .. } => None,
        }
    }

    /// The number of keys of a workload that has them (key/value and sharded), to edit.
    pub fn keys_mut(&mut self) -> Option<&mut usize> {
        match self {
            Workload::Clerks { keys, .. } | Workload::Sharded { keys, .. } => Some(keys),
            Workload::Proposals { .. } | Workload::MapReduce { .. } => None,
        }
    }

    /// The snapshot threshold (`maxraftstate`) of a workload that has one, to edit.
    pub fn maxraftstate_mut(&mut self) -> Option<&mut i64> {
        match self {
            Workload::Clerks { maxraftstate, .. } | Workload::Sharded { maxraftstate, .. } => Some(maxraftstate),
            Workload::Proposals { .. } | Workload::MapReduce { .. } => None,
        }
    }

    /// The latest time the workload names (a burst's or a configuration change's), in ms;
    /// 0 when it names none. The safety phase must outlast it.
    pub fn latest_at_ms(&self) -> u64 {
        match self {
            Workload::Proposals { bursts, .. } => bursts.iter().map(|b| b.at_ms).max().unwrap_or(0),
            Workload::Sharded { changes, .. } => changes.iter().map(ConfigChange::at_ms).max().unwrap_or(0),
            Workload::Clerks { .. } | Workload::MapReduce { .. } => 0,
        }
    }

    /// Commands the workload offers: a steady round offers one, a burst its `commands`; a
    /// clerk's operation or a MapReduce task is one command.
    pub fn commands(&self) -> u64 {
        match self {
            Workload::Proposals { proposals, bursts, .. } => {
                *proposals + bursts.iter().map(|b| b.commands).sum::<u64>()
            }
            Workload::Clerks { .. } | Workload::MapReduce { .. } | Workload::Sharded { .. } => self.operations(),
        }
    }

    /// Clients: the proposer (one), the clerks, or the MapReduce job (one).
    pub fn clients(&self) -> usize {
        match self {
            Workload::Proposals { .. } | Workload::MapReduce { .. } => 1,
            Workload::Clerks { clerks, .. } | Workload::Sharded { clerks, .. } => clerks.len(),
        }
    }
}

impl WorkloadKind {
    /// The `kind` as written in a file.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Proposals => "proposals",
            WorkloadKind::ProposalsWithSnapshots => "proposals with snapshot_every",
            WorkloadKind::Clerks => "clerks",
            WorkloadKind::MapReduce => "mapreduce",
            WorkloadKind::Sharded => "sharded",
        }
    }
}

/// Largest cluster a file may ask for: Raft's quorum arithmetic does not care, but a typo
/// (`servers = 50`) should be refused, not simulated.
pub const MAX_SERVERS: usize = 15;

impl ScenarioSpec {
    /// Parses a scenario file's text; `path` names it in errors.
    ///
    /// # Errors
    /// One line naming the file (and the line, for TOML errors) for malformed TOML, an
    /// unknown or missing field, or events out of time order.
    pub fn parse(path: &Path, text: &str) -> Result<ScenarioSpec, String> {
        let spec: ScenarioSpec = sim::tomlfile::from_str(text).map_err(|e| {
            let at = e.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            format!("{}: {at}{}", path.display(), e.message)
        })?;
        Ok(spec)
    }

    /// The file's text, in the format [`ScenarioSpec::parse`] reads.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario spec always encodes")
    }

    /// The fault schedule as a [`FaultSchedule`].
    pub fn schedule(&self) -> FaultSchedule {
        FaultSchedule { events: self.events.clone() }
    }

    /// Checks the file against the scenario it is run as (`workload` is the kind the
    /// scenario reads): the name, the cluster size, the workload's kind and values, events
    /// in time order, before the safety phase ends, naming only servers the file has.
    ///
    /// # Errors
    /// One line saying what is wrong and what to do.
    pub fn check(&self, scenario: &str, workload: WorkloadKind) -> Result<(), String> {
        if self.scenario != scenario {
            return Err(format!("the file is for {}, not {scenario}", self.scenario));
        }
        if self.workload.kind() != WorkloadKind::Sharded && !(1..=MAX_SERVERS).contains(&self.servers) {
            return Err(format!("servers = {}: give 1 to {MAX_SERVERS}", self.servers));
        }
        if self.workload.kind() != workload {
            return Err(format!(
                "{scenario} reads a workload of kind {}, the file has {}",
                workload.name(),
                self.workload.kind().name()
            ));
        }
        match &self.workload {
            Workload::Proposals { propose_gap_ms, snapshot_every, bursts, proposals } => {
                if *propose_gap_ms == 0 {
                    return Err("workload.propose_gap_ms = 0: give at least 1 ms between rounds".into());
                }
                if workload == WorkloadKind::ProposalsWithSnapshots && snapshot_every.len() != self.servers {
                    return Err(format!(
                        "workload.snapshot_every has {} entries for {} servers: give one per server",
                        snapshot_every.len(),
                        self.servers
                    ));
                }
                if snapshot_every.contains(&0) {
                    return Err("workload.snapshot_every: an interval of 0 entries; give at least 1".into());
                }
                if !bursts.is_empty() && *proposals > 0 {
                    return Err(format!(
                        "workload: proposals = {proposals} steady rounds beside {} bursts; give one or the other (proposals = 0 with bursts)",
                        bursts.len()
                    ));
                }
                if bursts.iter().any(|b| b.commands == 0) {
                    return Err("workload.burst: a burst of 0 commands; give at least 1 or delete it".into());
                }
                if bursts.windows(2).any(|w| w[0].at_ms > w[1].at_ms) {
                    return Err("workload.burst: bursts must be in time order (at_ms)".into());
                }
                if let Some(b) = bursts.iter().find(|b| b.at_ms >= self.safety_ms) {
                    return Err(format!(
                        "workload.burst at {} ms is at or past the safety phase's end (safety_ms = {}); move it earlier",
                        b.at_ms, self.safety_ms
                    ));
                }
            }
            Workload::Clerks { keys, append_percent, put_percent, clerks, maxraftstate, .. } => {
                check_maxraftstate(*maxraftstate)?;
                if *keys == 0 {
                    return Err("workload.keys = 0: give at least one key".into());
                }
                if append_percent + put_percent > 100 {
                    return Err(format!(
                        "workload: append_percent {append_percent} + put_percent {put_percent} exceed 100"
                    ));
                }
                check_clerk_ids(clerks)?;
            }
            Workload::Sharded { .. } => self.check_sharded()?,
            Workload::MapReduce { maps, reduces, crash_permille, stall_permille, .. } => {
                if !(1..=8).contains(maps) {
                    return Err(format!("workload.maps = {maps}: give 1 to 8 (one map task per input file)"));
                }
                if !(1..=100).contains(reduces) {
                    return Err(format!("workload.reduces = {reduces}: give 1 to 100"));
                }
                if crash_permille + stall_permille > 1000 {
                    return Err(format!(
                        "workload: crash_permille {crash_permille} + stall_permille {stall_permille} exceed 1000"
                    ));
                }
            }
        }
        if let Some(c) = self.workload.clerks().iter().find(|c| c.skip > MAX_SKIP) {
            return Err(format!(
                "workload.clerk {}: skip = {} is more operations than a clerk makes in a run; give at most {MAX_SKIP}",
                c.id, c.skip
            ));
        }
        if let Some(c) = self.workload.clerks().iter().find(|c| c.start_ms >= self.safety_ms) {
            return Err(format!(
                "workload.clerk {}: start_ms = {} is at or past the safety phase's end (safety_ms = {}); start it earlier",
                c.id, c.start_ms, self.safety_ms
            ));
        }
        if let Some(t) = &self.timing {
            t.check()?;
        }
        for (name, &permille) in &self.fault_points {
            if sim::FaultPoint::from_name(name).is_none() {
                let known: Vec<&str> = sim::FaultPoint::ALL.iter().map(|p| p.name()).collect();
                return Err(format!("fault_points: no point called {name:?}; the points are {}", known.join(", ")));
            }
            if !(1..=1000).contains(&permille) {
                return Err(format!("fault_points.{name:?} = {permille}: give a probability of 1 to 1000 per mille"));
            }
        }
        if let Some((i, message)) =
            self.events.iter().enumerate().find_map(|(i, e)| e.fault.check_values().err().map(|m| (i, m)))
        {
            return Err(format!("event {}: {message}", i + 1));
        }
        if let Some(i) = self.events.windows(2).position(|w| w[0].at_ms > w[1].at_ms) {
            return Err(format!(
                "events must be in time order: event {} at {} ms follows one at {} ms",
                i + 2,
                self.events[i + 1].at_ms,
                self.events[i].at_ms
            ));
        }
        if let Some((i, e)) = self.events.iter().enumerate().find(|(_, e)| e.at_ms >= self.safety_ms) {
            return Err(format!(
                "event {} ({} at {} ms) is at or past the safety phase's end (safety_ms = {}); move it earlier or raise safety_ms",
                i + 1,
                e.fault.kind(),
                e.at_ms,
                self.safety_ms
            ));
        }
        for (i, e) in self.events.iter().enumerate() {
            for t in targets(&e.fault) {
                if let Some(n) = server_index(t) {
                    if n >= self.servers {
                        return Err(format!(
                            "event {} ({}) names {} but the file has {} servers (s0..s{})",
                            i + 1,
                            e.fault.kind(),
                            t.0,
                            self.servers,
                            self.servers - 1
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Most replica groups a sharded file may have: the controller has ten shards to give.
pub const MAX_GROUPS: usize = 10;

impl ScenarioSpec {
    /// The checks of a [`Workload::Sharded`] file: its groups and controller, `servers` as
    /// their sum, its clerks, its configuration changes (in time order, inside the safety
    /// phase, the first a join at 0 ms, each naming groups the change can apply to: a join
    /// absent ones, a leave present ones but never all, a move a present one), and the nodes
    /// and roles its fault events name.
    fn check_sharded(&self) -> Result<(), String> {
        let Workload::Sharded {
            ctrlers, keys, append_percent, put_percent, groups, clerks, changes, maxraftstate, ..
        } = &self.workload
        else {
            return Ok(());
        };
        check_maxraftstate(*maxraftstate)?;
        if groups.is_empty() || groups.len() > MAX_GROUPS {
            return Err(format!("workload.group: {} groups; give 1 to {MAX_GROUPS}", groups.len()));
        }
        // Positions (`[[workload.group]] #2`) where a gid cannot tell the group apart.
        let mut gids: BTreeSet<u64> = BTreeSet::new();
        for (i, g) in groups.iter().enumerate() {
            if g.gid == 0 {
                return Err(format!(
                    "[[workload.group]] #{}: gid 0 means \"no group\" to the controller; give another",
                    i + 1
                ));
            }
            if !gids.insert(g.gid) {
                return Err(format!(
                    "[[workload.group]] #{}: gid {} is an earlier group's too; give each group its own",
                    i + 1,
                    g.gid
                ));
            }
        }
        if let Some(g) = groups.iter().find(|g| !(1..=MAX_SERVERS).contains(&g.servers)) {
            return Err(format!("workload.group {}: servers = {}: give 1 to {MAX_SERVERS}", g.gid, g.servers));
        }
        if !(1..=MAX_SERVERS).contains(ctrlers) {
            return Err(format!("workload.ctrlers = {ctrlers}: give 1 to {MAX_SERVERS}"));
        }
        let total = groups.iter().map(|g| g.servers).sum::<usize>() + ctrlers;
        if self.servers != total {
            return Err(format!(
                "servers = {} but the groups and the controller have {total} servers: make it {total}",
                self.servers
            ));
        }
        if *keys == 0 {
            return Err("workload.keys = 0: give at least one key".into());
        }
        if append_percent + put_percent > 100 {
            return Err(format!("workload: append_percent {append_percent} + put_percent {put_percent} exceed 100"));
        }
        check_clerk_ids(clerks)?;
        match changes.first() {
            Some(ConfigChange::Join { at_ms: 0, .. }) => {}
            _ => {
                return Err(
                    "workload.change: the first change must be a join at 0 ms (the service starts with one)".into()
                )
            }
        }
        if let Some(i) = changes.windows(2).position(|w| w[0].at_ms() > w[1].at_ms()) {
            let c = &changes[i + 1];
            return Err(format!(
                "workload.change {} ({} at {} ms): at_ms {} is before the previous change's {}; keep the changes in time order",
                i + 2,
                c.kind(),
                c.at_ms(),
                c.at_ms(),
                changes[i].at_ms()
            ));
        }
        let mut present: BTreeSet<u64> = BTreeSet::new();
        for (i, c) in changes.iter().enumerate() {
            let at = format!("workload.change {} ({} at {} ms)", i + 1, c.kind(), c.at_ms());
            if c.at_ms() >= self.safety_ms {
                return Err(format!(
                    "{at} is at or past the safety phase's end (safety_ms = {}); move it earlier",
                    self.safety_ms
                ));
            }
            if let Some(g) = c.gids().iter().find(|g| !gids.contains(g)) {
                return Err(format!("{at} names group {g}, which the file does not have"));
            }
            if c.gids().iter().collect::<BTreeSet<_>>().len() != c.gids().len() {
                return Err(format!("{at}: gids names a group twice; name each once"));
            }
            match c {
                ConfigChange::Join { gids: js, .. } => {
                    if js.is_empty() {
                        return Err(format!("{at} names no group; name one or delete it"));
                    }
                    if let Some(g) = js.iter().find(|g| present.contains(g)) {
                        return Err(format!("{at}: group {g} is already present"));
                    }
                    present.extend(js.iter().copied());
                }
                ConfigChange::Leave { gids: ls, .. } => {
                    if ls.is_empty() {
                        return Err(format!("{at} names no group; name one or delete it"));
                    }
                    if let Some(g) = ls.iter().find(|g| !present.contains(g)) {
                        return Err(format!("{at}: group {g} is not present"));
                    }
                    if ls.iter().collect::<BTreeSet<_>>().len() >= present.len() {
                        return Err(format!("{at} leaves no group: data does not survive an empty configuration"));
                    }
                    for g in ls {
                        present.remove(g);
                    }
                }
                ConfigChange::Move { shard, gid, .. } => {
                    if *shard >= nodes::shardctrler::NSHARDS {
                        return Err(format!("{at}: shard {shard}; give 0 to {}", nodes::shardctrler::NSHARDS - 1));
                    }
                    if !present.contains(gid) {
                        return Err(format!("{at}: group {gid} is not present"));
                    }
                }
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            for t in targets(&e.fault) {
                if !sharded_target_exists(&t.0, groups, *ctrlers) {
                    return Err(format!(
                        "event {} ({}) names {}, which the file's groups and controller do not have",
                        i + 1,
                        e.fault.kind(),
                        t.0
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether a sharded file has the node or role `name`: a server `s<gid>-<i>` or
/// `ctrler<i>`, or a role `leader@<gid>`, `down@<gid>`, `leader@ctrler`, `any`.
fn sharded_target_exists(name: &str, groups: &[ReplicaGroup], ctrlers: usize) -> bool {
    if name == "any" || name == "leader@ctrler" {
        return true;
    }
    if let Some(i) = name.strip_prefix("ctrler").and_then(|i| i.parse::<usize>().ok()) {
        return i < ctrlers;
    }
    let group = |gid: &str| gid.parse::<u64>().ok().and_then(|gid| groups.iter().find(|g| g.gid == gid));
    if let Some((role, gid)) = name.split_once('@') {
        return ["leader", "down"].contains(&role) && group(gid).is_some();
    }
    name.strip_prefix('s')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(gid, i)| Some((group(gid)?, i.parse::<usize>().ok()?)))
        .is_some_and(|(g, i)| i < g.servers)
}

/// The nodes or roles a fault names.
pub fn targets(f: &Fault) -> Vec<&Target> {
    match f {
        Fault::Partition { a, b } => a.iter().chain(b.iter()).collect(),
        Fault::Isolate { node }
        | Fault::Connect { node }
        | Fault::Crash { node }
        | Fault::CrashAfterSave { node, .. }
        | Fault::Restart { node } => vec![node],
        Fault::Cut { from, to }
        | Fault::Uncut { from, to }
        | Fault::Clog { from, to }
        | Fault::Release { from, to } => {
            vec![from, to]
        }
        Fault::Hold { from, to, of, .. } => [Some(from), Some(to), of.as_ref()].into_iter().flatten().collect(),
        Fault::Heal
        | Fault::ReleaseAll
        | Fault::Unreliable { .. }
        | Fault::Reliable
        | Fault::LongReordering { .. }
        | Fault::Duplicate { .. }
        | Fault::Delay { .. } => Vec::new(),
    }
}

/// `Some(i)` for a target naming server `s<i>`; `None` for a role.
pub fn server_index(t: &Target) -> Option<usize> {
    t.0.strip_prefix('s').and_then(|n| n.parse().ok())
}

/// A scenario file with the path it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecFile {
    /// Where it was read from (for messages and the reproducing command line).
    pub path: PathBuf,
    /// The resolved scenario.
    pub spec: ScenarioSpec,
    /// The file as read (empty for a spec made in memory, such as a shrink candidate), to
    /// place a check's message at its line (`sim::tomlfile::line_of_check`).
    pub text: String,
}

impl SpecFile {
    /// Reads and parses a scenario file (not yet checked against a scenario: see
    /// [`ScenarioSpec::check`]).
    ///
    /// # Errors
    /// One line naming the file when it cannot be read or parsed.
    pub fn load(path: &Path) -> Result<SpecFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Ok(SpecFile { path: path.to_path_buf(), spec: ScenarioSpec::parse(path, &text)?, text })
    }
}

/// Whether `text` looks like a scenario file rather than a saved seed file: it has a
/// `[workload]` table. (Both are TOML; the command line takes either where a file is
/// accepted.)
pub fn is_scenario_text(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("workload"))
}

/// Where a run leaves its resolved scenario (`--save-scenario`, and the shrinker): the
/// scenario records it once its knobs are drawn and counts each operation a client starts.
/// The caller writes it after the run. Clones share one slot.
#[derive(Clone)]
pub struct SpecRecorder {
    scenario: Arc<str>,
    slot: Arc<Mutex<Option<ScenarioSpec>>>,
}

impl SpecRecorder {
    /// An empty recorder for a run of `scenario` (its full name: a scenario body serves
    /// several names — renamed suites, `swarm_2c` and `swarm_2d` — and does not know which).
    pub fn new(scenario: &str) -> SpecRecorder {
        SpecRecorder { scenario: scenario.into(), slot: Arc::default() }
    }

    /// Called by the scenario with its resolved knobs (operation counts at zero); the
    /// recorder writes in the scenario's name.
    pub fn record(&self, mut spec: ScenarioSpec) {
        spec.scenario = self.scenario.to_string();
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(spec);
    }

    /// Called by the scenario when a client starts an operation: `client` is the clerk's id
    /// (ignored for the proposer).
    pub fn count_operation(&self, client: u64) {
        if let Some(spec) = self.slot.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            match &mut spec.workload {
                Workload::Proposals { proposals, .. } => *proposals += 1,
                Workload::Clerks { clerks, .. } | Workload::Sharded { clerks, .. } => {
                    if let Some(c) = clerks.iter_mut().find(|c| c.id == client) {
                        c.operations += 1;
                    }
                }
                // A job's tasks are fixed by its shape, not counted.
                Workload::MapReduce { .. } => {}
            }
        }
    }

    /// The recorded scenario, if the run got as far as resolving it.
    pub fn take(&self) -> Option<ScenarioSpec> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl std::fmt::Debug for SpecRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpecRecorder")
    }
}

/// A snapshot threshold is -1 (the course's "no snapshots") or a size in bytes.
fn check_maxraftstate(maxraftstate: i64) -> Result<(), String> {
    if maxraftstate < -1 {
        return Err(format!(
            "workload.maxraftstate = {maxraftstate}: give -1 (no snapshots) or a size in bytes the engine's state may reach before a snapshot"
        ));
    }
    Ok(())
}

/// Clerk ids are distinct: each is a client of the history and names the clerk (`c<id>`).
fn check_clerk_ids(clerks: &[Clerk]) -> Result<(), String> {
    let mut ids: BTreeSet<u64> = BTreeSet::new();
    for (i, c) in clerks.iter().enumerate() {
        if !ids.insert(c.id) {
            return Err(format!(
                "[[workload.clerk]] #{}: id {} is an earlier clerk's too; give each clerk its own",
                i + 1,
                c.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> ScenarioSpec {
        ScenarioSpec {
            scenario: "kvraft::swarm_3b".into(),
            seed: 7,
            bug: None,
            servers: 3,
            safety_ms: 10_000,
            workload: Workload::Clerks {
                keys: 2,
                maxraftstate: -1,
                append_percent: 45,
                put_percent: 10,
                clerks: vec![Clerk::new(0, 3), Clerk::new(4, 1)],
            },
            timing: Some(Timing {
                election_timeout_ms_min: 250,
                election_timeout_ms_max: 400,
                heartbeat_interval_ms: 120,
                max_entries_per_append: 7,
                commit_news_at_once: true,
                retry_failed_votes: true,
            }),
            fault_points: [("net.delay_send".to_string(), 40), ("node.pause".to_string(), 3)].into(),
            events: vec![
                FaultEvent { at_ms: 5, fault: Fault::Crash { node: Target::node("s2") } },
                FaultEvent { at_ms: 9, fault: Fault::Restart { node: Target::role("down") } },
            ],
        }
    }

    #[test]
    fn a_spec_round_trips_through_toml_and_is_told_from_a_seed_file() {
        let s = kv();
        let text = s.to_toml();
        assert_eq!(ScenarioSpec::parse(Path::new("x.toml"), &text).unwrap(), s);
        assert!(is_scenario_text(&text));
        assert!(!is_scenario_text("scenario = \"raft::x\"\nseed = 1\n"));
        assert_eq!(s.workload.operations(), 4);
        assert_eq!(s.workload.clients(), 2);
        assert!(s.check("kvraft::swarm_3b", WorkloadKind::Clerks).is_ok());
    }

    #[test]
    fn a_spec_that_does_not_fit_its_scenario_is_refused_with_one_line() {
        let check = |s: &ScenarioSpec| s.check("kvraft::swarm_3b", WorkloadKind::Clerks).unwrap_err();
        assert!(kv().check("raft::swarm_2c", WorkloadKind::Clerks).unwrap_err().contains("is for kvraft::swarm_3b"));
        assert!(kv()
            .check("kvraft::swarm_3b", WorkloadKind::Proposals)
            .unwrap_err()
            .contains("kind proposals, the file has clerks"));
        let mut s = kv();
        s.servers = 2;
        assert!(check(&s).contains("names s2 but the file has 2 servers"), "{}", check(&s));
        let mut s = kv();
        s.safety_ms = 9;
        assert!(check(&s).contains("event 2 (restart at 9 ms) is at or past"), "{}", check(&s));
        let mut s = kv();
        s.events.swap(0, 1);
        assert!(check(&s).contains("time order"));
        let mut s = kv();
        if let Workload::Clerks { clerks, .. } = &mut s.workload {
            clerks[1].id = 0;
        }
        assert!(check(&s).contains("id 0 is an earlier clerk's too"), "{}", check(&s));
        let mut s = kv();
        if let Some(m) = s.workload.maxraftstate_mut() {
            *m = -7;
        }
        assert!(check(&s).contains("workload.maxraftstate = -7: give -1"), "{}", check(&s));
        let mut s = kv();
        s.fault_points.insert("net.nope".into(), 5);
        assert!(check(&s).contains("no point called \"net.nope\""), "{}", check(&s));
        let mut s = kv();
        s.fault_points.insert("node.pause".into(), 0);
        assert!(check(&s).contains("1 to 1000"), "{}", check(&s));
        let mut s = kv();
        s.timing.as_mut().unwrap().heartbeat_interval_ms = 50;
        assert!(check(&s).contains("at most 10 heartbeats"), "{}", check(&s));
        let mut s = kv();
        s.timing.as_mut().unwrap().election_timeout_ms_min = 100;
        assert!(check(&s).contains("must exceed"), "{}", check(&s));
        let mut s = kv();
        s.timing = None;
        s.fault_points.clear();
        assert!(!s.to_toml().contains("timing") && !s.to_toml().contains("fault_points"));
        assert_eq!(ScenarioSpec::parse(Path::new("x.toml"), &s.to_toml()).unwrap(), s);
        // A Raft swarm's bursts: in time order, inside the safety phase, never empty, and not
        // beside steady rounds.
        let raft = |proposals, bursts: Vec<(u64, u64)>| ScenarioSpec {
            scenario: "raft::swarm_2c".into(),
            workload: Workload::Proposals {
                propose_gap_ms: 10,
                proposals,
                snapshot_every: Vec::new(),
                bursts: bursts.into_iter().map(|(at_ms, commands)| Burst { at_ms, commands }).collect(),
            },
            ..kv()
        };
        let rcheck = |s: &ScenarioSpec| s.check("raft::swarm_2c", WorkloadKind::Proposals);
        let ok = raft(0, vec![(0, 40), (500, 1)]);
        assert!(rcheck(&ok).is_ok());
        assert_eq!((ok.workload.operations(), ok.workload.commands()), (2, 41));
        assert_eq!(ScenarioSpec::parse(Path::new("x.toml"), &ok.to_toml()).unwrap(), ok);
        assert!(ok.to_toml().contains("[[workload.burst]]"));
        assert!(rcheck(&raft(3, vec![(0, 1)])).unwrap_err().contains("one or the other"));
        assert!(rcheck(&raft(0, vec![(0, 0)])).unwrap_err().contains("0 commands"));
        assert!(rcheck(&raft(0, vec![(9, 1), (5, 1)])).unwrap_err().contains("time order"));
        assert!(rcheck(&raft(0, vec![(10_000, 1)])).unwrap_err().contains("past the safety phase"));
        let mut s = kv();
        s.servers = 0;
        assert!(check(&s).contains("give 1 to"));
        assert!(!check(&s).contains('\n'));
        let bad = ScenarioSpec::parse(Path::new("f.toml"), "scenario = 1\n").unwrap_err();
        assert!(bad.starts_with("f.toml: line 1: "), "{bad}");
        let unknown = ScenarioSpec::parse(Path::new("f.toml"), &format!("{}\nextra = 1\n", kv().to_toml()));
        assert!(unknown.unwrap_err().contains("extra"));
        // An error inside the tagged `[workload]` or one of its clerks names the key's own
        // line, not the `[workload]` header.
        let text = kv().to_toml();
        let lines: Vec<&str> = text.lines().collect();
        let line_of = |prefix: &str, nth: usize| {
            lines.iter().enumerate().filter(|(_, l)| l.starts_with(prefix)).nth(nth).unwrap().0 + 1
        };
        // The second clerk's `operations`.
        let at = line_of("operations", 1);
        let bad: Vec<&str> =
            lines.iter().enumerate().map(|(i, l)| if i + 1 == at { "operations = \"many\"" } else { l }).collect();
        let bad = ScenarioSpec::parse(Path::new("f.toml"), &bad.join("\n")).unwrap_err();
        assert!(bad.starts_with(&format!("f.toml: line {at}: operations: invalid type: string \"many\"")), "{bad}");
        let bad = ScenarioSpec::parse(Path::new("f.toml"), &text.replacen("keys = ", "key = ", 1)).unwrap_err();
        assert!(bad.starts_with(&format!("f.toml: line {}: key: unknown field `key`", line_of("keys", 0))), "{bad}");
    }

    #[test]
    fn a_mapreduce_workload_counts_its_tasks_and_is_checked() {
        let mut s = kv();
        s.scenario = "mapreduce::swarm".into();
        s.timing = None;
        s.fault_points.clear();
        s.workload = Workload::MapReduce {
            maps: 3,
            reduces: 2,
            keys: 9,
            crash_permille: 40,
            stall_permille: 200,
            stall_ms_max: 15_000,
        };
        assert_eq!((s.workload.operations(), s.workload.clients()), (5, 1));
        assert_eq!(ScenarioSpec::parse(Path::new("x.toml"), &s.to_toml()).unwrap(), s);
        assert!(s.to_toml().contains("kind = \"mapreduce\""));
        assert!(s.check("mapreduce::swarm", WorkloadKind::MapReduce).is_ok());
        let check = |s: &ScenarioSpec| s.check("mapreduce::swarm", WorkloadKind::MapReduce).unwrap_err();
        let mut bad = s.clone();
        if let Workload::MapReduce { maps, .. } = &mut bad.workload {
            *maps = 9;
        }
        assert!(check(&bad).contains("workload.maps = 9"), "{}", check(&bad));
        let mut bad = s.clone();
        if let Workload::MapReduce { crash_permille, .. } = &mut bad.workload {
            *crash_permille = 900;
        }
        assert!(check(&bad).contains("exceed 1000"), "{}", check(&bad));
    }

    #[test]
    fn the_recorder_counts_each_clients_operations() {
        let r = SpecRecorder::new("kvraft::swarm_3b");
        r.count_operation(0); // before record: ignored
        let mut s = kv();
        s.scenario = "anything".into();
        if let Workload::Clerks { clerks, .. } = &mut s.workload {
            clerks.iter_mut().for_each(|c| c.operations = 0);
        }
        r.record(s);
        r.count_operation(4);
        r.count_operation(4);
        r.count_operation(9); // no such clerk
        let got = r.take().unwrap();
        assert_eq!(got.workload.operations(), 2);
        assert_eq!(got.scenario, "kvraft::swarm_3b");
        assert!(r.take().is_none());
    }
}
