"""`silica quantize` / `convert --to gguf` with llama-quantize's named mixes:
the CLI surface (names, --help table, --pure, --imatrix, bad names), the
reported row-length fallbacks and --report's bits per weight, checked on the
GGUF silica writes with gguf-py's reader.  Byte identity with llama-quantize
itself is tests/py/test_llama_cpp_check.py (replaying a real llama.cpp run).
"""
import json
import re

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType as GT

from conftest import assert_clean_error, run_silica

MIXES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
         "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL"]


def types_of(path):
    return {t.name: t.tensor_type.name for t in GGUFReader(str(path)).tensors}


@pytest.fixture(scope="module")
def qwen3_src(engine_models, tmp_path_factory):
    """qwen3 reference model (rows of 64 and 128, GQA 4, untied head) + a byte-level tokenizer."""
    import importlib.util
    import shutil
    from conftest import ROOT
    spec = importlib.util.spec_from_file_location("lcc", ROOT / "tools" / "llama_cpp_check.py")
    lcc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lcc)
    src = tmp_path_factory.mktemp("mix") / "qwen3"
    shutil.copytree(engine_models / "qwen3" / "f32-st", src)
    (src / "tokenizer.json").write_text(lcc.byte_tokenizer_json(), encoding="utf-8")
    return src


@pytest.fixture(scope="module")
def qwen3_f16(qwen3_src):
    out = qwen3_src.parent / "qwen3-f16.gguf"
    run_silica("convert", qwen3_src, out, "--to", "gguf", "--q-type", "F16", check=True)
    return out


def test_help_lists_every_mix_with_bpw():
    r = run_silica("quantize", "--help", check=True)
    for m in MIXES:
        line = [l for l in r.out.splitlines() if l.split()[:1] == [m]]
        assert line and re.search(r"\d+\.\d\d bpw", line[0]), m
    assert "Q4_K     alias for Q4_K_M" in r.out and "--pure" in r.out and "--imatrix" in r.out
    # Llama-3-8B: llama-quantize's table says 4.58 GiB for Q4_K_M and 7.96 GiB for Q8_0 (8.03e9 weights)
    bpw = {l.split()[0]: float(l.split()[1]) for l in r.out.splitlines() if l.endswith("(mix)")}
    assert abs(bpw["Q4_K_M"] - 4.58 * 2**30 * 8 / 8.03e9) < 0.02
    assert abs(bpw["Q8_0"] - 7.96 * 2**30 * 8 / 8.03e9) < 0.03


def test_unknown_mix_lists_the_valid_ones(qwen3_f16, tmp_path):
    r = run_silica("quantize", qwen3_f16, tmp_path / "x.gguf", "--q-type", "Q4_K_X")
    assert_clean_error(r, "Q4_K_X", "Q4_K_M", "Q3_K_S", "IQ4_NL", "Q8_0")
    assert not (tmp_path / "x.gguf").exists()


def test_imatrix_is_a_clean_error(qwen3_f16, tmp_path):
    r = run_silica("quantize", qwen3_f16, tmp_path / "x.gguf", "--q-type", "Q4_K_M", "--imatrix", "m.dat")
    assert_clean_error(r, "--imatrix", "not supported")
    assert not (tmp_path / "x.gguf").exists()


def test_fallbacks_are_reported_one_line_per_kind(qwen3_f16, tmp_path):
    """Q4_K on rows of 64/128 falls back to Q5_0 (llama.cpp's tensor_type_fallback);
    every changed tensor is counted in exactly one reported line."""
    out = tmp_path / "q.gguf"
    r = run_silica("quantize", qwen3_f16, out, "--q-type", "Q4_K_M", check=True)
    lines = [l for l in r.out.splitlines() if l.startswith("fallback:")]
    assert "fallback: 10 tensors: Q4_K \u2192 Q5_0 (row length 64 not a multiple of 256)" in lines
    t = types_of(out)
    n = sum(int(re.match(r"fallback: (\d+) tensor", l).group(1)) for l in lines)
    assert n == sum(1 for k, v in t.items() if v in ("Q5_0", "Q8_0") and k != "output.weight")
    assert "Q4_K" not in t.values()           # nothing is left in F16 either
    assert "F16" not in t.values()
    j = run_silica("quantize", qwen3_f16, out, "--q-type", "Q4_K_M", "--force", "--json", check=True).json()
    assert sum(f["tensors"] for f in j["fallbacks"]) == n
    assert {"wanted": "Q4_K", "used": "Q5_0", "row_length": 64, "tensors": 10} in j["fallbacks"]


def test_pure_gives_one_type(qwen3_f16, tmp_path):
    out = tmp_path / "p.gguf"
    run_silica("quantize", qwen3_f16, out, "--q-type", "Q8_0", "--pure", check=True)
    t = types_of(out)
    assert {v for k, v in t.items() if not k.endswith("norm.weight")} == {"Q8_0"}
    mixed = tmp_path / "m.gguf"
    run_silica("quantize", qwen3_f16, mixed, "--q-type", "Q4_0", check=True)
    assert types_of(mixed)["output.weight"] == "Q8_0"   # mix: Q6_K for the head, which falls back on rows of 64


def test_report_gives_types_and_bits_per_weight(qwen3_f16, tmp_path):
    out = tmp_path / "r.gguf"
    j = run_silica("quantize", qwen3_f16, out, "--q-type", "Q5_K_M", "--report", "--json", check=True).json()
    rep = {e["name"]: e for e in j["report"]}
    t = types_of(out)
    assert set(rep) == set(t)
    for name, ty in t.items():
        assert rep[name]["status"].split()[0] == ty
    r = GGUFReader(str(out))
    size = sum(int(x.n_bytes) for x in r.tensors)
    elems = sum(int(np.prod(x.shape)) for x in r.tensors)
    assert j["parameters"] == elems
    assert abs(j["bits_per_weight"] - size * 8 / elems) < 1e-9
    q = rep["blk.0.attn_q.weight"]
    assert q["status"] == "Q5_1 (Q5_K: row 64)" and q["bits_per_weight"] == 6.0 and 0 < q["relative_error"] < 0.05
    txt = run_silica("quantize", qwen3_f16, out, "--q-type", "Q5_K_M", "--report", "--force", check=True).out
    m = re.search(r"bits per weight: ([\d.]+) \((\d+) parameters\)", txt)
    assert m and float(m.group(1)) > 5 and int(m.group(2)) == elems


def test_convert_names_the_mix_like_llama_quantize(qwen3_src, tmp_path):
    out = tmp_path / "c.gguf"
    run_silica("convert", qwen3_src, out, "--to", "gguf", "--q-type", "q3_k_l", check=True)
    r = GGUFReader(str(out))
    assert r.fields["general.file_type"].parts[-1][0] == 13       # LLAMA_FTYPE_MOSTLY_Q3_K_L
    t = types_of(out)
    assert t["blk.0.attn_v.weight"] == "Q5_1"                    # Q3_K_L: attn_v Q5_K, on rows of 64 -> Q5_1
