/* cmd_scan.c — placeholder until the PyTorch reader lands. */
#include <stdio.h>
#include "cli.h"
int cmd_scan(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "silica scan: unavailable in this build\n");
    return 2;
}
