//! The shard controller's tester: a port of the course's `shardctrler/config.go` onto the
//! simulated world, generic over the replication engine. The sharded key/value tester runs
//! its controller with the same cluster.
//!
//! Network as the course's: reliable, no long delays (a call to a dead server fails within
//! 0–99 ms), clerks given the servers in random order; beyond labrpc, the kvraft testers'
//! 0–1 ms per message and 0.3–0.7 ms of server time per message. Every configuration a
//! replica applies is reported to the run's [`ShardJudge`] (agreement, balance, minimal
//! transfer after every Join and Leave); every Raft step to a safety checker.

use crate::engine::TestEngine;
use crate::kvraft::tester::NET;
use crate::raft::observer::SafetyObserver;
use crate::shards::ShardJudge;
use cores::rsm::RsmBugs;
use nodes::replica::{Engine, NodeSpec, Observer, ReplicaHandle};
use nodes::shardctrler::{Config, ConfigObserver, CtrlerClerk, CtrlerServer, NSHARDS};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::{net, Failure, NetConfig, NodeCtx, NodeId};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The handles of the servers' live instances.
type Handles<E> = Rc<RefCell<Vec<Option<<E as Engine>::Handle<CtrlerServer>>>>>;

/// The controller's servers, generic over the engine beneath them.
pub struct CtrlerCluster<E: Engine> {
    pub n: usize,
    pub servers: Vec<NodeId>,
    handles: Handles<E>,
    rng: ChaCha8Rng,
    next_clerk: u64,
    /// The servers' name prefix (clerk endpoints are named after it too).
    prefix: String,
}

impl<E: TestEngine> CtrlerCluster<E> {
    /// `make_config(n, unreliable)`: `n` controller servers named `ctrler<i>` (the sharded
    /// tester's names), planted engine bug `bug` (if it is the engine's), reporting to `judge`.
    pub fn new(n: usize, unreliable: bool, bug: Option<&str>, judge: Rc<RefCell<ShardJudge>>) -> CtrlerCluster<E> {
        net::set_config(NetConfig { reliable: !unreliable, ..NET });
        Self::start(n, E::config(n, crate::engine::engine_bug::<E>(bug)), judge)
    }

    /// The servers alone, on the network as it is (the sharded tester sets it up).
    pub fn start(n: usize, config: E::Config, judge: Rc<RefCell<ShardJudge>>) -> CtrlerCluster<E> {
        Self::start_named("ctrler", n, config, judge)
    }

    /// As [`CtrlerCluster::start`], the servers named `<prefix><i>` (a second controller
    /// service beside the first).
    pub fn start_named(prefix: &str, n: usize, config: E::Config, judge: Rc<RefCell<ShardJudge>>) -> CtrlerCluster<E> {
        Self::start_with(prefix, n, config, judge, None, RsmBugs::default())
    }

    /// As [`CtrlerCluster::start_named`], the servers snapshotting past `maxraftstate` bytes
    /// (the old shard master's servers call Paxos `Done`, which the Paxos engine takes at a
    /// snapshot) with the replicated state machine's planted bugs `rsm`.
    pub fn start_with(
        prefix: &str,
        n: usize,
        config: E::Config,
        judge: Rc<RefCell<ShardJudge>>,
        maxraftstate: Option<usize>,
        rsm: RsmBugs,
    ) -> CtrlerCluster<E> {
        let handles: Handles<E> = Rc::new(RefCell::new(vec![None; n]));
        let observer = Rc::new(RefCell::new(SafetyObserver::for_engine::<E>(n)));
        let first = sim::node_count();
        let servers: Vec<NodeId> = (0..n as u16).map(|i| NodeId(first + i)).collect();
        for i in 0..n {
            let handles2 = handles.clone();
            let obs: Rc<RefCell<dyn Observer>> = observer.clone();
            let configs: Rc<RefCell<dyn ConfigObserver>> = judge.clone();
            let spec = NodeSpec {
                me: i,
                peers: servers.clone(),
                config: config.clone(),
                observer: Some(obs),
                make_service: Rc::new(move |ctx: NodeCtx| {
                    CtrlerServer::new(ctx, i, maxraftstate, rsm, Some(configs.clone()))
                }),
                on_start: Rc::new(move |h| handles2.borrow_mut()[i] = Some(h)),
            };
            let id = E::spawn(&format!("{prefix}{i}"), spec);
            assert_eq!(id, servers[i]);
        }
        CtrlerCluster {
            n,
            servers,
            handles,
            rng: sim::rng(&format!("{prefix}-tester")),
            next_clerk: 0,
            prefix: prefix.to_string(),
        }
    }
}

impl<E: Engine> CtrlerCluster<E> {
    /// `makeClient(All())`: a clerk that gets the servers in random order.
    pub fn make_client(&mut self) -> CtrlerClerk {
        self.make_client_on(sim::client(&format!("{}-ck{}", self.prefix, self.next_clerk)))
    }

    /// Takes the draws [`CtrlerCluster::make_client_on`] would take, without making a clerk
    /// (a scenario file without one of a swarm's clerks leaves the others' draws put).
    pub fn skip_client(&mut self) {
        self.next_clerk += 1;
        let mut order = self.servers.clone();
        order.shuffle(&mut self.rng);
        let _: u64 = self.rng.gen();
    }

    /// A controller clerk on an existing endpoint (a sharded clerk's own).
    pub fn make_client_on(&mut self, ctx: NodeCtx) -> CtrlerClerk {
        self.next_clerk += 1;
        let mut order = self.servers.clone();
        order.shuffle(&mut self.rng);
        CtrlerClerk::new(ctx, order, self.rng.gen())
    }

    /// `ShutdownServer(i)`: only what it persisted survives.
    pub fn shutdown_server(&self, i: usize) {
        if sim::is_alive(self.servers[i]) {
            sim::crash(self.servers[i]);
        }
        self.handles.borrow_mut()[i] = None;
    }

    /// `StartServer(i)`: a fresh instance from its persisted state.
    pub fn start_server(&self, i: usize) {
        if !sim::is_alive(self.servers[i]) {
            sim::restart(self.servers[i]);
        }
    }

    /// What `f` reads of server `i`'s live instance (`None` while it is down): e.g. the
    /// Paxos engine's `Min()` through `NodeHandle::with_core`.
    pub fn with_handle<R>(&self, i: usize, f: impl FnOnce(&E::Handle<CtrlerServer>) -> R) -> Option<R> {
        self.handles.borrow()[i].as_ref().map(f)
    }

    /// A clerk that reaches only the servers at positions `only`, in that order (the old
    /// tests' `MakeClerk([]string{kvh[i]})`).
    pub fn make_client_to(&mut self, only: &[usize]) -> CtrlerClerk {
        let ctx = sim::client(&format!("{}-ck{}", self.prefix, self.next_clerk));
        self.next_clerk += 1;
        CtrlerClerk::new(ctx, only.iter().map(|&i| self.servers[i]).collect(), self.rng.gen())
    }

    /// `ConnectAll()`.
    pub fn connect_all(&self) {
        net::heal(&self.servers);
    }

    /// `Leader()`: a live server that believes it leads, if any.
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
}

/// The course's `check(groups)`: the latest configuration has exactly these groups, every
/// shard on one of them (when there are any), and max − min ≤ 1 shards per group.
pub async fn check(ck: &mut CtrlerClerk, groups: &[u64]) -> Result<(), Failure> {
    let c = ck.query(None).await;
    let fail = |why: String| Err(Failure::safety("shardctrler::check", why));
    if c.groups.len() != groups.len() {
        return fail(format!("wanted {} groups, got {}", groups.len(), c.groups.len()));
    }
    for g in groups {
        if !c.groups.contains_key(g) {
            return fail(format!("missing group {g}"));
        }
    }
    if !groups.is_empty() {
        if let Some(s) = (0..NSHARDS).find(|&s| !c.groups.contains_key(&c.shards[s])) {
            return fail(format!("shard {s} -> invalid group {}", c.shards[s]));
        }
    }
    let mut counts: BTreeMap<u64, usize> = groups.iter().map(|&g| (g, 0)).collect();
    for g in c.shards {
        if let Some(n) = counts.get_mut(&g) {
            *n += 1;
        }
    }
    let (min, max) = (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
    if max > min + 1 {
        return fail(format!("max {max} too much larger than min {min}: {:?}", c.shards));
    }
    Ok(())
}

/// The course's `check_same_config(a, b)`: same number, shards, groups and server lists.
pub fn check_same_config(got: &Config, want: &Config) -> Result<(), Failure> {
    if got != want {
        return Err(Failure::safety(
            "shardctrler::same-config",
            format!("configuration {} read back as {got:?}, expected {want:?}", want.num),
        ));
    }
    Ok(())
}

/// A Join's argument: each gid with its servers' names.
pub fn groups(list: &[(u64, &[&str])]) -> BTreeMap<u64, Vec<String>> {
    list.iter().map(|(g, s)| (*g, s.iter().map(|x| x.to_string()).collect())).collect()
}

/// A Leave's argument.
pub fn gids(list: &[u64]) -> BTreeSet<u64> {
    list.iter().copied().collect()
}
