/*
 * pool.c — the thread pool behind every parallel loop of the engine.
 *
 * Generation runs about eight short jobs per layer, so waking workers must
 * be cheap: between jobs a worker first spins (POOL_SPIN polls of `gen` with
 * a CPU pause, tens of microseconds) and only then sleeps on a condition
 * variable; the caller likewise spins on `pending` before sleeping.  On an
 * idle machine a job then starts and ends without a system call; on a busy
 * one the spin is bounded and the pool falls back to sleeping.
 *
 * Invariants: a job is published by storing fn/arg and `pending`, then
 * bumping `gen` (release) under the mutex; a worker reads fn/arg only after
 * seeing the new `gen` (acquire); the last worker to decrement `pending`
 * signals `done` under the mutex, and sleepers test their condition under
 * it, so no wake-up is lost.  sl_pool_run returns only after every worker
 * has finished the job, so the job's arguments (on the caller's stack)
 * outlive all uses.  The caller runs as thread 0.  SILICA_MAX_THREADS=N caps
 * every pool (e.g. 1 under qemu-user, whose thread creation hangs on some
 * hosts).
 */
#include "runtime/pool.h"

#include <pthread.h>
#include <stdlib.h>

#define POOL_SPIN 4096

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

struct sl_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    unsigned long gen;
    int pending;
    int quit;
    sl_pool_fn fn;
    void *arg;
};

typedef struct worker_arg {
    sl_pool *p;
    int tid;
} worker_arg;

static void *worker(void *a) {
    worker_arg *wa = a;
    sl_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
        for (int i = 0; g == seen && i < POOL_SPIN && !__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE); i++) {
            cpu_relax();
            g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while (!p->quit && p->gen == seen) pthread_cond_wait(&p->work, &p->mu);
            g = p->gen;
            pthread_mutex_unlock(&p->mu);
        }
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

sl_pool *sl_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    int cap = sl_pool_max_threads();
    if (cap && n_threads > cap) n_threads = cap;
    sl_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
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
    for (int i = 0; i < POOL_SPIN && __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0; i++) cpu_relax();
    if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&p->mu);
        while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
