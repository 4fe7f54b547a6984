"""What run, chat and ppl accept from the command line and stdin.

- a MODEL word that looks like a path or store name must exist ("no such
  model", exit 2); only a command without one uses the demo model, and says so;
- prompts (argument, stdin, -f/--prompt-file, ppl's --file) are UTF-8 without
  NUL, else refused with the byte offset — Python's own UTF-8 decoder
  (UnicodeDecodeError.start) is the oracle of the offset; --any-bytes takes any
  bytes as the `tokenizers` library encodes bytes.decode("utf-8", "replace");
- every sampling flag and --ctx is range-checked; a context past the model's
  max_position_embeddings warns, or is refused without --force when the RoPE
  cannot extrapolate;
- --stats shows MiB (JSON keeps bytes); ppl draws progress only on a terminal.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from conftest import ROOT, SILICA, assert_clean_error, run_silica
from hf_models import make_hf_model

DEMO = ROOT / "models" / "demo"
ENV = {"SILICA_DEFAULT_MODEL": str(DEMO)}


@pytest.fixture(scope="module")
def templated(tmp_path_factory):
    """A tiny f32 llama with the real Llama 3 tokenizer and chat template."""
    d = tmp_path_factory.mktemp("inputs") / "llama3"
    make_hf_model(d, "llama", weights_dtype="float32", dtype="float32", tokenizer="llama3", hidden=32, heads=2,
                  kv_heads=1, inter=64, vocab=128256, tied=True, seed=3)
    return d


def demo_ids(text, special=True):
    return Tokenizer.from_file(str(DEMO / "tokenizer.json")).encode(text, add_special_tokens=special).ids


def prompt_ids(*args, input=None, env=None):
    r = run_silica("run", *args, "--prompt-ids", input=input, env=env)
    assert r.rc == 0, r.err
    return r.json()


def run_bytes(args, data, env=None):
    """silica with raw bytes on stdin (text=False)."""
    argv = [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    p = subprocess.run([os.fsencode(str(SILICA)), *argv], input=data, capture_output=True, timeout=120,
                       env={**os.environ, **(env or {})})
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def one_error(res, *needles):
    """res: run_bytes' (rc, stdout, stderr) of a bad-input failure: exit 2, one stderr line, nothing out."""
    rc, out, err = res
    assert rc == 2, err
    assert out == b"", out
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    for n in needles:
        assert n in lines[0], lines[0]


# ---------------------------------------------------------------- MODEL words

@pytest.mark.parametrize("word", ["./tinyy", "tinyy/", "../models/demoo", "~/models/x", "demo.gguf",
                                  "model.safetensors", ".tinyy"])
def test_a_path_that_is_not_there_is_no_such_model(word, tmp_path):
    """`echo hi | silica run ./tinyy` once ran the demo model with './tinyy' as the prompt."""
    for cmd in (["run", word], ["run", word, "hello"], ["chat", word]):
        r = run_silica(*cmd, input="hi\n", env=ENV)
        assert_clean_error(r, f"{word}: no such model (not a file, folder or store name)")
        assert r.out == ""
    f = tmp_path / "t.txt"
    f.write_text("some text to score")
    assert_clean_error(run_silica("ppl", word, "--file", f), f"{word}: no such model")


def test_a_store_name_that_is_not_stored(tmp_path):
    env = {**ENV, "SILICA_HOME": str(tmp_path / "store"), "SILICA_OFFLINE": "1"}
    r = run_silica("run", "acme/nothing-here", input="hi\n", env=env)
    assert_clean_error(r, "acme/nothing-here")
    assert r.out == ""


def test_demo_model_only_without_a_model_word_and_said_on_stderr():
    note = f"silica: using the demo model {DEMO.resolve()} (pass MODEL to choose one)"
    for args, inp in ((["--max-tokens", 3], "def f(x):"), (["def f(x):", "--max-tokens", 3], None)):
        r = run_silica("run", *args, input=inp, env=ENV)
        assert r.rc == 0, r.err
        assert r.err.splitlines() == [note]
    # a sentence with a slash is a prompt, not a path
    assert prompt_ids("what is 1/2 of 10?", env=ENV) == demo_ids("what is 1/2 of 10?")
    # naming the model: no note
    r = run_silica("run", DEMO, "def f(x):", "--max-tokens", 3, env=ENV)
    assert r.rc == 0 and r.err == ""
    r = run_silica("chat", "--max-tokens", 2, input="hi\n", env=ENV)
    # the demo has no chat template: chat says so too (a plain User:/Assistant: transcript)
    assert r.rc == 0 and r.err.splitlines()[0] == note and "no chat template" in r.err.splitlines()[1], r.err


# ---------------------------------------------------------------- prompt bytes

BAD_UTF8 = [b"hello \xff world", b"caf\xc3", b"\xc0\x80 overlong", b"x\xed\xa0\x80 surrogate",
            b"ok \xf5\x80\x80\x80", "日本語".encode() + b"\xe6\x97"]


@pytest.mark.badinput
@pytest.mark.parametrize("data", BAD_UTF8)
def test_invalid_utf8_is_refused_with_its_offset(data, tmp_path):
    with pytest.raises(UnicodeDecodeError) as e:
        data.decode("utf-8")
    at = e.value.start
    byte = f"0x{data[at]:02x}"
    one_error(run_bytes(["run", DEMO], data), f"stdin: invalid UTF-8 at byte {at} ({byte})", "--any-bytes")
    f = tmp_path / "p.txt"
    f.write_bytes(data)
    for flag in ("--prompt-file", "-f"):
        one_error(run_bytes(["run", DEMO, flag, f], b""), f"{f}: invalid UTF-8 at byte {at}")
    one_error(run_bytes(["ppl", DEMO, "--file", f], b""), f"{f}: invalid UTF-8 at byte {at}")
    # from argv (bytes are allowed there)
    one_error(run_bytes(["run", DEMO, data], b""), f"the prompt argument: invalid UTF-8 at byte {at}")


@pytest.mark.badinput
def test_nul_byte_is_refused_not_truncated(tmp_path):
    data = b"hello world\x00and more after it"
    at = data.index(b"\x00")
    one_error(run_bytes(["run", DEMO], data), f"stdin: NUL byte at byte {at}")
    f = tmp_path / "p.txt"
    f.write_bytes(data)
    one_error(run_bytes(["run", DEMO, "-f", f], b""), f"{f}: NUL byte at byte {at}")
    one_error(run_bytes(["ppl", DEMO, "--file", f], b""), f"{f}: NUL byte at byte {at}")
    # chat from a pipe: the bad message ends it (nothing generated for it)
    rc, out, err = run_bytes(["chat", DEMO, "--max-tokens", 2], b"/stats\nab\x00c\nhello\n")
    # (the demo has no chat template: the line saying so comes first)
    err = "".join(l for l in err.splitlines(keepends=True) if "has no chat template" not in l)
    one_error((rc, b"", err), "stdin, message 2: NUL byte at byte 2")
    assert out.decode().startswith("RSS ") and out.count(b"\n") == 1   # /stats answered, nothing after


@pytest.mark.badinput
def test_ppl_on_a_binary_file(tmp_path):
    """`ppl` on a binary file once printed a perplexity and exited 0."""
    f = tmp_path / "blob.bin"
    data = bytes(range(256)) * 2
    f.write_bytes(data)
    with pytest.raises(UnicodeDecodeError) as e:
        data.decode("utf-8")
    at = min(e.value.start, data.index(b"\x00"))
    one_error(run_bytes(["ppl", DEMO, "--file", f], b""), f"{f}: NUL byte at byte {at}")
    # taken as it is with --any-bytes (a short blob: this also runs under the sanitizers)
    blob = b"ab\x00\xffcd\x80 ef\xc3"
    f.write_bytes(blob)
    r = run_silica("ppl", DEMO, "--file", f, "--any-bytes", "--json")
    assert r.rc == 0, r.err
    text = blob.decode("utf-8", "replace")
    assert r.json()["tokens"] == len(demo_ids(text, special=False))   # [BOS] + ids, minus one


@pytest.mark.badinput
def test_any_bytes_encodes_as_tokenizers_does_the_replaced_text(templated):
    for data in (b"a\xffb \xe2\x82 tail", b"zero\x00byte"):
        want = Tokenizer.from_file(str(DEMO / "tokenizer.json")).encode(data.decode("utf-8", "replace")).ids
        rc, out, err = run_bytes(["run", DEMO, "--any-bytes", "--prompt-ids"], data)
        assert rc == 0, err
        assert json.loads(out) == want
    # a NUL cannot go into a chat template message; plain text can carry it
    rc, out, err = run_bytes(["run", templated, "--any-bytes", "--prompt-ids"], b"zero\x00byte")
    one_error((rc, out, err), "stdin: NUL byte at byte 4", "--no-chat-template")
    rc, out, err = run_bytes(["run", templated, "--any-bytes", "--no-chat-template", "--prompt-ids"], b"zero\x00byte")
    assert rc == 0, err
    tok = Tokenizer.from_file(str(templated / "tokenizer.json"))
    assert json.loads(out) == tok.encode("zero\x00byte").ids


def test_prompt_file(tmp_path, templated):
    text = "Explain the tides.\nIn two lines — please.\n"
    f = tmp_path / "prompt.txt"
    f.write_text(text, encoding="utf-8")
    want = prompt_ids(templated, text)
    assert prompt_ids(templated, "--prompt-file", f) == want
    assert prompt_ids(templated, "-f", f) == want
    assert prompt_ids(templated, "-f", "-", input=text) == want
    assert_clean_error(run_silica("run", templated, "hello", "-f", f), "--prompt-file")
    assert_clean_error(run_silica("run", templated, "--ids", "1", "-f", f), "--prompt-file")
    assert_clean_error(run_silica("run", templated, "-f", tmp_path / "missing.txt"), "missing.txt")
    assert_clean_error(run_silica("run", templated, "-f"), "-f")
    # chat: the file is the first message, then the conversation goes on from stdin
    a = run_silica("chat", templated, "--max-tokens", 4, "-f", f, input="and again\n", check=True).out
    b = run_silica("chat", templated, "--max-tokens", 4, input='"""\n' + text + '"""\nand again\n', check=True).out
    assert a == b and a.strip()
    assert_clean_error(run_silica("chat", templated, "-f", "-"), "--prompt-file")


# ---------------------------------------------------------------- limits

@pytest.mark.parametrize("flag,bad,good", [
    ("--temp", ["-1", "-0.5", "nan", "inf", "hot"], ["0", "0.7"]),
    ("--top-p", ["0", "-0.1", "1.5", "nan"], ["1", "0.9"]),
    ("--top-k", ["-1", "1.5", "x", "99999999999"], ["0", "40"]),
    ("--min-p", ["-0.01", "1.01"], ["0", "1", "0.05"]),
    ("--repeat-penalty", ["0", "-1", "inf"], ["1", "1.1"]),
    ("--presence-penalty", ["nan", "inf"], ["0", "-0.5", "1.5"]),
    ("--frequency-penalty", ["nan", "x"], ["0", "0.5"]),
    ("--penalty-window", ["-2", "2.5"], ["0", "64", "-1"]),   # -1: the whole history (llama.cpp)
    ("--seed", ["-1", "18446744073709551616", "1e3", "x"], ["0", "18446744073709551615"]),
    ("--max-tokens", ["-1", "16777217", "x"], ["0", "1"]),
])
def test_sampling_flags_are_range_checked(flag, bad, good):
    for v in bad:
        for cmd in ("run", "chat"):
            r = run_silica(cmd, DEMO, "--ids", "1", flag, v) if cmd == "run" else run_silica(cmd, DEMO, flag, v, input="")
            assert_clean_error(r, flag, f"'{v}'")
    for v in good:
        r = run_silica("run", DEMO, "--ids", "1,2", "--max-tokens", 1, flag, v, "--json")
        assert r.rc == 0, (flag, v, r.err)


def test_ctx_names_its_real_bound():
    for cmd in ("run", "ppl", "logits", "chat"):
        r = run_silica(cmd, DEMO, "--ctx", "100000000", "--ids", "1", input="")
        assert_clean_error(r, "--ctx", "1..16777216", "2^24", "silica fit")


def copy_with(engine_models, tmp_path, arch, **cfg):
    d = tmp_path / arch
    shutil.copytree(engine_models / arch / "f32-st", d)
    c = json.loads((d / "config.json").read_text())
    for k, v in cfg.items():
        if k == "rope":
            c["rope_parameters"].update(v)
        else:
            c[k] = v
    (d / "config.json").write_text(json.dumps(c))
    return d


def test_ctx_past_the_models_length(engine_models, templated, tmp_path):
    """Plain RoPE (llama, max_position_embeddings 256): refused without --force, warned with it."""
    d = engine_models / "llama" / "f32-st"
    for args, limit in ((["run", d, "--ids", "1,2", "--max-tokens", 1], 256), (["chat", templated], 2048)):
        assert_clean_error(run_silica(*args, "--ctx", limit + 44, input=""), f"--ctx {limit + 44}",
                           f"max_position_embeddings {limit}", "plain RoPE", "--force")
        r = run_silica(*args, "--ctx", limit + 44, "--force", input="")
        assert r.rc == 0, r.err
        assert len(r.err.splitlines()) == 1 and f"warning: --ctx {limit + 44}" in r.err and "--force" in r.err
        r = run_silica(*args, "--ctx", limit, input="")   # up to the limit: silent
        assert r.rc == 0 and r.err == ""
    # ppl's window
    f = tmp_path / "t.txt"
    f.write_text("x")
    assert_clean_error(run_silica("ppl", DEMO, "--file", f, "--ctx", 1024), "--ctx 1024", "max_position_embeddings 512")
    # without --ctx, run's context is prompt + max-tokens capped at the model's length: generation ends there
    r = run_silica("run", d, "--ids", "1,2,3", "--max-tokens", 1000, "--json", check=True)
    assert r.json()["generated_tokens"] == 256 - 3 + 1 and r.json()["stop_reason"] == "length" and r.err == ""
    # a prompt longer than the model's length
    ids = ",".join(["5"] * 300)
    assert_clean_error(run_silica("run", d, "--ids", ids), "the prompt (300 tokens)", "max_position_embeddings 256")


def test_ctx_covered_by_rope_scaling_warns_only(engine_models, tmp_path):
    # yarn: factor 4 x original 32 = 128 positions; declared 64
    y = copy_with(engine_models, tmp_path, "llama-yarn", max_position_embeddings=64)
    r = run_silica("run", y, "--ids", "1,2", "--max-tokens", 1, "--ctx", 100, check=True)
    assert r.err.splitlines() == [f"silica: warning: --ctx 100 exceeds {y}'s max_position_embeddings 64; its yarn "
                                  "RoPE scaling covers 128 positions (factor 4 x 32)"]
    assert_clean_error(run_silica("run", y, "--ids", "1,2", "--ctx", 129), "--ctx 129", "covers 128", "--force")
    # dynamic NTK rescales with the length (the fixture declares 8 positions)
    d = engine_models / "llama-dynamic" / "f32-st"
    r = run_silica("run", d, "--ids", "1,2", "--max-tokens", 1, "--ctx", 1000, check=True)
    assert "warning" in r.err and "dynamic NTK" in r.err and len(r.err.splitlines()) == 1
    # without --ctx the dynamic model is not capped at its 8 positions
    r = run_silica("run", d, "--ids", "1,2,3", "--max-tokens", 20, "--json", check=True)
    assert r.json()["generated_tokens"] == 20


# ---------------------------------------------------------------- output

def test_stats_in_mib_json_in_bytes():
    args = [DEMO, "--ids", "1,2,3", "--max-tokens", 4]
    r = run_silica("run", *args, "--stats", check=True)
    m = re.search(r"peak RSS ([\d.]+) MiB; KV cache ([\d.]+) MiB$", r.err.strip())
    assert m, r.err
    j = run_silica("run", *args, "--json", check=True).json()
    kv = j["kv_bytes"] / 2**20
    assert float(m.group(2)) == pytest.approx(kv, abs=0.006)
    assert abs(float(m.group(1)) - j["peak_rss_bytes"] / 2**20) < 64   # two processes, same work
    assert isinstance(j["peak_rss_bytes"], int) and j["peak_rss_bytes"] > 2**20


def on_a_tty(args, timeout=120):
    """Run silica with stdout and stderr on a pseudo-terminal; (rc, text seen)."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([str(SILICA), *map(str, args)], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                         close_fds=True)
    os.close(slave)
    out = b""
    t0 = time.time()
    while time.time() - t0 < timeout:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    p.wait(timeout=10)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def test_ppl_progress_on_a_tty_only(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n" * 40)
    r = run_silica("ppl", DEMO, "--file", f, "--ctx", 128, "--batch", 16, "--json", check=True)
    assert r.err == ""                       # not a terminal: no progress at all
    total = r.json()["tokens"]
    rc, text = on_a_tty(["ppl", DEMO, "--file", f, "--ctx", 128, "--batch", 16])
    assert rc == 0, text
    draws = re.findall(r"ppl \[[=> ]+\] +(\d+)% (\d+)/(\d+) tok (\d+) tok/s ETA (\w+)", text)
    assert draws, text
    assert all(int(t) == total for _, _, t, _, _ in draws)
    assert draws[-1][0] == "100" and int(draws[-1][1]) == total
    assert "\r\x1b[K" in text                # redrawn in place
    assert re.search(rf"ppl [\d.]+  nll [\d.]+  tokens {total}", text)
