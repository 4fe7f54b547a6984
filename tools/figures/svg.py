"""The one style of the learning path's figures (part*/img/*.svg) and a tiny SVG writer.

Invariants every figure keeps (tests/py/test_figures.py checks them on each file):
- an opaque, light background card (`<rect class="bg" …>` first), so dark text stays readable when
  a page is dark;
- `<title>` and `<desc>` (role="img", aria-labelledby), the desc saying what the figure shows;
- the fonts and palette below: DejaVu Sans / DejaVu Sans Mono (Helvetica/Menlo fallbacks), text
  #1f2328, secondary #57606a, pastel fills from PALETTE.
Output is deterministic (fixed number formatting), so a regenerated file is byte-identical.
"""
from xml.sax.saxutils import escape

PALETTE = {
    "blue": "#bfdbfe", "blue2": "#dbeafe", "green": "#bbf7d0", "green2": "#dcfce7", "amber": "#fde68a",
    "amber2": "#fef3c7", "violet": "#ddd6fe", "violet2": "#ede9fe", "rose": "#fecdd3", "gray": "#e5e7eb",
    "gray2": "#f3f4f6", "panel": "#f8fafc",
}
# data series (charts): readable on the white card, distinguishable in grayscale by marker shape
SERIES = {"silica": "#1d4ed8", "llama.cpp": "#c2410c", "line": "#15803d", "accent": "#7c3aed"}
INK, INK2, STROKE = "#1f2328", "#57606a", "#374151"


def style(mono_px=12):
    return f"""  <style>
    .bg {{ fill: #ffffff; stroke: #d0d7de; stroke-width: 1; }}
    text {{ font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 13px; fill: {INK}; }}
    .mono {{ font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: {mono_px}px; }}
    .small {{ font-size: 11px; fill: {INK2}; }}
    .h {{ font-size: 16px; font-weight: bold; }}
    .b {{ font-weight: bold; }}
    .seg {{ stroke: {STROKE}; stroke-width: 1; }}
    .grid {{ stroke: #d0d7de; stroke-width: 1; }}
    .axis {{ stroke: {INK2}; stroke-width: 1; }}
    .zoom {{ stroke: #6b7280; stroke-width: 1; stroke-dasharray: 3 3; fill: none; }}
    .arrow {{ stroke: {INK2}; stroke-width: 1.3; fill: none; marker-end: url(#a); }}
    .dash {{ stroke: {INK2}; stroke-width: 1.2; stroke-dasharray: 5 4; fill: none; }}
  </style>
  <defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK2}"/></marker></defs>"""


def bg(w, h):
    return f'  <rect class="bg" x="0.5" y="0.5" width="{w - 1}" height="{h - 1}" rx="8"/>'


def n(v):
    """Coordinates: at most one decimal, no trailing zeros (deterministic)."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


class Svg:
    def __init__(self, w, h, title, desc, mono_px=12):
        self.w, self.h, self.title, self.desc, self.mono_px = w, h, title, desc, mono_px
        self.items = []

    def raw(self, s):
        self.items.append("  " + s)

    def rect(self, x, y, w, h, fill="gray", cls="seg", rx=0, extra=""):
        f = PALETTE.get(fill, fill)
        r = f' rx="{rx}"' if rx else ""
        self.raw(f'<rect class="{cls}" x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{n(h)}"{r} fill="{f}"{extra}/>')

    def text(self, x, y, s, cls="", anchor="", fill=""):
        c = f' class="{cls}"' if cls else ""
        a = f' text-anchor="{anchor}"' if anchor else ""
        f = f' style="fill:{fill}"' if fill else ""
        self.raw(f'<text x="{n(x)}" y="{n(y)}"{c}{a}{f}>{escape(s)}</text>')

    def box(self, x, y, w, h, fill, label, sub="", rx=6, cls_label=""):
        self.rect(x, y, w, h, fill, rx=rx)
        if sub:
            self.text(x + w / 2, y + h / 2 - 3, label, cls_label, "middle")
            self.text(x + w / 2, y + h / 2 + 13, sub, "small", "middle")
        else:
            self.text(x + w / 2, y + h / 2 + 4, label, cls_label, "middle")

    def line(self, x1, y1, x2, y2, cls="arrow", color=""):
        c = f' style="stroke:{color}"' if color else ""
        self.raw(f'<line class="{cls}" x1="{n(x1)}" y1="{n(y1)}" x2="{n(x2)}" y2="{n(y2)}"{c}/>')

    def path(self, d, cls="arrow", extra=""):
        self.raw(f'<path class="{cls}" d="{d}"{extra}/>')

    def render(self):
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
                f'viewBox="0 0 {self.w} {self.h}" role="img" aria-labelledby="t d">\n'
                f'  <title id="t">{escape(self.title)}</title>\n  <desc id="d">{escape(self.desc)}</desc>\n')
        return head + style(self.mono_px) + "\n" + bg(self.w, self.h) + "\n" + "\n".join(self.items) + "\n</svg>\n"


def restyle(text):
    """Give a hand-drawn figure (part2, part4) the common style: its <style> block (and marker
    defs) replaced by style(), an opaque card behind everything. Idempotent."""
    import re
    mono = re.search(r"\.mono \{[^}]*font-size: (\d+)px", text)
    mono_px = int(mono.group(1)) if mono else 12
    text = re.sub(r"\n  <style>.*?</style>", "", text, flags=re.S)
    text = re.sub(r'\n  <defs><marker id="a".*?</defs>', "", text, flags=re.S)
    text = re.sub(r'\n  <rect class="bg"[^>]*/>', "", text)
    head_end = text.index("</desc>") + len("</desc>")
    m = re.search(r'width="(\d+)" height="(\d+)"', text)
    w, h = int(m.group(1)), int(m.group(2))
    return text[:head_end] + "\n" + style(mono_px) + "\n" + bg(w, h) + text[head_end:]
