"""mlx_adapter.py — MLX through mlx_lm (Metal on a Mac, the CPU elsewhere)
behind silica's adapter protocol (PROTOCOL.md): reads Hugging Face and
mlx-lm directories with mlx_lm.utils.load_model (no tokenizer needed), and
runs the model with mlx_lm's own KV cache (make_prompt_cache)."""
import sys
from pathlib import Path

from protocol import serve


def open_engine():
    import numpy as np
    import mlx.core as mx
    import mlx_lm
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.utils import load_model

    class Model:
        def __init__(self, path, n_ctx):
            self.model, config = load_model(Path(path))
            self.vocab = int(config.get("vocab_size") or config.get("text_config", {}).get("vocab_size"))
            self.cache = None

        def _logits(self, ids):
            out = self.model(mx.array([ids]), cache=self.cache)[0].astype(mx.float32)
            return np.array(out)

        def prompt(self, ids):
            self.cache = make_prompt_cache(self.model)
            return self._logits(ids)

        def next(self, i):
            return self._logits([i])[-1]

    return f"mlx_lm {mlx_lm.__version__} (mlx {mx.__version__}, {mx.default_device()})", ["hf", "mlx"], Model


if __name__ == "__main__":
    serve("mlx", open_engine)
