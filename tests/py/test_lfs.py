"""Git LFS against Debian's git-lfs: pointers byte-identical (both what
`git lfs pointer` prints and the blob git-lfs commits), objects git-lfs pushed
to a file:// bare remote fetched by silica into the store, objects silica
pushed cloned (smudged) by git-lfs; and the batch API over HTTP against a
stub server that git-lfs itself pushes to and clones from (so the stub is
held to the real client's expectations).  HOME is a temp dir per test."""
import hashlib
import http.server
import json
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from conftest import assert_clean_error, run_silica

V1 = b"version https://git-lfs.github.com/spec/v1\n"


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    e = {"HOME": str(home), "SILICA_HOME": str(tmp_path / "store"), "HF_HOME": str(tmp_path / "hf"),
         "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
         "GIT_COMMITTER_EMAIL": "t@e", "GIT_TERMINAL_PROMPT": "0", "SILICA_OFFLINE": ""}
    git(["lfs", "install", "--skip-repo"], cwd=tmp_path, env=e)
    return e


def git(args, cwd, env, check=True):
    p = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {p.stderr.decode()}")
    return p


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 5, 1000, 123456])
def test_pointer_byte_identical_to_git_lfs(tmp_path, env, size):
    f = tmp_path / "w.bin"
    f.write_bytes(os.urandom(size))
    ours = run_silica("lfs", "pointer", f, env=env, check=True)
    theirs = git(["lfs", "pointer", f"--file={f}"], cwd=tmp_path, env=env)
    assert ours.out.encode() == theirs.stdout
    if size:
        assert len(theirs.stdout) == 125 + len(str(size))
        p = tmp_path / "p"
        p.write_bytes(theirs.stdout)
        r = run_silica("lfs", "parse", p, "--json", env=env, check=True).json()
        assert r == {"oid": sha(f), "size": size, "extensions": []}


BAD_POINTERS = [
    (b"", "empty"),
    (V1 + b"size 5\noid sha256:" + b"a" * 64 + b"\n", "expected oid"),
    (V1 + b"oid sha256:" + b"A" * 64 + b"\nsize 5\n", "lowercase"),
    (V1 + b"oid sha256:" + b"a" * 63 + b"\nsize 5\n", "oid"),
    (V1 + b"oid md5:" + b"a" * 64 + b"\nsize 5\n", "sha256"),
    (V1 + b"oid sha256:" + b"a" * 64 + b"\nsize -5\n", "decimal"),
    (V1 + b"oid sha256:" + b"a" * 64 + b"\nsize 99999999999999999999\n", "decimal"),
    (V1 + b"oid sha256:" + b"a" * 64 + b"\n", "missing"),
    (V1 + b"oid sha256:" + b"a" * 64 + b"\nsize 5\nextra 1\n", "nothing after size"),
    (b"version https://example.com/v9\noid sha256:" + b"a" * 64 + b"\nsize 5\n", "not a Git LFS pointer"),
    (V1 + b"ext-1-b x\next-0-a y\noid sha256:" + b"a" * 64 + b"\nsize 5\n", "ascending"),
    (V1 + b"oid  sha256:" + b"a" * 64 + b"\nsize 5\n", "oid"),
    (V1 + b"OID sha256:" + b"a" * 64 + b"\nsize 5\n", "a-z0-9"),
    (V1 + b"oid sha256:" + b"a" * 64 + b"\r\nsize 5\n", "control character"),
    (V1 + b"x" * 1100, "1024"),
]


@pytest.mark.parametrize("data,needle", BAD_POINTERS)
def test_bad_pointers_are_clean_errors(tmp_path, env, data, needle):
    p = tmp_path / "ptr"
    p.write_bytes(data)
    assert_clean_error(run_silica("lfs", "parse", p, env=env), "ptr", needle)


def test_pointer_extensions_and_old_version_urls(tmp_path, env):
    p = tmp_path / "ptr"
    p.write_bytes(V1 + b"ext-0-foo sha256:" + b"b" * 64 + b"\noid sha256:" + b"a" * 64 + b"\nsize 7\n")
    r = run_silica("lfs", "parse", p, "--json", env=env, check=True).json()
    assert r["extensions"] == ["ext-0-foo sha256:" + "b" * 64] and r["size"] == 7
    p.write_bytes(b"version https://hawser.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 7")
    assert run_silica("lfs", "parse", p, "--json", env=env, check=True).json()["size"] == 7


def make_model(d: Path, seed=0):
    d.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.random.default_rng(seed).standard_normal((64, 64)).astype(np.float32)},
              str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "torch_dtype": "float32"}))
    return d


def git_lfs_repo(tmp_path, env, model):
    """A work repo tracking *.safetensors with git-lfs, pushed to a bare file:// remote."""
    bare = tmp_path / "remote.git"
    git(["init", "--bare", "-b", "main", str(bare)], cwd=tmp_path, env=env)
    work = tmp_path / "work"
    git(["init", "-b", "main", str(work)], cwd=tmp_path, env=env)
    git(["lfs", "track", "*.safetensors"], cwd=work, env=env)
    assert (work / ".gitattributes").read_text() == "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    for f in model.iterdir():
        (work / f.name).write_bytes(f.read_bytes())
    git(["add", "."], cwd=work, env=env)
    git(["commit", "-qm", "model"], cwd=work, env=env)
    git(["push", "-q", f"file://{bare}", "main"], cwd=work, env=env)
    return bare, work


def test_silica_fetches_what_git_lfs_pushed(tmp_path, env):
    model = make_model(tmp_path / "model")
    bare, work = git_lfs_repo(tmp_path, env, model)
    oid = sha(model / "model.safetensors")
    assert (bare / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
    # the committed blob is a pointer silica writes byte-identically
    blob = git(["show", "HEAD:model.safetensors"], cwd=work, env=env).stdout
    assert blob == run_silica("lfs", "pointer", model / "model.safetensors", env=env, check=True).out.encode()
    # a pointer checkout, then silica fetches the objects from the file:// remote
    co = tmp_path / "co"
    git(["clone", "-q", f"file://{bare}", str(co)], cwd=tmp_path, env={**env, "GIT_LFS_SKIP_SMUDGE": "1"})
    assert (co / "model.safetensors").read_bytes().startswith(V1)
    r = run_silica("lfs", "fetch", f"file://{bare}", co, "acme/lfs", env=env, check=True)
    assert "1 LFS objects" in r.out
    v = run_silica("show", "acme/lfs", "--json", env=env, check=True).json()
    files = {f["path"]: f["sha256"] for f in v["files"]}
    assert files["model.safetensors"] == oid and files["config.json"] == sha(model / "config.json")
    assert v["lineage"][0]["kind"] == "lfs" and v["lineage"][0]["endpoint"] == f"file://{bare}"
    assert run_silica("verify", env=env).rc == 0


def test_fetch_rejects_corrupt_and_missing_objects(tmp_path, env):
    model = make_model(tmp_path / "model")
    bare, work = git_lfs_repo(tmp_path, env, model)
    co = tmp_path / "co"
    git(["clone", "-q", f"file://{bare}", str(co)], cwd=tmp_path, env={**env, "GIT_LFS_SKIP_SMUDGE": "1"})
    oid = sha(model / "model.safetensors")
    obj = bare / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    os.chmod(obj, 0o644)
    data = bytearray(obj.read_bytes())
    data[100] ^= 1
    obj.unlink()                 # git-lfs hard-linked it: break the link before editing
    obj.write_bytes(bytes(data))
    assert_clean_error(run_silica("lfs", "fetch", bare, co, "acme/lfs", env=env), oid, "corrupt")
    obj.unlink()
    assert_clean_error(run_silica("lfs", "fetch", bare, co, "acme/lfs", env=env), oid, "not on the remote")
    assert run_silica("list", "--json", env=env, check=True).json() == []
    assert_clean_error(run_silica("lfs", "fetch", tmp_path / "nope", co, "acme/lfs", env=env), "nope")


def test_git_lfs_clones_what_silica_pushed(tmp_path, env):
    model = make_model(tmp_path / "model", seed=3)
    run_silica("import", model, "acme/src", env=env, check=True)
    bare = tmp_path / "remote.git"
    git(["init", "--bare", "-b", "main", str(bare)], cwd=tmp_path, env=env)
    work = tmp_path / "work"
    git(["init", "-b", "main", str(work)], cwd=tmp_path, env=env)
    r = run_silica("lfs", "push", "acme/src", f"file://{bare}", "--pointers", work, env=env, check=True)
    assert "pushed acme/src@" in r.out
    assert (work / ".gitattributes").read_text() == "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    git(["add", "."], cwd=work, env=env)
    git(["commit", "-qm", "from silica"], cwd=work, env=env)
    # git-lfs leaves pointer files alone when it cleans them; the objects are on the remote already
    assert git(["show", "HEAD:model.safetensors"], cwd=work, env=env).stdout.startswith(V1)
    git(["-c", "lfs.allowincompletepush=true", "push", "-q", f"file://{bare}", "main"], cwd=work, env=env)
    clone = tmp_path / "clone"
    git(["clone", "-q", f"file://{bare}", str(clone)], cwd=tmp_path, env=env)
    assert (clone / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()
    assert (clone / "config.json").read_bytes() == (model / "config.json").read_bytes()
    assert git(["lfs", "fsck"], cwd=clone, env=env).returncode == 0


class LfsStub(http.server.BaseHTTPRequestHandler):
    """Batch API + basic transfers + verify over a directory; optional Basic auth."""
    store: Path = None
    auth = None          # "user:pass" required when set
    log = []
    expire = False

    def log_message(self, *a):
        pass

    def _json(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.git-lfs+json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authed(self):
        if not self.auth:
            return True
        import base64
        want = "Basic " + base64.b64encode(self.auth.encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self._json(401, {"message": "credentials needed"}, [("LFS-Authenticate", 'Basic realm="stub"')])
        return False

    def do_POST(self):
        LfsStub.log.append(("POST", self.path, self.headers.get("Accept")))
        n = int(self.headers.get("Content-Length", 0))
        req = json.loads(self.rfile.read(n) or b"{}")
        if not self._authed():
            return
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path.endswith("/locks/verify"):
            return self._json(404, {"message": "no locks"})
        if self.path.endswith("/verify"):
            ok = (self.store / req["oid"]).exists()
            return self._json(200 if ok else 404, {})
        if not self.path.endswith("/objects/batch"):
            return self._json(404, {"message": "?"})
        out = []
        for o in req["objects"]:
            p = self.store / o["oid"]
            e = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            hdr = {"X-Stub-Token": "t-" + o["oid"][:8]}
            if req["operation"] == "download":
                if not p.exists():
                    e["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    e["actions"] = {"download": {"href": f"{base}/obj/{o['oid']}", "header": hdr,
                                                 "expires_in": -1 if self.expire else 3600}}
            elif not p.exists():
                e["actions"] = {"upload": {"href": f"{base}/obj/{o['oid']}", "header": hdr, "expires_in": 3600},
                                "verify": {"href": f"{base}/repo.git/info/lfs/verify", "header": hdr}}
            out.append(e)
        self._json(200, {"transfer": "basic", "objects": out, "hash_algo": "sha256"})

    def do_GET(self):
        oid = self.path.rsplit("/", 1)[-1]
        LfsStub.log.append(("GET", self.path, self.headers.get("X-Stub-Token")))
        if self.headers.get("X-Stub-Token") != "t-" + oid[:8]:
            return self._json(403, {"message": "action header missing"})
        data = (self.store / oid).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        oid = self.path.rsplit("/", 1)[-1]
        LfsStub.log.append(("PUT", self.path, self.headers.get("Content-Type")))
        n = int(self.headers.get("Content-Length", 0))
        data = self.rfile.read(n)
        if hashlib.sha256(data).hexdigest() != oid:
            return self._json(422, {"message": "bad oid"})
        (self.store / oid).write_bytes(data)
        self._json(200, {})


@pytest.fixture
def stub(tmp_path):
    d = tmp_path / "stubstore"
    d.mkdir()
    LfsStub.store, LfsStub.auth, LfsStub.log, LfsStub.expire = d, None, [], False
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LfsStub)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()


def test_batch_api_roundtrip_with_git_lfs(tmp_path, env, stub):
    url = f"http://127.0.0.1:{stub.server_port}/repo.git/info/lfs"
    # git-lfs pushes to the stub over HTTP (git remote stays file://)
    model = make_model(tmp_path / "model", seed=5)
    bare = tmp_path / "remote.git"
    git(["init", "--bare", "-b", "main", str(bare)], cwd=tmp_path, env=env)
    work = tmp_path / "work"
    git(["init", "-b", "main", str(work)], cwd=tmp_path, env=env)
    git(["config", "lfs.url", url], cwd=work, env=env)
    git(["lfs", "track", "*.safetensors"], cwd=work, env=env)
    for f in model.iterdir():
        (work / f.name).write_bytes(f.read_bytes())
    git(["add", "."], cwd=work, env=env)
    git(["commit", "-qm", "m"], cwd=work, env=env)
    git(["push", "-q", f"file://{bare}", "main"], cwd=work, env=env)
    oid = sha(model / "model.safetensors")
    assert (LfsStub.store / oid).exists()
    # silica downloads it through the batch API (action headers honoured)
    co = tmp_path / "co"
    git(["clone", "-q", f"file://{bare}", str(co)], cwd=tmp_path, env={**env, "GIT_LFS_SKIP_SMUDGE": "1"})
    LfsStub.log.clear()
    run_silica("lfs", "fetch", url, co, "acme/http", env=env, check=True)
    assert ("POST", "/repo.git/info/lfs/objects/batch", "application/vnd.git-lfs+json") in LfsStub.log
    assert ("GET", f"/obj/{oid}", "t-" + oid[:8]) in LfsStub.log
    v = run_silica("show", "acme/http", "--json", env=env, check=True).json()
    assert {f["path"]: f["sha256"] for f in v["files"]}["model.safetensors"] == oid
    # silica uploads a new version; git-lfs clones it from the stub
    model2 = make_model(tmp_path / "model2", seed=6)
    run_silica("import", model2, "acme/two", env=env, check=True)
    work2 = tmp_path / "work2"
    git(["init", "-b", "main", str(work2)], cwd=tmp_path, env=env)
    LfsStub.log.clear()
    run_silica("lfs", "push", "acme/two", url.replace("/info/lfs", ""), "--pointers", work2, env=env, check=True)
    oid2 = sha(model2 / "model.safetensors")
    assert ("PUT", f"/obj/{oid2}", "application/octet-stream") in LfsStub.log
    assert any(m == "POST" and p.endswith("/verify") for m, p, _ in LfsStub.log)
    bare2 = tmp_path / "remote2.git"
    git(["init", "--bare", "-b", "main", str(bare2)], cwd=tmp_path, env=env)
    git(["add", "."], cwd=work2, env=env)
    git(["commit", "-qm", "m"], cwd=work2, env=env)
    git(["-c", "lfs.allowincompletepush=true", "-c", f"lfs.url={url}", "push", "-q", f"file://{bare2}", "main"],
        cwd=work2, env=env)
    clone = tmp_path / "clone2"
    git(["-c", f"lfs.url={url}", "clone", "-q", f"file://{bare2}", str(clone)], cwd=tmp_path, env=env)
    git(["config", "lfs.url", url], cwd=clone, env=env)
    git(["lfs", "pull"], cwd=clone, env=env)
    assert (clone / "model.safetensors").read_bytes() == (model2 / "model.safetensors").read_bytes()
    # pushing again: the server already has it, no PUT
    LfsStub.log.clear()
    run_silica("lfs", "push", "acme/two", url, env=env, check=True)
    assert not any(m == "PUT" for m, _, _ in LfsStub.log)


def test_batch_errors_auth_and_expiry(tmp_path, env, stub):
    url = f"http://127.0.0.1:{stub.server_port}/repo.git"
    model = make_model(tmp_path / "model", seed=7)
    run_silica("import", model, "acme/x", env=env, check=True)
    co = tmp_path / "co"
    run_silica("lfs", "push", "acme/x", f"file://{tmp_path}", "--pointers", co, env=env)   # only to get pointers
    oid = sha(model / "model.safetensors")
    # per-object 404
    assert_clean_error(run_silica("lfs", "fetch", url, co, "acme/y", env=env), oid, "404")
    (LfsStub.store / oid).write_bytes((model / "model.safetensors").read_bytes())
    LfsStub.expire = True
    assert_clean_error(run_silica("lfs", "fetch", url, co, "acme/y", env=env), oid, "expired")
    LfsStub.expire = False
    LfsStub.auth = "alice:s3cret"
    assert_clean_error(run_silica("lfs", "fetch", url, co, "acme/y", env=env), "401", "LFS-Authenticate")
    authed = f"http://alice:s3cret@127.0.0.1:{stub.server_port}/repo.git"
    run_silica("lfs", "fetch", authed, co, "acme/y", env=env, check=True)
    # credentials from git's credential helpers, as git-lfs gets them
    cred = tmp_path / "cred"
    cred.write_text(f"http://alice:s3cret@127.0.0.1%3a{stub.server_port}\n".replace("%3a", ":"))
    git(["config", "--global", "credential.helper", f"store --file={cred}"], cwd=tmp_path, env=env)
    run_silica("rm", "acme/y", env=env, check=True)
    run_silica("lfs", "fetch", url, co, "acme/y", env=env, check=True)
    cred.write_text(f"http://alice:wrong@127.0.0.1:{stub.server_port}\n")
    run_silica("rm", "acme/y", env=env, check=True)
    assert_clean_error(run_silica("lfs", "fetch", url, co, "acme/y", env=env), "401")
    run_silica("lfs", "fetch", authed, co, "acme/y", env=env, check=True)
    # a corrupt object from the server is refused
    LfsStub.auth = None
    (LfsStub.store / oid).write_bytes(b"x" * (model / "model.safetensors").stat().st_size)
    run_silica("rm", "acme/y", env=env, check=True)
    run_silica("rm", "acme/x", env=env, check=True)
    assert_clean_error(run_silica("lfs", "fetch", url, co, "acme/z", env=env), oid, "corrupt")


def test_loaders_recognise_a_pointer_where_weights_should_be(tmp_path, env):
    model = make_model(tmp_path / "model")
    bare, work = git_lfs_repo(tmp_path, env, model)
    co = tmp_path / "co"
    git(["clone", "-q", f"file://{bare}", str(co)], cwd=tmp_path, env={**env, "GIT_LFS_SKIP_SMUDGE": "1"})
    assert_clean_error(run_silica("inspect", co / "model.safetensors", env=env), "model.safetensors", "Git LFS pointer")
    assert_clean_error(run_silica("inspect", co, env=env), "Git LFS pointer")
