//! `Opts::history` (`cargo xtask run … --history FILE`): a kvraft run writes its client
//! history in Porcupine's key/value log format and in the JSON form; both read back with
//! the same operations and verdict, the JSON form exactly.

use checkers::formats::{json::read_json, porcupine_kv::read_kv_log};
use checkers::linearizability::{check, CheckOptions, History, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use scenarios::{registry, Opts};
use sim::TraceMode;

#[test]
fn a_kvraft_run_writes_its_history_in_both_forms() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("history-export");
    std::fs::create_dir_all(&dir).unwrap();
    let (log, json) = (dir.join("h.txt"), dir.join("h.json"));
    // (Not unreliable_one_key_3a: without write digests, its 50 concurrent appends to one key
    // make a search that exhausts any memory; see BENCHMARKS.md.)
    let sc = registry::select("kvraft::one_partition_3a").unwrap()[0];
    let opts = Opts { history: vec![log.clone(), json.clone()], ..Opts::default() };
    let r = registry::run_scenario(&sc, 1, &opts, TraceMode::Hash, None);
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    // The option is output only: the run is the same without it.
    let plain = registry::run_scenario(&sc, 1, &Opts::default(), TraceMode::Hash, None);
    assert_eq!(plain.trace_hash, r.trace_hash);

    let exact: History<KvInput, KvOutput> = read_json(&json, "kv").unwrap();
    let from_log = read_kv_log(&log).unwrap();
    assert!(exact.len() >= 7, "puts and gets in both partitions: {}", exact.len());
    assert_eq!(from_log.len(), exact.len(), "every operation returned, so none is left out");
    // The same operations in the same event order (the log has no write digests).
    for (a, b) in from_log.ops().iter().zip(exact.ops()) {
        assert_eq!((a.client, &a.input), (b.client, &b.input));
    }
    for i in 1..exact.len() {
        assert_eq!(exact.precedes(i - 1, i), from_log.precedes(i - 1, i), "operations {} and {i}", i - 1);
    }
    assert!(exact.ops().iter().all(|op| op.metadata.as_deref().is_some_and(|m| m.starts_with("simulated "))));
    assert!(matches!(exact.ops()[1].output, Some(KvOutput::Wrote { .. })), "the JSON form keeps write digests");
    let options = CheckOptions::default();
    assert_eq!(check(&KvModel, &exact, &options).verdict, Verdict::Linearizable);
    assert_eq!(check(&KvModel, &from_log, &options).verdict, Verdict::Linearizable);
}
