#!/usr/bin/python3
"""Make a synthetic validation set (docs/formats.md) and optionally fit and export a model.

Rows come from a fixed random "teacher" (a small tanh network on standardised
features, seeded by --seed) and are generated and written block by block, so
10,000,000 x 64 float32 rows need only one block in memory. A model is fitted
on a separate training sample from the same teacher, so a set and several
models made with the same --seed belong together:

  make_dataset.py --out val.h5 --task binary --rows 100000 --features 16
  make_dataset.py --task binary --features 16 --fit mlp-relu --model-out good.h5
  make_dataset.py --task binary --features 16 --fit mlp-relu --label-noise 0.3 \\
                  --model-out worse.h5          # a candidate that regresses

Exit status 2 with one line on stderr on bad options.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import warnings

import numpy as np

BLOCK = 65536  # rows per generated block; fixed so that outputs depend only on the options
CLASSIFIERS = ("logreg", "logreg-scaled", "mlp-relu", "mlp-tanh")
REGRESSORS = ("mlp-regressor", "ridge", "linear")


class Teacher:
    """The ground truth: feature offsets/scales plus a random network giving logits or targets."""

    def __init__(self, seed, d, task, k):
        rng = np.random.default_rng([seed, 0])
        self.task, self.k = task, k
        self.mu = rng.normal(0.0, 3.0, d)
        self.sigma = rng.uniform(0.5, 5.0, d)
        width = 16
        self.W1 = rng.normal(0.0, 1.0 / np.sqrt(d), (d, width))
        self.b1 = rng.normal(0.0, 0.5, width)
        out = 1 if task in ("binary", "regression") else k
        self.W2 = rng.normal(0.0, 1.5, (width, out))
        self.Wlin = rng.normal(0.0, 1.0 / np.sqrt(d), (d, out))

    def rows(self, rng, n, dtype):
        z = rng.standard_normal((n, len(self.mu)))
        X = (z * self.sigma + self.mu).astype(dtype)
        f = np.tanh(z @ self.W1 + self.b1) @ self.W2 + z @ self.Wlin
        if self.task == "regression":
            y = f[:, 0] + rng.normal(0.0, 0.1, n)
        elif self.task == "binary":
            # Labels are sampled, not thresholded: a realistic Bayes error rate.
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-2.0 * f[:, 0]))).astype(np.int64)
        else:
            logits = 2.0 * f
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
            y = np.minimum(y, self.k - 1).astype(np.int64)
        return X, y


def fail(msg):
    print(f"make_dataset.py: {msg}", file=sys.stderr)
    sys.exit(2)


@contextlib.contextmanager
def replaced_atomically(dst):
    """Yields a temporary name beside dst; when the block ends without an exception, the file
    written there gets the usual permissions and replaces dst, else it is removed."""
    directory = os.path.dirname(os.path.abspath(dst))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(dst) + ".tmp.")
    except OSError as e:  # name the file the user asked for, not our temporary name
        raise OSError(e.errno, e.strerror, dst) from None
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_set(args, teacher):
    import h5py
    n, d = args.rows, args.features
    dtype = np.dtype(args.dtype)
    kw = {}
    if args.layout != "contiguous":
        # About 1 MiB per chunk: large enough for throughput, small for the reader's cache.
        kw["chunks"] = (max(1, min(n, (1 << 20) // (d * dtype.itemsize))), d)
        if args.layout == "gzip":
            kw.update(compression="gzip", compression_opts=4, shuffle=True)
    with replaced_atomically(args.out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "stagegate-dataset"
            f.attrs["format_version"] = np.int64(1)
            f.attrs["task"] = args.task
            f.attrs["n_classes"] = np.int64(args.classes if args.task != "regression" else 0)
            f.attrs["seed"] = np.int64(args.seed)
            X = f.create_dataset("X", (n, d), dtype=dtype, **kw)
            ykw = {k: v for k, v in kw.items() if k != "chunks"}
            if "chunks" in kw:
                ykw["chunks"] = (kw["chunks"][0],)
            ydtype = np.float64 if args.task == "regression" else np.dtype(args.label_dtype)
            Y = f.create_dataset("y", (n,), dtype=ydtype, **ykw)
            W = f.create_dataset("sample_weight", (n,), dtype=np.float64, **ykw) \
                if args.weights else None
            for b, r0 in enumerate(range(0, n, BLOCK)):
                m = min(BLOCK, n - r0)
                rng = np.random.default_rng([args.seed, 1, b])
                xb, yb = teacher.rows(rng, m, dtype)
                X[r0:r0 + m] = xb
                Y[r0:r0 + m] = yb.astype(ydtype)
                if W is not None:
                    W[r0:r0 + m] = rng.uniform(0.5, 2.0, m)


def training_sample(args, teacher):
    rng = np.random.default_rng([args.seed, 2, args.fit_seed])
    X, y = teacher.rows(rng, args.fit_rows, np.float64)
    if args.label_noise > 0:
        # Biased noise (towards class 0, or shifted targets): symmetric noise barely moves
        # a linear decision boundary, and a "worse" model must really score worse.
        hit = rng.random(len(y)) < args.label_noise
        if args.task == "regression":
            y = y + hit * 2.0 * np.std(y)
        else:
            y = np.where(hit, 0, y)
    if args.task != "regression":
        # Every class must appear so that classes_ is exactly 0..k-1.
        y[:args.classes] = np.arange(args.classes)
    return X, y


def make_estimator(args):
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    mlp = dict(hidden_layer_sizes=hidden, max_iter=args.max_iter, random_state=args.fit_seed)
    return {
        "logreg": lambda: LogisticRegression(max_iter=args.max_iter),
        "logreg-scaled": lambda: make_pipeline(StandardScaler(),
                                               LogisticRegression(max_iter=args.max_iter)),
        "mlp-relu": lambda: make_pipeline(StandardScaler(), MLPClassifier(activation="relu", **mlp)),
        "mlp-tanh": lambda: make_pipeline(StandardScaler(), MLPClassifier(activation="tanh", **mlp)),
        "mlp-regressor": lambda: make_pipeline(StandardScaler(), MLPRegressor(**mlp)),
        "ridge": lambda: Ridge(alpha=1.0),
        "linear": lambda: LinearRegression(),
    }[args.fit]()


def fit_and_export(args, teacher):
    import joblib
    X, y = training_sample(args, teacher)
    est = make_estimator(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on short fits is expected here
        est.fit(X, y)
    if args.joblib_out:
        joblib.dump(est, args.joblib_out)
    if args.model_out:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import export_sklearn
        try:
            export_sklearn.export(est, args.model_out)
        except export_sklearn.ExportError as e:
            fail(f"cannot export the fitted model: {e}")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", help="validation set to write (HDF5); omit to only fit a model")
    p.add_argument("--task", choices=("binary", "multiclass", "regression"), default="binary")
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--classes", type=int, help="class count (binary 2, multiclass default 3)")
    p.add_argument("--seed", type=int, default=1, help="teacher and validation rows")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--layout", choices=("contiguous", "chunked", "gzip"), default="chunked")
    p.add_argument("--label-dtype", default="int32",
                   choices=("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"))
    p.add_argument("--weights", action="store_true", help="also write /sample_weight")
    p.add_argument("--fit", choices=CLASSIFIERS + REGRESSORS)
    p.add_argument("--hidden", default="32", help="MLP hidden layer sizes, e.g. 256,256")
    p.add_argument("--max-iter", type=int, default=200)
    p.add_argument("--fit-rows", type=int, default=20000, help="training rows for --fit")
    p.add_argument("--fit-seed", type=int, default=0, help="training sample and MLP init")
    p.add_argument("--label-noise", type=float, default=0.0,
                   help="fraction of training labels set to class 0 (regression: targets "
                   "shifted by 2 sd): a worse model")
    p.add_argument("--joblib-out", help="save the fitted estimator with joblib")
    p.add_argument("--model-out", help="export the fitted estimator (stagegate model HDF5)")
    args = p.parse_args(argv)
    if args.classes is None:
        args.classes = {"binary": 2, "multiclass": 3, "regression": 0}[args.task]
    if args.task == "binary" and args.classes != 2:
        fail("--task binary needs --classes 2")
    if args.task == "multiclass" and args.classes < 3:
        fail("--task multiclass needs --classes >= 3")
    if args.task != "regression" and np.iinfo(np.dtype(args.label_dtype)).max < args.classes - 1:
        fail(f"--label-dtype {args.label_dtype} cannot hold {args.classes} classes")
    if args.rows < 1 or args.features < 1:
        fail("--rows and --features must be >= 1")
    if args.fit and (args.fit in REGRESSORS) != (args.task == "regression"):
        fail(f"--fit {args.fit} does not match --task {args.task}")
    if (args.joblib_out or args.model_out) and not args.fit:
        fail("--joblib-out/--model-out need --fit")
    if args.fit and args.fit_rows < max(args.classes, 2):
        fail("--fit-rows is too small")
    if not 0.0 <= args.label_noise <= 1.0:
        fail("--label-noise must be in [0, 1]")
    if not args.out and not args.fit:
        fail("nothing to do: give --out and/or --fit")
    return args


# The tests make the same sets and models many times over (the same options in several
# tests, and every test again under the sanitizers), and fitting one means importing
# scikit-learn (about 1 s of CPU). With SG_TEST_CACHE naming a directory, what a run wrote
# is kept there under a key of everything its bytes depend on, and a later run with the same
# key copies it instead of making it again. Only small outputs are kept.
CACHE_MAX_BYTES = 32 << 20
OUTPUTS = ("out", "model_out", "joblib_out")


def cache_key(args):
    import hashlib
    import importlib.metadata
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("make_dataset.py", "export_sklearn.py"):
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    for dist in ("numpy", "h5py", "scikit-learn", "joblib"):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        h.update(("%s=%s;" % (dist, version)).encode())
    h.update(sys.version.encode())
    opts = {k: v for k, v in sorted(vars(args).items()) if k not in OUTPUTS}
    opts.update({k: bool(getattr(args, k)) for k in OUTPUTS})
    h.update(repr(opts).encode())
    return h.hexdigest()


def copy_atomic(src, dst):
    import shutil
    with replaced_atomically(dst) as tmp:
        shutil.copyfile(src, tmp)


def cache_get(args, entry):
    wanted = [k for k in OUTPUTS if getattr(args, k)]
    if not all(os.path.isfile(os.path.join(entry, k)) for k in wanted):
        return False
    for k in wanted:
        copy_atomic(os.path.join(entry, k), getattr(args, k))
    return True


def cache_put(args, entry):
    import shutil
    wanted = [k for k in OUTPUTS if getattr(args, k)]
    if sum(os.path.getsize(getattr(args, k)) for k in wanted) > CACHE_MAX_BYTES:
        return
    parent = os.path.dirname(entry)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".new.")
    try:
        for k in wanted:
            shutil.copyfile(getattr(args, k), os.path.join(tmp, k))
        os.rename(tmp, entry)  # whole entries only; a concurrent run's identical one may win
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    args = parse(argv)
    cache = os.environ.get("SG_TEST_CACHE")
    entry = os.path.join(cache, "make_dataset", cache_key(args)) if cache else None
    try:
        if entry and cache_get(args, entry):
            return 0
        teacher = Teacher(args.seed, args.features, args.task, args.classes)
        if args.out:
            write_set(args, teacher)
        if args.fit:
            fit_and_export(args, teacher)
        if entry:
            cache_put(args, entry)
    except OSError as e:
        fail(f"{e.filename or ''}: {e.strerror or e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
