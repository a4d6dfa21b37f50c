//! One compare-and-set register, the model of the Jepsen etcd logs.
//!
//! The state is an integer or nil (never written), initially nil. A read is legal when it
//! returns the state; a write always succeeds and sets it; cas(A, B) succeeds exactly when
//! the state is A, and then sets it to B. With an unknown outcome any output is accepted,
//! and a cas still takes effect exactly when the state is A.

use serde::{Deserialize, Serialize};

use crate::linearizability::Model;

/// A register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CasInput {
    /// Read the value.
    Read,
    /// Set the value.
    Write(i64),
    /// Set the value to `to` if it is `from`.
    Cas {
        /// The value expected.
        from: i64,
        /// The value set when the expectation holds.
        to: i64,
    },
}

/// A register reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CasOutput {
    /// The value read (`None`: nil, never written).
    Read(Option<i64>),
    /// The write was acknowledged.
    Write,
    /// Whether the compare-and-set succeeded.
    Cas {
        /// True when the value was `from` and is now `to`.
        ok: bool,
    },
}

/// The compare-and-set register; the whole history is one partition.
#[derive(Clone, Copy, Debug, Default)]
pub struct CasRegisterModel;

fn show(v: Option<i64>) -> String {
    v.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

impl Model for CasRegisterModel {
    type Input = CasInput;
    type Output = CasOutput;
    type State = Option<i64>;

    fn init(&self) -> Option<i64> {
        None
    }

    fn is_read_only(&self, input: &CasInput) -> bool {
        matches!(input, CasInput::Read)
    }

    fn step(&self, state: &Option<i64>, input: &CasInput, output: Option<&CasOutput>) -> Option<Option<i64>> {
        match (*input, output) {
            (CasInput::Read, None) => Some(*state),
            (CasInput::Read, Some(&CasOutput::Read(v))) => (v == *state).then_some(*state),
            (CasInput::Write(v), None | Some(CasOutput::Write)) => Some(Some(v)),
            (CasInput::Cas { from, to }, output) => {
                let swaps = *state == Some(from);
                let next = if swaps { Some(to) } else { *state };
                match output {
                    None => Some(next),
                    Some(&CasOutput::Cas { ok }) => (ok == swaps).then_some(next),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }

    fn describe_operation(&self, input: &CasInput, output: Option<&CasOutput>) -> String {
        let call = match input {
            CasInput::Read => "read()".to_string(),
            CasInput::Write(v) => format!("write({v})"),
            CasInput::Cas { from, to } => format!("cas({from}, {to})"),
        };
        match output {
            None => format!("{call} -> ?"),
            Some(CasOutput::Read(v)) => format!("{call} -> {}", show(*v)),
            Some(CasOutput::Write) => call,
            Some(CasOutput::Cas { ok }) => format!("{call} -> {}", if *ok { "ok" } else { "fail" }),
        }
    }

    fn describe_state(&self, state: &Option<i64>) -> String {
        show(*state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_specification() {
        let m = CasRegisterModel;
        let read = |v| Some(CasOutput::Read(v));
        assert_eq!(m.step(&None, &CasInput::Read, read(None).as_ref()), Some(None));
        assert_eq!(m.step(&None, &CasInput::Read, read(Some(0)).as_ref()), None);
        assert_eq!(m.step(&Some(3), &CasInput::Read, None), Some(Some(3)));
        assert_eq!(m.step(&Some(3), &CasInput::Write(4), Some(&CasOutput::Write)), Some(Some(4)));
        let cas = CasInput::Cas { from: 3, to: 5 };
        assert_eq!(m.step(&Some(3), &cas, Some(&CasOutput::Cas { ok: true })), Some(Some(5)));
        assert_eq!(m.step(&Some(3), &cas, Some(&CasOutput::Cas { ok: false })), None);
        assert_eq!(m.step(&Some(2), &cas, Some(&CasOutput::Cas { ok: false })), Some(Some(2)));
        assert_eq!(m.step(&None, &cas, Some(&CasOutput::Cas { ok: true })), None);
        assert_eq!(m.step(&Some(3), &cas, None), Some(Some(5)));
        assert_eq!(m.step(&Some(1), &cas, None), Some(Some(1)));
        assert_eq!(m.step(&Some(1), &CasInput::Write(1), Some(&CasOutput::Cas { ok: true })), None);
        assert_eq!(m.describe_operation(&cas, Some(&CasOutput::Cas { ok: false })), "cas(3, 5) -> fail");
        assert_eq!(m.describe_operation(&CasInput::Read, read(None).as_ref()), "read() -> nil");
        assert_eq!(m.describe_operation(&CasInput::Write(2), None), "write(2) -> ?");
        assert_eq!(m.describe_state(&Some(7)), "7");
    }
}
