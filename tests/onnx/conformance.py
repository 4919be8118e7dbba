#!/usr/bin/python3
"""Reference test: the ONNX project's own operator conformance cases (Debian's
libonnx-testdata: each node test's model.onnx and its inputs and expected outputs, from the
operators' specifications), run by `stagegate eval`.

Each case is adapted to what a validation set is: the first graph input (float, rank 2 or
more) becomes the rows, its first dimension the batch; every other input becomes a
constant (an initializer of its test value); only the first output is kept, and it is
projected to one value per row by a fixed random vector (MatMul after a Reshape to
[batch, width]), read as a regression value. Per case:
- loads: the prediction must equal the expected output times the same vector, within
  1e-4 x max(1, |expected|) summed over the row (float32 against the reference's values);
- refused: exit 2 with one line; counted, not a failure (what stagegate does not compute,
  or a test whose first axis is not a batch of independent rows: a reduction over it);
- anything else (a crash, another exit code, several lines, a wrong number) fails.
Cases whose first input or output is not float, has rank 1, or holds no value, whose expected
output is not finite, or whose opset is past 17 are skipped. The test also requires that a
floor of cases of the operators stagegate supports load and match, so a loader that refuses
everything cannot pass.
"""
import glob
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
from onnx import helper, numpy_helper

SG = os.environ["STAGEGATE_BIN"]
DATA = os.environ.get("ONNX_TESTDATA", "/usr/share/libonnx-testdata/data")
# node: one operator each; pytorch-converted and pytorch-operator: PyTorch modules and
# operators (Conv, pools, BatchNorm, LSTM, ...); simple: small graphs.
rng = np.random.default_rng(11)


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def adapt(model, inputs, expected):
    """The case as one float input of rows and one regression output; None when it does not
    fit (with the reason)."""
    g = model.graph
    init_names = {i.name for i in g.initializer}
    real = [i for i in g.input if i.name not in init_names]
    if len(real) != len(inputs):
        return None, "inputs"
    x0 = inputs[0]
    if x0.dtype != np.float32 or x0.ndim < 2 or x0.size == 0 or x0.shape[0] < 1:
        return None, "first input"
    y = expected
    if y.dtype != np.float32 or y.ndim < 1 or y.size == 0 or not np.all(np.isfinite(y)):
        return None, "output"
    if y.shape[0] != x0.shape[0]:
        return None, "output rows"
    width = int(y.size // y.shape[0])
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    keep_in = real[0]
    for vi, val in zip(real[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(val, vi.name))
    del g.input[:]
    x = helper.make_tensor_value_info(keep_in.name, onnx.TensorProto.FLOAT,
                                      ["batch"] + list(x0.shape[1:]))
    g.input.append(x)
    out0 = g.output[0].name
    del g.output[:]
    P = rng.normal(size=(width, 1)).astype(np.float32)
    g.initializer.append(numpy_helper.from_array(np.array([-1, width], np.int64), "conf_shape"))
    g.initializer.append(numpy_helper.from_array(P, "conf_proj"))
    g.node.append(helper.make_node("Reshape", [out0, "conf_shape"], ["conf_flat"],
                                   name="conf_flat"))
    g.node.append(helper.make_node("MatMul", ["conf_flat", "conf_proj"], ["conf_out"],
                                   name="conf_proj"))
    g.output.append(helper.make_tensor_value_info("conf_out", onnx.TensorProto.FLOAT,
                                                  ["batch", 1]))
    del m.metadata_props[:]
    m.metadata_props.add(key="stagegate.output", value="value")
    want = y.reshape(y.shape[0], width).astype(np.float64) @ P.astype(np.float64)
    scale = np.abs(y.reshape(y.shape[0], width)).astype(np.float64) @ np.abs(P.astype(np.float64))
    return (m, x0.reshape(x0.shape[0], -1), want[:, 0], scale[:, 0]), None


def main():
    cases = sorted(c for sub in ("node", "pytorch-converted", "pytorch-operator", "simple")
                   for c in glob.glob(os.path.join(DATA, sub, "test_*")))
    if not cases:
        print("no ONNX conformance data at %s (apt-get install -y libonnx-testdata)" % DATA)
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="sg_onnx_conf_")
    stats = {"matched": [], "refused": [], "skipped": 0}
    failures = []
    for d in cases:
        name = os.path.basename(os.path.dirname(d))[:4] + "_" + os.path.basename(d)
        sets = sorted(glob.glob(os.path.join(d, "test_data_set_*")))
        if not sets:
            stats["skipped"] += 1
            continue
        model = onnx.load(os.path.join(d, "model.onnx"))
        opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                    default=0)
        if opset > 17 or any(o.domain not in ("", "ai.onnx") for o in model.opset_import):
            stats["skipped"] += 1
            continue
        def numbered(kind):
            files = glob.glob(os.path.join(sets[0], kind + "_*.pb"))
            return sorted(files, key=lambda f: int(f.rsplit("_", 1)[1][:-3]))
        outs = numbered("output")
        try:  # (sequences and optionals are not tensors: skipped)
            ins = [load_pb(p) for p in numbered("input")]
            if not ins or not outs:
                raise ValueError("no inputs or outputs")
            adapted, why = adapt(model, ins, load_pb(outs[0]))
        except Exception as e:  # an input of a type numpy_helper cannot read
            adapted, why = None, str(e)
        if adapted is None:
            stats["skipped"] += 1
            continue
        m, X, want, scale = adapted
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        data = os.path.join(tmp, name + ".h5")
        with h5py.File(data, "w") as f:
            f["X"] = X.astype(np.float32)
            f["y"] = np.zeros(len(X), np.float32)
        pred = os.path.join(tmp, name + ".pred.h5")
        p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--predictions", pred],
                           capture_output=True, text=True, timeout=60)
        lines = p.stderr.strip().splitlines()
        if p.returncode == 2 and len(lines) == 1:
            stats["refused"].append(name)
            if os.environ.get("CONFORMANCE_VERBOSE"):
                print("refused %s: %s" % (name, lines[0].split(": ", 2)[-1][:160]))
            continue
        if p.returncode != 0:
            failures.append("%s: exit %d: %s" % (name, p.returncode, p.stderr.strip()[-400:]))
            continue
        with h5py.File(pred) as f:
            got = f["prediction"][()].astype(np.float64)
        err = np.abs(got - want)
        tol = 1e-4 * np.maximum(1.0, scale)
        if got.shape != want.shape or not np.all(err <= tol):
            failures.append("%s: max |stagegate - expected| = %.3g (tol %.3g)"
                            % (name, float(np.max(err)), float(np.max(tol))))
            continue
        stats["matched"].append(name)
    for f in failures:
        print("FAIL:", f)
    print("%d cases matched, %d refused (one line, exit 2), %d skipped, %d failed"
          % (len(stats["matched"]), len(stats["refused"]), stats["skipped"], len(failures)))
    print("matched:", " ".join(stats["matched"]))
    floor = int(os.environ.get("CONFORMANCE_FLOOR", "190"))
    if len(stats["matched"]) < floor:
        failures.append("only %d cases matched (at least %d expected)"
                        % (len(stats["matched"]), floor))
        print("FAIL:", failures[-1])
    if failures:
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
