"""`silica run` with text prompts, `chat` and `ppl` against real peers.

Tiny random-weight llama models (f32) carrying REAL tokenizers from
tests/data/tokenizers (hf_models.py): llama3 (with a chat template), mistral (no
template, BOS added by the tokenizer), qwen3 (template without BOS).
Oracles: transformers' AutoTokenizer.apply_chat_template, mlx_lm's prompt
construction and greedy stream_generate on the CPU, and a numpy perplexity over
mlx_lm logits with the issue's exact definition.
"""
import json
import os
import pty
import select
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import SILICA, assert_clean_error, run_silica
from hf_models import make_hf_model

MSG = "Write a haiku about the sea."
SYSTEM = "You are terse."
N_GEN = 12


def _fix_eos(d, eos):
    c = json.loads((d / "config.json").read_text())
    c["eos_token_id"] = eos[0]
    (d / "config.json").write_text(json.dumps(c))
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": eos}))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    out = {}
    for name, tok, vocab, eos in [("llama3", "llama3", 128256, [128001, 128009]),
                                  ("mistral", "mistral", 32000, [2])]:
        d = root / name
        make_hf_model(d, "llama", weights_dtype="float32", dtype="float32", tokenizer=tok, hidden=32, heads=2,
                      kv_heads=1, inter=64, vocab=vocab, tied=True, seed=3)
        _fix_eos(d, eos)
        out[name] = d
    d = root / "qwen3"   # tokenizer-only checks (--prompt-ids does no forward pass)
    make_hf_model(d, "llama", weights_dtype="float32", dtype="float32", tokenizer="qwen3", hidden=32, heads=2,
                  kv_heads=1, inter=64, vocab=256, tied=True)
    out["qwen3"] = d
    return out


@pytest.fixture(scope="module")
def mlx_models(models):
    from mlx_lm import load
    return {k: load(str(models[k])) for k in ("llama3", "mistral")}


def _messages(system):
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": MSG}]


def _mlx_prompt(tok, system, use_template=True):
    """Exactly mlx_lm.generate's main(): render, then encode (special tokens only without a template)."""
    if use_template and tok.has_chat_template:
        s = tok.apply_chat_template(_messages(system), tokenize=False, add_generation_prompt=True)
        return tok.encode(s, add_special_tokens=False)
    return tok.encode(MSG, add_special_tokens=True)


def _silica_json(*args, **kw):
    r = run_silica("run", *args, "--json", **kw)
    assert r.rc == 0, r.err
    return r.json()


# ---------------------------------------------------------------- prompt ids


@pytest.mark.parametrize("name", ["llama3", "mistral", "qwen3"])
@pytest.mark.parametrize("system", [None, SYSTEM])
def test_prompt_ids_match_transformers_and_mlx_lm(models, name, system):
    from transformers import AutoTokenizer
    from mlx_lm.utils import load_tokenizer
    d = models[name]
    args = ["--system", system] if system else []
    got = json.loads(run_silica("run", d, MSG, "--prompt-ids", *args, check=True).out)
    hf = AutoTokenizer.from_pretrained(str(d))
    if hf.chat_template:
        ref = hf.apply_chat_template(_messages(system), tokenize=True, add_generation_prompt=True)
        if not isinstance(ref, list):
            ref = list(ref["input_ids"])
        assert got == ref
    else:
        assert got == hf.encode(MSG)   # add_special_tokens=True: BOS as the tokenizer says
    assert got == _mlx_prompt(load_tokenizer(d), system)
    # --no-chat-template: plain text with special tokens added
    plain = json.loads(run_silica("run", d, MSG, "--prompt-ids", "--no-chat-template", check=True).out)
    assert plain == hf.encode(MSG)


def test_prompt_from_stdin(models):
    d = models["llama3"]
    a = run_silica("run", d, MSG, "--prompt-ids", check=True).out
    b = run_silica("run", d, "--prompt-ids", input=MSG, check=True).out
    assert a == b


# ---------------------------------------------------------------- greedy generation vs mlx_lm


def _mlx_greedy(model, tok, prompt, n):
    from mlx_lm.generate import stream_generate
    ids, text = [], ""
    for r in stream_generate(model, tok, prompt, max_tokens=n):
        if r.finish_reason == "stop" and r.token in tok.eos_token_ids:
            ids.append(r.token)
            break
        ids.append(r.token)
        text += r.text
    return ids, text


@pytest.mark.parametrize("name", ["llama3", "mistral"])
def test_greedy_matches_mlx_lm(models, mlx_models, name):
    d = models[name]
    model, tok = mlx_models[name]
    prompt = _mlx_prompt(tok, SYSTEM)
    ref_ids, ref_text = _mlx_greedy(model, tok, prompt, N_GEN)
    out = _silica_json(d, MSG, "--system", SYSTEM, "--max-tokens", N_GEN, "--kv", "f32")
    assert out["prompt_tokens"] == len(prompt)
    assert out["ids"] == ref_ids
    assert out["text"] == ref_text
    assert out["text"] == tok.decode([i for i in ref_ids if i not in tok.eos_token_ids])
    # streamed text (no --json) is the same text, then one newline
    r = run_silica("run", d, MSG, "--system", SYSTEM, "--max-tokens", N_GEN, "--kv", "f32", check=True)
    assert r.out == ref_text + "\n"


def test_json_schema_exact(models):
    out = _silica_json(models["llama3"], MSG, "--max-tokens", 3)
    assert list(out) == ["ids", "text", "prompt_tokens", "generated_tokens", "prompt_tps", "gen_tps", "ttft_ms",
                         "peak_rss_bytes", "stop_reason", "kv_bytes", "device"]
    assert out["device"] == "cpu"   # --device's default
    assert all(isinstance(i, int) for i in out["ids"]) and len(out["ids"]) == out["generated_tokens"] == 3
    assert isinstance(out["text"], str) and out["stop_reason"] == "length"
    for k in ("prompt_tps", "gen_tps", "ttft_ms"):
        assert isinstance(out[k], (int, float)) and out[k] >= 0
    assert isinstance(out["peak_rss_bytes"], int) and out["peak_rss_bytes"] > 1 << 20
    r = run_silica("run", models["llama3"], MSG, "--max-tokens", 2, "--stats", check=True)
    assert "tok/s" in r.err and "ttft" in r.err and "peak RSS" in r.err


def test_eos_list_from_generation_config(models, tmp_path):
    import shutil
    base = _silica_json(models["mistral"], MSG, "--max-tokens", N_GEN)
    stop_at = base["ids"][4]
    d = tmp_path / "m"
    shutil.copytree(models["mistral"], d)
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [31999, stop_at]}))
    out = _silica_json(d, MSG, "--max-tokens", N_GEN)
    k = base["ids"].index(stop_at)
    assert out["stop_reason"] == "eos" and out["ids"] == base["ids"][:k + 1]
    from tokenizers import Tokenizer
    t = Tokenizer.from_file(str(d / "tokenizer.json"))
    assert out["text"] == t.decode(base["ids"][:k], skip_special_tokens=False)


def test_stop_strings(models):
    d = models["llama3"]
    base = _silica_json(d, MSG, "--max-tokens", N_GEN)
    text = base["text"]
    assert len(text) > 8
    stop = text[len(text) // 2:len(text) // 2 + 3]
    cut = text[:text.index(stop)]
    out = _silica_json(d, MSG, "--max-tokens", N_GEN, "--stop", stop, "--stop", "\x01never")
    assert out["stop_reason"] == "stop" and out["text"] == cut
    assert out["ids"] == base["ids"][:len(out["ids"])] and len(out["ids"]) < N_GEN
    r = run_silica("run", d, MSG, "--max-tokens", N_GEN, "--stop", stop, check=True)
    assert r.out == cut + "\n"   # streaming never printed the held-back part


def test_seeds(models):
    d = models["llama3"]
    args = (d, MSG, "--max-tokens", 8, "--temp", "1.0", "--top-k", "0")
    a = _silica_json(*args, "--seed", 1)
    b = _silica_json(*args, "--seed", 1)
    c = _silica_json(*args, "--seed", 2)
    assert a["ids"] == b["ids"] and a["text"] == b["text"]
    assert a["ids"] != c["ids"]


def test_prompt_longer_than_ctx(models):
    assert_clean_error(run_silica("run", models["llama3"], MSG, "--ctx", 4), "longer than the context of 4")


def test_text_needs_tokenizer(models, tmp_path):
    import shutil
    d = tmp_path / "notok"
    shutil.copytree(models["mistral"], d)
    (d / "tokenizer.json").unlink()
    assert_clean_error(run_silica("run", d, "hello"), "tokenizer.json", "--ids")
    out = _silica_json(d, "--ids", "1,2,3", "--max-tokens", 2)
    assert out["text"] is None and len(out["ids"]) == 2


def test_default_model_env(models):
    env = {"SILICA_DEFAULT_MODEL": str(models["llama3"])}
    a = run_silica("run", MSG, "--prompt-ids", env=env, check=True).out
    b = run_silica("run", models["llama3"], MSG, "--prompt-ids", check=True).out
    assert a == b


# ---------------------------------------------------------------- ppl


def _ppl_ref(model, tok, text, N):
    import mlx.core as mx
    ids = [tok.bos_token_id] + tok.encode(text, add_special_tokens=False)
    total, count = 0.0, 0
    for s in range(0, len(ids) - 1, N):
        inp = ids[s:s + N]
        tgt = ids[s + 1:s + N + 1]
        logits = np.array(model(mx.array(inp[:len(tgt)])[None]).astype(mx.float32))[0].astype(np.float64)
        m = logits.max(-1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(logits - m).sum(-1)))
        total += float((lse - logits[np.arange(len(tgt)), tgt]).sum())
        count += len(tgt)
    return total / count, count


@pytest.mark.parametrize("N", [512, 7])
def test_ppl_matches_mlx_lm(models, mlx_models, tmp_path, N):
    """Exact by default: the f32 model's KV cache is f32 as in mlx_lm, so the
    default nll agrees to ~1e-10 relative; an f16 cache (--kv f16) moves it by
    ~1e-6 (this random model's logits are nearly flat, so errors average out)."""
    text = ("The quick brown fox jumps over the lazy dog. " * 3) + "Ünïcödé 日本語 — fin.\n"
    f = tmp_path / "t.txt"
    f.write_text(text, encoding="utf-8")
    model, tok = mlx_models["llama3"]
    nll, count = _ppl_ref(model, tok, text, N)
    r = run_silica("ppl", models["llama3"], "--file", f, "--ctx", N, "--json", check=True)
    out = r.json()
    assert list(out) == ["ppl", "nll", "tokens"]
    assert out["tokens"] == count
    tol = 5e-8
    assert abs(out["nll"] - nll) <= tol * abs(nll)
    assert abs(out["ppl"] - np.exp(nll)) <= 2 * tol * np.exp(nll)
    f16 = run_silica("ppl", models["llama3"], "--file", f, "--ctx", N, "--kv", "f16", "--json", check=True).json()
    assert abs(f16["nll"] - nll) > tol * abs(nll)   # the tolerance tells the two caches apart


def test_ppl_bad_input(models, tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("")
    assert_clean_error(run_silica("ppl", models["mistral"], "--file", f), "empty.txt", "too little text")
    assert_clean_error(run_silica("ppl", models["mistral"], "--file", tmp_path / "nope.txt"), "nope.txt")
    assert_clean_error(run_silica("ppl", models["mistral"]), "--file")


# ---------------------------------------------------------------- chat


def test_chat_pipe(models, mlx_models):
    d = models["llama3"]
    model, tok = mlx_models["llama3"]
    script = "hello\n/system " + SYSTEM + "\n" + MSG + "\nand again\\\nplease\n/reset\n\"\"\"\nline one\nline two\n\"\"\"\n/quit\nnot read\n"
    r = run_silica("chat", d, "--max-tokens", 6, "--kv", "f32", input=script, check=True)
    # not a terminal: each turn marked, "User: <message>" then "Assistant: <answer>"
    assert r.out.startswith("User: hello\nAssistant: ")
    lines = [l.removeprefix("Assistant: ") for l in r.out.split("\n")
             if not l.startswith("User: ") and l not in ("please", "line two")]
    # turn 1 (hello), reset by /system, turn MSG, turn "and again\nplease", reset, turn "line one\nline two"
    ans1 = lines[0]
    _, t1 = _mlx_greedy(model, tok, tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False,
                                                           add_generation_prompt=True), 6)
    assert ans1 == t1
    assert lines[1] == "[conversation reset]"
    _, t2 = _mlx_greedy(model, tok, _mlx_prompt(tok, SYSTEM), 6)
    assert lines[2] == t2
    conv = _messages(SYSTEM) + [{"role": "assistant", "content": t2}, {"role": "user", "content": "and again\nplease"}]
    p3 = tok.encode(tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True), add_special_tokens=False)
    _, t3 = _mlx_greedy(model, tok, p3, 6)
    assert lines[3] == t3   # second turn: KV prefix reused, same answer as a fresh mlx_lm run
    assert lines[4] == "[conversation reset]"
    conv = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "line one\nline two"}]
    p4 = tok.encode(tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True), add_special_tokens=False)
    assert lines[5] == _mlx_greedy(model, tok, p4, 6)[1]
    assert lines[6:] == [""]


def test_chat_ctrl_c_stops_answer_not_program(models):
    """Through a pty: SIGINT during a long answer prints [stopped] and the REPL goes on."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(SILICA), [str(SILICA), "chat", str(models["llama3"]), "--max-tokens", "100000",
                               "--ctx", "100000", "--force"])   # past the model's 2048 positions
    out = b""

    def read_until(pat, timeout=60):
        nonlocal out
        end = time.time() + timeout
        while pat not in out and time.time() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        return pat in out

    try:
        assert read_until(b">>> ")
        os.write(fd, b"tell me a long story\n")
        time.sleep(1.5)
        os.kill(pid, signal.SIGINT)
        assert read_until(b"[stopped]"), out[-500:]
        assert read_until(b">>> ")
        os.write(fd, b"/quit\n")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_chat_bad_model(tmp_path):
    assert_clean_error(run_silica("chat", tmp_path / "missing"), "missing")
