//! What the real binary says when it refuses an input or reports something a run skipped:
//! one line on stderr naming what was wrong and what to do, and exit status 4 — checked on
//! the text, as a newcomer reads it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch folder under the build's target folder, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("messages").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary in `dir` with `args`.
fn xtask_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).current_dir(dir).output().unwrap()
}

fn status(o: &Output) -> u8 {
    o.status.code().expect("exited") as u8
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refusal: status 4 and one line on stderr, which must contain every one of `want`.
fn refused(o: &Output, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(status(o), 4, "stdout: {}\nstderr: {err}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
}

#[test]
fn run_lists_the_fault_events_it_skipped() {
    // A schedule serves every cluster size, so `s9` is not refused; but a run that skips it
    // says so (before, only `replay`'s trace did).
    let dir = scratch("skipped");
    std::fs::write(dir.join("f.toml"), "[[event]]\nat_ms = 100\nkind = \"crash\"\nnode = \"s9\"\n").unwrap();
    let o = xtask_in(&dir, &["run", "raft::swarm_2c", "--seed", "1", "--faults", "f.toml"]);
    assert_eq!(status(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("faults skipped: 1 event named no node when it fired"), "{out}");
    assert!(out.contains("at 100 ms: crash s9"), "{out}");
    // A name the format does not define is refused before the run, naming event and field.
    std::fs::write(dir.join("g.toml"), "[[event]]\nat_ms = 100\nkind = \"crash\"\nnode = \"leadr\"\n").unwrap();
    let o = xtask_in(&dir, &["run", "raft::swarm_2c", "--seed", "1", "--faults", "g.toml"]);
    refused(&o, &["g.toml", "event 1", "crash node", "'leadr'"]);
}
