/*
 * compare's rules on synthetic runs of repetitions recorded into the real log-linear
 * histogram: a known 30% shift is regressed (and the reverse improved), a shift below
 * the floor or inside the repetitions' spread is not, one repetition on a side only
 * counts beyond the single-run floor, noisy repetitions are discounted, a history band
 * holds, identical runs are unchanged. The false-positive rate is checked on runs
 * recorded on a real machine instead (tests/nightly/fixtures.sh): synthetic pairs drawn
 * from one distribution cannot show the between-run variation that matters. Plus
 * hand-checked Mann-Whitney values, fingerprint refusal, metric margins, trend pages.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stagegate/json.h"
#include "stagegate/compare.h"
#include "stagegate/harness.h"

/* splitmix64 + Box-Muller: reproducible on every platform. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uniform(uint64_t *s)
{
    return ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(uint64_t *s)
{
    return sqrt(-2 * log(uniform(s))) * cos(2 * M_PI * uniform(s));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * A run of `run_reps` repetitions of n lognormal latencies each around median_ns (sigma
 * run_sigma, 0.25 like a busy service), scaled. Each repetition also gets its own factor
 * exp(rep_jitter * N(0,1)): the between-run variation real runs show (clock, placement).
 */
static double run_sigma = 0.25;
static double run_overhead_ns = 0; /* > 0: the run carries clock.overhead_ns */
static int run_reps = 5;
static double rep_jitter = 0.01;
static const char *run_family = NULL; /* non-NULL: cpu_signature AuthenticAMD, this family */
static int run_noisy_rep = -1; /* this repetition is marked noisy and made 40% slower */
static double run_rep_seconds = -1; /* >= 0: each repetition carries this duration_s */
static const char *const pct_keys[] = {"p50", "p90", "p99", "p999"};
static const double pct_q[] = {0.5, 0.9, 0.99, 0.999};

static json_t *pct_json(uint64_t *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    json_t *l = json_object();
    for (int k = 0; k < 4; k++)
        json_object_set_new(l, pct_keys[k],
                            json_integer((json_int_t)sg_percentile_sorted(v, n, pct_q[k])));
    return l;
}

static void make_run(sg_compare_run *r, uint64_t seed, int n, double median_ns, double scale,
                     const char *cpu)
{
    memset(r, 0, sizeof *r);
    int64_t total = (int64_t)n * run_reps;
    uint64_t *all = malloc((size_t)total * sizeof *all), *v = malloc((size_t)n * sizeof *v);
    sg_latency_histogram *h = sg_histogram_new();
    assert_non_null(all);
    assert_non_null(v);
    assert_non_null(h);
    json_t *doc = json_object(), *m = json_object(), *blas = json_object(), *reps = json_array();
    for (int k = 0; k < run_reps; k++) {
        sg_latency_histogram *rh = sg_histogram_new();
        double f = exp(rep_jitter * normal(&seed)) * (k == run_noisy_rep ? 1.4 : 1.0);
        for (int i = 0; i < n; i++) {
            v[i] = (uint64_t)llround(median_ns * scale * f * exp(run_sigma * normal(&seed)));
            all[(int64_t)k * n + i] = v[i];
            sg_histogram_record(h, v[i]);
            sg_histogram_record(rh, v[i]);
        }
        json_t *rep = json_object();
        json_object_set_new(rep, "index", json_integer(k));
        json_object_set_new(rep, "queries", json_integer(n));
        json_object_set_new(rep, "latency_ns", pct_json(v, n));
        json_object_set_new(rep, "histogram", sg_histogram_json(rh));
        json_object_set_new(rep, "noise", json_pack("{s:b}", "noisy", k == run_noisy_rep));
        if (run_rep_seconds >= 0)
            json_object_set_new(rep, "duration_s", json_real(run_rep_seconds + 0.001 * k));
        json_array_append_new(reps, rep);
        sg_histogram_free(rh);
    }
    json_object_set_new(doc, "scenario", json_string("single-stream"));
    json_object_set_new(doc, "latency_ns", pct_json(all, total));
    json_object_set_new(doc, "queries", json_integer(total));
    json_object_set_new(doc, "repetition_count", json_integer(run_reps));
    json_object_set_new(doc, "repetitions", reps);
    json_object_set_new(m, "cpu_model", json_string(cpu));
    if (run_family)
        json_object_set_new(m, "cpu_signature",
                            json_pack("{s:s,s:I,s:i,s:i}", "vendor", "AuthenticAMD", "family",
                                      (json_int_t)atoi(run_family), "model", 17, "stepping", 1));
    json_object_set_new(m, "cores", json_integer(8));
    json_object_set_new(m, "tsc_hz", json_real(2.899996e9));
    json_object_set_new(m, "kernel", json_string("Linux 6.1.0 x86_64"));
    json_object_set_new(blas, "config", json_string("OpenBLAS 0.3.21"));
    json_object_set_new(m, "openblas", blas);
    json_object_set_new(doc, "machine", m);
    json_object_set_new(doc, "histogram", sg_histogram_json(h));
    if (run_overhead_ns > 0) {
        json_t *ck = json_object();
        json_object_set_new(ck, "overhead_ns", json_real(run_overhead_ns));
        json_object_set_new(doc, "clock", ck);
    }
    /* Through the file loader, as `stagegate compare` reads it. */
    char path[] = "sg_nightly_XXXXXX"; /* in the test's working directory */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    char *text = sg_json_dumps(doc, false);
    fputs(text, f);
    fclose(f);
    free(text);
    sg_err err = {{0}};
    int rc = sg_compare_load(path, NULL, r, &err);
    remove(path);
    if (rc) fail_msg("load: %s", err.msg);
    json_decref(doc);
    sg_histogram_free(h);
    free(v);
    free(all);
}

static json_t *compare(const sg_compare_run *a, const sg_compare_run *b, bool force, int *rc,
                       sg_err *err)
{
    sg_compare_options o;
    sg_compare_options_init(&o);
    o.force = force;
    json_t *out = NULL;
    *rc = sg_compare_runs(a, b, &o, &out, err);
    return out;
}

static const char *verdict(json_t *cmp, int k)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(cmp, "latency"), (size_t)k), "verdict"));
}

static const char *reason(json_t *cmp, int k)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(cmp, "latency"), (size_t)k), "reason"));
}

/* 5 repetitions each, NEW 30% slower: far beyond the floors and the repetitions' spread. */
static void test_known_shift(void **state)
{
    (void)state;
    sg_compare_run a, b;
    make_run(&a, 11, 5000, 100000, 1.0, "cpu");
    make_run(&b, 12, 5000, 100000, 1.30, "cpu");
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    assert_true(json_is_true(json_object_get(cmp, "regressed")));
    for (int k = 0; k < 3; k++) {
        assert_string_equal(verdict(cmp, k), "regressed");
        assert_string_equal(reason(cmp, k), "significant (U test over 5 vs 5 repetitions)");
    }
    json_t *row = json_array_get(json_object_get(cmp, "latency"), 0);
    /* 5 vs 5 fully separated: the exact two-sided p is 2 / C(10, 5) = 2 / 252. */
    assert_true(fabs(json_real_value(json_object_get(row, "p_value")) - 2.0 / 252) < 1e-12);
    assert_string_equal(json_string_value(json_object_get(row, "test")), "exact");
    assert_int_equal(json_array_size(json_object_get(row, "new_repetitions")), 5);
    double r50 = json_real_value(json_object_get(row, "ratio"));
    assert_true(r50 > 1.25 && r50 < 1.35);
    json_decref(cmp);
    /* The same pair the other way round is an improvement, and nothing regressed. */
    cmp = compare(&b, &a, false, &rc, &err);
    for (int k = 0; k < 3; k++)
        assert_string_equal(verdict(cmp, k), "improved");
    assert_false(json_is_true(json_object_get(cmp, "regressed")));
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* A 5% shift is real in these synthetic runs (the U test finds it) but below the 12% floor. */
static void test_below_floor(void **state)
{
    (void)state;
    sg_compare_run a, b;
    rep_jitter = 0.001;
    make_run(&a, 21, 20000, 100000, 1.0, "cpu");
    make_run(&b, 22, 20000, 100000, 1.05, "cpu");
    rep_jitter = 0.01;
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    assert_string_equal(reason(cmp, 0), "within the noise floor (12%)");
    json_t *row = json_array_get(json_object_get(cmp, "latency"), 0);
    assert_true(json_real_value(json_object_get(row, "p_value")) < 0.05);
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* Runs that wander 10% from one repetition to the next: a 15% move is inside that spread. */
static void test_within_spread(void **state)
{
    (void)state;
    sg_compare_run a, b;
    rep_jitter = 0.10;
    make_run(&a, 23, 3000, 100000, 1.0, "cpu");
    make_run(&b, 24, 3000, 100000, 1.15, "cpu");
    rep_jitter = 0.01;
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    const char *why = reason(cmp, 0);
    assert_true(strstr(why, "spread between repetitions") || strstr(why, "not significant"));
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* One repetition on a side: noise cannot be told from change, so only a move beyond the
 * 20% single-run floor counts, and the reason says so. */
static void test_single_repetition(void **state)
{
    (void)state;
    sg_compare_run a, b;
    run_reps = 1;
    make_run(&a, 25, 5000, 100000, 1.0, "cpu");
    make_run(&b, 26, 5000, 100000, 1.10, "cpu");
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    assert_non_null(strstr(reason(cmp, 0), "one repetition on a side: run-to-run noise cannot be "
                                           "separated from change; within the 20% floor"));
    json_t *row = json_array_get(json_object_get(cmp, "latency"), 0);
    assert_true(json_is_true(json_object_get(row, "single_run_floor_applied")));
    assert_true(fabs(json_real_value(json_object_get(row, "floor")) - 0.20) < 1e-12);
    json_decref(cmp);
    sg_compare_run_clear(&b);
    make_run(&b, 27, 5000, 100000, 1.40, "cpu");
    cmp = compare(&a, &b, false, &rc, &err);
    assert_string_equal(verdict(cmp, 0), "regressed");
    assert_non_null(strstr(reason(cmp, 0), "beyond the 20% floor for such runs"));
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
    /* 3 against 3 cannot reach p < 0.05 (smallest p = 0.1): the same fixed floor applies. */
    run_reps = 3;
    make_run(&a, 28, 5000, 100000, 1.0, "cpu");
    make_run(&b, 29, 5000, 100000, 1.10, "cpu");
    run_reps = 5;
    cmp = compare(&a, &b, false, &rc, &err);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    assert_non_null(strstr(reason(cmp, 0), "too few repetitions for the U test (3 vs 3"));
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* A noisy repetition (40% slow, marked in the JSON) is left out while enough clean ones remain. */
static void test_noisy_discounted(void **state)
{
    (void)state;
    sg_compare_run a, b;
    run_reps = 9;
    make_run(&a, 35, 3000, 100000, 1.0, "cpu");
    run_noisy_rep = 4;
    make_run(&b, 36, 3000, 100000, 1.0, "cpu");
    run_noisy_rep = -1;
    run_reps = 5;
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    json_t *row = json_array_get(json_object_get(cmp, "latency"), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(row, "noisy_excluded"), "new")), 1);
    assert_int_equal(json_array_size(json_object_get(row, "new_repetitions")), 8);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* A percentile is judged only with enough queries per repetition to claim it (LoadGen's
 * early-stopping bound): 700 carry p50..p99 (662 needed) but not p99.9 (6636). */
static void test_tail_needs_queries(void **state)
{
    (void)state;
    sg_compare_run a, b;
    make_run(&a, 31, 700, 100000, 1.0, "cpu");
    make_run(&b, 32, 700, 100000, 1.60, "cpu");
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    for (int k = 0; k < 3; k++)
        assert_string_equal(verdict(cmp, k), "regressed");
    json_t *p999 = json_array_get(json_object_get(cmp, "latency"), 3);
    assert_true(json_real_value(json_object_get(p999, "ratio")) > 1.01); /* it did move */
    assert_string_equal(verdict(cmp, 3), "unchanged");
    assert_string_equal(reason(cmp, 3), "too few queries for p99.9 (needs 6636 per repetition)");
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
    /* With enough queries the same kind of shift regresses p99.9 too. */
    make_run(&a, 33, 7000, 100000, 1.0, "cpu");
    make_run(&b, 34, 7000, 100000, 3.0, "cpu");
    cmp = compare(&a, &b, false, &rc, &err);
    for (int k = 0; k < 4; k++)
        assert_string_equal(verdict(cmp, k), "regressed");
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* A recorded history whose figures wander over [90, 140] us: a move to 130 us is inside it. */
static void test_history_band(void **state)
{
    (void)state;
    sg_compare_run a, b;
    make_run(&a, 37, 3000, 100000, 1.0, "cpu");
    make_run(&b, 38, 3000, 100000, 1.30, "cpu");
    const char *fp = json_string_value(json_object_get(b.fingerprint, "id"));
    assert_non_null(fp);
    json_t *hist = json_pack("{s:[{s:s,s:b,s:{s:{s:i}}}, {s:s,s:b,s:{s:{s:i}}}, "
                             "{s:s,s:b,s:{s:{s:i}}}]}",
                             "runs", "fingerprint", fp, "signer_trusted", 1, "figures",
                             "latency_ns", "p50", 90000, "fingerprint", fp, "signer_trusted", 1,
                             "figures", "latency_ns", "p50", 140000, "fingerprint", fp,
                             "signer_trusted", 1, "figures", "latency_ns", "p50", 120000);
    sg_compare_options o;
    sg_compare_options_init(&o);
    o.history = hist;
    json_t *cmp = NULL;
    sg_err err;
    assert_int_equal(sg_compare_runs(&a, &b, &o, &cmp, &err), SG_OK);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    assert_non_null(strstr(reason(cmp, 0), "inside the history band [90000, 140000] ns of 3"));
    /* p90 has no history: judged as usual. */
    assert_string_equal(verdict(cmp, 1), "regressed");
    json_decref(cmp);
    /* A run of another machine, or a figure that is no latency, would widen the band: refused. */
    json_t *run1 = json_array_get(json_object_get(hist, "runs"), 1);
    json_object_set_new(run1, "fingerprint", json_string("0123456789abcdef"));
    cmp = NULL;
    assert_int_equal(sg_compare_runs(&a, &b, &o, &cmp, &err), SG_EINPUT);
    assert_null(cmp);
    assert_non_null(strstr(err.msg, "--history: runs[1] ran on fingerprint 0123456789abcdef, not NEW's"));
    json_object_set_new(run1, "fingerprint", json_string(fp));
    json_object_set_new(json_object_get(json_object_get(run1, "figures"), "latency_ns"), "p50",
                        json_integer(-1));
    assert_int_equal(sg_compare_runs(&a, &b, &o, &cmp, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "--history: runs[1].figures.latency_ns.p50 is not a latency"));
    json_object_set_new(json_object_get(json_object_get(run1, "figures"), "latency_ns"), "p50",
                        json_integer(140000));
    /* Which runs count depends on signer_trusted: anything but true or false is refused (null,
       0 and "false" had counted a run of another key as trusted, and widened the band). */
    json_t *bad_trust[] = {json_null(), json_integer(0), json_string("false")};
    for (int t = 0; t < 4; t++) { /* the three values, then the field left out */
        if (t < 3)
            json_object_set_new(run1, "signer_trusted", bad_trust[t]);
        else
            json_object_del(run1, "signer_trusted");
        assert_int_equal(sg_compare_runs(&a, &b, &o, &cmp, &err), SG_EINPUT);
        assert_non_null(
            strstr(err.msg, "--history: runs[1].signer_trusted is missing or not true/false"));
    }
    json_decref(hist);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* A 100 -> 115 ns move is a real shift, but smaller than the 20 ns timing bracket the clock
 * needs: by default it is below what can be resolved. */
static void test_below_clock_resolution(void **state)
{
    (void)state;
    sg_compare_run a, b;
    run_overhead_ns = 20;
    run_sigma = 0.02;
    make_run(&a, 31, 5000, 100, 1.0, "cpu");
    make_run(&b, 32, 5000, 115, 1.0, "cpu");
    run_sigma = 0.25;
    run_overhead_ns = 0;
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    assert_string_equal(verdict(cmp, 0), "unchanged");
    assert_non_null(strstr(reason(cmp, 0), "resolution"));
    assert_false(json_is_true(json_object_get(cmp, "regressed")));
    json_decref(cmp);
    /* With the absolute floor off, the same pair is a significant regression. */
    sg_compare_options o;
    sg_compare_options_init(&o);
    o.abs_noise_floor_ns = 0;
    cmp = NULL;
    assert_int_equal(sg_compare_runs(&a, &b, &o, &cmp, &err), SG_OK);
    assert_string_equal(verdict(cmp, 0), "regressed");
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* Repetitions timed for less than SG_COMPARE_MIN_REPETITION_S are not judged, however far
 * they moved: the same 30% shift that test_known_shift calls regressed. */
static void test_short_repetitions_not_judged(void **state)
{
    (void)state;
    sg_compare_run a, b;
    run_rep_seconds = 0.0002;
    make_run(&a, 11, 5000, 100000, 1.0, "cpu");
    run_rep_seconds = -1; /* NEW says nothing of its length: OLD's windows decide */
    make_run(&b, 12, 5000, 100000, 1.30, "cpu");
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    for (int k = 0; k < 4; k++) {
        assert_string_equal(verdict(cmp, k), "unchanged");
        assert_string_equal(reason(cmp, k), "not judged: repetitions timed for 0.2 ms, under 1 s");
    }
    assert_false(json_is_true(json_object_get(cmp, "regressed")));
    json_t *w = json_object_get(cmp, "shortest_repetition_s");
    assert_true(fabs(json_real_value(json_object_get(w, "old")) - 0.0002) < 1e-12);
    assert_true(json_is_null(json_object_get(w, "new")));
    assert_true(json_real_value(json_object_get(cmp, "min_repetition_s")) ==
                SG_COMPARE_MIN_REPETITION_S);
    json_decref(cmp);
    /* --min-repetition-s 0 judges them: regressed. */
    sg_compare_options o;
    sg_compare_options_init(&o);
    o.min_repetition_s = 0;
    cmp = NULL;
    assert_int_equal(sg_compare_runs(&a, &b, &o, &cmp, &err), SG_OK);
    for (int k = 0; k < 3; k++)
        assert_string_equal(verdict(cmp, k), "regressed");
    json_decref(cmp);
    sg_compare_run_clear(&a);
    /* Repetitions of exactly the minimum are judged. */
    run_rep_seconds = SG_COMPARE_MIN_REPETITION_S;
    make_run(&a, 11, 5000, 100000, 1.0, "cpu");
    run_rep_seconds = -1;
    cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    for (int k = 0; k < 3; k++)
        assert_string_equal(verdict(cmp, k), "regressed");
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

static void test_identical_unchanged(void **state)
{
    (void)state;
    sg_compare_run a, b;
    make_run(&a, 5, 3000, 50000, 1.0, "cpu");
    make_run(&b, 5, 3000, 50000, 1.0, "cpu");
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    for (int k = 0; k < 4; k++)
        assert_string_equal(verdict(cmp, k), "unchanged");
    json_t *mw = json_object_get(cmp, "mann_whitney");
    assert_true(fabs(json_real_value(json_object_get(mw, "p_value")) - 1.0) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(mw, "u")) - 15000.0 * 15000 / 2) < 1e-6);
    assert_false(json_is_true(json_object_get(cmp, "regressed")));
    json_decref(cmp);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* The exact U distribution for small samples, hand-checked. */
static void test_mw_values_exact(void **state)
{
    (void)state;
    sg_mw_result r;
    sg_err err;
    bool exact;
    double x[] = {1, 2, 3, 4}, y[] = {5, 6, 7, 8};
    assert_int_equal(sg_mannwhitney_values(x, 4, y, 4, &r, &exact, &err), SG_OK);
    assert_true(exact && r.u == 0);
    assert_true(fabs(r.p_value - 2.0 / 70) < 1e-15); /* both extreme orderings of C(8,4) */
    /* x = 1,2,4 and y = 3,5,6: U1 = 1; P(U <= 1) = 2/20, two-sided 0.2. */
    double x2[] = {1, 2, 4}, y2[] = {3, 5, 6};
    assert_int_equal(sg_mannwhitney_values(x2, 3, y2, 3, &r, &exact, &err), SG_OK);
    assert_true(exact && r.u == 1 && fabs(r.p_value - 0.2) < 1e-15);
    assert_true(fabs(sg_mannwhitney_min_p(3, 3) - 0.1) < 1e-12);
    assert_true(fabs(sg_mannwhitney_min_p(5, 5) - 2.0 / 252) < 1e-12);
    /* A tie: the normal approximation, as scipy's "auto" does. */
    double t[] = {1, 2, 3}, u[] = {3, 4, 5};
    assert_int_equal(sg_mannwhitney_values(t, 3, u, 3, &r, &exact, &err), SG_OK);
    assert_false(exact);
    double nan_in[] = {NAN};
    assert_int_equal(sg_mannwhitney_values(nan_in, 1, y, 4, &r, &exact, &err), SG_EINPUT);
}

static void test_fingerprint_refused(void **state)
{
    (void)state;
    sg_compare_run a, b;
    make_run(&a, 1, 500, 1000, 1.0, "Intel Xeon Gold 6338");
    make_run(&b, 2, 500, 1000, 1.0, "AMD EPYC 7763");
    int rc;
    sg_err err = {{0}};
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_EINPUT);
    assert_null(cmp);
    assert_non_null(strstr(err.msg, "cpu_model"));
    assert_non_null(strstr(err.msg, "--force"));
    cmp = compare(&a, &b, true, &rc, &err);
    assert_int_equal(rc, SG_OK);
    assert_true(json_is_true(json_object_get(cmp, "forced")));
    assert_int_equal(json_array_size(json_object_get(cmp, "differences")), 1);
    json_decref(cmp);
    /* TSC jitter within 10 MHz is the same machine. */
    assert_int_equal(json_integer_value(json_object_get(a.fingerprint, "tsc_mhz")), 2900);
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

/* Two CPU generations behind the same model name are two machines. */
static void test_fingerprint_cpu_signature(void **state)
{
    (void)state;
    sg_compare_run a, b;
    run_family = "25";
    make_run(&a, 1, 500, 1000, 1.0, "AMD EPYC");
    run_family = "23";
    make_run(&b, 2, 500, 1000, 1.0, "AMD EPYC");
    run_family = NULL;
    assert_string_equal(json_string_value(json_object_get(a.fingerprint, "cpu_signature")),
                        "AuthenticAMD family 25 model 17");
    int rc;
    sg_err err = {{0}};
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_EINPUT);
    assert_null(cmp);
    assert_non_null(strstr(err.msg, "cpu_signature"));
    assert_null(strstr(err.msg, "cpu_model"));
    sg_compare_run_clear(&a);
    sg_compare_run_clear(&b);
}

static void test_mw_hand_checked(void **state)
{
    (void)state;
    sg_mw_result r;
    sg_err err;
    /* x = 1,2,3 and y = 4,5,6: U1 = 0, max U = 9, z = (9 - 4.5 - 0.5) / sqrt(9 * 7 / 12). */
    sg_bin x[] = {{1, 1}, {2, 1}, {3, 1}}, y[] = {{4, 1}, {5, 1}, {6, 1}};
    assert_int_equal(sg_mannwhitney_binned(x, 3, y, 3, &r, &err), SG_OK);
    assert_true(r.u == 0);
    double z = 4.0 / sqrt(63.0 / 12.0);
    assert_true(fabs(r.z - z) < 1e-12);
    assert_true(fabs(r.p_value - erfc(z / sqrt(2.0))) < 1e-12);
    /* Ties: x = {1,1,2}, y = {1,2,2}. Ranks: 1s -> 2, 2s -> 5; R1 = 2 + 2 + 5 = 9, U1 = 3. */
    sg_bin tx[] = {{1, 2}, {2, 1}}, ty[] = {{1, 1}, {2, 2}};
    assert_int_equal(sg_mannwhitney_binned(tx, 2, ty, 2, &r, &err), SG_OK);
    assert_true(r.u == 3);
    /* Tie term: 2 groups of 3 -> 2 * 24 = 48; var = 9/12 * (7 - 48/30). */
    double s = sqrt(9.0 / 12 * (7 - 48.0 / 30));
    assert_true(fabs(r.z - (6 - 4.5 - 0.5) / s) < 1e-12);
    /* Bad input is refused, not crashed on. */
    sg_bin bad[] = {{2, 1}, {1, 1}};
    assert_int_equal(sg_mannwhitney_binned(bad, 2, y, 3, &r, &err), SG_EINPUT);
    assert_int_equal(sg_mannwhitney_binned(x, 0, y, 3, &r, &err), SG_EINPUT);
}

static void test_metric_margins(void **state)
{
    (void)state;
    sg_compare_run a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    snprintf(a.path, sizeof a.path, "old");
    snprintf(b.path, sizeof b.path, "new");
    json_t *pol = json_loads(
        "{\"metrics\":{\"f1\":{\"max_relative_regression\":0.05,\"greater_is_better\":true},"
        "\"log_loss\":{\"max_absolute_regression\":0.01,\"greater_is_better\":false},"
        "\"accuracy\":{\"threshold\":0.9,\"greater_is_better\":true}}}",
        0, NULL);
    json_t *om =
        json_loads("{\"f1\":0.874,\"log_loss\":0.30,\"accuracy\":0.91,\"recall\":0.8}", 0, NULL);
    json_t *nm =
        json_loads("{\"f1\":0.8303,\"log_loss\":0.32,\"accuracy\":0.89,\"recall\":0.7}", 0, NULL);
    a.metrics = om, b.metrics = nm, b.policy = pol;
    int rc;
    sg_err err;
    json_t *cmp = compare(&a, &b, false, &rc, &err);
    assert_int_equal(rc, SG_OK);
    json_t *rows = json_object_get(cmp, "metrics");
    assert_int_equal(json_array_size(rows), 4);
    /* f1 exactly on 0.95 x 0.874 = 0.8303: within the margin (worse, not regressed). */
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "verdict")),
                        "worse");
    /* log_loss 0.30 -> 0.32 is past the absolute 0.01 margin of a lower-is-better metric. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "verdict")),
                        "regressed");
    /* accuracy now misses the 0.9 threshold the old run met. */
    assert_true(json_is_true(json_object_get(json_array_get(rows, 2), "crosses_threshold")));
    /* recall is not gated: worse, never "regressed". */
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 3), "verdict")),
                        "worse");
    assert_int_equal(json_integer_value(json_object_get(cmp, "n_regressed")), 2);
    json_decref(cmp);
    json_decref(pol);
    json_decref(om);
    json_decref(nm);
}

static size_t count(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

/* Two machines, two versions: a colour per version, a dash per fingerprint, a line per
 * (fingerprint, version), a legend, and
 * one version mark per chart, where v2 first ran. */
static void test_trend_two_machines(void **state)
{
    (void)state;
    json_t *doc = json_object(), *runs = json_array();
    json_object_set_new(doc, "model", json_string("m"));
    json_object_set_new(doc, "runs", runs);
    static const char *const fps[] = {"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"};
    for (int i = 0; i < 8; i++) {
        char t[32];
        snprintf(t, sizeof t, "2025-01-%02dT02:30:00Z", i + 1);
        json_t *r =
            json_pack("{s:I, s:s, s:s, s:s, s:{s:s}, s:{s:{s:f}, s:{s:i, s:i}, s:[s]}}", "version",
                      (json_int_t)(i < 4 ? 1 : 2), "fingerprint", fps[i % 2], "time", t, "result",
                      i == 5 ? "FAILED" : "PASSED", "machine", "cpu_model",
                      i % 2 ? "B cpu" : "A cpu", "figures", "metrics", "accuracy", 0.9,
                      "latency_ns", "p50", 1000 + i, "p99", 5000 + i, "gated", "accuracy");
        assert_non_null(r);
        json_array_append_new(runs, r);
    }
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    assert_int_equal(sg_trend_render(f, doc), SG_OK);
    fclose(f);
    assert_int_equal(count(html, "class=\"chart\" data-figure="), 3); /* p50, p99, accuracy */
    assert_int_equal(count(html, "<polyline"), 3 * 4);
    /* A colour per version (v1 first seen), a dash pattern per fingerprint. */
    assert_int_equal(count(html, "stroke=\"#1f77b4\" stroke-dasharray=\"\" "
                                 "data-fingerprint=\"aaaaaaaaaaaaaaaa\" data-version=\"1\""),
                     3);
    assert_int_equal(count(html, "stroke=\"#d62728\" stroke-dasharray=\"6 3\" "
                                 "data-fingerprint=\"bbbbbbbbbbbbbbbb\" data-version=\"2\""),
                     3);
    assert_int_equal(count(html, "<polyline class=\"series\" stroke=\"#1f77b4\""), 3 * 2);
    assert_int_equal(count(html, "<polyline class=\"series\" stroke=\"#d62728\""), 3 * 2);
    assert_non_null(strstr(html, "<div class=\"legend\">"));
    assert_int_equal(count(html, "class=\"version\""), 3);
    assert_int_equal(count(html, "(gate FAILED)"), 3);
    assert_int_equal(count(html, "<circle"), 3 * 8);
    assert_non_null(strstr(html, "B cpu"));
    free(html);
    json_decref(doc);
}

/* One version, 6 runs of one machine with these p50s; signed by "other" (not the model's
 * signer) where foreign[i], else by the model's signer "signer"; NULL: no signer fields. */
static json_t *six_runs(const int p50[6], const bool *foreign)
{
    json_t *doc = json_object(), *runs = json_array();
    json_object_set_new(doc, "model", json_string("m"));
    json_object_set_new(doc, "runs", runs);
    for (int i = 0; i < 6; i++) {
        char t[32];
        snprintf(t, sizeof t, "2025-02-%02dT02:30:00Z", i + 1);
        json_t *r =
            json_pack("{s:i, s:s, s:s, s:s, s:{s:s}, s:{s:{s:f}, s:{s:i, s:i}, s:[s]}}", "version",
                      1, "fingerprint", "aaaaaaaaaaaaaaaa", "time", t, "result", "PASSED",
                      "machine", "cpu_model", "A cpu", "figures", "metrics", "accuracy", 0.9,
                      "latency_ns", "p50", p50[i], "p99", 5000 + i, "gated", "accuracy");
        assert_non_null(r);
        if (foreign) {
            json_object_set_new(r, "signer_trusted", json_boolean(!foreign[i]));
            json_object_set_new(r, "signer_key_id", json_string(foreign[i] ? "other" : "signer"));
        }
        json_array_append_new(runs, r);
    }
    return doc;
}

/* The trend page of doc (heap). */
/* noinline: inlined, GCC 12 takes the buffer open_memstream hands back at fclose for a
   pointer to the local that held its address (-Wdangling-pointer). */
__attribute__((noinline)) static char *trend_html(const json_t *doc)
{
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    assert_non_null(f);
    assert_int_equal(sg_trend_render(f, doc), SG_OK);
    fclose(f);
    return html;
}

/* One version, 6 runs on one machine: each latency chart shades the noise band from the 4th
 * run on (min..max of the runs before it); metric charts have none. */
static void test_trend_band(void **state)
{
    (void)state;
    static const int p50[] = {1000, 1100, 950, 1050, 1500, 1020};
    json_t *doc = six_runs(p50, NULL);
    char *html = trend_html(doc);
    assert_int_equal(count(html, "<polygon class=\"band\""), 2); /* p50 and p99 */
    /* p50's band has 3 points on each edge (runs 4, 5, 6): 6 coordinate pairs. */
    const char *b = strstr(html, "<polygon class=\"band\"");
    const char *pts = strstr(b, "points=\"") + 8;
    int pairs = 0;
    for (const char *c = pts; *c != '"'; c++)
        pairs += *c == ',';
    assert_int_equal(pairs, 6);
    free(html);
    json_decref(doc);
}

/* A run signed by a key that is not the model's signer (signer_trusted false) is ringed, and it
 * is not in the noise band of the model's signer's runs after it, as nightly.sh hands compare
 * only runs of the same key, or of the model's signers for a run of theirs: run 4's p50 of
 * 9,000 ns would have lifted the band of runs 5 and 6 to it. */
static void test_trend_band_foreign(void **state)
{
    (void)state;
    static const int p50[] = {1000, 1100, 950, 9000, 1050, 1020};
    static const bool foreign[] = {false, false, false, true, false, false};
    json_t *doc = six_runs(p50, foreign);
    char *html = trend_html(doc);
    assert_int_equal(count(html, "<circle class=\"foreign\" data-run="), 3); /* one per chart */
    assert_non_null(strstr(html, "<b>1 run signed by keys that are not the model's signers</b>"));
    /* p50's band (the first): runs 5 and 6 take runs 1-3 (and 5), 950..1100, so its upper
       edge is one height; run 4 has no band (no earlier run of its key), so the band is 2
       points on each edge. */
    const char *b = strstr(html, "<polygon class=\"band\"");
    assert_non_null(b);
    const char *pts = strstr(b, "points=\"") + 8;
    int pairs = 0;
    for (const char *q = pts; *q != '"'; q++)
        pairs += *q == ',';
    assert_int_equal(pairs, 4);
    double x[2], y[2];
    assert_int_equal(sscanf(pts, "%lf,%lf %lf,%lf", &x[0], &y[0], &x[1], &y[1]), 4);
    assert_true(y[0] == y[1]);
    free(html);
    json_decref(doc);
}

/* The run ids that carry a regressed mark in one chart, in document order, as "3,5,". */
static void marks_in_chart(const char *html, const char *figure, char *out, size_t len)
{
    char key[96];
    snprintf(key, sizeof key, "data-figure=\"%s\"", figure);
    const char *c = strstr(html, key), *end = c ? strstr(c, "</svg>") : NULL;
    out[0] = '\0';
    assert_non_null(end);
    for (const char *p = c; (p = strstr(p, "<path class=\"regressed\" data-run=\"")) && p < end;
         p++) {
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%d,",
                 atoi(p + strlen("<path class=\"regressed\" data-run=\"")));
    }
}

/* Marks come from the stored nightly verdict, not from the page: run 5 lies far outside the
 * noise band but its compare said unchanged (and run 6 has no verdict stored), so neither is
 * marked; run 3 sits inside the band and is marked because its compare said regressed, on
 * every chart. The band itself is still drawn. */
static void test_trend_marks_from_verdict(void **state)
{
    (void)state;
    json_t *doc = json_object(), *runs = json_array();
    json_object_set_new(doc, "model", json_string("m"));
    json_object_set_new(doc, "runs", runs);
    static const int p50[] = {1000, 1100, 950, 1050, 1500, 1700};
    static const char *const verdict[] = {"first",    "unchanged", "regressed",
                                          "improved", "unchanged", NULL};
    for (int i = 0; i < 6; i++) {
        char t[32];
        snprintf(t, sizeof t, "2025-02-%02dT02:30:00Z", i + 1);
        json_t *r = json_pack(
            "{s:i, s:i, s:s, s:s, s:s, s:{s:s}, s:{s:{s:f}, s:{s:i, s:i}, s:[s]}}", "id", i + 1,
            "version", 1, "fingerprint", "aaaaaaaaaaaaaaaa", "time", t, "result", "PASSED",
            "machine", "cpu_model", "A cpu", "figures", "metrics", "accuracy", 0.9 - 0.01 * i,
            "latency_ns", "p50", p50[i], "p99", 5000 + i, "gated", "accuracy");
        json_object_set_new(r, "verdict", verdict[i] ? json_string(verdict[i]) : json_null());
        json_array_append_new(runs, r);
    }
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    assert_int_equal(sg_trend_render(f, doc), SG_OK);
    fclose(f);
    char marks[64];
    static const char *const figs[] = {"latency.p50", "latency.p99", "metric.accuracy"};
    for (int k = 0; k < 3; k++) {
        marks_in_chart(html, figs[k], marks, sizeof marks);
        assert_string_equal(marks, "3,");
    }
    assert_int_equal(count(html, "<path class=\"regressed\" data-run="), 3);
    assert_int_equal(count(html, "<polygon class=\"band\""), 2);
    assert_int_equal(count(html, "data-verdict=\"regressed\""), 3);
    assert_int_equal(count(html, "data-verdict=\"\""), 3); /* run 6, once per chart */
    assert_int_equal(count(html, "nightly verdict: none stored"), 3);
    assert_non_null(strstr(html, "1 of 6 runs flagged"));
    assert_non_null(strstr(html, "1 run has no stored verdict"));
    assert_non_null(strstr(html, "regressed (nightly verdict)"));
    /* The page no longer judges runs against the band itself. */
    assert_null(strstr(html, "outside the noise band"));
    free(html);
    json_decref(doc);
}

/* One word per comparison document, and refusals of documents that are not one. */
static void test_compare_verdict_word(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *want; /* want NULL: SG_EINPUT */
    } cases[] = {
        {"{\"regressed\": true, \"latency\": [{\"verdict\": \"improved\"}], \"metrics\": "
         "[{\"verdict\": \"regressed\"}]}",
         "regressed"},
        {"{\"regressed\": false, \"latency\": [{\"verdict\": \"improved\"}, {\"verdict\": "
         "\"unchanged\"}], \"metrics\": [{\"verdict\": \"unchanged\"}]}",
         "improved"},
        {"{\"regressed\": false, \"latency\": [], \"metrics\": [{\"verdict\": \"improved\"}]}",
         "improved"},
        {"{\"regressed\": false, \"latency\": [{\"verdict\": \"improved\"}], \"metrics\": "
         "[{\"verdict\": \"worse\"}]}",
         "unchanged"},
        {"{\"regressed\": false, \"latency\": [{\"verdict\": \"unchanged\"}], \"metrics\": []}",
         "unchanged"},
        {"{\"regressed\": false, \"latency\": [], \"metrics\": []}", "unchanged"},
        {"{\"latency\": [], \"metrics\": []}", NULL},
        {"{\"regressed\": 1, \"latency\": [], \"metrics\": []}", NULL},
        {"{\"regressed\": false, \"metrics\": []}", NULL},
        {"{\"regressed\": false, \"latency\": [{}], \"metrics\": []}", NULL},
        {"[true]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *d = json_loads(cases[i].doc, 0, NULL);
        assert_non_null(d);
        const char *v = "x";
        sg_err err = {{0}};
        sg_status rc = sg_compare_verdict(d, "c.json", &v, &err);
        if (cases[i].want) {
            assert_int_equal(rc, SG_OK);
            assert_string_equal(v, cases[i].want);
        } else {
            assert_int_equal(rc, SG_EINPUT);
            assert_null(v);
            assert_non_null(strstr(err.msg, "c.json"));
        }
        json_decref(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_shift),
        cmocka_unit_test(test_identical_unchanged),
        cmocka_unit_test(test_below_floor),
        cmocka_unit_test(test_within_spread),
        cmocka_unit_test(test_single_repetition),
        cmocka_unit_test(test_noisy_discounted),
        cmocka_unit_test(test_history_band),
        cmocka_unit_test(test_mw_values_exact),
        cmocka_unit_test(test_fingerprint_refused),
        cmocka_unit_test(test_fingerprint_cpu_signature),
        cmocka_unit_test(test_mw_hand_checked),
        cmocka_unit_test(test_metric_margins),
        cmocka_unit_test(test_trend_two_machines),
        cmocka_unit_test(test_trend_band),
        cmocka_unit_test(test_trend_band_foreign),
        cmocka_unit_test(test_trend_marks_from_verdict),
        cmocka_unit_test(test_compare_verdict_word),
        cmocka_unit_test(test_tail_needs_queries),
        cmocka_unit_test(test_below_clock_resolution),
        cmocka_unit_test(test_short_repetitions_not_judged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
