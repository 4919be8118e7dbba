/* Deterministic JSON output and strict number parsing. */
#include "stagegate/json.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *sg_json_dumps(json_t *doc, bool indent)
{
    size_t flags = JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17);
    if (indent) flags |= JSON_INDENT(2);
    return sg_json_text_escape(json_dumps(doc, flags));
}

sg_status sg_json_print(json_t *doc)
{
    char *s = sg_json_dumps(doc, true);
    if (!s) return -1;
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return fflush(stdout) == 0 ? 0 : -1;
}

sg_status sg_json_set_real(json_t *obj, const char *key, double v)
{
    return json_object_set_new(obj, key, isfinite(v) ? json_real(v) : json_null());
}

sg_status sg_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out,
                 sg_err *err)
{
    char *end = NULL;
    errno = 0;
    /* strtoll skips leading white space; a value written with it is refused, as trailing
       white space is. */
    long long v = isspace((unsigned char)s[0]) ? 0 : strtoll(s, &end, 10);
    if (errno || !end || *end || end == s || v < min || v > max) {
        sg_errf(err, SG_EINPUT, "%s: '%s' is not an integer in [%lld, %lld]", opt, s,
                (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

sg_status sg_parse_double(const char *opt, const char *s, double min, double max, double *out,
                    sg_err *err)
{
    char *end = NULL;
    errno = 0;
    /* Decimal only: strtod also reads C's hex floats ("0x0.1p0" as 0.0625, "0x10" as 16),
       which no option means and the integer options refuse. */
    const bool hex = strpbrk(s, "xX") != NULL;
    double v = isspace((unsigned char)s[0]) || hex ? 0 : strtod(s, &end);
    /* A subnormal (1e-310, 5e-324) is a number strtod flags as an underflow: read it. One
       that underflows to 0 (1e-400) is refused as such, not as "not a number". */
    if (errno == ERANGE && v != 0 && isfinite(v) && fabs(v) <= DBL_MIN) errno = 0;
    if (errno == ERANGE && v == 0 && end && !*end && end != s) {
        sg_errf(err, SG_EINPUT, "%s: '%s' is too small for a double (it would read as 0)", opt, s);
        return -1;
    }
    if (errno || !end || *end || end == s || !isfinite(v) || v < min || v > max) {
        sg_errf(err, SG_EINPUT, "%s: '%s' is not a number in [%g, %g]", opt, s, min, max);
        return -1;
    }
    *out = v == 0 ? 0.0 : v; /* "-0" is 0, not a -0 to be echoed in a report */
    return 0;
}

/* s as sg_put_printable writes it, or NULL when it needs no change (or, with *failed set,
   when out of memory). */
static char *printable_copy(const char *s, bool *failed)
{
    if (sg_is_printable(s)) return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) {
        *failed = true;
        return NULL;
    }
    sg_put_printable(f, s);
    if (fclose(f) != 0) {
        free(buf);
        *failed = true;
        return NULL;
    }
    return buf;
}

json_t *sg_json_string_safe(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j) return j;
    /* not UTF-8: its bytes as sg_put_printable writes them */
    bool failed = false;
    char *p = printable_copy(s, &failed);
    j = p ? json_string(p) : NULL;
    free(p);
    return j;
}

json_t *sg_json_printable(json_t *v)
{
    bool failed = false;
    json_t *out = NULL;
    if (json_is_string(v)) {
        char *p = printable_copy(json_string_value(v), &failed);
        out = p ? json_string(p) : failed ? NULL : json_incref(v);
        free(p);
    } else if (json_is_array(v)) {
        out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!out || json_array_append_new(out, sg_json_printable(e)) != 0) failed = true;
        }
    } else if (json_is_object(v)) {
        out = json_object();
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            char *pk = printable_copy(k, &failed);
            if (!out || json_object_set_new(out, pk ? pk : k, sg_json_printable(e)) != 0)
                failed = true;
            free(pk);
        }
    } else {
        out = json_incref(v);
    }
    if (failed) {
        json_decref(out);
        return NULL;
    }
    return out;
}

size_t sg_json_count_values(const char *text, size_t len, size_t stop_at)
{
    size_t n = 1;
    bool in_str = false;
    for (size_t i = 0; i < len && n <= stop_at; i++) {
        const char ch = text[i];
        if (in_str) {
            if (ch == '\\')
                i++; /* the escaped character, whatever it is */
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[' || ch == ',') {
            n++;
        }
    }
    return n;
}

const char *sg_json_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}
