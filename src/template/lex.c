/*
 * lex.c — chat-template lexer: source text -> tokens, applying jinja2's
 * whitespace rules as transformers configures them (trim_blocks=True,
 * lstrip_blocks=True, keep_trailing_newline=False) plus the `-` / `+` tag
 * modifiers, comments and {% raw %} blocks.
 *
 * Invariants: newlines in the source are normalised to "\n" and one trailing
 * newline is dropped first (as jinja2 does), so DATA tokens are final output
 * text.  Every read is bounded by the source length; string literals are
 * decoded with Python's unicode-escape rules.  Errors carry the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/tmpl_impl.h"

typedef struct lexer {
    tp_arena *a;
    const char *s;
    size_t n, pos;
    int line;
    tp_toks *out;
} lexer;

static tp_tok *push(lexer *L, tp_tok_kind k, int line) {
    tp_toks *t = L->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        tp_tok *v = tp_alloc(L->a, cap * sizeof *v);
        if (t->n) memcpy(v, t->v, t->n * sizeof *v);
        t->v = v;
        t->cap = cap;
    }
    tp_tok *k0 = &t->v[t->n++];
    memset(k0, 0, sizeof *k0);
    k0->kind = k;
    k0->line = line;
    return k0;
}

static int count_nl(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

/* length of the prefix of s[0..n) left after Python str.rstrip() */
static size_t rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        size_t st = n - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xc0) == 0x80) st--;
        uint32_t cp;
        tp_utf8_next(s, n, st, &cp);
        if (!tp_py_isspace(cp)) break;
        n = st;
    }
    return n;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n) {
        uint32_t cp;
        size_t j = tp_utf8_next(s, n, i, &cp);
        if (!tp_py_isspace(cp)) break;
        i = j;
    }
    return i;
}

/* Emit the text s[from..to) as DATA, applying the strip rule of the tag that
 * follows it (sign '-', '+' or 0; lstrip applies to block/comment tags). */
static void emit_text(lexer *L, size_t from, size_t to, char sign, bool lstrip_tag) {
    const char *t = L->s + from;
    size_t n = to - from;
    int line = L->line;
    L->line += count_nl(t, n);
    if (sign == '-') n = rstrip_len(t, n);
    else if (sign != '+' && lstrip_tag) {
        size_t l = n;
        while (l > 0 && t[l - 1] != '\n') l--;
        bool line_start = l > 0 || from == 0 || L->s[from - 1] == '\n';
        if (line_start) {
            bool blank = true;
            for (size_t i = l; i < n; i++)
                if (t[i] != ' ' && t[i] != '\t') { blank = false; break; }
            if (blank) n = l;
        }
    }
    if (n == 0) return;
    tp_tok *k = push(L, TK_DATA, line);
    k->s = t;
    k->n = n;
}

static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode a string literal body with Python unicode-escape rules. */
static void decode_string(lexer *L, const char *s, size_t n, int line, tp_tok *k) {
    tp_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) { tp_buf_putc(L->a, &b, s[i]); continue; }
        char c = s[++i];
        switch (c) {
        case '\n': break;
        case '\\': tp_buf_putc(L->a, &b, '\\'); break;
        case '\'': tp_buf_putc(L->a, &b, '\''); break;
        case '"': tp_buf_putc(L->a, &b, '"'); break;
        case 'a': tp_buf_putc(L->a, &b, '\a'); break;
        case 'b': tp_buf_putc(L->a, &b, '\b'); break;
        case 'f': tp_buf_putc(L->a, &b, '\f'); break;
        case 'n': tp_buf_putc(L->a, &b, '\n'); break;
        case 'r': tp_buf_putc(L->a, &b, '\r'); break;
        case 't': tp_buf_putc(L->a, &b, '\t'); break;
        case 'v': tp_buf_putc(L->a, &b, '\v'); break;
        case 'x': case 'u': case 'U': {
            int len = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int j = 0; j < len; j++) {
                int h = i + 1 + (size_t)j < n ? hexval(s[i + 1 + (size_t)j]) : -1;
                if (h < 0)
                    tp_fail_arena(L->a, line, SL_EINVAL, "truncated \\%c escape in a string literal", c);
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                tp_fail_arena(L->a, line, SL_EUNSUPPORTED, "escape \\%c%0*x in a string literal is not a valid code point", c, len, v);
            i += (size_t)len;
            tp_put_cp(L->a, &b, v);
            break;
        }
        case 'N': tp_fail_arena(L->a, line, SL_EUNSUPPORTED, "unsupported construct: \\N{...} escape in a string literal");
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = (uint32_t)(c - '0');
                for (int j = 0; j < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; j++) v = v * 8 + (uint32_t)(s[++i] - '0');
                tp_put_cp(L->a, &b, v);
            } else {
                tp_buf_putc(L->a, &b, '\\');
                tp_buf_putc(L->a, &b, c);
            }
        }
    }
    k->s = b.p ? b.p : "";
    k->n = b.n;
}

static const char *const k_ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}"};

/* Lex the inside of a {{ }} or {% %} tag; returns after the end marker. */
static void lex_tag(lexer *L, bool block, int open_line) {
    int depth = 0;
    const char *s = L->s;
    size_t n = L->n;
    for (;;) {
        while (L->pos < n && (s[L->pos] == ' ' || s[L->pos] == '\t' || s[L->pos] == '\n' || s[L->pos] == '\r' ||
                              s[L->pos] == '\f' || s[L->pos] == '\v')) {
            if (s[L->pos] == '\n') L->line++;
            L->pos++;
        }
        if (L->pos >= n)
            tp_fail_arena(L->a, open_line, SL_EINVAL, "unexpected end of template, expected the end of the %s tag",
                          block ? "block" : "variable");
        size_t p = L->pos;
        char endc = block ? '%' : '}';
        if (depth == 0) {
            bool minus = s[p] == '-' && p + 2 < n + 0 && s[p + 1] == endc && s[p + 2] == '}';
            bool plus = block && s[p] == '+' && p + 2 < n + 0 && s[p + 1] == endc && s[p + 2] == '}';
            if (minus || plus || (s[p] == endc && p + 1 < n && s[p + 1] == '}')) {
                push(L, block ? TK_BLOCK_END : TK_VAR_END, L->line);
                L->pos = p + (minus || plus ? 3 : 2);
                if (minus) {
                    size_t q = skip_ws(s, n, L->pos);
                    L->line += count_nl(s + L->pos, q - L->pos);
                    L->pos = q;
                } else if (!plus && block && L->pos < n && s[L->pos] == '\n') {
                    L->pos++;
                    L->line++;
                }
                return;
            }
        }
        char c = s[p];
        if (is_name_start(c)) {
            size_t q = p;
            while (q < n && is_name_char(s[q])) q++;
            tp_tok *k = push(L, TK_NAME, L->line);
            k->s = s + p;
            k->n = q - p;
            L->pos = q;
            continue;
        }
        if (is_digit(c)) {
            size_t q = p;
            while (q < n && (is_digit(s[q]) || s[q] == '_')) q++;
            bool flt = false;
            if (q + 1 < n && s[q] == '.' && is_digit(s[q + 1])) {
                flt = true;
                q++;
                while (q < n && (is_digit(s[q]) || s[q] == '_')) q++;
            }
            if (q < n && (s[q] == 'e' || s[q] == 'E')) {
                size_t r = q + 1;
                if (r < n && (s[r] == '+' || s[r] == '-')) r++;
                if (r < n && is_digit(s[r])) {
                    flt = true;
                    while (r < n && is_digit(s[r])) r++;
                    q = r;
                }
            }
            char tmp[80];
            size_t tn = 0;
            for (size_t i = p; i < q && tn < sizeof tmp - 1; i++)
                if (s[i] != '_') tmp[tn++] = s[i];
            tmp[tn] = 0;
            tp_tok *k = push(L, flt ? TK_FLOAT : TK_INT, L->line);
            if (flt) k->f = strtod(tmp, NULL);
            else {
                char *e;
                unsigned long long v = strtoull(tmp, &e, 10);
                if (tn > 18 && (v > (unsigned long long)INT64_MAX || tn >= sizeof tmp - 1))
                    tp_fail_arena(L->a, L->line, SL_EUNSUPPORTED, "integer literal %s is too large", tmp);
                k->i = (int64_t)v;
            }
            k->s = s + p;
            k->n = q - p;
            L->pos = q;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t q = p + 1;
            int line = L->line;
            while (q < n && s[q] != c) {
                if (s[q] == '\\' && q + 1 < n) q++;
                q++;
            }
            if (q >= n) tp_fail_arena(L->a, line, SL_EINVAL, "unexpected char %s at %zu", c == '\'' ? "\"'\"" : "'\"'", p);
            tp_tok *k = push(L, TK_STRING, line);
            decode_string(L, s + p + 1, q - p - 1, line, k);
            L->line += count_nl(s + p, q - p);
            L->pos = q + 1;
            continue;
        }
        bool ok = false;
        for (size_t i = 0; i < sizeof k_ops / sizeof *k_ops; i++) {
            size_t ol = strlen(k_ops[i]);
            if (p + ol <= n && memcmp(s + p, k_ops[i], ol) == 0) {
                tp_tok *k = push(L, TK_OP, L->line);
                k->s = k_ops[i];
                k->n = ol;
                if (ol == 1 && (c == '(' || c == '[' || c == '{')) depth++;
                if (ol == 1 && (c == ')' || c == ']' || c == '}')) {
                    if (depth == 0) tp_fail_arena(L->a, L->line, SL_EINVAL, "unexpected '%c'", c);
                    depth--;
                }
                L->pos = p + ol;
                ok = true;
                break;
            }
        }
        if (!ok) {
            if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                tp_fail_arena(L->a, L->line, SL_EINVAL, "unexpected char 0x%02x", (unsigned char)c);
            tp_fail_arena(L->a, L->line, SL_EINVAL, "unexpected char '%c'", c);
        }
    }
}

/* {% raw %} at tag position p (sign already parsed): returns true if it was one. */
static bool try_raw(lexer *L, size_t tag, char sign) {
    const char *s = L->s;
    size_t n = L->n, q = tag + 2 + (sign ? 1 : 0);
    while (q < n && (s[q] == ' ' || s[q] == '\t' || s[q] == '\n')) q++;
    if (!(q + 3 <= n && memcmp(s + q, "raw", 3) == 0 && (q + 3 == n || !is_name_char(s[q + 3])))) return false;
    q += 3;
    while (q < n && (s[q] == ' ' || s[q] == '\t' || s[q] == '\n')) q++;
    bool minus = false;
    if (q + 3 <= n && memcmp(s + q, "-%}", 3) == 0) { minus = true; q += 3; }
    else if (q + 2 <= n && memcmp(s + q, "%}", 2) == 0) q += 2;
    else return false;
    emit_text(L, L->pos, tag, sign, true);
    L->line += count_nl(s + tag, q - tag);
    if (minus) {
        size_t r = skip_ws(s, n, q);
        L->line += count_nl(s + q, r - q);
        q = r;
    }
    /* find {%[-+]? endraw [-+]?%} */
    for (size_t i = q; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t r = i + 2;
        char esign = 0;
        if (r < n && (s[r] == '-' || s[r] == '+')) esign = s[r++];
        while (r < n && (s[r] == ' ' || s[r] == '\t' || s[r] == '\n')) r++;
        if (!(r + 6 <= n && memcmp(s + r, "endraw", 6) == 0)) continue;
        r += 6;
        while (r < n && (s[r] == ' ' || s[r] == '\t' || s[r] == '\n')) r++;
        char csign = 0;
        if (r < n && (s[r] == '-' || s[r] == '+')) csign = s[r++];
        if (!(r + 2 <= n && s[r] == '%' && s[r + 1] == '}')) continue;
        r += 2;
        L->pos = q;
        emit_text(L, q, i, esign, true);
        L->line += count_nl(s + i, r - i);
        if (csign == '-') {
            size_t w = skip_ws(s, n, r);
            L->line += count_nl(s + r, w - r);
            r = w;
        } else if (csign != '+' && r < n && s[r] == '\n') {
            r++;
            L->line++;
        }
        L->pos = r;
        return true;
    }
    tp_fail_arena(L->a, L->line, SL_EINVAL, "missing end of raw directive");
}

void tp_lex(tp_arena *a, const char *src, size_t len, tp_toks *out) {
    /* normalise newlines, drop one trailing newline */
    char *s = tp_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else s[n++] = src[i];
    }
    if (n > 0 && s[n - 1] == '\n') n--;
    s[n] = 0;
    lexer L = {a, s, n, 0, 1, out};
    while (L.pos < n) {
        size_t tag = L.pos;
        char kind = 0;
        for (; tag + 1 < n; tag++)
            if (s[tag] == '{' && (s[tag + 1] == '{' || s[tag + 1] == '%' || s[tag + 1] == '#')) {
                kind = s[tag + 1];
                break;
            }
        if (!kind) {
            emit_text(&L, L.pos, n, 0, false);
            L.pos = n;
            break;
        }
        char sign = tag + 2 < n && (s[tag + 2] == '-' || s[tag + 2] == '+') ? s[tag + 2] : 0;
        if (kind == '%' && try_raw(&L, tag, sign)) continue;
        emit_text(&L, L.pos, tag, sign, kind != '{');
        L.pos = tag + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            int line = L.line;
            size_t e = L.pos;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) tp_fail_arena(a, line, SL_EINVAL, "missing end of comment tag");
            char esign = e > L.pos && (s[e - 1] == '-' || s[e - 1] == '+') ? s[e - 1] : 0;
            L.line += count_nl(s + L.pos, e - L.pos);
            L.pos = e + 2;
            if (esign == '-') {
                size_t q = skip_ws(s, n, L.pos);
                L.line += count_nl(s + L.pos, q - L.pos);
                L.pos = q;
            } else if (esign != '+' && L.pos < n && s[L.pos] == '\n') {
                L.pos++;
                L.line++;
            }
            continue;
        }
        int line = L.line;
        push(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, line);
        lex_tag(&L, kind == '%', line);
    }
    push(&L, TK_EOF, L.line);
}
