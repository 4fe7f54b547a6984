"""`silica fit`'s memory breakdown and speed ceiling as a reader sees them.

- The text breakdown adds up: the weights line is what becomes resident (the figure
  the total counts), and the mapped size is named beside it, not above the total.
- The speed line names the machine of every figure: this machine's, from the bandwidth
  `silica doctor --bandwidth` measured and kept (only on the machine that measured it),
  and published Apple Silicon bandwidths, labelled as such.
Oracles: fit's own --json byte counts (the breakdown must present them, not new numbers)
and doctor --json's measured bandwidth.
"""
import json
import re

import pytest

from conftest import assert_clean_error, run_silica

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_size(s):
    v, u = s.split()
    return float(v) * UNITS[u]


def breakdown(text):
    rows = {}
    for key in ("weights", "KV cache", "compute", "overhead", "total"):
        m = re.search(rf"^  {key}\s+([\d.]+ \w+)(.*)$", text, re.M)
        assert m, (key, text)
        rows[key] = (parse_size(m.group(1)), m.group(2))
    return rows


@pytest.mark.parametrize("ctx", ["4096", "131072"])
def test_breakdown_adds_up(tmp_path, ctx):
    env = {"SILICA_HOME": str(tmp_path)}
    j = run_silica("fit", "llama-3.1-8b", "--ctx", ctx, "--json", check=True, env=env).json()
    t = run_silica("fit", "llama-3.1-8b", "--ctx", ctx, check=True, env=env).out
    rows = breakdown(t)
    parts = ["weights", "KV cache", "compute", "overhead"]
    shown = sum(rows[k][0] for k in parts)
    assert shown == pytest.approx(rows["total"][0], rel=0.002), t
    assert rows["weights"][0] <= rows["total"][0], t
    assert rows["weights"][0] == pytest.approx(j["weights_resident_bytes"], rel=0.001)
    assert rows["total"][0] == pytest.approx(j["total_bytes"], rel=0.001)
    if j["weights_resident_bytes"] < j["weights_bytes"]:   # untied embedding: the mapped size is explained on the line
        mapped = re.search(r"\(([\d.]+ \w+) mapped", rows["weights"][1])
        assert mapped and parse_size(mapped.group(1)) == pytest.approx(j["weights_bytes"], rel=0.001), t
    assert "resident" not in t.split("  weights")[0]   # no extra line above the breakdown


def speed_block(text):
    lines = text.splitlines()
    i = next(k for k, l in enumerate(lines) if l.startswith("speed:"))
    out = [lines[i]]
    for l in lines[i + 1:]:
        if not l.startswith("          "):
            break
        out.append(l)
    return "\n".join(out)


def test_speed_names_machines_and_uses_doctor_bandwidth(tmp_path):
    env = {"SILICA_HOME": str(tmp_path)}
    j = run_silica("fit", "qwen3-0.6b", "--json", check=True, env=env).json()
    assert "tokens_per_s_ceiling" not in j and "bandwidth_gbps" not in j
    assert set(j["tokens_per_s_ceiling_apple"]) >= {"M1", "M4 Max"}
    s = speed_block(run_silica("fit", "qwen3-0.6b", check=True, env=env).out)
    assert "this machine: bandwidth not measured" in s and "silica doctor --bandwidth" in s
    assert "Apple Silicon, for comparison:" in s and "(M1 68 GB/s)" in s
    # measured once by doctor, kept, and used by fit on this machine
    d = run_silica("doctor", "--json", "--bandwidth", check=True, env=env).json()["memory"]["read_bandwidth_gbps"]
    assert (tmp_path / "bandwidth.json").exists()
    j = run_silica("fit", "qwen3-0.6b", "--json", check=True, env=env).json()
    assert j["bandwidth_source"] == "measured"
    assert j["bandwidth_gbps"] == pytest.approx(d, rel=1e-9)
    assert j["tokens_per_s_ceiling"] == pytest.approx(d * 1e9 / j["bytes_per_token"])
    s = speed_block(run_silica("fit", "qwen3-0.6b", check=True, env=env).out)
    assert re.search(rf"^speed:    this machine: at most {j['tokens_per_s_ceiling']:.1f} tok/s at {d:.1f} GB/s "
                     r"\(measured by `silica doctor --bandwidth` on \d{4}-\d\d-\d\d\)$", s, re.M), s
    # a Mac profile is another machine: only the published Apple figures
    s = speed_block(run_silica("fit", "qwen3-0.6b", "--profile", "16G", check=True, env=env).out)
    assert "this machine" not in s and s.startswith("speed:    Apple Silicon Macs: at most")
    # --bandwidth wins and says so
    j = run_silica("fit", "qwen3-0.6b", "--bandwidth", "400", "--json", check=True, env=env).json()
    assert (j["bandwidth_source"], j["bandwidth_gbps"]) == ("--bandwidth", 400)


def test_saved_bandwidth_of_another_machine_is_ignored(tmp_path):
    env = {"SILICA_HOME": str(tmp_path)}
    run_silica("doctor", "--bandwidth", check=True, env=env)
    saved = json.loads((tmp_path / "bandwidth.json").read_text())
    saved["cpu"] = "Some Other CPU"
    (tmp_path / "bandwidth.json").write_text(json.dumps(saved))
    assert "bandwidth_gbps" not in run_silica("fit", "qwen3-0.6b", "--json", check=True, env=env).json()
    (tmp_path / "bandwidth.json").write_text("{not json")
    assert "bandwidth_gbps" not in run_silica("fit", "qwen3-0.6b", "--json", check=True, env=env).json()


def test_bandwidth_measure_now(tmp_path):
    env = {"SILICA_HOME": str(tmp_path)}
    j = run_silica("fit", "qwen3-0.6b", "--bandwidth", "measure", "--json", check=True, env=env).json()
    assert j["bandwidth_source"] == "measured now" and j["bandwidth_gbps"] > 0.1
    assert json.loads((tmp_path / "bandwidth.json").read_text())["gbps"] == pytest.approx(j["bandwidth_gbps"])


def test_bandwidth_bad_value(tmp_path):
    assert_clean_error(run_silica("fit", "qwen3-0.6b", "--bandwidth", "fast"), "--bandwidth", "measure")
