//! The flags a `tessera` subcommand documents in `--help`, read from the built binary.

use std::collections::BTreeSet;
use std::process::Command;

/// The long flags (`--name`) that `tessera <subcommand> --help` lists, or an error saying why
/// they could not be read (most often: the subcommand does not exist in this build).
pub fn flags_of(subcommand: &str) -> Result<BTreeSet<String>, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([subcommand, "--help"])
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .output()
        .map_err(|e| format!("could not run tessera {subcommand} --help: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`tessera {subcommand} --help` failed (exit {:?}: {}); this build has no \
             `{subcommand}` subcommand yet: merge the branch that adds it",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let flags = parse_help(&text);
    if flags.is_empty() {
        return Err(format!(
            "`tessera {subcommand} --help` lists no flags:\n{text}"
        ));
    }
    Ok(flags)
}

/// Long flags on clap's option lines (`  -h, --help`, `      --node-name <NODE_NAME>`).
pub fn parse_help(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') {
            continue;
        }
        for token in trimmed.split_whitespace() {
            let token = token.trim_end_matches(',');
            if let Some(name) = token.strip_prefix("--") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() {
                    flags.insert(format!("--{name}"));
                }
            } else if !token.starts_with('-') {
                // Past the flag names: value names and the description.
                break;
            }
        }
    }
    flags
}

#[test]
fn parse_help_reads_short_long_and_value_forms() {
    let text = "Usage: tessera plugin [OPTIONS]\n\nOptions:\n      --node-name <NODE_NAME>  Node [env: NODE_NAME=]\n  -h, --help  Print help --not-a-flag\n      --fake-gpus[=<P>]  x\n";
    let flags: Vec<String> = parse_help(text).into_iter().collect();
    assert_eq!(flags, ["--fake-gpus", "--help", "--node-name"]);
}
