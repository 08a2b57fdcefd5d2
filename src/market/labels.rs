//! Node label and annotation keys the market module reads.
//!
//! Sources: `scheduler-extender-api.md` section 9 and `placement-benchmark.md` section 5.3.

/// Well-known label with the cloud instance type (for example `g5.xlarge`).
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
/// Well-known label with the cloud region (for example `us-east-1`).
pub const REGION: &str = "topology.kubernetes.io/region";
/// Karpenter capacity type: `spot`, `on-demand` or `reserved`.
pub const KARPENTER_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
/// EKS managed node group capacity type: `ON_DEMAND`, `SPOT` (upper case) or `CAPACITY_BLOCK`.
pub const EKS_CAPACITY_TYPE: &str = "eks.amazonaws.com/capacityType";
/// GKE Spot VM marker, `"true"`.
pub const GKE_SPOT: &str = "cloud.google.com/gke-spot";
/// GKE preemptible VM marker, `"true"`.
pub const GKE_PREEMPTIBLE: &str = "cloud.google.com/gke-preemptible";
/// AKS scale set priority, `spot` for spot node pools.
pub const AKS_SCALESET_PRIORITY: &str = "kubernetes.azure.com/scalesetpriority";
/// tessera annotation: the whole node's price in US dollars per hour.
pub const HOURLY_PRICE_ANNOTATION: &str = "tessera.dev/hourly-price";
