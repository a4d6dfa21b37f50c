//! The sharded key/value tester: a port of the course's `shardkv/config.go` onto the
//! simulated world, generic over the replication engine, with every clerk call recorded in a
//! history that the linearizability checker judges at the end of every scenario.
//!
//! As the course's: 3 controller servers (never shut down or partitioned) and 3 replica groups,
//! gids 100, 101, 102, of 3 servers each; servers named `s<gid>-<i>` (the course's
//! `server-<gid>-<i>`) and resolved by name (`make_end`); a reliable or an unreliable network
//! without long delays; no partitions. Beyond the course: the kvraft testers' 0–1 ms per
//! message and 0.3–0.7 ms of server time per message; every configuration and every change of
//! a group's shards judged as it happens ([`ShardJudge`]: configuration agreement, balance and
//! minimal transfer, single owner, serve after arrival, whole handoffs, configurations in
//! order), every Raft step of every group and of the controller checked for safety.
//!
//! The groups' servers and the clerks are a [`ShardKvService`]'s: simlab's own
//! ([`OwnShardKv`]), or a user's server and clerk run by the same scenarios through
//! `super::conformance`.

use crate::engine::{engine_bug, timed_config, TestEngine};
use crate::kvraft::tester::{
    check_history, record_append, record_get, record_put, written, HistoryAttachment, KvClient, NET,
};
use crate::raft::observer::SafetyObserver;
use crate::shardctrler::tester::CtrlerCluster;
use crate::shards::ShardJudge;
use checkers::models::kv::{KvInput, KvOutput};
use cores::kv::{KvOp, KvResult};
use nodes::replica::{Engine, NodeSpec, Observer, ReplicaHandle, Service};
use nodes::shardctrler::{Config, CtrlerClerk, CtrlerOut};
use nodes::shardkv::{GroupObserver, GroupServer, GroupSetup, MakeEnd, ShardClerk, ShardKvBugs};
use rand::distributions::Alphanumeric;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::history::Recorder;
use sim::{net, Failure, NetConfig, NodeCtx, NodeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The course's groups: gids 100, 101, 102.
pub const GIDS: [u64; 3] = [100, 101, 102];
/// Servers per group and controller servers, as the course's `make_config(t, 3, …)`.
pub const SERVERS: usize = 3;

/// One replica group: its gid, its servers' nodes and names.
#[derive(Clone, Debug)]
pub struct Group {
    pub gid: u64,
    pub servers: Vec<NodeId>,
    pub names: Vec<String>,
}

/// A sharded key/value service the shardkv suite runs: the server of one replica of a group
/// (the course's `shardkv.StartServer`) and the clerk (`MakeClerk`). simlab's own is
/// [`OwnShardKv`]; a user's own server and clerk implement this and run every scenario of the
/// suite through `super::conformance`, on simlab's shard controller and any engine.
///
/// What the suite can check of a user's service: every clerk call goes to the history, judged
/// for linearizability (per key); the course's own value, size and rejection checks; the
/// controller's configurations (config-agreement, balance, minimal-transfer); Raft safety
/// under every group. The shard-transfer checks (single-owner, serve-after-arrival, handoff,
/// config-order) need the server to tell the judge about its shards: a server that reports
/// [`nodes::shardkv::GroupEvent`]s to [`GroupSetup::observer`] gets them, one that does not is
/// told so in the run's output.
pub trait ShardKvService: 'static {
    /// What [`ShardKvService::config`] builds once per run for every server and clerk: e.g.
    /// which planted mistake is on.
    type Config: Clone + 'static;
    /// One replica's server: clerks' requests (and other groups' pulls, in whatever form the
    /// service chooses) come to it, applied commands from the engine beneath it
    /// ([`Service`]); it asks the controller for configurations with [`Service`]'s calls.
    type Server: Service;
    /// The client library.
    type Clerk: KvClient;
    /// The run's configuration, with planted mistake `bug` (one of
    /// [`ShardKvService::bugs`]) on.
    fn config(bug: Option<&str>) -> Self::Config;
    /// `StartServer`: replica `setup.replica` of group `setup.gid` (a fresh instance at every
    /// start and restart; restore its snapshot in [`Service::restore`]). `setup` names the
    /// controller's servers, resolves other groups' server names (`make_end`), gives the
    /// course's `maxraftstate`, and carries the shard judge as `observer` (report shard
    /// changes to it to have the shard-transfer checks run; `setup.bugs` is simlab's server's
    /// and can be ignored).
    fn server(config: &Self::Config, ctx: NodeCtx, setup: GroupSetup) -> Self::Server;
    /// `MakeClerk`: a clerk on endpoint `ctx` that asks `ctrler` for configurations, resolves
    /// server names with `make_end`, with `client_id` (random, unique in the run with high
    /// probability).
    fn clerk(
        config: &Self::Config,
        ctx: NodeCtx,
        ctrler: CtrlerClerk,
        make_end: MakeEnd,
        client_id: u64,
    ) -> Self::Clerk;
    /// (name, one-line description) of each planted mistake the service offers.
    fn bugs() -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
}

/// simlab's own sharded service: [`GroupServer`] and [`ShardClerk`], with the group's planted
/// bugs ([`ShardKvBugs::ALL`]).
pub struct OwnShardKv;

impl ShardKvService for OwnShardKv {
    type Config = ShardKvBugs;
    type Server = GroupServer;
    type Clerk = ShardClerk;

    fn config(bug: Option<&str>) -> ShardKvBugs {
        bug.and_then(ShardKvBugs::from_name).unwrap_or_default()
    }

    fn server(bugs: &ShardKvBugs, ctx: NodeCtx, setup: GroupSetup) -> GroupServer {
        GroupServer::new(ctx, GroupSetup { bugs: *bugs, ..setup })
    }

    fn clerk(_: &ShardKvBugs, ctx: NodeCtx, ctrler: CtrlerClerk, make_end: MakeEnd, client_id: u64) -> ShardClerk {
        ShardClerk::new(ctx, ctrler, make_end, client_id)
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        ShardKvBugs::ALL.to_vec()
    }
}

impl KvClient for ShardClerk {
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

/// Planted bugs of a run: the service's (if it offers the name) and the engine's.
fn split_bug<E: TestEngine, S: ShardKvService>(bug: Option<&str>) -> (Option<&str>, Option<&str>) {
    let service = bug.filter(|b| S::bugs().iter().any(|(name, _)| name == b));
    (service, engine_bug::<E>(bug))
}

/// The controller, the groups, the tester's controller clerk and the recorded history.
pub struct ShardCluster<E: TestEngine, S: ShardKvService = OwnShardKv> {
    name: &'static str,
    pub ctrler: CtrlerCluster<E>,
    /// The tester's own controller clerk (the course's `mck`).
    pub mck: CtrlerClerk,
    pub groups: Vec<Group>,
    pub maxraftstate: Option<usize>,
    make_end: MakeEnd,
    pub judge: Rc<RefCell<ShardJudge>>,
    pub history: Recorder<KvInput, KvOutput>,
    pub rng: ChaCha8Rng,
    next_clerk: u64,
    /// The live instance of each group server, by node.
    handles: GroupHandles<E, S>,
    /// The service's configuration for this run (its planted bug).
    service: S::Config,
    /// The history's `--history` attachment, made once when the run ends.
    attachment: HistoryAttachment,
}

type GroupHandles<E, S> = Rc<RefCell<BTreeMap<NodeId, <E as Engine>::Handle<<S as ShardKvService>::Server>>>>;

impl<E: TestEngine, S: ShardKvService> ShardCluster<E, S> {
    /// `make_config(t, 3, unreliable, maxraftstate)` with `groups` replica groups (the course
    /// has 3); `maxraftstate` < 0 means never snapshot. `bug` is a planted bug of the groups or
    /// of the engine (every Raft instance gets the engine's).
    pub fn new(name: &'static str, groups: usize, unreliable: bool, maxraftstate: i64, bug: Option<&str>) -> Self {
        Self::with_sizes(name, &vec![SERVERS; groups], SERVERS, unreliable, maxraftstate, bug, None)
    }

    /// As [`ShardCluster::new`], with `sizes[g]` servers in group `g` (gids 100, 101, …) and
    /// `ctrlers` controller servers, and the engine's timing knobs if a swarm drew them.
    pub fn with_sizes(
        name: &'static str,
        sizes: &[usize],
        ctrlers: usize,
        unreliable: bool,
        maxraftstate: i64,
        bug: Option<&str>,
        timing: Option<&crate::spec::Timing>,
    ) -> Self {
        let groups: Vec<(u64, usize)> = sizes.iter().enumerate().map(|(g, &n)| (100 + g as u64, n)).collect();
        Self::with_groups(name, &groups, ctrlers, unreliable, maxraftstate, bug, timing)
    }

    /// As [`ShardCluster::with_sizes`], with the groups given as `(gid, servers)` (a scenario
    /// file's groups, which need not be 100, 101, … once the shrinker removed one). Node ids
    /// go to the controller first, then to each group's servers in the order given.
    pub fn with_groups(
        name: &'static str,
        sizes: &[(u64, usize)],
        ctrlers: usize,
        unreliable: bool,
        maxraftstate: i64,
        bug: Option<&str>,
        timing: Option<&crate::spec::Timing>,
    ) -> Self {
        let maxraftstate = (maxraftstate >= 0).then_some(maxraftstate as usize);
        let (service_bug, raft_bug) = split_bug::<E, S>(bug);
        if let Some(b) = bug {
            assert!(service_bug.is_some() || raft_bug.is_some(), "unknown planted bug {b} of {}", E::NAME);
        }
        let service = S::config(service_bug);
        net::set_config(NetConfig { reliable: !unreliable, ..NET });
        let judge = Rc::new(RefCell::new(ShardJudge::new()));
        let mut ctrler =
            CtrlerCluster::<E>::start(ctrlers, timed_config::<E>(ctrlers, raft_bug, timing), judge.clone());
        // Every group's nodes and names first, so every server can resolve every name.
        let mut next = sim::node_count();
        let groups: Vec<Group> = sizes
            .iter()
            .map(|&(gid, n)| {
                let servers: Vec<NodeId> = (0..n as u16).map(|i| NodeId(next + i)).collect();
                next += n as u16;
                Group { gid, servers, names: (0..n).map(|i| format!("s{gid}-{i}")).collect() }
            })
            .collect();
        let ends: BTreeMap<String, NodeId> =
            groups.iter().flat_map(|g| g.names.iter().cloned().zip(g.servers.iter().copied())).collect();
        let make_end: MakeEnd =
            Rc::new(move |name: &str| *ends.get(name).unwrap_or_else(|| panic!("no server is called {name}")));
        let handles: GroupHandles<E, S> = Rc::new(RefCell::new(BTreeMap::new()));
        for g in &groups {
            let n = g.servers.len();
            let safety = Rc::new(RefCell::new(SafetyObserver::for_engine::<E>(n).of_group(g.gid)));
            for i in 0..n {
                let obs: Rc<RefCell<dyn Observer>> = safety.clone();
                let group_obs: Rc<RefCell<dyn GroupObserver>> = judge.clone();
                let setup = GroupSetup {
                    gid: g.gid,
                    replica: i,
                    ctrlers: ctrler.servers.clone(),
                    make_end: make_end.clone(),
                    maxraftstate,
                    bugs: ShardKvBugs::default(),
                    observer: Some(group_obs),
                };
                let service = service.clone();
                let spec = NodeSpec {
                    me: i,
                    peers: g.servers.clone(),
                    config: timed_config::<E>(n, raft_bug, timing),
                    observer: Some(obs),
                    make_service: Rc::new(move |ctx: NodeCtx| S::server(&service, ctx, setup.clone())),
                    on_start: {
                        let (handles, node) = (handles.clone(), g.servers[i]);
                        Rc::new(move |h| {
                            handles.borrow_mut().insert(node, h);
                        })
                    },
                };
                let id = E::spawn(&g.names[i], spec);
                assert_eq!(id, g.servers[i], "servers get consecutive node ids");
            }
            // The group's protocol events release what fault points `replica.hold_snapshot`
            // and `replica.hold_append_reply` hold (the sharded swarm draws no hold episodes:
            // only those points, where its knobs enable them, hold messages here).
            safety.borrow_mut().feed_triggers::<E>(g.servers.clone());
        }
        crate::kvraft::tester::feed_clerk_trigger();
        let mck = ctrler.make_client();
        let history = Recorder::new();
        ShardCluster {
            name,
            ctrler,
            mck,
            groups,
            maxraftstate,
            make_end,
            judge,
            attachment: HistoryAttachment::new(name, &history),
            history,
            rng: sim::rng("shardkv-tester"),
            next_clerk: 0,
            handles,
            service,
        }
    }

    /// A function telling which live server of group `gi` believes it leads (for fault
    /// schedules).
    pub fn leader_view(&self, gi: usize) -> impl Fn() -> Option<NodeId> + 'static {
        let (handles, servers) = (self.handles.clone(), self.groups[gi].servers.clone());
        move || {
            let handles = handles.borrow();
            servers.iter().copied().find(|&n| sim::is_alive(n) && handles.get(&n).is_some_and(|h| h.get_state().1))
        }
    }

    /// Takes the number and the draw the next [`ShardCluster::make_client`] would take,
    /// without making a clerk: a scenario file without one of the swarm's clerks leaves the
    /// others' names and draws as they were.
    pub fn skip_client(&mut self) {
        self.next_clerk += 1;
        self.ctrler.skip_client();
        let _: u64 = self.rng.gen();
    }

    /// Skips clerk numbers up to `id` ([`Self::skip_client`] for each), so the next clerk
    /// made is `c<id>`: a file's clerks keep the numbers of the run they came from.
    pub fn skip_clients_to(&mut self, id: u64) {
        while self.next_clerk < id {
            self.skip_client();
        }
    }

    /// `makeClient()`: a clerk with a controller clerk of its own, on an endpoint of its own.
    pub fn make_client(&mut self) -> ShardKvClerk<S::Clerk> {
        let id = self.next_clerk;
        self.next_clerk += 1;
        let ctx = sim::client(&format!("c{id}"));
        let ctrler = self.ctrler.make_client_on(ctx);
        self.make_client_with(ctx, ctrler, id)
    }

    /// A clerk that asks `ctrler` for configurations (the course's second controller service
    /// in TestRejection).
    pub fn make_client_with(&mut self, ctx: NodeCtx, ctrler: CtrlerClerk, cli: u64) -> ShardKvClerk<S::Clerk> {
        ShardKvClerk {
            clerk: S::clerk(&self.service, ctx, ctrler, self.make_end.clone(), self.rng.gen()),
            history: self.history.clone(),
            cli,
        }
    }

    /// A Join argument for the groups at positions `gis`.
    pub fn join_args(&self, gis: &[usize]) -> BTreeMap<u64, Vec<String>> {
        gis.iter().map(|&gi| (self.groups[gi].gid, self.groups[gi].names.clone())).collect()
    }

    /// `join(gi)`.
    pub async fn join(&mut self, gi: usize) -> Result<(), Failure> {
        self.joinm(&[gi]).await
    }

    /// `joinm(gis)`: one Join of several groups.
    pub async fn joinm(&mut self, gis: &[usize]) -> Result<(), Failure> {
        let args = self.join_args(gis);
        sim::note(sim::NoteCode::ShardJoin, gis.len() as u64, || {
            format!("tester: join {:?}", args.keys().collect::<Vec<_>>())
        });
        expect_ok(self.mck.join(args).await, "join")
    }

    /// `leave(gi)`.
    pub async fn leave(&mut self, gi: usize) -> Result<(), Failure> {
        self.leavem(&[gi]).await
    }

    /// `leavem(gis)`: one Leave of several groups.
    pub async fn leavem(&mut self, gis: &[usize]) -> Result<(), Failure> {
        let gids = gis.iter().map(|&gi| self.groups[gi].gid).collect();
        sim::note(sim::NoteCode::ShardLeave, gis.len() as u64, || format!("tester: leave {gids:?}"));
        expect_ok(self.mck.leave(gids).await, "leave")
    }

    /// `ShutdownServer(gi, i)`: only what it persisted survives.
    pub fn shutdown_server(&self, gi: usize, i: usize) {
        let node = self.groups[gi].servers[i];
        if sim::is_alive(node) {
            sim::crash(node);
        }
    }

    /// `StartServer(gi, i)`: a fresh instance from its persisted state and snapshot.
    pub fn start_server(&self, gi: usize, i: usize) {
        let node = self.groups[gi].servers[i];
        if !sim::is_alive(node) {
            sim::restart(node);
        }
    }

    /// `ShutdownGroup(gi)`.
    pub fn shutdown_group(&self, gi: usize) {
        for i in 0..self.groups[gi].servers.len() {
            self.shutdown_server(gi, i);
        }
    }

    /// `StartGroup(gi)`.
    pub fn start_group(&self, gi: usize) {
        for i in 0..self.groups[gi].servers.len() {
            self.start_server(gi, i);
        }
    }

    /// `checklogs()`: every server of every group, shut down or not: persisted Raft state at
    /// most 8 × maxraftstate, or no snapshot at all when maxraftstate < 0.
    pub fn checklogs(&self) -> Result<(), Failure> {
        for g in &self.groups {
            for (i, &node) in g.servers.iter().enumerate() {
                let p = sim::persisted(node);
                match self.maxraftstate {
                    Some(max) if p.state.len() > 8 * max => {
                        return Err(Failure::safety(
                            "shardkv::log-size",
                            format!(
                                "group {} server {i}: persisted Raft state {} bytes, but maxraftstate {max}",
                                g.gid,
                                p.state.len()
                            ),
                        ))
                    }
                    None if !p.snapshot.is_empty() => {
                        return Err(Failure::safety(
                            "shardkv::snapshot-size",
                            format!("group {} server {i}: maxraftstate is -1, but the snapshot is non-empty", g.gid),
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Σ over every group server of persisted Raft state + snapshot (TestChallenge1Delete).
    pub fn total_persisted(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| g.servers.iter())
            .map(|&n| {
                let p = sim::persisted(n);
                p.state.len() + p.snapshot.len()
            })
            .sum()
    }

    /// The latest configuration, through the tester's controller clerk.
    pub async fn query(&mut self) -> Config {
        self.mck.query(None).await
    }

    /// A random string of `n` letters and digits (the course's `randstring`).
    pub fn randstring(&mut self, n: usize) -> String {
        (&mut self.rng).sample_iter(&Alphanumeric).take(n).map(char::from).collect()
    }

    /// The same cluster, attaching its history when the run ends if `attach` (the
    /// scenario's `Opts::attach_history`, `--history`).
    pub fn attaching_history(mut self, attach: bool) -> Self {
        self.attachment.asked = attach;
        self
    }

    /// The end of every scenario: the run's Join/Leave transfer figures, which shard checks
    /// ran, and the whole history judged for linearizability.
    pub fn finish(&self) -> Result<(), Failure> {
        self.attachment.attach_once();
        self.judge.borrow().describe();
        // simlab's own groups always report; a user's service is told what ran.
        if std::any::TypeId::of::<S>() != std::any::TypeId::of::<OwnShardKv>() {
            self.judge.borrow().describe_checks();
        }
        check_history(self.name, &self.history)
    }
}

fn expect_ok(out: CtrlerOut, what: &str) -> Result<(), Failure> {
    match out {
        CtrlerOut::Ok => Ok(()),
        other => Err(Failure::safety("shardkv::tester", format!("the controller answered a {what} with {other:?}"))),
    }
}

/// A sharded clerk whose calls are recorded in the cluster's history.
pub struct ShardKvClerk<C = ShardClerk> {
    pub clerk: C,
    history: Recorder<KvInput, KvOutput>,
    /// The history's client id for this clerk's calls.
    pub cli: u64,
}

impl<C: KvClient> ShardKvClerk<C> {
    /// Get, recorded.
    pub async fn get(&mut self, key: &str) -> String {
        record_get(&self.history, self.cli, &mut self.clerk, key).await
    }

    /// Put, recorded with what the clerk returned (simlab's: what it replaced).
    pub async fn put(&mut self, key: &str, value: &str) {
        record_put(&self.history, self.cli, &mut self.clerk, key, value).await
    }

    /// Append, recorded with what the clerk returned (simlab's: what it extended).
    pub async fn append(&mut self, key: &str, value: &str) {
        record_append(&self.history, self.cli, &mut self.clerk, key, value).await
    }
}

/// The course's `check(t, ck, key, value)`: a Get must return exactly `value`.
pub async fn check<C: KvClient>(ck: &mut ShardKvClerk<C>, key: &str, value: &str) -> Result<(), Failure> {
    let v = ck.get(key).await;
    if v != value {
        return Err(Failure::safety(
            "shardkv::get",
            format!(
                "Get({key:?}): expected {} bytes {:?}…, received {} bytes {:?}…",
                value.len(),
                head(value),
                v.len(),
                head(&v)
            ),
        ));
    }
    Ok(())
}

fn head(s: &str) -> &str {
    &s[..s.len().min(24)]
}
