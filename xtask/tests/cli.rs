//! The command line as a library, driven as a downstream crate drives it: a catalogue with a
//! family of its own (next to the project's) gets every command through `simlab_cli::run`,
//! and each command honours or refuses every option, with its documented exit status.

use scenarios::registry::{Catalogue, Family, Opts, Scenario, ScenarioFuture};
use scenarios::seeds;
use sim::faults::{Fault, FaultEvent, FaultSchedule, Target};
use sim::{Failure, Incoming};
use simlab_cli::exit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod common;

/// A scratch folder for this file's tests (see `common::scratch_in`).
fn scratch(name: &str) -> PathBuf {
    common::scratch_in("cli", name)
}

fn run(cat: &Catalogue, args: &[&str]) -> u8 {
    simlab_cli::run(cat, std::iter::once("xtask").chain(args.iter().copied()))
}

/// A server that echoes; with the planted bug `wrong-answer` it answers 0. The client checks.
async fn echo(opts: Opts) -> Result<(), Failure> {
    let wrong = opts.bug.as_deref() == Some("wrong-answer");
    let server = sim::spawn_process("server", move |ctx| async move {
        loop {
            if let Some(Incoming::Request { payload, reply_to, .. }) = ctx.recv().await {
                let x: u64 = sim::decode(&payload);
                ctx.reply(reply_to, &if wrong { 0 } else { x });
            }
        }
    });
    let client = sim::client("client");
    for x in 1..4u64 {
        sim::sleep(Duration::from_millis(10)).await;
        match client.call::<u64, u64>(server, &x).await {
            Ok(y) if y == x => {}
            Ok(y) => return Err(Failure::safety("toy::echo", format!("sent {x}, got {y}"))),
            Err(e) => return Err(Failure::liveness("toy::echo", format!("call failed: {e:?}"))),
        }
    }
    Ok(())
}

/// Process-global state leaks into a message: every execution differs.
static LEAK: AtomicU64 = AtomicU64::new(0);

async fn leaky(_: Opts) -> Result<(), Failure> {
    let server = sim::spawn_process("server", |ctx| async move {
        loop {
            if let Some(Incoming::Request { reply_to, .. }) = ctx.recv().await {
                ctx.reply(reply_to, &());
            }
        }
    });
    let client = sim::client("client");
    sim::sleep(Duration::from_millis(10)).await;
    let _ = client.call::<u64, ()>(server, &LEAK.fetch_add(1, Ordering::Relaxed)).await;
    Ok(())
}

/// How many runs of `toy::counted` have started in this test process.
static COUNTED: AtomicU64 = AtomicU64::new(0);

async fn counted(_: Opts) -> Result<(), Failure> {
    COUNTED.fetch_add(1, Ordering::Relaxed);
    sim::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Takes a fault schedule (none drawn: an empty one) and fails when it holds a crash.
async fn faulty(opts: Opts) -> Result<(), Failure> {
    let schedule = opts.faults.map(|f| f.schedule).unwrap_or_default();
    if let Some(r) = &opts.record_faults {
        r.record(&schedule);
    }
    sim::sleep(Duration::from_millis(100)).await;
    if schedule.events.iter().any(|e| matches!(e.fault, Fault::Crash { .. })) {
        return Err(Failure::safety("toy::no-crash", "the schedule crashed a node"));
    }
    Ok(())
}

/// The toy family's safety phase ends at 5 s for every seed.
const TOY_PHASE_MS: u64 = 5_000;

fn toy() -> Family {
    let s = |name, run: fn(Opts) -> ScenarioFuture| Scenario::new(name, "toy", Duration::from_secs(10), run);
    Family::new("toy")
        .with_bug("wrong-answer", "the server answers 0")
        .with_bug("never-matters", "a switch no scenario reads")
        .with_scenario(s("toy::echo", |o| Box::pin(echo(o))))
        .with_scenario(s("toy::leaky", |o| Box::pin(leaky(o))))
        .with_scenario(s("toy::counted", |o| Box::pin(counted(o))))
        .with_scenario(s("toy::faulty", |o| Box::pin(faulty(o))).with_fault_schedule(|_| TOY_PHASE_MS))
}

fn catalogue() -> Catalogue {
    scenarios::catalogue().with_family(toy())
}

/// A scenario that fails without any bug (a user's service may fail a scenario on its own,
/// such as a challenge it does not do); its bug `other-check` makes it fail by another check,
/// and `noop` changes nothing.
async fn fails_anyway(opts: Opts) -> Result<(), Failure> {
    sim::sleep(Duration::from_millis(10)).await;
    match opts.bug.as_deref() {
        Some("other-check") => Err(Failure::safety("broken::other", "the bug's own failure")),
        _ => Err(Failure::safety("broken::always", "fails with or without a bug")),
    }
}

fn broken() -> Family {
    Family::new("broken")
        .with_bug("noop", "changes nothing")
        .with_bug("other-check", "fails by another check")
        .with_scenario(Scenario::new("broken::fails", "fails anyway", Duration::from_secs(10), |o| {
            Box::pin(fails_anyway(o))
        }))
}

#[test]
fn bugs_does_not_credit_a_bug_with_failures_the_scenario_has_without_it() {
    // Session 16: a do-nothing bug was reported found, caught by a check that fails every
    // run of a scenario without any bug.
    let cat = scenarios::catalogue().with_family(broken());
    assert_eq!(run(&cat, &["bugs", "broken", "--seeds", "0..3", "--bug", "noop"]), exit::BUG_NOT_FOUND);
    assert_eq!(run(&cat, &["bugs", "broken", "--seeds", "0..3", "--bug", "other-check"]), exit::PASS);
}

fn crash_at(at_ms: u64) -> FaultSchedule {
    FaultSchedule { events: vec![FaultEvent { at_ms, fault: Fault::Crash { node: Target::role("leader") } }] }
}

#[test]
fn a_downstream_family_gets_list_run_sweep_and_replay() {
    let cat = catalogue();
    assert_eq!(run(&cat, &["list", "toy"]), exit::PASS);
    assert_eq!(run(&cat, &["list", "--bugs"]), exit::PASS);
    assert_eq!(run(&cat, &["run", "toy::echo", "--seed", "3"]), exit::PASS);
    assert_eq!(run(&cat, &["run", "toy::echo", "--seed", "3", "--bug", "wrong-answer"]), exit::SAFETY);
    assert_eq!(run(&cat, &["sweep", "toy::echo", "--seeds", "0..3", "--jobs", "1"]), exit::PASS);
    assert_eq!(run(&cat, &["replay", "toy::echo", "--seed", "1", "--filter", "off"]), exit::PASS);
    // The project's own families stay there, through the same entry point.
    assert_eq!(run(&cat, &["run", "mapreduce::wc", "--seed", "0"]), exit::PASS);
    assert_eq!(run(&cat, &["run", "toy::echo", "--seed", "3", "--bug", "no-reissue"]), exit::BAD_INPUT);
}

#[test]
fn determinism_bugs_and_prop_have_their_own_exit_statuses() {
    // Before, all three exited with 1, which means "safety violation".
    let cat = catalogue();
    assert_eq!(run(&cat, &["determinism", "toy::leaky", "--seeds", "0..2", "--jobs", "1"]), exit::NONDETERMINISTIC);
    assert_eq!(run(&cat, &["determinism", "toy::echo", "--seeds", "0..2", "--jobs", "1"]), exit::PASS);
    assert_eq!(run(&cat, &["bugs", "toy::echo", "--seeds", "0..2", "--bug", "wrong-answer"]), exit::PASS);
    assert_eq!(run(&cat, &["bugs", "toy::echo", "--seeds", "0..2"]), exit::BUG_NOT_FOUND, "never-matters is missed");
    // One case from a fresh generator and no saved counterexample does not find Figure 8.
    let empty = scratch("prop-empty");
    let saved = empty.to_str().unwrap();
    let args = ["prop", "raft::bug_commit_old_term", "--cases", "1", "--saved-dir", saved];
    assert_eq!(run(&cat, &args), exit::BUG_NOT_FOUND);
    assert_eq!(run(&cat, &["prop", "raft::safety_3", "--cases", "2", "--saved-dir", saved]), exit::PASS);
    // --scale multiplies the defaults and refuses 0; --discovery measures (a bug found within
    // 200 cases under seeds 0..2 passes, one not found within 1 case is reported) and refuses
    // a --seed it would ignore.
    assert_eq!(run(&cat, &["prop", "raft::safety_3", "--scale", "0"]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["prop", "raft::liveness_5", "--scale", "2", "--saved-dir", saved]), exit::PASS);
    let found = ["prop", "raft::bug_vote_without_up_to_date_check", "--discovery", "2", "--cases", "200"];
    assert_eq!(run(&cat, &found), exit::PASS);
    assert_eq!(
        run(&cat, &["prop", "raft::bug_commit_old_term", "--discovery", "1", "--cases", "1"]),
        exit::BUG_NOT_FOUND
    );
    assert_eq!(run(&cat, &["prop", "raft::bug_*", "--discovery", "2", "--seed", "3"]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["prop", "raft::bug_*", "--discovery", "0"]), exit::BAD_INPUT);
    // A catalogue without property tests refuses the command rather than passing vacuously.
    let bare = Catalogue::new().with_family(toy());
    assert_eq!(run(&bare, &["prop"]), exit::BAD_INPUT);
    let distinct = [
        exit::PASS,
        exit::SAFETY,
        exit::LIVENESS,
        exit::PANIC,
        exit::BAD_INPUT,
        exit::NONDETERMINISTIC,
        exit::BUG_NOT_FOUND,
        exit::PROPERTY_FAILED,
    ];
    assert!(distinct.windows(2).all(|w| w[0] + 1 == w[1]), "0-7, each its own meaning");
}

#[test]
fn fault_options_are_refused_by_scenarios_that_take_no_schedule() {
    // Before, `run raft::initial_election_2a --faults f.toml` ran with no faults and passed.
    let cat = catalogue();
    let dir = scratch("refuse");
    let f = dir.join("f.toml");
    crash_at(100).save(&f).unwrap();
    let f = f.to_str().unwrap();
    let out = dir.join("out.toml");
    let out = out.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "raft::initial_election_2a", "--seed", "0", "--faults", f]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["run", "toy::echo", "--seed", "0", "--save-faults", out]), exit::BAD_INPUT);
    assert!(!Path::new(out).exists(), "nothing written for a refused option");
    assert_eq!(run(&cat, &["replay", "mapreduce::wc", "--seed", "0", "--faults", f]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["sweep", "all", "--seeds", "0..1", "--faults", f]), exit::BAD_INPUT);
    // The ones that take a schedule play it.
    assert_eq!(run(&cat, &["run", "toy::faulty", "--seed", "0", "--faults", f]), exit::SAFETY);
    assert_eq!(run(&cat, &["run", "toy::faulty", "--seed", "0"]), exit::PASS);
}

#[test]
fn a_schedule_with_events_past_the_safety_phase_is_refused() {
    // Before, such events were dropped silently and the run played what was left.
    let cat = catalogue();
    let dir = scratch("late");
    let late = dir.join("late.toml");
    crash_at(TOY_PHASE_MS).save(&late).unwrap();
    let late = late.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "toy::faulty", "--seed", "0", "--faults", late]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["sweep", "toy::faulty", "--seeds", "0..3", "--faults", late]), exit::BAD_INPUT);
    // The project's swarms: their phase is drawn from the seed, between 10 and 30 s.
    crash_at(30_000).save(Path::new(late)).unwrap();
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "0", "--faults", late]), exit::BAD_INPUT);
}

#[test]
fn unreadable_or_unwritable_fault_files_are_bad_input() {
    // Before, `--save-faults` into a missing folder ran the swarm and reported a safety
    // violation (exit 1).
    let cat = catalogue();
    let dir = scratch("unwritable");
    let nowhere = dir.join("no/such/folder/f.toml");
    let nowhere = nowhere.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "1", "--save-faults", nowhere]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "1", "--faults", nowhere]), exit::BAD_INPUT);
    let garbage = dir.join("garbage.toml");
    std::fs::write(&garbage, "[[event]]\nat_ms = 1\nkind = \"explode\"\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "1", "--faults", garbage]), exit::BAD_INPUT);
    // And a writable one gets the schedule the run played, which replays it.
    let saved = dir.join("played.toml");
    let saved_s = saved.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "1", "--save-faults", saved_s]), exit::PASS);
    let played = FaultSchedule::load(&saved).unwrap();
    assert!(!played.events.is_empty());
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "1", "--faults", saved_s]), exit::PASS);
}

#[test]
fn sweep_save_with_a_fault_file_writes_seeds_that_name_a_copy_of_it() {
    // Before, the seed files did not mention the schedule, so they did not reproduce.
    let cat = catalogue();
    let dir = scratch("sweep-save");
    let f = dir.join("crash.toml");
    crash_at(100).save(&f).unwrap();
    let seeds_dir = dir.join("seeds");
    let args = [
        "sweep",
        "toy::faulty",
        "--seeds",
        "0..2",
        "--faults",
        f.to_str().unwrap(),
        "--save",
        "--seeds-dir",
        seeds_dir.to_str().unwrap(),
    ];
    assert_eq!(run(&cat, &args), exit::SAFETY);
    std::fs::remove_file(&f).unwrap();
    let saved = seeds::load_dir(&cat, &seeds_dir).unwrap();
    assert_eq!(saved.len(), 2);
    for s in &saved {
        assert_eq!(s.file.checker, "toy::no-crash", "the catching check is recorded");
        let copy = s.file.faults.as_deref().expect("the seed names its schedule");
        assert!(seeds_dir.join(copy).is_file(), "{copy} is next to the seed file");
        assert_eq!(s.opts.faults.as_ref().unwrap().schedule, crash_at(100));
        // The pair reproduces the failure without the original file.
        assert_eq!(run(&cat, &["replay", s.path.to_str().unwrap(), "--filter", "off"]), exit::SAFETY);
    }
}

#[test]
fn typed_options_refuse_bad_values_with_status_4() {
    let cat = catalogue();
    for args in [
        &["sweep", "raft", "--seeds", "5..5"][..],
        &["sweep", "raft", "--seeds", "0..3", "--jobs", "0"],
        &["sweep", "raft", "--seeds", "0..3", "--jobs", "100000"],
        &["determinism", "raft", "--seeds", "0..3", "--jobs", "257"],
        &["sweep", "raft::[oops", "--seeds", "0..3"],
        &["check-history", "--model", "sql", "x.txt"],
        &["check-history", "--model", "kv"],
        &["check-history", "--model", "kv", "x.txt", "--threads", "0"],
        &["check-history", "--model", "kv", "x.txt", "--budget", "lots"],
        &["check-history", "--model", "kv", "x.txt", "--timeout", "-1"],
        &["run", "toy::echo"],
        &["list", "--colour"],
    ] {
        assert_eq!(run(&cat, args), exit::BAD_INPUT, "{args:?}");
    }
    // The per-scenario breakdown is a flag now, not a hidden environment variable.
    assert_eq!(run(&cat, &["sweep", "toy::echo", "--seeds", "0..1", "--per-scenario"]), exit::PASS);
}

/// Every `cargo xtask …` command line quoted in the command line's own help text parses and
/// names things that exist (the `--bug` help once named a `list --bugs` that did not).
#[test]
fn command_lines_quoted_in_help_texts_are_real() {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        let mut texts: Vec<String> = cmd.get_about().map(|a| a.to_string()).into_iter().collect();
        texts.extend(cmd.get_long_about().map(|a| a.to_string()));
        for arg in cmd.get_arguments() {
            texts.extend(arg.get_help().map(|h| h.to_string()));
            texts.extend(arg.get_long_help().map(|h| h.to_string()));
        }
        for text in texts {
            for (i, span) in text.split('`').enumerate() {
                if i % 2 == 1 && span.starts_with("cargo xtask") {
                    out.push(span.to_string());
                }
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut quoted = Vec::new();
    walk(&simlab_cli::command(), &mut quoted);
    assert!(quoted.iter().any(|q| q == "cargo xtask list --bugs"), "{quoted:?}");
    let cat = scenarios::catalogue();
    for q in quoted {
        let args = q.split_whitespace().skip(1);
        simlab_cli::check_command_line(&cat, args).unwrap_or_else(|e| panic!("`{q}` in a help text: {e}"));
    }
}

#[test]
fn histories_and_pages_leave_a_run_as_attachments_the_command_line_writes() {
    let cat = catalogue();
    let dir = scratch("attachments");
    let (txt, json, art) = (dir.join("h.txt"), dir.join("h.json"), dir.join("artifacts"));
    let (txt_s, json_s, art_s) = (txt.to_str().unwrap(), json.to_str().unwrap(), art.to_str().unwrap());
    // A scenario that records no history refuses --history, and writes nothing.
    let refused = run(&cat, &["run", "raft::initial_election_2a", "--seed", "1", "--history", txt_s]);
    assert_eq!(refused, exit::BAD_INPUT);
    assert!(!txt.exists(), "a refused option writes no file");
    // Both forms from one run: the JSON form exactly, Porcupine's log with the same operations.
    let status =
        run(&cat, &["run", "kvraft::one_partition_3a", "--seed", "1", "--history", txt_s, "--history", json_s]);
    assert_eq!(status, exit::PASS);
    let exact: checkers::linearizability::History<checkers::models::kv::KvInput, checkers::models::kv::KvOutput> =
        checkers::formats::json::read_json(&json, "kv").unwrap();
    let log = checkers::formats::porcupine_kv::read_kv_log(&txt).unwrap();
    assert!(exact.len() >= 7);
    assert_eq!(log.len(), exact.len());
    // A failing sweep writes the page its run attached into --artifacts, under the name the
    // failure gives.
    let status = run(
        &cat,
        &[
            "sweep",
            "kvraft::persist_partition_unreliable_linearizable_3a",
            "--seeds",
            "0..1",
            "--bug",
            "local-reads",
            "--artifacts",
            art_s,
        ],
    );
    assert_eq!(status, exit::of_class(sim::FailureClass::Safety));
    // The planted bug is in the name: another bug's page of the same run would not overwrite it.
    let page = art.join("kvraft__persist_partition_unreliable_linearizable_3a-seed0-local-reads.html");
    let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    assert!(text.contains("<html"));
}

#[test]
fn a_saved_scenario_runs_from_its_file_and_bad_ones_are_refused() {
    let cat = catalogue();
    let dir = scratch("scenario-files");
    let file = dir.join("s.toml");
    let f = file.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "raft::swarm_2c", "--seed", "3", "--save-scenario", f]), exit::PASS);
    let spec = scenarios::spec::SpecFile::load(&file).unwrap().spec;
    assert_eq!((spec.scenario.as_str(), spec.seed), ("raft::swarm_2c", 3));
    // From the file: its own seed, or another one; replay takes it too.
    assert_eq!(run(&cat, &["run", f]), exit::PASS);
    assert_eq!(run(&cat, &["run", f, "--seed", "4"]), exit::PASS);
    assert_eq!(run(&cat, &["replay", f, "--filter", "off"]), exit::PASS);
    assert_eq!(simlab_cli::check_command_line(&cat, ["xtask", "run", f]), Ok(()));
    // A course scenario cannot save one; a scenario name needs a seed.
    let other = dir.join("o.toml");
    let o = other.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "raft::initial_election_2a", "--seed", "0", "--save-scenario", o]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["run", "raft::swarm_2c"]), exit::BAD_INPUT);
    // A file with a planted bug and a different --bug; a file with --faults beside it.
    std::fs::write(&other, format!("bug = \"commit-old-term\"\n{}", std::fs::read_to_string(&file).unwrap())).unwrap();
    assert_eq!(run(&cat, &["run", o, "--bug", "no-persist-term"]), exit::BAD_INPUT);
    let faults = dir.join("f.toml");
    std::fs::write(&faults, "").unwrap();
    assert_eq!(run(&cat, &["run", f, "--faults", faults.to_str().unwrap()]), exit::BAD_INPUT);
    // Malformed files, a file for a scenario that does not exist, one that is missing.
    std::fs::write(&other, "scenario = \"raft::swarm_2c\"\nservers = \"five\"\n").unwrap();
    assert_eq!(run(&cat, &["run", o]), exit::BAD_INPUT);
    std::fs::write(&other, std::fs::read_to_string(&file).unwrap().replace("raft::swarm_2c", "raft::nope")).unwrap();
    assert_eq!(run(&cat, &["run", o]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["run", dir.join("missing.toml").to_str().unwrap()]), exit::BAD_INPUT);
    // The sharded swarm saves and runs one too; one whose servers do not add up to its groups'
    // and controller's is refused.
    let sharded = dir.join("sharded.toml");
    let sh = sharded.to_str().unwrap();
    assert_eq!(run(&cat, &["run", "shardkv::swarm_4b", "--seed", "2", "--save-scenario", sh]), exit::PASS);
    assert_eq!(run(&cat, &["run", sh]), exit::PASS);
    std::fs::write(&other, std::fs::read_to_string(&sharded).unwrap().replacen("servers = ", "servers = 1", 1))
        .unwrap();
    assert_eq!(run(&cat, &["run", o]), exit::BAD_INPUT);
}

#[test]
fn shrink_writes_a_smaller_failing_scenario_and_its_trace_or_refuses() {
    let cat = catalogue();
    let dir = scratch("shrink");
    let out = dir.join("small.toml");
    let o = out.to_str().unwrap();
    // A course scenario is not shrunk; a passing run has nothing to keep.
    assert_eq!(run(&cat, &["shrink", "raft::figure8_unreliable_2c", "--seed", "78", "--out", o]), exit::BAD_INPUT);
    assert_eq!(run(&cat, &["shrink", "raft::swarm_2c", "--seed", "3", "--out", o]), exit::BAD_INPUT);
    assert!(!out.exists(), "a refused shrink leaves no file");
    let bug = "apply-out-of-order-after-snapshot";
    // Seed 1 fails in the plain swarm (the search without timing knobs and fault points).
    let args =
        ["shrink", "raft::swarm_2d", "--seed", "1", "--bug", bug, "--plain-swarm", "--out", o, "--max-runs", "60"];
    assert_eq!(run(&cat, &args), exit::SAFETY, "the status of the failure it kept");
    let small = scenarios::spec::SpecFile::load(&out).unwrap().spec;
    assert_eq!(small.bug.as_deref(), Some(bug));
    assert!(small.events.len() < 56, "{} fault events", small.events.len());
    let trace = std::fs::read_to_string(dir.join("small.toml.trace.txt")).unwrap();
    assert!(trace.contains("FAILED safety violation caught by apply-order"), "the trace ends with the failure");
    // The written file fails when run, under the seed it records (the search may have
    // moved a candidate to another seed: scenarios::shrink).
    assert_eq!(run(&cat, &["run", o]), exit::SAFETY);
    assert_eq!(run(&cat, &["run", o, "--seed", &small.seed.to_string()]), exit::SAFETY);
}

/// A saved seed file (a fixed one: its run passes).
const SEED_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds/raft__figure8_unreliable_2c-823.toml");

/// An option that would have no effect is refused, not ignored: a folder for seeds that are
/// not saved, a cost table for a sweep that is not split, a scale that a fixed case count
/// overrides, a case count or step budget of 0, a benchmark over 0 simulated seconds; and an
/// unwritable JUnit file is refused before the runs, not after them.
#[test]
fn options_that_would_change_nothing_are_refused() {
    let cat = catalogue();
    let dir = scratch("ignored-options");
    let seeds_dir = dir.join("seeds");
    let s = seeds_dir.to_str().unwrap();
    for args in [
        &["sweep", "toy::echo", "--seeds", "0..1", "--seeds-dir", s][..],
        &["bugs", "toy::echo", "--seeds", "0..1", "--bug", "wrong-answer", "--seeds-dir", s],
        &["sweep", "toy::echo", "--seeds", "0..1", "--costs", concat!(env!("CARGO_MANIFEST_DIR"), "/costs.tsv")],
        &["sweep", "toy::counted", "--seeds", "0..1", "--junit", "/nonexistent-simlab-dir/j.xml"],
        &["prop", "raft::safety_3", "--cases", "3", "--scale", "5"],
        &["prop", "raft::bug_commit_old_term", "--discovery", "1", "--scale", "2"],
        &["prop", "raft::safety_3", "--cases", "0"],
        &["check-history", "--model", "kv", "x.txt", "--budget", "0"],
        &["bench", "kv", "--clerks", "5", "--sim-secs", "0"],
        &["bench", "kv", "--clerks", "5,0"],
        &["sweep", "--rerun", concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds/golden/runs.jsonl"), "--seeds", "0..5"],
        // A saved seed replays as recorded: not plain, and not as a scenario file.
        &["replay", SEED_FILE, "--plain-swarm"],
        &["run", SEED_FILE],
        &["shrink", SEED_FILE],
        // No toy draws swarm knobs: a plain run would be the same run.
        &["run", "toy::echo", "--seed", "0", "--plain-swarm"],
        &["sweep", "toy::echo", "--seeds", "0..1", "--plain-swarm"],
        &["bugs", "toy::echo", "--seeds", "0..1", "--plain-swarm"],
        &["determinism", "toy::echo", "--seeds", "0..1", "--plain-swarm"],
        &["sweep", "--rerun", concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds/golden/runs.jsonl"), "--plain-swarm"],
    ] {
        assert_eq!(run(&cat, args), exit::BAD_INPUT, "{args:?}");
    }
    assert!(!seeds_dir.exists(), "a refused command writes no seed");
    assert_eq!(COUNTED.load(Ordering::Relaxed), 0, "the unwritable JUnit file was refused before any run");
    // With what they need, they are honoured.
    let args = ["sweep", "toy::echo", "--seeds", "0..1", "--bug", "wrong-answer", "--save", "--seeds-dir", s];
    assert_eq!(run(&cat, &args), exit::SAFETY);
    assert!(seeds_dir.join("toy__echo-0-wrong-answer.toml").is_file());
    let args = ["prop", "all", "--cases", "0"];
    assert_eq!(run(&cat, &args), exit::PASS, "--cases 0 with all lists the tests");
}

/// A command refused for one bad path (an unwritable file, a bad --filter) empties no file
/// that another of its options named: every path is checked before any file is truncated.
#[test]
fn a_refused_command_empties_no_output_file() {
    let cat = catalogue();
    let dir = scratch("refused-keeps-files");
    let keep = |name: &str| {
        let p = dir.join(name);
        std::fs::write(&p, "precious").unwrap();
        p
    };
    let (history, faults, scenario) = (keep("h.json"), keep("f.toml"), keep("s.toml"));
    let (h, f, sc) = (history.to_str().unwrap(), faults.to_str().unwrap(), scenario.to_str().unwrap());
    let nowhere = "/nonexistent-simlab-dir/x.toml";
    for args in [
        &["run", "kvraft::swarm_3b", "--seed", "1", "--history", h, "--save-faults", nowhere][..],
        &["run", "kvraft::swarm_3b", "--seed", "1", "--save-faults", f, "--save-scenario", nowhere],
        &["replay", "kvraft::swarm_3b", "--seed", "1", "--history", h, "--filter", "sim::net=bogus[["],
        &["replay", "raft::swarm_2c", "--seed", "1", "--save-faults", f, "--out", nowhere],
        &["replay", "raft::swarm_2c", "--seed", "1", "--save-scenario", sc, "--html", "/proc/simlab-no-such-dir"],
    ] {
        assert_eq!(run(&cat, args), exit::BAD_INPUT, "{args:?}");
    }
    for p in [&history, &faults, &scenario] {
        assert_eq!(std::fs::read_to_string(p).unwrap(), "precious", "{} kept", p.display());
    }
    // A path the refused command would have created is not left behind.
    let fresh = dir.join("new.json");
    let args =
        ["run", "kvraft::swarm_3b", "--seed", "1", "--history", fresh.to_str().unwrap(), "--save-faults", nowhere];
    assert_eq!(run(&cat, &args), exit::BAD_INPUT);
    assert!(!fresh.exists(), "{} left behind", fresh.display());
}

/// A usage error is one line that keeps clap's tip and names the subcommand's help: a
/// misspelt option says which one exists.
#[test]
fn a_usage_error_is_one_line_with_its_tip_and_the_subcommand_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "raft::swarm_2c", "--sed", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(i32::from(exit::BAD_INPUT)));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'--seed'") && err.contains("`cargo xtask run --help`"), "{err}");
}

#[test]
fn seed_ranges_too_large_to_plan_are_refused_before_any_run() {
    // Before, these panicked (capacity overflow, exit 101), aborted on a multi-gigabyte
    // allocation or overflowed a multiplication: a command plans at most 10 000 000 runs.
    let cat = catalogue();
    let max = format!("0..{}", u64::MAX);
    let dir = scratch("huge-ranges");
    let table = dir.join("costs.tsv");
    let table = table.to_str().unwrap();
    for args in [
        vec!["sweep", "toy::echo", "--seeds", &max],
        vec!["sweep", "all", "--seeds", "0..1000000"],
        vec!["sweep", "all", "--seeds", "0..1000000", "--format", "json"],
        vec!["sweep", "toy::echo", "--seeds", &max, "--shard", "1/3"],
        vec!["sweep", "toy", "--seeds", "0..10000000", "--shard", "0/2"],
        vec!["bugs", "toy", "--seeds", &max],
        vec!["bugs", "toy", "--seeds", "0..4000000"],
        vec!["costs", "toy", "--seeds", &max, "--out", table],
        vec!["determinism", "toy::echo", "--seeds", &max],
        vec!["bench", "sweep", "toy", "--seeds", &max],
    ] {
        assert_eq!(run(&cat, &args), exit::BAD_INPUT, "{args:?}");
    }
    assert!(!Path::new(table).exists(), "costs refused before creating its table");
    // Exactly the bound is planned (here only a part of it runs), and a count of parts far
    // beyond the runs is honoured: the parts past the runs are empty.
    assert_eq!(run(&cat, &["sweep", "toy::echo", "--seeds", "0..10000000", "--shard", "0/10000000"]), exit::PASS);
    assert_eq!(
        run(&cat, &["sweep", "toy::echo", "--seeds", "0..3", "--shard", &format!("2/{}", u64::MAX)]),
        exit::PASS
    );
    assert_eq!(
        run(&cat, &["sweep", "toy::echo", "--seeds", "0..3", "--shard", &format!("7/{}", u64::MAX)]),
        exit::PASS
    );
}
