/*
 * Run-time choice of the kernel table (libsodium's pick-best-implementation).
 *
 * Ownership and invariants: the choice is made exactly once per process under
 * pthread_once and stored in file-static variables that are never written
 * again, so any thread may read them after the once-call returns. This file is
 * compiled without SIMD flags; it only looks at cpuid and xgetbv and never
 * calls into a SIMD table itself.
 */
#include "kernels/kernels_internal.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    /* xgetbv by opcode-free asm so this file needs no -mxsave. */
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* The CPU flags alone are not enough: the OS must save the wider register state
   on context switch (XCR0), or the upper halves get silently clobbered. */
bool sg_cpu_avx(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    return osxsave && avx && (read_xcr0() & 0x6) == 0x6; /* XMM and YMM state */
}

bool sg_cpu_supports(sg_isa isa)
{
    if (isa == SG_ISA_SCALAR) return true;
    if (isa != SG_ISA_AVX2 && isa != SG_ISA_AVX512) return false;

    unsigned a, b, c, d;
    if (!sg_cpu_avx() || !__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 12)))
        return false; /* FMA */
    const uint64_t xcr0 = read_xcr0();
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    if (isa == SG_ISA_AVX2) return avx2;

    /* The AVX-512 file is compiled with F, DQ, BW and VL; all four must be present,
       and the OS must enable opmask, ZMM_Hi256 and Hi16_ZMM state. */
    const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    return avx2 && f && dq && bw && vl && (xcr0 & 0xE6) == 0xE6;
}

static const sg_kernel_ops *const tables[SG_ISA_COUNT] = {
    &sg_kernel_ops_scalar,
    &sg_kernel_ops_avx2,
    &sg_kernel_ops_avx512,
};

const sg_kernel_ops *sg_kernels_variant(sg_isa isa)
{
    if ((int)isa < 0 || isa >= SG_ISA_COUNT) return NULL;
    return sg_cpu_supports(isa) ? tables[isa] : NULL;
}

const char *sg_isa_name(sg_isa isa)
{
    switch (isa) {
    case SG_ISA_SCALAR:
        return "scalar";
    case SG_ISA_AVX2:
        return "avx2";
    case SG_ISA_AVX512:
        return "avx512";
    default:
        return "unknown";
    }
}

int sg_isa_parse(const char *s)
{
    if (!s) return -1;
    for (int i = 0; i < SG_ISA_COUNT; i++)
        if (strcmp(s, sg_isa_name((sg_isa)i)) == 0) return i;
    return -1;
}

static const sg_kernel_ops *best_supported(void)
{
    for (int i = SG_ISA_COUNT - 1; i > 0; i--)
        if (sg_cpu_supports((sg_isa)i)) return tables[i];
    return &sg_kernel_ops_scalar;
}

sg_status sg_kernels_resolve(const char *value, const sg_kernel_ops **out, sg_err *err)
{
    const sg_kernel_ops *best = best_supported();
    *out = best;
    if (!value || !*value || strcmp(value, "auto") == 0) return SG_OK;
    const int isa = sg_isa_parse(value);
    if (isa < 0)
        return sg_errf(err, SG_EINPUT,
                       "STAGEGATE_ISA=%.64s is not one of scalar, avx2, avx512, auto", value);
    if (!sg_cpu_supports((sg_isa)isa))
        return sg_errf(err, SG_EINPUT,
                       "STAGEGATE_ISA=%s: this CPU or OS cannot run %s kernels (best is %s)", value,
                       value, best->name);
    *out = tables[isa];
    return SG_OK;
}

static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static const sg_kernel_ops *chosen;
static int chosen_status;
static sg_err chosen_err;

static void choose(void)
{
    chosen_status = sg_kernels_resolve(getenv("STAGEGATE_ISA"), &chosen, &chosen_err);
}

sg_status sg_kernels_init(sg_err *err)
{
    pthread_once(&chosen_once, choose);
    if (chosen_status != SG_OK && err) *err = chosen_err;
    return chosen_status;
}

static pthread_once_t warned_once = PTHREAD_ONCE_INIT;

static void warn(void)
{
    fprintf(stderr, "stagegate: warning: %s; using %s kernels\n", chosen_err.msg, chosen->name);
}

const sg_kernel_ops *sg_kernels(void)
{
    pthread_once(&chosen_once, choose);
    if (chosen_status != SG_OK) pthread_once(&warned_once, warn);
    return chosen;
}
