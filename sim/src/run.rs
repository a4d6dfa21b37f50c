//! The run harness: one scenario, one seed, on a fresh OS thread with its own madsim
//! runtime, ending in an `Outcome` with the trace hash and counters.
//!
//! A run ends when the scenario returns, when any check fails the run (the first failure
//! wins), when its simulated-time budget runs out (liveness), when madsim finds every task
//! blocked forever (liveness), or on a panic anywhere (panic).

use crate::annotate::Annotation;
use crate::failure::{Failure, Outcome};
use crate::process::{self, CatchPanic};
use crate::sched::{self, SchedulerTask};
use crate::trace::{CapturedEvent, TraceMode};
use crate::world::{self, FailureSignal, Stats};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use std::time::Duration;

/// How to run.
#[derive(Clone)]
pub struct RunConfig {
    /// The seed: with the scenario and the build, it decides the whole run.
    pub seed: u64,
    /// How much of the trace to keep: its hash only, every line in memory, or lines emitted.
    pub trace: TraceMode,
    /// The scenario's simulated-time budget; running out is a liveness failure.
    pub budget: Duration,
    /// With `TraceMode::Emit`: the tracing subscriber that receives the lines.
    pub dispatch: Option<tracing::Dispatch>,
    /// Print every panic inside the run to stderr with a backtrace (for debugging; the
    /// outcome is the same either way).
    pub show_panics: bool,
    /// The planted bug switched on for this run, if any: the files the run attaches carry it
    /// in their names ([`crate::attach`]), so runs of one scenario and seed with different
    /// bugs never share a file name.
    pub bug: Option<String>,
}

impl RunConfig {
    /// A run of `seed` with `budget` of simulated time, keeping only the trace hash, without
    /// panic printing.
    pub fn new(seed: u64, budget: Duration) -> Self {
        RunConfig { seed, trace: TraceMode::Hash, budget, dispatch: None, show_panics: false, bug: None }
    }
}

/// A file a run hands to whoever runs it (a history page, an exported history): written by
/// the command line where its options say, never by the run itself, and never hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// A file name without folders, e.g. `kvraft__basic_3a-seed7.html`, or with the run's
    /// planted bug `kvraft__basic_3a-seed7-local-reads.html` ([`crate::attach`]).
    pub name: String,
    /// What the scenario says it is, for the line that reports it.
    pub what: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed the run used.
    pub seed: u64,
    /// Pass, or the first failure.
    pub outcome: Outcome,
    /// The hash of every trace event in order; equal for two runs exactly when their traces
    /// agree (up to hash collisions). The determinism check compares it.
    pub trace_hash: u64,
    /// How many trace events the run recorded.
    pub events: u64,
    /// Simulated time when the run ended.
    pub sim_time: Duration,
    /// The run's counters (RPCs, bytes, messages, crashes, restarts).
    pub stats: Stats,
    /// Every event, with `TraceMode::Capture`.
    pub captured: Vec<CapturedEvent>,
    /// Each node's name, by node id (`CapturedEvent::node`), as the trace shows it.
    pub node_names: Vec<String>,
    /// Labelled intervals (nodes down, partitions, leaderships) for history pictures.
    pub annotations: Vec<Annotation>,
    /// What the scenario said about itself (`sim::describe`).
    pub description: Vec<String>,
    /// Files the run produced for its caller (`sim::attach`).
    pub attachments: Vec<Attachment>,
    /// Coverage marks the run reached (`sim::mark`), by name, with how often.
    pub marks: Vec<(&'static str, u64)>,
    /// The fault events that were skipped because they named no node when they fired (a
    /// role nobody held, a node beyond the cluster, a crash of a node already down), each as
    /// `at N ms: what`, in the order they fired. `run` prints them.
    pub skipped_faults: Vec<String>,
}

thread_local! {
    static IN_RUN: Cell<bool> = const { Cell::new(false) };
    static SHOW_PANICS: Cell<bool> = const { Cell::new(false) };
    /// The last panic's message and portable location, as the hook saw it.
    static LAST_PANIC: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

/// A panic location without the machine's paths: a file compiled from inside the workspace
/// stays as the compiler named it (relative to the workspace); a dependency's, the standard
/// library's or a file outside the workspace keeps its path from the crate's folder on
/// (`rand-0.8.5/src/distributions/uniform.rs`), so the same build reports the same location
/// on every machine.
pub fn portable_location(file: &str, line: u32) -> String {
    let file = file.replace('\\', "/");
    let tail = if let Some((_, rest)) = file.split_once("/registry/src/") {
        rest.split_once('/').map_or(rest, |(_index, crate_path)| crate_path).to_string()
    } else if let Some((_, rest)) = file.split_once("/git/checkouts/") {
        rest.splitn(3, '/').nth(2).unwrap_or(rest).to_string()
    } else if let Some(rest) = file.strip_prefix("/rustc/") {
        rest.split_once("/library/").map_or(rest, |(_, lib)| lib).to_string()
    } else if file.starts_with('/') {
        match file.rfind("/src/") {
            Some(i) => {
                let start = file[..i].rfind('/').map_or(0, |j| j + 1);
                file[start..].to_string()
            }
            None => file.rsplit('/').next().unwrap_or(&file).to_string(),
        }
    } else {
        file
    };
    format!("{tail}:{line}")
}

/// Installs (once per process) a panic hook that keeps run threads quiet: their panics
/// become the run's outcome instead of a backtrace on stderr.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_RUN.with(|r| r.get()) {
                let msg = payload_str(info.payload()).unwrap_or("panic").to_string();
                let at = info.location().map(|l| portable_location(l.file(), l.line()));
                if SHOW_PANICS.with(Cell::get) {
                    eprintln!(
                        "panic inside a run: {msg} (at {})\n{}",
                        at.as_deref().unwrap_or("?"),
                        std::backtrace::Backtrace::force_capture()
                    );
                }
                LAST_PANIC.with(|p| *p.borrow_mut() = Some((msg, at)));
            } else {
                default(info);
            }
        }));
    });
}

fn payload_str(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
}

/// A caught panic's message and portable location (the hook's, if it ran here).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> (String, Option<String>) {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| (payload_str(payload).unwrap_or("panic").to_string(), None))
}

/// Runs `scenario` under `cfg` on a fresh OS thread (std seeds its hash keys once per
/// thread, so a fresh thread per run keeps any hashing reproducible).
///
/// # Panics
/// If the run's thread cannot be spawned, or the harness itself panics outside the scenario (a panic inside the run
/// is its outcome, [`FailureClass::Panic`](crate::FailureClass::Panic)).
pub fn run<F, Fut>(cfg: RunConfig, scenario: F) -> RunReport
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Failure>> + 'static,
{
    install_panic_hook();
    #[allow(clippy::disallowed_methods)] // allow-entropy: the run's own thread, outside the runtime
    let handle = std::thread::Builder::new()
        .name(format!("sim-seed-{}", cfg.seed))
        .stack_size(32 << 20)
        .spawn(move || {
            IN_RUN.with(|r| r.set(true));
            SHOW_PANICS.with(|s| s.set(cfg.show_panics));
            match cfg.dispatch.clone() {
                Some(d) => tracing::dispatcher::with_default(&d, || run_here(cfg, scenario)),
                None => run_here(cfg, scenario),
            }
        })
        .expect("spawn run thread");
    handle.join().expect("run thread panicked outside the harness")
}

enum End {
    Done(Result<(), Failure>),
    Failed(Failure),
    Budget,
}

type MainFuture = Pin<Box<dyn Future<Output = (End, Duration)>>>;
/// The main future's outcome once it ended, and the waker of whoever waits for it.
type MainResult = (Option<(End, Duration)>, Option<std::task::Waker>);

thread_local! {
    /// The run's main future, handed to the supervisor node's `init` (which must be `Send`).
    static MAIN: RefCell<Option<MainFuture>> = const { RefCell::new(None) };
    /// What the supervisor's main future ended with, and who waits for it.
    static RESULT: RefCell<MainResult> = const { RefCell::new((None, None)) };
    /// The supervisor's madsim node, to kill at the end of the run.
    static SUPERVISOR: Cell<Option<madsim::task::NodeId>> = const { Cell::new(None) };
}

fn run_here<F, Fut>(cfg: RunConfig, scenario: F) -> RunReport
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = Result<(), Failure>> + 'static,
{
    let seed = cfg.seed;
    let mode = cfg.trace;
    let budget = cfg.budget;
    let bug = cfg.bug;
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            world::install(seed, mode, bug);
            let main: MainFuture = Box::pin(async move {
                madsim::task::spawn_local(SchedulerTask::new());
                let scenario = CatchPanic { fut: Box::pin(scenario()) };
                let budget_sleep = sched::sleep(budget);
                let end = Race { a: Box::pin(scenario), b: Box::pin(FailureSignal), c: Box::pin(budget_sleep) }.await;
                (end, sched::now())
            });
            MAIN.with(|m| *m.borrow_mut() = Some(main));
            RESULT.with(|r| *r.borrow_mut() = (None, None));
            // The scenario runs on a node of its own, so that ending the run can kill it like
            // every other node (see `free_tasks`).
            let supervisor = madsim::runtime::Handle::current()
                .create_node()
                .name("supervisor")
                .init(|| {
                    let main = MAIN.with(|m| m.borrow_mut().take()).expect("the supervisor starts once");
                    async move {
                        let out = main.await;
                        RESULT.with(|r| {
                            let mut r = r.borrow_mut();
                            r.0 = Some(out);
                            if let Some(w) = r.1.take() {
                                w.wake();
                            }
                        });
                    }
                })
                .build();
            SUPERVISOR.with(|s| s.set(Some(supervisor.id())));
            std::future::poll_fn(|cx| {
                RESULT.with(|r| {
                    let mut r = r.borrow_mut();
                    match r.0.take() {
                        Some(out) => Poll::Ready(out),
                        None => {
                            r.1 = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    }
                })
            })
            .await
        })
    }));
    free_tasks(&rt);
    // Dropping the runtime drops what is left; destructors see the world still installed.
    drop(rt);
    let mut w = world::uninstall().map(|w| w.kernel);
    let (outcome, sim_time) = match result {
        Ok((end, sim_time)) => {
            let recorded = w.as_ref().and_then(|w| w.failure.clone());
            let outcome = match (recorded, end) {
                (Some(f), _) => Outcome::Fail(f),
                (None, End::Done(Ok(()))) => Outcome::Pass,
                (None, End::Done(Err(f))) | (None, End::Failed(f)) => Outcome::Fail(f),
                (None, End::Budget) => Outcome::Fail(Failure::liveness(
                    "budget",
                    format!("the simulated-time budget of {}s ran out", budget.as_secs_f64()),
                )),
            };
            (outcome, sim_time)
        }
        Err(payload) => {
            let (text, at) = panic_text(&*payload);
            let sim_time = w.as_ref().map(|w| Duration::from_nanos(w.now_ns())).unwrap_or_default();
            let outcome = if text.contains("no events, all tasks will block forever") {
                Outcome::Fail(Failure::liveness("deadlock", "every task is blocked forever and no timer is pending"))
            } else if let Some(f) = w.as_ref().and_then(|w| w.failure.clone()) {
                Outcome::Fail(f)
            } else {
                Outcome::Fail(Failure::panic(text).at(at))
            };
            (outcome, sim_time)
        }
    };
    let marks: Vec<(&'static str, u64)> =
        w.as_mut().map(|w| std::mem::take(&mut w.marks).into_iter().collect()).unwrap_or_default();
    let skipped_faults = w.as_mut().map(|w| std::mem::take(&mut w.skipped_faults)).unwrap_or_default();
    let node_names = w.as_ref().map(|w| w.nodes.iter().map(|n| n.name.clone()).collect()).unwrap_or_default();
    let (trace_hash, events, captured, stats, annotations, description, attachments) = match w.as_mut() {
        Some(w) => (
            w.trace.hash(),
            w.trace.events(),
            w.trace.take_captured(),
            w.stats,
            std::mem::take(&mut w.annotations),
            std::mem::take(&mut w.description),
            std::mem::take(&mut w.attachments),
        ),
        None => (0, 0, Vec::new(), Stats::default(), Vec::new(), Vec::new(), Vec::new()),
    };
    RunReport {
        seed,
        outcome,
        trace_hash,
        events,
        sim_time,
        stats,
        captured,
        node_names,
        annotations,
        description,
        attachments,
        marks,
        skipped_faults,
    }
}

/// Frees every task of the run. madsim keeps each task's waker in the task's own info,
/// which the task's future holds — a cycle — so a task still pending when the runtime is
/// dropped is never freed, with everything it holds (a Raft log, a checker's state): a sweep
/// of thousands of runs in one process would grow by megabytes a run. Killing a node wakes
/// all its tasks and the executor then drops them; one more turn of the executor does it.
fn free_tasks(rt: &madsim::runtime::Runtime) {
    let handle = rt.handle().clone();
    let mut nodes = process::madsim_nodes();
    nodes.extend(SUPERVISOR.with(|s| s.take()));
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            for id in nodes {
                handle.kill(id);
            }
        })
    }));
}

/// Polls three futures in a fixed order (biased, so the result is reproducible) and ends
/// with the first that completes.
struct Race<A: Future<Output = Result<(), Failure>>> {
    a: Pin<Box<A>>,
    b: Pin<Box<FailureSignal>>,
    c: Pin<Box<dyn Future<Output = ()>>>,
}

impl<A: Future<Output = Result<(), Failure>>> Future for Race<A> {
    type Output = End;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End> {
        if let Poll::Ready(r) = self.a.as_mut().poll(cx) {
            return Poll::Ready(End::Done(r));
        }
        if let Poll::Ready(f) = self.b.as_mut().poll(cx) {
            return Poll::Ready(End::Failed(f));
        }
        if let Poll::Ready(()) = self.c.as_mut().poll(cx) {
            return Poll::Ready(End::Budget);
        }
        Poll::Pending
    }
}
