//! Committing a fit to the GPUs of a node, and giving it back.
//!
//! Both are all-or-nothing: every assignment is checked against a copy of its GPU first, and
//! the GPUs change only if all of them succeed. A fit computed on an older state (the
//! extender's cache moved on) is refused rather than half applied.

use super::{
    Assignment, COMPUTE_PERCENT, GpuPartitioning, Partition, PartitionError, PartitionFit,
    PartitionGpu,
};

/// Commits `fit` to `gpus` (the same slice, or the same node's GPUs in the same order, that
/// `fit` was computed on).
pub fn apply(fit: &PartitionFit, gpus: &mut [PartitionGpu]) -> Result<(), PartitionError> {
    change(fit, gpus, take)
}

/// Gives back what [`apply`] took; the GPUs return to the state they had before it (other
/// fits applied in between stay as they are).
pub fn release(fit: &PartitionFit, gpus: &mut [PartitionGpu]) -> Result<(), PartitionError> {
    change(fit, gpus, give_back)
}

fn change(
    fit: &PartitionFit,
    gpus: &mut [PartitionGpu],
    step: fn(&mut PartitionGpu, &Assignment) -> Result<(), PartitionError>,
) -> Result<(), PartitionError> {
    let count = gpus.len();
    let mut changed: Vec<(usize, PartitionGpu)> = Vec::with_capacity(fit.assignments.len());
    for a in &fit.assignments {
        if changed.iter().any(|(i, _)| *i == a.gpu) {
            return Err(PartitionError::DuplicateGpu { gpu: a.gpu });
        }
        let mut next = gpus
            .get(a.gpu)
            .ok_or(PartitionError::NoSuchGpu {
                gpu: a.gpu,
                gpus: count,
            })?
            .clone();
        step(&mut next, a)?;
        changed.push((a.gpu, next));
    }
    for (index, next) in changed {
        if let Some(slot) = gpus.get_mut(index) {
            *slot = next;
        }
    }
    Ok(())
}

fn wrong_kind(a: &Assignment) -> PartitionError {
    let kind = match a.partition {
        Partition::Whole => "whole",
        Partition::Mig { .. } => "MIG",
        Partition::Shared { .. } => "shared",
    };
    PartitionError::WrongKind { gpu: a.gpu, kind }
}

fn take(gpu: &mut PartitionGpu, a: &Assignment) -> Result<(), PartitionError> {
    let memory = gpu.memory_mib;
    match (&mut gpu.state, a.partition) {
        (GpuPartitioning::Whole { taken }, Partition::Whole) => {
            if *taken {
                return Err(PartitionError::AlreadyTaken);
            }
            *taken = true;
        }
        (
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken,
            },
            Partition::Whole,
        ) => {
            if *whole_taken || !layout.instances().is_empty() {
                return Err(PartitionError::AlreadyTaken);
            }
            *whole_taken = true;
        }
        (GpuPartitioning::StaticMig { layout }, Partition::Mig { profile, placement }) => {
            let index = layout
                .position(profile, placement)
                .ok_or(PartitionError::NoSuchInstance)?;
            layout.set_taken(index, true)?;
        }
        (
            GpuPartitioning::DynamicMig {
                layout,
                whole_taken,
            },
            Partition::Mig { profile, placement },
        ) => {
            if *whole_taken {
                return Err(PartitionError::AlreadyTaken);
            }
            layout.place(profile, placement)?;
        }
        (
            GpuPartitioning::Shared {
                used_memory_mib,
                used_compute_pct,
            },
            Partition::Shared {
                memory_mib,
                compute_pct,
            },
        ) => {
            let new_memory = used_memory_mib
                .checked_add(memory_mib)
                .filter(|m| *m <= memory)
                .ok_or(PartitionError::ShareExceeded)?;
            let new_compute = used_compute_pct
                .checked_add(compute_pct)
                .filter(|c| *c <= COMPUTE_PERCENT)
                .ok_or(PartitionError::ShareExceeded)?;
            *used_memory_mib = new_memory;
            *used_compute_pct = new_compute;
        }
        _ => return Err(wrong_kind(a)),
    }
    Ok(())
}

fn give_back(gpu: &mut PartitionGpu, a: &Assignment) -> Result<(), PartitionError> {
    match (&mut gpu.state, a.partition) {
        (GpuPartitioning::Whole { taken }, Partition::Whole)
        | (
            GpuPartitioning::DynamicMig {
                whole_taken: taken, ..
            },
            Partition::Whole,
        ) => {
            if !*taken {
                return Err(PartitionError::NotTaken);
            }
            *taken = false;
        }
        (GpuPartitioning::StaticMig { layout }, Partition::Mig { profile, placement }) => {
            let index = layout
                .position(profile, placement)
                .ok_or(PartitionError::NoSuchInstance)?;
            layout.set_taken(index, false)?;
        }
        (GpuPartitioning::DynamicMig { layout, .. }, Partition::Mig { profile, placement }) => {
            layout.remove(profile, placement)?;
        }
        (
            GpuPartitioning::Shared {
                used_memory_mib,
                used_compute_pct,
            },
            Partition::Shared {
                memory_mib,
                compute_pct,
            },
        ) => {
            let new_memory = used_memory_mib
                .checked_sub(memory_mib)
                .ok_or(PartitionError::NotTaken)?;
            let new_compute = used_compute_pct
                .checked_sub(compute_pct)
                .ok_or(PartitionError::NotTaken)?;
            *used_memory_mib = new_memory;
            *used_compute_pct = new_compute;
        }
        _ => return Err(wrong_kind(a)),
    }
    Ok(())
}
