#!/usr/bin/env python3
"""make_reference_models.py — tiny random-weight models of every architecture
silica's engine supports, made by REAL transformers, plus transformers' logits.

Run on a machine with torch + transformers (no network needed):
    python3 tools/make_reference_models.py OUTDIR
It writes OUTDIR/engine_models.tar.xz (commit it as
tests/fixtures/models/engine_models.tar.xz) and OUTDIR/log.txt.

Design (why the fixtures stay small and exact):
  * Every weight is m/64 (norm weights of non-Gemma families 1 + m/64) with m an
    integer in [-15, 15] drawn from a seeded torch generator: exactly
    representable in bf16, so the f32 and bf16 checkpoints hold the SAME values
    and one f32 reference (computed by transformers in float32 on the CPU,
    eager attention) serves both; and the tarball compresses well.
  * Each main architecture is saved four ways: f32/bf16 x safetensors
    (save_pretrained) / pytorch_model.bin (torch.save of the state dict, tied
    tensors included as torch stores them).  RoPE-variant models are saved as
    f32 safetensors only.
  * The config.json is the one transformers itself writes (transformers 5 form);
    config_legacy.json is the older form (rope_theta / rope_scaling) it was
    built from, so both spellings are tested.
  * Reference: greedy continuation (model.generate, KV cache, GEN new tokens,
    EOS disabled) on a fresh model, then one full forward of prompt +
    continuation on another fresh model -> logits.npy [positions, vocab] f32.
"""
import copy
import io
import json
import os
import sys
import tarfile
import tempfile
import traceback

import numpy as np
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

PROMPT = [1, 17, 42, 99, 5, 200, 123, 7]
GEN = 8
V = 256

BASE = dict(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rms_norm_eps=1e-5, pad_token_id=0, bos_token_id=1, eos_token_id=None,
            use_cache=True)


def cfg(**kw):
    c = dict(BASE)
    c.update(kw)
    return c


# name -> (legacy config dict, seed, full container set?)
MODELS = {
    # Llama 2 style: MHA, default RoPE, untied
    "llama": (cfg(model_type="llama", architectures=["LlamaForCausalLM"], num_key_value_heads=4,
                  rope_theta=10000.0, tie_word_embeddings=False), 11, True),
    # Llama 3.x style: GQA, explicit head_dim != hidden/heads, llama3 rope scaling, biases, tied
    "llama3": (cfg(model_type="llama", architectures=["LlamaForCausalLM"], head_dim=32, num_hidden_layers=3,
                   rope_theta=500000.0, attention_bias=True, mlp_bias=True, tie_word_embeddings=True,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}), 12, True),
    # Mistral: sliding window (4 keys) on every layer
    "mistral": (cfg(model_type="mistral", architectures=["MistralForCausalLM"], head_dim=16, sliding_window=4,
                    rope_theta=10000.0, tie_word_embeddings=False), 13, True),
    # Qwen2: q/k/v biases, tied
    "qwen2": (cfg(model_type="qwen2", architectures=["Qwen2ForCausalLM"], rope_theta=1000000.0,
                  use_sliding_window=False, tie_word_embeddings=True), 14, True),
    # Qwen3: q/k RMSNorm, explicit head_dim, MQA
    "qwen3": (cfg(model_type="qwen3", architectures=["Qwen3ForCausalLM"], head_dim=32, num_key_value_heads=1,
                  rope_theta=1000000.0, tie_word_embeddings=False), 15, True),
    # Gemma: 1+w norms, sqrt(hidden) embedding scale, gelu-tanh, tied
    "gemma": (cfg(model_type="gemma", architectures=["GemmaForCausalLM"], head_dim=16, num_key_value_heads=1,
                  hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                  rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=2), 16, True),
    # Gemma 2: softcapping (small caps so they bite), alternating sliding window, pre/post norms
    "gemma2": (cfg(model_type="gemma2", architectures=["Gemma2ForCausalLM"], head_dim=16, num_hidden_layers=4,
                   hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                   rope_theta=10000.0, query_pre_attn_scalar=24, sliding_window=4,
                   attn_logit_softcapping=5.0, final_logit_softcapping=3.0, tie_word_embeddings=True,
                   bos_token_id=2), 17, True),
    # Gemma 3 text: q/k norms, local (10k, default) / global (1e6, linear x2) RoPE
    "gemma3": (cfg(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"], head_dim=16,
                   num_hidden_layers=4, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                   rope_theta=1000000.0, rope_local_base_freq=10000.0,
                   rope_scaling={"rope_type": "linear", "factor": 2.0}, query_pre_attn_scalar=24,
                   sliding_window=4, layer_types=["sliding_attention", "full_attention",
                                                  "sliding_attention", "full_attention"],
                   tie_word_embeddings=True, bos_token_id=2), 18, True),
    # Phi-3: fused qkv / gate_up, partial rotary, longrope (short factors below 32 positions)
    "phi3": (cfg(model_type="phi3", architectures=["Phi3ForCausalLM"], num_key_value_heads=2,
                 partial_rotary_factor=0.5, rope_theta=10000.0, max_position_embeddings=128,
                 original_max_position_embeddings=32, hidden_act="silu",
                 rope_scaling={"type": "longrope", "short_factor": [1.0, 1.25, 1.5, 3.0],
                               "long_factor": [1.0, 2.0, 4.0, 8.0]},
                 tie_word_embeddings=False, sliding_window=None), 19, True),
    # ---- RoPE variants (f32 safetensors only) ----
    "llama-linear": (cfg(model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=10000.0,
                         rope_scaling={"rope_type": "linear", "factor": 4.0}, tie_word_embeddings=False), 21, False),
    "llama-dynamic": (cfg(model_type="llama", architectures=["LlamaForCausalLM"], num_key_value_heads=1,
                          rope_theta=10000.0, max_position_embeddings=8,
                          rope_scaling={"rope_type": "dynamic", "factor": 2.0}, tie_word_embeddings=False), 22, False),
    "llama-yarn": (cfg(model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=10000.0,
                       max_position_embeddings=128,
                       rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32},
                       tie_word_embeddings=False), 23, False),
    # Phi-3 past original_max_position_embeddings: long factors once the sequence is longer than 8
    "phi3-long": (cfg(model_type="phi3", architectures=["Phi3ForCausalLM"], partial_rotary_factor=0.5,
                      rope_theta=10000.0, max_position_embeddings=32, original_max_position_embeddings=8,
                      hidden_act="silu",
                      rope_scaling={"type": "longrope", "short_factor": [1.0, 1.25, 1.5, 3.0],
                                    "long_factor": [1.0, 2.0, 4.0, 8.0]},
                      tie_word_embeddings=False, sliding_window=None), 24, False),
}

GEMMA_NORMS = ("gemma",)   # model_type prefixes whose norms compute x * (1 + w)


def set_weights(model, model_type, seed):
    g = torch.Generator().manual_seed(seed)
    gemma = model_type.startswith(GEMMA_NORMS)
    with torch.no_grad():
        for name, p in model.named_parameters():
            m = torch.randint(-15, 16, tuple(p.shape), generator=g).to(torch.float32)
            v = m / 64.0
            if name.endswith("norm.weight") and not gemma:
                v = 1.0 + v
            p.copy_(v.to(p.dtype))


def build(legacy, seed, tmp):
    d = os.path.join(tmp, "cfg")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(legacy, f)
    config = AutoConfig.from_pretrained(d)
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    except TypeError:
        config._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(config)
    model = model.to(torch.float32).eval()
    set_weights(model, legacy["model_type"], seed)
    try:
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
    except Exception:
        pass
    return model


def add_dir(tar, src, arc):
    for fn in sorted(os.listdir(src)):
        tar.add(os.path.join(src, fn), arcname=f"{arc}/{fn}")


def add_bytes(tar, arc, data):
    ti = tarfile.TarInfo(arc)
    ti.size = len(data)
    ti.mtime = 0
    tar.addfile(ti, io.BytesIO(data))


def one(name, legacy, seed, full, tar, log, tmp):
    torch.manual_seed(0)
    # 1. greedy continuation with the KV cache, on a fresh model
    m = build(legacy, seed, tmp)
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        out = m.generate(ids, max_new_tokens=GEN, do_sample=False, eos_token_id=None, pad_token_id=0)
    gen = out[0, len(PROMPT):].tolist()
    assert len(gen) == GEN, f"generated {len(gen)} tokens"
    # 2. one full forward over prompt + continuation, on another fresh model
    m = build(legacy, seed, tmp)
    seq = PROMPT + gen
    with torch.no_grad():
        logits = m(torch.tensor([seq])).logits[0].to(torch.float32).numpy()
    buf = io.BytesIO()
    np.save(buf, logits.astype(np.float32))
    add_bytes(tar, f"{name}/logits.npy", buf.getvalue())
    ref = {"arch": name, "model_type": legacy["model_type"], "prompt": PROMPT, "generated": gen,
           "argmax": logits.argmax(-1).tolist(), "max_abs_logit": float(np.abs(logits).max()),
           "attn_implementation": getattr(m.config, "_attn_implementation", None),
           "torch": torch.__version__, "transformers": transformers.__version__}
    add_bytes(tar, f"{name}/ref.json", json.dumps(ref, indent=1).encode())
    add_bytes(tar, f"{name}/config_legacy.json", json.dumps(legacy, indent=1).encode())
    # 3. checkpoints
    variants = [("f32", torch.float32, "st")]
    if full:
        variants += [("f32", torch.float32, "bin"), ("bf16", torch.bfloat16, "st"), ("bf16", torch.bfloat16, "bin")]
    ref32 = {k: v.clone() for k, v in m.state_dict().items()}
    for dt_name, dt, cont in variants:
        mm = copy.deepcopy(m).to(dt)
        for k, v in mm.state_dict().items():      # bf16 holds exactly the f32 values
            assert torch.equal(v.to(torch.float32), ref32[k]), f"{k} not exact in {dt_name}"
        d = os.path.join(tmp, f"{name}-{dt_name}-{cont}")
        mm.save_pretrained(d, safe_serialization=True)
        if cont == "bin":
            os.remove(os.path.join(d, "model.safetensors"))
            torch.save(mm.state_dict(), os.path.join(d, "pytorch_model.bin"))
        add_dir(tar, d, f"{name}/{dt_name}-{cont}")
    log.write(f"{name}: ok generated={gen} max|logit|={ref['max_abs_logit']:.4f} "
              f"attn={ref['attn_implementation']}\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(4)
    log = open(os.path.join(out, "log.txt"), "w")
    log.write(f"torch {torch.__version__} transformers {transformers.__version__}\n")
    only = set(sys.argv[2:])
    with tarfile.open(os.path.join(out, "engine_models.tar.xz"), "w:xz", preset=9) as tar:
        for name, (legacy, seed, full) in MODELS.items():
            if only and name not in only:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    one(name, legacy, seed, full, tar, log, tmp)
                except Exception:
                    log.write(f"{name}: FAILED\n{traceback.format_exc()}\n")
            log.flush()
    log.close()
    print(open(os.path.join(out, "log.txt")).read())


if __name__ == "__main__":
    main()
