/*
 * cpu.c — run-time CPU and memory probing (Linux /proc and /sys, cpuid on
 * x86, getauxval HWCAP on arm64, sysctl on macOS).  Every probe tolerates
 * missing files: unknown values stay 0 / empty, nothing fails.
 */
#define _GNU_SOURCE
#include "silica/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

static sl_cpu_features g_cpu;
static int g_probed;

static void read_model_linux(sl_cpu_features *c) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        const char *keys[] = {"model name", "Model", "Hardware"};
        for (int k = 0; k < 3; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(line, keys[k], kl) == 0 && !c->model[0]) {
                char *colon = strchr(line, ':');
                if (colon) {
                    colon++;
                    while (*colon == ' ' || *colon == '\t') colon++;
                    size_t l = strcspn(colon, "\n");
                    if (l >= sizeof c->model) l = sizeof c->model - 1;
                    memcpy(c->model, colon, l);
                    c->model[l] = 0;
                }
            }
        }
    }
    fclose(f);
}

/* Physical cores: distinct (package, core) pairs of the online CPUs in
 * /sys topology; 0 when the topology is not exposed. */
static int physical_cores_linux(int logical) {
    enum { MAX_PAIRS = 1024 };
    static long pairs[MAX_PAIRS][2];
    int npairs = 0;
    for (int cpu = 0, seen = 0; cpu < 4 * MAX_PAIRS && seen < logical; cpu++) {
        long v[2] = {-1, -1};
        const char *leaf[2] = {"physical_package_id", "core_id"};
        for (int k = 0; k < 2; k++) {
            char path[96];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, leaf[k]);
            FILE *f = fopen(path, "r");
            if (!f) break;
            if (fscanf(f, "%ld", &v[k]) != 1) v[k] = -1;
            fclose(f);
        }
        if (v[0] < 0 || v[1] < 0) continue;
        seen++;
        int dup = 0;
        for (int i = 0; i < npairs && !dup; i++) dup = pairs[i][0] == v[0] && pairs[i][1] == v[1];
        if (!dup && npairs < MAX_PAIRS) {
            pairs[npairs][0] = v[0];
            pairs[npairs][1] = v[1];
            npairs++;
        }
    }
    return npairs;
}

static void probe(sl_cpu_features *c) {
    memset(c, 0, sizeof *c);
#if defined(__x86_64__)
    snprintf(c->arch, sizeof c->arch, "x86_64");
    unsigned a, b, cx, d;
    if (__get_cpuid(0, &a, &b, &cx, &d)) {   /* the vendor string: EBX, EDX, ECX */
        memcpy(c->vendor, &b, 4), memcpy(c->vendor + 4, &d, 4), memcpy(c->vendor + 8, &cx, 4);
        c->vendor[12] = 0;
    }
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        c->sse42 = cx & bit_SSE4_2;
        c->fma = cx & bit_FMA;
        c->f16c = cx & bit_F16C;
        bool osxsave = cx & bit_OSXSAVE;
        bool avx_hw = cx & bit_AVX;
        unsigned xlo = 0, xhi = 0;
        if (osxsave) __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
        bool ymm = (xlo & 6) == 6, zmm = (xlo & 0xe6) == 0xe6;
        c->avx = avx_hw && ymm;
        if (!c->avx) c->fma = c->f16c = false;
        if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
            c->avx2 = c->avx && (b & bit_AVX2);
            c->avx512f = zmm && (b & bit_AVX512F);
            c->avx512bw = c->avx512f && (b & bit_AVX512BW);
            c->avx512vl = c->avx512f && (b & bit_AVX512VL);
            c->avx512vnni = c->avx512f && (cx & bit_AVX512VNNI);
            c->amx_bf16 = (d >> 22) & 1;
            c->amx_tile = (d >> 24) & 1;
            c->amx_int8 = (d >> 25) & 1;
            c->amx_os = (xlo & 0x60000) == 0x60000;   /* XTILECFG | XTILEDATA */
        }
        if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) {
            c->avxvnni = c->avx && (a & (1u << 4));
            c->avx512bf16 = c->avx512f && (a & (1u << 5));
        }
    }
#elif defined(__aarch64__)
    snprintf(c->arch, sizeof c->arch, "aarch64");
    c->neon = true;
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    c->fp16 = (hw >> 9) & 1 && (hw >> 10) & 1;   /* HWCAP_FPHP | HWCAP_ASIMDHP */
    c->dotprod = (hw >> 20) & 1;                 /* HWCAP_ASIMDDP */
    c->sve = (hw >> 22) & 1;                     /* HWCAP_SVE */
    c->i8mm = (hw2 >> 13) & 1;                   /* HWCAP2_I8MM */
    c->bf16 = (hw2 >> 14) & 1;                   /* HWCAP2_BF16 */
#elif defined(__APPLE__)
    c->fp16 = c->dotprod = true;                 /* every Apple Silicon core */
#endif
#else
    snprintf(c->arch, sizeof c->arch, "unknown");
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->cores_logical = n > 0 ? (int)n : 1;
#if defined(__APPLE__)
    size_t len = sizeof c->model - 1;
    if (sysctlbyname("machdep.cpu.brand_string", c->model, &len, NULL, 0) != 0) c->model[0] = 0;
    int phys = 0;
    len = sizeof phys;
    if (sysctlbyname("hw.physicalcpu", &phys, &len, NULL, 0) == 0 && phys > 0) c->cores_physical = phys;
#else
    read_model_linux(c);
    c->cores_physical = physical_cores_linux(c->cores_logical);
#endif
}

const sl_cpu_features *sl_cpu(void) {
    if (!__atomic_load_n(&g_probed, __ATOMIC_ACQUIRE)) {
        sl_cpu_features tmp;
        probe(&tmp);
        g_cpu = tmp;
        __atomic_store_n(&g_probed, 1, __ATOMIC_RELEASE);
    }
    return &g_cpu;
}

int sl_mem_probe(sl_mem_info *m) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) {
        long pages = sysconf(_SC_PHYS_PAGES), ps = sysconf(_SC_PAGESIZE);
        if (pages > 0 && ps > 0) m->total_bytes = m->available_bytes = (uint64_t)pages * (uint64_t)ps;
        return m->total_bytes ? 0 : -1;
    }
    char key[64];
    unsigned long long v;
    while (fscanf(f, "%63s %llu kB\n", key, &v) == 2) {
        if (!strcmp(key, "MemTotal:")) m->total_bytes = v * 1024;
        else if (!strcmp(key, "MemAvailable:")) m->available_bytes = v * 1024;
        else if (!strcmp(key, "SwapTotal:")) m->swap_total_bytes = v * 1024;
        else if (!strcmp(key, "SwapFree:")) m->swap_free_bytes = v * 1024;
    }
    fclose(f);
    return 0;
}
