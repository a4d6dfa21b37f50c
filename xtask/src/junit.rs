//! `--junit FILE` (sweep, merge): a JUnit XML report for CI systems that draw one. One test
//! suite per family; in it one test case per scenario (failed when any of its runs failed,
//! with the count and the failing seeds) and one per failing run (its class, check and
//! summary, and the line that reproduces it). A panic is an `<error>`, other failures are
//! `<failure>`s, as JUnit tells an unexpected error from a failed assertion.

use crate::results::{RunLine, Tally};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::collections::BTreeMap;
use std::io;

/// XML 1.0 cannot carry most control characters, even escaped: drop them.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect()
}

fn secs(ms: f64) -> String {
    format!("{:.3}", ms / 1e3)
}

/// The report of `tally`, named `name`; `reproduce` gives a failing run's command line.
pub fn render(name: &str, tally: &Tally, reproduce: &dyn Fn(&RunLine) -> String) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut w, name, tally, reproduce).expect("writing to memory cannot fail");
    String::from_utf8(w.into_inner()).expect("the writer writes UTF-8")
}

fn write(w: &mut Writer<Vec<u8>>, name: &str, tally: &Tally, reproduce: &dyn Fn(&RunLine) -> String) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    // Group scenarios and failing runs by family, in name order.
    let mut families: BTreeMap<&str, (Vec<&str>, Vec<&RunLine>)> = BTreeMap::new();
    for sc in tally.per_scenario.keys() {
        families.entry(family(sc)).or_default().0.push(sc);
    }
    for line in &tally.failing {
        families.entry(family(&line.run.scenario)).or_default().1.push(line);
    }
    let is_error = |l: &RunLine| l.run.outcome == "panic";
    let scenario_failed = |sc: &str| tally.per_scenario.get(sc).is_some_and(|s| s.failed > 0);
    let total_wall: f64 = tally.per_scenario.values().map(|s| s.wall_ms).sum();
    let tests = tally.per_scenario.len() + tally.failing.len();
    let errors = tally.failing.iter().filter(|l| is_error(l)).count();
    let failed_scenarios = tally.per_scenario.values().filter(|s| s.failed > 0).count();
    let failures = failed_scenarios + tally.failing.len() - errors;
    w.create_element("testsuites")
        .with_attribute(("name", clean(name).as_str()))
        .with_attribute(("tests", tests.to_string().as_str()))
        .with_attribute(("failures", failures.to_string().as_str()))
        .with_attribute(("errors", errors.to_string().as_str()))
        .with_attribute(("time", secs(total_wall).as_str()))
        .write_inner_content(|w| {
            for (fam, (scenarios, failing)) in &families {
                let wall: f64 = scenarios.iter().map(|s| tally.per_scenario[*s].wall_ms).sum();
                let errors = failing.iter().filter(|l| is_error(l)).count();
                let failures = scenarios.iter().filter(|s| scenario_failed(s)).count() + failing.len() - errors;
                w.create_element("testsuite")
                    .with_attribute(("name", clean(fam).as_str()))
                    .with_attribute(("tests", (scenarios.len() + failing.len()).to_string().as_str()))
                    .with_attribute(("failures", failures.to_string().as_str()))
                    .with_attribute(("errors", errors.to_string().as_str()))
                    .with_attribute(("time", secs(wall).as_str()))
                    .write_inner_content(|w| {
                        for sc in scenarios {
                            scenario_case(w, sc, tally)?;
                        }
                        for line in failing {
                            run_case(w, line, reproduce(line))?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn family(scenario: &str) -> &str {
    scenario.split("::").next().unwrap_or(scenario)
}

fn scenario_case(w: &mut Writer<Vec<u8>>, sc: &str, tally: &Tally) -> io::Result<()> {
    let s = tally.per_scenario[sc];
    let case = w
        .create_element("testcase")
        .with_attribute(("classname", clean(family(sc)).as_str()))
        .with_attribute(("name", clean(sc).as_str()))
        .with_attribute(("time", secs(s.wall_ms).as_str()));
    if s.failed == 0 {
        case.write_empty()?;
        return Ok(());
    }
    let failing: Vec<&RunLine> = tally.failing.iter().filter(|l| l.run.scenario == sc).collect();
    let message = format!("{} of {} runs failed", s.failed, s.runs);
    let body: Vec<String> = failing
        .iter()
        .map(|l| format!("seed {}{}: {}", l.run.seed, bug_suffix(l), l.message.as_deref().unwrap_or(&l.run.outcome)))
        .collect();
    case.write_inner_content(|w| {
        w.create_element("failure")
            .with_attribute(("message", message.as_str()))
            .with_attribute(("type", "runs-failed"))
            .write_text_content(BytesText::new(&clean(&body.join("\n"))))?;
        Ok(())
    })?;
    Ok(())
}

fn bug_suffix(l: &RunLine) -> String {
    l.run.bug.as_ref().map(|b| format!(" (bug {b})")).unwrap_or_default()
}

fn run_case(w: &mut Writer<Vec<u8>>, l: &RunLine, reproduce: String) -> io::Result<()> {
    let message =
        l.message.clone().unwrap_or_else(|| format!("{} ({})", l.run.outcome, l.run.checker.as_deref().unwrap_or("?")));
    let kind = if l.run.outcome == "panic" { "error" } else { "failure" };
    let body = format!(
        "{}\noutcome: {}, caught by {}\ntrace hash: {}\nREPRODUCE WITH: {reproduce}",
        message,
        l.run.outcome,
        l.run.checker.as_deref().unwrap_or("-"),
        l.run.trace_hash
    );
    w.create_element("testcase")
        .with_attribute(("classname", clean(&l.run.scenario).as_str()))
        .with_attribute(("name", format!("seed {}{}", l.run.seed, bug_suffix(l)).as_str()))
        .with_attribute(("time", secs(l.wall_ms.unwrap_or(0.0)).as_str()))
        .write_inner_content(|w| {
            w.create_element(kind)
                .with_attribute(("message", clean(&message).as_str()))
                .with_attribute(("type", l.run.outcome.as_str()))
                .write_text_content(BytesText::new(&clean(&body)))?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;
    use scenarios::golden::GoldenRun;

    fn line(scenario: &str, seed: u64, outcome: &str, message: Option<&str>) -> RunLine {
        RunLine {
            run: GoldenRun {
                scenario: scenario.into(),
                seed,
                bug: None,
                outcome: outcome.into(),
                checker: (outcome != "pass").then(|| "kv::get".into()),
                trace_hash: "00000000000000ff".into(),
                events: 1,
                sim_time_ns: 1,
            },
            wall_ms: Some(2.0),
            message: message.map(String::from),
        }
    }

    #[test]
    fn one_case_per_scenario_and_per_failing_run_escaped() {
        let mut t = Tally::default();
        t.add(&line("raft::a", 0, "pass", None));
        t.add(&line("raft::a", 1, "safety", Some("got \"x\" <b> & \u{1} more")));
        t.add(&line("kvraft::b", 0, "panic", Some("assert failed")));
        t.add(&line("kvraft::c", 0, "pass", None));
        let xml = render("sweep", &t, &|l| format!("cargo xtask replay {} --seed {}", l.run.scenario, l.run.seed));
        // It parses, and has what it says.
        let mut reader = Reader::from_str(&xml);
        let (mut cases, mut failures, mut errors) = (0, 0, 0);
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => match e.name().into_inner() {
                    "testcase" => cases += 1,
                    "failure" => failures += 1,
                    "error" => errors += 1,
                    _ => {}
                },
                _ => {}
            }
        }
        assert_eq!(cases, 3 + 2, "three scenarios, two failing runs");
        assert_eq!((failures, errors), (2 + 1, 1), "raft::a and kvraft::b fail as scenarios; the panic is an error");
        assert!(xml.contains("&quot;x&quot; &lt;b&gt; &amp;"), "{xml}");
        assert!(!xml.contains('\u{1}'));
        assert!(xml.contains("REPRODUCE WITH: cargo xtask replay raft::a --seed 1"));
        assert!(xml.contains(r#"<testsuites name="sweep" tests="5" failures="3" errors="1""#), "{xml}");
    }
}
