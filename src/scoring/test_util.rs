//! Demands for the scoring tests.

use crate::model::{Demand, ModelSet};

/// A pod of `cpu` milli-CPU, 1 GiB, `gpus` × `milli` milli-GPU, any model.
pub(crate) fn demand(cpu: u64, gpus: u8, milli: u16) -> Demand {
    Demand {
        cpu_milli: cpu,
        memory_mib: 1024,
        gpus,
        gpu_milli: milli,
        models: ModelSet::ANY,
    }
}
