#!/usr/bin/env bash
# bench on a real model: --repetitions keeps each repetition's percentiles, query count,
# histogram (summing to its queries) and noise counts next to the merged figures, and the
# human output shows the spread; a single-stream run whose sample buffer fills is cut short
# and says so (JSON and text) instead of silently restarting; server runs end VALID or
# INVALID with the reason; the policy's latency repetitions reach the signed report; bad
# values exit 2. No timing is asserted: only what the run reports about itself.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
SG=$STAGEGATE_BIN
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
$PY "$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py" --out d.h5 --task binary --rows 800 --features 16 --seed 3 \
    --fit mlp-relu --hidden 32,32 --max-iter 5 --fit-rows 800 --fit-seed 3 --model-out m.h5 >/dev/null 2>&1
B() { "$SG" bench --model m.h5 --data d.h5 --cpus 0 "$@"; }

B --scenario single-stream --repetitions 3 --duration 0 --min-queries 2000 --json >r3.json
$PY - r3.json <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["repetition_count"] == 3 and len(d["repetitions"]) == 3, d.get("repetition_count")
total = 0
for i, r in enumerate(d["repetitions"]):
    assert r["index"] == i and r["queries"] >= 2000 and r["cut_short"] is False, r
    assert sum(c for _, c in r["histogram"]["buckets"]) == r["queries"]
    assert r["latency_ns"]["p50"] <= r["latency_ns"]["p99"] <= r["latency_ns"]["max"]
    n = r["noise"]
    for k in ("involuntary_context_switches", "voluntary_context_switches", "migrations", "page_faults"):
        assert isinstance(n[k], int) and n[k] >= 0, (k, n)
    assert n["noisy"] is (len(n["warnings"]) > 0), n
    total += r["queries"]
assert d["queries"] == total and sum(c for _, c in d["histogram"]["buckets"]) == total
p50 = sorted(r["latency_ns"]["p50"] for r in d["repetitions"])
assert d["spread"]["p50"] == {"min": p50[0], "median": p50[1], "max": p50[2]}, d["spread"]
assert d["noise_limits"]["involuntary_context_switches_per_s"] == 50
assert "validity" not in d  # single-stream has no server verdict
PYEOF
B --scenario single-stream --repetitions 3 --duration 0 --min-queries 2000 >r3.txt
U='[0-9.]+ (ns|µs|ms|s)'
grep -q "^3 repetitions, spread over them (min / median / max):" r3.txt &&
    grep -Eq "^  p50 +$U / +$U / +$U \(" r3.txt &&
    grep -Eq "^  p99 +$U / +$U / +$U \(" r3.txt || { cat r3.txt; fail "no spread in the human output"; }
# Human units with three significant digits everywhere, the machine and the model.
grep -Eq "^[a-z-]+: m.h5, [0-9,]+ queries in $U on 1 worker" r3.txt || { cat r3.txt; fail "header line"; }
grep -Eq "^machine: .*, [0-9]+ cores \([0-9]+ logical\), 1 worker on CPU 0, governor .*, boost " r3.txt ||
    { cat r3.txt; fail "no machine line"; }
grep -Eq "^model: dense: 16 features, layers 32x32x1, .*; [0-9,]+ parameters, [0-9.]+ KiB in memory; [0-9,]+ FLOPs/row, [0-9.e+-]+ GFLOP/s achieved$" r3.txt ||
    { cat r3.txt; fail "no model line"; }
grep -Eq "^  p99\.9 +$U$" r3.txt && ! grep -Eq "[0-9]\.[0-9]{4,} us|p999| MB| KB" r3.txt ||
    { cat r3.txt; fail "latency or memory units"; }
grep -Eq "^memory: peak RSS [0-9.]+ MiB, model [0-9.]+ KiB$" r3.txt || { cat r3.txt; fail "memory line"; }
# The JSON says when, on which files (sha256) and with which warm-up and seed.
jq -e --arg m "$(sha256sum m.h5 | cut -d' ' -f1)" --arg d "$(sha256sum d.h5 | cut -d' ' -f1)" \
    '(.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")) and .model.sha256 == $m and
     .dataset.sha256 == $d and .warmup == 88 and .seed == 1 and .model.parameters > 0 and
     .model.flops_per_row > 0 and .model.achieved_gflops > 0' r3.json >/dev/null ||
    { jq '{timestamp, model, dataset, warmup, seed}' r3.json; fail "run identity in the JSON"; }

# The sample buffer capped at 3000 samples for a 2 s run: cut short at 3000, said so.
STAGEGATE_BENCH_MAX_SAMPLES=3000 B --scenario single-stream --duration 2 --min-queries 100 --json >cut.json
jq -e '.cut_short and .queries == 3000 and (.cut_short_reason | startswith("sample buffer full after 3000 queries")) and
       .repetitions[0].cut_short' cut.json >/dev/null || { jq 'del(.histogram, .repetitions[].histogram)' cut.json; fail "cut short not reported"; }
STAGEGATE_BENCH_MAX_SAMPLES=3000 B --scenario single-stream --duration 2 --min-queries 100 >cut.txt
grep -q "^warning: timed run cut short: sample buffer full after 3000 queries" cut.txt || { cat cut.txt; fail "cut short not in the text"; }
# With repetitions, the reason counts every repetition cut short and names the first (it had
# named the first as if it were the only one).
STAGEGATE_BENCH_MAX_SAMPLES=3000 B --scenario single-stream --duration 2 --min-queries 100 --repetitions 2 --json >cut2.json
jq -e '.cut_short_reason | startswith("2 of 2 repetitions; the first, repetition 1: sample buffer full after 3000 queries")' cut2.json >/dev/null ||
    { jq .cut_short_reason cut2.json; fail "cut short with repetitions"; }

# A --min-queries over the cap is refused by every scenario, as over the 50 M default (the
# server scenario had ignored the variable and recorded them all; single-stream had run, cut
# short at the cap).
for sc in "single-stream" "server --qps 2000"; do
    rc=0; STAGEGATE_BENCH_MAX_SAMPLES=100 B --scenario $sc --duration 0 --min-queries 200 >out 2>err || rc=$?
    [ "$rc" = 2 ] && grep -q "200.* more than the 100 " err && [ "$(wc -l < err)" = 1 ] ||
        fail "$sc over STAGEGATE_BENCH_MAX_SAMPLES: exit $rc $(cat err)"
done
# Offline keeps at most as many calls as the cap too: the run ends when its log is full and
# says so (the log had grown for the whole run: 6.6 GB in 30 s of a small model at batch 1).
# --batch larger than the set: a call takes at most the set's 800 rows, and the buffers are
# sized for that (scratch for 1,048,576 rows a worker had taken 2.2 GB for a small model).
B --scenario offline --batch 1048576 --duration 0.1 --json >obig.json || fail "offline --batch 1048576"
rss=$(jq '.memory.peak_rss_bytes' obig.json)
[ "$rss" -lt $((64 << 20)) ] || fail "offline --batch 1048576 on 800 rows peaked at $rss bytes"
STAGEGATE_BENCH_MAX_SAMPLES=2000 B --scenario offline --batch 1 --duration 2 --json >ocut.json
jq -e '.cut_short and .queries == 1600 and (.cut_short_reason | contains("sample buffer full after 1600 calls"))' \
    ocut.json >/dev/null || { jq 'del(.histogram, .repetitions[].histogram)' ocut.json; fail "offline cap"; }
# ... and a cap the variable cannot mean is refused, not read as another number.
for bad in abc 0 "100 junk" 1e3 -5; do
    rc=0; STAGEGATE_BENCH_MAX_SAMPLES="$bad" B --scenario single-stream --duration 0.1 >/dev/null 2>err || rc=$?
    [ "$rc" = 2 ] && grep -q "^stagegate: STAGEGATE_BENCH_MAX_SAMPLES: '$bad' is not a whole number" err ||
        { cat err; fail "STAGEGATE_BENCH_MAX_SAMPLES=$bad: exit $rc"; }
done

# Single-stream's one worker does the whole warm-up, however many CPUs the pool has: on a
# 128-CPU topology it had run 64 / 128 + 1 = 1 query, sized its buffer from that cold query,
# and every run was cut short at under half its window.
for i in 1 2; do
    STAGEGATE_HWLOC_SYNTHETIC="pack:2 core:64 pu:1" "$SG" bench --model m.h5 --data d.h5 \
        --scenario single-stream --duration 0.5 --json >wide.json
    jq -e '.cut_short == false and .warmup == 88' wide.json >/dev/null ||
        { jq '{queries, cut_short, cut_short_reason, warmup}' wide.json; fail "single-stream on 128 CPUs cut short"; }
done

# Server: impossible arrival rate -> INVALID, QPS not reached; too few queries; a 1 ns bound.
B --scenario server --qps 20000000 --duration 0.05 --json >fast.json
jq -e '.validity.result == "INVALID" and (.validity.reason | contains("QPS not reached")) and
       .validity.target_qps == 20000000 and .validity.achieved_qps < .validity.scheduled_qps' fast.json >/dev/null ||
    { jq '.validity' fast.json; fail "overloaded server run not INVALID"; }
B --scenario server --qps 1000 --duration 0 --min-queries 100 --json >few.json
jq -e '.validity.result == "INVALID" and (.validity.reason | startswith("too few queries (100;"))' few.json >/dev/null ||
    { jq '.validity' few.json; fail "short server run not INVALID"; }
B --scenario server --qps 2000 --duration 0.5 --latency-bound-ms 0.000001 >bound.txt
grep -Eq "^server: INVALID \(.*latency bound exceeded \(p99 [0-9.]+ (ns|µs|ms) > bound 1.00 ns\)" bound.txt || { cat bound.txt; fail "bound"; }
# A bound in ms is the same number of ns (0.00397 * 1e6 is 3969.9999999999995 in binary, so
# a p99 of exactly 3,970 ns had been over its bound).
B --scenario server --qps 1000 --duration 0 --min-queries 100 --latency-bound-ms 0.00397 --json >b397.json
jq -e '.validity.latency_bound_ns == 3970' b397.json >/dev/null || { jq '.validity' b397.json; fail "bound 0.00397 ms"; }
# Decimal numbers only: C's hex floats (0x0.1p0 read as 0.0625 s) are refused as integers are.
for bad in "--duration 0x0.1p0" "--qps 0x10"; do
    rc=0; B --scenario server $bad >out 2>err || rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q "is not a number in" err || { cat err; fail "$bad: exit $rc"; }
done
# A refusal caused by STAGEGATE_BENCH_MAX_SAMPLES names it (it had named only --min-queries).
rc=0; STAGEGATE_BENCH_MAX_SAMPLES=500 B --scenario single-stream --duration 0 --min-queries 1000 >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "is more than the 500 queries a run records (the cap STAGEGATE_BENCH_MAX_SAMPLES sets" err ||
    { cat err; fail "the sample cap's refusal does not name STAGEGATE_BENCH_MAX_SAMPLES: exit $rc"; }
# STAGEGATE_BENCH_MAX_SAMPLES is digits only (" 50" and "+50" had been read as 50).
for bad in " 50" "+50" "50 "; do
    rc=0; STAGEGATE_BENCH_MAX_SAMPLES="$bad" B --scenario single-stream --duration 0 --min-queries 20 >out 2>err || rc=$?
    [ "$rc" = 2 ] && grep -q "STAGEGATE_BENCH_MAX_SAMPLES: '$bad' is not a whole number" err ||
        { cat err; fail "STAGEGATE_BENCH_MAX_SAMPLES='$bad': exit $rc"; }
done

# Bad values: exit 2 with one line.
for bad in "--repetitions 0" "--repetitions x" "--repetitions 1001"; do
    rc=0; B --scenario single-stream $bad >out 2>err || rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q -- "--repetitions" err || { cat err; fail "$bad: exit $rc"; }
done
rc=0; B --scenario single-stream --latency-bound-ms 5 >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "server scenario only" err || { cat err; fail "--latency-bound-ms outside server"; }

# What eval refuses, bench refuses, before any timing: a label outside the model's classes, a
# NaN sample weight, and a model whose outputs are not finite (a subnormal scale).
$PY - <<'PYEOF'
import shutil, h5py, numpy as np
for name, edit in (("label7.h5", lambda f: f["y"].__setitem__(799, 7)),
                   ("wnan.h5", lambda f: f.create_dataset("sample_weight",
                                                          data=np.r_[np.ones(799), np.nan])),
                   ("d_copy.h5", None)):
    shutil.copy("d.h5", name)
    if edit:
        with h5py.File(name, "r+") as f:
            edit(f)
shutil.copy("m.h5", "m_inf.h5")
with h5py.File("m_inf.h5", "r+") as f:
    s = f["scaler/scale"][()]
    s[0] = 1e-45
    f["scaler/scale"][...] = s
PYEOF
for sc in offline single-stream; do
    for c in "--model m.h5 --data label7.h5:/y row 799 has label 7" \
        "--model m.h5 --data wnan.h5:/sample_weight row 799 is NaN" \
        "--model m_inf.h5 --data d_copy.h5:is not finite"; do
        rc=0; "$SG" bench ${c%%:*} --scenario $sc --duration 0.05 --cpus 0 >out 2>err || rc=$?
        [ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q -- "${c#*:}" err || { cat err; fail "$sc ${c%%:*}: exit $rc"; }
    done
done

# The policy's repetitions reach the signed report; a bad value is refused.
"$SG" keygen --out k >/dev/null
echo '{"latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 700, "repetitions": 2}}' >p.json
"$SG" gate --model m.h5 --data d.h5 --policy p.json --key k.key.pem --out rep.json --cpus 0 >/dev/null
$PY - rep.json <<'PYEOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
pred = json.loads(base64.b64decode(env["payload"]))["predicate"]
lat = pred["latency"]
assert lat["repetition_count"] == 2 and len(lat["repetitions"]) == 2, lat["repetition_count"]
assert all(r["queries"] >= 700 and "noise" in r for r in lat["repetitions"])
assert pred["policy"]["latency"]["repetitions"] == 2, pred["policy"]["latency"]
PYEOF
echo '{"latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "repetitions": 0}}' >bad.json
rc=0; "$SG" gate --model m.h5 --data d.h5 --policy bad.json --key k.key.pem --out x.json >out 2>err || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q "latency.repetitions must be an integer in \[1, 1000\]" err ||
    { cat err; fail "policy repetitions 0: exit $rc"; }
[ ! -e x.json ] || fail "report written for a bad policy"
# clock on a machine of more than 1,024 CPUs (synthetic): every CPU measured (a fixed array
# of 1,024 had been written past, and the command crashed from 1,032 on).
STAGEGATE_HWLOC_SYNTHETIC="core:1100 pu:1" "$SG" clock --json >clk.json || fail "clock on 1,100 CPUs"
[ "$(jq '.overhead | length' clk.json)" = 1100 ] || fail "clock measured $(jq '.overhead | length' clk.json) of 1,100 CPUs"
# hwloc's own HWLOC_SYNTHETIC describes another machine: bench plans only (the record had
# claimed 2 NUMA nodes and a worker bound to CPU 3 of a 2-CPU machine), and gate refuses.
HWLOC_SYNTHETIC="numa:2 core:2 pu:1" "$SG" bench --model m.h5 --data d.h5 --scenario single-stream \
    --duration 0 --min-queries 100 --cpus 3 --json >hs.json 2>/dev/null || fail "bench under HWLOC_SYNTHETIC"
[ "$(jq -r .machine.membind hs.json)" = planned-only ] || fail "HWLOC_SYNTHETIC: membind $(jq -r .machine.membind hs.json)"
# ...and its machine record is this machine's (it had described the synthetic one: 4 NUMA
# nodes, 16 cores, 32 logical CPUs on a 2-CPU machine), the text says the CPUs are planned.
"$SG" bench --model m.h5 --data d.h5 --scenario single-stream --duration 0 --min-queries 100 \
    --json >real.json 2>/dev/null || fail "bench"
HWLOC_SYNTHETIC="pack:2 numa:2 core:4 pu:2" "$SG" bench --model m.h5 --data d.h5 --scenario single-stream \
    --duration 0 --min-queries 100 --json >hs2.json 2>/dev/null || fail "bench under HWLOC_SYNTHETIC"
for f in cores logical_cpus smt numa_nodes; do
    [ "$(jq -c .machine.$f hs2.json)" = "$(jq -c .machine.$f real.json)" ] ||
        fail "HWLOC_SYNTHETIC: machine.$f $(jq -c .machine.$f hs2.json), this machine $(jq -c .machine.$f real.json)"
done
HWLOC_SYNTHETIC="pack:2 numa:2 core:4 pu:2" "$SG" bench --model m.h5 --data d.h5 --scenario single-stream \
    --duration 0 --min-queries 100 --cpus 3 2>/dev/null | grep "1 worker planned (not pinned) for CPU 3," >/dev/null ||
    fail "bench's machine line under HWLOC_SYNTHETIC does not say the CPUs are planned"
# hwloc's own error lines stay off stderr (HWLOC_FSROOT without a sysfs had added "[hwloc/linux]
# failed to find sysfs cpu topology directory" beside stagegate's own line).
rc=0; HWLOC_FSROOT=/tmp "$SG" clock >out 2>err || rc=$?
if grep -q "hwloc" err; then cat err; fail "hwloc's own error line reached stderr (exit $rc)"; fi
# Inside a cpuset cgroup the record still counts the whole machine, and says how many CPUs
# the run was allowed (a 2-core machine limited to CPU 0 had been recorded as 1 core). Needs
# root, a cgroup v1 cpuset hierarchy and two CPUs; says so when it cannot run.
CG=/sys/fs/cgroup/cpuset/stagegate-test.$$
if [ "$(id -u)" = 0 ] && [ -w /sys/fs/cgroup/cpuset ] && [ "$(nproc --all)" -ge 2 ] && mkdir "$CG" 2>/dev/null; then
    trap 'rmdir "$CG" 2>/dev/null || true; rm -rf "$T"' EXIT
    echo 0 >"$CG/cpuset.cpus" && cat /sys/fs/cgroup/cpuset/cpuset.mems >"$CG/cpuset.mems" || fail "cpuset setup"
    sh -c 'echo $$ >"$1/tasks" && exec "$2" bench --model m.h5 --data d.h5 --scenario single-stream \
        --duration 0 --min-queries 100 --json' sh "$CG" "$SG" >cg.json 2>cg.err || fail "bench in a cpuset: $(cat cg.err)"
    [ "$(jq -c '.machine | [.cores, .logical_cpus, .smt, .numa_nodes]' cg.json)" = \
        "$(jq -c '.machine | [.cores, .logical_cpus, .smt, .numa_nodes]' real.json)" ] ||
        fail "cpuset: machine record $(jq -c .machine cg.json), this machine $(jq -c .machine real.json)"
    [ "$(jq .machine.allowed_cpus cg.json)" = 1 ] && [ "$(jq .machine.bindings[0].cpu cg.json)" = 0 ] ||
        fail "cpuset: allowed_cpus $(jq .machine.allowed_cpus cg.json), bindings $(jq -c .machine.bindings cg.json)"
    [ "$(jq .machine.allowed_cpus real.json)" = "$(jq .machine.logical_cpus real.json)" ] ||
        fail "allowed_cpus outside a cpuset: $(jq -c .machine real.json)"
    sh -c 'echo $$ >"$1/tasks" && exec "$2" bench --model m.h5 --data d.h5 --scenario single-stream \
        --duration 0 --min-queries 100' sh "$CG" "$SG" 2>/dev/null >cg.txt || fail "bench text in a cpuset"
    grep -E "^machine: .*, [0-9]+ cores \([0-9]+ logical, 1 allowed\), 1 worker on CPU 0," cg.txt >/dev/null ||
        fail "cpuset: machine line $(grep ^machine: cg.txt)"
    echo '{"latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 100, "min_queries": 200}}' >cgp.json
    sh -c 'echo $$ >"$1/tasks" && exec "$2" gate --model m.h5 --data d.h5 --policy cgp.json --key k.key.pem \
        --out cg.intoto.json --html cg.html' sh "$CG" "$SG" >/dev/null 2>cg.err || fail "gate in a cpuset: $(cat cg.err)"
    grep -F "of $(jq .machine.cores real.json) cores, $(jq .machine.logical_cpus real.json) logical CPUs (1 allowed to the run);" \
        cg.html >/dev/null ||
        fail "cpuset: the report page's machine row: $(grep -o '[^>]*logical CPUs[^<]*' cg.html)"
    rmdir "$CG"
else
    echo "note: cpuset cgroup case not run (needs root, /sys/fs/cgroup/cpuset and 2 CPUs)" >&2
fi
# clock says its CPUs were planned, not pinned
STAGEGATE_HWLOC_SYNTHETIC="numa:2 core:2 pu:1" "$SG" clock >clk.txt || fail "clock (synthetic)"
grep -q "^workers: *planned only: a synthetic hwloc topology (4 CPUs)" clk.txt || fail "clock: $(cat clk.txt)"
[ "$(STAGEGATE_HWLOC_SYNTHETIC="numa:2 core:2 pu:1" "$SG" clock --json | jq .pinned)" = false ] &&
    [ "$("$SG" clock --json | jq .pinned)" = true ] || fail "clock --json pinned"
# clock times the first touch of fresh memory in both kinds of page: the kernel's THP
# setting as sysfs has it, what it granted (none where THP is never), and advice that follows
# the figures it prints.
"$SG" clock --json >ft.json || fail "clock --json"
thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
[ "$(jq -r .first_touch.transparent_hugepage ft.json)" = "${thp:-unknown}" ] ||
    fail "clock: THP $(jq -r .first_touch.transparent_hugepage ft.json), sysfs says ${thp:-nothing}"
jq -e '.first_touch | .bytes == 67108864 and .rounds == 5 and .small_pages_ms > 0 and
       .huge_pages_ms > 0 and .huge_pages_granted_bytes >= 0 and
       .huge_pages_granted_bytes <= .bytes and
       .small_pages_range_ms[0] <= .small_pages_ms and .small_pages_ms <= .small_pages_range_ms[1] and
       .huge_pages_range_ms[0] <= .huge_pages_ms and .huge_pages_ms <= .huge_pages_range_ms[1]' ft.json >/dev/null ||
    fail "clock first_touch: $(jq -c .first_touch ft.json)"
if [ "$thp" = never ]; then
    jq -e '.first_touch | .huge_pages_granted_bytes == 0 and .advice == "huge pages not granted here"' ft.json >/dev/null ||
        fail "clock: huge pages granted although THP is never: $(jq -c .first_touch ft.json)"
fi
jq -e '.first_touch | .small_pages_range_ms as $s | .huge_pages_range_ms as $h |
       .advice == (if .huge_pages_granted_bytes * 2 < .bytes then "huge pages not granted here"
       elif $h[1] < 0.9 * $s[0] then "STAGEGATE_HUGE_PAGES=1 may help here"
       elif $h[0] > 1.1 * $s[1] then "keep STAGEGATE_HUGE_PAGES unset here"
       elif $h[1] <= 1.1 * $s[0] and $h[0] >= 0.9 * $s[1] then "no difference here"
       else "it varies from round to round here: time eval both ways (scripts/bench_eval.sh)" end)' ft.json >/dev/null ||
    fail "clock advice: $(jq -c .first_touch ft.json)"
"$SG" clock >clk2.txt || fail "clock"
grep -q '^first touch: *64 MiB in 4 KiB pages [0-9.]* ms ([0-9.]*-[0-9.]*), in huge pages [0-9.]* ms' clk2.txt ||
    fail "clock: no first-touch line: $(cat clk2.txt)"
"$SG" keygen --out gk >/dev/null
echo '{"metrics": {"accuracy": {"threshold": 0.1}}}' >p.json
rc=0; HWLOC_SYNTHETIC="numa:2 core:2 pu:1" "$SG" gate --model m.h5 --data d.h5 --policy p.json --key gk.key.pem \
    --out g.json >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "HWLOC_SYNTHETIC describes a topology that is not this machine's" err && [ ! -e g.json ] ||
    fail "gate under HWLOC_SYNTHETIC: exit $rc $(cat err)"
# single-stream sizes its sample buffer from at least 16 warm-up queries (one cold query had
# sized it for a third of the run), and says how many ran: those, the re-warm before the
# window (up to 16 again) and the 8 untimed queries at the start of the window's job.
B --scenario single-stream --duration 0 --min-queries 100 --warmup 0 --json >w0.json
[ "$(jq .warmup w0.json)" = 40 ] || fail "--warmup 0: $(jq .warmup w0.json) warm-up queries"
B --scenario single-stream --duration 0 --min-queries 100 --warmup 100 --json >w100.json
[ "$(jq .warmup w100.json)" = 124 ] || fail "--warmup 100: $(jq .warmup w100.json)"
# SOURCE_DATE_EPOCH stamps the --json document as it stamps a gate report: a malformed value
# is refused (it had been ignored, the clock's time used), a valid one says where it came from.
rc=0; SOURCE_DATE_EPOCH=abc B --scenario offline --duration 0 --min-queries 100 --json >sde.json 2>sde.err || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <sde.err)" = 1 ] && grep -q "SOURCE_DATE_EPOCH 'abc'" sde.err ||
    fail "SOURCE_DATE_EPOCH=abc: exit $rc $(cat sde.err)"
SOURCE_DATE_EPOCH=1700000000 B --scenario offline --duration 0 --min-queries 100 --json >sde.json ||
    fail "SOURCE_DATE_EPOCH=1700000000"
[ "$(jq -r '.timestamp + " " + .timestamp_source' sde.json)" = "2023-11-14T22:13:20Z SOURCE_DATE_EPOCH" ] ||
    fail "SOURCE_DATE_EPOCH: $(jq -c '[.timestamp, .timestamp_source]' sde.json)"
# Without --cpus, the CPUs the process was started on (taskset), not every CPU.
last=$(( $(nproc --all) - 1 ))
taskset -c "$last" "$SG" bench --model m.h5 --data d.h5 --scenario offline --duration 0 --min-queries 100 \
    --json >ts.json || fail "bench under taskset"
[ "$(jq -c '[.machine.bindings[].cpu]' ts.json)" = "[$last]" ] ||
    fail "under taskset -c $last the workers were on $(jq -c '[.machine.bindings[].cpu]' ts.json)"
# A server run schedules ceil(qps x duration) queries as the figures mean them: 100 q/s for
# 0.07 s is 7 (the binary product 7.000000000000001 had made 8).
B --scenario server --qps 100 --duration 0.07 --min-queries 1 --json >q7.json || fail "server 100 q/s 0.07 s"
[ "$(jq .queries q7.json)" = 7 ] || fail "server 100 q/s for 0.07 s ran $(jq .queries q7.json) queries"
# A pinned worker moved for good between queries (taskset -p from outside, halfway through):
# every query it ran on the other CPU is flagged, not only one that straddled the move (a
# run half on another CPU had read "migrations 0"). Needs a second CPU to move to.
if [ "$(nproc)" -ge 2 ]; then
    "$SG" bench --model m.h5 --data d.h5 --cpus 1 --scenario single-stream --duration 2 \
        --json --samples mig.csv >mig.json &
    bp=$!
    # Once the worker is pinned (a cold first start can take over a second), wait 0.5 s
    # more and move it: a fixed "sleep 1" had found no pinned thread yet on a slow start.
    moved=0
    for _ in $(seq 200); do
        sleep 0.1
        for t in /proc/$bp/task/*; do
            [ "$(awk '/Cpus_allowed_list/ {print $2}' "$t/status" 2>/dev/null)" = 1 ] || continue
            [ "$moved" = 0 ] && sleep 0.5
            taskset -p -c 0 "$(basename "$t")" >/dev/null && moved=1
        done
        [ "$moved" = 1 ] && break
    done
    wait $bp || fail "bench with a worker moved"
    [ "$moved" = 1 ] || fail "no worker thread pinned to CPU 1 to move"
    flagged=$(awk -F, 'NR > 1 && $4 % 2 == 1' mig.csv | wc -l)
    n=$(jq .queries mig.json)
    [ "$(jq .clock.migrations mig.json)" = "$flagged" ] || fail "migrations $(jq .clock.migrations mig.json), flagged samples $flagged"
    # the move came about halfway: far more than one query ran after it
    [ "$flagged" -gt $((n / 10)) ] || fail "a worker moved for the second half flagged $flagged of $n queries"
fi
# A server schedule larger than a run records is refused before it is built (--qps 1e9 for
# 0.2 s had built 2e8 arrivals, 9.4 GB, and run for minutes).
rc=0; timeout 60 "$SG" bench --model m.h5 --data d.h5 --cpus 0 --scenario server --qps 1e9 --duration 0.2 >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "schedules 200000000 queries, more than the 50000000 a run records" err ||
    fail "--qps 1e9: exit $rc $(cat err)"
# ... and one the 600 s safety stop would cut (--qps 0.01: 1,024 arrivals over 28 hours,
# every worker spinning until the stop).
rc=0; timeout 60 "$SG" bench --model m.h5 --data d.h5 --cpus 0 --scenario server --qps 0.01 --duration 0.2 >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "schedules 1024 queries over about 1.02e+05 s, more than the 600 s a run may take" err ||
    fail "--qps 0.01: exit $rc $(cat err)"
# So is a single-stream --min-queries over what a run records: the buffer had been that on
# top of the 50 M cap (1e9 zero-filled 24 GB and was killed by the OOM killer). Under a
# 4 GB address-space limit (not under a sanitizer, whose shadow memory is over any) a
# regression fails for want of memory instead of taking the machine's.
rc=0; ( [ "${STAGEGATE_SANITIZED:-0}" = 1 ] || ulimit -v 4000000; timeout 60 "$SG" bench --model m.h5 --data d.h5 --cpus 0 --scenario single-stream \
    --duration 0 --min-queries 1000000000 >out 2>err ) || rc=$?
[ "$rc" = 2 ] && grep -q "min-queries 1000000000 is more than the 50000000 queries a run records" err ||
    fail "--min-queries 1e9: exit $rc $(cat err)"
# A pool planned on more workers than the machine has CPUs (a synthetic topology) under an
# address-space limit: OpenBLAS's sgemm buffers for every worker are made with the pool, so a
# limit without room for them is exit 2 and one line. Workers past the CPUs online had mapped
# theirs at the first sgemm, and between about 650 and 750 MB one spun in OpenBLAS's endless
# retry (found by attacking the tool). Not under a sanitizer (its shadow memory is over any limit).
if [ "${STAGEGATE_SANITIZED:-0}" != 1 ]; then
    for kb in $(seq 500000 50000 1300000); do
        rc=0; ( ulimit -v "$kb"; STAGEGATE_HWLOC_SYNTHETIC="numa:1 core:4 pu:1" timeout 20 "$SG" bench \
            --model m.h5 --data d.h5 --scenario offline --duration 0.1 --min-queries 1 --warmup 1 \
            >out 2>err ) || rc=$?
        [ "$rc" = 0 ] || { [ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ]; } ||
            fail "4 planned workers under ulimit -v $kb: exit $rc $(cat err)"
    done
fi
# A misspelt STAGEGATE_CLOCK is an input error, as STAGEGATE_ISA's (it had kept the TSC).
rc=0; STAGEGATE_CLOCK=GETTIME "$SG" clock >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "STAGEGATE_CLOCK=GETTIME is not 'gettime'" err || fail "STAGEGATE_CLOCK=GETTIME: exit $rc $(cat err)"
# STAGEGATE_HUGE_PAGES takes 0 or 1; either gives the same predictions and metrics, and
# the same predictions file: it holds no timestamp (libhdf5 had stamped each dataset's
# header with the second it was made), hence the pause between the two runs.
rc=0; STAGEGATE_HUGE_PAGES=yes "$SG" eval --model m.h5 --data d.h5 >out 2>err || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q "STAGEGATE_HUGE_PAGES=yes is not 0 or 1" err ||
    fail "STAGEGATE_HUGE_PAGES=yes: exit $rc $(cat err)"
STAGEGATE_HUGE_PAGES=1 "$SG" eval --model m.h5 --data d.h5 --json --predictions huge.h5 >huge.json ||
    fail "eval under STAGEGATE_HUGE_PAGES=1"
sleep 1.1
STAGEGATE_HUGE_PAGES=0 "$SG" eval --model m.h5 --data d.h5 --json --predictions small.h5 >small.json ||
    fail "eval under STAGEGATE_HUGE_PAGES=0"
cmp -s huge.h5 small.h5 && [ "$(jq -cS .metrics huge.json)" = "$(jq -cS .metrics small.json)" ] ||
    fail "STAGEGATE_HUGE_PAGES=1 and 0 predicted differently: $(cmp huge.h5 small.h5 2>&1) $(jq -cS .metrics huge.json) $(jq -cS .metrics small.json)"
# A malformed HWLOC_XMLFILE: the line names the variable and the file (it said only "hwloc:
# topology load failed: Invalid argument").
echo '<bad' >bad.xml
rc=0; HWLOC_XMLFILE=bad.xml "$SG" clock >out 2>err || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q "topology load failed with HWLOC_XMLFILE=bad.xml" err ||
    fail "HWLOC_XMLFILE=bad.xml: exit $rc $(cat err)"
# Without calibrations the spread is null, not 0
[ "$(STAGEGATE_CLOCK=gettime "$SG" clock --json | jq -c '[.calibrations, .calibration_spread]')" = "[0,null]" ] ||
    fail "clock --json under STAGEGATE_CLOCK=gettime: calibration_spread"
# The JSON's warmup is what ran: shared among 2 workers, at least one each (it had said
# --warmup's value: 0 while each worker ran one, 3 while they ran 2 each), and each worker's
# re-warm before the window, up to 16 of its share again (it had been left out).
for w in 0:4 3:8 64:96; do
    "$SG" bench --model m.h5 --data d.h5 --scenario offline --duration 0 --min-queries 100 --cpus 0,1 \
        --warmup "${w%%:*}" --json >wu.json 2>/dev/null || fail "bench --warmup ${w%%:*}"
    [ "$(jq .machine.workers wu.json)" = 2 ] && [ "$(jq .warmup wu.json)" = "${w##*:}" ] ||
        fail "--warmup ${w%%:*} on 2 workers: JSON says $(jq .warmup wu.json), wanted ${w##*:}"
done
# A duration past the 600 s safety stop is refused before any run, in every scenario (single-
# stream and offline had started a run the stop could only cut short), and in a policy.
for sc in single-stream offline; do
    rc=0; "$SG" bench --model m.h5 --data d.h5 --scenario "$sc" --duration 700 >out 2>err || rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] && grep -q "duration: '700' is not a number in \[0, 600\]" err ||
        fail "--duration 700 ($sc): exit $rc $(cat err)"
done
echo '{"latency": {"scenario": "single-stream", "max_ms": 1, "duration_s": 700}}' >p700.json
rc=0; "$SG" gate --model m.h5 --data d.h5 --policy p700.json --key gk.key.pem --out g700.json >out 2>err || rc=$?
[ "$rc" = 2 ] && grep -q "latency.duration_s must be in \[0, 600\], got 700" err && [ ! -e g700.json ] ||
    fail "duration_s 700 in a policy: exit $rc $(cat err)"
echo "bench cli ok"
