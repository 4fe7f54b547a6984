#!/usr/bin/env bash
# dtype.sh — single-core throughput of the bulk dtype converters: builds
# Release (build/) and runs build/tools/bench_dtype on the best kernels of this
# CPU and on the scalar path, printing GB/s of f32->bf16, f32->f16, f16->f32,
# bf16->f32 and the ratio to memcpy of the same bytes (target: >= 2 GB/s).
# Usage: bench/dtype.sh [MiB of f32 input, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-64}
JOBS=$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" --target bench_dtype >/dev/null
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c 0)
echo "== best kernels for this CPU"
env -u SILICA_SIMD "${pin[@]}" ./build/tools/bench_dtype "$MIB"
echo "== scalar (SILICA_SIMD=scalar)"
SILICA_SIMD=scalar "${pin[@]}" ./build/tools/bench_dtype "$MIB"
