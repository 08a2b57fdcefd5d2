//! End-to-end tests against a real cluster named by `TESSERA_E2E_KUBECONFIG`.
//!
//! Without that variable every test prints that it was skipped and passes, so `cargo test`
//! stays green on a laptop or in CI without a cluster. With it, the tests create what they
//! need under names prefixed `tessera-e2e-` and delete it afterwards.

// A test crate: failing loudly on a broken cluster is the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod release;
mod support;

mod chart;
mod cluster;
mod cluster_cache;
mod extender;
mod placement;
mod plugin;
mod publish;
mod walkthrough;
