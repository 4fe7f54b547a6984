"""PyTorch checkpoints against the real peer: fixtures written by torch 2.11
(tests/fixtures/torch/make_fixtures.py; expected.json holds what torch.load
itself returned), silica-written zips checked with Python's zipfile/pickletools
(and with torch.load(weights_only=True) on a torch machine: tools/torch_check.py,
result in tests/fixtures/torch/torch_check_result.json), `silica scan`, and
malformed pickles / torch files built here (exit 2, one stderr line).

Values: silica converts each fixture to safetensors (npz for complex128) and the
raw bytes of every tensor must hash to the sha256 torch gave.
"""
import hashlib
import json
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, assert_clean_error, run_silica

FX = FIXTURES / "torch"
EXPECTED = json.loads((FX / "expected.json").read_text())["files"]
READABLE = sorted(k for k, v in EXPECTED.items() if not v.get("unsafe"))
HOSTILE = sorted(k for k, v in EXPECTED.items() if v.get("unsafe"))


def safetensors_raw(path):
    """name -> (dtype, shape, raw bytes) parsed by hand (no dtype restrictions)."""
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    hdr.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], b[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in hdr.items()}


def silica_tensors(src, tmp_path):
    """Every tensor of src as silica reads it (through `silica convert`)."""
    exp = EXPECTED[src]
    if any(t["dtype"] == "C128" for t in exp["tensors"].values()):
        out = tmp_path / "out.npz"
        run_silica("convert", FX / src, out, "--to", "npz", check=True)
        with np.load(out) as z:
            return {k[:-4] if k.endswith(".npy") else k: ("C128", list(z[k].shape), z[k].astype("<c16").tobytes())
                    for k in z.files}
    out = tmp_path / ("out" if (FX / src).is_dir() else "out.safetensors")
    run_silica("convert", FX / src, out, "--to", "safetensors", check=True)
    files = sorted(out.glob("*.safetensors")) if out.is_dir() else [out]
    res = {}
    for f in files:
        res.update(safetensors_raw(f))
    return res


@pytest.mark.parametrize("src", READABLE)
def test_inspect_matches_torch(src):
    exp = EXPECTED[src]
    r = run_silica("inspect", FX / src, "--json", check=True)
    j = r.json()
    assert j["format"] == exp["format"]
    got = {t["name"]: (t["dtype"], t["shape"]) for t in j["tensors"]}
    assert got == {k: (v["dtype"], v["shape"]) for k, v in exp["tensors"].items()}
    for k, v in exp["metadata"].items():
        assert k in j["metadata"], k
        if isinstance(v, float):
            assert j["metadata"][k] == pytest.approx(v)
        else:
            assert j["metadata"][k] == v, k


@pytest.mark.parametrize("src", READABLE)
def test_values_bit_identical(src, tmp_path):
    exp = EXPECTED[src]["tensors"]
    got = silica_tensors(src, tmp_path)
    assert sorted(got) == sorted(exp)
    for name, e in exp.items():
        dtype, shape, raw = got[name]
        assert (dtype, list(shape)) == (e["dtype"], e["shape"]), name
        assert hashlib.sha256(raw).hexdigest() == e["sha256"], f"{src}: {name}: bytes differ from torch"


def test_views_are_views():
    """views.pt: six tensors over two storages; strided ones are not copies."""
    j = run_silica("inspect", FX / "views.pt", "--json", check=True).json()
    assert len(j["tensors"]) == 6
    exp = EXPECTED["views.pt"]["tensors"]
    assert exp["colT"]["values"] == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert exp["corner"]["values"] == [5, 6, 7, 9, 10, 11]


# ---------------------------------------------------------------------------
# scan

@pytest.mark.parametrize("src", HOSTILE)
def test_scan_flags_hostile(src):
    r = run_silica("scan", FX / src)
    assert r.rc == 1, r.err
    assert "posix.system" in r.err and src in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "UNSAFE" in r.out
    j = run_silica("scan", FX / src, "--json")
    assert j.rc == 1 and j.json()["unsafe"] == 1


@pytest.mark.parametrize("src", HOSTILE)
def test_hostile_refused_on_load(src):
    r = run_silica("inspect", FX / src)
    assert r.rc == 2 and len(r.err.strip().splitlines()) == 1
    if src != "hostile_p4.pkl":   # no torch container at all: refused before any pickle
        assert "global 'posix.system' is not allowed" in r.err


@pytest.mark.parametrize("src", READABLE)
def test_scan_clean(src):
    r = run_silica("scan", FX / src, "--json")
    assert r.rc == 0, r.err
    j = r.json()
    assert j["unsafe"] == 0
    names = {i["global"] for f in j["files"] for i in f["imports"]}
    assert "torch._utils._rebuild_tensor_v2" in names
    assert all(i["allowed"] for f in j["files"] for i in f["imports"])


def test_scan_cli():
    r = run_silica("scan", "--help")
    assert r.rc == 0 and "usage: silica scan" in r.out
    assert_clean_error(run_silica("scan"), "missing PATH")
    assert_clean_error(run_silica("scan", "/nonexistent.pt"), "/nonexistent.pt")


def test_scan_unreadable(tmp_path):
    p = tmp_path / "junk.bin"
    p.write_bytes(b"hello world")
    assert_clean_error(run_silica("scan", p), "junk.bin")


# ---------------------------------------------------------------------------
# writer: silica -> torch zip, laid out as torch.save does

def test_writer_layout_and_roundtrip(tmp_path):
    out = tmp_path / "my.model.pt"
    run_silica("convert", FX / "dtypes.pt", out, "--to", "torch", check=True)
    with zipfile.ZipFile(out) as z:
        names = [i.filename for i in z.infolist()]
        assert names[:4] == ["my.model/data.pkl", "my.model/.format_version", "my.model/.storage_alignment",
                             "my.model/byteorder"]
        assert names[-2:] == ["my.model/version", "my.model/.data/serialization_id"]
        assert z.read("my.model/byteorder") == b"little" and z.read("my.model/version") == b"3\n"
        raw = out.read_bytes()
        for i in z.infolist():
            assert i.compress_type == zipfile.ZIP_STORED
            n, x = struct.unpack("<HH", raw[i.header_offset + 26:i.header_offset + 30])
            assert (i.header_offset + 30 + n + x) % 64 == 0, f"{i.filename} not 64-byte aligned"
            assert z.testzip() is None
        globals_ = {arg for op, arg, _ in pickletools.genops(z.read("my.model/data.pkl")) if op.name == "GLOBAL"}
        assert globals_ <= {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_tensor_v3",
                            "torch.storage UntypedStorage"} | {f"torch {n}" for n in (
            "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
            "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage", "uint16", "uint32",
            "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
            "float4_e2m1fn_x2")}
    # read back: same bytes as torch wrote originally
    back = tmp_path / "back.safetensors"
    run_silica("convert", out, back, "--to", "safetensors", check=True)
    got = safetensors_raw(back)
    for name, e in EXPECTED["dtypes.pt"]["tensors"].items():
        assert hashlib.sha256(got[name][2]).hexdigest() == e["sha256"], name


def test_torch_accepted_silica_files():
    """Recorded result of tools/torch_check.py on torch 2.11 (weights_only=True, mmap on and off)."""
    res = json.loads((FX / "torch_check_result.json").read_text())
    assert res["torch"].startswith("2.")
    assert res["files"] and all(not f["problems"] for f in res["files"].values())


# ---------------------------------------------------------------------------
# malformed input: pickles and torch zips built by hand

def s(x):
    b = x.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def i(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def g(m, n):
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def tup(xs):
    return b"(" + b"".join(xs) + b"t"


ODICT = g("collections", "OrderedDict") + b")R"


def tensor(stype="FloatStorage", key="0", numel=4, offset=0, size=(4,), stride=(1,), rg=b"\x89", hooks=ODICT,
           legacy=False):
    pid = b"(" + s("storage") + g("torch", stype) + s(key) + s("cpu") + i(numel) + (b"N" if legacy else b"") + b"tQ"
    return (g("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + i(offset) + tup([i(x) for x in size]) +
            tup([i(x) for x in stride]) + rg + hooks + b"tR")


def state(*entries):
    return b"\x80\x02" + ODICT + b"(" + b"".join(s(n) + t for n, t in entries) + b"u."


GOOD = state(("w", tensor()))
DATA = {"0": struct.pack("<4f", 1, 2, 3, 4)}


def tzip(path, pkl=GOOD, records=DATA, prefix="archive", version=b"3\n", byteorder=b"little", extra=None,
         deflate=()):
    with zipfile.ZipFile(path, "w") as z:
        if pkl is not None:
            z.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder is not None:
            z.writestr(f"{prefix}/byteorder", byteorder)
        for k, v in records.items():
            z.writestr(zipfile.ZipInfo(f"{prefix}/data/{k}"), v,
                       compress_type=zipfile.ZIP_DEFLATED if k in deflate else zipfile.ZIP_STORED)
        if version is not None:
            z.writestr(f"{prefix}/version", version)
        for n, v in (extra or {}).items():
            z.writestr(n, v)
    return path


def legacy(path, obj=None, keys=("0",), blobs=None, proto=1001, little=True, magic=None, tail=b""):
    obj = obj if obj is not None else state(("w", tensor(legacy=True)))
    magic = magic or bytes.fromhex("80028a0a6cfc9c46f9206aa85019") + b"."
    sysinfo = pickle.dumps({"protocol_version": 1001, "little_endian": little,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    blobs = blobs if blobs is not None else [struct.pack("<q", 4) + struct.pack("<4f", 1, 2, 3, 4)]
    Path(path).write_bytes(magic + pickle.dumps(proto, protocol=2) + sysinfo + obj +
                           pickle.dumps(list(keys), protocol=2) + b"".join(blobs) + tail)
    return path


def test_hand_built_controls_load(tmp_path):
    """The builders above make files silica reads (so each malformed case below differs by one defect)."""
    for p in (tzip(tmp_path / "ok.pt"), legacy(tmp_path / "ok_legacy.pt")):
        j = run_silica("inspect", p, "--json", check=True).json()
        assert [(t["name"], t["dtype"], t["shape"]) for t in j["tensors"]] == [("w", "F32", [4])]
        out = tmp_path / (p.stem + ".safetensors")
        run_silica("convert", p, out, "--to", "safetensors", check=True)
        assert safetensors_raw(out)["w"][2] == struct.pack("<4f", 1, 2, 3, 4)


BAD_PICKLES = {
    "global_system": (b"\x80\x02" + g("posix", "system") + s("id") + b"\x85R.", "global 'posix.system' is not allowed"),
    "global_eval": (b"\x80\x02" + g("builtins", "eval") + b".", "global 'builtins.eval' is not allowed"),
    "stack_global": (b"\x80\x04\x8c\x02os\x8c\x06system\x93.", "SHORT_BINUNICODE"),
    "inst": (b"\x80\x02(io\nsystem\n.", "opcode INST"),
    "binbytes": (b"\x80\x02C\x01a.", "opcode SHORT_BINBYTES"),
    "stack_underflow": (b"\x80\x02R.", "stack underflow"),
    "setitems_no_mark": (b"\x80\x02}u.", "no MARK"),
    "bad_memo": (b"\x80\x02h\x07.", "memo index 7 was never set"),
    "no_stop": (b"\x80\x02" + ODICT, "without STOP"),
    "trailing": (GOOD + b"\x00", "trailing bytes"),
    "unbalanced_mark": (b"\x80\x02(K\x01.", "MARK"),
    "string_past_end": (b"\x80\x02X\x00\x01\x00\x00ab.", "exceeds"),
    "reduce_storage": (b"\x80\x02" + g("torch", "FloatStorage") + b")R.", "calling 'torch.FloatStorage' is not allowed"),
    "build_on_list": (b"\x80\x02]}b.", "BUILD"),
    "setitem_on_list": (b"\x80\x02]K\x01K\x02s.", "not a dict"),
    "bad_pid": (state(("w", b"K\x05Q")), "persistent id"),
    "key_traversal": (state(("w", tensor(key="..x"))), "character outside"),
    "requires_grad_int": (state(("w", tensor(rg=b"K\x01"))), "requires_grad must be a bool"),
    "hooks": (state(("w", tensor(hooks=b"}"))), "backward_hooks"),
    "too_many_dims": (state(("w", tensor(size=(1,) * 9, stride=(1,) * 9))), "dimensions"),
    "size_stride_rank": (state(("w", tensor(size=(2, 2), stride=(1,)))), "stride has"),
    "negative_size": (state(("w", tensor(size=(-1,)))), "size[0] must be an int >= 0"),
    "view_oob": (state(("w", tensor(offset=2, size=(3,)))), "reaches element 5 of storage '0' which holds 4"),
    "stride_oob": (state(("w", tensor(size=(2, 2), stride=(3, 1)))), "which holds 4"),
    "conflicting_refs": (state(("w", tensor()), ("v", tensor(numel=2, size=(2,)))), "referenced both as"),
    "quantized": (state(("w", tensor(stype="QInt8Storage"))), "quantized"),
    "long1_huge": (b"\x80\x02\x8a\x09" + bytes(9) + b".", "does not fit 64 bits"),
    "unknown_opcode": (b"\x80\x02\xfe.", "unknown opcode 0xfe"),
    "proto_missing": (b"K\x01.", "PROTO"),
    "cyclic": (b"\x80\x02}q\x00X\x01\x00\x00\x00a]q\x01h\x01as.", "nested deeper"),
}


@pytest.mark.parametrize("case", sorted(BAD_PICKLES))
def test_bad_pickle(case, tmp_path):
    pkl, needle = BAD_PICKLES[case]
    p = tzip(tmp_path / f"{case}.pt", pkl=pkl)
    assert_clean_error(run_silica("inspect", p), f"{case}.pt", needle)


BAD_ZIPS = {
    "record_size": (dict(records={"0": bytes(12)}), "is 12 bytes but storage '0'"),
    "missing_record": (dict(records={}), "record 'archive/data/0' for storage '0' is missing"),
    "compressed": (dict(records={"0": bytes(16)}, deflate=("0",)), "compressed"),
    "dotdot": (dict(extra={"archive/../evil": b"x"}), "evil"),
    "no_version": (dict(version=None), "version' is missing"),
    "version_99": (dict(version=b"99\n"), "expected a version 1..10"),
    "byteorder": (dict(byteorder=b"middle"), "expected 'little' or 'big'"),
    "no_folder": (dict(prefix="", extra=None), "archive folder"),
    "outside_prefix": (dict(extra={"other/x": b"1"}), "outside the archive folder"),
    "torchscript": (dict(extra={"archive/constants.pkl": b"\x80\x02N."}), "TorchScript"),
    "no_data_pkl": (dict(pkl=None), "data.pkl' is missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_bad_zip(case, tmp_path):
    kw, needle = BAD_ZIPS[case]
    if case == "no_folder":
        p = tmp_path / f"{case}.pt"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("data.pkl", GOOD)
            z.writestr("version", b"3\n")
    else:
        p = tzip(tmp_path / f"{case}.pt", **kw)
    assert_clean_error(run_silica("inspect", p), f"{case}.pt", needle)


def test_truncated_zip(tmp_path):
    p = tzip(tmp_path / "t.pt")
    b = p.read_bytes()
    for cut in (len(b) // 2, len(b) - 10, 30):
        p.write_bytes(b[:cut])
        assert_clean_error(run_silica("inspect", p), "t.pt")


BAD_LEGACY = {
    "magic": (dict(magic=b"\x80\x02\x8a\x0a" + bytes(10) + b"."), "legacy magic"),
    "protocol": (dict(proto=1002), "1001"),
    "numel_mismatch": (dict(blobs=[struct.pack("<q", 3) + bytes(12)]), "stored numel 3"),
    "truncated_storage": (dict(blobs=[struct.pack("<q", 4) + bytes(10)]), "run past the end"),
    "trailing": (dict(tail=b"junk"), "trailing bytes"),
    "unknown_key": (dict(keys=("0", "9")), "not a storage the object references"),
    "missing_key": (dict(keys=()), "missing from the legacy key list"),
    "hostile": (dict(obj=b"\x80\x02" + g("nt", "system") + s("x") + b"\x85R."), "global 'nt.system' is not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD_LEGACY))
def test_bad_legacy(case, tmp_path):
    kw, needle = BAD_LEGACY[case]
    p = legacy(tmp_path / f"{case}.pt", **kw)
    assert_clean_error(run_silica("inspect", p), f"{case}.pt", needle)


def test_bad_pickle_scan_names_it(tmp_path):
    p = tzip(tmp_path / "evil.pt", pkl=BAD_PICKLES["global_system"][0])
    r = run_silica("scan", p)
    assert r.rc == 1 and "posix.system" in r.err and "evil.pt" in r.err
