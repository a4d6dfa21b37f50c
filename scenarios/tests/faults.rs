//! Faults as data: a swarm run's schedule saved with `--save-faults` and replayed with
//! `--faults` reproduces the run event for event; an edited schedule changes it.

use scenarios::{registry, Opts};
use sim::faults::FaultSchedule;
use sim::TraceMode;

#[test]
fn a_saved_schedule_replays_the_run_exactly_and_an_edited_one_does_not() {
    let dir = std::env::temp_dir().join(format!("simlab-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("faults.toml");
    for name in ["raft::swarm_2c", "kvraft::swarm_3b"] {
        let sc = registry::select(name).unwrap()[0];
        let seed = 11;
        let first = registry::run_scenario(
            &sc,
            seed,
            &Opts { save_faults: Some(saved.clone()), ..Opts::default() },
            TraceMode::Hash,
            None,
        );
        let schedule = FaultSchedule::load(&saved).unwrap();
        assert!(!schedule.events.is_empty(), "{name}: the swarm drew some faults");
        let replay = registry::run_scenario(
            &sc,
            seed,
            &Opts { faults: Some(saved.clone()), ..Opts::default() },
            TraceMode::Hash,
            None,
        );
        assert_eq!(first.trace_hash, replay.trace_hash, "{name}: replaying the saved schedule reproduces the run");
        assert_eq!(first.outcome, replay.outcome);
        // Drop the second half of the events: a different run.
        let mut edited = schedule.clone();
        edited.events.truncate(schedule.events.len() / 2);
        edited.save(&saved).unwrap();
        let cut = registry::run_scenario(
            &sc,
            seed,
            &Opts { faults: Some(saved.clone()), ..Opts::default() },
            TraceMode::Hash,
            None,
        );
        assert_ne!(first.trace_hash, cut.trace_hash, "{name}: an edited schedule is what the run plays");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
