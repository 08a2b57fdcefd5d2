//! Which nodes a pod must not go to, whatever they cost: the extender's `filter` verb.
//!
//! The interruption rules are [`filter_reason`]'s, the same the blended score applies, so the
//! filter and the score never disagree about a node. Fit is not checked here: whether the pod's claims can be allocated on a node is the DRA
//! allocator's call, made on the scheduler's own up-to-date view; repeating it on a possibly
//! stale cache could only reject nodes wrongly. What is checked is what the allocator cannot
//! know: the node is going away, the pod must not run on spot, or the pod would cost more than
//! its owner allows.

use super::blend::{FilterReason, NodeInputs, filter_reason};
use super::risk::Tolerance;
use crate::market::CapacityType;

/// What the filter needs to know about a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeCondition {
    /// On-demand, spot or reserved.
    pub capacity: CapacityType,
    /// Probability the node is interrupted within an hour (0 when unknown and not spot).
    pub hourly_interruption_probability: f64,
    /// Reason of an imminent-interruption taint (`market::interruption_notice`), if any.
    pub interruption_notice: Option<&'static str>,
    /// Whether the node is being deleted.
    pub deleting: bool,
}

/// A pod's cost ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CostCeiling {
    /// No ceiling.
    Unlimited,
    /// At most this many US dollars per hour.
    Usd(f64),
    /// The pod states a ceiling that is not a number: every node is refused, so the mistake
    /// shows in the pod's events instead of being silently ignored.
    Invalid,
}

/// What the filter needs to know about a pod.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodConstraints {
    /// Whether the pod uses (or may use) a GPU.
    pub needs_gpu: bool,
    /// The pod's interruption tolerance.
    pub tolerance: Tolerance,
    /// The most the pod may cost per hour.
    pub ceiling: CostCeiling,
}

/// Why a node is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rejection {
    /// The node is being deleted.
    Deleting,
    /// The node carries an imminent-interruption taint (its reason).
    InterruptionNotice(&'static str),
    /// The pod's cost ceiling does not parse.
    InvalidCeiling,
    /// A node that can be interrupted (spot) for a pod that must not be.
    IntolerantOnInterruptible,
    /// The pod's partition here costs more than its ceiling.
    OverCeiling {
        /// What the pod would cost on this node, US dollars per hour.
        cost: f64,
        /// The pod's ceiling, US dollars per hour.
        ceiling: f64,
    },
}

impl Rejection {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Rejection::Deleting => "node_deleting",
            Rejection::InterruptionNotice(_) => "interruption_notice",
            Rejection::InvalidCeiling => "invalid_cost_ceiling",
            Rejection::IntolerantOnInterruptible => "intolerant_on_interruptible",
            Rejection::OverCeiling { .. } => "over_cost_ceiling",
        }
    }

    /// Whether evicting pods from the node could never make it acceptable. Only a cost
    /// ceiling can change with preemption (a freed MIG slice may be cheaper than the whole GPU
    /// the pod would get now).
    pub fn preemption_cannot_help(&self) -> bool {
        !matches!(self, Rejection::OverCeiling { .. })
    }
}

/// Whether `pod` must stay off `node`. `pod_hourly_cost` is what the pod's partition would
/// cost there, `None` when unknown (the node or a claim is not in the cache): an unknown cost
/// passes, since refusing on missing data would fail scheduling for a cache lag.
///
/// A GPU pod avoids nodes that are going away (it would be evicted before doing useful work);
/// the tolerance and cost rules apply to every pod that states them.
pub fn filter(
    node: &NodeCondition,
    pod: &PodConstraints,
    pod_hourly_cost: Option<f64>,
) -> Option<Rejection> {
    if pod.needs_gpu && node.deleting {
        return Some(Rejection::Deleting);
    }
    let notice = node.interruption_notice.filter(|_| pod.needs_gpu);
    let inputs = NodeInputs {
        // Prices do not enter the rule; only the node's interruption state does.
        price_per_gpu_hour: 0.0,
        node_hourly_price: 0.0,
        in_use: false,
        capacity: node.capacity,
        hourly_interruption_probability: node.hourly_interruption_probability,
        interruption_notice: notice.is_some(),
    };
    match filter_reason(&inputs, pod.tolerance) {
        Some(FilterReason::InterruptionImminent) => {
            return Some(Rejection::InterruptionNotice(
                notice.unwrap_or("imminent interruption"),
            ));
        }
        Some(FilterReason::IntolerantOnInterruptible) => {
            return Some(Rejection::IntolerantOnInterruptible);
        }
        None => {}
    }
    match (pod.ceiling, pod_hourly_cost) {
        (CostCeiling::Invalid, _) => Some(Rejection::InvalidCeiling),
        (CostCeiling::Usd(ceiling), Some(cost)) if cost > ceiling => {
            Some(Rejection::OverCeiling { cost, ceiling })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON_DEMAND: NodeCondition = NodeCondition {
        capacity: CapacityType::OnDemand,
        hourly_interruption_probability: 0.0,
        interruption_notice: None,
        deleting: false,
    };
    const GPU_POD: PodConstraints = PodConstraints {
        needs_gpu: true,
        tolerance: Tolerance::Checkpointed,
        ceiling: CostCeiling::Unlimited,
    };

    #[test]
    fn healthy_nodes_pass() {
        assert_eq!(filter(&ON_DEMAND, &GPU_POD, Some(3.0)), None);
        let spot = NodeCondition {
            capacity: CapacityType::Spot,
            ..ON_DEMAND
        };
        assert_eq!(
            filter(&spot, &GPU_POD, None),
            None,
            "tolerant pods may use spot"
        );
    }

    #[test]
    fn nodes_going_away_are_refused_to_gpu_pods_only() {
        let noticed = NodeCondition {
            interruption_notice: Some("AWS spot interruption notice"),
            ..ON_DEMAND
        };
        assert_eq!(
            filter(&noticed, &GPU_POD, None),
            Some(Rejection::InterruptionNotice(
                "AWS spot interruption notice"
            ))
        );
        let deleting = NodeCondition {
            deleting: true,
            ..noticed
        };
        assert_eq!(filter(&deleting, &GPU_POD, None), Some(Rejection::Deleting));
        let cpu_pod = PodConstraints {
            needs_gpu: false,
            ..GPU_POD
        };
        assert_eq!(filter(&deleting, &cpu_pod, None), None);
    }

    #[test]
    fn intolerant_pods_stay_off_spot() {
        let intolerant = PodConstraints {
            tolerance: Tolerance::Intolerant,
            ..GPU_POD
        };
        for capacity in [CapacityType::OnDemand, CapacityType::Reserved] {
            let node = NodeCondition {
                capacity,
                ..ON_DEMAND
            };
            assert_eq!(filter(&node, &intolerant, None), None, "{capacity}");
        }
        let spot = NodeCondition {
            capacity: CapacityType::Spot,
            hourly_interruption_probability: 4.9e-4,
            ..ON_DEMAND
        };
        let rejection = filter(&spot, &intolerant, None).unwrap();
        assert_eq!(rejection, Rejection::IntolerantOnInterruptible);
        assert!(rejection.preemption_cannot_help());
        let cpu_only = PodConstraints {
            needs_gpu: false,
            ..intolerant
        };
        assert_eq!(
            filter(&spot, &cpu_only, None),
            Some(Rejection::IntolerantOnInterruptible),
            "the tolerance rule holds for every pod that states it"
        );
    }

    #[test]
    fn cost_ceilings_refuse_dearer_nodes_and_pass_unknown_costs() {
        let capped = PodConstraints {
            ceiling: CostCeiling::Usd(2.0),
            ..GPU_POD
        };
        assert_eq!(
            filter(&ON_DEMAND, &capped, Some(2.0)),
            None,
            "at the ceiling"
        );
        let over = filter(&ON_DEMAND, &capped, Some(2.5)).unwrap();
        assert_eq!(
            over,
            Rejection::OverCeiling {
                cost: 2.5,
                ceiling: 2.0
            }
        );
        assert!(!over.preemption_cannot_help());
        assert_eq!(filter(&ON_DEMAND, &capped, None), None);
        let invalid = PodConstraints {
            ceiling: CostCeiling::Invalid,
            ..GPU_POD
        };
        assert_eq!(
            filter(&ON_DEMAND, &invalid, None),
            Some(Rejection::InvalidCeiling)
        );
    }

    #[test]
    fn metric_labels_are_distinct() {
        let all = [
            Rejection::Deleting,
            Rejection::InterruptionNotice("x"),
            Rejection::InvalidCeiling,
            Rejection::IntolerantOnInterruptible,
            Rejection::OverCeiling {
                cost: 1.0,
                ceiling: 0.0,
            },
        ];
        let mut labels: Vec<_> = all.iter().map(Rejection::metric_label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }
}
