//! The Raft tester: a port of the course's `raft/config.go` onto the simulated world.
//!
//! Same servers, same faults, same timings: `one` (10 s to agree, 2 s per attempt, 20 ms
//! polls), `check_one_leader` (10 rounds of 450–549 ms), `wait` (10 ms doubling polls), the
//! applier's checks on every applied message (plain and snapshotting), `crash1`/`start1`
//! (crash keeps exactly what was persisted; restart rebuilds from it), and the network in
//! the Raft tester's style (long delays on; a disconnected server is isolated).
//! Every server also reports each step to the run's safety checker.

use super::observer::SafetyObserver;
use cores::raft::{ApplyMsg, Bugs, Config, Raft};
use nodes::replica::{CoreEngine, Engine, NodeSpec, Observer, ReplicaHandle, Service, ServiceApi};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::{net, Failure, NodeCtx, NodeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The tests' `RaftElectionTimeout`.
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);
/// The tester's service snapshots when (index + 1) is a multiple of this (2D).
pub const SNAPSHOT_INTERVAL: u64 = 10;
/// 2D's bound on every server's persisted Raft state.
pub const MAX_LOG_SIZE: usize = 2000;

/// A tester command: opaque bytes (the course uses ints and strings).
pub type Cmd = Vec<u8>;

/// The course's integer commands, as 8 bytes.
pub fn int_cmd(x: u64) -> Cmd {
    x.to_le_bytes().to_vec()
}

/// One server's applied commands by index (the course's `logs[i]`), kept dense: the
/// tester looks an index up in every server's record for every command applied.
#[derive(Clone, Debug, Default)]
pub struct AppliedLog(Vec<Option<Cmd>>);

impl AppliedLog {
    /// The command applied at `index`, if this server applied one there.
    pub fn get(&self, index: u64) -> Option<&Cmd> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.0.get(i)?.as_ref()
    }

    fn insert(&mut self, index: u64, cmd: Cmd) {
        let i = index as usize - 1;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(cmd);
    }

    /// A record holding exactly `cmds` at indexes 1, 2, … (a snapshot's contents).
    fn from_commands(cmds: Vec<Cmd>) -> AppliedLog {
        AppliedLog(cmds.into_iter().map(Some).collect())
    }
}

/// What the appliers of all servers recorded, shared by the whole cluster. The plain
/// applier's records survive restarts, as the course's `logs[i]` do.
#[derive(Default)]
pub struct ApplyLogs {
    pub logs: Vec<AppliedLog>,
    pub last_applied: Vec<u64>,
    pub max_index: u64,
    /// Each server's service snapshots when (index + 1) is a multiple of its interval (the
    /// course: 10 for all; a swarm varies it, so snapshots fall at different indexes).
    pub snapshot_every: Vec<u64>,
}

/// The course's applier (`applier` / `applierSnap`): checks every applied message against
/// every server's record and, with snapshots on, snapshots every 10 entries.
pub struct Applier {
    me: usize,
    logs: Rc<RefCell<ApplyLogs>>,
    snapshots: bool,
}

fn fail(checker: &str, msg: String) {
    sim::fail(Failure::safety(checker, msg));
}

impl Applier {
    fn ingest_snapshot(&mut self, index: u64, data: &[u8]) {
        let (embedded, cmds): (u64, Vec<Cmd>) = sim::decode(data);
        if embedded != index {
            fail(
                "raft::apply",
                format!("server {} snapshot doesn't match m.SnapshotIndex ({embedded} != {index})", self.me),
            );
            return;
        }
        let mut l = self.logs.borrow_mut();
        l.logs[self.me] = AppliedLog::from_commands(cmds);
        l.last_applied[self.me] = index;
    }
}

impl Service for Applier {
    type Request = ();
    type Reply = ();

    fn restore(&mut self, snapshot: &[u8]) {
        if self.snapshots {
            self.logs.borrow_mut().last_applied[self.me] = 0;
            if !snapshot.is_empty() {
                // The tester ingests a restarted server's snapshot before it applies anything.
                let (index, _): (u64, Vec<Cmd>) = sim::decode(snapshot);
                self.ingest_snapshot(index, snapshot);
            }
        }
    }

    fn apply(&mut self, _api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        let me = self.me;
        match msg {
            ApplyMsg::Command { index, command, .. } => {
                let k = *index;
                let mut l = self.logs.borrow_mut();
                let clash = l
                    .logs
                    .iter()
                    .enumerate()
                    .find_map(|(j, log)| log.get(k).filter(|old| *old != command).map(|old| (j, show(old))));
                if let Some((j, old)) = clash {
                    drop(l);
                    fail("raft::apply", format!("commit index={k} server={me} {} != server={j} {old}", show(command)));
                    return None;
                }
                if self.snapshots {
                    if k != l.last_applied[me] + 1 {
                        let expected = l.last_applied[me] + 1;
                        drop(l);
                        fail(
                            "raft::apply",
                            format!("server {me} apply out of order, expected index {expected}, got {k}"),
                        );
                        return None;
                    }
                } else if k > 1 && l.logs[me].get(k - 1).is_none() {
                    drop(l);
                    fail("raft::apply", format!("server {me} apply out of order {k}"));
                    return None;
                }
                l.logs[me].insert(k, command.clone());
                l.last_applied[me] = k;
                l.max_index = l.max_index.max(k);
                if self.snapshots && (k + 1) % l.snapshot_every[me] == 0 {
                    let cmds: Vec<Cmd> = (1..=k).map(|i| l.logs[me].get(i).cloned().unwrap_or_default()).collect();
                    return Some(sim::encode(&(k, cmds)));
                }
                None
            }
            ApplyMsg::Snapshot { index, data, .. } => {
                if self.snapshots {
                    self.ingest_snapshot(*index, data);
                }
                None
            }
        }
    }
}

/// This project's Raft core, run by the replica shell: the engine the course's Raft tests run
/// on unless a scenario names another.
pub type RaftEngine = CoreEngine<Raft>;

/// The handles of a cluster's live instances, by server.
type Handles<E> = Rc<RefCell<Vec<Option<<E as Engine>::Handle<Applier>>>>>;

/// The tester's cluster of servers, generic over the replication engine (the course's tests
/// name Raft; any engine behind the seam runs them).
pub struct Cluster<E: Engine = RaftEngine> {
    pub n: usize,
    pub nodes: Vec<NodeId>,
    handles: Handles<E>,
    pub logs: Rc<RefCell<ApplyLogs>>,
    pub rng: ChaCha8Rng,
    pub observer: Rc<RefCell<SafetyObserver>>,
}

impl Cluster<RaftEngine> {
    /// The course's `make_config(n, unreliable, snapshot)`: n servers, long delays on, all
    /// connected.
    pub fn new(n: usize, unreliable: bool, snapshots: bool, bugs: Bugs) -> Cluster {
        Self::with_config(n, unreliable, snapshots, Config::new(0, n, 0).with_bugs(bugs))
    }

    /// As [`Cluster::new`], with a whole Raft configuration (timeouts, planted bugs).
    pub fn with_config(n: usize, unreliable: bool, snapshots: bool, config: Config) -> Cluster {
        Self::with_engine(n, unreliable, snapshots, config)
    }
}

impl<E: crate::engine::TestEngine> Cluster<E> {
    /// `make_config` for a course scenario on engine `E`, with the run's planted bug.
    pub fn for_test(n: usize, unreliable: bool, snapshots: bool, opts: &crate::registry::Opts) -> Cluster<E> {
        Self::with_engine(n, unreliable, snapshots, E::config(n, opts.bug.as_deref()))
    }
}

impl<E: Engine> Cluster<E> {
    /// `make_config` for any engine, with its configuration.
    pub fn with_engine(n: usize, unreliable: bool, snapshots: bool, config: E::Config) -> Cluster<E> {
        let logs = Rc::new(RefCell::new(ApplyLogs {
            logs: vec![AppliedLog::default(); n],
            last_applied: vec![0; n],
            max_index: 0,
            snapshot_every: vec![SNAPSHOT_INTERVAL; n],
        }));
        let handles: Handles<E> = Rc::new(RefCell::new(vec![None; n]));
        let observer = Rc::new(RefCell::new(SafetyObserver::for_engine::<E>(n)));
        net::set_long_delays(true);
        net::set_reliable(!unreliable);
        // Names first, so every server knows its peers before any starts.
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let nodes: Vec<NodeId> = (0..n as u16).map(|i| NodeId(sim::node_count() + i)).collect();
        for (i, name) in names.iter().enumerate() {
            let (logs2, handles2) = (logs.clone(), handles.clone());
            let obs: Rc<RefCell<dyn Observer>> = observer.clone();
            let spec = NodeSpec {
                me: i,
                peers: nodes.clone(),
                config: config.clone(),
                observer: Some(obs),
                make_service: Rc::new(move |_ctx: NodeCtx| Applier { me: i, logs: logs2.clone(), snapshots }),
                on_start: Rc::new(move |h| handles2.borrow_mut()[i] = Some(h)),
            };
            let id = E::spawn(name, spec);
            assert_eq!(id, nodes[i], "servers get consecutive node ids");
        }
        observer.borrow_mut().feed_triggers::<E>(nodes.clone());
        Cluster { n, nodes, handles, logs, rng: sim::rng("raft-tester"), observer }
    }

    fn handle(&self, i: usize) -> Option<E::Handle<Applier>> {
        if sim::is_alive(self.nodes[i]) {
            self.handles.borrow()[i].clone()
        } else {
            None
        }
    }

    pub fn connected(&self, i: usize) -> bool {
        net::is_connected(self.nodes[i])
    }

    pub fn alive(&self, i: usize) -> bool {
        sim::is_alive(self.nodes[i])
    }

    /// The Raft tester's `disconnect(i)`.
    pub fn disconnect(&self, i: usize) {
        net::disconnect(self.nodes[i]);
    }

    /// The Raft tester's `connect(i)`.
    pub fn connect(&self, i: usize) {
        net::connect(self.nodes[i]);
    }

    /// `crash1(i)`: disconnect, then kill; only what was persisted survives.
    pub fn crash1(&self, i: usize) {
        self.disconnect(i);
        if self.alive(i) {
            sim::crash(self.nodes[i]);
        }
        self.handles.borrow_mut()[i] = None;
    }

    /// `start1(i)`: a fresh instance from the persisted state (crashing a live one first).
    /// Like the course, it does not reconnect the server.
    pub fn start1(&self, i: usize) {
        if self.alive(i) {
            self.crash1(i);
        }
        sim::restart(self.nodes[i]);
    }

    /// Crashes every server, then restarts and reconnects each from what it persisted.
    pub fn crash_and_restart_all(&self) {
        for i in 0..self.n {
            self.crash1(i);
        }
        for i in 0..self.n {
            self.start1(i);
            self.connect(i);
        }
    }

    /// Start(cmd) on server i: (index, term, is_leader).
    pub fn start(&self, i: usize, cmd: Cmd) -> (u64, u64, bool) {
        match self.handle(i) {
            Some(h) => h.start(cmd),
            None => (0, 0, false),
        }
    }

    /// GetState() on server i.
    pub fn get_state(&self, i: usize) -> (u64, bool) {
        self.handle(i).map(|h| h.get_state()).unwrap_or((0, false))
    }

    /// labrpc's count of RPCs dispatched at server i.
    pub fn rpc_count(&self, i: usize) -> u64 {
        net::rpc_count(self.nodes[i])
    }

    /// The largest persisted Raft state over all servers.
    pub fn log_size(&self) -> usize {
        self.nodes.iter().map(|&n| sim::persisted(n).state.len()).max().unwrap_or(0)
    }

    pub fn max_index(&self) -> u64 {
        self.logs.borrow().max_index
    }

    /// `checkOneLeader()`: up to 10 rounds of 450–549 ms; fails if a term has two leaders
    /// among connected servers, or if no leader appears.
    pub async fn check_one_leader(&mut self) -> Result<usize, Failure> {
        for _ in 0..10 {
            let ms = 450 + self.rng.gen_range(0..100);
            sim::sleep(Duration::from_millis(ms)).await;
            let mut leaders: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n {
                if self.connected(i) {
                    let (term, leader) = self.get_state(i);
                    if leader {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    return Err(Failure::safety(
                        "raft::one-leader",
                        format!("term {term} has {} (>1) leaders", ls.len()),
                    ));
                }
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return Ok(ls[0]);
            }
        }
        Err(Failure::liveness("raft::one-leader", "expected one leader, got none"))
    }

    /// `checkTerms()`: every connected server reports the same term.
    pub fn check_terms(&self) -> Result<u64, Failure> {
        let mut term = None;
        for i in 0..self.n {
            if self.connected(i) {
                let (t, _) = self.get_state(i);
                match term {
                    None => term = Some(t),
                    Some(x) if x != t => return Err(Failure::safety("raft::terms", "servers disagree on term")),
                    _ => {}
                }
            }
        }
        Ok(term.unwrap_or(0))
    }

    /// `checkNoLeader()`: no connected server claims leadership.
    pub fn check_no_leader(&self) -> Result<(), Failure> {
        for i in 0..self.n {
            if self.connected(i) && self.get_state(i).1 {
                return Err(Failure::safety(
                    "raft::no-leader",
                    format!("expected no leader among connected servers, but {i} claims to be leader"),
                ));
            }
        }
        Ok(())
    }

    /// `nCommitted(index)`: how many servers applied index, and the command.
    pub fn n_committed(&self, index: u64) -> Result<(usize, Option<Cmd>), Failure> {
        let l = self.logs.borrow();
        let mut count = 0;
        let mut cmd: Option<&Cmd> = None;
        for log in &l.logs {
            if let Some(c) = log.get(index) {
                if let Some(prev) = cmd {
                    if prev != c {
                        return Err(Failure::safety(
                            "raft::committed",
                            format!("committed values do not match: index {index}, {prev:?}, {c:?}"),
                        ));
                    }
                }
                count += 1;
                cmd = Some(c);
            }
        }
        Ok((count, cmd.cloned()))
    }

    /// `wait(index, n, startTerm)`: polls with doubling sleeps; `Ok(None)` if some server
    /// moved past `start_term` ("someone moved on").
    pub async fn wait(&self, index: u64, n: usize, start_term: Option<u64>) -> Result<Option<Cmd>, Failure> {
        let mut to = Duration::from_millis(10);
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index)?;
            if nd >= n {
                break;
            }
            sim::sleep(to).await;
            if to < Duration::from_secs(1) {
                to *= 2;
            }
            if let Some(st) = start_term {
                for i in 0..self.n {
                    if self.get_state(i).0 > st {
                        return Ok(None);
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index)?;
        if nd < n {
            return Err(Failure::liveness("raft::wait", format!("only {nd} decided for index {index}; wanted {n}")));
        }
        Ok(cmd)
    }

    /// `one(cmd, expectedServers, retry)`: submit to whichever connected server accepts and
    /// wait for `expected` servers to apply it; 10 s in all, 2 s per attempt.
    pub async fn one(&self, cmd: Cmd, expected: usize, retry: bool) -> Result<u64, Failure> {
        let t0 = sim::now();
        let mut starts = 0;
        while sim::now() - t0 < Duration::from_secs(10) {
            let mut index = None;
            for _ in 0..self.n {
                starts = (starts + 1) % self.n;
                if self.connected(starts) && self.alive(starts) {
                    let (i, _, ok) = self.start(starts, cmd.clone());
                    if ok {
                        index = Some(i);
                        break;
                    }
                }
            }
            if let Some(index) = index {
                let t1 = sim::now();
                while sim::now() - t1 < Duration::from_secs(2) {
                    let (nd, got) = self.n_committed(index)?;
                    if nd > 0 && nd >= expected && got.as_ref() == Some(&cmd) {
                        return Ok(index);
                    }
                    sim::sleep(Duration::from_millis(20)).await;
                }
                if !retry {
                    return Err(Failure::liveness(
                        "raft::agreement",
                        format!("one({}) failed to reach agreement", show(&cmd)),
                    ));
                }
            } else {
                sim::sleep(Duration::from_millis(50)).await;
            }
        }
        Err(Failure::liveness("raft::agreement", format!("one({}) failed to reach agreement", show(&cmd))))
    }

    /// A random integer command, as the tests' `rand.Int()`.
    pub fn rand_cmd(&mut self) -> Cmd {
        int_cmd(self.rng.gen::<u32>() as u64)
    }

    /// Another handle on the same cluster for a concurrent tester task (the course's
    /// goroutines share one `cfg`): same servers, records and checker; its own random
    /// stream `label`, so the tester's stream is not shared between tasks.
    pub fn share(&self, label: &str) -> Cluster<E> {
        Cluster {
            n: self.n,
            nodes: self.nodes.clone(),
            handles: self.handles.clone(),
            logs: self.logs.clone(),
            rng: sim::rng(label),
            observer: self.observer.clone(),
        }
    }

    /// labrpc's `GetTotalBytes()` (the course's `bytesTotal()`).
    pub fn bytes_total(&self) -> u64 {
        net::bytes_total()
    }

    /// labrpc's `GetTotalCount()` (the course's `rpcTotal()`).
    pub fn rpc_total(&self) -> u64 {
        net::rpc_total()
    }
}

/// A short human form of a command for messages.
pub fn show(cmd: &[u8]) -> String {
    if cmd.len() == 8 {
        u64::from_le_bytes(cmd.try_into().unwrap()).to_string()
    } else {
        format!("<{} bytes>", cmd.len())
    }
}

/// Fails with a safety violation unless `cond`.
pub fn ensure(cond: bool, checker: &str, msg: impl FnOnce() -> String) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::safety(checker, msg()))
    }
}

/// A cheap view of the cluster's live servers, for tasks that run beside the tester
/// (fault schedules resolving "the leader", proposers).
pub struct Roles<E: Engine = RaftEngine> {
    nodes: Vec<NodeId>,
    handles: Handles<E>,
}

impl<E: Engine> Clone for Roles<E> {
    fn clone(&self) -> Self {
        Roles { nodes: self.nodes.clone(), handles: self.handles.clone() }
    }
}

impl<E: Engine> Roles<E> {
    fn live(&self, i: usize) -> Option<E::Handle<Applier>> {
        if sim::is_alive(self.nodes[i]) {
            self.handles.borrow()[i].clone()
        } else {
            None
        }
    }

    /// The live server that claims leadership in the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| self.live(i).map(|h| (h.get_state(), i)))
            .filter(|((_, leader), _)| *leader)
            .max_by_key(|((term, _), i)| (*term, std::cmp::Reverse(*i)))
            .map(|(_, i)| i)
    }

    /// Start(cmd) on every live server (the figure-8 tests' way of finding the leader).
    pub fn start_everywhere(&self, cmd: Cmd) {
        for i in 0..self.nodes.len() {
            if let Some(h) = self.live(i) {
                h.start(cmd.clone());
            }
        }
    }
}

impl<E: Engine> Cluster<E> {
    pub fn roles(&self) -> Roles<E> {
        Roles { nodes: self.nodes.clone(), handles: self.handles.clone() }
    }
}
