//! Lab 2B (2015): the primary/backup key/value service's tests (reference
//! `6824-old-labs.md` §3.3), each with the course's servers, faults, waits and assertions, on
//! the old network mode: crashes fail calls at once, unreliable servers lose 10 % of requests
//! and 18 % of replies, the old primary of the partition tests sits behind a delaying proxy
//! and loses its own link to the view service. The view service is checked after every step
//! (`view-service`), and every run's client history for linearizability.
//!
//! Servers spend 0.3–0.7 ms per message (as in the kvraft scenarios): the course's clients
//! loop without sleeping for seconds, which only a cost per message bounds.
//!
//! Strengthened twins (reference §3.4): `at_most_once_backup_2b` runs TestAtMostOnce with a
//! backup, so forwarding is under the unreliable network too; `repeated_crash_unreliable_
//! strict_2b` keeps restarted servers unreliable.

use super::{fatal, stalled, view_observer, PING};
use crate::kvraft::tester::{check_history, HistoryAttachment};
use crate::registry::{Family, Opts, Scenario, ScenarioFuture};
use checkers::models::kv::{KvInput, KvOutput};
use cores::kv::{KvOp, KvResult};
use cores::pbservice::PbBugs;
use cores::viewservice::{View, VsBugs, DEAD_PINGS};
use nodes::oldlabs::pbservice::{spawn_pbserver, PbClerk};
use nodes::oldlabs::viewservice::{spawn_viewservice, VsClerk};
use rand::Rng;
use sim::history::Recorder;
use sim::net::{self, old};
use sim::{Failure, NodeId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(120);

/// The family: every test of lab 2B and the strengthened twins, with the planted bugs of the
/// view service and the pb server.
pub fn family() -> Family {
    let s = |name, description, run| Scenario::new(name, description, BUDGET, run).with_client_history();
    Family::new("pbservice")
        .with_bugs([
            ("vs-no-ack", "the view service moves to a new view without the primary's acknowledgement"),
            ("reply-before-backup", "the primary answers before the backup has the operation"),
            ("gets-not-forwarded", "the primary answers Gets from its own copy, without asking the backup"),
            ("no-duplicate-detection", "servers execute a retried request again"),
            ("empty-transfer", "the primary hands a new backup an empty state instead of its own"),
        ])
        .with_scenarios([
            s(
                "pbservice::basic_fail_2b",
                "single primary, add a backup, count pings, primary fails, last server killed",
                basic_fail,
            ),
            s(
                "pbservice::at_most_once_2b",
                "100 Appends to one unreliable server (the course's: no backup)",
                at_most_once,
            ),
            s(
                "pbservice::at_most_once_backup_2b",
                "TestAtMostOnce strengthened: two unreliable servers",
                at_most_once_backup,
            ),
            s(
                "pbservice::fail_put_2b",
                "Puts right after the backup fails, then right after the primary fails",
                fail_put,
            ),
            s("pbservice::concurrent_same_2b", "3 clients Put to 2 keys for 5 s; the backup agrees", concurrent_same),
            s(
                "pbservice::concurrent_same_append_2b",
                "3 clients Append to one key; the backup agrees",
                concurrent_same_append,
            ),
            s(
                "pbservice::concurrent_same_unreliable_2b",
                "concurrent Puts with unreliable servers",
                concurrent_same_unreliable,
            ),
            s(
                "pbservice::repeated_crash_2b",
                "a server killed and restarted every 2 s for 20 s under 2 clients",
                repeated_crash,
            ),
            s(
                "pbservice::repeated_crash_unreliable_2b",
                "repeated crashes, unreliable, 2 clients Appending",
                repeated_crash_unreliable,
            ),
            s(
                "pbservice::repeated_crash_unreliable_strict_2b",
                "the same, restarted servers stay unreliable",
                repeated_crash_unreliable_strict,
            ),
            s(
                "pbservice::partition1_2b",
                "an old primary cut from the view service does not serve a delayed Get",
                partition1,
            ),
            s("pbservice::partition2_2b", "a partitioned old primary does not complete a delayed Get", partition2),
        ])
}

/// The cluster of one test: a view service, servers, clerks and the history.
struct Pb {
    vs: NodeId,
    vck: VsClerk,
    bugs: PbBugs,
    history: Recorder<KvInput, KvOutput>,
    next_client: Cell<u64>,
    name: &'static str,
    /// `--history`: the history, attached when the run ends, whether in the final check or
    /// earlier.
    _attachment: HistoryAttachment,
}

impl Pb {
    /// The course's setup: a view service, then one second before any server starts.
    async fn new(name: &'static str, opts: &Opts) -> Rc<Pb> {
        old::set_old_mode(true);
        let mut cfg = net::config();
        (cfg.service_us_min, cfg.service_us_max) = (300, 700);
        net::set_config(cfg);
        let bug = opts.bug.as_deref();
        let vs_bugs = VsBugs { advance_without_ack: bug == Some("vs-no-ack") };
        let bugs = PbBugs {
            reply_before_backup: bug == Some("reply-before-backup"),
            gets_not_forwarded: bug == Some("gets-not-forwarded"),
            no_duplicate_detection: bug == Some("no-duplicate-detection"),
            empty_transfer: bug == Some("empty-transfer"),
        };
        let vs = spawn_viewservice("vs", vs_bugs, view_observer());
        let vck = VsClerk { ctx: sim::client("vck"), vs };
        sim::sleep(Duration::from_secs(1)).await;
        let history = Recorder::new();
        let mut attachment = HistoryAttachment::new(name, &history);
        attachment.asked = opts.attach_history;
        Rc::new(Pb { vs, vck, bugs, history, next_client: Cell::new(1), name, _attachment: attachment })
    }

    fn server(&self, name: &str) -> NodeId {
        self.server_via(name, self.vs)
    }

    fn server_via(&self, name: &str, vs: NodeId) -> NodeId {
        spawn_pbserver(name, vs, self.bugs)
    }

    fn clerk(&self) -> Ck {
        let cli = self.next_client.get();
        self.next_client.set(cli + 1);
        let ctx = sim::client(&format!("ck{cli}"));
        Ck { clerk: PbClerk::new(ctx, self.vs, cli), cli, history: self.history.clone() }
    }

    async fn view(&self) -> View {
        self.vck.get().await.unwrap_or_default()
    }

    /// Polls up to `n` ping intervals until `done(view)`; returns the last view.
    async fn poll(&self, n: u64, done: impl Fn(&View) -> bool) -> View {
        for _ in 0..n {
            let v = self.view().await;
            if done(&v) {
                return v;
            }
            sim::sleep(PING).await;
        }
        self.view().await
    }

    /// Judges the whole client history as every key/value history is judged
    /// ([`check_history`]): an undecided one fails too, and a refuted one attaches its page.
    fn check_linearizable(&self) -> Result<(), Failure> {
        check_history(self.name, &self.history)
    }
}

fn id(n: NodeId) -> Option<u16> {
    Some(n.0)
}

/// A clerk whose calls are recorded in the history.
struct Ck {
    clerk: PbClerk,
    cli: u64,
    history: Recorder<KvInput, KvOutput>,
}

impl Ck {
    async fn get(&mut self, key: &str) -> String {
        let op = self.history.call(self.cli, KvInput::get(key));
        let v = self.clerk.get(key).await;
        self.history.ret(op, KvOutput::value(v.clone()));
        v
    }

    async fn put(&mut self, key: &str, value: &str) {
        let op = self.history.call(self.cli, KvInput::put(key, value));
        let r = self.clerk.call(KvOp::Put { key: key.into(), value: value.into() }).await;
        self.history.ret(op, written(r));
    }

    async fn append(&mut self, key: &str, value: &str) {
        let op = self.history.call(self.cli, KvInput::append(key, value));
        let r = self.clerk.call(KvOp::Append { key: key.into(), value: value.into() }).await;
        self.history.ret(op, written(r));
    }

    /// The course's `check(ck, key, value)`.
    async fn check(&mut self, key: &str, value: &str) -> Result<(), Failure> {
        let v = self.get(key).await;
        if v != value {
            return Err(fatal("pb::check", format!("Get({key:?}) -> {v:?}, expected {value:?}")));
        }
        Ok(())
    }
}

fn written(r: KvResult) -> KvOutput {
    match r {
        KvResult::Wrote { prev_len, prev_digest } => KvOutput::Wrote { prev_len, prev_digest },
        KvResult::Value(v) => panic!("a write answered a value {v:?}"),
    }
}

/// The course's `checkAppends`: each client's `x i j y` occurs exactly once, in order.
fn check_appends(v: &str, counts: &[usize]) -> Result<(), Failure> {
    for (i, &n) in counts.iter().enumerate() {
        let mut last: Option<usize> = None;
        for j in 0..n {
            let wanted = format!("x {i} {j} y");
            let Some(off) = v.find(&wanted) else {
                return Err(fatal("pb::check-appends", format!("missing element {wanted:?} in Append result")));
            };
            if v.rfind(&wanted) != Some(off) {
                return Err(fatal("pb::check-appends", format!("duplicate element {wanted:?} in Append result")));
            }
            if last.is_some_and(|l| off < l) {
                return Err(fatal("pb::check-appends", format!("wrong order for element {wanted:?}")));
            }
            last = Some(off);
        }
    }
    Ok(())
}

fn basic_fail(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let pb = Pb::new("pbservice::basic_fail_2b", &opts).await;
        // Single primary, no backup.
        let s1 = pb.server("s1");
        let v = pb.poll(DEAD_PINGS * 2, |v| v.primary == id(s1)).await;
        if v.primary != id(s1) {
            return Err(fatal("pb::view", format!("first primary: {v:?}")));
        }
        let mut ck = pb.clerk();
        ck.put("111", "v1").await;
        ck.check("111", "v1").await?;
        ck.put("2", "v2").await;
        ck.check("2", "v2").await?;
        ck.put("1", "v1a").await;
        ck.check("1", "v1a").await?;
        ck.append("ak", "hello").await;
        ck.check("ak", "hello").await?;
        ck.put("ak", "xx").await;
        ck.append("ak", "yy").await;
        ck.check("ak", "xxyy").await?;

        // Add a backup.
        let s2 = pb.server("s2");
        let v = pb.poll(DEAD_PINGS * 2, |v| v.backup == id(s2)).await;
        if v.backup != id(s2) {
            return Err(stalled("pb::view", format!("backup never came up: {v:?}")));
        }
        ck.put("3", "33").await;
        ck.check("3", "33").await?;
        // Give the backup time to initialize.
        sim::sleep(PING * 3).await;
        ck.put("4", "44").await;
        ck.check("4", "44").await?;

        // Count RPCs to the view service: clerks and servers cache the view.
        let t0 = sim::now();
        let rpcs0 = net::rpc_count(pb.vs);
        for i in 0..100 {
            ck.put(&format!("xk{i}"), &i.to_string()).await;
        }
        let ticks = ((sim::now() - t0).as_nanos() / PING.as_nanos()) as u64;
        let allowed = 2 * ticks + 20;
        let rpcs = net::rpc_count(pb.vs) - rpcs0;
        if rpcs > allowed {
            return Err(fatal("pb::vs-rpc-count", format!("too many view service RPCs: {rpcs} > {allowed}")));
        }

        // Primary failure: the backup takes over with the data.
        sim::crash(s1);
        let v = pb.poll(DEAD_PINGS * 2, |v| v.primary == id(s2)).await;
        if v.primary != id(s2) {
            return Err(stalled("pb::view", format!("backup never switched to primary: {v:?}")));
        }
        ck.check("1", "v1a").await?;
        ck.check("3", "33").await?;
        ck.check("4", "44").await?;

        // Kill the last server: a new one must not become active.
        sim::crash(s2);
        let _s3 = pb.server("s3");
        sim::sleep(Duration::from_secs(1)).await;
        let mut ck2 = pb.clerk();
        if let Some(v) = sim::timeout(Duration::from_secs(2), ck2.get("1")).await {
            return Err(fatal("pb::inactive", format!("a new server answered Get(1) = {v:?} with no state")));
        }
        pb.check_linearizable()
    })
}

async fn at_most_once_run(opts: Opts, name: &'static str, nservers: usize) -> Result<(), Failure> {
    let pb = Pb::new(name, &opts).await;
    for i in 0..nservers {
        let s = pb.server(&format!("s{}", i + 1));
        old::set_unreliable(s, true);
    }
    pb.poll(DEAD_PINGS * 2, |v| v.primary.is_some() && v.backup.is_some()).await;
    // Give p+b time to ack and initialize.
    sim::sleep(PING * DEAD_PINGS as u32).await;
    let mut ck = pb.clerk();
    let mut val = String::new();
    for i in 0..100 {
        let v = i.to_string();
        ck.append("counter", &v).await;
        val.push_str(&v);
    }
    ck.check("counter", &val).await?;
    pb.check_linearizable()
}

fn at_most_once(opts: Opts) -> ScenarioFuture {
    Box::pin(at_most_once_run(opts, "pbservice::at_most_once_2b", 1))
}

fn at_most_once_backup(opts: Opts) -> ScenarioFuture {
    Box::pin(at_most_once_run(opts, "pbservice::at_most_once_backup_2b", 2))
}

fn fail_put(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let pb = Pb::new("pbservice::fail_put_2b", &opts).await;
        let s1 = pb.server("s1");
        sim::sleep(Duration::from_secs(1)).await;
        let s2 = pb.server("s2");
        sim::sleep(Duration::from_secs(1)).await;
        let s3 = pb.server("s3");
        pb.poll(DEAD_PINGS * 3, |v| v.primary.is_some() && v.backup.is_some()).await;
        sim::sleep(Duration::from_secs(1)).await; // wait for backup initialization
        let v1 = pb.view().await;
        if v1.primary != id(s1) || v1.backup != id(s2) {
            return Err(fatal("pb::view", format!("wrong primary or backup: {v1:?}")));
        }
        let mut ck = pb.clerk();
        ck.put("a", "aa").await;
        ck.put("b", "bb").await;
        ck.put("c", "cc").await;
        ck.check("a", "aa").await?;
        ck.check("b", "bb").await?;
        ck.check("c", "cc").await?;

        // Put() immediately after backup failure.
        sim::crash(s2);
        ck.put("a", "aaa").await;
        ck.check("a", "aaa").await?;
        pb.poll(DEAD_PINGS * 3, |v| v.viewnum > v1.viewnum && v.primary.is_some() && v.backup.is_some()).await;
        sim::sleep(Duration::from_secs(1)).await;
        let v2 = pb.view().await;
        if v2.primary != id(s1) || v2.backup != id(s3) {
            return Err(fatal("pb::view", format!("wrong primary or backup after backup failure: {v2:?}")));
        }
        ck.check("a", "aaa").await?;

        // Put() immediately after primary failure.
        sim::crash(s1);
        ck.put("b", "bbb").await;
        ck.check("b", "bbb").await?;
        pb.poll(DEAD_PINGS * 3, |v| v.viewnum > v2.viewnum && v.primary.is_some()).await;
        sim::sleep(Duration::from_secs(1)).await;
        ck.check("a", "aaa").await?;
        ck.check("b", "bbb").await?;
        ck.check("c", "cc").await?;
        pb.check_linearizable()
    })
}

/// TestConcurrentSame and its unreliable variant: clients Put random values to two keys for
/// 5 s; the primary's values are then read, the primary killed, and the old backup, once
/// primary, must hold the same values.
async fn concurrent_same_run(opts: Opts, name: &'static str, unreliable: bool) -> Result<(), Failure> {
    let pb = Pb::new(name, &opts).await;
    let servers = [pb.server("s1"), pb.server("s2")];
    if unreliable {
        for s in servers {
            old::set_unreliable(s, true);
        }
    }
    pb.poll(DEAD_PINGS * 2, |v| v.primary.is_some() && v.backup.is_some()).await;
    sim::sleep(Duration::from_millis(500)).await;
    let view = pb.view().await;
    if unreliable {
        let mut ck = pb.clerk();
        ck.put("0", "x").await;
        ck.put("1", "x").await;
    }
    let done = Rc::new(Cell::new(false));
    let mut tasks = Vec::new();
    for i in 0..3u64 {
        let mut ck = pb.clerk();
        let done = done.clone();
        tasks.push(sim::spawn(async move {
            let mut rng = sim::rng(&format!("pb-client-{i}"));
            while !done.get() {
                let k = rng.gen_range(0..2u32).to_string();
                let v = rng.gen::<u32>().to_string();
                ck.put(&k, &v).await;
            }
        }));
    }
    sim::sleep(Duration::from_secs(5)).await;
    done.set(true);
    if unreliable {
        for t in tasks {
            t.await.expect("client task");
        }
    } else {
        sim::sleep(Duration::from_secs(1)).await;
    }
    check_backup_agrees(&pb, view, &servers, &["0", "1"], |_| Ok(())).await
}

/// Reads `keys` from the primary, kills it, waits for the backup's promotion and requires the
/// same values from it (`also` checks each primary value first).
async fn check_backup_agrees(
    pb: &Pb,
    view: View,
    servers: &[NodeId],
    keys: &[&str],
    also: impl Fn(&str) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut ck = pb.clerk();
    let mut vals = Vec::new();
    for k in keys {
        let v = ck.get(k).await;
        if v.is_empty() {
            return Err(fatal("pb::check", format!("Get({k:?}) failed from primary")));
        }
        also(&v)?;
        vals.push(v);
    }
    if let Some(&p) = servers.iter().find(|s| Some(s.0) == view.primary) {
        sim::crash(p);
    }
    let v = pb.poll(DEAD_PINGS * 2, |v| v.primary == view.backup).await;
    if v.primary != view.backup {
        return Err(stalled("pb::view", format!("the backup {:?} was not promoted: {v:?}", view.backup)));
    }
    for (k, want) in keys.iter().zip(&vals) {
        let z = ck.get(k).await;
        if &z != want {
            return Err(fatal("pb::backup-agrees", format!("Get({k:?}) from backup: wanted {want:?}, got {z:?}")));
        }
    }
    pb.check_linearizable()
}

fn concurrent_same(opts: Opts) -> ScenarioFuture {
    Box::pin(concurrent_same_run(opts, "pbservice::concurrent_same_2b", false))
}

fn concurrent_same_unreliable(opts: Opts) -> ScenarioFuture {
    Box::pin(concurrent_same_run(opts, "pbservice::concurrent_same_unreliable_2b", true))
}

fn concurrent_same_append(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let pb = Pb::new("pbservice::concurrent_same_append_2b", &opts).await;
        let servers = [pb.server("s1"), pb.server("s2")];
        pb.poll(DEAD_PINGS * 2, |v| v.primary.is_some() && v.backup.is_some()).await;
        sim::sleep(Duration::from_millis(500)).await;
        let view = pb.view().await;
        let (nclients, napp) = (3usize, 50usize);
        let mut tasks = Vec::new();
        for i in 0..nclients {
            let mut ck = pb.clerk();
            tasks.push(sim::spawn(async move {
                for n in 0..napp {
                    ck.append("k", &format!("x {i} {n} y")).await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
        let counts = vec![napp; nclients];
        check_backup_agrees(&pb, view, &servers, &["k"], |v| check_appends(v, &counts)).await
    })
}

/// TestRepeatedCrash and its unreliable variants: a killer thread kills a random server,
/// restarts it a second later (empty), and waits a second more, for 20 s, under two clients.
async fn repeated_crash_run(opts: Opts, name: &'static str, unreliable: bool, strict: bool) -> Result<(), Failure> {
    let pb = Pb::new(name, &opts).await;
    let servers: Vec<NodeId> = (1..=3).map(|i| pb.server(&format!("s{i}"))).collect();
    if unreliable {
        for &s in &servers {
            old::set_unreliable(s, true);
        }
    }
    pb.poll(DEAD_PINGS, |v| v.primary.is_some() && v.backup.is_some()).await;
    sim::sleep(Duration::from_millis(500)).await;
    let done = Rc::new(Cell::new(false));
    let killer = {
        let (done, servers) = (done.clone(), servers.clone());
        sim::spawn(async move {
            let mut rng = sim::rng("pb-killer");
            while !done.get() {
                let s = servers[rng.gen_range(0..servers.len())];
                sim::crash(s);
                sim::sleep(Duration::from_secs(1)).await;
                sim::restart(s);
                // The course's restarted servers are new objects, never flagged unreliable;
                // the strict twin keeps them unreliable.
                old::set_unreliable(s, unreliable && strict);
                sim::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let failure: Rc<RefCell<Option<Failure>>> = Rc::new(RefCell::new(None));
    let nclients = 2usize;
    let counts = Rc::new(RefCell::new(vec![0usize; nclients]));
    let mut clients = Vec::new();
    for i in 0..nclients {
        let mut ck = pb.clerk();
        let (done, failure, counts) = (done.clone(), failure.clone(), counts.clone());
        clients.push(sim::spawn(async move {
            let mut rng = sim::rng(&format!("pb-client-{i}"));
            let mut data: std::collections::BTreeMap<String, String> = Default::default();
            let mut n = 0;
            while !done.get() {
                if unreliable {
                    ck.append("0", &format!("x {i} {n} y")).await;
                    n += 1;
                    counts.borrow_mut()[i] = n;
                } else {
                    let k = (i * 1_000_000 + rng.gen_range(0..10usize)).to_string();
                    if let Some(want) = data.get(&k) {
                        let got = ck.get(&k).await;
                        if &got != want && failure.borrow().is_none() {
                            *failure.borrow_mut() =
                                Some(fatal("pb::check", format!("Get({k:?}) -> {got:?}, expected {want:?}")));
                        }
                    }
                    let v = rng.gen::<u32>().to_string();
                    ck.put(&k, &v).await;
                    data.insert(k, v);
                }
                sim::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    sim::sleep(Duration::from_secs(20)).await;
    done.set(true);
    killer.await.expect("killer");
    for c in clients {
        c.await.expect("client task");
    }
    if let Some(f) = failure.borrow_mut().take() {
        return Err(f);
    }
    let mut ck = pb.clerk();
    if unreliable {
        let v = ck.get("0").await;
        check_appends(&v, &counts.borrow())?;
    }
    ck.put("aaa", "bbb").await;
    ck.check("aaa", "bbb").await?;
    pb.check_linearizable()
}

fn repeated_crash(opts: Opts) -> ScenarioFuture {
    Box::pin(repeated_crash_run(opts, "pbservice::repeated_crash_2b", false, false))
}

fn repeated_crash_unreliable(opts: Opts) -> ScenarioFuture {
    Box::pin(repeated_crash_run(opts, "pbservice::repeated_crash_unreliable_2b", true, false))
}

fn repeated_crash_unreliable_strict(opts: Opts) -> ScenarioFuture {
    Box::pin(repeated_crash_run(opts, "pbservice::repeated_crash_unreliable_strict_2b", true, true))
}

/// Setup of both partition tests: s1 behind a delaying proxy (delay 0) and with its own link
/// to the view service; s2 joins as backup; `a` = "1".
async fn partition_setup(pb: &Pb) -> Result<(NodeId, NodeId, Ck), Failure> {
    let s1 = pb.server("s1");
    old::set_proxy_delay(s1, Duration::ZERO);
    sim::sleep(Duration::from_secs(1)).await;
    if pb.view().await.primary != id(s1) {
        return Err(fatal("pb::view", "primary wrong"));
    }
    let s2 = pb.server("s2");
    sim::sleep(Duration::from_secs(1)).await;
    let v1 = pb.view().await;
    if v1.primary != id(s1) || v1.backup != id(s2) {
        return Err(stalled("pb::view", format!("backup did not join view: {v1:?}")));
    }
    let mut ck1 = pb.clerk();
    ck1.put("a", "1").await;
    ck1.check("a", "1").await?;
    Ok((s1, s2, ck1))
}

/// Starts ck1's Get of `a`, which reaches s1 only after the proxy's delay; the cell says
/// whether it returned the stale "1".
fn stale_get(mut ck1: Ck) -> (Rc<Cell<Option<bool>>>, madsim::task::JoinHandle<()>) {
    let stale = Rc::new(Cell::new(None));
    let out = stale.clone();
    let task = sim::spawn(async move {
        let x = ck1.get("a").await;
        out.set(Some(x == "1"));
    });
    (stale, task)
}

/// Waits up to `secs` for the delayed Get; it fails the test only if it returned "1".
async fn await_stale(stale: &Cell<Option<bool>>, secs: u64, what: &str) -> Result<(), Failure> {
    let deadline = sim::now() + Duration::from_secs(secs);
    while sim::now() < deadline && stale.get().is_none() {
        sim::sleep(Duration::from_millis(10)).await;
    }
    if stale.get() == Some(true) {
        return Err(fatal("pb::stale-get", what.to_string()));
    }
    Ok(())
}

fn partition1(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let pb = Pb::new("pbservice::partition1_2b", &opts).await;
        let (s1, s2, ck1) = partition_setup(&pb).await?;
        // s1 can no longer ping; ck1's Get reaches it 4 s later, when it is no longer primary.
        net::cut(s1, pb.vs);
        old::set_proxy_delay(s1, Duration::from_secs(4));
        let (stale, task) = stale_get(ck1);
        let v = pb.poll(DEAD_PINGS * 3, |v| v.primary == id(s2)).await;
        if v.primary != id(s2) {
            return Err(stalled("pb::view", format!("primary never changed: {v:?}")));
        }
        // Long enough that s2 has pinged and knows the new view.
        sim::sleep(PING * 2).await;
        let mut ck2 = pb.clerk();
        ck2.put("a", "111").await;
        ck2.check("a", "111").await?;
        await_stale(&stale, 5, "Get to old primary succeeded and produced stale value").await?;
        ck2.check("a", "111").await?;
        drop(task);
        pb.check_linearizable()
    })
}

fn partition2(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let pb = Pb::new("pbservice::partition2_2b", &opts).await;
        let (s1, s2, ck1) = partition_setup(&pb).await?;
        net::cut(s1, pb.vs);
        old::set_proxy_delay(s1, Duration::from_secs(5));
        let (stale, task) = stale_get(ck1);
        let v = pb.poll(DEAD_PINGS * 3, |v| v.primary == id(s2)).await;
        if v.primary != id(s2) {
            return Err(stalled("pb::view", format!("primary never changed: {v:?}")));
        }
        let s3 = pb.server("s3");
        let v2 = pb.poll(DEAD_PINGS * 3, |v| v.primary == id(s2) && v.backup == id(s3)).await;
        if v2.primary != id(s2) || v2.backup != id(s3) {
            return Err(stalled("pb::view", format!("new backup wasn't recruited: {v2:?}")));
        }
        sim::sleep(Duration::from_secs(2)).await;
        let mut ck2 = pb.clerk();
        ck2.put("a", "2").await;
        ck2.check("a", "2").await?;
        sim::crash(s2);
        await_stale(&stale, 6, "partitioned primary replied to a Get with a stale value").await?;
        ck2.check("a", "2").await?;
        drop(task);
        pb.check_linearizable()
    })
}
