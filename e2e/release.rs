//! The Helm release the chart tests (`walkthrough`, `placement`) install: `deploy/helm/tessera`
//! with `ci/fake-values.yaml` and `TESSERA_E2E_IMAGE`, as `docs/install.md` does, into a scratch
//! namespace; its rollout, the API server's service proxy to its extender, and its removal.
//!
//! One cluster holds one such release at a time: the DeviceClasses, ClusterRoleBindings and the
//! admission policy are cluster-wide and named after the release, and both tests use the
//! chart's second scheduler under its one `schedulerName`. So [`Release::start`]
//! - serialises the chart tests of this process (a process-wide lock held until the
//!   [`Release`] is dropped, after its clean-up), so `cargo test --test e2e` runs them one
//!   after the other;
//! - refuses to start (the test fails, naming the namespace) while another chart test's scratch
//!   namespace is active: another process is testing on this cluster, or a killed run left it
//!   (delete it, and `helm uninstall tessera -n <it>`, then retry). One that is already
//!   terminating is a finished run's clean-up and is waited for;
//! - removes this test's own leftovers (a crashed earlier run of the same test);
//! - creates this run's namespaces and looks again, so that of two processes starting at the
//!   same moment at least one fails rather than both going on.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::support::{
    KUBECONFIG_VAR, cluster_client, create_namespace, helm_binary, repo, report_delete, wait_for,
};

/// The image reference the cluster pulls tessera from (`REPOSITORY:TAG`, `REPOSITORY@DIGEST`
/// or `REPOSITORY:TAG@DIGEST`); unset = the chart's default, the published release image, as a
/// newcomer following docs/install.md gets it.
pub const IMAGE_VAR: &str = "TESSERA_E2E_IMAGE";
/// The doc's release name; the chart names its objects after it (`tessera-extender`, …).
pub const RELEASE: &str = "tessera";
/// Label on every scratch namespace (and fake node) of a chart test; the value names the test.
pub const E2E_LABEL: &str = "tessera.dev/e2e";
/// The tests that install the chart, by their [`E2E_LABEL`] value.
const CHART_TESTS: [&str; 2] = ["walkthrough", "placement"];
/// Image pulls of a fresh cluster dominate these.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a finished run's namespaces may take to go.
const TERMINATING_TIMEOUT: Duration = Duration::from_secs(300);
pub const POLL: Duration = Duration::from_secs(2);

/// Held by the chart test that owns the cluster in this process.
static TURN: Mutex<()> = Mutex::const_new(());

/// Waits until no chart test of this process uses the cluster, and keeps them out while the
/// guard lives: for tests that put objects of the chart's driver (`gpu.tessera.dev`) on a
/// real node, as the chart's plugin does (`e2e/plugin.rs`).
pub async fn exclusive_turn() -> MutexGuard<'static, ()> {
    TURN.lock().await
}

/// One run's release: where it goes and what it needs to install and remove it.
pub struct Release {
    pub client: kube::Client,
    helm: PathBuf,
    kubeconfig: OsString,
    /// `None`: the chart's default image.
    image: Option<ImageRef>,
    /// Which chart test this is (the [`E2E_LABEL`] value of its namespaces).
    test: &'static str,
    /// The release's namespace.
    pub namespace: String,
    /// The namespace of the test's own objects (claims, pods).
    pub apps: String,
    /// The cluster is this run's while this is held.
    _turn: MutexGuard<'static, ()>,
}

impl Release {
    /// The release of chart test `test` (one of `walkthrough`, `placement`), in namespaces
    /// `<prefix>-<pid>` and `<prefix>-<pid>-apps`, created here; fails the test when the
    /// cluster or Helm is missing or the image reference does not parse. Waits for its turn on
    /// the cluster (see the module doc).
    pub async fn start(test: &'static str, prefix: &str) -> Release {
        assert!(CHART_TESTS.contains(&test), "{test} is not a chart test");
        let client = cluster_client(test).await;
        let image = std::env::var(IMAGE_VAR)
            .ok()
            .filter(|s| !s.is_empty())
            .map(|image| split_image(&image).unwrap_or_else(|e| panic!("{IMAGE_VAR}: {e}")));
        let helm = helm_binary(test);
        let kubeconfig = std::env::var_os(KUBECONFIG_VAR).expect("checked by cluster_client");
        let turn = TURN.lock().await;
        let id = format!("{:x}", std::process::id());
        let release = Release {
            client,
            helm,
            kubeconfig,
            image,
            test,
            namespace: format!("{prefix}-{id}"),
            apps: format!("{prefix}-{id}-apps"),
            _turn: turn,
        };
        release.claim_cluster().await;
        release
    }

    /// Removes this test's own leftovers, waits for another chart test's terminating
    /// namespaces, fails on its active ones, then creates this run's namespaces.
    async fn claim_cluster(&self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for (name, owner, terminating) in self.chart_namespaces().await {
            if owner == self.test {
                println!("{}: removing a leftover namespace {name}", self.test);
                self.uninstall_and_delete(&name).await;
            } else if terminating {
                println!(
                    "{}: waiting for {owner}'s namespace {name} to go",
                    self.test
                );
                wait_for(
                    &format!("{owner}'s namespace {name} to terminate"),
                    TERMINATING_TIMEOUT,
                    POLL,
                    || async {
                        match namespaces.get_opt(&name).await {
                            Ok(None) => Ok(()),
                            Ok(Some(_)) => Err("still terminating".to_owned()),
                            Err(e) => Err(e.to_string()),
                        }
                    },
                )
                .await;
            } else {
                self.refuse(&name, &owner);
            }
        }
        self.create_namespaces().await;
        // Two runs starting together may both have passed the check above; each created its
        // namespaces before looking again, so at least one of them sees the other.
        let clash = self
            .chart_namespaces()
            .await
            .into_iter()
            .find(|(_, owner, terminating)| owner != self.test && !terminating);
        if let Some((name, owner, _)) = clash {
            self.remove().await;
            self.refuse(&name, &owner);
        }
    }

    /// Every chart test's scratch namespace: name, test, whether it is terminating.
    async fn chart_namespaces(&self) -> Vec<(String, String, bool)> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let selector = format!("{E2E_LABEL} in ({})", CHART_TESTS.join(","));
        let found = namespaces
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("list namespaces");
        found
            .items
            .into_iter()
            .map(|ns| {
                let owner = ns
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(E2E_LABEL))
                    .cloned()
                    .unwrap_or_default();
                (
                    ns.metadata.name.unwrap_or_default(),
                    owner,
                    ns.metadata.deletion_timestamp.is_some(),
                )
            })
            .collect()
    }

    fn refuse(&self, namespace: &str, owner: &str) -> ! {
        panic!(
            "{}: namespace {namespace} of the {owner} e2e test exists: another run is using this \
             cluster (the chart tests cannot share one), or a killed run left it. If no run is \
             active: helm uninstall {RELEASE} -n {namespace}; kubectl delete namespace {namespace}",
            self.test
        );
    }

    /// Creates the release and apps namespaces, labelled as this test's; the release's also
    /// with the Pod Security label docs/install.md tells admins to set (the plugin is
    /// privileged).
    async fn create_namespaces(&self) {
        let label = [(E2E_LABEL, self.test)];
        let release_labels = [
            (E2E_LABEL, self.test),
            ("pod-security.kubernetes.io/enforce", "privileged"),
        ];
        create_namespace(&self.client, &self.namespace, &release_labels).await;
        create_namespace(&self.client, &self.apps, &label).await;
    }

    pub fn helm(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.helm)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .map_err(|e| format!("cannot run helm: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "helm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `helm upgrade --install tessera deploy/helm/tessera -f ci/fake-values.yaml` with the
    /// image and the plugin's fake profile.
    pub fn install(&self, profile: &str) {
        let chart = repo().join("deploy/helm/tessera");
        let values = chart.join("ci/fake-values.yaml");
        let mut args: Vec<String> = [
            "upgrade",
            "--install",
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            &self.namespace,
            "-f",
            values.to_str().unwrap(),
            "--set",
            &format!("plugin.fakeGpus={profile}"),
        ]
        .map(str::to_owned)
        .into();
        // ci/fake-values.yaml names a locally built `tessera:dev`; without TESSERA_E2E_IMAGE
        // the chart's own default (the published image at the chart's appVersion) is what a
        // newcomer following docs/install.md gets, so put that back.
        let image = self.image.clone().unwrap_or_else(|| ImageRef {
            repository: chart_default_repository(),
            tag: String::new(),
            digest: String::new(),
        });
        // --set would turn a tag like `1` into a number, which the schema refuses.
        for (key, value) in [
            ("image.repository", &image.repository),
            ("image.tag", &image.tag),
            ("image.digest", &image.digest),
        ] {
            args.extend(["--set-string".to_owned(), format!("{key}={value}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.helm(&args).unwrap_or_else(|e| panic!("{e}"));
        println!("{}: {}", self.test, out.lines().next().unwrap_or_default());
    }

    /// The release's values with the chart's defaults (`helm get values --all`).
    pub fn values(&self) -> Value {
        let out = self
            .helm(&[
                "get",
                "values",
                RELEASE,
                "--namespace",
                &self.namespace,
                "--all",
                "--output",
                "json",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("helm get values: {e}: {out}"))
    }

    /// `kubectl rollout status` for the plugin DaemonSet (on at least `plugin_nodes` nodes) and
    /// the extender and scheduler Deployments.
    pub async fn rolled_out(&self, plugin_nodes: i32) {
        let daemonsets: Api<DaemonSet> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = format!("{RELEASE}-plugin");
        wait_for(
            &format!("daemonset/{name}"),
            ROLLOUT_TIMEOUT,
            POLL,
            || async {
                let ds = daemonsets.get(&name).await.map_err(|e| e.to_string())?;
                let s = ds.status.unwrap_or_default();
                let current = s.observed_generation >= ds.metadata.generation;
                let desired = s.desired_number_scheduled;
                // The server leaves out a count that is 0.
                let updated = s.updated_number_scheduled.unwrap_or(0);
                if current && desired >= plugin_nodes && s.number_ready == desired && updated == desired
                {
                    Ok(())
                } else {
                    Err(format!(
                        "desired {desired} (want at least {plugin_nodes}), ready {}, updated {updated}",
                        s.number_ready
                    ))
                }
            },
        )
        .await;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        for component in ["extender", "scheduler"] {
            let name = format!("{RELEASE}-{component}");
            wait_for(
                &format!("deployment/{name}"),
                ROLLOUT_TIMEOUT,
                POLL,
                || async {
                    let d = deployments.get(&name).await.map_err(|e| e.to_string())?;
                    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let s = d.status.unwrap_or_default();
                    if s.observed_generation >= d.metadata.generation
                        && s.ready_replicas == Some(want)
                        && s.updated_replicas == Some(want)
                    {
                        Ok(())
                    } else {
                        Err(format!(
                            "want {want}, ready {:?}, updated {:?}",
                            s.ready_replicas, s.updated_replicas
                        ))
                    }
                },
            )
            .await;
        }
    }

    /// The extender Service's `port` path through the API server's service proxy.
    fn proxy_uri(&self, port: &str, path_and_query: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/services/{RELEASE}-extender:{port}/proxy/{path_and_query}",
            self.namespace
        )
    }

    /// GET through the API server's service proxy (`kubectl get --raw …`).
    pub async fn proxy_get(&self, port: &str, path_and_query: &str) -> Result<String, String> {
        let request = axum::http::Request::get(self.proxy_uri(port, path_and_query))
            .body(Vec::new())
            .unwrap();
        self.client
            .request_text(request)
            .await
            .map_err(|e| e.to_string())
    }

    /// POST of a JSON body through the API server's service proxy.
    pub async fn proxy_post(&self, port: &str, path: &str, body: &Value) -> Result<String, String> {
        let request = axum::http::Request::post(self.proxy_uri(port, path))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .unwrap();
        self.client
            .request_text(request)
            .await
            .map_err(|e| e.to_string())
    }

    /// Uninstalls the release and deletes both namespaces (without waiting for them to go).
    pub async fn remove(&self) {
        self.uninstall_and_delete(&self.apps).await;
        self.uninstall_and_delete(&self.namespace).await;
    }

    async fn uninstall_and_delete(&self, namespace: &str) {
        // "release: not found" is the normal answer for an apps namespace.
        if let Err(e) = self.helm(&["uninstall", RELEASE, "--namespace", namespace])
            && !e.contains("not found")
        {
            eprintln!("clean-up: {e}");
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        report_delete(
            "namespace",
            namespace,
            namespaces
                .delete(namespace, &DeleteParams::default())
                .await
                .err(),
        );
    }
}

/// An image reference split into the chart's `image.repository`, `image.tag` and
/// `image.digest` (empty = not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

/// `REPOSITORY:TAG`, `REPOSITORY@sha256:…` or `REPOSITORY:TAG@sha256:…` → an [`ImageRef`]; a
/// reference with neither tag nor digest is refused (the chart would use its appVersion, which
/// is not what the caller named).
fn split_image(image: &str) -> Result<ImageRef, String> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "{image}: the digest must be sha256:<64 hex digits>"
                ));
            }
            (name, digest.to_owned())
        }
        None => (image, String::new()),
    };
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[slash..].rsplit_once(':') {
        Some((last, tag)) if !tag.is_empty() => (format!("{}{last}", &name[..slash]), tag),
        Some(_) => return Err(format!("{image}: empty tag")),
        None => (name.to_owned(), ""),
    };
    if repository.is_empty() || (tag.is_empty() && digest.is_empty()) {
        return Err(format!(
            "{image}: expected REPOSITORY:TAG, REPOSITORY@sha256:<digest> or both"
        ));
    }
    Ok(ImageRef {
        repository,
        tag: tag.to_owned(),
        digest,
    })
}

/// The chart's default `image.repository` (values.yaml).
fn chart_default_repository() -> String {
    let path = repo().join("deploy/helm/tessera/values.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let values: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("values.yaml: {e}"));
    values["image"]["repository"]
        .as_str()
        .unwrap_or_else(|| panic!("values.yaml has no image.repository"))
        .to_owned()
}

/// The samples named `name` in an exposition: their labels and values.
pub fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, value) = r.rsplit_once('}')?;
                    (parse_labels(labels), value)
                }
                None if rest.starts_with(' ') => (BTreeMap::new(), rest),
                None => return None,
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include every pair of `with`.
pub fn sample_sum(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    samples(text, name)
        .iter()
        .filter(|(labels, _)| {
            with.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// `k="v",…` (values escaped as the exposition format escapes them).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    out
}

#[test]
fn exposition_samples_and_image_references_are_read_as_written() {
    let text = "# TYPE x gauge\nx{namespace=\"a\",pod=\"p\\\"q\"} 0.5\nx 2\nx_other 3\n";
    let got = samples(text, "x");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0["pod"], "p\"q");
    assert_eq!(got[0].0["namespace"], "a");
    assert_eq!(got[0].1, 0.5);
    assert!(got[1].0.is_empty());
    assert_eq!(sample_sum(text, "x", &[]), 2.5);
    assert_eq!(sample_sum(text, "x", &[("namespace", "a")]), 0.5);
    assert_eq!(sample_sum(text, "x", &[("namespace", "b")]), 0.0);
    let image = |repository: &str, tag: &str, digest: &str| ImageRef {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: digest.to_owned(),
    };
    let digest = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        split_image("registry.example.com:5000/platform/tessera:0.1.0"),
        Ok(image(
            "registry.example.com:5000/platform/tessera",
            "0.1.0",
            ""
        ))
    );
    assert_eq!(split_image("tessera:dev"), Ok(image("tessera", "dev", "")));
    assert_eq!(
        split_image(&format!("ghcr.io/o/tessera@{digest}")),
        Ok(image("ghcr.io/o/tessera", "", &digest))
    );
    assert_eq!(
        split_image(&format!("localhost:5000/tessera:0.1.0@{digest}")),
        Ok(image("localhost:5000/tessera", "0.1.0", &digest))
    );
    assert!(split_image("registry.example.com:5000/tessera").is_err());
    assert!(split_image("tessera:").is_err());
    assert!(split_image("tessera@sha256:abc").is_err());
}
