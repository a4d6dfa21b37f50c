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

use crate::registry::{Family, Opts, Scenario, ScenarioFuture};
use cores::raft::{Bug, Bugs};
use std::time::Duration;

pub fn family() -> Family {
    Family::new("raft").with_bugs(Bug::all().iter().map(|b| (b.name(), b.description()))).with_scenarios(scenarios())
}

/// The planted bugs a run's options ask for.
pub fn bugs(opts: &Opts) -> Bugs {
    match &opts.bug {
        None => Bugs::default(),
        Some(name) => Bugs::only(Bug::from_name(name).unwrap_or_else(|| panic!("unknown raft bug {name}"))),
    }
}

/// The course gives each test 120 s.
const COURSE_LIMIT: Duration = Duration::from_secs(120);

/// The tests' `RaftElectionTimeout`.
pub const ELECTION: Duration = tester::ELECTION_TIMEOUT;

fn targeted(name: &'static str, description: &'static str, run: fn(Opts) -> ScenarioFuture) -> Scenario {
    Scenario::new(name, description, COURSE_LIMIT, run)
}

fn scenarios() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(tests_2a::scenarios());
    v.extend(tests_2b::scenarios());
    v.extend(tests_2c::scenarios());
    v.extend(tests_2d::scenarios());
    v.extend(beyond::scenarios());
    v.extend(swarm::scenarios());
    v
}
