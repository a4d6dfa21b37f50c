//! The timeline page (`replay … --html DIR`): its data for a planted-bug failure mark the
//! violating step; a key/value run links to its history page and back; and in a real headless
//! browser (Debian's `chromium`, when installed — CI installs it and sets
//! SIMLAB_REQUIRE_BROWSER=1, which turns a missing browser into a failure) the page draws the
//! failure mark and the step's ring, a screenshot is taken, and the page's own timing of its
//! first complete drawing of a 100 000-event run is read back.

use serde_json::Value;
use simlab_cli::exit;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

/// A scratch folder for this file's tests (see `common::scratch_in`).
fn scratch(name: &str) -> PathBuf {
    common::scratch_in("timeline", name)
}

/// `cargo xtask replay ARGS --html DIR --filter off`, in process.
fn replay(args: &[&str], dir: &Path) -> u8 {
    let mut all = vec!["xtask", "replay"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--html", dir.to_str().unwrap(), "--filter", "off"]);
    simlab_cli::run(&scenarios::catalogue(), all)
}

/// The JSON a page embeds.
fn data(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let open = r#"<script type="application/json" id="timeline-data">"#;
    let start = html.find(open).expect("the page embeds its data") + open.len();
    let len = html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..start + len]).unwrap()
}

fn lane_name(d: &Value, lane: &Value) -> String {
    d["lanes"][lane.as_u64().unwrap() as usize]["name"].as_str().unwrap().to_string()
}

#[test]
fn a_planted_bug_failure_marks_the_violating_step() {
    // Figure 8 with commit-old-term: node 0 wins term 77 without an entry a majority had
    // committed in term 2 — the leader-completeness check fires as it becomes leader.
    let dir = scratch("figure8");
    let status = replay(&["raft::figure8_unreliable_2c", "--seed", "195", "--bug", "commit-old-term"], &dir);
    assert_eq!(status, exit::SAFETY);
    let d = data(&dir.join("timeline.html"));
    let check = &d["check"];
    assert!(check["text"].as_str().unwrap().contains("caught by leader-completeness: node 0 became leader of term 77"));
    let step = &check["step"];
    assert_eq!(lane_name(&d, &step["lane"]), "s0", "the step is on node 0's lane");
    assert_eq!(step["kind"], "note");
    assert_eq!(step["text"], "leader in term 77", "the violating step: node 0 becoming leader of term 77");
    assert_eq!(step["t"], check["t"]);
    // Node 0's lane shows it: its last role change is to leader of term 77, at the check.
    let s0 = d["lanes"].as_array().unwrap().iter().position(|l| l["name"] == "s0").unwrap();
    let roles = d["roles"][s0.to_string()].as_array().unwrap();
    let last = roles.last().unwrap();
    assert_eq!(d["role_names"][last[1].as_u64().unwrap() as usize], "leader");
    assert_eq!((last[0].clone(), last[2].as_u64()), (check["t"].clone(), Some(77)));
    assert!(!d["commits"][s0.to_string()].as_array().unwrap().is_empty(), "commit indexes are drawn");
    assert!(d["bands"].as_array().unwrap().iter().any(|b| b["kind"] == "disconnect"), "the test's disconnects");
    assert!(d["history_link"].is_null(), "no client history in a Raft run");
}

#[test]
fn a_key_value_run_links_to_its_history_page_and_back() {
    let dir = scratch("kv");
    let status = replay(&["kvraft::unreliable_3a", "--seed", "0", "--bug", "no-duplicate-detection"], &dir);
    assert_eq!(status, exit::SAFETY);
    let d = data(&dir.join("timeline.html"));
    assert_eq!(d["history_link"], "history.html");
    let timeline = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    assert!(timeline.contains(r#"<a id="history-link" href="history.html">"#));
    let history = std::fs::read_to_string(dir.join("history.html")).unwrap();
    assert!(history.contains(r#"<a href="timeline.html">"#), "the history page links back");
    // The wrong read is the step, drawn on its client's lane.
    let step = &d["check"]["step"];
    assert_eq!(step["kind"], "return");
    assert!(lane_name(&d, &step["lane"]).starts_with("client "));
    // The duplicated append makes the history non-linearizable: its operations are marked.
    assert!(d["ops"].as_array().unwrap().iter().any(|o| o["failed"] == true));
    // A passing run marks nothing.
    let ok = scratch("kv-pass");
    assert_eq!(replay(&["kvraft::basic_3a", "--seed", "1"], &ok), exit::PASS);
    let d = data(&ok.join("timeline.html"));
    assert!(d["check"].is_null());
    assert!(d["ops"].as_array().unwrap().iter().all(|o| o["failed"] == false));
}

#[test]
fn an_unwritable_folder_is_refused_before_the_run() {
    let dir = scratch("unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    assert_eq!(replay(&["raft::initial_election_2a", "--seed", "0"], &file.join("sub")), exit::BAD_INPUT);
}

/// `chromium`, if installed; with SIMLAB_REQUIRE_BROWSER=1 a missing one fails the test.
#[allow(clippy::disallowed_methods)] // allow-entropy: a test's own switches, outside any run
fn chromium() -> Option<PathBuf> {
    let path =
        std::env::var_os("SIMLAB_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var_os("SIMLAB_REQUIRE_BROWSER").is_some_and(|v| v == "1");
    assert!(!required, "SIMLAB_REQUIRE_BROWSER=1 but there is no browser at {}", path.display());
    println!("SKIPPED: no headless browser at {} (apt-get install chromium, or set SIMLAB_CHROMIUM)", path.display());
    None
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom` or `--screenshot=FILE`) and
/// returns its stdout.
fn browse(browser: &Path, page: &Path, mode: &str, work: &Path) -> String {
    let profile = work.join(format!("profile-{}", mode.len()));
    let _ = std::fs::remove_dir_all(&profile);
    let out = work.join("stdout.html");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        // A file, not a pipe: a full pipe would block the browser until read.
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        assert!(waited < Duration::from_secs(180), "chromium did not finish within three minutes");
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    assert!(child.wait().unwrap().success(), "chromium failed on {}", page.display());
    std::fs::read_to_string(&out).unwrap_or_default()
}

/// The value of `attr="…"` on the page's `<body>`.
fn body_attr(dom: &str, attr: &str) -> Option<String> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let at = body.find(&format!("{attr}=\""))? + attr.len() + 2;
    Some(body[at..at + body[at..].find('"')?].to_string())
}

#[test]
fn a_browser_draws_the_failure_mark_and_a_screenshot_is_taken() {
    let Some(browser) = chromium() else { return };
    let dir = scratch("browser");
    assert_eq!(
        replay(&["raft::figure8_unreliable_2c", "--seed", "195", "--bug", "commit-old-term"], &dir),
        exit::SAFETY
    );
    let page = dir.join("timeline.html");
    let dom = browse(&browser, &page, "--dump-dom", &dir);
    assert_eq!(dom.matches(r#"id="failure-mark""#).count(), 1, "the failure is marked");
    assert_eq!(dom.matches(r#"id="step-mark""#).count(), 1, "the violating step is ringed");
    assert!(dom.contains(r#"id="violating-step""#) && dom.contains("leader in term 77"));
    assert_eq!(body_attr(&dom, "data-view").as_deref(), Some("failure"), "a failing run opens on its failure");
    let ms: f64 = body_attr(&dom, "data-drawn-ms").expect("the page timed itself").parse().unwrap();
    assert!(ms > 0.0);
    // The mark is inside the drawn area: the failure view puts the check near the right edge.
    let mark = &dom[dom.find(r#"id="failure-mark""#).unwrap()..];
    assert!(!mark[..mark.find('>').unwrap()].contains("display: none"), "the mark is visible");
    let shot = dir.join("figure8-commit-old-term.png");
    browse(&browser, &page, &format!("--screenshot={}", shot.display()), &dir);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a real picture: {} bytes", png.len());
    println!("screenshot: {}", shot.display());
    // The key/value history page opens too, with its link back.
    let kv = scratch("browser-kv");
    assert_eq!(replay(&["kvraft::unreliable_3a", "--seed", "0", "--bug", "no-duplicate-detection"], &kv), exit::SAFETY);
    let dom = browse(&browser, &kv.join("history.html"), "--dump-dom", &kv);
    assert!(dom.contains(r#"id="timeline-link""#));
    let dom = browse(&browser, &kv.join("timeline.html"), "--dump-dom", &kv);
    assert!(dom.contains(r#"id="history-link""#) && dom.contains(r#"id="failure-mark""#));
}

#[test]
fn a_page_of_more_than_100000_events_times_its_first_drawing() {
    let Some(browser) = chromium() else { return };
    // kvraft::basic_3a seed 0: 106 446 trace events, 39 455 messages, 3 933 operations (since
    // session 7; 134 035 events before commit news rode on the next AppendEntries).
    let dir = scratch("big");
    assert_eq!(replay(&["kvraft::basic_3a", "--seed", "0"], &dir), exit::PASS);
    let dom = browse(&browser, &dir.join("timeline.html"), "--dump-dom", &dir);
    let events: u64 = body_attr(&dom, "data-events").unwrap().parse().unwrap();
    assert!(events >= 100_000, "{events} events");
    assert_eq!(body_attr(&dom, "data-view").as_deref(), Some("whole run"), "every message is drawn");
    let messages = body_attr(&dom, "data-messages").unwrap();
    assert_eq!(body_attr(&dom, "data-drawn-messages").as_deref(), Some(messages.as_str()));
    let ms: f64 = body_attr(&dom, "data-drawn-ms").expect("the page timed itself").parse().unwrap();
    // A figure for BENCHMARKS.md, not a bound: wall time never fails a test.
    println!("TIMELINE SELF-TIMING: {events} events, {messages} messages: first complete drawing in {ms:.1} ms");
}
