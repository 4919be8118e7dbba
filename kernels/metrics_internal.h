/* Internals shared by the metric kernels (kernels/metrics*.c); not a public interface. */
#ifndef STAGEGATE_METRICS_INTERNAL_H
#define STAGEGATE_METRICS_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Neumaier-compensated sum: running totals over 10M+ rows keep ~1 ulp of accuracy instead
 * of drifting by n*eps, and integer-valued sums (unweighted counts) stay exact.
 */
typedef struct {
    double s, c;
} sg_ksum;

static inline void sg_ksum_add(sg_ksum *k, double x)
{
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

static inline double sg_ksum_value(const sg_ksum *k)
{
    return k->s + k->c;
}

/*
 * Maps a float to a uint32 whose unsigned order is the float order (-0 and +0 share a key,
 * as numpy treats them as one threshold). NaN never reaches here: inputs are checked.
 */
static inline uint32_t sg_score_key(float f)
{
    f += 0.0f; /* -0 becomes +0 */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/*
 * Sorts keys ascending with an LSD radix sort (11/11/10-bit digits, passes whose digit is
 * constant skipped), carrying w along when it is not NULL. kscratch/wscratch hold n items.
 * The sorted data ends in keys/w.
 */
void sg_radix_sort_keys(uint32_t *keys, double *w, size_t n, uint32_t *kscratch, double *wscratch);

/* malloc of count * size bytes for the per-row score buffers, NULL when the product
   overflows: sizes of 2 MiB and more are 2 MiB-aligned and advised as transparent huge
   pages, which saves most of their first-touch page faults. */
void *sg_metrics_big_alloc(size_t count, size_t size);

/* Area under the ROC curve and average precision from the sorted positive and negative keys
   (weights NULL = 1 each), as sklearn's roc_auc_score / average_precision_score. */
typedef struct {
    double roc_auc;
    double average_precision;
    double pos_weight, neg_weight;
} sg_rank_metrics;

void sg_rank_metrics_sorted(const uint32_t *pk, const double *pw, size_t np, const uint32_t *nk,
                            const double *nw, size_t nn, sg_rank_metrics *out);

#endif
