//! Proof that the replication seam is real: a second engine, written only for this test, runs
//! the kvraft course scenarios through the same tester, and the suite rejects it by name.
//!
//! The engine is a leader-only log that acknowledges before replicating and forgets on crash:
//! server 0 leads forever (term 1); a proposal commits and applies at once on the leader and
//! is pushed to the followers without waiting; nothing is ever persisted. With every server
//! up its histories look like a replicated log's, but commit-majority sees the leader commit
//! what only it holds; a restart wipes the leader's log and state, so the `persist_*`
//! scenarios catch it too.

use cores::replica::{ApplyMsg, Observation, Observed, Outgoing, Proposal, Ready, ReplicaCore, RestoreError};
use nodes::replica::{CoreEngine, Engine, NodeHandle, NodeSpec, Service};
use scenarios::engine::TestEngine;
use scenarios::registry::{run_scenario, Opts};
use serde::{Deserialize, Serialize};
use sim::{NodeId, Outcome, TraceMode};

/// The engine's one message: the entry at `index`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Push {
    index: u64,
    command: Vec<u8>,
}

#[derive(Clone, Debug)]
struct LeaderOnly {
    me: usize,
    peers: usize,
    /// Every entry, committed as soon as it is in the log.
    log: Vec<Vec<u8>>,
    ready: Ready<Push, Vec<u8>>,
}

const TERM: u64 = 1;

impl LeaderOnly {
    fn leads(&self) -> bool {
        self.me == 0
    }

    /// Appends and applies the entry at the next index.
    fn commit(&mut self, command: Vec<u8>) -> u64 {
        self.log.push(command.clone());
        let index = self.log.len() as u64;
        self.ready.applies.push(ApplyMsg::Command { index, term: TERM, command });
        self.ready.log_written_from.get_or_insert(index);
        index
    }
}

impl ReplicaCore for LeaderOnly {
    type Config = ();
    type Request = Push;
    type Reply = ();
    type CallContext = ();
    type Image = Vec<u8>;

    fn boot(_: &(), me: usize, peers: usize, _seed: u64, _: &[u8], _: &[u8], _: u64) -> Result<Self, RestoreError> {
        // It persisted nothing, so it remembers nothing.
        Ok(LeaderOnly { me, peers, log: Vec::new(), ready: Ready::default() })
    }

    fn tick(&mut self, _now_ms: u64) {}

    fn handle_request(&mut self, _now_ms: u64, _from: usize, push: Push) {
        if push.index == self.log.len() as u64 + 1 {
            self.commit(push.command);
        }
    }

    fn handle_reply(&mut self, _now_ms: u64, _from: usize, _reply: ()) {}

    fn handle_call_failed(&mut self, _now_ms: u64, _to: usize, _context: ()) {}

    fn call_context(_request: &Push) {}

    fn propose(&mut self, _now_ms: u64, command: Vec<u8>) -> Option<Proposal> {
        if !self.leads() {
            return None;
        }
        // Acknowledged (applied) before any follower has it.
        let index = self.commit(command.clone());
        for to in 1..self.peers {
            self.ready.messages.push(Outgoing { to, request: Push { index, command: command.clone() } });
        }
        Some(Proposal { index, term: TERM })
    }

    fn snapshot(&mut self, _now_ms: u64, _index: u64, _data: Vec<u8>) -> bool {
        false
    }

    fn take_ready(&mut self) -> Ready<Push, Vec<u8>> {
        std::mem::take(&mut self.ready)
    }

    fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn next_deadline_ms(&self) -> u64 {
        u64::MAX
    }

    fn get_state(&self) -> (u64, bool) {
        (TERM, self.leads())
    }

    fn may_still_land(&self, _proposal: &Proposal) -> bool {
        self.leads()
    }

    fn observe<'a>(&'a self, seen: &mut Observed, log_written_from: Option<u64>, out: &mut Vec<Observation<'a>>) {
        let last = self.log.len() as u64;
        if seen.fresh {
            out.push(Observation::Restart { snapshot_index: Some(0) });
        }
        if seen.term != TERM {
            let leader = self.leads();
            let (role_code, role) = if leader { (2, "leader") } else { (0, "follower") };
            out.push(Observation::Role { term: TERM, leader, role_code, role });
        }
        if seen.snapshot_index != 0 {
            out.push(Observation::Snapshot { index: 0, term: 0 });
        }
        if let Some(first) = log_written_from.filter(|&f| f <= last) {
            let entries = self.log[first as usize - 1..].iter().map(|c| (TERM, c.as_slice())).collect();
            out.push(Observation::Entries { first, entries });
        }
        if seen.commit_index != last {
            out.push(Observation::Commit { index: last });
        }
        *seen = Observed {
            fresh: false,
            term: TERM,
            role_code: if self.leads() { 2 } else { 0 },
            leader: self.leads(),
            commit_index: last,
            snapshot_index: 0,
            last_log_index: last,
            match_digest: 0,
        };
    }
}

/// The engine as the testers see it.
struct LeaderOnlyEngine;

impl Engine for LeaderOnlyEngine {
    type Config = ();
    type Handle<S: Service> = NodeHandle<LeaderOnly, S>;

    fn spawn<S: Service>(name: &str, spec: NodeSpec<(), S, NodeHandle<LeaderOnly, S>>) -> NodeId {
        CoreEngine::<LeaderOnly>::spawn(name, spec)
    }
}

impl TestEngine for LeaderOnlyEngine {
    const NAME: &'static str = "leader-only";

    fn config(_n: usize, bug: Option<&str>) {
        assert!(bug.is_none(), "the leader-only engine has no planted bugs");
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
}

#[test]
fn the_kvraft_suite_runs_a_second_engine_and_rejects_it_by_name() {
    let course = scenarios::kvraft::course::<LeaderOnlyEngine>();
    let run = |name: &str| {
        let sc = course.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no scenario {name}"));
        run_scenario(sc, 0, &Opts::default(), TraceMode::Hash, None).outcome
    };
    // With every server up, its histories look like a replicated log's, but its leader commits
    // before any follower stores the entry: commit-majority rejects it on the first proposal.
    for name in ["kvraft::basic_3a", "kvraft::concurrent_3a"] {
        match run(name) {
            Outcome::Fail(f) => {
                assert_eq!(
                    (f.class, f.checker.as_str()),
                    (sim::FailureClass::Safety, "commit-majority"),
                    "{name}: {f}"
                );
                assert!(f.message.contains("held by only 1 of"), "{name}: {f}");
            }
            Outcome::Pass => panic!("{name} passed a leader that commits what only it holds"),
        }
    }
    // Restarts wipe what it never persisted: every persistence scenario rejects it, by name.
    let persist: Vec<&str> = course.iter().map(|s| s.name).filter(|n| n.starts_with("kvraft::persist_")).collect();
    assert_eq!(persist.len(), 6, "the course has six persist scenarios: {persist:?}");
    for name in persist {
        match run(name) {
            Outcome::Fail(f) => {
                assert_eq!(f.class, sim::FailureClass::Safety, "{name}: {f}");
                assert!(!f.checker.is_empty() && f.checker != "panic", "{name}: caught by a named check: {f}");
                eprintln!("{name}: rejected by {}: {}", f.checker, f.message);
            }
            Outcome::Pass => panic!("{name} passed a leader-only engine that forgets on crash"),
        }
    }
}
