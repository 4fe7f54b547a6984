"""Quantization formats vs the real peers (tests/tools/quant_tool drives silica/quant.h).

Oracles: mlx (mx.quantize / mx.dequantize / mx.load of a GGUF, CPU backend) for the
MLX affine and microscaling modes; gguf-py (gguf.quants) for GGUF blocks.  The MLX GPU
variant has no peer on this machine: it is checked against a numpy transcription of
mlx/backend/cpu/quantized.cpp and mlx/backend/metal/kernels/quantized.h.  Every comparison is byte-for-byte (floats as raw bits).
"""
import os
import subprocess
from pathlib import Path

import ml_dtypes
import mlx.core as mx
import numpy as np
import pytest
from gguf import GGMLQuantizationType as GT
from gguf import GGUFWriter
from gguf import quants as gq

from conftest import SILICA, assert_clean_error

TOOL = Path(os.environ.get("QUANT_TOOL", SILICA.parent / "tools" / "quant_tool"))

NP = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}
MXT = {"F32": mx.float32, "F16": mx.float16, "BF16": mx.bfloat16}


class R:
    def __init__(self, p):
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr.decode()


def tool(*args, data=b"", simd=None):
    assert TOOL.exists(), f"quant_tool not built at {TOOL}"
    env = dict(os.environ)
    if simd:
        env["SILICA_SIMD"] = simd
    p = subprocess.run([str(TOOL), *map(str, args)], input=data, capture_output=True, timeout=120, env=env)
    return R(p)


def ok(*args, data=b"", simd=None):
    r = tool(*args, data=data, simd=simd)
    assert r.rc == 0, f"quant_tool {args} failed: {r.err}"
    return r


def bits_of(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 1: np.uint8}[a.dtype.itemsize])


def to_np(a):
    """mx array -> numpy with the exact bits (bf16 via uint16 view)."""
    if a.dtype == mx.bfloat16:
        return np.array(a.view(mx.uint16)).view(ml_dtypes.bfloat16)
    return np.array(a)


def adversarial(dt, k, rng, bits=4):
    """Rows of width k: random, .5 ties, all-negative, constant, zero, huge, tiny, NaN, Inf."""
    T = NP[dt]
    n = 2 ** bits - 1
    fmax = float(np.finfo(T).max) if dt != "BF16" else 3.0e38
    rows = [
        rng.standard_normal(k),
        rng.standard_normal(k) * 1e-3 + 5.0,
        np.resize(np.concatenate([[0.0, float(n)], np.arange(n) + 0.5]), k),   # ties at .5
        -np.resize(np.concatenate([[0.0, float(n)], np.arange(n) + 0.5]), k),
        -np.abs(rng.standard_normal(k)) - 0.1,                              # all negative
        np.full(k, 3.0), np.full(k, -2.5), np.zeros(k),                     # constant / zero
        np.resize([0.0, -0.0], k),
        rng.standard_normal(k) * fmax / 8,                                  # huge
        rng.standard_normal(k) * 1e-6,                                      # tiny (f16 subnormal)
        rng.uniform(-1, 1, k) * 12.5,
        np.resize([-12.5, 0.0, 1.0], k),
    ]
    w = np.stack(rows).astype(np.float32)
    w = w.astype(T)
    with np.errstate(invalid="ignore", over="ignore"):
        extra = rng.standard_normal((3, k)).astype(T)
        extra[0, 5] = np.nan
        extra[1, 0] = np.nan
        extra[2, 7] = np.inf
    return np.concatenate([w, extra, np.full((1, k), np.nan, T)])


# ---------------------------------------------------------------- MLX affine


def split_affine(out, n, bits, gs, dt):
    T = NP[dt]
    wb = n * bits // 8
    sb = n // gs * np.dtype(T).itemsize
    return out[:wb], out[wb:wb + sb], out[wb + sb:wb + 2 * sb]


@pytest.mark.parametrize("dt", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("gs", [32, 64, 128])
def test_affine_quantize_matches_mlx(dt, bits, gs):
    rng = np.random.default_rng(bits * 1000 + gs)
    w = adversarial(dt, 256, rng, bits)
    wq, s, b = mx.quantize(mx.array(w), group_size=gs, bits=bits)
    r = ok("affine-q", dt, bits, gs, dt, "cpu", data=w.tobytes())
    owq, os_, ob = split_affine(r.out, w.size, bits, gs, dt)
    assert owq == np.array(wq).tobytes(), "packed codes differ from mx.quantize"
    assert os_ == bits_of(to_np(s)).tobytes(), "scales differ from mx.quantize"
    assert ob == bits_of(to_np(b)).tobytes(), "biases differ from mx.quantize"


@pytest.mark.parametrize("dt", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("bits,gs", [(2, 32), (3, 64), (4, 64), (5, 128), (6, 32), (8, 128)])
def test_affine_dequantize_matches_mlx(dt, bits, gs):
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((16, 512)) * 2).astype(NP[dt])
    wq, s, b = mx.quantize(mx.array(w), group_size=gs, bits=bits)
    blob = np.array(wq).tobytes() + bits_of(to_np(s)).tobytes() + bits_of(to_np(b)).tobytes()
    # output in the scale dtype: mx.dequantize on the CPU
    want = mx.dequantize(wq, s, b, group_size=gs, bits=bits)
    r = ok("affine-dq", bits, gs, dt, dt, w.size, data=blob)
    assert r.out == bits_of(to_np(want)).tobytes()
    # f32 output: float(s)*q + float(b), codes unpacked independently here
    r = ok("affine-dq", bits, gs, dt, "F32", w.size, data=blob)
    allbits = np.unpackbits(np.array(wq).view(np.uint8), bitorder="little").reshape(-1, bits)
    q = (allbits * (1 << np.arange(bits))).sum(axis=1).astype(np.float32)
    s32 = np.repeat(to_np(s).astype(np.float32).ravel(), gs)
    b32 = np.repeat(to_np(b).astype(np.float32).ravel(), gs)
    assert np.frombuffer(r.out, np.float32).view(np.uint32).tolist() == ((q * s32) + b32).view(np.uint32).tolist()


def gpu_reference(w, bits, gs, T):
    """MLX Metal affine quantize (kernels/quantized.h): max starts at 0, min at T_MAX, round() = half away."""
    n = np.float32(2 ** bits - 1)
    tmax = np.float32(np.finfo(T).max) if T is not ml_dtypes.bfloat16 else np.float32(ml_dtypes.finfo(T).max)
    x = w.astype(np.float32).reshape(-1, gs)
    rnd = lambda v: np.where(np.abs(v - np.trunc(v)) == 0.5, np.trunc(v) + np.sign(v), np.round(v)).astype(np.float32)
    with np.errstate(all="ignore"):
        mn = np.minimum(tmax, np.nanmin(np.where(np.isnan(x), np.inf, x), axis=1))
        mxv = np.maximum(np.float32(0), np.nanmax(np.where(np.isnan(x), -np.inf, x), axis=1))
        s = np.maximum((mxv - mn) / n, np.float32(1e-7)).astype(np.float32)
        side = np.abs(mn) > np.abs(mxv)
        s = np.where(side, s, -s).astype(np.float32)
        edge = np.where(side, mn, mxv).astype(np.float32)
        q0 = rnd((edge / s).astype(np.float32))
        snap = q0 != 0
        s = np.where(snap, edge / np.where(snap, q0, 1), s).astype(np.float32)
        bias = np.where(snap, edge, np.float32(0)).astype(np.float32)
        q = rnd(((x - bias[:, None]) / s[:, None]).astype(np.float32))
        q = np.clip(np.nan_to_num(q, nan=0.0), 0, n).astype(np.uint32)
    return q, s.astype(T), bias.astype(T)


def pack_codes(q, bits):
    q = q.reshape(-1).astype(np.uint64)
    bitsarr = ((q[:, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    return np.packbits(bitsarr.reshape(-1), bitorder="little").tobytes()


@pytest.mark.parametrize("dt", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_affine_gpu_variant_matches_spec(dt, bits):
    rng = np.random.default_rng(11 + bits)
    gs = 64
    w = adversarial(dt, 256, rng, bits)[:-4]      # finite rows (GPU NaN handling is unverified)
    q, s, b = gpu_reference(w, bits, gs, NP[dt])
    r = ok("affine-q", dt, bits, gs, dt, "gpu", data=w.tobytes())
    owq, os_, ob = split_affine(r.out, w.size, bits, gs, dt)
    assert owq == pack_codes(q, bits)
    assert os_ == bits_of(s).tobytes()
    assert ob == bits_of(b).tobytes()
    # the variants really differ on all-negative groups (range widened to [min, 0])
    cpu = ok("affine-q", dt, bits, gs, dt, "cpu", data=w.tobytes())
    assert cpu.out != r.out


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
@pytest.mark.parametrize("dt", ["F32", "F16", "BF16"])
def test_affine_simd_paths_identical(dt, variant):
    """AVX2 kernels (if this CPU has them) and the portable loops give the same bytes."""
    rng = np.random.default_rng(21)
    w = np.concatenate([adversarial(dt, 256, rng, b) for b in (2, 4, 8)])
    for bits in (3, 4, 8):
        a = ok("affine-q", dt, bits, 64, dt, variant, data=w.tobytes()).out
        b = ok("affine-q", dt, bits, 64, dt, variant, data=w.tobytes(), simd="scalar").out
        assert a == b
        for odt in ("F32", dt):
            da = ok("affine-dq", bits, 64, dt, odt, w.size, data=a).out
            db = ok("affine-dq", bits, 64, dt, odt, w.size, data=a, simd="scalar").out
            assert da == db


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 7, 8])
def test_pack_unpack_bitstream(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2 ** bits, 256, dtype=np.uint8)
    words = ok("pack", bits, data=codes.tobytes()).out
    assert words == pack_codes(codes, bits)
    assert ok("unpack", bits, 256, data=words).out == codes.tobytes()


# ---------------------------------------------------------------- MLX fp modes

FP = {"mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}


def fp_input(dt, rng):
    T = NP[dt]
    w = rng.standard_normal((12, 128)) * rng.uniform(0.01, 50, (12, 1))
    w[0, :32] = 0
    w[1, :] = np.resize([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75], 128)
    w[2, :] = np.resize([6.0, 8.5, 448.0, 500.0, -0.0, 1e-3], 128)
    w[3, :] *= 1e-4
    w[4, :] *= 1e-38 if dt != "F16" else 1e-6     # subnormal scales / E8M0 exponent wrap
    # log-uniform magnitudes with values just around the E2M1 / E4M3 rounding thresholds
    m = np.exp2(rng.uniform(-20, 12, (24, 1))) * rng.choice([-1, 1], (24, 128))
    t = np.resize([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0], 128) * (1 + rng.choice([-1, 0, 1], 128) * 2.0 ** -9)
    with np.errstate(over="ignore"):
        w = np.concatenate([w, (m * t / 4).astype(np.float32), rng.standard_normal((24, 128)) * m])
    w = np.clip(w, -float(np.finfo(np.float16).max) if dt == "F16" else -3e38, float(np.finfo(np.float16).max) if dt == "F16" else 3e38)
    return w.astype(np.float32).astype(T)


@pytest.mark.parametrize("dt", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("mode", list(FP))
def test_fp_quantize_matches_mlx(dt, mode):
    gs, bits = FP[mode]
    w = fp_input(dt, np.random.default_rng(5))
    wq, s = mx.quantize(mx.array(w), mode=mode)
    r = ok("fp-q", mode, dt, data=w.tobytes())
    wb = w.size * bits // 8
    assert r.out[:wb] == np.array(wq).tobytes(), "codes differ from mx.quantize"
    assert r.out[wb:] == np.array(s).tobytes(), "scales differ from mx.quantize"
    for odt in ["F32", "F16", "BF16"]:
        want = mx.dequantize(wq, s, mode=mode, dtype=MXT[odt])
        got = ok("fp-dq", mode, odt, w.size, data=r.out).out
        assert got == bits_of(to_np(want)).tobytes(), f"dequantize to {odt} differs"


def fp_nonfinite_input(dt, rng):
    """Groups with NaN (either sign) and +-Inf among zeros, signed zeros and normal values."""
    T = NP[dt]
    w = rng.standard_normal((8, 64)).astype(np.float32) * 3
    neg_nan = np.array([0xFFC00001], np.uint32).view(np.float32)[0]
    w[0, 3] = np.nan
    w[1, 0] = np.inf
    w[2, 5] = -np.inf
    w[3, :] = np.nan
    w[4, 7], w[4, 40] = np.nan, np.inf
    w[5, :8] = [np.nan, 0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-3]
    w[6, :5] = [neg_nan, 0.0, -0.0, 2.0, neg_nan]
    w[6, 16:20] = [np.inf, 0.0, -0.0, 3.0]
    w[7, :] = 0.0
    w[7, 33] = -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        return w.astype(T)


@pytest.mark.parametrize("dt", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("mode", list(FP))
def test_fp_quantize_nonfinite_matches_mlx(dt, mode):
    """NaN/Inf as mx.quantize (mlx 0.32.4 CPU): NaN propagates through the group maximum."""
    gs, bits = FP[mode]
    w = fp_nonfinite_input(dt, np.random.default_rng(11))
    wq, s = mx.quantize(mx.array(w), mode=mode)
    r = ok("fp-q", mode, dt, data=w.tobytes())
    wb = w.size * bits // 8
    assert r.out[:wb] == np.array(wq).tobytes(), "codes differ from mx.quantize"
    assert r.out[wb:] == np.array(s).tobytes(), "scales differ from mx.quantize"


def test_nvfp4_global_scale_matches_mlx():
    w = fp_input("F32", np.random.default_rng(9))
    g = np.float32(3.0)
    wq, s = mx.quantize(mx.array(w), mode="nvfp4", global_scale=mx.array(g))
    r = ok("fp-q", "nvfp4", "F32", "3.0", data=w.tobytes())
    assert r.out == np.array(wq).tobytes() + np.array(s).tobytes()
    want = mx.dequantize(wq, s, mode="nvfp4", global_scale=mx.array(g), dtype=mx.float32)
    assert ok("fp-dq", "nvfp4", "F32", w.size, "3.0", data=r.out).out == np.array(want).tobytes()


# ---------------------------------------------------------------- GGUF blocks

DEQ = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"]
HALF_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
               "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0]}


def random_blocks(name, nblocks, rng):
    bs, ts = gq.GGML_QUANT_SIZES[GT[name]]
    raw = rng.integers(0, 256, (nblocks, ts), dtype=np.uint8)
    for off in HALF_FIELDS[name]:   # finite f16 scales (gguf-py would propagate NaN payloads)
        h = (rng.standard_normal(nblocks) * rng.choice([1e-3, 1, 100], nblocks)).astype(np.float16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(nblocks, 2)
    return raw, bs


@pytest.mark.parametrize("name", DEQ)
def test_gguf_dequantize_matches_gguf_py(name):
    raw, bs = random_blocks(name, 64, np.random.default_rng(len(name) * 31 + ord(name[1])))
    want = gq.dequantize(raw.reshape(1, -1), GT[name]).astype(np.float32)
    got = ok("gguf-dq", name, data=raw.tobytes()).out
    assert np.frombuffer(got, np.uint32).tolist() == want.view(np.uint32).ravel().tolist()


def gguf_input(rng, k=256):
    rows = [rng.standard_normal(k), rng.standard_normal(k) * 1e-4, np.zeros(k), np.full(k, 2.0),
            -np.abs(rng.standard_normal(k)), np.resize([1.0, -1.0, 0.5, -8.0, 8.0], k),
            rng.standard_normal(k) * 1e4, np.resize(np.arange(-8, 8) * 0.25 + 0.125, k)]
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
def test_gguf_quantize_matches_gguf_py(name):
    x = gguf_input(np.random.default_rng(3))
    want = gq.quantize(x, GT[name])
    got = ok("gguf-q", name, data=x.tobytes()).out
    assert got == want.tobytes()


@pytest.mark.parametrize("name,tol", [("Q4_K", 0.12), ("Q6_K", 0.03), ("Q2_K", 0.45), ("Q3_K", 0.25),
                                      ("Q5_K", 0.06), ("IQ4_NL", 0.12)])
def test_gguf_kquant_reference_roundtrip(name, tol):
    """gguf-py has no K-quant / IQ4_NL quantizer: our llama.cpp-reference blocks must decode (by
    gguf-py) close to the input, and zero/constant super-blocks stay exact (byte identity with
    llama-quantize: test_llama_cpp_check.py)."""
    x = gguf_input(np.random.default_rng(4))[[0, 2, 3, 4, 5]]
    got = ok("gguf-q", name, data=x.tobytes()).out
    deq = gq.dequantize(np.frombuffer(got, np.uint8).reshape(len(x), -1), GT[name]).astype(np.float32)
    rel = np.sqrt(((deq[0] - x[0]) ** 2).sum() / (x[0] ** 2).sum())
    assert rel < tol, f"{name} relative error {rel}"
    assert (deq[1] == 0).all()
    assert np.abs(deq[2] - 2.0).max() < 0.02
    assert np.sqrt(((deq[3] - x[3]) ** 2).mean()) < tol * np.sqrt((x[3] ** 2).mean())


# ---------------------------------------------------------------- repacking


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q8_0"])
def test_gguf_to_mlx_matches_mx_load(name, tmp_path):
    x = gguf_input(np.random.default_rng(8))
    blocks = gq.quantize(x, GT[name])
    path = tmp_path / "m.gguf"
    wr = GGUFWriter(str(path), "llama")
    wr.add_tensor("blk.0.w.weight", blocks, raw_shape=blocks.shape, raw_dtype=GT[name])
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    d = mx.load(str(path))
    r = ok("gguf2affine", name, data=blocks.tobytes())
    bits = 8 if name == "Q8_0" else 4
    assert f"bits={bits} overflow=0" in r.err
    wb, sb = x.size * bits // 8, x.size // 32 * 2
    assert r.out[:wb] == np.array(d["blk.0.w.weight"]).tobytes()
    assert r.out[wb:wb + sb] == np.array(d["blk.0.w.scales"]).tobytes()
    assert r.out[wb + sb:] == np.array(d["blk.0.w.biases"]).tobytes()
    # lossless: the f32 dequantization q*s + b of the repacked tensor equals gguf-py's
    # (q-8)*d exactly; only the sign of zero can differ (d = -0.0 blocks: -0*0 vs -0 + +0)
    f32 = np.frombuffer(ok("affine-dq", bits, 32, "F16", "F32", x.size, data=r.out).out, np.float32)
    ref = gq.dequantize(blocks, GT[name]).astype(np.float32).ravel()
    assert np.array_equal(f32, ref)
    nz = ref != 0
    assert f32[nz].view(np.uint32).tolist() == ref[nz].view(np.uint32).tolist()


@pytest.mark.parametrize("gs", [32, 64, 128])
@pytest.mark.parametrize("dt", ["F16", "BF16", "F32"])
def test_mlx_affine4_to_q4_1(gs, dt):
    w = (np.random.default_rng(gs).standard_normal((8, 256)) * 0.05).astype(NP[dt])
    if dt == "BF16":
        w[7] *= np.float32(1e-7)  # scales below f16's normal range lose bits
    wq, s, b = mx.quantize(mx.array(w), group_size=gs, bits=4)
    blob = np.array(wq).tobytes() + bits_of(to_np(s)).tobytes() + bits_of(to_np(b)).tobytes()
    r = ok("affine2q41", gs, dt, w.size, data=blob)
    inexact = int(r.err.strip().split("=")[1])
    blocks = np.frombuffer(r.out, np.uint8).reshape(8, -1)
    deq = gq.dequantize(blocks, GT.Q4_1).astype(np.float32)
    ref = np.frombuffer(ok("affine-dq", 4, gs, dt, "F32", w.size, data=blob).out, np.float32).reshape(8, -1)
    exact_rows = 8 if dt == "F16" else 7 if dt == "BF16" else 0
    # F16 scales always fit; BF16 ones fit while in f16's normal range; F32 ones rarely do
    assert deq[:exact_rows].view(np.uint32).tolist() == ref[:exact_rows].view(np.uint32).tolist()
    if dt == "F16":
        assert inexact == 0
    elif dt == "BF16":
        assert 0 < inexact <= 256 // gs
    else:
        assert 0 < inexact <= w.size // gs
        assert np.abs(deq - ref).max() < 1e-2


# ---------------------------------------------------------------- stats + bad input


def test_error_stats():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(1000).astype(np.float32)
    b = (a + rng.standard_normal(1000).astype(np.float32) * 0.01).astype(np.float32)
    rmse, mx_abs, rel = map(float, ok("stats", data=a.tobytes() + b.tobytes()).out.split())
    e = b.astype(np.float64) - a
    assert rmse == pytest.approx(np.sqrt((e ** 2).mean()), rel=1e-12)
    assert mx_abs == pytest.approx(np.abs(e).max(), rel=1e-12)
    assert rel == pytest.approx(np.sqrt((e ** 2).sum() / (a.astype(np.float64) ** 2).sum()), rel=1e-12)


BAD = [
    (("affine-q", "F32", 7, 64, "F32", "cpu"), 256, "7 bits"),
    (("affine-q", "F32", 4, 16, "F32", "cpu"), 256, "group size 16"),
    (("affine-q", "F32", 4, 64, "F32", "cpu"), 96, "not a multiple"),
    (("affine-q", "I32", 4, 64, "F32", "cpu"), 256, "input dtype"),
    (("affine-q", "F32", 4, 64, "F64", "cpu"), 256, "scale dtype"),
    (("fp-q", "mxfp4", "F32", "2.0"), 256, "global scale"),
    (("fp-q", "nvfp4", "F32"), 40, "not a multiple"),
    (("gguf-q", "IQ2_XS"), 256, "IQ2_XS"),
    (("gguf-q", "Q4_K"), 64, "not a multiple"),
    (("gguf-dq", "IQ2_XS"), 0, "IQ2_XS"),
    (("affine2q41", 64, "F16", 256), None, "does not match"),
]


@pytest.mark.parametrize("args,n,needle", BAD)
def test_bad_arguments_clean_error(args, n, needle):
    data = np.ones(n, np.float32).tobytes() if n is not None else b"\0" * 7
    r = tool(*args, data=data)
    class _R:  # adapt to conftest.assert_clean_error
        rc, err = r.rc, r.err
    assert_clean_error(_R, needle)


def test_gguf_quantize_rejects_nonfinite():
    x = np.ones(32, np.float32)
    x[3] = np.inf
    r = tool("gguf-q", "Q8_0", data=x.tobytes())
    class _R:
        rc, err = r.rc, r.err
    assert_clean_error(_R, "element 3", "not finite")
