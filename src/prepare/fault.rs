//! Failpoints in the prepare sequence, so tests can fail or "crash" the plugin at every step
//! that changes something (checkpoint, hardware, CDI) and check what a restart finds.
//!
//! A crash is modelled as the step never returning: the test drops the pending prepare
//! future, exactly as a killed process stops, with no rollback and no further writes. In
//! production no plan is installed and each step costs one `Option` check.

use std::sync::Mutex;

use tokio::sync::Notify;

use super::error::PrepareError;

/// A point in prepare or unprepare just before something changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Writing the checkpoint with the call's claims `PrepareStarted` (once per call).
    RecordPrepareStarted,
    /// Creating a MIG instance.
    CreateMig,
    /// Inside creating a MIG instance: the GPU instance exists, its compute instance not yet
    /// (reported by the fake GPUs, which model the two driver calls).
    CreateComputeInstance,
    /// Applying a GPU's sharing setting.
    ApplySharing,
    /// Starting a device's MPS control daemon (the first MPS share of the device, or one
    /// found dead).
    StartMps,
    /// Writing the MPS daemon record after a daemon was started, stopped or given other
    /// clients: a crash here leaves a daemon the record does not name.
    RecordMpsDaemons,
    /// Writing the CDI spec.
    WriteCdi,
    /// Writing the checkpoint with the call's outcomes: `PrepareCompleted` for the claims
    /// set up, the failed ones removed (once per call).
    RecordPrepareCompleted,
    /// Writing the checkpoint with the call's claims `UnprepareStarted` (once per call).
    RecordUnprepareStarted,
    /// Deleting the CDI spec.
    DeleteCdi,
    /// Stopping a device's MPS control daemon (its last MPS share is going).
    StopMps,
    /// Clearing a GPU's sharing setting.
    ClearSharing,
    /// Destroying a MIG instance.
    DestroyMig,
    /// Inside destroying a MIG instance: the compute instance is gone, the GPU instance not
    /// yet (reported by the fake GPUs).
    DestroyGpuInstance,
    /// Writing the checkpoint without the call's torn-down claims (once per call).
    RemoveRecord,
    /// Writing the checkpoint at recovery: a new boot, a corrupt file moved aside, claims
    /// rolled back.
    RecordRecovery,
    /// Moving a corrupt checkpoint aside at recovery.
    MoveCorrupt,
    /// Removing a CDI spec no recorded claim accounts for, at recovery.
    RemoveOrphanCdi,
}

/// What happens at the chosen step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The step fails with [`PrepareError::Injected`]; prepare handles it like any error.
    Fail,
    /// The step never returns: the process "dies" there.
    Crash,
}

/// Fire `fault` at the `at`-th step (counting from 0) seen after installation; or, for a
/// persistent failure, fail every occurrence of some steps.
#[derive(Debug)]
pub struct FaultPlan {
    at: usize,
    fault: Fault,
    always: Vec<Step>,
    seen: Mutex<Vec<Step>>,
    fired: Notify,
}

impl FaultPlan {
    /// A plan firing `fault` at step number `at`.
    pub fn new(at: usize, fault: Fault) -> Self {
        FaultPlan {
            at,
            fault,
            always: Vec::new(),
            seen: Mutex::new(Vec::new()),
            fired: Notify::new(),
        }
    }

    /// A plan failing every occurrence of `steps`, for as long as it is installed: a
    /// persistent fault (a read-only disk, a driver that refuses every call).
    pub fn always_failing(steps: &[Step]) -> Self {
        FaultPlan {
            always: steps.to_vec(),
            ..FaultPlan::new(usize::MAX, Fault::Fail)
        }
    }

    /// Steps reached so far, in order (including the one that fired).
    pub fn seen(&self) -> Vec<Step> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the fault has fired.
    pub fn has_fired(&self) -> bool {
        self.seen().len() > self.at
    }

    /// Whether a [`Fault::Crash`] has fired: the "process" is dead.
    pub fn crashed(&self) -> bool {
        self.fault == Fault::Crash && self.has_fired()
    }

    /// Resolves once the fault has fired.
    pub async fn fired(&self) {
        loop {
            let notified = self.fired.notified();
            if self.has_fired() {
                return;
            }
            notified.await;
        }
    }

    /// Called by prepare before `step`.
    pub(crate) async fn check(&self, step: Step) -> Result<(), PrepareError> {
        match self.check_blocking(step) {
            None => Ok(()),
            Some(Fault::Fail) => Err(PrepareError::Injected { step }),
            Some(Fault::Crash) => std::future::pending().await,
        }
    }

    /// Record `step` and say which fault, if any, fires there: for code that cannot wait
    /// (the fake GPUs run on blocking threads). On [`Fault::Crash`] the caller must stop
    /// doing anything and return; the test drops the call that was waiting on it.
    pub fn check_blocking(&self, step: Step) -> Option<Fault> {
        let index = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.push(step);
            seen.len() - 1
        };
        if self.always.contains(&step) {
            return Some(Fault::Fail);
        }
        if index != self.at {
            return None;
        }
        self.fired.notify_waiters();
        Some(self.fault)
    }
}
