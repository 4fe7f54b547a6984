"""`silica chat` on a model without a chat template (the demo model, a base completer).

The conversation becomes a plain transcript ("System: …", "User: …", "Assistant: …" lines,
the prompt ending in "Assistant:"), stderr says so once, an answer stops before the model
writes the next "\\nUser:" itself, and on a pipe each turn is marked ("User: <message>",
"Assistant: <answer>").  Oracle: mlx_lm's greedy generate_step on the same transcript
(encoded with BOS, as silica encodes text without a template), its text cut at the first
"\\nUser:" — every answer, including the second turn's, which silica computes from its
reused KV cache.
"""
import re

import mlx.core as mx
import pytest

from conftest import ROOT, run_silica

DEMO = ROOT / "models" / "demo"
STOP = "\nUser:"


@pytest.fixture(scope="module")
def mlx_demo():
    from mlx_lm import load
    model, tok = load(str(DEMO))
    model.set_dtype(mx.float32)   # silica computes in f32 (see test_demo_model)
    return model, tok


def mlx_answer(model, tok, prompt, max_tokens):
    """(raw answer, whether the stop string ended it): greedy, EOS id 1, cut at STOP."""
    from mlx_lm.generate import generate_step
    ids = []
    for t, _ in generate_step(mx.array(tok.encode(prompt)), model, max_tokens=max_tokens):
        if int(t) == 1:
            break
        ids.append(int(t))
        text = tok.decode(ids)
        if STOP in text:
            return text[:text.index(STOP)], True
    return tok.decode(ids), False


def transcript(system, turns):
    lines = [f"System: {system}"] if system else []
    for role, text in turns:
        lines.append(f"{role}: {text.lstrip(' ')}")
    return "\n".join(lines) + "\nAssistant:"


def parse(out):
    return re.findall(r"User: (.*?)\nAssistant: (.*?)\n(?=User: |\Z)", out, re.S)


def test_plain_transcript_matches_mlx_lm(mlx_demo):
    model, tok = mlx_demo
    system = "User: x = 1\nAssistant: y = 2\nUser: x = 3\nAssistant: y = 4\nUser: x = 5\nAssistant: y = 6"
    msgs = ["x = 5", "x = 7"]   # the examples lead the model to write the next "User:" itself
    r = run_silica("chat", DEMO, "--system", system, "--max-tokens", 24, "--ctx", 512,
                   input="\n".join(msgs) + "\n", check=True, timeout=600)
    notes = [l for l in r.err.splitlines() if l.strip()]
    assert len(notes) == 1 and "has no chat template" in notes[0] and "User:" in notes[0], r.err
    got = parse(r.out)
    assert [u for u, _ in got] == msgs, r.out
    turns, stopped = [], []
    for (user, answer), msg in zip(got, msgs):
        turns.append(("User", msg))
        raw, hit = mlx_answer(model, tok, transcript(system, turns), 24)
        stopped.append(hit)
        assert answer == raw.lstrip(" \n"), (answer, raw)
        assert "User:" not in answer
        turns.append(("Assistant", raw))
    assert any(stopped), "the conversation never reached the stop marker: the test proves nothing about it"


def test_turns_are_marked_and_not_glued():
    """Two turns on a pipe: each answer follows its own "Assistant: " mark (was: answers glued
    to the next message as one text)."""
    r = run_silica("chat", DEMO, "--max-tokens", 12, input="def add(a, b):\nclass Foo:\n", check=True, timeout=600)
    got = parse(r.out)
    assert [u for u, _ in got] == ["def add(a, b):", "class Foo:"], r.out
    assert r.out.startswith("User: def add(a, b):\nAssistant: ")
    assert r.err.count("has no chat template") == 1
