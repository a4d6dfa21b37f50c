//! The recipes run as written: the GitHub Actions workflow (`.github/workflows/sweep.yml`),
//! the Kubernetes Indexed Job (`deploy/kubernetes/`) and the Slurm job array (`deploy/slurm/`)
//! parse (YAML by a YAML 1.2 parser), their numbers of parts agree with their commands, and
//! their own scripts — taken from the files, unchanged — run here: one process per part, in
//! parallel, with the environment each engine would give it, then the recipe's merge. The
//! merged results equal an unsharded sweep run for run. Only `cargo` is a stand-in that runs
//! this build's `xtask` for `cargo xtask …`, and the selection is small (FILTER and SEEDS,
//! which every recipe reads from its environment).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

const FILTER: &str = "{raft::*_2a,mapreduce::crash}";
const SEEDS: &str = "0..3";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

mod common;

/// A scratch folder for this file's tests (see `common::scratch_in`).
fn scratch(name: &str) -> PathBuf {
    common::scratch_in("recipes", name)
}

fn yaml(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse as YAML: {e}"))
}

/// A folder with a `cargo` that runs this build's `xtask` for `cargo xtask …` and refuses
/// anything else (the recipes' own build steps are not run here).
fn cargo_shim(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cargo = bin.join("cargo");
    // Written once: rewriting it while another part executes it fails ("text file busy").
    if cargo.is_file() {
        return bin;
    }
    std::fs::write(
        &cargo,
        "#!/bin/sh\nif [ \"$1\" = xtask ]; then shift; exec \"$SIMLAB_XTASK\" \"$@\"; fi\necho \"cargo stand-in: only cargo xtask runs in this test\" >&2\nexit 99\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Starts `shell -c script` in `cwd` with `env`, the stand-in cargo first on PATH, and no
/// shard variables but those given.
#[allow(clippy::disallowed_methods)] // allow-entropy: a test's own switches, outside any run
fn start(shell: &[&str], script: &str, cwd: &Path, env: &[(&str, String)]) -> Child {
    let shim = cargo_shim(cwd);
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new(shell[0]);
    c.args(&shell[1..]).arg(script).current_dir(cwd).env("PATH", path).env("SIMLAB_XTASK", env!("CARGO_BIN_EXE_xtask"));
    for v in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_CPUS_PER_TASK"] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits for every child; each must exit 0.
fn wait_all(children: Vec<Child>, what: &str) {
    for (k, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{what} {k} failed ({:?}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The run lines of a results file without wall times.
fn runs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("summary").is_none())
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("wall_ms");
            v
        })
        .collect()
}

/// What one unsharded sweep of the selection gives.
fn unsharded(dir: &Path) -> Vec<Value> {
    let out = dir.join("unsharded.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["sweep", FILTER, "--seeds", SEEDS, "--format", "json"])
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .stdout(std::fs::File::create(&out).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    let r = runs(&out);
    assert_eq!(r.len(), 4 * 3);
    r
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str().unwrap_or_else(|| panic!("{what} is not a string: {y:?}"))
}

/// The number in `--flag N` within a script.
fn number_after(script: &str, flag: &str) -> Option<u64> {
    let at = script.find(flag)? + flag.len();
    script[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn the_github_workflow_parses_and_its_shard_and_merge_steps_run_as_written() {
    let docs = yaml(".github/workflows/sweep.yml");
    let wf = &docs[0];
    let shards: u64 = str_of(&wf["env"]["SHARDS"], "env.SHARDS").parse().unwrap();
    let matrix: Vec<i64> = wf["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_vec()
        .expect("a matrix of shards")
        .iter()
        .map(|y| y.as_i64().unwrap())
        .collect();
    assert_eq!(matrix, (0..shards as i64).collect::<Vec<_>>(), "the matrix lists parts 0..SHARDS");
    let step = |job: &str, id: &str| -> String {
        let steps = wf["jobs"][job]["steps"].as_vec().unwrap_or_else(|| panic!("job {job} has steps"));
        let s = steps.iter().find(|s| s["id"].as_str() == Some(id)).unwrap_or_else(|| panic!("step {id} in {job}"));
        str_of(&s["run"], id).to_string()
    };
    let upload = wf["jobs"]["shard"]["steps"].as_vec().unwrap().iter().any(|s| {
        s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact"))
            && s["if"].as_str() == Some("always()")
            && s["with"]["path"].as_str() == Some("results/")
    });
    assert!(upload, "each part uploads its results and failing seeds, whether or not runs failed");
    let needs = &wf["jobs"]["merge"]["needs"];
    assert_eq!(needs.as_str(), Some("shard"), "the merge job waits for every part");
    assert_eq!(wf["jobs"]["merge"]["if"].as_str(), Some("always()"), "and merges even when runs failed");

    let dir = scratch("github");
    let want = unsharded(&dir);
    // GitHub runs `run:` scripts with bash -e -o pipefail.
    let bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"];
    let sweep = step("shard", "sweep");
    let children = (0..shards)
        .map(|k| {
            let env = [
                ("SHARD", k.to_string()),
                ("SHARDS", shards.to_string()),
                ("FILTER", FILTER.to_string()),
                ("SEEDS", SEEDS.to_string()),
            ];
            start(&bash, &sweep, &dir, &env)
        })
        .collect();
    wait_all(children, "shard job");
    wait_all(vec![start(&bash, &step("merge", "merge"), &dir, &[])], "merge job");
    assert_eq!(runs(&dir.join("results/sweep.jsonl")), want, "merged parts equal the unsharded sweep");
    assert!(dir.join("results/sweep.xml").is_file(), "the JUnit report of the merge");
    assert!(dir.join("results/part-0.xml").is_file(), "each part's JUnit report");

    // The golden job, on an excerpt of the table (CI runs the whole table: .ci/run).
    let gdir = scratch("github-golden");
    std::fs::create_dir_all(gdir.join("seeds/golden")).unwrap();
    let text = std::fs::read_to_string(root().join("seeds/golden/runs.jsonl")).unwrap();
    // Four lines, one of them a planted-bug failure: the step expects the sweep to say so.
    let head: Vec<&str> = text.lines().take(4).collect();
    assert!(head.iter().any(|l| !l.contains("\"outcome\":\"pass\"")));
    std::fs::write(gdir.join("seeds/golden/runs.jsonl"), head.join("\n") + "\n").unwrap();
    wait_all(vec![start(&bash, &step("golden", "golden"), &gdir, &[])], "golden job");
}

#[test]
fn the_kubernetes_indexed_job_parses_and_its_pods_and_merge_run_as_written() {
    let docs = yaml("deploy/kubernetes/sweep-job.yaml");
    let job = docs.iter().find(|d| d["kind"].as_str() == Some("Job")).expect("a Job");
    assert!(docs.iter().any(|d| d["kind"].as_str() == Some("PersistentVolumeClaim")), "a volume for the results");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"), "JOB_COMPLETION_INDEX is set only in Indexed Jobs");
    let n = spec["completions"].as_i64().expect("completions") as u64;
    assert_eq!(spec["parallelism"].as_i64(), Some(n as i64));
    let container = &spec["template"]["spec"]["containers"][0];
    let command: Vec<&str> = container["command"].as_vec().unwrap().iter().map(|y| str_of(y, "command")).collect();
    assert_eq!(&command[..2], ["sh", "-c"]);
    let script = command[2];
    assert_eq!(number_after(script, "--shard-count"), Some(n), "the count passed equals completions");
    let env: Vec<&str> = container["env"].as_vec().unwrap().iter().map(|e| str_of(&e["name"], "env name")).collect();
    for v in ["FILTER", "SEEDS", "RESULTS"] {
        assert!(env.contains(&v), "{v} is set in the pod");
    }
    let merge_docs = yaml("deploy/kubernetes/merge-job.yaml");
    let merge = &merge_docs[0]["spec"]["template"]["spec"]["containers"][0];
    let merge_cmd: Vec<&str> = merge["command"].as_vec().unwrap().iter().map(|y| str_of(y, "command")).collect();
    assert_eq!(&merge_cmd[..2], ["sh", "-c"]);

    let dir = scratch("kubernetes");
    let want = unsharded(&dir);
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let base =
        [("FILTER", FILTER.to_string()), ("SEEDS", SEEDS.to_string()), ("RESULTS", results.display().to_string())];
    let pods = (0..n)
        .map(|k| {
            let mut env = base.to_vec();
            env.push(("JOB_COMPLETION_INDEX", k.to_string()));
            start(&["sh", "-c"], script, &dir, &env)
        })
        .collect();
    wait_all(pods, "pod");
    wait_all(vec![start(&["sh", "-c"], merge_cmd[2], &dir, &base)], "merge job");
    assert_eq!(runs(&results.join("sweep.jsonl")), want, "merged parts equal the unsharded sweep");
}

#[test]
fn the_slurm_array_runs_as_written() {
    let script = std::fs::read_to_string(root().join("deploy/slurm/sweep.sbatch")).unwrap();
    let array = script.lines().find_map(|l| l.strip_prefix("#SBATCH --array=")).expect("an array");
    let (lo, hi) = array.trim().split_once('-').expect("--array=0-N");
    assert_eq!(lo, "0", "parts are numbered from 0");
    let n: u64 = hi.parse::<u64>().unwrap() + 1;
    let dir = scratch("slurm");
    let want = unsharded(&dir);
    let base = [("FILTER", FILTER.to_string()), ("SEEDS", SEEDS.to_string()), ("RESULTS", "results".to_string())];
    let path = root().join("deploy/slurm/sweep.sbatch");
    let tasks = (0..n)
        .map(|k| {
            let mut env = base.to_vec();
            env.push(("SLURM_ARRAY_TASK_ID", k.to_string()));
            env.push(("SLURM_ARRAY_TASK_COUNT", n.to_string()));
            start(&["bash"], path.to_str().unwrap(), &dir, &env)
        })
        .collect();
    wait_all(tasks, "array task");
    let merge = root().join("deploy/slurm/merge.sbatch");
    wait_all(vec![start(&["bash"], merge.to_str().unwrap(), &dir, &base)], "merge job");
    assert_eq!(runs(&dir.join("results/sweep.jsonl")), want, "merged parts equal the unsharded sweep");
}

#[test]
fn every_cargo_xtask_line_of_the_recipes_is_a_valid_command_line() {
    // Shell variables stand for the values the recipes give them.
    let values = [
        ("\"$FILTER\"", "all"),
        ("\"$SEEDS\"", "0..100"),
        ("\"$SHARD/$SHARDS\"", "0/4"),
        ("\"${SLURM_CPUS_PER_TASK:-2}\"", "2"),
    ];
    let files = [
        ".github/workflows/sweep.yml",
        "deploy/kubernetes/sweep-job.yaml",
        "deploy/kubernetes/merge-job.yaml",
        "deploy/slurm/sweep.sbatch",
        "deploy/slurm/merge.sbatch",
    ];
    let catalogue = scenarios::catalogue();
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(root().join(f)).unwrap().replace("\\\n", " ");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let Some(at) = line.find("cargo xtask ") else { continue };
            let mut cmd = line[at + "cargo xtask ".len()..].split(" > ").next().unwrap().to_string();
            for (var, value) in values {
                cmd = cmd.replace(var, value);
            }
            let args: Vec<String> = cmd.split_whitespace().map(|w| w.trim_matches('"').to_string()).collect();
            let r = simlab_cli::check_command_line(&catalogue, std::iter::once("xtask".to_string()).chain(args));
            assert!(r.is_ok(), "{f}: `cargo xtask {cmd}`: {}", r.unwrap_err());
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} command lines");
}
