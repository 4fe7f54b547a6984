#!/usr/bin/env bash
# popular.sh — one-line pulls of popular models into the silica store.
#   part7/scripts/popular.sh                         list the names and their repo ids
#   part7/scripts/popular.sh --dry-run NAME...       show the files and sizes a pull would fetch
#                                                    (asks the hub, downloads nothing)
#   part7/scripts/popular.sh NAME... [PULL OPTIONS]  pull them (silica on PATH or $SILICA)
# Options (--dry-run, --hf-cache, --jobs N, --json ...) go to every `silica pull`.
# Originals come in transformers layout (safetensors shards + config + tokenizer;
# original/ and Mistral's duplicate consolidated.safetensors are left out by the
# default selection); mlx-community builds are MLX 4-bit.  meta-llama, mistralai and
# google repos are gated: accept the license on huggingface.co and export HF_TOKEN.
# How each id was checked: part7/README.md ("Popular models").
set -euo pipefail
S=${SILICA:-silica}
declare -A M=(
  [llama-3.2-1b]="meta-llama/Llama-3.2-1B-Instruct"
  [llama-3.2-3b]="meta-llama/Llama-3.2-3B-Instruct"
  [llama-3.2-1b-mlx4]="mlx-community/Llama-3.2-1B-Instruct-4bit"
  [llama-3.2-3b-mlx4]="mlx-community/Llama-3.2-3B-Instruct-4bit"
  [qwen2.5-0.5b]="Qwen/Qwen2.5-0.5B-Instruct"
  [qwen2.5-1.5b]="Qwen/Qwen2.5-1.5B-Instruct"
  [qwen2.5-7b]="Qwen/Qwen2.5-7B-Instruct"
  [qwen2.5-7b-mlx4]="mlx-community/Qwen2.5-7B-Instruct-4bit"
  [qwen3-0.6b]="Qwen/Qwen3-0.6B"
  [qwen3-4b]="Qwen/Qwen3-4B"
  [qwen3-8b]="Qwen/Qwen3-8B"
  [qwen3-4b-mlx4]="mlx-community/Qwen3-4B-4bit"
  [qwen3-8b-mlx4]="mlx-community/Qwen3-8B-4bit"
  [mistral-7b]="mistralai/Mistral-7B-Instruct-v0.3"
  [mistral-7b-mlx4]="mlx-community/Mistral-7B-Instruct-v0.3-4bit"
  [gemma-2-2b]="google/gemma-2-2b-it"
  [gemma-2-9b]="google/gemma-2-9b-it"
  [gemma-2-2b-mlx4]="mlx-community/gemma-2-2b-it-4bit"
  [gemma-3-1b]="google/gemma-3-1b-it"
  [gemma-3-4b]="google/gemma-3-4b-it"
  [gemma-3-1b-mlx4]="mlx-community/gemma-3-1b-it-4bit"
  [gemma-3-4b-mlx4]="mlx-community/gemma-3-4b-it-4bit"
  [phi-3.5-mini]="microsoft/Phi-3.5-mini-instruct"
  [phi-3.5-mini-mlx4]="mlx-community/Phi-3.5-mini-instruct-4bit"
)
names=() opts=()
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --jobs | --endpoint | --include | --exclude) opts+=("$1" "${2:?$1 needs a value}"); shift ;;
    -*) opts+=("$1") ;;
    *) names+=("$1") ;;
    esac
    shift
done
if [ ${#names[@]} -eq 0 ]; then
    for k in $(printf '%s\n' "${!M[@]}" | sort); do printf '%-20s %s pull %s\n' "$k" "$S" "${M[$k]}"; done
    exit 0
fi
for k in "${names[@]}"; do
    [ -n "${M[$k]:-}" ] || { echo "popular.sh: unknown model '$k' (run without arguments for the list)" >&2; exit 2; }
done
for k in "${names[@]}"; do
    "$S" pull "${M[$k]}" ${opts[@]+"${opts[@]}"}
done
