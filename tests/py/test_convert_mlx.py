"""`silica convert --to mlx` / `silica quantize` against the real mlx_lm.convert.

Oracle: mlx-lm (pip mlx-lm, run in-process on the CPU) converting the same tiny
random-weight HF directory with the same flags.  Compared byte for byte:
every tensor (name, dtype, shape, bytes), config.json, model.safetensors.index.json,
README.md and generation_config.json.  The shard files themselves differ only in
the order of tensor data (mx.save_safetensors writes std::unordered_map order).
Tokenizer files: mlx-lm re-saves them through transformers (tokenizer.json
pretty-printed, tokenizer_config.json reduced, chat_template.jinja split out);
silica copies the source files, so those are compared semantically (AutoTokenizer
encodes the same, same chat template).
"""
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SILICA, assert_clean_error
from hf_models import FAMILIES, make_hf_model

from mlx_lm.convert import convert as mlx_lm_convert  # the reference; a missing mlx-lm fails the tests


def read_safetensors(path):
    """name -> (dtype, shape, bytes) straight from the file format."""
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__", None)
    base = 8 + n
    out = {k: (v["dtype"], tuple(v["shape"]), raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
           for k, v in hdr.items()}
    return out, meta


def load_dir_tensors(d):
    t, metas = {}, []
    for f in sorted(Path(d).glob("model*.safetensors")):
        x, m = read_safetensors(f)
        t.update(x)
        metas.append(m)
    return t, metas


def assert_same_mlx_dir(ours, ref, tokenizer_check=False):
    ours, ref = Path(ours), Path(ref)
    a, ma = load_dir_tensors(ours)
    b, mb = load_dir_tensors(ref)
    assert sorted(a) == sorted(b), f"names differ: {sorted(set(a) ^ set(b))}"
    for k in b:
        assert a[k][0] == b[k][0], f"{k}: dtype {a[k][0]} != {b[k][0]}"
        assert a[k][1] == b[k][1], f"{k}: shape {a[k][1]} != {b[k][1]}"
        assert a[k][2] == b[k][2], f"{k}: bytes differ"
    assert ma == mb == [{"format": "mlx"}] * len(mb)
    shards = sorted(p.name for p in ref.glob("model*.safetensors"))
    assert sorted(p.name for p in ours.glob("model*.safetensors")) == shards
    for name in ["config.json", "model.safetensors.index.json", "README.md", "generation_config.json"]:
        assert (ours / name).read_bytes() == (ref / name).read_bytes(), f"{name} differs"
    if tokenizer_check:
        from transformers import AutoTokenizer
        ta = AutoTokenizer.from_pretrained(str(ours))
        tb = AutoTokenizer.from_pretrained(str(ref))
        text = "Hello world! Ünïcödé 你好 12345 <|end|>\n  spaces"
        assert ta.encode(text) == tb.encode(text)
        assert ta.chat_template == tb.chat_template
        assert (ta.bos_token, ta.eos_token) == (tb.bos_token, tb.eos_token)


def mlx_ref(src, dst, **kw):
    mlx_lm_convert(str(src), str(dst), **kw)
    return dst


def silica_mlx(silica, src, dst, *args):
    silica("convert", src, dst, "--to", "mlx", *args, check=True)
    return dst


# ---- per family: default 4-bit g64 (embedding + head quantized, down_proj in 96 stays float) ----

@pytest.mark.parametrize("family", FAMILIES)
def test_family_q4_matches_mlx_lm(silica, tmp_path, family):
    src = tmp_path / "hf"
    make_hf_model(src, family, seed=hash(family) % 1000)
    ref = mlx_ref(src, tmp_path / "ref", quantize=True)
    ours = silica_mlx(silica, src, tmp_path / "ours", "-q")
    assert_same_mlx_dir(ours, ref, tokenizer_check=True)
    cfg = json.loads((ours / "config.json").read_text())
    assert cfg["quantization"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    names, _ = load_dir_tensors(ours)
    assert not any("inv_freq" in k for k in names)
    tied = cfg.get("tie_word_embeddings", family in ("llama", "mistral", "qwen2")) or family.startswith("gemma")
    assert ("lm_head.weight" in names) == (not tied)
    assert "model.layers.0.mlp.down_proj.scales" not in names   # 96 % 64 != 0: float


@pytest.mark.parametrize("family,wdtype,flag", [("llama", "float32", None), ("qwen3", "bfloat16", "float16"),
                                                ("phi3", "float16", "float32"), ("gemma2", "float32", "bfloat16")])
def test_unquantized_cast_matches_mlx_lm(silica, tmp_path, family, wdtype, flag):
    """No -q: dtype from --dtype, else config torch_dtype (which may differ from the weights)."""
    src = tmp_path / "hf"
    make_hf_model(src, family, weights_dtype=wdtype, dtype="bfloat16" if wdtype == "float32" else wdtype,
                  tokenizer="mistral")
    ref = mlx_ref(src, tmp_path / "ref", dtype=flag)
    args = ["--dtype", {"float16": "f16", "float32": "f32", "bfloat16": "bf16"}[flag]] if flag else []
    ours = silica_mlx(silica, src, tmp_path / "ours", *args)
    assert_same_mlx_dir(ours, ref)


# ---- bits x group sizes ----

@pytest.fixture(scope="module")
def llama_src(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama") / "hf"
    make_hf_model(d, "llama", seed=7, tokenizer="mistral", tied=False)
    return d


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("group", [32, 64, 128])
def test_bits_groups_match_mlx_lm(silica, tmp_path, llama_src, bits, group):
    ref = mlx_ref(llama_src, tmp_path / "ref", quantize=True, q_bits=bits, q_group_size=group)
    ours = silica_mlx(silica, llama_src, tmp_path / "ours", "-q", "--q-bits", bits, "--q-group-size", group)
    assert_same_mlx_dir(ours, ref)
    names, _ = load_dir_tensors(ours)
    # down_proj's input (96) is a multiple of 32 only
    assert ("model.layers.0.mlp.down_proj.scales" in names) == (group == 32)


@pytest.mark.parametrize("mode", ["mxfp4", "mxfp8", "nvfp4"])
def test_fp_modes_match_mlx_lm(silica, tmp_path, llama_src, mode):
    ref = mlx_ref(llama_src, tmp_path / "ref", quantize=True, q_mode=mode)
    ours = silica_mlx(silica, llama_src, tmp_path / "ours", "-q", "--q-mode", mode)
    assert_same_mlx_dir(ours, ref)


# ---- mixed recipes (8 layers so the first/last-eighth rule bites) ----

@pytest.mark.parametrize("recipe,family,group", [("mixed_2_6", "qwen2", None), ("mixed_3_4", "llama", 32),
                                                 ("mixed_3_6", "phi3", None), ("mixed_4_6", "qwen3", 128)])
def test_mixed_recipes_match_mlx_lm(silica, tmp_path, recipe, family, group):
    src = tmp_path / "hf"
    make_hf_model(src, family, layers=8, tokenizer="mistral", tied=False)
    ref = mlx_ref(src, tmp_path / "ref", quantize=True, quant_predicate=recipe, q_group_size=group)
    args = ["--quant-recipe", recipe] + (["--q-group-size", group] if group else [])
    ours = silica_mlx(silica, src, tmp_path / "ours", *args)
    assert_same_mlx_dir(ours, ref)
    q = json.loads((ours / "config.json").read_text())["quantization"]
    assert len(q) > 3   # per-layer entries
    if group is None:   # mlx-lm's quirk: the recipe records "group_size": null
        assert q["lm_head"]["group_size"] is None


# ---- sources: sharded safetensors, .bin shards; dequantize; quantize command ----

def test_sharded_source_matches(silica, tmp_path):
    src = tmp_path / "hf"
    make_hf_model(src, "qwen2", shards=3, tokenizer="mistral")
    ref = mlx_ref(src, tmp_path / "ref", quantize=True, q_bits=3, q_group_size=32)
    ours = silica_mlx(silica, src, tmp_path / "ours", "-q", "--q-bits", 3, "--q-group-size", 32)
    assert_same_mlx_dir(ours, ref)


def test_bin_source_matches_safetensors_reference(silica, tmp_path, llama_src):
    """pytorch_model.bin shards (mlx-lm cannot read them): same output as mlx-lm on the safetensors twin."""
    bin_dir = tmp_path / "bin"
    silica("convert", llama_src, bin_dir, "--to", "torch", "--max-shard-size", "200KB", check=True)
    assert list(bin_dir.glob("pytorch_model-*.bin")) and not list(bin_dir.glob("*.safetensors"))
    ref = mlx_ref(llama_src, tmp_path / "ref", quantize=True)
    ours = silica_mlx(silica, bin_dir, tmp_path / "ours", "-q")
    assert_same_mlx_dir(ours, ref)


def test_dequantize_matches_mlx_lm(silica, tmp_path, llama_src):
    q = mlx_ref(llama_src, tmp_path / "q", quantize=True, q_bits=3, q_group_size=32)
    ref = mlx_ref(q, tmp_path / "ref", dequantize=True)
    ours = silica_mlx(silica, q, tmp_path / "ours", "--dequantize")
    assert_same_mlx_dir(ours, ref)


def test_quantize_command_is_convert_to_mlx_q(silica, tmp_path, llama_src):
    a = silica_mlx(silica, llama_src, tmp_path / "a", "-q", "--q-bits", 6)
    silica("quantize", llama_src, tmp_path / "b", "--q-bits", 6, check=True)
    assert_same_mlx_dir(tmp_path / "b", a)


def test_report(silica, tmp_path, llama_src):
    r = silica("convert", llama_src, tmp_path / "o", "--to", "mlx", "-q", "--q-group-size", 128, "--report",
               "--json", check=True)
    j = r.json()
    rep = {e["name"]: e for e in j["report"]}
    assert rep["model.layers.0.mlp.down_proj"]["status"].startswith("float")
    assert "96" in rep["model.layers.0.mlp.down_proj"]["status"]
    e = rep["model.layers.1.self_attn.q_proj"]
    assert e["status"] == "quantized" and e["bits"] == 4 and e["group_size"] == 128
    assert 0 < e["rmse"] < e["max_abs_error"] and 0 < e["relative_error"] < 0.2
    idx = json.loads((tmp_path / "o" / "model.safetensors.index.json").read_text())["metadata"]
    assert j["bits_per_weight"] == pytest.approx(idx["total_size"] * 8 / idx["total_parameters"])
    # keep-float: the pattern's modules stay float, and the report says why
    r = silica("convert", llama_src, tmp_path / "k", "--to", "mlx", "-q", "--keep-float", "embed_tokens,lm_head",
               "--report", check=True)
    assert "--keep-float" in r.out and "bits per weight" in r.out
    names, _ = load_dir_tensors(tmp_path / "k")
    assert "model.embed_tokens.scales" not in names and "lm_head.scales" not in names
    assert "model.layers.0.self_attn.q_proj.scales" in names
    # mlx-lm loads it (modules without scales stay float)
    from mlx_lm import load
    load(str(tmp_path / "k"))


def test_gpu_variant_differs_only_by_rounding(silica, tmp_path, llama_src):
    a = silica_mlx(silica, llama_src, tmp_path / "cpu", "-q")
    b = silica_mlx(silica, llama_src, tmp_path / "gpu", "-q", "--q-variant", "gpu")
    ta, _ = load_dir_tensors(a)
    tb, _ = load_dir_tensors(b)
    assert sorted(ta) == sorted(tb)
    assert any(ta[k][2] != tb[k][2] for k in ta if k.endswith(".scales"))


# ---- bad input: one line, exit 2, nothing left behind ----

@pytest.mark.parametrize("args,needle", [
    (["--q-bits", "7"], "7 bits"), (["--q-group-size", "48"], "group size 48"),
    (["--q-mode", "mxfp4", "--q-bits", "8"], "mxfp4"), (["--q-mode", "nvfp4", "--q-group-size", "32"], "nvfp4"),
    (["--q-mode", "mxfp8", "--quant-recipe", "mixed_3_6"], "affine"),
    (["--quant-recipe", "mixed_9_9"], "mixed_9_9"), (["--q-mode", "int4"], "int4"),
    (["--dequantize"], "not quantized")])
def test_bad_quant_options(silica, tmp_path, llama_src, args, needle):
    out = tmp_path / "o"
    extra = [] if args == ["--dequantize"] else ["-q"]
    assert_clean_error(silica("convert", llama_src, out, "--to", "mlx", *extra, *args), needle)
    assert not out.exists()


def test_quantize_and_dequantize_exclusive(silica, tmp_path, llama_src):
    assert_clean_error(silica("convert", llama_src, tmp_path / "o", "--to", "mlx", "-q", "-d"), "dequantize")


def test_unknown_architecture_lists_supported(silica, tmp_path):
    src = tmp_path / "hf"
    make_hf_model(src, "llama", tokenizer=False)
    c = json.loads((src / "config.json").read_text())
    c["model_type"] = "mamba9"
    (src / "config.json").write_text(json.dumps(c))
    assert_clean_error(silica("convert", src, tmp_path / "o", "--to", "mlx", "-q"), "mamba9", "llama", "qwen3", "phi3")
    assert not (tmp_path / "o").exists()


def _quantized(silica, tmp_path, llama_src):
    q = tmp_path / "q"
    silica_mlx(silica, llama_src, q, "-q")
    return q


def _rewrite(path, fn):
    t, metas = read_safetensors(path)
    t = fn(t)
    hdr, blob, off = {"__metadata__": metas}, b"", 0
    for k, (dt, shape, data) in t.items():
        hdr[k] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blob += data
        off += len(data)
    h = json.dumps(hdr).encode()
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + blob)


@pytest.mark.parametrize("to", ["mlx", "hf"])
def test_missing_scales(silica, tmp_path, llama_src, to):
    q = _quantized(silica, tmp_path, llama_src)
    _rewrite(q / "model.safetensors", lambda t: {k: v for k, v in t.items() if k != "lm_head.scales"})
    extra = ["--dequantize"] if to == "mlx" else []
    assert_clean_error(silica("convert", q, tmp_path / "o", "--to", to, *extra), "lm_head.scales")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("to", ["mlx", "hf"])
def test_scales_shape_mismatch(silica, tmp_path, llama_src, to):
    q = _quantized(silica, tmp_path, llama_src)

    def cut(t):
        dt, shape, data = t["model.layers.0.self_attn.q_proj.scales"]
        t["model.layers.0.self_attn.q_proj.scales"] = (dt, (shape[0], 1), data[:shape[0] * 2])
        return t

    _rewrite(q / "model.safetensors", cut)
    extra = ["--dequantize"] if to == "mlx" else []
    assert_clean_error(silica("convert", q, tmp_path / "o", "--to", to, *extra), "q_proj")


def test_biases_shape_mismatch(silica, tmp_path, llama_src):
    q = _quantized(silica, tmp_path, llama_src)

    def cut(t):
        dt, shape, data = t["model.layers.1.mlp.up_proj.biases"]
        t["model.layers.1.mlp.up_proj.biases"] = (dt, (shape[0] // 2, shape[1]), data[:len(data) // 2])
        return t

    _rewrite(q / "model.safetensors", cut)
    assert_clean_error(silica("convert", q, tmp_path / "o", "--to", "mlx", "-d"), "up_proj")


def test_dst_exists_needs_force(silica, tmp_path, llama_src):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep").write_text("x")
    assert_clean_error(silica("convert", llama_src, out, "--to", "mlx", "-q"), "already exists", "--force")
    assert (out / "keep").exists()
    silica("convert", llama_src, out, "--to", "mlx", "-q", "--force", check=True)
    assert not (out / "keep").exists() and (out / "config.json").exists()


def test_full_disk_leaves_nothing(tmp_path, llama_src):
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "o"
    p = subprocess.run([str(SILICA), "convert", llama_src, out, "--to", "mlx"], capture_output=True, text=True,
                       preexec_fn=limit, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "write failed" in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == []


def test_ctrl_c_leaves_nothing(tmp_path):
    src = tmp_path / "hf"
    make_hf_model(src, "llama", tokenizer=False, hidden=1024, inter=2048, layers=4, vocab=4096,
                  weights_dtype="float32")
    out = tmp_path / "o"
    p = subprocess.Popen([str(SILICA), "convert", src, out, "--to", "mlx", "-q", "--q-bits", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.15)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    if p.returncode == 0:
        pytest.fail("conversion finished before SIGINT; make the input larger")
    assert p.returncode == 130
    assert sorted(os.listdir(tmp_path)) == ["hf"]


# ---- --to hf / torch: transformers directories, dequantized like mlx_lm -d ----

def test_to_hf_dequantizes_like_mlx_lm(silica, tmp_path, llama_src):
    q = mlx_ref(llama_src, tmp_path / "q", quantize=True, q_bits=4, q_group_size=64)
    ref = mlx_ref(q, tmp_path / "ref", dequantize=True)
    hf = tmp_path / "hf"
    silica("convert", q, hf, "--to", "hf", check=True)
    a, ma = load_dir_tensors(hf)
    b, _ = load_dir_tensors(ref)
    assert sorted(a) == sorted(b)
    for k in b:
        assert a[k] == b[k], k
    assert ma == [{"format": "pt"}]
    cfg = json.loads((hf / "config.json").read_text())
    assert "quantization" not in cfg and "quantization_config" not in cfg
    assert cfg["model_type"] == "llama" and cfg["torch_dtype"] == "bfloat16"
    assert (hf / "config.json").read_text().endswith("}\n")
    # torch: pytorch_model.bin shards + index with the same tensors
    pt = tmp_path / "pt"
    silica("convert", q, pt, "--to", "torch", "--max-shard-size", "100KB", check=True)
    idx = json.loads((pt / "pytorch_model.bin.index.json").read_text())
    assert sorted(idx["weight_map"]) == sorted(b)
    back = tmp_path / "back"
    silica("convert", pt, back, "--to", "safetensors", check=True)
    c, _ = load_dir_tensors(back)
    assert all(c[k][2] == b[k][2] for k in b)


def test_to_hf_restores_untied_head(silica, tmp_path):
    """An mlx dir whose config says untied but lacks lm_head (hand-made) gets lm_head = embedding."""
    src = tmp_path / "src"
    make_hf_model(src, "phi3", tokenizer=False)           # phi3: untied by default
    m = silica_mlx(silica, src, tmp_path / "m")
    _rewrite(m / "model.safetensors", lambda t: {k: v for k, v in t.items() if k != "lm_head.weight"})
    (m / "model.safetensors.index.json").unlink()
    hf = tmp_path / "hf"
    silica("convert", m, hf, "--to", "hf", check=True)
    t, _ = load_dir_tensors(hf)
    assert t["lm_head.weight"] == t["model.embed_tokens.weight"]


def _is_asan(path):
    return b"__asan_init" in Path(path).read_bytes()


def test_peak_rss_bounded(tmp_path):
    """Peak RSS <= 2 x largest tensor + 64 MB while quantizing a ~150 MB f32 model."""
    src = tmp_path / "hf"
    make_hf_model(src, "llama", tokenizer=False, hidden=1024, inter=2048, layers=3, vocab=8192,
                  weights_dtype="float32", dtype="float32", tied=True)
    largest = 8192 * 1024 * 4
    # measure from a small fresh Python: a child forked from pytest (which holds MLX) would
    # count pytest's pages in its ru_maxrss until exec
    helper = ("import os, sys\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1)\n"
              "    os.execv(sys.argv[1], sys.argv[1:])\n"
              "_, st, ru = os.wait4(pid, 0)\n"
              "print(os.waitstatus_to_exitcode(st), ru.ru_maxrss * 1024)\n")
    p = subprocess.run([sys.executable, "-c", helper, str(SILICA), "convert", str(src), str(tmp_path / "o"), "--to",
                        "mlx", "-q", "--report"], capture_output=True, text=True, timeout=300)
    rc, peak = map(int, p.stdout.split())
    assert rc == 0, p.stderr
    bound = 2 * largest + 64 * 2**20
    if _is_asan(SILICA):
        bound *= 3   # ASan shadow memory and quarantine
    assert peak <= bound, f"peak RSS {peak / 2**20:.0f} MiB > {bound / 2**20:.0f} MiB"


def test_part3_example_program(silica, tmp_path, llama_src):
    """part3/examples/convert_model.c: the library API gives what the CLI gives."""
    exe = SILICA.parent / "examples" / "part3" / "convert_model"
    assert exe.exists(), f"{exe} not built"
    p = subprocess.run([str(exe), str(llama_src), str(tmp_path / "ex"), "mlx", "3"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "bits per weight" in p.stdout and "float (in 96 % group 64 != 0)" in p.stdout
    silica_mlx(silica, llama_src, tmp_path / "cli", "-q", "--q-bits", 3)
    assert_same_mlx_dir(tmp_path / "ex", tmp_path / "cli")
    p = subprocess.run([str(exe), str(tmp_path / "ex"), str(tmp_path / "m.gguf"), "gguf"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    from gguf import GGUFReader
    assert len(GGUFReader(str(tmp_path / "m.gguf")).tensors) == 21
