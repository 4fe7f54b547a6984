#!/usr/bin/env python3
"""make_fuzz_seeds.py — small, valid seed inputs for every libFuzzer target,
written by the real peers (numpy, safetensors, gguf-py, zipfile, pickle,
sentencepiece, tokenizers) so the fuzzers start from files the world makes
instead of from nothing.

usage: tools/make_fuzz_seeds.py OUTDIR
Writes OUTDIR/<fuzz target>/<seed>.  Deterministic: the same peers write the
same bytes, so CI fuzzing (fixed seed, fixed run count) stays reproducible.
Every seed is a few KB at most; nothing here is committed.
"""
import io
import json
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

OUT = Path(sys.argv[1])
ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "tests" / "data" / "templates"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


# ---- configs (model_config, fit_config, pyjson) ----
CONFIGS = {
    "llama3": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
               "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "vocab_size": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
               "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
               "max_position_embeddings": 131072, "tie_word_embeddings": True, "torch_dtype": "bfloat16"},
    "qwen3_t5": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 64,
                 "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 300, "rms_norm_eps": 1e-6,
                 "rope_parameters": {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                     "original_max_position_embeddings": 32768},
                 "max_position_embeddings": 131072, "dtype": "float16"},
    "gemma2": {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 32,
               "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 256, "rms_norm_eps": 1e-6,
               "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "sliding_window": 4096,
               "query_pre_attn_scalar": 16, "hidden_activation": "gelu_pytorch_tanh"},
    "phi3": {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 32,
             "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
             "num_key_value_heads": 4, "vocab_size": 256, "rms_norm_eps": 1e-5, "partial_rotary_factor": 0.5,
             "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
             "rope_scaling": {"type": "longrope", "long_factor": [1.5, 2.0], "short_factor": [1.0, 1.1]}},
    "mlx_q4": {"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 256, "sliding_window": 16,
               "quantization": {"group_size": 64, "bits": 4},
               "quantization_config": {"group_size": 64, "bits": 4,
                                       "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8}}},
}
for name, cfg in CONFIGS.items():
    text = json.dumps(cfg, indent=2)
    put("fuzz_model_config", name + ".json", text)
    put("fuzz_fit_config", name + ".json", text)
    put("fuzz_pyjson", name + ".json", text)
put("fuzz_pyjson", "escapes.json", json.dumps({"s": "\u00e9\u2603\U0001f600\n\t\"", "n": [1, -2.5e-300, 1e308, 0.1],
                                              "b": [True, False, None], "e": {}, "a": []}, ensure_ascii=False))

# ---- safetensors ----
from safetensors.numpy import save as st_save  # noqa: E402

rng = np.random.default_rng(1)
put("fuzz_safetensors", "mixed.safetensors",
    st_save({"a": rng.standard_normal((4, 3)).astype(np.float32), "b": np.arange(6, dtype=np.int8).reshape(2, 3),
             "c": rng.standard_normal(5).astype(np.float16), "d": np.zeros((0, 4), np.float32),
             "e": np.array(7, np.uint8)}, metadata={"format": "pt"}))
put("fuzz_safetensors", "one.safetensors", st_save({"w": np.ones((2, 2), np.float64)}))

# ---- npy / npz (fuzz_npy: first byte even = .npy, odd = .npz) ----
def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


put("fuzz_npy", "f32.npy", b"\x00" + npy(rng.standard_normal((3, 4)).astype(np.float32)))
put("fuzz_npy", "fortran_be.npy", b"\x00" + npy(np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4))))
put("fuzz_npy", "bool.npy", b"\x00" + npy(np.array([True, False, True])))
z = io.BytesIO()
np.savez(z, a=np.arange(5, dtype=np.float16), b=np.eye(2, dtype=np.float32))
put("fuzz_npy", "stored.npz", b"\x01" + z.getvalue())
z = io.BytesIO()
np.savez_compressed(z, a=np.arange(40, dtype=np.int16))
put("fuzz_npy", "deflated.npz", b"\x01" + z.getvalue())

# ---- zip ----
z = io.BytesIO()
with zipfile.ZipFile(z, "w") as f:
    f.writestr(zipfile.ZipInfo("archive/data.pkl"), b"\x80\x02}q\x00.", zipfile.ZIP_STORED)
    f.writestr(zipfile.ZipInfo("archive/data/0"), bytes(range(64)), zipfile.ZIP_STORED)
    f.writestr(zipfile.ZipInfo("archive/notes.txt"), b"silica " * 40, zipfile.ZIP_DEFLATED)
put("fuzz_zip", "mixed.zip", z.getvalue())

# ---- pickle (plain containers; the allowlist rejects anything else) and torch files ----
obj = OrderedDict([("layer.weight", [1, 2.5, -3]), ("meta", {"v": (1, "x", None, True)}), ("b", b"\x00\x01")])
for proto in (2, 4):
    put("fuzz_pickle", f"containers_p{proto}.pkl", pickle.dumps(obj, protocol=proto))
put("fuzz_pickle", "long.pkl", pickle.dumps([2 ** 70, -(2 ** 40), 1.5], protocol=2))
torch_fixtures = ROOT / "tests" / "fixtures" / "torch"
for name in ("dtypes.pt", "legacy.pt", "views.pt", "nested.pt", "odict_meta.pt"):
    p = torch_fixtures / name
    if p.exists() and p.stat().st_size <= 16384:
        put("fuzz_torch", name, p.read_bytes())
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as f:
                for n in f.namelist():
                    if n.endswith("data.pkl"):
                        put("fuzz_pickle", "torch_" + name.replace(".pt", ".pkl"), f.read(n))

# ---- GGUF (gguf-py): a metadata-rich file and a tiny llama model silica can open ----
import gguf  # noqa: E402


def gguf_bytes(fill):
    path = OUT / "tmp.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = path.read_bytes()
    path.unlink()
    return data


def meta_rich(w):
    w.add_name("seed")
    w.add_uint32("test.u32", 7)
    w.add_int64("test.i64", -5)
    w.add_float64("test.f64", 0.25)
    w.add_bool("test.bool", True)
    w.add_array("test.strs", ["a", "bc", ""])
    w.add_array("test.ints", [1, 2, 3])
    w.add_tensor("t_f32", rng.standard_normal((2, 8)).astype(np.float32))
    w.add_tensor("t_f16", rng.standard_normal(32).astype(np.float16))
    q = gguf.quants.quantize(rng.standard_normal((2, 32)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("t_q8", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)


put("fuzz_gguf", "meta.gguf", gguf_bytes(meta_rich))

H, I, V, NH, KV, L = 8, 16, 16, 2, 1, 1


def tiny_llama(w):
    w.add_block_count(L)
    w.add_context_length(64)
    w.add_embedding_length(H)
    w.add_feed_forward_length(I)
    w.add_head_count(NH)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(H // NH)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    def m(r, c):
        return (rng.standard_normal((r, c)) * 0.2).astype(np.float16)
    w.add_tensor("token_embd.weight", m(V, H))
    w.add_tensor("output_norm.weight", np.ones(H, np.float32))
    hd = H // NH
    for l in range(L):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", np.ones(H, np.float32))
        w.add_tensor(p + "attn_q.weight", m(H, H))
        w.add_tensor(p + "attn_k.weight", m(KV * hd, H))
        w.add_tensor(p + "attn_v.weight", m(KV * hd, H))
        w.add_tensor(p + "attn_output.weight", m(H, H))
        w.add_tensor(p + "ffn_norm.weight", np.ones(H, np.float32))
        w.add_tensor(p + "ffn_gate.weight", m(I, H))
        w.add_tensor(p + "ffn_up.weight", m(I, H))
        w.add_tensor(p + "ffn_down.weight", m(H, I))


tiny = gguf_bytes(tiny_llama)
put("fuzz_gguf", "tiny_llama.gguf", tiny)
put("fuzz_gguf_model", "tiny_llama.gguf", tiny)


# GGUF tokenizers (tokenizer.ggml.*): byte-level BPE with merges, SentencePiece-style
def tok_gpt2(w):
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "llama-bpe")
    w.add_array("tokenizer.ggml.tokens", ["H", "e", "l", "o", "\u0120", "He", "ll", "\u0120w", "<s>", "<u>"])
    w.add_array("tokenizer.ggml.token_type", [1, 1, 1, 1, 1, 1, 1, 1, 3, 4])
    w.add_array("tokenizer.ggml.merges", ["H e", "l l", "\u0120 w"])
    w.add_uint32("tokenizer.ggml.bos_token_id", 8)
    w.add_chat_template("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}")


def tok_llama(w):
    w.add_string("tokenizer.ggml.model", "llama")
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581", "a", "\u2581a", "<x>"]
    w.add_array("tokenizer.ggml.tokens", toks)
    w.add_array("tokenizer.ggml.scores", [0.0] * 259 + [-1.0, -2.0, -3.0, 0.0])
    w.add_array("tokenizer.ggml.token_type", [2, 3, 3] + [6] * 256 + [1, 1, 1, 4])
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_bool("tokenizer.ggml.add_space_prefix", True)


put("fuzz_gguf_tokenizer", "gpt2.gguf", gguf_bytes(tok_gpt2))
put("fuzz_gguf_tokenizer", "llama.gguf", gguf_bytes(tok_llama))

# ---- hub answers: revision JSON, NUL, tree JSON ----
rev = {"id": "org/model", "sha": "0123456789abcdef0123456789abcdef01234567",
       "siblings": [{"rfilename": "config.json"}, {"rfilename": "model.safetensors"}]}
tree = [{"type": "file", "path": "config.json", "size": 612, "oid": "d" * 40},
        {"type": "file", "path": "model.safetensors", "size": 4096, "oid": "e" * 40,
         "lfs": {"oid": "a" * 64, "size": 4096, "pointerSize": 134}},
        {"type": "directory", "path": "sub", "oid": "f" * 40},
        {"type": "file", "path": "tokenizer.json", "size": 20, "oid": "c" * 40}]
put("fuzz_hub_json", "basic.bin", json.dumps(rev) + "\0" + json.dumps(tree))

# ---- Git LFS pointer (spec v1) ----
put("fuzz_lfs_pointer", "pointer.txt", "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")

# ---- memory time series (silica plot input) ----
put("fuzz_mem_series", "run.jsonl", "".join(
    json.dumps({"t": round(0.1 * i, 3), "rss_bytes": 1000000 + 4096 * i, "peak_rss_bytes": 1000000 + 4096 * i,
                "kv_bytes": 512 * i, "tokens": i, "phase": "prompt" if i < 3 else "generate"}) + "\n"
    for i in range(8)))

# ---- tokenizers: a small BPE trained by HF tokenizers (mode 0: json NUL text), and text for modes 1/2 ----
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
corpus = ["def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
          "The quick brown fox jumps over the lazy dog. 12345 héllo wörld ✓"] * 4
tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=280, special_tokens=["<s>", "</s>"],
                                                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
put("fuzz_tokenizer", "bpe.bin", b"\x00" + tok.to_str().encode() + b"\x00" + corpus[0].encode())
put("fuzz_tokenizer", "text1.bin", b"\x01" + corpus[1].encode())
put("fuzz_tokenizer", "text2.bin", b"\x02" + "x <s> ab\xc3".encode("utf-8", "surrogateescape"))

# ---- SentencePiece model (trained by the sentencepiece library) ----
import sentencepiece as spm  # noqa: E402

buf = io.BytesIO()
spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus * 8), model_writer=buf, vocab_size=330,
                               model_type="bpe", byte_fallback=True, character_coverage=1.0,
                               minloglevel=2, num_threads=1, normalization_rule_name="identity")
put("fuzz_spm", "bpe.model", buf.getvalue())

# ---- chat templates: a few real ones from tests/data/templates ----
tdir = TEMPLATES
small = sorted(p for p in tdir.glob("*.jinja") if p.stat().st_size <= 8192) if tdir.is_dir() else []
names = []
for family in ("llama-3", "qwen", "mistral", "gemma", "phi", "deepseek", "smollm", "granite"):
    names += [p for p in small if family in p.name.lower()][:2]
names += [p for p in small if p not in names][:max(0, 16 - len(names))]
if not names:
    sys.exit(f"make_fuzz_seeds: no chat templates under {tdir}")
for p in names:
    put("fuzz_template", p.name, p.read_bytes())

print(f"seeds: {sum(1 for _ in OUT.rglob('*') if _.is_file())} files in {OUT}")
