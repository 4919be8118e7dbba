/*
 * One-pass JSON parser into a flat tape (see json_tape.h).
 *
 * Values go onto the tape in document order; a container's value is pushed when it opens
 * and completed when it closes. While a container is open its members' indices collect on
 * a pending stack; at the close they move, in order, into the kids table, so that element i
 * of any array is one lookup however the document nests. Work and memory are linear in the
 * input: duplicate keys are found by sorting the keys of large objects, not by pairs.
 */
#define _GNU_SOURCE /* qsort_r */
#include "json_tape.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *s, *p, *end;
    bool ubj; /* UBJSON: errors name a byte offset instead of a line and column */
    sg_jdoc *d;
    uint32_t *pend; /* indices of the open containers' members so far */
    size_t npend, pcap;
    sg_err *err;
} parser;

static sg_status perr(parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sg_status perr(parser *ps, const char *at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (ps->ubj)
        return sg_errf(ps->err, SG_EINPUT, "%s: malformed UBJSON at byte %zu: %s", ps->name,
                       (size_t)(at - ps->s), what);
    long line = 1;
    const char *bol = ps->s;
    for (const char *q = ps->s; q < at; q++)
        if (*q == '\n') {
            line++;
            bol = q + 1;
        }
    return sg_errf(ps->err, SG_EINPUT, "%s: malformed JSON at line %ld column %ld: %s", ps->name,
                   line, (long)(at - bol) + 1, what);
}

static sg_status nomem(parser *ps)
{
    return sg_errf(ps->err, SG_ENOMEM, "%s: out of memory parsing JSON", ps->name);
}

/* Room for `more` elements of `size` bytes in *buf (capacity *cap, count n). */
static bool reserve(void **buf, size_t *cap, size_t n, size_t more, size_t size)
{
    if (n + more <= *cap) return true;
    size_t want = *cap ? *cap : 1024;
    while (want < n + more)
        want *= 2;
    size_t bytes;
    if (!sg_mul_size(want, size, &bytes)) return false;
    void *g = realloc(*buf, bytes);
    if (!g) return false;
    *buf = g;
    *cap = want;
    return true;
}

static sg_status push_value(parser *ps, sg_jt_type t, uint32_t *index)
{
    sg_jdoc *d = ps->d;
    if (d->nv >= UINT32_MAX - 1)
        return perr(ps, ps->p, "more than %u values", (unsigned)(UINT32_MAX - 1));
    if (!reserve((void **)&d->v, &d->vcap, d->nv, 1, sizeof *d->v)) return nomem(ps);
    *index = (uint32_t)d->nv;
    d->v[d->nv++] = (sg_jv){.type = (uint32_t)t};
    return SG_OK;
}

static sg_status push_pending(parser *ps, uint32_t index)
{
    if (!reserve((void **)&ps->pend, &ps->pcap, ps->npend, 1, sizeof *ps->pend)) return nomem(ps);
    ps->pend[ps->npend++] = index;
    return SG_OK;
}

static inline void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *q, const char *end, uint32_t *out)
{
    if (end - q < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0) return false;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at ps->p (the opening quote), decoded into the arena as a new tape value. */
static sg_status parse_string(parser *ps, uint32_t *index)
{
    const char *start = ps->p + 1, *q = start;
    /* Find the closing quote; decoding never makes the text longer. */
    while (q < ps->end && *q != '"')
        q += *q == '\\' && q + 1 < ps->end ? 2 : 1;
    if (q >= ps->end) return perr(ps, ps->p, "unterminated string");
    size_t raw = (size_t)(q - start);
    sg_jdoc *d = ps->d;
    if (raw >= UINT32_MAX) return perr(ps, ps->p, "string longer than 4 GiB");
    if (!reserve((void **)&d->str, &d->scap, d->ns, raw + 1, 1)) return nomem(ps);
    char *o = d->str + d->ns, *o0 = o;
    const unsigned char *u = (const unsigned char *)start, *ue = (const unsigned char *)q;
    while (u < ue) {
        unsigned c = *u;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *o++ = (char)c;
            u++;
        } else if (c < 0x20) {
            return perr(ps, (const char *)u, "control character 0x%02x in a string", c);
        } else if (c >= 0x80) {
            size_t n = sg_utf8_len(u, ue);
            if (!n) return perr(ps, (const char *)u, "invalid UTF-8 in a string");
            memcpy(o, u, n);
            o += n;
            u += n;
        } else {
            const char *esc = (const char *)u;
            char e = (char)u[1];
            u += 2;
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (!hex4((const char *)u, q, &cp))
                    return perr(ps, esc, "\\u needs four hex digits");
                u += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return perr(ps, esc, "lone low surrogate \\u%04X", (unsigned)cp);
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (ue - u < 6 || u[0] != '\\' || u[1] != 'u' ||
                        !hex4((const char *)u + 2, q, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return perr(ps, esc, "high surrogate \\u%04X without its low half",
                                    (unsigned)cp);
                    u += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp == 0) return perr(ps, esc, "\\u0000 in a string");
                o += put_utf8(o, cp);
                break;
            }
            default:
                return perr(ps, esc, "invalid escape \\%c", e >= 0x20 && e < 0x7F ? e : '?');
            }
        }
    }
    *o = '\0';
    int rc = push_value(ps, SG_JT_STRING, index);
    if (rc) return rc;
    d->v[*index].n = (uint32_t)(o - o0);
    d->v[*index].u.off = d->ns;
    d->ns += (size_t)(o - o0) + 1;
    ps->p = q + 1;
    return SG_OK;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * A number at ps->p, by RFC 8259's grammar. The value is the double nearest to the decimal
 * text, as strtod gives: when the significant digits form an integer m <= 2^53 and the
 * decimal exponent e is within +-22, m and 10^|e| are exact doubles and one IEEE multiply or
 * divide rounds correctly (Clinger, "How to read floating point numbers accurately", 1990).
 * Everything else goes to strtod.
 */
/*
 * NaN, Infinity and -Infinity: not JSON, but what XGBoost's JSON writer emits for such floats
 * (a categorical split's split_condition is NaN) and its reader takes back. Only these exact
 * spellings; what a value may be is for the reader of the document to check.
 */
static sg_status parse_literal(parser *ps, uint32_t *index);

static sg_status parse_special(parser *ps, uint32_t *index)
{
    static const struct {
        const char *text;
        size_t len;
        double value;
    } specials[] = {{"NaN", 3, NAN}, {"Infinity", 8, INFINITY}, {"-Infinity", 9, -INFINITY}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        const size_t n = specials[i].len;
        if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, specials[i].text, n) != 0) continue;
        /* "NaNa" or "Infinity0" is one bad token, not a value and then garbage */
        if ((size_t)(ps->end - ps->p) > n && isalnum((unsigned char)ps->p[n])) break;
        int rc = push_value(ps, SG_JT_NUMBER, index);
        if (rc) return rc;
        ps->d->v[*index].u.num = specials[i].value;
        ps->p += n;
        return SG_OK;
    }
    if (*ps->p == '-') return perr(ps, ps->p, "invalid number");
    return parse_literal(ps, index);
}

/* Whether a finite double lies exactly halfway between two adjacent float32s (or between
   FLT_MAX and 2^128, where a float32 rounds to infinity), so that (float)v breaks a tie the
   decimal text it came from may not have had. */
static bool f32_tie(double v)
{
    const double top = 0x1.ffffffp127; /* halfway between FLT_MAX and 2^128 */
    if (fabs(v) >= top) return fabs(v) == top;
    float f = (float)v;
    if ((double)f == v) return false;
    float g = nextafterf(f, v > (double)f ? INFINITY : -INFINITY);
    if (isinf(g)) return false;
    return v == ((double)f + (double)g) / 2;
}

static sg_status parse_number(parser *ps, uint32_t *index)
{
    const char *q = ps->p, *end = ps->end, *start = q;
    bool neg = false, truncated = false;
    if (*q == '-') {
        neg = true;
        q++;
        if (q < end && *q == 'I') return parse_special(ps, index);
    }
    uint64_t m = 0;
    int nd = 0;
    long e10 = 0;
    if (q < end && *q == '0') {
        q++;
    } else if (q < end && *q >= '1' && *q <= '9') {
        while (q < end && *q >= '0' && *q <= '9') {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                if (m) nd++;
            } else {
                truncated |= *q != '0';
                e10++;
            }
            q++;
        }
    } else {
        return perr(ps, start, "invalid number");
    }
    const bool integer = q >= end || (*q != '.' && *q != 'e' && *q != 'E');
    if (q < end && *q == '.') {
        q++;
        if (q >= end || *q < '0' || *q > '9') return perr(ps, start, "no digits after '.'");
        while (q < end && *q >= '0' && *q <= '9') {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                if (m) nd++;
                e10--;
            } else {
                truncated |= *q != '0';
            }
            q++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        bool eneg = false;
        if (q < end && (*q == '+' || *q == '-')) eneg = *q++ == '-';
        if (q >= end || *q < '0' || *q > '9') return perr(ps, start, "no digits in the exponent");
        long x = 0;
        while (q < end && *q >= '0' && *q <= '9') {
            if (x < 100000) x = x * 10 + (*q - '0');
            q++;
        }
        e10 += eneg ? -x : x;
    }
    double v;
    uint32_t f32 = 0;
    if (m == 0 && !truncated) {
        v = 0;
    } else if (!truncated && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        v = (double)m;
        v = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
    } else {
        size_t len = (size_t)(q - start);
        char small[80], *buf = len < sizeof small ? small : malloc(len + 1);
        if (!buf) return nomem(ps);
        memcpy(buf, start, len);
        buf[len] = '\0';
        v = strtod(buf, NULL);
        if (buf != small) free(buf);
        if (isinf(v)) return perr(ps, start, "number %.*s is outside a double's range",
                                  (int)(len < 40 ? len : 40), start);
        v = fabs(v);
    }
    if (f32_tie(v)) {
        /* Rare (a 2^-29 chance for a random double): the text decides the float32. */
        size_t len = (size_t)(q - start);
        char small[80], *buf = len < sizeof small ? small : malloc(len + 1);
        if (!buf) return nomem(ps);
        memcpy(buf, start, len);
        buf[len] = '\0';
        float want = fabsf(strtof(buf, NULL)), got = (float)v;
        if (buf != small) free(buf);
        if (want != got) f32 = (want > got) != neg ? SG_JT_F32_UP : SG_JT_F32_DOWN;
    }
    int rc = push_value(ps, SG_JT_NUMBER, index);
    if (rc) return rc;
    ps->d->v[*index].u.num = neg ? -v : v;
    ps->d->v[*index].n = (integer ? SG_JT_INTEGER : 0) | f32;
    ps->p = q;
    return SG_OK;
}

static sg_status parse_literal(parser *ps, uint32_t *index)
{
    static const struct {
        const char *text;
        size_t len;
        sg_jt_type type;
    } lits[] = {{"true", 4, SG_JT_TRUE}, {"false", 5, SG_JT_FALSE}, {"null", 4, SG_JT_NULL}};
    for (size_t i = 0; i < 3; i++)
        if ((size_t)(ps->end - ps->p) >= lits[i].len &&
            memcmp(ps->p, lits[i].text, lits[i].len) == 0) {
            ps->p += lits[i].len;
            return push_value(ps, lits[i].type, index);
        }
    unsigned c = (unsigned char)*ps->p;
    if (c >= 0x20 && c < 0x7F) return perr(ps, ps->p, "unexpected character '%c'", (char)c);
    return perr(ps, ps->p, "unexpected byte 0x%02x", c);
}

static int key_cmp(const void *a, const void *b, void *arg)
{
    const sg_jdoc *d = arg;
    const sg_jv *x = &d->v[*(const uint32_t *)a], *y = &d->v[*(const uint32_t *)b];
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return memcmp(d->str + x->u.off, d->str + y->u.off, x->n);
}

/* The name of a duplicate key among an object's n members (pairs at kids), or NULL. */
static const sg_jv *duplicate_key(parser *ps, const uint32_t *pairs, size_t n, bool *oom)
{
    const sg_jdoc *d = ps->d;
    *oom = false;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (key_cmp(&pairs[2 * i], &pairs[2 * j], ps->d) == 0) return &d->v[pairs[2 * i]];
        return NULL;
    }
    uint32_t *keys = malloc(n * sizeof *keys);
    if (!keys) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = pairs[2 * i];
    qsort_r(keys, n, sizeof *keys, key_cmp, ps->d);
    const sg_jv *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (key_cmp(&keys[i - 1], &keys[i], ps->d) == 0) dup = &d->v[keys[i]];
    free(keys);
    return dup;
}

/* Closes the innermost container: its members move from the pending stack to kids. */
static sg_status close_container(parser *ps, uint32_t node, size_t mark, bool obj)
{
    sg_jdoc *d = ps->d;
    size_t count = ps->npend - mark;
    if (!reserve((void **)&d->kids, &d->kcap, d->nk, count, sizeof *d->kids)) return nomem(ps);
    if (obj && count > 2) {
        bool oom;
        const sg_jv *dup = duplicate_key(ps, ps->pend + mark, count / 2, &oom);
        if (oom) return nomem(ps);
        if (dup)
            return perr(ps, ps->p, "duplicate key \"%.64s\" in the object that ends here",
                        d->str + dup->u.off);
    }
    if (count) memcpy(d->kids + d->nk, ps->pend + mark, count * sizeof *d->kids);
    d->v[node].n = (uint32_t)(obj ? count / 2 : count);
    d->v[node].u.off = d->nk;
    d->nk += count;
    ps->npend = mark;
    return SG_OK;
}

static sg_status parse_doc(parser *ps)
{
    struct {
        uint32_t node;
        size_t mark;
        bool obj;
    } st[SG_JT_MAX_DEPTH];
    int depth = 0;
    uint32_t idx;
    int rc;

    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, ps->p, "no value (empty input)");
value:
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, ps->p, "unexpected end of input, a value expected");
    switch (*ps->p) {
    case '{':
    case '[': {
        bool obj = *ps->p == '{';
        if (depth == SG_JT_MAX_DEPTH)
            return perr(ps, ps->p, "nested deeper than %d levels", SG_JT_MAX_DEPTH);
        if ((rc = push_value(ps, obj ? SG_JT_OBJECT : SG_JT_ARRAY, &idx))) return rc;
        st[depth].node = idx;
        st[depth].mark = ps->npend;
        st[depth].obj = obj;
        depth++;
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            depth--;
            if ((rc = close_container(ps, idx, st[depth].mark, obj))) return rc;
            ps->p++;
            goto done_value;
        }
        if (obj) goto key;
        goto value;
    }
    case '"':
        if ((rc = parse_string(ps, &idx))) return rc;
        break;
    case 'N':
    case 'I':
        if ((rc = parse_special(ps, &idx))) return rc;
        break;
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if ((rc = parse_number(ps, &idx))) return rc;
        break;
    default:
        if ((rc = parse_literal(ps, &idx))) return rc;
        break;
    }
done_value:
    if (depth == 0) {
        skip_ws(ps);
        if (ps->p != ps->end) return perr(ps, ps->p, "text after the end of the document");
        return SG_OK;
    }
    if ((rc = push_pending(ps, idx))) return rc;
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, ps->p, "unexpected end of input in a container");
    if (*ps->p == ',') {
        ps->p++;
        if (st[depth - 1].obj) goto key;
        goto value;
    }
    if (*ps->p == (st[depth - 1].obj ? '}' : ']')) {
        depth--;
        idx = st[depth].node;
        if ((rc = close_container(ps, idx, st[depth].mark, st[depth].obj))) return rc;
        ps->p++;
        goto done_value;
    }
    return perr(ps, ps->p, "expected ',' or '%c'", st[depth - 1].obj ? '}' : ']');
key:
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') return perr(ps, ps->p, "expected a string key");
    if ((rc = parse_string(ps, &idx))) return rc;
    if ((rc = push_pending(ps, idx))) return rc;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':') return perr(ps, ps->p, "expected ':' after a key");
    ps->p++;
    goto value;
}

/* ------------------------------------------------------------------ UBJSON
 *
 * Universal Binary JSON (ubjson.org, draft 12), as XGBoost writes it (Booster.save_model to
 * a .ubj file): one-byte type markers; integers i (int8), U (uint8), I (int16), l (int32), L
 * (int64) and floats d (float32), D (float64), all big-endian; H (a number as decimal text),
 * C (one ASCII character), S (a string: an integer length, then UTF-8 bytes), Z, T, F, and
 * N (a no-op, skipped); containers [ ] and { } whose keys are length-prefixed strings, either
 * ended by their closing marker or given a count (#) and optionally one type for every
 * element ($), as XGBoost writes its arrays of floats and integers. The values land on the
 * same tape as JSON's, under the same rules: duplicate keys, invalid UTF-8 and nesting past
 * SG_JT_MAX_DEPTH are refused; so are a NUL in a string (strings are C strings here) and
 * any count or length longer than what is left of the input, before anything is allocated
 * for it. Floats may be NaN or infinite, which JSON cannot say: readers check the values
 * they use.
 */

static bool ubj_take(parser *ps, size_t n, const unsigned char **out)
{
    if ((size_t)(ps->end - ps->p) < n) return false;
    *out = (const unsigned char *)ps->p;
    ps->p += n;
    return true;
}

static uint64_t be(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

/* Bytes of a fixed-size scalar of this marker, 0 for the others. */
static int ubj_fixed_size(int m)
{
    switch (m) {
    case 'i': case 'U': case 'C': return 1;
    case 'I': return 2;
    case 'l': case 'd': return 4;
    case 'L': case 'D': return 8;
    case 'Z': case 'T': case 'F': return 0;
    default: return -1;
    }
}

static sg_status ubj_int(parser *ps, int m, const char *at, int64_t *v)
{
    const unsigned char *b;
    int n = ubj_fixed_size(m);
    if (n <= 0 || m == 'C' || m == 'd' || m == 'D')
        return perr(ps, at, "an integer type marker expected, got 0x%02x", (unsigned)m);
    if (!ubj_take(ps, (size_t)n, &b)) return perr(ps, at, "truncated integer");
    uint64_t u = be(b, n);
    switch (m) {
    case 'i': *v = (int8_t)u; break;
    case 'U': *v = (int64_t)u; break;
    case 'I': *v = (int16_t)u; break;
    case 'l': *v = (int32_t)u; break;
    default: *v = (int64_t)u; break;
    }
    return SG_OK;
}

/* A length or count: an integer with its marker, at least 0 and at most max. */
static sg_status ubj_length(parser *ps, const char *what, size_t max, size_t *out)
{
    const char *at = ps->p;
    const unsigned char *m;
    int64_t v = 0;
    if (!ubj_take(ps, 1, &m)) return perr(ps, at, "truncated %s", what);
    sg_status rc = ubj_int(ps, *m, at, &v);
    if (rc) return rc;
    if (v < 0) return perr(ps, at, "negative %s %lld", what, (long long)v);
    if ((uint64_t)v > max)
        return perr(ps, at, "%s %lld is longer than the %zu bytes left", what, (long long)v,
                    (size_t)(ps->end - ps->p));
    *out = (size_t)v;
    return SG_OK;
}

/* A string's bytes (n of them at ps->p, already bounded), checked and pushed as a value. */
static sg_status ubj_string_bytes(parser *ps, size_t n, uint32_t *index)
{
    const char *at = ps->p;
    const unsigned char *u;
    if (n >= UINT32_MAX) return perr(ps, at, "string longer than 4 GiB");
    if (!ubj_take(ps, n, &u)) return perr(ps, at, "truncated string");
    for (size_t i = 0; i < n;) {
        if (u[i] == 0) return perr(ps, at + i, "NUL byte in a string");
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = sg_utf8_len(u + i, u + n);
        if (!k) return perr(ps, at + i, "invalid UTF-8 in a string");
        i += k;
    }
    sg_jdoc *d = ps->d;
    if (!reserve((void **)&d->str, &d->scap, d->ns, n + 1, 1)) return nomem(ps);
    sg_status rc = push_value(ps, SG_JT_STRING, index);
    if (rc) return rc;
    memcpy(d->str + d->ns, u, n);
    d->str[d->ns + n] = '\0';
    d->v[*index].n = (uint32_t)n;
    d->v[*index].u.off = d->ns;
    d->ns += n + 1;
    return SG_OK;
}

static sg_status ubj_number(parser *ps, double v, uint32_t *index)
{
    sg_status rc = push_value(ps, SG_JT_NUMBER, index);
    if (rc == SG_OK) ps->d->v[*index].u.num = v;
    return rc;
}

static sg_status ubj_container(parser *ps, bool obj, int depth, const char *at, uint32_t *index);

/* The value of type marker m (already read, at `at`). */
static sg_status ubj_value(parser *ps, int m, int depth, const char *at, uint32_t *index)
{
    const unsigned char *b;
    sg_status rc;
    switch (m) {
    case 'Z': return push_value(ps, SG_JT_NULL, index);
    case 'T': return push_value(ps, SG_JT_TRUE, index);
    case 'F': return push_value(ps, SG_JT_FALSE, index);
    case 'i': case 'U': case 'I': case 'l': case 'L': {
        int64_t v = 0;
        if ((rc = ubj_int(ps, m, at, &v))) return rc;
        if ((rc = ubj_number(ps, (double)v, index))) return rc;
        ps->d->v[*index].n = SG_JT_INTEGER;
        return SG_OK;
    }
    case 'd': {
        if (!ubj_take(ps, 4, &b)) return perr(ps, at, "truncated float32");
        uint32_t u = (uint32_t)be(b, 4);
        float f;
        memcpy(&f, &u, 4);
        return ubj_number(ps, f, index);
    }
    case 'D': {
        if (!ubj_take(ps, 8, &b)) return perr(ps, at, "truncated float64");
        uint64_t u = be(b, 8);
        double v;
        memcpy(&v, &u, 8);
        return ubj_number(ps, v, index);
    }
    case 'C':
        if (!ubj_take(ps, 1, &b)) return perr(ps, at, "truncated char");
        if (b[0] == 0 || b[0] >= 0x80)
            return perr(ps, at, "char 0x%02x is not a non-NUL ASCII character", b[0]);
        ps->p--;
        return ubj_string_bytes(ps, 1, index);
    case 'S': {
        size_t n;
        if ((rc = ubj_length(ps, "string length", (size_t)(ps->end - ps->p), &n))) return rc;
        if (n > (size_t)(ps->end - ps->p))
            return perr(ps, at, "string length %zu is longer than the %zu bytes left", n,
                        (size_t)(ps->end - ps->p));
        return ubj_string_bytes(ps, n, index);
    }
    case 'H': { /* a number as its decimal text, by JSON's number grammar */
        size_t n;
        if ((rc = ubj_length(ps, "number length", (size_t)(ps->end - ps->p), &n))) return rc;
        if (n > (size_t)(ps->end - ps->p)) return perr(ps, at, "truncated high-precision number");
        if (n == 0) return perr(ps, at, "empty high-precision number");
        const char *end = ps->end, *num_end = ps->p + n;
        ps->end = num_end;
        rc = parse_number(ps, index);
        ps->end = end;
        if (rc) return rc;
        if (ps->p != num_end) return perr(ps, ps->p, "text after a high-precision number");
        return SG_OK;
    }
    case '[':
    case '{':
        return ubj_container(ps, m == '{', depth, at, index);
    default:
        if (m >= 0x20 && m < 0x7F) return perr(ps, at, "unknown type marker '%c'", (char)m);
        return perr(ps, at, "unknown type marker 0x%02x", (unsigned)m);
    }
}

static sg_status ubj_container(parser *ps, bool obj, int depth, const char *at, uint32_t *index)
{
    if (depth == SG_JT_MAX_DEPTH)
        return perr(ps, at, "nested deeper than %d levels", SG_JT_MAX_DEPTH);
    sg_status rc = push_value(ps, obj ? SG_JT_OBJECT : SG_JT_ARRAY, index);
    if (rc) return rc;
    const uint32_t node = *index;
    const size_t mark = ps->npend;
    const char close = obj ? '}' : ']';
    int type = 0; /* the one type of every element ($), 0 when each has its marker */
    size_t count = SIZE_MAX;
    if (ps->p < ps->end && *ps->p == '$') {
        const char *tat = ps->p++;
        if (ps->p >= ps->end) return perr(ps, tat, "truncated container type");
        type = (unsigned char)*ps->p++;
        /* Containers and valueless types are refused as element types: a count of them
           would be bounded by nothing in the input. */
        if (ubj_fixed_size(type) <= 0 && type != 'S' && type != 'H')
            return perr(ps, tat, "container element type 0x%02x is not supported",
                        (unsigned)type);
        if (ps->p >= ps->end || *ps->p != '#')
            return perr(ps, ps->p, "a typed container needs a count (#)");
    }
    if (ps->p < ps->end && *ps->p == '#') {
        ps->p++;
        /* Each element takes at least its fixed size (typed) or one byte (its marker); an
           object's keys at least one more (their length). */
        int fixed = type ? ubj_fixed_size(type) : 1;
        size_t per = (size_t)(fixed > 0 ? fixed : 2) + (obj ? 2 : 0);
        if ((rc = ubj_length(ps, "count", SIZE_MAX, &count))) return rc;
        if (count > (size_t)(ps->end - ps->p) / per)
            return perr(ps, at, "count %zu is more than the %zu bytes left can hold", count,
                        (size_t)(ps->end - ps->p));
    }
    for (size_t i = 0;; i++) {
        if (count == SIZE_MAX) {
            while (ps->p < ps->end && *ps->p == 'N')
                ps->p++;
            if (ps->p >= ps->end) return perr(ps, ps->p, "truncated container: '%c' expected", close);
            if (*ps->p == close) {
                ps->p++;
                break;
            }
        } else if (i == count) {
            break;
        }
        uint32_t idx;
        if (obj) {
            size_t n;
            if ((rc = ubj_length(ps, "key length", (size_t)(ps->end - ps->p), &n))) return rc;
            if ((rc = ubj_string_bytes(ps, n, &idx))) return rc;
            if ((rc = push_pending(ps, idx))) return rc;
        }
        const char *vat = ps->p;
        int m = type;
        if (!m) {
            if (ps->p >= ps->end) return perr(ps, vat, "truncated container: a value expected");
            m = (unsigned char)*ps->p++;
            if (m == 'N') return perr(ps, vat, "no-op where a value is required");
        }
        if ((rc = ubj_value(ps, m, depth + 1, vat, &idx))) return rc;
        if ((rc = push_pending(ps, idx))) return rc;
    }
    return close_container(ps, node, mark, obj);
}

static sg_status ubj_doc(parser *ps)
{
    while (ps->p < ps->end && *ps->p == 'N')
        ps->p++;
    if (ps->p >= ps->end) return perr(ps, ps->p, "no value (empty input)");
    const char *at = ps->p;
    uint32_t idx;
    int m = (unsigned char)*ps->p++;
    sg_status rc = ubj_value(ps, m, 0, at, &idx);
    if (rc) return rc;
    while (ps->p < ps->end && *ps->p == 'N')
        ps->p++;
    if (ps->p != ps->end) return perr(ps, ps->p, "bytes after the end of the document");
    return SG_OK;
}

static sg_status parse_with(parser *ps, sg_status (*fn)(parser *), size_t len)
{
    sg_jdoc *doc = ps->d;
    memset(doc, 0, sizeof *doc);
    /* A typical model file holds a value per 6 bytes; start near that to avoid regrowth. */
    size_t guess = len / 6 + 16;
    if (!reserve((void **)&doc->v, &doc->vcap, 0, guess, sizeof *doc->v) ||
        !reserve((void **)&doc->kids, &doc->kcap, 0, guess, sizeof *doc->kids) ||
        !reserve((void **)&doc->str, &doc->scap, 0, len / 16 + 64, 1)) {
        sg_jt_free(doc);
        return nomem(ps);
    }
    sg_status rc = fn(ps);
    free(ps->pend);
    if (rc) sg_jt_free(doc);
    return rc;
}

sg_status sg_jt_parse(const char *name, const char *text, size_t len, sg_jdoc *doc, sg_err *err)
{
    parser ps = {.name = name, .s = text, .p = text, .end = text + len, .d = doc, .err = err};
    return parse_with(&ps, parse_doc, len);
}

sg_status sg_jt_parse_ubjson(const char *name, const void *bytes, size_t len, sg_jdoc *doc,
                             sg_err *err)
{
    const char *text = bytes;
    parser ps = {.name = name, .s = text, .p = text, .end = text + len, .d = doc, .err = err,
                 .ubj = true};
    return parse_with(&ps, ubj_doc, len);
}

bool sg_jt_looks_ubjson(const void *bytes, size_t len)
{
    const unsigned char *b = bytes;
    /* JSON puts white space, a quote or '}' after its '{'; UBJSON a key's length marker, or
       the $ or # of an optimized object. */
    return len >= 2 && b[0] == '{' && b[1] != '\0' && strchr("iUIlL$#", b[1]) != NULL;
}

void sg_jt_free(sg_jdoc *doc)
{
    free(doc->v);
    free(doc->kids);
    free(doc->str);
    memset(doc, 0, sizeof *doc);
}

const sg_jv *sg_jt_get(const sg_jdoc *d, const sg_jv *o, const char *key)
{
    if (!sg_jt_is(o, SG_JT_OBJECT)) return NULL;
    size_t klen = strlen(key);
    const uint32_t *k = d->kids + o->u.off;
    for (uint32_t i = 0; i < o->n; i++) {
        const sg_jv *kv = &d->v[k[2 * i]];
        if (kv->n == klen && memcmp(d->str + kv->u.off, key, klen) == 0) return &d->v[k[2 * i + 1]];
    }
    return NULL;
}
