//! The release pipeline as files agrees with the chart and the crate (actionlint checks the
//! workflows' syntax in `.ci/run`; this checks what they say):
//! - CI runs `.ci/run`, nothing else;
//! - a `v*` tag builds amd64 and arm64 with SBOM and provenance, pushes to ghcr.io, and pushes
//!   the chart as an OCI artifact;
//! - the chart's default image is the repository the workflow publishes, at the appVersion;
//!   the lines the workflow rewrites in values.yaml exist exactly once;
//! - Cargo.toml's version, Chart.yaml's version and appVersion agree (the workflow refuses a
//!   tag otherwise), and a LICENSE, CHANGELOG entry and compatibility matrix exist.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn cargo_version() -> String {
    read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned()
}

#[test]
fn ci_workflow_runs_the_gate_script() {
    let ci = yaml(".github/workflows/ci.yml");
    let steps = ci["jobs"]["gate"]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["run"].as_str() == Some("bash .ci/run")),
        "ci.yml must run .ci/run"
    );
}

#[test]
fn release_workflow_builds_both_architectures_with_attestations_and_pushes_the_chart() {
    let text = read(".github/workflows/release.yml");
    let release = yaml(".github/workflows/release.yml");
    assert_eq!(release["on"]["push"]["tags"][0], "v*");
    let matrix = release["jobs"]["image"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap();
    let platforms: Vec<&str> = matrix
        .iter()
        .map(|m| m["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let build = release["jobs"]["image"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .expect("a build-push step");
    assert_eq!(build["with"]["sbom"], true);
    assert_eq!(build["with"]["provenance"], "mode=max");
    assert!(build["with"]["labels"].as_str().is_some(), "OCI labels");
    assert_eq!(release["env"]["REGISTRY"], "ghcr.io");
    for needle in [
        "imagetools create",
        "helm\" package",
        "helm\" push",
        "charts=oci://$REGISTRY/",
    ] {
        assert!(
            text.replace("\"$HELM\"", "helm\"").contains(needle),
            "release.yml lacks {needle:?}"
        );
    }
}

#[test]
fn chart_default_image_is_what_the_release_publishes() {
    let values = yaml("deploy/helm/tessera/values.yaml");
    let chart = yaml("deploy/helm/tessera/Chart.yaml");
    let source = chart["sources"][0].as_str().unwrap();
    let owner = source
        .strip_prefix("https://github.com/")
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    assert_eq!(
        values["image"]["repository"],
        format!("ghcr.io/{owner}/tessera"),
        "the release pushes ghcr.io/<owner>/tessera"
    );
    assert_eq!(values["image"]["tag"], "", "tag = the chart's appVersion");
    assert_eq!(
        values["image"]["digest"], "",
        "the release fills the digest in"
    );
    // The two lines release.yml rewrites before packaging, each exactly once.
    let text = read("deploy/helm/tessera/values.yaml");
    let repository_lines = text
        .lines()
        .filter(|l| l.starts_with("  repository: ghcr.io/") && l.ends_with("/tessera"))
        .count();
    let digest_lines = text.lines().filter(|l| *l == "  digest: \"\"").count();
    assert_eq!((repository_lines, digest_lines), (1, 1));
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains(&format!("org.opencontainers.image.source=\"{source}\"")));
}

#[test]
fn versions_agree_and_release_basics_exist() {
    let chart = yaml("deploy/helm/tessera/Chart.yaml");
    let version = cargo_version();
    assert_eq!(chart["version"], version.as_str());
    assert_eq!(chart["appVersion"], version.as_str());
    assert!(
        chart.get("kubeVersion").is_none(),
        "kubeVersion breaks offline `helm template` (the preflight checks the cluster)"
    );
    let license = read("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
    assert!(read("Cargo.toml").contains("license = \"Apache-2.0\""));
    assert!(
        read("CHANGELOG.md").contains(&format!("## [{version}]")),
        "CHANGELOG.md has no entry for {version}"
    );
    let readme = read("README.md");
    for link in [
        "LICENSE",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "docs/compatibility.md",
    ] {
        assert!(
            readme.contains(&format!("({link})")),
            "README.md does not link {link}"
        );
    }
}
