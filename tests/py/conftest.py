"""Shared pytest fixtures for silica's CLI and interop tests.

The oracle of every test here is a real peer (numpy, safetensors, gguf, mlx,
torch-made fixtures); silica's own output is what is under test.
Environment: SILICA_BIN (default build/silica).  Third-party test data (real tokenizers
and chat templates) lives in tests/data (see its README for origins and licences).
"""
import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SILICA = Path(os.environ.get("SILICA_BIN", ROOT / "build" / "silica"))
FIXTURES = ROOT / "tests" / "fixtures"
DATA = ROOT / "tests" / "data"
TOKENIZERS = DATA / "tokenizers"   # NAME/tokenizer.json.gz + tokenizer_config.json.gz
TEMPLATES = DATA / "templates"     # *.jinja


def tokenizer_names():
    """The committed real tokenizers (llama3, qwen3, mistral, gemma3, ...)."""
    return sorted(p.name for p in TOKENIZERS.iterdir() if (p / "tokenizer.json.gz").exists())


def tokenizer_json(name):
    """The parsed tokenizer.json of a committed tokenizer."""
    with gzip.open(TOKENIZERS / name / "tokenizer.json.gz", "rb") as f:
        return json.load(f)


def tokenizer_config(name):
    """The parsed tokenizer_config.json of a committed tokenizer ({} if it has none)."""
    p = TOKENIZERS / name / "tokenizer_config.json.gz"
    if not p.exists():
        return {}
    with gzip.open(p, "rb") as f:
        return json.load(f)


def write_tokenizer_files(name, d):
    """Decompress tokenizer NAME's tokenizer.json (+ tokenizer_config.json) into folder d."""
    d = Path(d)
    for base in ("tokenizer.json", "tokenizer_config.json"):
        src = TOKENIZERS / name / (base + ".gz")
        if src.exists():
            with gzip.open(src, "rb") as f, open(d / base, "wb") as o:
                shutil.copyfileobj(f, o)
    return d


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)


def run_silica(*args, check=False, input=None, timeout=120, env=None):
    """Run the silica binary; returns Result(rc, out, err) with text output."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([str(SILICA), *map(str, args)], capture_output=True, text=True,
                       input=input, timeout=timeout, env=e)
    r = Result(p)
    if check and r.rc != 0:
        raise AssertionError(f"silica {' '.join(map(str, args))} exited {r.rc}: {r.err}")
    return r


def run_on_a_tty(args, env=None, timeout=120):
    """Run silica with stdout and stderr on a pseudo-terminal (progress bars draw only
    there); returns (exit status, text seen)."""
    import pty
    import select
    import time
    master, slave = pty.openpty()
    p = subprocess.Popen([str(SILICA), *map(str, args)], env={**os.environ, **(env or {})},
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    t0 = time.time()
    while time.time() - t0 < timeout:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:       # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    p.wait(timeout=10)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def assert_clean_error(r, *needles):
    """A bad-input failure: exit 2, exactly one line on stderr, naming each needle."""
    assert r.rc == 2, f"expected exit 2, got {r.rc}; stderr={r.err!r}"
    lines = [l for l in r.err.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    for n in needles:
        assert str(n) in lines[0], f"{n!r} not in {lines[0]!r}"


@pytest.fixture
def silica():
    assert SILICA.exists(), f"silica binary not built at {SILICA}"
    return run_silica


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "badinput: malformed-input test (exit 2, one stderr line); "
        "scripts/test.sh also runs these against the ASan+UBSan binary")


def pytest_collection_modifyitems(config, items):
    """Tests whose body calls assert_clean_error are bad-input tests: mark them
    `badinput` so `pytest -m badinput` reruns exactly those (e.g. with
    SILICA_BIN=build-asan/silica).  An explicit @pytest.mark.badinput works too."""
    import inspect
    for item in items:
        fn = getattr(item, "function", None)
        try:
            src = inspect.getsource(fn) if fn is not None else ""
        except (OSError, TypeError):
            src = ""
        if "assert_clean_error" in src:
            item.add_marker(pytest.mark.badinput)


@pytest.fixture
def hub(tmp_path):
    """hub([Repo, ...], **kw) starts a loopback HF-protocol hub (Debian's nginx,
    tests/py/hub_fixture.py) serving those repos; all are stopped at teardown."""
    from hub_fixture import Hub
    started = []

    def start(repos, **kw):
        h = Hub(tmp_path / f"hub{len(started)}", repos, **kw).start()
        started.append(h)
        return h
    yield start
    for h in started:
        h.stop()


@pytest.fixture(scope="session")
def engine_models(tmp_path_factory):
    """tests/fixtures/models/engine_models.tar.xz (tiny models made by real transformers,
    tools/make_reference_models.py), extracted once per session."""
    import tarfile
    d = tmp_path_factory.mktemp("engine")
    with tarfile.open(FIXTURES / "models" / "engine_models.tar.xz") as t:
        t.extractall(d, filter="data")
    return d
