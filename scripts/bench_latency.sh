#!/usr/bin/env bash
# Batch-1 single-stream latency of an MLP 64->256->256->1 (binary classifier):
# stagegate bench vs a plain OpenBLAS cblas_sgemv loop vs scikit-learn's per-row
# predict, one table with ratios; then the harness overhead: the single-stream
# p50 of a small kernel over a bare loop of the same kernel on the same CPU
# (target: within 10%). usage: scripts/bench_latency.sh [BUILD_DIR]
# Pin and quiet the machine for meaningful numbers; see docs/latency.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-${STAGEGATE_BUILD_DIR:-$HERE/../build/release}}
BIN=${STAGEGATE_BIN:-$BUILD/cli/stagegate}
PY=/usr/bin/python3
CC=${CC:-cc}
[ -x "$BIN" ] || { echo "bench_latency.sh: no stagegate binary at $BIN (build first or pass BUILD_DIR)" >&2; exit 2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. "$HERE/same_blas.sh"
same_blas "$BIN"

$PY "$HERE/make_dataset.py" --out "$T/d.h5" --task binary --rows 4096 --features 64 --seed 1 \
    --fit mlp-relu --hidden 256,256 --max-iter 30 --fit-rows 4096 --fit-seed 2 \
    --model-out "$T/m.h5" --joblib-out "$T/m.joblib" >/dev/null 2>&1

"$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --duration 2 \
    --min-queries 20000 --json >"$T/sg.json"
read -r SG50 SG99 < <($PY -c "import json,sys; l=json.load(open(sys.argv[1]))['latency_ns']; print(l['p50'], l['p99'])" "$T/sg.json")

OPENBLAS_CFLAGS=$(pkg-config --cflags openblas 2>/dev/null || true)
OPENBLAS_LIBS=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
$CC -O2 $OPENBLAS_CFLAGS "$HERE/sgemv_loop.c" -o "$T/sgemv_loop" $OPENBLAS_LIBS -lm
read -r BL50 BL99 < <(taskset -c 0 "$T/sgemv_loop" 20000 64 256 256 1)

read -r SK50 SK99 < <(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 $PY - "$T/m.joblib" "$T/d.h5" <<'PYEOF'
import sys, time, joblib, h5py, numpy as np
est = joblib.load(sys.argv[1])
X = np.asarray(h5py.File(sys.argv[2], "r")["X"][:2000], dtype=np.float64)
for i in range(200):
    est.predict(X[i:i + 1])
lat = []
for i in range(2000):
    t0 = time.perf_counter_ns()
    est.predict(X[i:i + 1])
    lat.append(time.perf_counter_ns() - t0)
lat.sort()
print(lat[1000 - 1], lat[1980 - 1])
PYEOF
)

printf '%-34s %12s %12s %10s\n' "MLP 64-256-256-1, batch 1" "p50 (us)" "p99 (us)" "p50 ratio"
row() { awk -v n="$1" -v a="$2" -v b="$3" -v s="$SG50" 'BEGIN{printf "%-34s %12.2f %12.2f %9.2fx\n", n, a/1000, b/1000, a/s}'; }
row "stagegate bench (single-stream)" "$SG50" "$SG99"
row "OpenBLAS cblas_sgemv loop" "$BL50" "$BL99"
row "scikit-learn predict per row" "$SK50" "$SK99"
echo "(ratio = p50 / stagegate p50; stagegate numbers from --json, clock: $($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['clock']['source'])" "$T/sg.json"))"

# Harness overhead (a benchmark line, not a test: tests/latency/test_overhead.c only checks the
# method with a loose bound). Needs the build's test programs (-DSTAGEGATE_TESTS=ON, the default).
OVH=$BUILD/tests/latency/sg_bench_overhead
if [ -x "$OVH" ]; then
    "$OVH" 5 >"$T/ovh.txt"
    awk '/^median ratio/ {printf "harness overhead, MLP 64-256-1 batch 1: p50 / bare kernel loop = %.3fx (median of 5 runs; min %.3f, max %.3f; target <= 1.10)\n", $3, $5, $7}' "$T/ovh.txt"
else
    echo "harness overhead: skipped ($OVH not built)"
fi
