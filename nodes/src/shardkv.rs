//! The sharded key/value service's shells (lab 4B): a replica group's server, and the clerk
//! that finds the group serving a key.
//!
//! Server: a [`Service`] over the pure RSM core applying [`ShardKv`] (its own per-shard
//! duplicate detection, no global table) and the pure [`Driver`] (what the group's leader
//! does on its own). It carries out what they decide: proposes clerks' operations and other
//! groups' deletes and waits for them to apply; answers pulls from the applied state; makes
//! the driver's calls to the controller and to other groups on its timer, feeds every answer
//! back and proposes what the driver hands back; reports every change of its shards to an
//! optional [`GroupObserver`] (the scenario's ownership checker). It decides nothing itself.
//!
//! Clerk: the course's `client.go`. The key's shard and the configuration name a group; each
//! of its servers is tried once (600 ms each at most); on "wrong group", or when none
//! answered, the clerk waits 100 ms, asks the controller for the latest configuration and
//! tries again — always the same request (same sequence number), so it takes effect once
//! wherever it lands.

use crate::replica::{decode_service_reply, CallTag, Service, ServiceApi};
use crate::rsm::{Clerk, ClerkError};
use crate::shardctrler::CtrlerClerk;
use cores::kv::{Kv, KvOp, KvResult};
use cores::replica::ApplyMsg;
use cores::rsm::{ClerkReply, RsmBugs, RsmCore};
use cores::shardkv::driver::{Answer, Call, CallKind, Driver};
pub use cores::shardkv::{
    clerk_reply, client_op, delete_answer, key2shard, route, Config, GroupEvent, GroupRequest, ShardKv, ShardKvBugs,
    ShardView, NSHARDS,
};
use rand::Rng;
use sim::{Failure, NodeCtx, NodeId, ReplyTo, RpcError};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// On a leaderless engine, how often every replica polls, in ms: the old lab's `tick()`
/// period (reference `6824-old-labs.md` §1.4).
pub const OLD_TICK_MS: u64 = 250;

/// Told about every change of a replica's shards, in the order the ownership checker wants
/// (see [`ShardKv::events`]). An `Err` is a violation and fails the run.
pub trait GroupObserver {
    fn observe(&mut self, gid: u64, replica: usize, event: &GroupEvent<'_>) -> Result<(), Failure>;
}

/// Resolves a server name from a configuration to its node (the course's `make_end`).
pub type MakeEnd = Rc<dyn Fn(&str) -> NodeId>;

/// Who waits for an entry to apply.
#[derive(Clone, Copy, Debug)]
enum Waiter {
    Clerk(ReplyTo),
    /// Another group's delete request.
    Delete(ReplyTo),
}

/// What one replica of a group needs to know at start.
#[derive(Clone)]
pub struct GroupSetup {
    pub gid: u64,
    /// This replica's position in its group.
    pub replica: usize,
    /// The controller's servers.
    pub ctrlers: Vec<NodeId>,
    pub make_end: MakeEnd,
    /// Snapshot past this many bytes of engine state (the course's `maxraftstate`; `None`:
    /// never).
    pub maxraftstate: Option<usize>,
    pub bugs: ShardKvBugs,
    pub observer: Option<Rc<RefCell<dyn GroupObserver>>>,
}

/// One replica of a shard group.
pub struct GroupServer {
    setup: GroupSetup,
    core: RsmCore<ShardKv, Waiter>,
    driver: Driver,
}

impl GroupServer {
    /// A fresh instance (its state comes from the snapshot given to `restore`).
    pub fn new(ctx: NodeCtx, setup: GroupSetup) -> Self {
        let state = ShardKv::new(setup.gid, setup.bugs);
        let core = RsmCore::with_state(state, setup.maxraftstate, RsmBugs::default());
        // A client id at the controller of this instance's own, so a restarted replica is not
        // answered from its predecessor's duplicate-table entry.
        let client = ctx.rng("shardkv-driver").gen();
        let driver = Driver::new(setup.ctrlers.len(), client, sim::now().as_millis() as u64);
        GroupServer { setup, core, driver }
    }

    /// The replica's state (tests and checks).
    pub fn state(&self) -> &ShardKv {
        self.core.state()
    }

    /// Sends every reply the core decided, each in the form its asker reads.
    fn flush(&mut self, api: &ServiceApi<'_>) {
        for (waiter, reply) in self.core.take_replies() {
            match waiter {
                Waiter::Clerk(to) => api.reply(to, &clerk_reply(reply)),
                Waiter::Delete(to) => api.reply(to, &delete_answer(reply)),
            }
        }
    }

    /// Makes the driver's calls and hands each back with its tag.
    fn send(&mut self, api: &mut ServiceApi<'_>, calls: Vec<Call>) {
        for call in calls {
            let tag = match call {
                Call::Query { to, request } => api.call(self.setup.ctrlers[to], &request),
                Call::Pull { to, args, .. } => api.call((self.setup.make_end)(&to), &GroupRequest::Pull(args)),
                Call::Delete { to, args, .. } => api.call((self.setup.make_end)(&to), &GroupRequest::Delete(args)),
            };
            self.driver.sent(tag.0, api.now_ms());
        }
    }

    fn report(
        observer: &Option<Rc<RefCell<dyn GroupObserver>>>,
        ctx: NodeCtx,
        gid: u64,
        replica: usize,
        events: &[GroupEvent<'_>],
    ) {
        for event in events {
            match event {
                GroupEvent::Took(config) => ctx.note(sim::NoteCode::GroupTookConfig, gid, config.num, || {
                    format!("group {gid} takes configuration {}: shards {:?}", config.num, config.shards)
                }),
                GroupEvent::View { config_num, views } => {
                    ctx.note(sim::NoteCode::GroupShardViews, gid, *config_num, || {
                        format!("group {gid} in configuration {config_num}: {views:?}")
                    })
                }
                _ => {}
            }
        }
        let Some(observer) = observer else { return };
        let mut o = observer.borrow_mut();
        for event in events {
            if let Err(f) = o.observe(gid, replica, event) {
                drop(o);
                sim::fail(f);
                return;
            }
        }
    }
}

impl Service for GroupServer {
    type Request = GroupRequest;
    type Reply = ClerkReply<KvResult>;

    fn restore(&mut self, snapshot: &[u8]) {
        self.core.restore(snapshot).unwrap_or_else(|e| panic!("{e}"));
    }

    fn on_boot(&mut self, api: &mut ServiceApi<'_>) {
        // A new instance (restored or fresh) is judged afresh.
        let (gid, replica) = (self.setup.gid, self.setup.replica);
        Self::report(&self.setup.observer, api.ctx, gid, replica, &self.core.state().events(None));
        api.set_timer(self.driver.next_poll_ms());
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        let (gid, replica, ctx) = (self.setup.gid, self.setup.replica, api.ctx);
        let observer = &self.setup.observer;
        let snapshot = self
            .core
            .on_apply_seen(
                msg,
                || api.state_size(),
                |state, out| Self::report(observer, ctx, gid, replica, &state.events(out)),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        self.flush(api);
        snapshot
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, _from: NodeId, req: GroupRequest, reply_to: ReplyTo) {
        match req {
            GroupRequest::Clerk(r) => self.core.propose(api.engine(), client_op(r), Some(Waiter::Clerk(reply_to))),
            GroupRequest::Pull(args) => api.reply(reply_to, &self.core.state().answer_pull(&args)),
            GroupRequest::Delete(args) => {
                self.core.propose(api.engine(), ShardKv::delete_op(&args), Some(Waiter::Delete(reply_to)))
            }
        }
        self.flush(api);
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        self.core.after_step(api.engine());
        self.flush(api);
    }

    fn on_timer(&mut self, api: &mut ServiceApi<'_>) {
        // On a leaderless engine (Paxos) every replica polls and proposes, as every server of
        // the old lab did in tick(), and at the old tick's period (every query goes through
        // the controller's log, so three pollers at 100 ms would triple its traffic); one
        // term, so each instance proposes its no-op once.
        let leaderless = api.leaderless();
        let state = if leaderless { (0, true) } else { api.get_state() };
        let reaction = self.driver.on_poll(api.now_ms(), state, self.core.state());
        if let Some(op) = reaction.propose {
            self.core.propose(api.engine(), op, None);
        }
        self.send(api, reaction.calls);
        let next = if leaderless { api.now_ms() + OLD_TICK_MS } else { self.driver.next_poll_ms() };
        api.set_timer(next);
    }

    fn on_reply(&mut self, api: &mut ServiceApi<'_>, call: CallTag, result: Result<Vec<u8>, RpcError>) {
        let Some(kind) = self.driver.kind(call.0) else { return };
        let answer = match (result, kind) {
            (Err(_), _) => Answer::Failed,
            (Ok(bytes), CallKind::Query) => Answer::Query(decode_service_reply(&bytes)),
            (Ok(bytes), CallKind::Pull) => Answer::Pull(decode_service_reply(&bytes)),
            (Ok(bytes), CallKind::Delete) => Answer::Delete(decode_service_reply(&bytes)),
        };
        let reaction = self.driver.on_answer(call.0, answer, self.core.state());
        if let Some(op) = reaction.propose {
            self.core.propose(api.engine(), op, None);
        }
        self.send(api, reaction.calls);
        self.flush(api);
    }
}

/// After a wrong-group answer or a group that did not answer, the clerk waits this long
/// before asking the controller again (the course's client sleeps 100 ms).
pub const CLERK_RETRY: Duration = Duration::from_millis(100);

/// The sharded service's clerk (the course's `shardkv/client.go`).
pub struct ShardClerk {
    ctrler: CtrlerClerk,
    ctx: NodeCtx,
    make_end: MakeEnd,
    client: u64,
    config: Config,
    /// The data clerk, made at the first call (it needs servers); one for the clerk's whole
    /// life, so sequence numbers keep increasing.
    clerk: Option<Clerk<Kv, GroupRequest>>,
}

impl ShardClerk {
    /// A clerk on endpoint `ctx`: `ctrler` reaches the controller; `client` is its id at the
    /// groups (unique in the run).
    pub fn new(ctx: NodeCtx, ctrler: CtrlerClerk, make_end: MakeEnd, client: u64) -> Self {
        ShardClerk { ctrler, ctx, make_end, client, config: Config::initial(), clerk: None }
    }

    /// The endpoint it calls from.
    pub fn node(&self) -> NodeId {
        self.ctx.id()
    }

    /// The configuration it last learnt.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Performs `op` exactly once, however many groups and servers it must try.
    pub async fn call(&mut self, op: KvOp) -> KvResult {
        let key = match &op {
            KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Append { key, .. } => key.clone(),
        };
        loop {
            if let Some((_, servers)) = route(&self.config, &key) {
                let servers: Vec<NodeId> = servers.iter().map(|s| (self.make_end)(s)).collect();
                let clerk = self.clerk.get_or_insert_with(|| Clerk::new(self.ctx, servers.clone(), self.client));
                clerk.set_servers(servers);
                match clerk.try_call(op.clone(), Some(1)).await {
                    Ok(out) => return out,
                    Err(ClerkError::WrongGroup | ClerkError::NoAnswer) => {}
                }
            }
            sim::sleep(CLERK_RETRY).await;
            self.config = self.ctrler.query(None).await;
        }
    }

    /// `Get(key)`.
    pub async fn get(&mut self, key: &str) -> String {
        match self.call(KvOp::Get { key: key.into() }).await {
            KvResult::Value(v) => v,
            other => panic!("a Get answered {other:?}"),
        }
    }
}
