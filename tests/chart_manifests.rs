//! Checks on the Helm chart as Helm itself renders it.
//!
//! `.ci/helm-check` runs `helm template` (real Helm, see `.ci/install-helm`) once per values file
//! in `deploy/helm/tessera/ci/` and points `TESSERA_CHART_RENDERED` at the directory of
//! `<name>.yaml` outputs. The tests are `#[ignore]`d, so a plain `cargo test` (no Helm) reports
//! them as ignored rather than passed; `.ci/helm-check` runs them with `--include-ignored`, and
//! there a missing `TESSERA_CHART_RENDERED` fails them.
//!
//! Why a Rust test rather than a script: it parses the YAML with the crate's own YAML library,
//! reads the flags from the built binary's `--help` and can load the rendered fake inventory and
//! price files with the very code the plugin and extender use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/help.rs"]
mod help;
#[path = "support/kube_types.rs"]
mod kube_types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

/// Names the directory of rendered manifests.
const RENDERED_VAR: &str = "TESSERA_CHART_RENDERED";
/// Release namespace `.ci/helm-check` renders into.
const NAMESPACE: &str = "tessera";
/// Release name `.ci/helm-check` renders with; the chart's objects are prefixed with it.
const RELEASE: &str = "tessera";
/// The default driver name.
const DRIVER: &str = "gpu.tessera.dev";
/// The values files `.ci/helm-check` must have rendered.
const REQUIRED_RENDERS: [&str; 3] = ["default", "fake", "production"];

/// One rendered values file.
struct Render {
    name: String,
    objects: Vec<Value>,
}

impl Render {
    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", self.name))
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    fn plugin(&self) -> Option<&Value> {
        self.find("DaemonSet", &format!("{RELEASE}-plugin"))
    }

    fn extender(&self) -> Option<&Value> {
        self.find("Deployment", &format!("{RELEASE}-extender"))
    }

    fn is_fake(&self) -> bool {
        self.plugin().is_some_and(|ds| {
            args(container(ds, "plugin"))
                .iter()
                .any(|a| a.starts_with("--fake-gpus") || a.starts_with("--fake-inventory"))
        })
    }
}

/// The rendered values files; fails when the variable is unset (the tests run only when asked
/// for with `--ignored`, and then the renders must be there).
fn renders() -> Vec<Render> {
    let Some(dir) = std::env::var_os(RENDERED_VAR) else {
        panic!("{RENDERED_VAR} is not set: run .ci/helm-check, which renders the chart first");
    };
    let dir = PathBuf::from(dir);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
        let objects: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
        assert!(!objects.is_empty(), "{}: rendered nothing", path.display());
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.push(Render { name, objects });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    for required in REQUIRED_RENDERS {
        assert!(
            out.iter().any(|r| r.name == required),
            "{}: no {required}.yaml; .ci/helm-check renders ci/{required}-values.yaml",
            dir.display()
        );
    }
    out
}

fn pod_spec(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    pod_spec(workload)["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Every (apiGroup, resource, verb) a role grants, with resourceNames appended to the resource.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                let resource = if names.is_empty() {
                    resource
                } else {
                    format!(
                        "{resource}/{}",
                        names.iter().cloned().collect::<Vec<_>>().join(",")
                    )
                };
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

fn triples(list: &[(&str, &str, &[&str])]) -> BTreeSet<(String, String, String)> {
    list.iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(move |v| (g.to_string(), r.to_string(), v.to_string()))
        })
        .collect()
}

/// Host path → mount path of the plugin's hostPath volumes.
fn host_paths(ds: &Value) -> BTreeMap<String, String> {
    let spec = pod_spec(ds);
    let mounts = container(ds, "plugin")["volumeMounts"].as_array().unwrap();
    let mut out = BTreeMap::new();
    for vol in spec["volumes"].as_array().unwrap() {
        let Some(path) = vol["hostPath"]["path"].as_str() else {
            continue;
        };
        let mount = mounts
            .iter()
            .find(|m| m["name"] == vol["name"])
            .unwrap_or_else(|| panic!("hostPath volume {} is not mounted", vol["name"]));
        out.insert(
            path.to_owned(),
            mount["mountPath"].as_str().unwrap().to_owned(),
        );
    }
    out
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn every_values_file_renders_plugin_extender_policy_and_classes() {
    let renders = renders();
    for r in &renders {
        assert!(r.plugin().is_some(), "{}: no plugin DaemonSet", r.name);
        let extender = r
            .extender()
            .unwrap_or_else(|| panic!("{}: no extender", r.name));
        r.get("Service", &format!("{RELEASE}-extender"));
        r.get("ClusterRole", &format!("{RELEASE}-plugin"));
        r.get("ClusterRole", &format!("{RELEASE}-extender"));
        r.get(
            "ValidatingAdmissionPolicy",
            &format!("{RELEASE}-node-slices"),
        );
        r.get(
            "ValidatingAdmissionPolicyBinding",
            &format!("{RELEASE}-node-slices"),
        );
        assert_eq!(
            r.of_kind("DeviceClass").count(),
            4,
            "{}: DeviceClasses",
            r.name
        );
        for o in &r.objects {
            let cluster_scoped = [
                "ClusterRole",
                "ClusterRoleBinding",
                "DeviceClass",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
            ]
            .contains(&o["kind"].as_str().unwrap());
            let ns = o["metadata"]["namespace"].as_str();
            if cluster_scoped {
                assert_eq!(
                    ns, None,
                    "{}: {} is cluster-scoped",
                    r.name, o["metadata"]["name"]
                );
            } else {
                assert!(
                    ns.is_some(),
                    "{}: {} {} has no namespace",
                    r.name,
                    o["kind"],
                    o["metadata"]["name"]
                );
            }
        }
        if r.name == "default" {
            assert_eq!(
                extender["spec"]["replicas"], 2,
                "default: 2 extender replicas"
            );
            r.get("PodDisruptionBudget", &format!("{RELEASE}-extender"));
        }
    }
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn rbac_is_exactly_least_privilege() {
    let renders = renders();
    // The plugin only ever GETs the claim the kubelet names (src/prepare/source.rs).
    let plugin = triples(&[
        ("resource.k8s.io", "resourceclaims", &["get"]),
        ("", "nodes", &["get"]),
        ("", "pods", &["get"]),
        (
            "resource.k8s.io",
            "resourceslices",
            &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
        ),
    ]);
    let extender = triples(&[
        ("", "nodes", &["get", "list", "watch"]),
        ("", "pods", &["get", "list", "watch"]),
        (
            "resource.k8s.io",
            "resourceslices",
            &["get", "list", "watch"],
        ),
        (
            "resource.k8s.io",
            "resourceclaims",
            &["get", "list", "watch"],
        ),
    ]);
    for r in &renders {
        assert_eq!(
            grants(r.get("ClusterRole", &format!("{RELEASE}-plugin"))),
            plugin,
            "{}: plugin",
            r.name
        );
        assert_eq!(
            grants(r.get("ClusterRole", &format!("{RELEASE}-extender"))),
            extender,
            "{}: extender",
            r.name
        );
        for kind in ["ClusterRole", "Role"] {
            for role in r.of_kind(kind) {
                for (g, res, v) in grants(role) {
                    assert!(
                        !(g == "*" || res.starts_with('*') || v == "*"),
                        "{}: {kind} {} grants a wildcard ({g}, {res}, {v})",
                        r.name,
                        role["metadata"]["name"]
                    );
                }
            }
        }
        for (component, sa) in [("plugin", "plugin"), ("extender", "extender")] {
            let binding = r.get("ClusterRoleBinding", &format!("{RELEASE}-{component}"));
            assert_eq!(binding["roleRef"]["name"], format!("{RELEASE}-{component}"));
            assert_eq!(binding["subjects"][0]["name"], format!("{RELEASE}-{sa}"));
            assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        }
        let plugin_sa = pod_spec(r.plugin().unwrap())["serviceAccountName"].clone();
        let extender_sa = pod_spec(r.extender().unwrap())["serviceAccountName"].clone();
        assert_eq!(plugin_sa, format!("{RELEASE}-plugin"), "{}", r.name);
        assert_eq!(extender_sa, format!("{RELEASE}-extender"), "{}", r.name);
    }
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn plugin_mounts_kubelet_dirs_cdi_and_dev_at_the_same_paths() {
    let renders = renders();
    for r in &renders {
        let ds = r.plugin().unwrap();
        let paths = host_paths(ds);
        let mut required = vec![
            "/var/lib/kubelet/plugins_registry".to_owned(),
            format!("/var/lib/kubelet/plugins/{DRIVER}"),
            "/var/run/cdi".to_owned(),
        ];
        if !r.is_fake() {
            required.push("/dev".to_owned());
        }
        for path in &required {
            let mount = paths
                .get(path)
                .unwrap_or_else(|| panic!("{}: no hostPath {path}; has {paths:?}", r.name));
            assert_eq!(
                mount, path,
                "{}: {path} must be mounted at the same path",
                r.name
            );
        }
        // Only the plugin touches the host.
        for o in r.of_kind("Deployment") {
            assert!(
                !pod_spec(o)["volumes"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| !v["hostPath"].is_null())),
                "{}: Deployment {} mounts a hostPath",
                r.name,
                o["metadata"]["name"]
            );
        }
        // The node name reaches the plugin from the downward API.
        let env = container(ds, "plugin")["env"].as_array().unwrap();
        let node = env
            .iter()
            .find(|e| e["name"] == "NODE_NAME")
            .expect("NODE_NAME");
        assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
        let selector = pod_spec(ds)["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            !selector.is_empty(),
            "{}: plugin needs a node selector",
            r.name
        );
        if r.is_fake() {
            // Fake mode must not also demand the real-GPU label (Helm merges the maps).
            assert_eq!(
                Value::Object(selector),
                serde_json::json!({"tessera.dev/fake-gpus": "true"}),
                "{}: fake-GPU node selector",
                r.name
            );
        }
        assert!(
            !pod_spec(ds)["priorityClassName"].is_null(),
            "{}: plugin priority class",
            r.name
        );
    }
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn plugin_is_privileged_and_extender_runs_as_non_root() {
    let renders = renders();
    for r in &renders {
        let plugin = &container(r.plugin().unwrap(), "plugin")["securityContext"];
        assert_eq!(plugin["privileged"], true, "{}: plugin privileged", r.name);
        assert_eq!(plugin["runAsUser"], 0, "{}: plugin runs as root", r.name);

        let ext = r.extender().unwrap();
        let pod = &pod_spec(ext)["securityContext"];
        let c = &container(ext, "extender")["securityContext"];
        assert_eq!(
            pod["runAsNonRoot"], true,
            "{}: extender runAsNonRoot",
            r.name
        );
        assert!(
            pod["runAsUser"].as_u64().is_some_and(|u| u > 0),
            "{}: extender uid",
            r.name
        );
        assert_eq!(c["allowPrivilegeEscalation"], false, "{}", r.name);
        assert_eq!(c["readOnlyRootFilesystem"], true, "{}", r.name);
        assert!(
            c["privileged"].is_null() || c["privileged"] == false,
            "{}",
            r.name
        );
        assert_eq!(
            strings(&c["capabilities"]["drop"]),
            BTreeSet::from(["ALL".to_owned()])
        );
    }
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn plugin_surges_only_with_rolling_update_sockets() {
    let renders = renders();
    for r in &renders {
        let ds = r.plugin().unwrap();
        let rolling = &ds["spec"]["updateStrategy"]["rollingUpdate"];
        let c = container(ds, "plugin");
        let per_pod_sockets = args(c).iter().any(|a| a.starts_with("--pod-uid"));
        if per_pod_sockets {
            assert_eq!(rolling["maxSurge"], 1, "{}", r.name);
            assert_eq!(rolling["maxUnavailable"], 0, "{}", r.name);
            let env = c["env"].as_array().unwrap();
            let uid = env
                .iter()
                .find(|e| e["name"] == "POD_UID")
                .expect("POD_UID env");
            assert_eq!(uid["valueFrom"]["fieldRef"]["fieldPath"], "metadata.uid");
        } else {
            assert_eq!(
                rolling["maxSurge"], 0,
                "{}: fixed sockets cannot surge",
                r.name
            );
        }
    }
    assert!(
        renders.iter().any(|r| r.name == "production"
            && args(container(r.plugin().unwrap(), "plugin"))
                .iter()
                .any(|a| a.starts_with("--pod-uid"))),
        "production values turn rolling-update sockets on"
    );
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn device_classes_select_the_driver_and_the_device_type() {
    let renders = renders();
    let expected = [
        (DRIVER.to_owned(), "gpu"),
        (format!("mig.{DRIVER}"), "mig"),
        (format!("shared.{DRIVER}"), "shared"),
        (format!("share.{DRIVER}"), "share"),
    ];
    for r in &renders {
        for (name, ty) in &expected {
            let class = r.get("DeviceClass", name);
            assert_eq!(class["apiVersion"], "resource.k8s.io/v1");
            let cel = class["spec"]["selectors"][0]["cel"]["expression"]
                .as_str()
                .unwrap();
            let cel: String = cel.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(
                cel,
                format!(
                    "device.driver == '{DRIVER}' && device.attributes['{DRIVER}'].type == '{ty}'"
                ),
                "{}: DeviceClass {name}",
                r.name
            );
        }
    }
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn node_slice_policy_binds_the_plugin_to_its_own_node() {
    let renders = renders();
    for r in &renders {
        let name = format!("{RELEASE}-node-slices");
        let policy = r.get("ValidatingAdmissionPolicy", &name);
        let spec = &policy["spec"];
        assert_eq!(spec["failurePolicy"], "Fail");
        let rule = &spec["matchConstraints"]["resourceRules"][0];
        assert_eq!(
            strings(&rule["resources"]),
            BTreeSet::from(["resourceslices".to_owned()])
        );
        assert_eq!(
            strings(&rule["operations"]),
            ["CREATE", "DELETE", "UPDATE"].map(String::from).into()
        );
        let condition = spec["matchConditions"][0]["expression"].as_str().unwrap();
        assert!(
            condition.contains(&format!(
                "system:serviceaccount:{NAMESPACE}:{RELEASE}-plugin"
            )),
            "{}: the policy must match the plugin's service account: {condition}",
            r.name
        );
        let text = spec.to_string();
        assert!(
            text.contains("authentication.kubernetes.io/node-name"),
            "{}",
            r.name
        );
        assert!(text.contains("spec.?nodeName"), "{}", r.name);
        let binding = r.get("ValidatingAdmissionPolicyBinding", &name);
        assert_eq!(binding["spec"]["policyName"], name);
        assert_eq!(
            strings(&binding["spec"]["validationActions"]),
            BTreeSet::from(["Deny".to_owned()])
        );
    }
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn scheduler_config_calls_the_extender_service() {
    let renders = renders();
    let mut seen = 0;
    for r in &renders {
        let Some(cm) = r.find("ConfigMap", &format!("{RELEASE}-scheduler")) else {
            continue;
        };
        seen += 1;
        let config: Value =
            serde_saphyr::from_str(cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(config["apiVersion"], "kubescheduler.config.k8s.io/v1");
        let ext = &config["extenders"][0];
        let url = ext["urlPrefix"].as_str().unwrap();
        let service = r.get("Service", &format!("{RELEASE}-extender"));
        let port = &service["spec"]["ports"][0]["port"];
        assert!(
            url.contains(&format!("//{RELEASE}-extender.{NAMESPACE}.svc:{port}")),
            "{}: urlPrefix {url} does not name the Service",
            r.name
        );
        let prefix = args(container(r.extender().unwrap(), "extender"))
            .into_iter()
            .find_map(|a| a.strip_prefix("--url-prefix=").map(str::to_owned))
            .unwrap();
        assert!(
            url.ends_with(prefix.trim_end_matches('/')),
            "{}: {url} vs prefix {prefix}",
            r.name
        );
        assert_eq!(ext["filterVerb"], "filter");
        assert_eq!(ext["prioritizeVerb"], "prioritize");
        assert!(ext["weight"].as_i64().is_some_and(|w| w > 0));
        assert_eq!(ext["nodeCacheCapable"], true);
        assert!(
            ext["managedResources"].is_null(),
            "DRA pods carry no extended resource"
        );
    }
    assert!(seen > 0, "no values file enables the second scheduler");
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn rendered_fake_inventory_and_prices_load_with_tessera_own_readers() {
    let renders = renders();
    for r in &renders {
        if let Some(cm) = r.find("ConfigMap", &format!("{RELEASE}-fake-inventory")) {
            let text = cm["data"]["inventory.yaml"].as_str().unwrap();
            let inv: tessera::model::Inventory = serde_saphyr::from_str(text)
                .unwrap_or_else(|e| panic!("{}: fake inventory does not parse: {e}", r.name));
            assert!(!inv.gpus.is_empty());
        }
        if let Some(cm) = r.find("ConfigMap", &format!("{RELEASE}-prices")) {
            let text = cm["data"]["prices.csv"].as_str().unwrap();
            tessera::market::PriceCatalog::from_csv_reader(text.as_bytes(), "prices.csv")
                .unwrap_or_else(|e| panic!("{}: price overrides do not load: {e}", r.name));
        }
    }
}

/// The flags each subcommand's container passes, per values file.
fn container_flags(r: &Render, subcommand: &str) -> BTreeSet<String> {
    let workload = match subcommand {
        "plugin" => r.plugin(),
        _ => r.extender(),
    };
    let Some(workload) = workload else {
        return BTreeSet::new();
    };
    let args = args(container(workload, subcommand));
    assert_eq!(
        args.first().map(String::as_str),
        Some(subcommand),
        "{}: first arg",
        r.name
    );
    args[1..]
        .iter()
        .map(|a| {
            assert!(
                a.starts_with("--"),
                "{}: {subcommand} arg {a:?} is not a --flag",
                r.name
            );
            a.split('=').next().unwrap().to_owned()
        })
        .collect()
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn container_args_are_flags_the_binary_knows_and_reach_every_flag() {
    let renders = renders();
    let mut problems = Vec::new();
    for subcommand in ["plugin", "extender"] {
        let known = match help::flags_of(subcommand) {
            Ok(flags) => flags,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let mut reached = BTreeSet::new();
        for r in &renders {
            for flag in container_flags(r, subcommand) {
                if !known.contains(&flag) {
                    problems.push(format!(
                        "{}: `tessera {subcommand}` has no flag {flag}",
                        r.name
                    ));
                }
                reached.insert(flag);
            }
        }
        for flag in known.difference(&reached) {
            if !["--help", "--version"].contains(&flag.as_str()) {
                problems.push(format!(
                    "`tessera {subcommand} {flag}` is not reachable from any values file in ci/"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The labels `deploy/grafana/tessera-dashboard.json` filters and groups by survive the scrape
/// (`tests/dashboard_metrics.rs` checks them against the code's series, counting on this).
#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn monitors_keep_the_labels_the_dashboard_reads() {
    let renders = renders();
    let mut seen = 0;
    for r in &renders {
        for sm in r.of_kind("ServiceMonitor") {
            seen += 1;
            for ep in sm["spec"]["endpoints"].as_array().unwrap() {
                // Without it, the allocation's namespace/pod become exported_namespace/pod.
                assert_eq!(ep["honorLabels"], true, "{}: {ep}", r.name);
            }
        }
        for pm in r.of_kind("PodMonitor") {
            seen += 1;
            for ep in pm["spec"]["podMetricsEndpoints"].as_array().unwrap() {
                let relabels = ep["relabelings"].as_array().unwrap();
                assert!(
                    relabels.iter().any(|l| l["targetLabel"] == "node"
                        && strings(&l["sourceLabels"]).contains("__meta_kubernetes_pod_node_name")),
                    "{}: the plugin's series need a node label: {ep}",
                    r.name
                );
            }
        }
    }
    assert!(seen >= 2, "no values file renders the monitors");
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn rendered_objects_match_the_kubernetes_api_types() {
    let renders = renders();
    let mut problems = Vec::new();
    let mut checked = 0;
    for r in &renders {
        for o in &r.objects {
            match kube_types::check(o) {
                Ok(true) => checked += 1,
                Ok(false) => assert!(
                    ["monitoring.coreos.com/", "cert-manager.io/"]
                        .iter()
                        .any(|crd| o["apiVersion"].as_str().unwrap().starts_with(crd)),
                    "{}: no type check for {} {}",
                    r.name,
                    o["apiVersion"],
                    o["kind"]
                ),
                Err(e) => problems.push(format!(
                    "{}: {} {}: {e}",
                    r.name, o["kind"], o["metadata"]["name"]
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 40, "only {checked} objects checked");
}

/// The Secrets `docs/operations.md` tells the admin to create, with their keys: every
/// `kubectl … create secret generic <name> … --from-file=<key>=<file>` command in it.
fn documented_secrets() -> BTreeMap<String, BTreeSet<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && !line.starts_with("kubectl ") {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !line.ends_with('\\') {
            commands.push(std::mem::take(&mut current));
        }
    }
    let mut out = BTreeMap::new();
    for command in commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some(at) = words
            .windows(3)
            .position(|w| w == ["create", "secret", "generic"])
        else {
            continue;
        };
        let name = words[at + 3].to_owned();
        let keys = words
            .iter()
            .filter_map(|w| w.strip_prefix("--from-file="))
            .map(|kv| kv.split('=').next().unwrap().to_owned())
            .collect();
        out.insert(name, keys);
    }
    out
}

/// Every Secret key a pod reads: the `items` of a secret volume, and the files under a secret
/// volume's mount path that a container names in its arguments. (workload, secret, key)
fn mounted_secret_keys(r: &Render) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for workload in r
        .objects
        .iter()
        .filter(|o| ["Deployment", "DaemonSet"].contains(&o["kind"].as_str().unwrap()))
    {
        let spec = pod_spec(workload);
        let wname = workload["metadata"]["name"].as_str().unwrap().to_owned();
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            let Some(secret) = volume["secret"]["secretName"].as_str() else {
                continue;
            };
            let mut keys: BTreeSet<String> = volume["secret"]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["key"].as_str().unwrap().to_owned())
                .collect();
            for c in spec["containers"].as_array().unwrap() {
                for m in c["volumeMounts"].as_array().into_iter().flatten() {
                    if m["name"] != volume["name"] {
                        continue;
                    }
                    let dir = format!(
                        "{}/",
                        m["mountPath"].as_str().unwrap().trim_end_matches('/')
                    );
                    let words = args(c).into_iter().chain(
                        c["command"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|v| v.as_str().unwrap().to_owned()),
                    );
                    for arg in words {
                        if let Some(at) = arg.find(&dir) {
                            keys.insert(arg[at + dir.len()..].to_owned());
                        }
                    }
                }
            }
            // The scheduler's CA comes in as an `items` key: its config file, not its
            // arguments, names the path.
            for key in keys {
                out.push((wname.clone(), secret.to_owned(), key));
            }
        }
    }
    out
}

/// The production TLS setup starts: every key a pod mounts from a Secret is in the Secret the
/// docs tell the admin to create (docs/operations.md), or in the one cert-manager writes for
/// the chart's Certificate (tls.crt, tls.key, ca.crt).
#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn every_mounted_secret_key_exists_in_the_documented_or_chart_made_secret() {
    let renders = renders();
    let documented = documented_secrets();
    assert!(
        documented.contains_key("tessera-extender-tls"),
        "docs/operations.md shows no `kubectl create secret generic tessera-extender-tls`: {documented:?}"
    );
    let cert_manager_keys: BTreeSet<String> =
        ["tls.crt", "tls.key", "ca.crt"].map(str::to_owned).into();
    let mut problems = Vec::new();
    let mut checked = 0;
    for r in &renders {
        let certificates: BTreeSet<String> = r
            .of_kind("Certificate")
            .map(|c| c["spec"]["secretName"].as_str().unwrap().to_owned())
            .collect();
        for (workload, secret, key) in mounted_secret_keys(r) {
            let keys = if certificates.contains(&secret) {
                &cert_manager_keys
            } else if let Some(keys) = documented.get(&secret) {
                keys
            } else if r.name == "production" {
                problems.push(format!(
                    "production: {workload} mounts Secret {secret}, which neither the docs nor the chart create"
                ));
                continue;
            } else {
                // A user-supplied Secret of a test values file (extraVolumes).
                continue;
            };
            checked += 1;
            if !keys.contains(&key) {
                problems.push(format!(
                    "{}: {workload} mounts key {key} of Secret {secret}, which has only {keys:?}",
                    r.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // production: the extender's tls.crt and tls.key and the scheduler's ca.crt at least.
    assert!(checked >= 3, "only {checked} mounted keys checked");
}

/// The second scheduler is highly available like the extender: 2+ replicas get a PDB and a
/// spread over nodes; one replica gets no PDB (it would block every drain).
#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn second_scheduler_has_a_pdb_anti_affinity_and_priority_where_configured() {
    let renders = renders();
    for r in &renders {
        let name = format!("{RELEASE}-scheduler");
        let Some(deployment) = r.find("Deployment", &name) else {
            continue;
        };
        let replicas = deployment["spec"]["replicas"].as_i64().unwrap();
        assert_eq!(
            r.find("PodDisruptionBudget", &name).is_some(),
            replicas > 1,
            "{}: {replicas} scheduler replicas",
            r.name
        );
        let spec = pod_spec(deployment);
        assert_eq!(
            spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                [0]["podAffinityTerm"]["topologyKey"],
            "kubernetes.io/hostname",
            "{}",
            r.name
        );
        if r.name == "production" {
            assert_eq!(spec["priorityClassName"], "system-cluster-critical");
        }
    }
    let default = renders.iter().find(|r| r.name == "default").unwrap();
    assert!(
        default
            .find("Deployment", &format!("{RELEASE}-scheduler"))
            .is_some(),
        "the default install deploys the second scheduler the examples name"
    );
}

#[test]
#[ignore = "needs Helm's renders: .ci/helm-check runs it"]
fn plugin_reads_the_host_proc_read_only_for_usage() {
    let renders = renders();
    for r in &renders {
        let ds = r.plugin().unwrap();
        assert_eq!(
            host_paths(ds).get("/proc").map(String::as_str),
            Some("/host/proc"),
            "{}: the host's /proc at /host/proc",
            r.name
        );
        let mounts = container(ds, "plugin")["volumeMounts"].as_array().unwrap();
        let proc_mount = mounts
            .iter()
            .find(|m| m["mountPath"] == "/host/proc")
            .unwrap();
        assert_eq!(
            proc_mount["readOnly"], true,
            "{}: /host/proc read-only",
            r.name
        );
        assert_ne!(
            pod_spec(ds)["hostPID"],
            true,
            "{}: usage needs no host PID namespace",
            r.name
        );
        let args = container(ds, "plugin")["args"].as_array().unwrap();
        assert!(
            args.iter().any(|a| a == "--host-proc=/host/proc"),
            "{}: --host-proc",
            r.name
        );
    }
}
