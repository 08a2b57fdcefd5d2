//! In-memory GPUs that behave like the hardware where prepare's correctness depends on it:
//! overlapping MIG instances are refused, destroying what is gone succeeds, and state
//! outlives a "restart" of the plugin (the test keeps the same `FakeGpuControl`).
//!
//! Creating a MIG device is two driver calls on real GPUs (a GPU instance, then a compute
//! instance in it), and destroying one is the same two in reverse. The fake keeps the state
//! between them visible ([`FakeGpuState::bare`]) and, with a [`FaultPlan`] installed, fails
//! or "crashes" there ([`Step::CreateComputeInstance`], [`Step::DestroyGpuInstance`]), so
//! tests can kill the plugin in the middle of one hardware step.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{ControlError, GpuControl, MigInstance};
use crate::model::mig::Placement;
use crate::prepare::device::{GpuRef, GpuSharing};
use crate::prepare::fault::{Fault, FaultPlan, Step};

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
    /// GPU instances without a compute instance, by placement: profile. What a crash
    /// between the two driver calls of creating (or destroying) a MIG device leaves: no MIG
    /// device, no UUID, but the memory slices are taken.
    pub bare: BTreeMap<Placement, String>,
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
    faults: Mutex<Option<Arc<FaultPlan>>>,
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

    /// Pass the steps inside MIG creation and destruction through `plan` (tests): the same
    /// plan the sequencer uses, so a test can fault every step, outer or inner, in order.
    pub fn set_faults(&self, plan: Option<Arc<FaultPlan>>) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = plan;
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

    /// The fault, if any, the installed plan fires at `step`.
    fn inner_step(&self, step: Step) -> Option<Fault> {
        let plan = self
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        plan.and_then(|p| p.check_blocking(step))
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
        {
            let mut inner = self.lock();
            Self::injected(&mut inner, FakeOp::CreateMig, gpu)?;
            let state = inner.gpus.entry(gpu.uuid.clone()).or_default();
            let taken = state
                .mig
                .keys()
                .chain(state.bare.keys())
                .find(|p| p.overlaps(placement))
                .copied();
            if let Some(taken) = taken {
                return Err(ControlError::Failed {
                    op: "create MIG instance",
                    gpu: gpu.index,
                    reason: format!(
                        "placement {}:{} overlaps the instance at {}:{} (insufficient resources)",
                        placement.start, placement.size, taken.start, taken.size
                    ),
                });
            }
            // First driver call: the GPU instance.
            state.bare.insert(placement, profile.to_owned());
        }
        match self.inner_step(Step::CreateComputeInstance) {
            // The process died here: the GPU instance stays, without a compute instance.
            Some(Fault::Crash) => {
                return Err(failed(gpu, "crashed between the two driver calls"));
            }
            // The compute instance could not be created: like the NVML implementation,
            // remove the half-made GPU instance before reporting the error.
            Some(Fault::Fail) => {
                self.lock()
                    .gpus
                    .entry(gpu.uuid.clone())
                    .or_default()
                    .bare
                    .remove(&placement);
                return Err(failed(
                    gpu,
                    "injected failure creating the compute instance",
                ));
            }
            None => {}
        }
        // Second driver call: the compute instance, which makes it a MIG device.
        let mut inner = self.lock();
        inner.created += 1;
        let uuid = format!("MIG-fake-{}-{}", gpu.index, inner.created);
        let state = inner.gpus.entry(gpu.uuid.clone()).or_default();
        state.bare.remove(&placement);
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
        {
            let mut inner = self.lock();
            Self::injected(&mut inner, FakeOp::DestroyMig, gpu)?;
            let Some(state) = inner.gpus.get_mut(&gpu.uuid) else {
                return Ok(());
            };
            if state.mig.get(&placement).is_some_and(|(p, _)| p == profile) {
                // First driver call: the compute instance goes, the GPU instance stays.
                state.mig.remove(&placement);
                state.bare.insert(placement, profile.to_owned());
            } else if state.bare.get(&placement).is_none_or(|p| p != profile) {
                // Nothing of this profile there (a different profile is not ours).
                return Ok(());
            }
        }
        match self.inner_step(Step::DestroyGpuInstance) {
            Some(Fault::Crash) => {
                return Err(failed(gpu, "crashed between the two driver calls"));
            }
            Some(Fault::Fail) => {
                return Err(failed(gpu, "injected failure destroying the GPU instance"));
            }
            None => {}
        }
        if let Some(state) = self.lock().gpus.get_mut(&gpu.uuid) {
            state.bare.remove(&placement);
        }
        Ok(())
    }

    fn mig_instances(&self, gpu: &GpuRef) -> Result<Vec<MigInstance>, ControlError> {
        let inner = self.lock();
        let Some(state) = inner.gpus.get(&gpu.uuid) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<MigInstance> = state
            .mig
            .iter()
            .map(|(placement, (profile, uuid))| MigInstance {
                profile: profile.clone(),
                placement: *placement,
                uuid: Some(uuid.clone()),
            })
            .chain(state.bare.iter().map(|(placement, profile)| MigInstance {
                profile: profile.clone(),
                placement: *placement,
                uuid: None,
            }))
            .collect();
        out.sort_by_key(|m| m.placement);
        Ok(out)
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

fn failed(gpu: &GpuRef, reason: &str) -> ControlError {
    ControlError::Failed {
        op: "fake MIG operation",
        gpu: gpu.index,
        reason: reason.to_owned(),
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
        assert!(fake.snapshot()["GPU-0"].bare.is_empty());
    }

    #[test]
    fn a_crash_inside_create_or_destroy_leaves_a_bare_gpu_instance_that_destroy_removes() {
        let fake = FakeGpuControl::new();
        let p = Placement::new(0, 1);
        // Step 0 is the compute instance of the first creation.
        fake.set_faults(Some(Arc::new(FaultPlan::new(0, Fault::Crash))));
        assert!(fake.create_mig(&gpu(), "1g.10gb", p).is_err());
        let state = fake.snapshot()["GPU-0"].clone();
        assert!(state.mig.is_empty());
        assert_eq!(state.bare[&p], "1g.10gb");
        // The slices are taken: an overlapping instance is refused, as NVML would.
        assert!(
            fake.create_mig(&gpu(), "2g.20gb", Placement::new(0, 2))
                .is_err()
        );
        let listed = fake.mig_instances(&gpu()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uuid, None);
        fake.destroy_mig(&gpu(), "1g.10gb", p).unwrap();
        assert!(fake.snapshot()["GPU-0"].bare.is_empty());

        // Destroy: the compute instance goes, then the crash keeps the GPU instance.
        fake.set_faults(None);
        fake.create_mig(&gpu(), "1g.10gb", p).unwrap();
        fake.set_faults(Some(Arc::new(FaultPlan::new(0, Fault::Crash))));
        assert!(fake.destroy_mig(&gpu(), "1g.10gb", p).is_err());
        assert_eq!(fake.snapshot()["GPU-0"].bare[&p], "1g.10gb");
        assert!(fake.snapshot()["GPU-0"].mig.is_empty());
        fake.destroy_mig(&gpu(), "1g.10gb", p).unwrap();
        assert_eq!(fake.snapshot()["GPU-0"], FakeGpuState::default());

        // A failed compute instance leaves nothing, like the NVML implementation.
        fake.set_faults(Some(Arc::new(FaultPlan::new(0, Fault::Fail))));
        assert!(fake.create_mig(&gpu(), "1g.10gb", p).is_err());
        assert_eq!(fake.snapshot()["GPU-0"], FakeGpuState::default());
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
