#!/usr/bin/env bash
# Check tessera's read-only NVML paths on a machine with a real NVIDIA GPU, next to
# nvidia-smi's own view:
#   1. build with --features nvml;
#   2. `tessera slices` from NVML (discovery + what the plugin would publish);
#   3. the NVML usage source (tests/gpu_usage.rs): processes, memory, SM samples, utilization,
#      and each PID's owner from /proc/<pid>/cgroup — of a GPU process this script starts when
#      python3 with torch is available (otherwise it says it skipped that);
#   4. nvidia-smi -q and nvidia-smi --query-compute-apps for comparison.
# It changes no GPU setting: no MIG mode change, no MPS daemon, no compute-mode or clock
# change; only queries. Bounded to under 5 minutes (every step has a timeout).
# Usage: scripts/gpu-check.sh [output-dir]   (default: target/gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/gpu-check}"
mkdir -p "$out"
deadline=$((SECONDS + 290))
left() { echo $((deadline - SECONDS > 5 ? deadline - SECONDS : 5)); }

command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: not a GPU machine" >&2; exit 2; }

echo "== nvidia-smi (before)"
timeout 30 nvidia-smi -q >"$out/nvidia-smi-q.txt"
timeout 30 nvidia-smi --query-gpu=index,uuid,name,memory.total,mig.mode.current,utilization.gpu --format=csv | tee "$out/gpus.csv"

echo "== build (--features nvml)"
timeout "$(left)" cargo build --features nvml --bin tessera
timeout "$(left)" cargo test --features nvml --test gpu_usage --no-run

echo "== tessera slices from NVML"
timeout 60 target/debug/tessera slices --node-name gpu-check --output yaml | tee "$out/slices.yaml" | head -80

gpu_pid=""
cleanup() { [[ -n "$gpu_pid" ]] && kill "$gpu_pid" 2>/dev/null || true; }
trap cleanup EXIT
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "== starting a GPU process (python3 + torch, 512 MiB, a matmul loop for 60 s)"
  python3 - <<'PY' &
import time, torch
x = torch.randn(8192, 8192, device="cuda")
end = time.time() + 60
while time.time() < end:
    y = x @ x
    torch.cuda.synchronize()
PY
  gpu_pid=$!
  sleep 10
else
  echo "== skipped: no python3 with CUDA-enabled torch, so no GPU process of ours to attribute"
fi

echo "== tessera usage source (NVML) and /proc owners"
TESSERA_GPU_CHECK_PID="$gpu_pid" timeout "$(left)" \
  cargo test --features nvml --test gpu_usage -- --ignored --nocapture | tee "$out/usage.txt"

echo "== nvidia-smi --query-compute-apps (compare pid and used memory)"
timeout 30 nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv | tee "$out/compute-apps.csv"
echo "== nvidia-smi pmon (one sample: per-process SM %)"
timeout 30 nvidia-smi pmon -c 1 | tee "$out/pmon.txt" || echo "(pmon not supported here)"

echo "done in ${SECONDS}s; outputs in $out"
