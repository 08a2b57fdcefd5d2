//! The Grafana dashboard (`deploy/grafana/tessera-dashboard.json`) against the metrics the code
//! really registers: every `tessera_…` metric a panel query or template variable reads must be
//! a family in the plugin's or the extender's registry, and every label a query matches on,
//! groups by (`by (…)`, `without (…)`) or lists (`label_values(m, l)`) must be on that metric's
//! series, or be one the chart's scrape configuration adds.
//!
//! The registries are built the way `src/cli/plugin.rs` and `src/cli/extender.rs` build them,
//! from the real constructors, and every labelled family the dashboard reads is given a series
//! through the code path that fills it in production (`attribution::publish`,
//! `ExtenderMetrics::observe_request`, `Publisher::publish_once` against an in-process API
//! server), because an empty family shows its name but not its labels. What the scrape side adds
//! (`node` on the plugin's series, the extender's own `namespace`/`pod` kept by `honorLabels`)
//! is checked on the rendered chart in `tests/chart_manifests.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tessera::admin::Readiness;
use tessera::cluster::{Cache, CacheConfig};
use tessera::discovery::FakeProfile;
use tessera::extender::ExtenderMetrics;
use tessera::extender::attribution::{self, Attribution, Published};
use tessera::extender::metrics::{AllocationLabels, KindLabel, Verb};
use tessera::prepare::PrepareMetrics;
use tessera::prepare::metrics::Operation;
use tessera::publish::{FeatureChoice, FeatureLevel, PublishMetrics, Publisher, PublisherConfig};
use tokio_util::sync::CancellationToken;

const DASHBOARD: &str = "deploy/grafana/tessera-dashboard.json";
const NODE: &str = "node-a";

/// Labels the chart's scrape configuration puts on a component's series (besides Prometheus'
/// own `job` and `instance`): the plugin's PodMonitor relabels the pod's node name into `node`.
fn scrape_labels(metric: &str) -> &'static [&'static str] {
    if metric.starts_with("tessera_plugin_") {
        &["node"]
    } else {
        &[]
    }
}

// === the registries ===

/// Exposition text of the plugin's and the extender's registries, each with a series in every
/// labelled family the dashboard reads.
async fn exposition() -> String {
    let mut plugin = Registry::default();
    let prepare = PrepareMetrics::register(&mut plugin);
    let publish = PublishMetrics::register(&mut plugin);
    prepare.observe(Operation::Prepare, Duration::from_millis(3), None);
    prepare.observe(Operation::Unprepare, Duration::from_millis(2), None);
    prepare.set_prepared(1);
    publish_fake_node(publish).await;
    record_usage(tessera::usage::UsageMetrics::register(&mut plugin));

    let mut extender = Registry::default();
    let shutdown = CancellationToken::new();
    let cache = Cache::start_with(
        Vec::new(),
        CacheConfig::builtin("gpu.tessera.dev").unwrap(),
        Readiness::new(&[]),
        shutdown.clone(),
    );
    cache.register_metrics(&mut extender);
    let metrics = ExtenderMetrics::register(&mut extender);
    for verb in [Verb::Filter, Verb::Prioritize, Verb::Explain] {
        metrics.observe_request(verb, 200, Duration::from_millis(1));
        metrics.count_decisions(verb, "fits", 1);
    }
    let allocation = AllocationLabels {
        namespace: "team-a".to_owned(),
        pod: "trainer-0".to_owned(),
        claim: "trainer-0-gpu".to_owned(),
        node: NODE.to_owned(),
        device: "gpu-0-mig-1g10gb-0".to_owned(),
        kind: KindLabel {
            r#type: "mig".to_owned(),
        },
    };
    let attribution = Attribution {
        allocations: vec![(allocation, 0.5)],
        dropped: 0,
        namespaces: BTreeMap::from([("team-a".to_owned(), 0.5)]),
        idle_by_node: BTreeMap::from([(NODE.to_owned(), 3.0)]),
    };
    attribution::publish(&metrics, attribution, &mut Published::default());
    shutdown.cancel();

    let mut text = tessera::metrics::encode(&plugin).unwrap();
    text.push_str(&tessera::metrics::encode(&extender).unwrap());
    text.push_str(&tessera::rightsize::render_openmetrics(&recommendation()));
    text
}

/// One container's usage and the device its claim holds, through the sampler's own
/// recording calls.
fn record_usage(usage: tessera::usage::UsageMetrics) {
    use tessera::usage::{Attribution, HeldDevice, UsageRow, UtilizationSource};
    usage.record(&Attribution {
        rows: vec![UsageRow {
            namespace: "team-a".to_owned(),
            pod: "trainer-0".to_owned(),
            container: "main".to_owned(),
            claim: "trainer-0-gpu".to_owned(),
            device: "gpu-0".to_owned(),
            device_type: "gpu",
            memory_bytes: 9 << 30,
            processes: 1,
            utilization: Some((15, UtilizationSource::Process)),
        }],
        attributed: 1,
        ..Attribution::default()
    });
    usage.record_held(&[HeldDevice {
        namespace: "team-a".to_owned(),
        pod: "trainer-0".to_owned(),
        claim: "trainer-0-gpu".to_owned(),
        device: "gpu-0".to_owned(),
        device_type: "gpu",
        gpu_model: "NVIDIA H100 80GB HBM3".to_owned(),
        gpu_memory_bytes: 80 << 30,
        profile: String::new(),
        memory_bytes: Some(80 << 30),
        compute_percent: Some(100),
    }]);
}

/// What `tessera recommend --format openmetrics` writes for a whole H100 that should be a
/// MIG slice and an idle one (the series the savings panels read).
fn recommendation() -> tessera::rightsize::Report {
    use tessera::rightsize::{
        Allocation, IdleWindow, Kinds, Owners, Rules, Usage, Window, recommend,
    };
    let alloc = |pod: &str, compute: f64| Allocation {
        namespace: "team-a".to_owned(),
        pod: pod.to_owned(),
        claim: format!("{pod}-gpu"),
        device: "gpu-0".to_owned(),
        device_type: "gpu".to_owned(),
        gpu_model: "NVIDIA H100 80GB HBM3".to_owned(),
        gpu_memory_bytes: Some(80 << 30),
        memory_bytes: Some(80 << 30),
        compute_percent: Some(100.0),
        held_seconds: 86_400.0,
        usage: Usage {
            p95_memory_bytes: (6u64 << 30) as f64,
            peak_memory_bytes: (7u64 << 30) as f64,
            p95_compute_percent: Some(compute),
            peak_compute_percent: Some(compute),
        },
        idle: IdleWindow {
            held_seconds: 86_400.0,
            peak_compute_percent: Some(compute),
            peak_memory_bytes: 0.0,
        },
        ..Allocation::default()
    };
    let rules = Rules {
        headroom: 0.2,
        kinds: Kinds::parse("mig,shared").unwrap(),
        idle_threshold_percent: 1.0,
        idle_for_seconds: 86_400.0,
    };
    let report = recommend(
        &[alloc("infer-0", 10.0), alloc("notebook", 0.0)],
        &Owners::default(),
        &tessera::market::PriceCatalog::builtin().unwrap(),
        &rules,
        Window {
            end_unix: 1_800_000_000.0,
            end: "2027-01-15T08:00:00Z".to_owned(),
            seconds: 86_400.0,
        },
        "gpu.tessera.dev",
    );
    assert!(!report.idle.is_empty() && report.totals.savings_per_month > 0.0);
    report
}

/// Publishes a fake 8-GPU node through the real publisher, so `devices_advertised` gets its
/// `type` series the way the plugin fills it.
async fn publish_fake_node(metrics: PublishMetrics) {
    let app = Router::new()
        .route(
            "/apis/resource.k8s.io/v1/resourceslices",
            get(|| async {
                axum::Json(json!({
                    "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSliceList",
                    "metadata": {"resourceVersion": "1"}, "items": []
                }))
            }),
        )
        // Server-side apply: answer with the object as sent (a server keeping every field).
        .route(
            "/apis/resource.k8s.io/v1/resourceslices/{name}",
            axum::routing::patch(|body: Bytes| async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                axum::Json(v)
            }),
        )
        .route(
            "/api/v1/nodes/{name}",
            get(|| async {
                let status = json!({
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "no such node"
                });
                (StatusCode::NOT_FOUND, axum::Json(status)).into_response()
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND.into_response() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let mut config = PublisherConfig::new(NODE, "gpu.tessera.dev");
    config.features = FeatureChoice::Fixed(FeatureLevel::Ga);
    let publisher = Publisher::new(client, config).with_metrics(metrics);
    let report = publisher
        .publish_once(&FakeProfile::H100x8.inventory(NODE))
        .await
        .unwrap();
    assert!(!report.slices.is_empty());
    server.abort();
}

/// Metric families (from `# TYPE`) and, per sample name, the label names its series carry.
struct Exposition {
    families: BTreeMap<String, String>,
    samples: BTreeMap<String, BTreeSet<String>>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut families = BTreeMap::new();
        let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                families.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap();
                let labels = samples.entry(line[..end].to_owned()).or_default();
                if line[end..].starts_with('{') {
                    labels.extend(label_names(&line[end + 1..]));
                }
            }
        }
        Exposition { families, samples }
    }

    /// Whether `name` (as a query spells it) is a series name of a registered family: the
    /// family name of a gauge, `_total` of a counter (prometheus-client registers counters
    /// without it and appends it to the sample), `_bucket`/`_count`/`_sum` of a histogram.
    fn knows(&self, name: &str) -> bool {
        let suffixes: &[(&str, &[&str])] = &[
            ("gauge", &[""]),
            ("counter", &["_total"]),
            ("histogram", &["_bucket", "_count", "_sum"]),
        ];
        suffixes.iter().any(|(kind, ends)| {
            ends.iter().any(|end| {
                name.strip_suffix(end)
                    .and_then(|family| self.families.get(family))
                    .is_some_and(|k| k == kind)
            })
        })
    }

    /// The label names on `name`'s series (histogram buckets include `le`).
    fn labels(&self, name: &str) -> &BTreeSet<String> {
        self.samples
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no series to read its labels from"))
    }
}

/// Label names of one sample's `{k="v",…}` block (after the `{`), honouring escaped quotes.
fn label_names(block: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = block.chars();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let name = name.trim_start_matches(',').trim();
        if name.is_empty() || name.starts_with('}') {
            return names;
        }
        names.push(name.to_owned());
        assert_eq!(chars.next(), Some('"'), "label {name} value not quoted");
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
    }
}

// === the dashboard's queries ===

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// A `{…}` selector: the label names it matches on.
    Selector(Vec<String>),
    Open,
    Close,
    Other,
}

/// Just enough of PromQL to find metric names, selector labels and grouping clauses.
fn tokens(expr: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Ident(word));
            continue;
        }
        chars.next();
        match c {
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '{' => out.push(Tok::Selector(selector_labels(&mut chars))),
            // Ranges, strings and numbers carry no names this test checks.
            '[' => {
                chars.by_ref().take_while(|c| *c != ']').for_each(drop);
                out.push(Tok::Other);
            }
            '"' => {
                chars.by_ref().take_while(|c| *c != '"').for_each(drop);
                out.push(Tok::Other);
            }
            c if c.is_whitespace() => {}
            _ => out.push(Tok::Other),
        }
    }
    out
}

/// The label names of a `{name op "value", …}` selector, consuming it through its `}`.
fn selector_labels(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Vec<String> {
    let mut labels = Vec::new();
    let mut name = String::new();
    while let Some(c) = chars.next() {
        match c {
            '}' => break,
            '"' => {
                // A matcher's value: the name before it is complete.
                labels.push(std::mem::take(&mut name));
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
            _ => {}
        }
    }
    labels
}

/// Index of the `)` closing the `(` at `open`.
fn closing(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Open => depth += 1,
            Tok::Close if depth == 1 => return i,
            Tok::Close => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced parentheses")
}

/// Index of the `(` opening the `)` at `close`.
fn opening(toks: &[Tok], close: usize) -> usize {
    (0..close)
        .rev()
        .find(|&i| toks[i] == Tok::Open && closing(toks, i) == close)
        .expect("unbalanced parentheses")
}

fn is_metric(word: &str) -> bool {
    word.starts_with("tessera_")
}

/// `(metric, label)` pairs one expression needs: selector labels on the metric they follow,
/// and `by`/`without` labels on every metric inside the aggregated expression.
fn label_uses(expr: &str) -> (BTreeSet<String>, Vec<(String, String)>) {
    let toks = tokens(expr);
    let mut metrics = BTreeSet::new();
    let mut uses = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(word) = t else { continue };
        if is_metric(word) {
            metrics.insert(word.clone());
            if let Some(Tok::Selector(labels)) = toks.get(i + 1) {
                uses.extend(labels.iter().map(|l| (word.clone(), l.clone())));
            }
        } else if word == "by" || word == "without" {
            assert_eq!(
                toks.get(i + 1),
                Some(&Tok::Open),
                "{expr}: {word} without ("
            );
            let list_end = closing(&toks, i + 1);
            let grouped: Vec<&String> = toks[i + 2..list_end]
                .iter()
                .filter_map(|t| match t {
                    Tok::Ident(l) => Some(l),
                    _ => None,
                })
                .collect();
            // `sum by (l) (expr)` or `sum (expr) by (l)`.
            let (from, to) = if toks.get(list_end + 1) == Some(&Tok::Open) {
                (list_end + 1, closing(&toks, list_end + 1))
            } else {
                assert_eq!(toks[i - 1], Tok::Close, "{expr}: {word} applies to nothing");
                (opening(&toks, i - 1), i - 1)
            };
            for inner in &toks[from..to] {
                if let Tok::Ident(m) = inner
                    && is_metric(m)
                {
                    uses.extend(grouped.iter().map(|l| (m.clone(), (*l).clone())));
                }
            }
        }
    }
    (metrics, uses)
}

/// Every query of the dashboard: panel targets and template variables.
fn queries() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = var["query"]["query"].as_str().or(var["query"].as_str()) {
            out.push(q.to_owned());
        }
    }
    out
}

/// `label_values(metric, label)` → `(metric, label)`.
fn label_values(query: &str) -> Option<(String, String)> {
    let args = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (metric, label) = args.split_once(',')?;
    let metric = metric.split('{').next()?.trim();
    Some((metric.to_owned(), label.trim().to_owned()))
}

// === the tests ===

#[tokio::test]
async fn every_dashboard_metric_and_label_is_registered() {
    let exposition = Exposition::parse(&exposition().await);
    let mut problems = Vec::new();
    let mut checked = 0;
    for query in queries() {
        let (metrics, mut uses) = if let Some((m, l)) = label_values(&query) {
            (BTreeSet::from([m.clone()]), vec![(m, l)])
        } else {
            label_uses(&query)
        };
        for m in &metrics {
            if !exposition.knows(m) {
                problems.push(format!(
                    "{m} (in `{query}`) is not registered (or, if labelled, `exposition()` gives it no series)"
                ));
            }
        }
        // `le` is the histogram bucket bound: `_bucket` series have it.
        uses.retain(|(m, _)| exposition.knows(m));
        for (m, label) in uses {
            checked += 1;
            if !exposition.labels(&m).contains(&label) && !scrape_labels(&m).contains(&&*label) {
                problems.push(format!(
                    "{m} has no label {label} (in `{query}`); it has {:?}",
                    exposition.labels(&m)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // A parser that found nothing would pass everything.
    assert!(checked >= 20, "only {checked} label uses found");
}

#[tokio::test]
async fn exposition_reader_sees_what_prometheus_client_writes() {
    let exposition = Exposition::parse(&exposition().await);
    assert_eq!(
        exposition.families["tessera_extender_requests"], "counter",
        "counters are registered without _total"
    );
    assert!(exposition.knows("tessera_extender_requests_total"));
    assert!(exposition.knows("tessera_extender_request_duration_seconds_bucket"));
    assert!(!exposition.knows("tessera_extender_request_duration_seconds_total"));
    assert!(!exposition.knows("tessera_extender_allocation_cost"));
    assert!(!exposition.knows("tessera_extender_requests"));
    assert!(exposition.knows("tessera_plugin_prepared_claims"));
    let alloc = exposition.labels("tessera_extender_allocation_cost_dollars_per_hour");
    let want = ["claim", "device", "namespace", "node", "pod", "type"];
    assert_eq!(alloc.iter().map(String::as_str).collect::<Vec<_>>(), want);
    assert!(
        exposition
            .labels("tessera_extender_request_duration_seconds_bucket")
            .contains("le")
    );
    assert!(
        exposition
            .labels("tessera_plugin_devices_advertised")
            .contains("type")
    );
    // prometheus-client writes no `# TYPE` for a labelled family without series, which is
    // why `exposition()` gives every family the dashboard reads a series.
    assert!(!exposition.knows("tessera_cluster_watch_events_total"));
    assert!(exposition.knows("tessera_cluster_cache_age_seconds"));
}

#[test]
fn query_reader_finds_selectors_and_groupings() {
    let (metrics, uses) = label_uses(
        r#"topk(5, sum by (namespace, pod) (rate(tessera_a_total{node=~"$n",x!="}"}[5m]))) / sum(tessera_b) without (le)"#,
    );
    assert_eq!(
        metrics,
        BTreeSet::from(["tessera_a_total".to_owned(), "tessera_b".to_owned()])
    );
    let uses: BTreeSet<(&str, &str)> = uses.iter().map(|(m, l)| (m.as_str(), l.as_str())).collect();
    assert_eq!(
        uses,
        BTreeSet::from([
            ("tessera_a_total", "node"),
            ("tessera_a_total", "x"),
            ("tessera_a_total", "namespace"),
            ("tessera_a_total", "pod"),
            ("tessera_b", "le"),
        ])
    );
    assert_eq!(
        label_values("label_values(tessera_c{a=\"b\"}, node)"),
        Some(("tessera_c".to_owned(), "node".to_owned()))
    );
}
