"""The GPU engine's attention for generation and its reused command buffer, on Mesa lavapipe against the CPU
engine (fixtures and helpers from test_gpu.py and test_gpu_kv.py).

One token at a time (`--batch 1`, as generation runs) the attention is split over chunks of keys
(attn_split.comp: a workgroup per chunk and run of up to 8 query heads of one GQA group, sharing each K/V
load; f16 caches with head_dim <= 128 stage each 64-key tile's K rows in shared memory, loaded by all threads
in 16-byte words, and read V 16 bytes a thread, slices of keys added in order; other caches read element by
element; softmax by subgroup reductions; attn_merge.comp: the chunks' partial softmaxes merged by
log-sum-exp, 8 chunks' sums in flight at a time).  SILICA_GPU_ATTN_CHUNK=8 makes
the 75-position prompts cross up to 10 chunks a token, with GQA, sliding windows, softcaps, 8/4-bit and
rotating caches (sinks); wide GQA groups take several runs of heads; by default a token's keys up to 512 are one chunk
(direct, one head a workgroup), past them 64-key chunks with a GQA group's heads a workgroup
(SILICA_GPU_ATTN_DIRECT=N moves the threshold: a 200-token context crosses it at 64).  A generated token's
command buffer is recorded once and submitted again (the position in a device buffer), recorded anew only
where a layer's attention shape changes (its chunk count grows): SILICA_PROFILE counts the recordings,
and the logits are bit-identical to recording every token (SILICA_GPU_REUSE=0) and within TOL of the CPU's.
"""
import json
import re

import numpy as np
import pytest

from conftest import run_silica
from test_gpu import QUANT_TOL, TOL, gpu_profile, lavapipe, logits, odd_model, only_lavapipe  # noqa: F401
from test_gpu_kv import KV_IDS, check_kv, kv_models  # noqa: F401

CHUNK8 = {"SILICA_GPU_ATTN_CHUNK": "8"}
DIRECT16 = {"SILICA_GPU_ATTN_DIRECT": "16"}
CHUNKS = re.compile(r"silica: profile: gpu .+?, split attention: (?:one chunk up to \d+ keys, past them )?"
                    r"chunks of (\d+) keys, at most (\d+) a token")


def chunking(stderr):
    m = CHUNKS.search(stderr)
    assert m, stderr
    return int(m[1]), int(m[2])


@pytest.mark.parametrize("name,kv", [("llama", "--kv f32"), ("qwen2", "--kv f16"), ("gemma2", "--kv f32"),
                                     ("llama", "--kv q8 --kv-group-size 32"), ("qwen2", "--kv q4 --kv-group-size 32"),
                                     ("gemma2", "--kv f16 --kv-bits 4 --kv-group-size 64"),
                                     ("gemma2", "--kv q8 --kv-group-size 64 --max-kv-size 20"),
                                     ("llama", "--max-kv-size 20")])
def test_split_attention_over_many_chunks(lavapipe, kv_models, name, kv):
    """Chunks of 8 keys: every position's logits against the CPU engine's (check_kv: one batch, batches of 3,
    and one token at a time, the split path), GQA (qwen2, gemma2: 2 query heads a KV head), gemma2's window
    of 4 on every other layer and its softcaps, 8/4-bit caches, a rotating cache of 4 sinks and a ring."""
    args = kv.split() + ["--ctx", "128"]
    check_kv(kv_models[name], args, lavapipe, env=CHUNK8)
    _, _, r = logits(kv_models[name], KV_IDS[:3], *args, "--device", "gpu", env={**CHUNK8, "SILICA_PROFILE": "1"})
    assert chunking(r.err)[0] == 8


@pytest.mark.parametrize("name,kv", [("llama", "--kv f32"), ("qwen2", "--kv f16"), ("gemma2", "--kv f32"),
                                     ("gemma2", "--kv f16 --kv-bits 4 --kv-group-size 64"),
                                     ("llama", "--max-kv-size 20")])
def test_split_attention_default_chunks(lavapipe, kv_models, name, kv):
    """The same checks with the default shapes (up to 512 keys one chunk a token, one head a workgroup, the
    direct output without a merge), then past a threshold of 16 keys (SILICA_GPU_ATTN_DIRECT=16: 64-key chunks
    merged, a GQA group's heads a workgroup, as past 512 keys by default)."""
    check_kv(kv_models[name], kv.split() + ["--ctx", "128"], lavapipe)
    check_kv(kv_models[name], kv.split() + ["--ctx", "128"], lavapipe, env=DIRECT16)
    _, _, r = logits(kv_models[name], KV_IDS, *kv.split(), "--ctx", "128", "--batch", "1", "--device", "gpu",
                     env={**DIRECT16, "SILICA_PROFILE": "1"})   # past 64 keys: two chunks
    tags = gpu_profile(r.err)["generation"][1]
    ring = "--max-kv-size" in kv   # a rotating cache of 20 keys: one 64-key chunk, no merge
    assert chunking(r.err) == (64, 1 if ring else 2) and ("attn_merge" not in tags) == ring, r.err[-600:]


@pytest.mark.parametrize("heads,kv_heads,head_dim", [(18, 1, 16), (12, 1, 320), (6, 3, 16), (8, 2, 24), (4, 2, 128)])
def test_split_attention_gqa_groups(lavapipe, engine_models, tmp_path, heads, kv_heads, head_dim):
    """GQA groups wider than a workgroup's run of heads (at most 8, and at most 2048 / head_dim: 18 heads on one
    KV head are runs of 8, 8 and 2; 12 heads of 320 runs of 6 and 6) and narrow ones (2 heads on each of 3 KV
    heads), random llama copies (odd_model), at every position one token at a time, chunks of 8 keys, f32 and
    f16 caches.  f16 takes the staged path for head_dim 16 (2 words a row, 32 slices of keys), 24 (3 words: 21
    slices, a thread left over, 4 keys a slice) and 128 (16 words: two waves of 8 V words); 320 the generic
    path (160 value pairs, three a thread)."""
    src = tmp_path / "src"
    (src / "llama" / "f32-st").mkdir(parents=True)
    cfg = json.loads((engine_models / "llama" / "f32-st" / "config.json").read_text())
    cfg.update(num_attention_heads=heads, num_key_value_heads=kv_heads)
    (src / "llama" / "f32-st" / "config.json").write_text(json.dumps(cfg))
    (src / "llama" / "f32-st" / "model.safetensors").symlink_to(engine_models / "llama" / "f32-st" / "model.safetensors")
    m = odd_model(src, tmp_path / "gqa", "llama", 64, 96, 257, head_dim)
    ids = KV_IDS[:40]
    got = {}
    for kv, heads in (("f32", "8"), ("f32", "1"), ("f16", "8"), ("f16", "1")):
        _, cpu, _ = logits(m, ids, "--kv", kv, "--ctx", "64")
        env = {**CHUNK8, "SILICA_GPU_ATTN_HEADS": heads}
        _, gpu, _ = logits(m, ids, "--kv", kv, "--ctx", "64", "--batch", "1", "--device", "gpu", env=env)
        err = np.abs(gpu - cpu).max() / np.abs(cpu).max()
        assert err <= TOL and (gpu.argmax(-1) == cpu.argmax(-1)).all(), (kv, env, err)
        got.setdefault(kv, []).append(gpu)
    for kv, (eight, one) in got.items():   # a head's sums do not depend on the heads beside it
        assert np.array_equal(eight, one), kv


def reuse_run(model, ids, kv, env):
    """Logits one token at a time on the GPU with SILICA_PROFILE: (logits, generation totals, chunking)."""
    _, gpu, r = logits(model, ids, *kv, "--batch", "1", "--device", "gpu", env={**env, "SILICA_PROFILE": "1"})
    return gpu, gpu_profile(r.err)["generation"][0], chunking(r.err)


@pytest.mark.parametrize("name,n,kv,env,recordings", [
    ("llama", 200, ("--kv", "f32", "--ctx", "256"), {"SILICA_GPU_ATTN_DIRECT": "64"}, 4),   # 64-key chunks past
    # 64 keys: recorded at 0, 64 (chunks and GQA groups begin), 128, 192
    ("llama", 100, ("--kv", "f32", "--ctx", "256"), {}, 1),   # up to 512 keys: one chunk a token
    ("gemma2", 75, ("--kv", "q8", "--max-kv-size", "20", "--ctx", "128"), CHUNK8, 3),   # 4 sinks + a ring of 16
    ("qwen2", 75, ("--kv", "f16", "--ctx", "128"), CHUNK8, 10),   # a chunk more every 8 positions
])
def test_reused_command_buffer(lavapipe, kv_models, name, n, kv, env, recordings):
    """A token's recording serves the following tokens until a layer's chunk count grows (the full layers' keys
    cross a chunk; gemma2's sliding layers stay at one chunk, its rotating full layers stop growing at 20 keys):
    the recordings SILICA_PROFILE counts are exactly those, every token is a submission; the logits are the
    bits of recording every token (SILICA_GPU_REUSE=0: a recording each) and the CPU engine's within TOL (a
    position or a RoPE row baked into the recording would put every resubmitted token at its first position)."""
    ids = [(7 * i + 3) % 257 for i in range(n)]
    model = kv_models[name]
    gpu, tg, (chunk, _) = reuse_run(model, ids, kv, env)
    assert tg["tokens"] == n and tg["submits"] == 1.0
    assert tg["recordings"] * n == pytest.approx(recordings, abs=0.5), tg
    every, tg0, _ = reuse_run(model, ids, kv, {**env, "SILICA_GPU_REUSE": "0"})
    assert tg0["recordings"] == 1.0
    assert np.array_equal(gpu, every)
    _, cpu, _ = logits(model, ids, *kv)
    quant = "q8" in kv
    per_pos = np.abs(gpu - cpu).max(-1) / np.abs(cpu).max()
    assert per_pos.max() <= (3e-2 if quant else TOL), per_pos.max()
    assert chunk == (8 if "SILICA_GPU_ATTN_CHUNK" in env else 64)


@pytest.fixture(scope="module")
def llama_q8(kv_models, tmp_path_factory):
    """kv_models' llama (head_dim 64) as GGUF Q8_0: its o_proj reads int8 activations, which attn_merge.comp
    writes itself (a head's 32-value blocks)."""
    gguf = tmp_path_factory.mktemp("gpu-attn") / "llama-q8.gguf"
    run_silica("convert", kv_models["llama"], gguf, "--to", "gguf", "--q-type", "Q8_0", "--pure", check=True)
    return gguf


def test_split_attention_quantizes_its_output(lavapipe, llama_q8):
    """GGUF Q8_0, one token at a time, chunks of 8: the merge's quantized output (the split kernel's, for the
    first 8 positions) feeds o_proj (no quantx dispatch in generation) and the logits are the CPU engine's within QUANT_TOL with the same argmax where
    clear, as the prompt path's (quantx.comp) are."""
    ids = KV_IDS[:40]
    _, cpu, _ = logits(llama_q8, ids, "--ctx", "64")
    _, gpu, r = logits(llama_q8, ids, "--ctx", "64", "--batch", "1", "--device", "gpu",
                       env={**CHUNK8, "SILICA_PROFILE": "1"})
    err = np.abs(gpu - cpu).max() / np.abs(cpu).max()
    assert err <= QUANT_TOL, err
    tags = gpu_profile(r.err)["generation"][1]
    assert "quantx" not in tags and 0 < tags["attn_merge"][1] < tags["attn"][1]   # positions 0..7: one chunk, no merge


def test_bench_with_depth_on_gpu(lavapipe, llama_q8):
    """`silica bench --device gpu -d N` (tokens already in the cache: several key chunks a generated token)."""
    r = run_silica("bench", llama_q8, "-p", "8", "-n", "4", "-d", "150", "-r", "1", "--no-bandwidth", "--json",
                   "--device", "gpu", check=True, timeout=600, env=DIRECT16).json()
    assert [x["test"] for x in r["results"]] == ["pp8 @ d150", "tg4 @ d150"] and all(x["avg_ts"] > 0 for x in r["results"])
