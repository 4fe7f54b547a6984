/* cmd_convert.c — placeholder until the writers land. */
#include <stdio.h>
#include "cli.h"
int cmd_convert(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "silica convert: unavailable in this build\n");
    return 2;
}
