"""`silica serve` with several models: the first loads at start, every other
one on its first request, when the fit advisor (`silica fit`'s estimate:
weights + one KV cache of --ctx per slot) says it fits next to those loaded
within --max-memory; otherwise that request gets 503 with the memory
breakdown and the server goes on serving.

Oracle for the numbers: `silica fit MODEL --ctx N --json` (the estimator the
advisor is), and for "loaded": Ollama's /api/ps through the real `ollama`
client and /v1/models through the real `openai` client.
"""
import json
import shutil

import openai
import pytest

from conftest import ROOT, run_silica
from test_serve import Server

DEMO = ROOT / "models" / "demo"
CTX = 256


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    for n in ("first", "second"):
        shutil.copytree(DEMO, root / n)
    need = run_silica("fit", root / "first", "--ctx", CTX, "--json", check=True).json()["total_bytes"]
    return root / "first", root / "second", need


def loaded(s):
    return sorted(m.model for m in s.ollama().ps().models)


def test_second_model_loads_on_first_use_when_it_fits(two):
    a, b, need = two
    s = Server(a, b, "--ctx", CTX, "--parallel", "1", "--max-memory", f"{(2 * need + (1 << 20)) // 1024}K")
    try:
        assert loaded(s) == ["first"]
        meta = {m.id: m.meta for m in s.openai().models.list().data}
        assert meta["first"]["loaded"] and not meta["second"]["loaded"]
        r = s.openai().chat.completions.create(model="second", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=3, temperature=0)
        assert r.choices[0].message.content and r.usage.completion_tokens == 3
        assert loaded(s) == ["first", "second"]
    finally:
        rc, err = s.stop()
    assert rc == 0, err


def test_model_that_does_not_fit_beside_gets_503(two):
    a, b, need = two
    budget = need + need // 2   # one fits, two do not
    s = Server(a, b, "--ctx", CTX, "--parallel", "1", "--max-memory", f"{budget // 1024}K")
    try:
        with pytest.raises(openai.InternalServerError) as e:
            s.openai().chat.completions.create(model="second", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=3)
        assert e.value.status_code == 503
        err = e.value.body
        msg = err["message"]
        assert err["type"] == "server_error" and err["param"] == "model"
        mib = f"{need / (1 << 20):.2f} MiB"
        # the breakdown: what it needs, what is in use and by whom, the budget
        for words in ("'second'", "needs " + mib, "weights", "KV", "first " + mib, "budget", "--max-memory"):
            assert words in msg, (words, msg)
        with pytest.raises(Exception) as oe:   # the Ollama API too
            s.ollama().chat(model="second", messages=[{"role": "user", "content": "hi"}])
        assert getattr(oe.value, "status_code", None) == 503 and "budget" in str(oe.value)
        assert loaded(s) == ["first"]
        r = s.openai().chat.completions.create(model="first", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=2)
        assert r.usage.completion_tokens == 2   # still serving the model it has
    finally:
        rc, err = s.stop()
    assert rc == 0, err
    assert json.dumps(err) and "Killed" not in err
