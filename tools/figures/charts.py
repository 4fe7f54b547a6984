"""Charts drawn from measured or computed data, in the common style (svg.py).

- part9/img/roofline.svg   from part9/data/engine_bench.json (bench/engine_bench.sh medians)
- part4/img/quality-size.svg from part4/data/quality.json (silica ppl of the demo model at three
  precisions; relative RMS error of every quantization format)
- part6/img/memory-breakdown.svg from `silica fit llama-3.1-8b --ctx C --kv K --json` (run here)
Each function returns (path, svg text); a test regenerates them and fails on any difference.
"""
import json
import math
import subprocess

from svg import INK2, PALETTE, SERIES, Svg, n

GIB = 1 << 30


def _load(root, rel):
    with open(root / rel, encoding="utf-8") as f:
        return json.load(f)


def roofline(root, silica=None):
    data = _load(root, "part9/data/engine_bench.json")
    s = Svg(880, 470, "Generation speed against the memory-bandwidth roofline",
            "Two panels, one per benchmark model, with megabytes read per generated token on the x axis "
            "(log scale) and tokens per second on the y axis (log scale). The green line is the roofline, "
            "bandwidth divided by bytes per token. Blue circles are silica, orange squares llama.cpp on "
            "the same weights. " + " ".join(
                f"{r['name']} at {r['bandwidth_gbs']} GB/s: " + "; ".join(
                    f"{row['silica']} {row['silica_tg']} tok/s (llama.cpp {row['llama_cpp']} "
                    f"{row['llama_cpp_tg']}) at {row['mb_per_token']} MB per token" for row in r["rows"]) + "."
                for r in data["runs"]))
    s.text(20, 28, "Generation (tg) vs the roofline: tok/s ≤ bandwidth ÷ bytes read per token", "h")
    xs = (200, 3000)
    ys = (5, 200)
    for p, run in enumerate(data["runs"]):
        ox, oy, w, h = 70 + p * 420, 60, 360, 320
        lx = lambda v: ox + (math.log10(v) - math.log10(xs[0])) / (math.log10(xs[1]) - math.log10(xs[0])) * w
        ly = lambda v: oy + h - (math.log10(v) - math.log10(ys[0])) / (math.log10(ys[1]) - math.log10(ys[0])) * h
        s.text(ox, oy - 8, f"{run['name']} · {run['bandwidth_gbs']} GB/s", "b")
        for t in (200, 500, 1000, 2000, 3000):
            s.line(lx(t), oy, lx(t), oy + h, "grid")
            s.text(lx(t), oy + h + 16, str(t), "small", "middle")
        for t in (5, 10, 20, 50, 100, 200):
            s.line(ox, ly(t), ox + w, ly(t), "grid")
            s.text(ox - 6, ly(t) + 4, str(t), "small", "end")
        s.rect(ox, oy, w, h, "none", cls="axis")
        bw = run["bandwidth_gbs"] * 1000  # MB/s
        x0, x1 = max(xs[0], bw / ys[1]), xs[1]
        s.line(lx(x0), ly(bw / x0), lx(x1), ly(bw / x1), "seg", SERIES["line"])
        s.text(lx(x1) - 4, ly(bw / x1) - 8, "roofline", "small", "end", SERIES["line"])
        seen = set()
        for row in run["rows"]:
            x = lx(row["mb_per_token"])
            s.raw(f'<circle cx="{n(x - 4)}" cy="{n(ly(row["silica_tg"]))}" r="4.5" '
                  f'fill="{SERIES["silica"]}"/>')
            s.text(x + 8, ly(row["silica_tg"]) + 4, row["silica"], "small")
            if row["mb_per_token"] not in seen:
                seen.add(row["mb_per_token"])
                yy = ly(row["llama_cpp_tg"])
                s.raw(f'<rect x="{n(x - 8)}" y="{n(yy - 4)}" width="8" height="8" fill="{SERIES["llama.cpp"]}"/>')
        s.text(ox + w / 2, oy + h + 34, "MB read per token", "small", "middle")
    s.raw(f'<text x="22" y="220" class="small" transform="rotate(-90 22 220)" text-anchor="middle">'
          'generated tok/s</text>')
    s.raw(f'<circle cx="76" cy="440" r="4.5" fill="{SERIES["silica"]}"/>')
    s.text(86, 444, "silica (labelled)", "small")
    s.raw(f'<rect x="196" y="436" width="8" height="8" fill="{SERIES["llama.cpp"]}"/>')
    s.text(210, 444, "llama.cpp (F16, Q8_0, Q4_0)", "small")
    s.text(420, 444, "source: part9/data/engine_bench.json (bench/engine_bench.sh, 2 threads)", "small")
    return "part9/img/roofline.svg", s.render()


def quality_size(root, silica=None):
    data = _load(root, "part4/data/quality.json")
    ppl = data["ppl"]
    s = Svg(880, 420, "Quality against size: measured perplexity and quantization error",
            "Left: held-out perplexity of the demo model against its weight size: " +
            "; ".join(f"{p['label']} {p['mb']} MB, perplexity {p['ppl']:.4f}" for p in ppl) +
            ". Right: relative RMS error of each quantization format against its bits per weight (scales "
            "included): " + "; ".join(f"{r['label']} {r['bits']} bits {r['err']} %" for r in data["rms"]) +
            ". Lower and further left is better; the K-quants sit below the other formats at equal size.")
    s.text(20, 28, "Quality vs size: what each bit buys", "h")
    # left: ppl vs MB
    ox, oy, w, h = 70, 70, 320, 270
    xr, yr = (0, 50), (19.6, 20.2)
    lx = lambda v: ox + (v - xr[0]) / (xr[1] - xr[0]) * w
    ly = lambda v: oy + h - (v - yr[0]) / (yr[1] - yr[0]) * h
    s.text(ox, oy - 14, "demo model: silica ppl (lower is better)", "b")
    for t in (0, 10, 20, 30, 40, 50):
        s.line(lx(t), oy, lx(t), oy + h, "grid")
        s.text(lx(t), oy + h + 16, str(t), "small", "middle")
    for t in (19.6, 19.7, 19.8, 19.9, 20.0, 20.1, 20.2):
        s.line(ox, ly(t), ox + w, ly(t), "grid")
        s.text(ox - 6, ly(t) + 4, f"{t:.1f}", "small", "end")
    s.rect(ox, oy, w, h, "none", cls="axis")
    pts = " ".join(f"{n(lx(p['mb']))},{n(ly(p['ppl']))}" for p in sorted(ppl, key=lambda p: p["mb"]))
    s.raw(f'<polyline points="{pts}" fill="none" stroke="{SERIES["silica"]}" stroke-width="1.5"/>')
    for p in ppl:
        s.raw(f'<circle cx="{n(lx(p["mb"]))}" cy="{n(ly(p["ppl"]))}" r="4.5" fill="{SERIES["silica"]}"/>')
        right = p["mb"] > 40
        s.text(lx(p["mb"]) + (-8 if right else 8), ly(p["ppl"]) - 8, f"{p['label']}: {p['ppl']:.2f}", "small",
               "end" if right else "")
    s.text(ox + w / 2, oy + h + 34, "weights, MB", "small", "middle")
    # right: relative error vs bits (log y)
    ox, oy, w, h = 500, 70, 340, 270
    xr = (2, 9)
    lx = lambda v: ox + (v - xr[0]) / (xr[1] - xr[0]) * w
    ly = lambda v: oy + h - (math.log10(v) - math.log10(0.3)) / (math.log10(60) - math.log10(0.3)) * h
    s.text(ox, oy - 14, "relative RMS error, Gaussian weights", "b")
    for t in range(2, 10):
        s.line(lx(t), oy, lx(t), oy + h, "grid")
        s.text(lx(t), oy + h + 16, str(t), "small", "middle")
    for t in (0.5, 1, 2, 5, 10, 20, 50):
        s.line(ox, ly(t), ox + w, ly(t), "grid")
        s.text(ox - 6, ly(t) + 4, f"{t:g} %", "small", "end")
    s.rect(ox, oy, w, h, "none", cls="axis")
    marks = {"mlx": SERIES["silica"], "gguf": SERIES["llama.cpp"], "fp": SERIES["accent"]}
    for r in data["rms"]:
        x, y, c = lx(r["bits"]), ly(r["err"]), marks[r["family"]]
        if r["family"] == "gguf":
            s.raw(f'<rect x="{n(x - 4)}" y="{n(y - 4)}" width="8" height="8" fill="{c}"/>')
        elif r["family"] == "fp":
            s.raw(f'<path d="M{n(x)} {n(y - 5)} L{n(x + 5)} {n(y + 4)} L{n(x - 5)} {n(y + 4)} z" fill="{c}"/>')
        else:
            s.raw(f'<circle cx="{n(x)}" cy="{n(y)}" r="4" fill="{c}"/>')
        if r["label"] in ("MLX 2-bit g64", "MLX 3-bit g64", "Q4_K", "mxfp4", "Q6_K", "Q8_0"):
            s.text(x + 8, y + 4, r["label"], "small")
    s.text(ox + w / 2, oy + h + 34, "bits per weight (scales and biases included)", "small", "middle")
    s.raw(f'<circle cx="506" cy="396" r="4" fill="{SERIES["silica"]}"/>')
    s.text(516, 400, "MLX affine", "small")
    s.raw(f'<rect x="600" y="392" width="8" height="8" fill="{SERIES["llama.cpp"]}"/>')
    s.text(614, 400, "GGUF", "small")
    s.raw(f'<path d="M670 391 L675 400 L665 400 z" fill="{SERIES["accent"]}"/>')
    s.text(682, 400, "mxfp4 / nvfp4 / mxfp8", "small")
    s.text(20, 400, "sources: part4/data/quality.json", "small")
    return "part4/img/quality-size.svg", s.render()


def memory_breakdown(root, silica):
    setups = [(4096, "f16"), (4096, "q8"), (4096, "q4"), (32768, "f16"), (32768, "q8"), (32768, "q4")]
    bars = []
    for ctx, kv in setups:
        out = subprocess.run([str(silica), "fit", "llama-3.1-8b", "--ctx", str(ctx), "--kv", kv,
                              "--profile", "16G", "--json"], capture_output=True, text=True, check=True).stdout
        d = json.loads(out)
        parts = (d["weights_resident_bytes"], d["kv_bytes"], d["overhead_bytes"])  # overhead includes compute
        assert sum(parts) == d["total_bytes"], (ctx, kv, parts, d["total_bytes"])
        bars.append((f"bf16, {ctx // 1024}K ctx, KV {kv}", parts, d["total_bytes"]))
    budgets = []
    for prof in ("8G", "16G", "24G", "32G"):
        d = json.loads(subprocess.run([str(silica), "fit", "llama-3.1-8b", "--profile", prof, "--json"],
                                      capture_output=True, text=True, check=True).stdout)
        budgets.append((prof, d["budget_bytes"]))
    W, L, T, BH, GAP = 880, 200, 64, 26, 12
    H = T + len(bars) * (BH + GAP) + 92
    xmax = 24
    sx = lambda b: L + b / GIB / xmax * (W - L - 40)
    desc = "; ".join(f"{name}: weights {p[0] / GIB:.2f} GiB resident, KV {p[1] / GIB:.2f} GiB, compute and "
                     f"overhead {p[2] / GIB:.2f} GiB, total {t / GIB:.2f} GiB" for name, p, t in bars)
    bud = ", ".join(f"{k[:-1]} GB Mac {v / GIB:.2f} GiB" for k, v in budgets)
    s = Svg(W, H, "Resident memory of Llama-3.1-8B in bf16 by context and KV-cache type",
            f"Stacked horizontal bars of the resident memory silica fit estimates. {desc}. Dashed lines: the "
            f"Metal GPU working-set budgets of Macs ({bud}), which limit MLX and llama.cpp's Metal backend; "
            "silica's own engine runs on the CPU and is limited by RAM.")
    s.text(20, 28, "Llama-3.1-8B bf16: what takes memory (silica fit --json)", "h")
    colors = [("weights (resident)", PALETTE["blue"]), ("KV cache", PALETTE["amber"]),
              ("compute + overhead", PALETTE["green"])]
    for i, (name, parts, total) in enumerate(bars):
        y = T + i * (BH + GAP)
        s.text(L - 8, y + BH / 2 + 4, name, "", "end")
        x = L
        for (lab, col), b in zip(colors, parts):
            w = sx(b) - L
            s.rect(x, y, max(w, 0.5), BH, col)
            x += w
        s.text(x + 6, y + BH / 2 + 4, f"{total / GIB:.2f} GiB", "small")
    base = T + len(bars) * (BH + GAP)
    for k, v in budgets:
        x = sx(v)
        s.line(x, T - 10, x, base, "dash")
        s.text(x, T - 14, f"{k[:-1]} GB Mac", "small", "middle")
    for g in range(0, xmax + 1, 4):
        s.line(sx(g * GIB), base, sx(g * GIB), base + 5, "axis")
        s.text(sx(g * GIB), base + 18, f"{g}", "small", "middle")
    s.text(sx(xmax * GIB) , base + 34, "GiB", "small", "end")
    lx = L
    for lab, col in colors:
        s.rect(lx, base + 46, 12, 12, col)
        s.text(lx + 18, base + 56, lab, "small")
        lx += 170
    s.text(20, H - 12, "dashed: Metal working-set budgets (MLX, llama.cpp Metal); silica's engine runs on the "
                       "CPU, where the limit is RAM (silica fit without --profile)", "small")
    return "part6/img/memory-breakdown.svg", s.render()


ALL = [roofline, quality_size, memory_breakdown]
__all__ = ["ALL", "INK2"]
