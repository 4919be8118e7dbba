/*
 * An ONNX file as an sg_model: protobuf (protobuf-c, code generated at build time from the
 * system onnx.proto), opset, initializers, one input with a batch dimension, one output,
 * nodes in topological order, then compiled (onnx_compile.c, onnx_plan.c).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_internal.h"

#define MAX_ONNX_FILE ((size_t)4 << 30)
#define MAX_NODES (1 << 22)

typedef struct {
    const char *name;
    int node;
} produced;

static int cmp_produced(const void *a, const void *b)
{
    return strcmp(((const produced *)a)->name, ((const produced *)b)->name);
}

static int find_producer(const produced *p, size_t n, const char *name)
{
    produced key = {name, 0};
    const produced *hit = bsearch(&key, p, n, sizeof *p, cmp_produced);
    return hit ? hit->node : -1;
}

static bool default_domain(const char *d)
{
    return !d || !d[0] || strcmp(d, "ai.onnx") == 0;
}

static sg_status read_opset(ox_ctx *c, sg_err *err)
{
    const Onnx__ModelProto *mp = c->mp;
    c->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o->domain && !strcmp(o->domain, OX_ML_DOMAIN) && o->has_version) {
            if (c->ml_imported)
                return sg_errf(err, SG_EINPUT, "%s: opset_import names domain %s twice", c->path,
                               OX_ML_DOMAIN);
            /* checked against the supported range by the first node of the domain */
            c->ml_imported = true;
            c->ml_opset = o->version < INT_MIN   ? INT_MIN
                          : o->version > INT_MAX ? INT_MAX
                                                 : (int)o->version;
            continue;
        }
        if (!default_domain(o->domain) || !o->has_version) continue;
        /* Two entries for one domain: runtimes differ on which counts. */
        if (c->opset >= 0)
            return sg_errf(err, SG_EINPUT, "%s: opset_import names the default ONNX domain twice",
                           c->path);
        c->opset = o->version > INT_MAX ? INT_MAX : (int)o->version;
    }
    if (c->opset < 0)
        return sg_errf(err, SG_EINPUT, "%s: no opset_import for the default ONNX domain", c->path);
    if (c->opset < SG_ONNX_OPSET_MIN || c->opset > SG_ONNX_OPSET_MAX)
        return sg_errf(err, SG_EINPUT, "%s: opset %d is out of range (supported: %d..%d)", c->path,
                       c->opset, SG_ONNX_OPSET_MIN, SG_ONNX_OPSET_MAX);
    return SG_OK;
}

/* The graph's one real input: float, [batch, d...] with fixed row dimensions. */
static sg_status read_input(ox_ctx *c, const Onnx__ValueInfoProto *vi, sg_model *m, sg_err *err)
{
    const char *nm = vi->name;
    const Onnx__TypeProto *t = vi->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return sg_errf(err, SG_EINPUT, "%s: graph input '%.100s' is not a tensor", c->path, nm);
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    if (!tt->has_elem_type || tt->elem_type != 1)
        return sg_errf(err, SG_EINPUT,
                       "%s: graph input '%.100s' has element type %s (%d); float (1) is "
                       "needed (export the model in float32: model.float())",
                       c->path, nm, ox_type_name(tt->has_elem_type ? tt->elem_type : 0),
                       tt->has_elem_type ? tt->elem_type : 0);
    if (!tt->shape || tt->shape->n_dim < 2 || tt->shape->n_dim > OX_MAX_RANK + 1)
        return sg_errf(err, SG_EINPUT,
                       "%s: graph input '%.100s' needs a shape [batch, features] (rank 2..%d)",
                       c->path, nm, OX_MAX_RANK + 1);
    int v = ox_value_add(c, nm, err);
    if (v < 0) return SG_EINPUT;
    const Onnx__TensorShapeProto__Dimension *d0 = tt->shape->dim[0];
    if (d0->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d0->dim_value > 0)
        c->input_batch = d0->dim_value;
    c->input_name = nm;
    ox_value *x = &c->vals[v];
    x->defined = true;
    x->dtype = OX_FLOAT;
    x->rank = (int)tt->shape->n_dim - 1;
    int64_t w = 1;
    for (size_t i = 1; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            d->dim_value < 1 || d->dim_value > OX_MAX_WIDTH)
            return sg_errf(err, SG_EINPUT,
                           "%s: graph input '%.100s' dimension %zu must be a fixed size 1..%d "
                           "(only the batch, dimension 0, may vary)",
                           c->path, nm, i, OX_MAX_WIDTH);
        x->dims[i - 1] = d->dim_value;
        w *= d->dim_value;
        if (w > OX_MAX_WIDTH)
            return sg_errf(err, SG_EINPUT,
                           "%s: graph input '%.100s' has rows of more than %d "
                           "values",
                           c->path, nm, OX_MAX_WIDTH);
    }
    x->count = w;
    c->input = v;
    m->n_features = (int)w;
    return SG_OK;
}

/* Whether the nodes that read name all add it (Add) or pick from it (Where's values), and
   some do: an attention mask, which PyTorch stores as an initializer (a causal mask's -inf
   above the diagonal, a boolean mask turned into -inf by masked_fill). */
static int mask_reads(const Onnx__GraphProto *g, const char *name, int depth)
{
    int read = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            if (!n->input[k] || strcmp(n->input[k], name)) continue;
            if (!n->op_type ||
                !(!strcmp(n->op_type, "Add") || (!strcmp(n->op_type, "Where") && k > 0)))
                return -1;
            read = 1;
        }
        for (size_t a = 0; a < n->n_attribute; a++) { /* If's branches read it too */
            const Onnx__GraphProto *sub = n->attribute[a]->g;
            if (!sub) continue;
            if (depth >= 16) return -1;
            for (size_t k = 0; k < sub->n_output; k++) /* a branch's output is read as is */
                if (sub->output[k]->name && !strcmp(sub->output[k]->name, name)) return -1;
            const int r = mask_reads(sub, name, depth + 1);
            if (r < 0) return -1;
            read |= r;
        }
    }
    return read;
}

static bool mask_only(const ox_ctx *c, const char *name)
{
    return mask_reads(c->mp->graph, name, 0) > 0;
}

/* The graph's output names, quoted and comma-separated, cut to len. */
static void output_names(const Onnx__GraphProto *g, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < g->n_output && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s'%.60s'", i ? ", " : "", g->output[i]->name);
}

/* The output named by metadata_props stagegate.output_name, unless --output-name named one. */
static sg_status output_name_said(ox_ctx *c, sg_err *err)
{
    if (c->output_name) {
        c->output_name_from = "--output-name";
        return SG_OK;
    }
    const Onnx__ModelProto *mp = c->mp;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = mp->metadata_props[i];
        if (!kv->key || strcmp(kv->key, "stagegate.output_name") != 0) continue;
        if (c->output_name)
            return sg_errf(err, SG_EINPUT, "%s: metadata_props names stagegate.output_name twice",
                           c->path);
        if (!kv->value || !kv->value[0])
            return sg_errf(err, SG_EINPUT, "%s: metadata_props stagegate.output_name is empty",
                           c->path);
        c->output_name = kv->value;
        c->output_name_from = "metadata_props stagegate.output_name";
    }
    return SG_OK;
}

/* A set of names (open addressing; the names are the protobuf's, not copied). */
typedef struct {
    const char **slot;
    size_t cap;
} name_set;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static bool name_set_has(const name_set *ns, const char *name)
{
    for (size_t i = name_hash(name) & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
        if (!ns->slot[i]) return false;
        if (!strcmp(ns->slot[i], name)) return true;
    }
}

static void name_set_add(void *arg, const char *name, bool implicit)
{
    (void)implicit;
    name_set *ns = arg;
    size_t i = name_hash(name) & (ns->cap - 1);
    while (ns->slot[i] && strcmp(ns->slot[i], name))
        i = (i + 1) & (ns->cap - 1);
    ns->slot[i] = name;
}

/*
 * With one output chosen of several, the nodes it does not need are left out (c->skip):
 * walked against the topological order, a node is needed when another needed node, or the
 * chosen output, reads one of its outputs. What the other outputs alone need (a head of
 * another task, an operator not supported here) is neither compiled nor run.
 */
static void count_edge(void *arg, const char *name, bool implicit);

static sg_status nodes_unneeded(ox_ctx *c, const int *order, const char *out, bool *skip,
                                sg_err *err)
{
    const Onnx__GraphProto *g = c->mp->graph;
    size_t reads = 1;
    for (size_t i = 0; i < g->n_node; i++)
        ox_node_reads(g->node[i], count_edge, &reads);
    name_set ns = {NULL, 16};
    while (ns.cap < 2 * reads)
        ns.cap *= 2;
    ns.slot = calloc(ns.cap, sizeof *ns.slot);
    if (!ns.slot) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    name_set_add(&ns, out, false);
    for (size_t k = g->n_node; k-- > 0;) {
        const Onnx__NodeProto *nd = g->node[order[k]];
        bool needed = false;
        for (size_t o = 0; o < nd->n_output && !needed; o++)
            needed = nd->output[o] && nd->output[o][0] && name_set_has(&ns, nd->output[o]);
        if (needed)
            ox_node_reads(nd, name_set_add, &ns);
        else
            skip[order[k]] = true;
    }
    free(ns.slot);
    return SG_OK;
}

static sg_status skip_unneeded(ox_ctx *c, const int *order, sg_err *err)
{
    const Onnx__GraphProto *g = c->mp->graph;
    if (!(c->skip = calloc(g->n_node + 1, sizeof *c->skip)))
        return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    return nodes_unneeded(c, order, g->output[c->chosen_output]->name, c->skip, err);
}

/*
 * A graph of two outputs, a classifier's label (nothing computes it) and the other, with no
 * name given: the other must be that classifier's probabilities, i.e. need the node whose
 * label is the first output; an unrelated head beside a label had been taken silently.
 */
static sg_status label_pair_checked(ox_ctx *c, const int *order, size_t label, size_t real,
                                    sg_err *err)
{
    const Onnx__GraphProto *g = c->mp->graph;
    size_t producer = g->n_node;
    for (size_t i = 0; i < g->n_node && producer == g->n_node; i++)
        if (g->node[i]->n_output > 0 && g->node[i]->output[0] &&
            !strcmp(g->node[i]->output[0], g->output[label]->name))
            producer = i;
    bool *skip = calloc(g->n_node + 1, sizeof *skip);
    if (!skip) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    sg_status rc = nodes_unneeded(c, order, g->output[real]->name, skip, err);
    if (rc == SG_OK && (producer == g->n_node || skip[producer]))
        rc = sg_errf(err, SG_EINPUT,
                     "%s: the graph has 2 outputs, '%.100s' (a classifier's label) and "
                     "'%.100s', which is not that classifier's probabilities: name the model's "
                     "with --output-name (or metadata_props stagegate.output_name)",
                     c->path, g->output[label]->name, g->output[real]->name);
    free(skip);
    return rc;
}

static sg_status read_graph_io(ox_ctx *c, sg_model *m, sg_err *err)
{
    const Onnx__GraphProto *g = c->mp->graph;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (!t->name || !t->name[0])
            return sg_errf(err, SG_EINPUT, "%s: initializer %zu has no name", c->path, i);
        if (ox_value_find(c, t->name) >= 0)
            return sg_errf(err, SG_EINPUT, "%s: initializer '%.100s' is defined twice", c->path,
                           t->name);
        int v = ox_value_add(c, t->name, err);
        if (v < 0) return SG_EINPUT;
        char what[160];
        snprintf(what, sizeof what, "initializer '%.100s'", t->name);
        /* An infinity is read as a value, then kept only in a mask (mask_only); NaN never. */
        c->infinities_ok = true;
        int rc = ox_tensor_read(c, t, &c->vals[v], what, err);
        c->infinities_ok = false;
        if (rc) return rc;
        const ox_value *iv = &c->vals[v];
        if (iv->dtype != OX_FLOAT) continue;
        int64_t k = 0;
        while (k < iv->count && !isinf(iv->f[k]))
            k++;
        if (k < iv->count && !mask_only(c, t->name))
            return sg_errf(err, SG_EINPUT,
                           "%s: %s[%lld] is not finite (an infinity is taken only in a mask "
                           "that Add or Where reads)",
                           c->path, what, (long long)k);
    }
    if (g->n_sparse_initializer)
        return sg_errf(err, SG_EINPUT, "%s: sparse initializers are not supported", c->path);
    const Onnx__ValueInfoProto *real = NULL;
    int n_real = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        const char *nm = g->input[i]->name;
        if (!nm || !nm[0])
            return sg_errf(err, SG_EINPUT, "%s: graph input %zu has no name", c->path, i);
        if (ox_value_find(c, nm) >= 0) continue; /* an initializer listed as input (IR < 4) */
        real = g->input[i];
        n_real++;
    }
    if (n_real != 1)
        return sg_errf(err, SG_EINPUT,
                       "%s: the graph has %d inputs besides its initializers; one (the feature "
                       "matrix) is supported",
                       c->path, n_real);
    int rc = read_input(c, real, m, err);
    if (rc) return rc;
    for (size_t i = 0; i < g->n_output; i++)
        if (!g->output[i]->name || !g->output[i]->name[0])
            return sg_errf(err, SG_EINPUT, "%s: graph output %zu has no name", c->path, i);
    if (g->n_output < 1) return sg_errf(err, SG_EINPUT, "%s: the graph has no output", c->path);
    if ((rc = output_name_said(c, err))) return rc;
    if (c->output_name) {
        for (size_t i = 0; i < g->n_output && c->chosen_output < 0; i++)
            if (!strcmp(g->output[i]->name, c->output_name)) c->chosen_output = (int)i;
        if (strlen(c->output_name) >= sizeof(((sg_onnx_plan *)0)->output_name))
            return sg_errf(err, SG_EINPUT, "%s: %s names an output of %zu bytes (at most %zu)",
                           c->path, c->output_name_from, strlen(c->output_name),
                           sizeof(((sg_onnx_plan *)0)->output_name) - 1);
        if (c->chosen_output < 0) {
            char names[400];
            output_names(g, names, sizeof names);
            return sg_errf(err, SG_EINPUT, "%s: %s '%.100s' is not a graph output (they are %s)",
                           c->path, c->output_name_from, c->output_name, names);
        }
        return SG_OK;
    }
    /* two: an ONNX-ML classifier's label and probabilities (which is which is known once the
       nodes are compiled); without an ONNX-ML node's first output among them, they are not,
       and the name is asked for before anything is compiled. */
    bool ml_first = false;
    for (size_t i = 0; g->n_output == 2 && i < g->n_node && !ml_first; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        if (!nd->domain || strcmp(nd->domain, OX_ML_DOMAIN) || nd->n_output < 1 || !nd->output[0])
            continue;
        ml_first = !strcmp(nd->output[0], g->output[0]->name) ||
                   !strcmp(nd->output[0], g->output[1]->name);
    }
    if (g->n_output == 2 && !ml_first)
        return sg_errf(err, SG_EINPUT,
                       "%s: the graph has 2 outputs, '%.100s' and '%.100s'; name the model's "
                       "with --output-name (or metadata_props stagegate.output_name)",
                       c->path, g->output[0]->name, g->output[1]->name);
    if (g->n_output > 2) {
        char names[400];
        output_names(g, names, sizeof names);
        return sg_errf(err, SG_EINPUT,
                       "%s: the graph has %zu outputs (%s); name the model's with "
                       "--output-name (or metadata_props stagegate.output_name)",
                       c->path, g->n_output, names);
    }
    return SG_OK;
}

static void count_edge(void *arg, const char *name, bool implicit)
{
    (void)name;
    (void)implicit;
    ++*(size_t *)arg;
}

typedef struct {
    ox_ctx *c;
    const produced *prod;
    size_t np;
    int pass, node;
    int *head, *indeg, *edge, *queue;
    const char *missing; /* an input nothing defines */
} edge_pass;

static void edge_read(void *arg, const char *nm, bool implicit)
{
    edge_pass *e = arg;
    if (e->missing || ox_value_find(e->c, nm) >= 0) return;
    const int p = find_producer(e->prod, e->np, nm);
    if (p < 0) {
        if (!implicit) e->missing = nm; /* a branch's name may be its own value */
        return;
    }
    if (e->pass == 0) {
        e->head[p + 1]++;
        e->indeg[e->node]++;
    } else {
        e->edge[e->queue[p]++] = e->node;
    }
}

/* Kahn's algorithm over the nodes; an input that no node, initializer or graph input
   defines, and a cycle, are errors naming a node. */
static int topo_order(ox_ctx *c, int *order, sg_err *err)
{
    const Onnx__GraphProto *g = c->mp->graph;
    const size_t n = g->n_node;
    size_t n_out = 0;
    for (size_t i = 0; i < n; i++)
        n_out += g->node[i]->n_output;
    produced *prod = malloc((n_out + 1) * sizeof *prod);
    int *indeg = calloc(n + 1, sizeof *indeg), *head = calloc(n + 2, sizeof *head);
    size_t n_edges = 0;
    for (size_t i = 0; i < n; i++)
        ox_node_reads(g->node[i], count_edge, &n_edges);
    int *edge = malloc((n_edges + 1) * sizeof *edge), *queue = malloc((n + 1) * sizeof *queue);
    int rc = SG_OK;
    if (!prod || !indeg || !head || !edge || !queue) {
        rc = sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
        goto out;
    }
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++) {
            const char *o = g->node[i]->output[k];
            if (!o || !o[0]) continue;
            c->node = g->node[i];
            c->node_index = (int)i;
            if (ox_value_find(c, o) >= 0) {
                rc = ox_node_err(c, err, SG_EINPUT,
                                 "output '%.100s' redefines an initializer or "
                                 "the graph input",
                                 o);
                goto out;
            }
            prod[np++] = (produced){o, (int)i};
        }
    qsort(prod, np, sizeof *prod, cmp_produced);
    for (size_t i = 1; i < np; i++)
        if (strcmp(prod[i].name, prod[i - 1].name) == 0) {
            c->node = g->node[prod[i].node];
            c->node_index = prod[i].node;
            rc = ox_node_err(c, err, SG_EINPUT, "output '%.100s' is produced by two nodes",
                             prod[i].name);
            goto out;
        }
    /* Edges producer -> consumer in CSR form: count, then fill. An If depends also on what
       its branches read from the graph. */
    edge_pass ep = {c, prod, np, 0, 0, head, indeg, edge, queue, NULL};
    for (int pass = 0; pass < 2; pass++) {
        ep.pass = pass;
        for (size_t i = 0; i < n; i++) {
            ep.node = (int)i;
            ox_node_reads(g->node[i], edge_read, &ep);
            if (ep.missing) {
                c->node = g->node[i];
                c->node_index = (int)i;
                rc = ox_node_err(c, err, SG_EINPUT,
                                 "input '%.100s' is not defined by any node, initializer or "
                                 "graph input",
                                 ep.missing);
                goto out;
            }
        }
        if (pass == 0) {
            for (size_t i = 0; i < n; i++)
                head[i + 1] += head[i];
            for (size_t i = 0; i < n; i++)
                queue[i] = head[i]; /* fill cursors */
        }
    }
    size_t qh = 0, qt = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0) queue[qt++] = (int)i;
    while (qh < qt) {
        int u = queue[qh++];
        order[qh - 1] = u;
        for (int e = head[u]; e < head[u + 1]; e++)
            if (--indeg[edge[e]] == 0) queue[qt++] = edge[e];
    }
    if (qt != n) {
        for (size_t i = 0; i < n; i++)
            if (indeg[i] > 0) {
                c->node = g->node[i];
                c->node_index = (int)i;
                rc = ox_node_err(c, err, SG_EINPUT, "the graph has a cycle through this node");
                break;
            }
        goto out;
    }
    for (size_t i = 0; rc == SG_OK && i < g->n_output; i++)
        if (find_producer(prod, np, g->output[i]->name) < 0 &&
            ox_value_find(c, g->output[i]->name) < 0) {
            c->node = NULL;
            rc = sg_errf(err, SG_EINPUT, "%s: graph output '%.100s' is not defined", c->path,
                         g->output[i]->name);
        }
out:
    c->node = NULL;
    free(prod);
    free(indeg);
    free(head);
    free(edge);
    free(queue);
    return rc;
}

/*
 * metadata_props stagegate.classes: the class values of a classifier that no ONNX-ML node
 * names (a PyTorch export of a model trained on {-1, 1}), as comma-separated integers in
 * increasing order, one per output column; export_torch.py --classes writes it.
 */
static sg_status metadata_classes(ox_ctx *c, sg_model *m, sg_err *err)
{
    const char *text = NULL;
    const Onnx__ModelProto *mp = c->mp;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = mp->metadata_props[i];
        if (!kv->key || strcmp(kv->key, "stagegate.classes") != 0) continue;
        if (text)
            return sg_errf(err, SG_EINPUT, "%s: metadata_props names stagegate.classes twice",
                           c->path);
        text = kv->value ? kv->value : "";
    }
    if (!text) return SG_OK;
    if (m->task == SG_TASK_REGRESSION)
        return sg_errf(err, SG_EINPUT,
                       "%s: metadata_props stagegate.classes is given for a regression model",
                       c->path);
    if (c->ml_classes)
        return sg_errf(err, SG_EINPUT,
                       "%s: metadata_props stagegate.classes is given, and node '%.100s' names "
                       "the classes itself (remove the metadata)",
                       c->path, c->ml_classes_node);
    int64_t *v = malloc((size_t)m->n_classes * sizeof *v);
    if (!v) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    size_t n = 0;
    const char *p = text;
    sg_status rc = SG_OK;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        char *end;
        errno = 0;
        const long long x = strtoll(p, &end, 10);
        const char *after = end;
        while (isspace((unsigned char)*after))
            after++;
        if (end == p || errno || (*after && *after != ',')) {
            rc = sg_errf(err, SG_EINPUT,
                         "%s: metadata_props stagegate.classes is \"%.80s\": expected integers "
                         "separated by commas, e.g. \"-1,1\"",
                         c->path, text);
            break;
        }
        if (n == (size_t)m->n_classes) {
            rc = sg_errf(err, SG_EINPUT,
                         "%s: metadata_props stagegate.classes names more than the output's %d "
                         "classes",
                         c->path, m->n_classes);
            break;
        }
        v[n++] = x;
        if (!*after) break;
        p = after + 1; /* past the comma */
    }
    char why[160];
    if (rc == SG_OK && !sg_classes_from(v, n, m->n_classes, &m->classes, why, sizeof why))
        rc = sg_errf(err, strcmp(why, "out of memory") ? SG_EINPUT : SG_ENOMEM,
                     "%s: metadata_props stagegate.classes%s%s (the output has %d columns)",
                     c->path, why[0] == '[' ? "" : " ", why, m->n_classes);
    free(v);
    return rc;
}

static int compile_graph(ox_ctx *c, sg_model *m, sg_err *err)
{
    int rc = read_opset(c, err);
    if (rc) return rc;
    if (!c->mp->graph) return sg_errf(err, SG_EINPUT, "%s: the model has no graph", c->path);
    const Onnx__GraphProto *g = c->mp->graph;
    if (g->n_node > MAX_NODES)
        return sg_errf(err, SG_EINPUT, "%s: %zu nodes (at most %d)", c->path, g->n_node, MAX_NODES);
    if ((rc = read_graph_io(c, m, err))) return rc;
    int *order = malloc((g->n_node + 1) * sizeof *order);
    if (!order) return sg_errf(err, SG_ENOMEM, "%s: out of memory", c->path);
    rc = topo_order(c, order, err);
    if (rc == SG_OK && c->chosen_output >= 0) rc = skip_unneeded(c, order, err);
    for (size_t i = 0; rc == SG_OK && i < g->n_node; i++) {
        if (c->skip && c->skip[order[i]]) continue;
        c->node = g->node[order[i]];
        c->node_index = order[i];
        const bool ml = c->node->domain && !strcmp(c->node->domain, OX_ML_DOMAIN);
        if (!c->node->op_type || !(default_domain(c->node->domain) || ml) ||
            !(ml ? ox_ml_op_supported(c->node->op_type) : ox_op_supported(c->node->op_type))) {
            rc = ox_node_err(c, err, SG_EINPUT, "unsupported operator %.40s%s%.40s; supported: %s",
                             c->node->op_type ? c->node->op_type : "(none)",
                             default_domain(c->node->domain) ? "" : " of domain ",
                             default_domain(c->node->domain) ? "" : c->node->domain,
                             ml ? ox_ml_supported_ops() : ox_supported_ops());
            break;
        }
        rc = ox_compile_node(c, err);
    }
    c->node = NULL;
    if (rc) {
        free(order);
        return rc;
    }
    /* With two outputs, one is the label of an ONNX-ML classifier, which nothing computes. */
    size_t real = 0;
    if (c->chosen_output >= 0) {
        real = (size_t)c->chosen_output;
        if (ox_ml_is_label(c, g->output[real]->name))
            rc = sg_errf(err, SG_EINPUT,
                         "%s: %s '%.100s' is a classifier's label, which stagegate computes "
                         "from the probabilities: name the probabilities' output",
                         c->path, c->output_name_from, g->output[real]->name);
    } else if (g->n_output == 2) {
        const bool l0 = ox_ml_is_label(c, g->output[0]->name),
                   l1 = ox_ml_is_label(c, g->output[1]->name);
        if (l0 == l1)
            rc = sg_errf(err, SG_EINPUT,
                         "%s: the graph has 2 outputs, '%.100s' and '%.100s'; name the model's "
                         "with --output-name (or metadata_props stagegate.output_name)",
                         c->path, g->output[0]->name, g->output[1]->name);
        real = l0 ? 1 : 0;
        if (rc == SG_OK) rc = label_pair_checked(c, order, l0 ? 0 : 1, real, err);
    }
    free(order);
    if (rc) return rc;
    c->output_index = (int)real;
    m->missing_values = c->routes_nan;
    c->output = ox_value_find(c, g->output[real]->name);
    if (c->output < 0 || !c->vals[c->output].defined)
        return sg_errf(err, SG_EINPUT, "%s: graph output '%.100s' is not defined", c->path,
                       g->output[real]->name);
    rc = ox_finish(c, m, err);
    if (rc == SG_OK && c->chosen_output >= 0) {
        sg_utf8_copy(m->onnx->output_name, sizeof m->onnx->output_name, g->output[real]->name);
        m->onnx->n_graph_outputs = (int)g->n_output;
    }
    if (rc == SG_OK) rc = metadata_classes(c, m, err);
    if (rc || !c->ml_classes || m->task == SG_TASK_REGRESSION) return rc;
    /* The probabilities' columns are the classes an ONNX-ML node named (checked there). */
    char why[160];
    if (!sg_classes_from(c->ml_classes, c->n_ml_classes, m->n_classes, &m->classes, why,
                         sizeof why))
        return sg_errf(err, strcmp(why, "out of memory") ? SG_EINPUT : SG_ENOMEM,
                       "%s: the class labels of node '%.100s' %s (the output has %d columns)",
                       c->path, c->ml_classes_node, why, m->n_classes);
    return SG_OK;
}

/* External data files enter the digest in one fixed order, whatever order compilation reads
   them in: initializers in file order, then Constant nodes' values in file order. */
static int hash_external(ox_ctx *c, sg_err *err)
{
    const Onnx__GraphProto *g = c->mp->graph;
    if (!g) return SG_OK;
    char what[160];
    for (size_t i = 0; i < g->n_initializer; i++) {
        snprintf(what, sizeof what, "initializer '%.100s'",
                 g->initializer[i]->name ? g->initializer[i]->name : "");
        int rc = ox_external_prefetch(c, g->initializer[i], what, err);
        if (rc) return rc;
    }
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_attribute; k++) {
            const Onnx__AttributeProto *a = g->node[i]->attribute[k];
            if (!a->t) continue;
            snprintf(what, sizeof what, "node %zu attribute '%.60s'", i, a->name ? a->name : "");
            int rc = ox_external_prefetch(c, a->t, what, err);
            if (rc) return rc;
        }
    return SG_OK;
}

static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/*
 * Checks on the wire bytes, before the unpack, walking every field by the schema's own
 * descriptors (protobuf-c's, generated from onnx.proto). Each closes a way for stagegate and
 * onnx (C++ protobuf, which the runtimes that serve the model use too) to read one file as
 * two models, the gate judging one and production serving the other:
 * - How deep messages nest: protobuf-c unpacks a sub-message by recursion with no limit, so
 *   a 60 KB file of If nodes inside If nodes' subgraphs (or a TypeProto of sequences of
 *   sequences) ran it out of stack.
 * - No string holds a NUL byte. protobuf-c hands strings over as C strings, so a NUL ends
 *   them early: an external data location "w.bin\0x" read as "w.bin", and a key
 *   "location\0x" as "location", where onnx reads the whole string.
 * - A field that is not repeated appears once, and a oneof has one member. protobuf-c keeps
 *   the last value of a scalar, where C++ protobuf keeps the last value it knows (an unknown
 *   enum value is put aside), and it replaces a repeated sub-message where protobuf merges
 *   the two: `data_location` EXTERNAL then 99 read as inline data here and as the external
 *   file for onnx, whose bytes were then in no digest.
 * - An enum holds a value of its enum (the same unknown value, alone).
 * - No field number 0: protobuf ends the message there, protobuf-c read on.
 * - What the unpack will allocate (each message, repeated element and string, with the
 *   allocator's overhead) fits the memory this process may use: a 52 MB file of empty
 *   messages had taken 6.7 GB, so a 200 MB one would have met the out-of-memory killer.
 * Bytes that are not well-formed are left to the unpack, which refuses them.
 */
#define OX_MAX_DEPTH 256
#define OX_ALLOC_OVERHEAD 16 /* bytes glibc adds to each allocation, about */

typedef enum {
    OXW_OK,
    OXW_DEPTH,
    OXW_NUL,
    OXW_TWICE,
    OXW_ONEOF,
    OXW_ENUM,
    OXW_FIELD0
} ox_wire_problem;

typedef struct {
    ox_wire_problem problem;
    const ProtobufCMessageDescriptor *msg; /* where, for the message */
    const ProtobufCFieldDescriptor *field;
    int64_t value;     /* OXW_ENUM: the value */
    uint64_t unpacked; /* bytes the unpack will allocate, about */
} ox_wire_check;

static bool ox_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

static bool ox_wire_fail(ox_wire_check *w, ox_wire_problem what,
                         const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    w->problem = what;
    w->msg = d;
    w->field = f;
    return false;
}

/* The C size of one element of a repeated scalar field. */
static unsigned ox_scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4;
    }
}

/* The size of one element of a repeated field's array: a pointer to a message or string, a
   ProtobufCBinaryData for bytes, the value itself for a scalar. */
static unsigned ox_element_size(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_MESSAGE || t == PROTOBUF_C_TYPE_STRING ? 8
           : t == PROTOBUF_C_TYPE_BYTES                                ? 16
                                                                       : ox_scalar_size(t);
}

/* Elements in a packed field of n bytes of type t. */
static uint64_t ox_packed_count(ProtobufCType t, const uint8_t *p, uint64_t n)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return n / 4;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return n / 8;
    default: { /* varints: one ends at each byte without the high bit */
        uint64_t c = 0;
        for (uint64_t i = 0; i < n; i++)
            c += !(p[i] & 0x80);
        return c;
    }
    }
}

/* false: a check failed (recorded in *w) */
static bool ox_wire_ok(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                       int depth, ox_wire_check *w)
{
    if (depth > OX_MAX_DEPTH) return ox_wire_fail(w, OXW_DEPTH, d, NULL);
    /* the fields seen once already: by index in d->fields (onnx.proto's messages have far
       fewer than 256; a larger one is not checked for repeats) */
    uint64_t seen[4] = {0};
    const bool track = d->n_fields <= 256;
    w->unpacked += d->sizeof_message + OX_ALLOC_OVERHEAD;
    while (p < end) {
        uint64_t tag, len;
        if (!ox_varint(&p, end, &tag)) return true;
        const uint64_t number = tag >> 3;
        if (number == 0) return ox_wire_fail(w, OXW_FIELD0, d, NULL);
        const ProtobufCFieldDescriptor *f =
            number <= UINT_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)number)
                               : NULL;
        if (f && track && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const size_t i = (size_t)(f - d->fields);
            if (seen[i / 64] >> (i % 64) & 1) return ox_wire_fail(w, OXW_TWICE, d, f);
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                for (unsigned j = 0; j < d->n_fields; j++)
                    if (j != i && (d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                        d->fields[j].quantifier_offset == f->quantifier_offset &&
                        (seen[j / 64] >> (j % 64) & 1))
                        return ox_wire_fail(w, OXW_ONEOF, d, f);
            seen[i / 64] |= (uint64_t)1 << (i % 64);
        }
        if (f && f->label == PROTOBUF_C_LABEL_REPEATED) /* its slot in the field's array */
            w->unpacked += ox_element_size(f->type) + OX_ALLOC_OVERHEAD / 4;
        switch (tag & 7) {
        case 0: {
            if (!ox_varint(&p, end, &len)) return true;
            if (f && f->type == PROTOBUF_C_TYPE_ENUM &&
                !protobuf_c_enum_descriptor_get_value(f->descriptor, (int)(int32_t)len)) {
                w->value = (int32_t)len;
                return ox_wire_fail(w, OXW_ENUM, d, f);
            }
            break;
        }
        case 1:
            if (end - p < 8) return true;
            p += 8;
            break;
        case 5:
            if (end - p < 4) return true;
            p += 4;
            break;
        case 2: {
            if (!ox_varint(&p, end, &len) || len > (uint64_t)(end - p)) return true;
            if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)len))
                return ox_wire_fail(w, OXW_NUL, d, f);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (!ox_wire_ok(p, p + len, f->descriptor, depth + 1, w)) return false;
            } else if (f &&
                       (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES)) {
                w->unpacked += len + 1 + OX_ALLOC_OVERHEAD;
            } else if (f && f->label == PROTOBUF_C_LABEL_REPEATED) { /* packed scalars */
                w->unpacked += ox_packed_count(f->type, p, len) * ox_scalar_size(f->type);
            }
            p += len;
            break;
        }
        default:
            return true; /* groups and the rest: not well-formed here, the unpack refuses */
        }
    }
    return true;
}

static sg_status ox_unpack(const char *name, const uint8_t *bytes, size_t len,
                           Onnx__ModelProto **mp, sg_err *err)
{
    *mp = NULL;
    ox_wire_check w = {0};
    if (!ox_wire_ok(bytes, bytes + len, &onnx__model_proto__descriptor, 0, &w)) {
        const char *m = w.msg ? w.msg->short_name : "?", *f = w.field ? w.field->name : "?";
        switch (w.problem) {
        case OXW_DEPTH:
            return sg_errf(err, SG_EINPUT,
                           "%s: messages nested more than %d deep (graphs inside nodes' "
                           "attributes, or types inside types); refused",
                           name, OX_MAX_DEPTH);
        case OXW_NUL:
            return sg_errf(err, SG_EINPUT,
                           "%s: a string field %s.%s holds a NUL byte; refused (readers that "
                           "stop at it and readers that do not would see different models)",
                           name, m, f);
        case OXW_TWICE:
            return sg_errf(err, SG_EINPUT,
                           "%s: field %s.%s is given twice (it holds one value; which one a "
                           "reader takes, or whether it merges them, differs between readers)",
                           name, m, f);
        case OXW_ONEOF:
            return sg_errf(err, SG_EINPUT,
                           "%s: field %s.%s is given with another member of its oneof (one "
                           "is allowed)",
                           name, m, f);
        case OXW_ENUM:
            return sg_errf(err, SG_EINPUT, "%s: field %s.%s holds %lld, not a value of its enum",
                           name, m, f, (long long)w.value);
        case OXW_FIELD0:
            return sg_errf(err, SG_EINPUT,
                           "%s: a field numbered 0 in %s (not valid protobuf; onnx stops reading "
                           "the message there)",
                           name, m);
        default:
            return sg_errf(err, SG_EINTERNAL, "%s: wire check failed", name);
        }
    }
    const uint64_t have = sg_memory_limit();
    if (have && w.unpacked + len > have) {
        char need[32], lim[32];
        sg_format_bytes((double)(w.unpacked + len), need, sizeof need);
        sg_format_bytes((double)have, lim, sizeof lim);
        return sg_errf(err, SG_EINPUT,
                       "%s: its messages unpacked need about %s, more than the %s of memory "
                       "this process may use",
                       name, need, lim);
    }
    *mp = onnx__model_proto__unpack(NULL, len, bytes);
    return SG_OK;
}

/* dir: the directory external data is read from, or NULL to refuse external data. */
static sg_status from_bytes(const char *name, const char *dir, const uint8_t *bytes, size_t len,
                            sg_onnx_output output, const char *output_name, sg_model **out,
                            sg_err *err)
{
    *out = NULL;
    sg_model *m = calloc(1, sizeof *m);
    if (!m) return sg_errf(err, SG_ENOMEM, "%s: out of memory", name);
    snprintf(m->path, sizeof m->path, "%s", name);
    ox_ctx c = {.path = name,
                .output_flag = output,
                .output_name = output_name,
                .chosen_output = -1,
                .input = -1,
                .output = -1,
                .onnx_bytes = bytes,
                .onnx_len = len};
    int rc = SG_OK;
    if (dir) snprintf(c.dir, sizeof c.dir, "%s", dir);
    if (rc == SG_OK && (rc = ox_unpack(name, bytes, len, &c.mp, err)) == SG_OK) {
        if (!c.mp)
            rc = sg_errf(err, SG_EINPUT,
                         "%s: not an ONNX model: the protobuf is truncated or malformed", name);
    }
    if (rc == SG_OK && dir) rc = hash_external(&c, err);
    if (rc == SG_OK) rc = compile_graph(&c, m, err);
    if (rc == SG_OK && !dir && c.n_ext)
        rc = sg_errf(err, SG_EINPUT, "%s: external data is not allowed here", name);
    if (rc == SG_OK) rc = ox_digest_final(&c, m->sha256, err);
    if (rc == SG_OK) {
        const Onnx__ModelProto *mp = c.mp;
        char producer[41], version[21]; /* cut at a character boundary, not inside one */
        sg_utf8_copy(producer, sizeof producer,
                     mp->producer_name && mp->producer_name[0] ? mp->producer_name : "model");
        sg_utf8_copy(version, sizeof version, mp->producer_version ? mp->producer_version : "");
        snprintf(m->estimator, sizeof m->estimator, "ONNX %s %s, opset %d, %s", producer, version,
                 c.opset, m->onnx->output_rule);
    }
    ox_ctx_free(&c);
    if (rc) {
        sg_model_free(m);
        return rc;
    }
    *out = m;
    return SG_OK;
}

sg_status sg_model_from_onnx(const char *name, const uint8_t *bytes, size_t len,
                             sg_onnx_output output, sg_model **out, sg_err *err)
{
    return from_bytes(name, NULL, bytes, len, output, NULL, out, err);
}

sg_status sg_model_load_onnx(const char *path, sg_onnx_output output, sg_model **out, sg_err *err)
{
    *out = NULL;
    if (strlen(path) >= sizeof(((sg_model *)0)->path))
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = sg_read_file(path, MAX_ONNX_FILE, &bytes, &len, err);
    if (rc) return rc;
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    /* The digest covers the .onnx bytes, then each external data file the first time a
       tensor names it (docs/formats.md). */
    rc = from_bytes(path, dir, bytes, len, output, NULL, out, err);
    free(bytes);
    return rc;
}

sg_status sg_model_load_onnx_bytes(const char *path, const uint8_t *bytes, size_t len,
                                   sg_onnx_output output, const char *output_name, sg_model **out,
                                   sg_err *err)
{
    *out = NULL;
    if (strlen(path) >= sizeof(((sg_model *)0)->path))
        return sg_errf(err, SG_EINPUT, "%s: path too long", path);
    if (len > MAX_ONNX_FILE)
        return sg_errf(err, SG_EINPUT, "%s: larger than the ONNX model limit", path);
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    return from_bytes(path, dir, bytes, len, output, output_name, out, err);
}

sg_status sg_model_digest_file_hex(const char *path, char hex[65], sg_err *err)
{
    uint8_t head[2] = {0, 0};
    /* One open: the bytes looked at are the bytes hashed (a second open by name had let a
       file renamed over in between be hashed by another rule). */
    int fd = sg_open_regular(path, err);
    if (fd < 0) return SG_EINPUT;
    ssize_t got = pread(fd, head, 2, 0);
    /* Only an ONNX file's digest differs from its file's (its external data counts). */
    if (got < 2 || head[0] != 0x08 || head[1] < 1 || head[1] >= 0x80)
        return sg_sha256_fd_hex(fd, path, hex, err);
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = sg_read_fd(fd, path, MAX_ONNX_FILE, &bytes, &len, err);
    if (rc) return rc;
    ox_ctx c = {.path = path, .onnx_bytes = bytes, .onnx_len = len};
    dir_of(path, c.dir, sizeof c.dir);
    uint8_t d[32];
    /* An artifact of any kind may start with these two bytes (4096 random bytes do, one time
       in 516). One that is not well-formed protobuf is no ONNX model: no loader reads it and
       no external data counts, so its digest is the file's own. The wire check's verdict is
       the loader's, so the two cannot disagree on what is ONNX. */
    ox_wire_check w = {0};
    if (!ox_wire_ok(bytes, bytes + len, &onnx__model_proto__descriptor, 0, &w)) {
        sg_sha256_hex(bytes, len, hex);
        free(bytes);
        return SG_OK;
    }
    rc = ox_unpack(path, bytes, len, &c.mp, err);
    /* Not an ONNX model after all (no c.mp, no external file): the file's own digest. */
    if (rc == SG_OK && c.mp) rc = hash_external(&c, err);
    if (rc == SG_OK) rc = ox_digest_final(&c, d, err);
    if (rc == SG_OK) sg_hex_encode(d, 32, hex);
    ox_ctx_free(&c);
    free(bytes);
    return rc;
}
