//! The golden table (`seeds/golden/`): every pinned (scenario, seed, bug) run keeps its
//! outcome and trace hash, and the seeded randomness keeps its values. Refresh only on
//! purpose: `SIMLAB_UPDATE_GOLDEN=1 cargo test --test golden`, and say why in the commit.

use scenarios::golden::{rng_lines, run_pair, runs_lines, GOLDEN_PAIRS};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/golden")
}

#[allow(clippy::disallowed_methods)] // allow-entropy: a test's own switch, outside any run
fn updating() -> bool {
    std::env::var_os("SIMLAB_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `got` with the file's lines, or rewrites the file when updating; a difference
/// names every line that changed.
fn compare_or_update(file: &str, got: &[String]) {
    let path = golden_dir().join(file);
    if updating() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got.join("\n") + "\n").unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with SIMLAB_UPDATE_GOLDEN=1)", path.display()));
    let want: Vec<&str> = text.lines().collect();
    let mut diffs = Vec::new();
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i).copied(), got.get(i).map(String::as_str));
        if w != g {
            diffs.push(format!(
                "line {}:\n  golden: {}\n  now:    {}",
                i + 1,
                w.unwrap_or("<none>"),
                g.unwrap_or("<none>")
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} changed ({} lines): what a seed means has changed. If on purpose, rerun with SIMLAB_UPDATE_GOLDEN=1 \
         and say why in the commit.\n{}",
        path.display(),
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn seeded_randomness_keeps_its_values() {
    compare_or_update("rng.txt", &rng_lines());
}

#[test]
fn pinned_runs_keep_their_outcomes_and_trace_hashes() {
    let runs: Vec<_> = GOLDEN_PAIRS.iter().map(|&(sc, seed, bug)| run_pair(sc, seed, bug)).collect();
    compare_or_update("runs.jsonl", &runs_lines(&runs));
}

#[test]
fn a_changed_run_is_named() {
    // The comparison cannot pass vacuously: a run whose hash differs from its golden line
    // makes the line differ.
    let (sc, seed, bug) = GOLDEN_PAIRS[0];
    let mut run = run_pair(sc, seed, bug);
    let line = runs_lines(std::slice::from_ref(&run)).remove(0);
    run.trace_hash = "0000000000000000".into();
    let changed = runs_lines(std::slice::from_ref(&run)).remove(0);
    assert_ne!(line, changed);
    let text = std::fs::read_to_string(golden_dir().join("runs.jsonl")).unwrap_or_default();
    if !updating() {
        assert!(text.lines().any(|l| l == line), "the golden file holds the first pair's line: {line}");
        assert!(!text.lines().any(|l| l == changed));
    }
}
