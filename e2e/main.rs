//! End-to-end tests against a real cluster named by `TESSERA_E2E_KUBECONFIG`.
//!
//! Every test that needs the cluster is `#[ignore]`d, so a plain `cargo test` reports it as
//! ignored (not passed) on a machine without one. Run them by hand:
//!
//! ```sh
//! TESSERA_E2E_KUBECONFIG=$HOME/.kube/config cargo test --test e2e -- --ignored
//! ```
//!
//! There a missing variable fails the test. The tests create what they need under names
//! prefixed `tessera-e2e-` and delete it afterwards.

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
