//! What the cache keeps of a Node: the labels and annotation the market reads, whether the
//! node is going away, and its classic `nvidia.com/gpu` allocatable.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use tracing::debug;

use super::intern::Interners;
use super::key::truncate;
use super::quantity::parse_quantity;
use super::slice::{MAX_ATTRIBUTE_LEN, MAX_NAME_LEN};
use crate::market::labels::{
    AKS_SCALESET_PRIORITY, EKS_CAPACITY_TYPE, GKE_PREEMPTIBLE, GKE_SPOT, HOURLY_PRICE_ANNOTATION,
    INSTANCE_TYPE, KARPENTER_CAPACITY_TYPE, REGION,
};
use crate::market::{Taint, interruption_notice};

/// The classic device-plugin resource for NVIDIA GPUs.
pub const CLASSIC_GPU_RESOURCE: &str = "nvidia.com/gpu";

/// Every node label `market::node_market` reads; the others are not kept. A label the market
/// module starts to read must be added here.
pub const MARKET_LABELS: [&str; 7] = [
    INSTANCE_TYPE,
    REGION,
    KARPENTER_CAPACITY_TYPE,
    EKS_CAPACITY_TYPE,
    GKE_SPOT,
    GKE_PREEMPTIBLE,
    AKS_SCALESET_PRIORITY,
];

/// Longest label or annotation value kept; longer ones are cut (a Kubernetes label value is
/// at most 63 characters, so only an annotation can be this long).
const MAX_VALUE_LEN: usize = 256;

/// A Node as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Node name.
    pub name: Arc<str>,
    /// The labels of [`MARKET_LABELS`] the node has.
    pub market_labels: BTreeMap<String, String>,
    /// `node.kubernetes.io/instance-type`.
    pub instance_type: Option<Arc<str>>,
    /// `topology.kubernetes.io/region`.
    pub region: Option<Arc<str>>,
    /// The `tessera.dev/hourly-price` annotation, unparsed (the market module judges it).
    pub price_annotation: Option<Box<str>>,
    /// Why the node is about to be interrupted, from its taints (`market::interruption_notice`).
    pub interruption_notice: Option<&'static str>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `status.allocatable["nvidia.com/gpu"]`, 0 when absent or unreadable.
    pub classic_allocatable: u32,
}

/// The compact form of `node`; `None` for a node without a name.
pub(crate) fn read_node(node: &Node, interners: &mut Interners) -> Option<NodeFacts> {
    let name = node.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    let labels = node.metadata.labels.as_ref();
    let market_labels: BTreeMap<String, String> = MARKET_LABELS
        .iter()
        .filter_map(|key| {
            let value = labels?.get(*key)?;
            Some(((*key).to_owned(), truncate(value, MAX_VALUE_LEN).to_owned()))
        })
        .collect();
    let mut label = |key: &str| {
        market_labels
            .get(key)
            .map(|v| interners.str(truncate(v, MAX_ATTRIBUTE_LEN)))
    };
    let instance_type = label(INSTANCE_TYPE);
    let region = label(REGION);
    let price_annotation = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HOURLY_PRICE_ANNOTATION))
        .map(|v| Box::from(truncate(v, MAX_VALUE_LEN)));
    let spec = node.spec.as_ref();
    let taints: Vec<Taint> = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| Taint::new(t.key.as_str(), t.value.as_deref(), t.effect.as_str()))
        .collect();
    let classic_allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get(CLASSIC_GPU_RESOURCE))
        .and_then(|q| match parse_quantity(&q.0) {
            Ok(v) => Some(u32::try_from(v).unwrap_or(u32::MAX)),
            Err(error) => {
                debug!(node = name, %error, "nvidia.com/gpu allocatable skipped");
                None
            }
        })
        .unwrap_or(0);
    Some(NodeFacts {
        name: interners.str(truncate(name, MAX_NAME_LEN)),
        market_labels,
        instance_type,
        region,
        price_annotation,
        interruption_notice: interruption_notice(&taints),
        deleting: node.metadata.deletion_timestamp.is_some(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        classic_allocatable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, Taint as ApiTaint};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn node(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }

    #[test]
    fn market_labels_and_price_annotation_are_kept_and_nothing_else() {
        let n = node(
            &[
                (INSTANCE_TYPE, "p5.48xlarge"),
                (REGION, "us-east-1"),
                (KARPENTER_CAPACITY_TYPE, "spot"),
                ("kubernetes.io/hostname", "n1"),
            ],
            &[(HOURLY_PRICE_ANNOTATION, "12.5"), ("other", "x")],
        );
        let facts = read_node(&n, &mut Interners::default()).unwrap();
        assert_eq!(&*facts.name, "n1");
        assert_eq!(facts.market_labels.len(), 3);
        assert!(!facts.market_labels.contains_key("kubernetes.io/hostname"));
        assert_eq!(facts.instance_type.as_deref(), Some("p5.48xlarge"));
        assert_eq!(facts.region.as_deref(), Some("us-east-1"));
        assert_eq!(facts.price_annotation.as_deref(), Some("12.5"));
        assert_eq!(facts.interruption_notice, None);
        assert!(!facts.deleting && !facts.unschedulable);
        assert_eq!(facts.classic_allocatable, 0);
    }

    #[test]
    fn interruption_taints_deletion_and_cordon_are_seen() {
        let mut n = node(&[], &[]);
        n.spec = Some(NodeSpec {
            taints: Some(vec![
                ApiTaint {
                    key: "nvidia.com/gpu".into(),
                    effect: "NoSchedule".into(),
                    ..ApiTaint::default()
                },
                ApiTaint {
                    key: "aws-node-termination-handler/spot-itn".into(),
                    value: Some("i-123".into()),
                    effect: "NoSchedule".into(),
                    ..ApiTaint::default()
                },
            ]),
            unschedulable: Some(true),
            ..NodeSpec::default()
        });
        n.metadata.deletion_timestamp = Some(Time(Default::default()));
        let facts = read_node(&n, &mut Interners::default()).unwrap();
        assert_eq!(
            facts.interruption_notice,
            Some("AWS spot interruption notice")
        );
        assert!(facts.deleting);
        assert!(facts.unschedulable);

        let mut disrupted = node(&[], &[]);
        disrupted.spec = Some(NodeSpec {
            taints: Some(vec![ApiTaint {
                key: "karpenter.sh/disrupted".into(),
                effect: "NoSchedule".into(),
                ..ApiTaint::default()
            }]),
            ..NodeSpec::default()
        });
        let facts = read_node(&disrupted, &mut Interners::default()).unwrap();
        assert_eq!(
            facts.interruption_notice,
            Some("Karpenter is disrupting the node")
        );
    }

    #[test]
    fn classic_gpu_allocatable_is_read_and_bad_values_are_zero() {
        for (value, want) in [("8", 8), ("0", 0), ("not-a-number", 0), ("1e12", u32::MAX)] {
            let mut n = node(&[], &[]);
            n.status = Some(NodeStatus {
                allocatable: Some(
                    [(CLASSIC_GPU_RESOURCE.to_owned(), Quantity(value.into()))].into(),
                ),
                ..NodeStatus::default()
            });
            let facts = read_node(&n, &mut Interners::default()).unwrap();
            assert_eq!(facts.classic_allocatable, want, "{value}");
        }
    }

    #[test]
    fn nameless_nodes_are_refused() {
        assert!(read_node(&Node::default(), &mut Interners::default()).is_none());
    }
}
