#!/bin/sh
# Builds stagegate and runs every test (unit, end-to-end, scikit-learn and openssl
# reference tests), then repeats the build and the tests under AddressSanitizer +
# UndefinedBehaviorSanitizer, and runs the threaded tests under ThreadSanitizer with the
# part libraries shared, linked with -Wl,--no-undefined. Exits non-zero on any
# failure. Tests labelled
# `timing` run last, serially, and a failed one is retried once, visibly;
# no other test is ever retried.
#
#   ./scripts/test.sh            both configurations
#   SG_SKIP_SANITIZE=1 ./scripts/test.sh   the Release build only
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# Correctness tests run one more at a time than there are cores: many of them wait (on a
# PostgreSQL server they start, on a server's shutdown, on child processes), and at one per
# core the cores were busy 79% of the time (2 cores: 1.58 of 2 in `time`); one more brought
# that to 90% and the Release run from 431 s to 361 s; two more gained nothing further.
TEST_JOBS=${TEST_JOBS:-$((JOBS + 1))}
# Tests must not depend on the caller's tuning of the BLAS library.
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS 2>/dev/null || true

run_config() {
    dir=$1
    shift
    echo "== configure $dir: $*"
    cmake -S . -B "$dir" -DSTAGEGATE_WERROR=ON "-DSTAGEGATE_TEST_CACHE=$TEST_CACHE" "$@" \
        >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; exit 1; }
    echo "== build $dir"
    cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1 ||
        { grep -E 'error|warning' "$dir.build.log" | head -50; tail -20 "$dir.build.log"; exit 1; }
    echo "== test $dir: correctness (every test not labelled timing; never retried)"
    ctest --test-dir "$dir" --output-on-failure -j "$TEST_JOBS" -LE timing ${CTEST_ARGS:-}
    # A `timing` test compares a measured time or ratio with a bound set well beyond the spread
    # measured on a 2-core VM (scripts/timing_spread.sh); a host that steals the CPU for long
    # enough can still push one past it. Such a failure is retried once, and the log says so.
    echo "== test $dir: timing (serial; a failure is retried once)"
    if ! ctest --test-dir "$dir" --output-on-failure -L timing ${CTEST_ARGS:-}; then
        failed=$(sed 's/^[0-9]*://' "$dir/Testing/Temporary/LastTestsFailed.log" | tr '\n' ' ')
        echo "== RETRY (once) of timing test(s): ${failed}- a measured time or ratio fell outside"
        echo "   its bound, which load on the machine can cause; the retry must pass"
        ctest --test-dir "$dir" --output-on-failure --rerun-failed
        echo "== retry passed: $failed"
    fi
}

mkdir -p build
# One cache of generated test inputs for every build directory (tests/CMakeLists.txt): the
# sanitizer builds copy what the Release run made. Its keys cover everything the bytes
# depend on; removing it only costs the time to make them again.
TEST_CACHE="$PWD/build/testcache"
SAN_FLAGS="-O2 -g1 -DNDEBUG"
run_config build/release -DCMAKE_BUILD_TYPE=Release
if [ "${SG_SKIP_SANITIZE:-0}" != "1" ]; then
    # Leak checking stays on; OpenBLAS' thread pool is reported as reachable only. Line tables
    # only (-g1): a sanitizer's report still names file and line, and the build takes 63 s
    # instead of 80 s.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    STAGEGATE_SANITIZED=1 \
    run_config build/sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$SAN_FLAGS" \
        -DSTAGEGATE_SANITIZE=address,undefined
    # ThreadSanitizer over the tests that run the worker pools, the reader and progress threads,
    # built with the part libraries shared, each linked with -Wl,--no-undefined: every library
    # declares what it uses, and the layering has no cycle (CMake refuses a cycle between
    # shared libraries). Only what the threaded tests run is built; a test whose program is
    # missing fails.
    echo "== configure + build build/tsan (ThreadSanitizer; shared libraries, -Wl,--no-undefined)"
    cmake -S . -B build/tsan -DSTAGEGATE_WERROR=ON "-DSTAGEGATE_TEST_CACHE=$TEST_CACHE" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$SAN_FLAGS" -DSTAGEGATE_SANITIZE=thread -DSTAGEGATE_SHARED=ON \
        >build/tsan.configure.log 2>&1 || { cat build/tsan.configure.log; exit 1; }
    cmake --build build/tsan -j "$JOBS" --target stagegate test_datasets_threads test_harness_topology \
        test_harness_eval registry_make_report registry_load >build/tsan.build.log 2>&1 ||
        { grep -E 'error|warning|undefined' build/tsan.build.log | head -50; exit 1; }
    build/tsan/cli/stagegate --version >/dev/null
    echo "== test build/tsan: label threaded"
    TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} STAGEGATE_SANITIZED=1 \
        ctest --test-dir build/tsan --output-on-failure -j "$TEST_JOBS" -L threaded -LE timing
else
    # Without the sanitizer builds, the shared-library link check on its own.
    echo "== build build/shared (shared libraries, -Wl,--no-undefined)"
    cmake -S . -B build/shared -DSTAGEGATE_WERROR=ON -DCMAKE_BUILD_TYPE=Release -DSTAGEGATE_SHARED=ON \
        -DSTAGEGATE_TESTS=OFF >build/shared.configure.log 2>&1 || { cat build/shared.configure.log; exit 1; }
    cmake --build build/shared -j "$JOBS" >build/shared.build.log 2>&1 ||
        { grep -E 'error|undefined' build/shared.build.log | head -50; exit 1; }
    build/shared/cli/stagegate --version >/dev/null
fi
echo "== all tests passed"
