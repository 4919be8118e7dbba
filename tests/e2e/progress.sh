#!/bin/bash
# Progress lines: shown on stderr when asked (a terminal, or STAGEGATE_PROGRESS=1),
# never on a pipe by default, and never mixed into --json stdout.
set -u
SG=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
/usr/bin/python3 "$SRC/scripts/make_dataset.py" --task binary --rows 3000 --features 8 --seed 3 \
    --out "$tmp/val.h5" --fit logreg --model-out "$tmp/m.h5" >/dev/null 2>&1 || { echo "FAIL make_dataset"; exit 1; }
isjson() { /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }

for cmd in "eval --model $tmp/m.h5 --data $tmp/val.h5 --json" \
           "bench --model $tmp/m.h5 --data $tmp/val.h5 --scenario single-stream --duration 1.2 --json"; do
    name=${cmd%% *}
    STAGEGATE_PROGRESS=1 $SG $cmd >"$tmp/out.json" 2>"$tmp/err" || { echo "FAIL $name exit"; fail=1; }
    if isjson "$tmp/out.json"; then echo "ok   $name --json stdout is one JSON document with progress on"
    else echo "FAIL $name stdout is not JSON"; fail=1; fi
    if grep -Eq "rows|queries" "$tmp/err"; then echo "ok   $name shows progress on stderr"
    else echo "FAIL $name shows no progress: $(cat "$tmp/err")"; fail=1; fi
    $SG $cmd >"$tmp/out.json" 2>"$tmp/err" </dev/null
    if [ ! -s "$tmp/err" ]; then echo "ok   $name is silent on a pipe"
    else echo "FAIL $name wrote to stderr on a pipe: $(cat "$tmp/err")"; fail=1; fi
done
# Server: the line counts against what was scheduled, with the share done and an ETA.
STAGEGATE_PROGRESS=1 $SG bench --model "$tmp/m.h5" --data "$tmp/val.h5" --scenario server --qps 2000 \
    --duration 2 --cpus 0 >/dev/null 2>"$tmp/err" || { echo "FAIL server bench exit"; fail=1; }
if tr '\r' '\n' <"$tmp/err" | grep -Eq "^  bench server: [0-9,]+ of 4,000 scheduled queries \([0-9]+%\), .*, ETA "; then
    echo "ok   server progress shows the scheduled count, % done and ETA"
else echo "FAIL server progress line: $(tr '\r' '\n' <"$tmp/err" | tail -3)"; fail=1; fi
! grep -q "needs >=" "$tmp/err" || { echo "FAIL the old 'needs >=' wording"; fail=1; }

# A closed-loop run's goal is its --min-queries (the line had shown early stopping's 662 as
# the goal, "45% done" at the end of a 300-query run).
STAGEGATE_PROGRESS=1 $SG bench --model "$tmp/m.h5" --data "$tmp/val.h5" --scenario single-stream \
    --duration 0 --min-queries 300 --cpus 0 >/dev/null 2>"$tmp/err" || { echo "FAIL 300-query run exit"; fail=1; }
if tr '\r' '\n' <"$tmp/err" | grep -q "300 queries (at least 300 and 0 ns), 100% done"; then
    echo "ok   a 300-query run's line ends at 300 of at least 300, 100% done"
else echo "FAIL 300-query progress line: $(tr '\r' '\n' <"$tmp/err" | tail -2)"; fail=1; fi

# Ctrl-C during a run: the line is ended and says "interrupted"; the exit is the signal's.
# (Job control on: without it a background job starts with SIGINT ignored.)
set -m
STAGEGATE_PROGRESS=1 $SG bench --model "$tmp/m.h5" --data "$tmp/val.h5" --scenario single-stream \
    --duration 30 --cpus 0 >/dev/null 2>"$tmp/err" &
pid=$!
set +m
# (a sanitizer build starts slowly: give it up to 60 s to show the progress line)
for _ in $(seq 600); do grep -q "queries" "$tmp/err" 2>/dev/null && break; sleep 0.1; done
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
if [ "$rc" = 130 ] && tail -1 "$tmp/err" | grep -qx "  interrupted"; then
    echo "ok   Ctrl-C ends the progress line with 'interrupted' (exit 130)"
else echo "FAIL interrupted run: exit $rc, stderr ends $(tail -c 200 "$tmp/err" | cat -v)"; fail=1; fi
exit $fail
