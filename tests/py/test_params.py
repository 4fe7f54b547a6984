"""Logical parameter counts (sl_checkpoint_params) in `inspect`, `fit`, the store's
metadata and part1's mlx_example, against the real peers' own counts:
mlx_lm.utils.get_total_parameters on the model mlx_lm loads (quantized weights count
weight.size * 32 / bits, scales and biases not at all), mlx.utils.tree_flatten of the
float model before quantization, and gguf-py's ReaderTensor.n_elements.
"""
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlx.utils import tree_flatten
from mlx_lm.utils import get_total_parameters, load_model

from conftest import ROOT, SILICA, run_silica
from test_fit import TINY, mlx_quantize, write_model

MLX_EXAMPLE = Path(os.environ.get("SILICA_EXAMPLES", SILICA.parent / "examples")) / "part1" / "mlx_example"


def human(n):
    """3 significant digits and K/M/B/T, written independently of silica."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale * 0.9995:
            x = n / scale
            return f"{x:.{2 if x < 9.995 else 1 if x < 99.95 else 0}f} {unit}"
    return str(n)


def silica_counts(d):
    """(inspect --json, inspect text, fit --json, fit text, mlx_example) parameter counts."""
    ij = run_silica("inspect", "--json", d, check=True).json()["total_params"]
    it = run_silica("inspect", d, check=True).out
    fj = run_silica("fit", d, "--json", check=True).json()["params"]
    ft = run_silica("fit", d, check=True).out
    ex = subprocess.run([str(MLX_EXAMPLE), str(d)], capture_output=True, text=True, timeout=60)
    assert ex.returncode == 0, ex.stderr
    total = [l for l in ex.stdout.splitlines() if l.startswith("total ")][0]
    return ij, it, fj, ft, int(total.split()[3])


def check_all(d, want):
    ij, it, fj, ft, ex = silica_counts(d)
    assert ij == fj == ex == want
    assert re.search(rf"^params:\s+{want} \({re.escape(human(want))}\)$", it, re.M), it
    assert f", {human(want)} parameters, " in ft, ft


def test_demo_model_counts_like_mlx_lm():
    """The shipped 4-bit demo: 23.1 M parameters, not its 3.6 M packed words."""
    demo = ROOT / "models" / "demo"
    model, _ = load_model(demo)
    want = get_total_parameters(model)
    assert want == 23_077_376
    check_all(demo, want)
    index = json.loads((demo / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_parameters"] == want


@pytest.mark.parametrize("bits,recipe", [(4, None), (8, None), (3, None), (4, "mixed_4_6"), (2, "mixed_2_6")])
def test_mlx_quantized_counts_like_mlx_lm(tmp_path, bits, recipe):
    cfg = dict(TINY, intermediate_size=320, tie_word_embeddings=True)
    write_model(tmp_path / "f", cfg)
    float_model, _ = load_model(tmp_path / "f")
    before = sum(v.size for _, v in tree_flatten(float_model.parameters()))
    mlx_quantize(tmp_path / "f", tmp_path / "q", bits, 64, recipe)
    qmodel, _ = load_model(tmp_path / "q")
    assert get_total_parameters(qmodel) == before   # the peer's own count survives quantization
    check_all(tmp_path / "q", before)
    check_all(tmp_path / "f", before)


def test_store_metadata_counts_logical_params(tmp_path):
    """`silica import` of a 4-bit MLX directory records the logical count."""
    cfg = dict(TINY, tie_word_embeddings=True)
    write_model(tmp_path / "f", cfg)
    float_model, _ = load_model(tmp_path / "f")
    want = sum(v.size for _, v in tree_flatten(float_model.parameters()))
    mlx_quantize(tmp_path / "f", tmp_path / "q", 4, 64)
    env = {"SILICA_HOME": str(tmp_path / "home")}
    run_silica("import", tmp_path / "q", "acme/tiny-4bit", check=True, env=env)
    vs = run_silica("list", "--json", check=True, env=env).json()
    assert [v["params"] for v in vs] == [want]


def test_gguf_counts_like_gguf_py(tmp_path):
    import gguf
    from gguf.quants import quantize
    p = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_block_count(1)
    w.add_embedding_length(64)
    w.add_head_count(2)
    rng = np.random.default_rng(3)
    for name, shape, qt in [("token_embd.weight", (96, 64), gguf.GGMLQuantizationType.Q4_0),
                            ("blk.0.attn_q.weight", (64, 64), gguf.GGMLQuantizationType.Q8_0),
                            ("blk.0.ffn_down.weight", (64, 256), gguf.GGMLQuantizationType.Q5_1),
                            ("blk.0.attn_norm.weight", (64,), None)]:
        a = rng.standard_normal(shape).astype(np.float32)
        if qt is None:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, quantize(a, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    want = sum(int(t.n_elements) for t in gguf.GGUFReader(str(p)).tensors)
    assert want == 96 * 64 + 64 * 64 + 64 * 256 + 64
    assert run_silica("inspect", "--json", p, check=True).json()["total_params"] == want
    assert re.search(rf"^params:\s+{want} \({re.escape(human(want))}\)$", run_silica("inspect", p, check=True).out, re.M)


def test_fit_prints_billions_for_an_8b_model():
    """fit's text line: "8.03 B parameters" (was "0.01 B" for a 14.6 M model)."""
    n = run_silica("fit", "llama-3.1-8b", "--json", check=True).json()["params"]
    assert 8.0e9 < n < 8.1e9
    assert f", {human(n)} parameters, " in run_silica("fit", "llama-3.1-8b", check=True).out
