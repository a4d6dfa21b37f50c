//! One server of a chain-replicated register (van Renesse and Schneider, "Chain Replication
//! for Supporting High Throughput and Availability", OSDI 2004), on simlab's simulated world.
//!
//! The servers form a fixed chain, head to tail. A write enters at the head, which numbers it
//! (its *version*) and applies it; each server passes the updates it applied to its successor
//! in version order; the tail's state is the register's committed state. Reads are answered
//! by the tail. A write is answered once the tail holds it, so a write that returned is seen
//! by every later read: the register is linearizable.
//!
//! How an update's acknowledgement travels back: a server answers its predecessor's Update
//! call only once the update is *stable* (the tail holds it), and every answer carries the
//! highest stable version the server knows. A server resends an update whose call failed
//! (lost request or reply, link down) after [`RETRY`]; duplicates and late arrivals are
//! recognised by their version. Writes carry (client, sequence number), so a client's retry
//! of a write the head already numbered is not applied twice.
//!
//! The server is one event loop over its inbox (requests, and the outcomes of the calls it
//! started), reporting its (version, value) after every step to the run's [`ChainChecker`].

use crate::checker::ChainChecker;
use serde::{Deserialize, Serialize};
use sim::{Failure, Incoming, NodeCtx, NodeId, ReplyTo};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

/// How long a server waits before resending updates whose calls failed. (Never at once: a
/// call can fail at the instant it is made, and an immediate resend would spin without
/// simulated time passing.)
pub const RETRY: Duration = Duration::from_millis(20);

/// A classic mistake that can be switched on, to see the suite catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mistake {
    /// The head answers a write as soon as it has applied it, before the tail holds it: a
    /// read at the tail just after the write returned still sees the old value.
    AckBeforeTail,
    /// A server applies every update it receives, whatever its version: a late or resent
    /// update overwrites a newer value.
    NoVersionCheck,
}

impl Mistake {
    /// Every mistake: (mistake, name for `--bug`, what it is).
    pub const ALL: &'static [(Mistake, &'static str, &'static str)] = &[
        (
            Mistake::AckBeforeTail,
            "ack-before-tail",
            "the head answers a write once it applied it, before the tail holds it",
        ),
        (
            Mistake::NoVersionCheck,
            "no-version-check",
            "servers apply every update they receive, so a late or resent one overwrites a newer value",
        ),
    ];

    /// The mistake named `name`.
    pub fn from_name(name: &str) -> Option<Mistake> {
        Mistake::ALL.iter().find(|(_, n, _)| *n == name).map(|(m, _, _)| *m)
    }
}

/// Every request a server takes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// A client's write, sent to the head. `seq` numbers the client's writes from 1.
    Write { client: u64, seq: u64, value: u64 },
    /// A client's read, sent to the tail.
    Read,
    /// An update from the predecessor: the register holds `value` from version `version` on.
    Update { version: u64, value: u64 },
}

/// Every answer a server gives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The write is durable at the tail.
    Written,
    /// The register's committed value.
    Value(u64),
    /// The update is stable; the tail holds every version up to `stable`.
    Stable { stable: u64 },
    /// The request went to the wrong end of the chain.
    WrongServer,
}

/// Who waits for a version to become stable.
enum Waiter {
    Client(ReplyTo),
    Predecessor(ReplyTo),
}

/// One server's state.
pub struct Server {
    ctx: NodeCtx,
    /// Position in the chain: 0 is the head, `chain.len() - 1` the tail.
    me: usize,
    chain: Vec<NodeId>,
    mistake: Option<Mistake>,
    checker: Rc<RefCell<ChainChecker>>,
    /// The register as this server holds it: the value of the highest version applied.
    version: u64,
    value: u64,
    /// The highest version known to be held by the tail.
    stable: u64,
    /// Head only: each client's last write (sequence number, version given to it).
    clients: BTreeMap<u64, (u64, u64)>,
    /// Applied here and not yet known stable: version → value (kept to resend).
    unstable: BTreeMap<u64, u64>,
    /// Updates sent to the successor whose calls are still out.
    in_flight: BTreeSet<u64>,
    /// Updates whose calls failed, to resend at `retry_at`.
    failed: BTreeSet<u64>,
    retry_at: Option<Duration>,
    /// Updates that arrived ahead of a missing one: version → value.
    early: BTreeMap<u64, u64>,
    /// Answers due once a version is stable.
    waiting: Vec<(u64, Waiter)>,
}

impl Server {
    fn is_head(&self) -> bool {
        self.me == 0
    }

    fn is_tail(&self) -> bool {
        self.me + 1 == self.chain.len()
    }

    /// Applies version `version` holding `value`; the tail's applied versions are stable.
    fn apply(&mut self, version: u64, value: u64) {
        self.version = version;
        self.value = value;
        if self.is_tail() {
            self.stable = self.stable.max(version);
        } else {
            self.unstable.insert(version, value);
        }
    }

    fn on_request(&mut self, req: Request, reply_to: ReplyTo) {
        match req {
            Request::Write { client, seq, value } => {
                if !self.is_head() {
                    self.ctx.reply(reply_to, &Response::WrongServer);
                    return;
                }
                let version = match self.clients.get(&client) {
                    // A retry of a write already numbered: answer it when that is stable.
                    Some(&(last, version)) if last == seq => version,
                    // A late copy of a write the client no longer waits for.
                    Some(&(last, _)) if last > seq => return,
                    _ => {
                        let version = self.version + 1;
                        self.clients.insert(client, (seq, version));
                        self.apply(version, value);
                        version
                    }
                };
                if self.mistake == Some(Mistake::AckBeforeTail) {
                    self.ctx.reply(reply_to, &Response::Written);
                } else {
                    self.waiting.push((version, Waiter::Client(reply_to)));
                }
            }
            Request::Read => {
                let r = if self.is_tail() { Response::Value(self.value) } else { Response::WrongServer };
                self.ctx.reply(reply_to, &r);
            }
            Request::Update { version, value } => {
                if self.mistake == Some(Mistake::NoVersionCheck) {
                    self.apply(version, value);
                } else if version == self.version + 1 {
                    self.apply(version, value);
                    // Whatever arrived early and now follows on.
                    while let Some(value) = self.early.remove(&(self.version + 1)) {
                        self.apply(self.version + 1, value);
                    }
                } else if version > self.version + 1 {
                    self.early.insert(version, value);
                }
                // Duplicates and late copies (version <= ours) change nothing.
                self.waiting.push((version, Waiter::Predecessor(reply_to)));
            }
        }
    }

    fn on_response(&mut self, version: u64, result: Result<Vec<u8>, sim::RpcError>) {
        self.in_flight.remove(&version);
        match result.map(|bytes| sim::decode::<Response>(&bytes)) {
            Ok(Response::Stable { stable }) => self.stable = self.stable.max(stable),
            Ok(other) => panic!("server {} answered an update with {other:?}", self.me + 1),
            Err(_) => {
                self.failed.insert(version);
                self.retry_at.get_or_insert(sim::now() + RETRY);
            }
        }
    }

    /// After every event: answer what became stable, drop what no longer needs resending,
    /// send what the successor lacks, and report to the checker.
    fn after_event(&mut self) {
        let stable = self.stable;
        let (done, still): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(v, _)| *v <= stable);
        self.waiting = still;
        for (_, waiter) in done {
            match waiter {
                Waiter::Client(r) => self.ctx.reply(r, &Response::Written),
                Waiter::Predecessor(r) => self.ctx.reply(r, &Response::Stable { stable }),
            }
        }
        self.unstable.retain(|v, _| *v > stable);
        self.failed.retain(|v| *v > stable);
        if self.retry_at.is_some_and(|t| sim::now() >= t) {
            self.retry_at = None;
            self.failed.clear();
        }
        if !self.is_tail() {
            let next = self.chain[self.me + 1];
            let to_send: Vec<(u64, u64)> = self
                .unstable
                .iter()
                .filter(|(v, _)| !self.in_flight.contains(v) && !self.failed.contains(v))
                .map(|(v, x)| (*v, *x))
                .collect();
            for (version, value) in to_send {
                self.ctx.start_call(next, &Request::Update { version, value }, version);
                self.in_flight.insert(version);
            }
        }
        let r = self.checker.borrow_mut().observe(self.me, self.version, self.value);
        if let Err(why) = r {
            sim::fail(Failure::safety("register::chain", why));
        }
    }
}

/// The process body of server `me` of `chain`: serve until the run ends.
pub async fn serve(
    ctx: NodeCtx,
    me: usize,
    chain: Vec<NodeId>,
    mistake: Option<Mistake>,
    checker: Rc<RefCell<ChainChecker>>,
) {
    let mut s = Server {
        ctx,
        me,
        chain,
        mistake,
        checker,
        version: 0,
        value: 0,
        stable: 0,
        clients: BTreeMap::new(),
        unstable: BTreeMap::new(),
        in_flight: BTreeSet::new(),
        failed: BTreeSet::new(),
        retry_at: None,
        early: BTreeMap::new(),
        waiting: Vec::new(),
    };
    loop {
        let next = match s.retry_at {
            Some(deadline) => ctx.recv_until(deadline).await,
            None => ctx.recv().await,
        };
        match next {
            Some(Incoming::Request { payload, reply_to, .. }) => s.on_request(sim::decode(&payload), reply_to),
            Some(Incoming::Response { tag, result, .. }) => s.on_response(tag, result),
            None => {} // the retry deadline
        }
        s.after_event();
    }
}
