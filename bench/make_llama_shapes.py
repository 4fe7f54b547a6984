#!/usr/bin/env python3
"""make_llama_shapes.py — a random-weight Llama checkpoint (safetensors f16 + config.json + the Llama 3
tokenizer from tests/data) with the shapes of Llama-3.2-1B or Llama-3.1-8B, for the benchmarks in bench/.

    python3 bench/make_llama_shapes.py OUT_DIR [--shape 1b|8b] [--layers N]

Weights are normal / sqrt(fan-in) (seed 0), written in slabs so memory stays near the output size.
Nothing here is committed: the benchmarks write it under their WORK folder.
"""
import argparse
import gzip
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

SHAPES = {  # hidden, ffn, vocab, heads, kv heads, head dim, tied, rope theta (the published config.json values)
    "1b": dict(H=2048, I=8192, V=128256, NH=32, KV=8, HD=64, tied=True, layers=16),
    "8b": dict(H=4096, I=14336, V=128256, NH=32, KV=8, HD=128, tied=False, layers=32),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shape", choices=SHAPES, default="1b")
    ap.add_argument("--layers", type=int, default=0, help="layers (default: the real model's)")
    a = ap.parse_args()
    s = SHAPES[a.shape]
    H, I, V, NH, KV, HD = s["H"], s["I"], s["V"], s["NH"], s["KV"], s["HD"]
    L = a.layers or s["layers"]
    d = Path(a.out)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def m(r, c):
        out = np.empty((r, c), np.float16)
        for i in range(0, r, 4096):
            n = min(4096, r - i)
            out[i:i + n] = (rng.standard_normal((n, c), dtype=np.float32) / np.sqrt(c)).astype(np.float16)
        return out

    w = {"model.embed_tokens.weight": m(V, H), "model.norm.weight": np.ones(H, np.float16)}
    if not s["tied"]:
        w["lm_head.weight"] = m(V, H)
    for layer in range(L):
        p = f"model.layers.{layer}."
        w.update({p + "self_attn.q_proj.weight": m(NH * HD, H), p + "self_attn.k_proj.weight": m(KV * HD, H),
                  p + "self_attn.v_proj.weight": m(KV * HD, H), p + "self_attn.o_proj.weight": m(H, NH * HD),
                  p + "mlp.gate_proj.weight": m(I, H), p + "mlp.up_proj.weight": m(I, H),
                  p + "mlp.down_proj.weight": m(H, I),
                  p + "input_layernorm.weight": np.ones(H, np.float16),
                  p + "post_attention_layernorm.weight": np.ones(H, np.float16)})
    save_file(w, str(d / "model.safetensors"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV, "head_dim": HD,
           "rms_norm_eps": 1e-5, "vocab_size": V, "max_position_embeddings": 131072,
           "tie_word_embeddings": s["tied"], "rope_theta": 500000.0, "bos_token_id": 128000,
           "eos_token_id": 128001, "hidden_act": "silu", "torch_dtype": "float16"}
    (d / "config.json").write_text(json.dumps(cfg, indent=2))
    src = Path(__file__).resolve().parent.parent / "tests" / "data" / "tokenizers" / "llama3"
    for base in ("tokenizer.json", "tokenizer_config.json"):
        with gzip.open(src / (base + ".gz"), "rb") as f:
            (d / base).write_bytes(f.read())


if __name__ == "__main__":
    main()
