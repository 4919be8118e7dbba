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
    return sg_alloc_aligned(bytes);
}

/* Sum of a run of equal keys ending at index *i (inclusive), walking down; weights times
   scale, a power of two. */
static double take_run(const uint32_t *k, const double *w, size_t *left, uint32_t key,
                       double scale)
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
        sg_ksum_add(&s, w[i] * scale);
    }
    *left = i;
    return sg_ksum_value(&s);
}

static double total_weight(const double *w, size_t n, double scale)
{
    if (!w) return (double)n;
    sg_ksum s = {0, 0};
    for (size_t i = 0; i < n; i++)
        sg_ksum_add(&s, w[i] * scale);
    return sg_ksum_value(&s);
}

/*
 * ROC AUC and AP do not change when every weight is multiplied by one factor, but the walk's
 * products of weight sums overflow from about 1e154 per row (and underflow for subnormal
 * weights), where scikit-learn, which divides before it multiplies, still gives the value.
 * So weights far from 1 are scaled by the power of two that brings the largest near 1: exact,
 * so the result is what unbounded arithmetic would give.
 */
static double weight_scale(const double *pw, size_t np, const double *nw, size_t nn)
{
    double mx = 0;
    for (size_t i = 0; i < np; i++)
        if (pw[i] > mx) mx = pw[i];
    for (size_t i = 0; i < nn; i++)
        if (nw[i] > mx) mx = nw[i];
    if (!(mx > 0x1p-400 && mx < 0x1p400)) {
        int e = 0;
        if (mx > 0 && isfinite(mx)) {
            (void)frexp(mx, &e);
            /* 2^1074 would overflow: a subnormal largest weight is brought to 2^-30 or so */
            return ldexp(1.0, -e > 1000 ? 1000 : -e);
        }
    }
    return 1.0;
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
    static const double none = 1.0;
    const double scale = weight_scale(pw ? pw : &none, pw ? np : 0, nw ? nw : &none, nw ? nn : 0);
    double P = total_weight(pw, np, scale), N = total_weight(nw, nn, scale);
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
        sg_ksum_add(&tp, take_run(pk, pw, &i, key, scale));
        sg_ksum_add(&fp, take_run(nk, nw, &j, key, scale));
        double t = sg_ksum_value(&tp), f = sg_ksum_value(&fp);
        /* Trapezoid between consecutive distinct thresholds (sklearn: auc of roc_curve). */
        sg_ksum_add(&area, (f - fprev) * (t + tprev) * 0.5);
        /* Step-wise AP: recall increment times precision at this threshold. A threshold
           holding only zero-weight rows adds nothing, as sklearn drops those rows. */
        if (t + f > 0) sg_ksum_add(&ap, (t - tprev) * (t / (t + f)));
        tprev = t;
        fprev = f;
    }
    out->pos_weight = P / scale;
    out->neg_weight = N / scale;
    out->roc_auc = (P > 0 && N > 0) ? sg_ksum_value(&area) / (P * N) : NAN;
    /* sklearn sets recall to 1 when there are no positives, which yields AP = 0. */
    out->average_precision = P > 0 ? sg_ksum_value(&ap) / P : 0.0;
}

/*
 * The bucketed store of unweighted scores. Adding rows costs a key, a label byte and a
 * histogram increment each; every SG_RANK_BLOCK rows one counting-sort pass moves the block
 * (256 KiB of keys, cache resident) into the store bucket by bucket. The finish then visits
 * the buckets from the top: it gathers one bucket's pieces from every block (in block
 * order), sorts them in cache on the key's remaining bits with the label as the lowest bit,
 * and walks them. Equal scores share a key and so a bucket, so a threshold never spans two.
 */
sg_status sg_rank_store_init(sg_rank_store *rs, size_t expected_rows, uint32_t *keys, size_t cap,
                             sg_err *err)
{
    memset(rs, 0, sizeof *rs);
    rs->store = keys;
    rs->cap = keys ? cap : 0;
    rs->bsize = expected_rows > 0 && expected_rows < SG_RANK_BLOCK ? expected_rows : SG_RANK_BLOCK;
    rs->stage = malloc(rs->bsize * sizeof *rs->stage);
    rs->label = malloc(rs->bsize * sizeof *rs->label);
    rs->hist = calloc(SG_RANK_BUCKETS, sizeof *rs->hist);
    if (!rs->stage || !rs->label || !rs->hist)
        return sg_errf(err, SG_ENOMEM, "metrics: out of memory for the score store");
    return SG_OK;
}

void sg_rank_store_free(sg_rank_store *rs)
{
    free(rs->store);
    free(rs->stage);
    free(rs->label);
    free(rs->hist);
    free(rs->counts);
    memset(rs, 0, sizeof *rs);
}

sg_status sg_rank_store_reserve(sg_rank_store *rs, size_t n, sg_err *err)
{
    size_t used = rs->blocks * rs->bsize + rs->staged;
    if (n > SIZE_MAX - used)
        return sg_errf(err, SG_EINPUT, "metrics: too many scores to store (%zu + %zu)", used, n);
    /* Blocks filled by these rows, and one more for the part block the finish flushes. */
    size_t nb = rs->blocks + (rs->staged + n) / rs->bsize + 1;
    if (nb > rs->cap_blocks) {
        size_t cb = rs->cap_blocks ? rs->cap_blocks : 16, bytes;
        while (cb < nb)
            cb *= 2;
        if (!sg_mul_size(cb, SG_RANK_BUCKETS * sizeof *rs->counts, &bytes))
            return sg_errf(err, SG_EINPUT, "metrics: too many scores to store (%zu)", used + n);
        uint32_t *c = realloc(rs->counts, bytes);
        if (!c) return sg_errf(err, SG_ENOMEM, "metrics: out of memory storing %zu scores", used + n);
        rs->counts = c;
        rs->cap_blocks = cb;
    }
    size_t need = used + n;
    if (need <= rs->cap) return SG_OK;
    size_t cap = rs->cap ? rs->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX - cap / 2 - n ? need : cap + cap / 2 + n;
    uint32_t *k = sg_metrics_big_alloc(cap, sizeof *k);
    if (!k) return sg_errf(err, SG_ENOMEM, "metrics: out of memory storing %zu scores", cap);
    if (rs->blocks) memcpy(k, rs->store, rs->blocks * rs->bsize * sizeof *k);
    free(rs->store);
    rs->store = k;
    rs->cap = cap;
    return SG_OK;
}

/* Writes the staged rows into the store as the next block, bucket by bucket (stable), and
   returns how many are positive. commit: the block is final and the stage empties; else
   (the finish's part block) the stage stays, so that more rows may still come. */
static uint64_t flush_block(sg_rank_store *rs, bool commit)
{
    size_t n = rs->staged;
    uint32_t *cnt = rs->counts + rs->blocks * SG_RANK_BUCKETS, *h = rs->hist;
    uint32_t off[SG_RANK_BUCKETS], sum = 0;
    for (size_t b = 0; b < SG_RANK_BUCKETS; b++) {
        off[b] = sum;
        sum += h[b];
        cnt[b] = h[b];
    }
    if (commit) memset(h, 0, SG_RANK_BUCKETS * sizeof *h);
    uint32_t *dst = rs->store + rs->blocks * rs->bsize;
    const uint32_t *k = rs->stage;
    const uint8_t *l = rs->label;
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = k[i], lab = l[i];
        pos += lab;
        dst[off[key >> SG_RANK_LOW_BITS]++] = ((key << SG_RANK_DIGIT) >> (SG_RANK_DIGIT - 1)) | lab;
    }
    if (commit) {
        rs->npos += pos;
        rs->nneg += n - pos;
        rs->blocks++;
        rs->staged = 0;
    }
    return pos;
}

void sg_rank_store_add(sg_rank_store *rs, size_t n, const float *proba, const int32_t *y_true)
{
    while (n > 0) {
        size_t m = rs->bsize - rs->staged;
        if (m > n) m = n;
        uint32_t *k = rs->stage + rs->staged, *h = rs->hist;
        uint8_t *l = rs->label + rs->staged;
        /* Keys and labels in a loop the compiler vectorises, the histogram after. */
        for (size_t i = 0; i < m; i++) {
            k[i] = sg_score_key(proba[2 * i + 1]);
            l[i] = (uint8_t)y_true[i];
        }
        for (size_t i = 0; i < m; i++)
            h[k[i] >> SG_RANK_LOW_BITS]++;
        rs->staged += m;
        proba += 2 * m;
        y_true += m;
        n -= m;
        if (rs->staged == rs->bsize) (void)flush_block(rs, true);
    }
}

/*
 * One LSD radix pass per digit of a bucket's entries, histograms first (one read), passes
 * whose digit is the same everywhere skipped. Returns where the sorted entries ended.
 */
static uint32_t *lsd_passes(uint32_t *a, uint32_t *tmp, size_t n, const unsigned *bits,
                            int passes, uint32_t *h, size_t radix)
{
    memset(h, 0, (size_t)passes * radix * sizeof *h);
    unsigned shift[4];
    for (int p = 0, sh = 0; p < passes; sh += (int)bits[p], p++)
        shift[p] = (unsigned)sh;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < passes; p++)
            h[(size_t)p * radix + ((a[i] >> shift[p]) & ((1u << bits[p]) - 1))]++;
    uint32_t *src = a, *dst = tmp;
    for (int p = 0; p < passes; p++) {
        uint32_t *hp = h + (size_t)p * radix, mask = (1u << bits[p]) - 1;
        unsigned sh = shift[p];
        if (hp[(src[0] >> sh) & mask] == n) continue;
        uint32_t sum = 0;
        for (size_t d = 0; d <= mask; d++) {
            uint32_t c = hp[d];
            hp[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t v = src[i];
            dst[hp[(v >> sh) & mask]++] = v;
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

/* Sorts a bucket's n entries (SG_RANK_LOW_BITS + 1 bits) ascending; returns a or tmp. Small
   buckets take three 8-bit digits, whose histograms cost less to clear and sum than two
   11-bit ones. */
#define BUCKET_BITS (SG_RANK_LOW_BITS + 1)
static const uint32_t *sort_bucket(uint32_t *a, uint32_t *tmp, size_t n)
{
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = a[i];
            size_t j = i;
            for (; j > 0 && a[j - 1] > v; j--)
                a[j] = a[j - 1];
            a[j] = v;
        }
        return a;
    }
    if (n > UINT32_MAX) { /* 32-bit counts below */
        sg_radix_sort_keys(a, NULL, n, tmp, NULL);
        return a;
    }
    _Static_assert(BUCKET_BITS <= 24 && BUCKET_BITS > 16, "bucket digits cover the entries");
    if (n < 2048) {
        static const unsigned bits[3] = {8, 8, BUCKET_BITS - 16};
        uint32_t h[3 * 256];
        return lsd_passes(a, tmp, n, bits, 3, h, 256);
    }
    static const unsigned bits[2] = {BUCKET_BITS / 2, BUCKET_BITS - BUCKET_BITS / 2};
    uint32_t h[2 * (1u << (BUCKET_BITS - BUCKET_BITS / 2))];
    return lsd_passes(a, tmp, n, bits, 2, h, 1u << (BUCKET_BITS - BUCKET_BITS / 2));
}

/* The state of rank_unweighted's walk, carried from one bucket to the next: the counts so
   far as doubles (exact below 2^53) and the two compensated sums. */
typedef struct {
    double t, f;
    sg_ksum area, ap;
} rank_walk;

/*
 * rank_unweighted's steps over one sorted bucket, from its top down. A score held by one
 * row is the common case and takes a short step with the same bits: its class's count
 * rises by exactly 1, so a negative adds (1 * (t + t)) * 0.5 = t to the area and a
 * positive adds 1 * (t / (t + f)) to AP, every operation exact but the division.
 */
static void walk_bucket(rank_walk *w, const uint32_t *s, size_t n)
{
    double t = w->t, f = w->f;
    sg_ksum area = w->area, ap = w->ap;
    size_t i = n;
    while (i > 0) {
        uint32_t e = s[--i];
        if (i == 0 || s[i - 1] >> 1 != e >> 1) {
            if (e & 1u) {
                t += 1.0;
                sg_ksum_add(&ap, t / (t + f));
            } else {
                f += 1.0;
                sg_ksum_add(&area, t);
            }
            continue;
        }
        uint32_t v = e >> 1;
        uint64_t p = e & 1u, run = 1;
        while (i > 0 && s[i - 1] >> 1 == v) {
            p += s[--i] & 1u;
            run++;
        }
        double tprev = t, fprev = f;
        t += (double)p;
        f += (double)(run - p);
        if (run != p) sg_ksum_add(&area, (f - fprev) * (t + tprev) * 0.5);
        if (p) sg_ksum_add(&ap, (t - tprev) * (t / (t + f)));
    }
    w->t = t;
    w->f = f;
    w->area = area;
    w->ap = ap;
}

sg_status sg_rank_store_finish(sg_rank_store *rs, sg_rank_metrics *out, sg_err *err)
{
    /* The part block goes after the others (room for it was reserved with its rows). */
    uint64_t npos = rs->npos, nneg = rs->nneg;
    size_t nb = rs->blocks, last = rs->bsize;
    if (rs->staged) {
        uint64_t p = flush_block(rs, false);
        npos += p;
        nneg += rs->staged - p;
        last = rs->staged;
        nb++;
    }
    size_t tot[SG_RANK_BUCKETS] = {0}, big = 0;
    size_t *cur = malloc((nb ? nb : 1) * sizeof *cur);
    if (!cur) return sg_errf(err, SG_ENOMEM, "metrics: out of memory ranking scores");
    for (size_t j = 0; j < nb; j++) {
        const uint32_t *c = rs->counts + j * SG_RANK_BUCKETS;
        cur[j] = j + 1 < nb ? rs->bsize : last;
        for (size_t b = 0; b < SG_RANK_BUCKETS; b++)
            tot[b] += c[b];
    }
    for (size_t b = 0; b < SG_RANK_BUCKETS; b++)
        big = tot[b] > big ? tot[b] : big;
    /* One buffer for the bucket and its sort's scratch. */
    uint32_t *buf = sg_metrics_big_alloc(2 * (big ? big : 1), sizeof *buf);
    if (!buf) {
        free(cur);
        return sg_errf(err, SG_ENOMEM, "metrics: out of memory ranking %zu scores", big);
    }
    uint32_t *tmp = buf + (big ? big : 1);
    rank_walk w = {0};
    for (size_t b = SG_RANK_BUCKETS; b-- > 0;) {
        if (!tot[b]) continue;
        size_t len = 0;
        for (size_t j = 0; j < nb; j++) {
            size_t c = rs->counts[j * SG_RANK_BUCKETS + b];
            if (!c) continue;
            cur[j] -= c;
            memcpy(buf + len, rs->store + j * rs->bsize + cur[j], c * sizeof *buf);
            len += c;
        }
        walk_bucket(&w, sort_bucket(buf, tmp, len), len);
    }
    free(cur);
    sg_free_aligned(buf);
    double P = (double)npos, N = (double)nneg;
    out->pos_weight = P;
    out->neg_weight = N;
    out->roc_auc = (P > 0 && N > 0) ? sg_ksum_value(&w.area) / (P * N) : NAN;
    out->average_precision = P > 0 ? sg_ksum_value(&w.ap) / P : 0.0;
    return SG_OK;
}

void sg_rank_store_export(const sg_rank_store *rs, uint32_t *keys, size_t cap)
{
    size_t pos = 0, neg = cap;
    for (size_t j = 0; j < rs->blocks; j++) {
        const uint32_t *c = rs->counts + j * SG_RANK_BUCKETS, *v = rs->store + j * rs->bsize;
        for (size_t b = 0; b < SG_RANK_BUCKETS; b++) {
            uint32_t top = (uint32_t)b << SG_RANK_LOW_BITS;
            for (uint32_t i = 0; i < c[b]; i++, v++) {
                uint32_t key = top | (*v >> 1);
                if (*v & 1u)
                    keys[pos++] = key;
                else
                    keys[--neg] = key;
            }
        }
    }
    for (size_t i = 0; i < rs->staged; i++) {
        if (rs->label[i])
            keys[pos++] = rs->stage[i];
        else
            keys[--neg] = rs->stage[i];
    }
}
