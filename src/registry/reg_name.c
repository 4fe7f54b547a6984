/*
 * reg_name.c — model names `org/name[@revision][:tag]` and file globs.
 *
 * Invariants: a parsed model name is exactly two components of
 * [A-Za-z0-9][A-Za-z0-9._-]* (no "..", at most 96 bytes each), so it is safe
 * to use as a relative path under snapshots/; revisions allow '/' (refs/pr/1)
 * but never "..".
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "registry/reg_impl.h"

static bool part_ok(const char *s, size_t n, bool slash) {
    if (n == 0 || n > 96) return false;
    if (s[0] == '.' || s[0] == '-' || s[0] == '/') return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-' || (slash && c == '/');
        if (!ok) return false;
        if (c == '.' && i + 1 < n && s[i + 1] == '.') return false;
    }
    return true;
}

int sl_reg_parse_name(const char *s, sl_reg_name *out, sl_error *err) {
    memset(out, 0, sizeof *out);
    size_t len = strlen(s);
    size_t m = strcspn(s, "@:");
    const char *slash = memchr(s, '/', m);
    if (!slash || !part_ok(s, (size_t)(slash - s), false) || !part_ok(slash + 1, m - (size_t)(slash - s) - 1, false))
        return sl_errorf(err, SL_EINVAL, "'%s': not a model name (expected org/name[@revision][:tag])", s);
    out->model = strndup(s, m);
    const char *p = s + m;
    if (*p == '@') {
        size_t r = strcspn(p + 1, ":");
        if (!part_ok(p + 1, r, true)) {
            sl_reg_name_free(out);
            return sl_errorf(err, SL_EINVAL, "'%s': bad revision after '@'", s);
        }
        out->revision = strndup(p + 1, r);
        p += 1 + r;
    }
    if (*p == ':') {
        size_t t = len - (size_t)(p + 1 - s);
        if (!part_ok(p + 1, t, false)) {
            sl_reg_name_free(out);
            return sl_errorf(err, SL_EINVAL, "'%s': bad tag after ':'", s);
        }
        out->tag = strndup(p + 1, t);
    }
    return 0;
}

void sl_reg_name_free(sl_reg_name *n) {
    free(n->model);
    free(n->revision);
    free(n->tag);
    memset(n, 0, sizeof *n);
}

bool sl_reg_looks_like_name(const char *s) {
    if (!s || sl_path_exists(s)) return false;
    sl_reg_name n;
    if (sl_reg_parse_name(s, &n, NULL)) return false;
    sl_reg_name_free(&n);
    return true;
}

/* Hub-style glob: '*' also matches '/', like Python's fnmatch. */
bool reg_glob_match(const char *pat, const char *path) { return fnmatch(pat, path, 0) == 0; }
