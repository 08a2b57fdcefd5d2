//! In-memory GPUs that behave like the hardware where prepare's correctness depends on it:
//! overlapping MIG instances are refused, destroying what is gone succeeds, and state
//! outlives a "restart" of the plugin (the test keeps the same `FakeGpuControl`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{ControlError, GpuControl};
use crate::model::mig::Placement;
use crate::prepare::device::{GpuRef, GpuSharing};

/// An operation of the fake, for injecting failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeOp {
    /// `create_mig`.
    CreateMig,
    /// `destroy_mig`.
    DestroyMig,
    /// `apply_sharing`.
    ApplySharing,
    /// `clear_sharing`.
    ClearSharing,
}

/// What one fake GPU currently has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeGpuState {
    /// MIG instances by placement: (profile, MIG UUID).
    pub mig: BTreeMap<Placement, (String, String)>,
    /// Sharing mode; `None` is the default.
    pub sharing: Option<GpuSharing>,
}

#[derive(Debug, Default)]
struct Inner {
    gpus: BTreeMap<String, FakeGpuState>,
    failures: HashMap<FakeOp, u32>,
    created: u64,
    ops: u64,
}

/// Fake GPUs keyed by UUID.
#[derive(Debug, Default)]
pub struct FakeGpuControl {
    inner: Mutex<Inner>,
    device_nodes: bool,
}

impl FakeGpuControl {
    /// Fake GPUs that report no device nodes, so CDI specs work on machines without GPUs
    /// (kind clusters, CI).
    pub fn new() -> Self {
        FakeGpuControl::default()
    }

    /// Fake GPUs that report `/dev/nvidia<i>`-style device nodes, as real ones would.
    pub fn with_device_nodes() -> Self {
        FakeGpuControl {
            device_nodes: true,
            ..FakeGpuControl::default()
        }
    }

    /// Make the next `times` calls of `op` fail, as a driver error would.
    pub fn fail_next(&self, op: FakeOp, times: u32) {
        self.lock().failures.insert(op, times);
    }

    /// The state of every GPU touched so far.
    pub fn snapshot(&self) -> BTreeMap<String, FakeGpuState> {
        self.lock().gpus.clone()
    }

    /// How many mutating operations ran (successful or not).
    pub fn operations(&self) -> u64 {
        self.lock().ops
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn injected(inner: &mut Inner, op: FakeOp, gpu: &GpuRef) -> Result<(), ControlError> {
        inner.ops += 1;
        if let Some(left) = inner.failures.get_mut(&op)
            && *left > 0
        {
            *left -= 1;
            return Err(ControlError::Failed {
                op: "fake operation",
                gpu: gpu.index,
                reason: format!("injected failure of {op:?}"),
            });
        }
        Ok(())
    }
}

impl GpuControl for FakeGpuControl {
    fn create_mig(
        &self,
        gpu: &GpuRef,
        profile: &str,
        placement: Placement,
    ) -> Result<String, ControlError> {
        let mut inner = self.lock();
        Self::injected(&mut inner, FakeOp::CreateMig, gpu)?;
        inner.created += 1;
        let serial = inner.created;
        let state = inner.gpus.entry(gpu.uuid.clone()).or_default();
        if let Some((taken, _)) = state.mig.iter().find(|(p, _)| p.overlaps(placement)) {
            return Err(ControlError::Failed {
                op: "create MIG instance",
                gpu: gpu.index,
                reason: format!(
                    "placement {}:{} overlaps the instance at {}:{} (insufficient resources)",
                    placement.start, placement.size, taken.start, taken.size
                ),
            });
        }
        let uuid = format!("MIG-fake-{}-{serial}", gpu.index);
        state
            .mig
            .insert(placement, (profile.to_owned(), uuid.clone()));
        Ok(uuid)
    }

    fn destroy_mig(
        &self,
        gpu: &GpuRef,
        profile: &str,
        placement: Placement,
    ) -> Result<(), ControlError> {
        let mut inner = self.lock();
        Self::injected(&mut inner, FakeOp::DestroyMig, gpu)?;
        if let Some(state) = inner.gpus.get_mut(&gpu.uuid)
            && state.mig.get(&placement).is_some_and(|(p, _)| p == profile)
        {
            state.mig.remove(&placement);
        }
        Ok(())
    }

    fn apply_sharing(&self, gpu: &GpuRef, sharing: GpuSharing) -> Result<(), ControlError> {
        let mut inner = self.lock();
        Self::injected(&mut inner, FakeOp::ApplySharing, gpu)?;
        inner.gpus.entry(gpu.uuid.clone()).or_default().sharing = Some(sharing);
        Ok(())
    }

    fn clear_sharing(&self, gpu: &GpuRef) -> Result<(), ControlError> {
        let mut inner = self.lock();
        Self::injected(&mut inner, FakeOp::ClearSharing, gpu)?;
        if let Some(state) = inner.gpus.get_mut(&gpu.uuid) {
            state.sharing = None;
        }
        Ok(())
    }

    fn device_nodes(
        &self,
        gpu: &GpuRef,
        mig: Option<Placement>,
    ) -> Result<Vec<String>, ControlError> {
        if !self.device_nodes {
            return Ok(Vec::new());
        }
        let mut nodes = vec![
            "/dev/nvidiactl".to_owned(),
            "/dev/nvidia-uvm".to_owned(),
            format!("/dev/nvidia{}", gpu.index),
        ];
        if let Some(placement) = mig {
            // Stand-ins for the GI and CI access capabilities of a real MIG device.
            nodes.push(format!(
                "/dev/nvidia-caps/nvidia-cap{}",
                100 + gpu.index * 16 + u32::from(placement.start) * 2
            ));
            nodes.push(format!(
                "/dev/nvidia-caps/nvidia-cap{}",
                101 + gpu.index * 16 + u32::from(placement.start) * 2
            ));
        }
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu() -> GpuRef {
        GpuRef {
            index: 0,
            uuid: "GPU-0".to_owned(),
        }
    }

    #[test]
    fn overlapping_instances_are_refused_and_destroy_is_idempotent() {
        let fake = FakeGpuControl::new();
        let a = fake
            .create_mig(&gpu(), "1g.10gb", Placement::new(0, 1))
            .unwrap();
        assert!(a.starts_with("MIG-"));
        assert!(
            fake.create_mig(&gpu(), "2g.20gb", Placement::new(0, 2))
                .is_err()
        );
        fake.create_mig(&gpu(), "2g.20gb", Placement::new(2, 2))
            .unwrap();
        fake.destroy_mig(&gpu(), "1g.10gb", Placement::new(0, 1))
            .unwrap();
        fake.destroy_mig(&gpu(), "1g.10gb", Placement::new(0, 1))
            .unwrap();
        // A different profile at the same start is not ours to destroy.
        fake.destroy_mig(&gpu(), "1g.10gb", Placement::new(2, 2))
            .unwrap();
        assert_eq!(fake.snapshot()["GPU-0"].mig.len(), 1);
    }

    #[test]
    fn injected_failures_fire_the_given_number_of_times() {
        let fake = FakeGpuControl::new();
        fake.fail_next(FakeOp::ApplySharing, 1);
        let ts = GpuSharing::Mps;
        assert!(fake.apply_sharing(&gpu(), ts).is_err());
        fake.apply_sharing(&gpu(), ts).unwrap();
        assert_eq!(fake.snapshot()["GPU-0"].sharing, Some(ts));
        fake.clear_sharing(&gpu()).unwrap();
        assert_eq!(fake.snapshot()["GPU-0"].sharing, None);
    }
}
