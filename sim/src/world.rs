//! The world kernel: the node table, the trace with its livelock watchdog, the failure
//! signal and run-wide counters — what every other part of the world is driven through —
//! and the one `World` of a run, which owns the kernel, the network, the file system and
//! the persister side by side.
//!
//! One `World` lives in a thread-local for the duration of a run (each run has its own
//! OS thread), so node futures capture only plain ids and stay free of `Rc`s. Every public
//! entry point borrows the world exactly once; anything that must call back into madsim
//! (kill, restart, build a node) happens after the borrow ends. The network (`net.rs`), the
//! file system (`fs.rs`) and the persister (`persist.rs`) own their state and reach the rest
//! of the world only through a `&mut Kernel` handed to them, never through the whole world.

use crate::annotate::Annotation;
use crate::failure::Failure;
use crate::fs::FsState;
use crate::net::{Incoming, NetState};
use crate::persist::Persister;
use crate::process::Host;
use crate::rng::{self, ChaCha8Rng};
use crate::sched::Scheduler;
use crate::trace::{fmt_time, hash_bytes, Kind, Trace, TraceMode};
use crate::NodeCtx;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A node of the simulated world: a server process, a worker, or a client endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u16);

impl NodeId {
    /// The id as an index into per-node tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Marker for trace events that belong to no node.
pub(crate) const NO_NODE: u64 = 0xFFFF;

/// A node as the kernel knows it: identity, lifecycle and inbox. What the network and the
/// persister keep per node lives with them.
pub(crate) struct Node {
    pub name: String,
    pub host: Host,
    pub alive: bool,
    pub incarnation: u32,
    pub inbox: VecDeque<Incoming>,
    pub waker: Option<Waker>,
}

/// Counters a run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// RPC calls made (labrpc's rpcTotal), including those that failed.
    pub rpc_total: u64,
    /// Request bytes of every call plus reply bytes of delivered replies (labrpc's bytesTotal).
    pub bytes_total: u64,
    /// Messages (requests and replies) delivered to their destination.
    pub delivered: u64,
    /// Messages lost for any reason.
    pub dropped: u64,
    /// Node crashes: by a scenario, a fault event, a crash after a save, or a node's own
    /// `crash_self`. A process whose main future returns exits without counting here.
    pub crashes: u64,
    /// Node restarts.
    pub restarts: u64,
}

/// The kernel of a run's world: what the network, the file system and the persister are
/// driven through (node table, scheduler, trace, failure, counters, annotations).
pub(crate) struct Kernel {
    pub seed: u64,
    pub nodes: Vec<Node>,
    pub sched: Scheduler,
    pub trace: Trace,
    pub failure: Option<Failure>,
    pub failure_waker: Option<Waker>,
    pub stats: Stats,
    /// Simulated-time origin, to turn nanosecond deadlines into madsim `Instant`s.
    pub base: std::time::Instant,
    pub time: madsim::time::TimeHandle,
    /// Annotations for history pictures: (start ns, end ns or None, label, node).
    pub annotations: Vec<Annotation>,
    /// Lines a scenario wants printed with the run's result (its drawn parameters).
    pub description: Vec<String>,
    /// Files the run hands its caller (`attach`).
    pub attachments: Vec<crate::run::Attachment>,
    /// The run's planted bug (`RunConfig::bug`), which `attach` puts in file names.
    pub bug: Option<String>,
    /// Fault events that named no node when they fired, as `at N ms: what` (not hashed: the
    /// trace's `fault skipped` note is).
    pub skipped_faults: Vec<String>,
    /// Coverage marks reached so far (`mark`), by name.
    pub marks: std::collections::BTreeMap<&'static str, u64>,
    /// The fault points enabled for the run (`points.rs`) and their random streams.
    pub points: crate::points::Points,
    /// The simulated second being watched for a livelock, and its events so far.
    watch_s: u64,
    watch_events: u64,
}

/// The world of one run: the kernel and the parts that own their own state.
pub(crate) struct World {
    pub kernel: Kernel,
    pub net: NetState,
    pub fs: FsState,
    pub store: Persister,
}

/// More events than this within one simulated second is a livelock: nodes busy forever at
/// (nearly) one instant — a zero-delay message loop advances time only by the executor's
/// 50–100 ns per poll, so the run would never reach its simulated-time budget. Healthy runs
/// stay far below it (the busiest, 20 clerks on 5 servers, make ~60k a second).
pub const LIVELOCK_EVENTS_PER_S: u64 = 500_000;

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// Runs `f` on the current run's world. Panics outside a run: that is a harness bug.
pub(crate) fn with<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|c| {
        let mut b = c.borrow_mut();
        f(b.as_mut().expect("sim: no world on this thread (call inside sim::run)"))
    })
}

/// Like `with`, but a no-op when there is no world or it is busy (used from `Drop`).
pub(crate) fn try_with(f: impl FnOnce(&mut World)) {
    WORLD.with(|c| {
        if let Ok(mut b) = c.try_borrow_mut() {
            if let Some(w) = b.as_mut() {
                f(w)
            }
        }
    })
}

/// Reads the world if there is one (used by the run harness while tearing down).
pub(crate) fn peek<R>(f: impl FnOnce(&World) -> R) -> Option<R> {
    WORLD.with(|c| c.borrow().as_ref().map(f))
}

pub(crate) fn install(seed: u64, mode: TraceMode, bug: Option<String>) {
    let time = madsim::time::TimeHandle::current();
    let base = time.now_instant() - time.elapsed();
    let time_for_clock = time.clone();
    let kernel = Kernel {
        seed,
        nodes: Vec::new(),
        sched: Scheduler::default(),
        trace: Trace::new(mode),
        failure: None,
        failure_waker: None,
        stats: Stats::default(),
        base,
        time,
        annotations: Vec::new(),
        description: Vec::new(),
        attachments: Vec::new(),
        bug,
        skipped_faults: Vec::new(),
        marks: std::collections::BTreeMap::new(),
        points: crate::points::Points::default(),
        watch_s: 0,
        watch_events: 0,
    };
    let world = World {
        kernel,
        net: NetState::new(rng::stream(seed, "net", 0)),
        fs: FsState::default(),
        store: Persister::default(),
    };
    WORLD.with(|c| *c.borrow_mut() = Some(world));
    crate::sched::set_clock(Some(time_for_clock));
}

pub(crate) fn uninstall() -> Option<World> {
    crate::sched::set_clock(None);
    WORLD.with(|c| c.borrow_mut().take())
}

impl Kernel {
    pub fn now_ns(&self) -> u64 {
        crate::sched::step_now().unwrap_or_else(|| self.time.elapsed()).as_nanos() as u64
    }

    /// Records a trace event stamped with the current simulated time, and watches for a
    /// livelock (too many events within one simulated second).
    #[inline]
    pub fn record(&mut self, kind: Kind, node: u64, fields: [u64; 3], detail: impl FnOnce(&Kernel) -> String) {
        let now = self.now_ns();
        let sec = now / 1_000_000_000;
        if sec != self.watch_s {
            self.watch_s = sec;
            self.watch_events = 0;
        } else {
            self.watch_events += 1;
            if self.watch_events == LIVELOCK_EVENTS_PER_S && self.failure.is_none() {
                self.set_failure(Failure::liveness(
                    "livelock",
                    format!(
                        "{LIVELOCK_EVENTS_PER_S} events within one simulated second (at {}): nodes are busy without end at nearly one instant",
                        fmt_time(now).trim()
                    ),
                ));
            }
        }
        if self.trace.wants_lines() {
            let name = if node == NO_NODE { "-".to_string() } else { self.nodes[node as usize].name.clone() };
            let line = format!("{} {:<10} {:<8} {}", fmt_time(now), name, kind.label(), detail(self));
            self.trace.record(now, kind, node, fields, move || line);
        } else {
            self.trace.record(now, kind, node, fields, String::new);
        }
    }

    pub fn name(&self, n: u16) -> &str {
        &self.nodes[n as usize].name
    }

    pub fn set_failure(&mut self, f: Failure) {
        if self.failure.is_none() {
            let (c, m) = (hash_bytes(f.checker.as_bytes()), hash_bytes(f.message.as_bytes()));
            let line = f.to_string();
            self.record(Kind::Check, NO_NODE, [c, m, f.class as u64], |_| format!("FAILED {line}"));
            self.failure = Some(f);
            if let Some(w) = self.failure_waker.take() {
                w.wake();
            }
        }
    }

    /// Delivers into a node's inbox, waking the task waiting on it.
    pub fn push_inbox(&mut self, node: u16, msg: Incoming) {
        let n = &mut self.nodes[node as usize];
        n.inbox.push_back(msg);
        if let Some(w) = n.waker.take() {
            w.wake();
        }
    }

    /// Whether `ctx` is the node's live instance, and the run still going.
    pub fn is_current(&self, ctx: NodeCtx) -> bool {
        // Once the run has failed, every node is as good as crashed: nothing it does takes
        // effect and nothing new reaches it. Otherwise nodes busy with each other at zero
        // delay would keep madsim's ready queue from ever draining, and the run from ending.
        let n = &self.nodes[ctx.id.index()];
        n.alive && n.incarnation == ctx.incarnation && self.failure.is_none()
    }
}

// ---------------------------------------------------------------------------------------
// Supervisor-side API: seed, failure signal, notes, counters.
// ---------------------------------------------------------------------------------------

/// The run's seed.
pub fn seed() -> u64 {
    with(|w| w.kernel.seed)
}

/// A random stream for scenario-level choices (workloads, fault schedules, swarm knobs).
pub fn rng(label: &str) -> ChaCha8Rng {
    rng::stream(seed(), label, u64::MAX)
}

/// Ends the run with this failure (the first one wins).
pub fn fail(f: Failure) {
    with(|w| w.kernel.set_failure(f));
}

/// Whether some check has already failed the run.
pub fn failed() -> bool {
    with(|w| w.kernel.failure.is_some())
}

/// Records a scenario-level event (a tester step, a fault) in the trace. `text` runs inside
/// the world, only when lines are wanted: it must not call back into `sim`.
pub fn note(code: crate::trace::NoteCode, a: u64, text: impl FnOnce() -> String) {
    with(|w| w.kernel.record(Kind::Note, NO_NODE, [code.value(), a, 0], |_| text()));
}

/// Keeps a fault event that was skipped (it named no node when it fired) for the run's
/// report ([`crate::RunReport::skipped_faults`]); the trace's note is recorded apart.
pub(crate) fn keep_skipped_fault(what: &str) {
    let at_ms = crate::sched::now().as_millis();
    with(|w| w.kernel.skipped_faults.push(format!("at {at_ms} ms: {what}")));
}

/// Describes the run (a swarm's drawn parameters): recorded in the trace and printed by
/// `run`, `replay` and failing sweep runs.
pub fn describe(line: impl Into<String>) {
    let line = line.into();
    describe_as(&line, Some(line.clone()));
}

/// [`describe`], unless the run's description already has this very line: for what each
/// of several like parts would say alike (the checks every replica group runs).
pub fn describe_once(line: impl Into<String>) {
    let line = line.into();
    if !with(|w| w.kernel.description.contains(&line)) {
        describe(line);
    }
}

/// Describes the run with `shown` (none: nothing is printed) where its trace hash takes
/// `drawn`. A swarm run from a file shows what the file plays, yet hashes the line its seed
/// draws, as the run the file was resolved from did, so that the two are one run by hash
/// (`scenarios::swarm`).
pub fn describe_as(drawn: &str, shown: Option<String>) {
    with(|w| {
        let h = crate::trace::hash_bytes(drawn.as_bytes());
        let text = shown.clone().unwrap_or_else(|| format!("(the seed's draw, replaced by the file: {drawn})"));
        w.kernel.record(Kind::Note, NO_NODE, [crate::trace::NoteCode::Describe.value(), h, 0], |_| text);
        w.kernel.description.extend(shown);
    });
}

/// Counts one reaching of the coverage mark `name`: a rare path a sweep should reach
/// (a snapshot installed, a leader stepping down, held messages released). Marks are
/// counted per run ([`crate::RunReport::marks`]) and summed by a sweep; they are not trace
/// events, so marking changes no trace hash. Outside a run it does nothing.
pub fn mark(name: &'static str) {
    try_with(|w| *w.kernel.marks.entry(name).or_insert(0) += 1);
}

/// The marks the world itself sets (network and persister), for a family to declare.
pub const WORLD_MARKS: [(&str, &str); 3] = [
    (HELD_RELEASED, "a clogged link released the messages it held, in a burst"),
    (DUPLICATED, "the network duplicated a request (a late copy may replay it)"),
    (CRASH_AFTER_SAVE, "a crash point fired right after (or just after) a save"),
];
/// The mark of a hold ([`crate::net::hold`]), for a family whose scenarios hold messages
/// until protocol events (the Raft observer feeds the triggers) to declare.
pub const HOLD_MARKS: [(&str, &str); 1] = [(
    HELD_FOR_EVENT,
    "a message was held until a protocol event (a hold episode, replica.hold_snapshot or replica.hold_append_reply)",
)];
/// Mark: a clog released held messages.
pub const HELD_RELEASED: &str = "sim: held messages released";
/// Mark: a request was duplicated.
pub const DUPLICATED: &str = "sim: request duplicated";
/// Mark: a hold ([`crate::net::hold`]) took a message until a protocol event.
pub const HELD_FOR_EVENT: &str = "sim: message held for a protocol event";
/// Mark: a crash point after a save fired.
pub const CRASH_AFTER_SAVE: &str = "sim: crash right after a save";

/// Hands the run's caller a file (a history page, say): the command line writes it where
/// its options say and prints the path; the run itself writes no file, and nothing of it is
/// hashed, so where it lands cannot change a run. `name` is a file name without folders.
///
/// Returns the name the file is attached under, which a message about it should use: `name`
/// itself, or in a run with a planted bug `name` with the bug after its stem
/// (`kvraft__x_3a-seed0.html` becomes `kvraft__x_3a-seed0-local-reads.html`), so that runs of
/// one scenario and seed with different bugs (`bugs`, sweeps with `--bug` into one folder) do
/// not overwrite each other's files.
///
/// # Panics
/// If `name` is empty or holds a `/` or `\`, or outside a run.
pub fn attach(name: impl Into<String>, what: impl Into<String>, bytes: Vec<u8>) -> String {
    let (name, what) = (name.into(), what.into());
    assert!(!name.contains(['/', '\\']) && !name.is_empty(), "an attachment's name is a plain file name: {name:?}");
    with(|w| {
        let name = with_bug(&name, w.kernel.bug.as_deref());
        w.kernel.attachments.push(crate::run::Attachment { name: name.clone(), what, bytes });
        name
    })
}

/// `name` with `bug` after its stem, the part before its first dot (see [`attach`]).
fn with_bug(name: &str, bug: Option<&str>) -> String {
    match (bug, name.split_once('.')) {
        (None, _) => name.to_string(),
        (Some(b), Some((stem, ext))) => format!("{stem}-{b}.{ext}"),
        (Some(b), None) => format!("{name}-{b}"),
    }
}

/// Run-wide counters so far.
pub fn stats() -> Stats {
    with(|w| w.kernel.stats)
}

/// Future that resolves when some check fails the run.
pub(crate) struct FailureSignal;

impl Future for FailureSignal {
    type Output = Failure;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Failure> {
        with(|w| match &w.kernel.failure {
            Some(f) => Poll::Ready(f.clone()),
            None => {
                w.kernel.failure_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::with_bug;

    #[test]
    fn a_planted_bug_goes_after_the_stem_of_an_attachment_name() {
        assert_eq!(with_bug("kvraft__x_3a-seed0.html", None), "kvraft__x_3a-seed0.html");
        assert_eq!(with_bug("kvraft__x_3a-seed0.html", Some("local-reads")), "kvraft__x_3a-seed0-local-reads.html");
        assert_eq!(with_bug("a-seed7.history.json", Some("b")), "a-seed7-b.history.json");
        assert_eq!(with_bug("notes", Some("b")), "notes-b");
        assert_ne!(with_bug("p-seed0.html", Some("x")), with_bug("p-seed0.html", Some("y")));
    }
}
