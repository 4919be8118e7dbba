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

/* The 0-based index of the nearest-rank q-quantile of n values: ceil(q * n) - 1, the rank in
   integer arithmetic so the CSV check can reproduce it bit for bit. */
static int64_t percentile_index(int64_t n, double q)
{
    SG_ASSERT(n > 0 && q > 0 && q <= 1);
    const int64_t den = 1000000;
    int64_t num = llround(q * (double)den);
    __int128 rank = ((__int128)n * num + den - 1) / den; /* ceil(q * n) */
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (int64_t)rank - 1;
}

uint64_t sg_percentile_sorted(const uint64_t *sorted, int64_t n, double q)
{
    return sorted[percentile_index(n, q)];
}

/*
 * Order statistics of the latencies in the spans: out[j] is the value at 0-based index
 * ranks[j] of their sorted order (each below their count), found without sorting or copying:
 * a most-significant-digit radix selection, SELECT_BITS bits a round over only the bits in
 * use (`used`, from the OR of them all). After each round every rank knows more of its
 * value's high bits; the next round counts the following digit of the values that share
 * them, one table of counts per distinct prefix (ranks in one bucket share it). Latencies
 * under 4.2 ms (22 bits) take two rounds. The order of integers is unique, so this is
 * sorting's answer. Returns false when the counters cannot be had.
 */
enum { SELECT_BITS = 11, SELECT_BUCKETS = 1 << SELECT_BITS, SELECT_MAX = 8 };

static bool select_ranks(const sg_sample_span *spans, int n_spans, int used, const int64_t *ranks,
                         int m, uint64_t *out)
{
    SG_ASSERT(m >= 1 && m <= SELECT_MAX && used >= 0 && used < 64);
    int64_t *count = malloc((size_t)SELECT_MAX * SELECT_BUCKETS * sizeof *count);
    if (!count) return false;
    uint64_t prefix[SELECT_MAX] = {0};
    int64_t rank[SELECT_MAX];
    memcpy(rank, ranks, (size_t)m * sizeof *rank);
    for (int hi = used; hi > 0;) {
        const int lo = hi > SELECT_BITS ? hi - SELECT_BITS : 0;
        const uint64_t mask = ((uint64_t)1 << (hi - lo)) - 1;
        uint64_t group[SELECT_MAX];
        int ng = 0, g_of[SELECT_MAX];
        for (int j = 0; j < m; j++) {
            int g = 0;
            while (g < ng && group[g] != prefix[j])
                g++;
            if (g == ng) group[ng++] = prefix[j];
            g_of[j] = g;
        }
        memset(count, 0, (size_t)ng * SELECT_BUCKETS * sizeof *count);
        for (int sp = 0; sp < n_spans; sp++) {
            const sg_sample *v = spans[sp].samples;
            const int64_t n = spans[sp].n;
            if (ng == 1) {
                const uint64_t want = group[0];
                for (int64_t i = 0; i < n; i++) {
                    const uint64_t x = sg_sample_latency(v[i]);
                    if (x >> hi == want) count[(x >> lo) & mask]++;
                }
                continue;
            }
            for (int64_t i = 0; i < n; i++) {
                const uint64_t x = sg_sample_latency(v[i]), h = x >> hi;
                for (int g = 0; g < ng; g++)
                    if (h == group[g]) {
                        count[(size_t)g * SELECT_BUCKETS + ((x >> lo) & mask)]++;
                        break;
                    }
            }
        }
        for (int j = 0; j < m; j++) {
            const int64_t *c = count + (size_t)g_of[j] * SELECT_BUCKETS;
            int64_t below = 0;
            uint64_t d = 0;
            while (rank[j] >= below + c[d])
                below += c[d++];
            rank[j] -= below;
            prefix[j] = prefix[j] << (hi - lo) | d;
        }
        hi = lo;
    }
    memcpy(out, prefix, (size_t)m * sizeof *out);
    free(count);
    return true;
}

sg_status sg_latency_summarize_spans(const sg_sample_span *spans, int n_spans,
                                     sg_latency_summary *s, sg_early_stop *es_p90,
                                     sg_early_stop *es_p99, sg_err *err)
{
    int64_t n = 0;
    uint64_t all = 0, lo = UINT64_MAX, hi = 0;
    long double sum = 0; /* exact: integers, and the sum is far below 2^64 */
    for (int sp = 0; sp < n_spans; sp++) {
        n += spans[sp].n;
        for (int64_t i = 0; i < spans[sp].n; i++) {
            const uint64_t x = sg_sample_latency(spans[sp].samples[i]);
            all |= x;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            sum += x;
        }
    }
    SG_ASSERT(n > 0);
    static const double q[5] = {0.50, 0.90, 0.95, 0.99, 0.999};
    int64_t ranks[SELECT_MAX];
    int m = 0;
    for (int k = 0; k < 5; k++)
        ranks[m++] = percentile_index(n, q[k]);
    sg_early_stop es[2];
    const int64_t es_at[2] = {sg_early_stopping_index(n, 0.90, 0.99, &es[0]),
                              sg_early_stopping_index(n, 0.99, 0.99, &es[1])};
    for (int k = 0; k < 2; k++)
        if (es_at[k] >= 0) ranks[m++] = es_at[k];
    uint64_t v[SELECT_MAX];
    if (!select_ranks(spans, n_spans, all ? 64 - __builtin_clzll(all) : 0, ranks, m, v))
        return sg_errf(err, SG_ENOMEM, "bench: out of memory summarising %lld samples",
                       (long long)n);
    s->p50 = (double)v[0];
    s->p90 = (double)v[1];
    s->p95 = (double)v[2];
    s->p99 = (double)v[3];
    s->p999 = (double)v[4];
    s->min = (double)lo;
    s->max = (double)hi;
    s->mean = (double)(sum / n);
    for (int k = 0, at = 5; k < 2; k++)
        if (es_at[k] >= 0) es[k].estimate_ns = (double)v[at++];
    if (es_p90) *es_p90 = es[0];
    if (es_p99) *es_p99 = es[1];
    return SG_OK;
}

/*
 * P(Binomial(n, q) <= x), walked upward from x = 0 in long double: each term is the one
 * before times (n - x) / (x + 1) * q / (1 - q), kept as a mantissa and a power of two (the
 * first, (1 - q)^n, is far below the smallest long double for tens of millions of queries),
 * and the sum as its ratio to the current term. The terms had been lgamma(n + 1) - lgamma(x +
 * 1) - lgamma(n - x + 1) in double: values near 1e8 whose difference kept 8 digits, and at
 * some counts (3.9 M queries at p90, 10.8 M and 13.6 M at p99) a CDF within 1e-9 of the limit
 * came out on the wrong side, the estimate one rank off. Here the error is near 1e-13.
 */
typedef struct {
    int64_t n, x;
    long double odds; /* q / (1 - q) */
    long double term; /* pmf(x) = term * 2^e, term in [0.5, 1) */
    long e;
    long double ratio; /* cdf(x) / pmf(x) */
} binom_walk;

static void walk_start(binom_walk *w, int64_t n, long double q)
{
    const long double ln2 = logl(2.0L), lt = (long double)n * log1pl(-q); /* log pmf(0) */
    const long double e = floorl(lt / ln2);
    int k;
    w->n = n;
    w->x = 0;
    w->odds = q / (1 - q);
    w->term = frexpl(expl(lt - e * ln2), &k);
    w->e = (long)e + k;
    w->ratio = 1;
}

static void walk_next(binom_walk *w)
{
    const long double r = (long double)(w->n - w->x) / (long double)(w->x + 1) * w->odds;
    int k;
    w->x++;
    w->term = frexpl(w->term * r, &k);
    w->e += k;
    w->ratio = w->ratio / r + 1;
}

static void walk_to(binom_walk *w, int64_t x)
{
    while (w->x < x && w->x < w->n)
        walk_next(w);
}

/* Whether cdf(x) < limit, limit in (0, 1). */
static bool walk_below(const binom_walk *w, long double limit)
{
    int k, kl;
    const long double f = frexpl(w->term * w->ratio, &k), fl = frexpl(limit, &kl);
    const long e = w->e + k;
    return e < kl || (e == kl && f < fl);
}

/* A probability in millionths, as the percentile ranks are: 0.99 as 99/100, not the double
   nearest it, whose 1 - p differs in the 16th digit, which moves a CDF of 10 M queries in its
   10th. */
static long double millionths(double v)
{
    return (long double)llround(v * 1e6) / 1e6L;
}

int64_t sg_early_stopping_min_queries(int64_t t, double p, double c)
{
    SG_ASSERT(t >= 0 && p > 0 && p < 1 && c > 0 && c < 1);
    const long double q = millionths(1 - p), limit = millionths(1 - c);
    /* P(Binomial(h + t, q) <= t) falls as h grows: bracket, then bisect. */
    binom_walk w;
#define BELOW(N) (walk_start(&w, (N), q), walk_to(&w, t), walk_below(&w, limit))
    int64_t lo = 1, hi = 16;
    while (!BELOW(hi + t)) {
        lo = hi + 1;
        hi *= 2;
        if (hi > (int64_t)1 << 40) return -1;
    }
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (BELOW(mid + t))
            hi = mid;
        else
            lo = mid + 1;
    }
#undef BELOW
    return lo + t;
}

int64_t sg_early_stopping_index(int64_t n, double p, double c, sg_early_stop *out)
{
    out->estimate_ns = NAN;
    out->overshoots = 0;
    int64_t need = sg_early_stopping_min_queries(1, p, c);
    if (n < need) {
        out->valid = false;
        out->queries_needed = need - n;
        return -1;
    }
    out->valid = true;
    out->queries_needed = 0;
    /* Walk the CDF of Binomial(n, 1-p) upward; t is the last x still below 1 - c. */
    const long double limit = millionths(1 - c);
    binom_walk w;
    walk_start(&w, n, millionths(1 - p));
    int64_t t = 0;
    while (walk_below(&w, limit)) {
        t = w.x;
        if (w.x + 1 >= n) break;
        walk_next(&w);
    }
    if (t < 1) t = 1; /* valid implies CDF(1) < 1 - c; guards rounding at the boundary */
    out->overshoots = t;
    return n - t;
}

void sg_early_stopping(const uint64_t *sorted, int64_t n, double p, double c, sg_early_stop *out)
{
    const int64_t at = sg_early_stopping_index(n, p, c, out);
    if (at >= 0) out->estimate_ns = (double)sorted[at];
}
