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
use checkers::html::{render, Annotation, HtmlOptions};
use checkers::linearizability::{check, CheckOptions, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use cores::kv::{Kv, KvOp, KvResult};
use cores::raft::Bugs as RaftBugs;
use cores::rsm::RsmBugs;
use nodes::replica::{Engine, NodeSpec, Observer, ReplicaHandle};
use nodes::rsm::{Clerk, RsmServer};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::history::Recorder;
use sim::{net, Failure, NetConfig, NodeCtx, NodeId};
use std::cell::RefCell;
use std::path::PathBuf;
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
/// unknown verdict is a failure here, so it is generous.
pub const CHECK_BUDGET: u64 = 200_000_000;

pub type KvServer = RsmServer<Kv>;

/// Planted bugs of the kvraft family: the service's or Raft's.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvBugs {
    pub rsm: RsmBugs,
    pub raft: RaftBugs,
}

/// The handles of the servers' live instances.
type Handles<E> = Rc<RefCell<Vec<Option<<E as Engine>::Handle<KvServer>>>>>;

/// The cluster of key/value servers, its clerks, and the recorded history, generic over the
/// replication engine beneath the servers.
pub struct KvCluster<E: Engine = RaftEngine> {
    pub n: usize,
    pub servers: Vec<NodeId>,
    handles: Handles<E>,
    pub maxraftstate: Option<usize>,
    pub rng: ChaCha8Rng,
    pub history: Recorder<KvInput, KvOutput>,
    next_clerk: u64,
    /// Every clerk's endpoint, to reconnect them all.
    clerks: Vec<NodeId>,
    /// Scenario name, for the history page's file name.
    name: &'static str,
}

impl KvCluster<RaftEngine> {
    /// `make_config(n, unreliable, maxraftstate)`; `maxraftstate` < 0 means never snapshot.
    pub fn new(name: &'static str, n: usize, unreliable: bool, maxraftstate: i64, bugs: KvBugs) -> KvCluster {
        let config = RaftEngine::config(n, None).with_bugs(bugs.raft);
        Self::with_engine(name, n, unreliable, maxraftstate, bugs.rsm, config)
    }
}

impl<E: Engine> KvCluster<E> {
    /// `make_config` on any engine, with its configuration and the service's planted bugs.
    pub fn with_engine(
        name: &'static str,
        n: usize,
        unreliable: bool,
        maxraftstate: i64,
        rsm_bugs: RsmBugs,
        config: E::Config,
    ) -> KvCluster<E> {
        let maxraftstate = (maxraftstate >= 0).then_some(maxraftstate as usize);
        net::set_config(NetConfig { reliable: !unreliable, ..NET });
        let handles: Handles<E> = Rc::new(RefCell::new(vec![None; n]));
        let observer = Rc::new(RefCell::new(SafetyObserver::for_engine::<E>(n)));
        let first = sim::node_count();
        let servers: Vec<NodeId> = (0..n as u16).map(|i| NodeId(first + i)).collect();
        for i in 0..n {
            let handles2 = handles.clone();
            let obs: Rc<RefCell<dyn Observer>> = observer.clone();
            let spec = NodeSpec {
                me: i,
                peers: servers.clone(),
                config: config.clone(),
                observer: Some(obs),
                make_service: Rc::new(move |ctx: NodeCtx| KvServer::new(ctx, maxraftstate, rsm_bugs)),
                on_start: Rc::new(move |h| handles2.borrow_mut()[i] = Some(h)),
            };
            let id = E::spawn(&format!("s{i}"), spec);
            assert_eq!(id, servers[i]);
        }
        KvCluster {
            n,
            servers,
            handles,
            maxraftstate,
            rng: sim::rng("kv-tester"),
            history: Recorder::new(),
            next_clerk: 0,
            clerks: Vec::new(),
            name,
        }
    }

    /// `makeClient(to)`: a clerk connected to the servers `to`, which it gets in random order.
    pub fn make_client(&mut self, to: &[usize]) -> KvClerk {
        let id = self.next_clerk;
        self.next_clerk += 1;
        let ctx = sim::client(&format!("c{id}"));
        let mut order = self.servers.clone();
        order.shuffle(&mut self.rng);
        let clerk = KvClerk { clerk: Clerk::new(ctx, order, self.rng.gen()), history: self.history.clone(), cli: 0 };
        self.clerks.push(ctx.id());
        self.connect_client(&clerk, to);
        clerk
    }

    /// `ConnectClient(ck, to)`: the clerk reaches exactly the servers `to`.
    pub fn connect_client(&self, ck: &KvClerk, to: &[usize]) {
        self.connect_client_node(ck.clerk.node(), to);
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
    /// and leader changes as bands) is written and its path given in the failure.
    pub fn check_linearizable(&self) -> Result<(), Failure> {
        let history = self.history.history();
        let options = CheckOptions { budget: CHECK_BUDGET, ..CheckOptions::default() };
        let result = check(&KvModel, &history, &options);
        sim::note(sim::NoteCode::HistoryChecked, history.len() as u64, || {
            format!("history of {} operations: {}", history.len(), result.verdict)
        });
        match result.verdict {
            Verdict::Linearizable => Ok(()),
            Verdict::Unknown => Err(Failure::safety(
                "linearizability",
                format!(
                    "the history of {} operations was undecided within {} search steps",
                    history.len(),
                    result.budget
                ),
            )),
            Verdict::NotLinearizable => {
                let annotations: Vec<Annotation> = sim::annotations()
                    .into_iter()
                    .map(|a| Annotation {
                        start: a.start_ns,
                        end: a.end_ns.unwrap_or(sim::now().as_nanos() as u64).max(a.start_ns),
                        label: a.label,
                        row: a.node.map(sim::node_name),
                    })
                    .collect();
                let title = format!("{} seed {}", self.name, sim::seed());
                let page =
                    render(&KvModel, &history, &result, &annotations, &HtmlOptions { title, ..HtmlOptions::default() });
                let where_ = write_page(self.name, &page);
                Err(Failure::safety(
                    "linearizability",
                    format!("history of {} operations is not linearizable; picture: {where_}", history.len()),
                ))
            }
        }
    }
}

/// Writes a history page under `target/sim-histories/` (or `$SIMLAB_HISTORY_DIR`).
// The one environment read left inside a run; it goes when the page becomes a run attachment.
#[allow(clippy::disallowed_methods)]
fn write_page(name: &str, page: &str) -> String {
    let dir = std::env::var_os("SIMLAB_HISTORY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sim-histories"));
    let path = dir.join(format!("{}-seed{}.html", name.replace("::", "__"), sim::seed()));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, page)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(could not write {}: {e})", path.display()),
    }
}

/// A clerk whose calls may be recorded in the cluster's history.
pub struct KvClerk {
    pub clerk: Clerk<Kv>,
    history: Recorder<KvInput, KvOutput>,
    /// The history's client id for this clerk's calls (the course's `cli`).
    pub cli: u64,
}

impl KvClerk {
    /// Get, recorded.
    pub async fn get(&mut self, key: &str) -> String {
        let op = self.history.call(self.cli, KvInput::get(key));
        let v = match self.clerk.call(KvOp::Get { key: key.into() }).await {
            KvResult::Value(v) => v,
            other => panic!("a Get answered {other:?}"),
        };
        self.history.ret(op, KvOutput::value(v.clone()));
        v
    }

    /// Put, recorded with what it replaced (the server reports the previous value's length
    /// and digest, which the checker verifies).
    pub async fn put(&mut self, key: &str, value: &str) {
        let op = self.history.call(self.cli, KvInput::put(key, value));
        let r = self.clerk.call(KvOp::Put { key: key.into(), value: value.into() }).await;
        self.history.ret(op, written(r));
    }

    /// Append, recorded with what it extended.
    pub async fn append(&mut self, key: &str, value: &str) {
        let op = self.history.call(self.cli, KvInput::append(key, value));
        let r = self.clerk.call(KvOp::Append { key: key.into(), value: value.into() }).await;
        self.history.ret(op, written(r));
    }
}

fn written(r: KvResult) -> KvOutput {
    match r {
        KvResult::Wrote { prev_len, prev_digest } => KvOutput::Wrote { prev_len, prev_digest },
        KvResult::Value(v) => panic!("a write answered a value {v:?}"),
    }
}

/// `check(cfg, ck, key, value)`: a Get must return exactly `value`.
pub async fn check_get(ck: &mut KvClerk, key: &str, value: &str) -> Result<(), Failure> {
    let v = ck.get(key).await;
    if v != value {
        return Err(Failure::safety("kv::get", format!("get({key:?}): expected {value:?}, received {v:?}")));
    }
    Ok(())
}

/// `checkClntAppends(clnt, v, count)`: each of the client's `count` appends appears in `v`
/// exactly once, in order.
pub fn check_clnt_appends(clnt: usize, v: &str, count: usize) -> Result<(), Failure> {
    let mut last: Option<usize> = None;
    for j in 0..count {
        let wanted = format!("x {clnt} {j} y");
        let Some(off) = v.find(&wanted) else {
            return Err(Failure::safety("kv::appends", format!("{clnt} missing element {wanted:?} in Append result")));
        };
        if v.rfind(&wanted) != Some(off) {
            return Err(Failure::safety("kv::appends", format!("duplicate element {wanted:?} in Append result")));
        }
        if last.is_some_and(|l| off <= l) {
            return Err(Failure::safety("kv::appends", format!("wrong order for element {wanted:?} in Append result")));
        }
        last = Some(off);
    }
    Ok(())
}
