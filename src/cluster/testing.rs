//! Test and benchmark support: builders of the API objects the cache reads, and a synthetic
//! cluster of any size.
//!
//! Public (not test-only) because the extender's benchmarks and integration tests build the
//! same clusters: `synthetic_cluster(5_000, 8, 100_000, 42)` is the reference cluster of
//! `docs/performance.md`.

pub mod objects;
mod synthetic;

pub use synthetic::{SyntheticCluster, synthetic_cluster};
