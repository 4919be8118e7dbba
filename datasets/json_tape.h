/*
 * A read-only JSON document parsed in one pass into a flat tape: one 16-byte value per JSON
 * value, every string decoded once into one arena, containers listing their members through
 * one index table. Made for model files of a few megabytes that are mostly numbers (an
 * XGBoost model is ~400,000 of them): no allocation per value, and numbers converted by
 * Clinger's exact fast path when it applies, else by strtod.
 *
 * Stricter than RFC 8259 allows a parser to be: UTF-8 is validated, \u0000 and lone
 * surrogates are refused, duplicate keys in an object are refused (two readers of the same
 * file must not see different models), nesting is limited, and a number whose value does
 * not fit a double is refused. One extension, XGBoost's: the bare words NaN, Infinity and
 * -Infinity are numbers (its writer emits them; a categorical split's condition is NaN).
 */
#ifndef SG_JSON_TAPE_H
#define SG_JSON_TAPE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stagegate/common.h"

#define SG_JT_MAX_DEPTH 128

typedef enum {
    SG_JT_NULL,
    SG_JT_FALSE,
    SG_JT_TRUE,
    SG_JT_NUMBER,
    SG_JT_STRING,
    SG_JT_ARRAY,
    SG_JT_OBJECT,
} sg_jt_type;

/* sg_jv.n of a number written as an integer: JSON's digits with no fraction and no exponent
   ("5", "-0"; not "5.0" or "5E0"), UBJSON's integer types. XGBoost's reader tells its Integer
   from its Number this way and refuses one where it wants the other. */
#define SG_JT_INTEGER 1u
/* sg_jv.n flags of a decimal number whose double lies exactly halfway between two float32s
   while the text itself does not: rounding the text to a double and then to a float32 (ties
   to even) would give the float32 on the wrong side of the text. The flag says which float32
   the text rounds to directly, as strtof gives and as XGBoost reads its numbers. */
#define SG_JT_F32_UP 2u
#define SG_JT_F32_DOWN 4u

typedef struct {
    uint32_t type;
    uint32_t n; /* array: elements; object: members; string: bytes (without the NUL); number:
                   SG_JT_INTEGER, SG_JT_F32_UP, SG_JT_F32_DOWN or 0 */
    union {
        double num;
        uint64_t off; /* string: offset in the arena; array, object: first index in kids */
    } u;
} sg_jv;

typedef struct {
    sg_jv *v;
    size_t nv, vcap;
    uint32_t *kids; /* array: element indices; object: key index, value index per member */
    size_t nk, kcap;
    char *str;
    size_t ns, scap;
} sg_jdoc;

/* Parses len bytes (no NUL needed). On failure: SG_EINPUT with "line L column C: what" in
 * err (prefixed by name), or SG_ENOMEM; the document is then empty. */
SG_MUST_CHECK sg_status sg_jt_parse(const char *name, const char *text, size_t len, sg_jdoc *doc,
                                    sg_err *err);
/* The same tape from UBJSON (json_tape.c says which of it): errors say "malformed UBJSON at
 * byte N". Floats may be NaN or infinite. */
SG_MUST_CHECK sg_status sg_jt_parse_ubjson(const char *name, const void *bytes, size_t len,
                                           sg_jdoc *doc, sg_err *err);
/* Whether bytes start as a UBJSON object does (and a JSON text never can). */
bool sg_jt_looks_ubjson(const void *bytes, size_t len);
void sg_jt_free(sg_jdoc *doc);

static inline const sg_jv *sg_jt_root(const sg_jdoc *d)
{
    return d->nv ? &d->v[0] : NULL;
}

static inline bool sg_jt_is(const sg_jv *v, sg_jt_type t)
{
    return v && v->type == (uint32_t)t;
}

static inline bool sg_jt_is_bool(const sg_jv *v)
{
    return v && (v->type == SG_JT_TRUE || v->type == SG_JT_FALSE);
}

/* Whether v is a number written as an integer (SG_JT_INTEGER). */
static inline bool sg_jt_is_integer(const sg_jv *v)
{
    return sg_jt_is(v, SG_JT_NUMBER) && (v->n & SG_JT_INTEGER);
}

/* A number as the float32 nearest to its text (not the float32 nearest to the double nearest
   to the text, which differs where the double is a float32 tie: SG_JT_F32_UP/DOWN). */
static inline float sg_jt_f32(const sg_jv *v)
{
    float f = (float)v->u.num;
    if (v->n & SG_JT_F32_UP) return nextafterf(f, INFINITY);
    if (v->n & SG_JT_F32_DOWN) return nextafterf(f, -INFINITY);
    return f;
}

/* The value's decoded, NUL-terminated text; NULL unless v is a string. */
static inline const char *sg_jt_str(const sg_jdoc *d, const sg_jv *v)
{
    return sg_jt_is(v, SG_JT_STRING) ? d->str + v->u.off : NULL;
}

/* Elements of an array, 0 for anything else. */
static inline size_t sg_jt_size(const sg_jv *a)
{
    return sg_jt_is(a, SG_JT_ARRAY) ? a->n : 0;
}

/* Element i of an array; NULL when a is not an array or i is out of range. */
static inline const sg_jv *sg_jt_at(const sg_jdoc *d, const sg_jv *a, size_t i)
{
    if (!sg_jt_is(a, SG_JT_ARRAY) || i >= a->n) return NULL;
    return &d->v[d->kids[a->u.off + i]];
}

/* The member named key of an object; NULL when o is not an object or has no such member. */
const sg_jv *sg_jt_get(const sg_jdoc *d, const sg_jv *o, const char *key);

#endif
