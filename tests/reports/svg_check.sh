#!/bin/bash
# Renders the gate report (passing, failing, overloaded server) and the trend page from
# synthetic runs, and checks their charts and tables (svg_check.py).
set -euo pipefail
: "${SG_RENDER_FIXTURES:?}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$SG_RENDER_FIXTURES" "$dir"
/usr/bin/python3 "$(dirname "$0")/svg_check.py" "$dir"
