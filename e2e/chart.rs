//! The Helm chart against a real API server: every manifest `helm template` renders for the
//! default, fake-GPU, production and all-flags values is applied with server-side dry-run, so
//! the server's own validation (schemas, CEL in DeviceClasses and the admission policy, RBAC
//! escalation checks) accepts it. Nothing is persisted except a scratch namespace, deleted at
//! the end.
//!
//! Helm comes from `.ci/install-helm` (real Helm from a PyPI wheel, cached); when it cannot be
//! had the test says so and passes, like the cluster gate.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use serde_json::Value;

use crate::support::{
    apply, cluster_client, create_namespace, gvk_of, helm_binary, repo, server_version,
};

/// Values files rendered and applied (deploy/helm/tessera/ci/<name>-values.yaml).
const VALUES: [&str; 4] = ["default", "fake", "production", "all-flags"];
/// API groups of optional add-ons: their objects are skipped when the cluster lacks the CRDs.
const OPTIONAL_GROUPS: [&str; 2] = ["monitoring.coreos.com", "cert-manager.io"];
/// Field manager of the dry-run applies.
const MANAGER: &str = "tessera-e2e";

/// `helm template` of one values file into `namespace`, as parsed objects.
fn render(helm: &Path, values: &str, namespace: &str, kube_version: &str) -> Vec<Value> {
    let chart = repo().join("deploy/helm/tessera");
    let file = chart.join(format!("ci/{values}-values.yaml"));
    let out = Command::new(helm)
        .args(["template", "tessera"])
        .arg(&chart)
        .args([
            "--namespace",
            namespace,
            "--kube-version",
            kube_version,
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("run helm template");
    assert!(
        out.status.success(),
        "helm template -f {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 manifests");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn every_rendered_chart_manifest_passes_server_side_dry_run() {
    let test = "every_rendered_chart_manifest_passes_server_side_dry_run";
    let client = cluster_client(test).await;
    let helm = helm_binary(test);
    let (major, minor) = server_version(&client).await;
    let kube_version = format!("{major}.{minor}.0");

    let namespace = format!("tessera-e2e-chart-{}", std::process::id());
    create_namespace(&client, &namespace, &[]).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    let mut applied = 0;
    let mut failures = Vec::new();
    for values in VALUES {
        for obj in render(&helm, values, &namespace, &kube_version) {
            let what = format!(
                "{values}: {} {}",
                obj["kind"].as_str().unwrap_or("?"),
                obj["metadata"]["name"].as_str().unwrap_or("?")
            );
            match apply(&client, &obj, &namespace, MANAGER, true).await {
                Ok(()) => applied += 1,
                Err(e)
                    if e.starts_with("not served")
                        && OPTIONAL_GROUPS.contains(&gvk_of(&obj).group.as_str()) =>
                {
                    println!("skipped {what}: its CRD is not installed ({e})");
                }
                Err(e) => failures.push(format!("{what}: {e}")),
            }
        }
    }

    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("delete scratch namespace");
    assert!(
        failures.is_empty(),
        "dry-run apply failed:\n{}",
        failures.join("\n")
    );
    assert!(applied > 20, "only {applied} objects applied");
    println!("{applied} rendered objects accepted by the API server (dry run)");
}

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn every_example_manifest_passes_server_side_dry_run() {
    let test = "every_example_manifest_passes_server_side_dry_run";
    let client = cluster_client(test).await;
    let namespace = format!("tessera-e2e-examples-{}", std::process::id());
    create_namespace(&client, &namespace, &[]).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    let dir = repo().join("deploy/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/examples")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut applied = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read example");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("example YAML");
        for obj in docs.into_iter().filter(|d| !d.is_null()) {
            match apply(&client, &obj, &namespace, MANAGER, true).await {
                Ok(()) => applied += 1,
                Err(e) => failures.push(format!(
                    "{}: {} {}: {e}",
                    file.display(),
                    obj["kind"].as_str().unwrap_or("?"),
                    obj["metadata"]["name"].as_str().unwrap_or("?")
                )),
            }
        }
    }
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("delete scratch namespace");
    assert!(
        failures.is_empty(),
        "dry-run apply failed:\n{}",
        failures.join("\n")
    );
    println!("{applied} example objects accepted by the API server (dry run)");
}
