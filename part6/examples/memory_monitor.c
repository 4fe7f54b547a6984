/*
 * memory_monitor.c — part 6 example: write a memory time series with the
 * sl_mem_monitor API, the way `silica run/chat --monitor` does.  A pretend
 * KV cache grows by 4 MiB per "token"; the program publishes its counters
 * (sl_mem_monitor_set) while a background thread samples RSS, peak RSS, KV
 * bytes and the token count every 2 ms, and each phase change ("load",
 * "generate", "done") adds a line of its own.  Then:
 *     silica plot mem.jsonl -o mem.svg
 *
 * usage: memory_monitor OUT.jsonl [STEPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "silica/memory.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT.jsonl [STEPS]\n", argv[0]);
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 16;
    if (steps < 1 || steps > 256) steps = 16;
    sl_error err = {0};
    sl_mem_monitor *mon;
    if (sl_mem_monitor_open(argv[1], &mon, &err) || sl_mem_monitor_phase(mon, "load", &err) ||
        sl_mem_monitor_start(mon, 2, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        sl_mem_monitor_close(mon, NULL);
        return 2;
    }
    const size_t step_bytes = 4u << 20;
    unsigned char **kv = calloc((size_t)steps, sizeof *kv);
    int rc = kv ? 0 : 1;
    if (!rc && sl_mem_monitor_phase(mon, "generate", &err)) rc = 2;
    for (int i = 0; i < steps && !rc; i++) {
        if (!(kv[i] = malloc(step_bytes))) { rc = 1; break; }
        memset(kv[i], i + 1, step_bytes);          /* touch: the pages become resident */
        sl_mem_monitor_set(mon, (uint64_t)(i + 1) * step_bytes, (uint64_t)(i + 1));
        struct timespec ts = {0, 5 * 1000 * 1000};  /* 5 ms per "token" */
        nanosleep(&ts, NULL);
    }
    if (!rc && sl_mem_monitor_phase(mon, "done", &err)) rc = 2;
    if (sl_mem_monitor_close(mon, &err) && !rc) rc = 2;   /* stops the thread; the first write error */
    if (rc) fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "out of memory");
    for (int i = 0; kv && i < steps; i++) free(kv[i]);
    free(kv);
    printf("rss %llu bytes, peak %llu bytes\n", (unsigned long long)sl_mem_rss(), (unsigned long long)sl_mem_peak_rss());
    return rc;
}
