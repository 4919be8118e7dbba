"""Compares the metric kernels with sklearn.metrics on many seeded random cases.

Usage: sklearn_reference.py PROBE [CASES]

Every case is written as a text file, run through the C probe (sg_metrics_probe) with a
random chunk size, and each metric must agree with scikit-learn within 1e-6 absolute; the
confusion matrix must agree exactly. Probabilities and predictions are float32 in C, so the
reference gets the same float32 values promoted to float64 (log_loss eps = float64 eps).
"""
import json
import math
import os
import warnings
import subprocess
import sys
import tempfile

import numpy as np
import sklearn
from sklearn import metrics as skm

TOL = 1e-6


def write_case(path, task, k, y_true, y_pred, w, proba=None, pred=None):
    with open(path, "w") as f:
        n = len(y_true)
        f.write(f"{task} {k} {n} {int(w is not None)}\n")
        for i in range(n):
            if task == "regression":
                parts = [repr(float(y_true[i])), repr(float(pred[i]))]
            else:
                parts = [str(int(y_true[i])), str(int(y_pred[i]))]
            if w is not None:
                parts.append(repr(float(w[i])))
            if proba is not None:
                parts.extend(repr(float(p)) for p in proba[i])
            f.write(" ".join(parts) + "\n")


def rand_proba(rng, n, k, y, style):
    """float32 probabilities, some saturated at 0/1, some rounded so scores tie."""
    logits = rng.normal(size=(n, k)) * rng.uniform(0.5, 8)
    logits[np.arange(n), y] += rng.uniform(0, 3)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if style == "round":
        p = np.round(p, int(rng.integers(1, 3)))
    elif style == "extreme":
        p = np.where(rng.random(p.shape) < 0.2, np.round(p), p)
        p[rng.random(n) < 0.05] = 0.0
    return p.astype(np.float32)


def expected_classification(task, k, y, yp, proba, w):
    p64 = proba.astype(np.float64)
    e = {"accuracy": skm.accuracy_score(y, yp, sample_weight=w)}
    # Every two-class classifier (binary, or multiclass of 2 classes) has the binary metrics
    # with class 1 positive, and every classifier the averaged F1s.
    if k == 2:
        e["precision"] = skm.precision_score(y, yp, sample_weight=w, zero_division=0)
        e["recall"] = skm.recall_score(y, yp, sample_weight=w, zero_division=0)
        e["f1"] = skm.f1_score(y, yp, sample_weight=w, zero_division=0)
        if len(np.unique(y)) == 2:
            auc = skm.roc_auc_score(y, p64[:, 1], sample_weight=w)
            e["roc_auc"] = auc if np.isfinite(auc) else None  # a class of zero weight
        else:
            e["roc_auc"] = None
        e["average_precision"] = skm.average_precision_score(y, p64[:, 1], sample_weight=w)
    for avg in ("macro", "micro", "weighted"):
        e["f1_" + avg] = skm.f1_score(y, yp, average=avg, sample_weight=w, zero_division=0)
    e["log_loss"] = skm.log_loss(y, p64, sample_weight=w, labels=list(range(k)))
    e["confusion_matrix"] = skm.confusion_matrix(y, yp, labels=list(range(k)), sample_weight=w)
    # The correctly rounded weighted cell sums, to judge cells where summation order matters.
    exact = np.zeros((k, k))
    for t in range(k):
        for q in range(k):
            sel = (y == t) & (yp == q)
            exact[t, q] = math.fsum(w[sel]) if w is not None else sel.sum()
    e["confusion_matrix_exact"] = exact
    return e


def expected_regression(y, pred, w):
    p64 = pred.astype(np.float64)
    mse = skm.mean_squared_error(y, p64, sample_weight=w)
    r2 = skm.r2_score(y, p64, sample_weight=w) if len(y) >= 2 else None
    live = y if w is None else y[w > 0]
    if r2 is not None and np.all(live == live[0]):
        # Targets constant over the rows with weight: the denominator is exactly 0 and
        # force_finite gives 1 or 0 (rows of zero weight do not count).
        # sklearn agrees when np.average(y, weights=w) rounds back to y[0], which is always
        # so without weights; with fractional weights its mean can be off by an ulp and
        # r2 becomes about -1e31, which the kernel deliberately does not reproduce.
        rule = 1.0 if np.all((p64 == y) | (w == 0 if w is not None else False)) else 0.0
        assert w is not None or r2 == rule, (r2, rule)
        r2 = rule
    return {
        "mean_absolute_error": skm.mean_absolute_error(y, p64, sample_weight=w),
        "mean_squared_error": mse,
        "root_mean_squared_error": skm.mean_squared_error(y, p64, sample_weight=w, squared=False),
        "r2_score": r2,
        "max_error": skm.max_error(y, p64),
    }


def make_case(rng, i):
    kind = ("binary", "multiclass", "regression")[i % 3]
    n = int(rng.choice([1, 2, 5, 37, 500, 3000]))
    weighted = rng.random() < 0.5
    w = None
    if weighted:
        w = rng.uniform(0, 3, n)
        w[rng.random(n) < 0.1] = 0.0
        if w.sum() == 0:
            w[0] = 1.0
        if rng.random() < 0.3:
            w = np.round(w)
            if w.sum() == 0:
                w[0] = 2.0
    if kind == "regression":
        y = rng.normal(size=n) * 10
        if rng.random() < 0.15:
            y = np.full(n, float(rng.integers(-3, 3)))  # constant target: force_finite
        pred = (y + rng.normal(size=n) * rng.uniform(0, 5)).astype(np.float32)
        if rng.random() < 0.1:
            pred = y.astype(np.float32)
        return kind, 0, y, None, w, None, pred
    # multiclass of 2 classes too: an XGBoost multi:softprob with num_class 2, which argmax labels
    k = 2 if kind == "binary" else int(rng.choice([2, 3, 4, 5, 6, 7]))
    present = rng.choice(k, size=max(1, int(rng.integers(1, k + 1))), replace=False)
    if kind == "binary" and rng.random() < 0.75:
        present = np.arange(2)
    y = rng.choice(present, n).astype(np.int32)
    proba = rand_proba(rng, n, k, y, rng.choice(["plain", "round", "extreme"]))
    if kind == "binary":
        yp = (proba[:, 1] >= 0.5).astype(np.int32)
    else:
        yp = proba.argmax(axis=1).astype(np.int32)
    return kind, k, y, yp, w, proba, None


def compare(case_id, got, exp):
    errors = []
    for name, want in exp.items():
        if name == "confusion_matrix_exact":
            continue
        if name not in got:
            errors.append(f"{name} missing")
            continue
        have = got[name]
        if name == "confusion_matrix":
            have = np.array(have, dtype=np.float64)
            exact = exp["confusion_matrix_exact"]
            if np.all(exact == np.round(exact)) and np.all(exact < 2**53):
                # Counts and integer weights: every sum is exact, so equality is required.
                ok = np.array_equal(have, want.astype(np.float64))
            else:
                # Fractional weights: sklearn adds in row order, we use compensated sums.
                # Require sklearn within 1e-9 relative and ours within 2 ulp of exact.
                ok = np.allclose(have, want, rtol=1e-9, atol=0) and np.all(
                    np.abs(have - exact) <= 2 * np.spacing(np.abs(exact))
                )
            if not ok:
                errors.append(f"confusion_matrix {have.tolist()} != {want.tolist()}")
        elif want is None or have is None:
            if want is not None or have is not None:
                errors.append(f"{name}: got {have}, sklearn {want}")
        elif not abs(have - want) <= TOL:
            errors.append(f"{name}: got {have!r}, sklearn {want!r}")
    extra = set(got) - set(exp) - {"example_count", "confusion_matrix_exact"}
    if extra:
        errors.append(f"unexpected metrics {sorted(extra)}")
    return [f"case {case_id}: {e}" for e in errors]


def main():
    probe = sys.argv[1]
    cases = int(sys.argv[2]) if len(sys.argv) > 2 else 90
    assert sklearn.__version__ == "1.2.1", sklearn.__version__
    warnings.simplefilter("ignore")  # undefined-metric warnings are part of the cases
    rng = np.random.default_rng(int(os.environ.get("SG_METRICS_SEED", "20240531")))
    failures = []
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "case.txt")
        for i in range(cases):
            kind, k, y, yp, w, proba, pred = make_case(rng, i)
            write_case(path, kind, k, y, yp, w, proba, pred)
            chunk = str(int(rng.choice([1, 3, 64, 1000, 100000])))
            out = subprocess.run([probe, path, "--chunk", chunk], capture_output=True, text=True)
            if out.returncode != 0:
                failures.append(f"case {i}: probe exit {out.returncode}: {out.stderr.strip()}")
                continue
            got = json.loads(out.stdout)
            if got.get("example_count") != len(y):
                failures.append(f"case {i}: example_count {got.get('example_count')}")
            if kind == "regression":
                exp = expected_regression(y, pred, w)
            else:
                exp = expected_classification(kind, k, y, yp, proba, w)
            failures += compare(i, got, exp)
            counts[kind] = counts.get(kind, 0) + 1
        # Weights far from 1 (uniform or not): ROC AUC and AP do not depend on their scale, and
        # scikit-learn, which divides before it multiplies, gives them; products of weight
        # sums had overflowed (or underflowed) and left them undefined.
        for j, factor in enumerate((1e-310, 1e-200, 1e200, 1e300)):
            for uniform in (True, False):
                n = 800
                y = rng.integers(0, 2, n).astype(np.int32)
                proba = rand_proba(rng, n, 2, y, "round" if uniform else "plain")
                yp = (proba[:, 1] >= 0.5).astype(np.int32)
                w = (np.ones(n) if uniform else rng.uniform(0.1, 3, n)) * factor
                write_case(path, "binary", 2, y, yp, w, proba, None)
                out = subprocess.run([probe, path], capture_output=True, text=True)
                cid = f"scaled {factor:g} {'uniform' if uniform else 'varied'}"
                if out.returncode != 0:
                    failures.append(f"{cid}: probe exit {out.returncode}: {out.stderr.strip()}")
                    continue
                got = json.loads(out.stdout)
                exp = expected_classification("binary", 2, y, yp, proba, w)
                failures += compare(cid, {k: got.get(k) for k in ("roc_auc", "average_precision")},
                                    {k: exp[k] for k in ("roc_auc", "average_precision")})
                counts["scaled"] = counts.get("scaled", 0) + 1
        # Regression with weights far from 1, subnormal ones included: MSE, MAE and r2 do not
        # depend on the scale, and a weighted square is w * (d * d) as numpy orders it
        # ((w * d) * d had put MSE 1e-8 of its value off with weights near 1e-320).
        for factor in (1e-320, 1e-300, 1e-200, 1e200):
            n = 150
            y = rng.normal(size=n) * 1e4
            pred = (y + rng.normal(size=n) * 1e3).astype(np.float32)
            w = rng.uniform(0.1, 1, n) * factor
            write_case(path, "regression", 0, y, None, w, None, pred)
            out = subprocess.run([probe, path], capture_output=True, text=True)
            cid = f"regression scaled {factor:g}"
            if out.returncode != 0:
                failures.append(f"{cid}: probe exit {out.returncode}: {out.stderr.strip()}")
                continue
            failures += compare(cid, json.loads(out.stdout), expected_regression(y, pred, w))
            counts["scaled"] = counts.get("scaled", 0) + 1
        # Weights whose sum overflows a double: refused, and not as "all weights are zero".
        y = np.array([0, 1, 0, 1], np.int32)
        proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9]], np.float32)
        write_case(path, "binary", 2, y, (proba[:, 1] >= 0.5).astype(np.int32), np.full(4, 1e308),
                   proba, None)
        out = subprocess.run([probe, path], capture_output=True, text=True)
        if out.returncode == 0 or "more than the largest double" not in out.stderr:
            failures.append(f"weights summing past DBL_MAX: exit {out.returncode}, {out.stderr!r}")
    for f in failures[:30]:
        print("FAIL", f)
    print(f"{cases} cases {counts}: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
