/*
 * Fuzz targets for the parsers that read outside input: the gate policy, DSSE
 * envelopes (verified against a fixed key, so the envelope and PAE code run on
 * hostile bytes), base64, the registry's search filter and the latency
 * histogram JSON embedded in reports, the runs `compare` reads, and XGBoost JSON models.
 * Each target checks the parser's
 * contract: accept, or reject with a non-empty one-line message.
 */
#include "tests/fuzz/fuzz_targets.h"

#include <openssl/ec.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_internal.h"
#include "stagegate/compare.h"
#include "stagegate/harness.h"
#include "stagegate/keys.h"
#include "stagegate/model_ops.h"
#include "stagegate/policy.h"
#include "stagegate/report.h"

static EVP_PKEY *fuzz_key;

static int verdict(int rc, const sg_err *err)
{
    if (rc == SG_OK) return 0;
    if (!err->msg[0] || strchr(err->msg, '\n')) return -1;
    return 1;
}

static int t_policy(const uint8_t *d, size_t n)
{
    sg_gate_policy p;
    sg_err err = {{0}};
    return verdict(sg_policy_parse((const char *)d, n, "fuzz.json", &p, &err), &err);
}

static int t_envelope(const uint8_t *d, size_t n)
{
    char *type = NULL;
    uint8_t *payload = NULL;
    size_t plen = 0;
    sg_err err = {{0}};
    int rc = sg_dsse_verify(d, n, fuzz_key, &type, &payload, &plen, &err);
    free(type);
    free(payload);
    /* A random input never carries a valid signature by our key. */
    if (rc == SG_OK) return -1;
    return verdict(rc, &err);
}

static int t_report(const uint8_t *d, size_t n)
{
    sg_report_info info;
    sg_err err = {{0}};
    int rc = sg_report_verify(d, n, fuzz_key, NULL, &info, &err);
    sg_report_info_clear(&info);
    if (rc == SG_OK) return -1;
    return verdict(rc, &err);
}

static int t_base64(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, d, n);
    s[n] = '\0';
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = sg_base64_decode(s, &out, &len);
    if (rc == 0) {
        /* Whatever decodes must encode back to something that decodes the same. */
        char *again = sg_base64_encode(out, len);
        uint8_t *out2 = NULL;
        size_t len2 = 0;
        if (!again || sg_base64_decode(again, &out2, &len2) != 0 || len2 != len ||
            (len && memcmp(out, out2, len) != 0))
            rc = -2;
        free(again);
        free(out2);
    }
    free(out);
    free(s);
    return rc == -2 ? -1 : (rc == 0 ? 0 : 1);
}

static int t_filter(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, d, n);
    s[n] = '\0';
    reg_filter f;
    sg_err err = {{0}};
    int rc = reg_filter_parse(s, &f, &err);
    if (rc == SG_OK) (void)reg_filter_match(&f, "fraud-detector", "Production", NULL);
    free(s);
    return verdict(rc, &err);
}

static int t_histogram(const uint8_t *d, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)d, n, 0, &je);
    if (!j) return 1;
    sg_latency_histogram *h = NULL;
    sg_err err = {{0}};
    int rc = sg_histogram_from_json(j, &h, &err);
    if (rc == SG_OK) {
        (void)sg_histogram_count(h);
        json_t *back = sg_histogram_json(h);
        json_decref(back);
        sg_histogram_free(h);
    }
    json_decref(j);
    return verdict(rc, &err);
}

/* A run for `compare` (bench JSON with repetitions), then compared with itself, so the
 * repetition verdicts run on whatever the loader accepted. */
static int t_compare_run(const uint8_t *d, size_t n)
{
    sg_compare_run r;
    sg_err err = {{0}};
    int rc = sg_compare_load_buffer("fuzz.json", d, n, NULL, &r, &err);
    if (rc == SG_OK) {
        sg_compare_options o;
        sg_compare_options_init(&o);
        o.force = true; /* a fuzzed run rarely carries a machine record */
        json_t *out = NULL;
        sg_err e2 = {{0}};
        int rc2 = sg_compare_runs(&r, &r, &o, &out, &e2);
        json_decref(out);
        sg_compare_run_clear(&r);
        return rc2 == SG_OK ? 0 : verdict(rc2, &e2);
    }
    return verdict(rc, &err);
}

/*
 * XGBoost JSON models: whatever loads must predict without faults on rows with
 * NaN, and every kernel variant this CPU runs must give the scalar bits.
 */
static int t_xgboost(const uint8_t *d, size_t n)
{
    sg_model *m = NULL;
    sg_err err = {{0}};
    int rc = sg_model_from_xgboost_json("fuzz.json", (const char *)d, n, &m, &err);
    if (rc != SG_OK) return verdict(rc, &err);
    m->ops = &sg_model_ops_trees;
    enum { ROWS = 37 };
    const int w = sg_model_output_width(m), f = m->n_features;
    float *X = malloc((size_t)ROWS * (size_t)f * sizeof(float));
    float *ref = malloc((size_t)ROWS * (size_t)w * sizeof(float));
    float *got = malloc((size_t)ROWS * (size_t)w * sizeof(float));
    void *scratch = NULL;
    int verdict_v = 0;
    if (X && ref && got && sg_model_scratch_new(m, ROWS, &scratch, &err) == SG_OK) {
        for (size_t i = 0; i < (size_t)ROWS * (size_t)f; i++)
            X[i] = i % 7 == 3 ? NAN : (float)((int)(i * 2654435761u % 2001) - 1000) / 250.0f;
        sg_model_predict_batch(m, sg_kernels_variant(SG_ISA_SCALAR), X, ROWS, ref, scratch);
        for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
            const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
            if (!k) continue;
            if (isa > 0) sg_model_predict_batch(m, k, X, ROWS, got, scratch);
            if (isa > 0 && memcmp(ref, got, (size_t)ROWS * (size_t)w * sizeof(float)) != 0)
                verdict_v = -1;
            for (int r = 0; r < ROWS; r++) {
                sg_model_predict_one(m, k, X + (size_t)r * (size_t)f, got, scratch, NULL, NULL);
                if (memcmp(ref + (size_t)r * (size_t)w, got, (size_t)w * sizeof(float)) != 0)
                    verdict_v = -1;
            }
        }
    }
    sg_model_scratch_free(m, scratch);
    free(X);
    free(ref);
    free(got);
    sg_model_free(m);
    return verdict_v;
}

static const char *const policy_seeds[] = {
    "{\"metrics\":{\"accuracy\":{\"threshold\":0.85},\"f1\":{\"max_relative_regression\":0.05},"
    "\"roc_auc\":{\"threshold\":0.9,\"min_absolute_change\":0.0}},"
    "\"latency\":{\"scenario\":\"single-stream\",\"percentile\":99,\"max_ms\":50},"
    "\"memory\":{\"max_rss_mb\":512,\"max_model_mb\":64},\"shadow\":{\"min_agreement\":0.9}}",
    "{\"metrics\":{\"log_loss\":{\"threshold\":0.5,\"greater_is_better\":false}}}", "{}", NULL};
static const char *const envelope_seeds[] = {
    "{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\","
    "\"signatures\":[{\"keyid\":\"\",\"sig\":\"MEUCIQ==\"}]}",
    "{\"payload\":\"\",\"payloadType\":\"\",\"signatures\":[]}", NULL};
static const char *const base64_seeds[] = {"", "Zg==", "Zm9vYmFy", "Zm9v-_==", "////", NULL};
static const char *const filter_seeds[] = {
    "name = 'fraud-detector' AND tags.team = 'risk' AND stage = 'Production'", "name LIKE 'f%'",
    "name != 'x'", "tags.`a b` = 'c'", NULL};
static const char *const histogram_seeds[] = {
    "{\"unit\":\"ns\",\"significant_digits\":3,\"sub_bucket_count\":2048,\"count\":3,"
    "\"buckets\":[[1000,1],[2000,2],[9223372036854775807,9223372036854775807]]}",
    "{\"sub_bucket_count\":2048,\"buckets\":[[5,1],[4096,2]]}",
    "{\"sub_bucket_count\":2048,\"buckets\":[[1000,9223372036854775807],[2000,9223372036854775807]]"
    "}",
    NULL};

static const char *const compare_run_seeds[] = {
    "{\"scenario\":\"single-stream\",\"latency_ns\":{\"p50\":1000,\"p90\":1200,\"p99\":1500,"
    "\"p999\":3000},\"queries\":2000,\"repetition_count\":2,\"repetitions\":[{\"queries\":1000,"
    "\"latency_ns\":{\"p50\":1000,\"p90\":1200,\"p99\":1500,\"p999\":3000},\"histogram\":{"
    "\"buckets\":[[1000,600],[1500,400]]},\"noise\":{\"noisy\":true}},{\"queries\":1000,"
    "\"latency_ns\":{\"p50\":1010,\"p90\":1190,\"p99\":1490,\"p999\":2900}}],"
    "\"histogram\":{\"buckets\":[[1000,1200],[1500,800]]}}",
    "{\"latency_ns\":{\"p50\":NaN},\"repetitions\":[]}", NULL};

static const char *const xgboost_seeds[] = {
    "{\"learner\":{\"feature_names\":[],\"feature_types\":[],\"gradient_booster\":{\"model\":"
    "{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\",\"num_trees\":\"2\",\"size_leaf_vec"
    "tor\":\"0\"},\"tree_info\":[0,0],\"trees\":[{\"default_left\":[1,0,0],\"id\":0,\"left_ch"
    "ildren\":[1,-1,-1],\"right_children\":[2,-1,-1],\"split_conditions\":[-0.0018,-0.5782,0."
    "5755],\"split_indices\":[0,0,0],\"split_type\":[0,0,0],\"tree_param\":{\"num_deleted\":\""
    "0\",\"num_feature\":\"3\",\"num_nodes\":\"3\",\"size_leaf_vector\":\"0\"}},{\"default_le"
    "ft\":[1,0,0],\"id\":1,\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],\"split_c"
    "onditions\":[-0.0018,-0.4498,0.448],\"split_indices\":[0,0,0],\"split_type\":[0,0,0],\"t"
    "ree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"3\",\"size_leaf"
    "_vector\":\"0\"}}]},\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\"5E-1\""
    ",\"boost_from_average\":\"1\",\"num_class\":\"0\",\"num_feature\":\"3\",\"num_target\":\""
    "1\"},\"objective\":{\"name\":\"binary:logistic\",\"reg_loss_param\":{\"scale_pos_weight\""
    ":\"1\"}}},\"version\":[1,7,4]}",
    "{\"learner\":{\"feature_names\":[],\"feature_types\":[],\"gradient_booster\":{\"gbtree\""
    ":{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\",\"num_trees\":\"6\",\"s"
    "ize_leaf_vector\":\"0\"},\"tree_info\":[0,1,2,0,1,2],\"trees\":[{\"default_left\":[1,1,0"
    ",0,0],\"id\":0,\"left_children\":[1,3,-1,-1,-1],\"right_children\":[2,4,-1,-1,-1],\"spli"
    "t_conditions\":[-0.0188,0.0144,-0.22,0.4306,-0.2153],\"split_indices\":[2,0,0,0,0],\"spl"
    "it_type\":[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_"
    "nodes\":\"5\",\"size_leaf_vector\":\"0\"}},{\"default_left\":[1,1,0,0,0],\"id\":1,\"left"
    "_children\":[1,3,-1,-1,-1],\"right_children\":[2,4,-1,-1,-1],\"split_conditions\":[1.915"
    "3,-2.2268,-0.1636,-0.0621,0.1588],\"split_indices\":[1,0,0,0,0],\"split_type\":[0,0,0,0,"
    "0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\",\"siz"
    "e_leaf_vector\":\"0\"}},{\"default_left\":[1,0,1,0,0],\"id\":2,\"left_children\":[1,-1,3"
    ",-1,-1],\"right_children\":[2,-1,4,-1,-1],\"split_conditions\":[0.0655,-0.2204,-0.0102,-"
    "0.2157,0.4266],\"split_indices\":[2,0,0,0,0],\"split_type\":[0,0,0,0,0],\"tree_param\":{"
    "\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\",\"size_leaf_vector\":\"0"
    "\"}},{\"default_left\":[1,1,0,0,0],\"id\":3,\"left_children\":[1,3,-1,-1,-1],\"right_chi"
    "ldren\":[2,4,-1,-1,-1],\"split_conditions\":[-0.0188,0.0144,-0.2005,0.3427,-0.1958],\"sp"
    "lit_indices\":[2,0,0,0,0],\"split_type\":[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0"
    "\",\"num_feature\":\"3\",\"num_nodes\":\"5\",\"size_leaf_vector\":\"0\"}},{\"default_lef"
    "t\":[1,1,0,0,0],\"id\":4,\"left_children\":[1,3,-1,-1,-1],\"right_children\":[2,4,-1,-1,"
    "-1],\"split_conditions\":[1.9153,0.9323,-0.1425,0.1042,0.2213],\"split_indices\":[1,1,0,"
    "0,0],\"split_type\":[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\""
    "3\",\"num_nodes\":\"5\",\"size_leaf_vector\":\"0\"}},{\"default_left\":[1,0,1,0,0],\"id\""
    ":5,\"left_children\":[1,-1,3,-1,-1],\"right_children\":[2,-1,4,-1,-1],\"split_conditions"
    "\":[0.0655,-0.2127,-0.0102,-0.2168,0.4219],\"split_indices\":[2,0,0,0,0],\"split_type\":"
    "[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\""
    "5\",\"size_leaf_vector\":\"0\"}}]},\"name\":\"gbtree\"},\"name\":\"dart\",\"weight_drop\""
    ":[1.0,1.0,0.9090909,0.9090909,0.9090909,0.9090909]},\"learner_model_param\":{\"base_scor"
    "e\":\"5E-1\",\"boost_from_average\":\"1\",\"num_class\":\"3\",\"num_feature\":\"3\",\"nu"
    "m_target\":\"1\"},\"objective\":{\"name\":\"multi:softprob\",\"softmax_multiclass_param\""
    ":{\"num_class\":\"3\"}}},\"version\":[1,7,4]}",
    "{\"learner\":{\"feature_names\":[],\"feature_types\":[],\"gradient_booster\":{\"model\":"
    "{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\",\"num_trees\":\"1\",\"size_leaf_vec"
    "tor\":\"0\"},\"tree_info\":[0],\"trees\":[{\"default_left\":[1,0,0],\"id\":0,\"left_chil"
    "dren\":[1,-1,-1],\"right_children\":[2,-1,-1],\"split_conditions\":[-0.0362,-0.3983,0.07"
    "79],\"split_indices\":[0,0,0],\"split_type\":[0,0,0],\"tree_param\":{\"num_deleted\":\"0"
    "\",\"num_feature\":\"3\",\"num_nodes\":\"3\",\"size_leaf_vector\":\"0\"}}]},\"name\":\"g"
    "btree\"},\"learner_model_param\":{\"base_score\":\"5E-1\",\"boost_from_average\":\"1\",\""
    "num_class\":\"0\",\"num_feature\":\"3\",\"num_target\":\"1\"},\"objective\":{\"name\":\""
    "reg:squarederror\",\"reg_loss_param\":{\"scale_pos_weight\":\"1\"}}},\"version\":[1,7,4]"
    "}",
    NULL};

const sg_fuzz_target sg_fuzz_targets[] = {
    {"compare-run", t_compare_run, compare_run_seeds},
    {"policy", t_policy, policy_seeds},
    {"envelope", t_envelope, envelope_seeds},
    {"report", t_report, envelope_seeds},
    {"base64", t_base64, base64_seeds},
    {"filter", t_filter, filter_seeds},
    {"histogram", t_histogram, histogram_seeds},
    {"xgboost", t_xgboost, xgboost_seeds},
};
const int sg_fuzz_target_count = (int)(sizeof sg_fuzz_targets / sizeof sg_fuzz_targets[0]);

int sg_fuzz_setup(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) <= 0 ||
        EVP_PKEY_keygen(ctx, &fuzz_key) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return -1;
    }
    EVP_PKEY_CTX_free(ctx);
    return 0;
}
