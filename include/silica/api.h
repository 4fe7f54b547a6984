/*
 * silica/api.h — SL_API marks the functions libsilica exports.
 *
 * The library is built with -fvisibility=hidden: a function is visible
 * outside libsilica.so exactly when its declaration in a public header (include/silica/)
 * carries SL_API.  Everything else (the modules' private headers under src/)
 * links inside the library only.  tests/py/test_exports.py checks that
 * `nm -D` of the shared library and these headers list the same functions.
 */
#ifndef SILICA_API_H
#define SILICA_API_H

#if defined(__GNUC__) || defined(__clang__)
#define SL_API __attribute__((visibility("default")))
#else
#define SL_API
#endif

#endif
