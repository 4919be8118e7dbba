/* Internals shared by the metric kernels (kernels/metrics*.c); not a public interface. */
#ifndef STAGEGATE_METRICS_INTERNAL_H
#define STAGEGATE_METRICS_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stagegate/common.h"

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

/* malloc of count * size bytes for the per-row score buffers (64-byte aligned), NULL when
   the product overflows. Not advised as huge pages: in a VM a 2 MiB page first touched after
   the host took the guest's free memory back costs about 4-5 ms (130-180 ms per 64 MiB,
   against 29-38 ms in 4 KiB pages), and eval's metrics stage measured 27.5-37.6 ms with the
   advice against 17.7-19.6 ms without, after 5 s idle; the same (16-24 ms) run back to back. */
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

/*
 * The unweighted binary score store (metrics_rank.c), filled chunk by chunk so that little
 * is left for the finish. Rows are staged in blocks of up to SG_RANK_BLOCK; a full block is
 * bucketed by the top SG_RANK_DIGIT bits of its score keys (one counting-sort pass, in
 * cache) and appended to the store as (low bits of the key << 1 | label), the bucket being
 * implied by the position. The finish gathers each bucket from every block, sorts it in
 * cache and walks it, from the top bucket down.
 */
#define SG_RANK_DIGIT 11
#define SG_RANK_BUCKETS (1u << SG_RANK_DIGIT)
#define SG_RANK_LOW_BITS (32 - SG_RANK_DIGIT)
#define SG_RANK_BLOCK 65536

typedef struct {
    uint32_t *store;  /* bucketed blocks; block j at j * bsize */
    size_t cap;       /* store capacity in rows */
    size_t bsize;     /* rows per block, <= SG_RANK_BLOCK */
    uint32_t *stage;  /* keys of the block being filled */
    uint8_t *label;   /* their labels */
    size_t staged;    /* rows staged */
    uint32_t *hist;   /* bucket counts of the staged rows */
    uint32_t *counts; /* bucket counts of each finished block, SG_RANK_BUCKETS each */
    size_t blocks, cap_blocks;
    uint64_t npos, nneg;
} sg_rank_store;

/* Prepares an empty store for about expected_rows rows (0: unknown; it grows), taking over
   keys (room for cap rows, or NULL) as its storage. SG_ENOMEM. */
SG_MUST_CHECK sg_status sg_rank_store_init(sg_rank_store *rs, size_t expected_rows, uint32_t *keys,
                                           size_t cap, sg_err *err);
void sg_rank_store_free(sg_rank_store *rs);
/* Makes room for n more rows; on failure (SG_EINPUT past SIZE_MAX, SG_ENOMEM) the store
   is unchanged. */
SG_MUST_CHECK sg_status sg_rank_store_reserve(sg_rank_store *rs, size_t n, sg_err *err);
/* Adds n rows: the score is proba[2 * i + 1], the label y_true[i] (0 or 1). The caller
   reserved room for them. */
void sg_rank_store_add(sg_rank_store *rs, size_t n, const float *proba, const int32_t *y_true);
/* ROC AUC and average precision of every row added, bit for bit what
   sg_rank_metrics_sorted gives on the same rows (SG_ENOMEM). The store is left as it was:
   more rows may follow, and another finish. */
SG_MUST_CHECK sg_status sg_rank_store_finish(sg_rank_store *rs, sg_rank_metrics *out, sg_err *err);
/* Writes every key added, positives to keys[0, npos) and negatives to keys[cap - nneg, cap),
   in no particular order within a class (cap >= npos + nneg + staged rows). */
void sg_rank_store_export(const sg_rank_store *rs, uint32_t *keys, size_t cap);

#endif
