//! Reading the project's TOML files (fault schedules, scenario files, seed files) with errors
//! that name the line of the offending key, even inside a tagged table.
//!
//! A table chosen by its `kind` key (`[[event]]`, `[workload]`) is read whole before its
//! fields are, so the `toml` crate places any error in it, or in its sub-tables
//! (`[[workload.clerk]]`), at the table's header. [`from_str`] then finds the place: the
//! line of an unknown key; for a missing key, the one table that lacks it; otherwise it
//! blanks one key line at a time, in file order, and the first line whose removal makes the
//! error go away (or become another one) holds the key the error is about.

use serde::de::DeserializeOwned;

/// A TOML file's error: its 1-based line, when known, and the message on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlError {
    /// The line the error is about (1-based), when the parser gave a place.
    pub line: Option<usize>,
    /// What is wrong, on one line; inside a tagged table it starts with the key's name.
    pub message: String,
}

/// Parses `text` as a `T`.
///
/// # Errors
/// A [`TomlError`] for malformed TOML, an unknown or missing field, or a value of the wrong
/// type or range; in a tagged table, the line and name of the key the error is about.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, TomlError> {
    let e = match toml::from_str::<T>(text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let message = one_line(e.message());
    let line = e.span().map(|sp| line_of(text, sp.start));
    // A tag's unknown value inside a tagged table's sub-table (`kind = "mov"` in a
    // `[[workload.change]]`) is placed at the outer table's tag: the one line holding that
    // value is the place.
    if let Some(variant) = quoted_after(&message, "unknown variant") {
        let holding: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.split_once('=').is_some_and(|(_, v)| v.trim().trim_matches('"') == variant))
            .map(|(i, _)| i + 1)
            .collect();
        if let [only] = holding[..] {
            if line != Some(only) {
                let key = text.lines().nth(only - 1).and_then(|l| l.split_once('=')).map(|(k, _)| k.trim());
                let message = key.map_or(message.clone(), |k| format!("{k}: {message}"));
                return Err(TomlError { line: Some(only), message });
            }
        }
    }
    match line.and_then(|l| find_key::<T>(text, l, &message)) {
        Some((at, Some(key))) => Err(TomlError { line: Some(at), message: format!("{key}: {message}") }),
        Some((at, None)) => Err(TomlError { line: Some(at), message }),
        None => Err(TomlError { line, message }),
    }
}

/// The line (1-based) of what a check's `message` about a parsed file names, found in the
/// file's `text`: a check runs on the parsed value, so its messages name keys by path —
/// `safety_ms = …`, `workload.keys = 0: …`, `workload: append_percent …`,
/// `workload.group 101: servers = 0 …`, `event 3 (…) …`, `workload.clerk: …`,
/// `fault_points."net.nope" …` — and this finds that key's line, or the table's header
/// when the message names only a table. `None` when the message names nothing found.
pub fn line_of_check(text: &str, message: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let headers =
        |name: &str| -> Vec<usize> { (0..lines.len()).filter(|&i| header_name(lines[i]) == Some(name)).collect() };
    let is_key = |i: usize, key: &str| {
        let t = lines[i].trim_start();
        let bare = key.trim_matches('"');
        [bare.to_string(), format!("\"{bare}\"")]
            .iter()
            .any(|k| t.strip_prefix(k.as_str()).is_some_and(|rest| rest.trim_start().starts_with('=')))
    };
    // `key` in the table whose header is line index `header` (None: the top level), up to
    // the next header.
    let key_in = |header: Option<usize>, key: &str| {
        let start = header.map_or(0, |h| h + 1);
        (start..lines.len()).take_while(|&i| header_name(lines[i]).is_none()).find(|&i| is_key(i, key))
    };
    let found = |i: usize| Some(i + 1);
    let number = |rest: &str| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok();
    // The key a message names after its table (`…: shard 10 …`, `…: servers = 0 …`) in the
    // table whose header is `header`, or the header itself.
    let key_after = |header: usize, rest: &str| {
        let key =
            rest.split_once(": ").map(|(_, k)| k.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next());
        key.flatten().and_then(|k| key_in(Some(header), k)).unwrap_or(header)
    };
    // By position: `event N …` (or `…: event N …`), `workload.change N …`, and
    // `[[T]] #N: …` for any array of tables: the Nth such table.
    let event = message.strip_prefix("event ").or_else(|| message.split_once(": event ").map(|(_, r)| r));
    let positional = event.map(|r| ("event", r)).or_else(|| {
        message.strip_prefix("workload.change ").map(|r| ("workload.change", r)).or_else(|| {
            let (t, r) = message.strip_prefix("[[")?.split_once("]] #")?;
            Some((t, r))
        })
    });
    if let Some((table, rest)) = positional {
        let n = number(rest)? as usize;
        let header = *headers(table).get(n.checked_sub(1)?)?;
        return found(if table == "event" { header } else { key_after(header, rest) });
    }
    // By identity: `workload.group G: …` (its `gid`), `workload.clerk C: …` (its `id`).
    let identified = [("workload.group ", "workload.group", "gid"), ("workload.clerk ", "workload.clerk", "id")]
        .into_iter()
        .find_map(|(prefix, table, id_key)| Some((table, id_key, message.strip_prefix(prefix)?)));
    if let Some((table, id_key, rest)) = identified {
        let id = number(rest)?;
        let header = headers(table).into_iter().find(|&h| {
            key_in(Some(h), id_key)
                .is_some_and(|l| lines[l].split_once('=').and_then(|(_, v)| v.trim().parse::<u64>().ok()) == Some(id))
        })?;
        return found(key_after(header, rest));
    }
    // `a.b = …` or `a.b: key …`: a table's key, or (when it names only a table) its header.
    let (table, key) = match message.split_once(" = ") {
        Some((path, _)) if !path.contains(' ') => match path.split_once(".\"") {
            Some((t, k)) => (t, format!("\"{k}")),
            None => match path.rsplit_once('.') {
                Some((t, k)) => (t, k.to_string()),
                None => ("", path.to_string()),
            },
        },
        _ => {
            let (t, rest) = message.split_once(':')?;
            if t.contains(' ') {
                return None;
            }
            let k = rest.trim_start().split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
            (t, k.to_string())
        }
    };
    let header = if table.is_empty() { None } else { Some(*headers(table).first()?) };
    key_in(header, &key).or(header).and_then(found)
}

fn one_line(message: &str) -> String {
    message.replace('\n', " ").trim().to_string()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The dotted name of a table header line (`[a.b]`, `[[a.b]]`), if `line` is one.
fn header_name(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner =
        t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")).or_else(|| t.strip_prefix('[')?.strip_suffix(']'));
    inner.map(str::trim)
}

/// For an error placed at the header on line `header` (1-based): the line of the entry it is
/// about, among the table's own and its sub-tables', with the key when the error is about
/// one. `None` when the line is not a header or no single line explains the error.
fn find_key<T: DeserializeOwned>(text: &str, header: usize, message: &str) -> Option<(usize, Option<String>)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let name = header_name(lines.get(header - 1)?)?.to_string();
    let sub = format!("{name}.");
    // The table's lines: its own and its sub-tables', up to the next other header.
    let end = (header..lines.len())
        .find(|&i| header_name(lines[i]).is_some_and(|n| !n.starts_with(&sub)))
        .unwrap_or(lines.len());
    let key_of = |line: &str| {
        let t = line.trim();
        if t.starts_with('#') {
            return None;
        }
        t.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string())
    };
    if let Some(missing) = quoted_after(message, "missing field") {
        // A sub-table without the key, the only one among tables of its name of which
        // others have it (a table of another kind lacks it as a matter of course).
        let starts: Vec<usize> = (header..end).filter(|&i| header_name(lines[i]).is_some()).collect();
        let tables: Vec<(&str, usize, bool)> = (0..starts.len())
            .map(|t| {
                let to = starts.get(t + 1).copied().unwrap_or(end);
                let has = (starts[t] + 1..to).any(|i| key_of(lines[i]).as_deref() == Some(missing));
                (header_name(lines[starts[t]]).unwrap_or(""), starts[t] + 1, has)
            })
            .collect();
        let lacking: Vec<usize> = tables
            .iter()
            .filter(|(n, _, has)| !has && tables.iter().any(|(m, _, h)| m == n && *h))
            .map(|&(_, at, _)| at)
            .collect();
        return (lacking.len() == 1).then(|| (lacking[0], None));
    }
    let unknown = quoted_after(message, "unknown field");
    for i in header..end {
        let Some(key) = key_of(lines[i]) else { continue };
        if unknown == Some(key.as_str()) {
            return Some((i + 1, Some(key)));
        }
        // The tag chooses the table's shape: without it every error becomes "missing
        // field `kind`" (an error in its value the crate places at the value itself).
        if key == "kind" {
            continue;
        }
        let blanked: String = lines.iter().enumerate().map(|(j, l)| if j == i { "\n" } else { *l }).collect();
        // A line of a value written over several lines: blanking it breaks the syntax.
        if toml::from_str::<toml::Table>(&blanked).is_err() {
            continue;
        }
        let culprit = match toml::from_str::<T>(&blanked) {
            Ok(_) => true,
            Err(e) => {
                let m = one_line(e.message());
                // Unchanged: another line. "missing field" of an earlier table that now
                // lacks a key it needs says nothing about this error, unless the error
                // quoted this line's value.
                m != message && (!m.starts_with("missing field") || mentions_value(message, lines[i]))
            }
        };
        if culprit {
            return Some((i + 1, Some(key)));
        }
    }
    None
}

/// The name in backticks right after `prefix` at the start of `message`
/// (``missing field `id` `` → `id`).
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.trim_start().strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Whether `message` quotes the value written on the key line `line` (`skip = "x"` and
/// `invalid type: string "x"`; `saves = -1` and ``invalid value: integer `-1` ``).
fn mentions_value(message: &str, line: &str) -> bool {
    let Some((_, value)) = line.split_once('=') else { return false };
    let value = value.split('#').next().unwrap_or("").trim();
    // serde quotes a string as written, a variant's name and any other scalar in backticks.
    let bare = value.trim_matches('"');
    !value.is_empty() && (value.starts_with('"') && message.contains(value) || message.contains(&format!("`{bare}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        shape: Shape,
        #[allow(dead_code)]
        #[serde(default, rename = "event")]
        events: Vec<Event>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    enum Shape {
        Square {
            #[allow(dead_code)]
            side: u32,
            #[allow(dead_code)]
            #[serde(rename = "corner")]
            corners: Vec<Corner>,
        },
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Corner {
        #[allow(dead_code)]
        id: u64,
        #[allow(dead_code)]
        #[serde(default)]
        round: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    enum Event {
        Crash {
            #[allow(dead_code)]
            at_ms: u64,
            #[allow(dead_code)]
            node: String,
        },
    }

    const GOOD: &str = "name = \"a\"\n\n[shape]\nkind = \"square\"\nside = 3\n\n[[shape.corner]]\nid = 1\n\n[[shape.corner]]\nid = 2\nround = 5\n\n[[event]]\nkind = \"crash\"\nat_ms = 10\nnode = \"s0\"\n";

    fn err(edit: (&str, &str)) -> TomlError {
        let text = GOOD.replacen(edit.0, edit.1, 1);
        assert_ne!(text, GOOD, "the edit {edit:?} must change the file");
        from_str::<File>(&text).unwrap_err()
    }

    #[test]
    fn a_checks_message_is_placed_at_the_key_or_table_it_names() {
        let text = "scenario = \"shardkv::swarm_4b\"\nseed = 1\nsafety_ms = 999999\n\n[workload]\nkind = \"sharded\"\nctrlers = 0\nappend_percent = 60\n\n[[workload.group]]\ngid = 100\nservers = 3\n\n[[workload.group]]\ngid = 101\nservers = 0\n\n[[workload.clerk]]\nid = 0\noperations = 1\n\n[fault_points]\n\"node.pause\" = 0\n\n[[event]]\nat_ms = 1\nkind = \"heal\"\n\n[[event]]\nat_ms = 0\nkind = \"heal\"\n\n[[workload.change]]\nat_ms = 0\nkind = \"move\"\nshard = 10\ngid = 100\n";
        let at = |m: &str| line_of_check(text, m);
        assert_eq!(at("safety_ms = 999999 leaves too little"), Some(3));
        assert_eq!(at("workload.ctrlers = 0: give 1 to 15"), Some(7));
        assert_eq!(at("workload: append_percent 60 + put_percent 50 exceed 100"), Some(8));
        assert_eq!(at("workload.group 101: servers = 0: give 1 to 15"), Some(16));
        assert_eq!(at("workload.group 100: a gid below 100"), Some(10));
        assert_eq!(at("[[workload.group]] #2: gid 101 is an earlier group's too"), Some(15));
        assert_eq!(at("[[workload.clerk]] #1: id 0 is an earlier clerk's too"), Some(19));
        assert_eq!(at("workload.clerk 0: skip = 9 is more operations"), Some(18), "a key left out: its table");
        assert_eq!(at("workload.clerk 0: operations = 1 is"), Some(20));
        assert_eq!(at("workload.change 1 (move at 0 ms): shard 10; give 0 to 9"), Some(36));
        assert_eq!(at("workload.change 1 (move at 0 ms) names group 105, which the file does not have"), Some(33));
        assert_eq!(at("workload.change 2 (join at 5 ms): at_ms 5 is before"), None, "no second change");
        assert_eq!(at("fault_points.\"node.pause\" = 0: give a probability"), Some(23));
        assert_eq!(at("event 2 (heal at 0 ms) is at or past"), Some(29));
        assert_eq!(at("events must be in time order: event 2 at 0 ms follows one at 1 ms"), Some(29));
        assert_eq!(at("the file is for raft::swarm_2c, not shardkv::swarm_4b"), None);
        assert_eq!(at("workload.keys = 0: give at least one key"), Some(5), "a key the file leaves out: its table");
    }

    #[test]
    fn errors_inside_tagged_tables_name_the_key_and_its_line() {
        from_str::<File>(GOOD).unwrap();
        // The crate alone places each of these at a header (line 3, 7 or 14).
        let e = err(("round = 5", "round = \"x\""));
        assert_eq!(e.line, Some(12), "{e:?}");
        assert!(e.message.starts_with("round: invalid type: string \"x\""), "{e:?}");
        let e = err(("id = 2", "id = -2"));
        assert_eq!(e.line, Some(11), "{e:?}");
        assert!(e.message.starts_with("id: invalid value: integer `-2`"), "{e:?}");
        let e = err(("side = 3", "sid = 3"));
        assert_eq!(e.line, Some(5), "{e:?}");
        assert!(e.message.starts_with("sid: unknown field `sid`"), "{e:?}");
        let e = err(("at_ms = 10", "at_ms = \"soon\""));
        assert_eq!(e.line, Some(16), "{e:?}");
        assert!(e.message.starts_with("at_ms: invalid type"), "{e:?}");
        let e = err(("kind = \"crash\"", "kind = \"crush\""));
        assert_eq!(e.line, Some(15), "{e:?}");
        assert!(e.message.starts_with("unknown variant `crush`"), "{e:?}");
    }

    #[test]
    fn a_missing_field_stays_at_its_table_and_plain_errors_keep_their_place() {
        // The one table without the key.
        let e = err(("id = 2\n", ""));
        assert_eq!(e.line, Some(10), "{e:?}");
        assert_eq!(e.message, "missing field `id`");
        // Two tables without it: the header that was given.
        let text = GOOD.replacen("id = 2\n", "", 1).replacen("id = 1\n", "", 1);
        let e = from_str::<File>(&text).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (Some(3), "missing field `id`"));
        // Outside a tagged table the crate already names the line.
        let e = err(("name = \"a\"", "name = 1"));
        assert_eq!(e.line, Some(1), "{e:?}");
        assert!(e.message.starts_with("invalid type: integer `1`"), "{e:?}");
        // A value over several lines cannot be blanked line by line: the header it is.
        let e = err(("side = 3", "side = [3,\n4]"));
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.starts_with("invalid type: sequence"), "{e:?}");
    }
}
