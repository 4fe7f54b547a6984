"""llama_cpp_adapter.py — llama.cpp behind silica's adapter protocol
(PROTOCOL.md), through its Python binding llama-cpp-python (the llama.cpp
library itself): reads GGUF files; logits_all gives every position's
logits for given token ids (the llama.cpp command-line tools take text, not
ids, so they cannot be fed the same ids).  CPU unless the binding was built
with a GPU backend."""
import sys

from protocol import serve


def open_engine():
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    class Model:
        def __init__(self, path, n_ctx):
            self.llm = Llama(model_path=path, n_ctx=n_ctx, logits_all=True, verbose=False)
            self.vocab = int(self.llm.n_vocab())

        def prompt(self, ids):
            self.llm.reset()
            self.llm.eval(ids)
            return np.array(self.llm.scores[:len(ids)], dtype=np.float32)

        def next(self, i):
            self.llm.eval([i])
            return np.array(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float32)

    return f"llama-cpp-python {llama_cpp.__version__}", ["gguf"], Model


if __name__ == "__main__":
    serve("llama.cpp", open_engine)
