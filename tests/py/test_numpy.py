"""NumPy .npy / .npz (and the ZIP layer): silica against numpy, ml_dtypes, mlx.

- silica reads numpy.save / savez / savez_compressed and mx.save / mx.savez
  output: names, dtypes, shapes; values bit-identical (re-written by silica's
  npy/npz writers and loaded by numpy / mlx);
- big-endian and Fortran-order arrays come back in logical order;
- '<V2' is bfloat16 both ways (the MLX / ml_dtypes convention);
- silica's .npy is byte-identical to numpy.save, its .npz loads in numpy and
  mlx and passes zipfile.testzip;
- malformed npy / npz / zip inputs each give exit 2 and one stderr line
  naming the file.
"""
import io
import json
import struct
import subprocess
import zipfile
import zlib

import ml_dtypes
import mlx.core as mx
import numpy as np
import pytest

from conftest import SILICA, assert_clean_error, run_silica

ST_TOOL = SILICA.parent / "tools" / "st_tool"


def st_tool(*args):
    p = subprocess.run([str(ST_TOOL), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def inspect(path):
    return run_silica("inspect", "--json", path, check=True).json()


SL = {"f2": "F16", "f4": "F32", "f8": "F64", "b1": "BOOL", "u1": "U8", "i1": "I8", "i2": "I16", "i4": "I32",
      "i8": "I64", "u2": "U16", "u4": "U32", "u8": "U64", "c8": "C64", "c16": "C128"}


def arrays(rng):
    out = {}
    for code in SL:
        dt = np.dtype("<" + code if code not in ("b1", "u1", "i1") else "|" + code)
        if dt.kind == "b":
            a = rng.integers(0, 2, (3, 4)).astype(bool)
        elif dt.kind in "iu":
            a = rng.integers(0, 100, (3, 4)).astype(dt)
        elif dt.kind == "c":
            a = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(dt)
        else:
            a = rng.standard_normal((3, 4)).astype(dt)
        out["a_" + code] = a
    return out


@pytest.mark.parametrize("code", sorted(SL))
def test_npy_dtypes_roundtrip_identical(tmp_path, code):
    a = arrays(np.random.default_rng(7))["a_" + code]
    src = tmp_path / "x.npy"
    np.save(src, a)
    j = inspect(src)
    assert j["format"] == "npy"
    assert [(t["name"], t["dtype"], t["shape"]) for t in j["tensors"]] == [("x", SL[code], [3, 4])]
    out = tmp_path / "y.npy"
    st_tool("npy", src, "x", out)
    assert out.read_bytes() == src.read_bytes()   # header and data identical to numpy.save


@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 0, 3), (1, 2, 3, 4, 1, 2, 1, 2), (123456789012, 0)])
def test_npy_shapes_identical(tmp_path, shape):
    a = np.zeros(shape, np.float32) if 0 in shape else np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    src = tmp_path / "s.npy"
    np.save(src, a)
    assert inspect(src)["tensors"][0]["shape"] == list(shape)
    out = tmp_path / "o.npy"
    st_tool("npy", src, "s", out)
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("kind", ["fortran", "bigendian", "fortran_bigendian"])
def test_npy_strided_and_bigendian(tmp_path, kind):
    rng = np.random.default_rng(8)
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    b = a
    if "fortran" in kind:
        b = np.asfortranarray(b)
    if "bigendian" in kind:
        b = b.astype(">f4")
    src = tmp_path / "s.npy"
    np.save(src, b)
    if "fortran" in kind:
        assert b"'fortran_order': True" in src.read_bytes()[:128]
    out = tmp_path / "o.npy"
    st_tool("npy", src, "s", out)
    back = np.load(out)
    assert back.dtype == np.dtype("<f4") and np.array_equal(back, a)
    # through convert as well (npz output)
    z = tmp_path / "c.npz"
    run_silica("convert", src, z, "--to", "npz", check=True)
    assert np.array_equal(np.load(z)["s"], a)


def test_npz_savez_and_compressed(tmp_path):
    rng = np.random.default_rng(9)
    t = arrays(rng)
    t["scalar"] = np.float64(3.25)
    t["nested/name.with.dots"] = np.arange(4, dtype=np.int32)
    for fn in (np.savez, np.savez_compressed):
        src = tmp_path / f"{fn.__name__}.npz"
        fn(src, **t)
        j = inspect(src)
        assert j["format"] == "npz"
        got = {e["name"]: (e["dtype"], e["shape"]) for e in j["tensors"]}
        want = {k: (SL[np.dtype(v.dtype).str[1:]], list(np.shape(v))) for k, v in t.items()}
        assert got == want
        out = tmp_path / f"o_{fn.__name__}.npz"
        run_silica("convert", src, out, "--to", "npz", check=True)
        assert zipfile.ZipFile(out).testzip() is None
        back = np.load(out)
        for k, v in t.items():
            assert back[k].dtype == np.asarray(v).dtype and back[k].tobytes() == np.asarray(v).tobytes(), k


def test_npz_positional_names(tmp_path):
    src = tmp_path / "p.npz"
    np.savez(src, np.ones(2), np.zeros(3))
    assert sorted(e["name"] for e in inspect(src)["tensors"]) == ["arr_0", "arr_1"]


def test_mlx_npy_npz_bf16(tmp_path):
    rng = np.random.default_rng(10)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    bf = mx.array(a).astype(mx.bfloat16)
    p = tmp_path / "m.npy"
    mx.save(str(p), bf)
    assert b"'descr': '<V2'" in p.read_bytes()[:128]
    assert inspect(p)["tensors"][0]["dtype"] == "BF16"
    for fn in (mx.savez, mx.savez_compressed):
        z = tmp_path / f"{fn.__name__}.npz"
        fn(str(z), w=mx.array(a), v=bf, one=mx.array(a[0]), i=mx.array(np.arange(5, dtype=np.int16)))
        got = {e["name"]: (e["dtype"], e["shape"]) for e in inspect(z)["tensors"]}
        assert got == {"w": ("F32", [3, 4]), "v": ("BF16", [3, 4]), "one": ("F32", [4]), "i": ("I16", [5])}
        out = tmp_path / f"o_{fn.__name__}.npz"
        run_silica("convert", z, out, "--to", "npz", check=True)
        m = mx.load(str(out))
        assert m["v"].dtype == mx.bfloat16
        assert np.array(m["v"].view(mx.uint16)).tobytes() == np.array(bf.view(mx.uint16)).tobytes()
        assert np.array_equal(np.array(m["w"]), a) and np.array_equal(np.array(m["one"]), a[0])
        # numpy sees '<V2' as void; the bits match ml_dtypes' bfloat16
        nv = np.load(out)["v"]
        assert nv.dtype == np.dtype("V2")
        assert nv.tobytes() == a.astype(ml_dtypes.bfloat16).tobytes()


def test_written_npz_loads_everywhere(tmp_path):
    t = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "h": np.ones(3, np.float16),
         "b": np.array([True, False]), "e": np.zeros((0, 2), np.int64)}
    ts = []
    for i, (k, v) in enumerate(t.items()):
        f = tmp_path / f"r{i}.bin"
        f.write_bytes(v.tobytes())
        ts.append({"name": k, "dtype": SL[v.dtype.str[1:]], "shape": list(v.shape), "file": str(f)})
    bf = np.array([1.5, -2.25, 3], dtype=ml_dtypes.bfloat16)
    (tmp_path / "bf.bin").write_bytes(bf.tobytes())
    ts.append({"name": "bf", "dtype": "BF16", "shape": [3], "file": str(tmp_path / "bf.bin")})
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"metadata": None, "tensors": ts}))
    out = tmp_path / "o.npz"
    st_tool("write", "npz", spec, out)
    zf = zipfile.ZipFile(out)
    assert zf.testzip() is None
    assert [i.filename for i in zf.infolist()] == ["w.npy", "h.npy", "b.npy", "e.npy", "bf.npy"]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    back = np.load(out)
    for k, v in t.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    m = mx.load(str(out))
    assert m["bf"].dtype == mx.bfloat16
    assert np.array(m["bf"].astype(mx.float32)).tolist() == [1.5, -2.25, 3.0]
    # each member is exactly what numpy.save writes
    for k, v in t.items():
        bio = io.BytesIO()
        np.save(bio, v)
        assert zf.read(k + ".npy") == bio.getvalue(), k
    # array data is 64-byte aligned in the file (views can be used directly)
    raw = out.read_bytes()
    for info in zf.infolist():
        lh = info.header_offset
        n, m_ = struct.unpack("<HH", raw[lh + 26:lh + 30])
        assert (lh + 30 + n + m_) % 64 == 0
    # single-tensor npy writer refuses several tensors
    r = subprocess.run([str(ST_TOOL), "write", "npy", spec, tmp_path / "x.npy"], capture_output=True, text=True)
    assert r.returncode == 2 and "exactly one tensor" in r.stderr


# ---------------------------------------------------------------- malformed


def npy(header, data=b"", version=(1, 0), hlen=None, pad=True):
    h = header.encode("latin1") if isinstance(header, str) else header
    if pad:
        h = h + b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    fmt = "<H" if version[0] == 1 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(h) if hlen is None else hlen) + h + data


GOOD_H = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"


def zip_bytes(entries, eocd_count=None):
    """Minimal ZIP writer: entries = [(name, stored_bytes, method, flags, crc, usize)]."""
    out, cd = b"", b""
    for name, data, method, flags, crc, usize in entries:
        nb = name.encode()
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, len(data), usize, len(nb), 0)
        out += nb + data
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc, len(data), usize,
                          len(nb), 0, 0, 0, 0, 0, off) + nb
    n = len(entries) if eocd_count is None else eocd_count
    return out + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), len(out), 0)


def stored(name, data, **kw):
    e = [name, data, 0, 0, zlib.crc32(data), len(data)]
    for k, v in kw.items():
        e[["name", "data", "method", "flags", "crc", "usize"].index(k)] = v
    return tuple(e)


def deflated(name, data, **kw):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp = c.compress(data) + c.flush()
    e = [name, comp, 8, 0, zlib.crc32(data), len(data)]
    for k, v in kw.items():
        e[["name", "data", "method", "flags", "crc", "usize"].index(k)] = v
    return tuple(e)


GOOD_NPY = npy(GOOD_H, b"\0" * 8)
BIG_NPY = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (25000,), }", b"\0" * 100000)

NPY_BAD = {
    "bad_magic": (b"\x93NUMPZ\x01\x00" + GOOD_NPY[8:], "bad magic"),
    "version_4": (npy(GOOD_H, b"\0" * 8, version=(4, 0)), "version 4.0"),
    "header_past_eof": (npy(GOOD_H, b"", hlen=5000), "runs past"),
    "header_too_long": (npy(GOOD_H, b"", hlen=60000), "exceeds"),
    "no_newline": (npy(GOOD_H + "   ", b"\0" * 8, pad=False), "final newline"),
    "extra_key": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", b"\0" * 8),
                  "unexpected key 'x'"),
    "missing_key": (npy("{'descr': '<f4', 'shape': (2,), }", b"\0" * 8), "missing key 'fortran_order'"),
    "repeated_key": (npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
                     "repeated"),
    "object_descr": (npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16), "'|O'"),
    "structured_descr": (npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
                         "structured"),
    "void_descr": (npy("{'descr': '|V8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8), "'|V8'"),
    "unicode_descr": (npy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", b"\0" * 12), "'<U3'"),
    "fortran_maybe": (npy("{'descr': '<f4', 'fortran_order': 1, 'shape': (2,), }", b"\0" * 8), "True or False"),
    "negative_shape": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", b"\0" * 8),
                       "non-negative"),
    "shape_overflow": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
                       "overflows"),
    "shape_not_tuple": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", b"\0" * 8), "not a tuple"),
    "call_in_header": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': eval('(2,)'), }", b"\0" * 8),
                       "must be a tuple"),
    "truncated_data": (npy(GOOD_H, b"\0" * 5), "truncated"),
    "trailing_data": (npy(GOOD_H, b"\0" * 12), "trailing data"),
    "too_many_dims": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", b"\0" * 4),
                      "dimensions"),
}


@pytest.mark.parametrize("case", sorted(NPY_BAD))
def test_malformed_npy(tmp_path, case):
    data, needle = NPY_BAD[case]
    p = tmp_path / f"bad_{case}.npy"
    p.write_bytes(data)
    assert_clean_error(run_silica("inspect", p), p.name, needle)


def test_numpy_agrees_npy_malformed(tmp_path):
    """The peer rejects the ones it is strict about as well."""
    for case in ["bad_magic", "version_4", "object_descr", "truncated_data", "extra_key", "missing_key",
                 "call_in_header"]:
        with pytest.raises(Exception):
            np.load(io.BytesIO(NPY_BAD[case][0]), allow_pickle=False)


def _deflate_bomb():
    big = b"\0" * 200000   # declared 1000, inflates to 200000
    return zip_bytes([deflated("x.npy", big, usize=1000)])


def _patched_cd_offset():
    z = bytearray(zip_bytes([stored("x.npy", GOOD_NPY)]))
    struct.pack_into("<I", z, len(z) - 6, 1 << 30)   # central directory offset
    return bytes(z)


def _zip64_locator_missing():
    z = bytearray(zip_bytes([stored("x.npy", GOOD_NPY)]))
    struct.pack_into("<I", z, len(z) - 6, 0xFFFFFFFF)
    return bytes(z)


NPZ_BAD = {
    "dotdot_member": (zip_bytes([stored("../x.npy", GOOD_NPY)]), "unsafe"),
    "absolute_member": (zip_bytes([stored("/etc/x.npy", GOOD_NPY)]), "unsafe"),
    "encrypted": (zip_bytes([stored("x.npy", GOOD_NPY, flags=1)]), "encrypted"),
    "bzip2_method": (zip_bytes([stored("x.npy", GOOD_NPY, method=12)]), "method 12"),
    "deflate_bomb": (_deflate_bomb(), "past its declared 1000 bytes"),
    "deflate_short": (zip_bytes([deflated("x.npy", BIG_NPY, usize=len(BIG_NPY) + 50)]), "ends after"),
    "impossible_ratio": (zip_bytes([deflated("x.npy", GOOD_NPY, usize=0xFFFFFFF0)]), "impossible ratio"),
    "wrong_crc_deflate": (zip_bytes([deflated("x.npy", GOOD_NPY, crc=1234)]), "CRC-32"),
    "corrupt_deflate": (zip_bytes([("x.npy", b"\xff" * 40, 8, 0, 0, 100)]), "DEFLATE"),
    "duplicate_member": (zip_bytes([stored("x.npy", GOOD_NPY), stored("x.npy", GOOD_NPY)]), "duplicate zip entry"),
    "not_npy_member": (zip_bytes([stored("x.txt", b"hello")]), "not a .npy"),
    "bad_npy_inside": (zip_bytes([stored("x.npy", NPY_BAD["object_descr"][0])]), "member 'x.npy'"),
    "stored_size_mismatch": (zip_bytes([stored("x.npy", GOOD_NPY, usize=len(GOOD_NPY) + 1)]), "STORED"),
    "truncated_zip": (zip_bytes([stored("x.npy", GOOD_NPY)])[:-30], "end-of-central-directory"),
    "entry_count_wrong": (zip_bytes([stored("x.npy", GOOD_NPY)], eocd_count=3), "entries"),
    "cd_offset_past_eof": (_patched_cd_offset(), "central directory"),
    "zip64_locator_missing": (_zip64_locator_missing(), "zip64"),
}


@pytest.mark.parametrize("case", sorted(NPZ_BAD))
def test_malformed_npz(tmp_path, case):
    data, needle = NPZ_BAD[case]
    p = tmp_path / f"bad_{case}.npz"
    p.write_bytes(data)
    assert_clean_error(run_silica("inspect", p), p.name, needle)


def test_zip_builder_is_sound(tmp_path):
    """The hand-made zips are valid where intended: numpy loads the good one."""
    p = tmp_path / "good.npz"
    p.write_bytes(zip_bytes([stored("x.npy", GOOD_NPY), deflated("y.npy", BIG_NPY)]))
    z = np.load(p)
    assert z["x"].shape == (2,) and z["y"].shape == (25000,)
    got = {e["name"]: e["shape"] for e in inspect(p)["tensors"]}
    assert got == {"x": [2], "y": [25000]}
    with pytest.raises(Exception):
        np.load(io.BytesIO(NPZ_BAD["wrong_crc_deflate"][0]))["x"]
