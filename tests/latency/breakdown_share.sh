#!/usr/bin/env bash
# Timing check of --breakdown: the stages timed inside the query bracket must
# account for a real share of the p50 (probes that timed nothing, or the wrong
# window, would give a share near 0). A measured ratio, so it is labelled
# `timing`; the exact structure of the breakdown is checked in samples_csv.sh.
#
# Bound: share >= 0.25. Over 50 runs on the 2-core development VM under
# scripts/test.sh conditions, half with a CPU hog on the other core
# (scripts/timing_spread.sh):
#   Release:     share 0.83 .. 4.44
#   ASan+UBSan:  share 0.96 .. 5.89
set -euo pipefail
BIN=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$PY "$SRC/scripts/make_dataset.py" --out "$T/d.h5" --task binary --rows 3000 --features 64 --seed 3 \
    --fit mlp-relu --hidden 64 --max-iter 5 --fit-rows 500 --model-out "$T/m.h5" >/dev/null 2>&1
"$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --duration 0.2 --min-queries 700 \
    --breakdown --json >"$T/bd.json"
$PY - "$T/bd.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
share = sum(d["breakdown_ns"].values()) / d["latency_ns"]["p50"]
print("timing: breakdown.share_of_p50 = %.4f (bound: >= 0.25)" % share)
assert share >= 0.25, share
PYEOF
