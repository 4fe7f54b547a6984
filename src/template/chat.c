/*
 * chat.c — finding a model's chat template and preparing messages the way
 * transformers does before rendering: template precedence
 * (chat_template.jinja > chat_template.json > tokenizer_config.json),
 * named-template selection (explicit name, else "tool_use" when tools are
 * given, else "default"), special tokens for the context, and message
 * normalisation (null keys dropped, reasoning aliased).
 *
 * Invariants: files are read with a size cap (sl_read_file); every error
 * names the file and the field; returned buffers are malloc'd.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "silica/checkpoint.h"
#include "silica/io.h"
#include "template/tmpl_impl.h"

#define MAX_CONFIG (64u << 20)

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool exists(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int read_json(const char *path, cJSON **out, sl_error *err) {
    char *buf;
    size_t n;
    int rc = sl_read_file(path, MAX_CONFIG, &buf, &n, err);
    if (rc) return rc;
    *out = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!*out) return sl_errorf(err, SL_EINVAL, "%s: not valid JSON", path);
    return SL_OK;
}

/* A token in tokenizer_config.json: a string or an AddedToken object {"content": ...}. */
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static void add_special(cJSON *special, const cJSON *cfg) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                                       "mask_token"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *t = token_text(cJSON_GetObjectItemCaseSensitive(cfg, keys[i]));
        if (!t) continue;
        cJSON_DeleteItemFromObjectCaseSensitive(special, keys[i]);
        cJSON_AddStringToObject(special, keys[i], t);
    }
    /* model-specific named tokens (Gemma 3: boi_token, eoi_token, image_token) */
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(cfg, "extra_special_tokens");
    if (cJSON_IsObject(extra))
        for (const cJSON *e = extra->child; e; e = e->next) {
            const char *t = token_text(e);
            if (!t || !e->string) continue;
            cJSON_DeleteItemFromObjectCaseSensitive(special, e->string);
            cJSON_AddStringToObject(special, e->string, t);
        }
}

/* chat_template value: string, or list of {name, template}. */
static int pick_template(const char *path, const cJSON *ct, const char *which, int has_tools, char **src, sl_error *err) {
    if (cJSON_IsString(ct) && !which) {
        *src = strdup(ct->valuestring);
        return *src ? SL_OK : sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    if (cJSON_IsString(ct))
        return sl_errorf(err, SL_EINVAL, "%s: has a single chat template, no template named '%s'", path, which);
    if (!cJSON_IsArray(ct))
        return sl_errorf(err, SL_EINVAL, "%s: \"chat_template\" must be a string or a list of {name, template}", path);
    const char *want[2] = {which, NULL};
    if (!which) {
        want[0] = has_tools ? "tool_use" : "default";
        want[1] = has_tools ? "default" : NULL;
    }
    for (int w = 0; w < 2 && want[w]; w++)
        for (const cJSON *e = ct->child; e; e = e->next) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (!cJSON_IsString(nm) || !cJSON_IsString(tp))
                return sl_errorf(err, SL_EINVAL, "%s: chat_template entries need string \"name\" and \"template\"", path);
            if (!strcmp(nm->valuestring, want[w])) {
                *src = strdup(tp->valuestring);
                return *src ? SL_OK : sl_errorf(err, SL_ENOMEM, "out of memory");
            }
        }
    if (which) return sl_errorf(err, SL_EINVAL, "%s: no chat template named '%s'", path, which);
    return sl_errorf(err, SL_EINVAL,
                     "%s: This model has multiple chat templates with no default specified! Please either pass a chat "
                     "template or the name of the template you wish to use", path);
}

int sl_tmpl_load_chat_template(const char *path, const char *which, int has_tools, char **src, cJSON **special,
                               sl_error *err) {
    *src = NULL;
    if (special) *special = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return sl_errorf(err, SL_EIO, "%s: no such file or directory", path);
    cJSON *sp = cJSON_CreateObject();
    if (!sp) return sl_errorf(err, SL_ENOMEM, "out of memory");
    int rc = SL_OK;
    char *gguf = NULL;
    if ((rc = sl_checkpoint_gguf_path(path, &gguf, err))) goto done;
    if (gguf && (!S_ISDIR(st.st_mode) || sl_tmpl_gguf_has_chat_template(gguf))) {
        rc = sl_tmpl__gguf_chat_template(gguf, which, has_tools, src, &sp, err);
        free(gguf);
        goto done;
    }
    free(gguf);
    if (!S_ISDIR(st.st_mode)) {
        size_t n;
        rc = sl_read_file(path, MAX_CONFIG, src, &n, err);
        if (!rc && strlen(*src) != n) {
            free(*src);
            *src = NULL;
            rc = sl_errorf(err, SL_EINVAL, "%s: template contains a NUL byte", path);
        }
        goto done;
    }
    char *cfg_path = join_path(path, "tokenizer_config.json"), *stm_path = join_path(path, "special_tokens_map.json");
    char *jinja = join_path(path, "chat_template.jinja"), *ctjson = join_path(path, "chat_template.json");
    cJSON *cfg = NULL;
    if (!cfg_path || !stm_path || !jinja || !ctjson) {
        rc = sl_errorf(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    if (exists(stm_path)) {
        cJSON *m = NULL;
        if ((rc = read_json(stm_path, &m, err))) goto out;
        add_special(sp, m);
        cJSON_Delete(m);
    }
    if (exists(cfg_path)) {
        if ((rc = read_json(cfg_path, &cfg, err))) goto out;
        add_special(sp, cfg);
    }
    if (exists(jinja)) {
        size_t n;
        if ((rc = sl_read_file(jinja, MAX_CONFIG, src, &n, err))) goto out;
        if (strlen(*src) != n) rc = sl_errorf(err, SL_EINVAL, "%s: template contains a NUL byte", jinja);
    } else if (exists(ctjson)) {
        cJSON *j = NULL;
        if ((rc = read_json(ctjson, &j, err))) goto out;
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
        if (!ct) rc = sl_errorf(err, SL_EINVAL, "%s: no \"chat_template\" field", ctjson);
        else rc = pick_template(ctjson, ct, which, has_tools, src, err);
        cJSON_Delete(j);
    } else if (cfg && cJSON_GetObjectItemCaseSensitive(cfg, "chat_template") &&
               !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"))) {
        rc = pick_template(cfg_path, cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"), which, has_tools, src, err);
    } else {
        rc = sl_errorf(err, SL_EINVAL,
                       "%s: no chat template (looked for chat_template.jinja, chat_template.json and "
                       "\"chat_template\" in tokenizer_config.json)", path);
    }
out:
    if (rc && *src) {
        free(*src);
        *src = NULL;
    }
    cJSON_Delete(cfg);
    free(cfg_path);
    free(stm_path);
    free(jinja);
    free(ctjson);
done:
    if (rc || !special) cJSON_Delete(sp);
    else *special = sp;
    return rc;
}

bool sl_tmpl_has_chat_template(const char *path) {
    char *gguf = NULL;
    if (sl_checkpoint_gguf_path(path, &gguf, NULL) == 0 && gguf) {
        bool yes = sl_tmpl_gguf_has_chat_template(gguf);
        free(gguf);
        if (yes || !sl_path_is_dir(path)) return yes;
    }
    if (!sl_path_is_dir(path)) return false;
    char *a = join_path(path, "chat_template.jinja"), *b = join_path(path, "chat_template.json");
    char *c = join_path(path, "tokenizer_config.json");
    bool yes = (a && exists(a)) || (b && exists(b));
    if (!yes && c && exists(c)) {
        cJSON *j = NULL;
        if (read_json(c, &j, NULL) == 0) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
            yes = t && !cJSON_IsNull(t);
        }
        cJSON_Delete(j);
    }
    free(a);
    free(b);
    free(c);
    return yes;
}

cJSON *sl_tmpl_normalize_messages(const cJSON *messages, sl_error *err) {
    if (!cJSON_IsArray(messages)) {
        sl_errorf(err, SL_EINVAL, "messages must be a JSON list of objects");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    if (!out) {
        sl_errorf(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    int i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m)) {
            sl_errorf(err, SL_EINVAL, "message %d is not a JSON object", i);
            cJSON_Delete(out);
            return NULL;
        }
        static const char *const rf[] = {"reasoning_content", "thinking", "reasoning"};
        const cJSON *reason = NULL;
        for (int k = 0; k < 3 && !reason; k++) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, rf[k]);
            if (r && !cJSON_IsNull(r)) reason = r;
        }
        cJSON *nm = cJSON_CreateObject();
        if (!nm) goto oom;
        cJSON_AddItemToArray(out, nm);
        /* {"thinking": r, **message, "reasoning_content": r}, then drop null-valued keys */
        if (reason) {
            const cJSON *own = cJSON_GetObjectItemCaseSensitive(m, "thinking");
            cJSON *d = cJSON_Duplicate(own && !cJSON_IsNull(own) ? own : reason, 1);
            if (!d) goto oom;
            cJSON_AddItemToObject(nm, "thinking", d);
        }
        for (const cJSON *f = m->child; f; f = f->next) {
            if (cJSON_IsNull(f) || (reason && (!strcmp(f->string, "thinking") || !strcmp(f->string, "reasoning_content"))))
                continue;
            if (cJSON_GetObjectItemCaseSensitive(nm, f->string)) cJSON_DeleteItemFromObjectCaseSensitive(nm, f->string);
            cJSON *d = cJSON_Duplicate(f, 1);
            if (!d) goto oom;
            cJSON_AddItemToObject(nm, f->string, d);
        }
        if (reason) {
            const cJSON *own = cJSON_GetObjectItemCaseSensitive(m, "reasoning_content");
            /* position: where message had reasoning_content, else appended */
            cJSON *d = cJSON_Duplicate(reason, 1);
            if (!d) goto oom;
            if (own && !cJSON_IsNull(own)) {
                /* rebuild keeping the original position */
                cJSON *re = cJSON_CreateObject();
                if (!re) { cJSON_Delete(d); goto oom; }
                cJSON *th = cJSON_DetachItemFromObjectCaseSensitive(nm, "thinking");
                if (th) cJSON_AddItemToObject(re, "thinking", th);
                for (const cJSON *f = m->child; f; f = f->next) {
                    if (cJSON_IsNull(f) || !strcmp(f->string, "thinking")) continue;
                    if (!strcmp(f->string, "reasoning_content")) {
                        cJSON_AddItemToObject(re, "reasoning_content", d);
                        d = NULL;
                        continue;
                    }
                    cJSON *x = cJSON_DetachItemFromObjectCaseSensitive(nm, f->string);
                    if (x) cJSON_AddItemToObject(re, f->string, x);
                }
                cJSON_DeleteItemFromArray(out, i);
                cJSON_AddItemToArray(out, re);
                cJSON_Delete(d);
            } else cJSON_AddItemToObject(nm, "reasoning_content", d);
        }
    }
    return out;
oom:
    sl_errorf(err, SL_ENOMEM, "out of memory");
    cJSON_Delete(out);
    return NULL;
}
