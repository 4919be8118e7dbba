#!/bin/bash
# Load on `stagegate serve`: N concurrent clients (default 8) for D seconds (default 30), each
# on its own keep-alive connection (tests/server/server_load.c), doing a mix of reads (model-versions/get 45%,
# model-versions/search with a filter 25%, get-latest-versions 10%) and gated promotions
# (20%: one step of create-version -> Staging with the uploaded report, verified ->
# approval by a second principal -> Production with archive_existing_versions). Prints
# requests per second, reads and completed promotions per second, p50/p99 per kind, the
# requests that failed unexpectedly, the CPU time per request of the database (with --pg),
# the server and the load client, and the audit chain's verification at the end.
#
#   ./scripts/bench_server.sh [--db URI | --pg] [--clients N] [--duration S] [--threads N]
#                             [--write-share F] [--promotion-rate R [--writers W]]
#
# --pg: the server holds a PostgreSQL registry on a private cluster that this script starts
# (tests/registry/pg_cluster.sh: initdb in a temporary directory, as the unprivileged user
# nobody when run as root, Unix socket only, fsync on) and always stops at exit.
# --threads: the server's worker threads (default 8, one per client: with PostgreSQL a writer
# waiting for the database's write lock holds its thread, so 4 threads left readers waiting).
# --write-share: the share of promotion steps in the mix (default 0.2; 0 = reads only, the
# rest split between the reads in the proportions above).
# --promotion-rate: open loop instead of the closed-loop mix: W clients (--writers, default 4)
# only promote, paced so that together they start R promotions per second, while the other
# clients only read as fast as they can; it measures the reads served while R promotions per
# second are sustained (the output says which rate was reached). The default is the mix.
# --db: the registry the server holds (default a fresh SQLite file in the bench folder).
# STAGEGATE_BUILD_DIR picks the build folder (default build/release; it needs the tests'
# report maker, so STAGEGATE_TESTS must be on); BENCH_DIR the work folder (default
# build/bench/server). A benchmark, not a test: it fails only when a request failed
# unexpectedly or the audit log does not verify.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="" PG=0 CLIENTS=8 DURATION=30 THREADS=8 WRITES=0.2 RATE="" WRITERS=4
while [ $# -gt 0 ]; do
    case $1 in
        --db) DB=$2; shift 2 ;;
        --pg) PG=1; shift ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --write-share) WRITES=$2; shift 2 ;;
        --promotion-rate) RATE=$2; shift 2 ;;
        --writers) WRITERS=$2; shift 2 ;;
        *) echo "usage: $0 [--db URI | --pg] [--clients N] [--duration S] [--threads N] [--write-share F] [--promotion-rate R [--writers W]]" >&2; exit 2 ;;
    esac
done
BUILD=${STAGEGATE_BUILD_DIR:-build/release}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target stagegate registry_make_report server_load >/dev/null
SG=$(realpath "$BUILD/cli/stagegate")
LOAD=$(realpath "$BUILD/tests/server/server_load")
MKREP=$(realpath "$BUILD/tests/registry/registry_make_report")
PG_CLUSTER=$(realpath tests/registry/pg_cluster.sh)
B=$(realpath -m "${BENCH_DIR:-build/bench/server}")
rm -rf "$B" && mkdir -p "$B/art"
cd "$B"
SPID="" PG_STATE=""
cleanup() {
    [ -z "$SPID" ] || { kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; }
    [ -z "$PG_STATE" ] || bash "$PG_CLUSTER" stop "$PG_STATE" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$PG" = 1 ]; then
    [ -z "$DB" ] || { echo "$0: --pg and --db exclude each other" >&2; exit 2; }
    PG_STATE=$B/pg_cluster.env
    SG_PG_OWNER_PID=$$ bash "$PG_CLUSTER" start "$PG_STATE" >&2
    . "$PG_STATE"
    "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtX -c "CREATE DATABASE sg_bench" >/dev/null
    # BENCH_PG_SETTINGS="name=value ...": database settings for a diagnostic run (for example
    # synchronous_commit=off to see what the commit's WAL flush costs); never for the figures.
    for kv in ${BENCH_PG_SETTINGS:-}; do
        "$PG_BIN/psql" -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtX \
            -c "ALTER DATABASE sg_bench SET ${kv%%=*} = '${kv#*=}'" >/dev/null
        echo "== diagnostic setting: $kv" >&2
    done
    DB="postgresql://$PG_USER@/sg_bench?host=$PG_HOST"
fi
DB=${DB:-$B/registry.db}

for k in signer alice bob; do "$SG" keygen --out $k >/dev/null; done
"$SG" token add --tokens tokens --principal alice.pub.pem --name alice >alice.token
"$SG" token add --tokens tokens --principal bob.pub.pem --name bob >bob.token
head -c 65536 /dev/urandom >art/model.bin
"$MKREP" signer.key.pem "$(sha256sum art/model.bin | cut -c1-64)" PASSED now model.report
: >server.log
"$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens tokens --artifact-root art \
    --threads "$THREADS" --access-log access.log 2>>server.log &
SPID=$!
for _ in $(seq 100); do grep -q "listening on" server.log && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' server.log)
[ -n "$PORT" ] || { cat server.log >&2; exit 2; }
echo "== $CLIENTS clients, ${DURATION} s, server with $THREADS threads, registry $DB" >&2
[ -z "$RATE" ] || echo "== open loop: $WRITERS writers paced at $RATE promotions/s, $((CLIENTS - WRITERS)) readers" >&2

# CPU time (clock ticks: user + system, and of exited children) of the given processes.
cpu_ticks() {
    local t=0 p f
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        read -r -a f <<<"$(sed 's/^.*) //' "/proc/$p/stat")"
        t=$((t + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$t"
}
# The database's processes: the postmaster and its children (backends, writers).
pg_pids() {
    [ -n "$PG_STATE" ] || return 0
    local pm
    pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return 0
    echo "$pm" $(pgrep -P "$pm" || true)
}
echo "load before: $(uptime | sed 's/.*load average/load average/')"
rc=0
pg0=$(cpu_ticks $(pg_pids)) srv0=$(cpu_ticks "$SPID")
# The clients are tests/server/server_load (C, one thread and one keep-alive connection
# each): a load generator in Python spent about a sixth of the two cores at 1,000
# requests/s, CPU the server and PostgreSQL then did not have.
/usr/bin/time -f "%U %S" -o client.cpu "$LOAD" "$PORT" "$CLIENTS" "$DURATION" "$WRITES" "$B" \
    ${RATE:+"$RATE" "$WRITERS"} |
    tee load.out || rc=$?
pg1=$(cpu_ticks $(pg_pids)) srv1=$(cpu_ticks "$SPID")
echo "load after:  $(uptime | sed 's/.*load average/load average/')"
# The CPU account: what each request cost the database, the server and the load client (a
# figure that other work on the machine changes far less than the rates above).
n=$(sed -n 's/^requests: *\([0-9]*\) in.*/\1/p' load.out)
if [ -n "$n" ] && [ "$n" -gt 0 ]; then
    hz=$(getconf CLK_TCK)
    awk -v pg=$((pg1 - pg0)) -v srv=$((srv1 - srv0)) -v n="$n" -v hz="$hz" \
        -v cl="$(awk 'END { print $1 + $2 }' client.cpu 2>/dev/null || echo 0)" \
        'BEGIN { printf "cpu:        per request: database %.3f ms, server %.3f ms, load client %.3f ms%s\n",
                 pg * 1000 / hz / n, srv * 1000 / hz / n, cl * 1000 / n,
                 pg ? "" : " (the database is not measured with --db)" }'
fi
kill -TERM "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
SPID=""
# The server's own account of its writes: queueing for the write lock vs time in the registry.
grep "writes: mean" access.log | sed 's/^stagegate serve: /server:     /' || true
if "$SG" registry verify-log --db "$DB"; then :; else echo "audit log does NOT verify" >&2; rc=1; fi
echo "access log: $(wc -l <access.log) lines" >&2
exit $rc
