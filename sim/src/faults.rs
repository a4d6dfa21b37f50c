//! Faults as data: a fault schedule is a list of timed events (partition, heal, cut, clog,
//! release, crash, restart, loss rate, …) naming nodes or roles ("leader"), so a failing
//! schedule can be saved, edited, replayed — and later shrunk.
//!
//! Roles are resolved when the event fires, by a resolver the scenario supplies (only it
//! knows who leads). Each event is recorded in the trace as resolved (`fault` lines), so a
//! replay shows exactly which nodes it hit.

use crate::net::{self, NetConfig};
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A node, by name (`s3`), or a role the scenario resolves (`leader`, `follower`, `any`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Target(pub String);

impl Target {
    /// A node by its name, as the trace writes it (`s0`, `s1`, …).
    pub fn node(name: &str) -> Self {
        Target(name.to_string())
    }
    /// A role the scenario's [`Resolver`] maps to a node when the event fires (`leader`, …).
    pub fn role(role: &str) -> Self {
        Target(role.to_string())
    }

    /// The role words a schedule may name: `leader`, `follower`, `down` (a crashed server),
    /// `any`; the sharded swarms add `leader@<gid>`, `down@<gid>` and `leader@ctrler`.
    pub const ROLES: [&'static str; 4] = ["leader", "follower", "down", "any"];

    /// Whether the name is one the schedule format defines: a server `s<N>` (`s<gid>-<N>`
    /// in a sharded cluster), a controller `ctrler<N>`, or a role ([`Target::ROLES`],
    /// `leader@<gid>`, `down@<gid>`, `leader@ctrler`). A name the format defines may still
    /// name nobody in a given run (`s6` of a 3-server cluster, a role nobody holds): such an
    /// event is skipped when it fires, since one schedule serves every cluster size.
    ///
    /// # Errors
    /// One line naming the target and the forms a name may take.
    pub fn check(&self) -> Result<(), String> {
        match self.form() {
            Some(_) => Ok(()),
            None => Err(format!(
                "'{}' is no node or role: name a server s0, s1, … (s<gid>-<i> in a sharded cluster, ctrler<i> a controller) or a role: {}, leader@<gid>, down@<gid>, leader@ctrler",
                self.0,
                Self::ROLES.join(", ")
            )),
        }
    }

    /// Which kind of cluster the name is for, if the format defines it ([`Target::check`]).
    pub fn form(&self) -> Option<TargetForm> {
        let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let n = self.0.as_str();
        if Self::ROLES.contains(&n) {
            return Some(TargetForm::Role);
        }
        let server = n.strip_prefix('s');
        if server.is_some_and(number) {
            return Some(TargetForm::Server);
        }
        let group_server = server.and_then(|r| r.split_once('-')).is_some_and(|(gid, i)| number(gid) && number(i));
        let sharded = group_server
            || n.strip_prefix("ctrler").is_some_and(number)
            || n == "leader@ctrler"
            || n.split_once('@').is_some_and(|(r, gid)| ["leader", "down"].contains(&r) && number(gid));
        sharded.then_some(TargetForm::Sharded)
    }
}

/// The forms of a schedule's node or role name ([`Target::form`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// A role any cluster has: `leader`, `follower`, `down`, `any`.
    Role,
    /// A server of a single replica group: `s<N>`.
    Server,
    /// A name only a sharded cluster has: `s<gid>-<N>`, `ctrler<N>`, `leader@<gid>`,
    /// `down@<gid>`, `leader@ctrler`.
    Sharded,
}

/// One kind of fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Two internally connected sides with no link between them (servers only).
    Partition {
        /// One side: nodes connected among themselves. A node named on both sides stays on
        /// this one.
        a: Vec<Target>,
        /// The other side; cut off from side `a` in both directions.
        b: Vec<Target>,
    },
    /// Every link among the servers comes back up.
    Heal,
    /// Raft-tester style: the node loses every link.
    Isolate {
        /// The node to isolate.
        node: Target,
    },
    /// Raft-tester style: the node regains its links to connected nodes.
    Connect {
        /// The node to reconnect.
        node: Target,
    },
    /// One-way cut.
    Cut {
        /// The sender whose messages are lost.
        from: Target,
        /// The receiver the messages no longer reach.
        to: Target,
    },
    /// Restores a one-way link [`Fault::Cut`] took down.
    Uncut {
        /// The sender of the restored direction.
        from: Target,
        /// The receiver of the restored direction.
        to: Target,
    },
    /// Hold messages on a link until released.
    Clog {
        /// The sender whose messages are held.
        from: Target,
        /// The receiver the held messages are for.
        to: Target,
    },
    /// Unclogs one link and delivers what it held, in order, in one burst.
    Release {
        /// The sender of the clogged link.
        from: Target,
        /// The receiver of the clogged link.
        to: Target,
    },
    /// Unclogs every link, delivering everything held, and ends every [`Fault::Hold`].
    ReleaseAll,
    /// Holds the next message(s) of a kind on one link until a protocol event — for example a
    /// follower's append reply until its leader has lost and regained leadership (Raft's
    /// stale-reply bugs), or an append until the leader's next snapshot. The scenario names
    /// message kinds and reports the events ([`crate::net::set_classifier`],
    /// [`crate::net::protocol_event`]); see [`crate::net::hold`].
    Hold {
        /// The sender of the messages held.
        from: Target,
        /// Their receiver.
        to: Target,
        /// The message kind, as the scenario's classifier names it (`append_entries_ok`, …);
        /// absent: any message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// How many matching messages to take (0: every one until the release).
        #[serde(default = "one")]
        messages: u32,
        /// The release trigger, as the scenario registered it (`term`, `role`, `leader`,
        /// `snapshot` for Raft).
        until: String,
        /// The node whose events count (absent: `from`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        of: Option<Target>,
        /// How many events release the messages, counted from the first one taken.
        #[serde(default = "one")]
        count: u32,
        /// The released messages arrive this long after the releasing event (ms).
        #[serde(default)]
        after_ms: u64,
    },
    /// Crashes the node now, losing all but what it persisted (skipped if it is already down).
    Crash {
        /// The node to crash.
        node: Target,
    },
    /// Crash the node after its next `saves`-th save: right after it (between persisting and
    /// replying) with no delay, or `delay_ms` later (after the reply left).
    CrashAfterSave {
        /// The node to arm (skipped if it is down when the event fires).
        node: Target,
        /// Which save from now triggers the crash: 1 is the next one (0 counts as 1).
        saves: u32,
        /// How long after that save the crash comes, in simulated ms (0: before the node replies).
        #[serde(default)]
        delay_ms: u64,
    },
    /// Restart the node if it is down.
    Restart {
        /// The node to restart (skipped if it is up).
        node: Target,
    },
    /// labrpc's unreliable mode with these loss rates and maximum request delay.
    Unreliable {
        /// Requests lost, per mille.
        request_loss_permille: u32,
        /// Replies lost after the handler ran, per mille.
        reply_loss_permille: u32,
        /// Each request is delayed by a uniform draw in [0, this] ms.
        request_delay_ms_max: u32,
    },
    /// Back to the reliable network: no loss, no request delay (labrpc's `Reliable(true)`).
    Reliable,
    /// labrpc's `LongReordering`: when on, two replies in three are held back a further
    /// 200 ms to 2.2 s.
    LongReordering {
        /// Whether long reordering is on.
        on: bool,
    },
    /// Delivers requests twice with this rate (see [`NetConfig::duplicate_permille`]).
    Duplicate {
        /// Requests duplicated, per mille.
        permille: u32,
    },
    /// Latency added to every hop, requests and replies, drawn uniformly in [min, max] ms.
    Delay {
        /// Least added latency per hop, ms.
        min_ms: u32,
        /// Most added latency per hop, ms.
        max_ms: u32,
    },
}

fn one() -> u32 {
    1
}

/// A fault at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When the fault fires, in simulated ms since the run began.
    pub at_ms: u64,
    /// What happens then.
    #[serde(flatten)]
    pub fault: Fault,
}

/// A whole schedule, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSchedule {
    /// The events, in non-decreasing `at_ms` order (written as `[[event]]` tables).
    #[serde(default, rename = "event")]
    pub events: Vec<FaultEvent>,
}

/// A fault file that cannot be read, parsed or written: bad input, never a run's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultsError {
    /// The file.
    pub path: PathBuf,
    /// The line the problem is on, when it is on one (1-based).
    pub line: Option<usize>,
    /// What is wrong, in one line.
    pub message: String,
}

impl fmt::Display for FaultsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}: line {l}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for FaultsError {}

impl FaultSchedule {
    /// The schedule on one line for people, in order of first appearance: each network
    /// setting with its values, every other kind with its count (`unreliable (loss req 23‰
    /// reply 145‰, delay ≤0ms), duplicates 196‰, crash_after_save ×2, restart`).
    pub fn summary(&self) -> String {
        let mut parts: Vec<(String, usize)> = Vec::new();
        for e in &self.events {
            let label = match &e.fault {
                Fault::Unreliable { request_loss_permille, reply_loss_permille, request_delay_ms_max } => format!(
                    "unreliable (loss req {request_loss_permille}‰ reply {reply_loss_permille}‰, delay ≤{request_delay_ms_max}ms)"
                ),
                Fault::LongReordering { on } => format!("long reordering {}", if *on { "on" } else { "off" }),
                Fault::Duplicate { permille } => format!("duplicates {permille}‰"),
                Fault::Delay { min_ms, max_ms } => format!("latency {min_ms}-{max_ms}ms"),
                other => other.kind().to_string(),
            };
            match parts.iter_mut().find(|(l, _)| *l == label) {
                Some(p) => p.1 += 1,
                None => parts.push((label, 1)),
            }
        }
        if parts.is_empty() {
            return "no events".into();
        }
        let parts: Vec<String> = parts.into_iter().map(|(l, n)| if n > 1 { format!("{l} ×{n}") } else { l }).collect();
        parts.join(", ")
    }

    /// Parses a schedule from TOML (`[[event]]` tables with `at_ms`, `kind` and the kind's
    /// fields), `path` naming it in errors.
    ///
    /// # Errors
    /// A [`FaultsError`] naming the file and line for malformed TOML, an unknown kind or
    /// field, a missing field, a value that cannot happen ([`Fault::check_values`]), or
    /// events out of time order.
    pub fn parse(path: &Path, text: &str) -> Result<Self, FaultsError> {
        let error = |line, message: String| FaultsError { path: path.to_path_buf(), line, message };
        let s: FaultSchedule = crate::tomlfile::from_str(text).map_err(|e| error(e.line, e.message))?;
        if let Some((i, message)) =
            s.events.iter().enumerate().find_map(|(i, e)| e.fault.check_values().err().map(|m| (i, m)))
        {
            return Err(error(None, format!("event {}: {message}", i + 1)));
        }
        if let Some(i) = s.events.windows(2).position(|w| w[0].at_ms > w[1].at_ms) {
            return Err(error(
                None,
                format!(
                    "events must be in time order (at_ms never decreasing): event {} at {} ms follows one at {} ms",
                    i + 2,
                    s.events[i + 1].at_ms,
                    s.events[i].at_ms
                ),
            ));
        }
        Ok(s)
    }

    /// Reads and parses a schedule file.
    ///
    /// # Errors
    /// As [`FaultSchedule::parse`], or when the file cannot be read.
    pub fn load(path: &Path) -> Result<Self, FaultsError> {
        let text = std::fs::read_to_string(path).map_err(|e| FaultsError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// The schedule as TOML, in the format [`FaultSchedule::parse`] reads.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a fault schedule always encodes")
    }

    /// Writes the schedule to a file.
    ///
    /// # Errors
    /// A [`FaultsError`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), FaultsError> {
        std::fs::write(path, self.to_toml()).map_err(|e| FaultsError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot write: {e}"),
        })
    }
}

impl Fault {
    /// The event's `kind` as written in a schedule file (`partition`, `crash_after_save`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Heal => "heal",
            Fault::Isolate { .. } => "isolate",
            Fault::Connect { .. } => "connect",
            Fault::Cut { .. } => "cut",
            Fault::Uncut { .. } => "uncut",
            Fault::Clog { .. } => "clog",
            Fault::Release { .. } => "release",
            Fault::ReleaseAll => "release_all",
            Fault::Hold { .. } => "hold",
            Fault::Crash { .. } => "crash",
            Fault::CrashAfterSave { .. } => "crash_after_save",
            Fault::Restart { .. } => "restart",
            Fault::Unreliable { .. } => "unreliable",
            Fault::Reliable => "reliable",
            Fault::LongReordering { .. } => "long_reordering",
            Fault::Duplicate { .. } => "duplicate",
            Fault::Delay { .. } => "delay",
        }
    }

    /// The event as a person reads it: its kind and whom it names (`isolate leader`,
    /// `clog s1 -> s2`, `partition s0 s1 | leader`), as a run lists the events it skipped.
    pub fn describe(&self) -> String {
        let names = |ts: &[Target]| ts.iter().map(|t| t.0.as_str()).collect::<Vec<_>>().join(" ");
        match self {
            Fault::Partition { a, b } => format!("partition {} | {}", names(a), names(b)),
            Fault::Cut { from, to }
            | Fault::Uncut { from, to }
            | Fault::Clog { from, to }
            | Fault::Release { from, to }
            | Fault::Hold { from, to, .. } => format!("{} {} -> {}", self.kind(), from.0, to.0),
            _ => {
                let targets: Vec<&str> = self.named_targets().iter().map(|(_, t)| t.0.as_str()).collect();
                if targets.is_empty() {
                    self.kind().to_string()
                } else {
                    format!("{} {}", self.kind(), targets.join(" "))
                }
            }
        }
    }

    /// The nodes or roles the fault names, with the field each is in (`node`, `from`, `to`,
    /// `of`, `a`, `b`).
    pub fn named_targets(&self) -> Vec<(&'static str, &Target)> {
        match self {
            Fault::Partition { a, b } => a.iter().map(|t| ("a", t)).chain(b.iter().map(|t| ("b", t))).collect(),
            Fault::Isolate { node }
            | Fault::Connect { node }
            | Fault::Crash { node }
            | Fault::CrashAfterSave { node, .. }
            | Fault::Restart { node } => vec![("node", node)],
            Fault::Cut { from, to }
            | Fault::Uncut { from, to }
            | Fault::Clog { from, to }
            | Fault::Release { from, to } => {
                vec![("from", from), ("to", to)]
            }
            Fault::Hold { from, to, of, .. } => {
                let mut v = vec![("from", from), ("to", to)];
                v.extend(of.iter().map(|o| ("of", o)));
                v
            }
            _ => Vec::new(),
        }
    }

    /// Whether the fault's values can happen: every node or role it names is one the format
    /// defines ([`Target::check`]), a partition cuts something (a side names someone, and
    /// side `b` someone side `a` does not — a node named on both stays on `a`), a rate per
    /// mille is at most 1000, and a delay range's least is not above its most. Schedule and
    /// scenario files are refused when an event fails this, rather than run as a no-op or
    /// with a rate the network would clamp silently. (One side may be empty: the swarms draw
    /// such partitions, which link the other side up; a saved schedule must replay.)
    ///
    /// # Errors
    /// One line naming the field, its value and what to give instead.
    pub fn check_values(&self) -> Result<(), String> {
        for (field, t) in self.named_targets() {
            t.check().map_err(|e| format!("{} {field}: {e}", self.kind()))?;
        }
        if let Fault::Partition { a, b } = self {
            if a.is_empty() && b.is_empty() {
                return Err("partition: both sides are empty; name the nodes of side a and side b".into());
            }
            if !b.is_empty() && b.iter().all(|t| a.contains(t)) {
                let names: Vec<&str> = b.iter().map(|t| t.0.as_str()).collect();
                return Err(format!(
                    "partition: every node of side b ({}) is also on side a, where a node named on both stays, so nothing is cut; give the sides different nodes",
                    names.join(", ")
                ));
            }
        }
        let rate = |field: &str, permille: u32| {
            if permille > 1000 {
                Err(format!("{} {field} = {permille}: give a rate of 0 to 1000 per mille", self.kind()))
            } else {
                Ok(())
            }
        };
        match *self {
            Fault::Unreliable { request_loss_permille, reply_loss_permille, .. } => {
                rate("request_loss_permille", request_loss_permille)?;
                rate("reply_loss_permille", reply_loss_permille)
            }
            Fault::Duplicate { permille } => rate("permille", permille),
            Fault::Delay { min_ms, max_ms } if min_ms > max_ms => {
                Err(format!("delay min_ms = {min_ms} is above max_ms = {max_ms}: give min_ms <= max_ms"))
            }
            _ => Ok(()),
        }
    }
}

/// Resolves a role to a node at the moment an event fires (`None`: nobody has it now).
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<NodeId>;

fn find(t: &Target, servers: &[NodeId], resolve: Resolver<'_>) -> Option<NodeId> {
    servers.iter().copied().find(|&n| crate::node_name(n) == t.0).or_else(|| resolve(&t.0))
}

/// Applies one fault now. Returns false if a target could not be resolved (then nothing
/// happened; the trace says so).
pub fn apply(fault: &Fault, servers: &[NodeId], resolve: Resolver<'_>) -> bool {
    let one = |t: &Target| find(t, servers, resolve);
    let skipped = |what: &str| {
        let w = what.to_string();
        crate::world::keep_skipped_fault(&format!("{w} (resolves to no node then)"));
        crate::note(crate::trace::NoteCode::FaultSkipped, 0, move || {
            format!("fault skipped: {w} resolves to no node now")
        });
        false
    };
    match fault {
        Fault::Partition { a, b } => {
            let ra: Option<Vec<NodeId>> = a.iter().map(one).collect();
            let rb: Option<Vec<NodeId>> = b.iter().map(one).collect();
            match (ra, rb) {
                (Some(mut ra), Some(rb)) => {
                    // A node named on both sides stays on side a.
                    ra.sort();
                    ra.dedup();
                    let rb: Vec<NodeId> = rb.into_iter().filter(|n| !ra.contains(n)).collect();
                    net::partition(&ra, &rb);
                    true
                }
                _ => skipped(&fault.describe()),
            }
        }
        Fault::Heal => {
            net::heal(servers);
            true
        }
        Fault::Isolate { node } => match one(node) {
            Some(n) => {
                net::disconnect(n);
                true
            }
            None => skipped(&fault.describe()),
        },
        Fault::Connect { node } => match one(node) {
            Some(n) => {
                net::connect(n);
                true
            }
            None => skipped(&fault.describe()),
        },
        Fault::Cut { from, to }
        | Fault::Uncut { from, to }
        | Fault::Clog { from, to }
        | Fault::Release { from, to } => match (one(from), one(to)) {
            (Some(f), Some(t)) if f != t => {
                match fault {
                    Fault::Cut { .. } => net::cut(f, t),
                    Fault::Uncut { .. } => net::uncut(f, t),
                    Fault::Clog { .. } => net::clog(f, t),
                    _ => net::release(f, t),
                }
                true
            }
            _ => skipped(&fault.describe()),
        },
        Fault::ReleaseAll => {
            net::release_all();
            true
        }
        Fault::Hold { from, to, message, messages, until, of, count, after_ms } => {
            let of = of.as_ref().unwrap_or(from);
            match (one(from), one(to), one(of)) {
                (Some(f), Some(t), Some(o)) if f != t => {
                    let spec = net::HoldSpec {
                        from: f,
                        to: t,
                        message: message.clone(),
                        messages: *messages,
                        until: until.clone(),
                        of: o,
                        count: *count,
                        after_ms: *after_ms,
                    };
                    if net::hold(spec).is_some() {
                        true
                    } else {
                        skipped(&format!("hold until '{until}' (not a trigger this scenario reports)"))
                    }
                }
                _ => skipped(&fault.describe()),
            }
        }
        Fault::Crash { node } => match one(node) {
            Some(n) if crate::is_alive(n) => {
                crate::crash(n);
                true
            }
            _ => skipped(&fault.describe()),
        },
        Fault::CrashAfterSave { node, saves, delay_ms } => match one(node) {
            Some(n) if crate::is_alive(n) => {
                // Trace text closures run inside the world: resolve names before.
                let name = crate::node_name(n);
                let d = *delay_ms;
                crate::note(crate::trace::NoteCode::FaultResolved, n.0 as u64, move || {
                    format!("armed: {name} crashes {d}ms after its next save #{saves}")
                });
                crate::crash_after_saves(n, (*saves).max(1), Duration::from_millis(d));
                true
            }
            _ => skipped(&fault.describe()),
        },
        Fault::Restart { node } => match one(node) {
            Some(n) if !crate::is_alive(n) => {
                crate::restart(n);
                true
            }
            _ => skipped(&fault.describe()),
        },
        Fault::Unreliable { request_loss_permille, reply_loss_permille, request_delay_ms_max } => {
            net::set_config(NetConfig {
                reliable: false,
                request_loss_permille: *request_loss_permille,
                reply_loss_permille: *reply_loss_permille,
                request_delay_ms_max: *request_delay_ms_max,
                ..net::config()
            });
            true
        }
        Fault::Reliable => {
            net::set_reliable(true);
            true
        }
        Fault::LongReordering { on } => {
            net::set_long_reordering(*on);
            true
        }
        Fault::Duplicate { permille } => {
            net::set_config(NetConfig { duplicate_permille: *permille, ..net::config() });
            true
        }
        Fault::Delay { min_ms, max_ms } => {
            net::set_config(NetConfig { hop_delay_ms_min: *min_ms, hop_delay_ms_max: *max_ms, ..net::config() });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_round_trip_through_toml() {
        let s = FaultSchedule {
            events: vec![
                FaultEvent {
                    at_ms: 10,
                    fault: Fault::Partition {
                        a: vec![Target::node("s0"), Target::role("leader")],
                        b: vec![Target::node("s2")],
                    },
                },
                FaultEvent {
                    at_ms: 20,
                    fault: Fault::CrashAfterSave { node: Target::role("leader"), saves: 2, delay_ms: 0 },
                },
                FaultEvent {
                    at_ms: 30,
                    fault: Fault::Unreliable {
                        request_loss_permille: 50,
                        reply_loss_permille: 60,
                        request_delay_ms_max: 26,
                    },
                },
                FaultEvent { at_ms: 40, fault: Fault::Heal },
            ],
        };
        let text = s.to_toml();
        assert!(text.contains("kind = \"crash_after_save\""), "{text}");
        assert_eq!(FaultSchedule::parse(Path::new("f.toml"), &text).unwrap(), s);
    }

    #[test]
    fn kind_names_the_tag_a_file_uses() {
        let t = || Target::node("s0");
        let every = [
            Fault::Partition { a: vec![t()], b: vec![] },
            Fault::Heal,
            Fault::Isolate { node: t() },
            Fault::Connect { node: t() },
            Fault::Cut { from: t(), to: t() },
            Fault::Uncut { from: t(), to: t() },
            Fault::Clog { from: t(), to: t() },
            Fault::Release { from: t(), to: t() },
            Fault::ReleaseAll,
            Fault::Hold {
                from: t(),
                to: t(),
                message: Some("m".into()),
                messages: 1,
                until: "e".into(),
                of: None,
                count: 2,
                after_ms: 0,
            },
            Fault::Crash { node: t() },
            Fault::CrashAfterSave { node: t(), saves: 1, delay_ms: 0 },
            Fault::Restart { node: t() },
            Fault::Unreliable { request_loss_permille: 1, reply_loss_permille: 1, request_delay_ms_max: 1 },
            Fault::Reliable,
            Fault::LongReordering { on: true },
            Fault::Duplicate { permille: 1 },
            Fault::Delay { min_ms: 0, max_ms: 1 },
        ];
        for fault in every {
            let text = FaultSchedule { events: vec![FaultEvent { at_ms: 0, fault: fault.clone() }] }.to_toml();
            assert!(text.contains(&format!("kind = \"{}\"", fault.kind())), "{text}");
            // A skipped event is listed by its kind and whom it names.
            let said = fault.describe();
            assert!(said.starts_with(fault.kind()), "{said}");
            for (_, target) in fault.named_targets() {
                assert!(said.contains(&target.0), "{said}");
            }
        }
        let at = |fault| FaultEvent { at_ms: 0, fault };
        let s = FaultSchedule {
            events: vec![
                at(Fault::Unreliable { request_loss_permille: 23, reply_loss_permille: 145, request_delay_ms_max: 0 }),
                at(Fault::Crash { node: t() }),
                at(Fault::Duplicate { permille: 196 }),
                at(Fault::Crash { node: t() }),
                at(Fault::Restart { node: t() }),
            ],
        };
        assert_eq!(s.summary(), "unreliable (loss req 23‰ reply 145‰, delay ≤0ms), crash ×2, duplicates 196‰, restart");
        assert_eq!(FaultSchedule::default().summary(), "no events");
        let leader = || Target::node("leader");
        assert_eq!(Fault::Isolate { node: leader() }.describe(), "isolate leader");
        assert_eq!(Fault::Clog { from: Target::node("s1"), to: leader() }.describe(), "clog s1 -> leader");
        let p = Fault::Partition { a: vec![Target::node("s0"), Target::node("s1")], b: vec![leader()] };
        assert_eq!(p.describe(), "partition s0 s1 | leader");
    }

    #[test]
    fn malformed_schedules_are_rejected_with_file_and_line() {
        let p = Path::new("f.toml");
        let e = FaultSchedule::parse(p, "[[event]]\nat_ms = 5\nkind = \"explode\"\n").unwrap_err().to_string();
        assert!(e.starts_with("f.toml") && e.contains("explode"), "{e}");
        let e =
            FaultSchedule::parse(p, "[[event]]\nat_ms = 9\nkind = \"heal\"\n[[event]]\nat_ms = 5\nkind = \"heal\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("time order"), "{e}");
        let e = FaultSchedule::parse(p, "[[event]]\nkind = \"heal\"\n").unwrap_err().to_string();
        assert!(e.contains("at_ms"), "{e}");
    }

    #[test]
    fn values_that_cannot_happen_are_refused() {
        let p = Path::new("f.toml");
        let parse = |body: &str| FaultSchedule::parse(p, &format!("[[event]]\nat_ms = 0\n{body}\n")).map(|_| ());
        let e = parse(
            "kind = \"unreliable\"\nrequest_loss_permille = 5000\nreply_loss_permille = 0\nrequest_delay_ms_max = 27",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("event 1") && e.contains("request_loss_permille = 5000") && e.contains("0 to 1000"), "{e}");
        assert!(parse("kind = \"duplicate\"\npermille = 1001").unwrap_err().to_string().contains("permille = 1001"));
        assert!(parse("kind = \"delay\"\nmin_ms = 9\nmax_ms = 3").unwrap_err().to_string().contains("min_ms = 9"));
        // The limits themselves are fine.
        parse(
            "kind = \"unreliable\"\nrequest_loss_permille = 1000\nreply_loss_permille = 1000\nrequest_delay_ms_max = 0",
        )
        .unwrap();
        parse("kind = \"duplicate\"\npermille = 1000").unwrap();
        parse("kind = \"delay\"\nmin_ms = 3\nmax_ms = 3").unwrap();
    }

    #[test]
    fn names_no_format_defines_and_partitions_that_cut_nothing_are_refused() {
        let p = Path::new("f.toml");
        let parse = |body: &str| {
            FaultSchedule::parse(p, &format!("[[event]]\nat_ms = 0\n{body}\n")).map(|_| ()).map_err(|e| e.to_string())
        };
        // Before, each of these ran as a no-op: the name resolved to nobody when it fired.
        let e = parse("kind = \"crash\"\nnode = \"leadr\"").unwrap_err();
        assert!(e.contains("event 1") && e.contains("crash node") && e.contains("'leadr'"), "{e}");
        assert!(parse("kind = \"restart\"\nnode = \"bogus\"").unwrap_err().contains("'bogus'"));
        assert!(parse("kind = \"cut\"\nfrom = \"s0\"\nto = \"S1\"").unwrap_err().contains("cut to"));
        assert!(parse("kind = \"hold\"\nfrom = \"s0\"\nto = \"s1\"\nuntil = \"term\"\nof = \"s\"")
            .unwrap_err()
            .contains("hold of"));
        assert!(parse("kind = \"partition\"\na = [\"s0\", \"x1\"]\nb = []").unwrap_err().contains("partition a"));
        let e = parse("kind = \"partition\"\na = [\"s0\"]\nb = [\"s0\"]").unwrap_err();
        assert!(e.contains("also on side a") && e.contains("nothing is cut"), "{e}");
        assert!(parse("kind = \"partition\"\na = []\nb = []").unwrap_err().contains("both sides are empty"));
        // Every form the swarms write is fine, and so is a node beyond some cluster's size
        // (skipped when it fires), an overlap that still cuts, and one empty side.
        for name in [
            "s0",
            "s12",
            "s100-2",
            "ctrler1",
            "leader",
            "follower",
            "down",
            "any",
            "leader@100",
            "down@7",
            "leader@ctrler",
        ] {
            parse(&format!("kind = \"crash\"\nnode = \"{name}\"")).unwrap();
        }
        for bad in ["", "s", "s-1", "s1-", "sx", "ctrler", "leader@", "up@100", "leader@x", "Leader", " s0"] {
            assert!(parse(&format!("kind = \"isolate\"\nnode = \"{bad}\"")).is_err(), "{bad:?}");
        }
        parse(
            "kind = \"partition\"\na = [\"ctrler1\", \"leader@ctrler\"]\nb = [\"ctrler0\", \"ctrler1\", \"ctrler2\"]",
        )
        .unwrap();
        parse("kind = \"partition\"\na = [\"s0\", \"s1\", \"s2\"]\nb = []").unwrap();
        parse("kind = \"partition\"\na = []\nb = [\"s0\", \"s1\"]").unwrap();
    }
}
