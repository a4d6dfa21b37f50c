//! The client history of a key/value run, rebuilt from its trace: every `call` line (`client
//! C op I: Get { key: "k" }`) and `return` line (`client C op I -> Value("v")`) the history
//! recorder wrote, the values in Rust's `Debug` form of `checkers::models::kv`'s types. Times
//! are positions in the trace, so the order of calls and returns is exactly the recorded one.
//! The rebuilt history is checked and drawn on the history page (`checkers::html`), which
//! gets a link back to the timeline.

use checkers::html::{render, Annotation, HtmlOptions};
use checkers::linearizability::{check, CheckOptions, CheckResult, History, Operation};
use checkers::models::kv::{KvInput, KvModel, KvOutput};

/// `client C op I: <input>` → (C, I, input text).
pub fn parse_call(details: &str) -> Option<(u64, u64, &str)> {
    let rest = details.strip_prefix("client ")?;
    let (client, rest) = rest.split_once(" op ")?;
    let (op, text) = rest.split_once(": ")?;
    Some((client.parse().ok()?, op.parse().ok()?, text))
}

/// `client C op I -> <output>` → (C, I, output text).
pub fn parse_return(details: &str) -> Option<(u64, u64, &str)> {
    let rest = details.strip_prefix("client ")?;
    let (client, rest) = rest.split_once(" op ")?;
    let (op, text) = rest.split_once(" -> ")?;
    Some((client.parse().ok()?, op.parse().ok()?, text))
}

/// A reader of Rust `Debug` text: identifiers, quoted strings with their escapes, integers.
struct Reader<'a> {
    s: &'a str,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        self.s = self.s.trim_start();
    }
    fn eat(&mut self, token: &str) -> Option<()> {
        self.ws();
        self.s = self.s.strip_prefix(token)?;
        Some(())
    }
    fn ident(&mut self) -> Option<&'a str> {
        self.ws();
        let end = self.s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.s.len());
        let (id, rest) = self.s.split_at(end);
        self.s = rest;
        (!id.is_empty()).then_some(id)
    }
    fn int(&mut self) -> Option<u64> {
        self.ws();
        let end = self.s.find(|c: char| !c.is_ascii_digit()).unwrap_or(self.s.len());
        let (n, rest) = self.s.split_at(end);
        self.s = rest;
        n.parse().ok()
    }
    /// A string as `str`'s `Debug` writes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\0`, `\'` and
    /// `\u{…}`.
    fn string(&mut self) -> Option<String> {
        self.eat("\"")?;
        let s = self.s;
        let mut out = String::new();
        let mut it = s.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '"' => {
                    self.s = &s[i + 1..];
                    return Some(out);
                }
                '\\' => {
                    let (j, e) = it.next()?;
                    match e {
                        '"' | '\\' | '\'' => out.push(e),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        'u' => {
                            let hex = s[j + 1..].strip_prefix('{')?;
                            let close = hex.find('}')?;
                            out.push(char::from_u32(u32::from_str_radix(&hex[..close], 16).ok()?)?);
                            // Skip past the closing brace: 'u' at j, '{' at j + 1.
                            let after = j + 2 + close + 1;
                            while it.peek().is_some_and(|&(k, _)| k < after) {
                                it.next();
                            }
                        }
                        _ => return None,
                    }
                }
                c => out.push(c),
            }
        }
        None
    }
    fn done(&mut self) -> Option<()> {
        self.ws();
        self.s.is_empty().then_some(())
    }
}

/// Parses `Get { key: "k" }`, `Put { key: "k", value: "v" }`, `Append { key: "k", value: "v" }`.
pub fn parse_input(text: &str) -> Option<KvInput> {
    let mut r = Reader { s: text };
    let name = r.ident()?;
    r.eat("{")?;
    r.eat("key")?;
    r.eat(":")?;
    let key = r.string()?;
    let input = match name {
        "Get" => KvInput::Get { key },
        "Put" | "Append" => {
            r.eat(",")?;
            r.eat("value")?;
            r.eat(":")?;
            let value = r.string()?;
            if name == "Put" {
                KvInput::Put { key, value }
            } else {
                KvInput::Append { key, value }
            }
        }
        _ => return None,
    };
    r.eat("}")?;
    r.done()?;
    Some(input)
}

/// Parses `Value("v")`, `Ack`, `Wrote { prev_len: N, prev_digest: D }`.
pub fn parse_output(text: &str) -> Option<KvOutput> {
    let mut r = Reader { s: text };
    let out = match r.ident()? {
        "Ack" => KvOutput::Ack,
        "Value" => {
            r.eat("(")?;
            let v = r.string()?;
            r.eat(")")?;
            KvOutput::Value(v)
        }
        "Wrote" => {
            r.eat("{")?;
            r.eat("prev_len")?;
            r.eat(":")?;
            let prev_len = r.int()?;
            r.eat(",")?;
            r.eat("prev_digest")?;
            r.eat(":")?;
            let prev_digest = r.int()?;
            r.eat("}")?;
            KvOutput::Wrote { prev_len, prev_digest }
        }
        _ => return None,
    };
    r.done()?;
    Some(out)
}

/// A key/value history rebuilt from trace lines.
pub struct Rebuilt {
    /// The history; times are positions of the lines among `lines`.
    pub history: History<KvInput, KvOutput>,
    /// For each operation, the simulated time of its call, µs (to map bands).
    pub call_us: Vec<u64>,
}

/// Rebuilds the history from the trace lines, or `None` when the run recorded no client
/// operation or one that is not a key/value operation (another family's history).
pub fn rebuild(lines: &[&str]) -> Option<Rebuilt> {
    let mut ops: Vec<Operation<KvInput, KvOutput>> = Vec::new();
    let mut call_us = Vec::new();
    let mut open: std::collections::BTreeMap<(u64, u64), usize> = std::collections::BTreeMap::new();
    for (pos, line) in lines.iter().enumerate() {
        let Some(e) = super::parse_line(line) else { continue };
        match e.kind {
            "call" => {
                let (client, op, text) = parse_call(e.details)?;
                open.insert((client, op), ops.len());
                ops.push(Operation::pending(client, parse_input(text)?, pos as u64));
                call_us.push(e.t_us);
            }
            "return" => {
                let (client, op, text) = parse_return(e.details)?;
                let i = open.remove(&(client, op))?;
                let o = &mut ops[i];
                *o = Operation::new(o.client, o.input.clone(), o.call, parse_output(text)?, pos as u64);
            }
            _ => {}
        }
    }
    if ops.is_empty() {
        return None;
    }
    Some(Rebuilt { history: History::new(ops).ok()?, call_us })
}

/// Checks the history (with the key/value scenarios' step budget) and draws its page, with
/// `bands` (µs) placed among the operations and a link back to `timeline_href`.
pub fn page(
    rebuilt: &Rebuilt,
    title: &str,
    bands: &[(u64, u64, String, Option<String>)],
    timeline_href: &str,
) -> (String, CheckResult) {
    let options = CheckOptions { budget: scenarios::kvraft::tester::CHECK_BUDGET, ..CheckOptions::default() };
    let result = check(&KvModel, &rebuilt.history, &options);
    // Bands are in simulated time; the history's axis is positions: a band starts at the
    // first call at or after its start.
    let ops = rebuilt.history.ops();
    let at = |us: u64| -> u64 {
        rebuilt
            .call_us
            .iter()
            .position(|&c| c >= us)
            .map_or_else(|| ops.iter().map(|o| o.ret.unwrap_or(o.call)).max().unwrap_or(0) + 1, |i| ops[i].call)
    };
    let annotations: Vec<Annotation> = bands
        .iter()
        .map(|(t0, t1, label, row)| {
            let a = Annotation::new(at(*t0), at(*t1), label.clone());
            match row {
                Some(r) => a.in_row(r.clone()),
                None => a,
            }
        })
        .collect();
    let html = render(
        &KvModel,
        &rebuilt.history,
        &result,
        &annotations,
        &HtmlOptions { title: title.to_string(), ..HtmlOptions::default() },
    );
    (with_back_link(&html, timeline_href), result)
}

/// Puts a link to the timeline at the top of a page's body.
pub fn with_back_link(html: &str, href: &str) -> String {
    let link = format!(
        r#"<nav id="timeline-link" style="font:14px sans-serif;padding:6px 10px;background:#eef3ff;border-bottom:1px solid #c9d6f0"><a href="{href}">← timeline of this run</a></nav>"#
    );
    match html.find("<body").and_then(|i| html[i..].find('>').map(|j| i + j + 1)) {
        Some(at) => format!("{}{link}{}", &html[..at], &html[at..]),
        None => format!("{link}{html}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_text_of_inputs_and_outputs_parses_back() {
        let inputs = [
            KvInput::get("k"),
            KvInput::put("k", "v"),
            KvInput::append("a\"b\\c", "x\ny\t\u{1}é"),
            KvInput::put("", ""),
        ];
        for i in inputs {
            assert_eq!(parse_input(&format!("{i:?}")), Some(i.clone()), "{i:?}");
        }
        let outputs =
            [KvOutput::Ack, KvOutput::value("v\"</script>"), KvOutput::Wrote { prev_len: 3, prev_digest: u64::MAX }];
        for o in outputs {
            assert_eq!(parse_output(&format!("{o:?}")), Some(o.clone()), "{o:?}");
        }
        assert_eq!(parse_input("Get { key: \"k\" } trailing"), None);
        assert_eq!(parse_input("Cas { key: \"k\" }"), None);
        assert_eq!(parse_call("client 3 op 12: Get { key: \"3\" }"), Some((3, 12, "Get { key: \"3\" }")));
        assert_eq!(parse_return("client 3 op 12 -> Value(\"\")"), Some((3, 12, "Value(\"\")")));
    }

    #[test]
    fn a_history_is_rebuilt_in_recorded_order() {
        let lines = [
            "     0.000000s -          call     client 0 op 0: Put { key: \"k\", value: \"a\" }",
            "     0.000000s -          call     client 1 op 1: Get { key: \"k\" }",
            "     0.100000s -          return   client 0 op 0 -> Wrote { prev_len: 0, prev_digest: 0 }",
            "     0.100000s s0         note     leader in term 1",
            "     0.100000s -          return   client 1 op 1 -> Value(\"a\")",
            "     0.200000s -          call     client 0 op 2: Get { key: \"k\" }",
        ];
        let r = rebuild(&lines).unwrap();
        let ops = r.history.ops();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].call, ops[0].ret), (0, Some(2)));
        assert_eq!((ops[1].call, ops[1].ret), (1, Some(4)));
        assert!(ops[2].is_pending());
        assert_eq!(r.call_us, [0, 0, 200_000]);
        let (page, result) = page(&r, "t", &[(0, 150_000, "partition".into(), None)], "timeline.html");
        assert_eq!(result.verdict, checkers::linearizability::Verdict::Linearizable);
        assert!(page.contains(r#"<a href="timeline.html">"#));
        assert!(rebuild(&["     0.000000s -          call     client 0 op 0: Cas { key: \"k\" }"]).is_none());
        assert!(rebuild(&["     0.000000s s0         note     leader in term 1"]).is_none());
    }
}
