/*
 * pool.c — the thread pool behind every parallel loop of the engine.
 *
 * Generation runs several short jobs per layer (a few hundred microseconds
 * each on a 16-core machine), so handing a job out and collecting it must
 * not go through the kernel: between jobs a worker spins on `gen` (with a
 * CPU pause) before sleeping on a condition variable, and the caller spins
 * on `pending` likewise.  The spin is bounded by wall time, not by a count
 * of pauses (a pause takes 10 to 150 cycles depending on the CPU), and the
 * bound adapts per thread (sl_pool_adapt_budget): at most spin_ns — 1 ms by
 * default, as llama.cpp's threads poll before sleeping; 20 us when the pool
 * has more threads than the machine has CPUs; SILICA_POOL_SPIN_US overrides
 * it — halved after each wait longer than a quarter of that, doubled after a
 * shorter one, so a machine loaded by other processes (where a spinner takes
 * the CPU that the awaited thread needs, and waits grow long) soon sees plain
 * sleeping instead, and a pool whose waits are short again spins again.
 *
 * Invariants: a job is published by storing fn/arg and `pending`, then
 * bumping `gen` (release) under the mutex; a worker reads fn/arg only after
 * seeing the new `gen` (acquire); the last worker to decrement `pending`
 * signals `done` under the mutex, and sleepers test their condition under
 * it, so no wake-up is lost.  `gen` (read by every spinner) and `pending`
 * (written by every worker) live on separate cache lines.  sl_pool_run
 * returns only after every worker has finished the job, so the job's
 * arguments (on the caller's stack) outlive all uses.  The caller runs as
 * thread 0.  SILICA_MAX_THREADS=N caps every pool (e.g. 1 under qemu-user,
 * whose thread creation hangs on some hosts).
 */
#include "runtime/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct sl_pool {
    int n;
    int quit;
    uint64_t spin_ns, caller_budget;   /* spin budgets: the most, the caller's now */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    sl_pool_fn fn;
    void *arg;
    _Alignas(64) unsigned long gen;
    _Alignas(64) int pending;
    _Alignas(64) unsigned long sleeps;   /* times a worker or the caller slept (sl_pool_sleeps) */
};

typedef struct worker_arg {
    sl_pool *p;
    int tid;
} worker_arg;

/* The spin budget after a wait of waited_ns (spinning, then sleeping if
 * slept) with at most max_ns of spin: a wait that came within a quarter of
 * max_ns was worth spinning through, so the budget doubles (+1 us, so it
 * grows from 0) up to max_ns, whether or not this one slept; a longer one
 * (the awaited thread was descheduled, or the caller did serial work)
 * halves it.  Judging by the wait, not by whether it slept, matters: with
 * "halve after every sleep", one burst of sleeps on a busy moment shrank
 * the budget below the usual gap between jobs, every later wait slept, and
 * the pool stayed in that state for good (a likely cause of 16-thread
 * generation on 16 cores running at 60 or 90 tok/s from one run to the
 * next, with thousands of sleeps: see part9, round 4). */
uint64_t sl_pool_adapt_budget(uint64_t budget, uint64_t waited_ns, uint64_t max_ns) {
    if (waited_ns > max_ns / 4) return budget / 2;
    return budget * 2 + 1000 < max_ns ? budget * 2 + 1000 : max_ns;
}

/* Spin for at most *budget ns until `gen` moves past seen (is_gen) or
 * `pending` reaches 0; returns whether it did (then the budget adapts to
 * this wait here; after a sleep the caller adapts it, see wait_end). */
static bool spin_wait(const sl_pool *p, bool is_gen, unsigned long seen, uint64_t *budget, uint64_t *t0) {
    uint64_t end = 0;
    *t0 = 0;
    for (unsigned i = 1;; i++) {
        if (is_gen ? __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) != seen || __atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)
                   : __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) == 0) {
            *budget = sl_pool_adapt_budget(*budget, *t0 ? now_ns() - *t0 : 0, p->spin_ns);
            return true;
        }
        cpu_relax();
        if ((i & 31) == 0) {
            uint64_t t = now_ns();
            if (!end) *t0 = t, end = t + *budget;
            else if (t >= end) break;
        }
    }
    if (!*t0) *t0 = now_ns();
    return false;
}
/* After a wait that slept: adapt the budget to the whole wait. */
static void wait_end(const sl_pool *p, uint64_t *budget, uint64_t t0) {
    *budget = sl_pool_adapt_budget(*budget, now_ns() - t0, p->spin_ns);
}

static void *worker(void *a) {
    worker_arg *wa = a;
    sl_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned long seen = 0;
    uint64_t budget = p->spin_ns;
    for (;;) {
        uint64_t t0;
        bool spun = spin_wait(p, true, seen, &budget, &t0);
        unsigned long g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            if (!p->quit && p->gen == seen) __atomic_add_fetch(&p->sleeps, 1, __ATOMIC_RELAXED);
            while (!p->quit && p->gen == seen) pthread_cond_wait(&p->work, &p->mu);
            g = p->gen;
            pthread_mutex_unlock(&p->mu);
        }
        if (!spun) wait_end(p, &budget, t0);
        if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) break;
        seen = g;
        p->fn(p->arg, tid, p->n);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

int sl_pool_max_threads(void) {
    const char *e = getenv("SILICA_MAX_THREADS");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 ? (int)v : 0;
}

static uint64_t spin_budget_ns(int n_threads) {
    const char *e = getenv("SILICA_POOL_SPIN_US");
    if (e && *e) {
        long v = strtol(e, NULL, 10);
        return v > 0 ? (uint64_t)v * 1000u : 0;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 && n_threads > cpus ? 20000u : 1000000u;
}

sl_pool *sl_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    int cap = sl_pool_max_threads();
    if (cap && n_threads > cap) n_threads = cap;
    sl_pool *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
    if (!p) return NULL;
    *p = (sl_pool){0};
    p->n = n_threads;
    p->spin_ns = p->caller_budget = spin_budget_ns(n_threads);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) { sl_pool_free(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { p->n = i; sl_pool_free(p); return NULL; }
        wa->p = p;
        wa->tid = i;
        if (pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
            free(wa);
            p->n = i;
            sl_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void sl_pool_free(sl_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int sl_pool_size(const sl_pool *p) { return p ? p->n : 1; }
unsigned long sl_pool_sleeps(const sl_pool *p) { return p ? __atomic_load_n(&p->sleeps, __ATOMIC_RELAXED) : 0; }

void sl_pool_run(sl_pool *p, sl_pool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    __atomic_store_n(&p->pending, p->n - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    uint64_t t0;
    if (!spin_wait(p, false, 0, &p->caller_budget, &t0)) {
        if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) {
            pthread_mutex_lock(&p->mu);
            if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) __atomic_add_fetch(&p->sleeps, 1, __ATOMIC_RELAXED);
            while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&p->done, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        wait_end(p, &p->caller_budget, t0);
    }
}
