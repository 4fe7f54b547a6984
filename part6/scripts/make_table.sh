#!/bin/sh
# make_table.sh — regenerate part6's guide table and memory-breakdown SVG from
# the estimator itself (`silica fit NAME --json`), so the docs can never drift
# from the code.  Usage: part6/scripts/make_table.sh [path/to/silica]
# Rewrites the text between the guide-table markers in part6/README.md.
# (memory-breakdown.svg comes from `python3 tools/figures`, also from `silica fit --json`.)
# Needs python3 (standard library).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
silica=${1:-$here/../build/silica}
[ -x "$silica" ] || { echo "make_table.sh: silica binary not found at $silica" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $("$silica" fit --list); do
    "$silica" fit "$m" --ctx 4096 --json > "$tmp/$m.4k.json"
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

PY
echo "make_table.sh: updated $here/README.md"
