/*
 * Mann-Whitney U test on binned samples. A histogram bucket is a tie group:
 * every observation in it gets the group's average rank, so the statistic and
 * the tie-corrected variance come out exactly as scipy computes them on the
 * expanded samples, without expanding (a bucket may hold millions of queries).
 * Sums run in long double: with n1 * n2 near 1e12 the U statistic still keeps
 * its fractional half-ranks.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "stagegate/compare.h"

static sg_status check_bins(const sg_bin *b, size_t n, const char *what, int64_t *total, sg_err *err)
{
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count < 0 || !isfinite(b[i].value))
            return sg_errf(err, SG_EINPUT,
                           "%s histogram: bucket %zu has a negative count or a non-finite value",
                           what, i);
        if (i && !(b[i].value > b[i - 1].value))
            return sg_errf(err, SG_EINPUT,
                           "%s histogram: buckets are not in strictly ascending order at %zu", what,
                           i);
        if (b[i].count > INT64_MAX - *total)
            return sg_errf(err, SG_EINPUT, "%s histogram: counts overflow at bucket %zu", what, i);
        *total += b[i].count;
    }
    if (*total == 0)
        return sg_errf(err, SG_EINPUT, "%s histogram is empty: nothing to compare", what);
    return SG_OK;
}

sg_status sg_mannwhitney_binned(const sg_bin *x, size_t nx, const sg_bin *y, size_t ny, sg_mw_result *out,
                          sg_err *err)
{
    int64_t n1, n2;
    int rc = check_bins(x, nx, "OLD", &n1, err);
    if (!rc) rc = check_bins(y, ny, "NEW", &n2, err);
    if (rc) return rc;
    /* Merge the two ascending lists; each distinct value is one tie group. */
    long double r1 = 0, below = 0, tie_term = 0;
    size_t i = 0, j = 0;
    while (i < nx || j < ny) {
        double v = i < nx && (j >= ny || x[i].value <= y[j].value) ? x[i].value : y[j].value;
        long double a = 0, b = 0;
        if (i < nx && x[i].value == v) a = (long double)x[i++].count;
        if (j < ny && y[j].value == v) b = (long double)y[j++].count;
        long double t = a + b;
        if (t == 0) continue;
        r1 += a * (below + (t + 1) / 2); /* the group's ranks are below+1 .. below+t */
        tie_term += t * t * t - t;
        below += t;
    }
    long double ln1 = (long double)n1, ln2 = (long double)n2, n = ln1 + ln2;
    long double u1 = r1 - ln1 * (ln1 + 1) / 2, u2 = ln1 * ln2 - u1;
    long double u = u1 > u2 ? u1 : u2;
    long double mu = ln1 * ln2 / 2;
    long double var = n > 1 ? ln1 * ln2 / 12 * ((n + 1) - tie_term / (n * (n - 1))) : 0;
    out->n_old = n1;
    out->n_new = n2;
    out->u = (double)u1;
    /* All observations tied: no evidence either way (scipy gives NaN; p = 1 is the useful answer).
     */
    if (var <= 0) {
        out->z = 0;
        out->p_value = 1;
        return SG_OK;
    }
    double z = (double)((u - mu - 0.5L) / sqrtl(var));
    double p = erfc(z / sqrt(2.0)); /* 2 * normal survival function */
    out->z = z;
    out->p_value = p > 1 ? 1 : p < 0 ? 0 : p;
    return SG_OK;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* log C(n, k) through lgamma: exact enough for a probability's denominator. */
static double log_binom(size_t n, size_t k)
{
    return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1);
}

double sg_mannwhitney_min_p(size_t nx, size_t ny)
{
    if (!nx || !ny) return 1;
    double p = 2 * exp(-log_binom(nx + ny, nx));
    return p > 1 ? 1 : p;
}

/*
 * P(U >= u) under the null for sizes m, n: the counts of arrangements per U are the coefficients
 * of the Gaussian binomial G(m, n) = [m+n choose m]_q, built by the q-Pascal rule
 * G(i, j) = G(i-1, j) + q^i G(i, j-1): additions of positive counts only. (The product of
 * factors (1 - q^(n+i)) / (1 - q^i) subtracts counts near 1e19 from each other, and for 8
 * against 1000 values gave a p-value of -1.6e-19 against scipy's 7.8e-20.) The smaller size
 * is i, at most 8 where the exact test is used: about m^2 n^2 / 4 additions.
 */
static double exact_sf(size_t m, size_t n, double u)
{
    if (m > n) {
        size_t t = m;
        m = n;
        n = t;
    }
    /* g[i]: the coefficients of G(i, j) for the j reached so far, m*n + 1 of them each */
    const size_t deg = m * n;
    double *g = calloc((m + 1) * (deg + 1), sizeof *g);
    if (!g) return NAN;
    for (size_t i = 0; i <= m; i++)
        g[i * (deg + 1)] = 1; /* G(i, 0) = 1 */
    for (size_t j = 1; j <= n; j++)
        for (size_t i = 1; i <= m; i++) {
            double *cur = g + i * (deg + 1);
            const double *below = g + (i - 1) * (deg + 1); /* G(i-1, j), already updated */
            /* G(i, j)[k] = G(i-1, j)[k] + G(i, j-1)[k - i]; from the top down, so that
               cur[k - i] still holds G(i, j-1) */
            for (size_t k = i * j + 1; k-- > 0;)
                cur[k] = below[k] + (k >= i ? cur[k - i] : 0);
        }
    const double *c = g + m * (deg + 1);
    double total = 0, tail = 0;
    for (size_t k = 0; k <= deg; k++) {
        total += c[k];
        if ((double)k >= u) tail += c[k];
    }
    free(g);
    return tail / total;
}

sg_status sg_mannwhitney_values(const double *x, size_t nx, const double *y, size_t ny, sg_mw_result *out,
                          bool *exact, sg_err *err)
{
    if (!nx || !ny) return sg_errf(err, SG_EINPUT, "Mann-Whitney: a sample is empty");
    double *all = malloc((nx + ny) * sizeof *all);
    sg_bin *bx = malloc(nx * sizeof *bx), *by = malloc(ny * sizeof *by);
    int rc = SG_OK;
    if (!all || !bx || !by) rc = sg_errf(err, SG_ENOMEM, "Mann-Whitney: out of memory");
    for (size_t i = 0; rc == SG_OK && i < nx + ny; i++) {
        all[i] = i < nx ? x[i] : y[i - nx];
        if (!isfinite(all[i])) rc = sg_errf(err, SG_EINPUT, "Mann-Whitney: a value is not finite");
    }
    /* Each sample as bins of equal values: the binned test ranks ties exactly as scipy does. */
    size_t kx = 0, ky = 0;
    if (rc == SG_OK) {
        qsort(all, nx, sizeof *all, cmp_dbl);
        qsort(all + nx, ny, sizeof *all, cmp_dbl);
        for (size_t i = 0; i < nx; i++)
            if (kx && bx[kx - 1].value == all[i])
                bx[kx - 1].count++;
            else
                bx[kx++] = (sg_bin){all[i], 1};
        for (size_t i = 0; i < ny; i++)
            if (ky && by[ky - 1].value == all[nx + i])
                by[ky - 1].count++;
            else
                by[ky++] = (sg_bin){all[nx + i], 1};
        rc = sg_mannwhitney_binned(bx, kx, by, ky, out, err);
    }
    bool ties = kx < nx || ky < ny;
    if (rc == SG_OK && !ties) {
        qsort(all, nx + ny, sizeof *all, cmp_dbl);
        for (size_t i = 1; i < nx + ny; i++)
            ties = ties || all[i] == all[i - 1];
    }
    *exact = rc == SG_OK && !ties && (nx <= 8 || ny <= 8);
    if (*exact) {
        double u1 = out->u, u2 = (double)nx * (double)ny - u1;
        double p = 2 * exact_sf(nx, ny, u1 > u2 ? u1 : u2);
        out->p_value = p > 1 ? 1 : p;
        out->z = NAN;
    }
    free(all);
    free(bx);
    free(by);
    return rc;
}
