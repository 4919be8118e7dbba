#!/usr/bin/python3
"""Reference test: scikit-learn tree ensembles exported with scripts/export_sklearn.py
into the tree-ensemble layout of the model HDF5 format, evaluated by `stagegate eval`.

For DecisionTree and ExtraTree (a forest of one), RandomForest, ExtraTrees,
GradientBoosting and HistGradientBoosting, classifier
(2 and 3 classes) and regressor: probabilities / predictions within 1e-6 of
predict_proba / predict (HistGradientBoosting on data with NaNs, which it routes),
labels equal to predict away from ties, every kernel variant bit-identical to the
scalar one. Then: NaN is refused for a forest (scikit-learn 1.2 forests cannot route
it), and a damaged file is refused with exit 2 naming the field.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import joblib
import numpy as np
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                              GradientBoostingClassifier, GradientBoostingRegressor,
                              HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)

from kernel_variants import runnable_variants
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from export_inproc import run_export  # noqa: E402

SG = os.environ["STAGEGATE_BIN"]
TOL = 1e-6
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def variants():
    return runnable_variants(SG, check)


ISAS = variants()


def export(tmp, name, est):
    src, dst = os.path.join(tmp, name + ".joblib"), os.path.join(tmp, name + ".h5")
    joblib.dump(est, src)
    p = run_export([src, dst])
    check(p.returncode == 0, "%s: export failed: %s" % (name, p.stderr.strip()))
    return dst


def evaluate(tmp, model, X, y, isa):
    data, pred = os.path.join(tmp, "val.h5"), os.path.join(tmp, "pred.h5")
    with h5py.File(data, "w") as f:
        f["X"], f["y"] = X, y
    p = subprocess.run([SG, "eval", "--model", model, "--data", data, "--predictions", pred],
                       capture_output=True, text=True, env=dict(os.environ, STAGEGATE_ISA=isa))
    if p.returncode != 0:
        check(False, "%s (%s): eval exit %d: %s" % (model, isa, p.returncode, p.stderr.strip()))
        return None
    with h5py.File(pred) as f:
        return {k: f[k][()] for k in f}


def case(tmp, name, est, X, y, Xv, yv, relative=False, tol_of=None):
    """relative: compare |stagegate - sklearn| / max(1, |sklearn|), for outputs exp(raw)
    that grow past 1, where float32 carries a relative precision, not an absolute one.
    tol_of: the bound for this fitted estimator instead of TOL (float32 sums of large values)."""
    est.fit(X, y)
    tol = tol_of(est) if tol_of else TOL
    model = export(tmp, name, est)
    classifier = hasattr(est, "predict_proba")
    want = est.predict_proba(Xv) if classifier else est.predict(Xv)
    outs = {}
    for isa in ISAS:
        out = evaluate(tmp, model, Xv, yv, isa)
        if out is None:
            continue
        outs[isa] = out
        got = out["proba"] if classifier else out["prediction"]
        err = np.abs(got.astype(np.float64) - want)
        err = (err / np.maximum(1.0, np.abs(want)) if relative else err).max()
        print("%-26s %-7s max |stagegate - sklearn| %.3g" % (name, isa, err))
        check(err <= tol, "%s %s: differs from scikit-learn by %g (bound %g)" % (name, isa, err, tol))
        if classifier:
            top = np.sort(want, axis=1)
            clear = top[:, -1] - top[:, -2] > 1e-6
            check(np.array_equal(out["label"][clear], est.predict(Xv)[clear]),
                  "%s %s: labels differ from predict" % (name, isa))
    for isa, out in outs.items():
        for k in out:
            check(out[k].tobytes() == outs["scalar"][k].tobytes(),
                  "%s: %s /%s not bit-identical to scalar" % (name, isa, k))
    return model


rng = np.random.default_rng(21)
n, d = 2000, 8
X = rng.normal(size=(n, d)).astype(np.float32)
Xv = rng.normal(size=(1500, d)).astype(np.float32)
z = lambda A: A[:, 0] + 0.5 * np.sin(2 * A[:, 1]) + 0.3 * A[:, 2] * A[:, 3]
yb, ybv = (z(X) > 0).astype(np.int32), (z(Xv) > 0).astype(np.int32)
ym, ymv = np.digitize(z(X), [-0.5, 0.5]).astype(np.int32), np.digitize(z(Xv), [-0.5, 0.5]).astype(np.int32)
yr, yrv = 0.5 * z(X), 0.5 * z(Xv)
Xn, Xnv = X.copy(), Xv.copy()
Xn[rng.random(X.shape) < 0.1] = np.nan
Xnv[rng.random(Xv.shape) < 0.1] = np.nan
ynb = (np.nan_to_num(z(Xn)) > 0).astype(np.int32)
ynbv = (np.nan_to_num(z(Xnv)) > 0).astype(np.int32)
ynm = np.digitize(np.nan_to_num(z(Xn)), [-0.5, 0.5]).astype(np.int32)
ynmv = np.digitize(np.nan_to_num(z(Xnv)), [-0.5, 0.5]).astype(np.int32)

with tempfile.TemporaryDirectory() as tmp:
    # A single DecisionTree or ExtraTree is exported as a forest of one.
    case(tmp, "dt_binary", DecisionTreeClassifier(max_depth=10, random_state=0), X, yb, Xv, ybv)
    case(tmp, "dt_multi", DecisionTreeClassifier(min_samples_leaf=3, random_state=0), X, ym, Xv, ymv)
    case(tmp, "dt_regressor", DecisionTreeRegressor(max_depth=12, random_state=0), X, yr, Xv, yrv)
    case(tmp, "xt_single_binary", ExtraTreeClassifier(max_depth=12, random_state=0), X, yb, Xv, ybv)
    rf = case(tmp, "rf_binary", RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0), X, yb, Xv, ybv)
    case(tmp, "rf_multi", RandomForestClassifier(n_estimators=20, random_state=0), X, ym, Xv, ymv)
    case(tmp, "rf_regressor", RandomForestRegressor(n_estimators=20, max_depth=10, random_state=0), X, yr, Xv, yrv)
    # Targets near 1e4: the leaves (value / n_trees) are summed in float32, so the bound
    # docs/formats.md gives is (n_trees + 1) * 2^-24 * the largest |leaf value|, not 1e-6.
    case(tmp, "rf_regressor_1e4", RandomForestRegressor(n_estimators=50, random_state=0), X,
         2e4 * yr, Xv, 2e4 * yrv,
         tol_of=lambda e: (len(e.estimators_) + 1) * 2.0 ** -24 *
         max(np.abs(t.tree_.value).max() for t in e.estimators_))
    # Tied votes: a forest of 50 trees on noisy labels has rows where 25 trees vote each way,
    # predict_proba exactly [0.5, 0.5]. A forest's output is its trees' sum divided by the tree
    # count (the file's mean_of), as scikit-learn averages: leaves of 1/50 summed in float32
    # had read 0.50000006 there, above the tie, and the label had been 1 (p1 >= 0.5) where
    # predict says 0. Every label now equals predict.
    noisy = np.where(rng.random(len(yb)) < 0.3, 1 - yb, yb).astype(np.int32)
    tie_rf = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, noisy)
    tie_model = case(tmp, "rf_binary_ties", tie_rf, X, noisy, Xv, ybv)
    with h5py.File(tie_model) as f:
        check(f.attrs["format_version"] == 2 and f.attrs["mean_of"] == 50,
              "rf_binary_ties: exported without mean_of 50 in a version-2 file")
    ref = tie_rf.predict_proba(Xv)[:, 1]
    ties = ref == 0.5
    for isa in ISAS:
        out = evaluate(tmp, tie_model, Xv, ybv, isa)
        if out is None:
            continue
        print("rf_binary_ties %-7s %d tied rows" % (isa, ties.sum()))
        check(ties.sum() >= 10, "rf_binary_ties: only %d tied rows, the case tests nothing" % ties.sum())
        check(np.all(out["proba"][ties, 1] == np.float32(0.5)),
              "rf_binary_ties %s: tied rows read %s, not 0.5" % (isa, np.unique(out["proba"][ties, 1])))
        # every label equals predict, the tied rows' class 0 too (labels are 1 strictly above
        # 0.5, as predict decides)
        check(np.array_equal(out["label"], tie_rf.predict(Xv)),
              "rf_binary_ties %s: %d labels differ from predict" % (isa, (out["label"] != tie_rf.predict(Xv)).sum()))
    # Targets near float32's largest (2.2e38): the sum of 10 unscaled leaves would overflow
    # where their mean does not, so the reader divides the leaves first (it had answered
    # "output prediction[0] is not finite").
    case(tmp, "rf_regressor_near_flt_max", RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0),
         X, np.minimum((np.abs(X[:, 0]) / 4 + 0.5) * 2e38, 3.3e38), Xv, np.zeros(len(Xv), np.float32),
         relative=True)
    case(tmp, "et_binary", ExtraTreesClassifier(n_estimators=30, random_state=0), X, yb, Xv, ybv)
    case(tmp, "et_multi", ExtraTreesClassifier(n_estimators=20, max_depth=6, random_state=0), X, ym, Xv, ymv)
    case(tmp, "et_regressor", ExtraTreesRegressor(n_estimators=20, max_depth=12, random_state=0), X, yr, Xv, yrv)
    case(tmp, "gb_binary", GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0), X, yb, Xv, ybv)
    case(tmp, "gb_multi", GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0), X, ym, Xv, ymv)
    case(tmp, "gb_regressor", GradientBoostingRegressor(n_estimators=60, max_depth=4, random_state=0), X, yr, Xv, yrv)
    case(tmp, "hgb_binary_nan", HistGradientBoostingClassifier(max_iter=60, random_state=0), Xn, ynb, Xnv, ynbv)
    case(tmp, "hgb_multi_nan", HistGradientBoostingClassifier(max_iter=40, random_state=0), Xn, ynm, Xnv, ynmv)
    case(tmp, "hgb_regressor_nan", HistGradientBoostingRegressor(max_iter=60, random_state=0), Xn, yr, Xnv, yrv)
    # Poisson: the exported output is exp(raw), from the baseline (a log) plus the trees.
    yc = rng.poisson(np.exp(0.5 * np.nan_to_num(z(Xn)))).astype(np.float64)
    ycv = rng.poisson(np.exp(0.5 * np.nan_to_num(z(Xnv)))).astype(np.float64)
    case(tmp, "hgb_poisson_nan", HistGradientBoostingRegressor(loss="poisson", max_iter=60, random_state=0),
         Xn, yc, Xnv, ycv, relative=True)
    case(tmp, "hgb_binary_depth6", HistGradientBoostingClassifier(max_iter=50, max_depth=6, max_leaf_nodes=64, random_state=0), X, yb, Xv, ybv)

    # scikit-learn 1.2 forests cannot route NaN, so the exported model refuses it.
    data = os.path.join(tmp, "nan.h5")
    with h5py.File(data, "w") as f:
        f["X"], f["y"] = Xnv, ynbv
    p = subprocess.run([SG, "eval", "--model", rf, "--data", data], capture_output=True, text=True)
    check(p.returncode == 2 and "NaN" in p.stderr and "nan.h5" in p.stderr,
          "NaN for a forest: want exit 2 naming the file, got %d %r" % (p.returncode, p.stderr))

    # Damaged files: one line naming the field, exit 2.
    def damaged(tag, field, edit, words, attrs=None):
        """A copy of rf with /trees/FIELD edited (field None: none), then root attrs set."""
        bad = os.path.join(tmp, "bad_%s.h5" % tag)
        with h5py.File(rf) as f, h5py.File(bad, "w") as g:
            for k, v in f.attrs.items():
                g.attrs[k] = v
            for k in f["trees"]:
                g["trees/" + k] = f["trees/" + k][()]
            if field:
                a = g["trees/" + field][()]
                del g["trees/" + field]
                g["trees/" + field] = edit(a)
            for k, v in (attrs or {}).items():
                g.attrs[k] = v
        p = subprocess.run([SG, "eval", "--model", bad, "--data", data], capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        ok = p.returncode == 2 and len(lines) == 1 and bad in lines[0] and all(w in lines[0] for w in words)
        print("%-16s exit %d: %s" % (tag, p.returncode, p.stderr.strip()))
        check(ok, "damaged %s: want exit 2 naming %s; got %d %r" % (tag, words, p.returncode, p.stderr))

    def wrong_child(a):
        a = a.copy(); a[0] = 5; return a

    def cycle(a):
        a = a.copy(); i = int(np.nonzero(a[1:] != -1)[0][0]) + 1; a[i] = 0; return a

    def feature(a):
        a = a.copy(); a[0] = d; return a

    def nan_threshold(a):
        a = a.copy(); a[0] = np.nan; return a

    damaged("wrong_child", "left", wrong_child, ["/trees/left[0]", "breadth-first"])
    damaged("cycle", "left", cycle, ["/trees/left["])
    damaged("feature", "feature", feature, ["/trees/feature[0]", "outside"])
    damaged("nan_threshold", "threshold", nan_threshold, ["/trees/threshold[0]", "NaN"])
    damaged("short", "leaf_value", lambda a: a[:-1], ["/trees/leaf_value", "values"])
    # output "probability": the leaves are the probability itself, so they must keep every
    # row's sum in [0, 1] (a forest's leaves are class fractions over the tree count).
    damaged("proba_above_1", "leaf_value", lambda a: np.full_like(a, 5.0),
            ["probability", "group 0", "outside [0, 1]"])
    damaged("proba_negative", "leaf_value", lambda a: -a, ["probability", "outside [0, 1]"])

    # mean_of: only in a version-2 file (a build that ignored it would read the sums as
    # probabilities), 1..2^20, with output probability or identity.
    damaged("mean_of_v1", None, None, ["mean_of needs format_version 2"], {"format_version": np.int64(1)})
    damaged("mean_of_0", None, None, ["mean_of is 0, outside 1..1048576"], {"mean_of": np.int64(0)})
    damaged("mean_of_big", None, None, ["mean_of is 2097152"], {"mean_of": np.int64(1 << 21)})

    # A tree deeper than the loader takes (64 levels) is refused by the exporter, naming the
    # tree and its depth, not written for stagegate to refuse later; 64 levels export and run.
    Xd = np.arange(130, dtype=np.float32).reshape(-1, 1)
    yd = np.arange(130) % 2
    deep = DecisionTreeClassifier(random_state=0).fit(Xd, yd)
    src, dst = os.path.join(tmp, "deep.joblib"), os.path.join(tmp, "deep.h5")
    joblib.dump(deep, src)
    p = run_export([src, dst])
    check(p.returncode == 2 and "tree 0 is %d levels deep" % deep.get_depth() in p.stderr
          and "at most 64" in p.stderr and not os.path.exists(dst),
          "a %d-level tree: export exit %d: %s" % (deep.get_depth(), p.returncode, p.stderr.strip()))
    d64 = DecisionTreeClassifier(max_depth=64, random_state=0).fit(Xd, yd)
    m64 = export(tmp, "d64", d64)
    val = os.path.join(tmp, "d64_val.h5")
    with h5py.File(val, "w") as f:
        f["X"] = Xd
        f["y"] = yd.astype(np.int32)
    r = subprocess.run([SG, "eval", "--model", m64, "--data", val, "--json"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and json.loads(r.stdout)["metrics"]["accuracy"] == d64.score(Xd, yd),
          "a 64-level tree: eval exit %d %s %s" % (r.returncode, r.stderr.strip(), r.stdout[:200]))

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
