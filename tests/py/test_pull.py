"""`silica pull` against a Hugging Face protocol hub served by the real nginx
(tests/py/hub_fixture.py), and interop with the real huggingface_hub client:
it reads the HF-cache layout silica writes, and silica reuses what it
downloaded.  Every test starts its own nginx on a free loopback port."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from conftest import SILICA, assert_clean_error, run_on_a_tty, run_silica
from hub_fixture import Hub, Repo


def weights(n=300_000, seed=0):
    rng = np.random.default_rng(seed)
    return save({"model.embed_tokens.weight": rng.standard_normal(n, dtype=np.float32).reshape(-1, 100)})


def tiny_repo(repo_id="acme/tiny", n=300_000, **kw):
    files = {
        "config.json": json.dumps({"model_type": "llama", "torch_dtype": "float32", "hidden_size": 100}).encode(),
        "tokenizer.json": b'{"version":"1.0"}',
        "tokenizer_config.json": b'{"chat_template":"{{ x }}"}',
        "model.safetensors": weights(n),
        "README.md": b"# tiny\n",
        "original/consolidated.pth": b"x" * 100,
    }
    return Repo(repo_id, files, **kw)


@pytest.fixture
def env(tmp_path):
    return {"SILICA_HOME": str(tmp_path / "store"), "HF_HOME": str(tmp_path / "hf"),
            "SILICA_RETRY_BASE_MS": "5", "SILICA_OFFLINE": "", "HF_HUB_OFFLINE": "", "HF_TOKEN": ""}


def sha256(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def stored(env, name="acme/tiny"):
    r = run_silica("show", name, "--json", env=env, check=True)
    return r.json()


def test_pull_layout_digests_and_protocol(hub, env):
    repo = tiny_repo(page_size=2)   # tree answer paginated with Link rel="next"
    h = hub([repo])
    r = run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)
    assert "pulled acme/tiny@" + repo.commit[:12] in r.out
    v = stored(env)
    assert v["revision"] == repo.commit and v["ref"] == "main" and v["format"] == "hf"
    names = sorted(f["path"] for f in v["files"])
    # default selection: config + tokenizer files + safetensors; not README or original/
    assert names == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    for f in v["files"]:
        data = repo.files[f["path"]]
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
        assert (Path(v["path"]) / f["path"]).read_bytes() == data
    assert v["params"] == 300_000
    assert [l["kind"] for l in v["lineage"]] == ["hub"] and v["lineage"][0]["commit"] == repo.commit
    log = "\n".join(h.requests())
    assert f"/api/models/acme/tiny/revision/main" in log and "cursor=1" in log
    assert "/resolve/" + repo.commit + "/model.safetensors HTTP/1.1\" 302" in log and "/cdn/" in log
    # blobs are read-only
    blob = Path(env["SILICA_HOME"]) / "blobs" / v["files"][0]["sha256"][:2] / v["files"][0]["sha256"]
    assert oct(blob.stat().st_mode & 0o777) == "0o444"
    # a second pull makes no file request
    n = len(h.requests())
    r = run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)
    assert "up to date" in r.out
    assert all("/resolve/" not in l for l in h.requests()[n:])


def test_include_exclude_and_commit_revision(hub, env):
    repo = tiny_repo()
    h = hub([repo])
    run_silica("pull", f"acme/tiny@{repo.commit}", "--endpoint", h.url, "--include", "*.json",
               "--exclude", "tokenizer_config.json", env=env, check=True)
    v = stored(env)
    assert sorted(f["path"] for f in v["files"]) == ["config.json", "tokenizer.json"]
    assert v.get("ref") is None


def test_hf_endpoint_env_and_jobs(hub, env):
    repo = tiny_repo()
    h = hub([repo])
    run_silica("pull", "acme/tiny", "--jobs", "1", env={**env, "HF_ENDPOINT": h.url + "/"}, check=True)
    assert stored(env)["revision"] == repo.commit


def test_corrupt_blob_rejected(hub, env):
    repo = tiny_repo(corrupt={"model.safetensors"})
    h = hub([repo])
    r = run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env)
    assert_clean_error(r, "model.safetensors", "corrupt", "sha256")
    assert run_silica("list", "--json", env=env, check=True).json() == []
    assert list((Path(env["SILICA_HOME"]) / "partial").iterdir()) == []


def test_corrupt_small_file_rejected_by_git_sha1(hub, env):
    repo = tiny_repo(corrupt={"config.json"})
    h = hub([repo])
    r = run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env)
    assert_clean_error(r, "config.json", "corrupt", "git sha1")


def test_errors_are_one_line(hub, env):
    repo = tiny_repo(missing={"tokenizer.json"})
    h = hub([repo], fail_revision="acme/flaky")
    hub2 = Hub(Path(env["SILICA_HOME"]).parent / "h503", [tiny_repo("acme/flaky")], fail_revision="acme/flaky").start()
    try:
        assert_clean_error(run_silica("pull", "acme/nope", "--endpoint", h.url, env=env), "acme/nope", "RepoNotFound")
        assert_clean_error(run_silica("pull", "acme/tiny@v9", "--endpoint", h.url, env=env), "RevisionNotFound")
        assert_clean_error(run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env), "tokenizer.json", "EntryNotFound")
        t0 = time.time()
        assert_clean_error(run_silica("pull", "acme/flaky", "--endpoint", hub2.url, env=env), "acme/flaky", "503")
        assert sum("/revision/main" in l for l in hub2.requests()) == 6   # retried with backoff
        assert time.time() - t0 < 30
        assert_clean_error(run_silica("pull", "acme/tiny", "--endpoint", "http://127.0.0.1:9", env=env), "acme/tiny")
        assert_clean_error(run_silica("pull", "acme/tiny", "--include", "*.nothing", "--endpoint", h.url, env=env),
                           "no file matches")
        assert_clean_error(run_silica("pull", "not-a-name", env=env), "not-a-name")
        assert_clean_error(run_silica("pull", "acme/tiny", "--jobs", "0", env=env), "--jobs")
    finally:
        hub2.stop()
    assert run_silica("list", "--json", env=env, check=True).json() == []


def test_unsafe_tree_paths_refused(hub, env):
    for bad in ["../evil.json", "a//b.json", "/abs.json"]:
        repo = Repo("acme/evil", {bad: b"{}", "config.json": b"{}"})
        h = hub([repo])
        assert_clean_error(run_silica("pull", "acme/evil", "--endpoint", h.url, env=env), "not a safe relative path")
        h.stop()


def test_offline_mode_makes_no_request(hub, env):
    repo = tiny_repo()
    h = hub([repo])
    run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)
    h.stop()
    for flag in ({"SILICA_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "TRUE"}):
        n = len(h.requests())
        r = run_silica("pull", "acme/tiny", "--endpoint", h.url, env={**env, **flag})
        assert r.rc == 0 and r.out == "" and r.err == ""
        assert len(h.requests()) == n
    r = run_silica("pull", "acme/other", "--endpoint", h.url, env={**env, "SILICA_OFFLINE": "1"})
    assert_clean_error(r, "acme/other", "offline")
    r = run_silica("pull", "acme/tiny", "--offline", "--endpoint", h.url, env=env)
    assert r.rc == 0 and r.out == ""


def test_offline_lfs_fetch_makes_no_request(hub, env, tmp_path):
    """SILICA_OFFLINE reaches every network client: an LFS fetch from an HTTP remote is one
    clean error and no request (a file:// remote is local and still works)."""
    h = hub([tiny_repo()])
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights" * 1000)
    co = tmp_path / "co"
    co.mkdir()
    (co / "w.bin").write_text(run_silica("lfs", "pointer", f, env=env, check=True).out)
    n = len(h.requests())
    for flag in ({"SILICA_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "1"}):
        r = run_silica("lfs", "fetch", h.url + "/acme/tiny.git/info/lfs", co, "acme/lfs", env={**env, **flag})
        assert_clean_error(r, "127.0.0.1", "offline")
    assert len(h.requests()) == n


def test_verify_repair_fetches_from_the_hub(hub, env):
    """A damaged blob of a pulled version comes back from the hub commit it was pulled from;
    when the hub no longer has those bytes verify says so and keeps the problem."""
    repo = tiny_repo()
    h = hub([repo])
    run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)
    v = stored(env)
    f = next(x for x in v["files"] if x["path"] == "model.safetensors")
    blob = Path(env["SILICA_HOME"]) / "blobs" / f["sha256"][:2] / f["sha256"]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"x" * 10)
    n = len(h.requests())
    r = run_silica("verify", "--repair", "--json", env=env, check=True).json()
    assert r["ok"] is True and r["repaired"] == 1
    assert r["files"][0]["repaired_from"] == f"{h.url}/acme/tiny/resolve/{repo.commit}/model.safetensors"
    assert blob.read_bytes() == repo.files["model.safetensors"]
    assert any(f"/resolve/{repo.commit}/model.safetensors" in l for l in h.requests()[n:])
    # the hub gone: nothing to restore from, one clear reason per file
    h.stop()
    blob.unlink()
    r = run_silica("verify", "--repair", env=env)
    assert r.rc == 1 and "model.safetensors: missing" in r.out and "not repaired" in r.out
    assert "127.0.0.1" in r.out
    # offline: no request is made for a repair either
    r = run_silica("verify", "--repair", env={**env, "SILICA_OFFLINE": "1"})
    assert r.rc == 1 and "offline" in r.out


def wait_partial(store, minimum, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        parts = list((Path(store) / "partial").glob("*.part"))
        if parts and parts[0].stat().st_size >= minimum:
            return parts[0]
        time.sleep(0.02)
    raise AssertionError("no partial download appeared")


def test_kill9_mid_file_then_resume_with_range(hub, env):
    repo = tiny_repo(n=1_000_000)          # 4 MB weights
    h = hub([repo], limit_rate="1m")      # slow enough to kill mid-file
    p = subprocess.Popen([str(SILICA), "pull", "acme/tiny", "--endpoint", h.url], env={**os.environ, **env},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = wait_partial(env["SILICA_HOME"], 300_000)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    have = part.stat().st_size
    assert 0 < have < 4_000_080
    assert run_silica("list", "--json", env=env, check=True).json() == []   # nothing partial listed
    h.stop()
    h2 = hub([repo])
    r = run_silica("pull", "acme/tiny", "--endpoint", h2.url, "--json", env=env, check=True)
    res = r.json()
    assert res["bytes_fetched"] < res["bytes_total"] - have + 1000        # only the rest was fetched
    log = [l for l in h2.requests() if "/cdn/" in l]
    assert log and all('" 206 ' in l for l in log), log                    # Range answered with 206
    v = stored(env)
    st = next(f for f in v["files"] if f["path"] == "model.safetensors")
    assert st["sha256"] == hashlib.sha256(repo.files["model.safetensors"]).hexdigest()
    assert run_silica("verify", env=env).rc == 0
    assert list((Path(env["SILICA_HOME"]) / "partial").iterdir()) == []


def test_range_answered_200_restarts_cleanly(hub, env):
    repo = tiny_repo()
    data = repo.files["model.safetensors"]
    oid = hashlib.sha256(data).hexdigest()
    part = Path(env["SILICA_HOME"]) / "partial" / f"{oid}-{len(data)}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * 5000)      # wrong bytes: must be discarded, not kept
    h = hub([repo], no_range=True)
    run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)
    assert any("/cdn/" in l and '" 200 ' in l for l in h.requests())
    v = stored(env)
    assert next(f for f in v["files"] if f["path"] == "model.safetensors")["sha256"] == oid


def test_wrong_partial_with_range_is_rejected_then_recovers(hub, env):
    repo = tiny_repo()
    data = repo.files["model.safetensors"]
    oid = hashlib.sha256(data).hexdigest()
    part = Path(env["SILICA_HOME"]) / "partial" / f"{oid}-{len(data)}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * 5000)
    h = hub([repo])
    r = run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env)
    assert_clean_error(r, "model.safetensors", "corrupt")
    assert not part.exists()
    run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)


def test_two_concurrent_pulls_end_with_one_copy(hub, env):
    repo = tiny_repo(n=500_000)
    h = hub([repo], limit_rate="2m")
    procs = [subprocess.Popen([str(SILICA), "pull", "acme/tiny", "--endpoint", h.url], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    vs = run_silica("list", "--json", env=env, check=True).json()
    assert len([v for v in vs if v["source"] == "store"]) == 1
    blobs = list((Path(env["SILICA_HOME"]) / "blobs").glob("*/*"))
    assert len(blobs) == 4
    assert sum("/cdn/" in l for l in h.requests()) == 1


HF_READ = """
import sys, json
from huggingface_hub import hf_hub_download, snapshot_download
p = hf_hub_download(sys.argv[1], sys.argv[2])
s = snapshot_download(sys.argv[1])
print(json.dumps({"file": p, "snapshot": s}))
"""


def test_huggingface_hub_reads_silica_hf_cache(hub, env, tmp_path):
    repo = tiny_repo()
    h = hub([repo])
    run_silica("pull", "acme/tiny", "--endpoint", h.url, "--hf-cache", env=env, check=True)
    h.stop()
    cache = Path(env["HF_HOME"]) / "hub" / "models--acme--tiny"
    assert (cache / "refs" / "main").read_bytes() == repo.commit.encode()
    link = cache / "snapshots" / repo.commit / "model.safetensors"
    assert os.readlink(link) == "../../blobs/" + hashlib.sha256(repo.files["model.safetensors"]).hexdigest()
    cfg = cache / "snapshots" / repo.commit / "config.json"
    assert os.readlink(cfg) == "../../blobs/" + repo.oid("config.json")     # git sha1 etag for small files
    e = {**os.environ, **env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": h.url}
    p = subprocess.run([sys.executable, "-c", HF_READ, "acme/tiny", "model.safetensors"], env=e,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).read_bytes() == repo.files["model.safetensors"]
    assert Path(got["snapshot"]) == cache / "snapshots" / repo.commit
    # the HF-cache blob shares the store blob's inode (hardlink, no copy)
    store_blob = next((Path(env["SILICA_HOME"]) / "blobs").glob("*/" + hashlib.sha256(repo.files["model.safetensors"]).hexdigest()))
    assert store_blob.stat().st_ino == link.resolve().stat().st_ino


HF_GET = """
import sys
from huggingface_hub import snapshot_download
print(snapshot_download(sys.argv[1]))
"""


def test_silica_reuses_what_huggingface_hub_downloaded(hub, env):
    repo = tiny_repo()
    h = hub([repo])
    e = {**os.environ, **env, "HF_ENDPOINT": h.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": ""}
    p = subprocess.run([sys.executable, "-c", HF_GET, "acme/tiny"], env=e, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    snap = Path(p.stdout.strip().splitlines()[-1])
    # visible without copying
    vs = run_silica("list", "--json", env=env, check=True).json()
    hf = [v for v in vs if v["source"] == "hf-cache"]
    assert len(hf) == 1 and hf[0]["name"] == "acme/tiny" and hf[0]["revision"] == repo.commit
    assert Path(hf[0]["path"]) == snap
    r = run_silica("inspect", "acme/tiny", "--json", env=env, check=True)
    assert r.json()["tensors"][0]["name"] == "model.embed_tokens.weight"
    # an online pull takes the files from the HF cache: no weight download
    n = len(h.requests())
    run_silica("pull", "acme/tiny", "--endpoint", h.url, env=env, check=True)
    assert not any("/cdn/" in l for l in h.requests()[n:])
    v = stored(env)
    blob = Path(env["SILICA_HOME"]) / "blobs"
    st = next(f for f in v["files"] if f["path"] == "model.safetensors")
    assert (blob / st["sha256"][:2] / st["sha256"]).stat().st_ino == (snap / "model.safetensors").resolve().stat().st_ino


def test_offline_pull_imports_from_hf_cache(hub, env):
    repo = tiny_repo()
    h = hub([repo])
    e = {**os.environ, **env, "HF_ENDPOINT": h.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": ""}
    p = subprocess.run([sys.executable, "-c", HF_GET, "acme/tiny"], env=e, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    h.stop()
    n = len(h.requests())
    r = run_silica("pull", "acme/tiny", env={**env, "HF_HUB_OFFLINE": "1"})
    assert r.rc == 0 and r.err == ""
    assert len(h.requests()) == n
    v = stored(env)
    assert v["revision"] == repo.commit and v["lineage"][0]["kind"] == "hf-cache"


def sharded_repo(repo_id="acme/shards", shards=3, n=250_000):
    files = {"config.json": json.dumps({"model_type": "llama", "torch_dtype": "float32"}).encode(),
             "tokenizer.json": b'{"version":"1.0"}'}
    for i in range(shards):
        files[f"model-{i + 1:05d}-of-{shards:05d}.safetensors"] = weights(n, seed=i)
    return Repo(repo_id, files)


def test_progress_bars_per_file_and_total_on_a_tty(hub, env):
    repo = sharded_repo(n=150_000)         # 3 x 600 kB
    h = hub([repo], limit_rate="200k")     # nginx sends 1 s worth at once, then ~2 s per shard: many redraws
    rc, text = run_on_a_tty(["pull", "acme/shards", "--endpoint", h.url, "--jobs", "3"], env, timeout=60)
    assert rc == 0, text
    names = [p for p in repo.files if p.endswith(".safetensors")]
    for nm in names:                       # one bar per file in flight
        assert nm in text, text[-2000:]
    total_lines = [l for l in text.replace("\r", "\n").split("\n") if l.lstrip("\x1b[K").startswith("total ")]
    assert len(total_lines) >= 5, text[-2000:]   # the total line was redrawn several times
    assert "ETA" in text and "/s" in text and "files" in text
    # in-place redraw: cursor up over the block (3 file rows + total), clear line, clear below
    assert "\x1b[3A" in text and "\x1b[K" in text and "\x1b[J" in text
    # several files were in flight at once
    assert any(sum(nm in blk for nm in names) >= 2 for blk in text.split("\x1b[3A"))
    # the summary line ends it
    assert f"pulled acme/shards@{repo.commit[:12]}: 5 files" in text
    assert text.rstrip().endswith("MB/s)")


def test_no_escape_codes_without_a_tty(hub, env):
    repo = sharded_repo()
    h = hub([repo], limit_rate="4m")
    r = run_silica("pull", "acme/shards", "--endpoint", h.url, "--jobs", "3", env=env, check=True)
    assert r.err == "" and "\x1b" not in r.out
    assert r.out.startswith(f"pulled acme/shards@{repo.commit[:12]}: 5 files")


def test_dry_run_lists_without_downloading(hub, env):
    repo = tiny_repo(n=1_000_000)
    h = hub([repo], limit_rate="1m")
    r = run_silica("pull", "acme/tiny", "--endpoint", h.url, "--dry-run", env=env, check=True)
    lines = r.out.splitlines()
    size = len(repo.files["model.safetensors"])
    assert lines[0].startswith(f"acme/tiny@{repo.commit[:12]}: 4 files")
    assert any(l.split() == [str(size), "model.safetensors"] for l in lines[1:]), r.out
    assert not any("/resolve/" in l or "/cdn/" in l for l in h.requests())
    assert run_silica("list", "--json", env=env, check=True).json() == []
    # interrupted pull: the dry run shows the partial and what is left to fetch
    p = subprocess.Popen([str(SILICA), "pull", "acme/tiny", "--endpoint", h.url], env={**os.environ, **env},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = wait_partial(env["SILICA_HOME"], 200_000)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    have = part.stat().st_size
    j = run_silica("pull", "acme/tiny", "--endpoint", h.url, "--dry-run", "--json", env=env, check=True).json()
    st = next(f for f in j["files"] if f["path"] == "model.safetensors")
    assert st["present"] == have and st["size"] == size
    assert st["sha256"] == hashlib.sha256(repo.files["model.safetensors"]).hexdigest()
    assert j["bytes_needed"] <= j["bytes_total"] - have and j["bytes_free"] > 0
    h.stop()
    h2 = hub([repo])
    run_silica("pull", "acme/tiny", "--endpoint", h2.url, env=env, check=True)
    r = run_silica("pull", "acme/tiny", "--endpoint", h2.url, "--dry-run", env=env, check=True)
    assert "0 B to download" in r.out and all("stored" in l for l in r.out.splitlines()[1:]), r.out
    assert_clean_error(run_silica("pull", "acme/tiny", "--dry-run", env={**env, "SILICA_OFFLINE": "1"}), "--dry-run")


def test_default_selection_skips_mistral_consolidated_weights(hub, env):
    # mistralai/Mistral-7B-Instruct-v0.3 layout: transformers shards + consolidated.safetensors
    # (the same weights in Mistral's own format) + params.json + tokenizer.model.v3
    w = weights(1000)
    files = {"config.json": b'{"model_type":"mistral"}', "params.json": b"{}", "tokenizer.json": b"{}",
             "tokenizer.model": b"\x00" * 20, "tokenizer.model.v3": b"\x00" * 20,
             "model-00001-of-00001.safetensors": w, "model.safetensors.index.json": b"{}",
             "consolidated.safetensors": w + b" "}
    h = hub([Repo("mistralai/tiny", files)])
    j = run_silica("pull", "mistralai/tiny", "--endpoint", h.url, "--dry-run", "--json", env=env, check=True).json()
    got = sorted(f["path"] for f in j["files"])
    assert got == ["config.json", "model-00001-of-00001.safetensors", "model.safetensors.index.json", "params.json",
                   "tokenizer.json", "tokenizer.model"], got
    # asked for by name, it comes
    j = run_silica("pull", "mistralai/tiny", "--endpoint", h.url, "--dry-run", "--json", "--include",
                   "consolidated.safetensors", env=env, check=True).json()
    assert [f["path"] for f in j["files"]] == ["consolidated.safetensors"]


POPULAR = Path(__file__).resolve().parents[2] / "part7" / "scripts" / "popular.sh"


def test_popular_script_dry_run_and_pull(hub, env):
    # the script's ids, served by the fixture hub in the layouts the real repos have
    qwen = tiny_repo("Qwen/Qwen3-0.6B")
    w = weights(1000)
    mistral = Repo("mistralai/Mistral-7B-Instruct-v0.3",
                   {"config.json": b"{}", "params.json": b"{}", "tokenizer.json": b"{}", "tokenizer.model": b"m" * 9,
                    "model-00001-of-00001.safetensors": w, "consolidated.safetensors": w + b" "})
    h = hub([qwen, mistral])
    e = {**os.environ, **env, "SILICA": str(SILICA), "HF_ENDPOINT": h.url}
    listing = subprocess.run([str(POPULAR)], env=e, capture_output=True, text=True, check=True).stdout
    ids = dict(l.split()[0::3] for l in listing.splitlines())
    assert ids["qwen3-0.6b"] == "Qwen/Qwen3-0.6B" and ids["mistral-7b-mlx4"] == "mlx-community/Mistral-7B-Instruct-v0.3-4bit"
    assert len(ids) >= 20 and all(re.fullmatch(r"[\w.-]+/[\w.-]+", v) for v in ids.values())
    p = subprocess.run([str(POPULAR), "--dry-run", "qwen3-0.6b", "mistral-7b"], env=e, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Qwen/Qwen3-0.6B@" in p.stdout and "mistralai/Mistral-7B-Instruct-v0.3@" in p.stdout
    assert "consolidated" not in p.stdout and "model-00001-of-00001.safetensors" in p.stdout
    assert not any("/cdn/" in l for l in h.requests())
    p = subprocess.run([str(POPULAR), "qwen3-0.6b", "--jobs", "2"], env=e, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("pulled Qwen/Qwen3-0.6B@"), p.stderr
    p = subprocess.run([str(POPULAR), "nope"], env=e, capture_output=True, text=True)
    assert p.returncode == 2 and "unknown model 'nope'" in p.stderr
