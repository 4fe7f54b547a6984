"""The engine kernel sets this CPU can run, for parametrizing engine tests.

SILICA_SIMD=<name> caps every kernel family (src/core/simd_cap.c); a name
is listed when `silica doctor --json` under it reports that very set active,
so an AVX2-only machine lists scalar and avx2, an AVX-512 one also avx512
(the native set), and one with AMX tiles also avx512 (beside native amx).
NEON sets are proved by tests/unit/test_kernels.c under qemu (arm64 CI).
The first entry is "" (no cap: the set silica picks by itself).
"""
import functools
import json
import os
import subprocess

from conftest import SILICA

CANDIDATES = ["avx512", "avx2", "scalar"]   # amx / avx512 / neondot: what "" picks on such CPUs


@functools.lru_cache(maxsize=None)
def kernel_sets():
    sets = [""]
    if not SILICA.exists():
        return sets
    default = None
    for name in [""] + CANDIDATES:
        env = dict(os.environ, SILICA_SIMD=name)
        p = subprocess.run([str(SILICA), "doctor", "--json"], capture_output=True, text=True, env=env)
        got = json.loads(p.stdout)["cpu"]["engine_kernels"] if p.returncode == 0 else None
        if name == "":
            default = got
        elif got == {"scalar": "portable"}.get(name, name) and got != default:
            sets.append(name)
    return sets


def simd_env(name):
    """Environment for run_silica(env=...): SILICA_SIMD=name ('': as the caller's environment says)."""
    return {"SILICA_SIMD": name} if name else {}


def simd_id(name):
    return name or "native"
