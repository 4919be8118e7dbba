#!/bin/bash
# A registry read where it cannot be written. SQLite's WAL mode creates REG-wal and REG-shm
# next to the file for any access; where they cannot be created:
# - on a file system mounted read-only, nothing can write the file, and the registry reads
#   it as immutable: list, get, resolve and verify-log answer as on the writable original,
#   and a write is refused (exit 2) without touching it;
# - in a directory this user cannot write, a read is refused (exit 2) with one line that
#   says why and what to do, not "attempt to write a readonly database".
set -euo pipefail
: "${STAGEGATE_BIN:?}"
SG=$STAGEGATE_BIN
WORK=$(mktemp -d)
MNT=""
cleanup() {
    [ -z "$MNT" ] || umount "$MNT" 2>/dev/null || true
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "model bytes" >m.bin
mkdir reg
"$SG" registry --db reg/r.db create-model demo >/dev/null
"$SG" registry --db reg/r.db create-version demo m.bin >/dev/null
"$SG" registry --db reg/r.db set-tag demo 1 team risk >/dev/null
reads=("list" "get demo 1" "resolve models:/demo/1" "verify-log")
for r in "${reads[@]}"; do
    # shellcheck disable=SC2086
    "$SG" registry --db reg/r.db $r >"want_${r%% *}.out" || fail "$r on the writable registry"
done

# 1. A read-only file system: a tmpfs of our own, in a private mount namespace, remounted
#    read-only after the registry is copied in (root, or an unprivileged user namespace).
ns=(unshare -m)
[ "$(id -u)" = 0 ] || ns=(unshare -rm)
if ! "${ns[@]}" true 2>/dev/null; then
    echo "read_only: SKIP the read-only file system part: no mount namespace here" >&2
else
    cat >inner.sh <<'INNER'
set -eu
SG=$1; cd "$2"
mkdir ro
mount -t tmpfs none ro
cp reg/r.db ro/r.db
mount -o remount,ro ro
if touch ro/probe 2>/dev/null; then echo "FAIL: the tmpfs is writable" >&2; exit 1; fi
for r in list "get demo 1" "resolve models:/demo/1" verify-log; do
    # shellcheck disable=SC2086
    "$SG" registry --db ro/r.db $r >"got_${r%% *}.out" 2>"got_${r%% *}.err" ||
        { cat "got_${r%% *}.err" >&2; echo "FAIL: $r on the read-only file system" >&2; exit 1; }
done
rc=0
"$SG" registry --db ro/r.db create-version demo m.bin >/dev/null 2>write.err || rc=$?
[ "$rc" = 2 ] || { echo "FAIL: a write on the read-only file system gave exit $rc" >&2; exit 1; }
grep -q "readonly database" write.err || { cat write.err >&2; echo "FAIL: write error" >&2; exit 1; }
[ "$(wc -l <write.err)" = 1 ] || { cat write.err >&2; echo "FAIL: not one line" >&2; exit 1; }
ls ro >ro.ls
INNER
    "${ns[@]}" bash inner.sh "$SG" "$WORK" || fail "read-only file system part"
    for r in "${reads[@]}"; do
        cmp -s "want_${r%% *}.out" "got_${r%% *}.out" ||
            fail "$r differs on the read-only file system: $(diff "want_${r%% *}.out" "got_${r%% *}.out" | head -5)"
    done
    [ "$(cat ro.ls)" = r.db ] || fail "files appeared next to the read-only registry: $(cat ro.ls)"
fi

# 2. A directory this user cannot write (as an unprivileged user when root, whom the
#    permission bits do not stop), with no -wal or -shm present.
as=()
if [ "$(id -u)" = 0 ]; then
    id nobody >/dev/null 2>&1 || fail "no user nobody to run as"
    chown -R nobody "$WORK"
    as=(runuser -u nobody --)
fi
rm -f reg/r.db-wal reg/r.db-shm
chmod 555 reg
rc=0
"${as[@]}" "$SG" registry --db reg/r.db list >dir.out 2>dir.err || rc=$?
chmod 755 reg
[ "$rc" = 2 ] || { cat dir.out dir.err >&2; fail "read in an unwritable directory: exit $rc, want 2"; }
[ "$(wc -l <dir.err)" = 1 ] || { cat dir.err >&2; fail "not one line"; }
grep -qF "registry reg/r.db cannot be read: its directory is not writable" dir.err ||
    { cat dir.err >&2; fail "the error does not say why"; }
grep -qF "reg/r.db-wal" dir.err || { cat dir.err >&2; fail "the error does not name the -wal file"; }

# 3. A registry file made read-only for a while (chmod 444) and read meanwhile: SQLite made
#    its -wal and -shm read-only too, and once the file was writable again every write
#    failed ("attempt to write a readonly database", naming the writable file). They take
#    the file's mode again.
chmod 444 reg/r.db
"${as[@]}" "$SG" registry --db reg/r.db list >/dev/null || fail "read of a read-only (0444) registry"
[ -e reg/r.db-shm ] && [ "$(stat -c %a reg/r.db-shm)" = 444 ] ||
    fail "the read left no read-only -shm to test with: $(ls -l reg)"
chmod 644 reg/r.db
"${as[@]}" "$SG" registry --db reg/r.db set-tag demo 1 team fraud >w.out 2>w.err ||
    { cat w.err >&2; fail "a write after the registry was made writable again"; }
[ ! -e reg/r.db-shm ] || [ "$(stat -c %a reg/r.db-shm)" = 644 ] || fail "-shm kept mode $(stat -c %a reg/r.db-shm)"
# 4. A new registry on a full file system: refused (exit 2, one line) and nothing left at the
#    path (an empty file had been left, which every later read called "not a stagegate
#    registry"); once there is room, the same command creates it.
if "${ns[@]}" true 2>/dev/null; then
    cat >full.sh <<'FULL'
set -eu
SG=$1; cd "$2"
mkdir full
mount -t tmpfs -o size=1m none full
head -c 1000000 /dev/zero >full/fill 2>/dev/null || true
rc=0
"$SG" registry --db full/new.db create-model m1 >/dev/null 2>full.err || rc=$?
[ "$rc" = 2 ] || { cat full.err >&2; echo "FAIL: create on a full disk: exit $rc" >&2; exit 1; }
[ "$(wc -l <full.err)" = 1 ] || { cat full.err >&2; echo "FAIL: not one line" >&2; exit 1; }
grep -q "registry full/new.db cannot be created" full.err || { cat full.err >&2; echo "FAIL: message" >&2; exit 1; }
[ "$(ls full)" = fill ] || { ls -la full >&2; echo "FAIL: files left on the full disk" >&2; exit 1; }
rm full/fill
"$SG" registry --db full/new.db create-model m1 >/dev/null || { echo "FAIL: create once there is room" >&2; exit 1; }
"$SG" registry --db full/new.db verify-log >/dev/null || { echo "FAIL: verify-log" >&2; exit 1; }
[ "$(ls full)" = new.db ] || { ls -la full >&2; echo "FAIL: temporary files left" >&2; exit 1; }
# Nearly full, at several levels of free space: the schema fits in the write-ahead log but
# the file's own copy of it may not. Either the registry is made whole, or nothing is left
# (a checkpoint cut short at close had linked a half-written file into place, corrupt for
# good, and removed the log that held the only whole copy).
rm full/new.db
for left in 200 230 260 300 360 420; do
    avail=$(df --output=avail -k full | tail -1)
    head -c $(( (avail - left) * 1024 )) /dev/zero >full/fill 2>/dev/null || true
    rc=0
    "$SG" registry --db full/new.db create-model m1 >/dev/null 2>full.err || rc=$?
    if [ "$rc" = 0 ]; then
        rm full/fill
        "$SG" registry --db full/new.db verify-log >/dev/null 2>full.err ||
            { cat full.err >&2; echo "FAIL: created with $left KiB free, and not sound" >&2; exit 1; }
    else
        [ "$rc" = 2 ] && [ "$(wc -l <full.err)" = 1 ] ||
            { cat full.err >&2; echo "FAIL: $left KiB free: exit $rc" >&2; exit 1; }
        [ "$(ls full)" = fill ] || { ls -la full >&2; echo "FAIL: $left KiB free: left files" >&2; exit 1; }
        rm full/fill
    fi
    rm -f full/new.db
done
umount full
FULL
    "${ns[@]}" bash full.sh "$SG" "$WORK" || fail "full file system part"
fi
echo "read_only: ok"
