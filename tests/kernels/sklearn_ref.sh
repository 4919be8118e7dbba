#!/usr/bin/env bash
# Kernels against scikit-learn directly: fit estimators, dump their parameters,
# and check both forward paths of every variant within 1e-5 of predict_proba.
set -euo pipefail
: "${STAGEGATE_SOURCE_DIR:?}" "${STAGEGATE_BUILD_DIR:?}"
check="$STAGEGATE_BUILD_DIR/tests/kernels/sg_kernels_sklearn_check"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=$(/usr/bin/python3 "$STAGEGATE_SOURCE_DIR/tests/kernels/sklearn_ref.py" "$work")
# The names list must be complete: an estimator that silently vanished would pass.
[ "$(echo "$names" | wc -l)" -eq 8 ] || { echo "expected 8 estimators, got: $names" >&2; exit 1; }
# shellcheck disable=SC2086
"$check" "$work" $names
