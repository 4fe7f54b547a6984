"""Memory at run time: the pre-load guard of `run`/`chat`
(--max-memory, --force), --mlock, the --monitor JSON-lines series and its
plot, chat's /stats line, and `silica fit ORG/NAME` before download against
a hub served by the real nginx (tests/py/hub_fixture.py).

Oracles: `silica fit --json` is the estimator the guard must agree with to
the byte; the Linux kernel (RLIMIT_MEMLOCK via prlimit) refuses mlock;
nginx's access log shows every byte the hub sent; gguf-py and the
safetensors library write the remote fixtures, and the local estimate of
the very same files is what the remote one must equal."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SILICA, assert_clean_error, run_silica
from hub_fixture import Repo

DEMO = ROOT / "models" / "demo"
MIB = 1024 * 1024


def fit_json(*args, env=None):
    return run_silica("fit", *args, "--json", check=True, env=env).json()


# ---------------------------------------------------------------- the guard

def test_guard_matches_fit_to_the_byte():
    total = fit_json(DEMO, "--ctx", 256)["total_bytes"]
    args = ("run", DEMO, "def f(", "--ctx", 256, "--max-tokens", 4)
    r = run_silica(*args, "--max-memory", total - 1)
    assert_clean_error(r, str(DEMO), "--ctx 256", "budget", "--max-memory", "--force")
    mib = total / MIB
    assert f"needs {mib:.2f} MiB" in r.err
    parts = re.search(r"\(weights ([\d.]+) \+ KV ([\d.]+) \+ overhead ([\d.]+)\)", r.err)
    assert abs(sum(map(float, parts.groups())) - mib) < 0.02
    assert r.out == ""                      # refused before generating anything
    ok = run_silica(*args, "--max-memory", total)
    assert ok.rc == 0, ok.err
    for kv in ("q8", "q4", "f32"):   # the KV settings count as in `silica fit --kv`
        t = fit_json(DEMO, "--ctx", 256, "--kv", kv)["total_bytes"]
        assert t != total
        assert_clean_error(run_silica(*args, "--kv", kv, "--max-memory", t - 1), f"--kv {kv}", "budget")
        ok = run_silica(*args, "--kv", kv, "--max-memory", t)
        assert ok.rc == 0, ok.err


def test_guard_force_and_normal_runs_unaffected():
    base = run_silica("run", DEMO, "def fib(n):", "--max-tokens", 12, "--json", check=True).json()
    forced = run_silica("run", DEMO, "def fib(n):", "--max-tokens", 12, "--json", "--max-memory", "2M", "--force",
                        check=True).json()
    roomy = run_silica("run", DEMO, "def fib(n):", "--max-tokens", 12, "--json", "--max-memory", "64G",
                       check=True).json()
    assert base["ids"] == forced["ids"] == roomy["ids"]
    assert len(base["ids"]) > 0


def test_chat_guard_recommends_a_context_that_fits(tmp_path):
    # chat's default context is 4096 positions, at most the model's max_position_embeddings
    # (the demo's 512): the demo with a 4096-position config gets the full default
    demo = tmp_path / "demo4k"
    shutil.copytree(DEMO, demo)
    cfg = json.loads((demo / "config.json").read_text())
    (demo / "config.json").write_text(json.dumps({**cfg, "max_position_embeddings": 4096}))
    full = fit_json(demo, "--ctx", 4096)["total_bytes"]
    small = fit_json(demo, "--ctx", 512)["total_bytes"]
    budget = (full + small) // 2
    r = run_silica("chat", demo, "--max-memory", budget, input="hi\n")
    assert_clean_error(r, "--ctx 4096", "try:")
    m = re.search(r"--ctx (\d+)(?:;|,| or)", r.err.split("try:")[1])
    assert m, r.err
    ctx = int(m.group(1))
    assert ctx < 4096
    assert fit_json(demo, "--ctx", ctx)["total_bytes"] <= budget
    ok = run_silica("chat", demo, "--max-memory", budget, "--ctx", ctx, input="/quit\n")
    assert ok.rc == 0, ok.err
    # nothing makes a 2 MiB budget work: said so, still one line
    assert_clean_error(run_silica("chat", DEMO, "--max-memory", "2M", input=""), "no quantization or shorter context")


def test_guard_bad_input(tmp_path):
    for bad in ("lots", "-5", "0", "12Q", "", "999999T"):
        assert_clean_error(run_silica("run", DEMO, "x", "--max-memory", bad), "--max-memory")
    assert_clean_error(run_silica("run", DEMO, "x", "--max-memory", "100K"), "impossible budget")
    assert_clean_error(run_silica("chat", DEMO, "--max-memory"), "--max-memory")
    for bad in ("0", "abc", "-1", "600000"):
        assert_clean_error(run_silica("run", DEMO, "x", "--monitor", tmp_path / "m.jsonl", "--monitor-interval", bad),
                           "--monitor-interval")
    assert_clean_error(run_silica("run", DEMO, "x", "--monitor", tmp_path / "no" / "m.jsonl"), "m.jsonl",
                       "cannot create")
    assert_clean_error(run_silica("chat", DEMO, "--monitor", tmp_path, input=""), str(tmp_path))
    assert_clean_error(run_silica("run", DEMO, "x", "--monitor", ""), "--monitor")
    assert_clean_error(run_silica("run", DEMO, "x", "--monitor-interval", 50), "--monitor-interval", "--monitor FILE")


# ---------------------------------------------------------------- mlock

def test_mlock_ok_and_refused():
    ok = run_silica("run", DEMO, "x", "--max-tokens", 2, "--mlock")
    assert ok.rc == 0, ok.err
    cmd = ["prlimit", "--memlock=0:0"]
    if os.geteuid() == 0:   # root ignores RLIMIT_MEMLOCK unless CAP_IPC_LOCK is gone
        cmd += ["setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock"]
    p = subprocess.run(cmd + [str(SILICA), "run", str(DEMO), "x", "--max-tokens", "2", "--mlock"],
                       capture_output=True, text=True, timeout=120)

    class R:
        rc, out, err = p.returncode, p.stdout, p.stderr
    assert_clean_error(R, str(DEMO), "--mlock", "RLIMIT_MEMLOCK is 0 KiB")


# ---------------------------------------------------------------- monitor

def read_series(p):
    rows = [json.loads(l) for l in Path(p).read_text().splitlines()]
    assert rows
    for r in rows:
        assert set(r) == {"t", "rss_bytes", "peak_rss_bytes", "kv_bytes", "tokens", "phase"}
        assert r["peak_rss_bytes"] >= r["rss_bytes"] > 0
    return rows


def phases_in_order(rows):
    out = []
    for r in rows:
        if not out or out[-1] != r["phase"]:
            out.append(r["phase"])
    return out


def test_run_monitor_series_and_plot(tmp_path):
    mon = tmp_path / "run.jsonl"
    r = run_silica("run", DEMO, "def fib(n):", "--max-tokens", 40, "--monitor", mon, "--monitor-interval", 5,
                   "--json", check=True).json()
    rows = read_series(mon)
    ts = [x["t"] for x in rows]
    assert ts == sorted(ts) and ts[-1] > 0
    toks = [x["tokens"] for x in rows]
    assert toks == sorted(toks)
    assert toks[-1] == r["prompt_tokens"] + len(r["ids"]) - 1   # the last id is sampled, never evaluated
    assert phases_in_order(rows) == ["load", "prompt", "generate", "done"]
    kv = [x["kv_bytes"] for x in rows]
    assert kv == sorted(kv) and kv[-1] == toks[-1] * 2 * 8 * 4 * 64 * 2   # demo: 8 layers, 4 KV heads x 64, f16
    # one peak RSS (memory.h's sl_mem_peak_rss) for --json and --monitor: the JSON's figure, read after
    # generation, lies between the last sample before "done" and the "done" line written after it
    before = [x["peak_rss_bytes"] for x in rows if x["phase"] != "done"]
    done = [x["peak_rss_bytes"] for x in rows if x["phase"] == "done"]
    assert max(before) <= r["peak_rss_bytes"] <= min(done), (max(before), r["peak_rss_bytes"], done)
    assert len(rows) >= 5                       # the background thread sampled, not only phase lines
    svg = tmp_path / "run.svg"
    run_silica("plot", mon, "-o", svg, check=True)
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    marks = [e for e in root.iter(ns + "line") if e.get("class") == "phase"]
    assert len(marks) == 4
    assert "phases: load, prompt, generate, done" in root.find(ns + "desc").text
    assert len(root.findall(ns + "polyline")) == 3


def test_chat_monitor_idle_phase(tmp_path):
    mon = tmp_path / "chat.jsonl"
    run_silica("chat", DEMO, "--max-tokens", 8, "--ctx", 512, "--monitor", mon, input="hello\nagain\n", check=True)
    rows = read_series(mon)
    assert phases_in_order(rows) == ["load", "idle", "prompt", "generate", "idle", "prompt", "generate", "idle", "done"]
    assert rows[-1]["tokens"] > 0


def test_plot_reads_old_and_new_names(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"t": 0, "rss": 1048576}\n{"t": 1, "rss_bytes": 2097152, "phase": "generate"}\n')
    run_silica("plot", p, "-o", tmp_path / "s.svg", check=True)
    p.write_text('{"t": 0, "rss_bytes": 1, "phase": 3}\n')
    assert_clean_error(run_silica("plot", p, "-o", tmp_path / "s.svg"), "s.jsonl:1", "phase")


# ---------------------------------------------------------------- chat /stats

STATS = re.compile(r"^RSS ([\d.]+) MiB · peak ([\d.]+) MiB · KV ([\d.]+)/([\d.]+) MiB · ([\d.]+) tok/s$", re.M)


def test_chat_stats_command():
    r = run_silica("chat", DEMO, "--max-tokens", 6, "--ctx", 512, input="/stats\nhello\n/stats\n", check=True)
    m = STATS.findall(r.out)
    assert len(m) == 2, r.out               # not a TTY: only when asked
    (rss0, peak0, kv0, cap0, tps0), (rss1, peak1, kv1, cap1, tps1) = [tuple(map(float, x)) for x in m]
    cap = 512 * 2 * 8 * 4 * 64 * 2 / MIB    # demo: 8 layers, 4 KV heads x 64, f16
    assert float(cap0) == float(cap1) == pytest.approx(cap, abs=0.5)
    assert kv0 == 0 and kv1 > 0 and tps0 == 0 and tps1 > 0
    assert peak1 >= rss1 > 1


# ---------------------------------------------------------------- fit before download

@pytest.fixture
def env(tmp_path):
    return {"SILICA_HOME": str(tmp_path / "store"), "HF_HOME": str(tmp_path / "hf"), "SILICA_RETRY_BASE_MS": "5",
            "SILICA_OFFLINE": "", "HF_HUB_OFFLINE": "", "HF_TOKEN": ""}


SAME = ("verdict", "weights_bytes", "weights_resident_bytes", "kv_bytes", "compute_bytes", "overhead_bytes",
        "total_bytes", "params", "weights", "weights_exact", "bytes_per_token", "config", "quantized_weights_bytes",
        "profiles")


def cdn_requests(h, data=None):
    """(status, bytes sent) of every request for an LFS object (the one holding `data`, if given)."""
    oid = hashlib.sha256(data).hexdigest() if data is not None else ""
    out = []
    for line in h.requests():
        m = re.search(r'"GET (\S+) HTTP/[\d.]+" (\d+) (\d+)', line)
        if m and m.group(1).startswith("/cdn/" + oid):
            out.append((int(m.group(2)), int(m.group(3))))
    return out


def demo_files():
    return {p.name: p.read_bytes() for p in DEMO.iterdir() if p.is_file()}


def test_fit_hub_safetensors_equals_local(hub, env):
    files = demo_files()
    h = hub([Repo("acme/demo", files)])
    remote = fit_json("acme/demo", "--endpoint", h.url, "--ctx", 512, env=env)
    local = fit_json(DEMO, "--ctx", 512)
    for k in SAME:
        assert remote[k] == local[k], k
    assert remote["weights_exact"] is True and remote["model"] == "acme/demo"
    hdr = int.from_bytes(files["model.safetensors"][:8], "little")
    assert remote["hub_bytes_read"] < len(files["model.safetensors"]) // 100
    cdn = cdn_requests(h, files["model.safetensors"])
    assert sorted(cdn) == [(206, 8), (206, hdr)]   # two Range reads; no weight body
    txt = run_silica("fit", "acme/demo", "--endpoint", h.url, env=env, check=True).out
    assert "before download" in txt and "acme/demo" in txt


def test_fit_hub_gguf_equals_local(hub, env, tmp_path):
    import gguf
    p = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    hd, L, H, KV, V, I = 256, 2, 4, 2, 4096, 1024
    w.add_block_count(L)
    w.add_embedding_length(hd)
    w.add_feed_forward_length(I)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_context_length(4096)
    w.add_token_list([f"tok{i}" * 40 for i in range(V)])   # a header larger than the first 1 MiB read
    rng = np.random.default_rng(3)
    shapes = {"token_embd.weight": (V, hd), "output_norm.weight": (hd,), "output.weight": (V, hd)}
    for l in range(L):
        shapes.update({f"blk.{l}.attn_q.weight": (hd, hd), f"blk.{l}.attn_k.weight": (KV * hd // H, hd),
                       f"blk.{l}.attn_v.weight": (KV * hd // H, hd), f"blk.{l}.attn_output.weight": (hd, hd),
                       f"blk.{l}.ffn_gate.weight": (I, hd), f"blk.{l}.ffn_up.weight": (I, hd),
                       f"blk.{l}.ffn_down.weight": (hd, I), f"blk.{l}.attn_norm.weight": (hd,),
                       f"blk.{l}.ffn_norm.weight": (hd,)})
    for name, shape in shapes.items():
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = p.read_bytes()
    assert len(data) > 6 << 20
    h = hub([Repo("acme/g", {"model.gguf": data, "README.md": b"# g\n"})])
    remote = fit_json("acme/g", "--endpoint", h.url, env=env)
    local = fit_json(p)
    for k in SAME:
        assert remote[k] == local[k], k
    sent = sum(b for _, b in cdn_requests(h))
    assert all(s == 206 for s, _ in cdn_requests(h))
    assert sent == (1 << 20) + (2 << 20)   # 1 MiB did not hold the header, 2 MiB did; the tensors never came
    # several GGUF files: --include chooses
    h2 = hub([Repo("acme/gg", {"a-Q8_0.gguf": data, "b-F16.gguf": data + bytes(32)})])   # distinct blobs
    assert_clean_error(run_silica("fit", "acme/gg", "--endpoint", h2.url, env=env), "acme/gg", "--include")
    two = fit_json("acme/gg", "--endpoint", h2.url, "--include", "*F16.gguf", env=env)
    assert two["weights_bytes"] == local["weights_bytes"]


def test_fit_hub_bin_sizes_only(hub, env):
    cfg = json.loads((DEMO / "config.json").read_text())
    for k in ("quantization", "quantization_config"):
        cfg.pop(k, None)
    blob = b"\0" * 200_000
    h = hub([Repo("acme/pt", {"config.json": json.dumps(cfg).encode(), "pytorch_model.bin": blob})])
    r = fit_json("acme/pt", "--endpoint", h.url, env=env)
    assert r["weights_bytes"] == len(blob) and r["weights_exact"] is False
    assert any("PyTorch" in n for n in r["notes"])
    assert cdn_requests(h) == []                     # not a byte of the .bin


def test_fit_hub_bad_input(hub, env, tmp_path):
    files = demo_files()
    h = hub([Repo("acme/demo", files)])
    off = dict(env, SILICA_OFFLINE="1")
    assert_clean_error(run_silica("fit", "acme/demo", "--endpoint", h.url, env=off), "acme/demo", "offline")
    assert_clean_error(run_silica("fit", "acme/missing", "--endpoint", h.url, env=env), "acme/missing")
    assert_clean_error(run_silica("fit", "acme/demo", "--endpoint", "ftp://x", env=env), "--endpoint")
    assert_clean_error(run_silica("fit", "acme/demo:tag", "--endpoint", h.url, env=env), "acme/demo:tag")
    # a header length that does not fit the file
    bad = bytearray(files["model.safetensors"])
    bad[:8] = (len(bad) * 2).to_bytes(8, "little")
    h2 = hub([Repo("acme/bad", {"config.json": files["config.json"], "model.safetensors": bytes(bad)})])
    assert_clean_error(run_silica("fit", "acme/bad", "--endpoint", h2.url, env=env), "acme/bad",
                       "model.safetensors", "header length")
    # a hub that ignores Range: refused, not downloaded
    h3 = hub([Repo("acme/nr", files)], no_range=True)
    r = run_silica("fit", "acme/nr", "--endpoint", h3.url, env=env)
    assert_clean_error(r, "acme/nr", "Range")
    assert all(b < len(files["model.safetensors"]) // 2 for _, b in cdn_requests(h3, files["model.safetensors"]))
    # no weights at all
    h4 = hub([Repo("acme/cfg", {"README.md": b"x", "config.json": files["config.json"]})])
    assert_clean_error(run_silica("fit", "acme/cfg", "--endpoint", h4.url, env=env), "acme/cfg")


def test_chat_status_line_on_a_terminal():
    """On a TTY the status line follows every answer (read through a pseudo-terminal)."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(SILICA), [str(SILICA), "chat", str(DEMO), "--max-tokens", "4", "--ctx", "512"])
    out = b""
    os.write(fd, b"hello\n")
    deadline = time.time() + 120
    while time.time() < deadline and not STATS.search(out.decode("utf-8", "replace").replace("\r", "")):
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    os.write(fd, b"/quit\n")
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")
    assert os.WEXITSTATUS(status) == 0, text
    m = STATS.search(text)
    assert m, text
    assert float(m.group(4)) == pytest.approx(512 * 2 * 8 * 4 * 64 * 2 / MIB, abs=0.05)
    assert float(m.group(3)) > 0
