/*
 * The eval library on real HDF5 files: the result carries the digest of the bytes
 * the loader parsed, a registered digest that the loaded bytes do not match is an
 * input error, and results agree whatever the chunk size or the worker count
 * (labels and counts exactly; summed losses up to summation order).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stagegate/eval.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_binding),
        cmocka_unit_test(test_chunking_and_workers_do_not_change_results),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
