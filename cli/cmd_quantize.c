/*
 * cmd_quantize.c — `silica quantize SRC DST [-q options]`: quantize a model
 * into its own format family (HF / mlx-lm directory -> mlx-lm directory,
 * GGUF -> GGUF).  Shares option parsing and output with `convert`.
 */
#include <string.h>

#include "cli.h"

int cmd_quantize(int argc, char **argv) {
    for (int i = 1; i < argc; i++)   /* --budget: pick the recipe (cmd_quantize_budget.c) */
        if (strcmp(argv[i], "--budget") == 0 || strncmp(argv[i], "--budget=", 9) == 0) return cmd_quantize_budget(argc, argv);
    return cli_convert_main(argc, argv, true);
}
