#!/usr/bin/python3
"""Bad ONNX input: every case exits 2 with one line on stderr that names the node, op type
and opset where one applies, and never crashes or hangs.

Covers an unsupported operator (listing the supported ones), a truncated or non-protobuf
file, an opset out of range, missing external data (and external data outside the model's
directory, or a FIFO), a shape that does not match the data, a cycle, an undefined input,
an initializer whose byte size does not match its shape, an output whose meaning is
unknown, and operands the element-wise operators cannot take: a Clip bound computed per
row (or of several values, or given the wrong way for the opset), a PRelu slope computed
per row or not broadcasting to its input, Max/Min operands that do not broadcast, and a
Celu alpha of 0. NaN made inside the graph goes through Max, Min, Clip, HardSigmoid,
PRelu and Relu to the output, which is refused as not finite. A model with external data gets
the framed digest of docs/formats.md over the .onnx and each data file with its location, so
that two models whose files hold the same bytes split differently (a data file's tail moved
into the next one) get different digests, in eval, the registry and verify alike.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import h5py
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


def framed_digest(directory, onnx_name, locations):
    """docs/formats.md's digest of a model with external data, written from the doc: a tag,
    then every part as an 8-byte little-endian length and its bytes."""
    def part(b):
        return len(b).to_bytes(8, "little") + b
    h = hashlib.sha256(b"stagegate onnx external data v1\0")
    h.update(part(open(os.path.join(directory, onnx_name), "rb").read()))
    for loc in locations:
        h.update(part(loc.encode()))
        h.update(part(open(os.path.join(directory, loc), "rb").read()))
    return h.hexdigest()


def split_pair(tmp):
    """Two models with the same .onnx whose two data files hold the same bytes in all, split
    differently: in A the bias is at the head of b.bin and 12 unused bytes follow it; in B
    the bias is at the tail of w.bin and b.bin holds only those 12 bytes, which B reads as
    its bias. The plain SHA-256 of the concatenation is the same for both. The shared rng
    is left as it was: later cases depend on its values."""
    state = rng.bit_generator.state
    W = rng.normal(size=(3, 4)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    other = np.array([50.0, -50.0, -50.0], np.float32)

    def ext(name, dims, loc, length):
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims,
                        data_location=TensorProto.EXTERNAL)
        for k, v in (("location", loc), ("offset", "0"), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        return t
    m = base(inits=[ext("W", [3, 4], "w.bin", W.nbytes), ext("b", [3], "b.bin", bias.nbytes)])
    dirs = {}
    for name, w_bin, b_bin in (("A", W.tobytes(), bias.tobytes() + other.tobytes()),
                               ("B", W.tobytes() + bias.tobytes(), other.tobytes())):
        d = os.path.join(tmp, "split" + name)
        os.makedirs(d)
        onnx.save(m, os.path.join(d, "m.onnx"))
        open(os.path.join(d, "w.bin"), "wb").write(w_bin)
        open(os.path.join(d, "b.bin"), "wb").write(b_bin)
        dirs[name] = d
    rng.bit_generator.state = state
    return dirs


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
    m.graph.node[1].CopyFrom(helper.make_node("Hardmax", ["z"], ["out"], name="hm1"))
    run(tmp, "unsupported_op", m, ["node 'hm1' (Hardmax, opset 13)", "unsupported operator Hardmax",
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

    # These cases leave the shared rng as it was: later cases depend on its values.
    rng_state = rng.bit_generator.state
    # Squeeze of the batch axis, and of one axis named twice ([-2, 1] on [batch, 1, 4]): each
    # said as it is (they had read "axis 0 has size -1" and "axis 1 out of range").
    def squeeze(axes):
        nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], name="u1", axes=[1]),
                 helper.make_node("Squeeze", ["u"], ["s"], name="sq", axes=axes),
                 helper.make_node("Gemm", ["s", "W", "b"], ["z"], name="fc", transB=1),
                 helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)]
        return base(nodes=nodes, opset=11)
    run(tmp, "squeeze_batch", squeeze([0]), ["node 'sq' (Squeeze, opset 11)",
                                             "axis 0 is the batch, which cannot be squeezed"], data)
    run(tmp, "squeeze_twice", squeeze([-2, 1]), ["axis 1 names axis 1 a second time"], data)
    run(tmp, "squeeze_ok", squeeze([-2]), [], data, exit_code=0)

    # A graph output declared other than computed: another type, another width, another
    # rank. A declaration that agrees, or leaves the dimension symbolic, is taken.
    def declared(elem, dims):
        m = base()
        m.graph.output[0].CopyFrom(helper.make_tensor_value_info("out", elem, dims))
        return m
    run(tmp, "output_declared_int64", declared(TensorProto.INT64, ["batch", 3]),
        ["graph output 'out' is declared with element type int64 (7)", "computes float"], data)
    run(tmp, "output_declared_width", declared(TensorProto.FLOAT, ["batch", 5]),
        ["graph output 'out' dimension 1 is declared 5", "computes [batch, 3]"], data)
    run(tmp, "output_declared_rank", declared(TensorProto.FLOAT, ["batch", 3, 1]),
        ["graph output 'out' is declared with 3 dimensions", "computes [batch, 3]"], data)
    run(tmp, "output_declared_symbolic", declared(TensorProto.FLOAT, ["batch", "k"]), [], data,
        exit_code=0)
    run(tmp, "output_declared_fixed_batch", declared(TensorProto.FLOAT, [1, 3]), [], data,
        exit_code=0)
    rng.bit_generator.state = rng_state

    # External data: missing, outside the directory, a FIFO, a length that does not match.
    ext = base()
    onnx.save(ext, os.path.join(tmp, "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.bin", size_threshold=0)
    p = run(tmp, "ext", None, [], data, extra=["--json"], exit_code=0)
    if p is not None and p.returncode == 0:
        want = framed_digest(tmp, "ext.onnx", ["ext.bin"])
        got = json.loads(p.stdout)["model"]["sha256"]
        check(got == want, "external data digest %s, wanted the framed digest %s" % (got, want))
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
    # The same bytes split differently between two data files: two digests.
    dirs = split_pair(tmp)
    plain = {k: hashlib.sha256(b"".join(open(os.path.join(d, f), "rb").read()
                                        for f in ("m.onnx", "w.bin", "b.bin"))).hexdigest()
             for k, d in dirs.items()}
    check(plain["A"] == plain["B"], "split pair: the concatenations differ, the case tests nothing")
    digests = {}
    for k, d in dirs.items():
        p = subprocess.run([SG, "eval", "--model", os.path.join(d, "m.onnx"), "--data", data,
                            "--json"], capture_output=True, text=True)
        check(p.returncode == 0, "split %s: eval exit %d: %s" % (k, p.returncode, p.stderr.strip()))
        digests[k] = json.loads(p.stdout)["model"]["sha256"] if p.returncode == 0 else k
        want = framed_digest(d, "m.onnx", ["w.bin", "b.bin"])
        check(digests[k] == want, "split %s: digest %s, wanted %s" % (k, digests[k], want))
        # The registry computes it apart from eval's load (it does not compile the model).
        db = ["--db", os.path.join(d, "reg.db")]
        subprocess.run([SG, "registry", *db, "create-model", "m"], check=True,
                       capture_output=True)
        subprocess.run([SG, "registry", *db, "create-version", "m", os.path.join(d, "m.onnx")],
                       check=True, capture_output=True)
        r = subprocess.run([SG, "registry", *db, "get", "m", "1", "--json"],
                           capture_output=True, text=True)
        check(json.loads(r.stdout).get("artifact_sha256") == want,
              "split %s: registry digest %s, wanted %s" % (k, r.stdout[:200], want))
    check(digests["A"] != digests["B"], "split pair: one digest for two models: %s" % digests)

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
    # "./ext.bin" is the file beside the model (onnx reads it so); "ext.bin/." is not a file.
    for loc, code in (("./ext.bin", 0), ("././ext.bin", 0), ("ext.bin/.", 2)):
        n = onnx.load(os.path.join(tmp, "ext.onnx"), load_external_data=False)
        for t in n.graph.initializer:
            for kv in t.external_data:
                if kv.key == "location":
                    kv.value = loc
        run(tmp, "ext_dot", n, ["cannot be read"], data, exit_code=code)
    # A NUL inside a string: C strings end there, onnx and the runtimes read on, so
    # "ext.bin\0x" names a file that does not exist and "location\0x" an unknown key for them,
    # while a reader that stops at the NUL reads ext.bin: refused, whichever string it is in.
    def with_nul(where):
        n = onnx.load(os.path.join(tmp, "ext.onnx"), load_external_data=False)
        if where == "node":
            n.graph.node[0].name = "layer\x00one"
            return n
        for kv in n.graph.initializer[0].external_data:
            if kv.key == "location":
                if where == "value":
                    kv.value = "ext.bin\x00other.bin"
                else:
                    kv.key = "location\x00x"
        return n
    for where, field in (("value", "StringStringEntryProto.value"),
                         ("key", "StringStringEntryProto.key"), ("node", "NodeProto.name")):
        run(tmp, "nul_" + where, with_nul(where), ["nul_%s.onnx" % where, field, "NUL byte"], data)
    for kv in m.graph.initializer[0].external_data:
        if kv.key == "offset":
            kv.value = "99999999"
        if kv.key == "length":
            kv.value = "12"
    run(tmp, "ext_bad_offset", m, ["initializer 'W'"], data)
    m = onnx.load(os.path.join(tmp, "ext.onnx"), load_external_data=False)
    e = m.graph.initializer[0].external_data.add()
    e.key, e.value = "location", "other.bin"  # a second location: which one counts is a guess
    run(tmp, "ext_two_locations", m, ["initializer 'W'", "external data key \"location\" is given twice"],
        data)
    # Stored externally and inline too: which weights count would depend on the reader (this
    # one had read the file and ignored the inline ones; onnx.checker refuses the tensor).
    for field in ("raw_data", "float_data"):
        m = onnx.load(os.path.join(tmp, "ext.onnx"), load_external_data=False)
        w = m.graph.initializer[0]
        n_values = int(np.prod(w.dims))
        if field == "raw_data":
            w.raw_data = np.ones(n_values, np.float32).tobytes()
        else:
            w.float_data.extend([1.0] * n_values)
        # as bytes: onnx.save would move raw_data out to the external file
        run(tmp, "ext_and_" + field, m.SerializeToString(),
            ["initializer 'W'", "stored in an external file and holds data inline too"], data)

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
    # The weights first and the rows second (W x^T): named as such, not "constants only".
    # (The shared rng is left as it was: later cases depend on its values.)
    state = rng.bit_generator.state
    m = base(nodes=[helper.make_node("Gemm", ["W", "x", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)])
    rng.bit_generator.state = state
    run(tmp, "gemm_weights_first", m, ["node 'fc' (Gemm, opset 13)", "input 0 ('W') is a constant",
                                       "must be the per-row input"], data)

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
    # Both raw_data and float_data: which holds the weights would depend on the reader.
    m = base()
    t = m.graph.initializer[0]
    t.float_data.extend(list(numpy_helper.to_array(t).ravel() * 0))
    run(tmp, "raw_and_float_data", m, ["initializer 'W'", "both raw_data and a typed"], data)
    # The default domain imported twice, at two opsets.
    m = base()
    m.opset_import.append(helper.make_opsetid("", 11))
    run(tmp, "opset_twice", m, ["opset_import names the default ONNX domain twice"], data)
    m = base()
    m.graph.initializer[0].dims[0] = 1 << 40
    run(tmp, "huge_dims", m, ["initializer 'W'"], data)

    # Operands the element-wise operators refuse: each names the node and the input.
    def after_gemm(*nodes, opset=13, inits=()):
        m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                        *nodes, helper.make_node("Softmax", ["act"], ["out"], name="sm", axis=1)],
                 opset=opset)
        m.graph.initializer.extend(inits)
        return m

    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    run(tmp, "clip_row_min", after_gemm(helper.make_node("ReduceMean", ["z"], ["zm"], name="rm",
                                                         axes=[1]),
                                        helper.make_node("Clip", ["z", "zm", "one"], ["act"],
                                                         name="clip1"), inits=[one]),
        ["node 'clip1' (Clip, opset 13)", "min (input 1, 'zm') is computed per row",
         "only a constant bound"], data)
    run(tmp, "clip_row_max", after_gemm(helper.make_node("Clip", ["z", "", "z"], ["act"],
                                                         name="clip2")),
        ["node 'clip2' (Clip, opset 13)", "max (input 2, 'z') is computed per row"], data)
    two = numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "two")
    run(tmp, "clip_vector_min", after_gemm(helper.make_node("Clip", ["z", "two"], ["act"],
                                                            name="clip3"), inits=[two]),
        ["node 'clip3' (Clip, opset 13)", "min (input 1, 'two') must be one value",
         "it holds 2"], data)
    run(tmp, "clip_inputs_opset10", after_gemm(helper.make_node("Clip", ["z", "one"], ["act"],
                                                                name="clip4"),
                                               opset=10, inits=[one]),
        ["node 'clip4' (Clip, opset 10)", "attributes before opset 11"], data)
    run(tmp, "clip_attr_opset11", after_gemm(helper.make_node("Clip", ["z"], ["act"],
                                                              name="clip5", min=0.0),
                                             opset=11),
        ["node 'clip5' (Clip, opset 11)", "inputs from opset 11 on"], data)
    # An attribute of another type than ONNX's schema gives it was read as absent, so its
    # default applied: ints where floats belong (helper.make_node writes Python ints as INT),
    # a float transB. onnx.checker refuses each ("Mismatched attribute type").
    run(tmp, "clip_attr_ints", after_gemm(helper.make_node("Clip", ["z"], ["act"], name="clip6",
                                                           min=0, max=1), opset=9),
        ["node 'clip6' (Clip, opset 9)", "is INT, ONNX's Clip has it FLOAT"], data)
    run(tmp, "leaky_alpha_int", after_gemm(helper.make_node("LeakyRelu", ["z"], ["act"],
                                                            name="lr", alpha=2)),
        ["node 'lr' (LeakyRelu, opset 13)", "attribute 'alpha' is INT, ONNX's LeakyRelu has it FLOAT"],
        data)
    m = after_gemm(helper.make_node("Relu", ["z"], ["act"], name="r"))
    m.graph.node[0].attribute[0].CopyFrom(helper.make_attribute("transB", 1.0))
    run(tmp, "gemm_transb_float", m,
        ["node 'fc' (Gemm, opset 13)", "attribute 'transB' is FLOAT, ONNX's Gemm has it INT"], data)
    # a misspelt attribute, and one given twice, are not ignored either
    run(tmp, "gemm_transb_typo", base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"],
                                                              name="fc", transb=1),
                                             helper.make_node("Softmax", ["z"], ["out"], axis=1)]),
        ["node 'fc' (Gemm, opset 13)", "attribute 'transb' is not one Gemm has"], data)
    m = after_gemm(helper.make_node("LeakyRelu", ["z"], ["act"], name="lr2", alpha=0.5))
    m.graph.node[1].attribute.extend([helper.make_attribute("alpha", 0.1)])
    run(tmp, "attr_twice", m, ["node 'lr2' (LeakyRelu, opset 13)", "attribute 'alpha' is given twice"],
        data)
    # Each node against its operator's schema at the model's opset (onnx.defs; onnx.checker
    # refuses all of these). Node compilers read only what they know: a third MatMul input (a
    # bias) had been dropped, MatMul's transB=1 ignored (x@W for x@W^T), Concat's required axis
    # taken as 0, and operators run at opsets where ONNX does not define them.
    # (the shared generator's state is put back after these cases: later cases' messages
    # quote values drawn from it)
    rng_state = rng.bit_generator.state
    Wsq = numpy_helper.from_array(rng.normal(size=(4, 4)).astype(np.float32), "Wsq")
    hundred = numpy_helper.from_array(np.array([100.0], np.float32), "hundred")
    def via_matmul(node, opset=13):
        """x -> node -> 'h' [batch, 4] -> Gemm -> Softmax."""
        m = base(nodes=[node, helper.make_node("Gemm", ["h", "W", "b"], ["z"], name="fc", transB=1),
                        helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)], opset=opset)
        m.graph.initializer.extend([Wsq, hundred])
        return m
    for name, node, want in [
            ("matmul_3_inputs", helper.make_node("MatMul", ["x", "Wsq", "hundred"], ["h"], name="mm"),
             "3 inputs; MatMul takes 2 at this opset"),
            ("add_3_inputs", helper.make_node("Add", ["x", "hundred", "hundred"], ["h"], name="mm"),
             "3 inputs; Add takes 2 at this opset"),
            ("relu_2_inputs", helper.make_node("Relu", ["x", "hundred"], ["h"], name="mm"),
             "2 inputs; Relu takes 1 at this opset"),
            ("relu_2_outputs", helper.make_node("Relu", ["x"], ["h", "h2"], name="mm"),
             "2 outputs; Relu has 1 at this opset"),
            ("matmul_transB", helper.make_node("MatMul", ["x", "Wsq"], ["h"], name="mm", transB=1),
             "attribute 'transB' is not one MatMul has at this opset"),
            ("relu_alpha", helper.make_node("Relu", ["x"], ["h"], name="mm", alpha=0.5),
             "attribute 'alpha' is not one Relu has at this opset"),
            ("concat_no_axis", helper.make_node("Concat", ["x"], ["h"], name="mm"),
             "the required attribute 'axis' is missing"),
            # a variadic node whose input is omitted (an empty name): the chain had read an
            # order it never filled (a crash) when the omitted input was the one to go first
            ("sum_omitted_first", helper.make_node("Sum", ["", "x"], ["h"], name="mm"),
             "input 0 is missing"),
            ("mean_omitted_first", helper.make_node("Mean", ["", "x", "x"], ["h"], name="mm"),
             "input 0 is missing"),
            ("max_omitted_middle", helper.make_node("Max", ["x", "", "x"], ["h"], name="mm"),
             "input 1 is missing"),
            ("min_omitted_first", helper.make_node("Min", ["", "hundred", "x"], ["h"], name="mm"),
             "input 0 is missing")]:
        run(tmp, name, via_matmul(node), ["node 'mm' (%s, opset 13)" % node.op_type, want], data)
    for op, opset, first in [("HardSwish", 13, 14), ("Celu", 11, 12)]:
        run(tmp, "%s_opset%d" % (op.lower(), opset),
            via_matmul(helper.make_node(op, ["x"], ["h"], name="mm"), opset=opset),
            ["node 'mm' (%s, opset %d)" % (op, opset),
             "%s is not defined at opset %d (ONNX defines it from opset %d)" % (op, opset, first)],
            data)
    # Gemm's bias C is required before opset 11
    run(tmp, "gemm_no_c_opset10",
        base(nodes=[helper.make_node("Gemm", ["x", "W"], ["z"], name="fc", transB=1),
                    helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)], opset=10),
        ["node 'fc' (Gemm, opset 10)", "2 inputs; Gemm takes 3 at this opset"], data)
    # ...and the same nodes written as the schema allows still load
    for name, node, opset in [
            ("concat_axis_ok", helper.make_node("Concat", ["x"], ["h"], name="mm", axis=1), 13),
            ("hardswish_opset14", helper.make_node("HardSwish", ["x"], ["h"], name="mm"), 14)]:
        run(tmp, name, via_matmul(node, opset=opset), [], data, exit_code=0)
    # An optional output past the first that a node reads is refused (inference computes only
    # the first); BatchNormalization's extra outputs mean training mode, read or not.
    m = via_matmul(helper.make_node("Dropout", ["x"], ["d", "mask"], name="mm"))
    m.graph.node.insert(1, helper.make_node("Add", ["d", "mask"], ["h"]))
    run(tmp, "dropout_mask_read", m,
        ["node 'mm' (Dropout, opset 13)", "output 1 ('mask') is read, and inference computes only the first output"],
        data)
    m = via_matmul(helper.make_node("BatchNormalization", ["x", "bs", "bb", "bm", "bv"], ["h", "rm", "rv"],
                                    name="mm"), opset=15)
    m.graph.initializer.extend([numpy_helper.from_array(np.ones(4, np.float32), n) for n in ("bs", "bv")] +
                               [numpy_helper.from_array(np.zeros(4, np.float32), n) for n in ("bb", "bm")])
    run(tmp, "batchnorm_training_outputs", m,
        ["node 'mm' (BatchNormalization, opset 15)", "more than one output is training mode"], data)
    # Reshape to [-1, -1]: ONNX allows one -1; the leading one had been taken for the batch
    for shape, ok in [([-1, -1], False), ([0, -1], True), ([-1, 4], True)]:
        m = via_matmul(helper.make_node("Reshape", ["x", "shp"], ["h"], name="mm"))
        m.graph.initializer.extend([numpy_helper.from_array(np.array(shape, np.int64), "shp")])
        run(tmp, "reshape_%s" % "_".join(str(d) for d in shape), m,
            [] if ok else ["node 'mm' (Reshape, opset 13)", "two -1 in shape (ONNX allows one)"],
            data, exit_code=0 if ok else 2)
    # Dropout's training_mode is a bool (the only type ONNX gives it): a constant false loads
    # (it had been refused as "data type 9"), a constant true is refused.
    for flag, ok in [(False, True), (True, False)]:
        m = via_matmul(helper.make_node("Dropout", ["x", "", "tm"], ["h"], name="mm"))
        m.graph.initializer.extend([numpy_helper.from_array(np.array(flag), "tm")])
        run(tmp, "dropout_training_%s" % flag, m,
            [] if ok else ["node 'mm' (Dropout, opset 13)", "training_mode must be a constant false"],
            data, exit_code=0 if ok else 2)
    rng.bit_generator.state = rng_state
    # Rows of 2^24 values: a [1, 1] row broadcast against a folded [4096, 4096] constant.
    # Each scalar Add on it made a 64 MiB constant row at load, uncounted (a 33 KB file took
    # 131 MB a node); with none, the workers' scratch is refused with its reason.
    def wide(k):
        nodes = [helper.make_node("Mul", ["a", "b"], ["big"]),
                 helper.make_node("ReduceSum", ["x"], ["x1"], axes=[1], keepdims=1),
                 helper.make_node("Reshape", ["x1", "s"], ["x3"]),
                 helper.make_node("Add", ["x3", "big"], ["h0"])]
        nodes += [helper.make_node("Add", ["h%d" % i, "one"], ["h%d" % (i + 1)]) for i in range(k)]
        nodes += [helper.make_node("Flatten", ["h%d" % k], ["f"]),
                  helper.make_node("ReduceSum", ["f"], ["r"], axes=[-1], keepdims=0)]
        g = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
            [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N"])],
            [numpy_helper.from_array(np.ones((4096, 1), np.float32), "a"),
             numpy_helper.from_array(np.ones((1, 4096), np.float32), "b"),
             numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "s"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
        m.ir_version = 7
        m.metadata_props.add(key="stagegate.output", value="value")
        return m
    run(tmp, "const_rows_cap", wide(4),
        ["node #5 (Add, opset 11)", "constants made at load (folded, or broadcast to a row) would "
         "need more than 256 MiB"], data, extra=("--cpus", "0"))
    # With none, the rows run: the step plan's scratch holds as many 64 MiB rows as fit in its
    # 64 MiB budget (one), not 1,024 (which had been refused for the memory it needed).
    preds, data_w = os.path.join(tmp, "wide_rows.h5"), os.path.join(tmp, "wide_rows_data.h5")
    with h5py.File(data_w, "w") as f:  # 6 rows: each is 2^24 values a step
        f["X"] = rng.normal(size=(6, 4)).astype(np.float32)
        f["y"] = np.zeros(6, np.float32)
    run(tmp, "wide_rows_run", wide(0), [], data_w, extra=("--cpus", "0", "--predictions", preds),
        exit_code=0)
    with h5py.File(data_w) as f:
        Xw = f["X"][()].astype(np.float64)
    with h5py.File(preds) as f:
        got = f["prediction"][()].astype(np.float64)
    want = (Xw.sum(1) + 1) * 4096 * 4096
    check(np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want)),
          "wide_rows_run: max diff %.3g" % np.max(np.abs(got - want)))
    run(tmp, "prelu_row_slope", after_gemm(helper.make_node("Sigmoid", ["z"], ["zs"], name="sg"),
                                           helper.make_node("PRelu", ["z", "zs"], ["act"],
                                                            name="prelu1")),
        ["node 'prelu1' (PRelu, opset 13)", "slope (input 1, 'zs') is computed per row",
         "only a constant slope"], data)
    # Slice: only the columns of a row; the batch kept whole. Reductions: over the row only.
    def i64(name, v):
        return numpy_helper.from_array(np.array(v, np.int64), name)
    big = 2 ** 62
    run(tmp, "slice_batch", after_gemm(helper.make_node("Slice", ["z", "b1", "e1", "a0"], ["act"],
                                                        name="sl1"),
                                       inits=[i64("b1", [1]), i64("e1", [big]), i64("a0", [0])]),
        ["node 'sl1' (Slice, opset 13)", "slicing the batch axis is not supported"], data)
    run(tmp, "slice_step0", after_gemm(helper.make_node("Slice", ["z", "b0", "e1", "a1", "p0"],
                                                        ["act"], name="sl2"),
                                       inits=[i64("b0", [0]), i64("e1", [big]), i64("a1", [1]),
                                              i64("p0", [0])]),
        ["node 'sl2' (Slice, opset 13)", "a step is 0"], data)
    run(tmp, "slice_empty", after_gemm(helper.make_node("Slice", ["z", "b2", "e1x", "a1"], ["act"],
                                                        name="sl3"),
                                       inits=[i64("b2", [2]), i64("e1x", [1]), i64("a1", [1])]),
        ["node 'sl3' (Slice, opset 13)", "the slice selects no column"], data)
    run(tmp, "slice_row_starts", after_gemm(helper.make_node("Slice", ["z", "z", "e1", "a1"],
                                                             ["act"], name="sl4"),
                                            inits=[i64("e1", [big]), i64("a1", [1])]),
        ["node 'sl4' (Slice, opset 13)", "starts must be a constant int64 tensor"], data)
    run(tmp, "slice_lengths", after_gemm(helper.make_node("Slice", ["z", "b0", "e2", "a1"],
                                                          ["act"], name="sl5"),
                                         inits=[i64("b0", [0]), i64("e2", [big, big]),
                                                i64("a1", [1])]),
        ["node 'sl5' (Slice, opset 13)", "the same number of entries"], data)
    run(tmp, "reduce_no_axes", after_gemm(helper.make_node("ReduceSum", ["z"], ["zs"], name="rs"),
                                          helper.make_node("Add", ["z", "zs"], ["act"], name="ad")),
        ["node 'rs' (ReduceSum, opset 13)", "reducing over the batch is not supported"], data)
    s4 = numpy_helper.from_array(np.full(4, 0.25, np.float32), "s4")
    run(tmp, "prelu_slope_shape", after_gemm(helper.make_node("PRelu", ["z", "s4"], ["act"],
                                                              name="prelu2"), inits=[s4]),
        ["node 'prelu2' (PRelu, opset 13)", "slope 's4' of shape [4] does not broadcast",
         "rows of shape [3]"], data)
    c4 = numpy_helper.from_array(np.zeros(4, np.float32), "c4")
    run(tmp, "max_shapes", after_gemm(helper.make_node("Max", ["z", "c4"], ["act"], name="max1"),
                                      inits=[c4]),
        ["node 'max1' (Max, opset 13)", "'z' and 'c4' do not broadcast"], data)
    run(tmp, "min_shapes_3", after_gemm(helper.make_node("Relu", ["z"], ["zr"], name="r"),
                                        helper.make_node("Min", ["z", "zr", "x"], ["act"],
                                                         name="min1")),
        ["node 'min1' (Min, opset 13)",
         "shapes of 'the Min of inputs 0, 1' and 'x' do not broadcast"], data)
    run(tmp, "max_shapes_3", after_gemm(helper.make_node("Max", ["z", "one", "c4"], ["act"],
                                                         name="max3"), inits=[one, c4]),
        ["node 'max3' (Max, opset 13)", "shapes of 'the Max of inputs 1, 2' and 'z' do not "
         "broadcast"], data)
    run(tmp, "max_row_shapes", after_gemm(helper.make_node("Max", ["z", "x"], ["act"],
                                                           name="max2")),
        ["node 'max2' (Max, opset 13)", "'z' and 'x' do not broadcast"], data)
    run(tmp, "celu_alpha_0", after_gemm(helper.make_node("Celu", ["z"], ["act"], name="celu1",
                                                         alpha=0.0)),
        ["node 'celu1' (Celu, opset 13)", "alpha is 0"], data)

    # NaN goes through Max, Min, Clip, HardSigmoid, PRelu and Relu (as numpy's maximum, minimum
    # and clip): Log of the negative features makes NaN, and the output that carries it is
    # refused. An operator that dropped the NaN (fmaxf, say) would give a finite output.
    for op, extra, kw in (("Max", ["zero"], {}), ("Min", ["zero"], {}),
                          ("Clip", ["zero", "one"], {}), ("HardSigmoid", [], {"alpha": 0.5}),
                          ("PRelu", ["one"], {}), ("Relu", [], {})):
        m = base(nodes=[helper.make_node("Log", ["x"], ["lg"], name="log"),
                        helper.make_node(op, ["lg"] + extra, ["act"], name="nan_" + op, **kw),
                        helper.make_node("Gemm", ["act", "W", "b"], ["out"], name="fc",
                                         transB=1)])
        m.graph.initializer.extend([one, numpy_helper.from_array(np.array(0, np.float32), "zero")])
        m.metadata_props.add(key="stagegate.output", value="logits")
        run(tmp, "nan_through_" + op, m, ["is not finite"], data)

    # What the output means: unknown without Softmax/Sigmoid, --output, or metadata.
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["out"], name="fc", transB=1)])
    run(tmp, "no_meaning", m, ["--output logits|proba|value", "stagegate.output"], data)
    run(tmp, "no_meaning", None, [], data, extra=["--output", "logits"], exit_code=0)
    run(tmp, "no_meaning", None, ["--output", "expected logits, proba or value"], data,
        extra=["--output", "maybe"])
    m.metadata_props.add(key="stagegate.output", value="nonsense")
    run(tmp, "bad_metadata", m, ["stagegate.output", "nonsense"], data)
    # Said twice (onnx.checker refuses a repeated key): which one is meant is a guess.
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["out"], name="fc", transB=1)])
    m.metadata_props.add(key="stagegate.output", value="proba")
    m.metadata_props.add(key="stagegate.output", value="logits")
    run(tmp, "metadata_twice", m, ["metadata_twice.onnx", "stagegate.output twice"], data)

    # Nesting without end, which the protobuf unpacker follows by recursion (it ran out of
    # stack: SIGSEGV, nothing printed): If nodes inside If nodes' then_branch, 3,000 deep
    # (60 KB), and a value_info type of sequences of sequences, 5,000 deep. Written as raw
    # protobuf, since the onnx package recurses too.
    def field(num, payload):
        key, n, out = (num << 3) | 2, len(payload), bytearray()
        for v in (key, n):
            while True:
                out.append((v & 0x7f) | (0x80 if v > 0x7f else 0))
                v >>= 7
                if not v:
                    break
        return bytes(out) + payload
    g = b""
    for _ in range(3000):  # Graph{node: Node{op_type "If", attribute: Attr{name, g: Graph}}}
        attr = field(1, b"then_branch") + field(6, g)
        g = field(1, field(4, b"If") + field(5, attr))
    ok = base()

    def with_graph_fields(extra):
        """The model with extra fields appended to its one graph field (a second graph field,
        which protobuf would merge into the first, is refused on its own: see twice_*)."""
        head = onnx.ModelProto()
        head.CopyFrom(ok)
        head.ClearField("graph")
        return head.SerializeToString() + field(7, ok.graph.SerializeToString() + extra)
    deep_if = with_graph_fields(g)
    run(tmp, "nested_if_3000", deep_if, ["nested_if_3000.onnx", "nested more than 256 deep"], data)
    t = b""
    for _ in range(5000):  # TypeProto{sequence_type: Sequence{elem_type: t}}
        t = field(4, field(1, t))
    deep_type = with_graph_fields(field(13, field(1, b"extra") + field(2, t)))
    run(tmp, "nested_type_5000", deep_type, ["nested_type_5000.onnx", "nested more than 256 deep"],
        data)
    t = b""
    for _ in range(100):  # a nesting real models could have: still read
        t = field(4, field(1, t))
    fine = with_graph_fields(field(13, field(1, b"extra") + field(2, t)))
    run(tmp, "nested_type_100", fine, [], data, exit_code=0)
    # One value read two ways. protobuf keeps the last value of a scalar it knows (an unknown
    # enum value is put aside) and merges a sub-message given twice; protobuf-c keeps the last
    # value whatever it is and replaces a oneof's sub-message. A tensor whose data_location is
    # EXTERNAL then 99 was read from its inline bytes here and from the external file (10x the
    # weights, in no digest) by onnx. Field number 0 ends a message for protobuf only.
    ext_w = numpy_helper.from_array(np.ones((3, 4), np.float32), "W")
    ext_w.external_data.add(key="location", value="ext.bin")
    ext_w.data_location = onnx.TensorProto.EXTERNAL
    twice = field(5, ext_w.SerializeToString() + bytes([14 << 3, 99]))
    cases = [
        ("twice_data_location", with_graph_fields(twice), ["TensorProto.data_location", "twice"]),
        ("enum_unknown", with_graph_fields(field(5, numpy_helper.from_array(
            np.ones((3, 4), np.float32), "W2").SerializeToString() + bytes([14 << 3, 99]))),
         ["TensorProto.data_location holds 99, not a value of its enum"]),
        ("twice_graph", ok.SerializeToString() + field(7, b""), ["ModelProto.graph", "twice"]),
        ("twice_oneof_type", with_graph_fields(field(13, field(1, b"y") + field(
            2, field(1, field(1, bytes([8, 1]))) + field(1, field(1, bytes([8, 1])))))),
         ["TypeProto.tensor_type", "twice"]),
        ("oneof_two_members", with_graph_fields(field(13, field(1, b"y") + field(
            2, field(1, field(1, bytes([8, 1]))) + field(4, b"")))),
         ["TypeProto.sequence_type is given with another member of its oneof"]),
        ("field_zero", ok.SerializeToString() + bytes([0x80, 0x00, 0x00]),
         ["field numbered 0 in ModelProto"]),
    ]
    for name, payload, want in cases:
        run(tmp, name, payload, [name + ".onnx"] + want, data)
    # What the unpack allocates is checked before it, against the memory the process may use:
    # empty initializers, 2 bytes of file each and over 200 bytes unpacked (a 52 MB file of
    # them had taken 6.7 GB), as many as make 1.5 times this machine's memory.
    phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    run(tmp, "unpacked_too_large", with_graph_fields(bytes([5 << 3 | 2, 0]) * (phys // 144)),
        ["unpacked_too_large.onnx: its messages unpacked need about",
         "of memory this process may use"], data)
    os.remove(os.path.join(tmp, "unpacked_too_large.onnx"))
    # Outputs declared probabilities that are not: a raw Gemm (values outside [0, 1]), and a
    # Softmax halved (each in [0, 1], rows summing to 0.5). Refused naming the model.
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["out"], name="fc", transB=1)])
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(
        (10 * rng.normal(size=(3, 4))).astype(np.float32), "W"))
    run(tmp, "proba_not_probabilities", m, ["proba_not_probabilities.onnx: output proba[",
                                            "not probabilities"], data, extra=["--output", "proba"])
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Softmax", ["z"], ["sm"], name="sm", axis=1),
                    helper.make_node("Mul", ["sm", "half"], ["out"], name="halved")])
    m.graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    m.metadata_props.add(key="stagegate.output", value="proba")
    p = run(tmp, "proba_rows_sum_half", m, ["proba_rows_sum_half.onnx: output proba[0] sums to ",
                                            "not class probabilities"], data)
    said = re.search(r"sums to ([0-9.]+),", p.stderr if p else "")
    check(said is not None and abs(float(said.group(1)) - 0.5) < 1e-6,
          "proba_rows_sum_half: the sum said is not 0.5: %s" % (p.stderr if p else None))
    # A per-row value of lower rank: Div(z [batch, 3], max [batch]). ONNX aligns shapes from
    # the right, so [batch] meets the 3 columns (valid for a batch of 3 or 1 only); it was run
    # as one value per row. With keepdims ([batch, 1]) the same graph is per row, and runs.
    for keep, code in ((0, 2), (1, 0)):
        m = after_gemm(helper.make_node("ReduceMax", ["z"], ["zm"], name="rmax", axes=[1],
                                        keepdims=keep),
                       helper.make_node("Div", ["z", "zm"], ["act"], name="div1"))
        run(tmp, "div_by_batch_vector_keepdims%d" % keep, m,
            ["node 'div1' (Div, opset 13)", "'zm' has rank 1 and the other input rank 2",
             "aligns shapes from the right"] if code else [], data, exit_code=code)

    # A softmax per vector of a row, flattened: six values, two probability vectors. Not a
    # graph that "ends in Softmax" (it had been replaced by one softmax over all six values,
    # exit 0 with the wrong probabilities): its meaning must be said, and as probabilities
    # its rows sum to 2 (1.99999997), which is refused.
    sm_nodes = [helper.make_node("MatMul", ["X", "W"], ["H"]),
                helper.make_node("Softmax", ["H"], ["S"], axis=-1),
                helper.make_node("Flatten", ["S"], ["Y"], axis=1)]
    sm_g = helper.make_graph(sm_nodes, "g",
                             [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 2, 3])],
                             [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 6])],
                             [numpy_helper.from_array(rng.normal(size=(3, 3)).astype(np.float32), "W")])
    sm_m = helper.make_model(sm_g, opset_imports=[helper.make_opsetid("", 13)])
    sm_m.ir_version = 7
    data6 = os.path.join(tmp, "six.h5")
    with h5py.File(data6, "w") as f:
        f["X"] = rng.normal(size=(64, 6)).astype(np.float32)
        f["y"] = rng.integers(0, 6, size=64).astype(np.int64)
    run(tmp, "grouped_softmax_flat", sm_m, ["does not end in Softmax or Sigmoid"], data6)
    run(tmp, "grouped_softmax_proba", sm_m, ["sums to 1.99999", ", not 1: the model's 6 outputs are not class probabilities"], data6, extra=("--output", "proba"))

    # The batch size from a Shape node: read as a Reshape's leading dimension (PyTorch's
    # x.view(x.size(0), -1)), and refused anywhere else, not computed with as the 0 it is
    # stored as (tests/onnx/torch_parity.py checks PyTorch's own exports against PyTorch).
    def batch_graph(tail, opset=13):
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                 helper.make_node("Shape", ["z"], ["s"], name="shape"),
                 helper.make_node("Gather", ["s", "zero"], ["n"], name="pick", axis=0),
                 helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq")] + tail
        inits = [numpy_helper.from_array(np.ones((3, 4), np.float32), "W"),
                 numpy_helper.from_array(np.zeros(3, np.float32), "b"),
                 numpy_helper.from_array(np.array(0, np.int64), "zero"),
                 numpy_helper.from_array(np.array([0], np.int64), "axes0"),
                 numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
                 numpy_helper.from_array(np.array([3], np.int64), "three")]
        return base(nodes=nodes, inits=inits, opset=opset)
    sm = helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)
    run(tmp, "batch_view", batch_graph([
        helper.make_node("Concat", ["n1", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), sm]), [], data, exit_code=0)
    run(tmp, "batch_second", batch_graph([
        helper.make_node("Concat", ["three", "n1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), sm]),
        ["node 'view' (Reshape, opset 13)", "shape[1] holds the batch, which would not be a "
         "whole part of it: rows of shape [-1,3] (-1: the batch) hold 1 values before the batch "
         "and 3 after it, the new shape 3 before shape[1] and 1 after"], data)
    run(tmp, "batch_arith", batch_graph([
        helper.make_node("Add", ["n1", "three"], ["m"], name="plus"),
        helper.make_node("Concat", ["m", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), sm]),
        ["node 'plus' (Add, opset 13)", "input 0 holds the batch size (from a Shape node), "
         "which stagegate uses only in a Reshape's shape, as the first dimension of an Expand's "
         "or ConstantOfShape's, and multiplied by a constant"], data)
    run(tmp, "batch_squared", batch_graph([
        helper.make_node("Mul", ["n1", "n1"], ["m"], name="square"),
        helper.make_node("Concat", ["m", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), sm]),
        ["node 'square' (Mul, opset 13)", "element 0 computes with the batch size (from a Shape "
         "node), known only per run: only its product with a positive constant"], data)
    # The batch times 3 rows of one value each ([N, 3] viewed as [3N, 1]) is a valid shape;
    # as the graph's output it is refused, named.
    run(tmp, "batch_merged_output", batch_graph([
        helper.make_node("Mul", ["n1", "three"], ["m"], name="times"),
        helper.make_node("Concat", ["m", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), sm]),
        ["graph output 'out' is [-1,1] (-1: the batch, merged with row values): its batch must "
         "be the first dimension, on its own"], data)
    run(tmp, "batch_times_rows", batch_graph([
        helper.make_node("Mul", ["z", "n1"], ["r"], name="scale"), sm]),
        ["node 'scale' (Mul, opset 13)", "holds the batch size (from a Shape node), multiplied "
         "with rows"], data)
    run(tmp, "batch_cast_float", batch_graph([
        helper.make_node("Cast", ["n1"], ["f"], name="tofloat", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["z", "f"], ["r"], name="scale"), sm]),
        ["node 'tofloat' (Cast, opset 13)", "cast of the batch size"], data)
    run(tmp, "batch_cast_int32", batch_graph([
        helper.make_node("Cast", ["n1"], ["i32"], name="toint32", to=TensorProto.INT32),
        helper.make_node("Concat", ["i32", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), sm]),
        ["node 'toint32' (Cast, opset 13)", "cast of the batch size"], data)
    # Layout nodes that would move, repeat, split or fix the batch, and shape arithmetic that
    # cannot be computed: each refused with the node named.
    def after_fc(*tail, inits=()):
        m = batch_graph(list(tail) + [helper.make_node("Softmax", ["r"], ["out"], name="sm",
                                                       axis=1)])
        for name, value in inits:
            m.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
        return m
    # A Transpose may move the batch (attention does); the softmax over it is refused.
    run(tmp, "transpose_batch", after_fc(
        helper.make_node("Transpose", ["z"], ["r"], name="tr", perm=[1, 0])),
        ["node 'sm' (Softmax, opset 13)", "axis 1 is the batch of 'r' (rows of shape [3,-1] "
         "(-1: the batch))"], data)
    # Rows whose batch a Transpose moved ([3, N]): what would mix the batch with row values
    # is refused, the node named.
    tr = helper.make_node("Transpose", ["z"], ["t"], name="tr", perm=[1, 0])
    run(tmp, "moved_flatten", after_fc(
        tr, helper.make_node("Flatten", ["t"], ["r"], name="flat", axis=1)),
        ["node 'flat' (Flatten, opset 13)", "'t' is rows of shape [3,-1] (-1: the batch), whose "
         "batch a Transpose or Reshape moved; Flatten is not supported on them"], data)
    run(tmp, "moved_concat_batch", after_fc(
        tr, helper.make_node("Concat", ["t", "t"], ["r"], name="cat", axis=1)),
        ["node 'cat' (Concat, opset 13)", "axis 1 is the batch of 't' (rows of shape [3,-1] "
         "(-1: the batch))"], data)
    def with_float(m, name, value):
        m.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return m
    run(tmp, "moved_const_along_batch", with_float(after_fc(
        tr, helper.make_node("Add", ["t", "c32"], ["r"], name="add")), "c32",
        [[1, 2], [3, 4], [5, 6]]),
        ["node 'add' (Add, opset 13)", "constant 'c32' has 2 values along the batch of the rows "
         "(shape [3,-1] (-1: the batch))"], data)
    run(tmp, "moved_reduce_all", after_fc(
        tr, helper.make_node("ReduceSum", ["t"], ["r"], name="rsum", keepdims=1)),
        ["node 'rsum' (ReduceSum, opset 13)", "a reduction over every axis would take in the "
         "batch of 't'"], data)
    run(tmp, "moved_matmul_batch", with_float(after_fc(
        tr, helper.make_node("MatMul", ["t", "w5"], ["r"], name="mm")), "w5", [[1.0] * 3] * 5),
        ["node 'mm' (MatMul, opset 13)", "the batch of 't' (rows of shape [3,-1] (-1: the "
         "batch)) would be one of the multiplied axes"], data)
    run(tmp, "moved_mixed", after_fc(
        tr, helper.make_node("Transpose", ["z"], ["zz"], name="tr2", perm=[0, 1]),
        helper.make_node("Add", ["t", "zz"], ["r"], name="add")),
        ["node 'add' (Add, opset 13)", "input 1 ('zz', rows of shape [-1,3] (-1: the batch)) "
         "and 't' (rows of shape [3,-1] (-1: the batch)) do not have their batch in the same "
         "place"], data)
    run(tmp, "moved_reshape_no_batch", after_fc(
        tr, helper.make_node("Reshape", ["t", "s31"], ["r"], name="view"),
        inits=[("s31", [3, 1])]),
        ["node 'view' (Reshape, opset 13)", "no dimension of the new shape holds the batch of "
         "rows of shape [3,-1] (-1: the batch)"], data)
    run(tmp, "moved_output", batch_graph([tr, helper.make_node("Relu", ["t"], ["out"],
                                                               name="relu")]),
        ["graph output 'out' is [3,-1] (-1: the batch): its batch must be the first dimension"],
        data)
    # If: a condition computed per row is refused; a branch with an operator stagegate does
    # not know is refused naming it; a branch may read a value whose node comes later in the
    # file (the order counts what branches read).
    def if_graph(cond_nodes, branch_nodes, branch_out, order=None):
        then_g = helper.make_graph(branch_nodes, "then", [], [helper.make_tensor_value_info(
            branch_out, TensorProto.FLOAT, None)])
        else_g = helper.make_graph([helper.make_node("Identity", ["z"], ["e_out"])], "else", [],
                                   [helper.make_tensor_value_info("e_out", TensorProto.FLOAT,
                                                                  None)])
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1)] + \
            cond_nodes + [helper.make_node("If", ["cond"], ["r"], name="when",
                                           then_branch=then_g, else_branch=else_g),
                          helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)]
        if order:
            nodes = [nodes[i] for i in order]
        m = base(nodes=nodes)
        m.graph.initializer.append(numpy_helper.from_array(np.array(True), "yes"))
        m.graph.initializer.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"))
        m.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "ax1"))
        return m
    run(tmp, "if_per_row", if_graph(
        [helper.make_node("ReduceSum", ["z", "ax1"], ["zs"], name="zsum", keepdims=0),
         helper.make_node("Greater", ["zs", "zero_f"], ["cond"], name="gt")],
        [helper.make_node("Relu", ["z"], ["t_out"])], "t_out"),
        ["node 'when' (If, opset 13): the condition ('cond') is computed per row"], data)
    m = if_graph([helper.make_node("Identity", ["yes"], ["cond"], name="id")],
                 [helper.make_node("Relu", ["z"], ["t_out"])], "t_out")
    m.graph.node[2].attribute[1].g.node[0].op_type = "Mish"
    run(tmp, "if_branch_unknown_op", m,
        ["node #0 (Mish, opset 13): unsupported operator Mish in a branch of If 'when'"], data)
    run(tmp, "if_branch_reads_later_node", if_graph(
        [helper.make_node("Identity", ["yes"], ["cond"], name="id"),
         helper.make_node("Relu", ["z"], ["zr"], name="relu")],
        [helper.make_node("Neg", ["zr"], ["t_out"])], "t_out", order=[0, 3, 1, 2, 4]),
        [], data, exit_code=0)
    # Tile by the batch size (from a Shape node): a constant of size 1 on that axis is one copy
    # per row (add_bias_kv); of size 2 it would interleave, and rows would repeat the batch.
    def tile_graph(const_shape, rows):
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                 helper.make_node("Shape", ["z"], ["s"], name="shape"),
                 helper.make_node("Gather", ["s", "i0"], ["n"], name="pick"),
                 helper.make_node("Concat", ["n", "one"] if rows else ["one", "n", "one"],
                                  ["rep"], name="reps", axis=0),
                 helper.make_node("Tile", ["z" if rows else "k", "rep"], ["t"], name="tile"),
                 helper.make_node("Softmax", ["t"], ["out"], name="sm", axis=-1)]
        m = base(nodes=nodes)
        for name, value in (("i0", np.array([0], np.int64)), ("one", np.array([1], np.int64)),
                            ("k", np.ones(const_shape, np.float32))):
            m.graph.initializer.append(numpy_helper.from_array(value, name))
        return m
    run(tmp, "tile_batch_interleaved", tile_graph((1, 2, 3), False),
        ["node 'tile' (Tile, opset 13): repeats[1] is the batch size: the constant's axis 1 "
         "must be 1 (it is 2) for each row to get one copy"], data)
    run(tmp, "tile_rows_by_batch", tile_graph((1, 1, 3), True),
        ["node 'tile' (Tile, opset 13): repeats[0] is the batch size (from a Shape node): only "
         "a constant of size 1 on that axis may be repeated by it"], data)
    # If branches: their names are their own (two Ifs may use the same inside), an outer name
    # may not be defined again inside, and an infinity read inside a branch counts as read.
    def if_pair(branch_init=None, inner="tmp"):
        def branch(tag, out):
            inits = [] if branch_init is None else [numpy_helper.from_array(
                np.ones(3, np.float32), branch_init)]
            return helper.make_graph(
                [helper.make_node("Relu", ["z"], [inner]),
                 helper.make_node("Neg", [inner], [out])], tag, [],
                [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                 helper.make_node("If", ["yes"], ["r1"], name="first",
                                  then_branch=branch("t1", "o1"), else_branch=branch("e1", "p1")),
                 helper.make_node("If", ["yes"], ["r2"], name="second",
                                  then_branch=branch("t2", "o2"), else_branch=branch("e2", "p2")),
                 helper.make_node("Add", ["r1", "r2"], ["r"], name="add"),
                 helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)]
        m = base(nodes=nodes)
        m.graph.initializer.append(numpy_helper.from_array(np.array(True), "yes"))
        return m
    run(tmp, "if_siblings_same_names", if_pair(), [], data, exit_code=0)
    run(tmp, "if_branch_redefines_outer", if_pair(branch_init="W"),
        ["node 'first' (If, opset 13): initializer 'W' of the then branch is defined twice"],
        data)
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Add", ["z", "infs"], ["za"], name="mask"),
                    helper.make_node("If", ["yes"], ["r"], name="when", then_branch=helper.make_graph(
                        [helper.make_node("Mul", ["za", "infs"], ["t_out"])], "t", [],
                        [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, None)]),
                        else_branch=helper.make_graph(
                        [helper.make_node("Identity", ["za"], ["e_out"])], "e", [],
                        [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, None)])),
                    helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)])
    m.graph.initializer.extend([numpy_helper.from_array(np.array([0, -np.inf, 0], np.float32),
                                                        "infs"),
                                numpy_helper.from_array(np.array(True), "yes")])
    run(tmp, "inf_initializer_in_branch", m,
        ["initializer 'infs'[1] is not finite (an infinity is taken only in a mask that Add or "
         "Where reads)"], data)
    # A mask folded with a constant (-inf + 0) is still not a weight.
    m = base(nodes=[helper.make_node("Add", ["infs4", "zeros4"], ["scale"], name="fold"),
                    helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("MatMul", ["x", "scale"], ["r0"], name="mm"),
                    helper.make_node("Add", ["z", "r0"], ["r"], name="add"),
                    helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)])
    m.graph.initializer.extend([
        numpy_helper.from_array(np.array([[0, 0, 0], [0, -np.inf, 0], [0, 0, 0], [0, 0, 0]],
                                         np.float32), "infs4"),
        numpy_helper.from_array(np.zeros((4, 3), np.float32), "zeros4")])
    run(tmp, "inf_mask_folded_into_weight", m,
        ["node 'mm' (MatMul, opset 13): the weight (input 1) ('scale') element 4 is not finite"],
        data)
    # An infinity in an initializer is taken only in a mask (read by Add or Where).
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Mul", ["z", "infs"], ["r"], name="scale"),
                    helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)])
    m.graph.initializer.append(numpy_helper.from_array(
        np.array([1, -np.inf, 1], np.float32), "infs"))
    run(tmp, "inf_initializer_weight", m,
        ["initializer 'infs'[1] is not finite (an infinity is taken only in a mask that Add or "
         "Where reads)"], data)
    m = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Add", ["z", "infs"], ["r"], name="mask"),
                    helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)])
    m.graph.initializer.append(numpy_helper.from_array(
        np.array([0, -np.inf, 0], np.float32), "infs"))
    run(tmp, "inf_initializer_mask", m, [], data, exit_code=0)
    run(tmp, "expand_fixed_batch", after_fc(
        helper.make_node("Expand", ["z", "fixed"], ["r"], name="ex"), inits=[("fixed", [5, 3])]),
        ["node 'ex' (Expand, opset 13)", "shape[0] = 5 would fix the batch size"], data)
    run(tmp, "expand_new_axes", after_fc(
        helper.make_node("Expand", ["z", "s3"], ["e"], name="ex"),
        helper.make_node("Flatten", ["e"], ["r"], name="fl"), inits=[("s3", [2, 1, 3])]),
        ["node 'ex' (Expand, opset 13)", "would put new axes before the batch"], data)
    run(tmp, "expand_batch_inside", after_fc(
        helper.make_node("Concat", ["three", "n1"], ["shp"], name="cat", axis=0),
        helper.make_node("Expand", ["z", "shp"], ["r"], name="ex")),
        ["node 'ex' (Expand, opset 13)", "shape[1] is the batch size (from a Shape node)"], data)
    m = after_fc(helper.make_node("Shape", ["z"], ["sz"], name="shz"),
                 helper.make_node("Expand", ["c23", "sz"], ["r"], name="ex"))
    m.graph.initializer.append(numpy_helper.from_array(np.ones((2, 3), np.float32), "c23"))
    run(tmp, "expand_constant_batch", m,
        ["node 'ex' (Expand, opset 13)", "the constant's axis 0 (of size 2) would meet the batch"],
        data)
    run(tmp, "expand_misaligned_batch", after_fc(
        helper.make_node("Unsqueeze", ["z", "axes0_1"], ["z3"], name="u"),
        helper.make_node("Shape", ["z"], ["sz"], name="shz"),
        helper.make_node("Expand", ["z3", "sz"], ["e"], name="ex"),
        helper.make_node("Flatten", ["e"], ["r"], name="fl"), inits=[("axes0_1", [1])]),
        ["node 'ex' (Expand, opset 13)", "shape[0], the batch size (from a Shape node), would "
         "meet axis 1 of the input"], data)
    run(tmp, "constantofshape_fp16", after_fc(
        helper.make_node("ConstantOfShape", ["three"], ["k"], name="cos",
                         value=helper.make_tensor("v", TensorProto.FLOAT16, [1], [1.0])),
        helper.make_node("Add", ["z", "k"], ["r"], name="add")),
        ["node 'cos' (ConstantOfShape, opset 13): the value has data type float16 (10)"], data)
    run(tmp, "matmul_rows_rank1", after_fc(
        helper.make_node("MatMul", ["z", "z"], ["r"], name="mm")),
        ["node 'mm' (MatMul, opset 13)", "a MatMul of two per-row tensors needs rows of rank 2"],
        data)
    run(tmp, "matmul_rows_leading", after_fc(
        helper.make_node("Reshape", ["z", "s13"], ["a"], name="ra"),
        helper.make_node("Reshape", ["z", "s31"], ["b3"], name="rb"),
        helper.make_node("Concat", ["b3", "b3"], ["b2"], name="cb", axis=1),
        helper.make_node("MatMul", ["a", "b2"], ["p"], name="mm"),
        helper.make_node("Flatten", ["p"], ["r"], name="fl"),
        inits=[("s13", [-1, 1, 1, 3]), ("s31", [-1, 1, 3, 1])]),
        ["node 'mm' (MatMul, opset 13)", "the axes before the matrices must be the same"], data)
    run(tmp, "tile_batch", after_fc(
        helper.make_node("Tile", ["z", "rep"], ["r"], name="tile"), inits=[("rep", [2, 1])]),
        ["node 'tile' (Tile, opset 13)", "repeats[0] = 2 would repeat the batch"], data)
    run(tmp, "split_batch", after_fc(
        helper.make_node("Split", ["z"], ["r", "r2"], name="split", axis=0)),
        ["node 'split' (Split, opset 13)", "splitting along the batch"], data)
    run(tmp, "split_sizes", after_fc(
        helper.make_node("Split", ["z", "sizes"], ["r", "r2"], name="split", axis=1),
        inits=[("sizes", [1, 1])]),
        ["node 'split' (Split, opset 13)", "split sizes add up to 2, axis 1 has 3"], data)
    run(tmp, "constantofshape_int_rows", after_fc(
        helper.make_node("Concat", ["n1", "three"], ["shp"], name="cat", axis=0),
        helper.make_node("ConstantOfShape", ["shp"], ["k"], name="cos",
                         value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
        helper.make_node("Add", ["z", "k"], ["r"], name="add")),
        ["node 'cos' (ConstantOfShape, opset 13)", "per-row tensor of integers"], data)
    run(tmp, "int_div_zero", after_fc(
        helper.make_node("Div", ["three", "zero_v"], ["q"], name="div"),
        helper.make_node("Concat", ["n1", "q"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"), inits=[("zero_v", [0])]),
        ["node 'div' (Div, opset 13)", "integer division by zero"], data)
    run(tmp, "int_overflow", after_fc(
        helper.make_node("Mul", ["big", "big"], ["q"], name="mul"),
        helper.make_node("Concat", ["n1", "q"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view"),
        inits=[("big", [1 << 40])]),
        ["node 'mul' (Mul, opset 13)", "int64 overflow"], data)
    run(tmp, "reduce_batch_axis", after_fc(
        helper.make_node("ReduceSum", ["z", "axes0"], ["r"], name="rsum", keepdims=1)),
        ["node 'rsum' (ReduceSum, opset 13)", "axis 0 is the batch"], data)
    # Conditions on rows (a comparison's result) are read only as conditions; the batch size
    # compares only where the answer is known (it is at least 1).
    zero_f = [("zero_f", 0.0)]

    def with_floats(m, inits):
        for name, value in inits:
            m.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return m
    run(tmp, "bool_into_add", with_floats(after_fc(
        helper.make_node("Greater", ["z", "zero_f"], ["g"], name="gt"),
        helper.make_node("Add", ["z", "g"], ["r"], name="add")), zero_f),
        ["node 'add' (Add, opset 13)", "input 1 ('g') is a boolean"], data)
    m = with_floats(base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                                helper.make_node("Greater", ["z", "zero_f"], ["out"], name="gt")]),
                    zero_f)
    run(tmp, "bool_output", m, ["graph output 'out' is boolean"], data,
        extra=("--output", "logits"))
    run(tmp, "not_of_floats", after_fc(helper.make_node("Not", ["z"], ["r"], name="not")),
        ["node 'not' (Not, opset 13)", "is not a condition"], data)
    run(tmp, "where_float_condition", after_fc(
        helper.make_node("Where", ["z", "z", "z"], ["r"], name="where")),
        ["node 'where' (Where, opset 13)", "the condition ('z') is not boolean"], data)
    run(tmp, "bool_cast_int8", with_floats(after_fc(
        helper.make_node("Greater", ["z", "zero_f"], ["g"], name="gt"),
        helper.make_node("Cast", ["g"], ["gi"], name="toint", to=TensorProto.INT8),
        helper.make_node("Cast", ["gi"], ["r"], name="tofloat", to=TensorProto.FLOAT)), zero_f),
        ["node 'toint' (Cast, opset 13)", "cast of boolean rows to int8 (type 3): rows are cast "
         "only to float (type 1), bool (type 9), int32 or int64"], data)
    # Integer rows (a condition cast to int64, its sums, ArgMax) are held exactly as floats:
    # what would compute with them as floats, mix them with floats, leave 2^24 or output them
    # is refused.
    def int_rows(*tail, inits=()):
        m = with_floats(after_fc(
            helper.make_node("Greater", ["z", "zero_f"], ["g"], name="gt"),
            helper.make_node("Cast", ["g"], ["gi"], name="toint", to=TensorProto.INT64),
            *tail), zero_f)
        for name, value in inits:
            m.graph.initializer.append(numpy_helper.from_array(np.array(value), name))
        return m
    run(tmp, "int_rows_into_relu", int_rows(
        helper.make_node("Relu", ["gi"], ["gr"], name="relu"),
        helper.make_node("Cast", ["gr"], ["r"], name="tofloat", to=TensorProto.FLOAT)),
        ["node 'relu' (Relu, opset 13)", "input 0 ('gi') is integer rows (int64 per row), which "
         "stagegate reads only in Cast, ReduceSum"], data)
    run(tmp, "int_rows_plus_float", int_rows(
        helper.make_node("Add", ["gi", "z"], ["r"], name="add")),
        ["node 'add' (Add, opset 13)", "input 1 ('z') is float rows, with integer rows"], data)
    run(tmp, "int_rows_too_large", int_rows(
        helper.make_node("Mul", ["gi", "big"], ["g2"], name="times"),
        helper.make_node("Mul", ["g2", "big"], ["g3"], name="times2"),
        helper.make_node("Cast", ["g3"], ["r"], name="tofloat", to=TensorProto.FLOAT),
        inits=[("big", np.array(8192, np.int64))]),
        ["node 'times2' (Mul, opset 13)", "integer rows could exceed 2^24 here"], data)
    # Floats cast to int64: a Clip's bounds bound them (below 2^24: summed; past it, not).
    for name, hi, code in (("clip_cast_add_bounded", 9.0, 0), ("clip_cast_add_too_large", 3e7, 2),
                           ("cast_add_unclipped", None, 2)):
        clip = ([helper.make_node("Clip", ["z", "lo", "hi"], ["zc"], name="clip")]
                if hi is not None else [helper.make_node("Identity", ["z"], ["zc"], name="id")])
        m = int_rows(*clip, helper.make_node("Floor", ["zc"], ["zf"], name="floor"),
                     helper.make_node("Cast", ["zf"], ["zi"], name="toint", to=TensorProto.INT64),
                     helper.make_node("Add", ["zi", "zi"], ["z2"], name="twice"),
                     helper.make_node("Cast", ["z2"], ["r"], name="tofloat", to=TensorProto.FLOAT))
        if hi is not None:
            with_float(with_float(m, "lo", -hi), "hi", hi)
        run(tmp, name, m, ["node 'twice' (Add, opset 13)", "integer rows could exceed 2^24 here"]
            if code else [], data, exit_code=code)
    # A condition cast to float is within 1, its float sum within the count: cast to int64,
    # integer rows of known magnitude (summed); scaled past 2^24, refused.
    for name, scale, code in (("condition_float_sum_cast", 1.0, 0),
                              ("condition_float_sum_scaled", 1e8, 2)):
        m = int_rows(helper.make_node("Cast", ["g"], ["gf"], name="tofloat1", to=TensorProto.FLOAT),
                     helper.make_node("ReduceSum", ["gf", "ax1"], ["gs"], name="count"),
                     helper.make_node("Mul", ["gs", "sc"], ["gm"], name="scale"),
                     helper.make_node("Cast", ["gm"], ["gi2"], name="toint2", to=TensorProto.INT64),
                     helper.make_node("Add", ["gi2", "gi2"], ["g2"], name="twice"),
                     helper.make_node("Cast", ["g2"], ["g3"], name="tofloat2", to=TensorProto.FLOAT),
                     helper.make_node("Expand", ["g3", "e3"], ["r"], name="wide"),
                     inits=[("ax1", np.array([1], np.int64)), ("e3", np.array([1, 3], np.int64))])
        with_float(m, "sc", scale)
        run(tmp, name, m, ["node 'twice' (Add, opset 13)", "integer rows could exceed 2^24 here"]
            if code else [], data, exit_code=code)
    # Gathered elements stay what they were (integers, a condition): Gather had made floats
    # of them, and the bound and the readers' checks stopped there.
    run(tmp, "int_rows_gathered_too_large", int_rows(
        helper.make_node("Gather", ["gi", "idx01"], ["gg"], name="pick", axis=1),
        helper.make_node("Mul", ["gg", "big"], ["g2"], name="times"),
        helper.make_node("Mul", ["g2", "big"], ["g3"], name="times2"),
        helper.make_node("Cast", ["g3"], ["r"], name="tofloat", to=TensorProto.FLOAT),
        inits=[("big", np.array(8192, np.int64)), ("idx01", np.array([0, 1], np.int64))]),
        ["node 'times2' (Mul, opset 13)", "integer rows could exceed 2^24 here"], data)
    run(tmp, "condition_gathered_into_add", int_rows(
        helper.make_node("Gather", ["g", "idx01"], ["gb"], name="pick", axis=1),
        helper.make_node("Add", ["z", "gb"], ["r"], name="add"),
        inits=[("idx01", np.array([0, 1, 2], np.int64))]),
        ["node 'add' (Add, opset 13)", "input 1 ('gb') is a boolean"], data)
    # Embeddings: indices per row must be integers and gather from a constant table; one past
    # the table makes that row's output NaN, which the output check refuses.
    run(tmp, "embed_float_indices", int_rows(
        helper.make_node("Gather", ["table", "z"], ["r"], name="lookup"),
        inits=[("table", np.ones((4, 3), np.float32))]),
        ["node 'lookup' (Gather, opset 13): indices ('z') are computed per row and are not "
         "integers (an embedding's indices are integer rows: a Cast to int64)"], data)
    run(tmp, "embed_rows_table", int_rows(
        helper.make_node("Gather", ["z", "gi"], ["r"], name="lookup")),
        ["node 'lookup' (Gather, opset 13): indices computed per row gather only from a constant "
         "float table (an embedding)"], data)
    m = base(nodes=[helper.make_node("Cast", ["x"], ["xi"], name="toint", to=TensorProto.INT64),
                    helper.make_node("Gather", ["table", "xi"], ["e"], name="lookup"),
                    helper.make_node("ReduceSum", ["e", "ax2"], ["r"], name="sum", keepdims=0),
                    helper.make_node("Gemm", ["r", "W", "b"], ["z"], name="fc", transB=1),
                    helper.make_node("Softmax", ["z"], ["out"], name="sm", axis=1)])
    m.graph.initializer.extend([numpy_helper.from_array(np.ones((3, 4), np.float32), "table"),
                                numpy_helper.from_array(np.array([2], np.int64), "ax2")])
    big = os.path.join(tmp, "indices_past_table.h5")
    with h5py.File(big, "w") as f:
        f["X"] = np.array([[0, 1, 2, 2], [0, 1, 2, 3]], np.float32)
        f["y"] = np.array([0, 1])
    run(tmp, "embed_index_past_table", m, ["output proba[1][0] is not finite"], big)
    run(tmp, "int_rows_const_too_large", int_rows(
        helper.make_node("Add", ["gi", "huge"], ["g2"], name="plus"),
        helper.make_node("Cast", ["g2"], ["r"], name="tofloat", to=TensorProto.FLOAT),
        inits=[("huge", np.array(1 << 30, np.int64))]),
        ["node 'plus' (Add, opset 13)", "an integer constant out of that range"], data)
    m = int_rows(helper.make_node("Identity", ["gi"], ["r"], name="same"))
    del m.graph.node[-1]  # the softmax: the integers are the output
    m.graph.node.append(helper.make_node("Identity", ["r"], ["out"], name="result"))
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    run(tmp, "int_rows_output", m, ["graph output 'out' is integer rows (int64)"], data,
        extra=("--output", "logits"))
    m = with_floats(batch_graph([helper.make_node("Equal", ["z", "zero_f"], ["e"], name="eq"),
                                 helper.make_node("Where", ["e", "z", "z"], ["r"], name="w"),
                                 helper.make_node("Softmax", ["r"], ["out"], name="sm", axis=1)],
                                opset=9), zero_f)
    run(tmp, "equal_floats_opset9", m,
        ["node 'eq' (Equal, opset 9)", "Equal of floats is defined from opset 11"], data)
    run(tmp, "concat_shapes_differ", after_fc(
        helper.make_node("Reshape", ["z", "s13"], ["a"], name="ra"),
        helper.make_node("Reshape", ["z", "s31"], ["b3"], name="rb"),
        helper.make_node("Concat", ["a", "b3"], ["c"], name="cat2", axis=2),
        helper.make_node("Flatten", ["c"], ["r"], name="fl"),
        inits=[("s13", [-1, 1, 3]), ("s31", [-1, 3, 1])]),
        ["node 'cat2' (Concat, opset 13)", "input 1 is [-1,3,1], input 0 [-1,1,3] (-1: the "
         "batch); they may differ on axis 2 only"], data)
    run(tmp, "double_rows_into_add", after_fc(
        helper.make_node("Cast", ["z"], ["zd"], name="todouble", to=TensorProto.DOUBLE),
        helper.make_node("Add", ["zd", "zd"], ["r"], name="add")),
        ["node 'add' (Add, opset 13)", "input 0 ('zd') is rows cast to double, which stagegate "
         "reads only in IsInf, IsNaN and Cast"], data)
    run(tmp, "compare_batch_unknown", after_fc(
        helper.make_node("Equal", ["n1", "three"], ["e"], name="eq"),
        helper.make_node("Where", ["e", "three", "n1"], ["k"], name="pick"),
        helper.make_node("Concat", ["k", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view")),
        ["node 'eq' (Equal, opset 13)", "compares the batch size (from a Shape node), known only "
         "per run, with 3"], data)
    # Known answers: the batch equals no -1 and exceeds 0, so the shape keeps it (exit 0).
    run(tmp, "compare_batch_known", after_fc(
        helper.make_node("Equal", ["n1", "minus1"], ["e"], name="eq"),
        helper.make_node("Where", ["e", "three", "n1"], ["k"], name="pick"),
        helper.make_node("Concat", ["k", "minus1"], ["shp"], name="cat", axis=0),
        helper.make_node("Reshape", ["z", "shp"], ["r"], name="view")), [], data, exit_code=0)

    # Einsum: what would mix the batch with row values, or is not a valid equation for the
    # inputs, is refused with the equation named; so is a stack of weights that would need
    # broadcasting, and InstanceNormalization without a spatial axis or with the wrong sizes.
    def einsum(name, eq, consts, want, extra_nodes=(), rows=("z",), named=True):
        m = after_fc(*extra_nodes, helper.make_node("Einsum", list(rows) + [k for k, _ in consts],
                                                    ["r"], name="es", equation=eq))
        for k, v in consts:
            with_float(m, k, v)
        run(tmp, name, m, (["node 'es' (Einsum, opset 13)"] if named else []) + want, data)
    K33, K34 = np.ones((3, 3)), np.ones((3, 4))
    einsum("einsum_diagonal", "bi,jj->bi", [("K", K33)],
           ["equation 'bi,jj->bi': index 'j' repeats in input 1 (a diagonal)"])
    einsum("einsum_batch_summed", "bi->i", [],
           ["equation 'bi->i': the batch's index 'b' is summed over"])
    einsum("einsum_batch_moved", "bi,ij->jb", [("K", K34)],
           ["equation 'bi,ij->jb': the output must keep the batch's index 'b' first"])
    einsum("einsum_two_batches", "bi,cj->bcij", [], ["two per-row inputs with batch indices "
                                                     "'b' and 'c'"], rows=("z", "z"))
    einsum("einsum_batch_in_constant", "bi,bj->ij", [("K", K34)],
           ["index 'b' is the batch in one input and a row axis in another"])
    einsum("einsum_sizes", "bi,ij->bj", [("K", np.ones((4, 2)))],
           ["index 'i' has size 3 in input 0 and 4 in input 1"])
    einsum("einsum_character", "bi,i1->b", [("K", K33)], ["character '1' is not a letter"])
    einsum("einsum_terms", "bi->b", [("K", K33)], ["does not have one term per input (2)"])
    einsum("einsum_rank", "bij,jk->bik", [("K", K34)],
           ["has 3 indices for input 0 ('z'), of rank 2"])
    einsum("einsum_output_index", "bi,ij->bk", [("K", K34)], ["output index 'k' is in no input"])
    einsum("einsum_inf_weight", "bi,ij->bj", [("K", np.full((3, 4), np.inf))],
           ["initializer 'K'[0] is not finite"], named=False)
    einsum("einsum_ellipsis_dot", "bi,ij->b..j", [("K", K34)],
           ["a '.' that is not one ellipsis"])
    m = after_fc(helper.make_node("InstanceNormalization", ["z", "g", "bt"], ["r"], name="inorm"))
    run(tmp, "instancenorm_rank1", with_float(with_float(m, "g", np.ones(3)), "bt", np.zeros(3)),
        ["node 'inorm' (InstanceNormalization, opset 13)", "needs [batch, C, D...]"], data)
    m = after_fc(helper.make_node("Reshape", ["z", "s31"], ["z3"], name="view"),
                 helper.make_node("InstanceNormalization", ["z3", "g", "bt"], ["nrm"], name="inorm"),
                 helper.make_node("Flatten", ["nrm"], ["r"], name="flat"), inits=[("s31", [-1, 3, 1])])
    run(tmp, "instancenorm_channels", with_float(with_float(m, "g", np.ones(2)), "bt",
                                                 np.zeros(2)),
        ["node 'inorm' (InstanceNormalization, opset 13)", "scale/B hold 2/2 values for 3 "
         "channels"], data)
    m = after_fc(helper.make_node("Reshape", ["z", "s13"], ["z3"], name="view"),
                 helper.make_node("MatMul", ["z3", "Ws"], ["p"], name="mm"),
                 helper.make_node("Flatten", ["p"], ["r"], name="flat"),
                 inits=[("s13", [-1, 3, 1, 1])])
    run(tmp, "matmul_stack_mismatch", with_float(m, "Ws", np.ones((2, 1, 4))),
        ["node 'mm' (MatMul, opset 13)", "the weight's axis 0 (2) against the row's axis 1 (3)"],
        data)
    m = after_fc(helper.make_node("MatMul", ["z", "Ws"], ["r"], name="mm"))
    run(tmp, "matmul_stack_over_batch", with_float(m, "Ws", np.ones((2, 3, 4))),
        ["node 'mm' (MatMul, opset 13)", "the product would have axes before the batch"],
        data)

    # Conv, the pools and Pad: weights, groups, windows and pads that do not fit the rows.
    def spatial(name, op_nodes, consts, want, shape=(-1, 3, 1)):
        m = after_fc(helper.make_node("Reshape", ["z", "s_sp"], ["z3"], name="view"), *op_nodes,
                     helper.make_node("Flatten", ["c"], ["r"], name="flat"),
                     inits=[("s_sp", list(shape))])
        for k, v in consts:
            with_float(m, k, v)
        run(tmp, name, m, want, data)
    conv = lambda *ins, **kw: helper.make_node("Conv", ["z3"] + list(ins), ["c"], name="conv", **kw)
    spatial("conv_weight_rank", [conv("Wc")], [("Wc", np.ones((2, 3)))],
            ["node 'conv' (Conv, opset 13)", "the weight (input 1) must be a constant float tensor "
             "of rank 3 ([M, C/group, kernel...])"], shape=(-1, 3, 1))
    spatial("conv_groups", [conv("Wc", group=2)], [("Wc", np.ones((4, 1, 1)))],
            ["node 'conv' (Conv, opset 13)", "3 channels, group 2 and a weight of 4 kernels over 1 "
             "channels"])
    spatial("conv_kernel_longer", [conv("Wc")], [("Wc", np.ones((2, 3, 3)))],
            ["node 'conv' (Conv, opset 13)", "axis 0 of 1 values (padded to 1) is shorter than "
             "the kernel's span 3"])
    spatial("conv_kernel_shape", [conv("Wc", kernel_shape=[2])], [("Wc", np.ones((2, 3, 1)))],
            ["node 'conv' (Conv, opset 13)", "kernel_shape[0] is 2, the weight's 1"])
    spatial("conv_auto_pad", [conv("Wc", auto_pad="SAME")], [("Wc", np.ones((2, 3, 1)))],
            ["node 'conv' (Conv, opset 13)", "auto_pad 'SAME' is not NOTSET, SAME_UPPER, "
             "SAME_LOWER or VALID"])
    spatial("conv_bias_size", [conv("Wc", "Bc")], [("Wc", np.ones((2, 3, 1))), ("Bc", np.ones(3))],
            ["node 'conv' (Conv, opset 13)", "the bias (input 2) must be a constant float tensor "
             "of 2 values"])
    spatial("conv_nan_weight", [conv("Wc")], [("Wc", np.full((2, 3, 1), np.nan))],
            ["not finite"])
    spatial("conv_rows_rank1", [helper.make_node("Conv", ["z", "Wc"], ["c"], name="conv")],
            [("Wc", np.ones((2, 3, 1)))],
            ["node 'conv' (Conv, opset 13)", "input 'z' is rows of rank 1; Conv needs [batch, C, "
             "D1...] with 1 to 3 spatial axes"])
    spatial("maxpool_indices_read", [
        helper.make_node("MaxPool", ["z3"], ["c", "idx"], name="pool", kernel_shape=[1]),
        helper.make_node("Cast", ["idx"], ["idxf"], name="cast", to=TensorProto.FLOAT)], [],
        ["node 'pool' (MaxPool, opset 13)", "output 1 ('idx') is read"])
    spatial("maxpool_no_kernel", [helper.make_node("MaxPool", ["z3"], ["c"], name="pool",
                                                   kernel_shape=[1, 1])], [],
            ["node 'pool' (MaxPool, opset 13)", "kernel_shape must have 1 values"])
    spatial("pool_stride_zero", [helper.make_node("AveragePool", ["z3"], ["c"], name="pool",
                                                  kernel_shape=[1], strides=[0])], [],
            ["node 'pool' (AveragePool, opset 13)", "axis 0: kernel 1, stride 0, dilation 1 (each "
             "must be at least 1)"])
    m = after_fc(helper.make_node("Pad", ["z", "pads"], ["r"], name="pad"),
                 inits=[("pads", [1, 0, 0, 0])])
    run(tmp, "pad_batch", m, ["node 'pad' (Pad, opset 13)", "padding the batch axis is not "
                              "supported"], data)
    m = after_fc(helper.make_node("Pad", ["z", "pads"], ["r"], name="pad", mode="reflect"),
                 inits=[("pads", [0, 3, 0, 0])])
    run(tmp, "pad_reflect_long", m, ["node 'pad' (Pad, opset 13)", "axis 1 of 3 values (3 after "
                                     "cropping): reflect pads 3 and 0 must be below it"], data)
    # edge of an axis cropped away: no value to repeat (it had read past the constant)
    m = after_fc(helper.make_node("Pad", ["k3", "pads"], ["kp"], name="pad", mode="edge"),
                 helper.make_node("Add", ["z", "kp"], ["r"], name="add"),
                 inits=[("pads", [-3, 3])])
    run(tmp, "pad_edge_cropped_away", with_float(m, "k3", [0.0, 1.0, 2.0]),
        ["node 'pad' (Pad, opset 13)", "axis 0 of 3 values (0 after cropping): edge pads -3 and "
         "3 need a value to repeat"], data)
    m = after_fc(helper.make_node("Pad", ["z", "pads"], ["r"], name="pad", mode="wrap"),
                 inits=[("pads", [0, 1, 0, 0])])
    run(tmp, "pad_mode", m, ["node 'pad' (Pad, opset 13)", "mode 'wrap' is not constant, "
                             "reflect or edge"], data)
    m = after_fc(helper.make_node("Pad", ["z", "pads"], ["r"], name="pad"),
                 inits=[("pads", [0, -2, 0, -1])])
    run(tmp, "pad_crop_all", m, ["node 'pad' (Pad, opset 13)", "axis 1 is cropped to 0 values"],
        data)
    m = after_fc(helper.make_node("Pad", ["z", "pads"], ["r"], name="pad"),
                 inits=[("pads", [0, 1])])
    run(tmp, "pad_count", m, ["node 'pad' (Pad, opset 13)", "pads has 2 values for an input of "
                              "rank 2"], data)

    m = after_fc(helper.make_node("Reshape", ["z", "s31"], ["z3"], name="view"),
                 helper.make_node("InstanceNormalization", ["z3", "g", "bt"], ["nrm"], name="inorm",
                                  epsilon=-1.0),
                 helper.make_node("Flatten", ["nrm"], ["r"], name="flat"), inits=[("s31", [-1, 3, 1])])
    run(tmp, "instancenorm_negative_epsilon", with_float(with_float(m, "g", np.ones(3)), "bt",
                                                         np.zeros(3)),
        ["node 'inorm' (InstanceNormalization, opset 13)", "epsilon -1 must be finite and 0 or "
         "more"], data)
    m = after_fc(helper.make_node("InstanceNormalization", ["cz", "g", "bt"], ["r"], name="inorm"))
    run(tmp, "instancenorm_constant", with_float(with_float(with_float(
        m, "g", np.ones(3)), "bt", np.zeros(3)), "cz", np.ones((1, 3, 2))),
        ["node 'inorm' (InstanceNormalization, opset 13)", "constant input is not supported"], data)
    m = after_fc(helper.make_node("BatchNormalization", ["z", "g", "bt", "mu", "var"], ["r"],
                                  name="bn", epsilon=0.0))
    for k, v in (("g", np.ones(3)), ("bt", np.zeros(3)), ("mu", np.zeros(3)),
                 ("var", [1.0, -1.0, 1.0])):
        with_float(m, k, v)
    run(tmp, "batchnorm_negative_variance", m,
        ["node 'bn' (BatchNormalization, opset 13)", "channel 1: var + epsilon is -1, and scale / "
         "sqrt of it is not finite"], data)
    m = after_fc(helper.make_node("Reshape", ["z", "s13"], ["z3"], name="view"),
                 helper.make_node("MatMul", ["z3", "Ws"], ["p"], name="mm"),
                 helper.make_node("Flatten", ["p"], ["r"], name="flat"), inits=[("s13", [-1, 1, 3])])
    run(tmp, "matmul_stack_batch", with_float(m, "Ws", np.ones((2, 3, 4))),
        ["node 'mm' (MatMul, opset 13)", "the weight's axis 0 (2) lines up with the batch"], data)
    run(tmp, "cumsum_batch", after_fc(helper.make_node("CumSum", ["z", "ax0"], ["r"], name="cs"),
                                      inits=[("ax0", 0)]),
        ["node 'cs' (CumSum, opset 13)", "axis 0 is the batch: a sum across rows is not "
         "supported"], data)
    run(tmp, "cumsum_two_axes", after_fc(
        helper.make_node("CumSum", ["z", "ax11"], ["r"], name="cs"), inits=[("ax11", [1, 1])]),
        ["node 'cs' (CumSum, opset 13)", "axis (input 1) must be one constant integer"], data)
    # LSTM and GRU: a sequence that would be the batch, and what stagegate does not compute.
    def rnn(name, op, want, attrs=None, ins=None, batch_first=False, consts=()):
        H = 2
        G = 3 if op == "GRU" else 4
        nodes = [] if batch_first else [helper.make_node("Transpose", ["z3"], ["zt"], name="tr",
                                                         perm=[1, 0, 2])]
        kw = dict(hidden_size=H)
        kw.update(attrs or {})
        nodes.append(helper.make_node(op, ins or ["z3" if batch_first else "zt", "Wr", "Rr"],
                                      ["ry"], name="rnn", **kw))
        m = after_fc(helper.make_node("Reshape", ["z", "s31"], ["z3"], name="view"), *nodes,
                     helper.make_node("Identity", ["ry"], ["r"], name="id"),
                     inits=[("s31", [-1, 3, 1])])
        with_float(with_float(m, "Wr", np.ones((1, G * H, 1))), "Rr", np.ones((1, G * H, H)))
        for k, v in consts:
            with_float(m, k, v)
        run(tmp, name, m, ["node 'rnn' (%s, opset 13)" % op] + want, data)
    rnn("lstm_sequence_is_batch", "LSTM", ["layout 0 takes X as [seq, batch, input], and 'z3' "
                                           "has the batch first: its sequence would be the batch"],
        batch_first=True)
    rnn("lstm_activations", "LSTM", ["activations other than ONNX's defaults"],
        attrs=dict(activations=["Sigmoid", "Relu", "Tanh"]))
    rnn("lstm_input_forget", "LSTM", ["input_forget=1 is not supported"],
        attrs=dict(input_forget=1))
    rnn("lstm_peepholes", "LSTM", ["peepholes (input 7) are not supported"],
        ins=["zt", "Wr", "Rr", "", "", "", "", "P"], consts=[("P", np.ones((1, 6)))])
    bad_lens = after_fc(helper.make_node("Reshape", ["z", "s31"], ["z3"], name="view"),
                        helper.make_node("Transpose", ["z3"], ["zt"], name="tr", perm=[1, 0, 2]),
                        helper.make_node("GRU", ["zt", "Wr", "Rr", "", "sl"], ["ry"], name="rnn",
                                         hidden_size=2),
                        helper.make_node("Identity", ["ry"], ["r"], name="id"),
                        inits=[("s31", [-1, 3, 1]), ("sl", [2])])
    with_float(with_float(bad_lens, "Wr", np.ones((1, 6, 1))), "Rr", np.ones((1, 6, 2)))
    run(tmp, "gru_sequence_lens", bad_lens, ["node 'rnn' (GRU, opset 13)", "sequence_lens (input "
                                             "4) other than every sequence whole (3)"], data)
    rnn("gru_weight_shape", "GRU", ["shape does not match: W (input 1) is [1,6,1], expected "
                                    "[1,9,1]"], attrs=dict(hidden_size=3))
    # TopK, GatherElements, OneHot and Range: what would rank or pick across rows, or does not
    # fit the rows.
    topk = lambda k, **kw: after_fc(helper.make_node("TopK", ["z", "kk"], ["r", "ri"], name="tk",
                                                     **kw), inits=[("kk", [k])])
    run(tmp, "topk_batch", topk(1, axis=0), ["node 'tk' (TopK, opset 13)", "axis 0 is the batch: "
                                             "ranking across rows is not supported"], data)
    run(tmp, "topk_k_large", topk(4), ["node 'tk' (TopK, opset 13)", "K 4 is not 1..3 (the axis' "
                                       "size)"], data)
    run(tmp, "topk_k_zero", topk(0), ["node 'tk' (TopK, opset 13)", "K 0 is not 1..3"], data)
    run(tmp, "gatherelements_float_indices", after_fc(
        helper.make_node("GatherElements", ["z", "z"], ["r"], name="ge", axis=1)),
        ["node 'ge' (GatherElements, opset 13)", "indices ('z') are computed per row and are not "
         "integers"], data)
    run(tmp, "gatherelements_batch", after_fc(
        helper.make_node("ArgMax", ["z"], ["am"], name="am", axis=1),
        helper.make_node("GatherElements", ["z", "am"], ["r"], name="ge", axis=0)),
        ["node 'ge' (GatherElements, opset 13)", "axis 0 is the batch: picking across rows is "
         "not supported"], data)
    run(tmp, "gatherelements_constant_indices", after_fc(
        helper.make_node("GatherElements", ["z", "gidx"], ["r"], name="ge", axis=1),
        inits=[("gidx", [[0, 1, 2]])]),
        ["node 'ge' (GatherElements, opset 13)", "per-row data with constant indices"], data)
    run(tmp, "onehot_depth_rows", after_fc(
        helper.make_node("ArgMax", ["z"], ["am"], name="am", axis=1, keepdims=0),
        helper.make_node("OneHot", ["am", "dep", "ohv"], ["oh"], name="oh"),
        helper.make_node("Identity", ["oh"], ["r"], name="id"),
        inits=[("dep", 0), ("ohv", [0, 1])]),
        ["node 'oh' (OneHot, opset 13)", "depth 0 (must be 1..16777216)"], data)
    run(tmp, "range_rows", after_fc(
        helper.make_node("ReduceMax", ["z"], ["zm"], name="zm", axes=[1], keepdims=0),
        helper.make_node("Range", ["zm", "zm", "zm"], ["r"], name="rg")),
        ["node 'rg' (Range, opset 13)", "start, limit and delta must be constants of one value "
         "(input 0 is not)"], data)
    m = after_fc(helper.make_node("MatMul", ["Wl", "z"], ["r"], name="mm"))
    run(tmp, "matmul_constant_left_rank1", with_float(m, "Wl", np.ones((3, 3))),
        ["node 'mm' (MatMul, opset 13)", "a constant of rank 2 times rows of rank 1", "rows of "
         "rank 1 are one matrix with the batch, which would mix its rows"], data)
    m = after_fc(helper.make_node("MatMul", ["z", "Ws"], ["r"], name="mm"))
    run(tmp, "matmul_ones_before_batch", with_float(m, "Ws", np.ones((1, 1, 3, 4))),
        ["node 'mm' (MatMul, opset 13)", "the product would have axes before the batch"], data)

    # Gather with float indices computed per row is refused (an embedding's are integer rows,
    # tests/onnx/torch_parity.py); constant indices on rows are a gather step
    # (tests/onnx/helper_ops.py).
    lookup = base(nodes=[helper.make_node("Gemm", ["x", "W", "b"], ["z"], name="fc", transB=1),
                         helper.make_node("Gather", ["table", "z"], ["out"], name="lookup")])
    lookup.graph.initializer.append(numpy_helper.from_array(np.ones((5, 3), np.float32), "table"))
    run(tmp, "gather_per_row_indices", lookup,
        ["node 'lookup' (Gather, opset 13)", "indices ('z') are computed per row and are not "
         "integers"], data)

    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("every bad ONNX input exits 2 with one line")


if __name__ == "__main__":
    main()
