"""One architecture table: every family and RoPE scheme survives GGUF export and
import, and the engine, `fit` and `convert` read one model one way.

Oracle: transformers' logits in tests/fixtures/models/engine_models.tar.xz (the
reference models of test_engine.py, every family plus the RoPE variants) and
mlx_lm, which loads the directories GGUF import writes.  For each reference
model: `convert --to gguf --q-type F32`, then `convert x.gguf --to mlx` and
`--to hf`; silica's logits on the GGUF and on both imports must match
transformers' as closely as on the source (1e-4 relative), and mlx_lm's logits
on the mlx import must match transformers'.  build/tools/arch_tool prints the
configuration the engine and the estimator derive from a path: they agree on
the source directory, and the GGUF, its mlx import and its hf import give
equal configurations field by field.
"""
import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import SILICA, assert_clean_error, run_silica

MAIN = ["llama", "llama3", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"]
ROPE = ["llama-linear", "llama-dynamic", "llama-yarn", "phi3-long"]
TOOL = SILICA.parent / "tools" / "arch_tool"
# GGUF's llama architecture has no sliding window (llama.cpp runs Mistral as llama):
# the reference Mistral's window of 4 is lost, so only positions inside it compare.
WINDOW_LOST = {"mistral": 4}
# Reference models that leave what llama.cpp assumes (and GGUF can say): its Gemma 2/3
# scale attention by 1/sqrt(head_dim), not query_pre_attn_scalar (24 here, 16 in every
# released model but the 27B ones, which llama.cpp special-cases); its LongRoPE switches
# factors at the original context rounded to 256 (32 here, 4096 in Phi-3).  They are
# converted from a copy with the value llama.cpp assumes, and the oracle is the engine on
# that copy (test_engine.py ties the engine to transformers on the reference ones).
# mlx_lm's gemma2 has no sliding window: positions inside the reference model's window of 4.
MLX_LM_NO_WINDOW = {"gemma2": 4}
ADJUST = {"gemma2": {"query_pre_attn_scalar": 16}, "gemma3": {"query_pre_attn_scalar": 16},
          "phi3": {"original_max_position_embeddings": 256, "max_position_embeddings": 1024}}


def ids_of(engine_models, arch):
    ref = json.loads((engine_models / arch / "ref.json").read_text())
    return ref["prompt"] + ref["generated"]


def adjusted_source(engine_models, arch, d):
    """The reference model, or a copy with ADJUST's values (top level and in the RoPE object)."""
    src = engine_models / arch / "f32-st"
    if arch not in ADJUST:
        return src
    shutil.copytree(src, d / "src")
    cfg = json.loads((d / "src" / "config.json").read_text())
    cfg.update(ADJUST[arch])
    for rope in (cfg.get("rope_parameters"), cfg.get("rope_scaling")):
        if isinstance(rope, dict) and "original_max_position_embeddings" in rope:
            rope["original_max_position_embeddings"] = ADJUST[arch].get("original_max_position_embeddings",
                                                                        rope["original_max_position_embeddings"])
    (d / "src" / "config.json").write_text(json.dumps(cfg, indent=2))
    return d / "src"


def oracle(engine_models, arch, src, ids):
    """transformers' logits for a reference model; the engine's on an adjusted copy."""
    if arch in ADJUST:
        return logits(src, ids)
    return np.load(engine_models / arch / "logits.npy")


def logits(path, ids):
    r = run_silica("logits", path, "--ids", ",".join(map(str, ids)), "--json", "--kv", "f32", check=True, timeout=300)
    return np.array(r.json()["logits"], dtype=np.float32)


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def config_of(path):
    assert TOOL.exists(), f"arch_tool not built at {TOOL}"
    p = subprocess.run([str(TOOL), "config", str(path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def converted(engine_models, tmp_path_factory):
    """arch -> (source dir, GGUF, mlx import, hf import), made once."""
    out = {}

    def get(arch):
        if arch not in out:
            d = tmp_path_factory.mktemp(arch)
            src = adjusted_source(engine_models, arch, d)
            g, m, h = d / "m.gguf", d / "mlx", d / "hf"
            run_silica("convert", src, g, "--to", "gguf", "--q-type", "F32", check=True, timeout=300)
            run_silica("convert", g, m, "--to", "mlx", check=True, timeout=300)
            run_silica("convert", g, h, "--to", "hf", check=True, timeout=300)
            out[arch] = (src, g, m, h)
        return out[arch]
    return get


@pytest.mark.parametrize("arch", MAIN + ROPE)
def test_gguf_export_and_import_keep_the_logits(engine_models, converted, arch):
    """HF -> GGUF F32 -> mlx / hf: transformers' logits on every path (Llama 3 RoPE
    through rope_freqs.weight, dynamic / yarn / linear keys, LongRoPE factor tensors)."""
    ids = ids_of(engine_models, arch)
    n = WINDOW_LOST.get(arch, len(ids))
    src = converted(arch)[0]
    want = oracle(engine_models, arch, src, ids)
    for path in converted(arch)[1:]:
        got = logits(path, ids[:n])
        err = rel_err(got, want[:n])
        print(f"{arch} {path.name}: max|dlogit| / max|logit| = {err:.3e}")
        assert err <= 1e-4, f"{arch} {path.name}: relative error {err:.3e}"


def mlx_lm_logits(path, ids):
    import mlx.core as mx
    from mlx_lm.utils import load_model
    model, _ = load_model(path)
    return np.array(model(mx.array([ids])).astype(mx.float32))[0]


# mlx_lm's SuScaledRoPE always takes the long factors: the adjusted Phi-3 (short factors
# below 256 positions) is not what it runs; phi3-long (long factors only, as llama.cpp) is.
@pytest.mark.parametrize("arch", [a for a in MAIN + ROPE if a != "phi3"])
def test_mlx_lm_runs_the_import(engine_models, converted, arch):
    """mlx_lm loads the directory `convert x.gguf --to mlx` wrote and computes the GGUF's logits
    (which the test above ties to the source)."""
    ids = ids_of(engine_models, arch)[:MLX_LM_NO_WINDOW.get(arch)]
    got = mlx_lm_logits(converted(arch)[2], ids)
    want = logits(converted(arch)[1], ids)
    err = rel_err(got, want)
    print(f"{arch} mlx_lm: {err:.3e}")
    assert err <= 1e-3, f"{arch}: mlx_lm on the import, relative error {err:.3e}"


def shape_of_engine(e):
    """The engine's config in the estimator's terms."""
    return {"n_layers": e["n_layers"], "hidden": e["hidden_size"], "intermediate": e["intermediate_size"],
            "n_heads": e["n_heads"], "n_kv_heads": e["n_kv_heads"], "head_dim": e["head_dim"],
            "vocab": e["vocab_size"], "max_ctx": e["max_position_embeddings"], "tied": e["tie_embeddings"],
            "n_sliding_layers": sum(e["layer_sliding"]),
            "sliding_window": e["sliding_window"] if any(e["layer_sliding"]) else None}


def shape_of_fit(f):
    s = {k: f[k] for k in ("n_layers", "hidden", "intermediate", "n_heads", "n_kv_heads", "head_dim", "vocab",
                           "max_ctx", "tied", "n_sliding_layers")}
    s["sliding_window"] = f["sliding_window"] if f["n_sliding_layers"] else None
    return s


@pytest.mark.parametrize("arch", MAIN + ROPE)
def test_engine_fit_and_convert_read_one_config(converted, arch):
    src, g, m, h = converted(arch)
    cs, cg, cm, ch = (config_of(p) for p in (src, g, m, h))
    # the estimator sizes what the engine runs, on the source and on the GGUF
    for c in (cs, cg, cm, ch):
        assert shape_of_fit(c["fit"]) == shape_of_engine(c["engine"])
    # the imports are the GGUF, field by field (less llama.cpp's storage: permuted Q/K, norms 1 + w)
    layout = {"rope_adjacent", "norm_plus_one"}
    eg = {k: v for k, v in cg["engine"].items() if k not in layout}
    for c in (cm, ch):
        assert {k: v for k, v in c["engine"].items() if k not in layout} == eg
        assert c["fit"] == cg["fit"]
    # and the GGUF is the source, less what GGUF stores another way (RoPE as factors, special ids)
    same = {k for k in eg if k not in {"rope", "rope_local", "eos_ids", "bos_id", "sliding_window", "layer_sliding"}}
    if arch in WINDOW_LOST:
        same.discard("arch")   # written as llama
    assert {k: eg[k] for k in same} == {k: cs["engine"][k] for k in same}
    if arch not in WINDOW_LOST:
        assert eg["layer_sliding"] == cs["engine"]["layer_sliding"]


def test_llama3_rope_freqs_as_convert_hf_to_gguf(engine_models, converted):
    """Llama 3 RoPE is written as llama.cpp's converter writes it: rope_freqs.weight, F32
    [head_dim / 2], factor for long wavelengths, 1 for short, smoothed between (computed here
    from the config with numpy, as convert_hf_to_gguf's LlamaModel.generate_extra_tensors)."""
    from gguf import GGUFReader
    import math
    cfg = json.loads((engine_models / "llama3" / "f32-st" / "config.json").read_text())
    rs = cfg.get("rope_scaling") or cfg["rope_parameters"]
    theta = cfg.get("rope_theta") or rs["rope_theta"]
    dim = cfg["head_dim"]
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    old, lo, hi, f = rs["original_max_position_embeddings"], rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
    want = []
    for fr in freqs:
        wl = 2 * math.pi / fr
        if wl < old / hi:
            want.append(1.0)
        elif wl > old / lo:
            want.append(f)
        else:
            s = (old / wl - lo) / (hi - lo)
            want.append(1 / ((1 - s) / f + s))
    t = {t.name: t for t in GGUFReader(str(converted("llama3")[1])).tensors}
    got = np.array(t["rope_freqs.weight"].data, dtype=np.float32)
    assert len(set(want)) > 2   # the reference model exercises all three cases
    np.testing.assert_allclose(got, np.array(want, dtype=np.float32), rtol=1e-6)


def test_gguf_import_bad_input(silica, tmp_path, engine_models):
    g = tmp_path / "m.gguf"
    run_silica("convert", engine_models / "llama" / "f32-st", g, "--to", "gguf", "--q-type", "F32", check=True)
    (tmp_path / "taken").mkdir()
    assert_clean_error(silica("convert", g, tmp_path / "taken", "--to", "hf"), "already exists")
    assert_clean_error(silica("convert", g, tmp_path / "q", "--to", "hf", "-q"), "quantiz")
    data = bytearray(g.read_bytes())
    i = data.find(b"llama", data.find(b"general.architecture"))
    data[i:i + 5] = b"olmoe"
    (tmp_path / "x.gguf").write_bytes(data)
    assert_clean_error(silica("convert", tmp_path / "x.gguf", tmp_path / "o", "--to", "hf"), "olmoe", "gemma3", "phi3")
    assert not (tmp_path / "o").exists()
