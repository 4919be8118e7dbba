#!/bin/bash
# A private PostgreSQL 15 cluster for the registry tests.
#
#   pg_cluster.sh start STATE   initdb in a fresh temporary directory, start the server on a
#                               Unix socket in it (no TCP port), write STATE (shell variables:
#                               PG_DIR, PG_HOST, PG_USER, PG_BIN, PG_RUN)
#   pg_cluster.sh stop STATE    stop the server and remove the directory
#   pg_cluster.sh kill STATE    SIGKILL every server process (crash tests), then
#   pg_cluster.sh restart STATE start it again on the same data
#
# PostgreSQL refuses to run as root, so as root the server runs as an unprivileged user
# ($SG_PG_USER, default nobody). The binaries are Debian's postgresql-15 (apt-get install
# postgresql-15, or scripts/deps.sh); $SG_PG_BIN overrides their directory. A missing server
# is an error, never a skipped test. `start` also leaves a watchdog that stops the cluster
# when the process that started it (ctest) exits, so an interrupted run leaves no server.
set -euo pipefail
cmd=${1:?usage: pg_cluster.sh start|stop|kill|restart STATE}
state=${2:?usage: pg_cluster.sh start|stop|kill|restart STATE}
PG_BIN=${SG_PG_BIN:-/usr/lib/postgresql/15/bin}

# (from /: the caller's directory may be one the server's user cannot enter)
as_owner() {
    if [ -n "$PG_RUN" ]; then (cd / && runuser -u "$PG_RUN" -- "$@"); else "$@"; fi
}

server_start() {
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses= -c unix_socket_directories=$PG_DIR -c fsync=on" start >/dev/null
}

case $cmd in
start)
    [ -x "$PG_BIN/initdb" ] || { echo "pg_cluster: no PostgreSQL server in $PG_BIN (apt-get install postgresql-15)" >&2; exit 1; }
    PG_RUN=""
    if [ "$(id -u)" = 0 ]; then PG_RUN=${SG_PG_USER:-nobody}; fi
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sgpg.XXXXXX")
    [ -z "$PG_RUN" ] || chown "$PG_RUN" "$PG_DIR"
    chmod 755 "$PG_DIR"
    PG_USER=stagegate
    PG_HOST=$PG_DIR
    if ! as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust --no-instructions \
        --locale=C.UTF-8 --encoding=UTF8 --data-checksums >"$PG_DIR/initdb.log" 2>&1; then
        cat "$PG_DIR/initdb.log" >&2; rm -rf "$PG_DIR"; exit 1
    fi
    {
        printf 'PG_DIR=%q\nPG_HOST=%q\nPG_USER=%q\nPG_BIN=%q\nPG_RUN=%q\n' \
            "$PG_DIR" "$PG_HOST" "$PG_USER" "$PG_BIN" "$PG_RUN"
    } >"$state"
    if ! server_start; then
        cat "$PG_DIR/server.log" >&2; rm -rf "$PG_DIR" "$state"; exit 1
    fi
    # The watchdog: whoever started us (ctest) exits -> the cluster goes too.
    owner=${SG_PG_OWNER_PID:-$PPID}
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 2; done
        [ -d "$2" ] || exit 0
        "$4" -D "$2/data" stop -m immediate >/dev/null 2>&1 ||
            runuser -u "$3" -- "$4" -D "$2/data" stop -m immediate >/dev/null 2>&1
        rm -rf "$2"' _ "$owner" "$PG_DIR" "${PG_RUN:-root}" "$PG_BIN/pg_ctl" \
        </dev/null >/dev/null 2>&1 &
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on $PG_HOST"
    ;;
stop)
    [ -f "$state" ] || exit 0
    . "$state"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -t 30 stop -m fast >/dev/null 2>&1 ||
        as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$PG_DIR" "$state"
    ;;
kill)
    # The whole server at once, as a crash or the OOM killer would: postmaster and backends,
    # first as listed by parentage (quick: a crash test kills inside a paused transaction).
    # Every server process runs in the data directory, and rounds over that go on until one
    # finds none: a backend forked between the listing and the kill would otherwise survive,
    # keep the shared memory attached (the restart is refused) and can block its client
    # forever on a lock a killed process held. Then wait until each is reaped, not a zombie:
    # the restart refuses a socket lock file whose process still exists.
    . "$state"
    pid=$(head -1 "$PG_DIR/data/postmaster.pid")
    killed="$pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"
    kill -9 $killed 2>/dev/null || true
    data=$(readlink -f "$PG_DIR/data")
    for _ in $(seq 1 100); do
        pids=$(find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$data" 2>/dev/null |
            cut -d/ -f3 | tr '\n' ' ' || true)
        [ -z "$pids" ] && break
        kill -9 $pids 2>/dev/null || true
        killed="$killed $pids"
        sleep 0.1
    done
    [ -z "$pids" ] || { echo "pg_cluster: server processes outlived SIGKILL: $pids" >&2; exit 1; }
    for _ in $(seq 1 100); do
        alive=0
        for p in $killed; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    ;;
restart)
    . "$state"
    rm -f "$PG_DIR/data/postmaster.pid"
    server_start
    ;;
*)
    echo "usage: pg_cluster.sh start|stop|kill|restart STATE" >&2
    exit 2
    ;;
esac
