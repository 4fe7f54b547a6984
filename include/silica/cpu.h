/*
 * silica/cpu.h — what this machine is: CPU model and SIMD features (probed
 * once, at run time, so one binary runs everywhere), cores, memory.
 */
#ifndef SILICA_CPU_H
#define SILICA_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "silica/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_cpu_features {
    char arch[16];        /* "x86_64", "aarch64", ... */
    char model[128];      /* "Intel(R) Xeon(R) ...", "Apple M2" */
    char vendor[16];      /* x86 CPUID vendor: "GenuineIntel", "AuthenticAMD"; "" elsewhere */
    /* x86 */
    bool sse42, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avxvnni;
    /* AMX: CPUID bits, and whether the OS enables tile state in XCR0 (bits 17, 18);
     * whether tiles really run is the kernels' guarded trial (sl_engine_amx). */
    bool amx_tile, amx_int8, amx_bf16, amx_os;
    /* arm64 */
    bool neon, fp16, dotprod, i8mm, bf16, sve;
    int cores_logical;
    int cores_physical;   /* 0 if unknown */
} sl_cpu_features;

/* Probed on first call, cached; thread-safe after the first call returns. */
SL_API const sl_cpu_features *sl_cpu(void);

typedef struct sl_mem_info {
    uint64_t total_bytes;
    uint64_t available_bytes;
    uint64_t swap_total_bytes;
    uint64_t swap_free_bytes;
} sl_mem_info;

SL_API int sl_mem_probe(sl_mem_info *m);

#ifdef __cplusplus
}
#endif
#endif
