#!/usr/bin/python3
"""Reference test: graphs built with onnx.helper that use each supported operator, run by
`stagegate eval`, against a numpy evaluation of the same graph.

Each case computes Y from the input X [batch, 6] and ends in a fixed random projection
MatMul(Y, P) -> [batch, 1] read as a regression value (metadata_props stagegate.output),
so the prediction file holds the graph's own numbers. Element-wise operators run side by
side, concatenated, so each one's numbers reach the projection; the attribute forms test
the ONNX defaults (attribute absent) and other values. Folding cases also check, from the
model description, that nodes whose inputs are all constants left no step behind.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper
from scipy.special import erf

SG = os.environ["STAGEGATE_BIN"]
SRC = os.environ["STAGEGATE_SOURCE_DIR"]
D = 6
rng = np.random.default_rng(7)
more_rng = np.random.default_rng(11)  # more_cases' own draws
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def f32(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def elu(x, alpha=1.0):
    return np.where(x < 0, alpha * np.expm1(np.minimum(x, 0)), x)


def selu(x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def celu(x, alpha=1.0):
    return np.maximum(0, x) + np.minimum(0, alpha * np.expm1(np.minimum(x, 0) / alpha))


def softplus(x):
    return np.logaddexp(0, x)


def hard_sigmoid(x, alpha=0.2, beta=0.5):
    return np.clip(alpha * x + beta, 0, 1)


def init(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def node(op, ins, out, **kw):
    return helper.make_node(op, ins, [out], name=out, **kw)


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def model(nodes, inits, width, opset, name, prng=None):
    P = ((prng or rng).normal(size=(width, 1)) / np.sqrt(width)).astype(np.float32)
    inits = list(inits) + [numpy_helper.from_array(P, "proj")]
    nodes = list(nodes) + [helper.make_node("MatMul", ["y", "proj"], ["out"], name="proj")]
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 1])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="onnx.helper")
    m.ir_version = 7
    m.metadata_props.add(key="stagegate.output", value="value")
    return m, P


def axes(opset, node_name, values, inits, attr_before=13):
    """Squeeze/Unsqueeze/ReduceMean axes: an attribute before the opset, an input after."""
    if opset < attr_before:
        return [], {"axes": values}
    nm = node_name + "_axes"
    inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), nm))
    return [nm], {}


def cases(opset):
    out = []
    # Gemm with transB, alpha, beta and a bias.
    B, C = f32(5, D), f32(5)
    out.append(("gemm", [helper.make_node("Gemm", ["x", "B", "C"], ["y"], transB=1, alpha=0.5,
                                          beta=2.0)],
                [numpy_helper.from_array(B, "B"), numpy_helper.from_array(C, "C")], 5,
                lambda X: 0.5 * X @ B.T + 2 * C))
    # MatMul + Add + Relu (fused), then Tanh, Sigmoid, LeakyRelu, Erf element-wise.
    W, b = f32(D, 8), f32(8)
    out.append(("matmul_add_acts", [
        helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Tanh", ["r"], ["t"]),
        helper.make_node("Sigmoid", ["t"], ["s"]),
        helper.make_node("LeakyRelu", ["a"], ["l"], alpha=0.2),
        helper.make_node("Erf", ["l"], ["e"]), helper.make_node("Add", ["s", "e"], ["y"])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")], 8,
        lambda X: sigmoid(np.tanh(np.maximum(X @ W + b, 0))) +
        erf(np.where(X @ W + b >= 0, X @ W + b, 0.2 * (X @ W + b)))))
    # Sub, Mul, Div with constants on either side, Pow and Sqrt.
    c1, c2 = f32(D), f32(1, D, lo=0.5, hi=2.0)
    base = f32(D, lo=1.5, hi=3.0)
    out.append(("sub_mul_div_pow_sqrt", [
        helper.make_node("Sub", ["c1", "x"], ["s"]), helper.make_node("Mul", ["s", "c2"], ["m"]),
        helper.make_node("Tanh", ["m"], ["tm"]),
        helper.make_node("Sigmoid", ["tm"], ["g"]), helper.make_node("Div", ["c2", "g"], ["dv"]),
        helper.make_node("Sqrt", ["g"], ["q"]), helper.make_node("Pow", ["q", "three"], ["p3"]),
        helper.make_node("Pow", ["base", "g"], ["pb"]), helper.make_node("Sub", ["dv", "p3"], ["t"]),
        helper.make_node("Div", ["t", "pb"], ["y"])],
        [numpy_helper.from_array(c1, "c1"), numpy_helper.from_array(c2, "c2"),
         numpy_helper.from_array(base, "base"),
         numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three")], D,
        lambda X: (c2 / sigmoid(np.tanh((c1 - X) * c2)) -
                   np.sqrt(sigmoid(np.tanh((c1 - X) * c2))) ** 3) /
        base ** sigmoid(np.tanh((c1 - X) * c2))))
    # Softmax and LogSoftmax (axis 1 works at every opset), then Add.
    out.append(("softmax_logsoftmax", [
        helper.make_node("Softmax", ["x"], ["sm"], axis=1),
        helper.make_node("LogSoftmax", ["x"], ["ls"], axis=1),
        helper.make_node("Add", ["sm", "ls"], ["y"])], [], D,
        lambda X: softmax(X) + np.log(softmax(X))))
    # BatchNormalization (inference) after a Gemm (folded into it) and on the input.
    sc, bb, mu, var = f32(D, lo=0.5, hi=1.5), f32(D), f32(D), f32(D, lo=0.5, hi=2.0)
    W2 = f32(D, D)
    out.append(("batchnorm", [
        helper.make_node("BatchNormalization", ["x", "sc", "bb", "mu", "var"], ["n1"],
                         epsilon=1e-3),
        helper.make_node("MatMul", ["n1", "W2"], ["g"]),
        helper.make_node("BatchNormalization", ["g", "sc", "bb", "mu", "var"], ["y"])],
        [numpy_helper.from_array(a, n) for a, n in ((sc, "sc"), (bb, "bb"), (mu, "mu"),
                                                    (var, "var"), (W2, "W2"))], D,
        lambda X: (((X - mu) / np.sqrt(var + 1e-3) * sc + bb) @ W2 - mu) /
        np.sqrt(var + 1e-5) * sc + bb))
    # ReduceMean, a per-row column broadcast, Identity, Dropout, Constant, Cast.
    inits = []
    ins, kw = axes(opset, "rm", [1], inits, attr_before=18)
    const = helper.make_tensor("k", TensorProto.FLOAT, [D], f32(D).tolist())
    kval = numpy_helper.to_array(const)
    drop_in = ["i"] if opset < 12 else ["i", "ratio"]
    if opset >= 12:
        inits.append(numpy_helper.from_array(np.array(0.5, dtype=np.float32), "ratio"))
    inits.append(numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "ints"))
    out.append(("reducemean_identity_dropout_constant_cast", [
        helper.make_node("ReduceMean", ["x"] + ins, ["mean"], keepdims=1, **kw),
        helper.make_node("Sub", ["x", "mean"], ["c"]), helper.make_node("Identity", ["c"], ["i"]),
        helper.make_node("Dropout", drop_in, ["dr"]),
        helper.make_node("Constant", [], ["k"], value=const),
        helper.make_node("Cast", ["dr"], ["cd"], to=1),
        helper.make_node("Cast", ["ints"], ["fl"], to=1),
        helper.make_node("Identity", ["fl"], ["flm"]),
        helper.make_node("Concat", ["flm", "flm", "flm"], ["f6"], axis=0),
        helper.make_node("Mul", ["cd", "k"], ["ck"]), helper.make_node("Add", ["ck", "f6"], ["y"])],
        inits, D,
        lambda X: (X - X.mean(1, keepdims=True)) * kval + np.array([2, 3] * 3, np.float32)))
    # Unsqueeze, Flatten, Reshape, Squeeze, Concat of rows.
    inits2 = []
    u_in, u_kw = axes(opset, "u", [1], inits2)
    s_in, s_kw = axes(opset, "s", [2], inits2)
    u2_in, u2_kw = axes(opset, "u2", [2], inits2)
    inits2.append(numpy_helper.from_array(np.array([0, 2, 3], dtype=np.int64), "shape3"))
    inits2.append(numpy_helper.from_array(np.array([-1, 6], dtype=np.int64), "shape2"))
    out.append(("shapes_concat", [
        helper.make_node("Unsqueeze", ["x"] + u_in, ["u"], **u_kw),
        helper.make_node("Flatten", ["u"], ["f"], axis=1),
        helper.make_node("Reshape", ["f", "shape3"], ["r3"]),
        helper.make_node("Reshape", ["r3", "shape2"], ["r2"]),
        helper.make_node("Unsqueeze", ["r2"] + u2_in, ["u2"], **u2_kw),
        helper.make_node("Squeeze", ["u2"] + s_in, ["sq"], **s_kw),
        helper.make_node("Relu", ["sq"], ["rl"]),
        helper.make_node("Concat", ["sq", "rl", "x"], ["y"], axis=1)], inits2, 3 * D,
        lambda X: np.concatenate([X, np.maximum(X, 0), X], 1)))
    out += new_op_cases(opset)
    out += fold_guard_cases()
    out += layout_cases(opset)
    # (their own random draws: the shared generator's state is restored after, so the cases
    # after them see the values they always had). For CI time they run at the opsets where
    # their operators' versions differ: Einsum, MatMul and InstanceNormalization have one
    # version from 12 (13 and 17); Pad, the pools, TopK, CumSum and the RNNs change at 10,
    # 11 and 14 (9, 11 and 17; 13 and 15 hold the versions of 11 or 17).
    state = rng.bit_generator.state
    if opset in (13, 17):
        out += stack_cases(opset)
    if opset in (9, 11, 17):
        out += conv_cases(opset)
    rng.bit_generator.state = state
    # LayerNormalization is an ONNX op from opset 17.
    if opset >= 17:
        g, bt = f32(D, lo=0.5, hi=1.5), f32(D)
        out.append(("layernorm", [
            helper.make_node("LayerNormalization", ["x", "g", "bt"], ["y"], epsilon=1e-5)],
            [numpy_helper.from_array(g, "g"), numpy_helper.from_array(bt, "bt")], D,
            lambda X: (X - X.mean(1, keepdims=True)) / np.sqrt(X.var(1, keepdims=True) + 1e-5)
            * g + bt))
    return out


def fold_guard_cases():
    """A constant Mul, Div or BatchNormalization after a MatMul is folded into its weights
    only where W·c stays a finite normal float: each case here has a product past the range
    (1e38 · 4, W / 0, a BatchNormalization scale of 1e38), which the folded GEMM had summed
    as inf - inf (a NaN refused as output) where ONNX's (x·W)·c is ±huge and the Tanh or
    Sigmoid after it finite."""
    out = []
    W = f32(D, 3)
    W[0, 0], W[1, 0] = 4.0, -4.0  # (x·W)·1e38: finite in float64, inf - inf once folded
    c = np.array([1e38, 1e38, 0.5], dtype=np.float32)
    out.append(("fold_guard_mul", [
        helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Mul", ["m", "c"], ["s"]),
        helper.make_node("Tanh", ["s"], ["y"])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(c, "c")], 3,
        lambda X: np.tanh((X @ W) * c.astype(np.float64))))
    Wd = f32(D, 2)
    dz = np.array([0.0, 1e-39], dtype=np.float32)  # by zero, and by a subnormal

    def div_ref(X):
        with np.errstate(divide="ignore", over="ignore"):
            return 1 / (1 + np.exp(-np.clip((X @ Wd) / dz.astype(np.float64), -800, 800)))
    out.append(("fold_guard_div", [
        helper.make_node("MatMul", ["x", "Wd"], ["m"]), helper.make_node("Div", ["m", "dz"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["y"])],
        [numpy_helper.from_array(Wd, "Wd"), numpy_helper.from_array(dz, "dz")], 2, div_ref))
    Wb = f32(D, 2)
    Wb[0, 0], Wb[1, 0] = 4.0, -4.0
    sc, bb, mu, var = (np.array(v, dtype=np.float32) for v in
                       ([1e38, 1.0], [0.0, 0.1], [0.0, 0.2], [1.0, 1.0]))
    out.append(("fold_guard_batchnorm", [
        helper.make_node("MatMul", ["x", "Wb"], ["m"]),
        helper.make_node("BatchNormalization", ["m", "bsc", "bbb", "bmu", "bvar"], ["n"],
                         epsilon=1e-5),
        helper.make_node("Tanh", ["n"], ["y"])],
        [numpy_helper.from_array(a, n) for a, n in ((Wb, "Wb"), (sc, "bsc"), (bb, "bbb"),
                                                    (mu, "bmu"), (var, "bvar"))], 2,
        lambda X: np.tanh((X @ Wb - mu) / np.sqrt(var.astype(np.float64) + 1e-5) * sc + bb)))
    return out


def stack_cases(opset):
    """Einsum (opset 12+), MatMul by a stack of weight matrices, InstanceNormalization: each
    against numpy (np.einsum, np.matmul). Each per-row operand is X times a random constant,
    reshaped, so a row holds enough values for rank-3 and rank-4 operands; the output is every
    value of the result, flattened."""
    out = []
    Rs = {}

    def rows(name, shape):  # X @ R_name as [batch] + shape
        n = int(np.prod(shape))
        Rs[name] = R = f32(D, n)
        return ([node("MatMul", ["x", name + "_R"], name + "_f"),
                 node("Reshape", [name + "_f", name + "_sh"], name)],
                [init(name + "_R", R), i64(name + "_sh", [-1] + list(shape))])

    def take(X, name, shape):
        return (X @ Rs[name].astype(np.float64)).reshape((-1,) + tuple(shape))

    def flat_out(last, width):
        return [node("Reshape", [last, "flat"], "y")], [i64("flat", [-1, width])]

    if opset >= 12:
        # (equation, per-row operand shapes ("A", shape) or constants (array), in order)
        specs = [
            ("bi,ij->bj", [("A", (6,)), f32(6, 4)]),
            ("bnd,nde->bne", [("A", (3, 4)), f32(3, 4, 5)]),     # a stack (TabM, PLR)
            ("bgfi,fio->bgfo", [("A", (2, 3, 3)), f32(3, 3, 2)]),  # a stack behind an axis
            ("ij,bj->bi", [f32(5, 6), ("A", (6,))]),              # the constant first
            ("bi,ij,jk->bk", [("A", (6,)), f32(6, 5), f32(5, 2)]),
            ("ij,jk,bk->bi", [f32(3, 4), f32(4, 6), ("A", (6,))]),  # two constants folded
            ("...ij,jk->...ik", [("A", (2, 3)), f32(3, 4)]),
            ("bij->bji", [("A", (3, 4))]),
            ("bijk->bk", [("A", (2, 3, 4))]),
            ("bi,j->bij", [("A", (3,)), f32(4)]),
            ("bfi,f->bfi", [("A", (3, 4)), f32(3)]),
            ("bi,i->b", [("A", (6,)), f32(6)]),
            ("bi,ijk->bj", [("A", (6,)), f32(6, 3, 2)]),          # k summed in the constant
            ("bi,eij->bej", [("A", (6,)), f32(3, 6, 4)]),          # experts
            ("bti,tij,tj->bt", [("A", (3, 4)), f32(3, 4, 2), f32(3, 2)]),
            ("bqd,bkd->bqk", [("A", (2, 4)), ("B", (3, 4))]),      # attention scores
            ("bi,bi->b", [("A", (6,)), ("B", (6,))]),
            ("bij,bjk->bik", [("A", (2, 3)), ("B", (3, 2))]),
            ("bhqk,bhkd->bhqd", [("A", (2, 2, 3)), ("B", (2, 3, 2))]),
            ("bi,bj->bij", [("A", (3,)), ("B", (4,))]),
            ("bi,ij", [("A", (6,)), f32(6, 3)]),                   # implicit output
            ("bI,IJ->bJ", [("A", (6,)), f32(6, 2)]),
            (" b i , i j -> b j ", [("A", (6,)), f32(6, 3)]),
        ]
        for k, (eq, ops) in enumerate(specs):
            nodes, inits, names, shapes = [], [], [], []
            for j, o in enumerate(ops):
                if isinstance(o, tuple):
                    nm = "%s%d" % (o[0], k)
                    n2, i2 = rows(nm, o[1])
                    nodes += n2
                    inits += i2
                    shapes.append((nm, o[1]))
                else:
                    nm = "C%d_%d" % (k, j)
                    inits.append(init(nm, o))
                    shapes.append(None)
                names.append(nm)
            want = np.einsum(eq.replace(" ", ""),
                             *[take(np.zeros((1, D)), *sh) if sh else o
                               for o, sh in zip(ops, shapes)])
            width = int(np.prod(want.shape[1:]))
            nodes.append(helper.make_node("Einsum", names, ["e"], equation=eq))
            n2, i2 = flat_out("e", width)

            def ref(X, eq=eq.replace(" ", ""), ops=ops, shapes=shapes, width=width):
                args = [take(X, *sh) if sh else o.astype(np.float64)
                        for o, sh in zip(ops, shapes)]
                return np.einsum(eq, *args).reshape(len(X), width)
            out.append(("einsum %s" % eq.strip(), nodes + n2, inits + i2, width, ref))
    # MatMul by a stack: [2,1,3]@[2,3,4] (m 1), [2,2,3]@[2,3,4] (m 2: the m axis moved),
    # [3,2,2,3]@[3,2,3,4] (two stacked axes), [2,3]@[1,3,4] (a leading 1 against the batch),
    # [3,2,2,3]@[3,1,3,4] and [2,3,1,3]@[1,3,3,2] (a weight axis of 1 over a row axis),
    # [1,1,3]@[4,3,2] and [2,1,2,3]@[2,3,3,2] (a row axis of 1 repeated over the stack).
    for k, (xs, W) in enumerate([((2, 1, 3), f32(2, 3, 4)), ((2, 2, 3), f32(2, 3, 4)),
                                 ((3, 2, 2, 3), f32(3, 2, 3, 4)), ((2, 3), f32(1, 3, 4)),
                                 ((2, 4, 3), f32(2, 3, 2)), ((3, 2, 2, 3), f32(3, 1, 3, 4)),
                                 ((2, 3, 1, 3), f32(1, 3, 3, 2)), ((1, 1, 3), f32(4, 3, 2)),
                                 ((2, 1, 2, 3), f32(2, 3, 3, 2))]):
        n2, i2 = rows("S%d" % k, xs)
        width = int(np.prod(np.matmul(np.zeros((1,) + xs), W).shape[1:]))
        o2, oi = flat_out("m", width)
        nodes = n2 + [node("MatMul", ["S%d" % k, "W"], "m")] + o2
        inits = [init("W", W)] + i2 + oi
        out.append(("matmul stack %s@%s" % (list(xs), list(W.shape)), nodes, inits, width,
                    lambda X, k=k, xs=xs, W=W, width=width:
                    np.matmul(take(X, "S%d" % k, xs), W.astype(np.float64))
                    .reshape(len(X), width)))
    # Products of constants fold (a layer PyTorch left applied to a constant buffer): MatMul
    # with numpy's broadcasting and vectors, Gemm with transA, transB, alpha, beta and C.
    # The result, reshaped to [6, w], is the weight of x @ it.
    prods = [("MatMul", [f32(3, 4), f32(4, 2)], {}, lambda a, b: a @ b),
             ("MatMul", [f32(2, 1, 3, 4), f32(3, 4, 2)], {}, np.matmul),
             ("MatMul", [f32(4), f32(4, 6)], {}, np.matmul),
             ("MatMul", [f32(2, 3, 4), f32(4)], {}, np.matmul),
             ("Gemm", [f32(4, 3), f32(2, 4), f32(2)], dict(transA=1, transB=1, alpha=0.5, beta=2.0),
              lambda a, b, cc: 0.5 * a.T @ b.T + 2.0 * cc),
             ("Gemm", [f32(3, 4), f32(4, 2), f32(3, 1)], {}, lambda a, b, cc: a @ b + cc)]
    for k, (op, ins, attrs, fn) in enumerate(prods):
        names = ["K%d_%d" % (k, j) for j in range(len(ins))]
        want = fn(*[a.astype(np.float64) for a in ins]).reshape(D, -1)
        width = want.shape[1]
        nodes = [node(op, names, "pk", **attrs), node("Reshape", ["pk", "pshape"], "pw"),
                 node("MatMul", ["x", "pw"], "y")]
        inits = [init(n, a) for n, a in zip(names, ins)] + [i64("pshape", [D, width])]
        out.append(("%s of constants %s" % (op, [list(a.shape) for a in ins]), nodes, inits,
                    width, lambda X, want=want: X @ want))
    # CumSum (opset 11): along the last axis, a middle one (moved last and back), exclusive,
    # reverse, a negative axis; of a constant folded.
    if opset >= 11:
        def np_cumsum(T, axis, excl, rev):
            if rev:
                T = np.flip(T, axis)
            C = np.cumsum(T, axis)
            if excl:
                C = C - T
            return np.flip(C, axis) if rev else C
        for k, (xs, axis, excl, rev) in enumerate([((6,), 1, 0, 0), ((2, 3, 4), 2, 1, 0),
                                                   ((3, 4), -1, 0, 1), ((2, 3, 4), -2, 1, 1)]):
            n2, i2 = rows("U%d" % k, xs)
            width = int(np.prod(xs))
            o2, oi = flat_out("cs", width)
            out.append(("cumsum %s axis %d exclusive %d reverse %d" % (list(xs), axis, excl, rev),
                        n2 + [node("CumSum", ["U%d" % k, "cax"], "cs", exclusive=excl,
                                   reverse=rev)] + o2, i2 + oi + [i64("cax", axis)], width,
                        lambda X, k=k, xs=xs, axis=axis, excl=excl, rev=rev, width=width:
                        np_cumsum(take(X, "U%d" % k, xs), axis, excl, rev).reshape(len(X), width)))
        K = f32(2, 3)
        Kc = np_cumsum(K.astype(np.float64), 1, 1, 1).reshape(1, D)
        out.append(("cumsum of a constant", [node("CumSum", ["K", "kax"], "kc", exclusive=1,
                                                  reverse=1),
                                             node("Reshape", ["kc", "flat6"], "k6"),
                                             node("Add", ["x", "k6"], "y")],
                    [init("K", K), i64("kax", 1), i64("flat6", [1, D])], D,
                    lambda X, Kc=Kc: X + Kc, 2))
    # TopK (opset 10+; values and indices, largest and smallest, a middle axis, equal values
    # in index order as ONNX states: numpy's stable argsort), GatherElements by its indices,
    # OneHot of an ArgMax, Range of constants.
    if opset >= 10:
        def np_topk(T, k, axis, largest):
            key = -T if largest else T
            idx = np.take(np.argsort(key, axis=axis, kind="stable"), np.arange(k), axis=axis)
            return np.take_along_axis(T, idx, axis), idx
        for j, (xs, k, axis, largest) in enumerate([((6,), 3, -1, 1), ((3, 4), 2, 1, 0),
                                                    ((2, 3, 4), 4, -1, 1), ((6,), 6, 1, 0)]):
            if opset < 11 and not largest:  # largest is an attribute from opset 11
                continue
            n2, i2 = rows("T%d" % j, xs)
            kw = dict(axis=axis) if largest else dict(axis=axis, largest=0)
            # the rows twice along the axis: every value has an equal one
            nodes = n2 + [helper.make_node("Concat", ["T%d" % j, "T%d" % j], ["tf"], name="twice",
                                           axis=axis),
                          helper.make_node("TopK", ["tf", "tk"], ["tv", "ti"], name="topk", **kw),
                          node("Cast", ["ti"], "tif", to=TensorProto.FLOAT),
                          node("Flatten", ["tv"], "tv2"), node("Flatten", ["tif"], "ti2"),
                          helper.make_node("Concat", ["tv2", "ti2"], ["y"], axis=1)]

            def ref(X, j=j, xs=xs, k=k, axis=axis, largest=largest):
                T = take(X, "T%d" % j, xs)
                v, i = np_topk(np.concatenate([T, T], axis), k, axis, largest)
                return np.concatenate([v.reshape(len(X), -1), i.reshape(len(X), -1)], 1)
            width = int(ref(np.zeros((1, D))).shape[1])
            out.append(("topk %s k %d axis %d largest %d" % (list(xs), k, axis, largest), nodes,
                        i2 + [i64("tk", [k])], width, ref))
        # NaN ranks above every number: last among the smallest (Sqrt of the negatives;
        # the Abs half keeps 6 numbers in every row)
        if opset >= 11:
            n2, i2 = rows("T9", (6,))
            nodes = n2 + [node("Sqrt", ["T9"], "sq"), node("Abs", ["T9"], "ab"),
                          helper.make_node("Concat", ["sq", "ab"], ["sa"], name="sa", axis=1),
                          helper.make_node("TopK", ["sa", "tk3"], ["tv", "ti"], name="topk",
                                           largest=0),
                          node("Cast", ["ti"], "tif", to=TensorProto.FLOAT),
                          helper.make_node("Concat", ["tv", "tif"], ["y"], axis=1)]

            def ref_nan(X):
                T = take(X, "T9", (6,))
                with np.errstate(invalid="ignore"):
                    A = np.concatenate([np.sqrt(T), np.abs(T)], 1)
                i = np.argsort(A, 1, kind="stable")[:, :3]  # NaN sorts last
                return np.concatenate([np.take_along_axis(A, i, 1), i], 1)
            out.append(("topk smallest with NaN", nodes, i2 + [i64("tk3", [3])], 6, ref_nan))
        # GatherElements of rows by TopK's indices (sorted ascending: the first 3 of 6 by
        # value), along the last axis and a middle one; OneHot of ArgMax (depth 6, values
        # [-1, 2]); Range folded into an Add.
        n2, i2 = rows("G0", (2, 6))
        nodes = n2 + [helper.make_node("TopK", ["G0", "gk"], ["gv", "gi"], name="gtopk", axis=-1,
                                       **({} if opset < 11 else dict(largest=0))),
                      node("GatherElements", ["G0", "gi"], "ge", axis=2),
                      node("Flatten", ["ge"], "y")]
        if opset >= 11:
            out.append(("gatherelements by topk indices", nodes, i2 + [i64("gk", [3])], 6,
                        lambda X: np.sort(take(X, "G0", (2, 6)), 2)[:, :, :3].reshape(len(X), 6)))
            n2, i2 = rows("G1", (3, 2))
            idx = np.array([[[2, 0]], [[1, 1]]])  # constant picks along axis 1, via Expand
            nodes = n2 + [node("ArgMax", ["G1"], "am", axis=1, keepdims=1),  # [N, 1, 2] in 0..2
                          node("GatherElements", ["G1", "am"], "ge", axis=1),
                          node("Flatten", ["ge"], "y")]
            out.append(("gatherelements along a middle axis", nodes, i2, 2,
                        lambda X: take(X, "G1", (3, 2)).max(1)))
        n2, i2 = rows("H0", (2, 3))
        nodes = n2 + [node("ArgMax", ["H0"], "hm", axis=2, keepdims=0),
                      node("OneHot", ["hm", "depth", "vals"], "oh", axis=-1),
                      node("Flatten", ["oh"], "y")]
        out.append(("onehot of argmax", nodes, i2 + [i64("depth", 6), init("vals", [-1.0, 2.0])],
                    12, lambda X: np.where(
                        np.arange(6) == take(X, "H0", (2, 3)).argmax(2)[..., None], 2.0, -1.0)
                    .reshape(len(X), 12)))
        eye = np.eye(2, 3, 1) * 2 + np.eye(2, 3)  # EyeLike of constants (k 1, and 0)
        out.append(("eyelike of constants", [
            node("EyeLike", ["E0"], "e1", k=1), node("EyeLike", ["E0"], "e0"),
            node("Add", ["e1", "e1"], "e2"), node("Add", ["e2", "e0"], "e3"),
            node("Reshape", ["e3", "flat6"], "e6"), node("Add", ["x", "e6"], "y")],
            [init("E0", f32(2, 3)), i64("flat6", [1, D])], D,
            lambda X: X + eye.reshape(1, D), 2))
        if opset >= 11:
            nodes = [node("Range", ["r0", "r1", "r2"], "rg"), node("Add", ["x", "rg"], "y")]
            out.append(("range of constants", nodes,
                        [init("r0", 0.5), init("r1", 3.5), init("r2", 0.5)], D,
                        lambda X: X + np.arange(0.5, 3.5, 0.5), 2))
    # LSTM and GRU against numpy (ONNX's equations), with what PyTorch does not export: GRU
    # without linear_before_reset, clip, direction reverse, layout 1 (opset 14), a constant
    # initial h. The input [batch, 3, 2] (layout 1) or moved to [3, batch, 2] (layout 0).
    def np_sig(v):
        return 1 / (1 + np.exp(-v))

    def np_rnn(Xs, gru, W, R, B, D, rev, lbr, clip, h0):
        n, T, _ = Xs.shape
        H = R.shape[2]
        Y = np.zeros((n, T, D, H))
        Hn = np.zeros((n, D, H))
        cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
        for d in range(D):
            back = d == 1 if D == 2 else rev
            h = np.tile(h0[d], (n, 1)) if h0 is not None else np.zeros((n, H))
            c_ = np.zeros((n, H))
            Wb, Rb = (B[d, :B.shape[1] // 2], B[d, B.shape[1] // 2:]) if B is not None else (0, 0)
            for t in (range(T - 1, -1, -1) if back else range(T)):
                x = Xs[:, t]
                if gru:
                    g = x @ W[d].T + Wb
                    rr = h @ R[d].T
                    Rbv = Rb if B is not None else np.zeros(3 * H)
                    z = np_sig(cl(g[:, :H] + rr[:, :H] + Rbv[:H]))
                    r = np_sig(cl(g[:, H:2 * H] + rr[:, H:2 * H] + Rbv[H:2 * H]))
                    if lbr:
                        hh = np.tanh(cl(g[:, 2 * H:] + r * (rr[:, 2 * H:] + Rbv[2 * H:])))
                    else:
                        hh = np.tanh(cl(g[:, 2 * H:] + (r * h) @ R[d][2 * H:].T + Rbv[2 * H:]))
                    h = (1 - z) * hh + z * h
                else:
                    g = cl(x @ W[d].T + h @ R[d].T + Wb + Rb)
                    i, o, f, cc = (np_sig(g[:, :H]), np_sig(g[:, H:2 * H]),
                                   np_sig(g[:, 2 * H:3 * H]), np.tanh(g[:, 3 * H:]))
                    c_ = f * c_ + i * cc
                    h = o * np.tanh(c_)
                Y[:, t, d] = h
            Hn[:, d] = h
        return Y, Hn
    rnn_specs = [("GRU", 1, False, 0, 0.0, 13), ("GRU", 1, False, 1, 0.0, 9),
                 ("GRU", 2, False, 0, 0.0, 13), ("LSTM", 1, True, 0, 0.0, 13),
                 ("LSTM", 2, False, 0, 0.5, 13), ("LSTM", 1, False, 0, 0.0, 14),
                 ("GRU", 1, False, 1, 0.7, 14)]
    for j, (op, nd, rev, lbr, clip, first) in enumerate(rnn_specs):
        if opset < first:
            continue
        layout1 = first == 14
        gru, H, T, I = op == "GRU", 3, 3, 2
        G = 3 if gru else 4
        W, R, B = f32(nd, G * H, I), f32(nd, G * H, H), f32(nd, 2 * G * H)
        h0 = f32(nd, 1, H) if j % 2 else None
        n2, i2 = rows("N%d" % j, (T, I))
        attrs = dict(hidden_size=H)
        if nd == 2:
            attrs["direction"] = "bidirectional"
        elif rev:
            attrs["direction"] = "reverse"
        if gru:
            attrs["linear_before_reset"] = lbr
        if clip:
            attrs["clip"] = clip
        if layout1:
            attrs["layout"] = 1
        src = "N%d" % j
        nodes = n2 if layout1 else n2 + [node("Transpose", [src], "st", perm=[1, 0, 2])]
        ins = [src if layout1 else "st", "W", "R", "B", "", "h0" if h0 is not None else ""]
        nodes += [helper.make_node(op, ins, ["ry", "rh"], name="rnn", **attrs)]
        if layout1:  # Y [batch, T, D, H], Y_h [batch, D, H]
            nodes += [node("Flatten", ["ry"], "fy"), node("Flatten", ["rh"], "fh")]
        else:  # Y [T, D, batch, H] -> [batch, T, D, H]; Y_h [D, batch, H] -> [batch, D, H]
            nodes += [node("Transpose", ["ry"], "ty", perm=[2, 0, 1, 3]),
                      node("Transpose", ["rh"], "th", perm=[1, 0, 2]),
                      node("Flatten", ["ty"], "fy"), node("Flatten", ["th"], "fh")]
        nodes.append(helper.make_node("Concat", ["fy", "fh"], ["y"], axis=1))
        inits = i2 + [init("W", W), init("R", R), init("B", B)]
        if h0 is not None:
            inits.append(init("h0", h0))

        def ref(X, j=j, gru=gru, W=W, R=R, B=B, nd=nd, rev=rev, lbr=lbr, clip=clip, h0=h0, T=T,
                I=I):
            Y, Hn = np_rnn(take(X, "N%d" % j, (T, I)), gru, W.astype(np.float64),
                           R.astype(np.float64), B.astype(np.float64), nd, rev, lbr, clip,
                           None if h0 is None else h0[:, 0].astype(np.float64))
            return np.concatenate([Y.reshape(len(X), -1), Hn.reshape(len(X), -1)], 1)
        width = T * nd * H + nd * H
        out.append(("%s D %d reverse %d lbr %d clip %g layout %d%s" % (
            op, nd, rev, lbr, clip, layout1, " h0" if h0 is not None else ""),
            nodes, inits, width, ref))
    # A constant times rows from the left: [3, 2] @ rows [2, 4] and a vector [3] @ rows
    # [2, 3, 4] (the rows' matrices transposed, one GEMM, transposed back).
    for k, (A, xs) in enumerate([(f32(3, 2), (2, 4)), (f32(3), (2, 3, 4))]):
        n2, i2 = rows("L%d" % k, xs)
        width = int(np.matmul(A, np.zeros((1,) + xs)).size)
        o2, oi = flat_out("lm", width)
        out.append(("constant %s @ rows %s" % (list(A.shape), list(xs)),
                    n2 + [node("MatMul", ["A", "L%d" % k], "lm")] + o2, [init("A", A)] + i2 + oi,
                    width, lambda X, k=k, A=A, xs=xs, width=width:
                    np.matmul(A.astype(np.float64), take(X, "L%d" % k, xs)).reshape(len(X), width)))
    # InstanceNormalization of [batch, 3, 4] (scale, shift per channel) and [batch, 2, 2, 3]
    # (scale 1, shift 0: GroupNorm's form; no affine step).
    for k, (xs, plain) in enumerate([((3, 4), False), ((2, 2, 3), True), ((4, 9), False)]):
        c = xs[0]
        g = np.ones(c, np.float32) if plain else f32(c, lo=0.5, hi=1.5)
        b = np.zeros(c, np.float32) if plain else f32(c)
        n2, i2 = rows("I%d" % k, xs)
        width = int(np.prod(xs))
        o2, oi = flat_out("n", width)
        nodes = n2 + [node("InstanceNormalization", ["I%d" % k, "g", "b"], "n", epsilon=1e-3)]
        inits = [init("g", g), init("b", b)] + i2

        def ref(X, k=k, xs=xs, g=g, b=b, width=width):
            T = take(X, "I%d" % k, xs)
            ax = tuple(range(2, T.ndim))
            Z = (T - T.mean(ax, keepdims=True)) / np.sqrt(T.var(ax, keepdims=True) + 1e-3)
            sh = (1, -1) + (1,) * (T.ndim - 2)
            return (Z * g.reshape(sh) + b.reshape(sh)).reshape(len(X), width)
        out.append(("instancenorm %s%s" % (list(xs), " plain" if plain else ""),
                    nodes + o2, inits + oi, width, ref, 3 if plain else 4))
    return out


def np_windows(T, k, s, d, pb, pe, pad_value):
    """T [n, C, D...] padded with pad_value, then the windows: [n, C, O..., K...]."""
    S = len(k)
    P = np.pad(T, [(0, 0), (0, 0)] + [(pb[i], pe[i]) for i in range(S)],
               constant_values=pad_value)
    out = [(P.shape[2 + i] - ((k[i] - 1) * d[i] + 1)) // s[i] + 1 for i in range(S)]
    W = np.empty(T.shape[:2] + tuple(out) + tuple(k))
    for o in np.ndindex(*out):
        for t in np.ndindex(*k):
            idx = tuple(o[i] * s[i] + t[i] * d[i] for i in range(S))
            W[(slice(None), slice(None)) + o + t] = P[(slice(None), slice(None)) + idx]
    return W


def np_conv(T, Wt, b, s, d, pb, pe, group):
    """ONNX Conv in float64: T [n, C, D...], Wt [M, C/group, k...]."""
    S = Wt.ndim - 2
    win = np_windows(T, Wt.shape[2:], s, d, pb, pe, 0.0)  # [n, C, O..., K...]
    M, Cg = Wt.shape[0], Wt.shape[1]
    outs = []
    for g in range(group):
        wg = win[:, g * Cg:(g + 1) * Cg]
        kg = Wt[g * (M // group):(g + 1) * (M // group)]
        ax_w = [1] + list(range(2 + S, 2 + 2 * S))
        outs.append(np.moveaxis(np.tensordot(wg, kg, axes=(ax_w, list(range(1, 2 + S)))),
                                -1, 1))
    Y = np.concatenate(outs, 1)
    if b is not None:
        Y = Y + b.reshape((1, -1) + (1,) * S)
    return Y


def conv_cases(opset):
    """Conv, MaxPool, AveragePool, the global pools and Pad against numpy, with what PyTorch
    does not export: auto_pad SAME_UPPER, SAME_LOWER and VALID, explicit uneven pads,
    dilations with groups, ceil_mode, count_include_pad, and Pad of constants (folded)."""
    out = []

    def rows(name, shape, R):
        return ([node("MatMul", ["x", name + "_R"], name + "_f"),
                 node("Reshape", [name + "_f", name + "_sh"], name)],
                [init(name + "_R", R), i64(name + "_sh", [-1] + list(shape))])

    def flat(last, width):
        return [node("Reshape", [last, "flat"], "y")], [i64("flat", [-1, width])]

    def same_pads(n, k, s, d, upper):
        o = -(-n // s)
        total = max(0, (o - 1) * s + (k - 1) * d + 1 - n)
        begin = total // 2 if upper else total - total // 2
        return begin, total - begin
    # (input shape [C, D...], weight shape, attributes, bias?)
    convs = [((2, 9), (4, 2, 3), dict(strides=[2], pads=[2, 1]), True),
             ((4, 11), (6, 2, 3), dict(dilations=[2], group=2, pads=[1, 1]), True),
             ((3, 7, 6), (5, 3, 3, 2), dict(auto_pad="SAME_UPPER", strides=[2, 1]), True),
             ((3, 7, 6), (2, 3, 2, 3), dict(auto_pad="SAME_LOWER", strides=[1, 2]), False),
             ((2, 6, 5), (4, 1, 3, 3), dict(auto_pad="VALID", group=2), True),
             ((4, 5, 5), (4, 1, 3, 3), dict(group=4, pads=[1, 0, 0, 1]), True),  # depthwise
             ((2, 4, 4, 3), (3, 2, 2, 2, 2), dict(pads=[1, 0, 1, 0, 1, 0]), True)]
    for k, (xs, ws, attrs, bias) in enumerate(convs):
        R = f32(D, int(np.prod(xs)))
        Wt = f32(*ws)
        b = f32(ws[0]) if bias else None
        S = len(xs) - 1
        s_ = attrs.get("strides", [1] * S)
        d_ = attrs.get("dilations", [1] * S)
        if "auto_pad" in attrs and attrs["auto_pad"] != "VALID":
            pp = [same_pads(xs[1 + i], ws[2 + i], s_[i], d_[i], attrs["auto_pad"] == "SAME_UPPER")
                  for i in range(S)]
            pb, pe = [p[0] for p in pp], [p[1] for p in pp]
        else:
            pads = attrs.get("pads", [0] * 2 * S)
            pb, pe = pads[:S], pads[S:]
        g = attrs.get("group", 1)
        T0 = np.zeros((1,) + xs)
        width = int(np_conv(T0, Wt.astype(np.float64), b, s_, d_, pb, pe, g).size)
        n2, i2 = rows("c%d" % k, xs, R)
        o2, oi = flat("cv", width)
        nodes = n2 + [node("Conv", ["c%d" % k, "W"] + (["B"] if bias else []), "cv", **attrs)] + o2
        inits = i2 + oi + [init("W", Wt)] + ([init("B", b)] if bias else [])

        def ref(X, R=R, xs=xs, Wt=Wt, b=b, s_=s_, d_=d_, pb=pb, pe=pe, g=g, width=width):
            T = (X @ R.astype(np.float64)).reshape((-1,) + xs)
            return np_conv(T, Wt.astype(np.float64), None if b is None else b.astype(np.float64),
                           s_, d_, pb, pe, g).reshape(len(X), width)
        out.append(("conv %s %s %s" % (list(xs), list(ws), attrs), nodes, inits, width, ref))
    # Pools: (op, input shape, attributes)
    pools = [("MaxPool", (2, 9), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
             ("MaxPool", (2, 7, 8), dict(kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1)),
             ("MaxPool", (2, 9, 9), dict(kernel_shape=[2, 2], dilations=[2, 3])),
             ("MaxPool", (2, 7, 6), dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER",
                                         strides=[2, 2])),
             ("AveragePool", (2, 9), dict(kernel_shape=[3], strides=[2], pads=[1, 2])),
             ("AveragePool", (2, 9), dict(kernel_shape=[3], strides=[2], pads=[1, 2],
                                          count_include_pad=1)),
             ("AveragePool", (2, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 3], ceil_mode=1)),
             ("AveragePool", (3, 6, 6), dict(kernel_shape=[2, 2], strides=[2, 2])),
             ("MaxPool", (2, 7), dict(kernel_shape=[2], strides=[3], ceil_mode=1,
                                      auto_pad="VALID")),
             ("GlobalAveragePool", (3, 4, 5), {}), ("GlobalMaxPool", (3, 7), {})]
    for k, (op, xs, attrs) in enumerate(pools):
        if opset < 10 and ("ceil_mode" in attrs or "dilations" in attrs):
            continue
        if opset < 11 and attrs.get("auto_pad"):
            continue
        R = f32(D, int(np.prod(xs)))
        S = len(xs) - 1

        def pool(T, op=op, attrs=attrs, S=S):
            if op.startswith("Global"):
                ax = tuple(range(2, 2 + S))
                return T.max(ax, keepdims=True) if "Max" in op else T.mean(ax, keepdims=True)
            kk, s_ = attrs["kernel_shape"], attrs.get("strides", [1] * S)
            d_ = attrs.get("dilations", [1] * S)
            if attrs.get("auto_pad") == "VALID":  # no padding, and floor whatever ceil_mode
                pb, pe = [0] * S, [0] * S
            elif attrs.get("auto_pad"):
                pp = [same_pads(T.shape[2 + i], kk[i], s_[i], d_[i], True) for i in range(S)]
                pb, pe = [p[0] for p in pp], [p[1] for p in pp]
            else:
                pads = attrs.get("pads", [0] * 2 * S)
                pb, pe = list(pads[:S]), list(pads[S:])
            if attrs.get("ceil_mode") and attrs.get("auto_pad") != "VALID":
                # extra right padding so the last window fits
                for i in range(S):
                    n, span = T.shape[2 + i] + pb[i] + pe[i], (kk[i] - 1) * d_[i] + 1
                    o = -(-(n - span) // s_[i]) + 1
                    if (o - 1) * s_[i] >= T.shape[2 + i] + pb[i]:
                        o -= 1
                    pe[i] += max(0, (o - 1) * s_[i] + span - n)
            mx = op == "MaxPool"
            win = np_windows(T, kk, s_, d_, pb, pe, -np.inf if mx else np.nan)
            ax = tuple(range(2 + S, 2 + 2 * S))
            if mx:
                return win.max(ax)
            if attrs.get("count_include_pad"):  # the explicit pads count, ceil's extra not
                ones = np.ones((1, 1) + T.shape[2:])
                cnt = np_windows(np.pad(ones, [(0, 0), (0, 0)] + [
                    (pb[i], attrs["pads"][S + i]) for i in range(S)], constant_values=1),
                    kk, s_, d_, [0] * S, [pe[i] - attrs["pads"][S + i] for i in range(S)],
                    0.0).sum(ax)
                return np.nansum(win, ax) / cnt
            return np.nanmean(win, ax)
        width = int(pool(np.zeros((1,) + xs)).size)
        n2, i2 = rows("p%d" % k, xs, R)
        o2, oi = flat("pl", width)
        nodes = n2 + [node(op, ["p%d" % k], "pl", **attrs)] + o2
        out.append(("%s %s %s" % (op, list(xs), attrs), nodes, i2 + oi, width,
                    lambda X, R=R, xs=xs, pool=pool, width=width:
                    pool((X @ R.astype(np.float64)).reshape((-1,) + xs)).reshape(len(X), width)))
    # Pad of rows (constant with a value, reflect, edge, a crop) and of a constant (folded).
    for k, (mode, xs, pads, value) in enumerate([
            ("constant", (2, 5), [0, 1, 1, 3], 2.5), ("reflect", (3, 4, 5), [0, 1, 2, 0, 2, 1], None),
            ("edge", (2, 6), [0, 2, 1, 3], None), ("constant", (2, 6), [0, -2, 1, -1], None)]):
        R = f32(D, int(np.prod(xs)))
        full = [0] + list(pads[:len(xs)]) + [0] + list(pads[len(xs):])
        npad = [(full[i], full[len(xs) + 1 + i]) for i in range(len(xs) + 1)]

        def np_pad(T, npad=npad, mode=mode, value=value):
            crop = tuple(slice(-min(a, 0) or None, (min(b, 0) or None)) for a, b in npad)
            T = T[crop]
            pos = [(max(a, 0), max(b, 0)) for a, b in npad]
            if mode == "constant":
                return np.pad(T, pos, constant_values=value or 0.0)
            return np.pad(T, pos, mode="reflect" if mode == "reflect" else "edge")
        width = int(np_pad(np.zeros((1,) + xs)).size)
        n2, i2 = rows("q%d" % k, xs, R)
        o2, oi = flat("pd", width)
        if opset < 11:
            kw = dict(mode=mode, pads=full)
            if value is not None:
                kw["value"] = value
            pn = [node("Pad", ["q%d" % k], "pd", **kw)]
            pi = []
        else:
            pn = [node("Pad", ["q%d" % k, "pads"] + (["pv"] if value is not None else []), "pd",
                       mode=mode)]
            pi = [i64("pads", full)] + ([init("pv", value)] if value is not None else [])
        out.append(("pad %s %s %s" % (mode, list(xs), pads), n2 + pn + o2, i2 + pi + oi, width,
                    lambda X, R=R, xs=xs, np_pad=np_pad, width=width:
                    np_pad((X @ R.astype(np.float64)).reshape((-1,) + xs)).reshape(len(X), width)))
    # a constant padded (folded into the Add's operand: no Pad step)
    C = f32(1, 3)
    if opset >= 11:
        pn = [node("Pad", ["C", "cpads"], "cp", mode="edge")]
        pi = [init("C", C), i64("cpads", [0, 1, 0, 2])]
    else:
        pn = [node("Pad", ["C"], "cp", mode="edge", pads=[0, 1, 0, 2])]
        pi = [init("C", C)]
    Cp = np.pad(C.astype(np.float64), [(0, 0), (1, 2)], mode="edge").reshape(1, D)
    out.append(("pad of a constant", pn + [node("Reshape", ["cp", "flat6"], "c6"),
                                          node("Add", ["x", "c6"], "y")],
                pi + [i64("flat6", [1, D])], D, lambda X, Cp=Cp: X + Cp, 2))
    return out


def new_op_cases(opset):
    """Clip, Elu, Selu, Celu, Softplus, Softsign, HardSigmoid, HardSwish, Abs, Neg, Exp, Log,
    Reciprocal, PRelu, Max, Min; each case is (name, nodes, inits, width, ref[, steps]) where
    steps, when given, is the step count the description must report."""
    out = []
    # Exponential-family activations, ONNX defaults and other attribute values.
    nodes = [node("Elu", ["x"], "elu"), node("Elu", ["x"], "elu2", alpha=0.5),
             node("Selu", ["x"], "selu"), node("Selu", ["x"], "selu2", alpha=1.2, gamma=0.9),
             node("Softplus", ["x"], "sp"), node("Softsign", ["x"], "ss")]
    parts = ["elu", "elu2", "selu", "selu2", "sp", "ss"]
    refs = [elu, lambda X: elu(X, 0.5), selu, lambda X: selu(X, 1.2, 0.9), softplus,
            lambda X: X / (1 + np.abs(X))]
    if opset >= 12:  # Celu is an ONNX op from opset 12
        nodes += [node("Celu", ["x"], "celu"), node("Celu", ["x"], "celu2", alpha=0.6)]
        parts += ["celu", "celu2"]
        refs += [celu, lambda X: celu(X, 0.6)]
    nodes.append(helper.make_node("Concat", parts, ["y"], axis=1))
    out.append(("elu_selu_celu_softplus_softsign", nodes, [], D * len(parts),
                lambda X, refs=refs: np.concatenate([r(X) for r in refs], 1)))
    # Valid forms that had been refused: Pow with an int64 exponent (its type T1 is any number
    # from opset 12), Dropout with a named mask that nothing reads, Reshape with allowzero=1
    # and no 0 in the shape (opset 14), an attribute named "__..." (onnx.checker skips those).
    if opset >= 12:
        nodes = [helper.make_node("Pow", ["x", "two_i"], ["sq"]),
                 helper.make_node("Dropout", ["sq"], ["dr", "unused_mask"])]
        last = "dr"
        if opset >= 14:
            nodes.append(helper.make_node("Reshape", ["dr", "shp"], ["rs"], allowzero=1))
            last = "rs"
        nodes.append(helper.make_node("Relu", [last], ["y"], **{"__note": 1}))
        out.append(("pow_int_exponent_unused_mask", nodes,
                    [numpy_helper.from_array(np.array(2, np.int64), "two_i"),
                     numpy_helper.from_array(np.array([-1, D], np.int64), "shp")], D,
                    lambda X: np.maximum(X ** 2, 0)))
    # HardSigmoid (defaults 0.2 / 0.5, and others), HardSwish from opset 14.
    nodes = [node("HardSigmoid", ["x"], "hs"),
             node("HardSigmoid", ["x"], "hs2", alpha=0.3, beta=0.4)]
    parts = ["hs", "hs2"]
    refs = [hard_sigmoid, lambda X: hard_sigmoid(X, 0.3, 0.4)]
    if opset >= 14:
        nodes.append(node("HardSwish", ["x"], "hw"))
        parts.append("hw")
        refs.append(lambda X: X * hard_sigmoid(X, 1 / 6, 0.5))
    nodes.append(helper.make_node("Concat", parts, ["y"], axis=1))
    out.append(("hardsigmoid_hardswish", nodes, [], D * len(parts),
                lambda X, refs=refs: np.concatenate([r(X) for r in refs], 1)))
    # Clip: both bounds, only min, only max, neither; attributes before opset 11, constant
    # inputs (an initializer, a Constant node, a folded Neg) from 11 on.
    if opset < 11:
        nodes = [node("Clip", ["x"], "both", min=-1.5, max=2.0),
                 node("Clip", ["x"], "lo", min=-0.5), node("Clip", ["x"], "hi", max=1.0),
                 node("Clip", ["x"], "none")]
        inits = []
    else:
        nodes = [helper.make_node("Constant", [], ["two"],
                                  value=numpy_helper.from_array(np.array(2.0, np.float32))),
                 node("Neg", ["c15"], "m15"),
                 node("Clip", ["x", "m15", "two"], "both"), node("Clip", ["x", "m05"], "lo"),
                 node("Clip", ["x", "", "one"], "hi"), node("Clip", ["x"], "none")]
        inits = [init("c15", 1.5), init("m05", -0.5), init("one", 1.0)]
    nodes.append(helper.make_node("Concat", ["both", "lo", "hi", "none"], ["y"], axis=1))
    out.append(("clip", nodes, inits, 4 * D,
                lambda X: np.concatenate([np.clip(X, -1.5, 2), np.maximum(X, -0.5),
                                          np.minimum(X, 1), X], 1)))
    # Abs, Neg, Exp, Log, Reciprocal.
    nodes = [node("Abs", ["x"], "ab"), node("Neg", ["x"], "ng"), node("Mul", ["x", "q"], "xq"),
             node("Exp", ["xq"], "ex"), node("Add", ["ab", "half"], "ah"),
             node("Log", ["ah"], "lg"), node("Reciprocal", ["ah"], "rc"),
             helper.make_node("Concat", ["ab", "ng", "ex", "lg", "rc"], ["y"], axis=1)]
    out.append(("abs_neg_exp_log_reciprocal", nodes, [init("q", 0.25), init("half", 0.5)],
                5 * D, lambda X: np.concatenate([np.abs(X), -X, np.exp(0.25 * X),
                                                 np.log(np.abs(X) + 0.5),
                                                 1 / (np.abs(X) + 0.5)], 1)))
    # PRelu: one slope (rank 0 and [1]), one per channel ([D] and [1, D]).
    s_ch, s_row = f32(D, lo=0.05, hi=0.9), f32(1, D, lo=-0.5, hi=0.5)
    nodes = [node("PRelu", ["x", "s0"], "p0"), node("PRelu", ["x", "s1"], "p1"),
             node("PRelu", ["x", "sch"], "pc"), node("PRelu", ["x", "srow"], "pr"),
             helper.make_node("Concat", ["p0", "p1", "pc", "pr"], ["y"], axis=1)]
    prelu = lambda X, k: np.where(X < 0, k * X, X)  # noqa: E731
    out.append(("prelu", nodes, [init("s0", 0.1), init("s1", [0.3]), init("sch", s_ch),
                                 init("srow", s_row)], 4 * D,
                lambda X: np.concatenate([prelu(X, 0.1), prelu(X, 0.3), prelu(X, s_ch),
                                          prelu(X, s_row)], 1)))
    # Max and Min with 1, 2 and 3 inputs: rows, constants (folded together first), a
    # per-row column (ReduceMean) broadcast along the row, a constant scalar.
    inits = [init("c1", f32(D)), init("c2", f32(1, D)), init("c3", 0.2)]
    ins, kw = axes(opset, "rm", [1], inits, attr_before=18)
    c1, c2 = numpy_helper.to_array(inits[0]), numpy_helper.to_array(inits[1])
    nodes = [node("Max", ["x"], "m1"), node("Neg", ["x"], "nx"),
             node("Max", ["x", "nx"], "m2"), node("Min", ["c1", "x"], "n2"),
             node("Max", ["x", "c1", "c2"], "m3"), node("Min", ["c2", "nx", "c1"], "n3"),
             helper.make_node("ReduceMean", ["x"] + ins, ["mean"], keepdims=1, **kw),
             node("Max", ["mean", "x"], "mc"), node("Min", ["x", "c3", "mean"], "nc"),
             helper.make_node("Concat", ["m1", "m2", "n2", "m3", "n3", "mc", "nc"], ["y"],
                              axis=1)]
    mean = lambda X: X.mean(1, keepdims=True)  # noqa: E731
    out.append(("max_min", nodes, inits, 7 * D,
                lambda X: np.concatenate([X, np.abs(X), np.minimum(c1, X),
                                          np.maximum(np.maximum(X, c1), c2),
                                          np.minimum(np.minimum(c2, -X), c1),
                                          np.maximum(mean(X), X),
                                          np.minimum(np.minimum(X, 0.2), mean(X))], 1)))
    # Row reductions (the axes an attribute, or ReduceSum's input from opset 13) and Slice
    # (attributes below opset 10, inputs from 10: negative starts, ends past the row, steps of
    # 2 and -3, the batch axis kept whole), side by side.
    inits = []
    red = []
    for op, fn in (("ReduceSum", lambda X: X.sum(1)), ("ReduceSumSquare", lambda X: (X * X).sum(1)),
                   ("ReduceL1", lambda X: np.abs(X).sum(1)),
                   ("ReduceL2", lambda X: np.sqrt((X * X).sum(1))),
                   ("ReduceMax", lambda X: X.max(1)), ("ReduceMin", lambda X: X.min(1)),
                   ("ReduceProd", lambda X: np.prod(X, 1)),
                   ("ReduceLogSumExp", lambda X: np.log(np.exp(X).sum(1)))):
        ins, kw = axes(opset, op, [1 if op != "ReduceMax" else -1], inits,
                       attr_before=13 if op == "ReduceSum" else 18)
        nodes_r = [helper.make_node(op, ["x"] + ins, [op], name=op, keepdims=1, **kw)]
        red.append((nodes_r, op, fn))
    big, small = 2 ** 62, -(2 ** 62)
    if opset < 10:
        sl = [helper.make_node("Slice", ["x"], ["s1"], name="s1", starts=[1], ends=[D - 1], axes=[1]),
              helper.make_node("Slice", ["x"], ["s2"], name="s2", starts=[0, -3], ends=[big, big])]
        sl_ref = [lambda X: X[:, 1:D - 1], lambda X: X[:, -3:]]
    else:
        def ints(name, v):
            inits.append(numpy_helper.from_array(np.array(v, dtype=np.int64), name))
            return name
        sl = [helper.make_node("Slice", ["x", ints("st1", [1]), ints("en1", [big]), ints("ax1", [1]),
                                         ints("sp1", [2])], ["s1"], name="s1"),
              helper.make_node("Slice", ["x", ints("st2", [-2]), ints("en2", [0]), ints("ax2", [-1]),
                                         ints("sp2", [-3])], ["s2"], name="s2"),
              helper.make_node("Slice", ["x", ints("st3", [0, -1]), ints("en3", [big, small]), "",
                                         ints("sp3", [1, -1])], ["s3"], name="s3"),
              # steps near +-2^63 take one column (ceil((end - start) / step) overflowed)
              helper.make_node("Slice", ["x", ints("st4", [1]), ints("en4", [D]), ints("ax4", [1]),
                                         ints("sp4", [2 ** 63 - 1])], ["s4"], name="s4"),
              helper.make_node("Slice", ["x", ints("st5", [D - 1]), ints("en5", [0]), ints("ax5", [1]),
                                         ints("sp5", [-2 ** 63])], ["s5"], name="s5")]
        sl_ref = [lambda X: X[:, 1::2], lambda X: X[:, D - 2:0:-3], lambda X: X[:, ::-1],
                  lambda X: X[:, 1:2], lambda X: X[:, D - 1:D]]
    if opset >= 13:  # ReduceSum without axes and noop_with_empty_axes: reduces nothing
        sl.append(helper.make_node("ReduceSum", ["x"], ["noop"], name="noop", keepdims=1,
                                   noop_with_empty_axes=1))
        sl_ref.append(lambda X: X)
    nodes = [n for r in red for n in r[0]] + sl + [
        helper.make_node("Concat", [r[1] for r in red] + [n.output[0] for n in sl], ["y"], axis=1)]
    width = len(red) + sum(f(np.zeros((1, D))).shape[1] for f in sl_ref)
    out.append(("reduce_slice", nodes, inits, width,
                lambda X: np.concatenate([r[2](X)[:, None] for r in red] + [f(X) for f in sl_ref], 1)))
    # Constant folding: each new operator on initializers only becomes a constant; their
    # results, side by side, scale copies of x, so the plan is the Concat of the copies, the
    # Mul and the projection alone.
    a, b, pos = f32(D, lo=-2, hi=2), f32(D, lo=-2, hi=2), f32(D, lo=0.2, hi=3)
    sl = f32(D, lo=0.1, hi=0.5)
    A, B, POS = (v.astype(np.float64) for v in (a, b, pos))
    fold = [(node("Exp", ["a"], "fa"), np.exp(A)), (node("Log", ["pos"], "fb"), np.log(POS)),
            (node("Abs", ["a"], "fc"), np.abs(A)), (node("Neg", ["a"], "fd"), -A),
            (node("Reciprocal", ["pos"], "fe"), 1 / POS),
            (node("Elu", ["a"], "ff", alpha=0.7), elu(A, 0.7)), (node("Selu", ["a"], "fg"), selu(A)),
            (node("Softplus", ["a"], "fh"), softplus(A)),
            (node("Softsign", ["a"], "fi"), A / (1 + np.abs(A))),
            (node("HardSigmoid", ["a"], "fj", alpha=0.4), hard_sigmoid(A, 0.4)),
            (node("PRelu", ["a", "sl"], "fk"), np.where(A < 0, sl * A, A)),
            (node("Max", ["a", "b", "pos"], "fl"), np.maximum(np.maximum(A, B), POS)),
            (node("Min", ["a", "b"], "fm"), np.minimum(A, B))]
    if opset < 11:
        fold.append((node("Clip", ["a"], "fn", min=-0.5, max=0.5), np.clip(A, -0.5, 0.5)))
    else:
        fold.append((node("Clip", ["a", "", "half"], "fn"), np.minimum(A, 0.5)))
    if opset >= 12:
        fold.append((node("Celu", ["a"], "fo", alpha=0.3), celu(A, 0.3)))
    if opset >= 14:
        fold.append((node("HardSwish", ["a3"], "fp"), 3 * A * hard_sigmoid(3 * A, 1 / 6, 0.5)))
    names = [n.output[0] for n, _ in fold]
    K = np.concatenate([r for _, r in fold])
    nodes = [node("Mul", ["a", "three"], "a3")] + [n for n, _ in fold] + [
        helper.make_node("Concat", names, ["k"], axis=0),
        helper.make_node("Concat", ["x"] * len(fold), ["xs"], axis=1),
        helper.make_node("Mul", ["xs", "k"], ["y"])]
    out.append(("fold_new_ops", nodes, [init("a", a), init("b", b), init("pos", pos),
                                        init("sl", sl), init("half", 0.5), init("three", 3.0)],
                D * len(fold), lambda X, n=len(fold): np.tile(X, n) * K, 3))
    return out


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def layout_cases(opset):
    """Transpose, Expand, Tile, Split, ConstantOfShape, Slice on rows of rank 2 and on
    constants, reductions over middle axes, softmax over a middle axis, a per-row operand
    broadcast along a row axis, and shape arithmetic as PyTorch exports it."""
    out = []
    # Rows viewed as [batch, 2, 3], transposed, split along the middle axis, the first part
    # tiled, added; a constant transposed (default perm: the axes reversed) and folded.
    K = f32(2, 3)
    split_in, split_attr = ([], {"split": [1, 2]}) if opset < 13 else (["sp"], {})
    nodes = [node("Reshape", ["x", "s23"], "r"),
             node("Transpose", ["r"], "t", perm=[0, 2, 1]),
             helper.make_node("Split", ["t"] + split_in, ["t1", "t2"], axis=1, **split_attr),
             node("Tile", ["t1", "rep"], "tl"), node("Add", ["t2", "tl"], "a"),
             node("Flatten", ["a"], "fa"), node("Transpose", ["K"], "kt"),
             node("Mul", ["t", "kt"], "b"), node("Flatten", ["b"], "fb"),
             helper.make_node("Concat", ["fa", "fb"], ["y"], axis=1)]
    inits = [i64("s23", [-1, 2, 3]), i64("rep", [1, 2, 1]), init("K", K)]
    if opset >= 13:
        inits.append(i64("sp", [1, 2]))

    def ref_a(X):
        T = X.reshape(-1, 2, 3).transpose(0, 2, 1)
        a = T[:, 1:] + np.tile(T[:, :1], (1, 2, 1))
        return np.concatenate([a.reshape(len(X), -1), (T * K.T).reshape(len(X), -1)], 1)
    out.append(("transpose_split_tile", nodes, inits, 10, ref_a))
    # Expand of a per-row mean to the input's shape (from Shape: the batch marked), a
    # ConstantOfShape per row and folded, Expand of a constant per row and folded.
    C4, C3 = f32(1, D), f32(3)
    inits = []
    mean_in, mean_attr = axes(opset, "mean", [1], inits, attr_before=18)
    nodes = [node("Shape", ["x"], "sh"),
             helper.make_node("ReduceMean", ["x"] + mean_in, ["m"], keepdims=1, **mean_attr),
             node("Expand", ["m", "sh"], "e"), node("Sub", ["x", "e"], "d"),
             node("Gather", ["sh", "zero"], "n"), helper.make_node("Concat", ["n", "three"],
                                                                   ["sh2"], axis=0),
             node("ConstantOfShape", ["sh2"], "z",
                  value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
             node("ConstantOfShape", ["sh"], "o"), node("Add", ["x", "o"], "xo"),
             node("Expand", ["C4", "sh"], "ex"), node("Mul", ["x", "ex"], "xe"),
             node("Reshape", ["x", "s23"], "r"), node("Expand", ["C3", "s23c"], "c23"),
             node("Add", ["r", "c23"], "rc"), node("Flatten", ["rc"], "frc"),
             helper.make_node("Concat", ["d", "z", "xo", "xe", "frc"], ["y"], axis=1)]
    inits += [i64("zero", [0]), i64("three", [3]), init("C4", C4), i64("s23", [-1, 2, 3]),
              i64("s23c", [2, 3]), init("C3", C3)]
    out.append(("expand_constantofshape", nodes, inits, 27, lambda X: np.concatenate(
        [X - X.mean(1, keepdims=True), np.full((len(X), 3), 0.5), X, X * C4,
         (X.reshape(-1, 2, 3) + C3).reshape(len(X), -1)], 1)))
    # Slice of rows of rank 2 (a negative step), reductions over the middle and over two
    # axes, a softmax over the middle axis (from 13; below, axis 1 is the whole row), and a
    # per-row mean of each vector broadcast back along the last axis.
    inits = [i64("s23", [-1, 2, 3])]
    if opset >= 10:
        slice_in = ["r", "st", "en", "ax", "stp"]
        inits += [i64("st", [0, 2]), i64("en", [2, -10]), i64("ax", [1, 2]), i64("stp", [1, -1])]
        slice_attr = {}
    else:
        slice_in, slice_attr = ["r"], {"starts": [1, 0], "ends": [2, 2], "axes": [1, 2]}
    sum_in, sum_attr = axes(opset, "sum", [1], inits)
    max_in, max_attr = axes(opset, "max", [1, 2], inits, attr_before=18)
    mean_in, mean_attr = axes(opset, "mean", [-1], inits, attr_before=18)
    nodes = [node("Reshape", ["x", "s23"], "r"), node("Slice", slice_in, "sl", **slice_attr),
             node("Flatten", ["sl"], "fsl"),
             helper.make_node("ReduceSum", ["r"] + sum_in, ["rs"], keepdims=0, **sum_attr),
             helper.make_node("ReduceMax", ["r"] + max_in, ["rm"], keepdims=1, **max_attr),
             node("Flatten", ["rm"], "frm"), node("Softmax", ["r"], "sm", axis=1),
             node("Flatten", ["sm"], "fsm"),
             helper.make_node("ReduceMean", ["r"] + mean_in, ["mu"], keepdims=1, **mean_attr),
             node("Sub", ["r", "mu"], "c"), node("Flatten", ["c"], "fc"),
             helper.make_node("Concat", ["fsl", "rs", "frm", "fsm", "fc"], ["y"], axis=1)]

    def ref_c(X, opset=opset):
        R = X.reshape(-1, 2, 3)
        sl = R[:, 0:2, ::-1] if opset >= 10 else R[:, 1:2, 0:2]
        if opset >= 13:
            e = np.exp(R - R.max(1, keepdims=True))
            sm = e / e.sum(1, keepdims=True)
        else:
            sm = softmax(X)
        n = len(X)
        return np.concatenate([sl.reshape(n, -1), R.sum(1), R.max((1, 2)).reshape(n, 1),
                               sm.reshape(n, -1), (R - R.mean(2, keepdims=True)).reshape(n, -1)],
                              1)
    out.append(("slice_reduce_softmax_rows", nodes, inits, (6 if opset >= 10 else 2) + 16,
                ref_c))
    # Shape arithmetic: [batch, 2, last // 2] from Shape, Gather, Div on int64 and Concat;
    # a Slice of the shape and ReduceProd of it (the element count x.std() divides by).
    inits = [i64("zero", [0]), i64("one_i", 1), i64("two_i", 2), i64("two_v", [2]),
             i64("s1", [1]), i64("e2", [2])]
    un_in, un_attr = axes(opset, "un", [0], inits)
    sl_in = ["sh", "s1", "e2"] if opset >= 10 else ["sh"]
    sl_attr = {} if opset >= 10 else {"starts": [1], "ends": [2]}
    nodes = [node("Shape", ["x"], "sh"), node("Gather", ["sh", "zero"], "n"),
             node("Gather", ["sh", "one_i"], "last"), node("Div", ["last", "two_i"], "half"),
             helper.make_node("Unsqueeze", ["half"] + un_in, ["hv"], **un_attr),
             helper.make_node("Concat", ["n", "two_v", "hv"], ["shp"], axis=0),
             node("Reshape", ["x", "shp"], "r"), node("Transpose", ["r"], "t", perm=[0, 2, 1]),
             node("Flatten", ["t"], "ft"), node("Slice", sl_in, "width", **sl_attr),
             helper.make_node("ReduceProd", ["width"], ["cnt"], keepdims=0),
             helper.make_node("Cast", ["cnt"], ["cntf"], to=TensorProto.FLOAT),
             node("Div", ["x", "cntf"], "xd"),
             helper.make_node("Concat", ["ft", "xd"], ["y"], axis=1)]
    # Gather with constant indices on rows (x[:, :, 1], columns picked and repeated) and on
    # a constant matrix (folded).
    G = f32(4, 3)
    nodes2 = [node("Reshape", ["x", "s23"], "r"), node("Gather", ["r", "one_i"], "g1", axis=2),
              node("Gather", ["x", "cols"], "g2", axis=1),
              node("Gather", ["G", "rowsel"], "g3", axis=0),
              node("Mul", ["g2", "g3"], "g4"), node("Flatten", ["g4"], "fg4"),
              helper.make_node("Concat", ["g1", "fg4"], ["y"], axis=1)]
    inits2 = [i64("s23", [-1, 2, 3]), i64("one_i", 1), i64("cols", [[5, 0, 0], [-1, 2, 3]]),
              i64("rowsel", [3, 0]), init("G", G)]
    out.append(("gather_constant_indices", nodes2, inits2, 8, lambda X: np.concatenate(
        [X.reshape(-1, 2, 3)[:, :, 1],
         (X[:, [[5, 0, 0], [5, 2, 3]]] * G[[3, 0]]).reshape(len(X), -1)], 1)))
    # Comparisons on rows (1 where they hold), Not, And, Or, Where with per-row, constant and
    # per-row-broadcast operands, a condition cast to float; comparisons and Where on
    # constants fold (PyTorch's expand(n, -1, k): Equal(shape, -1) and Where on the shape).
    lo_c, W3 = f32(D), f32(3)
    nodes3 = [node("Greater", ["x", "zero_f"], "pos"), node("Less", ["x", "lo_c"], "below"),
              node("Not", ["below"], "nb")]
    if opset >= 12:
        nodes3 += [node("GreaterOrEqual", ["x", "half_f"], "ge"),
                   node("LessOrEqual", ["x", "lo_c"], "le")]
    else:
        nodes3 += [node("Not", ["below"], "ge"), node("Not", ["below"], "le")]
    nodes3 += [node("And", ["pos", "nb"], "both"), node("Or", ["ge", "le"], "either"),
               node("Equal", ["pos", "both"], "same"),
               node("Where", ["pos", "x", "neg_x"], "w1"), node("Neg", ["x"], "neg_x"),
               node("ReduceMax", ["x"], "mx", axes=[1], keepdims=1),
               node("Where", ["both", "mx", "lo_c"], "w2"),
               node("Where", ["cond_c", "x", "w1"], "w3"),
               helper.make_node("Cast", ["same"], ["samef"], to=TensorProto.FLOAT),
               node("Reshape", ["pos", "s23m"], "pos3"), node("Transpose", ["pos3"], "pos3t",
                                                               perm=[0, 2, 1]),
               node("Flatten", ["pos3t"], "posf"), node("Reshape", ["x", "s23m"], "x3"),
               node("Transpose", ["x3"], "x3t", perm=[0, 2, 1]), node("Flatten", ["x3t"], "xtf"),
               node("Where", ["posf", "xtf", "zero_f"], "wt"),
               helper.make_node("Cast", ["either"], ["eitherf"], to=TensorProto.FLOAT),
               node("And", ["ge", "pos"], "gp"),
               helper.make_node("Cast", ["gp"], ["gpf"], to=TensorProto.FLOAT),
               node("Shape", ["x"], "sh3"), node("Gather", ["sh3", "zero_i"], "n3"),
               helper.make_node("Concat", ["n3", "minus1_1"], ["shv"], axis=0),
               node("Equal", ["shv", "minus1"], "eq"), node("Where", ["eq", "ones2", "shv"],
                                                            "shp3"),
               node("Expand", ["W3row", "shp3"], "w3x"),
               helper.make_node("Concat", ["w1", "w2", "w3", "samef", "eitherf", "gpf", "w3x",
                                           "wt"], ["y"], axis=1)]
    nodes3.sort(key=lambda n: n.output[0] not in ("neg_x", "mx"))  # before the Wheres
    cond_c = (rng.uniform(size=D) > 0.5)
    inits3 = [init("zero_f", 0.0), init("half_f", 0.5), init("lo_c", lo_c),
              numpy_helper.from_array(cond_c, "cond_c"), i64("minus1", [-1, -1]),
              i64("ones2", [1, 1]), init("W3row", W3.reshape(1, 3)), i64("zero_i", [0]),
              i64("minus1_1", [-1]), i64("s23m", [-1, 2, 3])]

    def ref_w(X, opset=opset):
        pos, below = X > 0, X < lo_c
        ge, le = (X >= 0.5, X <= lo_c) if opset >= 12 else (~below, ~below)
        both = pos & ~below
        w1 = np.where(pos, X, -X)
        return np.concatenate([w1, np.where(both, X.max(1, keepdims=True), lo_c),
                               np.where(cond_c, X, w1), (pos == both).astype(np.float64),
                               (ge | le).astype(np.float64), (ge & pos).astype(np.float64),
                               np.tile(W3, (len(X), 1)),
                               np.where(pos.reshape(-1, 2, 3).transpose(0, 2, 1).reshape(len(X), -1),
                                        X.reshape(-1, 2, 3).transpose(0, 2, 1).reshape(len(X), -1),
                                        0)], 1)
    out.append(("compare_where_logic", nodes3, inits3, 7 * D + 3, ref_w))
    # Concat of rows of rank 2 along the middle axis (whole rows side by side) and along the
    # last (interleaved by a gather step).
    nodes4 = [node("Reshape", ["x", "s23"], "r"), node("Neg", ["r"], "nr"),
              node("Slice", ["r", "z1", "o1", "ax2"] if opset >= 10 else ["r"], "r1",
                   **({} if opset >= 10 else {"starts": [0], "ends": [1], "axes": [2]})),
              helper.make_node("Concat", ["r", "nr"], ["c1"], axis=1),
              helper.make_node("Concat", ["r", "r1", "nr"], ["c2"], axis=-1),
              node("Flatten", ["c1"], "f1"), node("Flatten", ["c2"], "f2"),
              helper.make_node("Concat", ["f1", "f2"], ["y"], axis=1)]
    inits4 = [i64("s23", [-1, 2, 3]), i64("z1", [0]), i64("o1", [1]), i64("ax2", [2])]

    def ref_cat(X):
        R = X.reshape(-1, 2, 3)
        n = len(X)
        return np.concatenate([np.concatenate([R, -R], 1).reshape(n, -1),
                               np.concatenate([R, R[:, :, :1], -R], 2).reshape(n, -1)], 1)
    out.append(("concat_rows_rank2", nodes4, inits4, 12 + 14, ref_cat))
    # Reductions over long rows (Tile to 120,000 values): sums and means must not drift as a
    # float accumulator does (120,000 x 0.1 summed in float is 11990.74, not 12000.0002).
    # The rows are wide enough that the step plan's scratch holds fewer than 1,024 of them.
    inits5 = [i64("rep", [1, 20000])]
    sum_in, sum_attr = axes(opset, "lsum", [1], inits5)
    nodes5 = [node("Tile", ["x", "rep"], "t"), node("Abs", ["t"], "at"),
              helper.make_node("ReduceSum", ["at"] + sum_in, ["r1"], keepdims=1, **sum_attr),
              node("Mul", ["t", "zero_f"], "t0"), node("Add", ["t0", "tenth"], "c"),
              helper.make_node("ReduceSum", ["c"] + sum_in, ["r2"], keepdims=1, **sum_attr),
              helper.make_node("ReduceMean", ["t"], ["r3"], axes=[1], keepdims=1),
              node("Softmax", ["t"], "sm", axis=1),
              helper.make_node("ReduceMax", ["sm"], ["r4"], axes=[1], keepdims=1),
              node("Mul", ["r4", "big_f"], "r5"),
              helper.make_node("Concat", ["r1", "r2", "r3", "r5"], ["y"], axis=1)]
    inits5 += [init("zero_f", 0.0), init("tenth", 0.1), init("big_f", 1e9)]

    def ref_long(X):
        e = np.exp(X - X.max(1, keepdims=True))  # the softmax's largest over 20,000 repeats
        return np.concatenate([20000 * np.abs(X).sum(1, keepdims=True),
                               np.full((len(X), 1), 120000 * np.float64(np.float32(0.1))),
                               X.mean(1, keepdims=True),
                               1e9 * (e.max(1, keepdims=True) / (20000 * e.sum(1, keepdims=True)))],
                              1)
    out.append(("long_row_reductions", nodes5, inits5, 4, ref_long))
    # Softmax and LogSoftmax of constants fold (over axis 0 of [2, 6]: from opset 13 that one
    # axis, moved last and back; below, the axes from 0 on); a Split part of no values that
    # nothing reads is fine.
    S = f32(2, D)
    sp_in, sp_attr = ([], {"split": [0, D]}) if opset < 13 else (["sp06"], {})
    inits6 = [init("S", S)] + ([i64("sp06", [0, D])] if opset >= 13 else [])
    un_in, un_attr = axes(opset, "u6", [1], inits6)
    nodes6 = [helper.make_node("Unsqueeze", ["x"] + un_in, ["x3"], **un_attr),
              node("Softmax", ["S"], "ss", axis=0), node("LogSoftmax", ["S"], "ls", axis=-1),
              node("Mul", ["x3", "ss"], "m1"), node("Add", ["x3", "ls"], "m2"),
              helper.make_node("Split", ["x"] + sp_in, ["nothing", "all"], axis=1, **sp_attr),
              node("Flatten", ["m1"], "f1"), node("Flatten", ["m2"], "f2"),
              helper.make_node("Concat", ["f1", "f2", "all"], ["y"], axis=1)]

    def ref_sm(X, opset=opset):
        if opset >= 13:
            e = np.exp(S - S.max(0))
            ss = e / e.sum(0)
        else:
            flat = S.reshape(-1)
            ss = (np.exp(flat - flat.max()) / np.exp(flat - flat.max()).sum()).reshape(S.shape)
        ls = S - S.max(1, keepdims=True) - np.log(np.exp(S - S.max(1, keepdims=True)).sum(1,
                                                                                         keepdims=True))
        n = len(X)
        return np.concatenate([(X[:, None, :] * ss).reshape(n, -1),
                               (X[:, None, :] + ls).reshape(n, -1), X], 1)
    out.append(("softmax_const_split_empty", nodes6, inits6, 5 * D, ref_sm))
    # MatMul of two per-row tensors: [N, 2, 3, 1] @ [N, 2, 1, 3] (outer products per group)
    # and [N, 2, 3] @ [N, 3, 2] (a row's matrix times its own transpose).
    nodes7 = [node("Reshape", ["x", "s2231"], "u"), node("Reshape", ["x", "s2213"], "w"),
              node("MatMul", ["u", "w"], "uw"), node("Reshape", ["x", "s23"], "r"),
              node("Transpose", ["r"], "rt", perm=[0, 2, 1]), node("MatMul", ["r", "rt"], "rr"),
              node("Flatten", ["uw"], "f1"), node("Flatten", ["rr"], "f2"),
              helper.make_node("Concat", ["f1", "f2"], ["y"], axis=1)]
    inits7 = [i64("s2231", [-1, 2, 3, 1]), i64("s2213", [-1, 2, 1, 3]), i64("s23", [-1, 2, 3])]

    def ref_mm(X):
        n = len(X)
        U, R = X.reshape(n, 2, 3, 1), X.reshape(n, 2, 3)
        return np.concatenate([(U @ X.reshape(n, 2, 1, 3)).reshape(n, -1),
                               (R @ R.transpose(0, 2, 1)).reshape(n, -1)], 1)
    out.append(("matmul_rows", nodes7, inits7, 18 + 4, ref_mm))
    # Conditions with constant booleans (And, Or, Equal of a per-row condition and a constant
    # one), IsNaN and IsInf of values made NaN (Log of negatives) and infinite (x / 0),
    # Sign, and torch.nan_to_num's shape: Where(IsNaN(v), 0, v).
    cb = rng.uniform(size=D) > 0.5
    nodes8 = [node("Greater", ["x", "zero_f"], "pos"), node("And", ["pos", "cb"], "pa"),
              node("Or", ["pos", "cb"], "po"), node("Log", ["x"], "lg"),
              node("Div", ["x", "zero_f"], "inf"), node("IsNaN", ["lg"], "isn"),
              node("Where", ["isn", "zero_f", "lg"], "clean"), node("Sign", ["x"], "sg")]
    parts = ["paf", "pof", "isnf", "clean", "sg"]
    if opset >= 11:
        nodes8.append(node("Equal", ["pos", "cb"], "pe"))
        parts.append("pef")
    if opset >= 10:
        nodes8 += [node("IsInf", ["inf"], "isi"),
                   helper.make_node("IsInf", ["inf"], ["isneg"], name="isneg", detect_positive=0)]
        parts += ["isif", "isnegf"]
    nodes8 += [helper.make_node("Cast", [p[:-1]], [p], to=TensorProto.FLOAT)
               for p in parts if p.endswith("f") and p != "clean"]
    nodes8.append(helper.make_node("Concat", parts, ["y"], axis=1))
    inits8 = [init("zero_f", 0.0), numpy_helper.from_array(cb, "cb")]

    def ref_cond(X, opset=opset):
        pos = X > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.log(X)
        out = [pos & cb, pos | cb, np.isnan(lg), np.where(np.isnan(lg), 0, lg), np.sign(X)]
        if opset >= 11:
            out.append(pos == cb)
        if opset >= 10:
            out += [np.ones_like(pos), X < 0]
        return np.concatenate([np.asarray(o, np.float64) for o in out], 1)
    out.append(("constant_conditions_isnan_isinf_sign", nodes8, inits8, D * len(parts),
                ref_cond))
    # LayerNorm over a wide row far from 0 (x + 100, 4,098 values), PyTorch's decomposition
    # below opset 17 fused into one step: its mean and variance are summed pairwise (left to
    # right in float the normalised values had been off by 8e-5).
    inits9 = [i64("rep9", [1, 683])]
    mean_in9, mean_attr9 = axes(opset, "lnm", [-1], inits9, attr_before=18)
    sum_in9, sum_attr9 = axes(opset, "lns", [-1], inits9)
    nodes9 = [node("Tile", ["x", "rep9"], "t9"), node("Add", ["t9", "hundred"], "u"),
              helper.make_node("ReduceMean", ["u"] + mean_in9, ["mu9"], keepdims=1, **mean_attr9),
              node("Sub", ["u", "mu9"], "dv"), node("Pow", ["dv", "two_f"], "sq"),
              helper.make_node("ReduceMean", ["sq"] + mean_in9, ["var9"], keepdims=1,
                               **mean_attr9),
              node("Add", ["var9", "eps9"], "ve"), node("Sqrt", ["ve"], "sd"),
              node("Div", ["dv", "sd"], "ln"),
              helper.make_node("ReduceMax", ["ln"], ["lmax"], axes=[1], keepdims=1),
              helper.make_node("ReduceMin", ["ln"], ["lmin"], axes=[1], keepdims=1),
              node("Mul", ["ln", "first_col"], "l0"),
              helper.make_node("ReduceSum", ["l0"] + sum_in9, ["lfirst"], keepdims=1,
                               **sum_attr9),
              helper.make_node("Concat", ["lmax", "lmin", "lfirst"], ["y"], axis=1)]
    fc = np.zeros(6 * 683, np.float32)
    fc[0] = 1
    inits9 += [init("hundred", 100.0), init("two_f", 2.0), init("eps9", 1e-5),
               init("first_col", fc)]

    def ref_ln(X):
        U = np.tile(X, (1, 683)) + 100.0
        L = (U - U.mean(1, keepdims=True)) / np.sqrt(U.var(1, keepdims=True) + 1e-5)
        return np.stack([L.max(1), L.min(1), L[:, 0]], 1)
    out.append(("layernorm_wide_row", nodes9, inits9, 3, ref_ln))
    # The batch moved, as PyTorch's nn.MultiheadAttention exports it: to axis 1 ([3, N, 2]),
    # merged with a row axis by a Reshape whose shape holds the batch size from a Shape node
    # times 2 ([3, 2N, 1]: heads) or 3 times it ([3N, 2]: tokens, through a Gemm), moved back
    # by Transpose and Reshape. Between, a constant broadcast along it (1 on the batch's axis),
    # a softmax and a mean over other axes, a Slice, a max over the axis before the batch
    # (which moves it to axis 0) and, at 17, LayerNormalization.
    W10 = f32(2, 2)
    c10 = f32(3, 1, 2)
    nodes10 = [node("Reshape", ["x", "s32"], "r10"), node("Transpose", ["r10"], "t10",
                                                          perm=[1, 0, 2]),
               node("Add", ["t10", "c10"], "a10"), node("Shape", ["t10"], "sh10"),
               node("Gather", ["sh10", "idx0"], "d0"), node("Gather", ["sh10", "idx1"], "nb"),
               node("Mul", ["nb", "two_i"], "nh"), node("Mul", ["d0", "nb"], "tn"),
               helper.make_node("Concat", ["d0", "nh", "one_i"], ["sm10"], axis=0),
               node("Reshape", ["a10", "sm10"], "m10"), node("Transpose", ["m10"], "u10",
                                                             perm=[1, 0, 2]),
               helper.make_node("Softmax", ["u10"], ["p10"], axis=1),
               node("Mul", ["p10", "u10"], "g10"),
               helper.make_node("ReduceMean", ["g10"], ["gm10"], axes=[1], keepdims=0),
               helper.make_node("Concat", ["nb", "two_i"], ["sb10"], axis=0),
               node("Reshape", ["gm10", "sb10"], "y1"),
               helper.make_node("Concat", ["tn", "two_i"], ["st10"], axis=0),
               node("Reshape", ["a10", "st10"], "tok10"),
               helper.make_node("Gemm", ["tok10", "W10", "b10"], ["gem10"], transB=1),
               helper.make_node("Concat", ["d0", "nb", "two_i"], ["s3n2"], axis=0),
               node("Reshape", ["gem10", "s3n2"], "back10"),
               node("Transpose", ["back10"], "bt10", perm=[1, 0, 2]),
               node("Flatten", ["bt10"], "y2")]
    parts10 = ["y1", "y2"]
    inits10 = [i64("s32", [-1, 3, 2]), i64("idx0", [0]), i64("idx1", [1]), i64("two_i", [2]),
               i64("one_i", [1]), init("c10", c10), init("W10", W10), init("b10", [0.1, -0.2])]
    if opset >= 10:
        nodes10 += [node("Slice", ["t10", "st0", "en1", "ax2"], "sl10"),
                    helper.make_node("ReduceMax", ["sl10"], ["mx10"], axes=[0], keepdims=0)]
        inits10 += [i64("st0", [0]), i64("en1", [1]), i64("ax2", [2])]
        parts10.append("mx10")
    if opset >= 17:
        nodes10 += [helper.make_node("LayerNormalization", ["t10", "lnw", "lnb"], ["ln10"],
                                     axis=-1),
                    node("Transpose", ["ln10"], "lt10", perm=[1, 0, 2]),
                    node("Flatten", ["lt10"], "y4")]
        inits10 += [init("lnw", [1.5, 0.5]), init("lnb", [0.0, 0.25])]
        parts10.append("y4")
    nodes10.append(helper.make_node("Concat", parts10, ["y"], axis=1))

    def ref_moved(X, opset=opset):
        n = len(X)
        T = X.reshape(n, 3, 2).transpose(1, 0, 2)
        A = T + c10
        U = A.reshape(3, 2 * n, 1).transpose(1, 0, 2)
        e = np.exp(U - U.max(1, keepdims=True))
        out = [((e / e.sum(1, keepdims=True)) * U).mean(1).reshape(n, 2),
               (A.reshape(3 * n, 2) @ W10.T + [0.1, -0.2]).reshape(3, n, 2).transpose(
                   1, 0, 2).reshape(n, 6)]
        if opset >= 10:
            out.append(T[:, :, 0:1].max(0))
        if opset >= 17:
            L = (T - T.mean(2, keepdims=True)) / np.sqrt(T.var(2, keepdims=True) + 1e-5)
            out.append((L * [1.5, 0.5] + [0.0, 0.25]).transpose(1, 0, 2).reshape(n, 6))
        return np.concatenate(out, 1)
    width10 = 8 + (1 if opset >= 10 else 0) + (6 if opset >= 17 else 0)
    out.append(("batch_moved_merged", nodes10, inits10, width10, ref_moved))
    # Layout nodes on rows whose batch moved ([3, N, 2]): Split, Squeeze (back to [N, 2]),
    # Unsqueeze (to [1, N, 2]), Concat, Gather of indices and of a scalar, Expand of a
    # constant to [2, N, 2] (the batch size at axis 1), ConstantOfShape of [N*2, 2] (the batch
    # size times 2) viewed as [N, 4], and an If whose condition is known at load
    # (Equal(size, 1), as PyTorch exports squeeze(0)) with Squeeze and Identity branches.
    kc = f32(2, 1, 2)
    inits11 = [i64("s32b", [-1, 3, 2]), i64("ix20", [2, 0]), numpy_helper.from_array(
        np.array(1, np.int64), "one_s"), i64("idx0b", [0]), i64("idx1b", [1]), i64("two_b", [2]),
        i64("four_b", [4]), i64("one_b", [1]), init("kc", kc)]
    sq_in, sq_attr = axes(opset, "sq11", [0], inits11)
    un_in, un_attr = axes(opset, "un11", [0], inits11)
    sqb_in, sqb_attr = axes(opset, "sqb11", [0], inits11)
    if opset >= 13:
        split11 = helper.make_node("Split", ["t11", "sizes11"], ["p0", "p1"], axis=0)
        inits11.append(i64("sizes11", [1, 2]))
    else:
        split11 = helper.make_node("Split", ["t11"], ["p0", "p1"], axis=0, split=[1, 2])
    then_g = helper.make_graph(
        [helper.make_node("Squeeze", ["p0"] + sqb_in, ["then_out"], **sqb_attr)], "then", [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Identity", ["p0"], ["else_out"])], "else", [],
                               [helper.make_tensor_value_info("else_out", TensorProto.FLOAT,
                                                              None)])
    nodes11 = [node("Reshape", ["x", "s32b"], "r11"),
               node("Transpose", ["r11"], "t11", perm=[1, 0, 2]), split11,
               helper.make_node("Squeeze", ["p0"] + sq_in, ["sq11"], **sq_attr),
               helper.make_node("Unsqueeze", ["sq11"] + un_in, ["un11"], **un_attr),
               helper.make_node("Concat", ["un11", "p1"], ["c11"], axis=0),
               helper.make_node("Gather", ["c11", "ix20"], ["g11"], axis=0),
               helper.make_node("Gather", ["c11", "one_s"], ["gs11"], axis=2),
               node("Shape", ["t11"], "sh11"), node("Gather", ["sh11", "idx1b"], "nb11"),
               helper.make_node("Concat", ["two_b", "nb11", "two_b"], ["es11"], axis=0),
               node("Expand", ["kc", "es11"], "e11"), node("Add", ["g11", "e11"], "ge11"),
               node("Transpose", ["ge11"], "get11", perm=[1, 0, 2]),
               node("Flatten", ["get11"], "y1b"),
               node("Transpose", ["gs11"], "y2b", perm=[1, 0]),
               node("Mul", ["nb11", "two_b"], "n2"),
               helper.make_node("Concat", ["n2", "two_b"], ["zs11"], axis=0),
               helper.make_node("ConstantOfShape", ["zs11"], ["z11"], value=numpy_helper.from_array(
                   np.array([0.5], np.float32))),
               helper.make_node("Concat", ["nb11", "four_b"], ["zv11"], axis=0),
               node("Reshape", ["z11", "zv11"], "y3b"),
               node("Shape", ["p0"], "shp0"), node("Gather", ["shp0", "idx0b"], "d0b"),
               node("Equal", ["d0b", "one_b"], "cond11"),
               helper.make_node("Squeeze", ["cond11"] + sqb_in, ["cond_s"], **sqb_attr),
               helper.make_node("If", ["cond_s"], ["y4b"], then_branch=then_g,
                                else_branch=else_g),
               helper.make_node("Concat", ["y1b", "y2b", "y3b", "y4b"], ["y"], axis=1)]

    def ref_layout_moved(X):
        n = len(X)
        T = X.reshape(n, 3, 2).transpose(1, 0, 2)
        C = np.concatenate([T[:1], T[1:]], 0)
        part1 = (C[[2, 0]] + kc).transpose(1, 0, 2).reshape(n, 4)
        return np.concatenate([part1, C[:, :, 1].T, np.full((n, 4), 0.5), T[0]], 1)
    out.append(("batch_moved_layout", nodes11, inits11, 4 + 3 + 4 + 2, ref_layout_moved))
    # Integer rows, held exactly as floats: a condition cast to int64 and summed ((x > 0).sum
    # in PyTorch), arithmetic with int64 constants, ArgMax and ArgMin (first index, and the
    # last from opset 12), ArgMax of a constant folded, ReduceMax, Concat and comparisons of
    # integers, each cast back to float. The row is 10 x tiled twice: ties for the index to
    # break (the first or the last of two equal values).
    inits12 = [init("zero12", 0.0), init("tenth", 10.0), i64("three", [3]), i64("two12", [2]),
               i64("rep12", [1, 2]), numpy_helper.from_array(
                   np.array([[5, 9, 1]], np.float32), "k12")]
    sum_in, sum_attr = axes(opset, "s12", [1], inits12)
    max_in, max_attr = axes(opset, "m12", [1], inits12, attr_before=18)
    last = {"select_last_index": 1} if opset >= 12 else {}
    ge = "GreaterOrEqual" if opset >= 12 else "Greater"
    nodes12 = [node("Mul", ["x", "tenth"], "x10"), node("Tile", ["x10", "rep12"], "xt"),
               node("Greater", ["x", "zero12"], "pos12"),
               helper.make_node("Cast", ["pos12"], ["pi"], to=TensorProto.INT64),
               helper.make_node("ReduceSum", ["pi"] + sum_in, ["cnt"], keepdims=1, **sum_attr),
               node("Mul", ["cnt", "three"], "c3"), node("Sub", ["c3", "two12"], "c3m2"),
               helper.make_node("ArgMax", ["xt"], ["amax"], axis=1, keepdims=1),
               helper.make_node("ArgMin", ["xt"], ["amin"], axis=1, keepdims=1, **last),
               helper.make_node("ArgMax", ["k12"], ["kmax"], axis=1, keepdims=1),
               node("Add", ["amax", "kmax"], "amk"),
               helper.make_node("ReduceMax", ["pi"] + max_in, ["anypos"], keepdims=1,
                                **max_attr),
               helper.make_node(ge, ["cnt", "amin"], ["cmp12"]),
               helper.make_node("Cast", ["cmp12"], ["cmpf"], to=TensorProto.FLOAT),
               helper.make_node("Concat", ["c3m2", "amk", "amin", "anypos"], ["ints"], axis=1),
               helper.make_node("Cast", ["ints"], ["intsf"], to=TensorProto.FLOAT),
               helper.make_node("Concat", ["intsf", "cmpf"], ["y"], axis=1)]

    def ref_ints(X, opset=opset):
        X = X.astype(np.float32)
        xt = np.tile(X * np.float32(10.0), (1, 2))
        cnt = (X > 0).sum(1, keepdims=True)
        amin = (xt.shape[1] - 1 - np.argmin(xt[:, ::-1], 1) if opset >= 12
                else np.argmin(xt, 1))[:, None]
        amk = np.argmax(xt, 1)[:, None] + 1
        cmp = cnt >= amin if opset >= 12 else cnt > amin
        return np.concatenate([cnt * 3 - 2, amk, amin, (X > 0).max(1, keepdims=True), cmp],
                              1).astype(np.float64)
    out.append(("integer_rows_argmax", nodes12, inits12, 5, ref_ints))
    # Floats cast to int64 are cut toward zero (3.7 -> 3, -3.7 -> -3), compared, clamped into
    # [-2, 2] and cast back.
    inits14 = [init("three14", 3.0), i64("m2", [-2]), i64("p2", [2]), i64("one14", [1])]
    nodes14 = [node("Mul", ["x", "three14"], "x3"),
               helper.make_node("Cast", ["x3"], ["xt14"], to=TensorProto.INT64),
               helper.make_node("Clip", ["xt14", "m2", "p2"], ["xc14"]) if opset >= 12 else
               node("Identity", ["xt14"], "xc14"),
               node("Greater", ["xt14", "one14"], "gt14"),
               helper.make_node("Cast", ["xt14"], ["f1"], to=TensorProto.FLOAT),
               helper.make_node("Cast", ["xc14"], ["f2"], to=TensorProto.FLOAT),
               helper.make_node("Cast", ["gt14"], ["f3"], to=TensorProto.FLOAT),
               helper.make_node("Concat", ["f1", "f2", "f3"], ["y"], axis=1)]

    def ref_trunc(X, opset=opset):
        t = np.trunc(X.astype(np.float32) * np.float32(3.0)).astype(np.float64)
        return np.concatenate([t, np.clip(t, -2, 2) if opset >= 12 else t, t > 1], 1)
    out.append(("cast_to_int_toward_zero", nodes14, inits14, 3 * D, ref_trunc))
    # Past the integer type's range (a sentinel such as 1e30, a 10-digit id cast to int32)
    # or NaN, a cast gives the type's smallest value, as the C cast does on x86 and so
    # PyTorch's .long() and .int() and numpy's astype: clamped into [-2, 2] as an embedding's
    # index would be, that is -2, where saturating had given +2 to the positive ones.
    inits16 = [init("big16", 3e19), init("mid16", 5e9), i64("m2_16", [-2]), i64("p2_16", [2]),
               numpy_helper.from_array(np.array([-2], np.int32), "m2i"),
               numpy_helper.from_array(np.array([2], np.int32), "p2i")]
    clip = opset >= 12
    nodes16 = [node("Mul", ["x", "big16"], "xb"), node("Mul", ["x", "mid16"], "xm"),
               helper.make_node("Cast", ["xb"], ["l64"], to=TensorProto.INT64),
               helper.make_node("Cast", ["xm"], ["l32"], to=TensorProto.INT32),
               helper.make_node("Clip", ["l64", "m2_16", "p2_16"], ["c64"]) if clip else
               node("Identity", ["l64"], "c64"),
               helper.make_node("Clip", ["l32", "m2i", "p2i"], ["c32"]) if clip else
               node("Identity", ["l32"], "c32"),
               helper.make_node("Cast", ["c64"], ["f64"], to=TensorProto.FLOAT),
               helper.make_node("Cast", ["c32"], ["f32"], to=TensorProto.FLOAT),
               helper.make_node("Concat", ["f64", "f32"], ["y"], axis=1)]

    def ref_range(X, clip=clip):
        X = X.astype(np.float32)
        with np.errstate(invalid="ignore"):
            a = (X * np.float32(3e19)).astype(np.int64)
            b = (X * np.float32(5e9)).astype(np.int32)
        if clip:
            a, b = np.clip(a, -2, 2), np.clip(b, -2, 2)
        return np.concatenate([a.astype(np.float32), b.astype(np.float32)], 1).astype(np.float64)
    out.append(("cast_past_int_range_is_int_min", nodes16, inits16, 2 * D, ref_range))
    # Mod (opset 10): the hashing trick x.long() % buckets, of integer rows by an int64
    # constant, the remainder with the divisor's sign as Python's % (fmod 0), also by a
    # negative divisor and of the INT64_MIN a sentinel casts to; and torch.fmod of float rows
    # (fmod 1: the dividend's sign), by a per-column constant of mixed signs.
    if opset >= 10:
        inits17 = [init("k17", 1000.0), init("big17", 3e19), i64("b7", [7]), i64("bm5", [-5]),
                   numpy_helper.from_array(np.array([[1.5, -2.0, 0.75, -0.5, 3.0, 1.0, -1.25,
                                                      2.5][:D]], np.float32), "fd")]
        nodes17 = [node("Mul", ["x", "k17"], "xk"), node("Mul", ["x", "big17"], "xbig"),
                   helper.make_node("Cast", ["xk"], ["ik"], to=TensorProto.INT64),
                   helper.make_node("Cast", ["xbig"], ["ib"], to=TensorProto.INT64),
                   node("Mod", ["ik", "b7"], "m7"), node("Mod", ["ik", "bm5"], "mm5"),
                   node("Mod", ["ib", "b7"], "mb7"),
                   node("Mod", ["xk", "fd"], "fm", fmod=1),
                   helper.make_node("Cast", ["m7"], ["f1"], to=TensorProto.FLOAT),
                   helper.make_node("Cast", ["mm5"], ["f2"], to=TensorProto.FLOAT),
                   helper.make_node("Cast", ["mb7"], ["f3"], to=TensorProto.FLOAT),
                   helper.make_node("Concat", ["f1", "f2", "f3", "fm"], ["y"], axis=1)]

        def ref_mod(X):
            X = X.astype(np.float32)
            xk = X * np.float32(1000.0)
            with np.errstate(invalid="ignore"):
                ik, ib = xk.astype(np.int64), (X * np.float32(3e19)).astype(np.int64)
            fd = np.array([1.5, -2.0, 0.75, -0.5, 3.0, 1.0, -1.25, 2.5][:D], np.float32)
            return np.concatenate([np.mod(ik, 7), np.mod(ik, -5), np.mod(ib, 7),
                                   np.fmod(xk, fd)], 1).astype(np.float64)
        out.append(("mod_hash_and_fmod", nodes17, inits17, 4 * D, ref_mod))
    # Floor, Ceil, Round (half to even: x rounded to halves, then rounded, has ties) and Sin,
    # Cos (periodic feature embeddings).
    rnd = "Round" if opset >= 11 else "Floor"  # (Round is defined from opset 11)
    nodes15 = [node("Mul", ["x", "two15"], "x2"), node(rnd, ["x2"], "xr2"),
               node("Div", ["xr2", "two15"], "xh"), node(rnd, ["xh"], "rd"),
               node("Floor", ["x2"], "fl"),
               node("Ceil", ["x2"], "ce"), node("Mul", ["x", "five15"], "x5"),
               node("Sin", ["x5"], "sn"), node("Cos", ["x5"], "cs"),
               helper.make_node("Concat", ["rd", "fl", "ce", "sn", "cs"], ["y"], axis=1)]
    inits15 = [init("two15", 2.0), init("five15", 5.0)]

    def ref_round(X, opset=opset):
        X = X.astype(np.float32)
        r = np.rint if opset >= 11 else np.floor
        x2 = X * np.float32(2)
        xh = r(x2) / np.float32(2)  # halves: ties, which go to the even neighbour
        x5 = X * np.float32(5)
        return np.concatenate([r(xh), np.floor(x2), np.ceil(x2), np.sin(x5), np.cos(x5)],
                              1).astype(np.float64)
    out.append(("floor_ceil_round_sin_cos", nodes15, inits15, 5 * D, ref_round))
    # Rows made with the batch size times 4 past axis 0: ConstantOfShape([2, N*4]) and an
    # Expand of a [2, 1] constant to it, then row 0 and row 1 gathered, viewed as [N, 4] and
    # summed (four values per row each: a swapped shape had summed two); and an If whose
    # branch adds its own initializer (a branch's initializers had been ignored).
    inits13 = [i64("i1_13", [1]), i64("i0_13", [0]), i64("two13", [2]), i64("four13", [4]),
               i64("m1_13", [-1]), numpy_helper.from_array(np.array([[1.0], [2.0]], np.float32),
                                                          "k13"),
               numpy_helper.from_array(np.array(True), "yes13")]
    sum13_in, sum13_attr = axes(opset, "s13", [1], inits13)
    then13 = helper.make_graph(
        [helper.make_node("Add", ["x", "binit"], ["b_out"])], "then13", [],
        [helper.make_tensor_value_info("b_out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.arange(D, dtype=np.float32), "binit")])
    else13 = helper.make_graph([helper.make_node("Identity", ["x"], ["e_out"])], "else13", [],
                               [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, None)])
    nodes13 = [node("Shape", ["x"], "sh13"), node("Gather", ["sh13", "i0_13"], "n13"),
               node("Mul", ["n13", "four13"], "n4"),
               helper.make_node("Concat", ["two13", "n4"], ["s24"], axis=0),
               helper.make_node("ConstantOfShape", ["s24"], ["cz"], value=numpy_helper.from_array(
                   np.array([0.5], np.float32))),
               node("Expand", ["k13", "s24"], "ek"),
               helper.make_node("Gather", ["cz", "i0_13"], ["cz0"], axis=0),
               helper.make_node("Gather", ["ek", "i1_13"], ["ek1"], axis=0),
               helper.make_node("Concat", ["n13", "m1_13"], ["sn"], axis=0),
               node("Reshape", ["cz0", "sn"], "czr"), node("Reshape", ["ek1", "sn"], "ekr"),
               helper.make_node("ReduceSum", ["czr"] + sum13_in, ["czs"], keepdims=1,
                                **sum13_attr),
               helper.make_node("ReduceSum", ["ekr"] + sum13_in, ["eks"], keepdims=1,
                                **sum13_attr),
               helper.make_node("If", ["yes13"], ["xb"], then_branch=then13,
                                else_branch=else13),
               helper.make_node("Concat", ["czs", "eks", "xb"], ["y"], axis=1)]

    def ref_batch_times(X):
        n = len(X)
        return np.concatenate([np.full((n, 1), 2.0), np.full((n, 1), 8.0),
                               X + np.arange(D)], 1)
    out.append(("batch_times_four_if_init", nodes13, inits13, 2 + D, ref_batch_times))
    out.append(("shape_arithmetic", nodes, inits, 12, lambda X: np.concatenate(
        [X.reshape(-1, 2, 3).transpose(0, 2, 1).reshape(len(X), -1), X / D], 1)))
    return out


def i64m(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def more_cases(opset):
    """Cases added after the first set, run after it with their own random numbers, so that
    adding them changes none of the draws the first set's cases and projections take."""
    out = []
    # The trigonometric and hyperbolic functions, each inside its domain: Tan of tanh(x) * 1.2
    # (away from the poles), Asin and Acos of tanh(x) * 0.9, Acosh of 1 + x^2, Atanh of
    # tanh(x) * 0.9.
    nodes16 = [node("Tanh", ["x"], "t16"), node("Mul", ["t16", "k12"], "t12"),
               node("Mul", ["t16", "k09"], "t09"), node("Mul", ["x", "x"], "xx"),
               node("Add", ["xx", "one16"], "xx1"), node("Mul", ["x", "half16"], "xh16"),
               node("Tan", ["t12"], "tan"), node("Asin", ["t09"], "asin"),
               node("Acos", ["t09"], "acos"), node("Atan", ["x"], "atan"),
               node("Sinh", ["xh16"], "sinh"), node("Cosh", ["xh16"], "cosh"),
               node("Asinh", ["x"], "asinh"), node("Acosh", ["xx1"], "acosh"),
               node("Atanh", ["t09"], "atanh"),
               helper.make_node("Concat", ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
                                           "acosh", "atanh"], ["y"], axis=1)]
    inits16 = [init("k12", 1.2), init("k09", 0.9), init("one16", 1.0), init("half16", 0.5)]

    def ref_trig(X):
        t = np.tanh(X)
        return np.concatenate([np.tan(t * 1.2), np.arcsin(t * 0.9), np.arccos(t * 0.9),
                               np.arctan(X), np.sinh(X * 0.5), np.cosh(X * 0.5), np.arcsinh(X),
                               np.arccosh(1 + X * X), np.arctanh(t * 0.9)], 1)
    out.append(("trigonometric_hyperbolic", nodes16, inits16, 9 * D, ref_trig))
    # ThresholdedRelu (from opset 10; alpha 1 by default) and Shrink (lambd 0.5, bias 0 by
    # default): rows exactly on a threshold come from x rounded to quarters.
    nodes17 = [node("Mul", ["x", "four17"], "x4"), node("Round" if opset >= 11 else "Floor",
                                                        ["x4"], "x4r"),
               node("Div", ["x4r", "four17"], "xq"),
               node("Shrink", ["xq"], "sh0"), node("Shrink", ["xq"], "sh1", lambd=0.25, bias=0.1)]
    cols17 = ["sh0", "sh1"]
    if opset >= 10:
        nodes17 += [node("ThresholdedRelu", ["xq"], "tr0"),
                    node("ThresholdedRelu", ["xq"], "tr1", alpha=0.25)]
        cols17 += ["tr0", "tr1"]
    nodes17.append(helper.make_node("Concat", cols17, ["y"], axis=1))

    def ref_shrink(X, opset=opset):
        x4 = X.astype(np.float32) * np.float32(4)
        xq = ((np.rint(x4) if opset >= 11 else np.floor(x4)) / np.float32(4)).astype(np.float64)

        def shrink(v, lambd, bias):
            return np.where(v < -lambd, v + bias, np.where(v > lambd, v - bias, 0.0))
        cols = [shrink(xq, 0.5, 0.0), shrink(xq, 0.25, 0.1)]
        if opset >= 10:
            cols += [np.where(xq > 1.0, xq, 0.0), np.where(xq > 0.25, xq, 0.0)]
        return np.concatenate(cols, 1)
    out.append(("shrink_thresholded_relu", nodes17, [init("four17", 4.0)],
                (4 if opset >= 10 else 2) * D, ref_shrink))
    # Sum and Mean of 1 to 4 inputs, rows and constants broadcast ([D] and [1, D]), added in
    # input order; Mean divides the sum by the input count.
    c18 = more_rng.uniform(-1, 1, D).astype(np.float32)
    d18 = more_rng.uniform(-1, 1, (1, D)).astype(np.float32)
    nodes18 = [node("Neg", ["x"], "nx18"), node("Sum", ["x"], "s1"),
               node("Sum", ["x", "c18"], "s2"), node("Sum", ["c18", "x", "nx18", "d18"], "s4"),
               node("Mean", ["x"], "m1"), node("Mean", ["x", "d18", "c18"], "m3"),
               node("Mean", ["c18", "d18", "x", "x"], "m4"),
               helper.make_node("Concat", ["s1", "s2", "s4", "m1", "m3", "m4"], ["y"], axis=1)]
    inits18 = [numpy_helper.from_array(c18, "c18"), numpy_helper.from_array(d18, "d18")]

    def ref_sum_mean(X):
        c, d = c18.astype(np.float64), d18.astype(np.float64)
        return np.concatenate([X, X + c, c + X - X + d, X, (X + d + c) / 3,
                               (c + d + 2 * X) / 4], 1)
    out.append(("sum_mean", nodes18, inits18, 6 * D, ref_sum_mean))
    # A FLOAT attribute written without its value (what a writer that drops zero fields
    # writes for 0) is 0, not the operator's default: ThresholdedRelu's alpha, Shrink's bias.
    tr0 = node("ThresholdedRelu" if opset >= 10 else "Relu", ["x"], "tz")
    if opset >= 10:
        tr0.attribute.append(AttributeProto(name="alpha", type=AttributeProto.FLOAT))
    sh0 = node("Shrink", ["x"], "shz", lambd=0.25)
    sh0.attribute.append(AttributeProto(name="bias", type=AttributeProto.FLOAT))
    out.append(("attribute_without_value", [tr0, sh0, helper.make_node("Concat", ["tz", "shz"],
                                                                      ["y"], axis=1)], [],
                2 * D, lambda X: np.concatenate([np.where(X > 0, X, 0.0),
                                                 np.where(np.abs(X) > 0.25, X, 0.0)], 1)))
    # Sum and Mean on rows whose batch a Transpose moved ([3, batch, 2] from [batch, 6]).
    s19, p19 = i64m("s19", [-1, 3, 2]), i64m("p19", [-1, 2 * D])
    nodes19 = [node("Reshape", ["x", "s19"], "r19"),
               helper.make_node("Transpose", ["r19"], ["t19"], name="t19", perm=[1, 0, 2]),
               node("Sum", ["t19", "t19", "c19"], "su19"), node("Mean", ["t19", "c19"], "me19"),
               helper.make_node("Concat", ["su19", "me19"], ["cc19"], axis=2),
               helper.make_node("Transpose", ["cc19"], ["b19"], name="b19", perm=[1, 0, 2]),
               node("Reshape", ["b19", "p19"], "y0"), node("Identity", ["y0"], "y")]
    c19 = more_rng.uniform(-1, 1, (3, 1, 1)).astype(np.float32)

    def ref_moved(X):
        r = X.reshape(-1, 3, 2)
        c = c19[:, 0, 0].astype(np.float64)[None, :, None]
        return np.concatenate([r + r + c, (r + c) / 2], 2).reshape(len(X), -1)
    out.append(("sum_mean_batch_moved", nodes19, [s19, p19, numpy_helper.from_array(c19, "c19")],
                2 * D, ref_moved))
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="sg_onnx_helper_")
    data = os.path.join(tmp, "val.h5")
    subprocess.run(["/usr/bin/python3", os.path.join(SRC, "scripts/make_dataset.py"), "--out",
                    data, "--task", "regression", "--rows", "800", "--features", str(D), "--seed",
                    "5"], check=True, capture_output=True)
    with h5py.File(data) as f:
        X = f["X"][()].astype(np.float64)
    seen = set()
    for opset in (9, 11, 13, 15, 17):
        for name, nodes, inits, width, ref, *steps in cases(opset):
            m, P = model(nodes, inits, width, opset, name)
            onnx.checker.check_model(m)
            for n in m.graph.node:
                seen.add(n.op_type)
            path = os.path.join(tmp, "%s_%d.onnx" % (name, opset))
            onnx.save(m, path)
            preds = path + ".h5"
            p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--predictions",
                                preds, "--json"], capture_output=True, text=True)
            if p.returncode != 0:
                check(False, "%s opset %d: %s" % (name, opset, p.stderr.strip()))
                continue
            desc = json.loads(p.stdout)["model"]["description"]
            if steps:
                check("%d steps" % steps[0] in desc, "%s opset %d: %r, wanted %d steps"
                      % (name, opset, desc, steps[0]))
            with h5py.File(preds) as f:
                got = f["prediction"][()].astype(np.float64)
            want = (ref(X.astype(np.float32).astype(np.float64)) @ P.astype(np.float64))[:, 0]
            diff = float(np.max(np.abs(got - want)))
            tol = 1e-5 * max(1.0, float(np.max(np.abs(want))))
            check(diff <= tol, "%s opset %d: max diff %.3g (tol %.3g)" % (name, opset, diff, tol))
            print("ok %-42s opset %2d max diff %.2g" % (name, opset, diff))
    # Nodes that add several values while compiling (a Conv with a bias, an LSTM/GRU with B,
    # a MatMul by a stack that repeats rows, InstanceNormalization, a constant times rows
    # from the left, Einsum) had read their inputs through pointers into the value table
    # after it grew and moved (use after free, which the sanitizer build reports): each runs
    # with 40, 42, ..., 62 unused initializers before it (each case has under 20 values
    # before the node, and the node adds at least 2), so the table grows inside the node.
    grow = ("conv [2, 9] [4, 2, 3]", "LSTM D 2 reverse 0 lbr 0 clip 0.5",
            "GRU D 1 reverse 0 lbr 1 clip 0 layout 0", "matmul stack [1, 1, 3]@[4, 3, 2]",
            "instancenorm [3, 4]", "constant [3, 2] @ rows [2, 4]", "einsum bi,ij,jk->bk")
    grown = 0
    for name, nodes, inits, width, ref, *steps in cases(17):
        if not name.startswith(grow):
            continue
        grown += 1
        bad = []
        for pad in range(40, 64, 2):
            m, P = model(nodes, list(inits) + [init("pad%d" % i, [float(i)]) for i in range(pad)],
                         width, 17, name)
            path = os.path.join(tmp, "grow.onnx")
            onnx.save(m, path)
            p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--predictions",
                                path + ".h5"], capture_output=True, text=True)
            if p.returncode != 0:
                bad.append("pad %d: exit %d %s" % (pad, p.returncode, p.stderr.strip()[-300:]))
                continue
            with h5py.File(path + ".h5") as f:
                got = f["prediction"][()].astype(np.float64)
            want = (ref(X.astype(np.float32).astype(np.float64)) @ P.astype(np.float64))[:, 0]
            if np.max(np.abs(got - want)) > 1e-5 * max(1.0, float(np.max(np.abs(want)))):
                bad.append("pad %d: wrong values" % pad)
        check(not bad, "%s as the value table grows: %s" % (name, bad[:3]))
        print("ok %-42s as the value table grows (12 paddings)" % name)
    check(grown == len(grow), "the value-table growth loop ran %d of its %d cases"
          % (grown, len(grow)))
    # The loader's value table grows (moves) at 64 and 128 values: a constant Concat whose
    # output lands there read its first input through a pointer into the old table (a use
    # after free the sanitizer build reports). Unused initializers put it on each point.
    for pad in list(range(58, 63)) + list(range(122, 127)):
        inits = [i64("a", [-1]), i64("b", [D]), init("W1", np.ones((D, 1), np.float32))]
        inits += [init("pad%d" % i, [float(i)]) for i in range(pad)]
        nodes = [helper.make_node("Concat", ["a", "b"], ["s"], axis=0),
                 helper.make_node("Reshape", ["x", "s"], ["r"]),
                 helper.make_node("MatMul", ["r", "W1"], ["y"])]
        m, P = model(nodes, inits, 1, 13, "growth")
        path = os.path.join(tmp, "growth_%d.onnx" % pad)
        onnx.save(m, path)
        p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--predictions",
                            path + ".h5"], capture_output=True, text=True)
        if p.returncode != 0:
            check(False, "growth pad %d: exit %d %s" % (pad, p.returncode, p.stderr.strip()[-300:]))
            continue
        with h5py.File(path + ".h5") as f:
            got = f["prediction"][()].astype(np.float64)
        want = X.astype(np.float32).astype(np.float64).sum(1) * float(P[0, 0])
        check(np.max(np.abs(got - want)) <= 1e-4, "growth pad %d: wrong values" % pad)
    from_issue = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid",
                  "Tanh", "Erf", "Softmax", "LogSoftmax", "BatchNormalization",
                  "LayerNormalization", "ReduceMean", "Pow", "Sqrt", "Flatten", "Reshape",
                  "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Cast", "Concat",
                  "PRelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "HardSigmoid",
                  "HardSwish", "Clip", "Abs", "Neg", "Exp", "Log", "Reciprocal", "Max", "Min",
                  "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceMax", "ReduceMin",
                  "ReduceProd", "ReduceLogSumExp", "Slice", "Shape", "Gather", "Transpose",
                  "Expand", "Tile", "Split", "ConstantOfShape", "Equal", "Greater", "Less",
                  "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Where", "Sign", "IsNaN",
                  "IsInf", "If", "ArgMax", "ArgMin", "Floor", "Ceil", "Round", "Sin", "Cos",
                  "Einsum", "InstanceNormalization", "Conv", "MaxPool", "AveragePool",
                  "GlobalAveragePool", "GlobalMaxPool", "Pad", "CumSum", "TopK",
                  "GatherElements", "OneHot", "Range", "EyeLike", "LSTM", "GRU", "Sum", "Mean",
                  "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
                  "ThresholdedRelu", "Shrink"}
    for opset in (9, 11, 13, 15, 17):
        for name, nodes, inits, width, ref in more_cases(opset):
            m, P = model(nodes, inits, width, opset, name, more_rng)
            onnx.checker.check_model(m)
            for n in m.graph.node:
                seen.add(n.op_type)
            path = os.path.join(tmp, "%s_%d.onnx" % (name, opset))
            onnx.save(m, path)
            p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--predictions",
                                path + ".h5"], capture_output=True, text=True)
            if p.returncode != 0:
                check(False, "%s opset %d: %s" % (name, opset, p.stderr.strip()))
                continue
            with h5py.File(path + ".h5") as f:
                got = f["prediction"][()].astype(np.float64)
            want = (ref(X.astype(np.float32).astype(np.float64)) @ P.astype(np.float64))[:, 0]
            diff = float(np.max(np.abs(got - want)))
            tol = 1e-5 * max(1.0, float(np.max(np.abs(want))))
            check(diff <= tol, "%s opset %d: max diff %.3g (tol %.3g)" % (name, opset, diff, tol))
            if os.environ.get("SG_ONNX_ONE_VS_BATCH"):  # the one-row (latency) path agrees
                p = subprocess.run([os.environ["SG_ONNX_ONE_VS_BATCH"], path],
                                   capture_output=True, text=True, timeout=120)
                check(p.returncode == 0, "%s opset %d one row vs batch: %s"
                      % (name, opset, (p.stderr or p.stdout).strip()))
            print("ok %-42s opset %2d max diff %.2g" % (name, opset, diff))
    check(from_issue <= seen, "operators not covered: %s" % sorted(from_issue - seen))
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("every supported operator matches numpy")


if __name__ == "__main__":
    main()
