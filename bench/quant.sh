#!/usr/bin/env bash
# quant.sh — single-core throughput of the quantization library (bench_quant):
# MLX affine 4-bit g64 quantize/dequantize (targets: >= 500 MB/s of f16 input,
# >= 2 GB/s dequantize) and GGUF block (de)quantizers, with the best kernels
# of this CPU and with the portable scalar loops (SILICA_SIMD=scalar).
# Usage: bench/quant.sh [MiB of f16 input, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-64}
JOBS=$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" --target bench_quant >/dev/null
pin=()
command -v taskset >/dev/null 2>&1 && pin=(taskset -c 0)
echo "== best kernels for this CPU"
env -u SILICA_SIMD "${pin[@]}" ./build/tools/bench_quant "$MIB"
echo "== scalar (SILICA_SIMD=scalar)"
SILICA_SIMD=scalar "${pin[@]}" ./build/tools/bench_quant "$MIB"
