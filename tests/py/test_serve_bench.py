"""bench/serve_bench.py, smoke-tested (not timed): it starts `silica serve` on
the demo model itself, also measures an already running server given by URL,
and its numbers are consistent with what was asked — every request
answered, --max-tokens tokens each (ignore_eos), the server's own
/metrics count of generated tokens agreeing, 0 < p50 <= p99 TTFT."""
import json
import subprocess
import sys

import httpx

from conftest import ROOT, SILICA
from test_serve import Server

BENCH = ROOT / "bench" / "serve_bench.py"


def test_serve_bench_smoke():
    s = Server(ROOT / "models" / "demo", "--parallel", "4", "--ctx", "256")
    try:
        r = subprocess.run([sys.executable, str(BENCH), "--silica", str(SILICA), "--silica-model",
                            str(ROOT / "models" / "demo"), "--url", f"running={s.url}", "--concurrency", "1,3",
                            "--requests", "5", "--max-tokens", "6", "--ctx", "256", "--parallel", "4", "--json"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        assert [t["name"] for t in rep["targets"]] == ["silica", "running"]
        for t in rep["targets"]:
            assert t["model"] == "demo"
            assert [x["concurrency"] for x in t["rounds"]] == [1, 3]
            for x in t["rounds"]:
                assert x["requests"] == 5 and x["errors"] == 0 and x["tokens"] == 5 * 6
                assert 0 < x["ttft_p50_s"] <= x["ttft_p99_s"] < x["wall_s"]
                assert abs(x["tok_s"] - x["tokens"] / x["wall_s"]) < 1e-6
        # the running server counted what the bench says it generated (+ its 4-token warm-up)
        gen = [ln for ln in httpx.get(s.url + "/metrics").text.splitlines()
               if ln.startswith("silica_generated_tokens_total ")]
        assert float(gen[0].split()[1]) == 2 * 5 * 6 + 4
        # the side-by-side table
        r = subprocess.run([sys.executable, str(BENCH), "--url", f"a={s.url}#demo", "--concurrency", "2",
                            "--requests", "2", "--max-tokens", "3"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        head, row = r.stdout.strip().splitlines()
        assert head.split()[:3] == ["clients", "a", "tok/s"] and row.split()[0] == "2"
    finally:
        rc, err = s.stop()
    assert rc == 0, err
    r = subprocess.run([sys.executable, str(BENCH), "--concurrency", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--concurrency" in r.stderr
