//! Tests of the old course harness's network mode (`sim::net::old`): fast failures, the
//! two-draw loss at an unreliable receiver, deaf nodes, atomic partitions, connections that
//! outlive link changes, and the serial delaying proxy.

use serde::{Deserialize, Serialize};
use sim::net::{self, old};
use sim::{Failure, Incoming, NodeCtx, NodeId, RunConfig, RunReport};
use std::time::Duration;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Ping(u64);

/// `Ping(RELAY + k)` asks a server to call node `k` and answer 1 (success) or 0 (failure).
const RELAY: u64 = 1 << 32;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run<F, Fut>(seed: u64, f: F) -> RunReport
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), Failure>> + 'static,
{
    sim::run(RunConfig::new(seed, Duration::from_secs(10_000)), f)
}

fn expect_pass(r: &RunReport) {
    assert!(r.outcome.is_pass(), "expected pass, got {}", r.outcome);
}

/// Equal up to the few microseconds madsim's task switches take.
fn near(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) < Duration::from_micros(50)
}

fn check(cond: bool, what: &str) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::safety("test", what))
    }
}

/// Answers `Ping(n)` with `Ping(n + 1)` after `handler_ms`, or relays (see [`RELAY`]).
fn server(name: &str, handler_ms: u64) -> NodeId {
    sim::spawn_process(name, move |ctx: NodeCtx| async move {
        loop {
            let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await else { continue };
            let Ping(n) = sim::decode(&payload);
            sim::spawn(async move {
                if n >= RELAY {
                    let ok = ctx.call::<_, Ping>(NodeId((n - RELAY) as u16), &Ping(0)).await.is_ok();
                    ctx.reply(reply_to, &Ping(ok as u64));
                    return;
                }
                if handler_ms > 0 {
                    sim::sleep(ms(handler_ms)).await;
                }
                ctx.reply(reply_to, &Ping(n + 1));
            });
        }
    })
}

/// Asks `via` to call `to`: whether that inner call succeeded (`None` if `via` failed).
async fn relay(c: NodeCtx, via: NodeId, to: NodeId) -> Option<bool> {
    c.call::<_, Ping>(via, &Ping(RELAY + to.0 as u64)).await.ok().map(|p| p == Ping(1))
}

#[test]
fn unreliable_receiver_loses_ten_percent_of_requests_and_eighteen_of_replies_at_once() {
    let r = run(11, || async {
        old::set_old_mode(true);
        let s = server("s", 0);
        let t = server("t", 0);
        let c = sim::client("c");
        old::set_unreliable(s, true);
        let n = 5000u64;
        let mut ok = 0u64;
        for i in 0..n {
            let t0 = sim::now();
            let r = c.call::<_, Ping>(s, &Ping(i)).await;
            let took = sim::now() - t0;
            match r {
                Ok(p) => {
                    ok += 1;
                    check(p == Ping(i + 1), "reply")?;
                    check(near(took, Duration::ZERO), "a served call adds no delay")?;
                }
                Err(_) => {
                    check(near(took, ms(old::FAIL_FAST_MS)), &format!("a failure returns at once, took {took:?}"))?
                }
            }
        }
        // 0.9 * 0.8 = 72 % succeed; the handler ran for the 90 % not closed unread.
        let frac = ok as f64 / n as f64;
        check((0.70..0.74).contains(&frac), &format!("success fraction {frac}"))?;
        let handled = net::rpc_count(s) as f64 / n as f64;
        check((0.88..0.92).contains(&handled), &format!("handled fraction {handled}"))?;
        // Only the flagged receiver is unreliable: calls to t, and s's own calls out to t
        // (when s got the request and its reply survived), all succeed.
        for i in 0..200 {
            check(c.call::<_, Ping>(t, &Ping(i)).await.is_ok(), "call to a reliable node")?;
            if let Some(inner) = relay(c, s, t).await {
                check(inner, "an unreliable node's calls out are reliable")?;
            }
        }
        old::set_unreliable(s, false);
        for i in 0..200 {
            check(c.call::<_, Ping>(s, &Ping(i)).await.is_ok(), "reliable again")?;
        }
        Ok(())
    });
    expect_pass(&r);
}

#[test]
fn deaf_node_is_unreachable_even_to_itself_but_its_calls_and_replies_go_through() {
    let r = run(12, || async {
        old::set_old_mode(true);
        let t = server("t", 50);
        let s = server("s", 0);
        let c = sim::client("c");
        check(relay(c, s, s).await == Some(true), "a hearing node reaches itself")?;
        old::set_deaf(s, true);
        let t0 = sim::now();
        check(c.call::<_, Ping>(s, &Ping(1)).await.is_err(), "a deaf node cannot be reached")?;
        check(near(sim::now() - t0, ms(old::FAIL_FAST_MS)), "and the failure returns at once")?;
        check(net::link_up(c.id(), s), "deafness is not a link")?;
        old::set_deaf(s, false);
        // s turns deaf while it waits on t's 50 ms handler: the established calls c -> s and
        // s -> t both complete.
        sim::at(sim::now() + ms(10), move || old::set_deaf(s, true));
        let before = net::rpc_count(s);
        let r: Result<Ping, _> = c.call(s, &Ping(RELAY + t.0 as u64)).await;
        check(r == Ok(Ping(1)), &format!("established calls survive deafness: {r:?}"))?;
        check(net::rpc_count(s) == before + 1, "one request reached s")?;
        // And a deaf node dialing itself fails: undeafen, ask s to call itself, deafen in
        // between by going through t's delay.
        old::set_deaf(s, false);
        sim::at(sim::now() + ms(1), move || old::set_deaf(s, true));
        let r: Result<Ping, _> = c.call(t, &Ping(7)).await; // 50 ms, s deaf by then
        check(r == Ok(Ping(8)), "t answers")?;
        check(c.call::<_, Ping>(s, &Ping(RELAY + s.0 as u64)).await.is_err(), "still deaf")
    });
    expect_pass(&r);
}

#[test]
fn part_rebuilds_reachability_among_servers_and_established_calls_survive() {
    let r = run(14, || async {
        old::set_old_mode(true);
        let s: Vec<NodeId> = (0..5).map(|i| server(&format!("s{i}"), 200)).collect();
        let c = sim::client("c");
        old::part(&s, &[&[s[0], s[2]], &[s[1], s[3]]]);
        let group = |i: usize| match i {
            0 | 2 => Some(0),
            1 | 3 => Some(1),
            _ => None,
        };
        for i in 0..5 {
            for j in 0..5 {
                let want = group(i).is_some() && group(i) == group(j);
                check(net::link_up(s[i], s[j]) == want, &format!("link s{i}->s{j} should be {want}"))?;
            }
            check(net::link_up(c.id(), s[i]) && net::link_up(s[i], c.id()), "clients are never partitioned")?;
        }
        check(relay(c, s[0], s[1]).await == Some(false), "no call across groups")?;
        check(relay(c, s[4], s[4]).await == Some(false), "an isolated server cannot reach itself")?;
        // s0 -> s2 is dialed inside the group, then the partition moves under it (200 ms
        // handler): the connection survives.
        sim::at(sim::now() + ms(50), {
            let s = s.clone();
            move || old::part(&s, &[&[s[0]], &[s[2]]])
        });
        let t0 = sim::now();
        check(relay(c, s[0], s[2]).await == Some(true), "an established call survives a partition")?;
        check(near(sim::now() - t0, ms(200)), "after its handler")?;
        old::part(&s, &[&s[..]]);
        check((0..5).all(|i| (0..5).all(|j| net::link_up(s[i], s[j]))), "one group heals all")?;
        old::part(&s, &[]);
        check((0..5).all(|i| (0..5).all(|j| !net::link_up(s[i], s[j]))), "no group isolates all")
    });
    expect_pass(&r);
}

#[test]
fn a_crash_fails_the_calls_it_was_handling_at_once() {
    let r = run(15, || async {
        old::set_old_mode(true);
        let s = server("s", 10_000);
        let c = sim::client("c");
        let t0 = sim::now();
        sim::at(t0 + ms(250), move || sim::crash(s));
        check(c.call::<_, Ping>(s, &Ping(1)).await.is_err(), "call fails")?;
        check(near(sim::now() - t0, ms(250 + old::FAIL_FAST_MS)), "right after the crash")?;
        let t1 = sim::now();
        check(c.call::<_, Ping>(s, &Ping(1)).await.is_err(), "a dead server is unreachable")?;
        check(near(sim::now() - t1, ms(old::FAIL_FAST_MS)), "at once")
    });
    expect_pass(&r);
}

#[test]
fn the_proxy_delays_each_call_and_takes_one_at_a_time() {
    let r = run(16, || async {
        old::set_old_mode(true);
        let s = server("s", 0);
        let c1 = sim::client("c1");
        let c2 = sim::client("c2");
        old::set_proxy_delay(s, Duration::ZERO);
        let t0 = sim::now();
        check(c1.call::<_, Ping>(s, &Ping(1)).await.is_ok() && near(sim::now(), t0), "delay 0 passes at once")?;
        old::set_proxy_delay(s, Duration::from_secs(4));
        let first = sim::spawn(async move { c1.call::<_, Ping>(s, &Ping(1)).await.map(|_| sim::now() - t0) });
        let second = c2.call::<_, Ping>(s, &Ping(2)).await.map(|_| sim::now() - t0);
        let first = first.await.expect("task");
        // Whichever reaches the proxy first takes 4 s, the other queues behind it: 8 s.
        let (a, b) = (first.expect("first call"), second.expect("second call"));
        let (a, b) = (a.min(b), a.max(b));
        check(near(a, Duration::from_secs(4)) && near(b, Duration::from_secs(8)), &format!("{a:?} and {b:?}"))
    });
    expect_pass(&r);
}

#[test]
fn old_mode_off_keeps_labrpc_semantics() {
    // The switches are inert until the mode is on: a call to a node flagged unreliable
    // always gets through on labrpc's reliable network.
    let r = run(17, || async {
        let s = server("s", 0);
        let c = sim::client("c");
        old::set_unreliable(s, true);
        for i in 0..300 {
            check(c.call::<_, Ping>(s, &Ping(i)).await.is_ok(), "labrpc reliable network")?;
        }
        check(!old::old_mode(), "off by default")
    });
    expect_pass(&r);
}
