#!/usr/bin/python3
"""Streaming bound: a 10,000,000-row x 64-feature float32 set (2.56 GB of X), and a set of
2,000-feature rows (1.1 GB of X), evaluate with peak RSS under 512 MB, and the metrics match a chunked NumPy
computation of the same logistic model (so the whole set really was read)."""
import json
import os
import resource
import subprocess
import sys
import tempfile
import zlib

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


def wide_rows(tmp):
    """140,000 rows x 2,000 features (1.1 GB of X, a few MB in the file: the same gzip chunk
    again and again): the automatic chunk holds fewer wide rows, so peak RSS stays far below
    the set. At 65,536 rows a chunk whatever the width it had been 1.07 GB. The metrics match
    NumPy on the repeated chunk, so every row was read. Run after tiny_chunks and before the
    big set: RUSAGE_CHILDREN keeps the largest peak so far."""
    n, d, ch = 140 * 1024, 2000, 1024
    rng = np.random.default_rng(11)
    x = np.zeros((ch, d), np.float32)
    x[:, :8] = rng.standard_normal((ch, 8), dtype=np.float32)
    w = np.zeros(d, np.float32)
    w[:8] = rng.normal(size=8).astype(np.float32)
    t = (x[:, :8].astype(np.float64) @ w[:8] + rng.standard_normal(ch)).astype(np.float64)
    data, model = os.path.join(tmp, "wide.h5"), os.path.join(tmp, "mw.h5")
    with h5py.File(data, "w") as f:
        X = f.create_dataset("X", shape=(n, d), dtype=np.float32, chunks=(ch, d), compression="gzip")
        blob = zlib.compress(x.tobytes(), 6)
        for r in range(0, n, ch):
            X.id.write_direct_chunk((r, 0), blob)
        f["y"] = np.tile(t, n // ch)
    with h5py.File(model, "w") as f:
        f.attrs.update(format="stagegate-model", format_version=1, task="regression",
                       n_features=d, n_classes=0, link="identity")
        g = f.create_group("layers/0")
        g["W"] = w.reshape(d, 1)
        g["b"] = np.zeros(1, np.float32)
        g.attrs["activation"] = "identity"
    p = subprocess.run([SG, "eval", "--model", model, "--data", data, "--json"],
                       capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if p.returncode != 0:
        print("FAIL eval of wide rows:", p.stderr)
        return False
    m = json.loads(p.stdout)["metrics"]
    pred = (x[:, :8].astype(np.float64) @ w[:8].astype(np.float64)).astype(np.float32)
    mse = float(np.mean((pred.astype(np.float64) - t) ** 2))
    print(f"{n} x {d} rows ({n * d * 4 / 2**30:.2f} GiB of X): peak RSS {peak / 2**20:.1f} MiB "
          f"(limit 512), mse {m['mean_squared_error']:.9g} (numpy {mse:.9g})")
    ok = m["example_count"] == n and abs(m["mean_squared_error"] - mse) <= 1e-5 * mse
    if not ok:
        print("FAIL wide rows: example_count or mse differs from NumPy")
    if peak >= LIMIT:
        print("FAIL wide rows: peak RSS over 512 MiB")
        ok = False
    # bench's per-query scenarios hold a sample of the rows: 65,536 of these had been 500 MiB
    p = subprocess.run([SG, "bench", "--model", model, "--data", data, "--scenario", "single-stream",
                        "--duration", "0.05", "--min-queries", "100", "--json"],
                       capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"bench single-stream on the wide rows: peak RSS {peak / 2**20:.1f} MiB (limit 400)")
    if p.returncode != 0 or json.loads(p.stdout)["queries"] < 100:
        print("FAIL bench on wide rows:", p.returncode, p.stderr)
        ok = False
    if peak >= 400 * 2**20:
        print("FAIL bench on wide rows: peak RSS over 400 MiB")
        ok = False
    return ok


def main():
    base = os.environ.get("STAGEGATE_BUILD_DIR") or None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        if not tiny_chunks(tmp):
            sys.exit(1)
        if not wide_rows(tmp):
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
