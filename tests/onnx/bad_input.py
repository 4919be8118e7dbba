#!/usr/bin/python3
"""Bad ONNX input: every case exits 2 with one line on stderr that names the node, op type
and opset where one applies, and never crashes or hangs.

Covers an unsupported operator (listing the supported ones), a truncated or non-protobuf
file, an opset out of range, missing external data (and external data outside the model's
directory, or a FIFO), a shape that does not match the data, a cycle, an undefined input,
an initializer whose byte size does not match its shape, and an output whose meaning is
unknown. A model with external data gets a digest over the .onnx and the data file.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SG = os.environ["STAGEGATE_BIN"]
SRC = os.environ["STAGEGATE_SOURCE_DIR"]
failures = []
rng = np.random.default_rng(1)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def base(nodes=None, inits=None, opset=13, n_in=4):
    W = rng.normal(size=(3, n_in)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    if nodes is None:
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                 helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)]
    if inits is None:
        inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")]
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def run(tmp, name, payload, want, data, extra=(), exit_code=2):
    path = os.path.join(tmp, name + ".onnx")
    if isinstance(payload, (bytes, bytearray)):
        with open(path, "wb") as f:
            f.write(payload)
    elif payload is not None:
        onnx.save(payload, path)
    try:
        p = subprocess.run([SG, "eval", "--model", path, "--data", data, *extra],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "%s: hung" % name)
        return
    lines = p.stderr.strip().splitlines()
    check(p.returncode == exit_code, "%s: exit %d, wanted %d (%s)" % (name, p.returncode,
                                                                      exit_code, p.stderr.strip()))
    if exit_code == 2:
        check(len(lines) == 1, "%s: %d stderr lines: %r" % (name, len(lines), p.stderr))
        for w in want:
            check(w in p.stderr, "%s: message lacks %r: %s" % (name, w, p.stderr.strip()))
    print("ok %-28s %s" % (name, lines[0] if lines else p.stdout.splitlines()[0]))
    return p


def main():
    tmp = tempfile.mkdtemp(prefix="sg_onnx_bad_")
    data = os.path.join(tmp, "val.h5")
    subprocess.run(["/usr/bin/python3", os.path.join(SRC, "scripts/make_dataset.py"), "--out",
                    data, "--task", "multiclass", "--classes", "3", "--rows", "300",
                    "--features", "4", "--seed", "2"], check=True, capture_output=True)
    data6 = os.path.join(tmp, "val6.h5")
    subprocess.run(["/usr/bin/python3", os.path.join(SRC, "scripts/make_dataset.py"), "--out",
                    data6, "--task", "multiclass", "--classes", "3", "--rows", "300",
                    "--features", "6", "--seed", "2"], check=True, capture_output=True)

    good = base()
    run(tmp, "good", good, [], data, exit_code=0)

    # An unsupported operator, in the default domain and in another one.
    m = base()
    m.graph.node[1].CopyFrom(helper.make_node("Conv", ["z"], ["out"], name="conv1"))
    run(tmp, "unsupported_op", m, ["node 'conv1' (Conv, opset 13)", "unsupported operator Conv",
                                   "supported: Gemm, MatMul", "Concat"], data)
    m = base()
    m.graph.node[1].CopyFrom(helper.make_node("Gelu", ["z"], ["out"], name="g1",
                                              domain="com.microsoft"))
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    run(tmp, "foreign_domain", m, ["node 'g1' (Gelu, opset 13)", "com.microsoft"], data)

    # Truncated and non-protobuf files.
    raw = good.SerializeToString()
    run(tmp, "truncated", raw[: len(raw) // 2], ["truncated or malformed"], data)
    run(tmp, "truncated_tail", raw[:-3], ["truncated or malformed"], data)
    run(tmp, "garbage_protobuf", b"\x08\x07" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        ["ONNX"], data)
    run(tmp, "text_file", b"hello, this is not a model\n", ["not a model file"], data)
    run(tmp, "empty_file", b"", ["not a model file"], data)

    # Opsets out of range.
    run(tmp, "opset_8", base(opset=8), ["opset 8 is out of range", "9..17"], data)
    run(tmp, "opset_18", base(opset=18), ["opset 18 is out of range"], data)

    # External data: missing, outside the directory, a FIFO, a length that does not match.
    ext = base()
    onnx.save(ext, os.path.join(tmp, "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.bin", size_threshold=0)
    p = run(tmp, "ext", None, [], data, extra=["--json"], exit_code=0)
    if p is not None and p.returncode == 0:
        h = hashlib.sha256()
        for f in ("ext.onnx", "ext.bin"):
            h.update(open(os.path.join(tmp, f), "rb").read())
        got = json.loads(p.stdout)["model"]["sha256"]
        check(got == h.hexdigest(), "external data digest %s, wanted sha256(onnx + data) %s"
              % (got, h.hexdigest()))
        # The registry records, and resolves against, the same digest.
        db = ["--db", os.path.join(tmp, "reg.db")]
        subprocess.run([SG, "registry", *db, "create-model", "ext"], check=True,
                       capture_output=True)
        subprocess.run([SG, "registry", *db, "create-version", "ext",
                        os.path.join(tmp, "ext.onnx")], check=True, capture_output=True)
        r = subprocess.run([SG, "registry", *db, "get", "ext", "1", "--json"],
                           capture_output=True, text=True)
        check(json.loads(r.stdout).get("artifact_sha256") == got,
              "registry digest of ext.onnx: %s" % r.stdout[:300])
        r = subprocess.run([SG, "registry", *db, "resolve", "models:/ext/1"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "resolve of ext.onnx: %s" % r.stderr.strip())
    os.rename(os.path.join(tmp, "ext.bin"), os.path.join(tmp, "ext.bin.away"))
    run(tmp, "ext", None, ["initializer 'W'", "external data \"ext.bin\" cannot be read"], data)
    os.mkfifo(os.path.join(tmp, "ext.bin"))
    run(tmp, "ext", None, ["ext.bin", "not a regular file"], data)
    os.unlink(os.path.join(tmp, "ext.bin"))
    for loc in ("../ext.bin", "/etc/passwd", "sub/../../x"):
        m = onnx.load(os.path.join(tmp, "ext.onnx"), load_external_data=False)
        for t in m.graph.initializer:
            for kv in t.external_data:
                if kv.key == "location":
                    kv.value = loc
        run(tmp, "ext_escape", m, ["outside the model's directory"], data)
    m = onnx.load(os.path.join(tmp, "ext.onnx"), load_external_data=False)
    os.rename(os.path.join(tmp, "ext.bin.away"), os.path.join(tmp, "ext.bin"))
    for kv in m.graph.initializer[0].external_data:
        if kv.key == "offset":
            kv.value = "99999999"
        if kv.key == "length":
            kv.value = "12"
    run(tmp, "ext_bad_offset", m, ["initializer 'W'"], data)

    # Shapes that do not match the data.
    m = base(inits=[numpy_helper.from_array(np.zeros((3, 5), np.float32), "W"),
                    numpy_helper.from_array(np.zeros(3, np.float32), "b")])
    run(tmp, "gemm_shape", m, ["node 'fc' (Gemm, opset 13)", "shape does not match"], data)
    run(tmp, "dataset_features", good, ["has 6 features", "expects 4"], data6)
    m = base(nodes=[helper.make_node("Reshape", ["x", "shp"], ["r"], name="rs"),
                    helper.make_node("Gemm", ["r", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)])
    m.graph.initializer.append(numpy_helper.from_array(np.array([-1, 3], np.int64), "shp"))
    run(tmp, "reshape_shape", m, ["node 'rs' (Reshape, opset 13)", "shape does not match"], data)

    # A cycle and an undefined input.
    m = base(nodes=[helper.make_node("Relu", ["b2"], ["a2"], name="ra"),
                    helper.make_node("Relu", ["a2"], ["b2"], name="rb"),
                    helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Add", ["z", "a2"], ["s"], name="add"),
                    helper.make_node("Softmax", ["s"], ["out"], name="sm", axis=1)])
    run(tmp, "cycle", m, ["cycle", "(Relu, opset 13)"], data)
    m = base(nodes=[helper.make_node("Gemm", ["x", "nope", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)])
    run(tmp, "undefined_input", m, ["node 'fc' (Gemm, opset 13)", "input 'nope' is not defined"],
        data)

    # Initializers whose data does not fill their shape.
    m = base()
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:-4]
    run(tmp, "raw_size", m, ["initializer 'W'", "44 bytes", "[3,4]", "needs 48"], data)
    m = base()
    t = m.graph.initializer[0]
    vals = list(numpy_helper.to_array(t).ravel()[:-1])
    t.ClearField("raw_data")
    t.float_data.extend(vals)
    run(tmp, "float_data_count", m, ["initializer 'W'", "holds 11 values"], data)
    m = base()
    m.graph.initializer[0].dims[0] = 1 << 40
    run(tmp, "huge_dims", m, ["initializer 'W'"], data)

    # What the output means: unknown without Softmax/Sigmoid, --output, or metadata.
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["out"], name="fc", transB=1)])
    run(tmp, "no_meaning", m, ["--output logits|proba|value", "stagegate.output"], data)
    run(tmp, "no_meaning", None, [], data, extra=["--output", "logits"], exit_code=0)
    run(tmp, "no_meaning", None, ["--output", "expected logits, proba or value"], data,
        extra=["--output", "maybe"])
    m.metadata_props.add(key="stagegate.output", value="nonsense")
    run(tmp, "bad_metadata", m, ["stagegate.output", "nonsense"], data)

    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("every bad ONNX input exits 2 with one line")


if __name__ == "__main__":
    main()
