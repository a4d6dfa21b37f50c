//! Tests of the simulated world: labrpc's numbers, crash and restart, clogs, duplicates,
//! the persister, the file system, outcomes and determinism.

use serde::{Deserialize, Serialize};
use sim::{net, Failure, FailureClass, Incoming, NodeCtx, NodeId, Outcome, RunConfig, RunReport, TraceMode};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Ping(u64);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn run<F, Fut>(seed: u64, f: F) -> RunReport
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), Failure>> + 'static,
{
    sim::run(RunConfig::new(seed, secs(10_000)), f)
}

fn expect_pass(r: &RunReport) {
    assert!(r.outcome.is_pass(), "expected pass, got {}", r.outcome);
}

/// An echo server that answers every request with `Ping(n + 1)` after `handler_ms`.
fn echo_server(name: &str, handler_ms: u64) -> NodeId {
    sim::spawn_process(name, move |ctx: NodeCtx| async move {
        loop {
            let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await else { continue };
            let Ping(n) = sim::decode(&payload);
            if handler_ms == 0 {
                ctx.reply(reply_to, &Ping(n + 1));
            } else {
                sim::spawn(async move {
                    sim::sleep(Duration::from_millis(handler_ms)).await;
                    ctx.reply(reply_to, &Ping(n + 1));
                });
            }
        }
    })
}

fn check(cond: bool, what: &str) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::safety("test", what))
    }
}

#[test]
fn reliable_round_trip_takes_no_simulated_time() {
    let r = run(1, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        let t0 = sim::now();
        let reply: Ping = c.call(s, &Ping(41)).await.map_err(|e| Failure::safety("test", e.to_string()))?;
        check(reply == Ping(42), "echo")?;
        check(sim::now() - t0 < Duration::from_micros(10), "reliable mode must add no delay")?;
        check(net::rpc_count(s) == 1 && net::rpc_total() == 1, "counts")?;
        // postcard: Ping(41) and Ping(42) are one varint byte each.
        check(net::bytes_total() == 2, "bytes")
    });
    expect_pass(&r);
}

#[test]
fn unreliable_mode_matches_labrpc_numbers() {
    let r = run(2, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::set_reliable(false);
        let n = 4000u64;
        let mut ok = 0u64;
        let mut max_ok_ms = 0u128;
        for i in 0..n {
            let t0 = sim::now();
            let r = c.call::<_, Ping>(s, &Ping(i)).await;
            let took = (sim::now() - t0).as_millis();
            if r.is_ok() {
                ok += 1;
                max_ok_ms = max_ok_ms.max(took);
            }
            check(took <= 26, "an unreliable call takes at most 26 ms")?;
        }
        // 0.9 * 0.9 = 0.81 of round trips succeed.
        let frac = ok as f64 / n as f64;
        check((0.78..0.84).contains(&frac), &format!("success fraction {frac}"))?;
        check(max_ok_ms >= 20, "delays spread up to 26 ms")?;
        // The handler ran for every request that was not lost (~90%).
        let handled = net::rpc_count(s) as f64 / n as f64;
        check((0.87..0.93).contains(&handled), &format!("handled fraction {handled}"))
    });
    expect_pass(&r);
}

#[test]
fn unreachable_server_fails_after_short_or_long_delay() {
    let r = run(3, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::disconnect(s);
        let mut longest_short = Duration::ZERO;
        for i in 0..200 {
            let t0 = sim::now();
            check(c.call::<_, Ping>(s, &Ping(i)).await.is_err(), "disconnected call fails")?;
            longest_short = longest_short.max(sim::now() - t0);
        }
        check(longest_short < Duration::from_millis(100), "short failure < 100 ms")?;
        net::set_long_delays(true);
        let mut longest = Duration::ZERO;
        for i in 0..60 {
            let t0 = sim::now();
            check(c.call::<_, Ping>(s, &Ping(i)).await.is_err(), "disconnected call fails")?;
            longest = longest.max(sim::now() - t0);
        }
        check(longest < secs(7) && longest > secs(5), &format!("long failure {longest:?}"))?;
        check(net::rpc_count(s) == 0, "no handler ran")
    });
    expect_pass(&r);
}

#[test]
fn disconnect_during_handler_fails_the_call_at_the_next_100ms_tick() {
    let r = run(4, || async {
        let s = echo_server("s", 10_000);
        let c = sim::client("c");
        let t0 = sim::now();
        sim::at(t0 + Duration::from_millis(250), move || net::disconnect(s));
        let r = c.call::<_, Ping>(s, &Ping(1)).await;
        check(r.is_err(), "call fails")?;
        let took = sim::now() - t0;
        check(
            took >= Duration::from_millis(299) && took <= Duration::from_millis(301),
            &format!("failed after {took:?}"),
        )
    });
    expect_pass(&r);
}

#[test]
fn crash_discards_in_flight_work_and_restart_rebuilds_from_persister() {
    let r = run(5, || async {
        // A counter server that persists its count before replying.
        let s = sim::spawn_process("s", |ctx: NodeCtx| async move {
            let mut count: u64 = if ctx.read_state().is_empty() { 0 } else { sim::decode(&ctx.read_state()) };
            loop {
                let Some(Incoming::Request { reply_to, .. }) = ctx.recv().await else { continue };
                count += 1;
                ctx.save(sim::encode(&count), None);
                // Reply later, so a crash can fall between the save and the reply.
                sim::spawn(async move {
                    sim::sleep(Duration::from_millis(50)).await;
                    ctx.reply(reply_to, &Ping(count));
                });
            }
        });
        let c = sim::client("c");
        check(c.call::<_, Ping>(s, &Ping(0)).await == Ok(Ping(1)), "first")?;
        sim::at(sim::now() + Duration::from_millis(10), move || sim::crash(s));
        // The save happened, the reply never comes: the call fails at the 100 ms tick.
        let t0 = sim::now();
        check(c.call::<_, Ping>(s, &Ping(0)).await.is_err(), "reply from dead instance is never delivered")?;
        check(sim::now() - t0 <= Duration::from_millis(101), "fails within 100 ms of the crash")?;
        check(!sim::is_alive(s), "dead")?;
        check(c.call::<_, Ping>(s, &Ping(0)).await.is_err(), "dead server unreachable")?;
        sim::restart(s);
        // The restarted instance resumes from the saved count of 2.
        check(c.call::<_, Ping>(s, &Ping(0)).await == Ok(Ping(3)), "restart rebuilt from persisted state")
    });
    expect_pass(&r);
}

#[test]
fn crash_right_after_a_save_keeps_exactly_that_save() {
    let r = run(6, || async {
        let saves = Rc::new(RefCell::new(0u32));
        let saves2 = saves.clone();
        let s = sim::spawn_process("s", move |ctx: NodeCtx| {
            let saves = saves2.clone();
            async move {
                for i in 1..=10u64 {
                    ctx.save(sim::encode(&i), Some(vec![i as u8; 3]));
                    *saves.borrow_mut() += 1;
                    sim::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        sim::crash_after_saves(s, 4, Duration::ZERO);
        sim::sleep(secs(1)).await;
        check(!sim::is_alive(s), "crashed by the fault point")?;
        let p = sim::persisted(s);
        check(
            sim::decode::<u64>(&p.state.to_vec()) == 4 && *p.snapshot == vec![4u8; 3],
            "exactly the 4th save survives",
        )?;
        // The instance's code after the save ran on (it had not yielded) but nothing it did counts.
        let n = *saves.borrow();
        check(n == 4, "no more saves ran after the crash")
    });
    expect_pass(&r);
}

#[test]
fn clog_holds_then_releases_in_a_burst() {
    let r = run(7, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::clog(c.id(), s);
        let done = Rc::new(RefCell::new(Vec::new()));
        for i in 0..5 {
            let done = done.clone();
            sim::spawn(async move {
                let r = c.call::<_, Ping>(s, &Ping(i)).await;
                done.borrow_mut().push((i, r.is_ok(), sim::now()));
            });
        }
        sim::sleep(secs(30)).await;
        check(done.borrow().is_empty() && net::rpc_count(s) == 0, "held, not lost, not failed")?;
        net::release(c.id(), s);
        sim::sleep(Duration::from_millis(1)).await;
        let d = done.borrow();
        check(d.len() == 5 && d.iter().all(|x| x.1), "all delivered after release")?;
        check(d.iter().all(|x| x.2 - d[0].2 < Duration::from_micros(100)), "in one burst")
    });
    expect_pass(&r);
}

/// A classifier for the echo protocol: requests are `ping`, replies `pong`.
fn ping_pong() -> net::Classifier {
    Rc::new(|_bytes: &[u8], reply: bool| Some(if reply { "pong" } else { "ping" }))
}

#[test]
fn hold_keeps_a_reply_across_a_disconnect_until_the_second_event() {
    let r = run(9, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::set_classifier(ping_pong());
        net::register_triggers(&["tick"]);
        let unknown = net::HoldSpec {
            from: s,
            to: c.id(),
            message: Some("pong".into()),
            messages: 1,
            until: "never-reported".into(),
            of: c.id(),
            count: 1,
            after_ms: 0,
        };
        check(net::hold(unknown.clone()).is_none(), "a hold on an unregistered trigger is refused")?;
        net::hold(net::HoldSpec { until: "tick".into(), count: 2, ..unknown }).expect("registered trigger");
        // Events before the hold takes its message do not count.
        net::protocol_event(c.id(), "tick");
        let done = Rc::new(RefCell::new(Vec::new()));
        for i in 0..2 {
            let done = done.clone();
            sim::spawn(async move {
                let r = c.call::<_, Ping>(s, &Ping(i)).await;
                done.borrow_mut().push((i, r.map(|p| p.0).ok()));
            });
            sim::sleep(secs(1)).await;
        }
        check(*done.borrow() == vec![(1, Some(2))], "the first reply is held, the second is not (messages = 1)")?;
        // The held answer outlives the link it was sent on: no dead-check failure.
        net::disconnect(s);
        sim::sleep(secs(5)).await;
        net::protocol_event(s, "tick");
        net::protocol_event(c.id(), "tick");
        check(done.borrow().len() == 1 && net::holds_pending() == 1, "one event of c is not two")?;
        net::protocol_event(c.id(), "tick");
        sim::sleep(Duration::from_millis(1)).await;
        check(*done.borrow() == vec![(1, Some(2)), (0, Some(1))], "released on the second event")?;
        check(net::holds_pending() == 0, "a released hold ends")
    });
    expect_pass(&r);
}

#[test]
fn a_released_hold_delivers_after_its_delay() {
    let r = run(11, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::set_classifier(ping_pong());
        net::register_triggers(&["tick"]);
        let spec = net::HoldSpec {
            from: c.id(),
            to: s,
            message: Some("ping".into()),
            messages: 1,
            until: "tick".into(),
            of: s,
            count: 1,
            after_ms: 500,
        };
        net::hold(spec).expect("registered");
        let done = Rc::new(RefCell::new(None));
        let d = done.clone();
        sim::spawn(async move {
            let r = c.call::<_, Ping>(s, &Ping(1)).await;
            *d.borrow_mut() = Some((r.is_ok(), sim::now()));
        });
        sim::sleep(secs(1)).await;
        let fired = sim::now();
        net::protocol_event(s, "tick");
        sim::sleep(secs(1)).await;
        let got = *done.borrow();
        check(
            got.is_some_and(|(ok, at)| {
                ok && at >= fired + Duration::from_millis(500) && at < fired + Duration::from_millis(501)
            }),
            &format!("arrives 500 ms after the event at {fired:?}: {got:?}"),
        )
    });
    expect_pass(&r);
}

#[test]
fn hold_of_every_request_ends_with_release_all() {
    let r = run(10, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::set_classifier(ping_pong());
        net::register_triggers(&["snapshot"]);
        let spec = net::HoldSpec {
            from: c.id(),
            to: s,
            message: Some("ping".into()),
            messages: 0,
            until: "snapshot".into(),
            of: s,
            count: 1,
            after_ms: 0,
        };
        net::hold(spec).expect("registered");
        let done = Rc::new(RefCell::new(0));
        for i in 0..3 {
            let done = done.clone();
            sim::spawn(async move {
                if c.call::<_, Ping>(s, &Ping(i)).await.is_ok() {
                    *done.borrow_mut() += 1;
                }
            });
        }
        sim::sleep(secs(3)).await;
        check(*done.borrow() == 0 && net::rpc_count(s) == 0, "every request held")?;
        net::release_all();
        sim::sleep(Duration::from_millis(1)).await;
        check(*done.borrow() == 3 && net::holds_pending() == 0, "release_all delivers and ends the hold")
    });
    expect_pass(&r);
}

#[test]
fn one_way_cut_loses_one_direction_only() {
    let r = run(8, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::cut(s, c.id());
        // Request gets through, the handler runs, the reply cannot come back.
        check(c.call::<_, Ping>(s, &Ping(1)).await.is_err(), "reply direction cut")?;
        check(net::rpc_count(s) == 1, "handler ran")?;
        net::uncut(s, c.id());
        net::cut(c.id(), s);
        check(c.call::<_, Ping>(s, &Ping(1)).await.is_err(), "request direction cut")?;
        check(net::rpc_count(s) == 1, "handler did not run")
    });
    expect_pass(&r);
}

#[test]
fn duplicated_requests_run_the_handler_twice() {
    let r = run(9, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        let mut cfg = net::config();
        cfg.duplicate_permille = 1000;
        net::set_config(cfg);
        check(c.call::<_, Ping>(s, &Ping(1)).await == Ok(Ping(2)), "first reply wins")?;
        // A duplicate arrives up to 500 ms after the original.
        sim::sleep(Duration::from_millis(600)).await;
        check(net::rpc_count(s) == 2, "the duplicate reached the handler")
    });
    expect_pass(&r);
}

#[test]
fn long_reordering_delays_two_thirds_of_replies() {
    let r = run(10, || async {
        let s = echo_server("s", 0);
        let c = sim::client("c");
        net::set_long_reordering(true);
        let (mut delayed, n) = (0, 900);
        for i in 0..n {
            let t0 = sim::now();
            c.call::<_, Ping>(s, &Ping(i)).await.map_err(|e| Failure::safety("test", e.to_string()))?;
            let took = sim::now() - t0;
            if took >= Duration::from_millis(200) {
                delayed += 1;
                check(took < Duration::from_millis(2200), "at most 2199 ms")?;
            }
        }
        let frac = delayed as f64 / n as f64;
        check((0.62..0.71).contains(&frac), &format!("delayed fraction {frac}"))
    });
    expect_pass(&r);
}

#[test]
fn partition_separates_groups_and_leaves_clients_alone() {
    let r = run(11, || async {
        let a = echo_server("a", 0);
        let b = echo_server("b", 0);
        let c = sim::client("c");
        net::partition(&[a], &[b]);
        check(!net::link_up(a, b) && !net::link_up(b, a), "no link across")?;
        check(
            c.call::<_, Ping>(a, &Ping(1)).await.is_ok() && c.call::<_, Ping>(b, &Ping(1)).await.is_ok(),
            "client reaches both",
        )?;
        net::heal(&[a, b]);
        check(net::link_up(a, b), "healed")
    });
    expect_pass(&r);
}

#[test]
fn file_rename_is_atomic_and_watchers_see_every_mutation() {
    let r = run(12, || async {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let seen2 = seen.clone();
        sim::fs::watch(Box::new(move |path, _op, content| {
            seen2.borrow_mut().push((path.to_string(), content.map(|c| c.len())));
            None
        }));
        let w = sim::spawn_process("w", |ctx: NodeCtx| async move {
            ctx.fs_append("tmp-1", b"hello ");
            sim::sleep(Duration::from_millis(5)).await;
            ctx.fs_append("tmp-1", b"world");
            ctx.fs_rename("tmp-1", "out");
            ctx.fs_append("tmp-2", b"partial");
            sim::sleep(secs(10)).await;
            ctx.fs_rename("tmp-2", "out");
        });
        sim::sleep(secs(1)).await;
        sim::crash(w);
        sim::sleep(secs(20)).await;
        check(sim::fs::read("out").as_deref() == Some(&b"hello world"[..]), "the dead worker's rename never happened")?;
        check(
            sim::fs::list("tmp") == vec!["tmp-2".to_string()],
            "its temporary file stays invisible under the final name",
        )?;
        let n = seen.borrow().len();
        check(n == 4, "4 mutations")
    });
    expect_pass(&r);
}

#[test]
fn outcomes_have_their_classes() {
    let budget = sim::run(RunConfig::new(1, secs(5)), || async {
        sim::sleep(secs(10)).await;
        Ok(())
    });
    assert_eq!(budget.outcome.class(), Some(FailureClass::Liveness));
    assert!(budget.outcome.to_string().contains("budget"));

    let deadlock = sim::run(RunConfig::new(1, secs(100)), || async {
        let c = sim::client("c");
        c.recv().await;
        Ok(())
    });
    assert_eq!(deadlock.outcome.class(), Some(FailureClass::Liveness), "{}", deadlock.outcome);

    let panic = run(1, || async {
        sim::spawn_process("p", |_ctx| async { panic!("core invariant broken") });
        sim::sleep(secs(1)).await;
        Ok(())
    });
    match &panic.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.class, FailureClass::Panic);
            assert!(f.message.contains("core invariant broken") && f.message.contains("node p"), "{}", f.message);
        }
        o => panic!("expected panic, got {o}"),
    }

    let checker = sim::run(RunConfig::new(1, secs(100)), || async {
        sim::spawn(async {
            sim::sleep(secs(1)).await;
            sim::fail(Failure::safety("my-checker", "saw two leaders"));
        });
        sim::sleep(secs(50)).await;
        Ok(())
    });
    match &checker.outcome {
        Outcome::Fail(f) => assert_eq!((f.class, f.checker.as_str()), (FailureClass::Safety, "my-checker")),
        o => panic!("expected safety failure, got {o}"),
    }
    assert!(checker.sim_time < secs(2), "the run stops at the first failure");
}

fn chatty(seed: u64, mode: TraceMode) -> RunReport {
    let mut cfg = RunConfig::new(seed, secs(100));
    cfg.trace = mode;
    sim::run(cfg, || async {
        let servers: Vec<NodeId> = (0..3).map(|i| echo_server(&format!("s{i}"), 3)).collect();
        net::set_reliable(false);
        net::set_long_reordering(true);
        let c = sim::client("c");
        for i in 0..300u64 {
            let s = servers[(i % 3) as usize];
            sim::spawn(async move {
                let _ = c.call::<_, Ping>(s, &Ping(i)).await;
            });
            sim::sleep(Duration::from_millis(7)).await;
        }
        sim::sleep(secs(5)).await;
        Ok(())
    })
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = chatty(77, TraceMode::Hash);
    let b = chatty(77, TraceMode::Capture);
    let c = chatty(78, TraceMode::Hash);
    expect_pass(&a);
    assert_eq!(a.trace_hash, b.trace_hash, "capturing lines must not change the run");
    assert_eq!(a.events, b.events);
    assert_eq!(b.captured.len() as u64, b.events);
    assert_ne!(a.trace_hash, c.trace_hash);
    assert!(a.events > 1000, "events {}", a.events);
    let line = &b.captured[10].line;
    assert!(line.contains('s') && line.split_whitespace().count() >= 3, "line: {line}");
}

#[test]
fn a_zero_delay_message_loop_is_reported_as_a_livelock_and_ends_the_run() {
    let r = run(13, || async {
        // Every reply triggers the next call at once: time only crawls by the executor's
        // per-poll nanoseconds, so the budget would never run out.
        let s = echo_server("s", 0);
        sim::spawn_process("pinger", move |ctx: NodeCtx| async move {
            let mut i = 0u64;
            loop {
                let _ = ctx.call::<_, Ping>(s, &Ping(i)).await;
                i += 1;
            }
        });
        sim::sleep(secs(100)).await;
        Ok(())
    });
    match &r.outcome {
        Outcome::Fail(f) => assert_eq!((f.class, f.checker.as_str()), (FailureClass::Liveness, "livelock"), "{f}"),
        o => panic!("expected a livelock, got {o}"),
    }
    assert!(r.sim_time < secs(1), "caught within a simulated second: {:?}", r.sim_time);
}

/// Ten sequential calls from a client to an echo server; the run's simulated time (ms).
fn ten_calls(points: Vec<(sim::FaultPoint, u32)>) -> RunReport {
    run(5, move || async move {
        sim::enable_fault_points(&points.into_iter().collect());
        let s = echo_server("s", 0);
        let c = sim::client("c");
        for i in 0..10 {
            let r: Result<Ping, _> = c.call(s, &Ping(i)).await;
            check(r == Ok(Ping(i + 1)), "the echo answers")?;
        }
        Ok(())
    })
}

#[test]
fn a_fault_point_fires_only_when_enabled() {
    use sim::FaultPoint;
    let mark = |r: &RunReport, p: FaultPoint| r.marks.iter().find(|(m, _)| *m == p.mark()).map_or(0, |(_, n)| *n);
    // Nothing enabled: nothing fires, and the run is the run without the call.
    let off = ten_calls(Vec::new());
    expect_pass(&off);
    assert!(FaultPoint::ALL.iter().all(|&p| mark(&off, p) == 0));
    // A reliable echo takes no simulated time beyond the executor's nanoseconds per poll.
    assert!(off.sim_time < Duration::from_millis(1), "{:?}", off.sim_time);
    // Another point enabled (one this run never reaches) changes nothing but the trace line.
    let other = ten_calls(vec![(FaultPoint::SkewTimer, 1000)]);
    assert_eq!((other.sim_time, mark(&other, FaultPoint::DelaySend)), (off.sim_time, 0));
    // net.delay_send at 1000‰ fires on every request and reply: 20 delays of 20–400 ms.
    let on = ten_calls(vec![(FaultPoint::DelaySend, 1000)]);
    expect_pass(&on);
    assert_eq!(mark(&on, FaultPoint::DelaySend), 20);
    assert!(
        on.sim_time.as_nanos() as u64 >= 20 * 20_000_000 && on.sim_time.as_nanos() as u64 <= 20 * 400_000_000,
        "{}",
        on.sim_time.as_nanos() as u64
    );
    // Deterministic: the same points, the same run.
    let again = ten_calls(vec![(FaultPoint::DelaySend, 1000)]);
    assert_eq!((on.trace_hash, on.sim_time.as_nanos() as u64), (again.trace_hash, again.sim_time.as_nanos() as u64));
    // node.pause at 1000‰ stalls the server before every message it takes.
    let paused = ten_calls(vec![(FaultPoint::PauseNode, 1000)]);
    expect_pass(&paused);
    assert_eq!(mark(&paused, FaultPoint::PauseNode), 10);
    assert!(paused.sim_time.as_nanos() as u64 >= 10 * 50_000_000, "{}", paused.sim_time.as_nanos() as u64);
}

#[test]
fn crash_after_save_point_crashes_right_after_the_save_and_restarts_the_node() {
    use sim::FaultPoint;
    let r = run(3, || async {
        sim::enable_fault_points(&[(FaultPoint::CrashAfterSave, 1000)].into_iter().collect());
        let saved = Rc::new(RefCell::new(Vec::new()));
        let log = saved.clone();
        let n = sim::spawn_process("p", move |ctx: NodeCtx| {
            let log = log.clone();
            async move {
                let before = ctx.read_state();
                log.borrow_mut().push(before.len());
                ctx.save(vec![1; before.len() + 1], None);
                // Ignored while the point fires at every save: the instance died at the save.
                ctx.save(vec![9; 100], None);
                loop {
                    sim::sleep(secs(1)).await;
                }
            }
        });
        sim::sleep(secs(3)).await;
        // Disarmed, the point restarts nothing more: the caller does (as a liveness phase).
        sim::disarm_fault_points();
        if !sim::is_alive(n) {
            sim::restart(n);
        }
        sim::sleep(secs(1)).await;
        let saves = saved.borrow().clone();
        check(sim::persisted(n).state.len() == 100, "once disarmed, the step after the save runs")?;
        check(
            saves.iter().enumerate().all(|(i, &n)| n == i),
            &format!("no step went past its save; each restart read the last: {saves:?}"),
        )?;
        check(saves.len() >= 3, "the point restarted the node it crashed, more than once")?;
        Ok(())
    });
    expect_pass(&r);
    assert!(r.marks.iter().any(|(m, n)| *m == FaultPoint::CrashAfterSave.mark() && *n >= 2), "{:?}", r.marks);
}

#[test]
fn crash_after_reply_point_crashes_right_after_the_reply_left_and_restarts_the_node() {
    use sim::FaultPoint;
    let r = run(4, || async {
        sim::enable_fault_points(&[(FaultPoint::CrashAfterReply, 1000)].into_iter().collect());
        // Each instance saves nothing before answering: what it promised dies with it.
        let boots = Rc::new(RefCell::new(0u32));
        let b = boots.clone();
        let s = sim::spawn_process("s", move |ctx: NodeCtx| {
            *b.borrow_mut() += 1;
            async move {
                loop {
                    let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await else { continue };
                    let Ping(n) = sim::decode(&payload);
                    ctx.reply(reply_to, &Ping(n + 1));
                    if sim::fault_point_crash(FaultPoint::CrashAfterReply, ctx) {
                        check(!ctx.is_current(), "the step ends at the crash").map_err(sim::fail).ok();
                        return;
                    }
                }
            }
        });
        let c = sim::client("c");
        for i in 0..3 {
            let r: Result<Ping, _> = c.call(s, &Ping(i)).await;
            check(r == Ok(Ping(i + 1)), "the reply left before the crash and arrives")?;
            check(!sim::is_alive(s), "the server crashed right after replying")?;
            // Back 1–500 ms later, restarted by the point itself.
            sim::sleep(Duration::from_millis(600)).await;
            check(sim::is_alive(s), "the point restarted what it crashed")?;
        }
        check(*boots.borrow() == 4, &format!("one boot, then one per crash: {}", boots.borrow()))?;
        Ok(())
    });
    expect_pass(&r);
    assert!(r.marks.iter().any(|(m, n)| *m == FaultPoint::CrashAfterReply.mark() && *n == 3), "{:?}", r.marks);
}

#[test]
fn hold_snapshot_point_holds_the_message_until_its_receiver_reports_the_registered_trigger() {
    use sim::FaultPoint;
    let mark =
        |r: &RunReport| r.marks.iter().find(|(m, _)| *m == FaultPoint::HoldSnapshot.mark()).map_or(0, |(_, n)| *n);
    let r = run(6, || async {
        sim::enable_fault_points(&[(FaultPoint::HoldSnapshot, 1000)].into_iter().collect());
        let s = echo_server("s", 0);
        let c = sim::client("c");
        let send = |i: u64| {
            let mut call = None;
            sim::fault_point_hold(FaultPoint::HoldSnapshot, c.id(), s, || call = Some(c.call::<_, Ping>(s, &Ping(i))));
            call.expect("send runs once")
        };
        // No release trigger registered: the point is not reached and the call goes through.
        check(send(1).await == Ok(Ping(2)), "no trigger, no hold")?;
        check(net::holds_pending() == 0, "nothing armed")?;
        net::register_triggers(&["apply"]);
        sim::set_fault_point_release(FaultPoint::HoldSnapshot, "apply");
        let held = sim::spawn(send(10));
        sim::sleep(secs(5)).await;
        check(net::holds_pending() == 1, "the message is held")?;
        // The sender's events do not release it; the receiver's do.
        net::protocol_event(c.id(), "apply");
        sim::sleep(secs(1)).await;
        check(net::holds_pending() == 1, "still held after the sender's event")?;
        net::protocol_event(s, "apply");
        check(net::holds_pending() == 0, "released by the receiver's event")?;
        check(held.await.expect("task") == Ok(Ping(11)), "delivered and answered after its release")?;
        Ok(())
    });
    expect_pass(&r);
    assert_eq!(mark(&r), 1, "{:?}", r.marks);
}

#[test]
fn hold_append_reply_point_holds_a_reply_until_the_caller_reports_the_points_own_trigger() {
    use sim::FaultPoint;
    let r = run(7, || async {
        sim::enable_fault_points(&[(FaultPoint::HoldAppendReply, 1000)].into_iter().collect());
        net::register_triggers(&["apply", "leader"]);
        // Each hold point has its own trigger: the snapshot point's does not release a reply.
        sim::set_fault_point_release(FaultPoint::HoldSnapshot, "apply");
        sim::set_fault_point_release(FaultPoint::HoldAppendReply, "leader");
        let s = sim::spawn_process("s", move |ctx: NodeCtx| async move {
            loop {
                let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await else { continue };
                let Ping(n) = sim::decode(&payload);
                sim::fault_point_hold(FaultPoint::HoldAppendReply, ctx.id(), reply_to.caller(), || {
                    ctx.reply(reply_to, &Ping(n + 1))
                });
            }
        });
        let c = sim::client("c");
        let held = sim::spawn(c.call::<_, Ping>(s, &Ping(20)));
        sim::sleep(secs(5)).await;
        check(net::holds_pending() == 1, "the reply is held")?;
        net::protocol_event(c.id(), "apply");
        net::protocol_event(s, "leader");
        sim::sleep(secs(1)).await;
        check(net::holds_pending() == 1, "another point's trigger, or the sender's event, releases nothing")?;
        net::protocol_event(c.id(), "leader");
        check(net::holds_pending() == 0, "released by the caller's own trigger")?;
        check(held.await.expect("task") == Ok(Ping(21)), "the call, kept alive, gets the reply after its release")?;
        Ok(())
    });
    expect_pass(&r);
    assert!(r.marks.iter().any(|(m, n)| *m == FaultPoint::HoldAppendReply.mark() && *n == 1), "{:?}", r.marks);
}

#[test]
fn late_duplicate_point_replays_a_request_after_its_sender_reports_the_trigger_twice() {
    use sim::FaultPoint;
    use std::cell::RefCell;
    use std::rc::Rc;
    for old_mode in [false, true] {
        let r = run(9, move || async move {
            sim::net::old::set_old_mode(old_mode);
            sim::enable_fault_points(&[(FaultPoint::LateDuplicate, 1000)].into_iter().collect());
            let seen = Rc::new(RefCell::new(Vec::new()));
            let seen2 = seen.clone();
            let s = sim::spawn_process("s", move |ctx: NodeCtx| {
                let seen = seen2.clone();
                async move {
                    loop {
                        let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await else { continue };
                        let Ping(n) = sim::decode(&payload);
                        seen.borrow_mut().push(n);
                        ctx.reply(reply_to, &Ping(n + 1));
                    }
                }
            });
            let c = sim::client("c");
            let send = |i: u64| sim::fault_point_duplicate(c.id(), s, || c.call::<_, Ping>(s, &Ping(i)));
            // No release trigger registered: the point is not reached, nothing is copied.
            check(send(1).await == Ok(Ping(2)), "no trigger, no copy")?;
            check(net::holds_pending() == 0, "nothing armed")?;
            net::register_triggers(&["answered"]);
            sim::set_fault_point_release(FaultPoint::LateDuplicate, "answered");
            check(send(10).await == Ok(Ping(11)), "the original goes through")?;
            check(net::holds_pending() == 1, "the copy is held")?;
            // The receiver's events do not count; the sender's first one is not enough.
            net::protocol_event(s, "answered");
            net::protocol_event(c.id(), "answered");
            sim::sleep(secs(1)).await;
            check(*seen.borrow() == [1, 10], &format!("the copy waits for a second event: {:?}", seen.borrow()))?;
            net::protocol_event(c.id(), "answered");
            check(net::holds_pending() == 0, "released by the sender's second event")?;
            sim::sleep(secs(1)).await;
            check(*seen.borrow() == [1, 10, 10], &format!("the copy arrives after its release: {:?}", seen.borrow()))?;
            Ok(())
        });
        expect_pass(&r);
        assert!(r.marks.iter().any(|(m, n)| *m == FaultPoint::LateDuplicate.mark() && *n == 1), "{:?}", r.marks);
    }
}

#[test]
fn crash_after_vote_point_crashes_the_node_and_restarts_it() {
    use sim::FaultPoint;
    let r = run(8, || async {
        sim::enable_fault_points(&[(FaultPoint::CrashAfterVote, 1000)].into_iter().collect());
        let s = sim::spawn_process("s", move |ctx: NodeCtx| async move {
            loop {
                let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await else { continue };
                let Ping(n) = sim::decode(&payload);
                ctx.reply(reply_to, &Ping(n + 1));
                // Another crash point, disabled, does not fire.
                check(!sim::fault_point_crash(FaultPoint::CrashAfterReply, ctx), "a disabled point")
                    .map_err(sim::fail)
                    .ok();
                if sim::fault_point_crash(FaultPoint::CrashAfterVote, ctx) {
                    return;
                }
            }
        });
        let c = sim::client("c");
        check(c.call::<_, Ping>(s, &Ping(1)).await == Ok(Ping(2)), "the reply left before the crash")?;
        check(!sim::is_alive(s), "crashed right after replying")?;
        sim::sleep(Duration::from_millis(300)).await;
        check(sim::is_alive(s), "back within 200 ms")?;
        Ok(())
    });
    expect_pass(&r);
    assert!(r.marks.iter().any(|(m, n)| *m == FaultPoint::CrashAfterVote.mark() && *n == 1), "{:?}", r.marks);
}
