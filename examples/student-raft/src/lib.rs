//! A second, independent Raft written the way a 6.824 student writes one — async tasks, the
//! course's API (`Make`, `Start`, `GetState`, `Snapshot`, RPC handlers, an apply channel)
//! through `nodes::course::CourseRaft`, and its own persistence encoding — and the whole of
//! simlab's Raft suite run on it as the family `student`.
//!
//! The suite sees it only as the course's tester sees a student's Raft: `get_state()` and the
//! apply stream. So election safety (from sampled roles), state-machine safety and apply order
//! (from applies) are checked, with every course bound and the tester's own checks; log
//! matching and leader completeness are not (nothing of the log is exposed). Each run says so.

pub mod kv;
pub mod persist;
pub mod raft;

pub use raft::StudentRaft;

use nodes::course::CourseEngine;
use scenarios::registry::{Catalogue, Family};

/// The student Raft as the suite's engine.
pub type StudentEngine = CourseEngine<StudentRaft>;

/// The whole Raft suite (the course's 28 tests, `vote_amnesia_2c` and the two swarms) on the
/// student Raft, as the family `student` with its planted mistake.
pub fn family() -> Family {
    scenarios::raft::conformance::<StudentEngine>("student")
}

/// The whole kvraft suite (the course's 23 tests and the swarm, every history judged for
/// linearizability) on the student's own key/value service ([`kv`]) over the student Raft, as
/// the family `student-kv` with both planted mistakes: lab 3 as the course has it, a
/// student's server above a student's Raft.
pub fn kv_family() -> Family {
    scenarios::kvraft::conformance::<StudentEngine, kv::StudentKv>("student-kv")
}

/// What this crate's command line serves: the families `student` and `student-kv`, under the
/// name its users type (`cargo student`, the alias in `.cargo/config.toml`), which failing
/// runs quote.
pub fn catalogue() -> Catalogue {
    Catalogue::new().with_command("cargo student").with_family(family()).with_family(kv_family())
}
