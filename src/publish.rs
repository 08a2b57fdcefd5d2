//! Publishing: this node's GPUs as `resource.k8s.io/v1` ResourceSlices.
//!
//! - [`slices`] (pure): `Inventory` + [`SliceOptions`] → slices,
//!   following the device model of `docs/device-model.md`.
//! - [`validate`](mod@validate) (pure): every documented API limit, checked before anything is sent.
//! - [`level`]: the feature level (`ga`, `partitionable`, `consumable`) and `auto`'s rule.
//! - [`publisher`]: server-side applies the slices, bumps the pool generation, prunes stale
//!   slices, and republishes on inventory changes and when slices vanish.
//! - [`PublishMetrics`]: devices advertised by type, publishes by result.
//!
//! ```text
//! discovery ──▶ Inventory ──▶ slices::render ──▶ validate ──▶ publisher (server-side apply, prune)
//! ```

pub mod level;
mod metrics;
pub mod publisher;
pub mod slices;
pub mod validate;

pub use level::{FeatureChoice, FeatureLevel, LevelError, level_for_version};
pub use metrics::PublishMetrics;
pub use publisher::{
    FIELD_MANAGER, PublishError, PublishReport, Publisher, PublisherConfig, READINESS_CONDITION,
};
pub use slices::{DEFAULT_DRIVER_NAME, RenderError, SliceOptions, device_counts, render};
pub use validate::{ValidationError, Violation, validate};
