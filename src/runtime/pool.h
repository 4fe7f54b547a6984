/*
 * pool.h — a fixed pthread pool for data-parallel loops: sl_pool_run calls
 * fn(arg, tid, n) on every thread (the caller is thread 0) and returns when
 * all are done.  One job at a time; jobs split their work by tid
 * (sl_split) or claim it in chunks from a shared counter (sl_claim).
 */
#ifndef SILICA_RUNTIME_POOL_H
#define SILICA_RUNTIME_POOL_H

#include <stdint.h>

typedef struct sl_pool sl_pool;
typedef void (*sl_pool_fn)(void *arg, int tid, int n_threads);

/* NULL on failure; n_threads >= 1, capped by SILICA_MAX_THREADS when set. */
sl_pool *sl_pool_new(int n_threads);
int sl_pool_max_threads(void);          /* the SILICA_MAX_THREADS cap, 0 = none */
void sl_pool_free(sl_pool *p);
int sl_pool_size(const sl_pool *p);
void sl_pool_run(sl_pool *p, sl_pool_fn fn, void *arg);
/* How often a worker or the caller gave up spinning and slept (diagnostics). */
unsigned long sl_pool_sleeps(const sl_pool *p);
/* The spin budget (ns) after a wait of waited_ns, at most max_ns (pool.c says the rule). */
uint64_t sl_pool_adapt_budget(uint64_t budget, uint64_t waited_ns, uint64_t max_ns);

/* Even split of [0, n) for thread tid of nt: [*lo, *hi). */
static inline void sl_split(long n, int tid, int nt, long *lo, long *hi) {
    *lo = n * tid / nt;
    *hi = n * (tid + 1) / nt;
}

/* Dynamic split: claim the next `chunk` items of a counter shared by the
 * job's threads (start it at 0); returns the first claimed index, >= the
 * total when nothing is left. */
static inline long sl_claim(long *next, long chunk) { return __atomic_fetch_add(next, chunk, __ATOMIC_RELAXED); }

#endif
