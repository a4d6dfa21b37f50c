//! Test helpers shared by the integration tests: where the shared histories live.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$SIMLAB_SHARED_DIR/histories/porcupine`, by default `<workspace>/../shared/...`. A
/// relative `SIMLAB_SHARED_DIR` is taken from the workspace's root (where `cargo test` is
/// typed; the test itself runs in its crate's folder). `None` (after printing why) when the
/// default is absent, unless `SIMLAB_REQUIRE_SHARED=1`: then absence fails the test, as it
/// does when `SIMLAB_SHARED_DIR` is set and holds no histories (a wrong path must not pass
/// as a skip).
#[allow(clippy::disallowed_methods)] // allow-entropy: a test's own switches, outside any run
pub fn porcupine_dir() -> Option<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let given = std::env::var_os("SIMLAB_SHARED_DIR").map(|d| root.join(d));
    let shared = given.clone().unwrap_or_else(|| root.join("../shared"));
    let dir = shared.join("histories/porcupine");
    if dir.join("EXPECTED.tsv").is_file() {
        return Some(dir);
    }
    assert!(given.is_none(), "SIMLAB_SHARED_DIR is set, but {} has no EXPECTED.tsv", dir.display());
    let required = std::env::var("SIMLAB_REQUIRE_SHARED").is_ok_and(|v| v == "1");
    assert!(!required, "SIMLAB_REQUIRE_SHARED=1 but {} has no EXPECTED.tsv", dir.display());
    println!(
        "SKIPPED: shared histories not found at {} (set SIMLAB_SHARED_DIR; SIMLAB_REQUIRE_SHARED=1 makes this a failure)",
        dir.display()
    );
    None
}

/// The rows of EXPECTED.tsv: (file, model, expected verdict).
pub fn expected(dir: &std::path::Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv is readable");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "EXPECTED.tsv row {l:?}");
            (cols[0].to_string(), cols[1].to_string(), cols[2].to_string())
        })
        .collect()
}
