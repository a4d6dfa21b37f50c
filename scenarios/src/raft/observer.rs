//! Connects replicas' observations to `checkers::raft::SafetyChecker`, so election safety, log
//! matching, leader completeness, state-machine safety, apply order, commit-majority and
//! match-index are judged after every step of every server, over the whole run. [`judge`] is
//! the one mapping from observations to checker calls, used by the actor shell's observer and
//! the property-test world alike.
//!
//! The observer also feeds the network's holds (`sim::net::hold`, the `hold` fault event):
//! it reports each server's protocol events as release triggers ([`TRIGGERS`]), and for the
//! Raft engine names its messages ([`raft_message_kind`]), so `sim` stays ignorant of Raft.

use checkers::raft::{entry_hash, SafetyChecker, Violation};
use cores::replica::Observation;
use nodes::replica::{Engine, Observer};
use sim::{Failure, NodeId};

/// The release triggers a Raft cluster's observer reports for each server: `term` (its
/// current term changed), `role` (its term or role changed), `leader` (it became leader),
/// `snapshot` (its log was compacted into a snapshot, its own or one installed), `apply` (it
/// applied a committed entry or installed a snapshot).
pub const TRIGGERS: [&str; 5] = ["term", "role", "leader", "snapshot", "apply"];

/// The trigger that releases a snapshot held by fault point `replica.hold_snapshot`: its
/// receiver applied something — entries that reached it by another way (an append sent
/// before the leader compacted, a duplicate) while the snapshot waited, so the snapshot now
/// arrives behind what it covers (issue 13: a snapshot installed after the follower applied
/// past it, or over entries that continue it).
pub const HELD_SNAPSHOT_RELEASE: &str = "apply";

/// The trigger that releases an append acknowledgement held by fault point
/// `replica.hold_append_reply`: its receiver, the leader that asked, became leader again —
/// necessarily in a later term, so the acknowledgement answers a request of an earlier term
/// of the same leader (issue 13's first classic bug: a leader counting it commits on the
/// word of a follower that no longer holds those entries).
pub const HELD_APPEND_REPLY_RELEASE: &str = "leader";

/// Every name [`raft_message_kind`] gives: the message kinds a `hold` event may pick in the
/// Raft testers' scenarios (`crate::registry::Scenario::with_holds`). On another engine (the
/// Paxos ports, a user's Raft) no message is classified, so a hold naming one takes none —
/// as the swarms' drawn holds do there, whose draws must not move.
pub const MESSAGE_KINDS: [&str; 9] = [
    "request_vote",
    "append_entries",
    "heartbeat",
    "install_snapshot",
    "vote_reply",
    "append_entries_ok",
    "heartbeat_ok",
    "append_entries_rejected",
    "install_snapshot_reply",
];

/// Names a message of the Raft engine's wire (`nodes::replica::Wire` around
/// `cores::raft::Request`/`Reply`, postcard-encoded) from its first bytes, without decoding
/// the entries: `request_vote`, `append_entries` (carrying entries), `heartbeat` (none),
/// `install_snapshot`; replies `vote_reply`, `append_entries_ok` (a success that stored
/// entries), `heartbeat_ok` (a success without entries), `append_entries_rejected`,
/// `install_snapshot_reply`. A service's message (a clerk's) is not named.
pub fn raft_message_kind(bytes: &[u8], reply: bool) -> Option<&'static str> {
    // Wire::Peer is variant 0; then the Request/Reply variant.
    let (&wire, rest) = bytes.split_first()?;
    if wire != 0 {
        return None;
    }
    let (&variant, mut rest) = rest.split_first()?;
    let mut varint = || -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, r) = rest.split_first()?;
            rest = r;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    Some(match (reply, variant) {
        (false, 0) => "request_vote",
        (false, 1) => {
            // AppendEntriesArgs: term, leader_id, prev_log_index, prev_log_term, entries.len().
            for _ in 0..4 {
                varint()?;
            }
            if varint()? > 0 {
                "append_entries"
            } else {
                "heartbeat"
            }
        }
        (false, 2) => "install_snapshot",
        (true, 0) => "vote_reply",
        (true, 1) => {
            // AppendEntriesReply: term, success, request_term, prev_log_index, entries_len.
            varint()?;
            let success = varint()? == 1;
            varint()?;
            varint()?;
            match (success, varint()? > 0) {
                (true, true) => "append_entries_ok",
                (true, false) => "heartbeat_ok",
                (false, _) => "append_entries_rejected",
            }
        }
        (true, 2) => "install_snapshot_reply",
        _ => return None,
    })
}

/// Shows `checker` one observation of `node`.
pub fn judge(checker: &mut SafetyChecker, node: usize, observation: &Observation<'_>) -> Result<(), Violation> {
    match observation {
        Observation::Restart { snapshot_index: Some(snapshot_index) } => {
            checker.observe_restart(node, *snapshot_index);
            Ok(())
        }
        Observation::Restart { snapshot_index: None } => {
            checker.observe_restart_unknown(node);
            Ok(())
        }
        Observation::Role { term, leader, .. } => checker.observe_role(node, *term, *leader),
        Observation::Snapshot { index, term } => checker.observe_snapshot(node, *index, *term),
        Observation::Entries { first, entries } => {
            checker.observe_entries_from(node, *first, entries.iter().map(|(t, c)| (*t, entry_hash(c))))
        }
        Observation::LogEnd { last } => checker.observe_log_end(node, *last),
        Observation::Match { indexes } => checker.observe_match(node, indexes),
        Observation::Commit { index } => checker.observe_commit(node, *index),
        Observation::Apply { index, command } => checker.observe_apply(node, *index, entry_hash(command)),
        Observation::ApplySnapshot { index } => checker.observe_apply_snapshot(node, *index),
    }
}

/// The shells' observer: every observation goes to one run-wide safety checker.
pub struct SafetyObserver {
    pub checker: SafetyChecker,
    /// The servers' node ids, by index, once [`SafetyObserver::feed_triggers`] asked for
    /// release triggers (empty: none reported).
    ids: Vec<NodeId>,
    /// Per server: the term and role code last reported, to tell a term change from a role
    /// change.
    last: Vec<(u64, u64)>,
    /// The replica group it watches, where a run has several (`group 101: ` before each
    /// violation: node indexes are within the group).
    group: Option<u64>,
}

impl SafetyObserver {
    /// A checker of every property, for engines that report their logs.
    pub fn new(nodes: usize) -> Self {
        SafetyObserver { checker: SafetyChecker::new(nodes), ids: Vec::new(), last: Vec::new(), group: None }
    }

    /// From now on, reports the servers' protocol events ([`TRIGGERS`]) to the network's
    /// holds; `ids[i]` is server i's node. For the Raft engine `E`, also names its messages
    /// ([`raft_message_kind`]) so a hold can pick, say, an append reply.
    pub fn feed_triggers<E: Engine + 'static>(&mut self, ids: Vec<NodeId>) {
        sim::net::register_triggers(&TRIGGERS);
        sim::set_fault_point_release(sim::FaultPoint::HoldSnapshot, HELD_SNAPSHOT_RELEASE);
        sim::set_fault_point_release(sim::FaultPoint::HoldAppendReply, HELD_APPEND_REPLY_RELEASE);
        if std::any::TypeId::of::<E>() == std::any::TypeId::of::<crate::engine::RaftEngine>() {
            sim::net::set_classifier(std::rc::Rc::new(raft_message_kind));
        }
        self.last = vec![(0, 0); ids.len()];
        self.ids = ids;
    }

    fn report_events(&mut self, node: usize, observation: &Observation<'_>) {
        let Some(&id) = self.ids.get(node) else { return };
        match observation {
            Observation::Role { term, leader, role_code, .. } => {
                let (last_term, _) = self.last[node];
                self.last[node] = (*term, *role_code);
                if *term != last_term {
                    sim::net::protocol_event(id, "term");
                }
                sim::net::protocol_event(id, "role");
                if *leader {
                    sim::net::protocol_event(id, "leader");
                }
            }
            Observation::Snapshot { .. } => sim::net::protocol_event(id, "snapshot"),
            Observation::Apply { .. } | Observation::ApplySnapshot { .. } => sim::net::protocol_event(id, "apply"),
            _ => {}
        }
    }

    /// The same observer, watching replica group `gid` of a sharded run: its violations
    /// name the group.
    pub fn of_group(self, gid: u64) -> Self {
        SafetyObserver { group: Some(gid), ..self }
    }

    /// The checker engine `E`'s observations can feed: every property if it reports its logs,
    /// else those that roles and applies show (and the run says which checks ran).
    pub fn for_engine<E: Engine>(nodes: usize) -> Self {
        if E::EXPOSES_LOG {
            SafetyObserver::new(nodes)
        } else {
            // Said once per run, however many replica groups (the sharded service's) it has.
            let (ran, not) = E::CHECKS_WITHOUT_LOG;
            sim::describe_once(format!(
                "safety checks: {}; not checked (no log exposed): {}",
                ran.join(", "),
                not.join(", ")
            ));
            SafetyObserver {
                checker: SafetyChecker::for_roles_and_applies(nodes),
                ids: Vec::new(),
                last: Vec::new(),
                group: None,
            }
        }
    }
}

impl Observer for SafetyObserver {
    fn observe(&mut self, node: usize, observation: &Observation<'_>) -> Result<(), Failure> {
        judge(&mut self.checker, node, observation).map_err(|v| match self.group {
            Some(gid) => Failure::safety(v.checker(), format!("group {gid}: {}", v.message)),
            None => Failure::safety(v.checker(), v.message),
        })?;
        self.report_events(node, observation);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::raft_message_kind;
    use cores::raft::{AppendEntriesArgs, AppendEntriesReply, Entry, Reply, Request, RequestVoteArgs};
    use nodes::replica::{Wire, WireReply};

    fn request(r: Request) -> Vec<u8> {
        sim::encode(&Wire::<Request, ()>::Peer(r))
    }

    fn reply(r: Reply) -> Vec<u8> {
        sim::encode(&WireReply::<Reply, ()>::Peer(r))
    }

    #[test]
    fn raft_messages_are_named_from_their_first_bytes() {
        let args = |n: usize| AppendEntriesArgs {
            term: 300,
            leader_id: 2,
            prev_log_index: 1000,
            prev_log_term: 299,
            entries: vec![Entry { term: 300, command: vec![1; 200] }; n],
            leader_commit: 999,
        };
        assert_eq!(raft_message_kind(&request(Request::AppendEntries(args(3))), false), Some("append_entries"));
        assert_eq!(raft_message_kind(&request(Request::AppendEntries(args(0))), false), Some("heartbeat"));
        let vote = RequestVoteArgs { term: 5, candidate_id: 1, last_log_index: 9, last_log_term: 4 };
        assert_eq!(raft_message_kind(&request(Request::RequestVote(vote)), false), Some("request_vote"));
        let ok = |success: bool, entries_len: u64| AppendEntriesReply {
            term: 300,
            success,
            request_term: 300,
            prev_log_index: 1000,
            entries_len,
            conflict_term: None,
            conflict_index: 0,
        };
        assert_eq!(raft_message_kind(&reply(Reply::AppendEntries(ok(true, 3))), true), Some("append_entries_ok"));
        assert_eq!(raft_message_kind(&reply(Reply::AppendEntries(ok(true, 0))), true), Some("heartbeat_ok"));
        assert_eq!(
            raft_message_kind(&reply(Reply::AppendEntries(ok(false, 3))), true),
            Some("append_entries_rejected")
        );
        // A service's message (a clerk's) is not Raft's to name.
        assert_eq!(raft_message_kind(&sim::encode(&Wire::<(), u64>::Service(7)), false), None);
    }
}
