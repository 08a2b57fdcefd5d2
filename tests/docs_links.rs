//! Documentation points only at what a clone has, and says where `tessera simulate` writes:
//! - every relative Markdown link and every backticked `../…` path in README.md and docs/
//!   resolves inside the repository (a link into the project's private notes did not);
//! - every `simulate … # writes target/<dir>/` comment names the directory the binary's
//!   defaults pick for those flags (`--cost` writes `target/tessera-sim-cost/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn markdown() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Relative targets of `[text](target)` links and backticked paths starting with `../`.
fn relative_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("](") {
        let rest = &text[i + 2..];
        if let Some(end) = rest.find(')') {
            let target = rest[..end].split('#').next().unwrap();
            if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_owned());
            }
        }
    }
    for part in text.split('`').skip(1).step_by(2) {
        if part.starts_with("../") && !part.contains(' ') {
            out.push(part.to_owned());
        }
    }
    out
}

/// Whether `path` (resolved) stays inside the repository and exists.
fn resolves_inside(base: &Path, target: &str) -> bool {
    let mut path = base.to_path_buf();
    for part in Path::new(target).components() {
        match part {
            std::path::Component::ParentDir if !path.pop() => return false,
            std::path::Component::ParentDir => {}
            std::path::Component::Normal(p) => path.push(p),
            _ => {}
        }
    }
    path.starts_with(root()) && path.exists()
}

#[test]
fn relative_links_resolve_inside_the_repository() {
    let mut broken = Vec::new();
    for file in markdown() {
        let text = std::fs::read_to_string(&file).unwrap();
        let base = file.parent().unwrap();
        for target in relative_targets(&text) {
            if !resolves_inside(base, &target) {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links out of the repository or to nothing:\n{}",
        broken.join("\n")
    );
}

/// The output directory `tessera simulate` picks for these flags when `--out` is absent.
fn default_out(flags: &str) -> &'static str {
    if flags.contains("--cluster mig") {
        "target/tessera-sim-mig/"
    } else if flags.contains("--cost") {
        "target/tessera-sim-cost/"
    } else {
        "target/tessera-sim/"
    }
}

#[test]
fn simulate_output_comments_name_the_real_default_directory() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in markdown() {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let Some((command, comment)) = line.split_once("# writes ") else {
                continue;
            };
            if !command.contains("simulate") || command.contains("--out") {
                continue;
            }
            checked += 1;
            let written = comment.split_whitespace().next().unwrap_or_default();
            if written != default_out(command) {
                wrong.push(format!(
                    "{}: `{}` writes {}, not {written}",
                    file.display(),
                    command.trim(),
                    default_out(command)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked > 0, "no `simulate … # writes` comment found");
}

#[test]
fn the_scanners_read_links_and_comments() {
    let targets = relative_targets("see [a](docs/x.md#s) and `../shared/y.md` and [w](https://e)");
    assert_eq!(targets, ["docs/x.md", "../shared/y.md"]);
    assert!(!resolves_inside(&root().join("docs"), "../../outside"));
    assert!(resolves_inside(&root().join("docs"), "install.md"));
    assert_eq!(default_out("simulate --cost"), "target/tessera-sim-cost/");
}
