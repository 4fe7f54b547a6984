"""`silica convert` against real peers: numpy, ml_dtypes, safetensors, gguf, mlx.

Inputs are written by the peers; silica's outputs are read back by the peers and
compared bit for bit with the peers' own conversions (numpy astype for f16,
ml_dtypes for bf16).
"""
import json
import os
import signal
import subprocess
import time

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import SILICA, assert_clean_error, run_silica

BF16 = ml_dtypes.bfloat16


def tensors(seed=0):
    rng = np.random.default_rng(seed)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65520.0, 1e-8, 6e-8, -3.3e-5,
                        1.0000001, 3.4e38, 1e-40], dtype=np.float32)
    return {
        "model.embed_tokens.weight": rng.standard_normal((64, 32)).astype(np.float32),
        "model.layers.0.self_attn.q_proj.weight": (rng.standard_normal((32, 32)) * 1e-3).astype(np.float32),
        "model.layers.0.input_layernorm.weight": rng.standard_normal(32).astype(np.float16),
        "model.norm.weight": rng.standard_normal(32).astype(np.float32).astype(BF16),
        "edge": special,
        "position_ids": np.arange(10, dtype=np.int64).reshape(2, 5),
        "mask": np.array([True, False, True]),
        "scalar": np.array(3.5, dtype=np.float64),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def same_bits(a, b):
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.tobytes() == b.tobytes()


def expected_as(x, dtype):
    with np.errstate(over="ignore"):
        return _expected_as(x, dtype)


def _expected_as(x, dtype):
    if x.dtype.kind != "f" and x.dtype != BF16:
        return x
    if dtype == "f16":
        return x.astype(np.float32).astype(np.float16) if x.dtype != np.float64 else x.astype(np.float16)
    if dtype == "bf16":
        return x.astype(BF16) if x.dtype == np.float64 else x.astype(np.float32).astype(BF16)
    return x.astype(np.float32)


@pytest.fixture
def st_file(tmp_path):
    p = tmp_path / "in.safetensors"
    save_file(tensors(), str(p), metadata={"format": "pt"})
    return p


@pytest.mark.parametrize("dtype", [None, "f32", "f16", "bf16"])
def test_safetensors_to_safetensors_dtype(silica, st_file, tmp_path, dtype):
    out = tmp_path / "out.safetensors"
    args = ["convert", st_file, out, "--to", "safetensors"] + (["--dtype", dtype] if dtype else [])
    silica(*args, check=True)
    got = load_file(str(out))
    src = tensors()
    assert set(got) == set(src)
    for k, v in src.items():
        same_bits(got[k], expected_as(v, dtype) if dtype else v)
    # and byte-identical to what the reference writer makes of the same arrays
    ref = tmp_path / "ref.safetensors"
    save_file({k: got[k] for k in got}, str(ref), metadata={"format": "pt"})
    assert out.read_bytes() == ref.read_bytes()


def test_to_npz_loads_in_numpy(silica, st_file, tmp_path):
    out = tmp_path / "w.npz"
    silica("convert", st_file, out, "--to", "npz", "--dtype", "f16", check=True)
    z = np.load(out)
    src = tensors()
    assert set(z.files) == set(src)
    for k, v in src.items():
        same_bits(z[k], expected_as(v, "f16"))


def test_to_gguf_reads_in_gguf_py(silica, st_file, tmp_path):
    import gguf
    out = tmp_path / "m.gguf"
    src = {k: v for k, v in tensors().items() if v.dtype in (np.float32, np.float16) and v.size}
    p = tmp_path / "float.safetensors"
    save_file(src, str(p))
    silica("convert", p, out, "--to", "gguf", check=True)
    r = gguf.GGUFReader(str(out))
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(src)
    for k, v in src.items():
        t = got[k]
        arr = np.array(t.data).reshape(v.shape)
        same_bits(arr.astype(v.dtype), v)


def test_mlx_reads_output(silica, st_file, tmp_path):
    import mlx.core as mx
    out = tmp_path / "mlx.safetensors"
    silica("convert", st_file, out, "--to", "safetensors", "--dtype", "bf16", check=True)
    got = mx.load(str(out))
    src = tensors()
    for k, v in src.items():
        if v.dtype.kind == "f" or v.dtype == BF16:
            want = expected_as(v, "bf16").astype(np.float32)
            assert np.array_equal(np.array(got[k].astype(mx.float32)), want, equal_nan=True), k


def test_torch_round_trip(silica, st_file, tmp_path):
    pt = tmp_path / "m.bin"
    silica("convert", st_file, pt, "--to", "torch", check=True)
    back = tmp_path / "back.safetensors"
    silica("convert", pt, back, "--to", "safetensors", check=True)
    got = load_file(str(back))
    for k, v in tensors().items():
        same_bits(got[k], v)


def make_hf_dir(d, nshards=3):
    """A transformers-style sharded directory (index.json as save_pretrained writes it)."""
    d.mkdir()
    src = tensors(1)
    names = sorted(src)
    weight_map = {}
    total = 0
    for s in range(nshards):
        part = {n: src[n] for n in names[s::nshards]}
        fn = f"model-{s + 1:05d}-of-{nshards:05d}.safetensors"
        save_file(part, str(d / fn), metadata={"format": "pt"})
        for n in part:
            weight_map[n] = fn
            total += part[n].nbytes
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True) + "\n")
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 32}))
    (d / "tokenizer_config.json").write_text("{}")
    return src


def test_directory_sharded_round_trip(silica, tmp_path):
    src = make_hf_dir(tmp_path / "hf")
    out = tmp_path / "pt"
    silica("convert", tmp_path / "hf", out, "--to", "torch", "--max-shard-size", "8KiB", check=True)
    files = sorted(os.listdir(out))
    assert "config.json" in files and "tokenizer_config.json" in files
    assert "pytorch_model.bin.index.json" in files
    idx = json.loads((out / "pytorch_model.bin.index.json").read_text())
    assert set(idx["weight_map"]) == set(src)
    assert idx["metadata"]["total_size"] == sum(v.nbytes for v in src.values())
    for f in set(idx["weight_map"].values()):
        assert (out / f).exists()
    back = tmp_path / "st"
    silica("convert", out, back, "--to", "safetensors", "--dtype", "f16", check=True)
    got = {}
    for f in os.listdir(back):
        if f.endswith(".safetensors"):
            got.update(load_file(str(back / f)))
    for k, v in src.items():
        same_bits(got[k], expected_as(v, "f16"))
    assert json.loads((back / "config.json").read_text())["model_type"] == "llama"


def test_refuses_existing_destination(silica, st_file, tmp_path):
    out = tmp_path / "exists.safetensors"
    out.write_bytes(b"keep me")
    r = silica("convert", st_file, out, "--to", "safetensors")
    assert_clean_error(r, str(out), "already exists")
    assert out.read_bytes() == b"keep me"
    silica("convert", st_file, out, "--to", "safetensors", "--force", check=True)
    assert set(load_file(str(out))) == set(tensors())


def test_bad_source_leaves_nothing(silica, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}")
    out = tmp_path / "o.npz"
    r = silica("convert", bad, out, "--to", "npz")
    assert_clean_error(r, str(bad))
    assert sorted(os.listdir(tmp_path)) == ["bad.safetensors"]


def test_usage_errors(silica, st_file, tmp_path):
    assert_clean_error(silica("convert", st_file, tmp_path / "x", "--to", "onnx"), "--to")
    assert_clean_error(silica("convert", st_file, tmp_path / "x", "--to", "npz", "--dtype", "f8"), "--dtype")
    assert_clean_error(silica("convert", st_file), "SRC and DST")
    assert silica("convert", "--help").rc == 0


def test_ctrl_c_leaves_no_partial_output(tmp_path):
    big = tmp_path / "big.safetensors"
    save_file({f"t{i}": np.ones((1024, 1024), dtype=np.float32) for i in range(48)}, str(big))
    out = tmp_path / "out.npz"
    p = subprocess.Popen([str(SILICA), "convert", big, out, "--to", "npz", "--dtype", "bf16"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait until the conversion is writing (its temporary file exists), then interrupt
    deadline = time.time() + 20
    while time.time() < deadline and not any(n.startswith(".out.npz.tmp-") for n in os.listdir(tmp_path)):
        time.sleep(0.002)
    assert any(n.startswith(".out.npz.tmp-") for n in os.listdir(tmp_path)), "conversion never started writing"
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    if p.returncode == 0:
        pytest.fail("conversion finished before SIGINT; make the input larger")
    assert p.returncode == 130
    assert sorted(os.listdir(tmp_path)) == ["big.safetensors"]


def test_full_disk_leaves_nothing(tmp_path):
    """A write that fails mid-way (here: RLIMIT_FSIZE, as a full disk would)
    gives one error line, exit 2, and removes the partial output."""
    import resource
    src = tmp_path / "src.safetensors"
    save_file({f"t{i}": np.ones((256, 256), dtype=np.float32) for i in range(8)}, str(src))
    out = tmp_path / "out.safetensors"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG from write(), as ENOSPC would come
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))

    p = subprocess.run([str(SILICA), "convert", src, out, "--to", "safetensors"], capture_output=True,
                       text=True, preexec_fn=limit, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "out.safetensors" in lines[0] and "write failed" in lines[0], lines
    assert sorted(os.listdir(tmp_path)) == ["src.safetensors"]
