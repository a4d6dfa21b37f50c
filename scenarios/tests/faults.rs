//! Faults as data: a swarm run's schedule, handed back by the run and saved, replays the run
//! event for event; an edited schedule changes it. Scenarios without a schedule refuse the
//! fault options rather than ignore them.

use scenarios::registry::{FaultFile, FaultRecorder, InputError};
use scenarios::{registry, Opts};
use sim::TraceMode;
use std::path::Path;

#[test]
fn a_saved_schedule_replays_the_run_exactly_and_an_edited_one_does_not() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-replay");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("faults.toml");
    for name in ["raft::swarm_2c", "kvraft::swarm_3b", "shardkv::swarm_4b"] {
        let sc = registry::select(name).unwrap()[0];
        let seed = 11;
        let recorder = FaultRecorder::new();
        let first = registry::run_scenario(
            &sc,
            seed,
            &Opts { record_faults: Some(recorder.clone()), ..Opts::default() },
            TraceMode::Hash,
            None,
        );
        let schedule = recorder.take().expect("the swarm hands back the schedule it played");
        assert!(!schedule.events.is_empty(), "{name}: the swarm drew some faults");
        schedule.save(&saved).unwrap();
        let file = FaultFile::load(&saved).unwrap();
        assert_eq!(file.schedule, schedule, "the file holds exactly the schedule");
        let replay = registry::run_scenario(
            &sc,
            seed,
            &Opts { faults: Some(file.clone()), ..Opts::default() },
            TraceMode::Hash,
            None,
        );
        assert_eq!(first.trace_hash, replay.trace_hash, "{name}: replaying the saved schedule reproduces the run");
        assert_eq!(first.outcome, replay.outcome);
        // Drop the second half of the events: a different run.
        let mut edited = file;
        edited.schedule.events.truncate(schedule.events.len() / 2);
        let cut =
            registry::run_scenario(&sc, seed, &Opts { faults: Some(edited), ..Opts::default() }, TraceMode::Hash, None);
        assert_ne!(first.trace_hash, cut.trace_hash, "{name}: an edited schedule is what the run plays");
    }
}

#[test]
fn every_scenario_either_plays_a_schedule_or_refuses_one() {
    // Before, `run raft::initial_election_2a --faults f.toml` ran with no faults and said
    // nothing. Now each scenario declares whether it takes a schedule, and the catalogue's
    // check refuses the options for the others.
    let cat = scenarios::catalogue();
    let file = FaultFile { path: "f.toml".into(), schedule: Default::default() };
    let opts = Opts { faults: Some(file), ..Opts::default() };
    let mut takers = Vec::new();
    for sc in cat.scenarios() {
        match cat.check_opts(sc, 0, &opts) {
            Ok(()) => takers.push(sc.name),
            Err(InputError::NoFaultSchedule { scenario, .. }) => assert_eq!(scenario, sc.name),
            Err(e) => panic!("{}: {e}", sc.name),
        }
    }
    // kvpaxos runs kvraft's swarm on the Paxos engine, schedules and all; shardkv_paxos
    // shardkv's.
    assert_eq!(
        takers,
        [
            "mapreduce::swarm",
            "raft::swarm_2c",
            "raft::swarm_2d",
            "kvraft::swarm_3b",
            "shardkv::swarm_4b",
            "kvpaxos::swarm_3b",
            "shardkv_paxos::swarm_4b"
        ]
    );
}

#[test]
fn the_declared_safety_phase_is_the_one_the_swarms_play() {
    // `schedule_for` asserts it inside every swarm run; here on many seeds, so a swarm that
    // starts drawing differently fails this test instead of refusing good fault files.
    let cat = scenarios::catalogue();
    for name in ["raft::swarm_2c", "kvraft::swarm_3b", "shardkv::swarm_4b", "mapreduce::swarm"] {
        let sc = cat.scenario(name).unwrap();
        for seed in 0..2 {
            let r = registry::run_scenario(&sc, seed, &Opts::default(), TraceMode::Hash, None);
            let end_ms = (sc.faults.unwrap().safety_phase_end_ms)(seed);
            let shown = format!("safety phase {:.1}s", end_ms as f64 / 1000.0);
            assert!(r.description.iter().any(|l| l.contains(&shown)), "{name} seed {seed}: {:?}", r.description);
            assert!(!matches!(r.outcome.class(), Some(sim::FailureClass::Panic)), "{name} seed {seed}: {}", r.outcome);
        }
    }
}

#[test]
fn every_schedule_a_swarm_draws_passes_the_checks_its_saved_file_gets() {
    // Fault files are refused for names no scenario reports and partitions that cut
    // nothing; what a swarm draws (and `--save-faults` writes) must still load and check.
    let cat = scenarios::catalogue();
    let path = Path::new("drawn.toml");
    for sc in cat.scenarios().filter(|s| s.takes_fault_schedule()) {
        for seed in 0..12 {
            let recorder = FaultRecorder::new();
            let opts = Opts { record_faults: Some(recorder.clone()), ..Opts::default() };
            registry::run_scenario(sc, seed, &opts, TraceMode::Hash, None);
            let drawn = recorder.take().expect("the swarm hands back its schedule");
            let schedule = sim::faults::FaultSchedule::parse(path, &drawn.to_toml())
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", sc.name));
            let file = FaultFile { path: path.into(), schedule };
            cat.check_opts(sc, seed, &Opts { faults: Some(file), ..Opts::default() })
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", sc.name));
        }
    }
}

#[test]
fn a_hold_naming_a_trigger_or_message_the_scenario_does_not_report_is_refused() {
    // Before, `until = "banana"` was skipped when it fired and `message = "zzz"` held nothing.
    let cat = scenarios::catalogue();
    // Servers of the Raft-style clusters; `sharded_hold` names a sharded swarm's.
    let hold_between = |from: &str, to: &str, until: &str, message: Option<&str>| {
        let message = message.map(|m| format!("message = \"{m}\"\n")).unwrap_or_default();
        let text = format!(
            "[[event]]\nat_ms = 100\nkind = \"hold\"\nfrom = \"{from}\"\nto = \"{to}\"\n{message}until = \"{until}\"\n"
        );
        let schedule = sim::faults::FaultSchedule::parse(Path::new("h.toml"), &text).unwrap();
        Opts { faults: Some(FaultFile { path: "h.toml".into(), schedule }), ..Opts::default() }
    };
    let hold = |until: &str, message: Option<&str>| hold_between("s0", "s1", until, message);
    let sharded_hold = |until: &str| hold_between("s100-0", "s100-1", until, None);
    let check = |name: &str, opts: &Opts| {
        cat.check_opts(cat.scenario(name).as_ref().unwrap(), 0, opts).map_err(|e| e.to_string())
    };
    check("raft::swarm_2c", &hold("leader", Some("append_entries_ok"))).unwrap();
    check("shardkv::swarm_4b", &sharded_hold("snapshot")).unwrap();
    // A Raft cluster's name in a sharded run names nobody in any run of it: refused.
    let e = check("shardkv::swarm_4b", &hold("snapshot", None)).unwrap_err();
    assert!(e.contains("names s0, which no shardkv::swarm_4b run has"), "{e}");
    let e = check("raft::swarm_2c", &hold("banana", None)).unwrap_err();
    assert!(e.contains("h.toml: event 1 (hold) until = \"banana\"") && e.contains("term, role, leader"), "{e}");
    let e = check("kvraft::swarm_3b", &hold("term", Some("zzz"))).unwrap_err();
    assert!(e.contains("message = \"zzz\"") && e.contains("append_entries_ok"), "{e}");
    // The Paxos ports take the Raft testers' names (their swarms draw them); MapReduce
    // reports no triggers.
    check("kvpaxos::swarm_3b", &hold("term", Some("append_entries_ok"))).unwrap();
    assert!(check("kvpaxos::swarm_3b", &hold("term", Some("zzz"))).unwrap_err().contains("zzz"));
    let e = check("mapreduce::swarm", &hold("term", None)).unwrap_err();
    assert!(e.contains("mapreduce::swarm reports no release triggers"), "{e}");
}
