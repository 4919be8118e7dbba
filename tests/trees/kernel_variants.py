"""The kernel variants a stagegate binary can run on this machine, for the parity tests."""
import json
import subprocess


def runnable_variants(sg, check):
    """The variants this CPU and OS can run, as stagegate itself decides (cpuid and XCR0):
    `clock --json` names them. The scalar one always runs, so a probe that fails cannot skip
    every variant unseen: check(False, ...) is called then."""
    p = subprocess.run([sg, "clock", "--json"], capture_output=True, text=True)
    out = json.loads(p.stdout)["kernels"]["runnable"] if p.returncode == 0 else []
    check("scalar" in out, "clock --json names no scalar kernels: %s" % p.stderr.strip())
    for isa in ("avx2", "avx512"):
        if isa not in out:
            print("skip %s: this CPU or OS cannot run it" % isa)
    return out
