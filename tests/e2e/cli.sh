#!/bin/bash
# The CLI contract: --help/--version, usage errors exit 2 with one line on stderr.
set -u
SG=${STAGEGATE_BIN:?}
fail=0
expect() { # expect CODE DESCRIPTION -- command...
    want=$1; what=$2; shift 3
    out=$("$@" 2>"$tmp/err"); got=$?
    nerr=$(wc -l <"$tmp/err")
    if [ "$got" != "$want" ]; then
        echo "FAIL $what: exit $got, want $want ($(cat "$tmp/err"))"; fail=1
    elif [ "$want" = 2 ] && [ "$nerr" != 1 ]; then
        echo "FAIL $what: $nerr lines on stderr, want 1"; fail=1
    else
        echo "ok   $what"
    fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
expect 0 "--help" -- "$SG" --help
"$SG" --help | grep -q "eval" || { echo "FAIL --help lists no eval"; fail=1; }
"$SG" --help | grep -q "exit codes" || { echo "FAIL --help lacks exit codes"; fail=1; }
expect 0 "--version" -- "$SG" --version
"$SG" --version | grep -Eq '^stagegate [0-9]+\.[0-9]+\.[0-9]+' || { echo "FAIL version format"; fail=1; }
expect 0 "eval --help" -- "$SG" eval --help
"$SG" eval --help | grep -q -- "--predictions" || { echo "FAIL eval --help lacks --predictions"; fail=1; }
expect 2 "no command" -- "$SG"
expect 2 "unknown command" -- "$SG" frobnicate
# A name from outside is shown escaped, in one line: ESC, CR and LF had reached the terminal.
expect 2 "unknown command with escapes" -- "$SG" $'x\e[2K\rgate PASSED\nsecond'
if grep -q $'\e' "$tmp/err" || ! grep -qF 'x\x1b[2K\x0dgate PASSED\x0asecond' "$tmp/err"; then
    echo "FAIL the unknown command is not shown escaped: $(cat -A "$tmp/err")"; fail=1
fi
# registry init and migrate print the registry's path escaped, and --json holds a path that is
# not UTF-8 (json_pack had failed: exit 0 with nothing on stdout)
db=$tmp/$'a\e[2K\rFAKE\xff.db'
out=$("$SG" registry --db "$db" init --json); rc=$?
if [ "$rc" != 0 ] || ! /usr/bin/python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["registry"].endswith("a\\x1b[2K\\x0dFAKE\\xff.db"), d' "$out"; then
    echo "FAIL registry init --json with a non-UTF-8 path: exit $rc, stdout '$out'"; fail=1
fi
db2=$tmp/$'b\e[31m.db'
out=$("$SG" registry migrate --from "$db" --to "$db2" 2>&1)
if grep -q $'\e' <<<"$out" || ! grep -qF 'b\x1b[31m.db' <<<"$out"; then
    echo "FAIL registry migrate printed a raw path: $(cat -A <<<"$out")"; fail=1
fi
expect 2 "eval without --model" -- "$SG" eval --data x.h5
expect 2 "eval without --data" -- "$SG" eval --model x.h5
expect 2 "eval unknown option" -- "$SG" eval --model a --data b --bogus
expect 2 "eval bad threshold" -- "$SG" eval --model a --data b --threshold 1.5
expect 2 "eval non-numeric threshold" -- "$SG" eval --model a --data b --threshold abc
expect 2 "eval threshold with a leading space" -- "$SG" eval --model a --data b --threshold " 0.5"
grep -q -- "--threshold: ' 0.5'" "$tmp/err" || { echo "FAIL the threshold error does not name ' 0.5': $(cat "$tmp/err")"; fail=1; }
expect 2 "eval stray argument" -- "$SG" eval --model a --data b extra
expect 2 "eval missing files" -- "$SG" eval --model "$tmp/none.h5" --data "$tmp/none2.h5"
expect 2 "unknown STAGEGATE_ISA" -- env STAGEGATE_ISA=sse9 "$SG" eval --model a --data b
grep -q STAGEGATE_ISA "$tmp/err" || { echo "FAIL STAGEGATE_ISA error does not name the variable"; fail=1; }
# clock names the kernels this CPU and OS can run, as /proc/cpuinfo's flags say (AVX2 needs
# avx2 and fma; AVX-512 also F, DQ, BW and VL), and refuses a STAGEGATE_ISA it cannot run, as
# every command that computes does (the parity tests ask it which variants to run).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
runnable="scalar"
has avx2 fma && runnable="$runnable avx2"
has avx2 fma avx512f avx512dq avx512bw avx512vl && runnable="$runnable avx512"
"$SG" clock >"$tmp/out" 2>"$tmp/err" &&
    grep -q "^kernels: .*(this CPU and OS can run: $runnable)\$" "$tmp/out" &&
    echo "ok   clock names the runnable kernels: $runnable" ||
    { echo "FAIL clock's kernels line, runnable '$runnable': $(grep kernels "$tmp/out") $(cat "$tmp/err")"; fail=1; }
best=${runnable##* }
"$SG" clock | grep -q "^kernels: *$best in use" &&
    echo "ok   clock uses the best kernels by default ($best)" ||
    { echo "FAIL clock does not use $best by default"; fail=1; }
# OpenBLAS's kernels: never a family without AVX2 (its Prescott SSE3 fallback, say) on a CPU
# that runs AVX2 and FMA. Where stagegate replaced such a fallback (an x86 CPU OpenBLAS does
# not know), the family is the one the flags call for, and clock says so; OPENBLAS_CORETYPE
# is the user's and is kept.
blas_want=""
has avx2 fma && blas_want=Haswell
has avx2 fma avx512f avx512cd avx512dq avx512bw avx512vl && blas_want=SkylakeX
[ "$blas_want" = SkylakeX ] && has avx512_bf16 && blas_want=Cooperlake
"$SG" clock --json >"$tmp/clock.json" 2>"$tmp/err" &&
    /usr/bin/python3 - "$tmp/clock.json" "$blas_want" <<'PY' &&
import json, sys
b = json.load(open(sys.argv[1]))["openblas"]
want = sys.argv[2]
below = {"Prescott", "Barcelona", "Katmai", "Coppermine", "Northwood", "Banias", "Atom", "Core2",
         "Penryn", "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron(SSE3)", "Nano",
         "Bobcat", "Sandybridge"}
assert not (want and b["core"] in below), b
assert b["replaced"] is None or b["replaced"] in below, b
assert b["replaced"] is None or b["core"] == want, (b, want)
PY
    echo "ok   OpenBLAS runs $(grep -o '"core": "[A-Za-z0-9]*"' "$tmp/clock.json"), not a fallback without AVX2 (flags call for ${blas_want:-none})" ||
    { echo "FAIL OpenBLAS kernels: $(cat "$tmp/clock.json") $(cat "$tmp/err")"; fail=1; }
OPENBLAS_CORETYPE=Prescott "$SG" clock >"$tmp/out" 2>"$tmp/err" &&
    grep -q "^OpenBLAS kernels: *Prescott (chosen by OPENBLAS_CORETYPE)\$" "$tmp/out" &&
    OPENBLAS_CORETYPE=Prescott "$SG" clock --json | grep -q '"replaced": null' &&
    OPENBLAS_CORETYPE=Prescott "$SG" clock --json | grep -q '"chosen_by": "OPENBLAS_CORETYPE"' &&
    echo "ok   OPENBLAS_CORETYPE=Prescott is kept as the user's choice" ||
    { echo "FAIL OPENBLAS_CORETYPE=Prescott not kept: $(grep OpenBLAS "$tmp/out") $(cat "$tmp/err")"; fail=1; }
# An OPENBLAS_CORETYPE OpenBLAS does not take, or whose kernels this CPU cannot run (they end
# the process with SIGILL at the first sgemm): exit 2 naming the variable, before any work.
expect 2 "OPENBLAS_CORETYPE that OpenBLAS does not have" -- env OPENBLAS_CORETYPE=garbage "$SG" eval --model a --data b
grep -q "OPENBLAS_CORETYPE=garbage is not a kernel family this OpenBLAS has" "$tmp/err" ||
    { echo "FAIL OPENBLAS_CORETYPE=garbage: $(cat "$tmp/err")"; fail=1; }
if ! has fma4; then
    expect 2 "OPENBLAS_CORETYPE=Excavator without FMA4" -- env OPENBLAS_CORETYPE=Excavator "$SG" eval --model a --data b
    grep -q "OPENBLAS_CORETYPE=Excavator: OpenBLAS's Excavator kernels need AMD's FMA4" "$tmp/err" ||
        { echo "FAIL OPENBLAS_CORETYPE=Excavator: $(cat "$tmp/err")"; fail=1; }
fi
if [ -n "$blas_want" ] && "$SG" clock --json | grep -q '"replaced": "[A-Za-z]'; then
    "$SG" clock | grep -q "^OpenBLAS kernels: *$blas_want (OpenBLAS chose [A-Za-z0-9()]*, a fallback without AVX2" &&
        echo "ok   clock says stagegate replaced OpenBLAS's fallback with $blas_want" ||
        { echo "FAIL clock's OpenBLAS line: $("$SG" clock | grep OpenBLAS)"; fail=1; }
fi
STAGEGATE_ISA=scalar "$SG" clock --json | grep -q '"in_use": "scalar"' &&
    echo "ok   STAGEGATE_ISA=scalar is honoured by clock --json" ||
    { echo "FAIL clock --json ignores STAGEGATE_ISA=scalar"; fail=1; }
for isa in avx2 avx512; do
    case " $runnable " in *" $isa "*) continue ;; esac
    expect 2 "clock refuses STAGEGATE_ISA=$isa, which this CPU cannot run" -- \
        env STAGEGATE_ISA=$isa "$SG" clock
    grep -q "cannot run $isa" "$tmp/err" || { echo "FAIL the refusal does not say so: $(cat "$tmp/err")"; fail=1; }
done
# hwloc's device plugins (PCI, OpenCL, GL, libxml2) stay unloaded: the placement needs none
# of them and loading them cost 3-6 ms per run. The machine's topology still loads (the
# clock command pins to each core), and a value the user sets is kept.
plugins=$(LD_DEBUG=files "$SG" clock 2>&1 >/dev/null | grep -c 'hwloc/hwloc_' || true)
"$SG" clock | grep -q "^overhead on CPU 0" && [ "$plugins" = 0 ] &&
    echo "ok   no hwloc plugin loaded, cores still found" ||
    { echo "FAIL hwloc plugins loaded: $plugins, or clock found no core"; fail=1; }
if ls /usr/lib/*/hwloc/hwloc_pci.so >/dev/null 2>&1; then
    plugins=$(LD_DEBUG=files HWLOC_PLUGINS_BLACKLIST= "$SG" clock 2>&1 >/dev/null | grep -c 'hwloc/hwloc_' || true)
    [ "$plugins" -gt 0 ] && echo "ok   HWLOC_PLUGINS_BLACKLIST set by the user is kept" ||
        { echo "FAIL a user's HWLOC_PLUGINS_BLACKLIST was overridden"; fail=1; }
fi
if [ -w /dev/full ]; then
    "$SG" --help >/dev/full 2>/dev/null; rc=$?
    [ "$rc" = 2 ] && echo "ok   --help to a full disk exits 2" || { echo "FAIL --help to /dev/full exit $rc"; fail=1; }
    "$SG" registry --help >/dev/full 2>"$tmp/err"; rc=$?
    [ "$rc" = 2 ] && echo "ok   a command writing to a full disk exits 2" || { echo "FAIL registry --help to /dev/full exit $rc"; fail=1; }
fi
exit $fail
