//! The files a run attaches to its report (`sim::attach`: a failing history's page, the
//! client history that `--history` asks for), written where the command line's options say.
//! A run never writes a file itself, so where these land is no part of what it is a function
//! of; this module is the one place that writes them.

use checkers::formats::json::parse_json;
use checkers::formats::porcupine_kv::{write_kv_log, KvHistory};
use sim::{Attachment, RunReport};
use std::path::{Path, PathBuf};

/// The default folder for attachments (`--artifacts`), relative to the working directory.
pub const DEFAULT_DIR: &str = "target/sim-artifacts";

/// The suffix of the attachment that holds a run's client history in its JSON form (the
/// key/value tester's `…-seed7.history.json`).
const HISTORY_SUFFIX: &str = ".history.json";

/// The run's client history, if it attached one.
pub fn history_of(r: &RunReport) -> Option<&Attachment> {
    r.attachments.iter().find(|a| a.name.ends_with(HISTORY_SUFFIX))
}

/// Checks before a run that `dir` could be created and written, so that an unwritable
/// folder is refused before anything runs — without creating it: the folder is made only
/// when a run attaches a file ([`write_one`]), so a command that writes nothing leaves no
/// empty folder behind. The check writes (and removes) a probe file in `dir`, or in its
/// nearest existing ancestor when `dir` does not exist yet.
///
/// # Errors
/// `--artifacts DIR: cannot create the folder: …` when a part of the path is a file or the
/// folder (or the ancestor it would be made in) cannot be written.
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    probe_dir("--artifacts", dir)
}

/// As [`prepare_dir`], for the folder option `option` names (`--seeds-dir`, `--saved-dir`):
/// a folder written into only when a run fails is checked before the first run, so a
/// long sweep does not lose what it found to a bad path at its end.
///
/// # Errors
/// `OPTION DIR: cannot create the folder: …`, as [`prepare_dir`].
pub fn probe_dir(option: &str, dir: &Path) -> Result<(), String> {
    let refuse = |why: String| format!("{option} {}: cannot create the folder: {why}", dir.display());
    let mut at = dir;
    let existing = loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => break at,
            Ok(_) => return Err(refuse(format!("{} is a file", at.display()))),
            Err(_) => match at.parent() {
                Some(p) if !p.as_os_str().is_empty() => at = p,
                _ => break Path::new("."),
            },
        }
    };
    let probe = existing.join(format!(".simlab-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| refuse(e.to_string()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Checks, before a run, that each output file (`--history`, `--save-faults`, `--out`, …)
/// can be written, without truncating any: a command refused for one bad path must not have
/// emptied a file another option named. A file the probe had to create is removed again, so
/// a refused command leaves nothing behind; the command creates its files for real once
/// every check has passed.
///
/// # Errors
/// `OPTION PATH: cannot write: …` for the first path that cannot be opened for writing.
pub fn probe_writable<'a>(files: impl IntoIterator<Item = (&'a str, &'a Path)>) -> Result<(), String> {
    for (option, path) in files {
        let existed = path.exists();
        let opened = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path);
        match opened {
            Ok(file) => {
                drop(file);
                if !existed {
                    let _ = std::fs::remove_file(path);
                }
            }
            Err(e) => return Err(format!("{option} {}: cannot write: {e}", path.display())),
        }
    }
    Ok(())
}

/// Writes every attachment except the history (which `--history` places) into `dir`;
/// returns one line per file to print. A run with a planted bug names its files with the bug
/// already (`sim::attach`), so runs of one scenario and seed with different bugs never
/// overwrite each other's.
pub fn write_all(dir: &Path, r: &RunReport) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for a in r.attachments.iter().filter(|a| !a.name.ends_with(HISTORY_SUFFIX)) {
        let path = write_one(dir, a)?;
        lines.push(format!("{}: {}", a.what, path.display()));
    }
    Ok(lines)
}

/// Writes one attachment into `dir` under its own name.
pub fn write_one(dir: &Path, a: &Attachment) -> Result<PathBuf, String> {
    let path = dir.join(&a.name);
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&path, &a.bytes))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(path)
}

/// Writes the attached history (its JSON form) to `path`: as it is for a `.json` file, in
/// Porcupine's key/value log format for any other name. Returns what the file holds, for
/// the line that reports it.
///
/// # Errors
/// The file cannot be written, or the history cannot be carried by Porcupine's format (a key
/// or value with a quote, backslash or line break): one line saying to use `.json`.
pub fn write_history(a: &Attachment, path: &Path) -> Result<String, String> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    let (bytes, what) = if is_json {
        (a.bytes.clone(), "the JSON form".to_string())
    } else {
        let text = std::str::from_utf8(&a.bytes).map_err(|e| format!("{}: not UTF-8: {e}", a.name))?;
        let history: KvHistory = parse_json(text, &a.name, "kv").map_err(|e| e.to_string())?;
        let log = write_kv_log(&history).map_err(|e| {
            format!(
                "--history {}: Porcupine's format cannot carry this history ({e}): use a .json file",
                path.display()
            )
        })?;
        let what = format!(
            "Porcupine's key/value log, {} operations{}",
            log.written,
            if log.left_out > 0 {
                format!(", {} reads of unknown result left out", log.left_out)
            } else {
                String::new()
            }
        );
        (log.text.into_bytes(), what)
    };
    std::fs::write(path, bytes).map_err(|e| format!("--history {}: cannot write: {e}", path.display()))?;
    Ok(what)
}
