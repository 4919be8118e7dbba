#!/usr/bin/python3
"""Reference test: graphs built with onnx.helper that use each supported operator, run by
`stagegate eval`, against a numpy evaluation of the same graph.

Each case computes Y from the input X [batch, 6] and ends in a fixed random projection
MatMul(Y, P) -> [batch, 1] read as a regression value (metadata_props stagegate.output),
so the prediction file holds the graph's own numbers.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from scipy.special import erf

SG = os.environ["STAGEGATE_BIN"]
SRC = os.environ["STAGEGATE_SOURCE_DIR"]
D = 6
rng = np.random.default_rng(7)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def f32(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def model(nodes, inits, width, opset, name):
    P = (rng.normal(size=(width, 1)) / np.sqrt(width)).astype(np.float32)
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
    # LayerNormalization is an ONNX op from opset 17.
    if opset >= 17:
        g, bt = f32(D, lo=0.5, hi=1.5), f32(D)
        out.append(("layernorm", [
            helper.make_node("LayerNormalization", ["x", "g", "bt"], ["y"], epsilon=1e-5)],
            [numpy_helper.from_array(g, "g"), numpy_helper.from_array(bt, "bt")], D,
            lambda X: (X - X.mean(1, keepdims=True)) / np.sqrt(X.var(1, keepdims=True) + 1e-5)
            * g + bt))
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
        for name, nodes, inits, width, ref in cases(opset):
            m, P = model(nodes, inits, width, opset, name)
            onnx.checker.check_model(m)
            for n in m.graph.node:
                seen.add(n.op_type)
            path = os.path.join(tmp, "%s_%d.onnx" % (name, opset))
            onnx.save(m, path)
            preds = path + ".h5"
            p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--predictions",
                                preds], capture_output=True, text=True)
            if p.returncode != 0:
                check(False, "%s opset %d: %s" % (name, opset, p.stderr.strip()))
                continue
            with h5py.File(preds) as f:
                got = f["prediction"][()].astype(np.float64)
            want = (ref(X.astype(np.float32).astype(np.float64)) @ P.astype(np.float64))[:, 0]
            diff = float(np.max(np.abs(got - want)))
            tol = 1e-5 * max(1.0, float(np.max(np.abs(want))))
            check(diff <= tol, "%s opset %d: max diff %.3g (tol %.3g)" % (name, opset, diff, tol))
            print("ok %-42s opset %2d max diff %.2g" % (name, opset, diff))
    from_issue = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid",
                  "Tanh", "Erf", "Softmax", "LogSoftmax", "BatchNormalization",
                  "LayerNormalization", "ReduceMean", "Pow", "Sqrt", "Flatten", "Reshape",
                  "Squeeze", "Unsqueeze", "Identity", "Dropout", "Constant", "Cast", "Concat"}
    check(from_issue <= seen, "operators not covered: %s" % sorted(from_issue - seen))
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("every supported operator matches numpy")


if __name__ == "__main__":
    main()
