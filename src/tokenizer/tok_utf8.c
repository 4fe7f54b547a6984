/*
 * tok_utf8.c — byte buffers, a stable arena, strict UTF-8 decoding (Rust's
 * rules: no overlongs, no surrogates, max U+10FFFF), lossy repair identical
 * to String::from_utf8_lossy, the Rust char predicates HF relies on (via
 * utf8proc categories) and the GPT-2 byte<->unicode table.
 *
 * Invariants: buffers grow geometrically with overflow checks; arena blocks
 * are never reallocated, so pointers into them stay valid until reset.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tokenizer/tok_impl.h"

int tok_buf_reserve(tok_buf *b, size_t extra) {
    if (b->cap - b->n >= extra) return 0;
    size_t need = b->n + extra;
    if (need < b->n) return SL_ENOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return SL_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return SL_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_put(tok_buf *b, const void *s, size_t n) {
    if (tok_buf_reserve(b, n + 1)) return SL_ENOMEM;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

void tok_buf_free(tok_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

struct tok_arena_block {
    tok_arena_block *next;
    size_t used, cap;
    char data[];
};

char *tok_arena_alloc(tok_arena *a, size_t n) {
    tok_arena_block *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (h && h->cap * 2 > cap && h->cap < (SIZE_MAX >> 2)) cap = h->cap * 2;
        if (cap > SIZE_MAX - sizeof *h) return NULL;
        tok_arena_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = h;
        b->used = 0;
        b->cap = cap;
        a->head = h = b;
    }
    char *p = h->data + h->used;
    h->used += n;
    return p;
}

void tok_arena_reset(tok_arena *a) {
    /* keep the newest (largest) block */
    tok_arena_block *h = a->head;
    if (!h) return;
    tok_arena_block *b = h->next;
    while (b) {
        tok_arena_block *nx = b->next;
        free(b);
        b = nx;
    }
    h->next = NULL;
    h->used = 0;
}

void tok_arena_free(tok_arena *a) {
    tok_arena_block *b = a->head;
    while (b) {
        tok_arena_block *nx = b->next;
        free(b);
        b = nx;
    }
    a->head = NULL;
}

int tok_pieces_push(tok_pieces *p, const char *s, size_t n, int64_t added_id, bool at_origin) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *p->v) return SL_ENOMEM;
        tok_piece *v = realloc(p->v, cap * sizeof *v);
        if (!v) return SL_ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (tok_piece){s, n, added_id, at_origin};
    return 0;
}

size_t tok_utf8_valid_len(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3) return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4) return 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        return 4;
    }
    return 0;
}

int tok_utf8_dec(const char *str, size_t n, int32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    size_t l = tok_utf8_valid_len(str, n);
    switch (l) {
    case 1: *cp = s[0]; return 1;
    case 2: *cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F); return 2;
    case 3: *cp = ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F); return 3;
    case 4: *cp = ((int32_t)(s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F); return 4;
    default: *cp = -1; return 1;
    }
}

bool tok_utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        size_t l = tok_utf8_valid_len(s + i, n - i);
        if (!l) return false;
        i += l;
    }
    return true;
}

/* Length of the maximal prefix of an invalid sequence that could start a
 * valid one (Unicode "maximal subpart"); always >= 1. */
static size_t invalid_run(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c < 0xE0) need = 2;
    else if (c >= 0xE0 && c < 0xF0) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c < 0xF5) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) i++;
    else return 1;
    while (i < need && i < n && (s[i] & 0xC0) == 0x80) i++;
    return i;
}

int tok_utf8_lossy(const char *s, size_t n, tok_buf *b) {
    b->n = 0;
    if (tok_buf_reserve(b, n + 1)) return SL_ENOMEM;
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        while (i < n) {
            if ((unsigned char)s[i] < 0x80) { i++; continue; }
            size_t l = tok_utf8_valid_len(s + i, n - i);
            if (!l) break;
            i += l;
        }
        if (tok_buf_put(b, s + st, i - st)) return SL_ENOMEM;
        if (i < n) {
            i += invalid_run((const unsigned char *)s + i, n - i);
            if (tok_buf_put(b, "\xEF\xBF\xBD", 3)) return SL_ENOMEM;
        }
    }
    if (tok_buf_reserve(b, 1)) return SL_ENOMEM;
    b->p[b->n] = 0;
    return 0;
}

/* ---- public (silica/tokenizer.h) ---- */

size_t sl_utf8_valid_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }
        size_t l = tok_utf8_valid_len(s + i, n - i);
        if (!l) break;
        i += l;
    }
    return i;
}

char *sl_utf8_lossy(const char *s, size_t n, size_t *out_len) {
    tok_buf b = {0};
    if (tok_utf8_lossy(s, n, &b)) {
        tok_buf_free(&b);
        return NULL;
    }
    if (out_len) *out_len = b.n;
    return b.p;
}

bool tok_is_whitespace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool tok_is_numeric(int32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool tok_is_alnum(int32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || k == UTF8PROC_CATEGORY_ND ||
           k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool tok_is_punct(int32_t c) {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                         (c >= 0x7B && c <= 0x7E);
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool tok_is_word_char(int32_t c) {
    if (c == '_') return true;
    if (tok_is_alnum(c)) return true;
    if (c < 0x80) return false;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME ||
           k == UTF8PROC_CATEGORY_PC || c == 0x200C || c == 0x200D;
}

const uint16_t tok_byte_to_cp[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

int tok_cp_to_byte(int32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return cp;
    if (cp >= 256 && cp < 256 + 33) return cp - 256;
    if (cp >= 256 + 33 && cp < 256 + 67) return 127 + (cp - 256 - 33);
    if (cp == 256 + 67) return 173;
    return -1;
}
