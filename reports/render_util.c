/* Shared pieces of the renderers: escaping and atomic output. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stagegate/gate.h"

size_t sg_render_control_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] < 0x20 || p[0] == 0x7F) return 1;                  /* C0 (TAB, CR, LF too), DEL */
    if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) return 2; /* C1: U+009B is a CSI */
    if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
        return 3; /* U+2028, U+2029: line and paragraph separators */
    if (p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
        return 3; /* U+FFFE, U+FFFF: not characters, and not allowed in XML 1.0 */
    return sg_bidi_control_len(s);
}

size_t sg_bidi_control_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] == 0xD8 && p[1] == 0x9C) return 2; /* U+061C arabic letter mark */
    if (p[0] != 0xE2) return 0;
    if (p[1] == 0x80 && ((p[2] >= 0x8E && p[2] <= 0x8F) || (p[2] >= 0xAA && p[2] <= 0xAE)))
        return 3; /* U+200E, U+200F; U+202A..U+202E embeddings and overrides */
    if (p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9) return 3; /* U+2066..U+2069 isolates */
    return 0;
}

void sg_fputs_xml_escaped(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        /* A direction control in a name (a file "fraud-v2\u202Egnp.h5") would reorder the
           name and the page's own text after it, and a C1 control (U+009B is an 8-bit CSI)
           drive a terminal that prints the file: shown as "?", as C0 controls are. */
        size_t ctl = sg_render_control_len((const char *)p);
        if (ctl) {
            fputc('?', out);
            p += ctl - 1;
            continue;
        }
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*p, out);
        }
    }
}

sg_status sg_render_to_file(const char *path, sg_render_fn fn, const sg_gate_decision *d,
                      json_t *statement, sg_err *err)
{
    sg_outfile o;
    sg_status rc = sg_render_stage(path, fn, d, statement, &o, err);
    return rc ? rc : sg_outfile_commit(&o, err);
}

sg_status sg_render_stage(const char *path, sg_render_fn fn, const sg_gate_decision *d,
                          json_t *statement, sg_outfile *o, sg_err *err)
{
    memset(o, 0, sizeof *o);
    int rc = sg_outfile_open(o, path, err);
    if (rc) return rc;
    errno = 0;
    rc = fn(o->fp, d, statement);
    const int e = errno;
    if (rc == SG_ENOMEM || (rc && !ferror(o->fp))) {
        sg_outfile_abort(o);
        return sg_errf(err, rc == SG_ENOMEM ? SG_ENOMEM : SG_EIO,
                       "%s: could not render the report", path);
    }
    if (rc || ferror(o->fp)) { /* a write failed: say why (a full disk, the size limit) */
        sg_outfile_abort(o);
        return sg_errf(err, SG_EIO, "%s: write failed: %s", path, e ? strerror(e) : "I/O error");
    }
    return sg_outfile_flush(o, err);
}

#include "render_internal.h"
#include "stagegate/common.h"

json_t *sg_render_pred(json_t *statement, const char *key)
{
    json_t *v = json_object_get(json_object_get(statement, "predicate"), key);
    return json_is_null(v) ? NULL : v;
}

const char *sg_render_subject_name(json_t *statement)
{
    json_t *s0 = json_array_get(json_object_get(statement, "subject"), 0);
    const char *s = json_string_value(json_object_get(s0, "name"));
    return s ? s : "model";
}

const char *sg_render_subject_sha256(json_t *statement)
{
    json_t *s0 = json_array_get(json_object_get(statement, "subject"), 0);
    const char *s = json_string_value(json_object_get(json_object_get(s0, "digest"), "sha256"));
    return s ? s : "";
}

/* bench JSON keeps percentiles under "latency_ns" (ns) or "latency_ms" (ms); accept both. */
bool sg_render_latency_ms(json_t *latency, const char *pct, double *ms)
{
    json_t *v = json_object_get(json_object_get(latency, "latency_ms"), pct);
    if (json_is_number(v)) {
        *ms = json_number_value(v);
        return true;
    }
    v = json_object_get(json_object_get(latency, "latency_ns"), pct);
    if (json_is_number(v)) {
        *ms = json_number_value(v) / 1e6;
        return true;
    }
    return false;
}

json_t *sg_render_latency_buckets(json_t *latency)
{
    json_t *b = json_object_get(json_object_get(latency, "histogram"), "buckets");
    return json_is_array(b) && json_array_size(b) > 0 ? b : NULL;
}

/* The check's figure in its unit, three significant digits. */
static void unit_number(char *buf, size_t n, const sg_gate_check *c, double v, int p)
{
    if (!isfinite(v))
        snprintf(buf, n, "\u2014");
    else if (!strncmp(c->name, "latency.", 8))
        sg_format_ns(v * 1e6, buf, n);
    else if (!strncmp(c->name, "memory.", 7))
        sg_format_bytes(v * 1048576.0, buf, n);
    else if (!strncmp(c->name, "shadow.", 7))
        snprintf(buf, n, "%.*f%%", p > 4 ? p - 2 : 2, 100 * v);
    else
        snprintf(buf, n, "%.*g", p, v);
}

void sg_gate_check_number(char *buf, size_t n, const sg_gate_check *c, double v)
{
    /* Plain numbers with the digits that tell the check's value from its limit. */
    const bool both = isfinite(c->value) && isfinite(c->limit);
    const int p = both ? sg_digits_apart(c->value, c->limit) : 4;
    /* the limit as itself where its digits allow (a threshold of 0.99999 had read "1") */
    unit_number(buf, n, c, v, both && v != c->value ? sg_digits_limit(c->value, c->limit) : p);
    if (!both || c->value == c->limit) return;
    /* Latency and memory read in three digits, which can make a failing value and its limit
       one text ("36 B" against "<= 36 B"): then both take the digits that tell them apart,
       in the unit of the larger. */
    char other[64];
    unit_number(other, sizeof other, c, v == c->value ? c->limit : c->value, p);
    if (strcmp(buf, other) != 0) return;
    if (!strncmp(c->name, "shadow.", 7)) { /* below 10%: more decimals until they differ */
        char a[64], b[64];
        for (int d = 3; d <= 20; d++) {
            snprintf(a, sizeof a, "%.*f%%", d, 100 * c->value);
            snprintf(b, sizeof b, "%.*f%%", d, 100 * c->limit);
            if (strcmp(a, b) != 0) break;
        }
        snprintf(buf, n, "%s", v == c->value ? a : b);
        return;
    }
    bool lat = !strncmp(c->name, "latency.", 8);
    if (!lat && strncmp(c->name, "memory.", 7)) return;
    const double base = lat ? 1e6 : 1048576.0; /* ms to ns, MiB to bytes */
    char a[64], b[64];
    sg_format_apart(c->value * base, c->limit * base, lat, false, a, sizeof a, b, sizeof b);
    snprintf(buf, n, "%s", v == c->value ? a : b);
}

void sg_format_apart(double value, double limit, bool time, bool keep_zeros, char *v, size_t vn,
                     char *lim, size_t ln)
{
    static const char *const ns_units[] = {"ns", "\u00b5s", "ms", "s"};
    static const char *const byte_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    const double big = fmax(fabs(value), fabs(limit)), step = time ? 1000 : 1024;
    double scale = 1;
    int k = 0;
    const int last = time ? 3 : 4;
    while (k < last && big >= scale * step) {
        scale *= step;
        k++;
    }
    const double a = value / scale, b = limit / scale;
    const int dp = sg_digits_apart(a, b);
    const char *u = time ? ns_units[k] : byte_units[k];
    snprintf(v, vn, keep_zeros ? "%#.*g %s" : "%.*g %s", dp, a, u);
    snprintf(lim, ln, keep_zeros ? "%#.*g %s" : "%.*g %s", dp, b, u);
}

void sg_render_percent(double frac, double limit, char *buf, size_t n)
{
    /* Two decimals, more where two would round a part to the whole or to nothing (29,999 of
       30,000 rows had read "100.00%" beside a failed min_agreement of 1), or to the limit it
       is held to (82.967% had read "82.97%" beside a failed min_agreement of 0.8297). */
    int d = 2;
    for (; d < 12; d++) {
        snprintf(buf, n, "%.*f", d, 100 * frac);
        double shown = strtod(buf, NULL);
        char lim[64];
        snprintf(lim, sizeof lim, "%.*f", d, 100 * limit);
        const bool same_as_limit = isfinite(limit) && frac != limit && strcmp(buf, lim) == 0;
        if (!((frac < 1 && shown >= 100) || (frac > 0 && shown <= 0) || same_as_limit)) break;
    }
    snprintf(buf, n, "%.*f%%", d, 100 * frac);
}

double sg_render_shadow_limit(json_t *statement)
{
    json_t *v = json_object_get(json_object_get(sg_render_pred(statement, "policy"), "shadow"),
                                "min_agreement");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int sg_render_metric_digits(json_t *statement, const char *name, double v, const json_t *baseline)
{
    /* Four significant digits, or as many as tell the value from the policy's threshold and
       from the baseline's value: accuracy 0.946 beside a threshold of 0.9460001 had read
       "0.946" in both tables of a FAILED check. */
    json_t *rule =
        json_object_get(json_object_get(sg_render_pred(statement, "policy"), "metrics"), name);
    json_t *thr = json_object_get(rule, "threshold");
    int d = 4;
    if (json_is_number(thr) && isfinite(v)) {
        int t = sg_digits_apart(v, json_number_value(thr));
        if (t > d) d = t;
    }
    if (json_is_number(baseline) && isfinite(v)) {
        int t = sg_digits_apart(v, json_number_value(baseline));
        if (t > d) d = t;
    }
    return d;
}
