"""safetensors: silica against the real peers (safetensors 0.8, mlx).

- silica reads what safetensors.numpy.save_file / safetensors.serialize and
  mx.save_safetensors write: names, dtypes, shapes, metadata, and bit-identical
  values (read back through silica's writers and loaded by the peers);
- silica's writer is byte-identical to safetensors.serialize for the same
  tensors + metadata (every dtype incl. F8_*, F4, C64) and its output loads in
  safetensors and mlx;
- the index.json helper matches transformers' json.dumps(indent=2, sort_keys);
- malformed headers each give exit 2 and one stderr line naming the file.
"""
import ctypes
import json
import struct

import ml_dtypes
import mlx.core as mx
import numpy as np
import pytest
from safetensors import TensorSpec, serialize
from safetensors.numpy import load_file, save_file

from conftest import SILICA, assert_clean_error, run_silica

ST_TOOL = SILICA.parent / "tools" / "st_tool"


def st_tool(*args):
    import subprocess
    p = subprocess.run([str(ST_TOOL), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def inspect(path):
    r = run_silica("inspect", "--json", path, check=True)
    return r.json()


def sample(rng, f8=True):
    t = {
        "model.embed.weight": rng.standard_normal((5, 3)).astype(np.float32),
        "layers.0.bias": rng.standard_normal(4).astype(np.float16),
        "layers.0.w_bf16": rng.standard_normal((2, 3)).astype(ml_dtypes.bfloat16),
        "f8a": rng.standard_normal(6).astype(ml_dtypes.float8_e4m3fn),
        "f8b": rng.standard_normal(6).astype(ml_dtypes.float8_e5m2),
        "ids": np.arange(7, dtype=np.int64),
        "u64": np.array([2**63 + 5, 1], dtype=np.uint64),
        "d": rng.standard_normal((2, 2)).astype(np.float64),
        "i8": np.array([-3, 4], dtype=np.int8),
        "u8": np.array([250], dtype=np.uint8),
        "i16": np.array([-300], dtype=np.int16),
        "u16": np.array([65000], dtype=np.uint16),
        "i32": np.array([-70000], dtype=np.int32),
        "u32": np.array([4000000000], dtype=np.uint32),
        "mask": np.array([True, False, True]),
        "c": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64),
        "scalar": np.array(1.5, dtype=np.float32),
        "empty": np.zeros((2, 0), dtype=np.float32),
        "ünïcode \"name\"": np.ones(2, dtype=np.float32),
    }
    if not f8:   # safetensors.numpy cannot load float8 (numpy has no such dtype)
        del t["f8a"], t["f8b"]
    return t


ST_NAME = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(ml_dtypes.bfloat16): "BF16",
           np.dtype(ml_dtypes.float8_e4m3fn): "F8_E4M3", np.dtype(ml_dtypes.float8_e5m2): "F8_E5M2",
           np.dtype(np.int64): "I64", np.dtype(np.uint64): "U64", np.dtype(np.float64): "F64",
           np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.int16): "I16", np.dtype(np.uint16): "U16",
           np.dtype(np.int32): "I32", np.dtype(np.uint32): "U32", np.dtype(np.bool_): "BOOL",
           np.dtype(np.complex64): "C64"}


def spec_file(tmp_path, tensors, metadata, tag="spec"):
    """A st_tool SPEC: raw little-endian bytes of each array in its own file."""
    ts = []
    for i, (k, v) in enumerate(tensors.items()):
        f = tmp_path / f"{tag}_{i}.bin"
        f.write_bytes(np.ascontiguousarray(v).tobytes())
        ts.append({"name": k, "dtype": ST_NAME[v.dtype], "shape": list(v.shape), "file": str(f)})
    p = tmp_path / f"{tag}.json"
    p.write_text(json.dumps({"metadata": metadata, "tensors": ts}))
    return p


def test_reads_save_file(tmp_path):
    t = sample(np.random.default_rng(1))
    p = tmp_path / "m.safetensors"
    save_file(t, str(p), metadata={"format": "pt", "note": "x"})
    j = inspect(p)
    assert j["format"] == "safetensors"
    got = {e["name"]: e for e in j["tensors"]}
    assert set(got) == set(t)
    for k, v in t.items():
        assert got[k]["dtype"] == ST_NAME[v.dtype], k
        assert got[k]["shape"] == list(v.shape), k
        assert got[k]["nbytes"] == v.nbytes
    assert j["metadata"] == {"format": "pt", "note": "x"}


@pytest.mark.parametrize("meta", [None, {"format": "pt"}, {"format": "mlx"}])
def test_writer_byte_identical_to_save_file(tmp_path, meta):
    t = sample(np.random.default_rng(2))
    ref = tmp_path / "ref.safetensors"
    save_file(t, str(ref), metadata=meta)
    out = tmp_path / "out.safetensors"
    st_tool("write", "safetensors", spec_file(tmp_path, t, meta), out)
    assert out.read_bytes() == ref.read_bytes()


def test_writer_multi_key_metadata(tmp_path):
    """The reference orders several metadata keys by a per-process random
    HashMap; silica keeps the caller's order.  Everything else is identical."""
    t = sample(np.random.default_rng(2))
    meta = {"format": "mlx", "b": "2", "a": "1"}
    ref = tmp_path / "ref.safetensors"
    save_file(t, str(ref), metadata=meta)
    out = tmp_path / "out.safetensors"
    st_tool("write", "safetensors", spec_file(tmp_path, t, meta), out)
    r, o = ref.read_bytes(), out.read_bytes()
    assert len(r) == len(o) and r[:8] == o[:8]
    n = struct.unpack("<Q", r[:8])[0]
    assert json.loads(o[8:8 + n]) == json.loads(r[8:8 + n])
    assert o[8 + n:] == r[8 + n:]
    assert o[8:8 + n].startswith(b'{"__metadata__":{"format":"mlx","b":"2","a":"1"},')


def test_writer_byte_identical_all_dtypes_serialize(tmp_path):
    """Dtypes numpy lacks (F4, F8_E8M0, FNUZ) through safetensors.serialize."""
    kinds = {"bool": ("BOOL", 1), "uint8": ("U8", 1), "int8": ("I8", 1), "float8_e5m2": ("F8_E5M2", 1),
             "float8_e4m3fn": ("F8_E4M3", 1), "float8_e8m0fnu": ("F8_E8M0", 1),
             "float8_e4m3fnuz": ("F8_E4M3FNUZ", 1), "float8_e5m2fnuz": ("F8_E5M2FNUZ", 1),
             "int16": ("I16", 2), "uint16": ("U16", 2), "float16": ("F16", 2), "bfloat16": ("BF16", 2),
             "int32": ("I32", 4), "uint32": ("U32", 4), "float32": ("F32", 4), "complex64": ("C64", 8),
             "float64": ("F64", 8), "int64": ("I64", 8), "uint64": ("U64", 8)}
    rng = np.random.default_rng(3)
    bufs, specs, ts = [], {}, []
    for i, (k, (st, sz)) in enumerate(kinds.items()):
        raw = rng.integers(0, 256, 4 * sz, dtype=np.uint8).tobytes()
        b = ctypes.create_string_buffer(raw, len(raw))
        bufs.append(b)
        specs[f"t{i:02d}_{k}"] = TensorSpec(dtype=k, shape=[4], data_ptr=ctypes.addressof(b), data_len=len(raw))
        f = tmp_path / f"r{i}.bin"
        f.write_bytes(raw)
        ts.append({"name": f"t{i:02d}_{k}", "dtype": st, "shape": [4], "file": str(f)})
    raw = bytes([0x21, 0x43])   # F4: 4 elements in 2 bytes
    b = ctypes.create_string_buffer(raw, 2)
    bufs.append(b)
    specs["fp4"] = TensorSpec(dtype="float4_e2m1fn_x2", shape=[2], data_ptr=ctypes.addressof(b), data_len=2)
    f = tmp_path / "f4.bin"
    f.write_bytes(raw)
    ts.append({"name": "fp4", "dtype": "F4", "shape": [4], "file": str(f)})
    ref = serialize(specs, metadata={"format": "pt"})
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"metadata": {"format": "pt"}, "tensors": ts}))
    out = tmp_path / "o.safetensors"
    st_tool("write", "safetensors", spec, out)
    assert out.read_bytes() == bytes(ref)
    # and silica reads it back with the same dtypes/shapes
    j = inspect(out)
    assert {e["name"]: e["dtype"] for e in j["tensors"]} == {t["name"]: t["dtype"] for t in ts}


def test_roundtrip_convert_values(tmp_path):
    t = sample(np.random.default_rng(4), f8=False)
    src = tmp_path / "src.safetensors"
    save_file(t, str(src), metadata={"format": "pt"})
    out = tmp_path / "out.safetensors"
    run_silica("convert", src, out, "--to", "safetensors", check=True)
    back = load_file(str(out))
    for k, v in t.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and back[k].tobytes() == v.tobytes(), k


def test_reads_mlx_safetensors(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    arrs = {"w": mx.array(a), "h": mx.array(a).astype(mx.float16), "bf": mx.array(a).astype(mx.bfloat16),
            "i": mx.array(np.arange(9, dtype=np.int32)), "b": mx.array(np.array([True, False])),
            "c": mx.array((a[0] + 1j * a[1]).astype(np.complex64))}
    p = tmp_path / "m.safetensors"
    mx.save_safetensors(str(p), arrs, metadata={"format": "mlx"})
    p0 = tmp_path / "nometa.safetensors"
    mx.save_safetensors(str(p0), {"w": arrs["w"]})   # writes "__metadata__": null, no padding
    j = inspect(p)
    assert {e["name"]: (e["dtype"], e["shape"]) for e in j["tensors"]} == {
        "w": ("F32", [3, 5]), "h": ("F16", [3, 5]), "bf": ("BF16", [3, 5]), "i": ("I32", [9]), "b": ("BOOL", [2]),
        "c": ("C64", [3, 5][1:])}
    assert j["metadata"] == {"format": "mlx"}
    assert inspect(p0)["metadata"] == {}
    # values: silica -> safetensors (canonical order) -> mx.load, bit-identical
    out = tmp_path / "o.safetensors"
    run_silica("convert", p, out, "--to", "safetensors", check=True)
    back = mx.load(str(out))
    for k, v in arrs.items():
        assert back[k].dtype == v.dtype
        assert np.array(back[k].view(mx.uint8) if v.dtype != mx.bool_ else back[k]).tobytes() == \
            np.array(v.view(mx.uint8) if v.dtype != mx.bool_ else v).tobytes(), k


def test_written_loads_in_mlx(tmp_path):
    t = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "h": np.ones(3, np.float16),
         "bf": np.array([1.5, -2], dtype=ml_dtypes.bfloat16)}
    out = tmp_path / "o.safetensors"
    st_tool("write", "safetensors", spec_file(tmp_path, t, {"format": "mlx"}), out)
    m, meta = mx.load(str(out), return_metadata=True)
    assert meta == {"format": "mlx"}
    assert np.array_equal(np.array(m["w"]), t["w"])
    assert np.array(m["bf"].astype(mx.float32)).tolist() == [1.5, -2.0]


def test_index_json_matches_transformers(tmp_path):
    names = {"b.weight": "model-00002-of-00002.safetensors", "a.weight": "model-00001-of-00002.safetensors",
             "é": "model-00001-of-00002.safetensors"}
    st_tool("index", tmp_path, 1234, 300, *[f"{k}={v}" for k, v in names.items()])
    ref = json.dumps({"metadata": {"total_parameters": 300, "total_size": 1234}, "weight_map": names},
                     indent=2, sort_keys=True) + "\n"
    assert (tmp_path / "model.safetensors.index.json").read_text() == ref
    d2 = tmp_path / "noparams"
    d2.mkdir()
    st_tool("index", d2, 10, -1, "x=a.safetensors")
    ref = json.dumps({"metadata": {"total_size": 10}, "weight_map": {"x": "a.safetensors"}}, indent=2,
                     sort_keys=True) + "\n"
    assert (d2 / "model.safetensors.index.json").read_text() == ref


def test_index_dir_readable(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    save_file({"a": np.ones(2, np.float32)}, str(d / "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
    save_file({"b": np.ones(3, np.float32)}, str(d / "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
    st_tool("index", d, 20, 5, "a=model-00001-of-00002.safetensors", "b=model-00002-of-00002.safetensors")
    j = inspect(d)
    assert sorted(e["name"] for e in j["tensors"]) == ["a", "b"]


# ---------------------------------------------------------------- malformed


def st_bytes(header, data=b"", n=None, pad=True):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def T(dtype="F32", shape=(2,), off=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(off)}


MALFORMED = {
    "too_small": (b"\x01\x02\x03", "too small"),
    "header_past_eof": (st_bytes({"a": T()}, b"\0" * 8, n=4096), "does not fit"),
    "header_too_large": (struct.pack("<Q", 2**63) + b"{}" + b" " * 6, "100,000,000"),
    "header_zero": (struct.pack("<Q", 0) + b"{}", "header length 0"),
    "invalid_json": (st_bytes(b'{"a":{"dtype":"F32",', b""), "invalid JSON"),
    "not_object": (st_bytes(b"[1,2]   "), "not a JSON object"),
    "nul_padding": (st_bytes(b'{}' + b"\0" * 6, pad=False), "control byte"),
    "trailing_garbage": (st_bytes(b'{} x    ', pad=False), "trailing"),
    "bad_utf8": (st_bytes(b'{"\xff":{}}', b""), "UTF-8"),
    "gap": (st_bytes({"a": T(off=(0, 8)), "b": T(off=(12, 20))}, b"\0" * 20), "gap"),
    "overlap": (st_bytes({"a": T(off=(0, 8)), "b": T(off=(4, 12))}, b"\0" * 12), "overlap"),
    "not_from_zero": (st_bytes({"a": T(off=(8, 16))}, b"\0" * 16), "expected 0"),
    "inverted": (st_bytes({"a": T(shape=(0,), off=(8, 0))}, b"\0" * 8), "end 0 < begin 8"),
    "truncated_data": (st_bytes({"a": T(off=(0, 8))}, b"\0" * 5), "truncated"),
    "trailing_data": (st_bytes({"a": T(off=(0, 8))}, b"\0" * 9), "trailing data"),
    "size_mismatch": (st_bytes({"a": T(shape=(3,), off=(0, 8))}, b"\0" * 8), "need 12"),
    "shape_overflow": (st_bytes({"a": T(shape=(2**40, 2**40), off=(0, 8))}, b"\0" * 8), "overflows"),
    "unknown_dtype": (st_bytes({"a": T(dtype="F128")}, b"\0" * 8), "unknown dtype 'F128'"),
    "miscased_dtype": (st_bytes({"a": T(dtype="f32")}, b"\0" * 8), "unknown dtype 'f32'"),
    "duplicate_name": (st_bytes(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                b'"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
                       "duplicate tensor name 'a'"),
    "duplicate_field": (st_bytes(b'{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}',
                                 b"\0" * 8), "duplicate key 'dtype'"),
    "metadata_not_string": (st_bytes({"__metadata__": {"k": 1}, "a": T()}, b"\0" * 8), "__metadata__['k']"),
    "float_shape": (st_bytes(b'{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', b"\0" * 8),
                    "not a non-negative integer"),
    "negative_shape": (st_bytes(b'{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', b"\0" * 8),
                       "not a non-negative integer"),
    "offsets_len3": (st_bytes({"a": T(off=(0, 8, 8))}, b"\0" * 8), "data_offsets must be"),
    "missing_dtype": (st_bytes({"a": {"shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), "'dtype' missing"),
    "f4_odd": (st_bytes({"a": T(dtype="F4", shape=(3,), off=(0, 2))}, b"\0" * 2), "whole number"),
    "f6_not_multiple": (st_bytes({"a": T(dtype="F6_E2M3", shape=(2,), off=(0, 2))}, b"\0" * 2), "whole number"),
    "too_many_dims": (st_bytes({"a": T(shape=(1,) * 9, off=(0, 4))}, b"\0" * 4), "dimensions"),
    "nul_escape_name": (st_bytes(b'{"a\\u0000b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
                        "u0000"),
    "entry_not_object": (st_bytes({"a": [1]}, b""), "not an object"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed(tmp_path, case):
    data, needle = MALFORMED[case]
    p = tmp_path / f"bad_{case}.safetensors"
    p.write_bytes(data)
    r = run_silica("inspect", p)
    assert_clean_error(r, p.name, needle)


def test_reference_rejects_our_malformed_too(tmp_path):
    """Sanity: the peer agrees these are broken (where it is strict)."""
    from safetensors.numpy import load
    for case in ["gap", "overlap", "truncated_data", "trailing_data", "size_mismatch", "unknown_dtype",
                 "header_past_eof", "not_object", "nul_padding"]:
        with pytest.raises(Exception):
            load(MALFORMED[case][0])


def test_accepts_what_reference_accepts(tmp_path):
    """Leading whitespace, unknown per-tensor fields, out-of-order JSON and a
    null __metadata__ are accepted by safetensors 0.8, so by silica too."""
    from safetensors.numpy import load
    h = (b'  {"__metadata__":null,"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12],"x":"y"},'
         b'"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}')
    data = struct.pack("<Q", len(h)) + h + np.arange(3, dtype=np.float32).tobytes()
    ref = load(data)
    assert ref["a"].tolist() == [0.0, 1.0] and ref["b"].tolist() == [2.0]
    p = tmp_path / "ok.safetensors"
    p.write_bytes(data)
    j = inspect(p)
    assert [(e["name"], e["shape"]) for e in j["tensors"]] == [("a", [2]), ("b", [1])]
    out = tmp_path / "o.safetensors"
    run_silica("convert", p, out, "--to", "safetensors", check=True)
    back = load_file(str(out))
    assert back["a"].tolist() == [0.0, 1.0] and back["b"].tolist() == [2.0]
