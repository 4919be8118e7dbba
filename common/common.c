/* Status strings, error formatting, aligned allocation and time helpers. */
#include "stagegate/common.h"
#include "stagegate/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

const char *sg_status_string(int status)
{
    switch (status) {
    case SG_OK:
        return "ok";
    case SG_EINPUT:
        return "input error";
    case SG_ENOMEM:
        return "out of memory";
    case SG_EIO:
        return "I/O error";
    case SG_EREFUSED:
        return "refused";
    case SG_EINTERNAL:
        return "internal error";
    default:
        return "unknown status";
    }
}

sg_status sg_errf(sg_err *err, sg_status status, const char *fmt, ...)
{
    if (err) {
        /* Formatted apart first: an argument may be err->msg itself ("report: %s"). */
        char msg[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        /* Cut short, at a character boundary: a cut inside one made the message invalid
           UTF-8, which a JSON output (verify --json's "error") could not hold. */
        if (n >= (int)sizeof msg) /* cut one byte shorter again, at a boundary: vsnprintf's
                                     own cut may have left a lead byte alone at the end */
            sg_utf8_copy(err->msg, sizeof err->msg - 1, msg);
        else
            memcpy(err->msg, msg, sizeof msg);
        /* The contract is one line: fold any newline a library message carried. */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return status;
}

sg_status sg_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg, sg_err *err,
                          const char *fmt, ...)
{
    int rc = pthread_create(thread, NULL, fn, arg);
    if (rc == 0) return SG_OK;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc == EAGAIN) {
        /* The two limits that make it fail, with their figures. */
        char lim[2][32];
        const int res[2] = {RLIMIT_AS, RLIMIT_NPROC};
        for (int i = 0; i < 2; i++) {
            struct rlimit rl;
            if (getrlimit(res[i], &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
                snprintf(lim[i], sizeof lim[i], "unlimited");
            else if (i == 0)
                snprintf(lim[i], sizeof lim[i], "%llu MiB",
                         (unsigned long long)(rl.rlim_cur >> 20));
            else
                snprintf(lim[i], sizeof lim[i], "%llu", (unsigned long long)rl.rlim_cur);
        }
        return sg_errf(err, SG_ENOMEM,
                       "%s: %s (no room for another thread and its 8 MiB stack: the address-space "
                       "limit, ulimit -v, is %s; the process limit, ulimit -u, is %s)",
                       what, strerror(rc), lim[0], lim[1]);
    }
    return sg_errf(err, SG_EINTERNAL, "%s: %s", what, strerror(rc));
}

_Noreturn void sg_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "stagegate: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

void *sg_alloc_aligned(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0) return NULL;
    return p;
}

void *sg_alloc_huge(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge / 4) return sg_alloc_aligned(bytes);
    if (bytes > SIZE_MAX - huge) return NULL;
    size_t rounded = (bytes + huge - 1) & ~(huge - 1);
    void *p = NULL;
    if (posix_memalign(&p, huge, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (sg_huge_pages_wanted())
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint: refused, it costs only speed */
#endif
    return p;
}

bool sg_huge_pages_wanted(void)
{
    const char *e = getenv("STAGEGATE_HUGE_PAGES"); /* main() refuses values but 0 and 1 */
    return e && !strcmp(e, "1");
}

/* The bracketed word of the kernel's transparent_hugepage/enabled ("always [madvise] never"). */
static void thp_setting(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return;
    char line[128];
    if (fgets(line, sizeof line, f)) {
        const char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && (size_t)(b - a - 1) < len)
            snprintf(out, len, "%.*s", (int)(b - a - 1), a + 1);
    }
    fclose(f);
}

/* AnonHugePages of the mapping at p (smaps), in bytes; 0 when unknown. */
static size_t huge_backed(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return 0;
    char line[256];
    bool in = false;
    size_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && sscanf(line, "AnonHugePages: %zu kB", &kb) == 1) break;
    }
    fclose(f);
    return kb * 1024;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

sg_status sg_first_touch_measure(size_t bytes, int rounds, sg_first_touch *out, sg_err *err)
{
    memset(out, 0, sizeof *out);
    const size_t huge = (size_t)2 << 20;
    if (rounds < 1 || rounds > 64 || bytes < huge || bytes > ((size_t)1 << 34))
        return sg_errf(err, SG_EINTERNAL, "first touch: %zu bytes, %d rounds", bytes, rounds);
    bytes = (bytes + huge - 1) & ~(huge - 1);
    out->bytes = bytes;
    out->rounds = rounds;
    thp_setting(out->thp, sizeof out->thp);
    /* Every region stays mapped until the end, so each touch takes memory the process has not
       freed (a cold run's allocations do; memory just unmapped would be reused warm), and the
       order alternates (small first, then huge first) so neither kind always goes first. */
    double t[2][64];
    uint8_t *maps[2][64] = {{NULL}};
    sg_status rc = SG_OK;
    for (int r = 0; r < rounds && rc == SG_OK; r++)
        for (int q = 0; q < 2 && rc == SG_OK; q++) {
            const int kind = r % 2 ? 1 - q : q;
            /* 2 MiB more, to start on a 2 MiB boundary: a huge page needs an aligned one */
            uint8_t *m = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                rc = sg_errf(err, SG_ENOMEM, "first touch: cannot map %zu bytes: %s", bytes,
                             strerror(errno));
                break;
            }
            maps[kind][r] = m;
            uint8_t *p = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
            (void)madvise(p, bytes, kind ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
            const double t0 = sg_now_seconds();
            for (size_t i = 0; i < bytes; i += 4096)
                ((volatile uint8_t *)p)[i] = 1;
            t[kind][r] = (sg_now_seconds() - t0) * 1e3;
            if (kind == 1 && r == rounds - 1) out->huge_bytes = huge_backed(p);
        }
    for (int r = 0; r < rounds; r++)
        for (int kind = 0; kind < 2; kind++)
            if (maps[kind][r]) munmap(maps[kind][r], bytes + huge);
    if (rc != SG_OK) return rc;
    qsort(t[0], (size_t)rounds, sizeof(double), cmp_double);
    qsort(t[1], (size_t)rounds, sizeof(double), cmp_double);
    out->small_ms = rounds % 2 ? t[0][rounds / 2] : (t[0][rounds / 2 - 1] + t[0][rounds / 2]) / 2;
    out->huge_ms = rounds % 2 ? t[1][rounds / 2] : (t[1][rounds / 2 - 1] + t[1][rounds / 2]) / 2;
    out->small_range[0] = t[0][0];
    out->small_range[1] = t[0][rounds - 1];
    out->huge_range[0] = t[1][0];
    out->huge_range[1] = t[1][rounds - 1];
    return SG_OK;
}

void sg_free_aligned(void *p)
{
    free(p);
}

double sg_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool sg_progress_enabled(void)
{
    const char *e = getenv("STAGEGATE_PROGRESS");
    if (e && strcmp(e, "0") == 0) return false;
    if (e && strcmp(e, "1") == 0) return true;
    return isatty(STDERR_FILENO) != 0;
}

uint64_t sg_physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

/* The first number in file path, or 0 (none, "max", unreadable). */
static uint64_t read_limit(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    unsigned long long v = 0;
    int n = fscanf(f, "%llu", &v);
    fclose(f);
    return n == 1 ? (uint64_t)v : 0;
}

uint64_t sg_memory_limit_at(const char *proc_cgroup, const char *sysfs)
{
    uint64_t have = sg_physical_memory(), lim = 0;
    FILE *f = fopen(proc_cgroup, "re");
    char line[4096], path[8192];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *rel = NULL, *file = NULL, *dir = "";
        if (!strncmp(line, "0::", 3)) { /* cgroup v2: the unified hierarchy */
            rel = line + 3;
            file = "memory.max";
        } else {
            char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2) continue;
            /* v1: the memory controller's line ("4:memory:/path"; it may share a line) */
            *c2 = '\0';
            bool mem = false;
            char *save = NULL;
            for (char *t = strtok_r(c1 + 1, ",", &save); t; t = strtok_r(NULL, ",", &save))
                mem = mem || !strcmp(t, "memory");
            if (!mem) continue;
            rel = c2 + 1;
            file = "memory.limit_in_bytes";
            dir = "/memory";
        }
        /* The process's own group, else the mount's root (inside a cgroup namespace the
           path names the group from a root the container does not see). */
        const char *tries[2] = {rel, ""};
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s%s%s/%s", sysfs, dir, tries[i], file);
            uint64_t v = read_limit(path);
            if (v > 0 && (!lim || v < lim)) lim = v;
            if (v > 0) break;
        }
    }
    if (f) fclose(f);
    /* v1 writes "no limit" as a huge page-aligned number: keep whichever is smaller. */
    return have && (!lim || have < lim) ? have : lim;
}

uint64_t sg_memory_limit(void)
{
    uint64_t lim = sg_memory_limit_at("/proc/self/cgroup", "/sys/fs/cgroup");
    /* ... and what the address-space and data limits (ulimit -v, -d) leave of what this
       process maps now (/proc/self/statm: size, and data + stack, in pages): a set whose
       kept scores could not fit under them had been streamed whole before the sort ran out
       of memory. */
    unsigned long long pages[7] = {0};
    FILE *f = fopen("/proc/self/statm", "re");
    bool have = f && fscanf(f, "%llu %llu %llu %llu %llu %llu %llu", &pages[0], &pages[1],
                            &pages[2], &pages[3], &pages[4], &pages[5], &pages[6]) == 7;
    if (f) fclose(f);
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    static const int res[] = {RLIMIT_AS, RLIMIT_DATA};
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        struct rlimit rl;
        if (getrlimit(res[i], &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) continue;
        uint64_t used = have ? (uint64_t)pages[i == 0 ? 0 : 5] * page : 0;
        uint64_t left = (uint64_t)rl.rlim_cur > used ? (uint64_t)rl.rlim_cur - used : 1;
        if (!lim || left < lim) lim = left;
    }
    return lim;
}

sg_status sg_check_alloc(int64_t count, size_t size, const char *what, sg_err *err)
{
    size_t bytes = 0;
    uint64_t have = sg_memory_limit();
    if (count < 0 || !sg_mul_size((size_t)count, size, &bytes) || (have && bytes > have))
        return sg_errf(err, SG_EINPUT,
                       "%s: %lld rows need %.4g GiB, more than the %.4g GiB of memory this "
                       "process may use",
                       what, (long long)count, (double)count * (double)size / 1073741824.0,
                       (double)have / 1073741824.0);
    return SG_OK;
}

/* v rounded to three significant digits (0 stays 0). */
static double round_sig3(double v)
{
    if (v == 0 || !isfinite(v)) return v;
    double p = pow(10.0, 2 - floor(log10(fabs(v))));
    if (!isfinite(p)) return v; /* below about 1e-305: 10^k overflows; kept as it is */
    return round(v * p) / p;
}

/* v (already rounded) printed with three significant digits: 4.57, 45.7, 457, 4570. */
static void print_sig3(char *buf, size_t len, double v, const char *unit)
{
    int digits = v == 0 ? 3 : (int)floor(log10(fabs(v))) + 1;
    if (digits < -2) { /* below 0.001 of the unit: "5e-324 ns", not 326 decimals */
        snprintf(buf, len, "%.3g %s", v, unit);
        return;
    }
    int decimals = digits >= 3 ? 0 : 3 - digits;
    snprintf(buf, len, "%.*f %s", decimals, v, unit);
}

double sg_ms_to_ns(double ms)
{
    const double ns = ms * 1e6, fine = nearbyint(ns * 1e6) / 1e6;
    return isfinite(fine) ? fine : ns;
}

double sg_ns_unit(double ns, const char **unit)
{
    static const struct {
        double scale;
        const char *unit;
    } units[] = {{1e9, "s"}, {1e6, "ms"}, {1e3, "\u00b5s"}, {1, "ns"}};
    size_t k = 0;
    while (k + 1 < sizeof units / sizeof units[0] && fabs(ns) < units[k].scale)
        k++;
    *unit = units[k].unit;
    return units[k].scale;
}

void sg_format_ns(double ns, char *buf, size_t len)
{
    if (!isfinite(ns)) {
        snprintf(buf, len, "-");
        return;
    }
    /* Round first, so 999.7 ns reads "1.00 \u00b5s", not "1000 ns". */
    double r = round_sig3(ns);
    const char *unit;
    const double scale = sg_ns_unit(r, &unit);
    print_sig3(buf, len, round_sig3(r / scale), unit);
}

void sg_format_count(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "-");
        return;
    }
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", fabs(v));
    size_t n = strlen(digits), o = 0;
    char tmp[48];
    if (v < 0 && strcmp(digits, "0")) tmp[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) tmp[o++] = ',';
        tmp[o++] = digits[i];
    }
    tmp[o] = 0;
    snprintf(buf, len, "%s", tmp);
}

void sg_format_bytes(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (!isfinite(bytes)) {
        snprintf(buf, len, "-");
        return;
    }
    size_t k = 0;
    double v = bytes;
    /* Whole bytes stay exact below 1 KiB; a larger unit is taken once three digits no longer fit.
     */
    while (k + 1 < sizeof units / sizeof units[0] &&
           (k == 0 ? fabs(v) >= 1024 : fabs(round_sig3(v)) >= 1000)) {
        v /= 1024;
        k++;
    }
    if (k == 0 && v == floor(v))
        snprintf(buf, len, "%.0f B", v);
    else if (k == 0) /* a limit in MiB can be a fraction of a byte: 35.6 B, 1012.5 B */
        snprintf(buf, len, "%.5g B", v);
    else
        print_sig3(buf, len, round_sig3(v), units[k]);
}

size_t sg_utf8_len(const unsigned char *p, const unsigned char *end)
{
    if (p >= end) return 0;
    const unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* the second byte's range (Unicode Table 3-7) */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

/* The code point of the well-formed sequence of n bytes at p. */
static uint32_t utf8_decode(const unsigned char *p, size_t n)
{
    uint32_t c = n == 1 ? p[0] : p[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (p[i] & 0x3Fu);
    return c;
}

/* Whether the well-formed sequence of n bytes at p is one a terminal acts on rather than
   shows: C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional
   controls that reorder what a reader sees (CVE-2021-42574). */
static bool unprintable(const unsigned char *p, size_t n)
{
    const uint32_t c = utf8_decode(p, n);
    /* U+2028 and U+2029 end a line for Unicode-aware readers: a request had added an access
       log line that way */
    /* ... U+061C, the Arabic letter mark, is a bidirectional control too, and U+FFFE and
       U+FFFF are noncharacters (the report renderers had replaced all three; a terminal
       line had passed them through) */
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x200E || c == 0x200F || c == 0x2028 ||
           c == 0x2029 || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
           c == 0x061C || c == 0xFFFE || c == 0xFFFF;
}

/* Bytes at the start of [p, end) that sg_put_printable writes as they are. */
static size_t printable_prefix(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p;
    for (size_t n; q < end && (n = sg_utf8_len(q, end)) > 0 && !unprintable(q, n);)
        q += n;
    return (size_t)(q - p);
}

bool sg_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    for (size_t n; p < end; p += n)
        if ((n = sg_utf8_len(p, end)) == 0) return false;
    return true;
}

void sg_utf8_copy(char *buf, size_t len, const char *src)
{
    if (!len) return;
    size_t n = strlen(src);
    if (n >= len) {
        n = len - 1;
        /* src[n] a continuation byte: the cut splits a character; cut before its lead byte */
        if (((unsigned char)src[n] & 0xC0) == 0x80) {
            size_t k = n;
            while (k > 0 && n - k < 3 && ((unsigned char)src[k - 1] & 0xC0) == 0x80)
                k--;
            if (k > 0 && ((unsigned char)src[k - 1] & 0xC0) == 0xC0) n = k - 1;
        }
    }
    memcpy(buf, src, n);
    buf[n] = '\0';
}

bool sg_is_printable(const char *s)
{
    const size_t len = strlen(s);
    return printable_prefix((const unsigned char *)s, (const unsigned char *)s + len) == len;
}

void sg_put_printable(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        const size_t k = printable_prefix(p, end);
        fwrite(p, 1, k, f);
        p += k;
        if (p == end) break;
        /* one unprintable sequence, or one byte that starts none, as \xHH per byte */
        const size_t n = sg_utf8_len(p, end);
        for (size_t i = 0; i < (n ? n : 1); i++)
            fprintf(f, "\\x%02x", p[i]);
        p += n ? n : 1;
    }
}

/* Whether JSON text written by jansson holds the n bytes at p (a well-formed sequence, or
   n == 0 for a byte that starts none) as they are, though a terminal acts on them. jansson
   escapes the C0 controls itself. */
static bool json_raw_unprintable(const unsigned char *p, size_t n)
{
    return n && (n > 1 || *p == 0x7F) && unprintable(p, n);
}

char *sg_json_text_escape(char *text)
{
    if (!text) return NULL;
    const unsigned char *const begin = (const unsigned char *)text, *end = begin + strlen(text);
    size_t extra = 0;
    for (const unsigned char *p = begin; p < end;) {
        const size_t n = sg_utf8_len(p, end);
        if (json_raw_unprintable(p, n)) extra += 6 - n;
        p += n ? n : 1;
    }
    if (!extra) return text;
    char *out = malloc((size_t)(end - begin) + extra + 1), *o = out;
    if (!out) {
        free(text);
        return NULL;
    }
    for (const unsigned char *p = begin; p < end;) {
        const size_t n = sg_utf8_len(p, end), step = n ? n : 1;
        if (json_raw_unprintable(p, n)) { /* every such code point is below U+10000 */
            o += sprintf(o, "\\u%04x", (unsigned)utf8_decode(p, n));
        } else {
            memcpy(o, p, step);
            o += step;
        }
        p += step;
    }
    *o = '\0';
    free(text);
    return out;
}

size_t sg_utf8_width(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* n decimal digits at s, or -1 */
static int rfc_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

sg_status sg_parse_rfc3339(const char *s, int64_t *epoch)
{
    /* RFC 3339 exactly: YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or +hh:mm / -hh:mm,
       every field its digits and in its range (a report's age is computed from this, so
       "-~~:00" or a 30th of February must not pass for a time). */
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    const int Y = rfc_digits(s, 4), M = rfc_digits(s + 5, 2), D = rfc_digits(s + 8, 2);
    const int h = rfc_digits(s + 11, 2), mi = rfc_digits(s + 14, 2), sec = rfc_digits(s + 17, 2);
    if (Y < 0 || M < 1 || M > 12 || D < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
        sec > 59)
        return -1;
    const bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] + (M == 2 && leap)) return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        const int oh = rfc_digits(p + 1, 2), om = rfc_digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return -1;
        off = (oh * 60L + om) * 60L * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *epoch = (int64_t)timegm(&tm) - off;
    return 0;
}

void sg_format_shortest(double v, char *buf, size_t len)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (!isfinite(v) || strtod(buf, NULL) == v) {
            /* 40 as "40", not "4e+01": %g writes an exponent once it reaches the precision */
            int e = v != 0 ? (int)floor(log10(fabs(v))) : 0;
            if (e >= p && e < 17) snprintf(buf, len, "%.*g", e + 1, v);
            return;
        }
    }
}

int sg_digits_limit(double value, double limit)
{
    int p = sg_digits_apart(value, limit);
    char x[40];
    for (int q = 1; q <= 9; q++) {
        snprintf(x, sizeof x, "%.*g", q, limit);
        if (strtod(x, NULL) == limit) return q > p ? q : p;
    }
    return p > 9 ? p : 9;
}

int sg_digits_apart(double a, double b)
{
    char x[40], y[40];
    for (int p = 4; p < 17; p++) {
        snprintf(x, sizeof x, "%.*g", p, a);
        snprintf(y, sizeof y, "%.*g", p, b);
        if (a == b || strcmp(x, y) != 0) return p;
    }
    return 17;
}
