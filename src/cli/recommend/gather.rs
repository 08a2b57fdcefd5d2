//! Prometheus answers → the right-sizing inputs.

use std::collections::BTreeMap;

use anyhow::bail;

use super::queries::{self, Range};
use crate::promql::{Client, Sample};
use crate::rightsize::{Allocation, IdleWindow, Owners, Usage};

type Key = (String, String, String, String);

fn key(s: &Sample) -> Key {
    (
        s.label("namespace").to_owned(),
        s.label("pod").to_owned(),
        s.label("claim").to_owned(),
        s.label("device").to_owned(),
    )
}

/// Per-allocation values of one query (finite ones only).
async fn by_key(client: &Client, query: &str, at: f64) -> anyhow::Result<BTreeMap<Key, f64>> {
    Ok(client
        .query(query, at)
        .await?
        .iter()
        .filter(|s| s.value.is_finite())
        .map(|s| (key(s), s.value))
        .collect())
}

/// Everything the report needs, read from `client` for the `window` ending at `end`, plus the
/// `idle` window, both at `step_seconds` resolution.
pub async fn gather(
    client: &Client,
    end: f64,
    window_seconds: u64,
    idle_seconds: u64,
    step_seconds: u64,
) -> anyhow::Result<(Vec<Allocation>, Owners)> {
    let w = Range::new(window_seconds, step_seconds);
    let held = client.query(&queries::allocations(&w), end).await?;
    if held.is_empty() {
        return Err(absent(client, &w, end).await);
    }
    let step = step_seconds as f64;
    let held_samples = by_key(client, &queries::held_samples(&w), end).await?;
    let mem_p95 = by_key(client, &queries::memory_p95(&w), end).await?;
    let mem_peak = by_key(client, &queries::memory_peak(&w), end).await?;
    let util_p95 = by_key(client, &queries::util_p95(&w), end).await?;
    let util_peak = by_key(client, &queries::util_peak(&w), end).await?;
    let measured = by_key(client, &queries::util_measured(&w), end).await?;
    let ran = by_key(client, &queries::process_ran(&w), end).await?;
    let cost: BTreeMap<(String, String, String), f64> = client
        .query(&queries::extender_cost(&w), end)
        .await?
        .iter()
        .filter(|s| s.value.is_finite())
        .map(|s| {
            (
                (
                    s.label("namespace").to_owned(),
                    s.label("claim").to_owned(),
                    s.label("device").to_owned(),
                ),
                s.value,
            )
        })
        .collect();

    let i = Range::new(idle_seconds, step_seconds);
    let idle_held = by_key(client, &queries::held_samples(&i), end).await?;
    let idle_util_peak = by_key(client, &queries::util_peak(&i), end).await?;
    let idle_measured = by_key(client, &queries::util_measured(&i), end).await?;
    let idle_ran = by_key(client, &queries::process_ran(&i), end).await?;
    let idle_mem_peak = by_key(client, &queries::memory_peak(&i), end).await?;

    let mut allocations: BTreeMap<Key, Allocation> = BTreeMap::new();
    for s in &held {
        let k = key(s);
        if allocations.contains_key(&k) {
            // The same allocation under changed attributes (a relabel, a plugin upgrade):
            // the first is kept.
            continue;
        }
        let get = |m: &BTreeMap<Key, f64>| m.get(&k).copied();
        // Compute is known where it was measured, or where nothing ever ran (then it is 0).
        let compute_known = measured.contains_key(&k) || !ran.contains_key(&k);
        let idle_known = idle_measured.contains_key(&k) || !idle_ran.contains_key(&k);
        let alloc = Allocation {
            namespace: k.0.clone(),
            pod: k.1.clone(),
            claim: k.2.clone(),
            device: k.3.clone(),
            device_type: s.label("type").to_owned(),
            gpu_model: s.label("gpu_model").to_owned(),
            gpu_memory_bytes: s.label("gpu_memory_bytes").parse().ok(),
            profile: Some(s.label("profile").to_owned()).filter(|p| !p.is_empty()),
            memory_bytes: s.label("memory_bytes").parse().ok(),
            compute_percent: s.label("compute_percent").parse().ok(),
            held_seconds: get(&held_samples).unwrap_or(0.0) * step,
            usage: Usage {
                p95_memory_bytes: get(&mem_p95).unwrap_or(0.0),
                peak_memory_bytes: get(&mem_peak).unwrap_or(0.0),
                p95_compute_percent: compute_known.then(|| get(&util_p95).unwrap_or(0.0)),
                peak_compute_percent: compute_known.then(|| get(&util_peak).unwrap_or(0.0)),
            },
            extender_cost_per_hour: cost.get(&(k.0.clone(), k.2.clone(), k.3.clone())).copied(),
            idle: IdleWindow {
                held_seconds: get(&idle_held).unwrap_or(0.0) * step,
                peak_compute_percent: idle_known.then(|| get(&idle_util_peak).unwrap_or(0.0)),
                peak_memory_bytes: get(&idle_mem_peak).unwrap_or(0.0),
            },
        };
        allocations.insert(k, alloc);
    }

    let owners = Owners {
        pods: by_owned(client, &queries::pod_owners(&w), "pod", end).await?,
        replicasets: by_owned(client, &queries::replicaset_owners(&w), "replicaset", end).await?,
        jobs: by_owned(client, &queries::job_owners(&w), "job_name", end).await?,
    };
    Ok((allocations.into_values().collect(), owners))
}

/// One owner query's answer: (namespace, the `owned` label) → (owner kind, owner name).
async fn by_owned(
    client: &Client,
    query: &str,
    owned: &str,
    at: f64,
) -> anyhow::Result<BTreeMap<(String, String), (String, String)>> {
    Ok(client
        .query(query, at)
        .await?
        .iter()
        .map(|s| {
            (
                (s.label("namespace").to_owned(), s.label(owned).to_owned()),
                (
                    s.label("owner_kind").to_owned(),
                    s.label("owner_name").to_owned(),
                ),
            )
        })
        .collect())
}

/// Why there is nothing to report: which metric is missing, and what that means.
async fn absent(client: &Client, w: &Range, end: f64) -> anyhow::Error {
    let sampler = client
        .query(&queries::present(queries::PROCESSES, w), end)
        .await;
    match sampler {
        Err(e) => e.into(),
        Ok(series) if series.is_empty() => anyhow::anyhow!(
            "Prometheus at {} has no {} and no {} in the window: the plugin's /metrics is not \
             scraped there (chart value metrics.serviceMonitor) or per-pod usage is off \
             (--usage-interval 0)",
            client.url(),
            queries::HELD,
            queries::PROCESSES
        ),
        Ok(_) => anyhow::anyhow!(
            "Prometheus at {} has no {} in the window: no claim was prepared on a scraped \
             node then, or the plugins predate that metric (upgrade them)",
            client.url(),
            queries::HELD
        ),
    }
}

/// Refuses windows whose subqueries would be too long to evaluate.
pub fn check_points(window_seconds: u64, step_seconds: u64, max: u64) -> anyhow::Result<()> {
    let points = window_seconds / step_seconds.max(1);
    if points > max {
        bail!(
            "--window / --step is {points} points per series, more than {max}: raise --step or \
             shorten --window"
        );
    }
    Ok(())
}
