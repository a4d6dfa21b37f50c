//! The determinism check: run one (scenario, seed) twice with full traces and name the
//! first event at which the two executions differ.

use crate::registry::{run_scenario, Opts, Scenario};
use sim::{CapturedEvent, FailureClass, RunReport, TraceMode};

/// The first event at which two executions of one seed differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Index of the event in the trace (0-based).
    pub index: usize,
    pub first: String,
    pub second: String,
}

/// Runs a seed twice with full traces and finds the first differing event.
pub fn compare_twice(sc: &Scenario, seed: u64, opts: &Opts) -> Option<Difference> {
    compare_twice_judged(sc, seed, opts).0
}

/// [`compare_twice`], with the first execution's failure class (`None`: it passed), so the
/// command can say how many of the runs it compared failed.
pub fn compare_twice_judged(sc: &Scenario, seed: u64, opts: &Opts) -> (Option<Difference>, Option<FailureClass>) {
    let a = run_scenario(sc, seed, opts, TraceMode::Capture, None);
    let b = run_scenario(sc, seed, opts, TraceMode::Capture, None);
    (first_difference(&a, &b), a.outcome.class())
}

/// Compares two captured runs event by event (by the hash of each event's structured
/// fields, which include message contents), then by outcome.
pub fn first_difference(a: &RunReport, b: &RunReport) -> Option<Difference> {
    let n = a.captured.len().max(b.captured.len());
    let show =
        |e: Option<&CapturedEvent>| e.map(|e| e.line.clone()).unwrap_or_else(|| "<no event: the run ended>".into());
    for i in 0..n {
        let (x, y) = (a.captured.get(i), b.captured.get(i));
        if x.map(|e| e.hash) != y.map(|e| e.hash) {
            return Some(Difference { index: i, first: show(x), second: show(y) });
        }
    }
    if a.trace_hash != b.trace_hash || a.outcome != b.outcome {
        return Some(Difference {
            index: n,
            first: format!("outcome {}", a.outcome),
            second: format!("outcome {}", b.outcome),
        });
    }
    None
}
