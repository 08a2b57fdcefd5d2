//! Interning: one shared allocation for every repeated value the cache holds.
//!
//! Device names (`gpu-0-mig-1g10gb-0`), namespaces, product names, counter names, capacity
//! lists and claim specs made from the same template repeat across thousands of objects.
//! Holding each once is what keeps the cache of a 5,000-node cluster small.
//!
//! Entries nobody else holds any more are swept out once the table has doubled since the last
//! sweep, so churn (pools, claims and specs coming and going) cannot grow it without bound.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use super::claim::ClaimSpec;
use super::slice::{Amount, CounterConsumption, DeviceSpec};

/// Table size below which no sweep happens: sweeping a small table saves nothing.
const MIN_SWEEP_LEN: usize = 4096;

/// A set of shared values of one type.
#[derive(Debug)]
pub(crate) struct Interner<T: ?Sized> {
    values: HashSet<Arc<T>>,
    sweep_at: usize,
}

impl<T: ?Sized + Hash + Eq> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: HashSet::new(),
            sweep_at: MIN_SWEEP_LEN,
        }
    }
}

impl<T: ?Sized + Hash + Eq> Interner<T> {
    /// The shared copy of `value`, made by `make` the first time.
    pub(crate) fn get_or_insert_with(&mut self, value: &T, make: impl FnOnce() -> Arc<T>) -> Arc<T>
    where
        Arc<T>: Borrow<T>,
    {
        if let Some(shared) = self.values.get(value) {
            return Arc::clone(shared);
        }
        if self.values.len() >= self.sweep_at {
            self.sweep();
        }
        let shared = make();
        self.values.insert(Arc::clone(&shared));
        shared
    }

    /// Drops entries only this table still holds.
    fn sweep(&mut self) {
        self.values.retain(|v| Arc::strong_count(v) > 1);
        self.sweep_at = (self.values.len() * 2).max(MIN_SWEEP_LEN);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

impl Interner<str> {
    /// The shared copy of the string `value`.
    pub(crate) fn str(&mut self, value: &str) -> Arc<str> {
        self.get_or_insert_with(value, || Arc::from(value))
    }
}

/// The interners of one store.
#[derive(Debug, Default)]
pub(crate) struct Interners {
    /// Names, namespaces, attribute values.
    pub(crate) strings: Interner<str>,
    /// Capacity and counter lists of devices and counter sets.
    pub(crate) amounts: Interner<[Amount]>,
    /// Counter consumption lists of devices.
    pub(crate) consumptions: Interner<[CounterConsumption]>,
    /// Claim specs: claims made from one template share one.
    pub(crate) specs: Interner<ClaimSpec>,
    /// Device specs: the same device on nodes of one type shares one.
    pub(crate) devices: Interner<DeviceSpec>,
}

impl Interners {
    /// The shared copy of `value`, for any string.
    pub(crate) fn str(&mut self, value: &str) -> Arc<str> {
        self.strings.str(value)
    }

    /// The shared copy of an amount list.
    pub(crate) fn amounts(&mut self, value: Vec<Amount>) -> Arc<[Amount]> {
        self.amounts
            .get_or_insert_with(value.as_slice(), || Arc::from(value.as_slice()))
    }

    /// The shared copy of a counter consumption list.
    pub(crate) fn consumptions(
        &mut self,
        value: Vec<CounterConsumption>,
    ) -> Arc<[CounterConsumption]> {
        self.consumptions
            .get_or_insert_with(value.as_slice(), || Arc::from(value.as_slice()))
    }

    /// The shared copy of a device spec.
    pub(crate) fn device(&mut self, value: DeviceSpec) -> Arc<DeviceSpec> {
        self.devices
            .get_or_insert_with(&value, || Arc::new(value.clone()))
    }

    /// The shared copy of a claim spec.
    pub(crate) fn spec(&mut self, value: ClaimSpec) -> Arc<ClaimSpec> {
        self.specs
            .get_or_insert_with(&value, || Arc::new(value.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation() {
        let mut strings = Interner::<str>::default();
        let a = strings.str("gpu-0");
        let b = strings.str(&String::from("gpu-0"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(strings.len(), 1);
        assert!(!Arc::ptr_eq(&a, &strings.str("gpu-1")));
    }

    #[test]
    fn unused_values_are_swept_once_the_table_doubles() {
        let mut strings = Interner::<str>::default();
        let kept: Vec<Arc<str>> = (0..10).map(|i| strings.str(&format!("kept-{i}"))).collect();
        for i in 0..MIN_SWEEP_LEN * 3 {
            drop(strings.str(&format!("churn-{i}")));
        }
        // Never more than the sweep threshold, and the values still held survive every sweep.
        assert!(strings.len() <= MIN_SWEEP_LEN + 1, "{}", strings.len());
        for (i, k) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(k, &strings.str(&format!("kept-{i}"))));
        }
    }
}
