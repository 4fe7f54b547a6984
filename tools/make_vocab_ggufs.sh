#!/usr/bin/env bash
# make_vocab_ggufs.sh — build the vocabulary-only GGUF test fixtures in
# tests/data/vocab_gguf/ with llama.cpp's own converter
# (convert_hf_to_gguf.py --vocab-only), one per tokenizer in
# tests/data/tokenizers/.
#
# Usage: tools/make_vocab_ggufs.sh LLAMA_CPP_DIR [OUT_DIR]
#   LLAMA_CPP_DIR  a llama.cpp source tree (github.com/ggml-org/llama.cpp)
#                  holding convert_hf_to_gguf.py, conversion/ and gguf-py/;
#                  the commit used for the committed files is in
#                  tests/data/README.md.
#   OUT_DIR        where NAME.gguf.gz go (default tests/data/vocab_gguf).
#   PYTHON         (environment) a Python with torch, transformers,
#                  sentencepiece and numpy; default python3.  The converter
#                  needs torch even for --vocab-only; keep it out of the test
#                  venv.
#
# Each model folder is the committed tokenizer.json + tokenizer_config.json
# plus a minimal config.json naming the architecture whose vocab path the
# converter takes for that model (hidden sizes are placeholders: no tensor is
# written).  Without a SentencePiece tokenizer.model (the test data holds
# tokenizer.json only) the converter takes its tokenizer.json paths: mistral
# through LlamaHfVocab (model "llama", every score -1000), gemma3 through
# the gpt2 path (its hash names the pre-tokenizer granite-embed-multi-311m,
# gemma4's raw-UTF-8 BPE).  A model the converter rejects is reported with
# its log and left out.
set -euo pipefail
LLAMA_CPP=${1:?usage: tools/make_vocab_ggufs.sh LLAMA_CPP_DIR [OUT_DIR]}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$REPO/tests/data/vocab_gguf}
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# name architecture vocab_size [chat_template.jinja from tests/data/templates]
MODELS=(
  "llama3 LlamaForCausalLM 128256"
  "qwen3 Qwen3ForCausalLM 151936"
  "mistral MistralForCausalLM 32000"
  "gemma3 Gemma3ForCausalLM 262144"
  "deepseek_v3 DeepseekV3ForCausalLM 129280"
  "gptoss GptOssForCausalLM 201088 openai-gpt-oss-120b.jinja"
)

config_json() { # arch vocab_size
  cat <<EOF
{"architectures": ["$1"], "vocab_size": $2, "hidden_size": 64, "intermediate_size": 128,
 "moe_intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
 "head_dim": 32, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "num_local_experts": 2, "num_experts_per_tok": 1, "n_routed_experts": 2, "n_shared_experts": 1,
 "kv_lora_rank": 16, "q_lora_rank": 16, "qk_nope_head_dim": 16, "qk_rope_head_dim": 16, "v_head_dim": 16,
 "first_k_dense_replace": 1, "moe_layer_freq": 1, "n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.0,
 "norm_topk_prob": true, "scoring_func": "sigmoid", "topk_method": "noaux_tc", "sliding_window": 128,
 "query_pre_attn_scalar": 32, "tie_word_embeddings": true}
EOF
}

for spec in "${MODELS[@]}"; do
  set -- $spec
  name=$1 arch=$2 nvocab=$3 tmpl=${4:-}
  dir=$WORK/$name
  mkdir -p "$dir"
  gunzip -c "$REPO/tests/data/tokenizers/$name/tokenizer.json.gz" >"$dir/tokenizer.json"
  gunzip -c "$REPO/tests/data/tokenizers/$name/tokenizer_config.json.gz" >"$dir/tokenizer_config.json"
  [ -n "$tmpl" ] && cp "$REPO/tests/data/templates/$tmpl" "$dir/chat_template.jinja"
  config_json "$arch" "$nvocab" >"$dir/config.json"
  echo "== $name ($arch)"
  if "$PY" "$LLAMA_CPP/convert_hf_to_gguf.py" "$dir" --vocab-only --outfile "$WORK/$name.gguf" \
      >"$WORK/$name.log" 2>&1; then
    gzip -9n -c "$WORK/$name.gguf" >"$OUT/$name.gguf.gz"
    grep -E "tokenizer.ggml.pre|pre-tokenizer|chkhsh" "$WORK/$name.log" | head -3 || true
    ls -l "$OUT/$name.gguf.gz"
  else
    echo "   not convertible: $(grep -E 'Error|error|raise' "$WORK/$name.log" | tail -1)"
    cp "$WORK/$name.log" "$OUT/$name.convert.log"
  fi
done
