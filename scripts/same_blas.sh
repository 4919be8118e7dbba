# Sourced by the benchmark scripts: `same_blas STAGEGATE_BINARY` exports OPENBLAS_CORETYPE as
# the OpenBLAS kernel family stagegate runs on this machine, so that every program a benchmark
# compares it with (the sgemm peak, the sgemv loop, NumPy under scikit-learn, PyTorch) runs
# the same kernels. It matters where OpenBLAS does not know the CPU: it falls back to its
# Prescott (SSE3) kernels, and stagegate replaces them (docs/latency.md), which
# would otherwise compare stagegate on AVX-512 with the others on SSE3. A value the user set
# is kept, and stagegate then runs it too.
same_blas() {
    if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
        OPENBLAS_CORETYPE=$("$1" clock --json | /usr/bin/python3 -c \
            'import json, sys; print(json.load(sys.stdin)["openblas"]["core"])')
        export OPENBLAS_CORETYPE
    fi
    echo "== OpenBLAS kernels for every program here: $OPENBLAS_CORETYPE" >&2
}
