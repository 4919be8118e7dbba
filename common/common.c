/* Status strings, error formatting, aligned allocation and time helpers. */
#include "stagegate/common.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* The contract is one line: fold any newline a library message carried. */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return status;
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

sg_status sg_check_alloc(int64_t count, size_t size, const char *what, sg_err *err)
{
    size_t bytes = 0;
    uint64_t have = sg_physical_memory();
    if (count < 0 || !sg_mul_size((size_t)count, size, &bytes) || (have && bytes > have))
        return sg_errf(err, SG_EINPUT,
                       "%s: %lld rows need %.4g GiB, more than this machine's %.4g GiB of memory",
                       what, (long long)count, (double)count * (double)size / 1073741824.0,
                       (double)have / 1073741824.0);
    return SG_OK;
}

void sg_format_ns(double ns, char *buf, size_t len)
{
    if (!isfinite(ns))
        snprintf(buf, len, "-");
    else if (ns < 1e3)
        snprintf(buf, len, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.2f us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, len, "%.2f ms", ns / 1e6);
    else
        snprintf(buf, len, "%.2f s", ns / 1e9);
}
