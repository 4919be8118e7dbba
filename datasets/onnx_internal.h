/* Internal to datasets/: the ONNX loader's graph compiler (model_onnx.c, onnx_tensor.c,
   onnx_compile.c, onnx_shapes.c, onnx_layers.c, onnx_plan.c). */
#ifndef STAGEGATE_DATASETS_ONNX_INTERNAL_H
#define STAGEGATE_DATASETS_ONNX_INTERNAL_H

#include <openssl/evp.h>

#include "onnx/onnx.pb-c.h"
#include "stagegate/model.h"
#include "stagegate/onnx.h"

#define OX_MAX_RANK 8
/* Every tensor, constant or per row, stays below this many elements (and every size
   computed from it far from overflow). */
#define OX_MAX_ELEMS ((int64_t)1 << 31)
#define OX_MAX_WIDTH (1 << 24)
/* Constant folding can multiply sizes (Concat of Concats, broadcasting); all constants it
   computes together stay below this. */
#define OX_MAX_FOLDED ((size_t)256 << 20)
/* Integers a float holds exactly: per-row int64 values stay within this. */
#define OX_MAX_EXACT ((int64_t)1 << 24)

enum { OX_FLOAT = 1, OX_INT64 = 7 };

/* A value of the graph: a constant (initializer, Constant, or folded), or a tensor with a
   leading batch dimension that exists only at run time. */
typedef struct {
    const char *name;
    bool defined, is_const;
    int rank; /* constant: its rank; per-row: the rank of one row (batch dimension excluded) */
    int64_t dims[OX_MAX_RANK];
    int64_t count; /* elements (constant) or width of one row */
    int dtype;     /* OX_FLOAT or OX_INT64 */
    float *f;
    int64_t *i;
    int data;     /* per-row: index of the value that owns the data (itself unless an alias) */
    int producer; /* per-row: step that writes it, -1 for the graph input */
    int uses;     /* steps (and the graph output) that read the data */
    bool unnamed; /* a partial result inside one node: never found by name */
    bool hidden;  /* a value of an If branch, out of scope once the branch is compiled */
    /* A constant int64 vector computed from a Shape: bit k set when element k is the batch
       size, known only per run (its stored value is 0 and means nothing). Only a Reshape's
       shape may use it, at its first element; Gather, Concat, Squeeze, Unsqueeze and
       Identity carry it along, and any other node given it is refused. */
    uint64_t batch_mask;
    /* Per-row: a condition of 0/1 (a comparison's result), read only by Where's condition,
       Not, And, Or, Equal and Cast. */
    bool is_bool;
    /* Per-row: float values cast to double (PyTorch puts one before IsInf): the same numbers,
       read only by IsInf, IsNaN and Cast. */
    bool is_double;
    /* Per-row: int64 values (a condition cast to an integer type, their sums, an ArgMax),
       held as floats, exact: every value is an integer of at most int_bound in magnitude,
       which stays at most OX_MAX_EXACT. Read only by the nodes that keep them exact
       (int_inputs in onnx_compile.c). */
    bool is_int;
    int64_t int_bound;
    /* Per-row float values known to lie within [-fbound, fbound] (0: not known): set by a Clip
       with finite bounds, kept by Floor, Ceil, Round, Relu, Abs, Neg and the element-moving
       nodes; a Cast of them to an integer type gives integer rows of that bound. */
    float fbound;
    /* Per-row: where the batch is. PyTorch's attention moves it ([T, N, E], then [T, N*H, d]
       and [T*N, E]): the value's full shape is its row shape (rank, dims: what one row holds,
       in memory order) with the batch inserted at axis bpos and merged there with the
       bouter row axes before it and the binner after it. All 0: the leading dimension. */
    int8_t bpos, bouter, binner;
    /* An ONNX-ML model's output (onnx_ml.c): class probabilities (OX_ML_PROBA) or a
       regression value (OX_ML_VALUE), said by the operator that made it; ml_zipmap: the
       graph sees it as ZipMap's sequence of maps. */
    int8_t ml_kind;
    bool ml_zipmap;
} ox_value;

enum { OX_ML_PROBA = 1, OX_ML_VALUE = 2 };

/* Starts the framed digest of a model with external data (docs/formats.md, "Digest"). */
#define OX_DIGEST_TAG "stagegate onnx external data v1"

typedef struct {
    const char *path; /* for messages */
    char dir[4096];   /* the model's directory, for external data */
    Onnx__ModelProto *mp;
    int opset;
    sg_onnx_output output_flag;
    /* The graph output that is the model's when the graph has several (--output-name, or
       metadata_props stagegate.output_name; NULL: none named), where the name came from, and
       its index once found (-1 before). The nodes it does not need are left out (skip). */
    const char *output_name, *output_name_from;
    int chosen_output;
    bool *skip;
    /* The model's digest with external data (docs/formats.md): started at the first external
       file, over the framed .onnx bytes, then each file framed with its location. Without
       external data the digest is the .onnx file's own SHA-256 and md stays NULL. */
    const uint8_t *onnx_bytes;
    size_t onnx_len;
    EVP_MD_CTX *md;
    /* External data files already hashed and read, by location. */
    int n_ext;
    char **ext_name;
    uint8_t **ext_bytes;
    size_t *ext_len;
    /* Values, and a name -> index hash table (open addressing). */
    ox_value *vals;
    int n_vals, cap_vals;
    int *hash;
    size_t hash_cap;
    int input, output;   /* value indices */
    int output_index;    /* the graph output that is the model's (of 1, or a label and it) */
    /* The graph input's declared batch size when it is fixed (an export made with a dummy
       input and no dynamic batch axis), else 0: said in a refusal about the batch. */
    int64_t input_batch;
    const char *input_name;
    size_t folded_bytes; /* constants computed at load, capped (OX_MAX_FOLDED) */
    /* Steps under construction; in/out and argument buffers hold value indices. */
    sg_onnx_step *steps;
    int n_steps, cap_steps;
    /* Set while a Constant node's value is read: an infinity there is a value (a mask's
       -inf), not a weight gone wrong. */
    bool infinities_ok;
    /* The node being compiled, for messages. */
    const Onnx__NodeProto *node;
    int node_index;
    /* Set while a node computes a partial result (a Max/Min of three or more inputs): the
       node's next output is then an unnamed value, called this in messages. The names
       alternate between two buffers, as a chain step reads the partial result before. */
    const char *partial;
    char partial_name[2][96];
    /* Every name a node reads or the graph outputs, sorted; built when first needed (is an
       optional output of a node used?). */
    const char **consumed;
    size_t n_consumed;
    bool consumed_built;
    /* Set while a node reading rows whose batch has moved is compiled (onnx_batch.c):
       input k is value in_override[k] when that is >= 0 (a constant laid out for the rows'
       memory order), and Gemm takes rows of any rank. */
    bool overriding, gemm_any_rank;
    int in_override[4];
    int if_depth; /* branches of If being compiled, nested */
    /* The ai.onnx.ml opset imported, if ml_imported. */
    int ml_opset;
    bool ml_imported;
    /* Names made for the parts of an ONNX-ML node (owned), and the label outputs of its
       classifiers, which nothing computes: a graph output naming one is left out. */
    char **owned;
    int n_owned, cap_owned;
    const char **ml_labels;
    int n_ml_labels, cap_ml_labels;
    /* The class values an ONNX-ML classifier or ZipMap names (in the model's protobuf), and
       the first node that named them: every such node must name the same. */
    const int64_t *ml_classes;
    size_t n_ml_classes;
    const char *ml_classes_node;
    /* The ML node whose output is the model's, for the output rule. */
    const char *ml_source;
    /* A node gives a NaN feature a meaning (a tree ensemble routes it, an Imputer replaces
       it): the validation set may then hold NaN in /X (sg_model.missing_values). */
    bool routes_nan;
} ox_ctx;

/* The model's digest into out: the .onnx file's SHA-256, or with external data the framed
   digest that external_file built. */
sg_status ox_digest_final(ox_ctx *c, uint8_t out[32], sg_err *err);

/* Bytes of the node-specific part of an ox_node_err message. */
#define OX_NODE_MSG 1280

/* "PATH: node 'NAME' (OP, opset N): " + fmt. */
sg_status ox_node_err(ox_ctx *c, sg_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ox_node_err for a node that would not keep the batch as the leading dimension (SG_EINPUT);
   when the graph input declares a fixed batch, the message says so and how to export one. */
sg_status ox_batch_err(ox_ctx *c, sg_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int ox_value_find(ox_ctx *c, const char *name);
/* Adds a value (the name must be new); returns its index or -1 (err set). */
int ox_value_add(ox_ctx *c, const char *name, sg_err *err);
/* Adds a value no name finds (a partial result); label names it in messages. */
int ox_value_add_unnamed(ox_ctx *c, const char *label, sg_err *err);

/* Reads a TensorProto (initializer or Constant's value) into value v, which must be empty:
   checks data type, dims, byte counts, external data (resolved inside the model's
   directory, read whole and hashed). what names it in messages. */
sg_status ox_tensor_read(ox_ctx *c, const Onnx__TensorProto *t, ox_value *v, const char *what,
                   sg_err *err);
void ox_ctx_free(ox_ctx *c);
/* A new constant's values from constant src, of the same count and type (its shape may
   differ). */
void ox_copy_values(ox_value *dst, const ox_value *src);
/* "[d0,d1,...]" for messages. */
void ox_shape_str(const int64_t *dims, size_t n, char *buf, size_t len);
/* Reads and hashes the external file a tensor names, if any (cached by location). */
sg_status ox_external_prefetch(ox_ctx *c, const Onnx__TensorProto *t, const char *what, sg_err *err);
/* Frees a plan's steps and their arrays (also a compiler's list under construction). */
void sg_onnx_plan_free_steps(sg_onnx_plan *p);

/* Helpers of the node compilers (onnx_compile.c) for c->node. */
const Onnx__AttributeProto *ox_attr(const ox_ctx *c, const char *name);
int64_t ox_attr_i(const ox_ctx *c, const char *name, int64_t dflt);
float ox_attr_f(const ox_ctx *c, const char *name, float dflt);
/* Value index of input k, -1 when absent or an empty name (an omitted optional input). */
int ox_in(const ox_ctx *c, size_t k);
sg_status ox_need_in(ox_ctx *c, size_t k, sg_err *err, int *out);
sg_status ox_only_first_output(ox_ctx *c, sg_err *err);
/* Calls fn for each name node nd reads: its inputs (implicit false), and for an If the names
   the nodes of its branches read (implicit true; some are the branches' own values). */
void ox_node_reads(const Onnx__NodeProto *nd,
                   void (*fn)(void *arg, const char *name, bool implicit), void *arg);
/* Whether a node or the graph output reads name; -1 when out of memory. */
int ox_consumed(ox_ctx *c, const char *name);
sg_onnx_step *ox_step_new(ox_ctx *c, sg_onnx_step_kind kind, sg_err *err);
/* Output 0 as a per-row value of that row shape, written by the newest step (_k: output k). */
sg_status ox_dyn_out(ox_ctx *c, int rank, const int64_t *dims, sg_err *err, int *out);
sg_status ox_dyn_out_k(ox_ctx *c, size_t k, int rank, const int64_t *dims, sg_err *err, int *out);
/* Axes from the attribute (before opset 13) or a constant input (13 and later). */
sg_status ox_get_axes(ox_ctx *c, size_t input, int64_t *axes, int *n, sg_err *err);
/* A new value for output k (the name must be new). */
sg_status ox_new_out(ox_ctx *c, size_t k, sg_err *err, int *out);
/* Output 0 as per-row value src under another row shape (no data moves; _k: output k). */
int ox_alias_out(ox_ctx *c, int src, int rank, const int64_t *dims, sg_err *err);
int ox_alias_out_k(ox_ctx *c, size_t k, int src, int rank, const int64_t *dims, sg_err *err);
/* Output 0 as a new constant of that shape and type (counted against OX_MAX_FOLDED; _k:
   output k). */
sg_status ox_const_out(ox_ctx *c, int rank, const int64_t *dims, int dtype, sg_err *err, int *out);
sg_status ox_const_out_k(ox_ctx *c, size_t k, int rank, const int64_t *dims, int dtype, sg_err *err,
                         int *out);
/* The shape-only and constant nodes (onnx_shapes.c). */
int ox_op_reshape(ox_ctx *c, sg_err *err);
sg_status ox_op_shape(ox_ctx *c, sg_err *err);
sg_status ox_op_gather(ox_ctx *c, sg_err *err);
int ox_op_flatten(ox_ctx *c, sg_err *err);
int ox_op_squeeze(ox_ctx *c, bool unsqueeze, sg_err *err);
int ox_op_cast(ox_ctx *c, sg_err *err);
sg_status ox_op_constant(ox_ctx *c, sg_err *err);
sg_status ox_op_concat(ox_ctx *c, sg_err *err);
int ox_op_identity(ox_ctx *c, sg_err *err);
int ox_op_dropout(ox_ctx *c, sg_err *err);
/* The nodes that move, repeat or fill elements (onnx_layout.c). */
sg_status ox_op_transpose(ox_ctx *c, sg_err *err);
sg_status ox_op_expand(ox_ctx *c, sg_err *err);
sg_status ox_op_tile(ox_ctx *c, sg_err *err);
sg_status ox_op_split(ox_ctx *c, sg_err *err);
sg_status ox_op_constant_of_shape(ox_ctx *c, sg_err *err);
/* Full shape of a value into dims, its rank returned: a per-row value's batch is axis 0, of
   size -1. */
int ox_full_shape(const ox_value *v, int64_t *dims);
/* Output k as rows of shape (rank, dims) whose element j is element cols[j] of per-row x:
   a gather step that owns cols (an alias when no element moves; cols freed then). */
sg_status ox_gather_out(ox_ctx *c, size_t k, int x, int rank, const int64_t *dims, int *cols,
                        sg_err *err, int *out);
/* The same where cols may hold -1: those elements read pad (a convolution's or pooling
   window's taps in the padding, Pad's new elements). */
sg_status ox_gather_out_pad(ox_ctx *c, size_t k, int x, int rank, const int64_t *dims, int *cols,
                            float pad, sg_err *err, int *out);
/* Value x with its full axes in the order perm (perm[0] = 0 for rows): output 0 of the node,
   or an unnamed value called label when label is not NULL (*out: its index). */
sg_status ox_permute(ox_ctx *c, int x, const int *perm, const char *label, sg_err *err, int *out);
/* The same as output k of the node. */
sg_status ox_permute_k(ox_ctx *c, size_t k, int x, const int *perm, sg_err *err, int *out);
/* Per-row value x expanded to rows of shape (rank, dims), x's dims each 1 or the same: an
   unnamed value (*out) written by a gather step. */
sg_status ox_expand_row(ox_ctx *c, int x, int rank, const int64_t *dims, sg_err *err, int *out);
/* Constant k broadcast to one row of shape (rank, dims) of width floats, which the caller
   owns (k has at most rank axes, aligned from the right). */
sg_status ox_const_row(ox_ctx *c, const ox_value *k, int rank, const int64_t *dims, int64_t width,
                       float **out, sg_err *err);
/* The layer nodes (onnx_layers.c). */
sg_status ox_op_gemm(ox_ctx *c, bool matmul, sg_err *err);
/* A GEMM step with no bias: per-row x's vectors along its last axis (k) times W, which holds
   wgroups [k][m] matrices (vector v times matrix v % wgroups); output 0 (or the partial
   value) of row shape (rank, dims). */
sg_status ox_gemm_blocks(ox_ctx *c, int x, const float *W, int64_t wgroups, int64_t m, int rank,
                         const int64_t *dims, sg_err *err, int *out);
/* MatMul of rows [batch, ..., m, k] by constant B of rank 3 or more (a stack of matrices,
   broadcast as numpy): output 0 or the partial value. */
sg_status ox_matmul_stacked(ox_ctx *c, int x, const ox_value *B, sg_err *err);
/* MatMul of two per-row values (each row its own matrices): output 0 or the partial value. */
sg_status ox_matmul_rows(ox_ctx *c, int x, int y, sg_err *err);
sg_status ox_op_batchnorm(ox_ctx *c, sg_err *err);
sg_status ox_op_layernorm(ox_ctx *c, sg_err *err);
sg_status ox_op_softmax(ox_ctx *c, bool log, sg_err *err);
sg_status ox_op_reduce_mean(ox_ctx *c, sg_err *err);
/* A reduction (kind an sg_onnx_reduce, -1 the mean) of x over the given axes (of its full
   shape; none: all, for a constant) into output 0 or the partial value: on rows any axes but
   the batch, on constants folded. */
sg_status ox_reduce_axes(ox_ctx *c, int kind, int x, const int64_t *axes, int n, bool keep,
                         sg_err *err);
sg_status ox_op_einsum(ox_ctx *c, sg_err *err);
sg_status ox_op_cumsum(ox_ctx *c, sg_err *err);
sg_status ox_op_topk(ox_ctx *c, sg_err *err);
/* GatherElements, OneHot and Range (onnx_select.c). */
sg_status ox_op_gather_elements(ox_ctx *c, sg_err *err);
sg_status ox_op_onehot(ox_ctx *c, sg_err *err);
sg_status ox_op_range(ox_ctx *c, sg_err *err);
sg_status ox_op_eyelike(ox_ctx *c, sg_err *err);
sg_status ox_op_size(ox_ctx *c, sg_err *err);
/* LSTM (gru false) and GRU (onnx_rnn.c); seq_first: X is [T, batch, I] rows whose batch
   moved to axis 1 (layout 0). outs: the value of each output (-1 when not named). */
sg_status ox_op_rnn(ox_ctx *c, bool gru, bool seq_first, int outs[3], sg_err *err);
sg_status ox_op_instancenorm(ox_ctx *c, sg_err *err);
/* Convolutions and pooling (onnx_conv.c). */
sg_status ox_op_conv(ox_ctx *c, sg_err *err);
sg_status ox_op_pool(ox_ctx *c, bool max, sg_err *err);
sg_status ox_op_global_pool(ox_ctx *c, bool max, sg_err *err);
sg_status ox_op_pad(ox_ctx *c, sg_err *err);
/* ReduceSum, ReduceMax, ...: kind is an sg_onnx_reduce. */
sg_status ox_op_reduce(ox_ctx *c, int kind, sg_err *err);
sg_status ox_op_slice(ox_ctx *c, sg_err *err);
/* Input 0, float rows, toward zero: a unary step (Cast of floats to an integer type). */
sg_status ox_emit_trunc(ox_ctx *c, bool to_int32, sg_err *err);
/* An ONNX TensorProto data type's name ("float", "int64", ...), for messages. */
const char *ox_type_name(int64_t t);
/* ArgMax (max) and ArgMin: integer rows, or an int64 constant. */
sg_status ox_op_argmax(ox_ctx *c, bool max, sg_err *err);

/* Rows whose batch is not the leading dimension (onnx_batch.c). */
static inline bool ox_placed(const ox_value *v)
{
    return !v->is_const && (v->bpos || v->bouter || v->binner);
}
/* The full shape of a value as the graph sees it, the batch -1 (*factor: the row sizes
   merged with it, 1 when none); its rank returned. */
int ox_logical_shape(const ox_value *v, int64_t *dims, int64_t *factor);
typedef struct {
    const Onnx__NodeProto *node; /* the node as read, while c->node is a translated copy */
    Onnx__NodeProto copy;
    Onnx__AttributeProto *attrs[64], attr;
    int64_t ints[OX_MAX_RANK + 1];
    int first_new;               /* values from here on are the node's */
    int8_t bpos, bouter, binner; /* where the outputs' batch is */
    bool active;
    bool done; /* the node was compiled already (a Tile as an Expand) */
} ox_placed_state;
/* Before a node: when it reads rows whose batch has moved, checks it can, and translates its
   axes and constants to the rows' memory order (c->node, in_override). */
sg_status ox_placed_begin(ox_ctx *c, const char *op, ox_placed_state *st, sg_err *err);
/* After it: restores the node and places the batch of its per-row outputs. */
void ox_placed_end(ox_ctx *c, ox_placed_state *st, sg_status rc);
/* Transpose and Reshape of rows wherever their batch is (onnx_batch.c). */
sg_status ox_placed_transpose(ox_ctx *c, int x, const int64_t *perm, sg_err *err);
sg_status ox_placed_reshape(ox_ctx *c, int x, int s, sg_err *err);
bool ox_is_unary(const char *op);

/* ONNX-ML (onnx_ml.c): the operators of domain ai.onnx.ml supported, and c->node's
   compilation when it is one of them. */
#define OX_ML_DOMAIN "ai.onnx.ml"
#define OX_ML_OPSET_MIN 1
#define OX_ML_OPSET_MAX 3
bool ox_ml_op_supported(const char *op);
const char *ox_ml_supported_ops(void);
sg_status ox_compile_ml(ox_ctx *c, sg_err *err);
/* Whether name is the label output of a classifier (left out of the graph's outputs). */
bool ox_ml_is_label(const ox_ctx *c, const char *name);

/* Compiles node (already known to have its inputs defined) into steps or a constant. */
int ox_compile_node(ox_ctx *c, sg_err *err);
/* Lists the supported operators, comma-separated. */
const char *ox_supported_ops(void);
bool ox_op_supported(const char *op);

/* After every node: output meaning, fusions, buffers; fills m (task, classes, layers when
   the graph is a pure MLP chain) and m->onnx. */
int ox_finish(ox_ctx *c, sg_model *m, sg_err *err);

#endif
