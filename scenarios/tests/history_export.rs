//! `Opts::attach_history` (`cargo xtask run … --history FILE`): a kvraft or sharded run attaches its
//! client history in the JSON form, which Porcupine's key/value log format is made from;
//! both read back with the same operations and verdict, the JSON form exactly.

use checkers::formats::{json::parse_json, porcupine_kv::parse_kv_log, porcupine_kv::write_kv_log};
use checkers::linearizability::{check, CheckOptions, History, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use scenarios::{registry, Opts};
use sim::TraceMode;

#[test]
fn a_kvraft_run_writes_its_history_in_both_forms() {
    // (Not unreliable_one_key_3a: without write digests, its 50 concurrent appends to one key
    // make a search that exhausts any memory; see BENCHMARKS.md.)
    let sc = registry::select("kvraft::one_partition_3a").unwrap()[0];
    let opts = Opts { attach_history: true, ..Opts::default() };
    let r = registry::run_scenario(&sc, 1, &opts, TraceMode::Hash, None);
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    // The option is output only: the run is the same without it, and attaches nothing.
    let plain = registry::run_scenario(&sc, 1, &Opts::default(), TraceMode::Hash, None);
    assert_eq!(plain.trace_hash, r.trace_hash);
    assert!(plain.attachments.is_empty());
    assert_eq!(r.attachments.len(), 1);
    let attached = &r.attachments[0];
    assert_eq!(attached.name, "kvraft__one_partition_3a-seed1.history.json");
    let text = std::str::from_utf8(&attached.bytes).unwrap();

    let exact: History<KvInput, KvOutput> = parse_json(text, "h.json", "kv").unwrap();
    let from_log = parse_kv_log(&write_kv_log(&exact).unwrap().text, "h.txt").unwrap();
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

#[test]
fn a_suite_run_under_another_family_names_its_files_after_the_scenario_that_ran() {
    // kvpaxos runs kvraft's course suite on Paxos: the same code, the scenario's own name.
    let sc = registry::select("kvpaxos::one_partition_3a").unwrap()[0];
    let opts = Opts { attach_history: true, ..Opts::default() };
    let r = registry::run_scenario(&sc, 1, &opts, TraceMode::Hash, None);
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    let names: Vec<&str> = r.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["kvpaxos__one_partition_3a-seed1.history.json"]);
}

#[test]
fn a_sharded_run_writes_its_history_too() {
    // The sharded suites (on Raft and on Paxos) and the sharded swarm record every clerk's
    // operations; --history writes them, and the same run attaches nothing without it.
    for (name, seed) in [("shardkv::static_shards_4b", 0), ("shardkv_paxos::basic_4b", 0), ("shardkv::swarm_4b", 2)] {
        let sc = registry::select(name).unwrap()[0];
        assert!(sc.records_client_history(), "{name} takes --history");
        let opts = Opts { attach_history: true, ..Opts::default() };
        let r = registry::run_scenario(&sc, seed, &opts, TraceMode::Hash, None);
        assert!(r.outcome.is_pass(), "{name}: {}", r.outcome);
        let plain = registry::run_scenario(&sc, seed, &Opts::default(), TraceMode::Hash, None);
        assert_eq!(plain.trace_hash, r.trace_hash, "{name}: the option is output only");
        assert!(plain.attachments.is_empty(), "{name}");
        let names: Vec<&str> = r.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, [format!("{}-seed{seed}.history.json", name.replace("::", "__"))], "{name}");
        let exact: History<KvInput, KvOutput> =
            parse_json(std::str::from_utf8(&r.attachments[0].bytes).unwrap(), "h.json", "kv").unwrap();
        assert!(exact.len() > 10, "{name}: {} operations", exact.len());
        assert_eq!(check(&KvModel, &exact, &CheckOptions::default()).verdict, Verdict::Linearizable, "{name}");
    }
}

#[test]
fn a_run_attaches_its_history_once_however_it_ends() {
    // Passing runs attach at the final check; failing runs, whether the final check fails or
    // an earlier check stops the run, attach when the cluster is dropped: once either way,
    // on the key/value, sharded and primary/backup clusters alike.
    let cases = [
        ("pbservice::at_most_once_2b", None, true),
        ("pbservice::at_most_once_2b", Some("no-duplicate-detection"), false),
        ("kvraft::one_partition_3a", Some("local-reads"), false),
        ("shardkv::static_shards_4b", Some("serve-before-arrival"), false),
    ];
    for (name, bug, passes) in cases {
        let sc = registry::select(name).unwrap()[0];
        let opts = Opts { attach_history: true, bug: bug.map(String::from), ..Opts::default() };
        let r = registry::run_scenario(&sc, 0, &opts, TraceMode::Hash, None);
        assert_eq!(r.outcome.is_pass(), passes, "{name} {bug:?}: {}", r.outcome);
        // A planted bug follows the stem, as in every file a run attaches.
        let suffix = bug.map(|b| format!("-{b}")).unwrap_or_default();
        let json = format!("{}-seed0{suffix}.history.json", name.replace("::", "__"));
        let names: Vec<&str> = r.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.iter().filter(|n| **n == json).count(), 1, "{name} {bug:?}: {names:?}");
    }
}
