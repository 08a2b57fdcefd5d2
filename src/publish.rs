//! Publishing: this node's GPUs as `resource.k8s.io/v1` ResourceSlices.
//!
//! - [`slices`] (pure): [`Inventory`](crate::model::Inventory) + [`SliceOptions`] → slices,
//!   following the device model of `docs/device-model.md`.
//! - [`validate`] (pure): every documented API limit, checked before anything is sent.
//! - [`level`]: the feature level (`ga`, `partitionable`, `consumable`) and `auto`'s rule.
//!
//! ```text
//! discovery ──▶ Inventory ──▶ slices::render ──▶ validate ──▶ publisher (server-side apply, prune)
//! ```

pub mod level;
pub mod slices;
pub mod validate;

pub use level::{FeatureChoice, FeatureLevel, LevelError, level_for_version};
pub use slices::{DEFAULT_DRIVER_NAME, RenderError, SliceOptions, device_counts, render};
pub use validate::{ValidationError, Violation, validate};
