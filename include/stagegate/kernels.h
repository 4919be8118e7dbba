/* Inference kernels: batched forward pass (sgemm + fused SIMD epilogue) and batch-1 path. */
#ifndef STAGEGATE_KERNELS_H
#define STAGEGATE_KERNELS_H

#include "stagegate/common.h"
#include "stagegate/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SG_ISA_SCALAR = 0, SG_ISA_AVX2 = 1, SG_ISA_AVX512 = 2, SG_ISA_COUNT = 3 } sg_isa;

/*
 * Orders of operations of a dense layer's sums, each that of an OpenBLAS sgemm kernel, for
 * dense_act. Every element ends as sgemm stores it (acc * 1 + 0, beta 0), then + b and act.
 * - SG_DENSE_CHAIN: one fused multiply-add chain per element over the inputs in order from
 *   +0 (OpenBLAS's SkylakeX/Cooperlake kernels, for inputs up to their block depth).
 * - SG_DENSE_PAIRED_EDGES: OpenBLAS 0.3's Haswell kernel (which it also runs on AMD Zen),
 *   for a multiple of 8 inputs up to 320 and a multiple of 64 outputs: one chain, except
 *   for the elements its tiles (8 columns x 12, 8 or 4 rows) sum in two chains, the even
 *   inputs and the odd ones from +0 each, added at the end. With the output columns split
 *   into OpenBLAS's blocks (GEMM_P 320: blocks of 320 while 640 or more are left, then two
 *   halves rounded up to 8, or the rest), those are the first and last 8 columns of every
 *   block for the first 6 rows of every whole 12 rows; after the last whole 12, an 8-row
 *   tile's every column in the first block and a 4-row tile's every column. The rule was
 *   read off the library's results; the forward pass compares them anyway.
 */
typedef enum { SG_DENSE_CHAIN = 0, SG_DENSE_PAIRED_EDGES = 1, SG_DENSE_ORDERS = 2 } sg_dense_order;

/* The widest output layer dense_out takes (a binary classifier's one logit, a few classes):
   narrower than the 8-column tiles of OpenBLAS's Haswell kernel, whose edges it sums in two
   chains (SG_DENSE_PAIRED_EDGES), where its narrower tiles sum each element in one. */
#define SG_OUT_MAX 7

/*
 * One implementation of the element-wise and batch-1 kernels. A table per ISA;
 * the active one is picked once from cpuid/xgetbv, or forced by STAGEGATE_ISA.
 * Every variant agrees with the scalar reference to a few float ulp (the SIMD
 * exp/tanh/logistic are polynomial approximations of about 2 ulp); a bias
 * pointer may be NULL, meaning no bias.
 */
typedef struct {
    const char *name;
    sg_isa isa;
    /* y[j] = b[j] + sum_i x[i] * W[i*n_out + j]  (W row-major [n_in][n_out]); y must not
       overlap x, W or b. n_out == 1 is computed as a dot product over n_in. */
    void (*matvec)(const float *x, const float *W, const float *b, int n_in, int n_out, float *y);
    /* In place over a [n][width] block: y = act(y + b) */
    void (*bias_act)(float *Y, int64_t n, int width, const float *b, sg_activation act);
    /* In place: x = (x - mean) / scale over [n][d] (a true division, as scikit-learn does) */
    void (*standardize)(float *X, int64_t n, int d, const float *mean, const float *scale);
    /*
     * Last layer epilogue over logits [n][n_outputs] -> out [n][out_width]: bias add then
     * link. Sigmoid with one output writes two columns (p0, p1) like predict_proba, each
     * computed from the stable logistic (p0 = logistic(-z), so a tiny p0 keeps its relative
     * precision); sigmoid with several outputs is element-wise. Softmax subtracts the row
     * max. Z and out may be the same buffer only when out_width == n_outputs.
     */
    void (*bias_link)(const float *Z, int64_t n, int n_outputs, const float *b, sg_link link,
                      float *out);
    /*
     * Optional (NULL in a variant without one): a hidden layer in one pass, Y [n][n_out] =
     * act(X W + b) for X [n][n_in] and W packed by the forward pass (stripes of 64 output
     * columns, n_out a multiple of 64), in the order of operations `order` names (see
     * sg_dense_order): the arithmetic of an OpenBLAS sgemm kernel followed by bias_act,
     * without its packing and extra passes. The forward pass uses an order only for shapes
     * where it found it agrees with sgemm bit for bit. Y must not overlap X.
     */
    void (*dense_act)(const float *X, int64_t n, int n_in, const float *Wp, const float *b,
                      sg_activation act, float *Y, int n_out, sg_dense_order order);
    /*
     * Optional: an output layer of 1..SG_OUT_MAX columns, Z [n][n_out] = X W for X [n][n_in]
     * and W as the model holds it ([n_in][n_out] row-major), in SG_DENSE_CHAIN's order (one
     * multiply-add chain per element from +0, stored as acc * 1 + 0): OpenBLAS's arithmetic
     * for such narrow products on its Haswell/Zen kernel, without its packing of X. The
     * forward pass compares it with sgemm on the first batch of each row count, as it does
     * dense_act, and bias_link follows as after sgemm. Z must not overlap X or W.
     */
    void (*dense_out)(const float *X, int64_t n, int n_in, const float *W, float *Z, int n_out);
    /*
     * Tree ensembles, batch: M[r][g] += the leaf of every tree of group g for row r of
     * X [n][e->n_features], trees in order (M is [n][e->n_groups], set by the caller to the
     * base margin). Each row's sum is taken in tree order in float32 by every variant, so
     * all variants give the same bits as the scalar reference.
     */
    void (*tree_margins)(const sg_tree_ensemble *e, const float *X, int64_t n, float *M);
    /* The same for one row (the batch-1 path): walks several trees at once. */
    void (*tree_margins_one)(const sg_tree_ensemble *e, const float *x, float *M);
} sg_kernel_ops;

/*
 * Picks the active table once (thread-safe): STAGEGATE_ISA=scalar|avx2|avx512|auto forces
 * a variant, otherwise the best one cpuid/xgetbv allow. Returns SG_EINPUT with a message
 * naming STAGEGATE_ISA when the value is unknown or the CPU/OS cannot run it; a CLI
 * should call this at start-up and exit 2 on error.
 */
SG_MUST_CHECK sg_status sg_kernels_init(sg_err *err);
/* The active table. If sg_kernels_init would fail, this prints ONE warning line on stderr
   (naming STAGEGATE_ISA) and falls back to the best supported variant; never NULL. */
/* k->bias_link, except that under a sigmoid link a row whose margin (z + b) is not finite
 * gets NaN outputs, which the output check refuses ("not finite"): a margin that overflowed
 * float32 (a finite model on finite rows) is order-dependent (FMA chains gave +inf where the
 * exact margin was 0), and the logistic had squashed it into a probability of 0 or 1, as the
 * softmax and identity links do not. The check is one pass over the margins. */
void sg_bias_link_checked(const sg_kernel_ops *k, const float *z, int64_t n, int n_outputs,
                          const float *b, sg_link link, float *out);
const sg_kernel_ops *sg_kernels(void);
/* A specific variant, or NULL when the CPU/OS cannot run it. */
const sg_kernel_ops *sg_kernels_variant(sg_isa isa);
/* The CPU has AVX and the OS saves its registers (XCR0): what AVX code needs to run. */
bool sg_cpu_avx(void);
/* Parses STAGEGATE_ISA values: scalar|avx2|avx512; returns -1 when unknown. */
int sg_isa_parse(const char *s);
const char *sg_isa_name(sg_isa isa);

/* Per-thread scratch for the forward pass, sized for a model and a maximum batch.
   Errors: SG_EINPUT for a model without layers or a non-positive batch, SG_ENOMEM. */
typedef struct sg_forward_scratch sg_forward_scratch;
SG_MUST_CHECK sg_status sg_forward_scratch_new(const sg_model *m, int64_t max_batch, sg_forward_scratch **out,
                           sg_err *err);
void sg_forward_scratch_free(sg_forward_scratch *s);

/*
 * Batch forward: X [n][n_features] (not modified) -> out [n][sg_model_output_width(m)].
 * Classifiers produce probabilities (binary: two columns), regressors the prediction.
 * n <= max_batch of the scratch. Uses cblas_sgemm per layer (caller sets BLAS threads).
 */
void sg_forward_batch(const sg_model *m, const sg_kernel_ops *k, const float *X, int64_t n,
                      float *out, sg_forward_scratch *s);

/*
 * How the batch path ran each layer for batches of n rows, as a line for people: "fused
 * paired-edges, fused paired-edges, sgemm" (per layer, in order: `fused ORDER` where
 * dense_act took the layer in that order, `sgemm` where it did not or could not, `not run`
 * where no batch of n rows has run on this scratch yet; n <= 0: the largest batch that
 * has). Writes at most len bytes.
 */
void sg_forward_scratch_paths(const sg_forward_scratch *s, const sg_model *m, int64_t n,
                              char *buf, size_t len);

/* Batch-1 forward using matvec kernels only (no BLAS call). */
void sg_forward_one(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                    sg_forward_scratch *s);

/* Optional per-layer timing hook for --breakdown: called with stage 0 after the input is
   copied and standardised, then with stage l+1 after layer l (the last one includes the
   link). A NULL probe is allowed. */
typedef void (*sg_forward_probe)(void *ctx, int stage);
void sg_forward_one_probed(const sg_model *m, const sg_kernel_ops *k, const float *x, float *out,
                           sg_forward_scratch *s, sg_forward_probe probe, void *ctx);

/* Labels from probabilities [n][k], k >= 2: binary (k == 2) gives 1 when p1 > threshold;
   otherwise argmax, the first maximum winning a tie (numpy.argmax). */
void sg_predict_labels(const float *proba, int64_t n, int k, double threshold, int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
