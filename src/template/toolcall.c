/*
 * toolcall.c — the tool-call formats of model families (toolcall.h): one
 * table says how a chat template shows its format and which marker opens
 * the calls in an answer; one parser per payload shape reads the calls.
 *
 * Invariants: the input is model output, never trusted: every read is
 * bounded by len (NUL bytes included), JSON goes through cJSON with an
 * explicit length, and anything that is not a well-formed call makes the
 * whole text content.  The only error is SL_ENOMEM.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "silica/toolcall.h"

/* How a format is recognised in a template and in an answer. */
typedef struct tool_fmt {
    sl_tool_format f;
    const char *name;
    const char *needs[3];   /* all appear in the template source */
    const char *bars[3];    /* none appears (another format with the same marker) */
    const char *open;       /* the marker that opens the calls in an answer */
    bool json_first;        /* a JSON object opening the answer is a call too (Llama 3) */
} tool_fmt;

/* Checked in order; the first match wins.  Hermes-style templates that
 * write XML (<function=...>, Qwen3-Coder) or key/value tags (<arg_key>,
 * GLM) inside <tool_call> are other formats. */
static const tool_fmt k_formats[] = {
    {SL_TOOL_FORMAT_MISTRAL, "mistral", {"[TOOL_CALLS]"}, {NULL}, "[TOOL_CALLS]", false},
    {SL_TOOL_FORMAT_HERMES, "hermes", {"<tool_call>", "\"arguments\""}, {"<function=", "<arg_key>"}, "<tool_call>",
     false},
    {SL_TOOL_FORMAT_LLAMA3, "llama3", {"<|start_header_id|>", "\"parameters\"", "ipython"}, {"<function=", "<tool_call>"},
     "<|python_tag|>", true},
};

static const tool_fmt *fmt_of(sl_tool_format f) {
    for (size_t i = 0; i < sizeof k_formats / sizeof *k_formats; i++)
        if (k_formats[i].f == f) return &k_formats[i];
    return NULL;
}

const char *sl_tool_format_name(sl_tool_format f) {
    const tool_fmt *t = fmt_of(f);
    return t ? t->name : "none";
}

int sl_tool_format_from_name(const char *name, sl_tool_format *out, sl_error *err) {
    if (name && strcmp(name, "none") == 0) {
        *out = SL_TOOL_FORMAT_NONE;
        return 0;
    }
    for (size_t i = 0; name && i < sizeof k_formats / sizeof *k_formats; i++)
        if (strcmp(k_formats[i].name, name) == 0) {
            *out = k_formats[i].f;
            return 0;
        }
    return sl_errorf(err, SL_EINVAL, "tool-call format '%.60s' is unknown; expected llama3, hermes, mistral or none",
                     name ? name : "");
}

static const char *find(const char *s, size_t len, const char *pat) {
    size_t k = strlen(pat);
    for (size_t i = 0; k <= len && i + k <= len; i++)
        if (memcmp(s + i, pat, k) == 0) return s + i;
    return NULL;
}

sl_tool_format sl_tool_format_of_template(const char *src, size_t len) {
    for (size_t i = 0; i < sizeof k_formats / sizeof *k_formats; i++) {
        const tool_fmt *t = &k_formats[i];
        bool ok = true;
        for (int j = 0; j < 3 && ok; j++)
            if (t->needs[j] && !find(src, len, t->needs[j])) ok = false;
        for (int j = 0; j < 3 && ok; j++)
            if (t->bars[j] && find(src, len, t->bars[j])) ok = false;
        if (ok) return t->f;
    }
    return SL_TOOL_FORMAT_NONE;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t len, size_t i) {
    while (i < len && is_ws(s[i])) i++;
    return i;
}

static bool at(const char *s, size_t len, size_t i, const char *pat) {
    size_t k = strlen(pat);
    return i <= len && len - i >= k && memcmp(s + i, pat, k) == 0;
}

size_t sl_tool_calls_start(sl_tool_format f, const char *text, size_t len) {
    const tool_fmt *t = fmt_of(f);
    if (!t) return len;
    size_t first = skip_ws(text, len, 0);
    if (t->json_first && (first == len || text[first] == '{')) return 0;
    const char *m = find(text, len, t->open);
    size_t at_marker = m ? (size_t)(m - text) : len;
    if (!m) {   /* a marker cut off by the end of the text so far */
        size_t k = strlen(t->open);
        for (size_t i = len > k ? len - k + 1 : 0; i < len; i++)
            if (memcmp(text + i, t->open, len - i) == 0) {
                at_marker = i;
                break;
            }
    }
    /* whitespace before a (possible) marker is held back with it: content ends trimmed */
    while (at_marker > 0 && is_ws(text[at_marker - 1])) at_marker--;
    return at_marker;
}

/* ---- the calls ---- */

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* One JSON value at text[i..len): the value and where it ends (*end). */
static cJSON *json_at(const char *s, size_t len, size_t i, size_t *end) {
    const char *stop = NULL;
    if (i >= len) return NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s + i, len - i, &stop, false);
    if (v) *end = (size_t)(stop - s);
    return v;
}

/* Compact JSON of an arguments value: an object, or a string holding one;
 * NULL (and *bad) for anything else.  A missing value is "{}". */
static char *arguments_text(const cJSON *a, bool *bad) {
    if (!a || cJSON_IsNull(a)) return strdup("{}");
    if (cJSON_IsObject(a)) return cJSON_PrintUnformatted(a);
    if (cJSON_IsString(a)) {
        cJSON *o = cJSON_Parse(a->valuestring);
        char *s = cJSON_IsObject(o) ? cJSON_PrintUnformatted(o) : NULL;
        if (!cJSON_IsObject(o)) *bad = true;
        cJSON_Delete(o);
        return s;
    }
    *bad = true;
    return NULL;
}

/* Append a call; name NULL: the object's "name"; need_args: the object must
 * have "arguments" or "parameters".  1 added, 0 not a call, -1 no memory. */
static int add_call(sl_tool_calls *o, const cJSON *obj, const char *name, size_t name_len, const char *id,
                    size_t id_len, bool need_args) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, "name");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "arguments");
    if (!a) a = cJSON_GetObjectItemCaseSensitive(obj, "parameters");
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (name) a = obj;
    else if (!cJSON_IsObject(obj) || !cJSON_IsString(n) || !n->valuestring[0] || (need_args && !a)) return 0;
    bool bad = false;
    char *args = arguments_text(a, &bad);
    if (bad) return 0;
    sl_tool_call *c = realloc(o->calls, sizeof *c * (size_t)(o->n_calls + 1));
    if (!c || !args) {
        free(args);
        if (c) o->calls = c;
        return -1;
    }
    o->calls = c;
    sl_tool_call *k = &c[o->n_calls];
    k->arguments = args;
    k->name = name ? dupn(name, name_len) : strdup(n->valuestring);
    k->id = id ? dupn(id, id_len) : cJSON_IsString(jid) && jid->valuestring[0] ? strdup(jid->valuestring) : NULL;
    o->n_calls++;
    if (!k->name || ((id || cJSON_IsString(jid)) && !k->id)) return -1;
    return 1;
}

/* Each parser reads the calls from text[i..len) (i at the marker, or at the
 * JSON for Llama 3): 1 read, 0 not calls, -1 no memory. */

static int add_value(sl_tool_calls *o, const char *s, size_t len, size_t i, size_t *end, bool array_ok, bool need_args) {
    cJSON *v = json_at(s, len, i, end);
    if (!v) return 0;
    int rc = 1;
    if (array_ok && cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        const cJSON *x;
        cJSON_ArrayForEach(x, v) if ((rc = add_call(o, x, NULL, 0, NULL, 0, need_args)) != 1) break;
    } else {
        rc = add_call(o, v, NULL, 0, NULL, 0, need_args);
    }
    cJSON_Delete(v);
    return rc;
}

static int parse_llama3(sl_tool_calls *o, const char *s, size_t len, size_t i) {
    i = skip_ws(s, len, i);
    if (at(s, len, i, "<|python_tag|>")) i += strlen("<|python_tag|>");
    for (;;) {
        size_t end = 0;
        int rc = add_value(o, s, len, skip_ws(s, len, i), &end, false, true);
        if (rc != 1) return rc;
        i = skip_ws(s, len, end);
        if (i == len) return 1;
        if (s[i] != ';') return 0;   /* more than calls: an answer that happens to start with JSON */
        i = skip_ws(s, len, i + 1);
        if (i == len) return 1;
    }
}

static int parse_hermes(sl_tool_calls *o, const char *s, size_t len, size_t i) {
    while ((i = skip_ws(s, len, i)) < len && at(s, len, i, "<tool_call>")) {
        size_t end = 0;
        int rc = add_value(o, s, len, i + strlen("<tool_call>"), &end, false, false);
        if (rc != 1) return rc;
        i = skip_ws(s, len, end);
        if (at(s, len, i, "</tool_call>")) i += strlen("</tool_call>");
        else if (i != len) return 0;   /* unclosed block followed by more text */
    }
    return o->n_calls > 0;   /* text after the last block is dropped, as the template never writes any */
}

/* [TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}: the part after the marker. */
static int mistral_v11(sl_tool_calls *o, const char *s, size_t len, size_t i, size_t *end) {
    const char *args = find(s + i, len - i, "[ARGS]");
    if (!args) return 0;
    size_t name_end = (size_t)(args - s), id_at = 0, id_len = 0;
    const char *cid = find(s + i, name_end - i, "[CALL_ID]");
    if (cid) {
        id_at = (size_t)(cid - s) + strlen("[CALL_ID]");
        id_len = name_end - id_at;
        name_end = (size_t)(cid - s);
    }
    if (name_end == i) return 0;
    for (size_t k = i; k < name_end; k++)
        if ((unsigned char)s[k] <= ' ' || s[k] == '[' || s[k] == '{') return 0;   /* a function name, not text */
    cJSON *v = json_at(s, len, name_end + (cid ? id_len + strlen("[CALL_ID]") : 0) + strlen("[ARGS]"), end);
    int rc = cJSON_IsObject(v) ? add_call(o, v, s + i, name_end - i, cid ? s + id_at : NULL, id_len, false) : 0;
    cJSON_Delete(v);
    return rc;
}

static int parse_mistral(sl_tool_calls *o, const char *s, size_t len, size_t i) {
    while ((i = skip_ws(s, len, i)) < len && at(s, len, i, "[TOOL_CALLS]")) {
        i = skip_ws(s, len, i + strlen("[TOOL_CALLS]"));
        size_t end = 0;
        int rc = i < len && s[i] == '[' ? add_value(o, s, len, i, &end, true, false) : mistral_v11(o, s, len, i, &end);
        if (rc != 1) return rc;
        i = end;
    }
    return o->n_calls > 0;
}

static void calls_clear(sl_tool_calls *o) {
    for (int i = 0; i < o->n_calls; i++) {
        free(o->calls[i].name);
        free(o->calls[i].arguments);
        free(o->calls[i].id);
    }
    free(o->calls);
    o->calls = NULL;
    o->n_calls = 0;
}

void sl_tool_calls_free(sl_tool_calls *c) {
    if (!c) return;
    calls_clear(c);
    free(c->content);
    memset(c, 0, sizeof *c);
}

int sl_tool_calls_parse(sl_tool_format f, const char *text, size_t len, sl_tool_calls *out, sl_error *err) {
    memset(out, 0, sizeof *out);
    const tool_fmt *t = fmt_of(f);
    size_t from = len;
    int rc = 0;
    if (t) {
        size_t first = skip_ws(text, len, 0);
        const char *m = find(text, len, t->open);
        if (t->json_first && first < len && text[first] == '{') from = first;
        else if (m) from = (size_t)(m - text);
    }
    if (from < len) {
        rc = f == SL_TOOL_FORMAT_LLAMA3 ? parse_llama3(out, text, len, from)
             : f == SL_TOOL_FORMAT_HERMES ? parse_hermes(out, text, len, from)
                                          : parse_mistral(out, text, len, from);
        if (rc != 1) calls_clear(out);
    }
    if (rc == 1)   /* content: the text before the calls, trailing whitespace trimmed */
        while (from > 0 && is_ws(text[from - 1])) from--;
    else
        from = len;
    out->content = rc < 0 ? NULL : dupn(text, from);
    out->content_len = from;
    if (!out->content) {
        sl_tool_calls_free(out);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    return 0;
}

void sl_tool_call_id(sl_tool_format f, uint64_t seed, char buf[32]) {
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    bool mistral = f == SL_TOOL_FORMAT_MISTRAL;
    size_t n = 0, want = mistral ? 9 : 24;
    if (!mistral) {
        memcpy(buf, "call_", 5);
        n = 5;
    }
    uint64_t x = seed;
    for (size_t i = 0; i < want; i++) {
        /* splitmix64: every character from a fresh, well-mixed word */
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        buf[n++] = alnum[z % (sizeof alnum - 1)];
    }
    buf[n] = 0;
}

/* ---- forced calls (tool_choice "required" / a named function) ---- */

/* {"type": "object", "properties": {"name": {"const": N}, KEY: params}, "required": [...],
 * "additionalProperties": false}; params NULL: any object. */
static cJSON *call_schema(const char *name, const cJSON *names, const char *key, const cJSON *params) {
    cJSON *o = cJSON_CreateObject(), *props = cJSON_AddObjectToObject(o, "properties"), *n = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "object");
    if (name) cJSON_AddStringToObject(n, "const", name);
    else cJSON_AddItemToObject(n, "enum", cJSON_Duplicate(names, 1));
    cJSON_AddItemToObject(props, "name", n);
    cJSON *a = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
    if (!cJSON_IsObject(params)) cJSON_AddStringToObject(a, "type", "object");
    cJSON_AddItemToObject(props, key, a);
    const char *req[] = {"name", key};
    cJSON_AddItemToObject(o, "required", cJSON_CreateStringArray(req, 2));
    cJSON_AddFalseToObject(o, "additionalProperties");
    return o;
}

int sl_tool_call_schema(sl_tool_format f, const cJSON *tools, const char *name, const char **prefix, cJSON **schema,
                        sl_error *err) {
    *schema = NULL;
    *prefix = "";
    if (!fmt_of(f))
        return sl_errorf(err, SL_EINVAL, "the model's chat template shows no tool-call format silica knows "
                                         "(llama3, hermes or mistral), so a tool call cannot be forced");
    const char *key = f == SL_TOOL_FORMAT_LLAMA3 ? "parameters" : "arguments";
    cJSON *names = cJSON_CreateArray(), *alts = cJSON_CreateArray();
    const cJSON *t, *chosen = NULL;
    bool found = false;
    int n = 0;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (!cJSON_IsString(nm)) continue;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (name && !found && strcmp(nm->valuestring, name) == 0) {
            found = true;
            chosen = params;
        }
        cJSON_AddItemToArray(names, cJSON_CreateString(nm->valuestring));
        cJSON_AddItemToArray(alts, call_schema(nm->valuestring, NULL, key, params));
        n++;
    }
    int rc = 0;
    cJSON *one = NULL;
    if (n == 0) rc = sl_errorf(err, SL_EINVAL, "a tool call was required but no tools were given");
    else if (name && !found) rc = sl_errorf(err, SL_EINVAL, "the function '%.64s' is not among the tools", name);
    else if (name) one = call_schema(name, NULL, key, chosen);
    else if (n == 1) one = cJSON_DetachItemFromArray(alts, 0);
    else if (n <= 16) {
        one = cJSON_CreateObject();
        cJSON_AddItemToObject(one, "anyOf", alts);
        alts = NULL;
    } else one = call_schema(NULL, names, key, NULL);
    cJSON_Delete(names);
    cJSON_Delete(alts);
    if (rc) return rc;
    if (f == SL_TOOL_FORMAT_MISTRAL) {   /* [TOOL_CALLS][{...}]: one call, as in the other formats */
        cJSON *arr = cJSON_CreateObject();
        cJSON_AddStringToObject(arr, "type", "array");
        cJSON_AddItemToObject(arr, "items", one);
        cJSON_AddNumberToObject(arr, "minItems", 1);
        cJSON_AddNumberToObject(arr, "maxItems", 1);
        one = arr;
    }
    *prefix = f == SL_TOOL_FORMAT_HERMES ? "<tool_call>\n" : f == SL_TOOL_FORMAT_MISTRAL ? "[TOOL_CALLS]" : "";
    *schema = one;
    return one ? 0 : sl_errorf(err, SL_ENOMEM, "out of memory");
}
