/*
 * model_pin.c — the kernel's view of a loaded model's weights (memory.h):
 * prefetch advice and mlock over the checkpoint mappings that hold them.
 * Lives beside model.c because it needs the model's checkpoint (private to
 * src/model and src/runtime).
 *
 * madvise choice: MADV_WILLNEED only.  A token reads every weight matrix
 * front to back, so the kernel's readahead (MADV_NORMAL) is right and
 * MADV_WILLNEED starts it for the whole file at load time in the background;
 * MADV_RANDOM would turn the first pass into one 4 KiB fault per page, and
 * MADV_SEQUENTIAL lets the kernel drop pages right after they are read,
 * although the next token needs them again.
 *
 * On Linux mlock goes through syscall(2): AddressSanitizer's runtime turns
 * the libc call into a silent no-op, which would hide a refused lock.
 *
 * Invariants: nothing is copied; mlock is all-or-nothing (on failure every
 * mapping locked so far is unlocked again) and its error names the model,
 * the bytes needed and RLIMIT_MEMLOCK.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include "model/model_impl.h"
#include "silica/memory.h"

uint64_t sl_mem_model_mapped_bytes(const sl_model *m) {
    uint64_t t = 0;
    for (size_t i = 0; m && m->ck && i < m->ck->n_maps; i++)
        if (m->ck->maps[i]->data) t += m->ck->maps[i]->size;
    return t;
}

static int lock_range(const void *p, size_t n) {
#if defined(__linux__) && defined(SYS_mlock)
    return (int)syscall(SYS_mlock, p, n);
#else
    return mlock(p, n);
#endif
}

static void unlock_range(const void *p, size_t n) {
#if defined(__linux__) && defined(SYS_munlock)
    syscall(SYS_munlock, p, n);
#else
    munlock(p, n);
#endif
}

static void fmt_limit(char *buf, size_t cap) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) snprintf(buf, cap, "unknown");
    else if (rl.rlim_cur == RLIM_INFINITY) snprintf(buf, cap, "unlimited");
    else if (rl.rlim_cur < SL_MIB) snprintf(buf, cap, "%llu KiB", (unsigned long long)rl.rlim_cur / 1024);
    else snprintf(buf, cap, "%.1f MiB", (double)rl.rlim_cur / (double)SL_MIB);
}

int sl_mem_pin_model(const sl_model *m, bool prefetch, bool lock, uint64_t *locked, sl_error *err) {
    if (locked) *locked = 0;
    if (!m || !m->ck) return sl_errorf(err, SL_EINVAL, "no model");
    const sl_checkpoint *ck = m->ck;
    if (prefetch)
        for (size_t i = 0; i < ck->n_maps; i++) sl_mapping_willneed(ck->maps[i], 0, ck->maps[i]->size);
    if (!lock) return 0;
    uint64_t done = 0;
    for (size_t i = 0; i < ck->n_maps; i++) {
        const sl_mapping *mp = ck->maps[i];
        if (!mp->data || !mp->size) continue;
        if (lock_range(mp->data, (size_t)mp->size) != 0) {
            int e = errno;
            for (size_t k = 0; k < i; k++)
                if (ck->maps[k]->data && ck->maps[k]->size) unlock_range(ck->maps[k]->data, (size_t)ck->maps[k]->size);
            char lim[32];
            fmt_limit(lim, sizeof lim);
            return sl_errorf(err, e == ENOMEM || e == EPERM || e == EAGAIN ? SL_EINVAL : SL_EIO,
                             "%s: --mlock: cannot lock %.1f MiB of weights (%s); RLIMIT_MEMLOCK is %s: raise it "
                             "(ulimit -l, limits.conf memlock) or run without --mlock",
                             ck->path, (double)sl_mem_model_mapped_bytes(m) / (double)SL_MIB, strerror(e), lim);
        }
        done += mp->size;
    }
    if (locked) *locked = done;
    return 0;
}
