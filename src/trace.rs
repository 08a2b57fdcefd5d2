//! Trace readers: turn public cluster traces into plain records.
//!
//! The records here are the trace as written, with no simulation decisions in them; `sim`
//! turns them into its own cluster. Pure: no I/O framework, no clock.

pub mod alibaba;
pub mod openb;

pub use alibaba::{
    TraceError, bundled_gpushare100_pods, bundled_nodes, bundled_pods, read_nodes, read_nodes_from,
    read_pods, read_pods_from,
};

/// Most GPUs one node (and so one pod) may have. Larger values in a trace are rejected as
/// malformed rather than silently truncated: no shipping server has more than 16 GPUs.
pub const MAX_GPUS_PER_NODE: u32 = 16;

/// One machine of a trace's node list.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceNode {
    /// Node name, unique within the list (`openb-node-0042`).
    pub name: String,
    /// CPU capacity in milli-cores.
    pub cpu_milli: u64,
    /// Host memory in MiB.
    pub memory_mib: u64,
    /// Number of GPUs on the node (0 for CPU-only nodes).
    pub gpus: u32,
    /// GPU model code (`T4`, `G2`, …); `None` when the node has no GPU.
    pub model: Option<String>,
    /// Cloud instance type to price the node by (optional column `instance_type`), as the
    /// `node.kubernetes.io/instance-type` label would give it.
    pub instance_type: Option<String>,
    /// Spot, on-demand or reserved (optional column `capacity_type`).
    pub capacity: Option<crate::market::CapacityType>,
    /// The whole node's price in US dollars per hour (optional column `hourly_price`), read
    /// with the rules of the `tessera.dev/hourly-price` annotation: finite and ≥ 0.
    pub hourly_price: Option<f64>,
}

/// Quality-of-service class of a trace pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// Latency sensitive.
    Ls,
    /// Best effort.
    Be,
    /// Kubernetes Burstable.
    Burstable,
    /// Kubernetes Guaranteed.
    Guaranteed,
}

impl Qos {
    /// The class for a trace's `qos` value (`LS`, `BE`, `Burstable` or `Guaranteed`, exact
    /// spelling); `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "LS" => Some(Self::Ls),
            "BE" => Some(Self::Be),
            "Burstable" => Some(Self::Burstable),
            "Guaranteed" => Some(Self::Guaranteed),
            _ => None,
        }
    }

    /// The value the trace uses for this class; the inverse of [`Qos::from_code`].
    pub fn code(self) -> &'static str {
        match self {
            Self::Ls => "LS",
            Self::Be => "BE",
            Self::Burstable => "Burstable",
            Self::Guaranteed => "Guaranteed",
        }
    }
}

/// One pod of a trace's pod list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePod {
    /// Pod name, unique within the list (`openb-pod-0042`).
    pub name: String,
    /// CPU request in milli-cores.
    pub cpu_milli: u64,
    /// Memory request in MiB.
    pub memory_mib: u64,
    /// Number of GPUs requested (0 for CPU-only pods).
    pub num_gpu: u32,
    /// Share of each requested GPU in thousandths (1000 = whole GPU; 0 for CPU-only pods).
    pub gpu_milli: u32,
    /// GPU models the pod may run on; empty means any model.
    pub gpu_spec: Vec<String>,
    /// QoS class, when the file has the column.
    pub qos: Option<Qos>,
    /// Seconds from trace start the pod was created, when the file has the column.
    pub creation_time: Option<u64>,
    /// Seconds from trace start the pod was deleted, when known.
    pub deletion_time: Option<u64>,
}
