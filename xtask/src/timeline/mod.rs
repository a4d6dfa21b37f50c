//! `replay … --html DIR`: the timeline of a run, one self-contained page.
//!
//! A lane per node with its role and term over time (from the shells' `… in term N` notes),
//! its commit index (from `sim::detail` facts, outside the trace) and the intervals it was
//! down; an arrow per message from send to delivery, drawn differently when dropped, held by a
//! clog, duplicated or still in flight at the end; fault bands (partitions and network modes
//! across the page, disconnects, cuts and clogs on a node's lane); client operations from
//! call to return on a lane per client; and the failing check marked where it fired, with
//! the step just before it (the event that made the check fail) ringed. The page zooms (wheel,
//! drag, buttons), filters by node and by message kind, and times itself: from the first line
//! of its script to the end of its first complete drawing, written to `data-drawn-ms` on
//! `<body>`, where a headless browser reads it.
//!
//! The data come from the run's own trace lines, parsed here (their format is the trace
//! legend of ARCHITECTURE.md), collected by a `tracing` layer during the replay together
//! with the `sim::detail` facts; nothing is recomputed. For key/value runs the client history
//! is rebuilt from the trace's call and return lines ([`kv`]) and drawn on the history page,
//! linked both ways.

pub mod kv;

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// What a replay hands the timeline, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collected {
    /// A trace line, as `replay` prints it.
    Line(String),
    /// A node's commit index changed (a `sim::detail` fact).
    Commit {
        /// The node's name.
        node: String,
        /// Simulated time, nanoseconds.
        at_ns: u64,
        /// The new commit index.
        index: u64,
    },
}

/// A `tracing` layer that keeps every trace line (`sim::*` events) and every `sim::detail`
/// fact of a run, for the timeline. Install it next to (not instead of) the printing layer.
#[derive(Clone, Default)]
pub struct Collector {
    /// What was collected so far.
    pub items: Arc<Mutex<Vec<Collected>>>,
}

impl Collector {
    /// Everything collected, in order.
    pub fn take(&self) -> Vec<Collected> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    node: Option<String>,
    at_ns: Option<u64>,
    commit_index: Option<u64>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "node" => self.node = Some(format!("{value:?}")),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_string()),
            "node" => self.node = Some(value.to_string()),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "at_ns" => self.at_ns = Some(value),
            "commit_index" => self.commit_index = Some(value),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Collector {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let target = event.metadata().target();
        if !target.starts_with("sim::") {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let item = if target == "sim::detail" {
            match (f.node, f.at_ns, f.commit_index) {
                (Some(node), Some(at_ns), Some(index)) => Collected::Commit { node, at_ns, index },
                _ => return,
            }
        } else {
            match f.message {
                Some(line) => Collected::Line(line),
                None => return,
            }
        };
        self.items.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    }
}

/// One parsed trace line: `time node kind details` (ARCHITECTURE.md, trace format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// Simulated time in microseconds (the line's precision).
    pub t_us: u64,
    /// The node's name, `-` for the world (faults, tester notes, clients' calls).
    pub node: &'a str,
    /// The kind's label: `send`, `deliver`, `drop`, … (`sim::trace::Kind::label`).
    pub kind: &'a str,
    /// The rest of the line.
    pub details: &'a str,
}

/// Parses a trace line; `None` when it is not one.
pub fn parse_line(line: &str) -> Option<Event<'_>> {
    let rest = line.trim_start();
    let (time, rest) = rest.split_once(' ')?;
    let (secs, micros) = time.strip_suffix('s')?.split_once('.')?;
    if micros.len() != 6 {
        return None;
    }
    let t_us = secs.parse::<u64>().ok()?.checked_mul(1_000_000)?.checked_add(micros.parse::<u64>().ok()?)?;
    let rest = rest.trim_start();
    let (node, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start();
    let (kind, details) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Event { t_us, node, kind, details: details.trim_start() })
}

/// `#17 s2->s0 …`: message id, sender, receiver, and what follows.
fn parse_msg(details: &str) -> Option<(u64, &str, &str, &str)> {
    let rest = details.strip_prefix('#')?;
    let (id, rest) = rest.split_once(' ')?;
    let (link, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (from, to) = link.split_once("->")?;
    Some((id.parse().ok()?, from, to.trim_end_matches(':'), rest))
}

/// The value of `key=` in a space-separated detail string.
fn field<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    rest.split_whitespace().find_map(|w| w.strip_prefix(key)).map(|v| v.trim_end_matches(':'))
}

/// How a message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fate {
    /// Reached its destination.
    Delivered = 0,
    /// Lost: unreachable, request or reply lost, server died, link down, stale.
    Dropped = 1,
    /// Still in flight, or held by a clog, when the run ended.
    InFlight = 2,
}

/// Every message, column by column (compact for 100 000-event runs).
#[derive(Default, Serialize)]
pub struct Messages {
    /// Message id (`#N` in the trace).
    pub id: Vec<u64>,
    /// Sender lane.
    pub from: Vec<u32>,
    /// Receiver lane.
    pub to: Vec<u32>,
    /// Send time, µs.
    pub t0: Vec<u64>,
    /// Time from send to delivery, drop or end of run, µs.
    pub dt: Vec<u64>,
    /// [`Fate`] as a number.
    #[serde(skip)]
    pub fate: Vec<u8>,
    /// 0 request, 1 reply.
    #[serde(skip)]
    pub reply: Vec<u8>,
    /// 1 when a clog held it.
    #[serde(skip)]
    pub held: Vec<u8>,
    /// 1 for the second delivery of a duplicated request.
    #[serde(skip)]
    pub dup: Vec<u8>,
    /// For a dropped message, an index into [`Timeline::reasons`].
    #[serde(skip)]
    pub reason: Vec<u8>,
    /// What the page reads of the five columns above, packed into one number per message:
    /// `fate | reply << 2 | held << 3 | dup << 4 | reason << 5`.
    pub flags: Vec<u32>,
    /// RPC call number.
    pub call: Vec<u64>,
    /// Payload bytes (0 when the line does not say).
    pub bytes: Vec<u64>,
}

impl Messages {
    /// Packs the per-message flags the page reads ([`Messages::flags`]).
    fn pack(&mut self) {
        self.flags = (0..self.id.len())
            .map(|i| {
                u32::from(self.fate[i])
                    | u32::from(self.reply[i]) << 2
                    | u32::from(self.held[i]) << 3
                    | u32::from(self.dup[i]) << 4
                    | u32::from(self.reason[i]) << 5
            })
            .collect();
    }
}

/// Client operation texts longer than this are shortened in the middle on the timeline
/// (the history page has them whole).
const MAX_OP_TEXT: usize = 120;

fn shorten(s: &str) -> String {
    let n = s.chars().count();
    if n <= MAX_OP_TEXT {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX_OP_TEXT / 2).collect();
    let tail: String = s.chars().skip(n - MAX_OP_TEXT / 2).collect();
    format!("{head}…{tail}")
}

/// A point event on a lane (timer, persist, failed call, file operation, note, fault, exit).
#[derive(Default, Serialize)]
pub struct Ticks {
    /// Lane.
    pub lane: Vec<u32>,
    /// Time, µs.
    pub t: Vec<u64>,
    /// Index into [`Timeline::tick_kinds`].
    pub kind: Vec<u8>,
    /// The line's details.
    pub text: Vec<String>,
}

/// A labelled interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Band {
    /// The lane, or `None` for a band across the page.
    pub lane: Option<u32>,
    /// Start, µs.
    pub t0: u64,
    /// End, µs (the run's end when it never ended).
    pub t1: u64,
    /// `partition`, `unreliable`, `long_delays`, `long_reordering`, `disconnect`, `cut`,
    /// `clog`, `down`.
    pub kind: &'static str,
    /// What it was, as the trace says.
    pub label: String,
}

/// One client operation, from call to return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientOp {
    /// Lane of its client.
    pub lane: u32,
    /// Call, µs.
    pub t0: u64,
    /// Return, µs; `None` when it never returned.
    pub t1: Option<u64>,
    /// What was called.
    pub call: String,
    /// What came back.
    pub result: Option<String>,
    /// The linearizability checker could not place it (a refuted history's failing
    /// operations).
    pub failed: bool,
}

/// One lane: the world, a node, or a client of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lane {
    /// `-` shown as `world`, a node name, or `client N`.
    pub name: String,
    /// `world`, `node` or `client`.
    pub kind: &'static str,
}

/// An event shown in the failure panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Lane.
    pub lane: u32,
    /// Time, µs.
    pub t: u64,
    /// Kind label.
    pub kind: String,
    /// Details.
    pub text: String,
}

/// The failing check: where it fired, and the steps that led to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// When the check fired, µs.
    pub t: u64,
    /// The check line (`FAILED … caught by …: …`), or the outcome when the run failed
    /// without one.
    pub text: String,
    /// The last event before the check: the step that made it fail.
    pub step: Option<Step>,
    /// The events just before the check, oldest first, the step last.
    pub lead_up: Vec<Step>,
    /// Where "zoom to the failure" starts (µs): a few hundred events before the check.
    pub context_t0: u64,
}

/// Everything the page draws.
#[derive(Default, Serialize)]
pub struct Timeline {
    /// Page title.
    pub title: String,
    /// Scenario, seed, bug, outcome and parameters, one per line.
    pub header: Vec<String>,
    /// The command line that replays the run.
    pub reproduce: String,
    /// Trace events in the run.
    pub events: u64,
    /// End of the run, µs.
    pub end: u64,
    /// Lanes, top to bottom.
    pub lanes: Vec<Lane>,
    /// Messages.
    pub msgs: Messages,
    /// Drop reasons by index.
    pub reasons: Vec<String>,
    /// Point events.
    pub ticks: Ticks,
    /// Tick kinds by index.
    pub tick_kinds: Vec<&'static str>,
    /// Per lane: `[time µs, role index, term]` at each change.
    pub roles: BTreeMap<u32, Vec<(u64, u32, u64)>>,
    /// Role names by index.
    pub role_names: Vec<String>,
    /// Per lane: `[time µs, commit index]` at each change.
    pub commits: BTreeMap<u32, Vec<(u64, u64)>>,
    /// Fault bands and down intervals.
    pub bands: Vec<Band>,
    /// Client operations.
    pub ops: Vec<ClientOp>,
    /// The failing check, if the run failed.
    pub check: Option<Check>,
    /// The history page, relative to the timeline, for key/value runs.
    pub history_link: Option<String>,
}

const TICK_KINDS: [&str; 9] = ["timer", "persist", "fail", "fs", "note", "fault", "exit", "crash", "restart"];

/// Lane bookkeeping while reading the trace.
struct Lanes {
    lanes: Vec<Lane>,
    index: BTreeMap<String, u32>,
}

impl Lanes {
    fn get(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let kind = if name == "-" {
            "world"
        } else if name.starts_with("client ") {
            "client"
        } else {
            "node"
        };
        let i = self.lanes.len() as u32;
        let shown = if name == "-" { "world".to_string() } else { name.to_string() };
        self.lanes.push(Lane { name: shown, kind });
        self.index.insert(name.to_string(), i);
        i
    }
}

/// Orders names so that `s2` comes before `s10`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    (stem.to_string(), num.parse().unwrap_or(0))
}

/// What the run was, for the page's header.
pub struct RunInfo<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Seed.
    pub seed: u64,
    /// Planted bug, if any.
    pub bug: Option<&'a str>,
    /// The outcome as `run` prints it.
    pub outcome: String,
    /// Whether it passed.
    pub passed: bool,
    /// What the scenario said about itself (a swarm's drawn parameters).
    pub description: &'a [String],
    /// The line that replays it.
    pub reproduce: String,
    /// Trace events (the run's count, for the header).
    pub events: u64,
    /// End of the run, nanoseconds.
    pub end_ns: u64,
}

/// Builds the timeline of a run from what a [`Collector`] kept.
pub fn build(info: &RunInfo<'_>, collected: &[Collected]) -> Timeline {
    let mut t = Timeline {
        title: format!("{} seed {}", info.scenario, info.seed),
        reproduce: info.reproduce.clone(),
        events: info.events,
        end: info.end_ns / 1000,
        tick_kinds: TICK_KINDS.to_vec(),
        ..Timeline::default()
    };
    t.header.push(format!("scenario {} · seed {}", info.scenario, info.seed));
    if let Some(b) = info.bug {
        t.header.push(format!("planted bug: {b}"));
    }
    t.header.push(format!("outcome: {}", info.outcome));
    for d in info.description {
        t.header.push(format!("parameters: {d}"));
    }
    let lines: Vec<&str> = collected
        .iter()
        .filter_map(|c| match c {
            Collected::Line(l) => Some(l.as_str()),
            Collected::Commit { .. } => None,
        })
        .collect();
    let events: Vec<Event<'_>> = lines.iter().filter_map(|l| parse_line(l)).collect();
    // Lanes: the world first, then nodes in natural order, then the history's clients.
    let mut names: Vec<&str> = Vec::new();
    for e in &events {
        names.push(e.node);
        if let Some((_, from, to, _)) = parse_msg(e.details) {
            names.push(from);
            names.push(to);
        }
    }
    // Replicas (nodes that note a role) first, then the other nodes, each in natural order.
    let replicas: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| e.kind == "note" && e.node != "-" && e.details.contains(" in term "))
        .map(|e| e.node)
        .collect();
    let mut node_names: Vec<String> = names.iter().filter(|n| **n != "-").map(|n| n.to_string()).collect();
    node_names.sort_by_key(|n| (!replicas.contains(n.as_str()), natural_key(n)));
    node_names.dedup();
    let mut lanes = Lanes { lanes: Vec::new(), index: BTreeMap::new() };
    lanes.get("-");
    for n in &node_names {
        lanes.get(n);
    }
    let mut clients: Vec<u64> = events
        .iter()
        .filter(|e| e.kind == "call")
        .filter_map(|e| e.details.strip_prefix("client ")?.split_whitespace().next()?.parse().ok())
        .collect();
    clients.sort_unstable();
    clients.dedup();
    for c in &clients {
        lanes.get(&format!("client {c}"));
    }

    let end = t.end.max(events.last().map_or(0, |e| e.t_us));
    t.end = end;
    let mut by_id: BTreeMap<u64, usize> = BTreeMap::new();
    let mut reasons: Vec<String> = Vec::new();
    let mut role_names: Vec<String> = Vec::new();
    let mut open_ops: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    // Open bands: key → (start, label).
    let mut open: BTreeMap<(Option<u32>, &'static str, String), (u64, String)> = BTreeMap::new();
    let close_kind = |open: &mut BTreeMap<(Option<u32>, &'static str, String), (u64, String)>,
                      bands: &mut Vec<Band>,
                      lane: Option<u32>,
                      kind: &'static str,
                      key: &str,
                      at: u64| {
        if let Some((t0, label)) = open.remove(&(lane, kind, key.to_string())) {
            bands.push(Band { lane, t0, t1: at, kind, label });
        }
    };
    let mut check_at: Option<usize> = None;
    for (i, e) in events.iter().enumerate() {
        let lane = lanes.get(e.node);
        let tick = |t: &mut Timeline, kind: &str, lane: u32, text: &str| {
            let k = TICK_KINDS.iter().position(|x| *x == kind).expect("a known tick kind") as u8;
            t.ticks.lane.push(lane);
            t.ticks.t.push(e.t_us);
            t.ticks.kind.push(k);
            t.ticks.text.push(text.to_string());
        };
        match e.kind {
            "send" => {
                let Some((id, from, to, rest)) = parse_msg(e.details) else { continue };
                let (from, to) = (lanes.get(from), lanes.get(to));
                let m = &mut t.msgs;
                by_id.insert(id, m.id.len());
                m.id.push(id);
                m.from.push(from);
                m.to.push(to);
                m.t0.push(e.t_us);
                m.dt.push(end.saturating_sub(e.t_us));
                m.fate.push(Fate::InFlight as u8);
                m.reply.push(u8::from(rest.starts_with("reply")));
                m.held.push(0);
                m.dup.push(0);
                m.call.push(field(rest, "call=").and_then(|c| c.parse().ok()).unwrap_or(0));
                m.bytes.push(
                    rest.split_whitespace().find_map(|w| w.strip_suffix('B').and_then(|n| n.parse().ok())).unwrap_or(0),
                );
                m.reason.push(0);
            }
            "deliver" | "drop" => {
                let Some((id, _, _, rest)) = parse_msg(e.details) else { continue };
                let Some(&j) = by_id.get(&id) else { continue };
                let m = &mut t.msgs;
                // A second delivery of the same message: the network duplicated it.
                let j = if m.fate[j] != Fate::InFlight as u8 {
                    let k = m.id.len();
                    for v in [&mut m.id, &mut m.t0, &mut m.call, &mut m.bytes] {
                        v.push(v[j]);
                    }
                    for v in [&mut m.from, &mut m.to] {
                        v.push(v[j]);
                    }
                    for v in [&mut m.reply, &mut m.held, &mut m.reason, &mut m.fate] {
                        v.push(v[j]);
                    }
                    m.dt.push(0);
                    m.dup.push(1);
                    k
                } else {
                    j
                };
                m.dt[j] = e.t_us.saturating_sub(m.t0[j]);
                if e.kind == "deliver" {
                    m.fate[j] = Fate::Delivered as u8;
                } else {
                    m.fate[j] = Fate::Dropped as u8;
                    let why = rest.split_once(": ").map_or(rest, |(_, w)| w).to_string();
                    let r = reasons.iter().position(|x| *x == why).unwrap_or_else(|| {
                        reasons.push(why);
                        reasons.len() - 1
                    });
                    m.reason[j] = u8::try_from(r).unwrap_or(u8::MAX);
                }
            }
            "hold" => {
                if let Some(&j) = parse_msg(e.details).and_then(|(id, ..)| by_id.get(&id)) {
                    t.msgs.held[j] = 1;
                }
            }
            "release" | "dup" => {}
            "timer" | "persist" | "fail" | "fs" | "exit" => tick(&mut t, e.kind, lane, e.details),
            "crash" => {
                tick(&mut t, "crash", lane, e.details);
                open.insert((Some(lane), "down", String::new()), (e.t_us, format!("{} down", e.node)));
            }
            "restart" => {
                tick(&mut t, "restart", lane, e.details);
                close_kind(&mut open, &mut t.bands, Some(lane), "down", "", e.t_us);
            }
            "note" => {
                // `<role> in term <N>` from a replica shell: the lane's role from here on.
                let role = e.details.split_once(" in term ").and_then(|(r, term)| {
                    let term: u64 = term.trim().parse().ok()?;
                    (!r.is_empty() && !r.contains(' ')).then_some((r, term))
                });
                match role {
                    Some((r, term)) if e.node != "-" => {
                        let k = role_names.iter().position(|x| x == r).unwrap_or_else(|| {
                            role_names.push(r.to_string());
                            role_names.len() - 1
                        });
                        t.roles.entry(lane).or_default().push((e.t_us, k as u32, term));
                    }
                    _ => tick(&mut t, "note", lane, e.details),
                }
            }
            "fault" => {
                tick(&mut t, "fault", lane, e.details);
                fault_band(&mut lanes, &mut open, &mut t.bands, e.t_us, e.details);
            }
            "call" => {
                let Some((client, op, text)) = kv::parse_call(e.details) else { continue };
                let lane = lanes.get(&format!("client {client}"));
                open_ops.insert((client, op), t.ops.len());
                t.ops.push(ClientOp { lane, t0: e.t_us, t1: None, call: shorten(text), result: None, failed: false });
            }
            "return" => {
                let Some((client, op, text)) = kv::parse_return(e.details) else { continue };
                if let Some(j) = open_ops.remove(&(client, op)) {
                    t.ops[j].t1 = Some(e.t_us);
                    t.ops[j].result = Some(shorten(text));
                }
            }
            "check" if check_at.is_none() => check_at = Some(i),
            _ => {}
        }
    }
    // Bands still open run to the end.
    for ((lane, kind, _), (t0, label)) in open {
        t.bands.push(Band { lane, t0, t1: end, kind, label });
    }
    t.bands.sort_by(|a, b| (a.t0, a.lane, a.kind).cmp(&(b.t0, b.lane, b.kind)));
    for c in collected {
        if let Collected::Commit { node, at_ns, index } = c {
            let lane = lanes.get(node);
            t.commits.entry(lane).or_default().push((at_ns / 1000, *index));
        }
    }
    // The failure: the check line, and the events before it.
    if !info.passed {
        t.check = Some(match check_at {
            Some(i) => {
                let e = &events[i];
                let lead_up: Vec<Step> = events[i.saturating_sub(8)..i]
                    .iter()
                    .map(|p| Step {
                        lane: step_lane(&lanes, p),
                        t: p.t_us,
                        kind: p.kind.to_string(),
                        text: p.details.to_string(),
                    })
                    .collect();
                // The view "zoom to the failure" opens: the last few hundred events before it.
                let context_t0 = events[i.saturating_sub(CONTEXT_EVENTS)].t_us;
                // The step to ring: the last event on a node the failure names (a message
                // delivered at the instant it is sent puts the receiver's line last), else
                // the last event before the check.
                let named = named_lanes(&lanes, e.details);
                let step = events[i.saturating_sub(CONTEXT_EVENTS)..i]
                    .iter()
                    .rev()
                    .find(|p| named.contains(&step_lane(&lanes, p)))
                    .map(|p| Step {
                        lane: step_lane(&lanes, p),
                        t: p.t_us,
                        kind: p.kind.to_string(),
                        text: p.details.to_string(),
                    })
                    .or_else(|| lead_up.last().cloned());
                Check { t: e.t_us, text: e.details.to_string(), step, lead_up, context_t0 }
            }
            None => Check {
                t: end,
                text: info.outcome.clone(),
                step: None,
                lead_up: Vec::new(),
                context_t0: events[events.len().saturating_sub(CONTEXT_EVENTS)..].first().map_or(0, |e| e.t_us),
            },
        });
    }
    t.msgs.pack();
    t.lanes = lanes.lanes;
    t.reasons = reasons;
    t.role_names = role_names;
    t
}

/// The lanes a failure's text names: a lane's own name (`s2`, `ck1`, `c3`), or a checker's
/// `node N` / `nodes N and M` (server N of the cluster, `sN`; `s<gid>-N` after `group <gid>:`).
fn named_lanes(lanes: &Lanes, text: &str) -> Vec<u32> {
    let words: Vec<&str> =
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).filter(|w| !w.is_empty()).collect();
    let group = text
        .split_once("group ")
        .and_then(|(_, r)| r.split(':').next())
        .filter(|g| g.chars().all(|c| c.is_ascii_digit()));
    let mut names: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    for (k, w) in words.iter().enumerate() {
        if *w == "node" || *w == "nodes" {
            for n in words[k + 1..].iter().take(3).filter(|n| n.chars().all(|c| c.is_ascii_digit())) {
                names.push(match group {
                    Some(g) => format!("s{g}-{n}"),
                    None => format!("s{n}"),
                });
            }
        }
    }
    let mut out: Vec<u32> = names.iter().filter_map(|n| lanes.index.get(n.as_str()).copied()).collect();
    out.retain(|&l| l != 0);
    out
}

/// For a refuted history, whose check fires when the run ends: rings the first operation the
/// checker could not place (its return, or its call if it never returned) and starts "zoom to
/// the failure" at its call, so the page shows the operation, not the run's last events.
/// Nothing changes when no operation is marked failed or the run has no failing check.
pub fn point_at_failing_op(t: &mut Timeline) {
    let (Some(check), Some(op)) = (t.check.as_mut(), t.ops.iter().find(|o| o.failed)) else { return };
    let (at, kind, text) = match (&op.t1, &op.result) {
        (Some(t1), Some(result)) => (*t1, "return", format!("{} -> {result}", op.call)),
        _ => (op.t0, "call", op.call.clone()),
    };
    check.step = Some(Step { lane: op.lane, t: at, kind: kind.to_string(), text });
    check.context_t0 = check.context_t0.min(op.t0.saturating_sub(1_000));
}

/// Events before the failing check that "zoom to the failure" shows.
const CONTEXT_EVENTS: usize = 300;

/// The lane an event is drawn on: a client's call or return on its client's lane, anything
/// else on its node's.
fn step_lane(lanes: &Lanes, e: &Event<'_>) -> u32 {
    let client = match e.kind {
        "call" => kv::parse_call(e.details).map(|c| c.0),
        "return" => kv::parse_return(e.details).map(|c| c.0),
        _ => None,
    };
    client
        .and_then(|c| lanes.index.get(&format!("client {c}")))
        .or_else(|| lanes.index.get(e.node))
        .copied()
        .unwrap_or(0)
}

/// Opens or closes the band a fault line starts or ends.
fn fault_band(
    lanes: &mut Lanes,
    open: &mut BTreeMap<(Option<u32>, &'static str, String), (u64, String)>,
    bands: &mut Vec<Band>,
    at: u64,
    text: &str,
) {
    let mut close = |open: &mut BTreeMap<(Option<u32>, &'static str, String), (u64, String)>,
                     lane: Option<u32>,
                     kind: &'static str,
                     key: &str| {
        if let Some((t0, label)) = open.remove(&(lane, kind, key.to_string())) {
            bands.push(Band { lane, t0, t1: at, kind, label });
        }
    };
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    match word {
        "partition" => {
            close(open, None, "partition", "");
            open.insert((None, "partition", String::new()), (at, text.to_string()));
        }
        "heal" => close(open, None, "partition", ""),
        "disconnect" => {
            let lane = lanes.get(rest.trim());
            open.insert((Some(lane), "disconnect", String::new()), (at, text.to_string()));
        }
        "connect" => {
            let lane = lanes.get(rest.trim());
            close(open, Some(lane), "disconnect", "");
        }
        "cut" | "clog" => {
            if let Some((a, b)) = rest.trim().split_once("->") {
                let lane = lanes.get(a);
                open.insert(
                    (Some(lane), if word == "cut" { "cut" } else { "clog" }, b.to_string()),
                    (at, text.to_string()),
                );
            }
        }
        "uncut" | "release" => {
            if rest.trim() == "all clogs" {
                let keys: Vec<_> = open.keys().filter(|k| k.1 == "clog").cloned().collect();
                for k in keys {
                    close(open, k.0, "clog", &k.2);
                }
            } else if let Some((a, b)) = rest.trim().split_once("->") {
                let lane = lanes.get(a);
                close(open, Some(lane), if word == "uncut" { "cut" } else { "clog" }, b);
            }
        }
        _ => {
            // Network modes, one a line (`reliable=false`, `long_delays=true`,
            // `long_reordering=true`: the Raft tester's) or all in one (`network config
            // reliable=false long_delays=false …`: the key/value, sharded and swarm testers').
            let settings = match text.strip_prefix("network config ") {
                Some(all) => all.split_whitespace().collect(),
                None => vec![text],
            };
            for setting in settings {
                for (key, kind, on) in [
                    ("reliable=", "unreliable", "false"),
                    ("long_delays=", "long_delays", "true"),
                    ("long_reordering=", "long_reordering", "true"),
                ] {
                    if let Some(v) = setting.strip_prefix(key) {
                        let active = open.contains_key(&(None, kind, String::new()));
                        if v == on && !active {
                            let label = if kind == "unreliable" {
                                "unreliable network".to_string()
                            } else {
                                setting.to_string()
                            };
                            open.insert((None, kind, String::new()), (at, label));
                        } else if v != on {
                            close(open, None, kind, "");
                        }
                    }
                }
            }
        }
    }
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page: markup, style, the data as JSON and the script that draws it.
pub fn render(t: &Timeline) -> String {
    // `<` only occurs inside JSON strings: escaping it keeps `</script>` in a trace line
    // from closing the data element.
    let data = serde_json::to_string(t).expect("the timeline encodes").replace('<', "\\u003c");
    let history = t
        .history_link
        .as_ref()
        .map(|h| format!(r#" · <a id="history-link" href="{}">client history and linearizability →</a>"#, escape(h)))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} — timeline</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<div id="meta"></div>
<div class="links">timeline of one run{history}</div>
</header>
<section id="failure" hidden></section>
<nav id="controls"></nav>
<div id="inspector">Hover over a message, operation or mark for its details. Wheel: zoom · drag: pan · <kbd>g</kbd>: go to the failure · <kbd>f</kbd>: fit the run.</div>
<div id="stage"><canvas id="canvas"></canvas></div>
<footer id="legend"></footer>
<script type="application/json" id="timeline-data">{data}</script>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        title = escape(&t.title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(passed: bool) -> RunInfo<'static> {
        RunInfo {
            scenario: "raft::x",
            seed: 3,
            bug: None,
            outcome: if passed { "pass".into() } else { "safety violation".into() },
            passed,
            description: &[],
            reproduce: "cargo xtask replay raft::x --seed 3".into(),
            events: 0,
            end_ns: 0,
        }
    }

    fn lines(text: &str) -> Vec<Collected> {
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| Collected::Line(l.to_string())).collect()
    }

    #[test]
    fn lines_parse_as_the_legend_says() {
        let e = parse_line("     1.250013s s2         send     #17 s2->s0 req call=9 40B h=3f2a9c1e").unwrap();
        assert_eq!(
            e,
            Event { t_us: 1_250_013, node: "s2", kind: "send", details: "#17 s2->s0 req call=9 40B h=3f2a9c1e" }
        );
        assert_eq!(parse_msg(e.details), Some((17, "s2", "s0", "req call=9 40B h=3f2a9c1e")));
        assert_eq!(parse_line("  12.000000s -          timer    wakeup").unwrap().node, "-");
        assert!(parse_line("not a line").is_none());
        assert!(parse_line("1.25s s0 send x").is_none(), "microseconds, six digits");
        assert_eq!(field("req call=9 40B", "call="), Some("9"));
    }

    #[test]
    fn the_ringed_step_is_on_the_node_the_failure_names() {
        // The last line before the check is s1's delivery of s0's message, sent at that
        // instant; the failure is about node 0, so s0's send is the step.
        let trace = "
     0.100000s s0         note     leader in term 1
     0.200000s s0         send     #1 s0->s1 req call=1 6B h=abed551a
     0.200000s s1         deliver  #1 s0->s1 req call=1
     0.200000s -          check    FAILED safety violation caught by log-matching: node 0 holds (index 3, term 1) with different entries
";
        let t = build(&info(false), &lines(trace));
        let step = t.check.as_ref().unwrap().step.as_ref().unwrap();
        assert_eq!((step.lane, step.kind.as_str()), (1, "send"), "{step:?}");
        // In a sharded run, `group 101: nodes 2 and 1` names s101-2 and s101-1.
        let trace = "
     0.100000s s101-1     note     leader in term 1
     0.200000s s100-0     note     leader in term 1
     0.200000s -          check    FAILED safety violation caught by state-machine-safety: group 101: nodes 2 and 1 applied different commands at index 4
";
        let t = build(&info(false), &lines(trace));
        let step = t.check.as_ref().unwrap().step.as_ref().unwrap();
        assert_eq!(t.lanes[step.lane as usize].name, "s101-1");
    }

    #[test]
    fn a_refuted_history_rings_its_failing_operation() {
        let trace = "
     0.100000s -          call     client 0 op 0: Get { key: \"k\" }
     0.150000s -          return   client 0 op 0 -> Value(\"x\")
     9.000000s s0         note     leader in term 1
     9.500000s -          check    FAILED safety violation caught by linearizability: history of 1 operation is not linearizable
";
        let mut t = build(&info(false), &lines(trace));
        assert_eq!(t.check.as_ref().unwrap().step.as_ref().unwrap().kind, "note", "before: the last event");
        t.ops[0].failed = true;
        point_at_failing_op(&mut t);
        let check = t.check.as_ref().unwrap();
        let step = check.step.as_ref().unwrap();
        assert_eq!((step.t, step.kind.as_str()), (150_000, "return"));
        assert_eq!(t.lanes[step.lane as usize].name, "client 0");
        assert_eq!(check.context_t0, 99_000, "the zoom starts at the operation's call");
    }

    #[test]
    fn the_key_value_testers_one_line_network_config_draws_its_bands() {
        // Before, only the Raft tester's one-setting lines drew bands: an unreliable kvraft
        // run looked reliable.
        let trace = "
     0.000000s -          fault    network config reliable=false long_delays=false long_reordering=true request_delay_ms_max=26 request_loss_permille=100 reply_loss_permille=100 duplicate_permille=0
     0.100000s s0         note     leader in term 1
     0.200000s -          fault    network config reliable=true long_delays=false long_reordering=true request_delay_ms_max=26 request_loss_permille=100 reply_loss_permille=100 duplicate_permille=0
     0.300000s s0         note     leader in term 1
";
        let t = build(&info(true), &lines(trace));
        let mut kinds: Vec<(&str, u64, u64)> = t.bands.iter().map(|b| (b.kind, b.t0, b.t1)).collect();
        kinds.sort();
        assert_eq!(kinds, [("long_reordering", 0, 300_000), ("unreliable", 0, 200_000)]);
    }

    #[test]
    fn messages_roles_faults_and_the_failure() {
        let trace = "
     0.000000s -          fault    reliable=false
     0.100000s s0         send     #1 s0->s1 req call=1 6B h=abed551a
     0.100000s s0         send     #2 s0->s2 req call=2 6B h=abed551a
     0.100000s s0         drop     #2 s0->s2 call=2: request lost
     0.100000s s0         note     candidate in term 1
     0.110000s s1         deliver  #1 s0->s1 req call=1
     0.110000s s1         send     #3 s1->s0 reply call=1 5B h=c270075f
     0.120000s -          fault    partition {s0} | {s1,s2}
     0.130000s s0         deliver  #3 s1->s0 reply call=1
     0.130000s s0         note     leader in term 1
     0.140000s s2         crash    incarnation 0 ended (killed)
     0.150000s -          fault    heal {s0,s1,s2}
     0.160000s s1         send     #4 s1->s0 req call=5 9B h=00000000
     0.170000s -          fault    clog s1->s0
     0.170000s s1         hold     #4 s1->s0 call=5 held by clog
     0.200000s -          call     client 0 op 0: Get { key: \"k\" }
     0.210000s s0         note     leader in term 1
     0.210000s -          check    FAILED safety violation caught by election-safety: two leaders
";
        let mut c = lines(trace);
        c.push(Collected::Commit { node: "s0".into(), at_ns: 130_000_000, index: 4 });
        let t = build(&info(false), &c);
        let names: Vec<&str> = t.lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["world", "s0", "s1", "s2", "client 0"]);
        assert_eq!(t.msgs.id, [1, 2, 3, 4]);
        assert_eq!(
            t.msgs.fate,
            [Fate::Delivered as u8, Fate::Dropped as u8, Fate::Delivered as u8, Fate::InFlight as u8]
        );
        assert_eq!(t.msgs.dt[0], 10_000);
        assert_eq!(t.msgs.reply, [0, 0, 1, 0]);
        assert_eq!(t.msgs.held, [0, 0, 0, 1]);
        assert_eq!(t.reasons, ["request lost"]);
        assert_eq!(t.msgs.bytes, [6, 6, 5, 9]);
        assert_eq!(t.role_names, ["candidate", "leader"]);
        assert_eq!(t.roles[&1], [(100_000, 0, 1), (130_000, 1, 1), (210_000, 1, 1)]);
        assert_eq!(t.commits[&1], [(130_000, 4)]);
        let kinds: Vec<(&str, Option<u32>, u64, u64)> = t.bands.iter().map(|b| (b.kind, b.lane, b.t0, b.t1)).collect();
        assert_eq!(
            kinds,
            [
                ("unreliable", None, 0, 210_000),
                ("partition", None, 120_000, 150_000),
                ("down", Some(3), 140_000, 210_000),
                ("clog", Some(2), 170_000, 210_000)
            ]
        );
        assert_eq!(t.ops.len(), 1);
        assert_eq!(t.ops[0].t1, None, "never returned");
        let check = t.check.as_ref().unwrap();
        assert_eq!(check.t, 210_000);
        assert!(check.text.contains("election-safety"));
        let step = check.step.as_ref().unwrap();
        assert_eq!((step.lane, step.kind.as_str(), step.text.as_str()), (1, "note", "leader in term 1"));
        assert_eq!(check.lead_up.len(), 8);
        assert!(build(&info(true), &c).check.is_none(), "a passing run marks nothing");
    }

    #[test]
    fn duplicated_deliveries_are_their_own_arrows() {
        let trace = "
     0.100000s c0         send     #1 c0->s1 req call=1 6B h=abed551a
     0.100000s c0         dup      #1 c0->s1 call=1 +3ms
     0.110000s s1         deliver  #1 c0->s1 req call=1
     0.113000s s1         deliver  #1 c0->s1 req call=1
";
        let t = build(&info(true), &lines(trace));
        assert_eq!(t.msgs.id, [1, 1]);
        assert_eq!(t.msgs.dup, [0, 1]);
        assert_eq!(t.msgs.dt, [10_000, 13_000]);
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_the_trace() {
        let trace = "     0.200000s -          call     client 0 op 0: Put { key: \"</script><b>\", value: \"\" }\n";
        let t = build(&info(true), &lines(trace));
        let page = render(&t);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("</script><b>"), "trace text cannot close the data element");
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "no outside resource");
        let open = r#"<script type="application/json" id="timeline-data">"#;
        let start = page.find(open).unwrap() + open.len();
        let len = page[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&page[start..start + len]).unwrap();
        assert_eq!(data["ops"][0]["call"], r#"Put { key: "</script><b>", value: "" }"#);
    }
}
