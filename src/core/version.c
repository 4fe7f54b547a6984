/* version.c — version and build description reported by `silica --version` and `doctor`. */
#include "silica/version.h"

#ifndef SILICA_BUILD_OPTIONS
#define SILICA_BUILD_OPTIONS "unknown"
#endif

const char *sl_version(void) { return SILICA_VERSION; }
const char *sl_build_options(void) { return SILICA_BUILD_OPTIONS; }
