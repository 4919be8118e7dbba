#!/usr/bin/python3
"""Export a fitted scikit-learn estimator saved with joblib to the stagegate model format.

usage: export_sklearn.py IN.joblib OUT.h5

Supported:
- linear classifiers: LogisticRegression and LogisticRegressionCV (binary; multinomial for
  more classes), SGDClassifier with loss="log_loss" (binary);
- linear regressors: LinearRegression, Ridge, RidgeCV, Lasso, LassoCV, ElasticNet,
  ElasticNetCV, Lars, LassoLars, LassoLarsIC, OrthogonalMatchingPursuit, BayesianRidge,
  ARDRegression, HuberRegressor, QuantileRegressor, TheilSenRegressor, SGDRegressor, LinearSVR;
- MLPClassifier, MLPRegressor;
  each alone or in a Pipeline after one scaler: StandardScaler, MinMaxScaler (clip=False),
  MaxAbsScaler or RobustScaler (affine maps, stored as the model's standardiser);
- trees: DecisionTree and ExtraTree (Classifier and Regressor), RandomForest, ExtraTrees,
  GradientBoosting and HistGradientBoosting (Classifier and Regressor), alone or as a
  one-step Pipeline, written in the tree-ensemble layout.
Anything else is refused with one line on stderr and exit status 2, leaving no output file.
The layout written is documented in docs/formats.md.
"""
import os
import sys
import tempfile

import numpy as np

FORMAT_NAME = "stagegate-model"
EXIT_INPUT = 2


class ExportError(Exception):
    """A refusal: the message is the one line shown to the user."""


LINEAR_REGRESSORS = ("LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet",
                     "ElasticNetCV", "Lars", "LassoLars", "LassoLarsIC",
                     "OrthogonalMatchingPursuit", "BayesianRidge", "ARDRegression",
                     "HuberRegressor", "QuantileRegressor", "TheilSenRegressor", "SGDRegressor")
SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
TREES = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
         "ExtraTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
         "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
         "GradientBoostingRegressor", "HistGradientBoostingClassifier",
         "HistGradientBoostingRegressor")
SUPPORTED = ("LogisticRegression(CV), SGDClassifier(log_loss), the linear regressors "
             "(LinearRegression, Ridge, Lasso, ElasticNet, SGDRegressor, LinearSVR, ...), "
             "MLPClassifier, MLPRegressor, alone or after a StandardScaler, MinMaxScaler, "
             "MaxAbsScaler or RobustScaler; DecisionTree, ExtraTree, RandomForest, ExtraTrees, "
             "GradientBoosting, HistGradientBoosting Classifier/Regressor")


def _check_fitted(est):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    try:
        check_is_fitted(est)
    except NotFittedError:
        raise ExportError(f"{type(est).__name__} is not fitted")


def _class_values(est):
    """The fitted class labels as Python ints, refusing any that are not integers of int32
    (strings, fractions): stagegate reads /y as integers."""
    classes = np.asarray(est.classes_)
    shown = ", ".join(repr(c) for c in classes[:5].tolist()) + (", ..." if len(classes) > 5 else "")
    bad = ExportError(f"{type(est).__name__} was fitted on class labels [{shown}]; stagegate "
                      "reads integer class labels of int32 (encode them, e.g. with "
                      "LabelEncoder, before fitting)")
    if classes.dtype.kind not in "iufb":
        raise bad
    if classes.dtype.kind == "f" and not np.all(np.isfinite(classes) & (classes == np.floor(classes))):
        raise bad
    # As Python integers: a uint64 label past 2**63 must not wrap through int64.
    values = [int(v) for v in classes.tolist()]
    if any(v < -2**31 or v > 2**31 - 1 for v in values):
        raise bad
    return values


def _classes(est):
    """Class count; the labels themselves may be any distinct integers (see _class_values)."""
    k = len(_class_values(est))
    if k < 2:
        raise ExportError(f"{type(est).__name__} was fitted on a single class")
    return k


def _classifier_task(k):
    return ("binary", "sigmoid") if k == 2 else ("multiclass", "softmax")


def _logistic(est):
    k = _classes(est)
    # Mirror predict_proba's own rule (not fit's), since its output is what must match.
    ovr = est.multi_class in ("ovr", "warn") or (
        est.multi_class == "auto" and (k <= 2 or est.solver == "liblinear"))
    multi = "ovr" if ovr else "multinomial"
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), (coef.shape[0],))
    if k > 2 and multi == "ovr":
        raise ExportError(f"LogisticRegression with one-vs-rest probabilities and {k} classes "
                          "is not supported (its normalised OvR scores are not a softmax); "
                          "refit with multi_class='multinomial'")
    if k == 2 and multi == "multinomial":
        # scikit-learn takes softmax([-z, z]) here, which is sigmoid(2 z).
        coef, intercept = 2.0 * coef, 2.0 * intercept
        desc = "LogisticRegression(multinomial, binary)"
    else:
        desc = f"LogisticRegression({multi})"
    task, link = _classifier_task(k)
    layers = [(coef.T, intercept, "identity")]
    return dict(task=task, n_classes=k, link=link, layers=layers, estimator=desc)


def _sgd_classifier(est):
    k = _classes(est)
    if est.loss not in ("log_loss", "log"):
        raise ExportError(f"SGDClassifier with loss={est.loss!r} is not supported (its "
                          "probabilities are not a sigmoid of the decision; use loss='log_loss')")
    if k > 2:
        raise ExportError(f"SGDClassifier with {k} classes is not supported (its normalised "
                          "one-vs-rest probabilities are not a softmax)")
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
    return dict(task="binary", n_classes=2, link="sigmoid",
                layers=[(coef.T, intercept, "identity")], estimator="SGDClassifier(log_loss)")


def _linear(est):
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim == 2:
        if coef.shape[0] != 1:
            raise ExportError(f"{type(est).__name__} has {coef.shape[0]} outputs; only "
                              "single-output regression is supported")
        coef = coef[0]
    intercept = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
    if intercept.size != 1:
        raise ExportError(f"{type(est).__name__} has {intercept.size} intercepts; only "
                          "single-output regression is supported")
    layers = [(coef[:, None], intercept, "identity")]
    return dict(task="regression", n_classes=0, link="identity", layers=layers,
                estimator=type(est).__name__)


def _mlp(est, classifier):
    name = type(est).__name__
    if est.activation not in ("identity", "relu", "tanh", "logistic"):
        raise ExportError(f"{name} activation {est.activation!r} is not supported")
    n_out = est.coefs_[-1].shape[1]
    if classifier:
        if getattr(est._label_binarizer, "y_type_", "") == "multilabel-indicator":
            raise ExportError(f"{name} was fitted for multilabel output, which is not supported")
        k = _classes(est)
        task, link = _classifier_task(k)
        want_act, want_out = ("logistic", 1) if k == 2 else ("softmax", k)
        if est.out_activation_ != want_act or n_out != want_out:
            raise ExportError(f"{name} output ({est.out_activation_}, {n_out} units) does not "
                              f"match {k} classes")
    else:
        if n_out != 1 or est.out_activation_ != "identity":
            raise ExportError(f"{name} has {n_out} outputs; only single-output regression "
                              "is supported")
        k, task, link = 0, "regression", "identity"
    layers = []
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        last = i == len(est.coefs_) - 1
        layers.append((np.asarray(W, np.float64), np.asarray(b, np.float64),
                       "identity" if last else est.activation))
    hidden = "x".join(str(W.shape[1]) for W in est.coefs_[:-1]) or "none"
    return dict(task=task, n_classes=k, link=link, layers=layers,
                estimator=f"{name}(hidden={hidden}, activation={est.activation})")


def _scaler(sc):
    """The scaler as the model's standardiser: transform(x) = (x - mean) / scale."""
    _check_fitted(sc)
    d = sc.n_features_in_
    name = type(sc).__name__
    if name == "StandardScaler":
        mean = np.asarray(sc.mean_, np.float64) if sc.with_mean else np.zeros(d)
        scale = np.asarray(sc.scale_, np.float64) if sc.with_std else np.ones(d)
    elif name == "MinMaxScaler":
        if sc.clip:
            raise ExportError("MinMaxScaler(clip=True) is not supported (clipping is not an "
                              "affine map)")
        # x * scale_ + min_ = (x - (-min_ / scale_)) / (1 / scale_)
        mul = np.asarray(sc.scale_, np.float64)
        mean, scale = -np.asarray(sc.min_, np.float64) / mul, 1.0 / mul
    elif name == "MaxAbsScaler":
        mean, scale = np.zeros(d), np.asarray(sc.scale_, np.float64)
    else:  # RobustScaler
        mean = np.asarray(sc.center_, np.float64) if sc.with_centering else np.zeros(d)
        scale = np.asarray(sc.scale_, np.float64) if sc.with_scaling else np.ones(d)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ExportError(f"{name} has a scale that is zero or not finite")
    return mean, scale


def _tree_ensemble(est):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sklearn_trees
    name = type(est).__name__
    classifier = name.endswith("Classifier")
    # Checked before the classes: a multi-output classifier's classes_ is a list of arrays,
    # one per output (ragged when the outputs have different class counts).
    n_outputs = getattr(est, "n_outputs_", 1)
    if n_outputs != 1:
        raise ExportError(f"{name} has {n_outputs} outputs; only single-output "
                          f"{'classification' if classifier else 'regression'} is supported")
    k = _classes(est) if classifier else 0
    try:
        trees = sklearn_trees.convert(est, k)
    except sklearn_trees.TreeExportError as e:
        raise ExportError(str(e))
    task = ("binary" if k == 2 else "multiclass") if classifier else "regression"
    return dict(kind="tree_ensemble", task=task, n_classes=k, trees=trees,
                estimator=f"{name}({trees['n_trees']} trees)")


def _sklearn_types(names, *modules):
    """The classes of these names found in these modules (a name missing from this version of
    scikit-learn is simply not supported)."""
    out = set()
    for n in names:
        for m in modules:
            if hasattr(m, n):
                out.add(getattr(m, n))
    return out


def convert(est):
    """Returns the model description for a supported fitted estimator, or raises ExportError."""
    from sklearn import ensemble, linear_model, preprocessing, svm, tree
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline

    scaler_types = _sklearn_types(SCALERS, preprocessing)
    scaler = None
    prefix = ""
    if type(est) is Pipeline:
        steps = [s for _, s in est.steps if s is not None and s != "passthrough"]
        if len(steps) == 2 and type(steps[0]) in scaler_types:
            scaler, est = steps
        elif len(steps) == 1:
            est = steps[0]
        else:
            names = ", ".join(type(s).__name__ for s in steps)
            raise ExportError(f"Pipeline({names}) is not supported (supported: {SUPPORTED})")
        prefix = f"Pipeline({type(scaler).__name__}, " if scaler is not None else "Pipeline("
    tree_types = _sklearn_types(TREES, ensemble, tree)
    if type(est) in tree_types and scaler is not None:
        raise ExportError(f"Pipeline({type(scaler).__name__}, {type(est).__name__}) is not "
                          "supported: a tree ensemble takes the raw features (drop the scaler)")
    handlers = {t: _tree_ensemble for t in tree_types}
    handlers.update({t: _linear for t in _sklearn_types(LINEAR_REGRESSORS, linear_model)})
    handlers.update({t: _logistic for t in _sklearn_types(
        ("LogisticRegression", "LogisticRegressionCV"), linear_model)})
    handlers.update({
        linear_model.SGDClassifier: _sgd_classifier,
        svm.LinearSVR: _linear,
        MLPClassifier: lambda e: _mlp(e, True),
        MLPRegressor: lambda e: _mlp(e, False),
    })
    handler = handlers.get(type(est))
    if handler is None:
        raise ExportError(f"{type(est).__name__} is not supported (supported: {SUPPORTED})")
    _check_fitted(est)
    spec = handler(est)
    spec["n_features"] = int(est.n_features_in_)
    if spec["task"] != "regression":
        # Output column j is class classes_[j]; written only when that is not simply j.
        values = _class_values(est)
        if values != list(range(len(values))):
            spec["classes"] = values
    if scaler is not None:
        _check_fitted(scaler)  # an unfitted one has no n_features_in_ (a traceback)
        if scaler.n_features_in_ != spec["n_features"]:
            raise ExportError(f"{type(scaler).__name__} and estimator disagree on the feature "
                              "count")
        spec["scaler"] = _scaler(scaler)
    if prefix:
        spec["estimator"] = prefix + spec["estimator"] + ")"
    _check_values(spec)
    return spec


def _check_values(spec):
    if spec.get("kind") == "tree_ensemble":
        return  # checked while converting
    arrays = [("layers/%d/%s" % (i, n), a) for i, (W, b, _) in enumerate(spec["layers"])
              for n, a in (("W", W), ("b", b))]
    if "scaler" in spec:
        arrays += [("scaler/mean", spec["scaler"][0]), ("scaler/scale", spec["scaler"][1])]
    for name, a in arrays:
        with np.errstate(over="ignore"):  # an overflow is this refusal, not a warning line
            stored = np.asarray(a, np.float32)
        if not np.all(np.isfinite(stored)):
            raise ExportError(f"/{name} has values that are not finite in float32 "
                              "(did the fit diverge?)")
        # stagegate holds the scaler in float32 too: a scale that is 0 there divides by 0
        if name == "scaler/scale" and not np.all(stored > 0):
            raise ExportError("/scaler/scale has values that are 0 in float32 (a feature "
                              "whose spread is below 1e-38)")


def write_model(spec, out_path):
    """Writes spec to out_path atomically: a temp file in the same directory, then rename."""
    import h5py
    import sklearn
    directory = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(out_path) + ".tmp.")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            # Version 2 only where it is needed (a forest's mean_of), so that every other
            # file stays readable by builds that read version 1.
            mean_of = spec.get("trees", {}).get("mean_of", 0) if spec.get("kind") == "tree_ensemble" else 0
            # 3 only for class values other than 0..k-1 (/classes): a build that would ignore
            # them refuses the file rather than read the labels as 0..k-1.
            f.attrs["format_version"] = np.int64(3 if "classes" in spec else 2 if mean_of else 1)
            f.attrs["task"] = spec["task"]
            f.attrs["n_classes"] = np.int64(spec["n_classes"])
            f.attrs["n_features"] = np.int64(spec["n_features"])
            f.attrs["estimator"] = spec["estimator"][:127]
            f.attrs["sklearn_version"] = sklearn.__version__
            if "classes" in spec:
                f["classes"] = np.asarray(spec["classes"], np.int64)
            if spec.get("kind") == "tree_ensemble":
                _write_trees(f, spec["trees"])
            else:
                _write_layers(f, spec)
        _commit(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_trees(f, t):
    f.attrs["model_kind"] = "tree_ensemble"
    f.attrs["output"] = t["output"]
    f.attrs["missing_values"] = np.int64(1 if t["missing_values"] else 0)
    if t.get("mean_of"):
        f.attrs["mean_of"] = np.int64(t["mean_of"])
    for name, a in t["arrays"].items():
        f["trees/" + name] = a
    f["trees/base_margin"] = np.asarray(t["base_margin"], np.float64)


def _write_layers(f, spec):
    f.attrs["link"] = spec["link"]
    if "scaler" in spec:
        f["scaler/mean"] = np.asarray(spec["scaler"][0], np.float64)
        f["scaler/scale"] = np.asarray(spec["scaler"][1], np.float64)
    layers = f.create_group("layers")
    for i, (W, b, act) in enumerate(spec["layers"]):
        g = layers.create_group(str(i))
        g["W"] = np.ascontiguousarray(W, dtype=np.float32)
        g["b"] = np.asarray(b, dtype=np.float32)
        g.attrs["activation"] = act


def _commit(tmp, out_path):
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    os.replace(tmp, out_path)


def check_output(src, dst):
    """stagegate's output contract: the output may not be the input (the joblib file would
    be replaced by the model), nor anything but a regular file or a path not yet there: a
    FIFO, a device or a symbolic link would be replaced by the rename."""
    import stat
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ExportError(f"{dst}: cannot check the output path: {e.strerror or e}")
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise ExportError(f"{dst}: the output is {kind}, which the rename would replace "
                          "(name the file itself)")
    try:
        same = os.path.samefile(src, dst)
    except OSError:
        same = False
    if same:
        raise ExportError(f"{dst}: the output is the input {src}")


def export(est, out_path):
    """Converts and writes; raises ExportError for unsupported estimators."""
    write_model(convert(est), out_path)


def main(argv):
    prog = os.path.basename(argv[0])
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 3:
        # A usage error is one line on stderr, like every other input error.
        print(f"{prog}: usage: {prog} IN.joblib OUT.h5 (see --help)", file=sys.stderr)
        return EXIT_INPUT
    src, dst = argv[1], argv[2]
    try:
        check_output(src, dst)
    except ExportError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_INPUT
    try:
        import joblib
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = joblib.load(src)
    except Exception as e:  # any unreadable input is an input error, in one line
        msg = str(e).splitlines()[0] if str(e) else ""
        if not isinstance(e, OSError):  # unpickling errors say little on their own ("72")
            msg = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
        print(f"{prog}: {src}: cannot load with joblib: {msg}", file=sys.stderr)
        return EXIT_INPUT
    try:
        # numpy's overflow warnings (a float64 value cast to float32) would be lines beside the
        # one-line refusal: every such value is checked and refused, or kept, explicitly
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            export(est, dst)
    except ExportError as e:
        print(f"{prog}: {src}: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:
        print(f"{prog}: {dst}: cannot write: {e.strerror or e}", file=sys.stderr)
        return EXIT_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
