#!/usr/bin/env bash
# The nightly regression job (docs/nightly.md). For every model version in
# Staging or Production: run the gate against the dataset and policy named by
# the version's tags `dataset` and `policy`, record the run in the registry,
# compare it with the previous run of that version on the same machine
# fingerprint (the earlier runs of that version there are the noise band; on a
# version's first run, and on its next nights until it has 3 runs of its own there, also
# with the last run of the version it replaced in that stage), store the comparison's verdict with the run (regressed, improved,
# unchanged, or first when there was nothing to compare with), and write one trend
# page per model, which marks the nights stored as regressed. Latency repetitions
# come from the policy (default 5 x 2 s per version).
#
# Exit codes: 0 nothing regressed, 1 something regressed or a gate failed,
# 2 usage error or a version could not be run (missing tags, bad files).
set -uo pipefail

usage() {
    cat <<'EOF'
usage: scripts/nightly.sh --db REGISTRY.db --key SIGNER.key.pem --out DIR
                          [--pubkey SIGNER.pub.pem] [--cpus LIST] [--stages "Staging Production"]

  --db      the registry; each version to run needs the tags `dataset` (validation set
            HDF5) and `policy` (policy JSON): absolute paths, or relative to the
            directory that holds the registry database
  --key     the key that signs the nightly reports; the registry records a run only
            when the report verifies with --pubkey or a trusted signer key of the model
  --out     reports/, compare/ and trend/ are written below DIR
  --cpus    CPUs for the gate's evaluation and latency workers (e.g. 0-3)
Environment: STAGEGATE_BIN (default: stagegate on PATH, else this checkout's
build/release/cli/stagegate, built with cmake when missing);
STAGEGATE_PROGRESS=1|0 forces the progress line on stderr on or off (default:
on when stderr is a terminal).
Exit codes: 0 nothing regressed, 1 regressed or a gate failed, 2 usage or run error.
EOF
}

HERE=$(cd "$(dirname "$0")" && pwd)
SG=${STAGEGATE_BIN:-}
DB= KEY= OUT= PUB= CPUS= STAGES="Staging Production"
while [ $# -gt 0 ]; do
    case "$1" in
    --db) DB=${2:-}; shift 2 ;;
    --key) KEY=${2:-}; shift 2 ;;
    --out) OUT=${2:-}; shift 2 ;;
    --pubkey) PUB=${2:-}; shift 2 ;;
    --cpus) CPUS=${2:-}; shift 2 ;;
    --stages) STAGES=${2:-}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "nightly.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$DB" ] && [ -n "$KEY" ] && [ -n "$OUT" ] || { usage >&2; exit 2; }
command -v jq >/dev/null || { echo "nightly.sh: needs jq (apt-get install -y jq)" >&2; exit 2; }
if [ -z "$SG" ]; then
    # Installed, or else this checkout's Release build, built on first use.
    SG=$(command -v stagegate || true)
    if [ -z "$SG" ]; then
        SRC=$(cd "$HERE/.." && pwd)
        SG=$SRC/build/release/cli/stagegate
        if [ ! -x "$SG" ]; then
            echo "nightly.sh: building stagegate in $SRC/build/release (log: build/release.nightly.log)" >&2
            mkdir -p "$SRC/build" || exit 2
            { cmake -S "$SRC" -B "$SRC/build/release" -DCMAKE_BUILD_TYPE=Release &&
                cmake --build "$SRC/build/release" --target stagegate -j "$(nproc)"; } >"$SRC/build/release.nightly.log" 2>&1 ||
                { echo "nightly.sh: build failed, see $SRC/build/release.nightly.log (scripts/deps.sh installs what it needs)" >&2; exit 2; }
        fi
    fi
fi
command -v "$SG" >/dev/null || { echo "nightly.sh: stagegate binary '$SG' not found (set STAGEGATE_BIN)" >&2; exit 2; }
[ -f "$DB" ] || { echo "nightly.sh: registry $DB does not exist" >&2; exit 2; }
mkdir -p "$OUT/reports" "$OUT/compare" "$OUT/trend" || exit 2
# Absolute, as the registry records report paths: compare then prints both paths alike.
OUT=$(cd "$OUT" && pwd)
# One run at a time per output directory: two at once had written the same report names
# (the stamp is to the second), so each replaced the other's signed reports and the runs the
# registry recorded pointed at bytes that were not theirs.
exec 9>"$OUT/.nightly.lock" || { echo "nightly.sh: cannot create $OUT/.nightly.lock" >&2; exit 2; }
flock -n 9 || { echo "nightly.sh: another nightly run is writing to $OUT (it holds $OUT/.nightly.lock); not started" >&2; exit 2; }
DBDIR=$(cd "$(dirname "$DB")" && pwd)

# Progress goes to stderr, and by default only when stderr is a terminal: cron mail and CI
# logs stay clean. STAGEGATE_PROGRESS=1|0 overrides, as it does for stagegate itself.
case "${STAGEGATE_PROGRESS:-}" in
1) SHOW=1 ;; 0) SHOW=0 ;; *) if [ -t 2 ]; then SHOW=1; else SHOW=0; fi ;;
esac
progress() { if [ "$SHOW" = 1 ]; then printf '\r\033[K%s' "$*" >&2; fi; }
progress_done() { if [ "$SHOW" = 1 ]; then printf '\r\033[K' >&2; fi; }

# Runs a command with its output to FILE through FILE.part, renamed into place once the
# command has answered (exit 0 or 1); otherwise the part is removed, and so is FILE, whose
# earlier content would read as this night's. A full disk had left a truncated compare JSON
# where the trend page and the next night read it.
out_to() {
    local f=$1 r=0
    shift
    "$@" >"$f.part" || r=$?
    if [ "$r" -le 1 ]; then mv -f "$f.part" "$f" || { rm -f "$f.part"; r=2; }; fi
    [ "$r" -le 1 ] || rm -f "$f.part" "$f"
    return "$r"
}
# tsv_field VAR: VAR's @tsv field as it was. After @tsv every backslash starts \\, \t, \n or
# \r, which %b turns back into the character (printf -v: a trailing newline is kept too).
tsv_field() { printf -v "$1" '%b' "${!1}"; }
abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$DBDIR" "$1" ;; esac; }

# set_verdict NAME VERSION REPORT_SHA256 (VERDICT | --from COMPARE.json): stores the nightly
# verdict with the run, for the trend page's marks.
# intact PATH SHA256: the file still holds the bytes the registry recorded (empty PATH: nothing
# to check).
intact() {
    [ -z "$1" ] && return 0
    local got
    got=$(sha256sum <"$1" 2>/dev/null | cut -d' ' -f1) || got=""
    [ "$got" = "$2" ] && return 0
    echo "$name v$version: ERROR: $1 is not the report the registry recorded (sha256 ${got:-unreadable}, recorded $2); not compared" >&2
    return 1
}

set_verdict() {
    local name=$1 version=$2 sha=$3
    shift 3
    "$SG" registry set-run-verdict "$name" "$sha" "$@" --db "$DB" >/dev/null && return 0
    progress_done
    echo "$name v$version: ERROR: the nightly verdict could not be stored with the run" >&2
    return 1
}

# name<TAB>version<TAB>stage<TAB>dataset<TAB>policy, one line per version to run.
LIST=$(mktemp)
trap 'rm -f "$LIST"' EXIT
for stage in $STAGES; do
    "$SG" registry search "stage = '$stage'" --db "$DB" --json |
        jq -r '.versions[] | [.name, (.version|tostring), .stage, (.tags.dataset // ""), (.tags.policy // "")] | @tsv' \
            >>"$LIST" || { echo "nightly.sh: cannot list $stage versions in $DB" >&2; exit 2; }
done

total=$(wc -l <"$LIST")
# A version is also compared with the one it replaced until it has this many earlier runs of
# its own on a fingerprint: the noise band compare needs (docs/nightly.md).
SETTLE=3
stamp=$(date -u +%Y%m%dT%H%M%SZ)
# ...and a run never takes the stamp of an earlier one (two nights within one second).
while compgen -G "$OUT/reports/*-$stamp.intoto.json" >/dev/null; do
    sleep 1
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
done
start=$(date +%s)
i=0 regressed=0 failed=0 errors=0
models=()
# The list is read on fd 3 so the commands in the loop cannot swallow it from stdin.
while IFS=$'\t' read -r -u 3 name version stage dataset policy; do
    # @tsv wrote \\, \t, \n and \r for a backslash, tab, newline and CR in a value (a tag
    # path "val\set.h5" had reached the gate as "val\\set.h5"): undone here.
    tsv_field name && tsv_field dataset && tsv_field policy
    i=$((i + 1))
    elapsed=$(($(date +%s) - start))
    eta=""
    [ "$i" -gt 1 ] && eta=", ETA $((elapsed * (total - i + 1) / (i - 1)))s"
    progress "[$i/$total] $name v$version ($stage): gate, ${elapsed}s elapsed$eta"
    [[ " ${models[*]-} " == *" $name "* ]] || models+=("$name")
    if [ -z "$dataset" ] || [ -z "$policy" ]; then
        progress_done
        echo "$name v$version: ERROR: set the version tags 'dataset' and 'policy' (stagegate registry set-tag)" >&2
        errors=$((errors + 1))
        continue
    fi
    report="$OUT/reports/$name-v$version-$stamp.intoto.json"
    rc=0
    out_to "$OUT/reports/$name-v$version.txt" "$SG" gate --model "models:/$name/$version" \
        --data "$(abs "$dataset")" --policy "$(abs "$policy")" \
        --key "$KEY" --out "$report" --db "$DB" ${CPUS:+--cpus "$CPUS"} || rc=$?
    if [ "$rc" -ge 2 ] || [ ! -f "$report" ]; then
        progress_done
        echo "$name v$version: ERROR: gate could not run (exit $rc)" >&2
        errors=$((errors + 1))
        continue
    fi
    [ "$rc" = 1 ] && { failed=$((failed + 1)); echo "$name v$version ($stage): gate FAILED (see $report)"; }
    progress "[$i/$total] $name v$version ($stage): record and compare"
    run=$("$SG" registry record "$report" --model "$name" --version "$version" --db "$DB" ${PUB:+--pubkey "$PUB"} --json) || {
        progress_done
        echo "$name v$version: ERROR: the run could not be recorded" >&2
        errors=$((errors + 1))
        continue
    }
    fp=$(jq -r '.fingerprint' <<<"$run")
    # A policy without a latency run records no machine: its runs share the empty fingerprint.
    fp_shown=${fp:-"(none: no latency run)"}
    run_id=$(jq -r '.id' <<<"$run")
    run_sha=$(jq -r '.report_sha256' <<<"$run")
    # Which earlier runs count: with --pubkey, those signed by the same key as this one (compare
    # verifies both reports with it); without, those signed by the model's signers (the
    # registry verified them when it recorded them). A run anyone with write access recorded
    # with --pubkey and a key of their own is never the point of comparison, nor in the noise
    # band, and does not push the runs that count out of it.
    kid=$(jq -r '.signer_key_id' <<<"$run")
    counts='(.signer_key_id == $kid or ($pub == "" and .signer_trusted))'
    # The noise band compare gets: the newest HISTORY_RUNS of the runs that count.
    HISTORY_RUNS=20
    hist="$OUT/compare/$name-v$version.history.json"
    # Earlier runs of this version on this fingerprint: the newest is what we compare with, all
    # of them are the noise band (how far the figures wander while the code does not change).
    "$SG" registry runs "$name" --version "$version" --fingerprint "$fp" --db "$DB" --json |
        out_to "$hist" jq --argjson id "$run_id" --arg kid "$kid" --arg pub "$PUB" \
            --argjson keep "$HISTORY_RUNS" ".runs |= (map(select(.id != \$id and $counts)) | .[-\$keep:])" || {
        progress_done
        echo "$name v$version: ERROR: cannot read the run history" >&2
        errors=$((errors + 1))
        continue
    }
    # Tab-separated: a report path may hold spaces.
    IFS=$'\t' read -r prev prev_sha < <(jq -r '.runs | if length > 0 then .[-1] | [.report_path, .report_sha256] | @tsv else "" end' "$hist")
    tsv_field prev
    own_runs=$(jq '.runs | length' "$hist")
    # The last run of the version this one replaced in this stage on this fingerprint (the
    # newest run of another version recorded while in the same stage), and that version. A
    # newer version that is in the stage beside this one replaced nothing of it: Staging holds
    # several, and an unchanged v1 had been compared with v2 next to it, and flagged when v2
    # was faster. (An older one beside it is compared with: that is the new version's
    # predecessor; a newer one that has left the stage is too: a rollback replaced it.)
    beside=$(awk -F'\t' -v n="$name" -v s="$stage" '$1 == n && $3 == s { print $2 }' "$LIST" | jq -s -c .)
    IFS=$'\t' read -r rprev rversion rprev_sha < <("$SG" registry runs "$name" --fingerprint "$fp" --db "$DB" --json |
        jq -r --arg stage "$stage" --argjson v "$version" --argjson beside "$beside" --arg kid "$kid" --arg pub "$PUB" \
            "[.runs[] | select(.stage == \$stage and .version != \$v and (.version < \$v or (.version as \$r | \$beside | index(\$r) | not)) and $counts)] | if length > 0 then .[-1] | [.report_path, (.version|tostring), .report_sha256] | @tsv else \"\" end")
    tsv_field rprev
    # The reports compared with are the ones the registry recorded (it verified their
    # signatures then): a file changed since, in OUT/reports, is not compared with.
    if ! intact "$prev" "$prev_sha" || ! intact "$rprev" "$rprev_sha"; then
        progress_done
        errors=$((errors + 1))
        continue
    fi
    since="since the previous run"
    hist_arg=(--history "$hist")
    if [ -z "$prev" ]; then
        # A new version: compare with the last run of the version it replaced. A version
        # change is exactly when regressions arrive.
        hist_arg=()
        if [ -z "$rprev" ]; then
            progress_done
            echo "$name v$version ($stage): first run on fingerprint $fp_shown, nothing to compare"
            set_verdict "$name" "$version" "$run_sha" first || errors=$((errors + 1))
            continue
        fi
        echo "$name v$version ($stage): first run of v$version on fingerprint $fp_shown; compared with v$rversion, the version it replaced in $stage"
        prev=$rprev
        since="since v$rversion"
        rprev="" # compared with it already
    elif [ -n "$rprev" ] && [ "$own_runs" -ge "$SETTLE" ]; then
        rprev="" # the version has its own noise band: its own runs are the reference now
    fi
    # One file per night; NAME-vN.txt links to the newest. The same comparison as JSON
    # (NAME-vV-STAMP.json) gives the verdict stored with the run, which the trend page marks.
    cmp="$OUT/compare/$name-v$version-$stamp.txt"
    cmp_json="${cmp%.txt}.json"
    rc=0
    out_to "$cmp" "$SG" compare "$prev" "$report" --fail-on-regression ${PUB:+--pubkey "$PUB"} "${hist_arg[@]}" || rc=$?
    # exit 1 is a regression only with a comparison written: a report that does not verify is
    # exit 1 too, with nothing on stdout (its empty file had been linked as the comparison)
    [ "$rc" != 1 ] || [ -s "$cmp" ] || { rc=2; rm -f "$cmp"; }
    # the newest comparison is linked only once there is one (a failed compare had left the
    # link dangling, and the last good comparison unlinked)
    [ "$rc" -gt 1 ] || ln -sfn "$(basename "$cmp")" "$OUT/compare/$name-v$version.txt"
    verdict_json=$cmp_json
    if [ "$rc" -le 1 ]; then
        jrc=0
        out_to "$cmp_json" "$SG" compare "$prev" "$report" --json ${PUB:+--pubkey "$PUB"} "${hist_arg[@]}" || jrc=$?
        [ "$jrc" = 0 ] || { rc=2; echo "$name v$version: ERROR: compare --json failed (exit $jrc)" >&2; }
    fi
    # Until the version has a noise band of its own (SETTLE earlier runs here), each night is
    # also compared with the version it replaced: a slowdown that the first night's noise hid
    # gets more nights to show, instead of becoming the version's own baseline.
    if [ -n "$rprev" ] && [ "$rc" -le 1 ]; then
        scmp="$OUT/compare/$name-v$version-vs-v$rversion-$stamp.txt"
        src=0
        out_to "$scmp" "$SG" compare "$rprev" "$report" --fail-on-regression ${PUB:+--pubkey "$PUB"} || src=$?
        [ "$src" != 1 ] || [ -s "$scmp" ] || { src=2; rm -f "$scmp"; }
        echo "$name v$version ($stage): night $((own_runs + 1)) of its first $SETTLE on fingerprint $fp_shown; also compared with v$rversion, the version it replaced in $stage"
        if [ "$src" -le 1 ]; then
            jrc=0
            out_to "${scmp%.txt}.json" "$SG" compare "$rprev" "$report" --json ${PUB:+--pubkey "$PUB"} || jrc=$?
            [ "$jrc" = 0 ] || src=2
        fi
        if [ "$src" -ge 2 ]; then
            rc=2
        elif [ "$src" = 1 ]; then
            if [ "$rc" = 0 ]; then cmp=$scmp; since="since v$rversion"; fi
            rc=1
            verdict_json=${scmp%.txt}.json
        fi
    fi
    if [ "$rc" -le 1 ]; then
        set_verdict "$name" "$version" "$run_sha" --from "$verdict_json" || errors=$((errors + 1))
    fi
    progress_done
    # Latency from repetitions too short to judge (a policy with min_queries and no
    # duration_s) is said on the line, not left to look like "unchanged".
    unjudged=""
    if [ "$rc" = 0 ] && [ -s "$cmp_json" ]; then
        unjudged=$(jq -r '.min_repetition_s as $m | [.shortest_repetition_s.old, .shortest_repetition_s.new]
            | map(select(. != null)) | if length > 0 and min < $m
            then " (latency not judged: repetitions timed for \(min * 1000 * 1000 | round / 1000) ms, under the \($m) s a verdict needs; set the policy'"'"'s duration_s)"
            else "" end' "$cmp_json" 2>/dev/null || true)
    fi
    case "$rc" in
    0) echo "$name v$version ($stage): nothing regressed $since$unjudged" ;;
    1) regressed=$((regressed + 1)); echo "$name v$version ($stage): REGRESSED"; sed 's/^/    /' "$cmp" ;;
    *) errors=$((errors + 1)); echo "$name v$version: ERROR: compare failed (exit $rc); no verdict stored" >&2 ;;
    esac
done 3<"$LIST"

for name in "${models[@]}"; do
    progress "trend page for $name"
    "$SG" trend "$name" --html "$OUT/trend/$name.html" --db "$DB" 2>/dev/null ||
        { errors=$((errors + 1)); echo "$name: ERROR: trend page not written" >&2; }
done
progress_done
echo "nightly: $total version(s), $regressed regressed, $failed gate(s) failed, $errors error(s); trend pages in $OUT/trend"
[ "$errors" -gt 0 ] && exit 2
[ "$regressed" -gt 0 ] || [ "$failed" -gt 0 ] && exit 1
exit 0
