"""Files and ids made by a real llama.cpp (built from source, commit in each
record), replayed without llama.cpp.

1. tests/fixtures/models/llama_cpp_ggufs.tar.xz: the reference models of
   engine_models.tar.xz converted by llama.cpp's own convert_hf_to_gguf.py
   (tools/llama_cpp_convert.py: F32 for every family and RoPE variant, F16 and
   Q8_0 for the nine main ones; manifest.json says what the converter was
   given), each with transformers' logits of the converted source
   (ARCH/logits.npy) and llama.cpp's own logits on that very file
   (ARCH/llama_cpp_TYPE.npy, read through part8's llama.cpp adapter by
   tools/llama_cpp_adapter_check.py).  `silica logits` on each file must give
   transformers' logits (F32: 1e-4 of max|logit| as test_arch_table.py; F16
   and Q8_0 within what their rounding costs) and llama.cpp's.
2. tools/llama_cpp_adapter_check.result.json: that adapter run and
   `silica compare --engines silica,llama.cpp` with the real llama.cpp engine.
3. tools/llama_cpp_tokenize.result.json: `llama-tokenize` on the committed
   vocabulary-only GGUFs (tests/data/vocab_gguf) for test_tokenizer.py's
   corpus (tools/llama_cpp_tokenize.py); silica's GGUF tokenizer must give
   the same ids.
"""
import gzip
import hashlib
import importlib.util
import json
import re
import shutil
import tarfile

import numpy as np
import pytest
from tokenizers import Tokenizer

from conftest import DATA, FIXTURES, ROOT, run_silica, tokenizer_json
from test_gguf_tokenizer import WS_RUN_DIFFERS
from test_tokenizer import run_jsonl

TARBALL = FIXTURES / "models" / "llama_cpp_ggufs.tar.xz"
ADAPTER_RESULT = json.loads((ROOT / "tools" / "llama_cpp_adapter_check.result.json").read_text())
TOKENIZE_RESULT = json.loads((ROOT / "tools" / "llama_cpp_tokenize.result.json").read_text(encoding="utf-8"))
with tarfile.open(TARBALL) as _t:
    MANIFEST = json.load(_t.extractfile("g/manifest.json"))
_spec = importlib.util.spec_from_file_location("llama_cpp_convert", ROOT / "tools" / "llama_cpp_convert.py")
llcv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(llcv)
CASES = [(a, t) for a, m in MANIFEST["models"].items() for t in m["files"]]
IDS = [f"{a}-{t}" for a, t in CASES]
# What llama.cpp's converter does not write, so that no GGUF reader can run the source model:
# Gemma 3's layer_types (it never writes sliding_window_pattern; llama.cpp then takes every
# 6th layer as global: the reference model alternates), dynamic NTK RoPE (it writes no
# scaling), Mistral's sliding window (GGUF's llama has none).  These models compare with the
# source as the file describes it, on silica's engine (test_engine.py ties that engine to
# transformers); the others with transformers' logits of the converted source.
LOST = {"gemma3": lambda c: c.update(layer_types=["sliding_attention" if i % 6 < 5 else "full_attention"
                                                  for i in range(c["num_hidden_layers"])]),
        "llama-dynamic": lambda c: c.update(rope_parameters={"rope_theta": c["rope_parameters"]["rope_theta"],
                                                             "rope_type": "default"}),
        "mistral": lambda c: c.update(sliding_window=None)}
WINDOW_LOST = {"mistral": 4}   # transformers' Mistral compares inside its window of 4
# max|silica - transformers| / max|transformers|: F32 as test_arch_table.py (the reference
# weights are exact in F16, so F16 too); Q8_0 rounds weights and activations to 8 bits
# (test_engine_quant.py: 3e-2 on its models; 5.1e-2 measured here for phi3)
VS_SOURCE = {"f32": 1e-4, "f16": 1e-4, "q8_0": 6e-2}


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama_cpp_ggufs")
    with tarfile.open(TARBALL) as t:
        t.extractall(d, filter="data")
    return d / "g"


@pytest.fixture(scope="module")
def as_the_gguf_says(engine_models, tmp_path_factory):
    """arch -> the reference model as the converter was given it (ADJUST) and as its GGUF
    describes it (LOST), an HF directory."""
    made = {}

    def get(arch):
        if arch not in made:
            d = tmp_path_factory.mktemp(arch) / "src"
            shutil.copytree(engine_models / arch / "f32-st", d)
            if arch in llcv.ADJUST:
                llcv.adjust(d, llcv.ADJUST[arch])
            cfg = json.loads((d / "config.json").read_text())
            LOST.get(arch, lambda c: None)(cfg)
            (d / "config.json").write_text(json.dumps(cfg, indent=1))
            made[arch] = d
        return made[arch]
    return get


def silica_logits(path, ids):
    r = run_silica("logits", path, "--ids", ",".join(map(str, ids)), "--json", "--kv", "f32", check=True, timeout=300)
    return np.array(r.json()["logits"], dtype=np.float32)


def test_fixture_says_where_it_came_from(ggufs):
    """One llama.cpp commit for the files and the tokenizer record; every main family in F32,
    F16 and Q8_0, every RoPE variant in F32; every file is the one the manifest hashed."""
    commit = MANIFEST["llama_cpp_commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert ADAPTER_RESULT["llama_cpp_commit"] == commit == TOKENIZE_RESULT["llama_cpp_commit"]
    assert set(MANIFEST["models"]) == set(llcv.ARCHS)
    for arch in llcv.ARCHS:
        assert list(MANIFEST["models"][arch]["files"]) == llcv.OUTTYPES[arch], arch
    for arch, t in CASES:
        f = MANIFEST["models"][arch]["files"][t]
        assert "error" not in f, (arch, t, f)
        assert hashlib.sha256((ggufs / arch / f"{t}.gguf").read_bytes()).hexdigest() == f["sha256"]


@pytest.mark.parametrize("arch,t", [c for c in CASES if c[0] not in ("gemma3", "llama-dynamic")],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] not in ("gemma3", "llama-dynamic")])
def test_llama_cpp_converted_gguf_runs_with_the_source_logits(ggufs, arch, t):
    """transformers' logits of the source the converter was given, on llama.cpp's file."""
    ids = MANIFEST["models"][arch]["ids"]
    n = WINDOW_LOST.get(arch, len(ids))
    got = silica_logits(ggufs / arch / f"{t}.gguf", ids[:n])
    want = np.load(ggufs / arch / "logits.npy")[:n]
    err = rel_err(got, want)
    print(f"{arch} {t}: silica on llama.cpp's file vs transformers: {err:.3e}")
    assert err <= VS_SOURCE[t], f"{arch} {t}: {err:.3e}"
    if t != "q8_0":
        assert np.array_equal(got.argmax(-1), want.argmax(-1))


@pytest.mark.parametrize("arch,t", CASES, ids=IDS)
def test_llama_cpp_file_is_the_model_it_describes(ggufs, as_the_gguf_says, arch, t, tmp_path):
    """Every file, the three the converter cannot describe included: F32 / F16 give the
    logits of the source as the file describes it (1e-4), Q8_0 those of silica's own Q8_0
    conversion of that source (whose blocks are llama-quantize's, test_llama_cpp_check.py)."""
    ids = MANIFEST["models"][arch]["ids"]
    src = as_the_gguf_says(arch)
    got = silica_logits(ggufs / arch / f"{t}.gguf", ids)
    if t == "q8_0":
        own = tmp_path / "own-q8_0.gguf"
        run_silica("convert", src, own, "--to", "gguf", "--q-type", "Q8_0", check=True, timeout=300)
        want, limit = silica_logits(own, ids), 1e-6
    else:
        want, limit = silica_logits(src, ids), 1e-4
    err = rel_err(got, want)
    print(f"{arch} {t}: {err:.3e}")
    assert err <= limit, f"{arch} {t}: {err:.3e}"


# silica and llama.cpp on the same llama.cpp-written file: llama.cpp keeps an f16 KV cache and
# computes in its own order (F32/F16: ~1e-3 of max|logit|); at Q8_0 both quantize activations to
# int8 blocks, each with its own rounding and sum order.
VS_LLAMA_CPP = {"f32": 3e-3, "f16": 3e-3, "q8_0": 6e-2}


@pytest.mark.parametrize("arch,t", CASES, ids=IDS)
def test_silica_equals_llama_cpp_on_its_files(ggufs, arch, t):
    """llama.cpp's own logits (its library, through part8's adapter, tools/llama_cpp_adapter_check.py) and
    silica's on every file llama.cpp's converter wrote — the two the converter cannot describe included,
    where both engines read the file the same way."""
    ids = MANIFEST["models"][arch]["ids"]
    want = np.load(ggufs / arch / f"llama_cpp_{t}.npy")
    got = silica_logits(ggufs / arch / f"{t}.gguf", ids).reshape(want.shape)
    err = rel_err(got, want)
    print(f"{arch} {t}: silica vs llama.cpp {err:.3e}")
    assert err <= VS_LLAMA_CPP[t], f"{arch} {t}: {err:.3e}"
    if t != "q8_0":
        assert np.array_equal(got.argmax(-1), want.argmax(-1))


def test_llama_cpp_adapter_run_is_recorded():
    """The adapter run against llama.cpp built from source: one case per fixture file, the
    engine named by the real library's --version, and `silica compare` giving llama.cpp rows
    (an engine that fails is a row with its error, never dropped).  Cases that ran are held
    to the bounds above (an earlier run crashed inside llama_model_load_from_file with numpy imported
    in the adapter process, PROTOCOL.md; the adapter no longer imports it, and every case now runs)."""
    rec = ADAPTER_RESULT
    version = rec["compare"]["llama"]["json"]["reference"]["engines"]["llama.cpp"]
    assert version.startswith("llama.cpp ") and rec.get("adapter_version", version) == version
    assert sorted((c["arch"], c["type"]) for c in rec["cases"]) == sorted(CASES)
    for c in rec["cases"]:
        assert "error" not in c, c
        assert c["vocab"] == 256 and len(c["greedy"]) == 6
        assert c["topk_answer"] == {"shape": [len(MANIFEST["models"][c["arch"]]["ids"]), 8]}
    assert set(rec["compare"]) == {"llama", "qwen3", "gemma2"}
    for arch, r in rec["compare"].items():
        assert r["rc"] == 0, r
        rep = r["json"]
        assert rep["reference"]["engines"]["llama.cpp"] == version
        rows = {(row["model"].rsplit("/", 1)[-1], row["engine"]): row for row in rep["rows"]}
        for name in ("f32.gguf", "q8_0.gguf"):
            row = rows[(name, "llama.cpp")]
            assert "error" not in row and row["top1"] >= 75, row


@pytest.mark.parametrize("name", sorted(TOKENIZE_RESULT["tokenizers"]))
def test_gguf_tokenizer_ids_against_llama_tokenize(name, tmp_path):
    """silica's GGUF tokenizer gives llama-tokenize's ids, except where llama.cpp itself departs
    from Hugging Face `tokenizers` on the model's tokenizer.json (its regex splits of some
    combining marks: Thai, Devanagari, Vietnamese; SentencePiece merges without scores for
    mistral): there silica gives HF's ids, or, for the two GGUFs whose whitespace pieces the
    converter changed (test_gguf_tokenizer.py: WS_RUN_DIFFERS), HF's tokens hold a ▁ run.
    With --add-special, BOS/EOS are added as llama-tokenize adds them."""
    rec = TOKENIZE_RESULT["tokenizers"][name]
    gz = DATA / "vocab_gguf" / f"{name}.gguf.gz"
    assert hashlib.sha256(gz.read_bytes()).hexdigest() == rec["gguf_gz_sha256"], "rerun tools/llama_cpp_tokenize.py"
    assert None not in rec["ids"]
    g = tmp_path / f"{name}.gguf"
    g.write_bytes(gzip.decompress(gz.read_bytes()))
    hf = Tokenizer.from_str(json.dumps(tokenizer_json(name)))
    texts = rec["texts"]
    got = [r["ids"] for r in run_jsonl("tokenize", g, texts, tmp_path)]
    differ = [(t, a, b) for t, a, b in zip(texts, got, rec["ids"]) if a != b]
    print(f"{name}: {len(texts) - len(differ)}/{len(texts)} identical to llama-tokenize")
    for t, silica_ids, llama_ids in differ:
        enc = hf.encode(t, add_special_tokens=False)
        assert llama_ids != enc.ids, (t, silica_ids, llama_ids)
        assert silica_ids == enc.ids or (name in WS_RUN_DIFFERS and "\u2581\u2581" in "".join(enc.tokens)), \
            (t, silica_ids, enc.ids)
    n = len(rec["ids_add_special"])
    same = {t for t, a, b in zip(texts, got, rec["ids"]) if a == b}
    got = [r["ids"] for r in run_jsonl("tokenize", g, texts[:n], tmp_path, "--add-special")]
    bad = [(t, a, b) for t, a, b in zip(texts, got, rec["ids_add_special"]) if t in same and a != b]
    assert not bad, bad[:3]
