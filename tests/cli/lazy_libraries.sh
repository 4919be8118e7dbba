#!/usr/bin/env bash
# libpq, libcurl and libmicrohttpd are opened when a command first needs them, and libhdf5 is
# linked from its archive: stagegate itself links none of them, nor what they link (GnuTLS,
# Kerberos, LDAP, SSH). A command that needs one that cannot be loaded exits 2 with one line
# naming the library, what needs it and the Debian package; the others run without it.
set -euo pipefail
: "${STAGEGATE_BIN:?}" "${STAGEGATE_SOURCE_DIR:?}" "${STAGEGATE_BUILD_DIR:?}"
SG=$STAGEGATE_BIN
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

ldd "$SG" >libs.txt
for lib in libpq libcurl libmicrohttpd libgnutls libkrb5 libldap libssh2 librtmp libnghttp2; do
    ! grep -q "^[[:space:]]*$lib[.-]" libs.txt || { cat libs.txt; fail "stagegate links $lib"; }
done
# The shared-library build (a link check) keeps the shared libhdf5: an archive's objects are
# not position-independent.
if ! grep -q "^STAGEGATE_SHARED:BOOL=ON" "$STAGEGATE_BUILD_DIR/CMakeCache.txt"; then
    ! grep -q "libhdf5" libs.txt || { cat libs.txt; fail "stagegate links the shared libhdf5"; }
fi

/usr/bin/python3 "$STAGEGATE_SOURCE_DIR/scripts/make_dataset.py" --out d.h5 --task binary --rows 300 \
    --features 4 --seed 2 --fit logreg --fit-rows 300 --model-out m.h5 >/dev/null 2>&1
"$SG" registry --db reg.db init >/dev/null

# Libraries that cannot be loaded: files of those names that are not libraries, found first.
mkdir broken
: >broken/libpq.so.5
: >broken/libcurl.so.4
: >broken/libmicrohttpd.so.12
expect() { # expect WHAT SONAME PACKAGE -- command...
    local what=$1 so=$2 pkg=$3
    shift 4
    rc=0
    LD_LIBRARY_PATH=$PWD/broken "$@" >out 2>err || rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] &&
        grep -q "^stagegate: $what needs $so, which cannot be loaded (install Debian's $pkg): .*$so" err ||
        { cat err; fail "$so missing: exit $rc"; }
}
expect "a PostgreSQL registry" libpq.so.5 libpq5 -- "$SG" registry --db "postgresql:///nowhere?host=$T" list
expect "a registry through a server" libcurl.so.4 libcurl4 -- "$SG" registry --db http://127.0.0.1:9/ list
expect "the registry server" libmicrohttpd.so.12 libmicrohttpd12 -- "$SG" serve --db reg.db --listen 127.0.0.1:0
# ... while what does not need them runs as ever.
LD_LIBRARY_PATH=$PWD/broken "$SG" eval --model m.h5 --data d.h5 --json >eval.json || fail "eval without them"
LD_LIBRARY_PATH=$PWD/broken "$SG" registry --db reg.db list >/dev/null || fail "a SQLite registry without them"

# A library of the right name that lacks a function stagegate calls (another library under
# the name): named, with the function.
mkdir wrong
cp "$(ldconfig -p | awk '$1 == "libz.so.1" && /x86-64/ {print $NF; exit}')" wrong/libpq.so.5
rc=0
LD_LIBRARY_PATH=$PWD/wrong "$SG" registry --db "postgresql:///nowhere?host=$T" list >out 2>err || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <err)" = 1 ] &&
    grep -q "^stagegate: a PostgreSQL registry needs the function PQ[a-zA-Z]* of libpq.so.5, which the installed library lacks (install Debian's libpq5)$" err ||
    { cat err; fail "a libpq without its functions: exit $rc"; }
echo "ok: lazy libraries"
