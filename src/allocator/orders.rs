//! Outcomes over slice orders, for releases where the order is arbitrary.
//!
//! On 1.34/1.35 (and the 1.36+ stable allocator) the scheduler sees a node's slices in its
//! informer's map order, which differs between calls: every order is possible. With up to
//! [`EXHAUSTIVE_MAX_SLICES`] device slices every permutation is tried (6 slices: 720 orders);
//! with more, a seeded sample of [`SAMPLE_SIZE`] permutations.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::error::AllocatorError;
use super::{AllocatedState, NodeDevices, Outcome, PreparedClaims, SliceOrder, allocate};

/// Most device slices for which every order is tried.
pub const EXHAUSTIVE_MAX_SLICES: usize = 6;
/// Orders tried when there are more slices.
pub const SAMPLE_SIZE: usize = 720;

/// How the orders were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every permutation.
    Exhaustive,
    /// A seeded random sample.
    Sampled {
        /// The seed.
        seed: u64,
    },
}

/// Outcomes over slice orders: each distinct outcome and how many orders gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// Distinct outcomes → orders that gave them.
    pub outcomes: BTreeMap<Outcome, usize>,
    /// Orders tried.
    pub orders: usize,
    /// Whether that was all of them.
    pub coverage: Coverage,
}

/// Every permutation of `items` (Heap's algorithm, iterative).
pub fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    let mut current = items.to_vec();
    let mut out = vec![current.clone()];
    let mut c = vec![0usize; current.len()];
    let mut i = 0;
    while i < current.len() {
        if c[i] < i {
            if i % 2 == 0 {
                current.swap(0, i);
            } else {
                current.swap(c[i], i);
            }
            out.push(current.clone());
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    out
}

/// The slice orders to try on `node`.
pub fn orders(node: &NodeDevices, seed: u64) -> (Vec<Vec<usize>>, Coverage) {
    let slices = node.device_slice_indices();
    if slices.len() <= EXHAUSTIVE_MAX_SLICES {
        return (permutations(&slices), Coverage::Exhaustive);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let sample = (0..SAMPLE_SIZE)
        .map(|_| {
            let mut order = slices.clone();
            order.shuffle(&mut rng);
            order
        })
        .collect();
    (sample, Coverage::Sampled { seed })
}

/// Allocates `claims` under every order [`orders`] gives and counts the outcomes.
pub fn distribution(
    node: &NodeDevices,
    state: &AllocatedState,
    claims: &PreparedClaims,
    seed: u64,
) -> Result<Distribution, AllocatorError> {
    let (all, coverage) = orders(node, seed);
    let mut outcomes = BTreeMap::new();
    for order in &all {
        let outcome = allocate(node, state, claims, &SliceOrder::Given(order.clone()))?;
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    Ok(Distribution {
        outcomes,
        orders: all.len(),
        coverage,
    })
}
