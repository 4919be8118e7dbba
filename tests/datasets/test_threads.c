/*
 * One thread streams a gzip set while another loads models and writes predictions:
 * all HDF5 use in datasets/ is serialised by one lock, so every call must succeed
 * and return exactly what a single-threaded run returns (run under ASan/TSan too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fixtures.h"
#include "stagegate/dataset.h"

#define N 20000
#define D 8
#define ROUNDS 40

static char dir[4096], data_path[4200], model_path[4200];
static float src[N * D];

static void *reader(void *arg)
{
    int *failures = arg;
    static float X[1000 * D];
    int32_t L[1000];
    for (int round = 0; round < 3; round++) {
        sg_dataset *ds = NULL;
        sg_err err;
        if (sg_dataset_open(data_path, &ds, &err)) {
            (*failures)++;
            continue;
        }
        for (int64_t r = 0; r < N; r += 1000) {
            if (sg_dataset_read(ds, r, 1000, X, L, NULL, NULL, 2, &err) ||
                memcmp(X, src + r * D, sizeof X) != 0 || L[0] != (int32_t)(r / 1000 % 2))
                (*failures)++;
        }
        sg_dataset_close(ds);
    }
    return NULL;
}

static void *loader(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < ROUNDS; i++) {
        sg_model *m = NULL;
        sg_err err;
        if (sg_model_load(model_path, &m, &err) || m->n_layers != 2) (*failures)++;
        sg_model_free(m);
        char out[4300];
        snprintf(out, sizeof out, "%s/pred%d.h5", dir, i);
        sg_pred_writer *w = NULL;
        float v[4] = {1, 2, 3, 4};
        if (sg_pred_writer_open(out, 4, 1, false, &w, &err) ||
            sg_pred_writer_write(w, 0, 4, v, NULL, &err) || sg_pred_writer_commit(w, &err))
            (*failures)++;
    }
    return NULL;
}

static void test_concurrent_hdf5_use(void **state)
{
    fx_mkdtemp(dir, sizeof dir);
    snprintf(data_path, sizeof data_path, "%s/set.h5", dir);
    snprintf(model_path, sizeof model_path, "%s/model.h5", dir);
    static int32_t y[N];
    for (int i = 0; i < N * D; i++)
        src[i] = (float)i * 0.25f;
    for (int i = 0; i < N; i++)
        y[i] = i / 1000 % 2;
    hid_t f = H5Fcreate(data_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t xd[2] = {N, D}, xc[2] = {1500, D}, yd[1] = {N}, yc[1] = {1500};
    fx_write_chunked(f, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, xd, xc, 4, src);
    fx_write_chunked(f, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, yd, yc, 4, y);
    H5Fclose(f);
    fx_write_binary_model(model_path);

    int rf = 0, lf = 0;
    pthread_t a, b;
    pthread_create(&a, NULL, reader, &rf);
    pthread_create(&b, NULL, loader, &lf);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(rf, 0);
    assert_int_equal(lf, 0);
    assert_int_equal(fx_count_entries(dir), 2 + ROUNDS);
    fx_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_concurrent_hdf5_use)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
