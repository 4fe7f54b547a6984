"""silica tokenize / detokenize on directories that ship only a SentencePiece
tokenizer.model, against transformers' LlamaTokenizerFast, which
converts the .model itself.  The models are trained here with the real
`sentencepiece` package (BPE, with and without byte_fallback); malformed
tokenizer.model files are built byte by byte and must give exit 2, one line.
"""
import json
import random
import struct

import pytest
import sentencepiece as spm
from transformers import LlamaTokenizerFast

from conftest import assert_clean_error, run_silica

WORDS = ("the quick brown fox jumps over lazy dog tokenizer sentence piece model training data hello world "
         "silica checkpoint tensor safetensors llama mistral byte fallback merges vocabulary unicode naïve café "
         "résumé Straße 東京 中文 日本語 テキスト привет мир γειά σου").split()

CONFIG = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
          "unk_token": "<unk>", "model_max_length": 4096}


def corpus_text(seed=1, n=400):
    rnd = random.Random(seed)
    lines = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 12))) +
             rnd.choice([".", "!", "?", ",", " 123", " 2024-01-01", ""]) for _ in range(n)]
    return "\n".join(lines) + "\n"


def make_strings():
    rnd = random.Random(7)
    fixed = ["", " ", "  ", "Hello world", "Hello  world", " leading space", "trailing space ", "tabs\tand\nnewlines\n",
             "naïve café", "東京 中文", "emoji 😀🎉 not in training", "Zürich ÆØÅ ĳ", "<s> literal", "</s>",
             "a", "x" * 50, "12345 67890", "mixed: привет, world! γειά", "\u00a0nbsp", "\r\n", "▁already▁meta",
             "<unk>", "a <sep> b @@ c<sep>", "ﬁ ligature", "٣ arabic-indic digit", "null\x00byte"]
    out = list(fixed)
    pool = WORDS + ["😀", "ß", "\t", "  ", "\n", "?", "!!", "Ω", "ğ", "x"]
    while len(out) < 110:
        out.append("".join(rnd.choice([" ", "", ""]) + rnd.choice(pool) for _ in range(rnd.randint(1, 10))))
    return out


STRINGS = make_strings()


def train(d, **kw):
    d.mkdir()
    src = d.parent / (d.name + ".txt")
    src.write_text(corpus_text(), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(src), model_prefix=str(d / "tokenizer"), model_type="bpe",
                                   minloglevel=2, **kw)
    (d / "tokenizer.vocab").unlink()
    (d / "tokenizer_config.json").write_text(json.dumps(CONFIG))
    return d


MODELS = {
    "bpe300": dict(vocab_size=300, character_coverage=0.98),
    "bpe400_bytes": dict(vocab_size=400, byte_fallback=True, character_coverage=1.0),
    "bpe600_bytes": dict(vocab_size=600, byte_fallback=True, character_coverage=0.9995),
    "bpe400_nodummy_keepws": dict(vocab_size=400, byte_fallback=True, add_dummy_prefix=False,
                                  remove_extra_whitespaces=False, user_defined_symbols=["<sep>", "@@"]),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request, tmp_path_factory):
    d = train(tmp_path_factory.mktemp("spm") / request.param, **MODELS[request.param])
    assert sorted(p.name for p in d.iterdir()) == ["tokenizer.model", "tokenizer_config.json"]
    return request.param, d, LlamaTokenizerFast.from_pretrained(str(d))


def run_jsonl(cmd, d, lines, tmp_path, *flags):
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    r = run_silica(cmd, d, "--jsonl", f, *flags, timeout=300)
    assert r.rc == 0, r.err
    out = [json.loads(l) for l in r.out.split("\n")[:-1]]
    assert len(out) == len(lines)
    return out


def compare(name, what, inputs, got, want):
    bad = [(i, g, w) for i, g, w in zip(inputs, got, want) if g != w]
    print(f"{name} {what}: {len(inputs) - len(bad)}/{len(inputs)} identical")
    assert not bad, f"{name} {what}: first mismatches: {bad[:3]!r}"


@pytest.mark.parametrize("special", [False, True])
def test_encode_matches_transformers(model, tmp_path, special):
    name, d, hf = model
    got = run_jsonl("tokenize", d, STRINGS, tmp_path, *(["--add-special"] if special else []))
    want = [hf(s, add_special_tokens=special)["input_ids"] for s in STRINGS]
    if special:
        assert all(w[:1] == [1] for w in want)
    compare(name, f"encode add_special={special}", STRINGS, [g["ids"] for g in got], want)


def test_decode_matches_transformers(model, tmp_path):
    name, d, hf = model
    seqs = [hf(s)["input_ids"] for s in STRINGS]
    rnd = random.Random(3)
    seqs += [[rnd.randrange(len(hf)) for _ in range(rnd.randint(1, 12))] for _ in range(40)]
    got = run_jsonl("detokenize", d, seqs, tmp_path)
    compare(name, "decode", seqs, [g["text"] for g in got], [hf.decode(s) for s in seqs])


def test_text_mode_and_config(model):
    name, d, hf = model
    r = run_silica("tokenize", d, "--text", "Hello  world", "--add-special", check=True)
    assert r.json()["ids"] == hf("Hello  world")["input_ids"]


def test_unigram_refused(tmp_path):
    d = tmp_path / "uni"
    d.mkdir()
    (tmp_path / "c.txt").write_text(corpus_text(), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(tmp_path / "c.txt"), model_prefix=str(d / "tokenizer"),
                                   model_type="unigram", vocab_size=100, minloglevel=2)
    assert_clean_error(run_silica("tokenize", d, "--text", "hi"), "tokenizer.model", "UNIGRAM")


# ---- malformed files: a tiny protobuf writer ----
def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def field(tag, wt, payload):
    key = varint(tag << 3 | wt)
    return key + (varint(len(payload)) + payload if wt == 2 else payload)


def piece(s, score=0.0, typ=1):
    return field(1, 2, field(1, 2, s) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(typ)))


BPE_SPEC = field(2, 2, field(3, 0, varint(2)))
GOOD = b"".join(piece(s, typ=t) for s, t in [(b"<unk>", 2), (b"<s>", 3), (b"</s>", 3), (b"a", 1), (b"\xe2\x96\x81", 1)]) + BPE_SPEC

MALFORMED = [
    ("empty", b"", "no pieces"),
    ("text", b"this is not a protobuf\n", "tokenizer.model"),
    ("truncated", GOOD[:-3], "malformed"),
    ("long_len", field(1, 2, b"")[:1] + varint(1 << 40), "malformed"),
    ("varint_overflow", b"\x0a" + b"\xff" * 11, "malformed"),
    ("group", bytes([1 << 3 | 3]) + GOOD, "malformed"),
    ("bad_utf8", piece(b"\xff\xfe") + BPE_SPEC, "pieces[0]"),
    ("empty_piece", piece(b"") + BPE_SPEC, "pieces[0]"),
    ("no_piece", field(1, 2, field(3, 0, varint(1))) + BPE_SPEC, "missing"),
    ("bad_type", piece(b"a", typ=9) + BPE_SPEC, "type"),
    ("duplicate", piece(b"a") + piece(b"a") + BPE_SPEC, "duplicate"),
    ("no_model_type", GOOD[:-len(BPE_SPEC)], "UNIGRAM"),
    ("char_model", GOOD + field(2, 2, field(3, 0, varint(4))), "CHAR"),
    ("bad_trainer_spec", GOOD + field(2, 2, b"\x18"), "trainer_spec"),
]


@pytest.mark.parametrize("name,data,needle", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_model(tmp_path, name, data, needle):
    (tmp_path / "tokenizer.model").write_bytes(data)
    assert_clean_error(run_silica("tokenize", tmp_path, "--text", "a"), "tokenizer.model", needle)
    assert_clean_error(run_silica("detokenize", tmp_path, "--ids", "0"), "tokenizer.model")


def test_handmade_model_loads(tmp_path):
    (tmp_path / "tokenizer.model").write_bytes(GOOD)
    r = run_silica("tokenize", tmp_path, "--text", "aa a", check=True)
    assert r.json()["ids"] == LlamaTokenizerFast.from_pretrained(str(tmp_path))("aa a", add_special_tokens=False)["input_ids"]
