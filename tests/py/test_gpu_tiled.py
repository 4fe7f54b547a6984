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
The second variant, matmul_tiled2.comp (SILICA_GPU_TILE=2: 128 x 64 tiles, other loads, the same sums per
output in the same order), must give the first's logits to the bit for every format both kernels read
(dense f32 / bf16 / f16, MLX affine and fp modes, every GGUF type), packed dots and the f32 fallback, on
shapes off its tiles on both axes (rows 80, 102, 257: 128-row tiles of 1; columns 80 and 102 off the
32-column steps; 75 tokens: 64 + 11).
The third, matmul_tiled3.comp (SILICA_GPU_TILE=3: 128 x 64 tiles in 8 x 8 register blocks, double-buffered
packed codes, for the int8-activation GGUF formats Q8_0 / Q4_0 / Q4_1 / Q4_K / Q6_K; the others fall back to
matmul_tiled.comp), the same: the same cases (its formats and the fallback ones, both builds), and its
formats at other prompt lengths (9: just past the matrix-vector kernel's batch; 64: one whole token tile;
130: three, the last of 2) and shapes (rows 96 and 160 of 96- and 160-column rows: 3 and 5 steps, an odd
number through the two buffers; 257 rows: a last row tile of 1).
"""
import numpy as np
import pytest

from conftest import run_silica
from test_gpu import QUANT_TOL, TOL, lavapipe, logits, mlx_models, odd_models, only_lavapipe, rel_err  # noqa: F401
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


TILES = {"1": "matmul_tiled (64 rows x 64 tokens)", "2": "matmul_tiled2 (128 rows x 64 tokens)",
         "3": "matmul_tiled3 (128 rows x 64 tokens, int8 formats; others matmul_tiled)"}
# test_gpu.py's odd shapes (dense, GGUF F16), its MLX conversions, and this file's GGUF types
TILE_CASES = ([("odd", k) for k in (("qwen2", "f32"), ("qwen2", "bf16"), ("gemma2", "f32"), ("gemma2", "bf16"),
                                    ("qwen2", "F16"), ("qwen2", "Q8_0"))]
              + [("mlx", k) for k in ("4b-g32-f32", "3b-g32-f16", "8b-g32-bf16", "5b-g64-f32", "mxfp4", "mxfp8")]
              + [("q", k) for k in TYPES])


@pytest.mark.parametrize("case", TILE_CASES, ids=lambda c: f"{c[0]}-{'-'.join(c[1]) if c[0] == 'odd' else c[1]}")
def test_tile_variants_same_bits(lavapipe, odd_models, mlx_models, qmodels, case):
    """A 75-token prompt in one batch by matmul_tiled.comp, matmul_tiled2.comp and matmul_tiled3.comp
    (SILICA_GPU_TILE 1, 2, 3; tile 3 falls back to tile 1 but for the int8 formats), packed dots and the f32
    fallback: every logit identical to the bit, and SILICA_PROFILE's prompt line names the variant that ran."""
    kind, key = case
    model = {"odd": odd_models, "mlx": mlx_models, "q": qmodels}[kind][key]
    for switch in ("1", "0"):
        got = {}
        for tile, name in TILES.items():
            _, out, r = logits(model, IDS, "--kv", "f32", "--batch", "100", "--device", "gpu",
                               env={"SILICA_GPU_TILE": tile, "SILICA_GPU_INT_DOT": switch, "SILICA_PROFILE": "1"})
            ran = {line.rsplit(": ", 1)[1] for line in r.err.splitlines() if "prompt matmul tiles:" in line}
            assert ran == {name}, (tile, r.err)
            assert out.shape == (75, 257)
            got[tile] = out
        for tile in ("2", "3"):
            diff = np.abs(got["1"] - got[tile]).max()
            print(f"{case} int dot {switch}: tile {tile} vs tile 1 max |diff| {diff:.3e}")
            assert np.array_equal(got["1"].view(np.uint32), got[tile].view(np.uint32)), (case, tile, switch, diff)


# tile 3's formats: this file's qwen2 (rows 64 .. 512 and 257, 256- and 512-column rows) and test_gpu.py's odd
# one (rows 96 and 160, 96- and 160-column rows: 3 and 5 steps)
TILE3_CASES = [("q", k) for k in INT8_X] + [("odd", ("qwen2", k)) for k in ("Q8_0", "Q4_0", "Q4_1")]


@pytest.mark.parametrize("case", TILE3_CASES, ids=lambda c: f"{c[0]}-{'-'.join(c[1]) if c[0] == 'odd' else c[1]}")
def test_tile3_prompt_lengths_same_bits(lavapipe, odd_models, qmodels, case):
    """matmul_tiled3.comp against matmul_tiled.comp for prompts of 9, 64 and 130 tokens in one batch (token
    tiles of 9; 64; 64 + 64 + 2), packed dots and the byte-extract build: every logit the same bits."""
    kind, key = case
    model = {"odd": odd_models, "q": qmodels}[kind][key]
    for n in (9, 64, 130):
        ids = [(5 * i + 1) % 257 for i in range(n)]
        for switch in ("1", "0"):
            got = {}
            for tile in ("1", "3"):
                _, got[tile], _ = logits(model, ids, "--kv", "f32", "--batch", "200", "--device", "gpu",
                                         env={"SILICA_GPU_TILE": tile, "SILICA_GPU_INT_DOT": switch})
            assert got["1"].shape == (n, 257)
            diff = np.abs(got["1"] - got["3"]).max()
            print(f"{case} {n} tokens, int dot {switch}: tile 3 vs tile 1 max |diff| {diff:.3e}")
            assert np.array_equal(got["1"].view(np.uint32), got["3"].view(np.uint32)), (case, n, switch, diff)
