"""Write (or --check) every figure of the learning path.

    python3 tools/figures [--check] [--silica build/silica]

Diagrams (diagrams.py) and charts (charts.py) are generated; the hand-drawn byte layouts of part2 and
part4 (RESTYLED) are given the common style in place. --check writes nothing and exits 1 listing every
file that differs from what would be generated (tests/py/test_figures.py runs it). Standard library only.
"""
import argparse
import sys
from pathlib import Path

import charts
import diagrams
from svg import restyle

ROOT = Path(__file__).resolve().parents[2]
RESTYLED = ["part2/img/safetensors.svg", "part2/img/torch-zip.svg", "part2/img/npy.svg", "part2/img/gguf.svg",
            "part4/img/mlx-affine.svg", "part4/img/gguf-q4_0.svg"]


def generate(silica):
    out = {}
    for f in diagrams.ALL:
        path, text = f()
        out[path] = text
    for f in charts.ALL:
        path, text = f(ROOT, silica)
        out[path] = text
    for path in RESTYLED:
        out[path] = restyle((ROOT / path).read_text(encoding="utf-8"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on drift")
    ap.add_argument("--silica", default=str(ROOT / "build" / "silica"), help="the silica binary (for fit)")
    a = ap.parse_args()
    drift = []
    for path, text in generate(Path(a.silica)).items():
        p = ROOT / path
        old = p.read_text(encoding="utf-8") if p.exists() else None
        if old != text:
            drift.append(path)
            if not a.check:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text, encoding="utf-8")
    for path in drift:
        print(("differs: " if a.check else "wrote: ") + path)
    return 1 if (a.check and drift) else 0


if __name__ == "__main__":
    sys.exit(main())
