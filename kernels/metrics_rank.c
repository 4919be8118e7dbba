/*
 * Ranking metrics for binary classifiers: ROC AUC and average precision.
 *
 * Both need every (score, label, weight) triple ordered by score. Scores are float32, so a
 * 32-bit order-preserving key and an LSD radix sort (three counting passes, O(n)) replace a
 * comparison sort; positives and negatives are kept in separate arrays, so the label is
 * implicit and a merge walk from the top visits each distinct score once, as sklearn's
 * _binary_clf_curve does.
 */
#include "metrics_internal.h"
#include "stagegate/common.h"

#include <stdlib.h>
#include <sys/mman.h>

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_MASK (RADIX_SIZE - 1u)
#define RADIX_PASSES 3

void sg_radix_sort_keys(uint32_t *keys, double *w, size_t n, uint32_t *kscratch, double *wscratch)
{
    if (n < 2) return;
    /* One read of the keys fills the histograms of all three digits. */
    static _Thread_local size_t hist[RADIX_PASSES][RADIX_SIZE];
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = keys[i];
        hist[0][k & RADIX_MASK]++;
        hist[1][(k >> RADIX_BITS) & RADIX_MASK]++;
        hist[2][k >> (2 * RADIX_BITS)]++;
    }
    uint32_t *ksrc = keys, *kdst = kscratch;
    double *wsrc = w, *wdst = wscratch;
    for (int p = 0; p < RADIX_PASSES; p++) {
        unsigned shift = (unsigned)(p * RADIX_BITS);
        size_t *h = hist[p];
        /* Probabilities share their top bits, so often one bucket holds everything. */
        if (h[(ksrc[0] >> shift) & RADIX_MASK] == n) continue;
        size_t sum = 0;
        for (size_t b = 0; b < RADIX_SIZE; b++) {
            size_t c = h[b];
            h[b] = sum;
            sum += c;
        }
        if (wsrc) {
            for (size_t i = 0; i < n; i++) {
                uint32_t k = ksrc[i];
                size_t pos = h[(k >> shift) & RADIX_MASK]++;
                kdst[pos] = k;
                wdst[pos] = wsrc[i];
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                uint32_t k = ksrc[i];
                kdst[h[(k >> shift) & RADIX_MASK]++] = k;
            }
        }
        uint32_t *kt = ksrc;
        ksrc = kdst;
        kdst = kt;
        double *wt = wsrc;
        wsrc = wdst;
        wdst = wt;
    }
    if (ksrc != keys) {
        memcpy(keys, ksrc, n * sizeof *keys);
        if (w) memcpy(w, wsrc, n * sizeof *w);
    }
}

void *sg_metrics_big_alloc(size_t count, size_t size)
{
    size_t bytes;
    if (!sg_mul_size(count, size, &bytes)) return NULL;
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        size_t rounded = (bytes + huge - 1) & ~(huge - 1);
        void *p = aligned_alloc(huge, rounded);
        if (p) (void)madvise(p, rounded, MADV_HUGEPAGE); /* only a hint: failure costs speed */
        return p;
    }
#endif
    return malloc(bytes ? bytes : 1);
}

/* Sum of a run of equal keys ending at index *i (inclusive), walking down. */
static double take_run(const uint32_t *k, const double *w, size_t *left, uint32_t key)
{
    size_t i = *left;
    if (!w) {
        size_t start = i;
        while (i > 0 && k[i - 1] == key)
            i--;
        *left = i;
        return (double)(start - i);
    }
    sg_ksum s = {0, 0};
    while (i > 0 && k[i - 1] == key) {
        i--;
        sg_ksum_add(&s, w[i]);
    }
    *left = i;
    return sg_ksum_value(&s);
}

static double total_weight(const double *w, size_t n)
{
    if (!w) return (double)n;
    sg_ksum s = {0, 0};
    for (size_t i = 0; i < n; i++)
        sg_ksum_add(&s, w[i]);
    return sg_ksum_value(&s);
}

/*
 * The unweighted walk: the same sums in the same order as the weighted one below, so the
 * results are bit for bit the same, with two exact shortcuts. Counts are integers, and a
 * compensated sum of integers below 2^53 is the integer itself. A threshold that adds no
 * negatives adds (f - fprev) * ... = +0 to the area, and one that adds no positives adds
 * +0 to AP; adding +0 leaves a compensated sum of non-negative terms unchanged, so those
 * adds (and AP's division) are skipped. With distinct scores every threshold holds one
 * class, so each step does one add instead of four.
 */
static void rank_unweighted(const uint32_t *pk, size_t np, const uint32_t *nk, size_t nn,
                            sg_rank_metrics *out)
{
    double P = (double)np, N = (double)nn;
    sg_ksum area = {0, 0}, ap = {0, 0};
    uint64_t tpc = 0, fpc = 0;
    double tprev = 0, fprev = 0;
    size_t i = np, j = nn;
    while (i > 0 || j > 0) {
        uint32_t key;
        if (i == 0)
            key = nk[j - 1];
        else if (j == 0)
            key = pk[i - 1];
        else
            key = pk[i - 1] > nk[j - 1] ? pk[i - 1] : nk[j - 1];
        size_t i0 = i, j0 = j;
        while (i > 0 && pk[i - 1] == key)
            i--;
        while (j > 0 && nk[j - 1] == key)
            j--;
        tpc += i0 - i;
        fpc += j0 - j;
        double t = (double)tpc, f = (double)fpc;
        if (j0 != j) sg_ksum_add(&area, (f - fprev) * (t + tprev) * 0.5);
        if (i0 != i) sg_ksum_add(&ap, (t - tprev) * (t / (t + f)));
        tprev = t;
        fprev = f;
    }
    out->pos_weight = P;
    out->neg_weight = N;
    out->roc_auc = (P > 0 && N > 0) ? sg_ksum_value(&area) / (P * N) : NAN;
    out->average_precision = P > 0 ? sg_ksum_value(&ap) / P : 0.0;
}

void sg_rank_metrics_sorted(const uint32_t *pk, const double *pw, size_t np, const uint32_t *nk,
                            const double *nw, size_t nn, sg_rank_metrics *out)
{
    if (!pw && !nw) {
        rank_unweighted(pk, np, nk, nn, out);
        return;
    }
    double P = total_weight(pw, np), N = total_weight(nw, nn);
    sg_ksum tp = {0, 0}, fp = {0, 0}, area = {0, 0}, ap = {0, 0};
    double tprev = 0, fprev = 0;
    size_t i = np, j = nn; /* items [0, i) and [0, j) are still to visit */
    while (i > 0 || j > 0) {
        uint32_t key;
        if (i == 0)
            key = nk[j - 1];
        else if (j == 0)
            key = pk[i - 1];
        else
            key = pk[i - 1] > nk[j - 1] ? pk[i - 1] : nk[j - 1];
        sg_ksum_add(&tp, take_run(pk, pw, &i, key));
        sg_ksum_add(&fp, take_run(nk, nw, &j, key));
        double t = sg_ksum_value(&tp), f = sg_ksum_value(&fp);
        /* Trapezoid between consecutive distinct thresholds (sklearn: auc of roc_curve). */
        sg_ksum_add(&area, (f - fprev) * (t + tprev) * 0.5);
        /* Step-wise AP: recall increment times precision at this threshold. A threshold
           holding only zero-weight rows adds nothing, as sklearn drops those rows. */
        if (t + f > 0) sg_ksum_add(&ap, (t - tprev) * (t / (t + f)));
        tprev = t;
        fprev = f;
    }
    out->pos_weight = P;
    out->neg_weight = N;
    out->roc_auc = (P > 0 && N > 0) ? sg_ksum_value(&area) / (P * N) : NAN;
    /* sklearn sets recall to 1 when there are no positives, which yields AP = 0. */
    out->average_precision = P > 0 ? sg_ksum_value(&ap) / P : 0.0;
}
