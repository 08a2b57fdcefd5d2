//! Errors of the MIG catalog and layout.

use super::GpuProduct;

/// Why a MIG placement could not be made, removed or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigError {
    /// The profile is not in the catalog of this GPU product.
    #[error("profile {profile} does not exist on {product}")]
    UnknownProfile {
        /// The product the layout belongs to.
        product: GpuProduct,
        /// The profile name that was asked for.
        profile: String,
    },
    /// The profile may not start at this slot with this size on this product.
    #[error("profile {profile} cannot be placed at {start}:{size}")]
    PlacementNotAllowed {
        /// The profile name.
        profile: &'static str,
        /// First memory slice of the refused placement.
        start: u8,
        /// Number of memory slices of the refused placement.
        size: u8,
    },
    /// The placement shares memory slices with an instance that is already placed.
    #[error("placement {start}:{size} overlaps {other} at {other_start}:{other_size}")]
    Overlap {
        /// First memory slice of the refused placement.
        start: u8,
        /// Number of memory slices of the refused placement.
        size: u8,
        /// Profile of the instance already occupying some of those slices.
        other: &'static str,
        /// Start of the occupying instance.
        other_start: u8,
        /// Size of the occupying instance.
        other_size: u8,
    },
    /// The GPU already holds as many instances of this profile as the guide allows.
    #[error("profile {profile} is limited to {max} instances per GPU")]
    MaxCountReached {
        /// The profile name.
        profile: &'static str,
        /// The per-GPU maximum from the guide.
        max: u8,
    },
    /// The instance would need more compute slices than the GPU has left.
    #[error("profile {profile} needs {needed} compute slices, only {free} are free")]
    ComputeExhausted {
        /// The profile name.
        profile: &'static str,
        /// Compute slices the profile needs.
        needed: u8,
        /// Compute slices still free on the GPU.
        free: u8,
    },
    /// A media-extension (`+me`) instance already holds the GPU's single OFA/JPEG set.
    #[error("profile {profile} needs the media extensions already held by {holder}")]
    MediaExtensionsTaken {
        /// The profile name.
        profile: &'static str,
        /// The `+me` profile already placed.
        holder: &'static str,
    },
    /// No instance of this profile is placed at this placement.
    #[error("no {profile} instance is placed at {start}:{size}")]
    NotPlaced {
        /// The profile name.
        profile: String,
        /// Start of the placement asked for.
        start: u8,
        /// Size of the placement asked for.
        size: u8,
    },
}
