//! Whether a node is on-demand, spot or reserved, read from cloud labels.

use std::collections::BTreeMap;

use super::labels;

/// How a node's capacity was bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapacityType {
    /// Pay-as-you-go, not reclaimed by the cloud.
    OnDemand,
    /// Spare capacity the cloud can reclaim at short notice (AWS spot, GKE Spot/preemptible,
    /// AKS spot).
    Spot,
    /// Capacity reserved ahead (Karpenter `reserved`, EKS capacity blocks); not reclaimed early.
    Reserved,
}

impl CapacityType {
    /// Lower-case name, as Karpenter spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnDemand => "on-demand",
            Self::Spot => "spot",
            Self::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for CapacityType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The capacity type the labels announce; on-demand when no label says otherwise.
///
/// Read: `karpenter.sh/capacity-type` (`spot`, `on-demand`, `reserved`),
/// `eks.amazonaws.com/capacityType` (`SPOT`, `ON_DEMAND`, `CAPACITY_BLOCK`),
/// `cloud.google.com/gke-spot=true`, `cloud.google.com/gke-preemptible=true` and
/// `kubernetes.azure.com/scalesetpriority=spot`. Values are compared ignoring ASCII case: EKS
/// writes upper case and Karpenter lower case, and comparing one against the other's spelling
/// is a known bug. Unknown values are ignored.
///
/// If labels disagree, any spot signal wins, then reserved: calling a spot node on-demand would
/// let interruption-intolerant pods land on it, while the opposite mistake only costs a
/// missed saving.
pub fn capacity_type(node_labels: &BTreeMap<String, String>) -> CapacityType {
    let is = |key: &str, value: &str| {
        node_labels
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    };
    let spot = is(labels::KARPENTER_CAPACITY_TYPE, "spot")
        || is(labels::EKS_CAPACITY_TYPE, "SPOT")
        || is(labels::GKE_SPOT, "true")
        || is(labels::GKE_PREEMPTIBLE, "true")
        || is(labels::AKS_SCALESET_PRIORITY, "spot");
    if spot {
        return CapacityType::Spot;
    }
    // EKS capacity blocks are reserved GPU capacity for a fixed term.
    let reserved = is(labels::KARPENTER_CAPACITY_TYPE, "reserved")
        || is(labels::EKS_CAPACITY_TYPE, "CAPACITY_BLOCK");
    if reserved {
        CapacityType::Reserved
    } else {
        CapacityType::OnDemand
    }
}

#[cfg(test)]
mod tests;
