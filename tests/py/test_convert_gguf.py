"""`silica convert DIR out.gguf --to gguf` and `silica quantize x.gguf y.gguf`,
checked with gguf-py (GGUFReader, gguf.quants) and numpy: metadata keys, tensor
names / types / shapes, values against the source (with the llama Q/K row
permutation of convert_hf_to_gguf computed here in numpy), requantized blocks
byte-identical to gguf-py's quantizers, MLX affine 4-bit -> Q4_1 lossless
against mlx_lm.convert's own output and mx.dequantize.
"""
import json

import numpy as np
import pytest
from gguf import GGMLQuantizationType as GT
from gguf import GGUFReader
from gguf import quants

from conftest import assert_clean_error, tokenizer_json
from hf_models import make_hf_model
from test_convert_mlx import mlx_ref


def st_load(d):
    """name -> float32 array of an HF / mlx dir (via mlx, which reads bf16)."""
    import mlx.core as mx
    out = {}
    for f in sorted(d.glob("model*.safetensors")):
        out.update(mx.load(str(f)))
    return out


def f32(a):
    import mlx.core as mx
    return np.array(a.astype(mx.float32))


def permute(w, n_head):
    """convert_hf_to_gguf's llama q/k permutation: rows [n_head, 2, hd/2] -> swap axes 1, 2."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(r, key):
    f = r.fields[key]
    if f.types and f.types[0].name == "STRING":
        return bytes(f.parts[f.data[0]]).decode()
    if f.types[0].name == "ARRAY":
        if f.types[-1].name == "STRING":
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    return f.parts[f.data[0]][0].item()


def tensors(r):
    return {t.name: t for t in r.tensors}


def deq(t):
    a = quants.dequantize(t.data, t.tensor_type)
    return np.asarray(a, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("g") / "llama"
    make_hf_model(d, "llama", seed=5, tied=False, vocab=512, tokenizer="mistral")
    return d


def test_gpt2_tokenizer_metadata(silica, tmp_path):
    """llama3's byte-level BPE -> tokenizer.ggml.model gpt2 with its merges."""
    d = tmp_path / "hf"
    make_hf_model(d, "llama", seed=5, tied=False, vocab=512)
    out = tmp_path / "m.gguf"
    silica("convert", d, out, "--to", "gguf", check=True)
    r = GGUFReader(str(out))
    tj = tokenizer_json("llama3")
    inv = {v: k for k, v in tj["model"]["vocab"].items()}
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.pre") == "llama-bpe"
    toks = field(r, "tokenizer.ggml.tokens")
    assert len(toks) == 512 and toks == [inv[i] for i in range(512)]
    merges = field(r, "tokenizer.ggml.merges")
    assert len(merges) == len(tj["model"]["merges"]) and merges[:3] == tj["model"]["merges"][:3]
    assert field(r, "tokenizer.ggml.token_type")[:512] == [1] * 512
    assert "{%" in field(r, "tokenizer.chat_template")


def test_llama_f16_metadata_names_values(silica, tmp_path, llama_dir):
    out = tmp_path / "m.gguf"
    silica("convert", llama_dir, out, "--to", "gguf", check=True)
    r = GGUFReader(str(out))
    assert field(r, "general.architecture") == "llama"
    assert field(r, "general.file_type") == 1
    assert field(r, "llama.block_count") == 2
    assert field(r, "llama.embedding_length") == 128
    assert field(r, "llama.feed_forward_length") == 96
    assert field(r, "llama.attention.head_count") == 4
    assert field(r, "llama.attention.head_count_kv") == 2
    assert field(r, "llama.rope.dimension_count") == 32
    assert field(r, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-5)
    assert field(r, "llama.rope.freq_base") == 10000.0
    # tokenizer: mistral's byte-fallback BPE (SentencePiece style)
    tj = tokenizer_json("mistral")
    inv = {v: k for k, v in tj["model"]["vocab"].items()}
    assert field(r, "tokenizer.ggml.model") == "llama"
    toks = field(r, "tokenizer.ggml.tokens")
    assert len(toks) == 512 and toks == [inv[i] for i in range(512)]
    types = field(r, "tokenizer.ggml.token_type")
    assert types[toks.index("<0x41>")] == 6 and types[1] == 3 and types[300] == 1
    assert len(field(r, "tokenizer.ggml.scores")) == 512
    assert field(r, "tokenizer.ggml.bos_token_id") == 1
    assert field(r, "tokenizer.ggml.eos_token_id") == 2
    t = tensors(r)
    src = st_load(llama_dir)
    assert "rope" not in " ".join(t)
    assert set(t) == {"token_embd.weight", "output_norm.weight", "output.weight"} | {
        f"blk.{i}.{n}.weight" for i in range(2) for n in
        ["attn_q", "attn_k", "attn_v", "attn_output", "attn_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]}
    assert t["blk.0.attn_norm.weight"].tensor_type == GT.F32
    assert t["blk.0.attn_q.weight"].tensor_type == GT.F16
    assert [int(x) for x in t["blk.1.attn_k.weight"].shape] == [128, 64]   # ggml ne order
    for hf, gg, perm in [("model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 4),
                         ("model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 2),
                         ("model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight", 0),
                         ("model.embed_tokens.weight", "token_embd.weight", 0),
                         ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", 0)]:
        want = f32(src[hf])
        if perm:
            want = permute(want, perm)
        np.testing.assert_array_equal(deq(t[gg]), want.astype(np.float16).astype(np.float32), err_msg=gg)
    np.testing.assert_array_equal(deq(t["output_norm.weight"]), f32(src["model.norm.weight"]))


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_1"])
def test_requantized_blocks_match_gguf_py(silica, tmp_path, llama_dir, qtype):
    out = tmp_path / "m.gguf"
    silica("convert", llama_dir, out, "--to", "gguf", "--q-type", qtype, check=True)
    r = GGUFReader(str(out))
    t = tensors(r)
    src = st_load(llama_dir)
    gt = GT[qtype]
    assert field(r, "general.file_type") == {"Q8_0": 7, "Q4_0": 2, "Q4_1": 3}[qtype]
    for hf, gg, perm in [("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", 4),
                         ("model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight", 0)]:
        want = f32(src[hf])
        if perm:
            want = permute(want, perm)
        assert t[gg].tensor_type == gt
        assert bytes(t[gg].data) == bytes(quants.quantize(want, gt)), gg
    # down_proj rows (96) are whole 32-blocks: quantized too
    assert t["blk.0.ffn_down.weight"].tensor_type == gt


def test_mlx_affine_4bit_to_q4_1_lossless(silica, tmp_path):
    """mlx_lm.convert -q (f16 scales) -> GGUF Q4_1: same values as mx.dequantize, exactly."""
    import mlx.core as mx
    src = tmp_path / "hf"
    make_hf_model(src, "llama", seed=11, weights_dtype="float16", dtype="float16", tied=False, tokenizer="mistral")
    q = mlx_ref(src, tmp_path / "q", quantize=True, q_group_size=32)
    out = tmp_path / "m.gguf"
    r = silica("convert", q, out, "--to", "gguf", "--json", check=True)
    assert "inexact_repacks" not in r.json()
    g = GGUFReader(str(out))
    t = tensors(g)
    w = st_load(q)
    assert field(g, "tokenizer.ggml.model") == "llama"   # mistral's byte-fallback BPE
    assert len(field(g, "tokenizer.ggml.scores")) == 256
    for mod, gg, perm in [("model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight", 4),
                          ("model.layers.1.self_attn.k_proj", "blk.1.attn_k.weight", 2),
                          ("model.layers.1.mlp.down_proj", "blk.1.ffn_down.weight", 0),
                          ("lm_head", "output.weight", 0)]:
        assert t[gg].tensor_type == GT.Q4_1, gg
        ref = np.array(mx.dequantize(w[mod + ".weight"], w[mod + ".scales"].astype(mx.float32),
                                     w[mod + ".biases"].astype(mx.float32), group_size=32, bits=4))
        if perm:
            ref = permute(ref, perm)
        np.testing.assert_array_equal(deq(t[gg]), ref, err_msg=gg)


def test_mlx_3bit_requantized_or_f16(silica, tmp_path):
    import mlx.core as mx
    src = tmp_path / "hf"
    make_hf_model(src, "qwen2", seed=2, weights_dtype="float16", dtype="float16", tokenizer="mistral")
    q = mlx_ref(src, tmp_path / "q", quantize=True, q_bits=3, q_group_size=32)
    out = tmp_path / "m.gguf"
    silica("convert", q, out, "--to", "gguf", check=True)
    g = GGUFReader(str(out))
    t = tensors(g)
    assert field(g, "general.architecture") == "qwen2"
    w = st_load(q)
    mod = "model.layers.0.self_attn.q_proj"
    ref = np.array(mx.dequantize(w[mod + ".weight"], w[mod + ".scales"].astype(mx.float32),
                                 w[mod + ".biases"].astype(mx.float32), group_size=32, bits=3))
    assert t["blk.0.attn_q.weight"].tensor_type == GT.F16
    np.testing.assert_array_equal(deq(t["blk.0.attn_q.weight"]), ref.astype(np.float16).astype(np.float32))
    # qwen2: no permutation, q/k/v biases kept in F32
    np.testing.assert_array_equal(deq(t["blk.0.attn_q.bias"]), f32(w[mod + ".bias"]))
    out8 = tmp_path / "m8.gguf"
    silica("convert", q, out8, "--to", "gguf", "--q-type", "Q8_0", check=True)
    t8 = tensors(GGUFReader(str(out8)))
    assert bytes(t8["blk.0.attn_q.weight"].data) == bytes(quants.quantize(ref, GT.Q8_0))


def test_quantize_gguf_file(silica, tmp_path, llama_dir):
    f16 = tmp_path / "f16.gguf"
    silica("convert", llama_dir, f16, "--to", "gguf", check=True)
    q8 = tmp_path / "q8.gguf"
    silica("quantize", f16, q8, "--q-type", "Q8_0", check=True)
    a, b = GGUFReader(str(f16)), GGUFReader(str(q8))
    assert field(b, "general.file_type") == 7
    assert field(b, "tokenizer.ggml.tokens") == field(a, "tokenizer.ggml.tokens")
    ta, tb = tensors(a), tensors(b)
    for n in ta:
        if ta[n].tensor_type == GT.F16:
            assert tb[n].tensor_type == GT.Q8_0
            assert bytes(tb[n].data) == bytes(quants.quantize(deq(ta[n]), GT.Q8_0)), n
        else:
            assert bytes(tb[n].data) == bytes(ta[n].data)
    # default: Q4_0
    q4 = tmp_path / "q4.gguf"
    silica("quantize", f16, q4, check=True)
    assert tensors(GGUFReader(str(q4)))["blk.0.attn_q.weight"].tensor_type == GT.Q4_0


def test_qwen3_vocab_as_convert_hf_to_gguf(silica, tmp_path):
    """The real Qwen 3 tokenizer, vocab_size padded past it (151936 > 151669): token types and
    special ids as llama.cpp's converter writes them (found comparing with its output,
    tools/gguf_converter_compare.result.json): non-special added tokens that look like control
    tokens (<|fim_prefix|>) are CONTROL, padding ids [PADn] are UNUSED, eos / pad come from
    tokenizer_config.json's eos_token / pad_token before config.json."""
    d = tmp_path / "qwen3"
    make_hf_model(d, "qwen3", vocab=151936, tokenizer="qwen3", hidden=16, inter=32)
    out = tmp_path / "q.gguf"
    silica("convert", d, out, "--to", "gguf", "--q-type", "F16", check=True)
    r = GGUFReader(str(out))
    types = list(r.fields["tokenizer.ggml.token_type"].contents())
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    assert len(types) == 151936
    assert toks[151659] == "<|fim_prefix|>" and types[151659] == 3        # CONTROL, not USER_DEFINED
    assert toks[151669] == "[PAD151669]" and set(types[151669:]) == {5}   # UNUSED
    assert types[1000] == 1 and types[151643] == 3
    assert field(r, "tokenizer.ggml.eos_token_id") == 151645               # <|im_end|> (tokenizer_config)
    assert field(r, "tokenizer.ggml.padding_token_id") == 151643           # <|endoftext|>
    assert field(r, "tokenizer.ggml.bos_token_id") == 1     # tokenizer_config's bos_token is null: config.json's


@pytest.mark.parametrize("family", ["gemma", "gemma2"])
def test_gemma_layout_as_convert_hf_to_gguf(silica, tmp_path, family):
    """convert_hf_to_gguf's Gemma/Gemma2 layout: norms + 1 (bf16 sources widened to f32 first, as
    the converter does before modify_tensors; f16 sources would add in f16),
    sandwich norm names, no output.weight, head_dim keys, softcapping / sliding window."""
    d = tmp_path / family
    c = make_hf_model(d, family, seed=3)
    out = tmp_path / "m.gguf"
    silica("convert", d, out, "--to", "gguf", "--q-type", "F32", check=True)
    r = GGUFReader(str(out))
    src = {k: f32(v) for k, v in st_load(d).items()}
    t = tensors(r)
    assert field(r, "general.architecture") == family
    assert field(r, f"{family}.attention.key_length") == c["head_dim"]
    assert field(r, f"{family}.attention.value_length") == c["head_dim"]
    assert f"{family}.rope.freq_base" not in r.fields   # theta 10000 = llama.cpp's default, as the converter
    if field(r, "tokenizer.ggml.model") == "llama":        # SentencePiece-style vocab: Gemma adds no space
        assert field(r, "tokenizer.ggml.add_space_prefix") is False
    assert "output.weight" not in t
    post = {"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
            "post_feedforward_layernorm": "post_ffw_norm"} if family == "gemma2" else \
        {"post_attention_layernorm": "ffn_norm"}
    names = {"model.norm.weight": "output_norm.weight", "model.embed_tokens.weight": "token_embd.weight"}
    for l in range(c["num_hidden_layers"]):
        names[f"model.layers.{l}.input_layernorm.weight"] = f"blk.{l}.attn_norm.weight"
        names.update({f"model.layers.{l}.{h}.weight": f"blk.{l}.{g}.weight" for h, g in post.items()})
        names[f"model.layers.{l}.self_attn.q_proj.weight"] = f"blk.{l}.attn_q.weight"
    for hf, gg in names.items():
        assert gg in t, gg
        want = (src[hf] + np.float32(1)) if hf.endswith("norm.weight") else src[hf]
        if hf.endswith("norm.weight"):
            assert t[gg].tensor_type == GT.F32
        np.testing.assert_array_equal(deq(t[gg]), want, err_msg=gg)
    assert len(t) == 2 + c["num_hidden_layers"] * (9 if family == "gemma" else 11)
    if family == "gemma2":
        assert field(r, "gemma2.attn_logit_softcapping") == 50.0
        assert field(r, "gemma2.final_logit_softcapping") == 30.0
        assert field(r, "gemma2.attention.sliding_window") == 4096
        assert "gemma2.attention.sliding_window_pattern" not in r.fields   # default period 2


def test_phi3_layout_as_convert_hf_to_gguf(silica, tmp_path):
    """Phi-3: fused attn_qkv / ffn_up (gate_up), partial rotary, LongRoPE factor tensors."""
    d = tmp_path / "phi3"
    c = make_hf_model(d, "phi3", seed=4, hidden=128, heads=4, kv_heads=4)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(partial_rotary_factor=0.5, max_position_embeddings=4096, original_max_position_embeddings=1024,
               rope_scaling={"type": "longrope", "long_factor": [1.0 + i for i in range(8)],
                             "short_factor": [1.0 + i / 8 for i in range(8)]})
    (d / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "m.gguf"
    silica("convert", d, out, "--to", "gguf", check=True)
    r = GGUFReader(str(out))
    t = tensors(r)
    assert field(r, "general.architecture") == "phi3"
    assert field(r, "phi3.rope.dimension_count") == 16
    assert field(r, "phi3.rope.scaling.original_context_length") == 1024
    assert field(r, "phi3.attention.sliding_window") == 0
    assert field(r, "phi3.rope.scaling.attn_factor") == pytest.approx(np.sqrt(1 + np.log(4) / np.log(1024)), rel=1e-6)
    assert list(t["blk.0.attn_qkv.weight"].shape) == [128, 3 * 128]
    assert list(t["blk.0.ffn_up.weight"].shape) == [128, 2 * c["intermediate_size"]]
    assert "blk.0.ffn_gate.weight" not in t and "blk.0.attn_q.weight" not in t
    np.testing.assert_array_equal(t["rope_factors_long.weight"].data, np.arange(1, 9, dtype=np.float32))
    np.testing.assert_array_equal(t["rope_factors_short.weight"].data, 1 + np.arange(8, dtype=np.float32) / 8)
    assert t["rope_factors_long.weight"].tensor_type == GT.F32
    assert "output.weight" in t   # untied
    # silica runs what it wrote
    silica("logits", out, "--ids", "1,2,3", "--json", check=True)


def test_gemma3_text_export_runs(silica, tmp_path):
    """gemma3_text: q/k norms shifted too, rope keys, a non-default layer pattern recorded."""
    d = tmp_path / "g3"
    make_hf_model(d, "gemma2", seed=6)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"], sliding_window=4,
               layer_types=["sliding_attention", "full_attention"],
               rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                                "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}})
    for k in ("attn_logit_softcapping", "final_logit_softcapping", "rope_theta"):
        cfg.pop(k)
    (d / "config.json").write_text(json.dumps(cfg))
    from safetensors.numpy import load_file, save_file
    w = load_file(str(d / "model.safetensors"))
    for l in range(cfg["num_hidden_layers"]):
        for n in ("q_norm", "k_norm"):
            w[f"model.layers.{l}.self_attn.{n}.weight"] = np.full(cfg["head_dim"], 0.5, np.float32)
    save_file(w, str(d / "model.safetensors"))
    out = tmp_path / "m.gguf"
    silica("convert", d, out, "--to", "gguf", check=True)
    r = GGUFReader(str(out))
    assert field(r, "general.architecture") == "gemma3"
    assert field(r, "gemma3.rope.freq_base") == 1e6
    assert field(r, "gemma3.rope.freq_base_swa") == 1e4
    assert field(r, "gemma3.rope.scaling.type") == "linear"
    assert field(r, "gemma3.rope.scaling.factor") == 8.0
    assert field(r, "gemma3.attention.sliding_window") == 4
    assert field(r, "gemma3.attention.sliding_window_pattern") == 2   # llama.cpp would assume 6
    np.testing.assert_array_equal(deq(tensors(r)["blk.0.attn_q_norm.weight"]), np.full(cfg["head_dim"], 1.5, np.float32))
    silica("logits", out, "--ids", "1,2,3", "--json", check=True)


def test_gguf_bad_input(silica, tmp_path, llama_dir):
    g = tmp_path / "olmo"
    make_hf_model(g, "llama", tokenizer=False)
    cfg = json.loads((g / "config.json").read_text())
    cfg["model_type"] = "olmo"
    (g / "config.json").write_text(json.dumps(cfg))
    assert_clean_error(silica("convert", g, tmp_path / "x.gguf", "--to", "gguf"), "olmo", "gemma3_text")
    out = tmp_path / "m.gguf"
    out.write_text("x")
    assert_clean_error(silica("convert", llama_dir, out, "--to", "gguf"), "already exists")
    assert_clean_error(silica("convert", llama_dir, tmp_path / "y.gguf", "--to", "gguf", "--q-type", "Q3_X"), "Q3_X")
    assert not (tmp_path / "y.gguf").exists()


def unpermute(w, n_head):
    """inverse of permute(): adjacent pairs back to rotate-half."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q8_0"])
def test_gguf_to_mlx_repacks_like_mlx(silica, tmp_path, llama_dir, qtype):
    """GGUF Q4_0/Q4_1/Q8_0 -> MLX affine: byte-identical to MLX's own GGUF loader (mx.load),
    with HF names and llama's q/k rows un-permuted; mlx-lm loads the directory."""
    import mlx.core as mx
    from pathlib import Path
    from mlx_lm.utils import load_model
    g = tmp_path / "m.gguf"   # --pure: every matrix in qtype (the mix would put output.weight in Q6_K / Q8_0)
    silica("convert", llama_dir, g, "--to", "gguf", "--q-type", qtype, "--pure", check=True)
    out = tmp_path / "mlx"
    silica("convert", g, out, "--to", "mlx", check=True)
    ref = mx.load(str(g))
    ours = st_load(out)
    bits = 8 if qtype == "Q8_0" else 4
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization"] == {"group_size": 32, "bits": bits, "mode": "affine"}
    assert cfg["model_type"] == "llama" and cfg["rms_norm_eps"] == 1e-05 and cfg["tie_word_embeddings"] is False
    for gg, hf, nh in [("blk.0.attn_q", "model.layers.0.self_attn.q_proj", 4),
                       ("blk.1.attn_k", "model.layers.1.self_attn.k_proj", 2),
                       ("blk.1.ffn_down", "model.layers.1.mlp.down_proj", 0),
                       ("token_embd", "model.embed_tokens", 0), ("output", "lm_head", 0)]:
        for part in ["weight", "scales", "biases"]:
            x, y = np.array(ref[f"{gg}.{part}"]), np.array(ours[f"{hf}.{part}"])
            if nh:
                x = unpermute(x, nh)
            assert x.dtype == y.dtype and x.shape == y.shape, (gg, part)
            assert x.tobytes() == y.tobytes(), (gg, part)
    np.testing.assert_array_equal(np.array(ours["model.norm.weight"]), np.array(ref["output_norm.weight"]))
    load_model(Path(out))


def test_gguf_f16_round_trip_to_mlx(silica, tmp_path, llama_dir):
    """HF -> GGUF F16 -> MLX: every tensor is the source's, rounded to f16 once (norms kept f32)."""
    g = tmp_path / "m.gguf"
    silica("convert", llama_dir, g, "--to", "gguf", check=True)
    out = tmp_path / "mlx"
    silica("convert", g, out, "--to", "mlx", check=True)
    src, ours = st_load(llama_dir), st_load(out)
    assert sorted(ours) == sorted(k for k in src if "inv_freq" not in k)
    for k in ours:
        want = f32(src[k])
        if src[k].ndim == 2:
            want = want.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(f32(ours[k]), want, err_msg=k)
