/* Opening a model file by content, and the calls through a model's table of operations. */
#include "stagegate/model_ops.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The kinds, asked in order; the first whose probe claims the file loads it. */
static const sg_model_ops *const kinds[] = {&sg_model_ops_dense, &sg_model_ops_trees,
                                              &sg_model_ops_onnx};

int sg_model_open(const char *path, sg_model **out, sg_err *err)
{
    return sg_model_open_with(path, NULL, out, err);
}

int sg_model_open_with(const char *path, const sg_model_open_options *o, sg_model **out,
                       sg_err *err)
{
    *out = NULL;
    uint8_t head[512];
    /* Never blocks on a FIFO or device: a model is a regular file or an input error. */
    int fd = sg_open_regular(path, err);
    if (fd < 0) return SG_EINPUT;
    ssize_t got = read(fd, head, sizeof head);
    int e = errno;
    close(fd);
    if (got < 0) return sg_errf(err, SG_EIO, "%s: cannot read: %s", path, strerror(e));
    size_t n = (size_t)got;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!kinds[i]->probe(head, n)) continue;
        int rc = kinds[i]->load(path, o, out, err);
        /* A loader may set ops itself when one file format holds several kinds. */
        if (rc == SG_OK && !(*out)->ops) (*out)->ops = kinds[i];
        return rc;
    }
    return sg_errf(err, SG_EINPUT,
                   "%s: not a model file: neither HDF5 (stagegate model), JSON (XGBoost model) "
                   "nor ONNX (protobuf)",
                   path);
}

int sg_model_scratch_new(const sg_model *m, int64_t max_batch, void **out, sg_err *err)
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

const char *sg_model_kind(const sg_model *m)
{
    return m->ops ? m->ops->kind : "unknown";
}
