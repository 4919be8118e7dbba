#!/bin/bash
# memory.max_rss_mb measures the candidate alone: adding --baseline must not change it. The
# candidate's predictions kept for the shadow comparison (4 bytes a row, 32 MB here) had been
# in its peak resident set, so a rule that passed without a baseline failed with one. They
# now wait in a temporary file until the run is measured; the peaks must be within 8 MB.
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
