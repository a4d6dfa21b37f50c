//! Property tests without the runtime: proptest-generated fault schedules over pure cores,
//! checked after every step, shrunk to short counterexamples, saved and replayed first.
//!
//! Command-line use (`cargo xtask prop [FILTER] [--cases N] [--seed S]`):
//! ```text
//! for test in prop::select(filter) {
//!     let cases = prop::resolve_cases(&test, cli_cases); // --cases, else PROPTEST_CASES, else default
//!     match prop::run(&test, cases, cli_seed, &repo.join(prop::SAVED_DIR)) { ... }
//! }
//! ```
//! A test with `planted_bug: Some(..)` runs a core with that bug switched on: `Failed` is the
//! expected outcome there, and shows the harness finds the bug.

pub mod raft;

use std::cell::{Cell, RefCell};
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use cores::raft::{Bug, Bugs};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use raft::Case;
pub use raft::Params;

/// Seed of the case generator when the caller gives none: runs are reproducible by default.
pub const DEFAULT_SEED: u64 = 0x6_824;

/// Where saved counterexamples live, relative to the repository root.
pub const SAVED_DIR: &str = "seeds/prop";

/// Upper bound on shrink attempts, so shrinking ends deterministically (proptest's time limit
/// would make the result depend on the machine).
const MAX_SHRINK_ITERS: u32 = 20_000;

/// One property test the command line can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropTest {
    /// `raft::safety_3`, `raft::bug_commit_old_term`, ...
    pub name: &'static str,
    pub description: &'static str,
    /// Cases to run when neither `--cases` nor `PROPTEST_CASES` says otherwise.
    pub default_cases: u32,
    /// The planted bug's name when the test runs a deliberately broken core; for such a test
    /// a `Failed` outcome is the expected one.
    pub planted_bug: Option<&'static str>,
    params: Params,
}

impl PropTest {
    /// What the test runs: cluster size, planted bugs, schedule length, healing.
    pub fn params(&self) -> Params {
        self.params
    }
}

/// How a property test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropOutcome {
    Passed {
        cases: u32,
    },
    Failed {
        /// The violation, where it was found, and how (saved case or seed and case count).
        message: String,
        /// The shrunk counterexample as a readable step list, ending with the violation.
        steps: Vec<String>,
        /// The file the counterexample is saved in; the next run tries it first.
        saved_to: PathBuf,
    },
}

/// Every property test, correct cores first, then one per planted bug.
pub fn all() -> Vec<PropTest> {
    let correct = |nodes, heal| Params { nodes, bugs: Bugs::default(), max_steps: if heal { 150 } else { 250 }, heal };
    let mut tests = vec![
        PropTest {
            name: "raft::safety_3",
            description: "3 correct cores under arbitrary loss, duplication, reordering, crashes and snapshots: every safety property after every step",
            default_cases: 256,
            planted_bug: None,
            params: correct(3, false),
        },
        PropTest {
            name: "raft::safety_5",
            description: "the same with 5 cores",
            default_cases: 128,
            planted_bug: None,
            params: correct(5, false),
        },
        PropTest {
            name: "raft::liveness_3",
            description: "3 correct cores: after an arbitrary faulty schedule, a healed cluster applies a fresh command everywhere within 10 simulated seconds",
            default_cases: 128,
            planted_bug: None,
            params: correct(3, true),
        },
        PropTest {
            name: "raft::liveness_5",
            description: "the same with 5 cores",
            default_cases: 64,
            planted_bug: None,
            params: correct(5, true),
        },
    ];
    for &bug in Bug::all() {
        let Some(name) = bug_test_name(bug) else { continue };
        tests.push(PropTest {
            name,
            description: bug.description(),
            default_cases: bug_default_cases(bug),
            planted_bug: Some(bug.name()),
            params: Params { nodes: 3, bugs: Bugs::only(bug), max_steps: 300, heal: false },
        });
    }
    tests
}

/// At least three times the most fresh cases any of the seeds 0..10 needed to find the bug
/// (`cargo xtask prop 'raft::bug_*' --discovery 10`, table in BENCHMARKS.md), rounded up
/// to a thousand, and never under 4 096. Figure 8, a stale snapshot, a wiping snapshot and
/// a forgotten vote need rarer schedules than the rest.
fn bug_default_cases(bug: Bug) -> u32 {
    match bug {
        Bug::CommitOldTerm => 60_000,                // most 19 682
        Bug::ApplyOutOfOrderAfterSnapshot => 43_000, // most 14 090
        Bug::SnapshotWipesLog => 26_000,             // most 8 548
        Bug::NoPersistVotedFor => 6_000,             // most 1 951
        _ => 4096,                                   // most 997 (accept-stale-term-append) or fewer
    }
}

/// The property test of a planted bug, if it has one. A stale append reply needs one message
/// held across two leadership changes: the property world's schedules never make that (not
/// found in 20 000 cases, issue 13), so it has none — the swarms' holds and
/// `raft::stale_append_reply_2c` catch it.
fn bug_test_name(bug: Bug) -> Option<&'static str> {
    Some(match bug {
        Bug::CommitOldTerm => "raft::bug_commit_old_term",
        Bug::NoPersistVotedFor => "raft::bug_no_persist_voted_for",
        Bug::NoPersistTerm => "raft::bug_no_persist_term",
        Bug::VoteWithoutUpToDateCheck => "raft::bug_vote_without_up_to_date_check",
        Bug::NoTruncateConflict => "raft::bug_no_truncate_conflict",
        Bug::AcceptStaleTermAppend => "raft::bug_accept_stale_term_append",
        Bug::StaleAppendReply => return None,
        Bug::SnapshotWipesLog => "raft::bug_snapshot_wipes_log",
        Bug::AckBeforeDurable => "raft::bug_ack_before_durable",
        Bug::ApplyOutOfOrderAfterSnapshot => "raft::bug_apply_out_of_order_after_snapshot",
    })
}

/// The tests whose name contains `filter` (all of them for an empty filter).
pub fn select(filter: &str) -> Vec<PropTest> {
    all().into_iter().filter(|t| t.name.contains(filter)).collect()
}

/// The number of cases to run: the command line's `--cases` if given (the command line
/// reads `PROPTEST_CASES` into it), else the test's default. A library never reads the
/// environment.
pub fn resolve_cases(test: &PropTest, cli_cases: Option<u32>) -> u32 {
    cli_cases.unwrap_or(test.default_cases)
}

/// How many fresh cases from `seed` it takes to find a failure: the number (from 1) of the
/// first failing case, or `None` if none of `max_cases` fails. The cases are those
/// [`run`] generates from the same seed, in the same order, but nothing is shrunk and no
/// saved counterexample is consulted: this measures a search from scratch, which is what
/// the defaults are sized from (issue 13, item 4; `cargo xtask prop --discovery`).
pub fn cases_to_first_failure(test: &PropTest, max_cases: u32, seed: u64) -> Option<u32> {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = TestRunner::new_with_rng(Config::with_cases(max_cases), test_rng(seed));
    let strategy = raft::case_strategy(test.params);
    (1..=max_cases).find(|_| {
        let case = strategy.new_tree(&mut runner).expect("cases generate").current();
        check_quietly(&test.params, &case).is_err()
    })
}

/// The file holding `test`'s saved counterexamples under `saved_dir`.
pub fn saved_path(test: &PropTest, saved_dir: &Path) -> PathBuf {
    saved_dir.join(format!("{}.json", test.name.replace("::", "__")))
}

/// Run `test`: first replay its saved counterexamples from `saved_dir`, then `cases` fresh
/// cases generated from `seed` (default [`DEFAULT_SEED`]). `cases` is the caller's resolved
/// number (see [`resolve_cases`]). On failure the shrunk case is saved to
/// [`saved_path`] so the next run tries it first.
pub fn run(test: &PropTest, cases: u32, seed: Option<u64>, saved_dir: &Path) -> PropOutcome {
    let path = saved_path(test, saved_dir);
    let mut saved = load_saved(&path);
    for case in &saved.cases {
        if let Err(message) = check_quietly(&test.params, &case.case) {
            return PropOutcome::Failed {
                message: format!("{message} (saved counterexample, {} steps)", case.case.steps.len()),
                steps: describe(&test.params, &case.case),
                saved_to: path,
            };
        }
    }

    let seed = seed.unwrap_or(DEFAULT_SEED);
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    config.max_shrink_iters = MAX_SHRINK_ITERS;
    config.max_shrink_time = 0;
    config.timeout = 0;
    config.fork = false;
    let mut runner = TestRunner::new_with_rng(config, test_rng(seed));
    let params = test.params;
    let runs = Cell::new(0u32);
    let first_failure = Cell::new(None::<u32>);
    let result = runner.run(&raft::case_strategy(params), |case| {
        runs.set(runs.get() + 1);
        check_quietly(&params, &case).map_err(|message| {
            if first_failure.get().is_none() {
                first_failure.set(Some(runs.get()));
            }
            TestCaseError::fail(message)
        })
    });
    match result {
        Ok(()) => PropOutcome::Passed { cases },
        Err(TestError::Fail(reason, case)) => {
            let (case, reason) = polish(&params, case, reason.message().to_string());
            let found_at = first_failure.get().unwrap_or(0);
            let message = format!("{reason} (case {found_at} of seed {seed}, shrunk to {} steps)", case.steps.len());
            if !saved.cases.iter().any(|s| s.case == case) {
                saved.test = test.name.to_string();
                saved.cases.push(SavedCase { message: message.clone(), check: check_of(&reason), case: case.clone() });
                if let Err(e) = store_saved(&path, &saved) {
                    return PropOutcome::Failed {
                        message: format!("{message}; could not save it: {e}"),
                        steps: describe(&params, &case),
                        saved_to: path,
                    };
                }
            }
            PropOutcome::Failed { message, steps: describe(&params, &case), saved_to: path }
        }
        Err(TestError::Abort(reason)) => {
            PropOutcome::Failed { message: format!("aborted: {}", reason.message()), steps: Vec::new(), saved_to: path }
        }
    }
}

/// Finish what proptest's shrinking left: cut the steps after the failing one, then drop
/// single steps and pairs of nearby steps while the case still fails, until none can go.
/// Deterministic, and bounded by `MAX_POLISH_RUNS` case runs.
fn polish(params: &Params, mut case: Case, mut message: String) -> (Case, String) {
    const MAX_POLISH_RUNS: u32 = 5_000;
    let mut runs = 0;
    if let Some(step) = failing_step(&message) {
        if step < case.steps.len() {
            let mut cut = case.clone();
            cut.steps.truncate(step);
            runs += 1;
            if let Err(m) = check_quietly(params, &cut) {
                case = cut;
                message = m;
            }
        }
    }
    // Single steps, then pairs of nearby steps (an isolate and its reconnect, a crash and
    // its restart), from the back, until nothing more can go.
    let mut progress = true;
    while progress && runs < MAX_POLISH_RUNS {
        progress = false;
        for gap in 0..4 {
            let mut i = case.steps.len();
            while i > 0 && runs < MAX_POLISH_RUNS {
                i -= 1;
                let j = i + gap;
                if gap > 0 && j >= case.steps.len() {
                    continue;
                }
                let mut shorter = case.clone();
                if gap > 0 {
                    shorter.steps.remove(j);
                }
                shorter.steps.remove(i);
                runs += 1;
                if let Err(m) = check_quietly(params, &shorter) {
                    case = shorter;
                    message = m;
                    progress = true;
                    i = i.min(case.steps.len());
                }
            }
        }
    }
    (case, message)
}

/// The step number in a failure message of the form "step N: ...".
fn failing_step(message: &str) -> Option<usize> {
    message.strip_prefix("step ")?.split(':').next()?.trim().parse().ok()
}

/// The saved-counterexample file: a serde list of cases.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SavedCases {
    test: String,
    cases: Vec<SavedCase>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedCase {
    /// What the case showed when it was saved, for people reading the file.
    message: String,
    /// The check that caught it (`election-safety`, …, or `core-assertion`): replaying the
    /// case with its planted bug must fail with this check again.
    #[serde(default)]
    check: Option<String>,
    case: Case,
}

/// The check a failure message names: `step N: <check>: …` gives `<check>`, a core assertion
/// `core-assertion`, a liveness failure `liveness`.
pub fn check_of(message: &str) -> Option<String> {
    let rest = match message.strip_prefix("step ") {
        Some(rest) => rest.split_once(": ")?.1,
        None => message.strip_prefix("after healing: ")?,
    };
    if rest.starts_with("core assertion failed") {
        return Some("core-assertion".to_string());
    }
    let name = rest.split(':').next()?.trim();
    (!name.is_empty() && !name.contains(' ')).then(|| name.to_string())
}

/// One saved counterexample replayed both ways: with the planted bug it was found with, and
/// with a correct core.
#[derive(Clone, Debug)]
pub struct SavedReplay {
    /// The file it is saved in.
    pub file: PathBuf,
    /// The property test it belongs to.
    pub test: &'static str,
    /// Its position in the file.
    pub index: usize,
    /// The check recorded when it was saved.
    pub recorded_check: Option<String>,
    /// The run with the test's planted bug (`None` for a correct-core test).
    pub with_bug: Option<Result<(), String>>,
    /// The run with every bug off.
    pub without_bug: Result<(), String>,
}

impl SavedReplay {
    /// What is wrong with this replay, if anything: with its bug it must fail with the recorded
    /// check; without any bug it must pass.
    pub fn problem(&self) -> Option<String> {
        let at = format!("{} case {} ({})", self.file.display(), self.index + 1, self.test);
        if let Some(with_bug) = &self.with_bug {
            match with_bug {
                Ok(()) => return Some(format!("{at}: no longer fails with its planted bug")),
                Err(message) => {
                    let check = check_of(message);
                    if self.recorded_check.is_none() || check != self.recorded_check {
                        return Some(format!(
                            "{at}: fails with {check:?}, recorded {:?}: {message}",
                            self.recorded_check
                        ));
                    }
                }
            }
        }
        if let Err(message) = &self.without_bug {
            return Some(format!("{at}: fails on a correct core: {message}"));
        }
        None
    }
}

/// Replays every saved counterexample under `saved_dir` (every `*.json` file, each naming its
/// test) both ways. Errors name a file that is unreadable or names no known test.
pub fn replay_saved_both_ways(saved_dir: &Path) -> Result<Vec<SavedReplay>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(saved_dir)
        .map_err(|e| format!("{}: cannot list: {e}", saved_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let tests = all();
    let mut out = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        let saved: SavedCases =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a saved-case file: {e}", file.display()))?;
        let test = tests
            .iter()
            .find(|t| t.name == saved.test)
            .ok_or_else(|| format!("{}: names no known property test ({:?})", file.display(), saved.test))?;
        let correct = Params { bugs: Bugs::default(), ..test.params };
        for (index, case) in saved.cases.iter().enumerate() {
            out.push(SavedReplay {
                file: file.clone(),
                test: test.name,
                index,
                recorded_check: case.check.clone().or_else(|| check_of(&case.message)),
                with_bug: test.planted_bug.map(|_| check_quietly(&test.params, &case.case)),
                without_bug: check_quietly(&correct, &case.case),
            });
        }
    }
    Ok(out)
}

fn load_saved(path: &Path) -> SavedCases {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{} is not a saved-case file: {e}", path.display());
        }),
        Err(_) => SavedCases::default(),
    }
}

fn store_saved(path: &Path, saved: &SavedCases) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(saved).map_err(std::io::Error::other)?;
    fs::write(path, text + "\n")
}

/// A proptest RNG whose whole state comes from `seed`.
fn test_rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Re-run a failing case with tracing on, for a readable counterexample.
fn describe(params: &Params, case: &Case) -> Vec<String> {
    let mut trace = Vec::new();
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| raft::run_case(params, case, Some(&mut trace))));
    QUIET.with(|q| q.set(false));
    if outcome.is_err() {
        let message = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
        trace.push(format!("=> core assertion failed: {message}"));
    }
    trace
}

thread_local! {
    /// Set while a case runs: the panic hook then records instead of printing, because
    /// shrinking provokes thousands of expected core assertion failures.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "<non-string panic>".to_string());
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{payload}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Run one case, turning a core assertion failure into an error message.
fn check_quietly(params: &Params, case: &Case) -> Result<(), String> {
    install_quiet_hook();
    QUIET.with(|q| q.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| raft::run_case(params, case, None)));
    QUIET.with(|q| q.set(false));
    match outcome {
        Ok(result) => result,
        Err(_) => {
            let message = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
            Err(format!("core assertion failed: {message}"))
        }
    }
}
