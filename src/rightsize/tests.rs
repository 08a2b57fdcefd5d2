//! The rules on hand-computed cases: owners, partition choice, prices, idle detection, YAML.

use super::input::IdleWindow;
use super::partition::current;
use super::price::catalog_price;
use super::*;
use crate::market::PriceCatalog;

const GIB: f64 = (1u64 << 30) as f64;
const H100: &str = "NVIDIA H100 80GB HBM3";
const L4: &str = "NVIDIA L4";
const DAY: f64 = 86_400.0;

fn rules() -> Rules {
    Rules {
        headroom: 0.2,
        kinds: Kinds {
            mig: true,
            shared: true,
        },
        idle_threshold_percent: 1.0,
        idle_for_seconds: 6.0 * 3600.0,
    }
}

fn window() -> Window {
    Window {
        end_unix: 1_800_000_000.0,
        end: "2027-01-15T08:00:00Z".to_owned(),
        seconds: DAY,
    }
}

/// A whole H100 held all day by `pod`, using `mem_gib` at peak and `p95` % compute.
fn whole(pod: &str, mem_gib: f64, p95: f64, peak: f64) -> Allocation {
    Allocation {
        namespace: "ml".to_owned(),
        pod: pod.to_owned(),
        claim: format!("{pod}-gpu-abcde"),
        device: "gpu-0".to_owned(),
        device_type: "gpu".to_owned(),
        gpu_model: H100.to_owned(),
        gpu_memory_bytes: Some(80 << 30),
        profile: None,
        memory_bytes: Some(80 << 30),
        compute_percent: Some(100.0),
        held_seconds: DAY,
        usage: Usage {
            p95_memory_bytes: mem_gib * 0.9 * GIB,
            peak_memory_bytes: mem_gib * GIB,
            p95_compute_percent: Some(p95),
            peak_compute_percent: Some(peak),
        },
        extender_cost_per_hour: None,
        idle: IdleWindow {
            held_seconds: 6.0 * 3600.0,
            peak_compute_percent: Some(peak),
            peak_memory_bytes: mem_gib * GIB,
        },
    }
}

fn owners() -> Owners {
    let mut owners = Owners::default();
    owners.pods.insert(
        ("ml".to_owned(), "infer-7d9f8b6c5d-x2x4z".to_owned()),
        ("ReplicaSet".to_owned(), "infer-7d9f8b6c5d".to_owned()),
    );
    owners.replicasets.insert(
        ("ml".to_owned(), "infer-7d9f8b6c5d".to_owned()),
        ("Deployment".to_owned(), "infer".to_owned()),
    );
    owners.pods.insert(
        ("ml".to_owned(), "debug".to_owned()),
        ("<none>".to_owned(), "<none>".to_owned()),
    );
    owners
}

fn run(allocations: &[Allocation]) -> Report {
    let catalog = PriceCatalog::builtin().unwrap();
    recommend(
        allocations,
        &owners(),
        &catalog,
        &rules(),
        window(),
        "gpu.tessera.dev",
    )
}

#[test]
fn owners_follow_replicasets_and_names_are_guessed_only_without_kube_state_metrics() {
    let o = owners();
    let w = workload_of(&o, "ml", "infer-7d9f8b6c5d-x2x4z");
    assert_eq!(
        (w.kind.as_str(), w.name.as_str(), w.guessed),
        ("Deployment", "infer", false)
    );
    let mut cron = o.clone();
    cron.pods.insert(
        ("ml".to_owned(), "nightly-29123456-x8k2p".to_owned()),
        ("Job".to_owned(), "nightly-29123456".to_owned()),
    );
    cron.jobs.insert(
        ("ml".to_owned(), "nightly-29123456".to_owned()),
        ("CronJob".to_owned(), "nightly".to_owned()),
    );
    let w = workload_of(&cron, "ml", "nightly-29123456-x8k2p");
    assert_eq!((w.kind.as_str(), w.name.as_str()), ("CronJob", "nightly"));
    let w = workload_of(&o, "ml", "debug");
    assert_eq!(
        (w.kind.as_str(), w.name.as_str(), w.guessed),
        ("Pod", "debug", false)
    );
    for (pod, kind, name) in [
        ("serve-6c8b9d4f7b-qwx9z", "Deployment", "serve"),
        ("train-big-3", "StatefulSet", "train-big"),
        ("nightly-eval-x8k2p", "Job", "nightly-eval"),
        ("notebook", "Pod", "notebook"),
        // "a" is a vowel: not a generated suffix.
        ("my-train", "Pod", "my-train"),
    ] {
        let w = workload_of(&o, "ml", pod);
        assert_eq!(
            (w.kind.as_str(), w.name.as_str(), w.guessed),
            (kind, name, true),
            "{pod}"
        );
    }
}

#[test]
fn a_lightly_used_whole_h100_moves_to_the_smallest_adequate_mig_profile() {
    // Peak 7 GiB × 1.2 = 8.4 GiB fits 1g.10gb (9984 MiB); p95 10 % ≤ 1/7 of the SMs.
    let report = run(&[whole("infer-7d9f8b6c5d-x2x4z", 7.0, 10.0, 30.0)]);
    let w = &report.workloads[0];
    assert_eq!(w.recommendation.action, Action::Shrink);
    let target = w.recommendation.target.as_ref().unwrap();
    assert_eq!(
        (target.device_type.as_str(), target.profile.as_deref()),
        ("mig", Some("1g.10gb"))
    );
    // Price: the catalog's cheapest on-demand H100 80GB GPU-hour, a whole GPU all day.
    let catalog = PriceCatalog::builtin().unwrap();
    let price = catalog_price(&catalog, H100, Some(80 << 30)).usd_per_gpu_hour;
    assert!(matches!(w.cost.price_source, PriceSource::Catalog { .. }));
    let now = w.cost.now_per_month.unwrap();
    let after = w.cost.after_per_month.unwrap();
    assert!((now - price * 730.0).abs() < 1e-6, "{now} vs {price}");
    assert!((after - price / 7.0 * 730.0).abs() < 1e-6);
    assert!((w.cost.savings_per_month.unwrap() - (now - after)).abs() < 1e-9);
    let yaml = w.claim_template.as_deref().unwrap();
    assert!(
        yaml.contains("deviceClassName: mig.gpu.tessera.dev"),
        "{yaml}"
    );
    assert!(
        yaml.contains("device.attributes['gpu.tessera.dev'].profile == '1g.10gb' &&"),
        "{yaml}"
    );
    // The YAML is one valid ResourceClaimTemplate.
    let parsed: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(parsed["kind"], "ResourceClaimTemplate");
    assert_eq!(
        parsed["spec"]["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"],
        "mig.gpu.tessera.dev"
    );
    assert_eq!(parsed["metadata"]["name"], "infer-gpu");
}

#[test]
fn compute_decides_when_memory_is_small() {
    // 7 GiB but p95 40 %: 3 compute slices (3/7 = 42.9 %) are the least that covers it.
    let report = run(&[whole("infer-7d9f8b6c5d-x2x4z", 7.0, 40.0, 60.0)]);
    let target = report.workloads[0].recommendation.target.clone().unwrap();
    assert_eq!(target.profile.as_deref(), Some("3g.40gb"));
}

#[test]
fn a_busy_whole_gpu_is_kept() {
    // Peak 70 GiB × 1.2 = 84 GiB is more than an H100 has: no partition can be recommended.
    let report = run(&[whole("train-0", 70.0, 90.0, 100.0)]);
    let w = &report.workloads[0];
    assert_eq!(w.recommendation.action, Action::Unknown);
    assert!(
        w.recommendation.reason.contains("more than one"),
        "{}",
        w.recommendation.reason
    );
    // Peak 60 GiB (72 GiB with headroom) and p95 90 %: only 7g.80gb fits, as big as the GPU.
    let report = run(&[whole("train-0", 60.0, 90.0, 100.0)]);
    let w = &report.workloads[0];
    assert_eq!(w.recommendation.action, Action::Keep);
    assert_eq!(w.claim_template, None);
    assert_eq!(w.cost.savings_per_month, Some(0.0));
    assert_eq!(w.workload.kind, "StatefulSet");
}

#[test]
fn gpus_without_mig_get_a_share_rounded_up_to_whole_gib_and_percent() {
    let mut a = whole("caption-x8k2p", 5.0, 12.3, 20.0);
    a.gpu_model = L4.to_owned();
    a.gpu_memory_bytes = Some(24 << 30);
    a.memory_bytes = Some(24 << 30);
    let report = run(&[a]);
    let target = report.workloads[0].recommendation.target.clone().unwrap();
    // 5 × 1.2 = 6 GiB exactly; 12.3 % → 13 %; fraction max(6/24, 0.13) = 0.25.
    assert_eq!(target.device_type, "shared");
    assert_eq!(target.memory_bytes, Some(6 << 30));
    assert_eq!(target.compute_percent, Some(13.0));
    assert_eq!(target.fraction, Some(0.25));
    let yaml = report.workloads[0].claim_template.clone().unwrap();
    let parsed: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    let exactly = &parsed["spec"]["spec"]["devices"]["requests"][0]["exactly"];
    assert_eq!(exactly["capacity"]["requests"]["memory"], "6Gi");
    assert_eq!(exactly["capacity"]["requests"]["compute"], "13");
    assert_eq!(
        parsed["spec"]["spec"]["devices"]["config"][0]["opaque"]["parameters"]["sharing"]["strategy"],
        "MPS"
    );
    // Without shares allowed, an L4 stays whole.
    let catalog = PriceCatalog::builtin().unwrap();
    let mut only_mig = rules();
    only_mig.kinds.shared = false;
    let mut a = whole("caption-x8k2p", 5.0, 12.3, 20.0);
    a.gpu_model = L4.to_owned();
    a.gpu_memory_bytes = Some(24 << 30);
    let report = recommend(
        &[a],
        &owners(),
        &catalog,
        &only_mig,
        window(),
        "gpu.tessera.dev",
    );
    assert_eq!(report.workloads[0].recommendation.action, Action::Keep);
}

#[test]
fn unmeasured_compute_gives_no_recommendation() {
    let mut a = whole("notebook", 3.0, 0.0, 0.0);
    a.device_type = "mig".to_owned();
    a.device = "gpu-1-mig-3g40gb-0".to_owned();
    a.profile = Some("3g.40gb".to_owned());
    a.usage.p95_compute_percent = None;
    a.usage.peak_compute_percent = None;
    let report = run(&[a]);
    let w = &report.workloads[0];
    assert_eq!(w.recommendation.action, Action::Unknown);
    assert_eq!(w.compute, None);
    assert_eq!(w.holds.fraction, Some(3.0 / 7.0));
}

#[test]
fn mig_utilization_is_scaled_to_the_gpu_and_extender_prices_win() {
    // 3g.40gb at 50 % of the instance is 3/14 of the GPU: 2g.20gb (2/7 = 28.6 %) covers it.
    let mut a = whole("serve-6c8b9d4f7b-qwx9z", 12.0, 50.0, 60.0);
    a.device_type = "mig".to_owned();
    a.profile = Some("3g.40gb".to_owned());
    a.extender_cost_per_hour = Some(3.0);
    let report = run(&[a]);
    let w = &report.workloads[0];
    let c = w.compute.unwrap();
    assert!((c.p95_percent - 50.0 * 3.0 / 7.0).abs() < 1e-9);
    assert_eq!(
        w.recommendation.target.as_ref().unwrap().profile.as_deref(),
        Some("2g.20gb")
    );
    assert_eq!(w.cost.price_source, PriceSource::Extender);
    // $3/h for 3/7 of a GPU is $7/GPU-h; 2/7 of it is $2/h.
    assert!((w.cost.price_per_gpu_hour - 7.0).abs() < 1e-9);
    assert!((w.cost.now_per_hour.unwrap() - 3.0).abs() < 1e-9);
    assert!((w.cost.after_per_hour.unwrap() - 2.0).abs() < 1e-9);
}

#[test]
fn replicas_group_into_one_row_with_the_most_demanding_figures() {
    let mut a = whole("infer-7d9f8b6c5d-x2x4z", 7.0, 10.0, 30.0);
    let mut b = whole("infer-7d9f8b6c5d-b2c4d", 15.0, 5.0, 10.0);
    a.held_seconds = DAY / 2.0;
    b.held_seconds = DAY / 2.0;
    b.claim = "other".to_owned();
    let report = run(&[a, b]);
    assert_eq!(report.workloads.len(), 1);
    let w = &report.workloads[0];
    assert_eq!((w.pods, w.allocations, w.devices_per_pod), (2, 2, 1));
    assert!((w.memory.peak_bytes - 15.0 * GIB).abs() < 1.0);
    // 15 × 1.2 = 18 GiB: 1g.20gb. Half a day each: one GPU on average.
    let target = w.recommendation.target.as_ref().unwrap();
    assert_eq!(target.profile.as_deref(), Some("1g.20gb"));
    assert!((w.held_hours - 24.0).abs() < 1e-9);
    // The second pod has no kube_pod_owner series: its name gives the same Deployment, and
    // the row says one owner was guessed.
    assert!(w.workload.guessed);
    assert_eq!(w.notes.len(), 1, "{:?}", w.notes);
    assert!(w.notes[0].contains("guessed"));
}

#[test]
fn idle_allocations_are_held_and_unused_for_the_whole_idle_window() {
    let idle = whole("notebook", 4.0, 0.0, 0.0);
    let mut busy = whole("train-0", 60.0, 90.0, 100.0);
    busy.claim = "busy".to_owned();
    let mut short = whole("eval-x8k2p", 1.0, 0.0, 0.0);
    short.idle.held_seconds = 3600.0;
    let mut unmeasured = whole("mig-x8k2p", 1.0, 0.0, 0.0);
    unmeasured.idle.peak_compute_percent = None;
    let report = run(&[idle, busy, short, unmeasured]);
    assert_eq!(report.idle.len(), 1);
    let i = &report.idle[0];
    assert_eq!(
        (i.pod.as_str(), i.workload.kind.as_str()),
        ("notebook", "Pod")
    );
    let catalog = PriceCatalog::builtin().unwrap();
    let price = catalog_price(&catalog, H100, Some(80 << 30)).usd_per_gpu_hour;
    assert!((i.cost_per_month.unwrap() - price * 730.0).abs() < 1e-6);
    assert!((report.totals.idle_per_month - price * 730.0).abs() < 1e-6);
}

#[test]
fn catalog_prices_match_the_model_and_size() {
    let catalog = PriceCatalog::builtin().unwrap();
    let h100 = catalog_price(&catalog, H100, Some(80 << 30));
    assert!(matches!(h100.source, PriceSource::Catalog { .. }));
    // A size the catalog does not list for the model is not priced as the other size.
    let a100_80 = catalog_price(&catalog, "NVIDIA A100-SXM4-80GB", Some(80 << 30));
    let a100_40 = catalog_price(&catalog, "NVIDIA A100-SXM4-40GB", Some(40 << 30));
    assert!(a100_80.usd_per_gpu_hour > a100_40.usd_per_gpu_hour);
    let unknown = catalog_price(&catalog, "Some Accelerator 9000", None);
    assert_eq!(unknown.source, PriceSource::Fallback);
    assert_eq!(
        unknown.usd_per_gpu_hour,
        crate::market::FALLBACK_USD_PER_GPU_HOUR
    );
}

#[test]
fn a_small_share_that_fits_is_kept_and_a_full_mig_slice_grows() {
    // A 6 GiB / 10 % MPS share of an H100 using 4 GiB and 8 %: the smallest MIG profile
    // (1/7 of the GPU) would cost more than the share (0.1); the share stays.
    let mut share = whole("caption-x8k2p", 4.0, 8.0, 9.0);
    share.device_type = "shared".to_owned();
    share.device = "gpu-0-shared".to_owned();
    share.memory_bytes = Some(6 << 30);
    share.compute_percent = Some(10.0);
    let report = run(&[share]);
    let w = &report.workloads[0];
    assert_eq!(w.holds.fraction, Some(0.1));
    assert_eq!(
        w.recommendation.action,
        Action::Keep,
        "{:?}",
        w.recommendation
    );
    assert_eq!(w.claim_template, None);

    // A 1g.10gb (9.75 GiB) whose peak is 9 GiB: 10.8 GiB with headroom does not fit; 1g.20gb.
    let mut slice = whole("notebook", 9.0, 50.0, 90.0);
    slice.device_type = "mig".to_owned();
    slice.device = "gpu-1-mig-1g10gb-0".to_owned();
    slice.profile = Some("1g.10gb".to_owned());
    let report = run(&[slice]);
    let w = &report.workloads[0];
    assert_eq!(
        w.recommendation.action,
        Action::Grow,
        "{:?}",
        w.recommendation
    );
    let target = w.recommendation.target.as_ref().unwrap();
    assert_eq!(target.profile.as_deref(), Some("1g.20gb"));
    // Same compute slice, same price: growing costs nothing here.
    assert_eq!(w.cost.savings_per_month, Some(0.0));
}

#[test]
fn a_claim_without_a_known_pod_stands_for_itself() {
    let mut a = whole("", 7.0, 10.0, 30.0);
    a.claim = "orphan-gpu".to_owned();
    let report = run(&[a]);
    let w = &report.workloads[0].workload;
    assert_eq!(
        (w.kind.as_str(), w.name.as_str(), w.guessed),
        ("ResourceClaim", "orphan-gpu", true)
    );
}

#[test]
fn settings_are_bounded() {
    assert!(rules().validate().is_ok());
    let mut bad = rules();
    bad.headroom = -0.1;
    assert_eq!(bad.validate(), Err(RightsizeError::Headroom(-0.1)));
    bad = rules();
    bad.idle_threshold_percent = 120.0;
    assert!(bad.validate().is_err());
    assert_eq!(
        Kinds::parse("mig, shared").unwrap(),
        Kinds {
            mig: true,
            shared: true
        }
    );
    assert_eq!(
        Kinds::parse("mps").unwrap_err(),
        RightsizeError::Kind("mps".to_owned())
    );
    // A time-sliced share's size is unknown on the node: no fraction.
    assert_eq!(
        current("shared", L4, Some(24 << 30), None, None, None).fraction,
        None
    );
}

#[test]
fn openmetrics_output_carries_savings_and_idle_cost() {
    let mut idle = whole("notebook", 4.0, 0.0, 0.0);
    idle.claim = "nb\"1".to_owned();
    let report = run(&[whole("infer-7d9f8b6c5d-x2x4z", 7.0, 10.0, 30.0), idle]);
    let text = render_openmetrics(&report);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let savings = report.workloads[0].cost.savings_per_month.unwrap();
    assert!(
        text.contains(&format!(
            "tessera_recommend_savings_dollars_per_month{{namespace=\"ml\",owner_kind=\"Deployment\",owner_name=\"infer\",gpu_model=\"{H100}\",holds=\"gpu\",action=\"shrink\",target=\"mig 1g.10gb\"}} {savings}"
        )),
        "{text}"
    );
    assert!(text.contains("claim=\"nb\\\"1\""), "{text}");
    assert!(text.contains("when=\"after\""));
}
