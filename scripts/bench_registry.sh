#!/usr/bin/env bash
# Registry throughput and latency on both storage backends:
#   - get per second (1 and 8 concurrent connections);
#   - gated promotions per second with 1 and 8 concurrent connections: each one is a
#     transition into Staging that verifies a signed DSSE report naming the version's digest;
#   - p50/p99 of one such transition.
# PostgreSQL: a private cluster (tests/registry/pg_cluster.sh; Debian's postgresql-15), or
# --pg URI for a server of your own (its database must be empty).
# Connections are threads of one process (tests/registry/registry_load), so the figures are
# the registry's, not process start-up's; the last column is one CLI process for scale.
# usage: scripts/bench_registry.sh [--pg URI] [--n PROMOTIONS] [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PG_URI="" N=800 BUILD=""
while [ $# -gt 0 ]; do
    case $1 in
    --pg) PG_URI=$2; shift 2 ;;
    --n) N=$2; shift 2 ;;
    *) BUILD=$1; shift ;;
    esac
done
BUILD=${BUILD:-${STAGEGATE_BUILD_DIR:-$HERE/../build/release}}
[ -d "$BUILD" ] && BUILD=$(cd "$BUILD" && pwd)
BIN=${STAGEGATE_BIN:-$BUILD/cli/stagegate}
MKREP=$BUILD/tests/registry/registry_make_report
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "bench_registry.sh: no stagegate binary at $BIN (build first or pass BUILD_DIR)" >&2; exit 2; }
[ -x "$MKREP" ] || { echo "bench_registry.sh: no $MKREP (build the tests)" >&2; exit 2; }
T=$(mktemp -d)
STATE=$T/pg.env
cleanup() { [ -n "$PG_URI" ] || bash "$HERE/../tests/registry/pg_cluster.sh" stop "$STATE"; rm -rf "$T"; }
trap cleanup EXIT
if [ -z "$PG_URI" ]; then
    SG_PG_OWNER_PID=$$ bash "$HERE/../tests/registry/pg_cluster.sh" start "$STATE" >/dev/null
    . "$STATE"
    PG_URI="postgresql://$PG_USER@/postgres?host=$PG_HOST"
fi
cd "$T"
"$BIN" keygen --out signer >/dev/null
CLIENTS=8

LOAD=$BUILD/tests/registry/registry_load
[ -x "$LOAD" ] || { echo "bench_registry.sh: no $LOAD (build the tests)" >&2; exit 2; }
# field NAME LINE: a value from registry_load's output line
field() { echo "$2" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
load() { # load DB MODE CONNS FIRST LAST: registry_load's line; any failure stops the benchmark
    local out
    out=$("$LOAD" "$1" bench "$2" "$3" "$4" "$5") || { echo "bench_registry.sh: registry_load failed" >&2; exit 1; }
    [ "$(field ok "$out")" = $(($5 - $4 + 1)) ] || { echo "bench_registry.sh: $out" >&2; exit 1; }
    echo "$out"
}

bench() { # bench NAME DB
    local name=$1 db=$2 R="$BIN registry --db $2"
    $R create-model bench --signer signer.pub.pem >/dev/null
    for i in $(seq 1 "$N"); do
        printf 'artifact %s %s\n' "$name" "$i" > a$i.bin
        $R create-version bench a$i.bin >/dev/null
        "$MKREP" signer.key.pem "$(sha256sum a$i.bin | cut -c1-64)" PASSED now r$i.json
    done
    local half=$((N / 2)) g1 g8 p1 p8 cli t0 lats=()
    g1=$(load "$db" get 1 1 "$N")
    g8=$(load "$db" get "$CLIENTS" 1 "$N")
    p1=$(load "$db" staging 1 1 $half)
    p8=$(load "$db" staging "$CLIENTS" $((half + 1)) "$N")
    # one `stagegate registry get` process: start, connect, read, exit
    for i in $(seq 1 41); do
        t0=$(date +%s%N); $R get bench 1 >/dev/null; lats+=($((($(date +%s%N) - t0) / 1000)))
    done
    cli=$(printf '%s\n' "${lats[@]}" | sort -n | sed -n 21p)
    $R verify-log >/dev/null || { echo "bench_registry.sh: verify-log failed on $name" >&2; exit 1; }
    printf '%-11s %8.0f %8.0f %9.0f %9.0f %15s %15s %9.1f\n' "$name" \
        "$(field ops_per_s "$g1")" "$(field ops_per_s "$g8")" "$(field ops_per_s "$p1")" "$(field ops_per_s "$p8")" \
        "$(field p50_ms "$p1") / $(field p99_ms "$p1")" "$(field p50_ms "$p8") / $(field p99_ms "$p8")" \
        "$(echo "$cli" | awk '{ print $1 / 1000 }')"
}

echo "registry benchmark: $N gated promotions per backend (half on 1 connection, half on $CLIENTS), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-11s %8s %8s %9s %9s %15s %15s %9s\n' backend "get/s" "get/s" "promo/s" "promo/s" "transition ms" "transition ms" "CLI get"
printf '%-11s %8s %8s %9s %9s %15s %15s %9s\n' "" "1 conn" "$CLIENTS conn" "1 conn" "$CLIENTS conn" "p50 / p99" "p50 / p99" "p50 ms"
bench sqlite "$T/bench.db"
bench postgresql "$PG_URI"
echo "promo: a transition into Staging that verifies a signed report (DSSE signature, artifact"
echo "digest, result, age); one connection per thread of one process (tests/registry/registry_load)."
echo "CLI get: one 'stagegate registry get' process, start to exit, on a free connection."
