#!/usr/bin/env bash
# How often `stagegate compare` cries wolf, and what it can see, on this machine.
#
#   scripts/bench_compare.sh [--out DIR] [--judge-only] [BUILD_DIR]
#
# Records, interleaved in time so slow drift hits both arms alike:
#   21 runs of a baseline MLP 64 -> H -> H -> 1 (A/A: each run compared with the next,
#      20 pairs), and after each of the first 20 a run of a wider MLP whose hidden layers
#      give 1.25x, 1.5x, 2x or 4x the baseline's multiply-adds (A/B: 5 runs per ratio,
#      each compared with the baseline run just before it).
# Every run is `stagegate bench --scenario single-stream --repetitions REPS --duration S
# --cpus CPUS --json` (defaults 5 x 2 s on CPU 1: what nightly uses). Then it prints the
# A/A pairs flagged improved/regressed at p50, p90, p99 (targets: 0/20, 0/20, <= 1/20),
# the A/B detection rate per ratio (target: 2x and 4x detected 5/5), the smallest ratio
# detected 5/5 at p50 (the minimum detectable effect), the A/A spread compare's default
# floors derive from, and the wall-clock cost per run. The load average (`uptime`) is
# recorded before every run: the figures hold for the conditions they were measured in.
#
# --judge-only re-judges the runs already in DIR (e.g. after changing compare).
# Env: REPS, DURATION, CPUS, BASE_HIDDEN (default 128), PAIRS (default 20); MIN_QUERIES
# (bench --min-queries); COMPARE_OPTS (extra compare options). Short repetitions, as a policy
# with min_queries and no duration_s gives, and how they would be judged regardless:
#   DURATION=0 MIN_QUERIES=700 COMPARE_OPTS="--min-repetition-s 0" scripts/bench_compare.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT= JUDGE_ONLY=0 BUILD=
while [ $# -gt 0 ]; do
    case "$1" in
    --out) OUT=$2; shift 2 ;;
    --judge-only) JUDGE_ONLY=1; shift ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) BUILD=$1; shift ;;
    esac
done
BUILD=${BUILD:-${STAGEGATE_BUILD_DIR:-$HERE/../build/release}}
SG=${STAGEGATE_BIN:-$BUILD/cli/stagegate}
PY=/usr/bin/python3
[ -x "$SG" ] || { echo "bench_compare.sh: no stagegate binary at $SG (build first or pass BUILD_DIR)" >&2; exit 2; }
OUT=${OUT:-$HERE/../build/bench_compare}
REPS=${REPS:-5} DURATION=${DURATION:-2} CPUS=${CPUS:-1} BASE_HIDDEN=${BASE_HIDDEN:-128} PAIRS=${PAIRS:-20}
RATIOS="1.25 1.5 2 4"
mkdir -p "$OUT/runs"

# Hidden width whose MLP 64 -> h -> h -> 1 has about `ratio` times the baseline's
# multiply-adds, rounded to a multiple of 16 so every model fills whole SIMD vectors (an odd
# width pays a tail loop, and its time would no longer follow its FLOPs).
width() { $PY -c "
import math, sys
f = lambda h: 64 * h + h * h + h
h0, r = int(sys.argv[1]), float(sys.argv[2])
print(16 * round((-65 + math.sqrt(65 * 65 + 4 * r * f(h0))) / 2 / 16))" "$BASE_HIDDEN" "$1"; }
flops_ratio() { $PY -c "
import sys
f = lambda h: 64 * h + h * h + h
print(f'{f(int(sys.argv[2])) / f(int(sys.argv[1])):.2f}')" "$BASE_HIDDEN" "$1"; }

if [ "$JUDGE_ONLY" = 0 ]; then
    rm -f "$OUT"/runs/*.json
    $PY "$HERE/make_dataset.py" --out "$OUT/d.h5" --task binary --rows 4096 --features 64 --seed 1 >/dev/null
    for r in 1 $RATIOS; do
        h=$(width "$r")
        $PY "$HERE/make_dataset.py" --task binary --rows 2048 --features 64 --seed 1 --fit mlp-relu \
            --hidden "$h,$h" --max-iter 5 --fit-rows 2048 --fit-seed 2 --model-out "$OUT/m_$r.h5" >/dev/null 2>&1
        echo "model x$r: hidden $h,$h, $(flops_ratio "$h")x the baseline's multiply-adds" >&2
    done
    run() { # run NAME MODEL
        local load t0 t1
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        t0=$(date +%s.%N)
        "$SG" bench --model "$2" --data "$OUT/d.h5" --scenario single-stream --repetitions "$REPS" \
            --duration "$DURATION" ${MIN_QUERIES:+--min-queries "$MIN_QUERIES"} --cpus "$CPUS" \
            --json >"$OUT/runs/$1.tmp"
        t1=$(date +%s.%N)
        # Kept: per-repetition summaries and the machine; dropped: the histograms (size).
        jq --arg load "$load" --argjson wall "$($PY -c "print($t1 - $t0)")" \
            'del(.histogram) | .repetitions |= map(del(.histogram)) | .recorded = {loadavg: $load, wall_s: $wall}' \
            "$OUT/runs/$1.tmp" >"$OUT/runs/$1.json"
        rm -f "$OUT/runs/$1.tmp"
        echo "$1: load $load, $(jq -r '[.repetitions[].latency_ns.p50] | map(tostring) | join(" ")' "$OUT/runs/$1.json") ns p50" >&2
    }
    set -- $RATIOS
    for i in $(seq 0 "$PAIRS"); do
        run "$(printf 'base_%02d' "$i")" "$OUT/m_1.h5"
        [ "$i" -lt "$PAIRS" ] || break
        k=$((i % 4 + 1))
        r=${!k}
        run "$(printf 'ab_%02d_x%s' "$i" "$r")" "$OUT/m_$r.h5"
    done
fi

COMPARE_OPTS=${COMPARE_OPTS:-} $PY - "$SG" "$OUT/runs" "$PAIRS" $RATIOS <<'PYEOF'
import glob, json, os, shlex, statistics, subprocess, sys
sg, runs, pairs, ratios = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
extra = shlex.split(os.environ.get("COMPARE_OPTS", ""))
unjudged = 0
def path(n): return os.path.join(runs, n + ".json")
def cmp(a, b):
    global unjudged
    r = subprocess.run([sg, "compare", path(a), path(b), "--json"] + extra, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare {a} {b}: exit {r.returncode}: {r.stderr.strip()}")
    rows = json.loads(r.stdout)["latency"]
    unjudged += any(row["reason"].startswith("not judged") for row in rows)
    return {row["percentile"]: row for row in rows}
P = ("p50", "p90", "p99")
flag = {p: 0 for p in P}
aa_ratio = {p: [] for p in P}
for i in range(pairs):
    c = cmp(f"base_{i:02d}", f"base_{i + 1:02d}")
    for p in P:
        flag[p] += c[p]["verdict"] != "unchanged"
        aa_ratio[p].append(c[p]["ratio"])
print(f"A/A: {pairs} pairs of identical runs (baseline MLP, each run vs the next)")
for p, lim in zip(P, (0, 0, 1)):
    dev = [abs(r - 1) for r in aa_ratio[p]]
    print(f"  {p:4s}: {flag[p]:2d}/{pairs} flagged improved/regressed (target <= {lim}); "
          f"|median ratio - 1|: median {100 * statistics.median(dev):.1f}%, max {100 * max(dev):.1f}%")
# Single-repetition A/A: repetition k of run i against repetition k of run i+1.
single = {p: [] for p in P}
for i in range(pairs):
    a, b = (json.load(open(path(f"base_{j:02d}"))) for j in (i, i + 1))
    for ra, rb in zip(a["repetitions"], b["repetitions"]):
        for p in P:
            single[p].append(abs(rb["latency_ns"][p] / ra["latency_ns"][p] - 1))
for p in P:
    s = sorted(single[p])
    print(f"  one repetition vs one ({len(s)} pairs) {p}: |ratio - 1| 95th pct {100 * s[int(0.95 * (len(s) - 1))]:.1f}%, "
          f"max {100 * s[-1]:.1f}%")
print("A/B: wider MLP vs the baseline run just before it")
mde = None
for r in ratios:
    names = sorted(os.path.basename(f)[:-5] for f in glob.glob(os.path.join(runs, f"ab_*_x{r}.json")))
    hit = {p: 0 for p in P}
    got = []
    for n in names:
        i = int(n.split("_")[1])
        c = cmp(f"base_{i:02d}", n)
        got.append(c["p50"]["ratio"])
        for p in P:
            hit[p] += c[p]["verdict"] == "regressed"
    print(f"  x{r:4s} FLOPs: p50 ratio {min(got):.2f}-{max(got):.2f}; detected (regressed) "
          + ", ".join(f"{p} {hit[p]}/{len(names)}" for p in P))
    if mde is None and names and hit["p50"] == len(names):
        mde = r
print(f"minimum detectable effect (smallest FLOPs ratio detected at p50 in every run): "
      f"{'x' + mde if mde else 'none of ' + ' '.join(ratios)}")
walls = [json.load(open(f))["recorded"]["wall_s"] for f in glob.glob(os.path.join(runs, "*.json"))]
loads = [float(json.load(open(f))["recorded"]["loadavg"].split()[0]) for f in glob.glob(os.path.join(runs, "*.json"))]
d = json.load(open(path("base_00")))
print(f"cost: {d['repetition_count']} repetitions x {d['repetitions'][0]['duration_s']:.1f} s timed; "
      f"wall per run (set-up, warm-ups included) median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")
if unjudged:
    print(f"not judged: {unjudged} comparisons had repetitions shorter than compare's minimum "
          f"(COMPARE_OPTS=--min-repetition-s 0 judges them)")
print(f"machine load (1-min average) while recording: min {min(loads):.2f}, median {statistics.median(loads):.2f}, "
      f"max {max(loads):.2f} on {os.cpu_count()} CPUs")
PYEOF
