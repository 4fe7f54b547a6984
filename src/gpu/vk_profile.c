/*
 * vk_profile.c — SILICA_PROFILE for the GPU engine: what one generated
 * token (and one prompt token) costs, on stderr when the session closes.
 * Per phase (generation: batches of one token; prompt: batches of more):
 *
 *   silica: profile: gpu NAME, generation: T tokens in B batches, W ms/token wall = D device + O host
 *     (record R, submit+wait S, logits copy C); per token X dispatches, Y barriers, Z submits, U recordings
 *   silica: profile: gpu NAME, generation device ms/token: qkv 0.123 (3.0) attn ... (calls per token)
 *
 * with, per phase, the matmuls' int8 dots (packed dot products or byte extracts) and, for prompts, the tiled
 * kernel in use (matmul_tiled, matmul_tiled2, matmul_tiled3: SILICA_GPU_TILE, or none).
 *
 * Invariants: W = D + O exactly (O is what the device does not account
 * for: recording, submission and wake-up latency, copies, the host's own
 * work); recordings: command buffers recorded (a kept one submitted again
 * is not recorded); D is the sum of the per-tag times (vk_stats); without timestamps
 * (a queue without them) D and the per-tag line read "n/a".
 */
#include <stdio.h>
#include <time.h>

#include "gpu/vk_impl.h"

uint64_t vk_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *const phase_names[VK_PHASES] = {"generation", "prompt"};

void vk_profile_print(const vk_ctx *c, const vk_host_stats host[VK_PHASES], const char *const *tags, int n_tags) {
    for (int ph = 0; ph < VK_PHASES; ph++) {
        const vk_host_stats *h = &host[ph];
        const vk_stats *st = &c->stats[ph];
        if (!h->tokens) continue;
        double n = (double)h->tokens, ms = 1e6 * n;
        bool dev = c->qpool && st->span_ns > 0;
        char d[32] = "n/a", o[32] = "n/a";
        if (dev) {
            snprintf(d, sizeof d, "%.3f", (double)st->span_ns / ms);
            snprintf(o, sizeof o, "%.3f", ((double)h->wall_ns - (double)st->span_ns) / ms);
        }
        fprintf(stderr,
                "silica: profile: gpu %s, %s: %llu tokens in %llu batches, %.3f ms/token wall = %s device + %s host "
                "(record %.3f, submit+wait %.3f, logits copy %.3f); per token %.2f dispatches, %.2f barriers, %.2f submits, "
                "%.2f recordings\n",
                c->info.name, phase_names[ph], (unsigned long long)h->tokens, (unsigned long long)h->batches,
                (double)h->wall_ns / ms, d, o, (double)h->record_ns / ms, (double)h->wait_ns / ms, (double)h->copy_ns / ms,
                (double)st->dispatches / n, (double)st->barriers / n, (double)st->submits / n,
                (double)st->recordings / n);
        fprintf(stderr, "silica: profile: gpu %s, %s matmul int8 dots: %s\n", c->info.name, phase_names[ph],
                c->int_dot ? "packed dot products" : "byte extracts");
        if (ph == VK_PHASE_PP)
            fprintf(stderr, "silica: profile: gpu %s, prompt matmul tiles: %s\n", c->info.name,
                    c->tile == 3   ? "matmul_tiled3 (128 rows x 64 tokens, int8 formats; others matmul_tiled)"
                    : c->tile == 2 ? "matmul_tiled2 (128 rows x 64 tokens)"
                    : c->tile == 1 ? "matmul_tiled (64 rows x 64 tokens)"
                                   : "none (matrix-vector kernel)");
        fprintf(stderr, "silica: profile: gpu %s, %s device ms/token:", c->info.name, phase_names[ph]);
        for (int t = 0; t < n_tags && t < VK_PROF_TAGS; t++)
            if (st->tag_calls[t] || st->tag_ns[t]) {
                if (dev) fprintf(stderr, " %s %.3f (%.2f)", tags[t], (double)st->tag_ns[t] / ms, (double)st->tag_calls[t] / n);
                else fprintf(stderr, " %s n/a (%.2f)", tags[t], (double)st->tag_calls[t] / n);
            }
        fprintf(stderr, "\n");
    }
}
