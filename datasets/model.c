/* Model HDF5 loader (layout in docs/formats.md): every field is checked before use. */
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* Generous caps that keep every size computation far from overflow. */
#define MAX_WIDTH (1 << 24)
#define MAX_MODEL_FILE ((size_t)8 << 30)

const char *sg_task_name(sg_task t)
{
    switch (t) {
    case SG_TASK_BINARY:
        return "binary";
    case SG_TASK_MULTICLASS:
        return "multiclass";
    case SG_TASK_REGRESSION:
        return "regression";
    }
    return "unknown";
}

const char *sg_activation_name(sg_activation a)
{
    switch (a) {
    case SG_ACT_IDENTITY:
        return "identity";
    case SG_ACT_RELU:
        return "relu";
    case SG_ACT_TANH:
        return "tanh";
    case SG_ACT_LOGISTIC:
        return "logistic";
    }
    return "unknown";
}

const char *sg_link_name(sg_link l)
{
    switch (l) {
    case SG_LINK_IDENTITY:
        return "identity";
    case SG_LINK_SIGMOID:
        return "sigmoid";
    case SG_LINK_SOFTMAX:
        return "softmax";
    }
    return "unknown";
}

static int parse_task(const char *s, sg_task *t)
{
    for (int i = 0; i <= SG_TASK_REGRESSION; i++)
        if (strcmp(s, sg_task_name((sg_task)i)) == 0) return *t = (sg_task)i, 0;
    return -1;
}

static int parse_activation(const char *s, sg_activation *a)
{
    for (int i = 0; i <= SG_ACT_LOGISTIC; i++)
        if (strcmp(s, sg_activation_name((sg_activation)i)) == 0) return *a = (sg_activation)i, 0;
    return -1;
}

static int parse_link(const char *s, sg_link *l)
{
    for (int i = 0; i <= SG_LINK_SOFTMAX; i++)
        if (strcmp(s, sg_link_name((sg_link)i)) == 0) return *l = (sg_link)i, 0;
    return -1;
}

int sg_model_output_width(const sg_model *m)
{
    return m->task == SG_TASK_REGRESSION ? 1 : m->n_classes;
}

int sg_model_max_width(const sg_model *m)
{
    int w = m->n_features;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_out > w) w = m->layers[i].n_out;
    if (m->n_classes > w) w = m->n_classes;
    return w;
}

void sg_model_free(sg_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int i = 0; i < m->n_layers; i++) {
            sg_free_aligned(m->layers[i].W);
            sg_free_aligned(m->layers[i].b);
        }
        free(m->layers);
    }
    sg_free_aligned(m->mean);
    sg_free_aligned(m->scale);
    sg_tree_ensemble_free(m->trees);
    sg_f64_cuts_free(m->f64_cuts);
    sg_onnx_plan_free(m->onnx);
    free(m->classes);
    free(m);
}

bool sg_classes_from(const int64_t *v, size_t n, int k, int32_t **out, char *why, size_t len)
{
    *out = NULL;
    if (n != (size_t)k) {
        snprintf(why, len, "holds %zu values for %d classes", n, k);
        return false;
    }
    bool identity = true;
    for (size_t j = 0; j < n; j++) {
        if (v[j] < INT32_MIN || v[j] > INT32_MAX) {
            /* HDF5 saturates a uint64 above INT64_MAX, so that value means "at least". */
            snprintf(why, len, "[%zu] is %s%lld, outside int32", j, v[j] == INT64_MAX ? ">= " : "",
                     (long long)v[j]);
            return false;
        }
        if (j > 0 && v[j] <= v[j - 1]) {
            snprintf(why, len,
                     "[%zu] is %lld, not above [%zu] = %lld (the classes must be "
                     "distinct and in increasing order, as scikit-learn's classes_ are)",
                     j, (long long)v[j], j - 1, (long long)v[j - 1]);
            return false;
        }
        identity &= v[j] == (int64_t)j;
    }
    if (identity) return true;
    int32_t *c = malloc(n * sizeof *c);
    if (!c) {
        snprintf(why, len, "out of memory");
        return false;
    }
    for (size_t j = 0; j < n; j++)
        c[j] = (int32_t)v[j];
    *out = c;
    return true;
}

int sg_class_index(const sg_model *m, int64_t v)
{
    if (!m->classes) return v >= 0 && v < m->n_classes ? (int)v : -1;
    int lo = 0, hi = m->n_classes - 1;
    while (lo <= hi) {
        const int mid = lo + (hi - lo) / 2;
        if (m->classes[mid] == v) return mid;
        if (m->classes[mid] < v)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

bool sg_classes_equal(const sg_model *a, const sg_model *b)
{
    if (a->n_classes != b->n_classes) return false;
    for (int j = 0; j < a->n_classes; j++)
        if ((a->classes ? a->classes[j] : j) != (b->classes ? b->classes[j] : j)) return false;
    return true;
}

void sg_classes_text(const int32_t *classes, int k, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int j = 0; j < k && at < len; j++) {
        if (k > 8 && j == 3) {
            at += (size_t)snprintf(buf + at, len - at, ", ...");
            j = k - 2; /* then the last one */
            continue;
        }
        const long long v = classes ? (long long)classes[j] : (long long)j;
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", j ? ", " : "(", v);
    }
    if (at < len) snprintf(buf + at, len - at, ")");
}

/*
 * Reads a float32/float64 dataset of the given rank into a new aligned float
 * buffer, checking dtype, rank, non-empty shape and finiteness of every value.
 * name is a full path such as "/layers/0/W", used in messages.
 */
static sg_status read_params(hid_t file, const char *path, const char *name, int rank, int64_t dims[2],
                       float **out, sg_err *err)
{
    *out = NULL;
    if (!sg_h5_exists(file, name)) return sg_errf(err, SG_EINPUT, "%s: %s is missing", path, name);
    hid_t ds = sg_h5_open_dataset(file, name, H5P_DEFAULT, path, err);
    if (ds < 0) return SG_EINPUT;
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    int rc = SG_OK;
    char tn[64];
    sg_h5_type_name(type, tn, sizeof tn);
    size_t tsize = H5Tget_size(type);
    int r = H5Sget_simple_extent_ndims(space);
    hsize_t hd[2] = {0, 0};
    if (H5Tget_class(type) != H5T_FLOAT || (tsize != 4 && tsize != 8))
        rc = sg_errf(err, SG_EINPUT, "%s: %s has dtype %s, expected float32 or float64", path, name,
                     tn);
    else if (r != rank)
        rc = sg_errf(err, SG_EINPUT, "%s: %s has rank %d, expected %d", path, name, r, rank);
    else {
        H5Sget_simple_extent_dims(space, hd, NULL);
        for (int i = 0; i < rank && rc == SG_OK; i++) {
            if (hd[i] == 0 || hd[i] > MAX_WIDTH)
                rc = sg_errf(err, SG_EINPUT, "%s: %s has dimension %d of size %llu (must be 1..%d)",
                             path, name, i, (unsigned long long)hd[i], MAX_WIDTH);
            dims[i] = (int64_t)hd[i];
        }
    }
    size_t count = rc == SG_OK ? (size_t)hd[0] * (rank == 2 ? (size_t)hd[1] : 1) : 0;
    float *buf = NULL;
    if (rc == SG_OK && !(buf = sg_alloc_aligned(count * sizeof(float))))
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory reading %s", path, name);
    if (rc == SG_OK) rc = sg_h5_read_all(ds, H5T_NATIVE_FLOAT, buf, path, name, err);
    for (size_t i = 0; rc == SG_OK && i < count; i++) {
        /* float64 values beyond float32 range become infinite here and are refused too. */
        if (!isfinite(buf[i])) {
            if (rank == 2)
                rc = sg_errf(err, SG_EINPUT, "%s: %s[%zu,%zu] is not finite (or overflows float32)",
                             path, name, i / (size_t)hd[1], i % (size_t)hd[1]);
            else
                rc = sg_errf(err, SG_EINPUT, "%s: %s[%zu] is not finite (or overflows float32)",
                             path, name, i);
        }
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(ds);
    if (rc != SG_OK)
        sg_free_aligned(buf);
    else
        *out = buf;
    return rc;
}

static int load_header(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    char s[256];
    int64_t v;
    int rc = sg_h5_attr_string(f, "format", s, sizeof s, path, "", err);
    if (rc == 1)
        return sg_errf(err, SG_EINPUT, "%s: attribute format is missing (not a %s file)", path,
                       SG_MODEL_FORMAT_NAME);
    if (rc) return rc;
    if (strcmp(s, SG_MODEL_FORMAT_NAME) != 0)
        return sg_errf(err, SG_EINPUT, "%s: attribute format is \"%s\", expected \"%s\"", path, s,
                       SG_MODEL_FORMAT_NAME);
    rc = sg_h5_attr_int(f, "format_version", &v, path, "", err);
    if (rc == 1) return sg_errf(err, SG_EINPUT, "%s: attribute format_version is missing", path);
    if (rc) return rc;
    if (v < 1 || v > SG_MODEL_FORMAT_VERSION)
        return sg_errf(
            err, SG_EINPUT,
            "%s: attribute format_version is %lld, unsupported (this build reads 1 to %d)", path,
            (long long)v, SG_MODEL_FORMAT_VERSION);
    m->format_version = (int)v;

    rc = sg_h5_attr_string(f, "task", s, sizeof s, path, "", err);
    if (rc == 1) return sg_errf(err, SG_EINPUT, "%s: attribute task is missing", path);
    if (rc) return rc;
    if (parse_task(s, &m->task))
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute task is \"%s\", expected binary, multiclass or regression",
                       path, s);

    rc = sg_h5_attr_int(f, "n_features", &v, path, "", err);
    if (rc == 1) return sg_errf(err, SG_EINPUT, "%s: attribute n_features is missing", path);
    if (rc) return rc;
    if (v < 1 || v > MAX_WIDTH)
        return sg_errf(err, SG_EINPUT, "%s: attribute n_features is %lld (must be 1..%d)", path,
                       (long long)v, MAX_WIDTH);
    m->n_features = (int)v;

    rc = sg_h5_attr_int(f, "n_classes", &v, path, "", err);
    if (rc == 1 && m->task != SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINPUT, "%s: attribute n_classes is missing", path);
    if (rc < 0) return rc;
    if (rc == 1) v = 0;
    if (m->task == SG_TASK_BINARY && v != 2)
        return sg_errf(err, SG_EINPUT, "%s: attribute n_classes is %lld, a binary model has 2",
                       path, (long long)v);
    if (m->task == SG_TASK_MULTICLASS && (v < 2 || v > SG_MAX_CLASSES))
        return sg_errf(err, SG_EINPUT, "%s: attribute n_classes is %lld (must be 2..%d)", path,
                       (long long)v, SG_MAX_CLASSES);
    if (m->task == SG_TASK_REGRESSION && v != 0)
        return sg_errf(err, SG_EINPUT, "%s: attribute n_classes is %lld, a regression model has 0",
                       path, (long long)v);
    m->n_classes = (int)v;

    rc = sg_h5_attr_string(f, "estimator", m->estimator, sizeof m->estimator, path, "", err);
    if (rc == 1) snprintf(m->estimator, sizeof m->estimator, "unknown");
    return rc < 0 ? rc : SG_OK;
}

/* A classifier's /classes (format 3): its class values, when they are not 0..k-1. */
static sg_status load_classes(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    if (!sg_h5_exists(f, "classes")) return SG_OK;
    if (m->format_version < 3)
        return sg_errf(err, SG_EINPUT,
                       "%s: /classes needs format_version 3 (the file says %d: a build that "
                       "ignores /classes would read the labels as 0..k-1)",
                       path, m->format_version);
    if (m->task == SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINPUT, "%s: /classes is given for a regression model", path);
    hid_t ds = sg_h5_open_dataset(f, "/classes", H5P_DEFAULT, path, err);
    if (ds < 0) return SG_EINPUT;
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    sg_status rc = SG_OK;
    char tn[64];
    sg_h5_type_name(type, tn, sizeof tn);
    hsize_t n = 0;
    if (H5Tget_class(type) != H5T_INTEGER)
        rc = sg_errf(err, SG_EINPUT, "%s: /classes has dtype %s, expected an integer type", path,
                     tn);
    else if (H5Sget_simple_extent_ndims(space) != 1)
        rc = sg_errf(err, SG_EINPUT, "%s: /classes must have rank 1", path);
    else if (H5Sget_simple_extent_dims(space, &n, NULL) < 0 || n != (hsize_t)m->n_classes)
        rc = sg_errf(err, SG_EINPUT, "%s: /classes has %llu values but n_classes is %d", path,
                     (unsigned long long)n, m->n_classes);
    int64_t *v = rc ? NULL : malloc((size_t)n * sizeof *v);
    if (!rc && !v) rc = sg_errf(err, SG_ENOMEM, "%s: out of memory reading /classes", path);
    if (!rc) rc = sg_h5_read_all(ds, H5T_NATIVE_INT64, v, path, "/classes", err);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(ds);
    char why[160];
    if (!rc && !sg_classes_from(v, (size_t)n, m->n_classes, &m->classes, why, sizeof why))
        rc = sg_errf(err, strcmp(why, "out of memory") ? SG_EINPUT : SG_ENOMEM, "%s: /classes%s%s",
                     path, why[0] == '[' ? "" : " ", why);
    free(v);
    return rc;
}

/* The dense layout's output link. */
static sg_status load_link(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    char s[256];
    int rc = sg_h5_attr_string(f, "link", s, sizeof s, path, "", err);
    if (rc == 1) return sg_errf(err, SG_EINPUT, "%s: attribute link is missing", path);
    if (rc) return rc;
    if (parse_link(s, &m->link))
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute link is \"%s\", expected softmax, sigmoid or identity", path,
                       s);
    static const sg_link want[] = {SG_LINK_SIGMOID, SG_LINK_SOFTMAX, SG_LINK_IDENTITY};
    if (m->link != want[m->task])
        return sg_errf(err, SG_EINPUT, "%s: attribute link is %s, but a %s model needs %s", path,
                       sg_link_name(m->link), sg_task_name(m->task), sg_link_name(want[m->task]));
    return SG_OK;
}

/* The layout a file holds: 1 for the tree-ensemble layout, 0 for dense (the attribute's
   absence means dense, as in files written before tree ensembles existed). */
static sg_status load_kind(hid_t f, const char *path, int *trees, sg_err *err)
{
    char s[64];
    int rc = sg_h5_attr_string(f, "model_kind", s, sizeof s, path, "", err);
    *trees = 0;
    if (rc == 1) return SG_OK;
    if (rc) return rc;
    if (strcmp(s, "tree_ensemble") == 0)
        *trees = 1;
    else if (strcmp(s, "dense") != 0)
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute model_kind is \"%s\", expected dense or tree_ensemble", path,
                       s);
    return SG_OK;
}

static sg_status load_scaler(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    if (!sg_h5_exists(f, "scaler")) return SG_OK;
    int64_t dims[2];
    int rc = read_params(f, path, "/scaler/mean", 1, dims, &m->mean, err);
    if (rc) return rc;
    if (dims[0] != m->n_features)
        return sg_errf(err, SG_EINPUT, "%s: /scaler/mean has %lld values but n_features is %d",
                       path, (long long)dims[0], m->n_features);
    rc = read_params(f, path, "/scaler/scale", 1, dims, &m->scale, err);
    if (rc) return rc;
    if (dims[0] != m->n_features)
        return sg_errf(err, SG_EINPUT, "%s: /scaler/scale has %lld values but n_features is %d",
                       path, (long long)dims[0], m->n_features);
    for (int i = 0; i < m->n_features; i++)
        if (!(m->scale[i] > 0.0f))
            return sg_errf(err, SG_EINPUT, "%s: /scaler/scale[%d] is %g, must be > 0", path, i,
                           (double)m->scale[i]);
    m->param_bytes += 2 * (size_t)m->n_features * sizeof(float);
    return SG_OK;
}

/*
 * A float64 /scaler/mean is held as float32 for the kernels, which compute (x - mean32) /
 * scale. Near a large mean float32 is coarse (a step of 0.0625 at 1e6): a sensor reading
 * 1,000,000.02 ± 0.5 was standardised 0.04 off for every row, and a logistic regression's
 * p1 of 8.7e-6 read 0.854. What float32 lost, (mean64 - mean32) / scale per feature, is
 * linear, so it goes into the first layer's bias, in double: b - Wᵀ·residual. x - mean32 is
 * exact for x near the mean (Sterbenz), so the first layer sees the float64 standardisation
 * up to float32 rounding of its own sums.
 */
static sg_status fold_scaler_residual(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    if (!m->mean || m->n_layers < 1) return SG_OK;
    hid_t ds = sg_h5_open_dataset(f, "/scaler/mean", H5P_DEFAULT, path, err);
    if (ds < 0) return SG_EINPUT;
    hid_t type = H5Dget_type(ds);
    bool wide = H5Tget_size(type) == 8;
    H5Tclose(type);
    const int d = m->n_features;
    double *mean = wide ? malloc((size_t)d * sizeof *mean) : NULL;
    sg_status rc = SG_OK;
    if (wide && !mean) rc = sg_errf(err, SG_ENOMEM, "%s: out of memory reading /scaler/mean", path);
    if (rc == SG_OK && wide)
        rc = sg_h5_read_all(ds, H5T_NATIVE_DOUBLE, mean, path, "/scaler/mean", err);
    H5Dclose(ds);
    sg_layer *L = &m->layers[0];
    bool any = false;
    for (int i = 0; rc == SG_OK && wide && i < d; i++) {
        mean[i] = (mean[i] - (double)m->mean[i]) / (double)m->scale[i];
        any |= mean[i] != 0;
    }
    for (int j = 0; rc == SG_OK && any && j < L->n_out; j++) {
        double b = L->b[j];
        for (int i = 0; i < d; i++)
            b -= (double)L->W[(size_t)i * (size_t)L->n_out + (size_t)j] * mean[i];
        if (!isfinite((float)b))
            rc = sg_errf(err, SG_EINPUT,
                         "%s: /layers/0/b[%d] with /scaler/mean's float64 residual is not finite "
                         "in float32",
                         path, j);
        else
            L->b[j] = (float)b;
    }
    free(mean);
    return rc;
}

static sg_status load_layer(hid_t f, const char *path, sg_model *m, int i, sg_err *err)
{
    char name[64];
    sg_layer *L = &m->layers[i];
    snprintf(name, sizeof name, "/layers/%d", i);
    if (!sg_h5_exists(f, name) || H5Oexists_by_name(f, name, H5P_DEFAULT) <= 0)
        return sg_errf(err, SG_EINPUT, "%s: %s is missing (layers must be named 0..%d)", path, name,
                       m->n_layers - 1);
    if (sg_h5_check_links(f, name, path, err) != SG_OK) return SG_EINPUT;
    hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
    if (g < 0) return sg_errf(err, SG_EINPUT, "%s: %s is not a group", path, name);
    char act[64], where[80];
    snprintf(where, sizeof where, "%s/", name);
    int rc = sg_h5_attr_string(g, "activation", act, sizeof act, path, where, err);
    H5Gclose(g);
    if (rc == 1)
        return sg_errf(err, SG_EINPUT, "%s: attribute %sactivation is missing", path, where);
    if (rc) return rc;
    if (parse_activation(act, &L->act))
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute %sactivation is \"%s\", expected identity, relu, tanh or "
                       "logistic",
                       path, where, act);

    char wname[80], bname[80];
    snprintf(wname, sizeof wname, "%s/W", name);
    snprintf(bname, sizeof bname, "%s/b", name);
    int64_t wd[2], bd[2];
    if ((rc = read_params(f, path, wname, 2, wd, &L->W, err))) return rc;
    if ((rc = read_params(f, path, bname, 1, bd, &L->b, err))) return rc;
    L->n_in = (int)wd[0];
    L->n_out = (int)wd[1];
    if (bd[0] != wd[1])
        return sg_errf(err, SG_EINPUT, "%s: %s has %lld values but %s has %lld outputs", path,
                       bname, (long long)bd[0], wname, (long long)wd[1]);
    int want_in = i == 0 ? m->n_features : m->layers[i - 1].n_out;
    if (L->n_in != want_in) {
        if (i == 0)
            return sg_errf(err, SG_EINPUT, "%s: %s has %d input rows but n_features is %d", path,
                           wname, L->n_in, want_in);
        return sg_errf(err, SG_EINPUT, "%s: %s has %d input rows but /layers/%d/W has %d outputs",
                       path, wname, L->n_in, i - 1, want_in);
    }
    m->param_bytes += ((size_t)L->n_in * (size_t)L->n_out + (size_t)L->n_out) * sizeof(float);
    return SG_OK;
}

/* The first member of /layers whose name is not a layer index below the layer count. */
typedef struct {
    hsize_t n;
    char bad[64];
} layer_names;

static herr_t check_layer_name(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    layer_names *ln = arg;
    char *end = NULL;
    unsigned long long i = strtoull(name, &end, 10);
    /* One spelling per index: digits only, no sign, no leading zero. */
    if (name[0] < '0' || name[0] > '9' || *end || (name[0] == '0' && name[1]) || i >= ln->n) {
        snprintf(ln->bad, sizeof ln->bad, "%.60s", name);
        return 1; /* stop */
    }
    return 0;
}

static sg_status load_layers(hid_t f, const char *path, sg_model *m, sg_err *err)
{
    if (!sg_h5_exists(f, "layers")) return sg_errf(err, SG_EINPUT, "%s: /layers is missing", path);
    H5G_info_t info;
    if (sg_h5_check_links(f, "layers", path, err) != SG_OK) return SG_EINPUT;
    hid_t g = H5Gopen2(f, "layers", H5P_DEFAULT);
    if (g < 0 || H5Gget_info(g, &info) < 0) {
        if (g >= 0) H5Gclose(g);
        return sg_errf(err, SG_EINPUT, "%s: /layers is not a group", path);
    }
    layer_names ln = {.n = info.nlinks, .bad = ""};
    (void)H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, check_layer_name, &ln);
    H5Gclose(g);
    if (ln.bad[0])
        return sg_errf(err, SG_EINPUT,
                       "%s: /layers/%s is not a layer: the %llu members of /layers must be "
                       "named 0..%llu",
                       path, ln.bad, (unsigned long long)info.nlinks,
                       (unsigned long long)info.nlinks - 1);
    if (info.nlinks < 1 || info.nlinks > SG_MAX_LAYERS)
        return sg_errf(err, SG_EINPUT, "%s: /layers holds %llu layers (must be 1..%d)", path,
                       (unsigned long long)info.nlinks, SG_MAX_LAYERS);
    m->n_layers = (int)info.nlinks;
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < m->n_layers; i++) {
        int rc = load_layer(f, path, m, i, err);
        if (rc) return rc;
    }
    const sg_layer *last = &m->layers[m->n_layers - 1];
    if (last->act != SG_ACT_IDENTITY)
        return sg_errf(err, SG_EINPUT,
                       "%s: attribute /layers/%d/activation is %s, but the last layer must be "
                       "identity (the output link follows it)",
                       path, m->n_layers - 1, sg_activation_name(last->act));
    int want = m->task == SG_TASK_MULTICLASS ? m->n_classes : 1;
    if (last->n_out != want)
        return sg_errf(err, SG_EINPUT, "%s: /layers/%d/W has %d outputs, but a %s model%s needs %d",
                       path, m->n_layers - 1, last->n_out, sg_task_name(m->task),
                       m->task == SG_TASK_MULTICLASS ? " with n_classes outputs" : "", want);
    m->n_outputs = last->n_out;
    return SG_OK;
}

sg_status sg_model_load(const char *path, sg_model **out, sg_err *err)
{
    *out = NULL;
    /*
     * Read the file once into memory, hash those bytes and parse the same bytes,
     * so the digest in a report names exactly what was evaluated even if the file
     * is replaced meanwhile.
     */
    uint8_t *bytes = NULL;
    size_t len = 0;
    sg_status rc = sg_read_file(path, MAX_MODEL_FILE, &bytes, &len, err);
    if (rc) return rc;
    rc = sg_model_load_image(path, bytes, len, out, err);
    if (rc == SG_OK) sg_sha256(bytes, len, (*out)->sha256);
    free(bytes);
    return rc;
}

/* The parse itself; the caller holds the HDF5 lock. */
static sg_status parse_image(sg_model *m, const char *path, const uint8_t *bytes, size_t len,
                             sg_err *err)
{
    sg_status rc = SG_OK;
    hid_t f = sg_h5_open_image(path, bytes, len, err);
    if (f < 0) rc = SG_EINPUT;
    int trees = 0;
    if (rc == SG_OK) rc = load_header(f, path, m, err);
    if (rc == SG_OK) rc = load_kind(f, path, &trees, err);
    if (rc == SG_OK) rc = load_classes(f, path, m, err);
    if (rc == SG_OK && trees) rc = sg_model_h5_trees(f, path, m, err);
    if (rc == SG_OK && !trees) rc = load_link(f, path, m, err);
    if (rc == SG_OK && !trees) rc = load_scaler(f, path, m, err);
    if (rc == SG_OK && !trees) rc = load_layers(f, path, m, err);
    if (rc == SG_OK && !trees) rc = fold_scaler_residual(f, path, m, err);
    if (f >= 0) H5Fclose(f);
    return rc;
}

typedef struct {
    const char *path;
    const uint8_t *bytes;
    size_t len;
} image_args;

/* The dry run in the sandboxed child (h5sandbox.c): the whole parse, result discarded. */
static sg_status parse_in_child(void *arg, sg_err *err)
{
    const image_args *a = arg;
    sg_model *m = calloc(1, sizeof *m);
    if (!m) return sg_errf(err, SG_ENOMEM, "%s: out of memory", a->path);
    strcpy(m->path, a->path);
    return parse_image(m, a->path, a->bytes, a->len, err);
}

sg_status sg_model_load_image(const char *path, const uint8_t *bytes, size_t len, sg_model **out,
                              sg_err *err)
{
    *out = NULL;
    sg_model *m = calloc(1, sizeof *m);
    if (!m) return sg_errf(err, SG_ENOMEM, "%s: out of memory", path);
    if (strlen(path) >= sizeof m->path) {
        free(m);
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    }
    strcpy(m->path, path);
    sg_h5_enter();
    image_args a = {path, bytes, len};
    sg_status rc = sg_h5_sandboxed(path, parse_in_child, &a, err);
    if (rc == SG_OK) rc = parse_image(m, path, bytes, len, err);
    sg_h5_leave();
    if (rc != SG_OK) {
        sg_model_free(m);
        return rc;
    }
    *out = m;
    return SG_OK;
}

static float *dup_aligned(const float *src, size_t count)
{
    float *p = sg_alloc_aligned(count * sizeof(float));
    /* The copy is the first touch, so pages land on the calling thread's NUMA node. */
    if (p) memcpy(p, src, count * sizeof(float));
    return p;
}

/* A part's clone failed: its message, which names no file, gets the model's path in front. */
static sg_status clone_failed(sg_err *err, sg_status rc, const char *path)
{
    char reason[sizeof err->msg];
    snprintf(reason, sizeof reason, "%s", err->msg);
    return sg_errf(err, rc, "%s: %s", path, reason);
}

sg_status sg_model_clone(const sg_model *src, sg_model **out, sg_err *err)
{
    *out = NULL;
    sg_model *m = malloc(sizeof *m);
    if (!m) return sg_errf(err, SG_ENOMEM, "%s: out of memory cloning model", src->path);
    *m = *src;
    m->mean = m->scale = NULL;
    m->trees = NULL;
    m->f64_cuts = NULL; /* what reading a float64 /X needs (sg_dataset_use_model), not predict */
    m->onnx = NULL;
    m->layers = NULL;
    m->classes = NULL;
    if (src->classes) {
        if (!(m->classes = malloc((size_t)src->n_classes * sizeof *m->classes))) {
            free(m);
            return sg_errf(err, SG_ENOMEM, "%s: out of memory cloning model", src->path);
        }
        memcpy(m->classes, src->classes, (size_t)src->n_classes * sizeof *m->classes);
    }
    if (src->onnx) {
        int rc = sg_onnx_plan_clone(src->onnx, &m->onnx, err);
        if (rc) {
            sg_model_free(m); /* what it holds so far: the classes */
            return clone_failed(err, rc, src->path);
        }
    }
    if (src->trees) {
        int rc = sg_tree_ensemble_clone(src->trees, &m->trees, err);
        if (rc) {
            sg_model_free(m);
            return clone_failed(err, rc, src->path);
        }
    }
    if (src->n_layers > 0) m->layers = calloc((size_t)src->n_layers, sizeof *m->layers);
    bool ok = m->layers != NULL || src->n_layers == 0;
    if (ok && src->mean) {
        m->mean = dup_aligned(src->mean, (size_t)src->n_features);
        m->scale = dup_aligned(src->scale, (size_t)src->n_features);
        ok = m->mean && m->scale;
    }
    for (int i = 0; ok && i < src->n_layers; i++) {
        const sg_layer *s = &src->layers[i];
        sg_layer *d = &m->layers[i];
        *d = *s;
        d->W = dup_aligned(s->W, (size_t)s->n_in * (size_t)s->n_out);
        d->b = dup_aligned(s->b, (size_t)s->n_out);
        ok = d->W && d->b;
    }
    if (!ok) {
        if (!m->layers) m->n_layers = 0;
        sg_model_free(m);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory cloning model", src->path);
    }
    *out = m;
    return SG_OK;
}
