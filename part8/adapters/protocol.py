"""protocol.py — the engine side of silica's adapter protocol (PROTOCOL.md),
shared by the *_adapter.py files: hello, then one JSON answer line per
request line (load / eval / quit) on stdout.

An adapter supplies `open_engine()` returning (version, formats, load) or
raising ImportError when its framework is missing; `load(path, n_ctx)`
returns an object with `vocab`, `prompt(ids) -> float32 [n, vocab]` (every
position's logits, the cache starting empty) and `next(id) -> float32
[vocab]` (the logits after one more id, continuing that cache).
Greedy ids are argmax (first index on ties); EOS does not stop them.
"""
import base64
import json
import resource
import sys
import time


def peak_rss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _eval(model, req):
    import numpy as np

    ids = [int(i) for i in req["ids"]]
    max_tokens = int(req.get("max_tokens", 0))
    if not ids:
        raise ValueError('eval: "ids" must be a non-empty array')
    t0 = time.perf_counter()
    logits = np.ascontiguousarray(model.prompt(ids), dtype="<f4")
    t1 = t_first = time.perf_counter()
    greedy, last = [], logits[-1]
    for k in range(max_tokens):
        greedy.append(int(np.argmax(last)))
        if k == 0:
            t_first = time.perf_counter()
        if k + 1 < max_tokens:
            last = np.asarray(model.next(greedy[-1]), dtype=np.float32)
    t2 = time.perf_counter()
    return {"logits_f32": base64.b64encode(logits.tobytes()).decode("ascii"), "shape": list(logits.shape),
            "greedy": greedy, "prompt_s": t1 - t0, "ttft_s": t_first - t0 if max_tokens else 0,
            "gen_s": t2 - t_first if max_tokens else 0, "peak_rss_bytes": peak_rss_bytes()}


def serve(engine, open_engine):
    try:
        import numpy  # noqa: F401  (every adapter needs it)
        version, formats, load = open_engine()
    except ImportError as e:
        _send({"protocol": 1, "engine": engine, "error": f"not installed: {e}"})
        return
    _send({"protocol": 1, "engine": engine, "version": version, "formats": formats})
    model = None
    for line in sys.stdin:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "quit":
                break
            if op == "load":
                t0 = time.perf_counter()
                model = load(req["model"], int(req["n_ctx"]))
                _send({"ok": True, "vocab": model.vocab, "load_s": time.perf_counter() - t0})
            elif op == "eval":
                if model is None:
                    raise ValueError("eval: no model loaded")
                _send(_eval(model, req))
            else:
                raise ValueError(f"unknown op {op!r} (load, eval, quit)")
        except Exception as e:  # one error answer, and the loop goes on
            msg = str(e).strip().splitlines()
            _send({"error": f"{engine}: {type(e).__name__}: {msg[-1] if msg else ''}"})
