/*
 * cmd_doctor.c — `silica doctor [--json] [--bandwidth]`: OS (distribution
 * and kernel), CPU model and SIMD features, logical/physical cores, memory
 * (RAM, swap, cgroup v1/v2 limits; hw.memsize, iogpu.wired_limit_mb and the
 * chip on macOS), the memory budget models are judged against (Apple GPU
 * working set or RAM / cgroup limit), optionally a measured multi-threaded
 * read bandwidth, the engine (matmul) and dtype kernel sets (both capped by
 * SILICA_SIMD), silica version and build options, the Vulkan devices
 * (sl_gpu_devices: name, type, heaps, subgroup size, fp16/int8).
 * Read-only probes; unknown values print as "unknown" (text) or are left out
 * / 0 (JSON); an unreadable cgroup file is reported, never fatal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cli.h"
#include "silica/memory.h"

static const char *k_help =
    "usage: silica doctor [--json] [--bandwidth]\n\n"
    "Describe this machine as silica sees it: OS, CPU model and SIMD features\n"
    "(SSE4.2/AVX/AVX2/AVX-512/F16C/FMA on x86-64; NEON/dotprod/i8mm/fp16 on arm64),\n"
    "cores, memory (RAM, swap, cgroup limits; on macOS hw.memsize, iogpu.wired_limit_mb,\n"
    "the chip), the memory budget `silica fit` judges models against (the Apple GPU\n"
    "working set, or RAM / the cgroup limit), the kernel sets in use (matmul and\n"
    "f16/bf16 conversions; SILICA_SIMD=scalar|avx2|avx512|amx|neon|neondot caps both),\n"
    "whether prompts run on AMX int8 tiles and why not (SILICA_NO_AMX=1 turns them off),\n"
    "silica version and build options, and the Vulkan devices the GPU engine can use\n"
    "(name, type, memory heaps, subgroup size, fp16/int8 arithmetic, int8 dot products\n"
    "(the GGUF matmuls use them; SILICA_GPU_INT_DOT=0 does not), 16/8-bit storage;\n"
    "`--device gpu:N` takes the index listed).\n\n"
    "options:\n  --json        machine-readable output\n"
    "  --bandwidth   measure memory read bandwidth (multi-threaded, about 1 s) and keep the\n"
    "                figure in the store's directory ($SILICA_HOME or ~/.cache/silica,\n"
    "                bandwidth.json): `silica fit` then gives this machine's speed ceiling\n"
    "  --help        this text\n";

/* The Vulkan devices (GPU engine): JSON {"built", "devices": [...], "error"}. */
static cJSON *gpu_json(void) {
    cJSON *g = cJSON_CreateObject();
    cJSON_AddBoolToObject(g, "built", sl_gpu_built());
    sl_gpu_device_info *d = NULL;
    int n = 0;
    sl_error err = {0};
    if (sl_gpu_devices(&d, &n, &err)) cJSON_AddStringToObject(g, "error", err.msg);
    cJSON *a = cJSON_AddArrayToObject(g, "devices");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", d[i].index);
        cJSON_AddStringToObject(o, "name", d[i].name);
        cJSON_AddStringToObject(o, "type", d[i].type);
        cJSON_AddStringToObject(o, "api_version", d[i].api_version);
        cJSON_AddStringToObject(o, "driver", d[i].driver);
        cJSON_AddNumberToObject(o, "vendor_id", d[i].vendor_id);
        cJSON_AddNumberToObject(o, "device_id", d[i].device_id);
        cJSON *hs = cJSON_AddArrayToObject(o, "memory_heaps");
        for (int h = 0; h < d[i].n_heaps; h++) {
            cJSON *ho = cJSON_CreateObject();
            cJSON_AddNumberToObject(ho, "bytes", (double)d[i].heap_bytes[h]);
            cJSON_AddBoolToObject(ho, "device_local", d[i].heap_device_local[h]);
            cJSON_AddItemToArray(hs, ho);
        }
        cJSON_AddNumberToObject(o, "subgroup_size", d[i].subgroup_size);
        cJSON_AddBoolToObject(o, "fp16", d[i].fp16);
        cJSON_AddBoolToObject(o, "int8", d[i].int8);
        cJSON_AddBoolToObject(o, "int8_dot_product", d[i].int_dot);
        cJSON_AddBoolToObject(o, "storage_16bit", d[i].storage16);
        cJSON_AddBoolToObject(o, "storage_8bit", d[i].storage8);
        cJSON_AddBoolToObject(o, "usable", d[i].usable);
        cJSON_AddItemToArray(a, o);
    }
    free(d);
    return g;
}

static void gpu_text(void) {
    sl_gpu_device_info *d = NULL;
    int n = 0;
    sl_error err = {0};
    if (sl_gpu_devices(&d, &n, &err)) {
        printf("gpu:      %s\n", err.msg);
        return;
    }
    if (n == 0) printf("gpu:      no Vulkan device\n");
    for (int i = 0; i < n; i++) {
        char b[32];
        printf("gpu %d:    %s (%s, Vulkan %s%s%s)\n          heaps", i, d[i].name, d[i].type, d[i].api_version,
               d[i].driver[0] ? ", " : "", d[i].driver);
        for (int h = 0; h < d[i].n_heaps; h++)
            printf("%s %s%s", h ? "," : "", cli_human_bytes(d[i].heap_bytes[h], b, sizeof b),
                   d[i].heap_device_local[h] ? " device-local" : "");
        printf("; subgroup %u; fp16 %s, int8 %s, int8 dot products %s; 16-bit storage %s, 8-bit storage %s%s\n",
               d[i].subgroup_size, d[i].fp16 ? "yes" : "no", d[i].int8 ? "yes" : "no", d[i].int_dot ? "yes" : "no",
               d[i].storage16 ? "yes" : "no",
               d[i].storage8 ? "yes" : "no", d[i].usable ? "" : "; not usable by the GPU engine");
    }
    free(d);
}

/* PRETTY_NAME from /etc/os-release ("Debian GNU/Linux 12 (bookworm)"), or "" */
static void os_pretty_name(char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen("/etc/os-release", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "PRETTY_NAME=", 12) != 0) continue;
        const char *v = line + 12;
        if (*v == '"') v++;
        size_t l = strcspn(v, "\"\n");
        if (l >= cap) l = cap - 1;
        memcpy(buf, v, l);
        buf[l] = 0;
        break;
    }
    fclose(f);
}

int cmd_doctor(int argc, char **argv) {
    bool json = false, bandwidth = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { fputs(k_help, stdout); return 0; }
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--bandwidth") == 0) bandwidth = true;
        else return cli_usage("doctor", "unexpected argument '%s'", argv[i]);
    }
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    char pretty[128];
    os_pretty_name(pretty, sizeof pretty);
    const sl_cpu_features *c = sl_cpu();
    sl_mem_host m;
    sl_mem_host_probe(&m);
    double gbps = 0;
    if (bandwidth) {
        sl_error err = {0};
        if (sl_mem_bandwidth(0, 512 * SL_MIB, 1.0, &gbps, &err)) return cli_fail(&err);
        if (sl_mem_bandwidth_save(NULL, gbps, 0, &err))   /* fit works without it: say so, go on */
            fprintf(stderr, "silica: warning: bandwidth not saved for `silica fit`: %s\n", err.msg);
    }
    struct { const char *name; bool on; } feats[] = {
        {"sse4.2", c->sse42}, {"avx", c->avx}, {"avx2", c->avx2}, {"fma", c->fma}, {"f16c", c->f16c},
        {"avx512f", c->avx512f}, {"avx512bw", c->avx512bw}, {"avx512vl", c->avx512vl},
        {"avx512vnni", c->avx512vnni}, {"avx512bf16", c->avx512bf16}, {"avxvnni", c->avxvnni},
        {"amx-tile", c->amx_tile}, {"amx-int8", c->amx_int8}, {"amx-bf16", c->amx_bf16},
        {"neon", c->neon}, {"fp16", c->fp16}, {"dotprod", c->dotprod}, {"i8mm", c->i8mm}, {"bf16", c->bf16},
        {"sve", c->sve},
    };
    size_t nf = sizeof feats / sizeof feats[0];
    const char *amx_why = NULL;
    bool amx_on = sl_engine_amx(&amx_why) != 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "silica_version", sl_version());
        cJSON_AddStringToObject(o, "build", sl_build_options());
        cJSON *os = cJSON_AddObjectToObject(o, "os");
        cJSON_AddStringToObject(os, "name", u.sysname);
        cJSON_AddStringToObject(os, "release", u.release);
        cJSON_AddStringToObject(os, "machine", u.machine);
        if (pretty[0]) cJSON_AddStringToObject(os, "pretty_name", pretty);
        cJSON *cpu = cJSON_AddObjectToObject(o, "cpu");
        cJSON_AddStringToObject(cpu, "arch", c->arch);
        cJSON_AddStringToObject(cpu, "model", c->model);
        cJSON_AddNumberToObject(cpu, "cores", c->cores_logical);
        cJSON_AddNumberToObject(cpu, "cores_physical", c->cores_physical);
        cJSON_AddStringToObject(cpu, "dtype_kernels", sl_dtype_kernels());
        cJSON_AddStringToObject(cpu, "engine_kernels", sl_engine_kernels());
        cJSON *amx = cJSON_AddObjectToObject(cpu, "amx");
        cJSON_AddBoolToObject(amx, "in_use", amx_on);
        cJSON_AddStringToObject(amx, "detail", amx_why);
        cJSON *fs = cJSON_AddArrayToObject(cpu, "features");
        for (size_t i = 0; i < nf; i++)
            if (feats[i].on) cJSON_AddItemToArray(fs, cJSON_CreateString(feats[i].name));
        cJSON *mem = cJSON_AddObjectToObject(o, "memory");
        cJSON_AddNumberToObject(mem, "total_bytes", (double)m.total_bytes);
        cJSON_AddNumberToObject(mem, "available_bytes", (double)m.available_bytes);
        cJSON_AddNumberToObject(mem, "swap_total_bytes", (double)m.swap_total_bytes);
        cJSON_AddNumberToObject(mem, "swap_free_bytes", (double)m.swap_free_bytes);
        cJSON_AddNumberToObject(mem, "budget_bytes", (double)m.budget_bytes);
        cJSON_AddStringToObject(mem, "budget_source", m.budget_source);
        cJSON_AddNumberToObject(mem, "rss_bytes", (double)sl_mem_rss());
        cJSON *cg = cJSON_AddObjectToObject(mem, "cgroup");
        cJSON_AddNumberToObject(cg, "version", m.cgroup_version);
        if (m.cgroup_version) cJSON_AddStringToObject(cg, "path", m.cgroup_path);
        cJSON_AddNumberToObject(cg, "limit_bytes", (double)m.cgroup_limit_bytes);
        cJSON_AddNumberToObject(cg, "usage_bytes", (double)m.cgroup_usage_bytes);
        cJSON_AddNumberToObject(cg, "swap_limit_bytes", (double)m.cgroup_swap_limit_bytes);
        if (m.cgroup_note[0]) cJSON_AddStringToObject(cg, "note", m.cgroup_note);
        if (m.apple || m.hw_memsize) {
            cJSON *mac = cJSON_AddObjectToObject(o, "macos");
            cJSON_AddNumberToObject(mac, "hw_memsize", (double)m.hw_memsize);
            cJSON_AddNumberToObject(mac, "iogpu_wired_limit_mb", (double)m.wired_limit_mb);
            cJSON_AddStringToObject(mac, "chip", m.chip);
            cJSON_AddNumberToObject(mac, "gpu_working_set_bytes", (double)m.budget_bytes);
        }
        if (bandwidth) cJSON_AddNumberToObject(mem, "read_bandwidth_gbps", gbps);
        cJSON_AddItemToObject(o, "gpu", gpu_json());
        cli_print_json(o);
        return 0;
    }
    char b1[32], b2[32];
    printf("silica %s (%s)\n", sl_version(), sl_build_options());
    if (pretty[0]) printf("os:       %s, %s %s (%s)\n", pretty, u.sysname, u.release, u.machine);
    else printf("os:       %s %s (%s)\n", u.sysname, u.release, u.machine);
    printf("cpu:      %s\n", c->model[0] ? c->model : "(unknown model)");
    if (c->cores_physical > 0)
        printf("arch:     %s, %d logical cores, %d physical\n", c->arch, c->cores_logical, c->cores_physical);
    else printf("arch:     %s, %d logical cores\n", c->arch, c->cores_logical);
    printf("features:");
    for (size_t i = 0; i < nf; i++)
        if (feats[i].on) printf(" %s", feats[i].name);
    printf("\nkernels:  %s (matmul / quantized dots), %s (f16/bf16 conversions)\n", sl_engine_kernels(),
           sl_dtype_kernels());
    printf("amx:      %s\n", amx_why);
    printf("memory:   %s total, %s available\n", cli_human_bytes(m.total_bytes, b1, sizeof b1),
           cli_human_bytes(m.available_bytes, b2, sizeof b2));
    printf("swap:     %s total, %s free\n", cli_human_bytes(m.swap_total_bytes, b1, sizeof b1),
           cli_human_bytes(m.swap_free_bytes, b2, sizeof b2));
    if (m.cgroup_version) {
        printf("cgroup:   v%d %s: limit %s", m.cgroup_version, m.cgroup_path,
               m.cgroup_limit_bytes ? cli_human_bytes(m.cgroup_limit_bytes, b1, sizeof b1) : "none");
        printf(", usage %s", cli_human_bytes(m.cgroup_usage_bytes, b2, sizeof b2));
        if (m.cgroup_swap_limit_bytes) printf(", swap limit %s", cli_human_bytes(m.cgroup_swap_limit_bytes, b1, sizeof b1));
        printf("\n");
    }
    if (m.cgroup_note[0]) printf("cgroup:   %s\n", m.cgroup_note);
    if (m.apple || m.hw_memsize) {
        printf("macos:    hw.memsize %s, iogpu.wired_limit_mb %llu%s, chip %s\n",
               cli_human_bytes(m.hw_memsize, b1, sizeof b1), (unsigned long long)m.wired_limit_mb,
               m.wired_limit_mb ? "" : " (OS default)", m.chip[0] ? m.chip : "unknown");
    }
    printf("budget:   %s (%s)\n", cli_human_bytes(m.budget_bytes, b1, sizeof b1), m.budget_source);
    if (bandwidth) printf("bandwidth: %.1f GB/s measured read (%d threads)\n", gbps, c->cores_logical);
    gpu_text();
    return 0;
}
