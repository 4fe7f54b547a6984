#!/usr/bin/env bash
# engine_bench.sh — prompt / generation tokens per second and peak RSS of the
# engine on a generated Llama-3.2-1B-shaped model (random weights, written
# by numpy + safetensors under $WORK, never committed) at f16, MLX 8-bit and
# MLX 4-bit (g64) and GGUF Q8_0 / Q4_0, side by side with llama.cpp (built
# from source OUTSIDE the repo) on GGUF versions of the same weights (F16,
# Q8_0, Q4_0), plus the memory-bandwidth roofline: measured read bandwidth /
# bytes read per generated token = the fastest generation the memory allows.
# Prints one markdown table (part9/README.md explains it); every figure is
# the median of REPEAT runs (llama-bench: its mean over -r REPEAT).
#
# usage: bench/engine_bench.sh            (env: SILICA, LLAMA_BENCH, WORK,
#        THREADS="2" or a list such as THREADS="2 8 16" (one row per model and
#        thread count), PP=64, TG=32, REPEAT=3, PY, SMALL=1 for a 4-layer model,
#        LLAMA_ARGS extra llama-bench flags, e.g. "--poll 0" on a busy machine)
# SILICA defaults to build-rel/silica (built here if absent, Release);
# LLAMA_BENCH to /tmp/j2/llama.cpp/build/bin/llama-bench (skipped if absent:
# build llama.cpp from source with cmake -DGGML_NATIVE=ON; part9/README.md gives the commands).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/silica-engine-bench}
THREADS=${THREADS:-2}
PP=${PP:-64}
TG=${TG:-32}
REPEAT=${REPEAT:-3}
PY=${PY:-python3}
SILICA=${SILICA:-$ROOT/build-rel/silica}
LLAMA_BENCH=${LLAMA_BENCH:-/tmp/j2/llama.cpp/build/bin/llama-bench}
LAYERS=16
[ "${SMALL:-0}" = 1 ] && LAYERS=4

if [ ! -x "$SILICA" ]; then
  cmake -S "$ROOT" -B "$ROOT/build-rel" -DCMAKE_BUILD_TYPE=Release -DSILICA_TESTS=OFF >/dev/null
  cmake --build "$ROOT/build-rel" -j2 --target silica >/dev/null
fi
mkdir -p "$WORK"

# ---- the model: Llama-3.2-1B shapes (hidden 2048, 16 layers, 32/8 heads, ffn 8192, vocab 128256, tied),
# random weights (bench/make_llama_shapes.py)
HF="$WORK/hf-f16-L$LAYERS"
[ -f "$HF/model.safetensors" ] || "$PY" "$ROOT/bench/make_llama_shapes.py" "$HF" --shape 1b --layers "$LAYERS"
for b in 8 4; do
  [ -d "$WORK/mlx-q$b-L$LAYERS" ] || "$SILICA" convert "$HF" "$WORK/mlx-q$b-L$LAYERS" --to mlx -q --q-bits $b --q-group-size 64 >/dev/null
done
for t in F16 Q8_0 Q4_0; do
  [ -f "$WORK/gguf-$t-L$LAYERS.gguf" ] || "$SILICA" convert "$HF" "$WORK/gguf-$t-L$LAYERS.gguf" --to gguf --q-type $t >/dev/null
done

BW=$("$SILICA" doctor --json --bandwidth | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["memory"]["read_bandwidth_gbps"])')
IDS=$("$PY" -c "import random; random.seed(1); print(','.join(str(random.randrange(1000, 120000)) for _ in range($PP)))")
RES="$WORK/results-L$LAYERS.jsonl"
: >"$RES"

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
load1() { cut -d' ' -f1 /proc/loadavg; }

run_silica() {  # class label path
  local out rss_kb bpt th
  bpt=$(bytes_per_token "$3")
  for th in $THREADS; do
    for _ in $(seq "$REPEAT"); do
      out=$(/usr/bin/time -f '%M' "$SILICA" run "$3" --ids "$IDS" --max-tokens "$TG" --threads "$th" --json 2>"$WORK/time.txt")
      rss_kb=$(tail -1 "$WORK/time.txt")
      "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"engine":"silica","class":sys.argv[2],"label":sys.argv[3],"pp":d["prompt_tps"],"tg":d["gen_tps"],"rss_kb":int(sys.argv[4]),"bpt":int(sys.argv[5]),"load":float(sys.argv[6]),"threads":int(sys.argv[7])}))' \
        "$out" "$1" "$2" "$rss_kb" "$bpt" "$(load1)" "$th" >>"$RES"
    done
  done
}
run_llama() {  # class label gguf
  local j rss_kb th
  for th in $THREADS; do
    # shellcheck disable=SC2086  # LLAMA_ARGS is a list of flags
    j=$(/usr/bin/time -f '%M' "$LLAMA_BENCH" -m "$3" -p "$PP" -n "$TG" -t "$th" -r "$REPEAT" ${LLAMA_ARGS:-} -o json 2>"$WORK/time.txt")
    rss_kb=$(tail -1 "$WORK/time.txt")
    "$PY" -c '
import json, sys
rows = json.loads(sys.argv[1])
pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0)
print(json.dumps({"engine": "llama.cpp", "class": sys.argv[2], "label": sys.argv[3], "pp": pp, "tg": tg,
                  "rss_kb": int(sys.argv[4]), "bpt": int(sys.argv[5]), "load": float(sys.argv[6]),
                  "threads": int(sys.argv[7])}))' \
      "$j" "$1" "$2" "$rss_kb" "$(bytes_per_token "$3")" "$(load1)" "$th" >>"$RES"
  done
}

echo "engine benchmark: Llama-3.2-1B shapes ($LAYERS layers, random weights), $THREADS threads, prompt $PP, generate $TG, median of $REPEAT" >&2
run_silica f16 "safetensors f16" "$HF"
run_silica 8-bit "MLX q8 g64" "$WORK/mlx-q8-L$LAYERS"
run_silica 8-bit "GGUF Q8_0" "$WORK/gguf-Q8_0-L$LAYERS.gguf"
run_silica 4-bit "MLX q4 g64" "$WORK/mlx-q4-L$LAYERS"
run_silica 4-bit "GGUF Q4_0" "$WORK/gguf-Q4_0-L$LAYERS.gguf"
if [ -x "$LLAMA_BENCH" ]; then
  run_llama f16 "F16" "$WORK/gguf-F16-L$LAYERS.gguf"
  run_llama 8-bit "Q8_0" "$WORK/gguf-Q8_0-L$LAYERS.gguf"
  run_llama 4-bit "Q4_0" "$WORK/gguf-Q4_0-L$LAYERS.gguf"
else
  echo "llama-bench not found at $LLAMA_BENCH: llama.cpp columns left empty" >&2
fi

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
KS=$("$SILICA" doctor --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["cpu"]["dtype_kernels"])')
"$PY" - "$RES" "$BW" "$LAYERS" "$THREADS" "$PP" "$TG" "$REPEAT" "$CPU" "$KS" "${LLAMA_ARGS:-}" <<'EOF'
import json, statistics, sys
res, bw, layers, threads, pp, tg, rep, cpu, ks, la = sys.argv[1:11]
bw = float(bw)
rows = [json.loads(l) for l in open(res)]
def agg(engine, label, th):
    r = [x for x in rows if x["engine"] == engine and x["label"] == label and x.get("threads") == th]
    if not r:
        return None
    return {"pp": statistics.median(x["pp"] for x in r), "tg": statistics.median(x["tg"] for x in r),
            "rss": max(x["rss_kb"] for x in r) / 1024, "bpt": r[0]["bpt"]}
llama = {"f16": "F16", "8-bit": "Q8_0", "4-bit": "Q4_0"}
print(f"{cpu}; threads {threads}; read bandwidth {bw:.1f} GB/s (silica doctor --bandwidth); SIMD level: {ks}")
print(f"Llama-3.2-1B shapes, {layers} layers, random weights; prompt {pp} tokens, generate {tg}; median of {rep} runs"
      + (f"; llama-bench {la}" if la else ""))
print()
print("| threads | class | silica model | pp tok/s | tg tok/s | RSS MiB | llama.cpp | pp tok/s | tg tok/s | RSS MiB "
      "| pp ratio | tg ratio | MB/token | roofline tg | tg / roofline |")
print("|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
seen = []
for x in rows:
    if x["engine"] == "silica" and (x["class"], x["label"]) not in seen:
        seen.append((x["class"], x["label"]))
for th, (cls, label) in [(int(t), c) for t in threads.split() for c in seen]:
    s, l = agg("silica", label, th), agg("llama.cpp", llama[cls], th)
    if not s:
        continue
    roof = bw * 1e9 / s["bpt"]
    lp = (f"{llama[cls]} | {l['pp']:.1f} | {l['tg']:.2f} | {l['rss']:.0f} | {s['pp'] / l['pp']:.2f}x | {s['tg'] / l['tg']:.2f}x"
          if l else "- | - | - | - | - | -")
    print(f"| {th} | {cls} | {label} | {s['pp']:.1f} | {s['tg']:.2f} | {s['rss']:.0f} | {lp} "
          f"| {s['bpt'] / 1e6:.0f} | {roof:.2f} | {s['tg'] / roof:.0%} |")
print()
print(f"highest 1-minute load average seen during the runs: {max(x['load'] for x in rows):.1f}")
EOF
