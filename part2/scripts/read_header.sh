#!/bin/sh
# read_header.sh — part 2 by hand: take a safetensors file apart with od and dd only,
# then ask silica (part2's where_is example) where each tensor's bytes are.
#   part2/scripts/read_header.sh [FILE]     (default: models/sample/model.safetensors)
# Prints the 8-byte little-endian header length N, the N bytes of JSON header, and
# where_is's byte ranges, which start at 8 + N.  POSIX sh, od, dd.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
file=${1:-$root/models/sample/model.safetensors}
silica=${SILICA:-$root/build/silica}
examples=${SILICA_EXAMPLES:-$(dirname "$silica")/examples}
# u64 little-endian: the low 4 bytes suffice for any header under 4 GiB
n=$(od -An -tu4 -N4 "$file" | tr -d ' ')
echo "header length N = $n bytes (data starts at byte $((8 + n)))"
dd if="$file" bs=1 skip=8 count="$n" 2>/dev/null | head -c 400
echo " …"
"$examples/part2/where_is" "$file"
