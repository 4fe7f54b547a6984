#!/bin/sh
# demo_tour.sh — part 5 on the demo model: text → ids → text, then generation.
#   part5/scripts/demo_tour.sh ["PROMPT"]     (default: def fibonacci(n):)
# Greedy decoding of a named model is deterministic, so the output is the same on
# every machine with the same kernels' rounding.  POSIX sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
silica=${SILICA:-$root/build/silica}
prompt=${1:-"def fibonacci(n):"}
set -x
"$silica" tokenize "$root/models/demo" --text "$prompt"
ids=$("$silica" tokenize "$root/models/demo" --text "$prompt" --json |
      sed -n 's/^{"ids": \[\([0-9, ]*\)\].*/\1/p' | tr -d ' ')
"$silica" detokenize "$root/models/demo" --ids "$ids"
"$silica" run "$root/models/demo" "$prompt" --max-tokens 24
