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
use std::path::Path;
use std::time::Duration;

/// A node, by name (`s3`), or a role the scenario resolves (`leader`, `follower`, `any`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Target(pub String);

impl Target {
    pub fn node(name: &str) -> Self {
        Target(name.to_string())
    }
    pub fn role(role: &str) -> Self {
        Target(role.to_string())
    }
}

/// One kind of fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Two internally connected sides with no link between them (servers only).
    Partition {
        a: Vec<Target>,
        b: Vec<Target>,
    },
    /// Every link among the servers comes back up.
    Heal,
    /// Raft-tester style: the node loses every link.
    Isolate {
        node: Target,
    },
    /// Raft-tester style: the node regains its links to connected nodes.
    Connect {
        node: Target,
    },
    /// One-way cut.
    Cut {
        from: Target,
        to: Target,
    },
    Uncut {
        from: Target,
        to: Target,
    },
    /// Hold messages on a link until released.
    Clog {
        from: Target,
        to: Target,
    },
    Release {
        from: Target,
        to: Target,
    },
    ReleaseAll,
    Crash {
        node: Target,
    },
    /// Crash the node after its next `saves`-th save: right after it (between persisting and
    /// replying) with no delay, or `delay_ms` later (after the reply left).
    CrashAfterSave {
        node: Target,
        saves: u32,
        #[serde(default)]
        delay_ms: u64,
    },
    /// Restart the node if it is down.
    Restart {
        node: Target,
    },
    /// Unreliable mode with these loss rates (per mille) and request delay (ms).
    Unreliable {
        request_loss_permille: u32,
        reply_loss_permille: u32,
        request_delay_ms_max: u32,
    },
    Reliable,
    LongReordering {
        on: bool,
    },
    Duplicate {
        permille: u32,
    },
    Delay {
        min_ms: u32,
        max_ms: u32,
    },
}

/// A fault at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub at_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

/// A whole schedule, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSchedule {
    #[serde(default, rename = "event")]
    pub events: Vec<FaultEvent>,
}

impl FaultSchedule {
    /// Parses a schedule from TOML; errors name the file and line.
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let s: FaultSchedule = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(l) => format!("{}: line {l}: {}", path.display(), e.message()),
                None => format!("{}: {}", path.display(), e.message()),
            }
        })?;
        if s.events.windows(2).any(|w| w[0].at_ms > w[1].at_ms) {
            return Err(format!("{}: events must be in time order (at_ms never decreasing)", path.display()));
        }
        Ok(s)
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a fault schedule always encodes")
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.to_toml()).map_err(|e| format!("{}: cannot write: {e}", path.display()))
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
        crate::note(0xFA17, 0, move || format!("fault skipped: {w} resolves to no node now"));
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
                _ => skipped("partition"),
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
            None => skipped(&node.0),
        },
        Fault::Connect { node } => match one(node) {
            Some(n) => {
                net::connect(n);
                true
            }
            None => skipped(&node.0),
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
            _ => skipped(&format!("{} -> {}", from.0, to.0)),
        },
        Fault::ReleaseAll => {
            net::release_all();
            true
        }
        Fault::Crash { node } => match one(node) {
            Some(n) if crate::is_alive(n) => {
                crate::crash(n);
                true
            }
            _ => skipped(&format!("crash {}", node.0)),
        },
        Fault::CrashAfterSave { node, saves, delay_ms } => match one(node) {
            Some(n) if crate::is_alive(n) => {
                // Trace text closures run inside the world: resolve names before.
                let name = crate::node_name(n);
                let d = *delay_ms;
                crate::note(0xFA18, n.0 as u64, move || {
                    format!("armed: {name} crashes {d}ms after its next save #{saves}")
                });
                crate::crash_after_saves(n, (*saves).max(1), Duration::from_millis(d));
                true
            }
            _ => skipped(&format!("crash-after-save {}", node.0)),
        },
        Fault::Restart { node } => match one(node) {
            Some(n) if !crate::is_alive(n) => {
                crate::restart(n);
                true
            }
            _ => skipped(&format!("restart {}", node.0)),
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
    fn malformed_schedules_are_rejected_with_file_and_line() {
        let p = Path::new("f.toml");
        let e = FaultSchedule::parse(p, "[[event]]\nat_ms = 5\nkind = \"explode\"\n").unwrap_err();
        assert!(e.starts_with("f.toml") && e.contains("explode"), "{e}");
        let e =
            FaultSchedule::parse(p, "[[event]]\nat_ms = 9\nkind = \"heal\"\n[[event]]\nat_ms = 5\nkind = \"heal\"\n")
                .unwrap_err();
        assert!(e.contains("time order"), "{e}");
        let e = FaultSchedule::parse(p, "[[event]]\nkind = \"heal\"\n").unwrap_err();
        assert!(e.contains("at_ms"), "{e}");
    }
}
