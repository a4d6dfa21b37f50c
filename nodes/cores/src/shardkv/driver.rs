//! What a replica group does on its own, as a pure core: poll the controller, pull shards
//! from their previous owners, have previous owners delete what arrived. The group's shell
//! (`nodes::shardkv`) only carries out the calls this returns and proposes the operations it
//! hands back; every decision is here, driven by the group's applied state ([`ShardKv`]).
//!
//! # Rules
//! - Only the replica that believes it leads acts (lab 4B text: the leader polls); the others
//!   keep their timer and stay quiet, so a new leader takes over within one poll.
//! - At its first poll as leader of a term, a replica proposes a blank entry
//!   ([`ShardKvOp::Noop`]): Raft commits earlier terms' entries only through one of the
//!   leader's own (§5.4.2, §8), and after a crash a group that owns nothing gets no client
//!   requests — it would never apply a Reconfigure or a delete its log already holds, and
//!   every group waiting on it would wait forever.
//! - Every [`POLL_MS`] (the lab's "about every 100 milliseconds") the leader asks the controller
//!   for the configuration after its own when it is settled ([`ShardKv::config_to_query`]), and
//!   sends one pull per previous owner it still waits for ([`ShardKv::pull_tasks`]) and one
//!   delete request per previous owner that still holds a copy ([`ShardKv::delete_tasks`]).
//! - At most one call per purpose is in flight (the query; each (configuration, group) pull or
//!   delete). A call unanswered after [`CALL_TIMEOUT_MS`] is given up (labrpc has no timeout: a
//!   handler waiting on a minority leader's log may never answer) and the next poll asks again.
//! - The server asked is the one believed to lead its group (the controller's, or the previous
//!   owner's). A "wrong leader" answer moves to the next server at once, until each was asked
//!   once since the last poll; a failed call, or "not ready", moves to the next server at the
//!   next poll. Pulls may be answered by any replica that has reached the configuration (the
//!   offered data is frozen), so "not ready" also moves on.
//! - An answer becomes a proposal only through the state's own functions
//!   ([`ShardKv::reconfigure_op`], [`ShardKv::install_op`], [`ShardKv::confirm_op`]), which
//!   check it against the state at that moment; the state checks again when the entry applies.
//!
//! The controller is called with the group's own client id and increasing sequence numbers,
//! as a clerk would; a query is read-only, so a retry may take a new number.

use super::{DeleteArgs, DeleteReply, PullArgs, PullReply, ShardKv, ShardKvOp, ShardTask};
use crate::rsm::{ClerkReply, ClerkRequest};
use crate::shardctrler::{CtrlerOp, CtrlerOut};
use std::collections::BTreeMap;

/// How often the leader polls (lab 4B: "about every 100 milliseconds").
pub const POLL_MS: u64 = 100;
/// A call unanswered this long is given up and asked again at the next poll.
pub const CALL_TIMEOUT_MS: u64 = 600;

/// A call the shell must make, then hand back with [`Driver::sent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// A request to controller server number `to` (an index into the controller's servers).
    Query {
        /// The controller server's index.
        to: usize,
        /// The Query, with this group's client id and sequence number.
        request: ClerkRequest<CtrlerOp>,
    },
    /// Ask server `to` (a name from a configuration) of group `gid` for shards.
    Pull {
        /// The group that owned the shards.
        gid: u64,
        /// The server asked.
        to: String,
        /// Which shards, of which configuration.
        args: PullArgs,
    },
    /// Tell server `to` of group `gid` that this group holds these shards.
    Delete {
        /// The group that owned the shards.
        gid: u64,
        /// The server told.
        to: String,
        /// Which shards, of which configuration.
        args: DeleteArgs,
    },
}

impl Call {
    /// What kind of answer this call gets.
    pub fn kind(&self) -> CallKind {
        match self {
            Call::Query { .. } => CallKind::Query,
            Call::Pull { .. } => CallKind::Pull,
            Call::Delete { .. } => CallKind::Delete,
        }
    }
}

/// The kind of a call in flight, so the shell knows how to decode its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// A Query to the shard controller.
    Query,
    /// A pull of shards from another group.
    Pull,
    /// A delete sent to another group.
    Delete,
}

/// The outcome of a call, decoded by the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The controller's reply to a Query.
    Query(ClerkReply<CtrlerOut>),
    /// The old owner's reply to a pull.
    Pull(PullReply),
    /// The old owner's reply to a delete.
    Delete(ClerkReply<DeleteReply>),
    /// The call failed (lost, or the server unreachable or dead).
    Failed,
}

/// What to do after an answer: an operation to propose (nobody waits for it), and calls to
/// make at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// An operation to propose through the group's log, if any.
    pub propose: Option<ShardKvOp>,
    /// Calls to make now.
    pub calls: Vec<Call>,
}

/// What a call is for; at most one call per purpose is in flight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Purpose {
    Query,
    Pull { config_num: u64, gid: u64 },
    Delete { config_num: u64, gid: u64 },
}

#[derive(Clone, Debug)]
struct Flight {
    tag: u64,
    sent_ms: u64,
    /// Servers asked since the last poll for this purpose (bounds immediate retries).
    tries: usize,
    /// The task behind a pull or delete (its arguments and servers).
    task: Option<ShardTask>,
}

/// The group's own activity at one replica instance (not replicated: a new instance starts
/// afresh).
#[derive(Clone, Debug)]
pub struct Driver {
    /// Number of controller servers.
    ctrlers: usize,
    /// This instance's client id at the controller, and its last sequence number.
    client: u64,
    seq: u64,
    /// The controller server believed to lead.
    ctrler_leader: usize,
    /// gid → position, in that group's server list, of the server believed to lead it.
    leaders: BTreeMap<u64, usize>,
    flights: BTreeMap<Purpose, Flight>,
    /// Call tag → its purpose, for calls still awaited.
    tags: BTreeMap<u64, Purpose>,
    /// Calls returned by the last step and not yet handed back with [`Driver::sent`].
    unsent: Vec<(Purpose, Option<ShardTask>, usize)>,
    next_poll_ms: u64,
    /// The last term in which this replica proposed its blank entry.
    noop_term: Option<u64>,
}

impl Driver {
    /// An instance's driver: `ctrlers` controller servers, `client` its id at the controller
    /// (unique per instance, so a restarted replica is not answered from its predecessor's
    /// duplicate-table entry), first poll at `now_ms + POLL_MS`.
    pub fn new(ctrlers: usize, client: u64, now_ms: u64) -> Driver {
        assert!(ctrlers > 0, "a controller has servers");
        Driver {
            ctrlers,
            client,
            seq: 0,
            ctrler_leader: 0,
            leaders: BTreeMap::new(),
            flights: BTreeMap::new(),
            tags: BTreeMap::new(),
            unsent: Vec::new(),
            next_poll_ms: now_ms + POLL_MS,
            noop_term: None,
        }
    }

    /// When the shell should call [`Driver::on_poll`] next (simulated ms).
    pub fn next_poll_ms(&self) -> u64 {
        self.next_poll_ms
    }

    /// How many calls are awaited.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// The poll, with the engine's (term, is leader): what the leader should propose and the
    /// calls it should make now. Hand each call back with [`Driver::sent`] once made, in order.
    pub fn on_poll(&mut self, now_ms: u64, (term, is_leader): (u64, bool), state: &ShardKv) -> Reaction {
        assert!(self.unsent.is_empty(), "calls of the previous step were not handed back");
        self.next_poll_ms = now_ms + POLL_MS;
        // Calls unanswered for too long are given up: the next server is asked.
        let stale: Vec<Purpose> = self
            .flights
            .iter()
            .filter(|(_, f)| now_ms >= f.sent_ms + CALL_TIMEOUT_MS)
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            let f = self.flights.remove(&p).expect("listed above");
            self.tags.remove(&f.tag);
            self.next_server(&p, f.task.as_ref());
        }
        if !is_leader {
            return Reaction::default();
        }
        let mut reaction = Reaction::default();
        if self.noop_term != Some(term) {
            self.noop_term = Some(term);
            reaction.propose = Some(ShardKvOp::Noop { term });
        }
        let calls = &mut reaction.calls;
        if !self.flights.contains_key(&Purpose::Query) {
            if let Some(op) = state.config_to_query() {
                calls.push(self.query(op, 1));
            }
        }
        for task in state.pull_tasks() {
            let purpose = Purpose::Pull { config_num: task.config_num, gid: task.gid };
            if !self.flights.contains_key(&purpose) && !task.servers.is_empty() {
                calls.push(self.group_call(purpose, task, 1));
            }
        }
        for task in state.delete_tasks() {
            let purpose = Purpose::Delete { config_num: task.config_num, gid: task.gid };
            if !self.flights.contains_key(&purpose) && !task.servers.is_empty() {
                calls.push(self.group_call(purpose, task, 1));
            }
        }
        reaction
    }

    /// The shell made the next call returned by the last step, with tag `tag`.
    pub fn sent(&mut self, tag: u64, now_ms: u64) {
        assert!(!self.unsent.is_empty(), "sent a call the driver did not ask for");
        let (purpose, task, tries) = self.unsent.remove(0);
        self.tags.insert(tag, purpose.clone());
        self.flights.insert(purpose, Flight { tag, sent_ms: now_ms, tries, task });
    }

    /// The kind of call `tag` is, if it is still awaited (a call given up is not).
    pub fn kind(&self, tag: u64) -> Option<CallKind> {
        self.tags.get(&tag).map(|p| match p {
            Purpose::Query => CallKind::Query,
            Purpose::Pull { .. } => CallKind::Pull,
            Purpose::Delete { .. } => CallKind::Delete,
        })
    }

    /// The answer to call `tag`: what to propose and what to call at once. A tag not awaited
    /// (given up earlier) is ignored.
    pub fn on_answer(&mut self, tag: u64, answer: Answer, state: &ShardKv) -> Reaction {
        assert!(self.unsent.is_empty(), "calls of the previous step were not handed back");
        let Some(purpose) = self.tags.remove(&tag) else { return Reaction::default() };
        let flight = self.flights.remove(&purpose).expect("an awaited tag has its flight");
        let mut reaction = Reaction::default();
        // Whether to ask the next server at once (a server answered that another leads).
        let mut retry_now = false;
        match (&purpose, answer) {
            (Purpose::Query, Answer::Query(ClerkReply::Ok(CtrlerOut::Config(config)))) => {
                reaction.propose = state.reconfigure_op(&config);
            }
            (Purpose::Query, Answer::Query(ClerkReply::Ok(_))) => {}
            (Purpose::Query, Answer::Query(_)) => retry_now = true,
            (Purpose::Pull { .. }, Answer::Pull(reply)) => match reply {
                PullReply::Data { .. } => reaction.propose = state.install_op(&reply),
                PullReply::Gone => {}
                PullReply::NotReady => self.next_server(&purpose, flight.task.as_ref()),
            },
            (Purpose::Delete { .. }, Answer::Delete(ClerkReply::Ok(reply))) => {
                let task = flight.task.as_ref().expect("a delete has its task");
                reaction.propose = state.confirm_op(&task.delete_args(), &reply);
            }
            (Purpose::Delete { .. }, Answer::Delete(_)) => retry_now = true,
            (_, Answer::Failed) => self.next_server(&purpose, flight.task.as_ref()),
            (p, a) => panic!("answer {a:?} to a call for {p:?}"),
        }
        if retry_now {
            self.next_server(&purpose, flight.task.as_ref());
            let servers = match &flight.task {
                Some(task) => task.servers.len(),
                None => self.ctrlers,
            };
            // Each server asked once since the poll: wait for the next one.
            if flight.tries < servers {
                let call = match (&purpose, flight.task) {
                    (Purpose::Query, _) => state.config_to_query().map(|op| self.query(op, flight.tries + 1)),
                    (p, Some(task)) => Some(self.group_call(p.clone(), task, flight.tries + 1)),
                    (_, None) => None,
                };
                reaction.calls.extend(call);
            }
        }
        reaction
    }

    /// A query to the controller server believed to lead.
    fn query(&mut self, op: CtrlerOp, tries: usize) -> Call {
        self.seq += 1;
        self.unsent.push((Purpose::Query, None, tries));
        Call::Query { to: self.ctrler_leader, request: ClerkRequest { client: self.client, seq: self.seq, op } }
    }

    /// A pull or delete to the server of the task's group believed to lead.
    fn group_call(&mut self, purpose: Purpose, task: ShardTask, tries: usize) -> Call {
        let at = self.leaders.get(&task.gid).copied().unwrap_or(0) % task.servers.len();
        let to = task.servers[at].clone();
        let call = match purpose {
            Purpose::Pull { .. } => Call::Pull { gid: task.gid, to, args: task.pull_args() },
            Purpose::Delete { .. } => Call::Delete { gid: task.gid, to, args: task.delete_args() },
            Purpose::Query => unreachable!("queries go to the controller"),
        };
        self.unsent.push((purpose, Some(task), tries));
        call
    }

    /// The server asked for `purpose` did not help: believe the next one leads.
    fn next_server(&mut self, purpose: &Purpose, task: Option<&ShardTask>) {
        match (purpose, task) {
            (Purpose::Query, _) => self.ctrler_leader = (self.ctrler_leader + 1) % self.ctrlers,
            (_, Some(task)) if !task.servers.is_empty() => {
                let at = self.leaders.entry(task.gid).or_insert(0);
                *at = (*at + 1) % task.servers.len();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsm::StateMachine;
    use crate::shardctrler::{Config, ShardCtrler};
    use crate::shardkv::{ShardKvBugs, ShardKvOut};

    fn join(ctrl: &mut ShardCtrler, gid: u64) {
        let servers = [(gid, vec![format!("s{gid}-0"), format!("s{gid}-1"), format!("s{gid}-2")])].into();
        assert_eq!(ctrl.apply(&CtrlerOp::Join { servers }), CtrlerOut::Ok);
    }

    /// Sends every call the driver returned, numbering tags from `next_tag`.
    fn send(d: &mut Driver, calls: &[Call], next_tag: &mut u64, now: u64) -> Vec<u64> {
        calls
            .iter()
            .map(|_| {
                *next_tag += 1;
                d.sent(*next_tag, now);
                *next_tag
            })
            .collect()
    }

    fn config_reply(c: &Config) -> Answer {
        Answer::Query(ClerkReply::Ok(CtrlerOut::Config(c.clone())))
    }

    #[test]
    fn the_leader_polls_the_controller_and_followers_stay_quiet() {
        let mut ctrl = ShardCtrler::new();
        join(&mut ctrl, 100);
        let mut g = ShardKv::new(100, ShardKvBugs::default());
        let mut d = Driver::new(3, 77, 0);
        assert_eq!(d.next_poll_ms(), POLL_MS);
        assert_eq!(d.on_poll(100, (1, false), &g), Reaction::default(), "a follower does nothing");
        assert_eq!(d.next_poll_ms(), 200);
        let r = d.on_poll(200, (1, true), &g);
        assert_eq!(r.propose, Some(ShardKvOp::Noop { term: 1 }), "a new leader's blank entry");
        let calls = r.calls;
        let want = ClerkRequest { client: 77, seq: 1, op: CtrlerOp::Query { num: Some(1) } };
        assert_eq!(calls, vec![Call::Query { to: 0, request: want }]);
        let mut tag = 0;
        let tags = send(&mut d, &calls, &mut tag, 200);
        assert_eq!(d.kind(tags[0]), Some(CallKind::Query));
        assert!(d.on_poll(300, (1, true), &g).calls.is_empty(), "one query in flight at a time");
        let r = d.on_answer(tags[0], config_reply(ctrl.latest()), &g);
        assert_eq!(r.propose, Some(ShardKvOp::Reconfigure { config: ctrl.latest().clone() }));
        assert!(r.calls.is_empty());
        assert_eq!(d.in_flight(), 0);
        // An answer with a configuration the group should not take proposes nothing.
        g.apply(&r.propose.unwrap());
        let calls = d.on_poll(400, (1, true), &g).calls;
        let tags = send(&mut d, &calls, &mut tag, 400);
        assert_eq!(d.on_answer(tags[0], config_reply(ctrl.latest()), &g), Reaction::default());
        // An answer to a call given up is ignored.
        assert_eq!(d.on_answer(999, Answer::Failed, &g), Reaction::default());
        // One blank entry per term.
        assert_eq!(d.on_poll(500, (1, true), &g).propose, None);
        d.sent(50, 500);
        assert_eq!(d.on_poll(600, (2, true), &g).propose, Some(ShardKvOp::Noop { term: 2 }));
    }

    #[test]
    fn wrong_leaders_are_skipped_at_once_but_only_once_each_per_poll() {
        let g = ShardKv::new(100, ShardKvBugs::default());
        let mut d = Driver::new(3, 5, 0);
        let mut tag = 0;
        let calls = d.on_poll(100, (1, true), &g).calls;
        let mut tags = send(&mut d, &calls, &mut tag, 100);
        let mut asked = vec![0];
        for _ in 0..2 {
            let r = d.on_answer(tags[0], Answer::Query(ClerkReply::WrongLeader), &g);
            let [Call::Query { to, request }] = r.calls.as_slice() else { panic!("{r:?}") };
            asked.push(*to);
            assert!(request.seq > 1, "a retried query takes a new number");
            tags = send(&mut d, &r.calls, &mut tag, 100);
        }
        assert_eq!(asked, vec![0, 1, 2]);
        let r = d.on_answer(tags[0], Answer::Query(ClerkReply::WrongLeader), &g);
        assert!(r.calls.is_empty(), "all three asked since the poll: wait for the next");
        // A failure moves on too, but only at the next poll.
        let calls = d.on_poll(200, (1, true), &g).calls;
        assert!(matches!(calls.as_slice(), [Call::Query { to: 0, .. }]), "round the servers again: {calls:?}");
        let tags = send(&mut d, &calls, &mut tag, 200);
        assert!(d.on_answer(tags[0], Answer::Failed, &g).calls.is_empty());
        assert!(matches!(d.on_poll(300, (1, true), &g).calls.as_slice(), [Call::Query { to: 1, .. }]));
    }

    #[test]
    fn a_call_unanswered_too_long_is_given_up_and_its_late_answer_ignored() {
        let g = ShardKv::new(100, ShardKvBugs::default());
        let mut d = Driver::new(3, 5, 0);
        let mut tag = 0;
        let calls = d.on_poll(100, (1, true), &g).calls;
        let old = send(&mut d, &calls, &mut tag, 100)[0];
        assert!(d.on_poll(100 + CALL_TIMEOUT_MS - 1, (1, true), &g).calls.is_empty());
        let calls = d.on_poll(100 + CALL_TIMEOUT_MS, (1, true), &g).calls;
        assert!(matches!(calls.as_slice(), [Call::Query { to: 1, .. }]), "asked again, of the next server");
        send(&mut d, &calls, &mut tag, 100 + CALL_TIMEOUT_MS);
        assert_eq!(d.kind(old), None);
        assert_eq!(d.on_answer(old, Answer::Failed, &g), Reaction::default());
        assert_eq!(d.in_flight(), 1);
    }

    /// Groups 100 and 101 after 101 joined: 101 pulls from 100.
    fn handoff() -> (ShardCtrler, ShardKv, ShardKv) {
        let mut ctrl = ShardCtrler::new();
        let (mut a, mut b) = (ShardKv::new(100, ShardKvBugs::default()), ShardKv::new(101, ShardKvBugs::default()));
        join(&mut ctrl, 100);
        for g in [&mut a, &mut b] {
            let op = g.reconfigure_op(&ctrl.configs()[1]).unwrap();
            g.apply(&op);
        }
        join(&mut ctrl, 101);
        for g in [&mut a, &mut b] {
            let op = g.reconfigure_op(&ctrl.configs()[2]).unwrap();
            g.apply(&op);
        }
        (ctrl, a, b)
    }

    #[test]
    fn pulls_and_deletes_go_to_the_previous_owner_and_become_proposals() {
        let (_ctrl, mut a, mut b) = handoff();
        let mut d = Driver::new(3, 5, 0);
        let mut tag = 0;
        let calls = d.on_poll(100, (1, true), &b).calls;
        assert_eq!(calls.len(), 1, "settled groups query; this one pulls: {calls:?}");
        let Call::Pull { gid: 100, to, args } = &calls[0] else { panic!("{calls:?}") };
        assert_eq!(to, "s100-0");
        assert_eq!(args.config_num, 2);
        let tags = send(&mut d, &calls, &mut tag, 100);
        assert_eq!(d.kind(tags[0]), Some(CallKind::Pull));
        // A replica of 100 not yet at configuration 2: the next server, at the next poll.
        assert_eq!(d.on_answer(tags[0], Answer::Pull(PullReply::NotReady), &b), Reaction::default());
        let calls = d.on_poll(200, (1, true), &b).calls;
        let Call::Pull { to, args, .. } = &calls[0] else { panic!("{calls:?}") };
        assert_eq!(to, "s100-1");
        let tags = send(&mut d, &calls, &mut tag, 200);
        let r = d.on_answer(tags[0], Answer::Pull(a.answer_pull(args)), &b);
        let op = r.propose.expect("the data becomes an install");
        assert!(matches!(b.apply(&op), ShardKvOut::Installed { .. }));
        // Now 101 has 100 delete its copies, through 100's log.
        let calls = d.on_poll(300, (1, true), &b).calls;
        let Call::Delete { gid: 100, to, args } = &calls[0] else { panic!("{calls:?}") };
        assert_eq!(to, "s100-1", "the server that answered is remembered");
        let tags = send(&mut d, &calls, &mut tag, 300);
        assert_eq!(d.kind(tags[0]), Some(CallKind::Delete));
        // s100-1 does not lead: s100-2 is asked at once.
        let r = d.on_answer(tags[0], Answer::Delete(ClerkReply::WrongLeader), &b);
        let [Call::Delete { to, .. }] = r.calls.as_slice() else { panic!("{r:?}") };
        assert_eq!(to, "s100-2");
        let tags = send(&mut d, &r.calls, &mut tag, 300);
        let out = a.apply(&ShardKv::delete_op(args));
        let r = d.on_answer(tags[0], Answer::Delete(ClerkReply::Ok(ShardKv::delete_reply(&out).unwrap())), &b);
        let op = r.propose.expect("a done delete becomes a confirmation");
        assert!(matches!(b.apply(&op), ShardKvOut::Confirmed { .. }));
        assert!(b.settled() && a.settled());
        // Settled again: the next poll queries.
        assert!(matches!(d.on_poll(400, (1, true), &b).calls.as_slice(), [Call::Query { .. }]));
        d.sent(100, 400);
    }

    #[test]
    #[should_panic(expected = "not handed back")]
    fn every_call_must_be_handed_back() {
        let g = ShardKv::new(100, ShardKvBugs::default());
        let mut d = Driver::new(1, 5, 0);
        let _ = d.on_poll(100, (1, true), &g);
        let _ = d.on_poll(200, (1, true), &g);
    }
}
