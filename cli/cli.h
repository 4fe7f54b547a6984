/*
 * cli.h — shared plumbing of the `silica` command-line tool.
 * Exit codes: 0 success, 1 a check failed (e.g. `scan` found an unsafe
 * global), 2 bad input or usage (one line on stderr), 130 interrupted.
 */
#ifndef SILICA_CLI_H
#define SILICA_CLI_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "silica/silica.h"

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the command name */
    const char *summary;
} cli_command;

int cmd_doctor(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_quantize_budget(int argc, char **argv);   /* cmd_quantize_budget.c: quantize --budget */
/* convert / quantize share one option parser (cmd_convert.c). */
int cli_convert_main(int argc, char **argv, bool quantize_cmd);
int cmd_template(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);   /* cmd_logits.c */
int cmd_compare(int argc, char **argv);  /* cmd_compare.c */
int cmd_run(int argc, char **argv);      /* cmd_run.c */
int cmd_chat(int argc, char **argv);     /* cmd_chat.c */
int cmd_ppl(int argc, char **argv);      /* cmd_ppl.c */
int cmd_bench(int argc, char **argv);    /* cmd_bench.c */
int cmd_serve(int argc, char **argv);    /* cmd_serve.c */
int cmd_list(int argc, char **argv);     /* cmd_registry.c */
int cmd_show(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_du(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_pull(int argc, char **argv);     /* cmd_pull.c */
int cmd_lfs(int argc, char **argv);      /* cmd_lfs.c */
int cmd_fit(int argc, char **argv);      /* cmd_fit.c */
int cmd_plot(int argc, char **argv);     /* cmd_plot.c */
/* A store name (org/name[@rev][:tag]) in *path becomes its local directory
 * (digest-checked on first use); *name gets the original.  0 or 2 (printed). */
int cli_resolve_store(const char **path, const char **name);
/* Register a conversion's output (d->command is filled from argv); label
 * gets "org/name@revision".  0, or 2 with the error printed. */
int cli_register_derived(const sl_reg_derived *d, int argc, char **argv, char *label, size_t n);

/* Print "silica: error: <msg>" and return 2. */
int cli_fail(const sl_error *err);
/* Print "silica <cmd>: <message>" plus a --help hint; return 2. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
bool cli_is_help(const char *arg);
/* Option value: "--opt VALUE" or "--opt=VALUE"; advances *i. NULL if not this option. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *opt, bool *missing);
/* Print JSON (pretty when stdout is a TTY, compact otherwise) + newline; frees j. */
void cli_print_json(cJSON *j);
/* "1.5 GiB" style */
const char *cli_human_bytes(unsigned long long n, char *buf, int len);

#endif
