//! The parts of core/v1 Pod and Node objects tessera reads, decoded from camelCase JSON.
//!
//! Decoding only these fields (instead of the full `k8s-openapi` types) keeps a request with
//! thousands of Node objects cheap: serde skips images, conditions and the rest without
//! building them. Every field accepts `null` and absence alike, as Go's decoder does.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::strict::{Strict, object, objects};
use crate::market::Taint;

/// A Pod as the extender sees it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PodObject {
    /// Name, namespace, UID, annotations.
    #[serde(default, deserialize_with = "object")]
    pub metadata: ObjectMeta,
    /// Containers and claims.
    #[serde(default, deserialize_with = "object")]
    pub spec: PodSpec,
    /// Generated claim names.
    #[serde(default, deserialize_with = "object")]
    pub status: PodStatus,
}

/// `metadata` of a Pod or Node.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Namespace (empty for nodes).
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    /// UID.
    #[serde(default, deserialize_with = "nullable")]
    pub uid: String,
    /// Labels.
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    /// Set once deletion was requested.
    #[serde(default, deserialize_with = "nullable")]
    pub deletion_timestamp: Option<String>,
}

/// The parts of `spec` that carry GPU demand.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Regular containers.
    #[serde(default, deserialize_with = "objects")]
    pub containers: Vec<Container>,
    /// Init containers (including sidecars, `restartPolicy: Always`).
    #[serde(default, deserialize_with = "objects")]
    pub init_containers: Vec<Container>,
    /// The pod's ResourceClaims.
    #[serde(default, deserialize_with = "objects")]
    pub resource_claims: Vec<PodResourceClaim>,
}

/// A container's resources.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// `Always` marks a sidecar init container.
    #[serde(default, deserialize_with = "nullable")]
    pub restart_policy: Option<String>,
    /// Requests and limits.
    #[serde(default, deserialize_with = "object")]
    pub resources: Resources,
}

/// `resources.requests` and `resources.limits`, quantities as text.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Resources {
    /// Requests.
    #[serde(default, deserialize_with = "nullable")]
    pub requests: BTreeMap<String, QuantityText>,
    /// Limits.
    #[serde(default, deserialize_with = "nullable")]
    pub limits: BTreeMap<String, QuantityText>,
}

/// One entry of `spec.resourceClaims`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodResourceClaim {
    /// Name of the entry inside the pod.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// An existing claim, by name.
    #[serde(default, deserialize_with = "nullable")]
    pub resource_claim_name: Option<String>,
    /// A template the claim is generated from.
    #[serde(default, deserialize_with = "nullable")]
    pub resource_claim_template_name: Option<String>,
}

/// The parts of `status` the extender reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// Names of the claims generated from templates.
    #[serde(default, deserialize_with = "objects")]
    pub resource_claim_statuses: Vec<PodResourceClaimStatus>,
}

/// One entry of `status.resourceClaimStatuses`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodResourceClaimStatus {
    /// The `spec.resourceClaims` entry this is for.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The generated claim's name; absent when no claim was needed.
    #[serde(default, deserialize_with = "nullable")]
    pub resource_claim_name: Option<String>,
}

/// A Kubernetes quantity as written (`"2"`, `"10Gi"`); a bare JSON number is accepted too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantityText(pub String);

impl<'de> Deserialize<'de> for QuantityText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(serde_json::Number),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Text(t) => QuantityText(t),
            Either::Number(n) => QuantityText(n.to_string()),
        })
    }
}

/// A Node as the extender sees it (`Nodes` mode).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeObject {
    /// Node name.
    pub name: String,
    /// Labels (instance type, region, capacity type).
    pub labels: BTreeMap<String, String>,
    /// Annotations (`tessera.dev/hourly-price`).
    pub annotations: BTreeMap<String, String>,
    /// Taints (interruption notices).
    pub taints: Vec<Taint>,
    /// Whether the node is being deleted.
    pub deleting: bool,
}

impl<'de> Deserialize<'de> for NodeObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "object")]
            metadata: ObjectMeta,
            #[serde(default, deserialize_with = "object")]
            spec: SpecWire,
        }
        #[derive(Deserialize, Default)]
        struct SpecWire {
            #[serde(default, deserialize_with = "objects")]
            taints: Vec<TaintWire>,
        }
        #[derive(Deserialize, Default)]
        struct TaintWire {
            #[serde(default, deserialize_with = "nullable")]
            key: String,
            #[serde(default, deserialize_with = "nullable")]
            value: Option<String>,
            #[serde(default, deserialize_with = "nullable")]
            effect: String,
        }
        let Strict(wire) = Strict::<Wire>::deserialize(deserializer)?;
        Ok(NodeObject {
            name: wire.metadata.name,
            labels: wire.metadata.labels,
            annotations: wire.metadata.annotations,
            taints: wire
                .spec
                .taints
                .into_iter()
                .map(|t| Taint {
                    key: t.key,
                    value: t.value,
                    effect: t.effect,
                })
                .collect(),
            deleting: wire.metadata.deletion_timestamp.is_some(),
        })
    }
}

/// `null` or absent → `T::default()`, as Go leaves a zero value.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// === conversions from the API types the cluster cache holds ===

impl From<&k8s_openapi::api::core::v1::Pod> for PodObject {
    fn from(pod: &k8s_openapi::api::core::v1::Pod) -> Self {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let container = |c: &k8s_openapi::api::core::v1::Container| Container {
            restart_policy: c.restart_policy.clone(),
            resources: c
                .resources
                .as_ref()
                .map(|r| Resources {
                    requests: quantities(r.requests.as_ref()),
                    limits: quantities(r.limits.as_ref()),
                })
                .unwrap_or_default(),
        };
        PodObject {
            metadata: ObjectMeta {
                name: meta.name.clone().unwrap_or_default(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                uid: meta.uid.clone().unwrap_or_default(),
                labels: meta.labels.clone().unwrap_or_default(),
                annotations: meta.annotations.clone().unwrap_or_default(),
                deletion_timestamp: meta.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
            },
            spec: PodSpec {
                containers: spec
                    .map(|s| s.containers.iter().map(container).collect())
                    .unwrap_or_default(),
                init_containers: spec
                    .and_then(|s| s.init_containers.as_ref())
                    .map(|cs| cs.iter().map(container).collect())
                    .unwrap_or_default(),
                resource_claims: spec
                    .and_then(|s| s.resource_claims.as_ref())
                    .map(|claims| {
                        claims
                            .iter()
                            .map(|c| PodResourceClaim {
                                name: c.name.clone(),
                                resource_claim_name: c.resource_claim_name.clone(),
                                resource_claim_template_name: c
                                    .resource_claim_template_name
                                    .clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            status: PodStatus {
                resource_claim_statuses: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.resource_claim_statuses.as_ref())
                    .map(|statuses| {
                        statuses
                            .iter()
                            .map(|s| PodResourceClaimStatus {
                                name: s.name.clone(),
                                resource_claim_name: s.resource_claim_name.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
        }
    }
}

fn quantities(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, QuantityText> {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), QuantityText(v.0.clone())))
            .collect()
    })
    .unwrap_or_default()
}

impl From<&k8s_openapi::api::core::v1::Node> for NodeObject {
    fn from(node: &k8s_openapi::api::core::v1::Node) -> Self {
        let meta = &node.metadata;
        NodeObject {
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
            taints: node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .map(|taints| {
                    taints
                        .iter()
                        .map(|t| Taint {
                            key: t.key.clone(),
                            value: t.value.clone(),
                            effect: t.effect.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}
