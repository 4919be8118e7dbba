#!/usr/bin/env bash
# `stagegate bench` end to end: the JSON percentiles are recomputed exactly from
# --samples with /usr/bin/python3, for every scenario; bad input exits 2 with one
# line on stderr and leaves no samples file behind.
set -euo pipefail
BIN=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

$PY "$SRC/scripts/make_dataset.py" --out "$T/d.h5" --task binary --rows 3000 --features 64 --seed 3 \
    --fit mlp-relu --hidden 64 --max-iter 5 --fit-rows 500 --model-out "$T/m.h5" >/dev/null 2>&1

check() { # scenario, extra args...
    local sc=$1
    shift
    "$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario "$sc" --duration 0.2 --min-queries 700 \
        --samples "$T/$sc.csv" --json "$@" >"$T/$sc.json"
    $PY - "$T/$sc.csv" "$T/$sc.json" "$sc" <<'PYEOF'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["latency_ns", "worker", "cpu", "flags"], rows[0]
lat = sorted(int(r[0]) for r in rows[1:])
doc = json.load(open(sys.argv[2]))
n = len(lat)
assert doc["scenario"] == sys.argv[3]
assert doc["queries"] == n, (doc["queries"], n)
def rank(q_millionths):  # nearest rank, ceil(q n), in integers as the C code does
    r = (n * q_millionths + 10**6 - 1) // 10**6
    return lat[max(1, min(n, r)) - 1]
L = doc["latency_ns"]
want = {"p50": rank(500000), "p90": rank(900000), "p95": rank(950000), "p99": rank(990000),
        "p999": rank(999000), "min": lat[0], "max": lat[-1]}
for k, v in want.items():
    assert L[k] == v, (k, L[k], v)
assert abs(L["mean"] - sum(lat) / n) <= 1e-6 * max(1.0, L["mean"]), (L["mean"], sum(lat) / n)
assert doc["histogram"]["count"] == n
assert sum(c for _, c in doc["histogram"]["buckets"]) == n
for key in ("early_stopping", "qps", "throughput", "clock", "memory", "context_switches_in_window", "machine"):
    assert key in doc, key
for key in ("source", "tsc_hz", "overhead_ns", "migrations"):
    assert key in doc["clock"], key
for key in ("peak_rss_bytes", "model_bytes", "page_faults_in_window"):
    assert key in doc["memory"], key
M = doc["machine"]
for key in ("cpu_model", "cores", "logical_cpus", "smt", "numa_nodes", "governor", "boost", "clocksource",
            "invariant_tsc", "tsc_hz", "kernel", "workers", "membind", "bindings"):
    assert key in M, key
assert set(M["openblas"]) >= {"config", "threads", "core"} and M["openblas"]["threads"] == 1, M["openblas"]
# the kernel family is named in the build config OpenBLAS reports, and who chose it is recorded
assert M["openblas"]["core"] in M["openblas"]["config"], M["openblas"]
assert M["openblas"]["core_chosen_by"] in ("openblas", "OPENBLAS_CORETYPE", "stagegate"), M["openblas"]
assert ("core_replaced" in M["openblas"]) == (M["openblas"]["core_chosen_by"] == "stagegate"), M["openblas"]
assert set(M["stagegate"]) >= {"version", "build_flags"}, M["stagegate"]
assert M["workers"] == len(M["bindings"]) and (M["workers"] == 1) == (sys.argv[3] == "single-stream")
assert set(doc["latency_ns"]) == {"p50", "p90", "p95", "p99", "p999", "min", "max", "mean"}, doc["latency_ns"]
assert {"p90", "p99", "valid", "queries_needed"} <= set(doc["early_stopping"])
es = doc["early_stopping"]
assert es["valid"] is True and es["queries_needed"] == 0 and es["p90"] >= L["p90"] and es["p99"] >= L["p99"], es
# Each sample names its worker and the CPU that worker is bound to.
cpu_of = {b["worker"]: b["cpu"] for b in M["bindings"]}
assert all(int(r[2]) == cpu_of[int(r[1])] for r in rows[1:]), "a sample's cpu is not its worker's binding"
assert all(int(r[3]) in (0, 1) for r in rows[1:])
migrated = sum(1 for r in rows[1:] if int(r[3]) & 1)
assert migrated == doc["clock"]["migrations"], (migrated, doc["clock"]["migrations"])
print(sys.argv[3], "n =", n, "p50 =", L["p50"], "p99 =", L["p99"], "ok")
PYEOF
}
check single-stream
check server --qps 2000 --seed 7
check offline --batch 8
# Several repetitions: the samples of each, in order, and the merged figures are theirs (the
# summary reads them where they are, without merging them into one array).
check single-stream --repetitions 3
check offline --batch 8 --repetitions 2

# The machine record names the kernels the run computed with: the best this machine runs (as
# `clock` says) by default, and STAGEGATE_ISA's choice when set.
"$BIN" clock --json >"$T/clock.json"
STAGEGATE_ISA=scalar "$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream \
    --duration 0.1 --min-queries 200 --json >"$T/scalar.json"
$PY - "$T/clock.json" "$T/single-stream.json" "$T/scalar.json" <<'PYEOF'
import json, sys
best = json.load(open(sys.argv[1]))["kernels"]["in_use"]
got = json.load(open(sys.argv[2]))["machine"]["stagegate"]["kernels"]
forced = json.load(open(sys.argv[3]))["machine"]["stagegate"]["kernels"]
assert got == best, (got, best)
assert forced == "scalar", forced
print("machine.stagegate.kernels:", got, "by default,", forced, "with STAGEGATE_ISA=scalar: ok")
PYEOF


# --breakdown: one entry per stage of the batch-1 path (64 features -> 64 hidden -> 1 output with
# its link), timed inside the query bracket of the timed window only, so the stages of the
# mean query can add up to no more than its latency plus the subtracted bracket cost. (How much
# of the latency the stages cover is a timing figure: tests/latency/breakdown_share.sh.)
"$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --duration 0.2 --min-queries 700 \
    --breakdown --json >"$T/bd.json"
$PY - "$T/bd.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
b = d["breakdown_ns"]
assert list(b) == ["standardize", "layer1_64x64", "layer2_64x1_link"], b
assert all(v >= 0 for v in b.values()) and b["layer1_64x64"] > 0, b
total, mean = sum(b.values()), d["latency_ns"]["mean"]
assert total <= mean + d["clock"]["overhead_ns"] + 2, (total, mean)
PYEOF

# Human output: the table, the text histogram, the breakdown, and the warnings it can be made to
# give here (clock fallback, run too short for early stopping).
STAGEGATE_CLOCK=gettime "$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --duration 0 \
    --min-queries 100 --warmup 5 --breakdown >"$T/human.txt"
for want in "^single-stream: m.h5, 100 queries" "^  p50 " "^  p99.9 " "^  max " "^histogram:" " |#" \
    "^breakdown" "^  layer1_64x64 " "^warning: using clock_gettime, not the TSC: forced by STAGEGATE_CLOCK=gettime" \
    "^warning: run too short for early stopping at 99% confidence: 562 more queries needed"; do
    grep -q -- "$want" "$T/human.txt" || { echo "human output lacks '$want'"; cat "$T/human.txt"; exit 1; }
done

# Too short for early stopping: flagged invalid with the number of queries needed.
"$BIN" bench --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --duration 0 --min-queries 100 --warmup 5 --json >"$T/short.json"
$PY -c "import json,sys; e=json.load(open(sys.argv[1]))['early_stopping']; assert e['valid'] is False and e['queries_needed'] == 562 and e['p99'] is None, e" "$T/short.json"

fails() { # expect exit 2, one stderr line, no samples file
    set +e
    "$BIN" bench "$@" --samples "$T/bad.csv" >"$T/out" 2>"$T/err"
    local rc=$?
    set -e
    [ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc for: $*"; cat "$T/err"; exit 1; }
    [ "$(wc -l <"$T/err")" -eq 1 ] || { echo "expected one stderr line for: $*"; cat "$T/err"; exit 1; }
    [ ! -e "$T/bad.csv" ] || { echo "samples file left behind for: $*"; exit 1; }
}
fails --model "$T/m.h5" --data "$T/d.h5" --scenario bogus
fails --model "$T/m.h5" --data "$T/d.h5" --scenario server
fails --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --cpus 4096
fails --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --batch 4
fails --model "$T/m.h5" --data "$T/d.h5" --scenario offline --breakdown
fails --model "$T/m.h5" --data "$T/d.h5" --scenario offline --seed 3
fails --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --seed 3
fails --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --output logits
fails --model "$T/m.h5" --data "$T/d.h5" --scenario single-stream --cpus
fails --model "$T/missing.h5" --data "$T/d.h5" --scenario single-stream
fails --model "$T/d.h5" --data "$T/d.h5" --scenario single-stream
fails --data "$T/d.h5" --scenario single-stream
grep -q "missing.h5" <(set +e; "$BIN" bench --model "$T/missing.h5" --data "$T/d.h5" --scenario offline 2>&1)

# clock: JSON fields, and the forced fallback says so.
"$BIN" clock --json | $PY -c "import json,sys; d=json.load(sys.stdin); assert d['source'] in ('tsc','clock_gettime') and d['overhead']"
set +e
"$BIN" clock --cpus >"$T/out" 2>"$T/err"
rc=$?
set -e
[ "$rc" -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -- "--cpus" "$T/err" || { echo "clock --cpus without a value"; cat "$T/err"; exit 1; }
STAGEGATE_CLOCK=gettime "$BIN" clock --json | $PY -c "import json,sys; d=json.load(sys.stdin); assert d['source']=='clock_gettime' and 'STAGEGATE_CLOCK' in d['fallback_reason'], d"
echo "bench e2e ok"
