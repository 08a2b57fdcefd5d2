//! Allocation per node and its report (table or JSON).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::AllocateArgs;
use super::input::Inputs;
use crate::allocator::orders::{self, Coverage};
use crate::allocator::{
    AllocatedState, AllocatorError, Classes, Features, NodeDevices, Outcome, PreparedClaims,
    allocate, default_order,
};

/// The whole report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Kubernetes release modelled (`1.34`, `1.35`, `1.36+`).
    pub kube_version: &'static str,
    /// Upstream allocator implementation that runs with these features.
    pub allocator: &'static str,
    /// Whether slices are visited in name order (else: arbitrary).
    pub slices_sorted: bool,
    /// Fields dropped because their feature gate is off.
    pub notes: Vec<String>,
    /// One entry per node.
    pub nodes: Vec<NodeReport>,
}

/// One node.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// Node name.
    pub node: String,
    /// Device slices the allocator may visit.
    pub device_slices: usize,
    /// Slice orders tried.
    pub orders: usize,
    /// `name order`, `all orders` or `seeded sample (seed N)`.
    pub coverage: String,
    /// Distinct outcomes, most frequent first.
    pub outcomes: Vec<OutcomeReport>,
    /// Why the scheduler refuses the node outright (a CEL runtime error, an "All" request
    /// on an incomplete pool), if it does.
    pub error: Option<String>,
    /// What tessera's own fit would take (`request -> device`), beside the allocator's
    /// answer: where they differ, the published order decides, not tessera.
    pub tessera_choice: Vec<String>,
    /// Why tessera's own fit has no choice here, if it has none.
    pub tessera_choice_error: Option<String>,
}

/// One distinct outcome.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeReport {
    /// Orders that gave it.
    pub orders: usize,
    /// Share of the orders tried, percent.
    pub percent: f64,
    /// Whether no assignment exists.
    pub unsatisfiable: bool,
    /// Per claim, the devices.
    pub claims: Vec<ClaimReport>,
}

/// A claim's devices in one outcome.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimReport {
    /// Claim name.
    pub claim: String,
    /// Its devices.
    pub devices: Vec<DeviceReport>,
}

/// One device result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReport {
    /// `request` or `request/subrequest`.
    pub request: String,
    /// Pool.
    pub pool: String,
    /// Device name.
    pub device: String,
    /// A share (gets a `shareID`).
    pub share: bool,
    /// What a share consumes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub consumed_capacity: BTreeMap<String, String>,
}

/// Allocates on every node.
pub fn evaluate(
    inputs: &Inputs,
    args: &AllocateArgs,
    features: Features,
) -> anyhow::Result<Report> {
    let classes = Classes::new(&inputs.classes);
    let claims = PreparedClaims::new(&inputs.claims, &classes, features)?;
    let order = default_order(args.kube_version, features);
    let mut nodes = Vec::new();
    for (node_name, slices) in &inputs.nodes {
        let node = NodeDevices::new(slices.clone(), features)?;
        let state = AllocatedState::new(&node, &inputs.allocated)?;
        let device_slices = node.device_slice_indices().len();
        let result: Result<(BTreeMap<Outcome, usize>, usize, String), AllocatorError> = match &order
        {
            Some(order) => allocate(&node, &state, &claims, order)
                .map(|o| (BTreeMap::from([(o, 1)]), 1, "name order".to_owned())),
            None => orders::distribution(&node, &state, &claims, args.seed).map(|d| {
                let coverage = match d.coverage {
                    Coverage::Exhaustive => "all orders".to_owned(),
                    Coverage::Sampled { seed } => format!("seeded sample (seed {seed})"),
                };
                (d.outcomes, d.orders, coverage)
            }),
        };
        let report = match result {
            Ok((outcomes, tried, coverage)) => NodeReport {
                node: node_name.clone(),
                device_slices,
                orders: tried,
                coverage,
                outcomes: outcome_reports(&node, outcomes, tried),
                error: None,
                tessera_choice: Vec::new(),
                tessera_choice_error: None,
            },
            Err(
                e @ (AllocatorError::SelectorRuntime { .. }
                | AllocatorError::AllWithBadPool { .. }
                | AllocatorError::SearchBudget { .. }),
            ) => NodeReport {
                node: node_name.clone(),
                device_slices,
                orders: 0,
                coverage: String::new(),
                outcomes: Vec::new(),
                error: Some(e.to_string()),
                tessera_choice: Vec::new(),
                tessera_choice_error: None,
            },
            Err(e) => return Err(anyhow::anyhow!("node {node_name}: {e}")),
        };
        nodes.push(report);
    }
    let own = super::own_fit::choices(&inputs.raw, &args.driver_name, inputs.nodes.keys())?;
    for node in &mut nodes {
        match own.get(&node.node) {
            Some(Ok(choice)) => node.tessera_choice = choice.clone(),
            Some(Err(why)) => node.tessera_choice_error = Some(why.clone()),
            None => {}
        }
    }
    Ok(Report {
        kube_version: args.kube_version.label(),
        allocator: features.implementation(args.kube_version).label(),
        slices_sorted: order.is_some(),
        notes: crate::allocator_k8s::summarize(&inputs.notes),
        nodes,
    })
}

fn outcome_reports(
    node: &NodeDevices,
    outcomes: BTreeMap<Outcome, usize>,
    tried: usize,
) -> Vec<OutcomeReport> {
    let mut list: Vec<(Outcome, usize)> = outcomes.into_iter().collect();
    // Most frequent first; ties in outcome order (stable, deterministic).
    list.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    list.into_iter()
        .map(|(outcome, count)| {
            let percent = if tried == 0 {
                0.0
            } else {
                100.0 * count as f64 / tried as f64
            };
            match outcome {
                Outcome::Unsatisfiable => OutcomeReport {
                    orders: count,
                    percent,
                    unsatisfiable: true,
                    claims: Vec::new(),
                },
                Outcome::Allocated(claims) => OutcomeReport {
                    orders: count,
                    percent,
                    unsatisfiable: false,
                    claims: claims
                        .into_iter()
                        .map(|c| ClaimReport {
                            claim: c.claim,
                            devices: c
                                .devices
                                .into_iter()
                                .map(|d| {
                                    let (_, pool, name) =
                                        node.device_id(d.device).unwrap_or_default();
                                    DeviceReport {
                                        request: d.request,
                                        pool: pool.to_owned(),
                                        device: name.to_owned(),
                                        share: d.share,
                                        consumed_capacity: d
                                            .consumed_capacity
                                            .iter()
                                            .map(|(k, v)| (k.clone(), v.to_string()))
                                            .collect(),
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                },
            }
        })
        .collect()
}

/// The human-readable report.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let order = if report.slices_sorted {
        "slices in name order: deterministic"
    } else {
        "slices in arbitrary order: every order is possible"
    };
    let _ = writeln!(
        out,
        "Kubernetes {}, {} allocator, {order}",
        report.kube_version, report.allocator
    );
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    for node in &report.nodes {
        let _ = writeln!(out);
        if let Some(error) = &node.error {
            let _ = writeln!(out, "node {}: refused by the scheduler: {error}", node.node);
            continue;
        }
        let _ = writeln!(
            out,
            "node {} ({} device slices; {} order{} tried: {})",
            node.node,
            node.device_slices,
            node.orders,
            if node.orders == 1 { "" } else { "s" },
            node.coverage
        );
        for outcome in &node.outcomes {
            let share = if report.slices_sorted {
                "  ".to_owned()
            } else {
                format!(
                    "  {:>5.1}% ({}/{})  ",
                    outcome.percent, outcome.orders, node.orders
                )
            };
            if outcome.unsatisfiable {
                let _ = writeln!(
                    out,
                    "{share}does not fit: no assignment of the free devices satisfies every claim"
                );
                continue;
            }
            let mut parts = Vec::new();
            for claim in &outcome.claims {
                for d in &claim.devices {
                    let mut text = format!("{} {} -> {}", claim.claim, d.request, d.device);
                    if d.share {
                        let caps: Vec<String> = d
                            .consumed_capacity
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        let _ = write!(text, " (share: {})", caps.join(", "));
                    }
                    parts.push(text);
                }
            }
            let _ = writeln!(out, "{share}{}", parts.join("; "));
        }
        match &node.tessera_choice_error {
            Some(why) => {
                let _ = writeln!(out, "  tessera's own fit: none ({why})");
            }
            None if !node.tessera_choice.is_empty() => {
                let _ = writeln!(
                    out,
                    "  tessera's own fit: {}",
                    node.tessera_choice.join("; ")
                );
            }
            None => {}
        }
    }
    out
}
