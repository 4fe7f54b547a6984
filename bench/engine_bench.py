#!/usr/bin/env python3
"""engine_bench.py — silica's CPU engine side by side with llama.cpp on the same weights.

A random-weight Llama-3.2-1B- or Llama-3.1-8B-shaped model (bench/make_llama_shapes.py, written under
--work, never committed) is converted by `silica convert` to each weight format asked for; `silica bench`
and `llama-bench` (one or more llama.cpp builds, e.g. its AMX and its AVX-512 one) then run the same
prompt (-p) and generation (-n) tests at each thread count (-t) and KV depth (-d), llama.cpp also with each
flash-attention setting (--fa).  One markdown table per depth: silica's tok/s, the fastest llama.cpp
configuration's (named), the ratio, and generation's share of the memory-bandwidth roofline (measured read
bandwidth / bytes one generated token streams: every layer matrix and the head, scales included).

Formats: f16 and bf16 (safetensors; llama.cpp: GGUF F16 / BF16), q8_0 q4_0 q4_k q6_k (one GGUF file that
both engines run; q4_k is llama-quantize's Q4_K_M mix), mlx8 mlx4 mlx8g32 mlx4g32 (MLX affine, group 64 or
32; llama.cpp runs Q8_0 / Q4_0 at the same bits).

    bench/engine_bench.py [--shape 1b|8b] [--layers N] [-t 2,8,16] [-d 0,4096] [--fa 0,1] [-p 512] [-n 64]
                          [-r 3] [--formats q8_0,q4_0,...] [--llama NAME=PATH/llama-bench ...] [--work DIR]
                          [--json OUT.json]

Every figure is llama-bench's and silica bench's mean over -r runs (both print the spread in --json).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# format -> (silica's file: how it is made, llama.cpp's peer file)
FORMATS = {
    "f16": (("hf", None), "F16"),
    "bf16": (("hf-bf16", None), "BF16"),
    "q8_0": (("gguf", "Q8_0"), "Q8_0"),
    "q4_0": (("gguf", "Q4_0"), "Q4_0"),
    "q4_k": (("gguf", "Q4_K_M"), "Q4_K_M"),
    "q6_k": (("gguf", "Q6_K"), "Q6_K"),
    "mlx8": (("mlx", (8, 64)), "Q8_0"),
    "mlx4": (("mlx", (4, 64)), "Q4_0"),
    "mlx8g32": (("mlx", (8, 32)), "Q8_0"),
    "mlx4g32": (("mlx", (4, 32)), "Q4_0"),
}
LABEL = {"f16": "safetensors f16", "bf16": "safetensors bf16", "q8_0": "GGUF Q8_0", "q4_0": "GGUF Q4_0",
         "q4_k": "GGUF Q4_K_M", "q6_k": "GGUF Q6_K", "mlx8": "MLX q8 g64", "mlx4": "MLX q4 g64",
         "mlx8g32": "MLX q8 g32", "mlx4g32": "MLX q4 g32"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, fatal=True):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if r.returncode and not fatal:
        log(f"{cmd[0]} failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
        return None
    if r.returncode:
        sys.exit(f"engine_bench: {' '.join(cmd[:4])} ... failed (exit {r.returncode}): {r.stderr.strip()[-600:]}")
    return r.stdout


class Models:
    """Makes each file once under WORK (a file already there is reused)."""

    def __init__(self, a):
        self.a, self.work = a, Path(a.work)
        self.tag = f"{a.shape}-L{a.layers}"

    def hf(self):
        d = self.work / f"hf-f16-{self.tag}"
        if not (d / "model.safetensors").exists():
            log(f"making {d} (random weights)")
            sh([sys.executable, str(ROOT / "bench/make_llama_shapes.py"), str(d), "--shape", self.a.shape,
                "--layers", str(self.a.layers)])
        return d

    def convert(self, out, *args):
        if not out.exists():
            log(f"converting to {out.name}")
            sh([self.a.silica, "convert", str(self.hf()), str(out), *args])
        return out

    def silica_file(self, fmt):
        kind, arg = FORMATS[fmt][0]
        if kind == "hf":
            return self.hf()
        if kind == "hf-bf16":
            return self.convert(self.work / f"hf-bf16-{self.tag}", "--to", "hf", "--dtype", "bf16")
        if kind == "gguf":
            return self.gguf(arg)
        bits, group = arg
        return self.convert(self.work / f"mlx-q{bits}g{group}-{self.tag}", "--to", "mlx", "-q", "--q-bits",
                            str(bits), "--q-group-size", str(group))

    def gguf(self, qtype):
        return self.convert(self.work / f"gguf-{qtype}-{self.tag}.gguf", "--to", "gguf", "--q-type", qtype)


def bytes_per_token(silica, path):
    """Bytes one generated token reads: every matrix (scales and biases too) and the head; not the
    embedding rows (a gather) unless the head is the tied embedding."""
    tensors = json.loads(sh([silica, "inspect", str(path), "--json"]))["tensors"]
    names = {t["name"] for t in tensors}
    tied = not any(n.startswith(("output.", "lm_head.")) for n in names)
    total = 0
    for t in tensors:
        n = t["name"]
        if len(t["shape"]) < 2:
            continue
        if ("embed_tokens" in n or n.startswith("token_embd")) and not tied:
            continue
        total += t["nbytes"]
    return total


def run_silica(a, path):
    cmd = [a.silica, "bench", str(path), "-p", str(a.p), "-n", str(a.n), "-t", a.t, "-d", a.d, "-r", str(a.r),
           "--json", "--no-bandwidth"]
    j = json.loads(sh(cmd))
    return [{"engine": "silica", "config": j.get("kernels", ""), "threads": r["threads"], "depth": r["n_depth"],
             "test": "pp" if r["n_prompt"] else "tg", "ts": r["avg_ts"], "sd": r["stddev_ts"]}
            for r in j["results"]], j.get("peak_rss_bytes", 0)


def run_llama(a, name, exe, gguf):
    cmd = [exe, "-m", str(gguf), "-p", str(a.p), "-n", str(a.n), "-t", a.t, "-d", a.d, "-fa", a.fa, "-r",
           str(a.r), "-o", "json", *a.llama_args.split()]
    out, res = [], sh(cmd, fatal=False)
    for r in json.loads(res) if res else []:
        out.append({"engine": "llama.cpp", "config": f"{name} fa-{ {-1: 'auto', 0: 'off', 1: 'on'}.get(r.get('flash_attn'), '?')}",
                    "threads": r["n_threads"], "depth": r.get("n_depth", 0),
                    "test": "pp" if r["n_prompt"] else "tg", "ts": r["avg_ts"], "sd": r["stddev_ts"]})
    return out


def table(rows, meta, depth):
    lines = []
    hdr = ("| threads | silica weights | pp tok/s | tg tok/s | llama.cpp | pp tok/s (build) | tg tok/s (build) "
           "| pp ratio | tg ratio | tg / roofline |")
    lines += [hdr, "|---:|---|---:|---:|---|---|---|---:|---:|---:|"]
    for th in meta["threads"]:
        for fmt in meta["formats"]:
            def pick(eng, test, peer=None):
                c = [r for r in rows if r["engine"] == eng and r["threads"] == th and r["depth"] == depth
                     and r["test"] == test and r["format"] == (peer or fmt)]
                return max(c, key=lambda r: r["ts"]) if c else None
            peer = FORMATS[fmt][1]
            s_pp, s_tg = pick("silica", "pp"), pick("silica", "tg")
            l_pp, l_tg = pick("llama.cpp", "pp", "llama:" + peer), pick("llama.cpp", "tg", "llama:" + peer)
            if not (s_pp or s_tg):
                continue
            f = lambda r: f"{r['ts']:.1f}" if r else "-"
            fb = lambda r: f"{r['ts']:.1f} ({r['config']})" if r else "-"
            ratio = lambda s, l: f"{s['ts'] / l['ts']:.2f}x" if s and l else "-"
            roof = meta["bw"] * 1e9 / meta["bpt"][fmt] if meta["bw"] else 0
            rp = f"{s_tg['ts'] / roof:.0%}" if s_tg and roof else "-"
            lines.append(f"| {th} | {LABEL[fmt]} | {f(s_pp)} | {f(s_tg)} | {peer} | {fb(l_pp)} | {fb(l_tg)} "
                         f"| {ratio(s_pp, l_pp)} | {ratio(s_tg, l_tg)} | {rp} |")
    return "\n".join(lines)


def scaling(rows, meta, depth):
    """tg(hi)/tg(lo) and pp(hi)/pp(lo) for the two highest thread counts, silica against llama.cpp's best."""
    ths = sorted(meta["threads"])
    if len(ths) < 2:
        return ""
    lo, hi = ths[-2], ths[-1]
    out = [f"| weights | silica pp {hi}/{lo} | llama.cpp pp {hi}/{lo} | silica tg {hi}/{lo} | llama.cpp tg {hi}/{lo} |",
           "|---|---:|---:|---:|---:|"]
    for fmt in meta["formats"]:
        def best(eng, f, th, test):
            c = [r["ts"] for r in rows if r["engine"] == eng and r["format"] == f and r["threads"] == th
                 and r["depth"] == depth and r["test"] == test]
            return max(c) if c else None
        cells = []
        for test in ("pp", "tg"):
            for eng, f in (("silica", fmt), ("llama.cpp", "llama:" + FORMATS[fmt][1])):
                h, l_ = best(eng, f, hi, test), best(eng, f, lo, test)
                cells.append(f"{h / l_:.2f}" if h and l_ else "-")
        out.append(f"| {LABEL[fmt]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=["1b", "8b"], default="1b")
    ap.add_argument("--layers", type=int, default=0, help="layers (default 16 for 1b, 8 for 8b)")
    ap.add_argument("-t", default="2", help="thread counts, comma-separated")
    ap.add_argument("-d", default="0", help="KV depths, comma-separated")
    ap.add_argument("--fa", default="auto", help="llama.cpp flash-attention settings (on, off, auto), comma-separated")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--formats", default="f16,q8_0,q4_0,mlx8,mlx4")
    ap.add_argument("--llama", action="append", default=[], metavar="NAME=PATH",
                    help="a llama-bench build (repeatable), e.g. amx=/opt/llama-amx/bin/llama-bench")
    ap.add_argument("--llama-args", default="", help="extra llama-bench flags, e.g. '--poll 0'")
    ap.add_argument("--silica", default=os.environ.get("SILICA", str(ROOT / "build-rel/silica")))
    ap.add_argument("--work", default=os.environ.get("WORK", "/tmp/silica-engine-bench"))
    ap.add_argument("--json", help="also write every measurement here")
    ap.add_argument("--render", metavar="JSON", help="print the tables of an earlier --json (an interrupted run too)")
    a = ap.parse_args()
    if a.render:
        j = json.loads(Path(a.render).read_text())
        b = argparse.Namespace(**j["args"])
        report(b, j["cpu"], j["bandwidth_gbps"], j["bytes_per_token"], j["peak_rss"], j["rows"])
        return
    a.layers = a.layers or (16 if a.shape == "1b" else 8)
    formats = a.formats.split(",")
    for f in formats:
        if f not in FORMATS:
            ap.error(f"--formats: unknown format {f!r} (one of {', '.join(FORMATS)})")
    Path(a.work).mkdir(parents=True, exist_ok=True)
    models = Models(a)
    doc = json.loads(sh([a.silica, "doctor", "--json", "--bandwidth"]))
    bw = doc["memory"]["read_bandwidth_gbps"]
    rows, bpt, rss = [], {}, {}

    def save():  # after every run, so an interrupted benchmark keeps what it measured
        if a.json:
            Path(a.json).write_text(json.dumps({"args": vars(a), "cpu": doc["cpu"], "bandwidth_gbps": bw,
                                                "bytes_per_token": bpt, "peak_rss": rss, "rows": rows}, indent=1))
    done = set()
    for fmt in formats:  # each format, then its llama.cpp peer: an interrupted run keeps whole pairs
        path = models.silica_file(fmt)
        bpt[fmt] = bytes_per_token(a.silica, path)
        t0 = time.time()
        r, rss[fmt] = run_silica(a, path)
        rows += [dict(x, format=fmt) for x in r]
        log(f"silica {fmt}: {time.time() - t0:.0f} s")
        save()
        peer = FORMATS[fmt][1]
        for spec in a.llama if peer not in done else []:
            name, exe = spec.split("=", 1)
            t0 = time.time()
            r = run_llama(a, name, exe, models.gguf(peer))
            rows += [dict(x, format="llama:" + peer) for x in r]
            log(f"llama.cpp {name} {peer}: {time.time() - t0:.0f} s")
            save()
        done.add(peer)
    report(a, doc["cpu"], bw, bpt, rss, rows)


def report(a, cpu, bw, bpt, rss, rows):
    formats = [f for f in a.formats.split(",") if f in bpt]
    meta = {"threads": [int(x) for x in a.t.split(",")], "formats": formats, "bw": bw, "bpt": bpt}
    builds = sorted({r["config"].split(" fa-")[0] for r in rows if r["engine"] == "llama.cpp"})
    print(f"{cpu.get('model', '')}; kernels {cpu.get('engine_kernels', '')}; read bandwidth {bw:.1f} GB/s; "
          f"Llama-3.{'2-1B' if a.shape == '1b' else '1-8B'} shapes, {a.layers} layers, random weights; "
          f"pp{a.p} / tg{a.n}, mean of {a.r}; llama.cpp builds measured: {', '.join(builds) or 'none'}"
          f" (fa {a.fa}) {a.llama_args}")
    for depth in [int(x) for x in a.d.split(",")]:
        print(f"\n**KV depth {depth}**\n")
        print(table(rows, meta, depth))
        sc = scaling(rows, meta, depth)
        if sc:
            print("\nthread scaling (tok/s ratio; the fastest llama.cpp build):\n")
            print(sc)
    print("\npeak RSS (silica bench, MiB): " + ", ".join(f"{LABEL[f]} {rss[f] / 2**20:.0f}" for f in formats if f in rss))

if __name__ == "__main__":
    main()
