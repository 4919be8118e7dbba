#!/usr/bin/env bash
# Metric kernels against scikit-learn 1.2.1 on seeded random cases (see sklearn_reference.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
probe="${SG_METRICS_PROBE:-${STAGEGATE_BUILD_DIR:?}/tests/metrics/sg_metrics_probe}"
# Debian's interpreter carries numpy/scikit-learn; another python3 may come first on PATH.
exec /usr/bin/python3 "$here/sklearn_reference.py" "$probe" "${SG_METRICS_CASES:-120}"
