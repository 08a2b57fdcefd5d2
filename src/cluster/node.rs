//! What the cache keeps of a Node: the labels and annotation the market reads, whether the
//! node is going away, its classic `nvidia.com/gpu` allocatable, and its allocatable CPU and
//! memory (for the fragmentation term's CPU stranding).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use tracing::debug;

use super::intern::Interners;
use super::key::truncate;
use super::quantity::{parse_quantity, parse_quantity_milli};
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

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

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
    /// `status.allocatable.cpu` in milli-cores; `None` when absent or unreadable (the view
    /// then leaves CPU untracked).
    pub cpu_allocatable_milli: Option<u64>,
    /// `status.allocatable.memory` in MiB, rounded up (free memory is only ever
    /// over-estimated); `None` when absent or unreadable.
    pub memory_allocatable_mib: Option<u64>,
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
    let allocatable = |resource: &str, parse: fn(&str) -> Result<u64, _>| {
        let q = node.status.as_ref()?.allocatable.as_ref()?.get(resource)?;
        parse(&q.0)
            .inspect_err(|error| debug!(node = name, resource, %error, "allocatable skipped"))
            .ok()
    };
    let classic_allocatable = allocatable(CLASSIC_GPU_RESOURCE, parse_quantity)
        .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX));
    let cpu_allocatable_milli = allocatable("cpu", parse_quantity_milli);
    let memory_allocatable_mib = allocatable("memory", parse_quantity).map(|b| b.div_ceil(MIB));
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
        cpu_allocatable_milli,
        memory_allocatable_mib,
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
    fn cpu_and_memory_allocatable_are_read_and_bad_values_are_unknown() {
        let read = |cpu: Option<&str>, memory: Option<&str>| {
            let mut n = node(&[], &[]);
            let mut allocatable = BTreeMap::new();
            if let Some(cpu) = cpu {
                allocatable.insert("cpu".to_owned(), Quantity(cpu.into()));
            }
            if let Some(memory) = memory {
                allocatable.insert("memory".to_owned(), Quantity(memory.into()));
            }
            n.status = Some(NodeStatus {
                allocatable: Some(allocatable),
                ..NodeStatus::default()
            });
            let facts = read_node(&n, &mut Interners::default()).unwrap();
            (facts.cpu_allocatable_milli, facts.memory_allocatable_mib)
        };
        assert_eq!(
            read(Some("95690m"), Some("1055Gi")),
            (Some(95_690), Some(1_080_320))
        );
        assert_eq!(
            read(Some("96"), Some("2000Ki")),
            (Some(96_000), Some(2)),
            "MiB round up"
        );
        assert_eq!(read(None, Some("1Mi")), (None, Some(1)));
        assert_eq!(read(Some("8"), None), (Some(8000), None));
        assert_eq!(
            read(Some("lots"), Some("-1Gi")),
            (None, None),
            "unreadable is unknown"
        );
        assert_eq!(
            read(Some("1e17"), Some("1e30")),
            (None, None),
            "overflow is unknown"
        );
        assert_eq!(read(None, None), (None, None));
        let bare = read_node(&node(&[], &[]), &mut Interners::default()).unwrap();
        assert_eq!(
            (bare.cpu_allocatable_milli, bare.memory_allocatable_mib),
            (None, None),
            "no status"
        );
    }

    #[test]
    fn nameless_nodes_are_refused() {
        assert!(read_node(&Node::default(), &mut Interners::default()).is_none());
    }
}
