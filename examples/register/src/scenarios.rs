//! The register's two scenarios. Each makes a chain of three servers and four clients on
//! simlab's simulated world, lets the clients read and write concurrently — every call and
//! return recorded with its simulated time — and judges the run: the chain invariant after
//! every server step, every client's operations completing within a bound, and the whole
//! history linearizable against [`RegisterModel`].

use crate::checker::{ChainChecker, RegisterInput, RegisterModel, RegisterOutput};
use crate::server::{self, Mistake, Request, Response};
use checkers::html::{render, Annotation, HtmlOptions};
use checkers::linearizability::{check, CheckOptions, Verdict};
use rand::Rng;
use scenarios::registry::{Family, Opts, Scenario};
use sim::history::Recorder;
use sim::{net, Failure, NodeId};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Servers in the chain: head, middle, tail.
const SERVERS: usize = 3;
/// Concurrent clients.
const CLIENTS: u64 = 4;
/// A client gives up waiting for one attempt after this long and tries again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// Search steps the linearizability check may take; an undecided history fails the run.
const CHECK_BUDGET: u64 = 2_000_000;

/// The family `register`: both scenarios and the planted mistakes.
pub fn family() -> Family {
    Family::new("register")
        .with_bugs(Mistake::ALL.iter().map(|(_, name, what)| (*name, *what)))
        .with_scenario(Scenario::new(
            "register::basic",
            "3-server chain, 4 clients x 50 reads and writes, 1-5 ms per hop: linearizable, chain invariant",
            Duration::from_secs(60),
            |o| Box::pin(basic(o)),
        ))
        .with_scenario(Scenario::new(
            "register::lossy",
            "as basic on a lossy network (10 % loss each way, duplicates, 1-10 ms per hop) with servers cut off for a while: every operation completes, linearizable",
            Duration::from_secs(120),
            |o| Box::pin(lossy(o)),
        ))
}

/// Goal: with a working network, concurrent reads and writes are linearizable. Steps: start
/// the chain; four clients each make 50 operations, half writes of unique values, half
/// reads, a few milliseconds apart; wait for all; check the history.
/// Traps: a head that answers writes before the tail holds them (`ack-before-tail`).
async fn basic(opts: Opts) -> Result<(), Failure> {
    net::set_config(sim::NetConfig { hop_delay_ms_min: 1, hop_delay_ms_max: 5, ..sim::NetConfig::default() });
    sim::describe(format!("{SERVERS} servers, {CLIENTS} clients x 50 operations, 1-5 ms per hop"));
    let chain = start_chain(&opts)?;
    run_clients(&chain, 50, Duration::from_secs(30)).await
}

/// Goal: lost, duplicated and delayed messages and unreachable servers cost time, never
/// correctness. Steps: start the chain on a lossy network; while the clients run, every
/// 0.3-1 s cut one server off for 0.1-0.6 s; four clients each make 40 operations, retrying
/// calls that fail or take longer than 500 ms; every operation must complete within 60 s;
/// check the history.
/// Traps: applying resent or late updates without looking at their version
/// (`no-version-check`); writes applied twice when a client retries; lost acknowledgements
/// never resent (a liveness failure).
async fn lossy(opts: Opts) -> Result<(), Failure> {
    net::set_config(sim::NetConfig {
        reliable: false,
        duplicate_permille: 50,
        hop_delay_ms_min: 1,
        hop_delay_ms_max: 10,
        ..sim::NetConfig::default()
    });
    sim::describe(format!(
        "{SERVERS} servers, {CLIENTS} clients x 40 operations, unreliable network with duplicates, servers cut off now and then"
    ));
    let chain = start_chain(&opts)?;
    // Faults: one server at a time loses every link for a while (the run ends when the
    // clients are done, which ends this task too).
    {
        let chain = chain.clone();
        sim::spawn(async move {
            let mut rng = sim::rng("faults");
            loop {
                sim::sleep(Duration::from_millis(rng.gen_range(300..1000))).await;
                let victim = chain[rng.gen_range(0..chain.len())];
                net::disconnect(victim);
                sim::sleep(Duration::from_millis(rng.gen_range(100..600))).await;
                net::connect(victim);
            }
        });
    }
    run_clients(&chain, 40, Duration::from_secs(60)).await
}

/// Starts the chain's servers, with the run's planted mistake, reporting to one checker.
fn start_chain(opts: &Opts) -> Result<Vec<NodeId>, Failure> {
    let mistake = match opts.bug.as_deref() {
        None => None,
        Some(name) => Some(Mistake::from_name(name).ok_or_else(|| Failure::panic(format!("no mistake {name}")))?),
    };
    let checker = Rc::new(RefCell::new(ChainChecker::new(SERVERS)));
    let first = sim::node_count();
    let chain: Vec<NodeId> = (0..SERVERS as u16).map(|i| NodeId(first + i)).collect();
    for (i, &expected) in chain.iter().enumerate() {
        let (c, k) = (chain.clone(), checker.clone());
        let id = sim::spawn_process(&format!("s{i}"), move |ctx| server::serve(ctx, i, c.clone(), mistake, k.clone()));
        assert_eq!(id, expected, "servers get consecutive node ids");
    }
    Ok(chain)
}

/// Runs the clients, each making `ops` operations; all must finish within `bound`; then the
/// history must be linearizable.
async fn run_clients(chain: &[NodeId], ops: usize, bound: Duration) -> Result<(), Failure> {
    let history: Recorder<RegisterInput, RegisterOutput> = Recorder::new();
    let finished = Rc::new(Cell::new(0));
    for id in 0..CLIENTS {
        let (head, tail) = (chain[0], chain[chain.len() - 1]);
        let (history, finished) = (history.clone(), finished.clone());
        sim::spawn(async move {
            client(id, head, tail, ops, history).await;
            finished.set(finished.get() + 1);
        });
    }
    let deadline = sim::now() + bound;
    while finished.get() < CLIENTS {
        if sim::now() >= deadline {
            return Err(Failure::liveness(
                "register::progress",
                format!("{} of {CLIENTS} clients still unfinished after {bound:?}", CLIENTS - finished.get()),
            ));
        }
        sim::sleep(Duration::from_millis(50)).await;
    }
    let h = history.history();
    let result = check(&RegisterModel, &h, &CheckOptions { budget: CHECK_BUDGET, ..CheckOptions::default() });
    sim::note(sim::NoteCode::HistoryChecked, h.len() as u64, || {
        format!("history of {} operations: {}", h.len(), result.verdict)
    });
    match result.verdict {
        Verdict::Linearizable => Ok(()),
        Verdict::NotLinearizable => {
            // The picture: one row per client, the longest linearizable prefixes drawn over
            // the operations, the cut-offs in the run as bands.
            let bands: Vec<Annotation> = sim::annotations()
                .into_iter()
                .map(|a| {
                    // The history's times are event positions: place each band among them.
                    let end_ns = a.end_ns.unwrap_or(sim::now().as_nanos() as u64).max(a.start_ns);
                    let (start, end) = history.span(a.start_ns, end_ns);
                    let band = Annotation::new(start, end, a.label);
                    match a.node {
                        Some(node) => band.in_row(sim::node_name(node)),
                        None => band,
                    }
                })
                .collect();
            let title = format!("chain register, seed {}", sim::seed());
            // The page shows each operation's simulated times: the same operations, with them.
            let h = history.history_with_times();
            let page = render(&RegisterModel, &h, &result, &bands, &HtmlOptions { title, ..HtmlOptions::default() });
            // The page is attached to the run's report; the command line writes it (under
            // --artifacts), so nothing of the machine reaches the outcome.
            let what = format!("history page ({} operations, not linearizable)", h.len());
            let name = sim::attach(format!("register-seed{}.html", sim::seed()), what, page.into_bytes());
            Err(Failure::safety(
                "linearizability",
                format!(
                    "the register's history of {} operations is not linearizable; picture attached as {name}",
                    h.len()
                ),
            ))
        }
        Verdict::Unknown => Err(Failure::safety(
            "linearizability",
            format!("the history of {} operations was undecided within {CHECK_BUDGET} steps", h.len()),
        )),
    }
}

/// One client: `ops` operations, half writes of values unique to it, half reads; a failed or
/// slow attempt is made again (a write with the same sequence number, so it is applied once).
async fn client(id: u64, head: NodeId, tail: NodeId, ops: usize, history: Recorder<RegisterInput, RegisterOutput>) {
    let ctx = sim::client(&format!("c{id}"));
    let mut rng = sim::rng(&format!("client-{id}"));
    let mut seq = 0;
    for _ in 0..ops {
        sim::sleep(Duration::from_millis(rng.gen_range(0..10))).await;
        if rng.gen_bool(0.5) {
            seq += 1;
            let value = (id + 1) * 1_000_000 + seq;
            let op = history.call(id, RegisterInput::Write(value));
            let req = Request::Write { client: id, seq, value };
            loop {
                if let Some(Ok(Response::Written)) = sim::timeout(ATTEMPT_TIMEOUT, ctx.call(head, &req)).await {
                    break;
                }
                // Not at once: a call can fail the instant it is made.
                sim::sleep(Duration::from_millis(10)).await;
            }
            history.ret(op, RegisterOutput::Written);
        } else {
            let op = history.call(id, RegisterInput::Read);
            let value = loop {
                if let Some(Ok(Response::Value(v))) =
                    sim::timeout(ATTEMPT_TIMEOUT, ctx.call(tail, &Request::Read)).await
                {
                    break v;
                }
                sim::sleep(Duration::from_millis(10)).await;
            };
            history.ret(op, RegisterOutput::Value(value));
        }
    }
}
