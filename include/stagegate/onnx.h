/*
 * ONNX models compiled into a plan the kernels run. The loader (datasets/model_onnx*.c)
 * folds constants, fuses MatMul/Gemm + Add + activation and BatchNormalization into one
 * GEMM step, recognises PyTorch's GELU and LayerNorm decompositions, and assigns buffers
 * once. A graph that is a pure MLP chain becomes the dense layers of sg_model itself and
 * runs on exactly the native format's kernels; any other graph runs the step list below.
 */
#ifndef STAGEGATE_ONNX_H
#define STAGEGATE_ONNX_H

#include "stagegate/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SG_ONNX_OPSET_MIN 9
#define SG_ONNX_OPSET_MAX 17
#define SG_ONNX_NAME 48

/* What the graph's output means when it does not end in Softmax or Sigmoid
   (docs/formats.md): the --output flag, else metadata_props "stagegate.output". */
typedef enum {
    SG_ONNX_OUTPUT_AUTO = 0,
    SG_ONNX_OUTPUT_LOGITS = 1,
    SG_ONNX_OUTPUT_PROBA = 2,
    SG_ONNX_OUTPUT_VALUE = 3,
} sg_onnx_output;

/* "logits", "proba", "value"; -1 when unknown. */
int sg_onnx_output_parse(const char *s);
const char *sg_onnx_output_name(sg_onnx_output o);

typedef enum {
    SG_OX_GEMM,       /* out = act(in @ W + b) */
    SG_OX_UNARY,      /* out = f(in) */
    SG_OX_BINARY,     /* out = a op b, with row/column/constant broadcasting */
    SG_OX_AFFINE,     /* out[j] = in[j] * scale[j] + shift[j] (BatchNormalization) */
    SG_OX_LAYERNORM,  /* over each row; scale/shift may be NULL */
    SG_OX_SOFTMAX,    /* over each row */
    SG_OX_LOGSOFTMAX, /* over each row */
    SG_OX_MEAN,       /* out[0] = mean of the row */
    SG_OX_CONCAT,     /* rows side by side */
    SG_OX_GELU,       /* 0.5 x (1 + erf(x / sqrt 2)) */
} sg_onnx_step_kind;

typedef enum {
    SG_OXU_RELU,
    SG_OXU_LEAKY_RELU, /* alpha */
    SG_OXU_SIGMOID,
    SG_OXU_TANH,
    SG_OXU_ERF,
    SG_OXU_SQRT,
    SG_OXU_POW, /* x ^ alpha (a constant exponent) */
    SG_OXU_COPY,
} sg_onnx_unary;

typedef enum { SG_OXB_ADD, SG_OXB_SUB, SG_OXB_MUL, SG_OXB_DIV, SG_OXB_POW } sg_onnx_binary;

/* An operand of a binary step: a buffer row of the step's width, a buffer with one value
   per row (broadcast along the row), or a constant row of the step's width. */
typedef enum { SG_OXA_ROW, SG_OXA_COL, SG_OXA_CONST } sg_onnx_arg_kind;

typedef struct {
    sg_onnx_arg_kind kind;
    int buf;            /* ROW, COL: buffer index (-1 is the model's input X) */
    const float *value; /* CONST: [width] */
} sg_onnx_arg;

typedef struct {
    sg_onnx_step_kind kind;
    char name[SG_ONNX_NAME]; /* the ONNX node name(s) it came from, for --breakdown */
    int in;                  /* input buffer (-1: X) */
    int in_width;
    int out; /* output buffer */
    int width;
    /* GEMM */
    float *W; /* [in_width][width], 64-byte aligned */
    float *b; /* [width] */
    int act;  /* sg_activation */
    /* UNARY */
    sg_onnx_unary unary;
    float alpha;
    /* BINARY */
    sg_onnx_binary binary;
    sg_onnx_arg a, bb;
    /* AFFINE, LAYERNORM */
    float *scale, *shift;
    float eps;
    /* CONCAT */
    int n_parts;
    int *parts, *part_width;
} sg_onnx_step;

/* How the last buffer becomes the model's output. */
typedef enum {
    SG_ONNX_EPI_LINK,   /* bias_link with `link` (sigmoid, softmax or identity) */
    SG_ONNX_EPI_PROBA1, /* one probability p1 -> (1 - p1, p1) */
    SG_ONNX_EPI_COPY,   /* already probabilities */
} sg_onnx_epilogue;

typedef struct sg_onnx_plan {
    int opset;
    int n_steps;
    sg_onnx_step *steps;
    int n_bufs;
    int buf_width; /* widest buffer, floats per row */
    int out_buf;   /* -1 when the output is the input itself */
    int out_width;
    sg_onnx_epilogue epi;
    int link; /* sg_link for SG_ONNX_EPI_LINK */
    /* A pure MLP chain: sg_model's layers hold it and the dense kernels run it; steps is
       then empty and stage[] names the layers for --breakdown. */
    bool dense;
    int n_stages;
    char (*stage)[SG_ONNX_NAME];
    double flops_per_row;
    char output_rule[64]; /* how the output meaning was decided, for describe */
} sg_onnx_plan;

void sg_onnx_plan_free(sg_onnx_plan *p);
SG_MUST_CHECK sg_status sg_onnx_plan_clone(const sg_onnx_plan *src, sg_onnx_plan **out, sg_err *err);

#ifdef __cplusplus
}
#endif
#endif
