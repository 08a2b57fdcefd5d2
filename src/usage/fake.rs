//! The fake [`UsageSource`]: processes, memory and utilization set by tests, benches and demos
//! (a YAML file in the form of `Vec<DeviceSample>`, or samples set in memory).

use std::sync::RwLock;

use super::{DeviceSample, MAX_DEVICES, MAX_PROCESSES_PER_DEVICE, UsageError, UsageSource};

/// GPUs whose processes are whatever was last [`set`](FakeUsageSource::set).
#[derive(Debug, Default)]
pub struct FakeUsageSource {
    samples: RwLock<Vec<DeviceSample>>,
}

impl FakeUsageSource {
    /// A source reporting `samples`.
    pub fn new(samples: Vec<DeviceSample>) -> Self {
        FakeUsageSource {
            samples: RwLock::new(samples),
        }
    }

    /// Replace what the next [`UsageSource::sample`] reports (a process starting or exiting).
    pub fn set(&self, samples: Vec<DeviceSample>) {
        let mut guard = self
            .samples
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = samples;
    }
}

impl UsageSource for FakeUsageSource {
    fn sample(&self) -> Result<Vec<DeviceSample>, UsageError> {
        let guard = self
            .samples
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.len() > MAX_DEVICES {
            return Err(UsageError::TooManyDevices {
                found: guard.len(),
                max: MAX_DEVICES,
            });
        }
        // Same bound as the NVML source: a device reporting more processes is truncated.
        Ok(guard
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.processes.truncate(MAX_PROCESSES_PER_DEVICE);
                d
            })
            .collect())
    }

    fn describe(&self) -> String {
        "fake GPU usage".to_owned()
    }
}
