//! Porcupine's key/value logs: one EDN map per line, e.g.
//! `{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}`.
//!
//! `:invoke` calls; `:ok` returns the pending call of the same process (a get's value is
//! the string read; a put's or append's repeats the string written); `:info` leaves the
//! call pending for ever (outcome unknown; the process is not reused). Blank lines are
//! skipped.

use std::collections::BTreeMap;
use std::path::Path;

use super::{read, ParseError};
use crate::linearizability::{History, Operation};
use crate::models::kv::{KvInput, KvOutput};

/// A parsed key/value history.
pub type KvHistory = History<KvInput, KvOutput>;

/// Reads and parses a key/value log.
///
/// # Errors
/// A [`ParseError`] with line 0 when the file cannot be read, else as [`parse_kv_log`].
pub fn read_kv_log(path: &Path) -> Result<KvHistory, ParseError> {
    parse_kv_log(&read(path)?, &path.display().to_string())
}

/// An EDN value as these logs use them.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Keyword(String),
    Str(String),
    Int(i64),
    Nil,
}

/// Parses `{:k v, :k v ...}` into keyword -> value, in order of appearance.
fn parse_map(s: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut chars = s.trim().chars().peekable();
    if chars.next() != Some('{') {
        return Err("expected a map starting with `{`".into());
    }
    let mut map = BTreeMap::new();
    let skip = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
    };
    let atom = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut out = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == ',' || c == '}' || c == '{' || c == '"' {
                break;
            }
            out.push(c);
            chars.next();
        }
        out
    };
    loop {
        skip(&mut chars);
        match chars.peek() {
            None => return Err("unterminated map: missing `}`".into()),
            Some('}') => {
                chars.next();
                break;
            }
            Some(':') => {}
            Some(c) => return Err(format!("expected a keyword, found {c:?}")),
        }
        chars.next();
        let key = atom(&mut chars);
        if key.is_empty() {
            return Err("empty keyword".into());
        }
        skip(&mut chars);
        let value = match chars.peek() {
            Some('"') => {
                chars.next();
                let mut out = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string for :{key}")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some(c @ ('"' | '\\')) => out.push(c),
                            other => return Err(format!("unsupported escape \\{} in :{key}", other.unwrap_or(' '))),
                        },
                        Some(c) => out.push(c),
                    }
                }
                Value::Str(out)
            }
            Some(':') => {
                chars.next();
                Value::Keyword(atom(&mut chars))
            }
            _ => {
                let word = atom(&mut chars);
                if word == "nil" {
                    Value::Nil
                } else {
                    Value::Int(word.parse().map_err(|_| format!("unsupported value {word:?} for :{key}"))?)
                }
            }
        };
        if map.insert(key.clone(), value).is_some() {
            return Err(format!("duplicate key :{key}"));
        }
    }
    skip(&mut chars);
    if let Some(c) = chars.next() {
        return Err(format!("unexpected {c:?} after the map"));
    }
    Ok(map)
}

/// Parses the text of a key/value log; `file` names it in errors.
///
/// # Errors
/// A [`ParseError`] naming the file and the 1-based line of the first malformed line, or of
/// an event the history cannot hold (a return with no pending call, a process reused after
/// `:info`, …).
pub fn parse_kv_log(text: &str, file: &str) -> Result<KvHistory, ParseError> {
    let mut ops: Vec<Operation<KvInput, KvOutput>> = Vec::new();
    let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
    let mut retired: BTreeMap<u64, usize> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let err = |message: String| ParseError::new(file, line, message);
        let map = parse_map(raw).map_err(err)?;
        let field = |name: &str| map.get(name).ok_or_else(|| err(format!("missing :{name}")));
        let keyword = |name: &str| match field(name)? {
            Value::Keyword(k) => Ok(k.as_str()),
            other => Err(err(format!(":{name} should be a keyword, found {other:?}"))),
        };
        let string = |name: &str| match field(name)? {
            Value::Str(s) => Ok(s.as_str()),
            other => Err(err(format!(":{name} should be a string, found {other:?}"))),
        };
        let process = match field("process")? {
            Value::Int(p) if *p >= 0 => *p as u64,
            other => return Err(err(format!(":process should be a process number, found {other:?}"))),
        };
        let (kind, f, key) = (keyword("type")?, keyword("f")?, string("key")?);
        if let Some(at) = retired.get(&process) {
            return Err(err(format!("process {process} got :info on line {at} and may not be used again")));
        }
        let time = line as u64;
        if kind == "invoke" {
            if let Some(&op) = pending.get(&process) {
                return Err(err(format!("process {process} calls while its call of line {} is pending", ops[op].call)));
            }
            let input = match f {
                "get" => match field("value")? {
                    Value::Nil => KvInput::get(key),
                    other => return Err(err(format!("a get's :value should be nil, found {other:?}"))),
                },
                "put" => KvInput::put(key, string("value")?),
                "append" => KvInput::append(key, string("value")?),
                other => return Err(err(format!("unsupported :f :{other}"))),
            };
            pending.insert(process, ops.len());
            ops.push(Operation::pending(process, input, time));
            continue;
        }
        let Some(i) = pending.remove(&process) else {
            return Err(err(format!(":{kind} :{f} for process {process}, which has no pending call")));
        };
        let op = &mut ops[i];
        let called = match &op.input {
            KvInput::Get { .. } => "get",
            KvInput::Put { .. } => "put",
            KvInput::Append { .. } => "append",
        };
        if f != called || key != op.input.key() {
            return Err(err(format!(
                ":{kind} :{f} of key {key:?} answers {called} of key {:?} (line {})",
                op.input.key(),
                op.call
            )));
        }
        match kind {
            "ok" => {}
            "info" => {
                retired.insert(process, line);
                continue;
            }
            other => return Err(err(format!("unsupported :type :{other}"))),
        }
        op.output = Some(match &op.input {
            KvInput::Get { .. } => KvOutput::value(string("value")?),
            KvInput::Put { value, .. } | KvInput::Append { value, .. } => {
                if string("value")? != value {
                    return Err(err(format!(
                        "{called} of {value:?} (line {}) acknowledged with another value",
                        op.call
                    )));
                }
                KvOutput::Ack
            }
        });
        op.ret = Some(time);
    }
    History::new(ops).map_err(|e| ParseError::new(file, 0, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calls_and_returns() {
        let text = r#"{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 1, :type :ok, :f :get, :key "0", :value "x \"q\" y"}

{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process 2, :type :invoke, :f :put, :key "1", :value "z"}
{:process 2, :type :info, :f :put, :key "1", :value "z"}"#;
        let h = parse_kv_log(text, "t.txt").unwrap();
        assert_eq!(
            h.ops(),
            &[
                Operation::new(0, KvInput::append("0", "x 0 0 y"), 1, KvOutput::Ack, 5),
                Operation::new(1, KvInput::get("0"), 2, KvOutput::value("x \"q\" y"), 3),
                Operation::pending(2, KvInput::put("1", "z"), 6),
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = |text: &str| parse_kv_log(text, "k.txt").unwrap_err().to_string();
        assert_eq!(
            bad("\n{:process 0, :type :invoke, :f :get, :key \"0\", :value nil"),
            "k.txt:2: unterminated map: missing `}`"
        );
        assert_eq!(bad("{:process 0, :type :invoke, :f :get, :value nil}"), "k.txt:1: missing :key");
        assert_eq!(
            bad("{:process 0, :type :invoke, :f :get, :key \"0\", :value nil}\n{:process 0, :type :ok, :f :put, :key \"0\", :value \"\"}"),
            r#"k.txt:2: :ok :put of key "0" answers get of key "0" (line 1)"#
        );
        assert_eq!(
            bad("{:process 0, :type :ok, :f :get, :key \"0\", :value \"\"}"),
            "k.txt:1: :ok :get for process 0, which has no pending call"
        );
        assert_eq!(bad("{:process 0, :type :invoke, :f :cas, :key \"0\", :value nil}"), "k.txt:1: unsupported :f :cas");
        assert!(bad("{:process 0 :type}").starts_with("k.txt:1: unsupported value"));
    }
}
