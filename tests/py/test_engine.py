"""The CPU inference engine against transformers.

Oracle: tests/fixtures/models/engine_models.tar.xz, made by
tools/make_reference_models.py with real torch 2.11 + transformers 5.17:
tiny random-weight engine_models of every supported architecture (f32 / bf16,
safetensors / pytorch_model.bin; weights exactly representable in bf16, so one
f32 reference serves both), transformers' logits (eager attention, float32,
CPU) for every position of prompt + greedy continuation, and the continuation
transformers' generate() produced with its KV cache.  Logits and the
thread/batch checks run under every kernel set this CPU has (kernel_sets.py).
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import assert_clean_error, run_silica
from kernel_sets import kernel_sets, simd_env, simd_id

MAIN = ["llama", "llama3", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"]
ROPE = ["llama-linear", "llama-dynamic", "llama-yarn", "phi3-long"]
VARIANTS = ["f32-st", "f32-bin", "bf16-st", "bf16-bin"]
CASES = [(a, v) for a in MAIN for v in VARIANTS] + [(a, "f32-st") for a in ROPE]
WORST = {}
# transformers' Phi-3 generate() drops its KV cache when the sequence first
# crosses original_max_position_embeddings (short -> long RoPE factors) and
# continues from the last token alone, so for phi3-long only the first
# generated token is comparable; its logits (one full forward) are compared.
CROSSES_LONGROPE = {"phi3-long"}


def expected_ids(arch, ref, got):
    return ref["generated"] if arch not in CROSSES_LONGROPE else ref["generated"][:1] + got[1:]


def ref_of(engine_models, arch):
    ref = json.loads((engine_models / arch / "ref.json").read_text())
    return ref, np.load(engine_models / arch / "logits.npy")


def silica_logits(model_dir, ids, *extra, simd=""):
    r = run_silica("logits", model_dir, "--ids", ",".join(map(str, ids)), "--json", *extra, check=True,
                   env=simd_env(simd))
    return np.array(r.json()["logits"], dtype=np.float32)


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("arch,variant", CASES)
def test_logits_match_transformers(engine_models, arch, variant):
    ref, want = ref_of(engine_models, arch)
    # every kernel set this CPU runs (kernel_sets.py) on the safetensors variants (f32 and bf16 rows)
    for simd in kernel_sets() if variant.endswith("-st") else [""]:
        got = silica_logits(engine_models / arch / variant, ref["prompt"] + ref["generated"], "--kv", "f32", simd=simd)
        assert got.shape == want.shape
        err = rel_err(got, want)
        WORST[arch] = max(WORST.get(arch, 0.0), err)
        print(f"{arch} {variant} [{simd_id(simd)}]: max|dlogit| / max|logit| = {err:.3e}")
        assert err <= 1e-4, f"{arch} {variant} [{simd_id(simd)}]: relative error {err:.3e}"
        assert (got.argmax(-1) == want.argmax(-1)).all(), simd_id(simd)


@pytest.mark.parametrize("arch,variant", CASES)
def test_greedy_matches_transformers(engine_models, arch, variant):
    ref, _ = ref_of(engine_models, arch)
    r = run_silica("run", engine_models / arch / variant, "--ids", ",".join(map(str, ref["prompt"])),
                   "--max-tokens", len(ref["generated"]), "--json", "--kv", "f32", check=True)
    out = r.json()
    assert out["ids"] == expected_ids(arch, ref, out["ids"])
    assert out["prompt_tokens"] == len(ref["prompt"])
    assert out["generated_tokens"] == len(ref["generated"])
    assert out["stop_reason"] == "length"
    assert out["peak_rss_bytes"] > 0


@pytest.mark.parametrize("arch", MAIN + ROPE)
def test_kv_cache_defaults_to_the_model_dtype(engine_models, arch):
    """Exact by default: f32 weights get an f32 KV cache (as mlx_lm and
    transformers keep keys/values in the compute dtype), so the default logits
    equal --kv f32's and transformers' to ~1e-6 relative; an f16 cache (5e-4
    here) stays one flag away; bf16 weights default to f16."""
    ref, want = ref_of(engine_models, arch)
    ids = ref["prompt"] + ref["generated"]
    got = silica_logits(engine_models / arch / "f32-st", ids)
    assert rel_err(got, want) <= 1e-5
    assert np.array_equal(got, silica_logits(engine_models / arch / "f32-st", ids, "--kv", "f32"))
    f16 = silica_logits(engine_models / arch / "f32-st", ids, "--kv", "f16")
    assert 1e-5 < rel_err(f16, want) <= 1e-2
    if arch in MAIN:   # the RoPE-scaling models come in f32 only
        bf16 = silica_logits(engine_models / arch / "bf16-st", ids)
        assert np.array_equal(bf16, silica_logits(engine_models / arch / "bf16-st", ids, "--kv", "f16"))
    r = run_silica("run", engine_models / arch / "f32-st", "--ids", ",".join(map(str, ref["prompt"])),
                   "--max-tokens", len(ref["generated"]), "--json", check=True)
    assert r.json()["ids"] == expected_ids(arch, ref, r.json()["ids"])
    # the session allocated what fit estimates: f32 = 2 x the f16 cache
    kv32 = r.json()["kv_bytes"]
    r16 = run_silica("run", engine_models / arch / "f32-st", "--ids", ",".join(map(str, ref["prompt"])),
                     "--max-tokens", len(ref["generated"]), "--json", "--kv", "f16", check=True)
    assert kv32 == 2 * r16.json()["kv_bytes"]


@pytest.mark.parametrize("arch", MAIN + ROPE)
def test_legacy_config_form(engine_models, arch, tmp_path):
    """The older rope_theta / rope_scaling spelling gives the same logits."""
    ref, want = ref_of(engine_models, arch)
    d = tmp_path / arch
    shutil.copytree(engine_models / arch / "f32-st", d)
    legacy = json.loads((engine_models / arch / "config_legacy.json").read_text())
    assert "rope_parameters" not in legacy
    (d / "config.json").write_text(json.dumps(legacy))
    got = silica_logits(d, ref["prompt"] + ref["generated"], "--kv", "f32")
    assert rel_err(got, want) <= 1e-4


@pytest.mark.parametrize("simd", kernel_sets(), ids=simd_id)
@pytest.mark.parametrize("arch", ["llama3", "gemma2", "phi3", "phi3-long"])
def test_threads_and_batches_do_not_change_results(engine_models, arch, simd):
    """In every kernel set this CPU runs (SILICA_SIMD caps the choice)."""
    ref, _ = ref_of(engine_models, arch)
    ids = ref["prompt"] + ref["generated"]
    d = engine_models / arch / ("f32-st" if arch in ROPE else "bf16-st")
    one = silica_logits(d, ids, "--threads", "1", simd=simd)
    assert np.array_equal(one, silica_logits(d, ids, "--threads", "3", simd=simd))
    # prompt in batches of 5 positions: same numbers as one batch
    assert np.array_equal(one, silica_logits(d, ids, "--threads", "2", "--batch", "5", simd=simd))


def test_logits_text_output(engine_models):
    ref, want = ref_of(engine_models, "llama")
    r = run_silica("logits", engine_models / "llama" / "f32-st", "--ids", "1,2,3", check=True)
    assert r.out.count("argmax") == 3


# ---------------------------------------------------------------- sampling

def gen(engine_models, *args):
    r = run_silica("run", engine_models / "llama" / "f32-st", "--ids", "1,17,42", "--max-tokens", 12, "--json",
                   *args, check=True)
    return r.json()["ids"]


def test_seed_reproducible_and_sampling_varies(engine_models):
    a = gen(engine_models, "--temp", "1.5", "--seed", "7")
    assert a == gen(engine_models, "--temp", "1.5", "--seed", "7")
    others = {tuple(gen(engine_models, "--temp", "1.5", "--seed", s)) for s in ("1", "2", "3")}
    assert len(others | {tuple(a)}) > 1
    greedy = gen(engine_models)
    assert gen(engine_models, "--temp", "1.5", "--top-k", "1", "--seed", "9") == greedy
    assert gen(engine_models, "--temp", "1.0", "--min-p", "1.0", "--seed", "9") == greedy
    assert gen(engine_models, "--temp", "1.0", "--top-p", "1e-6", "--seed", "9") == greedy


def test_repeat_penalty_changes_repetitive_output(engine_models):
    # qwen2's greedy continuation repeats one id; a strong penalty breaks that
    ref, _ = ref_of(engine_models, "qwen2")
    d = engine_models / "qwen2" / "f32-st"
    p = ",".join(map(str, ref["prompt"]))
    r = run_silica("run", d, "--ids", p, "--max-tokens", 8, "--json", "--repeat-penalty", "100",
                   "--presence-penalty", "5", check=True)
    ids = r.json()["ids"]
    assert ids[0] == ref["generated"][0] and len(set(ids)) > 1


def test_eos_from_generation_config(engine_models, tmp_path):
    ref, _ = ref_of(engine_models, "llama")
    d = tmp_path / "m"
    shutil.copytree(engine_models / "llama" / "f32-st", d)
    stop_at = ref["generated"][2]
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [999, stop_at]}))
    r = run_silica("run", d, "--ids", ",".join(map(str, ref["prompt"])), "--max-tokens", 8, "--json",
                   "--kv", "f32", check=True)
    out = r.json()
    assert out["stop_reason"] == "eos"
    assert out["ids"] == ref["generated"][:ref["generated"].index(stop_at) + 1]


# ---------------------------------------------------------------- bad input

def copy_model(engine_models, arch, tmp_path, variant="f32-st"):
    d = tmp_path / f"{arch}-bad"
    shutil.copytree(engine_models / arch / variant, d)
    return d


def edit_config(d, **kw):
    c = json.loads((d / "config.json").read_text())
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    (d / "config.json").write_text(json.dumps(c))


def edit_weights(d, fn):
    t = load_file(str(d / "model.safetensors"))
    fn(t)
    save_file(t, str(d / "model.safetensors"))


def test_unknown_architecture(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    edit_config(d, model_type="gpt2")
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "gpt2", "llama", "gemma3_text", "phi3")


def test_missing_config_field(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    edit_config(d, hidden_size=None)
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "hidden_size")


def test_bad_config_field_type(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    edit_config(d, num_attention_heads="four")
    assert_clean_error(run_silica("run", d, "--ids", "1,2"), "num_attention_heads")


@pytest.mark.parametrize("field,value", [("num_hidden_layers", 10 ** 9), ("eos_token_id", 1e10),
                                         ("eos_token_id", [2, 2.5]), ("bos_token_id", "<s>"),
                                         ("partial_rotary_factor", 1e16)])
def test_implausible_config_values(engine_models, tmp_path, field, value):
    """Found by fuzzing: values that once overflowed an int or allocated gigabytes."""
    d = copy_model(engine_models, "llama", tmp_path)
    edit_config(d, **{field: value})
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), field)


def test_contradictory_rope_fields(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    edit_config(d, rope_theta=500000.0)   # rope_parameters says 10000
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "rope_theta", "rope_parameters")


def test_heads_not_dividing(engine_models, tmp_path):
    d = copy_model(engine_models, "llama3", tmp_path)
    edit_config(d, num_key_value_heads=3)
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "num_key_value_heads")


def test_unknown_rope_type(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    edit_config(d, rope_parameters={"rope_type": "spiral", "rope_theta": 10000.0})
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "spiral", "longrope")


def test_longrope_factor_count(engine_models, tmp_path):
    d = copy_model(engine_models, "phi3", tmp_path)
    c = json.loads((d / "config.json").read_text())
    c["rope_parameters"]["short_factor"] = [1.0, 1.0]
    (d / "config.json").write_text(json.dumps(c))
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "short_factor")


def test_missing_tensor_named(engine_models, tmp_path):
    d = copy_model(engine_models, "qwen2", tmp_path)
    edit_weights(d, lambda t: t.pop("model.layers.1.self_attn.k_proj.bias"))
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "model.layers.1.self_attn.k_proj.bias", "missing")


def test_missing_lm_head_when_untied(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    edit_weights(d, lambda t: t.pop("lm_head.weight"))
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "lm_head.weight")


def test_misshaped_tensor_named(engine_models, tmp_path):
    d = copy_model(engine_models, "gemma2", tmp_path)

    def f(t):
        w = t["model.layers.0.mlp.down_proj.weight"]
        t["model.layers.0.mlp.down_proj.weight"] = np.ascontiguousarray(w[:, :100])
    edit_weights(d, f)
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "model.layers.0.mlp.down_proj.weight", "[64, 100]")


def test_config_contradicts_weights(engine_models, tmp_path):
    d = copy_model(engine_models, "mistral", tmp_path)
    edit_config(d, intermediate_size=256)
    assert_clean_error(run_silica("logits", d, "--ids", "1,2"), "gate_proj.weight", "intermediate_size")
    d2 = copy_model(engine_models, "llama", tmp_path / "x")
    edit_config(d2, num_hidden_layers=1)
    assert_clean_error(run_silica("logits", d2, "--ids", "1,2"), "num_hidden_layers")
    d3 = copy_model(engine_models, "llama", tmp_path / "y")
    edit_config(d3, vocab_size=300)
    assert_clean_error(run_silica("logits", d3, "--ids", "1,2"), "embed_tokens.weight", "vocab_size")


def test_ids_out_of_range(engine_models):
    d = engine_models / "llama" / "f32-st"
    assert_clean_error(run_silica("logits", d, "--ids", "1,256"), "256", "vocab_size 256")
    assert_clean_error(run_silica("run", d, "--ids", "5,300"), "300", "out of range")
    assert_clean_error(run_silica("logits", d, "--ids", "1,x"), "--ids", "x")
    assert_clean_error(run_silica("logits", d, "--ids", "1,-3"), "--ids")


def test_prompt_longer_than_context(engine_models):
    d = engine_models / "llama" / "f32-st"
    assert_clean_error(run_silica("logits", d, "--ids", "1,2,3,4,5", "--ctx", "4"), "context of 4")
    assert_clean_error(run_silica("run", d, "--ids", "1,2,3,4,5", "--ctx", "3"), "5 tokens", "context of 3")


def test_generation_stops_at_context(engine_models):
    d = engine_models / "llama" / "f32-st"
    r = run_silica("run", d, "--ids", "1,2,3", "--ctx", "5", "--max-tokens", "10", "--json", check=True)
    assert r.json()["generated_tokens"] == 3 and r.json()["stop_reason"] == "length"


def test_not_a_model_directory(engine_models, tmp_path):
    (tmp_path / "model.safetensors").write_bytes((engine_models / "llama" / "f32-st" / "model.safetensors").read_bytes())
    assert_clean_error(run_silica("logits", tmp_path / "model.safetensors", "--ids", "1"), "config.json")


def test_lfs_pointer_model(engine_models, tmp_path):
    d = copy_model(engine_models, "llama", tmp_path)
    (d / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:" + "ab" * 32 + "\nsize 12345\n")
    assert_clean_error(run_silica("logits", d, "--ids", "1"), "LFS")


def test_bad_sampling_options(engine_models):
    d = engine_models / "llama" / "f32-st"
    assert_clean_error(run_silica("run", d, "--ids", "1", "--top-p", "0"), "--top-p")
    assert_clean_error(run_silica("run", d, "--ids", "1", "--temp", "hot"), "--temp")
    assert_clean_error(run_silica("run", d, "--ids", "1", "--kv", "q3"), "--kv")   # q8 and q4 are valid (quantized KV cache)
    assert_clean_error(run_silica("run", d), "--ids")


def test_zz_report_worst_case():
    """Prints the worst relative error per architecture (run with -s)."""
    for a, e in sorted(WORST.items()):
        print(f"worst {a:14s} {e:.3e}")


def test_doctor_names_the_engine_kernel_set():
    """`silica doctor` names the set the engine runs: on x86-64 Linux the best
    one /proc/cpuinfo's flags allow (the kernel's view of the CPU), and under
    SILICA_SIMD each cap (text and --json agree)."""
    flags = set()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx2", "fma", "f16c"} <= flags:
        best = "avx512"
    elif {"avx2", "fma", "f16c"} <= flags:
        best = "avx2"
    elif {"asimd", "asimddp"} <= flags:
        best = "neondot"
    elif "asimd" in flags:
        best = "neon"
    else:
        best = "portable"
    if best == "avx512" and {"amx_tile", "amx_int8"} <= flags:
        # AMX: the set is "amx" unless the probe refused it (some VMs report AMX and fault), saying why
        amx = run_silica("doctor", "--json", check=True, env={"SILICA_SIMD": ""}).json()["cpu"]["amx"]
        assert amx["in_use"] or amx["detail"].startswith("off: "), amx
        best = "amx" if amx["in_use"] else best
    for simd, want in [("", best), ("scalar", "portable"), ("no-such-set", "portable")] + \
            [(s, s if s != "scalar" else "portable") for s in kernel_sets() if s]:
        env = simd_env(simd) if simd else {"SILICA_SIMD": ""}
        d = run_silica("doctor", "--json", check=True, env=env).json()["cpu"]
        assert d["engine_kernels"] == want, (simd, d)
        if want == "portable":
            assert d["dtype_kernels"] == "scalar"
        text = run_silica("doctor", check=True, env=env).out
        assert f"kernels:  {want} (matmul / quantized dots), {d['dtype_kernels']} (f16/bf16" in text
        assert d["amx"]["in_use"] == (want == "amx"), (simd, d)
        assert f"amx:      {d['amx']['detail']}" in text


def test_doctor_reports_amx_off_on_request():
    """SILICA_NO_AMX=1 takes the AMX tiles out: the engine runs the set below
    (avx512 where AMX would be used), and doctor says why (text and --json)."""
    on = run_silica("doctor", "--json", check=True, env={"SILICA_SIMD": ""}).json()["cpu"]
    off = run_silica("doctor", "--json", check=True, env={"SILICA_SIMD": "", "SILICA_NO_AMX": "1"}).json()["cpu"]
    assert off["amx"]["in_use"] is False
    if on["amx"]["in_use"]:
        assert on["engine_kernels"] == "amx" and off["engine_kernels"] == "avx512", (on, off)
        assert "SILICA_NO_AMX" in off["amx"]["detail"]
    else:
        assert off["engine_kernels"] == on["engine_kernels"]
    text = run_silica("doctor", check=True, env={"SILICA_SIMD": "", "SILICA_NO_AMX": "1"}).out
    assert f"amx:      {off['amx']['detail']}" in text
