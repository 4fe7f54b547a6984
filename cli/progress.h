/* progress.h — terminal progress bars for long CLI work (TTY only): one line
 * (convert) or one line per item plus a total line (pull --jobs N). */
#ifndef SILICA_CLI_PROGRESS_H
#define SILICA_CLI_PROGRESS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define CLI_PROGRESS_SLOTS 64

typedef struct cli_progress_row {
    const char *name;
    uint64_t done, total;
} cli_progress_row;

typedef struct cli_progress {
    bool enabled, drawn;
    double start, last;
    const char *label;
    const char *unit;      /* NULL: amounts are bytes; else counts of this unit ("tok"), single-line bar */
    int lines;             /* lines of the last multi-line draw (cursor on the last) */
    bool have_base;
    uint64_t base;         /* total done at the first draw (resumed bytes do not count as rate) */
    struct {               /* per-row rate: first sight of each name */
        char name[128];
        double t0;
        uint64_t d0;
        bool used;
    } slot[CLI_PROGRESS_SLOTS];
} cli_progress;

void cli_progress_init(cli_progress *p, const char *label);
void cli_progress_cb(void *ctx, uint64_t done, uint64_t total, const char *what);  /* sl_progress_fn */
/* A single-line bar counting `unit` (e.g. "tok": "12000/130000 tok 1520 tok/s ETA 1m25s"). */
void cli_progress_init_count(cli_progress *p, const char *label, const char *unit);
/* Redraw in place: one line per row (name, bytes/size, rate) and a total line
 * (label, bar, bytes, rate, ETA, then `extra`).  force: draw even if < 0.1 s
 * since the last draw. */
void cli_progress_rows(cli_progress *p, const cli_progress_row *rows, size_t n, uint64_t done, uint64_t total,
                       const char *extra, bool force);
void cli_progress_done(cli_progress *p);
#endif
