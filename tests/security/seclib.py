"""Shared by the security tests: a small valid logistic model and validation set written with
h5py, a runner that captures exit code and stderr, and the one-line exit-2 check."""
import os
import subprocess

import h5py
import numpy as np

SG = os.environ["STAGEGATE_BIN"]
D = 16


def write_model(path, w=None, external_w=None, link_w=None):
    """A binary logistic model with D features. external_w: keep /layers/0/W's bytes in that
    raw file (HDF5 external storage); link_w: make /layers/0/W an external link to it."""
    rng = np.random.default_rng(1)
    w = (rng.normal(size=(D, 1)) / 4).astype(np.float32) if w is None else w
    with h5py.File(path, "w") as f:
        f.attrs.update(format="stagegate-model", format_version=1, task="binary",
                       n_features=D, n_classes=2, link="sigmoid")
        g = f.create_group("layers/0")
        g.attrs["activation"] = "identity"
        g["b"] = np.array([0.1], np.float32)
        if external_w:
            w.tofile(external_w)
            g.create_dataset("W", shape=w.shape, dtype=np.float32,
                             external=[(os.path.basename(external_w), 0, w.nbytes)])
        elif link_w:
            with h5py.File(link_w, "w") as side:
                side["W"] = w
            g["W"] = h5py.ExternalLink(os.path.basename(link_w), "/W")
        else:
            g["W"] = w
    return w


def write_data(path, rows=2000, **x_kwargs):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((rows, D), dtype=np.float32)
    y = (X[:, 0] > 0).astype(np.int8)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="stagegate-dataset", format_version=1)
        f.create_dataset("X", data=X, **x_kwargs)
        f["y"] = y
    return X, y


def run(*args, cwd=None):
    p = subprocess.run([SG, *args], capture_output=True, text=True, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def expect_refused(what, rc, err, *needles):
    """Exit 2, one stderr line, naming each needle. Returns a failure message or None."""
    lines = err.strip().splitlines()
    if rc != 2:
        return f"{what}: exit {rc}, wanted 2 ({err.strip()[:300]})"
    if len(lines) != 1:
        return f"{what}: stderr has {len(lines)} lines, wanted one: {err[:300]}"
    for n in needles:
        if n not in lines[0]:
            return f"{what}: error does not name '{n}': {lines[0]}"
    return None
