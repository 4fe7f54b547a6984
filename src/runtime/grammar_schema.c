/*
 * grammar_schema.c — JSON Schema -> grammar nodes (grammar.h lists the
 * keywords and limits).  Each schema object compiles once (memoised by
 * address), which is what makes recursive $refs finite: the node id exists
 * before its children are compiled.  enum/const compile to a literal trie
 * of the values' compact JSON, kept only when the rest of the schema (run
 * through the recognizer itself) accepts them.
 *
 * Invariants: every error names the JSON pointer of the schema at fault and
 * the keyword; nothing is half-built on error (the grammar is freed); no
 * recursion is deeper than GR_MAX_SCHEMA_DEPTH.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/grammar_impl.h"

enum { T_OBJ = 1, T_ARR = 2, T_STR = 4, T_NUM = 8, T_INT = 16, T_BOOL = 32, T_NULL = 64, T_ALL = 127 };

typedef struct comp {
    sl_grammar *g;
    const cJSON *doc;
    const cJSON **memo_s;
    int *memo_n;
    int n_memo, cap_memo;
    int any, boolean, null;   /* shared nodes, -1 until made */
    int depth;
    sl_error *err;
    char path[512];
} comp;

static int fail(comp *c, const char *fmt, const char *arg) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    size_t pl = strlen(c->path);   /* a deep path keeps its last 100 bytes */
    const char *path = pl > 120 ? c->path + pl - 100 : c->path[0] ? c->path : "/";
    if (!c->err->code) sl_errorf(c->err, SL_EINVAL, "schema %s%s: %s", pl > 120 ? "..." : "", path, msg);
    return -1;
}

/* ---- tables ---- */

int gr_lit_new(sl_grammar *g) {
    if (g->n_lits >= GR_MAX_LIT_NODES) return -1;
    if (g->n_lits == g->cap_lits) {
        int cap = g->cap_lits ? g->cap_lits * 2 : 256;
        gr_lit *p = realloc(g->lits, sizeof *p * (size_t)cap);
        if (!p) return -1;
        g->lits = p;
        g->cap_lits = cap;
    }
    g->lits[g->n_lits] = (gr_lit){0, -1, -1, -1, 0};
    return g->n_lits++;
}

int gr_lit_add(sl_grammar *g, int root, const char *s, size_t n, int32_t value) {
    int at = root;
    uint64_t bit = value >= 0 && value < 64 ? 1ull << value : 0;
    g->lits[root].below |= bit;
    for (size_t i = 0; i < n; i++) {
        int ch = gr_lit_child(g, at, (uint8_t)s[i]);
        if (ch < 0) {
            if ((ch = gr_lit_new(g)) < 0) return -1;
            g->lits[ch].byte = (uint8_t)s[i];
            g->lits[ch].next = g->lits[at].child;
            g->lits[at].child = ch;
        }
        at = ch;
        g->lits[at].below |= bit;
    }
    if (g->lits[at].value < 0) g->lits[at].value = value;
    return 0;
}

static int new_node(comp *c, gr_kind kind) {
    sl_grammar *g = c->g;
    if (g->n_nodes >= GR_MAX_NODES) return fail(c, "more than %s compiled schema nodes", "4096");
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        gr_node *p = realloc(g->nodes, sizeof *p * (size_t)cap);
        if (!p) return fail(c, "%s", "out of memory");
        g->nodes = p;
        g->cap_nodes = cap;
    }
    gr_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->key_trie = nd->additional = nd->items = nd->lit = -1;
    nd->max_items = nd->max_len = -1;
    return g->n_nodes++;
}

/* n consecutive entries of g->list (filled by the caller). */
static int list_block(comp *c, int n) {
    sl_grammar *g = c->g;
    if (g->n_list + n > g->cap_list) {
        int cap = g->cap_list ? g->cap_list : 64;
        while (cap < g->n_list + n) cap *= 2;
        int32_t *p = realloc(g->list, sizeof *p * (size_t)cap);
        if (!p) return fail(c, "%s", "out of memory");
        g->list = p;
        g->cap_list = cap;
    }
    int at = g->n_list;
    g->n_list += n;
    return at;
}

static int literal_node(comp *c, const char *const *texts, int n) {
    int id = new_node(c, GK_LITERAL);
    int root = id < 0 ? -1 : gr_lit_new(c->g);
    if (id < 0 || root < 0) return id < 0 ? -1 : fail(c, "%s", "literal values too large");
    c->g->nodes[id].lit = root;
    for (int i = 0; i < n; i++)
        if (gr_lit_add(c->g, root, texts[i], strlen(texts[i]), i)) return fail(c, "%s", "literal values too large");
    return id;
}

static int union_node(comp *c, const int *alts, int n) {
    int id = new_node(c, GK_UNION), at = id < 0 ? -1 : list_block(c, n);
    if (at < 0) return -1;
    c->g->nodes[id].alts = at;
    c->g->nodes[id].n_alts = n;
    memcpy(&c->g->list[at], alts, sizeof *alts * (size_t)n);
    return id;
}

/* Any JSON value: a union told apart by the first byte. */
static int any_node(comp *c) {
    if (c->any >= 0) return c->any;
    int u = new_node(c, GK_UNION);
    if (u < 0) return -1;
    c->any = u;
    static const char *const lits[] = {"true", "false", "null"};
    int alt[5] = {new_node(c, GK_OBJECT), new_node(c, GK_ARRAY), new_node(c, GK_STRING), new_node(c, GK_NUMBER),
                  literal_node(c, lits, 3)};
    int kt = gr_lit_new(c->g);
    for (int i = 0; i < 5; i++)
        if (alt[i] < 0) return -1;
    if (kt < 0) return fail(c, "%s", "out of memory");
    c->g->nodes[alt[0]].additional = u;
    c->g->nodes[alt[0]].key_trie = kt;
    c->g->nodes[alt[1]].items = u;
    int at = list_block(c, 5);
    if (at < 0) return -1;
    memcpy(&c->g->list[at], alt, sizeof alt);
    c->g->nodes[u].alts = at;
    c->g->nodes[u].n_alts = 5;
    return u;
}

/* ---- keyword helpers ---- */

static const char *const k_known[] = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
    "minLength", "maxLength", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "nullable",
    /* annotations: no effect on validation */
    "title", "description", "default", "examples", "$comment", "$schema", "$id", "deprecated", "readOnly", "writeOnly",
    "strict"};
#define N_CONSTRAINTS 19   /* k_known[0..19) constrain; the rest annotate */

static int kw_index(const char *k) {
    for (int i = 0; i < (int)(sizeof k_known / sizeof *k_known); i++)
        if (strcmp(k, k_known[i]) == 0) return i;
    return -1;
}

static int check_keywords(comp *c, const cJSON *s) {
    const cJSON *v;
    cJSON_ArrayForEach(v, s) if (kw_index(v->string) < 0) return fail(c, "unsupported keyword '%.80s'", v->string);
    return 0;
}

/* Constraint keywords other than `own` (and the containers $defs/definitions). */
static int only_keyword(comp *c, const cJSON *s, const char *own, bool nullable_ok) {
    const cJSON *v;
    cJSON_ArrayForEach(v, s) {
        int i = kw_index(v->string);
        if (i < 0 || i >= N_CONSTRAINTS || strcmp(v->string, own) == 0 || strcmp(v->string, "$defs") == 0 ||
            strcmp(v->string, "definitions") == 0 || (nullable_ok && strcmp(v->string, "nullable") == 0))
            continue;
        char msg[160];
        snprintf(msg, sizeof msg, "'%.60s' next to '%s' is not supported", v->string, own);
        return fail(c, "%s", msg);
    }
    return 0;
}

static int get_count(comp *c, const cJSON *s, const char *k, int dflt, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);
    *out = dflt;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble))
        return fail(c, "'%s' must be a non-negative integer", k);
    *out = v->valuedouble > 1e9 ? 1000000000 : (int)v->valuedouble;
    return 0;
}

static size_t path_push(comp *c, const char *a, const char *b) {
    size_t at = strlen(c->path);
    snprintf(c->path + at, sizeof c->path - at, "/%s%s%.60s", a, b ? "/" : "", b ? b : "");
    return at;
}

static int compile(comp *c, const cJSON *s);

static int compile_at(comp *c, const cJSON *s, const char *a, const char *b) {
    size_t at = path_push(c, a, b);
    int r = compile(c, s);
    if (r >= 0) c->path[at] = 0;
    return r;
}

/* A property name as JSON writes it between the quotes (cJSON's escapes). */
static char *escape_name(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n * 6 + 1), *q = o;
    if (!o) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *e = *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : *p == '\b' ? "\\b" : *p == '\f' ? "\\f"
                      : *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : *p == '\t' ? "\\t" : NULL;
        if (e) q += sprintf(q, "%s", e);
        else if (*p < 0x20) q += sprintf(q, "\\u%04x", *p);
        else *q++ = (char)*p;
    }
    *q = 0;
    return o;
}

/* ---- one node per type ---- */

static int object_node(comp *c, const cJSON *s) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) return fail(c, "'%s' must be an object of schemas", "properties");
    int n = props ? cJSON_GetArraySize(props) : 0;
    if (n > GR_MAX_PROPS) return fail(c, "more than %s properties", "64");
    int id = new_node(c, GK_OBJECT), at = id < 0 ? -1 : list_block(c, n), kt = gr_lit_new(c->g);
    if (at < 0) return -1;
    if (kt < 0) return fail(c, "%s", "out of memory");
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, props) {
        char *esc = escape_name(p->string);
        if (!esc) return fail(c, "%s", "out of memory");
        int dup = 0, r = 0;
        for (const cJSON *q = props->child; q != p; q = q->next) dup |= strcmp(q->string, p->string) == 0;
        if (!dup) r = gr_lit_add(c->g, kt, esc, strlen(esc), i);
        free(esc);
        if (dup) return fail(c, "property '%.60s' appears twice", p->string);
        if (r) return fail(c, "%s", "property names too large");
        int sub = compile_at(c, p, "properties", p->string);
        if (sub < 0) return -1;
        c->g->list[at + i++] = sub;
    }
    uint64_t required = 0;
    if (req && !cJSON_IsArray(req)) return fail(c, "'%s' must be an array of property names", "required");
    cJSON_ArrayForEach(p, req) {
        int k = 0;
        const cJSON *q = props ? props->child : NULL;
        for (; q && (!cJSON_IsString(p) || strcmp(q->string, p->valuestring) != 0); q = q->next) k++;
        if (!cJSON_IsString(p)) return fail(c, "'%s' must be an array of property names", "required");
        if (!q) return fail(c, "required property '%.60s' is not in 'properties'", p->valuestring);
        required |= 1ull << k;
    }
    int additional = -1;   /* -1: no other keys */
    if (add && !cJSON_IsFalse(add)) {
        if ((additional = compile_at(c, add, "additionalProperties", NULL)) < 0) return -1;
    } else if (!add && !props && (additional = any_node(c)) < 0) {
        return -1;
    }
    gr_node *nd = &c->g->nodes[id];
    nd->props = at;
    nd->n_props = n;
    nd->key_trie = kt;
    nd->required = required;
    nd->additional = additional;
    return id;
}

static int array_node(comp *c, const cJSON *s) {
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefixItems");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (prefix && !cJSON_IsArray(prefix)) return fail(c, "'%s' must be an array of schemas", "prefixItems");
    int n = prefix ? cJSON_GetArraySize(prefix) : 0, mn, mx;
    if (get_count(c, s, "minItems", 0, &mn) || get_count(c, s, "maxItems", -1, &mx)) return -1;
    if (mx >= 0 && mx < mn) return fail(c, "'maxItems' is below '%s'", "minItems");
    int id = new_node(c, GK_ARRAY), at = id < 0 ? -1 : list_block(c, n);
    if (at < 0) return -1;
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, prefix) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        int sub = compile_at(c, p, "prefixItems", idx);
        if (sub < 0) return -1;
        c->g->list[at + i++] = sub;
    }
    int it = -1;
    if (items && !cJSON_IsFalse(items) && (it = compile_at(c, items, "items", NULL)) < 0) return -1;
    if (!items && !prefix && (it = any_node(c)) < 0) return -1;
    gr_node *nd = &c->g->nodes[id];
    nd->prefix = at;
    nd->n_prefix = n;
    nd->items = it;
    nd->min_items = mn;
    nd->max_items = mx;
    if (it < 0 && mn > n) return fail(c, "'minItems' needs more items than '%s' allow", "prefixItems");
    return id;
}

static int string_node(comp *c, const cJSON *s) {
    int mn, mx;
    if (get_count(c, s, "minLength", 0, &mn) || get_count(c, s, "maxLength", -1, &mx)) return -1;
    if (mx >= 0 && mx < mn) return fail(c, "'maxLength' is below '%s'", "minLength");
    int id = new_node(c, GK_STRING);
    if (id < 0) return -1;
    c->g->nodes[id].min_len = mn;
    c->g->nodes[id].max_len = mx;
    return id;
}

static int type_node(comp *c, const cJSON *s, int t) {
    static const char *const tf[] = {"true", "false"}, *const tn[] = {"null"};
    switch (t) {
    case T_OBJ: return object_node(c, s);
    case T_ARR: return array_node(c, s);
    case T_STR: return string_node(c, s);
    case T_NUM: return new_node(c, GK_NUMBER);
    case T_INT: return new_node(c, GK_INTEGER);
    case T_BOOL: return c->boolean >= 0 ? c->boolean : (c->boolean = literal_node(c, tf, 2));
    default: return c->null >= 0 ? c->null : (c->null = literal_node(c, tn, 1));
    }
}

static int type_bits(comp *c, const cJSON *s, int *bits) {
    static const char *const names[] = {"object", "array", "string", "number", "integer", "boolean", "null"};
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    *bits = 0;
    if (!t) {
        static const char *const ok[] = {"properties", "required", "additionalProperties"};
        static const char *const ak[] = {"items", "prefixItems", "minItems", "maxItems"};
        for (int i = 0; i < 3; i++) *bits |= cJSON_HasObjectItem(s, ok[i]) ? T_OBJ : 0;
        for (int i = 0; i < 4; i++) *bits |= cJSON_HasObjectItem(s, ak[i]) ? T_ARR : 0;
        if (cJSON_HasObjectItem(s, "minLength") || cJSON_HasObjectItem(s, "maxLength")) *bits |= T_STR;
        if (!*bits) *bits = T_ALL;
        return 0;
    }
    const cJSON *one = t;
    if (cJSON_IsArray(t)) one = t->child;
    for (; one; one = cJSON_IsArray(t) ? one->next : NULL) {
        int k = 0;
        while (k < 7 && !(cJSON_IsString(one) && strcmp(one->valuestring, names[k]) == 0)) k++;
        if (k == 7) return fail(c, "'type' must be object, array, string, number, integer, boolean or null%s", "");
        *bits |= 1 << k;
    }
    if (!*bits) return fail(c, "'type' must name at least one type%s", "");
    return 0;
}

/* The node for the type keywords of s, written into node x (x already allocated). */
static int build_types(comp *c, const cJSON *s, int x) {
    int bits;
    if (type_bits(c, s, &bits)) return -1;
    if (bits & T_NUM) bits &= ~T_INT;   /* every integer is a number */
    int alts[7], n = 0;
    if (bits == (T_ALL & ~T_INT) && !cJSON_HasObjectItem(s, "type")) {
        if ((alts[n++] = any_node(c)) < 0) return -1;
    } else {
        for (int t = 1; t <= T_NULL; t <<= 1)
            if ((bits & t) && (alts[n++] = type_node(c, s, t)) < 0) return -1;
    }
    if (n == 1) {
        c->g->nodes[x] = c->g->nodes[alts[0]];
        return x;
    }
    int u = union_node(c, alts, n);
    if (u < 0) return -1;
    c->g->nodes[x] = c->g->nodes[u];
    return x;
}

/* ---- $ref, enum, anyOf ---- */

/* A local JSON pointer ("#", "#/$defs/a", "#/definitions/a/properties/b"). */
static const cJSON *resolve_ref(comp *c, const char *ref) {
    if (ref[0] != '#' || (ref[1] && ref[1] != '/')) {
        fail(c, "$ref '%.80s' is not supported (only local ones: #/$defs/NAME, #/definitions/NAME)", ref);
        return NULL;
    }
    const cJSON *at = c->doc;
    const char *p = ref + 1;
    while (*p == '/' && at) {
        char tok[256];
        size_t n = 0;
        for (p++; *p && *p != '/'; p++) {
            char ch = *p;
            if (ch == '~' && (p[1] == '0' || p[1] == '1')) ch = *++p == '0' ? '~' : '/';
            if (n + 1 < sizeof tok) tok[n++] = ch;
        }
        tok[n] = 0;
        if (cJSON_IsArray(at)) {
            char *end;
            long i = strtol(tok, &end, 10);
            at = *tok && !*end && i >= 0 && i < 1000000 ? cJSON_GetArrayItem(at, (int)i) : NULL;
        } else {
            at = cJSON_IsObject(at) ? cJSON_GetObjectItemCaseSensitive(at, tok) : NULL;
        }
    }
    if (!at) fail(c, "$ref '%.80s' points to nothing", ref);
    return at;
}

/* Does node accept text exactly (a complete value)? */
static bool node_accepts(const sl_grammar *g, int node, const char *text) {
    gr_state *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    bool ok = a && b;
    if (ok) gr_state_init_node(g, node, a);
    for (const char *p = text; ok && *p; p++) {
        gr_state_feed(g, a, (uint8_t)*p, b);
        gr_state *t = a;
        a = b;
        b = t;
        ok = a->n > 0;
    }
    ok = ok && gr_state_complete(g, a);
    free(a);
    free(b);
    return ok;
}

/* enum/const: the values (compact JSON) that node `body` accepts, as a literal node. */
static int enum_node(comp *c, const cJSON *s, int body) {
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum"), *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (en && !cJSON_IsArray(en)) return fail(c, "'%s' must be an array", "enum");
    if (en && cn) return fail(c, "'%s' next to 'enum' is not supported", "const");
    int n = en ? cJSON_GetArraySize(en) : 1;
    if (n > GR_MAX_ENUM) return fail(c, "'enum' has more than %s values", "1000");
    char **texts = calloc((size_t)n + 1, sizeof *texts);
    int k = 0, id = -1;
    if (!texts) return fail(c, "%s", "out of memory");
    for (const cJSON *v = en ? en->child : cn; v; v = en ? v->next : NULL) {
        char *t = cJSON_PrintUnformatted(v);
        if (!t) {
            fail(c, "%s", "out of memory");
            goto done;
        }
        if (node_accepts(c->g, body, t)) texts[k++] = t;
        else free(t);
    }
    if (k == 0) {
        fail(c, "no value of '%s' is allowed by the rest of the schema", en ? "enum" : "const");
        goto done;
    }
    id = literal_node(c, (const char *const *)texts, k);
done:
    for (int i = 0; i < k; i++) free(texts[i]);
    free(texts);
    return id;
}

static int anyof_node(comp *c, const cJSON *s, const char *kw, int x) {
    const cJSON *alts = cJSON_GetObjectItemCaseSensitive(s, kw);
    if (!cJSON_IsArray(alts) || cJSON_GetArraySize(alts) == 0)
        return fail(c, "'%s' must be a non-empty array of schemas", kw);
    int n = cJSON_GetArraySize(alts), at = list_block(c, n), i = 0;
    if (at < 0 || only_keyword(c, s, kw, true)) return -1;
    const cJSON *a;
    cJSON_ArrayForEach(a, alts) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        int sub = compile_at(c, a, kw, idx);
        if (sub < 0) return -1;
        c->g->list[at + i++] = sub;
    }
    gr_node *nd = &c->g->nodes[x];
    nd->kind = GK_UNION;
    nd->alts = at;
    nd->n_alts = n;
    return x;
}

static int memo_add(comp *c, const cJSON *s, int id) {
    if (c->n_memo == c->cap_memo) {
        int cap = c->cap_memo ? c->cap_memo * 2 : 64;
        const cJSON **ms = realloc(c->memo_s, sizeof *ms * (size_t)cap);
        if (ms) c->memo_s = ms;
        int *mn = ms ? realloc(c->memo_n, sizeof *mn * (size_t)cap) : NULL;
        if (!mn) return fail(c, "%s", "out of memory");
        c->memo_n = mn;
        c->cap_memo = cap;
    }
    c->memo_s[c->n_memo] = s;
    c->memo_n[c->n_memo++] = id;
    return 0;
}

/* The schema object s (already known to be an object, not yet compiled) into node x.
 * OpenAPI's "nullable" is checked but adds nothing: JSON Schema validators
 * ignore it, so a null would not validate; leaving null out is sound under
 * both readings (type [..., "null"] is the JSON Schema way). */
static int compile_object(comp *c, const cJSON *s, int x) {
    const cJSON *nullable = cJSON_GetObjectItemCaseSensitive(s, "nullable");
    if (nullable && !cJSON_IsBool(nullable)) return fail(c, "'%s' must be true or false", "nullable");
    const char *combo = cJSON_HasObjectItem(s, "anyOf") ? "anyOf" : cJSON_HasObjectItem(s, "oneOf") ? "oneOf" : NULL;
    bool lits = cJSON_HasObjectItem(s, "enum") || cJSON_HasObjectItem(s, "const");
    int body = x;
    if (lits && (body = new_node(c, GK_NEVER)) < 0) return -1;
    if (combo ? anyof_node(c, s, combo, body) < 0 : build_types(c, s, body) < 0) return -1;
    if (lits) {
        int e = enum_node(c, s, body);
        if (e < 0) return -1;
        c->g->nodes[x] = c->g->nodes[e];
    }
    return x;
}

static int compile(comp *c, const cJSON *s) {
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s) ? any_node(c) : new_node(c, GK_NEVER);
    if (!cJSON_IsObject(s)) return fail(c, "a schema must be an object or a boolean%s", "");
    for (int i = 0; i < c->n_memo; i++)
        if (c->memo_s[i] == s) return c->memo_n[i];
    if (c->depth >= GR_MAX_SCHEMA_DEPTH) return fail(c, "nested deeper than %s schemas (or a $ref cycle)", "64");
    if (check_keywords(c, s)) return -1;
    c->depth++;
    int r;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(s, "allOf");
    if (ref) {
        const cJSON *target = NULL;
        if (!cJSON_IsString(ref)) r = fail(c, "'%s' must be a string", "$ref");
        else if (only_keyword(c, s, "$ref", false) || !(target = resolve_ref(c, ref->valuestring))) r = -1;
        else r = compile(c, target);
    } else if (all) {
        if (!cJSON_IsArray(all) || cJSON_GetArraySize(all) != 1)
            r = fail(c, "'%s' is supported with exactly one schema", "allOf");
        else r = only_keyword(c, s, "allOf", false) ? -1 : compile_at(c, all->child, "allOf", "0");
    } else {
        int x = new_node(c, GK_NEVER);
        r = x < 0 || memo_add(c, s, x) ? -1 : compile_object(c, s, x);
    }
    c->depth--;
    return r;
}

/* ---- public ---- */

void sl_grammar_free(sl_grammar *g) {
    if (!g) return;
    free(g->nodes);
    free(g->list);
    free(g->lits);
    free(g);
}

int sl_grammar_from_schema(const cJSON *schema, sl_grammar **out, sl_error *err) {
    *out = NULL;
    comp c;
    memset(&c, 0, sizeof c);
    c.any = c.boolean = c.null = -1;
    c.err = err;
    c.doc = schema;
    sl_error_clear(err);
    if (!(c.g = calloc(1, sizeof *c.g))) return sl_errorf(err, SL_ENOMEM, "out of memory");
    c.g->root = compile(&c, schema);
    free(c.memo_s);
    free(c.memo_n);
    if (c.g->root < 0) {
        sl_grammar_free(c.g);
        return err->code ? err->code : SL_EINVAL;
    }
    *out = c.g;
    return 0;
}

int sl_grammar_from_schema_text(const char *text, size_t len, sl_grammar **out, sl_error *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!j) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return sl_errorf(err, SL_EINVAL, "schema: not valid JSON (parse error at byte %zu)", at);
    }
    for (const char *q = end; q < text + len; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            cJSON_Delete(j);
            return sl_errorf(err, SL_EINVAL, "schema: data after the JSON value (byte %zu)", (size_t)(q - text));
        }
    int rc = sl_grammar_from_schema(j, out, err);
    cJSON_Delete(j);
    return rc;
}

int sl_grammar_json_object(sl_grammar **out, sl_error *err) {
    cJSON *s = cJSON_CreateObject();
    if (!s || !cJSON_AddStringToObject(s, "type", "object")) {
        cJSON_Delete(s);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    int rc = sl_grammar_from_schema(s, out, err);
    cJSON_Delete(s);
    return rc;
}
