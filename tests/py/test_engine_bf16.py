"""bf16 checkpoints against transformers RUNNING them in bfloat16.

Oracle: tests/fixtures/models/bf16_reference.npz, made by
tools/bf16_reference.py on a machine with torch 2.11 + transformers 5.17: the
bf16 checkpoints of engine_models.tar.xz run by transformers in bfloat16 on the
CPU (eager attention) — logits of one forward over the tarball's prompt + f32
greedy continuation, and transformers' own bf16 greedy continuation.

silica widens bf16 weights and computes in f32.  What this proves:
  * silica is at least 10x closer to the exact (f32) answer than transformers'
    bf16 run is, on every architecture (bf16 compute is the larger error);
  * silica and transformers-bf16 stay within bf16 compute error of each other
    (<= 5e-2 of max|logit|; transformers' own bf16-vs-f32 gap is <= 2.2e-2);
  * greedy ids are identical to transformers' bf16 generate() with silica's
    default f16 KV cache.
"""
import json

import numpy as np
import pytest

from conftest import FIXTURES, run_silica
from test_engine import MAIN, ref_of, rel_err, silica_logits

BF16 = np.load(FIXTURES / "models" / "bf16_reference.npz")
META = json.loads(str(BF16["_meta"]))


def test_reference_covers_every_architecture():
    assert sorted(META["models"]) == sorted(MAIN)


@pytest.mark.parametrize("arch", MAIN)
def test_closer_to_exact_than_bf16_compute(engine_models, arch):
    ref, f32 = ref_of(engine_models, arch)
    bf16 = BF16[f"{arch}/logits"]
    got = silica_logits(engine_models / arch / "bf16-st", ref["prompt"] + ref["generated"], "--kv", "f32")
    ours, theirs, between = rel_err(got, f32), rel_err(bf16, f32), rel_err(got, bf16)
    print(f"{arch}: silica vs f32 {ours:.2e}, transformers-bf16 vs f32 {theirs:.2e}, silica vs bf16 {between:.2e}")
    assert theirs == pytest.approx(META["models"][arch]["rel_err_vs_f32"], rel=1e-6)
    assert ours * 10 <= theirs
    assert between <= 5e-2


@pytest.mark.parametrize("arch", MAIN)
def test_greedy_matches_bf16_generate(engine_models, arch):
    ref, _ = ref_of(engine_models, arch)
    want = BF16[f"{arch}/generated"].tolist()
    r = run_silica("run", engine_models / arch / "bf16-st", "--ids", ",".join(map(str, ref["prompt"])),
                   "--max-tokens", len(want), "--json", check=True)
    assert r.json()["ids"] == want
