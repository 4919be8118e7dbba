/*
 * Forward pass of a standardiser + dense-layer chain. The batch path hands the
 * matrix products to OpenBLAS and follows each with one fused SIMD pass (bias +
 * activation, or bias + link on the last layer); the batch-1 path uses the
 * matvec kernels only, because a BLAS call's fixed cost dominates at batch 1.
 *
 * Hidden layers whose width is a multiple of SG_DENSE_STRIPE may instead run in
 * the kernel table's dense_act, which does the same arithmetic per element as
 * OpenBLAS's sgemm kernel + bias_act without OpenBLAS's per-call packing, its
 * zeroing pass and the separate epilogue pass. Which arithmetic OpenBLAS's is
 * depends on its build, the core it picked and the shape (a long input is split
 * into blocks; small products take another kernel; its Haswell kernel, which it
 * also runs on AMD Zen, sums some elements in two chains), so it is never
 * assumed: for each layer and row count, the first batch runs sgemm and then
 * dense_act in each order it knows (sg_dense_order) until one gives the same
 * bits, and only a row count where one did takes dense_act, in that order,
 * afterwards. Predictions are therefore the same bits as with sgemm alone.
 *
 * An output layer of at most SG_OUT_MAX columns may likewise run in the table's dense_out
 * (the product only, one chain per element; bias_link follows as after sgemm), under the
 * same first-batch comparison: for such a layer sgemm spends more time packing its input
 * than multiplying.
 *
 * A scratch belongs to one thread: two ping-pong buffers of max_batch rows of
 * the model's widest layer (or input), 64-byte aligned; and, once the first
 * batch has run, the packed weights of the layers dense_act may take, the
 * comparison buffer and the row counts compared so far.
 */
#include "stagegate/kernels.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"

/* Row counts remembered per layer; a batch of another row count beyond them runs on sgemm. */
#define CHECKED_SLOTS 8

typedef struct {
    const float *W; /* the model's weights (Wp was packed from them) */
    float *Wp;      /* a hidden layer's packed weights; NULL: it always runs on sgemm */
    bool out;       /* the output layer, which dense_out may take (W as it is) */
    int n_checked;
    int64_t checked_rows[CHECKED_SLOTS];
    int8_t order[CHECKED_SLOTS]; /* the sg_dense_order that agreed, -1 none */
} fused_layer;

struct sg_forward_scratch {
    int64_t max_batch;
    int width;
    float *buf[2];
    /* set up by the first sg_forward_batch, for the kernel table it was given */
    const sg_kernel_ops *fused_for;
    int n_fused;
    fused_layer *fused; /* one per layer */
    float *check;       /* max_batch x width: a kernel's result while it is compared */
};

static int max_width(const sg_model *m)
{
    int w = m->n_features;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].n_out > w) w = m->layers[l].n_out;
    return w;
}

sg_status sg_forward_scratch_new(const sg_model *m, int64_t max_batch, sg_forward_scratch **out,
                           sg_err *err)
{
    *out = NULL;
    if (m->n_layers < 1 || !m->layers)
        return sg_errf(err, SG_EINPUT, "model %s has no layers", m->path);
    if (max_batch < 1 || max_batch > INT_MAX)
        return sg_errf(err, SG_EINPUT, "forward batch size %lld is outside 1..%d",
                       (long long)max_batch, INT_MAX);
    const int w = max_width(m);
    if (w < 1) return sg_errf(err, SG_EINPUT, "model %s has a layer of width 0", m->path);
    if ((uint64_t)max_batch > SIZE_MAX / sizeof(float) / (uint64_t)w)
        return sg_errf(err, SG_ENOMEM, "forward scratch of %lld rows x %d floats is too large",
                       (long long)max_batch, w);
    const size_t bytes = (size_t)max_batch * (size_t)w * sizeof(float);

    sg_forward_scratch *s = calloc(1, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "out of memory allocating forward scratch");
    s->max_batch = max_batch;
    s->width = w;
    /* Huge pages where they are large (1 MiB each for 1024 rows x 256): 512 first touches
       of 4 KiB pages per worker otherwise, each dear in a VM (sg_alloc_huge). */
    s->buf[0] = sg_alloc_huge(bytes);
    s->buf[1] = sg_alloc_huge(bytes);
    if (!s->buf[0] || !s->buf[1]) {
        sg_forward_scratch_free(s);
        return sg_errf(err, SG_ENOMEM, "out of memory allocating %zu bytes of forward scratch",
                       2 * bytes);
    }
    /* Touch the pages now, on the owning thread, so the first timed call takes no faults
       and first-touch places them on this thread's NUMA node. */
    memset(s->buf[0], 0, bytes);
    memset(s->buf[1], 0, bytes);
    *out = s;
    return SG_OK;
}

static void fused_free(sg_forward_scratch *s)
{
    for (int l = 0; l < s->n_fused; l++)
        sg_free_aligned(s->fused[l].Wp);
    free(s->fused);
    sg_free_aligned(s->check);
    s->fused = NULL;
    s->check = NULL;
    s->n_fused = 0;
    s->fused_for = NULL;
}

void sg_forward_scratch_free(sg_forward_scratch *s)
{
    if (!s) return;
    fused_free(s);
    sg_free_aligned(s->buf[0]);
    sg_free_aligned(s->buf[1]);
    free(s);
}

/* W [n_in][n_out] row-major -> stripes of SG_DENSE_STRIPE columns, each [n_in][stripe]. */
static float *pack_stripes(const sg_layer *L)
{
    const size_t n_in = (size_t)L->n_in, n_out = (size_t)L->n_out;
    float *p = sg_alloc_aligned(n_in * n_out * sizeof(float));
    if (!p) return NULL;
    for (size_t s = 0; s < n_out / SG_DENSE_STRIPE; s++)
        for (size_t k = 0; k < n_in; k++)
            memcpy(p + (s * n_in + k) * SG_DENSE_STRIPE, L->W + k * n_out + s * SG_DENSE_STRIPE,
                   SG_DENSE_STRIPE * sizeof(float));
    return p;
}

/* Packs the hidden layers dense_act can take, and marks a narrow output layer dense_out can.
   Out of memory only means sgemm throughout. */
static void fused_setup(sg_forward_scratch *s, const sg_model *m, const sg_kernel_ops *k)
{
    fused_free(s);
    s->fused_for = k;
    if (!k->dense_act && !k->dense_out) return;
    s->fused = calloc((size_t)m->n_layers, sizeof *s->fused);
    s->check = sg_alloc_huge((size_t)s->max_batch * (size_t)s->width * sizeof(float));
    if (!s->fused || !s->check) {
        fused_free(s);
        s->fused_for = k;
        return;
    }
    s->n_fused = m->n_layers;
    for (int l = 0; l < s->n_fused; l++) {
        const sg_layer *L = &m->layers[l];
        s->fused[l].W = L->W;
        if (l == m->n_layers - 1)
            s->fused[l].out = k->dense_out && L->n_out <= SG_OUT_MAX && L->n_in >= 1;
        else if (k->dense_act && L->n_out % SG_DENSE_STRIPE == 0 && L->n_in >= 1)
            s->fused[l].Wp = pack_stripes(L);
    }
}

/* The order of dense_act that agreed with sgemm + bias_act at this row count; -1: none did
   (or the layer is not packed, or there is no room left to compare), -2: not compared yet. */
static int fused_verdict(const fused_layer *f, int64_t n)
{
    if (!f->Wp && !f->out) return -1;
    for (int i = 0; i < f->n_checked; i++)
        if (f->checked_rows[i] == n) return f->order[i];
    return f->n_checked < CHECKED_SLOTS ? -2 : -1;
}

static bool has_standardizer(const sg_model *m)
{
    return m->mean && m->scale;
}

void sg_forward_batch(const sg_model *m, const sg_kernel_ops *k, const float *X, int64_t n,
                      float *out, sg_forward_scratch *s)
{
    SG_ASSERT(n >= 0 && n <= s->max_batch && m->n_layers >= 1 && max_width(m) <= s->width);
    if (n == 0) return;
    const int d = m->n_features;
    const float *in = X;
    int cur = 0;
    if (has_standardizer(m)) {
        memcpy(s->buf[0], X, (size_t)n * (size_t)d * sizeof(float));
        k->standardize(s->buf[0], n, d, m->mean, m->scale);
        in = s->buf[0];
        cur = 1;
    }
    if (s->fused_for != k || (s->n_fused > 0 && s->fused[0].W != m->layers[0].W))
        fused_setup(s, m, k);
    for (int l = 0; l < m->n_layers; l++) {
        const sg_layer *L = &m->layers[l];
        float *z = s->buf[cur];
        fused_layer *f = l < s->n_fused ? &s->fused[l] : NULL;
        const int verdict = f ? fused_verdict(f, n) : -1;
        if (verdict >= 0 && f->out) {
            k->dense_out(in, n, L->n_in, L->W, z, L->n_out);
            sg_bias_link_checked(k, z, n, L->n_out, L->b, m->link, out);
        } else if (verdict >= 0) {
            k->dense_act(in, n, L->n_in, f->Wp, L->b, L->act, z, L->n_out,
                         (sg_dense_order)verdict);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, L->n_out, L->n_in, 1.0f,
                        in, L->n_in, L->W, L->n_out, 0.0f, z, L->n_out);
            if (l == m->n_layers - 1)
                sg_bias_link_checked(k, z, n, L->n_out, L->b, m->link, out);
            else
                k->bias_act(z, n, L->n_out, L->b, L->act);
        }
        if (verdict == -2) {
            const int i = f->n_checked++;
            f->checked_rows[i] = n;
            f->order[i] = -1;
            if (f->out) {
                k->dense_out(in, n, L->n_in, L->W, s->check, L->n_out);
                if (memcmp(z, s->check, (size_t)n * (size_t)L->n_out * sizeof(float)) == 0)
                    f->order[i] = SG_DENSE_CHAIN;
            }
            for (int o = 0; o < SG_DENSE_ORDERS && f->Wp && f->order[i] < 0; o++) {
                k->dense_act(in, n, L->n_in, f->Wp, L->b, L->act, s->check, L->n_out,
                             (sg_dense_order)o);
                if (memcmp(z, s->check, (size_t)n * (size_t)L->n_out * sizeof(float)) == 0)
                    f->order[i] = (int8_t)o;
            }
        }
        in = z;
        cur ^= 1;
    }
}

static const char *const order_names[SG_DENSE_ORDERS] = {"one-chain", "paired-edges"};

void sg_forward_scratch_paths(const sg_forward_scratch *s, const sg_model *m, int64_t n,
                              char *buf, size_t len)
{
    size_t at = 0;
    if (len) buf[0] = '\0';
    if (n <= 0) /* the largest batch run (every packed layer sees the same row counts) */
        for (int l = 0; l < s->n_fused; l++)
            for (int i = 0; i < s->fused[l].n_checked; i++)
                if (s->fused[l].checked_rows[i] > n) n = s->fused[l].checked_rows[i];
    for (int l = 0; l < m->n_layers && at < len; l++) {
        const fused_layer *f = s->fused && l < s->n_fused ? &s->fused[l] : NULL;
        const char *path = s->fused_for ? "sgemm" : "not run";
        const char *fused = "";
        if (f && (f->Wp || f->out)) {
            path = "not run";
            for (int i = 0; i < f->n_checked; i++)
                if (f->checked_rows[i] == n) {
                    path = f->order[i] >= 0 ? order_names[f->order[i]] : "sgemm";
                    fused = f->order[i] < 0 ? "" : f->out ? "narrow " : "fused ";
                }
        }
        const int w = snprintf(buf + at, len - at, "%s%s%s", l ? ", " : "", fused, path);
        if (w < 0) break;
        at += (size_t)w;
    }
}

void sg_forward_one_probed(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                           sg_forward_scratch *s, sg_forward_probe probe, void *ctx)
{
    const float *in = x;
    int cur = 0;
    if (has_standardizer(m)) {
        memcpy(s->buf[0], x, (size_t)m->n_features * sizeof(float));
        k->standardize(s->buf[0], 1, m->n_features, m->mean, m->scale);
        in = s->buf[0];
        cur = 1;
    }
    if (probe) probe(ctx, 0);
    const int last = m->n_layers - 1;
    for (int l = 0; l < last; l++) {
        const sg_layer *L = &m->layers[l];
        float *z = s->buf[cur];
        k->matvec(in, L->W, L->b, L->n_in, L->n_out, z);
        if (L->act != SG_ACT_IDENTITY) k->bias_act(z, 1, L->n_out, NULL, L->act);
        if (probe) probe(ctx, l + 1);
        in = z;
        cur ^= 1;
    }
    const sg_layer *L = &m->layers[last];
    if (m->link == SG_LINK_IDENTITY) {
        /* Regression: the logits are the answer, so write them in place. */
        k->matvec(in, L->W, L->b, L->n_in, L->n_out, out);
    } else {
        float *z = s->buf[cur];
        k->matvec(in, L->W, L->b, L->n_in, L->n_out, z);
        sg_bias_link_checked(k, z, 1, L->n_out, NULL, m->link, out);
    }
    if (probe) probe(ctx, last + 1);
}

void sg_forward_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                    sg_forward_scratch *s)
{
    sg_forward_one_probed(m, k, x, out, s, NULL, NULL);
}

void sg_predict_labels(const float *proba, int64_t n, int k, double threshold, int32_t *labels)
{
    SG_ASSERT(k >= 2);
    if (k == 2) {
        for (int64_t i = 0; i < n; i++)
            /* Strictly above, as scikit-learn's and XGBoost's predict at 0.5: a forest's tied
               vote (exactly 0.5) is class 0 there, and it had been 1 here. */
            labels[i] = (double)proba[2 * i + 1] > threshold ? 1 : 0;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *p = proba + i * k;
        int best = 0;
        /* Strictly greater: the first maximum wins, as numpy.argmax does. */
        for (int j = 1; j < k; j++)
            if (p[j] > p[best]) best = j;
        labels[i] = best;
    }
}

/* Whether row r's margin z[r] + b holds a value that is not finite. */
static bool margin_nonfinite(const float *z, int n_outputs, const float *b)
{
    bool bad = false;
    for (int j = 0; j < n_outputs; j++)
        bad |= !isfinite(b ? z[j] + b[j] : z[j]);
    return bad;
}

void sg_bias_link_checked(const sg_kernel_ops *k, const float *z, int64_t n, int n_outputs,
                          const float *b, sg_link link, float *out)
{
    bool any = false;
    for (int64_t r = 0; link == SG_LINK_SIGMOID && r < n; r++)
        any |= margin_nonfinite(z + r * n_outputs, n_outputs, b);
    if (!any) {
        k->bias_link(z, n, n_outputs, b, link, out);
        return;
    }
    /* the rare path: which rows, noted before the link (z and out may be one buffer) */
    unsigned char *rows = calloc((size_t)n, 1);
    for (int64_t r = 0; rows && r < n; r++)
        rows[r] = margin_nonfinite(z + r * n_outputs, n_outputs, b);
    k->bias_link(z, n, n_outputs, b, link, out);
    const int w = n_outputs == 1 ? 2 : n_outputs;
    for (int64_t r = 0; r < n; r++)
        if (!rows || rows[r])
            for (int j = 0; j < w; j++)
                out[r * w + j] = NAN;
    free(rows);
}
