"""The repository stands alone: nothing in it reads or cites material outside it.

A fresh clone plus the README's two commands must build, demo and pass every
test.  CI clones next to a development-only reference folder, so a test that
quietly read that folder would pass in CI and fail for every user; this check
fails instead.  It also keeps citations public: code and docs cite upstream
files or docs/ in this repository, never private notes or tracker numbers.
"""
import re
import subprocess

from conftest import DATA, ROOT, TEMPLATES, TOKENIZERS

# Built from pieces so this file does not match itself.
OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared",                       # a sibling folder of the clone
    r"/work/" + "shared",
    "SILICA_" + "SHARED",
    r"\bshared/(?:specs|tokenizers|templates|hooks)\b",
]))
PRIVATE_CITES = re.compile("|".join([
    r"\bissues? #?[0-9]+\b",                   # the project's tracker is not public
    r"\bthe " + "brief\\b",
]), re.IGNORECASE)


def tracked_text_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in out.decode().split("\0"):
        if not name or name.startswith("tests/data/") or name.endswith((".gz", ".xz", ".safetensors", ".npz",
                                                                       ".gguf", ".bin", ".png", ".pt")):
            continue
        p = ROOT / name
        if not p.is_file() or p.resolve() == __file__:
            continue
        try:
            yield name, p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def test_nothing_names_a_folder_outside_the_repository():
    bad = [f"{name}:{i}: {line.strip()}" for name, text in tracked_text_files() if name != "tests/py/test_standalone.py"
           for i, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not bad, "these lines read or cite a folder outside the repository:\n" + "\n".join(bad)


def test_citations_are_public():
    bad = [f"{name}:{i}: {line.strip()}" for name, text in tracked_text_files() if name != "tests/py/test_standalone.py"
           and not name.endswith(".json")
           for i, line in enumerate(text.splitlines(), 1) if PRIVATE_CITES.search(line) and "github.com" not in line]
    assert not bad, "cite public sources or docs/ instead:\n" + "\n".join(bad)


def test_the_checker_catches_what_it_looks_for():
    assert OUTSIDE.search("SHARED = ROOT.parent / 'x' / '..' and ../" + "shared/tokenizers")
    assert OUTSIDE.search("see shared/" + "specs/mlx.md")
    assert PRIVATE_CITES.search("as Issue 5 says") and PRIVATE_CITES.search("the " + "brief measured")
    assert not OUTSIDE.search("shared library") and not PRIVATE_CITES.search("a known issue in mlx")


def test_test_data_is_in_the_repository_with_its_origin():
    readme = (DATA / "README.md").read_text()
    names = sorted(p.name for p in TOKENIZERS.iterdir())
    assert len(names) >= 6
    for n in names:
        assert (TOKENIZERS / n / "tokenizer.json.gz").is_file()
        assert f"| {n} |" in readme, f"tests/data/README.md does not give the origin and licence of tokenizer {n}"
    templates = list(TEMPLATES.glob("*.jinja"))
    assert len(templates) >= 60 and "templates/*.jinja" in readme
