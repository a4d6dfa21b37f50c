//! `merge RESULTS…`: combines the results files of a sharded sweep's parts (`sweep --shard
//! K/N --format json`) into one summary, after checking that together they are exactly the
//! whole sweep: every part present once, from the same sweep (same selection, fault file and
//! number of parts), each complete (its summary line's count matches its run lines), and
//! every run of the sweep present exactly once. Anything else is refused, naming the part
//! or the run.
//!
//! Exit status: that of the merged runs (the most severe failing class, or 0), or 4 when the
//! parts do not make up one whole sweep or a file cannot be read or written.

use crate::results::{self, Line, RunKey, RunLine, Selection, ShardId, Summary, Tally};
use crate::{bad_input, junit};
use clap::Args;
use scenarios::registry::{FaultFile, Opts};
use scenarios::seeds;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct MergeArgs {
    /// The parts' results files (`sweep --shard K/N --format json > part-K.jsonl`), in any
    /// order; a whole sweep's file alone is checked for completeness the same way.
    #[arg(required = true, value_name = "RESULTS")]
    pub parts: Vec<PathBuf>,
    /// Write the merged results here: every run in sweep order, then one summary line — the
    /// file the unsharded sweep would have written, but for wall times.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write a JUnit report of the merged runs here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// One part as read.
struct Part {
    path: PathBuf,
    summary: Summary,
    /// (line number, raw text, run) of each run line.
    runs: Vec<(usize, String, RunLine)>,
}

fn read_part(path: &Path) -> Result<Part, String> {
    let mut summary = None;
    let mut runs = Vec::new();
    results::read(path, |n, text, line| {
        if summary.is_some() {
            return Err(format!("{} line {n}: a line after the summary line", path.display()));
        }
        match line {
            Line::Summary(s) => summary = Some(*s),
            Line::Run(r) => runs.push((n, text.to_string(), *r)),
        }
        Ok(())
    })?;
    let summary = summary.ok_or_else(|| {
        format!(
            "{}: no summary line: its sweep did not finish, or this is not the output of `sweep --format json`",
            path.display()
        )
    })?;
    if summary.runs != runs.len() as u64 {
        return Err(format!(
            "{}: its summary counts {} runs but it holds {}: the file is incomplete or was edited",
            path.display(),
            summary.runs,
            runs.len()
        ));
    }
    Ok(Part { path: path.to_path_buf(), summary, runs })
}

/// Checks that `parts` make up one whole sweep; returns, for each run of the sweep in
/// order, the (part, index in the part's runs) that holds it.
fn check_whole(parts: &[Part]) -> Result<Vec<(usize, usize)>, String> {
    let first = &parts[0];
    for p in &parts[1..] {
        if !same_runs(&p.summary.selection, &first.summary.selection) || p.summary.faults != first.summary.faults {
            return Err(format!(
                "{} and {} are parts of different sweeps (their summaries select different runs or fault files)",
                first.path.display(),
                p.path.display()
            ));
        }
        if let Some(whole) = [first, p].into_iter().find(|x| x.summary.shard.is_none()) {
            return Err(format!(
                "{} is a whole sweep, not a part: merge takes the parts of one sharded sweep (`sweep --shard K/N`); a whole sweep's file is complete already",
                whole.path.display()
            ));
        }
        if p.summary.cost_table != first.summary.cost_table {
            return Err(format!(
                "{} and {} were split by different cost tables: run every part with the same build (or --costs FILE)",
                first.path.display(),
                p.path.display()
            ));
        }
        let count = |s: &Summary| s.shard.map(|id| id.count);
        if count(&p.summary) != count(&first.summary) {
            return Err(format!(
                "{} and {} split the sweep differently ({} and {} parts)",
                first.path.display(),
                p.path.display(),
                count(&first.summary).map_or("1".into(), |n| n.to_string()),
                count(&p.summary).map_or("1".into(), |n| n.to_string())
            ));
        }
    }
    let index = first.summary.selection.index()?;
    if first.summary.shard.is_some() {
        let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
        for p in parts {
            let id = p.summary.shard.expect("same count, so sharded");
            if let Some(other) = seen.insert(id.index, &p.path) {
                return Err(format!("part {id} is given twice: {} and {}", other.display(), p.path.display()));
            }
        }
    }
    // Runs: each once, and only runs of the sweep.
    let mut holder: Vec<Option<(usize, usize)>> = vec![None; index.len()];
    for (pi, p) in parts.iter().enumerate() {
        for (ri, (n, _, run)) in p.runs.iter().enumerate() {
            let key = run.key();
            let Some(pos) = index.position(&key) else {
                return Err(format!("{} line {n}: {key} is not one of the sweep's runs", p.path.display()));
            };
            if let Some((qi, qr)) = holder[pos] {
                let q = &parts[qi];
                return Err(format!(
                    "{key} ran twice: {} line {} and {} line {n}",
                    q.path.display(),
                    q.runs[qr].0,
                    p.path.display()
                ));
            }
            holder[pos] = Some((pi, ri));
        }
    }
    // Parts: each index once, none missing (a missing part is named with a run it held).
    if let Some(count) = first.summary.shard.map(|s| s.count) {
        let seen: BTreeMap<u64, &Path> =
            parts.iter().map(|p| (p.summary.shard.expect("same count, so sharded").index, p.path.as_path())).collect();
        let missing: Vec<String> =
            (0..count).filter(|k| !seen.contains_key(k)).map(|k| ShardId { index: k, count }.to_string()).collect();
        if !missing.is_empty() {
            let example = holder.iter().position(Option::is_none).map(|i| index.key_at(i));
            return Err(format!(
                "part{} {} of the sweep {} missing{}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                if missing.len() > 1 { "are" } else { "is" },
                example.map(|k| format!(" ({k} is in no file)")).unwrap_or_default()
            ));
        }
    } else if parts.len() > 1 {
        return Err(format!(
            "{} is a whole sweep, not a part: merge takes the parts of one sharded sweep",
            parts.iter().find(|p| p.summary.shard.is_none()).unwrap_or(first).path.display()
        ));
    }
    let missing = holder.iter().filter(|h| h.is_none()).count();
    if let Some(i) = holder.iter().position(Option::is_none) {
        return Err(format!(
            "{} is missing from every part ({missing} of {} runs missing)",
            index.key_at(i),
            holder.len()
        ));
    }
    Ok(holder.into_iter().map(|h| h.expect("none missing")).collect())
}

/// Whether two summaries select the same runs (a `--rerun` file may sit at another path on
/// each machine: only the runs it lists count).
fn same_runs(a: &Selection, b: &Selection) -> bool {
    match (a, b) {
        (Selection::Listed { runs: x, .. }, Selection::Listed { runs: y, .. }) => x == y,
        _ => a == b,
    }
}

/// `merge`: its status; `command` names the program in the lines that reproduce a failure.
pub fn run(command: &str, a: &MergeArgs) -> u8 {
    let mut parts = Vec::new();
    for path in &a.parts {
        match read_part(path) {
            Ok(p) => parts.push(p),
            Err(e) => return bad_input(e),
        }
    }
    let order = match check_whole(&parts) {
        Ok(o) => o,
        Err(e) => return bad_input(e),
    };
    let mut tally = Tally::default();
    for &(pi, ri) in &order {
        tally.add(&parts[pi].runs[ri].2);
    }
    let first = &parts[0].summary;
    let wall_s: f64 = parts.iter().map(|p| p.summary.wall_s).sum();
    let summary = tally.summary(wall_s, None, first.faults.clone(), first.selection.clone());
    println!(
        "merged {} part{}: {} runs, every run of the sweep exactly once",
        parts.len(),
        if parts.len() > 1 { "s" } else { "" },
        tally.runs
    );
    println!(
        "runs: {}  passed: {}  failed: {}  ({:.1}s of wall time over all parts)",
        tally.runs,
        tally.passed,
        tally.runs - tally.passed,
        wall_s
    );
    for (c, n) in &tally.failures {
        println!("  {c}: {n}");
    }
    // The fault file as the parts named it; reproducing needs it, not its contents.
    let faults = first.faults.as_ref().map(|p| FaultFile { path: PathBuf::from(p), schedule: Default::default() });
    let reproduce = |l: &RunLine| {
        let opts = Opts { bug: l.run.bug.clone(), faults: faults.clone(), ..Opts::default() };
        seeds::reproduce_command(command, &l.run.scenario, l.run.seed, &opts)
    };
    for l in &tally.failing {
        println!("FAILED {}: {}", key_text(&l.key()), l.message.as_deref().unwrap_or(&l.run.outcome));
        println!("REPRODUCE WITH: {}", reproduce(l));
    }
    let mut status = tally.status();
    if let Some(path) = &a.out {
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            for &(pi, ri) in &order {
                writeln!(f, "{}", parts[pi].runs[ri].1)?;
            }
            writeln!(f, "{}", results::summary_json(&summary))?;
            f.flush()
        };
        match write() {
            Ok(()) => println!("merged results written to {}", path.display()),
            Err(e) => status = status.max(bad_input(format!("{}: cannot write: {e}", path.display()))),
        }
    }
    if let Some(path) = &a.junit {
        if let Err(e) = std::fs::write(path, junit::render("simlab sweep (merged)", &tally, &reproduce)) {
            status = status.max(bad_input(format!("{}: cannot write the JUnit report: {e}", path.display())));
        }
    }
    status
}

fn key_text(k: &RunKey) -> String {
    k.to_string()
}
