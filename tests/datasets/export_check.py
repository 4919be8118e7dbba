#!/usr/bin/python3
"""Exporter test: every supported estimator exports, loads through the C loader and gives
scikit-learn's own outputs; unsupported ones exit 2 with one line and leave no file.

usage: export_check.py MODEL_FORWARD_BINARY TMPDIR
"""
import contextlib
import hashlib
import io
import os
import subprocess
import sys
import warnings

import h5py
import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "..", "scripts")
EXPORT = os.path.join(SCRIPTS, "export_sklearn.py")
MAKE = os.path.join(SCRIPTS, "make_dataset.py")
FORWARD, TMP = sys.argv[1], sys.argv[2]
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.join(HERE, "..", "common"))
from export_inproc import Result, run_export  # noqa: E402
import make_dataset  # noqa: E402


def run_make(args):
    """make_dataset.main in-process, for the same reason as run_export."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = make_dataset.main(args)
        except SystemExit as e:
            rc = e.code
    return Result(rc, err.getvalue())
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def data(task, k=3, n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(2.0, 3.0, (n, d))).astype(np.float32)
    z = X.astype(np.float64) @ rng.normal(0, 1, (d, max(k, 1)))
    if task == "regression":
        y = z[:, 0] + rng.normal(0, 0.1, n)
    else:
        y = np.argmax(z[:, :k] + rng.gumbel(size=(n, k)), axis=1) if k > 2 else (z[:, 0] > 0)
        y = y.astype(np.int64)
    return X, y


def write_set(path, X, y):
    # A plain file without format attributes, as a user would write it with h5py.
    with h5py.File(path, "w") as f:
        f["X"] = X
        f["y"] = y


def export(est, name):
    src, dst = os.path.join(TMP, name + ".joblib"), os.path.join(TMP, name + ".h5")
    joblib.dump(est, src)
    return run_export([src, dst]), dst


def run_supported(name, est, task, k=2):
    X, y = data(task, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X.astype(np.float64), y)
    r, model = export(est, name)
    check(r.returncode == 0, f"{name}: export exit {r.returncode}: {r.stderr.strip()}")
    if r.returncode:
        return
    dset = os.path.join(TMP, name + ".data.h5")
    write_set(dset, X, y.astype(np.float64) if task == "regression" else y)
    f = subprocess.run([FORWARD, model, dset], capture_output=True, text=True)
    check(f.returncode == 0, f"{name}: load exit {f.returncode}: {f.stderr.strip()}")
    if f.returncode:
        return
    lines = f.stdout.splitlines()
    head = dict(kv.split("=", 1) for kv in lines[0].split())
    out = np.array([[float(v) for v in ln.split()] for ln in lines[1:]])
    want_task = "regression" if task == "regression" else ("binary" if k == 2 else "multiclass")
    check(head["task"] == want_task, f"{name}: task {head['task']} != {want_task}")
    check(int(head["n_features"]) == X.shape[1], f"{name}: n_features {head['n_features']}")
    check(int(head["n_classes"]) == (0 if task == "regression" else k), f"{name}: n_classes")
    with open(model, "rb") as fh:
        check(head["sha256"] == hashlib.sha256(fh.read()).hexdigest(), f"{name}: sha256")
    Xd = X.astype(np.float64)
    if task == "regression":
        ref = est.predict(Xd).reshape(-1, 1)
        tol = 1e-5 * (1.0 + np.abs(ref))
    else:
        ref = est.predict_proba(Xd)
        tol = 1e-5
    check(out.shape == ref.shape, f"{name}: output shape {out.shape} != {ref.shape}")
    if out.shape == ref.shape:
        err = np.max(np.abs(out - ref) - tol)
        check(err <= 0, f"{name}: outputs differ from scikit-learn by {np.max(np.abs(out-ref)):.3g}")
    print(f"ok  {name}: {lines[0].split(' sha256')[0]} max|diff|={np.max(np.abs(out - ref)):.2e}")


def run_refused(name, est, fit=None, what=None):
    if fit is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(*fit)
    before = set(os.listdir(TMP))
    r, dst = export(est, name)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2, f"{name}: refused export must exit 2, got {r.returncode}")
    check(len(lines) == 1, f"{name}: expected one stderr line, got {lines}")
    check(not os.path.exists(dst), f"{name}: output file left behind")
    left = set(os.listdir(TMP)) - before - {name + ".joblib"}
    check(not left, f"{name}: temporary files left behind: {left}")
    if what:
        check(bool(lines) and what in lines[0], f"{name}: message {lines} lacks {what!r}")
    print(f"ok  {name} refused: {lines[0] if lines else ''}")


def main():
    mlp = dict(hidden_layer_sizes=(8, 5), max_iter=300, random_state=0)
    run_supported("logreg_binary", LogisticRegression(max_iter=500), "binary")
    run_supported("logreg_ovr_binary", LogisticRegression(multi_class="ovr", solver="liblinear"),
                  "binary")
    run_supported("logreg_multinomial_binary",
                  LogisticRegression(multi_class="multinomial", max_iter=500), "binary")
    run_supported("logreg_multiclass", LogisticRegression(max_iter=500), "multiclass", 4)
    run_supported("pipe_scaler_logreg", make_pipeline(StandardScaler(), LogisticRegression()),
                  "binary")
    run_supported("linear", LinearRegression(), "regression")
    run_supported("ridge", Ridge(alpha=0.5), "regression")
    run_supported("pipe_scaler_nomean_ridge",
                  make_pipeline(StandardScaler(with_mean=False), Ridge()), "regression")
    run_supported("mlp_relu_binary", make_pipeline(StandardScaler(),
                  MLPClassifier(activation="relu", **mlp)), "binary")
    run_supported("mlp_tanh_multiclass", make_pipeline(StandardScaler(),
                  MLPClassifier(activation="tanh", **mlp)), "multiclass", 3)
    run_supported("mlp_logistic_raw", MLPClassifier(activation="logistic", **mlp), "binary")
    run_supported("mlp_identity", MLPClassifier(activation="identity", **mlp), "multiclass", 3)
    run_supported("mlp_regressor", make_pipeline(StandardScaler(), MLPRegressor(**mlp)),
                  "regression")

    # The other linear models: predict is X @ coef_ + intercept_ for each.
    from sklearn import linear_model as lm
    from sklearn.svm import LinearSVR
    for est in (lm.RidgeCV(), lm.Lasso(alpha=0.05), lm.LassoCV(cv=3), lm.ElasticNet(alpha=0.05),
                lm.ElasticNetCV(cv=3), lm.Lars(), lm.LassoLars(alpha=0.01), lm.LassoLarsIC(),
                lm.OrthogonalMatchingPursuit(), lm.BayesianRidge(), lm.ARDRegression(),
                lm.HuberRegressor(max_iter=500), lm.QuantileRegressor(alpha=0.0, solver="highs"),
                lm.TheilSenRegressor(random_state=0, max_subpopulation=500),
                make_pipeline(StandardScaler(), lm.SGDRegressor(random_state=0)),
                make_pipeline(StandardScaler(), LinearSVR(max_iter=5000, random_state=0))):
        name = type(est.steps[-1][1] if hasattr(est, "steps") else est).__name__
        run_supported("linear_" + name, est, "regression")
    run_supported("logregcv_multiclass", lm.LogisticRegressionCV(cv=3, max_iter=500), "multiclass", 3)
    run_supported("sgd_log_binary", make_pipeline(StandardScaler(), lm.SGDClassifier(
        loss="log_loss", random_state=0)), "binary")
    # The other scalers, as the model's standardiser (x - mean) / scale.
    from sklearn.preprocessing import MaxAbsScaler, RobustScaler
    run_supported("pipe_minmax_logreg", make_pipeline(MinMaxScaler(), LogisticRegression()), "binary")
    run_supported("pipe_minmax_range_mlp", make_pipeline(MinMaxScaler((-1, 2)), MLPRegressor(**mlp)),
                  "regression")
    run_supported("pipe_maxabs_ridge", make_pipeline(MaxAbsScaler(), Ridge()), "regression")
    run_supported("pipe_robust_mlp", make_pipeline(RobustScaler(), MLPClassifier(**mlp)),
                  "multiclass", 3)
    run_supported("pipe_robust_nocenter", make_pipeline(RobustScaler(with_centering=False),
                  LogisticRegression()), "binary")
    # Single trees (a forest of one) are checked with the other tree models in
    # tests/trees/sklearn_trees_parity.py.
    Xb, yb = data("binary", 2)
    Xm, ym = data("multiclass", 3)
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import PolynomialFeatures
    run_refused("knn", KNeighborsClassifier(), (Xb, yb), "KNeighborsClassifier is not supported")
    run_refused("sgd_hinge", lm.SGDClassifier(), (Xb, yb), "loss='hinge'")
    run_refused("sgd_log_3", lm.SGDClassifier(loss="log_loss"), (Xm, ym), "3 classes")
    run_refused("minmax_clip", make_pipeline(MinMaxScaler(clip=True), LogisticRegression()),
                (Xb, yb), "clip=True")
    run_refused("scaled_tree", make_pipeline(MinMaxScaler(), DecisionTreeClassifier()), (Xb, yb),
                "Pipeline(MinMaxScaler, DecisionTreeClassifier) is not supported")
    run_refused("scaled_forest", make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=2)),
                (Xb, yb), "Pipeline(StandardScaler, RandomForestClassifier) is not supported")
    run_refused("logreg_ovr_3", LogisticRegression(multi_class="ovr"), (Xm, ym), "one-vs-rest")
    Xf, yf = data("binary", 2)
    r, dst_float = export(LogisticRegression().fit(Xf, yf.astype(np.float64)), "float_labels")
    check(r.returncode == 0, f"float labels 0.0/1.0 must export: {r.stderr.strip()}")
    # Integer class labels other than 0..k-1 are kept as /classes (format 3); 0..k-1 and
    # 0.0/1.0 write no /classes and stay format 1.
    for name, yv, want in (("labels_1_2", yb + 1, [1, 2]), ("labels_pm1", 2 * yb - 1, [-1, 1]),
                           ("labels_float_3_7", np.where(yb, 7.0, 3.0), [3, 7])):
        r, model = export(LogisticRegression().fit(Xb, yv), name)
        check(r.returncode == 0, f"{name}: export exit {r.returncode}: {r.stderr.strip()}")
        if r.returncode == 0:
            with h5py.File(model, "r") as f:
                got = f["classes"][()].tolist() if "classes" in f else None
                check(got == want and f.attrs["format_version"] == 3,
                      f"{name}: /classes {got}, format_version {f.attrs['format_version']}")
    with h5py.File(dst_float, "r") as f:
        check("classes" not in f and f.attrs["format_version"] == 1,
              "labels 0.0/1.0: no /classes, format_version 1")
    run_refused("labels_str", LogisticRegression(), (Xb, np.where(yb, "yes", "no")),
                "integer class labels")
    run_refused("labels_past_int32", LogisticRegression(), (Xb, yb * 2**31),
                "integer class labels of int32")
    # uint64 labels past 2**63 had wrapped through int64 into -2 and -1.
    run_refused("labels_uint64_big", LogisticRegression(),
                (Xb, np.where(yb, np.uint64(2**64 - 1), np.uint64(2**64 - 2))),
                "integer class labels of int32")
    run_refused("unfitted", LogisticRegression(), None, "not fitted")
    run_refused("multilabel", MLPClassifier(max_iter=5), (Xb, np.c_[yb, 1 - yb]), "multilabel")
    run_refused("ridge_2_outputs", Ridge(), (Xb, np.c_[yb, yb]), "2 outputs")
    # Multi-output tree classifiers: classes_ is a list, one array per output. Outputs of
    # different class counts had crashed the exporter with a traceback (a ragged array);
    # equal ones had been refused for their "labels" instead of their outputs.
    run_refused("tree_2_outputs_ragged", DecisionTreeClassifier(max_depth=3),
                (Xb, np.c_[yb, (Xb[:, 1] > 0).astype(int) + (Xb[:, 2] > 0)]),
                "DecisionTreeClassifier has 2 outputs; only single-output classification")
    run_refused("forest_2_outputs", RandomForestClassifier(n_estimators=2), (Xb, np.c_[yb, 1 - yb]),
                "RandomForestClassifier has 2 outputs; only single-output classification")
    run_refused("pipe_poly", make_pipeline(PolynomialFeatures(), Ridge()), (Xb, yb),
                "Pipeline(PolynomialFeatures, Ridge)")

    # A pipeline whose scaler was never fitted (a traceback had named n_features_in_).
    from sklearn.pipeline import Pipeline
    fitted_lr = LogisticRegression().fit(Xb, yb)
    run_refused("pipe_unfitted_scaler", Pipeline([("sc", StandardScaler()), ("lr", fitted_lr)]),
                None, "StandardScaler is not fitted")
    # Values past float32: one line, no numpy warning lines before it.
    big = LogisticRegression().fit(Xb, yb)
    big.coef_[0, 0] = 1e39
    run_refused("coef_1e39", big, None, "/layers/0/W has values that are not finite in float32")
    # A scale that is 0 in float32, which the loader would refuse after an export that passed.
    tiny = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xb, yb)
    tiny.steps[0][1].scale_[1] = 1e-47
    run_refused("scale_0_in_float32", tiny, None, "/scaler/scale has values that are 0 in float32")

    # Outputs the rename would replace: a FIFO, a symbolic link, the input itself. Each is
    # exit 2 in one line, and what the path held is untouched.
    src = os.path.join(TMP, "out_cases.joblib")
    joblib.dump(fitted_lr, src)
    fifo, link, target = (os.path.join(TMP, n) for n in ("out.fifo", "out.link", "out.target"))
    os.mkfifo(fifo)
    with open(target, "w") as fh:
        fh.write("keep\n")
    os.symlink(target, link)
    with open(src, "rb") as fh:
        src_bytes = fh.read()
    for dst, what in ((fifo, "is not a regular file"), (link, "is a symbolic link"),
                      (src, "the output is the input")):
        r = run_export([src, dst])
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and what in lines[0],
              f"output {os.path.basename(dst)}: exit {r.returncode}, {lines}")
        print(f"ok  output {os.path.basename(dst)} refused: {lines[0] if lines else ''}")
    import stat
    check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced")
    check(os.path.islink(link) and open(target).read() == "keep\n", "the link was replaced")
    with open(src, "rb") as fh:
        check(fh.read() == src_bytes, "the input joblib was overwritten")

    # Not a joblib file, and an unwritable destination.
    bad = os.path.join(TMP, "not_joblib.joblib")
    with open(bad, "w") as fh:
        fh.write("hello\n")
    r = run_export([bad, os.path.join(TMP, "x.h5")])
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, "bad joblib: exit 2")
    check(not os.path.exists(os.path.join(TMP, "x.h5")), "bad joblib: no output")
    src = os.path.join(TMP, "ridge.joblib")
    r = run_export([src, os.path.join(TMP, "nodir", "x.h5")])
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, "no dir: exit 2")
    check(run_export([]).returncode == 2, "no arguments: exit 2")
    # A missing OUT is a usage error: one line on stderr, nothing on stdout.
    r = subprocess.run([EXPORT, src], capture_output=True, text=True)
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not r.stdout,
          f"IN without OUT: exit {r.returncode}, stderr {r.stderr!r}, stdout {r.stdout[:40]!r}")
    r = subprocess.run([EXPORT, "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "IN.joblib" in r.stdout, "--help: exit 0, usage on stdout")
    # Once through the real command line: shebang interpreter, exit status, one stderr line.
    r = subprocess.run([EXPORT, os.path.join(TMP, "random_forest.joblib"),
                        os.path.join(TMP, "rf.h5")], capture_output=True, text=True)
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, "command: exit 2")
    r = subprocess.run([EXPORT, src, os.path.join(TMP, "ridge_cli.h5")], capture_output=True,
                       text=True)
    check(r.returncode == 0 and os.path.exists(os.path.join(TMP, "ridge_cli.h5")), "command ok")

    make_dataset_checks()
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    return 0


def make_dataset_checks():
    """make_dataset.py sets load through the C reader; same options give the same rows;
    the --label-noise variant scores worse than the clean model on the same set."""
    from sklearn.metrics import accuracy_score
    sets = {}
    for layout, dtype in (("contiguous", "float64"), ("chunked", "float32"), ("gzip", "float32")):
        out = os.path.join(TMP, f"md_{layout}.h5")
        args = [MAKE, "--out", out, "--task", "binary", "--rows", "3000", "--features", "5",
                "--layout", layout, "--dtype", dtype, "--weights", "--label-dtype", "uint8"]
        if layout == "gzip":
            args += ["--fit", "logreg-scaled", "--model-out", os.path.join(TMP, "md_good.h5"),
                     "--joblib-out", os.path.join(TMP, "md_good.joblib")]
        r = run_make(args[1:])
        check(r.returncode == 0, f"make_dataset {layout}: {r.stderr.strip()}")
        with h5py.File(out) as f:
            sets[layout] = (f["X"][:].astype(np.float32), f["y"][:], f["sample_weight"][:])
            check(f["y"].dtype == np.uint8, f"make_dataset {layout}: label dtype")
            check((f["X"].compression == "gzip") == (layout == "gzip"), f"{layout}: compression")
    for layout in ("contiguous", "gzip"):
        check(all(np.array_equal(a, b) for a, b in zip(sets[layout], sets["chunked"])),
              f"make_dataset {layout}: rows differ from the chunked set with the same seed")
    f = subprocess.run([FORWARD, os.path.join(TMP, "md_good.h5"), os.path.join(TMP, "md_gzip.h5")],
                       capture_output=True, text=True)
    check(f.returncode == 0, f"make_dataset model/set do not load: {f.stderr.strip()}")
    nodir = os.path.join(TMP, "nodir", "set.h5")
    r = run_make(["--out", nodir, "--rows", "10"])
    check(r.returncode == 2 and r.stderr.strip().endswith(f"{nodir}: No such file or directory"),
          f"make_dataset into a missing folder must name {nodir}: {r.stderr.strip()}")
    r = run_make(["--task", "binary", "--features", "5", "--fit", "logreg-scaled",
                  "--label-noise", "0.4", "--joblib-out", os.path.join(TMP, "md_bad.joblib")])
    check(r.returncode == 0, f"make_dataset worse model: {r.stderr.strip()}")
    X, y, _ = sets["gzip"]
    good = accuracy_score(y, joblib.load(os.path.join(TMP, "md_good.joblib")).predict(X))
    worse = accuracy_score(y, joblib.load(os.path.join(TMP, "md_bad.joblib")).predict(X))
    check(good > 0.75 and worse < good - 0.05, f"make_dataset: good {good:.3f} vs worse {worse:.3f}")
    print(f"ok  make_dataset: layouts identical, accuracy good {good:.3f} worse {worse:.3f}")
    r = subprocess.run([MAKE, "--task", "regression", "--fit", "logreg"], capture_output=True,
                       text=True)
    check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, "make_dataset bad opts")


if __name__ == "__main__":
    sys.exit(main())
