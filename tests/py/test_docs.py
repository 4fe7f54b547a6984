"""The articles' commands run, and print what the articles show.

A block of an article (part*/**.md, README.md) is tested when the line before its fence is
`<!-- doctest -->`:

    <!-- doctest -->
    ```console
    $ build/silica inspect models/sample
    path:    models/sample
    ...
    ```

Lines starting with `$ ` are commands (a trailing `\\` continues one), run by /bin/sh from the
repository root, in order, in one scratch environment: `build/` means the directory of the silica
under test, `/tmp/` a fresh temporary directory, SILICA_HOME an empty store. The lines that follow a
command are its expected output (stdout, then stderr): compared line by line after trailing spaces
are stripped; a line `...` stands for any number of lines, `...` inside a line for any text. A
command whose output is not shown must still exit 0. Models: only what the repository ships
(models/, tests/fixtures/, tests/data/) or what an earlier command of the article made.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import SILICA

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = sorted(ROOT.glob("part*/*.md")) + [ROOT / "README.md"]
MARK = "<!-- doctest -->"
MISSING_MODELS = re.compile(r"(\./Llama-3\.2-1B|models/llama3|models/qwen3|models/mistral)\b")


def blocks(md):
    """[(line number of the fence, body lines)] of the marked blocks (indented ones too)."""
    lines = md.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() == MARK:
            fence = lines[i + 1]
            indent = len(fence) - len(fence.lstrip())
            assert fence.strip().startswith("```"), f"{md}:{i + 1}: {MARK} must precede a fence"
            j = next(k for k in range(i + 2, len(lines)) if lines[k].strip() == "```")
            out.append((i + 2, [ln[indent:] for ln in lines[i + 2:j]]))
    return out


def steps(body):
    """[(command, [expected lines])] of one block."""
    res, cmd = [], None
    it = iter(body)
    for line in it:
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\"):
                cmd = cmd + "\n" + next(it)  # the shell joins the lines
            res.append((cmd, []))
        else:
            assert res, f"output before the first command: {line!r}"
            res[-1][1].append(line.rstrip())
    for _, exp in res:
        while exp and not exp[-1]:
            exp.pop()
    return res


def matches(expected, actual):
    """Line-wise match with `...` wildcards (a whole line: any lines; inside a line: any text)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    if not actual:
        return False
    pat = ".*".join(re.escape(part) for part in expected[0].split("..."))
    return re.fullmatch(pat, actual[0]) is not None and matches(expected[1:], actual[1:])


DOCS = [(md, start, body) for md in ARTICLES for start, body in blocks(md)]


def test_articles_have_doctests():
    tested = {md.relative_to(ROOT).parts[0] for md, _, _ in DOCS}
    for part in ("part1", "part2", "part3", "part4", "part5", "part6", "part7", "part9"):
        assert part in tested, f"{part} has no {MARK} block"


@pytest.mark.parametrize("md", sorted({md for md, _, _ in DOCS}), ids=lambda p: str(p.relative_to(ROOT)))
def test_article_commands(md, tmp_path):
    env = dict(os.environ, SILICA=str(SILICA), SILICA_HOME=str(tmp_path / "home"), NO_COLOR="1", TMPDIR=str(tmp_path))
    bindir = str(SILICA.parent) + "/"
    for start, body in [(s, b) for m, s, b in DOCS if m == md]:
        for cmd, expected in steps(body):
            assert not MISSING_MODELS.search(cmd), f"{md.name}:{start}: {cmd!r} uses a model readers do not have"
            # one pass, so a build directory that itself lives under /tmp (a CI clone) is not rewritten twice
            run = re.sub(r"(?<![\w./-])build/|/tmp/",
                         lambda m: bindir if m.group() == "build/" else str(tmp_path) + "/", cmd)
            p = subprocess.run(["sh", "-c", run], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            where = f"{md.relative_to(ROOT)}:{start}: $ {cmd}"
            assert p.returncode == 0 or expected, f"{where}\nexit {p.returncode}\n{p.stderr}"
            actual = [ln.rstrip() for ln in (p.stdout + p.stderr).replace(str(tmp_path) + "/", "/tmp/")
                      .replace(bindir, "build/").splitlines()]
            while actual and not actual[-1]:
                actual.pop()
            if expected:
                assert matches([e for e in expected], actual), \
                    f"{where}\n--- article\n" + "\n".join(expected) + "\n--- actual\n" + "\n".join(actual)


def test_matcher():
    assert matches(["a ... c", "...", "z"], ["a b c", "x", "y", "z"])
    assert not matches(["a", "b"], ["a", "c"])
    assert not matches(["a"], ["a", "b"])
    assert matches(["..."], [])
