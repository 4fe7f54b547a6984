#!/usr/bin/env python3
"""Benchmark: `silica inspect` latency on a sharded multi-GB checkpoint, and
`silica convert` wall time + peak RSS versus the issue's bound
(largest tensor + 64 MB), on a generated model.

usage: bench/convert_bench.py [--gb 2] [--workdir /tmp/silica-bench] [--silica build/silica]
Prints a small table; figures go into closing notes.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import save_file


def make_model(d, gb, tensor_mb=64, shard_gb=1.0):
    if os.path.exists(os.path.join(d, "model.safetensors.index.json")):
        return
    os.makedirs(d, exist_ok=True)
    n = max(1, int(gb * 1024 / tensor_mb))
    elems = tensor_mb * 1024 * 1024 // 4
    per_shard = max(1, int(shard_gb * 1024 / tensor_mb))
    nshards = (n + per_shard - 1) // per_shard
    weight_map, total = {}, 0
    rng = np.random.default_rng(0)
    base = rng.standard_normal(elems, dtype=np.float32)
    for s in range(nshards):
        part = {}
        for i in range(s * per_shard, min(n, (s + 1) * per_shard)):
            part[f"model.layers.{i}.mlp.weight"] = np.roll(base, i).reshape(-1, 4096)
        fn = f"model-{s + 1:05d}-of-{nshards:05d}.safetensors"
        save_file(part, os.path.join(d, fn), metadata={"format": "pt"})
        for k, v in part.items():
            weight_map[k] = fn
            total += v.nbytes
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "llama"}, f)


def run_rss(cmd):
    """Run cmd; return (seconds, peak RSS bytes of the child)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return dt, ru.ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--workdir", default="/tmp/silica-bench")
    ap.add_argument("--silica", default=os.path.join(os.path.dirname(__file__), "..", "build", "silica"))
    a = ap.parse_args()
    src = os.path.join(a.workdir, f"model-{a.gb:g}gb")
    make_model(src, a.gb)
    largest = 64 * 1024 * 1024
    # inspect: headers only
    times = []
    for _ in range(7):
        dt, _ = run_rss([a.silica, "inspect", src, "--json"])
        times.append(dt)
    times.sort()
    print(f"inspect sharded {a.gb:g} GB checkpoint: median {times[3] * 1e3:.1f} ms (min {times[0] * 1e3:.1f} ms); goal < 50 ms")
    for dtype in ("bf16", "f16"):
        out = os.path.join(a.workdir, f"out-{dtype}")
        shutil.rmtree(out, ignore_errors=True)
        # drop the page cache effect of the previous run's output
        dt, rss = run_rss([a.silica, "convert", src, out, "--to", "safetensors", "--dtype", dtype])
        gbytes = a.gb * 1024 ** 3
        print(f"convert {a.gb:g} GB f32 -> {dtype}: {dt:.2f} s ({gbytes / dt / 1e9:.2f} GB/s in), "
              f"peak RSS {rss / 2**20:.1f} MiB; bound (largest tensor + 64 MB) {(largest + 64 * 2**20) / 2**20:.0f} MiB")
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
