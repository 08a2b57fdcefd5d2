//! Right-sizing: from what GPU allocations held and used over a window to the smallest
//! adequate partition per workload, its cost now and after, the claim change as YAML, and the
//! allocations that sit idle.
//!
//! ```text
//! Allocation (held device + usage percentiles, from Prometheus) ─┐
//! Owners (kube_pod_owner, kube_replicaset_owner | name heuristic) ┼─▶ recommend() ─▶ Report
//! PriceCatalog (market) ──────────────────────────────────────────┘        └─▶ table | JSON
//! ```
//!
//! Pure: no I/O, no clock, no runtime. `tessera recommend` (`src/cli/recommend.rs`) queries
//! Prometheus and hands the numbers in; percentiles are Prometheus's (`quantile_over_time`),
//! not recomputed here. The rules are in `docs/recommend.md`.

mod claim_yaml;
mod error;
pub mod input;
mod openmetrics;
pub mod output;
pub mod owner;
pub mod partition;
pub mod price;
pub mod report;
mod table;

pub use claim_yaml::claim_template;
pub use error::RightsizeError;
pub use input::{Allocation, IdleWindow, Owners, Usage};
pub use openmetrics::render_openmetrics;
pub use output::{
    Action, Cost, IdleRow, Recommendation, Report, SCHEMA_VERSION, Totals, Window, WorkloadRow,
};
pub use owner::{Workload, workload_of};
pub use partition::{Holds, Kinds, Need, Rules};
pub use price::{GpuPrice, PriceSource};
pub use report::recommend;
pub use table::render_table;

/// Hours in an average month (365 × 24 / 12), the convention cloud bills use.
pub const HOURS_PER_MONTH: f64 = 730.0;

#[cfg(test)]
mod tests;
