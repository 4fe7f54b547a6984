"""The GPU engine's fused quantization (src/gpu/vk_session.c's fused_qk): the kernels that write a GGUF
matmul's input (the norms, rmsnorm.comp; the GLU, glu.comp; the attention, attn_split / attn_merge.comp)
also write it quantized to int8 (xq) where the matmul reads int8 activations, instead of a quantx.comp
dispatch after them: a d per 32 (Q8_0 / Q4_0 / Q4_1) by all three, a d per 256 (Q4_K / Q6_K: llama.cpp's
q8_K) by the norms and the GLU (a 256-value group spans several attention heads: quantx.comp there).
RoPE and the KV-cache store were already one dispatch (qkrope.comp).

Oracle: the same engine with SILICA_GPU_FUSE=0 (quantx.comp quantizes every input, itself tested against
the CPU engine in test_gpu.py / test_gpu_matvec.py): the same f32 values quantized by the same rule
(max() is exact in any order), so the logits must be identical to the bit, one token a batch (the kept
recording of generation) and in a batch of 12 (the tiled prompt kernel), for each of the 8 families the
GPU engine runs (llama, mistral, qwen2 with q/k/v biases, qwen3 and gemma3 with q/k norms, gemma, gemma2
and gemma3 with post-norms and GELU, phi3 with fused qkv / gate_up and partial longrope), as
llama-quantize's Q4_K_M mix (Q4_K layers, Q6_K attn_v / ffn_down / head) and Q8_0.  SILICA_PROFILE's
per-token counts show the quantx.comp and rmsnorm.comp dispatches that went away (a test that fails if
the fusion is off).  The norm after a residual's matmul (wo, down) runs in that matmul's last workgroup in
generation's batches (matmul.comp's fused_norm; norm.glsl: the same sums in the same order as
rmsnorm.comp), so the same-bits checks cover it too.
"""
import json

import numpy as np
import pytest

from conftest import run_silica
from test_gpu import gpu_profile, lavapipe, logits, odd_model, only_lavapipe, write_safetensors  # noqa: F401

FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"]
H, I, V, HD = 256, 512, 257, 64   # whole 256-blocks (K-quants); head_dim 64: the attention writes a d per 32


@pytest.fixture(scope="module")
def fuse_models(engine_models, tmp_path_factory):
    """Random copies of the engine fixtures at H 256, I 512, V 257, head dim 64 (odd_model; q/k norms of 64,
    phi3's fused qkv / gate_up at their shapes and its longrope factors stretched to its 16 rotary pairs),
    as GGUF Q4_K_M and Q8_0 (silica convert)."""
    from safetensors.numpy import load_file
    d = tmp_path_factory.mktemp("gpu-fuse")
    out = {}
    for a in FAMILIES:
        src = odd_model(engine_models, d / a, a, H, I, V, HD)
        w = load_file(src / "model.safetensors")
        cfg = json.loads((src / "config.json").read_text())
        nh, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        rng = np.random.default_rng(1)
        for k in w:   # what odd_model leaves at the norms' shape
            if k.endswith(("q_norm.weight", "k_norm.weight")):
                w[k] = w[k][:HD].copy()
            elif k.endswith(("qkv_proj.weight", "gate_up_proj.weight")):   # phi3's fused layout
                rows = (nh + 2 * kv) * HD if "qkv" in k else 2 * I
                w[k] = (rng.standard_normal((rows, H)) / np.sqrt(H)).astype(np.float32)
        write_safetensors(src / "model.safetensors", w, False)
        rp = cfg.get("rope_parameters") or {}
        for k in ("long_factor", "short_factor"):
            if k in rp:
                rp[k] = [x for x in rp[k] for _ in range(int(HD * cfg.get("partial_rotary_factor", 1)) // 2 // len(rp[k]))]
        (src / "config.json").write_text(json.dumps(cfg))
        for t in ("Q4_K_M", "Q8_0"):
            out[a, t] = d / f"{a}-{t}.gguf"
            run_silica("convert", src, out[a, t], "--to", "gguf", "--q-type", t, check=True)
    return out


def gpu_logits(model, batch, fuse):
    ids = [(7 * i + 3) % V for i in range(12)]
    _, got, _ = logits(model, ids, "--kv", "f32", "--batch", batch, "--device", "gpu",
                       env={"SILICA_GPU_FUSE": fuse})
    return got


@pytest.mark.parametrize("qtype", ["Q4_K_M", "Q8_0"])
@pytest.mark.parametrize("arch", FAMILIES)
def test_fused_quantization_same_bits(lavapipe, fuse_models, arch, qtype):
    """Fused and unfused: the same logits to the bit (so the same greedy ids), one token a batch."""
    model = fuse_models[arch, qtype]
    fused, plain = gpu_logits(model, "1", "1"), gpu_logits(model, "1", "0")
    assert fused.shape == (12, V) and np.isfinite(fused).all()
    assert np.array_equal(fused, plain), (arch, qtype, float(np.abs(fused - plain).max()))


@pytest.mark.parametrize("arch,batch", [("llama", "1"), ("gemma", "1"), ("llama", "5")])
def test_fused_norm_dense_same_bits(lavapipe, engine_models, arch, batch):
    """Dense f32 weights (no int8 input: the fused norm writes f32 alone; gemma's 1 + w), one token a batch
    and 5 (a batch of the matrix-vector kernel): fused and unfused, the same bits."""
    model = engine_models / arch / "f32-st"
    assert np.array_equal(gpu_logits(model, batch, "1"), gpu_logits(model, batch, "0")), arch


@pytest.mark.parametrize("arch", ["gemma2", "phi3"])
def test_fused_quantization_prompt_batch(lavapipe, fuse_models, arch):
    """The same in one batch of 12 tokens (the tiled kernel; the GLU a workgroup per 256-group and token)."""
    model = fuse_models[arch, "Q4_K_M"]
    assert np.array_equal(gpu_logits(model, "12", "1"), gpu_logits(model, "12", "0")), arch


@pytest.mark.parametrize("qtype", ["Q4_K_M", "Q8_0"])
def test_fusion_drops_dispatches(lavapipe, engine_models, fuse_models, qtype):
    """Per generated token of the llama copy (2 layers, untied Q6_K head in the mix): unfused, quantx.comp
    runs before q/k/v, wo, gate/up, down and the head (4 a layer + 1); fused, only before wo with a d per
    256 (Q4_K_M: 1 a layer), never with a d per 32 (Q8_0).  Unfused, rmsnorm.comp runs twice a layer and
    before the head; fused, the norms after wo and after down (but the last layer's) run in those matmuls'
    last workgroup, so only the first layer's and the head's remain — fewer dispatches and barriers by as
    many."""
    n_layers = json.loads((engine_models / "llama" / "f32-st" / "config.json").read_text())["num_hidden_layers"]

    def counts(fuse):
        r = run_silica("bench", fuse_models["llama", qtype], "-p", "4", "-n", "3", "-r", "1", "--no-bandwidth",
                       "--device", "gpu", check=True, timeout=600, env={"SILICA_PROFILE": "1", "SILICA_GPU_FUSE": fuse})
        tot, tags = gpu_profile(r.err)["generation"]
        return tot, tags.get("quantx", (0.0, 0.0))[1], tags["norm"][1]

    (fused, qf, nf), (plain, qp, np_) = counts("1"), counts("0")
    assert qp == 4 * n_layers + 1, qp
    assert qf == (n_layers if qtype == "Q4_K_M" else 0), qf
    assert (np_, nf) == (2 * n_layers + 1, 2), (np_, nf)
    assert plain["dispatches"] - fused["dispatches"] == qp - qf + np_ - nf, (plain, fused)
    assert plain["barriers"] - fused["barriers"] == qp - qf + np_ - nf, (plain, fused)
    print(f"{qtype}: {plain['dispatches']:.0f} -> {fused['dispatches']:.0f} dispatches a token")
