//! Jepsen etcd logs: one compare-and-set register, one event per line.
//!
//! `INFO  jepsen.util - <process> <:type> <:f> <value>`, fields separated by any
//! whitespace. `:invoke` calls; `:ok` returns with the value; `:fail :cas` returns a cas
//! that did not swap; `:fail :read :timed-out` returns a read whose value is unknown;
//! `:info` leaves the call pending for ever (its outcome is unknown and the process is
//! never reused). Blank lines are skipped.

use std::collections::BTreeMap;
use std::path::Path;

use super::{read, ParseError};
use crate::linearizability::{History, Operation};
use crate::models::cas_register::{CasInput, CasOutput};

/// A parsed etcd history.
pub type EtcdHistory = History<CasInput, CasOutput>;

/// Reads and parses a Jepsen etcd log.
///
/// # Errors
/// A [`ParseError`] with line 0 when the file cannot be read, else as [`parse_etcd_log`].
pub fn read_etcd_log(path: &Path) -> Result<EtcdHistory, ParseError> {
    parse_etcd_log(&read(path)?, &path.display().to_string())
}

fn parse_int(file: &str, line: usize, s: &str) -> Result<i64, ParseError> {
    s.parse().map_err(|_| ParseError::new(file, line, format!("expected an integer, found {s:?}")))
}

fn parse_pair(file: &str, line: usize, s: &str) -> Result<(i64, i64), ParseError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| ParseError::new(file, line, format!("expected [A B], found {s:?}")))?;
    let mut parts = inner.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), None) => Ok((parse_int(file, line, a)?, parse_int(file, line, b)?)),
        _ => Err(ParseError::new(file, line, format!("expected [A B], found {s:?}"))),
    }
}

/// Parses the text of a Jepsen etcd log; `file` names it in errors.
///
/// # Errors
/// A [`ParseError`] naming the file and the 1-based line of the first malformed line, or of
/// an event the history cannot hold (a return with no pending call, a process reused after
/// `:info`, …).
pub fn parse_etcd_log(text: &str, file: &str) -> Result<EtcdHistory, ParseError> {
    let mut ops: Vec<Operation<CasInput, CasOutput>> = Vec::new();
    // Process -> its pending operation; process -> line where it was retired by `:info`.
    let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
    let mut retired: BTreeMap<u64, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let err = |message: String| ParseError::new(file, line, message);
        if fields.len() < 7 || fields[0] != "INFO" || fields[1] != "jepsen.util" || fields[2] != "-" {
            return Err(err(format!("expected `INFO jepsen.util - <process> <type> <f> <value>`, found {raw:?}")));
        }
        let process: u64 =
            fields[3].parse().map_err(|_| err(format!("expected a process number, found {:?}", fields[3])))?;
        let (kind, f, value) = (fields[4], fields[5], fields[6..].join(" "));
        if let Some(at) = retired.get(&process) {
            return Err(err(format!("process {process} got :info on line {at} and may not be used again")));
        }
        let time = line as u64;
        if kind == ":invoke" {
            if let Some(&op) = pending.get(&process) {
                return Err(err(format!("process {process} calls while its call of line {} is pending", ops[op].call)));
            }
            let input = match (f, value.as_str()) {
                (":read", "nil") => CasInput::Read,
                (":write", v) => CasInput::Write(parse_int(file, line, v)?),
                (":cas", v) => {
                    let (from, to) = parse_pair(file, line, v)?;
                    CasInput::Cas { from, to }
                }
                _ => return Err(err(format!("unsupported call {f} {value}"))),
            };
            pending.insert(process, ops.len());
            ops.push(Operation::pending(process, input, time));
            continue;
        }
        let Some(i) = pending.remove(&process) else {
            return Err(err(format!("{kind} {f} for process {process}, which has no pending call")));
        };
        let op = &mut ops[i];
        let called = match op.input {
            CasInput::Read => ":read",
            CasInput::Write(_) => ":write",
            CasInput::Cas { .. } => ":cas",
        };
        if f != called {
            return Err(err(format!("{kind} {f} answers a {called} call (line {})", op.call)));
        }
        let output = match (kind, op.input, value.as_str()) {
            (":info", _, _) => {
                // Outcome unknown, and the process never returns: stays pending.
                retired.insert(process, line);
                continue;
            }
            (":ok", CasInput::Read, "nil") => Some(CasOutput::Read(None)),
            (":ok", CasInput::Read, v) => Some(CasOutput::Read(Some(parse_int(file, line, v)?))),
            (":fail", CasInput::Read, ":timed-out") => None,
            (":ok", CasInput::Write(w), v) => {
                if parse_int(file, line, v)? != w {
                    return Err(err(format!("write of {w} (line {}) acknowledged as {v}", op.call)));
                }
                Some(CasOutput::Write)
            }
            (":ok" | ":fail", CasInput::Cas { from, to }, v) => {
                if parse_pair(file, line, v)? != (from, to) {
                    return Err(err(format!("cas [{from} {to}] (line {}) answered as {v}", op.call)));
                }
                Some(CasOutput::Cas { ok: kind == ":ok" })
            }
            _ => return Err(err(format!("unsupported return {kind} {f} {value}"))),
        };
        op.output = output;
        op.ret = Some(time);
    }
    History::new(ops).map_err(|e| ParseError::new(file, 0, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_line() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 1   :invoke :cas    [1 2]\n\
                    INFO  jepsen.util - 2 :invoke :write 4\n\
                    INFO  jepsen.util - 0 :fail :read :timed-out\n\
                    \n\
                    INFO  jepsen.util - 1 :fail :cas [1 2]\n\
                    INFO  jepsen.util - 2 :info :write :timed-out\n\
                    INFO  jepsen.util - 0 :invoke :read nil\n\
                    INFO  jepsen.util - 0 :ok :read 4";
        let h = parse_etcd_log(text, "t.log").unwrap();
        assert_eq!(
            h.ops(),
            &[
                Operation::unknown_result(0, CasInput::Read, 1, 4),
                Operation::new(1, CasInput::Cas { from: 1, to: 2 }, 2, CasOutput::Cas { ok: false }, 6),
                Operation::pending(2, CasInput::Write(4), 3),
                Operation::new(0, CasInput::Read, 8, CasOutput::Read(Some(4)), 9),
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = |text: &str| parse_etcd_log(text, "x.log").unwrap_err().to_string();
        assert_eq!(
            bad("INFO jepsen.util - 0 :invoke :read nil\nINFO jepsen.util - 0 :ok :read x"),
            r#"x.log:2: expected an integer, found "x""#
        );
        assert!(bad("garbage").starts_with("x.log:1: expected `INFO"));
        assert!(bad("INFO jepsen.util - 3 :ok :read 1").starts_with("x.log:1: :ok :read for process 3"));
        assert!(bad("INFO jepsen.util - 0 :invoke :write 1\nINFO jepsen.util - 0 :invoke :read nil")
            .starts_with("x.log:2: process 0 calls while"));
        assert!(bad("INFO jepsen.util - 0 :invoke :write 1\nINFO jepsen.util - 0 :ok :write 2")
            .starts_with("x.log:2: write of 1"));
        assert!(bad("INFO jepsen.util - 0 :invoke :cas [1 2]\nINFO jepsen.util - 0 :ok :read 2")
            .starts_with("x.log:2: :ok :read answers a :cas call"));
        assert!(bad(
            "INFO jepsen.util - 0 :invoke :write 1\nINFO jepsen.util - 0 :info :write :timed-out\nINFO jepsen.util - 0 :invoke :read nil"
        )
        .starts_with("x.log:3: process 0 got :info on line 2"));
        assert!(bad("INFO jepsen.util - 0 :invoke :cas [1 2 3]").starts_with("x.log:1: expected [A B]"));
    }
}
