//! An immutable, consistent view of the whole cluster at one moment.
//!
//! A snapshot is three copy-on-write maps (nodes, claims, pods) plus counts; cloning it costs a
//! few reference-count increments. A request takes one and reads it without any lock, while
//! the store goes on applying watch events to its own, newer version.

use std::sync::Arc;

use super::claim::ClaimView;
use super::cow_map::CowMap;
use super::key::ObjectKey;
use super::pod::PodView;
use super::view::NodeView;

/// Shard counts. The first write after a snapshot copies the shard table (one pointer per
/// shard) and the shard it touches (its entries), so the cost is lowest near √entries
/// shards: 64 for 5,000 nodes, 512 for 100,000 claims or pods.
pub(crate) const NODE_SHARDS: usize = 64;
pub(crate) const OBJECT_SHARDS: usize = 512;

/// How much the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Nodes (with a Node object).
    pub nodes: usize,
    /// Devices of our driver on those nodes.
    pub devices: usize,
    /// Allocated devices and shares on those nodes.
    pub allocations: usize,
    /// ResourceClaims.
    pub claims: usize,
    /// Pods kept (not finished, with claims or `nvidia.com/gpu`).
    pub pods: usize,
}

/// The cluster as of one version of the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) nodes: CowMap<Arc<str>, Arc<NodeView>>,
    pub(crate) claims: CowMap<ObjectKey, Arc<ClaimView>>,
    pub(crate) pods: CowMap<ObjectKey, Arc<PodView>>,
    pub(crate) stats: CacheStats,
    pub(crate) version: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            nodes: CowMap::with_shards(NODE_SHARDS),
            claims: CowMap::with_shards(OBJECT_SHARDS),
            pods: CowMap::with_shards(OBJECT_SHARDS),
            stats: CacheStats::default(),
            version: 0,
        }
    }
}

impl Snapshot {
    /// The view of node `name`.
    pub fn node(&self, name: &str) -> Option<&Arc<NodeView>> {
        self.nodes.get(name)
    }

    /// Every node view, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &Arc<NodeView>> {
        self.nodes.values()
    }

    /// The ResourceClaim `namespace/name`.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<&Arc<ClaimView>> {
        self.claims.get(key(namespace, name).as_str())
    }

    /// Every ResourceClaim, in no particular order.
    pub fn claims(&self) -> impl Iterator<Item = &Arc<ClaimView>> {
        self.claims.values()
    }

    /// The pod `namespace/name`, if it is one the cache keeps.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Arc<PodView>> {
        self.pods.get(key(namespace, name).as_str())
    }

    /// Every pod kept, in no particular order.
    pub fn pods(&self) -> impl Iterator<Item = &Arc<PodView>> {
        self.pods.values()
    }

    /// How much this snapshot holds.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The store version this snapshot was taken at; grows with every snapshot that differs.
    pub fn version(&self) -> u64 {
        self.version
    }
}

fn key(namespace: &str, name: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + name.len() + 1);
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    key
}
