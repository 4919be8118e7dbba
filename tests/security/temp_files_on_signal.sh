#!/bin/bash
# Attack: after an interrupted run a hidden temp file was left next to the output, and its
# predictable name could be pre-created by another user to make the final write fail.
# Now: a signal that ends the run (SIGTERM, SIGINT, SIGQUIT, a closed pipe, the CPU limit of
# a CI job, SIGUSR1) removes the temp file; after SIGKILL the next run of
# the same output removes it (stale and unlocked); names are unpredictable; a
# pre-existing file at an old-style name does not stop the write; keygen publishes the pair
# together.
set -u
SG=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; n=0
ok() { n=$((n + 1)); echo "ok   $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "FAIL $1"; }
/usr/bin/python3 "$SRC/scripts/make_dataset.py" --task binary --rows 3000000 --features 16 --seed 1 \
    --out "$tmp/val.h5" --fit logreg --fit-rows 2000 --model-out "$tmp/m.h5" >/dev/null 2>&1 || { echo "FAIL make_dataset"; exit 1; }
mkdir "$tmp/out"
# (Not SIGPIPE: stagegate ignores it, so that a closed stdout pipe is a write error it
# reports, exit 2, rather than a silent death; tests/security/resource_limits.sh.)
for sig in TERM INT QUIT XCPU USR1; do
  for attempt in 1 2 3; do # a run that finished before it was stopped is run again
    # A shell's background job starts with SIGINT and SIGQUIT ignored (stagegate leaves them so),
    # and Python ignores SIGPIPE and SIGXFSZ; restore the defaults a terminal would give.
    STAGEGATE_PROGRESS=1 /usr/bin/python3 -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ): signal.signal(s, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$SG" eval --model "$tmp/m.h5" --data "$tmp/val.h5" --predictions "$tmp/out/p.h5" \
        --chunk-rows 4096 >/dev/null 2>"$tmp/err" &
    pid=$!
    # wait until the run is writing its temp file (up to 30 s on a loaded machine), then signal it
    for _ in $(seq 1 600); do ls -A "$tmp/out" | grep -q '\.tmp\.' && break; sleep 0.05; done
    seen=$(ls -A "$tmp/out" | grep -c '\.tmp\.' || true)
    [ "$seen" -gt 0 ] || { bad "SIG$sig: eval never showed its temp file ($(tr '\r' '\n' < "$tmp/err" | tail -2))"; kill $pid; wait $pid 2>/dev/null; rm -f "$tmp/out/"*; continue; }
    # Stopped first, so the run cannot finish between the look and the signal (a fast
    # machine evaluates the set in a fraction of a second); the signal lands on SIGCONT.
    kill -STOP $pid
    if [ -e "$tmp/out/p.h5" ] && [ $attempt -lt 3 ]; then
        kill -CONT $pid; wait $pid 2>/dev/null; rm -f "$tmp/out/"* "$tmp/out/".??*; continue
    fi
    kill -$sig $pid
    kill -CONT $pid
    wait $pid 2>/dev/null
    left=$(ls -A "$tmp/out")
    if [ -z "$left" ]; then ok "SIG$sig during eval --predictions leaves nothing (temp file seen before: $seen)"
    else bad "SIG$sig left: $left ($(tr '\r' '\n' < "$tmp/err" | tail -2))"; rm -f "$tmp/out/"* "$tmp/out/".??*; fi
    break
  done
done
# SIGKILL (an out-of-memory kill, a CI timeout's kill -9) runs no handler: the temp file
# stays. The next write of the same output removes it once it is a minute old and no live
# writer holds its lock; the run itself is unaffected.
"$SG" eval --model "$tmp/m.h5" --data "$tmp/val.h5" --predictions "$tmp/out/p.h5" --chunk-rows 4096 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do ls -A "$tmp/out" | grep -q '\.tmp\.' && break; sleep 0.05; done
kill -KILL $pid; wait $pid 2>/dev/null
orphan=$(ls -A "$tmp/out" | grep '^\.p\.h5\.tmp\.' || true)
if [ -n "$orphan" ]; then
    touch -d '2 minutes ago' "$tmp/out/$orphan"
    "$SG" eval --model "$tmp/m.h5" --data "$tmp/val.h5" --predictions "$tmp/out/p.h5" >/dev/null 2>&1 &&
        [ "$(ls -A "$tmp/out")" = "p.h5" ] &&
        ok "SIGKILL's leftover $orphan removed by the next eval of that output" ||
        bad "after SIGKILL and a rerun: $(ls -A "$tmp/out" | tr '\n' ' ')"
else
    bad "SIGKILL: no temp file seen to be left ($(ls -A "$tmp/out" | tr '\n' ' '))"
fi
rm -f "$tmp/out/"*
# names are random: two runs never use the same one, and an old-style name in the way
# (pid-based) does not matter.
"$SG" eval --model "$tmp/m.h5" --data "$tmp/val.h5" --predictions "$tmp/out/p.h5" --chunk-rows 100000 >/dev/null 2>&1 &
pid=$!
touch "$tmp/out/.p.h5.tmp.$pid.1" "$tmp/out/.p.h5.tmp.$pid.2"
wait $pid && [ -f "$tmp/out/p.h5" ] && ok "a pre-created predictable temp name does not stop the write" ||
    bad "pre-created temp name broke the write"
# keygen: the pair appears together, and no temp files are left.
"$SG" keygen --out "$tmp/out/kk" >/dev/null
[ -f "$tmp/out/kk.key.pem" ] && [ -f "$tmp/out/kk.pub.pem" ] && [ -z "$(ls -A "$tmp/out" | grep '^\.kk.*\.tmp\.')" ] &&
    ok "keygen wrote both halves and no temp file" || bad "keygen: $(ls -A "$tmp/out")"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
