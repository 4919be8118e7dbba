/*
 * Streaming evaluation metrics with scikit-learn 1.2.1's definitions.
 *
 * Rows arrive in chunks. Classification keeps per-class counts (int64 when unweighted,
 * Neumaier-compensated double sums when weighted) and a k*k confusion matrix; binary tasks
 * also keep every positive score as a sort key for ROC AUC / AP (metrics_rank.c).
 * Regression keeps compensated error sums and a Chan-combined weighted mean/M2 of y_true.
 * The first add call fixes whether the accumulator is weighted: mixing weighted and
 * unweighted chunks is refused, since sklearn has no such notion either.
 *
 * log_loss: sklearn's eps="auto" is the machine epsilon of the probability dtype. We take
 * float32 probabilities but compute in double, matching sklearn given those values as
 * float64 (eps = DBL_EPSILON = 2.22e-16, clip to [eps, 1-eps], renormalise each row).
 */
#include "stagegate/metrics.h"

#include <float.h>
#include <stdlib.h>

#include "metrics_internal.h"

#define LOSS_BLOCK SG_METRICS_ROW_BLOCK

struct sg_metrics_acc {
    sg_task task;
    int k;
    int64_t rows;
    int weighted; /* -1 undecided, 0 no weights, 1 weights */
    /* Weighted, but every weight so far was exactly 1 (a file without /sample_weight reads
       as ones): the counts and scores are kept as unweighted ones, which give the very
       bits the weighted sums give with unit weights, until a weight other than 1 comes. */
    bool unit_weights;
    sg_ksum wsum;
    /* classification */
    int64_t *true_n, *pred_n, *tp_n, *cm_n; /* occurrence counts; tp_n/cm_n only unweighted */
    sg_ksum *tp_w, *true_w, *pred_w, *cm_w; /* weighted sums, only when weighted */
    sg_ksum logloss;
    /* weighted binary score store: positives at [0, npos), negatives at [cap - nneg, cap) */
    uint32_t *keys;
    double *kw;
    size_t cap, npos, nneg;
    /* unweighted (or unit-weight) binary scores, bucketed as they arrive (takes over keys) */
    sg_rank_store rank;
    int64_t expected_rows;
    /* regression */
    sg_ksum abs_err, sq_err;
    double y_mean, y_m2, max_err, y_min, y_max;
    /* The weighted mean and M2 are kept of y - y_shift, y_shift being the first target with
       weight: near the data, so the means stay exact to the data's own spread (about 1e14
       +- 1, the means' rounding at 1e14 had cost r2 1e-4 of its value, and with it its
       independence of the chunking). */
    double y_shift;
    bool have_shift;
};

static bool keeps_cm(int k)
{
    return k <= SG_METRICS_CM_MAX_CLASSES;
}

/* Every two-class classifier keeps its class-1 scores (ROC AUC, average precision), whatever
   its format calls it: binary, or multiclass of 2 classes. */
static bool keeps_scores(const sg_metrics_acc *a)
{
    return a->task != SG_TASK_REGRESSION && a->k == 2;
}

sg_status sg_metrics_acc_new(sg_task task, int n_classes, int64_t expected_rows, sg_metrics_acc **out,
                       sg_err *err)
{
    *out = NULL;
    if (task != SG_TASK_BINARY && task != SG_TASK_MULTICLASS && task != SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINPUT, "metrics: unknown task %d", (int)task);
    if (task == SG_TASK_BINARY && n_classes != 2)
        return sg_errf(err, SG_EINPUT, "metrics: a binary task needs 2 classes, got %d", n_classes);
    if (task == SG_TASK_MULTICLASS && (n_classes < 2 || n_classes > SG_MAX_CLASSES))
        return sg_errf(err, SG_EINPUT, "metrics: class count %d is outside 2..%d", n_classes,
                       SG_MAX_CLASSES);
    sg_metrics_acc *a = calloc(1, sizeof *a);
    if (!a) return sg_errf(err, SG_ENOMEM, "metrics: out of memory");
    a->task = task;
    a->weighted = -1;
    a->expected_rows = expected_rows;
    a->y_min = INFINITY;
    a->y_max = -INFINITY;
    if (task != SG_TASK_REGRESSION) {
        size_t k = (size_t)n_classes;
        a->k = n_classes;
        a->true_n = calloc(k, sizeof *a->true_n);
        a->pred_n = calloc(k, sizeof *a->pred_n);
        if (!a->true_n || !a->pred_n) goto nomem;
        if (n_classes == 2 && expected_rows > 0) {
            /* The declared row count sizes the score store: refuse one no machine could hold
             * before it reaches an allocation (or wraps around in one). */
            int st = sg_check_alloc(expected_rows, sizeof *a->keys,
                                    "metrics: scores kept for ROC AUC", err);
            if (st) {
                sg_metrics_acc_free(a);
                return st;
            }
            a->cap = (size_t)expected_rows;
            /* The bucketed store takes it over (metrics_rank.c). */
            a->keys = sg_metrics_big_alloc(a->cap, sizeof *a->keys);
            if (!a->keys) goto nomem;
        }
    }
    *out = a;
    return SG_OK;
nomem:
    sg_metrics_acc_free(a);
    return sg_errf(err, SG_ENOMEM, "metrics: out of memory for %d classes", n_classes);
}

void sg_metrics_acc_free(sg_metrics_acc *a)
{
    if (!a) return;
    free(a->true_n);
    free(a->pred_n);
    free(a->tp_n);
    free(a->cm_n);
    free(a->tp_w);
    free(a->true_w);
    free(a->pred_w);
    free(a->cm_w);
    free(a->keys);
    free(a->kw);
    sg_rank_store_free(&a->rank);
    free(a);
}

/* Fixes the weighting mode on the first chunk and allocates the matching class sums. */
static sg_status set_weighted(sg_metrics_acc *a, bool weighted, sg_err *err)
{
    int w = weighted ? 1 : 0;
    if (a->weighted == w) return SG_OK;
    if (a->weighted != -1)
        return sg_errf(err, SG_EINPUT,
                       "metrics: sample weights were given for some chunks but not others");
    size_t k = (size_t)a->k, cells = keeps_cm(a->k) ? k * k : 0;
    if (a->task != SG_TASK_REGRESSION) {
        if (weighted) {
            a->tp_w = calloc(k, sizeof *a->tp_w);
            a->true_w = calloc(k, sizeof *a->true_w);
            a->pred_w = calloc(k, sizeof *a->pred_w);
            a->cm_w = cells ? calloc(cells, sizeof *a->cm_w) : NULL;
            if (!a->tp_w || !a->true_w || !a->pred_w || (cells && !a->cm_w))
                return sg_errf(err, SG_ENOMEM, "metrics: out of memory for class sums");
        }
        /* Counts for unweighted rows, and for unit weights while they last. */
        a->tp_n = calloc(k, sizeof *a->tp_n);
        a->cm_n = cells ? calloc(cells, sizeof *a->cm_n) : NULL;
        if (!a->tp_n || (cells && !a->cm_n))
            return sg_errf(err, SG_ENOMEM, "metrics: out of memory for class counts");
        if (keeps_scores(a)) {
            uint32_t *keys = a->keys;
            a->keys = NULL; /* the store owns it from here, even if it fails */
            sg_status st = sg_rank_store_init(
                &a->rank, a->expected_rows > 0 ? (size_t)a->expected_rows : 0, keys, a->cap, err);
            a->cap = 0;
            if (st) return st;
        }
    }
    a->weighted = w;
    a->unit_weights = weighted && a->task != SG_TASK_REGRESSION;
    return SG_OK;
}

/*
 * One branch-free scan of the weights' bits (integer operations, which the compiler
 * vectorises where it will not vectorise floating-point compares): false when some weight
 * is NaN or infinite (exponent all ones) or negative and not -0; *ones tells whether every
 * weight is exactly 1.
 */
static bool weights_valid(int64_t n, const double *w, bool *ones)
{
    uint64_t bad = 0, other = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &w[i], sizeof u);
        uint64_t nonfinite = (((u >> 52) & 0x7ffu) + 1) >> 11;
        uint64_t negative = (u >> 63) & (((u & 0x7fffffffffffffffu) + 0x7fffffffffffffffu) >> 63);
        bad |= nonfinite | negative;
        other |= u ^ 0x3ff0000000000000u;
    }
    *ones = other == 0;
    return bad == 0;
}

/* The slow loop only names the row. */
static sg_status check_weights(const sg_metrics_acc *a, int64_t n, const double *w, bool *ones,
                               sg_err *err)
{
    *ones = false;
    if (!w || weights_valid(n, w, ones)) return SG_OK;
    for (int64_t i = 0; i < n; i++)
        if (!(w[i] >= 0) || !isfinite(w[i]))
            return sg_errf(err, SG_EINPUT,
                           "sample_weight[%lld] = %g: weights must be finite and >= 0",
                           (long long)(a->rows + i), w[i]);
    return sg_errf(err, SG_EINTERNAL, "metrics: weight check disagrees with itself");
}

/* Makes room for n more binary scores, keeping negatives at the end of the buffers. */
static sg_status reserve_scores(sg_metrics_acc *a, size_t n, sg_err *err)
{
    if (a->weighted == 0 || a->unit_weights) return sg_rank_store_reserve(&a->rank, n, err);
    size_t used = a->npos + a->nneg;
    if (a->cap - used >= n) return SG_OK;
    size_t cap = a->cap ? a->cap : 4096;
    while (cap - used < n) {
        size_t grow = cap / 2 + n;
        if (cap > SIZE_MAX - grow)
            return sg_errf(err, SG_EINPUT, "metrics: too many scores to store (%zu + %zu)", used,
                           n);
        cap += grow;
    }
    /* Both allocations first, so a failure leaves the store as it was. */
    uint32_t *k = sg_metrics_big_alloc(cap, sizeof *k);
    double *w = a->weighted == 1 ? sg_metrics_big_alloc(cap, sizeof *w) : NULL;
    if (!k || (a->weighted == 1 && !w)) {
        free(k);
        free(w);
        return sg_errf(err, SG_ENOMEM, "metrics: out of memory storing %zu scores", cap);
    }
    if (a->keys) {
        memcpy(k, a->keys, a->npos * sizeof *k);
        memcpy(k + cap - a->nneg, a->keys + a->cap - a->nneg, a->nneg * sizeof *k);
    }
    if (w && a->kw) {
        memcpy(w, a->kw, a->npos * sizeof *w);
        memcpy(w + cap - a->nneg, a->kw + a->cap - a->nneg, a->nneg * sizeof *w);
    }
    free(a->keys);
    free(a->kw);
    a->keys = k;
    a->kw = w;
    a->cap = cap;
    return SG_OK;
}

/* Branch-free scan (vectorised by the compiler); the slow loop below only names the row. */
static bool rows_valid(int64_t n, int k, const float *proba, const int32_t *y_true,
                       const int32_t *y_pred)
{
    /* Signed compares: SSE2 has them for 32-bit lanes, not unsigned ones. */
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad |= (uint32_t)((y_true[i] < 0) | (y_true[i] >= k) | (y_pred[i] < 0) | (y_pred[i] >= k));
    for (int64_t i = 0; i < n * k; i++)
        bad |= !(fabsf(proba[i]) <= FLT_MAX);
    return bad == 0;
}

static sg_status check_classification(const sg_metrics_acc *a, int64_t n, const float *proba,
                                const int32_t *y_true, const int32_t *y_pred, sg_err *err)
{
    int k = a->k;
    if (rows_valid(n, k, proba, y_true, y_pred)) return SG_OK;
    for (int64_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || y_true[i] >= k)
            return sg_errf(err, SG_EINPUT, "y_true[%lld] = %d is outside the labels 0..%d",
                           (long long)(a->rows + i), y_true[i], k - 1);
        if (y_pred[i] < 0 || y_pred[i] >= k)
            return sg_errf(err, SG_EINPUT, "y_pred[%lld] = %d is outside the labels 0..%d",
                           (long long)(a->rows + i), y_pred[i], k - 1);
    }
    for (int64_t i = 0; i < n * k; i++)
        if (!isfinite(proba[i]))
            return sg_errf(err, SG_EINPUT, "proba[%lld][%d] is not finite",
                           (long long)(a->rows + i / k), (int)(i % k));
    return sg_errf(err, SG_EINTERNAL, "metrics: row check disagrees with itself");
}

/*
 * sklearn's clip to [eps, 1 - eps] with eps = DBL_EPSILON. Done with integer masks on the
 * bit patterns: compiled with the default -ftrapping-math, GCC will not vectorise a
 * floating-point select, and this runs once per probability. Input bits below 2^-52
 * (0x25800000, negatives included as they are < 0 as int32) give eps; 1.0f and above
 * (0x3f800000) give 1 - eps, since no float lies strictly between 1 - 2^-52 and 1.
 */
static inline double clip_prob(float p)
{
    static const double lo = DBL_EPSILON, hi = 1.0 - DBL_EPSILON;
    int32_t b;
    memcpy(&b, &p, sizeof b);
    double d = (double)p;
    uint64_t u, ulo, uhi;
    memcpy(&u, &d, sizeof u);
    memcpy(&ulo, &lo, sizeof ulo);
    memcpy(&uhi, &hi, sizeof uhi);
    uint64_t mlo = (uint64_t)0 - (uint64_t)(b < 0x25800000);
    uint64_t mhi = (uint64_t)0 - (uint64_t)(b >= 0x3f800000);
    u = (u & ~mlo) | (ulo & mlo);
    u = (u & ~mhi) | (uhi & mhi);
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Unweighted binary counts from three sums (no per-row stores to the same cells). */
static void add_binary_counts(sg_metrics_acc *a, int64_t n, const int32_t *y_true,
                              const int32_t *y_pred)
{
    /* Labels are 0 or 1 (checked): 32-bit sums over spans below 2^31 rows vectorise. */
    int64_t st = 0, sp = 0, stp = 0;
    for (int64_t b = 0; b < n; b += (int64_t)1 << 30) {
        int64_t e = n - b < ((int64_t)1 << 30) ? n : b + ((int64_t)1 << 30);
        uint32_t t = 0, p = 0, tp = 0;
        for (int64_t i = b; i < e; i++) {
            t += (uint32_t)y_true[i];
            p += (uint32_t)y_pred[i];
            tp += (uint32_t)(y_true[i] & y_pred[i]);
        }
        st += t;
        sp += p;
        stp += tp;
    }
    int64_t tn = n - st - sp + stp;
    a->true_n[0] += n - st;
    a->true_n[1] += st;
    a->pred_n[0] += n - sp;
    a->pred_n[1] += sp;
    a->tp_n[0] += tn;
    a->tp_n[1] += stp;
    a->cm_n[0] += tn;
    a->cm_n[1] += sp - stp;
    a->cm_n[2] += st - stp;
    a->cm_n[3] += stp;
}

static void add_counts(sg_metrics_acc *a, int64_t n, const int32_t *y_true, const int32_t *y_pred,
                       const double *w)
{
    if (!w && a->k == 2) {
        add_binary_counts(a, n, y_true, y_pred);
        return;
    }
    size_t k = (size_t)a->k;
    for (int64_t i = 0; i < n; i++) {
        int32_t t = y_true[i], p = y_pred[i];
        a->true_n[t]++;
        a->pred_n[p]++;
        if (!w) {
            a->tp_n[t] += t == p;
            if (a->cm_n) a->cm_n[(size_t)t * k + (size_t)p]++;
        } else {
            if (t == p) sg_ksum_add(&a->tp_w[t], w[i]);
            sg_ksum_add(&a->true_w[t], w[i]);
            sg_ksum_add(&a->pred_w[p], w[i]);
            if (a->cm_w) sg_ksum_add(&a->cm_w[(size_t)t * k + (size_t)p], w[i]);
        }
    }
}

/*
 * Row loss: -log(num / den), num the true class's clipped probability, den the clipped
 * row sum (sklearn renormalises). Unweighted rows are taken LOG_GROUP at a time as
 * -log(prod(num) / prod(den)): num >= 2^-53 and den <= k, so the products stay normal,
 * and their 2*LOG_GROUP roundings cost under 4e-15 on the group's sum of logs, while one
 * log and one division replace sixteen of each.
 */
#define LOG_GROUP 16

/* Clipped true-class probability and clipped row sum of rows [0, len), labels in 0..k-1. */
static void loss_parts(int k, int len, const float *p, const int32_t *t, double *num, double *den)
{
    if (k == 2) {
        for (int i = 0; i < len; i++) {
            double q0 = clip_prob(p[2 * i]), q1 = clip_prob(p[2 * i + 1]);
            double tf = (double)t[i]; /* 0 or 1: exact select, vectorisable */
            num[i] = tf * q1 + (1.0 - tf) * q0;
            den[i] = q0 + q1;
        }
    } else {
        for (int i = 0; i < len; i++) {
            const float *row = p + (size_t)i * (size_t)k;
            double d = 0;
            for (int j = 0; j < k; j++)
                d += clip_prob(row[j]);
            num[i] = clip_prob(row[t[i]]);
            den[i] = d;
        }
    }
}

void sg_metrics_log_terms(int k, int64_t n, const float *proba, const int32_t *y_true, double *out)
{
    double num[LOSS_BLOCK], den[LOSS_BLOCK];
    for (int64_t b = 0; b < n; b += LOSS_BLOCK) {
        int len = (int)(b + LOSS_BLOCK < n ? LOSS_BLOCK : n - b);
        const int32_t *t = y_true + b;
        uint32_t bad = 0;
        for (int i = 0; i < len; i++)
            bad |= (uint32_t)t[i] >= (uint32_t)k;
        if (bad || k < 2) { /* the add refuses these rows; never read outside a row */
            for (int i = 0; i < len; i++)
                out[b + i] = NAN;
            continue;
        }
        loss_parts(k, len, proba + b * k, t, num, den);
        for (int i = 0; i < len; i++)
            out[b + i] = log(num[i] / den[i]);
    }
}

static void add_log_loss(sg_metrics_acc *a, int64_t n, const float *proba, const int32_t *y_true,
                         const double *w, const double *terms)
{
    int k = a->k;
    double num[LOSS_BLOCK], den[LOSS_BLOCK];
    /* Plain sums inside a short block, compensated across blocks: cheap and accurate. */
    for (int64_t b = 0; b < n; b += LOSS_BLOCK) {
        int len = (int)(b + LOSS_BLOCK < n ? LOSS_BLOCK : n - b);
        double s = 0;
        if (w && terms) { /* the logs below, computed by the caller */
            for (int i = 0; i < len; i++)
                s -= w[b + i] * terms[b + i];
            sg_ksum_add(&a->logloss, s);
            continue;
        }
        loss_parts(k, len, proba + b * k, y_true + b, num, den);
        if (w) {
            /* The logs first, free of the running sum, so that calls overlap. */
            for (int i = 0; i < len; i++)
                num[i] = log(num[i] / den[i]);
            for (int i = 0; i < len; i++)
                s -= w[b + i] * num[i];
        } else {
            int i = 0;
            for (; i + LOG_GROUP <= len; i += LOG_GROUP) {
                double pn = 1, pd = 1;
                for (int j = 0; j < LOG_GROUP; j++) {
                    pn *= num[i + j];
                    pd *= den[i + j];
                }
                s -= log(pn / pd);
            }
            for (; i < len; i++)
                s -= log(num[i] / den[i]);
        }
        sg_ksum_add(&a->logloss, s);
    }
}

/* Labels are random, so a branch per row mispredicts half the time: write the key to both
   free ends and advance one of them; n free slots suffice, as pos < neg before each row. */
static void add_scores(sg_metrics_acc *a, int64_t n, const float *proba, const int32_t *y_true,
                       const double *w)
{
    uint32_t *keys = a->keys;
    double *kw = a->kw;
    size_t pos = a->npos, neg = a->cap - a->nneg; /* next free: keys[pos], keys[neg - 1] */
    for (int64_t i = 0; i < n; i++) {
        uint32_t key = sg_score_key(proba[2 * i + 1]);
        size_t t = (size_t)y_true[i];
        keys[pos] = key;
        keys[neg - 1] = key;
        if (w) {
            kw[pos] = w[i];
            kw[neg - 1] = w[i];
        }
        pos += t;
        neg -= 1 - t;
    }
    a->npos = pos;
    a->nneg = a->cap - neg;
}

/*
 * The first weight other than 1: the counts become compensated sums and the scores the
 * weighted store, as if every row so far had been added weighted. Adding 1.0 to a Neumaier
 * sum of integers below 2^53 leaves {count, +0}, which is what is set. Scores: the rows so
 * far all weigh 1, so their order among equal keys is immaterial, and they sit where rows
 * added earlier sit (positives at the front, negatives at the back), so the stable sort
 * orders ties exactly as if they had been added weighted. Room is made for n more rows.
 */
static sg_status leave_unit_weights(sg_metrics_acc *a, size_t n, sg_err *err)
{
    size_t k = (size_t)a->k, cells = a->cm_w ? k * k : 0;
    if (keeps_scores(a)) {
        const sg_rank_store *rs = &a->rank;
        size_t used = (size_t)a->rows, cap = a->expected_rows > 0 ? (size_t)a->expected_rows : 0;
        if (n > SIZE_MAX - used)
            return sg_errf(err, SG_EINPUT, "metrics: too many scores to store (%zu + %zu)", used,
                           n);
        if (cap < used + n) cap = used + n;
        uint32_t *keys = sg_metrics_big_alloc(cap, sizeof *keys);
        double *kw = sg_metrics_big_alloc(cap, sizeof *kw);
        if (!keys || !kw) {
            free(keys);
            free(kw);
            return sg_errf(err, SG_ENOMEM, "metrics: out of memory storing %zu scores", cap);
        }
        sg_rank_store_export(rs, keys, cap);
        size_t np = (size_t)a->true_n[1], nn = used - np;
        for (size_t i = 0; i < np; i++)
            kw[i] = 1.0;
        for (size_t i = cap - nn; i < cap; i++)
            kw[i] = 1.0;
        sg_rank_store_free(&a->rank);
        a->keys = keys;
        a->kw = kw;
        a->cap = cap;
        a->npos = np;
        a->nneg = nn;
    }
    for (size_t c = 0; c < k; c++) {
        a->tp_w[c] = (sg_ksum){(double)a->tp_n[c], 0};
        a->true_w[c] = (sg_ksum){(double)a->true_n[c], 0};
        a->pred_w[c] = (sg_ksum){(double)a->pred_n[c], 0};
    }
    for (size_t i = 0; i < cells; i++)
        a->cm_w[i] = (sg_ksum){(double)a->cm_n[i], 0};
    a->unit_weights = false;
    return SG_OK;
}

sg_status sg_metrics_add_classification(sg_metrics_acc *a, int64_t n, const float *proba,
                                  const int32_t *y_true, const int32_t *y_pred,
                                  const double *weights, sg_err *err)
{
    return sg_metrics_add_classification_terms(a, n, proba, y_true, y_pred, weights, NULL, err);
}

sg_status sg_metrics_add_classification_terms(sg_metrics_acc *a, int64_t n, const float *proba,
                                              const int32_t *y_true, const int32_t *y_pred,
                                              const double *weights, const double *log_terms,
                                              sg_err *err)
{
    if (a->task == SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINTERNAL, "metrics: classification rows added to a regressor");
    if (n < 0) return sg_errf(err, SG_EINTERNAL, "metrics: negative row count %lld", (long long)n);
    if (n == 0) return SG_OK;
    int rc = check_classification(a, n, proba, y_true, y_pred, err);
    bool ones;
    if (!rc) rc = check_weights(a, n, weights, &ones, err);
    if (!rc) rc = set_weighted(a, weights != NULL, err);
    if (rc) return rc;
    bool unit = weights && a->unit_weights && ones;
    if (weights && a->unit_weights && !unit) rc = leave_unit_weights(a, (size_t)n, err);
    if (!rc && keeps_scores(a)) rc = reserve_scores(a, (size_t)n, err);
    if (rc) return rc;
    /* Unit weights count as no weights, except in log loss, whose weighted sum is a
       different order of operations (one log a row, times 1.0 exactly). */
    const double *wc = unit ? NULL : weights;
    add_counts(a, n, y_true, y_pred, wc);
    add_log_loss(a, n, proba, y_true, weights, log_terms);
    if (keeps_scores(a)) {
        if (wc)
            add_scores(a, n, proba, y_true, wc);
        else
            sg_rank_store_add(&a->rank, (size_t)n, proba, y_true);
    }
    if (wc)
        for (int64_t i = 0; i < n; i++)
            sg_ksum_add(&a->wsum, weights[i]);
    else
        sg_ksum_add(&a->wsum, (double)n);
    a->rows += n;
    return SG_OK;
}

/* One block of regression rows into the accumulator (see sg_metrics_add_regression). */
static void regression_block(sg_metrics_acc *a, int64_t n, const float *pred, const double *y_true,
                             const double *weights)
{
    sg_ksum wc = {0, 0}, wy = {0, 0}, m2 = {0, 0};
    for (int64_t i = 0; i < n && !a->have_shift; i++)
        if (!weights || weights[i] > 0) {
            a->y_shift = y_true[i];
            a->have_shift = true;
        }
    const double K = a->y_shift;
    /* Range of targets that carry weight: all equal means a zero r2 denominator. */
    double ymin = INFINITY, ymax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double w = weights ? weights[i] : 1.0, y = y_true[i], d = y - (double)pred[i];
        sg_ksum_add(&wc, w);
        sg_ksum_add(&wy, w * (y - K));
        sg_ksum_add(&a->abs_err, w * fabs(d));
        sg_ksum_add(&a->sq_err, w * (d * d));
        if (fabs(d) > a->max_err) a->max_err = fabs(d);
        if (w > 0) {
            ymin = y < ymin ? y : ymin;
            ymax = y > ymax ? y : ymax;
        }
    }
    double Wb = sg_ksum_value(&wc);
    double mb = Wb > 0 ? sg_ksum_value(&wy) / Wb : 0;
    for (int64_t i = 0; i < n; i++) {
        double w = weights ? weights[i] : 1.0, d = (y_true[i] - K) - mb;
        sg_ksum_add(&m2, w * (d * d));
    }
    double Wa = sg_ksum_value(&a->wsum), W = Wa + Wb;
    if (W > 0) {
        double delta = mb - a->y_mean;
        a->y_m2 += sg_ksum_value(&m2) + delta * delta * (Wa * (Wb / W));
        a->y_mean += delta * (Wb / W);
    }
    a->y_min = ymin < a->y_min ? ymin : a->y_min;
    a->y_max = ymax > a->y_max ? ymax : a->y_max;
    sg_ksum_add(&a->wsum, Wb);
}

sg_status sg_metrics_add_regression(sg_metrics_acc *a, int64_t n, const float *pred,
                                    const double *y_true, const double *weights, sg_err *err)
{
    if (a->task != SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINTERNAL, "metrics: regression rows added to a classifier");
    if (n < 0) return sg_errf(err, SG_EINTERNAL, "metrics: negative row count %lld", (long long)n);
    if (n == 0) return SG_OK;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(pred[i]))
            return sg_errf(err, SG_EINPUT, "prediction[%lld] is not finite",
                           (long long)(a->rows + i));
        if (!isfinite(y_true[i]))
            return sg_errf(err, SG_EINPUT, "y_true[%lld] is not finite", (long long)(a->rows + i));
    }
    bool ones;
    int rc = check_weights(a, n, weights, &ones, err);
    if (!rc) rc = set_weighted(a, weights != NULL, err);
    if (rc) return rc;
    /* Block statistics in two passes, then Chan's parallel combination with the running
       weighted mean and M2: no catastrophic cancellation from sum(y^2) - n*mean^2. The
       blocks are SG_METRICS_ROW_BLOCK rows from each call's first row, and eval's chunks
       start at multiples of it, so the sums and combinations run the same whatever the
       chunking (per-chunk statistics had made a weighted MAE and r2 differ in their last
       digits between --chunk-rows 1024 and 65536). */
    for (int64_t b0 = 0; b0 < n; b0 += SG_METRICS_ROW_BLOCK) {
        const int64_t bn = n - b0 < SG_METRICS_ROW_BLOCK ? n - b0 : SG_METRICS_ROW_BLOCK;
        regression_block(a, bn, pred + b0, y_true + b0, weights ? weights + b0 : NULL);
    }
    a->rows += n;
    return SG_OK;
}

/* Precision, recall and F1 of one label with zero_division = 0 (sklearn's default). */
static void prf(double tp, double pred, double truth, double *p, double *r, double *f)
{
    *p = pred > 0 ? tp / pred : 0.0;
    *r = truth > 0 ? tp / truth : 0.0;
    *f = (*p + *r) > 0 ? 2.0 * *p * *r / (*p + *r) : 0.0;
}

static double class_sum(const sg_metrics_acc *a, const int64_t *n, const sg_ksum *w, size_t i)
{
    return a->weighted == 1 && !a->unit_weights ? sg_ksum_value(&w[i]) : (double)n[i];
}

static void set_rank_metrics(sg_metrics *m, const sg_rank_metrics *r, bool both_classes)
{
    /* sklearn raises when y_true holds one class and returns nan when a class weighs 0. */
    m->roc_auc_defined = both_classes && isfinite(r->roc_auc);
    m->roc_auc = m->roc_auc_defined ? r->roc_auc : NAN;
    m->average_precision = r->average_precision;
}

static sg_status rank_metrics(sg_metrics_acc *a, sg_metrics *m, sg_err *err)
{
    if (a->weighted == 0 || a->unit_weights) {
        sg_rank_metrics r;
        sg_status st = sg_rank_store_finish(&a->rank, &r, err);
        if (!st) set_rank_metrics(m, &r, r.pos_weight > 0 && r.neg_weight > 0);
        return st;
    }
    size_t np = a->npos, nn = a->nneg, big = np > nn ? np : nn;
    /* One scratch for both classes, sorted one after the other: a second thread for the
     * other class measured slower on two cores, where the caller shares a core. */
    uint32_t *ks = sg_metrics_big_alloc(big, sizeof *ks);
    double *ws = a->weighted == 1 ? sg_metrics_big_alloc(big, sizeof *ws) : NULL;
    if (!ks || (a->weighted == 1 && !ws)) {
        free(ks);
        free(ws);
        return sg_errf(err, SG_ENOMEM, "metrics: out of memory sorting %zu scores", big);
    }
    uint32_t *pk = a->keys, *nk = a->keys + a->cap - nn;
    double *pw = a->weighted == 1 ? a->kw : NULL, *nw = pw ? a->kw + a->cap - nn : NULL;
    sg_radix_sort_keys(pk, pw, np, ks, ws);
    sg_radix_sort_keys(nk, nw, nn, ks, ws);
    free(ks);
    free(ws);
    sg_rank_metrics r;
    sg_rank_metrics_sorted(pk, pw, np, nk, nw, nn, &r);
    set_rank_metrics(m, &r, np > 0 && nn > 0);
    return SG_OK;
}

static sg_status finish_classification(sg_metrics_acc *a, sg_metrics *m, double W, sg_err *err)
{
    size_t k = (size_t)a->k;
    double *tp = malloc(3 * k * sizeof *tp);
    if (!tp) return sg_errf(err, SG_ENOMEM, "metrics: out of memory for %zu classes", k);
    double *tr = tp + k, *pr = tr + k;
    sg_ksum correct = {0, 0};
    for (size_t c = 0; c < k; c++) {
        tp[c] = class_sum(a, a->tp_n, a->tp_w, c);
        tr[c] = class_sum(a, a->true_n, a->true_w, c);
        pr[c] = class_sum(a, a->pred_n, a->pred_w, c);
        sg_ksum_add(&correct, tp[c]);
    }
    if (keeps_cm(a->k)) {
        m->confusion_matrix = malloc(k * k * sizeof *m->confusion_matrix);
        if (!m->confusion_matrix) {
            free(tp);
            return sg_errf(err, SG_ENOMEM, "metrics: out of memory for the confusion matrix");
        }
        for (size_t i = 0; i < k * k; i++)
            m->confusion_matrix[i] = class_sum(a, a->cm_n, a->cm_w, i);
    }
    m->accuracy = sg_ksum_value(&correct) / W;
    m->log_loss = sg_ksum_value(&a->logloss) / W;
    int rc = SG_OK;
    /* A two-class model has both sets, so that models of one problem compare whatever their
       format calls them (an XGBoost multi:softprob of 2 classes against binary:logistic):
       the binary metrics with class 1 positive, and the averages over the labels. */
    if (k == 2) {
        prf(tp[1], pr[1], tr[1], &m->precision, &m->recall, &m->f1);
        rc = rank_metrics(a, m, err);
    }
    {
        /* sklearn's label set: every label seen in y_true or y_pred, weight or not. */
        sg_ksum fsum = {0, 0}, fw = {0, 0}, tw = {0, 0}, tps = {0, 0}, prs = {0, 0};
        int labels = 0;
        for (size_t c = 0; c < k; c++) {
            if (a->true_n[c] == 0 && a->pred_n[c] == 0) continue;
            double p, r, f;
            prf(tp[c], pr[c], tr[c], &p, &r, &f);
            labels++;
            sg_ksum_add(&fsum, f);
            sg_ksum_add(&fw, f * tr[c]);
            sg_ksum_add(&tw, tr[c]);
            sg_ksum_add(&tps, tp[c]);
            sg_ksum_add(&prs, pr[c]);
        }
        double p, r, twv = sg_ksum_value(&tw);
        m->f1_macro = sg_ksum_value(&fsum) / labels;
        m->f1_weighted = twv > 0 ? sg_ksum_value(&fw) / twv : 0.0;
        prf(sg_ksum_value(&tps), sg_ksum_value(&prs), twv, &p, &r, &m->f1_micro);
    }
    free(tp);
    return rc;
}

static void finish_regression(const sg_metrics_acc *a, sg_metrics *m, double W)
{
    m->mean_absolute_error = sg_ksum_value(&a->abs_err) / W;
    m->mean_squared_error = sg_ksum_value(&a->sq_err) / W;
    m->root_mean_squared_error = sqrt(m->mean_squared_error);
    m->max_error = a->max_err;
    double num = sg_ksum_value(&a->sq_err);
    /* Targets equal on every row with weight give a zero denominator exactly, whatever
       rounding the weighted mean had (sklearn's own mean can be off by an ulp there). */
    double den = a->y_min == a->y_max ? 0.0 : a->y_m2;
    m->r2_defined = a->rows >= 2;
    if (!m->r2_defined)
        m->r2_score = NAN;
    else if (den != 0)
        m->r2_score = 1.0 - num / den;
    else /* sklearn's force_finite */
        m->r2_score = num == 0 ? 1.0 : 0.0;
}

sg_status sg_metrics_finish(sg_metrics_acc *a, sg_metrics *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    out->task = a->task;
    out->n_classes = a->task == SG_TASK_REGRESSION ? 0 : a->k;
    out->example_count = a->rows;
    out->weighted = a->weighted == 1;
    if (a->rows == 0) return sg_errf(err, SG_EINPUT, "metrics: no rows to evaluate");
    double W = sg_ksum_value(&a->wsum);
    if (!isfinite(W))
        return sg_errf(err, SG_EINPUT,
                       "sample_weight: the weights add up to more than the largest double "
                       "(scale them down: every metric is the same for weights times a constant)");
    if (!(W > 0)) return sg_errf(err, SG_EINPUT, "sample_weight: all weights are zero");
    if (a->task == SG_TASK_REGRESSION) {
        finish_regression(a, out, W);
        return SG_OK;
    }
    int rc = finish_classification(a, out, W, err);
    if (rc) sg_metrics_clear(out);
    return rc;
}

void sg_metrics_clear(sg_metrics *m)
{
    if (!m) return;
    free(m->confusion_matrix);
    m->confusion_matrix = NULL;
}
