//! MapReduce scenarios pass with correct nodes, and a sweep catches each planted bug by
//! the check made for it.

use scenarios::{registry, Opts};
use sim::{FailureClass, Outcome, TraceMode};

fn run(name: &str, seed: u64, bug: Option<&str>) -> Outcome {
    let sc = registry::select(name).unwrap()[0];
    let opts = Opts { bug: bug.map(str::to_string), ..Opts::default() };
    registry::run_scenario(&sc, seed, &opts, TraceMode::Hash, None).outcome
}

#[test]
fn every_mapreduce_scenario_passes_on_a_few_seeds() {
    for sc in registry::select("mapreduce").unwrap() {
        for seed in 0..3 {
            let o = run(sc.name, seed, None);
            assert!(o.is_pass(), "{} seed {seed}: {o}", sc.name);
        }
    }
}

/// Sweeps seeds until one fails; returns its outcome.
fn first_failure(name: &str, bug: &str, seeds: std::ops::Range<u64>) -> Option<(u64, sim::Failure)> {
    seeds.into_iter().find_map(|seed| match run(name, seed, Some(bug)) {
        Outcome::Fail(f) => Some((seed, f)),
        Outcome::Pass => None,
    })
}

#[test]
fn a_coordinator_that_never_reissues_is_caught_by_the_deadline() {
    let (seed, f) = first_failure("mapreduce::crash", "no-reissue", 0..20).expect("some seed fails");
    assert_eq!((f.class, f.checker.as_str()), (FailureClass::Liveness, "mr::deadline"), "seed {seed}: {f}");
}

#[test]
fn a_worker_that_writes_output_in_place_is_caught_by_the_atomic_output_check() {
    for name in ["mapreduce::wc", "mapreduce::crash"] {
        let (seed, f) = first_failure(name, "in-place-output", 0..20).expect("some seed fails");
        assert_eq!(
            (f.class, f.checker.as_str()),
            (FailureClass::Safety, "mr::atomic-output"),
            "{name} seed {seed}: {f}"
        );
    }
}
