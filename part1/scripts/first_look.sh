#!/bin/sh
# first_look.sh — part 1 in one go: what this machine has, what is in the sample
# checkpoint and the demo model, and the part1 example programs on them.
#   part1/scripts/first_look.sh          (after building: build/silica, build/examples/)
# silica: $SILICA, else build/silica of this repository.  POSIX sh; needs only the build.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
silica=${SILICA:-$root/build/silica}
examples=${SILICA_EXAMPLES:-$(dirname "$silica")/examples}
set -x
"$silica" doctor
"$silica" inspect "$root/models/sample"
"$silica" inspect "$root/models/demo"
"$examples/part1/mlx_example" "$root/models/demo"
"$examples/part1/pytorch_example" "$root/models/sample" 4
