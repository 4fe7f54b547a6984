#!/usr/bin/env python3
"""Check that files silica wrote load in real PyTorch with weights_only=True.

usage: python3 tools/torch_check.py DIR [--json OUT]

DIR holds *.pt files written by silica plus manifest.json:
  {"file.pt": [{"name", "dtype" (silica name), "shape" (silica shape), "seed"}]}
Each tensor's bytes follow tests/unit/test_pickle.c's pattern():
  byte i = (seed*31 + i*7 + 3) & 0xff   ((seed + i) & 1 for BOOL).
For every file: torch.load(path, weights_only=True) (and mmap=True) must return
exactly the manifest's names, with the torch dtype/shape silica promises and
the same raw bytes.  Exit 0 when everything matches, 1 otherwise.
Needs torch 2.x (run it on a machine that has it).
"""
import json
import os
import sys

import torch

TORCH = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "C64": torch.complex64, "C128": torch.complex128, "U16": torch.uint16,
    "U32": torch.uint32, "U64": torch.uint64, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "F8_E4M3FNUZ": torch.float8_e4m3fnuz, "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
    "F8_E8M0": torch.float8_e8m0fnu, "F4": torch.float4_e2m1fn_x2,
}


def expected_bytes(seed, n, dtype):
    if dtype == "BOOL":
        return bytes((seed + i) & 1 for i in range(n))
    return bytes((seed * 31 + i * 7 + 3) & 0xFF for i in range(n))


def raw(t):
    t = t.detach().contiguous().reshape(-1)
    return b"" if t.numel() == 0 else bytes(t.view(torch.uint8).tolist())


def check_file(path, specs):
    problems = []
    for mmap in (False, True):
        try:
            obj = torch.load(path, weights_only=True, mmap=mmap)
        except Exception as e:  # report, never raise: the caller wants every file's verdict
            problems.append(f"torch.load(mmap={mmap}) failed: {type(e).__name__}: {e}")
            continue
        if list(obj.keys()) != [s["name"] for s in specs]:
            problems.append(f"names differ: {list(obj.keys())[:8]}...")
            continue
        for s in specs:
            t = obj[s["name"]]
            shape = list(s["shape"])
            if s["dtype"] == "F4":
                shape[-1] //= 2
            if t.dtype != TORCH[s["dtype"]] or list(t.shape) != shape:
                problems.append(f"{s['name']}: got {t.dtype} {list(t.shape)}, want {TORCH[s['dtype']]} {shape}")
                continue
            want = expected_bytes(s["seed"], len(raw(t)), s["dtype"])
            if raw(t) != want:
                problems.append(f"{s['name']}: bytes differ")
    return problems


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "manifest.json")) as f:
        manifest = json.load(f)
    report = {"torch": torch.__version__, "files": {}}
    ok = True
    for name, specs in manifest.items():
        p = check_file(os.path.join(d, name), specs)
        report["files"][name] = {"tensors": len(specs), "problems": p}
        ok = ok and not p
        print(f"{'OK  ' if not p else 'FAIL'} {name}: {len(specs)} tensors" + "".join(f"\n     {x}" for x in p))
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
