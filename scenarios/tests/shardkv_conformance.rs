//! The shardkv suite as a conformance suite for sharded key/value services: the same
//! scenarios, histories, linearizability checks and shard judge run a service of one's own (its
//! group server and clerk, `ShardKvService`) on any engine, as a family of its own.
//! - simlab's own service through the generic entry point is the shardkv family, run for run;
//! - a user's group server with a classic mistake — a leader answers a `Get` for a shard its
//!   configuration gives it before the shard's data has arrived from the previous owner — is
//!   rejected by a named check, and the same server without it passes;
//! - a run says which shard checks ran: all of them for a server that reports its shard
//!   changes, and that the ownership checks could not run for one that does not.

use cores::kv::{KvOp, KvResult};
use cores::replica::ApplyMsg;
use cores::rsm::ClerkReply;
use nodes::replica::{CallTag, Service, ServiceApi};
use nodes::shardctrler::CtrlerClerk;
use nodes::shardkv::{key2shard, GroupRequest, GroupServer, GroupSetup, MakeEnd, ShardClerk, ShardView};
use scenarios::engine::RaftEngine;
use scenarios::registry::{run_scenario, Family, Opts, Scenario};
use scenarios::shardkv::{conformance, OwnShardKv, ShardKvService};
use sim::{FailureClass, NodeCtx, NodeId, Outcome, ReplyTo, RpcError, TraceMode};

fn pick(f: &Family, suffix: &str) -> Scenario {
    *f.scenarios().iter().find(|s| s.name.ends_with(suffix)).unwrap_or_else(|| panic!("{suffix} present"))
}

#[test]
fn the_suite_on_a_service_is_a_family_of_its_own_with_the_same_runs() {
    let theirs = conformance::<RaftEngine, OwnShardKv>("theirs");
    let ours = scenarios::shardkv::family();
    assert_eq!(theirs.scenarios().len(), ours.scenarios().len());
    assert!(theirs.scenarios().len() >= 15, "14 course tests and the swarm");
    for (t, o) in theirs.scenarios().iter().zip(ours.scenarios()) {
        assert_eq!(t.name.strip_prefix("theirs::"), o.name.strip_prefix("shardkv::"), "same suffixes");
    }
    assert_eq!(theirs.bugs().len(), ours.bugs().len(), "the service's planted bugs and the engine's");
    // Renaming changes nothing a run does: same service and engine, same seed, same trace.
    for suffix in ["::join_leave_4b", "::swarm_4b"] {
        let a = run_scenario(&pick(&theirs, suffix), 1, &Opts::default(), TraceMode::Hash, None);
        let b = run_scenario(&pick(&ours, suffix), 1, &Opts::default(), TraceMode::Hash, None);
        assert!(a.outcome.is_pass(), "{suffix}: {}", a.outcome);
        assert_eq!(a.trace_hash, b.trace_hash, "{suffix}");
    }
}

/// A user's sharded service: simlab's group server, except that (with `serve-before-arrival`
/// on) a server that believes it leads answers a `Get` for a shard its configuration gives it
/// while the shard is still on its way from the previous owner — from what it holds, nothing.
/// With `REPORTS` false its servers tell the shard judge nothing (a service that exposes
/// little).
struct UserShardKv<const REPORTS: bool>;

struct UserGroup {
    inner: GroupServer,
    serve_before_arrival: bool,
}

impl Service for UserGroup {
    type Request = GroupRequest;
    type Reply = ClerkReply<KvResult>;

    fn restore(&mut self, snapshot: &[u8]) {
        self.inner.restore(snapshot);
    }

    fn apply(&mut self, api: &mut ServiceApi<'_>, msg: &ApplyMsg) -> Option<Vec<u8>> {
        self.inner.apply(api, msg)
    }

    fn on_boot(&mut self, api: &mut ServiceApi<'_>) {
        self.inner.on_boot(api);
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, from: NodeId, req: GroupRequest, reply_to: ReplyTo) {
        if let (true, GroupRequest::Clerk(r)) = (self.serve_before_arrival, &req) {
            if let KvOp::Get { key } = &r.op {
                if api.get_state().1 && self.inner.state().view(key2shard(key)) == ShardView::Pulling {
                    api.reply(reply_to, &ClerkReply::Ok(KvResult::Value(String::new())));
                    return;
                }
            }
        }
        self.inner.on_request(api, from, req, reply_to);
    }

    fn after_step(&mut self, api: &mut ServiceApi<'_>) {
        self.inner.after_step(api);
    }

    fn on_timer(&mut self, api: &mut ServiceApi<'_>) {
        self.inner.on_timer(api);
    }

    fn on_reply(&mut self, api: &mut ServiceApi<'_>, call: CallTag, result: Result<Vec<u8>, RpcError>) {
        self.inner.on_reply(api, call, result);
    }
}

impl<const REPORTS: bool> ShardKvService for UserShardKv<REPORTS> {
    type Config = bool;
    type Server = UserGroup;
    type Clerk = ShardClerk;

    fn config(bug: Option<&str>) -> bool {
        bug == Some("serve-before-arrival")
    }

    fn server(serve_before_arrival: &bool, ctx: NodeCtx, setup: GroupSetup) -> UserGroup {
        let observer = if REPORTS { setup.observer.clone() } else { None };
        UserGroup {
            inner: GroupServer::new(ctx, GroupSetup { observer, ..setup }),
            serve_before_arrival: *serve_before_arrival,
        }
    }

    fn clerk(_: &bool, ctx: NodeCtx, ctrler: CtrlerClerk, make_end: MakeEnd, client_id: u64) -> ShardClerk {
        ShardClerk::new(ctx, ctrler, make_end, client_id)
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        vec![("serve-before-arrival", "a leader answers Get for a shard it gained before the shard's data arrives")]
    }
}

#[test]
fn a_users_group_that_serves_before_the_shard_arrives_is_caught_by_a_named_check() {
    let family = conformance::<RaftEngine, UserShardKv<true>>("user");
    assert!(family.bugs().iter().any(|b| b.name == "serve-before-arrival"), "the service's planted mistake is offered");
    let run = |suffix: &str, seed: u64, bug: Option<&str>| {
        run_scenario(&pick(&family, suffix), seed, &Opts::with_bug(bug), TraceMode::Hash, None)
    };
    // (scenario, seed, the check that catches it): the course's own value check once a moved
    // shard is read, and the linearizability check of a history of random operations.
    for (suffix, seed, checker) in [("::miss_change_4b", 0, "shardkv::get"), ("::unreliable3_4b", 0, "linearizability")]
    {
        match run(suffix, seed, Some("serve-before-arrival")).outcome {
            Outcome::Fail(f) => {
                assert_eq!(f.class, FailureClass::Safety, "{suffix} seed {seed}: {f}");
                assert_eq!(f.checker, checker, "{suffix} seed {seed}: {f}");
            }
            Outcome::Pass => panic!("{suffix} seed {seed}: a Get served before its shard arrived went unnoticed"),
        }
        // The same service and seed without the mistake pass, and every shard check ran.
        let ok = run(suffix, seed, None);
        assert_eq!(ok.outcome, Outcome::Pass, "{suffix} seed {seed}");
        let line =
            ok.description.iter().find(|l| l.starts_with("shard checks:")).expect("the run says which checks ran");
        assert!(line.contains("single-owner") && !line.contains("not checked"), "{line}");
    }
}

#[test]
fn a_group_that_reports_nothing_is_told_which_checks_could_not_run() {
    let family = conformance::<RaftEngine, UserShardKv<false>>("silent");
    let r = run_scenario(&pick(&family, "::join_leave_4b"), 0, &Opts::default(), TraceMode::Hash, None);
    assert_eq!(r.outcome, Outcome::Pass);
    let line = r.description.iter().find(|l| l.starts_with("shard checks:")).expect("the run says which checks ran");
    assert!(line.contains("config-agreement"), "{line}");
    assert!(line.contains("not checked") && line.contains("serve-after-arrival"), "{line}");
}
