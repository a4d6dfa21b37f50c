//! kvraft scenarios pass with correct nodes on a seed; a linearizability violation (a
//! planted stale-read bug) fails the run with a history page written where it says.

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

#[test]
fn every_kvraft_scenario_passes_on_a_seed() {
    for sc in registry::select("kvraft").unwrap() {
        let r = registry::run_scenario(&sc, 3, &Opts::default(), TraceMode::Hash, None);
        assert!(r.outcome.is_pass(), "{}: {}", sc.name, r.outcome);
    }
}

#[test]
fn a_non_linearizable_history_fails_the_run_and_writes_its_page() {
    let dir = std::env::temp_dir().join(format!("simlab-pages-{}", std::process::id()));
    std::env::set_var("SIMLAB_HISTORY_DIR", &dir);
    let sc = registry::select("kvraft::persist_partition_unreliable_linearizable_3a").unwrap()[0];
    let opts = Opts { bug: Some("local-reads".into()), ..Opts::default() };
    let caught =
        (0..40).find_map(|seed| match registry::run_scenario(&sc, seed, &opts, TraceMode::Hash, None).outcome {
            Outcome::Fail(f) if f.checker == "linearizability" => Some(f),
            _ => None,
        });
    let f = caught.expect("stale reads from a deposed leader make some history non-linearizable");
    assert_eq!(f.class, FailureClass::Safety);
    let path = f.message.split("picture: ").nth(1).expect("the failure names the page").trim();
    let page = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(page.contains("<html") && page.contains("partition"), "a page with the run's partitions as bands");
    std::fs::remove_dir_all(&dir).ok();
}
