//! Saved seeds: one small TOML file per failing (scenario, seed, options), with its failure
//! class, the check that caught it, date, summary and status. `open` seeds must still fail
//! with their recorded class, caught by their recorded check (they stay faithful
//! reproductions, not merely "something still fails"); `fixed` seeds must pass.
//!
//! A seed whose run played a fault file has a copy of that schedule next to it
//! (`<seed file stem>.faults.toml`), named by its `faults` field, so the pair reproduces the
//! run wherever the folder goes.

use crate::registry::{Catalogue, FaultFile, InputError, Opts, Scenario};
use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sim::{Failure, FailureClass, Outcome};
use std::path::{Path, PathBuf};

/// Whether the failure still reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The run still fails as recorded.
    Open,
    /// The bug is fixed: the run passes.
    Fixed,
}

impl Status {
    /// The status as a seed file writes it (`open`, `fixed`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Fixed => "fixed",
        }
    }
}

/// One saved seed, as written in its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// The scenario's full name.
    pub scenario: String,
    /// The run's seed (written as a string above `i64::MAX`, TOML's largest integer).
    #[serde(serialize_with = "ser_seed", deserialize_with = "de_seed")]
    pub seed: u64,
    /// The planted bug switched on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug: Option<String>,
    /// A fault file the run played, relative to the seed file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
    /// How the run failed.
    pub class: FailureClass,
    /// The check that caught it (`Failure::checker`: `leader-completeness`, `mr::deadline`,
    /// `panic`, …); a replay of an `open` seed must be caught by the same check.
    pub checker: String,
    /// The day it was saved, `YYYY-MM-DD` (a real calendar date).
    #[serde(serialize_with = "ser_date", deserialize_with = "de_date")]
    pub date: Date,
    /// One line: what went wrong.
    pub summary: String,
    /// Whether it still fails.
    pub status: Status,
}

// TOML integers are signed 64-bit: seeds above i64::MAX are written as strings.
fn ser_seed<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
    if *seed <= i64::MAX as u64 {
        s.serialize_i64(*seed as i64)
    } else {
        s.serialize_str(&seed.to_string())
    }
}

fn de_seed<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Str(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(i) if i >= 0 => Ok(i as u64),
        Raw::Int(i) => Err(serde::de::Error::custom(format!("seed must not be negative, got {i}"))),
        Raw::Str(s) => {
            s.parse().map_err(|_| serde::de::Error::custom(format!("seed must be a non-negative integer, got {s:?}")))
        }
    }
}

fn ser_date<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&date.strftime("%Y-%m-%d").to_string())
}

fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    let text = String::deserialize(d)?;
    parse_date(&text).map_err(serde::de::Error::custom)
}

/// A seed file's `date` that is not a calendar date written `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("date must be a calendar date written YYYY-MM-DD, got '{text}': {why}")]
pub struct DateError {
    /// The text given.
    pub text: String,
    /// What is wrong with it: its shape, or the calendar's verdict.
    pub why: String,
}

/// Parses a `YYYY-MM-DD` date: exactly that shape, and a day the calendar has (jiff checks
/// month lengths and leap years).
///
/// # Errors
/// [`DateError`] when the text has another shape or names no day of the calendar.
pub fn parse_date(text: &str) -> Result<Date, DateError> {
    let bad = |why: String| DateError { text: text.to_string(), why };
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == b'-' } else { c.is_ascii_digit() });
    if !shaped {
        return Err(bad("not of that shape".into()));
    }
    Date::strptime("%Y-%m-%d", text).map_err(|e| bad(e.to_string()))
}

/// A replay whose outcome is not what its seed file records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAsRecorded {
    /// The file says `fixed`, and the run failed.
    #[error("marked fixed but fails: {outcome}")]
    FixedButFails {
        /// The run's outcome, as one line.
        outcome: String,
    },
    /// The file says `open`, and the run passed or failed another way.
    #[error("marked open ({class} caught by {checker}) but the run gives: {outcome} — if it is fixed, set status = \"fixed\"")]
    OpenButDiffers {
        /// The recorded failure class.
        class: &'static str,
        /// The recorded catching check.
        checker: String,
        /// The run's outcome, as one line.
        outcome: String,
    },
}

impl SeedFile {
    /// The seed file for a failed run, saved `date`; its `faults` field is filled in by
    /// [`save_failure`] when the run played a fault file.
    pub fn of_failure(scenario: &str, seed: u64, bug: Option<&str>, failure: &Failure, date: Date) -> SeedFile {
        SeedFile {
            scenario: scenario.to_string(),
            seed,
            bug: bug.map(str::to_string),
            faults: None,
            class: failure.class,
            checker: failure.checker.clone(),
            date,
            summary: summary_of(&Outcome::Fail(failure.clone())),
            status: Status::Open,
        }
    }

    /// The run options the file records, its fault file (resolved against `dir`, the seed
    /// file's folder) read.
    ///
    /// # Errors
    /// [`InputError::Faults`] when the fault file cannot be read or parsed.
    pub fn opts(&self, dir: &Path) -> Result<Opts, InputError> {
        let faults = self.faults.as_ref().map(|f| FaultFile::load(&dir.join(f))).transpose()?;
        Ok(Opts { bug: self.bug.clone(), faults, ..Opts::default() })
    }

    /// A file name that says what it holds: `raft__figure8_2c-42[-bug].toml`.
    pub fn file_name(&self) -> String {
        format!("{}.toml", self.stem())
    }

    fn stem(&self) -> String {
        let mut name = format!("{}-{}", self.scenario.replace("::", "__"), self.seed);
        if let Some(b) = &self.bug {
            name.push('-');
            name.push_str(b);
        }
        name
    }

    /// Checks a replay's outcome against the file: a `fixed` seed must pass; an `open` one
    /// must fail with the recorded class, caught by the recorded check.
    ///
    /// # Errors
    /// [`NotAsRecorded`], saying what the file records and what the run gave.
    pub fn verify(&self, outcome: &Outcome) -> Result<(), NotAsRecorded> {
        match (self.status, outcome) {
            (Status::Fixed, Outcome::Pass) => Ok(()),
            (Status::Fixed, Outcome::Fail(f)) => Err(NotAsRecorded::FixedButFails { outcome: f.to_string() }),
            (Status::Open, Outcome::Fail(f)) if f.class == self.class && f.checker == self.checker => Ok(()),
            (Status::Open, got) => Err(NotAsRecorded::OpenButDiffers {
                class: self.class.name(),
                checker: self.checker.clone(),
                outcome: got.to_string(),
            }),
        }
    }
}

/// A seed file read and checked against a catalogue: its scenario, and its options with the
/// fault file loaded, ready to run.
#[derive(Clone, Debug)]
pub struct SavedSeed {
    /// Where it was read from.
    pub path: PathBuf,
    /// What it says.
    pub file: SeedFile,
    /// Its scenario.
    pub scenario: Scenario,
    /// Its run options (planted bug, fault schedule).
    pub opts: Opts,
}

/// One line of summary for a failure: at most 200 bytes, no line breaks.
pub fn summary_of(outcome: &Outcome) -> String {
    let mut s = outcome.to_string().replace('\n', " ");
    if s.len() > 200 {
        let cut = (0..=200).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// `<command> replay SCENARIO --seed N [--bug B] [--faults F]`, `command` being how users
/// call the command line (`cargo xtask`, or a downstream crate's: [`Catalogue::command`]).
pub fn reproduce_command(command: &str, scenario: &str, seed: u64, opts: &Opts) -> String {
    if let Some(f) = &opts.scenario_file {
        // The file names the scenario, its schedule and maybe its bug.
        let mut cmd = format!("{command} replay {} --seed {seed}", f.path.display());
        if let Some(b) = opts.bug.as_ref().filter(|&b| f.spec.bug.as_ref() != Some(b)) {
            cmd.push_str(&format!(" --bug {b}"));
        }
        if opts.plain_swarm {
            cmd.push_str(" --plain-swarm");
        }
        return cmd;
    }
    let mut cmd = format!("{command} replay {scenario} --seed {seed}");
    if let Some(b) = &opts.bug {
        cmd.push_str(&format!(" --bug {b}"));
    }
    if let Some(f) = &opts.faults {
        cmd.push_str(&format!(" --faults {}", f.path.display()));
    }
    if opts.plain_swarm {
        cmd.push_str(" --plain-swarm");
    }
    cmd
}

fn seed_error(path: &Path, line: Option<usize>, message: impl Into<String>) -> InputError {
    InputError::SeedFile { path: path.display().to_string(), line, message: message.into() }
}

/// Parses a seed file's text and checks it against `catalogue`: the scenario exists, the bug
/// is its family's, the fault file (relative to `path`'s folder) reads and fits the
/// scenario's safety phase for the seed, the summary and checker are one line each.
///
/// # Errors
/// [`InputError::SeedFile`] naming the file (and line, for TOML errors), or the fault file's
/// own error.
pub fn parse(catalogue: &Catalogue, path: &Path, text: &str) -> Result<SavedSeed, InputError> {
    let file: SeedFile = sim::tomlfile::from_str(text).map_err(|e| seed_error(path, e.line, e.message))?;
    let scenario = catalogue.scenario(&file.scenario).map_err(|_| {
        seed_error(path, None, format!("unknown scenario '{}' (see `{} list`)", file.scenario, catalogue.command()))
    })?;
    for (field, value) in [("summary", &file.summary), ("checker", &file.checker)] {
        if value.trim().is_empty() || value.contains('\n') {
            return Err(seed_error(path, None, format!("{field} must be one non-empty line")));
        }
    }
    if file.faults.is_some() && !scenario.takes_fault_schedule() {
        return Err(seed_error(
            path,
            None,
            InputError::NoFaultSchedule { scenario: scenario.name, command: catalogue.command() }.to_string(),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let opts = file.opts(dir)?;
    catalogue.check_opts(&scenario, file.seed, &opts).map_err(|e| match e {
        InputError::UnknownBug { .. } | InputError::NoFaultSchedule { .. } => seed_error(path, None, e.to_string()),
        other => other,
    })?;
    Ok(SavedSeed { path: path.to_path_buf(), file, scenario, opts })
}

/// Reads and checks one seed file (see [`parse`]).
///
/// # Errors
/// As [`parse`], or when the file cannot be read.
pub fn load(catalogue: &Catalogue, path: &Path) -> Result<SavedSeed, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| seed_error(path, None, format!("cannot read: {e}")))?;
    parse(catalogue, path, &text)
}

/// Every seed file directly under `dir` (`*.toml`, but not the `*.faults.toml` schedules
/// that go with them), sorted by name.
///
/// # Errors
/// The first file that does not load, or a folder that cannot be listed.
pub fn load_dir(catalogue: &Catalogue, dir: &Path) -> Result<Vec<SavedSeed>, InputError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| seed_error(dir, None, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".toml") && !name.ends_with(FAULTS_SUFFIX)
        })
        .collect();
    paths.sort();
    paths.into_iter().map(|p| load(catalogue, &p)).collect()
}

/// The ending of a fault schedule saved next to its seed file.
pub const FAULTS_SUFFIX: &str = ".faults.toml";

/// Writes a seed file into `dir`, returning its path.
///
/// # Errors
/// [`InputError::SeedFile`] when the folder or file cannot be written.
pub fn save(dir: &Path, sf: &SeedFile) -> Result<PathBuf, InputError> {
    std::fs::create_dir_all(dir).map_err(|e| seed_error(dir, None, format!("cannot create: {e}")))?;
    let path = dir.join(sf.file_name());
    let text = toml::to_string(sf).expect("a seed file always encodes");
    std::fs::write(&path, text).map_err(|e| seed_error(&path, None, format!("cannot write: {e}")))?;
    Ok(path)
}

/// Where [`save_failure`] left a seed, and whether it wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The seed file.
    pub path: PathBuf,
    /// False when the file already recorded this failure (same scenario, seed, bug, class,
    /// checker and fault schedule, status open) and was left as it was.
    pub written: bool,
}

/// Saves a failed run as an `open` seed under `dir` (what `sweep --save` and `bugs --save`
/// write): the failure's class and catching check, and — when the run played a fault file —
/// a copy of that schedule next to the seed file, which names it, so the seed reproduces
/// without the original file. A seed file that already records this failure — the same
/// scenario, seed, bug, class and checker, the same schedule beside it, still open — is kept
/// as it is rather than rewritten to change only its date (a sweep saving again must not
/// churn a committed folder).
///
/// # Errors
/// [`InputError::SeedFile`] or [`InputError::Faults`] when a file cannot be written.
pub fn save_failure(
    dir: &Path,
    scenario: &str,
    seed: u64,
    opts: &Opts,
    failure: &Failure,
    date: Date,
) -> Result<Saved, InputError> {
    let mut sf = SeedFile::of_failure(scenario, seed, opts.bug.as_deref(), failure, date);
    let schedule = opts.faults.as_ref().map(|f| (format!("{}{FAULTS_SUFFIX}", sf.stem()), f.schedule.to_toml()));
    sf.faults = schedule.as_ref().map(|(name, _)| name.clone());
    let path = dir.join(sf.file_name());
    let recorded = std::fs::read_to_string(&path).ok().and_then(|t| toml::from_str::<SeedFile>(&t).ok());
    let same_schedule = schedule
        .as_ref()
        .is_none_or(|(name, text)| std::fs::read_to_string(dir.join(name)).is_ok_and(|old| &old == text));
    if recorded.is_some_and(|old| {
        (&old.scenario, old.seed, &old.bug, old.class, &old.checker, &old.faults, old.status)
            == (&sf.scenario, sf.seed, &sf.bug, sf.class, &sf.checker, &sf.faults, Status::Open)
    }) && same_schedule
    {
        return Ok(Saved { path, written: false });
    }
    if let (Some(faults), Some((name, _))) = (&opts.faults, &schedule) {
        std::fs::create_dir_all(dir).map_err(|e| seed_error(dir, None, format!("cannot create: {e}")))?;
        faults.schedule.save(&dir.join(name))?;
    }
    save(dir, &sf).map(|path| Saved { path, written: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("seeds/x.toml")
    }

    const GOOD: &str = "scenario = \"mapreduce::crash\"\nseed = 7\nbug = \"no-reissue\"\nclass = \"liveness\"\nchecker = \"mr::deadline\"\ndate = \"2026-11-21\"\nsummary = \"job never ends\"\nstatus = \"open\"\n";

    #[test]
    fn round_trip() {
        let cat = crate::catalogue();
        let sf = parse(&cat, p(), GOOD).unwrap().file;
        assert_eq!(sf.seed, 7);
        assert_eq!(sf.class, FailureClass::Liveness);
        assert_eq!(sf.checker, "mr::deadline");
        let text = toml::to_string(&sf).unwrap();
        assert!(text.contains("date = \"2026-11-21\""), "{text}");
        let back = parse(&cat, p(), &text).unwrap().file;
        assert_eq!(sf, back);
        assert_eq!(sf.file_name(), "mapreduce__crash-7-no-reissue.toml");
        let big = SeedFile { seed: u64::MAX, ..sf };
        assert_eq!(parse(&cat, p(), &toml::to_string(&big).unwrap()).unwrap().file.seed, u64::MAX);
    }

    #[test]
    fn malformed_files_are_rejected_with_a_clear_error() {
        let cat = crate::catalogue();
        let cases: &[(&str, &str)] = &[
            ("scenario = \"mapreduce::crash\"\n", "missing field"),
            (&GOOD.replace("seed = 7", "seed = -3"), "negative"),
            (&GOOD.replace("seed = 7", "seed = \"x\""), "non-negative integer"),
            (&GOOD.replace("mapreduce::crash", "raft::nope"), "unknown scenario"),
            (&GOOD.replace("no-reissue", "no-such"), "unknown planted bug"),
            (&GOOD.replace("\"liveness\"", "\"slow\""), "unknown variant"),
            (&GOOD.replace("\"open\"", "\"maybe\""), "unknown variant"),
            (&GOOD.replace("2026-11-21", "yesterday"), "YYYY-MM-DD"),
            // The old check looked only at the shape: these are not days of the calendar.
            (&GOOD.replace("2026-11-21", "2026-13-01"), "YYYY-MM-DD"),
            (&GOOD.replace("2026-11-21", "2026-02-29"), "YYYY-MM-DD"),
            (&GOOD.replace("2026-11-21", "2026-04-31"), "YYYY-MM-DD"),
            (&GOOD.replace("checker = \"mr::deadline\"\n", ""), "missing field `checker`"),
            (&GOOD.replace("\"mr::deadline\"", "\" \""), "checker must be one non-empty line"),
            (&format!("{GOOD}colour = \"red\"\n"), "unknown field"),
            (&format!("{GOOD}faults = \"f.toml\"\n"), "takes no fault schedule"),
            ("this is not toml", "x.toml"),
        ];
        for (text, want) in cases {
            let err = parse(&cat, p(), text).unwrap_err().to_string();
            assert!(err.contains(want) && err.starts_with("seeds/x.toml"), "error {err:?} should mention {want:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
        // A leap day is a date.
        assert!(parse(&cat, p(), &GOOD.replace("2026-11-21", "2028-02-29")).is_ok());
    }

    fn failure(class: FailureClass, checker: &str) -> Outcome {
        Outcome::Fail(Failure { class, checker: checker.into(), message: "m".into(), location: None })
    }

    #[test]
    fn an_open_seed_reproduces_only_with_its_class_and_its_check() {
        let sf = parse(&crate::catalogue(), p(), GOOD).unwrap().file;
        assert!(sf.verify(&failure(FailureClass::Liveness, "mr::deadline")).is_ok());
        // Checked by class alone, this would count as reproducing: another check failed.
        let other = sf.verify(&failure(FailureClass::Liveness, "budget")).unwrap_err();
        assert!(matches!(other, NotAsRecorded::OpenButDiffers { ref checker, .. } if checker == "mr::deadline"));
        let other = other.to_string();
        assert!(other.contains("caught by mr::deadline") && other.contains("budget"), "{other}");
        assert!(sf.verify(&failure(FailureClass::Safety, "mr::deadline")).is_err());
        assert!(sf.verify(&Outcome::Pass).is_err());
        let fixed = SeedFile { status: Status::Fixed, ..sf };
        assert!(fixed.verify(&Outcome::Pass).is_ok());
        assert!(matches!(
            fixed.verify(&failure(FailureClass::Liveness, "mr::deadline")),
            Err(NotAsRecorded::FixedButFails { .. })
        ));
    }
}
