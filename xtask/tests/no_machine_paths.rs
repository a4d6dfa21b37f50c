//! No machine in a run's result: a run that panics inside a dependency and one that fails
//! linearizability, run by the command line from a folder outside the checkout, leave
//! neither the checkout's path nor the cargo home in the printed outcome, the saved seed
//! file or any trace line, and write nothing into the checkout (issue 9, "Determinism across
//! builds and machines").
//!
//! The command line runs in a child process (this test binary re-run with [`CHILD_ARGS`]),
//! so that the child's working directory can be elsewhere and its catalogue can hold a
//! scenario that panics inside `rand`.

use rand::Rng;
use scenarios::registry::{Family, Opts, Scenario, ScenarioFuture};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Set in the child's environment: its command line, words separated by newlines.
const CHILD_ARGS: &str = "SIMLAB_PATHS_TEST_ARGS";

/// A node's code that asks a dependency for the impossible: `rand` panics on an empty range,
/// so the panic's location is a file in the cargo registry.
fn dependency_panic(_: Opts) -> ScenarioFuture {
    Box::pin(async {
        let mut rng = sim::rng::stream(sim::seed(), "paths-test", 0);
        let low = rng.gen_range(5..6);
        let drawn: u32 = rng.gen_range(low..5);
        Err(sim::Failure::safety("unreachable", format!("drew {drawn} from an empty range")))
    })
}

fn catalogue() -> scenarios::registry::Catalogue {
    scenarios::catalogue().with_family(Family::new("paths").with_scenario(Scenario::new(
        "paths::dependency_panic",
        "a node panics inside the rand crate",
        Duration::from_secs(1),
        dependency_panic,
    )))
}

/// Not a test of its own: the child's entry point, when [`CHILD_ARGS`] is set.
#[test]
#[allow(clippy::disallowed_methods)] // allow-entropy: a test's own child switch, outside any run
fn child_entry() {
    if let Ok(args) = std::env::var(CHILD_ARGS) {
        let args: Vec<&str> = args.split('\n').collect();
        let status = simlab_cli::run(&catalogue(), args);
        std::process::exit(i32::from(status));
    }
}

/// Runs `xtask ARGS` in the child with `cwd` as its working directory; returns (status,
/// stdout + stderr).
fn xtask(cwd: &Path, args: &[&str]) -> (i32, String) {
    let me = std::env::current_exe().expect("the test binary's path");
    let line = std::iter::once("xtask").chain(args.iter().copied()).collect::<Vec<_>>().join("\n");
    let out = Command::new(me)
        .args(["--exact", "child_entry", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ARGS, line)
        .current_dir(cwd)
        .output()
        .expect("the child runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The checkout's root, as this build knows it.
fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// Strings that would say on which machine, in which folder, a run happened.
#[allow(clippy::disallowed_methods)] // allow-entropy: a test reads where cargo lives, outside any run
fn machine_strings() -> Vec<String> {
    let mut v = vec![checkout().display().to_string(), "/registry/src/".to_string(), "/rustc/".to_string()];
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        v.push(PathBuf::from(home).display().to_string());
    }
    if let Some(home) = std::env::var_os("HOME") {
        v.push(PathBuf::from(home).join(".cargo").display().to_string());
    }
    v
}

fn assert_no_machine(what: &str, text: &str) {
    for m in machine_strings() {
        assert!(!text.contains(&m), "{what} names the machine ({m}):\n{text}");
    }
}

/// Every file under `dir`, with its length: what a run may have written there.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out.sort();
    out
}

fn elsewhere(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simlab-elsewhere-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    assert!(!dir.starts_with(checkout()), "the child must run outside the checkout");
    dir
}

/// Runs a failing (scenario, seed, bug) from outside the checkout: the sweep's report, its
/// saved seed file, and the replay's trace name no machine path.
fn failing_run_names_no_machine(scenario: &str, seed: u64, bug: Option<&str>, status_wanted: i32, checker: &str) {
    let cwd = elsewhere(&scenario.replace("::", "_"));
    let watched = [checkout().join("seeds"), checkout().join("target/sim-histories")];
    let before: Vec<_> = watched.iter().map(|d| files_under(d)).collect();

    let seeds = format!("{seed}..{}", seed + 1);
    let mut args = vec!["sweep", scenario, "--seeds", &seeds, "--save", "--seeds-dir", "saved", "--jobs", "1"];
    if let Some(b) = bug {
        args.extend(["--bug", b]);
    }
    let (status, out) = xtask(&cwd, &args);
    assert_eq!(status, status_wanted, "the run fails as it should:\n{out}");
    assert!(out.contains(checker), "caught by {checker}:\n{out}");
    assert_no_machine("the sweep's report", &out);

    let saved = files_under(&cwd.join("saved"));
    assert_eq!(saved.len(), 1, "one seed file saved: {saved:?}");
    let seed_file = std::fs::read_to_string(&saved[0].0).unwrap();
    assert!(seed_file.contains(checker), "{seed_file}");
    assert_no_machine("the saved seed file", &seed_file);

    let seed_path = saved[0].0.display().to_string();
    let (_, replayed) = xtask(&cwd, &["replay", &seed_path, "--filter", "debug", "--out", "trace.txt"]);
    assert!(replayed.contains("as recorded"), "{replayed}");
    let trace = std::fs::read_to_string(cwd.join("trace.txt")).unwrap();
    assert!(trace.lines().count() > 3, "a trace was written:\n{trace}");
    assert_no_machine("the trace", &trace);

    let after: Vec<_> = watched.iter().map(|d| files_under(d)).collect();
    assert_eq!(before, after, "a run from elsewhere wrote into the checkout");
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn a_panic_inside_a_dependency_names_no_machine_path() {
    failing_run_names_no_machine("paths::dependency_panic", 0, None, 3, "panic");
}

#[test]
fn a_linearizability_failure_names_no_machine_path() {
    failing_run_names_no_machine("kvraft::unreliable_one_key_3a", 0, Some("reply-before-commit"), 1, "linearizability");
}
