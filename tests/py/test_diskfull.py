"""A real full disk: a small tmpfs mounted in a private mount namespace
(`unshare -m` as root, else `unshare -rm`, a user + mount namespace) held
by a `sleep`; silica runs inside it through `nsenter`, and the test reads
the files through /proc/<pid>/root.  Nothing is mounted on the host, and the
tmpfs disappears with the namespace.

Covered: the pull's free-space check (the hub announces sizes), the disk
filling up during a download (the check passed: another writer took the
space), the --hf-cache target on another full filesystem, and `convert`
into a full directory.  Each failure is one stderr line naming the file and
the problem, nothing partial is listed, `silica verify` passes, and the
store works again once space is freed.  Under CI=true a machine that can
mount no tmpfs fails these tests instead of skipping them."""
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from conftest import SILICA, Result, assert_clean_error
from hub_fixture import Repo


class Tmpfs:
    """tmpfs of `size` at `mnt` inside a private mount namespace."""

    def __init__(self, mnt: Path, size: str):
        mnt.mkdir(parents=True, exist_ok=True)
        self.mnt = mnt
        self.proc = None
        tries = ([["unshare", "-m"], ["unshare", "-rm"]] if os.geteuid() == 0 else [["unshare", "-rm"]])
        why = []
        for pre in tries:
            script = f'mount -t tmpfs -o size={size} silica-test "$0" && echo mounted && exec sleep 600'
            p = subprocess.Popen(pre + ["--propagation", "private", "sh", "-c", script, str(mnt)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            line = p.stdout.readline()
            if line.strip() == b"mounted":
                self.proc = p
                self.enter = ["nsenter", "-t", str(p.pid), "-m"]
                if "-rm" in pre:
                    self.enter[3:3] = ["-U", "--preserve-credentials"]
                break
            p.wait()
            why.append(f"{' '.join(pre)}: {p.stderr.read().decode().strip()}")
        if not self.proc:
            msg = "cannot mount a tmpfs (" + "; ".join(why) + ")"
            if os.environ.get("CI") in ("true", "1"):
                pytest.fail(msg + " -- CI needs root or user namespaces for the disk-full tests")
            pytest.skip(msg)

    def host(self, path) -> Path:
        """A path inside the namespace, seen from the test."""
        return Path(f"/proc/{self.proc.pid}/root{Path(path).resolve()}")

    def run(self, *args, env=None, timeout=120):
        e = {**os.environ, **(env or {})}
        p = subprocess.run(self.enter + [str(SILICA), *map(str, args)], capture_output=True, text=True,
                           env=e, timeout=timeout)
        return Result(p)

    def popen(self, *args, env=None):
        return subprocess.Popen(self.enter + [str(SILICA), *map(str, args)], env={**os.environ, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def fill(self, name="filler"):
        """Take every free byte of the tmpfs."""
        with open(self.host(self.mnt / name), "wb", buffering=0) as f:
            for chunk in (b"\0" * 65536, b"\0" * 512, b"\0"):
                try:
                    while f.write(chunk):
                        pass
                except OSError:
                    pass

    def close(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc.stderr.close()
            self.proc = None


@pytest.fixture
def mounts():
    made = []

    def mount(path, size):
        t = Tmpfs(path, size)
        made.append(t)
        return t
    yield mount
    for t in made:
        t.close()


def model_repo(n):
    rng = np.random.default_rng(0)
    from safetensors.numpy import save
    files = {
        "config.json": json.dumps({"model_type": "llama", "torch_dtype": "float32"}).encode(),
        "tokenizer.json": b'{"version":"1.0"}',
        "model.safetensors": save({"w": rng.standard_normal(n, dtype=np.float32).reshape(-1, 100)}),
    }
    return Repo("acme/big", files)


def env_for(tmp_path, home, hf=None):
    return {"SILICA_HOME": str(home), "HF_HOME": str(hf or tmp_path / "hf"), "SILICA_RETRY_BASE_MS": "5",
            "SILICA_OFFLINE": "", "HF_HUB_OFFLINE": "", "HF_TOKEN": ""}


def assert_store_clean(t, env):
    lst = t.run("list", "--json", env=env)
    assert lst.rc == 0 and [v for v in lst.json() if v["source"] == "store"] == [], lst.out
    v = t.run("verify", env=env)
    assert v.rc == 0, v.out + v.err


def test_pull_space_check_refuses_before_downloading(tmp_path, mounts, hub):
    home = tmp_path / "small"
    t = mounts(home, "2m")
    repo = model_repo(1_000_000)                      # 4 MB of weights, sizes announced by the tree API
    h = hub([repo])
    env = env_for(tmp_path, home)
    r = t.run("pull", "acme/big", "--endpoint", h.url, env=env)
    assert_clean_error(r, "acme/big", "not enough disk space", str(home), "available")
    assert not any("/resolve/" in l or "/cdn/" in l for l in h.requests())
    assert_store_clean(t, env)
    # the dry run says so too, and lists the sizes
    d = t.run("pull", "acme/big", "--endpoint", h.url, "--dry-run", env=env)
    assert d.rc == 0 and "not enough disk space" in d.out and str(len(repo.files["model.safetensors"])) in d.out


def wait_partial(t, home, minimum, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        d = t.host(home / "partial")
        parts = list(d.glob("*.part")) if d.exists() else []
        for p in parts:
            if p.stat().st_size >= minimum:
                return p
        time.sleep(0.02)
    raise AssertionError("no partial download appeared")


def test_disk_fills_during_download(tmp_path, mounts, hub):
    home = tmp_path / "small"
    t = mounts(home, "2m")
    repo = model_repo(400_000)                        # 1.6 MB: passes the space check
    data = repo.files["model.safetensors"]
    h = hub([repo], limit_rate="300k")               # slow enough to fill the disk mid-file
    env = env_for(tmp_path, home)
    p = t.popen("pull", "acme/big", "--endpoint", h.url, env=env)
    part = wait_partial(t, home, 300_000)
    t.fill()                                          # another writer takes the rest of the disk
    out, err = p.communicate(timeout=60)
    r = Result(subprocess.CompletedProcess([], p.returncode, out, err))
    assert_clean_error(r, "model.safetensors", "No space left on device")
    assert_store_clean(t, env)
    assert part.exists() and 0 < part.stat().st_size < len(data)   # kept for the resume
    # free the space: the same pull resumes the partial and finishes
    (t.host(home / "filler")).unlink()
    h.stop()
    h2 = hub([repo])
    r = t.run("pull", "acme/big", "--endpoint", h2.url, "--json", env=env)
    assert r.rc == 0, r.err
    assert r.json()["bytes_fetched"] < len(data)
    assert any("/cdn/" in l and '" 206 ' in l for l in h2.requests())
    v = t.run("show", "acme/big", "--json", env=env).json()
    st = next(f for f in v["files"] if f["path"] == "model.safetensors")
    assert st["sha256"] == hashlib.sha256(data).hexdigest()
    assert t.run("verify", env=env).rc == 0
    assert list(t.host(home / "partial").iterdir()) == []


def test_hf_cache_on_a_full_filesystem(tmp_path, mounts, hub):
    hf = tmp_path / "hfsmall"
    t = mounts(hf, "1m")
    repo = model_repo(400_000)                        # 1.6 MB: fits the store, not the HF cache
    h = hub([repo])
    env = env_for(tmp_path, tmp_path / "store", hf)
    r = t.run("pull", "acme/big", "--endpoint", h.url, "--hf-cache", env=env)
    assert_clean_error(r, "acme/big", "not enough disk space for the Hugging Face cache", str(hf / "hub"))
    assert not any("/cdn/" in l for l in h.requests())
    assert_store_clean(t, env)
    assert not list(t.host(hf).rglob("*.incomplete"))
    # without --hf-cache the store (another filesystem) takes it
    r = t.run("pull", "acme/big", "--endpoint", h.url, env=env)
    assert r.rc == 0, r.err


def test_convert_into_a_full_directory(tmp_path, mounts):
    out = tmp_path / "small"
    t = mounts(out, "2m")
    src = tmp_path / "big.safetensors"
    rng = np.random.default_rng(1)
    save_file({"a": rng.standard_normal(300_000, dtype=np.float32), "b": rng.standard_normal(300_000, dtype=np.float32)},
              str(src))                               # 2.4 MB
    env = {"SILICA_HOME": str(tmp_path / "store")}
    for dst, to in ((out / "out.safetensors", "safetensors"), (out / "out.npz", "npz")):
        r = t.run("convert", src, dst, "--to", to, env=env)
        assert r.rc != 0
        lines = [l for l in r.err.splitlines() if l.strip()]
        assert len(lines) == 1 and "No space left on device" in lines[0] and str(out) in lines[0], r.err
        assert list(t.host(out).iterdir()) == [], "half-written output left behind"
    # room again: the same command works
    small = tmp_path / "small.safetensors"
    save_file({"a": rng.standard_normal(1000, dtype=np.float32)}, str(small))
    r = t.run("convert", small, out / "out.safetensors", "--to", "safetensors", env=env)
    assert r.rc == 0, r.err
    assert [p.name for p in t.host(out).iterdir()] == ["out.safetensors"]
