/*
 * pickle.h — a safe, allowlist-only unpickler for PyTorch checkpoints, and a
 * non-executing opcode scanner (internal).
 *
 * The loader interprets the pickle opcodes that torch.save emits into a tree
 * of sl_pkv values.  It NEVER calls anything: GLOBAL only resolves a fixed
 * allowlist (collections.OrderedDict, torch._utils._rebuild_tensor_v2/_v3,
 * torch._utils._rebuild_parameter, torch storage classes, torch dtypes) to an
 * enum, and REDUCE only "builds" the few known shapes (an empty OrderedDict, a
 * tensor view descriptor, a parameter wrapper) after type-checking the args.
 * Stack, MARK depth, memo and object count are bounded; every read is bounds
 * checked; every error is one line prefixed by `where` ("x.bin: data.pkl").
 *
 * All values of one load live in one sl_pk_doc and die with it; values may be
 * shared (memo) and containers may even be cyclic, so walkers must bound depth.
 *
 * The scanner walks every opcode of protocols 0-5 without building anything
 * and reports each GLOBAL / INST / STACK_GLOBAL import, for `silica scan`.
 */
#ifndef SILICA_PICKLE_H
#define SILICA_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "silica/checkpoint.h"

typedef enum sl_pk_kind {
    SL_PK_NONE, SL_PK_BOOL, SL_PK_INT, SL_PK_FLOAT, SL_PK_STR,
    SL_PK_TUPLE, SL_PK_LIST, SL_PK_SET, SL_PK_DICT, SL_PK_ODICT,
    SL_PK_GLOBAL, SL_PK_STORAGE, SL_PK_TENSOR
} sl_pk_kind;

typedef enum sl_pk_global {
    SL_PKG_ORDERED_DICT,
    SL_PKG_REBUILD_V2,
    SL_PKG_REBUILD_V3,
    SL_PKG_REBUILD_PARAM,
    SL_PKG_TYPED_STORAGE,    /* torch.FloatStorage, ...: dtype says which */
    SL_PKG_UNTYPED_STORAGE,  /* torch.storage.UntypedStorage (numel in bytes) */
    SL_PKG_DTYPE             /* torch.float8_e4m3fn, ...: dtype says which */
} sl_pk_global;

typedef struct sl_pkv sl_pkv;

typedef struct sl_pk_tensor {
    sl_pkv *storage;        /* SL_PK_STORAGE */
    sl_dtype dtype;         /* SL_DTYPE_INVALID: a dtype silica cannot represent (named in dtype_name) */
    const char *dtype_name; /* "torch.float32" */
    int64_t offset;         /* elements */
    int ndim;
    int64_t *size;          /* ndim entries each (owned) */
    int64_t *stride;
    bool requires_grad;
    bool parameter;
} sl_pk_tensor;

struct sl_pkv {
    sl_pk_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *s; size_t len; } str;                 /* NUL-terminated, no NUL inside */
        struct { sl_pkv **v; size_t n, cap; } seq;           /* tuple/list/set; dict: v[2k]=key v[2k+1]=value */
        struct { sl_pk_global g; sl_dtype dtype; const char *name; } glob;   /* name: static "torch.FloatStorage" */
        struct { bool untyped; sl_dtype dtype; const char *type_name; char *key; char *location; int64_t numel; } storage;
        sl_pk_tensor tensor;
    } u;
    sl_pkv *state;          /* SL_PK_ODICT: the BUILD state dict ({'_metadata': ...}), else NULL */
};

typedef struct sl_pk_doc sl_pk_doc;

/* Interpret one pickle (PROTO 2..5 first, ends at STOP) from data[0..len).
 * *consumed gets the offset just past STOP (callers decide about trailing
 * bytes).  *root is valid until sl_pk_free(doc). */
int sl_pk_load(const uint8_t *data, size_t len, const char *where, sl_pk_doc **doc, sl_pkv **root,
               size_t *consumed, sl_error *err);
void sl_pk_free(sl_pk_doc *doc);

/* Every storage (BINPERSID result) the load created, in creation order. */
size_t sl_pk_storages(const sl_pk_doc *doc, sl_pkv ***out);

/* Whether silica's loader resolves module.name (the allowlist). */
bool sl_pk_global_allowed(const char *module, const char *name);

/* Scanner: calls cb for each import; via is "GLOBAL", "INST" or "STACK_GLOBAL"
 * (STACK_GLOBAL operands it cannot resolve are reported as "?"). */
typedef int (*sl_pk_import_cb)(void *ud, const char *module, const char *name, const char *via, size_t offset);
int sl_pk_scan(const uint8_t *data, size_t len, const char *where, sl_pk_import_cb cb, void *ud, size_t *consumed,
               sl_error *err);

/* "BINUNICODE" for 0x58, "?" when unknown. */
const char *sl_pk_opcode_name(uint8_t op);
const char *sl_pk_kind_name(sl_pk_kind k);

#endif
