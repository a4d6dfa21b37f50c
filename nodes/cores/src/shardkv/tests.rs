//! Unit and property tests of the sharded key/value group core: groups and a controller wired
//! together by hand (one replica per group: the log is not the subject here), each protocol
//! step taken explicitly, and each planted bug's effect shown.

use super::*;
use crate::kv::value_digest;
use crate::shardctrler::ShardCtrler;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeSet;

/// A controller and some groups, with the shell's duties as explicit steps.
struct World {
    ctrl: ShardCtrler,
    groups: BTreeMap<u64, ShardKv>,
}

impl World {
    fn new(gids: &[u64], bugs: ShardKvBugs) -> World {
        World { ctrl: ShardCtrler::new(), groups: gids.iter().map(|&g| (g, ShardKv::new(g, bugs))).collect() }
    }

    fn join(&mut self, gids: &[u64]) {
        let servers = gids.iter().map(|&g| (g, vec![format!("s{g}-0"), format!("s{g}-1")])).collect();
        assert_eq!(self.ctrl.apply(&CtrlerOp::Join { servers }), crate::shardctrler::CtrlerOut::Ok);
    }

    fn leave(&mut self, gids: &[u64]) {
        let gids = gids.iter().copied().collect();
        assert_eq!(self.ctrl.apply(&CtrlerOp::Leave { gids }), crate::shardctrler::CtrlerOut::Ok);
    }

    fn kv(&self, gid: u64) -> &ShardKv {
        &self.groups[&gid]
    }

    fn apply(&mut self, gid: u64, op: ShardKvOp) -> ShardKvOut {
        self.groups.get_mut(&gid).unwrap().apply(&op)
    }

    /// The shell's poll: ask the controller what the group wants, propose what it accepts.
    fn poll(&mut self, gid: u64) -> bool {
        let Some(CtrlerOp::Query { num }) = self.kv(gid).config_to_query() else { return false };
        let config = self.ctrl.query(num).clone();
        match self.kv(gid).reconfigure_op(&config) {
            Some(op) => matches!(self.apply(gid, op), ShardKvOut::Reconfigured { .. }),
            None => false,
        }
    }

    /// The shell's pulls: ask each previous owner, propose what arrives.
    fn pull(&mut self, gid: u64) -> bool {
        let mut progress = false;
        for task in self.kv(gid).pull_tasks() {
            let Some(owner) = self.groups.get(&task.gid) else { continue };
            let reply = owner.answer_pull(&task.pull_args());
            if let Some(op) = self.kv(gid).install_op(&reply) {
                progress |= matches!(self.apply(gid, op), ShardKvOut::Installed { .. });
            }
        }
        progress
    }

    /// The shell's garbage collection: have each previous owner delete through its log, then
    /// confirm through ours.
    fn collect(&mut self, gid: u64) -> bool {
        let mut progress = false;
        for task in self.kv(gid).delete_tasks() {
            let args = task.delete_args();
            if !self.groups.contains_key(&task.gid) {
                continue;
            }
            let out = self.apply(task.gid, ShardKv::delete_op(&args));
            let reply = ShardKv::delete_reply(&out).expect("a delete answers");
            if let Some(op) = self.kv(gid).confirm_op(&args, &reply) {
                progress |= matches!(self.apply(gid, op), ShardKvOut::Confirmed { .. });
            }
        }
        progress
    }

    /// Every group does everything it can until nothing changes, skipping `down` groups.
    fn settle_except(&mut self, down: &[u64]) {
        for _ in 0..100 {
            let gids: Vec<u64> = self.groups.keys().copied().filter(|g| !down.contains(g)).collect();
            let mut progress = false;
            for g in gids {
                progress |= self.poll(g);
                progress |= self.pull(g);
                progress |= self.collect(g);
            }
            if !progress {
                return;
            }
        }
        panic!("the world did not settle");
    }

    fn settle(&mut self) {
        self.settle_except(&[]);
    }

    /// A client operation sent to the group the latest configuration names.
    fn call(&mut self, client: u64, seq: u64, op: KvOp) -> ShardKvOut {
        let key = key_of(&op).to_string();
        let gid = route(self.ctrl.latest(), &key).expect("some group serves it").0;
        self.apply(gid, ShardKvOp::Client { client, seq, op })
    }
}

fn key_of(op: &KvOp) -> &str {
    match op {
        KvOp::Get { key } | KvOp::Put { key, .. } | KvOp::Append { key, .. } => key,
    }
}

fn get(key: &str) -> KvOp {
    KvOp::Get { key: key.into() }
}

fn put(key: &str, value: &str) -> KvOp {
    KvOp::Put { key: key.into(), value: value.into() }
}

fn append(key: &str, value: &str) -> KvOp {
    KvOp::Append { key: key.into(), value: value.into() }
}

fn value(v: &str) -> ShardKvOut {
    ShardKvOut::Kv(KvResult::Value(v.into()))
}

fn client(client: u64, seq: u64, op: KvOp) -> ShardKvOp {
    ShardKvOp::Client { client, seq, op }
}

/// The shards the configuration gives to `gid`.
fn shards_of(config: &Config, gid: u64) -> Vec<usize> {
    (0..NSHARDS).filter(|&s| config.shards[s] == gid).collect()
}

/// A key of `shard` ("0".."9" cover shards 8, 9, 0, …, 7).
fn key_in(shard: usize) -> String {
    ((shard + 2) % NSHARDS).to_string()
}

#[test]
fn key2shard_is_the_courses() {
    let shards: Vec<usize> = (0..10).map(|k| key2shard(&k.to_string())).collect();
    assert_eq!(shards, vec![8, 9, 0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(key2shard(""), 0);
    assert_eq!(key2shard("17"), key2shard("1"), "multi-digit keys share their first digit's shard");
    for s in 0..NSHARDS {
        assert_eq!(key2shard(&key_in(s)), s);
    }
}

#[test]
fn a_first_owner_serves_at_once_and_other_groups_answer_wrong_group() {
    let mut w = World::new(&[100, 101], ShardKvBugs::default());
    w.join(&[100]);
    assert_eq!(w.kv(100).config_to_query(), Some(CtrlerOp::Query { num: Some(1) }));
    assert!(w.poll(100));
    // Every shard came from gid 0: nothing to pull, served at once.
    assert!(w.kv(100).pull_tasks().is_empty() && w.kv(100).settled());
    assert_eq!(
        w.call(1, 1, put("a", "x")),
        ShardKvOut::Kv(KvResult::Wrote { prev_len: 0, prev_digest: value_digest("") })
    );
    assert_eq!(w.call(1, 2, get("a")), value("x"));
    assert_eq!(w.apply(101, client(1, 3, get("a"))), ShardKvOut::WrongGroup, "group 101 owns nothing");
    assert_eq!(ShardKv::default().gid(), 0);
    assert_eq!(ShardKv::default().views().1, vec![ShardView::Absent; NSHARDS]);
    assert_eq!(w.kv(100).read(&client(9, 9, get("a"))), Some(value("x")));
    assert_eq!(w.kv(101).read(&client(9, 9, get("a"))), Some(ShardKvOut::WrongGroup));
}

#[test]
fn a_join_hands_shards_over_through_both_logs() {
    let mut w = World::new(&[100, 101], ShardKvBugs::default());
    w.join(&[100]);
    w.settle();
    for k in 0..10 {
        w.call(1, k + 1, put(&k.to_string(), &format!("v{k}")));
    }
    w.join(&[101]);
    let moving = shards_of(w.ctrl.latest(), 101);
    assert_eq!(moving.len(), 5);
    // Old owner first: it freezes the moving shards and stops answering them.
    assert!(w.poll(100));
    assert_eq!(w.kv(100).shard(moving[0]).status, ShardStatus::Offering);
    assert_eq!(w.apply(100, client(2, 1, get(&key_in(moving[0])))), ShardKvOut::WrongGroup);
    assert_eq!(w.kv(100).config_to_query(), None, "no next configuration while handing over");
    // New owner: owns them but has no data yet, so it answers "wrong group" too.
    assert!(w.poll(101));
    assert_eq!(w.kv(101).shard(moving[0]).status, ShardStatus::Pulling);
    assert_eq!(w.apply(101, client(2, 1, get(&key_in(moving[0])))), ShardKvOut::WrongGroup);
    let tasks = w.kv(101).pull_tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].gid, tasks[0].config_num, &tasks[0].shards), (100, 2, &moving));
    assert_eq!(tasks[0].servers, vec!["s100-0".to_string(), "s100-1".to_string()]);
    // Pull, install: served at once, before the old owner deleted anything.
    assert!(w.pull(101));
    assert_eq!(w.kv(101).shard(moving[0]).status, ShardStatus::AwaitingDelete);
    let key = key_in(moving[0]);
    assert_eq!(w.apply(101, client(2, 1, get(&key))), value(&format!("v{key}")));
    assert!(!w.kv(100).shard(moving[0]).data.is_empty(), "not deleted yet");
    // Delete at the old owner through its log, confirm through ours.
    assert!(w.collect(101));
    for &s in &moving {
        assert_eq!(w.kv(100).shard(s), &Shard::default(), "challenge 1: the old owner keeps nothing");
        assert_eq!(w.kv(101).shard(s).status, ShardStatus::Serving);
    }
    assert!(w.kv(100).settled() && w.kv(101).settled());
    for k in 0..10 {
        assert_eq!(w.call(3, k + 1, get(&k.to_string())), value(&format!("v{k}")));
    }
}

#[test]
fn exactly_once_survives_migration_unless_the_table_is_forgotten() {
    for bugs in [ShardKvBugs::default(), ShardKvBugs::from_name("forget-dup-table").unwrap()] {
        let mut w = World::new(&[100, 101], bugs);
        w.join(&[100]);
        w.settle();
        w.join(&[101]);
        let key = key_in(shards_of(w.ctrl.latest(), 101)[0]);
        // Client 7's append takes effect at 100, but the reply is lost...
        let first = w.apply(100, client(7, 1, append(&key, "x")));
        // ...the shard moves to 101...
        w.settle();
        // ...and the retry reaches 100 (wrong group) and then 101.
        assert_eq!(w.apply(100, client(7, 1, append(&key, "x"))), ShardKvOut::WrongGroup);
        let retry = w.apply(101, client(7, 1, append(&key, "x")));
        let now = w.call(8, 1, get(&key));
        if bugs.forget_dup_table {
            assert_eq!(now, value("xx"), "the planted bug applies the retry twice");
            assert_ne!(retry, first);
        } else {
            assert_eq!(retry, first, "the retry gets the first answer");
            assert_eq!(now, value("x"));
            // A stale duplicate of an older request changes nothing either.
            w.apply(101, client(7, 2, append(&key, "y")));
            assert_eq!(w.apply(101, client(7, 1, append(&key, "x"))), ShardKvOut::Ignored);
            assert_eq!(w.call(8, 2, get(&key)), value("xy"));
        }
    }
}

#[test]
fn wrong_group_answers_leave_no_record() {
    let mut w = World::new(&[100, 101], ShardKvBugs::default());
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    w.poll(100);
    w.poll(101);
    let key = key_in(shards_of(w.ctrl.latest(), 101)[0]);
    // Refused at 101 while pulling: no record, so the same request takes effect after arrival.
    assert_eq!(w.apply(101, client(5, 1, put(&key, "p"))), ShardKvOut::WrongGroup);
    w.settle();
    assert!(matches!(w.apply(101, client(5, 1, put(&key, "p"))), ShardKvOut::Kv(KvResult::Wrote { .. })));
    assert_eq!(w.call(6, 1, get(&key)), value("p"));
}

#[test]
fn configurations_are_taken_one_at_a_time_in_order() {
    let mut w = World::new(&[100, 101, 102], ShardKvBugs::default());
    w.join(&[100]);
    w.join(&[101]);
    w.join(&[102]);
    let (c1, c2, c3) = (w.ctrl.query(Some(1)).clone(), w.ctrl.query(Some(2)).clone(), w.ctrl.query(Some(3)).clone());
    assert_eq!(w.kv(100).reconfigure_op(&c2), None, "no skipping");
    assert_eq!(w.apply(100, ShardKvOp::Reconfigure { config: c2.clone() }), ShardKvOut::Ignored);
    assert_eq!(w.apply(100, ShardKvOp::Reconfigure { config: c1.clone() }), ShardKvOut::Reconfigured { num: 1 });
    assert_eq!(w.apply(100, ShardKvOp::Reconfigure { config: c1.clone() }), ShardKvOut::Ignored, "a duplicate");
    assert_eq!(w.apply(100, ShardKvOp::Reconfigure { config: c2.clone() }), ShardKvOut::Reconfigured { num: 2 });
    assert!(!w.kv(100).settled());
    assert_eq!(w.kv(100).reconfigure_op(&c3), None, "not while a change is in progress");
    assert_eq!(w.apply(100, ShardKvOp::Reconfigure { config: c3.clone() }), ShardKvOut::Ignored);
    let mut malformed = c3.clone();
    malformed.shards[0] = 999;
    w.settle();
    assert_eq!(w.kv(100).reconfigure_op(&malformed), None, "a configuration naming an absent group");
    assert_eq!(w.kv(100).config().num, 3);
}

#[test]
fn planted_config_out_of_order_skips_and_abandons_a_change() {
    let bugs = ShardKvBugs::from_name("config-out-of-order").unwrap();
    let mut w = World::new(&[100, 101], bugs);
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    w.leave(&[101]);
    // The buggy group asks for the latest and jumps from 1 to 3.
    assert_eq!(w.kv(100).config_to_query(), Some(CtrlerOp::Query { num: None }));
    let c3 = w.ctrl.latest().clone();
    assert!(w.kv(100).reconfigure_op(&c3).is_some());
    w.apply(100, ShardKvOp::Reconfigure { config: c3 });
    assert_eq!((w.kv(100).prev_config().num, w.kv(100).config().num), (1, 3));
    // A group that takes 3 while still pulling for 2 abandons the pull and serves the shard
    // empty: the value written before the change is lost.
    let mut w = World::new(&[100, 101, 102], bugs);
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    let moved = shards_of(w.ctrl.latest(), 101)[0];
    let key = key_in(moved);
    assert!(matches!(w.apply(100, client(1, 1, put(&key, "data"))), ShardKvOut::Kv(_)));
    w.poll(100);
    w.poll(101);
    assert_eq!(w.kv(101).shard(moved).status, ShardStatus::Pulling);
    w.join(&[102]);
    assert_eq!(w.ctrl.latest().shards[moved], 101, "101 keeps its lowest shard in 3");
    assert_eq!(w.kv(101).config_to_query(), Some(CtrlerOp::Query { num: None }), "polls while unsettled");
    assert!(w.poll(101));
    assert_eq!(w.kv(101).config().num, 3);
    assert_eq!(w.apply(101, client(2, 1, get(&key))), value(""), "the data was lost");
}

#[test]
fn the_old_owner_deletes_only_through_its_log_and_only_what_it_offers() {
    let mut w = World::new(&[100, 101], ShardKvBugs::default());
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    let moving = shards_of(w.ctrl.latest(), 101);
    // A delete for a configuration the old owner has not reached is refused...
    assert_eq!(
        w.apply(100, ShardKvOp::DeleteShards { config_num: 2, shards: moving.clone() }),
        ShardKvOut::DeleteNotReady
    );
    assert_eq!(ShardKv::delete_reply(&ShardKvOut::DeleteNotReady), Some(DeleteReply::NotReady));
    assert_eq!(ShardKv::delete_reply(&ShardKvOut::Ignored), None);
    w.poll(100);
    // ...and a pull before it took the configuration is told to wait.
    assert_eq!(w.kv(100).answer_pull(&PullArgs { config_num: 3, shards: moving.clone() }), PullReply::NotReady);
    // Shards it keeps are never deleted by a delete request.
    let kept = shards_of(w.ctrl.latest(), 100)[0];
    w.apply(100, ShardKvOp::DeleteShards { config_num: 2, shards: vec![kept] });
    assert_eq!(w.kv(100).shard(kept).status, ShardStatus::Serving);
    w.settle();
    // Deletes are idempotent, also once the old owner moved on; a late pull learns it is stale.
    assert_eq!(w.apply(100, ShardKvOp::DeleteShards { config_num: 2, shards: moving.clone() }), ShardKvOut::Deleted);
    w.join(&[102]);
    w.settle();
    assert_eq!(w.apply(100, ShardKvOp::DeleteShards { config_num: 2, shards: moving.clone() }), ShardKvOut::Deleted);
    assert_eq!(w.kv(100).answer_pull(&PullArgs { config_num: 2, shards: moving.clone() }), PullReply::Gone);
    // Late installs and confirms for an old configuration change nothing.
    let stale = ShardKvOp::InstallShards { config_num: 2, shards: BTreeMap::from([(moving[0], ShardData::default())]) };
    assert_eq!(w.apply(101, stale), ShardKvOut::Ignored);
    assert_eq!(w.apply(101, ShardKvOp::ConfirmDeleted { config_num: 2, shards: moving.clone() }), ShardKvOut::Ignored);
    let args = DeleteArgs { config_num: 2, shards: moving };
    assert_eq!(w.kv(101).confirm_op(&args, &DeleteReply::Done), None);
}

#[test]
fn pulls_carry_the_duplicate_tables_and_only_offered_shards() {
    let mut w = World::new(&[100, 101], ShardKvBugs::default());
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    let moving = shards_of(w.ctrl.latest(), 101);
    w.apply(100, client(4, 1, append(&key_in(moving[0]), "a")));
    w.poll(100);
    let kept = shards_of(w.ctrl.latest(), 100)[0];
    let PullReply::Data { config_num, shards } =
        w.kv(100).answer_pull(&PullArgs { config_num: 2, shards: vec![moving[0], kept, 99] })
    else {
        panic!("expected data")
    };
    assert_eq!(config_num, 2);
    assert_eq!(shards.keys().copied().collect::<Vec<_>>(), vec![moving[0]], "only what it offers");
    assert_eq!(shards[&moving[0]].dup[&4].seq, 1);
    // An answer for a configuration the puller is not at installs nothing.
    assert_eq!(w.kv(101).install_op(&PullReply::Data { config_num: 2, shards: shards.clone() }), None);
    assert_eq!(w.kv(101).install_op(&PullReply::NotReady), None);
    w.poll(101);
    assert!(w.kv(101).install_op(&PullReply::Data { config_num: 2, shards }).is_some());
}

#[test]
fn challenge_2_serves_unaffected_and_arrived_shards_while_a_change_is_stuck() {
    // TestChallenge2Partial's shape: 100, 101, 102 join; 100 dies; 100 and 102 leave, so 101
    // must pull from dead 100 and from live 102.
    let mut w = World::new(&[100, 101, 102], ShardKvBugs::default());
    w.join(&[100, 101, 102]);
    w.settle();
    for s in 0..NSHARDS {
        w.call(1, s as u64 + 1, put(&key_in(s), "100"));
    }
    let before = w.ctrl.latest().clone();
    w.leave(&[100, 102]);
    w.settle_except(&[100]);
    let k = w.kv(101);
    assert_eq!(k.config().num, 2);
    assert!(!k.settled(), "the shards of dead 100 never arrive");
    for s in 0..NSHARDS {
        let served = k.serves(s);
        match before.shards[s] {
            101 => assert!(served, "shard {s}: owned in both configurations, served throughout"),
            102 => assert!(served, "shard {s}: arrived from live 102, served before the change completes"),
            _ => assert!(!served, "shard {s}: still on its way from dead 100"),
        }
    }
    for s in (0..NSHARDS).filter(|&s| before.shards[s] != 100) {
        assert_eq!(
            w.apply(101, client(2, s as u64 + 1, append(&key_in(s), "-2"))),
            ShardKvOut::Kv(KvResult::Wrote { prev_len: 3, prev_digest: value_digest("100") })
        );
    }
}

#[test]
fn when_every_group_leaves_the_shards_are_dropped_and_start_empty() {
    let mut w = World::new(&[100], ShardKvBugs::default());
    w.join(&[100]);
    w.settle();
    w.call(1, 1, put("k", "v"));
    w.leave(&[100]);
    w.settle();
    assert!(w.kv(100).settled(), "nobody will pull: nothing is held back");
    assert!((0..NSHARDS).all(|s| w.kv(100).shard(s) == &Shard::default()));
    w.join(&[100]);
    w.settle();
    assert_eq!(w.call(1, 2, get("k")), value(""));
}

#[test]
fn planted_serve_during_handoff_answers_from_both_owners_and_loses_the_write() {
    let mut w = World::new(&[100, 101], ShardKvBugs::from_name("serve-during-handoff").unwrap());
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    let key = key_in(shards_of(w.ctrl.latest(), 101)[0]);
    w.poll(100);
    w.poll(101);
    w.pull(101);
    // Both groups answer the key now.
    assert_eq!(w.kv(100).view(key2shard(&key)), ShardView::Serving);
    assert!(w.kv(100).serves(key2shard(&key)) && w.kv(101).serves(key2shard(&key)));
    // A write at the old owner after the handoff is acknowledged, then lost.
    assert!(matches!(w.apply(100, client(1, 1, put(&key, "lost"))), ShardKvOut::Kv(_)));
    w.settle();
    assert_eq!(w.call(2, 1, get(&key)), value(""));
}

#[test]
fn planted_delete_before_handoff_gives_the_new_owner_an_empty_shard() {
    let mut w = World::new(&[100, 101], ShardKvBugs::from_name("delete-before-handoff").unwrap());
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    let key = key_in(shards_of(w.ctrl.latest(), 101)[0]);
    w.call(1, 1, put(&key, "v"));
    w.poll(100);
    assert_eq!(w.kv(100).shard(key2shard(&key)), &Shard::default(), "deleted at the configuration change");
    assert_eq!(w.kv(100).view(key2shard(&key)), ShardView::Absent);
    w.settle();
    assert_eq!(w.call(2, 1, get(&key)), value(""), "the value is gone");
}

#[test]
fn planted_serve_before_arrival_answers_from_an_empty_shard() {
    let mut w = World::new(&[100, 101], ShardKvBugs::from_name("serve-before-arrival").unwrap());
    w.join(&[100]);
    w.settle();
    w.join(&[101]);
    let s = shards_of(w.ctrl.latest(), 101)[0];
    let key = key_in(s);
    w.apply(100, client(1, 1, put(&key, "v")));
    w.poll(100);
    w.poll(101);
    assert_eq!(w.kv(101).shard(s).status, ShardStatus::Pulling);
    assert_eq!(w.kv(101).view(s), ShardView::Serving);
    assert_eq!(w.apply(101, client(2, 1, get(&key))), value(""), "a stale read");
    w.apply(101, client(2, 2, append(&key, "+")));
    w.settle();
    assert_eq!(w.call(2, 3, get(&key)), value("v"), "the append made before arrival is lost");
}

#[test]
fn bug_names_round_trip() {
    let mut seen = BTreeSet::new();
    for (name, description) in ShardKvBugs::ALL {
        let bugs = ShardKvBugs::from_name(name).unwrap();
        assert_ne!(bugs, ShardKvBugs::default(), "{name}");
        assert!(seen.insert(format!("{bugs:?}")), "{name} switches a bug of its own");
        assert!(!description.is_empty());
    }
    assert_eq!(ShardKvBugs::from_name("nope"), None);
}

#[test]
fn the_state_survives_a_snapshot_round_trip() {
    let mut w = World::new(&[100, 101], ShardKvBugs::from_name("forget-dup-table").unwrap());
    w.join(&[100]);
    w.settle();
    w.call(1, 1, put("a", "b"));
    w.join(&[101]);
    w.poll(100);
    let bytes = postcard::to_allocvec(w.kv(100)).unwrap();
    let back: ShardKv = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(&back, w.kv(100));
    assert_eq!(back.bugs(), w.kv(100).bugs(), "planted bugs survive a restore");
}

// ---------------------------------------------------------------------------------------
// Property test: random configuration changes, client operations with lost replies and
// retries, and protocol steps in random order, against a sequential model.

#[derive(Clone, Debug)]
enum Step {
    Join(u64),
    Leave(u64),
    Move(usize, u64),
    /// Group's shell duty: 0 poll, 1 pull, 2 collect.
    Shell(u64, u8),
    /// Client `c` sends (or retries) its request; `lose` drops the reply.
    Client {
        c: u64,
        key: u8,
        kind: u8,
        lose: bool,
    },
}

const GIDS: [u64; 3] = [100, 101, 102];

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let gid = prop::sample::select(GIDS.to_vec());
    let step = prop_oneof![
        1 => gid.clone().prop_map(Step::Join),
        1 => gid.clone().prop_map(Step::Leave),
        1 => (0..NSHARDS, gid.clone()).prop_map(|(s, g)| Step::Move(s, g)),
        16 => (gid, 0u8..3).prop_map(|(g, d)| Step::Shell(g, d)),
        6 => (0u64..3, 0u8..12, 0u8..3, any::<bool>()).prop_map(|(c, key, kind, lose)| Step::Client { c, key, kind, lose }),
    ];
    prop::collection::vec(step, 1..200)
}

/// A client's request in flight: its number and operation, and the answer once known.
struct Pending {
    seq: u64,
    op: KvOp,
    answer: Option<ShardKvOut>,
}

/// What one random run exercised.
#[derive(Debug, Default)]
struct Stats {
    changes: usize,
    installs: usize,
    deletes: usize,
    answered: usize,
    wrong_group: usize,
    retried_writes: usize,
}

/// One random run: every answered client operation matches a sequential store applied at the
/// moment it took effect, retries included (exactly once); at every moment each shard is
/// served by at most one group, and only by its owner in that group's configuration; after
/// settling, every group is at the latest configuration, old owners keep nothing, and every
/// key reads its model value.
fn random_run(steps: &[Step], bugs: ShardKvBugs) -> Result<Stats, TestCaseError> {
    let mut w = World::new(&GIDS, bugs);
    let mut stats = Stats::default();
    w.join(&[100]);
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
    let mut next_seq: BTreeMap<u64, u64> = BTreeMap::new();
    for step in steps.iter().cloned() {
        match step {
            Step::Join(g) => {
                if !w.ctrl.latest().groups.contains_key(&g) {
                    w.join(&[g]);
                    stats.changes += 1;
                }
            }
            Step::Leave(g) => {
                // Keep one group: data does not survive a configuration without groups.
                let latest = w.ctrl.latest();
                if latest.groups.contains_key(&g) && latest.groups.len() > 1 {
                    w.leave(&[g]);
                    stats.changes += 1;
                }
            }
            Step::Move(s, g) => {
                if w.ctrl.latest().groups.contains_key(&g) {
                    w.ctrl.apply(&CtrlerOp::Move { shard: s, gid: g });
                }
            }
            Step::Shell(g, 0) => {
                w.poll(g);
            }
            Step::Shell(g, 1) => stats.installs += usize::from(w.pull(g)),
            Step::Shell(g, _) => stats.deletes += usize::from(w.collect(g)),
            Step::Client { c, key, kind, lose } => {
                let p = pending.entry(c).or_insert_with(|| {
                    let seq = next_seq.entry(c).or_insert(0);
                    *seq += 1;
                    let key = key.to_string();
                    let op = match kind {
                        0 => get(&key),
                        1 => put(&key, &format!("p{c}.{seq}")),
                        _ => append(&key, &format!("+{c}.{seq}")),
                    };
                    Pending { seq: *seq, op, answer: None }
                });
                // Send to the group the clerk's (latest) configuration names.
                let gid = route(w.ctrl.latest(), key_of(&p.op)).unwrap().0;
                let out = w.apply(gid, client(c, p.seq, p.op.clone()));
                match out {
                    ShardKvOut::WrongGroup => stats.wrong_group += 1,
                    ShardKvOut::Kv(result) => {
                        match &p.answer {
                            // A retry of a write that already took effect: same answer.
                            Some(first) if !matches!(p.op, KvOp::Get { .. }) => {
                                stats.retried_writes += 1;
                                prop_assert_eq!(first, &ShardKvOut::Kv(result.clone()));
                            }
                            _ => {
                                let expected = {
                                    let mut m = crate::kv::Kv { data: std::mem::take(&mut model) };
                                    let r = m.apply(&p.op);
                                    model = m.data;
                                    r
                                };
                                if p.answer.is_some() {
                                    // A retried Get runs again; the model must not count it twice.
                                    let is_get = matches!(p.op, KvOp::Get { .. });
                                    prop_assert!(is_get);
                                }
                                prop_assert_eq!(&result, &expected, "{:?}", p.op);
                                p.answer = Some(ShardKvOut::Kv(result));
                                stats.answered += 1;
                            }
                        }
                        if !lose {
                            pending.remove(&c);
                        }
                    }
                    other => prop_assert!(false, "client answered {:?}", other),
                }
            }
        }
        // At every moment: at most one group serves each shard, and only its owner.
        for s in 0..NSHARDS {
            let servers: Vec<u64> = GIDS.iter().copied().filter(|g| w.kv(*g).serves(s)).collect();
            prop_assert!(servers.len() <= 1, "shard {} served by {:?}", s, servers);
            for g in servers {
                prop_assert_eq!(w.kv(g).config().shards[s], g);
            }
        }
    }
    // Everything settles; every group reaches the latest configuration; only owners hold
    // data; every key reads its model value.
    w.settle();
    let latest = w.ctrl.latest().clone();
    for g in GIDS {
        let k = w.kv(g);
        prop_assert!(k.settled());
        prop_assert_eq!(k.config().num, latest.num);
        for s in (0..NSHARDS).filter(|&s| latest.shards[s] != g) {
            prop_assert!(k.shard(s).data.is_empty(), "group {} keeps shard {}", g, s);
        }
    }
    for key in 0..12u8 {
        let key = key.to_string();
        let gid = route(&latest, &key).unwrap().0;
        let out = w.apply(gid, client(99, 1, get(&key)));
        prop_assert_eq!(out, value(model.get(&key).map(String::as_str).unwrap_or("")), "key {}", key);
    }
    Ok(stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_runs_match_a_sequential_store(steps in steps()) {
        random_run(&steps, ShardKvBugs::default())?;
    }
}

#[test]
fn random_runs_exercise_the_protocol() {
    // The property above is only as good as what its runs reach: sum what 200 of them did.
    use proptest::strategy::ValueTree;
    let mut runner = TestRunner::deterministic();
    let mut total = Stats::default();
    for _ in 0..200 {
        let steps = steps().new_tree(&mut runner).unwrap().current();
        let s = random_run(&steps, ShardKvBugs::default()).unwrap();
        total.changes += s.changes;
        total.installs += s.installs;
        total.deletes += s.deletes;
        total.answered += s.answered;
        total.wrong_group += s.wrong_group;
        total.retried_writes += s.retried_writes;
    }
    assert!(total.changes > 200 && total.installs > 100 && total.deletes > 100, "{total:?}");
    assert!(total.answered > 1000 && total.wrong_group > 100 && total.retried_writes > 100, "{total:?}");
}

#[test]
fn random_runs_catch_every_planted_bug() {
    for (name, _) in ShardKvBugs::ALL {
        let bugs = ShardKvBugs::from_name(name).unwrap();
        let config = ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() };
        let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let caught = runner.run(&steps(), |steps| random_run(&steps, bugs).map(|_| ()));
        assert!(caught.is_err(), "planted bug {name} passed 2000 random runs");
    }
}
