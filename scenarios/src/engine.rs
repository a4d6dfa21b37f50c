//! Engines the course scenarios run on: the seam's [`Engine`] plus what a scenario needs to
//! configure one (its planted bugs). The course's tests name Raft; any engine implementing
//! [`TestEngine`] runs the same scenarios through the same testers.

use cores::paxos_log::{PaxosLog, PaxosLogConfig};
use cores::raft::{Bug, Bugs, Config};
use nodes::course::{CourseEngine, CourseRaft};
use nodes::replica::{run_node, Engine, NodeHandle, NodeSpec, Service};
use sim::{FaultPoint, NodeId};

use crate::spec::Timing;

pub use crate::raft::tester::RaftEngine;

/// An engine the testers can run, with its planted bugs.
pub trait TestEngine: Engine {
    /// A short name for reports.
    const NAME: &'static str;
    /// The engine's configuration for a cluster of `n` servers, with planted bug `bug` (one of
    /// [`TestEngine::bugs`]) switched on.
    fn config(n: usize, bug: Option<&str>) -> Self::Config;
    /// (name, one-line description) of each planted bug the engine offers.
    fn bugs() -> Vec<(&'static str, &'static str)>;
    /// Whether [`TestEngine::with_timing`] takes a swarm's timing knobs (election timeouts,
    /// heartbeat interval, batch size, commit news, vote retry). When false (the default) the
    /// swarms draw no timing for the engine, print none and record none, and a scenario file
    /// that gives a `[timing]` for it is refused before the run: a knob the engine would
    /// ignore must not look like one that took effect.
    const TAKES_TIMING: bool = false;
    /// `config` with a swarm's timing knobs; called only when [`TestEngine::TAKES_TIMING`].
    /// An engine whose timing is not configurable keeps its own (the default).
    fn with_timing(config: Self::Config, timing: &Timing) -> Self::Config {
        let _ = timing;
        config
    }
    /// How many times this engine's swarm runs reach each listed fault point for each time
    /// the Raft engine's runs reach it, rounded; 0 for a point the engine never reaches (it
    /// has no such message: no snapshot, no vote). Points not listed: 1, as for Raft, the
    /// reference the firing ranges were chosen for (`FaultPoint::firing_range_permille`).
    /// The swarms divide the firing rate they draw for a point by it, so the point fires
    /// about as often per run on every engine, and leave a never-reached point out of the
    /// knobs they print and record; a scenario file enabling one is refused. Read it from
    /// [`fault_point_reach`].
    const FAULT_POINT_REACH: &'static [(FaultPoint, u32)] = &[];
    /// Fault points the swarms never enable from the seed's draw on this engine (a scenario
    /// file still may), because enabling them was measured to lower a planted bug's failure
    /// rate below the plain runs'. None for Raft (the key/value swarm's own choice is
    /// `swarm::KV_SWARM_LEFT_OUT`).
    const SWARM_LEFT_OUT: &'static [FaultPoint] = &[];
}

/// `point`'s entry in a [`TestEngine::FAULT_POINT_REACH`] table: its reach against Raft's,
/// 1 when not listed.
pub fn fault_point_reach(table: &[(FaultPoint, u32)], point: FaultPoint) -> u32 {
    table.iter().find(|(p, _)| *p == point).map_or(1, |&(_, reach)| reach)
}

/// The coverage marks of the fault points the swarms can fire on engine `E`
/// ([`sim::fault_point_marks`] without the points it never reaches, 0 in its
/// [`TestEngine::FAULT_POINT_REACH`], and those its swarms leave out,
/// [`TestEngine::SWARM_LEFT_OUT`]), for its families to declare.
pub fn swarm_fault_point_marks<E: TestEngine>() -> Vec<(&'static str, &'static str)> {
    let silent: Vec<&str> = FaultPoint::ALL
        .iter()
        .filter(|&&p| fault_point_reach(E::FAULT_POINT_REACH, p) == 0 || E::SWARM_LEFT_OUT.contains(&p))
        .map(|p| p.mark())
        .collect();
    sim::fault_point_marks().into_iter().filter(|(mark, _)| !silent.contains(mark)).collect()
}

/// `E::config(n, bug)` with the swarm's timing, if it drew one.
///
/// # Panics
/// When a timing is given to an engine that takes none (the swarms draw none for it and the
/// command line refuses a scenario file's).
pub fn timed_config<E: TestEngine>(n: usize, bug: Option<&str>, timing: Option<&Timing>) -> E::Config {
    let config = E::config(n, bug);
    match timing {
        Some(t) => {
            assert!(E::TAKES_TIMING, "engine {} takes no timing knobs", E::NAME);
            E::with_timing(config, t)
        }
        None => config,
    }
}

impl TestEngine for RaftEngine {
    const NAME: &'static str = "raft";
    const TAKES_TIMING: bool = true;

    fn config(n: usize, bug: Option<&str>) -> Config {
        let bugs = match bug {
            None => Bugs::default(),
            Some(name) => Bugs::only(Bug::from_name(name).unwrap_or_else(|| panic!("unknown raft bug {name}"))),
        };
        Config::new(0, n, 0).with_bugs(bugs)
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        Bug::all().iter().map(|b| (b.name(), b.description())).collect()
    }

    fn with_timing(mut config: Config, t: &Timing) -> Config {
        config.election_timeout_ms_min = t.election_timeout_ms_min;
        config.election_timeout_ms_max = t.election_timeout_ms_max;
        config.heartbeat_interval_ms = t.heartbeat_interval_ms;
        config.max_entries_per_append = t.max_entries_per_append;
        config.commit_news_at_once = t.commit_news_at_once;
        config.retry_failed_votes = t.retry_failed_votes;
        config
    }
}

/// `bug` if it names one of engine `E`'s planted bugs, for `E::config`: a family offers its
/// engine's bugs beside its service's, and each name goes to whichever knows it.
pub fn engine_bug<E: TestEngine>(bug: Option<&str>) -> Option<&str> {
    bug.filter(|b| E::bugs().iter().any(|(name, _)| name == b))
}

/// Any implementation written the course's way runs the suites: its name, configuration and
/// planted mistakes come from [`CourseRaft`], so a downstream crate needs no engine type of
/// its own (it could not write this impl itself: both the trait and `CourseEngine` are
/// foreign to it).
impl<R: CourseRaft> TestEngine for CourseEngine<R> {
    const NAME: &'static str = R::NAME;

    fn config(n: usize, bug: Option<&str>) -> R::Config {
        if let Some(name) = bug {
            assert!(R::bugs().iter().any(|(b, _)| *b == name), "unknown planted bug {name} of {}", R::NAME);
        }
        R::config(n, bug)
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        R::bugs()
    }
}

/// The Paxos log ([`cores::paxos_log::PaxosLog`]) as an engine the testers run: every peer
/// proposes, the log's "leader" is the proposer whose command applied last. It reports only
/// restarts (its applies come from the shell), so the safety checker judges what applies
/// show: every node applies the same command at each index, in order.
pub struct PaxosEngine;

impl Engine for PaxosEngine {
    type Config = PaxosLogConfig;
    type Handle<S: Service> = NodeHandle<PaxosLog, S>;
    const EXPOSES_LOG: bool = false;
    // Paxos elects no leader and reports no roles: only what applies show is checked.
    const CHECKS_WITHOUT_LOG: (&'static [&'static str], &'static [&'static str]) = (
        &["state-machine-safety (from applies)", "apply-order"],
        &["election-safety (Paxos elects no leader)", "log-matching", "leader-completeness", "commit-majority"],
    );

    fn spawn<S: Service>(name: &str, spec: NodeSpec<PaxosLogConfig, S, NodeHandle<PaxosLog, S>>) -> NodeId {
        sim::spawn_process(name, move |ctx| run_node::<PaxosLog, S>(ctx, spec.clone()))
    }
}

/// The Paxos engine's planted bugs.
pub const PAXOS_ENGINE_BUGS: &[(&str, &str)] =
    &[("forget-promise", "an acceptor forgets its promises (and what it accepted on them) across a restart")];

impl TestEngine for PaxosEngine {
    const NAME: &'static str = "paxos";
    /// Measured with `sweep --coverage` over the same seeds of the Raft-based swarms and
    /// their Paxos ports, at the same drawn rates: firings per run that reaches the point
    /// (BENCHMARKS.md, session 12). Key/value swarm, 300 seeds: `crash_after_save` 4.6×,
    /// `crash_after_reply` 4.6×, `shorten_timeout` 3.2×, `skew_timer` 1.5×. Sharded swarm,
    /// 100 seeds: 2.7×, 2.2×, 3.5×, 1.2×, and `net.delay_send` 3.6×, `node.pause` 2.1×
    /// (the key/value swarm leaves those two out). Where the swarms differ, the key/value
    /// swarm's figure is taken: that is where Raft's rates lowered the service's bugs. Why
    /// so often: an acceptor saves and answers on every prepare and accept of every
    /// instance, where a Raft follower saves and answers once per batch of entries, and a
    /// proposer sets a deadline per retry. It has no snapshot message, grants no vote and
    /// sends no append acknowledgement. `crash_after_save`'s entry is the measured reach,
    /// though the swarms leave that point out here ([`TestEngine::SWARM_LEFT_OUT`]): it takes
    /// effect again if the point is drawn again.
    const FAULT_POINT_REACH: &'static [(FaultPoint, u32)] = &[
        (FaultPoint::CrashAfterSave, 5),
        (FaultPoint::CrashAfterReply, 5),
        (FaultPoint::ShortenTimeout, 3),
        (FaultPoint::DelaySend, 4),
        (FaultPoint::PauseNode, 2),
        (FaultPoint::DropSnapshot, 0),
        (FaultPoint::HoldSnapshot, 0),
        (FaultPoint::HoldAppendReply, 0),
        (FaultPoint::CrashAfterVote, 0),
    ];
    /// `persist.crash_after_save`: over seeds 0..1000 of `kvpaxos::swarm_3b` the seeds that
    /// enabled it found local-reads in 68 runs against their plain runs' 87 at a fifth of the
    /// drawn rate, 75 at a fifteenth (every rate then 1‰), and the port's total fell 484 →
    /// 466; without it, 485, forget-promise still above plain (BENCHMARKS.md, session 12).
    /// `replica.crash_after_reply` keeps the crashes that a forgotten promise needs.
    const SWARM_LEFT_OUT: &'static [FaultPoint] = &[FaultPoint::CrashAfterSave];

    fn config(_n: usize, bug: Option<&str>) -> PaxosLogConfig {
        let mut config = PaxosLogConfig::default();
        match bug {
            None => {}
            Some("forget-promise") => config.bugs.forget_promise = true,
            Some(other) => panic!("unknown paxos engine bug {other}"),
        }
        config
    }

    fn bugs() -> Vec<(&'static str, &'static str)> {
        PAXOS_ENGINE_BUGS.to_vec()
    }
}
