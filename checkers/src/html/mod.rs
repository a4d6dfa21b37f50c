//! A self-contained HTML page for a checked history.
//!
//! One row per client, time left to right, each operation a box with its call and return
//! times, description and metadata; for every partition its witness, or its partial
//! linearizations (a refuted partition's, and what the search of an unfinished one had
//! found), drawn over it with the model state after each step; the operations that could
//! not be linearized marked, with a link that jumps to the first; optional annotation
//! bands (crashes, partitions, leader changes), coloured as asked, so that a failing
//! simulated run can be read at a glance.
//!
//! The page embeds its data as JSON (`<script type="application/json" id="history-data">`)
//! and draws it with a small script written here; it needs no network. The horizontal axis
//! is event order, not wall time: every call and return gets its own column (calls before
//! returns at equal times, as the checker orders them), so overlaps are exactly those the
//! checker sees, and dense bursts stay readable. Huge histories are capped (a window of
//! operations around the first failure, shortened descriptions, a limit on drawn steps),
//! and the page says so.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::linearizability::{replay, CheckResult, History, Model, PartitionOutcome, Time, UnknownReason};

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// A labelled time span drawn as a band: a crash, a network partition, a leader's term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// Start time, in the history's time unit.
    pub start: Time,
    /// End time (at least `start`; equal for an instant).
    pub end: Time,
    /// What happened, shown on the band.
    pub label: String,
    /// A named row to draw the band in (e.g. `"server 2"`); rows named here are drawn
    /// above the client rows, in order of first appearance. `None`: a band in the shared
    /// annotation row, shaded across every client row.
    pub row: Option<String>,
    /// More text, shown when the pointer rests on the band.
    pub details: Option<String>,
    /// The band's colour, as a CSS colour (`#rgb`, `#rrggbb` or a colour name); `None`
    /// picks one from the label's first word. Anything else is ignored (it would not be a
    /// colour).
    pub background: Option<String>,
    /// The colour of the band's text, likewise (`None`: dark).
    pub text_colour: Option<String>,
}

impl Annotation {
    /// A band across the whole page.
    pub fn new(start: Time, end: Time, label: impl Into<String>) -> Self {
        Annotation {
            start,
            end: end.max(start),
            label: label.into(),
            row: None,
            details: None,
            background: None,
            text_colour: None,
        }
    }

    /// The same band, in the named row.
    pub fn in_row(mut self, row: impl Into<String>) -> Self {
        self.row = Some(row.into());
        self
    }

    /// The same band, with more text shown when the pointer rests on it.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The same band, drawn in `background` with text in `text` (CSS colours; see
    /// [`Annotation::background`]).
    pub fn coloured(mut self, background: impl Into<String>, text: impl Into<String>) -> Self {
        self.background = Some(background.into());
        self.text_colour = Some(text.into());
        self
    }
}

/// `colour` when it is a CSS colour this page accepts (`#rgb`, `#rrggbb`, or a name of
/// letters), so that nothing else reaches a style attribute.
fn css_colour(colour: &Option<String>) -> Option<String> {
    let c = colour.as_deref()?.trim();
    let hex =
        c.strip_prefix('#').is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.chars().all(|x| x.is_ascii_hexdigit()));
    let name = !c.is_empty() && c.len() <= 30 && c.chars().all(|x| x.is_ascii_alphabetic());
    (hex || name).then(|| c.to_string())
}

/// Size limits and title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtmlOptions {
    /// Shown in the page's title and header.
    pub title: String,
    /// At most this many operations are drawn (a window in call order, centred on the
    /// first failing operation when there is one).
    pub max_ops: usize,
    /// At most this many linearization steps are embedded over all drawn linearizations.
    pub max_steps: usize,
    /// Operation and state descriptions longer than this are shortened in the middle.
    pub max_text: usize,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions { title: "history".into(), max_ops: 10_000, max_steps: 60_000, max_text: 160 }
    }
}

/// Data for one row of the page.
#[derive(Serialize)]
struct RowData {
    label: String,
    /// `client` or `annotation`.
    kind: &'static str,
}

/// Data for one operation box.
#[derive(Serialize)]
struct OpData {
    /// Index in the history.
    id: usize,
    client: u64,
    row: usize,
    /// Column span: the box covers `[x0, x1)`.
    x0: f64,
    x1: f64,
    call: Time,
    ret: Option<Time>,
    text: String,
    /// The operation's metadata, if any.
    meta: Option<String>,
    part: usize,
    /// `ok` (in the witness), `failed` (could not be linearized), `partial` (in some
    /// partial linearization), `unlinearized` (in none), `unexplained` (refuted partition
    /// without an explanation), `unchecked` (partition not searched to the end and in no
    /// prefix its search found).
    status: &'static str,
    /// Index in its partition's `lins` of the longest linearization containing it.
    lin: Option<usize>,
}

#[derive(Serialize)]
struct StepData {
    op: usize,
    /// Column of the linearization point.
    x: f64,
    state: String,
}

#[derive(Serialize)]
struct LinData {
    /// Operations in the full linearization (some may be outside the drawn window).
    len: usize,
    steps: Vec<StepData>,
    /// Operations real time allows next but the model rejects (drawn ones only).
    blocked: Vec<usize>,
    /// State the linearization ends in.
    end_state: String,
}

#[derive(Serialize)]
struct PartData {
    label: String,
    outcome: &'static str,
    steps: u64,
    ops: usize,
    lins: Vec<LinData>,
}

#[derive(Serialize)]
struct AnnData {
    row: usize,
    x0: f64,
    x1: f64,
    start: Time,
    end: Time,
    label: String,
    details: Option<String>,
    background: Option<String>,
    text_colour: Option<String>,
    /// Shaded across the client rows too.
    wide: bool,
}

#[derive(Serialize)]
struct PageData {
    title: String,
    verdict: &'static str,
    summary: String,
    notes: Vec<String>,
    capped: bool,
    total_ops: usize,
    columns: f64,
    rows: Vec<RowData>,
    ops: Vec<OpData>,
    partitions: Vec<PartData>,
    annotations: Vec<AnnData>,
    /// The linearization shown first: (partition, index in its `lins`).
    initial: Option<(usize, usize)>,
    /// The first operation (in call order) that could not be linearized, if drawn.
    first_failure: Option<usize>,
}

/// Shortens `s` to about `max` characters by cutting out its middle (the end of a KV value
/// is usually what differs).
fn shorten(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let head = max / 3;
    let tail = max.saturating_sub(head + 1);
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A linearization to draw: its order and the operations blocked after it.
type Candidate<'a> = (&'a [usize], &'a [usize]);

/// Column positions of times, given the drawn events.
struct Axis {
    /// Times of timed events in column order.
    times: Vec<Time>,
}

impl Axis {
    /// Column where a band starting at `t` begins: before every event at or after `t`.
    fn start(&self, t: Time) -> f64 {
        self.times.partition_point(|&e| e < t) as f64
    }

    /// Column where a band ending at `t` ends: after every event at or before `t`.
    fn end(&self, t: Time) -> f64 {
        self.times.partition_point(|&e| e <= t) as f64
    }
}

/// Renders the page for `history` checked against `model` with outcome `result`.
pub fn render<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult,
    annotations: &[Annotation],
    options: &HtmlOptions,
) -> String {
    let data = page_data(model, history, result, annotations, options);
    // `<` never occurs in JSON outside strings, so escaping it there keeps `</script>`
    // and `<!--` out of the embedded data without changing what it parses to.
    let json = serde_json::to_string(&data).expect("page data serializes").replace('<', "\\u003c");
    let title = escape(&options.title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}: {verdict}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This page draws the history with JavaScript; the data is in the \
         history-data script element.</noscript>\n\
         <div id=\"app\"></div>\n\
         <script type=\"application/json\" id=\"history-data\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        verdict = data.verdict,
    )
}

fn page_data<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult,
    annotations: &[Annotation],
    options: &HtmlOptions,
) -> PageData {
    let ops = history.ops();
    let mut notes = Vec::new();

    // Which partition each operation is in, and what the search said about it.
    let mut part_of = vec![usize::MAX; ops.len()];
    for (p, report) in result.partitions.iter().enumerate() {
        for &i in &report.ops {
            part_of[i] = p;
        }
    }
    let failing: Vec<usize> = result.failing_ops();

    // The drawn window: a run of operations in call order.
    let mut by_call: Vec<usize> = (0..ops.len()).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let capped = ops.len() > options.max_ops;
    let shown: Vec<usize> = if capped {
        let focus = failing.iter().filter_map(|f| by_call.iter().position(|i| i == f)).min().unwrap_or(0);
        let start = focus.saturating_sub(options.max_ops / 2).min(ops.len() - options.max_ops);
        let window = &by_call[start..start + options.max_ops];
        notes.push(format!(
            "Capped: showing {} of {} operations (calls {} to {}){}.",
            options.max_ops,
            ops.len(),
            ops[window[0]].call,
            ops[window[window.len() - 1]].call,
            if failing.is_empty() { "" } else { ", around the first that could not be linearized" }
        ));
        let mut w = window.to_vec();
        w.sort_unstable();
        w
    } else {
        (0..ops.len()).collect()
    };
    let mut is_shown = vec![false; ops.len()];
    for &i in &shown {
        is_shown[i] = true;
    }

    // Columns: one per call and per timed return of the drawn operations.
    let mut events: Vec<(Time, bool, usize)> = Vec::with_capacity(2 * shown.len());
    for &i in &shown {
        events.push((ops[i].call, false, i));
        if let Some(ret) = ops[i].ret {
            events.push((ret, true, i));
        }
    }
    events.sort_unstable();
    let mut call_col = vec![0.0; ops.len()];
    let mut ret_col = vec![0.0; ops.len()];
    for (k, &(_, is_ret, i)) in events.iter().enumerate() {
        if is_ret {
            ret_col[i] = k as f64;
        } else {
            call_col[i] = k as f64;
        }
    }
    let pending_col = events.len() as f64 + 1.0;
    for &i in &shown {
        if ops[i].ret.is_none() {
            ret_col[i] = pending_col;
        }
    }
    let axis = Axis { times: events.iter().map(|e| e.0).collect() };

    // Rows: annotation rows (the shared one first, if used), then one per client.
    let mut rows = Vec::new();
    let mut named: BTreeMap<&str, usize> = BTreeMap::new();
    let shared_row = annotations.iter().any(|a| a.row.is_none()).then(|| {
        rows.push(RowData { label: "events".into(), kind: "annotation" });
        0
    });
    for a in annotations {
        if let Some(name) = &a.row {
            if !named.contains_key(name.as_str()) {
                named.insert(name, rows.len());
                rows.push(RowData { label: name.clone(), kind: "annotation" });
            }
        }
    }
    let mut client_row: BTreeMap<u64, usize> = BTreeMap::new();
    for client in history.clients() {
        client_row.insert(client, rows.len());
        rows.push(RowData { label: format!("client {client}"), kind: "client" });
    }
    let annotations_data: Vec<AnnData> = annotations
        .iter()
        .map(|a| {
            let x0 = axis.start(a.start);
            let x1 = axis.end(a.end.max(a.start)).max(x0 + 0.5);
            AnnData {
                row: match &a.row {
                    Some(name) => named[name.as_str()],
                    None => shared_row.expect("a shared row exists when an annotation needs it"),
                },
                x0,
                x1,
                start: a.start,
                end: a.end,
                label: shorten(&a.label, options.max_text),
                details: a.details.as_ref().map(|d| shorten(d, 4 * options.max_text)),
                background: css_colour(&a.background),
                text_colour: css_colour(&a.text_colour),
                wide: a.row.is_none(),
            }
        })
        .collect();

    // Linearizations to draw, per partition, within the step limit.
    let mut steps_left = options.max_steps;
    let mut dropped_lins = 0usize;
    let mut lin_of_op: Vec<Option<usize>> = vec![None; ops.len()];
    let mut partitions = Vec::with_capacity(result.partitions.len());
    for report in &result.partitions {
        let mut lins = Vec::new();
        let (outcome, candidates): (&'static str, Vec<Candidate<'_>>) = match &report.outcome {
            PartitionOutcome::Linearizable { order } => ("linearizable", vec![(order.as_slice(), &[][..])]),
            PartitionOutcome::NotLinearizable { explanation: Some(e) } => {
                ("not linearizable", e.prefixes.iter().map(|l| (l.order.as_slice(), l.blocked.as_slice())).collect())
            }
            PartitionOutcome::NotLinearizable { explanation: None } => ("not linearizable", Vec::new()),
            PartitionOutcome::Unfinished { explanation: Some(e), .. } => {
                ("unfinished", e.prefixes.iter().map(|l| (l.order.as_slice(), l.blocked.as_slice())).collect())
            }
            PartitionOutcome::Unfinished { explanation: None, .. } => ("unfinished", Vec::new()),
        };
        let mut index_of_candidate = vec![None; candidates.len()];
        for (c, (order, blocked)) in candidates.iter().enumerate() {
            let drawn = order.iter().filter(|&&i| is_shown[i]).count();
            if drawn > steps_left || (drawn == 0 && blocked.iter().all(|&i| !is_shown[i])) {
                dropped_lins += 1;
                continue;
            }
            steps_left -= drawn;
            let states = replay(model, history, order).expect("the checker's linearizations replay");
            let mut x = f64::MIN;
            let mut steps = Vec::with_capacity(drawn);
            for (&i, state) in order.iter().zip(&states) {
                if !is_shown[i] {
                    continue;
                }
                x = (call_col[i] + 0.5).max(x + 0.3).min(ret_col[i] + 0.75);
                steps.push(StepData { op: i, x, state: shorten(&model.describe_state(state), options.max_text) });
            }
            let end_state = states.last().cloned().unwrap_or_else(|| model.init());
            index_of_candidate[c] = Some(lins.len());
            lins.push(LinData {
                len: order.len(),
                steps,
                blocked: blocked.iter().copied().filter(|&i| is_shown[i]).collect(),
                end_state: shorten(&model.describe_state(&end_state), options.max_text),
            });
        }
        // Each operation points at the longest drawn linearization containing it.
        match &report.outcome {
            PartitionOutcome::Linearizable { .. } if !lins.is_empty() => {
                for &i in &report.ops {
                    lin_of_op[i] = Some(0);
                }
            }
            PartitionOutcome::NotLinearizable { explanation: Some(e) }
            | PartitionOutcome::Unfinished { explanation: Some(e), .. } => {
                for (k, &i) in report.ops.iter().enumerate() {
                    lin_of_op[i] = e.longest[k].and_then(|c| index_of_candidate[c]);
                }
            }
            _ => {}
        }
        partitions.push(PartData {
            label: report.label.clone(),
            outcome,
            steps: report.steps,
            ops: report.ops.len(),
            lins,
        });
    }
    // Shown first: the first refuted partition's longest prefix, else the first witness.
    let initial = partitions
        .iter()
        .position(|p: &PartData| p.outcome == "not linearizable" && !p.lins.is_empty())
        .or_else(|| partitions.iter().position(|p| !p.lins.is_empty()))
        .map(|p| (p, 0));
    if dropped_lins > 0 {
        notes.push(format!(
            "Capped: {dropped_lins} partial linearization(s) not drawn (limit {} steps).",
            options.max_steps
        ));
    }

    let first_failure = failing.iter().copied().filter(|&i| is_shown[i]).min_by_key(|&i| (ops[i].call, i));
    let ops_data: Vec<OpData> = shown
        .iter()
        .map(|&i| {
            let op = &ops[i];
            let p = part_of[i];
            let status = match &result.partitions[p].outcome {
                PartitionOutcome::Linearizable { .. } => "ok",
                PartitionOutcome::NotLinearizable { explanation: None } => "unexplained",
                PartitionOutcome::NotLinearizable { explanation: Some(e) } => {
                    let k = result.partitions[p].ops.binary_search(&i).expect("op in its partition");
                    if failing.binary_search(&i).is_ok() {
                        "failed"
                    } else if e.longest[k].is_some() {
                        "partial"
                    } else {
                        "unlinearized"
                    }
                }
                PartitionOutcome::Unfinished { explanation, .. } => {
                    let k = result.partitions[p].ops.binary_search(&i).expect("op in its partition");
                    if explanation.as_ref().is_some_and(|e| e.longest[k].is_some()) {
                        "partial"
                    } else {
                        "unchecked"
                    }
                }
            };
            OpData {
                id: i,
                client: op.client,
                row: client_row[&op.client],
                x0: call_col[i],
                x1: ret_col[i] + 1.0,
                call: op.call,
                ret: op.ret,
                text: shorten(&model.describe_operation(&op.input, op.output.as_ref()), options.max_text),
                meta: op.metadata.as_ref().map(|m| shorten(m, 2 * options.max_text)),
                part: p,
                status,
                lin: lin_of_op[i],
            }
        })
        .collect();

    match result.unknown_reason {
        Some(UnknownReason::BudgetExhausted) => {
            notes.push(format!("The step budget ({}) ran out before a verdict.", result.budget))
        }
        Some(UnknownReason::Stopped) => notes.push("The check was stopped before a verdict.".into()),
        Some(UnknownReason::MemoryExhausted) => notes.push("The memory budget ran out before a verdict.".into()),
        Some(UnknownReason::ClientOrderAcrossPartitions) => notes.push(
            "Every partition is linearizable on its own, but their witnesses could not be merged in an order that keeps each client's order.".into(),
        ),
        None => {}
    }
    let unfinished =
        result.partitions.iter().filter(|p| matches!(p.outcome, PartitionOutcome::Unfinished { .. })).count();
    if unfinished > 0 {
        notes.push(format!(
            "{unfinished} partition(s) were not searched to the end; their partial linearizations are what the search had found."
        ));
    }
    let out_of_memory = result
        .partitions
        .iter()
        .filter(|p| matches!(p.outcome, PartitionOutcome::Unfinished { out_of_memory: true, .. }))
        .count();
    if out_of_memory > 0 {
        notes.push(format!("{out_of_memory} partition(s) stopped at the memory budget."));
    }
    let summary = format!(
        "{} operations, {} clients, {} partition(s), {} search steps",
        ops.len(),
        history.clients().len(),
        result.partitions.len(),
        result.steps
    );
    PageData {
        title: options.title.clone(),
        verdict: result.verdict.as_str(),
        summary,
        notes,
        capped,
        total_ops: ops.len(),
        columns: pending_col + 1.0,
        rows,
        ops: ops_data,
        partitions,
        annotations: annotations_data,
        initial,
        first_failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening_keeps_both_ends() {
        assert_eq!(shorten("abcdef", 10), "abcdef");
        let s = shorten(&"a".repeat(50).chars().chain("XYZ".chars()).collect::<String>(), 12);
        assert!(s.ends_with("XYZ") && s.contains('…') && s.chars().count() <= 12, "{s}");
        assert_eq!(escape("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }

    #[test]
    fn axis_places_bands_around_events() {
        let axis = Axis { times: vec![1, 3, 3, 7] };
        assert_eq!(axis.start(3), 1.0);
        assert_eq!(axis.end(3), 3.0);
        assert_eq!(axis.start(0), 0.0);
        assert_eq!(axis.end(9), 4.0);
    }
}
