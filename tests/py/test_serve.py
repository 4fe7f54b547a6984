"""`silica serve` through the real clients: the `openai` and `ollama` Python
packages, plus raw HTTP for what clients never send (malformed bodies,
oversize, slow and vanishing clients).

Models: the shipped demo model (models/demo, no chat template) and a tiny
random-weight llama carrying the real Llama 3 tokenizer and chat template
(hf_models.py).  Oracles: transformers' apply_chat_template for the prompt
the server builds, `silica run` for the answer it gives (same engine, same
greedy decoding), numpy's log-softmax of `silica logits` for the logprobs,
HF tokenizers for /tokenize, and the answer of a request sent alone for the
same request sent among 31 others (continuous batching must not change a
token).
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import ollama
import pytest

from conftest import ROOT, SILICA, run_silica
from hf_models import make_hf_model

DEMO = ROOT / "models" / "demo"


class Server:
    """A `silica serve` process on a free loopback port."""

    def __init__(self, *args, env=None):
        e = dict(os.environ)
        e.pop("SILICA_API_KEY", None)
        if env:
            e.update(env)
        self.p = subprocess.Popen([str(SILICA), "serve", *map(str, args), "--port", "0", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError(f"serve did not start: {self.p.stderr.read()}")
        info = json.loads(line)
        self.port = info["port"]
        self.models = info["models"]
        self.url = f"http://127.0.0.1:{self.port}"

    def openai(self, **kw):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=kw.pop("api_key", "none"), max_retries=0, **kw)

    def ollama(self, **kw):
        return ollama.Client(host=self.url, **kw)

    def metrics(self):
        text = httpx.get(self.url + "/metrics").text
        return {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln and not ln.startswith("#")}

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise
        err = self.p.stderr.read()
        self.p.stdout.close()
        self.p.stderr.close()
        return self.p.returncode, err


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve") / "llama3"
    make_hf_model(d, "llama", weights_dtype="float32", dtype="float32", tokenizer="llama3", hidden=32, heads=2,
                  kv_heads=1, inter=64, vocab=128256, tied=True, seed=3)
    c = json.loads((d / "config.json").read_text())
    c["eos_token_id"] = 128009
    (d / "config.json").write_text(json.dumps(c))
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001, 128009]}))
    return d


@pytest.fixture(scope="module")
def srv(llama3):
    s = Server(DEMO, llama3, "--parallel", "32", "--ctx", "512", "--timeout", "3", "--max-body", "64K")
    yield s
    rc, err = s.stop()
    assert rc == 0, err


MSGS = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Write a haiku about the sea."}]


def hf_chat_ids(model_dir, messages):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


# ---- the OpenAI API ----

def test_models_listed(srv):
    ids = [m.id for m in srv.openai().models.list().data]
    assert ids == ["demo", "llama3"] == srv.models


def test_chat_equals_silica_run(srv, llama3):
    """The server's greedy answer = `silica run`'s; its prompt = transformers' chat template."""
    r = srv.openai().chat.completions.create(model="llama3", messages=MSGS, max_tokens=12, temperature=0, seed=1)
    want = run_silica("run", llama3, MSGS[1]["content"], "--system", MSGS[0]["content"], "--max-tokens", "12",
                      "--json", check=True).json()
    assert r.choices[0].message.content == want["text"]
    assert r.choices[0].message.role == "assistant"
    assert r.usage.prompt_tokens == len(hf_chat_ids(llama3, MSGS)) == want["prompt_tokens"]
    assert r.usage.completion_tokens == want["generated_tokens"]
    assert r.choices[0].finish_reason == ("length" if want["stop_reason"] == "length" else "stop")
    assert r.model == "llama3" and r.object == "chat.completion"


def test_stream_equals_plain(srv):
    kw = dict(model="demo", messages=[{"role": "user", "content": "Once upon a time"}], max_tokens=24,
              temperature=0.8, top_p=0.95, seed=7)
    plain = srv.openai().chat.completions.create(**kw)
    chunks = list(srv.openai().chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_text_and_ids(srv):
    c = srv.openai()
    a = c.completions.create(model="demo", prompt="The little robot", max_tokens=16, temperature=0.7, seed=3)
    ids = httpx.post(srv.url + "/tokenize", json={"content": "The little robot", "model": "demo"}).json()["tokens"]
    b = c.completions.create(model="demo", prompt=ids, max_tokens=16, temperature=0.7, seed=3)
    assert a.choices[0].text == b.choices[0].text and a.choices[0].text
    assert a.usage.prompt_tokens == len(ids)
    streamed = "".join(x.choices[0].text for x in c.completions.create(
        model="demo", prompt="The little robot", max_tokens=16, temperature=0.7, seed=3, stream=True) if x.choices)
    assert streamed == a.choices[0].text


def test_seed_and_n(srv):
    c = srv.openai()
    kw = dict(model="demo", messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=16, temperature=1.0)
    a = c.chat.completions.create(seed=11, n=3, **kw)
    b = c.chat.completions.create(seed=11, **kw)
    d = c.chat.completions.create(seed=12, **kw)
    assert [x.index for x in a.choices] == [0, 1, 2]
    assert a.choices[0].message.content == b.choices[0].message.content   # choice i samples with seed + i
    assert a.choices[1].message.content == d.choices[0].message.content
    assert 3 <= a.usage.completion_tokens <= 48


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def test_logprobs_equal_silica_logits(srv, llama3):
    r = srv.openai().chat.completions.create(model="llama3", messages=MSGS, max_tokens=6, temperature=0, seed=0,
                                             logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    gen = [e.model_extra["id"] for e in content]
    prompt = hf_chat_ids(llama3, MSGS)
    out = run_silica("logits", llama3, "--ids", ",".join(map(str, prompt + gen[:-1])), "--json", check=True)
    lsm = log_softmax(json.loads(out.out)["logits"])[len(prompt) - 1:]
    for k, e in enumerate(content):
        row = lsm[k]
        assert gen[k] == int(np.argmax(row))               # greedy
        assert abs(e.logprob - row[gen[k]]) < 1e-4
        top = np.argsort(-row, kind="stable")[:3]
        assert [a.model_extra["id"] for a in e.top_logprobs] == list(top)
        assert np.allclose([a.logprob for a in e.top_logprobs], row[top], atol=1e-4)
        assert e.token == e.top_logprobs[0].token


def test_alone_equals_among_31(srv):
    """Continuous batching: the same request alone and among 31 concurrent ones gives identical tokens."""
    c = srv.openai()

    def ask(i):
        r = c.completions.create(model="demo", prompt=f"Story number {i}: Once", max_tokens=32, temperature=0.9,
                                 seed=100 + i, logprobs=1, extra_body={"ignore_eos": True, "top_k": 40})
        return r.choices[0].text, r.choices[0].logprobs.token_logprobs

    alone = ask(0)
    with ThreadPoolExecutor(32) as ex:
        crowd = list(ex.map(ask, range(32)))
    assert crowd[0][0] == alone[0]
    assert crowd[0][1] == alone[1]   # bit-identical logprobs, not just the same text
    assert len({t for t, _ in crowd}) > 16   # they really were different requests


def test_prompt_cache_multi_turn(srv):
    c = srv.openai()
    msgs = [{"role": "user", "content": "Once upon a time there was a fox"}]
    a = c.chat.completions.create(model="demo", messages=msgs, max_tokens=8, temperature=0, seed=0)
    msgs += [{"role": "assistant", "content": a.choices[0].message.content},
             {"role": "user", "content": "and then?"}]
    b = c.chat.completions.create(model="demo", messages=msgs, max_tokens=8, temperature=0, seed=0)
    cached = b.usage.prompt_tokens_details.cached_tokens
    assert cached >= a.usage.prompt_tokens - 1, (cached, a.usage.prompt_tokens)


# ---- the Ollama API ----

def test_ollama_chat_generate(srv):
    cl = srv.ollama()
    opts = {"temperature": 0.7, "seed": 5, "num_predict": 16}
    msgs = [{"role": "user", "content": "Once upon a time"}]
    plain = cl.chat(model="demo", messages=msgs, options=opts, stream=False)
    parts = list(cl.chat(model="demo", messages=msgs, options=opts, stream=True))
    assert "".join(p.message.content for p in parts) == plain.message.content
    assert parts[-1].done and plain.done and plain.eval_count == parts[-1].eval_count
    assert plain.message.role == "assistant"
    same = srv.openai().chat.completions.create(model="demo", messages=msgs, max_tokens=16, temperature=0.7, seed=5,
                                                extra_body={"top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1})
    assert same.choices[0].message.content == plain.message.content   # ollama's defaults, spelled out
    g = cl.generate(model="demo:latest", prompt="The sea", options=opts)
    gs = "".join(p.response for p in cl.generate(model="demo", prompt="The sea", options=opts, stream=True))
    assert g.response == gs and g.done_reason in ("stop", "length") and g.context


def test_ollama_list_show(srv):
    cl = srv.ollama()
    names = [m.model for m in cl.list().models]
    assert names == ["demo", "llama3"]
    s = cl.show("llama3")
    assert s.details.family == "llama" and s.modelinfo["general.architecture"] == "llama"
    with pytest.raises(ollama.ResponseError) as e:
        cl.show("nope")
    assert e.value.status_code == 404


# ---- other routes ----

def test_tokenize_matches_hf(srv):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(DEMO / "tokenizer.json"))
    text = "Hello world, the quick brown fox."
    r = httpx.post(srv.url + "/tokenize", json={"content": text, "model": "demo"}).json()
    assert r["tokens"] == tok.encode(text).ids
    d = httpx.post(srv.url + "/detokenize", json={"tokens": r["tokens"], "model": "demo"}).json()
    assert d["content"] == tok.decode(r["tokens"], skip_special_tokens=False)


def test_health_metrics_page(srv):
    assert httpx.get(srv.url + "/health").json() == {"status": "ok"}
    m = srv.metrics()
    for k in ("silica_requests_total", "silica_generated_tokens_total", "silica_queue_depth",
              "silica_kv_cache_bytes", "silica_resident_memory_bytes"):
        assert k in m
    assert m["silica_slots_total"] == 64 and m["silica_resident_memory_bytes"] > 0
    page = httpx.get(srv.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>" in page.text and "://" not in page.text   # self-contained: no CDN, no external URL


# ---- bad requests ----

def err_of(resp):
    return resp.json()["error"]


@pytest.mark.badinput
def test_bad_requests_name_the_field(srv):
    u = srv.url + "/v1/chat/completions"
    ok_msgs = [{"role": "user", "content": "hi"}]
    r = httpx.post(u, content=b'{"messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in err_of(r)["message"]
    for body, param in [({"messages": ok_msgs, "temperature": "hot"}, "temperature"),
                        ({"messages": ok_msgs, "max_tokens": -1}, "max_tokens"),
                        ({"messages": ok_msgs, "wibble": 1}, "wibble"),
                        ({"messages": "hi"}, "messages"),
                        ({"messages": ok_msgs, "tools": [{"type": "function", "function": {}}]}, "tools[0]"),
                        ({"messages": ok_msgs, "response_format": {"type": "json_schema"}}, "response_format")]:
        r = httpx.post(u, json=body)
        assert r.status_code == 400, body
        assert err_of(r)["param"] == param and err_of(r)["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as e:
        srv.openai().chat.completions.create(model="demo", messages=ok_msgs, top_p=3)
    assert "top_p" in str(e.value)
    with pytest.raises(openai.NotFoundError):
        srv.openai().chat.completions.create(model="no-such-model", messages=ok_msgs)
    r = httpx.post(u, json={"messages": [{"role": "user", "content": "x" * 70000}]})
    assert r.status_code == 413
    r = httpx.post(srv.url + "/v1/completions", json={"prompt": [999999], "model": "demo"})
    assert r.status_code == 400 and "vocabulary" in err_of(r)["message"]
    r = httpx.post(srv.url + "/v1/completions", json={"prompt": "word " * 600, "model": "demo"})
    assert r.status_code == 400 and "context" in err_of(r)["message"]
    r = httpx.post(srv.url + "/api/chat", json={"model": "demo", "messages": ok_msgs, "options": {"warp": 1}})
    assert r.status_code == 400 and "options.warp" in r.json()["error"]
    assert httpx.get(u).status_code == 405
    assert httpx.get(srv.url + "/v2/nothing").status_code == 404
    assert httpx.get(srv.url + "/health").status_code == 200   # still serving


@pytest.mark.badinput
def test_slow_client_is_dropped(srv):
    """A body that does not arrive within --timeout (3 s) closes the connection; nothing is queued."""
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"mess")
        s.settimeout(20)
        while True:   # trickle a byte a second: still cut at the deadline
            try:
                s.sendall(b" ")
            except OSError:
                break
            try:
                s.settimeout(1)
                if s.recv(4096) == b"":
                    break
            except socket.timeout:
                pass
            except OSError:
                break
            assert time.time() - t0 < 15
    assert time.time() - t0 >= 2.5
    assert httpx.get(srv.url + "/health").status_code == 200


def test_disconnect_frees_the_slot(srv):
    before = srv.metrics()
    with httpx.Client(timeout=30) as h:
        with h.stream("POST", srv.url + "/v1/completions",
                      json={"model": "demo", "prompt": "Once", "max_tokens": 400, "stream": True,
                            "ignore_eos": True, "temperature": 1, "seed": 1}) as r:
            it = r.iter_lines()
            got = [next(it) for _ in range(3)]
            assert got[0].startswith("data: ")
    for _ in range(100):
        m = srv.metrics()
        if m["silica_slots_active"] == 0 and m["silica_requests_cancelled_total"] > before[
                "silica_requests_cancelled_total"]:
            break
        time.sleep(0.1)
    assert m["silica_slots_active"] == 0
    assert m["silica_requests_cancelled_total"] == before["silica_requests_cancelled_total"] + 1
    assert m["silica_generated_tokens_total"] - before["silica_generated_tokens_total"] < 400


# ---- security defaults, drain ----

def test_api_key_and_loopback():
    s = Server(DEMO, "--api-key", "s3cret", "--parallel", "1")
    try:
        with pytest.raises(openai.AuthenticationError):
            s.openai(api_key="wrong").models.list()
        assert [m.id for m in s.openai(api_key="s3cret").models.list().data] == ["demo"]
        assert httpx.get(s.url + "/health").status_code == 200   # health checks need no key
        assert httpx.get(s.url + "/metrics").status_code == 401
    finally:
        rc, err = s.stop()
    assert rc == 0
    assert "warning" not in err   # loopback: no warning


def test_sigterm_drains_in_flight():
    s = Server(DEMO, "--parallel", "2")
    res = {}

    def ask():
        res["r"] = s.openai(timeout=600).completions.create(model="demo", prompt="Once", max_tokens=64,
                                                            temperature=1, seed=2, extra_body={"ignore_eos": True})

    t = threading.Thread(target=ask)
    t.start()
    for _ in range(200):   # wait until it is generating
        if s.metrics()["silica_slots_active"] == 1:
            break
        time.sleep(0.02)
    rc, err = s.stop(signal.SIGTERM, timeout=600)   # generous: sanitizer builds are slow
    t.join(30)
    assert rc == 0, err
    assert res["r"].usage.completion_tokens == 64 and res["r"].choices[0].finish_reason == "length"
    with pytest.raises(httpx.ConnectError):
        httpx.get(s.url + "/health")


@pytest.mark.badinput
def test_bad_options_exit_2():
    r = run_silica("serve", DEMO, "--port", "99999")
    assert r.rc == 2 and "--port" in r.err and len(r.err.strip().splitlines()) == 1
    r = run_silica("serve", DEMO, "--log-format", "xml")
    assert r.rc == 2 and "--log-format" in r.err
    r = run_silica("serve", "/no/such/model", "--port", "0")
    assert r.rc == 2 and "/no/such/model" in r.err and len(r.err.strip().splitlines()) == 1


def test_load_1000_requests_32_concurrent():
    """Bounded load on loopback: every request answered, RSS flat after warm-up, no fd leak."""
    s = Server(DEMO, "--parallel", "32", "--ctx", "256", "--log-format", "none")
    try:
        fds = lambda: len(os.listdir(f"/proc/{s.p.pid}/fd"))
        c = s.openai(timeout=120)

        def ask(i):
            r = c.completions.create(model="demo", prompt=f"Request {i % 50}", max_tokens=3, temperature=0.8, seed=i)
            return r.usage.completion_tokens

        with ThreadPoolExecutor(32) as ex:
            assert all(n >= 1 for n in ex.map(ask, range(200)))        # warm-up
            rss0, fd0 = s.metrics()["silica_resident_memory_bytes"], fds()
            assert all(n >= 1 for n in ex.map(ask, range(200, 1000)))
        c.close()
        time.sleep(0.5)
        m = s.metrics()
        assert m["silica_requests_total"] >= 1000 and m["silica_request_errors_total"] == 0
        assert m["silica_resident_memory_bytes"] < rss0 + 16 * 2**20, (rss0, m["silica_resident_memory_bytes"])
        assert fds() <= fd0, (fd0, fds())
    finally:
        rc, err = s.stop()
    assert rc == 0, err


def test_part8_script_and_example(tmp_path):
    """The article's script runs on the shipped demo model; the embedding example serves and drains."""
    env = dict(os.environ, SILICA=str(SILICA))
    p = subprocess.run(["sh", str(ROOT / "part8" / "scripts" / "serve_demo.sh")], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert '"object":"text_completion"' in p.stdout and '"done":true' in p.stdout and p.stdout.endswith("stopped\n")
    exe = Path(os.environ.get("SILICA_EXAMPLES", SILICA.parent / "examples")) / "part8" / "serve_embed"
    e = subprocess.Popen([str(exe), str(DEMO)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = e.stdout.readline().split()[-1]
        r = openai.OpenAI(base_url=url + "/v1", api_key="none").completions.create(
            model="demo", prompt="Once", max_tokens=4, seed=1)
        assert r.usage.completion_tokens == 4
    finally:
        e.send_signal(signal.SIGTERM)
        assert e.wait(30) == 0
        e.stdout.close()
        e.stderr.close()
