//! The publisher: keeps this node's ResourceSlices on the API server equal to what
//! [`render`] makes of the current inventory.
//!
//! One [`Publisher::publish_once`]:
//! 1. resolves the feature level (`auto`: from `/version`, see [`level`](super::level));
//! 2. lists the slices of this node and driver (field selector `spec.nodeName`,
//!    `spec.driver`);
//! 3. renders the desired slices; if their content hash, names and generation match what
//!    is there, the pool generation stays, otherwise it becomes the highest existing
//!    generation + 1 (consumers only use the highest generation of a pool, so every change
//!    moves all slices together);
//! 4. validates them, then server-side applies each (field manager `tessera-plugin`,
//!    forced), counters first, owned by the Node object when it can be read so they are
//!    garbage-collected with the node;
//! 5. checks the returned objects still carry the gated fields: a server with a gate off
//!    drops them silently, which would publish overlapping devices without counters;
//! 6. deletes slices of this node and driver that are no longer desired.
//!
//! [`Publisher::run`] repeats that when the inventory changes, when a watch on this node's
//! slices sees one deleted or changed behind its back (the kubelet wipes a node's slices when
//! the plugin is gone for 30 s or restarts), every `resync_interval` as a safety net, and
//! after failures with capped, jittered exponential backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::resource::v1::ResourceSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::slices::{CONTENT_HASH_ANNOTATION, SliceOptions};
use super::{
    FeatureChoice, FeatureLevel, LevelError, PublishMetrics, RenderError, ValidationError,
    device_counts, level_for_version, render, validate,
};
use crate::model::Inventory;

mod run;

/// Field manager of every apply.
pub const FIELD_MANAGER: &str = "tessera-plugin";
/// Readiness condition set after the first successful publish.
pub const READINESS_CONDITION: &str = "slices_published";

/// How a [`Publisher`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// This node's name (`spec.nodeName`, pool name).
    pub node_name: String,
    /// The DRA driver name.
    pub driver_name: String,
    /// Feature level, or `auto`.
    pub features: FeatureChoice,
    /// Legacy share replicas per MIG-off GPU.
    pub share_replicas: u32,
    /// Full republish even when nothing was noticed.
    pub resync_interval: Duration,
    /// First retry delay after a failure.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
}

impl PublisherConfig {
    /// Defaults: `auto` features, no replicas, resync every 5 minutes, retries from 1 s up
    /// to 60 s.
    pub fn new(node_name: impl Into<String>, driver_name: impl Into<String>) -> Self {
        PublisherConfig {
            node_name: node_name.into(),
            driver_name: driver_name.into(),
            features: FeatureChoice::Auto,
            share_replicas: 0,
            resync_interval: Duration::from_secs(300),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// What one publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// The feature level used.
    pub level: FeatureLevel,
    /// The pool generation now published.
    pub generation: i64,
    /// Content hash of the published pool (empty when no GPUs).
    pub content_hash: String,
    /// Names of the published slices, in apply order.
    pub slices: Vec<String>,
    /// Names of stale slices deleted.
    pub deleted: Vec<String>,
    /// Whether the content differed from what was there (and the generation moved).
    pub changed: bool,
    /// Devices by type (`gpu`, `mig`, `shared`, `share`).
    pub devices: BTreeMap<&'static str, u64>,
}

/// Why a publish failed. Every variant says which object and which step.
#[derive(Debug, Error)]
pub enum PublishError {
    /// `/version` could not be read (needed for `--features auto`).
    #[error("cannot read the API server version to choose --features auto: {0}")]
    Version(#[source] kube::Error),
    /// The version is unsupported or unreadable.
    #[error(transparent)]
    Level(#[from] LevelError),
    /// The options cannot be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The rendered slices break an API limit (a tessera bug or an unsupported inventory).
    #[error("refusing to publish: {0}")]
    Invalid(#[from] ValidationError),
    /// Listing this node's slices failed.
    #[error("cannot list the ResourceSlices of node {node}: {source}")]
    List {
        /// The node.
        node: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Applying a slice failed.
    #[error("cannot apply ResourceSlice {slice}: {source}")]
    Apply {
        /// The slice.
        slice: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Deleting a stale slice failed.
    #[error("cannot delete stale ResourceSlice {slice}: {source}")]
    Delete {
        /// The slice.
        slice: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The server accepted a slice but dropped a feature-gated field.
    #[error(
        "the API server dropped {field} from ResourceSlice {slice}: feature gate {gate} is off{}",
        stepped_down_to.map(|l| format!("; stepping down to --features {l}")).unwrap_or_else(|| "; use a lower --features level or enable the gate".to_owned())
    )]
    FieldsDropped {
        /// The slice.
        slice: String,
        /// The dropped field.
        field: &'static str,
        /// The gate that guards it.
        gate: &'static str,
        /// With `auto`, the level the next attempt uses.
        stepped_down_to: Option<FeatureLevel>,
    },
}

impl PublishError {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PublishError::Version(_) => "version",
            PublishError::Level(_) => "level",
            PublishError::Render(_) => "render",
            PublishError::Invalid(_) => "invalid",
            PublishError::List { .. } => "list",
            PublishError::Apply { .. } => "apply",
            PublishError::Delete { .. } => "delete",
            PublishError::FieldsDropped { .. } => "fields_dropped",
        }
    }

    /// Whether the next attempt should follow at once: the level was stepped down.
    fn retry_now(&self) -> bool {
        matches!(
            self,
            PublishError::FieldsDropped {
                stepped_down_to: Some(_),
                ..
            }
        )
    }
}

/// Publishes one node's ResourceSlices.
pub struct Publisher {
    config: PublisherConfig,
    slices: Api<ResourceSlice>,
    nodes: Api<Node>,
    client: kube::Client,
    /// The level in use once resolved (fixed, or auto's answer, possibly stepped down).
    level: Mutex<Option<FeatureLevel>>,
    /// The Node owner reference once the Node was read.
    owner: Mutex<Option<OwnerReference>>,
    metrics: Option<PublishMetrics>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher for `config.node_name`'s slices through `client`.
    pub fn new(client: kube::Client, config: PublisherConfig) -> Self {
        let level = match config.features {
            FeatureChoice::Fixed(level) => Some(level),
            FeatureChoice::Auto => None,
        };
        Publisher {
            slices: Api::all(client.clone()),
            nodes: Api::all(client.clone()),
            client,
            config,
            level: Mutex::new(level),
            owner: Mutex::new(None),
            metrics: None,
        }
    }

    /// Records publishes in `metrics`.
    pub fn with_metrics(mut self, metrics: PublishMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &PublisherConfig {
        &self.config
    }

    /// The field selector of this node's and driver's slices.
    pub fn field_selector(&self) -> String {
        format!(
            "spec.nodeName={},spec.driver={}",
            self.config.node_name, self.config.driver_name
        )
    }

    /// The feature level in use, reading `/version` the first time with `auto`.
    pub async fn level(&self) -> Result<FeatureLevel, PublishError> {
        if let Some(level) = *lock(&self.level) {
            return Ok(level);
        }
        let version = self
            .client
            .apiserver_version()
            .await
            .map_err(PublishError::Version)?;
        let level = level_for_version(&version.major, &version.minor)?;
        info!(
            server = %version.git_version,
            level = %level,
            "feature level chosen from the API server version"
        );
        *lock(&self.level) = Some(level);
        Ok(level)
    }

    /// Makes the API server's slices of this node equal to the rendering of `inventory`.
    pub async fn publish_once(&self, inventory: &Inventory) -> Result<PublishReport, PublishError> {
        let result = self.publish(inventory).await;
        if let Some(metrics) = &self.metrics {
            match &result {
                Ok(report) => metrics.record_success(report),
                Err(error) => metrics.record_failure(error),
            }
        }
        result
    }

    async fn publish(&self, inventory: &Inventory) -> Result<PublishReport, PublishError> {
        let level = self.level().await?;
        let options = SliceOptions {
            node_name: self.config.node_name.clone(),
            driver_name: self.config.driver_name.clone(),
            level,
            share_replicas: self.config.share_replicas,
            generation: 0,
        };
        let mut desired = render(inventory, &options)?;
        let existing = self
            .slices
            .list(&ListParams::default().fields(&self.field_selector()))
            .await
            .map_err(|source| PublishError::List {
                node: self.config.node_name.clone(),
                source,
            })?
            .items;
        let content_hash = desired
            .first()
            .and_then(|s| hash_of(s))
            .unwrap_or_default()
            .to_owned();
        let (generation, changed) = next_generation(&existing, &desired, &content_hash);
        for slice in &mut desired {
            slice.spec.pool.generation = generation;
        }
        validate(&desired)?;
        let owner = self.owner().await;
        let mut applied = Vec::with_capacity(desired.len());
        for mut slice in desired {
            let name = slice.metadata.name.clone().unwrap_or_default();
            slice.metadata.owner_references = owner.clone().map(|o| vec![o]);
            let returned = self
                .slices
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&slice),
                )
                .await
                .map_err(|source| PublishError::Apply {
                    slice: name.clone(),
                    source,
                })?;
            self.check_not_dropped(&name, &slice, &returned)?;
            debug!(slice = %name, generation, "applied");
            applied.push(slice);
        }
        let keep: BTreeSet<&str> = applied
            .iter()
            .filter_map(|s| s.metadata.name.as_deref())
            .collect();
        let mut deleted = Vec::new();
        for stale in existing
            .iter()
            .filter_map(|s| s.metadata.name.as_deref())
            .filter(|n| !keep.contains(n))
        {
            match self.slices.delete(stale, &DeleteParams::default()).await {
                Ok(_) => deleted.push(stale.to_owned()),
                // Already gone: someone (the kubelet, GC) was faster.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(PublishError::Delete {
                        slice: stale.to_owned(),
                        source,
                    });
                }
            }
        }
        let report = PublishReport {
            level,
            generation,
            content_hash,
            devices: device_counts(&applied),
            slices: keep.iter().map(|s| (*s).to_owned()).collect(),
            deleted,
            changed,
        };
        if changed || !report.deleted.is_empty() {
            info!(
                node = %self.config.node_name,
                generation,
                level = %level,
                slices = report.slices.len(),
                deleted = report.deleted.len(),
                devices = ?report.devices,
                "published ResourceSlices"
            );
        }
        Ok(report)
    }

    /// Deletes every slice of this node and driver (e2e clean-up, uninstall). Returns the
    /// names deleted.
    pub async fn delete_all(&self) -> Result<Vec<String>, PublishError> {
        let existing = self
            .slices
            .list(&ListParams::default().fields(&self.field_selector()))
            .await
            .map_err(|source| PublishError::List {
                node: self.config.node_name.clone(),
                source,
            })?;
        let mut deleted = Vec::new();
        for name in existing
            .items
            .iter()
            .filter_map(|s| s.metadata.name.clone())
        {
            match self.slices.delete(&name, &DeleteParams::default()).await {
                Ok(_) => deleted.push(name),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(PublishError::Delete {
                        slice: name,
                        source,
                    });
                }
            }
        }
        Ok(deleted)
    }

    /// The Node as owner, read once; without it (no permission, no Node) slices are still
    /// published, just not garbage-collected with the node.
    async fn owner(&self) -> Option<OwnerReference> {
        if let Some(owner) = lock(&self.owner).clone() {
            return Some(owner);
        }
        match self.nodes.get_opt(&self.config.node_name).await {
            Ok(Some(node)) => {
                let uid = node.metadata.uid?;
                let owner = OwnerReference {
                    api_version: "v1".to_owned(),
                    kind: "Node".to_owned(),
                    name: self.config.node_name.clone(),
                    uid,
                    ..OwnerReference::default()
                };
                *lock(&self.owner) = Some(owner.clone());
                Some(owner)
            }
            Ok(None) => {
                warn!(node = %self.config.node_name, "Node object not found; slices will not be garbage-collected with it");
                None
            }
            Err(error) => {
                warn!(node = %self.config.node_name, %error, "cannot read the Node object; slices will not be garbage-collected with it");
                None
            }
        }
    }

    /// Fails if the server dropped a feature-gated field we sent; with `auto`, steps the
    /// level down first so the next attempt publishes what the server keeps.
    fn check_not_dropped(
        &self,
        name: &str,
        sent: &ResourceSlice,
        returned: &ResourceSlice,
    ) -> Result<(), PublishError> {
        let Some((field, gate, lower)) = dropped_field(sent, returned) else {
            return Ok(());
        };
        let stepped_down_to = match self.config.features {
            FeatureChoice::Auto => {
                *lock(&self.level) = Some(lower);
                Some(lower)
            }
            FeatureChoice::Fixed(_) => None,
        };
        let error = PublishError::FieldsDropped {
            slice: name.to_owned(),
            field,
            gate,
            stepped_down_to,
        };
        warn!(%error, "feature gate off on the API server");
        Err(error)
    }
}

/// The first gated field `sent` had and `returned` lacks, its gate, and the highest level
/// that does not use it.
fn dropped_field(
    sent: &ResourceSlice,
    returned: &ResourceSlice,
) -> Option<(&'static str, &'static str, FeatureLevel)> {
    const PARTITIONABLE: &str = "DRAPartitionableDevices";
    const CONSUMABLE: &str = "DRAConsumableCapacity";
    let has_sets = |s: &ResourceSlice| {
        s.spec
            .shared_counters
            .as_ref()
            .is_some_and(|c| !c.is_empty())
    };
    if has_sets(sent) && !has_sets(returned) {
        return Some(("sharedCounters", PARTITIONABLE, FeatureLevel::Ga));
    }
    let devices = |s: &ResourceSlice| -> BTreeMap<String, (bool, bool)> {
        s.spec
            .devices
            .iter()
            .flatten()
            .map(|d| {
                let counters = d.consumes_counters.as_ref().is_some_and(|c| !c.is_empty());
                let multi = d.allow_multiple_allocations == Some(true);
                (d.name.clone(), (counters, multi))
            })
            .collect()
    };
    let back = devices(returned);
    for (name, (counters, multi)) in devices(sent) {
        let (back_counters, back_multi) = back.get(&name).copied().unwrap_or((false, false));
        if counters && !back_counters {
            return Some(("consumesCounters", PARTITIONABLE, FeatureLevel::Ga));
        }
        if multi && !back_multi {
            return Some((
                "allowMultipleAllocations",
                CONSUMABLE,
                FeatureLevel::Partitionable,
            ));
        }
    }
    None
}

/// The generation to publish, and whether the content changed: unchanged when the slices
/// there are exactly the desired names, all at one generation, all carrying the desired
/// content hash.
fn next_generation(
    existing: &[ResourceSlice],
    desired: &[ResourceSlice],
    content_hash: &str,
) -> (i64, bool) {
    if existing.is_empty() && desired.is_empty() {
        return (0, false);
    }
    let highest = existing
        .iter()
        .map(|s| s.spec.pool.generation)
        .max()
        .unwrap_or(0);
    let names = |slices: &[ResourceSlice]| -> BTreeSet<String> {
        slices
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect()
    };
    let same = !existing.is_empty()
        && names(existing) == names(desired)
        && existing
            .iter()
            .all(|s| s.spec.pool.generation == highest && hash_of(s) == Some(content_hash));
    if same {
        (highest, false)
    } else {
        (highest.saturating_add(1), true)
    }
}

fn hash_of(slice: &ResourceSlice) -> Option<&str> {
    slice
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONTENT_HASH_ANNOTATION))
        .map(String::as_str)
}

/// A poisoned lock only means a panic elsewhere mid-assignment of a plain value; the value
/// is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
