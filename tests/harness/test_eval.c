/*
 * The eval library on real HDF5 files: the result carries the digest of the bytes
 * the loader parsed, a registered digest that the loaded bytes do not match is an
 * input error, and results agree whatever the chunk size or the worker count
 * (labels and counts exactly; summed losses up to summation order). The workers of one
 * NUMA node share one copy of the model, on synthetic topologies of one and two nodes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stagegate/eval.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"
#include "stagegate/model.h"
#include "stagegate/model_ops.h"
#include "tests/datasets/fixtures.h"

static char dir[512], model[600], data[600];

static int setup(void **state)
{
    (void)state;
    fx_mkdtemp(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/m.h5", dir);
    snprintf(data, sizeof data, "%s/d.h5", dir);
    fx_write_binary_model(model);
    enum { N = 1000, D = 4 };
    static float X[N][D];
    static int32_t y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            X[i][j] = (float)((i * 7 + j * 13) % 17) / 4.0f - 2.0f;
        y[i] = (i * 31) % 3 == 0;
    }
    hid_t f = H5Fcreate(data, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dx[2] = {N, D}, dy[1] = {N};
    fx_write(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dx, X);
    fx_write(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dy, y);
    H5Fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_rmtree(dir);
    return 0;
}

static void test_digest_binding(void **state)
{
    (void)state;
    char want[65];
    sg_err err = {{0}};
    assert_int_equal(sg_sha256_file_hex(model, want, &err), SG_OK);
    sg_eval_config c;
    sg_eval_config_init(&c);
    c.model_path = model;
    c.data_path = data;
    sg_eval_result r;
    assert_int_equal(sg_eval_run(&c, &r, &err), SG_OK);
    assert_string_equal(r.model_sha256, want);
    assert_int_equal(r.rows, 1000);
    sg_eval_result_clear(&r);

    c.expected_sha256 = want; /* matching registered digest: fine */
    assert_int_equal(sg_eval_run(&c, &r, &err), SG_OK);
    sg_eval_result_clear(&r);

    char other[65];
    memcpy(other, want, 65);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    c.expected_sha256 = other;
    assert_int_equal(sg_eval_run(&c, &r, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, model));
    assert_non_null(strstr(err.msg, "registered"));
    assert_null(strchr(err.msg, '\n'));
}

static void test_chunking_and_workers_do_not_change_results(void **state)
{
    (void)state;
    sg_err err = {{0}};
    sg_eval_config c;
    sg_eval_config_init(&c);
    c.model_path = model;
    c.data_path = data;
    c.keep_predictions = true;
    sg_eval_result a, b;
    assert_int_equal(sg_eval_run(&c, &a, &err), SG_OK);
    c.chunk_rows = 37; /* many uneven chunks through the reader ring */
    c.cpus = "0";
    assert_int_equal(sg_eval_run(&c, &b, &err), SG_OK);
    assert_int_equal(b.workers, 1);
    assert_memory_equal(a.pred_labels, b.pred_labels, 1000 * sizeof(int32_t));
    assert_true(a.metrics.accuracy == b.metrics.accuracy);
    /* Chunk boundaries change the order of the compensated log-loss sum, nothing else. */
    assert_true(fabs(a.metrics.log_loss - b.metrics.log_loss) <= 1e-12 * a.metrics.log_loss);
    assert_true(a.metrics.roc_auc == b.metrics.roc_auc);
    sg_eval_result_clear(&a);
    sg_eval_result_clear(&b);
}

/*
 * A classifier's first chunk is smaller than the rest (8192 rows here, then 65536): every
 * boundary stays a multiple of the metrics' row block, so the metrics are the same bits as
 * with fixed full-size chunks, and the predictions the same labels.
 */
static void test_small_first_chunk_changes_no_bit(void **state)
{
    (void)state;
    enum { N = 300000, D = 4 };
    char big[640];
    snprintf(big, sizeof big, "%s/big.h5", dir);
    float *X = malloc(sizeof(float) * N * D);
    int32_t *y = malloc(sizeof(int32_t) * N);
    double *w = malloc(sizeof(double) * N);
    assert_non_null(X);
    assert_non_null(y);
    assert_non_null(w);
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            X[(size_t)i * D + j] = (float)((double)(s >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        }
        y[i] = (X[(size_t)i * D] + 0.3f * X[(size_t)i * D + 1] > 0.1f) ^ (i % 7 == 0);
        w[i] = 0.1 + (double)(i % 7) * 0.13 + (double)(s >> 40) * 1e-9; /* not dyadic: sums round */
    }
    hid_t f = H5Fcreate(big, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dx[2] = {N, D}, cx[2] = {4096, D}, dy[1] = {N}, cy[1] = {4096};
    fx_write_chunked(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dx, cx, 0, X);
    fx_write_chunked(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dy, cy, 0, y);
    fx_write_chunked(f, "sample_weight", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dy, cy, 0, w);
    H5Fclose(f);
    free(X);
    free(y);
    free(w);

    sg_err err = {{0}};
    sg_eval_config c;
    sg_eval_config_init(&c);
    c.model_path = model;
    c.data_path = big;
    c.keep_predictions = true;
    sg_eval_result a, b;
    /* default: a small first chunk (8192 rows), then 16384, 32768 and 65536 from there on */
    assert_int_equal(sg_eval_run(&c, &a, &err), SG_OK);
    c.chunk_rows = 65536;                                /* fixed */
    assert_int_equal(sg_eval_run(&c, &b, &err), SG_OK);
    assert_int_equal(a.rows, N);
    assert_true(a.metrics.weighted);
    assert_memory_equal(a.pred_labels, b.pred_labels, N * sizeof(int32_t));
    assert_memory_equal(&a.metrics.accuracy, &b.metrics.accuracy, sizeof(double));
    assert_memory_equal(&a.metrics.f1, &b.metrics.f1, sizeof(double));
    assert_memory_equal(&a.metrics.roc_auc, &b.metrics.roc_auc, sizeof(double));
    assert_memory_equal(&a.metrics.average_precision, &b.metrics.average_precision, sizeof(double));
    assert_memory_equal(&a.metrics.log_loss, &b.metrics.log_loss, sizeof(double));
    assert_memory_equal(a.metrics.confusion_matrix, b.metrics.confusion_matrix, 4 * sizeof(double));
    assert_string_equal(a.data_sha256, b.data_sha256);
    sg_eval_result_clear(&a);
    sg_eval_result_clear(&b);
}

enum { SHARE_WORKERS = 8, SHARE_ROWS = 16 };

typedef struct {
    sg_model_share *share;
    const sg_model *got[SHARE_WORKERS];
    int node[SHARE_WORKERS];
    float out[SHARE_WORKERS][SHARE_ROWS * 2];
    int status[SHARE_WORKERS];
    const float *X;
} share_ctx;

static void share_predict(sg_worker *w, void *arg)
{
    share_ctx *c = arg;
    int i = sg_worker_index(w);
    sg_err err = {{0}};
    c->node[i] = sg_worker_node(w);
    c->status[i] = sg_model_share_get(c->share, w, &c->got[i], &err);
    if (c->status[i] != SG_OK) return;
    void *scratch = NULL;
    c->status[i] = sg_model_scratch_new(c->got[i], SHARE_ROWS, &scratch, &err);
    if (c->status[i] == SG_OK)
        sg_model_predict_batch(c->got[i], sg_kernels(), c->X, SHARE_ROWS, c->out[i], scratch);
    sg_model_scratch_free(c->got[i], scratch);
}

static void share_release(sg_worker *w, void *arg)
{
    share_ctx *c = arg;
    if (c->status[sg_worker_index(w)] == SG_OK) sg_model_share_release(c->share, w);
}

/* Runs the share on a pool of `topology` and checks what each worker predicted with. */
static void share_on(const char *topology, bool fresh, int want_nodes)
{
    sg_err err = {{0}};
    sg_model *m = NULL;
    assert_int_equal(sg_model_open(model, &m, &err), SG_OK);
    float X[SHARE_ROWS * 4];
    for (int i = 0; i < SHARE_ROWS * 4; i++)
        X[i] = (float)(i % 9) / 3.0f - 1.5f;
    float want[SHARE_ROWS * 2];
    void *scratch = NULL;
    assert_int_equal(sg_model_scratch_new(m, SHARE_ROWS, &scratch, &err), SG_OK);
    sg_model_predict_batch(m, sg_kernels(), X, SHARE_ROWS, want, scratch);
    sg_model_scratch_free(m, scratch);

    sg_pool *p = NULL;
    assert_int_equal(sg_pool_create_on(topology, NULL, &p, &err), SG_OK);
    assert_int_equal(sg_pool_size(p), SHARE_WORKERS);
    static share_ctx c;
    memset(&c, 0, sizeof c);
    c.X = X;
    assert_int_equal(sg_model_share_new(m, fresh, &c.share, &err), SG_OK);
    for (int round = 1; round <= 2; round++) {
        sg_pool_run(p, share_predict, &c);
        for (int i = 0; i < SHARE_WORKERS; i++) {
            assert_int_equal(c.status[i], SG_OK);
            /* Every worker predicts the same bits as the loaded model. */
            assert_memory_equal(c.out[i], want, sizeof want);
            for (int j = 0; j < SHARE_WORKERS; j++)
                /* one copy per node: the same for workers of a node, another across nodes */
                assert_true((c.got[i] == c.got[j]) == (c.node[i] == c.node[j]));
            /* One node: the loaded model itself unless fresh; several: each node's copy. */
            assert_true((c.got[i] == m) == (want_nodes == 1 && !fresh));
        }
        sg_pool_run(p, share_release, &c);
        /* The last release of a node frees its copy: the next round makes them again. */
        assert_int_equal(sg_model_share_copies_made(c.share),
                         want_nodes == 1 && !fresh ? 0 : round * want_nodes);
    }
    sg_model_share_free(c.share);
    sg_pool_free(p);
    sg_model_free(m);
}

static void test_model_share_one_copy_per_node(void **state)
{
    (void)state;
    share_on("pack:2 numa:1 core:4 pu:1", false, 2);
    share_on("pack:2 numa:2 core:2 pu:1", false, 4);
    share_on("pack:2 numa:2 core:2 pu:1", true, 4);
    share_on("numa:1 core:8 pu:1", false, 1);
    share_on("numa:1 core:8 pu:1", true, 1);
}

/* eval on a planned two-node machine (each node's workers on their copy) gives the same bits. */
static void test_eval_two_nodes_same_results(void **state)
{
    (void)state;
    sg_err err = {{0}};
    sg_eval_config c;
    sg_eval_config_init(&c);
    c.model_path = model;
    c.data_path = data;
    c.keep_predictions = true;
    sg_eval_result a, b;
    assert_int_equal(sg_eval_run(&c, &a, &err), SG_OK);
    setenv("STAGEGATE_HWLOC_SYNTHETIC", "pack:2 numa:1 core:2 pu:1", 1);
    sg_status st = sg_eval_run(&c, &b, &err);
    unsetenv("STAGEGATE_HWLOC_SYNTHETIC");
    assert_int_equal(st, SG_OK);
    assert_int_equal(b.workers, 4);
    assert_memory_equal(a.pred_labels, b.pred_labels, 1000 * sizeof(int32_t));
    assert_memory_equal(&a.metrics.accuracy, &b.metrics.accuracy, sizeof(double));
    assert_memory_equal(&a.metrics.roc_auc, &b.metrics.roc_auc, sizeof(double));
    sg_eval_result_clear(&a);
    sg_eval_result_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_binding),
        cmocka_unit_test(test_chunking_and_workers_do_not_change_results),
        cmocka_unit_test(test_small_first_chunk_changes_no_bit),
        cmocka_unit_test(test_model_share_one_copy_per_node),
        cmocka_unit_test(test_eval_two_nodes_same_results),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
