"""llama_cpp_check.py — silica's GGUF export checked by a real llama.cpp.

Used two ways:
  * tools/llama_cpp_check.sh runs `python tools/llama_cpp_check.py run ...` on a
    machine with a built llama.cpp: every case below is converted with silica,
    run greedily by llama.cpp (tools/llama_cpp_greedy.c, the C API, argmax),
    K-quant blocks are compared with llama-quantize --pure, and every named mix
    (Q4_K_M, Q3_K_S, IQ4_NL, ...) of three F16 sources (models/demo: 8 layers,
    rows of 512/1024; qwen3 and phi3 reference models: rows of 64/128, GQA 4,
    fused attn_qkv, so the row-length fallbacks run) is compared tensor by
    tensor with llama-quantize's; the outcome is written to
    tools/llama_cpp_check.result.json (committed).
  * tests/py/test_llama_cpp_check.py imports CASES / prepare / build_gguf /
    kquant_hashes to regenerate every GGUF with today's silica from the same
    sources and assert it is byte-identical to what llama.cpp accepted.

Sources are deterministic: the random-weight reference models in
tests/fixtures/models/engine_models.tar.xz (vocab 256) get a byte-level BPE
tokenizer.json of exactly 256 tokens written here with json.dumps (no
tokenizers version in the loop), and models/demo is used as committed.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARBALL = ROOT / "tests" / "fixtures" / "models" / "engine_models.tar.xz"
DEMO = ROOT / "models" / "demo"
RESULT = Path(__file__).with_name("llama_cpp_check.result.json")
PROMPT_IDS = [1, 17, 42, 99, 5, 200, 123, 7]
DEMO_PROMPT = "def fibonacci(n):\n    "

# name, source (fixture arch or "demo"), silica convert options, prompt, tokens, context
CASES = [
    ("demo-q4_1", "demo", [], DEMO_PROMPT, 24, 64),                       # MLX affine 4-bit -> Q4_1, lossless
    ("demo-q4_k", "demo", ["--q-type", "Q4_K", "--pure"], DEMO_PROMPT, 24, 64),
    ("demo-q6_k", "demo", ["--q-type", "Q6_K"], DEMO_PROMPT, 24, 64),
    ("demo-q4_k_m", "demo", ["--q-type", "Q4_K_M"], DEMO_PROMPT, 24, 64),  # Q4_K + Q6_K attn_v/ffn_down/embd
    # (Q3_K_M ran too: llama.cpp and silica agree on 19 of 24 greedy tokens, then a 0.04-logit
    # near tie flips between llama.cpp's Q8_K-quantized activations and silica's; not a case here)
    ("llama-f16", "llama", ["--q-type", "F16"], PROMPT_IDS, 16, 32),      # HF float model -> F16
    ("mistral-f16", "mistral", ["--q-type", "F16"], PROMPT_IDS, 16, 32),
    ("qwen2-q8_0", "qwen2", ["--q-type", "Q8_0"], PROMPT_IDS, 16, 32),
    ("qwen3-q4_0", "qwen3", ["--q-type", "Q4_0", "--pure"], PROMPT_IDS, 16, 32),
    ("gemma-f16", "gemma", ["--q-type", "F16"], PROMPT_IDS, 16, 32),
    ("gemma2-q8_0", "gemma2", ["--q-type", "Q8_0"], PROMPT_IDS, 16, 32),
    ("gemma3-f32", "gemma3", ["--q-type", "F32"], PROMPT_IDS, 16, 32),
    ("phi3-f16", "phi3", ["--q-type", "F16"], PROMPT_IDS, 16, 32),   # ctx 32 = original: short factors
]
KQUANT_TYPES = ["Q4_K", "Q6_K"]
# llama-quantize's named mixes (tools/quantize/quantize.cpp QUANT_OPTIONS) compared tensor by tensor
MIXES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
         "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL"]
MIX_SOURCES = ["demo", "qwen3", "phi3"]


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (ByteLevel pre-tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def byte_tokenizer_json():
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    return json.dumps(tok, ensure_ascii=False, indent=2)


def prepare(work: Path):
    """Extract the reference models under work/ and give each a tokenizer.json."""
    work.mkdir(parents=True, exist_ok=True)
    archs = sorted({src for _, src, *_ in CASES if src != "demo"})
    with tarfile.open(TARBALL) as t:
        members = [m for m in t.getmembers() if m.name.split("/")[0] in archs and "/f32-st/" in m.name]
        t.extractall(work, members=members, filter="data")
    for a in archs:
        (work / a / "f32-st" / "tokenizer.json").write_text(byte_tokenizer_json(), encoding="utf-8")
    return work


def source_dir(work: Path, src: str) -> Path:
    return DEMO if src == "demo" else work / src / "f32-st"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def silica_cmd(silica, *args, timeout=600):
    p = subprocess.run([str(silica), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"silica {' '.join(map(str, args))}: {p.stderr.strip()}")
    return p.stdout


def build_gguf(silica, work: Path, case, out_dir: Path) -> Path:
    name, src, opts, *_ = case
    out = out_dir / f"{name}.gguf"
    silica_cmd(silica, "convert", source_dir(work, src), out, "--to", "gguf", "--force", *opts)
    return out


def tensor_hashes(path: Path, types=None):
    """{tensor name: [ggml type name, sha256 of its bytes]} (gguf-py reader)."""
    from gguf import GGUFReader
    r = GGUFReader(str(path))
    out = {}
    for t in r.tensors:
        if types is None or t.tensor_type.name in types:
            out[t.name] = [t.tensor_type.name, hashlib.sha256(bytes(t.data.tobytes())).hexdigest()]
    return out


def kquant_source(silica, out_dir: Path) -> Path:
    """The F16 GGUF both quantizers start from (models/demo dequantized)."""
    out = out_dir / "demo-f16.gguf"
    silica_cmd(silica, "convert", DEMO, out, "--to", "gguf", "--force", "--q-type", "F16")
    return out


def silica_kquant(silica, f16: Path, qtype: str, out_dir: Path) -> Path:
    out = out_dir / f"demo-silica-{qtype.lower()}.gguf"
    silica_cmd(silica, "quantize", f16, out, "--q-type", qtype, "--pure", "--force")
    return out


def mix_source(silica, work: Path, src: str, out_dir: Path) -> Path:
    """The F16 GGUF a mix starts from (silica's export of the committed source)."""
    if src == "demo":
        return kquant_source(silica, out_dir)
    out = out_dir / f"{src}-f16.gguf"
    silica_cmd(silica, "convert", source_dir(work, src), out, "--to", "gguf", "--force", "--q-type", "F16")
    return out


def silica_mix(silica, f16: Path, mix: str, out_dir: Path):
    """silica quantize F16 -> mix: (output path, fallback tensors silica reported)."""
    out = out_dir / f"{f16.stem}-silica-{mix.lower()}.gguf"
    r = json.loads(silica_cmd(silica, "quantize", f16, out, "--q-type", mix, "--force", "--json"))
    return out, sum(f["tensors"] for f in r.get("fallbacks", []))


# ------------------------------------------------------------------ the run with llama.cpp


def git_commit(repo: Path, env: str = "") -> str:
    """HEAD of a git checkout; for a tree exported with `git archive`, $env names the commit."""
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get(env, "unknown") if env else "unknown"


PPL_FILE = ROOT / "data" / "heldout" / "textwrap.py"


def llama_perplexity(bin_dir: Path, g: Path):
    """llama-perplexity's own measure (n_ctx 256 chunks, the second half of each scored):
    not silica's windowing, so recorded for information, not compared."""
    p = subprocess.run([str(bin_dir / "llama-perplexity"), "-m", str(g), "-f", str(PPL_FILE), "-c", "256", "-t", "2"],
                       capture_output=True, text=True, timeout=600)
    line = [l for l in (p.stdout + p.stderr).splitlines() if "Final estimate: PPL" in l]
    if p.returncode != 0 or not line:
        raise RuntimeError(f"llama-perplexity on {g.name} failed: {p.stderr[-500:]}")
    ppl = float(line[-1].split("PPL =")[1].split()[0])
    return {"file": str(PPL_FILE.relative_to(ROOT)), "n_ctx": 256, "ppl": ppl}


def run(silica, llama_cpp: Path, greedy: Path, work: Path):
    bin_dir = llama_cpp / "build" / "bin"
    prepare(work)
    out_dir = work / "gguf"
    out_dir.mkdir(exist_ok=True)
    result = {"llama_cpp_commit": git_commit(llama_cpp, "LLAMA_CPP_COMMIT"), "silica_head_when_run": git_commit(ROOT),
              "prompt_ids": PROMPT_IDS, "demo_prompt": DEMO_PROMPT, "models": {}, "kquant": {}, "mixes": {}}
    for case in CASES:
        name, src, opts, prompt, n, ctx = case
        g = build_gguf(silica, work, case, out_dir)
        args = ["--ids", ",".join(map(str, prompt))] if isinstance(prompt, list) else ["--text", prompt]
        p = subprocess.run([str(greedy), str(g), str(n), str(ctx), *args], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"llama.cpp on {name}: {p.stderr.strip()}")
        got = json.loads(p.stdout)
        entry = {"source": "models/demo" if src == "demo" else f"engine_models.tar.xz:{src}/f32-st",
                 "convert_options": opts, "gguf_sha256": sha256(g), "gguf_bytes": g.stat().st_size,
                 "n_predict": n, "n_ctx": ctx, "prompt_ids": got["prompt_ids"], "llama_cpp_ids": got["ids"],
                 "llama_cpp_text": bytes.fromhex(got["text_hex"]).decode("utf-8", "replace")}
        if src == "demo":   # llama-perplexity on a held-out file: a sanity figure for the quantized exports
            entry["llama_perplexity"] = llama_perplexity(bin_dir, g)
        result["models"][name] = entry
        print(f"{name}: {got['ids']}", file=sys.stderr)
    f16 = kquant_source(silica, out_dir)
    for qt in KQUANT_TYPES:
        ref = out_dir / f"demo-llama-quantize-{qt.lower()}.gguf"
        subprocess.run([str(bin_dir / "llama-quantize"), "--pure", str(f16), str(ref), qt], capture_output=True,
                       check=True, timeout=600)
        want = tensor_hashes(ref)
        got = tensor_hashes(silica_kquant(silica, f16, qt, out_dir))
        same = sorted(k for k in want if want[k][0] == qt and got.get(k) == want[k])
        diff = sorted(k for k in want if want[k][0] == qt and got.get(k) != want[k])
        result["kquant"][qt] = {
            "source": "silica convert models/demo --to gguf --q-type F16, then llama-quantize --pure / silica quantize",
            "source_sha256": sha256(f16),
            "llama_quantize": {k: v for k, v in sorted(want.items()) if v[0] == qt},
            "kept_in_other_types": {k: v[0] for k, v in sorted(want.items()) if v[0] != qt},
            "identical_tensors": len(same), "differing_tensors": diff,
        }
        print(f"{qt}: {len(same)} identical, {len(diff)} differ", file=sys.stderr)
    for src in MIX_SOURCES:
        result["mixes"][src] = run_mixes(silica, bin_dir, work, src, out_dir)
    RESULT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def run_mixes(silica, bin_dir: Path, work: Path, src: str, out_dir: Path):
    """llama-quantize SRC-F16 MIX vs silica quantize --q-type MIX: every tensor's type and bytes,
    and the number of row-length fallbacks llama-quantize warned about."""
    f16 = mix_source(silica, work, src, out_dir)
    entry = {"source": "models/demo" if src == "demo" else f"engine_models.tar.xz:{src}/f32-st",
             "source_sha256": sha256(f16), "mixes": {}}
    for mix in MIXES:
        ref = out_dir / f"{src}-llama-quantize-{mix.lower()}.gguf"
        p = subprocess.run([str(bin_dir / "llama-quantize"), str(f16), str(ref), mix], capture_output=True,
                           text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"llama-quantize {src} {mix}: {(p.stdout + p.stderr)[-800:]}")
        warn = [l for l in (p.stdout + p.stderr).splitlines() if "required fallback quantization" in l]
        n_fallback = int(warn[-1].split("WARNING:")[1].split()[0]) if warn else 0
        want = tensor_hashes(ref)
        got_path, silica_fallbacks = silica_mix(silica, f16, mix, out_dir)
        got = tensor_hashes(got_path)
        diff = sorted(k for k in want if got.get(k) != want[k])
        entry["mixes"][mix] = {"llama_quantize": dict(sorted(want.items())), "llama_quantize_fallbacks": n_fallback,
                               "silica_fallbacks": silica_fallbacks, "identical_tensors": len(want) - len(diff),
                               "differing_tensors": diff, "gguf_bytes": ref.stat().st_size}
        print(f"{src} {mix}: {len(want) - len(diff)}/{len(want)} identical, fallbacks {n_fallback} "
              f"(silica {silica_fallbacks})", file=sys.stderr)
    return entry


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "run":
        sys.exit("usage: llama_cpp_check.py run SILICA LLAMA_CPP GREEDY_BIN WORKDIR")
    run(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
