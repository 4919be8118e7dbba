/* sg_model_load: a valid model loads with exact values; every bad input is refused clearly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "stagegate/model.h"

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

static const char *tpath(const char *name)
{
    static char p[4096 + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* The load must fail with SG_EINPUT and one line naming the file and what is wrong. */
static void expect_error(const char *path, const char *what1, const char *what2)
{
    sg_model *m = (sg_model *)0x1;
    sg_err err = {{0}};
    int rc = sg_model_load(path, &m, &err);
    if (rc != SG_EINPUT || !strstr(err.msg, path) || !strstr(err.msg, what1) ||
        (what2 && !strstr(err.msg, what2)))
        fprintf(stderr, "unexpected: rc=%d msg=%s (want %s / %s)\n", rc, err.msg, what1,
                what2 ? what2 : "");
    assert_int_equal(rc, SG_EINPUT);
    assert_null(m);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, what1));
    if (what2) assert_non_null(strstr(err.msg, what2));
    assert_null(strchr(err.msg, '\n'));
}

static void test_valid_binary(void **state)
{
    const char *p = tpath("ok.h5");
    fx_write_binary_model(p);
    sg_model *m = NULL;
    sg_err err = {{0}};
    assert_int_equal(sg_model_load(p, &m, &err), SG_OK);
    assert_int_equal(m->task, SG_TASK_BINARY);
    assert_int_equal(m->n_classes, 2);
    assert_int_equal(m->n_features, 4);
    assert_int_equal(m->n_outputs, 1);
    assert_int_equal(m->link, SG_LINK_SIGMOID);
    assert_int_equal(m->n_layers, 2);
    assert_int_equal(m->layers[0].act, SG_ACT_RELU);
    assert_int_equal(m->layers[1].act, SG_ACT_IDENTITY);
    assert_int_equal(m->layers[0].n_in, 4);
    assert_int_equal(m->layers[0].n_out, 3);
    assert_int_equal(m->layers[1].n_in, 3);
    assert_int_equal(m->layers[1].n_out, 1);
    assert_string_equal(m->estimator, "Pipeline(StandardScaler, MLPClassifier)");
    assert_string_equal(m->path, p);
    /* Values as the fixture wrote them: W[k] = base + 0.01 k, row-major [n_in][n_out]. */
    assert_float_equal(m->layers[0].W[1 * 3 + 2], 0.25f + 0.01f * 5, 1e-7);
    assert_float_equal(m->layers[1].b[0], 0.5f, 1e-7);
    assert_float_equal(m->mean[1], -1.0f, 0);
    assert_float_equal(m->scale[3], 4.0f, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal((uintptr_t)m->layers[i].W % 64, 0);
        assert_int_equal((uintptr_t)m->layers[i].b % 64, 0);
    }
    assert_int_equal(m->param_bytes, (4 * 3 + 3 + 3 * 1 + 1 + 2 * 4) * sizeof(float));
    assert_int_equal(sg_model_output_width(m), 2);
    assert_int_equal(sg_model_max_width(m), 4);
    uint8_t digest[32];
    assert_int_equal(sg_sha256_file(p, digest, &err), SG_OK);
    assert_memory_equal(digest, m->sha256, 32);

    sg_model *c = NULL;
    assert_int_equal(sg_model_clone(m, &c, &err), SG_OK);
    assert_ptr_not_equal(c->layers[0].W, m->layers[0].W);
    assert_ptr_not_equal(c->mean, m->mean);
    assert_memory_equal(c->layers[0].W, m->layers[0].W, 12 * sizeof(float));
    assert_memory_equal(c->scale, m->scale, 4 * sizeof(float));
    assert_memory_equal(c->sha256, m->sha256, 32);
    assert_int_equal((uintptr_t)c->layers[1].W % 64, 0);
    sg_model_free(m);
    /* The clone owns its memory: still valid after the original is freed. */
    assert_float_equal(c->layers[1].b[0], 0.5f, 1e-7);
    sg_model_free(c);
}

static void test_multiclass_and_regression(void **state)
{
    const char *p = tpath("mc.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    fx_attr_str(f, "format", "stagegate-model");
    fx_attr_int(f, "format_version", 1);
    fx_attr_fixed_str(f, "task", "multiclass");
    fx_attr_int(f, "n_classes", 3);
    fx_attr_int(f, "n_features", 2);
    fx_attr_str(f, "link", "softmax");
    hid_t g = H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t l = H5Gcreate2(g, "0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    fx_attr_str(l, "activation", "identity");
    double W[6] = {1, 2, 3, 4, 5, 6}, b[3] = {0.5, 0, -0.5};
    hsize_t wd[2] = {2, 3}, bd[1] = {3};
    fx_write(l, "W", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, wd, W);
    fx_write(l, "b", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, 1, bd, b);
    H5Gclose(l);
    H5Gclose(g);
    H5Fclose(f);
    sg_model *m = NULL;
    sg_err err = {{0}};
    assert_int_equal(sg_model_load(p, &m, &err), SG_OK);
    assert_int_equal(m->task, SG_TASK_MULTICLASS);
    assert_int_equal(m->n_outputs, 3);
    assert_int_equal(sg_model_output_width(m), 3);
    assert_null(m->mean);
    assert_string_equal(m->estimator, "unknown");
    assert_float_equal(m->layers[0].W[4], 5.0f, 0);
    assert_float_equal(m->layers[0].b[2], -0.5f, 0); /* big-endian float64 converted */
    sg_model_free(m);

    f = fx_open_rw(p);
    fx_replace_attr_str(f, "task", "regression");
    fx_replace_attr_int(f, "n_classes", 0);
    fx_replace_attr_str(f, "link", "identity");
    H5Fclose(f);
    expect_error(p, "/layers/0/W has 3 outputs", "regression");
}

static void mutate_str(const char *p, const char *obj, const char *attr, const char *value)
{
    hid_t f = fx_open_rw(p);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    fx_replace_attr_str(o, attr, value);
    H5Oclose(o);
    H5Fclose(f);
}

static void mutate_int(const char *p, const char *obj, const char *attr, int64_t value)
{
    hid_t f = fx_open_rw(p);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    fx_replace_attr_int(o, attr, value);
    H5Oclose(o);
    H5Fclose(f);
}

/* Replaces dataset name with new contents (type, rank, dims) in the model at p. */
static void replace_ds(const char *p, const char *name, hid_t ft, hid_t mt, int rank,
                       const hsize_t *dims, const void *data)
{
    hid_t f = fx_open_rw(p);
    H5Ldelete(f, name, H5P_DEFAULT);
    fx_write(f, name, ft, mt, rank, dims, data);
    H5Fclose(f);
}

static void test_file_level_errors(void **state)
{
    const char *p = tpath("bad.h5");
    expect_error(p, "cannot open", NULL);
    fx_write_text(p, "this is a CSV file,1,2,3\n");
    expect_error(p, "not an HDF5 file", NULL);
    fx_write_binary_model(p);
    fx_truncate(p, 0.5);
    expect_error(p, "truncated", NULL);
}

static void test_header_errors(void **state)
{
    const char *p = tpath("hdr.h5");
    fx_write_binary_model(p);
    mutate_int(p, "/", "format_version", 4);
    expect_error(p, "format_version is 4, unsupported (this build reads 1 to 3)", NULL);
    fx_write_binary_model(p);
    mutate_int(p, "/", "format_version", 0);
    expect_error(p, "format_version is 0, unsupported", NULL);

    fx_write_binary_model(p);
    mutate_str(p, "/", "format", "keras");
    expect_error(p, "attribute format", "keras");

    fx_write_binary_model(p);
    hid_t f = fx_open_rw(p);
    H5Adelete(f, "format");
    H5Fclose(f);
    expect_error(p, "attribute format is missing", NULL);

    fx_write_binary_model(p);
    mutate_str(p, "/", "task", "ranking");
    expect_error(p, "attribute task", "ranking");

    /* A fixed-length string with text after a NUL ("binary\0xx"): C would read "binary",
       h5py the whole value. Refused. NUL padding after the text is not text. */
    /* Trailing spaces are padding only in a space-padded string (Fortran's): "binary   "
       stored NUL-padded is not "binary" to h5py, so it is refused, and so is a variable-length
       "binary " (both had been trimmed and taken). */
    static const char nul_text[9] = {'b', 'i', 'n', 'a', 'r', 'y', '\0', 'x', 'x'};
    static const char nul_pad[9] = {'b', 'i', 'n', 'a', 'r', 'y', '\0', '\0', '\0'};
    static const char spaces[9] = {'b', 'i', 'n', 'a', 'r', 'y', ' ', ' ', ' '};
    static const struct {
        const char *text;
        H5T_str_t pad;
        const char *error; /* NULL: taken as "binary" */
    } cases[] = {
        {nul_text, H5T_STR_NULLPAD, "attribute task has a NUL byte inside its text"},
        {nul_pad, H5T_STR_NULLPAD, NULL},
        {spaces, H5T_STR_NULLPAD, "attribute task"},
        {spaces, H5T_STR_SPACEPAD, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fx_write_binary_model(p);
        f = fx_open_rw(p);
        H5Adelete(f, "task");
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 9);
        H5Tset_strpad(t, cases[k].pad);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "task", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(a >= 0 && H5Awrite(a, t, cases[k].text) >= 0);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
        H5Fclose(f);
        if (cases[k].error) {
            expect_error(p, cases[k].error, NULL);
        } else {
            sg_model *m = NULL;
            sg_err err = {{0}};
            assert_int_equal(sg_model_load(p, &m, &err), SG_OK);
            assert_int_equal(m->task, SG_TASK_BINARY);
            sg_model_free(m);
        }
    }

    fx_write_binary_model(p);
    mutate_str(p, "/", "task", "binary ");
    expect_error(p, "attribute task", "binary");

    fx_write_binary_model(p);
    mutate_str(p, "/", "link", "softmax");
    expect_error(p, "attribute link is softmax", "binary model needs sigmoid");

    fx_write_binary_model(p);
    mutate_str(p, "/", "link", "probit");
    expect_error(p, "attribute link", "probit");

    fx_write_binary_model(p);
    mutate_int(p, "/", "n_classes", 3);
    expect_error(p, "attribute n_classes", NULL);

    fx_write_binary_model(p);
    mutate_str(p, "/", "n_features", "four");
    expect_error(p, "attribute n_features is string", NULL);
}

/* Writes /classes of n values (type ft) into the binary model at p, format_version v. */
static void with_classes(const char *p, int v, hid_t ft, const int64_t *values, hsize_t n)
{
    fx_write_binary_model(p);
    mutate_int(p, "/", "format_version", v);
    hid_t f = fx_open_rw(p);
    fx_write(f, "classes", ft, H5T_NATIVE_INT64, 1, &n, values);
    H5Fclose(f);
}

/* /classes (format 3): a classifier's class values load as given, 0..k-1 as none; every bad
   form is refused naming /classes; a clone keeps them. */
static void test_classes(void **state)
{
    (void)state;
    const char *p = tpath("classes.h5");
    const int64_t pm1[2] = {-1, 1}, id[2] = {0, 1}, desc[2] = {1, -1},
                  wide[2] = {0, (int64_t)1 << 31}, three[3] = {1, 2, 3};
    with_classes(p, 3, H5T_STD_I16BE, pm1, 2);
    sg_model *m = NULL;
    sg_err err = {{0}};
    assert_int_equal(sg_model_load(p, &m, &err), SG_OK);
    assert_non_null(m->classes);
    assert_int_equal(m->classes[0], -1);
    assert_int_equal(m->classes[1], 1);
    assert_int_equal(sg_class_index(m, -1), 0);
    assert_int_equal(sg_class_index(m, 1), 1);
    assert_int_equal(sg_class_index(m, 0), -1);
    assert_int_equal(sg_class_index(m, 2), -1);
    char text[64];
    sg_classes_text(m->classes, m->n_classes, text, sizeof text);
    assert_string_equal(text, "(-1, 1)");
    sg_model *c = NULL;
    assert_int_equal(sg_model_clone(m, &c, &err), SG_OK);
    assert_true(c->classes != m->classes && c->classes[0] == -1 && c->classes[1] == 1);
    assert_true(sg_classes_equal(m, c));
    sg_model_free(c);
    sg_model_free(m);

    with_classes(p, 3, H5T_STD_I64LE, id, 2); /* 0..k-1: no mapping */
    m = NULL;
    assert_int_equal(sg_model_load(p, &m, &err), SG_OK);
    assert_null(m->classes);
    assert_int_equal(sg_class_index(m, 1), 1);
    assert_int_equal(sg_class_index(m, 2), -1);
    sg_model_free(m);

    with_classes(p, 2, H5T_STD_I64LE, pm1, 2);
    expect_error(p, "/classes needs format_version 3 (the file says 2", NULL);
    with_classes(p, 3, H5T_STD_I64LE, desc, 2);
    expect_error(p, "/classes[1] is -1, not above [0] = 1", NULL);
    with_classes(p, 3, H5T_STD_I64LE, wide, 2);
    expect_error(p, "/classes[1] is 2147483648, outside int32", NULL);
    with_classes(p, 3, H5T_STD_I64LE, three, 3);
    expect_error(p, "/classes has 3 values but n_classes is 2", NULL);
    with_classes(p, 3, H5T_IEEE_F64LE, pm1, 2);
    expect_error(p, "/classes has dtype", "expected an integer type");
    with_classes(p, 3, H5T_STD_I64LE, pm1, 2);
    mutate_str(p, "/", "task", "regression");
    mutate_int(p, "/", "n_classes", 0);
    expect_error(p, "/classes is given for a regression model", NULL);

    int32_t many[12];
    for (int j = 0; j < 12; j++)
        many[j] = j * 10;
    sg_classes_text(many, 12, text, sizeof text);
    assert_string_equal(text, "(0, 10, 20, ..., 110)");
    sg_classes_text(NULL, 3, text, sizeof text);
    assert_string_equal(text, "(0, 1, 2)");
}

static void test_layer_errors(void **state)
{
    const char *p = tpath("layers.h5");
    fx_write_binary_model(p);
    mutate_str(p, "/layers/0", "activation", "swish");
    expect_error(p, "/layers/0/activation", "swish");

    fx_write_binary_model(p);
    mutate_str(p, "/layers/1", "activation", "relu");
    expect_error(p, "/layers/1/activation is relu", "last layer");

    /* Inconsistent chaining: layer 0 has 3 outputs, layer 1 expects 5 inputs. */
    fx_write_binary_model(p);
    float w5[5] = {0};
    hsize_t d51[2] = {5, 1};
    replace_ds(p, "/layers/1/W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d51, w5);
    expect_error(p, "/layers/1/W has 5 input rows", "/layers/0/W has 3 outputs");

    fx_write_binary_model(p);
    float w9[9] = {0};
    hsize_t d33[2] = {3, 3}, d32[2] = {3, 2};
    replace_ds(p, "/layers/0/W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d33, w9);
    expect_error(p, "/layers/0/W has 3 input rows", "n_features is 4");

    fx_write_binary_model(p);
    float b2[2] = {0};
    hsize_t d2[1] = {2};
    replace_ds(p, "/layers/0/b", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d2, b2);
    expect_error(p, "/layers/0/b has 2 values", NULL);

    /* Binary output must be one column. */
    fx_write_binary_model(p);
    float w32[6] = {0}, bb[2] = {0};
    replace_ds(p, "/layers/1/W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d32, w32);
    replace_ds(p, "/layers/1/b", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d2, bb);
    expect_error(p, "/layers/1/W has 2 outputs", "binary");

    fx_write_binary_model(p);
    float w12[12] = {0};
    hsize_t d12[1] = {12};
    replace_ds(p, "/layers/0/W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d12, w12);
    expect_error(p, "/layers/0/W has rank 1", NULL);

    fx_write_binary_model(p);
    int32_t wi[12] = {0};
    hsize_t d43[2] = {4, 3};
    replace_ds(p, "/layers/0/W", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d43, wi);
    expect_error(p, "/layers/0/W has dtype int32", NULL);

    fx_write_binary_model(p);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 8);
    char sbuf[12][8];
    memset(sbuf, 'a', sizeof sbuf);
    replace_ds(p, "/layers/0/W", st, st, 2, d43, sbuf);
    H5Tclose(st);
    expect_error(p, "/layers/0/W has dtype string", NULL);

    fx_write_binary_model(p);
    hid_t f = fx_open_rw(p);
    H5Lmove(f, "/layers/1", f, "/layers/2", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_error(p, "/layers/2 is not a layer: the 2 members of /layers must be named 0..1", NULL);
    /* A member that is no index at all is named, not taken for a missing layer. */
    fx_write_binary_model(p);
    f = fx_open_rw(p);
    H5Lmove(f, "/layers/1", f, "/layers/foo", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_error(p, "/layers/foo is not a layer", "named 0..1");
    fx_write_binary_model(p);
    f = fx_open_rw(p);
    H5Lmove(f, "/layers/1", f, "/layers/01", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_error(p, "/layers/01 is not a layer", NULL);

    fx_write_binary_model(p);
    f = fx_open_rw(p);
    H5Ldelete(f, "/layers/0/b", H5P_DEFAULT);
    H5Fclose(f);
    expect_error(p, "/layers/0/b is missing", NULL);

    /* Weights that were never written (a writer that stopped before its data) read as zeros
       through libhdf5's fill value; refused, contiguous (no storage at all) and chunked (a
       chunk never written) alike. */
    for (int chunked = 0; chunked < 2; chunked++) {
        fx_write_binary_model(p);
        f = fx_open_rw(p);
        hid_t old = H5Dopen2(f, "/layers/0/W", H5P_DEFAULT), sp = H5Dget_space(old);
        hsize_t d[2];
        assert_int_equal(H5Sget_simple_extent_dims(sp, d, NULL), 2);
        H5Dclose(old);
        H5Ldelete(f, "/layers/0/W", H5P_DEFAULT);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        hsize_t ch[2] = {1, d[1]};
        if (chunked) H5Pset_chunk(dcpl, 2, ch);
        hid_t w = H5Dcreate2(f, "/layers/0/W", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        assert_true(w >= 0);
        if (chunked) { /* the first row written, the rest never */
            float *row = calloc(d[1], sizeof *row);
            hid_t ms = H5Screate_simple(1, &d[1], NULL);
            hsize_t start[2] = {0, 0}, cnt[2] = {1, d[1]};
            H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL);
            assert_true(H5Dwrite(w, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, row) >= 0);
            H5Sclose(ms);
            free(row);
        }
        H5Dclose(w);
        H5Pclose(dcpl);
        H5Sclose(sp);
        H5Fclose(f);
        expect_error(p, "/layers/0/W", "never written");
    }

    /* Contiguous weights whose address points past the end of the file (a crafted or cut
       layout message): libhdf5 reads what lies past it as zeros, and they had loaded. The
       layout message (version 3, class 1: contiguous) holds the address, then the size. */
    for (int back = 0; back < 2; back++) {
        fx_write_binary_model(p);
        f = fx_open_rw(p);
        hid_t w = H5Dopen2(f, "/layers/0/W", H5P_DEFAULT);
        const uint64_t off = H5Dget_offset(w), size = H5Dget_storage_size(w);
        H5Dclose(w);
        H5Fclose(f);
        FILE *fp = fopen(p, "rb");
        assert_non_null(fp);
        fseek(fp, 0, SEEK_END);
        const long len = ftell(fp);
        rewind(fp);
        unsigned char *raw = malloc((size_t)len);
        assert_int_equal(fread(raw, 1, (size_t)len, fp), (size_t)len);
        fclose(fp);
        unsigned char pat[18] = {3, 1};
        memcpy(pat + 2, &off, 8); /* little-endian, as on x86-64 */
        memcpy(pat + 10, &size, 8);
        unsigned char *at = NULL;
        for (long i = 0; i + 18 <= len; i++)
            if (!memcmp(raw + i, pat, 18)) {
                assert_null(at); /* one such message */
                at = raw + i;
            }
        assert_non_null(at);
        const uint64_t moved = (uint64_t)len - (back ? size / 2 : 0); /* all of it, or half */
        memcpy(at + 2, &moved, 8);
        fp = fopen(p, "wb");
        assert_int_equal(fwrite(raw, 1, (size_t)len, fp), (size_t)len);
        fclose(fp);
        free(raw);
        expect_error(p, "/layers/0/W", "past the end of the");
    }
}

static void test_value_errors(void **state)
{
    const char *p = tpath("vals.h5");
    float w[12];
    hsize_t d43[2] = {4, 3}, d4[1] = {4};
    for (int i = 0; i < 12; i++)
        w[i] = 0.1f;
    fx_write_binary_model(p);
    w[7] = NAN;
    replace_ds(p, "/layers/0/W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d43, w);
    expect_error(p, "/layers/0/W[2,1] is not finite", NULL);

    fx_write_binary_model(p);
    w[7] = INFINITY;
    replace_ds(p, "/layers/0/W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d43, w);
    expect_error(p, "/layers/0/W[2,1] is not finite", NULL);

    /* A float64 value beyond float32 range cannot be represented: refused, not clamped. */
    fx_write_binary_model(p);
    double big[4] = {0, 0, 1e300, 0};
    replace_ds(p, "/scaler/mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d4, big);
    expect_error(p, "/scaler/mean[2] is not finite", NULL);

    fx_write_binary_model(p);
    double sc[4] = {1, 1, 0, 1};
    replace_ds(p, "/scaler/scale", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d4, sc);
    expect_error(p, "/scaler/scale[2] is 0, must be > 0", NULL);

    fx_write_binary_model(p);
    double m3[3] = {0};
    hsize_t d3[1] = {3};
    replace_ds(p, "/scaler/mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d3, m3);
    expect_error(p, "/scaler/mean has 3 values", "n_features is 4");
}

/* The float64 -> float32 narrowing of a model that compares in float64 (HistGradientBoosting):
   every split must decide on the float32 as `x <= cut` does on the float64. */
static bool kernel_left(float x, double cut)
{
    /* what the exporter stores and the kernel tests: x < next float32 above floor32(cut) */
    float f = (float)cut;
    if ((double)f > cut) f = nextafterf(f, -INFINITY);
    return x < nextafterf(f, INFINITY);
}

static void test_f64_cuts_narrow(void **state)
{
    /* Feature 0: cuts near 1.7e9 (a float32 ulp is 128 there), the first two with their own
       float32 floor, then two that share one (1700000300.5 and 1700000350.5 both floor to
       1700000256). Feature 1: none. Feature 2: one small cut. */
    double cut[] = {1700000010.5, 1700000228.5, 1700000300.5, 1700000350.5, 0.1};
    float fl[5];
    for (int i = 0; i < 5; i++) {
        fl[i] = (float)cut[i];
        if ((double)fl[i] > cut[i]) fl[i] = nextafterf(fl[i], -INFINITY);
    }
    assert_true(fl[2] == fl[3]);
    int64_t start[] = {0, 4, 4, 5};
    sg_f64_cuts c = {.n_features = 3, .start = start, .cut = cut, .floor32 = fl};
    double below = 0, above = 0;
    float out;
    /* Around every cut of feature 0 that has its own floor, and away from them: each value,
       one float64 ulp either side, and the float32 floor of the cut and its neighbours. */
    for (int i = 0; i < 2; i++) {
        const double probes[] = {cut[i],
                                 nextafter(cut[i], -INFINITY),
                                 nextafter(cut[i], INFINITY),
                                 fl[i],
                                 nextafterf(fl[i], INFINITY),
                                 nextafterf(fl[i], -INFINITY),
                                 cut[i] - 60,
                                 cut[i] + 60,
                                 cut[i] - 1000};
        for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
            const double x = probes[k];
            assert_true(sg_f64_cuts_narrow(&c, 0, x, &out, &below, &above));
            for (int j = 0; j < 4; j++)
                if (kernel_left(out, cut[j]) != (x <= cut[j]))
                    fail_msg("x = %.17g -> %.9g decides cut %.17g otherwise", x, (double)out,
                             cut[j]);
        }
    }
    /* The common case keeps (float)x. */
    assert_true(sg_f64_cuts_narrow(&c, 0, 1600000000.0, &out, &below, &above));
    assert_true(out == (float)1600000000.0);
    /* The float32 values here are 1700000000, ...128, ...256, ...384. 1700000011 lies in
       (cut 0, cut 1] but rounds down onto floor32(cut 0) = 1700000000, left of cut 0 in
       float32: it becomes the next float32, 1700000128 = floor32(cut 1). */
    assert_true(sg_f64_cuts_narrow(&c, 0, 1700000011.0, &out, &below, &above));
    assert_true(out == fl[1]);
    /* 1700000200 lies in (cut 0, cut 1] but rounds up to 1700000256, right of cut 1 in
       float32: it becomes floor32(cut 1) = 1700000128. */
    assert_true(sg_f64_cuts_narrow(&c, 0, 1700000200.0, &out, &below, &above));
    assert_true(out == fl[1]);
    /* 1700000139 lies in (cut 0, cut 1] and rounds to 1700000128 there: kept. */
    assert_true(sg_f64_cuts_narrow(&c, 0, 1700000139.0, &out, &below, &above));
    assert_true(out == (float)1700000139.0);
    /* Between the two cuts that share a floor: no float32 will do. */
    assert_false(sg_f64_cuts_narrow(&c, 0, 1700000320.0, &out, &below, &above));
    assert_true(below == cut[2] && above == cut[3]);
    /* At either of them, or past them, it is fine. */
    assert_true(sg_f64_cuts_narrow(&c, 0, cut[2], &out, &below, &above));
    assert_true(kernel_left(out, cut[2]) && kernel_left(out, cut[3]));
    assert_true(sg_f64_cuts_narrow(&c, 0, nextafter(cut[3], INFINITY), &out, &below, &above));
    assert_false(kernel_left(out, cut[2]) || kernel_left(out, cut[3]));
    /* NaN stays NaN, overflow stays infinite (the dataset refuses it), no cuts: plain. */
    assert_true(sg_f64_cuts_narrow(&c, 0, NAN, &out, &below, &above));
    assert_true(isnan(out));
    assert_true(sg_f64_cuts_narrow(&c, 0, -1e300, &out, &below, &above));
    assert_true(isinf(out) && out < 0);
    assert_true(sg_f64_cuts_narrow(&c, 1, 1700000139.0, &out, &below, &above));
    assert_true(out == (float)1700000139.0);
    /* Small values: 0.1 and its float64 neighbours. */
    const double x2[] = {0.1, nextafter(0.1, 1), nextafter(0.1, 0), (double)(float)0.1};
    for (size_t k = 0; k < 4; k++) {
        assert_true(sg_f64_cuts_narrow(&c, 2, x2[k], &out, &below, &above));
        assert_true(kernel_left(out, 0.1) == (x2[k] <= 0.1));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_binary),      cmocka_unit_test(test_multiclass_and_regression),
        cmocka_unit_test(test_file_level_errors), cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_layer_errors),      cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_f64_cuts_narrow),   cmocka_unit_test(test_classes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
