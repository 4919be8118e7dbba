#!/usr/bin/python3
"""Attack: a 1.6 KB validation set that declares 2**62 + 1 rows.

The row count sized the ROC AUC score store (4 bytes a row) and the predictions gate keeps
for shadow agreement; the byte count wrapped around size_t and eval/gate wrote past a small
heap block (SIGSEGV; ASan: heap-buffer-overflow WRITE). A size no machine could hold must
be refused before allocation: exit 2, one line naming the file and its row count.

That file stores none of its rows, which is now refused when it is opened (rows never
written are not data). The memory check itself is reached by a set that does store every
row: twice as many as this machine's memory holds score slots for, one feature, in deflate
chunks of zeros (about 1,000:1), so the file stays near 70 MB on a 24 GiB machine."""
import zlib
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import D, expect_refused, run, write_model  # noqa: E402

SG_BIN = os.environ["STAGEGATE_BIN"]

ROWS = 2**62 + 1
fails = []
checks = 4
with tempfile.TemporaryDirectory() as t:
    p = lambda n: os.path.join(t, n)  # noqa: E731
    with h5py.File(p("huge.h5"), "w") as f:
        f.attrs.update(format="stagegate-dataset", format_version=1)
        f.create_dataset("X", shape=(ROWS, D), dtype=np.float32, chunks=(65536, D))
        f.create_dataset("y", shape=(ROWS,), dtype=np.int8, chunks=(65536,))
    print("file size", os.path.getsize(p("huge.h5")), "bytes")
    write_model(p("m.h5"))
    write_model(p("b.h5"), w=np.ones((D, 1), np.float32))
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("huge.h5"))
    msg = expect_refused("eval", rc, err, "huge.h5", str(ROWS), "never written")
    if msg:
        fails.append(msg)
    # Every row stored: 4 MiB chunks of zeros, compressed once and written directly.
    phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    per = 1 << 20
    stored_rows = -(-(2 * phys // 4) // per) * per
    zeros = zlib.compress(bytes(4 * per), 6)  # one chunk of /X (per rows) or of /y (4 per)

    def write_zeros(path, rows):
        """A set of `rows` stored rows of zeros, one feature, in deflate chunks."""
        with h5py.File(path, "w") as f:
            x = f.create_dataset("X", shape=(rows, 1), dtype=np.float32, chunks=(per, 1),
                                 compression="gzip")
            y = f.create_dataset("y", shape=(rows,), dtype=np.int8, chunks=(4 * per,),
                                 compression="gzip")
            for i in range(rows // per):
                x.id.write_direct_chunk((i * per, 0), zeros)
            for i in range(-(-rows // (4 * per))):
                y.id.write_direct_chunk((i * 4 * per,), zeros)
        print(os.path.basename(path), rows, "rows,", os.path.getsize(path), "bytes")

    write_zeros(p("stored.h5"), stored_rows)
    write_model(p("m1.h5"), w=np.ones((1, 1), np.float32))
    with h5py.File(p("m1.h5"), "a") as f:
        f.attrs["n_features"] = 1
    rc, _, err = run("eval", "--model", p("m1.h5"), "--data", p("stored.h5"))
    msg = expect_refused("eval, every row stored", rc, err, "stored.h5", str(stored_rows),
                         "memory this process may use")
    if msg:
        fails.append(msg)
    # Each buffer alone fits (half the memory), their sum does not (12 bytes a row for a
    # binary model's scores and their sort, 1.5 times the memory): refused before any row is
    # read, naming what the bytes are for, where it was accepted and would have thrashed.
    checks += 1
    write_zeros(p("sum.h5"), -(-(phys // 8) // per) * per)
    rc, _, err = run("eval", "--model", p("m1.h5"), "--data", p("sum.h5"))
    msg = expect_refused("eval, buffers that fit one by one", rc, err, "sum.h5",
                         "12 bytes per row for exact ROC AUC", "memory this process may use")
    if msg:
        fails.append(msg)
    os.remove(p("sum.h5"))
    rc, _, _ = run("keygen", "--out", p("k"))
    with open(p("policy.json"), "w") as f:
        json.dump({"metrics": {"accuracy": {"threshold": 0.5}},
                   "shadow": {"min_agreement": 0.9}}, f)
    rc, _, err = run("gate", "--model", p("m.h5"), "--baseline", p("b.h5"), "--data", p("huge.h5"),
                     "--policy", p("policy.json"), "--key", p("k.key.pem"), "--out", p("r.json"))
    msg = expect_refused("gate --baseline", rc, err, "huge.h5", str(ROWS))
    if msg:
        fails.append(msg)
    if os.path.exists(p("r.json")):
        fails.append("gate left a report behind")
    # A set that fits the memory check and stores every row (64 Mi rows of deflated zeros in
    # under 1 MB) would stream for minutes; on a bigger one, hours. --max-rows bounds it:
    # refused before a row is read, by eval and by gate (no report left), while a set within
    # the bound runs.
    bomb_rows = 64 * per
    write_zeros(p("bomb.h5"), bomb_rows)
    checks += 3
    rc, _, err = run("eval", "--model", p("m1.h5"), "--data", p("bomb.h5"), "--max-rows", "1000000")
    msg = expect_refused("eval --max-rows", rc, err, "bomb.h5", "%d rows, more than --max-rows 1000000"
                         % bomb_rows)
    if msg:
        fails.append(msg)
    rc, _, err = run("gate", "--model", p("m1.h5"), "--data", p("bomb.h5"), "--policy",
                     p("policy.json"), "--key", p("k.key.pem"), "--out", p("r2.json"),
                     "--max-rows", "1000000")
    msg = expect_refused("gate --max-rows", rc, err, "bomb.h5", "more than --max-rows 1000000")
    if msg:
        fails.append(msg)
    if os.path.exists(p("r2.json")):
        fails.append("gate --max-rows left a report behind")
    # ... and before any of its rows is decoded: one chunk row of 4 Mi rows (256 MiB of
    # zeros, deflated to about 1 MB) had been decoded whole by the dry run, to read the first
    # and last rows, before --max-rows was checked (600 MB of memory, seconds).
    checks += 1
    n1 = 1 << 22
    with h5py.File(p("onechunk.h5"), "w") as f:
        X = f.create_dataset("X", (n1, 16), "f4", chunks=(n1, 16), compression="gzip",
                             compression_opts=1)
        for i in range(0, n1, 1 << 20):
            X[i:i + (1 << 20)] = 0.0
        f.create_dataset("y", (n1,), "i1", chunks=(n1,), compression="gzip")[:] = 0
    write_model(p("m16.h5"), w=np.ones((16, 1), np.float32))
    # (peak RSS of the process and its sandboxed child, from a fresh interpreter's rusage)
    meter = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "sys.stderr.write(r.stderr)\n"
             "sys.stderr.write('maxrss %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(r.returncode)\n")
    tr = subprocess.run([sys.executable, "-c", meter, SG_BIN, "eval", "--model", p("m16.h5"),
                         "--data", p("onechunk.h5"), "--max-rows", "1000000"],
                        capture_output=True, text=True)
    rss = [int(x.split()[1]) for x in tr.stderr.splitlines() if x.startswith("maxrss ")]
    if tr.returncode != 2 or "more than --max-rows 1000000" not in tr.stderr or not rss or rss[0] > 150000:
        fails.append("eval --max-rows on one 256 MiB chunk row: exit %d, %s kB, %s"
                     % (tr.returncode, rss, tr.stderr.strip()))
    os.remove(p("onechunk.h5"))
    with h5py.File(p("small.h5"), "w") as f:
        f["X"] = np.zeros((1000, 1), np.float32)
        f["y"] = np.zeros(1000, np.int8)
    rc, _, err = run("eval", "--model", p("m1.h5"), "--data", p("small.h5"), "--max-rows", "1000")
    if rc != 0:
        fails.append("eval of 1000 rows with --max-rows 1000: exit %d %s" % (rc, err))
for m in fails:
    print("FAIL", m)
print(f"{checks - len(fails)} passed, {len(fails)} failed")
sys.exit(1 if fails else 0)
