"""A Hugging Face protocol hub served by the real nginx (Debian nginx-light),
from fixture repositories generated in a temporary directory.

The config follows the minimum server contract huggingface_hub needs
(huggingface_hub file_download.py / _snapshot_download.py, what a real client needs): resolve URLs answer ETag and
X-Repo-Commit; LFS files answer 302 to /cdn/<sha256> with X-Linked-Etag and
X-Linked-Size; unknown files answer 404 with X-Error-Code: EntryNotFound;
/api/models/{repo}/revision/{rev} and /tree/{commit} (with Link pagination)
are static JSON.  nginx gives real Range/206, HEAD and limit_rate.
Used by tests/py/test_pull.py and bench/pull_bench.sh.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def is_lfs(path: str, data: bytes) -> bool:
    return path.endswith((".safetensors", ".gguf", ".bin", ".npz")) or len(data) > 10 * 1024


class Repo:
    def __init__(self, repo_id, files, commit=None, corrupt=(), page_size=0, refs=("main",), missing=()):
        self.repo_id = repo_id
        self.files = dict(files)
        self.commit = commit or hashlib.sha1(repr(sorted((k, hashlib.sha256(v).hexdigest())
                                                         for k, v in self.files.items())).encode()).hexdigest()
        self.corrupt = set(corrupt)   # paths whose served bytes differ from their declared digest
        self.page_size = page_size    # >0: paginate the tree answer
        self.refs = refs
        self.missing = set(missing)   # paths listed by the tree API but not served (404 EntryNotFound)

    def entries(self):
        out = []
        for p, d in sorted(self.files.items()):
            e = {"type": "file", "oid": git_blob_sha1(d), "size": len(d), "path": p}
            if is_lfs(p, d):
                e["lfs"] = {"oid": hashlib.sha256(d).hexdigest(), "size": len(d), "pointerSize": 130}
            out.append(e)
        return out

    def oid(self, p):
        d = self.files[p]
        return hashlib.sha256(d).hexdigest() if is_lfs(p, d) else git_blob_sha1(d)


def _q(s: str) -> str:
    assert "'" not in s and "$" not in s and "\\" not in s
    return "'" + s + "'"


class Hub:
    """Start with Hub(tmp_path, [Repo(...)]).start(); stop() when done."""

    def __init__(self, root: Path, repos, limit_rate=None, fail_revision=None, no_range=False):
        self.root = Path(root)
        self.repos = repos
        self.limit_rate = limit_rate
        self.fail_revision = fail_revision   # repo id whose revision API answers 503
        self.no_range = no_range             # max_ranges 0: Range requests get a full 200
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def write(self):
        blobs = self.root / "blobs"
        for sub in ("blobs", "logs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        maps_oid, maps_lfs, maps_size, maps_cdn, locs = [], [], [], [], []
        for ri, r in enumerate(self.repos):
            for p, d in r.files.items():
                if p in r.missing:
                    continue
                oid = r.oid(p)
                data = d
                if p in r.corrupt:
                    data = bytearray(d)
                    data[len(data) // 2] ^= 0xFF
                    data = bytes(data)
                (blobs / oid).write_bytes(data)
                key = f"{r.repo_id}/{p}"
                maps_oid.append(f"    {_q(key)} {oid};")
                maps_size.append(f"    {_q(key)} {len(d)};")
                if is_lfs(p, d):
                    maps_lfs.append(f"    {_q(key)} 1;")
                    maps_cdn.append(f"    {oid} {r.commit};")
            revs = "|".join(list(r.refs) + [r.commit])
            rid = r.repo_id
            locs.append(f"""
    location ~ ^/{rid}/resolve/({revs})/(?<hf_path>.+)$ {{
        set $hf_key "{rid}/$hf_path";
        if ($hf_oid_v = "") {{
            add_header X-Error-Code EntryNotFound always;
            add_header X-Repo-Commit {r.commit} always;
            return 404;
        }}
        if ($hf_lfs_v) {{
            add_header X-Repo-Commit {r.commit} always;
            add_header X-Linked-Etag "\\"$hf_oid_v\\"" always;
            add_header X-Linked-Size $hf_size_v always;
            add_header ETag "\\"$hf_oid_v\\"" always;
            return 302 {self.url}/cdn/$hf_oid_v;
        }}
        add_header X-Repo-Commit {r.commit} always;
        add_header ETag "\\"$hf_oid_v\\"" always;
        {"max_ranges 0;" if self.no_range else ""}
        alias {blobs}/$hf_oid_v;
    }}""")
            info = json.dumps({"id": rid, "sha": r.commit, "siblings": [{"rfilename": p} for p in sorted(r.files)]})
            for rev in list(r.refs) + [r.commit]:
                if self.fail_revision == rid:
                    locs.append(f"    location = /api/models/{rid}/revision/{rev} {{ return 503; }}")
                else:
                    locs.append(f"    location = /api/models/{rid}/revision/{rev} {{ default_type application/json; "
                                f"add_header X-Repo-Commit {r.commit} always; return 200 {_q(info)}; }}")
            locs.append(f"    location ^~ /api/models/{rid}/revision/ {{ add_header X-Error-Code RevisionNotFound always; return 404; }}")
            ents = r.entries()
            tree = f"/api/models/{rid}/tree/{r.commit}"
            if r.page_size and len(ents) > r.page_size:
                pages = [ents[i:i + r.page_size] for i in range(0, len(ents), r.page_size)]
                body = [f"    location = {tree} {{", "        default_type application/json;"]
                for i, pg in enumerate(pages):
                    nxt = (f'add_header Link "<{self.url}{tree}?recursive=true&expand=false&cursor={i + 1}>; rel=\\"next\\"" always; '
                           if i + 1 < len(pages) else "add_header X-Last-Page 1 always; ")
                    if i == 0:
                        first = (nxt, pg)
                        continue
                    body.append(f"        if ($arg_cursor = {i}) {{ {nxt}return 200 {_q(json.dumps(pg))}; }}")
                body.append(f"        {first[0]}return 200 {_q(json.dumps(first[1]))};")
                body.append("    }")
                locs.append("\n".join(body))
            else:
                locs.append(f"    location = {tree} {{ default_type application/json; return 200 {_q(json.dumps(ents))}; }}")
        rate = f"limit_rate {self.limit_rate};" if self.limit_rate else ""
        if self.no_range:
            rate += " max_ranges 0;"
        t = self.root / "tmp"
        user = "user root;" if os.geteuid() == 0 else ""   # workers must read tmp_path (0700)
        conf = f"""
{user}
worker_processes 1;
daemon off;
pid {self.root}/nginx.pid;
error_log {self.root}/logs/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {self.root}/logs/access.log;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    etag off;
    gzip off;
    map_hash_bucket_size 256;
    map_hash_max_size 65536;
    map $hf_key $hf_oid_v {{
        default "";
{chr(10).join(maps_oid)}
    }}
    map $hf_key $hf_lfs_v {{
        default "";
{chr(10).join(maps_lfs)}
    }}
    map $hf_key $hf_size_v {{
        default "";
{chr(10).join(maps_size)}
    }}
    map $cdn_oid $cdn_commit {{
        default "";
{chr(10).join(maps_cdn)}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location ~ ^/cdn/(?<cdn_oid>[0-9a-f]+)$ {{
            add_header ETag "\\"$cdn_oid\\"" always;
            add_header X-Repo-Commit $cdn_commit always;
            {rate}
            alias {blobs}/$cdn_oid;
        }}
{chr(10).join(locs)}
        location / {{ add_header X-Error-Code RepoNotFound always; return 404; }}
    }}
}}
"""
        (self.root / "nginx.conf").write_text(conf)

    def start(self):
        self.write()
        self.proc = subprocess.Popen([NGINX, "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx failed: " + self.proc.stderr.read().decode())
                time.sleep(0.02)
        raise RuntimeError("nginx did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def requests(self):
        p = self.root / "logs" / "access.log"
        return p.read_text().splitlines() if p.exists() else []
