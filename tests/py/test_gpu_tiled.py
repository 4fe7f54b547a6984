"""The GPU engine's prompt (matrix-matrix) kernel src/gpu/shaders/matmul_tiled.comp with packed int8 dot
products, on Mesa lavapipe against the CPU engine (fixtures and helpers from test_gpu.py, test_gpu_matvec.py).

matmul_tiled.comp is built twice (CMakeLists.txt), as matmul.comp: with SILICA_INT_DOT the GGUF formats with
int8 activations (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) keep their codes packed in shared memory, 4 to a word, and a
32-column step's sums are intdot.glsl's packed dots (OpSDot: VK_KHR_shader_integer_dot_product, which
lavapipe has), each 16-column half times its integer scale; without it (SILICA_GPU_INT_DOT=0) the codes go
into shared memory as f32 and are summed by FMAs.  Both sums are exact integers, so the logits must be
identical to the bit; the formats with f32 activations (Q5_*) take the f32 path in both builds.  Oracle: the
CPU engine (tested against gguf-py and transformers in test_engine*.py) within test_gpu.py's tolerances.
A 75-token prompt in one batch: two token tiles (64 + 11) against 257-row matrices (five row tiles, the
last of one row), 256- and 512-column rows (8 and 16 steps), so the dispatch (token tiles on x, row tiles
on y) covers partial tiles on both axes.  SILICA_PROFILE's prompt line names the dot in use.
"""
import numpy as np
import pytest

from conftest import run_silica
from test_gpu import QUANT_TOL, TOL, lavapipe, logits, only_lavapipe, rel_err  # noqa: F401
from test_gpu_matvec import INT8_X, TYPES, qmodels  # noqa: F401

IDS = [(7 * i + 3) % 257 for i in range(75)]


@pytest.mark.parametrize("qtype", TYPES)
def test_tiled_int_dot_and_fallback_match_cpu(lavapipe, qmodels, qtype):
    """Every position's logits of a 75-token prompt in one batch (the tiled kernel), packed dots and the f32
    fallback: each within the CPU engine's tolerance (int8 activations: QUANT_TOL and 95 % of the
    argmaxes; f32 activations: TOL and every argmax), and the two the same bits."""
    model = qmodels[qtype]
    _, cpu, _ = logits(model, IDS, "--kv", "f32")
    quant = qtype in INT8_X
    got = {}
    for switch in ("1", "0"):
        dev, gpu, _ = logits(model, IDS, "--kv", "f32", "--batch", "100", "--device", "gpu",
                             env={"SILICA_GPU_INT_DOT": switch})
        assert dev == lavapipe["name"] and gpu.shape == cpu.shape == (75, 257)
        per_pos = np.abs(gpu - cpu).max(-1) / np.abs(cpu).max()
        print(f"{qtype} tiled, int dot {switch}: GPU vs CPU {per_pos.max():.2e} (worst position {per_pos.argmax()})")
        assert per_pos.max() <= (QUANT_TOL if quant else TOL), (qtype, switch, per_pos)
        same = (gpu.argmax(-1) == cpu.argmax(-1)).mean()
        assert same >= (0.95 if quant else 1.0), (qtype, switch, same)
        got[switch] = gpu
    assert np.array_equal(got["1"], got["0"]), (qtype, np.abs(got["1"] - got["0"]).max())


def test_tiled_matches_matvec_within_tolerance(lavapipe, qmodels):
    """The packed tiled kernel against the matrix-vector kernel's packed dots (batches of 8) on the
    formats whose int8 activations both quantize the same way: within QUANT_TOL of each other."""
    for qtype in ("Q8_0", "Q4_0", "Q4_K", "Q6_K"):
        _, tiled, _ = logits(qmodels[qtype], IDS[:40], "--kv", "f32", "--batch", "40", "--device", "gpu")
        _, mv, _ = logits(qmodels[qtype], IDS[:40], "--kv", "f32", "--batch", "8", "--device", "gpu")
        assert rel_err(tiled, mv) <= QUANT_TOL, qtype


def test_tiled_int_dot_selected_for_prompts(lavapipe, qmodels):
    """SILICA_PROFILE's prompt phase (a 70-token prompt: the tiled kernel) names the packed dots on a
    device with the feature, the fallback with SILICA_GPU_INT_DOT=0."""
    def dots(env):
        r = run_silica("bench", qmodels["Q4_0"], "-p", "70", "-n", "1", "-r", "1", "--no-bandwidth", "--device", "gpu",
                       check=True, timeout=600, env={"SILICA_PROFILE": "1", **env})
        return {line.rsplit(": ", 1)[1] for line in r.err.splitlines() if "prompt matmul int8 dots:" in line}
    assert lavapipe["int8_dot_product"]
    assert dots({}) == {"packed dot products"}
    assert dots({"SILICA_GPU_INT_DOT": "0"}) == {"byte extracts"}
