//! Every saved seed under `seeds/` replays as recorded: a `fixed` seed passes, an `open`
//! seed still fails with its recorded class. Malformed seed files are rejected.

use scenarios::registry;
use scenarios::seeds::{self, Status};
use sim::TraceMode;
use std::path::Path;

fn seeds_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds")
}

#[test]
fn every_saved_seed_replays_as_recorded() {
    let dir = seeds_dir();
    let files = seeds::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!files.is_empty(), "seeds/ must hold at least one fixture so this test is never vacuous");
    for (path, sf) in files {
        let sc = registry::select(&sf.scenario).unwrap()[0];
        let r = registry::run_scenario(&sc, sf.seed, &sf.opts(&dir), TraceMode::Hash, None);
        match sf.status {
            Status::Fixed => assert!(r.outcome.is_pass(), "{}: marked fixed but fails: {}", path.display(), r.outcome),
            Status::Open => assert_eq!(
                r.outcome.class(),
                Some(sf.class),
                "{}: marked open ({}) but the run gives: {} — if it is fixed, set status = \"fixed\"",
                path.display(),
                sf.class.name(),
                r.outcome
            ),
        }
    }
}

#[test]
fn a_malformed_seed_file_fails_the_folder_load_with_its_name() {
    let dir = std::env::temp_dir().join(format!("simlab-seeds-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.toml"), "scenario = \"mapreduce::wc\"\nseed = \"twelve\"\n").unwrap();
    let err = seeds::load_dir(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("bad.toml") && err.contains("seed"), "{err}");
}
