"""torch_adapter.py — PyTorch through transformers (device mps on a Mac,
cuda, else cpu) behind silica's adapter protocol (PROTOCOL.md): reads
Hugging Face directories (safetensors or pytorch_model.bin) in their stored
dtype, and GGUF files through transformers' gguf_file loader (dequantized to
float, as transformers does); the KV cache is transformers' own."""
import os
import sys

from protocol import serve


def open_engine():
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    dev = ("mps" if torch.backends.mps.is_available() else "cuda" if torch.cuda.is_available() else "cpu")

    class Model:
        def __init__(self, path, n_ctx):
            if os.path.isfile(path) and path.endswith(".gguf"):
                m = AutoModelForCausalLM.from_pretrained(os.path.dirname(path) or ".", gguf_file=os.path.basename(path))
            else:
                m = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
            self.model = m.to(dev).eval()
            self.vocab = int(self.model.config.get_text_config().vocab_size)
            self.past = None

        @torch.inference_mode()
        def _run(self, ids):
            out = self.model(torch.tensor([ids], device=dev), past_key_values=self.past, use_cache=True)
            self.past = out.past_key_values
            return out.logits[0].float().cpu().numpy()

        def prompt(self, ids):
            self.past = None
            return self._run(ids)

        def next(self, i):
            return self._run([i])[-1]

    return f"transformers {transformers.__version__} (torch {torch.__version__}, {dev})", ["hf", "gguf"], Model


if __name__ == "__main__":
    serve("torch", open_engine)
