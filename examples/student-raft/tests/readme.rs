//! The repository README's `cargo student …` command lines are real: each parses with the
//! command line and names scenarios and planted bugs of this crate's catalogue (as
//! `xtask/tests/readme.rs` checks the `cargo xtask …` lines against simlab's).

#[test]
fn every_cargo_student_line_of_the_readme_is_real() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let catalogue = student_raft::catalogue();
    let lines: Vec<&str> = readme
        .lines()
        // In a shell block up to a comment; in inline code up to its closing backtick.
        .filter_map(|l| l.find("cargo student ").map(|at| l[at..].split(['`', '#']).next().unwrap_or("").trim()))
        // `cargo … …` names the tool, not a command line.
        .filter(|l| l.split_whitespace().nth(2) != Some("…"))
        .collect();
    assert!(lines.len() >= 2, "the README quotes this example's command: {lines:?}");
    for line in lines {
        let words: Vec<String> = line.split_whitespace().map(|w| w.trim_matches('\'').to_string()).collect();
        let args = std::iter::once("student".to_string()).chain(words[2..].iter().cloned());
        if let Err(e) = simlab_cli::check_command_line(&catalogue, args) {
            panic!("README: `{line}`: {}", e.lines().next().unwrap_or(""));
        }
    }
    // The check is not vacuous.
    let wrong = ["student", "sweep", "nosuchfamily", "--seeds", "0..1"].map(String::from);
    assert!(simlab_cli::check_command_line(&catalogue, wrong).is_err());
}
