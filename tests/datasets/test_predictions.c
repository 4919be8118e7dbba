/* sg_pred_writer_*: committed files hold exactly what was written; failures leave no file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "stagegate/dataset.h"

static char dir[4096];

static int setup(void **state)
{
    fx_mkdtemp(dir, sizeof dir);
    return 0;
}

static int teardown(void **state)
{
    fx_rmtree(dir);
    return 0;
}

static void read_all(const char *path, const char *name, hid_t memtype, void *buf, hsize_t *dims)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, dims, NULL);
    assert_true(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_classifier_roundtrip(void **state)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/pred.h5", dir);
    sg_pred_writer *w = NULL;
    sg_err err = {{0}};
    enum { n = 10, k = 3 };
    float proba[n * k];
    int32_t label[n];
    for (int i = 0; i < n * k; i++)
        proba[i] = (float)i / 100.0f;
    for (int i = 0; i < n; i++)
        label[i] = i % k;
    assert_int_equal(sg_pred_writer_open(path, n, k, true, &w, &err), SG_OK);
    /* Nothing visible at the destination until commit. */
    assert_int_equal(access(path, F_OK), -1);
    /* Out of order blocks, as a pipelined writer may deliver them. */
    assert_int_equal(sg_pred_writer_write(w, 4, 6, proba + 4 * k, label + 4, &err), SG_OK);
    assert_int_equal(sg_pred_writer_write(w, 0, 4, proba, label, &err), SG_OK);
    assert_int_equal(sg_pred_writer_write(w, 8, 3, proba, label, &err), SG_EINTERNAL);
    assert_int_equal(sg_pred_writer_commit(w, &err), SG_OK);
    assert_int_equal(fx_count_entries(dir), 1);

    float got[n * k];
    int32_t gl[n];
    hsize_t dims[2];
    read_all(path, "proba", H5T_NATIVE_FLOAT, got, dims);
    assert_int_equal(dims[0], n);
    assert_int_equal(dims[1], k);
    assert_memory_equal(got, proba, sizeof proba);
    read_all(path, "label", H5T_NATIVE_INT32, gl, dims);
    assert_int_equal(dims[0], n);
    assert_memory_equal(gl, label, sizeof label);
    unlink(path);
}

static void test_regression_and_failures(void **state)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/reg.h5", dir);
    sg_pred_writer *w = NULL;
    sg_err err = {{0}};
    float v[5] = {1.5f, -2, 3, 4, 5};
    assert_int_equal(sg_pred_writer_open(path, 5, 1, false, &w, &err), SG_OK);
    assert_int_equal(sg_pred_writer_write(w, 0, 5, v, NULL, &err), SG_OK);
    assert_int_equal(sg_pred_writer_commit(w, &err), SG_OK);
    float got[5];
    hsize_t dims[2];
    read_all(path, "prediction", H5T_NATIVE_FLOAT, got, dims);
    assert_int_equal(dims[0], 5);
    assert_memory_equal(got, v, sizeof v);
    unlink(path);

    /* Abort leaves nothing behind. */
    assert_int_equal(sg_pred_writer_open(path, 5, 1, false, &w, &err), SG_OK);
    assert_int_equal(sg_pred_writer_write(w, 0, 2, v, NULL, &err), SG_OK);
    assert_int_equal(fx_count_entries(dir), 1); /* the temporary file */
    sg_pred_writer_abort(w);
    assert_int_equal(fx_count_entries(dir), 0);

    /* A commit with rows missing refuses and leaves nothing behind either. */
    assert_int_equal(sg_pred_writer_open(path, 5, 1, false, &w, &err), SG_OK);
    assert_int_equal(sg_pred_writer_write(w, 0, 4, v, NULL, &err), SG_OK);
    assert_int_equal(sg_pred_writer_commit(w, &err), SG_EINTERNAL);
    assert_non_null(strstr(err.msg, "4 of 5"));
    assert_int_equal(fx_count_entries(dir), 0);

    /* An existing destination is replaced only on success. */
    fx_write_text(path, "old");
    assert_int_equal(sg_pred_writer_open(path, 5, 1, false, &w, &err), SG_OK);
    sg_pred_writer_abort(w);
    assert_int_equal(fx_count_entries(dir), 1);
    unlink(path);

    /* The output's directory renamed during the run: the commit fails, naming the path, and
       the temp file is removed from the renamed directory too (it had been left there). */
    char sub[4300], moved[4300], inner[4400];
    snprintf(sub, sizeof sub, "%s/od", dir);
    snprintf(moved, sizeof moved, "%s/od2", dir);
    snprintf(inner, sizeof inner, "%s/p.h5", sub);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(sg_pred_writer_open(inner, 5, 1, false, &w, &err), SG_OK);
    assert_int_equal(sg_pred_writer_write(w, 0, 5, v, NULL, &err), SG_OK);
    assert_int_equal(rename(sub, moved), 0);
    assert_int_equal(fx_count_entries(moved), 1); /* the temporary file, now in od2 */
    assert_int_equal(sg_pred_writer_commit(w, &err), SG_EIO);
    assert_non_null(strstr(err.msg, inner));
    assert_int_equal(fx_count_entries(moved), 0);
    /* ...and an abort does the same */
    assert_int_equal(rename(moved, sub), 0);
    assert_int_equal(sg_pred_writer_open(inner, 5, 1, false, &w, &err), SG_OK);
    assert_int_equal(rename(sub, moved), 0);
    sg_pred_writer_abort(w);
    assert_int_equal(fx_count_entries(moved), 0);
    assert_int_equal(rmdir(moved), 0);

    char missing[4300];
    snprintf(missing, sizeof missing, "%s/no-such-dir/p.h5", dir);
    assert_int_equal(sg_pred_writer_open(missing, 5, 1, false, &w, &err), SG_EIO);
    assert_non_null(strstr(err.msg, missing));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier_roundtrip),
        cmocka_unit_test(test_regression_and_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
