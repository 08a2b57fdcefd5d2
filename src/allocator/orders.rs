//! Outcomes over slice orders, for releases where the order is arbitrary.
//!
//! On 1.34/1.35 (and the 1.36+ stable allocator) the scheduler sees a node's slices in its
//! informer's map order, which differs between calls: every order is possible. With up to
//! [`EXHAUSTIVE_MAX_SLICES`] device slices every permutation is tried (6 slices: 720 orders);
//! with more, a seeded sample of [`SAMPLE_SIZE`] permutations.
//!
//! One device for one request of one claim, in one pool (the shape of almost every GPU pod)
//! needs neither: the allocator picks the request's alternative before it looks at the order
//! (the first alternative any device fits: `allocateOne` in
//! `staging/src/k8s.io/dynamic-resource-allocation/structured/internal/incubating/allocator_incubating.go`,
//! kubernetes-1.36.0, tries subrequests in turn, each over every slice), then
//! takes the first fitting device of the first slice that has one. Under a uniformly random
//! order, that slice is equally likely to be each of the `k` slices that have one. So one
//! search per slice, with that slice first, gives the exact distribution over all `S!` orders
//! ([`single_device`]): 9 searches instead of 720 sampled ones on an 8-GPU dynamic-MIG node.

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
    if let Some(exact) = single_device(node, state, claims)? {
        return Ok(exact);
    }
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

/// Most device slices for which [`single_device`] counts orders (20! still fits a `u64`).
const SINGLE_DEVICE_MAX_SLICES: usize = 20;

/// The exact distribution over every slice order when the claims ask for one device in one
/// pool, from one search per slice (module docs); `None` for other shapes.
fn single_device(
    node: &NodeDevices,
    state: &AllocatedState,
    claims: &PreparedClaims,
) -> Result<Option<Distribution>, AllocatorError> {
    let one_device = match claims.claims.as_slice() {
        [claim] => match claim.requests.as_slice() {
            [request] => request
                .alternatives
                .iter()
                .all(|a| a.mode == super::AllocationMode::ExactCount(1)),
            _ => false,
        },
        _ => false,
    };
    let valid_pools = node
        .pools()
        .iter()
        .filter(|p| p.status == super::PoolStatus::Valid)
        .count();
    let slices = node.device_slice_indices();
    if !one_device || valid_pools != 1 || slices.len() > SINGLE_DEVICE_MAX_SLICES {
        return Ok(None);
    }
    let total: usize = (1..=slices.len()).product();
    let mut firsts = Vec::new();
    for (at, &first) in slices.iter().enumerate() {
        let mut order = Vec::with_capacity(slices.len());
        order.push(first);
        order.extend(
            slices
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, s)| *s),
        );
        let outcome = allocate(node, state, claims, &SliceOrder::Given(order))?;
        let lands_in_first = match &outcome {
            Outcome::Allocated(results) => results
                .iter()
                .flat_map(|c| c.devices.iter())
                .all(|d| node.devices.get(d.device).is_some_and(|e| e.slice == first)),
            Outcome::Unsatisfiable => false,
        };
        if lands_in_first {
            firsts.push(outcome);
        }
    }
    let mut outcomes = BTreeMap::new();
    if firsts.is_empty() {
        // No slice has a fitting device: every order gives the same (unsatisfiable) answer.
        let outcome = allocate(node, state, claims, &SliceOrder::ByName)?;
        outcomes.insert(outcome, total);
    } else {
        let each = total / firsts.len();
        for outcome in firsts {
            *outcomes.entry(outcome).or_insert(0) += each;
        }
    }
    Ok(Some(Distribution {
        outcomes,
        orders: total,
        coverage: Coverage::Exhaustive,
    }))
}
