#!/usr/bin/env python3
"""tokenizer_bench.py — silica's tokenizer against Hugging Face `tokenizers`.

For each tokenizer in tests/data/tokenizers/*/ (decompressed into a temp dir):
  load time       silica (sl_tok_load, from `--stats`) vs Tokenizer.from_file
  encode MB/s     ~10 MB of mixed text (Python stdlib code + English docs +
                  multilingual/emoji text), single thread, paragraph by
                  paragraph (silica: one process, --jsonl; HF: encode() loop),
                  and with --whole also as one string
  decode MB/s     the ids of the whole text decoded at once
The ratio column is silica / HF on the same text on the same machine, run
back to back.  HF runs with RAYON_NUM_THREADS=1 (single thread).  Times are
the CPU time of the working thread (silica: CLOCK_THREAD_CPUTIME_ID via
--stats; HF: time.thread_time()), so a machine shared with other jobs does
not distort them; --wall uses wall-clock time instead.
Also checks that both produce the same number of ids.

usage: bench/tokenizer_bench.py [--silica build/silica]
                                [--mb 10] [--only llama3,qwen3] [--whole]
"""
import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SAMPLES = [
    "The quick brown fox jumps over the lazy dog.", "Ünïcödé äöü ß — naïve café résumé.",
    "Русский текст: Привет, мир! Как дела?", "中文文本测试，你好世界！今天天气很好。", "日本語のテキスト、こんにちは世界。カタカナ",
    "한국어 텍스트 안녕하세요 세계", "العربية: مرحبا بالعالم", "עברית: שלום עולם", "हिन्दी पाठ नमस्ते दुनिया",
    "ภาษาไทย สวัสดีครับ", "Ελληνικά κείμενα για δοκιμή", "Tiếng Việt có dấu rất nhiều", "👨‍👩‍👧‍👦 family 🏳️‍🌈 😀😃",
    "e\u0301 combining a\u0300\u0301", "   whitespace   runs\t\tand\r\nCRLF", "1234567890 3.14159 1,000,000.00",
    "def foo(bar):\n    return bar * 2\n", "SELECT * FROM users WHERE id = 42;", "<div class=\"a\">text</div>",
]


def make_text(mb):
    """Deterministic mixed text of about mb megabytes, paragraphs split by blank lines."""
    target = int(mb * 1_000_000)
    parts, n = [], 0
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for f in sorted(stdlib.rglob("*.py")):
        if n > target * 0.6:
            break
        try:
            s = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(s)
        n += len(s.encode())
    rnd = random.Random(7)
    while n < target:
        para = " ".join(rnd.choice(SAMPLES) for _ in range(rnd.randint(3, 12)))
        parts.append(para)
        n += len(para.encode()) + 2
    rnd.shuffle(parts)
    return "\n\n".join(parts)


def silica(bin_, *args):
    r = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"silica {' '.join(map(str, args))} failed: {r.stderr}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--silica", default=os.environ.get("SILICA_BIN", str(ROOT / "build" / "silica")))
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--only", default="")
    ap.add_argument("--whole", action="store_true", help="also encode the text as one string")
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of thread CPU time")
    a = ap.parse_args()
    clock = time.perf_counter if a.wall else time.thread_time
    sfx = "_ms" if a.wall else "_cpu_ms"
    tdir = ROOT / "tests" / "data" / "tokenizers"
    names = sorted(p.name for p in tdir.iterdir() if (p / "tokenizer.json.gz").exists())
    if a.only:
        names = [n for n in names if n in a.only.split(",")]
    text = make_text(a.mb)
    paras = [p for p in text.split("\n\n") if p]
    nbytes = sum(len(p.encode()) for p in paras)
    print(f"text: {len(text.encode()) / 1e6:.2f} MB, {len(paras)} paragraphs; silica: {a.silica}; "
          f"{'wall-clock' if a.wall else 'thread CPU'} time")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "paras.jsonl").write_text("".join(json.dumps(p) + "\n" for p in paras), encoding="utf-8")
        (tmp / "whole.txt").write_bytes(text.encode())
        for name in names:
            d = tmp / name
            d.mkdir()
            with gzip.open(tdir / name / "tokenizer.json.gz", "rb") as f, open(d / "tokenizer.json", "wb") as o:
                shutil.copyfileobj(f, o)
            if (tdir / name / "tokenizer_config.json.gz").exists():
                with gzip.open(tdir / name / "tokenizer_config.json.gz", "rb") as f:
                    (d / "tokenizer_config.json").write_bytes(f.read())
            t0 = clock()
            hf = Tokenizer.from_file(str(d / "tokenizer.json"))
            hf_load = (clock() - t0) * 1e3
            loads = [silica(a.silica, "tokenize", d, "--text", "x", "--stats")["load" + sfx] for _ in range(3)]
            s_load = min(loads)
            # encode, paragraph by paragraph
            st = silica(a.silica, "tokenize", d, "--jsonl", tmp / "paras.jsonl", "--stats")
            s_enc = nbytes / 1e6 / (st["encode" + sfx] / 1e3)
            t0 = clock()
            hf_ids = 0
            for p in paras:
                hf_ids += len(hf.encode(p, add_special_tokens=False).ids)
            hf_enc = nbytes / 1e6 / (clock() - t0)
            same = "yes" if hf_ids == st["ids"] else f"NO ({st['ids']} vs {hf_ids})"
            row = {"name": name, "s_load": s_load, "hf_load": hf_load, "s_enc": s_enc, "hf_enc": hf_enc, "same": same}
            # decode: all ids at once
            ids = hf.encode(text, add_special_tokens=False).ids if a.whole else \
                [i for p in paras[:2000] for i in hf.encode(p, add_special_tokens=False).ids]
            (d / "ids.jsonl").write_text(json.dumps(ids) + "\n")
            sd = silica(a.silica, "detokenize", d, "--jsonl", d / "ids.jsonl", "--stats")
            row["s_dec"] = sd["bytes"] / 1e6 / (sd["decode" + sfx] / 1e3)
            t0 = clock()
            out = hf.decode(ids, skip_special_tokens=False)
            row["hf_dec"] = len(out.encode()) / 1e6 / (clock() - t0)
            if a.whole:
                sw = silica(a.silica, "tokenize", d, "--file", tmp / "whole.txt", "--stats")
                row["s_whole"] = len(text.encode()) / 1e6 / (sw["encode" + sfx] / 1e3)
                t0 = clock()
                hf.encode(text, add_special_tokens=False)
                row["hf_whole"] = len(text.encode()) / 1e6 / (clock() - t0)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    hdr = "| tokenizer | load silica / HF (ms) | encode silica / HF (MB/s) | ratio | decode silica / HF (MB/s) | same ids |"
    if a.whole:
        hdr += " whole-text encode silica / HF (MB/s) |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        line = (f"| {r['name']} | {r['s_load']:.0f} / {r['hf_load']:.0f} | {r['s_enc']:.2f} / {r['hf_enc']:.2f} | "
                f"{r['s_enc'] / r['hf_enc']:.2f}x | {r['s_dec']:.0f} / {r['hf_dec']:.0f} | {r['same']} |")
        if a.whole:
            line += f" {r['s_whole']:.2f} / {r['hf_whole']:.2f} |"
        print(line)


if __name__ == "__main__":
    main()
