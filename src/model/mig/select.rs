//! Choosing the smallest profile that meets a demand.

use super::{GpuProduct, MigProfile, profiles};

/// The smallest profile of `product` with at least `memory_mib` of memory
/// ([`MigProfile::capacity_mib`]) and at least `compute_fraction` of the GPU's compute slices.
///
/// "Smallest" is fewest memory slices, then fewest compute slices, then a plain profile
/// before its `+me` twin: memory slices are what fragments a GPU (placements are over memory),
/// and the media extensions are a single per-GPU resource best left for pods that ask for them.
/// A `compute_fraction` of 0 or less asks for no compute; NaN matches nothing.
pub fn smallest_adequate(
    product: GpuProduct,
    memory_mib: u64,
    compute_fraction: f64,
) -> Option<&'static MigProfile> {
    let total = f64::from(product.total_compute_slices());
    profiles(product)
        .iter()
        .filter(|p| p.capacity_mib() >= memory_mib)
        .filter(|p| f64::from(p.compute_slices) / total >= compute_fraction)
        .min_by_key(|p| (p.memory_slices, p.compute_slices, p.media_extensions))
}
