"""`silica bench`: the llama-bench-like speed report.  Its figures are timings
(not checked here); what is checked is that every (threads, depth, test) is
measured with the requested token counts, that the statistics are coherent,
that the kernel set is the one `silica doctor` reports, and bad input."""
import pytest

from conftest import ROOT, assert_clean_error, run_silica

DEMO = ROOT / "models" / "demo"


def test_bench_json_covers_every_case():
    r = run_silica("bench", DEMO, "-p", "16", "-n", "4", "-t", "1,2", "-d", "0,8", "-r", "2", "--json",
                   "--no-bandwidth", check=True)
    j = r.json()
    doctor = run_silica("doctor", "--json", check=True).json()
    assert j["kernels"] == doctor["cpu"]["engine_kernels"]
    assert j["model"] == "demo" and j["weight_bytes"] > 0 and j["repetitions"] == 2
    assert 0 < j["peak_rss_bytes"] < 1 << 30
    assert "read_bandwidth_gbps" not in j
    got = [(x["threads"], x["n_depth"], x["test"]) for x in j["results"]]
    assert got == [(1, 0, "pp16"), (1, 0, "tg4"), (1, 8, "pp16 @ d8"), (1, 8, "tg4 @ d8"),
                   (2, 0, "pp16"), (2, 0, "tg4"), (2, 8, "pp16 @ d8"), (2, 8, "tg4 @ d8")]
    for x in j["results"]:
        assert 0 < x["min_ts"] <= x["avg_ts"] <= x["max_ts"]
        assert x["stddev_ts"] >= 0
        assert (x["n_prompt"], x["n_gen"]) == ((16, 0) if x["test"].startswith("pp") else (0, 4))


def test_bench_markdown_with_roofline():
    r = run_silica("bench", DEMO, "-p", "8", "-n", "2", "-t", "1", "-r", "1", "--md", check=True)
    lines = r.out.splitlines()
    assert lines[0].startswith("| model | size | kernels | threads | test | t/s |")
    assert any("| pp8 |" in l for l in lines) and any("| tg2 |" in l and "%" in l for l in lines)
    assert "read bandwidth" in r.out and "peak RSS" in r.out


@pytest.mark.badinput
@pytest.mark.parametrize("args,needle", [(["-t", "2,x"], "-t"), (["-t", "0"], "-t"), (["-p", "-3"], "-p"),
                                         (["-r", "0"], "-r"), (["-p", "0", "-n", "0"], "nothing to measure"),
                                         (["--frobnicate"], "--frobnicate"), (["-d"], "-d")])
def test_bench_bad_options(args, needle):
    assert_clean_error(run_silica("bench", DEMO, *args), needle)


@pytest.mark.badinput
def test_bench_missing_model(tmp_path):
    assert_clean_error(run_silica("bench", tmp_path / "nope", "-p", "4", "-n", "0"), "nope")
