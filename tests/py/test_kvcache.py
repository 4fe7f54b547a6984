"""The KV cache: 8/4-bit quantization (--kv-bits, --kv-group-size) and the
rotating cache with attention sinks (--max-kv-size), against real mlx_lm.

Oracles:
  - mlx_lm 0.32's QuantizedKVCache (mx.quantize of each K/V head row, group
    64) and RotatingKVCache(max_size=N, keep=4), on the demo model
    (models/demo, an MLX 4-bit llama, head_dim 64) cast to float32 so both
    sides compute in f32 (silica --kv f32 then quantizes with f32 scales,
    exactly what mlx_lm stores for an f32 model).
  - The unquantized / unbounded cache of silica itself, on the engine test
    models of every architecture (tests/fixtures/models, as test_engine.py).
Note: mlx_lm 0.32.2's generate_step(max_kv_size=N) silently keeps the full
cache for llama models (Model.make_cache() exists and ignores max_kv_size),
so the tests pass RotatingKVCache explicitly as prompt_cache.
Numbers worth reading are printed (pytest -s) and quoted in part6/README.md.
"""
import json

import numpy as np
import pytest

from conftest import ROOT, assert_clean_error, run_silica

ARCHS = ["llama", "llama3", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"]
DEMO = ROOT / "models" / "demo"
PROMPT = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n"


@pytest.fixture(scope="module")
def demo_mlx():
    import mlx.core as mx
    from mlx_lm import load
    model, tok = load(str(DEMO))
    model.set_dtype(mx.float32)
    return model, tok


@pytest.fixture(scope="module")
def nostop(tmp_path_factory):
    """The demo model without EOS ids or tokenizer: generation runs to --max-tokens."""
    d = tmp_path_factory.mktemp("kv-nostop")
    for f in ("model.safetensors", "model.safetensors.index.json"):
        (d / f).symlink_to(DEMO / f)
    c = json.loads((DEMO / "config.json").read_text())
    c.pop("eos_token_id", None)
    (d / "config.json").write_text(json.dumps(c))
    return d


def ids_arg(ids):
    return ",".join(map(str, ids))


def logits(model_dir, ids, *extra):
    r = run_silica("logits", model_dir, "--ids", ids_arg(ids), "--json", *extra, check=True, timeout=300)
    return np.array(r.json()["logits"], dtype=np.float32)


def greedy(model_dir, ids, n, *extra):
    r = run_silica("run", model_dir, "--ids", ids_arg(ids), "--max-tokens", n, "--json", *extra, check=True,
                   timeout=300)
    return r.json()


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def first_diff(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


# ---------------------------------------------------------------- quantized cache

@pytest.mark.parametrize("arch", ARCHS)
def test_q8_greedy_identical_to_f16(engine_models, arch):
    """8-bit cache vs the f16 cache on every engine_models model (random weights, 24 greedy tokens): identical ids,
    except where f16's top-2 margin is below the 8-bit logit error (a near-tie of a random model: printed).
    A KV row (n_kv_heads x head_dim) shorter than the smallest MLX group (32) is refused, as mx.quantize
    refuses it (gemma: 1 x 16)."""
    ref = json.loads((engine_models / arch / "ref.json").read_text())
    d = engine_models / arch / "f32-st"
    cfg = json.loads((d / "config.json").read_text())
    D = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    if cfg["num_key_value_heads"] * D % 32:
        assert_clean_error(run_silica("run", d, "--ids", ids_arg(ref["prompt"]), "--kv-bits", 8), "multiple of 32")
        return
    n = 24
    f16 = greedy(d, ref["prompt"], n)
    q8 = greedy(d, ref["prompt"], n, "--kv-bits", "8")
    assert q8["kv_bytes"] < f16["kv_bytes"]
    ids = ref["prompt"] + f16["ids"]
    a, b = logits(d, ids), logits(d, ids, "--kv", "q8")
    q4 = logits(d, ids, "--kv", "q4")
    g4 = greedy(d, ref["prompt"], n, "--kv-bits", "4")
    i = first_diff(q8["ids"], f16["ids"])
    note = "identical"
    if i is not None:
        row = len(ref["prompt"]) - 1 + i
        top = np.sort(a[row])[-2:]
        margin, err = float(top[1] - top[0]), float(np.abs(b[row] - a[row]).max())
        note = f"differs at {i}: f16 top-2 margin {margin:.3f} < 2 x 8-bit logit error {err:.3f} (near-tie)"
        assert margin < 2 * err and int(b[row].argmax()) == q8["ids"][i]
    print(f"{arch}: q8 greedy {note}; q8 vs f16 logits rel {rel(b, a):.2e}; q4 rel {rel(q4, a):.2e}, "
          f"q4 greedy first differs at {first_diff(g4['ids'], f16['ids'])} of {n}")
    assert rel(b, a) < 5e-2


def test_q8_demo_model_greedy_identical(nostop):
    """models/demo: 200 greedy tokens with the 8-bit cache equal the f16 cache's; 4-bit divergence reported."""
    text = 'import os\nimport sys\n\n\ndef main(argv):\n    """Parse the command line and run."""\n'
    prompt = json.loads(run_silica("run", DEMO, text, "--no-chat-template", "--prompt-ids", check=True).out)
    f16 = greedy(nostop, prompt, 200)
    q8 = greedy(nostop, prompt, 200, "--kv", "q8")
    q4 = greedy(nostop, prompt, 200, "--kv", "q4")
    assert f16["stop_reason"] == "length" and len(f16["ids"]) == 200
    assert q8["ids"] == f16["ids"]
    print(f"demo: q8 identical over 200 tokens; q4 first differs at {first_diff(q4['ids'], f16['ids'])}; "
          f"KV bytes f16 {f16['kv_bytes']}, q8 {q8['kv_bytes']}, q4 {q4['kv_bytes']}")
    # 8 layers x 4 KV heads x 64: f16 2 x 512 B per layer and position; q8 2 x (256 + 4 groups x 4 B); q4 2 x (128 + 16)
    P = len(prompt) + 200
    assert f16["kv_bytes"] == 8 * P * 2 * 512
    assert q8["kv_bytes"] == 8 * P * 2 * (256 + 16)
    assert q4["kv_bytes"] == 8 * P * 2 * (128 + 16)


def test_quantized_cache_matches_mlx_lm(demo_mlx):
    """Logits of every position with QuantizedKVCache(group 64, bits 8 / 4) vs silica --kv f32 --kv-bits."""
    import mlx.core as mx
    from mlx_lm.models.cache import KVCache, QuantizedKVCache
    model, tok = demo_mlx
    ids = tok.encode(PROMPT)
    L = len(model.layers)

    def mlx(cache):
        return np.array(model(mx.array(ids)[None], cache=cache)[0])
    base = mlx([KVCache() for _ in range(L)])
    assert rel(logits(DEMO, ids, "--kv", "f32"), base) < 1e-5
    for bits, tol in ((8, 1e-2), (4, 5e-2)):
        want = mlx([QuantizedKVCache(group_size=64, bits=bits) for _ in range(L)])
        got = logits(DEMO, ids, "--kv", "f32", "--kv-bits", bits, "--kv-group-size", 64)
        got16 = logits(DEMO, ids, "--kv-bits", bits)   # default: f16 rows and scales
        own = rel(want, base)   # what quantizing costs mlx_lm itself
        print(f"demo {bits}-bit KV: silica vs mlx_lm QuantizedKVCache max rel {rel(got, want):.2e} "
              f"(f16 scales: {rel(got16, want):.2e}); quantization itself moves mlx_lm's logits by {own:.2e}")
        # the two quantize (nearly) the same keys with the same grid: far below the cost of quantizing
        assert rel(got, want) <= max(1e-5, 0.5 * own)
        assert rel(got, want) < tol
        assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.97


def test_quantized_greedy_matches_mlx_lm_generate(demo_mlx):
    """generate_step(kv_bits=8, kv_group_size=64, quantized_kv_start=0): the same greedy ids."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    model, tok = demo_mlx
    ids = tok.encode(PROMPT)
    want = [int(t) for (t, _), _ in zip(generate_step(mx.array(ids), model, max_tokens=48, kv_bits=8,
                                                       kv_group_size=64, quantized_kv_start=0), range(48))]
    got = greedy(DEMO, ids, 48, "--kv", "f32", "--kv-bits", 8)["ids"]
    n = len(got)   # silica stops at EOS like mlx_lm.generate; generate_step does not
    assert got == want[:n] and n >= 8


def test_group_sizes_and_bytes(engine_models):
    d = engine_models / "llama" / "f32-st"   # 4 KV heads x head_dim 16: groups span heads
    ids = json.loads((engine_models / "llama" / "ref.json").read_text())["prompt"]
    base = logits(d, ids)
    for g in (32, 64):
        assert rel(logits(d, ids, "--kv-bits", 8, "--kv-group-size", g), base) < 2e-2
    # 64 values per position and layer: f16 128 B; q8/g32 64 + 2 x 2 x 2 B; q4/g64 32 + 2 x 2 B; per K and V
    n, L = len(ids), 2
    assert greedy(d, ids, 1, "--kv", "f16")["kv_bytes"] == L * (n + 1) * 2 * 128
    assert greedy(d, ids, 1, "--kv", "f16", "--kv-bits", 8, "--kv-group-size", 32)["kv_bytes"] == L * (n + 1) * 2 * (64 + 8)
    assert greedy(d, ids, 1, "--kv", "f16", "--kv-bits", 4)["kv_bytes"] == L * (n + 1) * 2 * (32 + 4)
    # by default an f32 model keeps f32 rows, and f32 scales and biases (mlx_lm quantizes f32 keys so)
    assert greedy(d, ids, 1)["kv_bytes"] == L * (n + 1) * 2 * 256
    assert greedy(d, ids, 1, "--kv-bits", 8, "--kv-group-size", 32)["kv_bytes"] == L * (n + 1) * 2 * (64 + 16)
    assert greedy(d, ids, 1, "--kv-bits", 4)["kv_bytes"] == L * (n + 1) * 2 * (32 + 8)


# ---------------------------------------------------------------- rotating cache

@pytest.mark.parametrize("arch", ARCHS)
def test_rotating_without_eviction_is_identical(engine_models, arch):
    """--max-kv-size larger than the sequence: bit-identical logits (and with --kv q8 too)."""
    ref = json.loads((engine_models / arch / "ref.json").read_text())
    d = engine_models / arch / "f32-st"
    ids = ref["prompt"] + ref["generated"]
    assert np.array_equal(logits(d, ids, "--max-kv-size", len(ids)), logits(d, ids))
    cfg = json.loads((d / "config.json").read_text())
    D = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    if cfg["num_key_value_heads"] * D % 32 == 0:   # gemma's 1 x 16 cannot be quantized
        assert np.array_equal(logits(d, ids, "--max-kv-size", 64, "--kv", "q8"), logits(d, ids, "--kv", "q8"))


def test_rotating_matches_mlx_lm(demo_mlx):
    """Generation 5x past N: greedy ids of silica --max-kv-size N equal mlx_lm generate_step with
    RotatingKVCache(N, keep=4); logits of every position (silica: one batched pass) equal mlx_lm's
    token-by-token RotatingKVCache; batch size and thread count change nothing."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import RotatingKVCache
    model, tok = demo_mlx
    N, L = 24, len(model.layers)
    prompt = tok.encode("def fibonacci(n):\n")
    want = [int(t) for (t, _), _ in zip(generate_step(mx.array(prompt), model, max_tokens=5 * N, prompt_cache=[
        RotatingKVCache(max_size=N, keep=4) for _ in range(L)]), range(5 * N))]
    got = greedy(DEMO, prompt, 5 * N, "--kv", "f32", "--max-kv-size", N)
    assert got["ids"] == want[:len(got["ids"])] and len(got["ids"]) > 2 * N
    ids = prompt + want
    cache = [RotatingKVCache(max_size=N, keep=4) for _ in range(L)]
    ml = np.stack([np.array(model(mx.array([[t]]), cache=cache)[0, -1]) for t in ids])
    s = logits(DEMO, ids, "--kv", "f32", "--max-kv-size", N)
    print(f"rotating N={N}: {len(ids)} positions, silica (batched) vs mlx_lm (token by token) max rel {rel(s, ml):.2e}")
    assert rel(s, ml) < 1e-5
    # batches of 5 (rings of N + 4 positions) and one thread: the same (the quantized weight kernels' batch
    # tiles may round differently from single rows, hence a tolerance)
    assert rel(s, logits(DEMO, ids, "--kv", "f32", "--max-kv-size", N, "--batch", 5, "--threads", 1)) < 1e-5
    # without sinks the numbers differ (keep matters): guard against a cache that ignores them
    assert rel(s, logits(DEMO, ids, "--kv", "f32", "--max-kv-size", 4 * N)) > 1e-3


def test_rotating_quantized_matches_reference(demo_mlx):
    """--max-kv-size with --kv-bits (mlx_lm cannot: RotatingKVCache.to_quantized is NYI): against mlx_lm's
    RotatingKVCache holding mx.quantize/mx.dequantize'd rows."""
    import mlx.core as mx
    from mlx_lm.models.cache import RotatingKVCache, KVCache

    class FakeQuant(RotatingKVCache):
        def update_and_fetch(self, k, v):
            f = lambda x: mx.dequantize(*mx.quantize(x, group_size=64, bits=8), group_size=64, bits=8)
            return super().update_and_fetch(f(k), f(v))
    model, tok = demo_mlx
    N, L = 24, len(model.layers)
    ids = tok.encode(PROMPT + PROMPT)
    cache = [FakeQuant(max_size=N, keep=4) for _ in range(L)]
    want = np.stack([np.array(model(mx.array([[t]]), cache=cache)[0, -1]) for t in ids])
    got = logits(DEMO, ids, "--kv", "f32", "--kv-bits", 8, "--max-kv-size", N)
    full = np.stack([np.array(model(mx.array([[t]]), cache=c)[0, -1]) for c in [[KVCache() for _ in range(L)]]
                     for t in ids])
    print(f"rotating N={N} + 8-bit: silica vs mlx_lm fake-quantized RotatingKVCache max rel {rel(got, want):.2e}")
    assert rel(got, want) < 1e-2 and rel(got, want) < 0.5 * rel(want, full)
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.95


def test_prompt_longer_than_max_kv(demo_mlx):
    """A prompt longer than N: silica evicts as it goes (every position sees the 4 sinks + the last N - 4);
    mlx_lm's prefill instead gives prompt positions a plain window of N (no sinks), so the two differ on the
    prompt's positions past N but agree before N."""
    import mlx.core as mx
    from mlx_lm.models.cache import RotatingKVCache
    model, tok = demo_mlx
    N, L = 16, len(model.layers)
    ids = tok.encode(PROMPT)
    cache = [RotatingKVCache(max_size=N, keep=4) for _ in range(L)]
    m_prefill = np.array(model(mx.array(ids)[None], cache=cache)[0])
    s = logits(DEMO, ids, "--kv", "f32", "--max-kv-size", N)
    before = rel(s[:N], m_prefill[:N])
    after = rel(s[N:], m_prefill[N:])
    print(f"prompt of {len(ids)} > N={N}: positions < N rel {before:.2e}; >= N (mlx_lm prefill drops sinks) {after:.2e}")
    assert before < 1e-5 and after > 1e-3


def test_memory_flat_over_10x(nostop):
    """10 x N generated tokens with --max-kv-size N: kv_bytes fixed, peak RSS no higher than for 2 x N; the
    unbounded cache grows with the context instead."""
    N = 64
    short = greedy(nostop, [0, 5, 6], 2 * N, "--max-kv-size", N, "--kv", "q8")
    long = greedy(nostop, [0, 5, 6], 10 * N, "--max-kv-size", N, "--kv", "q8")
    free = greedy(nostop, [0, 5, 6], 10 * N, "--kv", "q8", "--force")   # past the demo's 512 positions
    assert len(long["ids"]) == 10 * N and long["stop_reason"] == "length"
    assert long["kv_bytes"] == short["kv_bytes"] == 8 * (N + N - 1) * 2 * (256 + 16)
    assert free["kv_bytes"] == 8 * (10 * N + 3) * 2 * (256 + 16)
    # peak RSS varies by a few hundred KiB from run to run (allocator and page-fault timing): the least of
    # three runs each; the unbounded cache would add its 2.2 MB
    rss_short = min([short["peak_rss_bytes"]] + [greedy(nostop, [0, 5, 6], 2 * N, "--max-kv-size", N, "--kv", "q8")
                                                  ["peak_rss_bytes"] for _ in range(2)])
    rss_long = min([long["peak_rss_bytes"]] + [greedy(nostop, [0, 5, 6], 10 * N, "--max-kv-size", N, "--kv", "q8")
                                                ["peak_rss_bytes"] for _ in range(2)])
    grow = rss_long - rss_short
    print(f"max-kv {N}: kv_bytes {long['kv_bytes']} for {2 * N} and {10 * N} tokens; peak RSS "
          f"{rss_short} -> {rss_long} ({grow:+d} B); unbounded kv_bytes {free['kv_bytes']}")
    assert grow < 256 * 1024 < (free["kv_bytes"] - long["kv_bytes"]) / 4


def test_sliding_layers_use_window_rings(engine_models):
    """mistral / gemma2 / gemma3 (window 4): sliding layers hold window + batch - 1 positions, full layers
    all; logits unchanged (test_engine.py compares them with transformers)."""
    for arch in ("mistral", "gemma2", "gemma3"):
        ref = json.loads((engine_models / arch / "ref.json").read_text())
        cfg = json.loads((engine_models / arch / "f32-st" / "config.json").read_text())
        ids = ref["prompt"] + ref["generated"]
        r = greedy(engine_models / arch / "f32-st", ref["prompt"], len(ref["generated"]), "--batch", 2)
        L, KV = cfg["num_hidden_layers"], cfg["num_key_value_heads"]
        D = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        types = cfg.get("layer_types") or ["sliding_attention"] * L
        assert "full_attention" in types or arch == "mistral"
        ctx = len(ids)
        slots = sum(min(ctx, cfg["sliding_window"] + 2 - 1) if t == "sliding_attention" else ctx for t in types)
        assert r["kv_bytes"] == slots * 2 * KV * D * 4, arch   # f32 weights: an f32 cache
        assert r["ids"] == ref["generated"], arch


def test_chat_prefix_reuse_with_eviction(tmp_path):
    """chat reuses the cached prefix when nothing it needs was evicted and recomputes otherwise: every
    answer equals a fresh `silica run` of the same conversation with the same cache options."""
    from hf_models import make_hf_model
    from mlx_lm import load
    d = tmp_path / "m"
    make_hf_model(d, "llama", weights_dtype="float32", dtype="float32", tokenizer="llama3", hidden=64, heads=2,
                  kv_heads=1, inter=64, vocab=128256, tied=True, seed=5)
    c = json.loads((d / "config.json").read_text())
    c["eos_token_id"] = 128009
    (d / "config.json").write_text(json.dumps(c))
    _, tok = load(str(d))
    turns = ["hello there", "tell me more about it", "and a third question"]
    for opts in (["--max-kv-size", "12", "--kv", "q8"], ["--max-kv-size", "200", "--kv", "q4"]):
        r = run_silica("chat", d, "--max-tokens", 5, *opts, input="\n".join(turns) + "\n", check=True, timeout=300)
        answers = [l.removeprefix("Assistant: ") for l in r.out.split("\n") if l.startswith("Assistant: ")]
        assert len(answers) == 3, r.out   # not a terminal: turns marked
        conv = []
        for t, a in zip(turns, answers):
            conv.append({"role": "user", "content": t})
            p = tok.encode(tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True),
                           add_special_tokens=False)
            fresh = greedy(d, p, 5, *opts)
            assert a == fresh["text"], (opts, t)
            conv.append({"role": "assistant", "content": a})


# ---------------------------------------------------------------- estimator

def test_fit_kv_bytes_equal_the_session(engine_models):
    """silica fit's KV bytes (same formulas) equal what the session allocated: sliding rings, quantized
    rows (f16 or f32 scales), rotating caches."""
    cases = {"llama": [["--kv", "f16"], ["--kv", "q8"], ["--kv", "q4", "--max-kv-size", "8"],
                       ["--kv", "f32", "--kv-bits", "8", "--kv-group-size", "32"], ["--max-kv-size", "6"]],
             "gemma2": [["--kv", "f16"], ["--max-kv-size", "9", "--kv", "f32"]],
             "mistral": [["--kv", "q8"], ["--max-kv-size", "7"]]}
    for arch, optss in cases.items():
        d = engine_models / arch / "f32-st"
        ref = json.loads((engine_models / arch / "ref.json").read_text())
        n = len(ref["prompt"]) + 4
        for opts in optss:
            r = greedy(d, ref["prompt"], 4, *opts)
            f = run_silica("fit", d, "--ctx", n, *opts, "--json", check=True).json()
            assert f["kv_bytes"] == r["kv_bytes"], (arch, opts)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("args,needle", [
    (["--kv-bits", "3"], "--kv-bits"),
    (["--kv-bits", "x"], "--kv-bits"),
    (["--kv-group-size", "0"], "--kv-group-size"),
    (["--kv-group-size", "48"], "--kv-group-size"),
    (["--max-kv-size", "2"], "--max-kv-size"),
    (["--max-kv-size", "4"], "--max-kv-size"),
    (["--max-kv-size", "-1"], "--max-kv-size"),
    (["--max-kv-size", "99999999999999"], "--max-kv-size"),
    (["--max-kv-size"], "--max-kv-size"),
    (["--kv", "q3"], "--kv"),
])
def test_bad_kv_options(engine_models, args, needle):
    d = engine_models / "llama" / "f32-st"
    for cmd in ("run", "logits", "ppl"):
        extra = ["--ids", "1,2,3"] if cmd != "ppl" else ["--file", "x.txt"]
        assert_clean_error(run_silica(cmd, d, *extra, *args), needle)


def test_bad_kv_combinations(engine_models):
    d = engine_models / "llama" / "f32-st"   # 4 KV heads x 16 = 64 values per position
    assert_clean_error(run_silica("run", d, "--ids", "1,2", "--kv-bits", 8, "--kv-group-size", 128),
                       "group size 128", "64 values")
    assert_clean_error(run_silica("logits", d, "--ids", "1,2", "--kv-group-size", 32), "quantized")
    q = engine_models / "qwen3" / "f32-st"   # 1 KV head x 32
    assert_clean_error(run_silica("run", q, "--ids", "1,2", "--kv-bits", 4, "--kv-group-size", 64), "group size 64")
