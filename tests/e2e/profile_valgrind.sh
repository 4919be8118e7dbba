#!/bin/bash
# Profiling eval and bench with valgrind: the HDF5 check's child runs under valgrind as well,
# where callgrind's own exit status (1: the child's seccomp filter refuses its output file) is
# not the parse's verdict. The run must succeed, give the same metrics as without valgrind,
# and leave a callgrind profile of the parent that names eval's own functions. bench's clock
# leaves the TSC under valgrind (which cannot execute rdtscp) and says why.
set -u
SG=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
fail=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
/usr/bin/python3 "$SRC/scripts/make_dataset.py" --task binary --features 8 --rows 300 --seed 3 \
    --fit logreg --model-out m.h5 --out v.h5 >/dev/null || { echo "FAIL making the data"; exit 1; }
metrics() { /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["metrics"], sort_keys=True))' "$1"; }

"$SG" eval --model m.h5 --data v.h5 --json >plain.json || { echo "FAIL eval without valgrind"; exit 1; }
valgrind -q --tool=callgrind --callgrind-out-file=cg.out "$SG" eval --model m.h5 --data v.h5 \
    --json >vg.json 2>vg.err
rc=$?
if [ "$rc" != 0 ]; then
    echo "FAIL eval under callgrind: exit $rc ($(grep -v '^==' vg.err | head -n1))"; fail=1
elif [ "$(metrics vg.json)" != "$(metrics plain.json)" ]; then
    echo "FAIL eval under callgrind: metrics differ"; fail=1
elif ! grep -Eq '^c?fn=\([0-9]+\) sg_eval_run$' cg.out; then
    echo "FAIL callgrind's profile does not name sg_eval_run"; fail=1
else
    echo "ok   eval under callgrind: exit 0, same metrics, profile names sg_eval_run"
fi

# The check still refuses what it refused: a file that is not HDF5 is exit 2 under valgrind too.
head -c 4096 /dev/urandom >junk.h5
valgrind -q --tool=callgrind --callgrind-out-file=cg2.out "$SG" eval --model m.h5 --data junk.h5 \
    >/dev/null 2>junk.err
rc=$?
if [ "$rc" != 2 ] || ! grep -v '^==' junk.err | grep -q 'junk.h5'; then
    echo "FAIL junk data under callgrind: exit $rc, want 2 naming junk.h5"; fail=1
else
    echo "ok   junk data under callgrind: exit 2 naming the file"
fi

# bench opens the set and the model through the same check.
valgrind -q --tool=callgrind --callgrind-out-file=cg3.out "$SG" bench --model m.h5 --data v.h5 \
    --scenario single-stream --duration 0.2 --min-queries 64 --warmup 8 --json >bench.json 2>bench.err
rc=$?
if [ "$rc" != 0 ]; then
    echo "FAIL bench under callgrind: exit $rc ($(grep -v '^==' bench.err | head -n1))"; fail=1
elif ! /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["clock"]; sys.exit(c["source"] == "tsc" or "valgrind" not in json.dumps(c))' bench.json; then
    echo "FAIL bench under callgrind: the clock does not say it left the TSC for valgrind"; fail=1
else
    echo "ok   bench under callgrind: exit 0, clock_gettime, the reason given"
fi
exit $fail
