"""The learning path's figures: regenerated from their data without drift, one style, used with alt
text and a visible caption.

- `tools/figures --check` regenerates every diagram and chart (the memory chart by running this
  build's `silica fit --json`) and must find every committed file identical;
- every part*/img/*.svg parses as XML, has <title> and <desc>, and an opaque background as its first
  drawn element (readable on dark pages); generated and restyled ones carry the common style;
- every image an article shows has alt text that describes it (not a file name) and a caption line
  `*Figure: …*` right under it; every committed figure is shown by some article.
"""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import SILICA

ROOT = Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"
FIGURES = sorted(ROOT.glob("part*/img/*.svg"))
ARTICLES = sorted(ROOT.glob("part*/*.md")) + [ROOT / "README.md"]
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+\.svg)\)")
PLOT_OUTPUT = {"part6/img/run-monitor.svg",   # made by `silica plot` itself (its own style, tested there)
               "part8/img/compare-kld.svg"}  # made by `silica compare --svg` (part8/scripts/compare_demo.sh)


def test_figures_regenerate_without_drift():
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "figures"), "--check", "--silica", str(SILICA)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"figures drifted from their data (run python3 tools/figures):\n{p.stdout}{p.stderr}"


def test_figures_check_detects_drift(tmp_path):
    """--check is not a no-op: a copy of the tool tree with one changed data point reports drift."""
    import shutil
    shutil.copytree(ROOT / "tools" / "figures", tmp_path / "tools" / "figures")
    for rel in ("part9/data", "part4/data", "part2/img", "part4/img", "part9/img", "part3/img", "part5/img",
                "part6/img", "part7/img"):
        shutil.copytree(ROOT / rel, tmp_path / rel)
    bench = tmp_path / "part9/data/engine_bench.json"
    bench.write_text(bench.read_text().replace('"silica_tg": 10.98', '"silica_tg": 12.5'))
    p = subprocess.run([sys.executable, str(tmp_path / "tools" / "figures"), "--check", "--silica", str(SILICA)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "part9/img/roofline.svg" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("svg", FIGURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_figure_style(svg):
    rel = str(svg.relative_to(ROOT))
    text = svg.read_text(encoding="utf-8")
    root = ET.fromstring(text)
    assert root.tag == SVG_NS + "svg"
    title, desc = root.find(SVG_NS + "title"), root.find(SVG_NS + "desc")
    assert title is not None and title.text and len(title.text) > 10, rel
    assert desc is not None and desc.text and len(desc.text) > 80, f"{rel}: <desc> must say what it shows"
    assert root.get("role") == "img"
    first = next(e for e in root if e.tag.split("}")[1] not in ("title", "desc", "style", "defs"))
    assert first.tag == SVG_NS + "rect", f"{rel}: first drawn element must be the background"
    if rel in PLOT_OUTPUT:
        assert first.get("fill") == "white"
        return
    assert first.get("class") == "bg" and first.get("width") and float(first.get("width")) >= float(root.get("width")) - 1
    style = root.find(SVG_NS + "style").text
    assert ".bg { fill: #ffffff;" in style, rel  # opaque, not transparent
    assert '"DejaVu Sans", Helvetica' in style and '"DejaVu Sans Mono", Menlo' in style
    assert "fill: #1f2328" in style  # one ink colour
    assert "font-family" not in text.split("</style>", 1)[1], f"{rel}: fonts come from the common style only"


def _shown():
    shown = {}
    for md in ARTICLES:
        text = md.read_text(encoding="utf-8")
        for m in IMAGE.finditer(text):
            fig = (md.parent / m.group(2)).resolve()
            line = text.count("\n", 0, m.end())
            shown.setdefault(fig, []).append((md, line, " ".join(m.group(1).split()), text.splitlines()))
    return shown


def test_every_figure_is_shown_with_alt_text_and_caption():
    shown = _shown()
    for fig in FIGURES:
        assert fig.resolve() in shown, f"{fig.relative_to(ROOT)} is not shown by any article"
    for fig, uses in shown.items():
        assert fig.exists(), f"missing figure {fig}"
        for md, i, alt, lines in uses:
            where = f"{md.relative_to(ROOT)}:{i + 1}"
            assert len(alt) >= 40 and not alt.lower().endswith(".svg") and " " in alt, \
                f"{where}: alt text must say what the figure shows"
            after = next((ln for ln in lines[i + 1:] if ln.strip()), "")
            assert after.startswith("*Figure: ") and after.rstrip().endswith("*"), \
                f"{where}: a visible caption line `*Figure: …*` must follow the image"
