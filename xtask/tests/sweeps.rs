//! Sweeps across machines, as separate processes of the real binary: N shard processes run in
//! parallel and merged equal one unsharded sweep run for run; `merge` refuses a missing part
//! or a run given twice; `compare` names the first run whose trace hash was edited; the JSON
//! output is only JSON lines; the shard index and count come from the environment variables
//! of Kubernetes and Slurm.

use serde_json::Value;
use simlab_cli::exit;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Cheap but mixed: Raft scenarios of different costs and a MapReduce one.
const FILTER: &str = "{raft::*_2a,raft::backup_2b,mapreduce::crash}";
const SEEDS: &str = "0..4";

mod common;

/// A scratch folder for this file's tests (see `common::scratch_in`).
fn scratch(name: &str) -> PathBuf {
    common::scratch_in("sweeps", name)
}

/// The command line binary, with no shard variables inherited from the environment.
fn xtask(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args);
    for v in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"] {
        c.env_remove(v);
    }
    c
}

fn status(o: &Output) -> u8 {
    o.status.code().expect("exited") as u8
}

/// Runs `sweep FILTER --seeds SEEDS --format json` plus `extra`, writing stdout to `out`.
fn sweep_to(out: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut c = xtask(&["sweep", FILTER, "--seeds", SEEDS, "--format", "json", "--jobs", "1"]);
    c.args(extra).stdout(std::fs::File::create(out).unwrap()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

/// The run lines of a results file, without wall times (the only field that is not a
/// function of (scenario, seed, build)).
fn runs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{}: not JSON: {e}: {l}", path.display())))
        .filter(|v| v.get("summary").is_none())
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("wall_ms");
            v
        })
        .collect()
}

struct Fixture {
    dir: PathBuf,
    whole: PathBuf,
    parts: Vec<PathBuf>,
}

/// One unsharded sweep and its three parts, all run in parallel as separate processes.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = scratch("fixture");
        let whole = dir.join("whole.jsonl");
        let parts: Vec<PathBuf> = (0..3).map(|k| dir.join(format!("part-{k}.jsonl"))).collect();
        let mut children = vec![sweep_to(&whole, &[], &[])];
        for (k, p) in parts.iter().enumerate() {
            children.push(sweep_to(p, &["--shard", &format!("{k}/3")], &[]));
        }
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stderr));
        }
        Fixture { dir, whole, parts }
    })
}

#[test]
fn shards_run_in_parallel_and_merged_equal_the_unsharded_sweep_run_for_run() {
    let f = fixture();
    let whole = runs(&f.whole);
    assert_eq!(whole.len(), 5 * 4, "three Raft 2A scenarios, backup_2b and mapreduce::crash over 4 seeds");
    // Every part ran something, and no part ran everything.
    for p in &f.parts {
        let n = runs(p).len();
        assert!(n > 0 && n < whole.len(), "{}: {n} runs", p.display());
    }
    for (name, parts) in [("three", f.parts.clone()), ("reversed", f.parts.iter().rev().cloned().collect())] {
        let merged = f.dir.join(format!("merged-{name}.jsonl"));
        let mut args = vec!["merge".to_string()];
        args.extend(parts.iter().map(|p| p.display().to_string()));
        args.extend(["--out".into(), merged.display().to_string()]);
        let o = xtask(&args.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
        assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(runs(&merged), whole, "merged parts equal the unsharded sweep, run for run, in order");
        let o = xtask(&["compare", f.whole.to_str().unwrap(), merged.to_str().unwrap()]).output().unwrap();
        assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stdout));
    }
    // Two parts, through the environment as Slurm gives them.
    let dir = scratch("two");
    let children: Vec<_> = (0..2)
        .map(|k| {
            let id = k.to_string();
            sweep_to(
                &dir.join(format!("p{k}.jsonl")),
                &[],
                &[("SLURM_ARRAY_TASK_ID", &id), ("SLURM_ARRAY_TASK_COUNT", "2")],
            )
        })
        .collect();
    for c in children {
        assert_eq!(status(&c.wait_with_output().unwrap()), exit::PASS);
    }
    let merged = dir.join("merged.jsonl");
    let o = xtask(&[
        "merge",
        dir.join("p1.jsonl").to_str().unwrap(),
        dir.join("p0.jsonl").to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(runs(&merged), whole, "two shards merged equal the unsharded sweep");
}

#[test]
fn merge_refuses_a_missing_part_a_repeated_part_and_a_run_given_twice() {
    let f = fixture();
    let p = |k: usize| f.parts[k].to_str().unwrap();
    let o = xtask(&["merge", p(0), p(2)]).output().unwrap();
    assert_eq!(status(&o), exit::BAD_INPUT);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("part 1/3 of the sweep is missing") && err.contains(" seed "), "{err}");
    let o = xtask(&["merge", p(0), p(1), p(1), p(2)]).output().unwrap();
    assert_eq!(status(&o), exit::BAD_INPUT);
    assert!(String::from_utf8_lossy(&o.stderr).contains("part 1/3 is given twice"));
    // A part that holds a run of another part as well: that run ran twice.
    let dir = scratch("twice");
    let doctored = dir.join("part-1.jsonl");
    let stolen = std::fs::read_to_string(&f.parts[0]).unwrap().lines().next().unwrap().to_string();
    let mut lines: Vec<String> = std::fs::read_to_string(&f.parts[1]).unwrap().lines().map(String::from).collect();
    lines.insert(0, stolen.clone());
    // Keep the summary's count right, so the file is complete as far as it says.
    let last = lines.len() - 1;
    let mut summary: Value = serde_json::from_str(&lines[last]).unwrap();
    let n = summary["summary"]["runs"].as_u64().unwrap();
    summary["summary"]["runs"] = (n + 1).into();
    lines[last] = summary.to_string();
    std::fs::write(&doctored, lines.join("\n") + "\n").unwrap();
    let o = xtask(&["merge", p(0), doctored.to_str().unwrap(), p(2)]).output().unwrap();
    assert_eq!(status(&o), exit::BAD_INPUT);
    let err = String::from_utf8_lossy(&o.stderr);
    let key: Value = serde_json::from_str(&stolen).unwrap();
    let named = format!("{} seed {} ran twice", key["scenario"].as_str().unwrap(), key["seed"]);
    assert!(err.contains(&named), "{err}");
    // A part cut short (its process died) has no summary line.
    let cut = dir.join("cut.jsonl");
    let text = std::fs::read_to_string(&f.parts[1]).unwrap();
    std::fs::write(&cut, text.lines().next().unwrap()).unwrap();
    let o = xtask(&["merge", p(0), cut.to_str().unwrap(), p(2)]).output().unwrap();
    assert_eq!(status(&o), exit::BAD_INPUT);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no summary line"));
}

#[test]
fn compare_names_the_first_run_whose_trace_hash_was_edited() {
    let f = fixture();
    let text = std::fs::read_to_string(&f.whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Edit one trace hash in the 7th run, and (to check "first") another in the 12th.
    let edit = |line: &str| -> (String, String) {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let key = format!("{} seed {}", v["scenario"].as_str().unwrap(), v["seed"]);
        let hash = v["trace_hash"].as_str().unwrap().to_string();
        let flipped = format!("{}{}", &hash[..15], if hash.ends_with('0') { '1' } else { '0' });
        v["trace_hash"] = flipped.into();
        (v.to_string(), key)
    };
    let dir = scratch("compare");
    let edited = dir.join("edited.jsonl");
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let (seventh, key) = edit(lines[6]);
    out[6] = seventh;
    std::fs::write(&edited, out.join("\n") + "\n").unwrap();
    let o = xtask(&["compare", f.whole.to_str().unwrap(), edited.to_str().unwrap()]).output().unwrap();
    assert_eq!(status(&o), exit::NONDETERMINISTIC);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains(&format!("first difference: {key}")), "{said}");
    assert!(said.contains("trace_hash:") && said.contains("line 7"), "{said}");
    assert!(said.contains("1 run(s) differ"), "{said}");
    out[11] = edit(lines[11]).0;
    std::fs::write(&edited, out.join("\n") + "\n").unwrap();
    let o = xtask(&["compare", f.whole.to_str().unwrap(), edited.to_str().unwrap()]).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains(&format!("first difference: {key}")) && said.contains("2 run(s) differ"), "{said}");
    // The same file compares equal; a file with a run missing does not, unless --common.
    let o = xtask(&["compare", f.whole.to_str().unwrap(), f.whole.to_str().unwrap()]).output().unwrap();
    assert_eq!(status(&o), exit::PASS);
    let o = xtask(&["compare", f.whole.to_str().unwrap(), f.parts[0].to_str().unwrap()]).output().unwrap();
    assert_eq!(status(&o), exit::NONDETERMINISTIC);
    let o = xtask(&["compare", "--common", f.whole.to_str().unwrap(), f.parts[0].to_str().unwrap()]).output().unwrap();
    assert_eq!(status(&o), exit::PASS);
}

#[test]
fn the_golden_table_reruns_as_a_sweep_and_compares_equal() {
    // The first golden runs (all of the table is CI's check: .ci/run): one mechanism, the
    // golden file is a results file.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/golden/runs.jsonl");
    let dir = scratch("golden");
    let excerpt = dir.join("golden.jsonl");
    let text = std::fs::read_to_string(&golden).unwrap();
    let head: Vec<&str> = text.lines().take(4).collect();
    std::fs::write(&excerpt, head.join("\n") + "\n").unwrap();
    let now = dir.join("now.jsonl");
    let o = xtask(&["sweep", "--rerun", excerpt.to_str().unwrap(), "--format", "json"])
        .stdout(std::fs::File::create(&now).unwrap())
        .output()
        .unwrap();
    // The excerpt holds a planted-bug run that fails (liveness): the sweep says so.
    assert_eq!(status(&o), exit::LIVENESS, "{}", String::from_utf8_lossy(&o.stderr));
    let o = xtask(&["compare", excerpt.to_str().unwrap(), now.to_str().unwrap()]).output().unwrap();
    assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stdout));
    // The golden lines themselves are what a sweep writes, but for its own fields.
    let rerun = std::fs::read_to_string(&now).unwrap();
    for (g, r) in head.iter().zip(rerun.lines()) {
        let mut r: Value = serde_json::from_str(r).unwrap();
        let obj = r.as_object_mut().unwrap();
        obj.remove("wall_ms");
        obj.remove("message");
        assert_eq!(serde_json::from_str::<Value>(g).unwrap(), r);
    }
}

#[test]
fn parts_of_a_rerun_merge_though_each_machine_names_the_file_differently() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/golden/runs.jsonl");
    let text = std::fs::read_to_string(golden).unwrap();
    let head: Vec<&str> = text.lines().filter(|l| l.contains("\"outcome\":\"pass\"")).take(3).collect();
    let dir = scratch("rerun-parts");
    let mut parts = Vec::new();
    for k in 0..2 {
        // Each "machine" has the list at a path of its own.
        let list = dir.join(format!("machine-{k}.jsonl"));
        std::fs::write(&list, head.join("\n") + "\n").unwrap();
        let out = dir.join(format!("part-{k}.jsonl"));
        let o = xtask(&["sweep", "--rerun", list.to_str().unwrap(), "--format", "json", "--shard", &format!("{k}/2")])
            .stdout(std::fs::File::create(&out).unwrap())
            .output()
            .unwrap();
        assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stderr));
        parts.push(out);
    }
    let merged = dir.join("merged.jsonl");
    let o =
        xtask(&["merge", parts[0].to_str().unwrap(), parts[1].to_str().unwrap(), "--out", merged.to_str().unwrap()])
            .output()
            .unwrap();
    assert_eq!(status(&o), exit::PASS, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(runs(&merged).len(), 3);
}

#[test]
fn json_output_is_json_lines_and_a_summary_and_progress_stays_off_a_pipe() {
    let f = fixture();
    let text = std::fs::read_to_string(&f.parts[2]).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (summary, runs) = lines.split_last().unwrap();
    let s = &summary["summary"];
    assert_eq!(s["runs"].as_u64().unwrap() as usize, runs.len());
    assert_eq!(s["shard"], serde_json::json!({"index": 2, "count": 3}));
    assert_eq!(s["selection"]["grid"]["seeds"], SEEDS);
    for r in runs {
        for field in ["scenario", "seed", "bug", "outcome", "checker", "trace_hash", "events", "sim_time_ns", "wall_ms"]
        {
            assert!(r.get(field).is_some(), "{field} in {r}");
        }
    }
    // Human lines went to stderr, and no progress bar (stderr is a pipe here).
    let o = xtask(&["sweep", "raft::initial_election_2a", "--seeds", "0..2", "--format", "json"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("runs: 2  passed: 2"), "{err}");
    assert!(!err.contains('\r') && !err.contains("eta"), "no progress bar on a pipe: {err:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
}

#[test]
fn shard_numbers_come_from_kubernetes_and_slurm_variables_or_are_refused() {
    let run = |env: &[(&str, &str)], extra: &[&str]| -> Output {
        let mut c = xtask(&["sweep", "raft::initial_election_2a", "--seeds", "0..4", "--format", "json"]);
        c.args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let shard_of = |o: &Output| -> Value {
        let text = String::from_utf8_lossy(&o.stdout);
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        last["summary"]["shard"].clone()
    };
    let o = run(&[("JOB_COMPLETION_INDEX", "1")], &["--shard-count", "2"]);
    assert_eq!(status(&o), exit::PASS);
    assert_eq!(shard_of(&o), serde_json::json!({"index": 1, "count": 2}));
    let o = run(&[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "4")], &[]);
    assert_eq!(shard_of(&o), serde_json::json!({"index": 0, "count": 4}));
    // Kubernetes gives no count: refused, saying what to pass.
    let o = run(&[("JOB_COMPLETION_INDEX", "1")], &[]);
    assert_eq!(status(&o), exit::BAD_INPUT);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--shard-count"));
    // A Slurm array numbered from 1 is refused rather than running the wrong part.
    let o = run(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4")], &[]);
    assert_eq!(status(&o), exit::BAD_INPUT);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--array=0-3"));
    // --shard overrides the environment.
    let o = run(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")], &["--shard", "0/2"]);
    assert_eq!(shard_of(&o), serde_json::json!({"index": 0, "count": 2}));
    let o = run(&[], &["--shard", "2/2"]);
    assert_eq!(status(&o), exit::BAD_INPUT);
}

#[test]
fn junit_has_a_case_per_scenario_and_per_failing_run() {
    let dir = scratch("junit");
    let xml = dir.join("sweep.xml");
    let o = xtask(&[
        "sweep",
        "mapreduce::crash",
        "--seeds",
        "0..2",
        "--bug",
        "no-reissue",
        "--junit",
        xml.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(status(&o), exit::LIVENESS);
    let text = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(text.matches("<testcase ").count(), 1 + 2, "{text}");
    assert!(text.contains(r#"name="seed 0 (bug no-reissue)""#), "{text}");
    assert!(text.contains("REPRODUCE WITH: cargo xtask replay mapreduce::crash --seed 0 --bug no-reissue"));
}
