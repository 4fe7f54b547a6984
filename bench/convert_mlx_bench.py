#!/usr/bin/env python3
"""convert_mlx_bench.py — HF f16 model (~2 GB, generated) -> MLX 4-bit g64:
`silica convert --to mlx -q` versus `mlx_lm.convert -q` on this machine.

Prints wall time and peak RSS (of the converting process, from wait4) side by
side, checks both outputs hold the same tensors byte for byte, and prints the
issue's streaming bound (2 x largest tensor + 64 MB).
usage: bench/convert_mlx_bench.py [--gb 2] [--workdir /tmp/silica-mlx-bench] [--silica build/silica]
"""
import argparse
import json
import os
import shutil
import struct
import sys
import time

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))


def make_model(d, gb):
    """A llama-shaped f16 model of about `gb` GB: hidden 2048, ffn 5632, 32000 vocab."""
    from hf_models import family_config, write_tokenizer
    h, ffn, vocab = 2048, 5632, 32000
    per_layer = (4 * h * h + 3 * h * ffn + 2 * h) * 2
    layers = max(1, int((gb * 1e9 - 2 * vocab * h * 2) // per_layer))
    os.makedirs(d, exist_ok=True)
    c = family_config("llama", hidden=h, inter=ffn, layers=layers, heads=16, kv_heads=16, vocab=vocab,
                      tied=False, dtype="float16")
    rng = np.random.default_rng(0)
    shard, n, total, wm = {}, 1, 0, {}

    def flush(last=False):
        nonlocal shard, n
        if shard:
            fn = f"model-{n:05d}.safetensors"
            save_file(shard, os.path.join(d, fn), metadata={"format": "pt"})
            wm.update({k: fn for k in shard})
            shard, n = {}, n + 1

    def add(name, *shape):
        nonlocal total
        shard[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
        total += shard[name].nbytes
        if sum(v.nbytes for v in shard.values()) > 1 << 30:
            flush()

    add("model.embed_tokens.weight", vocab, h)
    for i in range(layers):
        p = f"model.layers.{i}."
        for m in ["q", "k", "v", "o"]:
            add(p + f"self_attn.{m}_proj.weight", h, h)
        add(p + "mlp.gate_proj.weight", ffn, h)
        add(p + "mlp.up_proj.weight", ffn, h)
        add(p + "mlp.down_proj.weight", h, ffn)
        add(p + "input_layernorm.weight", h)
        add(p + "post_attention_layernorm.weight", h)
    add("model.norm.weight", h)
    add("lm_head.weight", vocab, h)
    flush()
    # rename shards to the HF pattern now that the count is known
    files = sorted(f for f in os.listdir(d) if f.startswith("model-"))
    ren = {}
    for i, f in enumerate(files):
        new = f"model-{i + 1:05d}-of-{len(files):05d}.safetensors"
        os.rename(os.path.join(d, f), os.path.join(d, new))
        ren[f] = new
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": {k: ren[v] for k, v in wm.items()}}, f, indent=2)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    write_tokenizer(__import__("pathlib").Path(d), "llama", "mistral")
    return total, vocab * h * 2


def run_rss(cmd):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return dt, ru.ru_maxrss * 1024


def tensors(d):
    out = {}
    for f in sorted(os.listdir(d)):
        if f.startswith("model") and f.endswith(".safetensors"):
            with open(os.path.join(d, f), "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                hdr = json.loads(fh.read(n))
                hdr.pop("__metadata__", None)
                for k, v in hdr.items():
                    fh.seek(8 + n + v["data_offsets"][0])
                    out[k] = (v["dtype"], v["shape"], hash(fh.read(v["data_offsets"][1] - v["data_offsets"][0])))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--workdir", default="/tmp/silica-mlx-bench")
    ap.add_argument("--silica", default=os.path.join(HERE, "..", "build", "silica"))
    a = ap.parse_args()
    src = os.path.join(a.workdir, "hf")
    if not os.path.exists(os.path.join(src, "config.json")):
        shutil.rmtree(src, ignore_errors=True)
        total, largest = make_model(src, a.gb)
    else:
        total = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src) if f.endswith(".safetensors"))
        largest = 32000 * 2048 * 2
    out_s, out_m = os.path.join(a.workdir, "silica"), os.path.join(a.workdir, "mlx_lm")
    for o in (out_s, out_m):
        shutil.rmtree(o, ignore_errors=True)
    ts, rs = run_rss([a.silica, "convert", src, out_s, "--to", "mlx", "-q"])
    tm, rm = run_rss([sys.executable, "-m", "mlx_lm", "convert", "--hf-path", src, "--mlx-path", out_m, "-q"])
    same = tensors(out_s) == tensors(out_m)
    mib = 2**20
    print(f"model: {total / 1e9:.2f} GB f16, largest tensor {largest / mib:.0f} MiB -> MLX affine 4-bit g64")
    print(f"{'':16}{'wall s':>10}{'peak RSS MiB':>15}")
    print(f"{'silica':16}{ts:10.1f}{rs / mib:15.0f}")
    print(f"{'mlx_lm.convert':16}{tm:10.1f}{rm / mib:15.0f}")
    print(f"bound 2 x largest + 64 MB: {(2 * largest + 64 * 2**20) / mib:.0f} MiB; "
          f"silica within: {rs <= 2 * largest + 64 * 2**20}; tensors identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
