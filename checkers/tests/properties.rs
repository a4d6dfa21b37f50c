//! Property tests: on small random histories the checker agrees with a brute-force search
//! over every order consistent with real time, its witnesses replay, its partial
//! linearizations are the true longest prefixes, and partitioning changes nothing.

use std::collections::BTreeMap;

use checkers::linearizability::{
    check, check_parallel, replay, CheckOptions, CheckResult, History, Model, Operation, PartitionOutcome,
    UnknownReason, Verdict,
};
use checkers::models::cas_register::{CasInput, CasOutput, CasRegisterModel};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use proptest::prelude::*;

/// The key/value store as one unpartitioned state machine over all keys, to compare the
/// partitioned model against.
struct WholeKv;

impl Model for WholeKv {
    type Input = KvInput;
    type Output = KvOutput;
    type State = BTreeMap<String, String>;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(&self, state: &Self::State, input: &KvInput, output: Option<&KvOutput>) -> Option<Self::State> {
        let current = state.get(input.key()).map(String::as_str).unwrap_or("");
        let mut next = state.clone();
        match (input, output) {
            (KvInput::Get { .. }, None) => {}
            (KvInput::Get { .. }, Some(KvOutput::Value(v))) if v == current => {}
            (KvInput::Put { key, value }, None | Some(KvOutput::Ack)) => {
                next.insert(key.clone(), value.clone());
            }
            (KvInput::Append { key, value }, None | Some(KvOutput::Ack)) => {
                next.insert(key.clone(), format!("{current}{value}"));
            }
            _ => return None,
        }
        Some(next)
    }

    fn describe_operation(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        format!("{input:?} {output:?}")
    }

    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// Every prefix consistent with real time (and sequential clients' orders) and the model,
/// by exhaustive search.
struct Brute<'a, M: Model> {
    model: &'a M,
    history: &'a History<M::Input, M::Output>,
    ops: &'a [Operation<M::Input, M::Output>],
    /// Per operation: an operation that must go before it (interchangeable operations in
    /// the order of their intervals), when `symmetric`.
    first: Vec<Option<usize>>,
    /// Per operation, the length of the longest legal prefix containing it.
    best: Vec<usize>,
    /// The length of the longest legal prefix.
    longest: usize,
    complete: bool,
}

impl<'a, M: Model> Brute<'a, M> {
    /// Every legal order.
    fn run(model: &'a M, history: &'a History<M::Input, M::Output>) -> Self {
        Self::explore(model, history, vec![None; history.len()])
    }

    /// Every legal order that takes interchangeable operations ([`Model::equivalent`]) in
    /// the order of their intervals, as the checker's search does: of two with
    /// `a.call <= b.call` and `a.ret <= b.ret`, `b` follows the nearest such `a` (restated
    /// here from the rule, not from the checker's code). Not for sequential clients.
    fn symmetric(model: &'a M, history: &'a History<M::Input, M::Output>) -> Self {
        let ops = history.ops();
        let end = |i: usize| ops[i].ret.unwrap_or(u64::MAX);
        let mut by_call: Vec<usize> = (0..ops.len()).collect();
        by_call.sort_by_key(|&i| (ops[i].call, end(i), i));
        let mut first = vec![None; ops.len()];
        if !history.sequential_clients() {
            for (k, &b) in by_call.iter().enumerate() {
                first[b] = by_call[..k].iter().rev().copied().find(|&a| {
                    end(a) <= end(b)
                        && model.equivalent(
                            &ops[a].input,
                            ops[a].output.as_ref(),
                            &ops[b].input,
                            ops[b].output.as_ref(),
                        )
                });
            }
        }
        Self::explore(model, history, first)
    }

    fn explore(model: &'a M, history: &'a History<M::Input, M::Output>, first: Vec<Option<usize>>) -> Self {
        let ops = history.ops();
        let mut b = Brute { model, history, ops, first, best: vec![0; ops.len()], longest: 0, complete: false };
        let mut order = Vec::new();
        b.dfs(&mut order, model.init());
        b
    }

    fn dfs(&mut self, order: &mut Vec<usize>, state: M::State) {
        for &i in order.iter() {
            self.best[i] = self.best[i].max(order.len());
        }
        self.longest = self.longest.max(order.len());
        if order.len() == self.ops.len() {
            self.complete = true;
            return;
        }
        for i in 0..self.ops.len() {
            if order.contains(&i) {
                continue;
            }
            // i may go next unless some other unplaced operation must precede it.
            let blocked = (0..self.ops.len()).any(|j| j != i && !order.contains(&j) && self.history.precedes(j, i))
                || self.first[i].is_some_and(|a| !order.contains(&a));
            if blocked {
                continue;
            }
            if let Some(next) = self.model.step(&state, &self.ops[i].input, self.ops[i].output.as_ref()) {
                order.push(i);
                self.dfs(order, next);
                order.pop();
            }
        }
    }
}

/// One generated operation before it is placed in time.
#[derive(Clone, Debug)]
struct Raw {
    client: u64,
    gap: u64,
    duration: u64,
    /// Where in its interval the operation takes effect, in percent.
    point: u64,
    /// 0..=3: 0 corrupts the output (when there is one to corrupt); 1 makes it pending; 2
    /// makes the result unknown; 3 leaves it alone. Weighted by the strategy.
    fate: u8,
    kind: u8,
    key: u8,
    value: u8,
}

/// A [`Raw`] from its fields in declaration order.
fn raw((client, gap, duration, point, fate, kind, key, value): (u64, u64, u64, u64, u8, u8, u8, u8)) -> Raw {
    Raw { client, gap, duration, point, fate, kind, key, value }
}

fn raw_ops() -> impl Strategy<Value = Vec<Raw>> {
    let fate = prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 6 => Just(3u8)];
    let one = (0..3u64, 0..3u64, 0..5u64, 0..=100u64, fate, 0..3u8, 0..2u8, 0..3u8).prop_map(raw);
    prop::collection::vec(one, 0..=10)
}

/// Places operations in time: each client's operations follow each other (the next call
/// one tick after the previous return, or at the very instant when `touching`); each takes
/// effect at a point within its interval; pending operations may take effect after the end
/// or never. Returns the operations sorted by linearization point, with the point and the
/// order they were issued in.
fn place<I, O>(raws: &[Raw], touching: bool, make: impl Fn(&Raw) -> I) -> Vec<(f64, Operation<I, O>, Raw, usize)> {
    let mut free_at: BTreeMap<u64, u64> = BTreeMap::new();
    let mut placed = Vec::new();
    let mut clock = 0;
    for (issued, raw) in raws.iter().enumerate() {
        clock += raw.gap;
        let start = clock.max(*free_at.get(&raw.client).unwrap_or(&0));
        let end = start + raw.duration;
        let point = start as f64 + raw.duration as f64 * raw.point as f64 / 100.0;
        let (ret, point) = if raw.fate == 1 {
            // Pending: the client gives up; the effect lands later (maybe after every
            // other operation), or never if the point is past 90%.
            (None, if raw.point > 90 { f64::INFINITY } else { point + 5.0 })
        } else {
            free_at.insert(raw.client, if touching { end } else { end + 1 });
            (Some(end), point)
        };
        placed.push((
            point,
            Operation { ret, ..Operation::pending(raw.client, make(raw), start) },
            raw.clone(),
            issued,
        ));
    }
    placed.sort_by(|a, b| a.0.total_cmp(&b.0));
    placed
}

fn kv_history(raws: &[Raw]) -> History<KvInput, KvOutput> {
    kv_history_placed(raws, false)
}

/// As [`kv_history`], with each client's next call at the instant its previous call
/// returned, and the clients declared sequential.
fn sequential_kv_history(raws: &[Raw]) -> History<KvInput, KvOutput> {
    kv_history_placed(raws, true).with_sequential_clients().expect("each client's calls follow each other")
}

fn kv_history_placed(raws: &[Raw], touching: bool) -> History<KvInput, KvOutput> {
    let values = ["x", "yz", ""];
    let placed = place(raws, touching, |r| {
        let key = ["a", "b"][r.key as usize].to_string();
        let value = values[r.value as usize].to_string();
        match r.kind {
            0 => KvInput::Get { key },
            1 => KvInput::Put { key, value },
            _ => KvInput::Append { key, value },
        }
    });
    // Per key: the current value and the one before it (a stale read's favourite).
    let mut store: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut ops = Vec::new();
    for (point, mut op, raw, issued) in placed {
        let fate = raw.fate;
        let (current, previous) = store.get(op.input.key()).cloned().unwrap_or_default();
        let mut set = |key: &str, value: String| {
            if point.is_finite() {
                store.insert(key.to_string(), (value, current.clone()));
            }
        };
        let output = match &op.input {
            // Corrupted: a value never written, or a stale one.
            KvInput::Get { .. } if fate == 0 && raw.value == 0 => KvOutput::value(format!("{current}x")),
            KvInput::Get { .. } if fate == 0 => KvOutput::value(previous),
            KvInput::Get { .. } => KvOutput::value(current.clone()),
            KvInput::Put { key, value } => {
                set(key, value.clone());
                KvOutput::Ack
            }
            KvInput::Append { key, value } => {
                set(key, format!("{current}{value}"));
                KvOutput::Ack
            }
        };
        if op.ret.is_some() && fate != 2 {
            op.output = Some(output);
        }
        ops.push((issued, op));
    }
    // Operations in call order, as a recorder would list them (a client's calls at one
    // instant in the order it made them).
    ops.sort_by_key(|(issued, op)| (op.call, *issued));
    let ops = ops.into_iter().map(|(_, op)| op).collect();
    History::new(ops).expect("generated histories are well formed")
}

fn cas_history(raws: &[Raw]) -> History<CasInput, CasOutput> {
    let placed = place(raws, false, |r| match r.kind {
        0 => CasInput::Read,
        1 => CasInput::Write(i64::from(r.value)),
        _ => CasInput::Cas { from: i64::from(r.value), to: i64::from(r.key) + 1 },
    });
    let mut register = None;
    let mut ops = Vec::new();
    for (point, mut op, raw, _) in placed {
        let fate = raw.fate;
        let output = match op.input {
            CasInput::Read if fate == 0 => CasOutput::Read(Some(register.unwrap_or(0) + 1)),
            CasInput::Read => CasOutput::Read(register),
            CasInput::Write(v) => {
                if point.is_finite() {
                    register = Some(v);
                }
                CasOutput::Write
            }
            CasInput::Cas { from, to } => {
                let ok = register == Some(from);
                if ok && point.is_finite() {
                    register = Some(to);
                }
                // A corrupted cas reports the opposite outcome.
                CasOutput::Cas { ok: ok != (fate == 0) }
            }
        };
        if op.ret.is_some() && fate != 2 {
            op.output = Some(output);
        }
        ops.push(op);
    }
    ops.sort_by_key(|op| op.call);
    History::new(ops).expect("generated histories are well formed")
}

fn expected(brute_complete: bool) -> Verdict {
    if brute_complete {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    }
}

/// Checks the evidence of a result against brute force on each partition.
fn assert_evidence<M: Model<Input: Clone, Output: Clone>>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult,
) {
    for part in &result.partitions {
        let sub = restrict(history, &part.ops);
        let brute = Brute::run(model, &sub);
        // The checker's prefixes keep interchangeable operations in order: per operation it
        // reports the longest such prefix, which is as long as the longest of all.
        let canonical = Brute::symmetric(model, &sub);
        assert_eq!(canonical.complete, brute.complete, "the symmetry reduction keeps every verdict");
        assert_eq!(canonical.longest, brute.longest, "and the longest prefix's length");
        match &part.outcome {
            PartitionOutcome::Linearizable { order } => {
                assert!(brute.complete, "partition {} witness where brute force finds none", part.label);
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, part.ops, "a witness orders exactly the partition's operations");
                replay(model, history, order).expect("witness replays through the model in real-time order");
            }
            PartitionOutcome::NotLinearizable { explanation } => {
                assert!(!brute.complete, "partition {} refuted where brute force linearizes", part.label);
                let e = explanation.as_ref().expect("explained");
                assert_eq!(e.prefixes[0].order.len(), brute.longest, "the longest prefix");
                for (k, &op) in part.ops.iter().enumerate() {
                    let len = e.longest[k].map_or(0, |i| e.prefixes[i].order.len());
                    assert_eq!(len, canonical.best[k], "longest prefix containing operation {op}");
                    if let Some(i) = e.longest[k] {
                        assert!(e.prefixes[i].order.contains(&op));
                    }
                }
                for p in &e.prefixes {
                    replay(model, history, &p.order).expect("a partial linearization replays");
                    assert!(!p.blocked.is_empty());
                    for &b in &p.blocked {
                        assert!(!p.order.contains(&b) && part.ops.contains(&b));
                    }
                }
                assert!(!e.failing_ops().is_empty());
            }
            PartitionOutcome::Unfinished { .. } => {
                assert_eq!(result.verdict, Verdict::NotLinearizable, "only a refutation elsewhere leaves work undone");
            }
        }
    }
}

/// The operations `ops` of `history` as a history of their own (sequential clients stay
/// sequential: a client's order restricted to some of its operations is still its order).
fn restrict<I: Clone, O: Clone>(history: &History<I, O>, ops: &[usize]) -> History<I, O> {
    let sub = History::new(ops.iter().map(|&i| history.ops()[i].clone()).collect()).unwrap();
    if history.sequential_clients() {
        sub.with_sequential_clients().unwrap()
    } else {
        sub
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn kv_agrees_with_brute_force(raws in raw_ops()) {
        let history = kv_history(&raws);
        let truth = Brute::run(&WholeKv, &history);
        let options = CheckOptions { slice: 3, ..CheckOptions::default() };
        let result = check(&KvModel, &history, &options);
        prop_assert_eq!(result.verdict, expected(truth.complete));
        assert_evidence(&KvModel, &history, &result);
        // The unpartitioned model agrees, and so does checking each partition alone.
        let whole = check(&WholeKv, &history, &options);
        prop_assert_eq!(whole.verdict, result.verdict);
        assert_evidence(&WholeKv, &history, &whole);
        let all_parts = result.partitions.iter().all(|p| {
            check(&KvModel, &restrict(&history, &p.ops), &options).verdict == Verdict::Linearizable
        });
        prop_assert_eq!(all_parts, truth.complete);
        // The merged witness is a linearization of the whole history.
        if let Some(order) = result.witness(&history) {
            prop_assert_eq!(order.len(), history.len());
            replay(&WholeKv, &history, &order).expect("merged witness replays");
        }
        // Deterministic, and independent of the slice size.
        prop_assert_eq!(&check(&KvModel, &history, &options), &result);
        let one = check(&KvModel, &history, &CheckOptions { slice: 1, ..CheckOptions::default() });
        prop_assert_eq!(one.verdict, result.verdict);
        let parallel = check_parallel(&KvModel, &history, &options, 2, &|| false);
        prop_assert_eq!(parallel.verdict, result.verdict);
    }

    #[test]
    fn cas_register_agrees_with_brute_force(raws in raw_ops()) {
        let history = cas_history(&raws);
        let truth = Brute::run(&CasRegisterModel, &history);
        let result = check(&CasRegisterModel, &history, &CheckOptions::default());
        prop_assert_eq!(result.verdict, expected(truth.complete));
        assert_evidence(&CasRegisterModel, &history, &result);
        if let Some(order) = result.witness(&history) {
            replay(&CasRegisterModel, &history, &order).expect("witness replays");
        }
    }

    #[test]
    fn sequential_clients_agree_with_brute_force(raws in raw_ops()) {
        let history = sequential_kv_history(&raws);
        let truth = expected(Brute::run(&WholeKv, &history).complete);
        let options = CheckOptions { slice: 3, ..CheckOptions::default() };
        // The unpartitioned model sees every constraint at once: it is exact.
        let whole = check(&WholeKv, &history, &options);
        prop_assert_eq!(whole.verdict, truth);
        assert_evidence(&WholeKv, &history, &whole);
        if let Some(order) = whole.witness(&history) {
            replay(&WholeKv, &history, &order).expect("witness keeps every client's order");
        }
        // Partitioned by key: exact, except that a client's order tying the keys into a
        // cycle at one instant leaves it undecided (never wrong).
        let result = check(&KvModel, &history, &options);
        if result.verdict == Verdict::Unknown {
            prop_assert_eq!(result.unknown_reason, Some(UnknownReason::ClientOrderAcrossPartitions));
        } else {
            prop_assert_eq!(result.verdict, truth);
            assert_evidence(&KvModel, &history, &result);
        }
        if let Some(order) = result.witness(&history) {
            replay(&WholeKv, &history, &order).expect("merged witness keeps every client's order");
        }
    }

    #[test]
    fn a_budget_never_makes_a_verdict_wrong(raws in raw_ops(), budget in 0..60u64, slice in 1..8u64) {
        let history = kv_history(&raws);
        let truth = expected(Brute::run(&WholeKv, &history).complete);
        let result = check(&KvModel, &history, &CheckOptions { budget, slice, ..CheckOptions::default() });
        prop_assert!(result.steps <= budget, "{} steps over a budget of {budget}", result.steps);
        if history.is_empty() {
            prop_assert_eq!(result.verdict, Verdict::Linearizable);
        } else if result.verdict == Verdict::Unknown {
            prop_assert!(result.unknown_reason.is_some());
        } else {
            prop_assert_eq!(result.verdict, truth);
            assert_evidence(&KvModel, &history, &result);
        }
    }
}

/// A refuted history in which operation 7 (a successful cas) is interchangeable with the
/// concurrent operation 4 and with operation 6, which returned before 7 was called. The
/// longest linearizable prefix holding 7 leaves 4 out (found by the property above; the
/// search had tied 7 to 4, skipping 6, and reported no prefix holding 7).
#[test]
fn an_operation_whose_nearest_twin_precedes_it_keeps_its_longest_prefix() {
    let raws = [
        raw((1, 0, 4, 0, 2, 0, 0, 0)),
        raw((2, 1, 0, 0, 0, 1, 0, 0)),
        raw((1, 2, 2, 0, 2, 0, 0, 0)),
        raw((0, 2, 4, 0, 2, 0, 0, 0)),
        raw((0, 1, 0, 0, 3, 2, 0, 0)),
        raw((1, 0, 2, 27, 2, 1, 0, 0)),
        raw((2, 1, 4, 0, 3, 2, 0, 0)),
        raw((0, 0, 0, 0, 0, 2, 0, 0)),
    ];
    let history = cas_history(&raws);
    let result = check(&CasRegisterModel, &history, &CheckOptions::default());
    assert_eq!(result.verdict, Verdict::NotLinearizable);
    let PartitionOutcome::NotLinearizable { explanation: Some(e) } = &result.partitions[0].outcome else {
        panic!("one refuted, explained partition");
    };
    let holding_7 = &e.prefixes[e.longest[7].expect("a prefix holds operation 7")];
    assert_eq!(holding_7.order.len(), 7);
    assert!(holding_7.order.contains(&7) && !holding_7.order.contains(&4));
    assert_evidence(&CasRegisterModel, &history, &result);
}
