#!/usr/bin/env python3
"""make_inputs.py — tiny checkpoints for trying part 1's commands and examples.

    python3 part1/scripts/make_inputs.py OUT_DIR

Writes, using the real libraries (never silica itself):
  OUT_DIR/mlx-model/            laid out as mlx_lm.utils.save() does: model.safetensors written by
                                mx.save_safetensors with {"format": "mlx"}, model.safetensors.index.json,
                                config.json (sorted keys, indent 4)            — needs mlx
  OUT_DIR/pytorch_model.bin     torch.save of a small state_dict              — needs torch (skipped
                                with a note when torch is not installed; use tests/fixtures/torch/ then)
The tensors are a 2-layer toy llama with hidden size 8, a few KB in all.
"""
import json
import sys
from pathlib import Path


def toy_weights(rng):
    import numpy as np
    w = {"model.embed_tokens.weight": (16, 8), "model.norm.weight": (8,), "lm_head.weight": (16, 8)}
    for i in range(2):
        p = f"model.layers.{i}."
        w.update({p + "input_layernorm.weight": (8,), p + "self_attn.q_proj.weight": (8, 8),
                  p + "self_attn.k_proj.weight": (4, 8), p + "self_attn.v_proj.weight": (4, 8),
                  p + "self_attn.o_proj.weight": (8, 8), p + "post_attention_layernorm.weight": (8,),
                  p + "mlp.gate_proj.weight": (16, 8), p + "mlp.up_proj.weight": (16, 8),
                  p + "mlp.down_proj.weight": (8, 16)})
    return {k: (rng.standard_normal(s) * 0.02).astype(np.float32) for k, s in w.items()}


CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
          "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 2,
          "vocab_size": 16, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False}


def write_mlx(out, weights):
    import mlx.core as mx
    d = out / "mlx-model"
    d.mkdir(parents=True, exist_ok=True)
    arrays = {k: mx.array(v).astype(mx.bfloat16) for k, v in weights.items()}
    mx.save_safetensors(str(d / "model.safetensors"), arrays, metadata={"format": "mlx"})
    index = {"metadata": {"total_size": sum(a.nbytes for a in arrays.values()),
                          "total_parameters": sum(a.size for a in arrays.values())},
             "weight_map": {k: "model.safetensors" for k in sorted(arrays)}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index, indent=4))
    (d / "config.json").write_text(json.dumps(dict(sorted(CONFIG.items())), indent=4))
    print(f"wrote {d}")


def write_torch(out, weights):
    try:
        import torch
    except ImportError:
        print("torch not installed: no pytorch_model.bin (try silica on tests/fixtures/torch/ instead)")
        return
    sd = {k: torch.from_numpy(v).to(torch.float16) for k, v in weights.items()}
    torch.save(sd, out / "pytorch_model.bin")
    (out / "config.json").write_text(json.dumps(CONFIG, indent=2))
    print(f"wrote {out / 'pytorch_model.bin'}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    import numpy as np
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    weights = toy_weights(np.random.default_rng(0))
    write_mlx(out, weights)
    write_torch(out, weights)


if __name__ == "__main__":
    main()
