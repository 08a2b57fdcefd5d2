//! The chart and the binary agree on their option lists without Helm: every value the chart's
//! schema allows for an enumerated flag is one `tessera plugin` accepts, and the other way
//! round (fake GPU profiles, MIG strategies, feature levels, log formats); and docs/install.md's
//! flag ↔ value table names every flag of `tessera plugin` and `tessera extender`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/help.rs"]
mod help;

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::CommandFactory;
use serde_json::Value;
use tessera::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    let path = root().join("deploy/helm/tessera/values.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The values the schema allows at a path of properties, without the empty string (which
/// means "flag not passed").
fn schema_enum(schema: &Value, path: &[&str]) -> BTreeSet<String> {
    let mut node = schema;
    for key in path {
        node = &node["properties"][key];
    }
    node["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("values.schema.json: {} has no enum", path.join(".")))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The values clap accepts for `--<flag>` (`flag` as written on the command line), from the
/// binary's own definition: of `tessera <subcommand>`, or of `tessera` (global flags).
fn binary_values(subcommand: Option<&str>, flag: &str) -> BTreeSet<String> {
    let cli = Cli::command();
    let command = match subcommand {
        Some(name) => cli
            .get_subcommands()
            .find(|c| c.get_name() == name)
            .unwrap_or_else(|| panic!("no subcommand {name}"))
            .clone(),
        None => cli,
    };
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(flag))
        .unwrap_or_else(|| panic!("no --{flag}"));
    let values: BTreeSet<String> = arg
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_owned())
        .collect();
    assert!(!values.is_empty(), "--{flag} lists no possible values");
    values
}

#[test]
fn enumerated_chart_values_are_exactly_what_the_binary_accepts() {
    let schema = schema();
    let pairs = [
        (&["plugin", "fakeGpus"][..], Some("plugin"), "fake-gpus"),
        (
            &["plugin", "migStrategy"][..],
            Some("plugin"),
            "mig-strategy",
        ),
        (&["plugin", "features"][..], Some("plugin"), "features"),
        (&["logging", "format"][..], None, "log-format"),
        (
            &["extender", "typical", "source"][..],
            Some("extender"),
            "typical",
        ),
    ];
    let mut problems = Vec::new();
    for (path, subcommand, flag) in pairs {
        let chart = schema_enum(&schema, path);
        let binary = binary_values(subcommand, flag);
        if chart != binary {
            problems.push(format!(
                "values.schema.json {} allows {chart:?}, `tessera {} --{flag}` takes {binary:?}",
                path.join("."),
                subcommand.unwrap_or("")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn install_doc_maps_every_flag_to_a_value() {
    let text = std::fs::read_to_string(root().join("docs/install.md")).unwrap();
    let start = text
        .find("Every flag of both subcommands maps to a value")
        .expect("docs/install.md: the flag ↔ value table");
    let table: String = text[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    let named = help::parse_help(
        &table
            .lines()
            .map(|l| {
                // One `--flag` per line for the help parser.
                l.split('`')
                    .filter(|w| w.starts_with("--") || w.contains(" --"))
                    .flat_map(|w| w.split_whitespace())
                    .filter(|w| w.starts_with("--"))
                    .map(|w| format!("  {w}\n"))
                    .collect::<String>()
            })
            .collect::<String>(),
    );
    let mut missing = Vec::new();
    for subcommand in ["plugin", "extender"] {
        for flag in help::flags_of(subcommand).unwrap() {
            if !["--help", "--version"].contains(&flag.as_str()) && !named.contains(&flag) {
                missing.push(format!("tessera {subcommand} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/install.md's flag table lacks: {}",
        missing.join(", ")
    );
}

/// Every `schedulerName` the examples set is a scheduler a default install deploys.
#[test]
fn examples_name_the_scheduler_a_default_install_deploys() {
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("deploy/helm/tessera/values.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        values["scheduler"]["enabled"], true,
        "the default install must deploy the second scheduler the examples name"
    );
    let default_name = values["scheduler"]["schedulerName"].as_str().unwrap();
    let mut named = 0;
    for entry in std::fs::read_dir(root().join("deploy/examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("schedulerName:") {
                named += 1;
                assert_eq!(
                    name.trim(),
                    default_name,
                    "{}: schedulerName {name} is not the chart's {default_name}",
                    path.display()
                );
            }
        }
    }
    assert!(named > 0, "no example names a scheduler");
}
