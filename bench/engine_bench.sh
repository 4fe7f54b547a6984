#!/usr/bin/env bash
# engine_bench.sh — silica's CPU engine beside llama.cpp on the same random-weight Llama shapes:
# bench/engine_bench.py does the work (its --help lists every option); this wrapper keeps the
# environment-variable interface part9/README.md documents.
#
#   THREADS="2 8 16"  thread counts                 DEPTHS="0 4096"   KV depths (llama-bench -d)
#   PP=512 TG=64      prompt / generated tokens     REPEAT=3          runs per test (mean)
#   SHAPE=1b|8b       Llama-3.2-1B / Llama-3.1-8B    LAYERS            default 16 (1b) / 8 (8b)
#   FORMATS=f16,q8_0,q4_0,mlx8,mlx4 (also bf16, q4_k, q6_k, mlx8g32, mlx4g32)
#   FA="auto"         llama.cpp flash attention: on, off, auto, or a list "on,off"
#   LLAMA_BENCH       llama-bench of a llama.cpp build (LLAMA_BENCH2 a second one, e.g. without AMX)
#   LLAMA_ARGS        extra llama-bench flags, e.g. "--poll 0";  SILICA, WORK, PY, JSON (write every run)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SILICA=${SILICA:-$ROOT/build-rel/silica}
[ "${SMALL:-0}" = 1 ] && LAYERS=${LAYERS:-4}   # 4 layers: the head is a larger share
if [ ! -x "$SILICA" ]; then
  cmake -S "$ROOT" -B "$ROOT/build-rel" -DCMAKE_BUILD_TYPE=Release -DSILICA_TESTS=OFF >/dev/null
  cmake --build "$ROOT/build-rel" -j --target silica >/dev/null
fi
args=(--silica "$SILICA" --work "${WORK:-/tmp/silica-engine-bench}" --shape "${SHAPE:-1b}" --layers "${LAYERS:-0}"
      -t "$(echo "${THREADS:-2}" | tr ' ' ',')" -d "$(echo "${DEPTHS:-0}" | tr ' ' ',')" --fa "${FA:-auto}"
      -p "${PP:-512}" -n "${TG:-64}" -r "${REPEAT:-3}" --formats "${FORMATS:-f16,q8_0,q4_0,mlx8,mlx4}")
LLAMA_BENCH=${LLAMA_BENCH:-/tmp/j2/llama.cpp/build/bin/llama-bench}
if [ -x "$LLAMA_BENCH" ]; then args+=(--llama "llama.cpp=$LLAMA_BENCH"); else
  echo "llama-bench not found at $LLAMA_BENCH: llama.cpp columns left empty" >&2; fi
[ -n "${LLAMA_BENCH2:-}" ] && args+=(--llama "${LLAMA_NAME2:-second}=$LLAMA_BENCH2")
[ -n "${LLAMA_ARGS:-}" ] && args+=(--llama-args "$LLAMA_ARGS")
[ -n "${JSON:-}" ] && args+=(--json "$JSON")
exec "${PY:-python3}" "$ROOT/bench/engine_bench.py" "${args[@]}" "$@"
