//! The old course harness's network (6.824 2014–2015, reference `6824-old-labs.md` §1) as a
//! mode of the simulated network: one connection per call, reachability checked only when a
//! call dials, failures that return fast, per-receiver unreliability with two draws, deaf
//! servers, partitions rebuilt atomically, and a serial delaying proxy.
//!
//! The mode knows nothing of the labs that use it: it is a set of per-node switches.
//! - **Connections.** A call's reachability (link up, receiver alive and not deaf) is decided
//!   when it is sent; a partition or cut after that does not break an established call (Go's
//!   hard links are only looked up at dial time). Only the receiver's crash ends a call.
//! - **Fast failure.** Every failure — unreachable, request closed unread, reply shut down,
//!   receiver crashed while handling — reaches the caller [`FAIL_FAST_MS`] after its cause
//!   (ENOENT, ECONNREFUSED and EOF all return at once on a Unix socket; the simulated
//!   millisecond keeps a retry loop without sleeps from spinning at one instant).
//! - **Unreliable receivers.** For each request to a flagged node, two independent draws:
//!   `U[0,1000) < 100` closes it unread (request lost, 10 %); otherwise `U[0,1000) < 200`
//!   shuts the write side and serves it anyway (the handler runs, the caller fails at once:
//!   18 % overall). Flags are per receiver, so every service on that node shares them.
//! - **Deaf** nodes cannot be reached by anyone, themselves included, and still call out and
//!   receive their replies.
//! - **Partitions** ([`part`]): a per-pair reachability matrix over the servers, rebuilt in
//!   one step; nodes outside the servers (the tests' clerks) are untouched.
//! - **Delaying proxy** ([`set_proxy_delay`]): requests to a node pass through a proxy that
//!   takes one connection at a time and waits its delay before dialing the node, so later
//!   calls queue behind a delayed one. The delay is read when the request reaches the proxy.

use super::{drop_hop, names, node_list_hash, Hop, NetState, Reason, MS};
use crate::sched::Action;
use crate::world::{with, Kernel, NodeId};
use rand::Rng;
use std::time::Duration;

/// How long after its cause a failed call returns in the old mode, in milliseconds.
pub const FAIL_FAST_MS: u64 = 1;

/// Request-loss draw at an unreliable receiver, per mille (reference §1.2: `rand%1000 < 100`).
pub const REQUEST_LOSS_PERMILLE: u32 = 100;
/// Reply-loss draw at an unreliable receiver after the request survived, per mille
/// (reference §1.2: a second `rand%1000 < 200`).
pub const REPLY_LOSS_PERMILLE: u32 = 200;

/// Per-node switches of the old mode.
#[derive(Default)]
pub(crate) struct OldNet {
    pub on: bool,
    unreliable: Vec<bool>,
    deaf: Vec<bool>,
    proxy_delay_ns: Vec<u64>,
    /// When each node's proxy is free to take its next connection.
    proxy_free_at: Vec<u64>,
}

impl OldNet {
    pub fn add_node(&mut self) {
        self.unreliable.push(false);
        self.deaf.push(false);
        self.proxy_delay_ns.push(0);
        self.proxy_free_at.push(0);
    }
}

pub(crate) const FAIL_FAST_NS: u64 = FAIL_FAST_MS * MS;

impl NetState {
    /// Decides a request's fate in the old mode (see the module comment).
    pub(super) fn route_old_request(&mut self, k: &mut Kernel, hop: Hop, call: u64) {
        let now = k.now_ns();
        let (from, to) = (hop.from, hop.to);
        if self.old.deaf[to as usize] || !self.link_up(from, to) || !k.nodes[to as usize].alive {
            drop_hop(k, &hop, Reason::Unreachable);
            k.schedule(now + FAIL_FAST_NS, Action::Fail { call, reason: Reason::Unreachable });
            return;
        }
        let mut at = now + self.hop_delay();
        let delay = self.old.proxy_delay_ns[to as usize];
        if delay > 0 || self.old.proxy_free_at[to as usize] > at {
            at = at.max(self.old.proxy_free_at[to as usize]) + delay;
            self.old.proxy_free_at[to as usize] = at;
        }
        if self.old.unreliable[to as usize] {
            if self.rng.gen_range(0..1000) < REQUEST_LOSS_PERMILLE {
                drop_hop(k, &hop, Reason::RequestLost);
                k.schedule(now + FAIL_FAST_NS, Action::Fail { call, reason: Reason::RequestLost });
                return;
            }
            if self.rng.gen_range(0..1000) < REPLY_LOSS_PERMILLE {
                // The write side is shut before the handler runs: the caller sees EOF at
                // once, the request is still served, and its reply is lost.
                if let Some(slot) = self.calls.get_mut(call) {
                    slot.reply_lost = true;
                }
                k.schedule(now + FAIL_FAST_NS, Action::Fail { call, reason: Reason::ReplyLost });
            }
        }
        if self.take_forced_duplicate() {
            // A fault point's copy (`clerk.late_duplicate`): its hold takes it at once.
            self.send_copy(k, &hop, call, at, 0);
        }
        self.send_or_hold(k, hop, at);
    }

    /// Whether a call being handled is now dead, in the old mode: only the receiver's crash
    /// ends an established connection.
    pub(super) fn old_call_is_dead(&self, k: &Kernel, server: u16, inc: u32) -> Option<Reason> {
        let s = &k.nodes[server as usize];
        (!s.alive || s.incarnation != inc).then_some(Reason::ServerDied)
    }
}

fn fault(code: u64, a: u64, text: impl FnOnce(&Kernel) -> String) {
    with(|w| w.net.fault(&mut w.kernel, code, a, text))
}

/// Switches the whole network to the old harness's semantics (or back to labrpc's).
/// Scenarios of the old labs call it first, before any traffic.
pub fn set_old_mode(on: bool) {
    with(|w| {
        w.net.old.on = on;
        w.net.fault(&mut w.kernel, 40, on as u64, |_| format!("old network mode={on}"));
    })
}

/// Whether the old mode is on.
pub fn old_mode() -> bool {
    with(|w| w.net.old.on)
}

/// The old harness's `setunreliable(b)` for one receiver: requests *to* `node` are lost with
/// the two draws of the module comment; its own calls are untouched.
pub fn set_unreliable(node: NodeId, unreliable: bool) {
    with(|w| w.net.old.unreliable[node.index()] = unreliable);
    fault(41, ((node.0 as u64) << 1) | unreliable as u64, |k| format!("unreliable {}={unreliable}", k.name(node.0)));
}

/// Whether requests to `node` are subject to the two-draw loss.
pub fn is_unreliable(node: NodeId) -> bool {
    with(|w| w.net.old.unreliable[node.index()])
}

/// Deafness (the old tests' `os.Remove(socket)`): nobody can reach `node`, itself included;
/// it still calls out and gets its replies. `false` makes it reachable again.
pub fn set_deaf(node: NodeId, deaf: bool) {
    with(|w| w.net.old.deaf[node.index()] = deaf);
    fault(42, ((node.0 as u64) << 1) | deaf as u64, |k| format!("deaf {}={deaf}", k.name(node.0)));
}

/// The old Paxos tests' `part(p1, p2, p3)`: among `servers`, a server reaches another exactly
/// when both are in one group (itself included); a server in no group reaches nobody. All
/// links among `servers` are rebuilt in one step; other nodes' links are untouched.
pub fn part(servers: &[NodeId], groups: &[&[NodeId]]) {
    let group_of = |n: NodeId| groups.iter().position(|g| g.contains(&n));
    with(|w| {
        let (net, k) = (&mut w.net, &mut w.kernel);
        for &a in servers {
            for &b in servers {
                let up = matches!((group_of(a), group_of(b)), (Some(x), Some(y)) if x == y);
                net.set_link(a.0, b.0, up);
            }
        }
        let label: Vec<String> = groups.iter().map(|g| names(k, g)).collect();
        let label = format!("part {}", label.join(" | "));
        let h = groups.iter().fold(0u64, |h, g| node_list_hash(g) ^ h.rotate_left(7));
        net.close_partition_annotation(k);
        net.open_partition = Some(k.open_annotation(label.clone(), None));
        net.fault(k, 43, h, |_| label);
    })
}

/// Puts a serial delaying proxy in front of `node` (the pbservice tests' `proxy()`), or
/// changes its delay; `Duration::ZERO` passes requests on at once (still one at a time).
pub fn set_proxy_delay(node: NodeId, delay: Duration) {
    let ns = delay.as_nanos() as u64;
    with(|w| w.net.old.proxy_delay_ns[node.index()] = ns);
    fault(44, ((node.0 as u64) << 40) | (ns / MS), |k| format!("proxy {} delay={}ms", k.name(node.0), ns / MS));
}
