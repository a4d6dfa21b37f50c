//! Every history of `shared/histories/porcupine/EXPECTED.tsv` gets its expected verdict.

mod common;

use checkers::formats::{jepsen_etcd::read_etcd_log, porcupine_kv::read_kv_log};
use checkers::linearizability::{check, replay, CheckOptions, CheckResult, PartitionOutcome, Verdict};
use checkers::models::{cas_register::CasRegisterModel, kv::KvModel};

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Linearizable => "linearizable",
        Verdict::NotLinearizable => "not-linearizable",
        Verdict::Unknown => "unknown",
    }
}

/// Evidence checks common to both models: witnesses replay, explanations are consistent.
fn check_evidence<M: checkers::linearizability::Model>(
    model: &M,
    history: &checkers::linearizability::History<M::Input, M::Output>,
    result: &CheckResult,
) {
    for part in &result.partitions {
        match &part.outcome {
            PartitionOutcome::Linearizable { order } => {
                assert_eq!(order.len(), part.ops.len());
                replay(model, history, order).expect("witness replays");
            }
            PartitionOutcome::NotLinearizable { explanation } => {
                let e = explanation.as_ref().expect("explained by default");
                // At least one prefix (the empty one when no operation can go first), and
                // an entry for every operation of the partition.
                assert!(!e.prefixes.is_empty(), "a refuted partition has at least one partial linearization");
                assert_eq!(e.longest.len(), part.ops.len(), "one longest-prefix entry per operation");
                for p in &e.prefixes {
                    replay(model, history, &p.order).expect("partial linearization replays");
                    assert!(!p.blocked.is_empty(), "a maximal prefix is blocked by something");
                }
                for (k, &op) in part.ops.iter().enumerate() {
                    if let Some(i) = e.longest[k] {
                        assert!(e.prefixes[i].order.contains(&op));
                    }
                }
                assert!(!e.failing_ops().is_empty());
            }
            PartitionOutcome::Unfinished { .. } => {}
        }
    }
    if result.verdict == Verdict::Linearizable {
        let all = result.witness(history).expect("a witness");
        assert_eq!(all.len(), history.len());
    }
}

#[test]
fn every_file_gets_its_expected_verdict() {
    let Some(dir) = common::porcupine_dir() else {
        return;
    };
    let rows = common::expected(&dir);
    assert_eq!(rows.len(), 109, "EXPECTED.tsv lists 109 files");
    let options = CheckOptions::default();
    let mut wrong = Vec::new();
    for (file, model, expected) in &rows {
        let path = dir.join(file);
        let (verdict, steps, len) = match model.as_str() {
            "etcd-cas-register" => {
                let h = read_etcd_log(&path).unwrap_or_else(|e| panic!("{e}"));
                let r = check(&CasRegisterModel, &h, &options);
                check_evidence(&CasRegisterModel, &h, &r);
                (r.verdict, r.steps, h.len())
            }
            "kv" => {
                let h = read_kv_log(&path).unwrap_or_else(|e| panic!("{e}"));
                let r = check(&KvModel, &h, &options);
                check_evidence(&KvModel, &h, &r);
                (r.verdict, r.steps, h.len())
            }
            other => panic!("unknown model {other} in EXPECTED.tsv"),
        };
        println!("{file}\t{}\t{len} operations\t{steps} steps", verdict_name(verdict));
        // `empty`: a history without operations, which is linearizable.
        let expected = if expected == "empty" {
            assert_eq!(len, 0, "{file} is listed as empty");
            "linearizable"
        } else {
            expected.as_str()
        };
        if verdict_name(verdict) != expected {
            wrong.push(format!("{file}: expected {expected}, got {}", verdict_name(verdict)));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}
