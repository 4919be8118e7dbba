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

static const char *const supported[] = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf",
    "Softmax", "LogSoftmax", "BatchNormalization", "LayerNormalization", "ReduceMean", "Pow",
    "Sqrt", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant",
    "Cast", "Concat"};

const char *ox_supported_ops(void)
{
    static char list[512];
    if (!list[0]) {
        size_t k = 0;
        for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", supported[i]);
    }
    return list;
}

bool ox_op_supported(const char *op)
{
    for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++)
        if (strcmp(op, supported[i]) == 0) return true;
    return false;
}

static const Onnx__AttributeProto *attr(const ox_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->node->n_attribute; i++)
        if (c->node->attribute[i]->name && strcmp(c->node->attribute[i]->name, name) == 0)
            return c->node->attribute[i];
    return NULL;
}

static int64_t attr_i(const ox_ctx *c, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(c, name);
    return a && a->has_i ? a->i : dflt;
}

static float attr_f(const ox_ctx *c, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(c, name);
    return a && a->has_f ? a->f : dflt;
}

/* Value index of input k, -1 when absent (or an empty name: an omitted optional input). */
static int in(const ox_ctx *c, size_t k)
{
    if (k >= c->node->n_input || !c->node->input[k] || !c->node->input[k][0]) return -1;
    return ox_value_find((ox_ctx *)c, c->node->input[k]);
}

static int need_in(ox_ctx *c, size_t k, sg_err *err, int *out)
{
    *out = in(c, k);
    if (*out < 0) return ox_node_err(c, err, SG_EINPUT, "input %zu is missing", k);
    return SG_OK;
}

/* The node's output k as a new value. */
static int new_out(ox_ctx *c, size_t k, sg_err *err, int *out)
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
static int only_first_output(ox_ctx *c, sg_err *err)
{
    for (size_t k = 1; k < c->node->n_output; k++)
        if (c->node->output[k] && c->node->output[k][0])
            return ox_node_err(c, err, SG_EINPUT,
                               "output %zu ('%.100s') is not supported (inference computes only "
                               "the first output)",
                               k, c->node->output[k]);
    return SG_OK;
}

static sg_onnx_step *step_new(ox_ctx *c, sg_onnx_step_kind kind, sg_err *err)
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
static int dyn_out(ox_ctx *c, int rank, const int64_t *dims, sg_err *err, int *out)
{
    int rc = new_out(c, 0, err, out);
    if (rc) return rc;
    ox_value *v = &c->vals[*out];
    int64_t w = 1;
    for (int i = 0; i < rank; i++) {
        v->dims[i] = dims[i];
        w *= dims[i];
    }
    if (w < 1 || w > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)",
                           (long long)w, OX_MAX_WIDTH);
    v->rank = rank;
    v->count = w;
    v->dtype = OX_FLOAT;
    v->producer = c->n_steps - 1;
    c->steps[c->n_steps - 1].out = *out;
    return SG_OK;
}

/* The output is the input under another shape. */
static int alias_out(ox_ctx *c, int src, int rank, const int64_t *dims, sg_err *err)
{
    int v;
    int rc = new_out(c, 0, err, &v);
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

static int const_out(ox_ctx *c, int rank, const int64_t *dims, int dtype, sg_err *err, int *out)
{
    int rc = new_out(c, 0, err, out);
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
        return ox_node_err(c, err, SG_EINPUT,
                           "constant folding would need more than %zu MiB", OX_MAX_FOLDED >> 20);
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

static int fold_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err)
{
    const ox_value *a = &c->vals[ia], *b = &c->vals[ib];
    if (a->dtype != OX_FLOAT || b->dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "integer arithmetic on constants is not supported");
    int r;
    int64_t dims[OX_MAX_RANK];
    if (broadcast_dims(a, b, &r, dims))
        return ox_node_err(c, err, SG_EINPUT, "constant shapes do not broadcast");
    int v;
    int rc = const_out(c, r, dims, OX_FLOAT, err, &v);
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
static int const_row(ox_ctx *c, const ox_value *k, int rank, const int64_t *dims, int64_t width,
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

static int emit_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err)
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
        if (v->rank > full ||
            (v->rank == full && v->dims[0] != 1))
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
        sg_onnx_step *s = step_new(c, SG_OX_UNARY, err);
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
        return dyn_out(c, rank, dims, err, &v);
    }
    sg_onnx_step *s = step_new(c, SG_OX_BINARY, err);
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
    return dyn_out(c, rank, dims, err, &v);
}

static int emit_unary(ox_ctx *c, sg_onnx_unary op, float alpha, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    if (vx->is_const) {
        if (vx->dtype != OX_FLOAT)
            return ox_node_err(c, err, SG_EINPUT, "integer input is not supported");
        int v;
        int64_t dims[OX_MAX_RANK];
        memcpy(dims, vx->dims, sizeof dims);
        if ((rc = const_out(c, vx->rank, dims, OX_FLOAT, err, &v))) return rc;
        for (int64_t k = 0; k < c->vals[v].count; k++)
            c->vals[v].f[k] = unop(op, c->vals[x].f[k], alpha);
        return SG_OK;
    }
    sg_onnx_step *s = step_new(c, SG_OX_UNARY, err);
    if (!s) return SG_ENOMEM;
    s->unary = op;
    s->alpha = alpha;
    s->in = vx->data;
    s->in_width = s->width = (int)vx->count;
    int v;
    return dyn_out(c, vx->rank, vx->dims, err, &v);
}

/* ---- shape-only nodes ---- */

/* Axes from the attribute (before opset 13) or from a constant input (13 and later). */
static int get_axes(ox_ctx *c, size_t input, int64_t *axes, int *n, sg_err *err)
{
    *n = 0;
    const Onnx__AttributeProto *a = attr(c, "axes");
    const int64_t *src = NULL;
    size_t cnt = 0;
    if (a) {
        src = a->ints;
        cnt = a->n_ints;
    } else if (in(c, input) >= 0) {
        const ox_value *v = &c->vals[in(c, input)];
        if (!v->is_const || v->dtype != OX_INT64)
            return ox_node_err(c, err, SG_EINPUT, "axes must be a constant int64 tensor");
        src = v->i;
        cnt = (size_t)v->count;
    } else {
        return SG_OK;
    }
    if (cnt > OX_MAX_RANK) return ox_node_err(c, err, SG_EINPUT, "too many axes");
    if (cnt) memcpy(axes, src, cnt * sizeof *axes);
    *n = (int)cnt;
    return SG_OK;
}

/* Full shape of a value: a per-row value gets its batch dimension as -1. */
static int full_shape(const ox_value *v, int64_t *dims)
{
    if (v->is_const) {
        memcpy(dims, v->dims, (size_t)v->rank * sizeof *dims);
        return v->rank;
    }
    dims[0] = -1;
    memcpy(dims + 1, v->dims, (size_t)v->rank * sizeof *dims);
    return v->rank + 1;
}

/* Output of a shape-only node with full output shape (rank, dims): an alias for per-row
   input (the batch must stay the leading dimension), a copy for a constant. */
static int reshaped(ox_ctx *c, int x, int rank, const int64_t *dims, sg_err *err)
{
    const ox_value *vx = &c->vals[x];
    if (rank > OX_MAX_RANK + (vx->is_const ? 0 : 1))
        return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", rank);
    if (vx->is_const) {
        int v;
        int rc = const_out(c, rank, dims, vx->dtype, err, &v);
        if (rc) return rc;
        vx = &c->vals[x];
        if (c->vals[v].count != vx->count)
            return ox_node_err(c, err, SG_EINPUT, "new shape holds %lld elements, the input %lld",
                               (long long)c->vals[v].count, (long long)vx->count);
        if (vx->dtype == OX_FLOAT)
            memcpy(c->vals[v].f, vx->f, (size_t)vx->count * sizeof(float));
        else
            memcpy(c->vals[v].i, vx->i, (size_t)vx->count * sizeof(int64_t));
        return SG_OK;
    }
    if (rank < 1 || dims[0] != -1)
        return ox_node_err(c, err, SG_EINPUT,
                           "the result would not keep the batch as its first dimension");
    int64_t w = 1;
    for (int i = 1; i < rank; i++)
        w *= dims[i];
    if (w != vx->count)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: a row of '%.100s' holds %lld values, "
                           "the new shape %lld",
                           vx->name, (long long)vx->count, (long long)w);
    return alias_out(c, x, rank - 1, dims + 1, err);
}

static int op_reshape(ox_ctx *c, sg_err *err)
{
    int x, s, rc;
    if ((rc = need_in(c, 0, err, &x)) || (rc = need_in(c, 1, err, &s))) return rc;
    const ox_value *vs = &c->vals[s], *vx = &c->vals[x];
    if (!vs->is_const || vs->dtype != OX_INT64 || vs->rank != 1 || vs->count < 1 ||
        vs->count > OX_MAX_RANK)
        return ox_node_err(c, err, SG_EINPUT, "shape must be a constant int64 vector of 1..%d "
                           "values", OX_MAX_RANK);
    if (attr_i(c, "allowzero", 0))
        return ox_node_err(c, err, SG_EINPUT, "allowzero=1 is not supported");
    int64_t in_dims[OX_MAX_RANK + 1], dims[OX_MAX_RANK + 1];
    int in_rank = full_shape(vx, in_dims), rank = (int)vs->count, infer = -1;
    /* Per-row input: the batch is the leading 0 or -1; an explicit size there would fix it. */
    int first = 0;
    if (!vx->is_const) {
        if (vs->i[0] != 0 && vs->i[0] != -1)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape[0] = %lld would not keep the batch as the first dimension",
                               (long long)vs->i[0]);
        dims[0] = -1;
        first = 1;
    }
    size_t known = 1;
    for (int i = first; i < rank; i++) {
        int64_t d = vs->i[i];
        if (d == 0) {
            if (i >= in_rank)
                return ox_node_err(c, err, SG_EINPUT, "shape[%d] = 0 has no input dimension", i);
            d = in_dims[i];
        }
        if (d == -1) {
            if (infer >= 0) return ox_node_err(c, err, SG_EINPUT, "two -1 in shape");
            infer = i;
        } else if (d < 0 || !sg_mul_size(known, (size_t)d, &known) ||
                   known > (size_t)OX_MAX_ELEMS) {
            return ox_node_err(c, err, SG_EINPUT, "shape[%d] = %lld", i, (long long)d);
        }
        dims[i] = d;
    }
    if (infer >= 0) {
        if (known == 0 || (size_t)vx->count % known)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match the data: %lld values do not fill the new "
                               "shape", (long long)vx->count);
        dims[infer] = vx->count / (int64_t)known;
    }
    return reshaped(c, x, rank, dims, err);
}

static int op_flatten(ox_ctx *c, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t d[OX_MAX_RANK + 1];
    int r = full_shape(&c->vals[x], d);
    int64_t axis = attr_i(c, "axis", 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r) return ox_node_err(c, err, SG_EINPUT, "axis out of range");
    if (!c->vals[x].is_const && axis != 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld would not keep the batch as its first dimension",
                           (long long)axis);
    int64_t out[2] = {1, 1};
    for (int i = 0; i < r; i++)
        out[i >= axis] *= d[i];
    if (!c->vals[x].is_const) out[0] = -1;
    return reshaped(c, x, 2, out, err);
}

static int op_squeeze(ox_ctx *c, bool unsqueeze, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t axes[OX_MAX_RANK], d[OX_MAX_RANK + 1], out[OX_MAX_RANK + 1];
    int n;
    if ((rc = get_axes(c, 1, axes, &n, err))) return rc;
    int r = full_shape(&c->vals[x], d);
    int ro = unsqueeze ? r + n : r;
    if (ro > OX_MAX_RANK + (c->vals[x].is_const ? 0 : 1))
        return ox_node_err(c, err, SG_EINPUT, "rank %d is too large", ro);
    bool mark[OX_MAX_RANK + 1] = {false};
    for (int k = 0; k < n; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + ro : axes[k];
        if (a < 0 || a >= ro || mark[a])
            return ox_node_err(c, err, SG_EINPUT, "axis %lld out of range", (long long)axes[k]);
        if (!unsqueeze && d[a] != 1)
            return ox_node_err(c, err, SG_EINPUT, "axis %lld has size %lld, not 1",
                               (long long)axes[k], (long long)d[a]);
        mark[a] = true;
    }
    if (unsqueeze && n == 0) return ox_node_err(c, err, SG_EINPUT, "axes are missing");
    int k = 0;
    if (unsqueeze) {
        for (int i = 0, j = 0; i < ro; i++)
            out[k++] = mark[i] ? 1 : d[j++];
    } else {
        for (int i = 0; i < r; i++)
            if (!(n ? mark[i] : d[i] == 1)) out[k++] = d[i];
    }
    return reshaped(c, x, k, out, err);
}

static int op_cast(ox_ctx *c, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    int64_t to = attr_i(c, "to", 0);
    const ox_value *vx = &c->vals[x];
    if (!vx->is_const) {
        if (to != 1)
            return ox_node_err(c, err, SG_EINPUT, "cast of the input to type %lld: only float "
                               "(1) is supported", (long long)to);
        return alias_out(c, x, vx->rank, vx->dims, err);
    }
    if (to != 1 && to != 11 && to != 7 && to != 6)
        return ox_node_err(c, err, SG_EINPUT, "cast to type %lld is not supported", (long long)to);
    int dt = (to == 1 || to == 11) ? OX_FLOAT : OX_INT64, v;
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, vx->dims, sizeof dims);
    if ((rc = const_out(c, vx->rank, dims, dt, err, &v))) return rc;
    vx = &c->vals[x];
    for (int64_t k = 0; k < vx->count; k++) {
        if (dt == OX_FLOAT)
            c->vals[v].f[k] = vx->dtype == OX_FLOAT ? vx->f[k] : (float)vx->i[k];
        else if (vx->dtype == OX_INT64)
            c->vals[v].i[k] = vx->i[k];
        else if (!(fabsf(vx->f[k]) < 9.2e18f))
            return ox_node_err(c, err, SG_EINPUT, "value out of int64 range");
        else
            c->vals[v].i[k] = (int64_t)vx->f[k];
    }
    return SG_OK;
}

static int op_constant(ox_ctx *c, sg_err *err)
{
    int v, rc = new_out(c, 0, err, &v);
    if (rc) return rc;
    const Onnx__AttributeProto *a;
    ox_value *o = &c->vals[v];
    if ((a = attr(c, "value")) && a->t) {
        char what[160];
        snprintf(what, sizeof what, "Constant '%.100s'", o->name);
        return ox_tensor_read(c, a->t, o, what, err);
    }
    o->is_const = true;
    if ((a = attr(c, "value_float")) || (a = attr(c, "value_floats"))) {
        size_t n = a->has_f ? 1 : a->n_floats;
        o->dtype = OX_FLOAT;
        o->f = sg_alloc_aligned((n ? n : 1) * sizeof(float));
        if (!o->f) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        if (a->has_f) o->f[0] = a->f;
        else if (n) memcpy(o->f, a->floats, n * sizeof(float));
        o->rank = a->has_f ? 0 : 1;
        o->dims[0] = (int64_t)n;
        o->count = (int64_t)n;
        return SG_OK;
    }
    if ((a = attr(c, "value_int")) || (a = attr(c, "value_ints"))) {
        size_t n = a->has_i ? 1 : a->n_ints;
        o->dtype = OX_INT64;
        o->i = malloc((n ? n : 1) * sizeof(int64_t));
        if (!o->i) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        if (a->has_i) o->i[0] = a->i;
        else if (n) memcpy(o->i, a->ints, n * sizeof(int64_t));
        o->rank = a->has_i ? 0 : 1;
        o->dims[0] = (int64_t)n;
        o->count = (int64_t)n;
        return SG_OK;
    }
    return ox_node_err(c, err, SG_EINPUT, "no supported value attribute (value, value_float(s), "
                       "value_int(s))");
}

static int op_concat(ox_ctx *c, sg_err *err)
{
    size_t n = c->node->n_input;
    if (n < 1 || n > 4096) return ox_node_err(c, err, SG_EINPUT, "%zu inputs", n);
    int64_t axis = attr_i(c, "axis", 0);
    bool all_const = true;
    for (size_t k = 0; k < n; k++) {
        if (in(c, k) < 0) return ox_node_err(c, err, SG_EINPUT, "input %zu is missing", k);
        all_const &= c->vals[in(c, k)].is_const;
    }
    const ox_value *v0 = &c->vals[in(c, 0)];
    int64_t d0[OX_MAX_RANK + 1];
    int r = full_shape(v0, d0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return ox_node_err(c, err, SG_EINPUT, "axis out of range");
    int64_t out[OX_MAX_RANK + 1];
    memcpy(out, d0, sizeof out);
    out[axis] = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t d[OX_MAX_RANK + 1];
        const ox_value *v = &c->vals[in(c, k)];
        if (full_shape(v, d) != r || v->dtype != v0->dtype)
            return ox_node_err(c, err, SG_EINPUT, "inputs differ in rank or type");
        if (!all_const && v->is_const)
            return ox_node_err(c, err, SG_EINPUT,
                               "concatenating a constant to rows is not supported");
        for (int i = 0; i < r; i++)
            if (i != axis && d[i] != d0[i])
                return ox_node_err(c, err, SG_EINPUT, "shape does not match the data: input %zu",
                                   k);
        out[axis] += d[axis];
    }
    if (all_const) {
        int o, rc = const_out(c, r, out, v0->dtype, err, &o);
        if (rc) return rc;
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < axis; i++)
            outer *= out[i];
        for (int i = (int)axis + 1; i < r; i++)
            inner *= out[i];
        size_t es = v0->dtype == OX_FLOAT ? 4 : 8, pos = 0;
        uint8_t *dst = c->vals[o].dtype == OX_FLOAT ? (uint8_t *)c->vals[o].f
                                                    : (uint8_t *)c->vals[o].i;
        for (int64_t i = 0; i < outer; i++)
            for (size_t k = 0; k < n; k++) {
                const ox_value *v = &c->vals[in(c, k)];
                size_t len = (size_t)(v->dims[axis] * inner) * es;
                const uint8_t *src = v->dtype == OX_FLOAT ? (const uint8_t *)v->f
                                                          : (const uint8_t *)v->i;
                memcpy(dst + pos, src + (size_t)i * len, len);
                pos += len;
            }
        return SG_OK;
    }
    if (axis != 1 || r != 2)
        return ox_node_err(c, err, SG_EINPUT,
                           "concatenation of rows along axis %lld (rank %d): only axis 1 of "
                           "rank-2 tensors is supported",
                           (long long)axis, r);
    sg_onnx_step *s = step_new(c, SG_OX_CONCAT, err);
    if (!s) return SG_ENOMEM;
    s->parts = calloc(n, sizeof *s->parts);
    s->part_width = calloc(n, sizeof *s->part_width);
    if (!s->parts || !s->part_width) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    s->n_parts = (int)n;
    for (size_t k = 0; k < n; k++) {
        s->parts[k] = c->vals[in(c, k)].data;
        s->part_width[k] = (int)c->vals[in(c, k)].count;
    }
    s->in = s->parts[0];
    s->width = (int)out[1];
    int v;
    return dyn_out(c, 1, out + 1, err, &v);
}

/* ---- layers ---- */

/* A per-row input of rank 1 (a plain feature vector per row), required by the layer ops. */
static int row_input(ox_ctx *c, size_t k, const char *what, sg_err *err, int *x)
{
    int rc = need_in(c, k, err, x);
    if (rc) return rc;
    if (c->vals[*x].is_const)
        return ox_node_err(c, err, SG_EINPUT, "%s of constants only is not supported", what);
    if (c->vals[*x].rank != 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match: %s needs rows of rank 1, '%.100s' has rank %d",
                           what, c->vals[*x].name, c->vals[*x].rank);
    return SG_OK;
}

static int const_input(ox_ctx *c, size_t k, const char *what, sg_err *err, const ox_value **v)
{
    int i, rc = need_in(c, k, err, &i);
    if (rc) return rc;
    *v = &c->vals[i];
    if (!(*v)->is_const || (*v)->dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "%s must be a constant float tensor", what);
    return SG_OK;
}

static int op_gemm(ox_ctx *c, bool matmul, sg_err *err)
{
    int x, rc;
    const ox_value *B, *C = NULL;
    if ((rc = row_input(c, 0, matmul ? "MatMul" : "Gemm", err, &x))) return rc;
    if ((rc = const_input(c, 1, "the weight (input 1)", err, &B))) return rc;
    if (!matmul && in(c, 2) >= 0 && (rc = const_input(c, 2, "the bias (input 2)", err, &C)))
        return rc;
    const int64_t k = c->vals[x].count;
    bool transB = !matmul && attr_i(c, "transB", 0);
    float alpha = matmul ? 1.0f : attr_f(c, "alpha", 1.0f);
    float beta = matmul ? 1.0f : attr_f(c, "beta", 1.0f);
    if (!matmul && attr_i(c, "transA", 0))
        return ox_node_err(c, err, SG_EINPUT, "transA=1 on the batch input is not supported");
    int64_t rows = B->rank == 2 ? B->dims[transB ? 1 : 0] : B->rank == 1 ? B->dims[0] : -1;
    int64_t m = B->rank == 2 ? B->dims[transB ? 0 : 1] : 1;
    if (B->rank < 1 || B->rank > 2 || (!matmul && B->rank != 2))
        return ox_node_err(c, err, SG_EINPUT, "weight '%.100s' has rank %d, expected 2", B->name,
                           B->rank);
    if (rows != k)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: weight '%.100s' has %lld input rows "
                           "but its input has %lld columns",
                           B->name, (long long)rows, (long long)k);
    if (m < 1 || m > OX_MAX_WIDTH) return ox_node_err(c, err, SG_EINPUT, "%lld outputs", (long long)m);
    if (C && C->count != 1 && C->count != m)
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: bias '%.100s' has %lld values for %lld "
                           "outputs",
                           C->name, (long long)C->count, (long long)m);
    if (C && C->rank == 2 && C->dims[0] != 1)
        return ox_node_err(c, err, SG_EINPUT, "bias '%.100s' is per row; only a row vector is "
                           "supported", C->name);
    sg_onnx_step *s = step_new(c, SG_OX_GEMM, err);
    if (!s) return SG_ENOMEM;
    s->W = sg_alloc_aligned((size_t)k * (size_t)m * sizeof(float));
    s->b = sg_alloc_aligned((size_t)m * sizeof(float));
    if (!s->W || !s->b) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < m; j++)
            s->W[i * m + j] = alpha * (transB ? B->f[j * k + i] : B->f[i * m + j]);
    for (int64_t j = 0; j < m; j++)
        s->b[j] = C ? beta * C->f[C->count == 1 ? 0 : j] : 0.0f;
    s->in = c->vals[x].data;
    s->in_width = (int)k;
    s->width = (int)m;
    s->act = SG_ACT_IDENTITY;
    int v;
    return dyn_out(c, B->rank == 2 ? 1 : 0, &m, err, &v);
}

static int op_batchnorm(ox_ctx *c, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    if ((rc = only_first_output(c, err))) return rc;
    if (attr_i(c, "training_mode", 0))
        return ox_node_err(c, err, SG_EINPUT, "training_mode=1 is not supported (inference only)");
    const ox_value *vx = &c->vals[x], *p[4];
    static const char *const names[] = {"scale", "B", "mean", "var"};
    for (int i = 0; i < 4; i++)
        if ((rc = const_input(c, (size_t)i + 1, names[i], err, &p[i]))) return rc;
    if (vx->is_const) return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    if (vx->rank < 1) return ox_node_err(c, err, SG_EINPUT, "input has no channel dimension");
    int64_t ch = vx->dims[0], inner = vx->count / ch;
    for (int i = 0; i < 4; i++)
        if (p[i]->count != ch)
            return ox_node_err(c, err, SG_EINPUT,
                               "shape does not match the data: %s has %lld values for %lld "
                               "channels",
                               names[i], (long long)p[i]->count, (long long)ch);
    float eps = attr_f(c, "epsilon", 1e-5f);
    sg_onnx_step *s = step_new(c, SG_OX_AFFINE, err);
    if (!s) return SG_ENOMEM;
    s->scale = sg_alloc_aligned((size_t)vx->count * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)vx->count * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    for (int64_t j = 0; j < vx->count; j++) {
        int64_t q = j / inner;
        double sc = p[0]->f[q] / sqrt((double)p[3]->f[q] + eps);
        s->scale[j] = (float)sc;
        s->shift[j] = (float)(p[1]->f[q] - p[2]->f[q] * sc);
    }
    s->in = vx->data;
    s->in_width = s->width = (int)vx->count;
    int v;
    return dyn_out(c, vx->rank, vx->dims, err, &v);
}

static int op_layernorm(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = row_input(c, 0, "LayerNormalization", err, &x))) return rc;
    if ((rc = only_first_output(c, err))) return rc;
    int64_t axis = attr_i(c, "axis", -1);
    if (axis != -1 && axis != 1)
        return ox_node_err(c, err, SG_EINPUT, "axis %lld: only the last axis is supported",
                           (long long)axis);
    const ox_value *g, *b = NULL;
    if ((rc = const_input(c, 1, "Scale", err, &g))) return rc;
    if (in(c, 2) >= 0 && (rc = const_input(c, 2, "B", err, &b))) return rc;
    const int64_t w = c->vals[x].count;
    if (g->count != w || (b && b->count != w))
        return ox_node_err(c, err, SG_EINPUT,
                           "shape does not match the data: Scale/B hold %lld/%lld values for rows "
                           "of %lld",
                           (long long)g->count, (long long)(b ? b->count : w), (long long)w);
    sg_onnx_step *s = step_new(c, SG_OX_LAYERNORM, err);
    if (!s) return SG_ENOMEM;
    s->scale = sg_alloc_aligned((size_t)w * sizeof(float));
    s->shift = sg_alloc_aligned((size_t)w * sizeof(float));
    if (!s->scale || !s->shift) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    memcpy(s->scale, g->f, (size_t)w * sizeof(float));
    for (int64_t j = 0; j < w; j++)
        s->shift[j] = b ? b->f[j] : 0.0f;
    s->eps = attr_f(c, "epsilon", 1e-5f);
    s->in = c->vals[x].data;
    s->in_width = s->width = (int)w;
    int v;
    return dyn_out(c, 1, &w, err, &v);
}

static int op_softmax(ox_ctx *c, bool log, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    const ox_value *vx = &c->vals[x];
    if (vx->is_const) return ox_node_err(c, err, SG_EINPUT, "constant input is not supported");
    int r = vx->rank + 1;
    int64_t axis = attr_i(c, "axis", c->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    /* Before opset 13 the input is flattened at axis: axis 1 means the whole row. From 13
       on it is one axis, the whole row only when the row has rank 1. */
    bool whole_row = c->opset < 13 ? axis == 1 : (axis == 1 && vx->rank == 1);
    if (!whole_row)
        return ox_node_err(c, err, SG_EINPUT,
                           "axis %lld over rows of rank %d: only the whole row is supported",
                           (long long)axis, vx->rank);
    sg_onnx_step *s = step_new(c, log ? SG_OX_LOGSOFTMAX : SG_OX_SOFTMAX, err);
    if (!s) return SG_ENOMEM;
    s->in = vx->data;
    s->in_width = s->width = (int)vx->count;
    int v;
    return dyn_out(c, vx->rank, vx->dims, err, &v);
}

static int op_reduce_mean(ox_ctx *c, sg_err *err)
{
    int x, rc;
    if ((rc = row_input(c, 0, "ReduceMean", err, &x))) return rc;
    int64_t axes[OX_MAX_RANK];
    int n;
    if ((rc = get_axes(c, 1, axes, &n, err))) return rc;
    if (n != 1 || (axes[0] != 1 && axes[0] != -1))
        return ox_node_err(c, err, SG_EINPUT, "only the last axis of rows of rank 1 is supported");
    bool keep = attr_i(c, "keepdims", 1) != 0;
    sg_onnx_step *s = step_new(c, SG_OX_MEAN, err);
    if (!s) return SG_ENOMEM;
    s->in = c->vals[x].data;
    s->in_width = (int)c->vals[x].count;
    s->width = 1;
    int64_t one = 1;
    int v;
    return dyn_out(c, keep ? 1 : 0, &one, err, &v);
}

static int op_binary(ox_ctx *c, sg_onnx_binary op, sg_err *err)
{
    int a, b, rc;
    if ((rc = need_in(c, 0, err, &a)) || (rc = need_in(c, 1, err, &b))) return rc;
    return emit_binary(c, op, a, b, err);
}

static int op_identity(ox_ctx *c, sg_err *err)
{
    int x, rc = need_in(c, 0, err, &x);
    if (rc) return rc;
    if ((rc = only_first_output(c, err))) return rc;
    int64_t d[OX_MAX_RANK + 1];
    int r = full_shape(&c->vals[x], d);
    return reshaped(c, x, r, d, err);
}

static int op_dropout(ox_ctx *c, sg_err *err)
{
    int t = in(c, 2);
    if (t >= 0) {
        const ox_value *v = &c->vals[t];
        if (!v->is_const || v->count != 1 || (v->dtype == OX_INT64 ? v->i[0] != 0 : v->f[0] != 0))
            return ox_node_err(c, err, SG_EINPUT, "training_mode must be a constant false");
    }
    return op_identity(c, err);
}

int ox_compile_node(ox_ctx *c, sg_err *err)
{
    const char *op = c->node->op_type;
    if (!strcmp(op, "Gemm")) return op_gemm(c, false, err);
    if (!strcmp(op, "MatMul")) return op_gemm(c, true, err);
    if (!strcmp(op, "Add")) return op_binary(c, SG_OXB_ADD, err);
    if (!strcmp(op, "Sub")) return op_binary(c, SG_OXB_SUB, err);
    if (!strcmp(op, "Mul")) return op_binary(c, SG_OXB_MUL, err);
    if (!strcmp(op, "Div")) return op_binary(c, SG_OXB_DIV, err);
    if (!strcmp(op, "Pow")) return op_binary(c, SG_OXB_POW, err);
    if (!strcmp(op, "Relu")) return emit_unary(c, SG_OXU_RELU, 0, err);
    if (!strcmp(op, "LeakyRelu")) return emit_unary(c, SG_OXU_LEAKY_RELU, attr_f(c, "alpha", 0.01f), err);
    if (!strcmp(op, "Sigmoid")) return emit_unary(c, SG_OXU_SIGMOID, 0, err);
    if (!strcmp(op, "Tanh")) return emit_unary(c, SG_OXU_TANH, 0, err);
    if (!strcmp(op, "Erf")) return emit_unary(c, SG_OXU_ERF, 0, err);
    if (!strcmp(op, "Sqrt")) return emit_unary(c, SG_OXU_SQRT, 0, err);
    if (!strcmp(op, "Softmax")) return op_softmax(c, false, err);
    if (!strcmp(op, "LogSoftmax")) return op_softmax(c, true, err);
    if (!strcmp(op, "BatchNormalization")) return op_batchnorm(c, err);
    if (!strcmp(op, "LayerNormalization")) return op_layernorm(c, err);
    if (!strcmp(op, "ReduceMean")) return op_reduce_mean(c, err);
    if (!strcmp(op, "Flatten")) return op_flatten(c, err);
    if (!strcmp(op, "Reshape")) return op_reshape(c, err);
    if (!strcmp(op, "Squeeze")) return op_squeeze(c, false, err);
    if (!strcmp(op, "Unsqueeze")) return op_squeeze(c, true, err);
    if (!strcmp(op, "Identity")) return op_identity(c, err);
    if (!strcmp(op, "Dropout")) return op_dropout(c, err);
    if (!strcmp(op, "Constant")) return op_constant(c, err);
    if (!strcmp(op, "Cast")) return op_cast(c, err);
    if (!strcmp(op, "Concat")) return op_concat(c, err);
    return ox_node_err(c, err, SG_EINPUT, "unsupported operator %.40s; supported: %s", op,
                       ox_supported_ops());
}
