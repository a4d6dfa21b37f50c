//! The replicated-state-machine server and its clerk, generic over the state machine (the
//! key/value store now; the shard controller reuses it) and over the engine beneath.
//!
//! Server: a [`Service`] that hands every decision to the pure [`RsmCore`] (which request
//! waits at which log index, what answers it, when to snapshot) and carries out its replies.
//!
//! Clerk: one outstanding request, numbered; remembers the leader; on a failed call, a
//! "wrong leader", or no answer within a timeout, tries the next server; after a full round
//! without success it pauses briefly (a zero-latency network would otherwise spin).

use crate::replica::{Service, ServiceApi, ServiceWire, ServiceWireReply, WireReply};
use cores::replica::ApplyMsg;
pub use cores::rsm::{ClerkReply, ClerkRequest};
use cores::rsm::{Deduplicated, RsmBugs, RsmCore, StateMachine};
use serde::Serialize;
use sim::{NodeCtx, NodeId, ReplyTo};
use std::time::Duration;

/// The server side: a service applying `Command<SM::Op>` entries to the replicated state,
/// deciding nothing itself.
pub struct RsmServer<SM: StateMachine> {
    core: RsmCore<Deduplicated<SM>, ReplyTo>,
    /// Whether this instance's state came from a snapshot (restored or installed), for the
    /// coverage mark [`RETRY_AFTER_SNAPSHOT`].
    from_snapshot: bool,
}

/// The marks the replicated-state-machine server sets, for a family to declare.
pub const MARKS: [(&str, &str); 2] = [
    (STEP_DOWN_WITH_PENDING, "a replica stopped leading while client requests waited on it"),
    (RETRY_AFTER_SNAPSHOT, "a retried client request reached a replica whose state came from a snapshot"),
];

/// Mark: a replica that led stopped leading (or changed term) while client requests waited
/// on it (they fail, and their clerks retry elsewhere).
pub const STEP_DOWN_WITH_PENDING: &str = "rsm: leader stepped down with requests pending";
/// Mark: a client request already in the duplicate table reached a replica whose state came
/// from a snapshot — the table must have travelled in the snapshot.
pub const RETRY_AFTER_SNAPSHOT: &str = "rsm: retried request arrived after a snapshot";

impl<SM: StateMachine> RsmServer<SM> {
    /// A server that snapshots once the engine's persisted state exceeds `maxraftstate` bytes
    /// (`None`: never), with planted bugs `bugs`.
    pub fn new(_ctx: NodeCtx, maxraftstate: Option<usize>, bugs: RsmBugs) -> Self {
        RsmServer { core: RsmCore::new(maxraftstate, bugs), from_snapshot: false }
    }

    /// The replica's state (tests and checks).
    pub fn state(&self) -> &cores::rsm::Rsm<SM> {
        &self.core.state().rsm
    }

    /// Sends every reply the core decided, in order.
    fn flush(&mut self, api: &ServiceApi<'_>) {
        for (reply_to, reply) in self.core.take_replies() {
            api.reply(reply_to, &reply);
        }
    }
}

impl<SM: StateMachine> Service for RsmServer<SM> {
    type Request = ClerkRequest<SM::Op>;
    type Reply = ClerkReply<SM::Out>;

    fn restore(&mut self, snapshot: &[u8]) {
        self.core.restore(snapshot).unwrap_or_else(|e| panic!("{e}"));
        self.from_snapshot |= !snapshot.is_empty();
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, _from: NodeId, req: Self::Request, reply_to: ReplyTo) {
        if self.from_snapshot && self.state().last.get(&req.client).is_some_and(|l| l.seq >= req.seq) {
            sim::mark(RETRY_AFTER_SNAPSHOT);
        }
        self.core.on_request(api.engine(), req, reply_to);
        self.flush(api);
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        self.from_snapshot |= matches!(msg, ApplyMsg::Snapshot { .. });
        let snapshot = self.core.on_apply(msg, || api.state_size()).unwrap_or_else(|e| panic!("{e}"));
        self.flush(api);
        snapshot
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        if self.core.waiting() > 0 && !api.get_state().1 {
            sim::mark(STEP_DOWN_WITH_PENDING);
        }
        self.core.after_step(api.engine());
        self.flush(api);
    }
}

/// The protocol event a clerk reports (`sim::net::protocol_event`, of its own node) each time
/// one of its operations is answered: the release trigger of fault point
/// `clerk.late_duplicate`, which the key/value testers register
/// (`sim::set_fault_point_release`). Reporting it does nothing in a run that registered no
/// hold for it.
pub const CLERK_ANSWERED: &str = "clerk answered";

/// A clerk's answer wait: a server that stops answering (a deposed leader in a minority)
/// is given up on after this long, and the request goes to the next server.
pub const CLERK_TIMEOUT: Duration = Duration::from_millis(600);
/// Pause after asking every server once without success (an election is probably on).
pub const CLERK_ROUND_PAUSE: Duration = Duration::from_millis(20);

/// Why [`Clerk::try_call`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClerkError {
    /// A server answered that its group does not serve the request's key.
    WrongGroup,
    /// Every server was tried `rounds` times without an answer.
    NoAnswer,
}

/// The client library: numbered requests, one at a time, retried until they succeed.
///
/// `Q` is the request as the servers' service decodes it: the [`ClerkRequest`] itself for a
/// service that serves only clerks (the default), or a request type of the service's that a
/// clerk request converts into (a shard group also serves other groups).
pub struct Clerk<SM: StateMachine, Q = ClerkRequest<<SM as StateMachine>::Op>> {
    ctx: NodeCtx,
    servers: Vec<NodeId>,
    client: u64,
    seq: u64,
    /// The current request has not succeeded yet: the next call resends it (same number).
    unfinished: bool,
    leader: usize,
    _sm: std::marker::PhantomData<(SM, Q)>,
}

impl<SM: StateMachine, Q: From<ClerkRequest<SM::Op>> + Serialize> Clerk<SM, Q> {
    /// A clerk talking through `ctx` to `servers` (in the order it should try them), with
    /// a client id unique in the run.
    pub fn new(ctx: NodeCtx, servers: Vec<NodeId>, client: u64) -> Self {
        assert!(!servers.is_empty());
        Clerk { ctx, servers, client, seq: 0, unfinished: false, leader: 0, _sm: std::marker::PhantomData }
    }

    pub fn client_id(&self) -> u64 {
        self.client
    }

    pub fn node(&self) -> NodeId {
        self.ctx.id()
    }

    /// Points the clerk at another group of servers (a new configuration's owners); an
    /// unfinished request keeps its number. The same servers again keep the remembered leader.
    pub fn set_servers(&mut self, servers: Vec<NodeId>) {
        assert!(!servers.is_empty());
        if servers != self.servers {
            self.servers = servers;
            self.leader = 0;
        }
    }

    /// The servers the clerk talks to, in the order it tries them.
    pub fn servers(&self) -> &[NodeId] {
        &self.servers
    }

    /// Performs `op` exactly once, however many times it must be sent; a wrong-group answer
    /// counts as a failed try.
    pub async fn call(&mut self, op: SM::Op) -> SM::Out {
        match self.send(op, None, false).await {
            Ok(out) => out,
            Err(e) => unreachable!("with no round limit and wrong-group answers retried, send never fails ({e:?})"),
        }
    }

    /// Performs `op`, giving up when a server says its group does not serve the key, or after
    /// `rounds` rounds over every server without success. Until a call succeeds, the next one
    /// is the same request again (same sequence number), so it takes effect at most once
    /// wherever it lands.
    pub async fn try_call(&mut self, op: SM::Op, rounds: Option<usize>) -> Result<SM::Out, ClerkError> {
        self.send(op, rounds, true).await
    }

    async fn send(
        &mut self,
        op: SM::Op,
        rounds: Option<usize>,
        stop_on_wrong_group: bool,
    ) -> Result<SM::Out, ClerkError> {
        if !self.unfinished {
            self.seq += 1;
            self.unfinished = true;
        }
        let req = ServiceWire::Service(Q::from(ClerkRequest { client: self.client, seq: self.seq, op }));
        let mut tried = 0;
        loop {
            let server = self.servers[self.leader];
            // Fault point `clerk.late_duplicate`: a copy of this request may reach the server
            // after the clerk has moved on to its next request.
            let call = sim::fault_point_duplicate(self.ctx.id(), server, || {
                self.ctx.call::<ServiceWire<Q>, ServiceWireReply<ClerkReply<SM::Out>>>(server, &req)
            });
            let reply = sim::timeout(CLERK_TIMEOUT, call).await;
            match reply {
                Some(Ok(WireReply::Service(ClerkReply::Ok(out)))) => {
                    self.unfinished = false;
                    // What releases `clerk.late_duplicate`'s copies, for the scenarios that
                    // register it: an answered request is an operation done.
                    sim::net::protocol_event(self.ctx.id(), CLERK_ANSWERED);
                    return Ok(out);
                }
                Some(Ok(WireReply::Service(ClerkReply::WrongGroup))) if stop_on_wrong_group => {
                    return Err(ClerkError::WrongGroup);
                }
                _ => {}
            }
            self.leader = (self.leader + 1) % self.servers.len();
            tried += 1;
            if tried % self.servers.len() == 0 {
                if rounds.is_some_and(|r| tried / self.servers.len() >= r) {
                    return Err(ClerkError::NoAnswer);
                }
                sim::sleep(CLERK_ROUND_PAUSE).await;
            }
        }
    }
}
