//! The MIG catalog: which GPU-instance profiles each MIG-capable GPU offers, where on the GPU
//! each profile may be placed, and which placements stay possible once some are taken.
//!
//! Occupancy follows NVML's model (`nvmlGpuInstancePlacement_t`): a GPU instance occupies the
//! memory slices `start..start + size`, and creating one fails if it overlaps memory slices
//! that are already taken. Compute slices are only counted, because NVML exposes no placement
//! for them at the GPU-instance level.
//!
//! Sources of the tables are cited next to each table in [`profiles`].

mod error;
mod layout;
mod presets;
mod product;
mod profiles;
mod select;

pub use error::MigError;
pub use layout::{MigLayout, PlacedInstance};
pub use presets::{all_balanced, all_smallest};
pub use product::GpuProduct;
pub use profiles::{MigProfile, Placement, profile, profiles};
pub use select::smallest_adequate;

#[cfg(test)]
mod tests;
