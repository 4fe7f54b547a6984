/*
 * simd_cap.c — the one reading of SILICA_SIMD that every kernel family obeys
 * (dtype converters in src/core/dtype_simd.c, the quant library through
 * them, the matmul / quantized-dot sets in qdot.c).
 *
 * Each architecture has a ladder of set names: x86-64 "scalar" < "avx2" <
 * "avx512" < "amx" (AVX-512 plus AMX tiles; only the quantized dots have
 * such a set), arm64 "scalar" < "neon" < "neondot" ("portable" is a synonym
 * of "scalar").  SILICA_SIMD=<name> caps every family at that rung: a family
 * uses its best set whose rung is not above it.  Unset or empty: no cap.  A
 * name not on this machine's ladder (a typo, another architecture's set)
 * caps at "scalar", the safe reading for comparisons.  Invariant: the
 * environment is read once per call site's first use; results are pure
 * functions of the name and the variable.
 */
#include "core/dtype_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
static const char *const k_ladder[] = {"scalar", "avx2", "avx512", "amx"};
#elif defined(__aarch64__)
static const char *const k_ladder[] = {"scalar", "neon", "neondot"};
#else
static const char *const k_ladder[] = {"scalar"};
#endif
enum { K_RUNGS = (int)(sizeof k_ladder / sizeof k_ladder[0]) };

static int rung(const char *name) {
    if (strcmp(name, "portable") == 0) return 0;
    for (int i = 0; i < K_RUNGS; i++)
        if (strcmp(name, k_ladder[i]) == 0) return i;
    return -1;
}

int sl_k_simd_allows(const char *set) {
    const char *want = getenv("SILICA_SIMD");
    int r = rung(set);
    if (r < 0) return 0;
    if (!want || !*want) return 1;
    int cap = rung(want);
    return r <= (cap < 0 ? 0 : cap);
}
