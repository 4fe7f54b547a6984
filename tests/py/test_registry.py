"""The local store: import/list/show/tag/rm/gc/verify/du, names, lineage,
atomic and locked writes, the first-use digest check, HF-cache visibility,
and list/show latency with 1,000 versions.  Files are checked against
hashlib and safetensors (the peers), not against silica's own reading."""
import hashlib
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from conftest import SILICA, assert_clean_error, run_on_a_tty, run_silica


@pytest.fixture
def env(tmp_path):
    return {"SILICA_HOME": str(tmp_path / "store"), "HF_HOME": str(tmp_path / "hf"), "SILICA_OFFLINE": "",
            "HF_HUB_OFFLINE": ""}


def make_model(d: Path, seed=0, dtype=np.float32, quant=None):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"lm_head.weight": rng.standard_normal((8, 4)).astype(dtype),
               "norm.weight": np.ones(4, dtype=dtype)}, str(d / "model.safetensors"))
    cfg = {"model_type": "llama", "hidden_size": 4, "torch_dtype": "float32", "vocab_size": 8}
    if quant:
        cfg["quantization"] = quant
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "tokenizer.json").write_text("{}")
    return d


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_import_list_show(tmp_path, env):
    m = make_model(tmp_path / "m")
    digests = {p.name: sha(p) for p in m.iterdir()}
    r = run_silica("import", m, "acme/tiny", env=env, check=True)
    assert "acme/tiny@" in r.out
    vs = run_silica("list", "--json", env=env, check=True).json()
    assert len(vs) == 1
    v = vs[0]
    assert v["name"] == "acme/tiny" and v["format"] == "hf" and v["quant"] == "f32" and v["params"] == 36
    assert v["size"] == sum(p.stat().st_size for p in m.iterdir())
    s = run_silica("show", "acme/tiny", "--json", env=env, check=True).json()
    assert {f["path"]: f["sha256"] for f in s["files"]} == digests
    assert s["config"]["model_type"] == "llama"
    assert s["lineage"][0]["kind"] == "import"
    # the snapshot is symlinks into read-only blobs
    for f in s["files"]:
        p = Path(s["path"]) / f["path"]
        assert p.is_symlink() and not os.readlink(p).startswith("/")
        assert sha(p) == f["sha256"]
    t = run_silica("list", env=env, check=True).out.splitlines()
    assert t[0].split() == ["NAME", "REVISION", "FORMAT", "QUANT", "SIZE", "MODIFIED"]
    assert t[1].startswith("acme/tiny") and v["revision"][:12] in t[1]
    # same content again: same version (content revision), not a duplicate
    run_silica("import", m, "acme/tiny", env=env, check=True)
    assert len(run_silica("list", "--json", env=env, check=True).json()) == 1


def test_names_revisions_tags(tmp_path, env):
    a = make_model(tmp_path / "a", seed=1)
    b = make_model(tmp_path / "b", seed=2, quant={"bits": 4, "group_size": 64})
    run_silica("import", a, "acme/tiny", env=env, check=True)
    time.sleep(0.01)
    run_silica("import", b, "acme/tiny:q4", env=env, check=True)
    vs = run_silica("list", "--json", env=env, check=True).json()
    ra, rb = vs[1]["revision"], vs[0]["revision"]
    assert vs[0]["tags"] == ["q4"] and vs[0]["format"] == "mlx" and vs[0]["quant"] == "4bit-g64"
    assert run_silica("show", "acme/tiny", "--json", env=env, check=True).json()["revision"] == rb  # newest
    assert run_silica("show", f"acme/tiny@{ra[:8]}", "--json", env=env, check=True).json()["revision"] == ra
    assert run_silica("show", "acme/tiny:q4", "--json", env=env, check=True).json()["revision"] == rb
    run_silica("tag", f"acme/tiny@{ra}", "acme/tiny:stable", env=env, check=True)
    assert run_silica("show", "acme/tiny:stable", "--json", env=env, check=True).json()["revision"] == ra
    run_silica("tag", "acme/tiny:q4", "me/copy:v1", env=env, check=True)
    c = run_silica("show", "me/copy:v1", "--json", env=env, check=True).json()
    assert c["revision"] == rb and [l["kind"] for l in c["lineage"]] == ["tag", "import"]
    assert c["lineage"][0]["parent"] == f"acme/tiny@{rb}"
    # tag shares blobs: no new blob files
    blobs = list((Path(env["SILICA_HOME"]) / "blobs").glob("*/*"))
    assert len(blobs) == len({f for d in (a, b) for f in map(sha, d.iterdir())})
    for bad in ["acme", "acme/", "/x", "acme/../x", "a/b/c", "acme/tiny@", "acme/tiny:", "acme/ti ny", "-a/b"]:
        assert_clean_error(run_silica("show", bad, env=env), bad)
    assert_clean_error(run_silica("show", "acme/nope", env=env), "acme/nope", "not in the store")
    assert_clean_error(run_silica("show", "acme/tiny:nope", env=env), "acme/tiny:nope")
    assert_clean_error(run_silica("tag", "acme/tiny", "acme/tiny", env=env), "add a :tag")


def test_rm_keeps_shared_blobs_and_gc(tmp_path, env):
    a = make_model(tmp_path / "a", seed=1)
    b = make_model(tmp_path / "b", seed=2)     # shares config.json and tokenizer.json with a
    run_silica("import", a, "acme/a", env=env, check=True)
    run_silica("import", b, "acme/b", env=env, check=True)
    blobs = Path(env["SILICA_HOME"]) / "blobs"
    assert len(list(blobs.glob("*/*"))) == 4
    r = run_silica("rm", "acme/a", env=env, check=True)
    assert "1 blobs" in r.out
    assert len(list(blobs.glob("*/*"))) == 3
    assert run_silica("verify", env=env).rc == 0
    assert_clean_error(run_silica("rm", "acme/a", env=env), "acme/a")
    # an orphan blob, a stale temporary and an orphan snapshot are collected by gc
    (blobs / "ab").mkdir(exist_ok=True)
    orphan = blobs / "ab" / ("ab" + "0" * 62)
    orphan.write_bytes(b"orphan")
    (Path(env["SILICA_HOME"]) / "tmp" / "import-1-x").write_bytes(b"junk")
    (Path(env["SILICA_HOME"]) / "snapshots" / "acme" / "zzz" / ("f" * 40)).mkdir(parents=True)
    r = run_silica("gc", env=env, check=True)
    assert "removed 1 blobs" in r.out and not orphan.exists()
    assert not (Path(env["SILICA_HOME"]) / "snapshots" / "acme" / "zzz").exists()
    du = run_silica("du", "--json", env=env, check=True).json()
    assert du["versions"] == 1 and du["blobs"] == 3 and du["tmp"] == 0
    run_silica("rm", "acme/b", env=env, check=True)
    assert list(blobs.glob("*/*")) == []
    assert run_silica("list", "--json", env=env, check=True).json() == []


def test_verify_quarantines_and_first_use_check(tmp_path, env):
    m = make_model(tmp_path / "m")
    run_silica("import", m, "acme/tiny", env=env, check=True)
    assert run_silica("inspect", "acme/tiny", "--json", env=env, check=True).json()["format"] == "safetensors"
    s = run_silica("show", "acme/tiny", "--json", env=env, check=True).json()
    f = next(x for x in s["files"] if x["path"] == "model.safetensors")
    blob = Path(env["SILICA_HOME"]) / "blobs" / f["sha256"][:2] / f["sha256"]
    time.sleep(1.1)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1                                   # same size, different bytes
    blob.write_bytes(bytes(data))
    # first use after the change: the digest check refuses it
    assert_clean_error(run_silica("inspect", "acme/tiny", env=env), "acme/tiny", "model.safetensors", "corrupt")
    r = run_silica("verify", env=env)
    assert r.rc == 1 and "model.safetensors" in r.out and "corrupt" in r.out
    assert (Path(env["SILICA_HOME"]) / "quarantine" / f["sha256"]).exists() and not blob.exists()
    r = run_silica("verify", "acme/tiny", env=env)
    assert r.rc == 1 and "missing" in r.out
    # re-importing the good file repairs the store
    (tmp_path / "m2").mkdir()
    save_file({"lm_head.weight": np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32),
               "norm.weight": np.ones(4, dtype=np.float32)}, str(tmp_path / "m2" / "model.safetensors"))
    assert sha(tmp_path / "m2" / "model.safetensors") == f["sha256"]
    run_silica("import", tmp_path / "m2", "acme/fix", env=env, check=True)
    assert run_silica("verify", env=env).rc == 0
    assert run_silica("du", "--json", env=env, check=True).json()["quarantined"] == 1


def stat_of(p):
    st = os.stat(p)
    return (st.st_mode, st.st_mtime_ns, st.st_nlink, st.st_ino, sha(p))


def test_import_copies_and_never_touches_user_files(tmp_path, env):
    m = make_model(tmp_path / "m")
    (m / "sub").mkdir()
    (m / "sub" / "extra.txt").write_text("hello")
    os.chmod(m / "config.json", 0o640)
    before = {p: stat_of(p) for p in m.rglob("*") if p.is_file()}
    v = run_silica("import", m, "acme/tiny", "--json", env=env, check=True).json()
    assert v["name"] == "acme/tiny" and len(v["files"]) == 4 and v["revision"]
    assert {f["path"] for f in v["files"]} == {"model.safetensors", "config.json", "tokenizer.json", "sub/extra.txt"}
    # content, mode, mtime, link count and inode of the user's files are as they were
    assert {p: stat_of(p) for p in before} == before
    blobs = Path(env["SILICA_HOME"]) / "blobs"
    inodes = {os.stat(b).st_ino for b in blobs.glob("*/*")}
    assert not inodes & {s[3] for s in before.values()}         # copies, not links
    # editing an imported file in place cannot corrupt the store
    w = m / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    with open(w, "r+b") as f:                                    # in place: same inode
        f.write(bytes(data))
    assert run_silica("verify", env=env).rc == 0
    assert run_silica("inspect", "acme/tiny", "--json", env=env, check=True).json()["format"] == "safetensors"
    # rm leaves the user's files as they are (writable)
    run_silica("rm", "acme/tiny", env=env, check=True)
    assert os.stat(m / "config.json").st_mode & 0o777 == 0o640
    assert os.access(m / "tokenizer.json", os.W_OK)
    # a one-file import is a copy too
    single = tmp_path / "one.safetensors"
    single.write_bytes((m / "model.safetensors").read_bytes())
    st0 = stat_of(single)
    run_silica("import", single, "acme/one", env=env, check=True)
    assert stat_of(single) == st0


def test_convert_of_a_store_name_is_a_model_of_its_own(tmp_path, env, engine_models):
    src = engine_models / "llama" / "f32-st"
    run_silica("import", src, "acme/tiny", env=env, check=True)
    base = run_silica("show", "acme/tiny", "--json", env=env, check=True).json()
    out = tmp_path / "q4"
    r = run_silica("convert", "acme/tiny", out, "--to", "mlx", "-q", env=env, check=True)
    assert "stored as acme/tiny-mlx-4bit@" in r.out
    # the source name still designates the source: run/inspect acme/tiny get the f32 model
    again = run_silica("show", "acme/tiny", "--json", env=env, check=True).json()
    assert again["revision"] == base["revision"] and again["quant"] == "f32"
    assert len([v for v in run_silica("list", "--json", env=env, check=True).json() if v["name"] == "acme/tiny"]) == 1
    q = run_silica("show", "acme/tiny-mlx-4bit", "--json", env=env, check=True).json()
    assert q["format"] == "mlx" and q["quant"] == "4bit-g64"
    assert {f["path"]: f["sha256"] for f in q["files"]} == {str(p.relative_to(out)): sha(p)
                                                            for p in out.rglob("*") if p.is_file()}
    lin = q["lineage"]
    assert lin[0]["kind"] == "derived" and lin[0]["parent"] == f"acme/tiny@{base['revision']}"
    assert lin[0]["command"] == f"silica convert acme/tiny {out} --to mlx -q"
    assert lin[1]["kind"] == "import"
    assert "by: silica convert" in run_silica("show", "acme/tiny-mlx-4bit", env=env, check=True).out
    # the naming convention of mlx-community and GGUF repos; --name overrides it
    names = {("--to", "mlx", "-q", "--q-bits", "8"): "acme/tiny-mlx-8bit",
             ("--to", "mlx", "-q", "--q-mode", "mxfp4", "--q-group-size", "32"): "acme/tiny-mlx-mxfp4",
             ("--to", "mlx"): "acme/tiny-mlx",
             ("--to", "gguf", "--q-type", "Q8_0"): "acme/tiny-Q8_0",
             ("--to", "gguf"): "acme/tiny-GGUF",
             ("--to", "torch"): "acme/tiny-torch",
             ("--to", "mlx", "-q", "--name", "me/custom:v1"): "me/custom"}
    for i, (args, name) in enumerate(names.items()):
        r = run_silica("convert", "acme/tiny", tmp_path / f"o{i}", *args, "--json", env=env, check=True).json()
        assert r["stored_as"].startswith(name + "@"), (args, r)
        v = run_silica("show", name, "--json", env=env, check=True).json()
        assert v["lineage"][0]["parent"] == f"acme/tiny@{base['revision']}"
    assert run_silica("show", "me/custom:v1", "--json", env=env, check=True).json()["quant"] == "4bit-g64"
    # quantize of a store name: the same convention
    run_silica("quantize", "acme/tiny", tmp_path / "qq", "--q-bits", "8", env=env, check=True)
    assert run_silica("show", "acme/tiny-mlx-8bit", "--json", env=env, check=True).json()["quant"] == "8bit-g64"
    assert_clean_error(run_silica("convert", "acme/tiny", tmp_path / "x", "--to", "mlx", "--name", "bad", env=env),
                       "--name", "bad")
    assert not (tmp_path / "x").exists()


def test_convert_into_a_store_name(tmp_path, env, engine_models, monkeypatch):
    src = engine_models / "llama" / "f32-st"
    run_silica("import", src, "acme/tiny", env=env, check=True)
    base = run_silica("show", "acme/tiny", "--json", env=env, check=True).json()
    monkeypatch.chdir(tmp_path)                    # no ./acme or ./me here: DST is a store name
    r = run_silica("convert", "acme/tiny", "acme/new", "--to", "mlx", "-q", env=env, check=True)
    assert r.out.startswith("wrote acme/new@")
    assert not (tmp_path / "acme").exists()
    v = run_silica("show", "acme/new", "--json", env=env, check=True).json()
    assert v["quant"] == "4bit-g64" and v["lineage"][0]["parent"] == f"acme/tiny@{base['revision']}"
    assert v["lineage"][0]["command"] == "silica convert acme/tiny acme/new --to mlx -q"
    # the same bytes a conversion to a path writes
    run_silica("convert", "acme/tiny", tmp_path / "ref", "--to", "mlx", "-q", "--name", "acme/ref", env=env, check=True)
    ref = tmp_path / "ref"
    assert {f["path"]: f["sha256"] for f in v["files"]} == {str(p.relative_to(ref)): sha(p)
                                                            for p in ref.rglob("*") if p.is_file()}
    # a path source and a one-file output (GGUF) into a tagged store name
    r = run_silica("convert", src, "me/g:q8", "--to", "gguf", "--q-type", "Q8_0", "--json", env=env, check=True).json()
    g = run_silica("show", "me/g:q8", "--json", env=env, check=True).json()
    assert [f["path"] for f in g["files"]] == ["g.gguf"] and g["format"] == "gguf"
    assert r["stored_as"] == f"me/g@{g['revision']}" and g["lineage"][0]["parent"] == str(src)
    import gguf
    rd = gguf.GGUFReader(str(Path(g["path"]) / "g.gguf"))
    assert {t.tensor_type.name for t in rd.tensors if t.name.endswith("attn_q.weight")} == {"Q8_0"}
    # nothing left behind in the store's scratch space; gc keeps the store sound
    assert list((Path(env["SILICA_HOME"]) / "tmp").iterdir()) == []
    run_silica("gc", env=env, check=True)
    assert run_silica("verify", env=env).rc == 0
    # an existing ./org directory makes DST a path, and ./org/name always is one
    (tmp_path / "out").mkdir()
    run_silica("convert", "acme/tiny", "out/model", "--to", "mlx", env=env, check=True)
    assert (tmp_path / "out" / "model" / "config.json").exists()
    assert_clean_error(run_silica("convert", "acme/tiny", "acme/x@abcd", "--to", "mlx", env=env), "acme/x@abcd")
    assert_clean_error(run_silica("convert", "acme/tiny", "acme/y", "--to", "mlx", "--name", "a/b", env=env),
                       "--name", "acme/y")
    # a failed conversion registers nothing and leaves no scratch behind
    assert_clean_error(run_silica("convert", "acme/tiny", "acme/bad", "--to", "mlx", "-q", "--q-group-size", "4096",
                                  env=env))
    assert_clean_error(run_silica("show", "acme/bad", env=env), "acme/bad")
    assert list((Path(env["SILICA_HOME"]) / "tmp").iterdir()) == []


def test_rm_names_revisions_and_all(tmp_path, env):
    revs = []
    for i in range(3):
        run_silica("import", make_model(tmp_path / f"m{i}", seed=i), "acme/tiny" + (":old" if i == 0 else ""),
                   env=env, check=True)
        revs.append(run_silica("show", "acme/tiny", "--json", env=env, check=True).json()["revision"])
        time.sleep(0.01)
    r = run_silica("rm", "acme/tiny", env=env, check=True)
    assert f"removed acme/tiny@{revs[2][:12]}" in r.out
    assert "2 other versions of acme/tiny remain" in r.out and "rm --all acme/tiny" in r.out
    r = run_silica("rm", "acme/tiny:old", "--json", env=env, check=True).json()
    assert r["removed"] == [{"name": "acme/tiny", "revision": revs[0]}] and r["remaining"] == 1
    assert r["blobs_freed"] == 1 and r["bytes_freed"] == (tmp_path / "m0" / "model.safetensors").stat().st_size
    run_silica("import", tmp_path / "m0", "acme/tiny", env=env, check=True)
    r = run_silica("rm", "--all", "acme/tiny", env=env, check=True)
    assert f"removed acme/tiny@{revs[0][:12]}" in r.out and f"removed acme/tiny@{revs[1][:12]}" in r.out
    assert "no version of acme/tiny is left" in r.out
    assert run_silica("list", "--json", env=env, check=True).json() == []
    assert list((Path(env["SILICA_HOME"]) / "blobs").glob("*/*")) == []
    assert_clean_error(run_silica("rm", "--all", "acme/tiny@abcd", env=env), "--all")
    assert_clean_error(run_silica("rm", "--all", "acme/tiny", env=env), "acme/tiny", "not in the store")


def test_verify_repair_gc_and_json(tmp_path, env):
    m = make_model(tmp_path / "m")
    run_silica("import", m, "acme/tiny", env=env, check=True)
    s = run_silica("show", "acme/tiny", "--json", env=env, check=True).json()
    f = next(x for x in s["files"] if x["path"] == "model.safetensors")
    blob = Path(env["SILICA_HOME"]) / "blobs" / f["sha256"][:2] / f["sha256"]
    good = blob.read_bytes()

    def damage():
        os.chmod(blob, 0o644)
        blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))

    damage()
    r = run_silica("verify", "--json", env=env)
    assert r.rc == 1
    j = r.json()
    assert j["ok"] is False and j["problems"] == 1 and j["repaired"] == 0
    assert j["files"] == [{"version": f"acme/tiny@{s['revision']}", "path": "model.safetensors",
                           "sha256": f["sha256"], "problem": "corrupt (sha256 mismatch)", "quarantined": True,
                           "repaired": False}]
    # --repair: from the directory it was imported from (unchanged: its hash is checked)
    r = run_silica("verify", "--repair", env=env)
    assert r.rc == 0 and "restored from " + str(m / "model.safetensors") in r.out and "1 repaired" in r.out
    assert blob.read_bytes() == good and oct(blob.stat().st_mode & 0o777) == "0o444"
    assert run_silica("verify", "--json", env=env, check=True).json() == {"ok": True, "problems": 0, "repaired": 0,
                                                                          "files": []}
    # gc clears the quarantine and says what it freed
    g = run_silica("gc", "--json", env=env, check=True).json()
    assert g["quarantined"] == 1 and g["quarantined_bytes"] == len(good) and g["freed_bytes"] >= len(good)
    assert list((Path(env["SILICA_HOME"]) / "quarantine").iterdir()) == []
    assert "0 quarantined blobs" in run_silica("gc", env=env, check=True).out
    # the source changed since: nothing is restored from it, and verify says why
    damage()
    (m / "model.safetensors").write_bytes(b"different" * 10)
    r = run_silica("verify", "--repair", "--json", env=env)
    assert r.rc == 1
    e = r.json()["files"][0]
    assert e["repaired"] is False and "changed since it was stored" in e["not_repaired"]
    assert str(m / "model.safetensors") in e["not_repaired"]
    r = run_silica("verify", "--repair", "acme/tiny", env=env)
    assert r.rc == 1 and "missing" in r.out and "not repaired" in r.out and "problems left" in r.out
    # the original bytes back at the source: repaired
    (m / "model.safetensors").write_bytes(good)
    assert run_silica("verify", "--repair", "acme/tiny", env=env).rc == 0
    assert blob.read_bytes() == good
    # tag --json prints the version the new name designates
    t = run_silica("tag", "acme/tiny", "acme/tiny:stable", "--json", env=env, check=True).json()
    assert t["name"] == "acme/tiny" and t["revision"] == s["revision"] and t["tags"] == ["stable"]


def test_import_and_verify_progress_on_a_tty(tmp_path, env):
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text("{}")
    (m / "model.safetensors").write_bytes(os.urandom(48 << 20))     # 48 MiB: several redraws
    rc, text = run_on_a_tty(["import", m, "acme/big"], env)
    assert rc == 0, text
    lines = [l for l in text.replace("\r", "\n").split("\n") if l.startswith("import ")]
    assert lines and "100%" in lines[-1] and "48.00 MiB/48.00 MiB" in lines[-1] and "/s" in lines[-1], text
    assert "acme/big@" in text
    rc, text = run_on_a_tty(["verify"], env)
    assert rc == 0, text
    lines = [l for l in text.replace("\r", "\n").split("\n") if l.startswith("verify ")]
    assert lines and "100%" in lines[-1] and "48.00 MiB/48.00 MiB" in lines[-1] and "/s" in lines[-1], text
    assert text.rstrip().endswith("verify: ok")
    # without a terminal: no progress at all
    run_silica("rm", "acme/big", env=env, check=True)
    for args in (["import", m, "acme/big"], ["verify"]):
        r = run_silica(*args, env=env, check=True)
        assert r.err == "" and "\x1b" not in r.out and "\r" not in r.out


def test_hf_cache_models_are_visible(tmp_path, env):
    cache = Path(env["HF_HOME"]) / "hub" / "models--mlx-community--tiny-4bit"
    commit = "c" * 40
    snap = cache / "snapshots" / commit
    m = make_model(tmp_path / "m", quant={"bits": 4, "group_size": 32})
    (cache / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for p in m.iterdir():
        (cache / "blobs" / sha(p)).write_bytes(p.read_bytes())
        (snap / p.name).symlink_to("../../blobs/" + sha(p))
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(commit)
    vs = run_silica("list", "--json", env=env, check=True).json()
    assert [(v["name"], v["revision"], v["source"], v["format"]) for v in vs] == \
        [("mlx-community/tiny-4bit", commit, "hf-cache", "mlx")]
    assert "mlx-community/tiny-4bit (hf)" in run_silica("list", env=env, check=True).out
    r = run_silica("inspect", "mlx-community/tiny-4bit", "--json", env=env, check=True).json()
    assert r["path"] == str(snap)
    s = run_silica("show", "mlx-community/tiny-4bit", "--json", env=env, check=True).json()
    assert s["source"] == "hf-cache" and len(s["files"]) == 3
    # HF_HUB_CACHE wins over HF_HOME
    r = run_silica("list", "--json", env={**env, "HF_HUB_CACHE": str(tmp_path / "empty")}, check=True)
    assert r.json() == []


def test_concurrent_imports_and_gc_stay_consistent(tmp_path, env):
    ms = [make_model(tmp_path / f"m{i}", seed=i) for i in range(6)]
    procs = [subprocess.Popen([str(SILICA), "import", m, "acme/many"], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for m in ms]
    procs += [subprocess.Popen([str(SILICA), "gc"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    procs += [subprocess.Popen([str(SILICA), "import", ms[0], "acme/many"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    vs = run_silica("list", "--json", env=env, check=True).json()
    assert len(vs) == 6
    assert run_silica("verify", env=env).rc == 0


def test_list_and_show_with_1000_versions(tmp_path, env):
    m = make_model(tmp_path / "m")
    run_silica("import", m, "acme/base", env=env, check=True)
    db = sqlite3.connect(Path(env["SILICA_HOME"]) / "index.db")
    (vid,) = db.execute("SELECT id FROM versions").fetchone()
    files = db.execute("SELECT path,size,sha256 FROM files WHERE version_id=?", (vid,)).fetchall()
    with db:
        for i in range(999):
            db.execute("INSERT OR IGNORE INTO models(name) VALUES(?)", (f"org{i % 50}/model{i % 20}",))
            (mid,) = db.execute("SELECT id FROM models WHERE name=?", (f"org{i % 50}/model{i % 20}",)).fetchone()
            cur = db.execute("INSERT INTO versions(model_id,revision,format,quant,params,size,created) "
                             "VALUES(?,?,?,?,?,?,?)", (mid, hashlib.sha1(str(i).encode()).hexdigest(), "hf", "bf16",
                                                       36, 300, time.time() - i))
            for f in files:
                db.execute("INSERT INTO files VALUES(?,?,?,?)", (cur.lastrowid, *f))
    db.close()
    best = {}
    for cmd in (["list", "--json"], ["show", "org7/model7", "--json"], ["list"]):
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = run_silica(*cmd, env=env, check=True)
            ts.append(time.perf_counter() - t0)
        best[cmd[0] + " ".join(cmd[1:])] = min(ts)
    assert len(run_silica("list", "--json", env=env, check=True).json()) == 1000
    print("latency with 1000 versions (process start included):", best)
    limit = 0.5 if "asan" in run_silica("doctor", env=env).out.lower() else 0.05
    assert max(best.values()) < limit, best


def test_bad_store_inputs(tmp_path, env):
    assert_clean_error(run_silica("import", tmp_path / "none", "acme/x", env=env), "none")
    (tmp_path / "empty").mkdir()
    assert_clean_error(run_silica("import", tmp_path / "empty", "acme/x", env=env), "no files")
    assert_clean_error(run_silica("list", "--bogus", env=env), "--bogus")
    assert_clean_error(run_silica("show", env=env), "missing NAME")
    # a store directory that cannot be created
    (tmp_path / "file").write_text("x")
    assert_clean_error(run_silica("list", env={**env, "SILICA_HOME": str(tmp_path / "file" / "s")}), "file")
    # a corrupt index is reported, not crashed on
    home = tmp_path / "bad"
    home.mkdir()
    (home / "index.db").write_bytes(b"not a database" * 100)
    assert_clean_error(run_silica("list", env={**env, "SILICA_HOME": str(home)}), "index.db")


def test_part7_example_program(tmp_path, env):
    exe = Path(os.environ.get("SILICA_EXAMPLES", SILICA.parent / "examples")) / "part7" / "model_registry"
    assert exe.exists(), f"{exe} not built"
    m = make_model(tmp_path / "m")
    p = subprocess.run([str(exe), str(m), "acme/tiny"], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "imported acme/tiny@" in p.stdout
    assert "verify: 0 problems" in p.stdout and "lineage of acme/tiny-copy: tag" in p.stdout
    names = sorted(v["name"] for v in run_silica("list", "--json", env=env, check=True).json())
    assert names == ["acme/tiny", "acme/tiny-copy"]
