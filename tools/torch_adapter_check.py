"""torch_adapter_check.py — run part8/adapters/torch_adapter.py where torch is
installed, through the adapter protocol, and check it against transformers
called directly; record the outcome in tools/torch_adapter_check.result.json.

    python tools/torch_adapter_check.py [ENGINE_MODELS_DIR]

ENGINE_MODELS_DIR: tests/fixtures/models/engine_models.tar.xz extracted
(default: extracted into a temporary directory).  For each reference model
(f32 safetensors) the adapter's logits for ref.json's ids must equal
AutoModelForCausalLM's (same device, same dtype) exactly, and be within 1e-4
of max|logit| of the committed logits.npy; its greedy ids must equal
transformers' own greedy continuation.
"""
import base64
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ["llama", "llama3", "qwen2", "qwen3", "gemma"]


def adapter_eval(model, ids, n_gen):
    reqs = [{"op": "load", "model": str(model), "n_ctx": len(ids) + n_gen},
            {"op": "eval", "ids": ids, "want": "logits", "max_tokens": n_gen}, {"op": "quit"}]
    p = subprocess.run([sys.executable, "-u", str(ROOT / "part8/adapters/torch_adapter.py")],
                       input="".join(json.dumps(r) + "\n" for r in reqs), capture_output=True, text=True, timeout=600)
    hello, load, ev = [json.loads(l) for l in p.stdout.splitlines()]
    assert "error" not in ev, ev
    logits = np.frombuffer(base64.b64decode(ev["logits_f32"]), dtype="<f4").reshape(ev["shape"])
    return hello, logits, ev["greedy"]


def direct(model_dir, ids, n_gen, dev):
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto").to(dev).eval()
    with torch.inference_mode():
        logits = m(torch.tensor([ids], device=dev)).logits[0].float().cpu().numpy()
        seq = list(ids)
        for _ in range(n_gen):
            seq.append(int(m(torch.tensor([seq], device=dev)).logits[0, -1].float().argmax()))
    return logits, seq[len(ids):]


def main():
    models = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if models is None:
        models = Path(tempfile.mkdtemp())
        with tarfile.open(ROOT / "tests/fixtures/models/engine_models.tar.xz") as t:
            t.extractall(models, filter="data")
    dev = "mps" if torch.backends.mps.is_available() else "cuda" if torch.cuda.is_available() else "cpu"
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "device": dev, "cases": []}
    for arch in ARCHS:
        ref = json.loads((models / arch / "ref.json").read_text())
        ids = ref["prompt"] + ref["generated"]
        d = models / arch / "f32-st"
        hello, got, greedy = adapter_eval(d, ids, 6)
        want, want_greedy = direct(d, ids, 6, dev)
        fixture = np.load(models / arch / "logits.npy")
        case = {"arch": arch, "adapter_version": hello["version"],
                "max_abs_diff_vs_direct": float(np.abs(got - want).max()),
                "rel_diff_vs_fixture": float(np.abs(got - fixture).max() / np.abs(fixture).max()),
                "greedy": greedy, "greedy_direct": want_greedy}
        case["ok"] = bool(case["max_abs_diff_vs_direct"] == 0 and case["rel_diff_vs_fixture"] <= 1e-4
                          and greedy == want_greedy)
        print(case)
        out["cases"].append(case)
    out["ok"] = all(c["ok"] for c in out["cases"])
    (ROOT / "tools/torch_adapter_check.result.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
