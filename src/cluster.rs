//! The extender's cluster cache: watches Nodes, ResourceSlices, ResourceClaims and Pods and
//! keeps, per node, what a scheduling decision needs (devices, counters, allocations with
//! their claims and pods, consumed capacity, price, capacity type, interruption state).
//!
//! ```text
//! watch (Nodes, Slices, Claims, Pods) ──▶ Store::apply ──▶ Store::snapshot ──▶ Snapshot
//!                                            (only touched nodes rebuilt)      │ (O(1) clone)
//!                                                                              ▼
//!                                                  extender request: snapshot.node(name)
//! ```
//!
//! - [`view`]: the per-node view ([`NodeView`]) and how it is assembled (pure).
//! - [`store`]: the incremental store fed by watch events (pure).
//! - [`snapshot`]: the immutable, cheaply cloned result a request reads.
//! - [`watch`]: the kube-runtime watchers that feed the store, readiness and metrics.
//! - [`slice`](mod@slice), [`claim`], [`pod`], [`node`]: what the cache keeps of each object.
//! - [`testing`]: a synthetic cluster of any size, for benchmarks and tests.

pub mod claim;
pub mod config;
pub mod cow_map;
mod error;
mod health;
mod intern;
pub mod key;
mod metrics;
pub mod node;
pub mod pod;
pub mod quantity;
pub mod slice;
pub mod snapshot;
pub mod store;
pub mod testing;
pub mod view;
pub mod watch;

pub use claim::{AllocatedDevice, ClaimSpec, ClaimView, PodRef};
pub use config::{CacheConfig, DEFAULT_DRIVER};
pub use error::ClusterError;
pub use health::WatcherHealth;
pub use key::{ObjectKey, Uid};
pub use pod::{PodClaim, PodView};
pub use slice::{Amount, Device, DeviceKind, DeviceSpec, Slice};
pub use snapshot::{CacheStats, Snapshot};
pub use store::{ClusterEvent, ClusterObject, Kind, Store};
pub use view::{
    Allocation, ClassicGpus, CounterUsage, DeviceRef, GpuDevices, NodeResources, NodeView,
};
pub use watch::{Cache, READINESS_CONDITIONS, WatchSource};
