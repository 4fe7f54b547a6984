/*
 * tok_load.c — loading a tokenizer: tokenizer.json (model, added_tokens,
 * normalizer, pre_tokenizer, post_processor, decoder) plus, when present
 * next to it, tokenizer_config.json (bos/eos tokens, add_bos_token,
 * add_eos_token) and special_tokens_map.json (the bos/eos the config does
 * not name).  Also the vocabulary getters.
 *
 * Invariants: after a successful load every table is complete and
 * validated (ids < n_ids; token strings UTF-8 from cJSON); a failed load
 * frees everything and leaves one error line naming the file and the
 * field or unsupported component.  The post-processor is flattened into
 * one template for single sequences.
 */
#include <stdlib.h>
#include <string.h>

#include "silica/checkpoint.h"
#include "silica/gguf.h"
#include "silica/io.h"
#include "tokenizer/tok_impl.h"

#define TOK_MAX_JSON (2ull << 30)

static bool jbool(const cJSON *j, const char *k, bool def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int load_added(sl_tokenizer *t, const cJSON *arr, sl_error *err) {
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr)) return sl_errorf(err, SL_EINVAL, "%s: \"added_tokens\" must be an array", t->name);
    int cnt = cJSON_GetArraySize(arr);
    if (cnt == 0) return 0;
    t->added = calloc((size_t)cnt, sizeof *t->added);
    if (!t->added) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 16777216.0 ||
            id->valuedouble != (double)(int64_t)id->valuedouble || !cJSON_IsString(c))
            return sl_errorf(err, SL_EINVAL, "%s: added_tokens[%d]: needs an integer \"id\" in [0, 2^24) and a string \"content\"",
                             t->name, i);
        tok_added *a = &t->added[t->n_added++];
        a->id = (uint32_t)id->valuedouble;
        size_t n = strlen(c->valuestring);
        if (!(a->content = malloc(n + 1))) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
        memcpy(a->content, c->valuestring, n + 1);
        a->n = n;
        a->lstrip = jbool(it, "lstrip", false);
        a->rstrip = jbool(it, "rstrip", false);
        a->single_word = jbool(it, "single_word", false);
        a->normalized = jbool(it, "normalized", true);
        a->special = jbool(it, "special", false);
        i++;
    }
    return 0;
}

/* The id -> token table (model vocab, overridden by added tokens, whose
 * string is their normalized content when normalized=true, as HF shows and
 * decodes them) and the content -> id map of added tokens (original content,
 * as HF's token_to_id). */
static int build_table(sl_tokenizer *t, sl_error *err) {
    uint32_t n = t->bpe.n_mod;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id + 1 > n) n = t->added[i].id + 1;
    t->n_ids = n;
    t->tok_off = malloc(((size_t)n + 1) * sizeof *t->tok_off);
    t->tok_len = malloc(((size_t)n + 1) * sizeof *t->tok_len);
    t->tok_special = calloc((size_t)n + 1, 1);
    t->add_off = malloc(((size_t)n + 1) * sizeof *t->add_off);
    t->add_len = malloc(((size_t)n + 1) * sizeof *t->add_len);
    uint32_t *ids = malloc((t->n_added + 1) * sizeof *ids);
    tok_buf nb = {0}, tmp = {0};
    int rc = 0;
    if (!t->tok_off || !t->tok_len || !t->tok_special || !t->add_off || !t->add_len || !ids) rc = SL_ENOMEM;
    for (uint32_t i = 0; !rc && i < n; i++) {
        t->tok_off[i] = i < t->bpe.n_mod ? t->bpe.mod_off[i] : 0;
        t->tok_len[i] = i < t->bpe.n_mod ? t->bpe.mod_len[i] : UINT32_MAX;
    }
    for (size_t i = 0; !rc && i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (t->strs.n + a->n >= UINT32_MAX / 2 || tok_buf_put(&t->strs, a->content, a->n) || tok_buf_putc(&t->strs, 0)) {
            rc = SL_ENOMEM;
            break;
        }
        t->add_off[a->id] = t->tok_off[a->id] = (uint32_t)(t->strs.n - a->n - 1);
        t->add_len[a->id] = t->tok_len[a->id] = (uint32_t)a->n;
        if (a->normalized && t->has_norm) {
            if (tok_norm_apply(&t->norm, a->content, a->n, &nb, &tmp) || t->strs.n + nb.n >= UINT32_MAX / 2 ||
                tok_buf_put(&t->strs, nb.p, nb.n) || tok_buf_putc(&t->strs, 0)) {
                rc = SL_ENOMEM;
                break;
            }
            t->tok_off[a->id] = (uint32_t)(t->strs.n - nb.n - 1);
            t->tok_len[a->id] = (uint32_t)nb.n;
        }
        t->tok_special[a->id] = a->special;
        ids[i] = a->id;
    }
    if (!rc) rc = tok_strmap_build(&t->added_map, &t->strs, t->add_off, t->add_len, ids, t->n_added);
    free(ids);
    tok_buf_free(&nb);
    tok_buf_free(&tmp);
    if (rc) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    return 0;
}

/* ---- post-processor: flattened single-sequence template ---- */
/* Items: low 32 bits the id (SEQ_A = the sequence), high 32 bits 1 + the
 * offset in t->strs of the token's name as HF's Encoding.tokens shows it. */
#define SEQ_A UINT32_MAX

/* Keep a NUL-terminated name; returns its reference (0 = none). */
static uint64_t name_ref(sl_tokenizer *t, const char *s) {
    if (!s) return 0;
    size_t n = strlen(s), off = t->strs.n;
    if (off + n >= UINT32_MAX / 2 || tok_buf_put(&t->strs, s, n) || tok_buf_putc(&t->strs, 0)) return 0;
    return (uint64_t)(off + 1) << 32;
}

static int tmpl_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        if (c > 4096) return SL_EINVAL;
        uint64_t *nv = realloc(*v, c * sizeof *nv);
        if (!nv) return SL_ENOMEM;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

/* Parse one processor into a template (list of ids and SEQ_A). `identity` when it adds nothing. */
static int post_one(sl_tokenizer *t, const cJSON *j, uint64_t **tv, size_t *tn, bool *identity, sl_error *err) {
    size_t cap = 0;
    *tn = 0;
    *identity = false;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(ty)) return sl_errorf(err, SL_EINVAL, "%s: post_processor: missing \"type\"", t->name);
    const char *ts = ty->valuestring;
    if (!strcmp(ts, "ByteLevel")) {
        *identity = true;
        return 0;
    }
    if (!strcmp(ts, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
        if (!cJSON_IsArray(single))
            return sl_errorf(err, SL_EINVAL, "%s: post_processor TemplateProcessing: \"single\" must be an array", t->name);
        const cJSON *it;
        cJSON_ArrayForEach(it, single) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
            const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
            if (sq) {
                if (tmpl_push(tv, tn, &cap, SEQ_A))
                    return sl_errorf(err, SL_EINVAL, "%s: post_processor template too long", t->name);
                continue;
            }
            const cJSON *sid = cJSON_GetObjectItemCaseSensitive(st, "id");
            if (!cJSON_IsString(sid))
                return sl_errorf(err, SL_EINVAL, "%s: post_processor TemplateProcessing: bad \"single\" item", t->name);
            const cJSON *def = cJSON_GetObjectItemCaseSensitive(sp, sid->valuestring);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
            if (!cJSON_IsArray(ids))
                return sl_errorf(err, SL_EINVAL, "%s: post_processor TemplateProcessing: special token \"%.60s\" has no \"ids\"",
                                 t->name, sid->valuestring);
            const cJSON *x, *names = cJSON_GetObjectItemCaseSensitive(def, "tokens");
            int k = 0;
            cJSON_ArrayForEach(x, ids) {
                const cJSON *nm = cJSON_GetArrayItem(names, k++);
                if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble >= (double)t->n_ids ||
                    t->tok_len[(uint32_t)x->valuedouble] == UINT32_MAX)
                    return sl_errorf(err, SL_EINVAL, "%s: post_processor TemplateProcessing: special token \"%.60s\": id out of range",
                                     t->name, sid->valuestring);
                uint64_t ref = name_ref(t, cJSON_IsString(nm) ? nm->valuestring : NULL);
                if (tmpl_push(tv, tn, &cap, ref | (uint32_t)x->valuedouble))
                    return sl_errorf(err, SL_EINVAL, "%s: post_processor template too long", t->name);
            }
        }
        return 0;
    }
    if (!strcmp(ts, "BertProcessing") || !strcmp(ts, "RobertaProcessing")) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(j, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        if (!cJSON_IsNumber(ci) || !cJSON_IsNumber(si) || ci->valuedouble < 0 || si->valuedouble < 0 ||
            ci->valuedouble >= (double)t->n_ids || si->valuedouble >= (double)t->n_ids)
            return sl_errorf(err, SL_EINVAL, "%s: post_processor %s: \"cls\"/\"sep\" must be [token, id]", t->name, ts);
        const cJSON *cn = cJSON_GetArrayItem(cls, 0), *sn = cJSON_GetArrayItem(sep, 0);
        uint64_t cr = name_ref(t, cJSON_IsString(cn) ? cn->valuestring : NULL);
        uint64_t sr = name_ref(t, cJSON_IsString(sn) ? sn->valuestring : NULL);
        if (tmpl_push(tv, tn, &cap, cr | (uint32_t)ci->valuedouble) || tmpl_push(tv, tn, &cap, SEQ_A) ||
            tmpl_push(tv, tn, &cap, sr | (uint32_t)si->valuedouble))
            return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
        return 0;
    }
    return sl_errorf(err, SL_EUNSUPPORTED, "%s: unsupported post_processor \"%s\"", t->name, ts);
}

/* Substitute the current template for A in tv. */
static int post_compose(sl_tokenizer *t, const uint64_t *tv, size_t tn, sl_error *err) {
    uint64_t *nv = NULL;
    size_t nn = 0, cap = 0;
    for (size_t i = 0; i < tn; i++) {
        if ((uint32_t)tv[i] != SEQ_A) {
            if (tmpl_push(&nv, &nn, &cap, tv[i])) goto fail;
            continue;
        }
        for (size_t k = 0; k < t->post.n_single; k++)
            if (tmpl_push(&nv, &nn, &cap, t->post.single[k])) goto fail;
    }
    free(t->post.single);
    t->post.single = nv;
    t->post.n_single = nn;
    return 0;
fail:
    free(nv);
    return sl_errorf(err, SL_EINVAL, "%s: post_processor template too long", t->name);
}

static int load_post(sl_tokenizer *t, const cJSON *j, sl_error *err) {
    t->post.single = malloc(sizeof *t->post.single);
    if (!t->post.single) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    t->post.single[0] = SEQ_A;
    t->post.n_single = 1;
    if (!j || cJSON_IsNull(j)) return 0;
    t->post.present = true;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *list = NULL;
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) {
        list = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(list))
            return sl_errorf(err, SL_EINVAL, "%s: post_processor Sequence: \"processors\" must be an array", t->name);
    }
    const cJSON *it = list ? list->child : j;
    for (; it; it = list ? it->next : NULL) {
        uint64_t *tv = NULL;
        size_t tn = 0;
        bool ident;
        int rc = post_one(t, it, &tv, &tn, &ident, err);
        if (!rc && !ident) rc = post_compose(t, tv, tn, err);
        free(tv);
        if (rc) return rc;
    }
    return 0;
}

/* ---- tokenizer_config.json ---- */
static const char *cfg_token(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static char *dupz(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static int read_json_object(const char *path, cJSON **out, sl_error *err) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = sl_read_file(path, 64ull << 20, &buf, &len, err);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return sl_errorf(err, SL_EINVAL, "%s: not a JSON object", path);
    }
    *out = j;
    return 0;
}

/* tokenizer_config.json (may be NULL) and, for bos/eos it does not name,
 * special_tokens_map.json (may be NULL). */
static int load_config(sl_tokenizer *t, const char *path, const char *map_path, sl_error *err) {
    cJSON *cfg = NULL, *map = NULL;
    int rc = 0;
    if (path && (rc = read_json_object(path, &cfg, err))) return rc;
    const char *bos = cfg_token(cfg, "bos_token"), *eos = cfg_token(cfg, "eos_token");
    if ((!bos || !eos) && map_path) {
        if ((rc = read_json_object(map_path, &map, err))) {
            cJSON_Delete(cfg);
            return rc;
        }
        if (!bos) bos = cfg_token(map, "bos_token");
        if (!eos) eos = cfg_token(map, "eos_token");
    }
    if (bos && !(t->bos_s = dupz(bos))) rc = SL_ENOMEM;
    if (eos && !(t->eos_s = dupz(eos))) rc = SL_ENOMEM;
    t->info.add_bos = jbool(cfg, "add_bos_token", false);
    t->info.add_eos = jbool(cfg, "add_eos_token", false);
    cJSON_Delete(cfg);
    cJSON_Delete(map);
    if (!path) path = map_path;
    if (rc) return sl_errorf(err, SL_ENOMEM, "out of memory");
    t->info.bos_token = t->bos_s;
    t->info.eos_token = t->eos_s;
    int64_t bos_id = t->bos_s ? sl_tok_token_to_id(t, t->bos_s, strlen(t->bos_s)) : -1;
    int64_t eos_id = t->eos_s ? sl_tok_token_to_id(t, t->eos_s, strlen(t->eos_s)) : -1;
    bool add_bos = t->info.add_bos, add_eos = t->info.add_eos;
    if ((add_bos && bos_id < 0) || (add_eos && eos_id < 0))
        return sl_errorf(err, SL_EINVAL, "%s: add_%s_token is true but the %s token is not in the vocabulary", path,
                         add_bos && bos_id < 0 ? "bos" : "eos", add_bos && bos_id < 0 ? "bos" : "eos");
    return tok_set_bos_eos(t, bos_id, eos_id, add_bos, add_eos, err);
}

int tok_set_bos_eos(sl_tokenizer *t, int64_t bos_id, int64_t eos_id, bool add_bos, bool add_eos, sl_error *err) {
    t->info.bos_id = bos_id;
    t->info.eos_id = eos_id;
    t->info.add_bos = add_bos;
    t->info.add_eos = add_eos;
    /* Without a post-processor in tokenizer.json, the config decides BOS/EOS. */
    if (!t->post.present && (add_bos || add_eos)) {
        uint64_t tv[3];
        size_t tn = 0;
        if (add_bos) tv[tn++] = name_ref(t, t->bos_s) | (uint32_t)bos_id;
        tv[tn++] = SEQ_A;
        if (add_eos) tv[tn++] = name_ref(t, t->eos_s) | (uint32_t)eos_id;
        t->post.present = true;
        return post_compose(t, tv, tn, err);
    }
    return 0;
}

static int from_json(sl_tokenizer *t, const cJSON *root, tok_span vocab, tok_span merges, sl_error *err) {
    if (!cJSON_IsObject(root)) return sl_errorf(err, SL_EINVAL, "%s: not a JSON object", t->name);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return sl_errorf(err, SL_EINVAL, "%s: missing \"model\" object", t->name);
    int rc = tok_bpe_from_json(t, model, vocab, merges, err);
    if (rc) {
        if (strncmp(err ? err->msg : "", t->name, strlen(t->name)) != 0) sl_error_prefix(err, "%s: ", t->name);
        return rc;
    }
    if ((rc = load_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), err))) return rc;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (n && !cJSON_IsNull(n)) {
        t->has_norm = true;
        if ((rc = tok_norm_from_json(&t->norm, n, err))) goto prefixed;
    }
    if ((rc = build_table(t, err))) return rc;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (p && !cJSON_IsNull(p)) {
        t->has_pre = true;
        if ((rc = tok_pretok_from_json(&t->pre, p, err))) goto prefixed;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (d && !cJSON_IsNull(d)) {
        t->has_dec = true;
        if ((rc = tok_dec_from_json(&t->dec, d, err))) goto prefixed;
    }
    if ((rc = load_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), err))) return rc;
    if (tok_fastdec_init(t)) return sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name);
    if ((rc = tok_trie_build(&t->trie_raw, t->added, t->n_added, false, NULL, err))) goto prefixed;
    if ((rc = tok_trie_build(&t->trie_norm, t->added, t->n_added, true, t->has_norm ? &t->norm : NULL, err)))
        goto prefixed;
    return 0;
prefixed:
    sl_error_prefix(err, "%s: ", t->name);
    return rc;
}

static sl_tokenizer *tok_new(const char *name) {
    sl_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = dupz(name);
    if (!t->name) {
        free(t);
        return NULL;
    }
    t->info.bos_id = t->info.eos_id = t->info.eot_id = t->info.pad_id = t->info.unk_id = -1;
    t->info.model_type = "BPE";
    return t;
}

int sl_tok_load_json(const char *json, size_t len, const char *name, sl_tokenizer **out, sl_error *err) {
    *out = NULL;
    sl_tokenizer *t = tok_new(name ? name : "tokenizer.json");
    if (!t) return sl_errorf(err, SL_ENOMEM, "out of memory");
    tok_span vocab, merges;
    char *rest = NULL;
    size_t eoff = 0;
    int src = tok_json_split(json, len, &vocab, &merges, &rest, &eoff);
    if (src) {
        /* error path only: let cJSON say what is wrong when it can */
        cJSON *full = src == SL_ENOMEM ? NULL : cJSON_ParseWithLength(json, len);
        int rc = src == SL_ENOMEM       ? sl_errorf(err, SL_ENOMEM, "%s: out of memory", t->name)
                 : full && !cJSON_IsObject(full) ? sl_errorf(err, SL_EINVAL, "%s: not a JSON object", t->name)
                                                 : sl_errorf(err, SL_EINVAL, "%s: not valid JSON (near byte %zu)", t->name, eoff);
        cJSON_Delete(full);
        sl_tok_free(t);
        return rc;
    }
    cJSON *root = cJSON_ParseWithLength(rest, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        long off = (ep && ep >= rest && ep <= rest + len) ? (long)(ep - rest) : -1;
        int rc = sl_errorf(err, SL_EINVAL, "%s: not valid JSON (near byte %ld)", t->name, off);
        free(rest);
        sl_tok_free(t);
        return rc;
    }
    int rc = from_json(t, root, vocab, merges, err);
    cJSON_Delete(root);
    free(rest);
    if (rc) {
        sl_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* A GGUF model path (file, split part or directory of one GGUF model):
 * 1 and its tokenizer loaded; 0 when the path is no GGUF model. */
static int try_gguf(const char *path, sl_tokenizer **out, int *rc, sl_error *err) {
    char *gguf = NULL;
    if ((*rc = sl_checkpoint_gguf_path(path, &gguf, err))) return 1;
    if (!gguf) return 0;
    *rc = sl_tok_load_gguf_file(gguf, out, err);
    free(gguf);
    return 1;
}

static bool has_tokenizer_files(const char *dir) {
    char *a = sl_path_join(dir, "tokenizer.json"), *b = sl_path_join(dir, "tokenizer.model");
    bool yes = (a && sl_path_exists(a)) || (b && sl_path_exists(b));
    free(a);
    free(b);
    return yes;
}

int sl_tok_load_for_model(const char *model, const char *override, sl_tokenizer **out, sl_error *err) {
    *out = NULL;
    if (override) return sl_tok_load(override, out, err);
    char *gguf = NULL;
    int rc = sl_checkpoint_gguf_path(model, &gguf, err);
    if (rc) return rc;
    if (gguf) {
        sl_gguf *g = NULL;
        rc = sl_gguf_open(gguf, &g, err);
        if (!rc && sl_gguf_find(g, "tokenizer.ggml.model") >= 0) rc = sl_tok_load_gguf(g, gguf, out, err);
        sl_gguf_close(g);
        free(gguf);
        if (rc || *out) return rc;
    }
    char *dir = NULL;
    if (sl_path_is_dir(model)) dir = dupz(model);
    else {
        size_t dl = (size_t)(sl_path_basename(model) - model);
        if ((dir = malloc(dl + 2))) {
            memcpy(dir, dl ? model : ".", dl ? dl : 1);
            dir[dl ? dl : 1] = 0;
        }
    }
    if (!dir) return sl_errorf(err, SL_ENOMEM, "out of memory");
    if (has_tokenizer_files(dir)) rc = sl_tok_load(dir, out, err);
    free(dir);
    return rc;
}

int sl_tok_load(const char *path, sl_tokenizer **out, sl_error *err) {
    *out = NULL;
    int grc;
    if (!sl_path_is_dir(path) && sl_path_exists(path) && sl_detect_format(path, NULL) == SL_FMT_GGUF &&
        try_gguf(path, out, &grc, err))
        return grc;
    if (sl_path_is_dir(path) && !has_tokenizer_files(path) && try_gguf(path, out, &grc, err)) return grc;
    char *json_path = NULL, *cfg_path = NULL;
    if (sl_path_is_dir(path)) {
        json_path = sl_path_join(path, "tokenizer.json");
        cfg_path = sl_path_join(path, "tokenizer_config.json");
    } else {
        json_path = dupz(path);
        const char *base = sl_path_basename(path);
        size_t dl = (size_t)(base - path);
        char *dir = malloc(dl + 2);
        if (dir) {
            memcpy(dir, path, dl);
            dir[dl] = 0;
            cfg_path = sl_path_join(dl ? dir : ".", "tokenizer_config.json");
            free(dir);
        }
    }
    if (!json_path || !cfg_path) {
        free(json_path);
        free(cfg_path);
        return sl_errorf(err, SL_ENOMEM, "out of memory");
    }
    int rc;
    bool spm = false;
    if (sl_path_is_dir(path) && !sl_path_exists(json_path)) {
        /* older checkpoints: only a SentencePiece tokenizer.model */
        char *spm_path = sl_path_join(path, "tokenizer.model");
        if (spm_path && sl_path_exists(spm_path)) {
            free(json_path);
            json_path = spm_path;
            spm = true;
        } else {
            free(spm_path);
            rc = sl_errorf(err, SL_EINVAL, "%s: no tokenizer.json (or tokenizer.model) in this directory", path);
            goto done;
        }
    }
    char *buf = NULL;
    size_t len = 0;
    if ((rc = sl_read_file(json_path, TOK_MAX_JSON, &buf, &len, err))) goto done;
    if (spm) {
        char *js = NULL;
        size_t jn = 0;
        rc = tok_spm_to_json(buf, len, json_path, &js, &jn, err);
        free(buf);
        buf = js;
        len = jn;
    }
    if (!rc) rc = sl_tok_load_json(buf, len, json_path, out, err);
    free(buf);
    if (rc) goto done;
    char *map_path = sl_path_join(sl_path_is_dir(path) ? path : ".", "special_tokens_map.json");
    if (map_path && !sl_path_is_dir(path)) { /* next to the tokenizer.json */
        free(map_path);
        size_t dl = strlen(cfg_path) - strlen("tokenizer_config.json");
        map_path = malloc(dl + sizeof "special_tokens_map.json");
        if (map_path) {
            memcpy(map_path, cfg_path, dl);
            memcpy(map_path + dl, "special_tokens_map.json", sizeof "special_tokens_map.json");
        }
    }
    bool has_cfg = sl_path_exists(cfg_path), has_map = map_path && sl_path_exists(map_path);
    if ((has_cfg || has_map) && (rc = load_config(*out, has_cfg ? cfg_path : NULL, has_map ? map_path : NULL, err))) {
        sl_tok_free(*out);
        *out = NULL;
    }
    free(map_path);
done:
    free(json_path);
    free(cfg_path);
    return rc;
}

void sl_tok_free(sl_tokenizer *t) {
    if (!t) return;
    tok_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    tok_strmap_free(&t->added_map);
    tok_trie_free(&t->trie_raw);
    tok_trie_free(&t->trie_norm);
    tok_norm_free(&t->norm);
    tok_pretok_free(&t->pre);
    tok_dec_free(&t->dec);
    free(t->post.single);
    tok_buf_free(&t->strs);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_special);
    free(t->add_off);
    free(t->add_len);
    free(t->bos_s);
    free(t->eos_s);
    free(t->name);
    tok_arena_free(&t->arena);
    tok_buf_free(&t->nbuf);
    tok_buf_free(&t->ntmp);
    tok_buf_free(&t->lossy);
    free(t->pa.v);
    free(t->pb.v);
    free(t->pc.v);
    free(t->seq.ids);
    tok_fastdec_free(t->fast);
    free(t->ovr);
    tok_buf_free(&t->ovr_buf);
    free(t);
}

uint32_t sl_tok_vocab_size(const sl_tokenizer *t) { return t->n_ids; }

const char *sl_tok_id_to_token(const sl_tokenizer *t, uint32_t id, size_t *len) {
    if (id >= t->n_ids || t->tok_len[id] == UINT32_MAX) return NULL;
    if (len) *len = t->tok_len[id];
    return tok_str(t, id);
}

int64_t sl_tok_token_to_id(const sl_tokenizer *t, const char *tok, size_t len) {
    int64_t id = tok_strmap_get(&t->added_map, tok, len);
    if (id >= 0) return id;
    return tok_strmap_get(&t->bpe.vocab, tok, len);
}

bool sl_tok_is_special(const sl_tokenizer *t, uint32_t id) { return id < t->n_ids && t->tok_special[id]; }

const sl_tok_info *sl_tok_get_info(const sl_tokenizer *t) { return &t->info; }
