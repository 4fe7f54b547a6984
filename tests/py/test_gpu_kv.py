"""The GPU engine's quantized (MLX affine 8 / 4-bit, --kv q8|q4, --kv-bits, --kv-group-size) and rotating
(--max-kv-size) KV caches against the CPU engine with the same flags, on Mesa lavapipe (see test_gpu.py: the
fixtures and helpers come from there)."""
import json
import subprocess

import numpy as np
import pytest

from conftest import SILICA, assert_clean_error, run_silica
from test_gpu import (DEMO, LAVAPIPE, QUANT_TOL, TOL, check_split, ids_of, lavapipe, logits,  # noqa: F401
                      n_layers_of, odd_model, only_lavapipe)


# ---- quantized (MLX affine 8 / 4-bit) and rotating (--max-kv-size) KV caches on the device ----

@pytest.fixture(scope="module")
def kv_models(engine_models, tmp_path_factory):
    """Random models (odd_model) whose KV rows take group sizes 32 and 64: llama at head_dim 64 (4 KV heads:
    per-head groups), qwen2 at head_dim 48 (2 KV heads: groups of 32 straddle the heads, so one workgroup
    quantizes both), gemma2 at head_dim 32 (2 KV heads, groups of 64 span both; sliding window 4 on every
    other layer, softcaps)."""
    d = tmp_path_factory.mktemp("gpu-kv")
    return {"llama": odd_model(engine_models, d / "llama", "llama", 96, 102, 257, 64),
            "qwen2": odd_model(engine_models, d / "qwen2", "qwen2", 192, 102, 257, 48),
            "gemma2": odd_model(engine_models, d / "gemma2", "gemma2", 80, 102, 257, 32)}


KV_IDS = [(7 * i + 3) % 257 for i in range(75)]
# (f32 models: --kv q8 / q4 keep f32 scales and biases, --kv f16 --kv-bits N f16 ones)
KV_QUANT = [("llama", "--kv q8 --kv-group-size 32"), ("llama", "--kv f16 --kv-bits 4 --kv-group-size 64"),
            ("qwen2", "--kv q4 --kv-group-size 32"), ("qwen2", "--kv f16 --kv-bits 8 --kv-group-size 32"),
            ("gemma2", "--kv f16 --kv-bits 8 --kv-group-size 64"), ("gemma2", "--kv q4 --kv-group-size 32"),
            ("gemma2", "--kv q8 --kv-group-size 64 --max-kv-size 20")]
# gemma2: 20 - 4 sinks >= the window (sliding layers keep their ring, full ones rotate); 7 - 4 < 4 (all rotate)
KV_ROTATING = [("llama", "--max-kv-size 20"), ("gemma2", "--max-kv-size 20"), ("gemma2", "--max-kv-size 7"),
               ("qwen2", "--max-kv-size 9 --kv f16")]


def check_kv(model, kv, lavapipe, env=None):
    """The 75-token prompt in one batch (--batch 100; a rotating cache caps it at --max-kv-size), in batches
    of 3 and one token at a time, every position's logits against the CPU engine's with the same KV flags.
    Unquantized: within TOL, same argmax.  Quantized: both engines quantize by the same rule (qkrope.comp,
    src/quant/quant_affine.c), but their keys and values differ by f32 rounding (~1e-6), so a value within
    rounding of a code's half step may take the next code on one engine; one such flip moves these random
    models' logits by up to ~5e-3 from that position on.  Bound: position 0 within TOL, every position within
    QUANT_TOL, and the median position's error under a fifth of the median error the quantization itself
    makes (CPU quantized vs CPU unquantized): a quantizer with another rule (rounding, scale, bias) is off
    on most codes and errs as much as the quantization; argmaxes 95 % where the CPU's top two are clear.
    env: the GPU engine's (test_gpu_attn.py: SILICA_GPU_ATTN_CHUNK)."""
    quant = "--kv-bits" in kv or "q8" in kv or "q4" in kv
    _, cpu, _ = logits(model, KV_IDS, *kv)
    if quant:
        rot = kv[kv.index("--max-kv-size"):][:2] if "--max-kv-size" in kv else []
        _, ref, _ = logits(model, KV_IDS, "--kv", "f32", *rot)
        q_err = np.abs(cpu - ref).max(-1) / np.abs(ref).max()
    top2 = np.sort(cpu, -1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4 * np.abs(cpu).max()
    for batch in ("100", "3", "1"):
        dev, gpu, _ = logits(model, KV_IDS, *kv, "--batch", batch, "--device", "gpu", env=env)
        assert dev == lavapipe["name"]
        per_pos = np.abs(gpu - cpu).max(-1) / np.abs(cpu).max()
        same = gpu.argmax(-1) == cpu.argmax(-1)
        print(f"{model.name} {' '.join(kv)} --batch {batch}: GPU vs CPU max {per_pos.max():.2e} median "
              f"{np.median(per_pos):.2e}" + (f" (quantization itself: median {np.median(q_err):.2e})" if quant else ""))
        if not quant:
            assert per_pos.max() <= TOL and same.all(), (batch, per_pos)
            continue
        assert per_pos[0] <= TOL and per_pos.max() <= QUANT_TOL, (batch, per_pos)
        assert np.median(per_pos) <= 0.2 * np.median(q_err), (batch, np.median(per_pos), np.median(q_err))
        assert clear.mean() >= 0.5 and same[clear].mean() >= 0.95, batch


@pytest.mark.parametrize("name,kv", KV_QUANT)
def test_quantized_kv_matches_cpu(lavapipe, kv_models, name, kv):
    check_kv(kv_models[name], kv.split(), lavapipe)


@pytest.mark.parametrize("name,kv", KV_ROTATING)
def test_rotating_kv_matches_cpu(lavapipe, kv_models, name, kv):
    """The 75 positions pass the rotating cache many times (mlx_lm's RotatingKVCache: 4 sinks and a ring)."""
    check_kv(kv_models[name], kv.split(), lavapipe)


@pytest.mark.parametrize("arch,kv", [("llama", "--kv q8"), ("gemma2", "--kv q4 --max-kv-size 6"),
                                     ("gemma3", "--max-kv-size 6"), ("qwen3", "--kv q8 --max-kv-size 7")])
def test_kv_greedy_ids_identical(lavapipe, engine_models, arch, kv):
    """Greedy generation with quantized and rotating caches (prompt + generation of 16 > --max-kv-size):
    the CPU engine's ids, and the same KV bytes (the device cache is laid out as the CPU's)."""
    ref, _ = ids_of(engine_models, arch)
    args = ("run", engine_models / arch / "f32-st", "--ids", ",".join(map(str, ref["prompt"])), "--max-tokens",
            len(ref["generated"]), "--json", *kv.split())
    cpu = run_silica(*args, check=True).json()
    gpu = run_silica(*args, "--device", "gpu", check=True, timeout=600).json()
    assert gpu["device"] == lavapipe["name"] and cpu["device"] == "cpu"
    assert gpu["ids"] == cpu["ids"] and len(gpu["ids"]) == len(ref["generated"])
    assert gpu["kv_bytes"] == cpu["kv_bytes"] > 0


def test_gpu_layers_quantized_kv(lavapipe, kv_models, engine_models):
    """Partial offload with an 8-bit cache (each engine quantizing its own layers) and with a rotating one:
    every split against the CPU engine; the two engines' KV bytes add up to the CPU engine's."""
    for name, kv, tol in (("llama", ("--kv", "q8"), QUANT_TOL), ("gemma2", ("--kv", "q8", "--max-kv-size", "20"), QUANT_TOL),
                          ("gemma2", ("--max-kv-size", "7"), TOL)):
        m = kv_models[name]
        check_split(m, KV_IDS[:40], n_layers_of(m), tol, lavapipe, argmax=False, kv=kv)
    m = engine_models / "gemma2" / "f32-st"
    args = ("run", m, "--ids", "1,2,3,4,5,6,7", "--max-tokens", "9", "--json", "--kv", "q8", "--max-kv-size", "9")
    cpu = run_silica(*args, check=True).json()
    for n in (1, 3):
        j = run_silica(*args, "--device", "gpu", "--gpu-layers", n, check=True, timeout=600).json()
        assert j["ids"] == cpu["ids"] and j["kv_bytes"] == cpu["kv_bytes"], n


def test_quantized_kv_wide_units(lavapipe, engine_models, tmp_path):
    """32 KV heads of head_dim 34 (random, odd_model): groups of 32 straddle heads at every offset, so one
    workgroup quantizes lcm(34, 32) = 544 elements (16 heads, 17 groups) — against the CPU engine as in
    check_kv; groups of 64 would take lcm(34, 64) = 1088 > 1024 elements: refused in one line (`gpu`,
    exit 2), the CPU with a note (`auto`), while the CPU engine runs them."""
    src = tmp_path / "src"
    (src / "llama" / "f32-st").mkdir(parents=True)
    cfg = json.loads((engine_models / "llama" / "f32-st" / "config.json").read_text())
    cfg.update(num_attention_heads=32, num_key_value_heads=32)
    (src / "llama" / "f32-st" / "config.json").write_text(json.dumps(cfg))
    (src / "llama" / "f32-st" / "model.safetensors").symlink_to(engine_models / "llama" / "f32-st" / "model.safetensors")
    m = odd_model(src, tmp_path / "wide", "llama", 64, 96, 257, 34)
    check_kv(m, ["--kv", "q4", "--kv-group-size", "32"], lavapipe)
    bad = ("logits", m, "--ids", "1,2,3", "--json", "--kv", "q8", "--kv-group-size", "64")
    assert run_silica(*bad, check=True).json()["device"] == "cpu"
    assert_clean_error(run_silica(*bad, "--device", "gpu"), "--device gpu", "least common multiple",
                       "head_dim 34 with groups of 64")
    r = run_silica(*bad, "--device", "auto", env=LAVAPIPE)
    assert r.rc == 0 and r.json()["device"] == "cpu" and "least common multiple" in r.err and "running on the CPU" in r.err


def test_prefix_reuse_after_eviction_on_gpu(lavapipe):
    """`serve` reuses a slot's cache for the next request's common prefix only where the rotating ring still
    holds every key the prefix's continuation needs (sl_session_truncate asks the plan of all layers, the
    device's included): A + 30 tokens, then A + other tokens evicts A's keys past the 4 sinks, so nothing is
    reused and the answer is a fresh run's; without eviction (--max-kv-size 200) A is reused, same answer."""
    import httpx
    a = [(37 * i + 11) % 1000 + 10 for i in range(6)]
    b = [(53 * i + 7) % 1000 + 10 for i in range(30)]
    c = [(29 * i + 5) % 1000 + 10 for i in range(10)]
    for max_kv, cached in (("12", 0), ("200", len(a))):
        want = run_silica("run", DEMO, "--ids", ",".join(map(str, a + c)), "--max-tokens", "4", "--temp", "0", "--json",
                          "--max-kv-size", max_kv, "--kv", "q8", "--device", "gpu", check=True, timeout=600).json()
        p = subprocess.Popen([str(SILICA), "serve", DEMO, "--port", "0", "--json", "--parallel", "1", "--device", "gpu",
                              "--max-kv-size", max_kv, "--kv", "q8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            url = f"http://127.0.0.1:{json.loads(p.stdout.readline())['port']}/v1/completions"
            body = {"model": "demo", "max_tokens": 4, "temperature": 0}
            httpx.post(url, json={**body, "prompt": a + b}, timeout=600).raise_for_status()
            r = httpx.post(url, json={**body, "prompt": a + c}, timeout=600).json()
        finally:
            p.terminate()
            p.communicate(timeout=60)
        assert r["usage"]["prompt_tokens_details"]["cached_tokens"] == cached, (max_kv, r["usage"])
        assert r["choices"][0]["text"] == want["text"], max_kv
