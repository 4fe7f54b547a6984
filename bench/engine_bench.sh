#!/usr/bin/env bash
# engine_bench.sh — prompt / generation tokens per second and peak RSS of the
# engine on a generated Llama-3.2-1B-shaped model (random weights, written
# by numpy + safetensors under $WORK, never committed) at f16, MLX 8-bit and
# MLX 4-bit (g64), side by side with llama.cpp (built from source OUTSIDE
# the repo) on GGUF versions of the same weights (F16, Q8_0, Q4_0), plus the
# memory-bandwidth roofline: bytes read per generated token / measured read
# bandwidth = the fastest generation the memory allows.
#
# usage: bench/engine_bench.sh            (env: SILICA, LLAMA_BENCH, WORK,
#        THREADS=2, PP=64, TG=32, PY, SMALL=1 for a 4-layer quick check)
# SILICA defaults to build-rel/silica (built here if absent, Release);
# LLAMA_BENCH to /tmp/j2/llama.cpp/build/bin/llama-bench (skipped if absent:
# build it with cmake -DGGML_NATIVE=ON, see shared/specs/gguf-llamacpp.md §D).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/silica-engine-bench}
THREADS=${THREADS:-2}
PP=${PP:-64}
TG=${TG:-32}
PY=${PY:-python3}
SILICA=${SILICA:-$ROOT/build-rel/silica}
LLAMA_BENCH=${LLAMA_BENCH:-/tmp/j2/llama.cpp/build/bin/llama-bench}
SHARED=${SILICA_SHARED:-$ROOT/../shared}
LAYERS=16
[ "${SMALL:-0}" = 1 ] && LAYERS=4

if [ ! -x "$SILICA" ]; then
  cmake -S "$ROOT" -B "$ROOT/build-rel" -DCMAKE_BUILD_TYPE=Release -DSILICA_TESTS=OFF >/dev/null
  cmake --build "$ROOT/build-rel" -j2 --target silica >/dev/null
fi
mkdir -p "$WORK"

# ---- the model: Llama-3.2-1B shapes (hidden 2048, 16 layers, 32/8 heads, ffn 8192, vocab 128256, tied)
HF="$WORK/hf-f16-L$LAYERS"
if [ ! -f "$HF/model.safetensors" ]; then
  "$PY" - "$HF" "$LAYERS" "$SHARED" <<'EOF'
import gzip, json, shutil, sys
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
d, L, shared = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
d.mkdir(parents=True, exist_ok=True)
H, I, V, NH, KV, HD = 2048, 8192, 128256, 32, 8, 64
rng = np.random.default_rng(0)
def m(r, c):  # f16 random normal / sqrt(fan-in), generated in slabs to bound memory
    out = np.empty((r, c), np.float16)
    for i in range(0, r, 4096):
        out[i:i + 4096] = (rng.standard_normal((min(4096, r - i), c), dtype=np.float32) / np.sqrt(c)).astype(np.float16)
    return out
w = {"model.embed_tokens.weight": m(V, H), "model.norm.weight": np.ones(H, np.float16)}
for l in range(L):
    p = f"model.layers.{l}."
    w.update({p + "self_attn.q_proj.weight": m(H, H), p + "self_attn.k_proj.weight": m(KV * HD, H),
              p + "self_attn.v_proj.weight": m(KV * HD, H), p + "self_attn.o_proj.weight": m(H, H),
              p + "mlp.gate_proj.weight": m(I, H), p + "mlp.up_proj.weight": m(I, H), p + "mlp.down_proj.weight": m(H, I),
              p + "input_layernorm.weight": np.ones(H, np.float16),
              p + "post_attention_layernorm.weight": np.ones(H, np.float16)})
save_file(w, str(d / "model.safetensors"))
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
       "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV, "head_dim": HD,
       "rms_norm_eps": 1e-5, "vocab_size": V, "max_position_embeddings": 131072, "tie_word_embeddings": True,
       "rope_theta": 500000.0, "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
       "torch_dtype": "float16"}
(d / "config.json").write_text(json.dumps(cfg, indent=2))
src = shared / "tokenizers" / "llama3"
with gzip.open(src / "tokenizer.json.gz", "rb") as f:
    (d / "tokenizer.json").write_bytes(f.read())
shutil.copy(src / "tokenizer_config.json", d / "tokenizer_config.json")
EOF
fi
for b in 8 4; do
  [ -d "$WORK/mlx-q$b-L$LAYERS" ] || "$SILICA" convert "$HF" "$WORK/mlx-q$b-L$LAYERS" --to mlx -q --q-bits $b --q-group-size 64 >/dev/null
done
for t in F16 Q8_0 Q4_0; do
  [ -f "$WORK/gguf-$t-L$LAYERS.gguf" ] || "$SILICA" convert "$HF" "$WORK/gguf-$t-L$LAYERS.gguf" --to gguf --q-type $t >/dev/null
done

BW=$("$SILICA" doctor --json --bandwidth | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["memory"]["read_bandwidth_gbps"])')
IDS=$("$PY" -c "import random; random.seed(1); print(','.join(str(random.randrange(1000, 120000)) for _ in range($PP)))")

# weight bytes one generated token streams: every layer matrix + the head (tied: the embedding), not the
# embedding gather.  From the checkpoint listing, so it is the bytes really stored (scales included).
bytes_per_token() {
  "$PY" - "$1" <<'EOF'
import json, struct, sys
from pathlib import Path
p = Path(sys.argv[1])
total = 0
if p.suffix == ".gguf":
    import gguf
    r = gguf.GGUFReader(str(p))
    for t in r.tensors:
        if len(t.shape) >= 2 or t.name == "token_embd.weight":
            total += int(t.n_bytes)
else:
    for f in sorted(p.glob("*.safetensors")):
        with open(f, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            h = json.loads(fh.read(n))
        for k, v in h.items():
            if k != "__metadata__" and not k.endswith("norm.weight"):
                total += v["data_offsets"][1] - v["data_offsets"][0]
print(total)
EOF
}

printf '%s\n' "engine benchmark: Llama-3.2-1B shapes ($LAYERS layers, random weights), $THREADS threads, prompt $PP, generate $TG" \
  "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); read bandwidth ${BW} GB/s; silica qkernels: $("$SILICA" doctor --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["cpu"]["dtype_kernels"])')"
printf '%-22s %10s %10s %10s %12s %12s\n' "run" "pp tok/s" "tg tok/s" "RSS MiB" "MB/token" "roofline tg"

declare -A SIL_TG SIL_PP
run_silica() {  # name path
  local out
  out=$(/usr/bin/time -f '%M' "$SILICA" run "$2" --ids "$IDS" --max-tokens "$TG" --threads "$THREADS" --json 2>"$WORK/time.txt")
  local rss_kb; rss_kb=$(tail -1 "$WORK/time.txt")
  local bpt; bpt=$(bytes_per_token "$2")
  "$PY" - "$1" "$out" "$rss_kb" "$bpt" "$BW" <<'EOF'
import json, sys
name, out, rss, bpt, bw = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
print(f"{name:<22} {out['prompt_tps']:10.1f} {out['gen_tps']:10.2f} {rss/1024:10.0f} {bpt/1e6:12.0f} {bw*1e9/bpt:12.2f}")
EOF
  SIL_TG[$1]=$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["gen_tps"])')
  SIL_PP[$1]=$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["prompt_tps"])')
}
declare -A LL_TG LL_PP
run_llama() {  # name gguf type
  local j
  j=$(/usr/bin/time -f '%M' "$LLAMA_BENCH" -m "$2" -p "$PP" -n "$TG" -t "$THREADS" -r 1 -o json 2>"$WORK/time.txt")
  local rss_kb; rss_kb=$(tail -1 "$WORK/time.txt")
  local bpt; bpt=$(bytes_per_token "$2")
  "$PY" - "$1" "$j" "$rss_kb" "$bpt" "$BW" <<'EOF'
import json, sys
name, rows, rss, bpt, bw = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0)
print(f"{name:<22} {pp:10.1f} {tg:10.2f} {rss/1024:10.0f} {bpt/1e6:12.0f} {bw*1e9/bpt:12.2f}")
EOF
  LL_PP[$3]=$(echo "$j" | "$PY" -c 'import json,sys; print(next(r["avg_ts"] for r in json.load(sys.stdin) if r["n_prompt"] > 0))')
  LL_TG[$3]=$(echo "$j" | "$PY" -c 'import json,sys; print(next(r["avg_ts"] for r in json.load(sys.stdin) if r["n_gen"] > 0))')
}

run_silica "silica f16" "$HF"
run_silica "silica mlx q8 g64" "$WORK/mlx-q8-L$LAYERS"
run_silica "silica mlx q4 g64" "$WORK/mlx-q4-L$LAYERS"
run_silica "silica gguf Q8_0" "$WORK/gguf-Q8_0-L$LAYERS.gguf"
run_silica "silica gguf Q4_0" "$WORK/gguf-Q4_0-L$LAYERS.gguf"
if [ -x "$LLAMA_BENCH" ]; then
  run_llama "llama.cpp F16" "$WORK/gguf-F16-L$LAYERS.gguf" F16
  run_llama "llama.cpp Q8_0" "$WORK/gguf-Q8_0-L$LAYERS.gguf" Q8_0
  run_llama "llama.cpp Q4_0" "$WORK/gguf-Q4_0-L$LAYERS.gguf" Q4_0
  echo "(ratios: silica / llama.cpp on the same bytes class, tg and pp)"
  for pair in "silica f16|F16" "silica mlx q8 g64|Q8_0" "silica mlx q4 g64|Q4_0" "silica gguf Q8_0|Q8_0" "silica gguf Q4_0|Q4_0"; do
    s=${pair%%|*}; t=${pair##*|}
    "$PY" - "$s" "$t" "${SIL_PP[$s]}" "${SIL_TG[$s]}" "${LL_PP[$t]}" "${LL_TG[$t]}" <<'EOF'
import sys
s, t = sys.argv[1], sys.argv[2]
spp, stg, pp, tg = map(float, sys.argv[3:7])
print(f"  {s:<20} vs llama.cpp {t:<5}: tg {stg / tg:5.2f}x  pp {spp / pp:5.2f}x")
EOF
  done
else
  echo "llama-bench not found at $LLAMA_BENCH: llama.cpp columns skipped"
fi
