/* Log-linear histogram: bucket bounds, 3-significant-digit accuracy, merge, JSON round trip. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "stagegate/harness.h"

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void buckets(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 2048; v++) {
        assert_int_equal(sg_histogram_lowest_equivalent(v), v);
        assert_int_equal(sg_histogram_highest_equivalent(v), v);
    }
    /* 2048..4095 in steps of 2, 4096..8191 in steps of 4. */
    assert_int_equal(sg_histogram_lowest_equivalent(2049), 2048);
    assert_int_equal(sg_histogram_highest_equivalent(2048), 2049);
    assert_int_equal(sg_histogram_lowest_equivalent(5000), 5000);
    assert_int_equal(sg_histogram_lowest_equivalent(5003), 5000);
    assert_int_equal(sg_histogram_highest_equivalent(5003), 5003);
    /* Every bucket is narrower than a thousandth of its values. */
    for (uint64_t v = 2048; v < (1ull << 40); v = v * 3 + 7) {
        uint64_t lo = sg_histogram_lowest_equivalent(v), hi = sg_histogram_highest_equivalent(v);
        assert_true(lo <= v && v <= hi);
        assert_true((double)(hi - lo + 1) / (double)lo <= 1.0 / 1024 + 1e-12);
    }
}

static void accuracy_merge_json(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof *v);
    sg_latency_histogram *a = sg_histogram_new(), *b = sg_histogram_new(),
                         *all = sg_histogram_new();
    srand(7);
    for (int i = 0; i < N; i++) {
        v[i] = (uint64_t)(1000.0 * exp((double)rand() / RAND_MAX * 8.0)); /* 1 us .. 3 ms */
        sg_histogram_record(i % 3 ? a : b, v[i]);
        sg_histogram_record(all, v[i]);
    }
    sg_histogram_merge(a, b);
    assert_int_equal(sg_histogram_count(a), N);
    qsort(v, N, sizeof *v, cmp);
    const double qs[] = {0.5, 0.9, 0.99, 0.999, 1.0};
    for (int i = 0; i < 5; i++) {
        uint64_t exact = sg_percentile_sorted(v, N, qs[i]);
        uint64_t h = sg_histogram_value_at(a, qs[i]);
        assert_int_equal(h, sg_histogram_value_at(all, qs[i]));
        assert_true(h >= exact && (double)(h - exact) <= (double)exact / 1000.0);
    }
    json_t *j = sg_histogram_json(a);
    sg_latency_histogram *c = NULL;
    sg_err err;
    assert_int_equal(sg_histogram_from_json(j, &c, &err), SG_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(sg_histogram_value_at(c, qs[i]), sg_histogram_value_at(a, qs[i]));
    assert_int_equal(sg_histogram_count(c), N);
    json_decref(j);
    /* The compacted form (what a repetition keeps) reads exactly as the recording form: the
       same quantiles, JSON and text, and it merges into a recording histogram as before. */
    sg_latency_histogram *k = sg_histogram_new(), *m = sg_histogram_new();
    sg_histogram_merge(k, a);
    assert_int_equal(sg_histogram_compact(k), SG_OK);
    assert_int_equal(sg_histogram_compact(k), SG_OK); /* twice: a no-op */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sg_histogram_value_at(k, qs[i]), sg_histogram_value_at(a, qs[i]));
    assert_int_equal(sg_histogram_value_at(k, 0.0), sg_histogram_value_at(a, 0.0));
    json_t *ja = sg_histogram_json(a), *jk = sg_histogram_json(k);
    assert_true(json_equal(ja, jk));
    assert_true(json_array_size(json_object_get(jk, "buckets")) > 100);
    json_decref(ja);
    json_decref(jk);
    char *ta = NULL, *tk = NULL;
    size_t la = 0, lk = 0;
    FILE *fa = open_memstream(&ta, &la), *fk = open_memstream(&tk, &lk);
    sg_histogram_print(a, fa, 12);
    sg_histogram_print(k, fk, 12);
    fclose(fa);
    fclose(fk);
    assert_true(la > 0);
    assert_string_equal(ta, tk);
    free(ta);
    free(tk);
    sg_histogram_merge(m, k);
    sg_histogram_merge(m, k);
    assert_int_equal(sg_histogram_count(m), 2 * N);
    assert_int_equal(sg_histogram_value_at(m, 0.5), sg_histogram_value_at(a, 0.5));
    assert_int_equal(sg_histogram_value_at(m, 1.0), sg_histogram_value_at(a, 1.0));
    sg_histogram_free(k);
    sg_histogram_free(m);
    sg_latency_histogram *e = sg_histogram_new();
    assert_int_equal(sg_histogram_compact(e), SG_OK); /* empty */
    assert_int_equal(sg_histogram_count(e), 0);
    assert_int_equal(sg_histogram_value_at(e, 0.5), 0);
    sg_histogram_free(e);
    /* Malformed input is an error with a sentence, never a crash. */
    json_t *bad = json_pack("{s:i,s:[[i,i]]}", "sub_bucket_count", 2048, "buckets", 2049, 1);
    sg_latency_histogram *d = NULL;
    assert_int_equal(sg_histogram_from_json(bad, &d, &err), SG_EINPUT);
    assert_null(d);
    json_decref(bad);
    sg_histogram_free(a);
    sg_histogram_free(b);
    sg_histogram_free(c);
    sg_histogram_free(all);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets),
        cmocka_unit_test(accuracy_merge_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
