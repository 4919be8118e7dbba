/* Internals shared by the kernel variants, the dispatcher and the kernel tests. */
#ifndef STAGEGATE_KERNELS_INTERNAL_H
#define STAGEGATE_KERNELS_INTERNAL_H

#include "stagegate/kernels.h"

/* One table per ISA. The SIMD tables live in files compiled with their target flags. */
extern const sg_kernel_ops sg_kernel_ops_scalar;
extern const sg_kernel_ops sg_kernel_ops_avx2;
extern const sg_kernel_ops sg_kernel_ops_avx512;

/* What cpuid/xgetbv say this CPU and OS can run (no environment involved). */
bool sg_cpu_supports(sg_isa isa);

/*
 * Resolves a STAGEGATE_ISA value (NULL, "" and "auto" mean the best supported)
 * to a table. Unknown or unsupported values return SG_EINPUT with a message
 * naming the variable and *out set to the best supported table, so a caller
 * may either fail or warn and continue. Pure: no caching, no printing.
 */
SG_MUST_CHECK sg_status sg_kernels_resolve(const char *value, const sg_kernel_ops **out, sg_err *err);

/* Output columns per stripe of a layer's weights packed for dense_act: Wp holds, stripe
   after stripe, [n_in][SG_DENSE_STRIPE] floats, 64-byte aligned. */
#define SG_DENSE_STRIPE 64

/* SG_DENSE_PAIRED_EDGES (see kernels.h), for row i of an n-row batch: 0 one chain; 1 two
   chains on the first and last 8 columns of every column block; 2 two chains on every
   column of the first block only; 3 on every column. */
static inline int sg_paired_row_kind(int64_t i, int64_t n)
{
    const int64_t full = n - n % 12, rem = n % 12;
    if (i < full) return i % 12 < 6;
    if (rem >= 8) return i - full < 8 ? 2 : 0;
    return rem >= 4 && i - full < 4 ? 3 : 0;
}

/* The first column of each of OpenBLAS's column blocks for SG_DENSE_PAIRED_EDGES (GEMM_P
   320: 320 while 640 or more are left, then two halves rounded up to 8, or the rest), then
   n_out; returns the number of blocks (at most max - 1: a wider layer's comparison fails and
   it stays on sgemm). */
static inline int sg_paired_column_blocks(int n_out, int *start, int max)
{
    int nb = 0;
    for (int is = 0; is < n_out && nb < max - 1; nb++) {
        const int left = n_out - is;
        const int mi = left >= 2 * 320 ? 320 : left > 320 ? (left / 2 + 7) / 8 * 8 : left;
        start[nb] = is;
        is += mi;
    }
    start[nb] = n_out;
    return nb;
}

/* Numerically stable logistic, exp(-|z|) based; shared by the scalar kernels. */
float sg_logistic_ref(float z);

/* Tree kernels (kernels/trees_scalar.c, avx2/trees_avx2.c, avx512/trees_avx512.c). */
void sg_tree_margins_scalar(const sg_tree_ensemble *e, const float *X, int64_t n, float *M);
void sg_tree_margins_one_scalar(const sg_tree_ensemble *e, const float *x, float *M);
void sg_tree_margins_avx2(const sg_tree_ensemble *e, const float *X, int64_t n, float *M);
void sg_tree_margins_one_avx2(const sg_tree_ensemble *e, const float *x, float *M);
void sg_tree_margins_avx512(const sg_tree_ensemble *e, const float *X, int64_t n, float *M);
void sg_tree_margins_one_avx512(const sg_tree_ensemble *e, const float *x, float *M);

/* Rows the scalar reference handles together: bounds the working set of rows per tree. */
#define SG_TREE_ROW_BLOCK 64

/* Leaf index reached by one row in one tree: the scalar reference walk. */
static inline uint32_t sg_tree_walk(const sg_tree_node *t, const float *x)
{
    uint32_t i = 0;
    while (t[i].left != i) {
        const sg_tree_node *nd = &t[i];
        const float v = x[nd->feature & SG_TREE_FEATURE_MASK];
        /* NaN compares false, so it goes left only when the node says so. */
        const int left = v < nd->threshold || (v != v && (nd->feature & SG_TREE_DEFAULT_LEFT));
        i = nd->left + (uint32_t)!left;
    }
    return i;
}

#endif
