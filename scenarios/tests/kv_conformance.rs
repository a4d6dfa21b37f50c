//! The kvraft suite as a conformance suite for key/value services: the same scenarios,
//! histories and linearizability checks run a service of one's own (its server and clerk,
//! `KvService`) on any engine, as a family of its own.
//! - simlab's own service through the generic entry point is the kvraft family, run for run;
//! - a user's service with a classic mistake — a leader answering `Get` from its own state
//!   without committing it, so a deposed leader in a minority serves stale values — is
//!   rejected by the course's own check and by the linearizability check, and the same
//!   service without it passes.

use cores::kv::{Kv, KvOp, KvResult};
use cores::replica::ApplyMsg;
use cores::rsm::{ClerkReply, ClerkRequest, RsmBugs};
use nodes::replica::{Service, ServiceApi};
use nodes::rsm::{Clerk, RsmServer};
use scenarios::engine::RaftEngine;
use scenarios::kvraft::{conformance, KvService, OwnKv};
use scenarios::registry::{run_scenario, Family, Opts, Scenario};
use sim::{FailureClass, NodeCtx, NodeId, Outcome, ReplyTo, TraceMode};

fn pick(f: &Family, suffix: &str) -> Scenario {
    *f.scenarios().iter().find(|s| s.name.ends_with(suffix)).unwrap_or_else(|| panic!("{suffix} present"))
}

#[test]
fn the_suite_on_a_service_is_a_family_of_its_own_with_the_same_runs() {
    let theirs = conformance::<RaftEngine, OwnKv>("theirs");
    let ours = scenarios::kvraft::family();
    assert_eq!(theirs.scenarios().len(), ours.scenarios().len());
    assert!(theirs.scenarios().len() >= 24, "23 course tests and the swarm");
    for (t, o) in theirs.scenarios().iter().zip(ours.scenarios()) {
        assert_eq!(t.name.strip_prefix("theirs::"), o.name.strip_prefix("kvraft::"), "same suffixes");
    }
    // The service's planted bugs and then the engine's.
    assert_eq!(theirs.bugs().len(), RsmBugs::ALL.len() + cores::raft::Bug::all().len());
    // Renaming changes nothing a run does: same service and engine, same seed, same trace.
    for suffix in ["::one_partition_3a", "::swarm_3b"] {
        let a = run_scenario(&pick(&theirs, suffix), 3, &Opts::default(), TraceMode::Hash, None);
        let b = run_scenario(&pick(&ours, suffix), 3, &Opts::default(), TraceMode::Hash, None);
        assert!(a.outcome.is_pass(), "{suffix}: {}", a.outcome);
        assert_eq!(a.trace_hash, b.trace_hash, "{suffix}");
    }
}

/// A user's service: simlab's server, except that a server that believes it leads answers
/// `Get` at once from its own state (when `local_reads` is on) — the classic mistake the
/// course warns of: a leader cut off in a minority still believes it leads and serves a value
/// the majority has since overwritten.
struct UserKv;

struct UserServer {
    inner: RsmServer<Kv>,
    local_reads: bool,
}

impl Service for UserServer {
    type Request = ClerkRequest<KvOp>;
    type Reply = ClerkReply<KvResult>;

    fn restore(&mut self, snapshot: &[u8]) {
        self.inner.restore(snapshot);
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        self.inner.apply(api, msg)
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, from: NodeId, req: Self::Request, reply_to: ReplyTo) {
        if let (true, KvOp::Get { key }) = (self.local_reads, &req.op) {
            if api.get_state().1 {
                let value = self.inner.state().sm.get(key).unwrap_or_default().to_string();
                api.reply(reply_to, &ClerkReply::Ok(KvResult::Value(value)));
                return;
            }
        }
        self.inner.on_request(api, from, req, reply_to);
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        self.inner.after_step(api);
    }
}

impl KvService for UserKv {
    type Config = bool;
    type Server = UserServer;
    type Clerk = Clerk<Kv>;

    fn config(bug: Option<&str>) -> bool {
        bug == Some("local-reads")
    }

    fn server(local_reads: &bool, ctx: NodeCtx, maxraftstate: Option<usize>) -> UserServer {
        UserServer { inner: RsmServer::new(ctx, maxraftstate, RsmBugs::default()), local_reads: *local_reads }
    }

    fn clerk(_: &bool, ctx: NodeCtx, servers: Vec<NodeId>, client_id: u64) -> Clerk<Kv> {
        Clerk::new(ctx, servers, client_id)
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        vec![("local-reads", "a server that believes it leads answers Get from its own state, uncommitted")]
    }
}

#[test]
fn a_users_service_that_reads_locally_is_caught_by_the_courses_checks_and_by_linearizability() {
    let family = conformance::<RaftEngine, UserKv>("user");
    assert!(family.bugs().iter().any(|b| b.name == "local-reads"), "the service's planted mistake is offered");
    let run = |suffix: &str, seed: u64, bug: Option<&str>| {
        // The plain swarm (no timing knobs or fault points): the seeds below were found in it.
        let opts = Opts { plain_swarm: true, ..Opts::with_bug(bug) };
        run_scenario(&pick(&family, suffix), seed, &opts, TraceMode::Hash, None).outcome
    };
    // (scenario, seed, the check that catches it): the course's own test of a minority, and
    // the linearizability check of a swarm's whole history (seeds 0-5 of the plain swarm
    // pass: catching it takes a leader cut off while a clerk still reaches it).
    for (suffix, seed, checker) in
        [("::one_partition_3a", 0, "kv::one-partition"), ("::swarm_3b", 6, "linearizability")]
    {
        match run(suffix, seed, Some("local-reads")) {
            Outcome::Fail(f) => {
                assert_eq!(f.class, FailureClass::Safety, "{suffix} seed {seed}: {f}");
                assert_eq!(f.checker, checker, "{suffix} seed {seed}: {f}");
            }
            Outcome::Pass => panic!("{suffix} seed {seed}: a stale read went unnoticed"),
        }
        // The same service and seed without the mistake pass.
        assert_eq!(run(suffix, seed, None), Outcome::Pass, "{suffix} seed {seed}");
    }
}
