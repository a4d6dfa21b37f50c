//! Saved seeds: one small TOML file per failing (scenario, seed, options), with its failure
//! class, date, summary and status. `open` seeds must still fail with their recorded class
//! (they stay faithful reproductions); `fixed` seeds must pass.

use crate::registry::{select, validate_bug, Opts};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sim::FailureClass;
use std::path::{Path, PathBuf};

/// Whether the failure still reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Fixed,
}

/// One saved seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub scenario: String,
    #[serde(serialize_with = "ser_seed", deserialize_with = "de_seed")]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug: Option<String>,
    /// A fault file, relative to the seed file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
    pub class: FailureClass,
    pub date: String,
    pub summary: String,
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

impl SeedFile {
    /// The run options the file records (fault file resolved against `dir`).
    pub fn opts(&self, dir: &Path) -> Opts {
        Opts { bug: self.bug.clone(), faults: self.faults.as_ref().map(|f| dir.join(f)), ..Opts::default() }
    }

    /// A file name that says what it holds: `raft__figure8_2c-42[-bug].toml`.
    pub fn file_name(&self) -> String {
        let mut name = format!("{}-{}", self.scenario.replace("::", "__"), self.seed);
        if let Some(b) = &self.bug {
            name.push('-');
            name.push_str(b);
        }
        name.push_str(".toml");
        name
    }

    /// The command that replays it.
    pub fn reproduce_command(&self) -> String {
        reproduce_command(&self.scenario, self.seed, &self.opts(Path::new("seeds")))
    }
}

/// `cargo xtask replay SCENARIO --seed N [--bug B] [--faults F]`.
pub fn reproduce_command(scenario: &str, seed: u64, opts: &Opts) -> String {
    let mut cmd = format!("cargo xtask replay {scenario} --seed {seed}");
    if let Some(b) = &opts.bug {
        cmd.push_str(&format!(" --bug {b}"));
    }
    if let Some(f) = &opts.faults {
        cmd.push_str(&format!(" --faults {}", f.display()));
    }
    cmd
}

/// Parses and validates a seed file's text; errors name the file and say what is wrong.
pub fn parse(path: &Path, text: &str) -> Result<SeedFile, String> {
    let sf: SeedFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!("{}: line {line}: {msg}", path.display())
            }
            None => format!("{}: {msg}", path.display()),
        }
    })?;
    let scenarios = select(&sf.scenario)
        .map_err(|_| format!("{}: unknown scenario '{}' (see `cargo xtask list`)", path.display(), sf.scenario))?;
    if scenarios.len() != 1 || scenarios[0].name != sf.scenario {
        return Err(format!("{}: scenario must be one full name, got '{}'", path.display(), sf.scenario));
    }
    if let Some(b) = &sf.bug {
        validate_bug(&scenarios, b).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let d = sf.date.as_bytes();
    let date_ok = d.len() == 10
        && d[4] == b'-'
        && d[7] == b'-'
        && d.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !date_ok {
        return Err(format!("{}: date must be YYYY-MM-DD, got '{}'", path.display(), sf.date));
    }
    if sf.summary.trim().is_empty() || sf.summary.contains('\n') {
        return Err(format!("{}: summary must be one non-empty line", path.display()));
    }
    Ok(sf)
}

/// Reads and validates one seed file.
pub fn load(path: &Path) -> Result<SeedFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(path, &text)
}

/// Every `*.toml` seed file directly under `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, SeedFile)>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot list: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.into_iter().map(|p| load(&p).map(|sf| (p, sf))).collect()
}

/// Writes a seed file into `dir`, returning its path.
pub fn save(dir: &Path, sf: &SeedFile) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let path = dir.join(sf.file_name());
    let text = toml::to_string(sf).map_err(|e| format!("cannot encode seed file: {e}"))?;
    std::fs::write(&path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("seeds/x.toml")
    }

    const GOOD: &str = "scenario = \"mapreduce::crash\"\nseed = 7\nbug = \"no-reissue\"\nclass = \"liveness\"\ndate = \"2026-11-21\"\nsummary = \"job never ends\"\nstatus = \"open\"\n";

    #[test]
    fn round_trip() {
        let sf = parse(p(), GOOD).unwrap();
        assert_eq!(sf.seed, 7);
        assert_eq!(sf.class, FailureClass::Liveness);
        let back = parse(p(), &toml::to_string(&sf).unwrap()).unwrap();
        assert_eq!(sf, back);
        assert_eq!(sf.file_name(), "mapreduce__crash-7-no-reissue.toml");
        assert_eq!(sf.reproduce_command(), "cargo xtask replay mapreduce::crash --seed 7 --bug no-reissue");
        let big = SeedFile { seed: u64::MAX, ..sf };
        assert_eq!(parse(p(), &toml::to_string(&big).unwrap()).unwrap().seed, u64::MAX);
    }

    #[test]
    fn malformed_files_are_rejected_with_a_clear_error() {
        let cases: &[(&str, &str)] = &[
            ("scenario = \"mapreduce::crash\"\n", "missing field"),
            (&GOOD.replace("seed = 7", "seed = -3"), "negative"),
            (&GOOD.replace("seed = 7", "seed = \"x\""), "non-negative integer"),
            (&GOOD.replace("mapreduce::crash", "raft::nope"), "unknown scenario"),
            (&GOOD.replace("no-reissue", "no-such"), "unknown planted bug"),
            (&GOOD.replace("\"liveness\"", "\"slow\""), "unknown variant"),
            (&GOOD.replace("\"open\"", "\"maybe\""), "unknown variant"),
            (&GOOD.replace("2026-11-21", "yesterday"), "YYYY-MM-DD"),
            (&format!("{GOOD}colour = \"red\"\n"), "unknown field"),
            ("this is not toml", "x.toml"),
        ];
        for (text, want) in cases {
            let err = parse(p(), text).unwrap_err();
            assert!(err.contains(want) && err.starts_with("seeds/x.toml"), "error {err:?} should mention {want:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }
}
