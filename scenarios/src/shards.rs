//! The judge of a sharded run: every configuration a controller replica applies, and every
//! change of a shard group replica's shards, checked as they happen.
//!
//! - **config-agreement**: every replica that applies configuration `n` (controller replicas,
//!   and groups taking it) has exactly the same configuration — shard array, groups and their
//!   server lists.
//! - **balance** and **minimal-transfer** (`checkers::shards::check_rebalance`): the first time
//!   a configuration is seen, if its set of groups differs from the one before it (a Join or a
//!   Leave made it: a Join adds only absent groups and a Leave removes only present ones, so
//!   the set always changes; a Move never changes it), its shards are balanced and exactly the
//!   fewest shards any balanced assignment needs changed group. The course checks neither for
//!   real (its minimal-transfer checks look at groups that do not exist); this runs in every
//!   scenario of both families, after every Join and Leave.
//! - **ownership** (`checkers::shards::ownership::OwnershipChecker`): single owner per shard
//!   and configuration, serve only after arrival, whole handoffs, configurations one at a
//!   time — from the groups' observations after every step that changes a shard.

use checkers::shards::ownership::{OwnershipChecker, ShardState};
use checkers::shards::{check_rebalance, min_moves, moves, Violation};
use nodes::shardctrler::{Config, ConfigObserver, NSHARDS};
use nodes::shardkv::{GroupEvent, GroupObserver, ShardView};
use sim::Failure;
use std::collections::BTreeMap;

/// How the Joins and Leaves of a run moved shards, against the fewest they had to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Configurations made by a Join or a Leave.
    pub changes: u64,
    /// Shards that changed group in them.
    pub moved: u64,
    /// The fewest any balanced assignment would have moved (`checkers::shards::min_moves`).
    pub minimum: u64,
}

/// The run-wide judge; share it (`Rc<RefCell<_>>`) with every controller and group replica.
pub struct ShardJudge {
    /// Every configuration seen, by number (0 is known from the start).
    configs: BTreeMap<u64, Config>,
    ownership: OwnershipChecker,
    stats: TransferStats,
    /// Shard changes the groups reported ([`GroupObserver::observe`] calls): none means the
    /// ownership checks had nothing to judge (a service that does not report them).
    group_events: u64,
}

impl Default for ShardJudge {
    fn default() -> Self {
        ShardJudge::new()
    }
}

fn failure(v: Violation) -> Failure {
    Failure::safety(v.checker(), v.message)
}

fn state_of(view: ShardView) -> ShardState {
    match view {
        ShardView::Absent => ShardState::Absent,
        ShardView::Pulling => ShardState::Pulling,
        ShardView::Serving => ShardState::Serving,
        ShardView::Offering => ShardState::Offering,
    }
}

impl ShardJudge {
    pub fn new() -> ShardJudge {
        ShardJudge {
            configs: BTreeMap::from([(0, Config::initial())]),
            ownership: OwnershipChecker::new(NSHARDS),
            stats: TransferStats::default(),
            group_events: 0,
        }
    }

    /// Shard changes the groups reported so far.
    pub fn group_events(&self) -> u64 {
        self.group_events
    }

    /// One line for the run's description: which of the judge's checks ran. The
    /// configuration checks always do (the controller is simlab's); the ownership checks run
    /// only on what the groups report, so a service whose servers report nothing is told
    /// they could not run. (A line of the trace: simlab's own families, whose groups always
    /// report, do not print it, so their trace hashes stay as they were.)
    pub fn describe_checks(&self) {
        const CONFIG: &str = "config-agreement, balance, minimal-transfer";
        const OWNERSHIP: &str = "single-owner, serve-after-arrival, handoff, config-order";
        sim::describe(if self.group_events > 0 {
            format!("shard checks: {CONFIG}, {OWNERSHIP} (on {} reported shard changes)", self.group_events)
        } else {
            format!(
                "shard checks: {CONFIG}; not checked (the groups reported no shard changes to GroupSetup::observer): {OWNERSHIP}"
            )
        });
    }

    /// Join/Leave transfer figures so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    /// The configurations seen so far, by number.
    pub fn configs(&self) -> &BTreeMap<u64, Config> {
        &self.configs
    }

    /// One line for the run's description: the Join/Leave transfers against the minimum.
    pub fn describe(&self) {
        let s = self.stats;
        sim::describe(format!(
            "{} by Join/Leave moved {}; the minimum was {}",
            crate::count(s.changes as usize, "configuration"),
            crate::count(s.moved as usize, "shard"),
            s.minimum
        ));
    }

    /// A configuration announced by `who`: checked for agreement with earlier announcements,
    /// and, the first time, for balance and minimal transfer.
    fn announce(&mut self, who: &str, config: &Config) -> Result<(), Failure> {
        let num = config.num;
        if let Some(known) = self.configs.get(&num) {
            if known != config {
                return Err(Failure::safety(
                    "config-agreement",
                    format!("{who} has configuration {num} as {config:?}, but it was {known:?}"),
                ));
            }
            return Ok(());
        }
        let prev = self.configs.get(&(num - 1)).ok_or_else(|| {
            Failure::safety("config-agreement", format!("{who} has configuration {num} before anyone had {}", num - 1))
        })?;
        if prev.groups.keys().ne(config.groups.keys()) {
            check_rebalance(&prev.shards, &config.shards, &config.gids()).map_err(failure)?;
            self.stats.changes += 1;
            self.stats.moved += moves(&prev.shards, &config.shards) as u64;
            self.stats.minimum += min_moves(&prev.shards, &config.gids()) as u64;
        }
        self.ownership.observe_config(num, &config.shards).map_err(failure)?;
        self.configs.insert(num, config.clone());
        Ok(())
    }
}

impl ConfigObserver for ShardJudge {
    fn observe_config(&mut self, replica: usize, config: &Config) -> Result<(), Failure> {
        self.announce(&format!("controller replica {replica}"), config)
    }
}

impl GroupObserver for ShardJudge {
    fn observe(&mut self, gid: u64, replica: usize, event: &GroupEvent<'_>) -> Result<(), Failure> {
        self.group_events += 1;
        match event {
            GroupEvent::Restored => {
                self.ownership.observe_restore(gid, replica);
                Ok(())
            }
            GroupEvent::Took(config) => self.announce(&format!("group {gid} replica {replica}"), config),
            GroupEvent::Installed { config_num, shard } => {
                self.ownership.observe_install(gid, replica, *config_num, *shard).map_err(failure)
            }
            GroupEvent::View { config_num, views } => {
                let states: Vec<ShardState> = views.iter().map(|v| state_of(*v)).collect();
                self.ownership.observe_view(gid, replica, *config_num, &states).map_err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cores::rsm::StateMachine;
    use nodes::shardctrler::{CtrlerOp, ShardCtrler};

    fn join(ctrl: &mut ShardCtrler, gid: u64) {
        ctrl.apply(&CtrlerOp::Join { servers: [(gid, vec![format!("s{gid}")])].into() });
    }

    #[test]
    fn configurations_are_judged_once_for_transfers_and_always_for_agreement() {
        let mut ctrl = ShardCtrler::new();
        join(&mut ctrl, 1);
        join(&mut ctrl, 2);
        ctrl.apply(&CtrlerOp::Move { shard: 0, gid: 2 });
        let mut j = ShardJudge::new();
        for c in &ctrl.configs()[1..] {
            j.observe_config(0, c).unwrap();
            j.observe_config(1, c).unwrap();
        }
        // Two joins: 10 shards from gid 0, then 5; the move is not a Join or Leave.
        assert_eq!(j.stats(), TransferStats { changes: 2, moved: 15, minimum: 15 });
        let mut other = ctrl.configs()[2].clone();
        other.groups.insert(2, vec!["elsewhere".into()]);
        let f = j.observe_config(2, &other).unwrap_err();
        assert_eq!(f.checker, "config-agreement");
    }

    #[test]
    fn a_wasteful_rebalance_fails_minimal_transfer_and_an_unbalanced_one_balance() {
        let mut ctrl = ShardCtrler::new();
        for gid in 1..=3 {
            join(&mut ctrl, gid);
        }
        let mut j = ShardJudge::new();
        j.observe_config(0, &ctrl.configs()[1]).unwrap();
        j.observe_config(0, &ctrl.configs()[2]).unwrap();
        // Configuration 3 as a controller that rebalances evenly but swaps groups 1 and 2
        // would make it: balanced, yet it moves far more than the 3 shards group 3 needs.
        let mut swapped = ctrl.configs()[3].clone();
        for g in swapped.shards.iter_mut() {
            *g = match *g {
                1 => 2,
                2 => 1,
                other => other,
            };
        }
        let f = j.observe_config(0, &swapped).unwrap_err();
        assert_eq!(f.checker, "minimal-transfer", "{}", f.message);
        let mut lopsided = ctrl.configs()[3].clone();
        lopsided.shards = [1, 1, 1, 1, 1, 1, 1, 2, 2, 2];
        let mut j = ShardJudge::new();
        j.observe_config(0, &ctrl.configs()[1]).unwrap();
        j.observe_config(0, &ctrl.configs()[2]).unwrap();
        assert_eq!(j.observe_config(0, &lopsided).unwrap_err().checker, "balance");
    }

    #[test]
    fn group_events_reach_the_ownership_checker() {
        let mut ctrl = ShardCtrler::new();
        join(&mut ctrl, 100);
        let mut j = ShardJudge::new();
        let c1 = ctrl.configs()[1].clone();
        j.observe(100, 0, &GroupEvent::Restored).unwrap();
        j.observe(100, 0, &GroupEvent::View { config_num: 0, views: vec![ShardView::Absent; NSHARDS] }).unwrap();
        j.observe(100, 0, &GroupEvent::Took(&c1)).unwrap();
        j.observe(100, 0, &GroupEvent::View { config_num: 1, views: vec![ShardView::Serving; NSHARDS] }).unwrap();
        // Group 101 serving a shard configuration 1 gives to 100: two owners.
        j.observe(101, 0, &GroupEvent::Took(&c1)).unwrap();
        let mut views = vec![ShardView::Absent; NSHARDS];
        views[3] = ShardView::Serving;
        let f = j.observe(101, 0, &GroupEvent::View { config_num: 1, views }).unwrap_err();
        assert_eq!(f.checker, "single-owner", "{}", f.message);
    }
}
