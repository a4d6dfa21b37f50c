//! The shard controller's server and clerk (lab 4A): the replicated-state-machine server over
//! [`ShardCtrler`], reporting every configuration it applies to an optional observer (the
//! scenario's balance, minimal-transfer and configuration-agreement checks), and a clerk with
//! the course's `Join`/`Leave`/`Move`/`Query`.
//!
//! Every decision is the state machine's (`cores::shardctrler`) or the RSM core's; the server
//! only carries replies out and reports.

use crate::replica::{Service, ServiceApi};
use crate::rsm::{Clerk, RsmServer};
use cores::replica::ApplyMsg;
use cores::rsm::{ClerkReply, ClerkRequest, RsmBugs};
pub use cores::shardctrler::{Config, CtrlerOp, CtrlerOut, ShardCtrler, NSHARDS};
use sim::{Failure, NodeCtx, NodeId, ReplyTo};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Told about every configuration a controller replica applies (or restores from a
/// snapshot), in order; the same configuration comes once from each replica that applies it,
/// and again from a restarted one. An `Err` is a violation and fails the run.
pub trait ConfigObserver {
    fn observe_config(&mut self, replica: usize, config: &Config) -> Result<(), Failure>;
}

/// One controller replica: the RSM server over [`ShardCtrler`], plus reports.
pub struct CtrlerServer {
    inner: RsmServer<ShardCtrler>,
    replica: usize,
    observer: Option<Rc<RefCell<dyn ConfigObserver>>>,
    /// Configurations this instance has reported (its state's first `reported`).
    reported: usize,
}

impl CtrlerServer {
    /// Replica `replica` of the controller; `maxraftstate` as for any RSM server (the course
    /// runs the controller without snapshots: `None`).
    pub fn new(
        ctx: NodeCtx,
        replica: usize,
        maxraftstate: Option<usize>,
        bugs: RsmBugs,
        observer: Option<Rc<RefCell<dyn ConfigObserver>>>,
    ) -> Self {
        CtrlerServer { inner: RsmServer::new(ctx, maxraftstate, bugs), replica, observer, reported: 0 }
    }

    /// The replica's configurations (tests and checks).
    pub fn configs(&self) -> &[Config] {
        self.inner.state().sm.configs()
    }

    /// Reports the configurations not reported yet.
    fn report(&mut self) {
        let Some(observer) = &self.observer else { return };
        let configs = self.inner.state().sm.configs();
        let mut o = observer.borrow_mut();
        for config in &configs[self.reported.min(configs.len())..] {
            if let Err(f) = o.observe_config(self.replica, config) {
                drop(o);
                sim::fail(f);
                return;
            }
        }
        self.reported = configs.len();
    }
}

impl Service for CtrlerServer {
    type Request = ClerkRequest<CtrlerOp>;
    type Reply = ClerkReply<CtrlerOut>;

    fn restore(&mut self, snapshot: &[u8]) {
        self.inner.restore(snapshot);
        self.reported = 0;
        self.report();
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        let snapshot = self.inner.apply(api, msg);
        if matches!(msg, ApplyMsg::Snapshot { .. }) {
            // A snapshot replaced the state: report it whole (repeats are checked for agreement).
            self.reported = 0;
        }
        self.report();
        snapshot
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, from: NodeId, req: Self::Request, reply_to: ReplyTo) {
        self.inner.on_request(api, from, req, reply_to);
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        self.inner.after_step(api);
    }
}

/// The controller's clerk: the course's `Join`, `Leave`, `Move` and `Query`, each performed
/// exactly once however often it must be sent.
pub struct CtrlerClerk {
    clerk: Clerk<ShardCtrler>,
}

impl CtrlerClerk {
    /// A clerk talking through `ctx` to the controller's `servers` (in the order to try them),
    /// with a client id unique in the run.
    pub fn new(ctx: NodeCtx, servers: Vec<NodeId>, client: u64) -> Self {
        CtrlerClerk { clerk: Clerk::new(ctx, servers, client) }
    }

    /// `Join(servers)`: adds groups (gid → server names) and rebalances. The controller's
    /// answer: [`CtrlerOut::Ok`], or [`CtrlerOut::Invalid`] for a refused request.
    pub async fn join(&mut self, servers: BTreeMap<u64, Vec<String>>) -> CtrlerOut {
        self.clerk.call(CtrlerOp::Join { servers }).await
    }

    /// `Leave(gids)`: removes groups and rebalances.
    pub async fn leave(&mut self, gids: BTreeSet<u64>) -> CtrlerOut {
        self.clerk.call(CtrlerOp::Leave { gids }).await
    }

    /// `Move(shard, gid)`: puts one shard on one group, without rebalancing.
    pub async fn move_shard(&mut self, shard: usize, gid: u64) -> CtrlerOut {
        self.clerk.call(CtrlerOp::Move { shard, gid }).await
    }

    /// `Query(num)`: configuration `num`, or the latest for `None` (the course's `Query(-1)`)
    /// or a number beyond it.
    pub async fn query(&mut self, num: Option<u64>) -> Config {
        match self.clerk.call(CtrlerOp::Query { num }).await {
            CtrlerOut::Config(c) => c,
            other => panic!("the controller answered a query with {other:?}"),
        }
    }
}
