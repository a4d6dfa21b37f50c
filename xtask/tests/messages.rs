//! What the real binary says when it refuses an input or reports something a run skipped:
//! one line on stderr naming what was wrong and what to do, and exit status 4 — checked on
//! the text, as a newcomer reads it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

/// A scratch folder for this file's tests (see `common::scratch_in`).
fn scratch(name: &str) -> PathBuf {
    common::scratch_in("messages", name)
}

/// Runs the binary in `dir` with `args`.
fn xtask_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).current_dir(dir).output().unwrap()
}

fn status(o: &Output) -> u8 {
    o.status.code().expect("exited") as u8
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refusal: status 4 and one line on stderr, which must contain every one of `want`.
fn refused(o: &Output, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(status(o), 4, "stdout: {}\nstderr: {err}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
}

#[test]
fn run_lists_the_fault_events_it_skipped() {
    // A schedule serves every cluster size, so `s9` is not refused; but a run that skips it
    // says so (before, only `replay`'s trace did).
    let dir = scratch("skipped");
    std::fs::write(dir.join("f.toml"), "[[event]]\nat_ms = 100\nkind = \"crash\"\nnode = \"s9\"\n").unwrap();
    let o = xtask_in(&dir, &["run", "raft::swarm_2c", "--seed", "1", "--faults", "f.toml"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("faults skipped: 1 event named no node when it fired"), "{out}");
    assert!(out.contains("at 100 ms: crash s9"), "{out}");
    // A name the format does not define is refused before the run, naming event and field.
    std::fs::write(dir.join("g.toml"), "[[event]]\nat_ms = 100\nkind = \"crash\"\nnode = \"leadr\"\n").unwrap();
    let o = xtask_in(&dir, &["run", "raft::swarm_2c", "--seed", "1", "--faults", "g.toml"]);
    refused(&o, &["g.toml", "event 1", "crash node", "'leadr'"]);
}

#[test]
fn shrink_refuses_an_out_path_in_a_missing_folder_before_searching() {
    // Before, shrink created the missing folders (every other output option refuses them).
    let dir = scratch("shrink-out");
    let o = xtask_in(
        &dir,
        &["shrink", "raft::swarm_2c", "--seed", "1", "--out", "no/such/folder/x.toml", "--max-runs", "1"],
    );
    refused(&o, &["--out no/such/folder/x.toml: cannot write"]);
    assert!(!stdout(&o).contains("shrinking"), "refused before the search: {}", stdout(&o));
    assert!(!dir.join("no").exists(), "no folder made");
}

#[test]
fn a_command_that_attaches_nothing_makes_no_artifacts_folder() {
    // Before, every run and sweep made an empty target/sim-artifacts in the working folder.
    let dir = scratch("no-artifacts");
    let o = xtask_in(&dir, &["sweep", "raft::initial_election_2a", "--seeds", "0..2", "--jobs", "1"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let o = xtask_in(&dir, &["run", "raft::initial_election_2a", "--seed", "0"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    assert!(!dir.join("target").exists(), "nothing was written, so no folder was made");
    // An unwritable one is still refused before any run: here a file stands in its way.
    std::fs::write(dir.join("blocked"), "").unwrap();
    let o = xtask_in(&dir, &["sweep", "raft::initial_election_2a", "--seeds", "0..1", "--artifacts", "blocked/sub"]);
    refused(&o, &["--artifacts blocked/sub: cannot create the folder", "blocked is a file"]);
    assert!(!stdout(&o).contains("sweep:"), "{}", stdout(&o));
}

#[test]
fn replay_refuses_a_filter_naming_no_trace_target() {
    // Before, `--filter sim::nett` printed an empty trace and exited 0.
    let dir = scratch("filter");
    let o = xtask_in(&dir, &["replay", "raft::initial_election_2a", "--seed", "0", "--filter", "sim::nett"]);
    refused(&o, &["'sim::nett' names no trace target", "sim::net, sim::node", "sim::check"]);
    let o = xtask_in(
        &dir,
        &["replay", "raft::initial_election_2a", "--seed", "0", "--filter", "info,sim::net=debug,bogus"],
    );
    refused(&o, &["'bogus' names no trace target"]);
    for good in ["sim::net,sim::fault", "off", "sim", "sim::timer=trace", "WARN"] {
        let o = xtask_in(&dir, &["replay", "raft::initial_election_2a", "--seed", "0", "--filter", good]);
        assert_eq!(status(&o), 0, "{good}: {}", stderr(&o));
    }
    let lines = |filter: &str| {
        stdout(&xtask_in(&dir, &["replay", "raft::initial_election_2a", "--seed", "0", "--filter", filter]))
            .lines()
            .count()
    };
    assert!(lines("sim::net") > lines("off") + 100, "an accepted target selects lines");
}

#[test]
fn a_folder_a_fault_schedule_or_a_whole_sweep_in_the_wrong_place_is_named_for_what_it_is() {
    let dir = scratch("misplaced");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    // Before: "'sub' is not one scenario".
    let o = xtask_in(&dir, &["run", "sub", "--seed", "1"]);
    refused(&o, &["sub is a folder", "cargo xtask list"]);
    // Before: a seed-file parse error ("missing field").
    std::fs::write(dir.join("faults.toml"), "[[event]]\nat_ms = 100\nkind = \"heal\"\n").unwrap();
    for sub in ["run", "replay", "shrink"] {
        let o = xtask_in(&dir, &[sub, "faults.toml"]);
        refused(&o, &["faults.toml is a fault schedule", "pass it with --faults"]);
    }
    // Before: "h.json: line 1: …" (a TOML error) for the history `run --history` writes, and
    // the same for a Porcupine key/value log.
    let o = xtask_in(&dir, &["run", "kvraft::speed_3a", "--seed", "0", "--history", "h.json"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let log = "{:process 0, :type :invoke, :f :put, :key \"1\", :value \"x\"}\n{:process 0, :type :ok, :f :put, :key \"1\", :value \"x\"}\n";
    std::fs::write(dir.join("c01.log"), log).unwrap();
    for file in ["h.json", "c01.log"] {
        for sub in ["run", "replay", "shrink"] {
            let o = xtask_in(&dir, &[sub, file]);
            refused(&o, &[&format!("{file} is a client history"), &format!("check-history --model kv {file}")]);
        }
        let o = xtask_in(&dir, &["check-history", "--model", "kv", file]);
        assert_eq!(status(&o), 0, "{file}: {}", stderr(&o));
    }
    // check-history's own refusals are the same one line as every other command's.
    let o = xtask_in(&dir, &["check-history", "--model", "kv", "missing.json"]);
    refused(&o, &["missing.json: cannot read"]);
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    // Before: "split the sweep differently (1 and 2 parts)".
    let sweep = |out: &str, extra: &[&str]| {
        let mut args = vec!["sweep", "raft::initial_election_2a", "--seeds", "0..2", "--format", "json", "--jobs", "1"];
        args.extend(extra);
        let o = xtask_in(&dir, &args);
        assert_eq!(status(&o), 0, "{}", stderr(&o));
        std::fs::write(dir.join(out), &o.stdout).unwrap();
    };
    sweep("whole.jsonl", &[]);
    sweep("part.jsonl", &["--shard", "0/2"]);
    let o = xtask_in(&dir, &["merge", "part.jsonl", "whole.jsonl"]);
    refused(&o, &["whole.jsonl is a whole sweep, not a part"]);
}

#[test]
fn help_works_as_a_subcommand_and_counts_are_singular_when_one() {
    let dir = scratch("help");
    let o = xtask_in(&dir, &["help"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Usage: cargo xtask"), "{}", stdout(&o));
    // No command at all is a usage error like any other: one line naming the commands.
    let o = xtask_in(&dir, &[]);
    refused(&o, &["no command given: one of list, run, sweep,", "(see `cargo xtask --help`)"]);
    let o = xtask_in(&dir, &["help", "sweep"]);
    assert_eq!(status(&o), 0);
    assert!(stdout(&o).contains("--seeds"), "{}", stdout(&o));
    // Before: "sweep: 1 runs of 1 scenarios on 1 jobs".
    let o = xtask_in(&dir, &["sweep", "raft::initial_election_2a", "--seeds", "0..1", "--jobs", "1"]);
    assert_eq!(status(&o), 0);
    assert!(stdout(&o).contains("sweep: 1 run of 1 scenario on 1 job"), "{}", stdout(&o));
}

#[test]
fn a_seed_range_too_large_to_plan_is_one_line_naming_the_count() {
    let dir = scratch("huge");
    let o = xtask_in(&dir, &["sweep", "raft::initial_election_2a", "--seeds", "0..18446744073709551615"]);
    refused(&o, &["(1 scenario) over seeds 0..18446744073709551615 is 18446744073709551615 runs", "at most 10000000"]);
    let o = xtask_in(&dir, &["costs", "raft", "--seeds", "0..18446744073709551615"]);
    refused(&o, &["more than 2^64 runs"]);
}

#[test]
fn options_that_would_change_nothing_or_fail_late_are_refused_before_any_run() {
    let dir = scratch("late");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let knob_free = repo.join("seeds/scenarios/raft__swarm_2d-1-apply-out-of-order-after-snapshot.toml");
    let knob_free = knob_free.to_str().unwrap();
    assert!(!std::fs::read_to_string(knob_free).unwrap().contains("[timing]"), "the file gives no knobs");
    // --plain-swarm on a file that gives no knobs.
    refused(&xtask_in(&dir, &["run", knob_free, "--plain-swarm"]), &["no [timing] or [fault_points]", "drop it"]);
    // A safety phase that leaves the liveness phase no room in the budget.
    let text = std::fs::read_to_string(knob_free).unwrap();
    let long = text.lines().map(|l| if l.starts_with("safety_ms") { "safety_ms = 119000" } else { l });
    std::fs::write(dir.join("long.toml"), long.collect::<Vec<_>>().join("\n")).unwrap();
    refused(&xtask_in(&dir, &["run", "long.toml"]), &["safety_ms = 119000", "budget", "at most 60000"]);
    // An empty trace filter.
    refused(
        &xtask_in(&dir, &["replay", "raft::initial_election_2a", "--seed", "1", "--filter", ""]),
        &["select nothing", "--filter"],
    );
    // Listing the property tests runs none.
    refused(&xtask_in(&dir, &["prop", "all", "--cases", "0", "--seed", "3"]), &["--seed would change nothing"]);
    refused(&xtask_in(&dir, &["prop", "all", "--cases", "0", "--scale", "5"]), &["--scale would change nothing"]);
    // A folder written into only when a run fails is checked first.
    std::fs::write(dir.join("a-file"), "").unwrap();
    let o =
        xtask_in(&dir, &["sweep", "raft::initial_election_2a", "--seeds", "0..1", "--save", "--seeds-dir", "a-file/x"]);
    refused(&o, &["--seeds-dir a-file/x", "cannot create the folder"]);
    assert!(stdout(&o).is_empty(), "no run before the refusal: {}", stdout(&o));
    // --shard beside the flags it replaces.
    refused(
        &xtask_in(&dir, &["sweep", "raft", "--seeds", "0..1", "--shard", "1/2", "--shard-count", "3"]),
        &["--shard 1/2", "give one or the other"],
    );
    // A bad value names the subcommand's help; a missing seed file is named as missing.
    refused(&xtask_in(&dir, &["run", "raft::initial_election_2a", "--seed", "x"]), &["see `", " run --help`"]);
    refused(&xtask_in(&dir, &["replay", "nope.toml", "--seed", "3"]), &["nope.toml: cannot read"]);
    // A shrink that ran out of candidate runs says so.
    let bug = "apply-out-of-order-after-snapshot";
    let args = [
        "shrink",
        "raft::swarm_2d",
        "--seed",
        "1",
        "--bug",
        bug,
        "--plain-swarm",
        "--out",
        "s.toml",
        "--max-runs",
        "3",
    ];
    let o = xtask_in(&dir, &args);
    assert_eq!(status(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("the search used all 3 candidate runs of --max-runs"), "{}", stdout(&o));
}

#[test]
fn a_sweep_counts_its_failures_by_check_and_again_below_a_long_list() {
    let dir = scratch("tally");
    let o = xtask_in(&dir, &["sweep", "kvraft::speed_3a", "--seeds", "0..11", "--bug", "reply-before-commit"]);
    assert_eq!(status(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    let class = out.lines().find(|l| l.starts_with("  safety: 11 (caught by ")).unwrap_or_else(|| panic!("{out}"));
    let total: u64 = class
        .trim_end_matches(')')
        .split("(caught by ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|c| c.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 11, "every failure is counted under one check: {class}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.starts_with("failed: 11 of 11 runs (safety 11)"), "the count again, last: {out}");
}

#[test]
fn session_15s_findings_are_answered_in_the_output() {
    let dir = scratch("s15");
    // `bugs` refused a plan by one bug's count (10 500 000 for 15 bugs' 157 500 000).
    let o = xtask_in(&dir, &["bugs", "raft::initial_election_2a", "--seeds", "0..6000000"]);
    refused(&o, &["runs (", "narrow the seed range"]);
    let err = stderr(&o);
    let bugs: u64 = err.trim_start_matches("error: ").split(' ').next().unwrap().parse().unwrap();
    assert!(err.contains(&format!("is {} runs", bugs * 6_000_000)), "{err}");
    // `determinism` said "0 of 4 runs differ" and nothing about every run failing.
    let o = xtask_in(&dir, &["determinism", "viewservice::test1_2a", "--seeds", "0..2", "--bug", "vs-no-ack"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("0 of 2 runs differ") && out.contains("of the 2 runs failed (safety"), "{out}");
    // `prop --discovery` on tests with no planted bug printed nothing and exited 0.
    let o = xtask_in(&dir, &["prop", "raft::safety_3", "--discovery", "2"]);
    refused(&o, &["--discovery measures planted-bug tests", "'raft::safety_3' selects none"]);
    // A Slurm index without a count was told about Kubernetes.
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["sweep", "raft::initial_election_2a", "--seeds", "0..2"])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("JOB_COMPLETION_INDEX")
        .current_dir(&dir)
        .output()
        .unwrap();
    refused(&o, &["from SLURM_ARRAY_TASK_ID", "--shard-count N"]);
    assert!(!stderr(&o).contains("Kubernetes"), "{}", stderr(&o));
    // primary/backup records a history, and `--history` writes it; the old kvpaxos tests'
    // concurrent clerks are clients of their own (they were all client 0, overlapping).
    let o = xtask_in(&dir, &["run", "pbservice::basic_fail_2b", "--seed", "0", "--history", "pb.json"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let o = xtask_in(&dir, &["check-history", "--model", "kv", "pb.json"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let o = xtask_in(&dir, &["run", "kvpaxos::basic_3b", "--seed", "0", "--history", "kvp.json"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let o = xtask_in(&dir, &["check-history", "--model", "kv", "kvp.json"]);
    let out = stdout(&o);
    let clients: u64 = out.split(" clients").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(clients > 100, "15 clerks a round over 20 rounds: {out}");
    // A sharded scenario file with one controller server said "3 controller servers".
    let o = xtask_in(&dir, &["run", "shardkv::swarm_4b", "--seed", "3", "--save-scenario", "sk.toml"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    // Two controller servers fewer, and `servers` (their sum with the groups') to match.
    let text = std::fs::read_to_string(dir.join("sk.toml")).unwrap();
    let servers = text.lines().find_map(|l| l.strip_prefix("servers = ")).unwrap();
    let fewer = servers.parse::<u64>().unwrap() - 2;
    let text = text.replacen(&format!("servers = {servers}\n"), &format!("servers = {fewer}\n"), 1);
    std::fs::write(dir.join("sk1.toml"), text.replace("ctrlers = 3", "ctrlers = 1")).unwrap();
    let out = stdout(&xtask_in(&dir, &["run", "sk1.toml"]));
    assert!(out.contains(", 1 controller server,") && !out.contains("3 controller servers"), "{out}");
    // A Raft swarm file of bursts was shown as "a proposal every 196ms".
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bursts = repo.join("seeds/scenarios/raft__swarm_2d-1-apply-out-of-order-after-snapshot.toml");
    let out = stdout(&xtask_in(&dir, &["run", bursts.to_str().unwrap()]));
    assert!(out.contains(", 3 bursts of proposals;") && !out.contains("a proposal every"), "{out}");
    // A fault schedule naming a node of the other kind of cluster ran, skipping the event.
    std::fs::write(dir.join("s9.toml"), "[[event]]\nat_ms = 100\nkind = \"crash\"\nnode = \"s9\"\n").unwrap();
    let o = xtask_in(&dir, &["run", "shardkv::swarm_4b", "--seed", "1", "--faults", "s9.toml"]);
    refused(&o, &["event 1 (crash) names s9, which no shardkv::swarm_4b run has", "s<gid>-<i>"]);
    std::fs::write(dir.join("g.toml"), "[[event]]\nat_ms = 100\nkind = \"crash\"\nnode = \"s100-0\"\n").unwrap();
    let o = xtask_in(&dir, &["run", "raft::swarm_2c", "--seed", "1", "--faults", "g.toml"]);
    refused(&o, &["names s100-0, which no raft::swarm_2c run has"]);
    // A scenario file's value check names its line, as a type error does.
    let text = std::fs::read_to_string(dir.join("sk.toml")).unwrap().replace("ctrlers = 3", "ctrlers = 0");
    std::fs::write(dir.join("sk0.toml"), &text).unwrap();
    let line = text.lines().position(|l| l == "ctrlers = 0").unwrap() + 1;
    let o = xtask_in(&dir, &["run", "sk0.toml"]);
    refused(&o, &[&format!("sk0.toml: line {line}: workload.ctrlers = 0")]);
    // A change's unknown kind was placed at the workload's own `kind` line.
    let text = std::fs::read_to_string(dir.join("sk.toml")).unwrap();
    let line = text.lines().position(|l| l == "kind = \"join\"").unwrap() + 1;
    std::fs::write(dir.join("sk2.toml"), text.replacen("kind = \"join\"", "kind = \"joyn\"", 1)).unwrap();
    let o = xtask_in(&dir, &["run", "sk2.toml"]);
    refused(&o, &[&format!("sk2.toml: line {line}: kind: unknown variant `joyn`")]);
    // A repeated gid names the table that repeats it.
    let second_gid = text.lines().enumerate().filter(|(_, l)| l.starts_with("gid = ")).nth(1).unwrap();
    let first_gid = text.lines().find(|l| l.starts_with("gid = ")).unwrap();
    let lines: Vec<&str> =
        text.lines().enumerate().map(|(i, l)| if i == second_gid.0 { first_gid } else { l }).collect();
    std::fs::write(dir.join("sk3.toml"), lines.join("\n") + "\n").unwrap();
    let o = xtask_in(&dir, &["run", "sk3.toml"]);
    refused(&o, &[&format!("sk3.toml: line {}: [[workload.group]] #2: ", second_gid.0 + 1), "an earlier group's too"]);
}
