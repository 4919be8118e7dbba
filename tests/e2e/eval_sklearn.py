#!/usr/bin/python3
"""Reference test: `stagegate eval` against scikit-learn on the same data.

For each supported estimator: fit with scikit-learn, export with
scripts/export_sklearn.py, run `stagegate eval --json --predictions`, then check
- probabilities (or regression predictions) within 1e-5 absolute of
  predict_proba / predict;
- predicted labels equal scikit-learn's predict, except rows whose winning
  probability is within 1e-5 of a tie (float32 vs float64 rounding);
- every metric within 1e-6 of sklearn.metrics computed on the same labels and on
  stagegate's own probabilities (so the metric definitions are tested exactly),
  and the confusion matrix exactly.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import h5py
import joblib
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from export_inproc import run_export  # noqa: E402

SG = os.environ["STAGEGATE_BIN"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def check_export(src, dst):
    p = run_export([src, dst])
    if p.returncode != 0:
        sys.exit("FAIL: %s: export exit %d: %s" % (src, p.returncode, p.stderr.strip()))


def narrow_paths():
    """The paths eval may report for a narrow output layer here. The avx2 kernels have one
    for it (dense_out), which eval takes where it gives sgemm's bits; they do where OpenBLAS
    runs its Haswell kernel (also its kernel on AMD Zen), so there it must. The other
    variants have none: sgemm."""
    p = subprocess.run([SG, "clock", "--json"], capture_output=True, text=True)
    check(p.returncode == 0, f"stagegate clock --json failed: {p.stderr.strip()}")
    clock = json.loads(p.stdout) if p.returncode == 0 else {}
    in_use = clock.get("kernels", {}).get("in_use", "?")
    if in_use != "avx2":
        return {"sgemm"}
    core = clock["openblas"]["core"]  # as eval runs it (it may replace OpenBLAS's fallback)
    if core == "Haswell" or core.startswith("Zen"):
        return {"narrow one-chain"}
    return {"sgemm", "narrow one-chain"}


def make_data(rng, n, d, task, k=2):
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20.0, size=d) + rng.uniform(-5, 5, size=d)
    Z = (X - X.mean(0)) / X.std(0)
    if task == "regression":
        y = Z @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
        return X, y
    W = rng.normal(size=(d, k))
    logits = Z @ W + 0.8 * rng.normal(size=(n, k))
    return X, np.argmax(logits, axis=1).astype(np.int64)


def write_set(path, X, y, w=None, dtype=np.float32, layout="contiguous"):
    with h5py.File(path, "w") as f:
        kw = {}
        if layout == "chunked":
            kw = dict(chunks=(min(1000, len(X)), X.shape[1]))
        elif layout == "gzip":
            kw = dict(chunks=(min(1000, len(X)), X.shape[1]), compression="gzip")
        f.create_dataset("X", data=X.astype(dtype), **kw)
        f.create_dataset("y", data=y)
        if w is not None:
            f.create_dataset("sample_weight", data=w)


def sha256_of(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def run_eval(tmp, model_h5, data_h5, threshold=None, chunk_rows=None):
    pred = os.path.join(tmp, "pred.h5")
    cmd = [SG, "eval", "--model", model_h5, "--data", data_h5, "--json", "--predictions", pred]
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    if chunk_rows is not None:
        cmd += ["--chunk-rows", str(chunk_rows)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"stagegate eval failed ({p.returncode}): {p.stderr}")
    out = json.loads(p.stdout)
    # The --json contract: these keys, and digests of exactly the files given.
    check(list(out)[:3] == ["model", "dataset", "metrics"] and "timing" in out,
          f"--json top-level keys {list(out)}")
    t = out["timing"]
    for key in ("load_seconds", "predict_seconds", "metrics_seconds", "total_seconds",
                "setup_seconds", "wait_seconds", "metrics_finish_seconds", "read_seconds",
                "hash_seconds"):
        check(isinstance(t.get(key), float) and t[key] >= 0, f"timing.{key} = {t.get(key)}")
    # The stages are parts of the whole: the main thread's add up to at most the total,
    # load is setup plus waiting, and the overlap is a share.
    parts = t["setup_seconds"] + t["wait_seconds"] + t["predict_seconds"] + t["metrics_seconds"]
    check(parts <= t["total_seconds"] * (1 + 1e-9), f"stages {parts} > total {t['total_seconds']}")
    check(abs(t["load_seconds"] - t["setup_seconds"] - t["wait_seconds"]) < 1e-9, "load = setup + wait")
    check(t["metrics_finish_seconds"] <= t["metrics_seconds"], "finish within metrics")
    check(0.0 <= t["input_overlapped"] <= 1.0, f"input_overlapped {t['input_overlapped']}")
    check(out["model"]["sha256"] == sha256_of(model_h5), f"{model_h5}: model.sha256")
    check(out["dataset"]["sha256"] == sha256_of(data_h5), f"{data_h5}: dataset.sha256")
    check(out["dataset"]["rows"] == out["metrics"]["example_count"], "dataset.rows")
    with h5py.File(pred, "r") as f:
        preds = {k: f[k][()] for k in f.keys()}
    return out, preds


def close(name, got, want, tol=1e-6):
    ok = got is not None and abs(float(got) - float(want)) <= tol
    check(ok, f"{name}: stagegate {got} vs sklearn {want}")


def check_classifier(case, est, X, y, w, out, preds, threshold=0.5):
    m = out["metrics"]
    classes = [int(c) for c in est.classes_]
    k = len(classes)
    # Class values other than 0..k-1 are the model's, in its report and in /classes, and
    # /label holds them; the binary metrics' positive class is classes[1], whose
    # probability is column 1 (scikit-learn's pos_label=classes_[1]).
    identity = classes == list(range(k))
    check(out["model"].get("classes") == (None if identity else classes),
          f"{case}: model.classes {out['model'].get('classes')} for classes_ {classes}")
    check(("classes" in preds) != identity and
          (identity or preds["classes"].tolist() == classes),
          f"{case}: /classes in the predictions file: {preds.get('classes')}")
    pos = classes[1]
    P = est.predict_proba(X.astype(np.float32).astype(np.float64))
    proba, label = preds["proba"], preds["label"]
    err = np.abs(proba.astype(np.float64) - P).max()
    check(proba.shape == (len(X), k), f"{case}: /proba shape {proba.shape}")
    check(err <= 1e-5, f"{case}: max |proba - predict_proba| = {err:.3g} > 1e-5")
    sk_label = np.asarray(classes)[(P[:, 1] > threshold).astype(int) if k == 2 else P.argmax(1)]
    top2 = np.sort(P, axis=1)[:, -2:]
    near = (np.abs(P[:, 1] - threshold) < 1e-5) if k == 2 else (top2[:, 1] - top2[:, 0] < 1e-5)
    mism = (label != sk_label) & ~near
    check(not mism.any(), f"{case}: {int(mism.sum())} labels differ from sklearn predict")
    if k == 2 and threshold == 0.5:
        check(np.array_equal(label[~near], est.predict(X)[~near]), f"{case}: labels vs predict()")

    p64 = proba.astype(np.float64)
    close(f"{case} accuracy", m["accuracy"], skm.accuracy_score(y, label, sample_weight=w))
    close(f"{case} log_loss", m["log_loss"],
          skm.log_loss(y, p64, sample_weight=w, labels=classes))
    cm = skm.confusion_matrix(y, label, labels=classes, sample_weight=w)
    check(np.allclose(np.array(m["confusion_matrix"], dtype=float), cm, rtol=0, atol=1e-9),
          f"{case}: confusion_matrix {m['confusion_matrix']} vs {cm.tolist()}")
    check(m["example_count"] == len(y), f"{case}: example_count")
    if k == 2:
        close(f"{case} precision", m["precision"],
              skm.precision_score(y, label, pos_label=pos, sample_weight=w))
        close(f"{case} recall", m["recall"],
              skm.recall_score(y, label, pos_label=pos, sample_weight=w))
        close(f"{case} f1", m["f1"], skm.f1_score(y, label, pos_label=pos, sample_weight=w))
        close(f"{case} roc_auc", m["roc_auc"], skm.roc_auc_score(y, p64[:, 1], sample_weight=w))
        close(f"{case} average_precision", m["average_precision"],
              skm.average_precision_score(y, p64[:, 1], pos_label=pos, sample_weight=w))
        # Sanity against sklearn's own probabilities too (continuous scores, few ties).
        close(f"{case} roc_auc vs predict_proba", m["roc_auc"],
              skm.roc_auc_score(y, P[:, 1], sample_weight=w), tol=1e-4)
    else:
        for avg in ("macro", "micro", "weighted"):
            close(f"{case} f1_{avg}", m[f"f1_{avg}"],
                  skm.f1_score(y, label, average=avg, sample_weight=w))


def check_regressor(case, est, X, y, w, out, preds):
    m = out["metrics"]
    ref = est.predict(X.astype(np.float32).astype(np.float64))
    pred = preds["prediction"].astype(np.float64).reshape(-1)
    scale = max(1.0, np.abs(ref).max())
    err = np.abs(pred - ref).max()
    check(err <= 1e-5 * scale, f"{case}: max |prediction - predict| = {err:.3g}")
    close(f"{case} mean_absolute_error", m["mean_absolute_error"],
          skm.mean_absolute_error(y, pred, sample_weight=w))
    close(f"{case} mean_squared_error", m["mean_squared_error"],
          skm.mean_squared_error(y, pred, sample_weight=w))
    close(f"{case} root_mean_squared_error", m["root_mean_squared_error"],
          np.sqrt(skm.mean_squared_error(y, pred, sample_weight=w)))
    close(f"{case} r2_score", m["r2_score"], skm.r2_score(y, pred, sample_weight=w))
    close(f"{case} max_error", m["max_error"], skm.max_error(y, pred))
    check(m["example_count"] == len(y), f"{case}: example_count")


def main():
    global NARROW_PATHS
    NARROW_PATHS = narrow_paths()
    rng = np.random.default_rng(2024)
    cases = [
        # name, task, k, estimator, dtype, layout, weights
        ("scaled-logreg-binary", "binary", 2,
         make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), np.float32, "contiguous", True),
        ("logreg-multiclass", "multiclass", 4,
         LogisticRegression(max_iter=1000), np.float64, "chunked", False),
        ("mlp-relu-binary", "binary", 2,
         make_pipeline(StandardScaler(), MLPClassifier((32, 16), activation="relu", max_iter=60, random_state=1)),
         np.float32, "gzip", False),
        ("mlp-tanh-multiclass", "multiclass", 3,
         make_pipeline(StandardScaler(), MLPClassifier((24,), activation="tanh", max_iter=60, random_state=2)),
         np.float32, "contiguous", True),
        ("mlp-logistic-binary", "binary", 2,
         make_pipeline(StandardScaler(), MLPClassifier((16,), activation="logistic", max_iter=60, random_state=3)),
         np.float32, "contiguous", False),
        ("mlp-regressor", "regression", 0,
         make_pipeline(StandardScaler(), MLPRegressor((32,), max_iter=80, random_state=4)), np.float32, "chunked", True),
        ("ridge", "regression", 0, Ridge(alpha=2.0), np.float64, "contiguous", False),
        ("linear", "regression", 0, make_pipeline(StandardScaler(), LinearRegression()), np.float32, "gzip", False),
    ]
    import warnings
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        for name, task, k, est, dtype, layout, weighted in cases:
            n, d = 3000, 12
            X, y = make_data(rng, n, d, task, k)
            X = X.astype(dtype).astype(np.float64) if dtype == np.float32 else X
            est.fit(X[:1500], y[:1500])
            w = rng.uniform(0.1, 3.0, size=n) if weighted else None
            data_h5 = os.path.join(tmp, f"{name}.h5")
            write_set(data_h5, X, y, w, dtype=dtype, layout=layout)
            jl = os.path.join(tmp, f"{name}.joblib")
            model_h5 = os.path.join(tmp, f"{name}.model.h5")
            joblib.dump(est, jl)
            p = run_export([jl, model_h5])
            if p.returncode != 0:
                check(False, f"{name}: export failed: {p.stderr.strip()}")
                continue
            out, preds = run_eval(tmp, model_h5, data_h5)
            check(out["model"]["task"] == task, f"{name}: task {out['model']['task']}")
            # Which kernels the batches took, one entry per layer; no hidden layer here is a
            # multiple of 64 wide, which the fused hidden-layer kernel needs, so each is sgemm,
            # and every output layer is narrow (at most 7 columns after at most 320 inputs).
            desc = out["model"]["description"]
            n_layers = len(desc.split("layers ")[1].split(",")[0].split("x"))
            paths = out["timing"].get("predict_paths", "").split(", ")
            check(paths[:-1] == ["sgemm"] * (n_layers - 1) and paths[-1] in NARROW_PATHS,
                  f"{name}: timing.predict_paths {paths} for {n_layers} layers ({desc}); "
                  f"the output layer should take one of {sorted(NARROW_PATHS)} here")
            if task == "regression":
                check_regressor(name, est, X, y, w, out, preds)
            else:
                check_classifier(name, est, X, y, w, out, preds)
            if weighted:
                # Many small chunks (701 does not divide 3000, so the last one is short):
                # the streamed path must give the same answers as one chunk.
                out, preds = run_eval(tmp, model_h5, data_h5, chunk_rows=701)
                if task == "regression":
                    check_regressor(name + " chunked", est, X, y, w, out, preds)
                else:
                    check_classifier(name + " chunked", est, X, y, w, out, preds)
            print(f"ok   {name}")
        # Class labels other than 0..k-1, as real datasets have them ({1, 2}, {-1, 1}, sparse
        # codes): the model keeps them (/classes), /y is read through them, /label and the
        # report give them back. Float labels (y.astype(float)) too.
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        label_cases = [
            ("logreg-labels-1-2", LogisticRegression(max_iter=500), [1, 2], None, False),
            ("scaled-logreg-labels-minus1-1",
             make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), [-1, 1],
             np.float64, True),
            ("mlp-labels-sparse-multiclass",
             make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=80, random_state=5)),
             [-7, 0, 40, 2**31 - 1], None, False),
            ("forest-labels-minus1-1",
             RandomForestClassifier(n_estimators=6, max_depth=5, random_state=1), [-1, 1],
             None, True),
            ("hgb-labels-2-5-9", HistGradientBoostingClassifier(max_iter=15, random_state=1),
             [2, 5, 9], np.float64, False),
        ]
        for name, est, values, ydtype, weighted in label_cases:
            X, yi = make_data(rng, 2000, 8, "binary" if len(values) == 2 else "multiclass",
                              len(values))
            X = X.astype(np.float32).astype(np.float64)
            y = np.asarray(values, np.int64)[yi]
            est.fit(X[:1000], y[:1000])
            w = rng.uniform(0.1, 3.0, size=len(y)) if weighted else None
            data_h5, jl, model_h5 = (os.path.join(tmp, name + e)
                                     for e in (".h5", ".joblib", ".model.h5"))
            write_set(data_h5, X, y.astype(ydtype) if ydtype else y, w)
            joblib.dump(est, jl)
            check_export(jl, model_h5)
            with h5py.File(model_h5, "r") as f:
                check(f.attrs["format_version"] == 3 and f["classes"][()].tolist() == values,
                      f"{name}: the model file's format_version and /classes")
            out, preds = run_eval(tmp, model_h5, data_h5)
            check_classifier(name, est, X, y, w, out, preds)
            print(f"ok   {name}")
        # A label that is not one of the model's classes is refused, naming its row and the
        # classes; 0 is no class of a model fitted on {1, 2}.
        bad_h5 = os.path.join(tmp, "labels-0-1.h5")
        write_set(bad_h5, X[:50], np.r_[np.full(17, 9), [3], np.full(32, 5)])
        p = subprocess.run([SG, "eval", "--model", model_h5, "--data", bad_h5],
                           capture_output=True, text=True)
        check(p.returncode == 2 and p.stderr.count("\n") == 1 and
              f"{bad_h5}: /y row 17 is 3, not one of the classes (2, 5, 9) of model {model_h5}"
              in p.stderr, f"a label outside the classes: exit {p.returncode}, {p.stderr!r}")
        print("ok   label outside the model's classes refused")
        # Scalers with a large mean and a small spread (a sensor reading 1,000,000.02 ± 0.5):
        # float32 holds the mean 0.02 off (its step is 0.0625 at 1e6), and every standardised
        # value had been shifted by that over the scale (p1 of 8.7e-6 read 0.854). The loader
        # folds what float32 lost into the first layer's bias; the validation rows are exact
        # in float32, so sklearn and stagegate see the same inputs.
        from sklearn.preprocessing import RobustScaler
        base = 1000000.02
        Xo = base + rng.normal(size=(5000, 2)) * 0.5
        yo = (Xo[:, 0] - Xo[:, 1] * 0.3 > base * 0.7).astype(int)
        g = np.arange(999998.0, 1000002.0, 0.0625)
        Xg = np.stack([g, g[::-1]], axis=1)
        yg = (Xg[:, 0] - Xg[:, 1] * 0.3 > base * 0.7).astype(int)
        data_h5 = os.path.join(tmp, "offset.h5")
        write_set(data_h5, Xg, yg, dtype=np.float32)
        for name, est in (("offset-standard-logreg",
                           make_pipeline(StandardScaler(), LogisticRegression(C=1e4))),
                          ("offset-robust-logreg",
                           make_pipeline(RobustScaler(), LogisticRegression(C=1e4))),
                          ("offset-standard-mlp",
                           make_pipeline(StandardScaler(),
                                         MLPClassifier((16,), max_iter=300, random_state=0)))):
            est.fit(Xo, yo)
            jl, model_h5 = (os.path.join(tmp, name + e) for e in (".joblib", ".model.h5"))
            joblib.dump(est, jl)
            check_export(jl, model_h5)
            out, preds = run_eval(tmp, model_h5, data_h5)
            check_classifier(name, est, Xg, yg, None, out, preds)
            print(f"ok   {name}")
        # A non-default threshold changes binary labels the way sklearn would.
        X, y = make_data(rng, 2000, 6, "binary")
        est = LogisticRegression().fit(X, y)
        data_h5, jl, model_h5 = (os.path.join(tmp, f) for f in ("t.h5", "t.joblib", "t.model.h5"))
        write_set(data_h5, X, y, dtype=np.float64)
        joblib.dump(est, jl)
        check_export(jl, model_h5)
        out, preds = run_eval(tmp, model_h5, data_h5, threshold=0.7)
        check_classifier("threshold-0.7", est, X, y, None, out, preds, threshold=0.7)
        print("ok   threshold-0.7")
        # --breakdown: the human form of the stage timings, after the metrics.
        p = subprocess.run([SG, "eval", "--model", model_h5, "--data", data_h5, "--chunk-rows",
                            "500", "--breakdown"], capture_output=True, text=True)
        lines = p.stdout.splitlines()
        want = ["stages (wall clock", "setup (open, check, pool)", "waiting for input", "predict",
                "metrics finish", "dataset digest", "hidden behind compute", "GFLOP/s"]
        missing = [w for w in want if not any(w in l for l in lines)]
        check(p.returncode == 0 and not missing, f"--breakdown: exit {p.returncode}, missing {missing}")
        i_metrics = next((i for i, l in enumerate(lines) if l.startswith("timing")), None)
        i_stages = next((i for i, l in enumerate(lines) if l.startswith("stages")), None)
        check(i_metrics is not None and i_stages is not None and i_metrics < i_stages,
              "--breakdown comes after the metrics and timing line")
        print("ok   --breakdown")
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)
    print("all scikit-learn reference cases passed")


if __name__ == "__main__":
    main()
