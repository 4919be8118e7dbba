#!/usr/bin/python3
"""Attack: a variable-length string attribute whose global-heap reference is patched to an
object index the heap does not have (found by the HDF5 file fuzzer, tests/fuzz/fuzz_hdf5.c).

libhdf5 1.10 reads past its heap's object table (segfault in H5HG_read) when the attribute is
read: eval died with SIGSEGV on such a validation set or model file. No filter is involved, so
this is a crash in libhdf5's own metadata parsing: the loaders now run that parse first in a
sandboxed child, and a child that dies makes the file malformed -- exit 2, one line naming the
file and the object being read."""
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import expect_refused, run, write_data, write_model  # noqa: E402

fails = []


def check(msg):
    if msg:
        fails.append(msg)
        print("FAIL", msg)


def patch_heap_index(src, dst, text, index):
    """The attribute's value is a reference (length u32, heap collection address u64, object
    index u32) into the global heap collection (signature GCOL) that holds text."""
    data = bytearray(open(src, "rb").read())
    gcol = data.find(b"GCOL")
    ref = data.find(struct.pack("<IQ", len(text), gcol))
    if gcol < 0 or ref < 0:
        raise SystemExit(f"{src}: no global-heap reference to '{text}' found")
    struct.pack_into("<I", data, ref + 12, index)
    open(dst, "wb").write(bytes(data))


with tempfile.TemporaryDirectory() as t:
    p = lambda n: os.path.join(t, n)  # noqa: E731
    write_model(p("m.h5"))
    write_data(p("val.h5"))
    rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("val.h5"))
    check(None if rc == 0 else f"control eval failed: {err}")

    for index in (0x7FFF, 0xFFFFFFFF):
        patch_heap_index(p("val.h5"), p("bad_val.h5"), "stagegate-dataset", index)
        rc, _, err = run("eval", "--model", p("m.h5"), "--data", p("bad_val.h5"))
        check(expect_refused(f"validation set, heap index {index:#x}", rc, err, "bad_val.h5",
                             "attribute format", "malformed HDF5 file"))
        patch_heap_index(p("m.h5"), p("bad_m.h5"), "stagegate-model", index)
        rc, _, err = run("eval", "--model", p("bad_m.h5"), "--data", p("val.h5"))
        check(expect_refused(f"model, heap index {index:#x}", rc, err, "bad_m.h5",
                             "attribute format", "malformed HDF5 file"))
    rc, _, err = run("bench", "--model", p("bad_m.h5"), "--data", p("val.h5"), "--scenario",
                     "offline", "--duration", "0.05")
    check(expect_refused("bench: model", rc, err, "bad_m.h5", "attribute format"))

print(f"{5 - len(fails)} passed, {len(fails)} failed")
sys.exit(1 if fails else 0)
