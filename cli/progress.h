/* progress.h — terminal progress bar for long CLI work (TTY only). */
#ifndef SILICA_CLI_PROGRESS_H
#define SILICA_CLI_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

typedef struct cli_progress {
    bool enabled, drawn;
    double start, last;
    const char *label;
} cli_progress;

void cli_progress_init(cli_progress *p, const char *label);
void cli_progress_cb(void *ctx, uint64_t done, uint64_t total, const char *what);  /* sl_progress_fn */
void cli_progress_done(cli_progress *p);
#endif
