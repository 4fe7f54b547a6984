#!/bin/sh
# quantize_for_machine.sh — let `silica fit` decide whether a model needs quantizing
# for a machine, and run the quantization it recommends.
#
#   part4/scripts/quantize_for_machine.sh MODEL [--ram SIZE | --profile P] [--ctx N]
#                                         [--to mlx|gguf] [--dry-run]
#
# MODEL: a model directory (or any name `silica fit` takes).  The machine: this one by
# default, `--ram 16G` for a machine like this one with 16 GB, `--profile 16G` for a
# 16 GB Mac.  `silica fit` reads only the tensor headers, adds the KV cache for --ctx
# (default 4096), compute buffers and overhead, and judges the total against the
# budget.  If the model fits as it is, nothing is written.  Otherwise fit's first
# recommendation — the best-quality quantization that fits, with its size — is run:
# `silica convert … --to mlx -q …` as fit prints it, or with --to gguf the GGUF block
# type of the same bit width (8 → Q8_0, 6 → Q6_K, 5 → Q5_0, 4 → Q4_K, fewer → Q4_0).
# --dry-run prints the command instead of running it.  silica: $SILICA, else
# build/silica next to this script's repository, else `silica` on PATH.  POSIX sh.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
silica=${SILICA:-$here/build/silica}
[ -x "$silica" ] || silica=silica
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit "$1"; }
[ $# -ge 1 ] || usage 2
model=$1; shift
machine='' ctx=4096 to=mlx dry=0
while [ $# -gt 0 ]; do
    case "$1" in
    --ram | --profile) [ $# -ge 2 ] || usage 2; machine="$1 $2"; shift ;;
    --ctx) [ $# -ge 2 ] || usage 2; ctx=$2; shift ;;
    --to) [ $# -ge 2 ] || usage 2; to=$2; shift ;;
    --dry-run) dry=1 ;;
    -h | --help) usage 0 ;;
    *) echo "quantize_for_machine.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
case "$to" in mlx | gguf) ;; *) echo "quantize_for_machine.sh: --to mlx or gguf, not '$to'" >&2; exit 2 ;; esac

# shellcheck disable=SC2086  # $machine: an option and its value, or nothing
json=$("$silica" fit "$model" $machine --ctx "$ctx" --json)
verdict=$(printf '%s\n' "$json" | sed -n 's/^{"model":"[^"]*",\("repo":"[^"]*",\)\{0,1\}"verdict":"\([a-z]*\)".*/\2/p')
target=$(printf '%s\n' "$json" | sed -n 's/.*"target":"\([^"]*\)".*/\1/p')
[ -n "$verdict" ] || { echo "quantize_for_machine.sh: no verdict in silica fit's output" >&2; exit 2; }
if [ "$verdict" != no ]; then
    echo "$model fits $target as it is ($verdict at $ctx tokens): nothing to quantize"
    exit 0
fi
cmd=$(printf '%s\n' "$json" |
      sed -n 's/.*"recommendations":\[{"kind":"quantize"[^}]*"command":"\([^"]*\)".*/\1/p')
[ -n "$cmd" ] || {
    echo "$model does not fit $target, and no quantization would make it fit: see \`silica fit $model $machine\`" >&2
    exit 1
}
what=$(printf '%s\n' "$json" | sed -n 's/.*"recommendations":\[{"kind":"quantize","what":"\([^"]*\)".*/\1/p')
echo "$model does not fit $target at $ctx tokens; silica fit recommends $what"
if [ "$to" = gguf ]; then
    bits=$(printf '%s\n' "$cmd" | sed -n 's/.*--q-bits \([0-9]\).*/\1/p; s/.*mixed_\([0-9]\)_[0-9].*/\1/p')
    case "${bits:-8}" in 8) q=Q8_0 ;; 6) q=Q6_K ;; 5) q=Q5_0 ;; 4) q=Q4_K ;; *) q=Q4_0 ;; esac
    out=${model%/}-$(echo "$q" | tr '[:upper:]' '[:lower:]').gguf
    set -- "$silica" convert "$model" "$out" --to gguf --q-type "$q"
else
    # fit's own command line, with this silica binary
    # shellcheck disable=SC2086  # fit quotes nothing: model paths with spaces are not supported here
    set -- "$silica" ${cmd#silica }
fi
echo "+ $*"
[ "$dry" = 1 ] || exec "$@"
