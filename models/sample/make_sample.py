#!/usr/bin/env python3
"""make_sample.py — writes models/sample/: a tiny Llama-shaped checkpoint
(config.json + model.safetensors, a few KB) made by the real `safetensors`
library, for `scripts/demo.sh` (`silica inspect models/sample`).

Deterministic: same bytes every run (seeded values, sorted keys).
Run: .venv/bin/python models/sample/make_sample.py
"""
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "float16",
}


def main():
    rng = np.random.default_rng(20240501)
    h, i, v = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    kv = h // CONFIG["num_attention_heads"] * CONFIG["num_key_value_heads"]

    def w(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float16)

    p = "model.layers.0."
    tensors = {
        "model.embed_tokens.weight": w(v, h),
        p + "input_layernorm.weight": np.ones(h, np.float32),
        p + "post_attention_layernorm.weight": np.ones(h, np.float32),
        p + "self_attn.q_proj.weight": w(h, h),
        p + "self_attn.k_proj.weight": w(kv, h),
        p + "self_attn.v_proj.weight": w(kv, h),
        p + "self_attn.o_proj.weight": w(h, h),
        p + "mlp.gate_proj.weight": w(i, h),
        p + "mlp.up_proj.weight": w(i, h),
        p + "mlp.down_proj.weight": w(h, i),
        "model.norm.weight": np.ones(h, np.float32),
    }
    save_file(tensors, str(HERE / "model.safetensors"), metadata={"format": "pt"})
    (HERE / "config.json").write_text(json.dumps(CONFIG, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
