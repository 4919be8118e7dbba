/* Search filter parser and matcher; LIKE is checked against SQLite's own LIKE. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "registry/registry_internal.h"

static void test_parse_ok(void **state)
{
    reg_filter f;
    sg_err err;
    assert_int_equal(
        reg_filter_parse("name = 'fraud' AND tags.team != \"risk\" and stage LIKE 'Prod%'"
                         " AND tags.`odd key` ILIKE 'A_c'",
                         &f, &err),
        SG_OK);
    assert_int_equal(f.n, 4);
    assert_int_equal(f.conds[0].field, REG_F_NAME);
    assert_int_equal(f.conds[0].op, REG_OP_EQ);
    assert_string_equal(f.conds[0].value, "fraud");
    assert_int_equal(f.conds[1].field, REG_F_TAG);
    assert_string_equal(f.conds[1].tag, "team");
    assert_int_equal(f.conds[1].op, REG_OP_NE);
    assert_int_equal(f.conds[2].field, REG_F_STAGE);
    assert_int_equal(f.conds[2].op, REG_OP_LIKE);
    assert_string_equal(f.conds[3].tag, "odd key");
    assert_int_equal(f.conds[3].op, REG_OP_ILIKE);
    assert_int_equal(reg_filter_parse("   ", &f, &err), SG_OK);
    assert_int_equal(f.n, 0);
}

static void expect_error(const char *text, const char *fragment)
{
    reg_filter f;
    sg_err err;
    assert_int_equal(reg_filter_parse(text, &f, &err), SG_EINPUT);
    if (!strstr(err.msg, fragment))
        fail_msg("'%s': got '%s', wanted '%s'", text, err.msg, fragment);
}

static void test_parse_errors(void **state)
{
    expect_error("name = 'x' AND", "at position 15: expected a field");
    expect_error("name = x", "at position 8: expected a quoted string");
    expect_error("name 'x'", "at position 6: expected an operator");
    expect_error("name = 'x", "at position 10: expected a closing quote");
    expect_error("name = 'x' OR stage = 'y'", "at position 12: expected AND");
    expect_error("tags. = 'x'", "at position 6: expected a tag key");
    expect_error("tags.`abc = 'x'", "expected a closing backtick");
    expect_error("version = '1'", "at position 1: expected a field");
}

static bool row_match(const reg_filter *f, const char *name, const char *stage, json_t *tags)
{
    const reg_filter_row row = {name, stage, "/models/m.bin", 3, tags};
    return reg_filter_match(f, &row);
}

/* MLflow's version columns and its prefixes: version_number compares as a number (quoted or
   not), run_id takes =, != and IN (stagegate records no runs: every version's is ""),
   source_path is the artifact's path; attribute.X is X; tag.KEY is tags.KEY; a version
   without MLflow's prompt mark is no prompt. Each field takes only MLflow's operators. */
static void test_mlflow_fields(void **state)
{
    (void)state;
    reg_filter f;
    sg_err err;
    static const struct {
        const char *filter;
        bool match; /* against version 3 of "fraud", source /models/m.bin, no tags */
    } cases[] = {
        {"version_number = 3", true},
        {"version_number = '3'", true},
        {"attribute.version_number > 2 AND version_number <= 3", true},
        {"version_number >= 4", false},
        {"version_number < 3", false},
        {"version_number != 3", false},
        {"run_id = ''", true},
        {"run_id = 'abc'", false},
        {"run_id IN ('abc', 'def')", false},
        {"run_id IN ('abc', '')", true},
        {"run_id != 'abc'", true},
        {"source_path = '/models/m.bin'", true},
        {"source_path LIKE '%/m.bin' AND attribute.name = 'fraud'", true},
        {"source_path ILIKE '/MODELS/%'", true},
        {"tag.`mlflow.prompt.is_prompt` != 'true'", true},
        {"tag.`mlflow.prompt.is_prompt` != 'TRUE'", true},
        {"tags.`mlflow.prompt.is_prompt` = 'true'", false},
        {"tags.`mlflow.prompt.is_prompt` = 'false'", true},
        {"tags.`mlflow.prompt.is_prompt` = 'FALSE'", true},
        {"tags.`mlflow.prompt.is_prompt` != 'false'", false},
        {"tags.`mlflow.prompt.is_prompt` LIKE 'f%'", false},
        {"tags.`mlflow.prompt.is_prompt` ILIKE '%'", false},
        {"tag.team = 'risk'", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (reg_filter_parse(cases[i].filter, &f, &err) != SG_OK)
            fail_msg("'%s': %s", cases[i].filter, err.msg);
        const reg_filter_row row = {"fraud", "None", "/models/m.bin", 3, NULL};
        if (reg_filter_match(&f, &row) != cases[i].match)
            fail_msg("'%s' should %smatch", cases[i].filter, cases[i].match ? "" : "not ");
    }
    assert_int_equal(reg_filter_parse("name = 'x' AND tag.a = 'b'", &f, &err), SG_OK);
    assert_true(reg_filter_model_fields(&f));
    assert_int_equal(reg_filter_parse("name = 'x' AND version_number = 1", &f, &err), SG_OK);
    assert_false(reg_filter_model_fields(&f));
    expect_error("version_number LIKE '1%'", "version_number takes =, !=, <, <=, >, >=");
    expect_error("run_id > 'a'", "run_id takes =, != and IN");
    expect_error("name IN ('a')", "IN for run_id");
    expect_error("name < 'a'", "are for version_number");
    expect_error("version_number = 'x'", "expected a version number");
    expect_error("version_number = -1", "expected a version number");
    expect_error("run_id IN ('a' 'b')", "expected ',' or ')'");
    expect_error("run_id IN 'a'", "expected '(' and a list");
    expect_error("attribute.tags.x = 'y'", "expected an attribute");
}

static void test_match(void **state)
{
    reg_filter f;
    sg_err err;
    json_t *tags = json_pack("{ss}", "team", "risk");
    assert_int_equal(reg_filter_parse("name LIKE 'fraud%' AND tags.team = 'risk'", &f, &err),
                     SG_OK);
    assert_true(row_match(&f, "fraud-detector", "None", tags));
    assert_false(row_match(&f, "churn", "None", tags));
    assert_false(row_match(&f, "fraud-detector", "None", NULL));
    assert_int_equal(reg_filter_parse("tags.owner != 'bob'", &f, &err), SG_OK);
    /* as MLflow: a version without the tag is no match, != included */
    assert_false(row_match(&f, "x", "None", tags));
    json_t *bob = json_pack("{ss}", "owner", "alice");
    assert_true(row_match(&f, "x", "None", bob));
    json_decref(bob);
    /* A stage is named regardless of case, as a transition names it (stage names are unique
       regardless of case); a name or a tag value is compared exactly. */
    assert_int_equal(reg_filter_parse("stage = 'production'", &f, &err), SG_OK);
    assert_true(row_match(&f, "x", "Production", tags));
    assert_false(row_match(&f, "x", "Staging", tags));
    assert_int_equal(reg_filter_parse("stage != 'PRODUCTION'", &f, &err), SG_OK);
    assert_false(row_match(&f, "x", "Production", tags));
    assert_true(row_match(&f, "x", "Staging", tags));
    assert_int_equal(reg_filter_parse("name = 'X'", &f, &err), SG_OK);
    assert_false(row_match(&f, "x", "Production", tags));
    assert_int_equal(reg_filter_parse("stage ILIKE 'production'", &f, &err), SG_OK);
    assert_true(row_match(&f, "x", "Production", tags));
    json_decref(tags);
}

/* reg_like(ci = true) must agree with SQLite's LIKE (ASCII case-insensitive) everywhere. */
/* Report and request times (RFC 3339): a report's age is computed from them, so only exact
 * forms parse, and each to the epoch second Python's datetime gives for it. */
static void test_parse_utc(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t epoch;
    } ok[] = {
        {"2026-12-04T14:25:00Z", 1796394300},
        {"2026-12-04T14:25:00.123456Z", 1796394300},
        {"2026-12-04T16:25:00+02:00", 1796394300},
        {"2026-12-04T09:10:00-05:15", 1796394300},
        {"2024-02-29T00:00:00Z", 1709164800},
        {"2000-02-29T23:59:59z", 951868799},
        {"1970-01-01t00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t e = -1;
        assert_int_equal(reg_parse_utc(ok[i].s, &e), 0);
        assert_int_equal(e, ok[i].epoch);
    }
    static const char *const bad[] = {
        "2026-11-04T10:00:00-~~:00", /* an offset of 858 hours, once */
        "2026-11-04T10:00:00-99:00", "2026-11-04T10:00:00+23:60", "2026-12- 4T 1: 0: 0Z",
        " 2026-12-04T01:00:00Z",     "2026-02-30T00:00:00Z",      "2025-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",      "2026-13-01T00:00:00Z",      "2026-00-01T00:00:00Z",
        "2026-12-00T00:00:00Z",      "2026-12-04T24:00:00Z",      "2026-12-04T10:60:00Z",
        "2026-12-04T10:00:61Z",      "2026-12-04T10:00:00",       "2026-12-04 10:00:00Z",
        "2026-12-04T10:00:00.Z",     "2026-12-04T10:00:00Zjunk",  "2026-12-04T10:00:00+0200",
        "+2026-12-04T10:00:00Z",     "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t e = 7;
        if (reg_parse_utc(bad[i], &e) == 0) fail_msg("'%s' parsed as %lld", bad[i], (long long)e);
        assert_int_equal(e, 7);
    }
}

static void test_like_vs_sqlite(void **state)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ? LIKE ?", -1, &st, NULL), SQLITE_OK);
    /* characters of one to three bytes: '_' is one character, not one byte */
    static const char *const text[] = {"a", "A", "b", "c", "\xc3\xbc", "\xe2\x82\xac"};
    static const char *const pats[] = {"a", "A", "b", "%", "_", "\xc3\xbc"};
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char s[32] = "", p[32] = "";
        int ls = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 7;
        int lp = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 7;
        for (int i = 0; i < ls; i++)
            strcat(s, text[((seed = seed * 1103515245u + 12345u) >> 16) % 6]);
        for (int i = 0; i < lp; i++)
            strcat(p, pats[((seed = seed * 1103515245u + 12345u) >> 16) % 6]);
        sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        bool want = sqlite3_column_int(st, 0) != 0;
        sqlite3_reset(st);
        if (reg_like(s, p, true) != want) fail_msg("'%s' LIKE '%s': sqlite says %d", s, p, want);
        /* case-sensitive LIKE matches iff the case-folded match holds and the cases agree */
        if (reg_like(s, p, false) && !want)
            fail_msg("'%s' LIKE '%s' case-sensitively but not folded", s, p);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(reg_like("Z\xc3\xbcrich", "Z_rich", false));
    assert_false(reg_like("Z\xc3\xbcrich", "Z__rich", false));
    assert_true(reg_like("Prod", "Prod", false));
    assert_false(reg_like("prod", "Prod", false));
    assert_true(reg_like("prod", "Prod", true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),       cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_match),          cmocka_unit_test(test_mlflow_fields),
        cmocka_unit_test(test_like_vs_sqlite), cmocka_unit_test(test_parse_utc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
