#!/usr/bin/env bash
# llama_cpp_check.sh — run silica's GGUF exports through a real llama.cpp and
# record the outcome in tools/llama_cpp_check.result.json.
#
#   LLAMA_CPP=/path/to/llama.cpp tools/llama_cpp_check.sh [SILICA_BIN]
#
# LLAMA_CPP is a llama.cpp source tree built with cmake (build/bin holds
# libllama.so, llama-quantize and llama-perplexity); when it is not a git
# checkout (a `git archive` export), LLAMA_CPP_COMMIT names its commit.  For each case of tools/llama_cpp_check.py
# (models/demo MLX 4-bit -> Q4_1, Q4_K, Q6_K; the random-weight reference
# models of llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi3 with a
# byte-level tokenizer -> F16 / F32 / Q8_0 / Q4_0), silica writes the GGUF,
# llama.cpp decodes greedily through its C API (tools/llama_cpp_greedy.c,
# compiled here against LLAMA_CPP), and the json records the GGUF's sha256,
# llama.cpp's token ids and text, and the llama.cpp commit.  Then
# llama-quantize --pure and `silica quantize --pure` turn the same F16 GGUF into
# Q4_K / Q6_K, and llama-quantize and `silica quantize` turn three F16 GGUFs
# (models/demo, the qwen3 and phi3 reference models) into every named mix
# (Q4_K_M, Q3_K_S, IQ4_NL, ...); every tensor's type and bytes are compared.
# tests/py/test_llama_cpp_check.py replays the record without llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_CPP:?set LLAMA_CPP to a built llama.cpp source tree}"
SILICA_BIN=${1:-${SILICA_BIN:-build/silica}}
PY=${PYTHON:-.venv/bin/python}
BIN=$LLAMA_CPP/build/bin
for f in "$SILICA_BIN" "$BIN/llama-quantize" "$LLAMA_CPP/include/llama.h"; do
    [ -e "$f" ] || { echo "llama_cpp_check.sh: $f not found" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
${CC:-cc} -O2 -Wall -Wextra -o "$WORK/llama_cpp_greedy" tools/llama_cpp_greedy.c \
    -I"$LLAMA_CPP/include" -I"$LLAMA_CPP/ggml/include" -L"$BIN" -lllama -lggml -lggml-base \
    -Wl,-rpath,"$BIN"
"$PY" tools/llama_cpp_check.py run "$SILICA_BIN" "$LLAMA_CPP" "$WORK/llama_cpp_greedy" "$WORK"
echo "wrote tools/llama_cpp_check.result.json"
