#!/usr/bin/python3
"""Attack: ONNX external data read from outside the model's directory through a symbolic link.

A location that is absolute or holds ".." was refused, but a plain name that is a symlink (or
that passes through a symlinked directory) was followed: `eval` read, and `registry` hashed,
bytes from anywhere the process could read. Each form must be refused with exit 2 and one line
naming the model and the location; a plain file in a subdirectory still loads."""
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import D, expect_refused, run, write_data  # noqa: E402

fails = []


def check(msg):
    if msg:
        fails.append(msg)
        print("FAIL", msg)


def model_with_external(path, location):
    """Logistic regression whose weight [D, 1] is external data at `location`."""
    w = TensorProto()
    w.name, w.data_type = "w", TensorProto.FLOAT
    w.dims.extend([D, 1])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(4 * D))):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["z"]),
                           helper.make_node("Sigmoid", ["z"], ["p"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", D])],
                          [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 1])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


with tempfile.TemporaryDirectory() as t:
    p = lambda *n: os.path.join(t, *n)  # noqa: E731
    os.makedirs(p("model", "sub"))
    os.makedirs(p("elsewhere"))
    weights = (np.arange(D, dtype=np.float32) / 10 - 0.5).tobytes()
    for d in (p("model", "sub"), p("elsewhere")):
        with open(os.path.join(d, "w.bin"), "wb") as f:
            f.write(weights)
    write_data(p("val.h5"))

    # Control: a plain file in a subdirectory of the model's directory loads.
    model_with_external(p("model", "ok.onnx"), "sub/w.bin")
    rc, _, err = run("eval", "--model", p("model", "ok.onnx"), "--data", p("val.h5"))
    check(None if rc == 0 else f"control eval failed: {err.strip()}")

    # The file itself a symlink to a file outside (the reported attack).
    os.symlink(p("elsewhere", "w.bin"), p("model", "link.bin"))
    model_with_external(p("model", "file_link.onnx"), "link.bin")
    rc, _, err = run("eval", "--model", p("model", "file_link.onnx"), "--data", p("val.h5"))
    check(expect_refused("external data through a symlinked file", rc, err, "file_link.onnx",
                         "link.bin", "symbolic link"))
    # A directory on the way a symlink to a directory outside.
    os.symlink(p("elsewhere"), p("model", "dirlink"))
    model_with_external(p("model", "dir_link.onnx"), "dirlink/w.bin")
    rc, _, err = run("eval", "--model", p("model", "dir_link.onnx"), "--data", p("val.h5"))
    check(expect_refused("external data through a symlinked directory", rc, err,
                         "dir_link.onnx", "dirlink/w.bin", "symbolic link"))
    # A symlink to a sensitive file: refused before it is read, and the registry's digest
    # (which hashes external data too) refuses it the same way.
    os.symlink("/etc/passwd", p("model", "pw.bin"))
    model_with_external(p("model", "passwd.onnx"), "pw.bin")
    rc, _, err = run("eval", "--model", p("model", "passwd.onnx"), "--data", p("val.h5"))
    check(expect_refused("external data symlinked to /etc/passwd", rc, err, "passwd.onnx",
                         "pw.bin"))
    rc, _, err = run("registry", "--db", p("r.db"), "create-model", "m")
    check(None if rc == 0 else f"create-model failed: {err.strip()}")
    rc, _, err = run("registry", "--db", p("r.db"), "create-version", "m", p("model", "passwd.onnx"))
    check(expect_refused("registry create-version of it", rc, err, "pw.bin"))

if fails:
    print(f"{len(fails)} failure(s)")
    sys.exit(1)
print("ok: external data is read only from inside the model's directory")
