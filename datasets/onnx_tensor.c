/* ONNX tensors: initializers and Constant values, inline or in external files next to the
   model, every size checked before use; and the loader's table of named values. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

#define MAX_EXTERNAL_FILE ((size_t)8 << 30)

sg_status ox_node_err(ox_ctx *c, sg_err *err, int status, const char *fmt, ...)
{
    char what[OX_NODE_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *n = c->node;
    if (!n) return sg_errf(err, status, "%s: %s", c->path, what);
    char name[64];
    if (n->name && n->name[0])
        snprintf(name, sizeof name, "'%.60s'", n->name);
    else
        snprintf(name, sizeof name, "#%d", c->node_index);
    const bool ml = n->domain && !strcmp(n->domain, OX_ML_DOMAIN);
    return sg_errf(err, status, "%s: node %s (%.40s, %sopset %d): %s", c->path, name,
                   n->op_type ? n->op_type : "?", ml ? OX_ML_DOMAIN " " : "",
                   ml ? c->ml_opset : c->opset, what);
}

sg_status ox_batch_err(ox_ctx *c, sg_err *err, const char *fmt, ...)
{
    char what[OX_NODE_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sg_status rc = ox_node_err(c, err, SG_EINPUT, "%s", what);
    if (c->input_batch > 0 && err) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n,
                 "; graph input '%.100s' is declared with a fixed batch of %lld, as an export "
                 "with a dummy input and no dynamic batch axis makes: export it with one "
                 "(PyTorch: torch.onnx.export(..., dynamic_axes={'%.100s': {0: 'batch'}}))",
                 c->input_name ? c->input_name : "?", (long long)c->input_batch,
                 c->input_name ? c->input_name : "?");
    }
    return rc;
}

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

int ox_value_find(ox_ctx *c, const char *name)
{
    if (!c->hash_cap) return -1;
    for (size_t i = hash_name(name) & (c->hash_cap - 1);; i = (i + 1) & (c->hash_cap - 1)) {
        int v = c->hash[i];
        if (v < 0) return -1;
        if (!c->vals[v].hidden && strcmp(c->vals[v].name, name) == 0) return v;
    }
}

static sg_status rehash(ox_ctx *c, size_t cap, sg_err *err)
{
    int *h = malloc(cap * sizeof *h);
    if (!h) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (size_t i = 0; i < cap; i++)
        h[i] = -1;
    for (int v = 0; v < c->n_vals; v++) {
        if (c->vals[v].unnamed) continue;
        size_t i = hash_name(c->vals[v].name) & (cap - 1);
        while (h[i] >= 0)
            i = (i + 1) & (cap - 1);
        h[i] = v;
    }
    free(c->hash);
    c->hash = h;
    c->hash_cap = cap;
    return SG_OK;
}

static int value_add(ox_ctx *c, const char *name, bool unnamed, sg_err *err)
{
    if (c->n_vals == c->cap_vals) {
        if (c->cap_vals > (1 << 26)) {
            sg_errf(err, SG_EINPUT, "%s: more than %d values", c->path, 1 << 26);
            return -1;
        }
        int cap = c->cap_vals ? 2 * c->cap_vals : 64;
        ox_value *nv = realloc(c->vals, (size_t)cap * sizeof *nv);
        if (!nv) {
            sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            return -1;
        }
        c->vals = nv;
        c->cap_vals = cap;
    }
    int idx = c->n_vals++;
    ox_value *v = &c->vals[idx];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->unnamed = unnamed;
    v->data = idx;
    v->producer = -1;
    if (unnamed) return idx;
    /* Keep the table at most half full. */
    if ((size_t)c->n_vals * 2 > c->hash_cap) {
        if (rehash(c, c->hash_cap ? 2 * c->hash_cap : 256, err)) return -1;
    } else {
        size_t i = hash_name(name) & (c->hash_cap - 1);
        while (c->hash[i] >= 0)
            i = (i + 1) & (c->hash_cap - 1);
        c->hash[i] = idx;
    }
    return idx;
}

int ox_value_add(ox_ctx *c, const char *name, sg_err *err)
{
    return value_add(c, name, false, err);
}

int ox_value_add_unnamed(ox_ctx *c, const char *label, sg_err *err)
{
    return value_add(c, label, true, err);
}

/* A location must stay inside the model's directory: relative, no "..", no empty parts. */
static bool location_ok(const char *loc)
{
    if (!loc[0] || loc[0] == '/' || strlen(loc) > 1024) return false;
    const char *p = loc;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
        p += n;
        if (*p == '/') p++;
    }
    return true;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static bool digest_u64(EVP_MD_CTX *md, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return EVP_DigestUpdate(md, le, sizeof le) == 1;
}

/* One part of the framed digest: its length (8 bytes, little-endian), then its bytes. Every
   part carries its length, so no two different lists of parts hash the same bytes. */
static bool digest_part(EVP_MD_CTX *md, const void *p, size_t n)
{
    return digest_u64(md, (uint64_t)n) && EVP_DigestUpdate(md, p, n) == 1;
}

/* Adds an external file to the framed digest, starting it (tag, then the .onnx) at the first. */
static sg_status digest_external(ox_ctx *c, const char *loc, const uint8_t *buf, size_t n,
                                 sg_err *err)
{
    bool ok = true;
    if (!c->md) {
        c->md = EVP_MD_CTX_new();
        ok = c->md && EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c->md, OX_DIGEST_TAG, sizeof OX_DIGEST_TAG) == 1 &&
             digest_part(c->md, c->onnx_bytes, c->onnx_len);
    }
    ok = ok && digest_part(c->md, loc, strlen(loc)) && digest_part(c->md, buf, n);
    return ok ? SG_OK : sg_errf(err, SG_EINTERNAL, "%s: SHA-256 failed", c->path);
}

sg_status ox_digest_final(ox_ctx *c, uint8_t out[32], sg_err *err)
{
    unsigned int mdlen = 0;
    if (c->md ? EVP_DigestFinal_ex(c->md, out, &mdlen) == 1
              : EVP_Digest(c->onnx_bytes, c->onnx_len, out, &mdlen, EVP_sha256(), NULL) == 1)
        return SG_OK;
    return sg_errf(err, SG_EINTERNAL, "%s: SHA-256 failed", c->path);
}

/* The bytes of an external file, read once through sg_read_file (regular files only) and
   added to the model digest the first time a tensor names it. */
static sg_status external_file(ox_ctx *c, const char *loc, const char *what, const uint8_t **bytes,
                         size_t *len, sg_err *err)
{
    for (int i = 0; i < c->n_ext; i++)
        if (strcmp(c->ext_name[i], loc) == 0) {
            *bytes = c->ext_bytes[i];
            *len = c->ext_len[i];
            return SG_OK;
        }
    if (!location_ok(loc))
        return sg_errf(err, SG_EINPUT,
                       "%s: %s: external data location \"%.200s\" is outside the model's "
                       "directory (absolute or with '..')",
                       c->path, what, loc);
    uint8_t *buf = NULL;
    size_t n = 0;
    sg_err e2 = {{0}};
    /* Opened component by component under the model's directory, with no symbolic link
       followed: a link could lead outside it. */
    int rc = sg_read_file_beneath(c->dir[0] ? c->dir : ".", loc, MAX_EXTERNAL_FILE, &buf, &n, &e2);
    if (rc)
        return sg_errf(err, SG_EINPUT, "%s: %s: external data \"%.200s\" cannot be read: %s",
                       c->path, what, loc, e2.msg);
    int k = c->n_ext;
    char **nn = realloc(c->ext_name, (size_t)(k + 1) * sizeof *nn);
    if (nn) c->ext_name = nn;
    uint8_t **nb = nn ? realloc(c->ext_bytes, (size_t)(k + 1) * sizeof *nb) : NULL;
    if (nb) c->ext_bytes = nb;
    size_t *nl = nb ? realloc(c->ext_len, (size_t)(k + 1) * sizeof *nl) : NULL;
    if (nl) c->ext_len = nl;
    char *name = nl ? strdup(loc) : NULL;
    if (!name) {
        free(buf);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    }
    c->ext_name[k] = name;
    c->ext_bytes[k] = buf;
    c->ext_len[k] = n;
    c->n_ext = k + 1;
    rc = digest_external(c, loc, buf, n, err);
    if (rc) return rc;
    *bytes = buf;
    *len = n;
    return SG_OK;
}

static sg_status external_bytes(ox_ctx *c, const Onnx__TensorProto *t, const char *what, size_t need,
                          const uint8_t **out, sg_err *err)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = t->external_data[i];
        if (!kv->key || !kv->value) continue;
        /* A key given twice: which one a reader takes is a guess (onnx takes the last). */
        for (size_t j = 0; j < i; j++)
            if (t->external_data[j]->key && !strcmp(t->external_data[j]->key, kv->key))
                return sg_errf(err, SG_EINPUT, "%s: %s: external data key \"%.40s\" is given twice",
                               c->path, what, kv->key);
        int bad = 0;
        if (strcmp(kv->key, "location") == 0)
            loc = kv->value;
        else if (strcmp(kv->key, "offset") == 0)
            bad = parse_i64(kv->value, &offset);
        else if (strcmp(kv->key, "length") == 0)
            bad = parse_i64(kv->value, &length);
        if (bad)
            return sg_errf(err, SG_EINPUT, "%s: %s: external data %s \"%.40s\" is not a count",
                           c->path, what, kv->key, kv->value);
    }
    if (!loc)
        return sg_errf(err, SG_EINPUT, "%s: %s: external data without a location", c->path, what);
    const uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = external_file(c, loc, what, &bytes, &len, err);
    if (rc) return rc;
    if ((uint64_t)offset > len)
        return sg_errf(err, SG_EINPUT,
                       "%s: %s: external data offset %lld is beyond the end of \"%.200s\" (%zu "
                       "bytes)",
                       c->path, what, (long long)offset, loc, len);
    size_t avail = len - (size_t)offset;
    if (length >= 0 && (uint64_t)length != need)
        return sg_errf(err, SG_EINPUT,
                       "%s: %s: external data length is %lld bytes but its shape needs %zu",
                       c->path, what, (long long)length, need);
    if (avail < need || (length < 0 && avail != need))
        return sg_errf(err, SG_EINPUT,
                       "%s: %s: external data \"%.200s\" holds %zu bytes from offset %lld but its "
                       "shape needs %zu",
                       c->path, what, loc, avail, (long long)offset, need);
    *out = bytes + offset;
    return SG_OK;
}

sg_status ox_external_prefetch(ox_ctx *c, const Onnx__TensorProto *t, const char *what, sg_err *err)
{
    if (!t || !t->has_data_location ||
        t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return SG_OK;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = t->external_data[i];
        if (kv->key && kv->value && strcmp(kv->key, "location") == 0) {
            const uint8_t *b;
            size_t n;
            return external_file(c, kv->value, what, &b, &n, err);
        }
    }
    return SG_OK; /* ox_tensor_read names the missing location */
}

void ox_shape_str(const int64_t *dims, size_t n, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (size_t i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

sg_status ox_tensor_read(ox_ctx *c, const Onnx__TensorProto *t, ox_value *v, const char *what,
                   sg_err *err)
{
    const int dt = t->has_data_type ? t->data_type : 0;
    /* float, double -> float32; int64, int32, bool -> int64. Bool is what ONNX gives
       Dropout's training_mode (a constant false at inference); refused, it had kept valid
       exports out. */
    size_t esize = dt == 1 ? 4 : dt == 11 ? 8 : dt == 7 ? 8 : dt == 6 ? 4 : dt == 9 ? 1 : 0;
    if (!esize)
        return sg_errf(err, SG_EINPUT,
                       "%s: %s has data type %s (%d); float, double, int32, int64 and bool "
                       "are supported",
                       c->path, what, ox_type_name(dt), dt);
    if (t->n_dims > OX_MAX_RANK)
        return sg_errf(err, SG_EINPUT, "%s: %s has rank %zu (at most %d)", c->path, what, t->n_dims,
                       OX_MAX_RANK);
    if (t->segment) return sg_errf(err, SG_EINPUT, "%s: %s is segmented", c->path, what);
    size_t count = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || !sg_mul_size(count, (size_t)t->dims[i], &count) ||
            count > (size_t)OX_MAX_ELEMS)
            return sg_errf(err, SG_EINPUT,
                           "%s: %s has dimension %zu of size %lld (too large or "
                           "negative)",
                           c->path, what, i, (long long)t->dims[i]);
        v->dims[i] = t->dims[i];
    }
    v->rank = (int)t->n_dims;
    v->count = (int64_t)count;
    v->is_const = true;
    v->defined = true;
    char shp[160];
    ox_shape_str(t->dims, t->n_dims, shp, sizeof shp);
    size_t need = count * esize; /* count <= 2^31, esize <= 8 */
    const uint8_t *raw = NULL;
    size_t n_typed = dt == 1    ? t->n_float_data
                     : dt == 11 ? t->n_double_data
                     : dt == 7  ? t->n_int64_data
                                : t->n_int32_data;
    /* One value field only (the ONNX checker's rule): with raw_data and a typed field both
       present, which one holds the weights would depend on the reader. */
    if (t->has_raw_data && (t->n_float_data || t->n_double_data || t->n_int64_data ||
                            t->n_int32_data))
        return sg_errf(err, SG_EINPUT,
                       "%s: %s holds both raw_data and a typed data field; one value field only",
                       c->path, what);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        /* Stored externally and inline too: a reader that goes by raw_data sees other
           weights than one that goes by the file (the ONNX checker refuses it: "is stored
           externally and should not have data field"). */
        if (t->has_raw_data || t->n_float_data || t->n_double_data || t->n_int64_data ||
            t->n_int32_data)
            return sg_errf(err, SG_EINPUT,
                           "%s: %s is stored in an external file and holds data inline too; "
                           "one value field only",
                           c->path, what);
        int rc = external_bytes(c, t, what, need, &raw, err);
        if (rc) return rc;
    } else if (t->has_raw_data) {
        if (t->raw_data.len != need)
            return sg_errf(err, SG_EINPUT,
                           "%s: %s holds %zu bytes of data but shape %s of %s needs %zu", c->path,
                           what, t->raw_data.len, shp, ox_type_name(dt), need);
        raw = t->raw_data.data;
    } else if (n_typed != count) {
        return sg_errf(err, SG_EINPUT, "%s: %s holds %zu values but shape %s needs %zu", c->path,
                       what, n_typed, shp, count);
    }
    size_t alloc = count ? count : 1;
    if (dt == 1 || dt == 11) {
        v->dtype = OX_FLOAT;
        v->f = sg_alloc_aligned(alloc * sizeof(float));
        if (!v->f) return sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", c->path, what);
        for (size_t k = 0; k < count; k++) {
            double x;
            if (raw && dt == 1) {
                float f;
                memcpy(&f, raw + 4 * k, 4);
                x = f;
            } else if (raw) {
                memcpy(&x, raw + 8 * k, 8);
            } else {
                x = dt == 1 ? t->float_data[k] : t->double_data[k];
            }
            v->f[k] = (float)x;
            /* A Constant node may hold an infinity (masked_fill(mask, float('-inf')) before a
               softmax, as causal attention exports it), and an initializer that only masks
               (read_graph_io checks); a double too large for float may not, nor NaN. */
            if (isnan(v->f[k]) || (isinf(v->f[k]) && !(c->infinities_ok && isinf(x))))
                return sg_errf(err, SG_EINPUT, "%s: %s[%zu] is not finite (or overflows float32)",
                               c->path, what, k);
        }
    } else {
        v->dtype = OX_INT64;
        v->i = malloc(alloc * sizeof(int64_t));
        if (!v->i) return sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", c->path, what);
        for (size_t k = 0; k < count; k++) {
            if (raw && dt == 7) {
                memcpy(&v->i[k], raw + 8 * k, 8);
            } else if (dt == 9) { /* raw bytes, or the typed values in int32_data */
                v->i[k] = raw ? raw[k] != 0 : t->int32_data[k] != 0;
            } else if (raw) {
                int32_t x;
                memcpy(&x, raw + 4 * k, 4);
                v->i[k] = x;
            } else {
                v->i[k] = dt == 7 ? t->int64_data[k] : t->int32_data[k];
            }
        }
    }
    return SG_OK;
}

void ox_ctx_free(ox_ctx *c)
{
    for (int i = 0; i < c->n_vals; i++) {
        sg_free_aligned(c->vals[i].f);
        free(c->vals[i].i);
    }
    free(c->vals);
    free(c->hash);
    for (int i = 0; i < c->n_ext; i++) {
        free(c->ext_name[i]);
        free(c->ext_bytes[i]);
    }
    free(c->ext_name);
    free(c->ext_bytes);
    free(c->ext_len);
    free(c->consumed);
    free(c->skip);
    for (int i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->ml_labels);
    if (c->steps) {
        sg_onnx_plan p = {.steps = c->steps, .n_steps = c->n_steps};
        c->steps = NULL;
        /* Frees the steps' arrays only. */
        p.n_stages = 0;
        sg_onnx_plan_free_steps(&p);
    }
    if (c->mp) onnx__model_proto__free_unpacked(c->mp, NULL);
    if (c->md) EVP_MD_CTX_free(c->md);
}

void ox_copy_values(ox_value *dst, const ox_value *src)
{
    if (src->dtype == OX_FLOAT)
        memcpy(dst->f, src->f, (size_t)src->count * sizeof(float));
    else
        memcpy(dst->i, src->i, (size_t)src->count * sizeof(int64_t));
}
