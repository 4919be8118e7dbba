/* Nearest-rank percentiles and LoadGen early stopping against values computed with
 * scipy.stats.binom. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stagegate/harness.h"

/* Summarises v[0..n) as samples of one span. */
static void summarize(const uint64_t *v, int n, sg_latency_summary *s)
{
    sg_sample *smp = malloc((size_t)n * sizeof *smp);
    assert_non_null(smp);
    for (int i = 0; i < n; i++)
        smp[i] = sg_sample_make(v[i], 0, false);
    sg_sample_span span = {smp, n};
    sg_err err = {0};
    assert_int_equal(sg_latency_summarize_spans(&span, 1, s, NULL, NULL, &err), SG_OK);
    free(smp);
}

static void nearest_rank(void **state)
{
    (void)state;
    uint64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (uint64_t)(100 - i) * 10; /* 10..1000, reversed */
    sg_latency_summary s;
    summarize(v, 100, &s);
    assert_true(s.p50 == 500 && s.p90 == 900 && s.p95 == 950 && s.p99 == 990);
    assert_true(s.p999 == 1000 && s.min == 10 && s.max == 1000);
    assert_true(fabs(s.mean - 505.0) < 1e-9);
    /* One value; all zero (no bit in use). */
    uint64_t one = 77, zeros[3] = {0, 0, 0};
    summarize(&one, 1, &s);
    assert_true(s.p50 == 77 && s.p999 == 77 && s.min == 77 && s.max == 77 && s.mean == 77);
    summarize(zeros, 3, &s);
    assert_true(s.p50 == 0 && s.p99 == 0 && s.max == 0 && s.mean == 0);
    /* Ranks are ceil(q n): with n = 1000, p99.9 is the 999th value, not the 1000th. */
    uint64_t w[1000];
    for (int i = 0; i < 1000; i++)
        w[i] = (uint64_t)i + 1;
    assert_int_equal(sg_percentile_sorted(w, 1000, 0.999), 999);
    assert_int_equal(sg_percentile_sorted(w, 1000, 0.5), 500);
    assert_int_equal(sg_percentile_sorted(w, 1001 - 1, 0.9), 900);
    assert_int_equal(sg_percentile_sorted(w, 7, 0.5), 4);
    assert_int_equal(sg_percentile_sorted(w, 1, 0.999), 1);
}

/* 8 bytes a sample: the latency (clamped to 47 bits), the worker, the migration flag. */
static void sample_packing(void **state)
{
    (void)state;
    assert_int_equal(sizeof(sg_sample), 8);
    sg_sample s = sg_sample_make(123456789, 65535, true);
    assert_true(sg_sample_latency(s) == 123456789 && sg_sample_worker(s) == 65535);
    assert_true(sg_sample_migrated(s));
    s = sg_sample_make(0, 0, false);
    assert_true(sg_sample_latency(s) == 0 && sg_sample_worker(s) == 0 && !sg_sample_migrated(s));
    s = sg_sample_make(UINT64_MAX, 7, false);
    assert_true(sg_sample_latency(s) == SG_SAMPLE_MAX_LATENCY_NS && sg_sample_worker(s) == 7);
    assert_false(sg_sample_migrated(s));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * The summary selects its order statistics in place (a radix selection over the bits in use):
 * every figure must be what sorting all the latencies with qsort gives, over several spans
 * (a run's repetitions), for latencies of every width up to the 47 a sample holds, with
 * duplicates, and for a fast model's shape: nearly all samples within a few ns, then a long
 * tail, so that several ranks share one bucket for more than one round.
 */
static void summary_equals_sorting(void **state)
{
    (void)state;
    enum { N = 200003, SPANS = 5 };
    uint64_t *v = malloc(N * sizeof *v), *ref = malloc(N * sizeof *ref);
    sg_sample *smp = malloc(N * sizeof *smp);
    assert_non_null(v);
    assert_non_null(ref);
    assert_non_null(smp);
    uint64_t x = 0x9E3779B97F4A7C15u;
    const int widths[] = {1, 7, 11, 12, 22, 33, 47, -1};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        long double sum = 0;
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (widths[w] > 0)
                v[i] = x & ((1ull << widths[w]) - 1);
            else /* 40-47 ns, one in 200 up to 4 ms */
                v[i] = i % 200 ? 40 + x % 8 : 40 + x % 4000000;
            if (i % 5 == 0) v[i] = v[i / 2]; /* duplicates */
            smp[i] = sg_sample_make(v[i], i % 3, i % 7 == 0);
            sum += v[i];
        }
        memcpy(ref, v, N * sizeof *v);
        qsort(ref, N, sizeof *ref, cmp_u64);
        /* Uneven spans, one of them empty. */
        const int64_t cut[SPANS + 1] = {0, 1, N / 3, N / 3, N - 2, N};
        sg_sample_span spans[SPANS];
        for (int k = 0; k < SPANS; k++)
            spans[k] = (sg_sample_span){smp + cut[k], cut[k + 1] - cut[k]};
        sg_latency_summary s;
        sg_early_stop e90, e99, r90, r99;
        sg_err err = {0};
        assert_int_equal(sg_latency_summarize_spans(spans, SPANS, &s, &e90, &e99, &err), SG_OK);
        assert_true(s.min == (double)ref[0] && s.max == (double)ref[N - 1]);
        assert_true(s.p50 == (double)sg_percentile_sorted(ref, N, 0.50));
        assert_true(s.p90 == (double)sg_percentile_sorted(ref, N, 0.90));
        assert_true(s.p95 == (double)sg_percentile_sorted(ref, N, 0.95));
        assert_true(s.p99 == (double)sg_percentile_sorted(ref, N, 0.99));
        assert_true(s.p999 == (double)sg_percentile_sorted(ref, N, 0.999));
        assert_true(s.mean == (double)(sum / N));
        sg_early_stopping(ref, N, 0.90, 0.99, &r90);
        sg_early_stopping(ref, N, 0.99, 0.99, &r99);
        assert_true(e90.valid && e99.valid);
        assert_true(e90.estimate_ns == r90.estimate_ns && e90.overshoots == r90.overshoots);
        assert_true(e99.estimate_ns == r99.estimate_ns && e99.overshoots == r99.overshoots);
    }
    free(v);
    free(ref);
    free(smp);
}

/* Too few samples for early stopping: the percentiles are there, the estimates are not. */
static void summary_too_short_for_early_stopping(void **state)
{
    (void)state;
    sg_sample smp[100];
    for (int i = 0; i < 100; i++)
        smp[i] = sg_sample_make((uint64_t)i + 1, 0, false);
    sg_sample_span span = {smp, 100};
    sg_latency_summary s;
    sg_early_stop e90, e99;
    sg_err err = {0};
    assert_int_equal(sg_latency_summarize_spans(&span, 1, &s, &e90, &e99, &err), SG_OK);
    assert_true(s.p50 == 50 && s.p99 == 99);
    uint64_t sorted[100];
    for (int i = 0; i < 100; i++)
        sorted[i] = (uint64_t)i + 1;
    sg_early_stop r90;
    sg_early_stopping(sorted, 100, 0.90, 0.99, &r90);
    assert_true(e90.valid && r90.valid && e90.estimate_ns == r90.estimate_ns);
    assert_true(e90.estimate_ns >= 90 && e90.estimate_ns <= 100);
    assert_false(e99.valid);
    assert_int_equal(e99.queries_needed, 562);
    assert_true(isnan(e99.estimate_ns));
}

static void min_queries_table(void **state)
{
    (void)state;
    /* The known LoadGen numbers at 99% confidence with one overshoot. */
    assert_int_equal(sg_early_stopping_min_queries(1, 0.90, 0.99), 64);
    assert_int_equal(sg_early_stopping_min_queries(1, 0.99, 0.99), 662);
    /* More of the table, from scipy: smallest h + t with binom.cdf(t, h + t, 1 - p) < 0.01. */
    const int64_t t[] = {0, 2, 5, 10};
    const int64_t p90[] = {44, 81, 127, 197}, p99[] = {459, 838, 1307, 2010};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sg_early_stopping_min_queries(t[i], 0.90, 0.99), p90[i]);
        assert_int_equal(sg_early_stopping_min_queries(t[i], 0.99, 0.99), p99[i]);
    }
}

/*
 * Counts whose CDF lies within 1e-9 of the 1% limit, where the estimate's rank depends on the
 * CDF's digits past the ninth (found by an outside check; the exact t from the sum of the
 * terms in 40-digit arithmetic, mpmath): the lgamma terms in double put t one off at each.
 */
static void estimates_at_the_boundary(void **state)
{
    (void)state;
    const struct {
        int64_t n;
        double p;
        int64_t t; /* the largest t with P(Binomial(n, 1 - p) <= t) < 0.01 */
    } cases[] = {
        {3930836, 0.90, 391700},  /* CDF(391,700) = 0.00999999997888 */
        {4665694, 0.90, 465061},  /* CDF(465,062) = 0.0100000000004277 */
        {10826640, 0.99, 107505}, /* CDF(107,505) = 0.00999999999213303 */
        {13611375, 0.99, 135259}, /* CDF(135,260) = 0.0100000000084832 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sg_early_stop es;
        assert_int_equal(sg_early_stopping_index(cases[i].n, cases[i].p, 0.99, &es),
                         cases[i].n - cases[i].t);
        assert_int_equal(es.overshoots, cases[i].t);
    }
}

static void estimates(void **state)
{
    (void)state;
    uint64_t *v = malloc(5000 * sizeof *v);
    for (int i = 0; i < 5000; i++)
        v[i] = (uint64_t)i + 1;
    sg_early_stop es;
    /* scipy: largest t with binom.cdf(t, n, 1 - p) < 0.01; estimate is sorted[n - t]. */
    sg_early_stopping(v, 1000, 0.90, 0.99, &es);
    assert_true(es.valid);
    assert_int_equal(es.overshoots, 78);
    assert_true(es.estimate_ns == (double)v[1000 - 78]);
    sg_early_stopping(v, 1000, 0.99, 0.99, &es);
    assert_int_equal(es.overshoots, 2);
    assert_true(es.estimate_ns == (double)v[998]);
    sg_early_stopping(v, 5000, 0.99, 0.99, &es);
    assert_int_equal(es.overshoots, 33);
    /* Exactly the minimum: valid with t = 1, estimate is the maximum. */
    sg_early_stopping(v, 64, 0.90, 0.99, &es);
    assert_true(es.valid);
    assert_int_equal(es.overshoots, 1);
    assert_true(es.estimate_ns == 64.0);
    sg_early_stopping(v, 662, 0.99, 0.99, &es);
    assert_true(es.valid && es.estimate_ns == 662.0);
    /* One short: invalid, and it says how many more queries. */
    sg_early_stopping(v, 63, 0.90, 0.99, &es);
    assert_false(es.valid);
    assert_int_equal(es.queries_needed, 1);
    assert_true(isnan(es.estimate_ns));
    sg_early_stopping(v, 500, 0.99, 0.99, &es);
    assert_false(es.valid);
    assert_int_equal(es.queries_needed, 162);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nearest_rank),
        cmocka_unit_test(sample_packing),
        cmocka_unit_test(summary_equals_sorting),
        cmocka_unit_test(summary_too_short_for_early_stopping),
        cmocka_unit_test(min_queries_table),
        cmocka_unit_test(estimates),
        cmocka_unit_test(estimates_at_the_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
