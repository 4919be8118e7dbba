#!/usr/bin/python3
"""Writes the seed corpus of sg_fuzz_hdf5 (the HDF5 files checked in beside this script):
small validation sets in each layout h5py writes, and a dense and a tree-ensemble model, some
of their datasets chunked and compressed so that mutations reach the chunk decoder.

    /usr/bin/python3 tests/fuzz/hdf5_corpus/make_corpus.py [OUT_DIR]"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
N, D = 48, 4
X = rng.standard_normal((N, D)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int8)
w = rng.uniform(0.5, 2.0, N)


def dataset(name, xkw, ykw, xdtype=np.float32, weights=False):
    with h5py.File(os.path.join(out, name), "w") as f:
        f.attrs["format"] = "stagegate-dataset"
        f.attrs["format_version"] = np.int64(1)
        f.create_dataset("X", data=X.astype(xdtype), **xkw)
        f.create_dataset("y", data=y, **ykw)
        if weights:
            f.create_dataset("sample_weight", data=w, **ykw)


dataset("val_contig.h5", {}, {}, weights=True)
dataset("val_chunked.h5", dict(chunks=(16, 4)), dict(chunks=(16,)))
dataset("val_gzip.h5", dict(chunks=(10, 3), compression="gzip", shuffle=True),
        dict(chunks=(20,), compression="gzip"), weights=True)
dataset("val_fletcher_f64be.h5",
        dict(chunks=(16, 4), compression="gzip", shuffle=True, fletcher32=True),
        dict(chunks=(16,), fletcher32=True), xdtype=">f8")

with h5py.File(os.path.join(out, "model_dense.h5"), "w") as f:
    f.attrs.update(format="stagegate-model", format_version=np.int64(1), task="binary",
                   n_features=np.int64(D), n_classes=np.int64(2), link="sigmoid")
    s = f.create_group("scaler")
    s["mean"] = np.zeros(D, np.float32)
    s.create_dataset("scale", data=np.ones(D, np.float32), chunks=(2,), compression="gzip")
    g = f.create_group("layers/0")
    g.attrs["activation"] = "relu"
    g.create_dataset("W", data=rng.normal(size=(D, 3)).astype(np.float32), chunks=(2, 3),
                     compression="gzip", shuffle=True)
    g["b"] = np.zeros(3, np.float32)
    g = f.create_group("layers/1")
    g.attrs["activation"] = "identity"
    g["W"] = rng.normal(size=(3, 1)).astype(np.float32)
    g.create_dataset("b", data=np.array([0.1], np.float32), fletcher32=True, chunks=(1,))

with h5py.File(os.path.join(out, "model_trees.h5"), "w") as f:
    f.attrs.update(format="stagegate-model", format_version=np.int64(1), task="binary",
                   n_features=np.int64(D), n_classes=np.int64(2), model_kind="tree_ensemble",
                   output="sigmoid", missing_values=np.int64(1))
    t = f.create_group("trees")
    # Two trees, breadth-first: a split with two leaves, then a split whose left child splits.
    t["n_nodes"] = np.array([3, 5], np.int64)
    t["group"] = np.array([0, 0], np.int64)
    gz = dict(compression="gzip", shuffle=True, chunks=(4,))
    t.create_dataset("left", data=np.array([1, -1, -1, 1, 3, -1, -1, -1], np.int32), **gz)
    t.create_dataset("feature", data=np.array([0, 0, 0, 2, 1, 0, 0, 0], np.int64), **gz)
    t["default_left"] = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.int8)
    t.create_dataset("threshold", data=np.array([0.1, 0, 0, -0.3, 0.7, 0, 0, 0], np.float64),
                     **gz)
    t.create_dataset("leaf_value", data=np.array([0, -1, 1, 0, 0, 0.5, -0.25, 0.75], np.float32),
                     fletcher32=True, chunks=(8,))
    t["base_margin"] = np.array([0.0], np.float64)

# The newer on-disk structures (version 2 object headers, fixed-array, extensible-array and
# version 2 B-tree chunk indexes) that libver="latest" writes.
with h5py.File(os.path.join(out, "val_latest.h5"), "w", libver="latest") as f:
    f.attrs["format"] = "stagegate-dataset"
    f.create_dataset("X", data=X, chunks=(16, 2), maxshape=(None, D), compression="gzip",
                     shuffle=True)
    f.create_dataset("y", data=y, chunks=(16,), compression="gzip")
    f.create_dataset("sample_weight", data=w, chunks=(8,), maxshape=(None,), fletcher32=True)
