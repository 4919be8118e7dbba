#!/bin/bash
# The data bench_eval.sh and bench_eval_ab.sh share: a ROWS x 64 binary set and the
# scikit-learn MLP(256,256) fitted on it, in stagegate's HDF5 format and as joblib. Made once
# and cached in B; reused only while the files are byte for byte the ones made (their
# SHA-256 recorded next to them), so that a file another script wrote under the same name
# is never benchmarked as this model.
#
#   scripts/bench_eval_data.sh B ROWS
set -euo pipefail
cd "$(dirname "$0")/.."
B=$1 ROWS=$2
mkdir -p "$B"
files="eval_$ROWS.h5 mlp256.h5 mlp256.joblib"
stamp=bench_eval_$ROWS.sha256
if (cd "$B" && [ -f "$stamp" ] && sha256sum --quiet --strict -c "$stamp" >/dev/null 2>&1); then
    exit 0
fi
echo "== making a $ROWS x 64 set and an MLP(256,256) (once; cached in $B)" >&2
/usr/bin/python3 scripts/make_dataset.py --task binary --rows "$ROWS" --features 64 --seed 11 \
    --out "$B/eval_$ROWS.h5" --fit mlp-relu --hidden 256,256 --fit-rows 20000 --max-iter 20 \
    --joblib-out "$B/mlp256.joblib" --model-out "$B/mlp256.h5" >/dev/null
# shellcheck disable=SC2086
(cd "$B" && sha256sum $files >"$stamp")
