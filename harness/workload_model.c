/*
 * The workload `stagegate bench` times: a model's forward pass over rows of a
 * validation set. Each worker gets its node's copy of the model (sg_model_share:
 * the workers of one NUMA node share one, made again for each repetition), its own
 * scratch and (when it fits in
 * 64 MiB) its own copy of the rows, all allocated and first touched on a worker of
 * the node, whose thread memory policy is bound to it.
 * The shared model/rows are read-only after creation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/dataset.h"
#include "stagegate/eval.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"
#include "stagegate/model.h"
#include "stagegate/model_ops.h"

#define MAX_STAGES SG_MODEL_MAX_STAGES
#define LOCAL_COPY_LIMIT (64u << 20)

struct sg_model_workload {
    sg_workload wl;
    const sg_model *model;
    sg_model *owned_model; /* NULL when the caller lent the model */
    sg_model_share *share;
    float *X;
    int64_t rows, max_batch;
    int features, out_width;
    bool breakdown;
    char name[160];
    char stage_buf[MAX_STAGES][SG_MODEL_STAGE_NAME];
    const char *stage_names[MAX_STAGES];
};

typedef struct {
    const struct sg_model_workload *mw;
    sg_worker *w;
    const sg_model *model; /* its node's copy */
    void *scratch;
    const sg_kernel_ops *k;
    const float *X;
    float *out;
    uint64_t last;
    uint64_t stage_acc[MAX_STAGES];
} worker_state;

static sg_status setup(sg_worker *w, void *ctx, void **state, sg_err *err)
{
    const struct sg_model_workload *mw = ctx;
    worker_state *s = sg_worker_alloc(w, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "bench: out of memory on worker %d", sg_worker_index(w));
    s->mw = mw;
    s->k = sg_kernels();
    *state = s; /* set early so teardown frees what a failing setup made */
    s->w = w;
    int rc = sg_model_share_get(mw->share, w, &s->model, err);
    if (rc == SG_OK) rc = sg_model_scratch_new(s->model, mw->max_batch, &s->scratch, err);
    if (rc != SG_OK) return rc;
    s->out = sg_worker_alloc(w, (size_t)mw->max_batch * (size_t)mw->out_width * sizeof(float));
    size_t xbytes = (size_t)mw->rows * (size_t)mw->features * sizeof(float);
    float *X = xbytes <= LOCAL_COPY_LIMIT ? sg_worker_alloc(w, xbytes) : NULL;
    if (X) memcpy(X, mw->X, xbytes);
    s->X = X ? X : mw->X;
    if (!s->out)
        return sg_errf(err, SG_ENOMEM, "bench: out of memory on worker %d", sg_worker_index(w));
    *state = s;
    return SG_OK;
}

static void probe(void *ctx, int stage)
{
    worker_state *s = ctx;
    uint64_t now = sg_clock_now();
    if (stage < 0) stage = 0;
    if (stage >= MAX_STAGES) stage = MAX_STAGES - 1;
    s->stage_acc[stage] += now - s->last;
    s->last = now;
}

static void run(void *state, int64_t row, int64_t n)
{
    worker_state *s = state;
    const struct sg_model_workload *mw = s->mw;
    row %= mw->rows;
    if (row + n > mw->rows) n = mw->rows - row;
    const float *x = s->X + row * mw->features;
    if (n == 1 && mw->breakdown) {
        s->last = sg_clock_now();
        sg_model_predict_one(s->model, s->k, x, s->out, s->scratch, probe, s);
    } else if (n == 1) {
        sg_model_predict_one(s->model, s->k, x, s->out, s->scratch, NULL, NULL);
    } else {
        sg_model_predict_batch(s->model, s->k, x, n, s->out, s->scratch);
    }
}

static void teardown(void *state)
{
    worker_state *s = state;
    if (s->scratch) sg_model_scratch_free(s->model, s->scratch);
    if (s->model) sg_model_share_release(s->mw->share, s->w);
    s->scratch = NULL;
    s->model = NULL;
}

static void stage_ticks(void *state, uint64_t *acc)
{
    const worker_state *s = state;
    for (int k = 0; k < s->mw->wl.n_stages; k++)
        acc[k] += s->stage_acc[k];
}

sg_status sg_model_workload_create(const char *model_path,
                                   const struct sg_model_open_options *open,
                                   const char *data_path, int64_t max_rows, int64_t max_batch,
                                   bool breakdown, sg_model_workload **out, sg_err *err)
{
    *out = NULL;
    sg_model *m = NULL;
    sg_dataset *ds = NULL;
    sg_status rc = sg_model_open_with(model_path, open, &m, err);
    if (rc == SG_OK) rc = sg_dataset_open(data_path, &ds, err);
    if (rc == SG_OK) rc = sg_model_workload_create_from(m, ds, max_rows, max_batch, breakdown, out, err);
    sg_dataset_close(ds);
    if (rc != SG_OK) {
        sg_model_free(m);
        return rc;
    }
    (*out)->owned_model = m;
    return SG_OK;
}

/*
 * What eval refuses, bench refuses: the set's labels (in the model's class range), targets
 * and sample weights are read and checked over the rows bench holds, and the model's
 * outputs over the first CHECK_OUTPUT_ROWS of them (all of them would cost an offline
 * run's whole length again; eval checks every row).
 */
#define CHECK_OUTPUT_ROWS 65536
/* At most this many bytes of rows held for the per-query scenarios (max_rows > 0). */
#define SG_WORKLOAD_QUERY_BYTES (256ull << 20)
#define CHECK_BATCH 1024
static sg_status check_like_eval(const struct sg_model_workload *mw, sg_dataset *ds, sg_err *err)
{
    const sg_model *m = mw->model;
    const bool classifier = m->task != SG_TASK_REGRESSION;
    const size_t n = (size_t)mw->rows;
    int32_t *labels = classifier ? malloc(n * sizeof *labels) : NULL;
    double *targets = classifier ? NULL : malloc(n * sizeof *targets);
    double *weights = sg_dataset_has_weights(ds) ? malloc(n * sizeof *weights) : NULL;
    sg_status rc = SG_OK;
    if ((classifier ? !labels : !targets) || (sg_dataset_has_weights(ds) && !weights))
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory checking %zu rows", sg_dataset_path(ds), n);
    if (rc == SG_OK)
        rc = sg_dataset_read(ds, 0, mw->rows, NULL, labels, targets, weights,
                             classifier ? m->n_classes : 0, err);
    free(labels);
    free(targets);
    free(weights);
    if (rc) return rc;
    void *scratch = NULL;
    float *out = malloc((size_t)CHECK_BATCH * (size_t)mw->out_width * sizeof *out);
    if (!out) return sg_errf(err, SG_ENOMEM, "%s: out of memory checking outputs", m->path);
    rc = sg_model_scratch_new(m, CHECK_BATCH, &scratch, err);
    const int64_t rows = mw->rows < CHECK_OUTPUT_ROWS ? mw->rows : CHECK_OUTPUT_ROWS;
    for (int64_t r0 = 0; rc == SG_OK && r0 < rows; r0 += CHECK_BATCH) {
        const int64_t nb = rows - r0 < CHECK_BATCH ? rows - r0 : CHECK_BATCH;
        sg_model_predict_batch(m, sg_kernels(), mw->X + r0 * mw->features, nb, out, scratch);
        rc = sg_eval_check_outputs(m, out, r0, nb, err);
    }
    if (scratch) sg_model_scratch_free(m, scratch);
    free(out);
    return rc;
}

sg_status sg_model_workload_create_from(const sg_model *model, sg_dataset *ds, int64_t max_rows,
                                        int64_t max_batch, bool breakdown,
                                        sg_model_workload **out, sg_err *err)
{
    *out = NULL;
    struct sg_model_workload *mw = calloc(1, sizeof *mw);
    if (!mw) return sg_errf(err, SG_ENOMEM, "bench: out of memory");
    mw->model = model;
    const char *data_path = sg_dataset_path(ds);
    sg_status rc = sg_dataset_check_model(ds, mw->model, err);
    if (rc == SG_OK) sg_dataset_use_model(ds, mw->model);
    if (rc == SG_OK) {
        mw->rows = sg_dataset_rows(ds);
        mw->features = sg_dataset_features(ds);
        /* The per-query scenarios' rows are a sample the queries cycle through: wide rows get
           fewer of them, within SG_WORKLOAD_QUERY_BYTES (65,536 rows of 20,000 features had
           been 5 GiB to time batch-1 queries). */
        if (max_rows > 0 && mw->features > 0) {
            int64_t cap =
                (int64_t)(SG_WORKLOAD_QUERY_BYTES / ((uint64_t)mw->features * sizeof(float)));
            if (cap < 1) cap = 1;
            if (cap < max_rows) max_rows = cap;
        }
        if (max_rows > 0 && mw->rows > max_rows) mw->rows = max_rows;
        mw->out_width = sg_model_output_width(mw->model);
        /* A call never takes more rows than the set holds (run() wraps at its end): scratch
           for --batch 1048576 on a 1,000-row set had been 2.2 GB, 16 GiB a worker for a
           wider model. */
        mw->max_batch = max_batch < 1 ? 1 : max_batch;
        if (mw->rows > 0 && mw->max_batch > mw->rows) mw->max_batch = mw->rows;
        mw->X = malloc((size_t)mw->rows * (size_t)mw->features * sizeof(float));
        if (!mw->X)
            rc = sg_errf(err, SG_ENOMEM, "%s: out of memory for %lld rows", data_path,
                         (long long)mw->rows);
    }
    if (rc == SG_OK) rc = sg_dataset_read(ds, 0, mw->rows, mw->X, NULL, NULL, NULL, 0, err);
    if (rc == SG_OK) rc = check_like_eval(mw, ds, err);
    if (rc == SG_OK) rc = sg_model_share_new(mw->model, true, &mw->share, err);
    if (rc != SG_OK) {
        sg_model_workload_free(mw);
        return rc;
    }
    mw->breakdown = breakdown;
    /* The stages the kind's predict_one reports to the probe, in its index order. */
    int ns = mw->model->ops->stage_names(mw->model, mw->stage_buf, MAX_STAGES);
    for (int i = 0; i < ns; i++)
        mw->stage_names[i] = mw->stage_buf[i];
    const char *model_path = model->path;
    const char *base = strrchr(model_path, '/');
    snprintf(mw->name, sizeof mw->name, "%.159s", base ? base + 1 : model_path);
    mw->wl = (sg_workload){
        .name = mw->name,
        .n_rows = mw->rows,
        .model_bytes = mw->model->param_bytes,
        .ctx = mw,
        .setup = setup,
        .run = run,
        .teardown = teardown,
        .n_stages = ns,
        .stage_names = mw->stage_names,
        .stage_ticks = breakdown ? stage_ticks : NULL,
    };
    *out = mw;
    return SG_OK;
}

const sg_workload *sg_model_workload_get(const sg_model_workload *mw)
{
    return &mw->wl;
}

void sg_model_workload_free(sg_model_workload *mw)
{
    if (!mw) return;
    sg_model_share_free(mw->share);
    sg_model_free(mw->owned_model);
    free(mw->X);
    free(mw);
}

void sg_model_workload_info_get(const sg_model_workload *mw, sg_model_workload_info *out)
{
    memset(out, 0, sizeof *out);
    const sg_model *m = mw->model;
    sg_model_describe(m, out->description, sizeof out->description);
    sg_hex_encode(m->sha256, 32, out->sha256);
    sg_model_cost c;
    sg_model_cost_of(m, &c);
    out->param_bytes = m->param_bytes;
    out->flops_per_row = c.flops_per_row;
    out->node_visits_per_row = c.node_visits_per_row;
    /* Dense parameters are all float32; a tree node is not one parameter. */
    out->parameters = m->trees ? NAN : (double)m->param_bytes / sizeof(float);
}
