//! Shard ownership over a run of the sharded key/value service, checked from observations
//! after every step, like the Raft safety checker.
//!
//! Properties (names as in [`Property`]):
//! - **single-owner**: for every shard and configuration number, at most one group serves
//!   (accepts operations on) the shard, and only the group that configuration assigns it to.
//!   Judged per configuration number, not per instant: a lagging replica still applying old
//!   entries is no second owner, while any group serving shard `s` in configuration `n` other
//!   than `n`'s owner is one however the timing falls.
//! - **serve-after-arrival**: a replica serves a shard in configuration `n` only when it holds
//!   the shard's data for `n`: it served it in `n − 1` too, or nobody had it in `n − 1`
//!   (gid 0: it starts empty), or it installed the data handed over for `n`, or (after a
//!   restart or an installed snapshot) some replica of its group already held it in `n`.
//! - **handoff**: a replica installs shard data for configuration `n` only after the shard's
//!   owner in `n − 1` froze it for `n` (offered it); a replica that held a shard drops it only
//!   once the shard's owner in `n` holds it (or `n` assigns it to nobody), and never drops or
//!   offers one `n` assigns to its own group.
//! - **config-order**: each replica takes configurations one at a time, in order (a restart
//!   or an installed snapshot may jump).
//! - **config-agreement**: every announcement of configuration `n` (by the controller, or by
//!   a replica taking it) has the same shard array; a replica only reports configurations
//!   that were announced.
//!
//! Observation order within one step of a replica: [`OwnershipChecker::observe_config`] for
//! a configuration it just took, then [`OwnershipChecker::observe_install`] for each shard it
//! just installed, then [`OwnershipChecker::observe_view`] with every shard's state after the
//! step. [`OwnershipChecker::observe_restore`] when a replica restarts or installs a snapshot.

use super::{Property, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// What a replica does with one shard, as its state says after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShardState {
    /// Neither served nor held.
    Absent,
    /// Its configuration assigns the shard to this group, whose data has not arrived yet; not
    /// served.
    Pulling,
    /// Operations on the shard are accepted (would be answered other than "wrong group").
    Serving,
    /// Held frozen for the shard's next owner, not served.
    Offering,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    /// The configuration of the last view that reported this shard.
    config: u64,
    state: ShardState,
    /// Whether the replica legitimately held the shard's data as of `config`.
    holds: bool,
    /// The configuration for which the replica last installed the shard's data.
    installed: Option<u64>,
}

#[derive(Clone, Debug)]
struct Replica {
    config: u64,
    /// Restarted or installed a snapshot since the last view: the next view may jump.
    restored: bool,
    shards: Vec<Record>,
}

impl Replica {
    fn new(nshards: usize) -> Replica {
        let blank = Record { config: 0, state: ShardState::Absent, holds: false, installed: None };
        Replica { config: 0, restored: false, shards: vec![blank; nshards] }
    }
}

/// Incremental judge of shard ownership for one run. Groups are named by gid (never 0),
/// replicas by any number unique within their group.
#[derive(Clone, Debug)]
pub struct OwnershipChecker {
    nshards: usize,
    /// Configuration number → shard array, as announced.
    configs: BTreeMap<u64, Vec<u64>>,
    replicas: BTreeMap<(u64, usize), Replica>,
    /// (gid, shard, config): some replica of the group legitimately held the shard's data as
    /// of that configuration (served it, offered it, or installed it).
    held: BTreeSet<(u64, usize, u64)>,
    /// (shard, config) → the first group seen serving it.
    servers: BTreeMap<(usize, u64), u64>,
    observations: u64,
}

impl OwnershipChecker {
    /// A checker for a service of `nshards` shards; configuration 0 (every shard on gid 0)
    /// is known from the start.
    ///
    /// # Panics
    /// If `nshards` is 0.
    pub fn new(nshards: usize) -> OwnershipChecker {
        assert!(nshards > 0, "a sharded service has shards");
        OwnershipChecker {
            nshards,
            configs: BTreeMap::from([(0, vec![0; nshards])]),
            replicas: BTreeMap::new(),
            held: BTreeSet::new(),
            servers: BTreeMap::new(),
            observations: 0,
        }
    }

    /// Number of observations made so far.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Configuration `num` assigns shard `s` to `shards[s]` (0: no group). Announce every
    /// configuration before a replica reports it: from the controller as it makes them, or from
    /// each replica as it takes one (repeats are checked for agreement).
    ///
    /// # Errors
    /// A [`Violation`] of config-agreement when `shards` has the wrong length or configuration `num` was announced
    /// before with other owners.
    pub fn observe_config(&mut self, num: u64, shards: &[u64]) -> Result<(), Violation> {
        self.observations += 1;
        if shards.len() != self.nshards {
            return Err(Violation::new(
                Property::ConfigAgreement,
                format!("configuration {num} has {} shards, not {}", shards.len(), self.nshards),
            ));
        }
        match self.configs.get(&num) {
            Some(known) if known != shards => Err(Violation::new(
                Property::ConfigAgreement,
                format!("configuration {num} announced as {known:?} and as {shards:?}"),
            )),
            Some(_) => Ok(()),
            None => {
                self.configs.insert(num, shards.to_vec());
                Ok(())
            }
        }
    }

    /// The replica restarted from its persisted state or installed a snapshot: its next view
    /// may be at any configuration, and what it holds is judged against what its group held.
    pub fn observe_restore(&mut self, group: u64, replica: usize) {
        self.observations += 1;
        let nshards = self.nshards;
        let r = self.replicas.entry((group, replica)).or_insert_with(|| Replica::new(nshards));
        r.restored = true;
        for rec in &mut r.shards {
            rec.holds = false;
            rec.installed = None;
        }
    }

    /// The replica installed `shard`'s data, handed over by its previous owner, for
    /// configuration `config`.
    ///
    /// # Errors
    /// A [`Violation`]: config-agreement when configuration `config` or the one before it was never announced;
    /// config-order when the replica is at another configuration; handoff when `config` does not give the shard to
    /// this group, or its previous owner never held it frozen for `config`.
    ///
    /// # Panics
    /// If `shard` is not below the checker's number of shards.
    pub fn observe_install(&mut self, group: u64, replica: usize, config: u64, shard: usize) -> Result<(), Violation> {
        self.observations += 1;
        assert!(shard < self.nshards, "shard {shard} out of range 0..{}", self.nshards);
        let (own_n, own_prev) = self.owners(group, replica, config, shard)?;
        let nshards = self.nshards;
        let r = self.replicas.entry((group, replica)).or_insert_with(|| Replica::new(nshards));
        if !r.restored && r.config != config {
            return Err(Violation::new(
                Property::ConfigOrder,
                format!(
                    "group {group} replica {replica} installs shard {shard} for configuration {config} while in configuration {}",
                    r.config
                ),
            ));
        }
        if own_n != group {
            return Err(Violation::new(
                Property::Handoff,
                format!(
                    "group {group} replica {replica} installs shard {shard} for configuration {config}, which assigns it to group {own_n}"
                ),
            ));
        }
        if own_prev == 0 || !self.held.contains(&(own_prev, shard, config)) {
            let source = if own_prev == 0 {
                "no group held it before".to_string()
            } else {
                format!("its previous owner, group {own_prev}, never held it frozen for that configuration")
            };
            return Err(Violation::new(
                Property::Handoff,
                format!(
                    "group {group} replica {replica} installs shard {shard} for configuration {config}, but {source}"
                ),
            ));
        }
        r.shards[shard].installed = Some(config);
        self.held.insert((group, shard, config));
        Ok(())
    }

    /// Every shard's state at the replica after a step, in configuration `config`.
    ///
    /// # Errors
    /// A [`Violation`]: config-agreement for a configuration never announced; config-order when the replica skips
    /// or goes back a configuration; single-owner when two groups serve a shard, or one serves a shard not assigned
    /// to it; serve-after-arrival when a shard is served before its data arrived; handoff when a shard is offered
    /// or dropped wrongly.
    ///
    /// # Panics
    /// If `states` does not cover every shard, or `group` is 0.
    pub fn observe_view(
        &mut self,
        group: u64,
        replica: usize,
        config: u64,
        states: &[ShardState],
    ) -> Result<(), Violation> {
        self.observations += 1;
        assert_eq!(states.len(), self.nshards, "a view covers every shard");
        assert_ne!(group, 0, "gid 0 names no group");
        let n = config;
        // A replica first seen starts at configuration 0, as from its first boot.
        let (from, restored) = self.replicas.get(&(group, replica)).map_or((0, false), |r| (r.config, r.restored));
        if n != from && !restored && n != from + 1 {
            return Err(Violation::new(
                Property::ConfigOrder,
                format!("group {group} replica {replica} went from configuration {from} to {n}"),
            ));
        }
        let cfg_n = self.config(group, replica, n, n)?.to_vec();
        let cfg_prev = if n == 0 { cfg_n.clone() } else { self.config(group, replica, n - 1, n)?.to_vec() };
        let nshards = self.nshards;
        let mut r = self.replicas.remove(&(group, replica)).unwrap_or_else(|| Replica::new(nshards));
        let result = self.judge_view(group, replica, n, &cfg_n, &cfg_prev, states, &mut r);
        self.replicas.insert((group, replica), r);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn judge_view(
        &mut self,
        g: u64,
        replica: usize,
        n: u64,
        cfg_n: &[u64],
        cfg_prev: &[u64],
        states: &[ShardState],
        r: &mut Replica,
    ) -> Result<(), Violation> {
        let who = format!("group {g} replica {replica}");
        for (s, &state) in states.iter().enumerate() {
            let rec = r.shards[s];
            let (own_n, own_prev) = (cfg_n[s], cfg_prev[s]);
            // Whether the data the replica held before this step is still the shard's data
            // as of configuration n: held in n, or served in n − 1 (an offered copy from
            // n − 1 is stale by n: its new owner may have written since).
            let carried = !r.restored
                && rec.holds
                && (rec.config == n || (rec.config + 1 == n && rec.state == ShardState::Serving));
            let holds = match state {
                ShardState::Serving => {
                    if let Some(&other) = self.servers.get(&(s, n)) {
                        if other != g {
                            return Err(Violation::new(
                                Property::SingleOwner,
                                format!("groups {other} and {g} both serve shard {s} in configuration {n}"),
                            ));
                        }
                    }
                    if own_n != g {
                        return Err(Violation::new(
                            Property::SingleOwner,
                            format!("{who} serves shard {s} in configuration {n}, which assigns it to group {own_n}"),
                        ));
                    }
                    let fresh = n > 0 && own_prev == 0;
                    let installed = rec.installed == Some(n);
                    let group_had = r.restored && self.held.contains(&(g, s, n));
                    if !(carried || fresh || installed || group_had) {
                        let why = if r.restored {
                            format!("after a restore, and no replica of group {g} ever held it in that configuration")
                        } else {
                            format!("before the data from its previous owner, group {own_prev}, arrived")
                        };
                        return Err(Violation::new(
                            Property::ServeAfterArrival,
                            format!("{who} serves shard {s} in configuration {n} {why}"),
                        ));
                    }
                    self.servers.insert((s, n), g);
                    true
                }
                ShardState::Offering => {
                    let group_had =
                        r.restored && (self.held.contains(&(g, s, n)) || (n > 0 && self.held.contains(&(g, s, n - 1))));
                    if own_n == g || !(carried || group_had) {
                        let why =
                            if own_n == g { "which that configuration assigns to it" } else { "without holding it" };
                        return Err(Violation::new(
                            Property::Handoff,
                            format!("{who} offers shard {s} for configuration {n} {why}"),
                        ));
                    }
                    true
                }
                ShardState::Absent | ShardState::Pulling => {
                    if carried {
                        if own_n == g {
                            return Err(Violation::new(
                                Property::Handoff,
                                format!("{who} drops shard {s}, which configuration {n} assigns to its own group"),
                            ));
                        }
                        if own_n != 0 && !self.held.contains(&(own_n, s, n)) {
                            return Err(Violation::new(
                                Property::Handoff,
                                format!(
                                    "{who} deletes shard {s} in configuration {n} before its new owner, group {own_n}, holds it"
                                ),
                            ));
                        }
                    }
                    false
                }
            };
            if holds {
                self.held.insert((g, s, n));
            }
            r.shards[s] = Record { config: n, state, holds, installed: rec.installed.filter(|&c| c == n) };
        }
        r.config = n;
        r.restored = false;
        Ok(())
    }

    /// Configuration `num`, needed to judge a report of group `group`'s replica about
    /// configuration `about` (`num` is `about` or the one before it).
    fn config(&self, group: u64, replica: usize, num: u64, about: u64) -> Result<&[u64], Violation> {
        self.configs.get(&num).map(Vec::as_slice).ok_or_else(|| {
            let what = if num == about { String::new() } else { format!(" (the one before {about})") };
            Violation::new(
                Property::ConfigAgreement,
                format!("group {group} replica {replica} reports configuration {about}, but configuration {num}{what} was never announced"),
            )
        })
    }

    /// The owners of `shard` in `config` and in the configuration before it.
    fn owners(&self, group: u64, replica: usize, config: u64, shard: usize) -> Result<(u64, u64), Violation> {
        let own_n = self.config(group, replica, config, config)?[shard];
        let own_prev = if config == 0 { 0 } else { self.config(group, replica, config - 1, config)?[shard] };
        Ok((own_n, own_prev))
    }
}

#[cfg(test)]
mod tests {
    use super::ShardState::{Absent as A, Offering as O, Pulling as P, Serving as S};
    use super::*;

    const N: usize = 4;

    /// Configuration 1: group 100 has every shard; 2: shards 0 and 1 move to group 101.
    fn checker() -> OwnershipChecker {
        let mut c = OwnershipChecker::new(N);
        c.observe_config(1, &[100; N]).unwrap();
        c.observe_config(2, &[101, 101, 100, 100]).unwrap();
        c
    }

    /// Both groups' replica 0 at configuration 1, then both take configuration 2.
    fn at_config_2(c: &mut OwnershipChecker) {
        c.observe_view(100, 0, 1, &[S; N]).unwrap();
        c.observe_view(101, 0, 1, &[A; N]).unwrap();
        c.observe_view(100, 0, 2, &[O, O, S, S]).unwrap();
        c.observe_view(101, 0, 2, &[P, P, A, A]).unwrap();
    }

    #[test]
    fn a_correct_handoff_passes_with_lagging_and_restored_replicas() {
        let mut c = checker();
        at_config_2(&mut c);
        // Shard 0 arrives and is served at once; shard 1 is still on its way (challenge 2).
        c.observe_install(101, 0, 2, 0).unwrap();
        c.observe_view(101, 0, 2, &[S, P, A, A]).unwrap();
        c.observe_install(101, 0, 2, 1).unwrap();
        c.observe_view(101, 0, 2, &[S, S, A, A]).unwrap();
        // The old owner deletes what the new owner holds.
        c.observe_view(100, 0, 2, &[A, A, S, S]).unwrap();
        // A lagging replica of each group replays the same steps later.
        c.observe_view(100, 1, 1, &[S; N]).unwrap();
        c.observe_view(100, 1, 2, &[O, O, S, S]).unwrap();
        c.observe_view(100, 1, 2, &[A, A, S, S]).unwrap();
        c.observe_view(101, 1, 1, &[A; N]).unwrap();
        c.observe_view(101, 1, 2, &[P, P, A, A]).unwrap();
        c.observe_install(101, 1, 2, 0).unwrap();
        c.observe_install(101, 1, 2, 1).unwrap();
        c.observe_view(101, 1, 2, &[S, S, A, A]).unwrap();
        // A replica restarted from a snapshot jumps straight to configuration 2.
        c.observe_restore(101, 2);
        c.observe_view(101, 2, 2, &[S, S, A, A]).unwrap();
        // Configuration 3 gives shard 1 back to 100 — and the pass continues in order.
        c.observe_config(3, &[101, 100, 100, 100]).unwrap();
        c.observe_view(101, 0, 3, &[S, O, A, A]).unwrap();
        c.observe_view(100, 0, 3, &[A, P, S, S]).unwrap();
        c.observe_install(100, 0, 3, 1).unwrap();
        c.observe_view(100, 0, 3, &[A, S, S, S]).unwrap();
        c.observe_view(101, 0, 3, &[S, A, A, A]).unwrap();
        assert!(c.observations() > 20);
    }

    #[test]
    fn fires_when_the_old_owner_keeps_serving_during_the_handoff() {
        let mut c = checker();
        c.observe_view(100, 0, 1, &[S; N]).unwrap();
        let v = c.observe_view(100, 0, 2, &[S, O, S, S]).unwrap_err();
        assert_eq!(v.property, Property::SingleOwner);
        assert_eq!(v.message, "group 100 replica 0 serves shard 0 in configuration 2, which assigns it to group 101");
        // Even when the new owner was seen serving first, the message names both.
        let mut c = checker();
        at_config_2(&mut c);
        c.observe_install(101, 0, 2, 0).unwrap();
        c.observe_view(101, 0, 2, &[S, P, A, A]).unwrap();
        let v = c.observe_view(100, 0, 2, &[S, O, S, S]).unwrap_err();
        assert_eq!(v.message, "groups 101 and 100 both serve shard 0 in configuration 2");
    }

    #[test]
    fn fires_when_a_shard_is_served_before_its_data_arrives() {
        let mut c = checker();
        at_config_2(&mut c);
        let v = c.observe_view(101, 0, 2, &[S, P, A, A]).unwrap_err();
        assert_eq!(v.property, Property::ServeAfterArrival);
        assert!(v.message.contains("before the data from its previous owner, group 100, arrived"), "{v}");
        // After a restore, serving is legal only if the group ever held the shard there.
        let mut c = checker();
        at_config_2(&mut c);
        c.observe_restore(101, 1);
        let v = c.observe_view(101, 1, 2, &[P, S, A, A]).unwrap_err();
        assert_eq!(v.property, Property::ServeAfterArrival);
        assert!(v.message.contains("after a restore"), "{v}");
    }

    #[test]
    fn fires_when_the_old_owner_deletes_before_the_new_owner_holds_it() {
        let mut c = checker();
        c.observe_view(100, 0, 1, &[S; N]).unwrap();
        // Dropped at the configuration change itself...
        let v = c.observe_view(100, 0, 2, &[A, O, S, S]).unwrap_err();
        assert_eq!(v.property, Property::Handoff);
        assert_eq!(
            v.message,
            "group 100 replica 0 deletes shard 0 in configuration 2 before its new owner, group 101, holds it"
        );
        // ...or later, after offering it, but before the install.
        let mut c = checker();
        at_config_2(&mut c);
        let v = c.observe_view(100, 0, 2, &[A, O, S, S]).unwrap_err();
        assert_eq!(v.property, Property::Handoff);
        // A group may not drop or offer a shard its own configuration gives it.
        let mut c = checker();
        at_config_2(&mut c);
        let v = c.observe_view(100, 0, 2, &[O, O, A, S]).unwrap_err();
        assert!(v.message.contains("drops shard 2, which configuration 2 assigns to its own group"), "{v}");
        let mut c = checker();
        at_config_2(&mut c);
        let v = c.observe_view(100, 0, 2, &[O, O, O, S]).unwrap_err();
        assert!(v.message.contains("offers shard 2 for configuration 2 which that configuration assigns to it"), "{v}");
    }

    #[test]
    fn fires_when_an_install_has_no_frozen_source() {
        let mut c = checker();
        c.observe_view(100, 0, 1, &[S; N]).unwrap();
        c.observe_view(101, 0, 1, &[A; N]).unwrap();
        c.observe_view(101, 0, 2, &[P, P, A, A]).unwrap();
        // Group 100 never took configuration 2, so nothing of shard 0 was frozen for it.
        let v = c.observe_install(101, 0, 2, 0).unwrap_err();
        assert_eq!(v.property, Property::Handoff);
        assert!(v.message.contains("its previous owner, group 100, never held it frozen"), "{v}");
        // Installing a shard the configuration gives someone else, or at the wrong configuration.
        let mut c = checker();
        at_config_2(&mut c);
        assert!(c.observe_install(101, 0, 2, 2).unwrap_err().message.contains("assigns it to group 100"));
        assert_eq!(c.observe_install(101, 0, 1, 0).unwrap_err().property, Property::ConfigOrder);
    }

    #[test]
    fn fires_when_a_replica_skips_or_reorders_configurations() {
        let mut c = checker();
        c.observe_config(3, &[101, 101, 101, 100]).unwrap();
        c.observe_view(101, 0, 1, &[A; N]).unwrap();
        let v = c.observe_view(101, 0, 3, &[P, P, P, A]).unwrap_err();
        assert_eq!(v.property, Property::ConfigOrder);
        assert_eq!(v.message, "group 101 replica 0 went from configuration 1 to 3");
        let mut c = checker();
        at_config_2(&mut c);
        assert_eq!(c.observe_view(100, 0, 1, &[S; N]).unwrap_err().property, Property::ConfigOrder);
        // A restore may jump either way.
        c.observe_restore(100, 0);
        c.observe_view(100, 0, 1, &[S; N]).unwrap();
    }

    #[test]
    fn fires_when_configurations_disagree_or_were_never_announced() {
        let mut c = checker();
        let v = c.observe_config(2, &[100, 101, 100, 100]).unwrap_err();
        assert_eq!(v.property, Property::ConfigAgreement);
        assert!(c.observe_config(2, &[101, 101, 100, 100]).is_ok(), "a repeat that agrees");
        assert!(c.observe_config(0, &[100; N]).is_err(), "configuration 0 puts every shard on gid 0");
        assert!(c.observe_config(4, &[100; N + 1]).is_err());
        c.observe_restore(100, 0);
        let v = c.observe_view(100, 0, 7, &[A; N]).unwrap_err();
        assert_eq!(v.message, "group 100 replica 0 reports configuration 7, but configuration 7 was never announced");
        c.observe_config(9, &[100; N]).unwrap();
        let v = c.observe_view(100, 0, 9, &[S; N]).unwrap_err();
        assert_eq!(
            v.message,
            "group 100 replica 0 reports configuration 9, but configuration 8 (the one before 9) was never announced"
        );
    }
}
