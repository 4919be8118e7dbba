#!/usr/bin/env bash
# The project's shell scripts (tests and scripts/) hold no pipeline that ends in an early-exiting
# grep (-q, --quiet, -m) under pipefail. grep exits at its first match; a writer still writing
# then dies of SIGPIPE, and pipefail turns the match into a failure. CI failed that way once
# ("TRUNCATE of the audit log was not refused" while quoting the refusal), and a negated or
# &&-guarded check can pass silently the same way. Use a here-string, a grep that reads all of
# its input (grep >/dev/null), or a test of $(...) instead.
set -euo pipefail
: "${STAGEGATE_SOURCE_DIR:?}"
cd "$STAGEGATE_SOURCE_DIR"
bad=0
checked=0
while IFS= read -r -d '' f; do
    grep -Eq '^[^#]*(set -[a-z]*o pipefail|set -o pipefail|shopt -so pipefail)' "$f" || continue
    checked=$((checked + 1))
    # a single | (not ||), then grep with a quiet or max-count flag among its options
    hits=$(grep -nE '(^|[^|])\|[[:space:]]*grep([[:space:]]+-[A-Za-z]+)*[[:space:]]+(-[A-Za-z]*[qm][A-Za-z]*|--quiet|--silent|--max-count)' "$f" |
        grep -vE '^[0-9]+:[[:space:]]*#' || true)
    if [ -n "$hits" ]; then
        while IFS= read -r h; do echo "$f:$h" >&2; done <<<"$hits"
        bad=1
    fi
done < <(find tests scripts .ci -type f \( -name '*.sh' -o -name run \) -print0)
[ "$checked" -ge 20 ] || { echo "FAIL: only $checked scripts use pipefail; the lint looked in the wrong place" >&2; exit 1; }
[ "$bad" = 0 ] || { echo "FAIL: early-exiting grep at the end of a pipeline under pipefail (above)" >&2; exit 1; }
echo "ok: $checked pipefail scripts, no early-exiting grep in a pipeline"
