#!/usr/bin/env bash
# The first timed single-stream query is as warm as the rest. After the pool's re-warm job
# the worker slept until the timed job started, and getrusage ran just before the window, so
# query 0 ran cold: 1.3-4x the median of a 3 us MLP in every run, and on a 64-query gate
# run it was the early-stopping p90 itself. Here, in 10 runs of 300 queries, query 0 must
# be within 1.5x the run's median in at least 8 (before the fix: in none of 8).
set -euo pipefail
BIN=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$PY "$SRC/scripts/make_dataset.py" --out "$T/d.h5" --task binary --rows 2000 --features 64 --seed 3 \
    --fit mlp-relu --hidden 256 --max-iter 5 --fit-rows 500 --model-out "$T/m.h5" >/dev/null 2>&1
warm=0
for run in 1 2 3 4 5 6 7 8 9 10; do
    "$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --duration 0 \
        --min-queries 300 --repetitions 1 --samples "$T/s.csv" --json >"$T/s.json" 2>"$T/err" ||
        { echo "FAIL: bench exit $?: $(cat "$T/err")"; exit 1; }
    if $PY - "$T/s.csv" <<'PYEOF'; then warm=$((warm + 1)); fi
import csv, statistics, sys
lat = [int(r[0]) for r in list(csv.reader(open(sys.argv[1])))[1:]]
first, med = lat[0], statistics.median(lat)
print("run: query 0 %d ns, median %d ns (%.2fx)" % (first, med, first / med))
sys.exit(0 if first <= 1.5 * med else 1)
PYEOF
done
echo "query 0 within 1.5x the median in $warm of 10 runs"
[ "$warm" -ge 8 ] || { echo "FAIL: the first timed query ran cold"; exit 1; }
