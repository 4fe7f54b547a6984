"""The learning path's structure, scripts and the examples added for parts 2, 4 and 9.

- every part (part1 … part9, part8 once written) has README.md, examples/*.c, scripts/*.sh, img/*.svg,
  and part0/README.md lists every part in order;
- every script is POSIX sh (no bash-4 or GNU-only constructs) and passes shellcheck, and runs on the
  models the repository ships;
- part2's where_is, part4's quantize_row and part9's roofline are compared with real peers
  (safetensors + numpy, mx.quantize, gguf-py).
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import SILICA

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(os.environ.get("SILICA_EXAMPLES", SILICA.parent / "examples"))
PARTS = sorted(p for p in ROOT.glob("part[1-9]") if p.is_dir())
SCRIPTS = sorted(ROOT.glob("part*/scripts/*.sh"))


def sh(args, tmp_path, **kw):
    env = dict(os.environ, SILICA=str(SILICA), SILICA_EXAMPLES=str(EXAMPLES), SILICA_HOME=str(tmp_path / "home"))
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, env=env, **kw)
    return p


# ---------------------------------------------------------------- structure

@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_part_structure(part):
    assert (part / "README.md").is_file()
    for sub, pattern in (("examples", "*.c"), ("scripts", "*.sh"), ("img", "*.svg")):
        assert sorted((part / sub).glob(pattern)), f"{part.name}/{sub}/ has no {pattern}"


def test_contents_page_lists_every_part_in_order():
    text = (ROOT / "part0" / "README.md").read_text()
    rows = re.findall(r"^\| (\d) \| \[?([^|\]]+)", text, flags=re.M)
    assert [int(n) for n, _ in rows] == list(range(1, 10)), rows
    for part in PARTS:
        assert f"../{part.name}/README.md" in text, part.name
    # quantization (part 4) is explained before the parts that use it
    assert text.index("part4/README.md") < text.index("part5/README.md") < text.index("part6/README.md")


# ---------------------------------------------------------------- scripts

def test_scripts_are_posix_and_pass_shellcheck():
    assert SCRIPTS
    for s in SCRIPTS:
        text = s.read_text()
        assert text.startswith("#!/bin/sh\n"), f"{s}: POSIX sh (macOS ships bash 3.2)"
        for bad in ("declare -A", "stat -c", "sed -i", "readarray", "mapfile", "[[", "${!"):
            assert bad not in text, f"{s}: {bad!r} is not portable to macOS"
        assert os.access(s, os.X_OK), f"{s} is not executable"
    p = subprocess.run(["shellcheck", "-s", "sh", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_part1_first_look(tmp_path):
    p = sh([ROOT / "part1/scripts/first_look.sh"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "kernels:" in p.stdout and "params:  23077376 (23.1 M)" in p.stdout
    assert "total 188 tensors 23077376 params" in p.stdout


def test_part2_read_header(tmp_path):
    p = sh([ROOT / "part2/scripts/read_header.sh"], tmp_path)
    assert p.returncode == 0, p.stderr
    raw = (ROOT / "models/sample/model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert f"header length N = {n} bytes (data starts at byte {8 + n})" in p.stdout
    assert raw[8:8 + 60].decode() in p.stdout


def test_part3_convert_demo(tmp_path):
    p = sh([ROOT / "part3/scripts/convert_demo.sh", tmp_path / "out"], tmp_path)
    assert p.returncode == 0, p.stderr
    import gguf
    r = gguf.GGUFReader(str(tmp_path / "out/demo.gguf"))
    assert {t.tensor_type.name for t in r.tensors} >= {"Q4_1"}
    assert re.search(r"^demo-mlx-q8: \d+ ", p.stdout, flags=re.M)
    p = sh([ROOT / "part3/scripts/convert_demo.sh", tmp_path / "out"], tmp_path)
    assert p.returncode == 2 and "exists" in p.stderr


def test_part5_demo_tour(tmp_path):
    p = sh([ROOT / "part5/scripts/demo_tour.sh"], tmp_path)
    assert p.returncode == 0, p.stderr
    from tokenizers import Tokenizer
    ids = Tokenizer.from_file(str(ROOT / "models/demo/tokenizer.json")).encode("def fibonacci(n):", add_special_tokens=False).ids
    assert f'"ids": {ids}'.replace(" ", "") in p.stdout.replace(" ", "")
    rest = p.stdout.split("\n", 1)[1]
    assert rest.startswith("def fibonacci(n):\n") and len(rest) > 40  # detokenized, then 24 generated tokens


def test_part9_ceiling(tmp_path):
    p = sh([ROOT / "part9/scripts/ceiling.sh"], tmp_path)
    assert p.returncode == 0, p.stderr
    bw = float(re.search(r"read bandwidth: ([\d.]+) GB/s", p.stdout).group(1))
    per = int(re.search(r"bytes per token (\d+)", p.stdout).group(1))
    ceil = float(re.search(r"ceiling at [\d.]+ GB/s: ([\d.]+) tok/s", p.stdout).group(1))
    assert abs(ceil - bw * 1e9 / per) < 0.1 + 1e-3 * ceil
    assert "speed:" in p.stdout


def test_part4_quantize_for_machine(tmp_path):
    script = ROOT / "part4/scripts/quantize_for_machine.sh"
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "models/demo", demo)
    before = sorted(tmp_path.iterdir())
    p = sh([script, demo, "--ram", "1G"], tmp_path)
    assert p.returncode == 0 and "nothing to quantize" in p.stdout, p.stdout + p.stderr
    assert sorted(tmp_path.iterdir()) == before  # the 4-bit demo is not turned into something larger
    fit = json.loads(subprocess.run([str(SILICA), "fit", "llama-3.1-8b", "--ram", "8G", "--json"],
                                    capture_output=True, text=True, check=True).stdout)
    rec = fit["recommendations"][0]
    p = sh([script, "llama-3.1-8b", "--ram", "8G", "--dry-run"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert rec["what"] in p.stdout and p.stdout.rstrip().endswith(rec["command"].replace("silica ", "", 1))
    p = sh([script, "llama-3.1-8b", "--profile", "8G", "--dry-run", "--to", "gguf"], tmp_path)
    assert p.returncode == 0 and "--to gguf --q-type Q" in p.stdout, p.stderr
    p = sh([script, "qwen3-32b", "--profile", "8G", "--dry-run"], tmp_path)
    assert p.returncode == 1 and "no quantization would make it fit" in p.stderr
    p = sh([script, demo, "--to", "onnx"], tmp_path)
    assert p.returncode == 2


# ---------------------------------------------------------------- examples against peers

def run_example(part, name, *args):
    exe = EXAMPLES / part / name
    assert exe.exists(), f"example not built at {exe}"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_where_is_matches_safetensors():
    from safetensors.numpy import load_file
    f = ROOT / "models/sample/model.safetensors"
    p = run_example("part2", "where_is", f)
    assert p.returncode == 0, p.stderr
    raw = f.read_bytes()
    tensors = load_file(str(f))
    lines = {l.split()[0]: l for l in p.stdout.splitlines()[1:]}
    assert set(lines) == set(tensors)
    for name, arr in tensors.items():
        m = re.search(r"bytes (\d+)\.\.(\d+) : ([0-9a-f ]+)$", lines[name])
        a, b = int(m.group(1)), int(m.group(2))
        assert raw[a:b] == arr.tobytes(), name
        assert m.group(3).split() == [f"{x:02x}" for x in arr.tobytes()[:8]]
    p = run_example("part2", "where_is", f, "nope")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "nope" in p.stderr


def test_quantize_row_matches_mlx_and_gguf_py():
    import mlx.core as mx
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize, quantize
    p = run_example("part4", "quantize_row")
    assert p.returncode == 0, p.stderr
    out = {l[:20].strip(): l for l in p.stdout.splitlines()}
    x = ((37 * np.arange(256)) % 101 - 50).astype(np.float32) / np.float32(1000)

    def err(y):
        return 100 * np.sqrt(np.sum((y.astype(np.float64) - x) ** 2) / np.sum(x.astype(np.float64) ** 2))

    wq, scales, biases = mx.quantize(mx.array(x).reshape(1, -1), group_size=64, bits=4)
    y = np.array(mx.dequantize(wq, scales, biases, group_size=64, bits=4)).ravel()
    line = out["MLX affine 4-bit g64"]
    assert f"error {err(y):6.3f} %" in line
    s0, b0 = float(np.array(scales)[0, 0]), float(np.array(biases)[0, 0])
    m = re.search(r"scale (\S+) bias (\S+) codes ([\d ]+)$", line)
    assert np.float32(m.group(1)) == np.float32(s0) and np.float32(m.group(2)) == np.float32(b0)
    w0 = int(np.array(wq).view(np.uint32)[0, 0])
    assert [int(c) for c in m.group(3).split()] == [(w0 >> (4 * i)) & 15 for i in range(8)]
    for name, t in (("GGUF Q4_0", T.Q4_0), ("GGUF Q8_0", T.Q8_0)):
        blocks = quantize(x.reshape(1, -1), t)
        y = dequantize(blocks, t).ravel()
        line = out[name]
        assert f"error {err(y):6.3f} %" in line, (line, err(y))
        shown = line.split("block 0:")[1].replace("…", "").split()
        assert shown == [f"{b:02x}" for b in blocks.tobytes()[:len(shown)]]
    q4k = float(re.search(r"error +([\d.]+) %", out["GGUF Q4_K"]).group(1))
    q40 = float(re.search(r"error +([\d.]+) %", out["GGUF Q4_0"]).group(1))
    assert 0 < q4k < q40  # the K-quant's scale search beats Q4_0 at the same 4.5 bits


def test_roofline_counts_what_a_token_reads():
    import mlx.core as mx
    demo = ROOT / "models/demo"
    p = run_example("part9", "roofline", demo, 30)
    assert p.returncode == 0, p.stderr
    total = sum(a.nbytes for a in mx.load(str(demo / "model.safetensors")).values())
    tied = json.loads((demo / "config.json").read_text()).get("tie_word_embeddings", True)
    assert tied and f"weights {total} bytes" in p.stdout and f"bytes per token {total}" in p.stdout
    assert f"ceiling at 30 GB/s: {30e9 / total:.1f} tok/s" in p.stdout
    assert re.search(r"^kernels \w+", p.stdout, flags=re.M)
    for bad in (["x"], [demo, "fast"], [demo, "0"], [ROOT / "nope", "30"]):
        q = run_example("part9", "roofline", *bad)
        assert q.returncode == 2 and q.stderr.count("\n") == 1


def test_part8_compare_demo(tmp_path):
    """The compare app end to end on the demo model (silica's engine only, to keep it short:
    tests/py/test_compare.py runs the other engines against their frameworks)."""
    out = tmp_path / "p8"
    p = subprocess.run(["sh", str(ROOT / "part8/scripts/compare_demo.sh"), str(out)], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, SILICA=str(SILICA), ENGINES="silica"))
    assert p.returncode == 0, p.stderr
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines()
            if l.split()[1:2] == ["silica"] and not l.startswith("engine ")}
    assert set(rows) == {str(out / "demo-pt"), str(out / "demo-mlx-q4"), str(out / "demo-Q4_0.gguf"),
                         "q8", "mixed_3_6", "Q8_0"}, p.stdout
    assert rows[str(out / "demo-pt")][2:5] == ["0", "0", "0"]  # the reference against itself
    assert float(rows["q8"][2]) < float(rows[str(out / "demo-mlx-q4")][2]) < float(rows["mixed_3_6"][2])
    import xml.etree.ElementTree as ET
    ET.parse(out / "kld.svg")
    assert "<svg" in (out / "report.html").read_text()
