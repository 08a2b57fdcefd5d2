//! Pure data types shared by every component: GPU models, node state, pod demand.
pub mod mig;
