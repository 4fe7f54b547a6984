/*
 * bandwidth_saved.c — the memory read bandwidth `silica doctor --bandwidth`
 * measured, kept so that `silica fit` can give this machine's decode-speed
 * ceiling without measuring again: <silica home>/bandwidth.json,
 * {"gbps", "threads", "cpu", "cores_logical", "ram_bytes", "measured_unix"}.
 *
 * Invariants: a saved figure counts only on the machine that measured it
 * (same CPU model, logical core count and RAM size), so a home directory
 * shared or copied between machines never lends one machine's figure to
 * another; the file is written atomically (io.h outfile); a missing,
 * unreadable or foreign file reads as "not measured", never as an error.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/fsutil.h"
#include "silica/io.h"
#include "silica/registry.h"
#include "silica/cpu.h"
#include "silica/memory.h"

static char *saved_path(const char *home) {
    char *h = home ? strdup(home) : sl_reg_default_home();
    char *p = h ? sl_path_join(h, "bandwidth.json") : NULL;
    free(h);
    return p;
}

static uint64_t ram_bytes(void) {
    sl_mem_info mi;
    memset(&mi, 0, sizeof mi);
    sl_mem_probe(&mi);
    return mi.total_bytes;
}

int sl_mem_bandwidth_save(const char *home, double gbps, int threads, sl_error *err) {
    char *h = home ? strdup(home) : sl_reg_default_home();
    char *p = saved_path(home);
    if (!h || !p) {
        free(h);
        free(p);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    int rc = sl_mkdir_p(h, err);
    free(h);
    const sl_cpu_features *c = sl_cpu();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "gbps", gbps);
    cJSON_AddNumberToObject(o, "threads", threads > 0 ? threads : c->cores_logical);
    cJSON_AddStringToObject(o, "cpu", c->model);
    cJSON_AddNumberToObject(o, "cores_logical", c->cores_logical);
    cJSON_AddNumberToObject(o, "ram_bytes", (double)ram_bytes());
    cJSON_AddNumberToObject(o, "measured_unix", (double)time(NULL));
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    sl_outfile f;
    if (!rc && !txt) rc = sl_errorf(err, SL_ENOMEM, "out of memory");
    if (!rc && !(rc = sl_outfile_open(&f, p, err))) {
        if ((rc = sl_outfile_write(&f, txt, strlen(txt), err)) || (rc = sl_outfile_write(&f, "\n", 1, err)))
            sl_outfile_abort(&f);
        else
            rc = sl_outfile_commit(&f, err);
    }
    cJSON_free(txt);
    free(p);
    return rc;
}

bool sl_mem_bandwidth_saved(const char *home, double *gbps, int64_t *measured_unix) {
    *gbps = 0;
    if (measured_unix) *measured_unix = 0;
    char *p = saved_path(home), *txt = NULL;
    size_t len = 0;
    bool ok = p && sl_path_exists(p) && sl_read_file(p, 1 << 16, &txt, &len, NULL) == 0;
    free(p);
    cJSON *o = ok ? cJSON_ParseWithLength(txt, len) : NULL;
    free(txt);
    const sl_cpu_features *c = sl_cpu();
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "gbps"), *cpu = cJSON_GetObjectItemCaseSensitive(o, "cpu");
    const cJSON *cores = cJSON_GetObjectItemCaseSensitive(o, "cores_logical");
    const cJSON *ram = cJSON_GetObjectItemCaseSensitive(o, "ram_bytes");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(o, "measured_unix");
    ok = cJSON_IsNumber(g) && g->valuedouble > 0 && g->valuedouble < 1e5 && cJSON_IsString(cpu) &&
         strcmp(cpu->valuestring, c->model) == 0 && cJSON_IsNumber(cores) && cores->valueint == c->cores_logical &&
         cJSON_IsNumber(ram) && ram->valuedouble == (double)ram_bytes();
    if (ok) {
        *gbps = g->valuedouble;
        if (measured_unix && cJSON_IsNumber(when) && when->valuedouble >= 0 && when->valuedouble < 1e15) *measured_unix = (int64_t)when->valuedouble;
    }
    cJSON_Delete(o);
    return ok;
}
