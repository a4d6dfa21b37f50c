//! Lab 3A (2015): the Paxos library's tests (reference `6824-old-labs.md` §4.4), each with
//! the course's peers, faults, waits and bounds, on the old network mode. Every decision any
//! peer learns is checked at once (`paxos-agreement`: no two peers decide different values
//! for one instance; `paxos-validity`: a decided value was proposed), besides the course's
//! own `ndecided` comparisons; and whenever the tester looks, no peer's `Min` passes what every
//! peer declared done (`paxos-min`).
//!
//! Port decisions (reference §4.5, §8): the Go heap readings of TestForgetMem become counts
//! of instances each peer retains; peers "not created yet" (TestOld) are spawned deaf and
//! idle, which no peer can tell from a missing socket; the tests with no deadline (TestMany,
//! TestManyUnreliable) get the scenario's simulated-time budget; clients' busy loops sleep a
//! simulated millisecond where Go yields.

use super::{fatal, stalled};
use crate::registry::{Family, Opts, Scenario, ScenarioFuture};
use cores::paxos::{Fate, PxBugs};
use nodes::oldlabs::paxos::{spawn_paxos_peer, PxHandle, PxObserver};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sim::net::{self, old};
use sim::{Failure, NodeId};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

const BUDGET: Duration = Duration::from_secs(600);

/// The family: every test of lab 3A, with the Paxos planted bugs.
pub fn family() -> Family {
    let s = |name, description, run| Scenario::new(name, description, BUDGET, run);
    Family::new("paxos")
        .with_bugs([
            ("ignore-accepted", "a proposer ignores the highest accepted value it heard in phase 1"),
            ("min-too-early", "Min skips peers that never called Done, forgetting what they may need"),
            ("accept-below-promise", "an acceptor takes an Accept below the proposal it promised"),
            ("no-retry", "a proposer whose round failed gives up instead of retrying with a higher number"),
            ("no-decided-broadcast", "a proposer whose value was chosen tells no other peer"),
        ])
        .with_scenarios([
            s("paxos::basic_3a", "single proposer, many proposers, different values, out-of-order instances", basic),
            s("paxos::deaf_3a", "two deaf peers do not learn a decision until they propose", deaf),
            s("paxos::forget_3a", "Min follows Done over all peers, piggybacked", forget),
            s(
                "paxos::many_forget_3a",
                "random Starts and Dones on an unreliable network (the course asserts nothing)",
                many_forget,
            ),
            s("paxos::forget_mem_3a", "Done frees the instances (retained instances, not heap bytes)", forget_mem),
            s("paxos::done_max_3a", "Max survives forgetting", done_max),
            s("paxos::rpc_count_3a", "at most 45 RPCs for 5 sequential instances, 225 for 5 contended ones", rpc_count),
            s("paxos::many_3a", "49 instances, 3 proposers each, 5 in flight", many),
            s("paxos::old_3a", "a minority's old proposal is adopted by a new proposer", old_proposal),
            s("paxos::many_unreliable_3a", "49 instances on an unreliable network, 3 in flight", many_unreliable),
            s(
                "paxos::partition_3a",
                "no decision in a minority, decision in a majority, switching partitions",
                partition,
            ),
            s("paxos::lots_3a", "20 s of random 3-way partitions on an unreliable network", lots),
        ])
}

/// A value of the tests: Go's `interface{}` held ints and strings, and equality includes
/// the type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Val {
    Int(i64),
    Str(String),
}

fn int(i: i64) -> Val {
    Val::Int(i)
}

fn st(s: &str) -> Val {
    Val::Str(s.to_string())
}

/// The peers of one test and what was proposed.
struct Px {
    h: Vec<PxHandle<Val>>,
    nodes: Vec<NodeId>,
    proposed: Rc<RefCell<BTreeMap<u64, Vec<Val>>>>,
    /// Every peer's highest `Done` argument, as the tester called it (-1: none).
    dones: RefCell<Vec<i64>>,
}

impl Px {
    fn new(n: usize, opts: &Opts) -> Px {
        old::set_old_mode(true);
        let bug = opts.bug.as_deref();
        let bugs = PxBugs {
            ignore_accepted: bug == Some("ignore-accepted"),
            min_too_early: bug == Some("min-too-early"),
            no_retry: bug == Some("no-retry"),
            accept_below_promise: bug == Some("accept-below-promise"),
            no_decided_broadcast: bug == Some("no-decided-broadcast"),
            forget_promise: false,
        };
        let proposed: Rc<RefCell<BTreeMap<u64, Vec<Val>>>> = Rc::default();
        let chosen: Rc<RefCell<BTreeMap<u64, Val>>> = Rc::default();
        let observer: PxObserver<Val> = {
            let proposed = proposed.clone();
            Rc::new(move |peer, seq, v| {
                let mut chosen = chosen.borrow_mut();
                let why = match chosen.get(&seq) {
                    Some(c) if c != v => Some((
                        "paxos-agreement",
                        format!("peer {peer} decided {v:?} for instance {seq}, another {c:?}"),
                    )),
                    Some(_) => None,
                    None if !proposed.borrow().get(&seq).is_some_and(|p| p.contains(v)) => Some((
                        "paxos-validity",
                        format!("peer {peer} decided {v:?} for instance {seq}, never proposed"),
                    )),
                    None => {
                        chosen.insert(seq, v.clone());
                        None
                    }
                };
                if let Some((check, why)) = why {
                    if !sim::failed() {
                        sim::fail(Failure::safety(check, why));
                    }
                }
            })
        };
        let peers: Rc<RefCell<Vec<NodeId>>> = Rc::default();
        let h: Vec<PxHandle<Val>> =
            (0..n).map(|i| spawn_paxos_peer(&format!("p{i}"), i, peers.clone(), n, bugs, observer.clone())).collect();
        let nodes: Vec<NodeId> = h.iter().map(|h| h.node).collect();
        *peers.borrow_mut() = nodes.clone();
        Px { h, nodes, proposed, dones: RefCell::new(vec![-1; n]) }
    }

    fn start(&self, i: usize, seq: u64, v: Val) {
        self.proposed.borrow_mut().entry(seq).or_default().push(v.clone());
        self.h[i].start(seq, v);
    }

    /// `Done(seq)` at peer `i`, then the Min check.
    fn done(&self, i: usize, seq: u64) -> Result<(), Failure> {
        {
            let d = &mut self.dones.borrow_mut()[i];
            *d = (*d).max(seq as i64);
        }
        self.h[i].done(seq);
        self.check_min()
    }

    /// `paxos-min`: no peer's `Min` passes one more than the lowest `Done` any peer called,
    /// so nothing a peer still needs is forgotten anywhere.
    fn check_min(&self) -> Result<(), Failure> {
        let bound = self.dones.borrow().iter().min().copied().unwrap_or(-1) + 1;
        match self.h.iter().position(|h| h.min() > bound) {
            Some(i) => {
                let min = self.h[i].min();
                let why = match bound {
                    0 => "some peer has not called Done() yet".to_string(),
                    b => format!("some peer called Done() only up to {}", b - 1),
                };
                Err(Failure::safety(
                    "paxos-min",
                    format!("peer {i} has Min() {min} but {why}, so Min() may be at most {bound}"),
                ))
            }
            None => Ok(()),
        }
    }

    /// The course's `ndecided`: peers that decided `seq`, failing if two values differ.
    fn ndecided(&self, seq: u64) -> Result<usize, Failure> {
        self.check_min()?;
        let mut count = 0;
        let mut first: Option<Val> = None;
        for h in &self.h {
            if let Fate::Decided(v) = h.status(seq) {
                if first.as_ref().is_some_and(|f| f != &v) {
                    return Err(fatal(
                        "paxos::ndecided",
                        format!("decided values do not match; seq={seq} {first:?} {v:?}"),
                    ));
                }
                first = Some(v);
                count += 1;
            }
        }
        Ok(count)
    }

    /// The course's `waitn`: polls 30 times, sleeping 10 ms doubling under 1 s.
    async fn waitn(&self, seq: u64, wanted: usize) -> Result<(), Failure> {
        let mut to = Duration::from_millis(10);
        for _ in 0..30 {
            if self.ndecided(seq)? >= wanted {
                break;
            }
            sim::sleep(to).await;
            if to < Duration::from_secs(1) {
                to *= 2;
            }
        }
        let nd = self.ndecided(seq)?;
        if nd < wanted {
            return Err(stalled("paxos::waitn", format!("too few decided; seq={seq} ndecided={nd} wanted={wanted}")));
        }
        Ok(())
    }

    async fn waitmajority(&self, seq: u64) -> Result<(), Failure> {
        self.waitn(seq, self.h.len() / 2 + 1).await
    }

    /// The course's `checkmax`: after 3 s, at most `max` peers decided.
    async fn checkmax(&self, seq: u64, max: usize) -> Result<(), Failure> {
        sim::sleep(Duration::from_secs(3)).await;
        let nd = self.ndecided(seq)?;
        if nd > max {
            return Err(fatal("paxos::checkmax", format!("too many decided; seq={seq} ndecided={nd} max={max}")));
        }
        Ok(())
    }

    fn part(&self, groups: &[&[usize]]) {
        let groups: Vec<Vec<NodeId>> = groups.iter().map(|g| g.iter().map(|&i| self.nodes[i]).collect()).collect();
        let refs: Vec<&[NodeId]> = groups.iter().map(|g| g.as_slice()).collect();
        old::part(&self.nodes, &refs);
    }

    fn set_unreliable(&self, on: bool) {
        for &n in &self.nodes {
            old::set_unreliable(n, on);
        }
    }

    fn total_rpcs(&self) -> u64 {
        self.nodes.iter().map(|&n| net::rpc_count(n)).sum()
    }
}

fn basic(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let px = Px::new(3, &opts);
        // Single proposer.
        px.start(0, 0, st("hello"));
        px.waitn(0, 3).await?;
        // Many proposers, same value.
        for i in 0..3 {
            px.start(i, 1, int(77));
        }
        px.waitn(1, 3).await?;
        // Many proposers, different values.
        px.start(0, 2, int(100));
        px.start(1, 2, int(101));
        px.start(2, 2, int(102));
        px.waitn(2, 3).await?;
        // Out-of-order instances.
        px.start(0, 7, int(700));
        px.start(0, 6, int(600));
        px.start(1, 5, int(500));
        px.waitn(7, 3).await?;
        px.start(0, 4, int(400));
        px.start(1, 3, int(300));
        for seq in [6, 5, 4, 3] {
            px.waitn(seq, 3).await?;
        }
        if px.h[0].max() != 7 {
            return Err(fatal("paxos::max", format!("wrong Max() {}", px.h[0].max())));
        }
        Ok(())
    })
}

fn deaf(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let px = Px::new(5, &opts);
        px.start(0, 0, st("hello"));
        px.waitn(0, 5).await?;
        old::set_deaf(px.nodes[0], true);
        old::set_deaf(px.nodes[4], true);
        px.start(1, 1, st("goodbye"));
        px.waitmajority(1).await?;
        sim::sleep(Duration::from_secs(1)).await;
        if px.ndecided(1)? != 3 {
            return Err(fatal("paxos::deaf", "a deaf peer heard about a decision"));
        }
        px.start(0, 1, st("xxx"));
        px.waitn(1, 4).await?;
        sim::sleep(Duration::from_secs(1)).await;
        if px.ndecided(1)? != 4 {
            return Err(fatal("paxos::deaf", "a deaf peer heard about a decision"));
        }
        px.start(4, 1, st("yyy"));
        px.waitn(1, 5).await
    })
}

fn forget(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 6;
        let px = Px::new(n, &opts);
        if let Some(h) = px.h.iter().find(|h| h.min() > 0) {
            return Err(fatal("paxos::min", format!("wrong initial Min() {}", h.min())));
        }
        px.start(0, 0, st("00"));
        px.start(1, 1, st("11"));
        px.start(2, 2, st("22"));
        px.start(0, 6, st("66"));
        px.start(1, 7, st("77"));
        px.waitn(0, n).await?;
        let check_min = |want: i64| -> Result<(), Failure> {
            match px.h.iter().find(|h| h.min() != want) {
                Some(h) => Err(fatal("paxos::min", format!("wrong Min() {}; expected {want}", h.min()))),
                None => Ok(()),
            }
        };
        check_min(0)?;
        px.waitn(1, n).await?;
        check_min(0)?;
        // Everyone Done() -> Min() changes.
        for i in 0..n {
            px.done(i, 0)?;
        }
        for i in 1..n {
            px.done(i, 1)?;
        }
        for i in 0..n {
            px.start(i, 8 + i as u64, st("xx"));
        }
        for _ in 0..12 {
            if px.h.iter().all(|h| h.min() == 1) {
                return Ok(());
            }
            sim::sleep(Duration::from_secs(1)).await;
        }
        Err(stalled("paxos::min", "Min() did not advance after Done()"))
    })
}

fn many_forget(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 3;
        let px = Rc::new(Px::new(n, &opts));
        px.set_unreliable(true);
        let maxseq = 20u64;
        let starter = {
            let px = px.clone();
            sim::spawn(async move {
                let mut rng = sim::rng("paxos-starter");
                let mut na: Vec<u64> = (0..maxseq).collect();
                na.shuffle(&mut rng);
                for seq in na {
                    let j = rng.gen_range(0..n);
                    px.start(j, seq, int(rng.gen::<u32>() as i64));
                    sim::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let done = Rc::new(Cell::new(false));
        let doner = {
            let (px, done) = (px.clone(), done.clone());
            sim::spawn(async move {
                let mut rng = sim::rng("paxos-doner");
                while !done.get() {
                    let (seq, i) = (rng.gen_range(0..maxseq), rng.gen_range(0..n));
                    if seq as i64 >= px.h[i].min() && matches!(px.h[i].status(seq), Fate::Decided(_)) {
                        px.done(i, seq)?;
                    }
                    px.check_min()?;
                    sim::sleep(Duration::from_millis(1)).await;
                }
                Ok::<(), Failure>(())
            })
        };
        sim::sleep(Duration::from_secs(5)).await;
        done.set(true);
        starter.await.expect("starter");
        doner.await.expect("doner")?;
        px.set_unreliable(false);
        sim::sleep(Duration::from_secs(2)).await;
        for seq in 0..maxseq {
            for h in &px.h {
                if seq as i64 >= h.min() {
                    let _ = h.status(seq);
                }
            }
        }
        Ok(())
    })
}

fn forget_mem(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 3;
        let px = Px::new(n, &opts);
        let mut rng = sim::rng("paxos-values");
        let mut randstring =
            |len: usize| -> String { (0..len).map(|_| char::from(b'a' + rng.gen_range(0..26u8))).collect() };
        px.start(0, 0, st("x"));
        px.waitn(0, n).await?;
        for i in 1..=10 {
            px.start(0, i, Val::Str(randstring(1 << 20)));
            px.waitn(i, n).await?;
        }
        let m1: usize = px.h.iter().map(|h| h.retained_instances()).sum();
        for i in 0..n {
            px.done(i, 10)?;
        }
        for i in 0..n {
            px.start(i, 11 + i as u64, st("z"));
        }
        sim::sleep(Duration::from_secs(3)).await;
        if let Some(h) = px.h.iter().find(|h| h.min() != 11) {
            return Err(fatal("paxos::min", format!("expected Min() 11, got {}", h.min())));
        }
        let m2: usize = px.h.iter().map(|h| h.retained_instances()).sum();
        if m2 > m1 / 2 {
            return Err(fatal(
                "paxos::forget-mem",
                format!("memory use did not shrink enough: {m1} -> {m2} instances"),
            ));
        }
        for h in &px.h {
            for seq in 0..=2 {
                if h.status(seq) != Fate::Forgotten {
                    return Err(fatal("paxos::forgotten", format!("seq {seq} < Min() but not Forgotten")));
                }
            }
        }
        let mut fresh = Vec::new();
        for i in 0..n {
            for seq in 0..=2 {
                let v = randstring(20);
                px.start(i, seq, Val::Str(v.clone()));
                fresh.push(v);
            }
        }
        sim::sleep(Duration::from_secs(1)).await;
        for h in &px.h {
            for seq in 0..=2 {
                match h.status(seq) {
                    Fate::Forgotten => {}
                    Fate::Decided(Val::Str(v)) if fresh.contains(&v) => {
                        return Err(fatal("paxos::forgotten", format!("Start({seq}) below Min() was not ignored")));
                    }
                    other => return Err(fatal("paxos::forgotten", format!("seq {seq} < Min() but {other:?}"))),
                }
            }
        }
        Ok(())
    })
}

fn done_max(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 3;
        let px = Px::new(n, &opts);
        px.start(0, 0, st("x"));
        px.waitn(0, n).await?;
        for i in 1..=10 {
            px.start(0, i, st("y"));
            px.waitn(i, n).await?;
        }
        for i in 0..n {
            px.done(i, 10)?;
        }
        // Propagate messages so everyone knows about Done(10).
        for i in 0..n {
            px.start(i, 10, st("z"));
        }
        sim::sleep(Duration::from_secs(2)).await;
        match px.h.iter().find(|h| h.max() != 10) {
            Some(h) => {
                Err(fatal("paxos::max", format!("Max() did not return correct result {} after calling Done", h.max())))
            }
            None => Ok(()),
        }
    })
}

fn rpc_count(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 3;
        let px = Px::new(n, &opts);
        let mut seq = 0;
        for _ in 0..5 {
            px.start(0, seq, st("x"));
            px.waitn(seq, n).await?;
            seq += 1;
        }
        sim::sleep(Duration::from_secs(2)).await;
        let total1 = px.total_rpcs();
        let expected1 = 5 * n as u64 * n as u64;
        if total1 > expected1 {
            return Err(fatal(
                "paxos::rpc-count",
                format!("too many RPCs for serial Start()s; {total1} instead of {expected1}"),
            ));
        }
        for i in 0..5u64 {
            for j in 0..n {
                px.start(j, seq, int(j as i64 + i as i64 * 10));
            }
            px.waitn(seq, n).await?;
            seq += 1;
        }
        sim::sleep(Duration::from_secs(2)).await;
        let total2 = px.total_rpcs() - total1;
        let expected2 = 5 * n as u64 * 15;
        if total2 > expected2 {
            return Err(fatal(
                "paxos::rpc-count",
                format!("too many RPCs for concurrent Start()s; {total2} instead of {expected2}"),
            ));
        }
        Ok(())
    })
}

/// TestMany and TestManyUnreliable: 49 instances, each proposed by every peer, with at most
/// `window` in flight; no deadline but the scenario's budget.
async fn many_run(opts: Opts, unreliable: bool, window: u64) -> Result<(), Failure> {
    let n = 3;
    let px = Px::new(n, &opts);
    px.set_unreliable(unreliable);
    for i in 0..n {
        px.start(i, 0, int(0));
    }
    let ninst = 50;
    for seq in 1..ninst {
        while seq >= window && px.ndecided(seq - window)? < n {
            sim::sleep(Duration::from_millis(20)).await;
        }
        for i in 0..n {
            px.start(i, seq, int(seq as i64 * 10 + i as i64));
        }
    }
    loop {
        let mut done = true;
        for seq in 1..ninst {
            if px.ndecided(seq)? < n {
                done = false;
            }
        }
        if done {
            return Ok(());
        }
        sim::sleep(Duration::from_millis(100)).await;
    }
}

fn many(opts: Opts) -> ScenarioFuture {
    Box::pin(many_run(opts, false, 5))
}

fn many_unreliable(opts: Opts) -> ScenarioFuture {
    Box::pin(many_run(opts, true, 3))
}

fn old_proposal(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let px = Px::new(5, &opts);
        // Peers 0 and 4 do not exist yet: deaf and idle, nobody can reach them.
        old::set_deaf(px.nodes[0], true);
        old::set_deaf(px.nodes[4], true);
        px.start(1, 1, int(111));
        px.waitmajority(1).await?;
        old::set_deaf(px.nodes[0], false);
        px.start(0, 1, int(222));
        px.waitn(1, 4).await
    })
}

fn partition(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 5;
        let px = Px::new(n, &opts);
        px.part(&[]);
        let mut seq = 0;
        // No decision if partitioned.
        px.part(&[&[0, 2], &[1, 3], &[4]]);
        px.start(1, seq, int(111));
        px.checkmax(seq, 0).await?;
        // Decision in majority partition, by the proposer already running.
        px.part(&[&[0], &[1, 2, 3], &[4]]);
        sim::sleep(Duration::from_secs(2)).await;
        px.waitmajority(seq).await?;
        // All agree after full heal.
        px.start(0, seq, int(1000));
        px.start(4, seq, int(1004));
        px.part(&[&[0, 1, 2, 3, 4]]);
        px.waitn(seq, n).await?;
        // One peer switches partitions.
        for _ in 0..20 {
            seq += 1;
            px.part(&[&[0, 1, 2], &[3, 4]]);
            px.start(0, seq, int(seq as i64 * 10));
            px.start(3, seq, int(seq as i64 * 10 + 1));
            px.waitmajority(seq).await?;
            if px.ndecided(seq)? > 3 {
                return Err(fatal("paxos::partition", "too many decided"));
            }
            px.part(&[&[0, 1], &[2, 3, 4]]);
            px.waitn(seq, n).await?;
        }
        // One peer switches partitions, unreliable.
        for _ in 0..20 {
            seq += 1;
            px.set_unreliable(true);
            px.part(&[&[0, 1, 2], &[3, 4]]);
            for i in 0..n {
                px.start(i, seq, int(seq as i64 * 10 + i as i64));
            }
            px.waitn(seq, 3).await?;
            if px.ndecided(seq)? > 3 {
                return Err(fatal("paxos::partition", "too many decided"));
            }
            px.part(&[&[0, 1], &[2, 3, 4]]);
            px.set_unreliable(false);
            px.waitn(seq, 5).await?;
        }
        Ok(())
    })
}

fn lots(opts: Opts) -> ScenarioFuture {
    Box::pin(async move {
        let n = 5;
        let px = Rc::new(Px::new(n, &opts));
        px.set_unreliable(true);
        let done = Rc::new(Cell::new(false));
        let seq = Rc::new(Cell::new(0u64));
        let failure: Rc<RefCell<Option<Failure>>> = Rc::default();
        let partitioner = {
            let (px, done) = (px.clone(), done.clone());
            sim::spawn(async move {
                let mut rng = sim::rng("paxos-partitioner");
                while !done.get() {
                    let a: Vec<usize> = (0..n).map(|_| rng.gen_range(0..3)).collect();
                    let groups: Vec<Vec<usize>> = (0..3).map(|g| (0..n).filter(|&j| a[j] == g).collect()).collect();
                    let refs: Vec<&[usize]> = groups.iter().map(|g| g.as_slice()).collect();
                    px.part(&refs);
                    sim::sleep(Duration::from_millis(rng.gen_range(0..200))).await;
                }
            })
        };
        let starter = {
            let (px, done, seq, failure) = (px.clone(), done.clone(), seq.clone(), failure.clone());
            sim::spawn(async move {
                let mut rng = sim::rng("paxos-starter");
                while !done.get() {
                    let mut nd = 0;
                    for i in 0..seq.get() {
                        match px.ndecided(i) {
                            Ok(c) if c == n => nd += 1,
                            Ok(_) => {}
                            Err(f) => {
                                failure.borrow_mut().get_or_insert(f);
                            }
                        }
                    }
                    if seq.get() - nd < 10 {
                        for i in 0..n {
                            px.start(i, seq.get(), int(rng.gen_range(0..10)));
                        }
                        seq.set(seq.get() + 1);
                    }
                    sim::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
                }
            })
        };
        sim::sleep(Duration::from_secs(20)).await;
        done.set(true);
        partitioner.await.expect("partitioner");
        starter.await.expect("starter");
        if let Some(f) = failure.borrow_mut().take() {
            return Err(f);
        }
        // Repair, then check that all instances decided.
        px.set_unreliable(false);
        px.part(&[&[0, 1, 2, 3, 4]]);
        sim::sleep(Duration::from_secs(5)).await;
        for i in 0..seq.get() {
            px.waitmajority(i).await?;
        }
        Ok(())
    })
}
