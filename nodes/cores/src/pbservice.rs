//! The primary/backup key/value server of the course's 2015 lab 2B (reference
//! `6824-old-labs.md` §3), as a pure core: every decision about roles, forwarding, state
//! transfer, acknowledgement and duplicates is made here; the shell only carries it out.
//!
//! Protocol (reference §3.2):
//! - A server acts only as the primary of the view it knows, and only with a valid copy of
//!   the state (the first primary's empty store, or one handed over by a primary).
//! - The primary executes client operations one at a time. With a backup in its view, it
//!   forwards each operation, Gets included, with its view number, and executes it only
//!   once the backup has it; a backup that knows a newer view refuses, which is how a stale
//!   primary learns it is stale (it then answers `ErrWrongServer`). A failed forward is
//!   retried (never skipped: a later operation must not overtake it at the backup).
//! - At every view with a backup, the primary hands the backup its whole state (store and
//!   duplicate table) and acknowledges the view to the view service only after the backup
//!   has it: a backup promoted before it had the state would lose data.
//! - Operations are at-most-once: each client numbers its requests, and the duplicate table
//!   keeps each client's last number and answer, replicated with the store.

use crate::kv::{Kv, KvOp, KvResult};
use crate::rsm::StateMachine;
use crate::viewservice::{ServerId, View};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How long a primary waits after a failed forward or hand-over before trying again, in ms.
pub const RETRY_MS: u64 = 10;
/// Client operations a server queues behind the one it executes; more are refused.
pub const MAX_QUEUED: usize = 1024;

/// A client's numbered operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientOp {
    /// The clerk's id.
    pub client: u64,
    /// The clerk's sequence number for this operation (at most once per (client, seq)).
    pub seq: u64,
    /// The operation.
    pub op: KvOp,
}

/// The replicated state: the store and the duplicate table (client → last seq, answer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PbState {
    /// The key/value store.
    pub kv: Kv,
    /// Each client's last sequence number and its answer.
    pub dedup: BTreeMap<u64, (u64, KvResult)>,
}

impl PbState {
    /// Executes `op` at most once: a repeat of the client's last operation gets its answer
    /// (unless `dedup` is off: the planted bug `no-duplicate-detection`).
    fn execute(&mut self, op: &ClientOp, dedup: bool) -> KvResult {
        if let Some((seq, out)) = self.dedup.get(&op.client) {
            if *seq == op.seq && dedup {
                return out.clone();
            }
            assert!(*seq <= op.seq, "client {} sent seq {} after {}", op.client, op.seq, seq);
        }
        let out = self.kv.apply(&op.op);
        self.dedup.insert(op.client, (op.seq, out.clone()));
        out
    }
}

/// Requests a pb server takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PbRequest {
    /// From a clerk.
    Client(ClientOp),
    /// From the primary of view `viewnum`, to its backup.
    Forward {
        /// The primary's view.
        viewnum: u64,
        /// The operation to execute.
        op: ClientOp,
    },
    /// The primary of view `viewnum` hands its backup the whole state.
    Transfer {
        /// The primary's view.
        viewnum: u64,
        /// The whole replicated state.
        state: PbState,
    },
}

/// Answers of a pb server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PbReply {
    /// Done, with the operation's answer.
    Ok(KvResult),
    /// Not the primary (or backup) of the view named, or without a valid state.
    ErrWrongServer,
}

/// Planted bugs (switched on by scenarios).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PbBugs {
    /// `reply-before-backup`: the primary executes and answers without waiting for the
    /// backup to have the operation.
    pub reply_before_backup: bool,
    /// `gets-not-forwarded`: the primary answers Gets from its own copy, so a primary that
    /// was replaced without knowing it serves stale values.
    pub gets_not_forwarded: bool,
    /// `no-duplicate-detection`: a retried request is executed again.
    pub no_duplicate_detection: bool,
    /// `empty-transfer`: the primary hands a new backup an empty state instead of its own.
    pub empty_transfer: bool,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PbOut {
    /// Answer client request `req` (the shell's number for it).
    Reply {
        /// The shell's number for the request.
        req: u64,
        /// The answer.
        reply: PbReply,
    },
    /// Call `to` with `request`; hand its outcome to [`PbServer::on_peer_reply`] with `attempt`.
    Call {
        /// The server called.
        to: ServerId,
        /// The core's number for this attempt.
        attempt: u64,
        /// What to send.
        request: PbRequest,
    },
}

/// What the primary is waiting for from its backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    Nothing,
    /// A call with this attempt number is out.
    Reply(u64),
    /// The last attempt failed; try again at this time.
    RetryAt(u64),
}

/// One pb server.
#[derive(Clone, Debug)]
pub struct PbServer {
    me: ServerId,
    view: View,
    state: PbState,
    /// The view whose state this server holds a valid copy of (0: none).
    valid_in: u64,
    /// The highest view this server acknowledged to the view service.
    acked: u64,
    /// The view whose backup has the state (the hand-over is done).
    handed_over: u64,
    queue: VecDeque<(u64, ClientOp)>,
    /// The operation being executed (its request number), once it leaves the queue.
    current: Option<(u64, ClientOp)>,
    waiting: Waiting,
    /// The backup refused this primary: it may be stale, so it refuses clients until the
    /// hand-over succeeds again or a new view arrives.
    refusing: bool,
    next_attempt: u64,
    out: Vec<PbOut>,
    bugs: PbBugs,
}

impl PbServer {
    /// A fresh server (also after a restart: no state, view 0).
    pub fn new(me: ServerId, bugs: PbBugs) -> PbServer {
        PbServer {
            me,
            view: View::default(),
            state: PbState::default(),
            valid_in: 0,
            acked: 0,
            handed_over: 0,
            queue: VecDeque::new(),
            current: None,
            waiting: Waiting::Nothing,
            refusing: false,
            next_attempt: 1,
            out: Vec::new(),
            bugs,
        }
    }

    /// The view this server knows.
    pub fn view(&self) -> View {
        self.view
    }

    /// The store, for a tester that reads a server's copy directly.
    pub fn state(&self) -> &PbState {
        &self.state
    }

    /// The view number to ping with: the known view, unless this server is its primary and
    /// the backup does not have the state yet — then the last one acknowledged.
    pub fn ping_viewnum(&mut self) -> u64 {
        let v = self.view;
        let ready = v.primary != Some(self.me) || v.backup.is_none() || self.handed_over == v.viewnum;
        if ready {
            self.acked = v.viewnum;
        }
        // 0 would announce a restart; an older number is only a heartbeat.
        if v.viewnum > 0 {
            self.acked.max(1)
        } else {
            0
        }
    }

    fn is_primary(&self) -> bool {
        self.view.primary == Some(self.me)
    }

    /// The view service answered a ping (or a Get) with `view`.
    pub fn on_view(&mut self, view: View) {
        if view.viewnum <= self.view.viewnum {
            return;
        }
        self.view = view;
        self.refusing = false;
        if self.is_primary() {
            // The primary of view v held a valid copy in view v - 1 (as its primary or its
            // backup: the view service's rule), or v is the first view, whose empty store is
            // the state. A primary never skips a view of its own: it acknowledges each.
            // Otherwise (the view service broke its rules) it refuses to serve.
            let v = view.viewnum;
            self.valid_in = if v == 1 || self.valid_in + 1 == v { v } else { 0 };
            // Whatever was sent to the old backup is void: hand over first, then redo the
            // current operation.
            self.waiting = Waiting::Nothing;
        } else {
            self.fail_all();
        }
        self.advance();
    }

    /// Answers everything pending with `ErrWrongServer` (no longer the primary).
    fn fail_all(&mut self) {
        self.waiting = Waiting::Nothing;
        for (req, _) in self.current.take().into_iter().chain(self.queue.drain(..)) {
            self.out.push(PbOut::Reply { req, reply: PbReply::ErrWrongServer });
        }
    }

    /// A clerk's request, numbered `req` by the shell.
    pub fn on_client(&mut self, req: u64, op: ClientOp) {
        let full = self.queue.len() >= MAX_QUEUED;
        if !self.is_primary() || self.valid_in != self.view.viewnum || self.refusing || full {
            self.out.push(PbOut::Reply { req, reply: PbReply::ErrWrongServer });
            return;
        }
        self.queue.push_back((req, op));
        self.advance();
    }

    /// Time passed: retry a failed forward or hand-over when it is due.
    pub fn tick(&mut self, now_ms: u64) {
        if matches!(self.waiting, Waiting::RetryAt(t) if t <= now_ms) {
            self.waiting = Waiting::Nothing;
            self.advance();
        }
    }

    /// When the core next wants `tick`, in ms.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        match self.waiting {
            Waiting::RetryAt(t) => Some(t),
            _ => None,
        }
    }

    /// The primary's next move: hand over, then forward and execute operations in order.
    fn advance(&mut self) {
        if !self.is_primary() || self.waiting != Waiting::Nothing {
            return;
        }
        let viewnum = self.view.viewnum;
        if let Some(b) = self.view.backup {
            if self.handed_over != viewnum {
                let state = if self.bugs.empty_transfer { PbState::default() } else { self.state.clone() };
                let request = PbRequest::Transfer { viewnum, state };
                self.call(b, request);
                return;
            }
        }
        loop {
            if self.current.is_none() {
                self.current = self.queue.pop_front();
            }
            let Some((req, op)) = self.current.clone() else { return };
            let needs_backup = !(self.bugs.gets_not_forwarded && matches!(op.op, KvOp::Get { .. }));
            match self.view.backup {
                Some(b) if needs_backup && !self.bugs.reply_before_backup => {
                    self.call(b, PbRequest::Forward { viewnum, op });
                    return;
                }
                Some(b) if needs_backup => {
                    // The planted bug: send, then answer without waiting.
                    self.call(b, PbRequest::Forward { viewnum, op: op.clone() });
                    self.waiting = Waiting::Nothing;
                    self.finish(req, &op);
                }
                _ => self.finish(req, &op),
            }
        }
    }

    fn finish(&mut self, req: u64, op: &ClientOp) {
        let out = self.state.execute(op, !self.bugs.no_duplicate_detection);
        self.current = None;
        self.out.push(PbOut::Reply { req, reply: PbReply::Ok(out) });
    }

    fn call(&mut self, to: ServerId, request: PbRequest) {
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        self.waiting = Waiting::Reply(attempt);
        self.out.push(PbOut::Call { to, attempt, request });
    }

    /// The outcome of call `attempt` to the backup: its answer, or `None` if the call failed.
    pub fn on_peer_reply(&mut self, attempt: u64, reply: Option<PbReply>, now_ms: u64) {
        if self.waiting != Waiting::Reply(attempt) {
            return; // a stale attempt (the view moved on, or a planted bug's unawaited call)
        }
        match reply {
            Some(PbReply::Ok(_)) => {
                self.waiting = Waiting::Nothing;
                if self.handed_over != self.view.viewnum {
                    self.handed_over = self.view.viewnum;
                    self.refusing = false;
                } else if let Some((req, op)) = self.current.clone() {
                    self.finish(req, &op);
                }
                self.advance();
            }
            Some(PbReply::ErrWrongServer) => {
                // The backup refuses: it knows a newer view (this server may be stale), or it
                // lost its state. Stop answering as primary until the view service says
                // otherwise, and hand over again if it is still the backup.
                self.handed_over = 0;
                self.refusing = true;
                self.fail_all();
                self.waiting = Waiting::RetryAt(now_ms + RETRY_MS);
            }
            None => self.waiting = Waiting::RetryAt(now_ms + RETRY_MS),
        }
    }

    /// A forwarded operation from the primary of view `viewnum`.
    pub fn on_forward(&mut self, viewnum: u64, op: &ClientOp) -> PbReply {
        if viewnum < self.view.viewnum || self.valid_in != viewnum || self.is_primary() {
            return PbReply::ErrWrongServer;
        }
        PbReply::Ok(self.state.execute(op, !self.bugs.no_duplicate_detection))
    }

    /// The primary of view `viewnum` hands over its state.
    pub fn on_transfer(&mut self, viewnum: u64, state: PbState) -> PbReply {
        let primary_here = self.is_primary() && self.view.viewnum >= viewnum;
        if viewnum < self.view.viewnum || viewnum < self.valid_in || primary_here {
            return PbReply::ErrWrongServer;
        }
        self.state = state;
        self.valid_in = viewnum;
        PbReply::Ok(KvResult::default())
    }

    /// Takes the outputs of the steps so far, in order.
    pub fn take_out(&mut self) -> Vec<PbOut> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(viewnum: u64, p: ServerId, b: Option<ServerId>) -> View {
        View { viewnum, primary: Some(p), backup: b }
    }

    fn put(client: u64, seq: u64, k: &str, v: &str) -> ClientOp {
        ClientOp { client, seq, op: KvOp::Put { key: k.into(), value: v.into() } }
    }

    fn get(client: u64, seq: u64, k: &str) -> ClientOp {
        ClientOp { client, seq, op: KvOp::Get { key: k.into() } }
    }

    /// Delivers every call `from` makes to `to`, answering `from` with `to`'s reply.
    fn pump(from: &mut PbServer, to: &mut PbServer) -> Vec<PbOut> {
        let mut replies = Vec::new();
        loop {
            let outs = from.take_out();
            if outs.is_empty() {
                return replies;
            }
            for o in outs {
                match o {
                    PbOut::Call { attempt, request, .. } => {
                        let r = match request {
                            PbRequest::Forward { viewnum, op } => to.on_forward(viewnum, &op),
                            PbRequest::Transfer { viewnum, state } => to.on_transfer(viewnum, state),
                            PbRequest::Client(_) => unreachable!(),
                        };
                        from.on_peer_reply(attempt, Some(r), 0);
                    }
                    reply => replies.push(reply),
                }
            }
        }
    }

    #[test]
    fn primary_hands_over_then_forwards_and_acks_only_after_the_hand_over() {
        let (mut p, mut b) = (PbServer::new(1, PbBugs::default()), PbServer::new(2, PbBugs::default()));
        p.on_view(view(1, 1, None));
        assert_eq!(p.ping_viewnum(), 1);
        p.on_client(7, put(9, 1, "a", "x"));
        assert_eq!(
            pump(&mut p, &mut b),
            vec![PbOut::Reply { req: 7, reply: PbReply::Ok(KvResult::Wrote { prev_len: 0, prev_digest: 0 }) }]
        );
        p.on_view(view(2, 1, Some(2)));
        b.on_view(view(2, 1, Some(2)));
        assert_eq!(p.ping_viewnum(), 1, "no ack of view 2 before the backup has the state");
        let outs = p.take_out();
        assert!(matches!(&outs[..], [PbOut::Call { to: 2, request: PbRequest::Transfer { viewnum: 2, .. }, .. }]));
        let PbOut::Call { attempt, request: PbRequest::Transfer { viewnum, state }, .. } = outs[0].clone() else {
            unreachable!()
        };
        p.on_peer_reply(attempt, Some(b.on_transfer(viewnum, state)), 0);
        assert_eq!(p.ping_viewnum(), 2);
        p.on_client(8, get(9, 2, "a"));
        let replies = pump(&mut p, &mut b);
        assert_eq!(replies, vec![PbOut::Reply { req: 8, reply: PbReply::Ok(KvResult::Value("x".into())) }]);
        assert_eq!(b.state().dedup.get(&9).map(|d| d.0), Some(2), "the backup executed the Get too");
        // A repeated request gets the recorded answer, at both.
        p.on_client(9, get(9, 2, "a"));
        assert_eq!(
            pump(&mut p, &mut b),
            vec![PbOut::Reply { req: 9, reply: PbReply::Ok(KvResult::Value("x".into())) }]
        );
    }

    #[test]
    fn a_stale_primary_learns_it_from_the_backup_and_refuses() {
        let (mut p, mut b) = (PbServer::new(1, PbBugs::default()), PbServer::new(2, PbBugs::default()));
        p.on_view(view(1, 1, None));
        p.on_view(view(2, 1, Some(2)));
        b.on_view(view(2, 1, Some(2)));
        pump(&mut p, &mut b);
        // The backup moves on to view 3 as primary; the old primary does not know.
        b.on_view(view(3, 2, None));
        p.on_client(5, get(4, 1, "a"));
        assert_eq!(pump(&mut p, &mut b), vec![PbOut::Reply { req: 5, reply: PbReply::ErrWrongServer }]);
        p.on_client(6, get(4, 1, "a"));
        assert_eq!(p.take_out(), vec![PbOut::Reply { req: 6, reply: PbReply::ErrWrongServer }], "refusing");
        // A server that is not the primary of its view refuses clients.
        b.on_view(view(4, 3, Some(2)));
        b.on_client(1, get(4, 1, "a"));
        assert_eq!(b.take_out(), vec![PbOut::Reply { req: 1, reply: PbReply::ErrWrongServer }]);
    }

    #[test]
    fn a_failed_forward_is_retried_before_anything_else() {
        let (mut p, mut b) = (PbServer::new(1, PbBugs::default()), PbServer::new(2, PbBugs::default()));
        p.on_view(view(1, 1, None));
        p.on_view(view(2, 1, Some(2)));
        b.on_view(view(2, 1, Some(2)));
        pump(&mut p, &mut b);
        p.on_client(1, put(1, 1, "k", "a"));
        p.on_client(2, put(2, 1, "k", "b"));
        let outs = p.take_out();
        let [PbOut::Call { attempt, .. }] = outs[..] else { panic!("one forward at a time: {outs:?}") };
        p.on_peer_reply(attempt, None, 100);
        assert!(p.take_out().is_empty());
        assert_eq!(p.next_deadline_ms(), Some(100 + RETRY_MS));
        p.tick(100 + RETRY_MS);
        let replies = pump(&mut p, &mut b);
        assert_eq!(replies.len(), 2);
        assert_eq!(p.state(), b.state(), "same order at both");
    }

    #[test]
    fn the_planted_bug_answers_before_the_backup_has_it() {
        let bugs = PbBugs { reply_before_backup: true, ..PbBugs::default() };
        let (mut p, mut b) = (PbServer::new(1, bugs), PbServer::new(2, bugs));
        p.on_view(view(1, 1, None));
        p.on_view(view(2, 1, Some(2)));
        b.on_view(view(2, 1, Some(2)));
        pump(&mut p, &mut b);
        p.on_client(1, put(1, 1, "k", "a"));
        let outs = p.take_out();
        assert!(outs.iter().any(|o| matches!(o, PbOut::Reply { req: 1, .. })), "answered at once: {outs:?}");
        assert_ne!(p.state(), b.state(), "the backup does not have it yet");
    }
}
