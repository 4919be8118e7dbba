"""Fits small scikit-learn estimators and dumps, for each, the parameters the
kernels need plus float32 inputs and scikit-learn's float64 predictions, in a
plain binary layout read by sklearn_ref_check.c (independent of the HDF5
model format, so the kernels are checked against scikit-learn on their own).

usage: /usr/bin/python3 sklearn_ref.py OUTDIR

Per estimator NAME: NAME.model, NAME.x, NAME.expect (all little-endian)
  .model: int32 task, n_classes, n_features, n_layers, link, has_scaler
          [float32 mean[d], float32 scale[d]]
          per layer: int32 n_in, n_out, act; float32 W[n_in][n_out]; float32 b[n_out]
  .x:      int32 n, d; float32 X[n][d]
  .expect: int32 n, w; float64 P[n][w]   (predict_proba, or predict as [n][1])
"""
import os
import struct
import sys
import warnings

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

TASK = {"binary": 0, "multiclass": 1, "regression": 2}
ACT = {"identity": 0, "relu": 1, "tanh": 2, "logistic": 3}
LINK = {"identity": 0, "sigmoid": 1, "softmax": 2}


def layers_of(est):
    """[(W [n_in][n_out], b, act)], link for a fitted linear model or MLP."""
    if isinstance(est, (MLPClassifier, MLPRegressor)):
        acts = [est.activation] * (len(est.coefs_) - 1) + ["identity"]
        layers = list(zip(est.coefs_, est.intercepts_, acts))
        link = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity"}[est.out_activation_]
        return layers, link
    if isinstance(est, LogisticRegression):
        k = est.coef_.shape[0]
        return [(est.coef_.T, est.intercept_, "identity")], ("sigmoid" if k == 1 else "softmax")
    if isinstance(est, Ridge):
        return [(est.coef_.reshape(-1, 1), np.atleast_1d(est.intercept_), "identity")], "identity"
    raise SystemExit(f"sklearn_ref.py: unsupported estimator {type(est).__name__}")


def dump(outdir, name, model, X, task, n_classes):
    scaler, est = (model.steps[0][1], model.steps[-1][1]) if isinstance(model, Pipeline) else (None, model)
    layers, link = layers_of(est)
    X32 = X.astype(np.float32)
    X64 = X32.astype(np.float64)  # scikit-learn sees exactly the floats the kernels see
    expect = model.predict_proba(X64) if task != "regression" else model.predict(X64).reshape(-1, 1)
    with open(os.path.join(outdir, name + ".model"), "wb") as f:
        f.write(struct.pack("<6i", TASK[task], n_classes, X.shape[1], len(layers), LINK[link], scaler is not None))
        if scaler is not None:
            f.write(scaler.mean_.astype("<f4").tobytes())
            f.write(scaler.scale_.astype("<f4").tobytes())
        for W, b, act in layers:
            f.write(struct.pack("<3i", W.shape[0], W.shape[1], ACT[act]))
            f.write(np.ascontiguousarray(W, dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(b, dtype="<f4").tobytes())
    with open(os.path.join(outdir, name + ".x"), "wb") as f:
        f.write(struct.pack("<2i", *X32.shape))
        f.write(np.ascontiguousarray(X32, dtype="<f4").tobytes())
    with open(os.path.join(outdir, name + ".expect"), "wb") as f:
        f.write(struct.pack("<2i", *expect.shape))
        f.write(np.ascontiguousarray(expect, dtype="<f8").tobytes())


def main():
    outdir = sys.argv[1]
    warnings.simplefilter("ignore", ConvergenceWarning)
    # Unscaled, shifted features so the StandardScaler step matters.
    Xb, yb = make_classification(n_samples=400, n_features=12, n_informative=6, random_state=1)
    Xb = Xb * 3.0 + 5.0
    Xm, ym = make_classification(n_samples=400, n_features=10, n_informative=6, n_classes=4, random_state=2)
    Xr, yr = make_regression(n_samples=400, n_features=9, noise=5.0, random_state=3)
    mlp = dict(max_iter=300, random_state=0)
    cases = [
        ("logreg_pipeline", Pipeline([("s", StandardScaler()), ("m", LogisticRegression(C=10.0))]), Xb, yb, "binary", 2),
        ("logreg_multinomial", LogisticRegression(max_iter=500), Xm, ym, "multiclass", 4),
        ("mlp_relu_binary", Pipeline([("s", StandardScaler()), ("m", MLPClassifier((32, 17), activation="relu", **mlp))]), Xb, yb, "binary", 2),
        ("mlp_tanh_multiclass", MLPClassifier((20,), activation="tanh", **mlp), Xm, ym, "multiclass", 4),
        ("mlp_logistic_binary", MLPClassifier((15,), activation="logistic", **mlp), Xb, yb, "binary", 2),
        ("mlp_identity_multiclass", MLPClassifier((8,), activation="identity", **mlp), Xm, ym, "multiclass", 4),
        ("mlp_regressor", Pipeline([("s", StandardScaler()), ("m", MLPRegressor((24, 24), **mlp))]), Xr, yr, "regression", 0),
        ("ridge", Ridge(alpha=1.0), Xr, yr, "regression", 0),
    ]
    for name, model, X, y, task, k in cases:
        model.fit(X, y)
        dump(outdir, name, model, X, task, k)
        print(name)


if __name__ == "__main__":
    main()
