"""protocol.py — the engine side of silica's adapter protocol (PROTOCOL.md),
shared by the *_adapter.py files: hello, then one JSON answer line per
request line (load / eval / quit) on stdout.

An adapter supplies `open_engine()` returning (version, formats, load) or
raising ImportError when its framework is missing; `load(path, n_ctx)`
returns an object with `vocab`, `prompt(ids) -> float32 [n, vocab]` (every
position's logits, the cache starting empty: a numpy array, or a list of
array('f') rows for an adapter without numpy) and `next(id) -> float32
[vocab]` (the logits after one more id, continuing that cache).
Greedy ids are argmax (first index on ties); EOS does not stop them.
`"want": "topk"` answers each position's K largest logits (ties: lower id
first) with their ids and the row's log-sum-exp instead of the whole rows.
"""
import array
import base64
import json
import math
import resource
import sys
import time


def peak_rss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def topk(logits, k):
    """(ids int32 [n, k], logits float32 [n, k], log-sum-exp of each whole row in double)."""
    import numpy as np

    order = np.argsort(-logits, axis=1, kind="stable")[:, :k].astype("<i4")
    vals = np.take_along_axis(logits, order, axis=1).astype("<f4")
    x = logits.astype(np.float64)
    m = x.max(axis=1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    return order.tobytes(), vals.tobytes(), [float(v) for v in lse]


class Rows:
    """Logits as a list of array('f') rows, for an adapter that must not load numpy (the
    llama.cpp one: importing numpy first made libllama crash loading a model).  The same
    answers as the numpy path: argmax first index on ties, stable top-k, log-sum-exp in double."""

    def __init__(self, rows):
        self.rows = rows
        self.shape = (len(rows), len(rows[0]) if rows else 0)

    @staticmethod
    def argmax(row):
        return max(range(len(row)), key=row.__getitem__)

    def tobytes(self):
        return b"".join(r.tobytes() for r in self.rows)

    def topk(self, k):
        ids, vals, lse = array.array("i"), array.array("f"), []
        for r in self.rows:
            order = sorted(range(len(r)), key=lambda i: -r[i])[:k]
            ids.extend(order)
            vals.extend(r[i] for i in order)
            m = max(r)
            lse.append(m + math.log(math.fsum(math.exp(v - m) for v in r)))
        return ids.tobytes(), vals.tobytes(), lse


def _b64(b):
    return base64.b64encode(b).decode("ascii")


def _eval(model, req):
    ids = [int(i) for i in req["ids"]]
    max_tokens = int(req.get("max_tokens", 0))
    want = req.get("want", "logits")
    if not ids:
        raise ValueError('eval: "ids" must be a non-empty array')
    if want not in ("logits", "topk"):
        raise ValueError(f'eval: "want" must be "logits" or "topk", not {want!r}')
    k = req.get("k")
    if want == "topk" and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError('eval: "k" must be a positive integer with "want": "topk"')
    t0 = time.perf_counter()
    logits = model.prompt(ids)
    if isinstance(logits, list):
        logits = Rows(logits)
        argmax, last = Rows.argmax, logits.rows[-1]
    else:
        import numpy as np
        logits = np.ascontiguousarray(logits, dtype="<f4")
        argmax, last = (lambda r: int(np.argmax(r))), logits[-1]
    t1 = t_first = time.perf_counter()
    greedy = []
    for j in range(max_tokens):
        greedy.append(int(argmax(last)))
        if j == 0:
            t_first = time.perf_counter()
        if j + 1 < max_tokens:
            last = model.next(greedy[-1])
    t2 = time.perf_counter()
    n, V = logits.shape
    if want == "topk":
        k = min(k, V)
        tid, tval, lse = logits.topk(k) if isinstance(logits, Rows) else topk(logits, k)
        out = {"topk_ids_i32": _b64(tid), "topk_logits_f32": _b64(tval), "logsumexp": lse, "shape": [n, k]}
    else:
        out = {"logits_f32": _b64(logits.tobytes()), "shape": [n, V]}
    return {**out, "greedy": greedy, "prompt_s": t1 - t0, "ttft_s": t_first - t0 if max_tokens else 0,
            "gen_s": t2 - t_first if max_tokens else 0, "peak_rss_bytes": peak_rss_bytes()}


def serve(engine, open_engine):
    try:
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
