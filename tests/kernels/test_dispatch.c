/*
 * Dispatch: STAGEGATE_ISA parsing and resolution, cpuid detection against the
 * compiler's own __builtin_cpu_supports, and the warn-once fallback of
 * sg_kernels() (checked in a child process, since the choice is per process).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/kernels_internal.h"

static void test_parse(void **st)
{
    (void)st;
    assert_int_equal(sg_isa_parse("scalar"), SG_ISA_SCALAR);
    assert_int_equal(sg_isa_parse("avx2"), SG_ISA_AVX2);
    assert_int_equal(sg_isa_parse("avx512"), SG_ISA_AVX512);
    assert_int_equal(sg_isa_parse("AVX2"), -1);
    assert_int_equal(sg_isa_parse("avx5122"), -1);
    assert_int_equal(sg_isa_parse("avx"), -1);
    assert_int_equal(sg_isa_parse(""), -1);
    assert_int_equal(sg_isa_parse(NULL), -1);
    for (int i = 0; i < SG_ISA_COUNT; i++)
        assert_int_equal(sg_isa_parse(sg_isa_name((sg_isa)i)), i);
    assert_string_equal(sg_isa_name((sg_isa)7), "unknown");
}

static void test_detection_matches_compiler(void **st)
{
    (void)st;
    __builtin_cpu_init();
    /* The compiler's view ignores XCR0, so it may only be more generous than ours. */
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (sg_cpu_supports(SG_ISA_AVX2)) assert_true(avx2);
    if (sg_cpu_supports(SG_ISA_AVX512)) assert_true(avx512 && sg_cpu_supports(SG_ISA_AVX2));
    print_message("cpu: avx2 %d/%d avx512 %d/%d (ours/compiler)\n", sg_cpu_supports(SG_ISA_AVX2),
                  avx2, sg_cpu_supports(SG_ISA_AVX512), avx512);
    assert_non_null(sg_kernels_variant(SG_ISA_SCALAR));
    assert_null(sg_kernels_variant(SG_ISA_COUNT));
    assert_null(sg_kernels_variant((sg_isa)-1));
    for (int i = 0; i < SG_ISA_COUNT; i++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)i);
        assert_int_equal(k != NULL, sg_cpu_supports((sg_isa)i));
        if (k) {
            assert_int_equal(k->isa, i);
            assert_string_equal(k->name, sg_isa_name((sg_isa)i));
        }
    }
}

static const sg_kernel_ops *best(void)
{
    for (int i = SG_ISA_COUNT - 1; i >= 0; i--)
        if (sg_kernels_variant((sg_isa)i)) return sg_kernels_variant((sg_isa)i);
    return NULL;
}

static void test_resolve(void **st)
{
    (void)st;
    const sg_kernel_ops *k = NULL;
    sg_err err = {{0}};
    assert_int_equal(sg_kernels_resolve(NULL, &k, &err), SG_OK);
    assert_ptr_equal(k, best());
    assert_int_equal(sg_kernels_resolve("", &k, &err), SG_OK);
    assert_ptr_equal(k, best());
    assert_int_equal(sg_kernels_resolve("auto", &k, &err), SG_OK);
    assert_ptr_equal(k, best());
    assert_int_equal(sg_kernels_resolve("scalar", &k, &err), SG_OK);
    assert_ptr_equal(k, &sg_kernel_ops_scalar);

    assert_int_equal(sg_kernels_resolve("sse9", &k, &err), SG_EINPUT);
    assert_non_null(strstr(err.msg, "STAGEGATE_ISA=sse9"));
    assert_null(strchr(err.msg, '\n'));
    assert_ptr_equal(k, best()); /* a usable fallback is still offered */

    for (int i = SG_ISA_AVX2; i < SG_ISA_COUNT; i++) {
        const int rc = sg_kernels_resolve(sg_isa_name((sg_isa)i), &k, &err);
        if (sg_cpu_supports((sg_isa)i)) {
            assert_int_equal(rc, SG_OK);
            assert_int_equal(k->isa, i);
        } else {
            assert_int_equal(rc, SG_EINPUT);
            assert_non_null(strstr(err.msg, "STAGEGATE_ISA"));
        }
    }
}

/* Forks a child with STAGEGATE_ISA=value that calls sg_kernels_init and then sg_kernels()
   twice; returns the isa chosen, the init status, and what it wrote on stderr. */
static void run_child(const char *value, int *isa, int *init_rc, char *errbuf, size_t errlen)
{
    int pe[2], po[2];
    assert_int_equal(pipe(pe), 0);
    assert_int_equal(pipe(po), 0);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pe[1], STDERR_FILENO);
        close(pe[0]);
        close(po[0]);
        setenv("STAGEGATE_ISA", value, 1);
        sg_err err;
        int res[2];
        res[1] = sg_kernels_init(&err);
        const sg_kernel_ops *a = sg_kernels(), *b = sg_kernels();
        res[0] = a == b ? (int)a->isa : -2;
        if (write(po[1], res, sizeof res) != (ssize_t)sizeof res) _exit(3);
        _exit(0);
    }
    close(pe[1]);
    close(po[1]);
    int res[2] = {-3, -3};
    assert_int_equal(read(po[0], res, sizeof res), (ssize_t)sizeof res);
    const ssize_t n = read(pe[0], errbuf, errlen - 1);
    errbuf[n > 0 ? n : 0] = '\0';
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(pe[0]);
    close(po[0]);
    *isa = res[0];
    *init_rc = res[1];
}

static void test_env_forcing(void **st)
{
    (void)st;
    int isa, rc;
    char errbuf[4096];
    run_child("scalar", &isa, &rc, errbuf, sizeof errbuf);
    assert_int_equal(isa, SG_ISA_SCALAR);
    assert_int_equal(rc, SG_OK);
    assert_string_equal(errbuf, "");

    /* Unknown value: init fails (so a CLI can exit 2); sg_kernels() warns ONCE and falls back. */
    run_child("turbo", &isa, &rc, errbuf, sizeof errbuf);
    assert_int_equal(rc, SG_EINPUT);
    assert_int_equal(isa, (int)best()->isa);
    assert_non_null(strstr(errbuf, "STAGEGATE_ISA=turbo"));
    const char *nl = strchr(errbuf, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, ""); /* exactly one line */

    if (!sg_cpu_supports(SG_ISA_AVX512)) {
        run_child("avx512", &isa, &rc, errbuf, sizeof errbuf);
        assert_int_equal(rc, SG_EINPUT);
        assert_non_null(strstr(errbuf, "cannot run avx512"));
    } else {
        run_child("avx2", &isa, &rc, errbuf, sizeof errbuf);
        assert_int_equal(isa, SG_ISA_AVX2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_detection_matches_compiler),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_env_forcing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
