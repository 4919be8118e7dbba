/*
 * The last compiler passes: decide what the output means, fuse (PyTorch's GELU and
 * LayerNorm decompositions into one step each; Add, Sub, Mul, Div by constants,
 * BatchNormalization and an activation into the GEMM before them), turn a pure MLP chain
 * into sg_model's dense layers, and otherwise assign buffers once by liveness.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

int sg_onnx_output_parse(const char *s)
{
    for (int i = SG_ONNX_OUTPUT_LOGITS; i <= SG_ONNX_OUTPUT_VALUE; i++)
        if (strcmp(s, sg_onnx_output_name((sg_onnx_output)i)) == 0) return i;
    return -1;
}

const char *sg_onnx_output_name(sg_onnx_output o)
{
    switch (o) {
    case SG_ONNX_OUTPUT_LOGITS:
        return "logits";
    case SG_ONNX_OUTPUT_PROBA:
        return "proba";
    case SG_ONNX_OUTPUT_VALUE:
        return "value";
    default:
        return "auto";
    }
}

static void free_step(sg_onnx_step *s)
{
    sg_free_aligned(s->W);
    sg_free_aligned(s->b);
    sg_free_aligned(s->scale);
    sg_free_aligned(s->shift);
    if (s->a.kind == SG_OXA_CONST) sg_free_aligned((void *)s->a.value);
    if (s->bb.kind == SG_OXA_CONST) sg_free_aligned((void *)s->bb.value);
    if (s->cc.kind == SG_OXA_CONST) sg_free_aligned((void *)s->cc.value);
    free(s->parts);
    free(s->part_width);
    free(s->cols);
    sg_tree_ensemble_free(s->trees);
    memset(s, 0, sizeof *s);
}

void sg_onnx_plan_free_steps(sg_onnx_plan *p)
{
    for (int i = 0; i < p->n_steps; i++)
        free_step(&p->steps[i]);
    free(p->steps);
    p->steps = NULL;
    p->n_steps = 0;
}

void sg_onnx_plan_free(sg_onnx_plan *p)
{
    if (!p) return;
    sg_onnx_plan_free_steps(p);
    free(p->stage);
    free(p);
}

static float *dup_floats(const float *src, size_t n)
{
    if (!src) return NULL;
    float *p = sg_alloc_aligned(n * sizeof(float));
    if (p) memcpy(p, src, n * sizeof(float));
    return p;
}

sg_status sg_onnx_plan_clone(const sg_onnx_plan *src, sg_onnx_plan **out, sg_err *err)
{
    *out = NULL;
    sg_onnx_plan *p = malloc(sizeof *p);
    if (!p) return sg_errf(err, SG_ENOMEM, "out of memory cloning an ONNX plan");
    *p = *src;
    p->steps = src->n_steps ? calloc((size_t)src->n_steps, sizeof *p->steps) : NULL;
    p->stage = src->n_stages ? calloc((size_t)src->n_stages, sizeof *p->stage) : NULL;
    p->n_steps = 0;
    bool ok = (p->steps || !src->n_steps) && (p->stage || !src->n_stages);
    if (ok && src->n_stages) memcpy(p->stage, src->stage, (size_t)src->n_stages * sizeof *p->stage);
    for (int i = 0; ok && i < src->n_steps; i++) {
        const sg_onnx_step *s = &src->steps[i];
        sg_onnx_step *d = &p->steps[i];
        *d = *s;
        d->W = d->b = d->scale = d->shift = NULL;
        d->parts = d->part_width = d->cols = NULL;
        d->trees = NULL;
        if (s->a.kind == SG_OXA_CONST) d->a.value = NULL;
        if (s->bb.kind == SG_OXA_CONST) d->bb.value = NULL;
        if (s->cc.kind == SG_OXA_CONST) d->cc.value = NULL;
        p->n_steps = i + 1;
        size_t w = (size_t)s->width;
        if (s->W && !(d->W = dup_floats(s->W, sg_onnx_w_floats(s)))) ok = false;
        if (s->b && !(d->b = dup_floats(s->b, w))) ok = false;
        if (s->scale && !(d->scale = dup_floats(s->scale, w))) ok = false;
        if (s->shift && !(d->shift = dup_floats(s->shift, w))) ok = false;
        if (s->a.kind == SG_OXA_CONST && !(d->a.value = dup_floats(s->a.value, w))) ok = false;
        if (s->bb.kind == SG_OXA_CONST && !(d->bb.value = dup_floats(s->bb.value, w))) ok = false;
        if (s->cc.kind == SG_OXA_CONST && !(d->cc.value = dup_floats(s->cc.value, w))) ok = false;
        if (s->trees && sg_tree_ensemble_clone(s->trees, &d->trees, err) != SG_OK) {
            sg_onnx_plan_free(p);
            return SG_ENOMEM;
        }
        if (s->cols) {
            if ((d->cols = malloc(w * sizeof(int))) != NULL)
                memcpy(d->cols, s->cols, w * sizeof(int));
            else
                ok = false;
        }
        if (s->parts) {
            d->parts = malloc((size_t)s->n_parts * sizeof(int));
            d->part_width = malloc((size_t)s->n_parts * sizeof(int));
            if (d->parts && d->part_width) {
                memcpy(d->parts, s->parts, (size_t)s->n_parts * sizeof(int));
                memcpy(d->part_width, s->part_width, (size_t)s->n_parts * sizeof(int));
            } else {
                ok = false;
            }
        }
    }
    if (!ok) {
        sg_onnx_plan_free(p);
        return sg_errf(err, SG_ENOMEM, "out of memory cloning an ONNX plan");
    }
    *out = p;
    return SG_OK;
}

/* ---- the passes work on c->steps with value indices, dead steps marked ---- */

typedef struct {
    ox_ctx *c;
    bool *dead;
    int *uses;     /* per value index */
    int *consumer; /* per value index: the last live step that reads it */
} pass;

static int step_inputs(const sg_onnx_step *s, int *ids, int max)
{
    int n = 0;
    switch (s->kind) {
    case SG_OX_WHERE:
        if (s->cc.kind != SG_OXA_CONST) ids[n++] = s->cc.buf;
        /* fall through */
    case SG_OX_MATMUL_ROWS:
    case SG_OX_GATHER_ROWS:
    case SG_OX_BINARY:
        if (s->a.kind != SG_OXA_CONST) ids[n++] = s->a.buf;
        if (s->bb.kind != SG_OXA_CONST) ids[n++] = s->bb.buf;
        break;
    case SG_OX_CONCAT:
        for (int k = 0; k < s->n_parts && n < max; k++)
            ids[n++] = s->parts[k];
        break;
    default:
        ids[n++] = s->in;
    }
    return n;
}

static void count_uses(pass *p)
{
    ox_ctx *c = p->c;
    for (int v = 0; v < c->n_vals; v++) {
        p->uses[v] = 0;
        p->consumer[v] = -1;
    }
    for (int i = 0; i < c->n_steps; i++) {
        if (p->dead[i]) continue;
        int ids[4096];
        int n = step_inputs(&c->steps[i], ids, 4096);
        for (int k = 0; k < n; k++)
            if (ids[k] >= 0) {
                p->uses[ids[k]]++;
                p->consumer[ids[k]] = i;
            }
    }
    p->uses[c->vals[c->output].data]++;
}

/* The one live step reading value v, or NULL. */
static sg_onnx_step *sole(pass *p, int v)
{
    if (v < 0 || p->uses[v] != 1 || p->consumer[v] < 0) return NULL;
    return &p->c->steps[p->consumer[v]];
}

static bool const_all(const sg_onnx_arg *a, int w, float want, float tol)
{
    if (a->kind != SG_OXA_CONST) return false;
    for (int j = 0; j < w; j++)
        if (fabsf(a->value[j] - want) > tol) return false;
    return true;
}

/* A binary step with operand `v` as a row and a constant on the other side; *vfirst says
   which side v is on. */
static const sg_onnx_arg *row_and_const(const sg_onnx_step *s, int v, bool *vfirst)
{
    if (s->kind != SG_OX_BINARY) return NULL;
    if (s->a.kind == SG_OXA_ROW && s->a.buf == v && s->bb.kind == SG_OXA_CONST) {
        *vfirst = true;
        return &s->bb;
    }
    if (s->bb.kind == SG_OXA_ROW && s->bb.buf == v && s->a.kind == SG_OXA_CONST) {
        *vfirst = false;
        return &s->a;
    }
    return NULL;
}

static void join_name(sg_onnx_step *into, const sg_onnx_step *from)
{
    char n[2 * SG_ONNX_NAME + 2];
    snprintf(n, sizeof n, "%s+%s", into->name, from->name);
    memcpy(into->name, n, SG_ONNX_NAME - 1);
    into->name[SG_ONNX_NAME - 1] = '\0';
}

/* Step t becomes a new step of kind k reading x; `first` names the fused group. */
static void replace(pass *p, sg_onnx_step *t, const sg_onnx_step *first, sg_onnx_step_kind k, int x,
                    int width)
{
    int out = t->out;
    char name[SG_ONNX_NAME];
    snprintf(name, sizeof name, "%s", first->name);
    free_step(t);
    t->kind = k;
    t->in = x;
    t->in_width = t->width = width;
    t->out = out;
    snprintf(t->name, sizeof t->name, "%s", name);
    (void)p;
}

/* PyTorch's GELU below opset 20: Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5). */
static int fuse_gelu(pass *p, int i)
{
    ox_ctx *c = p->c;
    sg_onnx_step *s1 = &c->steps[i];
    bool f;
    const sg_onnx_arg *k = row_and_const(s1, s1->a.buf, &f);
    if (!k || !f || s1->a.kind != SG_OXA_ROW) return 0;
    int x = s1->a.buf, w = s1->width;
    if (!((s1->binary == SG_OXB_DIV && const_all(k, w, 1.4142135f, 1e-5f)) ||
          (s1->binary == SG_OXB_MUL && const_all(k, w, 0.70710678f, 1e-6f))))
        return 0;
    sg_onnx_step *s2 = sole(p, s1->out);
    if (!s2 || s2->kind != SG_OX_UNARY || s2->unary != SG_OXU_ERF) return 0;
    sg_onnx_step *s3 = sole(p, s2->out);
    if (!s3 || !(k = row_and_const(s3, s2->out, &f)) || s3->binary != SG_OXB_ADD ||
        !const_all(k, w, 1.0f, 0))
        return 0;
    sg_onnx_step *s4 = sole(p, s3->out);
    if (!s4 || s4->kind != SG_OX_BINARY || s4->binary != SG_OXB_MUL || s4->a.kind != SG_OXA_ROW ||
        s4->bb.kind != SG_OXA_ROW ||
        !((s4->a.buf == x && s4->bb.buf == s3->out) || (s4->bb.buf == x && s4->a.buf == s3->out)))
        return 0;
    sg_onnx_step *s5 = sole(p, s4->out);
    if (!s5 || !(k = row_and_const(s5, s4->out, &f)) || s5->binary != SG_OXB_MUL ||
        !const_all(k, w, 0.5f, 0))
        return 0;
    char name[SG_ONNX_NAME];
    snprintf(name, sizeof name, "%s", s1->name);
    for (sg_onnx_step *d = s1; d != s5; d = sole(p, d->out))
        p->dead[d - c->steps] = true;
    sg_onnx_step tmp = {0};
    snprintf(tmp.name, sizeof tmp.name, "%.40s(GELU)", name);
    replace(p, s5, &tmp, SG_OX_GELU, x, w);
    return 1;
}

/* PyTorch's LayerNorm below opset 17: d = x - ReduceMean(x); d / Sqrt(ReduceMean(d^2) + eps),
   then optionally Mul by the weight and Add the bias. */
static int fuse_layernorm(pass *p, int i)
{
    ox_ctx *c = p->c;
    sg_onnx_step *m1 = &c->steps[i];
    if (m1->kind != SG_OX_MEAN || sg_onnx_groups(m1) > 1) return 0;
    int x = m1->in, w = m1->in_width;
    sg_onnx_step *s = sole(p, m1->out);
    if (!s || s->kind != SG_OX_BINARY || s->binary != SG_OXB_SUB || s->a.kind != SG_OXA_ROW ||
        s->a.buf != x || s->bb.kind != SG_OXA_COL || s->bb.buf != m1->out || s->width != w)
        return 0;
    if (p->uses[s->out] != 2) return 0;
    sg_onnx_step *pw = NULL, *dv = NULL;
    for (int j = 0; j < c->n_steps; j++) {
        sg_onnx_step *t = &c->steps[j];
        if (p->dead[j]) continue;
        if (t->kind == SG_OX_UNARY && t->unary == SG_OXU_POW && t->alpha == 2.0f && t->in == s->out)
            pw = t;
        if (t->kind == SG_OX_BINARY && t->binary == SG_OXB_DIV && t->a.kind == SG_OXA_ROW &&
            t->a.buf == s->out && t->bb.kind == SG_OXA_COL)
            dv = t;
    }
    if (!pw || !dv) return 0;
    sg_onnx_step *m2 = sole(p, pw->out);
    if (!m2 || m2->kind != SG_OX_MEAN) return 0;
    sg_onnx_step *ad = sole(p, m2->out);
    bool f;
    const sg_onnx_arg *eps = ad ? row_and_const(ad, m2->out, &f) : NULL;
    if (!eps || ad->binary != SG_OXB_ADD || ad->width != 1) return 0;
    sg_onnx_step *sq = sole(p, ad->out);
    if (!sq || sq->kind != SG_OX_UNARY || sq->unary != SG_OXU_SQRT || sole(p, sq->out) != dv ||
        dv->bb.buf != sq->out)
        return 0;
    float e = eps->value[0];
    sg_onnx_step *last = dv, *mul = sole(p, dv->out), *add = NULL;
    const sg_onnx_arg *g = mul ? row_and_const(mul, dv->out, &f) : NULL;
    if (g && mul->binary == SG_OXB_MUL && mul->width == w) {
        last = mul;
        add = sole(p, mul->out);
        const sg_onnx_arg *bb = add ? row_and_const(add, mul->out, &f) : NULL;
        if (bb && add->binary == SG_OXB_ADD && add->width == w)
            last = add;
        else
            add = NULL;
    } else {
        mul = NULL;
    }
    float *scale = sg_alloc_aligned((size_t)w * sizeof(float));
    float *shift = sg_alloc_aligned((size_t)w * sizeof(float));
    if (!scale || !shift) {
        sg_free_aligned(scale);
        sg_free_aligned(shift);
        return -1;
    }
    for (int j = 0; j < w; j++) {
        scale[j] = mul ? g->value[j] : 1.0f;
        shift[j] = add ? (add->a.kind == SG_OXA_CONST ? add->a.value : add->bb.value)[j] : 0.0f;
    }
    sg_onnx_step *group[] = {m1, s, pw, m2, ad, sq, dv, mul, add};
    for (size_t k = 0; k < sizeof group / sizeof group[0]; k++)
        if (group[k] && group[k] != last) p->dead[group[k] - c->steps] = true;
    sg_onnx_step tmp = {0};
    snprintf(tmp.name, sizeof tmp.name, "%.30s(LayerNorm)", m1->name);
    replace(p, last, &tmp, SG_OX_LAYERNORM, x, w);
    last->scale = scale;
    last->shift = shift;
    last->eps = e;
    return 1;
}

/* Whether GEMM g's weights and bias can take column scales f[j] and shifts a[j] (bias
 * b·f + a, weights W·f) and still compute what the unfolded graph does, (x·W + b)·f + a,
 * up to rounding: every product finite, and no non-zero weight or bias lost to underflow.
 * A product past the float range (W·1e38 = inf, W / 0) or below it had been folded in, and
 * the GEMM summed inf against finite terms: a tanh of -1 where ONNX gives +1, or a NaN
 * refused as output, for graphs the unfolded steps compute exactly. */
static bool fold_exact(const sg_onnx_step *g, const float *f, const float *a)
{
    const int w = g->width, k = g->in_width;
    for (int j = 0; j < w; j++) {
        float fj = f ? f[j] : 1.0f, bf = g->b[j] * fj;
        if (!isfinite(bf) || (g->b[j] != 0 && fabsf(bf) < FLT_MIN) ||
            !isfinite(bf + (a ? a[j] : 0.0f)))
            return false;
        for (int i = 0; f && i < k; i++) {
            float wi = g->W[(size_t)i * (size_t)w + (size_t)j], p = wi * fj;
            if (!isfinite(p) || (wi != 0 && fabsf(p) < FLT_MIN)) return false;
        }
    }
    return true;
}

/* Folds column scales f (NULL: none) and shifts a (NULL: none) into GEMM g where fold_exact
   allows: bias b·f + a, weights W·f. false, and g unchanged, where it does not. */
static bool fold_affine(sg_onnx_step *g, const float *f, const float *a)
{
    if (!fold_exact(g, f, a)) return false;
    const int w = g->width, k = g->in_width;
    for (int j = 0; j < w; j++) {
        if (f && a) /* as one expression, as the BatchNormalization fold always was */
            g->b[j] = g->b[j] * f[j] + a[j];
        else if (f)
            g->b[j] *= f[j];
        else if (a)
            g->b[j] += a[j];
        for (int i = 0; f && i < k; i++)
            g->W[(size_t)i * (size_t)w + (size_t)j] *= f[j];
    }
    return true;
}

/* Folds the sole consumer of GEMM g's output into g when it is linear in it (constant add,
   subtract, multiply, divide, BatchNormalization) or, once, an activation. */
static int fuse_into_gemm(pass *p, sg_onnx_step *g)
{
    sg_onnx_step *t = sole(p, g->out);
    if (!t || g->act != SG_ACT_IDENTITY) return 0;
    const int w = g->width;
    bool first;
    /* A GEMM over the vectors of a row (groups > 1) has one bias for all of them; the
       consumer's constants and scales are per value of the row, so only an activation
       folds in. */
    const bool grouped = sg_onnx_groups(g) > 1;
    const sg_onnx_arg *cst = grouped ? NULL : row_and_const(t, g->out, &first);
    if (cst && t->width == w) {
        /* Every constant step is a column scale f and shift a: x + v, x - v, x * v, x / v
           (the constant on the right, or either side of + and *). */
        const float *v = cst->value;
        const sg_onnx_binary op = t->binary;
        if (op != SG_OXB_ADD && op != SG_OXB_SUB && op != SG_OXB_MUL && op != SG_OXB_DIV) return 0;
        if (!first && (op == SG_OXB_SUB || op == SG_OXB_DIV)) return 0;
        float *made = NULL;
        if (op == SG_OXB_SUB || op == SG_OXB_DIV) {
            if (!(made = malloc((size_t)w * sizeof *made))) return 0;
            for (int j = 0; j < w; j++)
                made[j] = op == SG_OXB_SUB ? -v[j] : 1.0f / v[j];
        }
        const float *f = op == SG_OXB_MUL ? v : op == SG_OXB_DIV ? made : NULL;
        const float *sh = op == SG_OXB_ADD ? v : op == SG_OXB_SUB ? made : NULL;
        bool folded = fold_affine(g, f, sh);
        free(made);
        if (!folded) return 0;
    } else if (!grouped && t->kind == SG_OX_AFFINE && t->in == g->out) {
        if (!fold_affine(g, t->scale, t->shift)) return 0;
    } else if (t->kind == SG_OX_UNARY && t->in == g->out &&
               (t->unary == SG_OXU_RELU || t->unary == SG_OXU_TANH || t->unary == SG_OXU_SIGMOID)) {
        g->act = t->unary == SG_OXU_RELU   ? SG_ACT_RELU
                 : t->unary == SG_OXU_TANH ? SG_ACT_TANH
                                           : SG_ACT_LOGISTIC;
    } else {
        return 0;
    }
    join_name(g, t);
    p->dead[t - p->c->steps] = true;
    g->out = t->out;
    free_step(t);
    return 1;
}

/* ---- output meaning ---- */

/* The graph output's declared type and shape, where given, must be what the graph computes:
 * float, and each fixed dimension after the batch equal to the computed one. An output
 * declared INT64, or [batch, 5] over a computed [batch, 1], had been evaluated as computed:
 * a runtime that trusts the declaration reads another model. */
static int declared_output(const ox_ctx *c, const ox_value *ov, sg_err *err)
{
    const Onnx__ValueInfoProto *vi = c->mp->graph->output[c->output_index];
    const Onnx__TypeProto *t = vi->type;
    if (!t) return SG_OK;
    if (ov->ml_zipmap) {
        /* ZipMap's sequence of maps from the int64 classes to float probabilities */
        const Onnx__TypeProto *e =
            t->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE && t->sequence_type
                ? t->sequence_type->elem_type
                : NULL;
        const Onnx__TypeProto__Map *mt =
            e && e->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE ? e->map_type : NULL;
        const Onnx__TypeProto *vt = mt ? mt->value_type : NULL;
        if (!mt || (mt->has_key_type && mt->key_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64) ||
            (vt && (vt->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vt->tensor_type ||
                    (vt->tensor_type->has_elem_type &&
                     vt->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT))))
            return sg_errf(err, SG_EINPUT,
                           "%s: graph output '%.100s' (ZipMap's) is not declared a sequence of "
                           "maps from int64 to float",
                           c->path, ov->name);
        return SG_OK;
    }
    if (t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return sg_errf(err, SG_EINPUT, "%s: graph output '%.100s' is not declared a tensor",
                       c->path, ov->name);
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return sg_errf(err, SG_EINPUT,
                       "%s: graph output '%.100s' is declared with element type %s (%d); the "
                       "graph computes float (1)",
                       c->path, ov->name, ox_type_name(tt->elem_type), (int)tt->elem_type);
    if (!tt->shape) return SG_OK;
    char got[96];
    int n = snprintf(got, sizeof got, "[batch");
    for (int i = 0; i < ov->rank && n < (int)sizeof got; i++)
        n += snprintf(got + n, sizeof got - (size_t)n, ", %lld", (long long)ov->dims[i]);
    if (n < (int)sizeof got) snprintf(got + n, sizeof got - (size_t)n, "]");
    if (tt->shape->n_dim != (size_t)ov->rank + 1)
        return sg_errf(err, SG_EINPUT,
                       "%s: graph output '%.100s' is declared with %zu dimensions; the graph "
                       "computes %s",
                       c->path, ov->name, tt->shape->n_dim, got);
    for (size_t i = 1; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value != ov->dims[i - 1])
            return sg_errf(err, SG_EINPUT,
                           "%s: graph output '%.100s' dimension %zu is declared %lld; the graph "
                           "computes %s",
                           c->path, ov->name, i, (long long)d->dim_value, got);
    }
    return SG_OK;
}

static int meaning(ox_ctx *c, pass *p, sg_model *m, sg_onnx_plan *plan, sg_err *err)
{
    int od = c->vals[c->output].data;
    const ox_value *ov = &c->vals[c->output];
    int width = (int)ov->count;
    int last = c->vals[od].producer;
    const sg_onnx_step *ls = last >= 0 && !p->dead[last] ? &c->steps[last] : NULL;
    const char *ends = NULL;
    /* A softmax per vector of a row (groups > 1, then flattened) gives no one probability
       vector: not "ends in Softmax" (it had been replaced by one softmax over the whole row).
       What its output means is then said as for any other graph. */
    if (ls && p->uses[od] == 1 && sg_onnx_groups(ls) <= 1) {
        if (ls->kind == SG_OX_SOFTMAX) ends = "Softmax";
        if (ls->kind == SG_OX_LOGSOFTMAX) ends = "LogSoftmax";
        if (ls->kind == SG_OX_UNARY && ls->unary == SG_OXU_SIGMOID) ends = "Sigmoid";
    }
    if (ox_placed(ov)) {
        int64_t d[OX_MAX_RANK + 1], f;
        char shape[160];
        ox_shape_str(d, (size_t)ox_logical_shape(ov, d, &f), shape, sizeof shape);
        return sg_errf(err, SG_EINPUT,
                       "%s: graph output '%.100s' is %s (-1: the batch%s): its batch must be "
                       "the first dimension, on its own (a Transpose or Reshape moved it and "
                       "nothing moved it back)",
                       c->path, ov->name, shape, f > 1 ? ", merged with row values" : "");
    }
    if (ov->is_int)
        return sg_errf(err, SG_EINPUT,
                       "%s: graph output '%.100s' is integer rows (int64): stagegate reads float "
                       "scores (Cast it to float in the graph)",
                       c->path, ov->name);
    if (ov->rank > 1)
        return sg_errf(err, SG_EINPUT,
                       "%s: graph output '%.100s' has rows of rank %d; a vector "
                       "per row is needed",
                       c->path, ov->name, ov->rank);
    int rc = declared_output(c, ov, err);
    if (rc) return rc;
    sg_onnx_output meant = SG_ONNX_OUTPUT_AUTO;
    const char *from = NULL;
    const Onnx__ModelProto *mp = c->mp;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = mp->metadata_props[i];
        if (!kv->key || strcmp(kv->key, "stagegate.output") != 0) continue;
        /* two say two things (onnx.checker refuses any repeated key): neither is the answer */
        if (from)
            return sg_errf(err, SG_EINPUT, "%s: metadata_props names stagegate.output twice",
                           c->path);
        int o = kv->value ? sg_onnx_output_parse(kv->value) : -1;
        if (o < 0)
            return sg_errf(err, SG_EINPUT,
                           "%s: metadata_props stagegate.output is \"%.40s\", expected logits, "
                           "proba or value",
                           c->path, kv->value ? kv->value : "");
        meant = (sg_onnx_output)o;
        from = "metadata_props stagegate.output";
    }
    const sg_onnx_output flag = (sg_onnx_output)(c->output_flag & ~SG_ONNX_OUTPUT_IF_UNSAID);
    if (flag != SG_ONNX_OUTPUT_AUTO && !(from && (c->output_flag & SG_ONNX_OUTPUT_IF_UNSAID))) {
        meant = flag;
        from = "--output";
    }
    /* An ONNX-ML classifier gives probabilities and a regressor a value, whatever else is
       said (a classifier's softmax is still taken as the link below). */
    if (ov->ml_kind && !(ends && !strcmp(ends, "Softmax"))) {
        const bool proba = ov->ml_kind == OX_ML_PROBA;
        if (proba ? width < 2 : width != 1)
            return sg_errf(err, SG_EINPUT, "%s: graph output '%.100s' has %d columns", c->path,
                           ov->name, width);
        snprintf(plan->output_rule, sizeof plan->output_rule, "%s of ONNX-ML node '%.24s'",
                 proba ? "probabilities" : "value", c->ml_source ? c->ml_source : "");
        if (!proba) {
            m->task = SG_TASK_REGRESSION;
            m->n_classes = 0;
            plan->epi = SG_ONNX_EPI_LINK;
            plan->link = SG_LINK_IDENTITY;
            return od;
        }
        m->task = width == 2 ? SG_TASK_BINARY : SG_TASK_MULTICLASS;
        m->n_classes = width;
        plan->epi = SG_ONNX_EPI_COPY;
        m->proba_declared = true;
        return od;
    }
    /* A graph ending in Softmax/Sigmoid gives probabilities, whatever else is said, except
       value: a regressor of a rate or a share ends in Sigmoid too, and value says its output
       is the prediction as it is (a Softmax's columns then make no one value: refused below). */
    if (ends && meant != SG_ONNX_OUTPUT_VALUE) {
        if (!strcmp(ends, "Sigmoid") && width != 1)
            return sg_errf(err, SG_EINPUT,
                           "%s: the graph ends in Sigmoid over %d outputs (multi-label); one "
                           "output (binary) is supported",
                           c->path, width);
        if (strcmp(ends, "Sigmoid") && width < 2)
            return sg_errf(err, SG_EINPUT, "%s: the graph ends in %s over 1 output", c->path, ends);
        /* The link applies the last step itself (softmax of log-probabilities is the same). */
        p->dead[last] = true;
        plan->epi = SG_ONNX_EPI_LINK;
        plan->link = strcmp(ends, "Sigmoid") ? SG_LINK_SOFTMAX : SG_LINK_SIGMOID;
        snprintf(plan->output_rule, sizeof plan->output_rule, "ends in %s", ends);
        m->task = width <= 2 ? SG_TASK_BINARY : SG_TASK_MULTICLASS;
        m->n_classes = width < 2 ? 2 : width;
        return ls->in;
    }
    if (meant == SG_ONNX_OUTPUT_AUTO)
        return sg_errf(err, SG_EINPUT,
                       "%s: the graph does not end in Softmax or Sigmoid, so what its output "
                       "means is unknown: pass --output logits|proba|value or set "
                       "metadata_props stagegate.output",
                       c->path);
    snprintf(plan->output_rule, sizeof plan->output_rule, "%s (%s)", sg_onnx_output_name(meant),
             from);
    if (meant == SG_ONNX_OUTPUT_VALUE) {
        if (width != 1)
            return sg_errf(err, SG_EINPUT,
                           "%s: %s says value, but the output has %d columns%s%s%s; "
                           "regression with one output is supported",
                           c->path, from, width, ends ? " (it ends in " : "", ends ? ends : "",
                           ends ? ")" : "");
        m->task = SG_TASK_REGRESSION;
        m->n_classes = 0;
        plan->epi = SG_ONNX_EPI_LINK;
        plan->link = SG_LINK_IDENTITY;
        return od;
    }
    m->task = width <= 2 ? SG_TASK_BINARY : SG_TASK_MULTICLASS;
    m->n_classes = width < 2 ? 2 : width;
    if (meant == SG_ONNX_OUTPUT_LOGITS) {
        plan->epi = SG_ONNX_EPI_LINK;
        plan->link = width == 1 ? SG_LINK_SIGMOID : SG_LINK_SOFTMAX;
    } else {
        plan->epi = width == 1 ? SG_ONNX_EPI_PROBA1 : SG_ONNX_EPI_COPY;
        m->proba_declared = true;
    }
    return od;
}

/* ---- dense chain or buffers ---- */

static bool make_dense(ox_ctx *c, pass *p, int od, sg_model *m, sg_onnx_plan *plan)
{
    int n = 0, prev = c->vals[c->input].data;
    for (int i = 0; i < c->n_steps; i++) {
        if (p->dead[i]) continue;
        const sg_onnx_step *s = &c->steps[i];
        if (s->kind != SG_OX_GEMM || sg_onnx_groups(s) > 1 || s->in != prev ||
            (prev != c->input && p->uses[prev] != 1))
            return false;
        prev = s->out;
        n++;
    }
    if (n < 1 || n > SG_MAX_LAYERS || prev != od || plan->epi != SG_ONNX_EPI_LINK) return false;
    m->layers = calloc((size_t)n, sizeof *m->layers);
    plan->stage = calloc((size_t)n + 1, sizeof *plan->stage);
    if (!m->layers || !plan->stage) { /* the step list runs it instead */
        free(m->layers);
        free(plan->stage);
        m->layers = NULL;
        plan->stage = NULL;
        return false;
    }
    const sg_onnx_step *lastg = NULL;
    for (int i = 0; i < c->n_steps; i++)
        if (!p->dead[i]) lastg = &c->steps[i];
    if (lastg->act != SG_ACT_IDENTITY) {
        free(m->layers);
        free(plan->stage);
        m->layers = NULL;
        plan->stage = NULL;
        return false;
    }
    snprintf(plan->stage[0], SG_ONNX_NAME, "input");
    int l = 0;
    for (int i = 0; i < c->n_steps; i++) {
        if (p->dead[i]) continue;
        sg_onnx_step *s = &c->steps[i];
        sg_layer *L = &m->layers[l++];
        L->n_in = s->in_width;
        L->n_out = s->width;
        L->W = s->W;
        L->b = s->b;
        L->act = (sg_activation)s->act;
        s->W = s->b = NULL;
        snprintf(plan->stage[l], SG_ONNX_NAME, "%s", s->name);
        m->param_bytes += ((size_t)L->n_in * (size_t)L->n_out + (size_t)L->n_out) * sizeof(float);
    }
    m->n_layers = n;
    m->link = (sg_link)plan->link;
    m->n_outputs = m->layers[n - 1].n_out;
    plan->dense = true;
    plan->n_stages = n + 1;
    return true;
}

static int map_buf(const ox_ctx *c, const int *vslot, int v)
{
    return v == c->vals[c->input].data ? -1 : vslot[v];
}

/* Values are written once: each gets a slot from its write to its last read, and a slot
   is reused once free. Element-wise steps write over an input that dies at that step. */
static int assign_buffers(ox_ctx *c, pass *p, int od, sg_onnx_plan *plan, sg_err *err)
{
    int n = 0;
    for (int i = 0; i < c->n_steps; i++)
        n += !p->dead[i];
    const int in_v = c->vals[c->input].data;
    int *last_use = malloc((size_t)c->n_vals * sizeof *last_use);
    int *vslot = malloc((size_t)c->n_vals * sizeof *vslot);
    int *free_slots = malloc(((size_t)n + 1) * sizeof *free_slots);
    plan->steps = calloc((size_t)n + 1, sizeof *plan->steps);
    plan->stage = calloc((size_t)n + 1, sizeof *plan->stage);
    int rc = SG_OK;
    if (!last_use || !vslot || !free_slots || !plan->steps || !plan->stage) {
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        goto out;
    }
    for (int v = 0; v < c->n_vals; v++) {
        last_use[v] = -1;
        vslot[v] = -1;
    }
    for (int i = 0; i < c->n_steps; i++) {
        if (p->dead[i]) continue;
        int ids[4096];
        int k = step_inputs(&c->steps[i], ids, 4096);
        for (int j = 0; j < k; j++)
            last_use[ids[j]] = i;
    }
    last_use[od] = c->n_steps;
    int n_free = 0, n_slots = 0, width = 1;
    for (int i = 0; i < c->n_steps; i++) {
        if (p->dead[i]) continue;
        sg_onnx_step *s = &c->steps[i];
        int ids[4096];
        int k = step_inputs(s, ids, 4096);
        bool inplace =
            s->kind == SG_OX_UNARY || s->kind == SG_OX_AFFINE || s->kind == SG_OX_GELU ||
            s->kind == SG_OX_LAYERNORM || s->kind == SG_OX_SOFTMAX || s->kind == SG_OX_LOGSOFTMAX ||
            (s->kind == SG_OX_BINARY && s->a.kind != SG_OXA_COL && s->bb.kind != SG_OXA_COL);
        int out_slot = -1;
        for (int j = 0; j < k; j++) {
            int v = ids[j];
            if (v == in_v || last_use[v] != i || vslot[v] < 0) continue;
            bool listed = false;
            for (int q = 0; q < n_free; q++)
                listed |= free_slots[q] == vslot[v];
            if (listed || vslot[v] == out_slot) continue;
            if (inplace && out_slot < 0 && (int)c->vals[v].count == s->width * sg_onnx_groups(s))
                out_slot = vslot[v];
            else if (inplace)
                free_slots[n_free++] = vslot[v];
        }
        if (out_slot < 0) out_slot = n_free ? free_slots[--n_free] : n_slots++;
        if (!inplace)
            for (int j = 0; j < k; j++) {
                int v = ids[j];
                if (v == in_v || last_use[v] != i || vslot[v] < 0) continue;
                bool listed = false;
                for (int q = 0; q < n_free; q++)
                    listed |= free_slots[q] == vslot[v];
                if (!listed && vslot[v] != out_slot) free_slots[n_free++] = vslot[v];
            }
        vslot[s->out] = out_slot;
        const int rows = sg_onnx_groups(s); /* a row's vectors, each of (in_)width */
        if (s->width * rows > width) width = s->width * rows;
        if (s->in_width * rows > width) width = s->in_width * rows;
        sg_onnx_step *d = &plan->steps[plan->n_steps++];
        *d = *s;
        memset(s, 0, sizeof *s);
        p->dead[i] = true;
        d->in = map_buf(c, vslot, d->in);
        if (d->a.kind != SG_OXA_CONST) d->a.buf = map_buf(c, vslot, d->a.buf);
        if (d->bb.kind != SG_OXA_CONST) d->bb.buf = map_buf(c, vslot, d->bb.buf);
        if (d->kind == SG_OX_WHERE && d->cc.kind != SG_OXA_CONST)
            d->cc.buf = map_buf(c, vslot, d->cc.buf);
        for (int q = 0; q < d->n_parts; q++)
            d->parts[q] = map_buf(c, vslot, d->parts[q]);
        d->out = out_slot;
        snprintf(plan->stage[plan->n_steps - 1], SG_ONNX_NAME, "%s", d->name);
    }
    plan->n_bufs = n_slots;
    plan->buf_width = width > (int)c->vals[od].count ? width : (int)c->vals[od].count;
    plan->out_buf = map_buf(c, vslot, od);
    plan->n_stages = plan->n_steps;
    if (plan->n_steps == 0) {
        snprintf(plan->stage[0], SG_ONNX_NAME, "output");
        plan->n_stages = 1;
    }
out:
    free(last_use);
    free(vslot);
    free(free_slots);
    return rc;
}

/* Uses once the output reads od (the last step dropped into the output link, if any). */
static void recount(pass *p, int od)
{
    count_uses(p);
    p->uses[p->c->vals[p->c->output].data]--;
    p->uses[od]++;
}

/* Floating-point operations of one row through step s: the products' multiply-adds, else
   one per output value. */
static double step_flops(const sg_onnx_step *s)
{
    const double g = sg_onnx_groups(s);
    switch (s->kind) {
    case SG_OX_GEMM:
        return 2.0 * s->in_width * s->width * g;
    case SG_OX_MATMUL_ROWS:
        return 2.0 * s->width * s->mm_k * g;
    case SG_OX_TREES: { /* a compare and a step per level of each tree's walk */
        double steps = 0;
        for (int t = 0; t < s->trees->n_trees; t++)
            steps += s->trees->tree_depth[t];
        return 2.0 * steps + (double)s->width;
    }
    case SG_OX_RNN: /* each time step and direction: h times the G * H recurrence weights */
        return 2.0 * s->mm_m * s->mm_n * s->mm_k * (s->rnn_gru ? 3 : 4) * s->mm_k +
               (double)s->width;
    default:
        return (double)s->width * g;
    }
}

static size_t step_param_bytes(const sg_onnx_step *s)
{
    const size_t w = (size_t)s->width;
    size_t n = (s->W ? sg_onnx_w_floats(s) : 0) + (s->b ? w : 0) + (s->scale ? w : 0) +
               (s->shift ? w : 0) + (s->a.kind == SG_OXA_CONST ? w : 0) +
               (s->bb.kind == SG_OXA_CONST ? w : 0) +
               (s->kind == SG_OX_WHERE && s->cc.kind == SG_OXA_CONST ? w : 0);
    return n * sizeof(float) + (s->trees ? sg_tree_ensemble_bytes(s->trees) : 0);
}

int ox_finish(ox_ctx *c, sg_model *m, sg_err *err)
{
    sg_onnx_plan *plan = calloc(1, sizeof *plan);
    pass p = {.c = c};
    p.dead = calloc((size_t)c->n_steps + 1, sizeof *p.dead);
    p.uses = calloc((size_t)c->n_vals + 1, sizeof *p.uses);
    p.consumer = calloc((size_t)c->n_vals + 1, sizeof *p.consumer);
    int rc = SG_OK;
    if (!plan || !p.dead || !p.uses || !p.consumer) {
        free(plan);
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        goto out;
    }
    m->onnx = plan;
    plan->opset = c->opset;
    const ox_value *ov = &c->vals[c->output];
    if (ov->is_const) {
        rc = sg_errf(err, SG_EINPUT, "%s: graph output '%.100s' is a constant", c->path, ov->name);
        goto out;
    }
    if (ov->is_bool) {
        rc = sg_errf(err, SG_EINPUT,
                     "%s: graph output '%.100s' is boolean (a comparison's result); a model's "
                     "output must be float",
                     c->path, ov->name);
        goto out;
    }
    plan->out_width = (int)ov->count;
    count_uses(&p);
    int od = meaning(c, &p, m, plan, err);
    if (od < 0) {
        rc = SG_EINPUT;
        goto out;
    }
    recount(&p, od);
    /* Pattern fusions first (they look at un-fused steps), then into the GEMMs. */
    for (int i = 0; i < c->n_steps; i++) {
        if (p.dead[i]) continue;
        int f = c->steps[i].kind == SG_OX_BINARY ? fuse_gelu(&p, i) : fuse_layernorm(&p, i);
        if (f < 0) {
            rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
            goto out;
        }
        if (f) recount(&p, od);
    }
    for (int i = 0; i < c->n_steps; i++) {
        if (p.dead[i] || c->steps[i].kind != SG_OX_GEMM) continue;
        while (fuse_into_gemm(&p, &c->steps[i]))
            ;
    }
    recount(&p, od);
    m->n_outputs = (int)c->vals[od].count;
    for (int i = 0; i < c->n_steps; i++)
        if (!p.dead[i]) plan->flops_per_row += step_flops(&c->steps[i]);
    /* make_dense counts the layers' parameters; a step plan counts its steps'. */
    m->param_bytes = 0;
    if (make_dense(c, &p, od, m, plan)) goto out;
    for (int i = 0; i < c->n_steps; i++)
        if (!p.dead[i]) m->param_bytes += step_param_bytes(&c->steps[i]);
    rc = assign_buffers(c, &p, od, plan, err);
out:
    free(p.dead);
    free(p.uses);
    free(p.consumer);
    return rc;
}
