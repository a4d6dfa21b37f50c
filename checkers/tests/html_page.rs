//! The history page: its embedded data (always), and its drawing in a real headless
//! browser (when Debian's `chromium` is installed).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use checkers::formats::porcupine_kv::read_kv_log;
use checkers::html::{render, Annotation, HtmlOptions};
use checkers::linearizability::{check, CheckOptions, CheckResult, History, Operation, Verdict};
use checkers::models::kv::{KvInput, KvModel, KvOutput};
use serde_json::Value;

/// Key "a" is fine; key "b" has a read of a value nobody wrote; one call never returns.
fn broken_history() -> History<KvInput, KvOutput> {
    History::new(vec![
        Operation::new(0, KvInput::put("a", "1"), 0, KvOutput::Ack, 10),
        Operation::new(1, KvInput::get("a"), 5, KvOutput::value("1"), 12),
        Operation::new(2, KvInput::append("b", "x"), 1, KvOutput::Ack, 4),
        Operation::new(0, KvInput::get("b"), 11, KvOutput::value("x</script><b>"), 14),
        Operation::new(1, KvInput::append("b", "y"), 15, KvOutput::Ack, 20),
        Operation::pending(2, KvInput::put("a", "2"), 15),
    ])
    .unwrap()
}

fn annotations() -> Vec<Annotation> {
    vec![
        Annotation::new(3, 9, "partition {s1} | {s2 s3}"),
        Annotation::new(12, 12, "crash").in_row("server 1"),
        Annotation::new(13, 30, "leader s2, term 3").in_row("server 2"),
    ]
}

/// The JSON embedded in a page.
fn embedded(page: &str) -> Value {
    let open = r#"<script type="application/json" id="history-data">"#;
    let start = page.find(open).expect("the page embeds its data") + open.len();
    let len = page[start..].find("</script>").expect("the data element is closed");
    serde_json::from_str(&page[start..start + len]).expect("the embedded data parses")
}

fn statuses(data: &Value) -> Vec<(u64, String)> {
    data["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_u64().unwrap(), o["status"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn page_embeds_one_box_per_operation_and_marks_failures() {
    let history = broken_history();
    let result = check(&KvModel, &history, &CheckOptions::default());
    assert_eq!(result.verdict, Verdict::NotLinearizable);
    assert_eq!(result.failing_ops(), vec![3]);
    let page = render(&KvModel, &history, &result, &annotations(), &HtmlOptions::default());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<b>"), "text from the history is escaped out of the markup");
    assert!(!page.contains("src=\"http"), "the page is self-contained");
    let data = embedded(&page);
    assert_eq!(data["verdict"], "not linearizable");
    assert_eq!(data["total_ops"], 6);
    assert_eq!(data["capped"], false);
    let ops = statuses(&data);
    let mut ids: Vec<u64> = ops.iter().map(|o| o.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 5], "one box per operation");
    for (id, status) in &ops {
        let expected = match id {
            3 => "failed",
            0 | 1 | 5 => "ok",
            2 => "partial",
            _ => "unlinearized",
        };
        assert_eq!(status, expected, "operation {id}");
    }
    let op3 = data["ops"].as_array().unwrap().iter().find(|o| o["id"] == 3).unwrap();
    assert_eq!(op3["text"], r#"get("b") -> "x</script><b>""#);
    // Rows: the shared annotation row, two named rows, then the three clients.
    let rows: Vec<&str> = data["rows"].as_array().unwrap().iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(rows, ["events", "server 1", "server 2", "client 0", "client 1", "client 2"]);
    assert_eq!(data["annotations"].as_array().unwrap().len(), 3);
    // The refuted partition (key "b") is shown first, its prefix ending blocked by op 3.
    let initial = &data["initial"];
    let part = &data["partitions"][initial[0].as_u64().unwrap() as usize];
    assert_eq!(part["label"], r#"key "b""#);
    assert_eq!(part["outcome"], "not linearizable");
    let lin = &part["lins"][initial[1].as_u64().unwrap() as usize];
    assert_eq!(lin["blocked"], serde_json::json!([3]));
    assert_eq!(lin["end_state"], r#""x""#);
    let states: Vec<&str> = lin["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, [r#""x""#]);
    // The other partition's witness carries the state after each step.
    let ok = data["partitions"].as_array().unwrap().iter().find(|p| p["outcome"] == "linearizable").unwrap();
    let states: Vec<&str> =
        ok["lins"][0]["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, [r#""1""#, r#""1""#, r#""2""#]);
}

#[test]
fn a_linearizable_page_has_no_failures() {
    let history = History::new(vec![
        Operation::new(0, KvInput::put("a", "1"), 0, KvOutput::Ack, 10),
        Operation::new(1, KvInput::get("a"), 5, KvOutput::value(""), 12),
    ])
    .unwrap();
    let result = check(&KvModel, &history, &CheckOptions::default());
    let data = embedded(&render(&KvModel, &history, &result, &[], &HtmlOptions::default()));
    assert_eq!(data["verdict"], "linearizable");
    assert!(statuses(&data).iter().all(|(_, s)| s == "ok"));
    assert_eq!(data["rows"].as_array().unwrap().len(), 2, "no annotation rows without annotations");
    assert_eq!(data["partitions"][0]["lins"][0]["len"], 2);
}

/// A long history where one late read is wrong.
fn long_history(n: u64) -> History<KvInput, KvOutput> {
    let mut ops = Vec::new();
    let mut value = String::new();
    for i in 0..n {
        let t = 10 * i;
        if i == n - 100 {
            ops.push(Operation::new(i % 5, KvInput::get("k"), t, KvOutput::value("wrong"), t + 5));
        } else if i % 2 == 0 {
            value.push('x');
            ops.push(Operation::new(i % 5, KvInput::append("k", "x"), t, KvOutput::Ack, t + 5));
        } else {
            ops.push(Operation::new(i % 5, KvInput::get("k"), t, KvOutput::value(value.clone()), t + 5));
        }
    }
    History::new(ops).unwrap()
}

#[test]
fn huge_histories_are_capped_around_the_failure_and_say_so() {
    let history = long_history(3000);
    let result = check(&KvModel, &history, &CheckOptions::default());
    assert_eq!(result.failing_ops(), vec![2900]);
    let options = HtmlOptions { max_ops: 500, max_steps: 400, max_text: 40, ..HtmlOptions::default() };
    let page = render(&KvModel, &history, &result, &[], &options);
    let data = embedded(&page);
    assert_eq!(data["capped"], true);
    assert_eq!(data["total_ops"], 3000);
    let ops = statuses(&data);
    assert_eq!(ops.len(), 500);
    assert!(ops.contains(&(2900, "failed".to_string())), "the window contains the failure");
    let notes = data["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().starts_with("Capped: showing 500 of 3000 operations")));
    let drawn: usize =
        data["partitions"][0]["lins"].as_array().unwrap().iter().map(|l| l["steps"].as_array().unwrap().len()).sum();
    assert!(drawn <= 400, "{drawn} steps drawn over a limit of 400");
    for op in data["ops"].as_array().unwrap() {
        assert!(op["text"].as_str().unwrap().chars().count() <= 40);
    }
    assert!(page.len() < 400_000, "a capped page stays small: {} bytes", page.len());
}

/// `chromium`, if installed.
#[allow(clippy::disallowed_methods)] // allow-entropy: a test's own switches, outside any run
fn chromium() -> Option<PathBuf> {
    let path =
        std::env::var_os("SIMLAB_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        Some(path)
    } else {
        println!(
            "SKIPPED: no headless browser at {} (apt-get install chromium, or set SIMLAB_CHROMIUM)",
            path.display()
        );
        None
    }
}

/// The DOM of `page` after its script ran, as a headless browser dumps it.
fn rendered_dom(browser: &Path, page: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("simlab-html-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("page.html");
    std::fs::write(&file, page).unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        // A file, not a pipe: a pipe would fill up and block the browser until we read it.
        .stdout(std::fs::File::create(dir.join("dom.html")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited > Duration::from_secs(120) {
            child.kill().ok();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    let status = child.wait().unwrap();
    let dom = std::fs::read_to_string(dir.join("dom.html")).expect("the DOM is UTF-8");
    std::fs::remove_dir_all(&dir).ok();
    assert!(status.success(), "chromium failed: {status:?}");
    dom
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

fn assert_drawn(dom: &str, history_ops: usize, failing: usize, result: &CheckResult) {
    assert_eq!(count(dom, "class=\"op-box "), history_ops, "one drawn box per operation");
    assert_eq!(count(dom, &format!("data-rendered-ops=\"{history_ops}\"")), 1, "the script ran to the end");
    assert_eq!(count(dom, " failed\""), failing, "failing boxes are marked");
    if result.verdict != Verdict::Unknown {
        assert!(count(dom, "class=\"lin-point\"") > 0, "a linearization is drawn over the boxes");
    }
}

#[test]
fn a_browser_draws_the_boxes() {
    let Some(browser) = chromium() else { return };
    let history = broken_history();
    let result = check(&KvModel, &history, &CheckOptions::default());
    let page = render(&KvModel, &history, &result, &annotations(), &HtmlOptions::default());
    let dom = rendered_dom(&browser, &page, "small");
    assert_drawn(&dom, 6, 1, &result);
    assert_eq!(count(&dom, "class=\"ann-band\""), 3, "annotation bands are drawn");
    assert_eq!(count(&dom, "class=\"blocked-mark\""), 1, "the blocked operation is marked on the drawing");

    // A real failing history from the shared data, if present.
    let Some(dir) = common::porcupine_dir() else { return };
    let history = read_kv_log(&dir.join("kv/c10-bad.txt")).unwrap();
    let result = check(&KvModel, &history, &CheckOptions::default());
    let page = render(&KvModel, &history, &result, &[], &HtmlOptions::default());
    let dom = rendered_dom(&browser, &page, "c10-bad");
    assert_drawn(&dom, history.len(), result.failing_ops().len(), &result);
}

#[test]
fn an_empty_history_renders_with_its_annotations() {
    let history = History::<KvInput, KvOutput>::default();
    let result = check(&KvModel, &history, &CheckOptions::default());
    let data = embedded(&render(&KvModel, &history, &result, &annotations(), &HtmlOptions::default()));
    assert_eq!(data["verdict"], "linearizable");
    assert_eq!(data["ops"].as_array().unwrap().len(), 0);
    assert_eq!(data["annotations"].as_array().unwrap().len(), 3);
    assert!(data["initial"].is_null());
}
