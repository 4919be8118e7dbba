#!/usr/bin/env bash
# Attack (or accident): an output path naming an input. `gate --out KEY.pem` replaced the
# private key with the report, `--out MODEL.h5` the model, `eval --predictions VAL.h5` the
# validation set, `bench --samples VAL.h5` the set with a CSV, and `--out R --html R` wrote
# HTML where the signed report was announced.
# Each is now refused before any work (exit 2, one line naming both options), leaving every
# file as it was; distinct paths still work, as does a path that only looks different.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
MK="$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py"
$PY "$MK" --out val.h5 --task binary --rows 500 --features 8 --seed 1 >/dev/null
$PY "$MK" --task binary --features 8 --seed 1 --fit logreg --fit-rows 400 --model-out m.h5 >/dev/null
"$STAGEGATE_BIN" keygen --out k >/dev/null
echo '{"metrics": {"accuracy": {"threshold": 0.5}}}' > policy.json
ln -s m.h5 m_link.h5
mkdir sub
sha() { sha256sum "$@" | cut -c1-64 | tr '\n' ' '; }
before=$(sha val.h5 m.h5 policy.json k.key.pem)
refused() { # refused WORDS... -- CMD...: exit 2, one line holding each word
    local words=()
    while [ "$1" != -- ]; do words+=("$1"); shift; done
    shift
    local rc=0
    "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" = 2 ] || { cat err.txt; fail "exit $rc, want 2: $*"; }
    [ "$(wc -l < err.txt)" = 1 ] || { cat err.txt; fail "not one line: $*"; }
    for w in "${words[@]}"; do grep -qF -- "$w" err.txt || { cat err.txt; fail "no '$w': $*"; }; done
}
G=("$STAGEGATE_BIN" gate --data val.h5 --policy policy.json --key k.key.pem --cpus 0)
refused "--out" "--key" -- "${G[@]}" --model m.h5 --out k.key.pem
refused "--out" "--model" -- "${G[@]}" --model m.h5 --out m.h5
refused "--out" "--model" -- "${G[@]}" --model m.h5 --out m_link.h5
refused "--out" "--policy" -- "${G[@]}" --model m.h5 --out ./sub/../policy.json
refused "--out" "--html" "same.json" -- "${G[@]}" --model m.h5 --out same.json --html same.json
refused "--predictions" "--data" -- "$STAGEGATE_BIN" eval --model m.h5 --data val.h5 --predictions ./val.h5
refused "--predictions" "--model" -- "$STAGEGATE_BIN" eval --model m.h5 --data val.h5 --predictions m.h5
B=("$STAGEGATE_BIN" bench --model m.h5 --data val.h5 --duration 0.05 --min-queries 20 --warmup 2 --cpus 0)
refused "--samples" "--data" -- "${B[@]}" --scenario offline --samples ./sub/../val.h5
refused "--samples" "--model" -- "${B[@]}" --scenario single-stream --samples m_link.h5
# A models:/ URI resolves to the registered file, which is an input as much as a path is, and
# so is the registry a command reads (gate used to check the URI's text, trend nothing: both
# replaced the file with their output and exited 0).
"$STAGEGATE_BIN" registry --db reg.db create-model m --signer k.pub.pem >/dev/null
"$STAGEGATE_BIN" registry --db reg.db create-version m m.h5 >/dev/null
G2=("${G[@]}" --db reg.db)
refused "--out" "--model" -- "${G2[@]}" --model models:/m/1 --out m.h5
refused "--html" "--model" -- "${G2[@]}" --model models:/m/1 --out r3.json --html ./sub/../m.h5
cp m.h5 m_copy.h5
refused "--junit" "--baseline" -- "${G2[@]}" --model m_copy.h5 --baseline models:/m/1 --out r3.json --junit ./sub/../m.h5
refused "--markdown" "the registry" -- "${G2[@]}" --model models:/m/1 --out r3.json --markdown reg.db
refused "--out" "the registry's write-ahead log" -- "${G2[@]}" --model models:/m/1 --out reg.db-wal
refused "--out" "the registry" -- env STAGEGATE_REGISTRY=reg.db "${G[@]}" --model models:/m/1 --out reg.db
refused "--predictions" "the registry" -- "$STAGEGATE_BIN" eval --model models:/m/1 --db sqlite:reg.db --data val.h5 --predictions reg.db
refused "--samples" "--model" -- "${B[@]/m.h5/models:/m/1}" --db reg.db --scenario offline --samples m.h5
refused "--html" "the registry" -- "$STAGEGATE_BIN" trend m --db reg.db --html reg.db
refused "--html" "the registry" -- env STAGEGATE_REGISTRY="$T/reg.db" "$STAGEGATE_BIN" trend m --html ./reg.db
# ...and the registry is kept from outputs even by a command that does not read it (a model by
# path, no --db): with STAGEGATE_REGISTRY set, gate --out had replaced it with the report.
refused "--out" "the registry" -- env STAGEGATE_REGISTRY=reg.db "${G[@]}" --model m.h5 --out reg.db
refused "--predictions" "the registry" -- env STAGEGATE_REGISTRY="$T/reg.db" "$STAGEGATE_BIN" eval --model m.h5 --data val.h5 --predictions ./reg.db
refused "--samples" "the registry" -- env STAGEGATE_REGISTRY=reg.db "${B[@]}" --scenario offline --samples reg.db
"$STAGEGATE_BIN" registry --db reg.db list >/dev/null || fail "the registry no longer opens"
[ ! -e r3.json ] || fail "r3.json was written"
[ "$(sha val.h5 m.h5 policy.json k.key.pem)" = "$before" ] || fail "an input was changed"
[ ! -e same.json ] || fail "same.json was written"
# An output path that is a device, a FIFO or a link to one is refused, and the node stays:
# rename() over it would replace the node (run as root, `--predictions /dev/null` did).
mkfifo fifo
ln -s fifo fifo_link
targets=(fifo fifo_link)
if mknod nulldev c 1 3 2>/dev/null; then targets+=(nulldev); fi
for t in "${targets[@]}"; do
    refused "$t" "not a regular file" -- "$STAGEGATE_BIN" eval --model m.h5 --data val.h5 --predictions "$t"
    refused "$t" "not a regular file" -- "${G[@]}" --model m.h5 --out "$t"
    refused "$t" "not a regular file" -- "${G[@]}" --model m.h5 --out r2.json --junit "$t"
    refused "$t" "not a regular file" -- "${B[@]}" --scenario offline --samples "$t"
done
[ -p fifo ] && [ -L fifo_link ] || fail "the FIFO or its link was replaced"
[ ! -e nulldev ] || [ -c nulldev ] || fail "the device node was replaced"
[ ! -e r2.json ] || fail "r2.json was written although its --junit was refused"
# A symbolic link to a regular file is refused as well: rename() would replace the link, not
# the file. `--out /dev/stdout` with stdout redirected to a file (a link to /proc/self/fd/1,
# a regular file to stat()) had turned /dev/stdout into a file holding the report, as root.
echo KEEP >kept.json
ln -s kept.json file_link
mkdir fakedev && ln -s /proc/self/fd/1 fakedev/stdout
for t in file_link fakedev/stdout; do
    refused "$t" "is a symbolic link" "not a regular file" -- "${G[@]}" --model m.h5 --out "$t"
    refused "$t" "is a symbolic link" -- "$STAGEGATE_BIN" eval --model m.h5 --data val.h5 --predictions "$t"
    refused "$t" "is a symbolic link" -- "${G[@]}" --model m.h5 --out r2.json --html "$t"
done
[ -L file_link ] && [ -L fakedev/stdout ] && [ "$(cat kept.json)" = KEEP ] || fail "a link or its file was replaced"
[ ! -e r2.json ] || fail "r2.json was written although its --html was refused"
# Distinct outputs still work.
"${G[@]}" --model m.h5 --out r.json --html r.html >/dev/null || fail "gate with distinct outputs"
"$STAGEGATE_BIN" eval --model m.h5 --data val.h5 --predictions sub/p.h5 >/dev/null || fail "eval --predictions"
"${B[@]}" --scenario offline --samples sub/s.csv >/dev/null || fail "bench --samples"
[ -s r.json ] && [ -s r.html ] && [ -s sub/p.h5 ] && [ -s sub/s.csv ] || fail "outputs missing"
# A write that fails (here the file size limit, 4 KiB: the signed report fits, the HTML page
# does not; a full disk alike) leaves every output as it was: no new signed report beside the
# old renderings, and the message says why.
echo OLD > r.md
rm -f r.json r.html
before=$(sha r.md)
rc=0
bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' _ "${G[@]}" --model m.h5 --out r.json \
    --junit r.xml --html r.html --markdown r.md >out.txt 2>err.txt || rc=$?
[ "$rc" = 2 ] || { cat err.txt; fail "gate with a failing write: exit $rc, want 2"; }
[ "$(wc -l < err.txt)" = 1 ] && grep -q "File too large" err.txt || { cat err.txt; fail "the message lacks the reason"; }
[ ! -e r.json ] && [ ! -e r.xml ] && [ ! -e r.html ] || fail "a failed gate left new outputs: $(ls)"
[ "$(sha r.md)" = "$before" ] || fail "a failed gate changed r.md"
[ -z "$(ls -a | grep '\.tmp\.')" ] || fail "temp files left: $(ls -a)"
# eval's predictions alike: exit 2 with the reason (libhdf5 1.10 crashed at exit after a
# failed write, turning it into a segmentation fault), no temp file, the old file kept.
echo OLD > p_old.h5
rc=0
bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' _ "$STAGEGATE_BIN" eval --model m.h5 --data val.h5 \
    --predictions p_old.h5 >out.txt 2>err.txt || rc=$?
[ "$rc" = 2 ] || { cat err.txt; fail "eval with a failing write: exit $rc, want 2"; }
[ "$(wc -l < err.txt)" = 1 ] && grep -q "predictions failed: File too large" err.txt || { cat err.txt; fail "eval: the message lacks the reason"; }
[ "$(cat p_old.h5)" = OLD ] || fail "a failed eval changed the old predictions"
[ -z "$(ls -a | grep '\.tmp\.')" ] || fail "temp files left: $(ls -a)"
echo "ok: outputs never overwrite inputs or each other"
