//! The checker on hand-made and deliberately broken histories, and the semantics of the
//! interleaving: budgets, stopping, order independence, threads.

mod common;

use checkers::formats::{jepsen_etcd::read_etcd_log, porcupine_kv::read_kv_log};
use checkers::linearizability::{
    check, check_parallel, check_until, partitions, CheckOptions, CheckResult, Event, History, Model, Operation,
    PartitionOutcome, UnknownReason, Verdict,
};
use checkers::models::cas_register::{CasInput, CasOutput, CasRegisterModel};
use checkers::models::kv::{KvInput, KvModel, KvOutput, KvState};

fn kv(ops: Vec<Operation<KvInput, KvOutput>>) -> History<KvInput, KvOutput> {
    History::new(ops).unwrap()
}

fn verdict(history: &History<KvInput, KvOutput>) -> CheckResult {
    check(&KvModel, history, &CheckOptions::default())
}

fn put(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Operation<KvInput, KvOutput> {
    Operation::new(c, KvInput::put(k, v), call, KvOutput::Ack, ret)
}

fn append(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Operation<KvInput, KvOutput> {
    Operation::new(c, KvInput::append(k, v), call, KvOutput::Ack, ret)
}

fn get(c: u64, k: &str, v: &str, call: u64, ret: u64) -> Operation<KvInput, KvOutput> {
    Operation::new(c, KvInput::get(k), call, KvOutput::value(v), ret)
}

#[test]
fn textbook_anomalies_are_refuted_and_pinned_on_the_right_operation() {
    // Stale read: the put finished before the get started.
    let stale = kv(vec![put(0, "k", "1", 0, 5), get(1, "k", "", 6, 8)]);
    let r = verdict(&stale);
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.failing_ops(), vec![1]);

    // A read of a value nobody wrote.
    let phantom = kv(vec![put(0, "k", "1", 0, 5), get(1, "k", "2", 1, 8)]);
    assert_eq!(verdict(&phantom).failing_ops(), vec![1]);

    // Reads going back in time: "1" then "" after the put was seen.
    let backwards = kv(vec![put(0, "k", "1", 0, 100), get(1, "k", "1", 10, 20), get(2, "k", "", 30, 40)]);
    assert_eq!(verdict(&backwards).failing_ops(), vec![2]);

    // A lost append: both appends acknowledged, only one visible afterwards.
    let lost = kv(vec![append(0, "k", "a", 0, 10), append(1, "k", "b", 0, 10), get(2, "k", "b", 20, 30)]);
    assert_eq!(verdict(&lost).verdict, Verdict::NotLinearizable);

    // A duplicated append (a retried RPC applied twice).
    let twice = kv(vec![append(0, "k", "a", 0, 10), get(1, "k", "aa", 20, 30)]);
    assert_eq!(verdict(&twice).failing_ops(), vec![1]);

    // Concurrent puts: either order is fine, but two readers must agree with one order.
    let split_brain = kv(vec![
        put(0, "k", "1", 0, 10),
        put(1, "k", "2", 0, 10),
        get(2, "k", "1", 20, 30),
        get(3, "k", "2", 31, 40),
        get(2, "k", "1", 41, 50),
    ]);
    let r = verdict(&split_brain);
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    // The longest story: put 2, put 1, read 1; then nothing lets the read of 2 happen.
    assert_eq!(r.failing_ops(), vec![3]);
}

#[test]
fn legal_concurrency_is_accepted() {
    // Overlapping put and get may see either value; closed intervals make touching
    // operations concurrent.
    for seen in ["", "1"] {
        assert!(verdict(&kv(vec![put(0, "k", "1", 0, 10), get(1, "k", seen, 10, 12)])).is_linearizable());
    }
    // Appends in the order they took effect, not the order they were called.
    let h = kv(vec![append(0, "k", "a", 0, 10), append(1, "k", "b", 1, 10), get(2, "k", "ba", 11, 12)]);
    let r = verdict(&h);
    assert!(r.is_linearizable());
    let PartitionOutcome::Linearizable { order } = &r.partitions[0].outcome else { panic!() };
    assert_eq!(order, &vec![1, 0, 2]);
    assert_eq!(r.witness(&h), Some(vec![1, 0, 2]));
    // A missing key reads as "".
    assert!(verdict(&kv(vec![get(0, "nothing", "", 0, 1)])).is_linearizable());
    // The empty history.
    let empty = verdict(&kv(vec![]));
    assert!(empty.is_linearizable() && empty.partitions.is_empty() && empty.steps == 0);
}

#[test]
fn unknown_outcomes_may_take_effect_late_or_not_at_all() {
    // The put's client gave up: the put may never have happened...
    let h = kv(vec![Operation::pending(0, KvInput::put("k", "1"), 0), get(1, "k", "", 5, 6)]);
    assert!(verdict(&h).is_linearizable());
    // ... or may have happened much later than its call...
    let h = kv(vec![
        Operation::pending(0, KvInput::put("k", "1"), 0),
        get(1, "k", "", 5, 6),
        get(1, "k", "1", 7, 8),
        get(1, "k", "1", 9, 10),
    ]);
    assert!(verdict(&h).is_linearizable());
    // ... but it happens at most once: it cannot be seen, unseen, then seen again.
    let h = kv(vec![Operation::pending(0, KvInput::put("k", "1"), 0), get(1, "k", "1", 5, 6), get(1, "k", "", 7, 8)]);
    assert_eq!(verdict(&h).failing_ops(), vec![2]);
    // A get whose reply was lost accepts any value, but still sits inside its interval.
    let h = kv(vec![Operation::unknown_result(1, KvInput::get("k"), 0, 1), put(0, "k", "x", 2, 3)]);
    assert!(verdict(&h).is_linearizable());
    // The compare-and-set register: an unknown cas takes effect exactly when it matches.
    let cas = |from, to| CasInput::Cas { from, to };
    let h = History::new(vec![
        Operation::new(0, CasInput::Write(1), 0, CasOutput::Write, 1),
        Operation::pending(1, cas(1, 2), 2),
        Operation::new(2, CasInput::Read, 3, CasOutput::Read(Some(2)), 4),
        Operation::new(2, CasInput::Read, 5, CasOutput::Read(Some(1)), 6),
    ])
    .unwrap();
    let r = check(&CasRegisterModel, &h, &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.failing_ops(), vec![3]);
}

#[test]
fn event_histories_check_like_operation_histories() {
    let events = vec![
        Event::Call { client: 0, id: 10, input: KvInput::put("k", "1") },
        Event::Call { client: 1, id: 11, input: KvInput::get("k") },
        Event::Return { id: 11, output: Some(KvOutput::value("1")) },
        Event::Return { id: 10, output: Some(KvOutput::Ack) },
        Event::Call { client: 1, id: 12, input: KvInput::get("k") },
        Event::Return { id: 12, output: Some(KvOutput::value("")) },
    ];
    let h = History::from_events(events).unwrap();
    assert_eq!(h.ops()[2], get(1, "k", "", 4, 5));
    let r = verdict(&h);
    assert_eq!(r.failing_ops(), vec![2]);
    let e = match &r.partitions[0].outcome {
        PartitionOutcome::NotLinearizable { explanation: Some(e) } => e,
        other => panic!("{other:?}"),
    };
    // The longest prefix: put, then the get of "1"; the get of "" cannot follow.
    assert_eq!(e.prefixes[0].order, vec![0, 1]);
    assert_eq!(e.prefixes[0].blocked, vec![2]);
    assert_eq!(r.partitions[0].longest_prefix_containing(1).map(|p| p.order.len()), Some(2));
    assert_eq!(r.partitions[0].longest_prefix_containing(2), None);
}

/// The key/value model with its partitions listed in reverse order.
struct Reversed;

impl Model for Reversed {
    type Input = KvInput;
    type Output = KvOutput;
    type State = KvState;
    fn init(&self) -> KvState {
        KvModel.init()
    }
    fn step(&self, s: &KvState, i: &KvInput, o: Option<&KvOutput>) -> Option<KvState> {
        KvModel.step(s, i, o)
    }
    fn partition(&self, h: &[Operation<KvInput, KvOutput>]) -> Option<Vec<Vec<usize>>> {
        KvModel.partition(h).map(|mut p| {
            p.reverse();
            p
        })
    }
    fn describe_operation(&self, i: &KvInput, o: Option<&KvOutput>) -> String {
        KvModel.describe_operation(i, o)
    }
    fn describe_state(&self, s: &KvState) -> String {
        KvModel.describe_state(s)
    }
}

/// One partition refutable in a handful of steps ("bad"), one that takes many ("hard":
/// many overlapping appends whose order a late read pins down only at the very end).
fn easy_bad_and_hard() -> History<KvInput, KvOutput> {
    let mut ops = vec![put(0, "bad", "1", 0, 1), get(1, "bad", "2", 2, 3)];
    let n = 7;
    let mut expected = String::new();
    for i in 0..n {
        ops.push(append(10 + i, "hard", &format!("<{i}>"), 0, 100));
        expected = format!("<{i}>{expected}");
    }
    ops.push(get(99, "hard", &expected, 200, 201));
    kv(ops)
}

#[test]
fn a_refutation_anywhere_wins_over_a_budget_running_out_elsewhere() {
    let h = easy_bad_and_hard();
    let full = check(&KvModel, &h, &CheckOptions::default());
    let hard = full.partitions.iter().find(|p| p.label == r#"key "hard""#).unwrap();
    assert!(matches!(hard.outcome, PartitionOutcome::Unfinished { .. }), "the check stopped at the first refutation");
    assert_eq!(full.verdict, Verdict::NotLinearizable);
    // The hard partition alone is linearizable, after many steps.
    let alone = check(&KvModel, &kv(hard.ops.iter().map(|&i| h.ops()[i].clone()).collect()), &CheckOptions::default());
    assert!(alone.is_linearizable());
    assert!(alone.steps > 10_000, "the hard partition takes {} steps", alone.steps);
    // The bad partition is refuted in 4 steps (try the put, try the get, backtrack, fail).
    let bad = check(&KvModel, &kv(h.ops()[..2].to_vec()), &CheckOptions::default());
    assert_eq!((bad.verdict, bad.steps), (Verdict::NotLinearizable, 4));
    for budget in [0, 1, 5, 7, 8, 9, 100, 5_000, 1_000_000] {
        for slice in [1, 3, 4, 10_000] {
            let options = CheckOptions { budget, slice, ..CheckOptions::default() };
            let a = check(&KvModel, &h, &options);
            let b = check(&Reversed, &h, &options);
            assert_eq!(a.verdict, b.verdict, "budget {budget}, slice {slice}: the partition order does not matter");
            assert!(a.steps <= budget && b.steps <= budget);
            // Two unfinished partitions share the budget equally, round by round, so twice
            // the bad partition's 4 steps suffice, in either order, whatever the slice.
            if budget >= 8 {
                assert_eq!(a.verdict, Verdict::NotLinearizable, "budget {budget}, slice {slice}");
            } else {
                assert_eq!(a.verdict, Verdict::Unknown, "budget {budget}, slice {slice}");
                assert_eq!(a.unknown_reason, Some(UnknownReason::BudgetExhausted));
            }
        }
    }
}

#[test]
fn budgets_and_stops_give_unknown_deterministically() {
    let h = easy_bad_and_hard();
    let hard = kv(h.ops()[2..].to_vec());
    let options = CheckOptions { budget: 1000, ..CheckOptions::default() };
    let a = check(&KvModel, &hard, &options);
    assert_eq!(a.verdict, Verdict::Unknown);
    assert_eq!(a.unknown_reason, Some(UnknownReason::BudgetExhausted));
    assert_eq!(a.steps, 1000);
    assert_eq!(a, check(&KvModel, &hard, &options), "same input, same result, same step counts");
    let calls = std::cell::Cell::new(0);
    let stopped = check_until(&KvModel, &hard, &CheckOptions { slice: 100, ..CheckOptions::default() }, &|| {
        calls.set(calls.get() + 1);
        calls.get() > 3
    });
    assert_eq!(stopped.verdict, Verdict::Unknown);
    assert_eq!(stopped.unknown_reason, Some(UnknownReason::Stopped));
    assert_eq!(stopped.steps, 300, "the stop function is polled once per round");
}

#[test]
fn threads_reach_the_same_verdicts() {
    let h = easy_bad_and_hard();
    for threads in [1, 2, 4] {
        let r = check_parallel(&KvModel, &h, &CheckOptions::default(), threads, &|| false);
        assert_eq!(r.verdict, Verdict::NotLinearizable, "{threads} threads");
        assert_eq!(r.failing_ops(), vec![1]);
        let hard = kv(h.ops()[2..].to_vec());
        let r = check_parallel(&KvModel, &hard, &CheckOptions::default(), threads, &|| false);
        assert!(r.is_linearizable());
        let r =
            check_parallel(&KvModel, &h, &CheckOptions { budget: 0, ..CheckOptions::default() }, threads, &|| false);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.unknown_reason, Some(UnknownReason::BudgetExhausted));
    }
}

#[test]
fn a_model_that_does_not_partition_properly_is_caught() {
    struct Overlapping;
    impl Model for Overlapping {
        type Input = KvInput;
        type Output = KvOutput;
        type State = KvState;
        fn init(&self) -> KvState {
            KvModel.init()
        }
        fn step(&self, s: &KvState, i: &KvInput, o: Option<&KvOutput>) -> Option<KvState> {
            KvModel.step(s, i, o)
        }
        fn partition(&self, h: &[Operation<KvInput, KvOutput>]) -> Option<Vec<Vec<usize>>> {
            Some(vec![(0..h.len()).collect(), vec![0]])
        }
        fn describe_operation(&self, i: &KvInput, o: Option<&KvOutput>) -> String {
            KvModel.describe_operation(i, o)
        }
        fn describe_state(&self, s: &KvState) -> String {
            KvModel.describe_state(s)
        }
    }
    let h = kv(vec![get(0, "k", "", 0, 1)]);
    let panic = std::panic::catch_unwind(|| partitions(&Overlapping, &h)).unwrap_err();
    assert!(panic.downcast_ref::<String>().unwrap().contains("named operation 0 twice"));
}

/// Real histories, made wrong on purpose: a checker that passes must be able to fail.
#[test]
fn corrupted_real_histories_are_refuted() {
    let Some(dir) = common::porcupine_dir() else { return };
    // c10-ok with one read changed to something never written.
    let good = read_kv_log(&dir.join("kv/c10-ok.txt")).unwrap();
    assert!(verdict(&good).is_linearizable());
    let mut ops = good.into_ops();
    let victim = ops.iter().rposition(|op| matches!(op.input, KvInput::Get { .. })).unwrap();
    if let Some(KvOutput::Value(v)) = &mut ops[victim].output {
        v.push_str("x 99 99 y");
    }
    let r = verdict(&kv(ops));
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.failing_ops(), vec![victim]);

    // c50-ok with the first read of key "0" that saw anything seeing one chunk too many.
    let good = read_kv_log(&dir.join("kv/c50-ok.txt")).unwrap();
    let mut ops = good.into_ops();
    let victim = ops
        .iter()
        .position(|op| matches!((&op.input, &op.output), (KvInput::Get { key }, Some(KvOutput::Value(v))) if key == "0" && !v.is_empty()))
        .unwrap();
    if let Some(KvOutput::Value(v)) = &mut ops[victim].output {
        v.push_str("x 99 99 y");
    }
    let r = verdict(&kv(ops));
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    // Other longest prefixes may get stuck elsewhere too, but never without the victim.
    let failing = r.failing_ops();
    assert!(failing.contains(&victim), "{victim} not in {failing:?}");
    let key0 = r.partitions.iter().find(|p| p.label == r#"key "0""#).unwrap();
    assert!(failing.iter().all(|f| key0.ops.contains(f)));

    // A linearizable etcd log with one read's value changed.
    let good = read_etcd_log(&dir.join("jepsen/etcd_002.log")).unwrap();
    assert!(check(&CasRegisterModel, &good, &CheckOptions::default()).is_linearizable());
    let mut ops = good.into_ops();
    let victim = ops.iter().position(|op| matches!(op.output, Some(CasOutput::Read(Some(_))))).unwrap();
    ops[victim].output = Some(CasOutput::Read(Some(1_000)));
    let r = check(&CasRegisterModel, &History::new(ops).unwrap(), &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.failing_ops(), vec![victim]);
}

#[test]
fn c50_bad_is_refuted_fast_whatever_the_partition_order() {
    let Some(dir) = common::porcupine_dir() else { return };
    let h = read_kv_log(&dir.join("kv/c50-bad.txt")).unwrap();
    for model_reversed in [false, true] {
        let r = if model_reversed {
            check(&Reversed, &h, &CheckOptions::default())
        } else {
            check(&KvModel, &h, &CheckOptions::default())
        };
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        // Six of its ten partitions refute within tens of thousands of steps each; four
        // need millions. Round-robin slices find a quick one first.
        assert!(r.steps < 200_000, "{} steps", r.steps);
    }
}

/// Issue 9's histories: one client's operations that touch at one instant. Closed intervals
/// alone make them concurrent; a history that declares its clients sequential orders them.
#[test]
fn sequential_clients_see_their_own_completed_writes() {
    let sequential = |ops| kv(ops).with_sequential_clients().unwrap();
    // append(k, x) during [10, 20], then the same client's get(k) -> "" during [20, 30].
    let own_append = vec![append(0, "k", "x", 10, 20), get(0, "k", "", 20, 30)];
    assert!(verdict(&kv(own_append.clone())).is_linearizable(), "concurrent without the declaration");
    let r = verdict(&sequential(own_append));
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.failing_ops(), vec![1]);
    // put(k, a) [0, 10], put(k, b) [10, 20], get(k) -> a [20, 30], all one client.
    let own_puts = vec![put(0, "k", "a", 0, 10), put(0, "k", "b", 10, 20), get(0, "k", "a", 20, 30)];
    assert!(verdict(&kv(own_puts.clone())).is_linearizable());
    let r = verdict(&sequential(own_puts));
    assert_eq!(r.verdict, Verdict::NotLinearizable);
    assert_eq!(r.failing_ops(), vec![2]);

    // The same with the first operation pending: a client that gave up on a call may see
    // it land later, so it constrains nothing.
    let pending_append = vec![Operation::pending(0, KvInput::append("k", "x"), 10), get(0, "k", "", 20, 30)];
    assert!(verdict(&sequential(pending_append)).is_linearizable());
    let pending_put =
        vec![Operation::pending(0, KvInput::put("k", "a"), 0), put(0, "k", "b", 10, 20), get(0, "k", "a", 20, 30)];
    let h = sequential(pending_put);
    let r = verdict(&h);
    assert!(r.is_linearizable());
    assert_eq!(r.witness(&h), Some(vec![1, 0, 2]), "the abandoned put lands after the later one");
    // A returned operation before a pending one still precedes everything after both.
    let h = sequential(vec![
        put(0, "k", "a", 0, 10),
        Operation::pending(0, KvInput::put("k", "b"), 10),
        get(0, "k", "", 20, 30),
    ]);
    assert_eq!(verdict(&h).failing_ops(), vec![2]);
}

#[test]
fn sequential_clients_are_validated_and_kept() {
    // A client that calls again before its previous call returned is not sequential.
    let err = kv(vec![append(3, "k", "x", 10, 20), get(3, "k", "", 15, 30)]).with_sequential_clients().unwrap_err();
    assert_eq!(err, checkers::linearizability::HistoryError::ClientOverlap { client: 3, first: 0, second: 1 });
    assert!(err.to_string().contains("client 3 is declared sequential"));
    let h = kv(vec![append(0, "k", "x", 10, 20), get(0, "k", "x", 20, 30), get(1, "k", "x", 20, 21)])
        .with_sequential_clients()
        .unwrap();
    assert!(h.sequential_clients());
    assert_eq!(h.client_predecessor(1), Some(0));
    assert_eq!(h.client_predecessor(2), None);
    assert!(h.precedes(0, 1), "same client, touching");
    assert!(!h.precedes(0, 2), "other client, touching: concurrent");
    // The declaration survives a round trip through JSON, and is validated on the way in.
    let json = serde_json::to_string(&h).unwrap();
    assert!(json.contains("\"sequential_clients\":true"));
    let back: History<KvInput, KvOutput> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, h);
    let overlapping = json.replace("\"call\":20", "\"call\":15");
    assert!(serde_json::from_str::<History<KvInput, KvOutput>>(&overlapping).is_err());
}

#[test]
fn client_order_across_partitions_that_cannot_be_merged_is_unknown() {
    // Client 0 reads b = 1 until 10, then writes a = 1 from 10; client 1 reads a = 1
    // until 10, then writes b = 1 from 10. Each key alone is linearizable (the write may
    // precede the touching read), but each read needs the other client's later write.
    let h =
        kv(vec![get(0, "b", "1", 0, 10), put(0, "a", "1", 10, 20), get(1, "a", "1", 0, 10), put(1, "b", "1", 10, 20)])
            .with_sequential_clients()
            .unwrap();
    let r = verdict(&h);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.unknown_reason, Some(UnknownReason::ClientOrderAcrossPartitions));
    assert!(r.partitions.iter().all(|p| matches!(p.outcome, PartitionOutcome::Linearizable { .. })));
    // Touching operations of one client on two keys, without a cycle: merged in order.
    let h = kv(vec![put(0, "a", "1", 0, 10), get(0, "b", "", 10, 20), put(1, "b", "2", 10, 30)])
        .with_sequential_clients()
        .unwrap();
    let r = verdict(&h);
    assert!(r.is_linearizable());
    let order = r.witness(&h).unwrap();
    let pos = |op| order.iter().position(|&o| o == op).unwrap();
    assert!(pos(0) < pos(1), "{order:?} keeps client 0's order");
}
