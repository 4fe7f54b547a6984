"""Tiny random-weight Hugging Face model directories for the conversion tests.

Each family gets the tensor names and shapes transformers uses for it, a
config.json as transformers writes it, generation_config.json and a real
tokenizer (decompressed from tests/data/tokenizers) so AutoTokenizer loads it.
Sizes are chosen so that some layers' input size (intermediate 96) is not a
multiple of 64/128: those must stay float when quantizing with g64/g128.
"""
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from conftest import write_tokenizer_files

FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"]
TOKENIZER_OF = {"llama": "llama3", "mistral": "mistral", "qwen2": "qwen3", "qwen3": "qwen3",
                "gemma": "gemma3", "gemma2": "mistral", "phi3": "llama3"}


def family_config(family, hidden=128, inter=96, layers=2, heads=4, kv_heads=2, vocab=256, tied=None,
                  dtype="bfloat16"):
    head_dim = hidden // heads
    c = {"architectures": [{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                            "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                            "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
                            "phi3": "Phi3ForCausalLM"}[family]],
         "model_type": family, "hidden_size": hidden, "intermediate_size": inter,
         "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
         "rms_norm_eps": 1e-5, "vocab_size": vocab, "max_position_embeddings": 2048,
         "rope_theta": 10000.0, "torch_dtype": dtype, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
         "hidden_act": "silu", "initializer_range": 0.02, "attention_dropout": 0.0}
    if family in ("qwen3", "gemma", "gemma2"):
        c["head_dim"] = head_dim
    if family == "gemma2":
        c.update(query_pre_attn_scalar=head_dim, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                 sliding_window=4096, hidden_activation="gelu_pytorch_tanh")
    if family == "gemma":
        c["hidden_activation"] = "gelu_pytorch_tanh"
    if family == "phi3":
        c.update(original_max_position_embeddings=2048, rope_scaling=None, partial_rotary_factor=1.0)
    if tied is None:
        tied = family in ("gemma", "gemma2", "qwen3")
    c["tie_word_embeddings"] = tied
    return c


def family_tensors(family, c, rng, np_dtype=np.float32, extra_inv_freq=True):
    h, i, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    nh, kv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim", h // nh)
    V = c["vocab_size"]
    t = {}

    def w(name, *shape, scale=0.05):
        t[name] = (rng.standard_normal(shape) * scale).astype(np_dtype)

    w("model.embed_tokens.weight", V, h)
    for l in range(L):
        p = f"model.layers.{l}."
        if family == "phi3":
            w(p + "self_attn.qkv_proj.weight", (nh + 2 * kv) * hd, h)
            w(p + "mlp.gate_up_proj.weight", 2 * i, h)
        else:
            w(p + "self_attn.q_proj.weight", nh * hd, h)
            w(p + "self_attn.k_proj.weight", kv * hd, h)
            w(p + "self_attn.v_proj.weight", kv * hd, h)
            w(p + "mlp.gate_proj.weight", i, h)
            w(p + "mlp.up_proj.weight", i, h)
        if family == "qwen2":
            w(p + "self_attn.q_proj.bias", nh * hd)
            w(p + "self_attn.k_proj.bias", kv * hd)
            w(p + "self_attn.v_proj.bias", kv * hd)
        if family == "qwen3":
            w(p + "self_attn.q_norm.weight", hd, scale=1.0)
            w(p + "self_attn.k_norm.weight", hd, scale=1.0)
        w(p + "self_attn.o_proj.weight", h, nh * hd)
        w(p + "mlp.down_proj.weight", h, i)
        w(p + "input_layernorm.weight", h, scale=1.0)
        w(p + "post_attention_layernorm.weight", h, scale=1.0)
        if family == "gemma2":
            w(p + "pre_feedforward_layernorm.weight", h, scale=1.0)
            w(p + "post_feedforward_layernorm.weight", h, scale=1.0)
        if extra_inv_freq and family in ("llama", "mistral", "qwen2"):
            t[p + "self_attn.rotary_emb.inv_freq"] = (1.0 / 10000 ** (np.arange(0, hd, 2) / hd)).astype(np.float32)
    w("model.norm.weight", h, scale=1.0)
    if family not in ("gemma", "gemma2"):
        # present even when tied (a copy, as some exporters write it): mlx-lm's sanitize drops it
        if c["tie_word_embeddings"]:
            t["lm_head.weight"] = t["model.embed_tokens.weight"].copy()
        else:
            w("lm_head.weight", V, h)
    return t


def write_tokenizer(d, family, name=None):
    write_tokenizer_files(name or TOKENIZER_OF[family], d)


def to_bf16_bits(a):
    """float32 array -> bf16 stored as ml_dtypes.bfloat16 (round to nearest even)."""
    import ml_dtypes
    return a.astype(ml_dtypes.bfloat16)


def make_hf_model(d, family, seed=0, weights_dtype="bfloat16", shards=1, tokenizer=True, **cfg):
    """Write a tiny HF model directory; returns its config dict.  tokenizer:
    True (the family's), a tests/data/tokenizers name, or False."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    c = family_config(family, dtype=cfg.pop("dtype", weights_dtype), **cfg)
    rng = np.random.default_rng(seed)
    t = family_tensors(family, c, rng)
    if weights_dtype == "bfloat16":
        t = {k: (to_bf16_bits(v) if not k.endswith("inv_freq") else v) for k, v in t.items()}
    elif weights_dtype == "float16":
        t = {k: (v.astype(np.float16) if not k.endswith("inv_freq") else v) for k, v in t.items()}
    names = list(t)
    if shards == 1:
        save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    else:
        per = (len(names) + shards - 1) // shards
        wm = {}
        for s in range(shards):
            part = names[s * per:(s + 1) * per]
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: t[k] for k in part}, str(d / fn), metadata={"format": "pt"})
            wm.update({k: fn for k in part})
        (d / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": sum(v.nbytes for v in t.values())}, "weight_map": wm}, indent=2))
    (d / "config.json").write_text(json.dumps(c, indent=2))
    (d / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": [2, 3], "do_sample": True, "temperature": 0.6}, indent=2))
    if tokenizer:
        write_tokenizer(d, family, tokenizer if isinstance(tokenizer, str) else None)
    return c
