/*
 * tools.c — tool calling in the server: the request side (the "tools" list
 * and the "tool_calls" of assistant messages, validated and shaped the way
 * chat templates expect them) and the response side (the calls toolcall.h
 * finds in an answer, as OpenAI message.tool_calls / delta.tool_calls or
 * Ollama message.tool_calls).
 *
 * Invariants:
 *  - tools reach the template as the client sent them (OpenAI and Ollama
 *    share the {"type": "function", "function": {name, description,
 *    parameters}} shape), after validation; errors name the field.
 *  - A message's tool call reaches the template with "arguments" an object
 *    when the client sent it as a JSON string holding one (the OpenAI API
 *    sends strings; templates render the object with tojson, as in
 *    transformers' tool-use documentation).
 *  - Call ids are a function of the request id, choice and position only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/srv_impl.h"

/* ---- request side ---- */

static bool valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

static int check_tool(const cJSON *t, int i, srv_error *e) {
    char w[64];
    snprintf(w, sizeof w, "tools[%d]", i);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
    if (!cJSON_IsObject(t)) return srv_fail(e, 400, w, "'%s' must be an object {\"type\": \"function\", \"function\"}", w);
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)
        return srv_fail(e, 400, w, "'%s.type' must be \"function\"", w);
    if (!cJSON_IsObject(fn)) return srv_fail(e, 400, w, "'%s.function' must be an object {name, description, parameters}", w);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(fn, "description");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
    if (!cJSON_IsString(name) || !valid_name(name->valuestring))
        return srv_fail(e, 400, w, "'%s.function.name' must be a string of 1 to 64 letters, digits, '_', '-' or '.'", w);
    if (desc && !cJSON_IsString(desc) && !cJSON_IsNull(desc))
        return srv_fail(e, 400, w, "'%s.function.description' must be a string", w);
    if (params && !cJSON_IsObject(params) && !cJSON_IsNull(params))
        return srv_fail(e, 400, w, "'%s.function.parameters' must be a JSON Schema object", w);
    return 0;
}

int srv_parse_tools(const cJSON *v, cJSON **out, srv_error *e) {
    if (!cJSON_IsArray(v)) return srv_fail(e, 400, "tools", "'tools' must be an array of {\"type\": \"function\", ...}");
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, v) if (check_tool(t, i++, e)) return -1;
    cJSON_Delete(*out);
    *out = NULL;
    if (i == 0) return 0;   /* [] is no tools */
    if (!(*out = cJSON_Duplicate(v, true))) return srv_fail(e, 500, "tools", "out of memory");
    return 0;
}

int srv_parse_tool_choice(const cJSON *v, srv_params *p, srv_error *e) {
    static const char *const names[] = {"auto", "none", "required"};
    for (int i = 0; i < 3; i++)
        if (cJSON_IsString(v) && strcmp(v->valuestring, names[i]) == 0) {
            p->tool_choice = (srv_tool_choice)i;
            return 0;
        }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(v, "function"), "name");
    if (!cJSON_IsObject(v))
        return srv_fail(e, 400, "tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or an object");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0 || !cJSON_IsString(name))
        return srv_fail(e, 400, "tool_choice",
                        "'tool_choice' as an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
    free(p->tool_name);
    if (!(p->tool_name = strdup(name->valuestring))) return srv_fail(e, 500, "tool_choice", "out of memory");
    p->tool_choice = SRV_TOOLS_NAMED;
    return 0;
}

int srv_check_tool_choice(const srv_params *p, srv_error *e) {
    if (p->tool_choice != SRV_TOOLS_REQUIRED && p->tool_choice != SRV_TOOLS_NAMED) return 0;
    if (!p->tools) return srv_fail(e, 400, "tool_choice", "'tool_choice' \"required\" or a function needs 'tools'");
    if (p->grammar)
        return srv_fail(e, 400, "response_format",
                        "'response_format' cannot be combined with 'tool_choice' \"required\" or a function");
    bool found = p->tool_choice != SRV_TOOLS_NAMED;
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, p->tools) {   /* the calls' arguments are generated under each tool's parameters */
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        bool used = p->tool_choice == SRV_TOOLS_REQUIRED || strcmp(name->valuestring, p->tool_name) == 0;
        found |= used;
        sl_grammar *g = NULL;
        sl_error err;
        sl_error_clear(&err);
        char w[64];
        snprintf(w, sizeof w, "tools[%d].function.parameters", i++);
        if (used && cJSON_IsObject(params) && sl_grammar_from_schema(params, &g, &err))
            return srv_fail(e, 400, w, "'%s': %s", w, err.msg);
        sl_grammar_free(g);
    }
    if (!found) return srv_fail(e, 400, "tool_choice", "'tool_choice' names '%.64s', which is not among 'tools'", p->tool_name);
    return 0;
}

/* One call of an assistant message, copied with string arguments parsed. */
static int norm_call(const cJSON *c, const char *w, cJSON **out, srv_error *e) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
    if (!cJSON_IsObject(c) || !cJSON_IsObject(fn))
        return srv_fail(e, 400, w, "'%s' must be an object {\"id\", \"type\": \"function\", \"function\"}", w);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
    if (!cJSON_IsString(name) || !name->valuestring[0]) return srv_fail(e, 400, w, "'%s.function.name' must be a string", w);
    if (args && !cJSON_IsString(args) && !cJSON_IsObject(args) && !cJSON_IsNull(args))
        return srv_fail(e, 400, w, "'%s.function.arguments' must be a JSON string or an object", w);
    if (id && !cJSON_IsString(id) && !cJSON_IsNull(id)) return srv_fail(e, 400, w, "'%s.id' must be a string", w);
    cJSON *k = cJSON_Duplicate(c, true);
    if (!k) return srv_fail(e, 500, w, "out of memory");
    if (cJSON_IsString(args)) {
        cJSON *obj = cJSON_Parse(args->valuestring);
        if (cJSON_IsObject(obj)) cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(k, "function"),
                                                                      "arguments", obj);
        else cJSON_Delete(obj);
    }
    *out = k;
    return 0;
}

int srv_norm_tool_calls(const cJSON *v, const char *w, cJSON **out, srv_error *e) {
    *out = NULL;
    if (!cJSON_IsArray(v)) return srv_fail(e, 400, w, "'%s' must be an array of tool calls", w);
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return srv_fail(e, 500, w, "out of memory");
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, v) {
        char cw[128];
        snprintf(cw, sizeof cw, "%.96s[%d]", w, i++);
        cJSON *k = NULL;
        if (norm_call(c, cw, &k, e)) {
            cJSON_Delete(arr);
            return -1;
        }
        cJSON_AddItemToArray(arr, k);
    }
    *out = arr;
    return 0;
}

/* ---- response side ---- */

static void call_id(const srv_req *r, const srv_choice *c, int i, char id[32]) {
    const sl_tool_call *k = &c->calls.calls[i];
    if (k->id && strlen(k->id) < 32) {
        snprintf(id, 32, "%s", k->id);
        return;
    }
    uint64_t h = 1469598103934665603ull;   /* FNV-1a of the request id, then choice and position */
    for (const char *p = r->id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h ^= ((uint64_t)c->index << 32) ^ (uint64_t)i;
    sl_tool_call_id(r->tool_format, h, id);
}

cJSON *srv_fmt_tool_calls(const srv_req *r, const srv_choice *c, bool ollama, bool with_index) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < c->calls.n_calls; i++) {
        const sl_tool_call *k = &c->calls.calls[i];
        cJSON *o = cJSON_CreateObject(), *fn = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        if (ollama) {
            cJSON_AddItemToObject(o, "function", fn);
            cJSON_AddStringToObject(fn, "name", k->name);
            cJSON *args = cJSON_Parse(k->arguments);
            cJSON_AddItemToObject(fn, "arguments", args ? args : cJSON_CreateObject());
            continue;
        }
        char id[32];
        call_id(r, c, i, id);
        if (with_index) cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "type", "function");
        cJSON_AddItemToObject(o, "function", fn);
        cJSON_AddStringToObject(fn, "name", k->name);
        cJSON_AddStringToObject(fn, "arguments", k->arguments);
    }
    return arr;
}

size_t srv_tools_stream_piece(srv_choice *c, sl_tool_format f, const char *r_prefix, const char *text, size_t len,
                              const char **piece) {
    *piece = "";
    if (!c->seen.p && r_prefix && srv_buf_str(&c->seen, r_prefix)) return 0;   /* a forced call's opening */
    if (srv_buf_add(&c->seen, text, len) || !c->seen.p) return 0;
    size_t start = sl_tool_calls_start(f, c->seen.p, c->seen.len);
    if (start <= c->sent) return 0;
    *piece = c->seen.p + c->sent;
    size_t n = start - c->sent;
    c->sent = start;
    return n;
}
