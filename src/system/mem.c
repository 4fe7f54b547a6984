/*
 * mem.c — this process's resident memory and this machine's memory budget:
 * /proc/meminfo, cgroup v1 and v2 limits on Linux, hw.memsize,
 * iogpu.wired_limit_mb and the chip on macOS, and the Apple GPU working-set
 * rule (recommendedMaxWorkingSetSize: 2/3 of RAM up to 36 GiB, 3/4 above,
 * replaced by a non-zero iogpu.wired_limit_mb; see
 * Apple's MTLDevice.recommendedMaxWorkingSetSize documentation and MLX's
 * mx.device_info(); part6/README.md).
 *
 * Invariants: probes never fail and never crash on odd files — a missing,
 * unreadable or malformed cgroup file leaves the value 0 and one line in
 * cgroup_note naming the file.  "max" and the v1 "no limit" sentinel
 * (>= 2^62) both mean no limit.
 */
#include "silica/memory.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "silica/cpu.h"

#if defined(__APPLE__)
#include <mach/mach.h>
#include <sys/sysctl.h>
#include <sys/types.h>
#endif

uint64_t sl_mem_rss(void) {
#if defined(__APPLE__)
    mach_task_basic_info_data_t info;
    mach_msg_type_number_t n = MACH_TASK_BASIC_INFO_COUNT;
    if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, (task_info_t)&info, &n) != KERN_SUCCESS) return 0;
    return (uint64_t)info.resident_size;
#else
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int ok = fscanf(f, "%llu %llu", &size, &res) == 2;
    fclose(f);
    long ps = sysconf(_SC_PAGESIZE);
    return ok && ps > 0 ? (uint64_t)res * (uint64_t)ps : 0;
#endif
}

/* Linux: VmHWM of /proc/self/status, the high-water mark of THIS address
 * space.  getrusage's ru_maxrss is not used there: it survives fork + exec,
 * so a process started by a large parent (a Python test harness holding
 * arrays) reports the parent's peak as its own. */
uint64_t sl_mem_peak_rss(void) {
#if !defined(__APPLE__)
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        unsigned long long kb = 0;
        bool found = false;
        while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "VmHWM: %llu kB", &kb) == 1;
        fclose(f);
        if (found) return (uint64_t)kb * 1024u;
    }
#endif
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0) return 0;
#if defined(__APPLE__)
    return (uint64_t)ru.ru_maxrss;            /* bytes on macOS */
#else
    return (uint64_t)ru.ru_maxrss * 1024u;    /* KiB on Linux */
#endif
}

uint64_t sl_mem_apple_budget(uint64_t ram, uint64_t wired_limit_mb) {
    if (wired_limit_mb) return wired_limit_mb * SL_MIB;
    if (ram <= 36ull * SL_GIB) return ram / 3 * 2 + (ram % 3) * 2 / 3;
    return ram / 4 * 3 + (ram % 4) * 3 / 4;
}

int sl_mem_parse_size(const char *s, uint64_t *out) {
    if (!s || !*s) return SL_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0) return SL_EINVAL;
    while (*end == ' ') end++;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    case 'B': break;
    default: return SL_EINVAL;
    }
    if (mul > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return SL_EINVAL;
    double b = v * mul;
    if (b >= 18446744073709549568.0) return SL_EINVAL;
    *out = (uint64_t)b;
    return 0;
}

/* ---- cgroups (Linux only) ---- */
#if !defined(__APPLE__)

static void note(sl_mem_host *h, const char *fmt, const char *a, const char *b) {
    if (h->cgroup_note[0]) return;   /* keep the first */
    snprintf(h->cgroup_note, sizeof h->cgroup_note, fmt, a, b);
}

/* Read one number (or "max") from path.  Returns 1 on a value, 0 when the
 * file is absent, -1 when it is unreadable or malformed (noted). */
static int read_limit(sl_mem_host *h, const char *path, uint64_t *out) {
    *out = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        note(h, "%s: unreadable (%s)", path, strerror(errno));
        return -1;
    }
    char buf[64] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        note(h, "%s: unreadable (%s)", path, "read error");
        return -1;
    }
    buf[n] = 0;
    char *p = buf;
    while (*p == ' ') p++;
    if (strncmp(p, "max", 3) == 0 && (p[3] == '\n' || p[3] == 0)) return 1;   /* no limit */
    if (!isdigit((unsigned char)*p)) {
        note(h, "%s: expected a byte count or \"max\", found '%.20s'", path, p);
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || (*end != '\n' && *end != 0)) {
        note(h, "%s: expected a byte count or \"max\", found '%.20s'", path, p);
        return -1;
    }
    *out = v >= (1ull << 62) ? 0 : (uint64_t)v;
    return 1;
}

static const char *env_or(const char *k, const char *dflt) {
    const char *v = getenv(k);
    return v && *v ? v : dflt;
}

/* Find the memory cgroup of this process: "0::/path" (v2) or
 * "N:...memory...:/path" (v1) in /proc/self/cgroup. */
static void probe_cgroup(sl_mem_host *h) {
    const char *root = env_or("SILICA_CGROUP_ROOT", "/sys/fs/cgroup");
    const char *self = env_or("SILICA_PROC_CGROUP", "/proc/self/cgroup");
    FILE *f = fopen(self, "r");
    if (!f) {
        if (errno != ENOENT) note(h, "%s: unreadable (%s)", self, strerror(errno));
        return;
    }
    char line[1024], v1[512] = "", v2[512] = "";
    bool have1 = false, have2 = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || !c2) continue;
        *c1 = 0;
        *c2 = 0;
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (strlen(path) >= sizeof v1) continue;
        if (strcmp(line, "0") == 0 && !*ctrls) {
            snprintf(v2, sizeof v2, "%s", path);
            have2 = true;
        } else {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", ctrls);
            for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ","))
                if (strcmp(tok, "memory") == 0) {
                    snprintf(v1, sizeof v1, "%s", path);
                    have1 = true;
                }
        }
    }
    fclose(f);
    char dir[1024], file[1200];
    uint64_t v;
    if (have1) {
        /* v1: try the process's own cgroup, then the mount root (containers
         * often see only "/" mounted) */
        const char *cands[2] = {v1, ""};
        for (int k = 0; k < 2; k++) {
            snprintf(dir, sizeof dir, "%s/memory%s", root, cands[k]);
            snprintf(file, sizeof file, "%s/memory.limit_in_bytes", dir);
            int r = read_limit(h, file, &v);
            if (r == 0) continue;
            h->cgroup_version = 1;
            snprintf(h->cgroup_path, sizeof h->cgroup_path, "%s", dir);
            if (r > 0) h->cgroup_limit_bytes = v;
            snprintf(file, sizeof file, "%s/memory.usage_in_bytes", dir);
            if (read_limit(h, file, &v) > 0) h->cgroup_usage_bytes = v;
            snprintf(file, sizeof file, "%s/memory.memsw.limit_in_bytes", dir);
            if (read_limit(h, file, &v) > 0 && v > h->cgroup_limit_bytes && h->cgroup_limit_bytes)
                h->cgroup_swap_limit_bytes = v - h->cgroup_limit_bytes;
            return;
        }
    }
    if (have2) {
        const char *mounts[2] = {"", "/unified"};
        for (int k = 0; k < 2; k++) {
            snprintf(dir, sizeof dir, "%s%s%s", root, mounts[k], strcmp(v2, "/") == 0 ? "" : v2);
            snprintf(file, sizeof file, "%s/memory.max", dir);
            int r = read_limit(h, file, &v);
            if (r == 0) {
                /* the root cgroup has no memory.max: still v2 if memory.current exists */
                snprintf(file, sizeof file, "%s/memory.current", dir);
                uint64_t cur;
                if (read_limit(h, file, &cur) <= 0) continue;
                h->cgroup_usage_bytes = cur;
                h->cgroup_version = 2;
                snprintf(h->cgroup_path, sizeof h->cgroup_path, "%s", dir);
                return;
            }
            h->cgroup_version = 2;
            snprintf(h->cgroup_path, sizeof h->cgroup_path, "%s", dir);
            if (r > 0) h->cgroup_limit_bytes = v;
            snprintf(file, sizeof file, "%s/memory.current", dir);
            if (read_limit(h, file, &v) > 0) h->cgroup_usage_bytes = v;
            snprintf(file, sizeof file, "%s/memory.swap.max", dir);
            if (read_limit(h, file, &v) > 0) h->cgroup_swap_limit_bytes = v;
            return;
        }
    }
}

#endif /* !__APPLE__ */

#if defined(__APPLE__)
static uint64_t sysctl_u64(const char *name) {
    uint64_t v = 0;
    size_t len = sizeof v;
    if (sysctlbyname(name, &v, &len, NULL, 0) != 0) return 0;
    if (len == sizeof(uint32_t)) {
        uint32_t w;
        memcpy(&w, &v, sizeof w);
        return w;
    }
    return v;
}
#endif

void sl_mem_host_probe(sl_mem_host *h) {
    memset(h, 0, sizeof *h);
    sl_mem_info mi;
    sl_mem_probe(&mi);
    h->total_bytes = mi.total_bytes;
    h->available_bytes = mi.available_bytes;
    h->swap_total_bytes = mi.swap_total_bytes;
    h->swap_free_bytes = mi.swap_free_bytes;
#if defined(__APPLE__)
    h->hw_memsize = sysctl_u64("hw.memsize");
    h->wired_limit_mb = sysctl_u64("iogpu.wired_limit_mb");
    size_t len = sizeof h->chip - 1;
    if (sysctlbyname("machdep.cpu.brand_string", h->chip, &len, NULL, 0) != 0) h->chip[0] = 0;
    if (h->hw_memsize) h->total_bytes = h->hw_memsize;
#if defined(__aarch64__) || defined(__arm64__)
    h->apple = true;
#endif
#else
    probe_cgroup(h);
#endif
    if (h->apple) {
        h->budget_bytes = sl_mem_apple_budget(h->total_bytes, h->wired_limit_mb);
        snprintf(h->budget_source, sizeof h->budget_source, "%s",
                 h->wired_limit_mb ? "iogpu.wired_limit_mb"
                                   : "Metal working-set rule (2/3 of RAM up to 36 GiB, 3/4 above)");
    } else if (h->cgroup_limit_bytes && h->cgroup_limit_bytes < h->total_bytes) {
        h->budget_bytes = h->cgroup_limit_bytes;
        snprintf(h->budget_source, sizeof h->budget_source, "cgroup v%d memory limit", h->cgroup_version);
    } else {
        h->budget_bytes = h->total_bytes;
        snprintf(h->budget_source, sizeof h->budget_source, "physical RAM (CPU inference)");
    }
}
