//! Pod UID → namespace, name, claims and container names, from the API server.
//!
//! The kubelet's NodePrepareResources names claims, not pods, and the checkpoint records
//! claims only. The pods come from each prepared claim's `status.reservedFor` (the scheduler
//! reserves a claim for every pod that uses it before the kubelet prepares it), container
//! names from the pod's `status.containerStatuses[].containerID`. Both are cached: a claim is
//! read once while it stays prepared, a pod once it has container IDs, and each refresh makes
//! at most [`MAX_READS_PER_REFRESH`] API calls, so a node with many claims costs the API
//! server little.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use tracing::debug;

use super::attribute::{PodDirectory, PodNames};
use super::holdings::Holding;
use crate::prepare::ClaimSource;

/// API reads one refresh may make.
pub const MAX_READS_PER_REFRESH: usize = 32;
/// Pods one claim may name (a shared claim reserved for many pods).
const MAX_PODS_PER_CLAIM: usize = 256;

/// Reads one pod by namespace and name (the API server in production; absent in tests).
pub type PodReader =
    Arc<dyn Fn(String, String) -> futures::future::BoxFuture<'static, Option<Pod>> + Send + Sync>;

/// Cached claim → pods and pod → names.
pub struct PodNamer {
    claims: Arc<dyn ClaimSource>,
    pods_reader: Option<PodReader>,
    /// Claim UID → (pod UID, pod name) from `reservedFor`.
    claim_pods: HashMap<String, Vec<(String, String)>>,
    directory: PodDirectory,
}

impl PodNamer {
    /// A namer reading claims from `claims` and pods through `pods_reader` (when `None`,
    /// containers are labelled by their short ID).
    pub fn new(claims: Arc<dyn ClaimSource>, pods_reader: Option<PodReader>) -> Self {
        PodNamer {
            claims,
            pods_reader,
            claim_pods: HashMap::new(),
            directory: PodDirectory::new(),
        }
    }

    /// A reader of pods from the API server.
    pub fn kube_reader(client: kube::Client) -> PodReader {
        Arc::new(move |namespace: String, name: String| {
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &namespace);
            Box::pin(async move {
                let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    api.get_opt(&name).await
                });
                match read.await {
                    Ok(Ok(pod)) => pod,
                    Ok(Err(error)) => {
                        debug!(%namespace, pod = %name, %error, "cannot read pod for usage labels");
                        None
                    }
                    Err(_) => None,
                }
            })
        })
    }

    /// Bring the cache in line with `holdings` and return the directory.
    pub async fn refresh(&mut self, holdings: &[Holding]) -> &PodDirectory {
        let held: HashMap<&str, &Holding> =
            holdings.iter().map(|h| (h.claim_uid.as_str(), h)).collect();
        self.claim_pods
            .retain(|uid, _| held.contains_key(uid.as_str()));
        let mut reads = 0;
        for (uid, holding) in &held {
            if self.claim_pods.contains_key(*uid) || reads >= MAX_READS_PER_REFRESH {
                continue;
            }
            reads += 1;
            match self.claims.get(&holding.namespace, &holding.claim).await {
                Ok(claim) => {
                    let pods = claim
                        .status
                        .and_then(|s| s.reserved_for)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| {
                            r.resource == "pods" && r.api_group.as_deref().unwrap_or("").is_empty()
                        })
                        .take(MAX_PODS_PER_CLAIM)
                        .map(|r| (r.uid, r.name))
                        .collect::<Vec<_>>();
                    // A claim not yet reserved is asked again next time.
                    if !pods.is_empty() {
                        self.claim_pods.insert((*uid).to_owned(), pods);
                    }
                }
                Err(error) => {
                    debug!(claim = %holding.claim, %error, "cannot read claim for usage labels")
                }
            }
        }

        // Rebuild pod → claims from the cache; keep container names already known.
        let mut fresh = PodDirectory::new();
        for (claim_uid, pods) in &self.claim_pods {
            let Some(holding) = held.get(claim_uid.as_str()) else {
                continue;
            };
            for (pod_uid, pod_name) in pods {
                let entry = fresh.entry(pod_uid.clone()).or_insert_with(|| PodNames {
                    namespace: holding.namespace.clone(),
                    name: pod_name.clone(),
                    claim_uids: Vec::new(),
                    containers: self
                        .directory
                        .get(pod_uid)
                        .map(|p| p.containers.clone())
                        .unwrap_or_default(),
                });
                entry.claim_uids.push(claim_uid.clone());
            }
        }
        if let Some(reader) = &self.pods_reader {
            let unnamed: Vec<(String, String, String)> = fresh
                .iter()
                .filter(|(_, p)| p.containers.is_empty())
                .map(|(uid, p)| (uid.clone(), p.namespace.clone(), p.name.clone()))
                .collect();
            for (uid, namespace, name) in unnamed {
                if reads >= MAX_READS_PER_REFRESH {
                    break;
                }
                reads += 1;
                let Some(pod) = reader(namespace, name).await else {
                    continue;
                };
                // A pod re-created under the same name is another pod.
                if pod.metadata.uid.as_deref() != Some(uid.as_str()) {
                    continue;
                }
                if let Some(entry) = fresh.get_mut(&uid) {
                    entry.containers = container_names(&pod);
                }
            }
        }
        self.directory = fresh;
        &self.directory
    }
}

/// Container ID (without `containerd://`, `cri-o://`, `docker://`) → name, for every
/// container, init container and ephemeral container that has started.
pub fn container_names(pod: &Pod) -> HashMap<String, String> {
    let Some(status) = &pod.status else {
        return HashMap::new();
    };
    let mut seen = HashSet::new();
    [
        &status.container_statuses,
        &status.init_container_statuses,
        &status.ephemeral_container_statuses,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter_map(|c| {
        let id = c.container_id.as_deref()?;
        let id = id.split_once("://").map_or(id, |(_, id)| id);
        seen.insert(id.to_owned())
            .then(|| (id.to_owned(), c.name.clone()))
    })
    .collect()
}
