/*
 * cmd_quantize.c — `silica quantize SRC DST [-q options]`: quantize a model
 * into its own format family (HF / mlx-lm directory -> mlx-lm directory,
 * GGUF -> GGUF).  Shares option parsing and output with `convert`.
 */
#include "cli.h"

int cmd_quantize(int argc, char **argv) { return cli_convert_main(argc, argv, true); }
