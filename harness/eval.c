/*
 * Streaming evaluation: a reader thread fills row chunks from HDF5 while the
 * worker pool runs the forward pass on the previous chunk.
 *
 * Ownership and invariants:
 * - Two chunk slots form a ring. A slot is EMPTY (owned by the reader), FULL
 *   (owned by the main thread) or DONE (reader finished or failed). Only the
 *   state field is shared; it is guarded by ring.mu / ring.cv.
 * - HDF5 (Debian builds it without thread safety) is touched by the reader for
 *   /X, /y and /sample_weight and by the main thread for the predictions file,
 *   never at once: datasets/ serialises every HDF5 call itself (sg_h5_enter).
 * - Each worker owns its model copy and scratch, created on its own core (first
 *   touch lands them on its NUMA node); workers write disjoint row ranges of the
 *   chunk's output and read the chunk's X, which nobody writes while it is FULL.
 *   Each sub-batch of a chunk is claimed exactly once, from an atomic counter that
 *   the main thread resets before sg_pool_run (whose release publishes it).
 * - Metrics and the predictions file are fed in row order by the main thread,
 *   so results do not depend on the number of workers.
 */
#include "stagegate/eval.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <float.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "stagegate/dataset.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"
#include "stagegate/model_ops.h"

#define SG_EVAL_SUBBATCH 1024
#define SG_EVAL_DEFAULT_CHUNK 65536
/* A classifier's first chunk, smaller so that predict starts sooner (see eval_setup). */
#define SG_EVAL_FIRST_CHUNK 8192
/* Bytes of the automatic chunk's buffers: two slots of rows, labels, targets and weights,
   and the outputs. */
#define SG_EVAL_CHUNK_BUDGET (256ull << 20)

enum { SLOT_EMPTY = 0, SLOT_FULL = 1 };

typedef struct {
    int state;
    int64_t row0, n;
    float *X;
    int32_t *labels;
    double *targets;
    double *weights;
} eval_slot;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    eval_slot slots[2];
    bool stop;  /* main thread asks the reader to quit early */
    int status; /* reader failure, with err */
    sg_err err;
    int64_t next_row; /* reader's position */
    double read_seconds, hash_seconds; /* reader busy time */
} eval_ring;

typedef struct {
    sg_dataset *ds;
    eval_ring *ring;
    int64_t rows, chunk, first; /* chunk i has min(first << i, chunk) rows (see eval_setup) */
    int n_classes; /* label range check, 0 for regression */
    bool classifier;
    uint64_t file_bytes; /* the dataset file's size at open */
} reader_ctx;

/* Hashes what the reads left of the file once every chunk is out, while the last chunks are
   predicted; stops early when the run is stopped (the main thread finishes it then). */
static int reader_finish_digest(reader_ctx *rc, sg_err *err)
{
    eval_ring *ring = rc->ring;
    for (;;) {
        pthread_mutex_lock(&ring->mu);
        bool stop = ring->stop;
        pthread_mutex_unlock(&ring->mu);
        uint64_t at = sg_dataset_hashed_bytes(rc->ds);
        if (stop || at >= rc->file_bytes) return SG_OK;
        double t0 = sg_now_seconds();
        int st = sg_dataset_hash_step(rc->ds, (uint64_t)8 << 20, false, err);
        pthread_mutex_lock(&ring->mu);
        ring->hash_seconds += sg_now_seconds() - t0;
        pthread_mutex_unlock(&ring->mu);
        if (st != SG_OK) return st;
        if (sg_dataset_hashed_bytes(rc->ds) == at) return SG_OK; /* the file ended */
    }
}

static void *reader_main(void *arg)
{
    reader_ctx *rc = arg;
    eval_ring *ring = rc->ring;
    /* The digest starts before the first read, so that each chunk's bytes go into it as they
       are read (sg_dataset_hash_step's contract): the file is read once, not twice. */
    sg_err err0 = {{0}};
    int st0 = sg_dataset_hash_step(rc->ds, 0, false, &err0);
    if (st0 != SG_OK) {
        pthread_mutex_lock(&ring->mu);
        ring->status = st0;
        ring->err = err0;
        pthread_cond_broadcast(&ring->cv);
        pthread_mutex_unlock(&ring->mu);
        return NULL;
    }
    for (int64_t row = 0, i = 0, n = 0; row < rc->rows; row += n, i++) {
        eval_slot *s = &ring->slots[i & 1];
        pthread_mutex_lock(&ring->mu);
        while (s->state != SLOT_EMPTY && !ring->stop)
            pthread_cond_wait(&ring->cv, &ring->mu);
        bool stop = ring->stop;
        pthread_mutex_unlock(&ring->mu);
        if (stop) return NULL;

        int64_t want = i < 30 && (rc->first << i) < rc->chunk ? rc->first << i : rc->chunk;
        n = rc->rows - row < want ? rc->rows - row : want;
        sg_err err = {{0}};
        uint64_t hashed0 = sg_dataset_hashed_bytes(rc->ds);
        double in_reads0 = sg_dataset_hash_seconds_in_reads(rc->ds);
        double t0 = sg_now_seconds();
        int st =
            sg_dataset_read(rc->ds, row, n, s->X, rc->classifier ? s->labels : NULL,
                            rc->classifier ? NULL : s->targets, s->weights, rc->n_classes, &err);
        double t1 = sg_now_seconds();
        double in_reads = sg_dataset_hash_seconds_in_reads(rc->ds) - in_reads0;
        /* When the reads did not feed the digest (chunks out of file order, a user block),
         * it is read from the file, spread over the chunks in proportion to the rows read,
         * so it runs while the workers predict instead of before them. */
        if (st == SG_OK && sg_dataset_hashed_bytes(rc->ds) == hashed0) {
            uint64_t target = (uint64_t)((unsigned __int128)rc->file_bytes *
                                         (uint64_t)(row + n) / (uint64_t)rc->rows);
            uint64_t at = sg_dataset_hashed_bytes(rc->ds);
            if (target > at) st = sg_dataset_hash_step(rc->ds, target - at, false, &err);
        }
        double t2 = sg_now_seconds();

        pthread_mutex_lock(&ring->mu);
        ring->read_seconds += t1 - t0 - in_reads;
        ring->hash_seconds += t2 - t1 + in_reads;
        if (st != SG_OK) {
            ring->status = st;
            ring->err = err;
            pthread_cond_broadcast(&ring->cv);
            pthread_mutex_unlock(&ring->mu);
            return NULL;
        }
        s->row0 = row;
        s->n = n;
        s->state = SLOT_FULL;
        pthread_cond_broadcast(&ring->cv);
        pthread_mutex_unlock(&ring->mu);
    }
    /* An error here is met again, with its message, when the main thread finishes the digest
       after the join (sg_dataset_sha256 goes on from where this stopped). */
    sg_err err = {{0}};
    (void)reader_finish_digest(rc, &err);
    return NULL;
}

/* Per-worker state, indexed by worker. */
typedef struct {
    const sg_model *model; /* its node's copy (sg_model_share) */
    void *scratch;
    int status;
    sg_err err; /* why, when status is not SG_OK */
} worker_state;

typedef struct {
    const sg_model *model;
    sg_model_share *share;
    const sg_kernel_ops *ops;
    worker_state *ws;
    int64_t max_batch;
    /* current chunk */
    const float *X;
    float *out;
    int64_t n;
    int width, d;
    /* classifiers with weights: each row's log-loss term, computed next to its prediction
       (sg_metrics_log_terms) so that the metrics stage only sums them; NULL otherwise */
    const int32_t *labels;
    double *log_terms;
    /* next sub-batch of the current chunk to compute; reset before each sg_pool_run */
    _Alignas(64) atomic_int_fast64_t next_batch;
} compute_ctx;

static void worker_setup(sg_worker *w, void *arg)
{
    compute_ctx *c = arg;
    worker_state *st = &c->ws[sg_worker_index(w)];
    st->status = sg_model_share_get(c->share, w, &st->model, &st->err);
    if (st->status == SG_OK)
        st->status = sg_model_scratch_new(st->model, c->max_batch, &st->scratch, &st->err);
}

static void worker_teardown(sg_worker *w, void *arg)
{
    compute_ctx *c = arg;
    worker_state *st = &c->ws[sg_worker_index(w)];
    if (st->model) {
        sg_model_scratch_free(st->model, st->scratch);
        sg_model_share_release(c->share, w);
    }
    st->scratch = NULL;
    st->model = NULL;
}

static void worker_compute(sg_worker *w, void *arg)
{
    compute_ctx *c = arg;
    worker_state *st = &c->ws[sg_worker_index(w)];
    /* Sub-batches are handed out one at a time rather than in fixed slices: the reader
     * thread and other work take CPU time from one worker or the other, and a fixed
     * slice would leave the other worker idle at the end of each chunk. A sub-batch's
     * rows and arithmetic do not depend on which worker computes it. */
    int64_t batches = (c->n + c->max_batch - 1) / c->max_batch;
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&c->next_batch, 1, memory_order_relaxed);
        if (b >= batches) break;
        int64_t r0 = b * c->max_batch;
        int64_t n = c->n - r0 < c->max_batch ? c->n - r0 : c->max_batch;
        sg_model_predict_batch(st->model, c->ops, c->X + r0 * c->d, n, c->out + r0 * c->width,
                               st->scratch);
        if (c->log_terms)
            sg_metrics_log_terms(c->width, n, c->out + r0 * c->width, c->labels + r0,
                                 c->log_terms + r0);
    }
}

void sg_eval_config_init(sg_eval_config *c)
{
    memset(c, 0, sizeof *c);
    c->threshold = 0.5;
}

double sg_eval_input_overlap(const sg_eval_result *r)
{
    double busy = r->read_seconds + r->hash_seconds;
    if (busy <= 0) return 1.0;
    double f = 1.0 - r->wait_seconds / busy;
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

void sg_eval_result_clear(sg_eval_result *r)
{
    sg_model_free(r->owned_model);
    sg_metrics_clear(&r->metrics);
    if (r->pred_mapped) {
        munmap(r->pred_labels ? (void *)r->pred_labels : (void *)r->pred_values, r->pred_mapped);
    } else {
        sg_free_aligned(r->pred_labels);
        sg_free_aligned(r->pred_values);
    }
    memset(r, 0, sizeof *r);
}

typedef struct {
    eval_ring ring;
    reader_ctx rctx;
    pthread_t reader;
    bool reader_started;
    sg_dataset *ds;
    bool ds_owned;
    sg_pool *pool;
    compute_ctx cc;
    bool workers_ready;
    sg_metrics_acc *acc;
    sg_pred_writer *pw;
    float *out;
    int32_t *pred_labels;
    double *log_terms;
    int keep_fd; /* -1, or the unlinked file the kept predictions are written to */
} eval_run;

/*
 * The predictions kept for shadow agreement go to an unlinked temporary file as they are
 * made, and are mapped only when the run is done: kept in memory, they were in the
 * candidate's peak resident set (4 bytes a row), so adding --baseline changed the verdict
 * of memory.max_rss_mb. The page cache holding them is not the process's.
 */
static sg_status keep_open(eval_run *e, sg_err *err)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char path[4096];
    if (snprintf(path, sizeof path, "%s/stagegate-kept.XXXXXX", dir) >= (int)sizeof path)
        return sg_errf(err, SG_EINPUT, "eval: TMPDIR is too long");
    e->keep_fd = mkstemp(path);
    if (e->keep_fd < 0)
        return sg_errf(err, SG_EIO,
                       "eval: cannot make a temporary file in %s for the predictions kept for "
                       "shadow agreement: %s (set TMPDIR)",
                       dir, strerror(errno));
    unlink(path);
    (void)fcntl(e->keep_fd, F_SETFD, FD_CLOEXEC);
    return SG_OK;
}

static sg_status keep_write(eval_run *e, const void *src, size_t len, off_t at, sg_err *err)
{
    const char *p = src;
    while (len > 0) {
        ssize_t n = pwrite(e->keep_fd, p, len, at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return sg_errf(err, SG_EIO,
                           "eval: writing the predictions kept for shadow agreement (TMPDIR): %s",
                           n < 0 ? strerror(errno) : "nothing written");
        p += n;
        len -= (size_t)n;
        at += n;
    }
    return SG_OK;
}

/* Carves arrays out of one allocation, each 64-byte aligned: sizes in, offsets out. */
static size_t carve(size_t *off, const size_t *bytes, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        off[i] = total;
        total += (bytes[i] + 63) & ~(size_t)63;
    }
    return total;
}

static sg_status alloc_slots(eval_run *e, int64_t chunk, int d, sg_err *err)
{
    /* A slot's arrays share one allocation, huge pages where it is large (the rows alone are
       16 MiB at the default chunk): a first touch per 4 KiB page is dear in a VM, and the
       labels and weights alone would take 384 of them per slot. */
    const size_t rows = (size_t)chunk;
    const size_t bytes[4] = {rows * (size_t)d * sizeof(float), rows * sizeof(int32_t),
                             rows * sizeof(double), rows * sizeof(double)};
    size_t off[4];
    const size_t total = carve(off, bytes, 4);
    for (int i = 0; i < 2; i++) {
        eval_slot *s = &e->ring.slots[i];
        /* First touched by the reader thread, which runs ahead of predict. */
        uint8_t *base = sg_alloc_huge(total);
        if (!base)
            return sg_errf(err, SG_ENOMEM, "eval: out of memory for %lld-row chunks",
                           (long long)chunk);
        s->X = (float *)base;
        s->labels = (int32_t *)(base + off[1]);
        s->targets = (double *)(base + off[2]);
        s->weights = (double *)(base + off[3]);
    }
    return SG_OK;
}

/* Joins the reader, if it runs. With stop it is told to quit first: it may be waiting for a
   slot that no chunk will empty (after a failed chunk, eval had waited on it for ever). */
static void reader_join(eval_run *e, bool stop)
{
    if (!e->reader_started) return;
    if (stop) {
        pthread_mutex_lock(&e->ring.mu);
        e->ring.stop = true;
        pthread_cond_broadcast(&e->ring.cv);
        pthread_mutex_unlock(&e->ring.mu);
    }
    pthread_join(e->reader, NULL);
    e->reader_started = false;
}

static void eval_run_cleanup(eval_run *e)
{
    reader_join(e, true);
    if (e->workers_ready) sg_pool_run(e->pool, worker_teardown, &e->cc);
    free(e->cc.ws);
    sg_pool_free(e->pool);
    sg_model_share_free(e->cc.share);
    for (int i = 0; i < 2; i++) {
        sg_free_aligned(e->ring.slots[i].X); /* the slot's one allocation */
    }
    if (e->pw) sg_pred_writer_abort(e->pw);
    if (e->keep_fd >= 0) close(e->keep_fd);
    sg_metrics_acc_free(e->acc);
    sg_free_aligned(e->out); /* with pred_labels and log_terms */
    if (e->ds && e->ds_owned) sg_dataset_close(e->ds);
    /* A set shared with the caller (gate) no longer reads for this run's model. */
    if (e->ds && !e->ds_owned) sg_dataset_use_model(e->ds, NULL);
    pthread_mutex_destroy(&e->ring.mu);
    pthread_cond_destroy(&e->ring.cv);
}

static void show_progress(int64_t done, int64_t total, double t0)
{
    double el = sg_now_seconds() - t0;
    double eta = done > 0 ? el * (double)(total - done) / (double)done : 0.0;
    fprintf(stderr, "\r  eval: %lld/%lld rows (%.0f%%)  %.1fs elapsed  ETA %.1fs   ",
            (long long)done, (long long)total, 100.0 * (double)done / (double)total, el, eta);
}

/* How far a row of k float32 probabilities may sum from 1: a softmax or 1 - p rounds each
   term by half an ulp; outputs that are not probabilities are off by far more. */
static double row_sum_tolerance(int k)
{
    return 1e-4 + (double)k * FLT_EPSILON;
}

/* Each probability likewise: a forest's average of leaf values rounds a little past 0 or 1
   (1.00000012, -3.6e-7 seen), which log loss clips; outputs that are not probabilities lie
   far outside. */
#define PROBA_SLACK 1e-4f

/*
 * A classifier's outputs are probabilities: each in [0, 1], each row summing to 1. The links
 * stagegate applies (sigmoid, softmax, 1 - p) give that by construction; an ONNX graph whose
 * output is declared probabilities (`--output proba`, or no Softmax at its end) might not,
 * and its metrics would then be computed from numbers that mean nothing. Native tree
 * ensembles' probability outputs are bounded at load. The message names
 * the model and the first row that fails.
 */
static sg_status check_probabilities(const sg_model *m, const float *P, int64_t row0, int64_t n,
                                     int k, sg_err *err)
{
    uint32_t bad = 0;
    for (int64_t i = 0; i < n * k; i++)
        bad |= !(P[i] >= -PROBA_SLACK && P[i] <= 1.0f + PROBA_SLACK); /* NaN fails too */
    const double tol = row_sum_tolerance(k);
    for (int64_t i = 0; i < n && !bad; i++) {
        double sum = 0;
        for (int j = 0; j < k; j++)
            sum += P[i * k + j];
        bad |= !(fabs(sum - 1.0) <= tol);
    }
    if (!bad) return SG_OK;
    for (int64_t i = 0; i < n; i++) {
        double sum = 0;
        for (int j = 0; j < k; j++) {
            const float p = P[i * k + j];
            if (!(p >= -PROBA_SLACK && p <= 1.0f + PROBA_SLACK))
                return sg_errf(err, SG_EINPUT,
                               "%s: output proba[%lld][%d] = %.9g is %s: the model's outputs are "
                               "not probabilities",
                               m->path, (long long)(row0 + i), j, (double)p,
                               isfinite(p) ? "outside [0, 1]" : "not finite");
            sum += p;
        }
        if (!(fabs(sum - 1.0) <= tol))
            return sg_errf(err, SG_EINPUT,
                           "%s: output proba[%lld] sums to %.9g, not 1: the model's %d outputs "
                           "are not class probabilities",
                           m->path, (long long)(row0 + i), sum, k);
    }
    return SG_OK;
}

sg_status sg_eval_check_outputs(const sg_model *m, const float *out, int64_t row0, int64_t n,
                                sg_err *err)
{
    const bool classifier = m->task != SG_TASK_REGRESSION;
    const int width = sg_model_output_width(m);
    if (classifier && m->proba_declared) {
        sg_status rc = check_probabilities(m, out, row0, n, width, err);
        if (rc) return rc;
    }
    for (int64_t i = 0; i < n * width; i++)
        if (!isfinite(out[i])) {
            const long long row = (long long)(row0 + i / width);
            return classifier ? sg_errf(err, SG_EINPUT, "%s: output proba[%lld][%d] is not finite",
                                        m->path, row, (int)(i % width))
                              : sg_errf(err, SG_EINPUT, "%s: output prediction[%lld] is not finite",
                                        m->path, row);
        }
    return SG_OK;
}

/* An error about the set as a whole, with the set's name and size. */
static sg_status name_data_file(const sg_eval_config *c, const sg_eval_result *r, sg_err *err,
                                int st)
{
    sg_err inner = *err;
    return sg_errf(err, st, "%s (%lld rows): %s", c->data_path, (long long)r->rows, inner.msg);
}

/* Consumes one FULL slot: forward pass on the pool, labels, metrics, predictions. */
static int eval_chunk(eval_run *e, const sg_eval_config *c, sg_eval_result *r, eval_slot *s,
                      sg_err *err)
{
    const sg_model *m = r->model;
    bool classifier = m->task != SG_TASK_REGRESSION;
    int width = e->cc.width;
    double t0 = sg_now_seconds();
    e->cc.X = s->X;
    e->cc.out = e->out;
    e->cc.n = s->n;
    e->cc.labels = s->labels;
    e->cc.log_terms = classifier && s->weights ? e->log_terms : NULL;
    atomic_store_explicit(&e->cc.next_batch, 0, memory_order_relaxed);
    sg_pool_run(e->pool, worker_compute, &e->cc);
    if (classifier) sg_predict_labels(e->out, s->n, width, c->threshold, e->pred_labels);
    double t1 = sg_now_seconds();
    r->predict_seconds += t1 - t0;

    /* Sigmoid, softmax and 1 - p make probabilities by construction (non-finite values are
       still refused by the metrics); declared ones are checked. */
    int st = classifier && m->proba_declared
                 ? check_probabilities(m, e->out, s->row0, s->n, width, err)
                 : SG_OK;
    if (st) return st;
    if (classifier)
        st = sg_metrics_add_classification_terms(e->acc, s->n, e->out, s->labels, e->pred_labels,
                                                 s->weights, e->cc.log_terms, err);
    else
        st = sg_metrics_add_regression(e->acc, s->n, e->out, s->targets, s->weights, err);
    r->metrics_seconds += sg_now_seconds() - t1;
    if (st == SG_EINPUT && (!strncmp(err->msg, "proba", 5) || !strncmp(err->msg, "prediction", 10))) {
        /* What the model computed: the message names the model. */
        char what[sizeof err->msg];
        snprintf(what, sizeof what, "%s", err->msg);
        return sg_errf(err, SG_EINPUT, "%s: output %s", m->path, what);
    }
    /* Memory for the metrics' per-row stores runs out here: the set it was for is named,
       as after the last chunk ("metrics: out of memory storing 30000000 scores" had named
       no file). */
    if (st == SG_ENOMEM) return name_data_file(c, r, err, st);
    if (st) return st;

    if (c->keep_predictions) {
        /* int32 labels and float values: 4 bytes a row either way */
        st = keep_write(e, classifier ? (const void *)e->pred_labels : (const void *)e->out,
                        (size_t)s->n * 4, (off_t)s->row0 * 4, err);
        if (st) return st;
    }
    if (e->pw) {
        st = sg_pred_writer_write(e->pw, s->row0, s->n, e->out, classifier ? e->pred_labels : NULL,
                                  err);
        if (st) return st;
    }
    return SG_OK;
}

/* Metric errors come from the data as a whole (all weights zero, too many rows to rank):
   name the file, as every input error does. */
static sg_status eval_setup(eval_run *e, const sg_eval_config *c, sg_eval_result *r, sg_err *err)
{
    sg_status st;
    /* The set's sandboxed dry run (a child process) parses it while the model loads here. An
     * error of the set's is reported after the model's, as when the two opened in turn. */
    sg_err ds_err = {{0}};
    sg_status ds_st = SG_OK;
    if (c->dataset) {
        e->ds = c->dataset;
    } else {
        ds_st = sg_dataset_open_begin_max(c->data_path, c->max_rows, &e->ds, &ds_err);
        e->ds_owned = true;
    }
    if (c->model) {
        r->model = c->model;
    } else {
        /* The loader's digest covers exactly the bytes it parsed (checked against a
         * registered digest before parsing); hashing the path again could name a
         * different file if it were replaced in between. */
        sg_model_open_options mo = {.onnx_output = c->onnx_output,
                                    .onnx_output_name = c->onnx_output_name};
        if ((st = sg_model_open_verified(c->model_path, c->expected_sha256, &mo,
                                         &r->owned_model, err)))
            return st;
        r->model = r->owned_model;
    }
    sg_hex_encode(r->model->sha256, 32, r->model_sha256);
    if (c->expected_sha256 && strcmp(c->expected_sha256, r->model_sha256) != 0)
        return sg_errf(err, SG_EINPUT,
                       "%s: the bytes loaded have sha256 %.12s..., not the registered %.12s...; "
                       "the artifact changed after it was registered",
                       c->model_path, r->model_sha256, c->expected_sha256);
    if (ds_st == SG_OK && !c->dataset) ds_st = sg_dataset_open_end(e->ds, &ds_err);
    if (ds_st != SG_OK) {
        *err = ds_err;
        return ds_st;
    }
    if ((st = sg_dataset_check_model(e->ds, r->model, err))) return st;
    sg_dataset_use_model(e->ds, r->model);
    const sg_model *m = r->model;
    bool classifier = m->task != SG_TASK_REGRESSION;
    if (c->threshold_given && (!classifier || m->n_classes != 2))
        return sg_errf(err, SG_EINPUT,
                       "--threshold applies to two-class classifiers; %s is a %s model, whose "
                       "labels it would not change",
                       m->path, sg_task_name(m->task));
    r->rows = sg_dataset_rows(e->ds);
    if (c->max_rows > 0 && r->rows > c->max_rows)
        return sg_errf(err, SG_EINPUT, "%s: /X has %lld rows, more than --max-rows %lld",
                       c->data_path, (long long)r->rows, (long long)c->max_rows);
    /* What stays in memory for every row, at its most (the data itself is streamed): a
     * two-class model's scores for exact ROC AUC and average precision (4 bytes, up to 8 more
     * while a bucket is sorted, 8 for a weight), the predictions kept for shadow agreement.
     * Each buffer is checked as it is made; their sum is checked here, before any work, so
     * a declared size the process cannot hold is refused at once, not after a long run. */
    {
        const bool w = sg_dataset_has_weights(e->ds);
        const uint64_t scores = classifier && m->n_classes == 2 ? 12u + (w ? 8u : 0u) : 0u,
                       kept = c->keep_predictions ? 4u : 0u, limit = sg_memory_limit();
        const double need = (double)r->rows * (double)(scores + kept);
        if (limit && need > (double)limit)
            return sg_errf(err, SG_EINPUT,
                           "%s: %lld rows need up to %.4g GiB kept in memory (%llu bytes per row "
                           "for exact ROC AUC and average precision, %llu for predictions kept "
                           "for shadow agreement), more than the %.4g GiB of memory this "
                           "process may use",
                           c->data_path, (long long)r->rows, need / 1073741824.0,
                           (unsigned long long)scores, (unsigned long long)kept,
                           (double)limit / 1073741824.0);
    }

    int64_t chunk = c->chunk_rows > 0 ? c->chunk_rows : SG_EVAL_DEFAULT_CHUNK;
    /* Wide rows get fewer of them: the two chunk buffers and the chunk's outputs stay within
       SG_EVAL_CHUNK_BUDGET (whole multiples of the workers' 1,024-row sub-batch, at least
       one). 65,536 rows of 2,000 features had taken 1 GiB, about a whole 1.1 GB set, and
       20,000 features about 10 GiB for a 6 MB file. 65,536 rows stay below ~480 features. */
    if (c->chunk_rows <= 0) {
        const uint64_t per_row = 2 * ((uint64_t)m->n_features * sizeof(float) + 20) +
                                 (uint64_t)sg_model_output_width(m) * sizeof(float) + 12;
        int64_t cap =
            (int64_t)(SG_EVAL_CHUNK_BUDGET / per_row) / SG_EVAL_SUBBATCH * SG_EVAL_SUBBATCH;
        if (cap < SG_EVAL_SUBBATCH) cap = SG_EVAL_SUBBATCH;
        if (cap < chunk) chunk = cap;
    }
    /* Whole HDF5 chunks per read where that keeps every chunk a multiple of the workers'
       1,024-row sub-batch: the sub-batches then start at multiples of 1,024 from row 0
       whatever the file's layout, and so does each row's place in its GEMM, which decides
       its last bits. A file chunked by 1,025 rows had rounded the reads to 64,575 rows, moved
       the sub-batch cuts, and changed the probabilities of the rows at the cuts (and the
       metrics) against the same rows stored contiguously. Otherwise reads cut HDF5 chunks
       (the reader keeps the chunk row it decoded). */
    int64_t h5chunk = sg_dataset_chunk_rows(e->ds), h5unit = 0;
    if (h5chunk > 0) {
        int64_t a = h5chunk, b = SG_EVAL_SUBBATCH;
        while (b) {
            const int64_t t = a % b;
            a = b;
            b = t;
        }
        h5unit = h5chunk / a * SG_EVAL_SUBBATCH; /* lcm(h5chunk, 1024) */
    }
    if (c->chunk_rows <= 0 && h5unit > 0 && h5unit < chunk) chunk = (chunk / h5unit) * h5unit;
    if (chunk > r->rows) chunk = r->rows;
    /* Predict waits for the first chunk: a classifier's is smaller (whole HDF5 chunks where
     * they keep the sub-batch grid, above), so
     * the wait is short, and the next ones double up to the full size, so that the reader,
     * which must read each while the workers predict the one before, stays ahead of them
     * from the start (a full second chunk made the workers wait 10-20 ms for it). Only where
     * it changes no bit: classification sums run over blocks of SG_METRICS_ROW_BLOCK rows
     * from each chunk's first row (counts are exact whatever the chunking), so every size
     * must be a multiple of it (the first is, so its doublings are). Regression combines
     * chunk statistics (Chan), so its chunks stay as they were. */
    int64_t first = chunk;
    if (classifier && c->chunk_rows <= 0) {
        int64_t f = SG_EVAL_FIRST_CHUNK;
        if (h5unit > 0 && h5unit <= chunk) f = (f + h5unit - 1) / h5unit * h5unit;
        if (f < chunk && f % SG_METRICS_ROW_BLOCK == 0 && chunk % SG_METRICS_ROW_BLOCK == 0)
            first = f;
    }
    int d = m->n_features, width = sg_model_output_width(m);
    if ((st = alloc_slots(e, chunk, d, err))) return st;
    /* The chunk's outputs, predicted labels and log-loss terms: one allocation, as a slot. */
    {
        const size_t rows = (size_t)chunk;
        const bool terms = classifier && width == m->n_classes;
        const size_t bytes[3] = {rows * (size_t)width * sizeof(float), rows * sizeof(int32_t),
                                 terms ? rows * sizeof(double) : 0};
        size_t off[3];
        uint8_t *base = sg_alloc_huge(carve(off, bytes, 3));
        if (!base)
            return sg_errf(err, SG_ENOMEM, "eval: out of memory for the outputs of %lld-row chunks",
                           (long long)chunk);
        e->out = (float *)base;
        e->pred_labels = (int32_t *)(base + off[1]);
        /* Classifiers' rows are [n][n_classes] for the metrics (checked by the model loader). */
        e->log_terms = terms ? (double *)(base + off[2]) : NULL;
    }
    if (c->keep_predictions) {
        /* Sized by the declared row count: refused before it can wrap the allocation. */
        if ((st = sg_check_alloc(r->rows, classifier ? sizeof(int32_t) : sizeof(float),
                                 "eval: predictions kept for shadow agreement", err)))
            return name_data_file(c, r, err, st);
        if ((st = keep_open(e, err))) return st;
    }
    if ((st = sg_metrics_acc_new(m->task, m->n_classes, r->rows, &e->acc, err)))
        return name_data_file(c, r, err, st);
    if (c->predictions_path &&
        (st = sg_pred_writer_open(c->predictions_path, r->rows, width, classifier, &e->pw, err)))
        return st;
    if (e->pw && classifier && m->classes &&
        (st = sg_pred_writer_set_classes(e->pw, m->classes, m->n_classes, err)))
        return st;

    /* The reader starts on the first chunk now, so that its read overlaps the pool's
       start-up and the workers' model copies below. */
    e->rctx = (reader_ctx){.ds = e->ds,
                           .ring = &e->ring,
                           .rows = r->rows,
                           .chunk = chunk,
                           .first = first,
                           .n_classes = classifier ? m->n_classes : 0,
                           .classifier = classifier,
                           .file_bytes = sg_dataset_file_bytes(e->ds)};
    if ((st = sg_thread_start(&e->reader, reader_main, &e->rctx, err,
                              "eval: cannot start the reader thread")))
        return st;
    e->reader_started = true;

    if ((st = sg_pool_create(c->cpus, &e->pool, err))) return st;
    /* Chunks are milliseconds apart: a worker or this thread spinning between them would take
       a core from the reader (measured: trees eval 16 ms faster of 0.64 s without the spin). */
    sg_pool_set_spin(e->pool, false);
    r->workers = sg_pool_size(e->pool);
    e->cc.model = m;
    e->cc.ops = sg_kernels();
    e->cc.max_batch = SG_EVAL_SUBBATCH;
    e->cc.width = width;
    e->cc.d = d;
    e->cc.ws = calloc((size_t)r->workers, sizeof(worker_state));
    if (!e->cc.ws) return sg_errf(err, SG_ENOMEM, "eval: out of memory for the workers' state");
    if ((st = sg_model_share_new(m, false, &e->cc.share, err))) return st;
    sg_pool_run(e->pool, worker_setup, &e->cc);
    e->workers_ready = true;
    for (int i = 0; i < r->workers; i++)
        if (e->cc.ws[i].status)
            return sg_errf(err, e->cc.ws[i].status, "eval: cannot prepare worker %d: %s", i,
                           e->cc.ws[i].err.msg[0] ? e->cc.ws[i].err.msg : "no reason given");

    return SG_OK;
}

sg_status sg_eval_run(const sg_eval_config *c, sg_eval_result *r, sg_err *err)
{
    memset(r, 0, sizeof *r);
    /* Workers are the parallelism: one BLAS thread each, no oversubscription. Set before
       the model and data are opened (their HDF5 checks fork; see sg_blas_single_thread). */
    sg_blas_single_thread();
    eval_run e;
    memset(&e, 0, sizeof e);
    e.keep_fd = -1;
    pthread_mutex_init(&e.ring.mu, NULL);
    pthread_cond_init(&e.ring.cv, NULL);
    double t_start = sg_now_seconds();

    int st = eval_setup(&e, c, r, err);
    double t_ready = sg_now_seconds();
    int64_t done = 0;
    for (int64_t i = 0; st == SG_OK && done < r->rows; i++) {
        eval_slot *s = &e.ring.slots[i & 1];
        double tw = sg_now_seconds();
        pthread_mutex_lock(&e.ring.mu);
        while (s->state != SLOT_FULL && e.ring.status == SG_OK)
            pthread_cond_wait(&e.ring.cv, &e.ring.mu);
        r->wait_seconds += sg_now_seconds() - tw;
        if (s->state != SLOT_FULL) {
            st = e.ring.status;
            *err = e.ring.err;
        }
        pthread_mutex_unlock(&e.ring.mu);
        if (st) break;
        st = eval_chunk(&e, c, r, s, err);
        done += s->n;
        pthread_mutex_lock(&e.ring.mu);
        s->state = SLOT_EMPTY;
        pthread_cond_broadcast(&e.ring.cv);
        pthread_mutex_unlock(&e.ring.mu);
        if (c->progress) show_progress(done, r->rows, t_ready);
    }
    if (c->progress && r->rows > 0) fputc('\n', stderr);
    if (st == SG_OK) {
        double t0 = sg_now_seconds();
        st = sg_metrics_finish(e.acc, &r->metrics, err);
        if (st) st = name_data_file(c, r, err, st);
        r->metrics_finish_seconds = sg_now_seconds() - t0;
        r->metrics_seconds += r->metrics_finish_seconds;
    }
    /* The reader has read every chunk; whatever of the digest it left (none, normally)
       is finished here, on the descriptor the rows came from. After a failure it stops. */
    reader_join(&e, st != SG_OK);
    if (st == SG_OK) {
        double t0 = sg_now_seconds();
        st = sg_dataset_sha256(e.ds, r->data_sha256, err);
        r->hash_seconds = e.ring.hash_seconds + (sg_now_seconds() - t0);
    }
    /* The digest and the rows must name the same bytes. */
    if (st == SG_OK) st = sg_dataset_check_unchanged(e.ds, err);
    if (st == SG_OK && e.pw) {
        st = sg_pred_writer_commit(e.pw, err);
        e.pw = NULL;
    }
    /* The kept predictions, mapped now that the run (and any memory measure of it) is done:
       read-only, their pages come in as the comparison reads them. */
    if (st == SG_OK && e.keep_fd >= 0 && r->rows > 0) {
        const size_t bytes = (size_t)r->rows * 4;
        void *map = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, e.keep_fd, 0);
        if (map == MAP_FAILED) {
            st = sg_errf(err, SG_ENOMEM, "eval: cannot map the %zu bytes of kept predictions: %s",
                         bytes, strerror(errno));
        } else {
            if (r->model->task == SG_TASK_REGRESSION)
                r->pred_values = map;
            else
                r->pred_labels = map;
            r->pred_mapped = bytes;
        }
    }
    r->read_seconds = e.ring.read_seconds;
    /* Which kernels the full sub-batches took (or, with smaller chunks, the largest batches),
       for --breakdown and the JSON timing: from the first worker that ran one (sub-batches
       are handed out as the workers come, so one may have run none); the pool is idle. A
       worker whose setup failed has no model (the run is failing: under ulimit -v a
       worker's copy of the model that could not be made had crashed eval here). */
    for (int pass = 0; e.workers_ready && pass < 2 && !r->predict_paths[0]; pass++)
        for (int w = 0; w < r->workers && !r->predict_paths[0]; w++) {
            sg_model_batch_paths(e.cc.ws[w].model, e.cc.ws[w].scratch,
                                 pass == 0 ? SG_EVAL_SUBBATCH : 0, r->predict_paths,
                                 sizeof r->predict_paths);
            if (strstr(r->predict_paths, "not run")) r->predict_paths[0] = '\0';
        }
    eval_run_cleanup(&e);
    r->total_seconds = sg_now_seconds() - t_start;
    r->setup_seconds = t_ready - t_start;
    /* Load time is what the run spent on input that compute did not hide: opening and
       checking the files, and waiting for the reader (read, decode, check, hash). */
    r->load_seconds = r->setup_seconds + r->wait_seconds;
    if (st != SG_OK) sg_eval_result_clear(r);
    return st;
}
