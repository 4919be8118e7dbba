/*
 * Fuzz targets for the parsers that read outside input: the gate policy, DSSE
 * envelopes (verified against a fixed key, so the envelope and PAE code run on
 * hostile bytes), base64, the registry's search filter and the latency
 * histogram JSON embedded in reports, the runs `compare` reads, XGBoost JSON models and
 * ONNX models.
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
    const reg_filter_row row = {"fraud-detector", "Production", "/m.bin", 2, NULL};
    if (rc == SG_OK) (void)reg_filter_match(&f, &row);
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

/*
 * ONNX models: whatever compiles must run batch and batch 1 under every kernel variant
 * without faults. The seeds are a Gemm/Relu/Softmax chain (the dense kernels), a graph
 * with the step plan's operators (ReduceMean, Sub, Pow, Sqrt, Div, Unsqueeze, Flatten,
 * Concat, LeakyRelu, Erf, MatMul), and one with the element-wise ones (Clip with constant
 * bounds, PRelu, a three-input Max, Min, Elu, Softplus, HardSwish); none holds a NUL byte,
 * as the replay driver needs.
 */
static int t_onnx(const uint8_t *d, size_t n)
{
    sg_model *m = NULL;
    sg_err err = {{0}};
    int rc = sg_model_from_onnx("fuzz.onnx", d, n, SG_ONNX_OUTPUT_LOGITS, &m, &err);
    if (rc != SG_OK) return verdict(rc, &err);
    m->ops = &sg_model_ops_onnx;
    enum { ROWS = 5 };
    const int w = sg_model_output_width(m), f = m->n_features;
    void *scratch = NULL;
    /* A tiny file may still describe wide rows; keep each run small. */
    if ((size_t)f * (size_t)w + (size_t)m->onnx->buf_width * (size_t)(m->onnx->n_bufs + 1) >
        (1u << 18)) {
        sg_model_free(m);
        return 0;
    }
    float *X = malloc((size_t)ROWS * (size_t)f * sizeof(float));
    float *out = malloc((size_t)ROWS * (size_t)w * sizeof(float));
    if (X && out && sg_model_scratch_new(m, ROWS, &scratch, &err) == SG_OK) {
        for (size_t i = 0; i < (size_t)ROWS * (size_t)f; i++)
            X[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 250.0f;
        for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
            const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
            if (!k) continue;
            sg_model_predict_batch(m, k, X, ROWS, out, scratch);
            for (int r = 0; r < ROWS; r++)
                sg_model_predict_one(m, k, X + (size_t)r * (size_t)f, out, scratch, NULL, NULL);
        }
    }
    sg_model_scratch_free(m, scratch);
    free(X);
    free(out);
    sg_model_free(m);
    return 0;
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
    "5755],\"split_indices\":[0,0,0],\"split_type\":[0,0,0],\"tree_param\":{\"num_deleted\":"
    "\"0\",\"num_feature\":\"3\",\"num_nodes\":\"3\",\"size_leaf_vector\":\"0\"},\"base_weigh"
    "ts\":[0.5,0.5,0.5],\"loss_changes\":[0.25,0.25,0.25],\"sum_hessian\":[1.5,1.5,1.5],\"par"
    "ents\":[2147483647,0,0]},{\"default_left\":[1,0,0],\"id\":1,\"left_children\":[1,-1,-1],"
    "\"right_children\":[2,-1,-1],\"split_conditions\":[-0.0018,-0.4498,0.448],\"split_indice"
    "s\":[0,0,0],\"split_type\":[0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\""
    ":\"3\",\"num_nodes\":\"3\",\"size_leaf_vector\":\"0\"},\"base_weights\":[0.5,0.5,0.5],\""
    "loss_changes\":[0.25,0.25,0.25],\"sum_hessian\":[1.5,1.5,1.5],\"parents\":[2147483647,0,"
    "0]}]},\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\"5E-1\",\"boost_from"
    "_average\":\"1\",\"num_class\":\"0\",\"num_feature\":\"3\",\"num_target\":\"1\"},\"objec"
    "tive\":{\"name\":\"binary:logistic\",\"reg_loss_param\":{\"scale_pos_weight\":\"1\"}}},"
    "\"version\":[1,7,4]}",
    /* The first seed as UBJSON (what save_model writes to a .ubj), written without a NUL
       byte: zeros as H (decimal text), floats as float32 ('d'). */
    "{U\x07learner{U\x0d" "feature_names[]U\x0d" "feature_types[]U\x10gradient_booster{U\x05m"
    "odel{U\x12gbtree_model_param{U\x11num_parallel_treeSU\x01" "1U\x09num_treesSU\x01" "2U"
    "\x10size_leaf_vectorSU\x01" "0}U\x09tree_info[#U\x02HU\x01" "0HU\x01" "0U\x05trees[#U"
    "\x02{U\x0c" "base_weights[$d#U\x03?\x8c\xcc\xcd?\x8c\xcc\xcd?\x8c\xcc\xcdU\x0closs_chang"
    "es[$d#U\x03?\x8c\xcc\xcd?\x8c\xcc\xcd?\x8c\xcc\xcdU\x0bsum_hessian[$d#U\x03?\x8c\xcc\xcd"
    "?\x8c\xcc\xcd?\x8c\xcc\xcdU\x07parents[#U\x03l\x7f\xff\xff\xffHU\x01" "0HU\x01" "0U\x0c"
    "default_left[#U\x03i\x01HU\x01" "0HU\x01" "0U\x02idHU\x01" "0U\x0dleft_children[#U\x03i"
    "\x01i\xffi\xffU\x0eright_children[#U\x03i\x02i\xffi\xffU\x10split_conditions[$d#U\x03"
    "\xba\xeb\xed\xfa\xbf\x14\x04\xea?\x13S\xf8U\x0dsplit_indices[#U\x03HU\x01" "0HU\x01" "0H"
    "U\x01" "0U\x0asplit_type[#U\x03HU\x01" "0HU\x01" "0HU\x01" "0U\x0atree_param{U\x0bnum_de"
    "letedSU\x01" "0U\x0bnum_featureSU\x01" "3U\x09num_nodesSU\x01" "3U\x10size_leaf_vectorSU"
    "\x01" "0}}{U\x0c" "base_weights[$d#U\x03?\x8c\xcc\xcd?\x8c\xcc\xcd?\x8c\xcc\xcdU\x0closs"
    "_changes[$d#U\x03?\x8c\xcc\xcd?\x8c\xcc\xcd?\x8c\xcc\xcdU\x0bsum_hessian[$d#U\x03?\x8c"
    "\xcc\xcd?\x8c\xcc\xcd?\x8c\xcc\xcdU\x07parents[#U\x03l\x7f\xff\xff\xffHU\x01" "0HU\x01"
    "0U\x0c" "default_left[#U\x03i\x01HU\x01" "0HU\x01" "0U\x02idi\x01U\x0dleft_children[#U"
    "\x03i\x01i\xffi\xffU\x0eright_children[#U\x03i\x02i\xffi\xffU\x10split_conditions[$d#U"
    "\x03\xba\xeb\xed\xfa\xbe\xe6L0>\xe5`BU\x0dsplit_indices[#U\x03HU\x01" "0HU\x01" "0HU\x01"
    "0U\x0asplit_type[#U\x03HU\x01" "0HU\x01" "0HU\x01" "0U\x0atree_param{U\x0bnum_deletedSU"
    "\x01" "0U\x0bnum_featureSU\x01" "3U\x09num_nodesSU\x01" "3U\x10size_leaf_vectorSU\x01"
    "0}}}U\x04nameSU\x06gbtree}U\x13learner_model_param{U\x0a" "base_scoreSU\x04" "5E-1U\x12"
    "boost_from_averageSU\x01" "1U\x09num_classSU\x01" "0U\x0bnum_featureSU\x01" "3U\x0anum_t"
    "argetSU\x01" "1}U\x09objective{U\x04nameSU\x0f" "binary:logisticU\x0ereg_loss_param{U"
    "\x10scale_pos_weightSU\x01" "1}}}U\x07version[#U\x03i\x01i\x07i\x04}",
    "{\"learner\":{\"feature_names\":[],\"feature_types\":[],\"gradient_booster\":{\"gbtree\""
    ":{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\",\"num_trees\":\"6\",\"s"
    "ize_leaf_vector\":\"0\"},\"tree_info\":[0,1,2,0,1,2],\"trees\":[{\"default_left\":[1,1,0"
    ",0,0],\"id\":0,\"left_children\":[1,3,-1,-1,-1],\"right_children\":[2,4,-1,-1,-1],\"spli"
    "t_conditions\":[-0.0188,0.0144,-0.22,0.4306,-0.2153],\"split_indices\":[2,0,0,0,0],\"spl"
    "it_type\":[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_"
    "nodes\":\"5\",\"size_leaf_vector\":\"0\"},\"base_weights\":[0.5,0.5,0.5,0.5,0.5],\"loss_"
    "changes\":[0.25,0.25,0.25,0.25,0.25],\"sum_hessian\":[1.5,1.5,1.5,1.5,1.5],\"parents\":["
    "2147483647,0,0,1,1]},{\"default_left\":[1,1,0,0,0],\"id\":1,\"left_children\":[1,3,-1,-1"
    ",-1],\"right_children\":[2,4,-1,-1,-1],\"split_conditions\":[1.9153,-2.2268,-0.1636,-0.0"
    "621,0.1588],\"split_indices\":[1,0,0,0,0],\"split_type\":[0,0,0,0,0],\"tree_param\":{\"n"
    "um_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\",\"size_leaf_vector\":\"0\"}"
    ",\"base_weights\":[0.5,0.5,0.5,0.5,0.5],\"loss_changes\":[0.25,0.25,0.25,0.25,0.25],\"su"
    "m_hessian\":[1.5,1.5,1.5,1.5,1.5],\"parents\":[2147483647,0,0,1,1]},{\"default_left\":[1"
    ",0,1,0,0],\"id\":2,\"left_children\":[1,-1,3,-1,-1],\"right_children\":[2,-1,4,-1,-1],\""
    "split_conditions\":[0.0655,-0.2204,-0.0102,-0.2157,0.4266],\"split_indices\":[2,0,0,0,0]"
    ",\"split_type\":[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\","
    "\"num_nodes\":\"5\",\"size_leaf_vector\":\"0\"},\"base_weights\":[0.5,0.5,0.5,0.5,0.5],"
    "\"loss_changes\":[0.25,0.25,0.25,0.25,0.25],\"sum_hessian\":[1.5,1.5,1.5,1.5,1.5],\"pare"
    "nts\":[2147483647,0,0,2,2]},{\"default_left\":[1,1,0,0,0],\"id\":3,\"left_children\":[1,"
    "3,-1,-1,-1],\"right_children\":[2,4,-1,-1,-1],\"split_conditions\":[-0.0188,0.0144,-0.20"
    "05,0.3427,-0.1958],\"split_indices\":[2,0,0,0,0],\"split_type\":[0,0,0,0,0],\"tree_param"
    "\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\",\"size_leaf_vector\""
    ":\"0\"},\"base_weights\":[0.5,0.5,0.5,0.5,0.5],\"loss_changes\":[0.25,0.25,0.25,0.25,0.2"
    "5],\"sum_hessian\":[1.5,1.5,1.5,1.5,1.5],\"parents\":[2147483647,0,0,1,1]},{\"default_le"
    "ft\":[1,1,0,0,0],\"id\":4,\"left_children\":[1,3,-1,-1,-1],\"right_children\":[2,4,-1,-1"
    ",-1],\"split_conditions\":[1.9153,0.9323,-0.1425,0.1042,0.2213],\"split_indices\":[1,1,0"
    ",0,0],\"split_type\":[0,0,0,0,0],\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":"
    "\"3\",\"num_nodes\":\"5\",\"size_leaf_vector\":\"0\"},\"base_weights\":[0.5,0.5,0.5,0.5,"
    "0.5],\"loss_changes\":[0.25,0.25,0.25,0.25,0.25],\"sum_hessian\":[1.5,1.5,1.5,1.5,1.5],"
    "\"parents\":[2147483647,0,0,1,1]},{\"default_left\":[1,0,1,0,0],\"id\":5,\"left_children"
    "\":[1,-1,3,-1,-1],\"right_children\":[2,-1,4,-1,-1],\"split_conditions\":[0.0655,-0.2127"
    ",-0.0102,-0.2168,0.4219],\"split_indices\":[2,0,0,0,0],\"split_type\":[0,0,0,0,0],\"tree"
    "_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\",\"size_leaf_ve"
    "ctor\":\"0\"},\"base_weights\":[0.5,0.5,0.5,0.5,0.5],\"loss_changes\":[0.25,0.25,0.25,0."
    "25,0.25],\"sum_hessian\":[1.5,1.5,1.5,1.5,1.5],\"parents\":[2147483647,0,0,2,2]}]},\"nam"
    "e\":\"gbtree\"},\"name\":\"dart\",\"weight_drop\":[1.0,1.0,0.9090909,0.9090909,0.9090909"
    ",0.9090909]},\"learner_model_param\":{\"base_score\":\"5E-1\",\"boost_from_average\":\"1"
    "\",\"num_class\":\"3\",\"num_feature\":\"3\",\"num_target\":\"1\"},\"objective\":{\"name"
    "\":\"multi:softprob\",\"softmax_multiclass_param\":{\"num_class\":\"3\"}}},\"version\":["
    "1,7,4]}",
    "{\"learner\":{\"feature_names\":[],\"feature_types\":[],\"gradient_booster\":{\"model\":"
    "{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\",\"num_trees\":\"1\",\"size_leaf_vec"
    "tor\":\"0\"},\"tree_info\":[0],\"trees\":[{\"default_left\":[1,0,0],\"id\":0,\"left_chil"
    "dren\":[1,-1,-1],\"right_children\":[2,-1,-1],\"split_conditions\":[-0.0362,-0.3983,0.07"
    "79],\"split_indices\":[0,0,0],\"split_type\":[0,0,0],\"tree_param\":{\"num_deleted\":\"0"
    "\",\"num_feature\":\"3\",\"num_nodes\":\"3\",\"size_leaf_vector\":\"0\"},\"base_weights"
    "\":[0.5,0.5,0.5],\"loss_changes\":[0.25,0.25,0.25],\"sum_hessian\":[1.5,1.5,1.5],\"paren"
    "ts\":[2147483647,0,0]}]},\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\""
    "5E-1\",\"boost_from_average\":\"1\",\"num_class\":\"0\",\"num_feature\":\"3\",\"num_targ"
    "et\":\"1\"},\"objective\":{\"name\":\"reg:squarederror\",\"reg_loss_param\":{\"scale_pos"
    "_weight\":\"1\"}}},\"version\":[1,7,4]}",
    /* Two categorical splits (XGBoost writes their conditions as NaN). */
    "{\"learner\":{\"gradient_booster\":{\"model\":{\"tree_info\":[0],\"trees\":[{\"default_l"
    "eft\":[1,0,0,1,0,0,0],\"left_children\":[1,3,-1,5,-1,-1,-1],\"right_children\":[2,4,-1,6"
    ",-1,-1,-1],\"split_conditions\":[NaN,0.25,-0.5,NaN,0.75,-0.125,0.5],\"split_indices\":[1"
    ",0,0,2,0,0,0],\"split_type\":[1,0,0,1,0,0,0],\"categories\":[1,2,5,0,3],\"categories_nod"
    "es\":[0,3],\"categories_segments\":[0,3],\"categories_sizes\":[3,2],\"id\":0,\"base_weig"
    "hts\":[0.5,0.5,0.5,0.5,0.5,0.5,0.5],\"loss_changes\":[0.25,0.25,0.25,0.25,0.25,0.25,0.25"
    "],\"sum_hessian\":[1.5,1.5,1.5,1.5,1.5,1.5,1.5],\"parents\":[2147483647,0,0,1,1,3,3],\"t"
    "ree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"7\",\"size_leaf"
    "_vector\":\"0\"}}],\"gbtree_model_param\":{\"num_parallel_tree\":\"1\",\"num_trees\":\"1"
    "\",\"size_leaf_vector\":\"0\"}},\"name\":\"gbtree\"},\"learner_model_param\":{\"base_sco"
    "re\":\"5E-1\",\"num_class\":\"0\",\"num_feature\":\"3\"},\"objective\":{\"name\":\"binar"
    "y:logistic\"}}}",
    /* gblinear, three classes over two features: six weights, then three biases. */
    "{\"learner\":{\"gradient_booster\":{\"model\":{\"boosted_rounds\":5,\"weights\":[1.9,-0."
    "011,0.011,0.0065,0.48,-0.25,0.1,0.2,-0.3]},\"name\":\"gblinear\"},\"learner_model_param"
    "\":{\"base_score\":\"5E-1\",\"num_class\":\"3\",\"num_feature\":\"2\",\"num_target\":\"1"
    "\"},\"objective\":{\"name\":\"multi:softprob\"}},\"version\":[1,7,4]}",
    NULL};

/* Generated with onnx.helper (tests/onnx/ shows how); byte strings without NUL. */
static const char *const onnx_seeds[] = {
    "\x08\x07\x3a\xc1\x02\x0a\x23\x0a\x01\x78\x0a\x02\x57\x31\x0a\x02\x62\x31\x12\x01\x68\x22\x04\x47"
    "\x65\x6d\x6d\x2a\x0d\x0a\x06\x74\x72\x61\x6e\x73\x42\x18\x01\xa0\x01\x02\x0a\x0c\x0a\x01\x68\x12"
    "\x01\x72\x22\x04\x52\x65\x6c\x75\x0a\x23\x0a\x01\x72\x0a\x02\x57\x32\x0a\x02\x62\x32\x12\x01\x7a"
    "\x22\x04\x47\x65\x6d\x6d\x2a\x0d\x0a\x06\x74\x72\x61\x6e\x73\x42\x18\x01\xa0\x01\x02\x0a\x1c\x0a"
    "\x01\x7a\x12\x01\x79\x22\x07\x53\x6f\x66\x74\x6d\x61\x78\x2a\x0b\x0a\x04\x61\x78\x69\x73\x18\x01"
    "\xa0\x01\x02\x12\x01\x67\x2a\x3c\x08\x04\x08\x03\x10\x01\x42\x02\x57\x31\x4a\x30\x93\x55\x35\xbe"
    "\x81\x52\xa0\xbe\xb1\x36\x52\x3f\xea\xba\x1f\x3f\x22\x26\x3d\xbe\xef\xc8\xfa\x3e\x32\xf9\x07\x3f"
    "\x8a\x9d\x79\x3e\xb9\xd8\x42\x3f\xff\x28\x4f\xbe\x5b\x7a\xe7\xbe\x2d\xa8\x10\x3f\x2a\x1a\x08\x04"
    "\x10\x01\x42\x02\x62\x31\x4a\x10\x17\x02\x3a\x3f\xf2\x15\xba\xbe\xe9\x8b\xcf\xbd\xa0\xe2\x79\xbf"
    "\x2a\x2c\x08\x02\x08\x04\x10\x01\x42\x02\x57\x32\x4a\x20\xdc\x0c\x67\x3f\xea\x6b\x20\x3f\x93\x30"
    "\x06\x3f\x55\xc3\x4b\x3f\xec\x5d\x02\x3e\x19\x7c\x3c\xbf\xcd\xa6\xdf\x3e\x3f\x21\x3a\x3e\x2a\x12"
    "\x08\x02\x10\x01\x42\x02\x62\x32\x4a\x08\xf3\x97\xbc\xbe\x30\x80\x44\x3f\x5a\x14\x0a\x01\x78\x12"
    "\x0f\x0a\x0d\x08\x01\x12\x09\x0a\x03\x12\x01\x6e\x0a\x02\x08\x03\x62\x14\x0a\x01\x79\x12\x0f\x0a"
    "\x0d\x08\x01\x12\x09\x0a\x03\x12\x01\x6e\x0a\x02\x08\x02\x42\x0b\x0a\x07\x61\x69\x2e\x6f\x6e\x6e"
    "\x78\x10\x0d",
    "\x08\x07\x3a\xba\x04\x0a\x1f\x0a\x01\x78\x12\x01\x6d\x22\x0a\x52\x65\x64\x75\x63\x65\x4d\x65\x61"
    "\x6e\x2a\x0b\x0a\x04\x61\x78\x65\x73\x40\x01\xa0\x01\x07\x0a\x0e\x0a\x01\x78\x0a\x01\x6d\x12\x01"
    "\x64\x22\x03\x53\x75\x62\x0a\x10\x0a\x01\x64\x12\x02\x73\x64\x22\x07\x53\x69\x67\x6d\x6f\x69\x64"
    "\x0a\x11\x0a\x02\x73\x64\x0a\x03\x74\x77\x6f\x12\x01\x70\x22\x03\x50\x6f\x77\x0a\x28\x0a\x01\x70"
    "\x12\x01\x76\x22\x0a\x52\x65\x64\x75\x63\x65\x4d\x65\x61\x6e\x2a\x14\x0a\x04\x61\x78\x65\x73\x40"
    "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\xa0\x01\x07\x0a\x11\x0a\x01\x76\x0a\x03\x65\x70\x73\x12"
    "\x02\x76\x65\x22\x03\x41\x64\x64\x0a\x0d\x0a\x02\x76\x65\x12\x01\x73\x22\x04\x53\x71\x72\x74\x0a"
    "\x10\x0a\x01\x64\x0a\x01\x73\x12\x03\x6e\x72\x6d\x22\x03\x44\x69\x76\x0a\x11\x0a\x03\x6e\x72\x6d"
    "\x0a\x01\x67\x12\x02\x6e\x67\x22\x03\x4d\x75\x6c\x0a\x10\x0a\x02\x6e\x67\x0a\x01\x62\x12\x02\x6c"
    "\x6e\x22\x03\x41\x64\x64\x0a\x1f\x0a\x02\x6c\x6e\x12\x01\x75\x22\x09\x55\x6e\x73\x71\x75\x65\x65"
    "\x7a\x65\x2a\x0b\x0a\x04\x61\x78\x65\x73\x40\x01\xa0\x01\x07\x0a\x1c\x0a\x01\x75\x12\x01\x66\x22"
    "\x07\x46\x6c\x61\x74\x74\x65\x6e\x2a\x0b\x0a\x04\x61\x78\x69\x73\x18\x01\xa0\x01\x02\x0a\x1e\x0a"
    "\x01\x66\x0a\x01\x78\x12\x01\x63\x22\x06\x43\x6f\x6e\x63\x61\x74\x2a\x0b\x0a\x04\x61\x78\x69\x73"
    "\x18\x01\xa0\x01\x02\x0a\x23\x0a\x01\x63\x12\x02\x6c\x72\x22\x09\x4c\x65\x61\x6b\x79\x52\x65\x6c"
    "\x75\x2a\x0f\x0a\x05\x61\x6c\x70\x68\x61\x15\x1b\x0d\x80\x3e\xa0\x01\x01\x0a\x0d\x0a\x02\x6c\x72"
    "\x12\x02\x65\x72\x22\x03\x45\x72\x66\x0a\x13\x0a\x02\x65\x72\x0a\x02\x57\x33\x12\x01\x79\x22\x06"
    "\x4d\x61\x74\x4d\x75\x6c\x12\x01\x67\x2a\x0d\x10\x01\x42\x03\x74\x77\x6f\x4a\x04\x66\x66\x06\x40"
    "\x2a\x0d\x10\x01\x42\x03\x65\x70\x73\x4a\x04\xb8\x1e\x05\x3e\x2a\x15\x08\x03\x10\x01\x42\x01\x67"
    "\x4a\x0c\xec\xfb\x97\xbe\x52\xce\x58\x3f\x81\x1f\x31\xbf\x2a\x15\x08\x03\x10\x01\x42\x01\x62\x4a"
    "\x0c\xfa\x62\x5d\xbf\xc2\xb8\xe8\xbe\x82\x1e\x08\xbf\x2a\x3c\x08\x06\x08\x02\x10\x01\x42\x02\x57"
    "\x33\x4a\x30\x66\xbe\xb9\x3e\x7a\x4f\x62\x3f\xaf\x17\xb2\xbe\x7c\x0a\x1b\x3f\x91\x5c\xeb\xbe\x79"
    "\xd0\x26\xbf\x66\xbe\xb9\x3e\x7a\x4f\x62\x3f\xaf\x17\xb2\xbe\x7c\x0a\x1b\x3f\x91\x5c\xeb\xbe\x79"
    "\xd0\x26\xbf\x5a\x14\x0a\x01\x78\x12\x0f\x0a\x0d\x08\x01\x12\x09\x0a\x03\x12\x01\x6e\x0a\x02\x08"
    "\x03\x62\x14\x0a\x01\x79\x12\x0f\x0a\x0d\x08\x01\x12\x09\x0a\x03\x12\x01\x6e\x0a\x02\x08\x02\x42"
    "\x0b\x0a\x07\x61\x69\x2e\x6f\x6e\x6e\x78\x10\x0b\x72\x1a\x0a\x10\x73\x74\x61\x67\x65\x67\x61\x74"
    "\x65\x2e\x6f\x75\x74\x70\x75\x74\x12\x06\x6c\x6f\x67\x69\x74\x73",
    "\x08\x07\x3a\xab\x03\x0a\x21\x0a\x01\x78\x0a\x01\x57\x0a\x01\x62\x12\x01\x68\x22\x04\x47\x65\x6d"
    "\x6d\x2a\x0d\x0a\x06\x74\x72\x61\x6e\x73\x42\x18\x01\xa0\x01\x02\x0a\x14\x0a\x01\x68\x0a\x02\x6c"
    "\x6f\x0a\x02\x68\x69\x12\x01\x63\x22\x04\x43\x6c\x69\x70\x0a\x11\x0a\x01\x63\x0a\x02\x73\x6c\x12"
    "\x01\x70\x22\x05\x50\x52\x65\x6c\x75\x0a\x11\x0a\x01\x70\x0a\x01\x68\x0a\x01\x6b\x12\x01\x6d\x22"
    "\x03\x4d\x61\x78\x0a\x0f\x0a\x01\x6d\x0a\x02\x68\x69\x12\x01\x6e\x22\x03\x4d\x69\x6e\x0a\x1c\x0a"
    "\x01\x6e\x12\x01\x65\x22\x03\x45\x6c\x75\x2a\x0f\x0a\x05\x61\x6c\x70\x68\x61\x15\x33\x33\x33\x3f"
    "\xa0\x01\x01\x0a\x10\x0a\x01\x65\x12\x01\x73\x22\x08\x53\x6f\x66\x74\x70\x6c\x75\x73\x0a\x11\x0a"
    "\x01\x73\x12\x01\x77\x22\x09\x48\x61\x72\x64\x53\x77\x69\x73\x68\x0a\x1c\x0a\x01\x77\x12\x01\x79"
    "\x22\x07\x53\x6f\x66\x74\x6d\x61\x78\x2a\x0b\x0a\x04\x61\x78\x69\x73\x18\x01\xa0\x01\x02\x12\x01"
    "\x67\x2a\x3b\x08\x04\x08\x03\x10\x01\x42\x01\x57\x4a\x30\xcb\x25\x54\xbf\xc6\xc0\x06\xbf\xa6\x40"
    "\x1a\x3f\x92\x44\x28\x3e\x5f\xce\x4f\xbf\xbe\xf4\x08\xbe\x9d\x9c\x2b\xbd\xb3\x36\x2e\xbf\xfe\x34"
    "\xf0\x3e\xc8\xcc\x45\xbf\xc1\xc3\x5e\xbe\xb5\x22\x09\x3d\x2a\x19\x08\x04\x10\x01\x42\x01\x62\x4a"
    "\x10\xe5\x12\x0e\xbe\x73\xc3\x31\x3e\xc0\x8b\xf3\x3e\xdd\x9b\x69\x3f\x2a\x0c\x10\x01\x42\x02\x6c"
    "\x6f\x4a\x04\x66\x66\xa6\xbf\x2a\x0c\x10\x01\x42\x02\x68\x69\x4a\x04\x33\x33\x13\x40\x2a\x1a\x08"
    "\x04\x10\x01\x42\x02\x73\x6c\x4a\x10\x0d\xcf\x5a\x3e\xc0\x05\xb8\x3e\xf8\xc8\xc1\x3e\x65\x4c\x5e"
    "\x3e\x2a\x19\x08\x04\x10\x01\x42\x01\x6b\x4a\x10\xb1\x3c\x7f\xbf\x63\x69\x72\x3f\xe9\x6f\xce\xbe"
    "\x74\x7a\xbe\xbe\x5a\x14\x0a\x01\x78\x12\x0f\x0a\x0d\x08\x01\x12\x09\x0a\x03\x12\x01\x6e\x0a\x02"
    "\x08\x03\x62\x14\x0a\x01\x79\x12\x0f\x0a\x0d\x08\x01\x12\x09\x0a\x03\x12\x01\x6e\x0a\x02\x08\x04"
    "\x42\x0b\x0a\x07\x61\x69\x2e\x6f\x6e\x6e\x78\x10\x0e",
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
    {"onnx", t_onnx, onnx_seeds},
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
