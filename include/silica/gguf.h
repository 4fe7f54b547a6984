/*
 * silica/gguf.h — typed access to a GGUF file's header: key/value metadata
 * with their GGUF types, tensor infos, and the ggml-type <-> sl_dtype map.
 *
 * The checkpoint reader (sl_gguf_read) exposes GGUF metadata in
 * ck->metadata as PLAIN JSON values (numbers, strings, bools, arrays; arrays
 * are kept whole, e.g. tokenizer.ggml.tokens).  The exact GGUF types live in
 * the file and are read through this API, which is what a model loader or a
 * tokenizer uses (no JSON involved), and what a GGUF->GGUF rewrite uses to
 * keep every key's type (sl_gguf_metadata_json(g, true)).
 *
 * Invariants:
 *  - An sl_gguf is a validated parse: every string, array and tensor range was
 *    bounds-checked with overflow-checked arithmetic; keys and tensor names are
 *    non-empty, free of NUL bytes and unique; tensor data ranges are aligned,
 *    inside the file and do not overlap.
 *  - Values are views into the file bytes (little-endian, possibly unaligned);
 *    the bytes must outlive the sl_gguf (sl_gguf_open keeps its own mapping).
 *
 * Writer metadata rule (sl_writer_open(SL_FMT_GGUF, ..., metadata)):
 *   metadata is a JSON object; keys are written in object order.  Each value is
 *   either PLAIN or TYPED.
 *   PLAIN, type inferred (as gguf-py's GGUFWriter infers Python values):
 *     true/false -> bool; string -> string; integral number -> int32 (int64 if
 *     outside int32; a cJSON raw integer, as the reader emits beyond 2^53, ->
 *     int64, or uint64 above int64); other number -> float32; array -> array whose element type
 *     is inferred from all elements (all strings -> string, all bools -> bool,
 *     all integral numbers -> int32/int64, numbers with a fraction -> float32,
 *     all arrays -> nested array); an empty plain array is an int32 array.
 *     Exception: a plain "general.alignment" is written as uint32.
 *   TYPED: {"type": T, "value": V} with T one of uint8 int8 uint16 int16 uint32
 *     int32 float32 bool string array uint64 int64 float64.  64-bit integers may
 *     be given as decimal strings (exact beyond 2^53).  Floats may be given as
 *     the strings "nan", "inf", "-inf".  Arrays: {"type":"array",
 *     "elem_type": T, "value": [...]} where elements are plain values of type T
 *     (elem_type may be omitted to infer it); for elem_type "array" every
 *     element is itself a typed array object or a plain JSON array.
 *   null, objects without "type", values out of range for their type and mixed
 *   arrays are rejected with an error naming the key.  general.alignment must
 *   be a uint32 power of two; it sets the data alignment (default 32).
 *   sl_gguf_metadata_json(g, true) produces exactly this typed form, so
 *   reading a file and writing it back with the same tensors in the same order
 *   reproduces it byte for byte (the output is always GGUF v3).
 */
#ifndef SILICA_GGUF_H
#define SILICA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "silica/api.h"
#include "silica/checkpoint.h"
#include "silica/dtype.h"
#include "silica/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_GGUF_DEFAULT_ALIGNMENT 32u
#define SL_GGUF_MAX_DIMS 4
#define SL_GGUF_MAX_NAME 64   /* llama.cpp limit: tensor names are shorter (the writer enforces it) */

typedef enum sl_gguf_type {
    SL_GGUF_UINT8 = 0, SL_GGUF_INT8 = 1, SL_GGUF_UINT16 = 2, SL_GGUF_INT16 = 3,
    SL_GGUF_UINT32 = 4, SL_GGUF_INT32 = 5, SL_GGUF_FLOAT32 = 6, SL_GGUF_BOOL = 7,
    SL_GGUF_STRING = 8, SL_GGUF_ARRAY = 9, SL_GGUF_UINT64 = 10, SL_GGUF_INT64 = 11,
    SL_GGUF_FLOAT64 = 12,
    SL_GGUF_TYPE_COUNT
} sl_gguf_type;

SL_API const char *sl_gguf_type_name(sl_gguf_type t);          /* "uint32", ...; "?" if invalid */
SL_API int sl_gguf_type_from_name(const char *name);           /* sl_gguf_type, or -1 */

/* ggml tensor type id <-> sl_dtype.  F32 0, F16 1, Q4_0 2, ..., I8 24, I16 25,
 * I32 26, I64 27, F64 28, BF16 30, TQ1_0 34, TQ2_0 35, MXFP4 39. */
SL_API sl_dtype sl_gguf_dtype_from_ggml(uint32_t ggml_type);   /* SL_DTYPE_INVALID if none */
SL_API int sl_gguf_ggml_from_dtype(sl_dtype t);                /* ggml id, or -1 if GGUF cannot hold it */
SL_API const char *sl_gguf_ggml_type_name(uint32_t ggml_type); /* also names types silica lacks; NULL if unknown */

/* One metadata value (or array element): a view into the file. */
typedef struct sl_gguf_value {
    sl_gguf_type type;
    sl_gguf_type elem_type;  /* arrays only */
    uint64_t len;            /* string: bytes; array: elements; scalar: 1 */
    const uint8_t *data;     /* scalar bytes / string bytes / first array element (LE, unaligned) */
    uint64_t nbytes;         /* encoded size of data..: the whole string or array payload */
    const uint64_t *index;   /* private: element offsets of a top-level array of strings */
} sl_gguf_value;

typedef struct sl_gguf_tensor_info {
    const char *name;        /* NUL-terminated, owned by the sl_gguf */
    uint32_t ggml_type;
    sl_dtype dtype;
    uint32_t n_dims;
    int64_t ne[SL_GGUF_MAX_DIMS];  /* ggml order: ne[0] varies fastest (row-major shape reversed); unused = 1 */
    uint64_t offset;         /* relative to sl_gguf_data_offset() */
    uint64_t nbytes;
} sl_gguf_tensor_info;

typedef struct sl_gguf sl_gguf;

/* Map and parse a file.  Errors name the file and the field. */
SL_API int sl_gguf_open(const char *path, sl_gguf **out, sl_error *err);
/* Parse bytes the caller keeps alive (name is used in messages). */
SL_API int sl_gguf_parse(const uint8_t *data, uint64_t size, const char *name, sl_gguf **out, sl_error *err);
/* Parse the header of a GGUF checkpoint's first file, through its mapping. */
SL_API int sl_gguf_from_checkpoint(const sl_checkpoint *ck, sl_gguf **out, sl_error *err);
SL_API void sl_gguf_close(sl_gguf *g);   /* NULL ok */

SL_API uint32_t sl_gguf_version(const sl_gguf *g);     /* 2 or 3 */
SL_API uint32_t sl_gguf_alignment(const sl_gguf *g);
SL_API uint64_t sl_gguf_data_offset(const sl_gguf *g); /* absolute start of the tensor data section */

/* ---- metadata ---- */
SL_API size_t sl_gguf_n_kv(const sl_gguf *g);
SL_API const char *sl_gguf_key(const sl_gguf *g, size_t i);                 /* NULL if out of range */
SL_API int sl_gguf_kv_value(const sl_gguf *g, size_t i, sl_gguf_value *out); /* 0, or SL_EINVAL if out of range */
SL_API long sl_gguf_find(const sl_gguf *g, const char *key);                /* index, or -1 */

/* Getters by key: 0 on success; SL_EINVAL (with a message naming the key) if
 * missing, of an incompatible type or out of range.  Integer getters accept any
 * integer type (and bool) whose value fits; float getters accept float32,
 * float64 and integers.  Strings are not NUL-terminated views. */
SL_API int sl_gguf_get_u32(const sl_gguf *g, const char *key, uint32_t *out, sl_error *err);
SL_API int sl_gguf_get_i32(const sl_gguf *g, const char *key, int32_t *out, sl_error *err);
SL_API int sl_gguf_get_u64(const sl_gguf *g, const char *key, uint64_t *out, sl_error *err);
SL_API int sl_gguf_get_i64(const sl_gguf *g, const char *key, int64_t *out, sl_error *err);
SL_API int sl_gguf_get_f32(const sl_gguf *g, const char *key, float *out, sl_error *err);
SL_API int sl_gguf_get_f64(const sl_gguf *g, const char *key, double *out, sl_error *err);
SL_API int sl_gguf_get_bool(const sl_gguf *g, const char *key, bool *out, sl_error *err);
SL_API int sl_gguf_get_str(const sl_gguf *g, const char *key, const char **s, size_t *len, sl_error *err);
SL_API int sl_gguf_get_array(const sl_gguf *g, const char *key, sl_gguf_value *out, sl_error *err);

/* Array element i (O(1) for fixed-size elements and top-level string arrays,
 * a walk otherwise).  0, or SL_EINVAL if arr is not an array or i >= len. */
SL_API int sl_gguf_array_get(const sl_gguf_value *arr, uint64_t i, sl_gguf_value *out);
/* Scalar conversions of a value (same acceptance rules as the getters). */
SL_API bool sl_gguf_value_i64(const sl_gguf_value *v, int64_t *out);
SL_API bool sl_gguf_value_u64(const sl_gguf_value *v, uint64_t *out);
SL_API bool sl_gguf_value_f64(const sl_gguf_value *v, double *out);

/* All metadata as a new JSON object (caller cJSON_Delete()s it): plain values
 * (typed == false, what ck->metadata holds; integers beyond 2^53 are cJSON raw
 * numbers so they print exactly) or the typed form of the writer
 * rule above (typed == true).  NULL on allocation failure.  Strings holding
 * NUL bytes are cut at the first NUL in JSON (the getters return all bytes). */
SL_API cJSON *sl_gguf_metadata_json(const sl_gguf *g, bool typed);
/* Shorthand: typed metadata of a GGUF checkpoint, ready for sl_writer_open. */
SL_API int sl_gguf_checkpoint_metadata(const sl_checkpoint *ck, cJSON **typed, sl_error *err);

/* ---- tensor infos, in file order ---- */
SL_API size_t sl_gguf_n_tensors(const sl_gguf *g);
SL_API const sl_gguf_tensor_info *sl_gguf_tensor(const sl_gguf *g, size_t i);   /* NULL if out of range */

#ifdef __cplusplus
}
#endif
#endif
