#!/bin/bash
# Usage and input errors exit 2 with one line naming the file; refusals exit 1.
. "$(dirname "$0")/lib.sh"
keys signer alice
R="$SG registry"
one_line() { [ "$(wc -l < "$WORK/err")" = 1 ] || { cat "$WORK/err" >&2; fail "not one line"; }; }

expect 2 $R list
err_has "$REG_NAME"; one_line
expect 2 $R
expect 0 $R --help
expect 2 $R frobnicate
expect 2 $R get
expect 2 $R list --bogus
# --db wins over the environment
expect 0 $R create-model m1 --db other.db
[ -f other.db ] || fail "--db ignored"
# global options before the subcommand, as git takes -C: same database, same output
expect 0 $R --db global.db create-model g1
[ -f global.db ] || fail "--db before the subcommand ignored"
[ ! -f "$STAGEGATE_REGISTRY" ] || fail "--db before the subcommand also wrote \$STAGEGATE_REGISTRY"
expect 0 $R --db global.db --json get g1
$PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["name"] == "g1"' "$WORK/out" \
    || fail "--db --json before get"
expect 0 $R --json --db global.db list
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert [m["name"] for m in d["models"]] == ["g1"], d' \
    "$WORK/out" || fail "--json --db before list"
expect 0 $R --db global.db list --json
cp "$WORK/out" after.json
expect 0 $R --db global.db --json list
cmp -s after.json "$WORK/out" || fail "--json before and after the subcommand differ"
echo x > g.bin
expect 0 $R --db global.db --json create-version g1 g.bin
$PY -c 'import json,sys; d = json.load(open(sys.argv[1])); assert (d["version"], d["stage"]) == (1, "None"), d' \
    "$WORK/out" || fail "--json before a write"
expect 0 $R --db global.db --json runs g1
$PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["runs"] == []' "$WORK/out" || fail "--db before runs"
expect 0 $R --db global.db --help
grep -q "usage: stagegate registry \[--db REGISTRY\] \[--json\] SUBCOMMAND" "$WORK/out" || fail "--help after --db"
# only --db and --json may precede; two databases, or none named, are usage errors
expect 2 $R --as alice.key.pem list
err_has "--as before the subcommand: only --db and --json may come there"; one_line
expect 2 $R --db global.db get g1 --db second.db
err_has "--db given twice"; one_line
expect 2 $R --db global.db runs g1 --db second.db
err_has "--db given twice"; one_line
expect 2 $R --db global.db --db second.db list
err_has "--db given twice"; one_line
expect 2 $R --db
err_has "--db needs a value"; one_line
expect 2 $R --db global.db --json
err_has "missing subcommand"; one_line
[ ! -f second.db ] || fail "a refused command created second.db"

expect 0 $R create-model m1 --signer signer.pub.pem --promoter Production=alice.pub.pem
expect 2 $R create-model m1
err_has "already exists"
expect 2 $R create-model "bad name"
for n in . .. ...; do
    expect 2 $R create-model "$n"
    err_has "not dots only"
done
expect 2 $R create-model m2 --stages A,B
err_has "must include Production and Archived"
# The gated stage may not be the one new versions enter with no report.
expect 2 $R create-model m2 --stages Staging,Production,Archived
err_has "--report-stage: 'Staging' is the first stage"; one_line
expect 2 $R create-model m2 --report-stage None
err_has "'None' is the first stage"; one_line
# Nor may new versions enter Production, or a promoter's stage, with no transition: such a
# model put every new version straight into Production, with no report, promoter or approval.
expect 2 $R create-model m2 --stages Production,Staging,Archived --report-stage Staging
err_has "--stages: Production is the first stage"; one_line
expect 2 $R create-model m2 --stages Canary,Staging,Production,Archived --promoter Canary=alice.pub.pem
err_has "--promoter: 'Canary' is the first stage"; one_line
# Archived, where the registry moves replaced versions itself, cannot be guarded: a promoter
# or report rule had held for a manual archive only, and a one-version Archived froze Production.
expect 2 $R create-model m2 --promoter Archived=alice.pub.pem
err_has "--promoter: Archived is where the registry moves replaced versions itself"; one_line
expect 2 $R create-model m2 --report-stage Archived
err_has "--report-stage: Archived is where the registry moves replaced versions itself"; one_line
expect 2 $R create-model m2 --single-version Archived
err_has "--single-version: Archived holds every replaced version"; one_line
# A stage named in another case: refused, naming the stage it matches.
expect 2 $R create-model m2 --promoter production=alice.pub.pem
err_has "did you mean 'Production'?"; one_line
expect 2 $R create-model m2 --require-approval
err_has "--approver"
# The only approver being the only Production promoter: no approval could ever count.
expect 2 $R create-model m2 --require-approval --approver alice.pub.pem --promoter Production=alice.pub.pem
err_has "the only approver is the only Production promoter"; one_line
# ... also when the approver is the same key written with a compressed point (other DER)
openssl ec -pubin -in alice.pub.pem -conv_form compressed -pubout -out alice_c.pub.pem 2>/dev/null
expect 2 $R create-model m2 --require-approval --approver alice_c.pub.pem --promoter Production=alice.pub.pem
err_has "the only approver is the only Production promoter"; one_line
expect 2 $R create-model m2 --signer missing.pub.pem
err_has "missing.pub.pem"
# Options that would be accepted and then mean nothing, or something else than written:
# a stage a models:/ URI could never name (digits read as a version, 'latest' as the newest);
for st in 2 latest LATEST; do
    expect 2 $R create-model m2 --stages "None,$st,Production,Archived" --report-stage "$st"
    err_has "--stages: '$st' would read as a version in models:/ URIs"; one_line
done
# empty entries, which were dropped; an empty --transitions, which left every version stuck;
expect 2 $R create-model m2 --stages ",None,,Staging,Production,Archived"
err_has "--stages: '' is not a valid stage name"; one_line
expect 2 $R create-model m2 --transitions ""
err_has "--transitions: an empty entry in ''"; one_line
expect 2 $R create-model m2 --transitions "None>Staging,,Staging>Production"
err_has "--transitions: an empty entry"; one_line
# one stage both single- and multi-version (multi had won silently);
expect 2 $R create-model m2 --single-version Production --multi-version Production
err_has "stage 'Production' is given to both --single-version and --multi-version"; one_line
# half a pin (the dataset stayed unpinned), a promoter without a key file;
expect 2 $R create-model m2 --policy signer.pub.pem
err_has "--policy and --dataset pin the gate together"; one_line
expect 2 $R create-model m2 --promoter Production=
err_has "--promoter: 'Production=' is not STAGE=PUB.pem"; one_line
# verify-log's --pubkey, which only a checkpoint uses.
expect 2 $R verify-log --pubkey signer.pub.pem
err_has "it needs --checkpoint FILE"; one_line
expect 2 $R get m2
expect 2 $R create-version m1 nosuch.h5
err_has "nosuch.h5"; one_line
mkdir adir
expect 2 $R create-version m1 adir
err_has "not a regular file"
echo x > a.bin
expect 0 $R create-version m1 a.bin
expect 2 $R transition m1 1 Nowhere
err_has "no stage 'Nowhere'"
expect 2 $R transition m1 x Staging
expect 2 $R transition m1 1 Staging --report nosuch.json
err_has "nosuch.json"
echo '{not json' > junk.json
expect 1 $R transition m1 1 Staging --report junk.json
err_has "refused: m1 v1 -> Staging"; one_line
# private key readable by others is refused
cp alice.key.pem loose.key.pem; chmod 644 loose.key.pem
expect 2 $R rollback m1 --as loose.key.pem
err_has "loose.key.pem"
expect 1 $R rollback m1 --as alice.key.pem
err_has "no version of m1 is in Production"
# search parse errors name the position
expect 2 $R search "name = 'm1' AND"
err_has "at position 16"
expect 2 $R search "name = m1"
err_has "at position 8: expected a quoted string"
expect 2 $R search "colour = 'red'"
err_has "at position 1"
$R search "name LIKE 'm%'" --json | $PY -c 'import json,sys; assert len(json.load(sys.stdin)["versions"]) == 1'
# every read command prints one JSON document
for c in "list" "get m1" "get m1 1" "history m1" "verify-log" "search"; do
    $R $c --json | $PY -c 'import json,sys; json.load(sys.stdin)' || fail "$c --json"
done
# and a write with --json prints the version (or model) it left behind
$R create-version m1 a.bin --json | $PY -c '
import json, sys; d = json.load(sys.stdin); assert (d["version"], d["stage"]) == (2, "None"), d' \
    || fail "create-version --json"
$R set-alias m1 champ 2 --json | $PY -c '
import json, sys; d = json.load(sys.stdin); assert d["aliases"] == ["champ"], d' || fail "set-alias --json"
# MLflow's reserved aliases: latest in any case, v or V and digits (models:/m1@v1 would read as
# version 1 to anyone who knows MLflow's URIs).
for a in latest LATEST v1 V22; do
    expect 2 $R set-alias m1 "$a" 2
    err_has "is reserved"
done
$R delete-alias m1 champ --json | $PY -c '
import json, sys; d = json.load(sys.stdin); assert d["name"] == "m1" and d["aliases"] == {}, d' \
    || fail "delete-alias --json"

# corrupt, foreign and unreadable database files: exit 2 naming the file (PostgreSQL's own
# faults are in pg_faults.sh)
# an empty --db (an unset variable in a script) is a usage error, not the default registry
expect 2 $R list --db ""
err_has "--db is empty"; one_line
expect 2 $R --db "" list
err_has "--db is empty"; one_line
if [ "$BACKEND" = sqlite ]; then
head -c 8192 /dev/urandom > garbage.db
expect 2 $R list --db garbage.db
err_has "garbage.db"; one_line
# an empty file is not silently turned into a registry by a read
: > empty.db
expect 2 $R list --db empty.db
err_has "empty.db is an empty file"; one_line
[ ! -s empty.db ] || fail "a read wrote to empty.db"
sqlite3 foreign.db "CREATE TABLE t (x)"
expect 2 $R list --db foreign.db
err_has "foreign.db is an SQLite database but not a stagegate registry"; one_line
cp "$STAGEGATE_REGISTRY" trunc.db
truncate -s 3000 trunc.db
expect 2 $R get m1 --db trunc.db
err_has "trunc.db"; one_line
sqlite3 newer.db "PRAGMA application_id = 1397183047; PRAGMA user_version = 99; CREATE TABLE t (x)"
expect 2 $R list --db newer.db
err_has "newer than this stagegate supports"; one_line
# A damaged page inside a valid file: the models' name index. `list` reads it and must fail
# rather than print an empty list; verify-log must find it though no chain query reads it.
sqlite3 "$STAGEGATE_REGISTRY" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
cp "$STAGEGATE_REGISTRY" damaged.db
page=$(sqlite3 damaged.db "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_registered_models_1'")
psize=$(sqlite3 damaged.db "PRAGMA page_size")
head -c "$psize" /dev/zero | tr '\0' '\377' | dd of=damaged.db bs="$psize" seek=$((page - 1)) conv=notrunc 2>/dev/null
for c in list "get m1" "history m1" verify-log "transition m1 1 Archived"; do
    expect 2 $R $c --db damaged.db
    err_has "damaged.db is corrupt"; one_line
done
expect 2 $R list --json --db damaged.db
[ ! -s "$WORK/out" ] || fail "list printed a document from a damaged registry: $(cat "$WORK/out")"
if [ "$(id -u)" != 0 ]; then
    cp "$STAGEGATE_REGISTRY" locked.db; chmod 000 locked.db
    expect 2 $R list --db locked.db
    err_has "locked.db"
fi
fi
# Free text is UTF-8 (every answer is JSON, which holds nothing else): a description, a tag, a
# comment or an artifact path that is not is refused when written, not dropped from answers.
bad=$(printf 'caf\xe9')
expect 2 $R create-model u1 --description "$bad"; err_has "model u1: the description is not UTF-8 text"; one_line
expect 2 $R create-model u1 --tag "team=$bad"; err_has "model u1: tag 1 is not UTF-8 text"; one_line
# a model's tag key has a version tag's rule: one of any length had been stored by SQLite and
# refused by PostgreSQL's index, so the registry could not migrate
# (MLflow's limit: 250 characters, counted as characters, not bytes)
long=$(printf 'k%.0s' $(seq 251))
expect 2 $R create-model u1 --tag "$long=v"; err_has "model u1: tag key 'kkkk"; err_has "must be 1-250 characters"; one_line
expect 2 $R create-model u1 --tag "$(printf '\xc3\xa9%.0s' $(seq 251))=v"; err_has "must be 1-250 characters"; one_line
expect 2 $R create-model u1 --tag "a"$'\n'"b=v"; err_has "must be 1-250 characters of UTF-8 on one line"; one_line
expect 2 $R get u1
expect 0 $R create-model u1
echo u > u.bin
expect 0 $R create-version u1 u.bin
cp u.bin "$bad.bin"
expect 2 $R create-version u1 "$bad.bin"; err_has "the artifact's path is not UTF-8"; one_line
expect 2 $R set-tag u1 1 team "$bad"; err_has "tag team: the value is not UTF-8 text"; one_line
expect 2 $R set-tag u1 1 "$bad" x; err_has "must be 1-250 characters of UTF-8"; one_line
expect 2 $R set-tag u1 1 "$long" x; err_has "must be 1-250 characters of UTF-8"; one_line
# 250 characters of two bytes each: taken, read back whole, and the log still verifies
# (its replay had held a tag key in 128 bytes)
wide=$(printf '\xc3\xa9%.0s' $(seq 250))
expect 0 $R set-tag u1 1 "$wide" x
expect 0 $R --json get u1 1
[ "$(jq -r --arg k "$wide" '.tags[$k]' out)" = x ] || fail "250-character tag key: $(cat out)"
expect 0 $R create-model u3 --tag "${long:1}=v"
# A tag value holds at most 5,000 characters (MLflow's limit, in characters: 5,000 of two
# bytes each are taken), and a version at most 100 tags: each answer about the version
# carries all of them (a token holder had stored 60 values of 1 MiB, and every get of the
# version weighed 64 MB).
v5000=$(head -c 5000 /dev/zero | tr '\0' v)
expect 2 $R set-tag u1 1 big "${v5000}v"; err_has "tag big: the value is 5001 characters, more than 5000"; one_line
expect 2 $R create-model u4 --tag "big=${v5000}v"; err_has "model u4: tag 1's value is more than 5000 characters"; one_line
expect 0 $R set-tag u1 1 big "$(printf '\xc3\xa9%.0s' $(seq 5000))"
for i in $(seq 3 100); do
    $R set-tag u1 1 "t$i" x >/dev/null 2>&1 || fail "tag $i of 100 refused"
done
expect 2 $R set-tag u1 1 t101 x; err_has "u1 v1 has 100 tags, the most a version may have"; one_line
expect 0 $R set-tag u1 1 t100 changed   # a tag already there can still change
expect 0 $R --json get u1 1
[ "$(jq '.tags | length' out)/$(jq -r '.tags.t100' out)" = 100/changed ] || fail "tags after the limit: $(jq -c '.tags | length' out)"
expect 0 $R verify-log
keys approver
expect 2 $R approve u1 1 --comment "$bad" --as approver.key.pem; err_has "comment is not UTF-8 text"; one_line
# Text that is UTF-8 but holds what a terminal acts on (an escape sequence, a newline) is kept
# as written, shown as \xHH in the human output, exact in --json.
expect 0 $R create-model u2 --description "$(printf 'line1\nline2\033[2J')"
expect 0 $R get u2
grep -qF 'u2: line1\x0aline2\x1b[2J' "$WORK/out" || { cat "$WORK/out" >&2; fail "description not shown escaped"; }
if grep -q "$(printf '\033')" "$WORK/out"; then fail "an escape byte reached the terminal"; fi
expect 0 $R get u2 --json
$PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["description"] == "line1\nline2\x1b[2J"' \
    "$WORK/out" || fail "--json does not keep the description as written"
# A connection string libpq cannot parse is refused as one, never taken for a SQLite file name
# (a misspelt keyword had written to a local file named after the string, password and all).
for cs in "host=db.example dbname=models user=ci password=s3cret sslmod=require" "broken='" "bogus=1"; do
    ( cd "$WORK" && "$SG" registry --db "$cs" create-model fraud >out 2>err ) && fail "'$cs' was accepted"
    grep -q "not a valid connection string" "$WORK/err" || fail "'$cs': $(cat "$WORK/err")"
    if grep -q s3cret "$WORK/err"; then fail "the password reached the message"; fi
    [ -z "$(ls "$WORK" | grep '=')" ] || fail "'$cs' made a file: $(ls "$WORK")"
done
# ... nor when libpq quotes what it could not read: a password with a bare '%', or the whole
# URI (its message had been appended as it was, password and all). An option's name and a
# single character are still shown.
for cs in "postgresql://ci:s3cret%Horse@db.example.com/models" "postgresql://ci:s3cret@[fe80::1/models" \
    "postgresql://ci@db.example.com/models?password=s3cret%zz" "host=db.example password='s3cret"; do
    rc=0; "$SG" registry --db "$cs" list >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <"$WORK/err")" = 1 ] && grep -q "not a valid connection string" "$WORK/err" ||
        fail "'$cs': exit $rc, $(cat "$WORK/err")"
    if grep -q s3cret "$WORK/err"; then fail "the password reached the message: $(cat "$WORK/err")"; fi
done
grep -q 'matching "\]" in IPv6' <(${SG} registry --db "postgresql://ci:s3cret@[fe80::1/models" list 2>&1) ||
    fail "the one-character quote was dropped"
"$SG" registry --db "postgresql://ci@db.example.com/models?sslmod=require" list 2>"$WORK/err" && fail "sslmod accepted"
grep -q 'invalid URI query parameter: "sslmod"' "$WORK/err" || fail "the option's name: $(cat "$WORK/err")"
# A server that accepts the connection and never answers: the line says it timed out (libpq's
# message had ended at "failed:").
$PY - "$WORK/port" <<'PYEOF' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
end = time.time() + 30
s.settimeout(1)
while time.time() < end:
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
PYEOF
SILENT=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
rc=0
"$SG" registry --db "postgresql://u@127.0.0.1:$(cat "$WORK/port")/db?connect_timeout=2&sslmode=disable" list >out 2>"$WORK/err" || rc=$?
kill "$SILENT" 2>/dev/null || true
[ "$rc" = 2 ] && grep -q "timed out (connect_timeout)$" "$WORK/err" || fail "a silent server: exit $rc, $(cat "$WORK/err")"
# set-description: the arity says the range; a model "description" that reads as a version is
# most likely a version whose text was left out; a description over 64 KiB is refused at
# create-model as at set-description.
echo a > desc.bin
expect 0 $R create-model described
expect 0 $R create-version described desc.bin
expect 2 $R set-description described 1 two words
err_has "set-description takes 2 or 3 arguments, got 4"; one_line
expect 2 $R set-description described 1
err_has "no TEXT after what reads as a version"; one_line
expect 0 $R set-description described "v1 shadowed"
long=$(head -c 65537 /dev/zero | tr '\0' x)
expect 2 $R set-description described 1 "$long"
err_has "is 65537 bytes, more than 65536"; one_line
expect 2 $R create-model described-long --description "$long"
err_has "is 65537 bytes, more than 65536"; one_line
if [ "$BACKEND" = sqlite ]; then
    # SQLite's "disk I/O error" says why: the system's reason, or the usual causes when SQLite
    # kept none (a write cut by ulimit -f had said only "disk I/O error").
    rc=0; (ulimit -f 8; "$SG" registry create-version described desc.bin) >out 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] || fail "create-version under ulimit -f 8: exit $rc $(cat "$WORK/err")"
    grep -Eq "disk I/O error \((File too large|a full disk or a file size limit, ulimit -f)" "$WORK/err" ||
        fail "ulimit -f: $(cat "$WORK/err")"
    one_line
    expect 0 $R verify-log
    # A new registry's temp file (and SQLite's files beside it) is removed on SIGINT/SIGTERM:
    # an interrupted init had left REG.new-XXXXXX, -wal and -shm behind. Timing decides where
    # a signal lands, so this can miss the window, never fail falsely.
    mkdir -p sigdir
    "$SG" keygen --out sigadmin >/dev/null
    for i in $(seq 20); do
        rm -f sigdir/*
        timeout -s "$([ $((i % 2)) = 0 ] && echo TERM || echo INT)" "0.0$(( i % 9 + 1 ))" \
            "$SG" registry --db sigdir/r.db init --admin sigadmin.pub.pem >/dev/null 2>&1 || true
        left=$(ls -A sigdir | grep -c 'new-' || true)
        [ "$left" = 0 ] || fail "an interrupted init left $(ls -A sigdir | tr '\n' ' ')"
    done
fi
echo "cli errors OK"
