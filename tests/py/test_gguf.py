"""GGUF v2/v3 read and write against the real peer, gguf-py (GGUFWriter / GGUFReader).

silica reads through `silica inspect --json` (names, dtypes, shapes, plain metadata);
tensor bytes, the typed API of silica/gguf.h and the writer are driven through
build/tools/gguf_tool (tests/tools/gguf_tool.c).  Malformed files are built here
byte by byte and must give exit 2 with one stderr line naming the file.
"""
import json
import math
import struct
import subprocess

import numpy as np
import pytest

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

from conftest import SILICA, assert_clean_error, run_silica

TOOL = SILICA.parent / "tools" / "gguf_tool"
RNG = np.random.default_rng(7)


def tool(*args):
    assert TOOL.exists(), f"gguf_tool not built at {TOOL}"
    p = subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def tool_ok(*args):
    rc, out, err = tool(*args)
    assert rc == 0, f"gguf_tool {args} exited {rc}: {err}"
    return out


# ---------------------------------------------------------------------------
# a peer-written file with every KV type and many tensor types

SCALARS = [  # key, gguf-py adder, value, type
    ("k.u8", "add_uint8", 200, V.UINT8), ("k.i8", "add_int8", -100, V.INT8),
    ("k.u16", "add_uint16", 60000, V.UINT16), ("k.i16", "add_int16", -30000, V.INT16),
    ("k.u32", "add_uint32", 4000000000, V.UINT32), ("k.i32", "add_int32", -2000000000, V.INT32),
    ("k.f32", "add_float32", 0.1, V.FLOAT32), ("k.bool", "add_bool", True, V.BOOL),
    ("k.u64", "add_uint64", 2**63 + 12345, V.UINT64), ("k.i64", "add_int64", -(2**62) - 7, V.INT64),
    ("k.f64", "add_float64", 1.0 / 3.0, V.FLOAT64), ("k.str", "add_string", "héllo ▁wörld", V.STRING),
]
ARRAYS = [  # key, values, element type
    ("a.u8", [0, 1, 255], V.UINT8), ("a.i8", [-128, 127], V.INT8), ("a.u16", [1, 65535], V.UINT16),
    ("a.i16", [-5, 5], V.INT16), ("a.u32", [7, 4294967295], V.UINT32), ("a.i32", [-1, 2, -3], V.INT32),
    ("a.f32", [0.5, -1.25, 3.0], V.FLOAT32), ("a.bool", [True, False, True], V.BOOL),
    ("a.str", ["<s>", "▁the", "", "日本"], V.STRING), ("a.u64", [2**64 - 1, 0], V.UINT64),
    ("a.i64", [-(2**63), 2**63 - 1], V.INT64), ("a.f64", [1e300, -2.5e-300], V.FLOAT64),
]
NESTED = [[1, 2, 3], [4], [5, 6]]
N_TOKENS = 3000


def f32_round(x):
    return float(np.float32(x))


def tensor_set():
    """name -> (array given to GGUFWriter, raw_dtype or None, expected sl dtype, row-major shape)"""
    t = {}
    a = RNG.standard_normal((3, 5)).astype(np.float32)
    t["f32.weight"] = (a, None, "F32", [3, 5])
    t["f16.weight"] = (RNG.standard_normal((2, 3, 4)).astype(np.float16), None, "F16", [2, 3, 4])
    x = RNG.standard_normal((4, 64)).astype(np.float32)
    t["bf16.weight"] = (gguf.quants.quantize(x, Q.BF16), Q.BF16, "BF16", [4, 64])
    t["f64.bias"] = (RNG.standard_normal(7), None, "F64", [7])
    t["i8.t"] = (np.arange(-4, 4, dtype=np.int8), None, "I8", [8])
    t["i16.t"] = (np.arange(6, dtype=np.int16).reshape(2, 3), None, "I16", [2, 3])
    t["i32.t"] = (np.arange(6, dtype=np.int32).reshape(1, 2, 3), None, "I32", [1, 2, 3])
    t["i64.t"] = (np.arange(4, dtype=np.int64).reshape(1, 1, 2, 2), None, "I64", [1, 1, 2, 2])
    x = RNG.standard_normal((3, 128)).astype(np.float32)
    t["q4_0.weight"] = (gguf.quants.quantize(x, Q.Q4_0), Q.Q4_0, "Q4_0", [3, 128])
    t["q8_0.weight"] = (gguf.quants.quantize(x, Q.Q8_0), Q.Q8_0, "Q8_0", [3, 128])
    # gguf-py has no Q4_K / Q6_K quantizer: raw blocks of the right size (144 / 210 bytes per 256)
    t["q4_k.weight"] = (RNG.integers(0, 256, (2, 2 * 144), dtype=np.uint8), Q.Q4_K, "Q4_K", [2, 512])
    t["q6_k.weight"] = (RNG.integers(0, 256, (3, 210), dtype=np.uint8), Q.Q6_K, "Q6_K", [3, 256])
    t["mxfp4.weight"] = (gguf.quants.quantize(x, Q.MXFP4), Q.MXFP4, "MXFP4", [3, 128])
    return t


def write_peer(path, alignment=None):
    w = gguf.GGUFWriter(str(path), "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    for k, fn, v, _ in SCALARS:
        getattr(w, fn)(k, v)
    for k, vals, et in ARRAYS:
        w.add_key_value(k, vals, V.ARRAY, sub_type=et)
    w.add_array("a.nested", NESTED)
    w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(N_TOKENS)])
    tensors = tensor_set()
    for name, (arr, raw, _, _) in tensors.items():
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


@pytest.fixture(scope="module")
def peer_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("gguf") / "peer.gguf"
    return p, write_peer(p)


def test_inspect_names_shapes_types_match_peer(silica, peer_file):
    path, tensors = peer_file
    r = silica("inspect", path, "--json", check=True).json()
    assert r["format"] == "gguf"
    got = {t["name"]: t for t in r["tensors"]}
    reader = gguf.GGUFReader(str(path))
    assert [t["name"] for t in r["tensors"]] == [t.name for t in reader.tensors]
    for rt in reader.tensors:
        t = got[rt.name]
        assert t["shape"] == [int(d) for d in reversed(rt.shape)]  # row-major, like GGUFReader's numpy view
        assert t["dtype"] == tensors[rt.name][2]
        assert t["dtype"] == rt.tensor_type.name
        assert t["nbytes"] == rt.n_bytes
        assert t["shape"] == tensors[rt.name][3]


def test_tensor_bytes_identical(peer_file, tmp_path):
    path, tensors = peer_file
    reader = gguf.GGUFReader(str(path))
    for rt in reader.tensors:
        out = tmp_path / "t.bin"
        tool_ok("tensor", path, rt.name, out)
        assert out.read_bytes() == np.ascontiguousarray(rt.data).tobytes(), rt.name
        assert out.read_bytes() == np.ascontiguousarray(tensors[rt.name][0]).tobytes(), rt.name


def test_plain_metadata_matches_peer(silica, peer_file):
    path, _ = peer_file
    md = silica("inspect", path, "--json", check=True).json()["metadata"]
    assert md["general.architecture"] == "llama"
    for k, _, v, t in SCALARS:
        want = f32_round(v) if t == V.FLOAT32 else v
        assert md[k] == want, k
    for k, vals, et in ARRAYS:
        want = [f32_round(x) for x in vals] if et == V.FLOAT32 else vals
        assert md[k] == want, k
    assert md["a.nested"] == NESTED
    toks = md["tokenizer.ggml.tokens"]  # kept whole in JSON
    assert len(toks) == N_TOKENS and toks[-1] == f"tok{N_TOKENS - 1}"
    reader = gguf.GGUFReader(str(path))
    for name, f in reader.fields.items():
        if name.startswith("GGUF.") or name == "a.nested":
            continue
        want = f.contents()
        if f.types[-1] == V.FLOAT32:
            want = [f32_round(x) for x in want] if isinstance(want, list) else f32_round(want)
        assert md[name] == want, name
    assert list(md) == [n for n in reader.fields if not n.startswith("GGUF.")]  # file order


def test_inspect_text_truncates_long_values(silica, peer_file):
    path, _ = peer_file
    out = silica("inspect", path, check=True).out
    line = next(l for l in out.splitlines() if "tokenizer.ggml.tokens" in l)
    assert line.endswith("...") and len(line) < 200


def test_typed_view_matches_peer_types(peer_file):
    path, _ = peer_file
    d = json.loads(tool_ok("dump", path))
    reader = gguf.GGUFReader(str(path))
    assert d["version"] == 3 and d["alignment"] == 32
    assert d["data_offset"] == reader.data_offset
    md = d["metadata"]
    for name, f in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        assert md[name]["type"] == f.types[0].name.lower(), name
        if f.types[0] == V.ARRAY:
            assert md[name]["elem_type"] == f.types[1].name.lower(), name
    assert md["k.u64"]["value"] == str(2**63 + 12345)  # exact beyond 2^53
    assert md["a.nested"]["value"][0] == {"type": "array", "elem_type": "int32", "value": [1, 2, 3]}
    # element access through sl_gguf_array_get (indexed string arrays, nested walk)
    assert d["elements"]["a.str"] == ["<s>", "▁the", "", "日本"]
    assert d["elements"]["a.nested"] == NESTED
    assert d["elements"]["tokenizer.ggml.tokens"][1234] == "tok1234"
    # getters: accepted only where the value fits
    g = d["getters"]
    assert g["k.u32"]["u32"] == 4000000000 and "i32" not in g["k.u32"]
    assert g["k.i8"]["i32"] == -100 and "u32" not in g["k.i8"]
    assert g["k.bool"]["bool"] is True and g["k.str"]["strlen"] == len("héllo ▁wörld".encode())
    assert "u32" not in g["k.str"] and "bool" not in g["k.u8"]
    assert math.isclose(g["k.f64"]["f32"], 1 / 3, rel_tol=1e-7)
    for rt, t in zip(reader.tensors, d["tensors"]):
        assert t["name"] == rt.name and t["ggml_type"] == int(rt.tensor_type)
        assert t["ne"] == [int(x) for x in rt.shape]
        assert d["data_offset"] + t["offset"] == rt.data_offset


@pytest.mark.parametrize("alignment", [None, 64, 1])
def test_rewrite_is_byte_identical(tmp_path, alignment):
    src = tmp_path / "src.gguf"
    write_peer(src, alignment)
    out = tmp_path / "out.gguf"
    tool_ok("rewrite", src, out)
    assert out.read_bytes() == src.read_bytes()


def test_rewrite_metadata_only_file(tmp_path):
    src = tmp_path / "vocab.gguf"
    w = gguf.GGUFWriter(str(src), "llama")
    w.add_array("tokenizer.ggml.scores", [0.0, -1.5])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = tmp_path / "out.gguf"
    tool_ok("rewrite", src, out)
    assert out.read_bytes() == src.read_bytes()


def test_v2_is_read_and_rewritten_as_v3(silica, tmp_path, peer_file):
    path, _ = peer_file
    b = bytearray(path.read_bytes())
    b[4:8] = struct.pack("<I", 2)
    v2 = tmp_path / "v2.gguf"
    v2.write_bytes(bytes(b))
    r = silica("inspect", v2, "--json", check=True).json()
    assert len(r["tensors"]) == len(tensor_set())
    assert json.loads(tool_ok("dump", v2))["version"] == 2
    out = tmp_path / "v3.gguf"
    tool_ok("rewrite", v2, out)
    o = out.read_bytes()
    # the only difference: silica always writes version 3
    assert o[4:8] == struct.pack("<I", 3) and o[8:] == bytes(b[8:]) and o[:4] == b"GGUF"


# ---------------------------------------------------------------------------
# silica's writer, read by gguf-py

def spec_file(tmp_path, metadata, tensors):
    """tensors: name -> (sl dtype, row-major shape, raw bytes)"""
    ts = []
    for i, (name, (dt, shape, raw)) in enumerate(tensors.items()):
        f = tmp_path / f"raw{i}.bin"
        f.write_bytes(raw)
        ts.append({"name": name, "dtype": dt, "shape": shape, "file": str(f)})
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"metadata": metadata, "tensors": ts}, ensure_ascii=False))
    return p


def test_writer_output_read_by_gguf_py(silica, tmp_path):
    tensors, src_set = {}, tensor_set()
    for name, (arr, _, dt, shape) in src_set.items():
        tensors[name] = (dt, shape, np.ascontiguousarray(arr).tobytes())
    metadata = {
        "general.architecture": "llama",
        "plain.int": 5, "plain.big": 2**40, "plain.float": 0.25, "plain.bool": False, "plain.str": "ü",
        "plain.arr_int": [1, 2, 3], "plain.arr_float": [1, 2.5], "plain.arr_str": ["a", "b"],
        "plain.nested": [[1, 2], [3]], "plain.empty": [],
        "typed.u8": {"type": "uint8", "value": 255},
        "typed.u16": {"type": "uint16", "value": 65535},
        "typed.i16": {"type": "int16", "value": -32768},
        "typed.u32": {"type": "uint32", "value": 4294967295},
        "typed.u64": {"type": "uint64", "value": str(2**64 - 1)},
        "typed.i64": {"type": "int64", "value": -(2**53)},
        "typed.f64": {"type": "float64", "value": 0.1},
        "typed.f32nan": {"type": "float32", "value": "nan"},
        "typed.bool": {"type": "bool", "value": True},
        "typed.arr": {"type": "array", "elem_type": "uint16", "value": [1, 2]},
        "typed.nested": {"type": "array", "elem_type": "array",
                         "value": [{"type": "array", "elem_type": "string", "value": ["x"]}, ["y", "z"]]},
        "general.alignment": 64,
    }
    out = tmp_path / "w.gguf"
    tool_ok("write", spec_file(tmp_path, metadata, tensors), out)
    r = gguf.GGUFReader(str(out))
    f = r.fields
    want_types = {
        "plain.int": [V.INT32], "plain.big": [V.INT64], "plain.float": [V.FLOAT32], "plain.bool": [V.BOOL],
        "plain.str": [V.STRING], "plain.arr_int": [V.ARRAY, V.INT32], "plain.arr_float": [V.ARRAY, V.FLOAT32],
        "plain.arr_str": [V.ARRAY, V.STRING], "typed.u8": [V.UINT8], "typed.u16": [V.UINT16],
        "typed.i16": [V.INT16], "typed.u32": [V.UINT32], "typed.u64": [V.UINT64], "typed.i64": [V.INT64],
        "typed.f64": [V.FLOAT64], "typed.f32nan": [V.FLOAT32], "typed.bool": [V.BOOL],
        "typed.arr": [V.ARRAY, V.UINT16], "general.alignment": [V.UINT32],
    }
    for k, t in want_types.items():
        assert f[k].types == t, k
    assert f["plain.nested"].types[:2] == [V.ARRAY, V.ARRAY]
    assert f["plain.empty"].types[0] == V.ARRAY and f["plain.empty"].contents() == []
    assert json.loads(tool_ok("dump", out))["metadata"]["plain.empty"]["elem_type"] == "int32"
    assert f["plain.big"].contents() == 2**40 and f["typed.u64"].contents() == 2**64 - 1
    assert f["typed.i64"].contents() == -(2**53) and f["typed.f64"].contents() == 0.1
    assert math.isnan(f["typed.f32nan"].contents())
    assert f["plain.str"].contents() == "ü" and f["plain.arr_str"].contents() == ["a", "b"]
    assert f["plain.arr_float"].contents() == [1.0, 2.5]
    assert [x for x in f] == ["GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", *metadata]
    assert r.alignment == 64 and r.data_offset % 64 == 0
    # nested arrays, checked through silica's own reader (gguf-py flattens them)
    md = run_silica("inspect", out, "--json", check=True).json()["metadata"]
    assert md["plain.nested"] == [[1, 2], [3]] and md["typed.nested"] == [["x"], ["y", "z"]]
    for rt in r.tensors:
        dt, shape, raw = tensors[rt.name]
        assert rt.tensor_type.name == dt
        assert [int(d) for d in reversed(rt.shape)] == shape
        assert np.ascontiguousarray(rt.data).tobytes() == raw, rt.name
        assert (rt.data_offset - r.data_offset) % 64 == 0
    # gguf-py's own pipeline agrees: dequantized Q8_0 equals dequantizing the bytes we were given
    q = next(t for t in r.tensors if t.name == "q8_0.weight")
    src = src_set["q8_0.weight"][0]
    assert np.array_equal(gguf.quants.dequantize(q.data, Q.Q8_0), gguf.quants.dequantize(src, Q.Q8_0))


@pytest.mark.parametrize("metadata,needle", [
    ({"k": None}, "'k'"),
    ({"k": {"value": 1}}, "'k'"),
    ({"k": {"type": "uint8", "value": 256}}, "out of range"),
    ({"k": {"type": "int8", "value": 1.5}}, "integer"),
    ({"k": {"type": "uint64", "value": "-1"}}, "negative"),
    ({"k": [1, "a"]}, "one type"),
    ({"k": {"type": "array", "elem_type": "bogus", "value": []}}, "elem_type"),
    ({"general.alignment": 48}, "power of two"),
    ({"general.alignment": {"type": "int32", "value": 32}}, "uint32"),
    ({"": 1}, "empty metadata key"),
])
def test_writer_rejects_bad_metadata(tmp_path, metadata, needle):
    out = tmp_path / "bad.gguf"
    rc, _, err = tool("write", spec_file(tmp_path, metadata, {}), out)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "bad.gguf" in p.name]


@pytest.mark.parametrize("tensors,needle", [
    ({"t": ("U8", [4], b"\0" * 4)}, "cannot be stored in GGUF"),
    ({"t": ("Q4_0", [2, 16], b"\0" * 18)}, "block size"),
    ({"x" * 64: ("F32", [1], b"\0" * 4)}, "names must be"),
    ({"t": ("F32", [1, 1, 1, 1, 1], b"\0" * 4)}, "at most 4"),
])
def test_writer_rejects_bad_tensors(tmp_path, tensors, needle):
    out = tmp_path / "bad.gguf"
    rc, _, err = tool("write", spec_file(tmp_path, {}, tensors), out)
    assert rc == 2 and needle in err and "'" in err, err
    assert not out.exists()


# ---------------------------------------------------------------------------
# malformed files, built byte by byte

def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_u32(key, v):
    return kv(key, 4, struct.pack("<I", v))


def tinfo(name, ne, typ=0, off=0):
    return gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<IQ", typ, off)


def build(kvs=(), tis=(), data=b"", version=3, n_t=None, n_kv=None, align=32, magic=b"GGUF"):
    b = magic + struct.pack("<IQQ", version, len(tis) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv)
    b += b"".join(kvs) + b"".join(tis)
    b += b"\0" * (-len(b) % align)
    return b + data


def test_builder_makes_valid_files(silica, tmp_path):
    """The builder below is right: gguf-py and silica both accept its baseline."""
    p = tmp_path / "ok.gguf"
    p.write_bytes(build([kv_u32("a", 1), kv("s", 8, gstr("x"))], [tinfo("t", [4]), tinfo("u", [8], off=32)],
                        b"\0" * 64))
    r = gguf.GGUFReader(str(p))
    assert [t.name for t in r.tensors] == ["t", "u"]
    assert [t["name"] for t in silica("inspect", p, "--json", check=True).json()["tensors"]] == ["t", "u"]


T4 = [tinfo("t", [4])]
D16 = b"\0" * 32
MALFORMED = {
    "bad_magic": (build(magic=b"GGUX"), "bad magic"),
    "version1": (build(version=1), "version 1"),
    "version4": (build(version=4), "version 4"),
    "big_endian": (build(version=3 << 24), "big-endian"),
    "truncated_header": (b"GGUF" + struct.pack("<I", 3) + b"\0" * 5, "truncated"),
    "truncated_kv": (build([kv_u32("a", 1)], align=1)[:-3], "truncated"),
    "absurd_n_kv": (build(n_kv=2**40), "n_kv"),
    "absurd_n_tensors": (build(n_t=2**50), "n_tensors"),
    "string_past_eof": (build([kv("s", 8, struct.pack("<Q", 2**62) + b"abc")]), "past the end"),
    "key_past_eof": (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 10**15) + b"k" * 20, "past the end"),
    "absurd_array": (build([kv("a", 9, struct.pack("<IQ", 6, 2**61))]), "cannot fit"),
    "unknown_value_type": (build([kv("a", 13, b"\0" * 8)]), "unknown value type 13"),
    "bad_bool": (build([kv("a", 7, b"\x02")]), "bool"),
    "empty_key": (build([kv("", 4, b"\0" * 4)]), "empty key"),
    "duplicate_key": (build([kv_u32("a", 1), kv_u32("a", 2)]), "duplicate key 'a'"),
    "deep_nesting": (build([kv("a", 9, struct.pack("<IQ", 9, 1) * 9 + struct.pack("<IQ", 4, 0))]), "nested"),
    "alignment_not_pow2": (build([kv_u32("general.alignment", 24)], T4, D16, align=24), "power of two"),
    "alignment_zero": (build([kv_u32("general.alignment", 0)]), "power of two"),
    "alignment_wrong_type": (build([kv("general.alignment", 5, struct.pack("<i", 32))]), "uint32"),
    "truncated_tensor_info": (build(tis=T4)[:40], "truncated"),
    "too_many_dims": (build(tis=[tinfo("t", [1, 1, 1, 1, 1])], data=D16), "n_dims 5"),
    "unknown_ggml_type": (build(tis=[tinfo("t", [4], typ=99)], data=D16), "unknown ggml type 99"),
    "removed_ggml_type": (build(tis=[tinfo("t", [4], typ=31)], data=D16), "ggml type 31"),
    "dims_overflow": (build(tis=[tinfo("t", [2**40, 2**40])], data=D16), "overflow"),
    "negative_dim": (build(tis=[tinfo("t", [2**64 - 4])], data=D16), "negative"),
    "block_size": (build(tis=[tinfo("t", [16], typ=2)], data=D16), "block size 32"),
    "data_out_of_bounds": (build(tis=[tinfo("t", [64])], data=D16), "outside"),
    "offset_out_of_bounds": (build(tis=[tinfo("t", [4], off=2**63)], data=D16), "outside"),
    "misaligned_offset": (build(tis=[tinfo("t", [4], off=8)], data=D16 * 2), "alignment"),
    "overlapping_tensors": (build(tis=[tinfo("t", [16]), tinfo("u", [4], off=32)], data=D16 * 4), "overlap"),
    "duplicate_tensor_name": (build(tis=[tinfo("t", [4]), tinfo("t", [4], off=32)], data=D16 * 2),
                              "duplicate tensor name 't'"),
    "empty_tensor_name": (build(tis=[tinfo("", [4])], data=D16), "empty tensor name"),
    "nul_in_name": (build(tis=[tinfo("a\0b", [4])], data=D16), "NUL"),
    "data_section_past_eof": (b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + tinfo("t", [4]), "past the end"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_gguf_is_a_clean_error(silica, tmp_path, case):
    data, needle = MALFORMED[case]
    p = tmp_path / f"{case}.gguf"
    p.write_bytes(data)
    r = silica("inspect", p)
    assert_clean_error(r, p.name, needle)
    rc, _, err = tool("dump", p)  # the typed API rejects it the same way
    assert rc == 2 and needle in err, err


def test_malformed_count_is_enough():
    assert len(MALFORMED) >= 15
