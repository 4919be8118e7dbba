# Shared setup for the registry script tests: a temp dir, keys, a registry path, helpers.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${SG_REG_MAKE_REPORT:?}"
SG=$STAGEGATE_BIN
MKREP=$SG_REG_MAKE_REPORT
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
PY=/usr/bin/python3
# The backend under test: sqlite (a file in $WORK) or postgresql (a fresh database in the
# cluster that tests/registry/pg_cluster.sh started for this ctest run, named by $SG_PG_STATE).
BACKEND=${SG_REG_BACKEND:-sqlite}
PG_DBS=()
if [ -n "${SG_PG_STATE:-}" ]; then
    [ -s "$SG_PG_STATE" ] || { echo "FAIL: no PostgreSQL cluster ($SG_PG_STATE is missing)" >&2; exit 1; }
    . "$SG_PG_STATE"
    psql_on() { local db=$1; shift; "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d "$db" -qAtX -v ON_ERROR_STOP=1 "$@"; }
    # pg_new_db SUFFIX: a new empty database, dropped at exit: its name in NEW_DB, URI in NEW_URI
    pg_new_db() {
        NEW_DB=sg_$(basename "$WORK" | tr -c 'A-Za-z0-9\n' _ | tr 'A-Z' 'a-z')$1
        psql_on postgres -c "CREATE DATABASE $NEW_DB" >/dev/null
        PG_DBS+=("$NEW_DB")
        NEW_URI="postgresql://$PG_USER@/$NEW_DB?host=$PG_HOST"
    }
    trap 'for d in "${PG_DBS[@]}" "${PGDB:-}" "${PGDB:-}_snap"; do
            [ -n "$d" ] && psql_on postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1
          done; eval "${SG_EXIT_EXTRA:-}"; rm -rf "$WORK"' EXIT
fi
if [ "$BACKEND" = postgresql ]; then
    [ -n "${SG_PG_STATE:-}" ] || { echo "FAIL: SG_REG_BACKEND=postgresql without SG_PG_STATE" >&2; exit 1; }
    PGDB=sg_$(basename "$WORK" | tr -c 'A-Za-z0-9\n' _ | tr 'A-Z' 'a-z')
    psql_on postgres -c "CREATE DATABASE $PGDB" >/dev/null
    export STAGEGATE_REGISTRY="postgresql://$PG_USER@/$PGDB?host=$PG_HOST"
    REG_NAME=$PGDB
    # q SQL: runs SQL on the registry database, prints rows (one per line, | between columns)
    q() { psql_on "$PGDB" -c "$1"; }
    # snapshot / restore: keep the registry as it is now, and go back to it
    snapshot() { psql_on postgres -c "CREATE DATABASE ${PGDB}_snap TEMPLATE $PGDB" >/dev/null; }
    restore() {
        psql_on postgres -c "DROP DATABASE $PGDB WITH (FORCE)" -c "CREATE DATABASE $PGDB TEMPLATE ${PGDB}_snap" >/dev/null
    }
    # the database's own consistency check, beyond what verify-log reads
    db_check() { q "SELECT count(*) FROM audit_log" >/dev/null; }
else
    export STAGEGATE_REGISTRY=$WORK/registry.db
    REG_NAME=registry.db
    q() { sqlite3 "$STAGEGATE_REGISTRY" "$1"; }
    snapshot() { cp "$STAGEGATE_REGISTRY" "$WORK/snapshot.db"; }
    restore() {
        cp "$WORK/snapshot.db" "$STAGEGATE_REGISTRY"; rm -f "$STAGEGATE_REGISTRY"-wal "$STAGEGATE_REGISTRY"-shm
    }
    db_check() { [ "$(q 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"; }
fi
MAKE_DATASET=$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD...: runs CMD, checks its exit code, keeps stderr in $WORK/err.
expect() {
    local want=$1; shift
    local got=0
    "$@" >"$WORK/out" 2>"$WORK/err" || got=$?
    [ "$got" = "$want" ] || { cat "$WORK/out" "$WORK/err" >&2; fail "exit $got, wanted $want: $*"; }
}
# stderr of the last expect must contain a string
err_has() { grep -qF -- "$1" "$WORK/err" || { cat "$WORK/err" >&2; fail "stderr lacks: $1"; }; }
sha() { sha256sum "$1" | cut -c1-64; }
keys() { for k in "$@"; do "$SG" keygen --out "$k" >/dev/null; done; }
stage_of() { "$SG" registry get "$1" "$2" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["stage"])'; }

# real_models N: a validation set val.h5, a fitted logistic regression m1.h5, and m2.h5..mN.h5,
# copies of it whose bias is nudged by i * 1e-4 (real, loadable models with distinct digests,
# without paying for a scikit-learn fit per file).
real_models() {
    $PY "$MAKE_DATASET" --out val.h5 --task binary --rows 2000 --features 8 --seed 4 \
        --fit logreg --model-out m1.h5
    $PY - "$1" <<'PY'
import shutil, sys, h5py
for i in range(2, int(sys.argv[1]) + 1):
    shutil.copyfile("m1.h5", f"m{i}.h5")
    with h5py.File(f"m{i}.h5", "r+") as f:
        f["layers/0/b"][0] += i * 1e-4
PY
    echo '{"metrics": {"accuracy": {"threshold": 0.5}}}' > policy.json
}
# gate_report KEY MODEL OUT [POLICY [GATE OPTIONS...]]: a report signed by KEY from a real
# `stagegate gate` run on val.h5 (default policy.json); the gate may pass or fail.
gate_report() {
    local key=$1 model=$2 out=$3 policy=${4:-policy.json} rc=0
    shift $(($# < 4 ? $# : 4))
    "$SG" gate --model "$model" --data val.h5 --policy "$policy" --key "$key.key.pem" \
        --out "$out" "$@" >"$WORK/gate.out" 2>"$WORK/gate.err" || rc=$?
    [ "$rc" -le 1 ] && [ -s "$out" ] || { cat "$WORK/gate.out" "$WORK/gate.err" >&2; fail "gate exited $rc for $model"; }
}
# report KEY ARTIFACT RESULT AGE OUT: a test-only signed report naming ARTIFACT's digest, for
# what a real gate run cannot produce (a report dated in the past).
report() { "$MKREP" "$1.key.pem" "$(sha "$2")" "$3" "$4" "$5"; }
