//! Helpers shared by the command line's integration tests.

use std::path::{Path, PathBuf};

/// A scratch folder `group/name` under the build's target folder, emptied first.
pub fn scratch_in(group: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(group).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
