//! The state a sharded key/value replica group applies through its log (lab 4B, with both
//! challenges), and the pure functions that tell the group's shell what to do next.
//!
//! # Shards and their status
//! `key2shard(key)` is the key's first byte mod [`NSHARDS`] (the course's `key2shard`). Each
//! shard held by the group has its data (a [`Kv`] store) and its own duplicate table (client
//! id → last write), and a [`ShardStatus`]:
//!
//! ```text
//!            config n gives it to us            data for n installed        old owner deleted its copy
//! Absent ───────────────────────────► Pulling ─────────────────► AwaitingDelete ────────────────► Serving
//!   ▲   (previous owner gid 0: straight to Serving, empty)           (served)                      │
//!   │                                                                                              │
//!   └──────────── new owner confirmed it has it (DeleteShards) ◄── Offering ◄── config n takes it away
//! ```
//!
//! Served (answered other than "wrong group"): `Serving` and `AwaitingDelete` — a shard is
//! served the moment its data is installed, without waiting for the rest of the change
//! (challenge 2), and shards owned in both configurations are served throughout. `Pulling`
//! and `Offering` shards are not served, nor any shard the current configuration gives to
//! another group.
//!
//! # Configuration changes, one at a time (lab 4B text)
//! A group takes configuration `n + 1` only when it is at `n` and *settled*: every shard
//! `Serving` or `Absent` (nothing to pull, to hand over or to confirm). The shell polls the
//! controller ([`ShardKv::config_to_query`]) about every 100 ms and proposes
//! [`ShardKvOp::Reconfigure`] ([`ShardKv::reconfigure_op`]); the state machine checks again
//! when it applies, since the log may hold duplicates.
//!
//! # Handing a shard over (both sides through their logs: challenge 1)
//! 1. Old owner A applies configuration `n`, which moves shard `s` to B: `s` becomes
//!    `Offering`, frozen (no operation changes it any more).
//! 2. B applies `n`: `s` becomes `Pulling`. B's shell sends A a [`PullArgs`] for every
//!    [`ShardKv::pull_tasks`] entry; any replica of A that has applied `n` answers from its
//!    state ([`ShardKv::answer_pull`]) with the shard's data **and duplicate table**.
//! 3. B proposes [`ShardKvOp::InstallShards`] ([`ShardKv::install_op`]); once applied, `s` is
//!    `AwaitingDelete` and served.
//! 4. B's shell sends A a [`DeleteArgs`] for every [`ShardKv::delete_tasks`] entry; A proposes
//!    [`ShardKvOp::DeleteShards`] ([`ShardKv::delete_op`]) and, once applied, deletes `s`'s
//!    data and answers ([`ShardKv::delete_reply`]).
//! 5. B proposes [`ShardKvOp::ConfirmDeleted`] ([`ShardKv::confirm_op`]); `s` is `Serving`.
//!
//! Every internal operation is idempotent and checks the configuration number, so duplicates
//! and stale retries change nothing.
//!
//! # Duplicate detection
//! Client operations carry (client id, sequence number). Writes are recorded per shard, so
//! the record moves with the shard and a write retried at the new owner after it took effect
//! at the old one returns the first answer (exactly once across migration). A request for a
//! shard the group does not serve is answered "wrong group" *before* the table is consulted
//! and leaves no record, so the clerk can retry it elsewhere or later. Gets are not recorded:
//! re-executing a retried Get at its later log position is still inside the call's interval,
//! so it stays linearizable, and not keeping read values keeps the tables (which migrate and
//! are snapshotted) small — the course's TestChallenge1Delete budget counts them.
//! Because the tables live inside the shards, this state machine must be applied **without**
//! the replicated-state-machine layer's global duplicate table (`rsm::Rsm`), which would
//! record "wrong group" answers and replay them to the retry.
//!
//! # A configuration with no groups
//! When every group has left, the controller puts every shard on gid 0: the last owner drops
//! its shards (nobody could ever pull them), and the next group to own them starts empty, as
//! from configuration 0. Data does not survive a configuration without groups.

#[cfg(test)]
mod tests;

use crate::kv::{Kv, KvOp, KvResult};
use crate::rsm::StateMachine;
use crate::shardctrler::CtrlerOp;
pub use crate::shardctrler::{Config, NSHARDS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The shard a key belongs to: its first byte mod [`NSHARDS`], 0 for the empty key (the
/// course's `key2shard`; keys "0".."9" land on shards 8, 9, 0, 1, …, 7).
pub fn key2shard(key: &str) -> usize {
    key.bytes().next().map_or(0, |b| usize::from(b) % NSHARDS)
}

/// The group that serves `key` in `config` and its servers, or `None` if no group does
/// (configuration 0, or every group left). What a clerk sends to.
pub fn route<'a>(config: &'a Config, key: &str) -> Option<(u64, &'a [String])> {
    let gid = config.shards[key2shard(key)];
    config.groups.get(&gid).map(|servers| (gid, servers.as_slice()))
}

/// Where a shard stands at this group; see the module documentation for the transitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ShardStatus {
    /// Not ours, nothing held.
    #[default]
    Absent,
    /// Ours, data held, and no previous owner still holds a copy: served.
    Serving,
    /// Ours in the current configuration; waiting for the data from its previous owner. Not served.
    Pulling,
    /// Ours in the previous configuration, not in the current one: frozen and kept until the
    /// new owner confirms it holds it. Not served.
    Offering,
    /// Arrived from its previous owner and served; that owner has not yet confirmed it
    /// deleted its copy.
    AwaitingDelete,
}

/// A client's last write to one shard: its sequence number and answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastWrite {
    /// The client's sequence number of that write.
    pub seq: u64,
    /// What the write answered, given again to a retry of it.
    pub result: KvResult,
}

/// One shard's replicated data: its keys and its duplicate table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardData {
    /// The shard's keys and values.
    pub kv: Kv,
    /// client id → that client's last write to this shard.
    pub dup: BTreeMap<u64, LastWrite>,
}

impl ShardData {
    /// Whether it holds neither keys nor duplicate records.
    pub fn is_empty(&self) -> bool {
        self.kv.data.is_empty() && self.dup.is_empty()
    }
}

/// One shard at this group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Where the shard stands at this group.
    pub status: ShardStatus,
    /// Its keys and duplicate table (empty unless the status holds data).
    pub data: ShardData,
}

/// What a replica does with one shard, for the ownership checker
/// (`checkers::shards::ownership::ShardState` has the same four cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ShardView {
    /// Not this group's, or not held here.
    Absent,
    /// Ours, waiting for its data from the previous owner: not served.
    Pulling,
    /// Operations on it would be answered (whatever its status says).
    Serving,
    /// Ours no longer; kept frozen for the new owner to pull: not served.
    Offering,
}

/// Planted bugs of the sharded key/value group, all off by default. Each lives inside the
/// real code path it corrupts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKvBugs {
    /// The old owner keeps answering a shard it is handing over (`Offering`), so two groups
    /// serve it and writes made there after the handoff are lost.
    pub serve_during_handoff: bool,
    /// A shard is installed without its duplicate table, so a write retried at the new owner
    /// after it took effect at the old one takes effect twice.
    pub forget_dup_table: bool,
    /// A group takes the newest configuration as soon as it sees it: numbers may be skipped
    /// and a change in progress is abandoned.
    pub config_out_of_order: bool,
    /// The old owner deletes a shard as soon as it applies the configuration that moves it,
    /// and a pull then finds nothing: the new owner installs an empty shard.
    pub delete_before_handoff: bool,
    /// A shard is answered while it is still being pulled, from the empty store that the
    /// arriving data later replaces.
    pub serve_before_arrival: bool,
}

impl ShardKvBugs {
    /// (name, description) of every planted bug.
    pub const ALL: &'static [(&'static str, &'static str)] = &[
        ("serve-during-handoff", "the old owner keeps serving a shard it is handing over, so two groups serve it"),
        ("forget-dup-table", "a shard migrates without its duplicate table, so a retried write applies twice"),
        (
            "config-out-of-order",
            "a group takes the newest configuration at once, skipping numbers and abandoning a change in progress",
        ),
        (
            "delete-before-handoff",
            "the old owner deletes a shard when the configuration moves it, before the new owner has it",
        ),
        ("serve-before-arrival", "a shard is served while it is still being pulled, before its data arrives"),
    ];

    /// The bug called `name` switched on, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        let mut b = ShardKvBugs::default();
        match name {
            "serve-during-handoff" => b.serve_during_handoff = true,
            "forget-dup-table" => b.forget_dup_table = true,
            "config-out-of-order" => b.config_out_of_order = true,
            "delete-before-handoff" => b.delete_before_handoff = true,
            "serve-before-arrival" => b.serve_before_arrival = true,
            _ => return None,
        }
        Some(b)
    }
}

/// An operation in a group's log: a client's, or one of the group's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardKvOp {
    /// A clerk's Get/Put/Append, numbered per client.
    Client {
        /// The clerk's id.
        client: u64,
        /// The clerk's sequence number for this request (1, 2, 3, …).
        seq: u64,
        /// The operation.
        op: KvOp,
    },
    /// Take the next configuration.
    Reconfigure {
        /// The configuration to take; applied only if it is the current one's successor.
        config: Config,
    },
    /// Shard data pulled from the previous owner for configuration `config_num`.
    InstallShards {
        /// The configuration in which this group took the shards.
        config_num: u64,
        /// Each shard's data and duplicate table, by shard number.
        shards: BTreeMap<usize, ShardData>,
    },
    /// At the old owner: the new owner holds these shards of configuration `config_num`;
    /// delete them.
    DeleteShards {
        /// The configuration in which the new owner took the shards.
        config_num: u64,
        /// The shards to delete.
        shards: Vec<usize>,
    },
    /// At the new owner: the old owner deleted its copies of these shards of configuration
    /// `config_num`.
    ConfirmDeleted {
        /// The configuration in which this group took the shards.
        config_num: u64,
        /// The shards whose old copies are gone.
        shards: Vec<usize>,
    },
}

/// What applying a [`ShardKvOp`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardKvOut {
    /// Changed nothing: a stale duplicate, or an internal operation already done or for
    /// another configuration. Nobody waits for it.
    #[default]
    Ignored,
    /// A client operation's answer (the same [`KvResult`] as the lab 3 store, so histories
    /// are checked by the same model).
    Kv(KvResult),
    /// This group does not serve the key's shard now: the clerk should ask the controller
    /// for the latest configuration and try again.
    WrongGroup,
    /// Configuration `num` taken.
    Reconfigured {
        /// The configuration's number.
        num: u64,
    },
    /// These shards were installed (and are served from now on).
    Installed {
        /// The shards installed.
        shards: Vec<usize>,
    },
    /// Answer to [`ShardKvOp::DeleteShards`]: the shards are gone (now or earlier).
    Deleted,
    /// Answer to [`ShardKvOp::DeleteShards`]: this group has not reached that configuration.
    DeleteNotReady,
    /// These shards' previous owners have deleted their copies.
    Confirmed {
        /// The shards now `Serving`.
        shards: Vec<usize>,
    },
}

/// A new owner asks a previous owner for shards of configuration `config_num`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullArgs {
    /// The configuration the shards are asked for.
    pub config_num: u64,
    /// The shards wanted (each in `0..NSHARDS`).
    pub shards: Vec<usize>,
}

/// A previous owner's answer to [`PullArgs`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullReply {
    /// The shards' data and duplicate tables, frozen as of configuration `config_num`.
    Data {
        /// The configuration asked about.
        config_num: u64,
        /// Each shard's data and duplicate table, by shard number.
        shards: BTreeMap<usize, ShardData>,
    },
    /// This replica has not reached that configuration yet: ask again later.
    NotReady,
    /// This replica is past that configuration, so the asker already installed the shards.
    Gone,
}

/// A new owner tells a previous owner it holds these shards of configuration `config_num`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteArgs {
    /// The configuration in which the asker took the shards.
    pub config_num: u64,
    /// The shards the asker now holds.
    pub shards: Vec<usize>,
}

/// A previous owner's answer to [`DeleteArgs`], once its [`ShardKvOp::DeleteShards`] applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteReply {
    /// The shards are deleted.
    Done,
    /// The previous owner has not reached that configuration: ask again later.
    NotReady,
}

/// Work the shell must do with another group: pull `shards` from `gid`, or tell `gid` to
/// delete them, for configuration `config_num`. `servers` are `gid`'s servers as of the
/// previous configuration (where it owned the shards; it may have left since).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTask {
    /// The configuration the work is for.
    pub config_num: u64,
    /// The other group.
    pub gid: u64,
    /// That group's servers, as of the previous configuration.
    pub servers: Vec<String>,
    /// The shards concerned.
    pub shards: Vec<usize>,
}

impl ShardTask {
    /// The pull request for this task.
    pub fn pull_args(&self) -> PullArgs {
        PullArgs { config_num: self.config_num, shards: self.shards.clone() }
    }

    /// The delete request for this task.
    pub fn delete_args(&self) -> DeleteArgs {
        DeleteArgs { config_num: self.config_num, shards: self.shards.clone() }
    }
}

/// The replicated state of one replica group: its gid, the current and previous
/// configurations, and every shard. Build with [`ShardKv::new`]; `Default` (which the
/// [`StateMachine`] trait requires) is an unconfigured group with gid 0, which owns nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKv {
    gid: u64,
    bugs: ShardKvBugs,
    config: Config,
    prev_config: Config,
    shards: Vec<Shard>,
}

impl Default for ShardKv {
    fn default() -> Self {
        ShardKv {
            gid: 0,
            bugs: ShardKvBugs::default(),
            config: Config::initial(),
            prev_config: Config::initial(),
            shards: vec![Shard::default(); NSHARDS],
        }
    }
}

impl ShardKv {
    /// A group `gid` (never 0) at configuration 0, holding nothing, with `bugs` planted.
    ///
    /// # Panics
    /// If `gid` is 0.
    pub fn new(gid: u64, bugs: ShardKvBugs) -> Self {
        assert_ne!(gid, 0, "gid 0 names no group");
        ShardKv { gid, bugs, ..ShardKv::default() }
    }

    /// This group's id (never 0 once built with [`ShardKv::new`]).
    pub fn gid(&self) -> u64 {
        self.gid
    }

    /// The planted bugs this group runs with.
    pub fn bugs(&self) -> ShardKvBugs {
        self.bugs
    }

    /// The configuration the group has taken.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration before it (where pulled shards come from).
    pub fn prev_config(&self) -> &Config {
        &self.prev_config
    }

    /// Shard `shard` as held here.
    ///
    /// # Panics
    /// If `shard >= NSHARDS`.
    pub fn shard(&self, shard: usize) -> &Shard {
        &self.shards[shard]
    }

    fn owns(&self, shard: usize) -> bool {
        self.gid != 0 && self.config.shards[shard] == self.gid
    }

    /// Whether an operation on `shard` would be answered now (rather than "wrong group").
    pub fn serves(&self, shard: usize) -> bool {
        let status = self.shards[shard].status;
        let owned_and_here = self.owns(shard)
            && (matches!(status, ShardStatus::Serving | ShardStatus::AwaitingDelete)
                || (self.bugs.serve_before_arrival && status == ShardStatus::Pulling));
        owned_and_here || (self.bugs.serve_during_handoff && status == ShardStatus::Offering)
    }

    /// Whether the current configuration change is complete: nothing to pull, hand over or
    /// confirm. Only then is the next configuration taken.
    pub fn settled(&self) -> bool {
        self.shards.iter().all(|s| matches!(s.status, ShardStatus::Serving | ShardStatus::Absent))
    }

    /// What to ask the controller on the next poll (about every 100 ms), or `None` while a
    /// change is in progress: the configuration after the current one.
    pub fn config_to_query(&self) -> Option<CtrlerOp> {
        if self.bugs.config_out_of_order {
            return Some(CtrlerOp::Query { num: None });
        }
        self.settled().then(|| CtrlerOp::Query { num: Some(self.config.num + 1) })
    }

    fn accepts_config(&self, config: &Config) -> bool {
        if !config.is_well_formed() {
            return false;
        }
        if self.bugs.config_out_of_order {
            return config.num > self.config.num;
        }
        config.num == self.config.num + 1 && self.settled()
    }

    /// The operation to propose for a configuration the controller returned, if the group
    /// should take it now.
    pub fn reconfigure_op(&self, config: &Config) -> Option<ShardKvOp> {
        self.accepts_config(config).then(|| ShardKvOp::Reconfigure { config: config.clone() })
    }

    /// Groups the shards in `status`, by their owner in the previous configuration.
    fn tasks(&self, status: ShardStatus) -> Vec<ShardTask> {
        let mut by_gid: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (s, shard) in self.shards.iter().enumerate() {
            if shard.status == status {
                by_gid.entry(self.prev_config.shards[s]).or_default().push(s);
            }
        }
        by_gid
            .into_iter()
            .map(|(gid, shards)| ShardTask {
                config_num: self.config.num,
                gid,
                servers: self.prev_config.groups.get(&gid).cloned().unwrap_or_default(),
                shards,
            })
            .collect()
    }

    /// Shards to pull, one task per previous owner (ascending gid): send each a
    /// [`ShardTask::pull_args`] and feed the answer to [`ShardKv::install_op`]. Repeat until
    /// they arrive; pulls are idempotent.
    pub fn pull_tasks(&self) -> Vec<ShardTask> {
        self.tasks(ShardStatus::Pulling)
    }

    /// Shards whose previous owner must delete its copy, one task per owner: send each a
    /// [`ShardTask::delete_args`] and feed a [`DeleteReply`] to [`ShardKv::confirm_op`].
    pub fn delete_tasks(&self) -> Vec<ShardTask> {
        self.tasks(ShardStatus::AwaitingDelete)
    }

    /// The answer to another group's pull, from this replica's applied state (no log entry
    /// needed: data offered for configuration `n` is frozen, the same at every replica that
    /// has applied `n`).
    pub fn answer_pull(&self, args: &PullArgs) -> PullReply {
        let n = args.config_num;
        if self.config.num < n {
            return PullReply::NotReady;
        }
        if self.bugs.delete_before_handoff {
            // A naive extraction ("the keys of shard s I still have") finds nothing of a shard
            // already deleted, and sends that.
            let shards = args
                .shards
                .iter()
                .filter(|&&s| s < NSHARDS)
                .map(|&s| {
                    let held = self.shards[s].status == ShardStatus::Offering;
                    (s, if held { self.shards[s].data.clone() } else { ShardData::default() })
                })
                .collect();
            return PullReply::Data { config_num: n, shards };
        }
        if self.config.num > n {
            return PullReply::Gone;
        }
        let shards = args
            .shards
            .iter()
            .filter(|&&s| s < NSHARDS && self.shards[s].status == ShardStatus::Offering)
            .map(|&s| (s, self.shards[s].data.clone()))
            .collect();
        PullReply::Data { config_num: n, shards }
    }

    /// The operation to propose for a pull's answer: install the shards still awaited.
    pub fn install_op(&self, reply: &PullReply) -> Option<ShardKvOp> {
        let PullReply::Data { config_num, shards } = reply else { return None };
        if *config_num != self.config.num {
            return None;
        }
        let wanted: BTreeMap<usize, ShardData> = shards
            .iter()
            .filter(|(&s, _)| s < NSHARDS && self.shards[s].status == ShardStatus::Pulling)
            .map(|(&s, d)| (s, d.clone()))
            .collect();
        (!wanted.is_empty()).then_some(ShardKvOp::InstallShards { config_num: *config_num, shards: wanted })
    }

    /// The operation a previous owner proposes on receiving [`DeleteArgs`]; it answers with
    /// [`ShardKv::delete_reply`] of the output once that entry applies.
    pub fn delete_op(args: &DeleteArgs) -> ShardKvOp {
        ShardKvOp::DeleteShards { config_num: args.config_num, shards: args.shards.clone() }
    }

    /// The answer to send back for the output of an applied [`ShardKvOp::DeleteShards`].
    pub fn delete_reply(out: &ShardKvOut) -> Option<DeleteReply> {
        match out {
            ShardKvOut::Deleted => Some(DeleteReply::Done),
            ShardKvOut::DeleteNotReady => Some(DeleteReply::NotReady),
            _ => None,
        }
    }

    /// The operation to propose once a previous owner answered a delete request.
    pub fn confirm_op(&self, args: &DeleteArgs, reply: &DeleteReply) -> Option<ShardKvOp> {
        if *reply != DeleteReply::Done || args.config_num != self.config.num {
            return None;
        }
        let shards: Vec<usize> = args
            .shards
            .iter()
            .copied()
            .filter(|&s| s < NSHARDS && self.shards[s].status == ShardStatus::AwaitingDelete)
            .collect();
        (!shards.is_empty()).then_some(ShardKvOp::ConfirmDeleted { config_num: args.config_num, shards })
    }

    /// What this replica does with `shard`, for the ownership checker.
    pub fn view(&self, shard: usize) -> ShardView {
        if self.serves(shard) {
            return ShardView::Serving;
        }
        match self.shards[shard].status {
            ShardStatus::Pulling => ShardView::Pulling,
            ShardStatus::Offering => ShardView::Offering,
            ShardStatus::Absent => ShardView::Absent,
            s @ (ShardStatus::Serving | ShardStatus::AwaitingDelete) => {
                unreachable!("shard {shard} is {s:?} at group {} yet not served", self.gid)
            }
        }
    }

    /// Every shard's [`ShardView`], with the configuration number: one observation.
    pub fn views(&self) -> (u64, Vec<ShardView>) {
        (self.config.num, (0..NSHARDS).map(|s| self.view(s)).collect())
    }

    fn apply_client(&mut self, client: u64, seq: u64, op: &KvOp) -> ShardKvOut {
        let key = match op {
            KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Append { key, .. } => key,
        };
        let s = key2shard(key);
        if !self.serves(s) {
            return ShardKvOut::WrongGroup;
        }
        let data = &mut self.shards[s].data;
        let write = !matches!(op, KvOp::Get { .. });
        if write {
            if let Some(last) = data.dup.get(&client) {
                if seq == last.seq {
                    return ShardKvOut::Kv(last.result.clone());
                }
                if seq < last.seq {
                    return ShardKvOut::Ignored;
                }
            }
        }
        let result = data.kv.apply(op);
        if write {
            data.dup.insert(client, LastWrite { seq, result: result.clone() });
        }
        ShardKvOut::Kv(result)
    }

    fn apply_reconfigure(&mut self, config: &Config) -> ShardKvOut {
        if !self.accepts_config(config) {
            return ShardKvOut::Ignored;
        }
        self.prev_config = std::mem::replace(&mut self.config, config.clone());
        for s in 0..NSHARDS {
            let owned = self.owns(s);
            let from = self.prev_config.shards[s];
            let to = self.config.shards[s];
            let shard = &mut self.shards[s];
            // From a settled state only Serving and Absent occur; the other cases arise when a
            // planted bug abandons a change in progress.
            let held =
                matches!(shard.status, ShardStatus::Serving | ShardStatus::AwaitingDelete | ShardStatus::Offering);
            shard.status = match (owned, held) {
                (true, true) => ShardStatus::Serving,
                // Nobody held it before (configuration 0, or all groups had left): start empty.
                // (`from == gid` without the data happens only when a planted bug abandoned
                // the pull: the data is lost.)
                (true, false) if from == 0 || from == self.gid => {
                    shard.data = ShardData::default();
                    ShardStatus::Serving
                }
                (true, false) => ShardStatus::Pulling,
                // Nobody will ever pull it: drop it (see "A configuration with no groups").
                (false, true) if to == 0 || self.bugs.delete_before_handoff => {
                    shard.data = ShardData::default();
                    ShardStatus::Absent
                }
                (false, true) => ShardStatus::Offering,
                (false, false) => {
                    shard.data = ShardData::default();
                    ShardStatus::Absent
                }
            };
        }
        ShardKvOut::Reconfigured { num: self.config.num }
    }

    fn apply_install(&mut self, config_num: u64, shards: &BTreeMap<usize, ShardData>) -> ShardKvOut {
        if config_num != self.config.num {
            return ShardKvOut::Ignored;
        }
        let mut installed = Vec::new();
        for (&s, data) in shards {
            if s < NSHARDS && self.shards[s].status == ShardStatus::Pulling {
                let mut data = data.clone();
                if self.bugs.forget_dup_table {
                    data.dup.clear();
                }
                self.shards[s] = Shard { status: ShardStatus::AwaitingDelete, data };
                installed.push(s);
            }
        }
        if installed.is_empty() {
            ShardKvOut::Ignored
        } else {
            ShardKvOut::Installed { shards: installed }
        }
    }

    fn apply_delete(&mut self, config_num: u64, shards: &[usize]) -> ShardKvOut {
        if self.config.num < config_num {
            return ShardKvOut::DeleteNotReady;
        }
        // Past that configuration, the shards were deleted before this group moved on.
        if self.config.num == config_num {
            for &s in shards.iter().filter(|&&s| s < NSHARDS) {
                if self.shards[s].status == ShardStatus::Offering {
                    self.shards[s] = Shard::default();
                }
            }
        }
        ShardKvOut::Deleted
    }

    fn apply_confirm(&mut self, config_num: u64, shards: &[usize]) -> ShardKvOut {
        if config_num != self.config.num {
            return ShardKvOut::Ignored;
        }
        let mut confirmed = Vec::new();
        for &s in shards.iter().filter(|&&s| s < NSHARDS) {
            if self.shards[s].status == ShardStatus::AwaitingDelete {
                self.shards[s].status = ShardStatus::Serving;
                confirmed.push(s);
            }
        }
        if confirmed.is_empty() {
            ShardKvOut::Ignored
        } else {
            ShardKvOut::Confirmed { shards: confirmed }
        }
    }

    /// The core's invariants, checked after every operation (they hold with any bug planted).
    fn check_invariants(&self) {
        assert_eq!(self.shards.len(), NSHARDS);
        let (num, prev) = (self.config.num, self.prev_config.num);
        assert!(num > prev || num == 0, "configuration {num} follows {prev}");
        assert!(
            self.bugs.config_out_of_order || num == 0 || num == prev + 1,
            "configuration {num} skipped after {prev}"
        );
        for (s, shard) in self.shards.iter().enumerate() {
            let from = self.prev_config.shards[s];
            match shard.status {
                ShardStatus::Absent => assert!(shard.data.is_empty(), "absent shard {s} holds data"),
                ShardStatus::Serving => assert!(self.owns(s), "serving shard {s} not ours"),
                ShardStatus::Pulling | ShardStatus::AwaitingDelete => {
                    assert!(self.owns(s), "shard {s} {:?} but not ours", shard.status);
                    assert!(from != 0 && from != self.gid, "shard {s} {:?} from group {from}", shard.status);
                    assert!(
                        shard.status != ShardStatus::Pulling || self.bugs.serve_before_arrival || shard.data.is_empty(),
                        "shard {s} holds data before it arrived"
                    );
                }
                ShardStatus::Offering => assert!(!self.owns(s), "offering shard {s} that is ours"),
            }
        }
    }
}

impl StateMachine for ShardKv {
    type Op = ShardKvOp;
    type Out = ShardKvOut;

    fn apply(&mut self, op: &ShardKvOp) -> ShardKvOut {
        let out = match op {
            ShardKvOp::Client { client, seq, op } => self.apply_client(*client, *seq, op),
            ShardKvOp::Reconfigure { config } => self.apply_reconfigure(config),
            ShardKvOp::InstallShards { config_num, shards } => self.apply_install(*config_num, shards),
            ShardKvOp::DeleteShards { config_num, shards } => self.apply_delete(*config_num, shards),
            ShardKvOp::ConfirmDeleted { config_num, shards } => self.apply_confirm(*config_num, shards),
        };
        self.check_invariants();
        out
    }

    fn read(&self, op: &ShardKvOp) -> Option<ShardKvOut> {
        match op {
            ShardKvOp::Client { op: KvOp::Get { key }, .. } => Some(if self.serves(key2shard(key)) {
                let value = self.shards[key2shard(key)].data.kv.data.get(key).cloned().unwrap_or_default();
                ShardKvOut::Kv(KvResult::Value(value))
            } else {
                ShardKvOut::WrongGroup
            }),
            _ => None,
        }
    }
}
