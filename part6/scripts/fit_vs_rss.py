#!/usr/bin/env python3
"""fit_vs_rss.py — the estimate against reality: for generated llama-style
models of three sizes and contexts 512/2048/8192, compare `silica fit`'s
total resident memory with the peak RSS `silica run --json` measures while
the context is full (prompt = ctx - 1 token ids).  Prints a Markdown table;
exit 1 if a row misses the issue's bar (within 5 % or 64 MiB).

usage: fit_vs_rss.py SILICA_BIN [--sizes tiny,small,medium] [--ctx 512,2048,8192]
                     [--precisions f16,q8,q4] [--threads N]
Needs numpy and safetensors; q8/q4 rows quantize with mlx_lm's own
quantize_model (group 64).  Use a Release build: ASan's shadow memory
inflates RSS.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

SIZES = {   # hidden, intermediate, layers, heads, kv heads, vocab
    "tiny": (256, 768, 4, 4, 2, 4096),
    "small": (512, 1536, 8, 8, 2, 8192),
    "medium": (1024, 2816, 8, 16, 4, 16384),
}


def make(d, h, i, L, H, KV, V):
    d.mkdir(parents=True)
    D = h // H
    rng = np.random.default_rng(0)
    w = lambda *s: (rng.standard_normal(s) * 0.02).astype(np.float16)
    t = {"model.embed_tokens.weight": w(V, h), "model.norm.weight": np.ones(h, np.float16), "lm_head.weight": w(V, h)}
    for l in range(L):
        p = f"model.layers.{l}."
        t.update({p + "self_attn.q_proj.weight": w(H * D, h), p + "self_attn.k_proj.weight": w(KV * D, h),
                  p + "self_attn.v_proj.weight": w(KV * D, h), p + "self_attn.o_proj.weight": w(h, H * D),
                  p + "mlp.gate_proj.weight": w(i, h), p + "mlp.up_proj.weight": w(i, h),
                  p + "mlp.down_proj.weight": w(h, i), p + "input_layernorm.weight": np.ones(h, np.float16),
                  p + "post_attention_layernorm.weight": np.ones(h, np.float16)})
    save_file(t, str(d / "model.safetensors"))
    cfg = {"model_type": "llama", "hidden_size": h, "intermediate_size": i, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "vocab_size": V, "max_position_embeddings": 16384,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float16",
           "bos_token_id": 1, "eos_token_id": 2}
    (d / "config.json").write_text(json.dumps(cfg))


def quantize(src, dst, bits):
    from mlx_lm.utils import load_model, quantize_model, save_model
    model, config = load_model(src)
    model, config = quantize_model(model, config, 64, bits)
    dst.mkdir()
    save_model(dst, model)
    (dst / "config.json").write_text(json.dumps(config))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("silica")
    ap.add_argument("--sizes", default="tiny,small,medium")
    ap.add_argument("--ctx", default="512,2048,8192")
    ap.add_argument("--precisions", default="f16,q8,q4")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    MIB = 1 << 20
    ok = True
    print("| model | params | weights | ctx | estimate | measured peak RSS | diff | within 5 % or 64 MiB |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.sizes.split(","):
          f = Path(tmp) / name
          make(f, *SIZES[name])
          for prec in a.precisions.split(","):
            d = f if prec == "f16" else Path(tmp) / f"{name}-{prec}"
            if prec != "f16":
                quantize(f, d, int(prec[1:]))
            for ctx in map(int, a.ctx.split(",")):
                est = json.loads(subprocess.run([a.silica, "fit", str(d), "--ctx", str(ctx), "--json"],
                                                capture_output=True, text=True, check=True).stdout)
                ids = ",".join(str(3 + k % 1000) for k in range(ctx - 1))
                cmd = [a.silica, "run", str(d), "--ids", ids, "--ctx", str(ctx), "--max-tokens", "1", "--json"]
                if a.threads:
                    cmd += ["--threads", str(a.threads)]
                # through a small shell that stays the parent: getrusage's peak survives
                # fork + exec, and this Python process is large (it built the model)
                r = subprocess.run(["sh", "-c", '"$0" "$@"; exit $?', *cmd], capture_output=True, text=True)
                if r.returncode:
                    print(f"| {name} | | {prec} | {ctx} | | run failed: {r.stderr.strip()[:80]} | | no |")
                    ok = False
                    continue
                peak = json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_bytes"]
                e = est["total_bytes"]
                diff = e - peak
                good = abs(diff) <= max(0.05 * peak, 64 * MIB)
                ok &= good
                print(f"| {name} | {est['params'] / 1e6:.0f} M | {prec} | {ctx} | {e / MIB:.1f} MiB | {peak / MIB:.1f} MiB | "
                      f"{diff / MIB:+.1f} MiB ({100 * diff / peak:+.1f} %) | {'yes' if good else 'no'} |", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
