#!/usr/bin/python3
"""Every CTest test carries exactly one kind label (unit, e2e, reference, timing, fuzz) and
a timeout, and every `timing` test runs serially: read from ctest's own JSON listing."""
import json
import os
import subprocess
import sys

KINDS = {"unit", "e2e", "reference", "timing", "fuzz"}
out = subprocess.run(["ctest", "--test-dir", os.environ["STAGEGATE_BUILD_DIR"], "--show-only=json-v1"],
                     capture_output=True, text=True, check=True).stdout
tests = json.loads(out)["tests"]
bad = []
for t in tests:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    kinds = KINDS.intersection(props.get("LABELS", []))
    if len(kinds) != 1:
        bad.append(f"{t['name']}: kind labels {sorted(kinds)} in {props.get('LABELS')}")
    if not props.get("TIMEOUT"):
        bad.append(f"{t['name']}: no TIMEOUT")
    if "timing" in kinds and not props.get("RUN_SERIAL"):
        bad.append(f"{t['name']}: timing test without RUN_SERIAL")
for b in bad:
    print("FAIL", b)
print(f"{len(tests)} tests checked, {len(bad)} problems")
sys.exit(1 if bad or len(tests) < 40 else 0)
