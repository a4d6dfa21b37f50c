//! Code-level fault points, in the spirit of FoundationDB's BUGGIFY: named sites in the
//! world and in the node shells (never inside a core's logic except through its inputs)
//! where a run may misbehave on purpose — delay this send, drop this snapshot message,
//! shorten this timeout, crash right after this save or this reply, pause this node, skew
//! this node's clock, hold this snapshot until its receiver moves on.
//!
//! A run enables a set of points, each with a firing probability ([`enable_fault_points`]; the
//! swarms draw the set from the seed and print it). A point that is not enabled never fires
//! and draws nothing. An enabled point, each time it is reached ([`fault_point`]), fires with
//! its probability; the decision and the size of the misbehaviour come from the point's own
//! random stream (`fault-point:<name>` of the seed), so enabling, disabling or reaching one
//! point never moves another point's draws nor any other draw of the run (the network's,
//! a node's). Every firing is a `fault` trace event and a coverage mark.
//!
//! The liveness phase of a swarm disarms every point with the crash points
//! ([`crate::disarm_fault_points`]).

use crate::rng::{self, ChaCha8Rng};
use crate::trace::Kind;
use crate::world::{with, NodeId, NO_NODE};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// A named fault point. Each names where it is reached and what it does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FaultPoint {
    /// `net.delay_send` — reached by every request and reply as it leaves its sender (after
    /// the network's own loss decision); fires: the message takes 20–400 ms longer, so it
    /// arrives after messages sent later.
    DelaySend,
    /// `replica.drop_snapshot` — reached by every outgoing engine message the engine says
    /// carries a snapshot (`ReplicaCore::carries_snapshot`); fires: the network loses the
    /// request, and the call fails as a lost request does, 0–100 ms later.
    DropSnapshot,
    /// `replica.shorten_timeout` — reached whenever a replica's engine sets a new deadline
    /// (an election timeout reset, a heartbeat due); fires: the engine's clock leaps forward
    /// by 30–90 % of the wait, so the pending timeout expires that much sooner.
    ShortenTimeout,
    /// `persist.crash_after_save` — reached by every save; fires: the node crashes right after
    /// the save, before the rest of its step (its reply, its sends), and restarts 20–1500 ms
    /// later unless something restarted it first.
    CrashAfterSave,
    /// `node.pause` — reached each time a node takes a message from its inbox; fires: the node
    /// stalls for 50–1000 ms (a stop-the-world pause), taking neither messages nor timers,
    /// then goes on where it was.
    PauseNode,
    /// `replica.skew_timer` — reached when a replica boots (each incarnation); fires: its
    /// engine's clock runs 0.7–1.4× as fast as simulated time for that incarnation, so its
    /// timeouts and heartbeats stretch or shrink.
    SkewTimer,
    /// `replica.crash_after_reply` — reached each time a replica's shell has sent its reply to
    /// a peer's engine request (a vote, an append acknowledgement, any answer); fires: the
    /// node crashes right after the reply left, before the rest of its step (its requests,
    /// its applies), and restarts 1–200 ms later (soon: a vote it forgets matters while
    /// the election it voted in still runs) unless something restarted it first
    /// ([`fault_point_crash`]). A correct engine saved what the reply promises before sending
    /// it; one that answers first (a vote or entries not yet durable) forgets what it
    /// promised — the window `persist.crash_after_save` cannot reach, since it crashes before
    /// the reply leaves.
    CrashAfterReply,
    /// `replica.hold_snapshot` — reached by every outgoing engine message the engine says
    /// carries a snapshot (`ReplicaCore::carries_snapshot`); fires: the network holds the
    /// message (with any duplicate of it) until its receiver reports the release trigger
    /// the scenario registered for the point ([`set_fault_point_release`]; for Raft, the
    /// receiver applied something: entries that reached it by another way while the snapshot
    /// waited), then delivers it 0–400 ms later. Never reached while no trigger is registered.
    HoldSnapshot,
    /// `replica.hold_append_reply` — reached each time a replica's shell sends a reply the
    /// engine says acknowledges entries (`ReplicaCore::acknowledges_entries`: Raft's
    /// successful AppendEntries reply that carried entries); fires: the network holds the
    /// reply until its receiver (the leader that asked) reports the release trigger the
    /// scenario registered for the point (for Raft: it became leader again, so in a later
    /// term), then delivers it 0–400 ms later. The Raft paper's §5.1 lets replies arrive that
    /// late; a leader must not count an acknowledgement it asked for in an earlier term
    /// (issue 13's first classic bug). Never reached while no trigger is registered.
    HoldAppendReply,
    /// `replica.crash_after_vote` — reached each time a replica's shell has sent a reply the
    /// engine says grants a vote (`ReplicaCore::grants_vote`); fires: the node crashes right
    /// after the grant left and restarts 1–200 ms later, so a second candidate of the same
    /// term (or the first one retrying) meets a voter that must remember its vote (the
    /// paper's Figure 2: `votedFor` and `currentTerm` are persistent). Rarer than any reply,
    /// so it can fire far more often than `replica.crash_after_reply`.
    CrashAfterVote,
    /// `clerk.late_duplicate` — reached each time a clerk sends a request to a server (the
    /// key/value and sharded services' clerk, `nodes::rsm::Clerk`); fires: the network also
    /// sends a copy of the request and holds the copy until the clerk reports the release
    /// trigger the scenario registered for the point twice ([`set_fault_point_release`]; the
    /// clerk's answers: this request's operation, then its next one), then delivers it 0–400
    /// ms later. A server then meets a request older than one it has already applied from
    /// the same client: the course's clerks number their requests so that it can tell (lab
    /// 3's duplicate detection), and a server that remembers only the client's latest
    /// request applies it again (issue 13's `latest-only-duplicates`). A random duplicate
    /// (`NetConfig::duplicate_permille`) arrives at most 500 ms late and often before the
    /// clerk has moved on. Never reached while no trigger is registered.
    LateDuplicate,
}

impl FaultPoint {
    /// Every point, in a fixed order (the order of draws and of printing).
    /// New points go at the end: a swarm draws each point's switch and probability in this
    /// order, so appending one moves no earlier point's draw.
    pub const ALL: [FaultPoint; POINTS] = [
        FaultPoint::DelaySend,
        FaultPoint::DropSnapshot,
        FaultPoint::ShortenTimeout,
        FaultPoint::CrashAfterSave,
        FaultPoint::PauseNode,
        FaultPoint::SkewTimer,
        FaultPoint::CrashAfterReply,
        FaultPoint::HoldSnapshot,
        FaultPoint::HoldAppendReply,
        FaultPoint::CrashAfterVote,
        FaultPoint::LateDuplicate,
    ];

    /// The point's name, as printed and as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::DelaySend => "net.delay_send",
            FaultPoint::DropSnapshot => "replica.drop_snapshot",
            FaultPoint::ShortenTimeout => "replica.shorten_timeout",
            FaultPoint::CrashAfterSave => "persist.crash_after_save",
            FaultPoint::PauseNode => "node.pause",
            FaultPoint::SkewTimer => "replica.skew_timer",
            FaultPoint::CrashAfterReply => "replica.crash_after_reply",
            FaultPoint::HoldSnapshot => "replica.hold_snapshot",
            FaultPoint::HoldAppendReply => "replica.hold_append_reply",
            FaultPoint::CrashAfterVote => "replica.crash_after_vote",
            FaultPoint::LateDuplicate => "clerk.late_duplicate",
        }
    }

    /// The point called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<FaultPoint> {
        FaultPoint::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The coverage mark counted each time the point fires.
    pub fn mark(self) -> &'static str {
        match self {
            FaultPoint::DelaySend => "fault point fired: net.delay_send",
            FaultPoint::DropSnapshot => "fault point fired: replica.drop_snapshot",
            FaultPoint::ShortenTimeout => "fault point fired: replica.shorten_timeout",
            FaultPoint::CrashAfterSave => "fault point fired: persist.crash_after_save",
            FaultPoint::PauseNode => "fault point fired: node.pause",
            FaultPoint::SkewTimer => "fault point fired: replica.skew_timer",
            FaultPoint::CrashAfterReply => "fault point fired: replica.crash_after_reply",
            FaultPoint::HoldSnapshot => "fault point fired: replica.hold_snapshot",
            FaultPoint::HoldAppendReply => "fault point fired: replica.hold_append_reply",
            FaultPoint::CrashAfterVote => "fault point fired: replica.crash_after_vote",
            FaultPoint::LateDuplicate => "fault point fired: clerk.late_duplicate",
        }
    }

    /// The range a swarm draws the point's firing probability from, per mille of the times
    /// it is reached: frequent sites (every message, every save) fire rarely, rare ones
    /// (a snapshot message, a boot) often.
    pub fn firing_range_permille(self) -> RangeInclusive<u32> {
        match self {
            FaultPoint::DelaySend => 10..=150,
            FaultPoint::DropSnapshot => 100..=600,
            FaultPoint::ShortenTimeout => 20..=200,
            FaultPoint::CrashAfterSave => 2..=15,
            FaultPoint::PauseNode => 1..=8,
            FaultPoint::SkewTimer => 250..=1000,
            FaultPoint::CrashAfterReply => 2..=20,
            FaultPoint::HoldSnapshot => 200..=800,
            FaultPoint::HoldAppendReply => 5..=60,
            FaultPoint::CrashAfterVote => 100..=500,
            FaultPoint::LateDuplicate => 10..=100,
        }
    }

    /// The size of the misbehaviour when the point fires, drawn uniformly from this range:
    /// milliseconds for delays, pauses, restarts, a lost call's failure and a held message's
    /// delivery after its release, per cent of the wait for `shorten_timeout`, per mille of
    /// simulated time's rate for `skew_timer`.
    pub fn magnitude(self) -> RangeInclusive<u64> {
        match self {
            FaultPoint::DelaySend => 20..=400,
            FaultPoint::DropSnapshot => 0..=100,
            FaultPoint::ShortenTimeout => 30..=90,
            FaultPoint::CrashAfterSave => 20..=1500,
            FaultPoint::PauseNode => 50..=1000,
            FaultPoint::SkewTimer => 700..=1400,
            FaultPoint::CrashAfterReply => 1..=200,
            FaultPoint::HoldSnapshot => 0..=400,
            FaultPoint::HoldAppendReply => 0..=400,
            FaultPoint::CrashAfterVote => 1..=200,
            FaultPoint::LateDuplicate => 0..=400,
        }
    }

    /// The point's place in [`FaultPoint::ALL`] (declaration order; a test checks they agree).
    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The coverage marks of the fault points, for a family to declare (each counts firings).
pub fn fault_point_marks() -> Vec<(&'static str, &'static str)> {
    FaultPoint::ALL.iter().map(|p| (p.mark(), "a fault point fired (only in swarm runs that enabled it)")).collect()
}

/// How many points there are.
const POINTS: usize = 11;

/// The enabled points of a run and their random streams.
#[derive(Default)]
pub(crate) struct Points {
    /// Per point (in `FaultPoint::ALL` order): firing probability per mille, 0 if disabled.
    permille: [u32; POINTS],
    /// Per point: its random stream, made when first enabled.
    rngs: [Option<ChaCha8Rng>; POINTS],
    /// Per point (in `FaultPoint::ALL` order; only hold points use it): the protocol event of
    /// a held message's receiver that releases what the point holds
    /// ([`set_fault_point_release`]); `None`: the point is never reached.
    hold_release: [Option<&'static str>; POINTS],
    /// Node instances (id, incarnation) paused by `node.pause`, until when (ns).
    pub paused_until: BTreeMap<(u16, u32), u64>,
}

impl Points {
    /// Whether a node taking a message has anything to check about pauses: `node.pause` is
    /// enabled, or a pause it fired is still recorded.
    #[inline]
    pub fn pauses_possible(&self) -> bool {
        self.permille[FaultPoint::PauseNode.index()] > 0 || !self.paused_until.is_empty()
    }
}

impl Points {
    /// Whether `point` fires this time it is reached, and if so its magnitude.
    pub fn reach(&mut self, seed: u64, point: FaultPoint) -> Option<u64> {
        let i = point.index();
        let p = self.permille[i];
        if p == 0 {
            return None;
        }
        let rng = self.rngs[i].get_or_insert_with(|| rng::stream(seed, &format!("fault-point:{}", point.name()), 0));
        if rng.gen_range(0..1000) >= p {
            return None;
        }
        Some(rng.gen_range(point.magnitude()))
    }
}

/// Enables exactly the points in `points`, each with its firing probability in per mille of
/// the times it is reached (1–1000); every other point is disabled. Recorded in the trace.
///
/// # Panics
/// If a probability is 0 or above 1000, or outside a run.
pub fn enable_fault_points(points: &BTreeMap<FaultPoint, u32>) {
    for (p, &permille) in points {
        assert!((1..=1000).contains(&permille), "fault point {p}: firing probability {permille}‰ is not in 1..=1000");
    }
    with(|w| {
        let pts = &mut w.kernel.points;
        for p in FaultPoint::ALL {
            pts.permille[p.index()] = points.get(&p).copied().unwrap_or(0);
        }
        let bits = FaultPoint::ALL.iter().enumerate().fold(0u64, |b, (i, p)| b | (points.contains_key(p) as u64) << i);
        w.kernel.record(Kind::Fault, NO_NODE, [0xB0C5, bits, 0], |_| {
            let on: Vec<String> = points.iter().map(|(p, n)| format!("{p} {n}‰")).collect();
            format!("fault points enabled: {}", if on.is_empty() { "none".into() } else { on.join(", ") })
        });
    });
}

/// The enabled points and their firing probabilities (per mille).
pub fn enabled_fault_points() -> BTreeMap<FaultPoint, u32> {
    with(|w| {
        FaultPoint::ALL
            .into_iter()
            .filter_map(|p| {
                let n = w.kernel.points.permille[p.index()];
                (n > 0).then_some((p, n))
            })
            .collect()
    })
}

/// Whether `point` is enabled in this run (`false` outside a run). A shell asks before work
/// that only a firing would need (reading its clock to size a leap), so a run with the point
/// disabled does none of it.
pub fn fault_point_enabled(point: FaultPoint) -> bool {
    let mut on = false;
    crate::world::try_with(|w| on = w.kernel.points.permille[point.index()] > 0);
    on
}

/// Disables every point (a swarm's liveness phase: every fault stops).
pub(crate) fn disable_all(points: &mut Points) {
    points.permille = [0; POINTS];
}

/// Reaches fault point `point` at `node` (for the trace): `Some(magnitude)` if it fires this
/// time (see [`FaultPoint::magnitude`] for the unit), `None` if it is disabled or does not
/// fire. A firing is recorded in the trace and counted as the point's coverage mark. Outside
/// a run a point never fires.
pub fn fault_point(point: FaultPoint, node: Option<NodeId>) -> Option<u64> {
    let mut fired = None;
    crate::world::try_with(|w| fired = reach_in(&mut w.kernel, point, node));
    fired
}

/// As [`fault_point`], from code that already holds the kernel. Inlined: the sends, saves
/// and inbox takes that reach a point pay one load and compare while it is disabled.
#[inline]
pub(crate) fn reach_in(k: &mut crate::world::Kernel, point: FaultPoint, node: Option<NodeId>) -> Option<u64> {
    if k.points.permille[point.index()] == 0 {
        return None;
    }
    fire_in(k, point, node)
}

/// The first field of a fault point's firing in the trace ([`fault_point_fired`]).
const FIRED: u64 = 0xB06F;

/// A captured trace event read as a fault point's firing: the point, and the number it drew
/// (for a crash point, after how many ms it restarts the node; the event's node is the node
/// it fired at). `None` for any other event.
pub fn fault_point_fired(ev: &crate::CapturedEvent) -> Option<(FaultPoint, u64)> {
    match (ev.kind, ev.fields) {
        (Kind::Fault, [FIRED, index, m]) => Some((*FaultPoint::ALL.get(index as usize)?, m)),
        _ => None,
    }
}

/// The enabled half of [`reach_in`]: draws, and records a firing.
#[inline(never)]
fn fire_in(k: &mut crate::world::Kernel, point: FaultPoint, node: Option<NodeId>) -> Option<u64> {
    let m = k.points.reach(k.seed, point)?;
    *k.marks.entry(point.mark()).or_insert(0) += 1;
    let n = node.map_or(NO_NODE, |n| n.0 as u64);
    k.record(Kind::Fault, n, [FIRED, point.index() as u64, m], |k| match node {
        Some(id) => format!("fault point {point} fired at {} ({m})", k.name(id.0)),
        None => format!("fault point {point} fired ({m})"),
    });
    Some(m)
}

/// Reaches crash point `point` (`replica.crash_after_reply`, `replica.crash_after_vote`) at
/// the node of `ctx`: if it fires, the node crashes at once — the caller's step ends here:
/// check `NodeCtx::is_current` — and restarts the point's magnitude in ms later, unless
/// something else restarted it first or every fault has stopped since (a swarm's liveness
/// phase restarts servers itself). Returns whether it crashed. Ignored from a crashed
/// instance.
pub fn fault_point_crash(point: FaultPoint, ctx: crate::NodeCtx) -> bool {
    debug_assert!(
        matches!(point, FaultPoint::CrashAfterReply | FaultPoint::CrashAfterVote),
        "{point} is not a crash point"
    );
    let mut crashed = false;
    let kill = with(|w| {
        if !w.kernel.is_current(ctx) {
            return None;
        }
        let back_ms = reach_in(&mut w.kernel, point, Some(ctx.id()))?;
        crashed = true;
        w.crash_and_restart_later(ctx, back_ms, &format!("fault point {point}"))
    });
    if let Some(id) = kill {
        madsim::runtime::Handle::current().kill(id);
    }
    crashed
}

/// Registers the protocol event that releases what hold point `point`
/// (`replica.hold_snapshot`, `replica.hold_append_reply`, `clerk.late_duplicate`) holds: a
/// message the point took is delivered once its receiver (for `clerk.late_duplicate`, its
/// sender, twice) has reported `trigger` (a release trigger the scenario
/// registered with [`crate::net::register_triggers`] and reports with
/// [`crate::net::protocol_event`]). Sim knows no protocol: only the scenario can say which
/// event means the receiver has moved on (past the snapshot; into a later term). Until this
/// is called for a point, that point is not reached (so it draws nothing and never fires).
///
/// # Panics
/// Outside a run, or if `point` is not a hold point.
pub fn set_fault_point_release(point: FaultPoint, trigger: &'static str) {
    assert!(is_hold_point(point), "{point} is not a hold point");
    with(|w| w.kernel.points.hold_release[point.index()] = Some(trigger));
}

fn is_hold_point(point: FaultPoint) -> bool {
    matches!(point, FaultPoint::HoldSnapshot | FaultPoint::HoldAppendReply | FaultPoint::LateDuplicate)
}

/// Reaches hold point `point` at `from`: when the scenario registered its release trigger
/// and the point fires, that trigger and the held message's delay after its release (ms);
/// else `None` (outside a run too).
fn reach_hold_point(point: FaultPoint, from: NodeId) -> Option<(&'static str, u64)> {
    let mut armed = None;
    crate::world::try_with(|w| {
        let Some(until) = w.kernel.points.hold_release[point.index()] else { return };
        armed = reach_in(&mut w.kernel, point, Some(from)).map(|after_ms| (until, after_ms));
    });
    armed
}

/// Reaches hold point `point` (`replica.hold_snapshot`, `replica.hold_append_reply`) for the
/// message `from` is about to send to `to` with `send` (a request or a reply): if it fires,
/// the network holds that message (and any duplicate the network makes of it) until `to`
/// reports the release trigger registered for the point with [`set_fault_point_release`],
/// then delivers it the point's magnitude in ms later; a message the network loses is not
/// held, and nothing later on the link is. Either way `send` runs once. A held request keeps
/// its call alive, as a message stuck in a real network does; so does a held reply.
pub fn fault_point_hold(point: FaultPoint, from: NodeId, to: NodeId, send: impl FnOnce()) {
    debug_assert!(is_hold_point(point), "{point} is not a hold point");
    let Some((until, after_ms)) = reach_hold_point(point, from) else { return send() };
    let spec = crate::net::HoldSpec {
        from,
        to,
        message: None,
        messages: 0,
        until: until.to_string(),
        of: to,
        count: 1,
        after_ms,
    };
    let hold = crate::net::hold(spec);
    send();
    if let Some(id) = hold {
        crate::net::close_hold(id);
    }
}

/// Reaches `clerk.late_duplicate` ([`FaultPoint::LateDuplicate`]) for the request `from` is
/// about to send to `to` with `send`, and returns what `send` returns (it runs once either
/// way). If the point fires, the network also sends a copy of that request and holds the
/// copy until `from` has reported the release trigger registered for the point
/// ([`set_fault_point_release`]) twice, then delivers it the point's magnitude in ms later.
/// A request the network loses or cannot deliver gets no copy, and leaves no hold behind.
/// Draws nothing from the network's random stream: the copy is made whatever the network's
/// own duplicate draw says, and that draw is still made.
pub fn fault_point_duplicate<R>(from: NodeId, to: NodeId, send: impl FnOnce() -> R) -> R {
    let point = FaultPoint::LateDuplicate;
    let Some((until, after_ms)) = reach_hold_point(point, from) else { return send() };
    let spec = crate::net::HoldSpec {
        from,
        to,
        message: None,
        messages: 1,
        until: until.to_string(),
        of: from,
        count: 2,
        after_ms,
    };
    let hold = crate::net::hold(spec);
    crate::net::force_duplicate(hold.is_some());
    let out = send();
    crate::net::force_duplicate(false);
    if let Some(id) = hold {
        crate::net::close_hold(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_place_in_all() {
        for (i, p) in FaultPoint::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i, "{p}: declaration order and ALL disagree");
        }
    }

    #[test]
    fn names_round_trip_and_ranges_are_sane() {
        for p in FaultPoint::ALL {
            assert_eq!(FaultPoint::from_name(p.name()), Some(p));
            let r = p.firing_range_permille();
            assert!(*r.start() >= 1 && *r.end() <= 1000);
            assert!(p.magnitude().start() <= p.magnitude().end());
        }
        assert_eq!(FaultPoint::from_name("net.nope"), None);
    }

    #[test]
    fn a_disabled_point_never_fires_and_draws_nothing() {
        let mut pts = Points::default();
        for _ in 0..1000 {
            assert_eq!(pts.reach(7, FaultPoint::DelaySend), None);
        }
        assert!(pts.rngs.iter().all(Option::is_none), "a disabled point made no stream");
    }

    #[test]
    fn an_enabled_point_fires_at_its_rate_from_its_own_stream() {
        let run = |enable_other: bool| {
            let mut pts = Points::default();
            pts.permille[FaultPoint::DelaySend.index()] = 250;
            if enable_other {
                pts.permille[FaultPoint::PauseNode.index()] = 1000;
            }
            let mut out = Vec::new();
            for _ in 0..2000 {
                out.push(pts.reach(7, FaultPoint::DelaySend));
                if enable_other {
                    assert!(pts.reach(7, FaultPoint::PauseNode).is_some());
                }
            }
            out
        };
        let a = run(false);
        let fired = a.iter().filter(|x| x.is_some()).count();
        assert!((400..600).contains(&fired), "fired {fired} of 2000 at 250‰");
        assert!(a.iter().flatten().all(|m| FaultPoint::DelaySend.magnitude().contains(m)));
        // Another point reached in between draws from its own stream: this one's do not move.
        assert_eq!(a, run(true));
    }
}
