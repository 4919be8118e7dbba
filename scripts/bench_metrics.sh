#!/usr/bin/env bash
# Times the binary metric kernels on 1M rows against scikit-learn on the same rows.
#
#   scripts/bench_metrics.sh [BUILD_DIR] [ROWS]
#
# BUILD_DIR (default: build, or $STAGEGATE_BUILD_DIR) must hold tests/metrics/sg_metrics_probe
# (built with the tests). The C side times accumulate + finish of every binary metric
# (accuracy, precision, recall, f1, roc_auc, average_precision, log_loss, confusion matrix);
# scikit-learn times accuracy + f1 + roc_auc + log_loss. Both report the best of several runs.
# Prints one JSON object; exits non-zero if the two disagree by more than 1e-6.
set -euo pipefail
build="${1:-${STAGEGATE_BUILD_DIR:-build}}"
rows="${2:-1000000}"
probe="$build/tests/metrics/sg_metrics_probe"
[[ -x "$probe" ]] || { echo "bench_metrics: $probe not found; build the tests first" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$probe" --bench "$rows" --repeat 9 --write-raw "$tmp/rows.bin" > "$tmp/c.json"
# Debian's interpreter carries numpy/scikit-learn; another python3 may come first on PATH.
/usr/bin/python3 - "$tmp/rows.bin" "$rows" "$tmp/c.json" <<'PY'
import json, sys, time
import numpy as np
from sklearn import metrics as skm

path, n, cpath = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = np.fromfile(path, dtype=np.uint8)
y = raw[: 4 * n].view(np.int32)
p1 = raw[4 * n : 8 * n].view(np.float32)
# The probe's rows are (1 - p1, p1) in float32; sklearn gets them promoted to float64.
proba = np.column_stack([np.float32(1) - p1, p1]).astype(np.float64)
c = json.load(open(cpath))
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    yp = (proba[:, 1] >= 0.5).astype(np.int32)
    ref = {
        "accuracy": skm.accuracy_score(y, yp),
        "f1": skm.f1_score(y, yp),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba),
    }
    best = min(best, time.perf_counter() - t0)
diff = max(abs(c["metrics"][k] - v) for k, v in ref.items())
out = {
    "rows": n,
    "stagegate_seconds_min": c["seconds_min"],
    "stagegate_seconds_median": c["seconds_median"],
    "sklearn_seconds_min": best,
    "speedup": best / c["seconds_min"],
    "max_abs_difference": diff,
}
print(json.dumps(out, indent=2))
sys.exit(0 if diff <= 1e-6 else 1)
PY
