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

static void nearest_rank(void **state)
{
    (void)state;
    uint64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (uint64_t)(100 - i) * 10; /* 10..1000, reversed */
    sg_latency_summary s;
    sg_latency_summarize(v, 100, &s);
    assert_true(s.p50 == 500 && s.p90 == 900 && s.p95 == 950 && s.p99 == 990);
    assert_true(s.p999 == 1000 && s.min == 10 && s.max == 1000);
    assert_true(fabs(s.mean - 505.0) < 1e-9);
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

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* sg_latency_summarize sorts in place (a radix sort over the bits in use): the array must come
 * out as qsort leaves it, for keys of every width, duplicates and the top bit included. */
static void summarize_sorts_like_qsort(void **state)
{
    (void)state;
    enum { N = 200003 };
    uint64_t *v = malloc(N * sizeof *v), *ref = malloc(N * sizeof *ref);
    assert_non_null(v);
    assert_non_null(ref);
    uint64_t x = 0x9E3779B97F4A7C15u;
    const int widths[] = {7, 11, 12, 22, 33, 64};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v[i] = widths[w] == 64 ? x : x & ((1ull << widths[w]) - 1);
            if (i % 5 == 0) v[i] = v[i / 2]; /* duplicates */
        }
        memcpy(ref, v, N * sizeof *v);
        qsort(ref, N, sizeof *ref, cmp_u64);
        sg_latency_summary s;
        sg_latency_summarize(v, N, &s);
        assert_memory_equal(v, ref, N * sizeof *v);
        assert_true(s.min == (double)ref[0] && s.max == (double)ref[N - 1]);
        assert_true(s.p99 == (double)sg_percentile_sorted(ref, N, 0.99));
    }
    free(v);
    free(ref);
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
        cmocka_unit_test(summarize_sorts_like_qsort),
        cmocka_unit_test(min_queries_table),
        cmocka_unit_test(estimates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
