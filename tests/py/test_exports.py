"""libsilica's ABI is its public headers: the shared library exports exactly the
functions include/silica/*.h declares, and the CLI and the part*/examples call
nothing else.

The declarations are read by clang's own parser (-ast-dump=json of a file that
includes every public header); the exports by binutils' nm.  A function added to
a header without SL_API, or a private function left visible, fails here.
"""
import json
import platform
import subprocess
from pathlib import Path

from conftest import ROOT, SILICA

INCLUDE = ROOT / "include" / "silica"
BUILD = SILICA.parent


def header_declarations(tmp_path):
    """[(header file name, function name, has SL_API)] of every non-static function
    declared in include/silica/*.h, as clang parses them."""
    tu = tmp_path / "all_headers.c"
    tu.write_text("".join(f'#include "silica/{h.name}"\n' for h in sorted(INCLUDE.glob("*.h"))))
    cflags = subprocess.run(["pkg-config", "--cflags", "libcjson"], capture_output=True, text=True,
                            check=True).stdout.split()
    r = subprocess.run(["clang", "-Xclang", "-ast-dump=json", "-fsyntax-only", "-std=c11", "-x", "c",
                        "-I", str(ROOT / "include"), *cflags, str(tu)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out, cur = [], None
    for node in json.loads(r.stdout)["inner"]:
        loc = node.get("loc", {})
        # clang writes "file" only when it differs from the previous node's
        f = loc.get("file") or loc.get("spellingLoc", {}).get("file") or loc.get("expansionLoc", {}).get("file")
        if f:
            cur = f
        if node["kind"] != "FunctionDecl" or cur is None or Path(cur).resolve().parent != INCLUDE.resolve():
            continue
        if node.get("storageClass") == "static" or node.get("isImplicit"):   # io.h's static inline helpers,
            continue                                                        # the builtins they call
        vis = [a for a in node.get("inner", []) if a.get("kind") == "VisibilityAttr"]
        out.append((Path(cur).name, node["name"], bool(vis)))
    return out


def header_functions(tmp_path):
    """{name: has SL_API} of every non-static function declared in include/silica/*.h."""
    return {name: marked for _, name, marked in header_declarations(tmp_path)}


def library_exports():
    so = BUILD / "libsilica.so"
    if so.exists():
        lines = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        return {l.split()[2] for l in lines if len(l.split()) == 3}
    dylib = BUILD / "libsilica.dylib"
    assert dylib.exists() and platform.system() == "Darwin", f"no libsilica.so in {BUILD}"
    lines = subprocess.run(["nm", "-gU", str(dylib)], capture_output=True, text=True, check=True).stdout.splitlines()
    return {l.split()[2].lstrip("_") for l in lines if len(l.split()) == 3}


def test_every_public_function_is_marked_sl_api(tmp_path):
    funcs = header_functions(tmp_path)
    assert len(funcs) > 300, f"only {len(funcs)} declarations found: is the header parse broken?"
    unmarked = sorted(n for n, marked in funcs.items() if not marked)
    assert not unmarked, f"declared in include/silica without SL_API: {unmarked}"


def test_shared_library_exports_exactly_the_headers(tmp_path):
    declared = set(header_functions(tmp_path))
    exported = library_exports()
    assert not sorted(declared - exported), f"declared but not exported: {sorted(declared - exported)}"
    assert not sorted(exported - declared), f"exported but not declared in include/silica: {sorted(exported - declared)}"


def undefined_symbols(obj):
    lines = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout.splitlines()
    return {l.split()[-1] for l in lines if l.strip()}


def test_cli_and_examples_use_only_the_public_api(tmp_path):
    """cli/ and part*/examples link the static library (every symbol reachable), so
    the rule is checked on their objects: what they take from libsilica is public."""
    declared = set(header_functions(tmp_path))
    archive = BUILD / "libsilica.a"
    assert archive.exists(), f"no libsilica.a in {BUILD}"
    lines = subprocess.run(["nm", "--defined-only", "-g", str(archive)], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    in_library = {l.split()[2] for l in lines if len(l.split()) == 3}
    objs = sorted((BUILD / "CMakeFiles" / "silica.dir" / "cli").glob("*.o"))
    objs += sorted(BUILD.glob("CMakeFiles/part*_*.dir/part*/examples/*.o"))
    assert len([o for o in objs if "/cli/" in str(o)]) >= 20, f"CLI objects not found under {BUILD}/CMakeFiles"
    assert any("examples" in str(o) for o in objs), f"example objects not found under {BUILD}/CMakeFiles"
    bad = {}
    for o in objs:
        private = sorted((undefined_symbols(o) & in_library) - declared)
        if private:
            bad[str(o.relative_to(BUILD))] = private
    assert not bad, f"private libsilica functions called (only include/silica may be used): {bad}"
