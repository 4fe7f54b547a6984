/*
 * inputs.c — checks of what run, chat and ppl are given (see inputs.h):
 * the MODEL word, prompt texts and the context length.
 *
 * The context rule (part5/engine.md): positions beyond what a model was
 * trained on give unreliable attention.  Plain RoPE does not extrapolate
 * (perplexity explodes past max_position_embeddings), so a longer context
 * is refused unless --force; RoPE scaling (linear, dynamic NTK, yarn,
 * llama3) is how a model is stretched past its original length, so a
 * context it covers — factor x original_max_position_embeddings, any
 * length for dynamic — gets a warning only (max_position_embeddings is
 * what the model declares; a scaled model past it is the user's choice).
 */
#include "inputs.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen.h"
#include "silica/io.h"
#include "silica/registry.h"
#include "silica/tokenizer.h"

static bool has_model_ext(const char *w) {
    static const char *const ext[] = {".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".npz"};
    for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++)
        if (sl_str_ends_with(w, ext[k])) return true;
    return false;
}

bool cli_looks_like_model(const char *w) {
    if (sl_path_exists(w) || sl_reg_looks_like_name(w)) return true;
    if (w[0] == '/' || !strncmp(w, "./", 2) || !strncmp(w, "../", 3) || !strncmp(w, "~/", 2) || !strcmp(w, ".") ||
        !strcmp(w, "..") || !strcmp(w, "~"))
        return true;
    for (const char *p = w; *p; p++)
        if (isspace((unsigned char)*p)) return false;   /* a sentence: text */
    return strchr(w, '/') || w[0] == '.' || w[0] == '~' || has_model_ext(w);
}

int cli_check_model(const char *path) {
    if (sl_path_exists(path) || sl_reg_looks_like_name(path)) return 0;
    sl_error err = {0};
    sl_errorf(&err, SL_EINVAL, "%s: no such model (not a file, folder or store name)", path);
    return cli_fail(&err);
}

const char *cli_demo_model(const char *cmd) {
    const char *p = sl_gen_default_model();
    if (!p) {
        cli_usage(cmd, "no MODEL given and no demo model found (set SILICA_DEFAULT_MODEL)");
        return NULL;
    }
    char real[PATH_MAX];
    fprintf(stderr, "silica: using the demo model %s (pass MODEL to choose one)\n", realpath(p, real) ? real : p);
    return p;
}

int cli_read_text(const char *file, char **text, size_t *len) {
    sl_error err = {0};
    *text = NULL;
    *len = 0;
    if (file && strcmp(file, "-") != 0) {
        if (sl_read_file(file, CLI_MAX_TEXT, text, len, &err)) return cli_fail(&err);
        return 0;
    }
    size_t n = 0, cap = 4096;
    char *p = malloc(cap);
    if (!p) {
        sl_errorf(&err, SL_ENOMEM, "out of memory");
        return cli_fail(&err);
    }
    size_t k;
    while ((k = fread(p + n, 1, cap - n - 1, stdin)) > 0) {
        n += k;
        if (n > CLI_MAX_TEXT) {
            free(p);
            sl_errorf(&err, SL_EINVAL, "stdin: more than %zu bytes of text", CLI_MAX_TEXT);
            return cli_fail(&err);
        }
        if (cap - n - 1 == 0) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                sl_errorf(&err, SL_ENOMEM, "out of memory");
                return cli_fail(&err);
            }
            p = q;
            cap *= 2;
        }
    }
    if (ferror(stdin)) {
        free(p);
        sl_errorf(&err, SL_EIO, "stdin: read error");
        return cli_fail(&err);
    }
    p[n] = 0;
    *text = p;
    *len = n;
    return 0;
}

int cli_check_text(const char *what, const char *s, size_t n, const char *hint) {
    size_t valid = sl_utf8_valid_prefix(s, n);
    const char *z = memchr(s, 0, valid);
    if (!z && valid == n) return 0;
    sl_error err = {0};
    if (z)
        sl_errorf(&err, SL_EINVAL, "%s: NUL byte at byte %zu%s", what, (size_t)(z - s), hint ? hint : "");
    else
        sl_errorf(&err, SL_EINVAL, "%s: invalid UTF-8 at byte %zu (0x%02x)%s", what, valid, (unsigned char)s[valid],
                  hint ? hint : "");
    return cli_fail(&err);
}

int64_t cli_ctx_covered(const sl_model_config *c, char *how, size_t cap) {
    const sl_rope_config *r = &c->rope;
    int64_t max = c->max_position_embeddings;
    int64_t orig = r->original_max_pos > 0 ? r->original_max_pos : max;
    static const char *const names[] = {"plain", "linear", "dynamic", "llama3", "yarn", "longrope"};
    const char *name = (unsigned)r->type < sizeof names / sizeof names[0] ? names[r->type] : "unknown";
    if (max <= 0) {
        snprintf(how, cap, "unknown length");
        return 0;
    }
    switch (r->type) {
    case SL_ROPE_DYNAMIC:
        snprintf(how, cap, "its dynamic NTK RoPE scaling rescales with the length");
        return INT64_MAX;
    case SL_ROPE_LINEAR:
    case SL_ROPE_YARN:
    case SL_ROPE_LLAMA3: {
        double f = r->factor > 1 ? r->factor : 1;
        double cov = f * (double)orig;
        int64_t covered = cov >= 9e18 ? INT64_MAX : (int64_t)cov;
        if (covered < max) covered = max;
        snprintf(how, cap, "its %s RoPE scaling covers %lld positions (factor %g x %lld)", name, (long long)covered, f,
                 (long long)orig);
        return covered;
    }
    case SL_ROPE_LONGROPE:
        snprintf(how, cap, "its longrope factors cover %lld positions", (long long)max);
        return max;
    default:
        snprintf(how, cap, "plain RoPE without scaling cannot extrapolate past it");
        return max;
    }
}

int cli_check_ctx(const char *path, const sl_model_config *c, int64_t ctx, const char *what, bool force) {
    int64_t max = c->max_position_embeddings;
    if (max <= 0 || ctx <= max) return 0;
    char how[160];
    int64_t covered = cli_ctx_covered(c, how, sizeof how);
    if (ctx <= covered) {
        fprintf(stderr, "silica: warning: %s exceeds %s's max_position_embeddings %lld; %s\n", what, path,
                (long long)max, how);
        return 0;
    }
    if (force) {
        fprintf(stderr, "silica: warning: %s exceeds %s's max_position_embeddings %lld and %s: running anyway "
                "(--force), expect degraded output\n", what, path, (long long)max, how);
        return 0;
    }
    sl_error err = {0};
    sl_errorf(&err, SL_EINVAL, "%s: %s exceeds the model's max_position_embeddings %lld and %s; --force runs it "
              "anyway", path, what, (long long)max, how);
    return cli_fail(&err);
}
