//! `costs [FILTER] --seeds A..B --out FILE`: measures the wall time of one run of each
//! scenario (the mean over the seeds, runs one at a time so they do not compete for cores)
//! and writes the cost table `sweep --shard` splits by. The committed table,
//! `xtask/costs.tsv`, is regenerated with `cargo xtask costs --seeds 0..5 --out
//! xtask/costs.tsv`; a new scenario the table does not know counts at the median.

use crate::shard::CostTable;
use crate::sweep::{parse_range, progress};
use crate::{bad_input, exit};
use clap::Args;
use scenarios::registry::{run_scenario, Catalogue, Opts};
use sim::TraceMode;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct CostsArgs {
    /// A family (`raft`), a full name, a glob (`raft::*_2c`), or `all` (the default).
    #[arg(default_value = "all")]
    pub filter: String,
    /// Seeds to average over (half-open).
    #[arg(long, value_name = "A..B", value_parser = parse_range, default_value = "0..5")]
    pub seeds: Range<u64>,
    /// Write the table here. Entries of scenarios not measured this time are kept from the
    /// file, so `costs kvraft --out xtask/costs.tsv` refreshes only kvraft. Without it the
    /// table goes to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(cat: &Catalogue, a: &CostsArgs) -> u8 {
    let scenarios = match cat.select(&a.filter) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let total = match crate::plan::grid_runs(
        &format!("'{}' ({})", a.filter, crate::count(scenarios.len() as u64, "scenario")),
        scenarios.len() as u64,
        &a.seeds,
    ) {
        Ok(n) => n,
        Err(e) => return bad_input(e),
    };
    let mut table = match &a.out {
        Some(path) if path.exists() => {
            match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| CostTable::parse(&t)) {
                Ok(t) => t,
                Err(e) => return bad_input(format!("{}: {e}", path.display())),
            }
        }
        _ => CostTable::default(),
    };
    // Refuse an unwritable file before measuring anything.
    if let Some(path) = &a.out {
        if let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            return bad_input(format!("{}: cannot write: {e}", path.display()));
        }
    }
    let seeds = a.seeds.end - a.seeds.start;
    let pb = progress(total, "costs");
    for sc in &scenarios {
        let mut total = 0.0;
        for seed in a.seeds.clone() {
            let t = Instant::now();
            let _ = run_scenario(sc, seed, &Opts::default(), TraceMode::Hash, None);
            total += t.elapsed().as_secs_f64();
            pb.inc(1);
        }
        table.micros.insert(sc.name.to_string(), ((total / seeds as f64) * 1e6).round().max(1.0) as u64);
    }
    pb.finish_and_clear();
    let header = format!(
        "Wall time of one run of each scenario, in microseconds: the mean over seeds {}..{}, one run at a\n\
         time, in the optimized simulation build. `sweep --shard K/N` splits by this table so that every\n\
         machine computes the same split. Regenerate with:\n  {} costs --seeds 0..5 --out xtask/costs.tsv",
        a.seeds.start,
        a.seeds.end,
        cat.command()
    );
    let text = table.to_text(&header);
    match &a.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                return bad_input(format!("{}: cannot write: {e}", path.display()));
            }
            println!(
                "{} scenarios measured; table of {} written to {}",
                scenarios.len(),
                table.micros.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    exit::PASS
}
