/*
 * Test and benchmark driver for the metric kernels.
 *
 *   sg_metrics_probe CASE.txt [--chunk N]
 *       Reads a case file and prints the sg_metrics_to_json object. The file is text:
 *       a header "binary|multiclass|regression K N WEIGHTED", then N rows of
 *       "y_true y_pred [w] p_0 .. p_{K-1}" (classifiers) or "y_true prediction [w]".
 *       Rows are fed in chunks of N (default 1000) to exercise the streaming path.
 *   sg_metrics_probe --bench ROWS [--repeat R] [--weights] [--write-raw FILE]
 *       [--continuous] Times all binary metrics (accumulate + finish) on ROWS synthetic rows
 *       (scores rounded to 1e-4, or all distinct with --continuous) and prints
 *       {"rows", "seconds_min", "seconds_median", "metrics"}. --write-raw stores the data
 *       (int32 y_true[ROWS], float32 p1[ROWS], float64 w[ROWS] if --weights) so another
 *       tool can time the same rows.
 *   sg_metrics_probe --bench ROWS --read-raw FILE [--repeat R] [--unit-weights]
 *       Times the same on rows read from FILE in --write-raw's unweighted layout (int32
 *       y_true[ROWS], float32 p1[ROWS]), e.g. a model's real scores; y_pred = p1 >= 0.5.
 *       --unit-weights (also with synthetic rows) passes weights that are all 1, as eval
 *       does for a validation set without /sample_weight. --log-terms (with weights)
 *       computes the rows' log-loss terms before the timing and passes them in, as eval's
 *       workers compute them next to the predictions: the timing is then eval's metrics stage.
 * Exit codes: 0 ok, 2 bad input.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/json.h"
#include "stagegate/metrics.h"

typedef struct {
    sg_task task;
    int k;
    int64_t n;
    bool weighted;
    int32_t *y_true, *y_pred;
    float *proba, *pred;
    double *y_reg, *w;
    double *log_terms; /* --log-terms: computed before the timing, as eval's workers do */
} probe_case;

static void case_free(probe_case *c)
{
    free(c->y_true);
    free(c->y_pred);
    free(c->proba);
    free(c->pred);
    free(c->y_reg);
    free(c->w);
    free(c->log_terms);
}

static int read_case(const char *path, probe_case *c, sg_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return sg_errf(err, SG_EIO, "%s: cannot open", path);
    char task[32];
    long long n;
    int weighted;
    int rc = SG_OK;
    if (fscanf(f, "%31s %d %lld %d", task, &c->k, &n, &weighted) != 4 || n < 0 || c->k < 0 ||
        c->k > 4096) {
        rc = sg_errf(err, SG_EINPUT, "%s: bad header", path);
        goto out;
    }
    c->n = n;
    c->weighted = weighted != 0;
    c->task = !strcmp(task, "binary")       ? SG_TASK_BINARY
              : !strcmp(task, "multiclass") ? SG_TASK_MULTICLASS
                                            : SG_TASK_REGRESSION;
    size_t rows = (size_t)n ? (size_t)n : 1, k = (size_t)c->k ? (size_t)c->k : 1;
    c->w = c->weighted ? malloc(rows * sizeof *c->w) : NULL;
    if (c->task == SG_TASK_REGRESSION) {
        c->y_reg = malloc(rows * sizeof *c->y_reg);
        c->pred = malloc(rows * sizeof *c->pred);
    } else {
        c->y_true = malloc(rows * sizeof *c->y_true);
        c->y_pred = malloc(rows * sizeof *c->y_pred);
        c->proba = malloc(rows * k * sizeof *c->proba);
    }
    for (int64_t i = 0; i < c->n; i++) {
        bool ok;
        if (c->task == SG_TASK_REGRESSION) {
            ok = fscanf(f, "%lf %f", &c->y_reg[i], &c->pred[i]) == 2;
        } else {
            ok = fscanf(f, "%d %d", &c->y_true[i], &c->y_pred[i]) == 2;
        }
        if (ok && c->weighted) ok = fscanf(f, "%lf", &c->w[i]) == 1;
        for (int j = 0; ok && c->task != SG_TASK_REGRESSION && j < c->k; j++)
            ok = fscanf(f, "%f", &c->proba[(size_t)i * k + (size_t)j]) == 1;
        if (!ok) {
            rc = sg_errf(err, SG_EINPUT, "%s: row %lld is malformed", path, (long long)i);
            goto out;
        }
    }
out:
    fclose(f);
    return rc;
}

/* Feeds rows in chunks, finishes and prints the JSON metrics. */
static int run_case(const probe_case *c, int64_t chunk, sg_metrics *m, sg_err *err)
{
    sg_metrics_acc *a;
    int rc = sg_metrics_acc_new(c->task, c->k, c->n, &a, err);
    if (rc) return rc;
    size_t k = (size_t)c->k;
    for (int64_t s = 0; !rc && s < c->n; s += chunk) {
        int64_t len = c->n - s < chunk ? c->n - s : chunk;
        const double *w = c->w ? c->w + s : NULL;
        if (c->task == SG_TASK_REGRESSION)
            rc = sg_metrics_add_regression(a, len, c->pred + s, c->y_reg + s, w, err);
        else
            rc = sg_metrics_add_classification_terms(a, len, c->proba + (size_t)s * k,
                                                     c->y_true + s, c->y_pred + s, w,
                                                     c->log_terms ? c->log_terms + s : NULL, err);
    }
    if (!rc) rc = sg_metrics_finish(a, m, err);
    sg_metrics_acc_free(a);
    return rc;
}

static int print_metrics(const sg_metrics *m, json_t *doc)
{
    int rc = sg_metrics_to_json(m, doc) || sg_json_print(doc) ? SG_EINTERNAL : SG_OK;
    json_decref(doc);
    return rc;
}

/* Deterministic synthetic scores: a noisy classifier with 1e-4 rounding so ties occur, or
   (continuous) unrounded, so nearly every score is distinct, as a real model's are. */
static bool continuous;
static void synth(probe_case *c, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < c->n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int y = (int)(s >> 63);
        double u = (double)((s >> 11) & 0xFFFFF) / 1048576.0;
        double p = y ? 0.3 + 0.7 * u : 0.7 * u * u;
        if (continuous) p = y ? 0.3 + 0.7 * (double)(s >> 11) / 9007199254740992.0 : p;
        float p1 = continuous ? (float)p : (float)(floor(p * 1e4) / 1e4);
        c->y_true[i] = y;
        c->proba[2 * i + 1] = p1;
        c->proba[2 * i] = 1.0f - p1;
        c->y_pred[i] = p1 >= 0.5f;
        if (c->w) c->w[i] = 0.5 + (double)((s >> 20) & 0xFF) / 64.0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rows from a file in --write-raw's unweighted layout. */
static int read_raw(probe_case *c, const char *path, sg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sg_errf(err, SG_EIO, "%s: cannot open", path);
    size_t n = (size_t)c->n;
    /* p1 lands in the upper half of proba, then spreads out to the odd slots. */
    bool ok = fread(c->y_true, sizeof *c->y_true, n, f) == n &&
              fread(c->proba + n, sizeof *c->proba, n, f) == n;
    for (size_t i = 0; ok && i < n; i++) {
        float p1 = c->proba[n + i];
        ok = c->y_true[i] == 0 || c->y_true[i] == 1;
        c->proba[2 * i + 1] = p1;
        c->proba[2 * i] = 1.0f - p1;
        c->y_pred[i] = p1 >= 0.5f;
    }
    fclose(f);
    return ok ? SG_OK : sg_errf(err, SG_EINPUT, "%s: not %lld raw rows", path, (long long)c->n);
}

static bool unit_weights, log_terms;
static int bench(int64_t n, int repeat, bool weighted, const char *raw, const char *raw_in,
                 sg_err *err)
{
    weighted = weighted || unit_weights;
    probe_case c = {.task = SG_TASK_BINARY, .k = 2, .n = n, .weighted = weighted};
    c.y_true = malloc((size_t)n * sizeof *c.y_true);
    c.y_pred = malloc((size_t)n * sizeof *c.y_pred);
    c.proba = malloc((size_t)n * 2 * sizeof *c.proba);
    c.w = weighted ? malloc((size_t)n * sizeof *c.w) : NULL;
    if (!c.y_true || !c.y_pred || !c.proba || (weighted && !c.w)) {
        case_free(&c);
        return sg_errf(err, SG_ENOMEM, "bench: out of memory for %lld rows", (long long)n);
    }
    int rc = SG_OK;
    if (raw_in)
        rc = read_raw(&c, raw_in, err);
    else
        synth(&c, 42);
    for (int64_t i = 0; unit_weights && i < n; i++)
        c.w[i] = 1.0;
    if (!rc && log_terms && weighted) {
        c.log_terms = malloc((size_t)n * sizeof *c.log_terms);
        if (!c.log_terms) rc = sg_errf(err, SG_ENOMEM, "bench: out of memory for %lld rows", (long long)n);
        else sg_metrics_log_terms(2, n, c.proba, c.y_true, c.log_terms);
    }
    if (!rc && raw) {
        FILE *f = fopen(raw, "wb");
        bool ok = f && fwrite(c.y_true, sizeof *c.y_true, (size_t)n, f) == (size_t)n;
        for (int64_t i = 0; ok && i < n; i++)
            ok = fwrite(&c.proba[2 * i + 1], 4, 1, f) == 1;
        if (ok && weighted) ok = fwrite(c.w, sizeof *c.w, (size_t)n, f) == (size_t)n;
        if (f && fclose(f)) ok = false;
        if (!ok) rc = sg_errf(err, SG_EIO, "%s: cannot write the raw rows", raw);
    }
    double *t = calloc((size_t)repeat, sizeof *t);
    sg_metrics m = {0};
    for (int r = 0; !rc && r < repeat; r++) {
        sg_metrics_clear(&m);
        double t0 = sg_now_seconds();
        rc = run_case(&c, 65536, &m, err);
        t[r] = sg_now_seconds() - t0;
    }
    if (!rc) {
        qsort(t, (size_t)repeat, sizeof *t, cmp_double);
        json_t *doc = json_object();
        json_object_set_new(doc, "rows", json_integer(n));
        json_object_set_new(doc, "weighted", json_boolean(weighted));
        json_object_set_new(doc, "repeat", json_integer(repeat));
        json_object_set_new(doc, "seconds_min", json_real(t[0]));
        json_object_set_new(doc, "seconds_median", json_real(t[repeat / 2]));
        json_t *mj = json_object();
        json_object_set_new(doc, "metrics", mj);
        if (sg_metrics_to_json(&m, mj) || sg_json_print(doc)) rc = SG_EINTERNAL;
        json_decref(doc);
    }
    sg_metrics_clear(&m);
    free(t);
    case_free(&c);
    return rc;
}

static int probe_fail(int rc, const sg_err *err)
{
    fprintf(stderr, "sg_metrics_probe: %s\n", err->msg[0] ? err->msg : sg_status_string(rc));
    return 2;
}

int main(int argc, char **argv)
{
    sg_err err = {{0}};
    int64_t chunk = 1000, rows = 0, repeat = 5;
    const char *path = NULL, *raw = NULL, *raw_in = NULL;
    bool weighted = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (!strcmp(a, "--chunk") && i + 1 < argc)
            rc = sg_parse_i64(a, argv[++i], 1, INT64_MAX, &chunk, &err);
        else if (!strcmp(a, "--continuous"))
            continuous = true;
        else if (!strcmp(a, "--bench") && i + 1 < argc)
            rc = sg_parse_i64(a, argv[++i], 1, 1000000000, &rows, &err);
        else if (!strcmp(a, "--repeat") && i + 1 < argc)
            rc = sg_parse_i64(a, argv[++i], 1, 1000, &repeat, &err);
        else if (!strcmp(a, "--write-raw") && i + 1 < argc)
            raw = argv[++i];
        else if (!strcmp(a, "--read-raw") && i + 1 < argc)
            raw_in = argv[++i];
        else if (!strcmp(a, "--log-terms"))
            log_terms = true;
        else if (!strcmp(a, "--unit-weights"))
            unit_weights = true;
        else if (!strcmp(a, "--weights"))
            weighted = true;
        else if (a[0] != '-' && !path)
            path = a;
        else
            rc = sg_errf(&err, SG_EINPUT, "unknown or incomplete option '%s'", a);
        if (rc) return probe_fail(SG_EINPUT, &err);
    }
    if (rows > 0) {
        if (raw_in && weighted) {
            sg_errf(&err, SG_EINPUT, "--read-raw takes unweighted rows");
            return probe_fail(SG_EINPUT, &err);
        }
        int rc = bench(rows, (int)repeat, weighted, raw, raw_in, &err);
        return rc ? probe_fail(rc, &err) : 0;
    }
    if (!path) {
        fprintf(stderr, "usage: sg_metrics_probe CASE.txt [--chunk N] | --bench ROWS "
                        "[--repeat R] [--weights | --unit-weights] [--log-terms] [--write-raw FILE] [--read-raw FILE]\n");
        return 2;
    }
    probe_case c = {0};
    sg_metrics m = {0};
    int rc = read_case(path, &c, &err);
    if (!rc) rc = run_case(&c, chunk, &m, &err);
    if (!rc) rc = print_metrics(&m, json_object());
    sg_metrics_clear(&m);
    case_free(&c);
    return rc ? probe_fail(rc, &err) : 0;
}
