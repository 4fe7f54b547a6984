"""A GGUF file as a complete model for text: its tokenizer.ggml.* tokenizer and
tokenizer.chat_template, against Hugging Face `tokenizers` and transformers.

Fixtures: tests/data/vocab_gguf/NAME.gguf.gz, vocabulary-only GGUFs made by
llama.cpp's own convert_hf_to_gguf.py --vocab-only from the committed
tokenizers (tools/make_vocab_ggufs.sh; origin in tests/data/README.md).
Oracle: `tokenizers` on the same model's tokenizer.json (ids without special
tokens, decode, streaming decode), gguf-py's GGUFReader for what the GGUF
says (BOS/EOS flags, the template text), transformers' renderer for the chat
template (tests/py/test_templates.py).

Known, characterised differences (asserted precisely, never skipped):
mistral's GGUF comes through llama.cpp's LlamaHfVocab, which writes the score
-1000 for every token, so the merge priority of whitespace-run pieces (▁▁,
▁▁▁▁, ...: last in the tokenizer.json's merges) is not in the file; gemma3's
comes through the gpt2 path, which rewrites ▁ to ' ' in its user-defined
whitespace tokens.  Only texts whose HF tokenization holds such a ▁ run may
differ there.  End to end: `silica run` on a GGUF made by `silica convert --to
gguf` gives the ids and text of the source directory; split GGUFs made by
gguf-py's GGUFWriter (llama.cpp's gguf-split layout) run as one model; a
folder of several GGUFs is an error listing them.
"""
import gzip
import json
import shutil

import pytest
from gguf import GGUFReader, GGUFWriter
from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from conftest import DATA, assert_clean_error, run_silica, tokenizer_json, write_tokenizer_files
from hf_models import make_hf_model
from test_templates import CONVERSATIONS, oracle, silica_render
from test_tokenizer import compare, corpus, id_sequences, run_jsonl

VOCAB_GGUF = DATA / "vocab_gguf"
NAMES = ["deepseek_v3", "gemma3", "gptoss", "llama3", "mistral", "qwen3"]
# texts that may differ (see the module docstring): HF's tokens hold a ▁ run
WS_RUN_DIFFERS = {"mistral", "gemma3"}


def test_every_tokenizer_has_a_vocab_gguf():
    have = sorted(p.name[:-len(".gguf.gz")] for p in VOCAB_GGUF.glob("*.gguf.gz"))
    assert have == NAMES


def field(r, key, default=None):
    f = r.fields.get(key)
    if f is None:
        return default
    if f.types[0].name == "STRING":
        return bytes(f.parts[f.data[0]]).decode()
    if f.types[0].name == "ARRAY":
        if f.types[-1].name == "STRING":
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    return f.parts[f.data[0]][0].item()


@pytest.fixture(scope="module", params=NAMES)
def gg(request, tmp_path_factory):
    name = request.param
    d = tmp_path_factory.mktemp("gguf-" + name)
    path = d / f"{name}.gguf"
    with gzip.open(VOCAB_GGUF / f"{name}.gguf.gz", "rb") as f, open(path, "wb") as o:
        shutil.copyfileobj(f, o)
    hf = Tokenizer.from_str(json.dumps(tokenizer_json(name)))
    specials = [t.content for t in hf.get_added_tokens_decoder().values() if t.special]
    return name, path, hf, specials, GGUFReader(str(path))


def compare_ws(name, what, texts, got, want, hf):
    """compare(), except that for WS_RUN_DIFFERS a text whose HF tokens hold a ▁ run may differ."""
    if name not in WS_RUN_DIFFERS:
        return compare(name, what, texts, got, want)
    bad = [t for t, g, w in zip(texts, got, want) if g != w]
    print(f"{name} {what}: {len(texts) - len(bad)}/{len(texts)} identical")
    odd = [t for t in bad if "\u2581\u2581" not in "".join(hf.encode(t, add_special_tokens=False).tokens)]
    assert not odd, f"{name} {what}: differs beyond whitespace runs: {odd[:3]!r}"
    assert len(bad) < len(texts) // 5


def test_encode(gg, tmp_path):
    name, path, hf, specials, _ = gg
    texts = corpus(specials)
    got = run_jsonl("tokenize", path, texts, tmp_path)
    want = [hf.encode(t, add_special_tokens=False).ids for t in texts]
    compare_ws(name, "encode ids (GGUF)", texts, [g["ids"] for g in got], want, hf)


def test_encode_add_special_as_the_gguf_says(gg, tmp_path):
    name, path, hf, specials, r = gg
    texts = corpus(specials)[:60]
    got = run_jsonl("tokenize", path, texts, tmp_path, "--add-special")
    model, pre = field(r, "tokenizer.ggml.model"), field(r, "tokenizer.ggml.pre")
    # llama.cpp's default when add_bos_token is absent: BOS for SentencePiece and the llama3 family
    add_bos = field(r, "tokenizer.ggml.add_bos_token", model == "llama" or pre in ("llama-bpe", "llama3"))
    add_eos = field(r, "tokenizer.ggml.add_eos_token", False)
    bos, eos = field(r, "tokenizer.ggml.bos_token_id"), field(r, "tokenizer.ggml.eos_token_id")
    want = [([bos] if add_bos else []) + hf.encode(t, add_special_tokens=False).ids + ([eos] if add_eos else [])
            for t in texts]
    compare_ws(name, "encode --add-special (GGUF)", texts, [g["ids"] for g in got], want, hf)


@pytest.mark.parametrize("skip", [False, True])
def test_decode_and_stream(gg, tmp_path, skip):
    name, path, hf, specials, r = gg
    seqs = id_sequences(hf, specials, corpus(specials))
    flags = ["--stream"] + (["--skip-special"] if skip else [])
    got = run_jsonl("detokenize", path, seqs, tmp_path, *flags)
    # skip_special leaves out what the GGUF calls control (type 3); the converter's
    # does_token_look_special also makes gemma3's non-special <unused*> tokens control
    control = {i for i, t in enumerate(field(r, "tokenizer.ggml.token_type")) if t == 3}
    keep = [[i for i in s if not (skip and i in control)] for s in seqs]
    compare(name, f"decode (GGUF) skip_special={skip}", seqs, [g["text"] for g in got],
            [hf.decode(s, skip_special_tokens=skip) for s in keep])
    want_stream = []
    for s in seqs:
        ds = DecodeStream(skip_special_tokens=skip)
        try:
            want_stream.append([ds.step(hf, i) if not skip or i not in control else None for i in s])
        except Exception as e:  # HF raises "Invalid prefix" on some random byte runs: silica must fail too
            assert "prefix" in str(e)
            want_stream.append("error")
    compare(name, f"stream decode (GGUF) skip_special={skip}", seqs,
            ["error" if "stream_error" in g else g["stream"] for g in got], want_stream)


def test_chat_template_from_gguf(gg, tmp_path):
    name, path, hf, specials, r = gg
    text = field(r, "tokenizer.chat_template")
    if text is None:  # mistral's tokenizer_config.json has none: the GGUF has none either
        assert name == "mistral"
        (tmp_path / "m.json").write_text('[{"role": "user", "content": "hi"}]')
        r2 = run_silica("template", path, "--messages", tmp_path / "m.json")
        assert_clean_error(r2, "tokenizer.chat_template")
        return
    toks = field(r, "tokenizer.ggml.tokens")
    special = {}
    for k, key in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"), ("pad_token", "padding")):
        i = field(r, f"tokenizer.ggml.{key}_token_id")
        if i is not None:
            special[k] = toks[i]
    failures = []
    for conv, (messages, tools, kwargs) in CONVERSATIONS.items():
        for agp in (False, True):
            ok, expected = oracle(text, messages, tools, agp, {**special, **kwargs})
            rc, out, err = silica_render(path, tmp_path, messages, tools, agp, kwargs, {})
            if ok and (rc != 0 or out != expected):
                failures.append(f"{conv} agp={agp}: rc={rc} {err.strip()[:200]!r}")
            if not ok and rc != 2:
                failures.append(f"{conv} agp={agp}: transformers raised, silica rc={rc}")
    assert not failures, "\n".join(failures[:5])


# ---- end to end: silica convert --to gguf, run on the GGUF ----

@pytest.mark.parametrize("tok", ["mistral", "qwen3"])
def test_run_gguf_like_source_dir(silica, tmp_path, tok):
    src = tmp_path / "hf"
    n_vocab = len(tokenizer_json(tok)["model"]["vocab"]) + len(tokenizer_json(tok)["added_tokens"])
    make_hf_model(src, "llama", seed=3, tied=True, vocab=n_vocab, tokenizer=tok, hidden=32,
                  inter=64, heads=2, kv_heads=1, layers=1)
    out = tmp_path / "m.gguf"
    silica("convert", src, out, "--to", "gguf", "--dtype", "f32", check=True)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out, alone / "m.gguf")
    for args in (["Hello there, world!"], ["--no-chat-template", "Hello there, world!"]):
        a = silica("run", src, *args, "--max-tokens", "6", "--json", check=True)
        b = silica("run", alone / "m.gguf", *args, "--max-tokens", "6", "--json", check=True)
        pa = silica("run", src, *args, "--prompt-ids", check=True)
        pb = silica("run", alone / "m.gguf", *args, "--prompt-ids", check=True)
        assert pa.out == pb.out
        ja, jb = json.loads(a.out), json.loads(b.out)
        assert ja["ids"] == jb["ids"] and ja["text"] == jb["text"]
    # tokenize / detokenize / ppl on the bare GGUF
    t = silica("tokenize", alone / "m.gguf", "--text", "hi there", "--json", check=True)
    assert json.loads(t.out)["ids"] == Tokenizer.from_str(json.dumps(tokenizer_json(tok))).encode(
        "hi there", add_special_tokens=False).ids
    (tmp_path / "t.txt").write_text("The quick brown fox jumps over the lazy dog. " * 4)
    pa = silica("ppl", src, "--file", tmp_path / "t.txt", "--ctx", "16", "--json", check=True)
    pb = silica("ppl", alone / "m.gguf", "--file", tmp_path / "t.txt", "--ctx", "16", "--json", check=True)
    assert json.loads(pa.out)["tokens"] == json.loads(pb.out)["tokens"]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    src = d / "hf"
    make_hf_model(src, "llama", seed=4, tied=True, vocab=32000, tokenizer="mistral", hidden=32,
                  inter=64, heads=2, kv_heads=1, layers=2)
    out = d / "m.gguf"
    assert run_silica("convert", src, out, "--to", "gguf", "--dtype", "f32").rc == 0
    return out


def test_tokenizer_json_beside_gguf_wins_only_when_named(silica, tmp_path, tiny_gguf):
    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(tiny_gguf, d / "m.gguf")
    write_tokenizer_files("llama3", d)   # a different tokenizer beside it
    a = silica("run", d / "m.gguf", "--no-chat-template", "Hello", "--prompt-ids", check=True)
    assert json.loads(a.out)[:1] == [1]          # mistral's BOS: the GGUF's own tokenizer
    b = silica("run", d / "m.gguf", "--no-chat-template", "Hello", "--prompt-ids", "--tokenizer", d / "tokenizer.json")
    llama3 = Tokenizer.from_str(json.dumps(tokenizer_json("llama3"))).encode("Hello", add_special_tokens=False).ids
    assert b.rc == 0 and json.loads(b.out) == llama3


def test_split_gguf_runs_as_one_model(silica, tmp_path, tiny_gguf):
    """gguf-py's GGUFWriter with split_max_tensors writes llama.cpp's gguf-split layout."""
    r = GGUFReader(str(tiny_gguf))
    d = tmp_path / "split"
    d.mkdir()
    w = GGUFWriter(str(d / "m.gguf"), field(r, "general.architecture"), split_max_tensors=5)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        vt = f.types[0]
        val = field(r, k)
        w.add_key_value(k, val, vt, sub_type=f.types[-1] if vt.name == "ARRAY" else None)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    parts = sorted(p.name for p in d.iterdir())
    assert len(parts) > 1 and parts[0].endswith("-00001-of-%05d.gguf" % len(parts))
    want = silica("run", tiny_gguf, "Hello", "--max-tokens", "5", "--json", check=True)
    for target in (d, d / parts[0]):
        got = silica("run", target, "Hello", "--max-tokens", "5", "--json", check=True)
        assert json.loads(got.out)["ids"] == json.loads(want.out)["ids"]
    (d / parts[-1]).unlink()
    assert_clean_error(silica("run", d, "Hello"), "parts")


def test_folder_of_several_ggufs_is_an_error(silica, tmp_path, tiny_gguf):
    d = tmp_path / "two"
    d.mkdir()
    shutil.copy(tiny_gguf, d / "a.gguf")
    shutil.copy(tiny_gguf, d / "b.gguf")
    for cmd in (["run", d, "Hello"], ["tokenize", d, "--text", "hi"], ["inspect", d]):
        assert_clean_error(silica(*cmd), "a.gguf", "b.gguf", "one of them")


@pytest.mark.badinput
def test_bad_tokenizer_metadata(silica, tmp_path):
    """One error line naming the key, exit 2 (written with gguf-py's GGUFWriter)."""
    cases = [
        ({"tokenizer.ggml.model": "bert"}, "tokenizer.ggml.model"),
        ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "no-such-pre"}, "tokenizer.ggml.pre"),
        ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2", "tokenizer.ggml.bos_token_id": 99},
         "bos_token_id"),
        ({"tokenizer.ggml.model": "llama", "tokenizer.ggml.token_type": [1, 9], "tokenizer.ggml.bos_token_id": 0},
         "token_type"),
        ({"tokenizer.ggml.model": "llama"}, "bos_token_id"),   # BOS added by default, none named
        ({"tokenizer.ggml.model": "llama", "tokenizer.ggml.token_type": [1], "tokenizer.ggml.bos_token_id": 0},
         "token_type has 1 entries"),
        ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2"}, "tokenizer.ggml.merges"),
    ]
    for i, (kv, needle) in enumerate(cases):
        p = tmp_path / f"bad{i}.gguf"
        w = GGUFWriter(str(p), "llama")
        w.add_array("tokenizer.ggml.tokens", ["a", "b"])
        for k, v in kv.items():
            if isinstance(v, str):
                w.add_string(k, v)
            elif isinstance(v, list):
                w.add_array(k, v)
            else:
                w.add_uint32(k, v)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        assert_clean_error(silica("tokenize", p, "--text", "ab"), needle)
