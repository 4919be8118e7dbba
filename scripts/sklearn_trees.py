"""scikit-learn tree ensembles in the tree-ensemble layout of the stagegate model HDF5
format (docs/formats.md): used by export_sklearn.py.

Every tree is written breadth-first with adjacent children (right = left + 1), its
thresholds converted to the one rule the kernels use, `x < threshold` in float32:
scikit-learn sends a float32 x left when x <= t (t a float64), which is exactly
x < next float32 above the largest float32 <= t.

HistGradientBoosting compares a float64 x with its float64 thresholds, so for it the
float64 thresholds are written as well (threshold_f64, 0 on leaves): stagegate narrows a
float64 /X through them so that every split decides as in float64 (docs/formats.md).
"""
import numpy as np


class TreeExportError(Exception):
    """A refusal: the message is the one line shown to the user."""


def _strict_threshold(t):
    t = np.asarray(t, np.float64)
    f = t.astype(np.float32)
    over = f.astype(np.float64) > t
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return np.nextafter(f, np.float32(np.inf))


# The deepest tree the loader takes (SG_TREE_MAX_DEPTH in include/stagegate/trees.h).
MAX_DEPTH = 64


def _bfs(left, right, is_leaf):
    """Breadth-first order of the nodes reachable from 0, as a list of old indices."""
    order = [0]
    q = 0
    while q < len(order):
        i = order[q]
        q += 1
        if not is_leaf[i]:
            order.append(int(left[i]))
            order.append(int(right[i]))
    return order


class Trees:
    """Collects trees in the stored layout."""

    def __init__(self):
        self.n_nodes, self.group = [], []
        self.left, self.feature, self.threshold, self.default_left, self.leaf = [], [], [], [], []
        self.threshold_f64 = []

    def add(self, left, right, feature, threshold, default_left, leaf_value, is_leaf, group):
        order = _bfs(left, right, is_leaf)
        new = {old: k for k, old in enumerate(order)}
        n = len(order)
        L = np.full(n, -1, np.int32)
        F = np.zeros(n, np.int32)
        T = np.zeros(n, np.float32)
        D = np.zeros(n, np.uint8)
        V = np.zeros(n, np.float32)
        T64 = np.zeros(n, np.float64)
        thr64 = np.asarray(threshold, np.float64)[order]
        thr = _strict_threshold(thr64)
        depth = np.zeros(n, np.int64)
        for k, old in enumerate(order):
            if not is_leaf[old]:
                depth[new[int(left[old])]] = depth[new[int(right[old])]] = depth[k] + 1
        if depth.max() > MAX_DEPTH:
            raise TreeExportError(f"tree {len(self.n_nodes)} is {int(depth.max())} levels deep; "
                                  f"stagegate evaluates trees of at most {MAX_DEPTH} (set "
                                  "max_depth when training)")
        for k, old in enumerate(order):
            if is_leaf[old]:
                V[k] = leaf_value[old]
            else:
                L[k] = new[int(left[old])]
                F[k] = feature[old]
                T[k] = thr[k]
                T64[k] = thr64[k]
                D[k] = 1 if default_left[old] else 0
        self.n_nodes.append(n)
        self.group.append(group)
        for dst, src in ((self.left, L), (self.feature, F), (self.threshold, T),
                         (self.default_left, D), (self.leaf, V), (self.threshold_f64, T64)):
            dst.append(src)

    def arrays(self, float64_thresholds=False):
        """float64_thresholds: add threshold_f64 (a model that compares in float64)."""
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)
        extra = {"threshold_f64": cat(self.threshold_f64).astype(np.float64)} if float64_thresholds else {}
        return {**extra, "n_nodes": np.asarray(self.n_nodes, np.int64),
                "group": np.asarray(self.group, np.int32),
                "left": cat(self.left).astype(np.int32),
                "feature": cat(self.feature).astype(np.int32),
                "threshold": cat(self.threshold).astype(np.float32),
                "default_left": cat(self.default_left).astype(np.uint8),
                "leaf_value": cat(self.leaf).astype(np.float32)}


def _add_sklearn_tree(trees, tree_, leaf_of, group):
    """A DecisionTree's tree_; leaf_of(node) gives the (scaled) leaf value."""
    left, right = tree_.children_left, tree_.children_right
    is_leaf = left == -1
    leaves = np.array([leaf_of(i) if is_leaf[i] else 0.0 for i in range(tree_.node_count)])
    # scikit-learn 1.2 trees refuse NaN: the model says it routes no missing values.
    trees.add(left, right, tree_.feature, tree_.threshold, np.zeros(tree_.node_count, bool),
              leaves, is_leaf, group)


def forest(est, k, classifier):
    """RandomForest / ExtraTrees: the mean of the trees' outputs; a single DecisionTree or
    ExtraTree is a forest of one. The leaves are the trees' own values, and the reader divides
    their sum by the tree count (the file's mean_of), as scikit-learn averages: leaves of
    value / n summed in float32 had made a tie of 25 votes in 50 read 0.50000006."""
    trees = Trees()
    members = est.estimators_ if hasattr(est, "estimators_") else [est]
    n = len(members)
    for dt in members:
        t = dt.tree_
        if t.n_outputs != 1:
            raise TreeExportError(f"{type(est).__name__} has {t.n_outputs} outputs; only "
                                  "single-output models are supported")
        if classifier:
            proba = t.value[:, 0, :] / t.value[:, 0, :].sum(axis=1, keepdims=True)
            # Binary: one output, p1 (the reader makes [1 - p1, p1]); k classes: one per class.
            for g in ([1] if k == 2 else range(k)):
                _add_sklearn_tree(trees, t, lambda i, g=g: proba[i, g], 0 if k == 2 else g)
        else:
            _add_sklearn_tree(trees, t, lambda i: t.value[i, 0, 0], 0)
    groups = 1 if (not classifier or k == 2) else k
    output = "probability" if classifier else "identity"
    return trees, np.zeros(groups), output, False


def gradient_boosting(est, k, classifier, X0):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    if est.init_ != "zero" and type(est.init_) not in (DummyClassifier, DummyRegressor):
        raise TreeExportError(f"{type(est).__name__} with init={type(est.init_).__name__} is "
                              "not supported (only the default constant init or 'zero')")
    if classifier and est.loss not in ("log_loss", "deviance"):
        raise TreeExportError(f"GradientBoostingClassifier loss {est.loss!r} is not supported "
                              "(log_loss)")
    base = np.asarray(est._raw_predict_init(X0), np.float64)[0]
    trees = Trees()
    lr = est.learning_rate
    for stage in est.estimators_:
        for g, dt in enumerate(stage):
            t = dt.tree_
            _add_sklearn_tree(trees, t, lambda i, t=t: lr * t.value[i, 0, 0], g)
    output = ("sigmoid" if k == 2 else "softmax") if classifier else "identity"
    return trees, base, output, False


def hist_gradient_boosting(est, k, classifier):
    loss = type(est._loss).__name__
    # Poisson (and the gamma and Tweedie losses of later scikit-learn versions) predict
    # exp(raw): their link is the log.
    log_link = type(getattr(est._loss, "link", None)).__name__ == "LogLink"
    ok = {"HalfBinomialLoss", "HalfMultinomialLoss"} if classifier else {
        "HalfSquaredError", "AbsoluteError", "PinballLoss", "HalfPoissonLoss", "HalfGammaLoss",
        "HalfTweedieLoss"}
    if loss not in ok or (loss.startswith(("HalfPoisson", "HalfGamma", "HalfTweedie")) and
                          not log_link):
        raise TreeExportError(f"{type(est).__name__} with loss {loss} is not supported")
    if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
        raise TreeExportError(f"{type(est).__name__} has categorical features, which are not "
                              "supported")
    trees = Trees()
    for it in est._predictors:
        for g, p in enumerate(it):
            nd = p.nodes
            if np.any(nd["is_categorical"] & ~nd["is_leaf"].astype(bool)):
                raise TreeExportError("HistGradientBoosting categorical splits are not supported")
            trees.add(nd["left"], nd["right"], nd["feature_idx"], nd["num_threshold"],
                      nd["missing_go_to_left"].astype(bool), nd["value"],
                      nd["is_leaf"].astype(bool), g)
    base = np.asarray(est._baseline_prediction, np.float64).reshape(-1)
    output = ("sigmoid" if k == 2 else "softmax") if classifier else ("exp" if log_link else "identity")
    return trees, base, output, True


HANDLED = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
           "ExtraTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
           "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
           "GradientBoostingRegressor", "HistGradientBoostingClassifier",
           "HistGradientBoostingRegressor")


def convert(est, k):
    """k: class count for classifiers, 0 for regressors. Returns the tree spec."""
    name = type(est).__name__
    classifier = k > 0
    X0 = np.zeros((1, est.n_features_in_))
    mean_of = 0
    if name.startswith(("RandomForest", "ExtraTree", "DecisionTree")):
        trees, base, output, missing = forest(est, k, classifier)
        mean_of = len(est.estimators_) if hasattr(est, "estimators_") else 0
    elif name.startswith("GradientBoosting"):
        trees, base, output, missing = gradient_boosting(est, k, classifier, X0)
    else:
        trees, base, output, missing = hist_gradient_boosting(est, k, classifier)
    # HistGradientBoosting takes X as float64 and compares it with float64 thresholds; the
    # other estimators narrow X to float32 themselves.
    arrays = trees.arrays(float64_thresholds=name.startswith("HistGradientBoosting"))
    if not np.all(np.isfinite(arrays["leaf_value"])) or not np.all(np.isfinite(base)):
        raise TreeExportError(f"{name} has leaf values that are not finite in float32")
    return dict(arrays=arrays, base_margin=base, output=output, missing_values=missing,
                n_trees=len(arrays["n_nodes"]), mean_of=mean_of)
