#!/usr/bin/python3
"""Reference test: ONNX-ML (`ai.onnx.ml`) graphs run by `stagegate eval`, against two
independent references per model: the fitted library's own predict_proba / predict
(scikit-learn, XGBoost) on the same float32 rows, and a numpy evaluator of the ONNX-ML
semantics written here from the operators' definitions (it walks each tree per row).

There is no skl2onnx / onnxmltools / onnxruntime here, so the converters are in this file.
They lay the graphs out the way skl2onnx and onnxmltools do: tree ensembles with
nodes_treeids / nodes_nodeids / nodes_hitrates and class or target weights by (tree, node,
id); a binary forest as one class id (0) weighted by class 1's fractions; a binary
LogisticRegression as two rows [-w, w], [-b, b] with LOGISTIC then Normalizer L1; pipelines
as Imputer -> Scaler -> model; ZipMap or a plain probability tensor. Covered:
- TreeEnsembleClassifier / Regressor from DecisionTree, RandomForest (class fractions /
  n_trees, SUM, post NONE), ExtraTrees, RandomForestRegressor (AVERAGE, then base_values),
  GradientBoosting (per-class trees, base_values = init margin, LOGISTIC or SOFTMAX),
  HistGradientBoosting (double thresholds, +inf where NaN alone goes one way) and XGBoost
  (BRANCH_LT, missing values routed by nodes_missing_value_tracks_true, or without it to
  the false branch), NaN in /X for those;
- float thresholds (ml opset 1..3; as cut from scikit-learn's float64 ones, or adjusted as
  skl2onnx does so that they decide every float32 x alike) and double ones
  (`nodes_values_as_tensor`, with `class_weights_as_tensor` / `target_weights_as_tensor` /
  `base_values_as_tensor`, ml opset 3); every branch mode (LEQ, LT, GTE, GT: the threshold
  moved to the next float and the children swapped so the model is unchanged), per model or
  drawn per node; nodes and weights listed in shuffled order; tree ids that are not 0..T-1;
  validation rows whose features sit exactly on, just above and just below a split's
  float32 threshold;
- binary (weights for both classes, NONE or per-class LOGISTIC; one class id 0 with
  all-positive weights read as [1 - s, s]; mixed-sign weights with LOGISTIC) and multiclass
  (3..5 classes, NONE or SOFTMAX), ZipMap and plain outputs, default opsets 13, 15 and 17;
- LinearClassifier (binary [-w, w] + Normalizer L1, multinomial SOFTMAX, one row of
  coefficients read as [1 - s, s]) and LinearRegressor; Imputer (NaN with NaN in /X, or a
  value; one or F imputed values), Scaler (one or F values), Normalizer (MAX, L1, L2),
  Binarizer and ArrayFeatureExtractor in pipelines; found by attacks: a Normalizer of
  all-zero rows (kept, as ONNX Runtime keeps them) and MAX over a NaN (skipped), an Imputer
  of a value at default opset 10, two unnamed Scalers.
Per model: the evaluator agrees with the library on every row of a graph that is exact
(double thresholds, native float32 ones, adjusted ones) and, for float32 thresholds cut from
float64 ones, on all but the rows whose feature lies between a threshold and its rounding
(counted); stagegate's probabilities (absolute) / predictions (relative) are within 1e-5 of
the evaluator on every row and of the library on those rows; the metrics it reports
(accuracy and log_loss; mean_squared_error) equal the ones computed from the evaluator's
outputs; with SG_ONNX_ONE_VS_BATCH set, the one-row (latency) path gives what the batch path
gives. The valid small graphs the refusals alter load and match the evaluator. Refusals:
BRANCH_EQ / NEQ, string labels, labels 1..K or 0, 2, MIN / MAX aggregate, PROBIT and
SOFTMAX_ZERO, a node reading the label, node ids that skip or repeat, a child out of range
or the node itself, a cycle, a feature out of range, a NaN threshold (float and double),
attribute lists of different lengths, a weight for a node that does not exist, a class id
out of range, SVMClassifier, LabelEncoder, OneHotEncoder, ml opset 4, an ambiguous binary
(all-positive weights with LOGISTIC, class id 0 or 1; one class id 1 with NONE; mixed-sign
with NONE; one row of
linear coefficients with LOGISTIC), two regression targets, ArrayFeatureExtractor, Scaler,
LinearClassifier and Normalizer attributes out of range: each exits 2 with one stderr line
that starts with the model path and names the node.

`--reference-only` checks the converters and the evaluator against the libraries (and
builds every graph) without running stagegate.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import onnx
import xgboost as xgb
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer, Normalizer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

REFERENCE_ONLY = "--reference-only" in sys.argv[1:]
SG = None if REFERENCE_ONLY else os.environ["STAGEGATE_BIN"]
# Optional: the one-row (latency) path against the batch path, as torch_parity.py runs it.
ONE_VS_BATCH = os.environ.get("SG_ONNX_ONE_VS_BATCH")
ML = "ai.onnx.ml"
TOL = 1e-5
MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


# ---------------------------------------------------------------- converters (tree IR)
# A tree: dict(tid, cmp, feat, thr (float64), left, right (-1 on leaves), miss_left,
# leaves {node: [(class or target id, weight)]}). cmp "LEQ": x <= thr goes left
# (scikit-learn); "LT": x < thr goes left (XGBoost, float32 thresholds).

def sk_tree(est, tid, leaf):
    t = est.tree_
    left = t.children_left.astype(np.int64)
    return dict(tid=tid, cmp="LEQ", feat=t.feature.astype(np.int64),
                thr=t.threshold.astype(np.float64), left=left,
                right=t.children_right.astype(np.int64), miss_left=np.zeros(len(left), bool),
                leaves={i: leaf(t, i) for i in range(len(left)) if left[i] < 0})


def class_fractions(t, i):
    v = t.value[i][0]
    return v / v.sum()


def xgb_trees(booster):
    """The trees of a booster from its JSON model (split conditions are float32 printed
    shortest round-trip, so they parse exactly), with the class each tree adds to."""
    j = json.loads(booster.save_raw("json"))["learner"]
    gb = j["gradient_booster"]["model"]
    trees = []
    for tid, (t, group) in enumerate(zip(gb["trees"], gb["tree_info"])):
        left = np.array(t["left_children"], np.int64)
        cond = np.array(t["split_conditions"], np.float32).astype(np.float64)
        assert int(t["tree_param"]["num_deleted"]) == 0
        trees.append(dict(tid=tid, cmp="LT", feat=np.array(t["split_indices"], np.int64),
                          thr=cond, left=left, right=np.array(t["right_children"], np.int64),
                          miss_left=np.array(t["default_left"], bool),
                          leaves={i: [(group, cond[i])] for i in range(len(left)) if left[i] < 0}))
    return trees, float(j["learner_model_param"]["base_score"]), j["objective"]["name"]


def hgb_trees(est):
    trees, K = [], len(est._predictors[0])
    for it, preds in enumerate(est._predictors):
        for k, p in enumerate(preds):
            n = p.nodes
            leaf = n["is_leaf"].astype(bool)
            trees.append(dict(tid=it * K + k, cmp="LEQ", feat=n["feature_idx"].astype(np.int64),
                              thr=n["num_threshold"].astype(np.float64),
                              left=np.where(leaf, -1, n["left"]).astype(np.int64),
                              right=np.where(leaf, -1, n["right"]).astype(np.int64),
                              miss_left=n["missing_go_to_left"].astype(bool),
                              leaves={i: [(k, float(n["value"][i]))]
                                      for i in np.flatnonzero(leaf)}))
    return trees


def nextup(v, ft):
    return np.nextafter(ft(v), ft(np.inf))


def nextdown(v, ft):
    return np.nextafter(ft(v), ft(-np.inf))


def split(t, cmp, mode, ft, adjust=False):
    """(threshold, true is left) for `mode` deciding as the native comparison does. adjust
    (skl2onnx's sklearn_threshold): a float32 threshold for scikit-learn's float64 t that
    decides every float32 x alike, the largest float32 <= t."""
    if adjust and cmp == "LEQ" and ft is np.float32 and np.float32(t) > t:
        t = nextdown(t, np.float32)
    t = ft(t)
    if cmp == "LEQ":
        return {"BRANCH_LEQ": (t, True), "BRANCH_GT": (t, False),
                "BRANCH_LT": (nextup(t, ft), True), "BRANCH_GTE": (nextup(t, ft), False)}[mode]
    return {"BRANCH_LT": (t, True), "BRANCH_GTE": (t, False),
            "BRANCH_LEQ": (nextdown(t, ft), True), "BRANCH_GT": (nextdown(t, ft), False)}[mode]


def dbl_tensor(name, values):
    return numpy_helper.from_array(np.asarray(values, np.float64), name)


def tree_node(name, trees, inp, outs, classifier, labels=None, post="NONE", base=None,
              agg="SUM", modes="native", dbl=False, wdbl=False, shuffle=False, seed=0,
              tid_step=1, adjust=False, missing_attr=True, hitrates=False, extra=None):
    """A TreeEnsembleClassifier / Regressor node. modes: native, one of MODES, or mix (one
    drawn per node). dbl: thresholds as nodes_values_as_tensor; wdbl: weights and base
    values as *_as_tensor. shuffle: nodes and weights listed in a random order. tid_step:
    tree k gets id k * tid_step + (tid_step - 1) (ids need not be 0..T-1). adjust: exact
    float32 thresholds for scikit-learn's float64 ones (as skl2onnx). missing_attr=False
    leaves nodes_missing_value_tracks_true out (NaN then takes the false branch);
    hitrates: nodes_hitrates of 1, as skl2onnx writes them."""
    r = np.random.default_rng(seed)
    ft = np.float64 if dbl else np.float32
    nodes, weights = [], []
    for tr in trees:
        tid = tr["tid"] * tid_step + tid_step - 1
        for i in range(len(tr["left"])):
            if i in tr["leaves"]:
                nodes.append((tid, i, 0, "LEAF", 0.0, 0, 0, 0))
                weights += [(tid, i, c, w) for c, w in tr["leaves"][i]]
                continue
            if modes == "native":
                mode = "BRANCH_LEQ" if tr["cmp"] == "LEQ" else "BRANCH_LT"
            elif modes == "mix":
                mode = MODES[r.integers(4)]
            else:
                mode = modes
            v, true_left = split(tr["thr"][i], tr["cmp"], mode, ft, adjust)
            a, b = (tr["left"][i], tr["right"][i]) if true_left else (tr["right"][i], tr["left"][i])
            nodes.append((tid, i, int(tr["feat"][i]), mode, v, int(a), int(b),
                          int(bool(tr["miss_left"][i]) == true_left)))
    if shuffle:
        nodes = [nodes[k] for k in r.permutation(len(nodes))]
        weights = [weights[k] for k in r.permutation(len(weights))]
    cols = list(zip(*nodes))
    at = dict(nodes_treeids=list(cols[0]), nodes_nodeids=list(cols[1]),
              nodes_featureids=list(cols[2]), nodes_modes=list(cols[3]),
              nodes_truenodeids=list(cols[5]), nodes_falsenodeids=list(cols[6]),
              nodes_missing_value_tracks_true=list(cols[7]))
    if not missing_attr:
        del at["nodes_missing_value_tracks_true"]
    if hitrates:
        at["nodes_hitrates"] = [1.0] * len(nodes)
    if dbl:
        at["nodes_values_as_tensor"] = dbl_tensor("nodes_values", cols[4])
    else:
        at["nodes_values"] = [float(v) for v in cols[4]]
    wc = list(zip(*weights))
    pre = "class_" if classifier else "target_"
    for key, col in zip(("treeids", "nodeids", "ids"), wc[:3]):
        at[pre + key] = list(col)
    if wdbl:
        at[pre + "weights_as_tensor"] = dbl_tensor(pre + "weights", wc[3])
    else:
        at[pre + "weights"] = [float(w) for w in wc[3]]
    if base is not None:
        if wdbl:
            at["base_values_as_tensor"] = dbl_tensor("base_values", base)
        else:
            at["base_values"] = [float(b) for b in base]
    at["post_transform"] = post
    if classifier:
        at["classlabels_int64s"] = list(labels)
    else:
        at["n_targets"] = 1
        at["aggregate_function"] = agg
    at.update(extra or {})
    return helper.make_node("TreeEnsembleClassifier" if classifier else "TreeEnsembleRegressor",
                            [inp], outs, name=name, domain=ML, **at)


def flagged_rows(trees, X):
    """Rows where a float32 threshold decides otherwise than scikit-learn's float64 one:
    a feature between t and float32(t)."""
    X = X.astype(np.float64)
    out = np.zeros(len(X), bool)
    for tr in trees:
        inner = tr["left"] >= 0
        f, t = tr["feat"][inner], tr["thr"][inner]
        x = X[:, f]
        out |= ((x <= t) != (x <= t.astype(np.float32).astype(np.float64))).any(1)
    return out


def edge_rows(X, trees, n, seed, cols=None):
    """Sets one feature of each of the first n rows to a split's threshold as float32, or
    the float32 just above or below it: the rows where the branch modes and float / double
    comparisons differ."""
    r = np.random.default_rng(seed)
    X = X.copy()
    inner = [(tr, i) for tr in trees for i in np.flatnonzero(tr["left"] >= 0)
             if np.isfinite(tr["thr"][i])]
    for row in range(n):
        tr, i = inner[r.integers(len(inner))]
        t = np.float32(tr["thr"][i])
        v = (t, nextup(t, np.float32), nextdown(t, np.float32))[row % 3]
        f = int(tr["feat"][i])
        X[row, f if cols is None else cols[f]] = v
    return X


# ---------------------------------------------------------------- graphs

def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def zipmap_vi(name):
    t = onnx.TypeProto()
    t.sequence_type.elem_type.map_type.key_type = TensorProto.INT64
    t.sequence_type.elem_type.map_type.value_type.tensor_type.elem_type = TensorProto.FLOAT
    return helper.make_value_info(name, t)


def make_model(nodes, F, outputs, inits=(), opset=15, ml=1):
    g = helper.make_graph(nodes, "onnxml", [vi("input", ["N", F])], outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset),
                                            helper.make_opsetid(ML, ml)],
                          producer_name="onnxml_parity")
    m.ir_version = 8
    return m


def classifier_model(pre, clf, F, K, zipmap, post=(), opset=15, ml=1, inits=()):
    """pre nodes -> clf (outputs label, probability_tensor) -> post nodes (ending in
    'probabilities') -> ZipMap or not. The graph outputs the label and the probabilities."""
    nodes = list(pre) + [clf] + list(post)
    last = nodes[-1].output[-1]
    if zipmap:
        nodes.append(helper.make_node("ZipMap", [last], ["output_probability"], name="ZipMap",
                                      domain=ML, classlabels_int64s=list(range(K))))
        out = zipmap_vi("output_probability")
    else:
        out = vi(last, ["N", K])
    return make_model(nodes, F, [vi(clf.output[0], ["N"], TensorProto.INT64), out], inits,
                      opset, ml)


def regressor_model(pre, reg, F, opset=15, ml=1, inits=()):
    return make_model(list(pre) + [reg], F, [vi(reg.output[0], ["N", 1])], inits, opset, ml)


def linear_classifier(name, inp, coef, intercepts, K, post):
    return helper.make_node("LinearClassifier", [inp], ["label", "probability_tensor"],
                            name=name, domain=ML,
                            coefficients=[float(c) for c in np.ravel(coef)],
                            intercepts=[float(b) for b in np.ravel(intercepts)],
                            classlabels_ints=list(range(K)), post_transform=post)


def linear_regressor(name, inp, coef, intercept):
    return helper.make_node("LinearRegressor", [inp], ["variable"], name=name, domain=ML,
                            coefficients=[float(c) for c in np.ravel(coef)],
                            intercepts=[float(intercept)], targets=1, post_transform="NONE")


def imputer(inp, out, values, replaced=np.nan):
    return helper.make_node("Imputer", [inp], [out], name="Imputer", domain=ML,
                            imputed_value_floats=[float(v) for v in np.ravel(values)],
                            replaced_value_float=float(replaced))


def scaler(inp, out, offset, scale):
    return helper.make_node("Scaler", [inp], [out], name="Scaler", domain=ML,
                            offset=[float(v) for v in np.ravel(offset)],
                            scale=[float(v) for v in np.ravel(scale)])


def normalizer(inp, out, norm, name="Normalizer"):
    return helper.make_node("Normalizer", [inp], [out], name=name, domain=ML, norm=norm)


def logreg_node(lr, inp, K):
    """skl2onnx's layout: binary as two rows [-w, w] with LOGISTIC (then Normalizer L1),
    multinomial as K rows with SOFTMAX."""
    if K == 2:
        w, b = lr.coef_[0], lr.intercept_[0]
        clf = linear_classifier("LinearClassifier", inp, np.vstack([-w, w]), [-b, b], 2,
                                "LOGISTIC")
        return clf, [normalizer("probability_tensor", "probabilities", "L1")]
    return linear_classifier("LinearClassifier", inp, lr.coef_, lr.intercept_, K, "SOFTMAX"), []


# ---------------------------------------------------------------- numpy evaluator

def attrs(node):
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def ev_trees(a, X, classifier):
    """Tree ensembles as the contract defines them: x float32; float thresholds compared in
    float32, double ones (nodes_values_as_tensor) with x promoted; NaN takes the true branch
    when nodes_missing_value_tracks_true; leaves' weights summed in ascending tree id order
    from 0 (in double), AVERAGE divides by the number of trees, then base_values."""
    tids = np.array(a["nodes_treeids"])
    nids = np.array(a["nodes_nodeids"])
    feats = np.array(a["nodes_featureids"])
    modes = np.array(a["nodes_modes"])
    if "nodes_values_as_tensor" in a:
        vals = np.asarray(a["nodes_values_as_tensor"], np.float64)
    else:
        vals = np.array(a["nodes_values"], np.float32).astype(np.float64)
    xs = X.astype(np.float32).astype(np.float64)  # float32 vs float32 decides alike in double
    true_ids = np.array(a["nodes_truenodeids"])
    false_ids = np.array(a["nodes_falsenodeids"])
    miss = np.array(a.get("nodes_missing_value_tracks_true", [0] * len(tids)))
    pre = "class_" if classifier else "target_"
    wt, wn, wi = (np.array(a[pre + k]) for k in ("treeids", "nodeids", "ids"))
    if pre + "weights_as_tensor" in a:
        ww = np.asarray(a[pre + "weights_as_tensor"], np.float64)
    else:
        ww = np.array(a[pre + "weights"], np.float32).astype(np.float64)
    K = len(a["classlabels_int64s"]) if classifier else a.get("n_targets", 1)
    if "base_values_as_tensor" in a:
        base = np.asarray(a["base_values_as_tensor"], np.float64)
    else:
        base = np.array(a.get("base_values", []), np.float32).astype(np.float64)
    N = len(X)
    rows = np.arange(N)
    width = max(K, int(wi.max()) + 1)
    acc = np.zeros((N, width))
    trees = sorted(set(tids.tolist()))
    for tid in trees:
        idx = np.flatnonzero(tids == tid)
        pos = np.full(int(nids[idx].max()) + 1, -1)
        pos[nids[idx]] = idx
        W = np.zeros((len(tids), width))
        for k in np.flatnonzero(wt == tid):
            W[pos[wn[k]], wi[k]] += ww[k]
        cur = np.full(N, pos[0])
        for _ in range(len(idx) + 1):
            leaf = modes[cur] == "LEAF"
            if leaf.all():
                break
            x, t, m = xs[rows, feats[cur]], vals[cur], modes[cur]
            with np.errstate(invalid="ignore"):
                go = np.select([m == "BRANCH_LEQ", m == "BRANCH_LT", m == "BRANCH_GTE",
                                m == "BRANCH_GT"], [x <= t, x < t, x >= t, x > t], False)
            go = np.where(np.isnan(x), miss[cur] == 1, go)
            nxt = pos[np.where(go, true_ids[cur], false_ids[cur])]
            cur = np.where(leaf, cur, nxt)
        else:
            raise ValueError("tree %d does not end" % tid)
        acc += W[cur]
    post = a.get("post_transform", "NONE")
    if not classifier:
        if a.get("aggregate_function", "SUM") == "AVERAGE":
            acc /= len(trees)
        return acc[:, :1] + (base if len(base) else 0)
    # class_ids index the class list: column j is classlabels[j], whatever its value.
    labels = list(a["classlabels_int64s"])
    assert len(labels) == K
    ids = sorted(set(wi.tolist()))
    if ids == list(range(K)) and K >= 2:
        assert len(base) in (0, K)
        z = acc[:, :K] + (base if len(base) else 0)
        return {"NONE": lambda: z, "LOGISTIC": lambda: sigmoid(z),
                "SOFTMAX": lambda: softmax(z)}[post]()
    assert K == 2 and len(ids) == 1
    s = acc[:, ids[0]] + (base[0] if len(base) == 1 else 0)
    if (ww >= 0).all():
        assert post == "NONE"
        return np.stack([1 - s, s], 1)
    assert post == "LOGISTIC"
    return np.stack([sigmoid(-s), sigmoid(s)], 1)


def ev_linear_classifier(a, X):
    K = len(a["classlabels_ints"])
    b = np.array(a["intercepts"], np.float32).astype(np.float64)
    C = np.array(a["coefficients"], np.float32).astype(np.float64).reshape(len(b), -1)
    z = X.astype(np.float64) @ C.T + b
    post = a.get("post_transform", "NONE")
    if len(b) == 1 and K == 2:
        assert post == "NONE"
        return np.concatenate([1 - z, z], 1)
    assert len(b) == K
    return {"NONE": lambda: z, "LOGISTIC": lambda: sigmoid(z),
            "SOFTMAX": lambda: softmax(z)}[post]()


def ev_node(n, ins):
    a = attrs(n)
    x = ins[0]
    op = n.op_type
    f32 = np.float32
    if op in ("TreeEnsembleClassifier", "LinearClassifier"):
        p = ev_trees(a, x, True) if op[0] == "T" else ev_linear_classifier(a, x)
        return [p.argmax(1), p]
    if op == "TreeEnsembleRegressor":
        return [ev_trees(a, x, False)]
    if op == "LinearRegressor":
        C = np.array(a["coefficients"], f32).astype(np.float64)
        return [(x.astype(np.float64) @ C + np.float32(a["intercepts"][0]))[:, None]]
    if op == "Scaler":
        return [(x.astype(f32) - np.array(a["offset"], f32)) * np.array(a["scale"], f32)]
    if op == "Imputer":
        x = x.astype(f32)
        v = np.float32(a.get("replaced_value_float", 0.0))
        hit = np.isnan(x) if np.isnan(v) else x == v
        fill = np.broadcast_to(np.array(a["imputed_value_floats"], f32), x.shape)
        return [np.where(hit, fill, x)]
    if op == "Normalizer":
        # ONNX Runtime's: MAX skips NaN; a row whose norm is 0 is copied unchanged
        x64 = x.astype(np.float64)
        with np.errstate(invalid="ignore"):
            d = {"MAX": lambda: np.fmax.reduce(x64, axis=1, keepdims=True),
                 "L1": lambda: np.abs(x64).sum(1, keepdims=True),
                 "L2": lambda: np.sqrt((x64 ** 2).sum(1, keepdims=True))}[a["norm"]]()
        d = np.where(d == 0, 1.0, d)
        return [x64 / d]
    if op == "Binarizer":
        return [(x > np.float32(a.get("threshold", 0.0))).astype(f32)]
    if op == "ArrayFeatureExtractor":
        return [x[..., np.asarray(ins[1]).ravel()]]
    if op == "ZipMap":
        return [x]
    raise ValueError("evaluator has no %s" % op)


def evaluate(m, X):
    env = {m.graph.input[0].name: X.astype(np.float32)}
    for init in m.graph.initializer:
        env[init.name] = numpy_helper.to_array(init)
    for n in m.graph.node:
        for name, v in zip(n.output, ev_node(n, [env[i] for i in n.input])):
            env[name] = v
    out = env[m.graph.output[-1].name]
    return out[:, 0] if len(m.graph.output) == 1 else out


# ---------------------------------------------------------------- running and comparing

def run_eval(model_path, data):
    preds = model_path + ".pred.h5"
    p = subprocess.run([SG, "eval", "--model", model_path, "--data", data, "--json",
                        "--predictions", preds], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return None, None, "exit %d: %s" % (p.returncode, p.stderr.strip())
    with h5py.File(preds) as f:
        out = f["proba"][()] if "proba" in f else f["prediction"][()]
    return json.loads(p.stdout), out, None


def row_diff(a, b, regression):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if regression:
        return np.abs(a.reshape(-1) - b.reshape(-1)) / np.maximum(1, np.abs(b.reshape(-1)))
    return np.abs(a - b).max(1)


def describe_rows(label, got, want, X, bad, regression, limit=4):
    lines = []
    for r in np.flatnonzero(bad)[:limit]:
        g = got[r] if regression else np.round(got[r].astype(np.float64), 7).tolist()
        w = want[r] if regression else np.round(want[r], 7).tolist()
        lines.append("row %d: %s %s, want %s (x = %s)" % (r, label, g, w,
                                                        np.array2string(X[r], precision=9)))
    return "; ".join(lines)


def check_metrics(name, doc, ref, y):
    m = doc.get("metrics", {})
    if ref.ndim == 1:
        mse = float(np.mean((ref - y) ** 2))
        got = m.get("mean_squared_error")
        check(got is not None and abs(got - mse) <= TOL * max(1, mse),
              "%s: mean_squared_error %r, reference %r" % (name, got, mse))
        return
    K = ref.shape[1]
    srt = np.sort(ref, 1)
    keep = srt[:, -1] - srt[:, -2] > TOL  # a near tie may go either way
    acc = float(np.mean(ref.argmax(1)[keep] == y[keep]))
    got = m.get("accuracy")
    check(got is not None and abs(got * len(y) - acc * keep.sum()) <= (~keep).sum() + 1e-6,
          "%s: accuracy %r, reference %r (%d near ties)" % (name, got, acc, (~keep).sum()))
    ll = float(log_loss(y, np.clip(ref, 0, 1), labels=list(range(K))))
    got = m.get("log_loss")
    check(got is not None and abs(got - ll) <= TOL * max(1, ll),
          "%s: log_loss %r, reference %r" % (name, got, ll))


class Case:
    def __init__(self, name, model, X, y, lib, flagged=None, regression=False):
        self.name, self.model, self.X, self.y, self.lib = name, model, X, y, lib
        self.flagged = np.zeros(len(X), bool) if flagged is None else flagged
        self.regression = regression


def run_case(tmp, c):
    onnx.checker.check_model(c.model)
    ops = sorted({n.op_type for n in c.model.graph.node})
    ref = evaluate(c.model, c.X)
    lib = np.asarray(c.lib, np.float64)
    d = row_diff(ref, lib, c.regression)
    off = d > TOL
    check(not (off & ~c.flagged).any(), "%s: converter/evaluator differs from the library on "
          "%d rows: %s" % (c.name, (off & ~c.flagged).sum(),
                           describe_rows("evaluator", ref, lib, c.X, off & ~c.flagged,
                                         c.regression)))
    status = "ref max diff %.2g, %d rows on a rounded threshold (%d differ)" % (
        d[~c.flagged].max(), c.flagged.sum(), (off & c.flagged).sum())
    if REFERENCE_ONLY:
        print("ok %-22s %s  %s" % (c.name, status, ",".join(ops)))
        return
    path = os.path.join(tmp, c.name + ".onnx")
    data = os.path.join(tmp, c.name + ".h5")
    onnx.save(c.model, path)
    with h5py.File(data, "w") as f:
        f["X"] = c.X.astype(np.float32)
        f["y"] = c.y.astype(np.float64 if c.regression else np.int64)
    doc, out, err = run_eval(path, data)
    if not check(doc is not None, "%s (%s): eval failed: %s" % (c.name, ",".join(ops), err)):
        return
    out = np.asarray(out, np.float64)
    if c.regression:
        out = out.reshape(-1)
    if not check(out.shape == ref.shape, "%s: output shape %s, want %s" % (c.name, out.shape,
                                                                          ref.shape)):
        return
    ds = row_diff(out, ref, c.regression)
    bad = ~(ds <= TOL)
    check(not bad.any(), "%s: stagegate differs from the evaluator on %d of %d rows (max %.3g): %s"
          % (c.name, bad.sum(), len(bad), np.nanmax(ds), describe_rows("stagegate", out, ref, c.X,
                                                                       bad, c.regression)))
    dl = row_diff(out, lib, c.regression)
    badl = ~(dl <= TOL) & ~c.flagged
    check(not badl.any(), "%s: stagegate differs from the library on %d rows: %s"
          % (c.name, badl.sum(), describe_rows("stagegate", out, lib, c.X, badl, c.regression)))
    check_metrics(c.name, doc, ref, c.y)
    if ONE_VS_BATCH:
        p = subprocess.run([ONE_VS_BATCH, path], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "%s one row vs batch: %s" % (c.name,
                                                             (p.stderr or p.stdout).strip()))
    print("ok %-22s max diff %.2g  %s  %s" % (c.name, np.nanmax(ds), status, ",".join(ops)))


# ---------------------------------------------------------------- data

def cls_data(K, F=8, n=1100, seed=0, nan=0.0):
    X, y = make_classification(n, F, n_informative=5, n_redundant=1, n_classes=K,
                               n_clusters_per_class=1, class_sep=0.8, flip_y=0.05,
                               random_state=seed)
    X = X.astype(np.float32)
    X[:, 2] = np.round(X[:, 2] * 4) / 4  # a coarse feature: ties, thresholds at midpoints
    if nan:
        r = np.random.default_rng(seed)
        for f in (0, 3, 5):
            X[r.random(n) < nan, f] = np.nan
    return X[:600], y[:600], X[600:], y[600:]


def reg_data(F=8, n=1100, seed=0, nan=0.0):
    X, y = make_regression(n, F, n_informative=6, noise=5.0, random_state=seed)
    X = X.astype(np.float32)
    # Targets well away from 0, so that a relative tolerance is one (float32 rounding of
    # terms of ~100 is ~1e-5 absolute).
    y = (y + 3 * X[:, 0] * X[:, 1]) / 4 + 200
    if nan:
        r = np.random.default_rng(seed)
        for f in (1, 4):
            X[r.random(n) < nan, f] = np.nan
    return X[:600], y[:600], X[600:], y[600:]


# ---------------------------------------------------------------- the models

def tree_cases():
    cases = []
    add = cases.append

    # Decision tree, binary, weights for both classes, ZipMap, ml opset 1, float thresholds.
    Xt, yt, Xv, yv = cls_data(2, seed=1)
    est = DecisionTreeClassifier(max_depth=7, random_state=0).fit(Xt, yt)
    trees = [sk_tree(est, 0, lambda t, i: list(enumerate(class_fractions(t, i))))]
    Xv = edge_rows(Xv, trees, 45, 1)
    node = tree_node("TreeEnsembleClassifier", trees, "input", ["label", "probabilities"], True,
                     [0, 1], adjust=True, hitrates=True)
    add(Case("dt_binary_leq_exact32_zipmap", classifier_model([], node, 8, 2, True, opset=13,
                                                              ml=1), Xv, yv,
             est.predict_proba(Xv)))

    # Random forest, binary laid out as skl2onnx does: one class id (0) whose weights are
    # class 1's fractions / n_trees, all positive, read as [1 - s, s]; double thresholds and
    # weights (ml opset 3), BRANCH_GT.
    est = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(Xt, yt)
    T = len(est.estimators_)
    trees = [sk_tree(e, k, lambda t, i: [(0, class_fractions(t, i)[1] / T)])
             for k, e in enumerate(est.estimators_)]
    Xv2 = edge_rows(cls_data(2, seed=1)[2], trees, 45, 2)
    node = tree_node("rf_binary", trees, "input", ["label", "probabilities"], True, [0, 1],
                     modes="BRANCH_GT", dbl=True, wdbl=True, hitrates=True)
    add(Case("rf_binary_one_id0_gt_f64", classifier_model([], node, 8, 2, False, ml=3), Xv2, yv,
             est.predict_proba(Xv2)))
    # The same forest with its single class id 1 is refused (below): ONNX Runtime collapses
    # one score to [1 - s, s] only when it is class 0's, and writes [0, s] for class 1's.

    # Same forest as float thresholds, BRANCH_GTE, and per-class weights: 2 class ids.
    trees2 = [sk_tree(e, k, lambda t, i: list(enumerate(class_fractions(t, i) / T)))
              for k, e in enumerate(est.estimators_)]
    node = tree_node("rf_binary2", trees2, "input", ["label", "probabilities"], True, [0, 1],
                     modes="BRANCH_GTE", shuffle=True, seed=3)
    add(Case("rf_binary_gte_f32_shuffled", classifier_model([], node, 8, 2, True, ml=2), Xv2, yv,
             est.predict_proba(Xv2), flagged_rows(trees2, Xv2)))

    # Random forest, 3 classes, zero weights left out, mixed modes, nodes shuffled.
    Xt, yt, Xv, yv = cls_data(3, seed=2)
    est = RandomForestClassifier(n_estimators=20, max_depth=7, random_state=1).fit(Xt, yt)
    T = len(est.estimators_)
    trees = [sk_tree(e, k, lambda t, i: [(c, f / T) for c, f in enumerate(class_fractions(t, i))
                                         if f > 0]) for k, e in enumerate(est.estimators_)]
    Xv = edge_rows(Xv, trees, 45, 3)
    node = tree_node("rf_multi3", trees, "input", ["label", "probabilities"], True, [0, 1, 2],
                     modes="mix", shuffle=True, seed=4, adjust=True, missing_attr=False)
    add(Case("rf_multi3_mix_exact32", classifier_model([], node, 8, 3, False, opset=17, ml=1),
             Xv, yv, est.predict_proba(Xv)))

    # Extra trees, 5 classes, double thresholds with float weights, BRANCH_LT, ZipMap.
    Xt, yt, Xv, yv = cls_data(5, seed=3)
    est = ExtraTreesClassifier(n_estimators=12, max_depth=8, random_state=2).fit(Xt, yt)
    T = len(est.estimators_)
    trees = [sk_tree(e, k, lambda t, i: list(enumerate(class_fractions(t, i) / T)))
             for k, e in enumerate(est.estimators_)]
    Xv = edge_rows(Xv, trees, 45, 4)
    node = tree_node("et_multi5", trees, "input", ["label", "probabilities"], True,
                     list(range(5)), modes="BRANCH_LT", dbl=True)
    add(Case("et_multi5_lt_f64_zipmap", classifier_model([], node, 8, 5, True, ml=3), Xv, yv,
             est.predict_proba(Xv)))

    # Gradient boosting, binary: one class id, mixed-sign weights, LOGISTIC, base = init.
    Xt, yt, Xv, yv = cls_data(2, seed=4)
    est = GradientBoostingClassifier(n_estimators=30, max_depth=3, learning_rate=0.2,
                                     random_state=0).fit(Xt, yt)
    lr = est.learning_rate
    trees = [sk_tree(e, k, lambda t, i: [(0, lr * t.value[i][0][0])])
             for k, e in enumerate(est.estimators_[:, 0])]
    Xv = edge_rows(Xv, trees, 45, 5)
    base = est._raw_predict_init(Xv[:1])[0]
    node = tree_node("gb_binary", trees, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", base=base, modes="BRANCH_GTE")
    add(Case("gb_binary_logistic_gte", classifier_model([], node, 8, 2, False, ml=1), Xv, yv,
             est.predict_proba(Xv), flagged_rows(trees, Xv)))
    # The same as two class ids, weights [-w, w], LOGISTIC per class (double, mixed modes).
    # The init margin is folded into the first tree's leaves: two base_values for two classes
    # are read otherwise by ONNX Runtime (class 1's base plus class 0's score).
    trees2 = [dict(t, leaves={n: [(0, -w - b0) for _, w in v] + [(1, w + b0) for _, w in v]
                              for n, v in t["leaves"].items()})
              for t, b0 in zip(trees, [base[0]] + [0] * len(trees))]
    node = tree_node("gb_binary2", trees2, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", modes="mix", dbl=True, seed=7)
    add(Case("gb_binary_two_ids_logistic_f64", classifier_model([], node, 8, 2, True, ml=3),
             Xv, yv, est.predict_proba(Xv)))

    # Gradient boosting, 4 classes: tree i*K + k adds to class k, SOFTMAX, double thresholds.
    Xt, yt, Xv, yv = cls_data(4, seed=5)
    est = GradientBoostingClassifier(n_estimators=15, max_depth=3, learning_rate=0.3,
                                     random_state=0).fit(Xt, yt)
    lr = est.learning_rate
    trees = []
    for it in range(est.estimators_.shape[0]):
        for k in range(4):
            trees.append(sk_tree(est.estimators_[it, k], it * 4 + k,
                                 lambda t, i, k=k: [(k, lr * t.value[i][0][0])]))
    Xv = edge_rows(Xv, trees, 45, 6)
    base = est._raw_predict_init(Xv[:1])[0]
    node = tree_node("gb_multi4", trees, "input", ["label", "probabilities"], True,
                     list(range(4)), post="SOFTMAX", base=base, dbl=True, wdbl=True,
                     shuffle=True, seed=5)
    add(Case("gb_multi4_softmax_f64", classifier_model([], node, 8, 4, True, ml=3), Xv, yv,
             est.predict_proba(Xv)))

    # Random forest regressor: AVERAGE of leaf values, double, mixed modes.
    Xt, yt, Xv, yv = reg_data(seed=6)
    est = RandomForestRegressor(n_estimators=15, max_depth=7, random_state=0).fit(Xt, yt)
    trees = [sk_tree(e, k, lambda t, i: [(0, t.value[i][0][0])])
             for k, e in enumerate(est.estimators_)]
    Xv = edge_rows(Xv, trees, 45, 7)
    node = tree_node("rf_reg", trees, "input", ["variable"], False, agg="AVERAGE", modes="mix",
                     dbl=True, wdbl=True, seed=6, shuffle=True, tid_step=3)
    add(Case("rf_reg_average_f64", regressor_model([], node, 8, ml=3), Xv, yv, est.predict(Xv),
             regression=True))
    # The same as float32 (AVERAGE, BRANCH_LEQ, ml opset 2), base_values added after the mean.
    node = tree_node("rf_reg32", trees, "input", ["variable"], False, agg="AVERAGE",
                     base=[12.5])
    add(Case("rf_reg_average_base_f32", regressor_model([], node, 8, ml=2), Xv, yv,
             est.predict(Xv) + 12.5, flagged_rows(trees, Xv), regression=True))

    # Gradient boosting regressor: SUM, base = init, float, GT.
    est = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(Xt, yt)
    lr = est.learning_rate
    trees = [sk_tree(e, k, lambda t, i: [(0, lr * t.value[i][0][0])])
             for k, e in enumerate(est.estimators_[:, 0])]
    base = est._raw_predict_init(Xv[:1])[0]
    node = tree_node("gb_reg", trees, "input", ["variable"], False, base=base, modes="BRANCH_GT")
    add(Case("gb_reg_sum_gt_f32", regressor_model([], node, 8, opset=13, ml=1), Xv, yv,
             est.predict(Xv), flagged_rows(trees, Xv), regression=True))

    # XGBoost, binary, NaN in /X: BRANCH_LT, missing follows default_left, LOGISTIC.
    Xt, yt, Xv, yv = cls_data(2, seed=7, nan=0.12)
    est = xgb.XGBClassifier(n_estimators=25, max_depth=4, learning_rate=0.3,
                            tree_method="hist").fit(Xt, yt)
    trees, bs, obj = xgb_trees(est.get_booster())
    assert obj == "binary:logistic"
    Xv = edge_rows(Xv, trees, 45, 8)
    node = tree_node("xgb_binary", trees, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", base=[np.log(bs / (1 - bs))])
    add(Case("xgb_binary_nan_lt", classifier_model([], node, 8, 2, True, ml=1), Xv, yv,
             est.predict_proba(Xv)))
    # The same with the other modes, children and missing directions swapped.
    node = tree_node("xgb_binary_mix", trees, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", base=[np.log(bs / (1 - bs))], modes="mix", seed=8,
                     shuffle=True)
    add(Case("xgb_binary_nan_mix", classifier_model([], node, 8, 2, False, ml=3), Xv, yv,
             est.predict_proba(Xv)))

    # Without nodes_missing_value_tracks_true NaN takes the false branch: BRANCH_LT's right
    # child, where XGBoost sends a value above every threshold.
    trees_r = [dict(t, miss_left=np.zeros(len(t["left"]), bool)) for t in trees]
    node = tree_node("xgb_binary_nomiss", trees_r, "input", ["label", "probabilities"], True,
                     [0, 1], post="LOGISTIC", base=[np.log(bs / (1 - bs))], missing_attr=False)
    add(Case("xgb_binary_nan_no_missing_attr", classifier_model([], node, 8, 2, False, ml=1),
             Xv, yv, est.predict_proba(np.where(np.isnan(Xv), np.float32(3e38), Xv))))

    # XGBoost, 3 classes (tree i adds to class tree_info[i]), NaN, SOFTMAX, GTE.
    Xt, yt, Xv, yv = cls_data(3, seed=8, nan=0.1)
    est = xgb.XGBClassifier(n_estimators=12, max_depth=4, tree_method="hist").fit(Xt, yt)
    trees, bs, obj = xgb_trees(est.get_booster())
    assert obj == "multi:softprob"
    Xv = edge_rows(Xv, trees, 45, 9)
    node = tree_node("xgb_multi3", trees, "input", ["label", "probabilities"], True, [0, 1, 2],
                     post="SOFTMAX", base=[bs] * 3, modes="BRANCH_GTE")
    add(Case("xgb_multi3_nan_gte", classifier_model([], node, 8, 3, True, ml=1), Xv, yv,
             est.predict_proba(Xv)))

    # XGBoost regressor, NaN, mixed modes, double thresholds (exact float32 values).
    Xt, yt, Xv, yv = reg_data(seed=9, nan=0.1)
    est = xgb.XGBRegressor(n_estimators=30, max_depth=4, tree_method="hist").fit(Xt, yt)
    trees, bs, obj = xgb_trees(est.get_booster())
    assert obj == "reg:squarederror"
    Xv = edge_rows(Xv, trees, 45, 10)
    node = tree_node("xgb_reg", trees, "input", ["variable"], False, base=[bs], modes="mix",
                     seed=10, dbl=True)
    add(Case("xgb_reg_nan_mix_f64", regressor_model([], node, 8, ml=3), Xv, yv,
             est.predict(Xv), regression=True))

    # HistGradientBoosting (compares in float64): binary and 3 classes with NaN, double.
    Xt, yt, Xv, yv = cls_data(2, seed=10, nan=0.1)
    est = HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=12, learning_rate=0.3,
                                         random_state=0).fit(Xt, yt)
    trees = hgb_trees(est)
    Xv = edge_rows(Xv, trees, 45, 11)
    node = tree_node("hgb_binary", trees, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", base=est._baseline_prediction.ravel(), dbl=True,
                     wdbl=True, modes="BRANCH_LT")
    add(Case("hgb_binary_nan_lt_f64", classifier_model([], node, 8, 2, False, ml=3), Xv, yv,
             est.predict_proba(Xv)))
    Xt, yt, Xv, yv = cls_data(3, seed=11, nan=0.1)
    est = HistGradientBoostingClassifier(max_iter=10, max_leaf_nodes=10, random_state=0).fit(
        Xt, yt)
    trees = hgb_trees(est)
    Xv = edge_rows(Xv, trees, 45, 12)
    node = tree_node("hgb_multi3", trees, "input", ["label", "probabilities"], True, [0, 1, 2],
                     post="SOFTMAX", base=est._baseline_prediction.ravel(), dbl=True,
                     modes="mix", seed=12)
    add(Case("hgb_multi3_nan_mix_f64", classifier_model([], node, 8, 3, True, opset=13, ml=3),
             Xv, yv, est.predict_proba(Xv)))
    Xt, yt, Xv, yv = reg_data(seed=12, nan=0.1)
    est = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(Xt, yt)
    trees = hgb_trees(est)
    Xv = edge_rows(Xv, trees, 45, 13)
    node = tree_node("hgb_reg", trees, "input", ["variable"], False,
                     base=est._baseline_prediction.ravel(), dbl=True, modes="BRANCH_GT")
    add(Case("hgb_reg_nan_gt_f64", regressor_model([], node, 8, ml=3), Xv, yv, est.predict(Xv),
             regression=True))

    # HistGradientBoosting where a feature's NaN is informative: a split that sends every
    # number one way and NaN the other has the threshold +inf (skl2onnx writes it as is).
    r = np.random.default_rng(15)  # a seed whose ensemble has such splits (asserted)
    X = r.normal(size=(1100, 8)).astype(np.float32)
    y = (X[:, 1] + X[:, 2] + 0.5 * r.normal(size=1100) > 0).astype(np.int64)
    gone = r.random(1100) < 0.2
    X[gone, 0], y[gone] = np.nan, 1
    Xt, yt, Xv, yv = X[:600], y[:600], X[600:], y[600:]
    est = HistGradientBoostingClassifier(max_iter=10, max_leaf_nodes=8, random_state=0).fit(
        Xt, yt)
    trees = hgb_trees(est)
    assert any(np.isposinf(t["thr"][t["left"] >= 0]).any() for t in trees)
    Xv = edge_rows(Xv, trees, 45, 14)
    node = tree_node("hgb_inf", trees, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", base=est._baseline_prediction.ravel(), dbl=True)
    add(Case("hgb_binary_inf_threshold_f64", classifier_model([], node, 8, 2, False, ml=3), Xv,
             yv, est.predict_proba(Xv)))
    node = tree_node("hgb_inf32", trees, "input", ["label", "probabilities"], True, [0, 1],
                     post="LOGISTIC", base=est._baseline_prediction.ravel(), modes="mix",
                     adjust=True, seed=14)
    add(Case("hgb_binary_inf_threshold_mix32", classifier_model([], node, 8, 2, True, ml=1), Xv,
             yv, est.predict_proba(Xv)))
    return cases


def linear_cases():
    cases = []
    add = cases.append

    # LogisticRegression, binary: [-w, w] LOGISTIC -> Normalizer L1 -> ZipMap.
    Xt, yt, Xv, yv = cls_data(2, seed=20)
    lr = LogisticRegression(max_iter=1000).fit(Xt, yt)
    clf, post = logreg_node(lr, "input", 2)
    add(Case("logreg_binary_zipmap", classifier_model([], clf, 8, 2, True, post, ml=1), Xv, yv,
             lr.predict_proba(Xv)))

    # Pipeline SimpleImputer(NaN, mean) + StandardScaler + multinomial LogisticRegression,
    # 4 classes: Imputer -> Scaler -> LinearClassifier SOFTMAX; NaN in /X.
    Xt, yt, Xv, yv = cls_data(4, seed=21, nan=0.08)
    pipe = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=2000))
    pipe.fit(Xt, yt)
    imp, sc, lr = pipe.steps[0][1], pipe.steps[1][1], pipe.steps[2][1]
    clf, post = logreg_node(lr, "scaled", 4)
    pre = [imputer("input", "imputed", imp.statistics_),
           scaler("imputed", "scaled", sc.mean_, 1 / sc.scale_)]
    add(Case("pipe_impute_scale_logreg4", classifier_model(pre, clf, 8, 4, False, post, ml=1),
             Xv, yv, pipe.predict_proba(Xv)))

    # SimpleImputer(-1, constant) (one imputed value) + StandardScaler + binary LR.
    Xt, yt, Xv, yv = cls_data(2, seed=22)
    r = np.random.default_rng(22)
    for X in (Xt, Xv):
        X[r.random(X.shape) < 0.06] = -1.0
    pipe = make_pipeline(SimpleImputer(missing_values=-1.0, strategy="constant", fill_value=0.25),
                         StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xt, yt)
    sc, lr = pipe.steps[1][1], pipe.steps[2][1]
    clf, post = logreg_node(lr, "scaled", 2)
    pre = [imputer("input", "imputed", [0.25], replaced=-1.0),
           scaler("imputed", "scaled", sc.mean_, 1 / sc.scale_)]
    add(Case("pipe_impute_m1_logreg2", classifier_model(pre, clf, 8, 2, False, post, ml=1), Xv,
             yv, pipe.predict_proba(Xv)))

    # Normalizer(l2 / max / l1) pipelines on positive features.
    Xt, yt, Xv, yv = cls_data(2, seed=23)
    Xt, Xv = np.abs(Xt) + np.float32(0.1), np.abs(Xv) + np.float32(0.1)
    pipe = make_pipeline(Normalizer("l2"), LogisticRegression(C=100, max_iter=2000)).fit(Xt, yt)
    clf, post = logreg_node(pipe.steps[1][1], "normed", 2)
    add(Case("normalizer_l2_logreg2", classifier_model([normalizer("input", "normed", "L2",
                                                                   "Normalizer_in")], clf, 8,
                                                       2, True, post, ml=1),
             Xv, yv, pipe.predict_proba(Xv)))
    Xt, yt, Xv, yv = cls_data(3, seed=24)
    Xt, Xv = np.abs(Xt) + np.float32(0.1), np.abs(Xv) + np.float32(0.1)
    pipe = make_pipeline(Normalizer("max"), LogisticRegression(C=100, max_iter=2000)).fit(Xt, yt)
    clf, post = logreg_node(pipe.steps[1][1], "normed", 3)
    add(Case("normalizer_max_logreg3", classifier_model([normalizer("input", "normed", "MAX",
                                                                    "Normalizer_in")], clf, 8,
                                                        3, False, post, ml=1),
             Xv, yv, pipe.predict_proba(Xv)))
    Xt, yt, Xv, yv = reg_data(seed=25)
    Xt, Xv = np.abs(Xt) + np.float32(0.1), np.abs(Xv) + np.float32(0.1)
    yt, yv = yt / 10 + 40 * Xt[:, 0] / Xt.sum(1), yv / 10 + 40 * Xv[:, 0] / Xv.sum(1)
    # (Ridge: L1-normalised rows sum to 1, which makes plain least squares degenerate.)
    pipe = make_pipeline(Normalizer("l1"), Ridge(alpha=1e-3)).fit(Xt, yt)
    m = pipe.steps[1][1]
    add(Case("normalizer_l1_linreg", regressor_model(
        [normalizer("input", "normed", "L1")],
        linear_regressor("LinearRegressor", "normed", m.coef_, m.intercept_), 8, ml=1),
        Xv, yv, pipe.predict(Xv.astype(np.float64)), regression=True))

    # LinearRegression with NaN imputed (Imputer of F values) and a Scaler.
    Xt, yt, Xv, yv = reg_data(seed=26, nan=0.05)
    pipe = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                         LinearRegression()).fit(Xt, yt)
    imp, sc, m = (s[1] for s in pipe.steps)
    pre = [imputer("input", "imputed", imp.statistics_),
           scaler("imputed", "scaled", sc.mean_, 1 / sc.scale_)]
    add(Case("pipe_impute_scale_linreg", regressor_model(
        pre, linear_regressor("LinearRegressor", "scaled", m.coef_, m.intercept_), 8, ml=1),
        Xv, yv, pipe.predict(Xv.astype(np.float64)), regression=True))

    # ArrayFeatureExtractor (columns 5, 0, 3, 3) -> Binarizer(0.25) -> LinearRegressor.
    Xt, yt, Xv, yv = reg_data(seed=27)
    idx = np.array([5, 0, 3, 3], np.int64)
    bz = Binarizer(threshold=0.25)
    m = LinearRegression().fit(bz.transform(Xt[:, idx]), yt)
    nodes = [helper.make_node("ArrayFeatureExtractor", ["input", "afe_idx"], ["picked"],
                              name="ArrayFeatureExtractor", domain=ML),
             helper.make_node("Binarizer", ["picked"], ["bin"], name="Binarizer", domain=ML,
                              threshold=0.25)]
    Xv[:20, 5] = np.float32(0.25)  # exactly on the threshold: not above it
    add(Case("afe_binarizer_linreg", regressor_model(
        nodes, linear_regressor("LinearRegressor", "bin", m.coef_, m.intercept_), 8, ml=1,
        inits=[numpy_helper.from_array(idx, "afe_idx")]), Xv, yv,
        m.predict(bz.transform(Xv[:, idx])), regression=True))

    # ArrayFeatureExtractor (columns 6, 1, 2, 7) -> Scaler of one offset and one scale ->
    # multinomial LogisticRegression.
    Xt, yt, Xv, yv = cls_data(3, seed=28)
    idx = np.array([6, 1, 2, 7], np.int64)
    off, scl = np.float32(0.5), np.float32(1.5)
    lr = LogisticRegression(max_iter=1000).fit((Xt[:, idx] - off) * scl, yt)
    clf, post = logreg_node(lr, "scaled", 3)
    pre = [helper.make_node("ArrayFeatureExtractor", ["input", "afe_idx"], ["picked"],
                            name="ArrayFeatureExtractor", domain=ML),
           scaler("picked", "scaled", [off], [scl])]
    add(Case("afe_scaler1_logreg3", classifier_model(
        pre, clf, 8, 3, True, post, ml=1, inits=[numpy_helper.from_array(idx, "afe_idx")]),
        Xv, yv, lr.predict_proba((Xv[:, idx] - off) * scl)))

    # ArrayFeatureExtractor -> tree classifier on the picked columns (float thresholds).
    Xt, yt, Xv, yv = cls_data(3, seed=29)
    idx = np.array([4, 0, 2, 6, 1], np.int64)
    est = DecisionTreeClassifier(max_depth=6, random_state=0).fit(Xt[:, idx], yt)
    trees = [sk_tree(est, 0, lambda t, i: list(enumerate(class_fractions(t, i))))]
    Xv = edge_rows(Xv, trees, 30, 29, cols=idx)
    pre = [helper.make_node("ArrayFeatureExtractor", ["input", "afe_idx"], ["picked"],
                            name="ArrayFeatureExtractor", domain=ML)]
    node = tree_node("dt_picked", trees, "picked", ["label", "probabilities"], True, [0, 1, 2],
                     modes="BRANCH_LT")
    add(Case("afe_dt3_lt_f32", classifier_model(pre, node, 8, 3, False, ml=1,
                                                inits=[numpy_helper.from_array(idx, "afe_idx")]),
             Xv, yv, est.predict_proba(Xv[:, idx]), flagged_rows(trees, Xv[:, idx])))

    # LinearClassifier with one row of coefficients and 2 labels, NONE: [1 - s, s] (a linear
    # probability model fitted by LinearRegression on 0/1 labels).
    r = np.random.default_rng(30)
    X = r.uniform(0, 1, size=(1100, 6)).astype(np.float32)
    w = np.array([0.3, -0.2, 0.15, 0.1, 0.0, -0.05])
    y = (r.random(1100) < 0.45 + (X - 0.5) @ w).astype(np.int64)
    m = LinearRegression().fit(X[:600], y[:600])
    p1 = m.predict(X[600:])
    assert p1.min() > 0.02 and p1.max() < 0.98
    clf = linear_classifier("LinearClassifier", "input", m.coef_[None], [m.intercept_], 2, "NONE")
    add(Case("linear_one_row_none", classifier_model([], clf, 6, 2, False, ml=1), X[600:],
             y[600:], np.stack([1 - p1, p1], 1)))

    # Found by attacks: a Normalizer of an all-zero row keeps it (it had divided 0 by 0 and
    # sent a NaN down the tree), MAX skips a NaN; an Imputer of a value at default opset 10
    # (its comparison had been refused as Equal below opset 11); two unnamed Scalers (the
    # names of their constants had clashed).
    Xz = r.uniform(0.1, 1, size=(40, 3)).astype(np.float32)
    Xz[::4] = 0
    Xz[1::4, 1] = np.nan
    yz = np.zeros(len(Xz))
    def tiny_reg(inp):
        return helper.make_node(
            "TreeEnsembleRegressor", [inp], ["variable"], name="after", domain=ML, n_targets=1,
            nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
            nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.4, 0, 0],
            nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
            target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0],
            target_weights=[10.0, 20.0])
    for norm in ("MAX", "L1", "L2"):
        m = regressor_model([normalizer("input", "n", norm)], tiny_reg("n"), 3)
        Xn = Xz if norm == "MAX" else np.nan_to_num(Xz)
        add(Case("normalizer_zero_rows_" + norm, m, Xn, yz, evaluate(m, Xn), regression=True))
    m = regressor_model([imputer("input", "imp", [0.5], replaced=0.0)], tiny_reg("imp"), 3,
                        opset=10)
    Xi = np.nan_to_num(Xz)
    add(Case("imputer_value_opset10", m, Xi, yz, evaluate(m, Xi), regression=True))
    s1, s2 = scaler("input", "s1", [0.5], [2.0]), scaler("s1", "s2", [0.1], [3.0])
    s1.name = s2.name = ""
    m = regressor_model([s1, s2], tiny_reg("s2"), 3)
    add(Case("two_unnamed_scalers", m, Xi, yz, evaluate(m, Xi), regression=True))
    return cases


# ---------------------------------------------------------------- refusals

def small_trees(K=2, regression=False):
    """Two depth-2 trees on 4 features; leaf weights for every class (or one target)."""
    def tree(tid, f0, f1, f2):
        leaves = {}
        for n, v in ((3, 0.2), (4, 0.6), (5, 0.9), (6, 0.1)):
            leaves[n] = [(0, v)] if regression else [(c, (v if c == 1 else 1 - v) / 2
                                                      if K == 2 else 1 / (2 * K))
                                                     for c in range(K)]
        return dict(tid=tid, cmp="LEQ", feat=np.array([f0, f1, f2, 0, 0, 0, 0]),
                    thr=np.array([0.0, -0.5, 0.5, 0, 0, 0, 0], np.float64),
                    left=np.array([1, 3, 5, -1, -1, -1, -1]),
                    right=np.array([2, 4, 6, -1, -1, -1, -1]), miss_left=np.zeros(7, bool),
                    leaves=leaves)
    return [tree(0, 0, 1, 2), tree(1, 3, 0, 1)]


def tree_attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def remake(node, **changes):
    at = tree_attrs(node)
    for k, v in changes.items():
        if v is None:
            at.pop(k, None)
        else:
            at[k] = v
    return helper.make_node(node.op_type, list(node.input), list(node.output), name=node.name,
                            domain=node.domain, **at)


def refusal_models():
    """(name, model, node name the message must hold or None, acceptable alternatives)."""
    F = 4
    out = []

    def clf(name="bad_tree", trees=None, **kw):
        return tree_node(name, trees or small_trees(), "input", ["label", "probabilities"], True,
                         [0, 1], **kw)

    def cm(node, ml=1, K=2):
        return classifier_model([], node, F, K, False, ml=ml)

    def with_list(node, key, i, v):
        at = tree_attrs(node)
        lst = list(at[key])
        lst[i] = v
        return remake(node, **{key: lst})

    good = clf("good_tree")
    leaf_only = dict(tid=2, cmp="LEQ", feat=np.array([0]), thr=np.array([0.0]),
                     left=np.array([-1]), right=np.array([-1]), miss_left=np.zeros(1, bool),
                     leaves={0: [(0, 0.75)]})
    good_reg = tree_node("good_reg", small_trees(regression=True), "input", ["variable"], False)
    controls = [("control_classifier", cm(good)),
                ("control_regressor", regressor_model([], good_reg, F)),
                ("control_leaf_only_tree", regressor_model([], tree_node(
                    "good_leaf_only", small_trees(regression=True) + [leaf_only], "input",
                    ["variable"], False, agg="AVERAGE", base=[-0.25]), F, ml=1)),
                ("control_binary_one_id_none", cm(tree_node(
                    "good_one_id", [dict(t, leaves={n: [(0, w[1][1] * 0.9)] for n, w in
                                                    t["leaves"].items()}) for t in small_trees()],
                    "input", ["label", "probabilities"], True, [0, 1], base=[0.05]))),
                ("control_binary_mixed_logistic", cm(tree_node(
                    "good_mixed", [dict(t, leaves={n: [(0, w[1][1] - 0.3)] for n, w in
                                                   t["leaves"].items()}) for t in small_trees()],
                    "input", ["label", "probabilities"], True, [0, 1], post="LOGISTIC")))]

    modes_at = tree_attrs(good)["nodes_modes"]
    branch = [i for i, m in enumerate(modes_at) if m != b"LEAF"]
    out.append(("branch_eq", cm(with_list(good, "nodes_modes", branch[1], "BRANCH_EQ")),
                "good_tree"))
    out.append(("branch_neq", cm(with_list(good, "nodes_modes", branch[0], "BRANCH_NEQ")),
                "good_tree"))
    out.append(("string_labels", cm(remake(good, classlabels_int64s=None,
                                           classlabels_strings=["no", "yes"])), "good_tree"))
    # Class values other than 0..k-1 are taken (run_class_values), in increasing order, within
    # int32, the same in every node naming them.
    out.append(("labels_descending", cm(remake(good, classlabels_int64s=[2, 1])), "not above"))
    out.append(("labels_past_int32", cm(remake(good, classlabels_int64s=[0, 2**31])),
                "outside int32"))
    out.append(("labels_zipmap_differ", classifier_model(
        [], remake(good, classlabels_int64s=[1, 2]), F, 2, True), ("ZipMap", "good_tree")))
    out.append(("aggregate_max", regressor_model([], remake(good_reg, aggregate_function="MAX"),
                                                 F), "good_reg"))
    out.append(("aggregate_min", regressor_model([], remake(good_reg, aggregate_function="MIN"),
                                                 F), "good_reg"))
    out.append(("post_probit", cm(remake(good, post_transform="PROBIT")), "good_tree"))
    out.append(("post_softmax_zero", cm(remake(good, post_transform="SOFTMAX_ZERO")),
                "good_tree"))
    # A node reading the label output (the graph outputs its copy).
    g = cm(good)
    g.graph.node.append(helper.make_node("Identity", ["label"], ["label_copy"],
                                         name="reads_label"))
    g.graph.output[0].name = "label_copy"
    # (Its outputs are a copy of the label and the probabilities: no ONNX-ML node's label is an
    # output, so the name of the model's output is asked for before compiling.)
    out.append(("label_read", g, ("reads_label", "name the model's with --output-name")))
    # Node ids of tree 0 skip 5 (its nodes are 0..4, 6, 7).
    trees = small_trees()
    t0 = trees[0]
    t0["left"] = np.array([1, 3, 6, -1, -1, -1, -1])
    t0["right"] = np.array([2, 4, 7, -1, -1, -1, -1])
    n = tree_node("skips", trees, "input", ["label", "probabilities"], True, [0, 1])
    at = tree_attrs(n)
    ids = list(at["nodes_nodeids"])
    for k, (tid, nid) in enumerate(zip(at["nodes_treeids"], ids)):
        if tid == 0 and nid >= 5:
            ids[k] = nid + 1
    cids = [nid + 1 if tid == 0 and nid >= 5 else nid
            for tid, nid in zip(at["class_treeids"], at["class_nodeids"])]
    out.append(("node_ids_skip", cm(remake(n, nodes_nodeids=ids, class_nodeids=cids)), "skips"))
    out.append(("true_id_out_of_range", cm(with_list(clf("oob_child"), "nodes_truenodeids",
                                                     branch[1], 99)), "oob_child"))
    # Node 1 of tree 0 sends its false branch back to the root.
    cyc = clf("cyclic")
    at = tree_attrs(cyc)
    k = [i for i, (tid, nid) in enumerate(zip(at["nodes_treeids"], at["nodes_nodeids"]))
         if tid == 0 and nid == 1][0]
    out.append(("tree_cycle", cm(with_list(cyc, "nodes_falsenodeids", k, 0)), "cyclic"))
    out.append(("feature_out_of_range", cm(with_list(clf("wide_feature"), "nodes_featureids",
                                                     branch[0], F)), "wide_feature"))
    out.append(("nan_threshold", cm(with_list(clf("nan_thr"), "nodes_values", branch[2],
                                              float("nan"))), "nan_thr"))
    vals = [np.nan if i == branch[0] else v for i, v in enumerate(tree_attrs(good)["nodes_values"])]
    out.append(("nan_threshold_f64", cm(remake(clf("nan_thr64"), nodes_values=None,
                                               nodes_values_as_tensor=dbl_tensor("v", vals)),
                                        ml=3), "nan_thr64"))
    svm = helper.make_node("SVMClassifier", ["input"], ["label", "probabilities"],
                           name="svm_node", domain=ML, classlabels_ints=[0, 1],
                           coefficients=[1.0, -1.0], kernel_params=[0.1, 0.0, 3.0],
                           kernel_type="RBF", rho=[0.1], support_vectors=[0.0] * 8,
                           vectors_per_class=[1, 1], post_transform="NONE")
    out.append(("svm_classifier", cm(svm), "svm_node"))
    le = helper.make_node("LabelEncoder", ["input"], ["encoded"], name="label_encoder",
                          domain=ML, keys_floats=[0.0, 1.0], values_floats=[1.0, 2.0])
    out.append(("label_encoder", regressor_model(
        [le], linear_regressor("lin", "encoded", [1.0] * F, 0.0), F, ml=2), "label_encoder"))
    out.append(("ml_opset_4", cm(clf("opset4_tree"), ml=4), None))
    for cid in (0, 1):
        one_pos = tree_node("pos_logistic%d" % cid, [dict(t, leaves={n: [(cid, w[1][1])] for n, w
                                                                     in t["leaves"].items()})
                                                     for t in small_trees()],
                            "input", ["label", "probabilities"], True, [0, 1], post="LOGISTIC")
        out.append(("binary_all_positive_logistic_id%d" % cid, cm(one_pos),
                    "pos_logistic%d" % cid))
    # every weight for class 1 of two: ONNX Runtime writes [0, s] (NONE), not probabilities
    one_id1 = tree_node("one_id1_none", [dict(t, leaves={n: [(1, w[1][1])] for n, w in
                                                       t["leaves"].items()})
                                         for t in small_trees()],
                        "input", ["label", "probabilities"], True, [0, 1])
    out.append(("binary_one_id1_none", cm(one_id1), "one_id1_none"))
    mixed_none = tree_node("mixed_none", [dict(t, leaves={n: [(0, w[1][1] - 0.3)] for n, w in
                                                          t["leaves"].items()})
                                          for t in small_trees()],
                           "input", ["label", "probabilities"], True, [0, 1])
    out.append(("binary_mixed_sign_none", cm(mixed_none), "mixed_none"))
    out.append(("class_id_out_of_range", cm(with_list(clf("cls_oob"), "class_ids", 3, 2)),
                "cls_oob"))
    lin1 = linear_classifier("lin_one_row_logistic", "input", [[0.1] * F], [0.5], 2, "LOGISTIC")
    out.append(("linear_one_row_logistic", cm(lin1), "lin_one_row_logistic"))
    # Malformed structure: every one is an error in the file, named with its node.
    out.append(("duplicate_node_id", cm(with_list(clf("dup_ids"), "nodes_nodeids", 2, 1)),
                "dup_ids"))
    out.append(("child_is_itself", cm(with_list(clf("self_loop"), "nodes_truenodeids", 0, 0)),
                "self_loop"))
    out.append(("nodes_lengths_differ", cm(remake(clf("short_modes"), nodes_modes=list(
        tree_attrs(good)["nodes_modes"])[:-1])), "short_modes"))
    out.append(("weight_for_missing_node", cm(with_list(clf("weight_nowhere"), "class_nodeids", 0,
                                                        42)), "weight_nowhere"))
    out.append(("regressor_two_targets", regressor_model([], remake(good_reg, n_targets=2), F),
                "good_reg"))
    afe = helper.make_node("ArrayFeatureExtractor", ["input", "idx"], ["picked"], name="afe_oob",
                           domain=ML)
    out.append(("afe_index_out_of_range", regressor_model(
        [afe], linear_regressor("lin2", "picked", [1.0, 1.0], 0.0), F,
        inits=[numpy_helper.from_array(np.array([1, F], np.int64), "idx")]), "afe_oob"))
    out.append(("scaler_offset_length", regressor_model(
        [helper.make_node("Scaler", ["input"], ["s"], name="scaler3", domain=ML,
                          offset=[0.0, 0.0, 0.0], scale=[1.0])],
        linear_regressor("lin", "s", [1.0] * F, 0.0), F), "scaler3"))
    out.append(("linear_coefficients_short", cm(linear_classifier(
        "lin_short", "input", [1.0] * (2 * F - 1), [0.0, 0.0], 2, "SOFTMAX")), "lin_short"))
    out.append(("normalizer_norm_l3", regressor_model(
        [normalizer("input", "s", "L3", "norm_l3")], linear_regressor("lin", "s", [1.0] * F, 0.0),
        F), "norm_l3"))
    ohe = helper.make_node("OneHotEncoder", ["input"], ["onehot"], name="one_hot", domain=ML,
                           cats_int64s=[0, 1], zeros=1)
    out.append(("one_hot_encoder", regressor_model(
        [ohe], linear_regressor("lin", "onehot", [1.0] * 2 * F, 0.0), F), "one_hot"))
    return controls, out


def run_refusals(tmp):
    controls, cases = refusal_models()
    r = np.random.default_rng(40)
    data = os.path.join(tmp, "refusal_data.h5")
    with h5py.File(data, "w") as f:
        f["X"] = r.normal(size=(64, 4)).astype(np.float32)
        f["y"] = (r.random(64) < 0.5).astype(np.int64)
    for name, m in controls:
        onnx.checker.check_model(m)
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        if REFERENCE_ONLY:
            evaluate(m, np.zeros((3, 4), np.float32))
            continue
        doc, got, err = run_eval(path, data)
        if check(doc is not None, "%s (a valid graph that refusals alter): %s" % (name, err)):
            with h5py.File(data) as f:
                want = evaluate(m, f["X"][()])
            d = float(np.max(row_diff(got, want, want.ndim == 1)))
            check(d <= TOL, "%s: max diff %.3g from the evaluator" % (name, d))
            print("ok %-28s max diff %.2g" % (name, d))
    for name, m, want in cases:
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        if REFERENCE_ONLY:
            continue
        p = subprocess.run([SG, "eval", "--model", path, "--data", data], capture_output=True,
                           text=True, timeout=60)
        lines = p.stderr.strip().splitlines()
        line = lines[0] if lines else ""
        ok = (p.returncode == 2 and len(lines) == 1
              and re.match(r"(stagegate: )?%s: " % re.escape(path), line) is not None)
        names = (want,) if isinstance(want, str) else (want or ())
        if names:
            ok = ok and any(w in line for w in names)
        check(ok, "refusal %s: exit %d, stderr %r (want exit 2, one line starting with the "
              "model path%s)" % (name, p.returncode, p.stderr.strip(),
                                 ", naming " + " or ".join(names) if names else ""))
        if ok:
            print("ok refused %-30s %s" % (name, line.split(path + ": ", 1)[1][:120]))
    return len(cases)


def run_class_values(tmp):
    """Classifiers whose classlabels are not 0..k-1 (skl2onnx writes a model's classes_, e.g.
    {-1, 1}): /y holds those values, /label and the report's model.classes give them back,
    and the probabilities and metrics match the evaluator and scikit-learn on them."""
    F = 4
    r = np.random.default_rng(41)
    good = tree_node("tree_pm1", small_trees(), "input", ["label", "probabilities"], True,
                     [0, 1])
    zipped = classifier_model([], remake(good, classlabels_int64s=[-1, 1]), F, 2, True)
    zm = zipped.graph.node[-1]
    del zm.attribute[:]
    zm.attribute.extend([helper.make_attribute("classlabels_int64s", [-1, 1])])
    W = r.normal(size=(3, F))
    lin = helper.make_node("LinearClassifier", ["input"], ["label", "probability_tensor"],
                           name="lin_3_5_8", domain=ML, coefficients=[float(c) for c in W.ravel()],
                           intercepts=[0.1, -0.2, 0.3], classlabels_ints=[3, 5, 8],
                           post_transform="SOFTMAX")
    cases = [("class_values_tree_zipmap", zipped, [-1, 1]),
             ("class_values_tree_plain",
              classifier_model([], remake(good, classlabels_int64s=[-1, 1]), F, 2, False),
              [-1, 1]),
             ("class_values_linear_3_5_8", classifier_model([], lin, F, 3, False), [3, 5, 8])]
    X = r.normal(size=(500, F)).astype(np.float32)
    for name, m, values in cases:
        onnx.checker.check_model(m)
        path, data = (os.path.join(tmp, name + e) for e in (".onnx", ".h5"))
        onnx.save(m, path)
        y = np.asarray(values)[r.integers(0, len(values), size=len(X))]
        with h5py.File(data, "w") as f:
            f["X"], f["y"] = X, y
        ref = evaluate(m, X)
        if REFERENCE_ONLY:
            continue
        doc, got, err = run_eval(path, data)
        if not check(doc is not None, "%s: %s" % (name, err)):
            continue
        with h5py.File(path + ".pred.h5") as f:
            label, stored = f["label"][()], f["classes"][()].tolist()
        d = float(np.max(row_diff(got, ref, False)))
        srt = np.sort(ref, 1)
        keep = srt[:, -1] - srt[:, -2] > TOL
        want = np.asarray(values)[ref.argmax(1)]
        ok = (doc["model"].get("classes") == values and stored == values and d <= TOL and
              np.array_equal(label[keep], want[keep]))
        acc = accuracy_score(y, label)
        ll = log_loss(y, np.clip(got.astype(np.float64), 0, 1), labels=values)
        ok = ok and abs(doc["metrics"]["accuracy"] - acc) <= 1e-9
        ok = ok and abs(doc["metrics"]["log_loss"] - ll) <= TOL * max(1, ll)
        check(ok, "%s: model.classes %s, /classes %s, max diff %.3g, labels equal %s, accuracy "
              "%r vs %r, log_loss %r vs %r" % (
                  name, doc["model"].get("classes"), stored, d,
                  np.array_equal(label[keep], want[keep]), doc["metrics"]["accuracy"], acc,
                  doc["metrics"]["log_loss"], ll))
        if ok:
            print("ok %-28s classes %s, max diff %.2g" % (name, values, d))
    if REFERENCE_ONLY:
        return
    # Labels 0/1 are not classes of a model of -1 and 1: refused, naming the row.
    data = os.path.join(tmp, "labels_0_1.h5")
    with h5py.File(data, "w") as f:
        f["X"], f["y"] = X, np.r_[[-1, 1, 1, 0], np.ones(len(X) - 4, np.int64)]
    path = os.path.join(tmp, "class_values_tree_plain.onnx")
    p = subprocess.run([SG, "eval", "--model", path, "--data", data], capture_output=True,
                       text=True, timeout=60)
    want = "stagegate: %s: /y row 3 is 0, not one of the classes (-1, 1) of model %s" % (
        data, path)
    check(p.returncode == 2 and p.stderr.strip().splitlines() == [want],
          "labels outside the classes: exit %d, %r" % (p.returncode, p.stderr))


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="sg_onnxml_")
    cases = tree_cases() + linear_cases()
    for c in cases:
        try:
            run_case(tmp, c)
        except Exception as e:  # a converter or evaluator error is a failure of this case
            check(False, "%s: %s: %s" % (c.name, type(e).__name__, e))
    n_ref = run_refusals(tmp)
    run_class_values(tmp)
    print("%.1f s" % (time.time() - t0))
    if failures:
        print("%d failures:" % len(failures))
        for f in failures:
            print("  " + f)
        sys.exit(1)
    subprocess.run(["rm", "-rf", tmp])
    print("onnxml parity OK: %d models, %d refusals" % (len(cases), n_ref))


if __name__ == "__main__":
    main()
