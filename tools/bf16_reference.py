#!/usr/bin/env python3
"""bf16_reference.py — what transformers computes when it RUNS the bf16
checkpoints of tests/fixtures/models/engine_models.tar.xz in bfloat16 (the
way most people run bf16 models), next to the f32 reference already in the
tarball.  silica widens bf16 weights and computes in f32, so its logits
should sit close to the f32 reference and further from this one; the test
(tests/py/test_engine_bf16.py) measures both distances.

Run on a machine with torch + transformers (no network needed):
    python3 tools/bf16_reference.py tests/fixtures/models/engine_models.tar.xz OUTDIR
It writes OUTDIR/bf16_reference.npz (commit it as
tests/fixtures/models/bf16_reference.npz): per architecture NAME,
  NAME/logits     [positions, vocab] float32: one forward over the tarball's
                  prompt + f32 greedy continuation, in bf16 on the CPU, eager
                  attention, upcast to f32 only at the end;
  NAME/generated  the greedy continuation transformers makes in bf16 (KV
                  cache, same prompt, same length);
and a JSON string under "_meta" with the torch/transformers versions.
"""
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM


def main():
    tar_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(4)
    arrays, meta = {}, {"torch": torch.__version__, "transformers": transformers.__version__, "models": {}}
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(tar_path) as tar:
        tar.extractall(tmp, filter="data")
        for d in sorted(Path(tmp).glob("*/bf16-st")):
            name = d.parent.name
            ref = json.loads((d.parent / "ref.json").read_text())
            seq = ref["prompt"] + ref["generated"]
            m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager")
            m.eval()
            with torch.no_grad():
                logits = m(torch.tensor([seq])).logits[0].to(torch.float32).numpy()
                gen = m.generate(torch.tensor([ref["prompt"]]), max_new_tokens=len(ref["generated"]),
                                 do_sample=False, eos_token_id=None, pad_token_id=0)[0, len(ref["prompt"]):].tolist()
            f32 = np.load(io.BytesIO(tar.extractfile(f"{name}/logits.npy").read()))
            rel = float(np.abs(logits - f32).max() / np.abs(f32).max())
            arrays[f"{name}/logits"] = logits.astype(np.float32)
            arrays[f"{name}/generated"] = np.array(gen, np.int32)
            meta["models"][name] = {"rel_err_vs_f32": rel, "generated": gen, "f32_generated": ref["generated"]}
            print(f"{name}: bf16 vs f32 max rel {rel:.3e}; greedy bf16 {gen} f32 {ref['generated']}")
    arrays["_meta"] = np.array(json.dumps(meta))
    np.savez_compressed(out / "bf16_reference.npz", **arrays)


if __name__ == "__main__":
    main()
