/*
 * The tape JSON parser against two independent references: glibc's strtod for every number
 * (bit for bit) and jansson for whole documents (the same documents accepted and refused,
 * equal values when accepted), on fixed cases and on random and mutated documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/json_tape.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* One number in a one-element array, parsed by the tape and by strtod. */
static void check_number(const char *text)
{
    char doc[512];
    snprintf(doc, sizeof doc, "[%s]", text);
    sg_jdoc d;
    sg_err err = {{0}};
    int rc = sg_jt_parse("n", doc, strlen(doc), &d, &err);
    if (rc) fail_msg("%s refused: %s", text, err.msg);
    const sg_jv *v = sg_jt_at(&d, sg_jt_root(&d), 0);
    assert_true(sg_jt_is(v, SG_JT_NUMBER));
    double want = strtod(text, NULL);
    if (!same_bits(v->u.num, want)) fail_msg("%s: tape %.17g, strtod %.17g", text, v->u.num, want);
    /* ...and as a float32, the one strtof gives: rounded once from the text, as XGBoost reads
       its numbers, not through the double ((float)want) */
    float f = sg_jt_f32(v), fwant = strtof(text, NULL);
    if (memcmp(&f, &fwant, sizeof f) != 0)
        fail_msg("%s: tape float32 %.9g, strtof %.9g", text, (double)f, (double)fwant);
    sg_jt_free(&d);
}

/* Decimals near a float32 tie: the double nearest to each is the exact midpoint of two
   float32s, where (float)double breaks the tie to even and the text may not be a tie at all
   (a threshold written as a float64 midpoint, 1e-40 past it, had sent rows the other way).
   sg_jt_f32 must give strtof's float32 for every one. */
static void test_float32_ties(void **state)
{
    (void)state;
    static const char *fixed[] = {
        "0.0960593707859516143798828125000000000001", /* just above a midpoint */
        "-0.0960593707859516143798828125000000000001",
        "0.0960593707859516143798828124999999999999", /* just below it */
        "0.0960593707859516143798828125",             /* the midpoint itself: to even */
        "-0.389553502202034",                         /* Python's repr of a float64 midpoint */
        "3.4028235677973366e38",     /* 2^128 - 2^103 (halfway FLT_MAX to 2^128), to even */
        "3.40282356779733661637e38", /* below that halfway point: FLT_MAX, not infinity */
        "-3.40282356779733661637e38",
        "16777217",
        "16777217.000000000000000000001",
        "16777216.999999999999999999999",
        "7.00649232162408535461864791644958065640e-46", /* halfway 0 to the least subnormal */
        "7.006492321624085354618647916449580656402e-46",
        "2.1019476964872256063855943749348741969203929128147736576356e-45",
    };
    int n_ties = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_number(fixed[i]);
    char buf[128];
    for (int i = 0; i < 100000; i++) {
        uint32_t r = (uint32_t)rnd();
        float a;
        memcpy(&a, &r, sizeof a);
        if (!isfinite(a) || isinf(nextafterf(a, INFINITY))) continue;
        double mid = ((double)a + (double)nextafterf(a, INFINITY)) / 2;
        /* 26 significant digits: the double is the midpoint, the decimal mostly is not */
        snprintf(buf, sizeof buf, "%.25e", mid);
        n_ties += (float)strtod(buf, NULL) != strtof(buf, NULL);
        check_number(buf);
    }
    assert_true(n_ties > 10000); /* the case that (float)double gets wrong was exercised */
}

static void test_numbers_match_strtod(void **state)
{
    (void)state;
    static const char *fixed[] = {
        "0", "-0", "0.0", "-0.0", "1", "-1", "0.1", "0.5", "1e23", "1E22", "9007199254740992",
        "9007199254740993", "9007199254740995", "18446744073709551615", "123456789012345678901234",
        "0.000000000000000000000000000001", "2.2250738585072011e-308", "4.9e-324", "1e-400",
        "1.7976931348623157e308", "5E-1", "-2.8398864E-3", "1.0042324E0", "100000000000000000000e-20",
        "0.1000000000000000055511151231257827021181583404541015625", "3.0000000000000004",
        "1e+5", "1E-0", "12345678901234567890", "1234567890123456789", "99999999999999999999",
        "7.2057594037927933e16", "0.30000000000000004",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_number(fixed[i]);
    char buf[128];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = rnd();
        double x;
        memcpy(&x, &r, sizeof x);
        if (!isfinite(x)) continue;
        switch (i % 5) {
        case 0: snprintf(buf, sizeof buf, "%.17g", x); break;
        case 1: snprintf(buf, sizeof buf, "%.9g", (double)(float)(x * 1e-300)); break;
        case 2: snprintf(buf, sizeof buf, "%.9E", (double)(float)((int64_t)rnd() % 100000) / 997.0); break;
        case 3: {
            /* Random digit strings with decimal exponents around the fast path's edge. */
            int nd = 1 + (int)(rnd() % 25), n = 0;
            if (rnd() & 1) buf[n++] = '-';
            buf[n++] = (char)('1' + rnd() % 9);
            int dot = (int)(rnd() % (unsigned)nd);
            for (int k = 1; k < nd; k++) {
                if (k == dot) buf[n++] = '.';
                buf[n++] = (char)('0' + rnd() % 10);
            }
            snprintf(buf + n, sizeof buf - (size_t)n, "e%d", (int)(rnd() % 80) - 40);
            break;
        }
        default: snprintf(buf, sizeof buf, "%lld", (long long)(rnd() >> (rnd() % 64))); break;
        }
        check_number(buf);
    }
}

/* Compares a jansson value with a tape value; the message names the first difference. */
static bool same_value(const json_t *j, const sg_jdoc *d, const sg_jv *v, char *why, size_t n)
{
    switch (json_typeof(j)) {
    case JSON_NULL: if (sg_jt_is(v, SG_JT_NULL)) return true; break;
    case JSON_TRUE: if (sg_jt_is(v, SG_JT_TRUE)) return true; break;
    case JSON_FALSE: if (sg_jt_is(v, SG_JT_FALSE)) return true; break;
    case JSON_INTEGER: /* jansson keeps "-0" as the integer 0: equal, not the same bits */
        if (sg_jt_is_integer(v) && (double)json_integer_value(j) == v->u.num) return true;
        break;
    case JSON_REAL:
        if (sg_jt_is(v, SG_JT_NUMBER) && !sg_jt_is_integer(v) &&
            same_bits(json_number_value(j), v->u.num))
            return true;
        break;
    case JSON_STRING:
        if (sg_jt_is(v, SG_JT_STRING) && v->n == json_string_length(j) &&
            memcmp(sg_jt_str(d, v), json_string_value(j), v->n) == 0)
            return true;
        break;
    case JSON_ARRAY:
        if (!sg_jt_is(v, SG_JT_ARRAY) || sg_jt_size(v) != json_array_size(j)) break;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!same_value(json_array_get(j, i), d, sg_jt_at(d, v, i), why, n)) return false;
        return true;
    case JSON_OBJECT: {
        if (!sg_jt_is(v, SG_JT_OBJECT) || v->n != json_object_size(j)) break;
        const char *key;
        json_t *jv;
        json_object_foreach((json_t *)j, key, jv) {
            const sg_jv *tv = sg_jt_get(d, v, key);
            if (!tv) {
                snprintf(why, n, "key \"%s\" missing from the tape", key);
                return false;
            }
            if (!same_value(jv, d, tv, why, n)) return false;
        }
        return true;
    }
    }
    snprintf(why, n, "jansson type %d, tape type %u", (int)json_typeof(j), v ? v->type : 99u);
    return false;
}

/* Both parsers on the same bytes: same verdict, same values. Returns whether it parsed. */
static bool differential(const char *text, size_t len)
{
    sg_jdoc d;
    sg_err err = {{0}};
    int rc;
    /* jansson ends a buffer at its first NUL byte; JSON has no place for one, so the tape
     * refuses it and jansson sees only the text before it. */
    if (memchr(text, 0, len)) {
        rc = sg_jt_parse("doc", text, len, &d, &err);
        if (rc == SG_OK) fail_msg("a document with a NUL byte was accepted");
        assert_non_null(strstr(err.msg, "doc: malformed JSON at line "));
        return false;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    rc = sg_jt_parse("doc", text, len, &d, &err);
    /* Known difference: jansson refuses integers beyond 64 bits; the tape rounds them to a
     * double as it does every number. */
    if (!j && strstr(jerr.text, "too big")) {
        if (!rc) sg_jt_free(&d);
        return false;
    }
    if ((j != NULL) != (rc == 0))
        fail_msg("verdicts differ on %.*s: jansson %s, tape %s", (int)(len < 200 ? len : 200), text,
                 j ? "accepts" : jerr.text, rc ? err.msg : "accepts");
    if (rc) {
        assert_int_equal(rc, SG_EINPUT);
        assert_non_null(strstr(err.msg, "doc: malformed JSON at line "));
        assert_null(strchr(err.msg, '\n'));
        return false;
    }
    char why[256] = "";
    if (!same_value(j, &d, sg_jt_root(&d), why, sizeof why))
        fail_msg("values differ on %.*s: %s", (int)(len < 200 ? len : 200), text, why);
    json_decref(j);
    sg_jt_free(&d);
    return true;
}

static void test_fixed_documents(void **state)
{
    (void)state;
    static const char *good[] = {
        "{}", "[]", " [ ] ", "0", "\"\"", "null", "true", "false", "[1,2,[3,[4,{}]]]",
        "{\"a\":{\"b\":[1,\"x\",null,true,false,-2.5e-3]},\"c\":\"\\u00e9\\uD83D\\uDE00\\n\\/\"}",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "{\"\":1}", "[\"\\\"\\\\\\b\\f\\r\\t\"]",
        "\n\t\r [1]\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(differential(good[i], strlen(good[i])));
    static const char *bad[] = {
        "", " ", "[", "]", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "01", "1.", ".5",
        "1e", "1e+", "-", "+1", "[1 2]", "\"\\x\"", "\"\\u12\"", "\"\\uD800\"", "\"\\uDC00\"",
        "\"\\uD800\\u0041\"", "\"\\u0000\"", "\"a\x01\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xc3\"", "\"\xff\"", "tru", "nul", "[1]x", "[1]]", "\"abc",
        "\"abc\\", "{\"a\":1,\"a\":2}", "1e400", "-1e400", "[01]",
        "[-]", "[1.e3]", "[0x10]", "[\"a\"\"b\"]", "{\"a\":}", "[true false]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(differential(bad[i], strlen(bad[i])));
    /* NaN and Infinity, which jansson refuses, are XGBoost's extension: see
       test_xgboost_special_numbers. */
    /* A NUL byte inside the text is a control character, not an end. */
    assert_false(differential("[\"a\0b\"]", 7));
    assert_false(differential("[1]\0", 4));
}

/* XGBoost's extension: NaN, Infinity and -Infinity, spelled exactly so, are numbers. */
static void test_xgboost_special_numbers(void **state)
{
    (void)state;
    sg_jdoc d;
    sg_err err = {{0}};
    const char *ok = "[NaN, Infinity,-Infinity ,{\"a\":NaN},[-Infinity],0]";
    assert_int_equal(sg_jt_parse("sp", ok, strlen(ok), &d, &err), SG_OK);
    const sg_jv *r = sg_jt_root(&d);
    assert_int_equal(sg_jt_size(r), 6);
    assert_true(sg_jt_is(sg_jt_at(&d, r, 0), SG_JT_NUMBER) && isnan(sg_jt_at(&d, r, 0)->u.num));
    assert_true(sg_jt_at(&d, r, 1)->u.num == INFINITY);
    assert_true(sg_jt_at(&d, r, 2)->u.num == -INFINITY);
    assert_true(isnan(sg_jt_get(&d, sg_jt_at(&d, r, 3), "a")->u.num));
    assert_true(sg_jt_at(&d, sg_jt_at(&d, r, 4), 0)->u.num == -INFINITY);
    assert_true(sg_jt_at(&d, r, 5)->u.num == 0);
    /* the bare words are XGBoost's Number, not its Integer; "0" is an integer */
    for (size_t i = 0; i < 3; i++)
        assert_false(sg_jt_is_integer(sg_jt_at(&d, r, i)));
    assert_true(sg_jt_is_integer(sg_jt_at(&d, r, 5)));
    sg_jt_free(&d);
    /* Written as an integer: digits alone, with a sign or not; a fraction or an exponent
       makes a number a float however whole it is (jansson agrees: test_random_against_jansson). */
    const char *forms = "[5, -0, 12345678901234567890, 5.0, 5E0, 5e+0, -0.0, 1e2]";
    assert_int_equal(sg_jt_parse("forms", forms, strlen(forms), &d, &err), SG_OK);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(sg_jt_is_integer(sg_jt_at(&d, sg_jt_root(&d), i)), i < 3);
    sg_jt_free(&d);
    /* A bare word alone is a document too. */
    assert_int_equal(sg_jt_parse("sp", "NaN", 3, &d, &err), SG_OK);
    assert_true(isnan(sg_jt_root(&d)->u.num));
    sg_jt_free(&d);
    static const char *const bad[] = {"[nan]", "[NAN]", "[Inf]", "[inf]", "[-inf]",
                                      "[+Infinity]", "[-NaN]", "[NaNa]", "[NaN0]", "[Infinityx]",
                                      "[-Infinit]", "[Na]", "[N]", "[-I]", "[\"NaN\" NaN]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sg_jt_parse("sp", bad[i], strlen(bad[i]), &d, &err) == SG_OK)
            fail_msg("%s was accepted", bad[i]);
        assert_non_null(strstr(err.msg, "sp: malformed JSON at line 1 column "));
    }
}

static void test_duplicates_and_depth(void **state)
{
    (void)state;
    sg_jdoc d;
    sg_err err = {{0}};
    /* An object large enough that duplicates are found by sorting. */
    char big[4096];
    int n = snprintf(big, sizeof big, "{");
    for (int i = 0; i < 200; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(big + n, sizeof big - (size_t)n, "}");
    assert_int_equal(sg_jt_parse("big", big, strlen(big), &d, &err), SG_OK);
    assert_int_equal(sg_jt_root(&d)->n, 200);
    const sg_jv *k137 = sg_jt_get(&d, sg_jt_root(&d), "k137");
    assert_true(sg_jt_is(k137, SG_JT_NUMBER) && k137->u.num == 137);
    assert_null(sg_jt_get(&d, sg_jt_root(&d), "k200"));
    sg_jt_free(&d);
    char *dup = strstr(big, "\"k150\"");
    memcpy(dup, "\"k151\"", 6);
    assert_int_equal(sg_jt_parse("big", big, strlen(big), &d, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "duplicate key \"k151\""));

    /* Nesting: the limit itself parses, one more level is refused with the line named. */
    char deep[2 * SG_JT_MAX_DEPTH + 8];
    memset(deep, '[', SG_JT_MAX_DEPTH);
    memset(deep + SG_JT_MAX_DEPTH, ']', SG_JT_MAX_DEPTH);
    assert_int_equal(sg_jt_parse("deep", deep, 2 * SG_JT_MAX_DEPTH, &d, &err), SG_OK);
    sg_jt_free(&d);
    memset(deep, '[', SG_JT_MAX_DEPTH + 1);
    memset(deep + SG_JT_MAX_DEPTH + 1, ']', SG_JT_MAX_DEPTH + 1);
    assert_int_equal(sg_jt_parse("deep", deep, 2 * SG_JT_MAX_DEPTH + 2, &d, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "nested deeper than 128"));

    /* The error position: line and column of the offending byte. */
    const char *t = "{\n  \"a\": [1,\n        2,,3]}";
    assert_int_equal(sg_jt_parse("pos.json", t, strlen(t), &d, &err), SG_EINPUT);
    assert_string_equal(err.msg, "pos.json: malformed JSON at line 3 column 11: unexpected "
                                 "character ','");
    assert_null(sg_jt_root(&d));
}

/* Random documents from the grammar, then mutated: byte flips, cuts, insertions. */
static size_t gen(char *o, size_t cap, int depth)
{
    static const char *atoms[] = {"0", "-1", "3.25", "1e-7", "-2.8398864E-3", "true", "false",
                                  "null", "\"\"", "\"ab\\n\"", "\"\\u00e9\"", "\"\xc3\xa9\"",
                                  "123456789", "0.1", "1E300", "\"\\uD83D\\uDE00\""};
    if (cap < 64) return 0;
    int kind = depth > 6 ? 0 : (int)(rnd() % 4);
    if (kind < 2) {
        const char *a = atoms[rnd() % (sizeof atoms / sizeof atoms[0])];
        size_t l = strlen(a);
        memcpy(o, a, l);
        return l;
    }
    size_t n = 0;
    bool obj = kind == 3;
    o[n++] = obj ? '{' : '[';
    int members = (int)(rnd() % 5);
    for (int i = 0; i < members && cap - n > 80; i++) {
        if (i) o[n++] = ',';
        if (rnd() % 4 == 0) o[n++] = ' ';
        if (obj) n += (size_t)snprintf(o + n, cap - n, "\"k%d\":", (int)(rnd() % 6));
        n += gen(o + n, cap - n - 2, depth + 1);
    }
    o[n++] = obj ? '}' : ']';
    return n;
}

static void test_random_against_jansson(void **state)
{
    (void)state;
    static char doc[8192];
    static const char inserts[] = "[]{}\",:\\-0e.\x80 \t";
    int accepted = 0, refused = 0;
    for (int i = 0; i < 40000; i++) {
        size_t n = gen(doc, sizeof doc - 8, 0);
        int muts = i % 3 == 0 ? 0 : (int)(rnd() % 3) + 1;
        for (int m = 0; m < muts && n > 0; m++) {
            size_t at = rnd() % n;
            switch (rnd() % 4) {
            case 0: doc[at] = (char)(rnd() & 0xFF); break;
            case 1: n = at; break;
            case 2:
                memmove(doc + at + 1, doc + at, n - at);
                doc[at] = inserts[rnd() % (sizeof inserts - 1)];
                n++;
                break;
            default: memmove(doc + at, doc + at + 1, n - at - 1); n--; break;
            }
        }
        if (differential(doc, n)) accepted++;
        else refused++;
    }
    /* Both outcomes must be well represented, or the comparison proves little. */
    assert_true(accepted > 10000);
    assert_true(refused > 10000);
}

/* ------------------------------------------------------------------ UBJSON
 * The same documents written as UBJSON by an encoder here (every integer width, float32 and
 * float64, counted, typed and open containers, no-ops) must give the values jansson reads
 * from the JSON text; cut, flipped and patched UBJSON must be refused in one line, never
 * read out of bounds (the sanitizer build runs this too). */

typedef struct {
    unsigned char *b;
    size_t n, cap;
} ubuf;

static void put(ubuf *u, const void *p, size_t n)
{
    if (u->n + n > u->cap) {
        u->cap = (u->n + n) * 2 + 64;
        u->b = realloc(u->b, u->cap);
        assert_non_null(u->b);
    }
    memcpy(u->b + u->n, p, n);
    u->n += n;
}

static void put_be(ubuf *u, uint64_t v, int n)
{
    unsigned char b[8];
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    put(u, b, (size_t)n);
}

static void put_c(ubuf *u, char c)
{
    put(u, &c, 1);
}

/* An integer with its marker: the smallest type that holds it, or at random a wider one. */
static void put_int(ubuf *u, int64_t v)
{
    static const struct { char m; int n; int64_t lo, hi; } t[] = {
        {'i', 1, -128, 127}, {'U', 1, 0, 255}, {'I', 2, -32768, 32767},
        {'l', 4, INT32_MIN, INT32_MAX}, {'L', 8, INT64_MIN, INT64_MAX}};
    int k = 0;
    while (!(v >= t[k].lo && v <= t[k].hi)) k++;
    if (rnd() % 3 == 0) k += (int)(rnd() % (5 - (unsigned)k));
    while (!(v >= t[k].lo && v <= t[k].hi)) k++;
    put_c(u, t[k].m);
    put_be(u, (uint64_t)v, t[k].n);
}

static void put_str(ubuf *u, const char *s, size_t n)
{
    put_int(u, (int64_t)n);
    put(u, s, n);
}

static void put_real(ubuf *u, double x)
{
    float f = (float)x;
    uint64_t bits;
    if ((double)f == x && rnd() % 2) {
        uint32_t b32;
        memcpy(&b32, &f, 4);
        put_c(u, 'd');
        put_be(u, b32, 4);
    } else {
        memcpy(&bits, &x, 8);
        put_c(u, 'D');
        put_be(u, bits, 8);
    }
}

static void encode(ubuf *u, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL: put_c(u, 'Z'); return;
    case JSON_TRUE: put_c(u, 'T'); return;
    case JSON_FALSE: put_c(u, 'F'); return;
    case JSON_INTEGER: put_int(u, json_integer_value(j)); return;
    case JSON_REAL: put_real(u, json_real_value(j)); return;
    case JSON_STRING:
        put_c(u, 'S');
        put_str(u, json_string_value(j), json_string_length(j));
        return;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        /* A typed array of float64 when every element is a float, as XGBoost writes (an
           integer stays an integer: the tape tells the two apart). */
        bool numbers = n > 0;
        for (size_t i = 0; i < n; i++)
            numbers &= json_is_real(json_array_get(j, i));
        int form = (int)(rnd() % 3);
        put_c(u, '[');
        if (numbers && form == 2) {
            put(u, "$D#", 3);
            put_int(u, (int64_t)n);
            for (size_t i = 0; i < n; i++) {
                double x = json_number_value(json_array_get(j, i));
                uint64_t bits;
                memcpy(&bits, &x, 8);
                put_be(u, bits, 8);
            }
            return;
        }
        if (form >= 1) {
            put_c(u, '#');
            put_int(u, (int64_t)n);
        }
        for (size_t i = 0; i < n; i++) {
            if (form == 0 && rnd() % 5 == 0) put_c(u, 'N');
            encode(u, json_array_get(j, i));
        }
        if (form == 0) put_c(u, ']');
        return;
    }
    case JSON_OBJECT: {
        bool counted = rnd() % 2;
        put_c(u, '{');
        if (counted) {
            put_c(u, '#');
            put_int(u, (int64_t)json_object_size(j));
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v) {
            if (!counted && rnd() % 5 == 0) put_c(u, 'N');
            put_str(u, key, strlen(key));
            encode(u, v);
        }
        if (!counted) put_c(u, '}');
        return;
    }
    }
}

static int ubj(const void *b, size_t n, sg_jdoc *d, sg_err *err)
{
    return sg_jt_parse_ubjson("m.ubj", b, n, d, err);
}

static void expect_ubj_refused(const void *b, size_t n, const char *what)
{
    sg_jdoc d;
    sg_err err = {{0}};
    int rc = ubj(b, n, &d, &err);
    if (rc != SG_EINPUT) fail_msg("%zu bytes: rc %d, expected: %s", n, rc, what);
    if (!strstr(err.msg, "m.ubj: malformed UBJSON at byte ") || !strstr(err.msg, what))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, what);
    assert_null(strchr(err.msg, '\n'));
    assert_null(sg_jt_root(&d));
}

static void test_ubjson_fixed(void **state)
{
    (void)state;
    sg_jdoc d;
    sg_err err = {{0}};
    /* Every scalar form, in an open array with no-ops between. */
    static const unsigned char all[] = {
        '[', 'i', 0x80, 'U', 0xFF, 'I', 0x80, 0x00, 'l', 0x80, 0, 0, 0, 'N',
        'L', 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 'd', 0x3F, 0xC0, 0, 0,
        'D', 0xBF, 0xF8, 0, 0, 0, 0, 0, 0, 'Z', 'T', 'F', 'C', 'x', 'S', 'U', 2, 0xC3, 0xA9,
        'H', 'i', 6, '-', '2', '.', '5', 'e', '3', ']'};
    assert_int_equal(ubj(all, sizeof all, &d, &err), SG_OK);
    const sg_jv *r = sg_jt_root(&d);
    assert_int_equal(sg_jt_size(r), 13);
    const double want[] = {-128, 255, -32768, -2147483648.0, 9223372036854775807.0, 1.5, -1.5};
    for (int i = 0; i < 7; i++) {
        assert_true(same_bits(sg_jt_at(&d, r, (size_t)i)->u.num, want[i]));
        /* the five integer types are integers, float32 and float64 are not */
        assert_int_equal(sg_jt_is_integer(sg_jt_at(&d, r, (size_t)i)), i < 5);
    }
    assert_false(sg_jt_is_integer(sg_jt_at(&d, r, 12))); /* "-2.5e3" in an H */
    assert_true(sg_jt_is(sg_jt_at(&d, r, 7), SG_JT_NULL));
    assert_true(sg_jt_is(sg_jt_at(&d, r, 8), SG_JT_TRUE));
    assert_true(sg_jt_is(sg_jt_at(&d, r, 9), SG_JT_FALSE));
    assert_string_equal(sg_jt_str(&d, sg_jt_at(&d, r, 10)), "x");
    assert_string_equal(sg_jt_str(&d, sg_jt_at(&d, r, 11)), "\xc3\xa9");
    assert_true(same_bits(sg_jt_at(&d, r, 12)->u.num, -2500.0));
    sg_jt_free(&d);

    /* A typed, counted float32 array and a counted object, as XGBoost writes them. */
    static const unsigned char xgb[] = {
        '{', '#', 'U', 2, 'U', 1, 'a', '[', '$', 'd', '#', 'U', 2, 0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0,
        'U', 1, 'b', '[', '$', 'U', '#', 'i', 3, 0, 1, 7};
    assert_true(sg_jt_looks_ubjson(xgb, sizeof xgb));
    assert_int_equal(ubj(xgb, sizeof xgb, &d, &err), SG_OK);
    const sg_jv *a = sg_jt_get(&d, sg_jt_root(&d), "a"), *b = sg_jt_get(&d, sg_jt_root(&d), "b");
    assert_int_equal(sg_jt_size(a), 2);
    assert_true(sg_jt_at(&d, a, 0)->u.num == 1.0 && sg_jt_at(&d, a, 1)->u.num == -2.0);
    assert_int_equal(sg_jt_size(b), 3);
    assert_true(sg_jt_at(&d, b, 2)->u.num == 7.0);
    assert_false(sg_jt_is_integer(sg_jt_at(&d, a, 0)));
    assert_true(sg_jt_is_integer(sg_jt_at(&d, b, 2)));
    sg_jt_free(&d);
    /* Every cut of it is refused, naming a byte. */
    for (size_t n = 0; n < sizeof xgb; n++)
        expect_ubj_refused(xgb, n, "");

    /* Counts and lengths are checked against the input before anything is allocated. */
    static const unsigned char huge[] = {'[', '$', 'd', '#', 'L', 0x7F, 0xFF, 0xFF, 0xFF,
                                         0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
    expect_ubj_refused(huge, sizeof huge, "bytes left can hold");
    static const unsigned char hugeo[] = {'{', '#', 'l', 0x10, 0, 0, 0, 'U', 1, 'a', 'Z'};
    expect_ubj_refused(hugeo, sizeof hugeo, "bytes left can hold");
    static const unsigned char longs[] = {'S', 'l', 0, 0, 0x10, 0, 'a', 'b'};
    expect_ubj_refused(longs, sizeof longs, "string length");
    static const unsigned char neg[] = {'S', 'i', 0xFF};
    expect_ubj_refused(neg, sizeof neg, "negative string length");
    static const unsigned char zeros[] = {'[', '$', 'Z', '#', 'L', 0x7F, 0, 0, 0, 0, 0, 0, 0};
    expect_ubj_refused(zeros, sizeof zeros, "element type");
    static const unsigned char nocount[] = {'[', '$', 'd', 0x3F, 0x80, 0, 0, ']'};
    expect_ubj_refused(nocount, sizeof nocount, "needs a count");
    static const unsigned char floatlen[] = {'S', 'd', 0, 0, 0, 0};
    expect_ubj_refused(floatlen, sizeof floatlen, "integer type marker");
    expect_ubj_refused("[X]", 3, "unknown type marker 'X'");
    expect_ubj_refused("[i\x01]x", 5, "bytes after the end");
    assert_int_equal(ubj("N[NN]N", 6, &d, &err), SG_OK); /* no-ops around values are nothing */
    assert_int_equal(sg_jt_size(sg_jt_root(&d)), 0);
    sg_jt_free(&d);
    expect_ubj_refused("{U\x01" "aZU\x01" "aT}", 10, "duplicate key \"a\"");
    expect_ubj_refused("SU\x03" "a\0b", 6, "NUL byte in a string");
    expect_ubj_refused("SU\x02\xc0\x80", 5, "invalid UTF-8");
    expect_ubj_refused("C\x80", 2, "not a non-NUL ASCII");
    expect_ubj_refused("HU\x02" "1.", 5, "no digits after");
    expect_ubj_refused("[#U\x02N]", 6, "no-op where a value");
    expect_ubj_refused("", 0, "empty input");
    /* Nesting: the limit parses, one level more is refused. */
    unsigned char deep[2 * SG_JT_MAX_DEPTH + 2];
    memset(deep, '[', SG_JT_MAX_DEPTH);
    memset(deep + SG_JT_MAX_DEPTH, ']', SG_JT_MAX_DEPTH);
    assert_int_equal(ubj(deep, 2 * SG_JT_MAX_DEPTH, &d, &err), SG_OK);
    sg_jt_free(&d);
    memset(deep, '[', SG_JT_MAX_DEPTH + 1);
    memset(deep + SG_JT_MAX_DEPTH + 1, ']', SG_JT_MAX_DEPTH + 1);
    expect_ubj_refused(deep, 2 * SG_JT_MAX_DEPTH + 2, "nested deeper than 128");

    /* What tells the two apart. */
    assert_true(sg_jt_looks_ubjson("{i\x01" "a", 4));
    assert_true(sg_jt_looks_ubjson("{#U\x00", 4));
    assert_false(sg_jt_looks_ubjson("{\"a\":1}", 7));
    assert_false(sg_jt_looks_ubjson("{}", 2));
    assert_false(sg_jt_looks_ubjson("{ \"a\":1}", 8));
    assert_false(sg_jt_looks_ubjson("{", 1));
    assert_false(sg_jt_looks_ubjson("", 0));
}

static void test_ubjson_random(void **state)
{
    (void)state;
    static char doc[8192];
    ubuf u = {0};
    int compared = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = gen(doc, sizeof doc - 8, 0);
        json_error_t jerr;
        json_t *j = json_loadb(doc, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (!j) continue; /* gen may repeat a key */
        u.n = 0;
        encode(&u, j);
        sg_jdoc d;
        sg_err err = {{0}};
        int rc = ubj(u.b, u.n, &d, &err);
        if (rc) fail_msg("UBJSON of %.*s refused: %s", (int)(n < 200 ? n : 200), doc, err.msg);
        char why[256] = "";
        if (!same_value(j, &d, sg_jt_root(&d), why, sizeof why))
            fail_msg("values differ on %.*s: %s", (int)(n < 200 ? n : 200), doc, why);
        sg_jt_free(&d);
        compared++;
        /* Then damaged: a flipped byte, a cut, a byte inserted or dropped. */
        for (int m = 0; m < 3 && u.n > 1; m++) {
            size_t at = rnd() % u.n;
            switch (rnd() % 4) {
            case 0: u.b[at] = (unsigned char)rnd(); break;
            case 1: u.n = at; break;
            case 2:
                put_c(&u, 0);
                memmove(u.b + at + 1, u.b + at, u.n - at - 1);
                u.b[at] = (unsigned char)rnd();
                break;
            default: memmove(u.b + at, u.b + at + 1, u.n - at - 1); u.n--; break;
            }
            rc = ubj(u.b, u.n, &d, &err);
            if (rc == SG_OK) {
                sg_jt_free(&d);
            } else {
                assert_int_equal(rc, SG_EINPUT);
                assert_non_null(strstr(err.msg, "m.ubj: malformed UBJSON at byte "));
                assert_null(strchr(err.msg, '\n'));
                refused++;
            }
        }
        json_decref(j);
    }
    free(u.b);
    assert_true(compared > 10000);
    assert_true(refused > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_match_strtod), cmocka_unit_test(test_float32_ties),
        cmocka_unit_test(test_fixed_documents),      cmocka_unit_test(test_xgboost_special_numbers),
        cmocka_unit_test(test_duplicates_and_depth), cmocka_unit_test(test_random_against_jansson),
        cmocka_unit_test(test_ubjson_fixed),         cmocka_unit_test(test_ubjson_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
