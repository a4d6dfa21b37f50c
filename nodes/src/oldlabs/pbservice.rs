//! The primary/backup key/value server process and its clerk. The server loop pings the view
//! service every 100 ms with the number `cores::pbservice::PbServer` chooses, feeds it
//! requests, replies and time, and carries out its outputs (answers, calls to the backup).
//! A restart starts from nothing (the course's servers keep no disk state).

use cores::kv::{KvOp, KvResult};
use cores::pbservice::{ClientOp, PbBugs, PbOut, PbReply, PbRequest, PbServer};
use cores::viewservice::{ServerId, View, VsRequest, PING_INTERVAL_MS};
use sim::{Incoming, NodeCtx, NodeId, ReplyTo};
use std::collections::BTreeMap;
use std::time::Duration;

/// Tag of the ping call; calls to the backup carry their attempt number (never 0).
const PING_TAG: u64 = 0;

/// Starts a pb server as process `name`, with the view service at `vs`.
pub fn spawn_pbserver(name: &str, vs: NodeId, bugs: PbBugs) -> NodeId {
    sim::spawn_process(name, move |ctx: NodeCtx| serve(ctx, vs, bugs))
}

async fn serve(ctx: NodeCtx, vs: NodeId, bugs: PbBugs) {
    let me = ctx.id().0 as ServerId;
    let mut core = PbServer::new(me, bugs);
    let mut pending: BTreeMap<u64, ReplyTo> = BTreeMap::new();
    let mut next_req = 0u64;
    let now_ms = || sim::now().as_millis() as u64;
    let mut next_ping = sim::now();
    loop {
        let deadline = match core.next_deadline_ms() {
            Some(t) => next_ping.min(Duration::from_millis(t)),
            None => next_ping,
        };
        match ctx.recv_until(deadline).await {
            None => {
                if sim::now() >= next_ping {
                    let viewnum = core.ping_viewnum();
                    ctx.start_call(vs, &VsRequest::Ping { me, viewnum }, PING_TAG);
                    next_ping += Duration::from_millis(PING_INTERVAL_MS);
                }
                core.tick(now_ms());
            }
            Some(Incoming::Request { payload, reply_to, .. }) => match sim::decode::<PbRequest>(&payload) {
                PbRequest::Client(op) => {
                    next_req += 1;
                    pending.insert(next_req, reply_to);
                    core.on_client(next_req, op);
                }
                PbRequest::Forward { viewnum, op } => ctx.reply(reply_to, &core.on_forward(viewnum, &op)),
                PbRequest::Transfer { viewnum, state } => ctx.reply(reply_to, &core.on_transfer(viewnum, state)),
            },
            Some(Incoming::Response { tag: PING_TAG, result, .. }) => {
                if let Ok(bytes) = result {
                    core.on_view(sim::decode::<View>(&bytes));
                }
            }
            Some(Incoming::Response { tag, result, .. }) => {
                let reply = result.ok().map(|b| sim::decode::<PbReply>(&b));
                core.on_peer_reply(tag, reply, now_ms());
            }
        }
        for out in core.take_out() {
            match out {
                PbOut::Reply { req, reply } => {
                    if let Some(to) = pending.remove(&req) {
                        ctx.reply(to, &reply);
                    }
                }
                PbOut::Call { to, attempt, request } => ctx.start_call(NodeId(to), &request, attempt),
            }
        }
    }
}

/// The course's `pbservice.Clerk`: finds the primary through the view service, caches it,
/// numbers its requests (at-most-once) and retries forever, 100 ms apart, asking the view
/// service again after each failure.
pub struct PbClerk {
    ctx: NodeCtx,
    vs: NodeId,
    client: u64,
    seq: u64,
    primary: Option<ServerId>,
}

impl PbClerk {
    /// A clerk calling from endpoint `ctx`, with a client id unique in the run.
    pub fn new(ctx: NodeCtx, vs: NodeId, client: u64) -> PbClerk {
        PbClerk { ctx, vs, client, seq: 0, primary: None }
    }

    /// Executes `op` exactly once, however many tries it takes.
    pub async fn call(&mut self, op: KvOp) -> KvResult {
        self.seq += 1;
        let req = PbRequest::Client(ClientOp { client: self.client, seq: self.seq, op });
        loop {
            if self.primary.is_none() {
                let view: Option<View> = self.ctx.call(self.vs, &VsRequest::Get).await.ok();
                self.primary = view.and_then(|v| v.primary);
            }
            if let Some(p) = self.primary {
                if let Ok(PbReply::Ok(r)) = self.ctx.call::<_, PbReply>(NodeId(p), &req).await {
                    return r;
                }
            }
            self.primary = None;
            sim::sleep(Duration::from_millis(PING_INTERVAL_MS)).await;
        }
    }

    pub async fn get(&mut self, key: &str) -> String {
        match self.call(KvOp::Get { key: key.into() }).await {
            KvResult::Value(v) => v,
            other => panic!("a Get answered {other:?}"),
        }
    }
}
