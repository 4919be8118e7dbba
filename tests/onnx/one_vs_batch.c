/*
 * sg_onnx_one_vs_batch MODEL: the latency path (one row at a time, as bench runs it) must
 * give what the batch path gives, for every kernel variant this CPU runs. The step plan
 * takes other code for one row (matvec instead of sgemm), so a row-layout slip there
 * (a row of several vectors, a fused epilogue) would show only in the latency run, whose
 * outputs no metric reads. Rows are deterministic values in [-4, 4]; outputs must agree
 * within 1e-5, relative past 1 (the two paths sum in other orders). Exit 0 when they do, 1 with the
 * first difference, 2 when the model does not load.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stagegate/kernels.h"
#include "stagegate/model.h"
#include "stagegate/model_ops.h"

enum { ROWS = 67 };

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sg_onnx_one_vs_batch MODEL\n");
        return 2;
    }
    sg_model *m = NULL;
    sg_err err = {{0}};
    if (sg_model_open(argv[1], &m, &err) != SG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    const int w = sg_model_output_width(m), f = m->n_features;
    float *X = malloc((size_t)ROWS * (size_t)f * sizeof(float));
    float *batch = malloc((size_t)ROWS * (size_t)w * sizeof(float));
    float *one = malloc((size_t)w * sizeof(float));
    void *scratch = NULL;
    if (!X || !batch || !one || sg_model_scratch_new(m, ROWS, &scratch, &err) != SG_OK) {
        fprintf(stderr, "out of memory: %s\n", err.msg);
        return 2;
    }
    for (size_t i = 0; i < (size_t)ROWS * (size_t)f; i++)
        X[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 250.0f;
    int bad = 0, variants = 0;
    for (int isa = 0; isa < SG_ISA_COUNT && !bad; isa++) {
        const sg_kernel_ops *k = sg_kernels_variant((sg_isa)isa);
        if (!k) continue;
        variants++;
        sg_model_predict_batch(m, k, X, ROWS, batch, scratch);
        for (int r = 0; r < ROWS && !bad; r++) {
            sg_model_predict_one(m, k, X + (size_t)r * (size_t)f, one, scratch, NULL, NULL);
            for (int j = 0; j < w; j++) {
                const float a = batch[(size_t)r * (size_t)w + (size_t)j], b = one[j];
                if (!(fabsf(a - b) <= 1e-5f * fmaxf(1.0f, fabsf(b)))) {
                    fprintf(stderr,
                            "%s: kernel variant %d, row %d, output %d: batch %.9g, one row %.9g\n",
                            argv[1], isa, r, j, (double)a, (double)b);
                    bad = 1;
                    break;
                }
            }
        }
    }
    sg_model_scratch_free(m, scratch);
    sg_model_free(m);
    free(X);
    free(batch);
    free(one);
    if (!bad) printf("%s: %d rows agree under %d kernel variants\n", argv[1], ROWS, variants);
    return bad;
}
