#!/bin/sh
# ceiling.sh — part 9's roofline for a model on this machine: measure the memory
# read bandwidth (`silica doctor --bandwidth`, about 1 s), then the ceiling of
# generation speed by part9's roofline example and by `silica fit`.
#   part9/scripts/ceiling.sh [MODEL]      (default: models/demo)
# fit adds the KV cache of a full --ctx 512 context to the bytes read per token, so
# its ceiling is lower than the example's.  POSIX sh.  Timings vary; the arithmetic does not.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
silica=${SILICA:-$root/build/silica}
examples=${SILICA_EXAMPLES:-$(dirname "$silica")/examples}
model=${1:-$root/models/demo}
bw=$("$silica" doctor --bandwidth --json | sed -n 's/.*"read_bandwidth_gbps": *\([0-9.]*\).*/\1/p')
[ -n "$bw" ] || { echo "ceiling.sh: no bandwidth in silica doctor --json" >&2; exit 2; }
echo "read bandwidth: $bw GB/s"
"$examples/part9/roofline" "$model" "$bw"
"$silica" fit "$model" --ctx 512 --bandwidth "$bw" | sed -n '/^speed:/,$p'
