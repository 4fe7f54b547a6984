"""The modules of src/ are layers: docs/ARCHITECTURE.md's "Directories" table
says what each depends on ("depends on" column, module names in backticks), and
the code keeps to it.

- #includes: a file of src/A/ includes "A/..." or "B/..." of a module B the
  table lets A depend on, never another module's *_impl.h (module-internal),
  never the umbrella silica/silica.h; a public header "silica/H.h" only where
  A implements part of it or depends on a module that does (which module
  implements a header is read from the built objects: the definers of the
  functions clang finds declared in it).
- symbols: every function or object an object file of src/A/ takes from the
  library is defined in A or in a module A may depend on (nm of the objects the
  build compiled from src/).
- the table itself has no cycle, and names only existing modules.
A new cross-layer include or call fails here until the table says so.
"""
import re
import subprocess
from collections import defaultdict

from conftest import ROOT, SILICA
from test_exports import header_declarations

SRC = ROOT / "src"
BUILD = SILICA.parent
MODULES = sorted(p.name for p in SRC.iterdir() if p.is_dir())


def table():
    """{module: set of modules it may depend on} from ARCHITECTURE.md."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    deps = {}
    for line in text.splitlines():
        m = re.match(r"^\| `src/([a-z]+)/` \|.*\| ([^|]*) \|$", line)
        if m:
            deps[m.group(1)] = set(re.findall(r"`([a-z]+)`", m.group(2)))
    return deps


def test_table_covers_every_module_and_has_no_cycle():
    deps = table()
    assert sorted(deps) == MODULES, f"modules without a row, or rows without a module: {sorted(set(deps) ^ set(MODULES))}"
    for a, ds in deps.items():
        assert not ds - set(MODULES), f"{a}: depends on unknown modules {sorted(ds - set(MODULES))}"
        assert a not in ds, f"{a} lists itself"
    state = {}

    def visit(a, path):
        if state.get(a) == "done":
            return
        assert state.get(a) != "open", f"dependency cycle: {' -> '.join(path + [a])}"
        state[a] = "open"
        for b in sorted(deps[a]):
            visit(b, path + [a])
        state[a] = "done"

    for a in MODULES:
        visit(a, [])


def module_objects():
    """{module: [object files]} of the library's sources that still exist (a build
    directory may keep objects of files since moved)."""
    base = BUILD / "CMakeFiles" / "silica_obj.dir" / "src"
    out = defaultdict(list)
    for o in base.glob("*/*.o"):
        if (SRC / o.parent.name / o.name[:-2]).exists():
            out[o.parent.name].append(o)
    assert len(out) >= len(MODULES) - 1, f"library objects not found under {base}"
    return out


def nm(obj, *flags):
    return subprocess.run(["nm", *flags, str(obj)], capture_output=True, text=True, check=True).stdout.splitlines()


def symbol_owners(objs):
    owner = {}
    for mod, files in objs.items():
        for o in files:
            for line in nm(o, "--defined-only"):
                f = line.split()
                if len(f) == 3 and f[1] in "TDRBCV":   # global text/data
                    owner[f[2]] = mod
    return owner


def test_calls_follow_the_table():
    deps, objs = table(), module_objects()
    owner = symbol_owners(objs)
    bad = defaultdict(set)
    for mod, files in objs.items():
        for o in files:
            for line in nm(o, "-u"):
                sym = line.split()[-1]
                b = owner.get(sym)
                if b and b != mod and b not in deps[mod]:
                    bad[f"{mod} -> {b}"].add(f"{o.name[:-2]}: {sym}")
    assert not bad, "calls across layers the table does not allow:\n" + "\n".join(
        f"  {k}: {sorted(v)[:6]}" for k, v in sorted(bad.items()))


def header_owners(tmp_path):
    """{public header name: modules defining its functions} (clang's parse of the
    headers, nm of the objects)."""
    owner = symbol_owners(module_objects())
    out = defaultdict(set)
    for header, name, _ in header_declarations(tmp_path):
        if name in owner:
            out[header].add(owner[name])
    return out


INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def test_includes_follow_the_table(tmp_path):
    deps, owners = table(), header_owners(tmp_path)
    assert owners["checkpoint.h"] and owners["memory.h"], "header owners not found: is the build complete?"
    bad = []
    for mod in MODULES:
        for f in sorted((SRC / mod).glob("*.[ch]")):
            for inc in INCLUDE_RE.findall(f.read_text()):
                where = f"{f.relative_to(ROOT)}: \"{inc}\""
                if "/" not in inc:
                    if inc.endswith(".h"):
                        bad.append(f"{where}: write includes as \"module/file.h\"")
                    continue   # generated or non-C includes (shaders)
                top, name = inc.split("/", 1)
                if top == "silica":
                    if name == "silica.h":
                        bad.append(f"{where}: the umbrella header; include what is used")
                    elif owners.get(name) and mod not in owners[name] and not owners[name] & deps[mod]:
                        bad.append(f"{where}: implemented by {sorted(owners[name])}, not a dependency of {mod}")
                elif top not in MODULES:
                    bad.append(f"{where}: no module src/{top}")
                elif top != mod:
                    if top not in deps[mod]:
                        bad.append(f"{where}: {mod} may not depend on {top}")
                    elif name.endswith("_impl.h"):
                        bad.append(f"{where}: {top}'s internal header")
    assert not bad, "includes across layers the table does not allow:\n  " + "\n  ".join(bad)
