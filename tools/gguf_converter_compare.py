#!/usr/bin/env python3
"""gguf_converter_compare.py — compare two GGUF files key by key and tensor by tensor.

Made to compare silica's `convert --to gguf` output with what llama.cpp's own
converter (convert_hf_to_gguf.py) writes for the same HF directory.  Reading is
done by gguf-py's GGUFReader (the `gguf` package), never by silica.

    python tools/gguf_converter_compare.py compare A B     -> JSON report on stdout
    python tools/gguf_converter_compare.py dump FILE       -> JSON digest on stdout

A and B may each be a .gguf file or a digest written by `dump` (so a file made
on another machine comes back as a few hundred KB of JSON instead of the GGUF).
A digest keeps every metadata value, except that arrays longer than ARRAY_INLINE
are kept as their length, a sha256 of the whole array and a sha256 per chunk of
CHUNK elements (so a difference is still located to its chunk); every tensor is
kept as name, GGML type name, shape (GGUF order, ne0 first), byte count, sha256
of its data bytes and a sha256 per CHUNK_BYTES of them.

Report: keys only in A / only in B, common keys whose values differ (with both
values, or for long arrays the length and the first differing chunk), tensors
only in A / only in B, and per common tensor whether type, shape and bytes are
identical (for differing bytes: how many chunks differ).  GGUF.* pseudo keys
(version, counts) are left out of the key sets; they are compared as tensor
counts instead.
"""
import hashlib
import json
import sys

ARRAY_INLINE = 64
CHUNK = 4096
CHUNK_BYTES = 65536


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    if isinstance(v, float):
        return v
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _digest_value(v):
    if isinstance(v, list) and len(v) > ARRAY_INLINE:
        enc = lambda part: json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode()
        return {"array_len": len(v), "sha256": _sha(enc(v)),
                "chunks": [_sha(enc(v[i:i + CHUNK])) for i in range(0, len(v), CHUNK)]}
    return v


def digest(path):
    """Digest of a .gguf file (see module comment)."""
    from gguf import GGUFReader
    r = GGUFReader(path)
    kv = {}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        kv[name] = _digest_value(_jsonable(field.contents()))
    tensors = {}
    for t in r.tensors:
        data = t.data.tobytes()
        tensors[t.name] = {
            "type": t.tensor_type.name,
            "shape": [int(x) for x in t.shape],
            "n_bytes": len(data),
            "sha256": _sha(data),
            "chunks": [_sha(data[i:i + CHUNK_BYTES]) for i in range(0, len(data), CHUNK_BYTES)],
        }
    return {"file": str(path), "kv": kv, "tensors": tensors}


def load(path):
    if str(path).endswith(".json"):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return digest(path)


def _value_diff(a, b):
    if isinstance(a, dict) and isinstance(b, dict) and "array_len" in a and "array_len" in b:
        first = next((i for i, (x, y) in enumerate(zip(a["chunks"], b["chunks"])) if x != y), None)
        return {"a_len": a["array_len"], "b_len": b["array_len"],
                "first_differing_chunk": first, "chunk_elems": CHUNK}
    return {"a": a, "b": b}


def compare(a, b):
    ka, kb = set(a["kv"]), set(b["kv"])
    differing = {}
    for k in sorted(ka & kb):
        va, vb = a["kv"][k], b["kv"][k]
        if va != vb:
            differing[k] = _value_diff(va, vb)
    ta, tb = a["tensors"], b["tensors"]
    per_tensor = {}
    for n in sorted(set(ta) & set(tb)):
        x, y = ta[n], tb[n]
        e = {"type": x["type"] == y["type"], "shape": x["shape"] == y["shape"],
             "bytes": x["sha256"] == y["sha256"]}
        if not e["type"]:
            e["types"] = [x["type"], y["type"]]
        if not e["shape"]:
            e["shapes"] = [x["shape"], y["shape"]]
        if not e["bytes"] and e["type"] and e["shape"]:
            e["differing_chunks"] = sum(1 for p, q in zip(x["chunks"], y["chunks"]) if p != q)
            e["chunks"] = len(x["chunks"])
        per_tensor[n] = e
    common = list(per_tensor.values())
    return {
        "a": a["file"], "b": b["file"],
        "keys_only_in_a": sorted(ka - kb),
        "keys_only_in_b": sorted(kb - ka),
        "keys_common": len(ka & kb),
        "keys_differing": differing,
        "tensors_only_in_a": sorted(set(ta) - set(tb)),
        "tensors_only_in_b": sorted(set(tb) - set(ta)),
        "tensors_common": len(common),
        "tensors_identical": sum(1 for e in common if e["type"] and e["shape"] and e["bytes"]),
        "tensor_differences": {n: e for n, e in per_tensor.items()
                               if not (e["type"] and e["shape"] and e["bytes"])},
    }


def main(argv):
    if len(argv) == 3 and argv[1] == "dump":
        json.dump(digest(argv[2]), sys.stdout, ensure_ascii=False)
        return 0
    if len(argv) == 4 and argv[1] == "compare":
        json.dump(compare(load(argv[2]), load(argv[3])), sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    print("usage: gguf_converter_compare.py dump FILE.gguf | compare A B  (A, B: .gguf or dump .json)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
