//! The determinism check catches a run whose timing is identical across executions but
//! whose message contents differ, and finds no difference in a deterministic scenario.

use scenarios::determinism::{compare_twice, first_difference};
use scenarios::{registry, Opts, Scenario};
use sim::{Incoming, NodeId, TraceMode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Process-global state leaks into a message: every execution sends a different value,
/// always 8 bytes long, at the same simulated times.
static LEAK: AtomicU64 = AtomicU64::new(0);

async fn leaky(_: Opts) -> Result<(), sim::Failure> {
    let server = sim::spawn_process("server", |ctx| async move {
        loop {
            if let Some(Incoming::Request { reply_to, .. }) = ctx.recv().await {
                ctx.reply(reply_to, &());
            }
        }
    });
    let client = sim::client("client");
    for i in 0..5u64 {
        sim::sleep(Duration::from_millis(10)).await;
        let value = if i == 3 { LEAK.fetch_add(1, Ordering::Relaxed) } else { 0 };
        let _ = client.call::<_, ()>(server, &value.to_le_bytes()).await;
    }
    let _ = NodeId(0);
    Ok(())
}

fn leaky_scenario() -> Scenario {
    Scenario::new("test::leaky", "message content depends on process state", Duration::from_secs(10), |o| {
        Box::pin(leaky(o))
    })
}

#[test]
fn catches_a_difference_in_message_content_alone() {
    let sc = leaky_scenario();
    let a = registry::run_scenario(&sc, 1, &Opts::default(), TraceMode::Capture, None);
    let b = registry::run_scenario(&sc, 1, &Opts::default(), TraceMode::Capture, None);
    assert_eq!(a.captured.len(), b.captured.len(), "same number of events");
    assert_eq!(a.sim_time, b.sim_time, "identical timing");
    let d = first_difference(&a, &b).expect("the check must see the content difference");
    assert!(
        d.first.contains("send") && d.first.contains("req"),
        "first differing event is the leaky send: {}",
        d.first
    );
    assert_ne!(d.first, d.second);
    // Only the payload hash differs on that line.
    let strip = |l: &str| l.rsplit_once(" h=").map(|(a, _)| a.to_string()).unwrap();
    assert_eq!(strip(&d.first), strip(&d.second));
    assert_ne!(a.trace_hash, b.trace_hash);
}

#[test]
fn finds_no_difference_in_a_deterministic_scenario() {
    let sc = registry::select("mapreduce::crash").unwrap()[0];
    assert_eq!(compare_twice(&sc, 5, &Opts::default()), None);
}
