//! A deterministic in-memory world of 3–5 replica cores driven by arbitrary step sequences
//! (deliver any pending message, drop, duplicate, tick, crash, restart, propose, snapshot),
//! judged by `checkers::raft` after every step; no runtime, no network, no clock.
//!
//! The world is generic over the replication seam ([`ReplicaCore`], plus [`Explain`] for
//! readable traces); the property tests run it on this project's Raft core. Observations come
//! from [`ReplicaCore::observe`] and reach the checker through [`judge`], the same path the
//! actor shell's observer takes.
//!
//! The network is RPC-shaped like labrpc: a request is answered by a reply or its call fails,
//! and a failure is itself a pending message, so it can arrive late or out of order. Beyond
//! labrpc, any message may be duplicated, and requests sent by a node that crashed stay in
//! flight (a delayed message from a previous life is still a legal Raft message).

use std::collections::BTreeMap;
use std::fmt;

use crate::raft::observer::judge;
use checkers::raft::{entry_hash, SafetyChecker};
use cores::raft::{Bugs, CallContext, Config, Raft, Reply, Request};
use cores::replica::{ApplyMsg, Observation, Observed, ReplicaCore};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde::{Deserialize, Serialize};

/// One step of a schedule. Message picks are taken modulo the number of pending messages and
/// node picks modulo the cluster size, so every sequence is valid and shrinking stays sound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Deliver pending message `pick` (any one: this is how reordering happens).
    Deliver(u16),
    /// Deliver every message pending now, oldest first.
    DeliverAll,
    /// Lose pending message `pick`; the caller learns that its call failed.
    Drop(u16),
    /// Deliver pending message `pick` twice (the copy goes to the back).
    Duplicate(u16),
    /// Time passes for everyone: the shared clock moves `ms` forward and every node whose
    /// deadline passed ticks, earliest first (so leaders heartbeat before followers time out).
    Advance(u16),
    /// Advance one node's clock alone by `ms` and tick it (clocks may drift apart).
    Tick { node: u8, ms: u16 },
    /// Advance a node's clock to its next deadline and tick it.
    Fire(u8),
    /// Cut a node off, or reconnect it: while cut off, messages to and from it are held
    /// (not lost) and then released in a burst when it reconnects — a clog.
    Isolate(u8),
    /// Crash a node: it loses everything it did not persist; calls to it fail.
    Crash(u8),
    /// Restart a node from its persisted state (crashing it first if it is up).
    Restart(u8),
    /// The service proposes a fresh command at a node.
    Propose(u8),
    /// The service proposes a fresh command at one of the nodes that believe they lead (the
    /// `pick`-th by id, modulo their number; node 0 when none does). Stale leaders count: the
    /// course's Figure 8 tests call Start on every server, which is where divergent
    /// uncommitted suffixes come from.
    ProposeAtLeader(u8),
    /// The service at a node snapshots at an index it applied: its last applied index minus
    /// `back` (modulo what it applied since its last snapshot), since services snapshot on a
    /// cadence (the course: every 10 entries) rather than at every apply.
    Snapshot { node: u8, back: u8 },
    /// Every live service snapshots the same way (the course's tester snapshots on a cadence at
    /// every server).
    SnapshotEverywhere(u8),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Deliver(p) => write!(f, "deliver #{p}"),
            Step::DeliverAll => write!(f, "deliver all"),
            Step::Drop(p) => write!(f, "drop #{p}"),
            Step::Duplicate(p) => write!(f, "duplicate #{p}"),
            Step::Advance(ms) => write!(f, "advance +{ms}ms"),
            Step::Tick { node, ms } => write!(f, "tick n{node} +{ms}ms"),
            Step::Fire(n) => write!(f, "fire n{n}"),
            Step::Isolate(n) => write!(f, "isolate/reconnect n{n}"),
            Step::Crash(n) => write!(f, "crash n{n}"),
            Step::Restart(n) => write!(f, "restart n{n}"),
            Step::Propose(n) => write!(f, "propose at n{n}"),
            Step::ProposeAtLeader(p) => write!(f, "propose at leader #{p}"),
            Step::SnapshotEverywhere(back) => write!(f, "snapshot everywhere -{back}"),
            Step::Snapshot { node, back } => write!(f, "snapshot n{node} -{back}"),
        }
    }
}

/// One generated test case: the seed of the cores' election jitter and the schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub seed: u64,
    pub steps: Vec<Step>,
}

/// What a property test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub nodes: usize,
    pub bugs: Bugs,
    pub max_steps: usize,
    /// After the schedule, heal everything and require a fresh command to be applied on every
    /// node within `HEAL_BUDGET_MS` of simulated time.
    pub heal: bool,
}

/// Simulated time a healed cluster gets to elect a leader and commit everywhere.
pub const HEAL_BUDGET_MS: u64 = 10_000;

/// Kinds of step, for the per-case weights below.
const KINDS: usize = 14;

/// (base weight, whether the kind is needed for progress and so never switched off).
fn kind_weight(kind: usize) -> (u32, bool) {
    match kind {
        0 => (30, true),  // Deliver
        1 => (8, true),   // DeliverAll
        2 => (10, true),  // Advance
        3 => (10, true),  // ProposeAtLeader
        4 => (3, false),  // Drop
        5 => (2, false),  // Duplicate
        6 => (2, false),  // Tick
        7 => (3, false),  // Fire
        8 => (2, false),  // Crash
        9 => (3, false),  // Restart
        10 => (2, false), // Propose
        11 => (5, false), // Snapshot
        12 => (3, false), // Isolate
        _ => (2, false),  // SnapshotEverywhere
    }
}

fn kind_strategy(kind: usize, nodes: u8) -> BoxedStrategy<Step> {
    let node = move || 0..nodes;
    match kind {
        0 => any::<u16>().prop_map(Step::Deliver).boxed(),
        1 => Just(Step::DeliverAll).boxed(),
        2 => (1..150u16).prop_map(Step::Advance).boxed(),
        3 => any::<u8>().prop_map(Step::ProposeAtLeader).boxed(),
        4 => any::<u16>().prop_map(Step::Drop).boxed(),
        5 => any::<u16>().prop_map(Step::Duplicate).boxed(),
        6 => (node(), 1..700u16).prop_map(|(node, ms)| Step::Tick { node, ms }).boxed(),
        7 => node().prop_map(Step::Fire).boxed(),
        8 => node().prop_map(Step::Crash).boxed(),
        9 => node().prop_map(Step::Restart).boxed(),
        10 => node().prop_map(Step::Propose).boxed(),
        11 => (node(), 0..12u8).prop_map(|(node, back)| Step::Snapshot { node, back }).boxed(),
        12 => node().prop_map(Step::Isolate).boxed(),
        _ => (0..12u8).prop_map(Step::SnapshotEverywhere).boxed(),
    }
}

/// The schedule generator. Swarm testing: each case first draws its own mix — every fault
/// kind weighted ×0, ×1, ×2 or ×4 — so some cases never crash, some drop a lot, some
/// snapshot constantly, and different cases stress different corners. Deliveries, shared
/// time and proposals at the leader are never switched off, so elections and replication
/// actually happen between faults.
pub fn case_strategy(params: Params) -> BoxedStrategy<Case> {
    let nodes = params.nodes as u8;
    let max_steps = params.max_steps;
    (any::<u64>(), proptest::collection::vec(0u32..4, KINDS))
        .prop_ind_flat_map(move |(seed, mix)| {
            let weighted: Vec<(u32, BoxedStrategy<Step>)> = (0..KINDS)
                .filter_map(|kind| {
                    let (base, essential) = kind_weight(kind);
                    let factor = match (mix[kind], essential) {
                        (0, false) => 0,
                        (0, true) | (1, _) => 1,
                        (2, _) => 2,
                        _ => 4,
                    };
                    (factor > 0).then(|| (base * factor, kind_strategy(kind, nodes)))
                })
                .collect();
            (Just(seed), proptest::collection::vec(Union::new_weighted(weighted), 1..=max_steps))
        })
        .prop_map(|(seed, steps)| Case { seed, steps })
        .boxed()
}

/// Run one case; `Err` carries the first violation, core assertion or liveness failure.
/// With `trace`, one readable line per step is appended (used for counterexamples).
pub fn run_case(params: &Params, case: &Case, trace: Option<&mut Vec<String>>) -> Result<(), String> {
    run_case_on::<Raft>(&raft_config(params), params, case, trace)
}

/// The Raft configuration of a property test: default timeouts, the test's planted bugs, and
/// commit news sent at once, so a follower's commit index follows the leader's within the
/// steps of a case (the saved counterexamples were found that way; the scenarios run the
/// default, and the swarms draw both).
fn raft_config(params: &Params) -> Config {
    Config { commit_news_at_once: true, ..Config::new(0, params.nodes, 0) }.with_bugs(params.bugs)
}

/// [`run_case`] on any engine, with its configuration (`params.bugs` is Raft's and is not
/// read here).
pub fn run_case_on<C: Explain>(
    config: &C::Config,
    params: &Params,
    case: &Case,
    trace: Option<&mut Vec<String>>,
) -> Result<(), String> {
    let mut world = World::<C>::new(config, params, case.seed, trace.is_some());
    let mut result = Ok(());
    for (i, step) in case.steps.iter().enumerate() {
        if let Err(e) = world.step(step) {
            result = Err(format!("step {}: {e}", i + 1));
            if world.tracing {
                let doing = std::mem::take(&mut world.doing);
                world.trace.push(doing);
            }
            break;
        }
    }
    if result.is_ok() && params.heal {
        result = world.heal().map_err(|e| format!("after healing: {e}"));
    }
    if let Some(out) = trace {
        out.append(&mut world.trace);
        if let Err(e) = &result {
            out.push(format!("=> {e}"));
        }
    }
    result
}

/// Readable descriptions of an engine's messages and state, for counterexample traces, and
/// the one engine fact a coverage mark needs. Implemented for Raft below.
pub trait Explain: ReplicaCore {
    /// One line for a request, e.g. `AppendEntries(t3, prev 4/t2, 2 entries, commit 4)`.
    fn describe_request(request: &Self::Request) -> String;
    /// One line for a reply.
    fn describe_reply(reply: &Self::Reply) -> String;
    /// Whether `reply` refuses a request (of `context`) because its term is stale.
    fn refuses_stale(context: &Self::CallContext, reply: &Self::Reply) -> bool;
    /// The node's state in brackets' worth of text: role, term, log, commit.
    fn describe_state(&self) -> String;
}

impl Explain for Raft {
    fn describe_request(request: &Request) -> String {
        match request {
            Request::RequestVote(a) => {
                format!("RequestVote(t{}, last {}/t{})", a.term, a.last_log_index, a.last_log_term)
            }
            Request::AppendEntries(a) => format!(
                "AppendEntries(t{}, prev {}/t{}, {} entries{}, commit {})",
                a.term,
                a.prev_log_index,
                a.prev_log_term,
                a.entries.len(),
                terms_suffix(a.entries.iter().map(|e| e.term)),
                a.leader_commit
            ),
            Request::InstallSnapshot(a) => {
                format!("InstallSnapshot(t{}, up to {}/t{})", a.term, a.last_included_index, a.last_included_term)
            }
        }
    }

    fn describe_reply(reply: &Reply) -> String {
        match reply {
            Reply::RequestVote(r) => {
                format!("vote reply(t{}, {})", r.term, if r.vote_granted { "granted" } else { "refused" })
            }
            Reply::AppendEntries(r) if r.success => {
                format!("append reply(t{}, ok up to {})", r.term, r.prev_log_index + r.entries_len)
            }
            Reply::AppendEntries(r) => format!(
                "append reply(t{}, rejected at {}, conflict {:?}@{})",
                r.term, r.prev_log_index, r.conflict_term, r.conflict_index
            ),
            Reply::InstallSnapshot(r) => format!("snapshot reply(t{}, {})", r.term, r.last_included_index),
        }
    }

    fn refuses_stale(context: &CallContext, reply: &Reply) -> bool {
        let term = match *context {
            CallContext::RequestVote { term }
            | CallContext::AppendEntries { term, .. }
            | CallContext::InstallSnapshot { term, .. } => term,
        };
        reply.term() > term
    }

    fn describe_state(&self) -> String {
        let s = self.status();
        format!(
            "{} t{}, log {}..{}/t{}, commit {}",
            s.role.name(),
            s.current_term,
            s.snapshot_index,
            s.last_log_index,
            s.last_log_term,
            s.commit_index
        )
    }
}

enum Msg<C: ReplicaCore> {
    Request {
        from: usize,
        to: usize,
        /// The caller's incarnation: replies to a previous life are discarded.
        caller_life: u32,
        request: C::Request,
    },
    Reply {
        from: usize,
        to: usize,
        caller_life: u32,
        context: C::CallContext,
        reply: C::Reply,
    },
    Failed {
        caller: usize,
        callee: usize,
        caller_life: u32,
        context: C::CallContext,
    },
}

impl<C: Explain> fmt::Display for Msg<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Request { from, to, request, .. } => write!(f, "n{from}→n{to} {}", C::describe_request(request)),
            Msg::Reply { from, to, reply, .. } => write!(f, "n{from}→n{to} {}", C::describe_reply(reply)),
            Msg::Failed { caller, callee, context, .. } => write!(f, "n{caller}→n{callee} call failed ({context:?})"),
        }
    }
}

impl<C: ReplicaCore> Clone for Msg<C> {
    fn clone(&self) -> Self {
        match self {
            Msg::Request { from, to, caller_life, request } => {
                Msg::Request { from: *from, to: *to, caller_life: *caller_life, request: request.clone() }
            }
            Msg::Reply { from, to, caller_life, context, reply } => {
                Msg::Reply { from: *from, to: *to, caller_life: *caller_life, context: *context, reply: reply.clone() }
            }
            Msg::Failed { caller, callee, caller_life, context } => {
                Msg::Failed { caller: *caller, callee: *callee, caller_life: *caller_life, context: *context }
            }
        }
    }
}

impl<C: ReplicaCore> Msg<C> {
    /// Whether the message travels to or from `node`.
    fn touches(&self, node: usize) -> bool {
        match *self {
            Msg::Request { from, to, .. } | Msg::Reply { from, to, .. } => from == node || to == node,
            Msg::Failed { .. } => false,
        }
    }
}

fn terms_suffix(terms: impl Iterator<Item = u64>) -> String {
    let terms: Vec<String> = terms.map(|t| format!("t{t}")).collect();
    if terms.is_empty() {
        String::new()
    } else if terms.len() <= 4 {
        format!(" [{}]", terms.join(" "))
    } else {
        format!(" [{} … {}]", terms[0], terms[terms.len() - 1])
    }
}

/// The service state a snapshot holds: how far it applied, and a digest of the commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ServiceState {
    applied: u64,
    digest: u64,
}

/// The harness's service: its state, and the digests since its last snapshot so it can
/// snapshot at an earlier index than the last one applied.
#[derive(Clone, Debug, Default)]
struct Service {
    applied: u64,
    digest: u64,
    /// (index, digest after applying it) for indexes after the last snapshot point.
    history: Vec<(u64, u64)>,
    base: ServiceState,
}

impl Service {
    fn from_state(state: ServiceState) -> Service {
        Service { applied: state.applied, digest: state.digest, history: Vec::new(), base: state }
    }

    fn apply(&mut self, index: u64, command_hash: u64) {
        self.applied = index;
        self.digest = self.digest.rotate_left(5) ^ command_hash;
        self.history.push((index, self.digest));
    }

    fn state_at(&self, index: u64) -> ServiceState {
        if index == self.base.applied {
            return self.base;
        }
        let &(applied, digest) = self
            .history
            .iter()
            .find(|(i, _)| *i == index)
            .expect("the service remembers every index since its last snapshot");
        ServiceState { applied, digest }
    }

    fn forget_before(&mut self, index: u64) {
        self.base = self.state_at(index);
        self.history.retain(|(i, _)| *i > index);
    }
}

#[derive(Clone, Debug, Default)]
struct Disk {
    state: Vec<u8>,
    snapshot: Vec<u8>,
}

/// Coverage marks: how often the rare paths a schedule should reach were reached, so a
/// harness that silently stops exercising them is noticed.
pub type Coverage = BTreeMap<&'static str, u64>;

/// Every coverage mark [`coverage`] reports, including those never reached.
pub const MARKS: &[&str] = &[
    "leader elected",
    "leader stepped down",
    "entries committed",
    "conflicting suffix replaced",
    "stale-term request refused",
    "service snapshot taken",
    "snapshot installed from the leader",
    "restart from a snapshot",
    "message delivered twice",
    "held messages released",
    "healed cluster made progress",
];

/// Run `cases` generated cases of `params` from `seed` and add up their coverage marks.
pub fn coverage(params: &Params, cases: u32, seed: u64) -> Coverage {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use rand::{RngCore, SeedableRng};
    let mut bytes = [0u8; 32];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let strategy = case_strategy(*params);
    let mut total: Coverage = MARKS.iter().map(|&m| (m, 0)).collect();
    for _ in 0..cases {
        let case = strategy.new_tree(&mut runner).expect("cases generate").current();
        let mut world = World::<Raft>::new(&raft_config(params), params, case.seed, false);
        let mut ok = case.steps.iter().all(|step| world.step(step).is_ok());
        if ok && params.heal {
            ok = world.heal().is_ok();
        }
        for (mark, n) in world.coverage {
            *total.entry(mark).or_insert(0) += n;
        }
        assert!(ok, "a correct core failed while measuring coverage; run the property test to see why");
    }
    total
}

struct World<C: Explain> {
    n: usize,
    config: C::Config,
    seed: u64,
    nodes: Vec<Option<C>>,
    disks: Vec<Disk>,
    clocks: Vec<u64>,
    /// The shared clock of `Advance`; a node's own clock never lags behind it once ticked.
    shared_ms: u64,
    isolated: Vec<bool>,
    lives: Vec<u32>,
    services: Vec<Service>,
    /// What the checker was last told of each node (also the world's view of a node's
    /// snapshot index, log end, commit index and leadership).
    seen: Vec<Observed>,
    pending: Vec<Msg<C>>,
    next_command: u64,
    checker: SafetyChecker,
    tracing: bool,
    trace: Vec<String>,
    /// What the current step is doing, for the trace line of a step that fails.
    doing: String,
    coverage: Coverage,
}

impl<C: Explain> World<C> {
    fn new(config: &C::Config, params: &Params, seed: u64, tracing: bool) -> World<C> {
        let n = params.nodes;
        let mut world = World {
            n,
            config: config.clone(),
            seed,
            nodes: (0..n).map(|_| None).collect(),
            disks: vec![Disk::default(); n],
            clocks: vec![0; n],
            shared_ms: 0,
            isolated: vec![false; n],
            lives: vec![0; n],
            services: vec![Service::default(); n],
            seen: vec![Observed::default(); n],
            pending: Vec::new(),
            next_command: 1,
            checker: SafetyChecker::new(n),
            tracing,
            trace: Vec::new(),
            doing: String::new(),
            coverage: Coverage::new(),
        };
        for i in 0..n {
            world.nodes[i] = Some(world.boot(i));
        }
        world
    }

    fn boot(&self, node: usize) -> C {
        // Each life draws its own election jitter, derived from the case seed.
        let seed = self.seed.wrapping_add((node as u64) << 32).wrapping_add(u64::from(self.lives[node]));
        let disk = &self.disks[node];
        C::boot(&self.config, node, self.n, seed, &disk.state, &disk.snapshot, self.clocks[node])
            .expect("a node restarts from what it persisted")
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        self.doing = step.to_string();
        let note = match *step {
            Step::Deliver(pick) => match self.take_deliverable(pick) {
                Some(msg) => {
                    let line = msg.to_string();
                    self.doing = format!("deliver {line}");
                    let effect = self.deliver(msg)?;
                    format!("deliver {line}{effect}")
                }
                None => return Ok(()),
            },
            Step::DeliverAll => {
                // Deliver, oldest first, what can be delivered now; held messages keep their
                // place ahead of the ones these deliveries produce.
                let current = std::mem::take(&mut self.pending);
                let mut held = Vec::new();
                let mut count = 0;
                let mut effects = String::new();
                for msg in current {
                    if self.deliverable(&msg) {
                        count += 1;
                        effects.push_str(&self.deliver(msg)?);
                    } else {
                        held.push(msg);
                    }
                }
                held.append(&mut self.pending);
                self.pending = held;
                if count == 0 {
                    return Ok(());
                }
                format!("deliver all {count} deliverable{effects}")
            }
            Step::Isolate(node) => {
                let node = usize::from(node) % self.n;
                self.isolated[node] = !self.isolated[node];
                if self.isolated[node] {
                    format!("isolate n{node}")
                } else {
                    if self.pending.iter().any(|m| m.touches(node)) {
                        self.mark("held messages released");
                    }
                    format!("reconnect n{node}")
                }
            }
            Step::Drop(pick) => match self.take(pick) {
                Some(msg) => {
                    let line = msg.to_string();
                    self.lose(msg);
                    format!("drop {line}")
                }
                None => return Ok(()),
            },
            Step::Duplicate(pick) => {
                if self.pending.is_empty() {
                    return Ok(());
                }
                let i = usize::from(pick) % self.pending.len();
                let copy = self.pending[i].clone();
                let line = copy.to_string();
                self.pending.push(copy);
                self.mark("message delivered twice");
                format!("duplicate {line}")
            }
            Step::Advance(ms) => {
                self.shared_ms += u64::from(ms);
                let effect = self.advance_to(self.shared_ms)?;
                format!("advance to {}ms{effect}", self.shared_ms)
            }
            Step::Tick { node, ms } => {
                let node = usize::from(node) % self.n;
                self.clocks[node] += u64::from(ms);
                let effect = self.tick(node)?;
                format!("tick n{node} to {}ms{effect}", self.clocks[node])
            }
            Step::Fire(node) => {
                let node = usize::from(node) % self.n;
                let Some(core) = &self.nodes[node] else {
                    return Ok(());
                };
                self.clocks[node] = self.clocks[node].max(core.next_deadline_ms());
                let effect = self.tick(node)?;
                format!("fire n{node} at {}ms{effect}", self.clocks[node])
            }
            Step::Crash(node) => {
                let node = usize::from(node) % self.n;
                if self.nodes[node].is_none() {
                    return Ok(());
                }
                self.crash(node);
                format!("crash n{node}")
            }
            Step::Restart(node) => {
                let node = usize::from(node) % self.n;
                self.restart(node)?;
                let s = self.seen[node];
                format!(
                    "restart n{node}: term {}, log up to {}, snapshot {}",
                    s.term, s.last_log_index, s.snapshot_index
                )
            }
            Step::Propose(node) => {
                let node = usize::from(node) % self.n;
                self.propose(node)?
            }
            Step::ProposeAtLeader(pick) => {
                let leaders: Vec<usize> =
                    (0..self.n).filter(|&i| self.nodes[i].as_ref().is_some_and(|c| c.get_state().1)).collect();
                let node = if leaders.is_empty() { 0 } else { leaders[usize::from(pick) % leaders.len()] };
                self.propose(node)?
            }
            Step::Snapshot { node, back } => {
                let node = usize::from(node) % self.n;
                match self.service_snapshot(node, back)? {
                    Some(index) => format!("snapshot n{node} at {index}"),
                    None => return Ok(()),
                }
            }
            Step::SnapshotEverywhere(back) => {
                let mut taken = Vec::new();
                for node in 0..self.n {
                    if let Some(index) = self.service_snapshot(node, back)? {
                        taken.push(format!("n{node} at {index}"));
                    }
                }
                if taken.is_empty() {
                    return Ok(());
                }
                format!("snapshot {}", taken.join(", "))
            }
        };
        if self.tracing {
            self.trace.push(note);
        }
        Ok(())
    }

    /// Whether a message can be delivered now: nothing crosses to or from an isolated node,
    /// except a failed call's notice, which is local to the caller.
    fn deliverable(&self, msg: &Msg<C>) -> bool {
        match *msg {
            Msg::Request { from, to, .. } | Msg::Reply { from, to, .. } => !self.isolated[from] && !self.isolated[to],
            Msg::Failed { .. } => true,
        }
    }

    /// Remove and return the `pick`-th deliverable message.
    fn take_deliverable(&mut self, pick: u16) -> Option<Msg<C>> {
        let candidates: Vec<usize> = (0..self.pending.len()).filter(|&i| self.deliverable(&self.pending[i])).collect();
        if candidates.is_empty() {
            None
        } else {
            let i = candidates[usize::from(pick) % candidates.len()];
            Some(self.pending.remove(i))
        }
    }

    fn mark(&mut self, mark: &'static str) {
        *self.coverage.entry(mark).or_insert(0) += 1;
    }

    /// The service at `node` snapshots `back` entries before its last applied one (modulo
    /// what it applied since its last snapshot); returns the index, if it snapshotted.
    fn service_snapshot(&mut self, node: usize, back: u8) -> Result<Option<u64>, String> {
        let Some(core) = &mut self.nodes[node] else {
            return Ok(None);
        };
        let service = &self.services[node];
        let snapshot_index = self.seen[node].snapshot_index;
        if service.applied <= snapshot_index {
            return Ok(None);
        }
        let index = service.applied - u64::from(back) % (service.applied - snapshot_index);
        let state = service.state_at(index);
        let data = postcard::to_allocvec(&state).expect("encode service state");
        core.snapshot(self.clocks[node], index, data);
        self.mark("service snapshot taken");
        self.services[node].forget_before(index);
        self.drain(node)?;
        Ok(Some(index))
    }

    /// Remove and return the `pick`-th pending message, deliverable or not.
    fn take(&mut self, pick: u16) -> Option<Msg<C>> {
        if self.pending.is_empty() {
            None
        } else {
            let i = usize::from(pick) % self.pending.len();
            Some(self.pending.remove(i))
        }
    }

    /// A lost request or reply becomes a failed call for its caller.
    fn lose(&mut self, msg: Msg<C>) {
        match msg {
            Msg::Request { from, to, caller_life, request } => self.pending.push(Msg::Failed {
                caller: from,
                callee: to,
                caller_life,
                context: C::call_context(&request),
            }),
            Msg::Reply { from, to, caller_life, context, .. } => {
                self.pending.push(Msg::Failed { caller: to, callee: from, caller_life, context })
            }
            // The caller never learns: legal, since heartbeats repair anything.
            Msg::Failed { .. } => {}
        }
    }

    fn deliver(&mut self, msg: Msg<C>) -> Result<String, String> {
        match msg {
            Msg::Request { from, to, caller_life, request } => {
                let now = self.clocks[to];
                let Some(core) = &mut self.nodes[to] else {
                    self.lose(Msg::Request { from, to, caller_life, request });
                    return Ok(String::new());
                };
                let context = C::call_context(&request);
                let reply = core.handle_request(now, from, request);
                if C::refuses_stale(&context, &reply) {
                    self.mark("stale-term request refused");
                }
                // Persist (inside drain) before the reply leaves.
                let effect = self.drain(to)?;
                self.pending.push(Msg::Reply { from: to, to: from, caller_life, context, reply });
                Ok(effect)
            }
            Msg::Reply { from, to, caller_life, reply, .. } => {
                if caller_life != self.lives[to] {
                    return Ok(String::new());
                }
                let now = self.clocks[to];
                let Some(core) = &mut self.nodes[to] else {
                    return Ok(String::new());
                };
                core.handle_reply(now, from, reply);
                self.drain(to)
            }
            Msg::Failed { caller, callee, caller_life, context } => {
                if caller_life != self.lives[caller] {
                    return Ok(String::new());
                }
                let now = self.clocks[caller];
                let Some(core) = &mut self.nodes[caller] else {
                    return Ok(String::new());
                };
                core.handle_call_failed(now, callee, context);
                self.drain(caller)
            }
        }
    }

    /// Bring every live node's clock up to `now`, ticking nodes as their deadlines pass,
    /// earliest first; a tick's messages wait for delivery steps.
    fn advance_to(&mut self, now: u64) -> Result<String, String> {
        let mut effects = String::new();
        loop {
            let due = (0..self.n)
                .filter_map(|i| {
                    let core = self.nodes[i].as_ref()?;
                    let at = core.next_deadline_ms().max(self.clocks[i]);
                    (at <= now).then_some((at, i))
                })
                .min();
            let Some((at, node)) = due else { break };
            self.clocks[node] = at;
            effects.push_str(&self.tick(node)?);
            // A tick always moves the deadline past `at`, so this loop ends.
            let after = self.nodes[node].as_ref().expect("up").next_deadline_ms();
            if after <= at {
                return Err(format!("n{node} still has a deadline at {after} ms after ticking at {at} ms"));
            }
        }
        for i in 0..self.n {
            self.clocks[i] = self.clocks[i].max(now);
        }
        Ok(effects)
    }

    fn tick(&mut self, node: usize) -> Result<String, String> {
        let now = self.clocks[node];
        let Some(core) = &mut self.nodes[node] else {
            return Ok(String::new());
        };
        core.tick(now);
        self.drain(node)
    }

    fn propose(&mut self, node: usize) -> Result<String, String> {
        let now = self.clocks[node];
        let Some(core) = &mut self.nodes[node] else {
            return Ok(format!("propose at n{node}: down"));
        };
        let command = self.next_command;
        let result = core.propose(now, command.to_le_bytes().to_vec());
        let effect = self.drain(node)?;
        Ok(match result {
            Some(p) => {
                self.next_command += 1;
                format!("propose c{command} at n{node}: index {} term {}{effect}", p.index, p.term)
            }
            None => format!("propose at n{node}: not leader"),
        })
    }

    fn crash(&mut self, node: usize) {
        self.nodes[node] = None;
        // Calls to the dead node fail; what was addressed to it is gone. Requests it sent
        // stay in flight: they may still arrive, and their replies will find no one.
        let pending = std::mem::take(&mut self.pending);
        for msg in pending {
            match msg {
                Msg::Request { to, .. } if to == node => self.lose(msg),
                Msg::Reply { to, .. } if to == node => {}
                Msg::Failed { caller, .. } if caller == node => {}
                other => self.pending.push(other),
            }
        }
    }

    fn restart(&mut self, node: usize) -> Result<(), String> {
        if self.nodes[node].is_some() {
            self.crash(node);
        }
        self.lives[node] += 1;
        let core = self.boot(node);
        self.nodes[node] = Some(core);
        // Re-observe the restarted node's whole log: it is what it persisted.
        self.seen[node] = Observed::restarted();
        self.observe(node, Some(1)).map_err(|e| e.to_string())?;
        let snapshot_index = self.seen[node].snapshot_index;
        // The service reloads the persisted snapshot, as the course's tester does.
        self.services[node] = if self.disks[node].snapshot.is_empty() {
            Service::default()
        } else {
            let state: ServiceState = postcard::from_bytes(&self.disks[node].snapshot).map_err(|e| e.to_string())?;
            if state.applied != snapshot_index {
                return Err(format!(
                    "apply-order: n{node} restarted with a snapshot at {snapshot_index} holding service state up to {}",
                    state.applied
                ));
            }
            Service::from_state(state)
        };
        if snapshot_index > 0 {
            self.mark("restart from a snapshot");
        }
        Ok(())
    }

    fn leader(&self) -> Option<usize> {
        (0..self.n)
            .filter_map(|i| self.nodes[i].as_ref().map(|c| (i, c.get_state())))
            .filter(|(_, (_, leader))| *leader)
            .max_by_key(|(_, (term, _))| *term)
            .map(|(i, _)| i)
    }

    /// Shows the checker what changed at `node` since it last looked (the shared derivation,
    /// [`ReplicaCore::observe`]).
    fn observe(&mut self, node: usize, log_written_from: Option<u64>) -> Result<(), checkers::raft::Violation> {
        let core = self.nodes[node].as_ref().expect("node is up");
        let mut observations = Vec::new();
        core.observe(&mut self.seen[node], log_written_from, &mut observations);
        for o in &observations {
            judge(&mut self.checker, node, o)?;
        }
        Ok(())
    }

    /// Carry out a node's outputs in the shell's order — persist, send, apply — and show the
    /// checker what changed.
    fn drain(&mut self, node: usize) -> Result<String, String> {
        let core = self.nodes[node].as_mut().expect("node is up");
        let before = self.seen[node];
        let ready = core.take_ready();
        if let Some(p) = ready.persist {
            let disk = &mut self.disks[node];
            disk.state = cores::replica::PersistedImage::to_bytes(&p.state);
            if let Some(snapshot) = p.snapshot {
                disk.snapshot = std::rc::Rc::unwrap_or_clone(snapshot);
            }
        }
        let sent = ready.messages.len();
        for out in ready.messages {
            self.pending.push(Msg::Request {
                from: node,
                to: out.to,
                caller_life: self.lives[node],
                request: out.request,
            });
        }
        let fail = |e: checkers::raft::Violation| e.to_string();
        self.observe(node, ready.log_written_from).map_err(fail)?;
        let applied = ready.applies.len();
        for apply in &ready.applies {
            judge(&mut self.checker, node, &Observation::of_apply(apply)).map_err(fail)?;
            let service = &mut self.services[node];
            match apply {
                ApplyMsg::Command { index, command, .. } => service.apply(*index, entry_hash(command)),
                ApplyMsg::Snapshot { index, data, .. } => {
                    *self.coverage.entry("snapshot installed from the leader").or_insert(0) += 1;
                    let state: ServiceState = postcard::from_bytes(data).map_err(|e| e.to_string())?;
                    if state.applied != *index {
                        return Err(format!(
                            "apply-order: n{node} was handed a snapshot for index {index} holding service state up to {}",
                            state.applied
                        ));
                    }
                    *service = Service::from_state(state);
                }
            }
        }
        let after = self.seen[node];
        if after.leader && !before.leader {
            self.mark("leader elected");
        }
        if !after.leader && before.leader {
            self.mark("leader stepped down");
        }
        if after.commit_index > before.commit_index {
            self.mark("entries committed");
        }
        if ready.log_written_from.is_some_and(|from| from <= before.last_log_index) {
            self.mark("conflicting suffix replaced");
        }
        if !self.tracing {
            return Ok(String::new());
        }
        let mut effect = String::new();
        if sent > 0 {
            effect.push_str(&format!(", n{node} sends {sent}"));
        }
        if applied > 0 {
            effect.push_str(&format!(", n{node} applies {applied} (up to {})", self.services[node].applied));
        }
        let state = self.nodes[node].as_ref().expect("node is up").describe_state();
        effect.push_str(&format!(" [n{node} {state}]"));
        Ok(effect)
    }

    /// Liveness after faults stop: restart every crashed node, deliver everything promptly,
    /// let timers fire on one shared clock, and require a fresh command to be applied on
    /// every node within `HEAL_BUDGET_MS`.
    fn heal(&mut self) -> Result<(), String> {
        self.isolated = vec![false; self.n];
        for node in 0..self.n {
            if self.nodes[node].is_none() {
                self.restart(node)?;
            }
        }
        let start = self.clocks.iter().copied().max().unwrap_or(0);
        let deadline = start + HEAL_BUDGET_MS;
        let mut now = start;
        // (command, index, term) of each probe proposed, newest last.
        let mut probes: Vec<(u64, u64, u64)> = Vec::new();
        let mut deliveries = 0u64;
        loop {
            for c in &mut self.clocks {
                *c = now;
            }
            while !self.pending.is_empty() {
                let msg = self.pending.remove(0);
                self.deliver(msg)?;
                deliveries += 1;
                if deliveries > 1_000_000 {
                    return Err("liveness: message storm (a million deliveries)".to_string());
                }
            }
            if let Some(index) = self.probe_applied_everywhere(&probes) {
                self.mark("healed cluster made progress");
                if self.tracing {
                    self.trace.push(format!(
                        "healed: probe at index {index} applied on all {} nodes after {} ms",
                        self.n,
                        now - start
                    ));
                }
                return Ok(());
            }
            // Propose a probe at the current leader unless one is already in its term.
            if let Some(leader) = self.leader() {
                let core = self.nodes[leader].as_mut().expect("leader is up");
                let term = core.get_state().0;
                if probes.last().is_none_or(|&(_, _, t)| t < term) {
                    let command = self.next_command;
                    if let Some(p) = core.propose(now, command.to_le_bytes().to_vec()) {
                        self.next_command += 1;
                        probes.push((command, p.index, p.term));
                    }
                    self.drain(leader)?;
                    continue;
                }
            }
            let next = (0..self.n)
                .map(|i| self.nodes[i].as_ref().expect("all up").next_deadline_ms())
                .min()
                .expect("at least one node");
            now = now.max(next);
            if now > deadline {
                let states: Vec<String> = (0..self.n)
                    .map(|i| {
                        let state = self.nodes[i].as_ref().expect("all up").describe_state();
                        format!("n{i} {state}, applied {}", self.services[i].applied)
                    })
                    .collect();
                return Err(format!(
                    "liveness: no fresh command applied on every node within {HEAL_BUDGET_MS} ms of healing ({})",
                    states.join("; ")
                ));
            }
            for c in &mut self.clocks {
                *c = now;
            }
            for node in 0..self.n {
                if self.nodes[node].as_ref().expect("all up").next_deadline_ms() <= now {
                    self.tick(node)?;
                }
            }
        }
    }

    /// The index of a probe that every node's service has applied (or passed by snapshot):
    /// the cluster has committed and applied something past the point where faults stopped.
    fn probe_applied_everywhere(&self, probes: &[(u64, u64, u64)]) -> Option<u64> {
        probes.iter().map(|&(_, index, _)| index).find(|&index| self.services.iter().all(|s| s.applied >= index))
    }
}
