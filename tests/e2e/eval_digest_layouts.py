#!/usr/bin/python3
"""The dataset digest that eval reports (and a gate report signs) is SHA-256 of the file's
bytes, whatever the file's layout: eval feeds the digest from the chunk bytes it reads when
they are the file's next bytes and reads the rest of the file itself, so every layout that
puts chunks out of file order, between other data, behind a user block or compressed must
still give hashlib's digest of the file. The same rows in every layout must also give the
same metrics, bit for bit.

Layouts: chunks in order; chunks written last to first; /y before /X; X and y chunks
interleaved; a 9 MiB dataset between the header and /X (a gap larger than eval fills from
the file in one go); deflate+shuffle; contiguous; a 512-byte user block; chunks split across
columns; chunk rows that divide neither eval's chunk nor its first chunk; sample weights;
more than 4096 small chunks, compressed (eval then locates chunks another way, whose cost
does not grow with their number, and the digest reads the file). Each is run with the
default chunking and with --chunk-rows 700.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SG = os.environ["STAGEGATE_BIN"]
SRC = os.environ["STAGEGATE_SOURCE_DIR"]
ROWS, FEAT = 30000, 16

tmp = tempfile.mkdtemp(prefix="sg_digest_")
model = os.path.join(tmp, "m.h5")
base = os.path.join(tmp, "base.h5")
subprocess.run(["/usr/bin/python3", f"{SRC}/scripts/make_dataset.py", "--out", base, "--task", "binary",
                "--rows", str(ROWS), "--features", str(FEAT), "--seed", "5", "--fit", "mlp-relu",
                "--hidden", "16", "--max-iter", "5", "--fit-rows", "2000", "--model-out", model],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with h5py.File(base, "r") as f:
    X = f["X"][()].astype(np.float32)
    y = f["y"][()].astype(np.int32)
w = np.linspace(0.5, 2.0, ROWS)


def chunked_rows(f, name, data, chunk, order):
    """A chunked dataset whose chunks are allocated in the file in `order` (row-chunk indices)."""
    d = f.create_dataset(name, shape=data.shape, dtype=data.dtype, chunks=chunk)
    for i in order:
        d[i * chunk[0]:(i + 1) * chunk[0]] = data[i * chunk[0]:(i + 1) * chunk[0]]
    return d


def layouts():
    n = (ROWS + 999) // 1000
    yield "in_order", lambda f: (chunked_rows(f, "X", X, (1000, FEAT), range(n)),
                                 chunked_rows(f, "y", y, (1000,), range(n)))
    yield "reversed", lambda f: (chunked_rows(f, "X", X, (1000, FEAT), reversed(range(n))),
                                 chunked_rows(f, "y", y, (1000,), reversed(range(n))))
    yield "y_first", lambda f: (chunked_rows(f, "y", y, (1000,), range(n)),
                                chunked_rows(f, "X", X, (1000, FEAT), range(n)))

    def interleaved(f):
        dx = f.create_dataset("X", shape=X.shape, dtype=X.dtype, chunks=(1000, FEAT))
        dy = f.create_dataset("y", shape=y.shape, dtype=y.dtype, chunks=(1000,))
        for i in range(n):
            dx[i * 1000:(i + 1) * 1000] = X[i * 1000:(i + 1) * 1000]
            dy[i * 1000:(i + 1) * 1000] = y[i * 1000:(i + 1) * 1000]
    yield "interleaved", interleaved

    def big_gap(f):
        f.create_dataset("padding", data=np.arange((9 << 20) // 8, dtype=np.float64))
        chunked_rows(f, "X", X, (1000, FEAT), range(n))
        chunked_rows(f, "y", y, (1000,), range(n))
    yield "big_gap", big_gap
    yield "deflate", lambda f: (f.create_dataset("X", data=X, chunks=(1000, FEAT), compression="gzip",
                                                 shuffle=True),
                                f.create_dataset("y", data=y, chunks=(1000,), compression="gzip"))
    yield "contiguous", lambda f: (f.create_dataset("X", data=X), f.create_dataset("y", data=y))
    yield "userblock", "userblock"
    yield "column_chunks", lambda f: (chunked_rows(f, "X", X, (1000, 5), range(n)),
                                      chunked_rows(f, "y", y, (1000,), range(n)))
    yield "odd_chunks", lambda f: (f.create_dataset("X", data=X, chunks=(333, FEAT)),
                                   f.create_dataset("y", data=y, chunks=(333,)))
    yield "many_chunks", lambda f: (f.create_dataset("X", data=X, chunks=(25, 4), compression="gzip",
                                                     shuffle=True),
                                    f.create_dataset("y", data=y, chunks=(25,)))
    yield "weights", lambda f: (chunked_rows(f, "X", X, (1000, FEAT), range(n)),
                                chunked_rows(f, "y", y, (1000,), range(n)),
                                f.create_dataset("sample_weight", data=w, chunks=(1000,)))


failures = []
reference = {}
for name, make in layouts():
    path = os.path.join(tmp, f"{name}.h5")
    if make == "userblock":
        with h5py.File(path, "w", userblock_size=512) as f:
            chunked_rows(f, "X", X, (1000, FEAT), range((ROWS + 999) // 1000))
            chunked_rows(f, "y", y, (1000,), range((ROWS + 999) // 1000))
        with open(path, "r+b") as fh:  # a user block's bytes are the file's too
            fh.write(b"user block text " * 32)
    else:
        with h5py.File(path, "w") as f:
            make(f)
    want = hashlib.sha256(open(path, "rb").read()).hexdigest()
    for extra in ([], ["--chunk-rows", "700"]):
        p = subprocess.run([SG, "eval", "--model", model, "--data", path, "--json", *extra],
                           capture_output=True, text=True)
        if p.returncode != 0:
            failures.append(f"{name} {extra}: exit {p.returncode}: {p.stderr.strip()}")
            continue
        d = json.loads(p.stdout)
        got = d["dataset"]["sha256"]
        if got != want:
            failures.append(f"{name} {extra}: digest {got}, the file's is {want}")
        m = d["metrics"]
        key = "weights" if name == "weights" else "plain"
        if key not in reference:
            reference[key] = m
        elif m != reference[key]:
            failures.append(f"{name} {extra}: metrics differ from the in-order file's: {m}")
    print(f"{name}: ok" if not any(f.startswith(name + " ") for f in failures) else f"{name}: FAIL")

# Past one eval chunk (65,536 rows), with the default chunking: the rows must be split into
# the workers' sub-batches at the same places whatever the file's chunk height, or the rows
# at the cuts take other kernel paths (a SIMD tail) and other bits. Chunks of 1,025 and 7
# rows had moved the cuts (reads rounded to whole HDF5 chunks): probabilities and log loss
# differed from the contiguous file's.
BIG = 140001
model32 = os.path.join(tmp, "m32.h5")  # (a hidden layer of 32: its last rows take a SIMD tail)
subprocess.run(["/usr/bin/python3", f"{SRC}/scripts/make_dataset.py", "--out", os.path.join(tmp, "fit32.h5"),
                "--task", "binary", "--rows", "3000", "--features", str(FEAT), "--seed", "3", "--fit",
                "mlp-relu", "--hidden", "32", "--max-iter", "20", "--fit-rows", "3000", "--model-out",
                model32], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rng = np.random.default_rng(7)
XB = rng.normal(0, 3, (BIG, FEAT)).astype(np.float32)
yB = rng.integers(0, 2, BIG).astype(np.int32)
ref_pred = None
for name, kw in (("contiguous", {}), ("rows_1025", {"chunks": (1025, FEAT)}),
                 ("rows_7", {"chunks": (7, FEAT)}), ("rows_4097", {"chunks": (4097, FEAT)})):
    path = os.path.join(tmp, f"big_{name}.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=XB, **kw)
        f.create_dataset("y", data=yB)
    pred = path + ".pred.h5"
    p = subprocess.run([SG, "eval", "--model", model32, "--data", path, "--json", "--predictions", pred],
                       capture_output=True, text=True)
    if p.returncode != 0:
        failures.append(f"big {name}: exit {p.returncode}: {p.stderr.strip()}")
        continue
    with h5py.File(pred) as g:
        bits = g["proba"][()].view(np.uint32)
    m = json.loads(p.stdout)["metrics"]
    if ref_pred is None:
        ref_pred, ref_m = bits, m
    else:
        diff = int((bits != ref_pred).any(axis=1).sum())
        if diff or m != ref_m:
            failures.append(f"big {name}: {diff} rows' probabilities differ from the contiguous file's "
                            f"(log_loss {m['log_loss']!r} vs {ref_m['log_loss']!r})")
    print(f"big {name}: ok" if not any(f.startswith(f"big {name}:") for f in failures) else f"big {name}: FAIL")

# Weighted regression metrics do not depend on the chunking either: the weight total and the
# targets' mean and M2 had been combined per chunk, so MAE and r2 differed in their last
# digits between --chunk-rows 1024 and 65536 (the predictions being identical).
modelr = os.path.join(tmp, "mr.h5")
subprocess.run(["/usr/bin/python3", f"{SRC}/scripts/make_dataset.py", "--out", os.path.join(tmp, "fitr.h5"),
                "--task", "regression", "--rows", "3000", "--features", str(FEAT), "--seed", "5", "--fit",
                "mlp-regressor", "--hidden", "32", "--max-iter", "20", "--fit-rows", "3000",
                "--model-out", modelr], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
NR = 200000
rw = os.path.join(tmp, "regw.h5")
with h5py.File(rw, "w") as f:
    f["X"] = rng.normal(0, 3, (NR, FEAT)).astype(np.float32)
    f["y"] = rng.normal(0, 2, NR)
    f["sample_weight"] = rng.uniform(0.1, 3.0, NR)
ref_r = None
for extra in ([], ["--chunk-rows", "1024"], ["--chunk-rows", "4096"]):
    p = subprocess.run([SG, "eval", "--model", modelr, "--data", rw, "--json", *extra],
                       capture_output=True, text=True)
    if p.returncode != 0:
        failures.append(f"weighted regression {extra}: exit {p.returncode}: {p.stderr.strip()}")
        continue
    m = json.loads(p.stdout)["metrics"]
    if ref_r is None:
        ref_r = m
    elif m != ref_r:
        failures.append(f"weighted regression {extra}: metrics differ from the default chunking's: "
                        f"{m} vs {ref_r}")
print("weighted regression across chunkings: " + ("FAIL" if any(f.startswith("weighted") for f in failures) else "ok"))

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"every layout: eval's dataset digest is the file's SHA-256 and the metrics agree")
