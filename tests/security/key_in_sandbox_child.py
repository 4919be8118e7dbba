#!/usr/bin/python3
"""The signing key is not in the memory of the HDF5 check's children.

gate signs with a private key and parses untrusted HDF5 (the models, the validation set). The
parse runs first in a forked, sandboxed child; a child that libhdf5's bugs let a crafted file
take over may still write its one-line "refusal" back to the parent, which prints it (a CI
log). fork copies the parent's memory, so whatever key material the parent holds at that
moment is the child's too. This test stops every child the gate forks, reads its whole
address space (/proc/PID/mem) and looks for the key: the private scalar in either byte order
(OpenSSL keeps it in little-endian words) and each line of the PEM file's base64 text. Then
the gate must still pass and sign with that key (openssl verifies the report)."""
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

SG = os.environ["STAGEGATE_BIN"]
SRC = os.environ["STAGEGATE_SOURCE_DIR"]
PY = "/usr/bin/python3"


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def private_scalar(key_pem):
    out = run("openssl", "pkey", "-in", key_pem, "-text", "-noout").stdout
    m = re.search(r"priv:\s*\n((?:\s+[0-9a-f:]+\n)+)", out)
    hexs = re.sub(r"[^0-9a-f]", "", m.group(1))
    raw = bytes.fromhex(hexs)
    return raw[-32:] if len(raw) > 32 else raw  # a leading 00 byte of the DER integer


def children(pid):
    kids = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(k) for k in f.read().split())
    except OSError:
        pass
    return kids


def memory_of(pid):
    """Every readable private mapping of pid, concatenated."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5] if len(parts) > 5 else ""
            if parts[1][0] != "r" or path.startswith("/") and "w" not in parts[1]:
                continue  # unreadable, or a read-only file mapping (code, constants)
            if path in ("[vvar]", "[vsyscall]") or hi - lo > 1 << 32:
                continue  # a reservation, not memory the process filled
            try:
                mem.seek(lo)
                chunks.append(mem.read(hi - lo))
            except OSError:
                pass
    return b"".join(chunks)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        mk = f"{SRC}/scripts/make_dataset.py"
        run(PY, mk, "--out", "val.h5", "--task", "binary", "--rows", "3000", "--features", "8",
            "--seed", "1", "--fit", "logreg", "--fit-rows", "3000", "--fit-seed", "1",
            "--model-out", "base.h5")
        run(PY, mk, "--task", "binary", "--features", "8", "--seed", "1", "--fit", "logreg",
            "--fit-rows", "2000", "--fit-seed", "2", "--model-out", "cand.h5")
        with open("policy.json", "w") as f:
            json.dump({"metrics": {"accuracy": {"threshold": 0.5}},
                       "shadow": {"min_agreement": 0.5}}, f)
        failures = []
        for kind in ("ecdsa-p256", "ed25519"):
            prefix = f"k_{kind}"
            run(SG, "keygen", "--out", prefix, "--type", kind)
            key_pem = f"{prefix}.key.pem"
            scalar = private_scalar(key_pem)
            assert len(scalar) == 32, (kind, scalar.hex())
            lines = [l.encode() for l in open(key_pem).read().splitlines()
                     if l and not l.startswith("-----")]
            needles = {"the private scalar": scalar, "the private scalar reversed": scalar[::-1]}
            for i, l in enumerate(lines):
                if len(l) >= 24:
                    needles[f"PEM line {i + 1}"] = l
            gate = subprocess.Popen([SG, "gate", "--model", "cand.h5", "--baseline", "base.h5",
                                     "--data", "val.h5", "--policy", "policy.json", "--key",
                                     key_pem, "--cpus", "0", "--out", f"r_{kind}.json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    # Its own process group in this session: never orphaned
                                    # while this test lives, so a child exiting while the
                                    # gate is stopped brings no SIGHUP (POSIX job control).
                                    process_group=0)
            seen, read, found = set(), set(), []
            deadline = time.monotonic() + 60
            while gate.poll() is None and time.monotonic() < deadline:
                stopped = []
                new = children(gate.pid) - seen
                if not new:
                    time.sleep(0.0002)
                    continue
                # The gate stops too while its children are read, so that the next ones are
                # not forked and gone meanwhile.
                os.kill(gate.pid, signal.SIGSTOP)
                for kid in new:
                    try:
                        os.kill(kid, signal.SIGSTOP)
                        stopped.append(kid)
                    except ProcessLookupError:
                        pass
                    seen.add(kid)
                for kid in stopped:
                    try:
                        # Stopped: wait until the kernel says so before reading. One that had
                        # already exited (a zombie, no memory left) is not counted as read.
                        state = "?"
                        for _ in range(200):
                            with open(f"/proc/{kid}/stat") as f:
                                state = f.read().rsplit(")", 1)[1].split()[0]
                            if state in "TtZX":
                                break
                            time.sleep(0.001)
                        if state not in "Tt":
                            continue
                        mem = memory_of(kid)
                        read.add(kid)
                        if len(mem) < 1 << 20:
                            failures.append(f"{kind}: read only {len(mem)} bytes of child {kid}")
                        found += [f"{what} in child {kid}" for what, n in needles.items()
                                  if n in mem]
                    except OSError as e:
                        if os.path.exists(f"/proc/{kid}"):
                            failures.append(f"{kind}: cannot read child {kid}: {e}")
                    finally:
                        try:
                            os.kill(kid, signal.SIGCONT)
                        except ProcessLookupError:
                            pass
                os.kill(gate.pid, signal.SIGCONT)
            out, err = gate.communicate(timeout=120)
            if gate.returncode != 0:
                failures.append(f"{kind}: gate exit {gate.returncode}: {err.decode().strip()}")
                continue
            # Three are forked (two models, one set), one after another for the models; a
            # busy machine may let one finish unseen, but not all of them.
            if not read:
                failures.append(f"{kind}: no HDF5 check child was caught (the test saw nothing)")
            failures += [f"{kind}: {f}" for f in found]
            # The report is signed with that very key (openssl, independently).
            env = json.load(open(f"r_{kind}.json"))
            payload = base64.b64decode(env["payload"])
            pae = b"DSSEv1 %d %s %d %s" % (len(env["payloadType"]), env["payloadType"].encode(),
                                           len(payload), payload)
            open("pae.bin", "wb").write(pae)
            open("sig.bin", "wb").write(base64.b64decode(env["signatures"][0]["sig"]))
            run("openssl", "pkey", "-in", key_pem, "-pubout", "-out", "pub.pem")
            dgst = ["-sha256"] if kind == "ecdsa-p256" else []
            v = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem",
                                "-rawin", "-in", "pae.bin", "-sigfile", "sig.bin"] +
                               (["-digest", "sha256"] if dgst else []),
                               capture_output=True, text=True)
            if v.returncode != 0:
                failures.append(f"{kind}: openssl does not verify the report: {v.stdout}{v.stderr}")
            print(f"{kind}: {len(read)} of {len(seen)} check children stopped and read; "
                  f"{'key found' if found else 'no key material'}")
        for f in failures:
            print("FAIL", f)
        sys.exit(1 if failures else 0)


main()
