#!/bin/bash
# Exports every supported scikit-learn estimator, loads it with the C loader and compares
# its outputs with scikit-learn's; unsupported estimators must exit 2 and leave no file.
set -euo pipefail
forward=${1:?usage: export_test.sh MODEL_FORWARD_BINARY}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$(dirname "$0")/export_check.py" "$forward" "$tmp"
