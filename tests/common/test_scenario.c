/* The scenario table: names round-trip, and the one rule for which settings apply where. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "stagegate/scenario.h"

static void names(void **state)
{
    (void)state;
    for (int i = 0; i < SG_SCENARIO_COUNT; i++) {
        assert_int_equal(sg_scenarios[i].id, i);
        assert_int_equal(sg_scenario_parse(sg_scenarios[i].name), i);
        assert_string_equal(sg_scenario_name((sg_scenario)i), sg_scenarios[i].name);
        assert_non_null(strstr(sg_scenario_list(), sg_scenarios[i].name));
    }
    assert_int_equal(sg_scenario_parse("Server"), -1);
    assert_null(sg_scenario_find(NULL));
    assert_string_equal(sg_scenario_name((sg_scenario)7), "unknown");
    assert_string_equal(sg_scenario_list(), "single-stream, server or offline");
}

static void settings(void **state)
{
    (void)state;
    sg_err err;
    const sg_scenario_info *ss = sg_scenario_find("single-stream"),
                           *sv = sg_scenario_find("server"), *off = sg_scenario_find("offline");
    sg_scenario_settings none = {0}, qps = {.arrival_rate = true}, batch = {.batch = true},
                         bd = {.breakdown = true}, bound = {.latency_bound = true};
    assert_int_equal(sg_scenario_check(ss, &none, false, &err), SG_OK);
    assert_int_equal(sg_scenario_check(sv, &none, false, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "--qps is required for the server scenario"));
    assert_int_equal(sg_scenario_check(sv, &none, true, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "target_qps"));
    assert_int_equal(sg_scenario_check(sv, &qps, false, &err), SG_OK);
    assert_int_equal(sg_scenario_check(ss, &qps, false, &err), SG_EINPUT);
    assert_int_equal(sg_scenario_check(off, &batch, false, &err), SG_OK);
    assert_int_equal(sg_scenario_check(ss, &batch, false, &err), SG_EINPUT);
    assert_int_equal(sg_scenario_check(off, &bd, false, &err), SG_EINPUT);
    assert_int_equal(sg_scenario_check(ss, &bd, false, &err), SG_OK);
    sg_scenario_settings sv_bound = {.arrival_rate = true, .latency_bound = true};
    assert_int_equal(sg_scenario_check(sv, &sv_bound, false, &err), SG_OK);
    assert_int_equal(sg_scenario_check(ss, &bound, false, &err), SG_EINPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(names), cmocka_unit_test(settings)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
