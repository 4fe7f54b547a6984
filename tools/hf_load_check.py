#!/usr/bin/env python3
"""hf_load_check.py — do silica's `--to hf` / `--to torch` directories load in
transformers, and do they compute what the original computes?

Two steps, because the machine with torch is not the one with silica:
  prepare OUT --silica BIN   (needs numpy, safetensors, ml_dtypes; tests/py on sys.path)
      For each family: a tiny random HF model (tests/py/hf_models.py), then with silica
        orig -> mlx (float)          -> hf   : must reproduce the original exactly
        orig -> mlx -q (4-bit g64)   -> hf   : dequantized, close to the original
        orig -> mlx -q (4-bit g64)   -> torch: pytorch_model.bin shards + index
  check OUT [--json RESULT]  (needs torch + transformers)
      AutoModelForCausalLM.from_pretrained on every directory, torch.load(weights_only=True)
      on every .bin shard, logits of a fixed prompt compared with the original's.
Exit status 0 iff every check passed; RESULT gets the per-family figures.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"]


def prepare(out, silica):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "py"))
    from hf_models import make_hf_model
    out = Path(out)
    for fam in FAMILIES:
        d = out / fam
        make_hf_model(d / "orig", fam, seed=3, weights_dtype="float32", dtype="float32", tokenizer=False,
                      tied=False if fam in ("llama", "qwen2") else None, shards=2)

        def run(*a):
            subprocess.run([silica, *map(str, a)], check=True, stdout=subprocess.DEVNULL)
        run("convert", d / "orig", d / "mlx", "--to", "mlx")
        run("convert", d / "mlx", d / "hf_float", "--to", "hf")
        run("convert", d / "orig", d / "mlx_q4", "--to", "mlx", "-q")
        run("convert", d / "mlx_q4", d / "hf_q4", "--to", "hf", "--max-shard-size", "300KB")
        run("convert", d / "mlx_q4", d / "torch_q4", "--to", "torch", "--max-shard-size", "300KB")


def check(out, result):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    out = Path(out)
    res = {"torch": torch.__version__, "transformers": transformers.__version__, "families": {}}
    ok = True
    ids = torch.tensor([[1, 5, 9, 17, 33, 65, 129, 200, 3, 7]])
    for fam in FAMILIES:
        d = out / fam
        r = {}

        def logits(p):
            m = AutoModelForCausalLM.from_pretrained(str(p), dtype=torch.float32)
            m.eval()
            with torch.no_grad():
                return m(ids).logits[0].float()
        try:
            ref = logits(d / "orig")
            for name in ["hf_float", "hf_q4", "torch_q4"]:
                p = d / name
                if name.startswith("torch"):
                    shards = sorted(p.glob("pytorch_model*.bin"))
                    keys = set()
                    for s in shards:
                        keys |= set(torch.load(str(s), weights_only=True, map_location="cpu"))
                    r[name + "_bin_shards"] = len(shards)
                    r[name + "_keys"] = len(keys)
                got = logits(p)
                diff = (got - ref).abs().max().item()
                cos = torch.nn.functional.cosine_similarity(got.flatten(), ref.flatten(), dim=0).item()
                same_top = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
                r[name] = {"max_abs_logit_diff": diff, "cosine": cos, "top1_agreement": same_top}
                if name == "hf_float" and diff > 1e-5:
                    ok = False
                    r[name]["fail"] = "float round trip changed the logits"
                if name != "hf_float" and cos < 0.95:
                    ok = False
                    r[name]["fail"] = "4-bit logits too far from the original"
        except Exception as e:  # noqa: BLE001 - report every failure
            ok = False
            r["error"] = f"{type(e).__name__}: {e}"
        res["families"][fam] = r
        print(fam, json.dumps(r))
    res["ok"] = ok
    if result:
        Path(result).write_text(json.dumps(res, indent=2) + "\n")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out")
    p.add_argument("--silica", required=True)
    c = sub.add_parser("check")
    c.add_argument("out")
    c.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.out, a.silica)
        return 0
    return check(a.out, a.json)


if __name__ == "__main__":
    sys.exit(main())
