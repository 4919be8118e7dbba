/*
 * sg_model_clone when memory runs out (each worker of another NUMA node clones the model):
 * every allocation it makes is failed in turn, through the linker's --wrap of malloc, calloc
 * and posix_memalign, for a dense model and a tree ensemble. Each failure must be SG_ENOMEM
 * with one line that names the model's file (a tree ensemble's had named none), must leave
 * *out NULL and leak nothing (LeakSanitizer, in the sanitizer build); once no allocation is
 * failed, the clone must succeed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "stagegate/model.h"

/* Allocations left before the one that fails; negative: none fails. */
static int fail_in = -1;

static bool fail_now(void)
{
    return fail_in >= 0 && fail_in-- == 0;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t n);

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    return fail_now() ? 12 /* ENOMEM */ : __real_posix_memalign(p, align, n);
}

static char dir[4096];

static int setup(void **state)
{
    (void)state;
    fx_mkdtemp(dir, sizeof dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_rmtree(dir);
    return 0;
}

/* Fails the first, second, ... allocation of the clone until one clone succeeds. */
static void clone_under_failures(const char *path,
                                 sg_status (*load)(const char *, sg_model **, sg_err *))
{
    sg_model *m = NULL;
    sg_err err = {{0}};
    const sg_status loaded = load(path, &m, &err);
    if (loaded != SG_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(loaded, SG_OK);
    int failures = 0;
    for (int k = 0;; k++) {
        sg_model *c = (sg_model *)0x1;
        fail_in = k;
        const sg_status rc = sg_model_clone(m, &c, &err);
        const bool armed = fail_in < 0; /* the k-th allocation happened, and failed */
        fail_in = -1;
        if (!armed) {
            assert_int_equal(rc, SG_OK);
            sg_model_free(c);
            break;
        }
        failures++;
        if (rc != SG_ENOMEM || strncmp(err.msg, path, strlen(path)) != 0)
            fprintf(stderr, "allocation %d failed: rc=%d msg=%s\n", k, rc, err.msg);
        assert_int_equal(rc, SG_ENOMEM);
        assert_null(c);
        assert_true(strncmp(err.msg, path, strlen(path)) == 0);
        assert_non_null(strstr(err.msg, "out of memory"));
        assert_null(strchr(err.msg, '\n'));
        assert_null(strstr(err.msg + strlen(path) + 1, path)); /* named once */
    }
    assert_true(failures >= 3);
    sg_model_free(m);
}

static void test_dense_model(void **state)
{
    (void)state;
    char p[4200];
    snprintf(p, sizeof p, "%s/mlp.h5", dir);
    fx_write_binary_model(p);
    clone_under_failures(p, sg_model_load);
}

/* Two single-leaf trees as XGBoost 1.7 saved them (binary:logistic, two features). */
static const char tiny_xgboost[] =
    "{\"learner\":{\"attributes\":{},\"feature_names\":[],\"feature_types\":[],"
    "\"gradient_booster\":{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\","
    "\"num_trees\":\"2\",\"size_leaf_vector\":\"0\"},\"tree_info\":[0,0],\"trees\":["
    "{\"base_weights\":[-0E0],\"categories\":[],\"categories_nodes\":[],"
    "\"categories_segments\":[],\"categories_sizes\":[],\"default_left\":[0],\"id\":0,"
    "\"left_children\":[-1],\"loss_changes\":[0E0],\"parents\":[2147483647],"
    "\"right_children\":[-1],\"split_conditions\":[2.5E-1],\"split_indices\":[0],"
    "\"split_type\":[0],\"sum_hessian\":[1E0],\"tree_param\":{\"num_deleted\":\"0\","
    "\"num_feature\":\"2\",\"num_nodes\":\"1\",\"size_leaf_vector\":\"0\"}},"
    "{\"base_weights\":[-0E0],\"categories\":[],\"categories_nodes\":[],"
    "\"categories_segments\":[],\"categories_sizes\":[],\"default_left\":[0],\"id\":1,"
    "\"left_children\":[-1],\"loss_changes\":[0E0],\"parents\":[2147483647],"
    "\"right_children\":[-1],\"split_conditions\":[-5E-1],\"split_indices\":[0],"
    "\"split_type\":[0],\"sum_hessian\":[1E0],\"tree_param\":{\"num_deleted\":\"0\","
    "\"num_feature\":\"2\",\"num_nodes\":\"1\",\"size_leaf_vector\":\"0\"}}]},"
    "\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\"5E-1\","
    "\"boost_from_average\":\"1\",\"num_class\":\"0\",\"num_feature\":\"2\","
    "\"num_target\":\"1\"},\"objective\":{\"name\":\"binary:logistic\","
    "\"reg_loss_param\":{\"scale_pos_weight\":\"1\"}}},\"version\":[1,7,4]}";

static void test_tree_ensemble(void **state)
{
    (void)state;
    char p[4200];
    snprintf(p, sizeof p, "%s/trees.json", dir);
    fx_write_text(p, tiny_xgboost);
    clone_under_failures(p, sg_model_load_xgboost_json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_model),
        cmocka_unit_test(test_tree_ensemble),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
