#!/bin/sh
# One command from a fresh Debian 12 machine to metrics: installs what is missing,
# builds stagegate (Release), makes an example validation set and a fitted
# scikit-learn model, exports the model and evaluates it.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$JOBS" --target stagegate >/dev/null
SG=build/release/cli/stagegate

OUT=${DEMO_DIR:-build/demo}
mkdir -p "$OUT"
echo "== making a 200,000-row binary validation set and fitting an MLP (scikit-learn)"
/usr/bin/python3 scripts/make_dataset.py --task binary --rows 200000 --features 32 --seed 7 \
    --out "$OUT/val.h5" --fit mlp-relu --hidden 64,64 --joblib-out "$OUT/model.joblib" \
    --model-out "$OUT/model.h5"
echo "== exporting the fitted model with scripts/export_sklearn.py"
/usr/bin/python3 scripts/export_sklearn.py "$OUT/model.joblib" "$OUT/model.h5"
echo "== stagegate eval"
"$SG" eval --model "$OUT/model.h5" --data "$OUT/val.h5"
