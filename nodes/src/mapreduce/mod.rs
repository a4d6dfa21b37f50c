//! MapReduce (lab 1): the coordinator and worker processes.
//!
//! The coordinator is a thin shell over `cores::mapreduce::Coordinator`: it answers
//! `GetTask`/`TaskDone` calls, checks `done()` once a second like the course's
//! `mrcoordinator`, and exits a second after the job is done. Workers ask for tasks until
//! told to exit or until the coordinator stops answering, as the course's workers do.
//! Intermediate files are `mr-X-Y`, outputs `mr-out-Y`, both written under a temporary
//! name and renamed, so a worker that dies mid-write leaves nothing partial in view.

pub mod apps;

use apps::{App, AppEnv, Crashed, KeyValue};
use cores::mapreduce::{ihash, Assignment, Bugs as CoreBugs, Coordinator, Reply, Request, TaskId};
use sim::{Incoming, NodeCtx, NodeId};
use std::time::Duration;

/// The lab's rule: a task not done within 10 s is handed out again.
pub const REISSUE_AFTER_MS: u64 = 10_000;
/// How long a worker waits before asking again when there is nothing to do.
pub const WAIT_POLL_MS: u64 = 200;

/// Planted bugs of the MapReduce family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Coordinator: never hand a task out again, whatever happened to its worker.
    pub no_reissue: bool,
    /// Worker: write `mr-out-Y` in place instead of writing a temporary file and renaming.
    pub in_place_output: bool,
    /// Worker: name the temporary file after the task only, not the attempt (issue 13's
    /// third bug from the field), so two runs of one task — the first stalled past the
    /// reissue timeout, the second handed out after it — write, truncate and rename the
    /// same file, and the renamed output can mix both runs' lines or lose some.
    pub shared_temp_name: bool,
}

impl Bugs {
    /// Names and one-line descriptions, for `--bug` and `xtask bugs`.
    pub const ALL: &'static [(&'static str, &'static str)] = &[
        ("no-reissue", "coordinator never hands a lost task out again"),
        ("in-place-output", "worker writes mr-out-Y in place instead of renaming a temporary file"),
        ("shared-temp-name", "workers write through one temporary file name per task, not per attempt"),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "no-reissue" => Some(Bugs { no_reissue: true, ..Bugs::default() }),
            "in-place-output" => Some(Bugs { in_place_output: true, ..Bugs::default() }),
            "shared-temp-name" => Some(Bugs { shared_temp_name: true, ..Bugs::default() }),
            _ => None,
        }
    }
}

/// Mark: a task was handed out again while the worker of its earlier run was still the
/// same running process (stalled or slow, not crashed), so two runs of it overlap.
pub const REISSUED_WHILE_RUNNING: &str = "mr: task reissued while its earlier run is still running";
/// Mark: a worker reported a task the job had already seen done (a late run's completion,
/// ignored).
pub const LATE_COMPLETION: &str = "mr: a late run's completion of a task already done";
/// Mark: a reduce renamed its output over an `mr-out-Y` another run had already produced.
pub const RENAME_OVER_OUTPUT: &str = "mr: a reduce renamed its output over an existing one";

/// The MapReduce family's coverage marks (name, meaning), for `sweep --coverage`.
pub const MARKS: [(&str, &str); 4] = [
    (REISSUED_WHILE_RUNNING, "a task handed out again while its earlier run's worker still runs"),
    (LATE_COMPLETION, "a completion for a task already done, ignored"),
    (RENAME_OVER_OUTPUT, "an output renamed over one already in view"),
    (apps::STALL_PAST_REISSUE, "an app stall longer than the 10 s reissue timeout"),
];

/// The coordinator process.
pub async fn coordinator(ctx: NodeCtx, files: Vec<String>, n_reduce: u32, bugs: Bugs) {
    let mut core = Coordinator::new(files, n_reduce, REISSUE_AFTER_MS, CoreBugs { no_reissue: bugs.no_reissue });
    // Who ran each task last (worker, incarnation), only for the coverage marks.
    let mut last_run: std::collections::BTreeMap<TaskId, (NodeId, u32)> = Default::default();
    let second = Duration::from_secs(1);
    let mut next_check = sim::now() + second;
    let mut exit_at: Option<Duration> = None;
    loop {
        let deadline = exit_at.unwrap_or(next_check);
        match ctx.recv_until(deadline).await {
            Some(Incoming::Request { payload, reply_to, from }) => {
                let now_ms = sim::now().as_millis() as u64;
                let reply = match sim::decode::<Request>(&payload) {
                    Request::GetTask => {
                        let reissues = core.reissues;
                        let a = core.assign(now_ms);
                        let task = match &a {
                            Assignment::Map { task, .. } => Some(TaskId::Map(*task)),
                            Assignment::Reduce { task, .. } => Some(TaskId::Reduce(*task)),
                            _ => None,
                        };
                        if let Some(task) = task {
                            let earlier = last_run.insert(task, (from, sim::incarnation(from)));
                            if core.reissues > reissues
                                && earlier.is_some_and(|(n, inc)| sim::is_alive(n) && sim::incarnation(n) == inc)
                            {
                                sim::mark(REISSUED_WHILE_RUNNING);
                            }
                        }
                        Reply::Task(a)
                    }
                    Request::TaskDone(task) => {
                        if core.is_done(task) {
                            sim::mark(LATE_COMPLETION);
                        }
                        core.complete(task);
                        Reply::Ack
                    }
                };
                ctx.reply(reply_to, &reply);
            }
            Some(Incoming::Response { .. }) => {}
            None => {
                if exit_at.is_some() {
                    return;
                }
                if core.done() {
                    // mrcoordinator sleeps one more second after Done() before exiting.
                    exit_at = Some(sim::now() + second);
                }
                next_check = sim::now() + second;
            }
        }
    }
}

/// A worker process: asks for tasks until told to exit or the coordinator is gone.
pub async fn worker(ctx: NodeCtx, coordinator: NodeId, app: App, bugs: Bugs) {
    let env = AppEnv::new(ctx);
    loop {
        let Ok(Reply::Task(task)) = ctx.call::<_, Reply>(coordinator, &Request::GetTask).await else { return };
        let done = match task {
            Assignment::Exit => return,
            Assignment::Wait => {
                sim::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
                continue;
            }
            Assignment::Map { task, file, n_reduce } => {
                run_map(&env, app, task, &file, n_reduce, bugs).await.map(|_| TaskId::Map(task))
            }
            Assignment::Reduce { task, n_map } => {
                run_reduce(&env, app, task, n_map, bugs).await.map(|_| TaskId::Reduce(task))
            }
        };
        let Ok(done) = done else { return };
        if ctx.call::<_, Reply>(coordinator, &Request::TaskDone(done)).await.is_err() {
            return;
        }
    }
}

/// The temporary file a run writes before renaming: unique to the attempt (the worker
/// process), or, with the `shared-temp-name` bug, only to the task.
fn tmp_name(env: &AppEnv, what: &str, bugs: Bugs) -> String {
    if bugs.shared_temp_name {
        format!("mr-tmp-{what}")
    } else {
        format!("mr-tmp-{what}-{}", env.pid())
    }
}

async fn run_map(env: &AppEnv, app: App, task: u32, file: &str, n_reduce: u32, bugs: Bugs) -> Result<(), Crashed> {
    let contents = sim::fs::read(file).unwrap_or_else(|| panic!("input file {file} is missing"));
    let contents = String::from_utf8(contents).expect("input files are text");
    let kvs = app.map(env, file, &contents).await?;
    let mut buckets: Vec<Vec<KeyValue>> = vec![Vec::new(); n_reduce as usize];
    for kv in kvs {
        buckets[(ihash(&kv.0) % n_reduce) as usize].push(kv);
    }
    for (r, bucket) in buckets.iter().enumerate() {
        let tmp = tmp_name(env, &format!("{task}-{r}"), bugs);
        env.ctx.fs_create(&tmp);
        env.ctx.fs_append(&tmp, &sim::encode(bucket));
        env.ctx.fs_rename(&tmp, &format!("mr-{task}-{r}"));
    }
    Ok(())
}

async fn run_reduce(env: &AppEnv, app: App, task: u32, n_map: u32, bugs: Bugs) -> Result<(), Crashed> {
    let mut kvs: Vec<KeyValue> = Vec::new();
    for m in 0..n_map {
        let path = format!("mr-{m}-{task}");
        let bytes = sim::fs::read(&path).unwrap_or_else(|| panic!("intermediate file {path} is missing"));
        kvs.extend(sim::decode::<Vec<KeyValue>>(&bytes));
    }
    kvs.sort();
    let out = format!("mr-out-{task}");
    let target = if bugs.in_place_output { out.clone() } else { tmp_name(env, &format!("out-{task}"), bugs) };
    env.ctx.fs_create(&target);
    let mut i = 0;
    while i < kvs.len() {
        let key = kvs[i].0.clone();
        let mut values = Vec::new();
        while i < kvs.len() && kvs[i].0 == key {
            values.push(std::mem::take(&mut kvs[i].1));
            i += 1;
        }
        let value = app.reduce(env, &key, &values).await?;
        // One line per key, written as it is produced, like the course's worker.
        env.ctx.fs_append(&target, format!("{key} {value}\n").as_bytes());
    }
    if !bugs.in_place_output {
        if env.ctx.is_current() && sim::fs::read(&out).is_some() {
            sim::mark(RENAME_OVER_OUTPUT);
        }
        env.ctx.fs_rename(&target, &out);
    }
    Ok(())
}

/// The sequential MapReduce the outputs are compared with: every map, one sort, every
/// reduce; returns the output lines sorted. `None` for apps with timing-dependent output.
pub fn sequential(app: App, inputs: &[(String, String)]) -> Option<Vec<String>> {
    let mut kvs = Vec::new();
    for (name, contents) in inputs {
        kvs.extend(app.map_pure(name, contents)?);
    }
    kvs.sort();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < kvs.len() {
        let key = kvs[i].0.clone();
        let mut values = Vec::new();
        while i < kvs.len() && kvs[i].0 == key {
            values.push(kvs[i].1.clone());
            i += 1;
        }
        lines.push(format!("{key} {}", app.reduce_pure(&key, &values)?));
    }
    lines.sort();
    Some(lines)
}
