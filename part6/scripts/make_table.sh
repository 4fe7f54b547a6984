#!/bin/sh
# make_table.sh — regenerate part6's guide table and memory-breakdown SVG from
# the estimator itself (`silica fit NAME --json`), so the docs can never drift
# from the code.  Usage: part6/scripts/make_table.sh [path/to/silica]
# Rewrites the text between the guide-table markers in part6/README.md and
# writes part6/img/memory-breakdown.svg.  Needs python3 (standard library).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
silica=${1:-$here/../build/silica}
[ -x "$silica" ] || { echo "make_table.sh: silica binary not found at $silica" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $("$silica" fit --list); do
    "$silica" fit "$m" --ctx 4096 --json > "$tmp/$m.4k.json"
done
for ctx in 4096 32768; do
    "$silica" fit llama-3.1-8b --ctx $ctx --json > "$tmp/bd.$ctx.f16.json"
    "$silica" fit llama-3.1-8b --ctx $ctx --kv q8 --json > "$tmp/bd.$ctx.q8.json"
done
python3 - "$tmp" "$here" <<'PY'
import glob, json, os, re, sys
tmp, here = sys.argv[1], sys.argv[2]
GIB = 1 << 30
cols = ["8G", "16G", "24G", "32G", "64G", "128G"]
names = {"q8": "8-bit", "q6": "6-bit", "q5": "5-bit", "mixed_4_6": "mixed 4/6", "q4g32": "4-bit g32",
         "q4": "4-bit", "mixed_3_6": "mixed 3/6", "q3": "3-bit", "mixed_2_6": "mixed 2/6", "as-is": "bf16"}
def ctx(n):
    return f"{n // 1024}K" if n >= 1024 else str(n)
rows = []
for f in sorted(glob.glob(os.path.join(tmp, "*.4k.json")), key=lambda p: json.load(open(p))["params"]):
    d = json.load(open(f))
    cells = []
    for c in cols:
        b = d["profiles"][c]["best"]
        if b["verdict"] == "no":
            cells.append("—")
            continue
        s = f'{names[b["setup"]]} · {b["total_bytes"] / GIB:.1f} GiB · ≤{ctx(int(b["max_ctx"]))}'
        cells.append(s + (" (tight)" if b["verdict"] == "tight" else ""))
    name = os.path.basename(f)[:-len(".4k.json")]
    rows.append(f'| {name} | {d["params"] / 1e9:.2f} B | {d["weights_bytes"] / GIB:.1f} GiB | ' + " | ".join(cells) + " |")
table = ["| model | params | bf16 weights | " + " | ".join(c.replace("G", " GB") for c in cols) + " |",
         "|---|---|---|" + "---|" * len(cols)] + rows
readme = os.path.join(here, "README.md")
text = open(readme).read()
new = re.sub(r"(<!-- guide-table:begin -->\n).*?(<!-- guide-table:end -->)",
             lambda m: m.group(1) + "\n".join(table) + "\n" + m.group(2), text, flags=re.S)
open(readme, "w").write(new)

# memory breakdown of Llama-3.1-8B: stacked bars against Mac budgets
bars = []
for c in (4096, 32768):
    f16 = json.load(open(os.path.join(tmp, f"bd.{c}.f16.json")))
    q8kv = json.load(open(os.path.join(tmp, f"bd.{c}.q8.json")))
    for label, w in (("bf16", f16["weights_bytes"]), ("8-bit", f16["quantized_weights_bytes"]["q8"]),
                     ("4-bit", f16["quantized_weights_bytes"]["q4"])):
        bars.append((f"{label}, {ctx(c)} ctx", w, f16["kv_bytes"], f16["overhead_bytes"]))
    bars.append((f"4-bit, {ctx(c)} ctx, KV q8", f16["quantized_weights_bytes"]["q4"], q8kv["kv_bytes"],
                 q8kv["overhead_bytes"]))
budgets = [(k, f16["profiles"][k]["budget_bytes"]) for k in ("8G", "16G", "24G", "32G")]
W, L, R, T, BH, GAP = 860, 190, 30, 60, 26, 12
H = T + len(bars) * (BH + GAP) + 70
xmax = 36
sx = lambda b: L + b / GIB / xmax * (W - L - R)
colors = [("weights", "#4e79a7"), ("KV cache", "#f28e2b"), ("compute + overhead", "#59a14f")]
desc = "; ".join(f"{n}: weights {w / GIB:.1f} GiB, KV {k / GIB:.1f} GiB, compute and overhead {o / GIB:.2f} GiB"
                 for n, w, k, o in bars)
bud = ", ".join(f"{k[:-1]} GB Mac {v / GIB:.2f} GiB" for k, v in budgets)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
       f'aria-labelledby="t d" font-family="sans-serif" font-size="12">',
       '<title id="t">Resident memory of Llama-3.1-8B by precision and context, against Mac GPU budgets</title>',
       f'<desc id="d">Stacked bars of estimated resident memory (silica fit). {desc}. '
       f'Dashed lines: GPU working-set budgets ({bud}).</desc>',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="24" font-size="15" text-anchor="middle">Llama-3.1-8B: what takes memory '
       '(silica fit estimate)</text>']
for i, (n, w, k, o) in enumerate(bars):
    y = T + i * (BH + GAP)
    out.append(f'<text x="{L - 8}" y="{y + BH / 2 + 4}" text-anchor="end">{n}</text>')
    x = L
    for (cname, col), v in zip(colors, (w, k, o)):
        out.append(f'<rect x="{x:.1f}" y="{y}" width="{sx(v) - L:.1f}" height="{BH}" fill="{col}"/>')
        x += sx(v) - L
    out.append(f'<text x="{x + 6:.1f}" y="{y + BH / 2 + 4}">{(w + k + o) / GIB:.1f} GiB</text>')
base = T + len(bars) * (BH + GAP)
for g in range(0, xmax + 1, 4):
    out.append(f'<line x1="{sx(g * GIB):.1f}" y1="{base}" x2="{sx(g * GIB):.1f}" y2="{base + 5}" stroke="#444"/>')
    out.append(f'<text x="{sx(g * GIB):.1f}" y="{base + 18}" text-anchor="middle">{g}</text>')
out.append(f'<text x="{(L + W - R) / 2}" y="{base + 36}" text-anchor="middle">GiB</text>')
for k, v in budgets:
    out.append(f'<line x1="{sx(v):.1f}" y1="{T - 8}" x2="{sx(v):.1f}" y2="{base}" stroke="#c00" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{sx(v):.1f}" y="{T - 12}" text-anchor="middle" fill="#c00">{k[:-1]} GB Mac</text>')
for j, (cname, col) in enumerate(colors):
    x = L + j * 170
    out.append(f'<rect x="{x}" y="{H - 22}" width="12" height="12" fill="{col}"/>')
    out.append(f'<text x="{x + 18}" y="{H - 12}">{cname}</text>')
out.append("</svg>")
os.makedirs(os.path.join(here, "img"), exist_ok=True)
open(os.path.join(here, "img", "memory-breakdown.svg"), "w").write("\n".join(out) + "\n")
PY
echo "make_table.sh: updated $here/README.md and $here/img/memory-breakdown.svg"
