/* HDF5 fixture writers for the datasets/ tests. Aborts on any setup failure. */
#include "fixtures.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX_CHECK(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fixture failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

void fx_mkdtemp(char *dir, size_t len)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, len, "%s/sgds.XXXXXX", t && *t ? t : P_tmpdir);
    FX_CHECK(mkdtemp(dir) != NULL);
}

void fx_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int fx_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    FX_CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

void fx_write(hid_t loc, const char *name, hid_t filetype, hid_t memtype, int rank,
              const hsize_t *dims, const void *data)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, filetype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    FX_CHECK(d >= 0);
    if (data) FX_CHECK(H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Sclose(s);
}

void fx_write_chunked(hid_t loc, const char *name, hid_t filetype, hid_t memtype, int rank,
                      const hsize_t *dims, const hsize_t *chunk, int gzip, const void *data)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    FX_CHECK(H5Pset_chunk(p, rank, chunk) >= 0);
    if (gzip) {
        H5Pset_shuffle(p);
        FX_CHECK(H5Pset_deflate(p, (unsigned)gzip) >= 0);
    }
    hid_t d = H5Dcreate2(loc, name, filetype, s, H5P_DEFAULT, p, H5P_DEFAULT);
    FX_CHECK(d >= 0);
    FX_CHECK(H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Pclose(p);
    H5Sclose(s);
}

void fx_attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    FX_CHECK(a >= 0 && H5Awrite(a, t, &value) >= 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

void fx_attr_fixed_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value));
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    FX_CHECK(a >= 0 && H5Awrite(a, t, value) >= 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

void fx_attr_int(hid_t obj, const char *name, int64_t value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    FX_CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0);
    H5Aclose(a);
    H5Sclose(s);
}

void fx_replace_attr_str(hid_t obj, const char *name, const char *value)
{
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    fx_attr_str(obj, name, value);
}

void fx_replace_attr_int(hid_t obj, const char *name, int64_t value)
{
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    fx_attr_int(obj, name, value);
}

static void write_layer(hid_t f, int i, int n_in, int n_out, const char *act, float base)
{
    char name[32];
    snprintf(name, sizeof name, "layers/%d", i);
    hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    FX_CHECK(g >= 0);
    fx_attr_str(g, "activation", act);
    float W[64], b[16];
    for (int k = 0; k < n_in * n_out; k++)
        W[k] = base + 0.01f * (float)k;
    for (int k = 0; k < n_out; k++)
        b[k] = -base + 0.1f * (float)k;
    hsize_t wd[2] = {(hsize_t)n_in, (hsize_t)n_out}, bd[1] = {(hsize_t)n_out};
    fx_write(g, "W", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, wd, W);
    fx_write(g, "b", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, bd, b);
    H5Gclose(g);
}

void fx_write_binary_model(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    FX_CHECK(f >= 0);
    fx_attr_str(f, "format", "stagegate-model");
    fx_attr_int(f, "format_version", 1);
    fx_attr_str(f, "task", "binary");
    fx_attr_int(f, "n_classes", 2);
    fx_attr_int(f, "n_features", 4);
    fx_attr_str(f, "link", "sigmoid");
    fx_attr_fixed_str(f, "estimator", "Pipeline(StandardScaler, MLPClassifier)");
    hid_t g = H5Gcreate2(f, "scaler", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double mean[4] = {0.5, -1.0, 2.0, 0.0}, scale[4] = {1.0, 2.0, 0.5, 4.0};
    hsize_t d4[1] = {4};
    fx_write(g, "mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d4, mean);
    fx_write(g, "scale", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, d4, scale);
    H5Gclose(g);
    g = H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    write_layer(f, 0, 4, 3, "relu", 0.25f);
    write_layer(f, 1, 3, 1, "identity", -0.5f);
    H5Fclose(f);
}

hid_t fx_open_rw(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    FX_CHECK(f >= 0);
    return f;
}

void fx_truncate(const char *path, double fraction)
{
    struct stat st;
    FX_CHECK(stat(path, &st) == 0);
    FX_CHECK(truncate(path, (off_t)((double)st.st_size * fraction)) == 0);
}

void fx_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    FX_CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}
