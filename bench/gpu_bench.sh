#!/usr/bin/env bash
# gpu_bench.sh — the GPU engine's speed (`silica bench --device gpu`) side by side with llama.cpp's
# Vulkan and CUDA backends (llama-bench -ngl 99, built from source OUTSIDE the repo) on the same GGUF
# files: a random-weight model of Llama-3.2-1B shapes (bench/make_llama_shapes.py; SHAPE=8b for
# Llama-3.1-8B shapes) at F16, Q8_0 and Q4_0, prompt processing (ppP) and generation (tgN).
# Prints one markdown table; tg is also given as a share of the GPU's memory-bandwidth roofline
# (GPU_BW_GBPS, the card's published bandwidth in GB/s / the bytes of weights one token reads).
#
# usage: bench/gpu_bench.sh   (env: SILICA, LLAMA_VULKAN_BENCH, LLAMA_CUDA_BENCH (each skipped if absent),
#        WORK, SHAPE=1b|8b, LAYERS (default: the real model's), TYPES="F16 Q8_0 Q4_0", PP=512, TG=128,
#        REPEAT=3, GPU_BW_GBPS, DEVICE=gpu (silica's --device), PY)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/silica-gpu-bench}
SHAPE=${SHAPE:-1b}
LAYERS=${LAYERS:-0}
TYPES=${TYPES:-F16 Q8_0 Q4_0}
PP=${PP:-512}
TG=${TG:-128}
REPEAT=${REPEAT:-3}
DEVICE=${DEVICE:-gpu}
PY=${PY:-python3}
SILICA=${SILICA:-$ROOT/build/silica}
VKB=${LLAMA_VULKAN_BENCH:-}
CUB=${LLAMA_CUDA_BENCH:-}
mkdir -p "$WORK"
HF="$WORK/hf-$SHAPE-L$LAYERS"
[ -f "$HF/model.safetensors" ] || "$PY" "$ROOT/bench/make_llama_shapes.py" "$HF" --shape "$SHAPE" --layers "$LAYERS"
RES="$WORK/gpu-results.jsonl"
: >"$RES"
for t in $TYPES; do
  g="$WORK/$SHAPE-L$LAYERS-$t.gguf"
  [ -f "$g" ] || "$SILICA" convert "$HF" "$g" --to gguf --q-type "$t" --pure >/dev/null
  "$SILICA" bench "$g" --device "$DEVICE" -p "$PP" -n "$TG" -r "$REPEAT" --no-bandwidth --json |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); [print(json.dumps({"engine":"silica","type":sys.argv[1],"test":r["test"],"ts":r["avg_ts"],"sd":r["stddev_ts"],"dev":d["kernels"],"bytes":d["weight_bytes"]})) for r in d["results"]]' "$t" >>"$RES"
  for pair in "llama.cpp Vulkan:$VKB" "llama.cpp CUDA:$CUB"; do
    name=${pair%%:*} bin=${pair#*:}
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then continue; fi
    "$bin" -m "$g" -p "$PP" -n "$TG" -r "$REPEAT" -ngl 99 -o json 2>"$WORK/llama-bench.err" |
      "$PY" -c 'import json,sys; [print(json.dumps({"engine":sys.argv[2],"type":sys.argv[1],"test":("pp%d"%r["n_prompt"]) if r["n_prompt"] else ("tg%d"%r["n_gen"]),"ts":r["avg_ts"],"sd":r["stddev_ts"],"dev":r.get("gpu_info","")})) for r in json.load(sys.stdin)]' "$t" "$name" >>"$RES" ||
      { echo "gpu_bench.sh: $name failed on $g:" >&2; tail -3 "$WORK/llama-bench.err" >&2; }
  done
done
"$PY" - "$RES" "${GPU_BW_GBPS:-0}" "$SHAPE" "$LAYERS" "$PP" "$TG" "$REPEAT" <<'PYEOF'
import json, sys
res, bw, shape, layers, pp, tg, rep = sys.argv[1:8]
bw = float(bw)
rows = [json.loads(l) for l in open(res)]
engines = [e for e in ("silica", "llama.cpp Vulkan", "llama.cpp CUDA") if any(r["engine"] == e for r in rows)]
dev = next((r["dev"] for r in rows if r["engine"] == "silica"), "?")
print(f"GPU: {dev}; {shape} shapes ({layers if layers != '0' else 'all'} layers, random weights); "
      f"pp{pp} / tg{tg}, mean of {rep} runs" + (f"; roofline from {bw:.0f} GB/s" if bw else ""))
print()
cols = ["type", "test"] + [f"{e} t/s" for e in engines] + [f"silica / {e[10:]}" for e in engines[1:]]
cols += ["silica tg / roofline"] if bw else []
print("| " + " | ".join(cols) + " |")
print("|---|---|" + "---:|" * (len(cols) - 2))
def get(e, t, test):
    return next((r for r in rows if r["engine"] == e and r["type"] == t and r["test"] == test), None)
for t in dict.fromkeys(r["type"] for r in rows):
    for test in dict.fromkeys(r["test"] for r in rows if r["type"] == t):
        vals = [get(e, t, test) for e in engines]
        s = vals[0]
        cells = [f"{v['ts']:.1f} ± {v['sd']:.1f}" if v else "-" for v in vals]
        ratios = [f"{s['ts'] / v['ts']:.2f}×" if s and v else "-" for v in vals[1:]]
        line = "| " + " | ".join([t, test] + cells + ratios)
        if bw:
            roof = bw * 1e9 / s["bytes"] if s else 0
            line += f" | {100 * s['ts'] / roof:.0f} %" if s and test.startswith("tg") else " | "
        print(line + " |")
PYEOF
