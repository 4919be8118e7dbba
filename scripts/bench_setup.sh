# Sourced by the benchmark scripts, from the source root, after `set -euo pipefail`:
# installs what is missing, builds stagegate (STAGEGATE_BUILD_DIR, default build/release),
# runs every compared program on stagegate's OpenBLAS kernels (same_blas.sh) and makes the
# folder for cached data and raw results (BENCH_DIR, default build/bench). Sets BUILD, SG, B
# and WORKERS.
./scripts/deps.sh
BUILD=${STAGEGATE_BUILD_DIR:-build/release}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target stagegate >/dev/null
SG=$BUILD/cli/stagegate
. scripts/same_blas.sh
same_blas "$SG"
B=${BENCH_DIR:-build/bench}
mkdir -p "$B"
WORKERS=$(nproc)
