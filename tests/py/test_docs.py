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

`<!-- doctest hub -->` marks a block that also needs a hub: the test starts the loopback
Hugging Face-protocol hub of the registry tests (tests/py/hub_fixture.py, Debian's nginx) serving
models/demo as `acme/demo`, and points HF_ENDPOINT at it for the whole article.

Every other block of shell commands (``sh``/``console``, or a plain block with a line starting
with `$ `, `silica `, `build/` or a script path) must say
why it is not run, on the line before its fence: `<!-- not-run: REASON -->` (installing
packages, building, another machine, a long-running server…), so no command slips through
untested by accident. The README's command table is run too: each `example` cell, in order.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SILICA

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = sorted(ROOT.glob("part*/*.md")) + [ROOT / "README.md"]
MARK = "<!-- doctest -->"
HUB_MARK = "<!-- doctest hub -->"
NOT_RUN = re.compile(r"^<!-- not-run: \S.* -->$")
COMMAND_LINE = re.compile(r"^(\$ |silica |build/|part\d/scripts/|\./scripts/)")
MISSING_MODELS = re.compile(r"(\./Llama-3\.2-1B|models/llama3|models/qwen3|models/mistral|\./Qwen3-4B|\./model\b|~/)")


def blocks(md):
    """[(line number of the fence, body lines)] of the marked blocks (indented ones too)."""
    lines = md.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() in (MARK, HUB_MARK):
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
    for part in ("part1", "part2", "part3", "part4", "part5", "part6", "part7", "part8", "part9"):
        assert part in tested, f"{part} has no {MARK} block"


def needs_hub(md):
    return HUB_MARK in md.read_text(encoding="utf-8")


def demo_hub_repo():
    from hub_fixture import Repo
    files = {f.name: f.read_bytes() for f in sorted((ROOT / "models" / "demo").iterdir()) if f.is_file()}
    return Repo("acme/demo", files)


def run_steps(md, blocks_, tmp_path, env):
    bindir = str(SILICA.parent) + "/"
    for start, body in blocks_:
        for cmd, expected in steps(body):
            assert not MISSING_MODELS.search(cmd), f"{md.name}:{start}: {cmd!r} uses a model readers do not have"
            # one pass, so a build directory that itself lives under /tmp (a CI clone) is not rewritten twice
            run = re.sub(r"(?<![\w./-])build/|/tmp/",
                         lambda m: bindir if m.group() == "build/" else str(tmp_path) + "/", cmd)
            p = subprocess.run(["sh", "-c", run], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                               stdin=subprocess.DEVNULL)
            where = f"{md.relative_to(ROOT)}:{start}: $ {cmd}"
            assert p.returncode == 0 or expected, f"{where}\nexit {p.returncode}\n{p.stderr}"
            actual = [ln.rstrip() for ln in (p.stdout + p.stderr).replace(str(tmp_path) + "/", "/tmp/")
                      .replace(bindir, "build/").splitlines()]
            while actual and not actual[-1]:
                actual.pop()
            if expected:
                assert matches([e for e in expected], actual), \
                    f"{where}\n--- article\n" + "\n".join(expected) + "\n--- actual\n" + "\n".join(actual)


def article_env(tmp_path):
    return dict(os.environ, SILICA=str(SILICA), SILICA_HOME=str(tmp_path / "home"), NO_COLOR="1",
                TMPDIR=str(tmp_path), HF_HOME=str(tmp_path / "hf"), SILICA_OFFLINE="", HF_HUB_OFFLINE="",
                HF_TOKEN="", SILICA_PYTHON=sys.executable)


@pytest.mark.parametrize("md", sorted({md for md, _, _ in DOCS}), ids=lambda p: str(p.relative_to(ROOT)))
def test_article_commands(md, tmp_path, hub):
    env = article_env(tmp_path)
    if needs_hub(md):
        env["HF_ENDPOINT"] = hub([demo_hub_repo()]).url
    run_steps(md, [(s, b) for m, s, b in DOCS if m == md], tmp_path, env)


def shell_blocks(md):
    """[(line, mark line)] of every fenced block that holds shell commands."""
    lines = md.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = lines[i].strip()
        if not fence.startswith("```"):
            i += 1
            continue
        j = next(k for k in range(i + 1, len(lines)) if lines[k].strip().startswith("```"))
        lang, body = fence[3:].strip(), [ln.strip() for ln in lines[i + 1:j]]
        if lang in ("sh", "console", "bash", "shell") or (not lang and any(COMMAND_LINE.match(b) for b in body)):
            out.append((i + 1, lines[i - 1].strip() if i else ""))
        i = j + 1
    return out


@pytest.mark.parametrize("md", ARTICLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_block_is_run_or_says_why_not(md):
    for line, mark in shell_blocks(md):
        assert mark in (MARK, HUB_MARK) or NOT_RUN.match(mark), \
            f"{md.relative_to(ROOT)}:{line}: a block of commands needs {MARK} (run by this test) or " \
            "<!-- not-run: REASON --> on the line before its fence"


def readme_table_examples():
    """The `example` column of README.md's command table, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n\n| command |", 1)[1].split("\n\n", 1)[0]
    rows = [r for r in table.splitlines()[2:] if r.startswith("|")]
    cells = [re.findall(r"`([^`]+)`", r.rsplit("|", 2)[1]) for r in rows]
    assert all(len(c) == 1 for c in cells), cells
    return [c[0].replace("\\|", "|") for c in cells]


def test_readme_command_table_examples_run(tmp_path, hub):
    examples = readme_table_examples()
    assert len(examples) >= 15 and all(e.startswith("build/silica ") for e in examples), examples
    env = article_env(tmp_path)
    env["HF_ENDPOINT"] = hub([demo_hub_repo()]).url
    for cmd in examples:
        assert not MISSING_MODELS.search(cmd) and "~/" not in cmd, f"README: {cmd!r} uses a model readers do not have"
        if cmd.startswith("build/silica serve "):
            continue  # a server that runs until stopped: part8/scripts/serve_demo.sh runs it (test_serve.py)
        run_steps(ROOT / "README.md", [(0, ["$ " + cmd + " > /dev/null"])], tmp_path, env)


def test_matcher():
    assert matches(["a ... c", "...", "z"], ["a b c", "x", "y", "z"])
    assert not matches(["a", "b"], ["a", "c"])
    assert not matches(["a"], ["a", "b"])
    assert matches(["..."], [])
