"""`make install`: silica, libsilica (shared + static), headers, silica.pc, man pages, completions.

The install under test is the real one (`make install PREFIX=... [DESTDIR=...]` over the build
directory of SILICA_BIN).  The oracles are the real tools a user has: pkg-config and the C
compiler build a program against the installed library, `safetensors` counts the tensors it must
see, bash (with bash-completion's loader), zsh (compinit, driven through zsh/zpty) and fish
complete command lines from the installed scripts, and man, groff and mandoc render/lint the
pages.  Commands and flags come from `silica --help` / `silica CMD --help`, so a command or an
option entry missing from any completion or man page fails here.
"""
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from safetensors import safe_open

from conftest import ROOT, SILICA, assert_clean_error, run_silica

SAMPLE = ROOT / "models" / "sample"


def sh(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, **kw)


def need(tool):
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (scripts/deps.sh installs it)"
    return path


def make_install(prefix, destdir=None):
    build = SILICA.parent
    assert (build / "CMakeCache.txt").exists(), f"{build} is not a CMake build directory"
    cmd = ["make", "-C", str(ROOT), "install", f"BUILD={build}", f"PREFIX={prefix}", "JOBS=2"]
    if destdir:
        cmd.append(f"DESTDIR={destdir}")
    r = sh(cmd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("install") / "prefix"
    make_install(p)
    return p


def pc_dir(root):
    found = sorted(Path(root).glob("**/pkgconfig/silica.pc"))
    assert len(found) == 1, found
    return found[0].parent


def commands():
    """The command table, as `silica --help` lists it."""
    out = sh([str(SILICA), "--help"]).stdout
    block = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    names = [m.group(1) for m in re.finditer(r"^  (\S+)", block, re.M)]
    assert len(names) > 20 and "convert" in names and "help" in names, names
    return names


def entry_flags(cmd):
    """The first flag of each option entry ("  --flag ARG  text") of `silica CMD --help`."""
    out = sh([str(SILICA), cmd, "--help"]).stdout
    return sorted({m.group(1) for m in re.finditer(r"^ {1,6}(--?[A-Za-z][\w-]*)", out, re.M)})


# ---- the files ----

def test_layout(prefix):
    assert (prefix / "bin" / "silica").is_file()
    lib = pc_dir(prefix).parent
    assert (lib / "libsilica.a").is_file()
    assert (lib / "libsilica.so").exists() or (lib / "libsilica.dylib").exists()
    assert (prefix / "include" / "silica" / "silica.h").is_file()
    share = prefix / "share"
    assert (share / "bash-completion" / "completions" / "silica").is_file()
    assert (share / "zsh" / "site-functions" / "_silica").is_file()
    assert (share / "fish" / "vendor_completions.d" / "silica.fish").is_file()
    pages = {p.name for p in (share / "man" / "man1").glob("*.1")}
    want = {"silica.1"} | {f"silica-{c}.1" for c in commands() if c != "help"}
    assert pages == want


def test_installed_binary(prefix):
    r = sh([str(prefix / "bin" / "silica"), "--version"])
    assert r.returncode == 0 and r.stdout == sh([str(SILICA), "--version"]).stdout
    r = sh([str(prefix / "bin" / "silica"), "inspect", str(SAMPLE), "--json"])
    assert r.returncode == 0, r.stderr


def test_installed_demo_model_and_catalog(prefix, tmp_path):
    """make install copies the demo model and the fit catalog to share/silica; the installed
    silica finds them next to itself (run without MODEL, fit NAME), not in the source tree:
    a catalog entry added only to a copy of the installed tree is found by that copy."""
    import shutil
    share = prefix / "share" / "silica"
    assert sorted(p.name for p in (share / "models" / "demo").iterdir()) == \
        sorted(p.name for p in (ROOT / "models" / "demo").iterdir())
    assert {p.name for p in (share / "data" / "models").glob("*.json")} == \
        {p.name for p in (ROOT / "data" / "models").glob("*.json")}
    moved = tmp_path / "elsewhere"
    shutil.copytree(prefix, moved, symlinks=True)
    entry = sorted((moved / "share" / "silica" / "data" / "models").glob("*.json"))[0]
    shutil.copy(entry, entry.with_name("only-installed.json"))
    env = {k: v for k, v in os.environ.items() if k not in ("SILICA_DEFAULT_MODEL", "SILICA_DATA_DIR")}
    r = sh([str(moved / "bin" / "silica"), "run", "def f(x):", "--max-tokens", "3"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"silica: using the demo model {os.path.realpath(moved / 'share' / 'silica' / 'models' / 'demo')} "), r.stderr
    r = sh([str(moved / "bin" / "silica"), "fit", "only-installed", "--json"], env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["total_bytes"] > 0, r.stderr


def test_destdir_stages_under_prefix(tmp_path):
    stage = tmp_path / "stage"
    make_install("/usr/local", destdir=stage)
    root = stage / "usr" / "local"
    assert (root / "bin" / "silica").is_file()
    pc = (pc_dir(root) / "silica.pc").read_text()
    assert re.search(r"^prefix=/usr/local$", pc, re.M), pc
    for f in stage.rglob("*"):   # nothing installed names the staging directory
        if f.is_file() and f.suffix in ("", ".pc", ".1", ".fish", ".h"):
            assert str(stage).encode() not in f.read_bytes(), f


# ---- libsilica from C through pkg-config ----

PROG = r"""
#include <stdio.h>
#include <silica/silica.h>
#include <silica/checkpoint.h>

int main(int argc, char **argv) {
    sl_error err = {0};
    sl_checkpoint *ck = NULL;
    printf("version %s\n", sl_version());
    if (argc < 2 || sl_checkpoint_open(argv[1], &ck, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 2;
    }
    printf("tensors %zu\n", ck->n_tensors);
    sl_checkpoint_close(ck);
    return 0;
}
"""


def pkg_config(prefix, *args):
    need("pkg-config")
    env = dict(os.environ, PKG_CONFIG_PATH=str(pc_dir(prefix)))
    r = sh(["pkg-config", *args, "silica"], env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def build_prog(tmp_path, name, flags):
    src = tmp_path / "prog.c"
    src.write_text(PROG)
    exe = tmp_path / name
    cc = os.environ.get("CC", "cc")
    r = sh([cc, "-std=c11", "-Wall", "-Werror", str(src), "-o", str(exe), *flags])
    return exe, r


def expected_run():
    with safe_open(str(SAMPLE / "model.safetensors"), "np") as f:
        n = len(list(f.keys()))
    version = sh([str(SILICA), "--version"]).stdout.split()[1]
    return f"version {version}\ntensors {n}\n"


def test_pkg_config_shared(prefix, tmp_path):
    flags = pkg_config(prefix, "--cflags", "--libs")
    assert "-lsilica" in flags and f"-I{prefix}/include" in flags, flags
    exe, r = build_prog(tmp_path, "prog_shared", flags)
    assert r.returncode == 0, r.stderr
    libdir = pc_dir(prefix).parent
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir), DYLD_LIBRARY_PATH=str(libdir))
    run = sh([str(exe), str(SAMPLE)], env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected_run()
    if shutil.which("ldd"):   # linked against the installed shared library
        assert str(libdir / "libsilica.so") in sh(["ldd", str(exe)], env=env).stdout


def test_pkg_config_static(prefix, tmp_path):
    """--static lists every library libsilica.a needs (Requires.private, Libs.private)."""
    cflags = pkg_config(prefix, "--cflags")
    libs = pkg_config(prefix, "--static", "--libs")
    assert "-lsilica" in libs and "-pthread" in libs and "-lm" in libs, libs
    static = [f"-l:libsilica.a" if f == "-lsilica" else f for f in libs]   # the archive, not the .so
    exe, r = build_prog(tmp_path, "prog_static", cflags + static)
    assert r.returncode == 0, r.stderr
    run = sh([str(exe), str(SAMPLE)])   # no library path: nothing of silica is loaded at run time
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected_run()
    if shutil.which("ldd"):
        assert "libsilica" not in sh(["ldd", str(exe)]).stdout
    # without the private part the archive does not link: the .pc's private fields are needed
    plain = [f"-l:libsilica.a" if f == "-lsilica" else f for f in pkg_config(prefix, "--libs")]
    _, r = build_prog(tmp_path, "prog_bad", cflags + plain)
    assert r.returncode != 0


# ---- completions, through the real shells ----

def shell_env(prefix):
    return dict(os.environ, PATH=f"{prefix / 'bin'}:{os.environ['PATH']}",
                XDG_DATA_DIRS=f"{prefix / 'share'}:/usr/local/share:/usr/share", HOME=str(prefix),
                XDG_CONFIG_HOME=str(prefix / "config"))   # no user configuration


def bash_complete(prefix, lines):
    """{line: candidates} from the installed bash completion, loaded by bash-completion."""
    need("bash")
    need("pkg-config")
    r = sh(["pkg-config", "--variable=prefix", "bash-completion"])
    assert r.returncode == 0, "bash-completion is not installed (scripts/deps.sh installs it)"
    loader = Path(r.stdout.strip()) / "share" / "bash-completion" / "bash_completion"
    script = textwrap.dedent(f"""\
        source {loader}
        _completion_loader silica
        complete -p silica | grep -q -- '-F _silica' || exit 3
        comp() {{
            COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=()
            COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
            _silica silica "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
            echo "### $*"; printf '%s\\n' "${{COMPREPLY[@]}}"
        }}
        """)
    for line in lines:
        words = line.split(" ")
        script += "comp " + " ".join("'" + w + "'" for w in words) + "\n"
    r = sh(["bash", "--norc", "--noprofile", "-c", script], env=shell_env(prefix), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return parse_blocks(r.stdout)


def parse_blocks(out):
    res, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("### "):
            cur = ln[4:]
            res[cur] = set()
        elif cur is not None and ln:
            res[cur].add(ln.split("\t")[0])
    return res


def fish_complete(prefix, lines):
    need("fish")
    script = 'for l in $argv; echo "### $l"; complete -C "$l"; end'
    r = sh(["fish", "-c", script, *lines], env=shell_env(prefix), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return parse_blocks(r.stdout)


ZSH_DRIVER = r"""
# zsh DRIVER FPATH LINE...: for each LINE, "### LINE" then the candidates zsh's completion
# system offers (compadd wrapped to print them; TAB bound to complete-word, then a marker).
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PS1= PROMPT= RPROMPT=; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'zstyle ":completion:*" menu no; zstyle ":completion:*" list-prompt ""'
zpty -w z 'compadd () { local -a __h; builtin compadd -O __h "$@"; (( $#__h )) && print -r -l -- "<ca""nd>"${^__h}; builtin compadd "$@" }'
zpty -w z '__tab() { zle complete-word; print -r -- "<do""ne>" }; zle -N __tab'
zpty -w z 'bindkey "^I" __tab; print -r -- "<rea""dy>" $+_comps[silica] $_comps[silica]'
local line
while zpty -r z line; do
  [[ $line == *'<ready>'* ]] && { print -r -- "comps ${${line##*<ready>}//$'\r'/}"; break }
done
shift
for l in "$@"; do
  print -r -- "### $l"
  zpty -w -n z $'\C-u'"$l"$'\t'
  while zpty -r z line; do
    line=${line//$'\r'/}
    [[ $line == *'<done>'* ]] && break
    [[ $line == *'<cand>'* ]] && print -r -- ${line##*<cand>}
  done
done
zpty -d z
"""


def zsh_complete(prefix, lines, tmp_path):
    need("zsh")
    driver = tmp_path / "driver.zsh"
    driver.write_text(ZSH_DRIVER)
    fpath = prefix / "share" / "zsh" / "site-functions"
    r = sh(["zsh", "-f", str(driver), str(fpath), *lines], env=shell_env(prefix), cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    first = r.stdout.split("\n", 1)[0]
    assert first.split()[1:] == ["1", "_silica"], first   # compinit registered _silica for silica
    return parse_blocks(r.stdout)


# what every shell must offer: commands, flags, value sets, subcommands, file paths
CASES = {
    "silica conv": {"convert"},
    "silica convert a b --to ": {"safetensors", "torch", "npz", "gguf", "mlx", "hf"},
    "silica run --kv ": {"f16", "f32", "q8", "q4"},
    "silica ppl m --kv ": {"f16", "f32", "q8", "q4"},
    "silica lfs ": {"pointer", "parse", "fetch", "push"},
    "silica --completions ": {"bash", "zsh", "fish"},
    "silica help qu": {"quantize"},
}
FILE_CASES = {   # MODEL and path-valued arguments complete file names (cwd: the repository)
    "silica inspect models/sa": "sample",
    "silica ppl models/sample --file tests/py/conft": "conftest.py",
}


def check_shell(results):
    for line, want in CASES.items():
        assert results[line] == want, (line, results[line])
    for line, name in FILE_CASES.items():
        assert any(c.rstrip("/").endswith(name) for c in results[line]), (line, results[line])
    cmds = commands()
    assert {c for c in results["silica "] if not c.startswith("-")} == set(cmds)
    for c in cmds:
        if c == "help":
            continue
        got = results[f"silica {c} -"]
        missing = set(entry_flags(c)) - got
        assert not missing, (c, missing)


def all_lines():
    return [*CASES, *FILE_CASES, "silica "] + [f"silica {c} -" for c in commands() if c != "help"]


def test_bash_completion(prefix):
    check_shell(bash_complete(prefix, all_lines()))


def test_fish_completion(prefix):
    check_shell(fish_complete(prefix, all_lines()))


def test_zsh_completion(prefix, tmp_path):
    check_shell(zsh_complete(prefix, all_lines(), tmp_path))


# ---- man pages ----

def test_man_pages(prefix):
    man1 = prefix / "share" / "man" / "man1"
    need("groff")
    need("man")
    mandoc = need("mandoc")
    top = man1 / "silica.1"
    for c in commands():
        if c == "help":
            continue
        page = man1 / f"silica-{c}.1"
        for p in (page, top):
            assert f"silica\\-{c}" in p.read_text(), (p, c)
        r = sh(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)])
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        r = sh([mandoc, "-Tlint", "-Wwarning", str(page)])
        assert r.stdout + r.stderr == "", r.stdout + r.stderr
        text = sh(["man", "-l", str(page)], env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0")).stdout
        text = re.sub(r".\x08", "", text)
        for flag in entry_flags(c):   # every option entry of the --help text is in the page
            assert flag in text, (c, flag)
    r = sh(["groff", "-man", "-Tutf8", "-ww", "-z", str(top)])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = sh([mandoc, "-Tlint", "-Wwarning", str(top)])
    assert r.stdout + r.stderr == ""
    # `man silica convert` finds silica-convert(1) through MANPATH, as `man git commit` does
    r = sh(["man", "-P", "cat", "silica", "convert"], env=dict(os.environ, MANPATH=str(prefix / "share" / "man"), MANWIDTH="100"))
    assert r.returncode == 0 and "silica convert SRC DST" in re.sub(r".\x08", "", r.stdout), r.stderr


# ---- the generators themselves ----

def test_generators(tmp_path):
    """`silica --gen-docs` (what the build runs) writes what --completions/--man print; bad
    arguments are one-line errors.  Under SILICA_BIN=build-asan/silica this runs the whole
    generator under ASan/UBSan and LeakSanitizer."""
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    out = tmp_path / "share"
    r = run_silica("--gen-docs", out, env=env)
    assert r.rc == 0 and r.out == "" and r.err == "", r.err
    for shell, path in (("bash", "bash-completion/completions/silica"), ("zsh", "zsh/site-functions/_silica"),
                        ("fish", "fish/vendor_completions.d/silica.fish")):
        assert run_silica("--completions", shell, check=True).out == (out / path).read_text()
    assert run_silica("--man", env=env, check=True).out == (out / "man/man1/silica.1").read_text()
    page = run_silica("--man", "convert", env=env, check=True).out
    assert page == (out / "man/man1/silica-convert.1").read_text()
    assert '.TH SILICA\\-CONVERT 1 2023-11-14 "silica ' in page   # the date is SOURCE_DATE_EPOCH's
    assert_clean_error(run_silica("--completions", "tcsh"), "tcsh", "bash, zsh or fish")
    assert_clean_error(run_silica("--completions"), "--completions")
    assert_clean_error(run_silica("--man", "nosuch"), "nosuch")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_clean_error(run_silica("--gen-docs", blocker / "share"), str(blocker))
