"""The repetition guard and the demo model's sampling defaults, against real peers.

- Penalties on the same logits (build/tools/sampler_tool drives silica's sampler) equal
  mlx_lm.sample_utils' processors: make_repetition_penalty (sign-aware, once per distinct
  id — the definition transformers' RepetitionPenaltyLogitsProcessor and llama.cpp's
  penalties sampler share), make_presence_penalty and make_frequency_penalty, over the
  same window of recent ids.
- End to end: greedy decoding of the demo model with --repeat-penalty equals mlx_lm's
  generate_step with the same logits processor (parameters cast to f32, as
  test_demo_model does).
- `silica run` without MODEL (the demo) samples by default and no longer loops; a named
  model stays greedy; --temp 0 brings greedy back for the demo.
"""
import collections
import subprocess

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm.sample_utils import make_frequency_penalty, make_presence_penalty, make_repetition_penalty

from conftest import ROOT, SILICA, assert_clean_error, run_silica

TOOL = SILICA.parent / "tools" / "sampler_tool"
DEMO = ROOT / "models" / "demo"
PROMPT = "def fibonacci(n):"


def silica_penalised(logits, hist, repeat=1.0, window=64, presence=0.0, frequency=0.0):
    assert TOOL.exists(), f"sampler_tool not built at {TOOL}"
    p = subprocess.run([str(TOOL), ",".join(map(str, hist)), repr(repeat), str(window), repr(presence),
                        repr(frequency)], input=logits.astype("<f4").tobytes(), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return np.frombuffer(p.stdout, dtype="<f4"), int(p.stderr.decode().split("id=")[1])


def peer(processor, logits, hist):
    out = processor(mx.array(hist), mx.array(logits)[None])
    return np.array(out[0])


def case(seed, V=300, n=80):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(V) * 4).astype(np.float32)
    logits[rng.integers(0, V, 10)] = 0.0                  # zero logits: l <= 0 vs l < 0 agree
    hist = [int(x) for x in rng.integers(0, 40, n)]        # many repeats among 40 ids
    return logits, hist


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window", [20, 64])
@pytest.mark.parametrize("r", [1.1, 1.3, 0.8])
def test_repetition_penalty_equals_mlx_lm(seed, window, r):
    logits, hist = case(seed)
    got, _ = silica_penalised(logits, hist, repeat=r, window=window)
    want = peer(make_repetition_penalty(r, window), logits, hist)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, logits)


def test_whole_history_window():
    """--repeat-last-n -1: every id of the history (transformers' processor looks at all input_ids)."""
    logits, hist = case(5)
    got, _ = silica_penalised(logits, hist, repeat=1.25, window=-1)
    np.testing.assert_array_equal(got, peer(make_repetition_penalty(1.25, len(hist)), logits, hist))
    off, _ = silica_penalised(logits, hist, repeat=1.25, window=0)
    np.testing.assert_array_equal(off, logits)


@pytest.mark.parametrize("seed", [0, 3])
def test_presence_and_frequency_equal_mlx_lm(seed):
    logits, hist = case(seed)
    got, _ = silica_penalised(logits, hist, presence=0.7, window=20)
    np.testing.assert_array_equal(got, peer(make_presence_penalty(0.7, 20), logits, hist))
    # frequency: llama.cpp subtracts count * f in one expression, mlx_lm f once per occurrence;
    # the two roundings agree to a few ulp
    got, _ = silica_penalised(logits, hist, frequency=0.35, window=20)
    want = peer(make_frequency_penalty(0.35, 20), logits, hist)
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * np.finfo(np.float32).eps * 16)
    assert not np.array_equal(got, logits)


@pytest.fixture(scope="module")
def mlx_demo():
    from mlx_lm import load
    model, tok = load(str(DEMO))
    model.set_dtype(mx.float32)
    return model, tok


def test_demo_greedy_with_repeat_penalty_equals_mlx_lm(mlx_demo):
    from mlx_lm.generate import generate_step
    model, tok = mlx_demo
    prompt = tok.encode(PROMPT)   # BOS added, as silica run without a template
    want = []
    for t, _ in generate_step(mx.array(prompt), model, max_tokens=48,
                              logits_processors=[make_repetition_penalty(1.3, 64)]):
        want.append(int(t))
        if want[-1] == 1:
            break
    r = run_silica("run", DEMO, "--ids", ",".join(map(str, prompt)), "--max-tokens", 48, "--temp", 0,
                   "--repeat-penalty", 1.3, "--repeat-last-n", 64, "--json", check=True, timeout=600)
    got = r.json()["ids"]
    assert got[:len(want)] == want
    plain = run_silica("run", DEMO, "--ids", ",".join(map(str, prompt)), "--max-tokens", 48, "--json",
                       check=True, timeout=600).json()["ids"]
    assert plain != got   # the guard changed the greedy path


def max_line_repeats(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return max(collections.Counter(lines).values()) if lines else 0


def test_demo_run_samples_and_does_not_loop():
    """The first thing a user sees (scripts/demo.sh): no model named -> the demo samples."""
    demo = run_silica("run", PROMPT, "--max-tokens", 128, check=True, timeout=600).out
    again = run_silica("run", PROMPT, "--max-tokens", 128, check=True, timeout=600).out
    assert demo == again                                   # seeded: reproducible
    greedy_named = run_silica("run", DEMO, PROMPT, "--max-tokens", 128, check=True, timeout=600).out
    greedy_demo = run_silica("run", PROMPT, "--max-tokens", 128, "--temp", 0, "--repeat-penalty", 1,
                             check=True, timeout=600).out
    assert greedy_named == greedy_demo                     # a named model and --temp 0 stay greedy
    assert max_line_repeats(greedy_named) >= 8             # what users saw: `def f(x): return 1` over and over
    assert max_line_repeats(demo) <= 3, demo
    assert demo != greedy_named
    h = run_silica("run", "--help", check=True).out
    assert "--temp 0.7 --top-k 40 --top-p 0.95 --min-p 0.05 --repeat-penalty 1.1 --repeat-last-n 64" in h


def test_repeat_last_n_bad_values(silica):
    assert_clean_error(silica("run", DEMO, "x", "--repeat-last-n", "-2"), "--repeat-last-n")
    assert_clean_error(silica("run", DEMO, "x", "--repeat-last-n", "many"), "--repeat-last-n")
