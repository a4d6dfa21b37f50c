//! The kvraft tester: a port of the course's `kvraft/config.go` and `GenericTest` onto the
//! simulated world, with every clerk call recorded in a history that the linearizability
//! checker judges at the end of every scenario.
//!
//! Network as the kvraft tester has it: no long delays (a call to an unreachable server fails
//! within 0–99 ms), two-way partitions among servers that leave clerks alone, clerks connected
//! to chosen servers, servers handed to each clerk in a random order. Beyond labrpc, every
//! message takes 0–1 ms and a server spends 0.3–0.7 ms on each message it receives, one at
//! a time: the course's Go servers take real time per RPC, which is what bounds how many
//! operations its clients manage; without a cost, simulated clients would run unboundedly
//! many operations in a 5-second round.

use crate::engine::{RaftEngine, TestEngine};
use crate::raft::observer::SafetyObserver;
use checkers::formats::json;
use checkers::html::{render, Annotation, HtmlOptions};
use checkers::linearizability::{check, CheckOptions, CheckResult, UnknownReason, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use cores::kv::{Kv, KvOp, KvResult};
use cores::raft::Bugs as RaftBugs;
use cores::rsm::RsmBugs;
use nodes::replica::{Engine, NodeSpec, Observer, ReplicaHandle, Service};
use nodes::rsm::{Clerk, RsmServer};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::history::Recorder;
use sim::{net, Failure, NetConfig, NodeCtx, NodeId};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// The kvraft testers' network: reliable, no long delays, 0-1 ms per message, 0.3-0.7 ms of
/// server time per message received.
pub const NET: NetConfig = NetConfig {
    hop_delay_ms_min: 0,
    hop_delay_ms_max: 1,
    service_us_min: 300,
    service_us_max: 700,
    ..NetConfig::DEFAULT
};

/// The kvraft tests' `electionTimeout`.
pub const ELECTION: Duration = Duration::from_millis(1000);

/// Deterministic search budget for judging a history (steps over the whole history): an
/// unknown verdict is a failure here, so it is generous. Memory is bounded too, by the
/// checker's default budget (`checkers::linearizability::DEFAULT_MEMORY_LIMIT`), so that a
/// history the checker cannot decide fails its run instead of exhausting the machine a
/// sweep runs on.
pub const CHECK_BUDGET: u64 = 200_000_000;

pub type KvServer = RsmServer<Kv>;

/// A key/value service the kvraft suite runs: its server, one per replica on any engine (the
/// course's `StartKVServer`), and its clerk (`MakeClerk`). simlab's own is [`OwnKv`]; a
/// user's own server and clerk implement this and run the same scenarios, histories and
/// linearizability checks through [`super::conformance`].
pub trait KvService: 'static {
    /// What [`KvService::config`] builds once per run for every server: e.g. which planted
    /// mistake is on.
    type Config: Clone + 'static;
    /// One replica's server: requests from clerks come to it, applied commands from the
    /// engine beneath it ([`Service`]: `on_request`, `apply`, `after_step`, `restore`).
    type Server: Service;
    /// The client library.
    type Clerk: KvClient;
    /// The run's configuration, with planted mistake `bug` (one of [`KvService::bugs`]) on.
    fn config(bug: Option<&str>) -> Self::Config;
    /// `StartKVServer`: a server (a fresh instance at every start and restart; restore its
    /// snapshot in [`Service::restore`]) that snapshots once the engine's persisted state
    /// exceeds `maxraftstate` bytes (`None`: never), the course's 3B rule.
    fn server(config: &Self::Config, ctx: NodeCtx, maxraftstate: Option<usize>) -> Self::Server;
    /// `MakeClerk(servers)`: a clerk calling `servers` (in the order to try them) through
    /// `ctx`, with `client_id`, a random number unique in the run with high probability.
    fn clerk(config: &Self::Config, ctx: NodeCtx, servers: Vec<NodeId>, client_id: u64) -> Self::Clerk;
    /// (name, one-line description) of each planted mistake the service offers.
    fn bugs() -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
}

/// A clerk of a [`KvService`]: the course's `Get`, `Put` and `Append`, each retried until it
/// takes effect exactly once. The tester records each call and what it returned in the run's
/// history, which the linearizability checker judges.
pub trait KvClient: 'static {
    /// `Get(key)`: the key's value, `""` for a missing key.
    fn get(&mut self, key: &str) -> impl Future<Output = String>;
    /// `Put(key, value)`. Returns what the history records: [`KvOutput::Ack`] (the course's
    /// answer, nothing), or [`KvOutput::Wrote`] if the server reports the length and digest
    /// of the value it replaced — the checker then pins the write to that state, which keeps
    /// histories of many concurrent writes cheap to judge.
    fn put(&mut self, key: &str, value: &str) -> impl Future<Output = KvOutput>;
    /// `Append(key, value)`: returns as [`KvClient::put`] does.
    fn append(&mut self, key: &str, value: &str) -> impl Future<Output = KvOutput>;
}

/// simlab's own key/value service: [`RsmServer`] over [`Kv`] and the numbered [`Clerk`],
/// with the replicated state machine's planted bugs ([`RsmBugs::ALL`]).
pub struct OwnKv;

impl KvService for OwnKv {
    type Config = RsmBugs;
    type Server = KvServer;
    type Clerk = Clerk<Kv>;

    fn config(bug: Option<&str>) -> RsmBugs {
        bug.map_or_else(RsmBugs::default, |name| {
            RsmBugs::from_name(name).unwrap_or_else(|| panic!("unknown kvraft bug {name}"))
        })
    }

    fn server(bugs: &RsmBugs, ctx: NodeCtx, maxraftstate: Option<usize>) -> KvServer {
        KvServer::new(ctx, maxraftstate, *bugs)
    }

    fn clerk(_: &RsmBugs, ctx: NodeCtx, servers: Vec<NodeId>, client_id: u64) -> Clerk<Kv> {
        Clerk::new(ctx, servers, client_id)
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        RsmBugs::ALL.to_vec()
    }
}

impl KvClient for Clerk<Kv> {
    async fn get(&mut self, key: &str) -> String {
        match self.call(KvOp::Get { key: key.into() }).await {
            KvResult::Value(v) => v,
            other => panic!("a Get answered {other:?}"),
        }
    }

    async fn put(&mut self, key: &str, value: &str) -> KvOutput {
        written(self.call(KvOp::Put { key: key.into(), value: value.into() }).await)
    }

    async fn append(&mut self, key: &str, value: &str) -> KvOutput {
        written(self.call(KvOp::Append { key: key.into(), value: value.into() }).await)
    }
}

/// Planted bugs of the kvraft family: the service's or Raft's.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvBugs {
    pub rsm: RsmBugs,
    pub raft: RaftBugs,
}

/// The handles of the servers' live instances.
type Handles<E, S> = Rc<RefCell<Vec<Option<<E as Engine>::Handle<<S as KvService>::Server>>>>>;

/// The cluster of key/value servers, its clerks, and the recorded history, generic over the
/// replication engine beneath the servers and the service itself.
pub struct KvCluster<E: Engine = RaftEngine, S: KvService = OwnKv> {
    pub n: usize,
    pub servers: Vec<NodeId>,
    handles: Handles<E, S>,
    service: S::Config,
    pub maxraftstate: Option<usize>,
    pub rng: ChaCha8Rng,
    pub history: Recorder<KvInput, KvOutput>,
    next_clerk: u64,
    /// Every clerk's endpoint, to reconnect them all.
    clerks: Vec<NodeId>,
    /// Scenario name, for the names of the files the run attaches.
    name: &'static str,
    /// The history's `--history` attachment, made once when the run ends.
    attachment: HistoryAttachment,
}

impl KvCluster<RaftEngine> {
    /// `make_config(n, unreliable, maxraftstate)`; `maxraftstate` < 0 means never snapshot.
    pub fn new(name: &'static str, n: usize, unreliable: bool, maxraftstate: i64, bugs: KvBugs) -> KvCluster {
        let config = RaftEngine::config(n, None).with_bugs(bugs.raft);
        Self::with_engine(name, n, unreliable, maxraftstate, bugs.rsm, config)
    }
}

impl<E: Engine, S: KvService> KvCluster<E, S> {
    /// `make_config` on any engine and service, with their configurations (planted bugs).
    pub fn with_engine(
        name: &'static str,
        n: usize,
        unreliable: bool,
        maxraftstate: i64,
        service: S::Config,
        config: E::Config,
    ) -> KvCluster<E, S> {
        let maxraftstate = (maxraftstate >= 0).then_some(maxraftstate as usize);
        net::set_config(NetConfig { reliable: !unreliable, ..NET });
        let handles: Handles<E, S> = Rc::new(RefCell::new(vec![None; n]));
        let observer = Rc::new(RefCell::new(SafetyObserver::for_engine::<E>(n)));
        let first = sim::node_count();
        let servers: Vec<NodeId> = (0..n as u16).map(|i| NodeId(first + i)).collect();
        for i in 0..n {
            let handles2 = handles.clone();
            let service2 = service.clone();
            let obs: Rc<RefCell<dyn Observer>> = observer.clone();
            let spec = NodeSpec {
                me: i,
                peers: servers.clone(),
                config: config.clone(),
                observer: Some(obs),
                make_service: Rc::new(move |ctx: NodeCtx| S::server(&service2, ctx, maxraftstate)),
                on_start: Rc::new(move |h| handles2.borrow_mut()[i] = Some(h)),
            };
            let id = E::spawn(&format!("s{i}"), spec);
            assert_eq!(id, servers[i]);
        }
        observer.borrow_mut().feed_triggers::<E>(servers.clone());
        feed_clerk_trigger();
        let history = Recorder::new();
        KvCluster {
            n,
            servers,
            handles,
            service,
            maxraftstate,
            rng: sim::rng("kv-tester"),
            history: history.clone(),
            next_clerk: 0,
            clerks: Vec::new(),
            name,
            attachment: HistoryAttachment::new(name, &history),
        }
    }

    /// The same cluster, attaching its client history to the run's report when the run ends
    /// if `attach` (the scenario's `Opts::attach_history`).
    pub fn attaching_history(mut self, attach: bool) -> Self {
        self.attachment.asked = attach;
        self
    }

    /// Takes the number and the draws the next [`KvCluster::make_client`] would take,
    /// without making a clerk: a scenario file without one of the swarm's clerks leaves the
    /// others' names (`c<id>`), server orders and client ids as they were.
    pub fn skip_client(&mut self) {
        self.next_clerk += 1;
        let mut order = self.servers.clone();
        order.shuffle(&mut self.rng);
        let _: u64 = self.rng.gen();
    }

    /// Skips clerk numbers up to `id` ([`Self::skip_client`] for each), so the next clerk
    /// made is `c<id>`: a file's clerks keep the numbers of the run they came from.
    pub fn skip_clients_to(&mut self, id: u64) {
        while self.next_clerk < id {
            self.skip_client();
        }
    }

    /// `makeClient(to)`: a clerk connected to the servers `to`, which it gets in random order.
    pub fn make_client(&mut self, to: &[usize]) -> KvClerk<S::Clerk> {
        let id = self.next_clerk;
        self.next_clerk += 1;
        let ctx = sim::client(&format!("c{id}"));
        let mut order = self.servers.clone();
        order.shuffle(&mut self.rng);
        let clerk = S::clerk(&self.service, ctx, order, self.rng.gen());
        let clerk = KvClerk { clerk, node: ctx.id(), history: self.history.clone(), cli: id };
        self.clerks.push(ctx.id());
        self.connect_client(&clerk, to);
        clerk
    }

    /// `ConnectClient(ck, to)`: the clerk reaches exactly the servers `to`.
    pub fn connect_client<C>(&self, ck: &KvClerk<C>, to: &[usize]) {
        self.connect_client_node(ck.node, to);
    }

    /// `ConnectClient` for a clerk another task holds, by its endpoint.
    pub fn connect_client_node(&self, clerk: NodeId, to: &[usize]) {
        let to: Vec<NodeId> = to.iter().map(|&i| self.servers[i]).collect();
        net::connect_client(clerk, &to, &self.servers);
    }

    /// Every clerk reaches every server again (a fault such as the Raft tester's
    /// `disconnect` also cuts a server's links to clerks).
    pub fn connect_all_clients(&self) {
        let all = self.all();
        for &c in &self.clerks {
            self.connect_client_node(c, &all);
        }
    }

    /// `partition(p1, p2)`.
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        let a: Vec<NodeId> = p1.iter().map(|&i| self.servers[i]).collect();
        let b: Vec<NodeId> = p2.iter().map(|&i| self.servers[i]).collect();
        net::partition(&a, &b);
    }

    /// `ConnectAll()` over the servers.
    pub fn connect_all(&self) {
        net::heal(&self.servers);
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.n).collect()
    }

    /// `ShutdownServer(i)`: only what it persisted survives.
    pub fn shutdown_server(&self, i: usize) {
        if sim::is_alive(self.servers[i]) {
            sim::crash(self.servers[i]);
        }
        self.handles.borrow_mut()[i] = None;
    }

    /// `StartServer(i)`: a fresh instance from its persisted state and snapshot.
    pub fn start_server(&self, i: usize) {
        if !sim::is_alive(self.servers[i]) {
            sim::restart(self.servers[i]);
        }
    }

    /// `Leader()`: whether some live server believes it leads, and which.
    pub fn leader(&self) -> Option<usize> {
        (0..self.n).find(|&i| {
            sim::is_alive(self.servers[i]) && self.handles.borrow()[i].as_ref().is_some_and(|h| h.get_state().1)
        })
    }

    /// A function telling which live server believes it leads (for fault schedules).
    pub fn leader_view(&self) -> impl Fn() -> Option<usize> + 'static {
        let (handles, servers) = (self.handles.clone(), self.servers.clone());
        move || {
            (0..servers.len())
                .find(|&i| sim::is_alive(servers[i]) && handles.borrow()[i].as_ref().is_some_and(|h| h.get_state().1))
        }
    }

    /// `LogSize()`: the largest persisted Raft state.
    pub fn log_size(&self) -> usize {
        self.servers.iter().map(|&n| sim::persisted(n).state.len()).max().unwrap_or(0)
    }

    /// `SnapshotSize()`: the largest persisted snapshot.
    pub fn snapshot_size(&self) -> usize {
        self.servers.iter().map(|&n| sim::persisted(n).snapshot.len()).max().unwrap_or(0)
    }

    /// The course's per-round size checks: log ≤ 8 × maxraftstate, or no snapshot at all.
    pub fn check_sizes(&self) -> Result<(), Failure> {
        match self.maxraftstate {
            Some(max) if max > 0 => {
                let size = self.log_size();
                if size > 8 * max {
                    return Err(Failure::safety("kv::log-size", format!("logs were not trimmed ({size} > 8*{max})")));
                }
            }
            Some(_) => {}
            None => {
                let size = self.snapshot_size();
                if size > 0 {
                    return Err(Failure::safety(
                        "kv::snapshot-size",
                        format!("snapshot too large ({size}), should not be used when maxraftstate = -1"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Judges the whole history; a violation, or a history the checker cannot decide,
    /// fails the run. On a violation, the history page (with the run's crashes, partitions
    /// and leader changes as bands) is attached to the run's report and named in the failure.
    pub fn check_linearizable(&self) -> Result<(), Failure> {
        self.attachment.attach_once();
        check_history(self.name, &self.history)
    }
}

/// `kvraft__basic_3a-seed7`: the stem of the names of the files a run of `scenario`
/// attaches (its history, its history page).
pub(crate) fn file_stem(scenario: &str) -> String {
    format!("{}-seed{}", scenario.replace("::", "__"), sim::seed())
}

/// Attaches a run's key/value history in its JSON form (everything the model uses, write
/// digests and pending operations included) as `<stem>.history.json`: the command line
/// writes it, or turns it into Porcupine's key/value log, where `--history` says.
pub(crate) fn attach_history(scenario: &str, history: &Recorder<KvInput, KvOutput>) {
    let stem = file_stem(scenario);
    let history = history.history_with_times();
    let what = format!("client history of {} (JSON form)", crate::count(history.len(), "operation"));
    sim::attach(format!("{stem}.history.json"), what, json::to_json("kv", &history).into_bytes());
}

/// Judges a run's whole key/value history (partitioned by key); a violation, or a history
/// the checker cannot decide within its budgets ([`CHECK_BUDGET`] steps, the default memory
/// budget), fails the run. On a violation the history page (with the run's crashes,
/// partitions and leader changes as bands) is attached to the run's report as
/// `<scenario>-seed<N>.html` and named in the failure; the command line writes it.
pub fn check_history(name: &str, recorder: &Recorder<KvInput, KvOutput>) -> Result<(), Failure> {
    let history = recorder.history();
    let options = CheckOptions { budget: CHECK_BUDGET, ..CheckOptions::default() };
    let result = check(&KvModel, &history, &options);
    sim::note(sim::NoteCode::HistoryChecked, history.len() as u64, || {
        format!("history of {}: {}", crate::count(history.len(), "operation"), result.verdict)
    });
    match result.verdict {
        Verdict::Linearizable => Ok(()),
        Verdict::Unknown => Err(undecided(&result, history.len(), &options)),
        Verdict::NotLinearizable => {
            let annotations: Vec<Annotation> = sim::annotations()
                .into_iter()
                .map(|a| {
                    // The history's times are event positions: place the band among them,
                    // and keep the simulated times for the tooltip.
                    let end_ns = a.end_ns.unwrap_or(sim::now().as_nanos() as u64).max(a.start_ns);
                    let (start, end) = recorder.span(a.start_ns, end_ns);
                    let details = format!("simulated {} s to {} s", a.start_ns as f64 / 1e9, end_ns as f64 / 1e9);
                    let band = Annotation::new(start, end, a.label.clone()).with_details(details);
                    let band = match a.node {
                        Some(node) => band.in_row(sim::node_name(node)),
                        None => band,
                    };
                    // Crashes red, restarts green, partitions orange, leadership blue.
                    let colour = if a.label.ends_with(" down") {
                        "#ffb3b3"
                    } else if a.label.ends_with(" restart") {
                        "#c9f2c2"
                    } else if a.label.starts_with("partition") {
                        "#ffd8a8"
                    } else {
                        "#d6e4ff"
                    };
                    band.coloured(colour, "#1d1d1f")
                })
                .collect();
            let title = format!("{name} seed {}", sim::seed());
            // The page shows each operation's simulated times: the same operations, with them.
            let history = recorder.history_with_times();
            let page =
                render(&KvModel, &history, &result, &annotations, &HtmlOptions { title, ..HtmlOptions::default() });
            let what = format!("history page ({}, not linearizable)", crate::count(history.len(), "operation"));
            let name = sim::attach(format!("{}.html", file_stem(name)), what, page.into_bytes());
            // The file's name only: where the command line writes it is no part of the run.
            Err(Failure::safety(
                "linearizability",
                format!(
                    "history of {} is not linearizable; picture attached as {name}",
                    crate::count(history.len(), "operation")
                ),
            ))
        }
    }
}

/// The failure of a run whose history of `len` operations the checker left undecided: a
/// memory budget that ran out has a message of its own (a sweep shows which budget to raise,
/// and that the checker stopped rather than take the machine), a step budget another.
pub fn undecided(result: &CheckResult, len: usize, options: &CheckOptions) -> Failure {
    debug_assert_eq!(result.verdict, Verdict::Unknown);
    let message = match result.unknown_reason {
        Some(UnknownReason::MemoryExhausted) => format!(
            "the history of {len} operations was undecided within the checker's memory budget of {} MiB (the search stopped, deterministically, rather than take more)",
            options.memory_limit >> 20
        ),
        _ => format!("the history of {len} operations was undecided within {} search steps", result.budget),
    };
    Failure::safety("linearizability", message)
}

/// A run's key/value history as `--history` asks for it: attached once, at the final check
/// or, for a run that ends before it (another check failed, the world stopped), when the
/// cluster owning this is dropped. Destructors run with the world still installed
/// (`sim::run` drops the run's tasks before it takes the world down). The key/value, sharded
/// and primary/backup clusters each own one.
pub(crate) struct HistoryAttachment {
    scenario: &'static str,
    history: Recorder<KvInput, KvOutput>,
    /// Whether `--history` asked for it (`Opts::attach_history`).
    pub(crate) asked: bool,
    attached: Cell<bool>,
}

impl HistoryAttachment {
    /// Not asked for yet: set [`HistoryAttachment::asked`] to attach `history`.
    pub(crate) fn new(scenario: &'static str, history: &Recorder<KvInput, KvOutput>) -> Self {
        HistoryAttachment { scenario, history: history.clone(), asked: false, attached: Cell::new(false) }
    }

    /// Attaches the history in its JSON form ([`attach_history`]) if asked and not yet done.
    pub(crate) fn attach_once(&self) {
        if self.asked && !self.attached.replace(true) {
            attach_history(self.scenario, &self.history);
        }
    }
}

impl Drop for HistoryAttachment {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.attach_once();
        }
    }
}

/// Lets fault point `clerk.late_duplicate` hold its copies: registers the clerks' release
/// trigger (`nodes::rsm::CLERK_ANSWERED`, which every clerk reports when an operation of its
/// is answered). A point enabled where nothing registered it is never reached.
pub(crate) fn feed_clerk_trigger() {
    sim::net::register_triggers(&[nodes::rsm::CLERK_ANSWERED]);
    sim::set_fault_point_release(sim::FaultPoint::LateDuplicate, nodes::rsm::CLERK_ANSWERED);
}

/// A clerk whose calls may be recorded in the cluster's history.
pub struct KvClerk<C = Clerk<Kv>> {
    pub clerk: C,
    /// The clerk's endpoint (for `ConnectClient`).
    pub node: NodeId,
    history: Recorder<KvInput, KvOutput>,
    /// The history's client id for this clerk's calls (the course's `cli`): its number in
    /// the run (`c<id>`) unless a scenario sets the course's own; the history refuses two
    /// concurrent operations of one client.
    pub cli: u64,
}

impl<C: KvClient> KvClerk<C> {
    /// Get, recorded.
    pub async fn get(&mut self, key: &str) -> String {
        record_get(&self.history, self.cli, &mut self.clerk, key).await
    }

    /// Put, recorded with what the clerk returned (simlab's server reports the previous
    /// value's length and digest, which the checker verifies).
    pub async fn put(&mut self, key: &str, value: &str) {
        record_put(&self.history, self.cli, &mut self.clerk, key, value).await
    }

    /// Append, recorded with what the clerk returned.
    pub async fn append(&mut self, key: &str, value: &str) {
        record_append(&self.history, self.cli, &mut self.clerk, key, value).await
    }
}

/// `clerk.get(key)`, recorded in `history` as client `cli`'s call: the recording every
/// recorded clerk shares (this family's and the sharded service's).
pub(crate) async fn record_get<C: KvClient>(
    history: &Recorder<KvInput, KvOutput>,
    cli: u64,
    clerk: &mut C,
    key: &str,
) -> String {
    let op = history.call(cli, KvInput::get(key));
    let v = clerk.get(key).await;
    history.ret(op, KvOutput::value(v.clone()));
    v
}

/// `clerk.put(key, value)`, recorded with what the clerk returned.
pub(crate) async fn record_put<C: KvClient>(
    history: &Recorder<KvInput, KvOutput>,
    cli: u64,
    clerk: &mut C,
    key: &str,
    value: &str,
) {
    let op = history.call(cli, KvInput::put(key, value));
    let r = clerk.put(key, value).await;
    history.ret(op, r);
}

/// `clerk.append(key, value)`, recorded with what the clerk returned.
pub(crate) async fn record_append<C: KvClient>(
    history: &Recorder<KvInput, KvOutput>,
    cli: u64,
    clerk: &mut C,
    key: &str,
    value: &str,
) {
    let op = history.call(cli, KvInput::append(key, value));
    let r = clerk.append(key, value).await;
    history.ret(op, r);
}

/// What a write's answer from simlab's state machine becomes in the history: the length and
/// digest of the value it replaced (a `Value` answer to a write is a harness bug).
pub(crate) fn written(r: KvResult) -> KvOutput {
    match r {
        KvResult::Wrote { prev_len, prev_digest } => KvOutput::Wrote { prev_len, prev_digest },
        KvResult::Value(v) => panic!("a write answered a value {v:?}"),
    }
}

/// `check(cfg, ck, key, value)`: a Get must return exactly `value`.
pub async fn check_get<C: KvClient>(ck: &mut KvClerk<C>, key: &str, value: &str) -> Result<(), Failure> {
    let v = ck.get(key).await;
    if v != value {
        return Err(Failure::safety("kv::get", format!("get({key:?}): expected {value:?}, received {v:?}")));
    }
    Ok(())
}

/// `checkClntAppends(clnt, v, count)`: each of the client's `count` appends appears in `v`
/// exactly once, in order.
///
/// The course looks each element up with two string searches, O(count × |v|) — 6 % of the
/// kvraft set's instructions. Here one pass finds every element: each occurrence of
/// `x <clnt> <j> y` starts with an occurrence of `x <clnt> `, which cannot overlap another
/// (it has no border: it starts with `x` and holds no other), so scanning those and reading
/// the number after each gives exactly the first and last occurrence of every element.
pub fn check_clnt_appends(clnt: usize, v: &str, count: usize) -> Result<(), Failure> {
    let prefix = format!("x {clnt} ");
    // (first, last) offset of each element below `count`.
    let mut seen: Vec<Option<(usize, usize)>> = vec![None; count];
    for (at, _) in v.match_indices(&prefix) {
        let rest = &v.as_bytes()[at + prefix.len()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        // Element j is written in decimal without leading zeros, then " y".
        if digits == 0 || (digits > 1 && rest[0] == b'0') || !rest[digits..].starts_with(b" y") {
            continue;
        }
        let Ok(j) = std::str::from_utf8(&rest[..digits]).expect("ASCII digits").parse::<usize>() else { continue };
        if let Some(slot) = seen.get_mut(j) {
            *slot = Some(slot.map_or((at, at), |(first, _)| (first, at)));
        }
    }
    let mut last: Option<usize> = None;
    for (j, slot) in seen.iter().enumerate() {
        let wanted = || format!("x {clnt} {j} y");
        let Some((off, last_off)) = *slot else {
            return Err(Failure::safety(
                "kv::appends",
                format!("{clnt} missing element {:?} in Append result", wanted()),
            ));
        };
        if last_off != off {
            return Err(Failure::safety("kv::appends", format!("duplicate element {:?} in Append result", wanted())));
        }
        if last.is_some_and(|l| off <= l) {
            return Err(Failure::safety(
                "kv::appends",
                format!("wrong order for element {:?} in Append result", wanted()),
            ));
        }
        last = Some(off);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::linearizability::{History, Operation};

    /// The course's check, two searches per element.
    fn naive(clnt: usize, v: &str, count: usize) -> Result<(), String> {
        let mut last: Option<usize> = None;
        for j in 0..count {
            let wanted = format!("x {clnt} {j} y");
            let Some(off) = v.find(&wanted) else {
                return Err(format!("{clnt} missing element {wanted:?} in Append result"));
            };
            if v.rfind(&wanted) != Some(off) {
                return Err(format!("duplicate element {wanted:?} in Append result"));
            }
            if last.is_some_and(|l| off <= l) {
                return Err(format!("wrong order for element {wanted:?} in Append result"));
            }
            last = Some(off);
        }
        Ok(())
    }

    #[test]
    fn one_pass_agrees_with_the_courses_searches() {
        let cases = [
            "",
            "x 1 0 yx 1 1 yx 1 2 y",
            "x 1 0 yx 1 2 yx 1 1 y",
            "x 1 0 yx 1 1 yx 1 0 y",
            "x 1 0 yx 2 1 yx 1 2 y",
            "x 1 00 yx 1 0 yx 1 1 y",
            "x 1 x 1 0 yx 1 1 y",
            "x 11 0 yx 1 0 yx 1 1 y",
            "x 1 0 yx 1 1x 1 1 y",
            "x 1 0 yx 1 10 yx 1 1 y",
            "x 1 0 yx 1 1 yyx 1 2 y x 1 3 y",
            "x 1 0 yx 1 18446744073709551616 yx 1 1 y",
        ];
        for v in cases {
            for count in 0..5 {
                let fast = check_clnt_appends(1, v, count).map_err(|f| f.message);
                assert_eq!(fast, naive(1, v, count), "{v:?} count {count}");
            }
        }
    }

    /// Twelve overlapping appends to one key that a final read orders in no possible way:
    /// the search keeps new configurations until a budget stops it.
    fn explosive() -> History<KvInput, KvOutput> {
        let mut ops: Vec<_> =
            (0..12).map(|i| Operation::new(i, KvInput::append("k", format!("<{i}>")), 0, KvOutput::Ack, 100)).collect();
        ops.push(Operation::new(99, KvInput::get("k"), 200, KvOutput::value("none of them"), 201));
        History::new(ops).unwrap()
    }

    #[test]
    fn an_exhausted_memory_budget_fails_the_run_with_its_own_message() {
        let options = CheckOptions { budget: u64::MAX, memory_limit: 4 << 20, ..CheckOptions::default() };
        let result = check(&KvModel, &explosive(), &options);
        assert_eq!(result.unknown_reason, Some(UnknownReason::MemoryExhausted));
        let f = undecided(&result, 13, &options);
        assert_eq!(f.checker, "linearizability");
        assert!(f.message.contains("memory budget of 4 MiB"), "{}", f.message);
        // Deterministic: the same history and budgets give the same failure.
        assert_eq!(undecided(&check(&KvModel, &explosive(), &options), 13, &options).message, f.message);
        // A step budget that runs out first says so instead.
        let steps = CheckOptions { budget: 1_000, ..options };
        let result = check(&KvModel, &explosive(), &steps);
        assert_eq!(result.unknown_reason, Some(UnknownReason::BudgetExhausted));
        assert!(undecided(&result, 13, &steps).message.contains("within 1000 search steps"));
    }
}
