"""silica tokenize / detokenize against Hugging Face `tokenizers`, live.

For every tokenizer in tests/data/tokenizers/*/ (decompressed into a temp dir)
and a corpus of >= 300 strings (every major
script, emoji ZWJ sequences, combining marks, whitespace runs, CRLF, digits,
code, special-token text, long words), the expected ids/tokens/text are
produced by `tokenizers` in this process and compared with one silica process
per tokenizer and mode (--jsonl batch mode):
  encode without special tokens (ids + tokens), with --add-special, with
  special-token text treated as plain text (HF: encode_special_tokens=True);
  decode with and without skip_special_tokens, and streaming decode
  (HF: tokenizers.decoders.DecodeStream) of real and random id sequences.
Bad input (malformed tokenizer.json, unsupported components, ids out of
range, invalid UTF-8) gets one error line / HF's behaviour.
"""
import json
import random

import pytest
from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from conftest import assert_clean_error, run_silica, tokenizer_names, write_tokenizer_files

NAMES = tokenizer_names()

BASE = [
    "", " ", "  ", "\t", "\n", "\n\n", "\r\n", "a", "Hello world", "Hello, world!", " Hello", "Hello ",
    "hello   world", "it's I'm you're we've they'll he'd SHE'S", "HELLO WORLD", "CamelCaseIdentifierName",
    "The quick brown fox jumps over the lazy dog.", "1234567890", "3.14159", "1,000,000.00", "12 345 6789",
    "2024-01-15T10:30:00Z", "$100 and 50% off!!!", "a\u00a0b", "tab\tseparated\tvalues", "line1\nline2\r\nline3\rline4",
    "   leading spaces", "trailing spaces   ", "multiple\n\n\nnewlines", " \n \n ", "\u3000ideographic space",
    "Ünïcödé äöü ß ÄÖÜ", "naïve café résumé", "Ελληνικά κείμενα", "Русский текст, Привет мир!", "Українська мова",
    "中文文本测试，你好世界！", "日本語のテキスト、こんにちは世界。カタカナ", "한국어 텍스트 안녕하세요", "ภาษาไทย สวัสดีครับ",
    "हिन्दी पाठ नमस्ते दुनिया", "বাংলা লেখা", "தமிழ் உரை", "العربية: مرحبا بالعالم", "עברית: שלום עולם",
    "Tiếng Việt có dấu", "ქართული ენა", "Հայերեն", "አማርኛ", "ᠮᠣᠩᠭᠣᠯ", "ꦗꦮ", "𝕳𝖊𝖑𝖑𝖔 𝔀𝓸𝓻𝓵𝓭", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３",
    "😀😃😄😁", "👨‍👩‍👧‍👦 family", "👩🏽‍💻 coder", "🏳️‍🌈 flag", "🇺🇸🇯🇵🇩🇪", "❤️‍🔥", "1️⃣ keycap", "🫠🫥🪿",
    "e\u0301 combining", "a\u0300\u0301\u0302\u0303 stacked", "Z\u0351\u0352\u0353algo\u0354\u0355", "\u1100\u1161\u11a8 jamo",
    "ﬁ ligature ﬀ", "Å vs A\u030a", "Ω vs \u2126", "½ ¼ ² ³ ⅷ", "①②③", "x\u200by zero width", "\u200d\u200c joiners",
    "\ufeffBOM start", "\u2028line sep\u2029para sep", "\x00nul\x01ctrl\x7f", "\u0085next line",
    "def foo(bar):\n    return bar * 2\n", "int main(void) { return 0; }", "for (i = 0; i < n; i++) {\n\tx[i] = i;\n}",
    "SELECT * FROM users WHERE id = 42;", "<div class=\"a\">text</div>", "{\"key\": [1, 2, 3], \"k2\": null}",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Users\\name\\file.txt", "~/.config/app.toml",
    "x = y ** 2 // 3 % 4", "a->b => c :: d", "#include <stdio.h>", "    indented code", "\t\tdouble tab",
    "// comment\n/* block */", "print('hi')  # comment", "λx.x + 1", "∀x∈ℝ: x² ≥ 0", "∑_{i=1}^{n} i = n(n+1)/2",
    "Supercalifragilisticexpialidocious", "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "Donaudampfschifffahrtsgesellschaftskapitän", "a" * 300, "ab" * 200, "🙂" * 50, "x" * 1000 + "y",
    "1" * 100, " " * 100, "\n" * 50, "-" * 80, "=" * 40 + "\n", "...", "?!?!", "!!!???", "«quoted» „German“ “English”",
    "— em dash – en dash", "'single' \"double\" `back`", "((nested (parens)))", "[[brackets]]", "{{braces}}",
    "100km/h", "5'11\"", "3rd 2nd 1st 21st", "I'M SHOUTING", "don't won't can't", "'tis 'twas", "O'Reilly",
    "MixedCASE123numbers456", "snake_case_name", "kebab-case-name", "dot.separated.name", "ALL_CAPS_CONST",
    "Mr. Smith went to Washington.", "e.g. i.e. etc.", "U.S.A.", "Ph.D.", "₿ € £ ¥ ₹ ₽", "©®™", "♠♣♥♦", "←↑→↓",
    "▁ lower one eighth block", "▁▁double", "Ġ Ċ byte chars", "<0x41> not a byte", "<unk>", "<s>", "</s>",
    "İstanbul ǅungla ẞ ß ΌΣΟΣ Σίσυφος ﬃ Ⅻ", "K\u212a Å\u212b µ\u00b5", "\u0130i\u0307 DŽ Ǆ ǈ",
    "Hello\u00a0\u00a0world", "end with newline\n", "\nstart with newline", "\r", "\r\r\n\n", " \t \t ",
]


def corpus(specials):
    """The shared corpus plus tokenizer-specific special-token strings."""
    rnd = random.Random(1234)
    pieces = [s for s in BASE if 0 < len(s) < 60]
    out = list(BASE)
    for sp in specials[:12]:
        out += [sp, f"a{sp}b", f" {sp} ", f"{sp}{sp}", f"Hello {sp}\nworld", f"x{sp[:-1]}"]
    for _ in range(160):
        k = rnd.randint(2, 5)
        parts = [rnd.choice(pieces) for _ in range(k)]
        if specials and rnd.random() < 0.3:
            parts.insert(rnd.randint(0, k), rnd.choice(specials[:12]))
        out.append(rnd.choice(["", " ", "\n", "  "]).join(parts))
    return out


@pytest.fixture(scope="module", params=NAMES)
def tok(request, tmp_path_factory):
    name = request.param
    d = tmp_path_factory.mktemp(name)
    write_tokenizer_files(name, d)
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    specials = [t.content for t in hf.get_added_tokens_decoder().values() if t.special]
    return name, d, hf, specials


def run_jsonl(cmd, d, lines, tmp_path, *flags, env=None):
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps(x, ensure_ascii=True) + "\n" for x in lines), encoding="utf-8")
    r = run_silica(cmd, d, "--jsonl", f, *flags, timeout=600, env=env)
    assert r.rc == 0, r.err
    out = [json.loads(l) for l in r.out.split("\n")[:-1]]
    assert len(out) == len(lines)
    return out


def compare(name, what, inputs, got, want):
    bad = [(i, g, w) for i, g, w in zip(inputs, got, want) if g != w]
    rate = 100.0 * (len(inputs) - len(bad)) / max(1, len(inputs))
    print(f"{name} {what}: {len(inputs) - len(bad)}/{len(inputs)} identical ({rate:.2f}%)")
    assert not bad, f"{name} {what}: {rate:.2f}% identical; first mismatches: {bad[:3]!r}"


def test_corpus_size(tok):
    assert len(corpus(tok[3])) >= 300


def test_encode(tok, tmp_path):
    name, d, hf, specials = tok
    texts = corpus(specials)
    got = run_jsonl("tokenize", d, texts, tmp_path)
    want = [hf.encode(t, add_special_tokens=False) for t in texts]
    compare(name, "encode ids", texts, [g["ids"] for g in got], [w.ids for w in want])
    compare(name, "encode tokens", texts, [g["tokens"] for g in got], [w.tokens for w in want])


def test_encode_add_special(tok, tmp_path):
    name, d, hf, specials = tok
    texts = corpus(specials)
    got = run_jsonl("tokenize", d, texts, tmp_path, "--add-special")
    compare(name, "encode --add-special", texts, [g["ids"] for g in got],
            [hf.encode(t, add_special_tokens=True).ids for t in texts])


def test_encode_special_as_text(tok, tmp_path):
    name, d, hf, specials = tok
    texts = corpus(specials)
    got = run_jsonl("tokenize", d, texts, tmp_path, "--special-as-text")
    hf.encode_special_tokens = True
    try:
        want = [hf.encode(t, add_special_tokens=False).ids for t in texts]
    finally:
        hf.encode_special_tokens = False
    compare(name, "encode --special-as-text", texts, [g["ids"] for g in got], want)


def id_sequences(hf, specials, texts):
    seqs = [hf.encode(t, add_special_tokens=True).ids for t in texts]
    rnd = random.Random(99)
    n = hf.get_vocab_size(with_added_tokens=True)
    vocab = hf.get_vocab(with_added_tokens=True)
    byte_ids = [v for k, v in vocab.items() if len(k) == 6 and k.startswith("<0x")]
    for _ in range(100):  # random ids: broken UTF-8, byte fallback runs, specials anywhere
        seq = [rnd.randrange(n) for _ in range(rnd.randint(1, 12))]
        if byte_ids and rnd.random() < 0.5:
            seq[rnd.randrange(len(seq)):0] = [rnd.choice(byte_ids) for _ in range(rnd.randint(1, 4))]
        seqs.append([i for i in seq if hf.id_to_token(i) is not None])
    return seqs


@pytest.mark.parametrize("skip", [False, True])
def test_decode_and_stream(tok, tmp_path, skip):
    name, d, hf, specials = tok
    seqs = id_sequences(hf, specials, corpus(specials))
    flags = ["--stream"] + (["--skip-special"] if skip else [])
    got = run_jsonl("detokenize", d, seqs, tmp_path, *flags)
    want = [hf.decode(s, skip_special_tokens=skip) for s in seqs]
    compare(name, f"decode skip_special={skip}", seqs, [g["text"] for g in got], want)
    # the generic decoder chain (the fast path is off) must agree too
    generic = run_jsonl("detokenize", d, seqs, tmp_path, *flags[1:], env={"SILICA_TOK_GENERIC_DECODE": "1"})
    compare(name, f"decode (generic chain) skip_special={skip}", seqs, [g["text"] for g in generic], want)
    want_stream = []
    for s in seqs:
        ds = DecodeStream(skip_special_tokens=skip)
        try:
            want_stream.append([ds.step(hf, i) for i in s])
        except Exception as e:  # HF raises "Invalid prefix" on some random byte runs: silica must fail too
            assert "prefix" in str(e)
            want_stream.append("error")
    compare(name, f"stream decode skip_special={skip}", seqs,
            ["error" if "stream_error" in g else g["stream"] for g in got], want_stream)


def test_stream_never_splits_utf8(tok):
    name, d, hf, specials = tok
    ids = hf.encode("héllo 😀 世界 👨‍👩‍👧", add_special_tokens=False).ids
    r = run_silica("detokenize", d, "--ids", ",".join(map(str, ids)), "--stream", "--json")
    assert r.rc == 0, r.err
    j = json.loads(r.out)
    chunks = [c for c in j["stream"] if c is not None]
    assert "".join(chunks) == hf.decode(ids, skip_special_tokens=False)
    for c in chunks:
        c.encode("utf-8")  # every chunk is whole characters (json would carry lone surrogates otherwise)
        assert "\ufffd" not in c


INVALID_UTF8 = [b"abc\xffdef", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong",
                b"ok \xf4\x90\x80\x80 big", b"\x80\x80\x80", b"mixed \xe4\xb8\xad\xe6 text \xff\xfe"]


@pytest.mark.parametrize("raw", INVALID_UTF8, ids=range(len(INVALID_UTF8)))
def test_invalid_utf8_like_python_replace(tok, tmp_path, raw):
    """HF tokenizers only takes valid strings; silica repairs bytes exactly as
    bytes.decode('utf-8', 'replace') (= Rust from_utf8_lossy) and encodes that."""
    name, d, hf, _ = tok
    f = tmp_path / "bad.txt"
    f.write_bytes(raw)
    r = run_silica("tokenize", d, "--file", f)
    assert r.rc == 0, r.err
    assert json.loads(r.out)["ids"] == hf.encode(raw.decode("utf-8", "replace"), add_special_tokens=False).ids


def test_text_and_tokenizer_json_path(tok):
    name, d, hf, _ = tok
    r = run_silica("tokenize", d / "tokenizer.json", "--text", "Hello world 123", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["ids"] == hf.encode("Hello world 123", add_special_tokens=False).ids
    r2 = run_silica("detokenize", d, "--ids", ",".join(map(str, json.loads(r.out)["ids"])))
    assert r2.rc == 0 and r2.out == "Hello world 123"


# ---------------------------------------------------------------- bad input

def small_tokenizer(**over):
    """A tiny valid byte-level BPE tokenizer.json (dict), edited by tests."""
    vocab = {ch: i for i, ch in enumerate(["a", "b", "ab", "Ġ", "Ġa"])}
    j = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [
        {"id": 5, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": True}],
         "normalizer": None,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
         "post_processor": None,
         "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
         "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                   "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                   "vocab": vocab, "merges": ["a b", "Ġ a"]}}
    j.update(over)
    return j


def test_small_tokenizer_matches_hf(tmp_path):
    p = tmp_path / "tokenizer.json"
    p.write_text(json.dumps(small_tokenizer()))
    hf = Tokenizer.from_file(str(p))
    for text in ["ab a ab", "<s>ab", "aab b"]:
        r = run_silica("tokenize", p, "--text", text)
        assert r.rc == 0, r.err
        assert json.loads(r.out)["ids"] == hf.encode(text, add_special_tokens=False).ids


BAD = [
    ("notjson", "{\"model\": ", "not valid JSON"),
    ("nomodel", json.dumps({"added_tokens": []}), "missing \"model\""),
    ("wordpiece", json.dumps(small_tokenizer(model={"type": "WordPiece", "vocab": {}})), "unsupported model \"WordPiece\""),
    ("unigram", json.dumps(small_tokenizer(model={"type": "Unigram", "vocab": []})), "unsupported model \"Unigram\""),
    ("bertnorm", json.dumps(small_tokenizer(normalizer={"type": "BertNormalizer"})), "unsupported normalizer \"BertNormalizer\""),
    ("charpre", json.dumps(small_tokenizer(pre_tokenizer={"type": "CharDelimiterSplit", "delimiter": " "})),
     "unsupported pre_tokenizer \"CharDelimiterSplit\""),
    ("ctcdec", json.dumps(small_tokenizer(decoder={"type": "CTC"})), "unsupported decoder \"CTC\""),
    ("post", json.dumps(small_tokenizer(post_processor={"type": "Fancy"})), "unsupported post_processor \"Fancy\""),
    ("badmerge", json.dumps(small_tokenizer(model={**small_tokenizer()["model"], "merges": ["a zz"]})), "merges[0]"),
    ("badid", json.dumps(small_tokenizer(model={**small_tokenizer()["model"], "vocab": {"a": -3}})), "model.vocab"),
    ("badregex", json.dumps(small_tokenizer(pre_tokenizer={"type": "Split", "pattern": {"Regex": "(unclosed"},
                                                           "behavior": "Isolated", "invert": False})), "bad regex"),
    ("badbehavior", json.dumps(small_tokenizer(pre_tokenizer={"type": "Split", "pattern": {"String": " "},
                                                              "behavior": "Sideways", "invert": False})), "Sideways"),
    ("addedbad", json.dumps(small_tokenizer(added_tokens=[{"id": "x", "content": 3}])), "added_tokens[0]"),
    ("array", "[1, 2, 3]", "not a JSON object"),
]


@pytest.mark.parametrize("name,text,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_tokenizer_json(tmp_path, name, text, needle):
    p = tmp_path / "tokenizer.json"
    p.write_text(text)
    r = run_silica("tokenize", p, "--text", "hello")
    assert_clean_error(r, str(p), needle)


def test_missing_tokenizer_json(tmp_path):
    r = run_silica("tokenize", tmp_path, "--text", "x")
    assert_clean_error(r, "no tokenizer.json")


def test_ids_out_of_range(tmp_path):
    p = tmp_path / "tokenizer.json"
    p.write_text(json.dumps(small_tokenizer()))
    assert_clean_error(run_silica("detokenize", p, "--ids", "1,99"), "token id 99", "not in the vocabulary")
    assert_clean_error(run_silica("detokenize", p, "--ids", "1,x"), "--ids")
    assert_clean_error(run_silica("detokenize", p, "--ids", "99999999999"), "out of range")


def test_bad_jsonl(tmp_path):
    p = tmp_path / "tokenizer.json"
    p.write_text(json.dumps(small_tokenizer()))
    f = tmp_path / "in.jsonl"
    f.write_text("\"ok\"\n{\"not\": \"a string\"}\n")
    r = run_silica("tokenize", p, "--jsonl", f)
    assert r.rc == 2 and len(r.err.strip().splitlines()) == 1 and "in.jsonl:2" in r.err


def test_usage_errors(tmp_path):
    assert_clean_error(run_silica("tokenize"), "missing")
    assert_clean_error(run_silica("tokenize", tmp_path, "--text", "a", "--file", "b"), "exactly one")
    assert_clean_error(run_silica("detokenize", tmp_path), "exactly one")
    assert run_silica("tokenize", "--help").rc == 0
    assert run_silica("detokenize", "--help").rc == 0


def test_part5_example(tok):
    """part5/examples/tokenize_example: ids (with specials) and decode as HF."""
    import os
    import subprocess
    from pathlib import Path
    from conftest import SILICA
    exe = Path(os.environ.get("SILICA_EXAMPLES", SILICA.parent / "examples")) / "part5" / "tokenize_example"
    assert exe.exists(), f"example not built at {exe}"
    name, d, hf, _ = tok
    text = "Hello, world! 👋 héllo"
    p = subprocess.run([str(exe), str(d), text], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    want = hf.encode(text, add_special_tokens=True).ids
    assert lines[0].startswith(f"{len(want)} ids:")
    assert [int(x.split("(")[0]) for x in lines[0].split(":", 1)[1].split()] == want
    assert lines[2] == "decoded: " + hf.decode(want, skip_special_tokens=True)


# ------------------------------------------------- synthetic tokenizers (HF-built)
# Components the six real tokenizers do not use are proven on small BPE models
# that HF itself trains and serializes; silica must match HF on the corpus.

def _train(model_kw, trainer_kw, normalizer=None, pre=None, decoder=None, post=None, added=None, alphabet=None):
    from tokenizers import AddedToken, models, trainers
    tk = Tokenizer(models.BPE(**model_kw))
    if normalizer is not None:
        tk.normalizer = normalizer
    if pre is not None:
        tk.pre_tokenizer = pre
    if decoder is not None:
        tk.decoder = decoder
    tr = trainers.BpeTrainer(vocab_size=400, show_progress=False, initial_alphabet=alphabet or [], **trainer_kw)
    tk.train_from_iterator(BASE * 3, tr)
    if added:
        tk.add_special_tokens([a for a in added if a.special])
        tk.add_tokens([a for a in added if not a.special])
        _ = AddedToken
    if post is not None:
        tk.post_processor = post
    return tk


def _synthetic():
    from tokenizers import AddedToken
    from tokenizers import decoders as D
    from tokenizers import normalizers as N
    from tokenizers import pre_tokenizers as P
    from tokenizers import processors as PP
    from tokenizers import Regex
    added = [AddedToken("<s>", special=True, normalized=False), AddedToken("</s>", special=True, normalized=False),
             AddedToken("[L]", lstrip=True, special=True, normalized=False),
             AddedToken("[R]", rstrip=True, special=False, normalized=False),
             AddedToken("word", single_word=True, special=False, normalized=True),
             AddedToken("HeLLo", special=False, normalized=True)]
    return {
        "metaspace_first": _train({"unk_token": "[UNK]"}, {"special_tokens": ["[UNK]"]},
                                  normalizer=N.Sequence([N.NFKC(), N.Lowercase()]),
                                  pre=P.Metaspace(prepend_scheme="first"), decoder=D.Metaspace(prepend_scheme="first"),
                                  added=added),
        "metaspace_always_nosplit": _train({"unk_token": "[UNK]", "fuse_unk": True}, {"special_tokens": ["[UNK]"]},
                                           normalizer=N.Strip(), pre=P.Metaspace(prepend_scheme="always", split=False),
                                           decoder=D.Metaspace(prepend_scheme="always")),
        "metaspace_never": _train({"unk_token": "[UNK]"}, {"special_tokens": ["[UNK]"]}, normalizer=N.NFD(),
                                  pre=P.Metaspace(prepend_scheme="never"), decoder=D.Metaspace(prepend_scheme="never")),
        "wordpiece_like": _train({"unk_token": "[UNK]", "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>"},
                                 {"special_tokens": ["[UNK]", "[CLS]", "[SEP]"], "continuing_subword_prefix": "##",
                                  "end_of_word_suffix": "</w>"},
                                 normalizer=N.Sequence([N.NFKD(), N.Strip(left=True, right=False)]),
                                 pre=P.Sequence([P.Whitespace(), P.Digits(individual_digits=True), P.Punctuation()]),
                                 decoder=D.BPEDecoder(suffix="</w>")),
        "gpt2_prefix_space": _train({}, {"special_tokens": []}, normalizer=N.NFD(),
                                    pre=P.ByteLevel(add_prefix_space=True, use_regex=True),
                                    decoder=D.ByteLevel(), alphabet=P.ByteLevel.alphabet(), added=added,
                                    post=PP.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 400), ("</s>", 401)])),
        "split_behaviors": _train({"unk_token": "[UNK]"}, {"special_tokens": ["[UNK]"]},
                                  normalizer=N.Replace(Regex("[0-9]+"), "#"),
                                  pre=P.Sequence([P.Split(" ", "merged_with_previous"),
                                                  P.Split(Regex("[aeiou]"), "merged_with_next"),
                                                  P.Split(Regex("[.,!?]"), "removed"),
                                                  P.Split(Regex("\\w+"), "contiguous", invert=True),
                                                  P.WhitespaceSplit()]),
                                  decoder=D.Sequence([D.Replace("#", "<n>"), D.Strip(" ", 1, 1), D.Fuse()])),
        "bytefallback_nounk": _train({"byte_fallback": True}, {"special_tokens": [f"<0x{i:02X}>" for i in range(256)]},
                                     pre=P.Split(Regex("\\p{L}+|\\p{N}|\\s+|."), "isolated"),
                                     decoder=D.Sequence([D.ByteFallback(), D.Fuse()]),
                                     post=PP.BertProcessing(("</s>", 1), ("<s>", 0))),
    }


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = {}
    base = tmp_path_factory.mktemp("synthetic")
    for name, hf in _synthetic().items():
        p = base / name
        p.mkdir()
        hf.save(str(p / "tokenizer.json"))
        out[name] = (p, Tokenizer.from_file(str(p / "tokenizer.json")))
    return out


@pytest.mark.parametrize("name", ["metaspace_first", "metaspace_always_nosplit", "metaspace_never", "wordpiece_like",
                                  "gpt2_prefix_space", "split_behaviors", "bytefallback_nounk"])
def test_synthetic_tokenizers(synthetic, tmp_path, name):
    d, hf = synthetic[name]
    texts = corpus(["<s>", "</s>", "[L]", "[R]"]) + ["a word b", "sword words", " [L] x [R] y", "HeLLo hello HELLO",
                                                     "x  [L]", "[R]   z", "word", "_word_"]
    for flags, add in (((), False), (("--add-special",), True)):
        got = run_jsonl("tokenize", d, texts, tmp_path, *flags)
        want = [hf.encode(t, add_special_tokens=add) for t in texts]
        compare(name, f"encode add_special={add}", texts, [g["ids"] for g in got], [w.ids for w in want])
        compare(name, f"tokens add_special={add}", texts, [g["tokens"] for g in got], [w.tokens for w in want])
    got = run_jsonl("tokenize", d, texts, tmp_path, "--special-as-text")
    hf.encode_special_tokens = True
    try:
        want = [hf.encode(t, add_special_tokens=False).ids for t in texts]
    finally:
        hf.encode_special_tokens = False
    compare(name, "encode --special-as-text", texts, [g["ids"] for g in got], want)
    seqs = [hf.encode(t).ids for t in texts]
    got = run_jsonl("detokenize", d, seqs, tmp_path)
    compare(name, "decode", seqs, [g["text"] for g in got], [hf.decode(s, skip_special_tokens=False) for s in seqs])


def test_config_bos_without_post_processor(tmp_path):
    """No post_processor in tokenizer.json: tokenizer_config.json's add_bos_token decides, with the
    BOS named by the config or, failing that, special_tokens_map.json (transformers' rule)."""
    (tmp_path / "tokenizer.json").write_text(json.dumps(small_tokenizer()))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"bos_token": {"content": "<s>"}}))
    r = run_silica("tokenize", tmp_path, "--text", "ab", "--add-special")
    assert r.rc == 0, r.err
    assert json.loads(r.out) == {"ids": [5, 2], "tokens": ["<s>", "ab"]}
    assert json.loads(run_silica("tokenize", tmp_path, "--text", "ab").out)["ids"] == [2]
    (tmp_path / "special_tokens_map.json").write_text("[1]")
    assert_clean_error(run_silica("tokenize", tmp_path, "--text", "ab"), "special_tokens_map.json", "not a JSON object")
    (tmp_path / "special_tokens_map.json").unlink()
    assert_clean_error(run_silica("tokenize", tmp_path, "--text", "ab"), "add_bos_token is true")
