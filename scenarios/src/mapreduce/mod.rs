//! MapReduce (lab 1): the seven tests of the course's `test-mr.sh` as scenarios.
//!
//! Each builds the 8 input files from the seed, starts a coordinator (nReduce = 10) and
//! workers as crashable processes, and judges the outcome as the script does, plus two
//! checks the script leaves implicit: an output file, once visible, never changes
//! (`mr::atomic-output`), and every worker exits once the job is done (`mr::worker-exit`).
//! The course bounds each process's life: 45 s, 120 s in the crash test (`mr::deadline`).
//!
//! Beside them, [`swarm`] draws a job, its hazards and a fault schedule from the seed.

pub mod swarm;

use crate::registry::{Family, Opts, Scenario};
use nodes::mapreduce::{self, apps::App, Bugs};
use rand::Rng;
use sim::{Failure, NodeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The course's input files (one map task each).
pub const INPUT_NAMES: [&str; 8] = [
    "pg-being_ernest.txt",
    "pg-dorian_gray.txt",
    "pg-frankenstein.txt",
    "pg-grimm.txt",
    "pg-huckleberry_finn.txt",
    "pg-metamorphosis.txt",
    "pg-sherlock_holmes.txt",
    "pg-tom_sawyer.txt",
];
pub const N_REDUCE: u32 = 10;

pub fn family() -> Family {
    Family::new("mapreduce")
        .with_bugs(Bugs::ALL.iter().copied())
        .with_scenarios(scenarios())
        .with_scenarios(swarm::scenarios())
        .with_marks(mapreduce::MARKS)
}

fn scenarios() -> Vec<Scenario> {
    let s =
        |name, description, budget_s: u64, run| Scenario::new(name, description, Duration::from_secs(budget_s), run);
    vec![
        s("mapreduce::wc", "word count, 3 workers; output equals the sequential MapReduce", 200, |o| Box::pin(wc(o))),
        s("mapreduce::indexer", "inverted index, 2 workers; output equals the sequential MapReduce", 200, |o| {
            Box::pin(indexer(o))
        }),
        s("mapreduce::map_parallelism", "2 workers with 1 s maps: both run maps, and two maps overlap", 200, |o| {
            Box::pin(map_parallelism(o))
        }),
        s(
            "mapreduce::reduce_parallelism",
            "2 workers with 1 s reduces: at least two reduces see another running",
            200,
            |o| Box::pin(reduce_parallelism(o)),
        ),
        s(
            "mapreduce::job_count",
            "2–5 s maps: exactly 8 map executions; workers started after the job must exit",
            200,
            |o| Box::pin(job_count(o)),
        ),
        s("mapreduce::early_exit", "3 s reduces for two keys: no process exits before the output is final", 200, |o| {
            Box::pin(early_exit(o))
        }),
        s(
            "mapreduce::crash",
            "a third of map/reduce calls crash the worker, a third stall up to 10 s; workers restart",
            400,
            |o| Box::pin(crash(o)),
        ),
    ]
}

fn bugs(opts: &Opts) -> Bugs {
    match &opts.bug {
        None => Bugs::default(),
        Some(name) => Bugs::from_name(name).unwrap_or_else(|| panic!("unknown mapreduce bug {name}")),
    }
}

// ---------------------------------------------------------------------------------------
// Inputs: eight texts drawn from the seed with a Zipf-like word distribution.
// ---------------------------------------------------------------------------------------

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "wo", "ya", "zu", "bra", "cle", "dri", "fo", "gla", "ho", "ix",
    "jen", "tom", "sher", "lock", "an", "the",
];

/// The weight of the most common word; the word of rank `r` weighs `ZIPF_TOP_WEIGHT / r`.
/// Divisible by every rank up to 16, so the common words' weights are exact.
const ZIPF_TOP_WEIGHT: u64 = 720_720 * 1_000;

/// A vocabulary of pseudo-words with Zipf weights (rank^-1, in integers), so a few words are
/// very common and most are rare, as in real text. Integer arithmetic only: no platform math
/// library (`powf`) lies on a seed's path, so inputs are the same on every machine.
/// Returns the words and their cumulative weights.
fn vocabulary(rng: &mut impl Rng) -> (Vec<String>, Vec<u64>) {
    let mut words =
        vec!["the".to_string(), "and".into(), "of".into(), "to".into(), "a".into(), "in".into(), "I".into()];
    while words.len() < 3000 {
        let n = rng.gen_range(1..=4);
        let w: String = (0..n).map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())]).collect();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    let mut cum = Vec::with_capacity(words.len());
    let mut total = 0u64;
    for rank in 1..=words.len() as u64 {
        total += ZIPF_TOP_WEIGHT / rank;
        cum.push(total);
    }
    (words, cum)
}

/// The eight input files (name, contents), drawn from the run's seed.
pub fn generate_inputs(rng: &mut impl Rng) -> Vec<(String, String)> {
    let (words, cum) = vocabulary(rng);
    let total = *cum.last().unwrap();
    INPUT_NAMES
        .iter()
        .map(|name| {
            let n_words = rng.gen_range(2000..6000);
            let mut text = String::with_capacity(n_words * 7);
            let mut sentence_start = true;
            for i in 0..n_words {
                let x = rng.gen_range(0..total);
                let w = &words[cum.partition_point(|&c| c <= x)];
                if sentence_start {
                    let mut cs = w.chars();
                    if let Some(f) = cs.next() {
                        text.extend(f.to_uppercase());
                        text.push_str(cs.as_str());
                    }
                } else {
                    text.push_str(w);
                }
                sentence_start = false;
                match rng.gen_range(0..100) {
                    0..=5 => {
                        text.push_str(". ");
                        sentence_start = true;
                    }
                    6..=10 => text.push_str(", "),
                    11 => text.push_str("; "),
                    12 => text.push_str("--"),
                    _ => text.push(' '),
                }
                if i % 13 == 12 {
                    text.push('\n');
                }
            }
            (name.to_string(), text)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The harness the seven tests share.
// ---------------------------------------------------------------------------------------

struct Job {
    coordinator: NodeId,
    inputs: Vec<(String, String)>,
    bugs: Bugs,
}

impl Job {
    /// Writes the inputs, installs the output check, starts the coordinator.
    fn start(opts: &Opts) -> Job {
        let inputs = generate_inputs(&mut sim::rng("mr-input"));
        for (name, text) in &inputs {
            sim::fs::put(name, text.clone().into_bytes());
        }
        install_atomic_output_check();
        let bugs = bugs(opts);
        let files: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
        let coordinator =
            sim::spawn_process("coord", move |ctx| mapreduce::coordinator(ctx, files.clone(), N_REDUCE, bugs));
        Job { coordinator, inputs, bugs }
    }

    fn worker(&self, name: &str, app: App) -> NodeId {
        let (coord, bugs) = (self.coordinator, self.bugs);
        sim::spawn_process(name, move |ctx| mapreduce::worker(ctx, coord, app, bugs))
    }

    /// Waits for the coordinator to exit, within the course's per-process limit.
    async fn wait_coordinator(&self, limit: Duration) -> Result<(), Failure> {
        if wait_exit(self.coordinator, limit).await {
            Ok(())
        } else {
            Err(Failure::liveness(
                "mr::deadline",
                format!("the coordinator had not exited {}s into the job (the course's limit)", limit.as_secs()),
            ))
        }
    }

    /// Every worker exits within 10 s of the coordinator, as the script's `wait` expects.
    async fn wait_workers(&self, workers: &[NodeId]) -> Result<(), Failure> {
        for &w in workers {
            if !wait_exit(w, sim::now() + Duration::from_secs(10)).await {
                return Err(Failure::liveness(
                    "mr::worker-exit",
                    format!("worker {} still running 10 s after the job ended", sim::node_name(w)),
                ));
            }
        }
        Ok(())
    }

    /// Compares the sorted, non-empty lines of every `mr-out-*` with the sequential run.
    fn check_output(&self, app: App) -> Result<(), Failure> {
        let expected = mapreduce::sequential(app, &self.inputs).expect("app has a sequential reference");
        compare_lines("mr::output", &output_lines(), &expected)
    }
}

/// Polls until the node's process is not running, or `until` (simulated time) passes.
async fn wait_exit(node: NodeId, until: Duration) -> bool {
    while sim::is_alive(node) {
        if sim::now() >= until {
            return false;
        }
        sim::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Sorted, non-empty lines of the union of every visible `mr-out-*` file.
fn output_lines() -> Vec<String> {
    let mut lines: Vec<String> = sim::fs::list("mr-out-")
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(&sim::fs::read(f).unwrap_or_default())
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

fn compare_lines(checker: &str, got: &[String], want: &[String]) -> Result<(), Failure> {
    if got == want {
        return Ok(());
    }
    let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    let show = |v: &[String]| v.get(first).cloned().unwrap_or_else(|| "<end>".into());
    Err(Failure::safety(
        checker,
        format!(
            "output differs from the sequential MapReduce at sorted line {first}: got {:?}, want {:?} ({} vs {} lines)",
            show(got),
            show(want),
            got.len(),
            want.len()
        ),
    ))
}

/// Fails the run the moment a visible output file changes: outputs must appear whole,
/// once (a re-executed reduce may rename identical content over it).
fn install_atomic_output_check() {
    let mut first_seen: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    sim::fs::watch(Box::new(move |path, _op, content| {
        if !path.starts_with("mr-out-") {
            return None;
        }
        let content = content.unwrap_or(&[]);
        match first_seen.get(path) {
            None => {
                first_seen.insert(path.to_string(), content.to_vec());
                None
            }
            Some(prev) if prev.as_slice() == content => None,
            Some(prev) => Some(Failure::safety(
                "mr::atomic-output",
                format!("{path} changed after it became visible ({} bytes, then {} bytes): a reader saw a partial output file", prev.len(), content.len()),
            )),
        }
    }));
}

const COURSE_LIMIT: Duration = Duration::from_secs(45);
const CRASH_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// wc: coordinator, then three workers a second later; output equals the sequential run.
async fn wc(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    sim::sleep(Duration::from_secs(1)).await;
    let workers: Vec<NodeId> = (0..3).map(|i| job.worker(&format!("w{i}"), App::Wc)).collect();
    job.wait_coordinator(COURSE_LIMIT).await?;
    job.check_output(App::Wc)?;
    job.wait_workers(&workers).await
}

/// indexer: two workers; output equals the sequential run.
async fn indexer(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    sim::sleep(Duration::from_secs(1)).await;
    let workers: Vec<NodeId> = (0..2).map(|i| job.worker(&format!("w{i}"), App::Indexer)).collect();
    job.wait_coordinator(COURSE_LIMIT).await?;
    job.check_output(App::Indexer)?;
    job.wait_workers(&workers).await
}

/// map parallelism: both workers ran maps (two `times-` keys), and some map saw the other
/// worker's map running at the same time (a `parallel-` line with a 2).
async fn map_parallelism(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    let workers: Vec<NodeId> = (0..2).map(|i| job.worker(&format!("w{i}"), App::MTiming)).collect();
    job.wait_coordinator(COURSE_LIMIT).await?;
    let lines = output_lines();
    let times = lines.iter().filter(|l| l.starts_with("times-")).count();
    if times != 2 {
        return Err(Failure::safety("mr::map-parallelism", format!("{times} workers ran maps; want exactly 2")));
    }
    if !lines.iter().any(|l| l.starts_with("parallel") && l.contains(" 2")) {
        return Err(Failure::safety("mr::map-parallelism", "no map ran while the other worker's map was running"));
    }
    job.wait_workers(&workers).await
}

/// reduce parallelism: at least two reduces saw another reduce running.
async fn reduce_parallelism(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    let workers: Vec<NodeId> = (0..2).map(|i| job.worker(&format!("w{i}"), App::RTiming)).collect();
    job.wait_coordinator(COURSE_LIMIT).await?;
    let lines = output_lines();
    let parallel =
        lines.iter().filter(|l| l.len() >= 3 && l.as_bytes()[0].is_ascii_lowercase() && &l[1..3] == " 2").count();
    if parallel < 2 {
        return Err(Failure::safety(
            "mr::reduce-parallelism",
            format!("{parallel} reduces ran in parallel with another; want at least 2"),
        ));
    }
    job.wait_workers(&workers).await
}

/// job count: maps take 2–5 s, so nothing should be handed out twice; exactly 8 map
/// executions. Workers C and D start after B exits (the job is over) and must do nothing.
async fn job_count(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    let a = job.worker("wA", App::JobCount);
    let b = job.worker("wB", App::JobCount);
    if !wait_exit(b, COURSE_LIMIT).await {
        return Err(Failure::liveness("mr::deadline", "worker B had not exited 45 s into the job"));
    }
    let c = job.worker("wC", App::JobCount);
    let d = job.worker("wD", App::JobCount);
    job.wait_coordinator(COURSE_LIMIT + Duration::from_secs(5)).await?;
    job.wait_workers(&[a, b, c, d]).await?;
    let lines = output_lines();
    if lines != ["a 8"] {
        let runs = sim::fs::list("mr-worker-jobcount").len();
        return Err(Failure::safety(
            "mr::job-count",
            format!("map tasks ran {runs} times (output {lines:?}); want exactly 8"),
        ));
    }
    Ok(())
}

/// early exit: the outputs at the moment the first process exits equal the final ones.
async fn early_exit(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    let workers: Vec<NodeId> = (0..3).map(|i| job.worker(&format!("w{i}"), App::EarlyExit)).collect();
    // (name of the first process to exit, sorted output lines at that instant)
    type Snapshot = Option<(String, Vec<String>)>;
    let at_first_exit: Rc<RefCell<Snapshot>> = Rc::new(RefCell::new(None));
    let snap = at_first_exit.clone();
    sim::fs::watch_exits(Box::new(move |_node, name, fs| {
        let mut s = snap.borrow_mut();
        if s.is_none() {
            let mut lines: Vec<String> = fs
                .list("mr-out-")
                .iter()
                .flat_map(|(_, c)| String::from_utf8_lossy(c).lines().map(str::to_string).collect::<Vec<_>>())
                .filter(|l| !l.is_empty())
                .collect();
            lines.sort();
            *s = Some((name.to_string(), lines));
        }
    }));
    job.wait_coordinator(COURSE_LIMIT).await?;
    job.wait_workers(&workers).await?;
    let (first, snapshot) = at_first_exit.borrow().clone().expect("some process exited");
    let final_lines = output_lines();
    if snapshot != final_lines {
        return Err(Failure::safety(
            "mr::early-exit",
            format!(
                "{first} exited while the output was not final ({} lines then, {} at the end)",
                snapshot.len(),
                final_lines.len()
            ),
        ));
    }
    job.check_output(App::EarlyExit)
}

/// crash: workers die in a third of map/reduce calls and stall in another third; three
/// loops restart theirs a second after it dies, while the coordinator runs. The output
/// must equal the sequential run of the crash app's well-behaved twin.
async fn crash(opts: Opts) -> Result<(), Failure> {
    let job = Job::start(&opts);
    let coord = job.coordinator;
    let background = job.worker("w0", App::Crash);
    let mut workers = vec![background];
    for i in 1..=3 {
        let w = job.worker(&format!("w{i}"), App::Crash);
        workers.push(w);
        restart_while_coordinator_runs(w, coord);
    }
    job.wait_coordinator(CRASH_LIMIT).await?;
    let expected = mapreduce::sequential(App::NoCrash, &job.inputs).expect("nocrash is deterministic");
    compare_lines("mr::output", &output_lines(), &expected)?;
    // Give the restart loops time to notice the coordinator is gone.
    sim::sleep(Duration::from_secs(2)).await;
    job.wait_workers(&workers).await
}

/// The course crash test's restarter: worker `w` comes back a second after it dies (checked
/// every 100 ms), for as long as the coordinator `coord` runs.
fn restart_while_coordinator_runs(w: NodeId, coord: NodeId) {
    sim::spawn(async move {
        loop {
            while sim::is_alive(w) {
                sim::sleep(Duration::from_millis(100)).await;
            }
            sim::sleep(Duration::from_secs(1)).await;
            if !sim::is_alive(coord) {
                return;
            }
            sim::restart(w);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_a_function_of_the_seed_and_look_like_text() {
        let a = generate_inputs(&mut sim::rng::stream(1, "mr-input", u64::MAX));
        let b = generate_inputs(&mut sim::rng::stream(1, "mr-input", u64::MAX));
        let c = generate_inputs(&mut sim::rng::stream(2, "mr-input", u64::MAX));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 8);
        for (_, text) in &a {
            let words = text.split_whitespace().count();
            assert!((2000..6500).contains(&words), "{words} words");
        }
        let wc = mapreduce::sequential(App::Wc, &a).unwrap();
        let the: usize = wc.iter().find(|l| l.starts_with("the ")).unwrap()[4..].parse().unwrap();
        assert!(the > 1000, "the most common word is common: {the}");
        assert!(wc.len() > 1000, "many distinct words: {}", wc.len());
    }
}
