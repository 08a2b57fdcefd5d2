//! Node taints that announce an imminent interruption or disruption.
//!
//! Sources: `scheduler-extender-api.md` §9.2 (aws-node-termination-handler `pkg/node/node.go`,
//! Karpenter `pkg/apis/v1/taints.go`, AKS spot eviction docs).

/// A node taint as plain data, so callers need no Kubernetes types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value, if any.
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl Taint {
    /// A taint from its parts.
    pub fn new(key: impl Into<String>, value: Option<&str>, effect: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.map(str::to_owned),
            effect: effect.into(),
        }
    }
}

/// Taint keys that mean "this node is about to go away", with the reason we report, most
/// specific first. The effect is not checked: node-termination-handler lets the operator pick
/// any of the three, and the signal is the key.
///
/// Deliberately absent: `karpenter.sh/unregistered` (a node still joining, not leaving) and
/// `kubernetes.azure.com/scalesetpriority=spot` (marks every AKS spot node, always present).
const INTERRUPTION_TAINTS: [(&str, &str); 7] = [
    (
        "aws-node-termination-handler/spot-itn",
        "AWS spot interruption notice",
    ),
    (
        "remediator.aks.microsoft.com/unschedulable",
        "AKS spot preemption scheduled",
    ),
    (
        "aws-node-termination-handler/rebalance-recommendation",
        "AWS rebalance recommendation",
    ),
    (
        "aws-node-termination-handler/asg-lifecycle-termination",
        "AWS Auto Scaling termination",
    ),
    (
        "aws-node-termination-handler/scheduled-maintenance",
        "AWS scheduled maintenance",
    ),
    ("karpenter.sh/disrupted", "Karpenter is disrupting the node"),
    (
        "node.kubernetes.io/out-of-service",
        "node is out of service",
    ),
];

/// The reason of the first imminent-interruption taint on the node, in the order of
/// `INTERRUPTION_TAINTS` (not the order of `taints`, so the answer does not depend on how the
/// API server happened to list them). `None` when there is none.
pub fn interruption_notice(taints: &[Taint]) -> Option<&'static str> {
    INTERRUPTION_TAINTS
        .iter()
        .find(|(key, _)| taints.iter().any(|t| t.key == *key))
        .map(|(_, reason)| *reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_taint_is_recognised_with_any_effect() {
        for (key, reason) in INTERRUPTION_TAINTS {
            for effect in ["NoSchedule", "PreferNoSchedule", "NoExecute"] {
                let taints = [Taint::new(key, Some("event-123"), effect)];
                assert_eq!(interruption_notice(&taints), Some(reason), "{key} {effect}");
            }
            assert_eq!(
                interruption_notice(&[Taint::new(key, None, "NoSchedule")]),
                Some(reason)
            );
        }
    }

    #[test]
    fn named_taints_give_their_reasons() {
        let itn = [Taint::new(
            "aws-node-termination-handler/spot-itn",
            Some("id"),
            "NoSchedule",
        )];
        assert_eq!(
            interruption_notice(&itn),
            Some("AWS spot interruption notice")
        );
        let disrupted = [Taint::new("karpenter.sh/disrupted", None, "NoSchedule")];
        assert_eq!(
            interruption_notice(&disrupted),
            Some("Karpenter is disrupting the node")
        );
        let oos = [Taint::new(
            "node.kubernetes.io/out-of-service",
            Some("nodeshutdown"),
            "NoExecute",
        )];
        assert_eq!(interruption_notice(&oos), Some("node is out of service"));
    }

    #[test]
    fn ordinary_taints_are_not_notices() {
        let taints = [
            Taint::new("karpenter.sh/unregistered", None, "NoExecute"),
            Taint::new(
                "kubernetes.azure.com/scalesetpriority",
                Some("spot"),
                "NoSchedule",
            ),
            Taint::new("nvidia.com/gpu", Some("present"), "NoSchedule"),
            Taint::new("node.kubernetes.io/unschedulable", None, "NoSchedule"),
            Taint::new(
                "aws-node-termination-handler/spot-itn-suffix",
                None,
                "NoSchedule",
            ),
        ];
        assert_eq!(interruption_notice(&taints), None);
        assert_eq!(interruption_notice(&[]), None);
    }

    #[test]
    fn the_most_specific_notice_wins_whatever_the_taint_order() {
        let disrupted = Taint::new("karpenter.sh/disrupted", None, "NoSchedule");
        let itn = Taint::new(
            "aws-node-termination-handler/spot-itn",
            Some("id"),
            "NoSchedule",
        );
        let want = Some("AWS spot interruption notice");
        assert_eq!(interruption_notice(&[disrupted.clone(), itn.clone()]), want);
        assert_eq!(interruption_notice(&[itn, disrupted]), want);
    }
}
