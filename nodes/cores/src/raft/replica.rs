//! Raft behind the replication seam: [`ReplicaCore`] for [`Raft`], and the one derivation of
//! what the safety checkers observe of a Raft peer.

use super::{CallContext, Config, Raft, Ready, Reply, Request, Role, StateImage};
use crate::replica::{Observation, Observed, PersistedImage, Proposal, ReplicaCore, RestoreError};
use std::rc::Rc;

impl PersistedImage for StateImage {
    fn parts(&self) -> Vec<Rc<dyn AsRef<[u8]>>> {
        let (header, chunks) = StateImage::parts(self);
        let mut parts: Vec<Rc<dyn AsRef<[u8]>>> = Vec::with_capacity(chunks.len() + 1);
        parts.push(Rc::new(header.to_vec()));
        parts.extend(chunks.iter().map(|c| c.clone() as Rc<dyn AsRef<[u8]>>));
        parts
    }
    fn to_bytes(&self) -> Vec<u8> {
        StateImage::to_bytes(self)
    }
    fn len(&self) -> usize {
        StateImage::len(self)
    }
}

impl Role {
    /// The role's code in trace notes (0 follower, 1 candidate, 2 leader).
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The role's name in traces.
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

impl ReplicaCore for Raft {
    type Config = Config;
    type Request = Request;
    type Reply = Reply;
    type CallContext = CallContext;
    type Image = StateImage;

    fn boot(
        config: &Config,
        me: usize,
        peers: usize,
        seed: u64,
        state: &[u8],
        snapshot: &[u8],
        now_ms: u64,
    ) -> Result<Raft, RestoreError> {
        let mut config = config.clone();
        config.me = me;
        config.peers = peers;
        config.seed = seed;
        Raft::new(config, state, snapshot, now_ms)
    }

    fn tick(&mut self, now_ms: u64) {
        Raft::tick(self, now_ms)
    }

    fn handle_request(&mut self, now_ms: u64, from: usize, request: Request) -> Reply {
        Raft::handle_request(self, now_ms, from, request)
    }

    fn handle_reply(&mut self, now_ms: u64, from: usize, reply: Reply) {
        Raft::handle_reply(self, now_ms, from, reply)
    }

    fn handle_call_failed(&mut self, now_ms: u64, to: usize, context: CallContext) {
        Raft::handle_call_failed(self, now_ms, to, context)
    }

    fn call_context(request: &Request) -> CallContext {
        request.context()
    }

    fn carries_snapshot(request: &Request) -> bool {
        matches!(request, Request::InstallSnapshot(_))
    }

    fn acknowledges_entries(reply: &Reply) -> bool {
        matches!(reply, Reply::AppendEntries(r) if r.success && r.entries_len > 0)
    }

    fn grants_vote(reply: &Reply) -> bool {
        matches!(reply, Reply::RequestVote(r) if r.vote_granted)
    }

    fn take_coverage_event(&mut self) -> Option<&'static str> {
        self.coverage_event.take()
    }

    fn propose(&mut self, now_ms: u64, command: Vec<u8>) -> Option<Proposal> {
        Raft::propose(self, now_ms, command).map(|(index, term)| Proposal { index, term })
    }

    fn snapshot(&mut self, now_ms: u64, index: u64, data: Vec<u8>) -> bool {
        Raft::snapshot(self, now_ms, index, data)
    }

    fn take_ready(&mut self) -> Ready {
        Raft::take_ready(self)
    }

    fn has_ready(&self) -> bool {
        Raft::has_ready(self)
    }

    fn next_deadline_ms(&self) -> u64 {
        Raft::next_deadline_ms(self)
    }

    fn get_state(&self) -> (u64, bool) {
        Raft::get_state(self)
    }

    /// A proposal commits as proposed only through its own leader's term (§5.3–5.4): once
    /// this peer stops leading that term, whoever waits for it should stop.
    fn may_still_land(&self, proposal: &Proposal) -> bool {
        let (term, leader) = Raft::get_state(self);
        leader && term == proposal.term
    }

    fn observe<'a>(&'a self, seen: &mut Observed, log_written_from: Option<u64>, out: &mut Vec<Observation<'a>>) {
        let st = self.status();
        let leader = st.role == Role::Leader;
        if seen.fresh {
            out.push(Observation::Restart { snapshot_index: Some(st.snapshot_index) });
        }
        if st.current_term != seen.term || st.role.code() != seen.role_code {
            out.push(Observation::Role {
                term: st.current_term,
                leader,
                role_code: st.role.code(),
                role: st.role.name(),
            });
        }
        if st.snapshot_index != seen.snapshot_index {
            out.push(Observation::Snapshot { index: st.snapshot_index, term: st.snapshot_term });
        }
        if let Some(from) = log_written_from {
            let from = from.max(st.snapshot_index + 1);
            if from <= st.last_log_index {
                let entries = (from..=st.last_log_index)
                    .map(|i| {
                        let e = self.entry(i).expect("a written entry is in the log");
                        (e.term, e.command.as_slice())
                    })
                    .collect();
                out.push(Observation::Entries { first: from, entries });
            } else {
                out.push(Observation::LogEnd { last: st.last_log_index });
            }
        } else if st.last_log_index < seen.last_log_index {
            out.push(Observation::LogEnd { last: st.last_log_index });
        }
        let mut match_digest = 0;
        if leader {
            let peers = self.peers();
            match_digest = (0..peers).fold(st.current_term.wrapping_add(1), |h, p| {
                let m = self.match_index(p).unwrap_or(0);
                h.rotate_left(17).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ m
            });
            if match_digest != seen.match_digest {
                let indexes = (0..peers).map(|p| self.match_index(p).unwrap_or(0)).collect();
                out.push(Observation::Match { indexes });
            }
        }
        if st.commit_index != seen.commit_index {
            out.push(Observation::Commit { index: st.commit_index });
        }
        *seen = Observed {
            fresh: false,
            term: st.current_term,
            role_code: st.role.code(),
            leader,
            commit_index: st.commit_index,
            snapshot_index: st.snapshot_index,
            last_log_index: st.last_log_index,
            match_digest,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{AppendEntriesReply, InstallSnapshotReply, RequestVoteReply};

    fn matches(core: &Raft, seen: &mut Observed) -> Vec<Vec<u64>> {
        let mut out = Vec::new();
        core.observe(seen, None, &mut out);
        out.into_iter()
            .filter_map(|o| match o {
                Observation::Match { indexes } => Some(indexes),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_leader_reports_its_match_indexes_when_they_change() {
        let mut core = Raft::new(Config::new(0, 1, 7), &[], &[], 0).unwrap();
        let mut seen = Observed::restarted();
        assert!(matches(&core, &mut seen).is_empty(), "a follower reports no match indexes");
        core.tick(5_000);
        assert!(core.get_state().1, "a one-server cluster elects itself");
        assert_eq!(matches(&core, &mut seen), vec![vec![0]]);
        assert!(matches(&core, &mut seen).is_empty(), "unchanged: nothing reported");
        core.propose(5_001, b"x".to_vec()).unwrap();
        assert_eq!(matches(&core, &mut seen), vec![vec![1]]);
    }

    #[test]
    fn the_fault_points_see_granted_votes_and_acknowledged_entries_only() {
        let vote = |vote_granted| Reply::RequestVote(RequestVoteReply { term: 3, vote_granted, request_term: 3 });
        let append = |success, entries_len| {
            Reply::AppendEntries(AppendEntriesReply {
                term: 3,
                success,
                request_term: 3,
                prev_log_index: 4,
                entries_len,
                conflict_term: None,
                conflict_index: 0,
            })
        };
        let snapshot =
            Reply::InstallSnapshot(InstallSnapshotReply { term: 3, request_term: 3, last_included_index: 9 });
        assert!(<Raft as ReplicaCore>::grants_vote(&vote(true)));
        for r in [vote(false), append(true, 2), snapshot.clone()] {
            assert!(!<Raft as ReplicaCore>::grants_vote(&r), "{r:?}");
        }
        assert!(<Raft as ReplicaCore>::acknowledges_entries(&append(true, 2)));
        // A heartbeat's success and a rejection acknowledge no entries.
        for r in [append(true, 0), append(false, 2), vote(true), snapshot] {
            assert!(!<Raft as ReplicaCore>::acknowledges_entries(&r), "{r:?}");
        }
    }
}
