//! The generated and committed histories of `cargo xtask bench-checker`: random concurrent
//! key/value histories, each from a listed seed, and histories exported from named
//! simulator runs, committed, so that anyone can re-create or reuse them and check them
//! with this project's checker or with Porcupine (they are in Porcupine's key/value log
//! format, which both read).
//!
//! **Random** (`random-…`): `clients` clients on `keys` keys, each calling one operation at
//! a time (a get half the time, else an append, or a put one time in ten) after a pause
//! of 0–20 time units, lasting 1–50 units; every operation takes effect at a point drawn
//! inside its interval, and its output is what a store applying the operations in the order
//! of those points returns — so the history is linearizable. The `stale` variant then
//! gives one read, the first from the middle on for which this makes the history not
//! linearizable, the value its key had before the latest write that both took effect and
//! returned before the read was called.
//!
//! **Simulator** (`sim-…`): the client history of a `kvraft::swarm_3b` run, written by
//! `cargo xtask run kvraft::swarm_3b --seed S --plain-swarm --history FILE.txt` (at commit
//! 44cf693; seed 590's at 81ef3a7, the same 732 operations as session 4's) and committed
//! under `xtask/checker-histories/`: the swarm's drawn knob profiles
//! and any later change to the simulated service or the simulator would change a
//! regenerated history, and a benchmark row must stay the same history forever. The seeds
//! are runs whose clerks all share one key and whose histories, without the write digests
//! Porcupine's format cannot carry, both checkers decide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use checkers::formats::porcupine_kv::{write_kv_log, KvHistory};
use checkers::linearizability::{check, CheckOptions, History, Operation, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A generated history: its file name and how to make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated {
    /// `random_history(seed, clients, keys, ops)`, with one stale read when `stale`.
    Random { seed: u64, clients: u64, keys: usize, ops: usize, stale: bool },
}

impl Generated {
    /// The file name, which says everything needed to make it again.
    pub fn file_name(&self) -> String {
        let Generated::Random { seed, clients, keys, ops, stale } = *self;
        format!("random-c{clients}-k{keys}-n{ops}-s{seed}-{}.txt", if stale { "stale" } else { "ok" })
    }

    /// Writes the history into `dir` (unless a file of that name is there already);
    /// returns its path.
    pub fn ensure(&self, dir: &Path) -> Result<PathBuf, String> {
        let path = dir.join(self.file_name());
        if path.is_file() {
            return Ok(path);
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        eprintln!("generating {}", path.display());
        let Generated::Random { seed, clients, keys, ops, stale } = *self;
        let mut history = random_history(seed, clients, keys, ops);
        if stale {
            history = with_stale_read(history)?;
        }
        let log = write_kv_log(&history).map_err(|e| e.to_string())?;
        std::fs::write(&path, log.text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// A linearizable history of `clients` clients on `keys` keys, `ops` operations in all
/// (see the module's documentation); times are integer units.
pub fn random_history(seed: u64, clients: u64, keys: usize, ops: usize) -> KvHistory {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // When each client may call next, and its next append's number.
    let mut free_at: Vec<u64> = vec![0; clients as usize];
    let mut count: Vec<u64> = vec![0; clients as usize];
    // (linearization point, tie-break, operation)
    let mut placed: Vec<(u64, u64, Operation<KvInput, KvOutput>)> = Vec::with_capacity(ops);
    for _ in 0..ops {
        let c = (0..clients as usize).min_by_key(|&c| (free_at[c], c)).expect("at least one client");
        let call = free_at[c] + rng.gen_range(0..=20);
        let ret = call + rng.gen_range(1..=50);
        let point = rng.gen_range(call..=ret);
        free_at[c] = ret + 1;
        let key = rng.gen_range(0..keys).to_string();
        let value = format!("x {c} {} y", count[c]);
        let input = match rng.gen_range(0..100) {
            0..=49 => KvInput::get(key),
            50..=59 => KvInput::put(key, value),
            _ => KvInput::append(key, value),
        };
        if !matches!(input, KvInput::Get { .. }) {
            count[c] += 1;
        }
        placed.push((point, rng.gen(), Operation::new(c as u64, input, call, KvOutput::Ack, ret)));
    }
    // Apply in the order of the points.
    placed.sort_by_key(|(point, tie, _)| (*point, *tie));
    let mut store: BTreeMap<String, String> = BTreeMap::new();
    for (_, _, op) in &mut placed {
        let value = store.entry(op.input.key().to_string()).or_default();
        match &op.input {
            KvInput::Get { .. } => op.output = Some(KvOutput::value(value.clone())),
            KvInput::Put { value: v, .. } => *value = v.clone(),
            KvInput::Append { value: v, .. } => value.push_str(v),
        }
    }
    let mut ops: Vec<Operation<KvInput, KvOutput>> = placed.into_iter().map(|(_, _, op)| op).collect();
    ops.sort_by_key(|op| (op.call, op.client));
    History::new(ops).expect("generated operations return after they are called")
}

/// `history` with one read made stale (see the module's documentation), checked to be not
/// linearizable.
fn with_stale_read(history: KvHistory) -> Result<KvHistory, String> {
    let ops = history.ops();
    // Replay in witness order to know, per read, the values its key had.
    let result = check(&KvModel, &history, &CheckOptions { budget: 1_000_000_000, ..CheckOptions::default() });
    let order = result.witness(&history).ok_or("the generated history is not linearizable")?;
    let mut values: BTreeMap<&str, Vec<(usize, String)>> = BTreeMap::new();
    let mut current: BTreeMap<&str, String> = BTreeMap::new();
    // Per read: the (write, value before it) pairs of its key that took effect before it.
    let mut before_read: BTreeMap<usize, Vec<(usize, String)>> = BTreeMap::new();
    for &i in &order {
        let key = ops[i].input.key();
        let value = current.entry(key).or_default();
        match &ops[i].input {
            KvInput::Get { .. } => {
                before_read.insert(i, values.get(key).cloned().unwrap_or_default());
            }
            KvInput::Put { value: v, .. } => {
                values.entry(key).or_default().push((i, value.clone()));
                *value = v.clone();
            }
            KvInput::Append { value: v, .. } => {
                values.entry(key).or_default().push((i, value.clone()));
                value.push_str(v);
            }
        }
    }
    let mut reads: Vec<usize> = before_read.keys().copied().collect();
    reads.sort_by_key(|&i| (ops[i].call, i));
    let middle = reads.len() / 2;
    for &r in reads[middle..].iter().chain(&reads[..middle]) {
        let Some((_, stale)) =
            before_read[&r].iter().rev().find(|(w, _)| ops[*w].ret.is_some_and(|ret| ret < ops[r].call))
        else {
            continue;
        };
        if ops[r].output == Some(KvOutput::value(stale.clone())) {
            continue;
        }
        let mut changed = history.clone().into_ops();
        changed[r].output = Some(KvOutput::value(stale.clone()));
        let changed = History::new(changed).expect("only an output changed");
        let verdict = check(&KvModel, &changed, &CheckOptions { budget: 1_000_000_000, ..CheckOptions::default() });
        if verdict.verdict == Verdict::NotLinearizable {
            return Ok(changed);
        }
    }
    Err("no read could be made stale".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_histories_are_linearizable_and_stale_ones_are_not() {
        let h = random_history(7, 10, 3, 2000);
        assert_eq!(h.len(), 2000);
        assert_eq!(h, random_history(7, 10, 3, 2000), "a function of the seed");
        assert_ne!(h, random_history(8, 10, 3, 2000));
        assert_eq!(h.clients().len(), 10);
        assert!(check(&KvModel, &h, &CheckOptions::default()).is_linearizable());
        let stale = with_stale_read(h.clone()).unwrap();
        let differing: Vec<usize> = (0..h.len()).filter(|&i| h.ops()[i] != stale.ops()[i]).collect();
        assert_eq!(differing.len(), 1, "one read changed");
        let r = check(&KvModel, &stale, &CheckOptions::default());
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        let refuted = r
            .partitions
            .iter()
            .find(|p| matches!(p.outcome, checkers::linearizability::PartitionOutcome::NotLinearizable { .. }))
            .unwrap();
        assert!(refuted.ops.contains(&differing[0]), "the stale read's key is the refuted partition");
        assert_eq!(
            Generated::Random { seed: 7, clients: 10, keys: 3, ops: 2000, stale: true }.file_name(),
            "random-c10-k3-n2000-s7-stale.txt"
        );
    }
}
