//! Pure data types shared by every component: GPU models, MIG geometry, node state, pod demand.
//!
//! Nothing here decides anything; `scoring` decides, `sim` and (later) the extender feed it.

pub mod demand;
pub mod device_name;
pub mod device_order;
pub mod gpu_model;
pub mod inventory;
pub mod mig;
pub mod node;
pub mod partition;

pub use demand::{Demand, PodClass};
pub use device_name::{DeviceName, DeviceNameError};
pub use gpu_model::{ModelError, ModelId, ModelRegistry, ModelSet};
pub use inventory::{Gpu, Inventory, InventoryError, MigDevice, MigState};
pub use node::{GpuPick, MAX_GPUS, MILLI_PER_GPU, NodeError, NodeState};
