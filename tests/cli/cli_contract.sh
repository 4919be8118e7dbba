#!/bin/bash
# The CLI layer's contract: help needs no kernels, every command and registry subcommand
# refuses an option it does not take (exit 2, one line naming it), global registry options
# go before the subcommand.
set -u
SG=${STAGEGATE_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
# expect CODE DESCRIPTION CMD...: exit code, and for 2 exactly one stderr line
expect() {
    local want=$1 what=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ "$rc" != "$want" ]; then bad "$what: exit $rc, wanted $want ($(head -2 "$tmp/err"))"; return; fi
    if [ "$want" = 2 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then bad "$what: stderr is not one line"; return; fi
    ok "$what"
}

for c in eval bench clock keygen gate verify registry compare trend; do
    STAGEGATE_ISA=bogus expect 0 "STAGEGATE_ISA=bogus $c --help" "$SG" $c --help
    grep -q "usage" "$tmp/out" || bad "$c --help prints no usage"
done
STAGEGATE_ISA=bogus expect 2 "STAGEGATE_ISA=bogus eval refuses the ISA" "$SG" eval --model m --data d
grep -q "STAGEGATE_ISA=bogus" "$tmp/err" || bad "ISA error does not name the variable"

for c in eval bench clock keygen gate verify compare trend; do
    expect 2 "$c --no-such-option" "$SG" $c --no-such-option
    grep -q "'--no-such-option'" "$tmp/err" || bad "$c: error does not name the option"
done
expect 2 "registry list --reject" "$SG" registry list --reject
grep -q "stagegate registry list: unknown option '--reject'" "$tmp/err" || bad "list --reject wording: $(cat "$tmp/err")"
# each subcommand takes only its own options
expect 2 "registry get --as" "$SG" registry get m --as k.pem
expect 2 "registry transition --reject" "$SG" registry transition m 1 Staging --reject
expect 2 "registry approve --report" "$SG" registry approve m 1 --report r.json --as k.pem
expect 2 "registry runs --pubkey" "$SG" registry runs m --pubkey p.pem
expect 2 "registry record --limit" "$SG" registry record r.json --limit 3
expect 2 "registry create-version --signer" "$SG" registry create-version m a.h5 --signer p.pem
expect 2 "registry --as before the subcommand" "$SG" registry --as k.pem list
expect 2 "bench --seed out of range" "$SG" bench --seed -1
grep -q -- "--seed" "$tmp/err" || bad "range error does not name --seed"
# An option that takes one value, given twice: refused before any file is opened.
expect 2 "eval --threshold twice" "$SG" eval --model m --data d --threshold 0.5 --threshold=0.9
grep -q "stagegate eval: option '--threshold' given twice (it takes one value)" "$tmp/err" ||
    bad "eval --threshold twice wording: $(cat "$tmp/err")"
expect 2 "gate --policy twice" "$SG" gate --model m --data d --policy a.json --policy b.json

# An empty --db (an unset variable) is not the default registry, for any command: it had
# resolved models:/ URIs and trend's runs from ./stagegate.db.
touch "$tmp/m.h5" "$tmp/d.h5"
for c in "eval --model $tmp/m.h5 --data $tmp/d.h5" "gate --model $tmp/m.h5 --data $tmp/d.h5 --policy p --key k --out o" \
    "bench --model $tmp/m.h5 --data $tmp/d.h5" "trend m" "verify r.json" "serve --listen 127.0.0.1:0"; do
    expect 2 "${c%% *} --db ''" "$SG" $c --db ""
    grep -q -- "--db is empty" "$tmp/err" || bad "${c%% *} --db '': $(cat "$tmp/err")"
done
# An empty path, or one ending in '/', names no file; an output's directory must exist:
# each had run to the end and failed there with ": cannot write".
expect 2 "eval --predictions ''" "$SG" eval --model "$tmp/m.h5" --data "$tmp/d.h5" --predictions ""
grep -q -- "--predictions is empty" "$tmp/err" || bad "--predictions '': $(cat "$tmp/err")"
expect 2 "eval --predictions DIR/" "$SG" eval --model "$tmp/m.h5" --data "$tmp/d.h5" --predictions "$tmp/p.h5/"
grep -q "ends in '/'" "$tmp/err" || bad "--predictions x/: $(cat "$tmp/err")"
expect 2 "bench --samples nodir/s.csv" "$SG" bench --model "$tmp/m.h5" --data "$tmp/d.h5" --scenario offline --samples "$tmp/nodir/s.csv"
grep -q "its directory does not exist" "$tmp/err" || bad "--samples nodir/: $(cat "$tmp/err")"
expect 2 "gate --key ''" "$SG" gate --model "$tmp/m.h5" --data "$tmp/d.h5" --policy p --key "" --out o
grep -q -- "--key is empty" "$tmp/err" || bad "gate --key '': $(cat "$tmp/err")"

# A path given by the user is echoed in success lines as error lines echo it: an escape
# sequence in it is shown as \xHH, never sent to the terminal (a window title, a screen clear).
expect 0 "keygen --out with an escape sequence" "$SG" keygen --out "$tmp/k$(printf '\033]0;T\007')"
grep -qF 'k\x1b]0;T\x07.key.pem (mode 0600' "$tmp/out" || bad "keygen's path not shown escaped: $(cat -v "$tmp/out")"
if grep -q "$(printf '\033')" "$tmp/out"; then bad "keygen sent an escape byte to the terminal"; fi

# --help where a value belongs is a forgotten value, not a value (taken as the value, the
# help request was lost and the STAGEGATE_ISA check skipped)
STAGEGATE_ISA=bogus expect 2 "eval --db --help" "$SG" eval --model m --data d --db --help
grep -q "option '--db' needs a value (got --help)" "$tmp/err" || bad "--db --help: $(cat "$tmp/err")"

# global options before the subcommand, --opt=value after it
"$SG" keygen --out "$tmp/k" >/dev/null || bad keygen
expect 0 "registry --db PATH create-model" "$SG" registry --db "$tmp/r.db" create-model m --signer "$tmp/k.pub.pem"
expect 0 "registry --db=PATH --json get" "$SG" registry --db="$tmp/r.db" --json get m
/usr/bin/python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["name"] == "m"' "$tmp/out" ||
    bad "get --json through global options"
expect 0 "registry list --db=PATH" "$SG" registry list --db="$tmp/r.db"
grep -q '^m' "$tmp/out" || bad "list shows no model: $(cat "$tmp/out")"
# storage backends are chosen by the --db value: sqlite:PATH is the same file; a URI no
# backend serves is refused naming its scheme; an unreachable PostgreSQL server is one line
# that never shows the password
expect 0 "registry --db sqlite:PATH list" "$SG" registry --db "sqlite:$tmp/r.db" list
grep -q '^m' "$tmp/out" || bad "sqlite:PATH shows no model"
# ...one "sqlite:" is taken off: sqlite:sqlite:x.db is the file "sqlite:x.db", made whole
# under a temporary name that is removed (a second registry had been left as x.db.new-XXXXXX)
mkdir "$tmp/sq"
(cd "$tmp/sq" && "$SG" registry --db sqlite:sqlite:x.db init >/dev/null) || bad "registry --db sqlite:sqlite:x.db init"
[ "$(ls -A "$tmp/sq" | tr '\n' ' ')" = "sqlite:x.db " ] || bad "sqlite:sqlite: left $(ls -A "$tmp/sq")"
expect 2 "registry --db mysql://..." "$SG" registry --db "mysql://u:hunter2@db.invalid/reg" list
grep -q "registry mysql://...: no storage backend serves this URI" "$tmp/err" || bad "unserved URI: $(cat "$tmp/err")"
if grep -q hunter2 "$tmp/err"; then bad "a password in an error (unserved URI)"; fi
expect 2 "registry --db postgresql://... unreachable" "$SG" registry --db "postgresql://u:hunter2@/reg?host=$tmp/nosocket" list
grep -q "cannot connect" "$tmp/err" || bad "unreachable server: $(cat "$tmp/err")"
if grep -q hunter2 "$tmp/err"; then bad "a password in an error (URI)"; fi
expect 2 "registry --db conninfo unreachable" "$SG" registry --db "host=$tmp/nosocket dbname=reg password=hunter2" list
grep -q "cannot connect" "$tmp/err" || bad "unreachable server (conninfo): $(cat "$tmp/err")"
if grep -q hunter2 "$tmp/err"; then bad "a password in an error (connection string)"; fi

# keygen interrupted between publishing its two halves (the first link held back 1.5 s, and
# SIGTERM sent then): both files or neither, never the private key alone (which keygen then
# refused to replace)
if command -v strace >/dev/null; then
    mkdir "$tmp/kg"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -o /dev/null \
        -e trace=link -e inject=link:delay_exit=1500000:when=1 "$SG" keygen --out "$tmp/kg/k" >/dev/null 2>&1 &
    sp=$!
    for _ in $(seq 1 100); do kp=$(pgrep -P $sp || true); [ -n "$kp" ] && break; sleep 0.02; done
    sleep 0.8
    [ -n "$kp" ] && kill -TERM "$kp" 2>/dev/null || true
    wait $sp || true
    got=$(ls "$tmp/kg" | tr '\n' ' ')
    case "$got" in "" | "k.key.pem k.pub.pem ") ;; *) bad "keygen interrupted between its links left: $got" ;; esac
fi
exit $fail
