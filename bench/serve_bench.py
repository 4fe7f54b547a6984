#!/usr/bin/env python3
"""Benchmark OpenAI-compatible servers: aggregate generated tokens/s and p50/p99
time to first token at 1, 8 and 32 concurrent clients, side by side.

Each client sends streamed POST /v1/chat/completions (--completions: /v1/completions) requests one after the
other (stdlib HTTP, a new connection per request); TTFT is the time from
sending a request to its first content chunk, generated tokens are the
response's usage.completion_tokens (stream_options.include_usage), else its
content chunks.  Aggregate tok/s = all tokens generated in a round / the
round's wall time.

Servers are given as running URLs (--url NAME=URL[#MODEL]) or started here
and stopped afterwards (loopback, a free port each):
  --silica BIN --silica-model MODEL      silica serve MODEL --parallel P
  --llama-server BIN --gguf FILE         llama-server -m FILE --parallel P -c CTX*P
  --mlx-server CMD --mlx-model DIR       CMD --model DIR (CMD: mlx_lm.server, or "python -m mlx_lm.server")

usage: bench/serve_bench.py [--silica build/silica --silica-model models/demo] [--llama-server ...]
                            [--url NAME=URL[#MODEL]]... [--concurrency 1,8,32] [--requests N]
                            [--max-tokens 128] [--prompt TEXT] [--ctx 2048] [--json]
"""
import argparse
import http.client
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DEFAULT_PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A server: its base URL, the model id to ask for, and the process when started here."""

    def __init__(self, name, url, model=None, proc=None):
        self.name, self.url, self.model, self.proc = name, url.rstrip("/"), model, proc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def get_json(url, path, timeout=5):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, json.loads(body) if body else None
    finally:
        c.close()


def wait_ready(t, timeout):
    """Until GET /v1/models answers 200 (a model loaded); fills t.model if unset."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if t.proc and t.proc.poll() is not None:
            sys.exit(f"serve_bench: {t.name} exited with {t.proc.returncode} before it was ready")
        try:
            status, j = get_json(t.url, "/v1/models")
            if status == 200:
                if not t.model and j and j.get("data"):
                    t.model = j["data"][0]["id"]
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    sys.exit(f"serve_bench: {t.name} at {t.url} not ready after {timeout} s")


def start(name, cmd, port, log_dir, model=None, env=None):
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
    log = open(os.path.join(log_dir, f"{name}.log"), "w") if log_dir else subprocess.DEVNULL
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env={**os.environ, **(env or {})})
    return Target(name, f"http://127.0.0.1:{port}", model, p)


def start_targets(a):
    """Starters, one per server, in order: each starts its server (or names a running one) when called, so that
    a server is measured alone — a second one loading or warming up beside it would take the CPUs."""
    ts = []
    if a.silica:
        port = free_port()
        ts.append(lambda port=port: start(
            "silica", [a.silica, "serve", a.silica_model, "--port", str(port), "--parallel", str(a.parallel),
                       "--ctx", str(a.ctx), "--log-format", "none"], port, a.log_dir))
    if a.llama_server:
        port = free_port()
        ts.append(lambda port=port: start(
            "llama-server", [a.llama_server, "-m", a.gguf, "--host", "127.0.0.1", "--port", str(port),
                             "--parallel", str(a.parallel), "-c", str(a.ctx * a.parallel)], port, a.log_dir))
    if a.mlx_server:
        port = free_port()
        # mlx_lm.server answers /v1/models from the Hugging Face cache (an error when the folder does not
        # exist) and names a local --model by its path
        cache = os.environ.get("HF_HUB_CACHE") or os.path.join(tempfile.mkdtemp(prefix="serve_bench-"), "hub")
        os.makedirs(cache, exist_ok=True)
        ts.append(lambda port=port, cache=cache: start(
            "mlx_lm.server", shlex.split(a.mlx_server) + ["--model", a.mlx_model, "--host", "127.0.0.1", "--port",
                                                           str(port)], port, a.log_dir, model=a.mlx_model,
            env={"HF_HUB_CACHE": cache}))
    for spec in a.url:
        name, _, rest = spec.partition("=")
        if not rest:
            sys.exit(f"serve_bench: --url needs NAME=URL[#MODEL], got '{spec}'")
        url, _, model = rest.partition("#")
        ts.append(lambda name=name, url=url, model=model: Target(name, url, model or None))
    return ts


def one_request(t, a, body):
    """Send one streamed chat request: (ttft_s, tokens, seconds, error or None)."""
    u = urllib.parse.urlsplit(t.url)
    t0 = time.perf_counter()
    ttft, chunks, usage_tokens = None, 0, None
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=a.timeout)
    try:
        c.request("POST", (u.path or "") + ("/v1/completions" if a.completions else "/v1/chat/completions"), body=body,
                  headers={"Content-Type": "application/json", "Authorization": "Bearer " + a.api_key})
        r = c.getresponse()
        if r.status != 200:
            return None, 0, time.perf_counter() - t0, f"HTTP {r.status}: {r.read()[:200]!r}"
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            ev = json.loads(data)
            if ev.get("usage"):
                usage_tokens = ev["usage"].get("completion_tokens")
            for ch in ev.get("choices") or []:
                if (ch.get("delta") or {}).get("content") or ch.get("text"):
                    chunks += 1
                    if ttft is None:
                        ttft = time.perf_counter() - t0
    except (OSError, ValueError, http.client.HTTPException) as e:
        return None, 0, time.perf_counter() - t0, f"{type(e).__name__}: {e}"
    finally:
        c.close()
    return ttft, usage_tokens if usage_tokens is not None else chunks, time.perf_counter() - t0, None


def percentile(xs, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def request_body(t, a, text, max_tokens, **extra):
    """A chat request, or with --completions a raw-prompt completion (models without a chat template)."""
    b = {"model": t.model, "max_tokens": max_tokens, "seed": 1, "stream": True, **extra}
    if a.completions:
        b["prompt"] = text
    else:
        b["messages"] = [{"role": "user", "content": text}]
    return b


def run_round(t, a, conc, n_requests):
    body = request_body(t, a, a.prompt, a.max_tokens, temperature=a.temperature,
                        stream_options={"include_usage": True})
    if a.ignore_eos:
        body["ignore_eos"] = True   # same length for every server (silica, llama-server)
    raw = json.dumps(body).encode()
    results, lock, next_i = [], threading.Lock(), [0]

    def client():
        while True:
            with lock:
                if next_i[0] >= n_requests:
                    return
                next_i[0] += 1
            r = one_request(t, a, raw)
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    th = [threading.Thread(target=client) for _ in range(conc)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if r[3] is None]
    ttfts = [r[0] for r in ok if r[0] is not None]
    tokens = sum(r[1] for r in ok)
    return {"concurrency": conc, "requests": len(results), "errors": len(results) - len(ok),
            "first_error": next((r[3] for r in results if r[3]), None), "tokens": tokens, "wall_s": wall,
            "tok_s": tokens / wall if wall > 0 else 0.0, "ttft_p50_s": percentile(ttfts, 0.5),
            "ttft_p99_s": percentile(ttfts, 0.99)}


def fmt(x, unit):
    if x is None:
        return "-"
    return f"{x:.1f}" if unit == "tok/s" else f"{x * 1000:.0f}"


def table(report, concs):
    names = [t["name"] for t in report["targets"]]
    head = ["clients"] + [f"{n} {col}" for n in names for col in ("tok/s", "TTFT p50 ms", "TTFT p99 ms")]
    rows = []
    for c in concs:
        row = [str(c)]
        for t in report["targets"]:
            r = next(x for x in t["rounds"] if x["concurrency"] == c)
            bad = f" ({r['errors']} failed)" if r["errors"] else ""
            row += [fmt(r["tok_s"], "tok/s") + bad, fmt(r["ttft_p50_s"], "ms"), fmt(r["ttft_p99_s"], "ms")]
        rows.append(row)
    w = [max(len(x) for x in col) for col in zip(head, *rows)]
    out = ["  ".join(h.rjust(k) for h, k in zip(head, w))]
    out += ["  ".join(v.rjust(k) for v, k in zip(row, w)) for row in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", action="append", default=[], help="a running server: NAME=URL[#MODEL] (repeatable)")
    ap.add_argument("--silica", help="silica binary to start (`silica serve`)")
    ap.add_argument("--silica-model", default="models/demo", help="model for silica serve (default models/demo)")
    ap.add_argument("--llama-server", help="llama-server binary to start")
    ap.add_argument("--gguf", help="GGUF model for llama-server")
    ap.add_argument("--mlx-server", help='command starting mlx_lm.server (e.g. "mlx_lm.server")')
    ap.add_argument("--mlx-model", help="MLX model directory for mlx_lm.server")
    ap.add_argument("--concurrency", default="1,8,32", help="client counts (default 1,8,32)")
    ap.add_argument("--requests", type=int, default=0, help="requests per round (default: 2 per client, at least 4)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--completions", action="store_true",
                    help="POST /v1/completions with the raw prompt (for models without a chat template)")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--no-ignore-eos", dest="ignore_eos", action="store_false",
                    help="let answers end at EOS (default: ignore_eos, so every answer has --max-tokens)")
    ap.add_argument("--parallel", type=int, default=32, help="slots of the servers started here (default 32)")
    ap.add_argument("--ctx", type=int, default=2048, help="context per slot of the servers started here")
    ap.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "none"))
    ap.add_argument("--timeout", type=float, default=600, help="seconds per request")
    ap.add_argument("--ready-timeout", type=float, default=600, help="seconds to wait for a started server")
    ap.add_argument("--log-dir", help="write the started servers' output here")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    if a.llama_server and not a.gguf:
        ap.error("--llama-server needs --gguf")
    if a.mlx_server and not a.mlx_model:
        ap.error("--mlx-server needs --mlx-model")
    try:
        concs = [int(x) for x in a.concurrency.split(",") if x]
        if not concs or min(concs) < 1:
            raise ValueError
    except ValueError:
        ap.error(f"--concurrency must be positive integers separated by commas, got '{a.concurrency}'")
    starters = start_targets(a)
    if not starters:
        ap.error("no server: give --silica, --llama-server, --mlx-server or --url")
    report = {"prompt": a.prompt, "max_tokens": a.max_tokens, "ignore_eos": a.ignore_eos, "targets": []}
    for starter in starters:   # one server at a time: started, measured, stopped
        t = starter()
        try:
            wait_ready(t, a.ready_timeout)
            warm = request_body(t, a, "hi", 4, temperature=0)
            if a.ignore_eos:
                warm["ignore_eos"] = True
            one_request(t, a, json.dumps(warm).encode())   # warm-up: 4 tokens
            rounds = [run_round(t, a, c, a.requests or max(4, 2 * c)) for c in concs]
            report["targets"].append({"name": t.name, "url": t.url, "model": t.model, "rounds": rounds})
        finally:
            t.stop()
    print(json.dumps(report, indent=2) if a.json else table(report, concs))
    return 1 if any(r["errors"] for t in report["targets"] for r in t["rounds"]) else 0


if __name__ == "__main__":
    sys.exit(main())
