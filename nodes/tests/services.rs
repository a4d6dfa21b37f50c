//! Services that act on their own (issue: the sharded service polls its controller and pulls
//! shards): a service's timer fires when asked, its calls to other nodes come back to it with
//! their replies or failures — never dropped — and a clerk hears a wrong-group answer.

use cores::kv::{Kv, KvOp, KvResult};
use cores::raft::{Config, Raft};
use cores::replica::ApplyMsg;
use cores::rsm::{ClerkReply, RsmBugs};
use nodes::replica::{decode_service_reply, CallTag, CoreEngine, Engine, NodeSpec, Service, ServiceApi};
use nodes::rsm::{Clerk, ClerkError, RsmServer};
use sim::{Failure, NodeCtx, NodeId, ReplyTo, RpcError, RunConfig};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// What the polling service saw.
#[derive(Default, Debug)]
struct Seen {
    timers_ms: Vec<u64>,
    replies: Vec<u64>,
    failures: u32,
}

/// Every 100 ms, asks `peer` for a number; `peer` answers its request count.
struct Poller {
    peer: Option<NodeId>,
    asked: u64,
    seen: Rc<RefCell<Seen>>,
}

impl Service for Poller {
    type Request = u64;
    type Reply = u64;

    fn restore(&mut self, _snapshot: &[u8]) {}

    fn apply(&mut self, _api: &mut ServiceApi<'_>, _msg: &ApplyMsg) -> Option<Vec<u8>> {
        None
    }

    fn on_boot(&mut self, api: &mut ServiceApi<'_>) {
        if self.peer.is_some() {
            self.asked = 1;
            api.set_timer(api.now_ms() + 100);
        }
    }

    fn on_timer(&mut self, api: &mut ServiceApi<'_>) {
        self.seen.borrow_mut().timers_ms.push(api.now_ms());
        if let Some(peer) = self.peer {
            api.call(peer, &self.asked);
            self.asked += 1;
        }
        api.set_timer(api.now_ms() + 100);
    }

    fn on_request(&mut self, api: &mut ServiceApi<'_>, _from: NodeId, req: u64, reply_to: ReplyTo) {
        api.reply(reply_to, &(req * 10));
    }

    fn on_reply(&mut self, _api: &mut ServiceApi<'_>, _call: CallTag, result: Result<Vec<u8>, RpcError>) {
        match result {
            Ok(bytes) => self.seen.borrow_mut().replies.push(decode_service_reply::<u64>(&bytes)),
            Err(_) => self.seen.borrow_mut().failures += 1,
        }
    }
}

/// A one-server Raft group hosting `make`.
fn group<S: Service>(name: &str, make: impl Fn(NodeCtx) -> S + 'static) -> NodeId {
    let me = NodeId(sim::node_count());
    let spec = NodeSpec {
        me: 0,
        peers: vec![me],
        config: Config::new(0, 1, 0),
        observer: None,
        make_service: Rc::new(make),
        on_start: Rc::new(|_| {}),
    };
    CoreEngine::<Raft>::spawn(name, spec)
}

fn ensure(cond: bool, what: String) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::safety("test", what))
    }
}

#[test]
fn a_service_keeps_a_timer_and_hears_every_reply_and_failure_of_its_own_calls() {
    let report = sim::run(RunConfig::new(3, Duration::from_secs(60)), || async {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let answerer =
            group("answerer", |_| Poller { peer: None, asked: 0, seen: Rc::new(RefCell::new(Seen::default())) });
        let seen2 = seen.clone();
        group("poller", move |_| Poller { peer: Some(answerer), asked: 0, seen: seen2.clone() });
        sim::sleep(Duration::from_millis(1050)).await;
        // The answerer dies: the poller's later calls fail, and it hears each failure.
        sim::crash(answerer);
        sim::sleep(Duration::from_millis(1000)).await;
        let seen = seen.borrow();
        let timers = &seen.timers_ms;
        ensure(timers.len() >= 19, format!("a timer every 100 ms for 2 s: {timers:?}"))?;
        ensure(timers.windows(2).all(|w| w[1] - w[0] == 100), format!("each 100 ms after the last: {timers:?}"))?;
        ensure(seen.replies.len() >= 9, format!("replies while the answerer lived: {seen:?}"))?;
        ensure(seen.replies[..3] == [10, 20, 30], format!("each reply answers the call made: {seen:?}"))?;
        ensure(seen.failures >= 5, format!("calls to a crashed node fail back to the caller: {seen:?}"))?;
        // Every call has had its outcome except at most the one in flight now.
        let outcomes = seen.replies.len() + seen.failures as usize;
        ensure(outcomes + 1 >= timers.len() && outcomes <= timers.len(), format!("one outcome per call: {seen:?}"))
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}

/// A key/value server that says every key belongs to another group.
struct NotMine;

impl Service for NotMine {
    type Request = cores::rsm::ClerkRequest<KvOp>;
    type Reply = ClerkReply<KvResult>;
    fn restore(&mut self, _snapshot: &[u8]) {}
    fn apply(&mut self, _api: &mut ServiceApi<'_>, _msg: &ApplyMsg) -> Option<Vec<u8>> {
        None
    }
    fn on_request(&mut self, api: &mut ServiceApi<'_>, _from: NodeId, _req: Self::Request, reply_to: ReplyTo) {
        api.reply(reply_to, &ClerkReply::<KvResult>::WrongGroup);
    }
}

#[test]
fn a_clerk_hears_wrong_group_and_can_be_repointed() {
    let report = sim::run(RunConfig::new(4, Duration::from_secs(60)), || async {
        let elsewhere = group("elsewhere", |_| NotMine);
        let owner = group("owner", |ctx| RsmServer::<Kv>::new(ctx, None, RsmBugs::default()));
        let mut ck = Clerk::<Kv>::new(sim::client("c"), vec![elsewhere], 1);
        let put = KvOp::Put { key: "k".into(), value: "v".into() };
        if ck.try_call(put.clone(), None).await != Err(ClerkError::WrongGroup) {
            return Err(Failure::safety("test", "the clerk did not report the wrong group"));
        }
        // The same request, now at the owner: it takes effect once.
        ck.set_servers(vec![owner]);
        ck.try_call(put, Some(50)).await.map_err(|e| Failure::safety("test", format!("{e:?}")))?;
        match ck.call(KvOp::Get { key: "k".into() }).await {
            KvResult::Value(v) if v == "v" => Ok(()),
            other => Err(Failure::safety("test", format!("read {other:?}"))),
        }
    });
    assert!(report.outcome.is_pass(), "{}", report.outcome);
}
