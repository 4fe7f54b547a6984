"""llama_cpp_convert.py — the reference models converted to GGUF by llama.cpp's
own convert_hf_to_gguf.py, with transformers' logits of each converted
source, for tests/fixtures/models/llama_cpp_ggufs.tar.xz.

    python tools/llama_cpp_convert.py LLAMA_CPP_DIR OUT_DIR
        ($LLAMA_CPP_CONVERT_ARCHS=a,b: only those, kept beside the others in OUT_DIR)

Run where torch is installed (the converter imports it); LLAMA_CPP_DIR is a
llama.cpp source tree (convert_hf_to_gguf.py, conversion/, gguf-py/).  For
each model of ARCHS, from tests/fixtures/models/engine_models.tar.xz:

  * the source is the f32 safetensors directory, or for ADJUST's models a copy
    with the value llama.cpp assumes (tests/py/test_arch_table.py explains
    why: llama.cpp's Gemma 2/3 scale attention by 1/sqrt(head_dim), its
    LongRoPE switches factors at the original context rounded to 256);
  * it gets a byte-level BPE tokenizer.json (tools/llama_cpp_check.py's 256
    byte tokens, id 255 replaced by the merge of two spaces, so the GGUF holds
    the tokenizer.ggml.merges array llama.cpp's loader requires) and a
    tokenizer_config.json naming PreTrainedTokenizerFast and no special tokens;
  * convert_hf_to_gguf.py's main() runs on it for every type of OUTTYPES,
    with two documented substitutions, made here by wrapping the converter's
    classes (its files are not changed): every family takes the converter's
    byte-level BPE vocabulary path (TextModel._set_vocab_gpt2; gemma, gemma2,
    phi3 and llama would look for SentencePiece's tokenizer.model first), and
    the pre-tokenizer, which the converter recognises only by the hash of a
    known model's tokenization, is named explicitly: "gpt-2" (the
    ByteLevel/GPT-2 regex this tokenizer.json uses);
  * transformers (eager attention, float32, CPU) computes the logits of the
    source for ref.json's prompt + generated ids: OUT_DIR/ARCH/logits.npy;
    the source stays in OUT_DIR/ARCH/src, the GGUFs are OUT_DIR/ARCH/TYPE.gguf
    and the converter's log convert.log.

    python tools/llama_cpp_convert.py pack OUT_DIR [TARBALL]

packs, after tools/llama_cpp_adapter_check.py has added llama.cpp's own logits
(ARCH/llama_cpp_TYPE.npy), the fixture tests/fixtures/models/llama_cpp_ggufs.tar.xz:
g/manifest.json and g/ARCH/{TYPE.gguf, logits.npy, llama_cpp_TYPE.npy}
(sources and logs left out; sorted, owner 0, mtime 0).

OUT_DIR/manifest.json records the llama.cpp commit (LLAMA_CPP_COMMIT, or git),
the torch / transformers versions, each file's sha256 and the converter's
choices.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARBALL = ROOT / "tests" / "fixtures" / "models" / "engine_models.tar.xz"
MAIN = ["llama", "llama3", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"]
ROPE = ["llama-linear", "llama-dynamic", "llama-yarn", "phi3-long"]
ARCHS = MAIN + ROPE
OUTTYPES = {a: (["f32", "f16", "q8_0"] if a in MAIN else ["f32"]) for a in ARCHS}
# What llama.cpp assumes and GGUF cannot say (tests/py/test_arch_table.py: ADJUST).
ADJUST = {"gemma2": {"query_pre_attn_scalar": 16}, "gemma3": {"query_pre_attn_scalar": 16},
          "phi3": {"original_max_position_embeddings": 256, "max_position_embeddings": 1024}}
PRE = "gpt-2"
# No special tokens: transformers' Qwen2Tokenizer would otherwise add <|endoftext|> as id 256
# (the converter asserts every id < vocab_size).
TOKENIZER_CONFIG = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": None,
                    "unk_token": None, "pad_token": None}


def merged_byte_tokenizer_json():
    sys.path.insert(0, str(ROOT / "tools"))
    from llama_cpp_check import bytes_to_unicode, byte_tokenizer_json
    tok = json.loads(byte_tokenizer_json())
    sp = bytes_to_unicode()[ord(" ")]
    vocab = {t: i for t, i in tok["model"]["vocab"].items() if i != 255}
    vocab[sp + sp] = 255
    tok["model"]["vocab"], tok["model"]["merges"] = vocab, [[sp, sp]]
    return json.dumps(tok, ensure_ascii=False, indent=2)


def adjust(src: Path, values: dict):
    """ADJUST's values into config.json, top level and in the RoPE object."""
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(values)
    for rope in (cfg.get("rope_parameters"), cfg.get("rope_scaling")):
        if isinstance(rope, dict) and "original_max_position_embeddings" in rope:
            rope["original_max_position_embeddings"] = values.get("original_max_position_embeddings",
                                                                  rope["original_max_position_embeddings"])
    (src / "config.json").write_text(json.dumps(cfg, indent=2))


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def convert_arch(llama_cpp: str, src: str, out_dir: str, types: str):
    """In a child process (one per model): convert_hf_to_gguf.main() with the
    substitutions above, once per type; a failing type is reported, the others go on."""
    sys.path[:0] = [llama_cpp, str(Path(llama_cpp) / "gguf-py")]
    import convert_hf_to_gguf as C
    from conversion import base

    original_pre = base.TextModel.get_vocab_base_pre

    def vocab_pre(self, tokenizer):
        try:
            return original_pre(self, tokenizer)
        except NotImplementedError:
            print(f"llama_cpp_convert: pre-tokenizer hash unknown to the converter: named {PRE!r}", file=sys.stderr)
            return PRE
    base.TextModel.get_vocab_base_pre = vocab_pre
    real_get = C.get_model_class

    def get_model_class(name, mmproj=False):
        cls = real_get(name, mmproj=mmproj)
        return type(cls.__name__, (cls,), {"model_arch": cls.model_arch,
                                           "set_vocab": lambda self: self._set_vocab_gpt2()})
    C.get_model_class = get_model_class
    for t in types.split(","):
        sys.argv = ["convert_hf_to_gguf.py", src, "--outtype", t, "--outfile", str(Path(out_dir) / f"{t}.gguf")]
        try:
            C.main()
            print(f"llama_cpp_convert: {t} done", file=sys.stderr, flush=True)
        except BaseException as e:  # SystemExit too: the next type still runs
            print(f"llama_cpp_convert: {t} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def transformers_logits(src: Path, ids):
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.inference_mode():
        return m(torch.tensor([ids])).logits[0].float().numpy().astype(np.float32)


def llama_cpp_commit(llama_cpp: Path) -> str:
    c = os.environ.get("LLAMA_CPP_COMMIT")
    if c:
        return c
    p = subprocess.run(["git", "-C", str(llama_cpp), "rev-parse", "HEAD"], capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def pack(out: Path, tarball: Path):
    def keep(p: Path):
        return p.name == "manifest.json" or p.suffix in (".gguf", ".npy")
    files = sorted(p for p in out.rglob("*") if p.is_file() and "src" not in p.relative_to(out).parts and keep(p))
    with tarfile.open(tarball, "w:xz", preset=9) as t:
        for p in files:
            ti = t.gettarinfo(p, arcname="g/" + p.relative_to(out).as_posix())
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.mtime = 0
            ti.mode = 0o644
            with open(p, "rb") as f:
                t.addfile(ti, f)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--arch":
        return convert_arch(*sys.argv[2:])
    if len(sys.argv) in (3, 4) and sys.argv[1] == "pack":
        return pack(Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else
                    TARBALL.with_name("llama_cpp_ggufs.tar.xz"))
    import numpy as np
    import torch
    import transformers
    llama_cpp, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    with tarfile.open(TARBALL) as t:
        t.extractall(work, members=[m for m in t.getmembers() if "/f32-st" in m.name or m.name.endswith("ref.json")
                                    or m.name.endswith("logits.npy")], filter="data")
    manifest = {"llama_cpp_commit": llama_cpp_commit(llama_cpp), "torch": torch.__version__,
                "transformers": transformers.__version__, "pre_tokenizer": PRE, "adjust": ADJUST, "models": {}}
    if (out / "manifest.json").is_file():   # a rerun of some models (LLAMA_CPP_CONVERT_ARCHS) keeps the others
        manifest["models"] = json.loads((out / "manifest.json").read_text())["models"]
    only = os.environ.get("LLAMA_CPP_CONVERT_ARCHS")
    tok = merged_byte_tokenizer_json()
    for arch in (only.split(",") if only else ARCHS):
        src = out / arch / "src"
        shutil.copytree(work / arch / "f32-st", src, dirs_exist_ok=True)
        if arch in ADJUST:
            adjust(src, ADJUST[arch])
        (src / "tokenizer.json").write_text(tok, encoding="utf-8")
        (src / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
        ref = json.loads((work / arch / "ref.json").read_text())
        ids = ref["prompt"] + ref["generated"]
        rec = {"ids": ids, "adjusted": ADJUST.get(arch), "files": {}}
        try:
            logits = transformers_logits(src, ids)
            np.save(out / arch / "logits.npy", logits)
            fixture = np.load(work / arch / "logits.npy")
            rec["rel_diff_vs_engine_models_logits"] = float(np.abs(logits - fixture).max() / np.abs(fixture).max())
        except Exception as e:  # recorded; the conversion still runs
            rec["transformers_error"] = f"{type(e).__name__}: {e}"
        p = subprocess.run([sys.executable, __file__, "--arch", str(llama_cpp), str(src), str(out / arch),
                            ",".join(OUTTYPES[arch])], capture_output=True, text=True, timeout=900)
        log = p.stdout + p.stderr
        (out / arch / "convert.log").write_text(log)
        rec["pre_named"] = "pre-tokenizer hash unknown" in log
        for ot in OUTTYPES[arch]:
            g = out / arch / f"{ot}.gguf"
            failed = [l for l in log.splitlines() if l.startswith(f"llama_cpp_convert: {ot} failed")]
            if failed or not g.is_file():
                rec["files"][ot] = {"error": (failed or log.strip().splitlines() or ["?"])[-1]}
            else:
                rec["files"][ot] = {"sha256": sha256(g), "bytes": g.stat().st_size}
            print(arch, ot, rec["files"][ot], flush=True)
        manifest["models"][arch] = rec
    manifest["models"] = {a: manifest["models"][a] for a in ARCHS if a in manifest["models"]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
