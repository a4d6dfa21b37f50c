//! Nondeterministic models through the power-set construction: a register whose writes may
//! be lost agrees with a brute-force search over every order and every choice.

use checkers::linearizability::{check, CheckOptions, History, NondeterministicModel, Operation, PowerSet, Verdict};
use proptest::prelude::*;

/// A register, initially 0, whose write either takes effect or is lost (an unreliable
/// cache, say); reads see the current value.
struct LossyRegister;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Write(u8),
    Read,
}

impl NondeterministicModel for LossyRegister {
    type Input = Op;
    type Output = u8;
    type State = u8;

    fn init(&self) -> Vec<u8> {
        vec![0]
    }

    fn step(&self, state: &u8, input: &Op, output: Option<&u8>) -> Vec<u8> {
        match (input, output) {
            (Op::Write(v), _) => vec![*v, *state],
            (Op::Read, None) => vec![*state],
            (Op::Read, Some(v)) if v == state => vec![*state],
            (Op::Read, Some(_)) => vec![],
        }
    }

    fn describe_operation(&self, input: &Op, output: Option<&u8>) -> String {
        format!("{input:?} -> {output:?}")
    }

    fn describe_state(&self, state: &u8) -> String {
        state.to_string()
    }
}

fn write(c: u64, v: u8, call: u64, ret: u64) -> Operation<Op, u8> {
    Operation::new(c, Op::Write(v), call, 0, ret)
}

fn read(c: u64, v: u8, call: u64, ret: u64) -> Operation<Op, u8> {
    Operation::new(c, Op::Read, call, v, ret)
}

fn verdict(ops: Vec<Operation<Op, u8>>) -> Verdict {
    check(&PowerSet(LossyRegister), &History::new(ops).unwrap(), &CheckOptions::default()).verdict
}

#[test]
fn a_lost_write_stays_lost_and_a_kept_one_stays_kept() {
    // The write may be lost, or kept.
    assert_eq!(verdict(vec![write(0, 1, 0, 10), read(1, 0, 11, 12)]), Verdict::Linearizable);
    assert_eq!(verdict(vec![write(0, 1, 0, 10), read(1, 1, 11, 12)]), Verdict::Linearizable);
    // But not both, one after the other: the choice is made once.
    assert_eq!(verdict(vec![write(0, 1, 0, 10), read(1, 1, 11, 12), read(1, 0, 13, 14)]), Verdict::NotLinearizable);
    assert_eq!(verdict(vec![write(0, 1, 0, 10), read(1, 0, 11, 12), read(1, 1, 13, 14)]), Verdict::NotLinearizable);
    // A value nobody wrote is never read.
    assert_eq!(verdict(vec![write(0, 1, 0, 10), read(1, 2, 11, 12)]), Verdict::NotLinearizable);
    // The page shows a set of states.
    let h = History::new(vec![write(0, 1, 0, 10)]).unwrap();
    let r = check(&PowerSet(LossyRegister), &h, &CheckOptions::default());
    let page = checkers::html::render(&PowerSet(LossyRegister), &h, &r, &[], &Default::default());
    assert!(page.contains(r#"{0, 1}"#) || page.contains(r#"{1, 0}"#), "the state after the write is a set");
}

/// Every order consistent with real time, and every choice of next state.
fn brute(ops: &[Operation<Op, u8>], placed: &mut Vec<usize>, state: u8) -> bool {
    if placed.len() == ops.len() {
        return true;
    }
    for i in 0..ops.len() {
        if placed.contains(&i) {
            continue;
        }
        let blocked =
            (0..ops.len()).any(|j| j != i && !placed.contains(&j) && ops[j].ret.is_some_and(|r| r < ops[i].call));
        if blocked {
            continue;
        }
        for next in LossyRegister.step(&state, &ops[i].input, ops[i].output.as_ref()) {
            placed.push(i);
            let found = brute(ops, placed, next);
            placed.pop();
            if found {
                return true;
            }
        }
    }
    false
}

fn ops() -> impl Strategy<Value = Vec<Operation<Op, u8>>> {
    let op = (0..3u64, 0..4u64, 0..4u64, any::<bool>(), 0..3u8, any::<bool>()).prop_map(
        |(client, start, length, is_write, value, pending)| {
            let input = if is_write { Op::Write(value) } else { Op::Read };
            if pending {
                Operation::pending(client, input, start)
            } else {
                Operation::new(client, input, start, value, start + length)
            }
        },
    );
    prop::collection::vec(op, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn power_set_agrees_with_brute_force(ops in ops()) {
        let expected = if brute(&ops, &mut Vec::new(), 0) { Verdict::Linearizable } else { Verdict::NotLinearizable };
        prop_assert_eq!(verdict(ops), expected);
    }
}
