"""The shipped demo model (models/demo, MLX 4-bit, made by tools/train_demo_model.py
and `silica convert --to mlx -q --q-bits 4`), checked against real peers:
mlx_lm (loads it, greedy ids, perplexity) and HF tokenizers/transformers
(the tokenizer).  The held-out text is data/heldout/*.py in sorted order,
concatenated (`cat data/heldout/*.py`).
"""
import json
import math
import sys

import pytest

from conftest import ROOT, assert_clean_error

DEMO = ROOT / "models" / "demo"
HELDOUT = ROOT / "data" / "heldout"
PROMPT = "def fibonacci(n):"
HELDOUT_FILES = ["bisect.py", "colorsys.py", "fractions.py", "heapq.py", "shlex.py", "textwrap.py"]

sys.path.insert(0, str(ROOT / "tools"))
import train_demo_model  # noqa: E402  (its mlx_perplexity is the peer's perplexity)


def heldout_text():
    return "".join((HELDOUT / f).read_text(encoding="utf-8") for f in sorted(HELDOUT_FILES))


@pytest.fixture(scope="module")
def mlx_model():
    """mlx_lm's model with every float parameter cast to f32 (bf16 scales and
    biases are exact in f32), so its activations are f32 like silica's."""
    import mlx.core as mx
    from mlx_lm import load
    model, tok = load(str(DEMO))
    model.set_dtype(mx.float32)
    return model, tok


def test_demo_files_and_size():
    names = sorted(p.name for p in DEMO.iterdir())
    for need in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json"):
        assert need in names
    total = sum(p.stat().st_size for p in DEMO.iterdir())
    assert total < 20 * 1024 * 1024, total
    assert sorted(p.name for p in HELDOUT.iterdir()) == sorted(HELDOUT_FILES)
    # the held-out rule: every file ends with a newline, so `cat` separates them by "\n"
    assert all((HELDOUT / f).read_bytes().endswith(b"\n") for f in HELDOUT_FILES)


def test_demo_config_is_what_mlx_lm_writes():
    cfg = json.loads((DEMO / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["architectures"] == ["LlamaForCausalLM"]
    assert cfg["quantization"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    assert cfg["tie_word_embeddings"] is True
    assert cfg["bos_token_id"] == 0 and cfg["eos_token_id"] == 1
    assert cfg["max_position_embeddings"] == 512
    n = (cfg["vocab_size"] * cfg["hidden_size"]
         + cfg["num_hidden_layers"] * (2 * cfg["hidden_size"] ** 2
                                       + 2 * cfg["hidden_size"] * cfg["num_key_value_heads"] * cfg["head_dim"]
                                       + 3 * cfg["hidden_size"] * cfg["intermediate_size"]))
    assert 10e6 <= n <= 30e6, n
    train = json.loads((DEMO / "training.json").read_text())
    assert train["heldout_files"] == HELDOUT_FILES


def test_demo_inspect(silica):
    r = silica("inspect", DEMO, check=True)
    assert '"llama"' in r.out and "tensors: 188" in r.out
    r = silica("inspect", "--json", DEMO, check=True)
    d = r.json()
    assert isinstance(d, dict)


def test_demo_tokenizer_matches_hf(silica):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(DEMO))
    assert (hf.bos_token, hf.eos_token, hf.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (0, 1, 2)
    ids = hf(PROMPT).input_ids
    assert ids[0] == 0 and ids[1:] == hf.encode(PROMPT, add_special_tokens=False)
    assert hf.chat_template is None  # a code completer: prompts go in as they are
    raw = Tokenizer.from_file(str(DEMO / "tokenizer.json"))
    text = (HELDOUT / "bisect.py").read_text(encoding="utf-8")
    want = raw.encode(text, add_special_tokens=False).ids
    r = silica("tokenize", DEMO, "--file", HELDOUT / "bisect.py", check=True)
    got = r.json()["ids"]
    assert got == want
    assert raw.decode(want) == text


def test_demo_greedy_matches_mlx_lm(silica, mlx_model):
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from transformers import AutoTokenizer
    prompt = AutoTokenizer.from_pretrained(str(DEMO))(PROMPT).input_ids
    model, _ = mlx_model
    want = []
    for tok, _ in generate_step(mx.array(prompt), model, max_tokens=24):
        want.append(int(tok))
        if want[-1] == 1:
            break
    r = silica("run", DEMO, "--ids", ",".join(map(str, prompt)), "--max-tokens", 24, "--json",
               check=True, timeout=600)
    got = r.json()["ids"]
    assert got[:len(want)] == want, (got, want)


def test_demo_ppl_matches_mlx_lm(silica, mlx_model, tmp_path):
    """`silica ppl` (part5's definition) on a prefix of the held-out text, in
    windows of 128, equals mlx_lm's figure for the same definition."""
    text = heldout_text()[:1500]
    f = tmp_path / "heldout-prefix.py"
    f.write_text(text, encoding="utf-8")
    r = silica("ppl", DEMO, "--file", f, "--ctx", 128, "--json", check=True, timeout=900)
    got = r.json()
    model, tok = mlx_model
    ppl, nll, count = train_demo_model.mlx_nll(model, tok, text, 128)
    assert got["tokens"] == count == len(tok.encode(text, add_special_tokens=False))
    assert abs(got["nll"] - nll) <= 1e-4 * nll, (got, nll)
    assert abs(got["ppl"] - ppl) <= 1e-3 * ppl, (got, ppl)


def test_demo_ppl_bad_file(silica, tmp_path):
    assert_clean_error(silica("ppl", DEMO, "--file", tmp_path / "missing.py"), "missing.py")
