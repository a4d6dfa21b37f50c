//! The JSON form of a history: everything the checker and its models use, exactly — inputs,
//! outputs (a write's [`KvOutput::Wrote`](crate::models::kv::KvOutput::Wrote) included),
//! times, pending and unknown results, metadata, whether the clients are sequential — so a
//! history written here reads back equal ([`to_json`], [`parse_json`]).
//!
//! ```json
//! {"format": "simlab-history", "version": 1, "model": "kv",
//!  "history": {"ops": [{"client": 0, "input": {"Put": {"key": "k", "value": "a"}},
//!                       "call": 0, "output": "Ack", "ret": 1}]}}
//! ```
//!
//! `model` names the model the operations are written for (`kv`: [`KvModel`]'s inputs and
//! outputs; `etcd`: [`CasRegisterModel`]'s); a reader for one model refuses another's file.
//!
//! [`KvModel`]: crate::models::kv::KvModel
//! [`CasRegisterModel`]: crate::models::cas_register::CasRegisterModel

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{read, ParseError};
use crate::linearizability::History;

/// The value of the `format` field.
pub const FORMAT: &str = "simlab-history";

/// The version this crate writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct FileOut<'a, I, O> {
    format: &'static str,
    version: u32,
    model: &'a str,
    history: &'a History<I, O>,
}

#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "I: DeserializeOwned, O: DeserializeOwned"))]
struct FileIn<I, O> {
    history: History<I, O>,
}

/// The JSON form of `history`, for `model` (one line, then a newline).
pub fn to_json<I: Serialize + Clone, O: Serialize + Clone>(model: &str, history: &History<I, O>) -> String {
    let mut text = serde_json::to_string(&FileOut { format: FORMAT, version: VERSION, model, history })
        .expect("histories serialize");
    text.push('\n');
    text
}

/// True when `text` looks like the JSON form (a JSON object whose first key is quoted), as
/// opposed to a line-based log: Porcupine's EDN maps start `{:`.
pub fn is_json(text: &str) -> bool {
    let mut rest = text.trim_start().chars();
    rest.next() == Some('{') && rest.find(|c: &char| !c.is_whitespace()) == Some('"')
}

fn error(file: &str, e: &serde_json::Error, what: &str) -> ParseError {
    ParseError::new(file, e.line(), format!("{what}: {e}"))
}

/// Parses the JSON form of a history written for `model`; `file` names it in errors. The
/// history is validated as [`History::new`] (and, when declared, sequential clients) would.
pub fn parse_json<I: DeserializeOwned, O: DeserializeOwned>(
    text: &str,
    file: &str,
    model: &str,
) -> Result<History<I, O>, ParseError> {
    let header: Header = serde_json::from_str(text).map_err(|e| error(file, &e, "not a history in JSON form"))?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(ParseError::new(file, 0, format!("not a history in JSON form: its \"format\" is not {FORMAT:?}")));
    }
    if header.version != Some(VERSION) {
        return Err(ParseError::new(
            file,
            0,
            format!("version {:?} of the JSON form; this build reads version {VERSION}", header.version),
        ));
    }
    if header.model.as_deref() != Some(model) {
        return Err(ParseError::new(
            file,
            0,
            format!("a history for the {:?} model, not {model:?}", header.model.unwrap_or_default()),
        ));
    }
    let parsed: FileIn<I, O> = serde_json::from_str(text).map_err(|e| error(file, &e, "malformed history"))?;
    Ok(parsed.history)
}

/// Reads and parses a file in the JSON form (see [`parse_json`]).
pub fn read_json<I: DeserializeOwned, O: DeserializeOwned>(
    path: &Path,
    model: &str,
) -> Result<History<I, O>, ParseError> {
    parse_json(&read(path)?, &path.display().to_string(), model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::Operation;
    use crate::models::kv::{value_digest, KvInput, KvOutput};

    #[test]
    fn round_trips_exactly_and_refuses_other_files() {
        let history = History::new(vec![
            Operation::new(
                3,
                KvInput::append("k", "x \"q\" y"),
                0,
                KvOutput::Wrote { prev_len: 0, prev_digest: value_digest("") },
                4,
            )
            .with_metadata("simulated 0.1 s to 0.2 s"),
            Operation::new(1, KvInput::get("k"), 1, KvOutput::value("x"), 2),
            Operation::unknown_result(2, KvInput::put("j", "v"), 2, 3),
            Operation::pending(2, KvInput::get("j"), 5),
        ])
        .unwrap()
        .with_sequential_clients()
        .unwrap();
        let text = to_json("kv", &history);
        assert!(is_json(&text) && text.ends_with('\n'));
        assert!(!is_json(r#"{:process 0, :type :invoke, :f :get, :key "0", :value nil}"#));
        let back: History<KvInput, KvOutput> = parse_json(&text, "h.json", "kv").unwrap();
        assert_eq!(back, history);
        assert_eq!(to_json("kv", &back), text, "byte for byte");
        // Another model's file, another format, another version, broken data: refused.
        let refuse = |t: &str| parse_json::<KvInput, KvOutput>(t, "h.json", "kv").unwrap_err().to_string();
        assert!(refuse(&text.replace(r#""model":"kv""#, r#""model":"etcd""#)).contains("the \"etcd\" model"));
        assert!(refuse(&text.replace(FORMAT, "other")).contains("not a history in JSON form"));
        assert!(refuse(&text.replace(r#""version":1"#, r#""version":9"#)).contains("version Some(9)"));
        assert!(refuse(&text.replace(r#""ret":4"#, r#""ret":"four""#)).starts_with("h.json:1: malformed history"));
        // Validated on the way in: a return before its call.
        assert!(refuse(&text.replace(r#""ret":4"#, r#""call":9,"ret":4"#)).contains("malformed history"));
    }
}
