/*
 * util.c — error/usage printing, option parsing and JSON output for the CLI.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const sl_error *err) {
    fprintf(stderr, "silica: error: %s\n", err && err->msg[0] ? err->msg : "unknown error");
    return 2;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "silica %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see `silica %s --help`)\n", cmd);
    va_end(ap);
    return 2;
}

bool cli_is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

const char *cli_opt_value(int argc, char **argv, int *i, const char *opt, bool *missing) {
    size_t l = strlen(opt);
    const char *a = argv[*i];
    if (strncmp(a, opt, l) != 0) return NULL;
    if (a[l] == '=') return a + l + 1;
    if (a[l] != 0) return NULL;
    if (*i + 1 >= argc) {
        if (missing) *missing = true;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

void cli_print_json(cJSON *j) {
    char *s = isatty(1) ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    cJSON_Delete(j);
}

const char *cli_human_bytes(unsigned long long n, char *buf, int len) {
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int k = 0;
    while (v >= 1024 && k < 4) { v /= 1024; k++; }
    if (k == 0) snprintf(buf, (size_t)len, "%llu B", n);
    else snprintf(buf, (size_t)len, "%.2f %s", v, u[k]);
    return buf;
}
