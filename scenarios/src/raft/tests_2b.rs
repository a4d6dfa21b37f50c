//! Part 2B, log replication: the course's ten tests.

use super::tester::{ensure, int_cmd, show, Cluster, Cmd};
use super::{targeted, ELECTION};
use crate::engine::TestEngine;
use crate::registry::{Opts, Scenario};
use nodes::replica::Engine;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sim::Failure;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub fn scenarios<E: TestEngine>() -> Vec<Scenario> {
    vec![
        targeted(
            "raft::basic_agree_2b",
            "3 peers agree on 3 commands, at indexes 1, 2, 3; nothing commits before its Start",
            |o| Box::pin(basic_agree::<E>(o)),
        ),
        targeted(
            "raft::rpc_bytes_2b",
            "ten 5000-byte commands cost at most servers x their size + 50 000 bytes on the wire",
            |o| Box::pin(rpc_bytes::<E>(o)),
        ),
        targeted(
            "raft::follower_failure_2b",
            "followers fail one by one: two of three still agree; a lone leader commits nothing",
            |o| Box::pin(follower_failure::<E>(o)),
        ),
        targeted(
            "raft::leader_failure_2b",
            "leaders fail one by one: two of three still agree; a lone server commits nothing",
            |o| Box::pin(leader_failure::<E>(o)),
        ),
        targeted(
            "raft::fail_agree_2b",
            "a follower is disconnected, misses four commands, rejoins and catches up",
            |o| Box::pin(fail_agree::<E>(o)),
        ),
        targeted(
            "raft::fail_no_agree_2b",
            "5 peers, 3 followers gone: no commit; after healing the next index is 2 or 3",
            |o| Box::pin(fail_no_agree::<E>(o)),
        ),
        targeted("raft::concurrent_starts_2b", "5 concurrent Starts in one term all commit (at most 5 tries)", |o| {
            Box::pin(concurrent_starts::<E>(o))
        }),
        targeted(
            "raft::rejoin_2b",
            "a partitioned leader with uncommitted entries rejoins; its stale entries are replaced",
            |o| Box::pin(rejoin::<E>(o)),
        ),
        targeted(
            "raft::backup_2b",
            "5 peers, 50-entry divergent logs on both sides: the leader backs up over them quickly",
            |o| Box::pin(backup::<E>(o)),
        ),
        targeted(
            "raft::count_2b",
            "RPC counts: <= 30 to elect, <= 42 for an 11-entry batch, <= 60 per idle second",
            |o| Box::pin(count::<E>(o)),
        ),
    ]
}

/// Fails unless a Start the test relies on was accepted.
fn accepted(ok: bool, who: &str) -> Result<(), Failure> {
    ensure(ok, "raft::start", || format!("{who} rejected Start()"))
}

/// Fails if any server applied `index`: the test made sure no majority could have stored it.
fn not_committed<E: Engine>(cfg: &Cluster<E>, index: u64) -> Result<(), Failure> {
    let (n, _) = cfg.n_committed(index)?;
    ensure(n == 0, "raft::no-commit", || format!("{n} committed index {index} but no majority"))
}

/// The course's `randstring(n)`: n characters of URL-safe base64.
fn rand_string(rng: &mut ChaCha8Rng, n: usize) -> Cmd {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..n).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect()
}

/// The course's `cmd.(int)`: the integer inside a tester command.
fn as_int(cmd: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(cmd.try_into().ok()?))
}

/// TestBasicAgree2B. Goal: with everyone up, each command is applied by all three servers at
/// the next index. Steps: three times, check index k is empty, then one(k*100) on all 3.
/// Traps: no replication, wrong indexes (0-based logs), commits before Start.
async fn basic_agree<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    for index in 1..=3u64 {
        // Nothing can be committed at an index no Start has filled yet.
        let (nd, _) = cfg.n_committed(index)?;
        ensure(nd == 0, "raft::no-commit", || format!("{nd} have committed index {index} before Start()"))?;
        // All three apply the command, and it lands at the next index of the log.
        let xindex = cfg.one(int_cmd(index * 100), servers, false).await?;
        ensure(xindex == index, "raft::index", || format!("got index {xindex} but expected {index}"))?;
    }
    Ok(())
}

/// TestRPCBytes2B. Goal: each command travels to each follower about once. Steps: one(99);
/// then ten 5000-byte commands (indexes 2..11), counting the network's bytes around them.
/// Traps: resending whole logs on every heartbeat or retrying entries the follower has.
async fn rpc_bytes<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    // A first agreement, so the leader is settled before counting starts.
    cfg.one(int_cmd(99), servers, false).await?;
    let bytes0 = cfg.bytes_total();
    let mut sent = 0u64;
    for index in 2..12u64 {
        // A big command, so the byte count is dominated by how often entries travel.
        let cmd = rand_string(&mut cfg.rng, 5000);
        let len = cmd.len() as u64;
        let xindex = cfg.one(cmd, servers, false).await?;
        ensure(xindex == index, "raft::index", || format!("got index {xindex} but expected {index}"))?;
        sent += len;
    }
    // The course allows servers x bytes sent (one copy per server) plus 50 000 of slack.
    let got = cfg.bytes_total() - bytes0;
    let expected = servers as u64 * sent;
    sim::describe(format!("rpc bytes for 10 x 5000-byte commands: {got} (bound {})", expected + 50_000));
    ensure(got <= expected + 50_000, "raft::rpc-bytes", || {
        format!("too many RPC bytes; got {got}, expected {expected} (+50000 slack)")
    })
}

/// TestFollowerFailure2B. Goal: losing followers one by one — two of three still commit, a
/// leader alone commits nothing. Steps: one(101); disconnect a follower; one(102) and, an
/// election timeout later, one(103) on the remaining two; disconnect both followers of the
/// current leader; Start(104) there; wait 2 s. Traps: committing without a majority,
/// counting the leader twice, an index that skips.
async fn follower_failure<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(101), servers, false).await?;
    // Disconnect one follower from the network.
    let leader1 = cfg.check_one_leader().await?;
    cfg.disconnect((leader1 + 1) % servers);
    // The leader and the remaining follower agree despite the disconnected follower, also
    // after an election timeout has passed.
    cfg.one(int_cmd(102), servers - 1, false).await?;
    sim::sleep(ELECTION).await;
    cfg.one(int_cmd(103), servers - 1, false).await?;
    // Disconnect the remaining follower: the leader is alone.
    let leader2 = cfg.check_one_leader().await?;
    cfg.disconnect((leader2 + 1) % servers);
    cfg.disconnect((leader2 + 2) % servers);
    // The lone leader still accepts a command, at the next index...
    let (index, _, ok) = cfg.start(leader2, int_cmd(104));
    accepted(ok, "leader")?;
    ensure(index == 4, "raft::index", || format!("expected index 4, got {index}"))?;
    sim::sleep(2 * ELECTION).await;
    // ...but cannot commit it without a majority.
    not_committed(&cfg, index)
}

/// TestLeaderFailure2B. Goal: losing leaders one by one — the remaining two elect and agree;
/// a single connected server commits nothing. Steps: one(101); disconnect the leader;
/// one(102), an election timeout, one(103); disconnect the new leader; Start(104) on all
/// three; wait 2 s. Traps: a deposed leader that still commits, no re-election.
async fn leader_failure<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(101), servers, false).await?;
    // Disconnect the first leader.
    let leader1 = cfg.check_one_leader().await?;
    cfg.disconnect(leader1);
    // The remaining followers elect a new leader and agree.
    cfg.one(int_cmd(102), servers - 1, false).await?;
    sim::sleep(ELECTION).await;
    cfg.one(int_cmd(103), servers - 1, false).await?;
    // Disconnect the new leader: every server is now alone.
    let leader2 = cfg.check_one_leader().await?;
    cfg.disconnect(leader2);
    // Submit a command to each server; whoever accepts, none has a majority.
    for i in 0..servers {
        cfg.start(i, int_cmd(104));
    }
    sim::sleep(2 * ELECTION).await;
    // So index 4 is committed nowhere.
    not_committed(&cfg, 4)
}

/// TestFailAgree2B. Goal: a follower that missed entries catches up when it rejoins.
/// Steps: one(101); disconnect a follower; one(102..105) on two (an election timeout in
/// the middle); reconnect; one(106) and, an election timeout later, one(107) on all three.
/// Traps: no catch-up of a lagging follower, a rejoining follower disrupting the leader.
async fn fail_agree<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(101), servers, false).await?;
    // Disconnect one follower from the network.
    let leader = cfg.check_one_leader().await?;
    cfg.disconnect((leader + 1) % servers);
    // The leader and the remaining follower agree despite the disconnected follower.
    cfg.one(int_cmd(102), servers - 1, false).await?;
    cfg.one(int_cmd(103), servers - 1, false).await?;
    sim::sleep(ELECTION).await;
    cfg.one(int_cmd(104), servers - 1, false).await?;
    cfg.one(int_cmd(105), servers - 1, false).await?;
    // Reconnect: the full set keeps the previous agreements and agrees on new commands.
    cfg.connect((leader + 1) % servers);
    cfg.one(int_cmd(106), servers, true).await?;
    sim::sleep(ELECTION).await;
    cfg.one(int_cmd(107), servers, true).await?;
    Ok(())
}

/// TestFailNoAgree2B. Goal: with 3 of 5 followers gone, nothing commits; after healing the
/// cluster goes on. Steps: one(10); disconnect 3 followers; Start(20) on the leader (must be
/// index 2); wait 2 s (index 2 must stay uncommitted); reconnect; Start(30) on the new leader
/// (index 2 or 3); one(1000) on all 5. Traps: commit without a majority, a log that cannot
/// be overwritten after a minority leader.
async fn fail_no_agree<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 5;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(10), servers, false).await?;
    // 3 of 5 followers disconnect.
    let leader = cfg.check_one_leader().await?;
    cfg.disconnect((leader + 1) % servers);
    cfg.disconnect((leader + 2) % servers);
    cfg.disconnect((leader + 3) % servers);
    // The leader (with one follower) accepts a command at index 2...
    let (index, _, ok) = cfg.start(leader, int_cmd(20));
    accepted(ok, "leader")?;
    ensure(index == 2, "raft::index", || format!("expected index 2, got {index}"))?;
    sim::sleep(2 * ELECTION).await;
    // ...which two servers cannot commit.
    not_committed(&cfg, index)?;
    // Repair.
    cfg.connect((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.connect((leader + 3) % servers);
    // The disconnected majority may have chosen a leader from among their own ranks,
    // forgetting index 2; either way the next index is 2 or 3.
    let leader2 = cfg.check_one_leader().await?;
    let (index2, _, ok2) = cfg.start(leader2, int_cmd(30));
    accepted(ok2, "leader2")?;
    ensure((2..=3).contains(&index2), "raft::index", || format!("unexpected index {index2}"))?;
    // Everyone agrees again.
    cfg.one(int_cmd(1000), servers, true).await?;
    Ok(())
}

/// TestConcurrentStarts2B. Goal: Starts that race each other in one term all commit, at
/// distinct indexes. Steps: up to 5 tries (3 s apart): Start(1) on the leader, then 5
/// concurrent Start(100+i); if every server is still in that term, wait for each returned
/// index (giving up the try if a term moves on); all of 100..104 must be committed.
/// Traps: Start not safe against concurrent callers (lost or duplicated indexes).
async fn concurrent_starts<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    let iters = 5u64;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // Give the implementation some time to settle.
            sim::sleep(Duration::from_secs(3)).await;
        }
        let leader = cfg.check_one_leader().await?;
        let (_, term, ok) = cfg.start(leader, int_cmd(1));
        if !ok {
            // The leader moved on really quickly.
            continue;
        }
        // Five goroutines call Start at once; each keeps its index only if the leader took
        // the command in the same term.
        let is: Rc<RefCell<Vec<u64>>> = Rc::default();
        let mut tasks = Vec::new();
        for ii in 0..iters {
            let (c, is) = (cfg.share("raft-concurrent-starts"), is.clone());
            tasks.push(sim::spawn(async move {
                let (i, term1, ok) = c.start(leader, int_cmd(100 + ii));
                if term1 == term && ok {
                    is.borrow_mut().push(i);
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| Failure::panic(format!("Start task: {e}")))?;
        }
        // If the term changed, low latency cannot be expected: try again.
        for j in 0..servers {
            if cfg.get_state(j).0 != term {
                continue 'tries;
            }
        }
        let mut cmds = Vec::new();
        let indexes = is.borrow().clone();
        for index in indexes {
            match cfg.wait(index, servers, Some(term)).await? {
                // Peers have moved on to later terms, so not every Start need have succeeded.
                None => continue 'tries,
                Some(cmd) => match as_int(&cmd) {
                    Some(x) => cmds.push(x),
                    None => {
                        return Err(Failure::safety("raft::committed", format!("value {} is not an int", show(&cmd))))
                    }
                },
            }
        }
        // Every concurrent command was committed.
        for ii in 0..iters {
            let x = 100 + ii;
            ensure(cmds.contains(&x), "raft::committed", || format!("cmd {x} missing in {cmds:?}"))?;
        }
        return Ok(());
    }
    Err(Failure::liveness("raft::term-churn", "term changed too often"))
}

/// TestRejoin2B. Goal: a partitioned leader's uncommitted entries are overwritten when it
/// rejoins. Steps: one(101); disconnect leader1; Start(102..104) on it; one(103) on the
/// other two; disconnect leader2; reconnect leader1; one(104) on leader1 and the third;
/// reconnect leader2; one(105) on all. Traps: a stale leader keeping its entries, a log
/// that is not truncated on conflict, an out-of-date candidate winning.
async fn rejoin<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    cfg.one(int_cmd(101), servers, true).await?;
    // Leader network failure.
    let leader1 = cfg.check_one_leader().await?;
    cfg.disconnect(leader1);
    // Make the old leader try to agree on some entries it can never commit.
    cfg.start(leader1, int_cmd(102));
    cfg.start(leader1, int_cmd(103));
    cfg.start(leader1, int_cmd(104));
    // The new leader commits, also at index 2.
    cfg.one(int_cmd(103), 2, true).await?;
    // New leader network failure.
    let leader2 = cfg.check_one_leader().await?;
    cfg.disconnect(leader2);
    // Old leader connected again: it must give up its stale entries.
    cfg.connect(leader1);
    cfg.one(int_cmd(104), 2, true).await?;
    // All together now.
    cfg.connect(leader2);
    cfg.one(int_cmd(105), servers, true).await?;
    Ok(())
}

/// TestBackup2B. Goal: a leader backs up quickly over long conflicting follower logs.
/// Steps: one(rand); leader1 and one follower isolated with 50 uncommittable Starts; the
/// other three commit 50 commands; then their leader2 and one follower take 50 more
/// uncommittable Starts; leader1, its follower and "other" commit 50 more; finally all 5
/// agree. Every one() must finish within its 10 s. Traps: backing up nextIndex one entry
/// per RPC (too slow), wrong conflict handling.
async fn backup<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 5;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    // Put the leader and one follower in a partition.
    let leader1 = cfg.check_one_leader().await?;
    cfg.disconnect((leader1 + 2) % servers);
    cfg.disconnect((leader1 + 3) % servers);
    cfg.disconnect((leader1 + 4) % servers);
    // Submit lots of commands that won't commit.
    for _ in 0..50 {
        let c = cfg.rand_cmd();
        cfg.start(leader1, c);
    }
    sim::sleep(ELECTION / 2).await;
    cfg.disconnect(leader1 % servers);
    cfg.disconnect((leader1 + 1) % servers);
    // Allow the other partition to recover.
    cfg.connect((leader1 + 2) % servers);
    cfg.connect((leader1 + 3) % servers);
    cfg.connect((leader1 + 4) % servers);
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        let c = cfg.rand_cmd();
        cfg.one(c, 3, true).await?;
    }
    // Now another partitioned leader and one follower.
    let leader2 = cfg.check_one_leader().await?;
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    cfg.disconnect(other);
    // Lots more commands that won't commit.
    for _ in 0..50 {
        let c = cfg.rand_cmd();
        cfg.start(leader2, c);
    }
    sim::sleep(ELECTION / 2).await;
    // Bring the original leader back to life, with its follower and "other": two of them
    // hold 50 stale entries the third must overwrite.
    for i in 0..servers {
        cfg.disconnect(i);
    }
    cfg.connect(leader1 % servers);
    cfg.connect((leader1 + 1) % servers);
    cfg.connect(other);
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        let c = cfg.rand_cmd();
        cfg.one(c, 3, true).await?;
    }
    // Now everyone.
    for i in 0..servers {
        cfg.connect(i);
    }
    let c = cfg.rand_cmd();
    cfg.one(c, servers, true).await?;
    Ok(())
}

/// TestCount2B. Goal: Raft is frugal with RPCs. Steps: (a) count the RPCs to elect the
/// first leader (1..=30); (b) up to 5 tries: Start(1) plus 11 more Starts (consecutive
/// indexes), wait for 10 of them (right values), count the RPCs (≤ (10+1+3)×3 = 42) unless
/// a term changed; (c) one idle election timeout (≤ 3×20 = 60 RPCs). Traps: heartbeats
/// faster than 10/s, one RPC per entry instead of batching, needless elections.
async fn count<E: TestEngine>(opts: Opts) -> Result<(), Failure> {
    let servers = 3;
    let mut cfg = Cluster::<E>::for_test(servers, false, false, &opts);
    let rpcs = |cfg: &Cluster<E>| (0..servers).map(|j| cfg.rpc_count(j)).sum::<u64>();

    // (a) Electing the first leader takes a handful of RPCs, not a storm.
    cfg.check_one_leader().await?;
    let total1 = rpcs(&cfg);
    sim::describe(format!("rpcs to elect the initial leader: {total1} (bound 1..=30)"));
    ensure((1..=30).contains(&total1), "raft::rpc-count", || {
        format!("too many or few RPCs ({total1}) to elect initial leader")
    })?;

    // (b) An 11-entry batch in one term costs about one round of AppendEntries per entry.
    let iters = 10u64;
    let mut total2 = 0;
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // Give the implementation some time to settle.
            sim::sleep(Duration::from_secs(3)).await;
        }
        let leader = cfg.check_one_leader().await?;
        let total1 = rpcs(&cfg);
        let (starti, term, ok) = cfg.start(leader, int_cmd(1));
        if !ok {
            // The leader moved on really quickly.
            continue;
        }
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x = cfg.rng.gen::<u32>() as u64 & 0x7fff_ffff;
            cmds.push(x);
            let (index1, term1, ok) = cfg.start(leader, int_cmd(x));
            if term1 != term || !ok {
                // The term changed while starting: try again.
                continue 'tries;
            }
            // Starts in one term get consecutive indexes.
            ensure(starti + i == index1, "raft::index", || {
                format!("Start() failed: index {index1}, expected {}", starti + i)
            })?;
        }
        // The first ten must be committed on all servers, with the values given.
        for i in 1..iters + 1 {
            match cfg.wait(starti + i, servers, Some(term)).await? {
                // The term changed: try again.
                None => continue 'tries,
                Some(cmd) => ensure(as_int(&cmd) == Some(cmds[i as usize - 1]), "raft::committed", || {
                    format!("wrong value {} committed for index {}; expected {cmds:?}", show(&cmd), starti + i)
                })?,
            }
        }
        // A term change excuses the count (but the count is still taken).
        let mut failed = false;
        total2 = 0;
        for j in 0..servers {
            if cfg.get_state(j).0 != term {
                failed = true;
            }
            total2 += cfg.rpc_count(j);
        }
        if failed {
            continue;
        }
        let used = total2 - total1;
        let bound = (iters + 1 + 3) * 3;
        sim::describe(format!("rpcs for {iters} entries: {used} (bound {bound})"));
        ensure(used <= bound, "raft::rpc-count", || format!("too many RPCs ({used}) for {iters} entries"))?;
        success = true;
        break;
    }
    if !success {
        return Err(Failure::liveness("raft::term-churn", "term changed too often"));
    }

    // (c) An idle leader only heartbeats: at most 10 per second to each follower.
    sim::sleep(ELECTION).await;
    let total3 = rpcs(&cfg);
    let idle = total3 - total2;
    sim::describe(format!("rpcs in 1 s of idleness: {idle} (bound 60)"));
    ensure(idle <= 3 * 20, "raft::rpc-count", || format!("too many RPCs ({idle}) for 1 second of idleness"))
}
