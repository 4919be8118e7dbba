#!/bin/bash
# End-to-end `stagegate eval` time of two binaries on the same 1M-row sets, runs alternated
# (A, B, A, B, ...) so that the drift of a shared machine hits both alike:
#
#   ./scripts/bench_eval_ab.sh OLD_BIN NEW_BIN [PAIRS] [ROWS]     default 7 pairs, 1,000,000 rows
#
# Sets: ROWS x 64 float32, chunked without filters (make_dataset.py's default) and
# shuffle+deflate (--layout gzip), with bench_eval.sh's MLP 64 -> 256 -> 256 -> 1; made once
# and cached in BENCH_DIR (default build/bench). Prints, per set, each pair's NEW/OLD wall
# ratio, their median and range, and the median wall times. Used to measure what the HDF5
# guards of docs/formats.md cost (#what-reaches-libhdf5).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 PAIRS=${3:-7} ROWS=${4:-1000000}
B=${BENCH_DIR:-build/bench}
mkdir -p "$B"
MK=scripts/make_dataset.py
scripts/bench_eval_data.sh "$B" "$ROWS"
if [ ! -f "$B/eval_gzip_$ROWS.h5" ]; then
    /usr/bin/python3 $MK --task binary --rows "$ROWS" --features 64 --seed 11 --layout gzip \
        --out "$B/eval_gzip_$ROWS.h5" >/dev/null
fi
/usr/bin/python3 - "$OLD" "$NEW" "$PAIRS" "$B/mlp256.h5" "$B/eval_$ROWS.h5" "$B/eval_gzip_$ROWS.h5" <<'PY'
import os, statistics, subprocess, sys, time
old, new, pairs, model = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sets = {"chunked": sys.argv[5], "shuffle+deflate": sys.argv[6]}

def wall(binary, data):
    t0 = time.perf_counter()
    subprocess.run([binary, "eval", "--model", model, "--data", data, "--json"],
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0

res = {k: ([], []) for k in sets}
for i in range(pairs):
    for name, data in sets.items():
        # Alternate which binary goes first, so neither always runs on a warmer cache.
        order = [(0, old), (1, new)] if i % 2 == 0 else [(1, new), (0, old)]
        for arm, binary in order:
            res[name][arm].append(wall(binary, data))
print(f"load average at the end: {os.getloadavg()[0]:.1f} (machine: {os.cpu_count()} CPUs)")
for name, (a, b) in res.items():
    ratios = sorted(y / x for x, y in zip(a, b))
    print(f"{name:16s} new/old wall ratio: median {statistics.median(ratios):.3f}, "
          f"range {ratios[0]:.3f}..{ratios[-1]:.3f} over {pairs} pairs; "
          f"median wall old {statistics.median(a):.2f} s, new {statistics.median(b):.2f} s")
    print(f"{'':16s} ratios: " + " ".join(f"{r:.3f}" for r in ratios))
PY
