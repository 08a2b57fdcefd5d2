//! The incremental store: watch events in, per-node views out.
//!
//! Each event updates the store's compact copy of one object and marks the nodes whose view
//! it can change; [`Store::snapshot`] rebuilds only those views and publishes them with the
//! claim and pod maps as one consistent [`Snapshot`]. Objects may arrive in any order: a claim
//! whose pool has no slice yet, a slice whose Node is unknown, a pod on a node not yet seen
//! are all kept in the indexes and show up in the view once the rest arrives.
//!
//! Indexes (what makes an event touch only the nodes it concerns):
//! - node name → its Node facts, its slice names and every kept pod bound to it (for the
//!   classic GPU requests and the CPU and memory the node's view subtracts);
//! - pool name → its slice names and the claims with results in it (claim → nodes goes
//!   through the pools of its results);
//! - slice name → slice; claim key → claim; pod key → pod (the pod's node is in the pod).
//!
//! Pure: no I/O, no clock, no async.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::Metadata;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::claim::{ClaimView, read_claim};
use super::config::CacheConfig;
use super::cow_map::CowMap;
use super::intern::Interners;
use super::key::ObjectKey;
use super::node::{NodeFacts, read_node};
use super::pod::{PodView, read_pod};
use super::slice::{Slice, read_slice};
use super::snapshot::{CacheStats, NODE_SHARDS, OBJECT_SHARDS, Snapshot};
use super::view::{NodeView, assemble};

/// The four kinds of object the cache watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `v1` Node.
    Node,
    /// `resource.k8s.io/v1` ResourceSlice.
    ResourceSlice,
    /// `resource.k8s.io/v1` ResourceClaim.
    ResourceClaim,
    /// `v1` Pod.
    Pod,
}

impl Kind {
    /// All kinds, in watch start order.
    pub const ALL: [Kind; 4] = [
        Kind::Node,
        Kind::ResourceSlice,
        Kind::ResourceClaim,
        Kind::Pod,
    ];

    /// Lower-case plural, as in the API path and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::ResourceSlice => "resourceslices",
            Kind::ResourceClaim => "resourceclaims",
            Kind::Pod => "pods",
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Node => 0,
            Kind::ResourceSlice => 1,
            Kind::ResourceClaim => 2,
            Kind::Pod => 3,
        }
    }
}

/// An API object of one of the watched kinds (boxed: they are large and moved through
/// channels).
#[derive(Debug, Clone)]
pub enum ClusterObject {
    /// A Node.
    Node(Box<Node>),
    /// A ResourceSlice.
    ResourceSlice(Box<ResourceSlice>),
    /// A ResourceClaim.
    ResourceClaim(Box<ResourceClaim>),
    /// A Pod.
    Pod(Box<Pod>),
}

impl ClusterObject {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            ClusterObject::Node(_) => Kind::Node,
            ClusterObject::ResourceSlice(_) => Kind::ResourceSlice,
            ClusterObject::ResourceClaim(_) => Kind::ResourceClaim,
            ClusterObject::Pod(_) => Kind::Pod,
        }
    }

    /// `namespace/name` (just the name for cluster-scoped kinds).
    pub fn key(&self) -> ObjectKey {
        Self::key_of(self.metadata())
    }

    fn key_of(meta: &ObjectMeta) -> ObjectKey {
        ObjectKey::new(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    fn metadata(&self) -> &ObjectMeta {
        match self {
            ClusterObject::Node(o) => o.metadata(),
            ClusterObject::ResourceSlice(o) => o.metadata(),
            ClusterObject::ResourceClaim(o) => o.metadata(),
            ClusterObject::Pod(o) => o.metadata(),
        }
    }
}

impl From<Node> for ClusterObject {
    fn from(o: Node) -> Self {
        ClusterObject::Node(Box::new(o))
    }
}

impl From<ResourceSlice> for ClusterObject {
    fn from(o: ResourceSlice) -> Self {
        ClusterObject::ResourceSlice(Box::new(o))
    }
}

impl From<ResourceClaim> for ClusterObject {
    fn from(o: ResourceClaim) -> Self {
        ClusterObject::ResourceClaim(Box::new(o))
    }
}

impl From<Pod> for ClusterObject {
    fn from(o: Pod) -> Self {
        ClusterObject::Pod(Box::new(o))
    }
}

/// One change to apply, as a watch reports it.
#[derive(Debug, Clone)]
pub enum ClusterEvent {
    /// The object was created or changed (or listed).
    Applied(ClusterObject),
    /// The object was deleted; unknown objects are ignored.
    Deleted(ClusterObject),
    /// A full relist of `Kind` begins: every object it lists follows as `Applied`.
    ResyncStarted(Kind),
    /// The relist of `Kind` is complete: objects of that kind it did not list are gone.
    ResyncDone(Kind),
}

#[derive(Debug, Default)]
struct NodeEntry {
    node: Option<NodeFacts>,
    slices: BTreeSet<Arc<str>>,
    /// Every kept pod whose `spec.nodeName` is this node.
    pods: BTreeSet<ObjectKey>,
}

impl NodeEntry {
    fn is_empty(&self) -> bool {
        self.node.is_none() && self.slices.is_empty() && self.pods.is_empty()
    }
}

#[derive(Debug, Default)]
struct PoolEntry {
    slices: BTreeSet<Arc<str>>,
    claims: BTreeSet<ObjectKey>,
}

/// The cache's state, updated event by event.
#[derive(Debug)]
pub struct Store {
    config: CacheConfig,
    interners: Interners,
    nodes: HashMap<Arc<str>, NodeEntry>,
    slices: HashMap<Arc<str>, Arc<Slice>>,
    pools: HashMap<Arc<str>, PoolEntry>,
    claims: CowMap<ObjectKey, Arc<ClaimView>>,
    pods: CowMap<ObjectKey, Arc<PodView>>,
    views: CowMap<Arc<str>, Arc<NodeView>>,
    /// Nodes whose view must be rebuilt before the next snapshot.
    dirty: HashSet<Arc<str>>,
    /// Per kind, the keys listed since a relist began.
    resync: [Option<HashSet<ObjectKey>>; 4],
    devices: usize,
    allocations: usize,
    version: u64,
    changed: bool,
}

impl Store {
    /// An empty store.
    pub fn new(config: CacheConfig) -> Self {
        Store {
            config,
            interners: Interners::default(),
            nodes: HashMap::new(),
            slices: HashMap::new(),
            pools: HashMap::new(),
            claims: CowMap::with_shards(OBJECT_SHARDS),
            pods: CowMap::with_shards(OBJECT_SHARDS),
            views: CowMap::with_shards(NODE_SHARDS),
            dirty: HashSet::new(),
            resync: [None, None, None, None],
            devices: 0,
            allocations: 0,
            version: 0,
            changed: false,
        }
    }

    /// The configuration the store was made with.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Applies one event. Views are rebuilt lazily, at the next [`Store::snapshot`].
    pub fn apply(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Applied(object) => self.applied(&object),
            ClusterEvent::Deleted(object) => self.deleted(&object),
            ClusterEvent::ResyncStarted(kind) => self.resync[kind.index()] = Some(HashSet::new()),
            ClusterEvent::ResyncDone(kind) => self.resync_done(kind),
        }
    }

    /// Applies a created or changed object.
    pub fn applied(&mut self, object: &ClusterObject) {
        if let Some(seen) = &mut self.resync[object.kind().index()] {
            seen.insert(object.key());
        }
        match object {
            ClusterObject::Node(node) => self.apply_node(node),
            ClusterObject::ResourceSlice(slice) => self.apply_slice(slice),
            ClusterObject::ResourceClaim(claim) => self.apply_claim(claim),
            ClusterObject::Pod(pod) => self.apply_pod(pod),
        }
    }

    /// Applies a deletion; deleting an unknown object does nothing.
    pub fn deleted(&mut self, object: &ClusterObject) {
        let key = object.key();
        if let Some(seen) = &mut self.resync[object.kind().index()] {
            seen.remove(&key);
        }
        self.remove(object.kind(), &key);
    }

    /// Rebuilds the views events have touched and returns the cluster as it now is.
    pub fn snapshot(&mut self) -> Snapshot {
        let dirty: Vec<Arc<str>> = self.dirty.drain().collect();
        for name in dirty {
            self.rebuild(&name);
        }
        if self.changed {
            self.version += 1;
            self.changed = false;
        }
        Snapshot {
            nodes: self.views.clone(),
            claims: self.claims.clone(),
            pods: self.pods.clone(),
            stats: CacheStats {
                nodes: self.views.len(),
                devices: self.devices,
                allocations: self.allocations,
                claims: self.claims.len(),
                pods: self.pods.len(),
            },
            version: self.version,
        }
    }

    // === nodes ===

    fn apply_node(&mut self, node: &Node) {
        let Some(facts) = read_node(node, &mut self.interners) else {
            return;
        };
        let name = Arc::clone(&facts.name);
        let entry = self.nodes.entry(Arc::clone(&name)).or_default();
        if entry.node.as_ref() == Some(&facts) {
            return;
        }
        entry.node = Some(facts);
        self.touch(name);
    }

    fn remove_node(&mut self, name: &str) {
        let Some(entry) = self.nodes.get_mut(name) else {
            return;
        };
        if entry.node.take().is_none() {
            return;
        }
        let name = self.gc_node(name);
        self.touch(name);
    }

    // === slices ===

    fn apply_slice(&mut self, slice: &ResourceSlice) {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        let Some(facts) = read_slice(slice, &self.config.driver, &mut self.interners) else {
            // Not (or no longer) a node-local slice of ours.
            self.remove_slice(name);
            return;
        };
        if self
            .slices
            .get(&facts.name)
            .is_some_and(|old| **old == facts)
        {
            return;
        }
        self.remove_slice(name);
        let facts = Arc::new(facts);
        let name = Arc::clone(&facts.name);
        self.nodes
            .entry(Arc::clone(&facts.node))
            .or_default()
            .slices
            .insert(Arc::clone(&name));
        self.pools
            .entry(Arc::clone(&facts.pool))
            .or_default()
            .slices
            .insert(Arc::clone(&name));
        let node = Arc::clone(&facts.node);
        self.slices.insert(name, facts);
        self.touch(node);
    }

    fn remove_slice(&mut self, name: &str) {
        let Some(old) = self.slices.remove(name) else {
            return;
        };
        if let Some(entry) = self.nodes.get_mut(&old.node) {
            entry.slices.remove(name);
        }
        if let Some(pool) = self.pools.get_mut(&old.pool) {
            pool.slices.remove(name);
        }
        self.gc_pool(&old.pool);
        let node = self.gc_node(&old.node);
        self.touch(node);
    }

    // === claims ===

    fn apply_claim(&mut self, claim: &ResourceClaim) {
        let Some(view) = read_claim(claim, &self.config.driver, &mut self.interners) else {
            return;
        };
        if self.claims.get(&view.key).is_some_and(|old| **old == view) {
            return;
        }
        let key = view.key.clone();
        let old = self.claims.insert(key.clone(), Arc::new(view));
        self.changed = true;
        if let Some(old) = &old {
            self.unindex_claim(old);
        }
        if let Some(new) = self.claims.get(&key).cloned() {
            self.index_claim(&new);
        }
    }

    fn remove_claim(&mut self, key: &ObjectKey) {
        let Some(old) = self.claims.remove(key) else {
            return;
        };
        self.changed = true;
        self.unindex_claim(&old);
    }

    /// Pools of our driver the claim has results in.
    fn claim_pools(&self, claim: &ClaimView) -> BTreeSet<Arc<str>> {
        claim
            .devices()
            .iter()
            .filter(|d| *d.driver == *self.config.driver)
            .map(|d| Arc::clone(&d.pool))
            .collect()
    }

    fn index_claim(&mut self, claim: &ClaimView) {
        for pool in self.claim_pools(claim) {
            self.pools
                .entry(Arc::clone(&pool))
                .or_default()
                .claims
                .insert(claim.key.clone());
            self.touch_pool(&pool);
        }
    }

    fn unindex_claim(&mut self, claim: &ClaimView) {
        for pool in self.claim_pools(claim) {
            if let Some(entry) = self.pools.get_mut(&pool) {
                entry.claims.remove(&claim.key);
            }
            self.touch_pool(&pool);
            self.gc_pool(&pool);
        }
    }

    // === pods ===

    fn apply_pod(&mut self, pod: &Pod) {
        let Some(view) = read_pod(pod, &mut self.interners) else {
            // Finished, or no longer using GPUs.
            let key = ClusterObject::key_of(pod.metadata());
            self.remove_pod(&key);
            return;
        };
        if self.pods.get(&view.key).is_some_and(|old| **old == view) {
            return;
        }
        let key = view.key.clone();
        let old = self.pods.insert(key.clone(), Arc::new(view));
        self.changed = true;
        if let Some(old) = &old {
            self.unindex_pod(old);
        }
        if let Some(new) = self.pods.get(&key).cloned() {
            self.index_pod(&new);
        }
    }

    fn remove_pod(&mut self, key: &ObjectKey) {
        let Some(old) = self.pods.remove(key) else {
            return;
        };
        self.changed = true;
        self.unindex_pod(&old);
    }

    /// Every bound pod is indexed, not only those with classic GPU requests: its CPU and
    /// memory requests count against the node's.
    fn index_pod(&mut self, pod: &PodView) {
        if let Some(node) = &pod.node {
            self.nodes
                .entry(Arc::clone(node))
                .or_default()
                .pods
                .insert(pod.key.clone());
            self.touch(Arc::clone(node));
        }
    }

    fn unindex_pod(&mut self, pod: &PodView) {
        if let Some(node) = &pod.node {
            if let Some(entry) = self.nodes.get_mut(node) {
                entry.pods.remove(&pod.key);
            }
            let node = self.gc_node(node);
            self.touch(node);
        }
    }

    // === shared ===

    fn remove(&mut self, kind: Kind, key: &ObjectKey) {
        match kind {
            Kind::Node => self.remove_node(key.name()),
            Kind::ResourceSlice => self.remove_slice(key.name()),
            Kind::ResourceClaim => self.remove_claim(key),
            Kind::Pod => self.remove_pod(key),
        }
    }

    fn resync_done(&mut self, kind: Kind) {
        let Some(seen) = self.resync[kind.index()].take() else {
            return;
        };
        let present: Vec<ObjectKey> = match kind {
            Kind::Node => self
                .nodes
                .iter()
                .filter(|(_, e)| e.node.is_some())
                .map(|(name, _)| ObjectKey::new("", name))
                .collect(),
            Kind::ResourceSlice => self.slices.keys().map(|n| ObjectKey::new("", n)).collect(),
            Kind::ResourceClaim => self.claims.keys().cloned().collect(),
            Kind::Pod => self.pods.keys().cloned().collect(),
        };
        for key in present {
            if !seen.contains(&key) {
                self.remove(kind, &key);
            }
        }
    }

    /// Marks node `name`'s view for rebuilding.
    fn touch(&mut self, name: Arc<str>) {
        self.dirty.insert(name);
        self.changed = true;
    }

    /// Marks every node with a slice in `pool`.
    fn touch_pool(&mut self, pool: &str) {
        let Some(entry) = self.pools.get(pool) else {
            return;
        };
        let nodes: Vec<Arc<str>> = entry
            .slices
            .iter()
            .filter_map(|s| self.slices.get(s).map(|s| Arc::clone(&s.node)))
            .collect();
        for node in nodes {
            self.touch(node);
        }
    }

    /// Drops node `name`'s entry once nothing refers to it; returns the name.
    fn gc_node(&mut self, name: &str) -> Arc<str> {
        match self.nodes.get_key_value(name) {
            Some((key, entry)) => {
                let key = Arc::clone(key);
                if entry.is_empty() {
                    self.nodes.remove(name);
                }
                key
            }
            None => Arc::from(name),
        }
    }

    fn gc_pool(&mut self, pool: &str) {
        if self
            .pools
            .get(pool)
            .is_some_and(|p| p.slices.is_empty() && p.claims.is_empty())
        {
            self.pools.remove(pool);
        }
    }

    fn rebuild(&mut self, name: &Arc<str>) {
        let view = self.nodes.get(name).and_then(|entry| {
            let node = entry.node.as_ref()?;
            let slices: Vec<&Arc<Slice>> = entry
                .slices
                .iter()
                .filter_map(|s| self.slices.get(s))
                .collect();
            let pools: BTreeSet<&Arc<str>> = slices.iter().map(|s| &s.pool).collect();
            let claims = pools
                .into_iter()
                .filter_map(|p| self.pools.get(p))
                .flat_map(|p| p.claims.iter())
                .filter_map(|k| self.claims.get(k));
            let pods = entry.pods.iter().filter_map(|k| self.pods.get(k));
            Some(assemble(&self.config, node, slices, claims, pods))
        });
        let old = match view {
            Some(view) => {
                self.devices = self.devices.saturating_add(view.device_count());
                self.allocations = self.allocations.saturating_add(view.allocations.len());
                self.views.insert(Arc::clone(name), Arc::new(view))
            }
            None => self.views.remove(name),
        };
        if let Some(old) = old {
            self.devices = self.devices.saturating_sub(old.device_count());
            self.allocations = self.allocations.saturating_sub(old.allocations.len());
        }
    }
}

#[cfg(test)]
mod tests;
