#!/usr/bin/python3
"""Attack: a chunk compressed with deflate whose filter-pipeline message is patched to say
another built-in filter (shuffle, Fletcher-32).

libhdf5 then ran the wrong filter on the compressed bytes and copied a whole chunk out of the
shorter buffer: a heap over-read (ASan: READ of 64000 bytes in H5VM_memcpyvv), for a
validation set and for a model alike. Now chunks of filtered datasets are fetched raw and
decoded by stagegate with every size checked: each patched file is exit 2 with one line naming
the file and the dataset. The unpatched files (deflate, shuffle+deflate, +Fletcher-32, chunked
without filters, contiguous) load and give bit-identical predictions."""
import os
import struct
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import D, expect_refused, run, write_data, write_model  # noqa: E402

fails = []
checks = 0


def check(msg):
    global checks
    checks += 1
    if msg:
        fails.append(msg)
        print("FAIL", msg)


def relabel(src, dst, old_id, new_id, which=0):
    """Copies src to dst with the id of the which-th filter-pipeline entry naming filter
    old_id changed to new_id. Pipeline message v1 entries are: id u16, name length u16,
    flags u16, number of parameters u16, then the name (e.g. "deflate\\0")."""
    names = {1: b"deflate\0", 2: b"shuffle\0", 3: b"fletcher32\0"}
    data = bytearray(open(src, "rb").read())
    pos, seen = -1, 0
    while True:
        pos = data.find(names[old_id], pos + 1)
        if pos < 0:
            raise SystemExit(f"{src}: no pipeline entry for filter {old_id} found to patch")
        fid, nlen = struct.unpack_from("<HH", data, pos - 8)
        if fid == old_id and nlen >= len(names[old_id]):
            if seen == which:
                break
            seen += 1
    struct.pack_into("<H", data, pos - 8, new_id)
    open(dst, "wb").write(bytes(data))


def predictions(path):
    with h5py.File(path, "r") as f:
        return f["proba"][...]


with tempfile.TemporaryDirectory() as t:
    p = lambda n: os.path.join(t, n)  # noqa: E731
    write_model(p("m.h5"))

    # Controls: every layout h5py writes gives the same predictions, bit for bit.
    layouts = {
        "contig": {},
        "chunked": dict(chunks=(700, D)),
        "gzip": dict(chunks=(1000, D), compression="gzip"),
        "shuffle_gzip": dict(chunks=(300, 5), compression="gzip", shuffle=True),
        "fletcher": dict(chunks=(512, D), compression="gzip", shuffle=True, fletcher32=True),
    }
    ref = None
    for name, kw in layouts.items():
        write_data(p(f"{name}.h5"), **kw)
        rc, _, err = run("eval", "--model", p("m.h5"), "--data", p(f"{name}.h5"), "--predictions",
                         p(f"pred_{name}.h5"), "--chunk-rows", "777")
        check(None if rc == 0 else f"control {name}: exit {rc}: {err}")
        if rc == 0:
            got = predictions(p(f"pred_{name}.h5"))
            ref = got if ref is None else ref
            check(None if np.array_equal(got.view(np.uint32), ref.view(np.uint32))
                  else f"control {name}: predictions differ from the contiguous set's")

    # The reported attack: /X deflate-compressed, relabelled as shuffle.
    relabel(p("gzip.h5"), p("x_shuffle.h5"), 1, 2)
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("x_shuffle.h5"))
    check(expect_refused("/X deflate relabelled shuffle", rc, err, "x_shuffle.h5", "/X",
                         "shuffle filter"))
    # Variants: deflate relabelled Fletcher-32; in a shuffle+deflate pipeline, deflate
    # relabelled shuffle (two shuffles) and shuffle relabelled deflate.
    relabel(p("gzip.h5"), p("x_fletcher.h5"), 1, 3)
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("x_fletcher.h5"))
    check(expect_refused("/X deflate relabelled fletcher32", rc, err, "x_fletcher.h5", "/X",
                         "chunk at row 0"))
    relabel(p("shuffle_gzip.h5"), p("x_two_shuffles.h5"), 1, 2)
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("x_two_shuffles.h5"))
    check(expect_refused("/X shuffle+deflate, deflate relabelled shuffle", rc, err,
                         "x_two_shuffles.h5", "/X"))
    relabel(p("shuffle_gzip.h5"), p("x_two_deflates.h5"), 2, 1)
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("x_two_deflates.h5"))
    check(expect_refused("/X shuffle+deflate, shuffle relabelled deflate", rc, err,
                         "x_two_deflates.h5", "/X"))
    # /y too (rank 1, int8 labels).
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, D), dtype=np.float32)
    with h5py.File(p("ygz.h5"), "w") as f:
        f["X"] = X
        f.create_dataset("y", data=(X[:, 0] > 0).astype(np.int64), chunks=(1000,),
                         compression="gzip")
    relabel(p("ygz.h5"), p("y_shuffle.h5"), 1, 2)
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("y_shuffle.h5"))
    check(expect_refused("/y deflate relabelled shuffle", rc, err, "y_shuffle.h5", "/y"))

    # A model crafted the same way: /layers/0/W deflate-compressed, relabelled as shuffle.
    w = (np.random.default_rng(1).normal(size=(D, 1)) / 4).astype(np.float32)
    with h5py.File(p("mgz.h5"), "w") as f:
        f.attrs.update(format="stagegate-model", format_version=1, task="binary",
                       n_features=D, n_classes=2, link="sigmoid")
        g = f.create_group("layers/0")
        g.attrs["activation"] = "identity"
        g["b"] = np.array([0.1], np.float32)
        g.create_dataset("W", data=w, chunks=(D, 1), compression="gzip")
    rc, _, err = run("eval", "--model", p("mgz.h5"), "--data", p("contig.h5"), "--predictions",
                     p("pred_mgz.h5"))
    check(None if rc == 0 else f"control deflate model: exit {rc}: {err}")
    if rc == 0 and ref is not None:
        check(None if np.array_equal(predictions(p("pred_mgz.h5")).view(np.uint32),
                                     ref.view(np.uint32))
              else "deflate model: predictions differ from the uncompressed model's")
    relabel(p("mgz.h5"), p("m_shuffle.h5"), 1, 2)
    rc, _, err = run("eval", "--model", p("m_shuffle.h5"), "--data", p("contig.h5"))
    check(expect_refused("model /layers/0/W deflate relabelled shuffle", rc, err, "m_shuffle.h5",
                         "/layers/0/W"))
    rc, _, err = run("bench", "--model", p("m_shuffle.h5"), "--data", p("contig.h5"),
                     "--scenario", "offline", "--duration", "0.05")
    check(expect_refused("bench: model deflate relabelled shuffle", rc, err, "m_shuffle.h5",
                         "/layers/0/W"))

print(f"{checks - len(fails)} passed, {len(fails)} failed")
sys.exit(1 if fails else 0)
