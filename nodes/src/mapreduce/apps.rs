//! The MapReduce applications of the course's test script: word count, indexer, and the
//! test apps that time maps and reduces, count jobs, delay reduces, and crash workers.
//!
//! Apps run inside a worker process; side effects (sleeping, marker files, looking at
//! other processes, crashing) go through [`AppEnv`], so they are simulated and seeded.

use rand::Rng;
use sim::{NodeCtx, NodeId};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

/// One intermediate key/value pair.
pub type KeyValue = (String, String);

/// The worker crashed inside the application (the crash app's `exit(1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crashed;

/// The applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// Word count: split on non-letters, count each word.
    Wc,
    /// Inverted index: for each word, how many and which documents hold it.
    Indexer,
    /// Map parallelism: each map notes how many maps run at once, for 1 s.
    MTiming,
    /// Reduce parallelism: each reduce notes how many reduces run at once, for 1 s.
    RTiming,
    /// Job count: each map execution leaves a unique file and takes 2–5 s.
    JobCount,
    /// Early exit: reduces of keys with "sherlock" or "tom" take 3 s.
    EarlyExit,
    /// Crash: a third of map/reduce calls exit the worker, a third stall up to 10 s.
    Crash,
    /// The crash app's well-behaved twin, for the sequential reference.
    NoCrash,
    /// The crash app with more keys and its hazards as parameters ([`CrashKeys`]): every map
    /// also emits `keys` keys `k0`… (so a reduce partition holds several), and each map
    /// and reduce call crashes or stalls with the given odds, a stall lasting up to
    /// `stall_ms_max` — past the 10 s reissue timeout when that is above it. The output is
    /// a function of the input, so the app is its own sequential reference.
    CrashKeys(CrashKeys),
}

/// The hazards and the key count of [`App::CrashKeys`] (issue 13's workload for the
/// shared-temporary-file bug). The course's crash app is `keys: 0, crash_permille: 330,
/// stall_permille: 330, stall_ms_max: 10_000`, with its four keys `a`–`d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashKeys {
    /// Extra keys each map emits, `k0` … `k<keys-1>`, beside the crash app's `a`–`d`.
    pub keys: u32,
    /// Per mille of map/reduce calls that crash the worker.
    pub crash_permille: u32,
    /// Per mille of map/reduce calls that stall (after the crash draw).
    pub stall_permille: u32,
    /// A stall lasts a uniform 0 … `stall_ms_max` simulated milliseconds.
    pub stall_ms_max: u64,
}

/// Mark: an app stall outlasted the lab's 10 s reissue timeout, so its task may be handed
/// out again while this run goes on.
pub const STALL_PAST_REISSUE: &str = "mr: a stall outlasted the reissue timeout";

/// What an app may do to the world: its worker's identity, time, files, other processes.
pub struct AppEnv {
    pub ctx: NodeCtx,
    pub rng: RefCell<rand_chacha::ChaCha8Rng>,
    /// Per-process counter for unique file names (job count).
    pub counter: RefCell<u64>,
}

/// A process id: node and incarnation, so a restarted worker is a new process.
pub fn pid(node: NodeId, incarnation: u32) -> u64 {
    ((node.0 as u64) << 20) | incarnation as u64
}

fn pid_alive(pid: u64) -> bool {
    let node = NodeId((pid >> 20) as u16);
    let inc = (pid & 0xFFFFF) as u32;
    sim::is_alive(node) && sim::incarnation(node) == inc
}

impl AppEnv {
    pub fn new(ctx: NodeCtx) -> Self {
        AppEnv { ctx, rng: RefCell::new(ctx.rng("mr-app")), counter: RefCell::new(0) }
    }

    pub fn pid(&self) -> u64 {
        pid(self.ctx.id(), self.ctx.incarnation())
    }

    /// Counts the processes of `phase` running right now, for about a second: leaves a
    /// marker file, counts markers whose process is alive, sleeps 1 s, removes the marker.
    async fn nparallel(&self, phase: &str) -> usize {
        let prefix = format!("mr-worker-{phase}-");
        let me = format!("{prefix}{}", self.pid());
        self.ctx.fs_create(&me);
        let alive =
            sim::fs::list(&prefix).iter().filter(|f| f[prefix.len()..].parse::<u64>().is_ok_and(pid_alive)).count();
        sim::sleep(Duration::from_secs(1)).await;
        self.ctx.fs_remove(&me);
        alive
    }

    /// The crash app's hazard at the start of every map and reduce call.
    async fn maybe_crash(&self) -> Result<(), Crashed> {
        self.hazard(330, 330, 10_000).await
    }

    /// A hazard: crash with `crash_permille`, else stall 0…`stall_ms_max` ms with
    /// `stall_permille` (the course's crash app: 330, 330, 10 s).
    async fn hazard(&self, crash_permille: u32, stall_permille: u32, stall_ms_max: u64) -> Result<(), Crashed> {
        let r = self.rng.borrow_mut().gen_range(0..1000);
        if r < crash_permille {
            self.ctx.crash_self("crash app: exit(1)");
            Err(Crashed)
        } else if r < crash_permille + stall_permille {
            let ms = self.rng.borrow_mut().gen_range(0..stall_ms_max.max(1));
            if ms >= super::REISSUE_AFTER_MS {
                sim::mark(STALL_PAST_REISSUE);
            }
            sim::sleep(Duration::from_millis(ms)).await;
            Ok(())
        } else {
            Ok(())
        }
    }
}

fn words(contents: &str) -> impl Iterator<Item = &str> {
    contents.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty())
}

impl App {
    pub fn name(self) -> &'static str {
        match self {
            App::Wc => "wc",
            App::Indexer => "indexer",
            App::MTiming => "mtiming",
            App::RTiming => "rtiming",
            App::JobCount => "jobcount",
            App::EarlyExit => "early_exit",
            App::Crash => "crash",
            App::NoCrash => "nocrash",
            App::CrashKeys(_) => "crash_keys",
        }
    }

    /// The pure map of the apps whose output is a function of their input; the sequential
    /// reference uses it. `None` for apps that look at time or other processes.
    pub fn map_pure(self, filename: &str, contents: &str) -> Option<Vec<KeyValue>> {
        Some(match self {
            App::Wc => words(contents).map(|w| (w.to_string(), "1".to_string())).collect(),
            App::Indexer => {
                let distinct: BTreeSet<&str> = words(contents).collect();
                distinct.into_iter().map(|w| (w.to_string(), filename.to_string())).collect()
            }
            App::EarlyExit => vec![(filename.to_string(), "1".to_string())],
            App::Crash | App::NoCrash => vec![
                ("a".to_string(), filename.to_string()),
                ("b".to_string(), filename.len().to_string()),
                ("c".to_string(), contents.len().to_string()),
                ("d".to_string(), "xyzzy".to_string()),
            ],
            App::CrashKeys(c) => {
                let mut kvs = App::Crash.map_pure(filename, contents)?;
                // Each extra key's value depends on the file, so a mixed output shows.
                kvs.extend(
                    (0..c.keys).map(|i| (format!("k{i}"), format!("{filename}:{}", contents.len() % (i as usize + 7)))),
                );
                kvs
            }
            App::MTiming | App::RTiming | App::JobCount => return None,
        })
    }

    /// The pure reduce, as `map_pure`.
    pub fn reduce_pure(self, key: &str, values: &[String]) -> Option<String> {
        let _ = key;
        Some(match self {
            App::Wc | App::EarlyExit => values.len().to_string(),
            App::Indexer => {
                let mut docs: Vec<&str> = values.iter().map(|s| s.as_str()).collect();
                docs.sort_unstable();
                format!("{} {}", docs.len(), docs.join(","))
            }
            App::Crash | App::NoCrash | App::CrashKeys(_) => {
                let mut v: Vec<&str> = values.iter().map(|s| s.as_str()).collect();
                v.sort_unstable();
                v.join(" ")
            }
            App::MTiming | App::RTiming | App::JobCount => return None,
        })
    }

    /// Map, inside a worker.
    pub async fn map(self, env: &AppEnv, filename: &str, contents: &str) -> Result<Vec<KeyValue>, Crashed> {
        match self {
            App::Crash => {
                env.maybe_crash().await?;
                Ok(self.map_pure(filename, contents).unwrap())
            }
            App::CrashKeys(c) => {
                env.hazard(c.crash_permille, c.stall_permille, c.stall_ms_max).await?;
                Ok(self.map_pure(filename, contents).unwrap())
            }
            App::MTiming => {
                let n = env.nparallel("map").await;
                let pid = env.pid();
                Ok(vec![(format!("times-{pid}"), "1".into()), (format!("parallel-{pid}"), n.to_string())])
            }
            App::RTiming => Ok((b'a'..=b'j').map(|c| ((c as char).to_string(), "1".to_string())).collect()),
            App::JobCount => {
                let n = {
                    let mut c = env.counter.borrow_mut();
                    *c += 1;
                    *c
                };
                env.ctx.fs_create(&format!("mr-worker-jobcount-{}-{n}", env.pid()));
                let ms = 2000 + env.rng.borrow_mut().gen_range(0..3000);
                sim::sleep(Duration::from_millis(ms)).await;
                Ok(vec![("a".into(), "x".into())])
            }
            _ => Ok(self.map_pure(filename, contents).unwrap()),
        }
    }

    /// Reduce, inside a worker.
    pub async fn reduce(self, env: &AppEnv, key: &str, values: &[String]) -> Result<String, Crashed> {
        match self {
            App::Crash => {
                env.maybe_crash().await?;
                Ok(self.reduce_pure(key, values).unwrap())
            }
            App::CrashKeys(c) => {
                env.hazard(c.crash_permille, c.stall_permille, c.stall_ms_max).await?;
                Ok(self.reduce_pure(key, values).unwrap())
            }
            App::EarlyExit => {
                if key.contains("sherlock") || key.contains("tom") {
                    sim::sleep(Duration::from_secs(3)).await;
                }
                Ok(self.reduce_pure(key, values).unwrap())
            }
            App::MTiming => {
                let mut v = values.to_vec();
                v.sort_unstable();
                Ok(v.join(" "))
            }
            App::RTiming => Ok(env.nparallel("reduce").await.to_string()),
            App::JobCount => Ok(sim::fs::list("mr-worker-jobcount").len().to_string()),
            _ => Ok(self.reduce_pure(key, values).unwrap()),
        }
    }
}
