#!/bin/bash
# memory.max_rss_mb measures the candidate alone: adding --baseline must not change it. The
# candidate's predictions kept for the shadow comparison (4 bytes a row, 32 MB here) had been
# in its peak resident set, so a rule that passed without a baseline failed with one. They
# now wait in a temporary file until the run is measured; the peaks must be within 8 MB.
# Nor may naming a model by registry URI change it: the registry was opened in the gate's
# process, and libsqlite3's pages (about 1 MiB) put a candidate over a budget it met with a
# file baseline. URIs are resolved in a child process now; the medians of five runs each
# must be within 0.5 MiB (about 0.1 apart here; 0.9 to 1.2 before), and strace shows the
# registry file opened by the child only.
set -euo pipefail
: "${STAGEGATE_BIN:?}"
SG=$STAGEGATE_BIN
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
"$SG" keygen --out k >/dev/null
$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(0); n = 8_000_000
with h5py.File("d.h5", "w") as f:
    f["X"] = rng.normal(size=(n, 1)).astype(np.float32)
    f["y"] = rng.integers(0, 4, n).astype(np.int8)
with h5py.File("m.h5", "w") as f:
    f.attrs.update({"format": "stagegate-model", "format_version": 1, "task": "multiclass",
                    "n_classes": 4, "n_features": 1, "link": "softmax"})
    f["layers/0/W"] = np.array([[1, 0, -1, 0.5]], np.float32)
    f["layers/0/b"] = np.zeros(4, np.float32)
    f["layers/0"].attrs["activation"] = "identity"
PY
echo '{"memory": {"max_rss_mb": 1024}, "shadow": {"min_agreement": 0.99}}' > p.json
peak() {
    "$SG" gate --model m.h5 --data d.h5 "$@" --policy p.json --key k.key.pem --out r.json >/dev/null
    $PY -c 'import json, base64; p = json.loads(base64.b64decode(json.load(open("r.json"))["payload"]))
print(p["predicate"]["memory"]["peak_rss_mb"])'
}
alone=$(peak)
with=$(peak --baseline m.h5)
# the shadow comparison itself ran, over every row, and agreed
$PY -c 'import json, base64, sys; p = json.loads(base64.b64decode(json.load(open("r.json"))["payload"]))
s = p["predicate"]["shadow"]; assert s["rows"] == 8000000 and s["agreement"] == 1.0, s' ||
    { echo "FAIL: the shadow comparison with itself"; exit 1; }
$PY -c 'import sys; a, w = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(w - a) < 8 else 1)' \
    "$alone" "$with" || { echo "FAIL: peak RSS $alone MiB alone, $with MiB with --baseline"; exit 1; }
echo "memory with and without a baseline: $alone MiB, $with MiB"

# --- a baseline named by registry URI: the same peak as the same file named by path
"$PY" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(1); n = 200_000
with h5py.File("s.h5", "w") as f:
    f["X"] = rng.normal(size=(n, 1)).astype(np.float32)
    f["y"] = rng.integers(0, 4, n).astype(np.int8)
PY
DB=(--db "$T/reg.db")
"$SG" registry "${DB[@]}" create-model mm >/dev/null
"$SG" registry "${DB[@]}" create-version mm m.h5 >/dev/null
echo '{"memory": {"max_rss_mb": 1024}}' > q.json
small_peak() {
    "$SG" gate "${DB[@]}" --model m.h5 --data s.h5 --baseline "$1" --policy q.json --key k.key.pem \
        --out r.json >/dev/null
    $PY -c 'import json, base64; p = json.loads(base64.b64decode(json.load(open("r.json"))["payload"]))
assert p["predicate"]["evaluation"]["rows"] == 200000, p["predicate"]["evaluation"]
print(p["predicate"]["memory"]["peak_rss_mb"])'
}
by_path=() by_uri=()
for _ in 1 2 3 4 5; do
    by_path+=("$(small_peak m.h5)")
    by_uri+=("$(small_peak models:/mm/1)")
done
$PY - "${by_path[*]}" "${by_uri[*]}" <<'PY' || exit 1
import statistics, sys
a = statistics.median(map(float, sys.argv[1].split()))
b = statistics.median(map(float, sys.argv[2].split()))
print("peak RSS, baseline by path / by registry URI (median of 5): %.2f / %.2f MiB" % (a, b))
if abs(b - a) >= 0.5:
    sys.exit("FAIL: a baseline named by registry URI moved the peak RSS by %.2f MiB" % (b - a))
PY
if command -v strace >/dev/null; then
    # (LeakSanitizer cannot run under ptrace)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=openat \
        -o trace.txt "$SG" gate "${DB[@]}" --model m.h5 --data s.h5 \
        --baseline models:/mm/1 --policy q.json --key k.key.pem --out r.json >/dev/null
    gate_pid=$(head -1 trace.txt | awk '{print $1}')
    opens=$(grep -F "$T/reg.db\"" trace.txt | awk '{print $1}' | sort -u)
    [ -n "$opens" ] || { echo "FAIL: strace saw no open of the registry"; exit 1; }
    # the gate reads the registry's audit head for its report after the measurement: every
    # open before the candidate's evaluation (the first open of s.h5) must be a child's
    first_data=$(grep -nF "s.h5\"" trace.txt | grep -F "$gate_pid " | head -1 | cut -d: -f1)
    early=$(head -n "$first_data" trace.txt | grep -F "$T/reg.db\"" | grep -c "^$gate_pid " || true)
    if [ "$early" != 0 ]; then
        echo "FAIL: the gate process opened the registry before evaluating the candidate"
        exit 1
    fi
fi
