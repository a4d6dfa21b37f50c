//! Unit and property tests of the shard controller: the course's TestBasic/TestMulti/
//! TestMinimalAgain steps on the bare state machine, refusals, and random Join/Leave/Move
//! sequences judged against a brute-force minimum.

use super::*;
use proptest::prelude::*;

fn names(gid: u64) -> Vec<String> {
    (0..3).map(|i| format!("server-{gid}-{i}")).collect()
}

fn join(ctrl: &mut ShardCtrler, gids: &[u64]) -> CtrlerOut {
    ctrl.apply(&CtrlerOp::Join { servers: gids.iter().map(|&g| (g, names(g))).collect() })
}

fn leave(ctrl: &mut ShardCtrler, gids: &[u64]) -> CtrlerOut {
    ctrl.apply(&CtrlerOp::Leave { gids: gids.iter().copied().collect() })
}

fn query(ctrl: &mut ShardCtrler, num: Option<u64>) -> Config {
    match ctrl.apply(&CtrlerOp::Query { num }) {
        CtrlerOut::Config(c) => c,
        other => panic!("query answered {other:?}"),
    }
}

fn counts(config: &Config) -> BTreeMap<u64, usize> {
    let mut counts: BTreeMap<u64, usize> = config.groups.keys().map(|&g| (g, 0)).collect();
    for g in config.shards {
        *counts.entry(g).or_default() += 1;
    }
    counts
}

fn moved(a: &[u64; NSHARDS], b: &[u64; NSHARDS]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// The fewest shards any balanced assignment of `groups` moves away from `prev`, by brute
/// force over which groups get the larger target (a third method, beside the controller's
/// greedy rule and the checker's closed form).
fn brute_min_moves(prev: &[u64; NSHARDS], groups: &BTreeSet<u64>) -> usize {
    if groups.is_empty() {
        return prev.iter().filter(|&&g| g != 0).count();
    }
    let gids: Vec<u64> = groups.iter().copied().collect();
    let (q, r) = (NSHARDS / gids.len(), NSHARDS % gids.len());
    let held: Vec<usize> = gids.iter().map(|g| prev.iter().filter(|&&p| p == *g).count()).collect();
    let mut best = 0;
    for mask in 0u32..(1 << gids.len()) {
        if mask.count_ones() as usize != r {
            continue;
        }
        let kept: usize = (0..gids.len()).map(|i| held[i].min(q + usize::from(mask & (1 << i) != 0))).sum();
        best = best.max(kept);
    }
    NSHARDS - best
}

#[test]
fn config_zero_has_no_groups_and_queries_clamp_to_the_latest() {
    let mut ctrl = ShardCtrler::new();
    let c0 = query(&mut ctrl, None);
    assert_eq!(c0, Config::initial());
    assert_eq!(c0.shards, [0; NSHARDS]);
    assert!(c0.is_balanced() && c0.is_well_formed());
    join(&mut ctrl, &[1]);
    assert_eq!(query(&mut ctrl, Some(0)), c0);
    assert_eq!(query(&mut ctrl, Some(99)).num, 1, "a number beyond the latest means the latest");
    assert_eq!(query(&mut ctrl, None).num, 1);
    assert_eq!(ctrl.read(&CtrlerOp::Query { num: Some(0) }), Some(CtrlerOut::Config(c0)));
    assert_eq!(ctrl.read(&CtrlerOp::Move { shard: 0, gid: 1 }), None, "only Query is a read");
}

#[test]
fn basic_leave_join_like_the_course() {
    // TestBasic "Basic leave/join": join 1, join 2, leave 1, leave 2.
    let mut ctrl = ShardCtrler::new();
    assert_eq!(join(&mut ctrl, &[1]), CtrlerOut::Ok);
    let c1 = query(&mut ctrl, None);
    assert_eq!(c1.shards, [1; NSHARDS]);
    assert_eq!(c1.groups[&1], names(1), "server lists exact, in order");
    join(&mut ctrl, &[2]);
    let c2 = query(&mut ctrl, None);
    assert_eq!(counts(&c2), BTreeMap::from([(1, 5), (2, 5)]));
    assert_eq!(moved(&c1.shards, &c2.shards), 5);
    leave(&mut ctrl, &[1]);
    let c3 = query(&mut ctrl, None);
    assert_eq!(c3.shards, [2; NSHARDS]);
    assert_eq!(c3.gids(), BTreeSet::from([2]));
    leave(&mut ctrl, &[2]);
    let c4 = query(&mut ctrl, None);
    assert_eq!((c4.num, c4.shards, c4.groups.len()), (4, [0; NSHARDS], 0), "no groups: every shard on gid 0");
    // Historical queries: every configuration comes back exactly.
    for (i, c) in [Config::initial(), c1, c2, c3, c4].iter().enumerate() {
        assert_eq!(&query(&mut ctrl, Some(i as u64)), c);
    }
}

#[test]
fn move_lands_and_bumps_the_number_and_a_join_rebalances_after() {
    // TestBasic "Move": join 503 and 504, move shards 0–4 to 503 and 5–9 to 504.
    let mut ctrl = ShardCtrler::new();
    join(&mut ctrl, &[503, 504]);
    for s in 0..NSHARDS {
        let before = ctrl.latest().num;
        let gid = if s < 5 { 503 } else { 504 };
        assert_eq!(ctrl.apply(&CtrlerOp::Move { shard: s, gid }), CtrlerOut::Ok);
        assert_eq!(ctrl.latest().num, before + 1, "Move creates a configuration");
        assert_eq!(ctrl.latest().shards[s], gid);
    }
    assert_eq!(ctrl.latest().shards, [503, 503, 503, 503, 503, 504, 504, 504, 504, 504]);
    // An unbalanced Move is kept as asked...
    ctrl.apply(&CtrlerOp::Move { shard: 9, gid: 503 });
    assert!(!ctrl.latest().is_balanced());
    // ...and the next Join rebalances from it with the fewest moves.
    let prev = ctrl.latest().shards;
    join(&mut ctrl, &[505]);
    let next = ctrl.latest().shards;
    assert!(ctrl.latest().is_balanced());
    assert_eq!(moved(&prev, &next), brute_min_moves(&prev, &ctrl.latest().gids()));
    assert_eq!(counts(ctrl.latest()), BTreeMap::from([(503, 4), (504, 3), (505, 3)]));
}

#[test]
fn ten_groups_get_one_shard_each_and_more_groups_leave_some_empty() {
    // TestBasic "Concurrent leave/join": 10 groups, so exactly one shard each.
    let mut ctrl = ShardCtrler::new();
    for i in 0..10 {
        join(&mut ctrl, &[100 + 10 * i + 1000]);
        join(&mut ctrl, &[100 + 10 * i]);
        leave(&mut ctrl, &[100 + 10 * i + 1000]);
    }
    assert!(counts(ctrl.latest()).values().all(|&c| c == 1));
    join(&mut ctrl, &[7, 8, 9]);
    let c = ctrl.latest();
    assert!(c.is_balanced());
    assert_eq!(counts(c).values().filter(|&&n| n == 0).count(), 3, "13 groups, 10 shards");
    assert!(c.shards.iter().all(|g| c.groups.contains_key(g)), "never a shard on gid 0 while groups exist");
}

#[test]
fn minimal_again_like_the_course() {
    // TestMinimalAgain: join 1, 2 → c1; join 3 → c2: shards move only to 3, at most 4 of them;
    // leave 1 → c3: shards move only away from 1, at most 4.
    let mut ctrl = ShardCtrler::new();
    join(&mut ctrl, &[1]);
    join(&mut ctrl, &[2]);
    let c1 = ctrl.latest().clone();
    join(&mut ctrl, &[3]);
    let c2 = ctrl.latest().clone();
    for s in 0..NSHARDS {
        if c2.shards[s] != 3 {
            assert_eq!(c2.shards[s], c1.shards[s], "shard {s} moved between old groups on join");
        }
    }
    assert!(moved(&c1.shards, &c2.shards) <= NSHARDS / 3 + 1);
    assert_eq!(moved(&c1.shards, &c2.shards), 3);
    leave(&mut ctrl, &[1]);
    let c3 = ctrl.latest().clone();
    for s in 0..NSHARDS {
        if c2.shards[s] != 1 {
            assert_eq!(c3.shards[s], c2.shards[s], "shard {s} moved off a staying group on leave");
        }
    }
    assert!(moved(&c2.shards, &c3.shards) <= NSHARDS / 3 + 1);
}

#[test]
fn multi_join_and_leave_like_the_course() {
    // TestMulti "Multi-group join/leave".
    let mut ctrl = ShardCtrler::new();
    join(&mut ctrl, &[1, 2]);
    assert_eq!(counts(ctrl.latest()), BTreeMap::from([(1, 5), (2, 5)]));
    join(&mut ctrl, &[3]);
    assert!(ctrl.latest().is_balanced());
    leave(&mut ctrl, &[1, 3]);
    assert_eq!(ctrl.latest().shards, [2; NSHARDS]);
    assert_eq!(ctrl.latest().groups[&2], names(2));
    assert_eq!(ctrl.latest().num, 3);
}

#[test]
fn invalid_requests_are_refused_and_change_nothing() {
    let mut ctrl = ShardCtrler::new();
    join(&mut ctrl, &[1]);
    let before = ctrl.clone();
    let refused = |out: CtrlerOut| matches!(out, CtrlerOut::Invalid(_));
    assert!(refused(join(&mut ctrl, &[1])), "already joined");
    assert!(refused(join(&mut ctrl, &[0])), "gid 0");
    assert!(refused(join(&mut ctrl, &[])), "empty join");
    assert!(refused(ctrl.apply(&CtrlerOp::Join { servers: BTreeMap::from([(5, vec![])]) })), "no servers");
    assert!(refused(leave(&mut ctrl, &[2])), "not present");
    assert!(refused(leave(&mut ctrl, &[])), "empty leave");
    assert!(refused(ctrl.apply(&CtrlerOp::Move { shard: NSHARDS, gid: 1 })), "shard out of range");
    assert!(refused(ctrl.apply(&CtrlerOp::Move { shard: 0, gid: 2 })), "group not present");
    assert_eq!(ctrl, before);
    // A gid may join again after leaving.
    leave(&mut ctrl, &[1]);
    assert_eq!(join(&mut ctrl, &[1]), CtrlerOut::Ok);
    assert_eq!(ctrl.latest().shards, [1; NSHARDS]);
}

#[test]
fn rebalance_is_a_function_of_its_inputs_and_keeps_a_balanced_assignment() {
    let groups = BTreeSet::from([4, 9, 2]);
    let shards = [9, 9, 9, 9, 9, 9, 9, 0, 4, 4];
    let a = rebalance(&shards, &groups);
    assert_eq!(a, rebalance(&shards, &groups));
    // 3 groups: 9 holds the most, so it keeps the larger target (4) and gives up 6, 5, 4;
    // those and the homeless 7 fill 2 (lowest gid first) and then 4.
    assert_eq!(a, [9, 9, 9, 9, 2, 2, 2, 4, 4, 4]);
    assert_eq!(moved(&shards, &a), brute_min_moves(&shards, &groups));
    // Balanced input over the same groups: nothing moves.
    assert_eq!(rebalance(&a, &groups), a);
    assert_eq!(rebalance(&a, &BTreeSet::new()), [0; NSHARDS]);
}

#[test]
fn the_state_survives_a_snapshot_round_trip() {
    let mut ctrl = ShardCtrler::new();
    join(&mut ctrl, &[1, 2, 3]);
    ctrl.apply(&CtrlerOp::Move { shard: 3, gid: 1 });
    let bytes = postcard::to_allocvec(&ctrl).unwrap();
    let mut back: ShardCtrler = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, ctrl);
    leave(&mut ctrl, &[2]);
    leave(&mut back, &[2]);
    assert_eq!(back, ctrl, "replicas that restored and replicas that did not stay identical");
}

#[derive(Clone, Debug)]
enum Step {
    Join(Vec<u64>),
    Leave(Vec<u64>),
    Move(usize, u64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => prop::collection::vec(1u64..16, 1..4).prop_map(Step::Join),
        2 => prop::collection::vec(1u64..16, 1..4).prop_map(Step::Leave),
        1 => (0..NSHARDS, 1u64..16).prop_map(|(s, g)| Step::Move(s, g)),
    ];
    prop::collection::vec(step, 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// After every Join and Leave the configuration is balanced, well formed and moved
    /// exactly the brute-force minimum; Moves land; numbers go up by one; history is kept;
    /// a replica restored from a snapshot halfway computes the same configurations.
    #[test]
    fn random_sequences_stay_balanced_and_minimal(steps in steps()) {
        let mut ctrl = ShardCtrler::new();
        let mut history = vec![Config::initial()];
        let mut restored: Option<ShardCtrler> = None;
        for (i, step) in steps.iter().enumerate() {
            if i == steps.len() / 2 {
                restored = Some(postcard::from_bytes(&postcard::to_allocvec(&ctrl).unwrap()).unwrap());
            }
            let prev = ctrl.latest().clone();
            // Keep the drawn gids that make the step valid, if any (so most steps take
            // effect); a step with none left is sent as drawn and exercises a refusal.
            let pick = |g: &Vec<u64>, present: bool| -> Vec<u64> {
                let kept: Vec<u64> = g.iter().copied().filter(|x| prev.groups.contains_key(x) == present).collect();
                if kept.is_empty() { g.clone() } else { kept }
            };
            let op = match step {
                Step::Join(g) => CtrlerOp::Join { servers: pick(g, false).iter().map(|&g| (g, names(g))).collect() },
                Step::Leave(g) => CtrlerOp::Leave { gids: pick(g, true).into_iter().collect() },
                Step::Move(s, g) => CtrlerOp::Move { shard: *s, gid: *g },
            };
            let out = ctrl.apply(&op);
            if let Some(r) = restored.as_mut() {
                prop_assert_eq!(r.apply(&op), out.clone());
            }
            if let CtrlerOut::Invalid(_) = out {
                prop_assert_eq!(ctrl.latest(), &prev);
                continue;
            }
            let next = ctrl.latest().clone();
            prop_assert_eq!(next.num, prev.num + 1);
            prop_assert!(next.is_well_formed());
            match step {
                Step::Move(s, g) => {
                    prop_assert_eq!(next.shards[*s], *g);
                    prop_assert_eq!(moved(&prev.shards, &next.shards), usize::from(prev.shards[*s] != *g));
                }
                _ => {
                    prop_assert!(next.is_balanced(), "unbalanced {:?}", next.shards);
                    prop_assert_eq!(
                        moved(&prev.shards, &next.shards),
                        brute_min_moves(&prev.shards, &next.gids()),
                        "{:?} -> {:?}", prev.shards, next.shards
                    );
                }
            }
            history.push(next);
        }
        for (n, c) in history.iter().enumerate() {
            prop_assert_eq!(ctrl.query(Some(n as u64)), c);
        }
        if let Some(r) = restored {
            prop_assert_eq!(r, ctrl);
        }
    }
}
