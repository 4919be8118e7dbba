#!/usr/bin/python3
"""Bad XGBoost JSON models: `stagegate eval` exits 2 with one line on stderr that
names the file and the JSON path of the bad value; never a crash."""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import xgboost as xgb

SG = os.environ["STAGEGATE_BIN"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(model, dataset):
    return subprocess.run([SG, "eval", "--model", model, "--data", dataset], capture_output=True,
                          text=True)


def expect_refused(tmp, name, doc_or_text, dataset, words):
    """doc_or_text: a document (written as JSON), text, or bytes (written to NAME.ubj)."""
    path = os.path.join(tmp, name + (".ubj" if isinstance(doc_or_text, bytes) else ".json"))
    with open(path, "wb" if isinstance(doc_or_text, bytes) else "w") as f:
        f.write(doc_or_text if isinstance(doc_or_text, (str, bytes)) else json.dumps(doc_or_text))
    p = run(path, dataset)
    lines = p.stderr.strip().splitlines()
    ok = (p.returncode == 2 and len(lines) == 1 and path in lines[0] and
          all(w in lines[0] for w in words))
    print("%-24s exit %d: %s" % (name, p.returncode, p.stderr.strip()))
    check(ok, "%s: want exit 2 and one line naming %s and %s; got %d %r" %
          (name, path, words, p.returncode, p.stderr))


def trees_of(doc):
    return doc["learner"]["gradient_booster"]["model"]["trees"]


def with_stats(tree):
    """A hand-made tree with the per-node arrays XGBoost requires and prediction ignores."""
    n = len(tree["left_children"])
    parents = [2147483647] * n
    for i in range(n):
        for kid in (tree["left_children"][i], tree["right_children"][i]):
            if kid >= 0:
                parents[kid] = i
    tree.update({"base_weights": [0.0] * n, "loss_changes": [0.0] * n,
                 "sum_hessian": [1.0] * n, "parents": parents})
    return tree


XGB_PENDING = []


def expect_xgboost_refuses(path, what):
    """Records that xgboost itself must refuse to load and predict with the model at path (a
    copy of the file as it is now); check_xgboost_refusals() asks xgboost about them all."""
    copy_path = os.path.join(os.path.dirname(path), "xgb-check-%d-%s" % (len(XGB_PENDING),
                                                                         os.path.basename(path)))
    shutil.copyfile(path, copy_path)
    XGB_PENDING.append((copy_path, what))


def check_xgboost_refusals():
    """Asks xgboost, in a child, whether it loads and predicts with each recorded file. One
    child takes the files in turn and prints one line per file; some bad files crash xgboost,
    so a child that dies on a file counts that file as refused, and a new child goes on with
    the files after it (a child per file had cost an interpreter start and an import each)."""
    code = ("import sys, numpy, xgboost\n"
            "print('ready', flush=True)\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        b = xgboost.Booster(model_file=path)\n"
            "        b.predict(xgboost.DMatrix(numpy.zeros((2, 4), numpy.float32)))\n"
            "        print('loaded', flush=True)\n"
            "    except Exception:\n"
            "        print('refused', flush=True)\n")
    pending = list(XGB_PENDING)
    while pending:
        p = subprocess.run([sys.executable, "-c", code] + [f for f, _ in pending],
                           capture_output=True, text=True)
        words = p.stdout.split()
        if not words or words[0] != "ready":  # a child that cannot even import xgboost
            check(False, "the xgboost child did not start: %r" % p.stderr[-300:])
            break
        said = [w for w in words[1:] if w in ("loaded", "refused")]
        check(len(said) == len(pending) or p.returncode != 0,
              "the xgboost child answered %d of %d files and exited 0: %r" %
              (len(said), len(pending), p.stderr[-300:]))
        for (f, what), word in zip(pending, said):
            check(word == "refused", what)
        if len(said) >= len(pending):
            break
        # the child died on the file after the last answer: xgboost did not take that one
        pending = pending[len(said) + 1:]


with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(X, label=y), 3)
    good = os.path.join(tmp, "good.json")
    b.save_model(good)
    data = os.path.join(tmp, "val.h5")
    with h5py.File(data, "w") as f:
        f["X"], f["y"] = X, y
    data5 = os.path.join(tmp, "val5.h5")
    with h5py.File(data5, "w") as f:
        f["X"], f["y"] = np.hstack([X, X[:, :1]]), y
    p = run(good, data)
    check(p.returncode == 0, "the unmodified model must evaluate: %s" % p.stderr)
    base = json.load(open(good))
    T = "/learner/gradient_booster/model/trees/"

    expect_refused(tmp, "malformed", open(good).read()[:-20], data, ["malformed JSON", "line"])
    expect_refused(tmp, "not_xgboost", {"hello": 1}, data, ["/learner"])
    d = copy.deepcopy(base); d["learner"]["gradient_booster"]["name"] = "gbforest"
    expect_refused(tmp, "unknown_booster", d, data, ["/learner/gradient_booster/name", "gbforest"])
    # Several targets (multi-output regression): named as such, not as a number out of range.
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["num_target"] = "2"
    expect_refused(tmp, "two_targets", d, data,
                   ["/learner/learner_model_param/num_target is 2", "several targets", "one target only"])
    # gblinear: one weight per feature and group, then the biases, each a finite number.
    d = copy.deepcopy(base); d["learner"]["gradient_booster"]["name"] = "gblinear"
    W = "/learner/gradient_booster/model/weights"
    expect_refused(tmp, "linear_no_weights", d, data, [W, "missing"])
    bl = xgb.train({"booster": "gblinear", "objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 3)
    lin = os.path.join(tmp, "linear.json")
    bl.save_model(lin)
    p = run(lin, data)
    check(p.returncode == 0, "the unmodified gblinear model must evaluate: %s" % p.stderr)
    lbase = json.load(open(lin))
    def lw(doc):
        return doc["learner"]["gradient_booster"]["model"]["weights"]
    check(len(lw(lbase)) == 5, "gblinear on 4 features: %d weights" % len(lw(lbase)))
    d = copy.deepcopy(lbase); lw(d).pop()
    expect_refused(tmp, "linear_short", d, data, [W, "4 values", "need 5"])
    d = copy.deepcopy(lbase); lw(d).append(0.5)
    expect_refused(tmp, "linear_long", d, data, [W, "6 values", "need 5"])
    d = copy.deepcopy(lbase); d["learner"]["gradient_booster"]["model"]["weights"] = {"0": 1}
    expect_refused(tmp, "linear_not_array", d, data, [W, "not an array"])
    d = copy.deepcopy(lbase); lw(d)[2] = "x"
    expect_refused(tmp, "linear_string", d, data, [W + "/2", "not a finite number"])
    text = json.dumps(lbase).replace(json.dumps(lw(lbase)), json.dumps(lw(lbase)[:-1])[:-1] + ", NaN]")
    expect_refused(tmp, "linear_nan", text, data, [W + "/4", "not a finite number"])
    d = copy.deepcopy(lbase); lw(d)[0] = 1e39
    expect_refused(tmp, "linear_overflow", d, data, [W + "/0", "not a finite number"])
    d = copy.deepcopy(lbase); d["learner"]["learner_model_param"]["num_class"] = "3"
    d["learner"]["objective"]["name"] = "multi:softprob"
    expect_refused(tmp, "linear_groups", d, data, [W, "5 values", "3 output group(s) need 15"])
    # Parameter integers are strings of digits, as XGBoost writes them; the counts they give
    # must match the arrays (XGBoost sized its tree list from num_trees and crashed).
    LP = "/learner/learner_model_param/num_feature"
    for i, bad in enumerate(["4.0", 4, "+4", " 4", "04", "4 ", "", "0x4", "1e1"]):
        d = copy.deepcopy(base); d["learner"]["learner_model_param"]["num_feature"] = bad
        expect_refused(tmp, "num_feature_spelling_%d" % i, d, data, [LP, "string of digits"])
    G = "/learner/gradient_booster/model/gbtree_model_param/num_trees"
    for i, bad in enumerate(["5", "99", "0"]):
        d = copy.deepcopy(base)
        d["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] = bad
        expect_refused(tmp, "num_trees_%s" % bad, d, data, [G, "is %s but" % bad, "holds 3 trees"])
    d = copy.deepcopy(base); trees_of(d)[2]["tree_param"]["num_nodes"] = "1"
    expect_refused(tmp, "num_nodes", d, data, [T + "2/tree_param/num_nodes", "is 1 but the tree has"])
    d = copy.deepcopy(base); d["learner"]["objective"]["name"] = "rank:pairwise"
    expect_refused(tmp, "unknown_objective", d, data, ["/learner/objective/name", "rank:pairwise"])
    # A model's strings quoted in the error are shown, not acted on: an escape sequence and a
    # bidirectional override come out as \xHH, a newline as a space (one line).
    d = copy.deepcopy(base); d["learner"]["objective"]["name"] = "\x1b[2J\nok\u202eexe"
    expect_refused(tmp, "objective_escapes", d, data,
                   ["\\x1b[2J ok\\xe2\\x80\\xaeexe", "is not supported"])
    p = run(os.path.join(tmp, "objective_escapes.json"), data)
    check("\x1b" not in p.stderr and "\u202e" not in p.stderr,
          "raw control bytes reached stderr: %r" % p.stderr)
    # A log-link objective starts from log(base_score): 0 or less has no margin.
    d = copy.deepcopy(base); d["learner"]["objective"]["name"] = "count:poisson"
    d["learner"]["learner_model_param"]["base_score"] = "0E0"
    expect_refused(tmp, "poisson_base_zero", d, data, ["base_score", "not above 0", "count:poisson"])
    expect_refused(tmp, "feature_mismatch", base, data5, ["val5.h5", "5 features", "expects 4"])
    d = copy.deepcopy(base); t = trees_of(d)[1]; t["left_children"][0] = 999
    expect_refused(tmp, "child_out_of_range", d, data, [T + "1/left_children/0", "999"])
    d = copy.deepcopy(base); t = trees_of(d)[0]
    leaf = t["left_children"].index(-1, 1)
    inner = 1 if t["left_children"][1] != -1 else 2
    t["left_children"][inner], t["right_children"][inner] = 0, leaf
    expect_refused(tmp, "cycle", d, data, [T + "0", "cycle"])
    # Two splits sharing one pair of children: each split's pair is right = left + 1, and a
    # node is still reachable twice.
    share = {"left_children": [1, 3, 3, -1, -1], "right_children": [2, 4, 4, -1, -1],
             "split_indices": [0] * 5, "split_conditions": [0.5] * 5, "default_left": [0] * 5,
             "split_type": [0] * 5}
    d = copy.deepcopy(base); trees_of(d)[0].update(with_stats(share))
    trees_of(d)[0]["tree_param"]["num_nodes"] = "5"
    expect_refused(tmp, "reachable_twice", d, data, [T + "0", "reachable twice"])
    # A split whose right child is not its left child + 1: XGBoost's predictor takes left + 1
    # and never reads right_children, so the file would be two different trees (it had been
    # evaluated here as written: probabilities up to 0.0069 off XGBoost's own).
    d = copy.deepcopy(base); t = trees_of(d)[0]
    t["left_children"][0], t["right_children"][0] = t["right_children"][0], t["left_children"][0]
    expect_refused(tmp, "children_swapped", d, data,
                   [T + "0: node 0's right child", "is not its left child + 1", "XGBoost takes left + 1"])
    # Leaves' split index and default direction: read by no prediction, but refused with the
    # types XGBoost refuses there too ("Invalid cast").
    d = copy.deepcopy(base); t = trees_of(d)[0]
    leaf = t["left_children"].index(-1)
    t["split_indices"][leaf] = "0"
    expect_refused(tmp, "leaf_split_index_string", d, data, [T + "0/split_indices/%d" % leaf, "not an integer"])
    d = copy.deepcopy(base); t = trees_of(d)[0]
    t["default_left"][leaf] = None
    expect_refused(tmp, "leaf_default_left_null", d, data, [T + "0/default_left/%d" % leaf, "not 0, 1, true or false"])
    # base_score with more than 9 significant digits (Python's str of a float): XGBoost 1.7
    # reads it as 0.5, so the readers would differ; refused.
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["base_score"] = "0.30000000000000004"
    expect_refused(tmp, "base_score_17_digits", d, data, ["base_score", "more than 9 significant digits"])
    d = copy.deepcopy(base); t = trees_of(d)[0]; t["split_indices"][0] = 4
    expect_refused(tmp, "feature_out_of_range", d, data, [T + "0/split_indices/0", "feature 4"])
    d = copy.deepcopy(base); t = trees_of(d)[0]; t["split_conditions"][0] = 1e39
    expect_refused(tmp, "threshold_not_float32", d, data, [T + "0/split_conditions/0", "finite"])
    d = copy.deepcopy(base); t = trees_of(d)[0]; t["split_conditions"][0] = "NaN"
    expect_refused(tmp, "threshold_nan", d, data, [T + "0/split_conditions/0"])
    # XGBoost writes NaN (not JSON) as a categorical split's condition; on a numerical split
    # it is refused, and only the exact words NaN, Infinity and -Infinity are numbers.
    text = open(good).read()
    at = text.index('"split_conditions":[') + len('"split_conditions":[')
    end = text.index(",", at)
    expect_refused(tmp, "threshold_bare_nan", text[:at] + "NaN" + text[end:], data,
                   [T + "0/split_conditions/0", "finite"])
    expect_refused(tmp, "threshold_inf", text[:at] + "-Infinity" + text[end:], data,
                   [T + "0/split_conditions/0", "finite"])
    expect_refused(tmp, "threshold_nanx", text[:at] + "NaNa" + text[end:], data,
                   ["malformed JSON", "unexpected character 'N'"])
    expect_refused(tmp, "threshold_inf_lower", text[:at] + "-inf" + text[end:], data,
                   ["malformed JSON", "invalid number"])
    # split_type 1 says categorical: the node needs its category set.
    d = copy.deepcopy(base); t = trees_of(d)[0]; t["split_type"][0] = 1
    expect_refused(tmp, "categorical_no_set", d, data, [T + "0/categories_nodes", "expected 1"])
    d = copy.deepcopy(base); t = trees_of(d)[0]; t["split_type"][0] = 2
    expect_refused(tmp, "split_type_2", d, data, [T + "0/split_type/0", "categorical"])
    d = copy.deepcopy(base)
    d["learner"]["gradient_booster"]["model"]["trees"] = []
    d["learner"]["gradient_booster"]["model"]["tree_info"] = []
    expect_refused(tmp, "zero_trees", d, data, ["zero trees"])
    # A chain 70 levels deep: every left child is a leaf, every right child splits again (each
    # split's children a pair, right = left + 1, as XGBoost lays them out).
    n = 141
    chain = {"left_children": [], "right_children": [], "split_indices": [0] * n,
             "split_conditions": [0.5] * n, "default_left": [0] * n, "split_type": [0] * n}
    for i in range(n):
        inner = i % 2 == 0 and i + 2 < n
        chain["left_children"].append(i + 1 if inner else -1)
        chain["right_children"].append(i + 2 if inner else -1)
    d = copy.deepcopy(base); trees_of(d)[0].update(with_stats(chain))
    trees_of(d)[0]["tree_param"]["num_nodes"] = str(n)
    expect_refused(tmp, "too_deep", d, data, [T + "0", "depth", "64"])
    # Types and arrays as XGBoost reads them: an integer array holds JSON integers (not "1"
    # or 1.0), a float array floats (not "0.5" or 0); the per-node training statistics are
    # there, one per node; the tree's id is its place; the model parameters are there and
    # the trees make whole layers. xgboost itself refuses (or crashes on) every one of these.
    W = "not an integer (a JSON integer, not a string or a float)"
    F = "not a float"
    typed = [("left_str", "left_children", lambda v: str(v), W),
             ("left_float", "left_children", lambda v: float(v), W),
             ("right_float", "right_children", lambda v: float(v), W),
             ("feature_str", "split_indices", lambda v: str(v), W),
             ("feature_float", "split_indices", lambda v: float(v), W),
             ("cond_str", "split_conditions", lambda v: repr(v), F),
             ("cond_int", "split_conditions", lambda v: 0, F),
             ("dleft_str", "default_left", lambda v: str(v), "not 0, 1, true or false"),
             ("dleft_float", "default_left", lambda v: float(v), "not 0, 1, true or false"),
             ("stype_str", "split_type", lambda v: str(v), "not 0 (numerical)"),
             ("stype_float", "split_type", lambda v: float(v), "not 0 (numerical)"),
             ("weight_str", "base_weights", lambda v: repr(v), F),
             ("parent_float", "parents", lambda v: float(v), "not an integer")]
    for name, key, spoil, words in typed:
        d = copy.deepcopy(base); t = trees_of(d)[1]; t[key][0] = spoil(t[key][0])
        expect_refused(tmp, name, d, data, [T + "1/" + key + "/0", words])
        expect_xgboost_refuses(os.path.join(tmp, name + ".json"), "xgboost took " + name)
    for key in ("base_weights", "loss_changes", "sum_hessian", "parents"):
        d = copy.deepcopy(base); trees_of(d)[2][key].pop()
        expect_refused(tmp, key + "_short", d, data, [T + "2/" + key, "expected 15"])
        expect_xgboost_refuses(os.path.join(tmp, key + "_short.json"), "xgboost took short " + key)
        d = copy.deepcopy(base); del trees_of(d)[2][key]
        expect_refused(tmp, key + "_missing", d, data, [T + "2/" + key, "missing"])
    structural = [
        ("id_swapped", lambda d: trees_of(d)[1].__setitem__("id", 2), T + "1/id"),
        ("id_str", lambda d: trees_of(d)[1].__setitem__("id", "1"), T + "1/id"),
        ("id_missing", lambda d: trees_of(d)[1].pop("id"), T + "1/id"),
        ("tree_param_missing", lambda d: trees_of(d)[1].pop("tree_param"), T + "1/tree_param"),
        ("gbtree_param_missing",
         lambda d: d["learner"]["gradient_booster"]["model"].pop("gbtree_model_param"),
         "/learner/gradient_booster/model/gbtree_model_param is missing"),
        ("tree_info_float",
         lambda d: d["learner"]["gradient_booster"]["model"]["tree_info"].__setitem__(0, 0.0),
         "/learner/gradient_booster/model/tree_info/0"),
    ]
    for name, spoil, words in structural:
        d = copy.deepcopy(base); spoil(d)
        expect_refused(tmp, name, d, data, [words])
        expect_xgboost_refuses(os.path.join(tmp, name + ".json"), "xgboost took " + name)
    # A scikit-learn model's best_iteration picks the rounds that predict: it must be a round
    # the model has, written as XGBoost writes it.
    for i, bad in enumerate(["3", "99", "-1", "1.0", "x"]):
        d = copy.deepcopy(base)
        d["learner"]["attributes"] = {"scikit_learn": "{}", "best_iteration": bad}
        expect_refused(tmp, "best_iteration_%d" % i, d, data, ["/learner/attributes/best_iteration"])
    # The estimator's parameters (its `missing` value among them) are a JSON text that
    # XGBClassifier.load_model reads back: one that is not, or a missing that is no number,
    # is refused rather than read as "NaN only".
    for i, (bad, words) in enumerate([
            (3, "/learner/attributes/scikit_learn is not a string"),
            ('{"missing": 0.0', "/learner/attributes/scikit_learn"),
            ("[1, 2]", "/learner/attributes/scikit_learn is not a JSON object"),
            ('{"missing": "0"}', "missing is not a number"),
            ('{"missing": [0]}', "missing is not a number")]):
        d = copy.deepcopy(base)
        d["learner"]["attributes"] = {"scikit_learn": bad}
        expect_refused(tmp, "sk_missing_%d" % i, d, data, [words])
    # Three trees in layers of two: xgboost predicts with the first layer only; refused.
    d = copy.deepcopy(base)
    d["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_parallel_tree"] = "2"
    expect_refused(tmp, "partial_layer", d, data,
                   ["gbtree_model_param", "3 trees are not whole layers", "drop the last 1"])
    d = copy.deepcopy(base); t = trees_of(d)[2]; del t["default_left"]
    expect_refused(tmp, "missing_array", d, data, [T + "2/default_left"])
    d = copy.deepcopy(base); t = trees_of(d)[2]; t["right_children"] = t["right_children"][:-1]
    expect_refused(tmp, "short_array", d, data, [T + "2/right_children"])
    d = copy.deepcopy(base); t = trees_of(d)[0]; t["right_children"][0] = -1
    expect_refused(tmp, "one_child", d, data, [T + "0", "one child"])
    d = copy.deepcopy(base); d["learner"]["gradient_booster"]["model"]["tree_info"][1] = 3
    expect_refused(tmp, "bad_group", d, data, ["tree_info/1"])
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["num_feature"] = "x"
    expect_refused(tmp, "bad_num_feature", d, data, ["/learner/learner_model_param/num_feature"])
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["base_score"] = "1.5"
    expect_refused(tmp, "bad_base_score", d, data, ["/learner/learner_model_param/base_score"])
    # A probability so small that its logit overflows in float: refused for its margin, not
    # as "not finite" (1e-45 is finite).
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["base_score"] = "1E-45"
    expect_refused(tmp, "base_score_logit_overflow", d, data,
                   ["base_score 1e-45 gives the starting margin -inf", "binary:logistic"])
    # base_score as XGBoost 2.1+ writes it, "[5E-1]": a malformed list, and one intercept per
    # class that differ (XGBoost 3.1 multi-class), are refused with the field named.
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["base_score"] = "[5E-1"
    expect_refused(tmp, "base_list_open", d, data, ["/learner/learner_model_param/base_score", "list"])
    d = copy.deepcopy(base); d["learner"]["learner_model_param"]["base_score"] = "[5E-1,5E-1]"
    expect_refused(tmp, "base_list_count", d, data, ["base_score", "2 entries for 1 output"])
    # Spellings strtod takes and XGBoost does not read as that number (it keeps 0.5 for
    # them): refused, not read as 0.3 or 0.25.
    for i, spelt in enumerate((" 0.3", "+0.3", "0x1p-2", "inf", "0.3 ", ".", "1e", "[+0.3]",
                               "[0x1p-2]")):
        d = copy.deepcopy(base); d["learner"]["learner_model_param"]["base_score"] = spelt
        expect_refused(tmp, "base_spelt_%d" % i, d, data, ["/learner/learner_model_param/base_score"])
    multi = os.path.join(tmp, "multi.json")
    yc = np.digitize(X[:, 0], [-0.5, 0.5]).astype(np.int32)
    xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
              xgb.DMatrix(X, label=yc), 2).save_model(multi)
    datac = os.path.join(tmp, "valc.h5")
    with h5py.File(datac, "w") as f:
        f["X"], f["y"] = X, yc
    d = json.load(open(multi)); d["learner"]["learner_model_param"]["base_score"] = "[1E-1,2E-1,7E-1]"
    expect_refused(tmp, "base_per_class", d, datac, ["base_score", "one intercept per output"])
    expect_refused(tmp, "empty", "", data, [])

    # Categorical splits: the category sets must be what XGBoost writes.
    Xc = X.copy(); Xc[:, 1] = rng.integers(0, 30, len(Xc)); Xc[:, 3] = rng.integers(0, 4, len(Xc))
    yk = (np.isin(Xc[:, 1], [1, 2, 3, 7, 11, 12, 20]) ^ (Xc[:, 0] > 0)).astype(np.int32)
    catm = os.path.join(tmp, "cat.json")
    xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist",
               "max_cat_to_onehot": 1}, xgb.DMatrix(Xc, label=yk, feature_types=["q", "c", "q", "c"],
                                                   enable_categorical=True), 3).save_model(catm)
    datak = os.path.join(tmp, "valk.h5")
    with h5py.File(datak, "w") as f:
        f["X"], f["y"] = Xc, yk
    p = run(catm, datak)
    check(p.returncode == 0, "the categorical model must evaluate: %s" % p.stderr)
    cbase = json.load(open(catm))

    def cat_tree(d):
        for i, t in enumerate(trees_of(d)):
            if len(t["categories_nodes"]) >= 2:
                return i, t
        raise AssertionError("no tree with two categorical splits")

    k, _ = cat_tree(cbase)
    P = T + "%d/" % k
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]; del t["categories_nodes"]
    expect_refused(tmp, "cat_no_nodes", d, datak, [P + "categories_nodes", "missing"])
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]; t["categories_sizes"].pop()
    expect_refused(tmp, "cat_sizes_short", d, datak, [P + "categories_sizes", "one per categorical"])
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]
    numeric = [i for i, st in enumerate(t["split_type"]) if st == 0 and t["left_children"][i] != -1]
    if numeric:
        t["split_type"][numeric[0]] = 1
        expect_refused(tmp, "cat_count_mismatch", d, datak, [P + "categories_nodes", "expected"])
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]
    t["categories_nodes"][0], t["categories_nodes"][1] = t["categories_nodes"][1], t["categories_nodes"][0]
    expect_refused(tmp, "cat_nodes_order", d, datak, [P + "categories_nodes/1", "above the previous"])
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]; t["categories_segments"][1] += 1
    expect_refused(tmp, "cat_segment_gap", d, datak, [P + "categories_segments/1"])
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]; t["categories_sizes"][-1] += 1000
    expect_refused(tmp, "cat_size_too_big", d, datak, [P + "categories_sizes/"])
    for bad, label in ((-1, "negative"), (1.5, "fraction"), (2 ** 24, "2_24"), ("x", "string")):
        d = copy.deepcopy(cbase); t = cat_tree(d)[1]; t["categories"][0] = bad
        expect_refused(tmp, "cat_" + label, d, datak, [P + "categories/0", "not a category"])
    d = copy.deepcopy(cbase); t = cat_tree(d)[1]; t["categories"].append(3)
    expect_refused(tmp, "cat_extra", d, datak, [P + "categories", "add up"])
    # A chain 60 levels deep of categorical splits over 1000 runs each: laid out as numerical
    # splits a walk would take far more than 255 steps.
    n = 121
    runs = list(range(0, 2000, 2))
    chain = {"left_children": [], "right_children": [], "split_indices": [1] * n,
             "split_conditions": [0.5] * n, "default_left": [0] * n, "split_type": [0] * n,
             "categories": [], "categories_nodes": [], "categories_segments": [],
             "categories_sizes": []}
    for i in range(n):
        inner = i % 2 == 0 and i + 2 < n
        chain["left_children"].append(i + 1 if inner else -1)
        chain["right_children"].append(i + 2 if inner else -1)
        if inner:
            chain["split_type"][i] = 1
            chain["categories_nodes"].append(i)
            chain["categories_segments"].append(len(chain["categories"]))
            chain["categories_sizes"].append(len(runs))
            chain["categories"] += runs
    d = copy.deepcopy(cbase); trees_of(d)[0].update(with_stats(chain))
    trees_of(d)[0]["tree_param"]["num_nodes"] = str(n)
    expect_refused(tmp, "cat_walk_too_long", d, datak, [T + "0", "steps", "255"])

    # UBJSON (.ubj): cut anywhere, or with a count patched to claim more than the file
    # holds, it is refused in one line naming the file and the byte; a NaN threshold, which
    # UBJSON can carry and JSON cannot, is refused by the model checks.
    good_ubj = os.path.join(tmp, "good.ubj")
    b.save_model(good_ubj)
    raw = open(good_ubj, "rb").read()
    check(raw[:1] == b"{" and raw[1:2] != b'"', "save_model(.ubj) did not write UBJSON")
    p = run(good_ubj, data)
    check(p.returncode == 0, "the good UBJSON model must evaluate: %d %r" % (p.returncode, p.stderr))

    for cut in (2, len(raw) // 3, len(raw) // 2, len(raw) - 1):
        expect_refused(tmp, "ubj_cut_%d" % cut, raw[:cut], data, ["malformed UBJSON at byte"])
    at = raw.find(b"[$d#")
    check(at > 0, "no typed float array in the UBJSON model")
    # The count's marker is at at+4: make it an int64 claiming 2^62 floats.
    big = raw[:at + 4] + b"L" + (1 << 62).to_bytes(8, "big") + raw[at + 4 + 1 + {
        ord("i"): 1, ord("U"): 1, ord("I"): 2, ord("l"): 4, ord("L"): 8}[raw[at + 4]]:]
    expect_refused(tmp, "ubj_huge_count", big, data, ["malformed UBJSON at byte", "count"])
    at = raw.find(b"split_conditions")
    at = raw.find(b"[$d#", at)
    n_marker = raw[at + 4]
    width = {ord("i"): 1, ord("U"): 1, ord("I"): 2, ord("l"): 4, ord("L"): 8}[n_marker]
    first = at + 5 + width
    nan = raw[:first] + b"\x7f\xc0\x00\x00" + raw[first + 4:]
    expect_refused(tmp, "ubj_nan_threshold", nan, data, ["split_conditions"])

    # NaN is a missing value for a tree model, but Inf is an error everywhere.
    inf = os.path.join(tmp, "inf.h5")
    Xi = X.copy(); Xi[7, 2] = np.inf
    with h5py.File(inf, "w") as f:
        f["X"], f["y"] = Xi, y
    p = run(good, inf)
    check(p.returncode == 2 and "inf.h5" in p.stderr and "row 7" in p.stderr,
          "Inf in /X must be refused for a tree model: %d %r" % (p.returncode, p.stderr))

    check(len(XGB_PENDING) > 20, "only %d files were recorded for xgboost" % len(XGB_PENDING))
    check_xgboost_refusals()

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("ok")
