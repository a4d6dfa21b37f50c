//! Every saved seed under `seeds/` replays as recorded: a `fixed` seed passes, an `open`
//! seed still fails with its recorded class, caught by its recorded check. Malformed seed
//! files, and seed files whose fault file is missing, are bad input when loaded — never a
//! run's outcome. A failure saved with a fault file keeps a copy of it and reproduces.

use scenarios::registry::{run_scenario, FaultFile, InputError};
use scenarios::seeds::{self, Status};
use scenarios::Opts;
use sim::faults::{Fault, FaultEvent, FaultSchedule, Target};
use sim::TraceMode;
use std::path::{Path, PathBuf};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds")
}

/// A scratch folder under the build's target folder, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_saved_seed_replays_as_recorded() {
    let cat = scenarios::catalogue();
    let saved = seeds::load_dir(&cat, &seeds_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!saved.is_empty(), "seeds/ must hold at least one fixture so this test is never vacuous");
    assert!(saved.iter().any(|s| s.file.status == Status::Open));
    for s in saved {
        let r = run_scenario(&s.scenario, s.file.seed, &s.opts, TraceMode::Hash, None);
        if let Err(e) = s.file.verify(&r.outcome) {
            panic!("{}: {e}", s.path.display());
        }
    }
}

#[test]
fn a_malformed_seed_file_fails_the_folder_load_with_its_name() {
    let dir = scratch("seeds-malformed");
    std::fs::write(dir.join("bad.toml"), "scenario = \"mapreduce::wc\"\nseed = \"twelve\"\n").unwrap();
    let err = seeds::load_dir(&scenarios::catalogue(), &dir).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("seed"), "{err}");
}

const SWARM_SEED: &str = "scenario = \"raft::swarm_2c\"\nseed = 3\nfaults = \"gone.faults.toml\"\nclass = \"safety\"\nchecker = \"election-safety\"\ndate = \"2026-11-21\"\nsummary = \"x\"\nstatus = \"open\"\n";

#[test]
fn a_seed_whose_fault_file_is_missing_is_bad_input_not_a_safety_violation() {
    // Before, the run started and the swarm reported the unreadable file as a safety
    // violation — which an `open` safety seed would have counted as reproducing.
    let dir = scratch("seeds-missing-faults");
    std::fs::write(dir.join("raft__swarm_2c-3.toml"), SWARM_SEED).unwrap();
    let err = seeds::load_dir(&scenarios::catalogue(), &dir).unwrap_err();
    assert!(matches!(err, InputError::Faults(_)), "{err}");
    assert!(err.to_string().contains("gone.faults.toml") && err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn a_seed_whose_fault_file_misses_the_safety_phase_is_refused() {
    let dir = scratch("seeds-late-faults");
    std::fs::write(dir.join("raft__swarm_2c-3.toml"), SWARM_SEED).unwrap();
    let late = FaultSchedule { events: vec![FaultEvent { at_ms: 31_000, fault: Fault::Heal }] };
    late.save(&dir.join("gone.faults.toml")).unwrap();
    let err = seeds::load_dir(&scenarios::catalogue(), &dir).unwrap_err();
    assert!(matches!(err, InputError::FaultPastSafetyPhase { number: 1, at_ms: 31_000, .. }), "{err}");
}

#[test]
fn a_failure_saved_with_a_fault_file_keeps_a_copy_that_its_seed_replays() {
    let cat = scenarios::catalogue();
    let dir = scratch("seeds-save-faults");
    // A schedule that only isolates a server: the swarm passes with it, so the saved seed
    // must come back `open` with a made-up failure — what matters here is that the seed
    // file names a copy of the schedule and that loading it gives the same options.
    let schedule =
        FaultSchedule { events: vec![FaultEvent { at_ms: 500, fault: Fault::Isolate { node: Target::node("s1") } }] };
    let original = dir.join("mine.toml");
    schedule.save(&original).unwrap();
    let opts = Opts { faults: Some(FaultFile::load(&original).unwrap()), ..Opts::default() };
    let failure = sim::Failure::safety("election-safety", "two leaders in term 3");
    let date = seeds::parse_date("2026-11-21").unwrap();
    let saved = seeds::save_failure(&dir.join("saved"), "raft::swarm_2c", 4, &opts, &failure, date).unwrap();
    assert!(saved.written);
    let path = saved.path;
    // Saved again another day: the file already records this failure and is kept as it is.
    let text = std::fs::read_to_string(&path).unwrap();
    let later = seeds::parse_date("2026-12-01").unwrap();
    let again = seeds::save_failure(&dir.join("saved"), "raft::swarm_2c", 4, &opts, &failure, later).unwrap();
    assert_eq!((again.path.as_path(), again.written), (path.as_path(), false));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "not rewritten to change the date");
    // Another check catching it is another record: written, with the new date.
    let other = sim::Failure::safety("log-matching", "logs differ at index 4");
    let changed = seeds::save_failure(&dir.join("saved"), "raft::swarm_2c", 4, &opts, &other, later).unwrap();
    assert!(changed.written);
    assert!(std::fs::read_to_string(&path).unwrap().contains("2026-12-01"));
    let saved = seeds::save_failure(&dir.join("saved"), "raft::swarm_2c", 4, &opts, &failure, date).unwrap();
    assert!(saved.written, "back to the first record");
    std::fs::remove_file(&original).unwrap();
    let saved = seeds::load(&cat, &path).unwrap();
    assert_eq!(saved.file.faults.as_deref(), Some("raft__swarm_2c-4.faults.toml"));
    assert_eq!(saved.file.checker, "election-safety");
    assert_eq!(saved.opts.faults.as_ref().map(|f| &f.schedule), Some(&schedule), "the copy is the schedule played");
    // The schedule beside it is not mistaken for a seed file.
    assert_eq!(seeds::load_dir(&cat, &dir.join("saved")).unwrap().len(), 1);
}
