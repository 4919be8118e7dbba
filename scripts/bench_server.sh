#!/bin/bash
# Load on `stagegate serve`: N concurrent clients (default 8) for D seconds (default 30), each
# on its own keep-alive connection, doing a mix of reads (model-versions/get 45%,
# model-versions/search with a filter 25%, get-latest-versions 10%) and gated promotions
# (20%: one step of create-version -> Staging with the uploaded report, verified ->
# approval by a second principal -> Production with archive_existing_versions). Prints
# requests per second, reads and completed promotions per second, p50/p99 per kind, the
# requests that failed unexpectedly, and the audit chain's verification at the end.
#
#   ./scripts/bench_server.sh [--db URI | --pg] [--clients N] [--duration S] [--threads N]
#                             [--write-share F]
#
# --pg: the server holds a PostgreSQL registry on a private cluster that this script starts
# (tests/registry/pg_cluster.sh: initdb in a temporary directory, as the unprivileged user
# nobody when run as root, Unix socket only, fsync on) and always stops at exit.
# --write-share: the share of promotion steps in the mix (default 0.2; 0 = reads only, the
# rest split between the reads in the proportions above).
# --db: the registry the server holds (default a fresh SQLite file in the bench folder).
# STAGEGATE_BUILD_DIR picks the build folder (default build/release; it needs the tests'
# report maker, so STAGEGATE_TESTS must be on); BENCH_DIR the work folder (default
# build/bench/server). A benchmark, not a test: it fails only when a request failed
# unexpectedly or the audit log does not verify.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="" PG=0 CLIENTS=8 DURATION=30 THREADS=4 WRITES=0.2
while [ $# -gt 0 ]; do
    case $1 in
        --db) DB=$2; shift 2 ;;
        --pg) PG=1; shift ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --write-share) WRITES=$2; shift 2 ;;
        *) echo "usage: $0 [--db URI | --pg] [--clients N] [--duration S] [--threads N] [--write-share F]" >&2; exit 2 ;;
    esac
done
BUILD=${STAGEGATE_BUILD_DIR:-build/release}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target stagegate registry_make_report >/dev/null
SG=$(realpath "$BUILD/cli/stagegate")
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
"$SG" serve --db "$DB" --listen 127.0.0.1:0 --tokens tokens --artifact-root art \
    --threads "$THREADS" --access-log access.log 2>server.log &
SPID=$!
for _ in $(seq 100); do grep -q "listening on" server.log && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' server.log)
[ -n "$PORT" ] || { cat server.log >&2; exit 2; }
echo "== $CLIENTS clients, ${DURATION} s, server with $THREADS threads, registry $DB" >&2

echo "load before: $(uptime | sed 's/.*load average/load average/')"
rc=0
/usr/bin/python3 - "$PORT" "$CLIENTS" "$DURATION" "$(cat alice.token)" "$(cat bob.token)" \
    "$B" "$WRITES" <<'PY' || rc=$?
import http.client, json, multiprocessing as mp, random, sys, time, urllib.parse
port, clients, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
alice, bob, work = sys.argv[4], sys.argv[5], sys.argv[6]
reads_share = 1.0 - float(sys.argv[7])
M = "/api/2.0/mlflow/"
RUN = str(int(time.time()))

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

def call(c, token, method, path, body=None):
    h = {"Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    t0 = time.perf_counter()
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    payload = r.read()
    return r.status, payload, time.perf_counter() - t0

def setup(i):
    c = conn()
    name = f"bench-{RUN}-{i}"
    pol = {"signers": [open(f"{work}/signer.pub.pem").read()],
           "promoters": {"Production": [open(f"{work}/alice.pub.pem").read()]},
           "approvers": [open(f"{work}/bob.pub.pem").read()], "require_approval": True}
    s, p, _ = call(c, alice, "POST", M + "registered-models/create", {"name": name, "stagegate_policy": pol})
    assert s == 200, p
    s, p, _ = call(c, alice, "POST", "/api/stagegate/reports", open(f"{work}/model.report", "rb").read())
    assert s == 200, p
    s, p, _ = call(c, alice, "POST", M + "model-versions/create", {"name": name, "source": "model.bin"})
    assert s == 200, p
    return name

def client(i, names, q):
    random.seed(i)
    c = conn()
    name = names[i]
    lat = {"read": [], "write": []}
    fails, promotions, step, version = [], 0, 0, 1
    end = time.monotonic() + duration
    while time.monotonic() < end:
        x = random.random()
        x = x / reads_share * 0.8 if x < reads_share else 0.9
        other = names[random.randrange(len(names))]
        if x < 0.45:
            kind, req = "read", ("GET", M + f"model-versions/get?name={other}&version=1", None, alice)
        elif x < 0.70:
            f = urllib.parse.quote(f"name = '{other}' AND stage = 'Production'")
            kind, req = "read", ("GET", M + f"model-versions/search?filter={f}", None, alice)
        elif x < 0.80:
            kind, req = "read", ("POST", M + "registered-models/get-latest-versions",
                                 {"name": other, "stages": ["Production", "Staging"]}, alice)
        else:
            kind = "write"
            if step == 0:
                req = ("POST", M + "model-versions/create", {"name": name, "source": "model.bin"}, alice)
            elif step == 1:
                req = ("POST", M + "model-versions/transition-stage",
                       {"name": name, "version": str(version), "stage": "Staging"}, alice)
            elif step == 2:
                req = ("POST", "/api/stagegate/approve", {"name": name, "version": str(version)}, bob)
            else:
                req = ("POST", M + "model-versions/transition-stage",
                       {"name": name, "version": str(version), "stage": "Production",
                        "archive_existing_versions": True}, alice)
        method, path, body, token = req
        try:
            s, p, dt = call(c, token, method, path, body)
        except Exception as e:  # a dropped connection counts as a failure
            fails.append(f"{method} {path}: {e}")
            c = conn()
            continue
        lat[kind].append(dt)
        if s != 200:
            fails.append(f"{method} {path}: HTTP {s} {p[:200]!r}")
            continue
        if kind == "write":
            if step == 0:
                version = int(json.loads(p)["model_version"]["version"])
            if step == 3:
                promotions += 1
            step = (step + 1) % 4
    q.put((lat, fails, promotions))

names = [setup(i) for i in range(clients)]
q = mp.Queue()
procs = [mp.Process(target=client, args=(i, names, q)) for i in range(clients)]
t0 = time.monotonic()
for p in procs:
    p.start()
results = [q.get() for _ in procs]
for p in procs:
    p.join()
wall = time.monotonic() - t0
reads = sorted(x for r in results for x in r[0]["read"])
writes = sorted(x for r in results for x in r[0]["write"])
fails = [f for r in results for f in r[1]]
promos = sum(r[2] for r in results)
def pct(v, p):
    return v[min(len(v) - 1, int(p * len(v)))] * 1e3 if v else float("nan")
print(f"requests:   {len(reads) + len(writes)} in {wall:.1f} s = {(len(reads) + len(writes)) / wall:.0f} req/s")
print(f"reads:      {len(reads) / wall:.0f} /s   p50 {pct(reads, .5):.2f} ms  p99 {pct(reads, .99):.2f} ms")
print(f"writes:     {len(writes) / wall:.0f} /s   p50 {pct(writes, .5):.2f} ms  p99 {pct(writes, .99):.2f} ms")
print(f"promotions: {promos} gated promotions to Production = {promos / wall:.1f} /s "
      "(each: create-version, Staging with a verified report, approval, Production)")
print(f"failures:   {len(fails)}")
for f in fails[:10]:
    print("  " + f)
sys.exit(1 if fails else 0)
PY
echo "load after:  $(uptime | sed 's/.*load average/load average/')"
kill -TERM "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
SPID=""
# The server's own account of its writes: queueing for the write lock vs time in the registry.
grep "writes: mean" access.log | sed 's/^stagegate serve: /server:     /' || true
if "$SG" registry verify-log --db "$DB"; then :; else echo "audit log does NOT verify" >&2; rc=1; fi
echo "access log: $(wc -l <access.log) lines" >&2
exit $rc
