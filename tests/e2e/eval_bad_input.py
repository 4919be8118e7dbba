#!/usr/bin/python3
"""Bad input to `stagegate eval`: every case must exit 2 with exactly one line on
stderr that names the offending file (and the dataset/attribute where there is
one), and must leave no predictions file and no temporary file behind."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SG = os.environ["STAGEGATE_BIN"]
failures = []


def good_model(path, d=4, task="binary", k=2, act="relu", version=1, link=None, layers=None):
    rng = np.random.default_rng(0)
    if layers is None:
        out = 1 if task != "multiclass" else k
        layers = [(rng.normal(size=(d, 8)), rng.normal(size=8), act),
                  (rng.normal(size=(8, out)), rng.normal(size=out), "identity")]
    if link is None:
        link = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}[task]
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "stagegate-model"
        f.attrs["format_version"] = version
        f.attrs["task"] = task
        f.attrs["n_features"] = d
        f.attrs["n_classes"] = k if task != "regression" else 0
        f.attrs["link"] = link
        g = f.create_group("layers")
        for i, (W, b, a) in enumerate(layers):
            gg = g.create_group(str(i))
            gg["W"] = np.asarray(W, dtype=np.float32)
            gg["b"] = np.asarray(b, dtype=np.float32)
            gg.attrs["activation"] = a


def data(path, X=None, y=None, n=50, d=4, **extra):
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        if X is not False:
            f["X"] = rng.normal(size=(n, d)).astype(np.float32) if X is None else X
        if y is not False:
            f["y"] = rng.integers(0, 2, size=n) if y is None else y
        for k, v in extra.items():
            f[k] = v


def case(name, tmp, model, dataset, must_name, extra_words=(), args=(), keep=None):
    """keep: bytes of a predictions file that already exists and must survive untouched."""
    pred = os.path.join(tmp, "pred.h5")
    if keep is not None:
        with open(pred, "wb") as fh:
            fh.write(keep)
    before = set(os.listdir(tmp))
    p = subprocess.run([SG, "eval", "--model", model, "--data", dataset, "--predictions", pred,
                        *args], capture_output=True, text=True)
    lines = p.stderr.strip("\n").split("\n")
    ok = True
    why = []
    if p.returncode != 2:
        ok = False
        why.append(f"exit {p.returncode}")
    if len(lines) != 1 or not lines[0]:
        ok = False
        why.append(f"{len(lines)} stderr lines")
    if os.path.basename(must_name) not in p.stderr:
        ok = False
        why.append(f"message does not name {os.path.basename(must_name)}")
    for w in extra_words:
        if w.lower() not in p.stderr.lower():
            ok = False
            why.append(f"message lacks '{w}'")
    after = set(os.listdir(tmp))
    if keep is not None:
        with open(pred, "rb") as fh:
            if fh.read() != keep:
                ok = False
                why.append("the existing predictions file was changed")
        os.remove(pred)
    elif os.path.exists(pred):
        ok = False
        why.append("left a predictions file")
    if after - before:
        ok = False
        why.append(f"left files behind: {sorted(after - before)}")
    if p.stdout:
        ok = False
        why.append("printed on stdout")
    print(("ok  " if ok else "FAIL"), name, "|", p.stderr.strip(), "|", "; ".join(why))
    if not ok:
        failures.append(name)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        j = lambda f: os.path.join(tmp, f)
        good_model(j("m.h5"))
        data(j("good.h5"))
        # Sanity: the good pair works.
        p = subprocess.run([SG, "eval", "--model", j("m.h5"), "--data", j("good.h5")], capture_output=True)
        if p.returncode != 0:
            print("FAIL good pair:", p.stderr.decode())
            sys.exit(1)
        # A full disk on stdout is an error, not exit 0 with a cut document.
        if os.path.exists("/dev/full"):
            for extra in (["--json"], []):
                with open("/dev/full", "w") as full:
                    p = subprocess.run([SG, "eval", "--model", j("m.h5"), "--data", j("good.h5"),
                                        *extra], stdout=full, stderr=subprocess.PIPE, text=True)
                lines = p.stderr.strip().splitlines()
                ok = p.returncode == 2 and len(lines) == 1 and "stdout" in lines[0]
                print("ok  " if ok else "FAIL", "stdout on a full device", extra, "|", p.stderr.strip())
                if not ok:
                    failures.append(f"stdout on a full device {extra}")
        os.remove(j("good.h5"))

        with open(j("text.h5"), "w") as f:
            f.write("this is not an HDF5 file\n" * 100)
        case("data not HDF5", tmp, j("m.h5"), j("text.h5"), "text.h5")
        case("model not HDF5", tmp, j("text.h5"), j("text.h5"), "text.h5")
        data(j("full.h5"), n=5000)
        raw = open(j("full.h5"), "rb").read()
        open(j("trunc.h5"), "wb").write(raw[: len(raw) // 2])
        os.remove(j("full.h5"))
        case("truncated data", tmp, j("m.h5"), j("trunc.h5"), "trunc.h5")
        raw = open(j("m.h5"), "rb").read()
        open(j("mtrunc.h5"), "wb").write(raw[: len(raw) * 2 // 3])
        case("truncated model", tmp, j("mtrunc.h5"), j("trunc.h5"), "mtrunc.h5")
        os.remove(j("trunc.h5"))
        case("missing file", tmp, j("m.h5"), j("nope.h5"), "nope.h5")
        data(j("nox.h5"), X=False)
        case("missing /X", tmp, j("m.h5"), j("nox.h5"), "nox.h5", ["X"])
        data(j("noy.h5"), y=False)
        case("missing /y", tmp, j("m.h5"), j("noy.h5"), "noy.h5", ["y"])
        data(j("rank3.h5"), X=np.zeros((5, 4, 2), np.float32), y=np.zeros(5, np.int64))
        case("wrong rank of /X", tmp, j("m.h5"), j("rank3.h5"), "rank3.h5", ["X"])
        data(j("yrank.h5"), y=np.zeros((50, 2), np.int64))
        case("wrong rank of /y", tmp, j("m.h5"), j("yrank.h5"), "yrank.h5", ["y"])
        data(j("rows.h5"), y=np.zeros(49, np.int64))
        case("row-count mismatch", tmp, j("m.h5"), j("rows.h5"), "rows.h5")
        data(j("wrows.h5"), sample_weight=np.ones(10))
        case("sample_weight row mismatch", tmp, j("m.h5"), j("wrows.h5"), "wrows.h5", ["sample_weight"])
        Xn = np.zeros((50, 4), np.float32)
        Xn[37, 2] = np.nan
        data(j("nan.h5"), X=Xn)
        case("NaN in /X", tmp, j("m.h5"), j("nan.h5"), "nan.h5", ["X"])
        Xi = np.zeros((50, 4), np.float64)
        Xi[3, 0] = np.inf
        data(j("inf.h5"), X=Xi)
        case("Inf in /X", tmp, j("m.h5"), j("inf.h5"), "inf.h5", ["X"])
        # Bad rows after many chunks have been predicted and written: the partly
        # written temporary file must go, and an older predictions file must stay.
        Xl = np.zeros((5000, 4), np.float32)
        Xl[4990, 1] = np.inf
        data(j("late.h5"), X=Xl, y=np.zeros(5000, np.int64))
        case("Inf in the last chunk", tmp, j("m.h5"), j("late.h5"), "late.h5", ["X", "4990"],
             args=["--chunk-rows", "64"])
        case("Inf in the last chunk, existing output", tmp, j("m.h5"), j("late.h5"), "late.h5",
             ["X"], args=["--chunk-rows", "64"], keep=b"previous predictions")
        # --output says what an ONNX output means; for another model it was silently ignored.
        data(j("ok.h5"))
        case("--output for a native model", tmp, j("m.h5"), j("ok.h5"), "m.h5",
             ["--output proba", "ONNX models only"], args=["--output", "proba"])
        data(j("late_y.h5"), n=5000, y=np.r_[np.zeros(4999, np.int64), [7]])
        case("label out of range in the last chunk", tmp, j("m.h5"), j("late_y.h5"), "late_y.h5",
             ["y", "4999"], args=["--chunk-rows", "100"])
        # Rows the file declares but never stored (libhdf5 would read them as the fill
        # value): a writer that died part way, a contiguous set never written, and a few
        # kilobytes claiming 2^40 rows for a regression model (no per-row memory to refuse,
        # so it would stream zeros for hours) or 2^63 - 1023 (whose last chunk overflowed a
        # row count).
        good_model(j("reg.h5"), task="regression", k=1)
        # --threshold changes only a two-class classifier's labels: given for another model
        # it would be silently ignored.
        good_model(j("mc3.h5"), task="multiclass", k=3)
        data(j("mc3d.h5"), y=np.arange(50) % 3)
        case("--threshold for a multiclass model", tmp, j("mc3.h5"), j("mc3d.h5"), "mc3.h5",
             ["--threshold applies to two-class classifiers", "multiclass"], args=["--threshold", "0.3"])
        data(j("regd.h5"), y=np.linspace(0, 1, 50))
        case("--threshold for a regressor", tmp, j("reg.h5"), j("regd.h5"), "reg.h5",
             ["--threshold", "regression"], args=["--threshold", "0.3"])
        rng = np.random.default_rng(3)
        Xp = rng.normal(size=(4000, 4)).astype(np.float32)
        with h5py.File(j("partial.h5"), "w") as f:
            d = f.create_dataset("X", shape=(4000, 4), dtype="f4", chunks=(1000, 4))
            d[:3000] = Xp[:3000]
            f["y"] = rng.integers(0, 2, size=4000)
        case("chunks never written", tmp, j("m.h5"), j("partial.h5"), "partial.h5",
             ["/X", "4 chunks", "stores 3", "never written"])
        with h5py.File(j("unwritten.h5"), "w") as f:
            f.create_dataset("X", shape=(50, 4), dtype="f4")
            f["y"] = np.zeros(50, np.int64)
        case("contiguous /X never written", tmp, j("m.h5"), j("unwritten.h5"), "unwritten.h5",
             ["/X", "none of them"])
        for label, rows in (("2^40", 2**40), ("2^63 - 1023", 2**63 - 1023)):
            with h5py.File(j("claims.h5"), "w") as f:
                d = f.create_dataset("X", shape=(1024, 4), dtype="f4", chunks=(1024, 4),
                                     maxshape=(None, 4))
                d[:] = Xp[:1024]
                d.resize((rows, 4))
                t = f.create_dataset("y", shape=(1024,), dtype="f8", chunks=(1024,),
                                     maxshape=(None,))
                t[:] = 0
                t.resize((rows,))
            case(f"{label} rows declared, one chunk stored", tmp, j("reg.h5"), j("claims.h5"),
                 "claims.h5", ["/X", str(rows), "stores 1"])
        # A binary model whose margin overflows float32 (finite weights, finite rows): the
        # exact margin is 0 or -1.5e38, the float32 sum +inf or NaN by the order of its adds,
        # and the logistic had turned it into P(class 1) = 1. Refused as not finite, as the
        # softmax and regression models are.
        for name, dims in (("margin_dense", 8), ("margin_onelayer", 1)):
            big = np.full((2, 1), 3e38, dtype=np.float32)
            layers = [(big, np.zeros(1), "identity")]
            if dims == 8:
                layers = [(np.eye(2, 8, dtype=np.float32), np.zeros(8), "identity"),
                          (np.vstack([big, np.zeros((6, 1), np.float32)]), np.zeros(1), "identity")]
            good_model(j(name + ".h5"), d=2, layers=layers)
            data(j(name + "_d.h5"), X=np.array([[2, -2], [2, -2.5], [0.1, 0.1]], np.float32),
                 y=np.array([1, 0, 1]), n=3, d=2)
            case("binary margin overflow (%s)" % name, tmp, j(name + ".h5"), j(name + "_d.h5"),
                 name + ".h5", ["output proba[0]", "not finite"])
        # A chunk too large to hold (2^28 labels, 2 GiB read as int64) is a size limit, said
        # as one, not called corrupt: h5py writes such a file when asked to.
        with h5py.File(j("bigchunk.h5"), "w") as f:
            f["X"] = Xp[:1000]
            f.create_dataset("y", data=np.zeros(1000, np.int32), chunks=(2**28,),
                             maxshape=(None,), compression="gzip")
        case("a 1 GiB label chunk", tmp, j("m.h5"), j("bigchunk.h5"), "bigchunk.h5",
             ["/y has chunks of 268435456 rows", "rewrite it with smaller chunks"])
        # An unsigned attribute past INT64_MAX is named as stored, not clamped.
        data(j("fv.h5"))
        with h5py.File(j("fv.h5"), "a") as f:
            f.attrs["format_version"] = np.uint64(2**64 - 2**32 + 1)
        case("format_version past INT64_MAX", tmp, j("m.h5"), j("fv.h5"), "fv.h5",
             ["format_version", str(2**64 - 2**32 + 1), "out of range"])
        data(j("wzero.h5"), sample_weight=np.zeros(50))
        case("all sample weights zero", tmp, j("m.h5"), j("wzero.h5"), "wzero.h5", ["sample_weight"])
        data(j("wnan.h5"), sample_weight=np.r_[np.ones(49), np.nan])
        case("NaN in /sample_weight", tmp, j("m.h5"), j("wnan.h5"), "wnan.h5", ["sample_weight"])
        data(j("lab.h5"), y=np.r_[np.zeros(40, np.int64), np.full(10, 2)])
        case("label out of range (2 for a binary model)", tmp, j("m.h5"), j("lab.h5"), "lab.h5", ["y"])
        data(j("neg.h5"), y=np.r_[np.zeros(49, np.int64), [-1]])
        case("negative label", tmp, j("m.h5"), j("neg.h5"), "neg.h5", ["y"])
        data(j("u64.h5"), y=np.r_[np.zeros(49, np.uint64), [np.uint64(2**64 - 1)]])
        case("uint64 label beyond int64", tmp, j("m.h5"), j("u64.h5"), "u64.h5", ["row 49", ">= "])
        data(j("flab.h5"), y=np.full(50, 0.5))
        case("float labels for a classifier", tmp, j("m.h5"), j("flab.h5"), "flab.h5", ["y"])
        data(j("strx.h5"), X=np.array([[b"a"] * 4] * 50))
        case("string dtype /X", tmp, j("m.h5"), j("strx.h5"), "strx.h5", ["X"])
        data(j("zero.h5"), X=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
        case("zero rows", tmp, j("m.h5"), j("zero.h5"), "zero.h5")
        data(j("feat.h5"), X=np.zeros((50, 5), np.float32))
        case("feature-count mismatch", tmp, j("m.h5"), j("feat.h5"), "feat.h5")

        data(j("ok.h5"))
        rng = np.random.default_rng(3)
        good_model(j("shape.h5"), layers=[(rng.normal(size=(4, 8)), rng.normal(size=8), "relu"),
                                          (rng.normal(size=(7, 1)), rng.normal(size=1), "identity")])
        case("inconsistent layer shapes", tmp, j("shape.h5"), j("ok.h5"), "shape.h5", ["layers"])
        good_model(j("bias.h5"), layers=[(rng.normal(size=(4, 8)), rng.normal(size=5), "relu"),
                                         (rng.normal(size=(8, 1)), rng.normal(size=1), "identity")])
        case("bias length mismatch", tmp, j("bias.h5"), j("ok.h5"), "bias.h5", ["layers"])
        good_model(j("act.h5"), act="swish")
        case("unknown activation", tmp, j("act.h5"), j("ok.h5"), "act.h5", ["swish"])
        good_model(j("ver.h5"), version=99)
        case("unsupported format version", tmp, j("ver.h5"), j("ok.h5"), "ver.h5", ["version"])
        good_model(j("link.h5"), link="softmax")
        case("link inconsistent with task", tmp, j("link.h5"), j("ok.h5"), "link.h5")
        good_model(j("nanw.h5"), layers=[(np.full((4, 8), np.nan), np.zeros(8), "relu"),
                                         (np.ones((8, 1)), np.zeros(1), "identity")])
        case("NaN weight", tmp, j("nanw.h5"), j("ok.h5"), "nanw.h5", ["layers"])
        # A set another process holds open for writing (HDF5's file lock) is in use, not
        # corrupt: said so. The writer is a child that keeps it open until told to go.
        data(j("busy.h5"))
        writer = subprocess.Popen([sys.executable, "-c",
                                   "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); "
                                   "print('open', flush=True); sys.stdin.read()", j("busy.h5")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            if writer.stdout.readline().strip() == "open":
                case("set open for writing elsewhere", tmp, j("m.h5"), j("busy.h5"), "busy.h5",
                     ["open for writing by another process"])
            else:
                failures.append("setup: the writer did not open busy.h5")
        finally:
            writer.stdin.close()
            writer.wait(timeout=30)
    if failures:
        print(f"{len(failures)} failed: {failures}")
        sys.exit(1)
    print("all bad-input cases exit 2 with a one-line message and no output")


if __name__ == "__main__":
    main()
