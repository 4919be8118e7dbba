#!/usr/bin/python3
"""Reference test: HistGradientBoosting on a float64 /X.

scikit-learn's HistGradientBoosting compares a float64 x with float64 thresholds; stagegate
compares in float32. The exporter writes the float64 thresholds (/trees/threshold_f64) and
stagegate narrows a float64 /X through them (docs/formats.md), so that:

(a) on timestamp-like features (1.7e9 + seconds, a float32 ulp of 128 s), whose float32
    rounding crosses thresholds, eval's probabilities / predictions are within 1e-6 of
    predict_proba / predict (classifier and regressor; /X contiguous, chunked and compressed,
    big-endian), and so are gate's metrics and shadow agreement (HistGradientBoosting against
    a RandomForest, either way round, on the one open dataset) and bench runs;
(b) values exactly at each threshold, one float64 ulp and one float32 ulp either side of it,
    and at the float32 floor of it, go where scikit-learn sends them;
(c) a value between two thresholds that no float32 separates is refused (exit 2, one line
    naming the data file, the row and the column), by eval, bench and gate, while the same
    rows stored as float32 are evaluated as before;
(d) a RandomForest on the same float64 data is unchanged (its file has no threshold_f64,
    its predictions match predict_proba);
(e) a model file whose threshold_f64 disagrees with its float32 thresholds, or is NaN, or is
    not float64, is refused naming the dataset, tree and node.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

import h5py
import joblib
import numpy as np
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from export_inproc import run_export  # noqa: E402

SG = os.environ["STAGEGATE_BIN"]
TOL = 1e-6
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def export(tmp, name, est):
    src, dst = os.path.join(tmp, name + ".joblib"), os.path.join(tmp, name + ".h5")
    joblib.dump(est, src)
    p = run_export([src, dst])
    check(p.returncode == 0, "%s: export failed: %s" % (name, p.stderr.strip()))
    return dst


def write_set(path, X, y, **kw):
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X, **kw)
        f["y"] = y
    return path


def run(*args):
    return subprocess.run([SG, *args], capture_output=True, text=True)


def eval_out(tmp, model, data):
    pred = os.path.join(tmp, "pred.h5")
    p = run("eval", "--model", model, "--data", data, "--predictions", pred)
    if p.returncode != 0:
        check(False, "%s on %s: eval exit %d: %s" % (model, data, p.returncode, p.stderr.strip()))
        return None
    with h5py.File(pred) as f:
        return {k: f[k][()] for k in f}


def compare(tmp, tag, est, model, data, X):
    out = eval_out(tmp, model, data)
    if out is None:
        return
    classifier = hasattr(est, "predict_proba")
    want = est.predict_proba(X) if classifier else est.predict(X)
    got = out["proba"] if classifier else out["prediction"]
    err = np.abs(got.astype(np.float64) - want).max()
    print("%-34s max |stagegate - sklearn| %.3g" % (tag, err))
    check(err <= TOL, "%s: differs from scikit-learn by %g" % (tag, err))


def refused(tag, p, words):
    lines = p.stderr.strip().splitlines()
    ok = p.returncode == 2 and len(lines) == 1 and all(w in lines[0] for w in words)
    print("%-34s exit %d: %s" % (tag, p.returncode, p.stderr.strip()))
    check(ok, "%s: want exit 2, one line with %s; got %d %r" % (tag, words, p.returncode, p.stderr))


def floor32(t):
    f = np.float32(t)
    return np.nextafter(f, np.float32(-np.inf)) if np.float64(f) > t else f


rng = np.random.default_rng(0)
n = 4000
# Seconds over about two days: the thresholds lie hundreds of seconds apart (a float32 ulp
# here is 128 s, so each has its own float32 floor), and half the training values lie within
# 64 s of one, whose float32 rounding then lands on the other side of it.
t = 1.7e9 + rng.uniform(0, 200000, size=n)
X = np.stack([t, rng.normal(size=n), 1e9 + rng.uniform(0, 1e5, size=n)], 1)
y = ((t % 20000) < 10000).astype(np.int32)
yr = np.sin(t / 3000.0) + 0.1 * X[:, 1]

with tempfile.TemporaryDirectory() as tmp:
    hgb = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X, y)
    hgbr = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(X, yr)
    rf = RandomForestClassifier(n_estimators=20, max_depth=10, random_state=0).fit(X, y)
    m_hgb, m_hgbr, m_rf = export(tmp, "hgb", hgb), export(tmp, "hgbr", hgbr), export(tmp, "rf", rf)
    with h5py.File(m_hgb) as f:
        t64, thr, left, feat = (f["trees/" + k][()] for k in ("threshold_f64", "threshold", "left", "feature"))
    split = left != -1
    check(t64.dtype == np.float64 and np.all(t64[~split] == 0), "threshold_f64: float64, 0 on leaves")
    with h5py.File(m_rf) as f:
        check("threshold_f64" not in f["trees"], "a RandomForest file has no threshold_f64")

    # (a) Timestamp-like features, in each storage layout of a float64 /X.
    layouts = {"contiguous": {}, "chunked+gzip": dict(chunks=(256, 3), compression="gzip"),
               "big-endian": dict(dtype=">f8")}
    for name, kw in layouts.items():
        data = write_set(os.path.join(tmp, "v_%s.h5" % name.replace("+", "_")), X, y, **kw)
        compare(tmp, "hgb classifier, " + name, hgb, m_hgb, data, X)
        datar = write_set(os.path.join(tmp, "vr_%s.h5" % name.replace("+", "_")), X, yr, **kw)
        compare(tmp, "hgb regressor, " + name, hgbr, m_hgbr, datar, X)
    data = os.path.join(tmp, "v_contiguous.h5")
    # (d) A RandomForest narrows X to float32 itself: stagegate's plain narrowing matches.
    compare(tmp, "random forest, float64 /X", rf, m_rf, data, X)

    # (b) At each threshold of feature 0: the threshold itself, one float64 ulp either side,
    # its float32 floor and one float32 ulp either side of that.
    cuts = np.unique(t64[split & (feat == 0)])
    vals = []
    for c in cuts:
        f = floor32(c)
        vals += [c, np.nextafter(c, -np.inf), np.nextafter(c, np.inf), np.float64(f),
                 np.float64(np.nextafter(f, np.float32(np.inf))),
                 np.float64(np.nextafter(f, np.float32(-np.inf)))]
    vals = np.array(vals)
    Xb = np.stack([vals, rng.normal(size=len(vals)), 1e9 + rng.uniform(0, 1e5, size=len(vals))], 1)
    yb = (rng.random(len(vals)) < 0.5).astype(np.int32)
    print("%d values at and around %d thresholds" % (len(vals), len(cuts)))
    compare(tmp, "hgb classifier, at thresholds", hgb, m_hgb, write_set(os.path.join(tmp, "vb.h5"), Xb, yb), Xb)
    compare(tmp, "hgb regressor, at thresholds", hgbr, m_hgbr,
            write_set(os.path.join(tmp, "vbr.h5"), Xb, yb.astype(np.float64)), Xb)

    # Gate: HistGradientBoosting against a RandomForest on the one open dataset, both ways
    # round; each model's metrics must be scikit-learn's, and so must their agreement.
    key = os.path.join(tmp, "k")
    check(run("keygen", "--out", key).returncode == 0, "keygen")
    policy = os.path.join(tmp, "policy.json")
    with open(policy, "w") as f:
        json.dump({"metrics": {"accuracy": {"threshold": 0.5}},
                   "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 1000,
                               "min_queries": 700},
                   "shadow": {"min_agreement": 0.01}}, f)
    acc = {m_hgb: (hgb.predict(X) == y).mean(), m_rf: (rf.predict(X) == y).mean()}
    agree = (hgb.predict(X) == rf.predict(X)).mean()

    def gate(cand, base, data, out):
        return run("gate", "--model", cand, "--baseline", base, "--data", data, "--policy", policy,
                   "--key", key + ".key.pem", "--cpus", "0", "--out", os.path.join(tmp, out))

    for cand, base in ((m_hgb, m_rf), (m_rf, m_hgb)):
        tag = "gate %s vs %s" % (os.path.basename(cand), os.path.basename(base))
        p = gate(cand, base, data, "r.json")
        if p.returncode != 0:
            check(False, "%s: exit %d: %s" % (tag, p.returncode, p.stderr.strip() or p.stdout[-400:]))
            continue
        env = json.load(open(os.path.join(tmp, "r.json")))
        pred = json.loads(base64.b64decode(env["payload"]))["predicate"]
        got = (pred["metrics"]["accuracy"], pred["baseline_metrics"]["accuracy"], pred["shadow"]["agreement"])
        want = (acc[cand], acc[base], agree)
        print("%-34s accuracy %.6f / %.6f, agreement %.6f (sklearn %.6f / %.6f, %.6f)" % (tag, *got, *want))
        check(np.allclose(got, want, rtol=0, atol=1e-12), "%s: %s, scikit-learn %s" % (tag, got, want))

    # Bench reads /X through the same path.
    p = run("bench", "--model", m_hgb, "--data", data, "--scenario", "offline", "--duration", "0.05",
            "--min-queries", "64", "--warmup", "8", "--cpus", "0")
    check(p.returncode == 0, "bench on float64 /X: exit %d: %s" % (p.returncode, p.stderr.strip()))

    # (c) Thresholds tens of seconds apart over a short window: many share a float32 floor,
    # and a value between two of those has no float32 that both splits read as scikit-learn.
    td = 1.7e9 + rng.uniform(0, 2000, size=n)
    Xd = np.stack([td, rng.normal(size=n), 1e9 + rng.uniform(0, 1e5, size=n)], 1)
    yd = ((td % 400) < 200).astype(np.int32)
    dense = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(Xd, yd)
    m_dense = export(tmp, "dense", dense)
    with h5py.File(m_dense) as f:
        c = np.unique(f["trees/threshold_f64"][()][(f["trees/left"][()] != -1) & (f["trees/feature"][()] == 0)])
    same = [i for i in range(len(c) - 1) if floor32(c[i]) == floor32(c[i + 1])]
    check(len(same) > 0, "the dense model has two thresholds with one float32 floor")
    if same:
        i = same[0]
        Xr = np.stack([np.full(8, 1.6e9), np.zeros(8), np.full(8, 1e9)], 1)  # all fine ...
        # ... but row 5, column 0
        Xr[5, 0] = (c[i] + c[i + 1]) / 2
        yr8 = np.zeros(8, np.int32)
        bad = write_set(os.path.join(tmp, "between.h5"), Xr, yr8)
        words = [bad, "row 5 column 0", "dense.h5", "float32"]
        refused("eval, between two thresholds", run("eval", "--model", m_dense, "--data", bad), words)
        refused("eval chunked, between thresholds",
                run("eval", "--model", m_dense, "--data",
                    write_set(os.path.join(tmp, "between_c.h5"), Xr, yr8, chunks=(2, 3))),
                ["row 5 column 0"])
        refused("bench, between two thresholds",
                run("bench", "--model", m_dense, "--data", bad, "--scenario", "offline",
                    "--duration", "0.05", "--cpus", "0"), words)
        refused("gate baseline, between thresholds", gate(m_rf, m_dense, bad, "rb.json"), words)
        # The RandomForest alone on the same file reads it as before.
        check(run("eval", "--model", m_rf, "--data", bad).returncode == 0, "rf on between.h5")
        # Stored as float32, the values are exact for scikit-learn too: nothing to refuse.
        X32 = Xd.astype(np.float32)
        compare(tmp, "dense hgb, float32 /X", dense, m_dense,
                write_set(os.path.join(tmp, "d32.h5"), X32, yd), X32)

    # (e) A damaged threshold_f64 is refused, naming the dataset, tree and node.
    def damaged(tag, edit, words):
        path = os.path.join(tmp, "bad_%s.h5" % tag)
        with h5py.File(m_hgb) as f, h5py.File(path, "w") as g:
            for k, v in f.attrs.items():
                g.attrs[k] = v
            for k in f["trees"]:
                g["trees/" + k] = f["trees/" + k][()]
            a = g["trees/threshold_f64"][()]
            del g["trees/threshold_f64"]
            g["trees/threshold_f64"] = edit(a)
        refused("damaged " + tag, run("eval", "--model", path, "--data", data), [path] + words)

    first = int(np.nonzero(split)[0][0])

    def moved(a):
        a = a.copy(); a[first] += 1000.0; return a

    def nan(a):
        a = a.copy(); a[first] = np.nan; return a

    damaged("moved", moved, ["/trees/threshold[%d]" % first, "tree 0 node %d" % first, "threshold_f64"])
    damaged("nan", nan, ["/trees/threshold_f64[%d]" % first, "NaN"])
    damaged("float32", lambda a: a.astype(np.float32), ["/trees/threshold_f64", "float64"])
    damaged("short", lambda a: a[:-1], ["/trees/threshold_f64", "values"])

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
