//! The MapReduce coordinator's core: which task to hand out, when to hand a lost task out
//! again, and when the job is done. Time comes in as simulated milliseconds.

use serde::{Deserialize, Serialize};

/// One map task per input file; `n_reduce` reduce tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskId {
    /// Map task `i`: reads input file `i` (0-based).
    Map(u32),
    /// Reduce task `i`: collects intermediate bucket `i` of every map task (0-based).
    Reduce(u32),
}

/// What the coordinator tells a worker asking for work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignment {
    /// Run map task `task` over `file`, splitting its output into `n_reduce` buckets by [`ihash`].
    Map {
        /// The map task's number, 0-based (names its intermediate files).
        task: u32,
        /// The input file to read.
        file: String,
        /// How many buckets to split the output into.
        n_reduce: u32,
    },
    /// Run reduce task `task` over bucket `task` of every map task's output.
    Reduce {
        /// The reduce task's number, 0-based (names its output file).
        task: u32,
        /// How many map tasks wrote intermediate files.
        n_map: u32,
    },
    /// Every task is handed out and none is overdue: ask again later.
    Wait,
    /// The job is done: exit.
    Exit,
}

/// Worker-to-coordinator requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Asks the coordinator for a task.
    GetTask,
    /// Reports a finished task.
    TaskDone(TaskId),
}

/// Coordinator-to-worker replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answers `GetTask`.
    Task(Assignment),
    /// Acknowledges `TaskDone`.
    Ack,
}

/// Planted bugs, off by default: the sweep must catch each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Never hand out a task again once handed out, even if its worker died.
    pub no_reissue: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    InProgress { since_ms: u64 },
    Done,
}

/// The coordinator's bookkeeping.
#[derive(Clone, Debug)]
pub struct Coordinator {
    files: Vec<String>,
    n_reduce: u32,
    maps: Vec<State>,
    reduces: Vec<State>,
    /// A task not finished within this long is handed out again (the lab's 10 seconds).
    reissue_after_ms: u64,
    bugs: Bugs,
    /// How many times each map task was handed out (for tests and reports).
    pub map_assignments: Vec<u32>,
    /// How many times a task was handed out again because it was overdue (the lab's
    /// reissue after 10 s); the shells mark the rare cases from it.
    pub reissues: u64,
}

impl Coordinator {
    /// A coordinator for one job: one map task per file in `files`, `n_reduce` reduce tasks, a
    /// task reissued when unfinished after `reissue_after_ms` (the lab uses 10 s).
    ///
    /// # Panics
    /// If `files` is empty or `n_reduce` is 0.
    pub fn new(files: Vec<String>, n_reduce: u32, reissue_after_ms: u64, bugs: Bugs) -> Self {
        assert!(!files.is_empty() && n_reduce > 0, "a job needs input files and reduce tasks");
        let n = files.len();
        Coordinator {
            files,
            n_reduce,
            maps: vec![State::Idle; n],
            reduces: vec![State::Idle; n_reduce as usize],
            reissue_after_ms,
            bugs,
            map_assignments: vec![0; n],
            reissues: 0,
        }
    }

    /// Picks a task for a worker: an idle one first, else one overdue by the reissue time.
    /// Reduce tasks start only once every map task is done, because each reads every
    /// map's output.
    pub fn assign(&mut self, now_ms: u64) -> Assignment {
        if self.done() {
            return Assignment::Exit;
        }
        let maps_done = self.maps.iter().all(|s| *s == State::Done);
        let (reissue_after_ms, no_reissue) = (self.reissue_after_ms, self.bugs.no_reissue);
        let (phase, is_map) = if maps_done { (&mut self.reduces, false) } else { (&mut self.maps, true) };
        let pick = phase.iter().position(|s| *s == State::Idle).or_else(|| {
            if no_reissue {
                return None;
            }
            phase.iter().position(
                |s| matches!(s, State::InProgress { since_ms } if now_ms.saturating_sub(*since_ms) >= reissue_after_ms),
            )
        });
        let Some(i) = pick else { return Assignment::Wait };
        if phase[i] != State::Idle {
            self.reissues += 1;
        }
        phase[i] = State::InProgress { since_ms: now_ms };
        if is_map {
            self.map_assignments[i] += 1;
            Assignment::Map { task: i as u32, file: self.files[i].clone(), n_reduce: self.n_reduce }
        } else {
            Assignment::Reduce { task: i as u32, n_map: self.files.len() as u32 }
        }
    }

    /// A worker finished a task. Late reports from a worker whose task was handed out
    /// again are fine: outputs are renamed atomically and the task's output is the same.
    ///
    /// # Panics
    /// If `task` names no task of the job, or is a reduce task while a map task is unfinished.
    pub fn complete(&mut self, task: TaskId) {
        // A reduce can only have been handed out after every map finished.
        assert!(
            matches!(task, TaskId::Map(_)) || self.maps.iter().all(|s| *s == State::Done),
            "reduce task done before the map phase ended"
        );
        let slot = match task {
            TaskId::Map(i) => self.maps.get_mut(i as usize),
            TaskId::Reduce(i) => self.reduces.get_mut(i as usize),
        };
        *slot.expect("completion of an unknown task") = State::Done;
    }

    /// Whether `task` was reported done already: a completion for it now is a late
    /// worker's, from a run the task was handed out again after (ignored but for marks).
    /// False for a task the job does not have.
    pub fn is_done(&self, task: TaskId) -> bool {
        let slot = match task {
            TaskId::Map(i) => self.maps.get(i as usize),
            TaskId::Reduce(i) => self.reduces.get(i as usize),
        };
        slot == Some(&State::Done)
    }

    /// Whether every reduce task is done, so the job is (6.824 lab 1's `Done()`).
    pub fn done(&self) -> bool {
        self.reduces.iter().all(|s| *s == State::Done)
    }
}

/// The course's key hash (FNV-1a, 32 bits, top bit cleared): picks a key's reduce task.
pub fn ihash(key: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Coordinator {
        Coordinator::new(vec!["a".into(), "b".into()], 2, 10_000, Bugs::default())
    }

    #[test]
    fn maps_then_reduces_then_exit() {
        let mut c = job();
        assert!(matches!(c.assign(0), Assignment::Map { task: 0, .. }));
        assert!(matches!(c.assign(0), Assignment::Map { task: 1, .. }));
        assert_eq!(c.assign(0), Assignment::Wait);
        c.complete(TaskId::Map(0));
        assert_eq!(c.assign(1), Assignment::Wait, "no reduce before every map is done");
        c.complete(TaskId::Map(1));
        assert_eq!(c.assign(2), Assignment::Reduce { task: 0, n_map: 2 });
        assert_eq!(c.assign(2), Assignment::Reduce { task: 1, n_map: 2 });
        c.complete(TaskId::Reduce(1));
        c.complete(TaskId::Reduce(0));
        assert!(c.done());
        assert_eq!(c.assign(3), Assignment::Exit);
    }

    #[test]
    fn overdue_tasks_are_handed_out_again_unless_the_bug_is_planted() {
        let mut c = job();
        c.assign(0);
        c.assign(0);
        assert_eq!(c.assign(9_999), Assignment::Wait);
        assert!(matches!(c.assign(10_000), Assignment::Map { task: 0, .. }));
        assert_eq!(c.map_assignments, vec![2, 1]);
        assert_eq!(c.reissues, 1);
        assert!(!c.is_done(TaskId::Map(0)));
        c.complete(TaskId::Map(0));
        assert!(c.is_done(TaskId::Map(0)), "a second completion of map 0 would be a late one");
        assert!(!c.is_done(TaskId::Reduce(7)), "no such task");

        let mut b = Coordinator::new(vec!["a".into()], 1, 10_000, Bugs { no_reissue: true });
        b.assign(0);
        assert_eq!(b.assign(1_000_000), Assignment::Wait);
    }

    #[test]
    fn ihash_matches_fnv1a() {
        // FNV-1a("a") = 0xe40c292c; top bit cleared.
        assert_eq!(ihash("a"), 0xe40c292c & 0x7fff_ffff);
        assert_eq!(ihash(""), 0x811c9dc5 & 0x7fff_ffff);
    }
}
