/*
 * gen.c — the command-line side of generation (see gen.h): KV-cache options
 * and the sampling defaults of run and chat.  The generation itself is
 * src/runtime/generate.c and gen_seq.c (silica/generate.h).
 */
#include "gen.h"

#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void gen_sampling_unset(sl_sampler_params *sp) {
    sl_sampler_defaults(sp);
    sp->temperature = sp->top_p = sp->min_p = sp->repeat_penalty = NAN;
    sp->top_k = sp->penalty_window = INT_MIN;
}

void gen_sampling_finish(sl_sampler_params *sp, bool demo) {
    sl_sampler_params d;
    sl_sampler_defaults(&d);
    if (demo) {
        d.temperature = 0.7f;
        d.top_k = 40;
        d.top_p = 0.95f;
        d.min_p = 0.05f;
        d.repeat_penalty = 1.1f;
        d.penalty_window = 64;
    }
    if (isnan(sp->temperature)) sp->temperature = d.temperature;
    if (isnan(sp->top_p)) sp->top_p = d.top_p;
    if (isnan(sp->min_p)) sp->min_p = d.min_p;
    if (isnan(sp->repeat_penalty)) sp->repeat_penalty = d.repeat_penalty;
    if (sp->top_k == INT_MIN) sp->top_k = d.top_k;
    if (sp->penalty_window == INT_MIN) sp->penalty_window = d.penalty_window;
}

void cli_device_note(const sl_session *s) {
    const char *note;
    sl_session_device(s, &note);
    if (note) fprintf(stderr, "silica: note: %s\n", note);
}

int cli_gpu_layers(const char *cmd, const char *v, int *out) {
    if (strcmp(v, "auto") == 0 || strcmp(v, "all") == 0) {
        *out = v[1] == 'u' ? 0 : 1 << 20;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno == ERANGE || x < 0 || x > (1 << 20))
        return cli_usage(cmd, "--gpu-layers must be auto, all or an integer in 0..%d, got '%s'", 1 << 20, v);
    *out = x ? (int)x : SL_GPU_LAYERS_NONE;
    return 0;
}

/* ---- KV-cache options ---- */

int cli_kv_opt(int argc, char **argv, int *i, const char *cmd, sl_session_opts *o, bool *matched) {
    bool missing = false;
    const char *v;
    *matched = true;
    if ((v = cli_opt_value(argc, argv, i, "--kv", &missing))) {
        if (strcmp(v, "f16") == 0) o->kv_dtype = SL_F16;
        else if (strcmp(v, "f32") == 0) o->kv_dtype = SL_F32;
        else if (strcmp(v, "q8") == 0) o->kv_bits = 8;
        else if (strcmp(v, "q4") == 0) o->kv_bits = 4;
        else return cli_usage(cmd, "--kv must be f16, f32, q8 or q4, got '%s'", v);
        return 0;
    }
    if (missing) return cli_usage(cmd, "--kv needs a value");
    static const char *const names[] = {"--kv-bits", "--kv-group-size", "--max-kv-size"};
    for (int k = 0; k < 3; k++) {
        if (!(v = cli_opt_value(argc, argv, i, names[k], &missing))) {
            if (missing) return cli_usage(cmd, "%s needs a value", names[k]);
            continue;
        }
        char *end;
        long x = strtol(v, &end, 10);
        bool num = *v && !*end;
        if (k == 0) {
            if (!num || (x != 4 && x != 8)) return cli_usage(cmd, "--kv-bits must be 4 or 8, got '%s'", v);
            o->kv_bits = (int)x;
        } else if (k == 1) {
            if (!num || (x != 32 && x != 64 && x != 128))
                return cli_usage(cmd, "--kv-group-size must be 32, 64 or 128, got '%s'", v);
            o->kv_group_size = (int)x;
        } else {
            if (!num || x <= SL_KV_KEEP || x > SL_KV_MAX_SIZE)
                return cli_usage(cmd, "--max-kv-size must be an integer in %d..%d (more than the %d attention-sink "
                                      "tokens kept), got '%s'", SL_KV_KEEP + 1, SL_KV_MAX_SIZE, SL_KV_KEEP, v);
            o->max_kv = (int)x;
        }
        return 0;
    }
    *matched = false;
    return 0;
}
