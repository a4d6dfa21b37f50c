//! The replicated-state-machine server and its clerk, generic over the state machine (the
//! key/value store now; the shard controller reuses it).
//!
//! Server: a [`Service`] above Raft. A client request becomes a log entry through `start`;
//! the server remembers which request waits at which index and answers it when that index
//! applies — with the result, or with "wrong leader" if a different entry landed there. A
//! server that loses leadership (or sees its term change) fails every pending request at
//! once, so the clerk retries elsewhere promptly. Gets go through the log, which makes them
//! linearizable without any clock. When the persisted Raft state grows past `maxraftstate`
//! bytes, the server snapshots its state machine with the duplicate table.
//!
//! Clerk: one outstanding request, numbered; remembers the leader; on a failed call, a
//! "wrong leader", or no answer within a timeout, tries the next server; after a full round
//! without success it pauses briefly (a zero-latency network would otherwise spin).

use crate::raft::{Service, ServiceApi, Wire, WireReply};
use cores::raft::ApplyMsg;
use cores::rsm::{Command, Rsm, RsmBugs, StateMachine};
use serde::{Deserialize, Serialize};
use sim::{NodeCtx, NodeId, ReplyTo};
use std::collections::BTreeMap;
use std::time::Duration;

/// A clerk's request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClerkRequest<Op> {
    pub client: u64,
    pub seq: u64,
    pub op: Op,
}

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClerkReply<Out> {
    Ok(Out),
    WrongLeader,
}

struct Pending {
    reply_to: ReplyTo,
    client: u64,
    seq: u64,
    term: u64,
}

/// The server side: a Raft service applying `Command<SM::Op>` entries to an `Rsm<SM>`.
pub struct RsmServer<SM: StateMachine> {
    ctx: NodeCtx,
    rsm: Rsm<SM>,
    /// Snapshot when the persisted Raft state exceeds this many bytes (`None`: never).
    maxraftstate: Option<usize>,
    bugs: RsmBugs,
    /// Requests waiting for their log index to apply.
    pending: BTreeMap<u64, Pending>,
    last_applied: u64,
    last_snapshot_len: usize,
}

impl<SM: StateMachine> RsmServer<SM> {
    pub fn new(ctx: NodeCtx, maxraftstate: Option<usize>, bugs: RsmBugs) -> Self {
        RsmServer {
            ctx,
            rsm: Rsm::default(),
            maxraftstate,
            bugs,
            pending: BTreeMap::new(),
            last_applied: 0,
            last_snapshot_len: 0,
        }
    }

    /// The replica's state (tests and checks).
    pub fn state(&self) -> &Rsm<SM> {
        &self.rsm
    }

    fn fail_pending(&mut self, api: &ServiceApi<'_>, keep: impl Fn(&u64, &Pending) -> bool) {
        let gone: Vec<u64> = self.pending.iter().filter(|(i, p)| !keep(i, p)).map(|(i, _)| *i).collect();
        for i in gone {
            let p = self.pending.remove(&i).unwrap();
            api.reply(p.reply_to, &ClerkReply::<SM::Out>::WrongLeader);
        }
    }
}

impl<SM: StateMachine> Service for RsmServer<SM> {
    type Request = ClerkRequest<SM::Op>;
    type Reply = ClerkReply<SM::Out>;

    fn restore(&mut self, snapshot: &[u8]) {
        if !snapshot.is_empty() {
            self.rsm = Rsm::restore(snapshot).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, _from: NodeId, req: Self::Request, reply_to: ReplyTo) {
        if self.bugs.local_reads && api.core.get_state().1 {
            if let Some(out) = self.rsm.sm.read(&req.op) {
                api.reply(reply_to, &ClerkReply::Ok(out));
                return;
            }
        }
        let cmd = Command { client: req.client, seq: req.seq, op: req.op.clone() };
        let (index, term, is_leader) = api.start(sim::encode(&cmd));
        if !is_leader {
            api.reply(reply_to, &ClerkReply::<SM::Out>::WrongLeader);
            return;
        }
        if self.bugs.reply_before_commit {
            // Answer from a copy of the state as if the entry had applied.
            let mut copy = self.rsm.clone();
            let out = copy.apply(&cmd, &self.bugs);
            api.reply(reply_to, &ClerkReply::Ok(out));
            return;
        }
        // A request already waiting at this index was for an entry that was overwritten.
        if let Some(old) = self.pending.insert(index, Pending { reply_to, client: req.client, seq: req.seq, term }) {
            api.reply(old.reply_to, &ClerkReply::<SM::Out>::WrongLeader);
        }
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        match msg {
            ApplyMsg::Command { index, command, .. } => {
                let cmd: Command<SM::Op> = sim::decode(command);
                let out = self.rsm.apply(&cmd, &self.bugs);
                self.last_applied = *index;
                if let Some(p) = self.pending.remove(index) {
                    if p.client == cmd.client && p.seq == cmd.seq {
                        api.reply(p.reply_to, &ClerkReply::Ok(out));
                    } else {
                        api.reply(p.reply_to, &ClerkReply::<SM::Out>::WrongLeader);
                    }
                }
                match self.maxraftstate {
                    Some(max) if self.ctx.raft_state_size() > max => {
                        let snap = self.rsm.snapshot(&self.bugs, self.last_snapshot_len);
                        self.last_snapshot_len = snap.len();
                        Some(snap)
                    }
                    _ => None,
                }
            }
            ApplyMsg::Snapshot { index, data, .. } => {
                self.rsm = Rsm::restore(data).unwrap_or_else(|e| panic!("{e}"));
                self.last_applied = *index;
                // Requests waiting at indexes the snapshot covers cannot learn their result here.
                let upto = *index;
                self.fail_pending(api, |i, _| *i > upto);
                None
            }
        }
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        if self.pending.is_empty() {
            return;
        }
        let (term, leader) = api.core.get_state();
        // Leadership lost or a new term: those entries may never commit; let clerks retry.
        self.fail_pending(api, |_, p| leader && p.term == term);
    }
}

/// A clerk's answer wait: a server that stops answering (a deposed leader in a minority)
/// is given up on after this long, and the request goes to the next server.
pub const CLERK_TIMEOUT: Duration = Duration::from_millis(600);
/// Pause after asking every server once without success (an election is probably on).
pub const CLERK_ROUND_PAUSE: Duration = Duration::from_millis(20);

/// The client library: numbered requests, one at a time, retried until they succeed.
pub struct Clerk<SM: StateMachine> {
    ctx: NodeCtx,
    servers: Vec<NodeId>,
    client: u64,
    seq: u64,
    leader: usize,
    _sm: std::marker::PhantomData<SM>,
}

impl<SM: StateMachine> Clerk<SM> {
    /// A clerk talking through `ctx` to `servers` (in the order it should try them), with
    /// a client id unique in the run.
    pub fn new(ctx: NodeCtx, servers: Vec<NodeId>, client: u64) -> Self {
        assert!(!servers.is_empty());
        Clerk { ctx, servers, client, seq: 0, leader: 0, _sm: std::marker::PhantomData }
    }

    pub fn client_id(&self) -> u64 {
        self.client
    }

    pub fn node(&self) -> NodeId {
        self.ctx.id()
    }

    /// Performs `op` exactly once, however many times it must be sent.
    pub async fn call(&mut self, op: SM::Op) -> SM::Out {
        self.seq += 1;
        let req = Wire::Service(ClerkRequest { client: self.client, seq: self.seq, op });
        let mut tried = 0;
        loop {
            let server = self.servers[self.leader];
            let reply = sim::timeout(
                CLERK_TIMEOUT,
                self.ctx.call::<Wire<ClerkRequest<SM::Op>>, WireReply<ClerkReply<SM::Out>>>(server, &req),
            )
            .await;
            if let Some(Ok(WireReply::Service(ClerkReply::Ok(out)))) = reply {
                return out;
            }
            self.leader = (self.leader + 1) % self.servers.len();
            tried += 1;
            if tried % self.servers.len() == 0 {
                sim::sleep(CLERK_ROUND_PAUSE).await;
            }
        }
    }
}
