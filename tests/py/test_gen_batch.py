"""Batched decode across sequences (sl_session_eval_multi, sl_gen_step) is exact.

tests/tools/gen_batch_tool evaluates N prompts of different lengths alone and then
together — one token of every running sequence per forward pass, the batch
shrinking as sequences stop — and compares every step's logits bit for bit
(memcmp), then checks that the generation API's sampled ids and texts are the same
stepped together as alone.  Models: the demo (MLX 4-bit, real tokenizer), the
engine fixtures made by real transformers (f32, bf16; sliding windows and
softcapping in gemma2, local RoPE in gemma3, qk-norm in qwen3, dynamic NTK,
longrope), and GGUF Q4_0 / Q8_0 made from one of them by silica's llama.cpp
quantizer; 10 sequences reach the shared-activation GEMM path (8+ rows).  Thread
counts 1 and 3 and every kernel set of this CPU: the logits' hash must not change.
"""
import json
import subprocess

import pytest

from conftest import ROOT, SILICA, run_silica
from kernel_sets import kernel_sets, simd_env

TOOL = SILICA.parent / "tools" / "gen_batch_tool"
DEMO = ROOT / "models" / "demo"
PROMPTS = ["1,2,3", "4,5", "6,7,8,9,10", "11", "12,13", "14,15,16", "17,18", "19,20,21,22", "23", "24,25,26,27,28,29"]


def batch(model, threads, kv="default", steps=10, env=None, prompts=PROMPTS):
    assert TOOL.exists(), f"gen_batch_tool not built at {TOOL}"
    p = subprocess.run([str(TOOL), str(model), str(threads), str(steps), kv, *prompts], capture_output=True, text=True,
                       timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def check(model, kv="default", env=None, prompts=PROMPTS, steps=10):
    hashes = set()
    for t in (1, 3):
        r = batch(model, t, kv, steps, env, prompts)
        assert r["logits_equal"] and r["api_equal"], (model, kv, t, r)
        assert r["rows_max"] == len(prompts) and r["compared"] > 0 and r["generated"] > 0
        hashes.add(r["hash"])
    assert len(hashes) == 1, (model, hashes)   # thread count changes no bit


@pytest.mark.parametrize("simd", kernel_sets())
def test_demo_batched_equals_alone(simd):
    import os
    check(DEMO, env={**os.environ, **simd_env(simd)})


@pytest.mark.parametrize("kv", ["f16", "f32", "q8"])
def test_demo_kv_types_batched_equal_alone(kv):
    check(DEMO, kv)


@pytest.mark.parametrize("model", ["llama/f32-st", "llama/bf16-st", "gemma2/f32-st", "gemma3/bf16-st", "qwen3/f32-st",
                                   "llama-dynamic/f32-st", "phi3-long/f32-st", "mistral/f32-st"])
def test_engine_models_batched_equal_alone(engine_models, model):
    check(engine_models / model)


@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0"])
def test_gguf_quantized_batched_equal_alone(engine_models, tmp_path, qtype):
    import os
    f = tmp_path / "l.gguf"
    run_silica("convert", engine_models / "llama" / "f32-st", f, "--to", "gguf", check=True)
    q = tmp_path / f"l-{qtype}.gguf"
    run_silica("quantize", f, q, "--q-type", qtype, check=True)
    for simd in kernel_sets():
        check(q, env={**os.environ, **simd_env(simd)})


@pytest.mark.parametrize("kv", ["q4", "rot"])
def test_long_and_short_sequences_mixed(kv):
    """Long prompts (past a rotating cache's 24 positions: its ring wraps) next to one-token ones."""
    long = ",".join(str(5 + i % 200) for i in range(180))
    r = batch(DEMO, 2, kv, 20, prompts=[long, "1", "2,3", ",".join(long.split(",")[:60])])
    assert r["logits_equal"] and r["api_equal"], r
