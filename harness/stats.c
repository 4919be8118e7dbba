/*
 * Latency statistics: exact nearest-rank percentiles over every sample, and
 * MLPerf LoadGen's early-stopping estimate.
 *
 * Early stopping (LoadGen, loadgen/early_stopping.cc and results.cc): with h
 * queries under and t over the latency bound, the percentile p can be claimed
 * at confidence c when P(Binomial(h + t, 1 - p) <= t) < 1 - c. h(t) is the
 * smallest such h. A run of n queries is valid when n >= h(1) + 1; its estimate
 * is the (n - t)-th order statistic (0-based) for the largest t with
 * h(t) + t <= n, i.e. the largest t with P(Binomial(n, 1 - p) <= t) < 1 - c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/harness.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Ranks in integer arithmetic so the CSV check can reproduce them bit for bit. */
uint64_t sg_percentile_sorted(const uint64_t *sorted, int64_t n, double q)
{
    SG_ASSERT(n > 0 && q > 0 && q <= 1);
    const int64_t den = 1000000;
    int64_t num = llround(q * (double)den);
    __int128 rank = ((__int128)n * num + den - 1) / den; /* ceil(q * n) */
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[(int64_t)rank - 1];
}

/*
 * Sorts v ascending: least-significant-digit radix sort, 11 bits a pass over only the bits the
 * largest key uses (3 passes for latencies under 8.6 s). The order of integers is unique, so
 * the result is qsort's; on a gate's 57 M samples qsort took about 6 s of a 30 s bench, this
 * well under one. Falls back to qsort when the scratch copy cannot be had.
 */
static void sort_u64(uint64_t *v, int64_t n)
{
    enum { BITS = 11, BUCKETS = 1 << BITS };
    uint64_t all = 0;
    for (int64_t i = 0; i < n; i++)
        all |= v[i];
    uint64_t *tmp = n > 64 ? malloc((size_t)n * sizeof *tmp) : NULL;
    if (!tmp) {
        qsort(v, (size_t)n, sizeof *v, cmp_u64);
        return;
    }
    int used = all ? 64 - __builtin_clzll(all) : 0;
    uint64_t *src = v, *dst = tmp;
    int64_t count[BUCKETS];
    for (int shift = 0; shift < used; shift += BITS) {
        memset(count, 0, sizeof count);
        for (int64_t i = 0; i < n; i++)
            count[(src[i] >> shift) & (BUCKETS - 1)]++;
        int64_t at = 0;
        for (int b = 0; b < BUCKETS; b++) {
            int64_t c = count[b];
            count[b] = at;
            at += c;
        }
        for (int64_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & (BUCKETS - 1)]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != v) memcpy(v, src, (size_t)n * sizeof *v);
    free(tmp);
}

void sg_latency_summarize(uint64_t *ns, int64_t n, sg_latency_summary *s)
{
    SG_ASSERT(n > 0);
    sort_u64(ns, n);
    s->p50 = (double)sg_percentile_sorted(ns, n, 0.50);
    s->p90 = (double)sg_percentile_sorted(ns, n, 0.90);
    s->p95 = (double)sg_percentile_sorted(ns, n, 0.95);
    s->p99 = (double)sg_percentile_sorted(ns, n, 0.99);
    s->p999 = (double)sg_percentile_sorted(ns, n, 0.999);
    s->min = (double)ns[0];
    s->max = (double)ns[n - 1];
    long double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += ns[i];
    s->mean = (double)(sum / n);
}

static double log_add(double a, double b)
{
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

/* log P(Binomial(N, q) <= t), summed in log space so large N does not underflow. */
static double log_binom_cdf(int64_t N, int64_t t, double q)
{
    double lp = log1p(-q), lq = log(q), acc = -INFINITY;
    double lnf = lgamma((double)N + 1);
    for (int64_t x = 0; x <= t && x <= N; x++) {
        double term = lnf - lgamma((double)x + 1) - lgamma((double)(N - x) + 1) + (double)x * lq +
                      (double)(N - x) * lp;
        acc = log_add(acc, term);
    }
    return acc;
}

int64_t sg_early_stopping_min_queries(int64_t t, double p, double c)
{
    SG_ASSERT(t >= 0 && p > 0 && p < 1 && c > 0 && c < 1);
    double limit = log(1 - c), q = 1 - p;
    /* odds(h) = P(Binomial(h + t, q) <= t) falls as h grows: bracket, then bisect. */
    int64_t lo = 1, hi = 16;
    while (!(log_binom_cdf(hi + t, t, q) < limit)) {
        lo = hi + 1;
        hi *= 2;
        if (hi > (int64_t)1 << 40) return -1;
    }
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (log_binom_cdf(mid + t, t, q) < limit)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo + t;
}

void sg_early_stopping(const uint64_t *sorted, int64_t n, double p, double c, sg_early_stop *out)
{
    out->estimate_ns = NAN;
    out->overshoots = 0;
    int64_t need = sg_early_stopping_min_queries(1, p, c);
    if (n < need) {
        out->valid = false;
        out->queries_needed = need - n;
        return;
    }
    out->valid = true;
    out->queries_needed = 0;
    /* Walk the CDF of Binomial(n, 1-p) upward; t is the last x still below 1 - c. */
    double q = 1 - p, limit = log(1 - c), lp = log(p), lq = log(q);
    double lnf = lgamma((double)n + 1), acc = -INFINITY;
    int64_t t = 0;
    for (int64_t x = 0; x < n; x++) {
        double term = lnf - lgamma((double)x + 1) - lgamma((double)(n - x) + 1) + (double)x * lq +
                      (double)(n - x) * lp;
        acc = log_add(acc, term);
        if (!(acc < limit)) break;
        t = x;
    }
    if (t < 1) t = 1; /* valid implies CDF(1) < 1 - c; guards rounding at the boundary */
    out->overshoots = t;
    out->estimate_ns = (double)sorted[n - t];
}
