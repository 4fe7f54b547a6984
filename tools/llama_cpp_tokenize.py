"""llama_cpp_tokenize.py — llama.cpp's own tokenizer (`llama-tokenize`) on the
committed vocabulary-only GGUFs (tests/data/vocab_gguf/NAME.gguf.gz), recorded
once in tools/llama_cpp_tokenize.result.json; tests/py/test_gguf_tok_llama_cpp.py
compares silica's GGUF tokenizer with the record.

    python tools/llama_cpp_tokenize.py texts TEXTS.json
        (in the test venv) the texts: tests/py/test_tokenizer.py's corpus with
        each tokenizer's special tokens, as test_gguf_tokenizer.py tokenizes them
    python tools/llama_cpp_tokenize.py run LLAMA_TOKENIZE TEXTS.json [OUT.json]
        (where llama.cpp is built; LLAMA_CPP_COMMIT names its commit) every
        text through `llama-tokenize -m NAME.gguf -f TEXT --ids --no-escape
        --log-disable`: with --no-bos for all texts (no special tokens added;
        special-token text is parsed, llama-tokenize's default), and without
        it for the first ADD_SPECIAL texts (BOS/EOS as the GGUF says)

The file is read verbatim by llama-tokenize (tools/tokenize/tokenize.cpp: no
trailing-newline stripping with -f), so every byte of the text is tokenized.
A text that is not valid UTF-8 as Python holds it is recorded as null.
"""
import concurrent.futures
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB_GGUF = ROOT / "tests" / "data" / "vocab_gguf"
RESULT = Path(__file__).with_name("llama_cpp_tokenize.result.json")
ADD_SPECIAL = 60


def texts():
    sys.path.insert(0, str(ROOT / "tests" / "py"))
    from tokenizers import Tokenizer
    from conftest import tokenizer_json
    from test_tokenizer import corpus
    out = {}
    for g in sorted(VOCAB_GGUF.glob("*.gguf.gz")):
        name = g.name[:-len(".gguf.gz")]
        hf = Tokenizer.from_str(json.dumps(tokenizer_json(name)))
        specials = [t.content for t in hf.get_added_tokens_decoder().values() if t.special]
        out[name] = corpus(specials)
    return out


def tokenize(exe, gguf, text, work, add_special):
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    fd, f = tempfile.mkstemp(dir=work)
    with os.fdopen(fd, "wb") as o:
        o.write(data)
    cmd = [exe, "-m", str(gguf), "-f", f, "--ids", "--no-escape", "--log-disable"] + ([] if add_special else ["--no-bos"])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    os.unlink(f)
    line = next((l for l in reversed(p.stdout.splitlines()) if l.startswith("[")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(cmd)}: rc {p.returncode}: {p.stderr.strip()[-300:]}")
    return json.loads(line)


def run(exe, texts_json, out_path):
    corpus_of = json.loads(Path(texts_json).read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp())
    rec = {"llama_cpp_commit": os.environ.get("LLAMA_CPP_COMMIT", "unknown"),
           "command": "llama-tokenize -m NAME.gguf -f TEXT --ids --no-escape --log-disable [--no-bos]",
           "add_special_texts": ADD_SPECIAL, "tokenizers": {}}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 4)
    for name, txts in sorted(corpus_of.items()):
        gz = VOCAB_GGUF / f"{name}.gguf.gz"
        gguf = work / f"{name}.gguf"
        gguf.write_bytes(gzip.decompress(gz.read_bytes()))
        plain = list(pool.map(lambda t: tokenize(exe, gguf, t, work, False), txts))
        special = list(pool.map(lambda t: tokenize(exe, gguf, t, work, True), txts[:ADD_SPECIAL]))
        rec["tokenizers"][name] = {"gguf_gz_sha256": hashlib.sha256(gz.read_bytes()).hexdigest(),
                                   "texts": txts, "ids": plain, "ids_add_special": special}
        print(name, len(txts), "texts", flush=True)
    Path(out_path).write_text(json.dumps(rec, ensure_ascii=True, separators=(",", ":")) + "\n")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "texts":
        Path(sys.argv[2]).write_text(json.dumps(texts(), ensure_ascii=True))
        return 0
    if len(sys.argv) in (4, 5) and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else RESULT)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
