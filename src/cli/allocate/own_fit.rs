//! What tessera's own fit would take on a node, printed beside the allocator's answer so an
//! admin sees where the two differ: the extender's choice without the allocator model
//! (`extender::evaluate` with no predictor: the tightest adequate GPU, the least placement
//! loss, the best fit for shares), on the same slices and earlier allocations fed through the
//! extender's own cache translator (`cluster::Store`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Container, Node, Pod, PodResourceClaim, PodSpec, ResourceClaim as ContainerClaim,
    ResourceRequirements,
};
use k8s_openapi::api::resource::v1 as api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cluster::{CacheConfig, ClusterObject, Store};
use crate::extender::cluster_view::CacheView;
use crate::extender::demand::DeviceClasses;
use crate::extender::evaluate::{Scoring, default_typical_pods};
use crate::extender::pod::pod_demand;
use crate::extender::view::{ClusterView, Detail};
use crate::scoring::{Tolerance, Weights};

/// Namespace of the stand-in pod (and of claims that name none).
const NAMESPACE: &str = "default";
/// Name of the stand-in pod that holds the new claims.
const POD: &str = "tessera-allocate";

/// The objects as read, for the extender's translator.
#[derive(Default)]
pub struct RawObjects {
    /// Every ResourceSlice of the `--slices` files.
    pub slices: Vec<api::ResourceSlice>,
    /// The new claims (a template becomes a claim of its name).
    pub claims: Vec<api::ResourceClaim>,
    /// Claims allocated earlier.
    pub allocated: Vec<api::ResourceClaim>,
}

/// Per node: tessera's choice as `request -> device` lines, or why it has none.
pub fn choices<'a>(
    raw: &RawObjects,
    driver: &str,
    nodes: impl Iterator<Item = &'a String>,
) -> anyhow::Result<BTreeMap<String, Result<Vec<String>, String>>> {
    let config = CacheConfig::builtin(driver)?;
    let mut store = Store::new(config);
    let nodes: Vec<&String> = nodes.collect();
    for name in &nodes {
        store.applied(&ClusterObject::from(Node {
            metadata: meta(None, name),
            ..Node::default()
        }));
    }
    for slice in &raw.slices {
        store.applied(&ClusterObject::from(slice.clone()));
    }
    for claim in &raw.allocated {
        store.applied(&ClusterObject::from(claim.clone()));
    }
    let mut refs = Vec::new();
    for (i, claim) in raw.claims.iter().enumerate() {
        let mut claim = claim.clone();
        let name = claim
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| format!("claim-{i}"));
        claim.metadata = meta(Some(NAMESPACE), &name);
        claim.status = None;
        refs.push((format!("c{i}"), name));
        store.applied(&ClusterObject::from(claim));
    }
    store.applied(&ClusterObject::from(stand_in_pod(&refs)));

    let view = CacheView::new(store.snapshot(), Arc::new(DeviceClasses::new(driver)));
    let scoring = Scoring::new(Weights::default(), default_typical_pods()?);
    let pod = view
        .pod(NAMESPACE, POD)
        .ok_or_else(|| anyhow::anyhow!("the stand-in pod did not reach the extender's view"))?;
    let demand = pod_demand(&pod, |id| view.claim(id));
    let mut out = BTreeMap::new();
    for name in nodes {
        let choice = match view.node(name) {
            None => Err("the extender's cache has no view of this node".to_owned()),
            Some(node) => match view.node_market(node) {
                Err(e) => Err(e.to_string()),
                Ok(market) => match scoring.evaluate_node(
                    node,
                    market,
                    &view.node_condition(node),
                    &demand,
                    Tolerance::Checkpointed,
                    Detail::Explain,
                ) {
                    None => Err("nothing on the node fits the claims".to_owned()),
                    Some(e) => match e.refused {
                        Some(why) => Err(why.to_owned()),
                        None => Ok(e
                            .partitions
                            .iter()
                            .map(|p| format!("{} -> {}", p.request, p.partition))
                            .collect()),
                    },
                },
            },
        };
        out.insert(name.clone(), choice);
    }
    Ok(out)
}

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        uid: Some(format!("tessera-allocate-{name}")),
        ..ObjectMeta::default()
    }
}

/// A pending pod that holds `claims` (entry name, claim name), as the scheduler would see it.
fn stand_in_pod(claims: &[(String, String)]) -> Pod {
    Pod {
        metadata: meta(Some(NAMESPACE), POD),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".to_owned(),
                resources: Some(ResourceRequirements {
                    claims: Some(
                        claims
                            .iter()
                            .map(|(entry, _)| ContainerClaim {
                                name: entry.clone(),
                                request: None,
                            })
                            .collect(),
                    ),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            }],
            resource_claims: Some(
                claims
                    .iter()
                    .map(|(entry, claim)| PodResourceClaim {
                        name: entry.clone(),
                        resource_claim_name: Some(claim.clone()),
                        resource_claim_template_name: None,
                    })
                    .collect(),
            ),
            ..PodSpec::default()
        }),
        status: None,
    }
}
