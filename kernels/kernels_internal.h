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
int sg_kernels_resolve(const char *value, const sg_kernel_ops **out, sg_err *err);

/* Numerically stable logistic, exp(-|z|) based; shared by the scalar kernels. */
float sg_logistic_ref(float z);

#endif
