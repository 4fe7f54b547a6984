"""llama_cpp_adapter_check.py — part8/adapters/llama_cpp_adapter.py run against
a real llama.cpp, through the adapter protocol and through `silica compare`;
the outcome goes to tools/llama_cpp_adapter_check.result.json (committed,
checked by tests/py/test_llama_cpp_gguf.py).

    LLAMA_CPP_LIB=.../build/bin python tools/llama_cpp_adapter_check.py SILICA GGUF_DIR [OUT.json]

GGUF_DIR is what tools/llama_cpp_convert.py wrote (ARCH/{f32,f16,q8_0}.gguf
made by llama.cpp's converter, ARCH/logits.npy = transformers on the source,
ARCH/src = the source).  For every GGUF the adapter loads it, evaluates the
reference ids in one batch (every position's logits) and generates GREEDY ids
continuing its cache; its logits are saved as ARCH/llama_cpp_TYPE.npy (into
the fixture tarball: tests compare silica's logits on the same file with
them) and compared here with transformers' (relative to max|logit|; mistral:
the positions inside its window of 4, which GGUF's llama cannot say).  Then
`silica compare SRC F32.gguf Q8_0.gguf --engines silica,llama.cpp` runs for
COMPARE_ARCHS with the real llama.cpp engine, and its --json is recorded.
"""
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ADAPTER = ROOT / "part8" / "adapters" / "llama_cpp_adapter.py"
RESULT = Path(__file__).with_name("llama_cpp_adapter_check.result.json")
GREEDY = 6
WINDOW_LOST = {"mistral": 4}
COMPARE_ARCHS = ["llama", "qwen3", "gemma2"]
TOPK = 8


def adapter(requests):
    p = subprocess.run([sys.executable, "-u", str(ADAPTER)], capture_output=True, text=True, timeout=600,
                       input="".join(json.dumps(r) + "\n" for r in requests + [{"op": "quit"}]))
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    if not lines or "error" in lines[0]:
        raise RuntimeError(f"adapter: {lines[:1]} {p.stderr.strip()[-500:]}")
    return lines, p.stderr


def decode(ev):
    return np.frombuffer(base64.b64decode(ev["logits_f32"]), dtype="<f4").reshape(ev["shape"])


def main():
    silica, gdir = sys.argv[1], Path(sys.argv[2])
    out_path = Path(sys.argv[3]) if len(sys.argv) > 3 else RESULT
    manifest = json.loads((gdir / "manifest.json").read_text())
    rec = {"llama_cpp_commit": manifest["llama_cpp_commit"], "cases": [], "compare": {}}
    for arch, m in manifest["models"].items():
        ids = m["ids"]
        want = np.load(gdir / arch / "logits.npy")
        n = WINDOW_LOST.get(arch, len(ids))
        for ot, f in m["files"].items():
            case = {"arch": arch, "type": ot}
            rec["cases"].append(case)
            if "error" in f:
                case["error"] = "not converted: " + f["error"]
                continue
            try:
                lines, err = adapter([{"op": "load", "model": str(gdir / arch / f"{ot}.gguf"), "n_ctx": len(ids) + GREEDY},
                                    {"op": "eval", "ids": ids, "want": "logits", "max_tokens": GREEDY},
                                    {"op": "eval", "ids": ids, "want": "topk", "k": TOPK, "max_tokens": 0}])
                rec["adapter_version"] = lines[0]["version"]
                if len(lines) != 4:
                    raise RuntimeError(f"the adapter died answering {len(lines) - 1} of 3 requests: {err.strip()[-300:]}")
                hello, load, ev, tk = lines
                if "error" in load or "error" in ev:
                    case["error"] = (load if "error" in load else ev)["error"]
                    continue
                got = decode(ev)
                np.save(gdir / arch / f"llama_cpp_{ot}.npy", got)
                case.update({"vocab": load["vocab"], "greedy": ev["greedy"],
                             "rel_diff_vs_transformers": float(np.abs(got[:n] - want[:n]).max() / np.abs(want[:n]).max()),
                             "top1_vs_transformers": float((got[:n].argmax(-1) == want[:n].argmax(-1)).mean()),
                             "topk_answer": {k: v for k, v in tk.items() if k in ("error", "shape")}})
            except Exception as e:  # recorded, the other cases go on
                case["error"] = f"{type(e).__name__}: {e}"
            print(case, flush=True)
    env = dict(os.environ, SILICA_PYTHON=sys.executable, SILICA_ADAPTERS=str(ADAPTER.parent))
    for arch in COMPARE_ARCHS:
        m = manifest["models"][arch]
        d = gdir / arch
        cmd = [silica, "compare", str(d / "src"), str(d / "f32.gguf"), str(d / "q8_0.gguf"), "--ids",
               ",".join(map(str, m["ids"])), "--engines", "silica,llama.cpp", "--max-tokens", str(GREEDY), "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        try:
            rec["compare"][arch] = {"rc": p.returncode, "json": json.loads(p.stdout)}
        except json.JSONDecodeError:
            rec["compare"][arch] = {"rc": p.returncode, "stdout": p.stdout[-2000:], "stderr": p.stderr[-2000:]}
        print(arch, rec["compare"][arch], flush=True)
    out_path.write_text(json.dumps(rec, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
