#!/bin/sh
# quantize_for_machine.sh — pick a quantization for a model and a machine's
# memory, then run `silica quantize` (MLX) or `silica convert --to gguf`.
#
#   part4/scripts/quantize_for_machine.sh MODEL_DIR RAM_GB [mlx|gguf] [OUT]
#
# Rule of thumb (weights must fit in ~60% of RAM, the rest is KV cache, the OS
# and the app): bytes = params x bits / 8 (+ ~3% for scales and biases at g64).
#   bits  recipe              quality (random-weight RMSE is not a guide; see part4/README.md)
#   8     --q-bits 8          near-lossless
#   6     mixed_4_6 / q6      very close to f16
#   4     --q-bits 4 (g64)    the default: good for >= 7B models
#   3.5   mixed_3_6           when 4-bit does not fit; v_proj/down_proj/lm_head keep 6 bits
#   3     mixed_3_4 / q3 g32  noticeable loss
#   2.5   mixed_2_6           last resort for very large models
# Popular models (parameters): Llama-3.2-1B 1.2e9, Llama-3.2-3B 3.2e9,
# Qwen3-4B 4.0e9, Mistral-7B 7.2e9, Llama-3.1-8B 8.0e9, Qwen3-14B 14.8e9,
# gemma-2-27b 27.2e9, Llama-3.3-70B 70.6e9.
set -eu
[ $# -ge 2 ] || { sed -n '2,20p' "$0"; exit 2; }
model=$1 ram=$2 target=${3:-mlx}
out=${4:-${model%/}-$target-q}
silica=${SILICA:-$(dirname "$0")/../../build/silica}
# parameters from the weight bytes of the source (f16/bf16: 2 bytes each)
bytes=$(find "$model" -maxdepth 1 \( -name '*.safetensors' -o -name '*.bin' \) -exec stat -c %s {} + |
        awk '{s+=$1} END {print s+0}')
params=$(awk -v b="$bytes" 'BEGIN {printf "%.0f", b / 2}')
budget=$(awk -v r="$ram" 'BEGIN {printf "%.0f", r * 0.6 * 1e9}')
pick() { awk -v p="$params" -v bud="$budget" -v bits="$1" 'BEGIN {exit !(p * (bits + 0.25) / 8 <= bud)}'; }
if pick 8; then mlx="--q-bits 8"; gguf=Q8_0
elif pick 6; then mlx="--quant-recipe mixed_4_6"; gguf=Q6_K
elif pick 4; then mlx="--q-bits 4 --q-group-size 64"; gguf=Q4_K
elif pick 3.5; then mlx="--quant-recipe mixed_3_6"; gguf=Q4_0
elif pick 3; then mlx="--quant-recipe mixed_3_4"; gguf=Q4_0
else mlx="--quant-recipe mixed_2_6"; gguf=Q4_0; fi
echo "model $model: ~$params parameters; ${ram} GB RAM -> budget $budget bytes"
if [ "$target" = gguf ]; then
    echo "+ silica convert $model $out.gguf --to gguf --q-type $gguf"
    exec "$silica" convert "$model" "$out.gguf" --to gguf --q-type "$gguf"
fi
echo "+ silica quantize $model $out $mlx --report"
# shellcheck disable=SC2086
exec "$silica" quantize "$model" "$out" $mlx --report
