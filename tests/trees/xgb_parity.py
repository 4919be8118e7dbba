#!/usr/bin/python3
"""Reference test: `stagegate eval` on XGBoost JSON models against xgboost itself.

For each supported objective (and the dart booster), train a small model with
xgboost on data with missing values (NaN), save it with Booster.save_model, run
`stagegate eval --json --predictions` under every kernel variant this CPU runs,
and check:
- probabilities / predictions within 1e-6 absolute of Booster.predict and of
  inplace_predict (multi:softmax: labels equal to predict, probabilities equal
  to the softmax of the output margin; binary:logitraw: p1 = sigmoid(margin));
- every variant's output file holds the same bits as the scalar reference's;
- metrics equal sklearn.metrics on stagegate's own outputs.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import xgboost as xgb
from sklearn import metrics as skm

from kernel_variants import runnable_variants

SG = os.environ["STAGEGATE_BIN"]
TOL = 1e-6
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def variants():
    return runnable_variants(SG, check)


def data(rng, n, d, nan_frac=0.1):
    X = rng.normal(size=(n, d)).astype(np.float32)
    mask = rng.random(size=(n, d)) < nan_frac
    mask[:, 0] = False  # keep one always-present column to learn from
    X[mask] = np.nan
    return X


def write_set(path, X, y):
    with h5py.File(path, "w") as f:
        f["X"] = X
        f["y"] = y


def run_eval(tmp, model, dataset, isa):
    pred = os.path.join(tmp, "pred_%s.h5" % isa)
    p = subprocess.run([SG, "eval", "--model", model, "--data", dataset, "--json",
                        "--predictions", pred], capture_output=True, text=True,
                       env=dict(os.environ, STAGEGATE_ISA=isa))
    if p.returncode != 0:
        check(False, "%s (%s): eval exit %d: %s" % (model, isa, p.returncode, p.stderr.strip()))
        return None, None
    with h5py.File(pred, "r") as f:
        out = {k: f[k][()] for k in f.keys()}
    return json.loads(p.stdout), out


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


def softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def case(tmp, name, params, X, y, Xv, yv, rounds=25, base_list=0, ubj=False, ftypes=None,
         max_steps=None):
    """ubj: the booster saved as UBJSON (.ubj) is the model under test, and its outputs must
    equal, bit for bit, those of the same booster saved as JSON. ftypes: XGBoost feature types
    ("c" categorical, "q" numerical); max_steps: the longest walk the model may take once its
    categorical splits are laid out (so that the case is known to run on the level layouts)."""
    cat = dict(feature_types=ftypes, enable_categorical=True) if ftypes else {}
    booster = xgb.train(params, xgb.DMatrix(X, label=y, **cat), num_boost_round=rounds)
    model = os.path.join(tmp, name + ".json")
    booster.save_model(model)
    json_model = model
    if ftypes:
        trees = json.load(open(model))["learner"]["gradient_booster"]
        trees = (trees["gbtree"] if "gbtree" in trees else trees)["model"]["trees"]
        n_cat = sum(sum(t.get("split_type", [])) for t in trees)
        n_many = sum(sum(1 for k in t.get("categories_sizes", []) if k > 1) for t in trees)
        print("%-18s %d categorical splits, %d with more than one category" % (name, n_cat, n_many))
        check(n_cat > 0, "%s: the model has no categorical split" % name)
    if ubj:
        model = os.path.join(tmp, name + ".ubj")
        booster.save_model(model)
        with open(model, "rb") as fh:
            check(fh.read(2) != b'{"', "%s: XGBoost wrote JSON, not UBJSON" % name)
    if base_list:
        # XGBoost 2.1 and later write base_score as a list in a string, "[5E-1]", one entry
        # per output (3.1 may fit one per class); the reference stays the booster itself.
        doc = json.load(open(model))
        lmp = doc["learner"]["learner_model_param"]
        lmp["base_score"] = "[" + ",".join([lmp["base_score"]] * base_list) + "]"
        json.dump(doc, open(model, "w"))
    dataset = os.path.join(tmp, name + "_val.h5")
    write_set(dataset, Xv, yv)
    obj = params["objective"]
    dm = xgb.DMatrix(Xv, **cat)
    ref = booster.predict(dm)
    linear = params.get("booster") == "gblinear"
    # gblinear has no inplace_predict; its reference is Booster.predict alone.
    ref_inplace = ref if linear else booster.inplace_predict(Xv)
    if obj == "multi:softmax":
        labels_ref = ref.astype(np.int64)
        ref = softmax(booster.predict(dm, output_margin=True))
        ref_inplace = ref if linear else softmax(booster.inplace_predict(Xv, predict_type="margin"))
    elif obj == "binary:logitraw":
        ref, ref_inplace = sigmoid(ref), sigmoid(ref_inplace)
    outputs = {}
    for isa in ISAS:
        doc, out = run_eval(tmp, model, dataset, isa)
        if out is None:
            continue
        outputs[isa] = out
        if max_steps is not None:
            desc = doc["model"]["description"]
            steps = int(desc.split("max depth ")[1].split(",")[0])
            check(steps <= max_steps, "%s: walks of %d steps, expected at most %d (%s)" %
                  (name, steps, max_steps, desc))
        if "proba" in out:
            got = out["proba"].astype(np.float64)
            want = np.stack([1 - ref, ref], axis=1) if got.shape[1] == 2 and ref.ndim == 1 else ref
            want_i = (np.stack([1 - ref_inplace, ref_inplace], axis=1)
                      if got.shape[1] == 2 and ref_inplace.ndim == 1 else ref_inplace)
            err = np.abs(got - want).max()
            err_i = np.abs(got - want_i).max()
            print("%-18s %-7s max |proba - predict| %.3g, - inplace_predict %.3g" % (name, isa, err, err_i))
            check(err <= TOL, "%s %s: proba differs from Booster.predict by %g" % (name, isa, err))
            check(err_i <= TOL, "%s %s: proba differs from inplace_predict by %g" % (name, isa, err_i))
            if obj == "multi:softmax":
                # Labels equal unless two classes tie within float rounding.
                top2 = np.sort(got, axis=1)[:, -2:]
                clear = top2[:, 1] - top2[:, 0] > 1e-6
                check(np.array_equal(out["label"][clear], labels_ref[clear]),
                      "%s %s: labels differ from Booster.predict" % (name, isa))
            m = doc["metrics"]
            lab = out["label"]
            check(abs(m["accuracy"] - skm.accuracy_score(yv, lab)) <= 1e-12,
                  "%s %s: accuracy differs from sklearn" % (name, isa))
            if got.shape[1] == 2:
                check(abs(m["f1"] - skm.f1_score(yv, lab)) <= 1e-12, "%s %s: f1" % (name, isa))
                check(abs(m["roc_auc"] - skm.roc_auc_score(yv, got[:, 1])) <= 1e-9,
                      "%s %s: roc_auc" % (name, isa))
            else:
                check(abs(m["f1_macro"] - skm.f1_score(yv, lab, average="macro")) <= 1e-12,
                      "%s %s: f1_macro" % (name, isa))
        else:
            got = out["prediction"].astype(np.float64)
            err = np.abs(got - ref).max()
            err_i = np.abs(got - ref_inplace).max()
            print("%-18s %-7s max |prediction - predict| %.3g, - inplace_predict %.3g" % (name, isa, err, err_i))
            check(err <= TOL, "%s %s: prediction differs from Booster.predict by %g" % (name, isa, err))
            check(err_i <= TOL, "%s %s: prediction differs from inplace_predict by %g" % (name, isa, err_i))
            if linear and obj == "reg:squarederror":
                # The margin summed in XGBoost's order, in float: the same bits.
                check(np.array_equal(out["prediction"], booster.predict(dm).astype(np.float32)),
                      "%s %s: gblinear predictions are not XGBoost's bits" % (name, isa))
            m = doc["metrics"]
            for key, fn in (("mean_absolute_error", skm.mean_absolute_error),
                            ("mean_squared_error", skm.mean_squared_error),
                            ("r2_score", skm.r2_score), ("max_error", skm.max_error)):
                want_m = fn(yv, got)
                check(abs(m[key] - want_m) <= 1e-9 * max(1.0, abs(want_m)),
                      "%s %s: %s %r vs sklearn %r" % (name, isa, key, m[key], want_m))
    for isa, out in outputs.items():
        for k in out:
            check(out[k].tobytes() == outputs["scalar"][k].tobytes(),
                  "%s: %s /%s is not bit-identical to scalar" % (name, isa, k))
    if ubj and "scalar" in outputs:
        doc_j, out_j = run_eval(tmp, json_model, dataset, "scalar")
        for k in out_j or {}:
            check(out_j[k].tobytes() == outputs["scalar"][k].tobytes(),
                  "%s: /%s from the UBJSON file differs from the JSON file's" % (name, k))
        print("%-18s UBJSON and JSON files give the same bits" % name)


ISAS = variants()
print("variants:", ISAS)
rng = np.random.default_rng(13)
n, nv, d = 4000, 3000, 12
X, Xv = data(rng, n, d), data(rng, nv, d)


def target_binary(X):
    return ((np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1], nan=1.0) -
             0.3 * np.isnan(X[:, 2])) > 0).astype(np.int32)


def target_multi(X):
    return (np.digitize(np.nan_to_num(X[:, 0]) + 0.3 * np.nan_to_num(X[:, 3]), [-0.5, 0.5])).astype(np.int32)


def target_reg(X):
    return (2 * np.nan_to_num(X[:, 0]) + np.sin(np.nan_to_num(X[:, 1])) + 0.1 * np.isnan(X[:, 4])).astype(np.float64)


with tempfile.TemporaryDirectory() as tmp:
    yb, ybv = target_binary(X), target_binary(Xv)
    ym, ymv = target_multi(X), target_multi(Xv)
    yr, yrv = target_reg(X), target_reg(Xv)
    base = {"max_depth": 6, "eta": 0.3, "seed": 1}
    case(tmp, "binary_logistic", dict(base, objective="binary:logistic"), X, yb, Xv, ybv)
    case(tmp, "binary_base", dict(base, objective="binary:logistic", base_score=0.3), X, yb, Xv, ybv)
    case(tmp, "binary_logitraw", dict(base, objective="binary:logitraw", base_score=0.2), X, yb, Xv, ybv)
    case(tmp, "binary_base_list", dict(base, objective="binary:logistic", base_score=0.3), X, yb, Xv, ybv,
         base_list=1)
    # binary:hinge predicts the class: p1 is 1 when the margin is above 0.
    case(tmp, "binary_hinge", dict(base, objective="binary:hinge"), X, yb, Xv, ybv)
    case(tmp, "binary_hinge_base", dict(base, objective="binary:hinge", base_score=0.2, max_depth=2),
         X, yb, Xv, ybv, rounds=4)
    case(tmp, "multi_softprob", dict(base, objective="multi:softprob", num_class=3), X, ym, Xv, ymv)
    case(tmp, "multi_base_list", dict(base, objective="multi:softprob", num_class=3), X, ym, Xv, ymv,
         base_list=3)
    case(tmp, "multi_softmax", dict(base, objective="multi:softmax", num_class=3), X, ym, Xv, ymv)
    case(tmp, "reg_squarederror", dict(base, objective="reg:squarederror", base_score=1.5), X, yr, Xv, yrv)
    case(tmp, "reg_base_list", dict(base, objective="reg:squarederror", base_score=1.5), X, yr, Xv, yrv,
         base_list=1)
    yl = 1 / (1 + np.exp(-yr))
    case(tmp, "reg_logistic", dict(base, objective="reg:logistic"), X, yl, Xv, 1 / (1 + np.exp(-yrv)))
    case(tmp, "dart_binary", dict(base, booster="dart", objective="binary:logistic", rate_drop=0.3,
                                  skip_drop=0.0), X, yb, Xv, ybv)
    case(tmp, "dart_multi", dict(base, booster="dart", objective="multi:softprob", num_class=3,
                                 rate_drop=0.2), X, ym, Xv, ymv)
    # Depth 7 and 8: the 8-level layout of the AVX-512 batch kernel.
    case(tmp, "binary_depth8", dict(base, objective="binary:logistic", max_depth=8), X, yb, Xv, ybv)
    case(tmp, "multi_depth7", dict(base, objective="multi:softprob", num_class=3, max_depth=7),
         X, ym, Xv, ymv)
    # Log-link regression: exp(margin), from log(base_score); and the other identity ones.
    yc = np.random.default_rng(3).poisson(np.exp(0.4 * np.nan_to_num(X[:, 0]))).astype(np.float64)
    ycv = np.random.default_rng(4).poisson(np.exp(0.4 * np.nan_to_num(Xv[:, 0]))).astype(np.float64)
    yg, ygv = np.exp(yr / 4), np.exp(yrv / 4)
    case(tmp, "count_poisson", dict(base, objective="count:poisson"), X, yc, Xv, ycv)
    case(tmp, "reg_gamma", dict(base, objective="reg:gamma", base_score=2.0), X, yg, Xv, ygv)
    case(tmp, "reg_tweedie", dict(base, objective="reg:tweedie", tweedie_variance_power=1.3), X, yc,
         Xv, ycv)
    case(tmp, "reg_squaredlogerror", dict(base, objective="reg:squaredlogerror"), X, yg, Xv, ygv)
    case(tmp, "reg_pseudohuber", dict(base, objective="reg:pseudohubererror"), X, yr, Xv, yrv)
    case(tmp, "reg_absoluteerror", dict(base, objective="reg:absoluteerror"), X, yr, Xv, yrv)
    # The same boosters saved as UBJSON (XGBoost's binary JSON, its default from 2.1).
    case(tmp, "ubj_binary", dict(base, objective="binary:logistic"), X, yb, Xv, ybv, ubj=True)
    case(tmp, "ubj_multi", dict(base, objective="multi:softprob", num_class=3), X, ym, Xv, ymv,
         ubj=True)
    case(tmp, "ubj_reg", dict(base, objective="reg:squarederror", base_score=1.5), X, yr, Xv, yrv,
         ubj=True)
    case(tmp, "ubj_dart", dict(base, booster="dart", objective="binary:logistic", rate_drop=0.3,
                               skip_drop=0.0), X, yb, Xv, ybv, ubj=True)
    case(tmp, "deep_forest", dict(objective="binary:logistic", max_depth=12, num_parallel_tree=4,
                                  subsample=0.8, colsample_bynode=0.8, eta=1.0, seed=3),
         X, yb, Xv, ybv, rounds=3)

    # gblinear: a linear model per output group (weights, then biases), missing features
    # adding nothing; the same objectives and links as the trees.
    lin = {"booster": "gblinear", "eta": 0.5, "seed": 1}
    case(tmp, "linear_binary", dict(lin, objective="binary:logistic"), X, yb, Xv, ybv, rounds=20)
    case(tmp, "linear_multi", dict(lin, objective="multi:softprob", num_class=3), X, ym, Xv, ymv,
         rounds=20)
    case(tmp, "linear_reg", dict(lin, objective="reg:squarederror", base_score=1.5), X, yr, Xv, yrv,
         rounds=20)
    case(tmp, "linear_shotgun", dict(lin, objective="reg:squarederror", updater="shotgun",
                                     alpha=0.1, reg_lambda=1.0), X, yr, Xv, yrv, rounds=10)
    case(tmp, "linear_poisson", dict(lin, objective="count:poisson", eta=0.1), X, yc, Xv, ycv,
         rounds=20)
    case(tmp, "linear_hinge", dict(lin, objective="binary:hinge"), X, yb, Xv, ybv, rounds=10)
    case(tmp, "linear_ubj", dict(lin, objective="multi:softmax", num_class=3), X, ym, Xv, ymv,
         rounds=10, ubj=True)

    # Categorical splits (enable_categorical): one-hot and partition-based, on category codes
    # the model has seen and on ones it has not (unseen, negative, fractional, 2^24 and above,
    # missing), which XGBoost sends left, or down the default branch when missing.
    def cat_data(rng, n):
        C = np.zeros((n, 6), np.float32)
        C[:, 0] = rng.integers(0, 6, n)      # few categories: one-hot splits
        C[:, 1] = rng.normal(size=n)
        C[:, 2] = rng.integers(0, 40, n)     # partition splits over many runs
        C[:, 3] = rng.integers(0, 300, n)
        C[:, 4] = rng.normal(size=n)
        C[:, 5] = rng.integers(0, 3, n)
        for j in (0, 2, 3, 5):
            C[rng.random(n) < 0.06, j] = np.nan
        return C

    def cat_unseen(rng, C):
        C = C.copy()
        odd = np.array([-3, -0.5, -0.0, 0.5, 2.7, 7, 41, 299.5, 1e6, 2 ** 24 - 1, 2 ** 24, 2 ** 25,
                        3e9], np.float32)
        for j in (0, 2, 3, 5):
            m = rng.random(len(C)) < 0.08
            C[m, j] = rng.choice(odd, m.sum())
        return C

    def cat_target(C):
        c0, c2, c3, c5 = (np.nan_to_num(C[:, j], nan=-1) for j in (0, 2, 3, 5))
        s = (np.isin(c0, [1, 4]) + 0.8 * np.isin(c2 % 5, [0, 3]) + 0.6 * np.isin(c3 % 7, [2, 5]) +
             0.5 * (c5 == 1) + 0.7 * np.nan_to_num(C[:, 1]) + 0.3 * np.nan_to_num(C[:, 4]))
        return s

    crng = np.random.default_rng(21)
    C, Cv = cat_data(crng, 6000), cat_unseen(crng, cat_data(crng, 4000))
    cs, csv = cat_target(C), cat_target(Cv)
    cb, cbv = (cs > 1.2).astype(np.int32), (csv > 1.2).astype(np.int32)
    cm, cmv = np.digitize(cs, [0.8, 1.6]).astype(np.int32), np.digitize(csv, [0.8, 1.6]).astype(np.int32)
    ft = ["c", "q", "c", "c", "q", "c"]
    cbase = dict(base, tree_method="hist")
    # Shallow one-hot trees: short enough walks for the level layouts of the batch kernels.
    case(tmp, "cat_onehot_shallow", dict(cbase, objective="binary:logistic", max_depth=2,
                                         max_cat_to_onehot=8), C[:, :2], cb, Cv[:, :2], cbv,
         ftypes=ft[:2], max_steps=6)
    case(tmp, "cat_onehot_depth8", dict(cbase, objective="binary:logistic", max_depth=3,
                                        max_cat_to_onehot=64), C[:, [0, 1, 4, 5]], cb,
         Cv[:, [0, 1, 4, 5]], cbv, ftypes=["c", "q", "q", "c"], max_steps=8)
    case(tmp, "cat_partition", dict(cbase, objective="binary:logistic", max_cat_to_onehot=1),
         C, cb, Cv, cbv, ftypes=ft)
    case(tmp, "cat_partition_approx", dict(cbase, objective="binary:logistic", tree_method="approx",
                                           max_cat_to_onehot=1, max_depth=4), C, cb, Cv, cbv,
         ftypes=ft, rounds=15)
    case(tmp, "cat_multi", dict(cbase, objective="multi:softprob", num_class=3, max_cat_to_onehot=4),
         C, cm, Cv, cmv, ftypes=ft, rounds=12)
    case(tmp, "cat_reg_deep", dict(cbase, objective="reg:squarederror", max_depth=10,
                                   max_cat_to_onehot=1, max_cat_threshold=128), C, cs, Cv, csv,
         ftypes=ft, rounds=10)
    case(tmp, "cat_dart", dict(cbase, booster="dart", objective="binary:logistic", rate_drop=0.3,
                               skip_drop=0.0, max_cat_to_onehot=1), C, cb, Cv, cbv, ftypes=ft,
         rounds=12)
    case(tmp, "cat_ubj", dict(cbase, objective="binary:logistic", max_cat_to_onehot=1), C, cb, Cv,
         cbv, ftypes=ft, ubj=True)

    # Early stopping keeps every tree grown and records the best round. A model saved by the
    # scikit-learn API predicts, once loaded back into its estimator, with the rounds up to
    # best_iteration (and so does MLflow's xgboost flavour, which serves that estimator); a
    # Booster saved by xgb.train predicts with every tree. stagegate must give each the
    # predictions of the Python object that saved it.
    def early(name, est, y_fit, yv_fit, ubj=False):
        est.fit(X[:3000], y_fit[:3000], eval_set=[(X[3000:], y_fit[3000:])], verbose=False)
        model = os.path.join(tmp, name + (".ubj" if ubj else ".json"))
        est.save_model(model)
        grown = len(est.get_booster().get_dump())
        loaded = type(est)()
        loaded.load_model(model)
        if hasattr(loaded, "predict_proba"):
            want = loaded.predict_proba(Xv).astype(np.float64)
            every = xgb.Booster(model_file=model).predict(xgb.DMatrix(Xv)).astype(np.float64)
            if every.ndim == 1:
                every = np.stack([1 - every, every], axis=1)
            key = "proba"
        else:
            want = loaded.predict(Xv).astype(np.float64)
            every = xgb.Booster(model_file=model).predict(xgb.DMatrix(Xv)).astype(np.float64)
            key = "prediction"
        layer = grown // est.get_booster().num_boosted_rounds()
        used = (est.best_iteration + 1) * layer
        check(used < grown, "%s: early stopping kept every tree (%d)" % (name, grown))
        check(np.abs(want - every).max() > 1e-3, "%s: the best rounds predict as all trees" % name)
        dataset = os.path.join(tmp, name + "_val.h5")
        write_set(dataset, Xv, yv_fit)
        for isa in ISAS:
            doc, out = run_eval(tmp, model, dataset, isa)
            if out is None:
                continue
            err = np.abs(out[key].astype(np.float64) - want).max()
            print("%-18s %-7s %d of %d trees, max |%s - estimator.predict| %.3g" %
                  (name, isa, used, grown, key, err))
            check(err <= TOL, "%s %s: %s differs from the estimator's by %g" % (name, isa, key, err))
            desc = doc["model"]["description"]
            check("%d trees of %d (best_iteration %d)" % (used, grown, est.best_iteration) in desc,
                  "%s: description %r" % (name, desc))
        # The same trees saved by xgb.train: a Booster, whose predict uses every tree.
        params = {k: v for k, v in est.get_xgb_params().items()
                  if v is not None and k not in ("early_stopping_rounds", "n_estimators")}
        if params["objective"].startswith("multi:"):
            params["num_class"] = int(y_fit.max()) + 1
        booster = xgb.train(params, xgb.DMatrix(X[:3000], label=y_fit[:3000]),
                            num_boost_round=30, evals=[(xgb.DMatrix(X[3000:], label=y_fit[3000:]), "v")],
                            early_stopping_rounds=3, verbose_eval=False)
        bmodel = os.path.join(tmp, name + "_booster.json")
        booster.save_model(bmodel)
        doc, out = run_eval(tmp, bmodel, dataset, ISAS[-1])
        if out is not None:
            ref = booster.predict(xgb.DMatrix(Xv)).astype(np.float64)
            got = out[key].astype(np.float64)
            if key == "proba" and ref.ndim == 1:
                got = got[:, 1]
            err = np.abs(got - ref).max()
            print("%-18s Booster (best_iteration %s): every tree, max |diff| %.3g" %
                  (name, booster.attr("best_iteration"), err))
            check(err <= TOL, "%s: a Booster's file differs from Booster.predict by %g" % (name, err))

    es = dict(n_estimators=150, early_stopping_rounds=4, max_depth=4, learning_rate=0.5)
    early("es_binary", xgb.XGBClassifier(**es), yb, ybv)
    early("es_binary_ubj", xgb.XGBClassifier(**es), yb, ybv, ubj=True)
    early("es_multi", xgb.XGBClassifier(**es), ym, ymv)
    early("es_reg", xgb.XGBRegressor(**es), yr, yrv)

    # An estimator's `missing` (saved in learner/attributes/scikit_learn): loaded back into
    # its class, predict reads a feature equal to it as missing, as it reads NaN; a Booster
    # reads only NaN. stagegate must predict as the estimator.
    def sentinel(name, est, Xs, ys, Xsv, ysv, ubj=False, desc_want=None):
        est.fit(Xs, ys)
        model = os.path.join(tmp, name + (".ubj" if ubj else ".json"))
        est.save_model(model)
        loaded = type(est)()
        loaded.load_model(model)
        if hasattr(loaded, "predict_proba"):
            want, key = loaded.predict_proba(Xsv).astype(np.float64), "proba"
        else:
            want, key = loaded.predict(Xsv).astype(np.float64), "prediction"
        try:
            booster = xgb.Booster(model_file=model).predict(xgb.DMatrix(Xsv)).astype(np.float64)
            if key == "proba" and booster.ndim == 1:
                booster = np.stack([1 - booster, booster], axis=1)
            check(np.abs(want - booster).max() > 1e-3,
                  "%s: the estimator's missing value changes nothing" % name)
        except xgb.core.XGBoostError:
            pass  # a Booster refuses infinite data outright: the sentinel changes everything
        dataset = os.path.join(tmp, name + "_val.h5")
        write_set(dataset, Xsv, ysv)
        for isa in ISAS:
            doc, out = run_eval(tmp, model, dataset, isa)
            if out is None:
                continue
            err = np.abs(out[key].astype(np.float64) - want).max()
            print("%-18s %-7s missing=%r, max |%s - estimator.predict| %.3g" %
                  (name, isa, est.missing, key, err))
            check(err <= TOL, "%s %s: %s differs from the estimator's by %g" % (name, isa, key, err))
            desc = doc["model"]["description"]
            want_desc = desc_want or "missing = %g" % est.missing
            check(want_desc in desc, "%s: description %r, wanted %r" % (name, desc, want_desc))

    counts = rng.integers(0, 4, size=(4000, 5)).astype(np.float32)  # 0 is common: a sentinel
    cy = ((counts[:, 0] == 0) | (counts[:, 1] > 2)).astype(np.int32)
    sentinel("miss0_binary", xgb.XGBClassifier(n_estimators=20, max_depth=3, missing=0.0),
             counts[:3000], cy[:3000], counts[3000:], cy[3000:])
    sentinel("miss0_multi_ubj", xgb.XGBClassifier(n_estimators=10, max_depth=3, missing=0.0),
             counts[:3000], counts[:3000, 2].astype(np.int32), counts[3000:],
             counts[3000:, 2].astype(np.int32), ubj=True)
    def with_sentinel(A, value, extra_col=None):
        A = A.copy()
        A[np.isnan(A)] = value  # where the data had NaN
        if extra_col is not None:
            A[:, extra_col][rng.random(len(A)) < 0.2] = value
        return A

    sent, sentv = with_sentinel(X, -999.0, 1), with_sentinel(Xv, -999.0, 1)
    sentinel("miss999_reg", xgb.XGBRegressor(n_estimators=25, max_depth=4, missing=-999.0),
             sent, yr, sentv, yrv)
    sentinel("miss999_linear", xgb.XGBRegressor(booster="gblinear", n_estimators=10,
                                                missing=-999.0), sent, yr, sentv, yrv)
    # An infinite sentinel is missing, not an input error.
    sentinel("missinf_binary", xgb.XGBClassifier(n_estimators=15, max_depth=3, missing=np.inf),
             with_sentinel(X, np.inf), yb, with_sentinel(Xv, np.inf), ybv)

    # A `missing` halfway between two float32s (1 + 2^-24, between 1.0f and its successor):
    # the estimator's predict reads the JSON text once to float32 (ties past the text's
    # exact value: 1.0000001f); rounded to a double first, the text is the tie, and ties to
    # even took 1.0f, so every row holding either value went down the other branch.
    one, above = np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))
    mid = rng.normal(size=(4000, 3)).astype(np.float32)
    mid[:, 0] = rng.choice(np.array([0.0, one, above, 2.0], dtype=np.float32), size=4000)
    my = ((mid[:, 0] == one) * 2 - (mid[:, 0] == above) * 2 + mid[:, 1]).astype(np.float32)
    sentinel("miss_midpoint_reg", xgb.XGBRegressor(n_estimators=20, max_depth=3,
                                                   missing=1.0 + 2.0 ** -24),
             mid[:3000], my[:3000], mid[3000:], my[3000:], desc_want="missing = 1.00000012")
    sentinel("miss_midpoint_bin", xgb.XGBClassifier(n_estimators=20, max_depth=3,
                                                    missing=1.0 + 2.0 ** -24),
             mid[:3000], (my[:3000] > 0).astype(np.int32), mid[3000:],
             (my[3000:] > 0).astype(np.int32), desc_want="missing = 1.00000012")

    # Thresholds a converter wrote as float64 midpoints of two float32s (Python's json writes
    # the shortest text for the double): XGBoost rounds the text once, to float32. Rounded to
    # a double first, the text lands on the tie and ties-to-even picks one side, where the
    # text is often past the midpoint: the threshold was then one float32 off XGBoost's, and a
    # row at it took the other branch (probabilities off by 0.75 in the attack's model).
    booster = xgb.train(dict(base, objective="binary:logistic"), xgb.DMatrix(X, label=yb), 25)
    doc = json.loads(booster.save_raw("json"))
    splits = []
    for t in doc["learner"]["gradient_booster"]["model"]["trees"]:
        for k, left in enumerate(t["left_children"]):
            if left == -1:
                continue
            a = np.float32(t["split_conditions"][k])
            b = np.nextafter(a, np.float32(np.inf))
            t["split_conditions"][k] = (float(a) + float(b)) / 2
            splits.append((t["split_indices"][k], a, b))
    model = os.path.join(tmp, "midpoints.json")
    with open(model, "w") as fh:
        json.dump(doc, fh)
    edited = xgb.Booster(model_file=model)
    read = [np.float32(c) for t in json.loads(edited.save_raw("json"))["learner"][
        "gradient_booster"]["model"]["trees"] for c, left in zip(t["split_conditions"],
                                                                 t["left_children"]) if left != -1]
    twice = sum(np.float32(c) != r for c, r in zip(
        (c for t in doc["learner"]["gradient_booster"]["model"]["trees"]
         for c, left in zip(t["split_conditions"], t["left_children"]) if left != -1), read))
    check(twice > 0, "midpoints: no threshold where rounding twice differs (the case is not met)")
    # Rows at each threshold's two float32 neighbours.
    rows = Xv[rng.integers(0, len(Xv), size=2 * len(splits))].copy()
    for i, (f, a, b) in enumerate(splits):
        rows[2 * i, f], rows[2 * i + 1, f] = a, b
    dataset = os.path.join(tmp, "midpoints_val.h5")
    write_set(dataset, rows, target_binary(rows))
    ref = edited.predict(xgb.DMatrix(rows)).astype(np.float64)
    for isa in ISAS:
        _, out = run_eval(tmp, model, dataset, isa)
        if out is None:
            continue
        err = np.abs(out["proba"][:, 1].astype(np.float64) - ref).max()
        print("%-18s %-7s %d of %d thresholds differ when rounded twice; max |p1 - predict| %.3g"
              % ("midpoints", isa, twice, len(splits), err))
        check(err <= TOL, "midpoints %s: p1 differs from Booster.predict by %g" % (isa, err))

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
