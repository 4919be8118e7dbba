#!/usr/bin/python3
"""Ensembles of many tiny trees keep the node layout alone (include/stagegate/trees.h,
SG_TREE_LEVELS_MAX_BYTES): a level copy costs 760 bytes a tree whatever the tree holds.

Two ONNX-ML regressors of depth-1 trees (stumps) on random features and thresholds:
- 360,000 stumps: their level copies (273.6 MB) would pass both the 256 MiB budget and 8
  times their nodes (17.3 MB), so the model keeps the node layout (param_bytes says so);
- 2,000 stumps: well inside the budget, so the level copies are built.
Leaves are multiples of 2^-10 whose partial sums stay below 2^13: every sum is exact in
float32, so the reference is exact in any order, and stagegate must match it to the bit,
with every kernel variant this CPU runs and on the one-row path (sg_onnx_one_vs_batch).
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper

from kernel_variants import runnable_variants

SG = os.environ["STAGEGATE_BIN"]
ONE_VS_BATCH = os.environ.get("SG_ONNX_ONE_VS_BATCH")
LEVELS_BYTES = 760  # sizeof(sg_tree_levels)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def stumps(T, F, X, seed):
    """T stumps: x[f] < thr goes to node 1 (leaf a), else node 2 (leaf b); thresholds are
    values of X (rows land exactly on them), NaN takes the false branch."""
    r = np.random.default_rng(seed)
    feat = r.integers(0, F, T)
    thr = np.nan_to_num(X[r.integers(0, len(X), T), feat], nan=0.25).astype(np.float32)
    leaf = (r.integers(-8, 9, (T, 2)) / 1024.0).astype(np.float32)
    tid = np.repeat(np.arange(T), 3)
    nid = np.tile([0, 1, 2], T)
    fid = np.zeros(3 * T, np.int64)
    fid[0::3] = feat
    val = np.zeros(3 * T, np.float32)
    val[0::3] = thr
    modes = ["BRANCH_LT", "LEAF", "LEAF"] * T
    true_ids = np.tile([1, 0, 0], T)
    false_ids = np.tile([2, 0, 0], T)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], name="stumps",
                            domain="ai.onnx.ml", n_targets=1, aggregate_function="SUM",
                            post_transform="NONE")
    # The long lists are set directly: onnx.helper's per-element checks take 10x longer.
    for key, kind, values in (
            ("nodes_treeids", "ints", tid), ("nodes_nodeids", "ints", nid),
            ("nodes_featureids", "ints", fid), ("nodes_values", "floats", val),
            ("nodes_truenodeids", "ints", true_ids), ("nodes_falsenodeids", "ints", false_ids),
            ("nodes_missing_value_tracks_true", "ints", np.zeros(3 * T, np.int64)),
            ("target_treeids", "ints", np.repeat(np.arange(T), 2)),
            ("target_nodeids", "ints", np.tile([1, 2], T)),
            ("target_ids", "ints", np.zeros(2 * T, np.int64)),
            ("target_weights", "floats", leaf.reshape(-1))):
        a = AttributeProto(name=key, type=AttributeProto.INTS if kind == "ints"
                           else AttributeProto.FLOATS)
        getattr(a, kind).extend(values.tolist())
        node.attribute.append(a)
    a = AttributeProto(name="nodes_modes", type=AttributeProto.STRINGS)
    a.strings.extend([m.encode() for m in modes])
    node.attribute.append(a)
    g = helper.make_graph([node], "stumps",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", F])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15),
                                            helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    # The exact reference: each row's leaves summed in float64 (exact in any order: multiples
    # of 2^-10), as every false leaf plus, where the row goes left, the difference.
    # Per feature: the stumps sorted by threshold, and for a row value x the differences of
    # the stumps whose threshold is above x (a suffix sum; NaN sorts last and adds none).
    lf = leaf.astype(np.float64)
    want = np.full(len(X), lf[:, 1].sum())
    for j in range(F):
        on = feat == j
        order = np.argsort(thr[on], kind="stable")
        t = thr[on][order]
        d = (lf[on, 0] - lf[on, 1])[order]
        suffix = np.concatenate([np.cumsum(d[::-1])[::-1], [0.0]])
        want += suffix[np.searchsorted(t, X[:, j], side="right")]
    return m, want


def case(tmp, name, T, X, y, variants, levels_kept):
    m, want = stumps(T, X.shape[1], X, seed=T)
    check(np.abs(want).max() < 2 ** 13, "%s: the reference's sums are not all exact" % name)
    path = os.path.join(tmp, name + ".onnx")
    onnx.save(m, path)
    data = os.path.join(tmp, name + ".h5")
    with h5py.File(data, "w") as f:
        f["X"] = X
        f["y"] = y
    for isa in variants:
        preds = os.path.join(tmp, "%s_%s.pred.h5" % (name, isa))
        p = subprocess.run([SG, "eval", "--model", path, "--data", data, "--json",
                            "--predictions", preds], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, STAGEGATE_ISA=isa))
        if not check(p.returncode == 0, "%s %s: eval exit %d: %s" % (name, isa, p.returncode,
                                                                     p.stderr.strip())):
            continue
        doc = json.loads(p.stdout)
        with h5py.File(preds) as f:
            got = f["prediction"][()].astype(np.float64).reshape(-1)
        bad = got != want
        check(not bad.any(), "%s %s: %d of %d rows differ from the exact sum (first %s)"
              % (name, isa, bad.sum(), len(bad), np.flatnonzero(bad)[:3]))
        pb = doc["model"]["param_bytes"]
        if levels_kept:
            check(pb >= T * LEVELS_BYTES, "%s %s: param_bytes %d: the level copies are missing"
                  % (name, isa, pb))
        else:
            check(pb < T * LEVELS_BYTES / 4, "%s %s: param_bytes %d: level copies were built "
                  "for %d stumps" % (name, isa, pb, T))
        print("ok %-14s %-7s %d rows exact, param_bytes %d" % (name, isa, len(got), pb))
    if ONE_VS_BATCH:
        p = subprocess.run([ONE_VS_BATCH, path], capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, "%s: one row vs batch: %s" % (name, (p.stderr or p.stdout).strip()))


def main():
    tmp = tempfile.mkdtemp(prefix="sg_levels_budget_")
    variants = runnable_variants(SG, check)
    r = np.random.default_rng(7)
    F = 16
    X = r.standard_normal((1500, F)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3] * 2) / 2  # coarse: many rows on a threshold
    X[r.random(X.shape) < 0.03] = np.nan
    y = r.standard_normal(len(X))
    case(tmp, "stumps_360000", 360000, X, y, variants, levels_kept=False)
    case(tmp, "stumps_2000", 2000, X, y, variants, levels_kept=True)
    subprocess.run(["rm", "-rf", tmp])
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    print("many tiny trees keep the node layout, with the same bits")


if __name__ == "__main__":
    main()
