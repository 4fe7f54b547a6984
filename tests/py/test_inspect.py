"""`silica inspect`, `silica doctor` and the CLI shell, checked against files
written by the real safetensors library and against this machine's /proc."""
import json
import os

import numpy as np
from safetensors.numpy import save_file

from conftest import assert_clean_error, run_silica

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               b"size 12345\n")


def test_help_and_version(silica):
    r = silica("--help")
    assert r.rc == 0 and "inspect" in r.out and "convert" in r.out
    for cmd in ("doctor", "inspect", "scan", "convert"):
        h = silica(cmd, "--help")
        assert h.rc == 0 and h.out.startswith(f"usage: silica {cmd}"), cmd
        assert silica("help", cmd).out == h.out
    v = silica("--version")
    assert v.rc == 0 and v.out.startswith("silica ")
    assert silica("frobnicate").rc == 2
    assert silica().rc == 2


def test_doctor_json_matches_machine(silica):
    d = silica("doctor", "--json", check=True).json()
    assert d["cpu"]["cores"] == os.cpu_count()
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    assert d["memory"]["total_bytes"] == total
    flags = open("/proc/cpuinfo").read()
    for ours, linux in (("avx2", "avx2"), ("f16c", "f16c"), ("avx512f", "avx512f"), ("fma", "fma")):
        assert (ours in d["cpu"]["features"]) == (f" {linux}" in flags), ours
    assert d["silica_version"]


def test_inspect_json_schema(silica, tmp_path):
    p = tmp_path / "m.safetensors"
    arrs = {"b": np.zeros((2, 3), np.float16), "a": np.ones(5, np.int32), "s": np.array(1.0, np.float64)}
    save_file(arrs, str(p), metadata={"format": "pt", "note": "x"})
    j = silica("inspect", p, "--json", check=True).json()
    assert j["format"] == "safetensors"
    assert j["metadata"] == {"format": "pt", "note": "x"}
    by = {t["name"]: t for t in j["tensors"]}
    assert by["b"] == {"name": "b", "dtype": "F16", "shape": [2, 3], "nbytes": 12, "file": "m.safetensors"}
    assert by["a"]["dtype"] == "I32" and by["a"]["shape"] == [5]
    assert by["s"]["shape"] == [] and by["s"]["nbytes"] == 8
    assert j["total_bytes"] == 12 + 20 + 8
    assert j["total_params"] == 6 + 5 + 1
    txt = silica("inspect", p, check=True).out
    assert "safetensors" in txt and "F16" in txt


def test_inspect_directory_with_index_and_config(silica, tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    save_file({"x": np.zeros(4, np.float32)}, str(d / "model-00001-of-00002.safetensors"))
    save_file({"y": np.zeros(2, np.float32)}, str(d / "model-00002-of-00002.safetensors"))
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 24}, "weight_map": {"x": "model-00001-of-00002.safetensors",
                                                        "y": "model-00002-of-00002.safetensors"}}))
    (d / "config.json").write_text(json.dumps({"model_type": "qwen3", "hidden_size": 8, "other": 1}))
    j = silica("inspect", d, "--json", check=True).json()
    assert {t["name"]: t["file"] for t in j["tensors"]} == {
        "x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}
    assert j["config"] == {"model_type": "qwen3", "hidden_size": 8}
    assert j["metadata"]["index"]["total_size"] == 24


def test_index_errors(silica, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    save_file({"x": np.zeros(4, np.float32)}, str(d / "a.safetensors"))
    idx = d / "model.safetensors.index.json"
    idx.write_text(json.dumps({"weight_map": {"x": "a.safetensors", "z": "a.safetensors"}}))
    assert_clean_error(silica("inspect", d), "'z'", "no shard")
    idx.write_text(json.dumps({"weight_map": {"x": "missing.safetensors"}}))
    assert_clean_error(silica("inspect", d), "missing.safetensors")
    idx.write_text(json.dumps({"weight_map": {"x": "../a.safetensors"}}))
    assert_clean_error(silica("inspect", d), "weight_map")
    idx.write_text("{not json")
    assert_clean_error(silica("inspect", d), "invalid JSON")
    idx.write_text(json.dumps({"metadata": {}}))
    assert_clean_error(silica("inspect", d), "weight_map")


def test_lfs_pointer_file_and_directory(silica, tmp_path):
    p = tmp_path / "model.safetensors"
    p.write_bytes(LFS_POINTER)
    assert_clean_error(silica("inspect", p), str(p), "Git LFS pointer", "git lfs pull")
    d = tmp_path / "repo"
    d.mkdir()
    (d / "model.safetensors").write_bytes(LFS_POINTER)
    (d / "config.json").write_text("{}")
    assert_clean_error(silica("inspect", d), "model.safetensors", "Git LFS pointer")
    out = tmp_path / "o.npz"
    assert_clean_error(silica("convert", p, out, "--to", "npz"), "Git LFS pointer")
    assert not out.exists()


def test_unreadable_inputs(silica, tmp_path):
    assert_clean_error(silica("inspect", tmp_path / "nope"), "nope", "no such file")
    e = tmp_path / "empty.bin"
    e.write_bytes(b"")
    assert_clean_error(silica("inspect", e), "empty.bin", "empty")
    u = tmp_path / "notes.txt"
    u.write_text("hello world, not a checkpoint")
    assert_clean_error(silica("inspect", u), "notes.txt", "unrecognised")
    d = tmp_path / "nothing"
    d.mkdir()
    assert_clean_error(silica("inspect", d), "no weights")
    c = tmp_path / "badcfg"
    c.mkdir()
    save_file({"x": np.zeros(1, np.float32)}, str(c / "model.safetensors"))
    (c / "config.json").write_text("[1, 2")
    assert_clean_error(silica("inspect", c), "config.json", "invalid JSON")
