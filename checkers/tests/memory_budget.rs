//! The memory budget: a history whose search explodes ends `unknown` within the budget,
//! deterministically, with its peak memory measured in a child process of its own.

use checkers::linearizability::{check, CheckOptions, History, Operation, UnknownReason, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};

/// Set in the child's environment: the child runs the check and prints its measurements.
const CHILD: &str = "SIMLAB_MEMORY_BUDGET_CHILD";

const BUDGET: usize = 48 << 20;

/// Sixteen overlapping appends to one key that only a final read orders, in the reverse of
/// the order the search tries first: every order of every subset is a distinct value, so
/// the search keeps new configurations until something stops it.
fn explosive() -> History<KvInput, KvOutput> {
    let n = 16;
    let mut ops = Vec::new();
    let mut expected = String::new();
    for i in 0..n {
        ops.push(Operation::new(i, KvInput::append("k", format!("<{i}>")), 0, KvOutput::Ack, 100));
        expected = format!("<{i}>{expected}");
    }
    // One value short of the reverse order: no order gives it, so nothing ends the search
    // early.
    expected.push('!');
    ops.push(Operation::new(99, KvInput::get("k"), 200, KvOutput::value(expected), 201));
    History::new(ops).unwrap()
}

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .expect("the field is there")
}

#[test]
fn an_explosive_history_ends_unknown_within_the_memory_budget() {
    let options = CheckOptions { budget: u64::MAX, memory_limit: BUDGET, ..CheckOptions::default() };
    // The child: one check, then what it cost.
    #[allow(clippy::disallowed_methods)] // allow-entropy: a test's own switch, outside any check
    if std::env::var_os(CHILD).is_some() {
        let history = explosive();
        let before = status_kb("VmRSS");
        let r = check(&KvModel, &history, &options);
        let peak = status_kb("VmHWM");
        let held: usize = r.partitions.iter().map(|p| p.stats.bytes).sum();
        println!("RESULT {} {:?} {} {held} {before} {peak}", r.verdict, r.unknown_reason, r.steps);
        return;
    }
    let run = || {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", "an_explosive_history_ends_unknown_within_the_memory_budget", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "the child failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("RESULT ")).unwrap_or_else(|| panic!("no result in {text}"));
        line.split_whitespace().skip(1).map(str::to_string).collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first[0], "unknown");
    assert_eq!(first[1], format!("{:?}", Some(UnknownReason::MemoryExhausted)));
    let held: usize = first[3].parse().unwrap();
    assert!(held <= BUDGET, "the searches held {held} bytes, over the budget of {BUDGET}");
    assert!(held > BUDGET / 2, "the search went on until the budget ({held} of {BUDGET} bytes)");
    let (before_kb, peak_kb): (u64, u64) = (first[4].parse().unwrap(), first[5].parse().unwrap());
    let added = (peak_kb.saturating_sub(before_kb) << 10) as usize;
    // The allocator's own overhead comes on top of what the search counts.
    assert!(added <= BUDGET + BUDGET / 4, "the process grew by {added} bytes checking, for a budget of {BUDGET}");
    // Deterministic: the same verdict after the same number of steps.
    let second = run();
    assert_eq!(first[..4], second[..4]);
    let steps: u64 = first[2].parse().unwrap();
    assert!(steps > 100_000, "the search ran a while first: {steps} steps");
    // Without the budget's help, a step budget alone would have let it run far longer.
    let small = check(&KvModel, &explosive(), &CheckOptions { budget: 1_000, ..CheckOptions::default() });
    assert_eq!((small.verdict, small.unknown_reason), (Verdict::Unknown, Some(UnknownReason::BudgetExhausted)));
}
