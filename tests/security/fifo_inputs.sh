#!/bin/bash
# Attack: a key path or an HDF5 path that is a FIFO made open() block forever (no writer
# ever comes). Each must be refused at once: exit 2, one line naming the path.
set -u
SG=${STAGEGATE_BIN:?}
SRC=${STAGEGATE_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; n=0
/usr/bin/python3 "$SRC/scripts/make_dataset.py" --task binary --rows 500 --features 4 --seed 1 \
    --out "$tmp/val.h5" --fit logreg --model-out "$tmp/m.h5" >/dev/null 2>&1 || { echo "FAIL make_dataset"; exit 1; }
"$SG" keygen --out "$tmp/k" >/dev/null || { echo "FAIL keygen"; exit 1; }
printf '{"metrics": {"accuracy": {"threshold": 0.1}}}' >"$tmp/p.json"
mkfifo "$tmp/fifo"
check() { # description, args...
    local what=$1; shift
    n=$((n + 1))
    # 20 s is far beyond a refusal (milliseconds); the old code never returned.
    timeout 20 "$SG" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc = 124 ]; then echo "FAIL $what: hung on the FIFO"; fail=$((fail + 1)); return; fi
    if [ $rc != 2 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q "fifo" "$tmp/err"; then
        echo "FAIL $what: exit $rc, $(cat "$tmp/err")"; fail=$((fail + 1)); return
    fi
    echo "ok   $what: $(cat "$tmp/err")"
}
check "eval --model FIFO" eval --model "$tmp/fifo" --data "$tmp/val.h5"
check "eval --data FIFO" eval --model "$tmp/m.h5" --data "$tmp/fifo"
check "gate --key FIFO" gate --model "$tmp/m.h5" --data "$tmp/val.h5" --policy "$tmp/p.json" --key "$tmp/fifo" --out "$tmp/r.json"
check "gate --policy FIFO" gate --model "$tmp/m.h5" --data "$tmp/val.h5" --policy "$tmp/fifo" --key "$tmp/k.key.pem" --out "$tmp/r.json"
check "verify --pubkey FIFO" verify "$tmp/p.json" --pubkey "$tmp/fifo"
check "verify REPORT=FIFO" verify "$tmp/fifo" --pubkey "$tmp/k.pub.pem"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
