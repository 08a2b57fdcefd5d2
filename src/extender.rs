//! `tessera extender`: the kube-scheduler HTTP extender.
//!
//! HTTP surface only: wire types ([`api`]), routes, the server. Every decision comes from
//! [`crate::scoring`], fed with the cluster cache's snapshot and [`crate::market`] data.

pub mod api;
pub mod claim;
pub mod demand;
pub mod pod;
pub mod quantity;
