//! The course-shaped adapter (`nodes::course`) on two tiny nodes written for this test:
//! - a node's role is sampled after every poll of its tasks, so a leadership that begins and
//!   ends inside the node's own task — no request, apply or spawn in between — is still seen,
//!   and two such leaderships in one term fail the run by election safety;
//! - a task asked for from `Start` (which runs on the tester's task) belongs to the node and
//!   dies with it when it crashes.

use nodes::course::{ApplySender, CourseEngine, CourseEnv, CourseRaft, Persister};
use scenarios::raft::tester::Cluster;
use sim::{Failure, FailureClass, Outcome, RunConfig};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Servers 0 and 1 each claim to lead term 1 for one millisecond, inside one task of their
/// own, if `claim`; otherwise nobody ever leads.
struct Claimer {
    leader: Cell<bool>,
}

impl CourseRaft for Claimer {
    type Config = bool;
    type Rpc = ();
    type RpcReply = ();

    fn config(_peers: usize, _bug: Option<&str>) -> bool {
        true
    }

    fn make(claim: &bool, env: CourseEnv, _: Persister, _: ApplySender) -> Rc<Self> {
        let node = Rc::new(Claimer { leader: Cell::new(false) });
        if *claim && env.me() < 2 {
            let n = node.clone();
            let at = Duration::from_millis(10 + 20 * env.me() as u64);
            env.spawn(async move {
                sim::sleep(at).await;
                n.leader.set(true);
                sim::sleep(Duration::from_millis(1)).await;
                n.leader.set(false);
            });
        }
        node
    }

    fn start(&self, _command: Vec<u8>) -> (u64, u64, bool) {
        (0, 1, false)
    }

    fn get_state(&self) -> (u64, bool) {
        (1, self.leader.get())
    }

    fn snapshot(&self, _index: u64, _snapshot: Vec<u8>) {}

    fn handle(&self, _from: usize, _request: ()) {}
}

fn run(claim: bool) -> Outcome {
    let report = sim::run(RunConfig::new(0, Duration::from_secs(10)), move || async move {
        let _cfg = Cluster::<CourseEngine<Claimer>>::with_engine(3, false, false, claim);
        sim::sleep(Duration::from_millis(200)).await;
        Ok(())
    });
    report.outcome
}

#[test]
fn a_leadership_inside_one_task_is_sampled_and_two_in_a_term_fail_election_safety() {
    assert_eq!(run(false), Outcome::Pass, "nobody leads: nothing to catch");
    match run(true) {
        Outcome::Fail(f) => {
            assert_eq!(f.class, FailureClass::Safety, "{f}");
            assert_eq!(f.checker, "election-safety", "{f}");
        }
        Outcome::Pass => panic!("two leaders of term 1 went unseen"),
    }
}

thread_local! {
    /// Ticks of the task `Start` asked for (each run has a thread of its own).
    static TICKS: Cell<u64> = const { Cell::new(0) };
}

/// `Start` asks for a task that ticks every 10 ms.
struct Ticker {
    env: CourseEnv,
}

impl CourseRaft for Ticker {
    type Config = ();
    type Rpc = ();
    type RpcReply = ();

    fn config(_peers: usize, _bug: Option<&str>) {}

    fn make(_: &(), env: CourseEnv, _: Persister, _: ApplySender) -> Rc<Self> {
        Rc::new(Ticker { env })
    }

    fn start(&self, _command: Vec<u8>) -> (u64, u64, bool) {
        self.env.spawn(async {
            loop {
                sim::sleep(Duration::from_millis(10)).await;
                TICKS.with(|t| t.set(t.get() + 1));
            }
        });
        (1, 0, true)
    }

    fn get_state(&self) -> (u64, bool) {
        (0, false)
    }

    fn snapshot(&self, _index: u64, _snapshot: Vec<u8>) {}

    fn handle(&self, _from: usize, _request: ()) {}
}

#[test]
fn a_task_started_from_start_runs_on_the_node_and_dies_with_it() {
    let report = sim::run(RunConfig::new(0, Duration::from_secs(10)), || async {
        let cfg = Cluster::<CourseEngine<Ticker>>::with_engine(3, false, false, ());
        // The servers start when the executor first runs them.
        sim::sleep(Duration::from_millis(1)).await;
        if cfg.start(0, vec![1]) != (1, 0, true) {
            return Err(Failure::safety("test", "Start did not reach server 0"));
        }
        sim::sleep(Duration::from_millis(100)).await;
        let before = TICKS.with(Cell::get);
        if before < 5 {
            return Err(Failure::safety("test", format!("the task ticked {before} times in 100 ms")));
        }
        cfg.crash1(0);
        sim::sleep(Duration::from_millis(100)).await;
        let after = TICKS.with(Cell::get);
        if after != before {
            return Err(Failure::safety("test", format!("the task outlived its node: {before} -> {after} ticks")));
        }
        Ok(())
    });
    assert_eq!(report.outcome, Outcome::Pass);
}

#[test]
fn the_readme_shows_the_node_skeleton_the_adapter_docs_compile() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let course = std::fs::read_to_string(root.join("nodes/src/course.rs")).unwrap();
    let start = course.find("//! ```no_run\n").expect("the adapter's docs show a node") + "//! ```no_run\n".len();
    let end = start + course[start..].find("//! ```\n").unwrap();
    let skeleton: Vec<&str> = course[start..end]
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let shown = format!("```rust\n{}\n```", skeleton.join("\n"));
    assert!(readme.contains(&shown), "README's node skeleton differs from the doc test in nodes/src/course.rs");
}
