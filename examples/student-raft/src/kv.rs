//! The student's own key/value service (the course's lab 3): a server above Raft and a clerk,
//! written from scratch the way the course's `server.go` and `client.go` ask — nothing of
//! simlab's own service is used. simlab's kvraft suite runs it through
//! `scenarios::kvraft::KvService` (see [`StudentKv`]).
//!
//! Server: a clerk's request becomes a Raft command (`Start`); the server remembers which
//! request waits at which log index and answers it when that index applies — or tells the
//! clerk "wrong leader" when another entry lands there or the server stops leading. Writes are
//! applied at most once per (client, sequence number): a table keeps each client's last
//! applied sequence number and its answer, which a resent write gets again. A write answers
//! with the length and digest of the value it replaced or extended (the history checker then
//! pins each write to the state it followed: many concurrent appends to one key stay cheap to
//! judge). Once Raft's persisted state passes `maxraftstate`, the server hands Raft a snapshot
//! of its data and that table.
//!
//! Clerk: one request at a time, numbered; tries the server that last answered, else the next
//! one, giving each 600 ms.
//!
//! Planted mistake `no-duplicate-detection`: the table is never consulted, so a write the clerk
//! resends (its reply was lost, or its leader lost office after committing it) applies twice.

use nodes::course::ApplyMsg;
use nodes::replica::{Service, ServiceApi, ServiceWire, ServiceWireReply, WireReply};
use scenarios::kvraft::{value_digest, KvClient, KvOutput, KvService};
use serde::{Deserialize, Serialize};
use sim::{NodeCtx, NodeId, ReplyTo};
use std::collections::BTreeMap;
use std::time::Duration;

/// An operation on the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Op {
    Get(String),
    Put(String, String),
    Append(String, String),
}

/// A clerk's request, which is also the command the server puts in the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub client: u64,
    pub seq: u64,
    pub op: Op,
}

/// The server's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Reply {
    /// A Get's value (`""` for a missing key).
    Value(String),
    /// A write took effect on a value of `prev_len` bytes whose [`value_digest`] is
    /// `prev_digest`.
    Wrote { prev_len: u64, prev_digest: u64 },
    /// Not the leader, or the request lost its place in the log: try another server.
    WrongLeader,
}

/// What the server keeps in its snapshots.
#[derive(Default, Serialize, Deserialize)]
struct Store {
    data: BTreeMap<String, String>,
    /// Each client's last applied write: its sequence number and answer (duplicate
    /// detection).
    last: BTreeMap<u64, (u64, Reply)>,
}

/// One replica's server.
pub struct Server {
    store: Store,
    maxraftstate: Option<usize>,
    no_duplicate_detection: bool,
    /// Requests waiting for their log index: index -> (term it was started in, its request,
    /// who to answer).
    waiting: BTreeMap<u64, (u64, Request, ReplyTo)>,
}

impl Server {
    /// Applies one committed request; a write the client already had applied (a resend) gets
    /// its first answer again and changes nothing, unless the planted mistake is on.
    fn execute(&mut self, req: &Request) -> Reply {
        let (key, value) = match &req.op {
            Op::Get(key) => return Reply::Value(self.store.data.get(key).cloned().unwrap_or_default()),
            Op::Put(key, value) | Op::Append(key, value) => (key, value),
        };
        if let Some((seq, reply)) = self.store.last.get(&req.client) {
            if req.seq <= *seq && !self.no_duplicate_detection {
                return reply.clone();
            }
        }
        let current = self.store.data.entry(key.clone()).or_default();
        let reply = Reply::Wrote { prev_len: current.len() as u64, prev_digest: value_digest(current) };
        match req.op {
            Op::Put(..) => *current = value.clone(),
            _ => current.push_str(value),
        }
        self.store.last.insert(req.client, (req.seq, reply.clone()));
        reply
    }

    /// Tells every waiting clerk to try elsewhere.
    fn fail_all(&mut self, api: &ServiceApi<'_>) {
        for (_, (_, _, to)) in std::mem::take(&mut self.waiting) {
            api.reply(to, &Reply::WrongLeader);
        }
    }
}

impl Service for Server {
    type Request = Request;
    type Reply = Reply;

    fn restore(&mut self, snapshot: &[u8]) {
        if !snapshot.is_empty() {
            self.store = sim::decode(snapshot);
        }
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, _from: NodeId, req: Request, reply_to: ReplyTo) {
        let (index, term, is_leader) = api.start(sim::encode(&req));
        if !is_leader {
            api.reply(reply_to, &Reply::WrongLeader);
            return;
        }
        // An older request at the same index lost its place (a new term rewrote it).
        if let Some((_, _, to)) = self.waiting.insert(index, (term, req, reply_to)) {
            api.reply(to, &Reply::WrongLeader);
        }
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        match msg {
            ApplyMsg::Command { index, term, command } => {
                let req: Request = sim::decode(command);
                let reply = self.execute(&req);
                if let Some((started, waiter, to)) = self.waiting.remove(index) {
                    let ours = started == *term && waiter.client == req.client && waiter.seq == req.seq;
                    api.reply(to, &if ours { reply } else { Reply::WrongLeader });
                }
                // Snapshot once Raft's persisted state outgrows the limit (the course's 3B).
                self.maxraftstate.filter(|&max| api.state_size() >= max).map(|_| sim::encode(&self.store))
            }
            ApplyMsg::Snapshot { index, data, .. } => {
                self.store = sim::decode(data);
                // Requests at or below the snapshot's index will never be applied here.
                let later = self.waiting.split_off(&(index + 1));
                for (_, (_, _, to)) in std::mem::replace(&mut self.waiting, later) {
                    api.reply(to, &Reply::WrongLeader);
                }
                None
            }
        }
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        // A server that stopped leading, or leads in a later term, will not see its waiting
        // requests applied as started: the clerks must try elsewhere.
        let (term, is_leader) = api.get_state();
        if self.waiting.values().any(|(started, _, _)| !is_leader || *started != term) {
            self.fail_all(api);
        }
    }
}

/// How long the clerk waits for one server before trying the next.
pub const CLERK_TIMEOUT: Duration = Duration::from_millis(600);

/// The client library.
pub struct Clerk {
    ctx: NodeCtx,
    servers: Vec<NodeId>,
    client: u64,
    seq: u64,
    leader: usize,
}

impl Clerk {
    /// Performs `op` exactly once: the same numbered request until a server says it is done.
    async fn call(&mut self, op: Op) -> Reply {
        self.seq += 1;
        let req = ServiceWire::Service(Request { client: self.client, seq: self.seq, op });
        loop {
            let server = self.servers[self.leader];
            let call = self.ctx.call::<ServiceWire<Request>, ServiceWireReply<Reply>>(server, &req);
            match sim::timeout(CLERK_TIMEOUT, call).await {
                Some(Ok(WireReply::Service(Reply::WrongLeader))) | Some(Err(_)) | None => {}
                Some(Ok(WireReply::Service(reply))) => return reply,
                Some(Ok(WireReply::Peer(()))) => unreachable!("a server answers a clerk as a service"),
            }
            self.leader = (self.leader + 1) % self.servers.len();
            if self.leader == 0 {
                // Every server tried: an election is probably on.
                sim::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

impl KvClient for Clerk {
    async fn get(&mut self, key: &str) -> String {
        match self.call(Op::Get(key.into())).await {
            Reply::Value(value) => value,
            other => panic!("a Get answered {other:?}"),
        }
    }

    async fn put(&mut self, key: &str, value: &str) -> KvOutput {
        written(self.call(Op::Put(key.into(), value.into())).await)
    }

    async fn append(&mut self, key: &str, value: &str) -> KvOutput {
        written(self.call(Op::Append(key.into(), value.into())).await)
    }
}

/// What the history records of a write: what it replaced, which the checker verifies.
fn written(reply: Reply) -> KvOutput {
    match reply {
        Reply::Wrote { prev_len, prev_digest } => KvOutput::Wrote { prev_len, prev_digest },
        other => panic!("a write answered {other:?}"),
    }
}

/// The student's service as the kvraft suite runs it.
pub struct StudentKv;

impl KvService for StudentKv {
    /// Whether the planted mistake is on.
    type Config = bool;
    type Server = Server;
    type Clerk = Clerk;

    fn config(bug: Option<&str>) -> bool {
        bug == Some("no-duplicate-detection")
    }

    fn server(no_duplicate_detection: &bool, _ctx: NodeCtx, maxraftstate: Option<usize>) -> Server {
        Server {
            store: Store::default(),
            maxraftstate,
            no_duplicate_detection: *no_duplicate_detection,
            waiting: BTreeMap::new(),
        }
    }

    fn clerk(_: &bool, ctx: NodeCtx, servers: Vec<NodeId>, client_id: u64) -> Clerk {
        Clerk { ctx, servers, client: client_id, seq: 0, leader: 0 }
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        vec![("no-duplicate-detection", "writes are not deduplicated: a resent Append applies twice")]
    }
}
