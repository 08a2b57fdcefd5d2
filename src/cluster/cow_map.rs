//! A copy-on-write hash map whose clone is O(1): the store keeps writing to it while every
//! snapshot taken earlier keeps reading its own version.
//!
//! Entries are spread over a fixed number of shards, each an `Arc`'d `HashMap`. A clone shares
//! every shard; the first write after a clone copies the shard table (one pointer per shard)
//! and then only the shards it touches. A snapshot therefore costs a few reference-count
//! increments, and a write after it costs one shard table plus one small shard, never the
//! whole map.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::fast::{FixedState, RandomState};

/// One shard. foldhash rather than SipHash: a scheduling request looks up hundreds of node
/// names, and SipHash was a twentieth of its time. The keys (object names) come from the API
/// server, not from anonymous clients, and the per-map seed is still random.
type Shard<K, V> = HashMap<K, V, RandomState>;

/// A persistent map from `K` to `V` (`V` is normally an `Arc`, so shard copies are cheap).
#[derive(Debug)]
pub struct CowMap<K, V> {
    shards: Arc<Vec<Arc<Shard<K, V>>>>,
    /// `shards.len() - 1`; the shard count is a power of two.
    mask: usize,
    len: usize,
}

impl<K, V> Clone for CowMap<K, V> {
    fn clone(&self) -> Self {
        CowMap {
            shards: Arc::clone(&self.shards),
            mask: self.mask,
            len: self.len,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    /// An empty map with at least `shards` shards (rounded up to a power of two, at least 1).
    ///
    /// Pick about `expected entries / 64`: a write copies one shard.
    pub fn with_shards(shards: usize) -> Self {
        let count = shards.max(1).next_power_of_two();
        CowMap {
            shards: Arc::new((0..count).map(|_| Arc::new(Shard::default())).collect()),
            mask: count - 1,
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard_of(key)].get(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard_of(&key);
        let old = self.shard_mut(shard).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard_of(key);
        // Look first so that removing an absent key copies nothing.
        if !self.shards[shard].contains_key(key) {
            return None;
        }
        let old = self.shard_mut(shard).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    fn shard_mut(&mut self, shard: usize) -> &mut Shard<K, V> {
        Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[shard])
    }

    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // A fixed-seed hasher: shard choice only has to be stable within this process. The
        // shard maps themselves use randomly seeded hashers.
        // Truncation is intended: only the low bits pick the shard.
        (FixedState::default().hash_one(key) as usize) & self.mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_clone_keeps_its_version_while_the_original_changes() {
        let mut map: CowMap<String, Arc<u32>> = CowMap::with_shards(8);
        map.insert("a".into(), Arc::new(1));
        map.insert("b".into(), Arc::new(2));
        let before = map.clone();
        map.insert("a".into(), Arc::new(10));
        map.remove("b");
        map.insert("c".into(), Arc::new(3));
        assert_eq!(before.get("a").map(|v| **v), Some(1));
        assert_eq!(before.get("b").map(|v| **v), Some(2));
        assert!(before.get("c").is_none());
        assert_eq!(before.len(), 2);
        assert_eq!(map.get("a").map(|v| **v), Some(10));
        assert!(map.get("b").is_none());
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn writes_after_a_clone_copy_only_the_touched_shard() {
        let mut map: CowMap<u32, u32> = CowMap::with_shards(16);
        for i in 0..1000 {
            map.insert(i, i);
        }
        let before = map.clone();
        map.insert(7, 70);
        let shared = map
            .shards
            .iter()
            .zip(before.shards.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, 15);
    }

    #[test]
    fn removing_an_absent_key_changes_nothing() {
        let mut map: CowMap<u32, u32> = CowMap::with_shards(4);
        map.insert(1, 1);
        let before = map.clone();
        assert_eq!(map.remove(&2), None);
        assert!(Arc::ptr_eq(&map.shards, &before.shards));
    }

    proptest! {
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u16..64, any::<u16>()), 0..300)) {
            let mut map: CowMap<u16, u16> = CowMap::with_shards(4);
            let mut model = BTreeMap::new();
            let mut clones = Vec::new();
            for (op, k, v) in ops {
                match op {
                    0 => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    1 => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                    _ => clones.push((map.clone(), model.clone())),
                }
                prop_assert_eq!(map.len(), model.len());
            }
            for (clone, model) in clones {
                let got: BTreeMap<u16, u16> = clone.iter().map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(got, model);
            }
        }
    }
}
