//! The simulated network, with the semantics of the course's `labrpc` and more.
//!
//! Calls are request/reply, as labrpc's `Call`: every call eventually returns a reply or
//! fails (labrpc's `false`), unless the server's handler never answers or a clog holds a
//! message. The exact numbers of labrpc (the course's `labrpc.go`):
//! - reliable mode adds no delay;
//! - unreliable mode delays each request 0–26 ms, loses 10 % of requests (the call fails
//!   after the delay, the handler never runs) and 10 % of replies (the handler ran);
//! - long reordering delays 2/3 of replies by 200 + U[0, U[0, 1999]] ms;
//! - a call to an unreachable or dead server fails after U[0, 6999] ms with long delays on
//!   (Raft tests) or U[0, 99] ms otherwise;
//! - while a handler runs, the call is re-checked every 100 ms: a disabled link or a dead
//!   server instance fails it; the same check runs once more when the handler replies.
//!
//! Beyond the course: one-way link cuts, clogs that hold messages and release them in a
//! burst, duplicated requests, custom loss/delay profiles.
//! Every payload is a `postcard` encoding made by the sender, so nodes share no memory and
//! byte counts are real.

pub mod old;

use crate::node::NodeCtx;
use crate::process::Host;
use crate::sched::Action;
use crate::trace::{hash_bytes, Kind};
use crate::world::{try_with, with, Kernel, NodeId, NO_NODE};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const MS: u64 = 1_000_000;
/// labrpc re-checks a running handler's call every 100 ms.
const DEAD_CHECK_NS: u64 = 100 * MS;

/// Why a message was lost or a call failed (for the trace; callers just see a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// The link was down or the server absent when the request was sent.
    Unreachable,
    /// Unreliable network lost the request.
    RequestLost,
    /// Unreliable network lost the reply (the handler ran).
    ReplyLost,
    /// The server instance that took the request crashed or was replaced.
    ServerDied,
    /// The link went down while the handler ran.
    LinkDown,
    /// The caller is gone or already has its answer.
    Stale,
}

impl Reason {
    /// The reason in a few words, as trace lines show it.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Unreachable => "unreachable",
            Reason::RequestLost => "request lost",
            Reason::ReplyLost => "reply lost",
            Reason::ServerDied => "server died",
            Reason::LinkDown => "link down",
            Reason::Stale => "stale",
        }
    }
}

/// A failed call: labrpc's `Call` returning false.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    /// Why the call failed; callers need not look (labrpc gives them only `false`).
    pub reason: Reason,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rpc failed: {}", self.reason.label())
    }
}

/// The token a handler answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    call: u64,
    caller: u16,
    server_inc: u32,
}

impl ReplyTo {
    /// The node that made the call.
    pub fn caller(&self) -> NodeId {
        NodeId(self.caller)
    }
}

/// What arrives in a node's inbox.
#[derive(Debug)]
pub enum Incoming {
    /// A request for one of this node's handlers; answer with `NodeCtx::reply`.
    Request {
        /// The calling node.
        from: NodeId,
        /// The encoded request (see [`decode`]).
        payload: Vec<u8>,
        /// The token to answer with.
        reply_to: ReplyTo,
    },
    /// The outcome of a call this node made with `NodeCtx::start_call`.
    Response {
        /// The tag the call was started with.
        tag: u64,
        /// The node that was called.
        from: NodeId,
        /// The encoded reply, or why the call failed.
        result: Result<Vec<u8>, RpcError>,
    },
}

/// Network-wide behaviour. `reliable == false` turns on the loss and delay profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// labrpc's `Reliable`: false turns on request delay and request and reply loss.
    pub reliable: bool,
    /// labrpc's `LongDelays`: a call to an unreachable server fails after up to 7 s instead of
    /// up to 100 ms.
    pub long_delays: bool,
    /// labrpc's `LongReordering`: two replies in three are held back a further 200 ms to 2.2 s.
    pub long_reordering: bool,
    /// Unreliable mode: each request is delayed U[0, this] ms (labrpc: 26).
    pub request_delay_ms_max: u32,
    /// Unreliable mode: requests lost, per mille (labrpc: 100).
    pub request_loss_permille: u32,
    /// Unreliable mode: replies lost after the handler ran, per mille (labrpc: 100).
    pub reply_loss_permille: u32,
    /// Requests delivered twice, per mille (beyond labrpc; works in any mode).
    pub duplicate_permille: u32,
    /// Latency added to every hop, requests and replies, U[min, max] ms (beyond labrpc;
    /// works in any mode; 0..0 by default, as labrpc's reliable network).
    pub hop_delay_ms_min: u32,
    /// Most latency added to a hop, ms (see `hop_delay_ms_min`).
    pub hop_delay_ms_max: u32,
    /// Time a process node spends on each message it receives, U[min, max] µs; a node
    /// handles its messages one at a time, in arrival order (beyond labrpc; clients are
    /// free). Models the CPU cost that bounds a real server's throughput. 0..0 by default.
    pub service_us_min: u32,
    /// Most service time per message, µs (see `service_us_min`).
    pub service_us_max: u32,
}

/// `name=value` pairs, as trace lines show settings: `reliable=true long_delays=false …
/// hop_delay_ms=0..0 service_us=300..700`.
impl std::fmt::Display for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reliable={} long_delays={} long_reordering={} request_delay_ms_max={} request_loss_permille={} \
             reply_loss_permille={} duplicate_permille={} hop_delay_ms={}..{} service_us={}..{}",
            self.reliable,
            self.long_delays,
            self.long_reordering,
            self.request_delay_ms_max,
            self.request_loss_permille,
            self.reply_loss_permille,
            self.duplicate_permille,
            self.hop_delay_ms_min,
            self.hop_delay_ms_max,
            self.service_us_min,
            self.service_us_max
        )
    }
}

impl NetConfig {
    /// labrpc's defaults: reliable, no long delays or reordering; the unreliable profile's
    /// numbers are labrpc's; nothing beyond labrpc is on.
    pub const DEFAULT: NetConfig = NetConfig {
        reliable: true,
        long_delays: false,
        long_reordering: false,
        request_delay_ms_max: 26,
        request_loss_permille: 100,
        reply_loss_permille: 100,
        duplicate_permille: 0,
        hop_delay_ms_min: 0,
        hop_delay_ms_max: 0,
        service_us_min: 0,
        service_us_max: 0,
    };
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig::DEFAULT
    }
}

#[derive(Debug)]
pub(crate) enum Body {
    Request { call: u64, to_inc: u32 },
    Reply { call: u64 },
}

#[derive(Debug)]
pub(crate) struct Hop {
    msg: u64,
    from: u16,
    from_inc: u32,
    to: u16,
    body: Body,
    payload: Vec<u8>,
    /// Already waited its turn in the destination's service queue.
    served: bool,
    /// Taken by a hold: in the network's buffers, it arrives even if its sender has since
    /// crashed.
    kept: bool,
}

enum Completion {
    Waiter { waker: Option<Waker>, result: Option<Result<Vec<u8>, RpcError>> },
    Inbox { tag: u64 },
}

struct CallSlot {
    caller: u16,
    caller_inc: u32,
    server: u16,
    completion: Completion,
    /// Set while a handler holds the request: (server incarnation, since when).
    handling: Option<(u32, u64)>,
    done: bool,
    /// Old mode: the receiver shut its write side; the reply will be lost (`old.rs`).
    reply_lost: bool,
}

/// Calls in flight, by call number. Numbers are handed out in order and calls mostly end in
/// order, so a deque from the oldest live call is a cheaper map than a tree (O(1) lookups),
/// and it iterates in call order, as `on_topology_change` needs.
#[derive(Default)]
struct CallTable {
    /// The call number of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<CallSlot>>,
}

impl CallTable {
    fn insert(&mut self, call: u64, slot: CallSlot) {
        if self.slots.is_empty() {
            self.base = call;
        }
        assert_eq!(call, self.base + self.slots.len() as u64, "calls are numbered in order");
        self.slots.push_back(Some(slot));
    }

    fn get(&self, call: u64) -> Option<&CallSlot> {
        let i = call.checked_sub(self.base)?;
        self.slots.get(i as usize)?.as_ref()
    }

    fn get_mut(&mut self, call: u64) -> Option<&mut CallSlot> {
        let i = call.checked_sub(self.base)?;
        self.slots.get_mut(i as usize)?.as_mut()
    }

    fn contains_key(&self, call: u64) -> bool {
        self.get(call).is_some()
    }

    fn remove(&mut self, call: u64) -> Option<CallSlot> {
        let i = call.checked_sub(self.base)?;
        let slot = self.slots.get_mut(i as usize)?.take();
        self.trim();
        slot
    }

    fn retain(&mut self, mut keep: impl FnMut(&CallSlot) -> bool) {
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(|c| !keep(c)) {
                *s = None;
            }
        }
        self.trim();
    }

    /// Drops the ended calls at the front.
    fn trim(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &CallSlot)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (self.base + i as u64, s)))
    }
}

/// What the network keeps per node.
#[derive(Clone, Copy, Default)]
struct Port {
    /// Requests dispatched to a handler of this node (labrpc's GetCount).
    rpc_count: u64,
    /// Bytes of requests and replies this node sent.
    bytes_sent: u64,
    /// Until when the node is busy with messages already taken (the service queue).
    busy_until: u64,
}

/// The network's own state: links, clogs, calls in flight, per-node counters, and its
/// random stream. It is driven by the world with the kernel as an explicit argument, for
/// the node table (who is alive, inboxes), the scheduler, the trace and the counters.
pub(crate) struct NetState {
    pub cfg: NetConfig,
    n: usize,
    enabled: Vec<bool>,
    clogged: Vec<bool>,
    connected: Vec<bool>,
    ports: Vec<Port>,
    held: BTreeMap<(u16, u16), Vec<Hop>>,
    calls: CallTable,
    next_call: u64,
    next_msg: u64,
    rng: ChaCha8Rng,
    /// Index into the kernel's annotations of the partition currently in force.
    open_partition: Option<usize>,
    /// The old course harness's mode and its per-node switches (`old.rs`); off by default.
    old: old::OldNet,
    /// Holds waiting for their message or their release trigger ([`hold`]), in arming order.
    holds: Vec<Hold>,
    /// The scenario's names of message kinds ([`set_classifier`]); none by default.
    classifier: Option<Classifier>,
    /// The release triggers the scenario feeds ([`register_triggers`]).
    triggers: Vec<String>,
    next_hold: u64,
    /// The next request routed gets a duplicate however the draw goes
    /// ([`crate::fault_point_duplicate`]); cleared when a request is routed.
    force_duplicate: bool,
}

/// Names the kind of a message from its encoded bytes (`reply`: whether it answers a call),
/// or `None` for a message the scenario does not name. Supplied by the scenario, which knows
/// the protocol; the network only compares the names.
pub type Classifier = std::rc::Rc<dyn Fn(&[u8], bool) -> Option<&'static str>>;

/// Which messages a hold takes, and what releases them ([`hold`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldSpec {
    /// The sender of the messages to hold.
    pub from: NodeId,
    /// Their receiver.
    pub to: NodeId,
    /// The kind the scenario's [`Classifier`] must give them (`None`: any message).
    pub message: Option<String>,
    /// How many matching messages to take, from the next one on (0: every one until release).
    pub messages: u32,
    /// The release trigger: a protocol event the scenario reports with [`protocol_event`].
    pub until: String,
    /// The node whose `until` events count.
    pub of: NodeId,
    /// How many such events release the messages, counted from the first message taken
    /// (0 counts as 1).
    pub count: u32,
    /// The released messages arrive this long after the releasing event, in simulated ms (0:
    /// at once) — so a reply released when its caller becomes leader again can arrive after
    /// that leader has appended entries of its new term.
    pub after_ms: u64,
}

struct Hold {
    id: u64,
    spec: HoldSpec,
    /// Messages taken, in order.
    held: Vec<Hop>,
    /// `until` events of `of` seen since the first message was taken.
    seen: u32,
}

impl Hold {
    fn wants_more(&self) -> bool {
        self.spec.messages == 0 || (self.held.len() as u32) < self.spec.messages
    }
}

impl NetState {
    pub fn new(rng: ChaCha8Rng) -> Self {
        NetState {
            cfg: NetConfig::default(),
            n: 0,
            enabled: Vec::new(),
            clogged: Vec::new(),
            connected: Vec::new(),
            ports: Vec::new(),
            held: BTreeMap::new(),
            calls: CallTable::default(),
            next_call: 1,
            next_msg: 1,
            rng,
            open_partition: None,
            old: old::OldNet::default(),
            holds: Vec::new(),
            classifier: None,
            triggers: Vec::new(),
            next_hold: 1,
            force_duplicate: false,
        }
    }

    /// A new node starts connected to everyone.
    pub fn add_node(&mut self) {
        let old = self.n;
        let n = old + 1;
        let mut enabled = vec![true; n * n];
        let mut clogged = vec![false; n * n];
        for a in 0..old {
            for b in 0..old {
                enabled[a * n + b] = self.enabled[a * old + b];
                clogged[a * n + b] = self.clogged[a * old + b];
            }
        }
        self.enabled = enabled;
        self.clogged = clogged;
        self.connected.push(true);
        self.ports.push(Port::default());
        self.old.add_node();
        self.n = n;
    }

    /// A restarted node starts with an empty service queue.
    pub fn on_restart(&mut self, node: u16) {
        self.ports[node as usize].busy_until = 0;
    }

    #[inline]
    fn link(&self, from: u16, to: u16) -> usize {
        from as usize * self.n + to as usize
    }

    fn ms(&mut self, lo: u64, hi_exclusive: u64) -> u64 {
        self.rng.gen_range(lo..hi_exclusive) * MS
    }

    fn permille(&mut self, p: u32) -> bool {
        p > 0 && self.rng.gen_range(0..1000) < p
    }

    /// The configured latency of every hop.
    fn hop_delay(&mut self) -> u64 {
        let (lo, hi) = (self.cfg.hop_delay_ms_min as u64, self.cfg.hop_delay_ms_max as u64);
        if hi == 0 {
            0
        } else {
            self.rng.gen_range(lo.min(hi)..=hi) * MS
        }
    }

    fn link_up(&self, from: u16, to: u16) -> bool {
        self.enabled[self.link(from, to)]
    }

    fn start_call(
        &mut self,
        k: &mut Kernel,
        ctx: NodeCtx,
        to: NodeId,
        payload: Vec<u8>,
        completion: Completion,
        lost_after_ns: Option<u64>,
    ) -> Option<u64> {
        if !k.is_current(ctx) {
            return None;
        }
        let (from, to) = (ctx.id.0, to.0);
        assert!((to as usize) < k.nodes.len(), "call to unknown node {to}");
        let call = self.next_call;
        self.next_call += 1;
        let msg = self.next_msg;
        self.next_msg += 1;
        let len = payload.len() as u64;
        k.stats.rpc_total += 1;
        k.stats.bytes_total += len;
        self.ports[from as usize].bytes_sent += len;
        self.calls.insert(
            call,
            CallSlot {
                caller: from,
                caller_inc: ctx.incarnation,
                server: to,
                completion,
                handling: None,
                done: false,
                reply_lost: false,
            },
        );
        let h = hash_bytes(&payload);
        k.record(Kind::Send, from as u64, [msg | (to as u64) << 48, call, h ^ len], |k| {
            format!("#{msg} {}->{} req call={call} {len}B h={:08x}", k.name(from), k.name(to), h as u32)
        });
        let to_inc = k.nodes[to as usize].incarnation;
        let hop = Hop {
            msg,
            from,
            from_inc: ctx.incarnation,
            to,
            body: Body::Request { call, to_inc },
            payload,
            served: false,
            kept: false,
        };
        if let Some(after) = lost_after_ns {
            // A fault point lost it (`NodeCtx::start_lost_call`): no draw of the network's.
            drop_hop(k, &hop, Reason::RequestLost);
            k.schedule(k.now_ns() + after, Action::Fail { call, reason: Reason::RequestLost });
            return Some(call);
        }
        self.route(k, hop);
        Some(call)
    }

    fn send_reply(&mut self, k: &mut Kernel, ctx: NodeCtx, reply_to: ReplyTo, payload: Vec<u8>) {
        if !k.is_current(ctx) || reply_to.server_inc != ctx.incarnation {
            return;
        }
        let (from, to, call) = (ctx.id.0, reply_to.caller, reply_to.call);
        let msg = self.next_msg;
        self.next_msg += 1;
        let len = payload.len() as u64;
        self.ports[from as usize].bytes_sent += len;
        let h = hash_bytes(&payload);
        k.record(Kind::Send, from as u64, [msg | (to as u64) << 48, call, h ^ len ^ 1], |k| {
            format!("#{msg} {}->{} reply call={call} {len}B h={:08x}", k.name(from), k.name(to), h as u32)
        });
        self.route(
            k,
            Hop {
                msg,
                from,
                from_inc: ctx.incarnation,
                to,
                body: Body::Reply { call },
                payload,
                served: false,
                kept: false,
            },
        );
    }

    /// Decides a message's fate when it leaves its sender.
    fn route(&mut self, k: &mut Kernel, hop: Hop) {
        let now = k.now_ns();
        let (from, to) = (hop.from, hop.to);
        match hop.body {
            Body::Request { call, .. } if self.old.on => self.route_old_request(k, hop, call),
            Body::Request { call, .. } => {
                // labrpc snapshots reachability before the request's delay.
                if !self.link_up(from, to) || !k.nodes[to as usize].alive {
                    let delay = if self.cfg.long_delays { self.ms(0, 7000) } else { self.ms(0, 100) };
                    drop_hop(k, &hop, Reason::Unreachable);
                    k.schedule(now + delay, Action::Fail { call, reason: Reason::Unreachable });
                    return;
                }
                let mut delay = self.hop_delay();
                if !self.cfg.reliable {
                    delay += self.ms(0, self.cfg.request_delay_ms_max as u64 + 1);
                    let loss = self.cfg.request_loss_permille;
                    if self.permille(loss) {
                        drop_hop(k, &hop, Reason::RequestLost);
                        k.schedule(now + delay, Action::Fail { call, reason: Reason::RequestLost });
                        return;
                    }
                }
                let dup = self.cfg.duplicate_permille;
                // Drawn first, whether or not a fault point forces a copy, so forcing one
                // moves no draw of the network's.
                let drawn = self.permille(dup);
                let forced = self.take_forced_duplicate();
                if drawn || forced {
                    // A duplicate may arrive much later than the original (a retransmitting
                    // middlebox): late duplicates are what replay stale requests. A forced
                    // copy is taken by the hold its fault point armed, which sets its delay.
                    let extra = if drawn { self.ms(0, 500) } else { 0 };
                    self.send_copy(k, &hop, call, now + delay, extra);
                }
                let delay = delay + self.delay_point(k, from);
                self.send_or_hold(k, hop, now + delay);
            }
            Body::Reply { call } => {
                let Some(slot) = self.calls.get(call) else {
                    return drop_hop(k, &hop, Reason::Stale);
                };
                if slot.done {
                    return drop_hop(k, &hop, Reason::Stale);
                }
                if slot.reply_lost {
                    return drop_hop(k, &hop, Reason::ReplyLost);
                }
                // labrpc's check after the handler returns: the caller's end must still be
                // enabled. Links are directional here, so the reply also needs the
                // server -> caller direction (a one-way cut loses replies only).
                // The old mode's connections outlive link changes; its loss was drawn at
                // the request.
                if !self.old.on && (!self.link_up(to, from) || !self.link_up(from, to)) {
                    drop_hop(k, &hop, Reason::LinkDown);
                    return self.fail_call(k, call, Reason::LinkDown);
                }
                if !self.cfg.reliable && !self.old.on {
                    let loss = self.cfg.reply_loss_permille;
                    if self.permille(loss) {
                        drop_hop(k, &hop, Reason::ReplyLost);
                        return self.fail_call(k, call, Reason::ReplyLost);
                    }
                }
                let mut delay = self.hop_delay();
                if self.cfg.long_reordering && self.rng.gen_range(0..900) < 600 {
                    let y = self.rng.gen_range(0..2000u64);
                    delay += (200 + self.rng.gen_range(0..=y)) * MS;
                }
                delay += self.delay_point(k, from);
                self.send_or_hold(k, hop, now + delay);
            }
        }
    }

    /// The extra delay of fault point `net.delay_send` for a message leaving `from`, in ns
    /// (0 unless it fires; its draws are its own, never the network's).
    fn delay_point(&mut self, k: &mut Kernel, from: u16) -> u64 {
        crate::points::reach_in(k, crate::FaultPoint::DelaySend, Some(NodeId(from))).map_or(0, |ms| ms * MS)
    }

    /// Delivers now, schedules a delayed delivery, or holds the message on a clogged link.
    fn send_or_hold(&mut self, k: &mut Kernel, hop: Hop, at: u64) {
        let (from, to) = (hop.from, hop.to);
        let hop = match self.take_by_hold(k, hop) {
            Some(hop) => hop,
            None => return,
        };
        if self.clogged[self.link(from, to)] {
            let (msg, call) = (hop.msg, hop_call(&hop));
            k.record(Kind::Hold, from as u64, [msg, call, to as u64], |k| {
                format!("#{msg} {}->{} call={call} held by clog", k.name(from), k.name(to))
            });
            self.held.entry((from, to)).or_default().push(hop);
        } else if at <= k.now_ns() {
            self.deliver(k, hop);
        } else {
            k.schedule(at, Action::Deliver(hop));
        }
    }

    /// Sends a copy of request `hop` (of call `call`) to arrive `extra` ns after `at`: a
    /// duplicate, traced as one and counted as the `DUPLICATED` mark. The copy shares the
    /// call, so whichever arrives second is answered into a call that has ended.
    fn send_copy(&mut self, k: &mut Kernel, hop: &Hop, call: u64, at: u64, extra: u64) {
        let Body::Request { to_inc, .. } = hop.body else { unreachable!("only requests are duplicated") };
        let (from, to) = (hop.from, hop.to);
        let copy = Hop {
            msg: hop.msg,
            from,
            from_inc: hop.from_inc,
            to,
            body: Body::Request { call, to_inc },
            payload: hop.payload.clone(),
            served: false,
            kept: false,
        };
        *k.marks.entry(crate::world::DUPLICATED).or_insert(0) += 1;
        k.record(Kind::Dup, from as u64, [hop.msg, call, extra], |k| {
            format!("#{} {}->{} req call={call} duplicated (+{}ms)", hop.msg, k.name(from), k.name(to), extra / MS)
        });
        self.send_or_hold(k, copy, at + extra);
    }

    /// Takes the flag [`NetState::force_duplicate`] (the old mode's route asks it too).
    pub(super) fn take_forced_duplicate(&mut self) -> bool {
        std::mem::take(&mut self.force_duplicate)
    }

    /// A message reaches its destination.
    pub(crate) fn deliver(&mut self, k: &mut Kernel, mut hop: Hop) {
        let now = k.now_ns();
        let (from, to) = (hop.from, hop.to);
        // A busy process takes messages one at a time: queue this one behind the others.
        if !hop.served && self.cfg.service_us_max > 0 && matches!(k.nodes[to as usize].host, Host::Process { .. }) {
            let (lo, hi) = (self.cfg.service_us_min as u64, self.cfg.service_us_max as u64);
            let service = self.rng.gen_range(lo.min(hi)..=hi) * 1000;
            let port = &mut self.ports[to as usize];
            let start = port.busy_until.max(now);
            port.busy_until = start + service;
            hop.served = true;
            if start + service > now {
                k.schedule(start + service, Action::Deliver(hop));
                return;
            }
        }
        match hop.body {
            Body::Request { call, to_inc } => {
                let dest = &k.nodes[to as usize];
                if !dest.alive || dest.incarnation != to_inc {
                    // labrpc runs the handler on the old instance and the dead check fails
                    // the call at its first 100 ms tick.
                    drop_hop(k, &hop, Reason::ServerDied);
                    if self.calls.contains_key(call) {
                        let after = if self.old.on { old::FAIL_FAST_NS } else { DEAD_CHECK_NS };
                        k.schedule(now + after, Action::Fail { call, reason: Reason::ServerDied });
                    }
                    return;
                }
                k.stats.delivered += 1;
                self.ports[to as usize].rpc_count += 1;
                let msg = hop.msg;
                k.record(Kind::Deliver, to as u64, [msg, call, 0], |k| {
                    format!("#{msg} {}->{} req call={call}", k.name(from), k.name(to))
                });
                if let Some(slot) = self.calls.get_mut(call) {
                    if !slot.done {
                        slot.handling = Some((to_inc, now));
                    }
                }
                let reply_to = ReplyTo { call, caller: from, server_inc: to_inc };
                k.push_inbox(to, Incoming::Request { from: NodeId(from), payload: hop.payload, reply_to });
            }
            Body::Reply { call } => {
                // A reply from an instance that has since crashed is never delivered (labrpc),
                // unless a hold kept it: then it was already in the network.
                if !hop.kept && k.nodes[from as usize].incarnation != hop.from_inc {
                    drop_hop(k, &hop, Reason::ServerDied);
                    return self.fail_call(k, call, Reason::ServerDied);
                }
                let Some(slot) = self.calls.get(call) else { return drop_hop(k, &hop, Reason::Stale) };
                if slot.done || k.nodes[to as usize].incarnation != slot.caller_inc || !k.nodes[to as usize].alive {
                    return drop_hop(k, &hop, Reason::Stale);
                }
                let len = hop.payload.len() as u64;
                k.stats.delivered += 1;
                k.stats.bytes_total += len;
                let msg = hop.msg;
                k.record(Kind::Deliver, to as u64, [msg, call, 1], |k| {
                    format!("#{msg} {}->{} reply call={call}", k.name(from), k.name(to))
                });
                self.complete(k, call, Ok(hop.payload));
            }
        }
    }

    pub(crate) fn fail_call(&mut self, k: &mut Kernel, call: u64, reason: Reason) {
        let Some(slot) = self.calls.get(call) else { return };
        if slot.done {
            return;
        }
        let (caller, server) = (slot.caller, slot.server);
        k.record(Kind::Fail, caller as u64, [call, reason as u64, 0], |k| {
            format!("call={call} {}->{}: {}", k.name(caller), k.name(server), reason.label())
        });
        self.complete(k, call, Err(RpcError { reason }));
    }

    fn complete(&mut self, k: &mut Kernel, call: u64, result: Result<Vec<u8>, RpcError>) {
        let slot = self.calls.get_mut(call).expect("complete of unknown call");
        match &mut slot.completion {
            Completion::Waiter { waker, result: r } => {
                slot.done = true;
                *r = Some(result);
                if let Some(w) = waker.take() {
                    w.wake();
                }
            }
            Completion::Inbox { tag } => {
                let (tag, caller, caller_inc, server) = (*tag, slot.caller, slot.caller_inc, slot.server);
                self.calls.remove(call);
                let c = &k.nodes[caller as usize];
                if c.alive && c.incarnation == caller_inc {
                    k.push_inbox(caller, Incoming::Response { tag, from: NodeId(server), result });
                }
            }
        }
    }

    fn call_is_dead(&self, k: &Kernel, slot: &CallSlot) -> Option<Reason> {
        let (inc, _) = slot.handling?;
        if self.old.on {
            return self.old_call_is_dead(k, slot.server, inc);
        }
        let s = &k.nodes[slot.server as usize];
        if !s.alive || s.incarnation != inc {
            Some(Reason::ServerDied)
        } else if !self.link_up(slot.caller, slot.server) {
            Some(Reason::LinkDown)
        } else {
            None
        }
    }

    pub(crate) fn dead_check(&mut self, k: &mut Kernel, call: u64) {
        let Some(slot) = self.calls.get(call) else { return };
        if slot.done {
            return;
        }
        if let Some(reason) = self.call_is_dead(k, slot) {
            self.fail_call(k, call, reason);
        }
    }

    /// After a topology change or a crash: calls whose handler is now unreachable fail at
    /// their next 100 ms tick, as labrpc's polling worker would notice.
    fn on_topology_change(&mut self, k: &mut Kernel) {
        let now = k.now_ns();
        let mut checks = Vec::new();
        for (call, slot) in self.calls.iter() {
            if slot.done {
                continue;
            }
            if let (Some((_, since)), Some(_)) = (slot.handling, self.call_is_dead(k, slot)) {
                if self.old.on {
                    checks.push((now + old::FAIL_FAST_NS, call));
                    continue;
                }
                let ticks = (now.saturating_sub(since)).div_ceil(DEAD_CHECK_NS).max(1);
                checks.push((since + ticks * DEAD_CHECK_NS, call));
            }
        }
        for (at, call) in checks {
            k.schedule(at, Action::DeadCheck { call });
        }
    }

    /// A node's incarnation ended (crash or exit): its own outstanding calls vanish with
    /// it, and calls it was handling fail at their next tick.
    pub(crate) fn on_crash(&mut self, k: &mut Kernel, node: u16) {
        self.calls.retain(|s| s.caller != node);
        self.on_topology_change(k);
    }

    fn fault(&mut self, k: &mut Kernel, code: u64, a: u64, text: impl FnOnce(&Kernel) -> String) {
        k.record(Kind::Fault, NO_NODE, [code, a, 0], text);
        self.on_topology_change(k);
    }

    fn set_link(&mut self, from: u16, to: u16, up: bool) {
        let i = self.link(from, to);
        self.enabled[i] = up;
    }

    fn close_partition_annotation(&mut self, k: &mut Kernel) {
        if let Some(i) = self.open_partition.take() {
            k.close_annotation(i);
        }
    }

    /// Gives a message to the first hold that wants it (returning `None`), else returns it.
    /// Nothing is drawn from the random stream, so arming a hold moves no other decision.
    fn take_by_hold(&mut self, k: &mut Kernel, mut hop: Hop) -> Option<Hop> {
        if self.holds.is_empty() {
            return Some(hop);
        }
        let reply = matches!(hop.body, Body::Reply { .. });
        let mut kind: Option<Option<&'static str>> = None;
        for h in self.holds.iter_mut() {
            if h.spec.from.0 != hop.from || h.spec.to.0 != hop.to || !h.wants_more() {
                continue;
            }
            if let Some(want) = &h.spec.message {
                let got = *kind.get_or_insert_with(|| self.classifier.as_ref().and_then(|c| c(&hop.payload, reply)));
                if got != Some(want.as_str()) {
                    continue;
                }
            }
            if let Body::Reply { call } = hop.body {
                // The handler has answered and the network holds the answer: the call no
                // longer depends on the server or the link (labrpc's dead check stops).
                if let Some(slot) = self.calls.get_mut(call) {
                    slot.handling = None;
                }
            }
            let (msg, call, id) = (hop.msg, hop_call(&hop), h.id);
            let (until, of) = (h.spec.until.clone(), h.spec.of.0);
            let count = h.spec.count.max(1);
            k.record(Kind::Hold, hop.from as u64, [msg, call, hop.to as u64 | id << 16], |k| {
                format!(
                    "#{msg} {}->{} call={call} held by hold {id} until {count} {until} event(s) of {}",
                    k.name(hop.from),
                    k.name(hop.to),
                    k.name(of)
                )
            });
            *k.marks.entry(crate::world::HELD_FOR_EVENT).or_insert(0) += 1;
            hop.served = false;
            hop.kept = true;
            h.held.push(hop);
            return None;
        }
        Some(hop)
    }

    /// Delivers what hold `i` took, in order (after its `after_ms`, unless `now`), and
    /// removes it.
    fn release_hold(&mut self, k: &mut Kernel, i: usize, now: bool) {
        let h = self.holds.remove(i);
        let after_ms = if now { 0 } else { h.spec.after_ms };
        for hop in h.held {
            let (msg, call, from, to) = (hop.msg, hop_call(&hop), hop.from, hop.to);
            k.record(Kind::Release, from as u64, [msg, call, to as u64 | h.id << 16 | after_ms << 32], |k| {
                format!("#{msg} {}->{} call={call} released by hold {} (+{after_ms}ms)", k.name(from), k.name(to), h.id)
            });
            if after_ms == 0 {
                self.deliver(k, hop);
            } else {
                let at = k.now_ns() + after_ms * MS;
                k.schedule(at, Action::Deliver(hop));
            }
        }
    }

    fn release_link(&mut self, k: &mut Kernel, from: u16, to: u16) {
        let i = self.link(from, to);
        self.clogged[i] = false;
        let held = self.held.remove(&(from, to)).unwrap_or_default();
        if !held.is_empty() {
            *k.marks.entry(crate::world::HELD_RELEASED).or_insert(0) += 1;
        }
        for hop in held {
            let (msg, call) = (hop.msg, hop_call(&hop));
            k.record(Kind::Release, from as u64, [msg, call, to as u64], |k| {
                format!("#{msg} {}->{} call={call} released", k.name(from), k.name(to))
            });
            self.deliver(k, hop);
        }
    }
}

fn drop_hop(k: &mut Kernel, hop: &Hop, reason: Reason) {
    k.stats.dropped += 1;
    let (msg, from, to, call) = (hop.msg, hop.from, hop.to, hop_call(hop));
    k.record(Kind::Drop, from as u64, [msg, call, reason as u64], |k| {
        format!("#{msg} {}->{} call={call}: {}", k.name(from), k.name(to), reason.label())
    });
}

fn hop_call(hop: &Hop) -> u64 {
    match hop.body {
        Body::Request { call, .. } | Body::Reply { call } => call,
    }
}

fn names(k: &Kernel, nodes: &[NodeId]) -> String {
    let v: Vec<&str> = nodes.iter().map(|n| k.name(n.0)).collect();
    format!("{{{}}}", v.join(","))
}

fn node_list_hash(nodes: &[NodeId]) -> u64 {
    nodes.iter().fold(0u64, |h, n| crate::rng::mix64(h ^ n.0 as u64))
}

// ---------------------------------------------------------------------------------------
// Node-side API.
// ---------------------------------------------------------------------------------------

/// Serializes a message the way every hop does.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Room for a typical message up front: growing from empty would reallocate at 8, 16,
    // 32 and 64 bytes. Same bytes as `postcard::to_allocvec`.
    postcard::serialize_with_flavor(v, Encoded(Vec::with_capacity(ENCODE_CAPACITY)))
        .expect("postcard encoding of a message failed")
}

/// `encode`'s output. Postcard writes every varint (lengths, integers) as a slice, mostly of
/// one byte: pushed here, not copied by the C library's memcpy (a call per byte that cost
/// about 1.5 % of a key/value run's wall time). `cores::bytes` has the same flavor for the
/// cores' encodings: the two crates share no dependency (the simulator knows no core, a core
/// may not name the simulator), so each keeps its ten lines.
struct Encoded(Vec<u8>);

impl postcard::ser_flavors::Flavor for Encoded {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        match data {
            [b] => self.0.push(*b),
            _ => self.0.extend_from_slice(data),
        }
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Initial buffer of `encode`, in bytes: most messages of the course's services fit.
const ENCODE_CAPACITY: usize = 128;

/// Deserializes a message; a payload that does not decode is a bug in the sender.
///
/// # Panics
/// If `bytes` are not a postcard encoding of `T`: the sender and receiver disagree about the message type, a bug in
/// one of them.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T {
    match postcard::from_bytes(bytes) {
        Ok(v) => v,
        Err(e) => panic!("malformed message ({} bytes) for {}: {e}", bytes.len(), std::any::type_name::<T>()),
    }
}

impl NodeCtx {
    /// Calls `to` and waits for its reply or the call's failure, as labrpc's `Call`.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(&self, to: NodeId, req: &Req) -> Call<Resp> {
        let payload = encode(req);
        let call = with(|w| {
            w.net.start_call(&mut w.kernel, *self, to, payload, Completion::Waiter { waker: None, result: None }, None)
        });
        Call { call, _resp: PhantomData }
    }

    /// Calls `to` without waiting: the outcome arrives in this node's inbox as
    /// `Incoming::Response { tag, .. }`. Cheaper than a task per call for event loops.
    pub fn start_call<Req: Serialize>(&self, to: NodeId, req: &Req, tag: u64) {
        let payload = encode(req);
        with(|w| w.net.start_call(&mut w.kernel, *self, to, payload, Completion::Inbox { tag }, None));
    }

    /// As [`NodeCtx::start_call`], but the network loses the request (a fault point decided
    /// so: `replica.drop_snapshot`): it is traced as sent and lost, and the call fails as a
    /// lost request `fail_after` later. Draws nothing from the network's random stream.
    pub fn start_lost_call<Req: Serialize>(&self, to: NodeId, req: &Req, tag: u64, fail_after: Duration) {
        let payload = encode(req);
        let after = Some(fail_after.as_nanos() as u64);
        with(|w| w.net.start_call(&mut w.kernel, *self, to, payload, Completion::Inbox { tag }, after));
    }

    /// Answers a request. Ignored if this instance has crashed since it took the request.
    pub fn reply<Resp: Serialize>(&self, reply_to: ReplyTo, resp: &Resp) {
        let payload = encode(resp);
        with(|w| w.net.send_reply(&mut w.kernel, *self, reply_to, payload));
    }
}

/// Future of `NodeCtx::call`. Dropping it abandons the call; a late reply is discarded.
pub struct Call<Resp> {
    call: Option<u64>,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp: DeserializeOwned> Future for Call<Resp> {
    type Output = Result<Resp, RpcError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(call) = self.call else { return Poll::Pending };
        let r = with(|w| {
            let slot = w.net.calls.get_mut(call)?;
            let Completion::Waiter { waker, result } = &mut slot.completion else { unreachable!() };
            match result.take() {
                Some(r) => {
                    w.net.calls.remove(call);
                    Some(r)
                }
                None => {
                    *waker = Some(cx.waker().clone());
                    None
                }
            }
        });
        match r {
            Some(r) => {
                self.call = None;
                Poll::Ready(r.map(|bytes| decode(&bytes)))
            }
            None => Poll::Pending,
        }
    }
}

impl<Resp> Drop for Call<Resp> {
    fn drop(&mut self) {
        if let Some(call) = self.call {
            try_with(|w| {
                w.net.calls.remove(call);
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Supervisor-side API: network modes, topology, faults, counters.
// ---------------------------------------------------------------------------------------

/// The current network configuration.
pub fn config() -> NetConfig {
    with(|w| w.net.cfg.clone())
}

/// Replaces the network configuration.
pub fn set_config(cfg: NetConfig) {
    with(|w| {
        // The trace's field is a hash of the debug form (as it always was: every trace hash
        // depends on it); people read the `name=value` form.
        let code = crate::rng::label_hash(&format!("{cfg:?}"));
        let text = cfg.to_string();
        w.net.cfg = cfg;
        w.net.fault(&mut w.kernel, 1, code, |_| format!("network config {text}"));
    })
}

/// labrpc's `Reliable(bool)`.
pub fn set_reliable(reliable: bool) {
    with(|w| {
        w.net.cfg.reliable = reliable;
        w.net.fault(&mut w.kernel, 2, reliable as u64, |_| format!("reliable={reliable}"));
    })
}

/// labrpc's `LongDelays(bool)`.
pub fn set_long_delays(on: bool) {
    with(|w| {
        w.net.cfg.long_delays = on;
        w.net.fault(&mut w.kernel, 3, on as u64, |_| format!("long_delays={on}"));
    })
}

/// labrpc's `LongReordering(bool)`.
pub fn set_long_reordering(on: bool) {
    with(|w| {
        w.net.cfg.long_reordering = on;
        w.net.fault(&mut w.kernel, 4, on as u64, |_| format!("long_reordering={on}"));
    })
}

/// The Raft tester's `disconnect(i)`: every link to and from the node goes down, so a
/// disconnected node is isolated from everyone, other disconnected nodes included.
pub fn disconnect(node: NodeId) {
    with(|w| {
        let net = &mut w.net;
        net.connected[node.index()] = false;
        for j in 0..w.kernel.nodes.len() as u16 {
            net.set_link(node.0, j, false);
            net.set_link(j, node.0, false);
        }
        net.fault(&mut w.kernel, 5, node.0 as u64, |k| format!("disconnect {}", k.name(node.0)));
    })
}

/// The Raft tester's `connect(i)`: links between the node and every connected node go up.
pub fn connect(node: NodeId) {
    with(|w| {
        let net = &mut w.net;
        net.connected[node.index()] = true;
        for j in 0..w.kernel.nodes.len() as u16 {
            if net.connected[j as usize] {
                net.set_link(node.0, j, true);
                net.set_link(j, node.0, true);
            }
        }
        net.fault(&mut w.kernel, 6, node.0 as u64, |k| format!("connect {}", k.name(node.0)));
    })
}

/// Whether the Raft tester considers the node connected.
pub fn is_connected(node: NodeId) -> bool {
    with(|w| w.net.connected[node.index()])
}

/// The kvraft tester's `partition(p1, p2)`: two internally connected groups with no links
/// between them. Links of nodes outside both groups (clients) are untouched.
pub fn partition(a: &[NodeId], b: &[NodeId]) {
    with(|w| {
        let (net, k) = (&mut w.net, &mut w.kernel);
        for (side, other) in [(a, b), (b, a)] {
            for &x in side {
                for &y in side {
                    net.set_link(x.0, y.0, true);
                }
                for &y in other {
                    net.set_link(x.0, y.0, false);
                }
            }
        }
        net.close_partition_annotation(k);
        let label = format!("partition {} | {}", names(k, a), names(k, b));
        net.open_partition = Some(k.open_annotation(label, None));
        let h = node_list_hash(a) ^ node_list_hash(b).rotate_left(7);
        net.fault(k, 7, h, |k| format!("partition {} | {}", names(k, a), names(k, b)));
    })
}

/// Brings up every link among `nodes` (both directions), e.g. the kvraft tester's
/// `ConnectAll()` over the servers.
pub fn heal(nodes: &[NodeId]) {
    with(|w| {
        let (net, k) = (&mut w.net, &mut w.kernel);
        for &x in nodes {
            net.connected[x.index()] = true;
            for &y in nodes {
                net.set_link(x.0, y.0, true);
            }
        }
        net.close_partition_annotation(k);
        net.fault(k, 8, node_list_hash(nodes), |k| format!("heal {}", names(k, nodes)));
    })
}

/// Connects a client to exactly `servers` among `all` (the kvraft tester's `ConnectClient`).
pub fn connect_client(client: NodeId, servers: &[NodeId], all: &[NodeId]) {
    with(|w| {
        for &s in all {
            let up = servers.contains(&s);
            w.net.set_link(client.0, s.0, up);
            w.net.set_link(s.0, client.0, up);
        }
        w.net.fault(&mut w.kernel, 9, node_list_hash(servers) ^ client.0 as u64, |k| {
            format!("client {} reaches {}", k.name(client.0), names(k, servers))
        });
    })
}

/// One-way cut: messages from `from` to `to` are lost; the other direction is untouched.
pub fn cut(from: NodeId, to: NodeId) {
    with(|w| {
        w.net.set_link(from.0, to.0, false);
        w.net.fault(&mut w.kernel, 10, (from.0 as u64) << 16 | to.0 as u64, |k| {
            format!("cut {}->{}", k.name(from.0), k.name(to.0))
        });
    })
}

/// Restores a one-way link.
pub fn uncut(from: NodeId, to: NodeId) {
    with(|w| {
        w.net.set_link(from.0, to.0, true);
        w.net.fault(&mut w.kernel, 11, (from.0 as u64) << 16 | to.0 as u64, |k| {
            format!("uncut {}->{}", k.name(from.0), k.name(to.0))
        });
    })
}

/// Clog: messages from `from` to `to` are held (not lost) until `release`.
pub fn clog(from: NodeId, to: NodeId) {
    with(|w| {
        let i = w.net.link(from.0, to.0);
        w.net.clogged[i] = true;
        w.net.fault(&mut w.kernel, 12, (from.0 as u64) << 16 | to.0 as u64, |k| {
            format!("clog {}->{}", k.name(from.0), k.name(to.0))
        });
    })
}

/// Unclogs a link and delivers everything it held, in order, in one burst.
pub fn release(from: NodeId, to: NodeId) {
    with(|w| {
        w.net.fault(&mut w.kernel, 13, (from.0 as u64) << 16 | to.0 as u64, |k| {
            format!("release {}->{}", k.name(from.0), k.name(to.0))
        });
        w.net.release_link(&mut w.kernel, from.0, to.0);
    })
}

/// Unclogs every link, releasing all held messages (link by link in a fixed order), then
/// ends every [`hold`], delivering what each took (in arming order).
pub fn release_all() {
    with(|w| {
        w.net.fault(&mut w.kernel, 14, 0, |_| "release all clogs".into());
        while !w.net.holds.is_empty() {
            w.net.release_hold(&mut w.kernel, 0, true);
        }
        let n = w.kernel.nodes.len() as u16;
        for a in 0..n {
            for b in 0..n {
                let i = w.net.link(a, b);
                if w.net.clogged[i] || w.net.held.contains_key(&(a, b)) {
                    w.net.release_link(&mut w.kernel, a, b);
                }
            }
        }
    })
}

/// Registers the scenario's names of message kinds, which [`HoldSpec::message`] is compared
/// with (replacing any earlier one). Sim knows no protocol: only the scenario can name its
/// messages.
pub fn set_classifier(classifier: Classifier) {
    with(|w| w.net.classifier = Some(classifier))
}

/// Registers the release triggers the scenario will report with [`protocol_event`] (for
/// Raft, from its observer: a node's term or role changed, it became leader, it took a
/// snapshot). A hold naming another trigger is refused, since nothing would ever release it.
pub fn register_triggers(names: &[&str]) {
    with(|w| {
        for n in names {
            if !w.net.triggers.iter().any(|t| t == n) {
                w.net.triggers.push(n.to_string());
            }
        }
    })
}

/// The release triggers registered so far, in registration order.
pub fn triggers() -> Vec<String> {
    with(|w| w.net.triggers.clone())
}

/// Arms a hold: from now on the network takes the next `spec.messages` messages from
/// `spec.from` to `spec.to` of kind `spec.message` out of flight (after their loss and delay
/// were decided, so no random draw moves) and keeps them until `spec.of` has reported
/// `spec.count` `spec.until` events counted from the first message taken; then they are
/// delivered in order, `spec.after_ms` later. A held reply keeps its call alive whatever happens to the
/// link or the server in between — the message outlives the topology it was sent in, as a
/// message stuck in a real network's buffers does. [`release_all`] ends every hold,
/// delivering at once.
///
/// Returns the hold's number (as trace lines name it), or `None` when `spec.until` is not a
/// registered trigger ([`register_triggers`]).
pub fn hold(spec: HoldSpec) -> Option<u64> {
    with(|w| {
        if !w.net.triggers.contains(&spec.until) {
            return None;
        }
        let id = w.net.next_hold;
        w.net.next_hold += 1;
        let what = format!(
            "{} {} message(s)",
            if spec.messages == 0 { "every".to_string() } else { spec.messages.to_string() },
            spec.message.as_deref().unwrap_or("any")
        );
        let until = format!("{} {} event(s)", spec.count.max(1), spec.until);
        let (from, to, of) = (spec.from.0, spec.to.0, spec.of.0);
        let h = crate::rng::label_hash(&what)
            ^ crate::rng::label_hash(&until).rotate_left(9)
            ^ ((from as u64) << 32 | (to as u64) << 16 | of as u64);
        w.net.fault(&mut w.kernel, 15, h, move |k| {
            format!("hold {id}: {what} {}->{} until {until} of {}", k.name(from), k.name(to), k.name(of))
        });
        w.net.holds.push(Hold { id, spec, held: Vec::new(), seen: 0 });
        Some(id)
    })
}

/// The scenario reports protocol event `name` of `node` (a registered trigger, see
/// [`register_triggers`]): holds waiting for it count it, and those that have seen enough
/// deliver what they took. Events before a hold took its first message do not count.
pub fn protocol_event(node: NodeId, name: &str) {
    with(|w| {
        let net = &mut w.net;
        if net.holds.is_empty() {
            return;
        }
        let mut i = 0;
        while i < net.holds.len() {
            let h = &mut net.holds[i];
            if h.spec.of == node && h.spec.until == name && !h.held.is_empty() {
                h.seen += 1;
                if h.seen >= h.spec.count.max(1) {
                    net.release_hold(&mut w.kernel, i, false);
                    continue;
                }
            }
            i += 1;
        }
    })
}

/// Hold `id` takes nothing more: it ends at once if it took nothing (it has nothing to
/// release), else it keeps what it took until its trigger. A fault point arms a hold around
/// one send and closes it after (`sim::fault_point_hold`), so a lost message leaves no hold
/// behind to take a later one.
pub(crate) fn close_hold(id: u64) {
    with(|w| {
        let holds = &mut w.net.holds;
        if let Some(i) = holds.iter().position(|h| h.id == id) {
            if holds[i].held.is_empty() {
                holds.remove(i);
            } else {
                holds[i].spec.messages = holds[i].held.len() as u32;
            }
        }
    })
}

/// Whether the next request routed gets a copy however the network's draw goes (set around
/// one send by [`crate::fault_point_duplicate`], whose hold takes the copy).
pub(crate) fn force_duplicate(on: bool) {
    with(|w| w.net.force_duplicate = on)
}

/// Holds armed and not yet released (for tests and the trace's readers).
pub fn holds_pending() -> usize {
    with(|w| w.net.holds.len())
}

/// Whether messages from `from` to `to` currently get through (not cut, not disconnected).
pub fn link_up(from: NodeId, to: NodeId) -> bool {
    with(|w| w.net.link_up(from.0, to.0))
}

/// Handler dispatches at `node` (labrpc's `GetCount`).
pub fn rpc_count(node: NodeId) -> u64 {
    with(|w| w.net.ports[node.index()].rpc_count)
}

/// All calls made so far (labrpc's `GetTotalCount`).
pub fn rpc_total() -> u64 {
    with(|w| w.kernel.stats.rpc_total)
}

/// Request bytes of all calls plus bytes of delivered replies (labrpc's `GetTotalBytes`).
pub fn bytes_total() -> u64 {
    with(|w| w.kernel.stats.bytes_total)
}

/// Bytes `node` has sent (requests and replies).
pub fn bytes_sent(node: NodeId) -> u64 {
    with(|w| w.net.ports[node.index()].bytes_sent)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_network_configuration_reads_as_name_value_pairs() {
        let text = super::NetConfig::DEFAULT.to_string();
        assert!(text.starts_with("reliable=true long_delays=false long_reordering=false"), "{text}");
        assert!(text.ends_with("hop_delay_ms=0..0 service_us=0..0"), "{text}");
        assert!(!text.contains('{'), "{text}");
    }

    #[test]
    fn encode_writes_exactly_postcards_bytes() {
        // One-byte and longer varints, strings and byte strings of every length class.
        for n in [0u64, 1, 127, 128, 300, 1 << 40, u64::MAX] {
            let s = "x".repeat((n % 300) as usize);
            let v = (n, s.clone(), vec![n as u8; (n % 200) as usize], Some(-(n as i64)), (n as u32, n as u16));
            assert_eq!(super::encode(&v), postcard::to_allocvec(&v).unwrap(), "{n}");
        }
    }
}
