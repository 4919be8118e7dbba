/*
 * Compiles ONNX nodes, in topological order, into plan steps. A node whose inputs are all
 * constants is evaluated now (constant folding); shape-only nodes on per-row tensors
 * (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Cast to float) become aliases
 * of their input and cost nothing at run time. Every per-row tensor keeps the batch as its
 * leading dimension; a node that would move it is refused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* The operators ox_compile_node knows, in the order the unsupported-operator message lists
   them. */
/* clang-format off */
#define OX_SUPPORTED_OPS(X)                                                                        \
    X(Gemm) X(MatMul) X(Add) X(Sub) X(Mul) X(Div) X(Relu) X(LeakyRelu) X(Sigmoid) X(Tanh) X(Erf)   \
    X(Softmax) X(LogSoftmax) X(BatchNormalization) X(LayerNormalization) X(ReduceMean) X(Pow)      \
    X(Sqrt) X(Flatten) X(Reshape) X(Squeeze) X(Unsqueeze) X(Identity) X(Dropout) X(Constant)       \
    X(Cast) X(Concat)
/* clang-format on */
#define OX_OP_NAME(op) #op,
#define OX_OP_LISTED(op) ", " #op

static const char *const supported[] = {OX_SUPPORTED_OPS(OX_OP_NAME)};
/* One string literal: no buffer to outgrow as operators are added. The message that lists
   it ("unsupported operator OP of domain DOMAIN; supported: ...", both at most 40 bytes)
   must fit ox_node_err's buffer. */
static const char supported_list[] = OX_SUPPORTED_OPS(OX_OP_LISTED);
_Static_assert(sizeof supported_list + 160 <= OX_NODE_MSG,
               "the supported-operator list outgrows ox_node_err's message");

const char *ox_supported_ops(void)
{
    return supported_list + 2; /* after the first ", " */
}

bool ox_op_supported(const char *op)
{
    for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++)
        if (strcmp(op, supported[i]) == 0) return true;
    return false;
}

const Onnx__AttributeProto *ox_attr(const ox_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->node->n_attribute; i++)
        if (c->node->attribute[i]->name && strcmp(c->node->attribute[i]->name, name) == 0)
            return c->node->attribute[i];
    return NULL;
}

int64_t ox_attr_i(const ox_ctx *c, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    return a && a->has_i ? a->i : dflt;
}

float ox_attr_f(const ox_ctx *c, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    return a && a->has_f ? a->f : dflt;
}

/* Value index of input k, -1 when absent (or an empty name: an omitted optional input). */
int ox_in(const ox_ctx *c, size_t k)
{
    if (k >= c->node->n_input || !c->node->input[k] || !c->node->input[k][0]) return -1;
    return ox_value_find((ox_ctx *)c, c->node->input[k]);
}

sg_status ox_need_in(ox_ctx *c, size_t k, sg_err *err, int *out)
{
    *out = ox_in(c, k);
    if (*out < 0) return ox_node_err(c, err, SG_EINPUT, "input %zu is missing", k);
    return SG_OK;
}

/* The node's output k as a new value. */
sg_status ox_new_out(ox_ctx *c, size_t k, sg_err *err, int *out)
{
    *out = -1;
    if (k >= c->node->n_output || !c->node->output[k] || !c->node->output[k][0])
        return ox_node_err(c, err, SG_EINPUT, "output %zu is missing", k);
    if (ox_value_find(c, c->node->output[k]) >= 0)
        return ox_node_err(c, err, SG_EINPUT, "output '%.100s' is defined twice",
                           c->node->output[k]);
    int v = ox_value_add(c, c->node->output[k], err);
    if (v < 0) return SG_EINPUT;
    c->vals[v].defined = true;
    *out = v;
    return SG_OK;
}

/* Outputs beyond the first must be unnamed (BatchNormalization's running stats, Dropout's
   mask, LayerNormalization's mean): the plan computes only the first. */
sg_status ox_only_first_output(ox_ctx *c, sg_err *err)
{
    for (size_t k = 1; k < c->node->n_output; k++)
        if (c->node->output[k] && c->node->output[k][0])
            return ox_node_err(c, err, SG_EINPUT,
                               "output %zu ('%.100s') is not supported (inference computes only "
                               "the first output)",
                               k, c->node->output[k]);
    return SG_OK;
}

sg_onnx_step *ox_step_new(ox_ctx *c, sg_onnx_step_kind kind, sg_err *err)
{
    if (c->n_steps == c->cap_steps) {
        int cap = c->cap_steps ? 2 * c->cap_steps : 32;
        sg_onnx_step *ns = realloc(c->steps, (size_t)cap * sizeof *ns);
        if (!ns) {
            sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            return NULL;
        }
        c->steps = ns;
        c->cap_steps = cap;
    }
    sg_onnx_step *s = &c->steps[c->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    const char *nm = c->node->name && c->node->name[0] ? c->node->name : c->node->op_type;
    snprintf(s->name, sizeof s->name, "%s", nm);
    return s;
}

/* A per-row output value with the given row shape, written by the newest step. */
sg_status ox_dyn_out(ox_ctx *c, int rank, const int64_t *dims, sg_err *err, int *out)
{
    int rc = ox_new_out(c, 0, err, out);
    if (rc) return rc;
    ox_value *v = &c->vals[*out];
    int64_t w = 1;
    for (int i = 0; i < rank; i++) {
        v->dims[i] = dims[i];
        w *= dims[i];
    }
    if (w < 1 || w > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)", (long long)w,
                           OX_MAX_WIDTH);
    v->rank = rank;
    v->count = w;
    v->dtype = OX_FLOAT;
    v->producer = c->n_steps - 1;
    c->steps[c->n_steps - 1].out = *out;
    return SG_OK;
}

/* The output is the input under another shape. */
int ox_alias_out(ox_ctx *c, int src, int rank, const int64_t *dims, sg_err *err)
{
    int v;
    int rc = ox_new_out(c, 0, err, &v);
    if (rc) return rc;
    ox_value *o = &c->vals[v], *s = &c->vals[src];
    o->rank = rank;
    memcpy(o->dims, dims, (size_t)rank * sizeof *dims);
    o->count = s->count;
    o->dtype = OX_FLOAT;
    o->data = s->data;
    o->producer = s->producer;
    return SG_OK;
}

sg_status ox_const_out(ox_ctx *c, int rank, const int64_t *dims, int dtype, sg_err *err, int *out)
{
    int rc = ox_new_out(c, 0, err, out);
    if (rc) return rc;
    ox_value *v = &c->vals[*out];
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || !sg_mul_size(n, (size_t)dims[i], &n) || n > (size_t)OX_MAX_ELEMS)
            return ox_node_err(c, err, SG_EINPUT, "constant result too large");
        v->dims[i] = dims[i];
    }
    size_t bytes = (n ? n : 1) * 8;
    if (bytes > OX_MAX_FOLDED - c->folded_bytes)
        return ox_node_err(c, err, SG_EINPUT, "constant folding would need more than %zu MiB",
                           OX_MAX_FOLDED >> 20);
    c->folded_bytes += bytes;
    v->is_const = true;
    v->rank = rank;
    v->count = (int64_t)n;
    v->dtype = dtype;
    if (dtype == OX_FLOAT)
        v->f = sg_alloc_aligned((n ? n : 1) * sizeof(float));
    else
        v->i = malloc((n ? n : 1) * sizeof(int64_t));
    if (!v->f && !v->i) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    return SG_OK;
}

/* ---- constants: numpy broadcasting ---- */

static int broadcast_dims(const ox_value *a, const ox_value *b, int *rank, int64_t *dims)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) return -1;
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return 0;
}

/* Offset in v of the output element at multi-index idx (rank r), broadcasting v. */
static int64_t bcast_offset(const ox_value *v, int r, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < v->rank; i++) {
        int64_t d = v->dims[i], k = idx[i + (r - v->rank)];
        off = off * d + (d == 1 ? 0 : k);
    }
    return off;
}

static float binop(sg_onnx_binary op, float a, float b)
{
    switch (op) {
    case SG_OXB_ADD:
        return a + b;
    case SG_OXB_SUB:
        return a - b;
    case SG_OXB_MUL:
        return a * b;
    case SG_OXB_DIV:
        return a / b;
    case SG_OXB_POW:
        return powf(a, b);
    }
    return 0;
}

static sg_status fold_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err)
{
    const ox_value *a = &c->vals[ia], *b = &c->vals[ib];
    if (a->dtype != OX_FLOAT || b->dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "integer arithmetic on constants is not supported");
    int r;
    int64_t dims[OX_MAX_RANK];
    if (broadcast_dims(a, b, &r, dims))
        return ox_node_err(c, err, SG_EINPUT, "constant shapes do not broadcast");
    int v;
    int rc = ox_const_out(c, r, dims, OX_FLOAT, err, &v);
    if (rc) return rc;
    a = &c->vals[ia];
    b = &c->vals[ib];
    ox_value *o = &c->vals[v];
    int64_t idx[OX_MAX_RANK] = {0};
    for (int64_t k = 0; k < o->count; k++) {
        o->f[k] = binop(op, a->f[bcast_offset(a, r, idx)], b->f[bcast_offset(b, r, idx)]);
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    return SG_OK;
}

static float unop(sg_onnx_unary op, float x, float alpha)
{
    switch (op) {
    case SG_OXU_RELU:
        return x > 0 ? x : 0;
    case SG_OXU_LEAKY_RELU:
        return x >= 0 ? x : alpha * x;
    case SG_OXU_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case SG_OXU_TANH:
        return tanhf(x);
    case SG_OXU_ERF:
        return erff(x);
    case SG_OXU_SQRT:
        return sqrtf(x);
    case SG_OXU_POW:
        return powf(x, alpha);
    case SG_OXU_COPY:
        return x;
    }
    return x;
}

/* ---- per-row operands ---- */

static bool same_row(const ox_value *a, int rank, const int64_t *dims)
{
    if (a->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (a->dims[i] != dims[i]) return false;
    return true;
}

/* A constant broadcast to a row of shape (rank, dims): [width] floats the step owns. */
static sg_status const_row(ox_ctx *c, const ox_value *k, int rank, const int64_t *dims, int64_t width,
                     float **out, sg_err *err)
{
    *out = NULL;
    if (k->dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "constant '%.100s' is not floating point", k->name);
    float *row = sg_alloc_aligned((size_t)width * sizeof(float));
    if (!row) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    /* k has at most rank dims here (checked by the caller); align it to the row's. */
    int64_t idx[OX_MAX_RANK] = {0};
    for (int64_t j = 0; j < width; j++) {
        row[j] = k->f[bcast_offset(k, rank, idx)];
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    *out = row;
    return SG_OK;
}

static sg_status emit_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err)
{
    const ox_value *a = &c->vals[ia], *b = &c->vals[ib];
    if (a->is_const && b->is_const) return fold_binary(c, op, ia, ib, err);
    /* Row shape of the output: per-row operands contribute their row shape; a constant its
       dimensions after the batch position, which must be 1 where it has one. */
    int rank = 0;
    int64_t dims[OX_MAX_RANK];
    ox_value ra = *a, rb = *b;
    for (int s = 0; s < 2; s++) {
        ox_value *v = s ? &rb : &ra;
        if (!v->is_const) continue;
        const ox_value *other = s ? a : b;
        int full = other->rank + 1;
        if (v->rank > full || (v->rank == full && v->dims[0] != 1))
            return ox_node_err(c, err, SG_EINPUT,
                               "constant '%.100s' of rank %d does not broadcast against a batch "
                               "of rows of rank %d",
                               v->name, v->rank, other->rank);
        if (v->rank == full) { /* drop the batch position */
            memmove(v->dims, v->dims + 1, (size_t)(v->rank - 1) * sizeof v->dims[0]);
            v->rank--;
        }
    }
    if (broadcast_dims(&ra, &rb, &rank, dims))
        return ox_node_err(c, err, SG_EINPUT, "shapes of '%.100s' and '%.100s' do not broadcast",
                           a->name, b->name);
    int64_t width = 1;
    for (int i = 0; i < rank; i++)
        width *= dims[i]; /* each row-shape product is below 2^24, a constant's 2^31 */
    if (width < 1 || width > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)",
                           (long long)width, OX_MAX_WIDTH);
    sg_onnx_arg args[2];
    float *owned[2] = {NULL, NULL};
    for (int s = 0; s < 2; s++) {
        const ox_value *v = s ? b : a, *vr = s ? &rb : &ra;
        sg_onnx_arg *g = &args[s];
        memset(g, 0, sizeof *g);
        if (v->is_const) {
            int rc = const_row(c, vr, rank, dims, width, &owned[s], err);
            if (rc) {
                sg_free_aligned(owned[0]);
                return rc;
            }
            g->kind = SG_OXA_CONST;
            g->value = owned[s];
        } else if (same_row(v, rank, dims)) {
            g->kind = SG_OXA_ROW;
            g->buf = v->data;
        } else if (v->count == 1) {
            g->kind = SG_OXA_COL;
            g->buf = v->data;
        } else {
            sg_free_aligned(owned[0]);
            sg_free_aligned(owned[1]);
            return ox_node_err(c, err, SG_EINPUT,
                               "broadcasting '%.100s' across a row is not supported", v->name);
        }
    }
    /* x ^ constant scalar is a unary step (x^2 in PyTorch's LayerNorm). */
    if (op == SG_OXB_POW && args[0].kind != SG_OXA_CONST && args[1].kind == SG_OXA_CONST &&
        b->count == 1) {
        sg_onnx_step *s = ox_step_new(c, SG_OX_UNARY, err);
        if (!s) return SG_ENOMEM;
        s->unary = SG_OXU_POW;
        s->alpha = owned[1][0];
        sg_free_aligned(owned[1]);
        s->in = args[0].buf;
        s->in_width = (int)width;
        s->width = (int)width;
        if (args[0].kind == SG_OXA_COL && width != 1) {
            c->n_steps--;
            return ox_node_err(c, err, SG_EINPUT, "broadcasting '%.100s' is not supported",
                               a->name);
        }
        int v;
        return ox_dyn_out(c, rank, dims, err, &v);
    }
    sg_onnx_step *s = ox_step_new(c, SG_OX_BINARY, err);
    if (!s) {
        sg_free_aligned(owned[0]);
        sg_free_aligned(owned[1]);
        return SG_ENOMEM;
    }
    s->binary = op;
    s->a = args[0];
    s->bb = args[1];
    s->width = (int)width;
    s->in = args[0].kind != SG_OXA_CONST ? args[0].buf : args[1].buf;
    int v;
    return ox_dyn_out(c, rank, dims, err, &v);
}

static sg_status emit_unary(ox_ctx *c, sg_onnx_unary op, float alpha, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    if (vx->is_const) {
        if (vx->dtype != OX_FLOAT)
            return ox_node_err(c, err, SG_EINPUT, "integer input is not supported");
        int v;
        int64_t dims[OX_MAX_RANK];
        memcpy(dims, vx->dims, sizeof dims);
        if ((rc = ox_const_out(c, vx->rank, dims, OX_FLOAT, err, &v))) return rc;
        for (int64_t k = 0; k < c->vals[v].count; k++)
            c->vals[v].f[k] = unop(op, c->vals[x].f[k], alpha);
        return SG_OK;
    }
    sg_onnx_step *s = ox_step_new(c, SG_OX_UNARY, err);
    if (!s) return SG_ENOMEM;
    s->unary = op;
    s->alpha = alpha;
    s->in = vx->data;
    s->in_width = s->width = (int)vx->count;
    int v;
    return ox_dyn_out(c, vx->rank, vx->dims, err, &v);
}

static sg_status op_binary(ox_ctx *c, sg_onnx_binary op, sg_err *err)
{
    int a, b, rc;
    if ((rc = ox_need_in(c, 0, err, &a)) || (rc = ox_need_in(c, 1, err, &b))) return rc;
    return emit_binary(c, op, a, b, err);
}

int ox_compile_node(ox_ctx *c, sg_err *err)
{
    const char *op = c->node->op_type;
    if (!strcmp(op, "Gemm")) return ox_op_gemm(c, false, err);
    if (!strcmp(op, "MatMul")) return ox_op_gemm(c, true, err);
    if (!strcmp(op, "Add")) return op_binary(c, SG_OXB_ADD, err);
    if (!strcmp(op, "Sub")) return op_binary(c, SG_OXB_SUB, err);
    if (!strcmp(op, "Mul")) return op_binary(c, SG_OXB_MUL, err);
    if (!strcmp(op, "Div")) return op_binary(c, SG_OXB_DIV, err);
    if (!strcmp(op, "Pow")) return op_binary(c, SG_OXB_POW, err);
    if (!strcmp(op, "Relu")) return emit_unary(c, SG_OXU_RELU, 0, err);
    if (!strcmp(op, "LeakyRelu"))
        return emit_unary(c, SG_OXU_LEAKY_RELU, ox_attr_f(c, "alpha", 0.01f), err);
    if (!strcmp(op, "Sigmoid")) return emit_unary(c, SG_OXU_SIGMOID, 0, err);
    if (!strcmp(op, "Tanh")) return emit_unary(c, SG_OXU_TANH, 0, err);
    if (!strcmp(op, "Erf")) return emit_unary(c, SG_OXU_ERF, 0, err);
    if (!strcmp(op, "Sqrt")) return emit_unary(c, SG_OXU_SQRT, 0, err);
    if (!strcmp(op, "Softmax")) return ox_op_softmax(c, false, err);
    if (!strcmp(op, "LogSoftmax")) return ox_op_softmax(c, true, err);
    if (!strcmp(op, "BatchNormalization")) return ox_op_batchnorm(c, err);
    if (!strcmp(op, "LayerNormalization")) return ox_op_layernorm(c, err);
    if (!strcmp(op, "ReduceMean")) return ox_op_reduce_mean(c, err);
    if (!strcmp(op, "Flatten")) return ox_op_flatten(c, err);
    if (!strcmp(op, "Reshape")) return ox_op_reshape(c, err);
    if (!strcmp(op, "Squeeze")) return ox_op_squeeze(c, false, err);
    if (!strcmp(op, "Unsqueeze")) return ox_op_squeeze(c, true, err);
    if (!strcmp(op, "Identity")) return ox_op_identity(c, err);
    if (!strcmp(op, "Dropout")) return ox_op_dropout(c, err);
    if (!strcmp(op, "Constant")) return ox_op_constant(c, err);
    if (!strcmp(op, "Cast")) return ox_op_cast(c, err);
    if (!strcmp(op, "Concat")) return ox_op_concat(c, err);
    return ox_node_err(c, err, SG_EINPUT, "unsupported operator %.40s; supported: %s", op,
                       ox_supported_ops());
}
