#!/bin/bash
# A campaign of the HDF5 file fuzzer (tests/fuzz/fuzz_hdf5.c) over the seed corpus of
# validation sets and models in tests/fuzz/hdf5_corpus/:
#
#   ./scripts/fuzz_hdf5.sh [SECONDS]      default 600
#
# Builds its own folder (STAGEGATE_FUZZ_BUILD_DIR, default build/fuzz): ASan+UBSan, with
# datasets/ compiled with -fsanitize-coverage=trace-pc so that the fuzzer keeps inputs that
# reach new code there. Prints the execs, the distinct outcomes (refusal messages with the
# numbers taken out), the program counters reached in datasets/, the inputs added to the
# corpus (kept in BUILD/corpus) and every crash site; each crash's first input and its
# report go to BUILD/crashes. SEED picks the mutation sequence (default: the time).
# Exit status: 0 when no crash remained a crash with the loaders' sandbox on and every
# refusal was one line naming the file.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
B=${STAGEGATE_FUZZ_BUILD_DIR:-build/fuzz}
./scripts/deps.sh
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTAGEGATE_SANITIZE=address,undefined \
    -DSTAGEGATE_FUZZ_COVERAGE=ON >/dev/null
# Only the fuzzer: the instrumented datasets/ needs the coverage callback it defines.
cmake --build "$B" -j "$(nproc)" --target sg_fuzz_hdf5 >/dev/null
mkdir -p "$B/crashes" "$B/corpus"
SEED=${SEED:-$(date +%s)}
echo "== fuzzing the HDF5 loaders for $SECS s (seed $SEED)" >&2
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$B/tests/fuzz/sg_fuzz_hdf5" --seconds "$SECS" --seed "$SEED" --corpus-out "$B/corpus" \
    --crash-dir "$B/crashes" tests/fuzz/hdf5_corpus/*.h5
