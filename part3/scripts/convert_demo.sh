#!/bin/sh
# convert_demo.sh — part 3 on the demo model: MLX 4-bit → GGUF (lossless Q4_1),
# → transformers (dequantized f16), → MLX 8-bit requantized from the f16, and what
# each one is (silica inspect's summary lines).
#   part3/scripts/convert_demo.sh OUTDIR       (OUTDIR must not exist yet)
# silica: $SILICA, else build/silica of this repository.  POSIX sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
silica=${SILICA:-$root/build/silica}
[ $# -eq 1 ] || { echo "usage: convert_demo.sh OUTDIR" >&2; exit 2; }
out=$1
[ ! -e "$out" ] || { echo "convert_demo.sh: $out exists" >&2; exit 2; }
mkdir -p "$out"
set -x
"$silica" convert "$root/models/demo" "$out/demo.gguf" --to gguf
"$silica" convert "$root/models/demo" "$out/demo-hf" --to hf --dtype f16
"$silica" convert "$out/demo-hf" "$out/demo-mlx-q8" --to mlx -q --q-bits 8
set +x
for m in "$root/models/demo" "$out/demo.gguf" "$out/demo-hf" "$out/demo-mlx-q8"; do
    printf '%s: ' "${m##*/}"
    "$silica" inspect "$m" | sed -n 's/^bytes: *//p'
done
