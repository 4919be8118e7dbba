#!/usr/bin/env bash
# Measures the spread of every `timing`-labelled test, to set (and re-check)
# the bounds written next to each assertion. Runs the timing tests of a build
# N times through CTest, as scripts/test.sh does, with a CPU hog pinned to the
# last CPU during the second half of the runs, and prints min / median / max of
# every figure the tests report on their `timing:` lines, plus any failures.
#
#   scripts/timing_spread.sh BUILD_DIR [N]      (N defaults to 50)
set -euo pipefail
BUILD=${1:?usage: scripts/timing_spread.sh BUILD_DIR [N]}
N=${2:-50}
[ -f "$BUILD/CTestTestfile.cmake" ] || { echo "timing_spread.sh: $BUILD is not a CTest build dir" >&2; exit 2; }
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS 2>/dev/null || true
LOG=$(mktemp)
HOG=""
cleanup() { [ -n "$HOG" ] && kill "$HOG" 2>/dev/null; rm -f "$LOG"; }
trap cleanup EXIT
last_cpu=$(($(nproc) - 1))
fails=0
for i in $(seq 1 "$N"); do
    if [ "$i" -gt $((N / 2)) ] && [ -z "$HOG" ]; then
        taskset -c "$last_cpu" sh -c 'while :; do :; done' &
        HOG=$!
    fi
    tag="quiet"
    [ -n "$HOG" ] && tag="hog"
    out=$(ctest --test-dir "$BUILD" -L timing -V 2>&1) || { fails=$((fails + 1)); echo "run $i ($tag): FAILED" >&2;
        echo "$out" | grep -E 'Failed|FAILED|Assert|assert' | head -5 >&2; }
    echo "$out" | sed -n "s/^.*\(timing\(-run\)\?: .*\)$/$tag \1/p" >>"$LOG"
done
echo "$N runs of the timing tests in $BUILD ($((N - N / 2)) with a CPU hog on CPU $last_cpu), $fails failed"
/usr/bin/python3 - "$LOG" <<'PYEOF'
import re, statistics, sys
vals = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) (timing(?:-run)?): (\S+) = ([-0-9.eE+naif]+)(?: \(bound: (.*)\))?", line)
    if not m:
        continue
    tag, kind, name, v, bound = m.groups()
    key = name + (" (single run)" if kind == "timing-run" else "")
    d = vals.setdefault(key, {"all": [], "quiet": [], "hog": [], "bound": bound})
    d["all"].append(float(v)); d[tag].append(float(v))
fmt = lambda xs: "%.4g / %.4g / %.4g" % (min(xs), statistics.median(xs), max(xs)) if xs else "-"
print("%-52s %5s  %-26s %-26s %s" % ("figure", "n", "quiet min/med/max", "hog min/med/max", "bound"))
for k in sorted(vals):
    d = vals[k]
    print("%-52s %5d  %-26s %-26s %s" % (k, len(d["all"]), fmt(d["quiet"]), fmt(d["hog"]), d["bound"] or ""))
PYEOF
