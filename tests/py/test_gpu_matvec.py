"""The GPU engine's matrix-vector kernel (src/gpu/shaders/matmul.comp): packed int8 dot products
and several rows a team.

matmul.comp is built twice (CMakeLists.txt): its GGUF int8 block dots as byte extracts and
multiplies, and as SPIR-V's packed 4x8-bit dot product (OpSDot, VK_KHR_shader_integer_dot_product),
which the engine takes where the device has the feature (`silica doctor` lists it) unless
SILICA_GPU_INT_DOT=0.  Mesa's lavapipe has the extension, so both shaders run here.  A team of lanes
takes 1 row by default (several: side by side where they share x's loads: GGUF Q8_0 / Q4_0,
16-byte dense rows, MLX 4 / 8 bits; else one after the other); SILICA_GPU_ROWS=1..4 fixes the count,
SILICA_GPU_STEPS=1..4 a lane's steps along a row loaded before they are summed.  Oracles: the CPU engine (itself tested against
gguf-py and transformers in test_engine*.py) for every GGUF type the GPU engine reads and for
f32 / bf16 / F16 rows, one token a batch (the matrix-vector kernel) and in batches of 5; and the
variants against each other: integer block sums are exact and a lane's part of a row does not
depend on the rows beside it, so the logits must be identical to the bit.  SILICA_PROFILE's line
naming the dot in use proves the packed one was selected (a test that fails if the device's
feature goes unused).
"""
import json

import numpy as np
import pytest

from conftest import run_silica
from test_gpu import QUANT_TOL, TOL, lavapipe, logits, mlx_models, odd_model, only_lavapipe, rel_err  # noqa: F401

TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
INT8_X = ("Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K")   # int8 activations on both engines (test_gpu.py)


@pytest.fixture(scope="module")
def qmodels(engine_models, tmp_path_factory):
    """A random qwen2 (q/k/v biases, tied head) at H 256, I 512, V 257, head dim 64, every tensor
    in one GGUF type (--pure): rows of whole 256-blocks for the K-quants."""
    d = tmp_path_factory.mktemp("gpu-intdot")
    src = odd_model(engine_models, d / "qwen2", "qwen2", 256, 512, 257, 64)
    out = {}
    for t in TYPES:
        out[t] = d / f"qwen2-{t}.gguf"
        run_silica("convert", src, out[t], "--to", "gguf", "--q-type", t, "--pure", check=True)
    return out


def test_doctor_reports_int_dot(lavapipe):
    assert lavapipe["int8_dot_product"] is True, lavapipe   # Mesa lavapipe has VK_KHR_shader_integer_dot_product
    assert "int8 dot products yes" in run_silica("doctor", check=True).out


@pytest.mark.parametrize("qtype", TYPES)
def test_int_dot_and_fallback_match_cpu(lavapipe, qmodels, qtype):
    ids = [(7 * i + 3) % 257 for i in range(11)]
    model = qmodels[qtype]
    _, cpu, _ = logits(model, ids, "--kv", "f32")
    tol = QUANT_TOL if qtype in INT8_X else TOL
    for batch in ("1", "5"):
        got = {}
        for switch in ("1", "0"):
            _, gpu, _ = logits(model, ids, "--kv", "f32", "--batch", batch, "--device", "gpu",
                               env={"SILICA_GPU_INT_DOT": switch})
            err = rel_err(gpu, cpu)
            print(f"{qtype} batch {batch} int dot {switch}: GPU vs CPU {err:.2e}")
            assert err <= tol and (gpu.argmax(-1) == cpu.argmax(-1)).all(), (qtype, batch, switch, err)
            got[switch] = gpu
        assert np.array_equal(got["1"], got["0"]), (qtype, batch)   # exact integer sums: the same bits


@pytest.mark.parametrize("env", [{"LP_NATIVE_VECTOR_WIDTH": "128"}, {"SILICA_GPU_ROW_THREADS": "32"}],
                         ids=["4-lane-subgroups", "wide-teams"])
def test_int_dot_narrow_and_wide_teams(lavapipe, qmodels, env):
    """The packed dots with 4-lane subgroups and with teams of several subgroups (shared-memory sums)."""
    ids = [(5 * i + 1) % 257 for i in range(6)]
    for qtype in ("Q4_0", "Q8_0", "Q4_K", "Q6_K"):
        _, cpu, _ = logits(qmodels[qtype], ids, "--kv", "f32")
        _, gpu, _ = logits(qmodels[qtype], ids, "--kv", "f32", "--batch", "3", "--device", "gpu", env=env)
        assert rel_err(gpu, cpu) <= QUANT_TOL and (gpu.argmax(-1) == cpu.argmax(-1)).all(), (qtype, env)


def test_int_dot_selected_when_the_device_has_it(lavapipe, qmodels):
    """SILICA_PROFILE names the matmul's int8 dot: the packed one on a device with the feature, the
    byte extracts with SILICA_GPU_INT_DOT=0."""
    def dots(env):
        r = run_silica("bench", qmodels["Q4_0"], "-p", "4", "-n", "2", "-r", "1", "--no-bandwidth", "--device", "gpu",
                       check=True, timeout=600, env={"SILICA_PROFILE": "1", **env})
        return {line.rsplit(": ", 1)[1] for line in r.err.splitlines() if "matmul int8 dots:" in line}
    assert lavapipe["int8_dot_product"]
    assert dots({}) == {"packed dot products"}
    assert dots({"SILICA_GPU_INT_DOT": "0"}) == {"byte extracts"}
    j = json.loads(run_silica("doctor", "--json", check=True, env={"SILICA_GPU_INT_DOT": "0"}).out)
    assert [d["int8_dot_product"] for d in j["gpu"]["devices"] if d["type"] == "cpu"] == [True]   # the device's, not the switch's


@pytest.fixture(scope="module")
def dense_models(engine_models, tmp_path_factory):
    """Random qwen2 at H 256, I 512, V 257 in f32 and bf16 safetensors and GGUF F16: 16-byte rows
    (the dense path that reads 16 bytes a step), 257 rows (a team's last rows past the matrix)."""
    d = tmp_path_factory.mktemp("gpu-dense")
    out = {"f32": odd_model(engine_models, d / "f32", "qwen2", 256, 512, 257, 64),
           "bf16": odd_model(engine_models, d / "bf16", "qwen2", 256, 512, 257, 64, bf16=True)}
    out["F16"] = d / "qwen2-F16.gguf"
    run_silica("convert", out["f32"], out["F16"], "--to", "gguf", "--q-type", "F16", check=True)
    return out


@pytest.mark.parametrize("kind", ["Q4_0", "Q8_0", "Q4_K", "f32", "bf16", "F16", "4b-g32-f32", "8b-g32-bf16",
                                  "3b-g32-f16", "mxfp4", "mxfp8"])
def test_team_rows_match_cpu(lavapipe, qmodels, dense_models, mlx_models, kind):
    """1 (the default), 2, 3 and 4 rows a team (GGUF, dense rows, MLX affine 4 / 8 / 3 bits, mxfp4 / mxfp8),
    each with another count of a lane's steps in flight (SILICA_GPU_STEPS 1 .. 4: loads ahead of the
    sums; a step past a row's end is read but not summed), with the default teams and with teams of 32 lanes
    (several subgroups summing in shared memory): the CPU engine's logits, and the same bits for every row count (a
    lane's sums do not depend on its team's other rows)."""
    model = qmodels.get(kind) or dense_models.get(kind) or mlx_models[kind]
    ids = [(3 * i + 2) % 257 for i in range(7)]
    _, cpu, _ = logits(model, ids, "--kv", "f32")
    tol = QUANT_TOL if kind in INT8_X else TOL
    for teams in ({}, {"SILICA_GPU_ROW_THREADS": "32"}):
        got = []
        for nr, steps in (("1", "1"), ("2", "2"), ("3", "4"), ("4", "3")):
            _, gpu, _ = logits(model, ids, "--kv", "f32", "--batch", "3", "--device", "gpu",
                               env={"SILICA_GPU_ROWS": nr, "SILICA_GPU_STEPS": steps, **teams})
            err = rel_err(gpu, cpu)
            print(f"{kind} rows a team {nr}, steps {steps} {teams}: GPU vs CPU {err:.2e}")
            assert err <= tol and (gpu.argmax(-1) == cpu.argmax(-1)).all(), (kind, nr, teams, err)
            got.append(gpu)
        assert all(np.array_equal(g, got[0]) for g in got[1:]), (kind, teams)
