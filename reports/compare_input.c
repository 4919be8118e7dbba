/*
 * Inputs of `stagegate compare`: a signed gate report (DSSE envelope around an
 * in-toto statement whose predicate embeds the bench JSON) or a bare
 * `bench --json` document, both normalised to an sg_compare_run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/compare.h"
#include "stagegate/json.h"
#include "stagegate/keys.h"
#include "stagegate/report.h"
#include "datasets/json_tape.h"

void sg_compare_run_clear(sg_compare_run *run)
{
    if (!run) return;
    json_decref(run->statement);
    json_decref(run->doc);
    json_decref(run->fingerprint);
    free(run->bins);
    free(run->rep_values);
    free(run->rep_queries);
    free(run->rep_noisy);
    memset(run, 0, sizeof *run);
}

sg_status sg_dsse_payload_unverified(const uint8_t *env, size_t len, json_t **statement, sg_err *err)
{
    *statement = NULL;
    json_error_t je;
    /* Read as the verifier reads it: duplicate keys refused (a parser that kept the last
       one would see another statement than one that kept the first), base64 in either
       alphabet with or without padding. */
    if (len > SG_JSON_COUNT_FROM &&
        sg_json_count_values((const char *)env, len, SG_JSON_ENVELOPE_VALUES) >
        SG_JSON_ENVELOPE_VALUES)
        return sg_errf(err, SG_EINPUT, "envelope holds more than %d JSON values",
                       SG_JSON_ENVELOPE_VALUES);
    json_t *e = json_loadb((const char *)env, len, JSON_REJECT_DUPLICATES, &je);
    if (!e) return sg_errf(err, SG_EINPUT, "envelope is not JSON (line %d: %s)", je.line, je.text);
    json_t *pv = json_object_get(e, "payload");
    const char *b64 = json_string_value(pv);
    if (!b64) {
        json_decref(e);
        return sg_errf(err, SG_EINPUT, "envelope has no \"payload\" string");
    }
    uint8_t *payload = NULL;
    size_t plen = 0;
    int bad = sg_dsse_base64_decode(b64, json_string_length(pv), &payload, &plen);
    json_decref(e);
    if (bad) return sg_errf(err, SG_EINPUT, "envelope \"payload\" is not valid base64");
    if (sg_json_count_values((const char *)payload, plen, SG_JSON_STATEMENT_VALUES) >
        SG_JSON_STATEMENT_VALUES) {
        free(payload);
        return sg_errf(err, SG_EINPUT, "envelope \"payload\" holds more than %zu JSON values",
                       SG_JSON_STATEMENT_VALUES);
    }
    *statement = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, &je);
    free(payload);
    if (!json_is_object(*statement)) {
        bool parsed = *statement != NULL;
        json_decref(*statement);
        *statement = NULL;
        if (parsed)
            return sg_errf(err, SG_EINPUT,
                           "envelope payload is JSON but not an object (an in-toto statement)");
        return sg_errf(err, SG_EINPUT, "envelope payload is not JSON (line %d: %s)", je.line,
                       je.text);
    }
    return SG_OK;
}

sg_status sg_dsse_subject_unverified(const uint8_t *env, size_t len, char out[65], sg_err *err)
{
    out[0] = '\0';
    sg_jdoc e = {0}, st = {0};
    uint8_t *payload = NULL;
    size_t plen = 0;
    sg_status rc = SG_OK;
    const sg_jv *pv = NULL;
    if ((rc = sg_jt_parse("envelope", (const char *)env, len, &e, err)) != SG_OK) {
    } else if (!sg_jt_is(sg_jt_root(&e), SG_JT_OBJECT) ||
               !sg_jt_is(pv = sg_jt_get(&e, sg_jt_root(&e), "payload"), SG_JT_STRING)) {
        rc = sg_errf(err, SG_EINPUT, "envelope has no \"payload\" string");
    } else if (sg_dsse_base64_decode(sg_jt_str(&e, pv), pv->n, &payload, &plen)) {
        rc = sg_errf(err, SG_EINPUT, "envelope \"payload\" is not valid base64");
    } else if ((rc = sg_jt_parse("envelope payload", (const char *)payload, plen, &st, err)) !=
               SG_OK) {
    } else if (!sg_jt_is(sg_jt_root(&st), SG_JT_OBJECT))
        rc = sg_errf(err, SG_EINPUT,
                     "envelope payload is JSON but not an object (an in-toto statement)");
    if (rc == SG_OK) {
        const sg_jv *subjects = sg_jt_get(&st, sg_jt_root(&st), "subject");
        const sg_jv *sha = NULL;
        if (sg_jt_is(subjects, SG_JT_ARRAY) && sg_jt_size(subjects) > 1)
            /* The registry takes a report for exactly one artifact: one for several had been
               stored under the first, where no transition could ever use it. */
            rc = sg_errf(err, SG_EINPUT, "report's statement names %zu subjects, not one",
                         sg_jt_size(subjects));
        else if (sg_jt_is(subjects, SG_JT_ARRAY) && sg_jt_size(subjects) == 1) {
            const sg_jv *s0 = sg_jt_at(&st, subjects, 0);
            const sg_jv *dg = sg_jt_is(s0, SG_JT_OBJECT) ? sg_jt_get(&st, s0, "digest") : NULL;
            sha = sg_jt_is(dg, SG_JT_OBJECT) ? sg_jt_get(&st, dg, "sha256") : NULL;
        }
        const char *hex = sg_jt_is(sha, SG_JT_STRING) ? sg_jt_str(&st, sha) : NULL;
        if (rc == SG_OK && (!hex || sha->n != 64 || strspn(hex, "0123456789abcdef") != 64))
            rc = sg_errf(err, SG_EINPUT, "report's statement names no subject sha256 digest");
        else if (rc == SG_OK)
            memcpy(out, hex, 65);
    }
    free(payload);
    sg_jt_free(&st);
    sg_jt_free(&e);
    return rc;
}

static void copy_str(char *dst, size_t cap, const json_t *v)
{
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Buckets [[low_ns, count], ...] ascending; an absent histogram is not an error here. */
static sg_status load_bins(const char *path, json_t *latency, sg_compare_run *run, sg_err *err)
{
    json_t *h = json_object_get(latency, "histogram");
    if (!h || json_is_null(h)) return SG_OK;
    json_t *b = json_object_get(h, "buckets");
    if (!json_is_array(b))
        return sg_errf(err, SG_EINPUT, "%s: latency histogram has no \"buckets\" array", path);
    size_t n = json_array_size(b);
    int64_t total = 0;
    run->bins = calloc(n ? n : 1, sizeof *run->bins);
    if (!run->bins) return sg_errf(err, SG_ENOMEM, "%s: out of memory reading the histogram", path);
    for (size_t i = 0; i < n; i++) {
        json_t *pair = json_array_get(b, i);
        json_t *v = json_array_get(pair, 0), *c = json_array_get(pair, 1);
        if (json_array_size(pair) != 2 || !json_is_integer(v) || !json_is_integer(c) ||
            json_integer_value(v) < 0 || json_integer_value(c) < 0)
            return sg_errf(err, SG_EINPUT, "%s: histogram bucket %zu is not [low_ns, count]", path,
                           i);
        run->bins[i].value = (double)json_integer_value(v);
        run->bins[i].count = json_integer_value(c);
        /* 2^53 queries is centuries of nanosecond runs; past it counts lose exactness in the U
         * test. */
        if (run->bins[i].count > (INT64_C(1) << 53) - total)
            return sg_errf(err, SG_EINPUT,
                           "%s: histogram counts add up to more than 2^53 queries at bucket %zu",
                           path, i);
        total += run->bins[i].count;
        if (i && !(run->bins[i].value > run->bins[i - 1].value))
            return sg_errf(err, SG_EINPUT, "%s: histogram buckets are not ascending at bucket %zu",
                           path, i);
    }
    run->n_bins = n;
    return SG_OK;
}

/* Sum of a histogram object's bucket counts; -1 when it is not [[low_ns, count], ...]. */
static int64_t histogram_total(const json_t *h)
{
    json_t *b = json_object_get(h, "buckets"), *pair;
    size_t i;
    int64_t total = 0;
    if (!json_is_array(b)) return -1;
    json_array_foreach(b, i, pair)
    {
        json_t *c = json_array_get(pair, 1);
        if (json_array_size(pair) != 2 || !json_is_integer(c) || json_integer_value(c) < 0 ||
            json_integer_value(c) > INT64_MAX / 2 - total)
            return -1;
        total += json_integer_value(c);
    }
    return total;
}

/*
 * The timed window of a run or of repetitions[i] (i < 0: the run), "duration_s": -1 in *s when
 * the document does not carry it (recorded before it was kept); a value that is not a finite
 * non-negative number is refused.
 */
static sg_status timed_seconds(const char *path, const json_t *o, long i, double *s, sg_err *err)
{
    json_t *d = json_object_get(o, "duration_s");
    *s = -1;
    if (!d || json_is_null(d)) return SG_OK;
    if (!json_is_number(d) || !isfinite(json_number_value(d)) || json_number_value(d) < 0) {
        if (i < 0)
            return sg_errf(err, SG_EINPUT,
                           "%s: latency.duration_s is not a finite non-negative number", path);
        return sg_errf(err, SG_EINPUT,
                       "%s: repetitions[%ld].duration_s is not a finite non-negative number", path,
                       i);
    }
    *s = json_number_value(d);
    return SG_OK;
}

/*
 * "repetitions": [{"queries", "latency_ns": {p50, p90, p99, p999}, "histogram"?, "noise"?}]
 * with "repetition_count" equal to its length. Every field compare relies on is checked here,
 * so a damaged run is refused with the field named instead of skewing a verdict.
 */
static sg_status load_repetitions(const char *path, json_t *latency, sg_compare_run *run, sg_err *err)
{
    static const char *const pct[] = {"p50", "p90", "p99", "p999"};
    json_t *reps = json_object_get(latency, "repetitions");
    json_t *count = json_object_get(latency, "repetition_count");
    if (!reps) {
        if (count)
            return sg_errf(err, SG_EINPUT,
                           "%s: repetition_count is set but there is no "
                           "\"repetitions\" array",
                           path);
        return SG_OK; /* recorded before repetitions existed: one run */
    }
    if (!json_is_array(reps))
        return sg_errf(err, SG_EINPUT, "%s: repetitions is not an array", path);
    size_t n = json_array_size(reps);
    if (n == 0)
        return sg_errf(err, SG_EINPUT,
                       "%s: repetitions is empty (zero repetitions: a run needs at least one)",
                       path);
    if (count && (!json_is_integer(count) || json_integer_value(count) != (json_int_t)n))
        return sg_errf(err, SG_EINPUT,
                       "%s: repetition_count is %s but repetitions holds %zu (mismatched "
                       "repetition counts)",
                       path, json_is_integer(count) ? "another number" : "not an integer", n);
    /* bench makes at most 1,000; the latency verdict reads that many (compare_latency.c). */
    if (n > 1000)
        return sg_errf(err, SG_EINPUT,
                       "%s: repetitions holds %zu entries, more than the 1000 a run can have", path,
                       n);
    run->rep_values = calloc(n * SG_COMPARE_PERCENTILES, sizeof *run->rep_values);
    run->rep_queries = calloc(n, sizeof *run->rep_queries);
    run->rep_noisy = calloc(n, sizeof *run->rep_noisy);
    if (!run->rep_values || !run->rep_queries || !run->rep_noisy)
        return sg_errf(err, SG_ENOMEM, "%s: out of memory reading repetitions", path);
    size_t missing = 0, first_missing = 0;
    double shortest = INFINITY;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(reps, i);
        json_t *q = json_object_get(r, "queries");
        if (!json_is_object(r))
            return sg_errf(err, SG_EINPUT, "%s: repetitions[%zu] is not an object", path, i);
        if (!json_is_integer(q) || json_integer_value(q) < 1)
            return sg_errf(err, SG_EINPUT, "%s: repetitions[%zu].queries is not a positive integer",
                           path, i);
        run->rep_queries[i] = json_integer_value(q);
        for (int k = 0; k < SG_COMPARE_PERCENTILES; k++) {
            json_t *v = json_object_get(json_object_get(r, "latency_ns"), pct[k]);
            if (!sg_compare_latency_ok(v))
                return sg_errf(err, SG_EINPUT,
                               "%s: repetitions[%zu].latency_ns.%s is not a latency (a positive "
                               "number of nanoseconds, at most 1e15)",
                               path, i, pct[k]);
            run->rep_values[i * SG_COMPARE_PERCENTILES + (size_t)k] = json_number_value(v);
        }
        json_t *h = json_object_get(r, "histogram");
        if (h && !json_is_null(h)) {
            int64_t total = histogram_total(h);
            if (total < 0)
                return sg_errf(err, SG_EINPUT,
                               "%s: repetitions[%zu].histogram.buckets is not [[low_ns, count], "
                               "...]",
                               path, i);
            if (total != run->rep_queries[i])
                return sg_errf(err, SG_EINPUT,
                               "%s: repetitions[%zu].histogram counts add up to %lld, not its "
                               "queries (%lld)",
                               path, i, (long long)total, (long long)run->rep_queries[i]);
        }
        /* Which repetitions are left out depends on it: "yes" had been read as clean. */
        json_t *noisy = json_object_get(json_object_get(r, "noise"), "noisy");
        if (noisy && !json_is_boolean(noisy))
            return sg_errf(err, SG_EINPUT, "%s: repetitions[%zu].noise.noisy is not true or false",
                           path, i);
        run->rep_noisy[i] = json_is_true(noisy);
        double d;
        sg_status rc = timed_seconds(path, r, (long)i, &d, err);
        if (rc) return rc;
        if (d < 0 && !missing++) first_missing = i;
        if (d >= 0) shortest = fmin(shortest, d);
    }
    run->n_reps = (int)n;
    /* Every bench run with repetitions keeps each one's length: some without it is a damaged
       document (judged as an old one, it had escaped the minimum length). None (recorded
       before it was kept): the run's own duration_s is their sum, so their mean stands in. */
    if (missing && missing < n)
        return sg_errf(err, SG_EINPUT,
                       "%s: repetitions[%zu].duration_s is missing, while other repetitions "
                       "carry theirs",
                       path, first_missing);
    if (!missing)
        run->shortest_timed_s = shortest;
    else if (run->shortest_timed_s >= 0)
        run->shortest_timed_s /= (double)n;
    return SG_OK;
}

/* Fills the latency-derived fields from a bench document (top level or the predicate's "latency").
 */
static int load_latency(const char *path, json_t *latency, sg_compare_run *run, sg_err *err)
{
    if (!json_is_object(latency)) return SG_OK; /* a report without a latency section */
    if (!json_is_object(json_object_get(latency, "latency_ns")))
        return sg_errf(err, SG_EINPUT, "%s: latency section has no \"latency_ns\" object", path);
    static const char *const pct[] = {"p50", "p90", "p99", "p999"};
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++) {
        json_t *v = json_object_get(json_object_get(latency, "latency_ns"), pct[i]);
        /* 0 ns had made every ratio NaN and every verdict "unchanged": a 4x slowdown passed */
        if (v && !json_is_null(v) && !sg_compare_latency_ok(v))
            return sg_errf(err, SG_EINPUT,
                           "%s: latency_ns.%s is not a latency (a positive number of "
                           "nanoseconds, at most 1e15)",
                           path, pct[i]);
    }
    /* Runs of different scenarios measure different things (the settings check compares
       them): a run that does not say which it is cannot be judged against another. */
    json_t *sc = json_object_get(latency, "scenario");
    if (!json_is_string(sc) || !json_string_value(sc)[0])
        return sg_errf(err, SG_EINPUT,
                       "%s: latency section has no \"scenario\" (single-stream, offline or "
                       "server)",
                       path);
    /* The clock's overhead is the absolute noise floor of every percentile's verdict (moves
       smaller than it are "within the clock's resolution"): 1e300 or a string had been taken
       as given, so an edited run hid a 2x slowdown. Reading the clock takes nanoseconds, or a
       few microseconds where a hypervisor traps the TSC; over 1 ms it is no clock. */
    json_t *clk = json_object_get(latency, "clock");
    if (clk && !json_is_null(clk)) {
        json_t *ov = json_object_get(clk, "overhead_ns");
        double x = json_number_value(ov);
        if (!json_is_object(clk) ||
            (ov && !json_is_null(ov) && (!json_is_number(ov) || !(x >= 0) || x > 1e6)))
            return sg_errf(err, SG_EINPUT,
                           "%s: clock.overhead_ns is not a clock's overhead (a number of "
                           "nanoseconds from 0 to 1,000,000)",
                           path);
    }
    run->latency = latency;
    copy_str(run->scenario, sizeof run->scenario, json_object_get(latency, "scenario"));
    json_t *machine = json_object_get(latency, "machine");
    if (machine && !json_is_null(machine) && !json_is_object(machine))
        return sg_errf(err, SG_EINPUT, "%s: \"machine\" is not an object", path);
    if (machine) run->fingerprint = sg_fingerprint_from_machine(machine);
    int rc = load_bins(path, latency, run, err);
    if (!rc) rc = timed_seconds(path, latency, -1, &run->shortest_timed_s, err);
    return rc ? rc : load_repetitions(path, latency, run, err);
}

static int load_report(const char *path, const uint8_t *data, size_t len, EVP_PKEY *pub,
                       sg_compare_run *run, sg_err *err)
{
    int rc;
    snprintf(run->kind, sizeof run->kind, "report");
    if (pub) {
        sg_report_info info;
        rc = sg_report_verify(data, len, pub, NULL, &info, err);
        if (rc == SG_OK) {
            run->statement = info.statement;
            info.statement = NULL;
            run->verified = true;
            memcpy(run->key_id, info.key_id, sizeof run->key_id);
        } else if (rc == SG_EREFUSED) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            sg_errf(err, SG_EREFUSED, "%s does not verify with the given public key: %s", path,
                    why);
        }
        sg_report_info_clear(&info);
        if (rc) return rc;
    } else if ((rc = sg_dsse_payload_unverified(data, len, &run->statement, err))) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return sg_errf(err, rc, "%s: %s", path, why);
    }
    sg_dsse_payload_sha256(data, len, run->payload_sha256);
    json_t *pred = json_object_get(run->statement, "predicate");
    if (!json_is_object(pred))
        return sg_errf(err, SG_EINPUT, "%s: statement has no \"predicate\" object", path);
    json_t *s0 = json_array_get(json_object_get(run->statement, "subject"), 0);
    copy_str(run->subject, sizeof run->subject, json_object_get(s0, "name"));
    copy_str(run->subject_sha256, sizeof run->subject_sha256,
             json_object_get(json_object_get(s0, "digest"), "sha256"));
    copy_str(run->result, sizeof run->result, json_object_get(pred, "result"));
    copy_str(run->timestamp, sizeof run->timestamp, json_object_get(pred, "timestamp"));
    json_t *m = json_object_get(pred, "metrics"), *p = json_object_get(pred, "policy");
    run->metrics = json_is_object(m) ? m : NULL;
    run->policy = json_is_object(p) ? p : NULL;
    return load_latency(path, json_object_get(pred, "latency"), run, err);
}

/* The key whose value starts at byte `pos` ("p50" in `"p50": NaN`), or "" when there is none. */
static void key_before(const uint8_t *data, size_t len, size_t pos, char *key, size_t cap)
{
    key[0] = 0;
    if (pos > len) pos = len;
    /* The lexer may have read past the bad token: step back to its first letter. */
    size_t i = pos;
    for (size_t back = 0; i > 0 && back < 16; back++, i--)
        if ((data[i - 1] == 'N' || data[i - 1] == 'I') && (i < 2 || data[i - 2] != 'a')) break;
    if (i > 0) i--;
    while (i > 0 && data[i - 1] != ':' && data[i - 1] != ',' && data[i - 1] != '[')
        i--;
    if (i == 0 || data[i - 1] != ':') return;
    i--;
    while (i > 0 && data[i - 1] != '"')
        i--; /* the closing quote of the key */
    if (i == 0) return;
    size_t end = --i;
    while (i > 0 && data[i - 1] != '"')
        i--;
    size_t n = end - i < cap - 1 ? end - i : cap - 1;
    memcpy(key, data + i, n);
    key[n] = 0;
}

sg_status sg_compare_load(const char *path, EVP_PKEY *pub, sg_compare_run *run, sg_err *err)
{
    memset(run, 0, sizeof *run);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = sg_read_file(path, 64u << 20, &data, &len, err);
    if (rc) return rc;
    rc = sg_compare_load_buffer(path, data, len, pub, run, err);
    free(data);
    return rc;
}

sg_status sg_compare_load_buffer(const char *path, const uint8_t *data, size_t len, EVP_PKEY *pub,
                           sg_compare_run *run, sg_err *err)
{
    int rc;
    memset(run, 0, sizeof *run);
    snprintf(run->path, sizeof run->path, "%s", path);
    sg_sha256_hex(data, len, run->file_sha256);
    json_error_t je;
    /* Duplicate keys refused, as in every signed statement: of two values of one field, a
       reader taking the first and one taking the last would judge different runs. */
    json_t *doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(doc)) {
        const bool parsed = doc != NULL, array = json_is_array(doc);
        json_decref(doc);
        /* Python's json writes NaN unquoted; name the field rather than say "invalid token". */
        bool nan = !parsed && (strstr(je.text, "'NaN'") || strstr(je.text, "'Infinity'") ||
                            strstr(je.text, "'-Infinity'"));
        char key[64] = "";
        if (nan) {
            key_before(data, len, (size_t)je.position, key, sizeof key);
            sg_errf(err, SG_EINPUT,
                    "%s:%d:%d: field \"%s\" is NaN or Infinity, not a finite number", path, je.line,
                    je.column, key[0] ? key : "?");
        } else if (parsed) { /* valid JSON, parsed whole: no error position to give */
            sg_errf(err, SG_EINPUT, "%s: not a JSON object (the document is %s)", path,
                    array ? "an array" : "another JSON value");
        } else if (strstr(je.text, "duplicate object key")) {
            sg_errf(err, SG_EINPUT, "%s:%d:%d: %s (each field may appear once)", path, je.line,
                    je.column, je.text);
        } else {
            sg_errf(err, SG_EINPUT, "%s:%d:%d: not a JSON object (%s)", path, je.line, je.column,
                    je.text);
        }
        return SG_EINPUT;
    }
    if (json_object_get(doc, "payloadType") && json_object_get(doc, "payload")) {
        json_decref(doc);
        rc = load_report(path, data, len, pub, run, err);
    } else if (json_object_get(doc, "latency_ns")) {
        run->doc = doc;
        snprintf(run->kind, sizeof run->kind, "bench");
        if (pub)
            rc = sg_errf(err, SG_EINPUT,
                         "%s is bench JSON, not a signed report: --pubkey cannot verify it", path);
        else
            rc = load_latency(path, doc, run, err);
    } else {
        json_decref(doc);
        rc = sg_errf(err, SG_EINPUT,
                     "%s is neither a signed report (DSSE envelope) nor `bench --json` output",
                     path);
    }
    if (rc) sg_compare_run_clear(run);
    return rc;
}
