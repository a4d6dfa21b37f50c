//! The README cannot drift from the command line (rust-analyzer's "tidy" habit): every
//! `cargo xtask …` command line it quotes — in shell blocks and in inline code — parses with
//! the real clap definitions and names scenarios, bugs and seed files that exist; and its
//! library example is the one the crate docs compile.

use std::path::Path;

/// Splits a command line into words the way a shell would for these simple lines: spaces
/// separate, single and double quotes group.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Every `cargo xtask …` command line in a Markdown text, with its line number.
fn quoted_command_lines(markdown: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut prose = String::new();
    let mut fence: Option<String> = None;
    for (i, line) in markdown.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            fence = if fence.is_some() { None } else { Some(rest.trim().to_string()) };
            prose.push('\n');
            continue;
        }
        match &fence {
            Some(lang) if lang == "sh" => {
                if let Some(at) = line.find("cargo xtask") {
                    let command = line[at..].split(" #").next().unwrap_or("").trim();
                    found.push((n, command.to_string()));
                }
                prose.push('\n');
            }
            Some(_) => prose.push('\n'),
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    // Inline code may wrap across lines: split the prose on backticks.
    let mut line = 1;
    for (i, part) in prose.split('`').enumerate() {
        if i % 2 == 1 {
            let span = part.split_whitespace().collect::<Vec<_>>().join(" ");
            // `cargo xtask` alone names the tool, not a command line.
            if let Some(at) = span.find("cargo xtask ") {
                found.push((line, span[at..].to_string()));
            }
        }
        line += part.matches('\n').count();
    }
    found
}

#[test]
fn every_command_line_the_readme_quotes_is_real() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // Seed files are named relative to the repository root, where `cargo xtask` runs. The
    // other tests of this binary use no relative path, so changing the directory disturbs
    // none of them.
    std::env::set_current_dir(&root).unwrap();
    let catalogue = scenarios::catalogue();
    let lines = quoted_command_lines(&readme);
    assert!(lines.len() >= 20, "the README quotes many command lines; found only {lines:?}");
    let mut bad = Vec::new();
    for (n, line) in &lines {
        // A redirection or a pipe ends the command line (`sweep … --format json > part.jsonl`).
        let words: Vec<String> =
            shell_words(line).into_iter().take_while(|w| !matches!(w.as_str(), ">" | ">>" | "|" | "2>")).collect();
        assert_eq!(&words[..2], ["cargo", "xtask"], "line {n}: {line}");
        let args = std::iter::once("xtask".to_string()).chain(words[2..].iter().cloned());
        if let Err(e) = simlab_cli::check_command_line(&catalogue, args) {
            bad.push(format!("README.md line {n}: `{line}`: {}", e.lines().next().unwrap_or("")));
        }
    }
    assert!(bad.is_empty(), "command lines in README.md that the command line refuses:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_rejects_what_the_command_line_would() {
    // So that the test above cannot pass vacuously.
    let catalogue = scenarios::catalogue();
    for line in [
        "cargo xtask list --bugz",
        "cargo xtask run raft::no_such_test --seed 1",
        "cargo xtask sweep raft --seeds 9..3",
        "cargo xtask sweep raft --seeds 0..3 --bug no-such-bug",
        "cargo xtask replay seeds/no-such-seed.toml",
        "cargo xtask prop 'raft::nothing_*'",
        "cargo xtask bench net|scenarios|sweep",
    ] {
        let args = std::iter::once("xtask".to_string()).chain(shell_words(line).into_iter().skip(2));
        assert!(simlab_cli::check_command_line(&catalogue, args).is_err(), "{line} should be refused");
    }
    let found =
        quoted_command_lines("x `cargo\nxtask list raft` y\n```sh\nA=1 cargo xtask prop 'raft::bug_*'  # c\n```\n");
    assert_eq!(found, [(4, "cargo xtask prop 'raft::bug_*'".to_string()), (1, "cargo xtask list raft".to_string())]);
    assert_eq!(shell_words("a 'b c' \"d\" ''"), ["a", "b c", "d", ""]);
}

#[test]
fn the_readme_library_example_is_the_one_the_crate_docs_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lib = std::fs::read_to_string(root.join("xtask/src/lib.rs")).unwrap();
    let start = readme.find("```rust\nuse scenarios::registry::").expect("the README shows the library example");
    let example = &readme[start + "```rust\n".len()..];
    let example = &example[..example.find("```").unwrap()];
    let docs: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(docs.contains(example.trim_end()), "README's example differs from the doctest in xtask/src/lib.rs");
}

#[test]
fn the_readme_crate_template_denies_the_determinism_lints_as_this_workspace_does() {
    // Before, the template had no [lints.clippy] table, so `cargo clippy` in a user's crate
    // only warned about a HashMap or thread_rng (the lints are warn-level), though the README
    // said it refused them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("```toml\n[package]\nname = \"my-raft\"").expect("the README shows the crate template");
    let template = &readme[start + "```toml\n".len()..];
    let template: toml::Table = toml::from_str(&template[..template.find("```").unwrap()]).unwrap();
    let ours: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let want = &ours["workspace"]["lints"]["clippy"];
    assert_eq!(&template["lints"]["clippy"], want, "the template's [lints.clippy] is the workspace's");
    for lint in ["disallowed_types", "disallowed_methods"] {
        assert_eq!(want[lint].as_str(), Some("deny"), "{lint}");
    }
    assert!(readme.contains("cp ../simlab/clippy.toml ."), "the steps copy clippy.toml, which the lints read");
}
