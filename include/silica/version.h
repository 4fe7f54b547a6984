/*
 * silica/version.h — the library's version (SILICA_VERSION at compile time,
 * sl_version at run time) and how it was built.
 */
#ifndef SILICA_VERSION_H
#define SILICA_VERSION_H

#include "silica/api.h"

#define SILICA_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif
SL_API const char *sl_version(void);
SL_API const char *sl_build_options(void);   /* compiler, build type, sanitizers, SIMD compiled in */
#ifdef __cplusplus
}
#endif
#endif
