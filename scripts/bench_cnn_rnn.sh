#!/bin/bash
# Benchmark of a small image CNN and a recurrent time-series classifier exported from
# PyTorch: stagegate's ONNX step plan against PyTorch's own forward pass, in one run on the
# same data and thread count (read the figures as ratios: shared machines are noisy). A
# benchmark, not a test.
#
#   ./scripts/bench_cnn_rnn.sh [ROWS]      default 50,000 rows of each set
#
# STAGEGATE_BUILD_DIR picks the build folder (default build/release); BENCH_DIR the folder
# for cached data and raw results (default build/bench).
#
# Models (exported at opset 13, dynamic batch):
#   cnn:  LeNet-5 on [1, 28, 28] (Conv 5x5 6, ReLU, MaxPool 2, Conv 5x5 16, ReLU, MaxPool 2,
#         Linear 256-120-84-10), softmax head;
#   lstm: nn.LSTM(8, 64, batch_first) over 24 steps, its last output, Linear(64, 3).
# For each:
#   1. batch: stagegate bench --scenario offline (every row, every worker, median of 3) vs
#      PyTorch forward under torch.no_grad in eval mode, batches of 4,096,
#      torch.set_num_threads = the worker count;
#   2. batch 1: stagegate bench single-stream p50/p99 (one pinned core, median of 3) vs
#      PyTorch forward on one row at a time (one thread);
#   3. the machine's bound: FLOPs per row (stagegate's count) at the all-thread sgemm peak
#      measured in this run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-50000}
. scripts/bench_setup.sh

if [ ! -f "$B/cr_cnn_$ROWS.h5" ] || [ ! -f "$B/cr_cnn.onnx" ] || [ ! -f "$B/cr_lstm.onnx" ]; then
    echo "== making the sets and models (cached in $B)" >&2
    /usr/bin/python3 - "$B" "$ROWS" <<'PY'
import sys, warnings, h5py, numpy as np, onnx, torch, torch.nn as nn
warnings.filterwarnings("ignore")
sys.path.insert(0, "scripts")
from bench_cnn_rnn_models import make
B, ROWS = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
for name, F, classes in (("cnn", 784, 10), ("lstm", 192, 3)):
    X = rng.normal(size=(ROWS, F)).astype(np.float32)
    y = rng.integers(0, classes, ROWS).astype(np.int32)
    with h5py.File(f"{B}/cr_{name}_{ROWS}.h5", "w") as f:
        f.create_dataset("X", data=X, chunks=(min(ROWS, 4096), F))
        f["y"] = y
    X[:4000].tofile(f"{B}/cr_{name}_rows.f32")
    torch.manual_seed(2)
    net = make(name).eval()
    torch.save(net.state_dict(), f"{B}/cr_{name}.pt")
    torch.onnx.export(net, torch.zeros(2, F), f"{B}/cr_{name}.onnx", input_names=["x"],
                      output_names=["proba"], opset_version=13,
                      dynamic_axes={"x": {0: "n"}, "proba": {0: "n"}})
PY
fi

cc -O3 -march=native -o "$B/sgemm_peak" scripts/sgemm_peak.c \
    $(pkg-config --cflags --libs openblas) -lpthread
"$B/sgemm_peak" --quick >"$B/cr_peak_before.json"
for name in cnn lstm; do
    cat "$B/cr_${name}_$ROWS.h5" >/dev/null
    for i in 1 2 3; do
        echo "== $name round $i: stagegate bench offline and single-stream" >&2
        "$SG" bench --model "$B/cr_$name.onnx" --data "$B/cr_${name}_$ROWS.h5" --scenario offline \
            --json >"$B/cr_${name}_offline_$i.json"
        "$SG" bench --model "$B/cr_$name.onnx" --data "$B/cr_${name}_$ROWS.h5" \
            --scenario single-stream --duration 2 --cpus 0 --json >"$B/cr_${name}_single_$i.json"
    done
done
echo "== PyTorch forward" >&2
/usr/bin/python3 - "$B" "$ROWS" "$WORKERS" <<'PY'
import json, statistics, sys, time, warnings
import h5py, numpy as np, torch
warnings.filterwarnings("ignore")
sys.path.insert(0, "scripts")
from bench_cnn_rnn_models import make
B, ROWS, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
res = {}
for name in ("cnn", "lstm"):
    with h5py.File(f"{B}/cr_{name}_{ROWS}.h5") as f:
        X = torch.from_numpy(f["X"][()])
    net = make(name)
    net.load_state_dict(torch.load(f"{B}/cr_{name}.pt"))
    net.eval()
    torch.set_num_threads(W)
    ts = []
    with torch.no_grad():
        net(X[:4096])
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, ROWS, 4096):
                net(X[i:i + 4096])
            ts.append(time.perf_counter() - t0)
    res[name + "_batch_s"] = statistics.median(ts)
    torch.set_num_threads(1)
    F = X.shape[1]
    rows = torch.from_numpy(np.fromfile(f"{B}/cr_{name}_rows.f32", dtype=np.float32).reshape(-1, F))
    lat = []
    with torch.no_grad():
        for i in range(5000):
            r = rows[i % 4000: i % 4000 + 1]
            t0 = time.perf_counter_ns(); net(r); lat.append(time.perf_counter_ns() - t0)
    lat = sorted(lat[1000:])
    res[name + "_one_p50_ns"] = lat[(len(lat) * 50 + 99) // 100 - 1]
    res[name + "_one_p99_ns"] = lat[(len(lat) * 99 + 99) // 100 - 1]
json.dump(res, open(f"{B}/cr_torch.json", "w"))
PY
"$B/sgemm_peak" --quick >"$B/cr_peak.json"

/usr/bin/python3 - "$B" "$ROWS" "$WORKERS" <<'PY'
import json, statistics, sys
B, ROWS, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = json.load(open(f"{B}/cr_torch.json"))
peaks = [json.load(open(f"{B}/cr_peak{s}.json")).get("sgemm_peak_gflops_all") for s in ("_before", "")]
peaks = [p for p in peaks if p]
first = True
for name, what in (("cnn", "LeNet-5 CNN on [1, 28, 28], 10 classes"),
                   ("lstm", "LSTM(8, 64) over 24 steps, 3 classes")):
    off = [json.load(open(f"{B}/cr_{name}_offline_{i}.json")) for i in (1, 2, 3)]
    sec = statistics.median(ROWS / r["throughput"] for r in off)
    single = [json.load(open(f"{B}/cr_{name}_single_{i}.json")) for i in (1, 2, 3)]
    p50 = statistics.median(r["latency_ns"]["p50"] for r in single)
    p99 = statistics.median(r["latency_ns"]["p99"] for r in single)
    if first:
        m = single[0].get("machine", {})
        sig = m.get("cpu_signature") or {}
        print(f"machine: {m.get('cpu_model', '')} ({sig.get('vendor', '?')} family "
              f"{sig.get('family', '?')} model {sig.get('model', '?')}), "
              f"{(m.get('stagegate') or {}).get('kernels', '?')} kernels; {W} workers / threads")
        first = False
    print()
    print(f"{what}; {ROWS:,} rows")
    print(f"{'batch (median of 3)':44s} {'seconds':>10s} {'vs stagegate':>13s}")
    print(f"{'stagegate bench offline, ONNX':44s} {sec:10.3f} {'1.00x':>13s}")
    tb = t[name + "_batch_s"]
    print(f"{'PyTorch 1.13 forward (threads=%d)' % W:44s} {tb:10.3f} {tb / sec:12.2f}x")
    print(f"{'batch 1 (one core, median of 3)':44s} {'p50 us':>10s} {'p99 us':>10s} {'p50 vs sg':>10s}")
    print(f"{'stagegate bench single-stream, ONNX':44s} {p50/1e3:10.2f} {p99/1e3:10.2f} {'1.00x':>10s}")
    print(f"{'PyTorch forward, one row (1 thread)':44s} {t[name + '_one_p50_ns']/1e3:10.2f} "
          f"{t[name + '_one_p99_ns']/1e3:10.2f} {t[name + '_one_p50_ns'] / p50:9.2f}x")
    flops_row = single[0].get("model", {}).get("flops_per_row") or off[0].get("model", {}).get("flops_per_row")
    if flops_row and peaks:
        peak = max(peaks)
        lim = ROWS * flops_row / (peak * 1e9)
        print(f"FLOP limit: {int(flops_row):,} FLOPs/row x {ROWS:,} rows at the all-thread sgemm "
              f"peak measured in this run ({peak:.1f} GFLOP/s) = {lim:.3f} s; stagegate "
              f"{sec / lim:.1f}x it, PyTorch {tb / lim:.1f}x")
PY
