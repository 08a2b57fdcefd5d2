//! Trace records for the simulator's tests.

use crate::trace::{TraceNode, TracePod};

/// A node of `gpus` GPUs of `model` with 64 cores and 256 GiB.
pub(crate) fn tnode(name: &str, gpus: u32, model: &str) -> TraceNode {
    TraceNode {
        name: name.into(),
        cpu_milli: 64_000,
        memory_mib: 262_144,
        gpus,
        model: (gpus > 0).then(|| model.to_string()),
        instance_type: None,
        capacity: None,
        hourly_price: None,
    }
}

/// A pod asking for `num_gpu` × `milli` GPU and `cpu` milli-CPU, 4 GiB, any model.
pub(crate) fn tpod(name: &str, cpu: u64, num_gpu: u32, milli: u32) -> TracePod {
    TracePod {
        name: name.into(),
        cpu_milli: cpu,
        memory_mib: 4096,
        num_gpu,
        gpu_milli: milli,
        gpu_spec: vec![],
        qos: None,
        creation_time: None,
        deletion_time: None,
    }
}
