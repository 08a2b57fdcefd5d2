//! The NVML usage source on a real GPU: run by `scripts/gpu-check.sh` (ignored by default,
//! and compiled only with `--features nvml`). It prints every device sample and what the
//! host's `/proc` says about each process, and, when `TESSERA_GPU_CHECK_PID` names a GPU
//! process the script started, checks that NVML lists it with memory and that its cgroup
//! lookup succeeds. Read-only: no GPU setting is changed.

#![cfg(feature = "nvml")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tessera::usage::cgroup::{self, Lookup};
use tessera::usage::{NvmlUsageSource, UsageSource};

#[test]
#[ignore = "needs an NVIDIA GPU and driver; run by scripts/gpu-check.sh"]
fn nvml_usage_sample_next_to_proc() {
    let source = NvmlUsageSource::new().expect("NVML loads");
    println!("usage source: {}", source.describe());
    // Two samples: the second has per-process SM samples since the first.
    source.sample().expect("first sample");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let samples = source.sample().expect("second sample");
    let proc_dir = Path::new("/proc");
    let mut pids = Vec::new();
    for d in &samples {
        println!(
            "device {} parent {:?} utilization {:?}%",
            d.uuid, d.parent_uuid, d.utilization_percent
        );
        for p in &d.processes {
            let owner = cgroup::lookup(proc_dir, p.pid);
            println!(
                "  pid {} memory {:?} bytes sm {:?}% owner {:?}",
                p.pid, p.used_memory_bytes, p.sm_percent, owner
            );
            pids.push((p.pid, p.used_memory_bytes, owner));
        }
    }
    if let Some(pid) = std::env::var("TESSERA_GPU_CHECK_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        let (_, memory, owner) = pids
            .iter()
            .find(|(p, ..)| *p == pid)
            .unwrap_or_else(|| panic!("NVML does not list the started GPU process {pid}"));
        assert!(memory.is_some_and(|m| m > 0), "no memory for {pid}");
        assert!(
            matches!(owner, Lookup::Found(_)),
            "cgroup of {pid}: {owner:?}"
        );
    }
}
