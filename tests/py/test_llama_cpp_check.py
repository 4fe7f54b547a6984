"""Replays tools/llama_cpp_check.result.json without llama.cpp.

tools/llama_cpp_check.sh ran real llama.cpp (commit in the json) on GGUFs that
silica wrote from committed sources (models/demo, the random-weight reference
models + a byte-level tokenizer) and recorded each file's sha256, llama.cpp's
greedy ids, and the per-tensor hashes of llama-quantize --pure Q4_K / Q6_K
blocks.  Here today's silica regenerates every GGUF from the same sources:
  * its sha256 must equal the recorded one (what llama.cpp accepted is what
    silica writes; any change to the export breaks this until the check is rerun);
  * `silica run` greedy on it must reproduce llama.cpp's ids (and, for the demo
    model, llama.cpp's prompt tokenization must equal silica's tokenizer);
  * silica's Q4_K / Q6_K blocks of the same F16 GGUF must hash like llama-quantize's;
  * for each named mix (Q4_K_M, Q3_K_S, IQ4_NL, ...) and each of three F16
    sources, `silica quantize --q-type MIX` must give every tensor the type and
    bytes llama-quantize gave it, and report as many row-length fallbacks as
    llama-quantize warned about.
"""
import importlib.util
import json

import pytest

from conftest import ROOT, SILICA, run_silica

spec = importlib.util.spec_from_file_location("llama_cpp_check", ROOT / "tools" / "llama_cpp_check.py")
lcc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lcc)
RECORD = json.loads(lcc.RESULT.read_text(encoding="utf-8"))
CASES = {c[0]: c for c in lcc.CASES}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama_cpp_check")
    lcc.prepare(d)
    (d / "gguf").mkdir()
    return d


@pytest.fixture(scope="module")
def ggufs(work):
    return {name: lcc.build_gguf(SILICA, work, case, work / "gguf") for name, case in CASES.items()}


def test_record_covers_every_case_and_architecture():
    assert sorted(RECORD["models"]) == sorted(CASES)
    assert len(RECORD["llama_cpp_commit"]) == 40
    srcs = {c[1] for c in lcc.CASES}
    assert {"demo", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"} <= srcs
    types = {o for c in lcc.CASES for o in c[2]}
    assert {"F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"} <= types


@pytest.mark.parametrize("name", sorted(CASES))
def test_gguf_is_what_llama_cpp_ran(ggufs, name):
    rec = RECORD["models"][name]
    g = ggufs[name]
    assert g.stat().st_size == rec["gguf_bytes"]
    assert lcc.sha256(g) == rec["gguf_sha256"], f"{name}: silica now writes another GGUF; rerun tools/llama_cpp_check.sh"


@pytest.mark.parametrize("name", sorted(CASES))
def test_silica_greedy_matches_llama_cpp(ggufs, name):
    rec = RECORD["models"][name]
    r = run_silica("run", ggufs[name], "--ids", ",".join(map(str, rec["prompt_ids"])), "--max-tokens",
                   rec["n_predict"], "--json", check=True, timeout=300)
    assert r.json()["ids"] == rec["llama_cpp_ids"]


def test_demo_prompt_tokenized_like_llama_cpp():
    """llama.cpp tokenized the demo prompt from the GGUF's tokenizer metadata; silica
    (from tokenizer.json) must produce the same ids, BOS included."""
    r = run_silica("run", lcc.DEMO, lcc.DEMO_PROMPT, "--prompt-ids", "--no-chat-template", check=True)
    assert json.loads(r.out) == RECORD["models"]["demo-q4_1"]["prompt_ids"]


@pytest.fixture(scope="module")
def f16(work):
    return lcc.kquant_source(SILICA, work / "gguf")


@pytest.mark.parametrize("qtype", lcc.KQUANT_TYPES)
def test_kquant_blocks_match_llama_quantize(work, f16, qtype):
    rec = RECORD["kquant"][qtype]
    assert lcc.sha256(f16) == rec["source_sha256"]
    assert rec["identical_tensors"] == len(rec["llama_quantize"]) > 50 and not rec["differing_tensors"]
    # llama-quantize --pure kept only the 1-D norms in F32
    assert all(k.endswith("norm.weight") and v == "F32" for k, v in rec["kept_in_other_types"].items())
    got = lcc.tensor_hashes(lcc.silica_kquant(SILICA, f16, qtype, work / "gguf"), {qtype})
    assert got == rec["llama_quantize"]


@pytest.fixture(scope="module")
def mix_sources(work):
    return {src: lcc.mix_source(SILICA, work, src, work / "gguf") for src in lcc.MIX_SOURCES}


def test_mix_record_exercises_the_rules():
    """The record is llama-quantize's: its mixes use every type silica quantizes to,
    bump attn_v / ffn_down by layer, and fall back on the 64-wide reference models."""
    assert sorted(RECORD["mixes"]) == sorted(lcc.MIX_SOURCES)
    types = {v[0] for src in RECORD["mixes"].values() for m in src["mixes"].values() for v in m["llama_quantize"].values()}
    assert {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"} <= types
    demo = RECORD["mixes"]["demo"]["mixes"]["Q4_K_M"]["llama_quantize"]
    attn_v = {k: v[0] for k, v in demo.items() if k.endswith("attn_v.weight")}
    assert {"Q4_K", "Q6_K"} == set(attn_v.values())          # use_more_bits: some layers bumped, not all
    assert demo["token_embd.weight"][0] == "Q6_K"               # tied head: the embedding takes output's type
    assert RECORD["mixes"]["qwen3"]["mixes"]["Q4_K_M"]["llama_quantize_fallbacks"] > 0


@pytest.mark.parametrize("src", lcc.MIX_SOURCES)
@pytest.mark.parametrize("mix", lcc.MIXES)
def test_mix_matches_llama_quantize(work, mix_sources, src, mix):
    rec = RECORD["mixes"][src]
    assert lcc.sha256(mix_sources[src]) == rec["source_sha256"]
    m = rec["mixes"][mix]
    assert not m["differing_tensors"] and m["identical_tensors"] == len(m["llama_quantize"])
    got, fallbacks = lcc.silica_mix(SILICA, mix_sources[src], mix, work / "gguf")
    assert lcc.tensor_hashes(got) == m["llama_quantize"]
    assert fallbacks == m["llama_quantize_fallbacks"]
