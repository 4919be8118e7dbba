/*
 * Compiles ONNX nodes, in topological order, into plan steps. A node whose inputs are all
 * constants is evaluated now (constant folding); shape-only nodes on per-row tensors
 * (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Cast to float) become aliases
 * of their input and cost nothing at run time. Every per-row tensor keeps the batch as its
 * leading dimension; a node that would move it is refused.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* The operators ox_compile_node knows, in the order the unsupported-operator message lists
   them. */
/* clang-format off */
#define OX_SUPPORTED_OPS(X)                                                                        \
    X(Gemm) X(MatMul) X(Add) X(Sub) X(Mul) X(Div) X(Relu) X(LeakyRelu) X(PRelu) X(Sigmoid)         \
    X(Tanh) X(Erf) X(Elu) X(Selu) X(Celu) X(Softplus) X(Softsign) X(HardSigmoid) X(HardSwish)      \
    X(Clip) X(Abs) X(Neg) X(Exp) X(Log) X(Reciprocal) X(Max) X(Min) X(Softmax) X(LogSoftmax)       \
    X(BatchNormalization) X(LayerNormalization) X(ReduceMean) X(ReduceSum) X(ReduceSumSquare)      \
    X(ReduceL1) X(ReduceL2) X(ReduceMax) X(ReduceMin) X(ReduceProd) X(ReduceLogSumExp) X(Pow)      \
    X(Sqrt) X(Flatten) X(Reshape) X(Squeeze) X(Unsqueeze) X(Identity) X(Dropout) X(Constant)       \
    X(Cast) X(Concat) X(Slice) X(Shape) X(Gather) X(Transpose) X(Expand) X(Tile) X(Split)       \
    X(ConstantOfShape) X(Equal) X(Greater) X(Less) X(GreaterOrEqual) X(LessOrEqual) X(Not)     \
    X(Where) X(And) X(Or) X(Sign) X(IsNaN) X(IsInf) X(If) X(ArgMax) X(ArgMin)   \
    X(Floor) X(Ceil) X(Round) X(Sin) X(Cos) X(Einsum) X(InstanceNormalization)      \
    X(Conv) X(MaxPool) X(AveragePool) X(GlobalAveragePool) X(GlobalMaxPool) X(Pad) X(CumSum) X(TopK)  \
    X(GatherElements) X(OneHot) X(Range) X(EyeLike) X(LSTM) X(GRU) X(Size) X(Sum) X(Mean)     \
    X(Tan) X(Asin) X(Acos) X(Atan) X(Sinh) X(Cosh) X(Asinh) X(Acosh) X(Atanh)                    \
    X(ThresholdedRelu) X(Shrink) X(Mod)
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

/* An attribute given without its value (an INT without i, a FLOAT without f: what a writer
   that drops zero fields writes for 0) holds the field's default, 0, as ONNX Runtime and
   onnx.helper read it; only an attribute that is not there takes the operator's default (an
   alpha of 0 had been read as ThresholdedRelu's 1.0). The schema check has refused an
   attribute of another type. */
int64_t ox_attr_i(const ox_ctx *c, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    return a ? (a->has_i ? a->i : 0) : dflt;
}

float ox_attr_f(const ox_ctx *c, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = ox_attr(c, name);
    return a ? (a->has_f ? a->f : 0.0f) : dflt;
}

/* Value index of input k, -1 when absent (or an empty name: an omitted optional input). */
int ox_in(const ox_ctx *c, size_t k)
{
    if (c->overriding && k < 4 && c->in_override[k] >= 0) return c->in_override[k];
    if (k >= c->node->n_input || !c->node->input[k] || !c->node->input[k][0]) return -1;
    return ox_value_find((ox_ctx *)c, c->node->input[k]);
}

sg_status ox_need_in(ox_ctx *c, size_t k, sg_err *err, int *out)
{
    *out = ox_in(c, k);
    if (*out < 0) return ox_node_err(c, err, SG_EINPUT, "input %zu is missing", k);
    return SG_OK;
}

/* The node's output k as a new value (an unnamed one while c->partial is set). */
sg_status ox_new_out(ox_ctx *c, size_t k, sg_err *err, int *out)
{
    *out = -1;
    if (c->partial) {
        int v = ox_value_add_unnamed(c, c->partial, err);
        if (v < 0) return SG_EINPUT;
        c->vals[v].defined = true;
        *out = v;
        return SG_OK;
    }
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
static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether a node or the graph output reads name; -1 when out of memory. */
/* Nesting of If branches followed (deeper ones are refused when compiled). */
#define OX_MAX_BRANCH_DEPTH 8

static void branch_reads(const Onnx__NodeProto *nd, int depth,
                         void (*fn)(void *arg, const char *name, bool implicit), void *arg)
{
    if (!nd->op_type || strcmp(nd->op_type, "If") || depth >= OX_MAX_BRANCH_DEPTH) return;
    for (size_t a = 0; a < nd->n_attribute; a++) {
        const Onnx__GraphProto *g = nd->attribute[a]->g;
        if (!g) continue;
        for (size_t i = 0; i < g->n_node; i++) {
            for (size_t k = 0; k < g->node[i]->n_input; k++)
                if (g->node[i]->input[k] && g->node[i]->input[k][0])
                    fn(arg, g->node[i]->input[k], true);
            branch_reads(g->node[i], depth + 1, fn, arg);
        }
        for (size_t k = 0; k < g->n_output; k++)
            if (g->output[k]->name && g->output[k]->name[0]) fn(arg, g->output[k]->name, true);
    }
}

void ox_node_reads(const Onnx__NodeProto *nd,
                   void (*fn)(void *arg, const char *name, bool implicit), void *arg)
{
    for (size_t k = 0; k < nd->n_input; k++)
        if (nd->input[k] && nd->input[k][0]) fn(arg, nd->input[k], false);
    branch_reads(nd, 0, fn, arg);
}

static void count_read(void *arg, const char *name, bool implicit)
{
    (void)name;
    (void)implicit;
    ++*(size_t *)arg;
}

static void note_read(void *arg, const char *name, bool implicit)
{
    (void)implicit;
    ox_ctx *c = arg;
    c->consumed[c->n_consumed++] = name;
}

int ox_consumed(ox_ctx *c, const char *name)
{
    const Onnx__GraphProto *g = c->mp->graph;
    if (!c->consumed_built) {
        size_t n = g->n_output;
        for (size_t i = 0; i < g->n_node; i++)
            ox_node_reads(g->node[i], count_read, &n);
        c->consumed = malloc((n ? n : 1) * sizeof *c->consumed);
        if (!c->consumed) return -1;
        /* With one output chosen of several, the others and the nodes left out read nothing. */
        for (size_t i = 0; i < g->n_output; i++)
            if (g->output[i]->name && (c->chosen_output < 0 || (size_t)c->chosen_output == i))
                c->consumed[c->n_consumed++] = g->output[i]->name;
        for (size_t i = 0; i < g->n_node; i++)
            if (!c->skip || !c->skip[i]) ox_node_reads(g->node[i], note_read, c);
        qsort(c->consumed, c->n_consumed, sizeof *c->consumed, by_name);
        c->consumed_built = true;
    }
    return bsearch(&name, c->consumed, c->n_consumed, sizeof *c->consumed, by_name) != NULL;
}

/* A node's optional outputs past the first (Dropout's mask, LayerNormalization's mean and
   inverse deviation) are not computed: one that a node or the graph reads is refused. One
   that is named and read by nothing is fine, as when it is left unnamed (torch names
   Dropout's mask in a training-mode export; it had been refused). */
sg_status ox_only_first_output(ox_ctx *c, sg_err *err)
{
    for (size_t k = 1; k < c->node->n_output; k++) {
        if (!c->node->output[k] || !c->node->output[k][0]) continue;
        int used = ox_consumed(c, c->node->output[k]);
        if (used < 0) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        if (used)
            return ox_node_err(c, err, SG_EINPUT,
                               "output %zu ('%.100s') is read, and inference computes only the "
                               "first output",
                               k, c->node->output[k]);
    }
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

/* Copies a shape before a new value is added: dims often points into c->vals (an input's
   shape), which adding a value may move. */
static const int64_t *shape_copy(int64_t *to, int rank, const int64_t *dims)
{
    SG_ASSERT(rank >= 0 && rank <= OX_MAX_RANK);
    if (rank > 0) memcpy(to, dims, (size_t)rank * sizeof *dims);
    return to;
}

/* A per-row output value with the given row shape, written by the newest step. */
sg_status ox_dyn_out(ox_ctx *c, int rank, const int64_t *dims, sg_err *err, int *out)
{
    return ox_dyn_out_k(c, 0, rank, dims, err, out);
}

sg_status ox_dyn_out_k(ox_ctx *c, size_t k, int rank, const int64_t *dims_in, sg_err *err, int *out)
{
    int64_t copy[OX_MAX_RANK];
    const int64_t *dims = shape_copy(copy, rank, dims_in);
    int rc = ox_new_out(c, k, err, out);
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
    return ox_alias_out_k(c, 0, src, rank, dims, err);
}

int ox_alias_out_k(ox_ctx *c, size_t k, int src, int rank, const int64_t *dims_in, sg_err *err)
{
    int64_t copy[OX_MAX_RANK];
    const int64_t *dims = shape_copy(copy, rank, dims_in);
    int v;
    int rc = ox_new_out(c, k, err, &v);
    if (rc) return rc;
    ox_value *o = &c->vals[v], *s = &c->vals[src];
    o->rank = rank;
    memcpy(o->dims, dims, (size_t)rank * sizeof *dims);
    o->count = s->count;
    o->dtype = OX_FLOAT;
    o->data = s->data;
    o->producer = s->producer;
    o->is_bool = s->is_bool; /* the same elements: a condition stays one */
    o->is_double = s->is_double;
    o->is_int = s->is_int;
    o->int_bound = s->int_bound;
    o->fbound = s->fbound;
    return SG_OK;
}

sg_status ox_const_out(ox_ctx *c, int rank, const int64_t *dims, int dtype, sg_err *err, int *out)
{
    return ox_const_out_k(c, 0, rank, dims, dtype, err, out);
}

sg_status ox_const_out_k(ox_ctx *c, size_t k, int rank, const int64_t *dims_in, int dtype,
                         sg_err *err, int *out)
{
    int64_t copy[OX_MAX_RANK];
    const int64_t *dims = shape_copy(copy, rank, dims_in);
    int rc = ox_new_out(c, k, err, out);
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
    case SG_OXB_PRELU:
        return sg_onnx_prelu(a, b);
    case SG_OXB_MAX:
        return sg_onnx_max(a, b);
    case SG_OXB_MIN:
        return sg_onnx_min(a, b);
    case SG_OXB_MOD:
        return sg_onnx_mod(a, b);
    case SG_OXB_FMOD:
        return fmodf(a, b);
    case SG_OXB_EQ:
        return a == b;
    case SG_OXB_GT:
        return a > b;
    case SG_OXB_LT:
        return a < b;
    case SG_OXB_GE:
        return a >= b;
    case SG_OXB_LE:
        return a <= b;
    }
    return 0;
}

/* Integer arithmetic on int64 constants (shape arithmetic: x.size(-1) // 4 in PyTorch),
   as ONNX Runtime computes it: Div truncates toward zero. Overflow and division by zero are
   refused rather than wrapped. */
static sg_status int_binop(ox_ctx *c, sg_onnx_binary op, int64_t a, int64_t b, int64_t *out,
                           sg_err *err)
{
    bool over = false;
    switch (op) {
    case SG_OXB_ADD:
        over = __builtin_add_overflow(a, b, out);
        break;
    case SG_OXB_SUB:
        over = __builtin_sub_overflow(a, b, out);
        break;
    case SG_OXB_MUL:
        over = __builtin_mul_overflow(a, b, out);
        break;
    case SG_OXB_DIV:
        if (b == 0) return ox_node_err(c, err, SG_EINPUT, "integer division by zero");
        over = a == INT64_MIN && b == -1;
        if (!over) *out = a / b;
        break;
    case SG_OXB_MOD:
    case SG_OXB_FMOD:
        if (b == 0) return ox_node_err(c, err, SG_EINPUT, "integer Mod by zero");
        *out = b == -1 ? 0 : a % b; /* C's %: the dividend's sign (INT64_MIN % -1 is 0) */
        if (op == SG_OXB_MOD && *out != 0 && (*out < 0) != (b < 0)) *out += b;
        break;
    case SG_OXB_MAX:
        *out = a > b ? a : b;
        break;
    case SG_OXB_MIN:
        *out = a < b ? a : b;
        break;
    default:
        return ox_node_err(c, err, SG_EINPUT, "this operator on int64 constants is not supported");
    }
    if (over)
        return ox_node_err(c, err, SG_EINPUT, "int64 overflow computing %lld and %lld",
                           (long long)a, (long long)b);
    return SG_OK;
}

/* Whether element `at` of constant v is the batch size from a Shape node. */
static bool marked(const ox_value *v, int64_t at)
{
    return at < 64 && (v->batch_mask >> at & 1);
}

static sg_status fold_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err)
{
    const ox_value *a = &c->vals[ia], *b = &c->vals[ib];
    const bool ints = a->dtype == OX_INT64 && b->dtype == OX_INT64;
    if (!ints && (a->dtype != OX_FLOAT || b->dtype != OX_FLOAT))
        return ox_node_err(c, err, SG_EINPUT,
                           "constants '%.100s' and '%.100s' differ in type (int64 and float)",
                           a->name, b->name);
    int r;
    int64_t dims[OX_MAX_RANK];
    if (broadcast_dims(a, b, &r, dims))
        return ox_node_err(c, err, SG_EINPUT, "constant shapes do not broadcast");
    int v;
    int rc = ox_const_out(c, r, dims, ints ? OX_INT64 : OX_FLOAT, err, &v);
    if (rc) return rc;
    a = &c->vals[ia];
    b = &c->vals[ib];
    ox_value *o = &c->vals[v];
    int64_t idx[OX_MAX_RANK] = {0};
    for (int64_t k = 0; k < o->count; k++) {
        if (ints) {
            const int64_t pa = bcast_offset(a, r, idx), pb = bcast_offset(b, r, idx);
            const bool ma = marked(a, pa), mb = marked(b, pb);
            /* The batch size from a Shape node (times the row sizes it holds) times a
               constant: bsz * num_heads in PyTorch's attention; nothing else computes with it. */
            if ((ma || mb) && (op != SG_OXB_MUL || (ma && mb) || (ma ? b->i[pb] : a->i[pa]) < 1))
                return ox_node_err(c, err, SG_EINPUT,
                                   "element %lld computes with the batch size (from a Shape "
                                   "node), known only per run: only its product with a positive "
                                   "constant is supported",
                                   (long long)k);
            if ((rc = int_binop(c, op, a->i[pa], b->i[pb], &o->i[k], err))) return rc;
            if (ma || mb) {
                if (k >= 64)
                    return ox_node_err(c, err, SG_EINPUT,
                                       "the batch size (from a Shape node) moved past element 63");
                o->batch_mask |= (uint64_t)1 << k;
            }
        } else {
            o->f[k] = binop(op, a->f[bcast_offset(a, r, idx)], b->f[bcast_offset(b, r, idx)]);
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    return SG_OK;
}

/* ---- comparisons and Where on constants (shape arithmetic: PyTorch's expand(n, -1, 4)
   exports Equal(shape, -1) and Where(that, 1, shape)); a condition is an int64 0/1 ---- */

enum { OX_EQ, OX_GT, OX_LT, OX_GE, OX_LE };

/* The comparison of elements a and b, either of which may be the batch size from a Shape
   node (known only per run, and at least 1: a batch is never empty); -1 when unknown. */
static int compare_elems(int op, double a, bool a_batch, double b, bool b_batch)
{
    if (a_batch && b_batch) /* the same batch: equal when the row sizes merged are */
        return a != b ? -1 : op == OX_EQ || op == OX_GE || op == OX_LE;
    if (b_batch) { /* b op' a, op' the mirror of op */
        static const int mirror[] = {OX_EQ, OX_LT, OX_GT, OX_LE, OX_GE};
        return compare_elems(mirror[op], b, true, a, false);
    }
    if (a_batch) { /* the batch n >= 1 times a (the row sizes merged with it) against b */
        switch (op) {
        case OX_EQ:
            return b < a ? 0 : -1;
        case OX_GT:
            return b < a ? 1 : -1;
        case OX_GE:
            return b <= a ? 1 : -1;
        case OX_LT:
            return b <= a ? 0 : -1;
        default:
            return b < a ? 0 : -1;
        }
    }
    switch (op) {
    case OX_EQ:
        return a == b;
    case OX_GT:
        return a > b;
    case OX_LT:
        return a < b;
    case OX_GE:
        return a >= b;
    default:
        return a <= b;
    }
}

static double elem(const ox_value *v, int64_t at)
{
    return v->dtype == OX_FLOAT ? (double)v->f[at] : (double)v->i[at];
}

static void next_idx(int64_t *idx, int r, const int64_t *dims)
{
    for (int d = r - 1; d >= 0; d--) {
        if (++idx[d] < dims[d]) return;
        idx[d] = 0;
    }
}

static sg_status emit_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err);
static sg_status row_operands(ox_ctx *c, int n, int *ids, unsigned int_ok, sg_onnx_arg *args,
                              float **out, int *rank, int64_t *dims, int64_t *width, sg_err *err);

/* Constant condition v (int64 0/1) as an unnamed float constant of 0s and 1s, for a step on
   rows that reads it with a per-row condition. */
static sg_status cond_as_float(ox_ctx *c, int *v, sg_err *err)
{
    const char *saved = c->partial;
    c->partial = "a constant condition as 0 and 1";
    int f, rc = ox_const_out(c, c->vals[*v].rank, c->vals[*v].dims, OX_FLOAT, err, &f);
    c->partial = saved;
    if (rc) return rc;
    for (int64_t j = 0; j < c->vals[f].count; j++)
        c->vals[f].f[j] = c->vals[*v].i[j] != 0;
    *v = f;
    return SG_OK;
}

/* The newest value, a per-row result of node c->node, is a condition. */
static sg_status made_bool(ox_ctx *c, sg_status rc)
{
    if (rc == SG_OK) c->vals[c->n_vals - 1].is_bool = true;
    return rc;
}

static sg_status op_compare(ox_ctx *c, int op, sg_err *err)
{
    int ia, ib, rc;
    if ((rc = ox_need_in(c, 0, err, &ia)) || (rc = ox_need_in(c, 1, err, &ib))) return rc;
    if (op == OX_EQ && c->opset < 11 && !c->vals[ia].is_bool && !c->vals[ib].is_bool &&
        !c->vals[ia].is_int && !c->vals[ib].is_int &&
        (c->vals[ia].is_const ? c->vals[ia].dtype == OX_FLOAT : true))
        return ox_node_err(c, err, SG_EINPUT,
                           "Equal of floats is defined from opset 11 (before, of integers and "
                           "booleans only)");
    if (!c->vals[ia].is_const || !c->vals[ib].is_const) {
        /* On rows: a step whose result is 1 where the comparison holds, else 0. */
        static const sg_onnx_binary step_op[] = {SG_OXB_EQ, SG_OXB_GT, SG_OXB_LT, SG_OXB_GE,
                                                 SG_OXB_LE};
        /* a condition compared with a constant boolean: both as 0 and 1 */
        const bool conds = c->vals[ia].is_bool || c->vals[ib].is_bool;
        for (int k = 0; k < 2; k++) {
            int *vi = k ? &ib : &ia;
            const ox_value *v = &c->vals[*vi];
            if (!v->is_const || v->dtype == OX_FLOAT) continue;
            if (c->vals[k ? ia : ib].is_int) continue; /* against integer rows: exact */
            if (!conds)
                return ox_node_err(c, err, SG_EINPUT,
                                   "input %d ('%.100s') is an integer constant compared with float "
                                   "rows",
                                   k, v->name);
            if ((rc = cond_as_float(c, vi, err))) return rc;
        }
        return made_bool(c, emit_binary(c, step_op[op], ia, ib, err));
    }
    if (c->vals[ia].dtype != c->vals[ib].dtype)
        return ox_node_err(c, err, SG_EINPUT, "inputs differ in type (int64 and float)");
    int r;
    int64_t dims[OX_MAX_RANK];
    if (broadcast_dims(&c->vals[ia], &c->vals[ib], &r, dims))
        return ox_node_err(c, err, SG_EINPUT, "constant shapes do not broadcast");
    int v;
    if ((rc = ox_const_out(c, r, dims, OX_INT64, err, &v))) return rc;
    const ox_value *a = &c->vals[ia], *b = &c->vals[ib];
    int64_t idx[OX_MAX_RANK] = {0};
    for (int64_t k = 0; k < c->vals[v].count; k++, next_idx(idx, r, dims)) {
        const int64_t pa = bcast_offset(a, r, idx), pb = bcast_offset(b, r, idx);
        const int res = compare_elems(op, elem(a, pa), marked(a, pa), elem(b, pb), marked(b, pb));
        if (res < 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "element %lld compares the batch size (from a Shape node), known "
                               "only per run, with %g",
                               (long long)k, marked(a, pa) ? elem(b, pb) : elem(a, pa));
        c->vals[v].i[k] = res;
    }
    return SG_OK;
}

static sg_status emit_unary(ox_ctx *c, sg_onnx_unary op, float alpha, float beta, sg_err *err);

/* Not of a condition: folded on a constant, a step on rows. */
static sg_status op_not(ox_ctx *c, sg_err *err)
{
    int x, v, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    if (!c->vals[x].is_const) {
        if (!c->vals[x].is_bool)
            return ox_node_err(c, err, SG_EINPUT, "input 0 ('%.100s') is not a condition",
                               c->vals[x].name);
        return made_bool(c, emit_unary(c, SG_OXU_NOT, 0, 0, err));
    }
    if (c->vals[x].dtype != OX_INT64)
        return ox_node_err(c, err, SG_EINPUT, "input 0 ('%.100s') is not a condition",
                           c->vals[x].name);
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, c->vals[x].dims, sizeof dims);
    if ((rc = ox_const_out(c, c->vals[x].rank, dims, OX_INT64, err, &v))) return rc;
    for (int64_t k = 0; k < c->vals[v].count; k++)
        c->vals[v].i[k] = !c->vals[x].i[k];
    return SG_OK;
}

static float unop(sg_onnx_unary op, float x, float alpha, float beta);

/* IsNaN and IsInf: a condition on rows, folded to int64 0/1 on a constant. */
static sg_status op_is(ox_ctx *c, sg_onnx_unary op, sg_err *err)
{
    int x, rc = ox_need_in(c, 0, err, &x);
    if (rc) return rc;
    const float neg = (float)ox_attr_i(c, "detect_negative", 1),
                pos = (float)ox_attr_i(c, "detect_positive", 1);
    if (!c->vals[x].is_const) {
        if (c->vals[x].is_bool)
            return ox_node_err(c, err, SG_EINPUT, "input 0 ('%.100s') is a condition, not float",
                               c->vals[x].name);
        return made_bool(c, emit_unary(c, op, neg, pos, err));
    }
    if (c->vals[x].dtype != OX_FLOAT)
        return ox_node_err(c, err, SG_EINPUT, "input 0 ('%.100s') is not float", c->vals[x].name);
    int v;
    if ((rc = ox_const_out(c, c->vals[x].rank, c->vals[x].dims, OX_INT64, err, &v))) return rc;
    for (int64_t j = 0; j < c->vals[v].count; j++)
        c->vals[v].i[j] = unop(op, c->vals[x].f[j], neg, pos) != 0;
    return SG_OK;
}

/* And and Or of conditions (0/1): the minimum and the maximum. */
static sg_status op_logic(ox_ctx *c, bool and_op, sg_err *err)
{
    int ia, ib, rc;
    if ((rc = ox_need_in(c, 0, err, &ia)) || (rc = ox_need_in(c, 1, err, &ib))) return rc;
    for (int k = 0; k < 2; k++) {
        const ox_value *v = &c->vals[k ? ib : ia];
        if (v->is_const ? v->dtype != OX_INT64 : !v->is_bool)
            return ox_node_err(c, err, SG_EINPUT, "input %d ('%.100s') is not a condition", k,
                               v->name);
    }
    const sg_onnx_binary op = and_op ? SG_OXB_MIN : SG_OXB_MAX;
    if (c->vals[ia].is_const && c->vals[ib].is_const) return emit_binary(c, op, ia, ib, err);
    /* a constant condition on rows is taken as the floats 0 and 1 */
    if (c->vals[ia].is_const && (rc = cond_as_float(c, &ia, err))) return rc;
    if (c->vals[ib].is_const && (rc = cond_as_float(c, &ib, err))) return rc;
    return made_bool(c, emit_binary(c, op, ia, ib, err));
}

/* Where(cond, a, b) on rows: a step taking a's element where the condition (a comparison's
   result, or a constant) holds, else b's, each broadcast as a binary node's operands. */
static sg_status where_rows(ox_ctx *c, int ic, int ia, int ib, sg_err *err)
{
    const ox_value *cv = &c->vals[ic];
    if (cv->is_const ? cv->dtype != OX_INT64 : !cv->is_bool)
        return ox_node_err(c, err, SG_EINPUT, "the condition ('%.100s') is not boolean", cv->name);
    for (int k = 1; k < 3; k++) {
        const ox_value *v = &c->vals[k == 1 ? ia : ib];
        if (v->is_const ? v->dtype != OX_FLOAT : v->is_bool)
            return ox_node_err(c, err, SG_EINPUT,
                               "input %d ('%.100s') is not float: Where picks floats on rows", k,
                               v->name);
    }
    int ids[3] = {ic, ia, ib}, rank = 0;
    int64_t dims[OX_MAX_RANK], width = 0;
    sg_onnx_arg args[3];
    float *owned[3];
    int rc = row_operands(c, 3, ids, 1u, args, owned, &rank, dims, &width, err);
    if (rc) return rc;
    sg_onnx_step *s = ox_step_new(c, SG_OX_WHERE, err);
    if (!s) {
        for (int k = 0; k < 3; k++)
            sg_free_aligned(owned[k]);
        return SG_ENOMEM;
    }
    s->cc = args[0];
    s->a = args[1];
    s->bb = args[2];
    s->width = (int)width;
    for (int k = 2; k >= 0; k--)
        if (args[k].kind != SG_OXA_CONST) s->in = args[k].buf;
    int v;
    return ox_dyn_out(c, rank, dims, err, &v);
}

/* Where(cond, a, b): on constants a's element where cond holds, else b's, the batch size a
   Shape gave following the element picked; on rows a step. */
static sg_status op_where(ox_ctx *c, sg_err *err)
{
    int ic, ia, ib, rc;
    if ((rc = ox_need_in(c, 0, err, &ic)) || (rc = ox_need_in(c, 1, err, &ia)) ||
        (rc = ox_need_in(c, 2, err, &ib)))
        return rc;
    const ox_value *cv = &c->vals[ic], *a = &c->vals[ia], *b = &c->vals[ib];
    if (!cv->is_const || !a->is_const || !b->is_const) return where_rows(c, ic, ia, ib, err);
    if (cv->dtype != OX_INT64 || cv->batch_mask)
        return ox_node_err(c, err, SG_EINPUT, "the condition must be a constant boolean");
    if (a->dtype != b->dtype)
        return ox_node_err(c, err, SG_EINPUT, "inputs 1 and 2 differ in type (int64 and float)");
    int r, r2;
    int64_t dims[OX_MAX_RANK] = {0}, dims2[OX_MAX_RANK];
    if (broadcast_dims(a, b, &r, dims))
        return ox_node_err(c, err, SG_EINPUT, "constant shapes do not broadcast");
    ox_value ab = {.rank = r};
    memcpy(ab.dims, dims, sizeof dims);
    if (broadcast_dims(cv, &ab, &r2, dims2))
        return ox_node_err(c, err, SG_EINPUT, "constant shapes do not broadcast");
    int v;
    if ((rc = ox_const_out(c, r2, dims2, a->dtype, err, &v))) return rc;
    cv = &c->vals[ic];
    a = &c->vals[ia];
    b = &c->vals[ib];
    ox_value *o = &c->vals[v];
    int64_t idx[OX_MAX_RANK] = {0};
    uint64_t mask = 0;
    for (int64_t k = 0; k < o->count; k++, next_idx(idx, r2, dims2)) {
        const ox_value *src = cv->i[bcast_offset(cv, r2, idx)] ? a : b;
        const int64_t at = bcast_offset(src, r2, idx);
        if (o->dtype == OX_FLOAT)
            o->f[k] = src->f[at];
        else
            o->i[k] = src->i[at];
        if (marked(src, at)) {
            if (k >= 64)
                return ox_node_err(c, err, SG_EINPUT,
                                   "the batch size (from a Shape node) moved past element 63");
            mask |= (uint64_t)1 << k;
        }
    }
    o->batch_mask = mask;
    return SG_OK;
}

static float unop(sg_onnx_unary op, float x, float alpha, float beta)
{
    switch (op) {
    case SG_OXU_RELU: /* as the kernels: NaN passes, -0 stays -0 */
        return x < 0 ? 0 : x;
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
    case SG_OXU_CLIP:
        return sg_onnx_clip(x, alpha, beta);
    case SG_OXU_ELU:
        return sg_onnx_elu(x, alpha);
    case SG_OXU_SELU:
        return sg_onnx_selu(x, alpha, beta);
    case SG_OXU_CELU:
        return sg_onnx_celu(x, alpha);
    case SG_OXU_SOFTPLUS:
        return sg_onnx_softplus(x);
    case SG_OXU_SOFTSIGN:
        return sg_onnx_softsign(x);
    case SG_OXU_HARD_SIGMOID:
        return sg_onnx_hard_sigmoid(x, alpha, beta);
    case SG_OXU_HARD_SWISH:
        return sg_onnx_hard_swish(x);
    case SG_OXU_ABS:
        return fabsf(x);
    case SG_OXU_NEG:
        return -x;
    case SG_OXU_EXP:
        return expf(x);
    case SG_OXU_LOG:
        return logf(x);
    case SG_OXU_RECIPROCAL:
        return 1.0f / x;
    case SG_OXU_NOT:
        return x == 0;
    case SG_OXU_TRUNC:
        return sg_onnx_cast_trunc(x, alpha);
    case SG_OXU_FLOOR:
        return floorf(x);
    case SG_OXU_CEIL:
        return ceilf(x);
    case SG_OXU_ROUND:
        return rintf(x);
    case SG_OXU_SIN:
        return sinf(x);
    case SG_OXU_COS:
        return cosf(x);
    case SG_OXU_TAN:
        return tanf(x);
    case SG_OXU_ASIN:
        return asinf(x);
    case SG_OXU_ACOS:
        return acosf(x);
    case SG_OXU_ATAN:
        return atanf(x);
    case SG_OXU_SINH:
        return sinhf(x);
    case SG_OXU_COSH:
        return coshf(x);
    case SG_OXU_ASINH:
        return asinhf(x);
    case SG_OXU_ACOSH:
        return acoshf(x);
    case SG_OXU_ATANH:
        return atanhf(x);
    case SG_OXU_THRESHOLDED_RELU:
        return sg_onnx_thresholded_relu(x, alpha);
    case SG_OXU_SHRINK:
        return sg_onnx_shrink(x, alpha, beta);
    case SG_OXU_SIGN:
        return x > 0 ? 1.0f : x < 0 ? -1.0f : x;
    case SG_OXU_ISNAN:
        return isnan(x);
    case SG_OXU_ISINF:
        return isinf(x) && (x < 0 ? alpha != 0 : beta != 0);
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
/* int_ok: an int64 constant is taken as float (Pow's exponent, whose type T1 is any number
   from opset 12: `x ** 2` with an int 2 had been refused). */
static sg_status const_row(ox_ctx *c, const ox_value *k, int rank, const int64_t *dims,
                           int64_t width, bool int_ok, float **out, sg_err *err)
{
    *out = NULL;
    if (k->dtype != OX_FLOAT && !(int_ok && k->dtype == OX_INT64))
        return ox_node_err(c, err, SG_EINPUT, "constant '%.100s' is not floating point", k->name);
    /* The row is a constant made at load like a folded one, and counted with them: a chain
       of scalar Adds on a 2^24-wide row took 64 MiB a node, in every worker's plan too. */
    const size_t bytes = (size_t)width * sizeof(float);
    if (bytes > OX_MAX_FOLDED - c->folded_bytes)
        return ox_node_err(c, err, SG_EINPUT,
                           "constants made at load (folded, or broadcast to a row) would need "
                           "more than %zu MiB",
                           OX_MAX_FOLDED >> 20);
    c->folded_bytes += bytes;
    float *row = sg_alloc_aligned(bytes);
    if (!row) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    /* k has at most rank dims here (checked by the caller); align it to the row's. */
    int64_t idx[OX_MAX_RANK] = {0};
    for (int64_t j = 0; j < width; j++) {
        const int64_t at = bcast_offset(k, rank, idx);
        row[j] = k->dtype == OX_FLOAT ? k->f[at] : (float)k->i[at];
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) break;
            idx[d] = 0;
        }
    }
    *out = row;
    return SG_OK;
}

sg_status ox_const_row(ox_ctx *c, const ox_value *k, int rank, const int64_t *dims, int64_t width,
                       float **out, sg_err *err)
{
    return const_row(c, k, rank, dims, width, false, out, err);
}

/*
 * The n operands (value indices ids, at least one per row) of an element-wise node as step
 * arguments over the output's row shape (*rank, dims, *width): a constant becomes a row the
 * step owns (owned[k]; int_ok bit k: an int64 constant is taken as float), a per-row operand
 * of the row's shape a ROW, one value per row a COL, and one that broadcasts along a row axis
 * is first expanded by a gather step (ids[k] is then that value). On error nothing is owned.
 */
static sg_status row_operands(ox_ctx *c, int n, int *ids, unsigned int_ok, sg_onnx_arg *args,
                              float **owned, int *rank, int64_t *dims, int64_t *width, sg_err *err)
{
    /* Row shape of the output: per-row operands contribute their row shape; a constant its
       dimensions after the batch position, which must be 1 where it has one. */
    ox_value r[3];
    int row_rank = 0;
    for (int k = 0; k < n; k++) {
        owned[k] = NULL;
        if (!c->vals[ids[k]].is_const && c->vals[ids[k]].rank > row_rank)
            row_rank = c->vals[ids[k]].rank;
    }
    for (int k = 0; k < n; k++) {
        ox_value *v = &r[k];
        *v = c->vals[ids[k]];
        if (!v->is_const) continue;
        const int full = row_rank + 1;
        if (v->rank > full || (v->rank == full && v->dims[0] != 1))
            return ox_node_err(c, err, SG_EINPUT,
                               "constant '%.100s' of rank %d does not broadcast against a batch "
                               "of rows of rank %d",
                               v->name, v->rank, row_rank);
        if (v->rank == full) { /* drop the batch position */
            memmove(v->dims, v->dims + 1, (size_t)(v->rank - 1) * sizeof v->dims[0]);
            v->rank--;
        }
    }
    ox_value acc = r[0];
    for (int k = 1; k < n; k++) {
        if (broadcast_dims(&acc, &r[k], rank, dims))
            return ox_node_err(c, err, SG_EINPUT,
                               "shapes of '%.100s' and '%.100s' do not broadcast",
                               c->vals[ids[k - 1]].name, c->vals[ids[k]].name);
        acc.rank = *rank;
        memcpy(acc.dims, dims, (size_t)*rank * sizeof dims[0]);
    }
    *width = 1;
    for (int i = 0; i < *rank; i++)
        *width *= dims[i]; /* each row-shape product is below 2^24, a constant's 2^31 */
    if (*width < 1 || *width > OX_MAX_WIDTH)
        return ox_node_err(c, err, SG_EINPUT, "a row of %lld values (must be 1..%d)",
                           (long long)*width, OX_MAX_WIDTH);
    /* A per-row operand that broadcasts along some axis of the row (one mean per token of
       [batch, tokens, 1] against [batch, tokens, k], as PyTorch's LayerNorm below opset 17
       exports it) is first expanded to the row's shape by a gather step. */
    for (int k = 0; k < n; k++) {
        const ox_value *v = &c->vals[ids[k]];
        if (v->is_const || v->rank != *rank || v->count == 1 || same_row(v, *rank, dims)) continue;
        int rc = ox_expand_row(c, ids[k], *rank, dims, err, &ids[k]);
        if (rc) return rc;
    }
    for (int k = 0; k < n; k++) {
        const ox_value *v = &c->vals[ids[k]];
        sg_onnx_arg *g = &args[k];
        memset(g, 0, sizeof *g);
        int rc = SG_OK;
        if (v->is_const) {
            rc = const_row(c, &r[k], *rank, dims, *width, int_ok >> k & 1, &owned[k], err);
            g->kind = SG_OXA_CONST;
            g->value = owned[k];
        } else if (same_row(v, *rank, dims)) {
            g->kind = SG_OXA_ROW;
            g->buf = v->data;
        } else if (v->count == 1 && v->rank == *rank) {
            /* [batch, 1, ...]: one value per row. */
            g->kind = SG_OXA_COL;
            g->buf = v->data;
        } else if (v->rank < *rank) {
            /* A per-row value of lower rank ([batch] against [batch, k]) aligns its batch with
               a row dimension, as ONNX and numpy align shapes from the right: valid only for
               one batch size. */
            rc = ox_node_err(c, err, SG_EINPUT,
                             "'%.100s' has rank %d and the other input rank %d: ONNX aligns "
                             "shapes from the right, so its batch dimension would meet a row "
                             "dimension (valid for one batch size only)",
                             v->name, v->rank + 1, *rank + 1);
        } else {
            rc = ox_node_err(c, err, SG_EINTERNAL,
                             "'%.100s' does not broadcast to rows of shape of rank %d", v->name,
                             *rank);
        }
        if (rc) {
            for (int q = 0; q < n; q++) {
                sg_free_aligned(owned[q]);
                owned[q] = NULL;
            }
            return rc;
        }
    }
    return SG_OK;
}

static sg_status emit_binary(ox_ctx *c, sg_onnx_binary op, int ia, int ib, sg_err *err)
{
    if (c->vals[ia].is_const && c->vals[ib].is_const) return fold_binary(c, op, ia, ib, err);
    int ids[2] = {ia, ib}, rank = 0;
    int64_t dims[OX_MAX_RANK], width = 0;
    sg_onnx_arg args[2];
    float *owned[2];
    /* int64 constants meet integer rows (int_inputs checked they are exact in float), and
       Pow's exponent from opset 12 */
    const bool ints = (!c->vals[ia].is_const && c->vals[ia].is_int) ||
                      (!c->vals[ib].is_const && c->vals[ib].is_int);
    int rc = row_operands(c, 2, ids,
                          ints                                 ? 3u
                          : op == SG_OXB_POW && c->opset >= 12 ? 2u
                                                               : 0u,
                          args, owned, &rank, dims, &width, err);
    if (rc) return rc;
    const ox_value *a = &c->vals[ids[0]], *b = &c->vals[ids[1]];
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

sg_status ox_emit_trunc(ox_ctx *c, bool to_int32, sg_err *err)
{
    return emit_unary(c, SG_OXU_TRUNC, to_int32 ? 2147483648.0f : 9223372036854775808.0f, 0, err);
}

static sg_status emit_unary(ox_ctx *c, sg_onnx_unary op, float alpha, float beta, sg_err *err)
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
            c->vals[v].f[k] = unop(op, c->vals[x].f[k], alpha, beta);
        return SG_OK;
    }
    sg_onnx_step *s = ox_step_new(c, SG_OX_UNARY, err);
    if (!s) return SG_ENOMEM;
    s->unary = op;
    s->alpha = alpha;
    s->beta = beta;
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

/* Mod: of integers (integer rows, int64 constants) with either fmod, as the hashing trick
   x.long() % buckets exports; of floats only with fmod 1 (C's fmod: torch.fmod), as ONNX
   requires. */
static sg_status op_mod(ox_ctx *c, sg_err *err)
{
    int a, b, rc;
    if ((rc = ox_need_in(c, 0, err, &a)) || (rc = ox_need_in(c, 1, err, &b))) return rc;
    const int64_t fmod = ox_attr_i(c, "fmod", 0);
    if (fmod != 0 && fmod != 1)
        return ox_node_err(c, err, SG_EINPUT, "fmod is %lld, not 0 or 1", (long long)fmod);
    const ox_value *va = &c->vals[a], *vb = &c->vals[b];
    const bool ints = (va->is_const ? va->dtype == OX_INT64 : va->is_int) &&
                      (vb->is_const ? vb->dtype == OX_INT64 : vb->is_int);
    if (!fmod && !ints)
        return ox_node_err(c, err, SG_EINPUT,
                           "Mod of floats with fmod 0: ONNX defines Mod of floats only with "
                           "fmod 1 (torch.fmod)");
    return emit_binary(c, fmod ? SG_OXB_FMOD : SG_OXB_MOD, a, b, err);
}

/* PRelu(X, slope): the slope is a constant that broadcasts one way, to X's shape (one value,
   or one per channel as PyTorch exports it). */
static sg_status op_prelu(ox_ctx *c, sg_err *err)
{
    int x, sl, rc;
    if ((rc = ox_need_in(c, 0, err, &x)) || (rc = ox_need_in(c, 1, err, &sl))) return rc;
    const ox_value *vx = &c->vals[x], *vs = &c->vals[sl];
    if (!vs->is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "slope (input 1, '%.100s') is computed per row; only a constant slope "
                           "is supported",
                           vs->name);
    /* Aligned from the right, each slope dimension is 1 or X's; at a per-row X's batch
       position (taken as 1 here) only 1 fits. */
    int64_t xd[OX_MAX_RANK + 1];
    int xr = vx->rank, off = vx->is_const ? 0 : 1;
    xd[0] = 1;
    memcpy(xd + off, vx->dims, (size_t)vx->rank * sizeof xd[0]);
    xr += off;
    bool ok = vs->rank <= xr;
    for (int i = 1; ok && i <= vs->rank; i++) {
        int64_t ds = vs->dims[vs->rank - i];
        ok = ds == 1 || ds == xd[xr - i];
    }
    if (!ok) {
        char ss[160], xs[160];
        ox_shape_str(vs->dims, (size_t)vs->rank, ss, sizeof ss);
        ox_shape_str(vx->dims, (size_t)vx->rank, xs, sizeof xs);
        return ox_node_err(c, err, SG_EINPUT,
                           "slope '%.100s' of shape %s does not broadcast to the input '%.100s' "
                           "(%s %s); PRelu broadcasts the slope only",
                           vs->name, ss, vx->name, vx->is_const ? "shape" : "rows of shape", xs);
    }
    return emit_binary(c, SG_OXB_PRELU, x, sl, err);
}

/* "the Max of inputs 0, 2": the inputs a partial result of a chain has taken so far. */
static void partial_name(char *buf, size_t len, const char *op, const bool *taken, size_t n)
{
    size_t k = (size_t)snprintf(buf, len, "the %s of inputs", op);
    for (size_t i = 0, first = 1; i < n && k < len; i++)
        if (taken[i]) {
            k += (size_t)snprintf(buf + k, len - k, "%s %zu", first ? "" : ",", i);
            first = 0;
        }
}

/* The chain's steps past the first are named NODE#2, NODE#3, ... */
static void name_chain_step(ox_ctx *c, int n_steps)
{
    if (n_steps < 2) return;
    sg_onnx_step *s = &c->steps[c->n_steps - 1];
    char name[SG_ONNX_NAME];
    snprintf(name, sizeof name, "%.36s#%d", s->name, n_steps);
    memcpy(s->name, name, sizeof name);
}

/* Max, Min, Sum and Mean take 1 or more inputs: one is the identity (Mean's too), two a binary
   step, more a chain of binary steps (NODE, NODE#2, ...). Max and Min take the constant inputs
   first, so that they fold into one; Sum and Mean add in input order, as ONNX Runtime does
   (float addition is not associative), and Mean then divides by the input count. */
static sg_status op_chain(ox_ctx *c, sg_onnx_binary op, const char *op_name, bool mean, sg_err *err)
{
    const size_t n = c->node->n_input;
    const bool reorder = op == SG_OXB_MAX || op == SG_OXB_MIN;
    if (n == 0) return ox_node_err(c, err, SG_EINPUT, "no inputs (at least one is needed)");
    if (n == 1) return ox_op_identity(c, err);
    size_t *order = malloc(n * sizeof *order);
    bool *taken = calloc(n, sizeof *taken);
    int rc = SG_OK;
    if (!order || !taken) {
        free(order);
        free(taken);
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    }
    size_t m = 0;
    for (size_t k = 0; k < n && rc == SG_OK; k++) {
        int v;
        if ((rc = ox_need_in(c, k, err, &v)) == SG_OK &&
            (n == 2 || !reorder || c->vals[v].is_const))
            order[m++] = k;
    }
    for (size_t k = 0; k < n && rc == SG_OK && n > 2 && reorder; k++)
        if (!c->vals[ox_in(c, k)].is_const) order[m++] = k;
    if (rc != SG_OK) { /* an input missing (an empty name): nothing was ordered */
        free(order);
        free(taken);
        return rc;
    }
    int acc = ox_in(c, order[0]), n_steps = 0;
    taken[order[0]] = true;
    for (size_t k = 1; k < n && rc == SG_OK; k++) {
        taken[order[k]] = true;
        if (k + 1 < n || mean) { /* a partial result: unnamed, and named so in messages */
            char *name = c->partial_name[k % 2];
            partial_name(name, sizeof c->partial_name[0], mean ? "Sum" : op_name, taken, n);
            c->partial = name;
        }
        const int before = c->n_steps;
        rc = emit_binary(c, op, acc, ox_in(c, order[k]), err);
        c->partial = NULL;
        acc = c->n_vals - 1; /* the value emit_binary added */
        if (rc == SG_OK && c->n_steps > before) name_chain_step(c, ++n_steps);
    }
    free(order);
    free(taken);
    if (rc == SG_OK && mean) {
        const int k = ox_value_add_unnamed(c, "the input count", err);
        if (k < 0) return SG_EINPUT;
        ox_value *cnt = &c->vals[k];
        cnt->defined = cnt->is_const = true;
        cnt->rank = 0;
        cnt->count = 1;
        cnt->dtype = OX_FLOAT;
        if (!(cnt->f = sg_alloc_aligned(sizeof(float))))
            return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        cnt->f[0] = (float)n;
        const int before = c->n_steps;
        rc = emit_binary(c, SG_OXB_DIV, acc, k, err);
        if (rc == SG_OK && c->n_steps > before) name_chain_step(c, ++n_steps);
    }
    return rc;
}

/* Clip's bound from input k (opset 11 on): absent, or one constant float. */
static sg_status clip_bound(ox_ctx *c, size_t k, const char *what, float *bound, sg_err *err)
{
    int v = ox_in(c, k);
    if (v < 0) return SG_OK;
    const ox_value *b = &c->vals[v];
    if (!b->is_const)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s (input %zu, '%.100s') is computed per row; only a constant bound is "
                           "supported",
                           what, k, b->name);
    /* of integer rows, an int64 bound (int_inputs checked it is within 2^24) */
    const bool ints = ox_in(c, 0) >= 0 && c->vals[ox_in(c, 0)].is_int;
    if (b->dtype != OX_FLOAT && !(ints && b->dtype == OX_INT64))
        return ox_node_err(c, err, SG_EINPUT, "%s (input %zu, '%.100s') is not floating point",
                           what, k, b->name);
    if (b->count != 1)
        return ox_node_err(c, err, SG_EINPUT,
                           "%s (input %zu, '%.100s') must be one value; it holds %lld", what, k,
                           b->name, (long long)b->count);
    *bound = b->dtype == OX_FLOAT ? b->f[0] : (float)b->i[0];
    return SG_OK;
}

static sg_status op_clip(ox_ctx *c, sg_err *err)
{
    float lo = -INFINITY, hi = INFINITY;
    int rc;
    if (c->opset < 11) {
        if (ox_in(c, 1) >= 0 || ox_in(c, 2) >= 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "min and max are attributes before opset 11, not inputs");
        /* Clip-6's defaults: the ends of the float range. */
        lo = ox_attr_f(c, "min", -FLT_MAX);
        hi = ox_attr_f(c, "max", FLT_MAX);
    } else if (ox_attr(c, "min") || ox_attr(c, "max")) {
        return ox_node_err(c, err, SG_EINPUT,
                           "min and max are inputs from opset 11 on, not attributes");
    } else if ((rc = clip_bound(c, 1, "min", &lo, err)) ||
               (rc = clip_bound(c, 2, "max", &hi, err))) {
        return rc;
    }
    if (isnan(lo) || isnan(hi))
        return ox_node_err(c, err, SG_EINPUT, "the %s bound is NaN", isnan(lo) ? "min" : "max");
    const int first_new = c->n_vals;
    if ((rc = emit_unary(c, SG_OXU_CLIP, lo, hi, err))) return rc;
    /* float rows within finite bounds: their magnitude is known */
    const int x = ox_in(c, 0);
    if (isfinite(lo) && isfinite(hi) && !c->vals[x].is_int && !c->vals[x].is_bool)
        for (int v = first_new; v < c->n_vals; v++)
            if (!c->vals[v].is_const) c->vals[v].fbound = fmaxf(fabsf(lo), fabsf(hi));
    return SG_OK;
}

/* Element-wise operators with at most two float attributes (their ONNX defaults). */
static const struct {
    const char *op;
    sg_onnx_unary unary;
    const char *a_name, *b_name;
    float a, b;
} unary_ops[] = {
    {"Relu", SG_OXU_RELU, NULL, NULL, 0, 0},
    {"LeakyRelu", SG_OXU_LEAKY_RELU, "alpha", NULL, 0.01f, 0},
    {"Sigmoid", SG_OXU_SIGMOID, NULL, NULL, 0, 0},
    {"Tanh", SG_OXU_TANH, NULL, NULL, 0, 0},
    {"Erf", SG_OXU_ERF, NULL, NULL, 0, 0},
    {"Sqrt", SG_OXU_SQRT, NULL, NULL, 0, 0},
    {"Elu", SG_OXU_ELU, "alpha", NULL, 1.0f, 0},
    {"Selu", SG_OXU_SELU, "alpha", "gamma", 1.67326319217681884765625f, 1.05070102214813232421875f},
    {"Celu", SG_OXU_CELU, "alpha", NULL, 1.0f, 0},
    {"Softplus", SG_OXU_SOFTPLUS, NULL, NULL, 0, 0},
    {"Softsign", SG_OXU_SOFTSIGN, NULL, NULL, 0, 0},
    {"HardSigmoid", SG_OXU_HARD_SIGMOID, "alpha", "beta", 0.2f, 0.5f},
    {"HardSwish", SG_OXU_HARD_SWISH, NULL, NULL, 0, 0},
    {"Abs", SG_OXU_ABS, NULL, NULL, 0, 0},
    {"Neg", SG_OXU_NEG, NULL, NULL, 0, 0},
    {"Exp", SG_OXU_EXP, NULL, NULL, 0, 0},
    {"Log", SG_OXU_LOG, NULL, NULL, 0, 0},
    {"Reciprocal", SG_OXU_RECIPROCAL, NULL, NULL, 0, 0},
    {"Floor", SG_OXU_FLOOR, NULL, NULL, 0, 0},
    {"Ceil", SG_OXU_CEIL, NULL, NULL, 0, 0},
    {"Round", SG_OXU_ROUND, NULL, NULL, 0, 0},
    {"Sin", SG_OXU_SIN, NULL, NULL, 0, 0},
    {"Cos", SG_OXU_COS, NULL, NULL, 0, 0},
    {"Tan", SG_OXU_TAN, NULL, NULL, 0, 0},
    {"Asin", SG_OXU_ASIN, NULL, NULL, 0, 0},
    {"Acos", SG_OXU_ACOS, NULL, NULL, 0, 0},
    {"Atan", SG_OXU_ATAN, NULL, NULL, 0, 0},
    {"Sinh", SG_OXU_SINH, NULL, NULL, 0, 0},
    {"Cosh", SG_OXU_COSH, NULL, NULL, 0, 0},
    {"Asinh", SG_OXU_ASINH, NULL, NULL, 0, 0},
    {"Acosh", SG_OXU_ACOSH, NULL, NULL, 0, 0},
    {"Atanh", SG_OXU_ATANH, NULL, NULL, 0, 0},
    {"ThresholdedRelu", SG_OXU_THRESHOLDED_RELU, "alpha", NULL, 1.0f, 0},
    {"Shrink", SG_OXU_SHRINK, "lambd", "bias", 0.5f, 0},
    {"Sign", SG_OXU_SIGN, NULL, NULL, 0, 0},
};

static sg_status op_unary(ox_ctx *c, size_t i, sg_err *err)
{
    const float a = unary_ops[i].a_name ? ox_attr_f(c, unary_ops[i].a_name, unary_ops[i].a) : 0;
    const float b = unary_ops[i].b_name ? ox_attr_f(c, unary_ops[i].b_name, unary_ops[i].b) : 0;
    if (unary_ops[i].unary == SG_OXU_CELU && a == 0) /* Celu divides by alpha */
        return ox_node_err(c, err, SG_EINPUT, "alpha is 0");
    const int first_new = c->n_vals;
    sg_status rc = emit_unary(c, unary_ops[i].unary, a, b, err);
    /* what keeps a known magnitude within its bound (rounded up past a fraction) */
    const sg_onnx_unary u = unary_ops[i].unary;
    const int x = ox_in(c, 0);
    if (rc == SG_OK && x >= 0 && c->vals[x].fbound > 0 &&
        (u == SG_OXU_FLOOR || u == SG_OXU_CEIL || u == SG_OXU_ROUND || u == SG_OXU_RELU ||
         u == SG_OXU_ABS || u == SG_OXU_NEG))
        for (int v = first_new; v < c->n_vals; v++)
            if (!c->vals[v].is_const) c->vals[v].fbound = ceilf(c->vals[x].fbound);
    return rc;
}

/*
 * Each supported operator's schema at each version in force at opsets 9..17 (generated from
 * onnx.defs by scripts/onnx_schemas.py): the opset it is defined from, how many inputs and
 * outputs a node may have, and its attributes with their types. A node is checked against the
 * schema its model's opset selects, as onnx.checker does. Node compilers read only the inputs
 * and attributes they know, so anything the schema does not allow had been ignored: a third
 * input of MatMul (a bias dropped without a word), MatMul's transB=1 (x@W computed for x@W^T),
 * Concat without its required axis (axis 0 assumed), HardSwish at opset 13 (defined from 14).
 * An attribute of another type had been read as absent, so its default applied: Clip's min=0,
 * max=1 written as ints (helper.make_node does that for Python ints) clipped nothing.
 */
typedef struct {
    const char *name;
    int type; /* ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__* */
    bool required;
} ox_attr_schema;
typedef struct {
    const char *op;
    int since, min_in, max_in, min_out, max_out;
    const ox_attr_schema *attrs;
    int n_attrs;
    bool ml; /* of domain ai.onnx.ml (its opsets) */
} ox_op_schema;
#include "onnx_schemas.inc"

#define AT(t) ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__##t
static const char *attr_type_name(int t)
{
    switch (t) {
    case AT(FLOAT): return "FLOAT";
    case AT(INT): return "INT";
    case AT(STRING): return "STRING";
    case AT(TENSOR): return "TENSOR";
    case AT(FLOATS): return "FLOATS";
    case AT(INTS): return "INTS";
    case AT(STRINGS): return "STRINGS";
    case AT(SPARSE_TENSOR): return "SPARSE_TENSOR";
    case AT(UNDEFINED): return "UNDEFINED";
    default: return "another type";
    }
}

/* Whether a's value is held in the field of type t (for an attribute that names no type,
   as some early producers wrote them). */
static bool attr_holds(const Onnx__AttributeProto *a, int t)
{
    switch (t) {
    case AT(FLOAT): return a->has_f;
    case AT(INT): return a->has_i;
    case AT(STRING): return a->has_s;
    case AT(TENSOR): return a->t != NULL;
    case AT(SPARSE_TENSOR): return a->sparse_tensor != NULL;
    case AT(FLOATS): return a->n_floats > 0;
    case AT(INTS): return a->n_ints > 0;
    case AT(STRINGS): return a->n_strings > 0;
    default: return false;
    }
}

/* The schema version a node of op follows at opset (the latest defined at or before it), or
   NULL; *first is then the opset op is defined from (0 if from none in the table). */
static const ox_op_schema *schema_of(const char *op, bool ml, int opset, int *first)
{
    const ox_op_schema *best = NULL;
    *first = 0;
    for (size_t i = 0; i < sizeof ox_schemas / sizeof ox_schemas[0]; i++) {
        const ox_op_schema *s = &ox_schemas[i];
        if (s->ml != ml || strcmp(s->op, op) != 0) continue;
        if (!*first || s->since < *first) *first = s->since;
        if (s->since <= opset && (!best || s->since > best->since)) best = s;
    }
    return best;
}

/* Operators whose attributes became inputs at some opset: the likeliest cause of a refusal. */
static const char *schema_hint(const char *op)
{
    static const struct {
        const char *op, *hint;
    } hints[] = {
        {"Clip", " (min and max are attributes before opset 11, inputs from opset 11 on)"},
        {"Slice",
         " (starts, ends and axes are attributes before opset 10, inputs from opset 10 on)"},
        {"Dropout", " (ratio is an attribute before opset 12, an input from opset 12 on)"},
        {"Squeeze", " (axes is an attribute before opset 13, an input from opset 13 on)"},
        {"Unsqueeze", " (axes is an attribute before opset 13, an input from opset 13 on)"},
        {"ReduceSum", " (axes is an attribute before opset 13, an input from opset 13 on)"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
        if (!strcmp(op, hints[i].op)) return hints[i].hint;
    return "";
}

static sg_status check_schema(ox_ctx *c, sg_err *err)
{
    const Onnx__NodeProto *n = c->node;
    int first;
    const bool ml = n->domain && !strcmp(n->domain, OX_ML_DOMAIN);
    const int opset = ml ? c->ml_opset : c->opset;
    if (ml && (!c->ml_imported || opset < OX_ML_OPSET_MIN || opset > OX_ML_OPSET_MAX))
        return c->ml_imported
                   ? ox_node_err(c, err, SG_EINPUT,
                                 "opset %d of domain %s is out of range (supported: %d..%d)", opset,
                                 OX_ML_DOMAIN, OX_ML_OPSET_MIN, OX_ML_OPSET_MAX)
                   : ox_node_err(c, err, SG_EINPUT, "the model imports no opset of domain %s",
                                 OX_ML_DOMAIN);
    const ox_op_schema *s = schema_of(n->op_type, ml, opset, &first);
    if (!s)
        return first ? ox_node_err(c, err, SG_EINPUT,
                                   "%s is not defined at opset %d (ONNX defines it from opset %d)",
                                   n->op_type, opset, first)
                     : ox_node_err(c, err, SG_EINTERNAL, "no schema for %s", n->op_type);
    const char *hint = schema_hint(n->op_type);
    if (n->n_input < (size_t)s->min_in || n->n_input > (size_t)s->max_in) {
        if (s->min_in == s->max_in)
            return ox_node_err(c, err, SG_EINPUT, "%zu inputs; %s takes %d at this opset%s",
                               n->n_input, n->op_type, s->min_in, hint);
        return ox_node_err(c, err, SG_EINPUT, "%zu inputs; %s takes %d to %d at this opset%s",
                           n->n_input, n->op_type, s->min_in, s->max_in, hint);
    }
    if (n->n_output < (size_t)s->min_out || n->n_output > (size_t)s->max_out) {
        if (s->min_out == s->max_out)
            return ox_node_err(c, err, SG_EINPUT, "%zu outputs; %s has %d at this opset",
                               n->n_output, n->op_type, s->min_out);
        return ox_node_err(c, err, SG_EINPUT, "%zu outputs; %s has %d to %d at this opset",
                           n->n_output, n->op_type, s->min_out, s->max_out);
    }
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        const char *name = a->name ? a->name : "";
        if (a->ref_attr_name && a->ref_attr_name[0])
            return ox_node_err(c, err, SG_EINPUT,
                               "attribute '%.64s' refers to a function's attribute", name);
        /* onnx.checker passes over attributes named "__..." (left for tools' own notes);
           no operator reads one */
        if (name[0] == '_' && name[1] == '_') continue;
        int k = 0;
        while (k < s->n_attrs && strcmp(s->attrs[k].name, name) != 0)
            k++;
        if (k == s->n_attrs)
            return ox_node_err(c, err, SG_EINPUT,
                               "attribute '%.64s' is not one %s has at this opset%s", name,
                               n->op_type, hint);
        const int want = s->attrs[k].type;
        if (a->type == AT(UNDEFINED) ? !attr_holds(a, want) : (int)a->type != want)
            return ox_node_err(c, err, SG_EINPUT, "attribute '%.64s' is %s, ONNX's %s has it %s",
                               name, attr_type_name(a->type == AT(UNDEFINED) ? -1 : (int)a->type),
                               n->op_type, attr_type_name(want));
        for (size_t j = 0; j < i; j++)
            if (n->attribute[j]->name && !strcmp(n->attribute[j]->name, name))
                return ox_node_err(c, err, SG_EINPUT, "attribute '%.64s' is given twice", name);
    }
    for (int k = 0; k < s->n_attrs; k++)
        if (s->attrs[k].required && !ox_attr(c, s->attrs[k].name))
            return ox_node_err(c, err, SG_EINPUT, "the required attribute '%s' is missing",
                               s->attrs[k].name);
    return SG_OK;
}
#undef AT

/* The batch size a Shape node gives (batch_mask) is read only in a Reshape's shape (and as
   an Expand's or ConstantOfShape's first dimension), carried there by the nodes that move a
   shape's elements without computing with them and by a product with a constant (the batch
   times the heads in attention): given to any other input, it is refused, not read as the
   number it is stored as (the row sizes merged with the batch). */
static sg_status batch_size_inputs(ox_ctx *c, const char *op, sg_err *err)
{
    static const char *const carry0[] = {"Squeeze",   "Unsqueeze", "Identity",        "Gather",
                                         "Cast",      "Shape",     "Reshape",         "Slice",
                                         "Transpose", "Tile",      "ConstantOfShape", "Split"};
    static const char *const carry_any[] = {"Concat",         "Equal",       "Greater", "Less",
                                            "GreaterOrEqual", "LessOrEqual", "Where",   "Mul"};
    bool concat = false;
    for (size_t i = 0; i < sizeof carry_any / sizeof carry_any[0]; i++)
        concat |= !strcmp(op, carry_any[i]);
    const bool reshape = !strcmp(op, "Reshape") || !strcmp(op, "Expand") || !strcmp(op, "Tile");
    bool first_ok = concat;
    for (size_t i = 0; i < sizeof carry0 / sizeof carry0[0]; i++)
        first_ok |= !strcmp(op, carry0[i]);
    for (size_t k = 0; k < c->node->n_input; k++) {
        const int v = ox_in(c, k);
        if (v < 0 || !c->vals[v].batch_mask) continue;
        if (!strcmp(op, "Mul"))
            for (size_t j = 0; j < c->node->n_input; j++)
                if (ox_in(c, j) >= 0 && !c->vals[ox_in(c, j)].is_const)
                    return ox_node_err(c, err, SG_EINPUT,
                                       "input %zu holds the batch size (from a Shape node), "
                                       "multiplied with rows",
                                       k);
        if (concat || (k == 0 && first_ok) || (k == 1 && reshape)) continue;
        return ox_node_err(c, err, SG_EINPUT,
                           "input %zu holds the batch size (from a Shape node), which stagegate "
                           "uses only in a Reshape's shape, as the first dimension of an "
                           "Expand's or ConstantOfShape's, and multiplied by a constant",
                           k);
    }
    return SG_OK;
}

/* A condition on rows (a comparison's result, 0/1) is read only by the nodes that take a
   boolean: refused as any other input, not computed with as the numbers it is stored as. */
static sg_status bool_inputs(ox_ctx *c, const char *op, sg_err *err)
{
    /* ... and the nodes that only move elements, whose result is a condition again */
    static const char *const takes_bool[] = {
        "Not",     "And",       "Or",       "Equal",     "Cast",   "Reshape", "Flatten",
        "Squeeze", "Unsqueeze", "Identity", "Transpose", "Expand", "Slice",   "Gather",
        "Concat",  "Tile",      "Split",    "Shape",     "If"};
    bool any = false;
    for (size_t i = 0; i < sizeof takes_bool / sizeof takes_bool[0]; i++)
        any |= !strcmp(op, takes_bool[i]);
    const bool reads_double = !strcmp(op, "IsInf") || !strcmp(op, "IsNaN") || !strcmp(op, "Cast");
    for (size_t k = 0; k < c->node->n_input; k++) {
        const int v = ox_in(c, k);
        if (v >= 0 && c->vals[v].is_double && !reads_double)
            return ox_node_err(c, err, SG_EINPUT,
                               "input %zu ('%.100s') is rows cast to double, which stagegate "
                               "reads only in IsInf, IsNaN and Cast (rows are computed in float)",
                               k, c->vals[v].name);
        if (v < 0 || !c->vals[v].is_bool) continue;
        if (any || (k == 0 && !strcmp(op, "Where"))) continue;
        return ox_node_err(c, err, SG_EINPUT,
                           "input %zu ('%.100s') is a boolean (a comparison's result), which "
                           "stagegate reads only as Where's condition, in Not, And, Or, Equal "
                           "and Cast, and in the nodes that move elements",
                           k, c->vals[v].name);
    }
    return SG_OK;
}

static int compile_op(ox_ctx *c, const char *op, sg_err *err);

/* If with a condition known at load (PyTorch exports squeeze(0) of a dimension it cannot
   size as If(Equal(size, 1), Squeeze, Identity)): the branch taken is compiled in place, its
   outputs become the node's. A condition computed per row is refused. */
static sg_status op_if(ox_ctx *c, sg_err *err)
{
    int ic, rc = ox_need_in(c, 0, err, &ic);
    if (rc) return rc;
    const ox_value *cv = &c->vals[ic];
    if (!cv->is_const || cv->count != 1 || cv->batch_mask)
        return ox_node_err(c, err, SG_EINPUT,
                           "the condition ('%.100s') is computed per row; only an If whose "
                           "condition is known at load (from shapes and constants) is supported",
                           cv->name);
    const bool cond = cv->dtype == OX_FLOAT ? cv->f[0] != 0 : cv->i[0] != 0;
    const Onnx__AttributeProto *a = ox_attr(c, cond ? "then_branch" : "else_branch");
    const Onnx__GraphProto *g = a ? a->g : NULL;
    if (!g)
        return ox_node_err(c, err, SG_EINPUT, "the %s branch is missing", cond ? "then" : "else");
    if (g->n_output != c->node->n_output)
        return ox_node_err(c, err, SG_EINPUT, "the %s branch has %zu outputs, the node %zu",
                           cond ? "then" : "else", g->n_output, c->node->n_output);
    if (c->if_depth >= OX_MAX_BRANCH_DEPTH)
        return ox_node_err(c, err, SG_EINPUT, "If nested more than %d deep", OX_MAX_BRANCH_DEPTH);
    const Onnx__NodeProto *self = c->node;
    const int self_index = c->node_index;
    const int first = c->n_vals; /* the branch's own values from here: out of scope after */
    /* The branch's initializers (inline: external data is read in one fixed order, for the
       digest, from the graph's own initializers and Constant nodes only). */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (!t->name || !t->name[0])
            return ox_node_err(c, err, SG_EINPUT, "initializer %zu of the %s branch has no name", i,
                               cond ? "then" : "else");
        if (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || t->n_external_data)
            return ox_node_err(c, err, SG_EINPUT,
                               "initializer '%.100s' of the %s branch has external data (only "
                               "the graph's own may)",
                               t->name, cond ? "then" : "else");
        if (ox_value_find(c, t->name) >= 0)
            return ox_node_err(c, err, SG_EINPUT,
                               "initializer '%.100s' of the %s branch is "
                               "defined twice",
                               t->name, cond ? "then" : "else");
        const int v = ox_value_add(c, t->name, err);
        if (v < 0) return SG_EINPUT;
        char what[160];
        snprintf(what, sizeof what, "initializer '%.100s' of an If branch", t->name);
        if ((rc = ox_tensor_read(c, t, &c->vals[v], what, err))) return rc;
        c->vals[v].defined = true;
    }
    for (size_t i = 0; i < g->n_node; i++)
        if (g->node[i]->op_type && !strcmp(g->node[i]->op_type, "Constant"))
            for (size_t q = 0; q < g->node[i]->n_attribute; q++) {
                const Onnx__TensorProto *t = g->node[i]->attribute[q]->t;
                if (t && (t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL ||
                          t->n_external_data))
                    return ox_node_err(c, err, SG_EINPUT,
                                       "a Constant of the %s branch has external data (only the "
                                       "graph's own may)",
                                       cond ? "then" : "else");
            }
    c->if_depth++;
    for (size_t i = 0; i < g->n_node && rc == SG_OK; i++) {
        c->node = g->node[i];
        c->node_index = (int)i; /* unnamed: "node #i" of the branch, which the message names */
        if (!c->node->op_type ||
            (c->node->domain && c->node->domain[0] && strcmp(c->node->domain, "ai.onnx")) ||
            !ox_op_supported(c->node->op_type)) {
            rc = ox_node_err(c, err, SG_EINPUT,
                             "unsupported operator %.40s in a branch of If "
                             "'%.100s'; supported: %s",
                             c->node->op_type ? c->node->op_type : "(none)",
                             self->name ? self->name : "", ox_supported_ops());
            break;
        }
        for (size_t k = 0; k < c->node->n_input && rc == SG_OK; k++) {
            const char *nm = c->node->input[k];
            if (nm && nm[0] && ox_value_find(c, nm) < 0)
                rc = ox_node_err(c, err, SG_EINPUT,
                                 "input '%.100s' is not defined before this node of a branch of "
                                 "If '%.100s'",
                                 nm, self->name ? self->name : "");
        }
        if (rc == SG_OK) rc = ox_compile_node(c, err);
    }
    c->if_depth--;
    c->node = self;
    c->node_index = self_index;
    if (rc) return rc;
    for (size_t k = 0; k < g->n_output; k++) {
        const int src = g->output[k]->name ? ox_value_find(c, g->output[k]->name) : -1;
        if (src < 0)
            return ox_node_err(c, err, SG_EINPUT, "the branch's output %zu is not defined", k);
        int v;
        if (c->vals[src].is_const) {
            int64_t dims[OX_MAX_RANK];
            memcpy(dims, c->vals[src].dims, sizeof dims);
            if ((rc = ox_const_out_k(c, k, c->vals[src].rank, dims, c->vals[src].dtype, err, &v)))
                return rc;
            ox_copy_values(&c->vals[v], &c->vals[src]);
            c->vals[v].batch_mask = c->vals[src].batch_mask;
            continue;
        }
        int64_t dims[OX_MAX_RANK];
        memcpy(dims, c->vals[src].dims, sizeof dims);
        if ((rc = ox_alias_out_k(c, k, src, c->vals[src].rank, dims, err))) return rc;
        ox_value *o = &c->vals[c->n_vals - 1];
        const ox_value *sv = &c->vals[src];
        o->bpos = sv->bpos;
        o->bouter = sv->bouter;
        o->binner = sv->binner;
    }
    /* The branch's names go out of scope: a sibling branch may use them again, and nothing
       after the If reads them (their values stay, for the steps). */
    for (int v = first; v < c->n_vals - (int)g->n_output; v++)
        c->vals[v].hidden = true;
    return SG_OK;
}

/* Integer rows (is_int: int64 values per row, held exactly as floats) are read only by the
   nodes that keep them exact: the element-moving ones, Cast, ReduceSum, ReduceMax,
   ReduceMin, ArgMax, ArgMin, Add, Sub and Mul (of integer rows and int64 constants, whose
   results int_outputs bounds) and the comparisons. */
static const char *const int_moves[] = {
    "Cast",   "Reshape",   "Flatten",   "Squeeze",   "Unsqueeze", "Identity", "Transpose",
    "Expand", "Slice",     "Gather",    "Concat",    "Tile",      "Split",    "Shape",
    "If",     "ReduceSum", "ReduceMax", "ReduceMin", "ArgMax",    "ArgMin"};
static const char *const int_arith[] = {
    "Add",        "Sub", "Mul", "Mod", "Equal", "Greater", "Less", "Clip", "GreaterOrEqual",
    "LessOrEqual"};

static bool in_list(const char *op, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(op, list[i])) return true;
    return false;
}

/* Largest magnitude of an int64 constant's values. */
static int64_t const_bound(const ox_value *v)
{
    int64_t b = 0;
    for (int64_t j = 0; j < v->count; j++) {
        const int64_t a = v->i[j] < 0 ? (v->i[j] == INT64_MIN ? INT64_MAX : -v->i[j]) : v->i[j];
        if (a > b) b = a;
    }
    return b;
}

static sg_status int_inputs(ox_ctx *c, const char *op, bool *any, sg_err *err)
{
    *any = false;
    int first = -1;
    for (size_t k = 0; k < c->node->n_input; k++) {
        const int v = ox_in(c, k);
        if (v >= 0 && !c->vals[v].is_const && c->vals[v].is_int && first < 0) first = (int)k;
    }
    if (first < 0) return SG_OK;
    /* indices that pick (GatherElements; its data keep what they are) or one-hot encode;
       integers ranked (TopK) or summed along an axis (CumSum: its own bound) */
    if (!strcmp(op, "GatherElements") || !strcmp(op, "OneHot") || !strcmp(op, "TopK") ||
        !strcmp(op, "CumSum"))
        return SG_OK;
    *any = true;
    const bool moves = in_list(op, int_moves, sizeof int_moves / sizeof int_moves[0]);
    const bool arith = in_list(op, int_arith, sizeof int_arith / sizeof int_arith[0]);
    if (!moves && !arith)
        return ox_node_err(
            c, err, SG_EINPUT,
            "input %d ('%.100s') is integer rows (int64 per row), which stagegate "
            "reads only in Cast, ReduceSum, ReduceMax, ReduceMin, ArgMax, ArgMin, "
            "Add, Sub, Mul, Mod, Clip, CumSum, TopK, the comparisons, the indices of "
            "Gather and GatherElements, OneHot and the nodes that move elements",
            first, c->vals[ox_in(c, (size_t)first)].name);
    if (!strcmp(op, "Gather") && first == 1) return SG_OK; /* an embedding's indices */
    for (size_t k = 0; k < c->node->n_input; k++) {
        const int v = ox_in(c, k);
        if (v < 0 || (k > 0 && moves && strcmp(op, "Concat"))) continue;
        const ox_value *x = &c->vals[v];
        if (!x->is_const ? !x->is_int
                         : (!moves && (x->dtype != OX_INT64 || x->batch_mask ||
                                       const_bound(x) > OX_MAX_EXACT)))
            return ox_node_err(c, err, SG_EINPUT,
                               "input %zu ('%.100s') is %s, with integer rows: stagegate takes "
                               "integer rows with integer rows and int64 constants of magnitude "
                               "at most 2^24",
                               k, x->name,
                               !x->is_const           ? "float rows"
                               : x->dtype != OX_INT64 ? "a float constant"
                                                      : "an integer constant out of that range");
    }
    return SG_OK;
}

/* After a node that computed integers (Add, Sub, Mul, the reductions, Concat): its per-row
   results are integer rows, with the largest magnitude they can reach, which must stay exact
   in float. */
static sg_status int_outputs(ox_ctx *c, const char *op, int first_new, sg_err *err)
{
    int64_t b[4] = {0};
    size_t n = c->node->n_input < 4 ? c->node->n_input : 4;
    int64_t in_count = 1;
    for (size_t k = 0; k < n; k++) {
        const int v = ox_in(c, k);
        if (v < 0) continue;
        const ox_value *x = &c->vals[v];
        b[k] = x->is_const ? (x->dtype == OX_INT64 ? const_bound(x) : 0) : x->int_bound;
        if (k == 0 && !x->is_const) in_count = x->count;
    }
    int64_t bound;
    if (!strcmp(op, "Add") || !strcmp(op, "Sub")) /* (a cast float's bound is INT64_MAX) */
        bound = b[0] > OX_MAX_EXACT || b[1] > OX_MAX_EXACT ? OX_MAX_EXACT + 1 : b[0] + b[1];
    else if (!strcmp(op, "Mul"))
        bound = b[0] > 0 && b[1] > OX_MAX_EXACT / b[0] ? OX_MAX_EXACT + 1 : b[0] * b[1];
    else if (!strcmp(op, "Mod")) /* smaller than the divisor, whatever the dividend (a hash) */
        bound = b[1];
    else if (!strcmp(op, "Concat"))
        bound = b[0] > b[1] ? b[0] : b[1];
    else if (!strcmp(op, "ReduceMax") || !strcmp(op, "ReduceMin"))
        bound = b[0];
    else if (!strcmp(op, "Clip")) { /* within its bounds: both given bound it alone */
        const bool lo = ox_in(c, 1) >= 0, hi = ox_in(c, 2) >= 0;
        bound = lo && hi ? (b[1] > b[2] ? b[1] : b[2]) : (b[0] > b[1] + b[2] ? b[0] : b[1] + b[2]);
    } else if (!strcmp(op, "ReduceSum")) {
        const int64_t out_count = c->n_vals > first_new ? c->vals[c->n_vals - 1].count : 1;
        const int64_t terms = out_count > 0 ? in_count / out_count : in_count;
        bound = b[0] > 0 && terms > OX_MAX_EXACT / b[0] ? OX_MAX_EXACT + 1 : b[0] * terms;
    } else {
        return SG_OK; /* moved elements keep their bound; comparisons are conditions */
    }
    if (!strcmp(op, "Concat"))
        for (size_t k = 2; k < c->node->n_input; k++)
            if (ox_in(c, k) >= 0 && c->vals[ox_in(c, k)].int_bound > bound)
                bound = c->vals[ox_in(c, k)].int_bound;
    if (bound > OX_MAX_EXACT)
        return ox_node_err(c, err, SG_EINPUT,
                           "integer rows could exceed 2^24 here, past the integers a float holds "
                           "exactly (bound the integers first, e.g. x.long().clamp(0, n - 1) "
                           "before an offset is added)");
    for (int v = first_new; v < c->n_vals; v++)
        if (!c->vals[v].is_const && !c->vals[v].is_bool) {
            c->vals[v].is_int = true;
            c->vals[v].int_bound = bound;
        }
    return SG_OK;
}

/* The nodes that only move elements give what they read: a condition, integers or floats
   cast to double stay so, whichever way a node compiler made its output. */
static void keep_kind(ox_ctx *c, const char *op, int first_new)
{
    static const char *const moves[] = {"Reshape",  "Flatten",   "Squeeze", "Unsqueeze",
                                        "Identity", "Transpose", "Expand",  "Slice",
                                        "Gather",   "Tile",      "Split",   "Dropout"};
    const int x = ox_in(c, 0);
    if (x < 0 || c->vals[x].is_const || !in_list(op, moves, sizeof moves / sizeof moves[0])) return;
    const ox_value in = c->vals[x];
    for (int v = first_new; v < c->n_vals; v++) {
        ox_value *o = &c->vals[v];
        if (o->is_const) continue;
        o->is_bool = in.is_bool;
        o->is_double = in.is_double;
        o->is_int = in.is_int;
        o->int_bound = in.int_bound;
        o->fbound = in.fbound;
    }
}

/* After a node on float rows: the magnitude bound its outputs keep (ox_value.fbound), from
   its inputs' (a condition cast to float is within 1, integer rows cast to float within their
   bound): sums of bounded terms (ReduceSum, Add, Sub), products (Mul), and what stays within
   its input's (ReduceMean, ReduceMax, ReduceMin). A sum of 0/1 conditions in float, cast to
   int64 (PyTorch's count of a mask), is then integer rows of known magnitude. */
static void float_bounds(ox_ctx *c, const char *op, int first_new)
{
    static const char *const keeps[] = {"ReduceMean", "ReduceMax", "ReduceMin"};
    const bool sum = !strcmp(op, "ReduceSum"), add = !strcmp(op, "Add") || !strcmp(op, "Sub"),
               mul = !strcmp(op, "Mul"), keep = in_list(op, keeps, 3);
    if (!sum && !add && !mul && !keep) return;
    double b = mul ? 1 : 0;
    const size_t n = sum || keep ? 1 : c->node->n_input;
    for (size_t k = 0; k < n; k++) {
        const int v = ox_in(c, k);
        if (v < 0) return;
        const ox_value *x = &c->vals[v];
        double bk = 0;
        if (x->is_const) {
            if (x->dtype != OX_FLOAT) return;
            for (int64_t j = 0; j < x->count; j++)
                bk = fmax(bk, fabs((double)x->f[j]));
        } else {
            if (x->is_int || x->is_bool || x->is_double || !(x->fbound > 0)) return;
            bk = x->fbound;
        }
        b = mul ? b * bk : add ? b + bk : bk;
    }
    for (int v = first_new; v < c->n_vals; v++) {
        ox_value *o = &c->vals[v];
        if (o->is_const || o->is_int || o->is_bool) continue;
        double ob = b;
        if (sum) ob *= (double)c->vals[ox_in(c, 0)].count / (double)o->count;
        o->fbound = ob > 0 && ob < 1e30 ? (float)ob : 0;
    }
}

int ox_compile_node(ox_ctx *c, sg_err *err)
{
    const char *op = c->node->op_type;
    sg_status arc = check_schema(c, err);
    if (arc != SG_OK) return arc;
    if ((arc = batch_size_inputs(c, op, err)) != SG_OK) return arc;
    if ((arc = bool_inputs(c, op, err)) != SG_OK) return arc;
    bool ints;
    if ((arc = int_inputs(c, op, &ints, err)) != SG_OK) return arc;
    ox_placed_state st;
    const int first_new = c->n_vals;
    arc = ox_placed_begin(c, op, &st, err);
    if (arc == SG_OK && !st.done) arc = compile_op(c, op, err);
    if (arc == SG_OK && ints) arc = int_outputs(c, op, first_new, err);
    if (arc == SG_OK) keep_kind(c, op, first_new);
    if (arc == SG_OK && !ints) float_bounds(c, op, first_new);
    ox_placed_end(c, &st, arc);
    return arc;
}

bool ox_is_unary(const char *op)
{
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++)
        if (!strcmp(op, unary_ops[i].op)) return true;
    return false;
}

static int compile_op(ox_ctx *c, const char *op, sg_err *err)
{
    if (c->node->domain && !strcmp(c->node->domain, OX_ML_DOMAIN)) return ox_compile_ml(c, err);
    if (!strcmp(op, "Gemm")) return ox_op_gemm(c, false, err);
    if (!strcmp(op, "MatMul")) return ox_op_gemm(c, true, err);
    if (!strcmp(op, "Add")) return op_binary(c, SG_OXB_ADD, err);
    if (!strcmp(op, "Sub")) return op_binary(c, SG_OXB_SUB, err);
    if (!strcmp(op, "Mul")) return op_binary(c, SG_OXB_MUL, err);
    if (!strcmp(op, "Div")) return op_binary(c, SG_OXB_DIV, err);
    if (!strcmp(op, "Mod")) return op_mod(c, err);
    if (!strcmp(op, "Pow")) return op_binary(c, SG_OXB_POW, err);
    if (!strcmp(op, "PRelu")) return op_prelu(c, err);
    if (!strcmp(op, "Max")) return op_chain(c, SG_OXB_MAX, "Max", false, err);
    if (!strcmp(op, "Min")) return op_chain(c, SG_OXB_MIN, "Min", false, err);
    if (!strcmp(op, "Sum")) return op_chain(c, SG_OXB_ADD, "Sum", false, err);
    if (!strcmp(op, "Mean")) return op_chain(c, SG_OXB_ADD, "Mean", true, err);
    if (!strcmp(op, "Clip")) return op_clip(c, err);
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++)
        if (!strcmp(op, unary_ops[i].op)) return op_unary(c, i, err);
    if (!strcmp(op, "Softmax")) return ox_op_softmax(c, false, err);
    if (!strcmp(op, "LogSoftmax")) return ox_op_softmax(c, true, err);
    if (!strcmp(op, "BatchNormalization")) return ox_op_batchnorm(c, err);
    if (!strcmp(op, "LayerNormalization")) return ox_op_layernorm(c, err);
    if (!strcmp(op, "ReduceMean")) return ox_op_reduce_mean(c, err);
    static const struct {
        const char *op;
        sg_onnx_reduce kind;
    } reductions[] = {
        {"ReduceSum", SG_OXR_SUM},   {"ReduceSumSquare", SG_OXR_SUM_SQUARE},
        {"ReduceL1", SG_OXR_L1},     {"ReduceL2", SG_OXR_L2},
        {"ReduceMax", SG_OXR_MAX},   {"ReduceMin", SG_OXR_MIN},
        {"ReduceProd", SG_OXR_PROD}, {"ReduceLogSumExp", SG_OXR_LOG_SUM_EXP},
    };
    for (size_t i = 0; i < sizeof reductions / sizeof reductions[0]; i++)
        if (!strcmp(op, reductions[i].op)) return ox_op_reduce(c, reductions[i].kind, err);
    if (!strcmp(op, "Slice")) return ox_op_slice(c, err);
    if (!strcmp(op, "Flatten")) return ox_op_flatten(c, err);
    if (!strcmp(op, "Reshape")) return ox_op_reshape(c, err);
    if (!strcmp(op, "Squeeze")) return ox_op_squeeze(c, false, err);
    if (!strcmp(op, "Unsqueeze")) return ox_op_squeeze(c, true, err);
    if (!strcmp(op, "Identity")) return ox_op_identity(c, err);
    if (!strcmp(op, "Dropout")) return ox_op_dropout(c, err);
    if (!strcmp(op, "Constant")) return ox_op_constant(c, err);
    if (!strcmp(op, "Cast")) return ox_op_cast(c, err);
    if (!strcmp(op, "Concat")) return ox_op_concat(c, err);
    if (!strcmp(op, "Shape")) return ox_op_shape(c, err);
    if (!strcmp(op, "Gather")) return ox_op_gather(c, err);
    if (!strcmp(op, "Transpose")) return ox_op_transpose(c, err);
    if (!strcmp(op, "Expand")) return ox_op_expand(c, err);
    if (!strcmp(op, "Tile")) return ox_op_tile(c, err);
    if (!strcmp(op, "Split")) return ox_op_split(c, err);
    if (!strcmp(op, "ConstantOfShape")) return ox_op_constant_of_shape(c, err);
    if (!strcmp(op, "Equal")) return op_compare(c, OX_EQ, err);
    if (!strcmp(op, "Greater")) return op_compare(c, OX_GT, err);
    if (!strcmp(op, "Less")) return op_compare(c, OX_LT, err);
    if (!strcmp(op, "GreaterOrEqual")) return op_compare(c, OX_GE, err);
    if (!strcmp(op, "LessOrEqual")) return op_compare(c, OX_LE, err);
    if (!strcmp(op, "Not")) return op_not(c, err);
    if (!strcmp(op, "Where")) return op_where(c, err);
    if (!strcmp(op, "And")) return op_logic(c, true, err);
    if (!strcmp(op, "IsNaN")) return op_is(c, SG_OXU_ISNAN, err);
    if (!strcmp(op, "IsInf")) return op_is(c, SG_OXU_ISINF, err);
    if (!strcmp(op, "Or")) return op_logic(c, false, err);
    if (!strcmp(op, "If")) return op_if(c, err);
    if (!strcmp(op, "ArgMax")) return ox_op_argmax(c, true, err);
    if (!strcmp(op, "ArgMin")) return ox_op_argmax(c, false, err);
    if (!strcmp(op, "Einsum")) return ox_op_einsum(c, err);
    if (!strcmp(op, "InstanceNormalization")) return ox_op_instancenorm(c, err);
    if (!strcmp(op, "Conv")) return ox_op_conv(c, err);
    if (!strcmp(op, "MaxPool")) return ox_op_pool(c, true, err);
    if (!strcmp(op, "AveragePool")) return ox_op_pool(c, false, err);
    if (!strcmp(op, "GlobalAveragePool")) return ox_op_global_pool(c, false, err);
    if (!strcmp(op, "GlobalMaxPool")) return ox_op_global_pool(c, true, err);
    if (!strcmp(op, "Pad")) return ox_op_pad(c, err);
    if (!strcmp(op, "CumSum")) return ox_op_cumsum(c, err);
    if (!strcmp(op, "TopK")) return ox_op_topk(c, err);
    if (!strcmp(op, "GatherElements")) return ox_op_gather_elements(c, err);
    if (!strcmp(op, "OneHot")) return ox_op_onehot(c, err);
    if (!strcmp(op, "Range")) return ox_op_range(c, err);
    if (!strcmp(op, "EyeLike")) return ox_op_eyelike(c, err);
    if (!strcmp(op, "Size")) return ox_op_size(c, err);
    if (!strcmp(op, "LSTM") || !strcmp(op, "GRU")) {
        int outs[3];
        return ox_op_rnn(c, op[0] == 'G', false, outs, err);
    }
    return ox_node_err(c, err, SG_EINPUT, "unsupported operator %.40s; supported: %s", op,
                       ox_supported_ops());
}
