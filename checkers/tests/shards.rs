//! Property tests of the sharding checks: the closed-form minimum of shards to move agrees
//! with an exhaustive search over every assignment, and `check_rebalance` accepts exactly the
//! balanced assignments that reach it.

use checkers::shards::{check_balance, check_rebalance, min_moves, moves, Property};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Every assignment of `len` shards to `groups` (or the all-zero one without groups).
fn all_assignments(len: usize, groups: &[u64]) -> Vec<Vec<u64>> {
    if groups.is_empty() {
        return vec![vec![0; len]];
    }
    let mut out = vec![Vec::new()];
    for _ in 0..len {
        out = out.into_iter().flat_map(|a| groups.iter().map(move |&g| [a.clone(), vec![g]].concat())).collect();
    }
    out
}

/// Balanced by the definition, counted from scratch.
fn balanced(a: &[u64], groups: &[u64]) -> bool {
    if groups.is_empty() {
        return a.iter().all(|&g| g == 0);
    }
    let counts: Vec<usize> = groups.iter().map(|g| a.iter().filter(|&x| x == g).count()).collect();
    a.iter().all(|g| groups.contains(g)) && counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1
}

fn case() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    (1usize..=7, prop::collection::btree_set(1u64..6, 0..=4)).prop_flat_map(|(len, groups)| {
        (prop::collection::vec(0u64..7, len), Just(groups.into_iter().collect::<Vec<u64>>()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn min_moves_is_the_exhaustive_minimum((prev, groups) in case()) {
        let set: BTreeSet<u64> = groups.iter().copied().collect();
        let all = all_assignments(prev.len(), &groups);
        let best = all.iter().filter(|a| balanced(a, &groups)).map(|a| moves(&prev, a)).min().unwrap();
        prop_assert_eq!(min_moves(&prev, &set), best);
        for a in &all {
            let is_balanced = balanced(a, &groups);
            prop_assert_eq!(check_balance(a, &set).is_ok(), is_balanced, "{:?} over {:?}", a, groups);
            match check_rebalance(&prev, a, &set) {
                Ok(()) => prop_assert!(is_balanced && moves(&prev, a) == best),
                Err(v) if is_balanced => {
                    prop_assert_eq!(v.property, Property::MinimalTransfer);
                    prop_assert!(moves(&prev, a) > best);
                }
                Err(v) => prop_assert_eq!(v.property, Property::Balance),
            }
        }
    }
}
