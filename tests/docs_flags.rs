//! The documentation's commands and paths are real: every `tessera <subcommand> --flag` written
//! in README.md, docs/*.md and deploy/ is a flag that `tessera <subcommand> --help` lists, and
//! every repository path the Markdown names exists.
//!
//! A subcommand the docs use but this build lacks fails the test with a message naming the
//! subcommand and where the docs use it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/help.rs"]
mod help;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Subcommands whose flags the docs may show.
const SUBCOMMANDS: [&str; 6] = [
    "plugin",
    "extender",
    "simulate",
    "slices",
    "allocate",
    "recommend",
];
/// Top-level folders whose paths are checked when Markdown names them.
const PATH_ROOTS: [&str; 8] = [
    "deploy/", "docs/", "tests/", "e2e/", "benches/", "data/", "src/", ".ci/",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, docs/*.md and every text file under deploy/.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    walk(&root.join("deploy"), &mut files);
    files.sort();
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["md", "yaml", "yml", "txt", "tpl", "json"].contains(&e))
        {
            out.push(path);
        }
    }
}

/// One `tessera <subcommand> …` use: where, and the flags it passes.
#[derive(Debug)]
struct Use {
    place: String,
    subcommand: String,
    flags: Vec<String>,
}

/// Every `tessera <subcommand>` invocation in `text`, joining `\`-continued lines and stopping
/// at a closing backtick, a shell comment or a pipe.
fn uses(file: &str, text: &str) -> Vec<Use> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut from = 0;
        while let Some(pos) = line[from..].find("tessera ") {
            let start = from + pos;
            from = start + "tessera ".len();
            // `kubectl -n tessera …`, `tessera-plugin` and the like are not invocations.
            if start > 0 && !line[..start].ends_with([' ', '`', '(', '$', '\t', '"', '\'']) {
                continue;
            }
            let rest = &line[from..];
            let Some(sub) = SUBCOMMANDS.iter().find(|s| {
                rest.starts_with(*s)
                    && !rest[s.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '-')
            }) else {
                continue;
            };
            let in_code_span = line[..start].matches('`').count() % 2 == 1;
            let mut command = String::from(&rest[sub.len()..]);
            let mut next = i + 1;
            while command.trim_end().ends_with('\\') && next < lines.len() {
                command = format!(
                    "{} {}",
                    command.trim_end().trim_end_matches('\\'),
                    lines[next]
                );
                next += 1;
            }
            if in_code_span {
                command = command.split('`').next().unwrap().to_owned();
            }
            let command = command
                .split(" #")
                .next()
                .unwrap()
                .split(" |")
                .next()
                .unwrap();
            let flags = command
                .split_whitespace()
                .filter_map(|t| {
                    let t = t.trim_start_matches('[');
                    let name: String = t
                        .strip_prefix("--")?
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    (!name.is_empty()).then(|| format!("--{name}"))
                })
                .collect();
            out.push(Use {
                place: format!("{file}:{}", i + 1),
                subcommand: (*sub).to_owned(),
                flags,
            });
        }
    }
    out
}

#[test]
fn every_documented_tessera_flag_is_in_help() {
    let root = root();
    let mut by_sub: BTreeMap<String, Vec<Use>> = BTreeMap::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.strip_prefix(&root).unwrap().display().to_string();
        for u in uses(&file, &text) {
            by_sub.entry(u.subcommand.clone()).or_default().push(u);
        }
    }
    assert!(
        by_sub
            .get("simulate")
            .is_some_and(|u| u.iter().any(|u| !u.flags.is_empty())),
        "the docs show no `tessera simulate --flag`; the scanner is broken"
    );
    let mut problems = Vec::new();
    for (sub, uses) in &by_sub {
        match help::flags_of(sub) {
            Err(e) => problems.push(format!("{e} (used at {})", uses[0].place)),
            Ok(known) => {
                for u in uses {
                    for flag in &u.flags {
                        if !known.contains(flag) {
                            problems.push(format!(
                                "{}: `tessera {sub} {flag}` is not in `tessera {sub} --help`",
                                u.place
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Repository paths named in Markdown (`deploy/examples/README.md`, `.ci/helm-check`, …).
fn named_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for token in text.split(|c: char| c.is_whitespace() || "`()[]<>\"',;|*".contains(c)) {
        let token = token.trim_end_matches(['.', ':']);
        if !PATH_ROOTS.iter().any(|r| token.starts_with(r)) {
            continue;
        }
        // Placeholders, globs, URLs' tails and generated output are not repository paths.
        if token.contains(['{', '$', '?', '=', '#'])
            || token.contains("NNNN")
            || token.contains("...")
        {
            continue;
        }
        out.insert(token.trim_end_matches('/').to_owned());
    }
    out
}

#[test]
fn every_repository_path_in_the_markdown_exists() {
    let root = root();
    let mut missing = Vec::new();
    for path in documents() {
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for named in named_paths(&text) {
            if !root.join(&named).exists() {
                missing.push(format!(
                    "{}: {named}",
                    path.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn scanner_reads_inline_fenced_and_continued_commands() {
    let text = "Run `tessera simulate --seeds 42 --policy fgd` now.\n\
                tessera plugin --node-name n1 \\\n  --fake-gpus h100x8 # not --this\n\
                kubectl -n tessera get pods --all\n\
                tessera simulate [--nodes CSV] | head --lines 3\n";
    let found = uses("x.md", text);
    let flags: Vec<(&str, Vec<&str>)> = found
        .iter()
        .map(|u| {
            (
                u.subcommand.as_str(),
                u.flags.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            ("simulate", vec!["--seeds", "--policy"]),
            ("plugin", vec!["--node-name", "--fake-gpus"]),
            ("simulate", vec!["--nodes"]),
        ]
    );
    assert_eq!(found[1].place, "x.md:2");
}
