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
    /// Applying a GPU's sharing setting.
    ApplySharing,
    /// Writing the CDI spec.
    WriteCdi,
    /// Writing the checkpoint with the call's outcomes: `PrepareCompleted` for the claims
    /// set up, the failed ones removed (once per call).
    RecordPrepareCompleted,
    /// Writing the checkpoint with the call's claims `UnprepareStarted` (once per call).
    RecordUnprepareStarted,
    /// Deleting the CDI spec.
    DeleteCdi,
    /// Clearing a GPU's sharing setting.
    ClearSharing,
    /// Destroying a MIG instance.
    DestroyMig,
    /// Writing the checkpoint without the call's torn-down claims (once per call).
    RemoveRecord,
}

/// What happens at the chosen step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The step fails with [`PrepareError::Injected`]; prepare handles it like any error.
    Fail,
    /// The step never returns: the process "dies" there.
    Crash,
}

/// Fire `fault` at the `at`-th step (counting from 0) seen after installation.
#[derive(Debug)]
pub struct FaultPlan {
    at: usize,
    fault: Fault,
    seen: Mutex<Vec<Step>>,
    fired: Notify,
}

impl FaultPlan {
    /// A plan firing `fault` at step number `at`.
    pub fn new(at: usize, fault: Fault) -> Self {
        FaultPlan {
            at,
            fault,
            seen: Mutex::new(Vec::new()),
            fired: Notify::new(),
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
        let index = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.push(step);
            seen.len() - 1
        };
        if index != self.at {
            return Ok(());
        }
        self.fired.notify_waiters();
        match self.fault {
            Fault::Fail => Err(PrepareError::Injected { step }),
            Fault::Crash => std::future::pending().await,
        }
    }
}
