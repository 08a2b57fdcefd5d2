//! tessera puts GPU pods on the cheapest adequate piece of a GPU.
//!
//! Data flows one way:
//!
//! ```text
//! trace (Alibaba CSV …) ──▶ sim (its own cluster) ──▶ scoring ◀── market (prices, spot risk)
//!                                                        └──▶ report (table, CSV, SVG)
//! ```
//!
//! `model`, `scoring`, `market`, `trace`, `sim` and `report` are pure: no async runtime, no
//! wall clock, no global RNG. The same seed gives the same report. `cli` and `telemetry` are
//! the binary's shell.

pub mod access;
pub mod admin;
pub mod allocator;
pub mod allocator_k8s;
pub mod cli;
pub mod cluster;
pub mod discovery;
pub mod extender;
pub mod market;
pub mod metrics;
pub mod model;
pub mod plugin;
pub mod prepare;
pub mod promql;
pub mod publish;
pub mod report;
pub mod rightsize;
pub mod scoring;
pub mod serving;
pub mod shutdown;
pub mod sim;
pub mod telemetry;
pub mod trace;
pub mod usage;
