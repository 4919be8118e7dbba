#!/usr/bin/env bash
# Accident (or attack): a registry in a sticky, world-writable directory such as /tmp.
# Another user's read leaves REG-wal and REG-shm owned by that user; the owner's writes then
# fail with SQLite's "attempt to write a readonly database", and the sticky directory keeps
# the owner from removing the two files. The refusal now names them and their owner.
set -euo pipefail
: "${STAGEGATE_BIN:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    echo "skip: acting as two users needs root and setpriv"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
chmod 1777 "$T"
cd "$T"
OWNER=(setpriv --reuid=61001 --regid=61001 --clear-groups)
OTHER=(setpriv --reuid=61002 --regid=61002 --clear-groups)
"${OWNER[@]}" "$STAGEGATE_BIN" keygen --out "$T/adm" >/dev/null
"${OWNER[@]}" "$STAGEGATE_BIN" registry --db "$T/r.db" init --admin "$T/adm.pub.pem" >/dev/null
chmod 644 r.db
[ ! -e r.db-wal ] || fail "the owner's own run left r.db-wal"
"${OTHER[@]}" "$STAGEGATE_BIN" registry --db "$T/r.db" list >/dev/null || fail "the other user's read failed"
[ -e r.db-wal ] && [ "$(stat -c %u r.db-wal)" = 61002 ] ||
    fail "the other user's read left no r.db-wal of its own (the case this tests): $(ls -ln)"
rc=0
"${OWNER[@]}" "$STAGEGATE_BIN" registry --db "$T/r.db" create-model m --as "$T/adm.key.pem" \
    >out 2>err || rc=$?
[ "$rc" = 2 ] || { cat err; fail "the owner's write: exit $rc, want 2"; }
[ "$(wc -l < err)" = 1 ] && grep -qF "$T/r.db-wal belongs to uid 61002" err ||
    { cat err; fail "the message does not name the other user's file"; }
# Once they are gone (root here), the owner writes again.
rm -f r.db-wal r.db-shm
"${OWNER[@]}" "$STAGEGATE_BIN" registry --db "$T/r.db" create-model m --as "$T/adm.key.pem" \
    >/dev/null || fail "the owner's write after the files were removed"
echo "ok: another user's WAL files are named in the owner's refusal"
