/* Opening a model file by content, and the calls through a model's table of operations. */
#include "stagegate/model_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The kinds, asked in order; the first whose probe claims the file loads it. */
static const sg_model_ops *const kinds[] = {&sg_model_ops_dense, &sg_model_ops_trees,
                                              &sg_model_ops_onnx};

/* The largest model file read into memory (the HDF5 and JSON loaders parse it there). */
#define MAX_MODEL_FILE ((size_t)8 << 30)

static sg_status digest_mismatch(const char *path, const char *hex, const char *expected,
                                 sg_err *err)
{
    return sg_errf(err, SG_EINPUT,
                   "%s: the bytes loaded have sha256 %.12s..., not the registered %.12s...; "
                   "the artifact changed after it was registered",
                   path, hex, expected);
}

sg_status sg_model_open_verified(const char *path, const char *expected_sha256,
                                 const sg_model_open_options *o, sg_model **out, sg_err *err)
{
    *out = NULL;
    if (strlen(path) >= sizeof(((sg_model *)0)->path))
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    /* One read of the file: the digest, the probe and the parser all see these bytes, so
       the digest in a report names exactly what was evaluated even if the file is
       replaced meanwhile. sg_read_file refuses FIFOs and devices. */
    uint8_t *bytes = NULL;
    size_t len = 0;
    sg_status rc = sg_read_file(path, MAX_MODEL_FILE, &bytes, &len, err);
    if (rc) return rc;
    uint8_t digest[32];
    char hex[65];
    sg_sha256(bytes, len, digest);
    sg_hex_encode(digest, 32, hex);
    size_t n = len < 512 ? len : 512, i = 0;
    while (i < sizeof kinds / sizeof kinds[0] && !kinds[i]->probe(bytes, n))
        i++;
    if (i == sizeof kinds / sizeof kinds[0]) {
        free(bytes);
        return sg_errf(err, SG_EINPUT,
                       "%s: not a model file: neither HDF5 (stagegate model), JSON (XGBoost "
                       "model) nor ONNX (protobuf)",
                       path);
    }
    /* What an ONNX output means is an ONNX setting: given for another model it would be
       silently ignored, and the user would believe it applied. */
    if (o && o->onnx_output != SG_ONNX_OUTPUT_AUTO && !o->onnx_only &&
        kinds[i] != &sg_model_ops_onnx) {
        free(bytes);
        return sg_errf(err, SG_EINPUT,
                       "%s: --output %s applies to ONNX models only; this is a %s model, whose "
                       "file says what its outputs are",
                       path, sg_onnx_output_name(o->onnx_output),
                       kinds[i] == &sg_model_ops_trees ? "XGBoost" : "stagegate HDF5");
    }
    if (o && o->onnx_output_name && !o->onnx_only && kinds[i] != &sg_model_ops_onnx) {
        free(bytes);
        return sg_errf(err, SG_EINPUT,
                       "%s: --output-name applies to ONNX models only; this is a %s model, "
                       "which has one output",
                       path, kinds[i] == &sg_model_ops_trees ? "XGBoost" : "stagegate HDF5");
    }
    /* Verify before parse, wherever the file's bytes are the whole digest. */
    if (expected_sha256 && !kinds[i]->own_digest && strcmp(expected_sha256, hex) != 0) {
        free(bytes);
        return digest_mismatch(path, hex, expected_sha256, err);
    }
    rc = kinds[i]->load(path, bytes, len, o, out, err);
    free(bytes);
    if (rc != SG_OK) return rc;
    /* A loader may set ops itself when one file format holds several kinds. */
    if (!(*out)->ops) (*out)->ops = kinds[i];
    if (!kinds[i]->own_digest) memcpy((*out)->sha256, digest, 32);
    sg_hex_encode((*out)->sha256, 32, hex);
    if (expected_sha256 && strcmp(expected_sha256, hex) != 0) {
        sg_model_free(*out);
        *out = NULL;
        return digest_mismatch(path, hex, expected_sha256, err);
    }
    return SG_OK;
}

sg_status sg_model_open_with(const char *path, const sg_model_open_options *o, sg_model **out,
                             sg_err *err)
{
    return sg_model_open_verified(path, NULL, o, out, err);
}

sg_status sg_model_open(const char *path, sg_model **out, sg_err *err)
{
    return sg_model_open_verified(path, NULL, NULL, out, err);
}

sg_status sg_model_scratch_new(const sg_model *m, int64_t max_batch, void **out, sg_err *err)
{
    return m->ops->scratch_new(m, max_batch, out, err);
}

void sg_model_scratch_free(const sg_model *m, void *scratch)
{
    if (m && scratch) m->ops->scratch_free(scratch);
}

void sg_model_predict_batch(const sg_model *m, const sg_kernel_ops *k, const float *X, int64_t n,
                            float *out, void *scratch)
{
    m->ops->predict_batch(m, k, X, n, out, scratch);
}

void sg_model_predict_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                          void *scratch, sg_forward_probe probe, void *ctx)
{
    m->ops->predict_one(m, k, x, out, scratch, probe, ctx);
}

void sg_model_describe(const sg_model *m, char *buf, size_t len)
{
    m->ops->describe(m, buf, len);
}

void sg_model_cost_of(const sg_model *m, sg_model_cost *out)
{
    memset(out, 0, sizeof *out);
    m->ops->cost(m, out);
}

void sg_model_batch_paths(const sg_model *m, const void *scratch, int64_t n, char *buf, size_t len)
{
    if (len) buf[0] = '\0';
    /* m NULL: a worker whose copy of the model could not be made (out of memory) */
    if (m && m->ops->batch_paths && scratch) m->ops->batch_paths(m, scratch, n, buf, len);
}

const char *sg_model_kind(const sg_model *m)
{
    return m->ops ? m->ops->kind : "unknown";
}
