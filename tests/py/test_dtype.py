"""Dtype conversions against numpy and ml_dtypes.

tests/tools/dtype_conv (built next to the silica binary, in tools/) converts
raw bytes with sl_convert; it runs once on the scalar path (SILICA_SIMD=scalar)
and once on the best SIMD kernels this CPU has (F16C/AVX2, AVX-512, NEON).
Oracles: numpy's astype(float16/float32/float64) and ml_dtypes' bfloat16 and
float8 types.  Non-NaN results must match bit for bit; NaNs must stay NaN with
their sign (peers differ on NaN payload quieting, silica documents its own).
"""
import os
import subprocess

import ml_dtypes
import numpy as np
import pytest

from conftest import SILICA

TOOL = SILICA.parent / "tools" / "dtype_conv"
PATHS = ["scalar", "simd"]


def conv(path, src, dst, data):
    assert TOOL.exists(), f"dtype_conv not built at {TOOL}"
    env = dict(os.environ)
    env.pop("SILICA_SIMD", None)
    if path == "scalar":
        env["SILICA_SIMD"] = "scalar"
    p = subprocess.run([str(TOOL), src, dst], input=data.tobytes(), capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def kernels(path):
    env = dict(os.environ, SILICA_SIMD="scalar") if path == "scalar" else {
        k: v for k, v in os.environ.items() if k != "SILICA_SIMD"}
    return subprocess.run([str(TOOL), "--kernels"], capture_output=True, text=True, env=env,
                          check=True).stdout.strip()


def assert_same_bits(got_bits, want, uint):
    """got_bits: uint array from silica; want: peer's float array (same width)."""
    want_bits = want.view(uint)
    got = got_bits.view(want.dtype)
    gnan = np.isnan(got.astype(np.float32))
    wnan = np.isnan(want.astype(np.float32))
    assert np.array_equal(gnan, wnan), "NaN positions differ"
    bad = np.flatnonzero((got_bits != want_bits) & ~wnan)
    assert bad.size == 0, (f"{bad.size} mismatches, first at {bad[0]}: got 0x{int(got_bits[bad[0]]):x} "
                           f"want 0x{int(want_bits[bad[0]]):x}")
    sign = np.uint64(1) << np.uint64(8 * want.itemsize - 1)
    gs = (got_bits[wnan].astype(np.uint64) & sign) != 0
    ws = (want_bits[wnan].astype(np.uint64) & sign) != 0
    assert np.array_equal(gs, ws), "NaN signs differ"


def f32_inputs():
    rng = np.random.default_rng(7)
    edge = np.array([0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x33000000, 0x33000001, 0x33800000,
                     0x387fe000, 0x387ff000, 0x38800000, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000,
                     0x477fefff, 0x477ff000, 0x477ff001, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000,
                     0xffc00001, 0x7f800001, 0x7fbfffff], dtype=np.uint32)
    # every 16-bit prefix with low halves on and around both rounding points
    hi = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    lows = np.array([0x0000, 0x0fff, 0x1000, 0x1001, 0x7fff, 0x8000, 0x8001, 0xffff], dtype=np.uint32)
    structured = (hi[:, None] | lows[None, :]).ravel()
    rand = rng.integers(0, 1 << 32, size=1 << 20, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([edge, structured, rand]).view(np.float32)


F32 = f32_inputs()


def test_simd_path_is_used_where_available(silica):
    doc = silica("doctor", "--json", check=True).json()
    feats = set(doc["cpu"]["features"])
    name = kernels("simd")
    if {"avx2", "f16c"} <= feats:
        assert name in ("avx2", "avx512"), name
    elif "neon" in feats:
        assert name == "neon", name
    assert kernels("scalar") == "scalar"


@pytest.mark.parametrize("path", PATHS)
def test_f16_to_f32_all_patterns(path):
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = np.frombuffer(conv(path, "F16", "F32", h), dtype=np.uint32)
    assert_same_bits(got, h.view(np.float16).astype(np.float32), np.uint32)


@pytest.mark.parametrize("path", PATHS)
def test_f32_to_f16_matches_numpy(path):
    got = np.frombuffer(conv(path, "F32", "F16", F32), dtype=np.uint16)
    with np.errstate(all="ignore"):
        want = F32.astype(np.float16)
    assert_same_bits(got, want, np.uint16)


@pytest.mark.parametrize("path", PATHS)
def test_f32_to_bf16_matches_ml_dtypes(path):
    got = np.frombuffer(conv(path, "F32", "BF16", F32), dtype=np.uint16)
    with np.errstate(all="ignore"):
        want = F32.astype(ml_dtypes.bfloat16)
    assert_same_bits(got, want, np.uint16)


def test_bf16_to_f32_all_patterns():
    b = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = np.frombuffer(conv("simd", "BF16", "F32", b), dtype=np.uint32)
    assert_same_bits(got, b.view(ml_dtypes.bfloat16).astype(np.float32), np.uint32)


def test_f64_to_f16_single_rounding():
    rng = np.random.default_rng(11)
    d = np.concatenate([
        np.array([1.0 + 2.0**-11 + 2.0**-40, 1.0 + 2.0**-11, 65519.999, 65520.0, 2.0**-25, 2.0**-25 + 2.0**-60,
                  -0.0, np.inf, -np.inf, 6.1e-5], dtype=np.float64),
        rng.standard_normal(1 << 16) * np.exp2(rng.integers(-30, 20, 1 << 16)),
    ])
    got = np.frombuffer(conv("simd", "F64", "F16", d), dtype=np.uint16)
    with np.errstate(all="ignore"):
        want = d.astype(np.float16)
    assert_same_bits(got, want, np.uint16)


@pytest.mark.parametrize("src,peer", [("F8_E4M3", ml_dtypes.float8_e4m3fn), ("F8_E5M2", ml_dtypes.float8_e5m2)])
def test_f8_to_f32_all_patterns(src, peer):
    b = np.arange(256, dtype=np.uint16).astype(np.uint8)
    got = np.frombuffer(conv("simd", src, "F32", b), dtype=np.uint32)
    assert_same_bits(got, b.view(peer).astype(np.float32), np.uint32)
