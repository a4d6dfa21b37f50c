//! kvraft scenarios pass with correct nodes on a seed; a linearizability violation (a
//! planted stale-read bug) fails the run and attaches its history page to the run's report.

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
fn a_non_linearizable_history_fails_the_run_and_attaches_its_page() {
    let sc = registry::select("kvraft::persist_partition_unreliable_linearizable_3a").unwrap()[0];
    let opts = Opts { bug: Some("local-reads".into()), ..Opts::default() };
    let caught = (0..40).find_map(|seed| {
        let r = registry::run_scenario(&sc, seed, &opts, TraceMode::Hash, None);
        match &r.outcome {
            Outcome::Fail(f) if f.checker == "linearizability" => Some((f.clone(), r)),
            _ => None,
        }
    });
    let (f, r) = caught.expect("stale reads from a deposed leader make some history non-linearizable");
    assert_eq!(f.class, FailureClass::Safety);
    // The failure names the page by its file name only: the run writes no file, and where
    // the caller puts it is no part of the outcome.
    let name = f.message.split("picture attached as ").nth(1).expect("the failure names the page").trim();
    assert!(!name.contains(['/', '\\']), "a plain file name: {name}");
    // The run's planted bug follows the stem, as in the file the command line writes.
    assert_eq!(name, format!("kvraft__persist_partition_unreliable_linearizable_3a-seed{}-local-reads.html", r.seed));
    let page = r.attachments.iter().find(|a| a.name == name).expect("the page is attached under that name");
    let page = String::from_utf8(page.bytes.clone()).unwrap();
    assert!(page.contains("<html") && page.contains("partition"), "a page with the run's partitions as bands");
    assert_eq!(r.attachments.len(), 1, "no history attached unless asked");
}
