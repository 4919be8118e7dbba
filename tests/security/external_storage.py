#!/usr/bin/python3
"""Attack: a gated model or validation set whose bytes live outside the file that was hashed.

HDF5 external storage, external links and virtual datasets let a file's datasets read from
side files; swapping a side file after gating changed what `eval` computed while every digest
stayed the same. Each form must be refused with exit 2, one line naming the file and object.
User-defined filters (plugin code, e.g. LZF) are refused the same way."""
import os
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import D, expect_refused, run, write_data, write_model  # noqa: E402

fails = []


def check(msg):
    if msg:
        fails.append(msg)
        print("FAIL", msg)


with tempfile.TemporaryDirectory() as t:
    p = lambda n: os.path.join(t, n)  # noqa: E731
    write_model(p("m.h5"))
    write_data(p("val.h5"))
    rc, out, err = run("eval", "--model", p("m.h5"), "--data", p("val.h5"), "--json")
    check(None if rc == 0 else f"control eval failed: {err}")

    # Model weights in external raw storage (the reported attack), and behind an external link.
    write_model(p("ext.h5"), external_w=p("W.bin"))
    rc, _, err = run("eval", "--model", "ext.h5", "--data", p("val.h5"), cwd=t)
    check(expect_refused("model /layers/0/W in external storage", rc, err, "ext.h5",
                         "/layers/0/W", "external file 'W.bin'"))
    write_model(p("link.h5"), link_w=p("side.h5"))
    rc, _, err = run("eval", "--model", p("link.h5"), "--data", p("val.h5"))
    check(expect_refused("model /layers/0/W as an external link", rc, err, "link.h5", "/layers/0/W",
                         "external link"))

    # Validation set: /X in external storage pointing at a system file, /X as a virtual dataset,
    # /X compressed with a user-defined filter.
    n = os.path.getsize("/etc/passwd") // (4 * D)
    with h5py.File(p("xpw.h5"), "w") as f:
        f.attrs.update(format="stagegate-dataset", format_version=1)
        f.create_dataset("X", shape=(n, D), dtype=np.float32,
                         external=[("/etc/passwd", 0, n * D * 4)])
        f["y"] = np.zeros(n, np.int8)
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("xpw.h5"))
    check(expect_refused("dataset /X stored in /etc/passwd", rc, err, "xpw.h5", "/X",
                         "/etc/passwd"))

    X, y = write_data(p("src.h5"))
    layout = h5py.VirtualLayout(shape=X.shape, dtype=np.float32)
    layout[:] = h5py.VirtualSource(p("src.h5"), "X", shape=X.shape)
    with h5py.File(p("vds.h5"), "w") as f:
        f.attrs.update(format="stagegate-dataset", format_version=1)
        f.create_virtual_dataset("X", layout)
        f["y"] = y
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("vds.h5"))
    check(expect_refused("dataset /X as a virtual dataset", rc, err, "vds.h5", "/X", "virtual"))

    write_data(p("lzf.h5"), compression="lzf")
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("lzf.h5"))
    check(expect_refused("dataset /X with the LZF plugin filter", rc, err, "lzf.h5", "/X",
                         "filter 32000"))
    # Built-in filters stay accepted.
    write_data(p("gz.h5"), compression="gzip", shuffle=True, fletcher32=True, chunks=(500, D))
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("gz.h5"))
    check(None if rc == 0 else f"deflate+shuffle+fletcher32 refused: {err}")

    # A tree ensemble exported from scikit-learn, with one of its /trees arrays moved to
    # external storage: the tree loader applies the same rule.
    import subprocess
    src = os.environ["STAGEGATE_SOURCE_DIR"]
    subprocess.run(["/usr/bin/python3", os.path.join(src, "scripts/make_dataset.py"), "--task",
                    "binary", "--rows", "300", "--features", str(D), "--seed", "3", "--out",
                    p("tval.h5")], check=True, capture_output=True)
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    with h5py.File(p("tval.h5"), "r") as f:
        Xt, yt = f["X"][:], f["y"][:]
    joblib.dump(RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(Xt, yt),
                p("rf.joblib"))
    subprocess.run(["/usr/bin/python3", os.path.join(src, "scripts/export_sklearn.py"),
                    p("rf.joblib"), p("rf.h5")], check=True, capture_output=True)
    rc, _, err = run("eval", "--model", p("rf.h5"), "--data", p("tval.h5"))
    check(None if rc == 0 else f"control tree eval failed: {err}")
    moved = []
    with h5py.File(p("rf.h5"), "r") as f, h5py.File(p("rf_ext.h5"), "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                g.require_group(name).attrs.update(dict(obj.attrs))
            elif not moved and name.startswith("trees/") and obj.ndim == 1 and obj.dtype.kind == "f":
                data = obj[...]
                data.tofile(p("side.bin"))
                g.create_dataset(name, shape=data.shape, dtype=data.dtype,
                                 external=[("side.bin", 0, data.nbytes)])
                moved.append(name)
            else:
                g.create_dataset(name, data=obj[...])
                g[name].attrs.update(dict(obj.attrs))
        f.visititems(visit)
    rc, _, err = run("eval", "--model", "rf_ext.h5", "--data", p("tval.h5"), cwd=t)
    check(expect_refused(f"tree model /{moved[0] if moved else '?'} in external storage", rc, err,
                         "rf_ext.h5", "external file 'side.bin'"))

print(f"{8 - len(fails)} passed, {len(fails)} failed")
sys.exit(1 if fails else 0)
