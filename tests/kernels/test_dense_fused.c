/*
 * The fused hidden-layer kernel (dense_act) and the forward pass's use of it.
 *
 * - dense_act, for every variant that has one, against a scalar reference written here, in
 *   each order: one fmaf chain per element over the inputs in order from +0 (or, for the
 *   elements SG_DENSE_PAIRED_EDGES names, one over the even inputs and one over the odd
 *   ones, added), then * 1 + 0 (sgemm's C = alpha * acc + C with C zeroed), then the
 *   variant's own bias_act. Bit for bit, over row counts that exercise the row tiles and
 *   their remainders, several input widths, and output widths past one column block.
 * - Where OpenBLAS runs its Haswell kernel (on Intel Haswell and later without AVX-512, and
 *   on AMD Zen), its sgemm against the same reference in the paired order: the order the
 *   forward pass would otherwise find by trial is the library's, for the shapes eval uses.
 * - dense_out (the narrow output layer), for every variant that has one, against the same
 *   reference in the one-chain order, bit for bit, over row counts that exercise its 8-row
 *   groups and the rows after them, input widths that are and are not a multiple of 4, and
 *   every width it takes; and where OpenBLAS runs its Haswell kernel, its sgemm for such
 *   narrow products against that reference.
 * - sg_forward_batch against the plain sgemm + bias_act + bias_link pass written here, bit
 *   for bit, over repeated and changing row counts: the first batch of a row count compares
 *   the two paths, the later ones take dense_act only where they agreed. Whatever OpenBLAS
 *   does on the machine the test runs on, the predictions must be sgemm's bits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_internal.h"
#include "stagegate/harness.h"
#include "stagegate/kernels.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float urand(float lo, float hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (float)((rng >> 40) * (1.0 / 16777216.0));
}

static float *filled(size_t n, float lo, float hi)
{
    float *p = sg_alloc_aligned(n * sizeof *p + 64);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = urand(lo, hi);
    return p;
}

/* The layout dense_act reads, written independently of forward.c's packer. */
static float *pack(const float *W, int n_in, int n_out)
{
    float *p = sg_alloc_aligned((size_t)n_in * (size_t)n_out * sizeof *p);
    assert_non_null(p);
    for (int s = 0; s < n_out / SG_DENSE_STRIPE; s++)
        for (int k = 0; k < n_in; k++)
            for (int j = 0; j < SG_DENSE_STRIPE; j++)
                p[((size_t)s * (size_t)n_in + (size_t)k) * SG_DENSE_STRIPE + (size_t)j] =
                    W[(size_t)k * (size_t)n_out + (size_t)(s * SG_DENSE_STRIPE + j)];
    return p;
}

/* Which of OpenBLAS's column blocks column j falls in (its level-3 driver splits n_out into
   GEMM_P = 320 while at least 640 are left, then the rest in two halves rounded up to 8, or
   in one), and whether j is among the first or last 8 columns of that block. */
static int column_block(int j, int n_out, bool *edge)
{
    int from = 0, block = 0;
    for (;;) {
        const int left = n_out - from;
        int width = left;
        if (left >= 640)
            width = 320;
        else if (left > 320)
            width = ((left / 2 + 7) / 8) * 8;
        if (j < from + width) {
            *edge = j < from + 8 || j >= from + width - 8;
            return block;
        }
        from += width;
        block++;
    }
}

/* SG_DENSE_PAIRED_EDGES: does element (r, j) of an n-row product take two chains? Rows come
   in tiles of 12 and then one of 8 or of 4, and the rest. */
static bool paired(int r, int j, int n, int n_out)
{
    bool edge;
    const int block = column_block(j, n_out, &edge), whole = n / 12 * 12, left = n - whole;
    if (r < whole) return r % 12 < 6 && edge;
    const int tile = left >= 8 ? 8 : left >= 4 ? 4 : 0;
    if (r - whole >= tile) return false;
    return block == 0 || tile == 4; /* an 8-row tile pairs in the first block only */
}

/* ref [n][n_out] = X W in the order given, as sgemm stores it (before bias and act). */
static void reference_product(const float *X, const float *W, int n, int n_in, int n_out,
                              sg_dense_order order, float *ref)
{
    for (int r = 0; r < n; r++)
        for (int j = 0; j < n_out; j++) {
            float acc = 0.0f;
            const float *x = X + (size_t)r * (size_t)n_in;
            if (order == SG_DENSE_PAIRED_EDGES && paired(r, j, n, n_out)) {
                float sums[2] = {0.0f, 0.0f};
                for (int q = 0; q < n_in; q++)
                    sums[q % 2] = fmaf(x[q], W[(size_t)q * (size_t)n_out + (size_t)j], sums[q % 2]);
                acc = sums[0] + sums[1];
            } else {
                for (int q = 0; q < n_in; q++)
                    acc = fmaf(x[q], W[(size_t)q * (size_t)n_out + (size_t)j], acc);
            }
            ref[(size_t)r * (size_t)n_out + (size_t)j] = fmaf(acc, 1.0f, 0.0f);
        }
}

static void check_dense_act(const sg_kernel_ops *k, int n, int n_in, int n_out, bool bias,
                            sg_activation act, sg_dense_order order)
{
    const float s = 1.5f / sqrtf((float)n_in);
    float *X = filled((size_t)n * (size_t)n_in, -2, 2), *W = filled((size_t)n_in * (size_t)n_out, -s, s);
    float *b = bias ? filled((size_t)n_out, -0.5f, 0.5f) : NULL;
    /* Some exact zeros in the inputs, as ReLU leaves them. */
    for (size_t i = 0; i < (size_t)n * (size_t)n_in; i += 3)
        X[i] = 0.0f;
    float *Wp = pack(W, n_in, n_out);
    float *ref = sg_alloc_aligned((size_t)n * (size_t)n_out * sizeof(float));
    float *got = filled((size_t)n * (size_t)n_out + 16, -9, -9);
    assert_non_null(ref);
    reference_product(X, W, n, n_in, n_out, order, ref);
    k->bias_act(ref, n, n_out, b, act);
    k->dense_act(X, n, n_in, Wp, b, act, got, n_out, order);
    if (memcmp(ref, got, (size_t)n * (size_t)n_out * sizeof(float)) != 0) {
        for (size_t i = 0; i < (size_t)n * (size_t)n_out; i++)
            if (memcmp(&ref[i], &got[i], sizeof(float)) != 0) {
                print_error("%s dense_act order %d %dx%d->%d act %d bias %d: element %zu is "
                            "%.9g, the reference gives %.9g\n",
                            k->name, (int)order, n, n_in, n_out, (int)act, (int)bias, i,
                            (double)got[i], (double)ref[i]);
                break;
            }
        fail();
    }
    for (size_t i = (size_t)n * (size_t)n_out; i < (size_t)n * (size_t)n_out + 16; i++)
        assert_true(got[i] == -9.0f); /* nothing written past the rows */
    sg_free_aligned(X);
    sg_free_aligned(W);
    sg_free_aligned(b);
    sg_free_aligned(Wp);
    sg_free_aligned(ref);
    sg_free_aligned(got);
}

static void test_dense_act_is_the_fma_chain(void **st)
{
    (void)st;
    /* Whole 12-row tiles, and after them 1-3, 4, 5-7, 8 and 9-11 rows (the paired order's
       row classes), and the kernel's own 6-row tiles and 96-row blocks. */
    const int rows[] = {1, 3, 4, 5, 6, 7, 8, 11, 12, 95, 96, 97, 200, 1024};
    const int ins[] = {1, 3, 64, 256, 300};
    const sg_activation acts[] = {SG_ACT_RELU, SG_ACT_IDENTITY, SG_ACT_TANH, SG_ACT_LOGISTIC};
    int ran = 0;
    for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k || !k->dense_act) continue;
        ran++;
        for (int o = 0; o < SG_DENSE_ORDERS; o++) {
            const sg_dense_order order = (sg_dense_order)o;
            for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
                for (size_t i = 0; i < sizeof ins / sizeof *ins; i++)
                    check_dense_act(k, rows[r], ins[i], i % 2 ? 128 : 64, true, SG_ACT_RELU,
                                    order);
            for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
                check_dense_act(k, 97, 64, 256, true, acts[a], order);
                check_dense_act(k, 13, 256, 64, false, acts[a], order);
            }
            /* Past one column block: 320 + 320 + two halves of 384 rounded to 8 (192), and
               two halves of 448 (224, not a multiple of 16); with an 8-row and a 4-row tile
               after the whole 12s. */
            for (int n = 20; n <= 30; n += 5) {
                check_dense_act(k, n, 64, 1024, true, SG_ACT_RELU, order);
                check_dense_act(k, n, 32, 448, true, SG_ACT_TANH, order);
            }
        }
    }
    if (!ran) print_message("no variant with dense_act runs on this CPU\n");
}

static void check_dense_out(const sg_kernel_ops *k, int n, int n_in, int n_out)
{
    const float s = 1.5f / sqrtf((float)n_in);
    float *X = filled((size_t)n * (size_t)n_in, -2, 2), *W = filled((size_t)n_in * (size_t)n_out, -s, s);
    for (size_t i = 0; i < (size_t)n * (size_t)n_in; i += 3)
        X[i] = 0.0f;
    float *ref = sg_alloc_aligned((size_t)n * (size_t)n_out * sizeof(float));
    float *got = filled((size_t)n * (size_t)n_out + 16, -9, -9);
    assert_non_null(ref);
    reference_product(X, W, n, n_in, n_out, SG_DENSE_CHAIN, ref);
    k->dense_out(X, n, n_in, W, got, n_out);
    for (size_t i = 0; i < (size_t)n * (size_t)n_out; i++)
        if (memcmp(&ref[i], &got[i], sizeof(float)) != 0) {
            print_error("%s dense_out %dx%d->%d: element %zu is %.9g, the reference gives %.9g\n",
                        k->name, n, n_in, n_out, i, (double)got[i], (double)ref[i]);
            fail();
        }
    for (size_t i = (size_t)n * (size_t)n_out; i < (size_t)n * (size_t)n_out + 16; i++)
        assert_true(got[i] == -9.0f); /* nothing written past the rows */
    sg_free_aligned(X);
    sg_free_aligned(W);
    sg_free_aligned(ref);
    sg_free_aligned(got);
}

static void test_dense_out_is_the_fma_chain(void **st)
{
    (void)st;
    /* One row; less than, exactly and more than one 8-row group; 2 and 4 groups side by side
       and the groups and rows after them; eval's sub-batch and a chunk's odd rest. */
    const int rows[] = {1, 3, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 41, 1024, 1029};
    /* Inputs taken 4 at a time, and the 1-3 after them. */
    const int ins[] = {1, 2, 3, 4, 5, 7, 64, 255, 256, 1000};
    int ran = 0;
    for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k || !k->dense_out) continue;
        ran++;
        for (int n_out = 1; n_out <= SG_OUT_MAX; n_out++)
            for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
                for (size_t i = 0; i < sizeof ins / sizeof *ins; i++)
                    check_dense_out(k, rows[r], ins[i], n_out);
    }
    if (!ran) print_message("no variant with dense_out runs on this CPU\n");
}

/* Today's batch path, written out: sgemm, then bias_act or bias_link, layer by layer. */
static void sgemm_forward(const sg_model *m, const sg_kernel_ops *k, const float *X, int n,
                          float *out)
{
    float *buf[2];
    for (int i = 0; i < 2; i++) {
        buf[i] = sg_alloc_aligned((size_t)n * 1024 * sizeof(float));
        assert_non_null(buf[i]);
    }
    const float *in = X;
    for (int l = 0; l < m->n_layers; l++) {
        const sg_layer *L = &m->layers[l];
        float *z = buf[l & 1];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, L->n_out, L->n_in, 1.0f, in,
                    L->n_in, L->W, L->n_out, 0.0f, z, L->n_out);
        if (l == m->n_layers - 1)
            k->bias_link(z, n, L->n_out, L->b, m->link, out);
        else
            k->bias_act(z, n, L->n_out, L->b, L->act);
        in = z;
    }
    sg_free_aligned(buf[0]);
    sg_free_aligned(buf[1]);
}

/* widths[0..3]: features, two hidden layers, outputs (1: a binary classifier's one logit and
   sigmoid; more: that many classes and softmax). */
static void check_forward_bits(const int widths[4])
{
    sg_layer layers[3];
    sg_model m = {0};
    const int n_out = widths[3], out_w = n_out == 1 ? 2 : n_out;
    m.task = n_out == 1 ? SG_TASK_BINARY : SG_TASK_MULTICLASS;
    m.n_classes = out_w;
    m.n_features = widths[0];
    m.n_outputs = n_out;
    m.n_layers = 3;
    m.link = n_out == 1 ? SG_LINK_SIGMOID : SG_LINK_SOFTMAX;
    m.layers = layers;
    snprintf(m.path, sizeof m.path, "in-memory test model");
    for (int l = 0; l < 3; l++) {
        const float s = 1.5f / sqrtf((float)widths[l]);
        layers[l] = (sg_layer){.n_in = widths[l], .n_out = widths[l + 1],
                               .W = filled((size_t)widths[l] * (size_t)widths[l + 1], -s, s),
                               .b = filled((size_t)widths[l + 1], -0.5f, 0.5f),
                               .act = l == 2 ? SG_ACT_IDENTITY : SG_ACT_RELU};
    }
    const int batches[] = {1024, 1024, 1024, 577, 577, 3, 1024, 577, 3};
    const int max_batch = 1024;
    float *X = filled((size_t)(max_batch + 2) * (size_t)widths[0], -3, 3);
    float *ref = sg_alloc_aligned((size_t)max_batch * (size_t)out_w * sizeof(float)),
          *got = sg_alloc_aligned((size_t)max_batch * (size_t)out_w * sizeof(float));
    assert_non_null(ref);
    assert_non_null(got);
    for (int isa = 0; isa < SG_ISA_COUNT; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k) continue;
        sg_forward_scratch *s = NULL;
        sg_err err;
        assert_int_equal(sg_forward_scratch_new(&m, max_batch, &s, &err), SG_OK);
        char paths[160];
        sg_forward_scratch_paths(s, &m, 1024, paths, sizeof paths);
        assert_string_equal(paths, "not run, not run, not run");
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            const int n = batches[b];
            const float *Xb = X + (size_t)(b % 3) * (size_t)widths[0]; /* other rows each time */
            sgemm_forward(&m, k, Xb, n, ref);
            sg_forward_batch(&m, k, Xb, n, got, s);
            if (memcmp(ref, got, (size_t)n * (size_t)out_w * sizeof(float)) != 0) {
                print_error("%s: batch %zu of %d rows differs from sgemm + bias_act\n", k->name,
                            b, n);
                fail();
            }
        }
        /* The path each layer took: a variant without dense_act or dense_out sgemm throughout,
           an output layer wider than SG_OUT_MAX sgemm, and where OpenBLAS runs its Haswell
           kernel the hidden layers of this shape in its order and a narrow output layer in one
           chain (test_paired_order_is_openblas_haswell and test_narrow_is_openblas_haswell show
           the orders are the library's for them): a silent fall back to sgemm, which halves
           the speed of eval on such hosts, fails here. */
        sg_forward_scratch_paths(s, &m, 1024, paths, sizeof paths);
        print_message("%s, %d-%d-%d-%d, 1024 rows: %s\n", k->name, widths[0], widths[1],
                      widths[2], n_out, paths);
        char largest[160]; /* n <= 0: the largest batch run, 1024 here */
        sg_forward_scratch_paths(s, &m, 0, largest, sizeof largest);
        assert_string_equal(largest, paths);
        const char *core = openblas_get_corename();
        const bool haswell = !strcmp(core, "Haswell") || !strncmp(core, "Zen", 3);
        const bool skylakex = !strcmp(core, "SkylakeX") || !strcmp(core, "Cooperlake");
        const char *last = strrchr(paths, ',');
        assert_non_null(last);
        if (!k->dense_act)
            assert_true(!strncmp(paths, "sgemm, sgemm, ", 14));
        else if (haswell && widths[0] <= 320 && widths[1] <= 320)
            assert_true(!strncmp(paths, "fused paired-edges, fused paired-edges, ", 40));
        else if (skylakex && widths[0] <= 256 && widths[1] <= 256) /* one chain per element */
            assert_true(!strncmp(paths, "fused one-chain, fused one-chain, ", 34));
        else if (skylakex && widths[0] <= 256)
            assert_true(!strncmp(paths, "fused one-chain, ", 17));
        if (!k->dense_out || n_out > SG_OUT_MAX)
            assert_string_equal(last, ", sgemm");
        else if (haswell && widths[2] <= 320)
            assert_string_equal(last, ", narrow one-chain");
        sg_forward_scratch_free(s);
    }
    for (int l = 0; l < 3; l++) {
        sg_free_aligned(layers[l].W);
        sg_free_aligned(layers[l].b);
    }
    sg_free_aligned(X);
    sg_free_aligned(ref);
    sg_free_aligned(got);
}

/* The paired order is OpenBLAS's own where it runs its Haswell kernel; elsewhere (its
   SkylakeX kernel, another library) there is nothing to check here, and the forward pass
   finds whichever order agrees, or none. */
static void test_paired_order_is_openblas_haswell(void **st)
{
    (void)st;
    const char *core = openblas_get_corename();
    if (strcmp(core, "Haswell") != 0 && strncmp(core, "Zen", 3) != 0) {
        print_message("OpenBLAS runs its %s kernel here, not Haswell's: skipped\n", core);
        return;
    }
    /* eval's sub-batches (1024 rows, and the rest of a chunk), a batch of 1 and odd tails,
       hidden widths 64..1024; inputs a multiple of 8 up to OpenBLAS's block depth of 320
       (its loop over the inputs takes 8 at a time; what it does with the rest of another
       count is not modelled, and the forward pass keeps sgemm there). */
    const int shapes[][3] = {{1024, 64, 256}, {1024, 256, 256}, {576, 256, 128},
                             {1, 64, 64},     {1030, 32, 192},  {100, 320, 512},
                             {20, 104, 1024}, {7, 256, 64},    {1029, 64, 704}, {16, 64, 448}};
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        const int n = shapes[t][0], n_in = shapes[t][1], n_out = shapes[t][2];
        float *X = filled((size_t)n * (size_t)n_in, -2, 2);
        float *W = filled((size_t)n_in * (size_t)n_out, -0.2f, 0.2f);
        float *C = sg_alloc_aligned((size_t)n * (size_t)n_out * sizeof(float));
        float *ref = sg_alloc_aligned((size_t)n * (size_t)n_out * sizeof(float));
        assert_non_null(C);
        assert_non_null(ref);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n_out, n_in, 1.0f, X, n_in, W,
                    n_out, 0.0f, C, n_out);
        reference_product(X, W, n, n_in, n_out, SG_DENSE_PAIRED_EDGES, ref);
        size_t differ = 0;
        for (size_t i = 0; i < (size_t)n * (size_t)n_out; i++)
            differ += memcmp(&C[i], &ref[i], sizeof(float)) != 0;
        if (differ) {
            print_error("OpenBLAS %s sgemm %dx%d->%d: %zu elements differ from the paired "
                        "order\n",
                        core, n, n_in, n_out, differ);
            fail();
        }
        sg_free_aligned(X);
        sg_free_aligned(W);
        sg_free_aligned(C);
        sg_free_aligned(ref);
    }
}

/* The one-chain order is OpenBLAS's own for products fewer than 8 columns wide where it runs
   its Haswell kernel, for inputs up to its block depth of 320 (any count: its narrow tiles
   take the inputs one at a time). */
static void test_narrow_is_openblas_haswell(void **st)
{
    (void)st;
    const char *core = openblas_get_corename();
    if (strcmp(core, "Haswell") != 0 && strncmp(core, "Zen", 3) != 0) {
        print_message("OpenBLAS runs its %s kernel here, not Haswell's: skipped\n", core);
        return;
    }
    const int rows[] = {1, 5, 12, 13, 1024, 1029}, ins[] = {1, 3, 64, 255, 256, 320};
    for (int n_out = 1; n_out <= SG_OUT_MAX; n_out++)
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
            for (size_t i = 0; i < sizeof ins / sizeof *ins; i++) {
                const int n = rows[r], n_in = ins[i];
                float *X = filled((size_t)n * (size_t)n_in, -2, 2);
                float *W = filled((size_t)n_in * (size_t)n_out, -0.2f, 0.2f);
                float *C = sg_alloc_aligned((size_t)n * (size_t)n_out * sizeof(float));
                float *ref = sg_alloc_aligned((size_t)n * (size_t)n_out * sizeof(float));
                assert_non_null(C);
                assert_non_null(ref);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n_out, n_in, 1.0f, X,
                            n_in, W, n_out, 0.0f, C, n_out);
                reference_product(X, W, n, n_in, n_out, SG_DENSE_CHAIN, ref);
                if (memcmp(C, ref, (size_t)n * (size_t)n_out * sizeof(float)) != 0) {
                    print_error("OpenBLAS %s sgemm %dx%d->%d differs from one chain\n", core, n,
                                n_in, n_out);
                    fail();
                }
                sg_free_aligned(X);
                sg_free_aligned(W);
                sg_free_aligned(C);
                sg_free_aligned(ref);
            }
}

static void test_forward_keeps_sgemm_bits(void **st)
{
    (void)st;
    check_forward_bits((const int[]){64, 256, 128, 2});
    check_forward_bits((const int[]){64, 256, 256, 1}); /* bench_eval's model */
    check_forward_bits((const int[]){32, 128, 64, 7});
    /* Eight classes: OpenBLAS's 8-column tile sums some elements in two chains (SG_OUT_MAX). */
    check_forward_bits((const int[]){32, 128, 64, 8});
    /* A long input: OpenBLAS splits it into blocks and adds the partial sums through C,
       which one fma chain does not reproduce; the forward pass must notice and keep sgemm. */
    check_forward_bits((const int[]){64, 512, 1024, 2});
}

int main(void)
{
    /* as every stagegate process does first: one BLAS thread, and OpenBLAS's kernels chosen
       as eval runs them (sg_blas_core), so the orders are checked against those */
    sg_blas_single_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_act_is_the_fma_chain),
        cmocka_unit_test(test_paired_order_is_openblas_haswell),
        cmocka_unit_test(test_dense_out_is_the_fma_chain),
        cmocka_unit_test(test_narrow_is_openblas_haswell),
        cmocka_unit_test(test_forward_keeps_sgemm_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
