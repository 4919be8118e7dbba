#!/usr/bin/python3
"""Streaming bound: a 10,000,000-row x 64-feature float32 set (2.56 GB of X)
evaluates with peak RSS under 512 MB, and the metrics match a chunked NumPy
computation of the same logistic model (so the whole set really was read)."""
import json
import os
import resource
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SG = os.environ["STAGEGATE_BIN"]
ROWS = int(os.environ.get("SG_STREAM_ROWS", 10_000_000))
D = 64
LIMIT = 512 * 1024 * 1024


def tiny_chunks(tmp):
    """A 10 KB set of 1-element chunks: the chunk cache's slot table was sized from the chunk
    count a cache could hold, 105 M slots (840 MB) for a uint8 /y. Run first, so this
    process's peak is its own."""
    data, model = os.path.join(tmp, "tiny.h5"), os.path.join(tmp, "m1.h5")
    with h5py.File(data, "w") as f:
        f.create_dataset("X", data=np.arange(100, dtype=np.float32).reshape(100, 1) / 50 - 1,
                         chunks=(1, 1))
        f.create_dataset("y", data=(np.arange(100) % 2).astype(np.uint8), chunks=(1,))
        f.create_dataset("sample_weight", data=np.ones(100, np.uint8), chunks=(1,))
    with h5py.File(model, "w") as f:
        f.attrs.update(format="stagegate-model", format_version=1, task="binary",
                       n_features=1, n_classes=2, link="sigmoid")
        g = f.create_group("layers/0")
        g["W"] = np.ones((1, 1), np.float32)
        g["b"] = np.zeros(1, np.float32)
        g.attrs["activation"] = "identity"
    p = subprocess.run([SG, "eval", "--model", model, "--data", data, "--json"],
                       capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"1-element chunks: peak RSS {peak / 2**20:.1f} MiB (limit 128)")
    if p.returncode != 0 or json.loads(p.stdout)["metrics"]["example_count"] != 100:
        print("FAIL eval of 1-element chunks:", p.returncode, p.stderr)
        return False
    if peak >= 128 * 2**20:
        print("FAIL 1-element chunks: peak RSS over 128 MiB")
        return False
    return True


def main():
    base = os.environ.get("STAGEGATE_BUILD_DIR") or None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        if not tiny_chunks(tmp):
            sys.exit(1)
        data, model = os.path.join(tmp, "big.h5"), os.path.join(tmp, "m.h5")
        rng = np.random.default_rng(5)
        w = rng.normal(size=D).astype(np.float32) / 8
        b = np.float32(0.1)
        correct = 0
        step = 250_000
        with h5py.File(data, "w") as f:
            X = f.create_dataset("X", shape=(ROWS, D), dtype=np.float32, chunks=(16384, D))
            y = f.create_dataset("y", shape=(ROWS,), dtype=np.int8)
            for r in range(0, ROWS, step):
                n = min(step, ROWS - r)
                x = rng.standard_normal((n, D), dtype=np.float32)
                z = x.astype(np.float64) @ w + b
                t = (z + rng.standard_normal(n) > 0).astype(np.int8)
                X[r:r + n] = x
                y[r:r + n] = t
                correct += int(((z >= 0) == (t == 1)).sum())
        with h5py.File(model, "w") as f:
            f.attrs.update(format="stagegate-model", format_version=1, task="binary",
                           n_features=D, n_classes=2, link="sigmoid")
            g = f.create_group("layers/0")
            g["W"] = w.reshape(D, 1)
            g["b"] = np.array([b], np.float32)
            g.attrs["activation"] = "identity"
        p = subprocess.run([SG, "eval", "--model", model, "--data", data, "--json"],
                           capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        if p.returncode != 0:
            print("FAIL eval:", p.stderr)
            sys.exit(1)
        out = json.loads(p.stdout)
        acc = out["metrics"]["accuracy"]
        want = correct / ROWS
        print(f"rows {ROWS}: peak RSS {peak / 2**20:.1f} MiB (limit 512), accuracy {acc:.6f} "
              f"(numpy {want:.6f}), eval {out['timing']['total_seconds']:.2f}s")
        ok = True
        if out["metrics"]["example_count"] != ROWS:
            print("FAIL example_count", out["metrics"]["example_count"])
            ok = False
        # Rows within float32 rounding of the boundary may flip; allow 1e-6 of rows.
        if abs(acc - want) > 1e-6:
            print("FAIL accuracy differs from the NumPy reference")
            ok = False
        if peak >= LIMIT:
            print("FAIL peak RSS over 512 MiB")
            ok = False
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
