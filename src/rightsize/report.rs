//! Allocations + owners + prices → one recommendation per workload and the idle allocations.

use std::collections::{BTreeMap, BTreeSet};

use super::HOURS_PER_MONTH;
use super::claim_yaml::claim_template;
use super::input::{Allocation, Owners};
use super::output::{
    Action, ComputeStats, Cost, IdleRow, MemoryStats, Recommendation, Report, SCHEMA_VERSION,
    Settings, Totals, Window, WorkloadRow,
};
use super::owner::{Workload, workload_of};
use super::partition::{Holds, Need, Rules, current, smallest};
use super::price::{GpuPrice, PriceSource, catalog_price};
use crate::market::PriceCatalog;

/// Share of the idle window an allocation must have been held to be listed as idle: one
/// missed scrape in ten is not a release.
const IDLE_HELD_SHARE: f64 = 0.9;
/// Least share of a GPU a move must free per device to be recommended: one MIG compute slice
/// (1/7). A restart for less is within the error of the measurement, and a share nearly as
/// large as its GPU would cap a busy workload's bursts for little gain.
const MIN_SAVING_FRACTION: f64 = 1.0 / 7.0 - 1e-9;

/// One allocation with its derived figures.
struct Priced<'a> {
    alloc: &'a Allocation,
    holds: Holds,
    price: GpuPrice,
    /// p95 and peak compute as a fraction of the GPU, when measured.
    compute_gpu: Option<(f64, f64)>,
    /// Dollars per hour while held, when known.
    cost_per_hour: Option<f64>,
}

fn price_of<'a>(alloc: &'a Allocation, catalog: &PriceCatalog) -> Priced<'a> {
    let holds = current(
        &alloc.device_type,
        &alloc.gpu_model,
        alloc.gpu_memory_bytes,
        alloc.profile.as_deref(),
        alloc.memory_bytes,
        alloc.compute_percent,
    );
    let price = match (alloc.extender_cost_per_hour, holds.fraction) {
        (Some(cost), Some(fraction)) if fraction > 0.0 && cost.is_finite() && cost >= 0.0 => {
            GpuPrice {
                usd_per_gpu_hour: cost / fraction,
                source: PriceSource::Extender,
            }
        }
        _ => catalog_price(catalog, &alloc.gpu_model, alloc.gpu_memory_bytes),
    };
    // A MIG instance's utilization is of the instance; everything else is of the GPU.
    let scale = if alloc.device_type == "mig" {
        holds.fraction
    } else {
        Some(1.0)
    };
    let compute_gpu = alloc
        .usage
        .p95_compute_percent
        .zip(alloc.usage.peak_compute_percent)
        .zip(scale)
        .map(|((p95, peak), s)| (p95 / 100.0 * s, peak / 100.0 * s));
    let cost_per_hour = alloc
        .extender_cost_per_hour
        .or_else(|| holds.fraction.map(|f| f * price.usd_per_gpu_hour));
    Priced {
        alloc,
        holds,
        price,
        compute_gpu,
        cost_per_hour,
    }
}

/// The report for `allocations` over `window`, with owners from `owners` and prices from the
/// extender's figures or `catalog`.
pub fn recommend(
    allocations: &[Allocation],
    owners: &Owners,
    catalog: &PriceCatalog,
    rules: &Rules,
    window: Window,
    driver: &str,
) -> Report {
    let priced: Vec<Priced<'_>> = allocations.iter().map(|a| price_of(a, catalog)).collect();
    // Grouped by owner whether it was read or guessed: replicas kube-state-metrics has not
    // seen yet belong with those it has; the row says "guessed" if any pod's owner was.
    let mut groups: BTreeMap<(Workload, String, String), (bool, Vec<&Priced<'_>>)> =
        BTreeMap::new();
    for p in &priced {
        let mut workload = owner_of(owners, p.alloc);
        let guessed = std::mem::take(&mut workload.guessed);
        let key = (workload, p.alloc.gpu_model.clone(), p.holds.label());
        let entry = groups.entry(key).or_default();
        entry.0 |= guessed;
        entry.1.push(p);
    }
    let mut workloads: Vec<WorkloadRow> = groups
        .into_iter()
        .map(|((mut workload, gpu_model, _), (guessed, members))| {
            workload.guessed = guessed;
            row(workload, gpu_model, &members, rules, &window, driver)
        })
        .collect();
    workloads.sort_by(|a, b| {
        let sa = a.cost.savings_per_month.unwrap_or(0.0);
        let sb = b.cost.savings_per_month.unwrap_or(0.0);
        sb.total_cmp(&sa).then_with(|| a.workload.cmp(&b.workload))
    });

    let mut idle: Vec<IdleRow> = priced
        .iter()
        .filter_map(|p| idle_row(p, owners, rules))
        .collect();
    idle.sort_by(|a, b| {
        let ca = a.cost_per_hour.unwrap_or(0.0);
        let cb = b.cost_per_hour.unwrap_or(0.0);
        cb.total_cmp(&ca)
            .then_with(|| (&a.workload, &a.pod, &a.device).cmp(&(&b.workload, &b.pod, &b.device)))
    });

    let mut totals = Totals::default();
    for w in &workloads {
        if let (Some(now), Some(after)) = (w.cost.now_per_month, w.cost.after_per_month) {
            totals.now_per_month += now;
            totals.after_per_month += after;
            totals.savings_per_month += now - after;
        }
    }
    totals.idle_per_month = idle.iter().filter_map(|i| i.cost_per_month).sum();
    let mut partition_kinds = Vec::new();
    if rules.kinds.mig {
        partition_kinds.push("mig");
    }
    if rules.kinds.shared {
        partition_kinds.push("shared");
    }
    Report {
        schema_version: SCHEMA_VERSION,
        window,
        settings: Settings {
            headroom: rules.headroom,
            partition_kinds,
            idle_threshold_percent: rules.idle_threshold_percent,
            idle_for_seconds: rules.idle_for_seconds,
        },
        workloads,
        idle,
        totals,
    }
}

fn row(
    workload: Workload,
    gpu_model: String,
    members: &[&Priced<'_>],
    rules: &Rules,
    window: &Window,
    driver: &str,
) -> WorkloadRow {
    let holds = members
        .first()
        .map(|p| p.holds.clone())
        .unwrap_or_else(|| current("gpu", "", None, None, None, None));
    let gpu_memory_bytes = members.iter().find_map(|p| p.alloc.gpu_memory_bytes);
    let mut per_pod: BTreeMap<&str, u32> = BTreeMap::new();
    let pods: BTreeSet<&str> = members.iter().map(|p| p.alloc.pod.as_str()).collect();
    for p in members {
        *per_pod.entry(p.alloc.pod.as_str()).or_default() += 1;
    }
    let devices_per_pod = per_pod.values().copied().max().unwrap_or(1);
    let held_seconds: f64 = members.iter().map(|p| p.alloc.held_seconds).sum();
    let memory = MemoryStats {
        p95_bytes: fold_max(members.iter().map(|p| p.alloc.usage.p95_memory_bytes)),
        peak_bytes: fold_max(members.iter().map(|p| p.alloc.usage.peak_memory_bytes)),
    };
    let compute = members
        .iter()
        .map(|p| p.compute_gpu)
        .collect::<Option<Vec<_>>>()
        .map(|all| ComputeStats {
            p95_percent: fold_max(all.iter().map(|c| c.0)) * 100.0,
            peak_percent: fold_max(all.iter().map(|c| c.1)) * 100.0,
        });

    let mut notes = Vec::new();
    if workload.guessed {
        notes.push(format!(
            "owner guessed from the pod name (no kube_pod_owner series for its pods): {} {}",
            workload.kind, workload.name
        ));
    }
    let held_share = if window.seconds > 0.0 {
        held_seconds / f64::from(devices_per_pod.max(1)) / window.seconds
    } else {
        0.0
    };
    if held_share < 0.25 {
        notes.push(format!(
            "short history: held {:.1} h of the {:.0} h window; peaks may not be seen yet",
            held_seconds / 3600.0 / f64::from(devices_per_pod.max(1)),
            window.seconds / 3600.0
        ));
    }

    let recommendation =
        recommendation(&holds, &gpu_model, gpu_memory_bytes, memory, compute, rules);
    let (price_per_gpu_hour, price_source) = price_summary(members);
    let concurrency = |p: &Priced<'_>| {
        if window.seconds > 0.0 {
            p.alloc.held_seconds / window.seconds
        } else {
            0.0
        }
    };
    let now_per_hour: Option<f64> = members
        .iter()
        .map(|p| p.cost_per_hour.map(|c| c * concurrency(p)))
        .sum();
    let after_per_hour: Option<f64> = match (&recommendation.action, &recommendation.target) {
        (Action::Keep, _) | (Action::Unknown, _) | (_, None) => now_per_hour,
        (_, Some(target)) => target.fraction.map(|f| {
            members
                .iter()
                .map(|p| p.price.usd_per_gpu_hour * f * concurrency(p))
                .sum()
        }),
    };
    let month = |h: Option<f64>| h.map(|h| h * HOURS_PER_MONTH);
    let cost = Cost {
        price_per_gpu_hour,
        price_source,
        now_per_hour,
        after_per_hour,
        now_per_month: month(now_per_hour),
        after_per_month: month(after_per_hour),
        savings_per_month: now_per_hour
            .zip(after_per_hour)
            .map(|(n, a)| (n - a) * HOURS_PER_MONTH),
    };
    let claim_template = match (&recommendation.action, &recommendation.target) {
        (Action::Shrink | Action::Grow | Action::Resize, Some(target)) => Some(claim_template(
            &workload,
            &gpu_model,
            target,
            devices_per_pod,
            driver,
        )),
        _ => None,
    };
    WorkloadRow {
        workload,
        gpu_model,
        holds,
        pods: pods.len(),
        allocations: members.len(),
        devices_per_pod,
        held_hours: held_seconds / 3600.0,
        memory,
        compute,
        recommendation,
        cost,
        claim_template,
        notes,
    }
}

fn recommendation(
    holds: &Holds,
    gpu_model: &str,
    gpu_memory_bytes: Option<u64>,
    memory: MemoryStats,
    compute: Option<ComputeStats>,
    rules: &Rules,
) -> Recommendation {
    let Some(compute) = compute else {
        return Recommendation {
            action: Action::Unknown,
            target: None,
            reason: "compute was not measured on this device (no per-process samples and no \
                     instance utilization from the driver): no smaller partition can be shown \
                     to be adequate"
                .to_owned(),
        };
    };
    let need = Need {
        memory_bytes: memory.peak_bytes * (1.0 + rules.headroom),
        compute_fraction: compute.p95_percent / 100.0,
    };
    let Some(target) = smallest(need, gpu_model, gpu_memory_bytes, rules.kinds) else {
        return Recommendation {
            action: Action::Unknown,
            target: None,
            reason: format!(
                "peak memory with {:.0} % headroom ({:.1} GiB) is more than one {gpu_model} has",
                rules.headroom * 100.0,
                need.memory_bytes / f64::from(1u32 << 30)
            ),
        };
    };
    let why = format!(
        "peak memory {:.1} GiB + {:.0} % headroom = {:.1} GiB, p95 compute {:.1} % of the GPU",
        memory.peak_bytes / f64::from(1u32 << 30),
        rules.headroom * 100.0,
        need.memory_bytes / f64::from(1u32 << 30),
        compute.p95_percent
    );
    let same = target.device_type == holds.device_type
        && target.profile == holds.profile
        && (target.device_type != "shared"
            || (target.memory_bytes == holds.memory_bytes
                && target.compute_percent == holds.compute_percent));
    let adequate = holds.meets(need);
    let action = match (holds.fraction, target.fraction) {
        _ if same => Action::Keep,
        // What it holds already fits and costs no more than the preferred target (a small
        // MPS share where the preferred kind, MIG, has no profile that small).
        (Some(now), Some(after)) if adequate && after > now - MIN_SAVING_FRACTION => {
            return Recommendation {
                action: Action::Keep,
                target: Some(holds.clone()),
                reason: format!(
                    "{why}: {} already fits, and {} would not free 1/7 of a GPU",
                    holds.label(),
                    target.label()
                ),
            };
        }
        // It does not fit what it holds: move, whichever way the price goes.
        (Some(now), Some(after)) if !adequate => {
            if after < now - 1e-9 {
                Action::Shrink
            } else {
                Action::Grow
            }
        }
        // It fits what it holds, and the target frees at least 1/7 of a GPU.
        (Some(_), Some(_)) => Action::Shrink,
        _ => Action::Resize,
    };
    let reason = match action {
        Action::Keep => format!("{why}: {} is already the smallest adequate", holds.label()),
        _ => format!("{why}: {} fits", target.label()),
    };
    let target = if action == Action::Keep {
        holds.clone()
    } else {
        target
    };
    Recommendation {
        action,
        target: Some(target),
        reason,
    }
}

fn price_summary(members: &[&Priced<'_>]) -> (f64, PriceSource) {
    let held: f64 = members.iter().map(|p| p.alloc.held_seconds).sum();
    let price = if held > 0.0 {
        members
            .iter()
            .map(|p| p.price.usd_per_gpu_hour * p.alloc.held_seconds)
            .sum::<f64>()
            / held
    } else {
        members.first().map_or(0.0, |p| p.price.usd_per_gpu_hour)
    };
    let source = members
        .iter()
        .max_by(|a, b| a.alloc.held_seconds.total_cmp(&b.alloc.held_seconds))
        .map_or(PriceSource::Fallback, |p| p.price.source.clone());
    (price, source)
}

fn idle_row(p: &Priced<'_>, owners: &Owners, rules: &Rules) -> Option<IdleRow> {
    let idle = &p.alloc.idle;
    let peak = idle.peak_compute_percent?;
    if rules.idle_for_seconds <= 0.0
        || idle.held_seconds < IDLE_HELD_SHARE * rules.idle_for_seconds
        || peak > rules.idle_threshold_percent
    {
        return None;
    }
    Some(IdleRow {
        workload: owner_of(owners, p.alloc),
        pod: p.alloc.pod.clone(),
        claim: p.alloc.claim.clone(),
        device: p.alloc.device.clone(),
        gpu_model: p.alloc.gpu_model.clone(),
        holds: p.holds.clone(),
        held_seconds: idle.held_seconds,
        peak_compute_percent: peak,
        peak_memory_bytes: idle.peak_memory_bytes,
        cost_per_hour: p.cost_per_hour,
        cost_per_month: p.cost_per_hour.map(|c| c * HOURS_PER_MONTH),
    })
}

/// The workload of an allocation's pod; a claim no known pod was reserved for (the plugin
/// had not named it yet) stands for itself.
fn owner_of(owners: &Owners, alloc: &Allocation) -> Workload {
    if alloc.pod.is_empty() {
        return Workload {
            namespace: alloc.namespace.clone(),
            kind: "ResourceClaim".to_owned(),
            name: alloc.claim.clone(),
            guessed: true,
        };
    }
    workload_of(owners, &alloc.namespace, &alloc.pod)
}

fn fold_max(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max)
}
