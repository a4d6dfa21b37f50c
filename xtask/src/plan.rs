//! A many-run command's runs without listing them: a run is a position in sweep order, and
//! the scenario and seed at a position are computed from it, so `sweep all --seeds
//! 0..1000000` plans in constant memory instead of allocating a list of every run first.
//!
//! A command plans at most [`MAX_RUNS`] runs (a sweep counts every part of a sharded sweep,
//! `bugs` counts scenarios × seeds × planted bugs): more is refused with one line, before
//! any run, since their results (each failing run's line, kept for the summary and the lines
//! that reproduce it) must fit in memory, and the count in every integer type used for it.
//!
//! `--shard K/N` splits a grid (each scenario over each seed) by the rule of
//! [`crate::shard::split`] — the same part for every run — but walks the runs in that rule's
//! order one at a time and keeps only part K's, as arithmetic runs of seeds ([`RunSet`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

/// The most runs one command plans (10 000 000): hours of runs even for the cheapest
/// scenarios, and every failing run's result line (a few hundred bytes) still fits in memory.
/// README "Seed ranges" says so.
pub const MAX_RUNS: u64 = 10_000_000;

/// The number of runs of `groups` groups (scenarios, or scenarios × planted bugs) over
/// `seeds`, checked against [`MAX_RUNS`].
///
/// # Errors
/// One line naming the count (or saying it does not fit in 64 bits) and what to do.
pub fn grid_runs(what: &str, groups: u64, seeds: &Range<u64>) -> Result<u64, String> {
    let per = seeds.end.saturating_sub(seeds.start);
    let describe = |n: String| {
        format!(
            "{what} over seeds {}..{} is {n} runs ({groups} × {per} seeds); one command plans at most {MAX_RUNS}: \
             narrow the seed range or the filter (a larger search is several commands over consecutive ranges)",
            seeds.start, seeds.end
        )
    };
    match groups.checked_mul(per) {
        None => Err(describe("more than 2^64".into())),
        Some(n) if n > MAX_RUNS => Err(describe(n.to_string())),
        Some(n) => Ok(n),
    }
}

/// `len` runs of one group (a scenario) whose seed offsets are `first`, `first + stride`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    group: usize,
    first: u64,
    stride: u64,
    len: u64,
}

/// A set of runs of a grid, as (group, seed offset) pairs in sweep order (group by group,
/// offsets ascending), stored as arithmetic runs of offsets: one segment per scenario for a
/// whole grid, a handful for a part of a sharded one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSet {
    segments: Vec<Segment>,
    /// `ends[i]`: the runs in segments `0..=i`.
    ends: Vec<u64>,
}

impl RunSet {
    /// Every run of `groups` groups of `per_group` runs each.
    pub fn whole(groups: usize, per_group: u64) -> RunSet {
        let mut s = RunSet::default();
        for g in 0..groups {
            s.push_segment(Segment { group: g, first: 0, stride: 1, len: per_group });
        }
        s
    }

    fn push_segment(&mut self, seg: Segment) {
        if seg.len == 0 {
            return;
        }
        let before = self.ends.last().copied().unwrap_or(0);
        self.segments.push(seg);
        self.ends.push(before + seg.len);
    }

    /// Adds run (`group`, `offset`), which must come after every run already added.
    fn push(&mut self, group: usize, offset: u64) {
        if let Some(last) = self.segments.last_mut() {
            let fits = last.group == group
                && if last.len == 1 { offset > last.first } else { offset == last.first + last.stride * last.len };
            if fits {
                if last.len == 1 {
                    last.stride = offset - last.first;
                }
                last.len += 1;
                *self.ends.last_mut().expect("one end per segment") += 1;
                return;
            }
        }
        self.push_segment(Segment { group, first: offset, stride: 1, len: 1 });
    }

    /// How many runs.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The run at position `i` (below [`RunSet::len`]): its group and seed offset.
    pub fn get(&self, i: u64) -> (usize, u64) {
        let s = self.ends.partition_point(|&e| e <= i);
        let seg = self.segments[s];
        let before = if s == 0 { 0 } else { self.ends[s - 1] };
        (seg.group, seg.first + seg.stride * (i - before))
    }

    /// The groups with a run here, in order (a group split into segments repeats).
    pub fn groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.segments.iter().map(|s| s.group)
    }

    /// The runs in order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.segments.iter().flat_map(|s| (0..s.len).map(move |j| (s.group, s.first + s.stride * j)))
    }
}

/// Part `index` of `count` of a grid whose group `g` has `per_group` runs of cost
/// `costs[g]` each (sweep order: group by group): exactly the runs
/// [`crate::shard::split`] gives that part over the listed costs, found by the same
/// longest-processing-time rule in the same order — runs by decreasing cost, ties in sweep
/// order, each to the least-loaded part, ties to the lowest index — one run at a time, keeping
/// only this part's. Returns them and their cost and the whole grid's cost (for the header).
/// Time: one heap step per run of the grid; memory: one heap entry per part that gets a run.
pub fn grid_part(costs: &[u64], per_group: u64, count: u64, index: u64) -> (RunSet, u128, u128) {
    assert!(index < count, "part {index} of {count}");
    let total = costs.len() as u64 * per_group;
    // A part beyond the first `total` never gets a run (each of the first `total` pops takes
    // a distinct part at load 0, lowest index first), so the heap needs no more entries.
    let parts = count.min(total.max(1));
    let mut heap: BinaryHeap<Reverse<(u64, u64)>> = (0..parts).map(|k| Reverse((0, k))).collect();
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&g| (Reverse(costs[g]), g));
    let mut mine: Vec<RunSet> = vec![RunSet::default(); costs.len()];
    let (mut mine_cost, mut all_cost) = (0u128, 0u128);
    for g in order {
        for offset in 0..per_group {
            let Reverse((load, k)) = heap.pop().expect("at least one part");
            if k == index {
                mine[g].push(g, offset);
                mine_cost += costs[g] as u128;
            }
            heap.push(Reverse((load.saturating_add(costs[g]), k)));
        }
        all_cost += costs[g] as u128 * per_group as u128;
    }
    let mut set = RunSet::default();
    for part in mine {
        for seg in part.segments {
            set.push_segment(seg);
        }
    }
    (set, mine_cost, all_cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::split;

    /// The old planner: list every run's cost, split the list, keep part `index`.
    fn listed(costs: &[u64], per_group: u64, count: u64, index: u64) -> Vec<(usize, u64)> {
        let all: Vec<(usize, u64)> = (0..costs.len()).flat_map(|g| (0..per_group).map(move |o| (g, o))).collect();
        let run_costs: Vec<u64> = all.iter().map(|&(g, _)| costs[g]).collect();
        let parts = split(&run_costs, count);
        all.into_iter().zip(parts).filter(|(_, p)| *p == index).map(|(r, _)| r).collect()
    }

    #[test]
    fn a_part_is_the_listed_planners_part_run_for_run() {
        let tables: [&[u64]; 5] = [
            &[1_000, 100_000, 1_000, 5_000],
            &[7, 7, 7],
            &[3, 1_000_000, 2, 2, 999],
            &[1],
            &[40_000, 39_999, 1_234, 5, 40_000, 17],
        ];
        for costs in tables {
            for per_group in [1, 2, 3, 7, 50] {
                for count in [1, 2, 3, 4, 7, 16, 400] {
                    for index in 0..count.min(20) {
                        let (set, mine, all) = grid_part(costs, per_group, count, index);
                        let want = listed(costs, per_group, count, index);
                        assert_eq!(
                            set.iter().collect::<Vec<_>>(),
                            want,
                            "{costs:?} x{per_group}, part {index}/{count}"
                        );
                        assert_eq!(set.len(), want.len() as u64);
                        for (i, r) in want.iter().enumerate() {
                            assert_eq!(set.get(i as u64), *r);
                        }
                        assert_eq!(mine, want.iter().map(|&(g, _)| costs[g] as u128).sum::<u128>());
                        assert_eq!(all, costs.iter().map(|&c| c as u128 * per_group as u128).sum::<u128>());
                    }
                }
            }
        }
    }

    #[test]
    fn a_part_of_a_large_grid_is_a_few_segments() {
        let (set, _, _) = grid_part(&[1_000, 100_000, 1_000], 1_000_000, 4, 1);
        assert!(set.len() > 500_000, "{}", set.len());
        assert!(set.segments.len() < 100, "{} segments", set.segments.len());
        // More parts than runs: only the first parts get one.
        let (set, _, _) = grid_part(&[5, 5], 2, u64::MAX, 3);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![(1, 1)]);
        assert!(grid_part(&[5, 5], 2, u64::MAX, 4).0.is_empty());
    }

    #[test]
    fn a_whole_grid_is_scenario_major() {
        let set = RunSet::whole(3, 4);
        assert_eq!(set.len(), 12);
        assert_eq!(set.get(0), (0, 0));
        assert_eq!(set.get(5), (1, 1));
        assert_eq!(set.get(11), (2, 3));
        assert_eq!(set.iter().count(), 12);
    }

    #[test]
    fn counts_are_checked() {
        assert_eq!(grid_runs("raft", 3, &(0..10)), Ok(30));
        assert_eq!(grid_runs("raft", 1, &(0..MAX_RUNS)), Ok(MAX_RUNS));
        let e = grid_runs("raft", 2, &(0..MAX_RUNS)).unwrap_err();
        assert!(e.contains("20000000 runs") && e.contains("at most 10000000"), "{e}");
        let e = grid_runs("'all'", 60, &(0..u64::MAX)).unwrap_err();
        assert!(e.contains("more than 2^64"), "{e}");
    }
}
