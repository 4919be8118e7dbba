#!/bin/bash
# The lifecycle of one model, None -> Staging -> Production -> Archived, told with real
# components: scikit-learn models, `stagegate gate` runs, signed reports checked with openssl,
# and a registry that enforces the gates. One line per step says what happened and why.
#
#   ./scripts/demo.sh [--out DIR]      (default DIR: demo-out, relative to the current directory)
#
# Installs the Debian packages that are missing (scripts/deps.sh) and builds stagegate
# (Release) first, unless STAGEGATE_BIN names an existing binary: then it does neither.
# A rerun wipes and recreates DIR only; a non-empty DIR that an earlier demo did not make is
# refused. Exit 0 when every step did what it should (an expected refusal counts as success),
# 1 when one did not, 2 on a usage error.
set -euo pipefail

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0"
}
OUT_ARG=demo-out
while [ $# -gt 0 ]; do
    case $1 in
    --out)
        [ $# -ge 2 ] && [ -n "$2" ] || { echo "demo.sh: --out needs a directory" >&2; exit 2; }
        OUT_ARG=$2
        shift 2
        ;;
    --out=?*) OUT_ARG=${1#--out=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m -- "$OUT_ARG")
MARK=.stagegate-demo
if [ -e "$OUT" ] && [ ! -d "$OUT" ]; then
    echo "demo.sh: $OUT_ARG exists and is not a directory" >&2
    exit 2
fi
if [ -d "$OUT" ] && [ ! -e "$OUT/$MARK" ] && [ -n "$(ls -A "$OUT")" ]; then
    echo "demo.sh: $OUT_ARG is not empty and was not made by this demo (no $MARK); not wiping it" >&2
    exit 2
fi

PY=/usr/bin/python3
say() { printf '%-10s %s\n' "[$1]" "$2"; }
if [ -n "${STAGEGATE_BIN:-}" ]; then
    SG=$(realpath -- "$STAGEGATE_BIN" 2>/dev/null) && [ -x "$SG" ] ||
        { echo "demo.sh: STAGEGATE_BIN=$STAGEGATE_BIN is not an executable file" >&2; exit 2; }
fi

T0=$SECONDS
echo "stagegate demo: the lifecycle of one model, None -> Staging -> Production -> Archived."
echo "Real scikit-learn models, real gate runs, real signatures; output in $OUT_ARG/."
if [ -n "${STAGEGATE_BIN:-}" ]; then
    BUILT="using STAGEGATE_BIN=$STAGEGATE_BIN (no package install, no build)"
else
    "$SRC/scripts/deps.sh"
    mkdir -p "$SRC/build"
    { cmake -S "$SRC" -B "$SRC/build/release" -DCMAKE_BUILD_TYPE=Release &&
        cmake --build "$SRC/build/release" -j "$(nproc 2>/dev/null || echo 2)" --target stagegate; } \
        >"$SRC/build/demo-build.log" 2>&1 ||
        { tail -30 "$SRC/build/demo-build.log" >&2; echo "demo.sh: build failed" >&2; exit 1; }
    SG=$SRC/build/release/cli/stagegate
    BUILT="built stagegate (Release) at build/release/cli/stagegate (log: build/demo-build.log)"
fi
for tool in jq openssl sha256sum base64; do
    command -v "$tool" >/dev/null || { echo "demo.sh: '$tool' is missing (scripts/deps.sh installs it)" >&2; exit 2; }
done

rm -rf -- "$OUT"
mkdir -p "$OUT/logs"
touch "$OUT/$MARK"
cd "$OUT"
LOGS=$OUT/logs
DB=$OUT/registry.db
M=fraud-detector
STEP=0

say build "$BUILT"

# run WANT NAME CMD...: runs CMD with its output in logs/NN-NAME.log; stops the demo unless it
# exits with WANT. The last log is $LOG.
run() {
    local want=$1 rc=0
    STEP=$((STEP + 1))
    LOG=$(printf '%s/%02d-%s.log' "$LOGS" "$STEP" "$2")
    shift 2
    printf '$ %s\n' "$*" >"$LOG"
    "$@" >>"$LOG" 2>&1 || rc=$?
    if [ "$rc" != "$want" ]; then
        echo "demo.sh: UNEXPECTED: exit $rc, expected $want: $*" >&2
        tail -n 15 "$LOG" | sed 's/^/    /' >&2
        echo "demo.sh: full output in $LOG" >&2
        exit 1
    fi
}
unexpected() { echo "demo.sh: UNEXPECTED: $*" >&2; exit 1; }
reg() { "$SG" registry --db "$DB" "$@"; }
# expect_stages LABEL V1 V2 V3: the stage each version must be in now; keeps each version's
# `registry get --json` document in states/LABEL/ for whoever wants to check the story later.
expect_stages() {
    local label=$1 v want got
    shift
    mkdir -p "states/$label"
    for v in 1 2 3; do
        want=${!v}
        reg --json get "$M" "$v" >"states/$label/v$v.json"
        got=$(jq -r .stage "states/$label/v$v.json")
        [ "$got" = "$want" ] || unexpected "v$v is in $got, expected $want ($label)"
    done
}
# The reason of the refusal in the last log, without the "stagegate: refused: M vN -> S: " prefix
# and without the signature-check detail after " (envelope: ".
refusal() { grep -m1 'stagegate: refused' "$LOG" | sed 's/^stagegate: refused: //; s/^[^ ]* v[0-9]* -> [^:]*: //; s/ (envelope: .*//'; }
payload() { jq -j .payload "$1" | base64 -d; }
# check_text REPORT NAME: the text of one check in a signed report
check_text() { payload "$1" | jq -r --arg n "$2" '.predicate.checks[] | select(.name == $n) | .text'; }

# --- 1. data and three models ---------------------------------------------------------------
run 0 dataset "$PY" "$SRC/scripts/make_dataset.py" --out val.h5 --task binary --rows 50000 \
    --features 16 --seed 7
say data "val.h5: 50,000 labelled rows x 16 features from a fixed random teacher (a synthetic stand-in for fraud data)"
fit() { # fit NAME OPTIONS...: fit on a separate training sample of the same teacher, export to NAME.h5
    local name=$1
    shift
    "$PY" "$SRC/scripts/make_dataset.py" --task binary --features 16 --seed 7 "$@" \
        --joblib-out "$name.joblib" --model-out "$name.h5"
}
run 0 fit-v1 fit v1 --fit logreg
# The two MLPs train in parallel: one core each.
fit v2 --fit mlp-relu --hidden 32,32 --max-iter 40 >"$LOGS/fit-v2.log" 2>&1 &
P2=$!
trap 'kill "$P2" 2>/dev/null || true' EXIT # if the demo stops while v2 is still fitting
run 0 fit-v3 fit v3 --fit mlp-relu --hidden 32,32 --max-iter 40 --label-noise 0.3
wait "$P2" || { cat "$LOGS/fit-v2.log" >&2; unexpected "fitting v2 failed"; }
trap - EXIT
metrics() {
    "$SG" eval --model "$1.h5" --data val.h5 --json |
        jq -er '.metrics | "accuracy \(.accuracy*10000|round/10000), F1 \(.f1*10000|round/10000)"' ||
        unexpected "stagegate eval of $1.h5 failed"
}
MET1=$(metrics v1)
MET2=$(metrics v2)
MET3=$(metrics v3)
say train "v1: LogisticRegression, the baseline ($MET1)"
say train "v2: MLP 32x32 ReLU, the better candidate ($MET2)"
say train "v3: the same MLP fitted on labels 30% forced to 0, deliberately worse ($MET3)"
say train "fitted with scikit-learn, exported by scripts/export_sklearn.py to stagegate's HDF5 model format"

# --- 2. keys, the registered model and its policy --------------------------------------------
for k in admin ci promoter approver; do run 0 "keygen-$k" "$SG" keygen --out "$k"; done
say keys "ci signs gate reports; promoter requests Staging and Production; approver approves (ECDSA P-256, PEM)"
cat >policy.json <<'EOF'
{
  "metrics": {
    "accuracy": {"threshold": 0.85},
    "f1": {"max_relative_regression": 0.05, "optional": true}
  },
  "latency": {"scenario": "single-stream", "percentile": 99, "max_ms": 50, "min_queries": 2000},
  "memory": {"max_rss_mb": 256, "max_model_mb": 16},
  "shadow": {"min_agreement": 0.90, "optional": true}
}
EOF
say policy "gate: accuracy >= 0.85, F1 at most 5% below Production, p99 <= 50 ms (the lecture's budget), RSS <= 256 MiB, shadow agreement >= 90%"
run 0 init-admin reg init --admin admin.pub.pem
say registry "admin key is the registry's root of trust: models, their keys and pinned gates are created and changed only with its signature"
run 0 create-model reg create-model "$M" --signer ci.pub.pem --promoter Staging=promoter.pub.pem \
    --promoter Production=promoter.pub.pem --approver approver.pub.pem --require-approval \
    --policy policy.json --dataset val.h5 \
    --description "the lecture's fraud detector" --as admin.key.pem
say registry "$M created by admin: Staging needs a report signed by ci from this exact policy on val.h5; only promoter may request Staging or Production; Production needs approver's approval"
for v in 1 2 3; do
    run 0 "create-v$v" reg create-version "$M" "v$v.h5" --as ci.key.pem
    [ "$(tail -n1 "$LOG")" = "$v" ] || unexpected "v$v.h5 was not registered as version $v"
done
expect_stages registered None None None
say registry "registered v1, v2, v3 in stage None, each bound to its artifact's sha256 (registry.db)"

# --- 3. v1: gate -> Staging -> approval -> Production ----------------------------------------
gate() { # gate VERSION [BASELINE OPTIONS]: a signed report vN.intoto.json plus its renderings
    local v=$1
    shift
    "$SG" gate --model "models:/$M/$v" --db "$DB" --data val.h5 --policy policy.json \
        --key ci.key.pem --out "v$v.intoto.json" --html "v$v.html" --markdown "v$v.md" \
        --junit "v$v.junit.xml" "$@"
}
run 0 gate-v1 gate 1
say v1 "gate PASSED: $(grep -m1 '^gate PASSED' "$LOG" | sed 's/^gate PASSED: //; s/;.*//'): no Production model yet to compare F1 and predictions with"
run 1 v1-staging-unsigned reg transition "$M" 1 Staging --report v1.intoto.json
say v1 "None -> Staging without promoter's signed request: refused as expected ($(refusal))"
run 0 v1-staging reg transition "$M" 1 Staging --report v1.intoto.json --as promoter.key.pem
say v1 "None -> Staging: report verified against ci's key, names v1's sha256 and says PASSED"
run 1 v1-production-unapproved reg transition "$M" 1 Production --as promoter.key.pem
say v1 "Staging -> Production before approval: refused as expected ($(refusal))"
run 1 v1-self-approval reg approve "$M" 1 --as promoter.key.pem
say v1 "promoter approving its own promotion: refused as expected ($(refusal))"
run 0 v1-approve reg approve "$M" 1 --as approver.key.pem --comment "baseline reviewed"
run 0 v1-production reg transition "$M" 1 Production --as promoter.key.pem
expect_stages v1-production Production None None
say v1 "approved by approver, then Staging -> Production at promoter's signed request"

# --- 4. v2: gate against Production v1, verified with openssl, promoted; v1 archived ---------
run 0 gate-v2 gate 2 --baseline "models:/$M/Production"
say v2 "gate vs Production v1 PASSED: $(check_text v2.intoto.json f1.max_relative_regression); $(check_text v2.intoto.json shadow.agreement | sed 's/ (.*//')"
say v2 "  $(check_text v2.intoto.json latency.p99 | sed 's/ (.*//'); $(check_text v2.intoto.json memory.max_rss_mb)"
QUERIES=$(payload v2.intoto.json | jq -r .predicate.latency.queries)
CPU=$(payload v2.intoto.json | jq -r '.predicate.latency.machine | "\(.cpu_model) (\(.cpu_signature.vendor // "?") family \(.cpu_signature.family // "?") model \(.cpu_signature.model // "?"))"')
say v2 "  latency runs are SHORT here ($QUERIES single-stream queries) to keep the demo quick; CPU from the report's machine record: $CPU"
mkdir openssl
jq -j .payloadType v2.intoto.json >openssl/type.txt
jq -j .payload v2.intoto.json | base64 -d >openssl/payload.bin
jq -j '.signatures[0].sig' v2.intoto.json | base64 -d >openssl/sig.bin
pae() { # DSSE PAE = "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload
    printf 'DSSEv1 %s ' "$(wc -c <"$1" | tr -d ' ')"
    cat "$1"
    printf ' %s ' "$(wc -c <"$2" | tr -d ' ')"
    cat "$2"
}
pae openssl/type.txt openssl/payload.bin >openssl/pae.bin
run 0 v2-openssl-verify openssl dgst -sha256 -verify ci.pub.pem -signature openssl/sig.bin openssl/pae.bin
grep -qx 'Verified OK' "$LOG" || unexpected "openssl did not say Verified OK"
SUBJECT=$(jq -r '.subject[0].digest.sha256' openssl/payload.bin)
[ "$SUBJECT" = "$(sha256sum v2.h5 | cut -d' ' -f1)" ] || unexpected "v2's report names another artifact"
say v2 "openssl dgst -sha256 -verify over the DSSE PAE rebuilt with printf: Verified OK; subject = sha256sum v2.h5"
run 0 v2-verify "$SG" verify v2.intoto.json --pubkey ci.pub.pem --model v2.h5
say v2 "stagegate verify: signature, payloadType, statement, predicateType, subject digest all pass; result PASSED"
run 0 v2-staging reg transition "$M" 2 Staging --report v2.intoto.json --as promoter.key.pem
run 0 v2-approve reg approve "$M" 2 --as approver.key.pem --comment "beats v1 on F1, agrees on 93%"
run 0 v2-production reg transition "$M" 2 Production --as promoter.key.pem
expect_stages v2-production Archived Production None
say v2 "None -> Staging -> approved -> Production; v1 moved to Archived in the same transaction"

# --- 5. v3: the gate fails, the registry refuses it, and an edited report is caught ----------
run 1 gate-v3 gate 3 --baseline "models:/$M/Production"
FAILED=$(payload v3.intoto.json | jq -r '[.predicate.checks[] | select(.passed == false and .skipped == false) | "\(.name): \(.text)"] | join("; ")')
[ -n "$FAILED" ] || unexpected "v3's report names no failed check"
say v3 "gate vs Production v2 FAILED as expected: $FAILED"
run 1 v3-staging reg transition "$M" 3 Staging --report v3.intoto.json --as promoter.key.pem
say v3 "None -> Staging with that report: refused as expected, exit 1 ($(refusal))"
payload v3.intoto.json | sed '0,/"result": "FAILED"/s//"result": "PASSED"/' >v3-edited.payload
cmp -s v3-edited.payload <(payload v3.intoto.json) && unexpected "editing v3's report changed nothing"
jq --arg p "$(base64 -w0 v3-edited.payload)" '.payload = $p' v3.intoto.json >v3-edited.intoto.json
rm v3-edited.payload
run 1 v3-edited-staging reg transition "$M" 3 Staging --report v3-edited.intoto.json --as promoter.key.pem
say v3 "v3's report edited to say PASSED (signature kept): refused as expected, exit 1 ($(refusal))"
run 1 v3-edited-verify "$SG" verify v3-edited.intoto.json --pubkey ci.pub.pem
grep -q '^result: INVALID' "$LOG" || unexpected "stagegate verify did not call the edited report INVALID"
jq -j .payload v3-edited.intoto.json | base64 -d >openssl/edited-payload.bin
jq -j '.signatures[0].sig' v3-edited.intoto.json | base64 -d >openssl/edited-sig.bin
pae openssl/type.txt openssl/edited-payload.bin >openssl/edited-pae.bin
run 1 v3-edited-openssl openssl dgst -sha256 -verify ci.pub.pem -signature openssl/edited-sig.bin \
    openssl/edited-pae.bin
grep -qx 'Verification failure' "$LOG" || unexpected "openssl did not say Verification failure"
say v3 "the edited report under stagegate verify: INVALID, exit 1; under openssl dgst -verify: Verification failure"
expect_stages v3-refused Archived Production None

# --- 6. rollback, history, audit log ----------------------------------------------------------
run 0 rollback reg rollback "$M" --as promoter.key.pem
expect_stages rollback Production Archived None
say rollback "v1 restored to Production, v2 archived, at promoter's signed request (gates not rerun: v1 passed them)"
run 0 history reg history "$M"
cp "$LOG" history.txt
reg --json history "$M" >history.json
N_EVENTS=$(jq '.events | length' history.json)
V3_STAGING=$(jq '[.events[] | select(.version == 3 and .to_stage == "Staging")] | length' history.json)
[ "$V3_STAGING" = 0 ] || unexpected "v3 entered Staging"
say history "$N_EVENTS audit events, each signed by the key named (v3 never entered Staging):"
ID_CI=$(openssl pkey -pubin -in ci.pub.pem -outform DER | sha256sum | cut -c1-64)
ID_PROMOTER=$(openssl pkey -pubin -in promoter.pub.pem -outform DER | sha256sum | cut -c1-64)
ID_APPROVER=$(openssl pkey -pubin -in approver.pub.pem -outform DER | sha256sum | cut -c1-64)
ID_ADMIN=$(openssl pkey -pubin -in admin.pub.pem -outform DER | sha256sum | cut -c1-64)
jq -r --arg ci "$ID_CI" --arg p "$ID_PROMOTER" --arg a "$ID_APPROVER" --arg adm "$ID_ADMIN" '
    .events[] |
    "             #\(.seq) " + (if .version > 0 then "v\(.version) " else "" end) + .action
    + (if .to_stage != "" and .action != "create-version" then " \(.from_stage) -> \(.to_stage)" else "" end)
    + " by " + ({($ci): "ci", ($p): "promoter", ($a): "approver", ($adm): "admin"}[.actor_key_id]
                // (if .actor_key_id == "" then "(unsigned)" else "key " + .actor_key_id[0:16] end))' \
    history.json
run 0 verify-log reg verify-log
say audit "verify-log: $(head -n1 <(grep 'audit log verified' "$LOG"))"

# --- 7. where to look ---------------------------------------------------------------------------
D=$OUT_ARG
say look "v2's passed gate: $D/v2.html (HTML), $D/v2.md (Markdown), $D/v2.junit.xml (JUnit), $D/v2.intoto.json (signed)"
say look "v3's failed gate: $D/v3.html, $D/v3.md, $D/v3.junit.xml; the edited report: $D/v3-edited.intoto.json"
say look "registry: $D/registry.db (stagegate registry --db $D/registry.db list); history: $D/history.txt; logs: $D/logs/"
say "done" "every step did what it should, in $((SECONDS - T0)) s"
