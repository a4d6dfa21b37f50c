//! Raft (labs 2A–2D): every test of the course's suite as a targeted scenario, run on the
//! tester harness of [`tester`], with the safety checker judging every step.

mod beyond;
pub mod observer;
pub mod swarm;
pub mod tester;
mod tests_2a;
mod tests_2b;
mod tests_2c;
mod tests_2d;

use crate::engine::{RaftEngine, TestEngine};
use crate::registry::{Family, Opts, Scenario, ScenarioFuture};
use std::time::Duration;

/// The Raft family: the whole suite on this project's Raft core.
pub fn family() -> Family {
    conformance::<RaftEngine>("raft")
}

/// The whole Raft suite — the course's 28 tests, the targeted scenarios and the swarms, with
/// every safety checker — on engine `E`, as a family named `family` whose planted bugs are
/// the engine's. Scenario names keep their suffix (`<family>::figure8_unreliable_2c`).
pub fn conformance<E: TestEngine>(family: &'static str) -> Family {
    let scenarios = suite::<E>().into_iter().map(|sc| {
        if family == "raft" {
            sc
        } else {
            let suffix = sc.name.strip_prefix("raft::").expect("raft scenarios are named raft::…");
            // The catalogue lives for the whole process: a name built once is leaked once.
            sc.renamed(Box::leak(format!("{family}::{suffix}").into_boxed_str()))
        }
    });
    Family::new(family)
        .with_bugs(E::bugs())
        .with_scenarios(scenarios)
        .with_marks(sim::WORLD_MARKS)
        .with_marks(sim::HOLD_MARKS)
        .with_marks(nodes::replica::MARKS)
        .with_marks(crate::swarm::clerkless_fault_point_marks())
}

/// The course gives each test 120 s.
const COURSE_LIMIT: Duration = Duration::from_secs(120);

/// The tests' `RaftElectionTimeout`.
pub const ELECTION: Duration = tester::ELECTION_TIMEOUT;

fn targeted(name: &'static str, description: &'static str, run: fn(Opts) -> ScenarioFuture) -> Scenario {
    Scenario::new(name, description, COURSE_LIMIT, run)
}

fn suite<E: TestEngine>() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(tests_2a::scenarios::<E>());
    v.extend(tests_2b::scenarios::<E>());
    v.extend(tests_2c::scenarios::<E>());
    v.extend(tests_2d::scenarios::<E>());
    v.extend(beyond::scenarios::<E>());
    v.extend(swarm::scenarios::<E>());
    v
}
