#!/bin/sh
# compare_demo.sh — part 8 on the demo model: make a PyTorch checkpoint of it,
# convert that to MLX and GGUF, and compare all of them on every engine.
#   part8/scripts/compare_demo.sh [OUT]     (default: /tmp/silica-part8)
# Writes OUT/report.html and OUT/kld.svg and prints the table.  ENGINES=silica,mlx
# limits the engines (default: every engine; a missing framework says "not installed").
# POSIX sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
silica=${SILICA:-$root/build/silica}
out=${1:-/tmp/silica-part8}
mkdir -p "$out"
rm -rf "$out/demo-pt" "$out/demo-mlx-q4" "$out/demo-Q4_0.gguf"
head -c 4000 "$root/data/heldout/bisect.py" > "$out/calib.txt"
set -x
# 1. the PyTorch checkpoint (pytorch_model.bin, f32) of the demo model
"$silica" convert "$root/models/demo" "$out/demo-pt" --to torch -d --dtype f32
# 2. its MLX and GGUF conversions
"$silica" convert "$out/demo-pt" "$out/demo-mlx-q4" --to mlx -q --q-bits 4
"$silica" convert "$out/demo-pt" "$out/demo-Q4_0.gguf" --to gguf --q-type Q4_0
# 3. every model on every engine, against the checkpoint on silica's engine
"$silica" compare "$out/demo-pt" "$out/demo-mlx-q4" "$out/demo-Q4_0.gguf" --quantize q8,mixed_3_6,Q8_0 \
    ${ENGINES:+--engines "$ENGINES"} --text "$out/calib.txt" --ctx 256 --max-tokens 16 --html "$out/report.html" --svg "$out/kld.svg"
