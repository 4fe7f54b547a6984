"""The part1 example programs (and part5's generate.c) (part1/examples/*.c) against files made by real peers.

- mlx_example: a model directory written the way mlx-lm writes one (mx.save_safetensors
  shards with {"format": "mlx"}, model.safetensors.index.json, config.json); names,
  dtypes, shapes and sizes are checked against the mlx arrays.
- pytorch_example: torch.save-layout zips whose data.pkl is produced by CPython's own
  pickler (exactly how torch.save produces it: Pickler + persistent_id), values from
  numpy / ml_dtypes; the committed torch fixtures (tests/fixtures/torch/, made by real
  torch) when present.  Values printed by the example are compared bit-for-bit.
- generate (part5): text through silica/generate.h, equal to `silica run` on the same
  model, prompt and seed.
Example binaries: $SILICA_EXAMPLES (default: <dir of SILICA_BIN>/examples).
"""
import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import ml_dtypes
import mlx.core as mx
import numpy as np
import pytest

from conftest import FIXTURES, SILICA, Result, assert_clean_error

EXAMPLES = Path(os.environ.get("SILICA_EXAMPLES", SILICA.parent / "examples"))
MLX_EXAMPLE = EXAMPLES / "part1" / "mlx_example"
TORCH_EXAMPLE = EXAMPLES / "part1" / "pytorch_example"


def run(binary, *args, cwd=None):
    assert binary.exists(), f"example not built at {binary}"
    p = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)
    return Result(p)


# ---------------------------------------------------------------- MLX directory

MLX_DTYPES = {mx.float32: "F32", mx.float16: "F16", mx.bfloat16: "BF16", mx.int32: "I32", mx.uint8: "U8"}


def mlx_weights():
    mx.random.seed(7)
    return {
        "model.embed_tokens.weight": mx.random.normal((16, 8)).astype(mx.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": mx.random.normal((8, 8)).astype(mx.float16),
        "model.layers.0.input_layernorm.weight": mx.ones((8,), dtype=mx.float32),
        "model.layers.0.mlp.down_proj.weight": mx.random.randint(0, 2**31 - 1, (8, 4)).astype(mx.uint32)
        .astype(mx.int32),
        "model.norm.weight": mx.arange(8, dtype=mx.float32),
        "lm_head.weight": mx.random.uniform(shape=(16, 8)).astype(mx.float32),
    }


def write_mlx_dir(d, weights, shards=1):
    """Lay out a directory as mlx_lm.utils.save() does (one or more shards + index + config)."""
    d.mkdir()
    names = list(weights)
    per = -(-len(names) // shards)
    weight_map = {}
    for i in range(shards):
        part = {k: weights[k] for k in names[i * per:(i + 1) * per]}
        fname = "model.safetensors" if shards == 1 else f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        mx.save_safetensors(str(d / fname), part, metadata={"format": "mlx"})
        weight_map.update({k: fname for k in part})
    total = sum(v.nbytes for v in weights.values())
    index = {"metadata": {"total_size": total, "total_parameters": sum(v.size for v in weights.values())},
             "weight_map": dict(sorted(weight_map.items()))}
    (d / "model.safetensors.index.json").write_text(json.dumps(index, indent=4))
    config = {"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
              "num_key_value_heads": 1, "intermediate_size": 4, "vocab_size": 16, "tie_word_embeddings": False,
              "rms_norm_eps": 1e-5, "quantization": {"group_size": 64, "bits": 4, "mode": "affine"}}
    config["quantization_config"] = config["quantization"]
    (d / "config.json").write_text(json.dumps(dict(sorted(config.items())), indent=4))
    return config


def parse_mlx_output(out):
    tensors, config, meta, total = {}, {}, {}, None
    for line in out.splitlines():
        kind, rest = line.split(" ", 1)
        if kind == "tensor":
            name, dtype, shape, nbytes = rest.split(" ")
            dims = shape.strip("[]")
            tensors[name] = (dtype, [int(x) for x in dims.split(",")] if dims else [], int(nbytes))
        elif kind == "config":
            k, v = rest.split(" ", 1)
            config[k] = json.loads(v)
        elif kind == "metadata":
            k, v = rest.split(" ", 1)
            meta[k] = json.loads(v)
        elif kind == "total":
            total = rest
        else:
            assert kind == "format", line
    return tensors, config, meta, total


@pytest.mark.parametrize("shards", [1, 2])
def test_mlx_example_lists_tensors_and_config(tmp_path, shards):
    weights = mlx_weights()
    d = tmp_path / "mlx-model"
    config = write_mlx_dir(d, weights, shards)
    r = run(MLX_EXAMPLE, d)
    assert r.rc == 0, r.err
    assert r.out.splitlines()[0] == "format safetensors"
    tensors, cfg, meta, total = parse_mlx_output(r.out)
    expect = {k: (MLX_DTYPES[v.dtype], list(v.shape), v.nbytes) for k, v in weights.items()}
    assert tensors == expect
    for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size", "quantization"):
        assert cfg[k] == config[k]
    assert "rms_norm_eps" not in cfg
    params = sum(v.size for v in weights.values())
    nbytes = sum(v.nbytes for v in weights.values())
    assert total == f"{len(weights)} tensors {params} params {nbytes} bytes"


def test_mlx_dir_values_via_pytorch_example(tmp_path):
    """The generic reader example prints the same values mlx holds (bf16/f16 widened to f32)."""
    weights = mlx_weights()
    d = tmp_path / "mlx-model"
    write_mlx_dir(d, weights)
    r = run(TORCH_EXAMPLE, d, 8)
    assert r.rc == 0, r.err
    got = parse_values(r.out)
    for name, v in weights.items():
        if v.dtype == mx.int32:
            assert got[name][2] is None
            continue
        want = np.array(v.astype(mx.float32)).reshape(-1)[:8]
        np.testing.assert_array_equal(got[name][2], want)


def test_mlx_example_bad_inputs(tmp_path):
    r = run(MLX_EXAMPLE, tmp_path / "missing")
    assert_clean_error(r, "missing")
    d = tmp_path / "broken"
    write_mlx_dir(d, mlx_weights())
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-5])   # truncated: data no longer covers the header's offsets
    r = run(MLX_EXAMPLE, d)
    assert_clean_error(r, "model.safetensors")


# ---------------------------------------------------------------- PyTorch zip

STORAGE = {np.dtype("float32"): ("FloatStorage", "F32"), np.dtype("float16"): ("HalfStorage", "F16"),
           np.dtype("float64"): ("DoubleStorage", "F64"), np.dtype("int64"): ("LongStorage", "I64"),
           np.dtype(ml_dtypes.bfloat16): ("BFloat16Storage", "BF16")}


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, np.ascontiguousarray(array).reshape(-1)


class _View:
    """A tensor as torch pickles it: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce__(self):
        fn = sys.modules["torch._utils"]._rebuild_tensor_v2
        return fn, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())

    def expected(self):
        a = self.storage.array
        return np.lib.stride_tricks.as_strided(a[self.offset:], self.size,
                                               [s * a.itemsize for s in self.stride]).copy()


class _Hostile:
    def __reduce__(self):
        return os.system, ("echo pwned > PWNED",)


class _FakeTorch:
    """Install importable stand-ins for the torch globals a state_dict pickle names, so
    CPython's pickler writes the same GLOBAL opcodes torch.save does."""

    def __enter__(self):
        self.saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
        torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

        def _rebuild_tensor_v2(*args):
            raise AssertionError("never called")
        _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
        utils._rebuild_tensor_v2 = _rebuild_tensor_v2
        for cls, _ in STORAGE.values():
            setattr(torch, cls, type(cls, (), {"__module__": "torch"}))
        torch._utils = utils
        sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
        return torch

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_torch_zip(path, state):
    """torch.save layout: archive/data.pkl (protocol 2), byteorder, data/<key> 64-byte aligned, version."""
    with _FakeTorch() as torch:
        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _Storage):
                    cls = getattr(torch, STORAGE[obj.array.dtype][0])
                    return ("storage", cls, obj.key, "cpu", obj.array.size)
                return None
        import io
        buf = io.BytesIO()
        P(buf, protocol=2).dump(state)
    storages = {}
    for v in state.values():
        if isinstance(v, _View):
            storages[v.storage.key] = v.storage
    prefix = Path(path).stem
    records = [("data.pkl", buf.getvalue()), ("byteorder", b"little")]
    records += [(f"data/{k}", s.array.tobytes()) for k, s in storages.items()]
    records += [("version", b"3\n")]
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        for name, data in records:
            zi = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            start = f.tell() + 30 + len(zi.filename) + 4
            pad = (64 - start % 64) % 64
            zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            z.writestr(zi, data)


def parse_values(out):
    got = {}
    for line in out.splitlines():
        head, sep, vals = line.partition(" =")   # float tensors: " =" then the values (none if empty)
        name, dtype, shape = head.split(" ")
        dims = shape.strip("[]")
        values = np.array([np.float32(x) for x in vals.split()], dtype=np.float32) if sep else None
        got[name] = (dtype, [int(x) for x in dims.split(",")] if dims else [], values)
    return got


def torch_state():
    rng = np.random.default_rng(3)
    base = _Storage("0", rng.standard_normal(12).astype(np.float32))
    return {
        "w": _View(base, 0, (3, 4), (4, 1)),
        "w_t": _View(base, 0, (4, 3), (1, 4)),          # transposed view of the same storage
        "row1": _View(base, 4, (4,), (1,)),             # view with an offset
        "half": _View(_Storage("1", rng.standard_normal(6).astype(np.float16)), 0, (2, 3), (3, 1)),
        "bf16": _View(_Storage("2", rng.standard_normal(5).astype(ml_dtypes.bfloat16)), 0, (5,), (1,)),
        "f64": _View(_Storage("3", np.array([1 / 3, -2.5e-40, 1e300, 7.0])), 0, (2, 2), (2, 1)),
        "ids": _View(_Storage("4", np.arange(-3, 3, dtype=np.int64)), 0, (6,), (1,)),
    }


def test_pytorch_example_values_match_numpy(tmp_path):
    state = torch_state()
    f = tmp_path / "pytorch_model.bin"
    write_torch_zip(f, collections.OrderedDict(state))
    r = run(TORCH_EXAMPLE, f, 12)
    assert r.rc == 0, r.err
    got = parse_values(r.out)
    assert set(got) == set(state)
    for name, v in state.items():
        dtype, shape, values = got[name]
        assert dtype == STORAGE[v.storage.array.dtype][1], name
        assert shape == list(v.size), name
        if dtype == "I64":
            assert values is None
        else:
            with np.errstate(over="ignore"):   # 1e300 -> inf, as silica's f64 -> f32
                want = v.expected().astype(np.float32).reshape(-1)[:12]
            assert values.tobytes() == want.tobytes(), (name, values, want)


def test_pytorch_example_refuses_hostile_pickle(tmp_path):
    state = collections.OrderedDict(torch_state())
    state["evil"] = _Hostile()
    f = tmp_path / "evil.bin"
    write_torch_zip(f, state)
    assert b"system" in f.read_bytes()
    r = run(TORCH_EXAMPLE, f, cwd=tmp_path)
    assert_clean_error(r, "evil.bin", "system")
    assert not (tmp_path / "PWNED").exists()


def test_pytorch_example_bad_inputs(tmp_path):
    f = tmp_path / "trunc.bin"
    write_torch_zip(f, collections.OrderedDict(torch_state()))
    f.write_bytes(f.read_bytes()[:300])
    assert_clean_error(run(TORCH_EXAMPLE, f), "trunc.bin")
    assert_clean_error(run(TORCH_EXAMPLE, f, "x"), "N must be")


def test_pytorch_example_on_real_torch_fixtures():
    """Files written by real torch.save (tests/fixtures/torch/, see make_fixtures.py there): every
    tensor torch.load returned is printed with its dtype and shape, f32/f64 values are equal, and
    the hostile files are refused."""
    exp_path = FIXTURES / "torch" / "expected.json"
    assert exp_path.exists(), f"{exp_path} missing: run tests/fixtures/torch/make_fixtures.py with torch"
    expected = json.loads(exp_path.read_text())["files"]
    assert len(expected) >= 5
    for fname, case in sorted(expected.items()):
        r = run(TORCH_EXAMPLE, FIXTURES / "torch" / fname, 64)
        if case.get("unsafe"):   # hostile pickles: refused with one line, nothing run
            assert_clean_error(r, fname)
            continue
        assert r.rc == 0, (fname, r.err)
        got = parse_values(r.out)
        assert set(got) == set(case["tensors"]), fname
        for name, t in case["tensors"].items():
            dtype, shape, values = got[name]
            assert (dtype, shape) == (t["dtype"], t["shape"]), (fname, name)
            if t["dtype"] in ("F32", "F64") and "values" in t:
                with np.errstate(over="ignore", under="ignore"):
                    want = np.array(t["values"], dtype=np.float64).astype(np.float32)[:64]
                assert values.tobytes() == want.tobytes(), (fname, name, values, want)


# ---- part5/examples/generate.c: generation through silica/generate.h ----

GEN_EXAMPLE = EXAMPLES / "part5" / "generate"


def test_generate_example_prints_what_silica_run_prints(tmp_path):
    """The example (sl_gen_model_open, sl_gen_prompt, sl_generate, under 50 lines) prints
    byte for byte what `silica run MODEL PROMPT --temp 0.7 --seed S --max-tokens N` prints:
    on the demo model (no chat template: the text with BOS) and on a model with a real
    Llama 3 tokenizer and chat template (the rendered messages)."""
    from conftest import ROOT, run_silica
    from hf_models import make_hf_model
    assert len((ROOT / "part5" / "examples" / "generate.c").read_text().splitlines()) <= 50
    llama3 = tmp_path / "llama3"
    make_hf_model(llama3, "llama", weights_dtype="float32", dtype="float32", tokenizer="llama3", hidden=32, heads=2,
                  kv_heads=1, inter=64, vocab=128256, tied=True, seed=3)
    for model, prompt in ((ROOT / "models" / "demo", "def fibonacci(n):"), (llama3, "Write a haiku about the sea.")):
        for n, seed in ((24, 0), (40, 7)):
            got = run(GEN_EXAMPLE, model, prompt, n, seed)
            want = run_silica("run", model, prompt, "--temp", 0.7, "--seed", seed, "--max-tokens", n, check=True)
            assert got.rc == 0 and got.err == "", got.err
            assert got.out == want.out and len(got.out) > 1, (model, seed, got.out, want.out)
    r = run(GEN_EXAMPLE, tmp_path / "nope", "hi")
    assert r.rc == 2 and "nope" in r.err
