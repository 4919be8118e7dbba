#!/bin/bash
# Benchmark of a tabular transformer exported from PyTorch: stagegate's ONNX step plan against
# PyTorch's own forward pass, in one run on the same data and thread count (read the figures
# as ratios: shared machines are noisy). A benchmark, not a test.
#
#   ./scripts/bench_transformer.sh [ROWS]      default 200,000 rows x 12 features
#
# STAGEGATE_BUILD_DIR picks the build folder (default build/release); BENCH_DIR the folder
# for cached data and raw results (default build/bench).
#
# Model: each feature a token (x * w + b, E = 16), one nn.TransformerEncoderLayer (4 heads,
# feed-forward 32, batch first, post-norm, ReLU), mean over the tokens, nn.Linear(16, 3);
# exported at opset 17 (PyTorch moves the batch to axis 1 and merges it with the heads).
#   1. batch: stagegate bench --scenario offline (every row, every worker, median of 3) vs
#      PyTorch forward under torch.no_grad in eval mode (its fused fast path for the encoder
#      layer), batches of 8,192, torch.set_num_threads = the worker count;
#   2. batch 1: stagegate bench single-stream p50/p99 (one pinned core, median of 3) vs
#      PyTorch forward on one row at a time (one thread);
#   3. the machine's bound: FLOPs per row (stagegate's count) at the all-thread sgemm peak
#      measured in this run. Attention on 12 tokens of 16 values is small products and
#      softmaxes, far from GEMM-bound: the ratio says how far.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-200000}
. scripts/bench_setup.sh

if [ ! -f "$B/tx_$ROWS.h5" ] || [ ! -f "$B/tx.onnx" ]; then
    echo "== making a $ROWS x 12 set and the transformer (cached in $B)" >&2
    /usr/bin/python3 - "$B" "$ROWS" <<'PY'
import sys, warnings, h5py, numpy as np, onnx, torch, torch.nn as nn
warnings.filterwarnings("ignore")
B, ROWS = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
X = rng.normal(size=(ROWS, 12)).astype(np.float32)
y = rng.integers(0, 3, ROWS).astype(np.int32)
with h5py.File(f"{B}/tx_{ROWS}.h5", "w") as f:
    f.create_dataset("X", data=X, chunks=(min(ROWS, 16384), 12))
    f["y"] = y
X[:4000].tofile(f"{B}/tx_rows.f32")
torch.manual_seed(2)
class Tabular(nn.Module):
    def __init__(self, d=12, e=16, h=4):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d, e) * 0.5)
        self.b = nn.Parameter(torch.randn(d, e) * 0.1)
        self.enc = nn.TransformerEncoderLayer(e, h, 2 * e, dropout=0.0, batch_first=True)
        self.head = nn.Linear(e, 3)
    def forward(self, x):
        return self.head(self.enc(x.unsqueeze(-1) * self.w + self.b).mean(1))
net = Tabular().eval()
torch.save(net, f"{B}/tx.pt")
torch.onnx.export(net, torch.zeros(2, 12), f"{B}/tx.onnx", input_names=["x"], output_names=["logits"],
                  opset_version=17, dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
m = onnx.load(f"{B}/tx.onnx")
onnx.helper.set_model_props(m, {"stagegate.output": "logits"})
onnx.save(m, f"{B}/tx.onnx")
PY
fi

cc -O3 -march=native -o "$B/sgemm_peak" scripts/sgemm_peak.c \
    $(pkg-config --cflags --libs openblas) -lpthread
"$B/sgemm_peak" --quick >"$B/tx_peak_before.json"
cat "$B/tx_$ROWS.h5" >/dev/null
for i in 1 2 3; do
    echo "== round $i: stagegate bench offline and single-stream" >&2
    "$SG" bench --model "$B/tx.onnx" --data "$B/tx_$ROWS.h5" --scenario offline --json \
        >"$B/tx_offline_$i.json"
    "$SG" bench --model "$B/tx.onnx" --data "$B/tx_$ROWS.h5" --scenario single-stream \
        --duration 2 --cpus 0 --json >"$B/tx_single_$i.json"
done
echo "== PyTorch forward" >&2
/usr/bin/python3 - "$B" "$ROWS" "$WORKERS" <<'PY'
import json, statistics, sys, time, warnings
import h5py, numpy as np, torch
warnings.filterwarnings("ignore")
B, ROWS, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, B)
with h5py.File(f"{B}/tx_{ROWS}.h5") as f:
    X = torch.from_numpy(f["X"][()])
import __main__
class Tabular(torch.nn.Module):  # the class torch.load needs, as the first script defined it
    def __init__(self, d=12, e=16, h=4):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(d, e) * 0.5)
        self.b = torch.nn.Parameter(torch.randn(d, e) * 0.1)
        self.enc = torch.nn.TransformerEncoderLayer(e, h, 2 * e, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(e, 3)
    def forward(self, x):
        return self.head(self.enc(x.unsqueeze(-1) * self.w + self.b).mean(1))
__main__.Tabular = Tabular
net = torch.load(f"{B}/tx.pt").eval()
torch.set_num_threads(W)
ts = []
with torch.no_grad():
    net(X[:8192])
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(0, ROWS, 8192):
            net(X[i:i + 8192])
        ts.append(time.perf_counter() - t0)
res = {"torch_batch_s": statistics.median(ts)}
torch.set_num_threads(1)
rows = torch.from_numpy(np.fromfile(f"{B}/tx_rows.f32", dtype=np.float32).reshape(-1, 12))
lat = []
with torch.no_grad():
    for i in range(5000):
        r = rows[i % 4000: i % 4000 + 1]
        t0 = time.perf_counter_ns(); net(r); lat.append(time.perf_counter_ns() - t0)
lat = sorted(lat[1000:])
res["torch_one_p50_ns"] = lat[(len(lat) * 50 + 99) // 100 - 1]
res["torch_one_p99_ns"] = lat[(len(lat) * 99 + 99) // 100 - 1]
json.dump(res, open(f"{B}/tx_torch.json", "w"))
PY
"$B/sgemm_peak" --quick >"$B/tx_peak.json"

/usr/bin/python3 - "$B" "$ROWS" "$WORKERS" <<'PY'
import json, statistics, sys
B, ROWS, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
off = [json.load(open(f"{B}/tx_offline_{i}.json")) for i in (1, 2, 3)]
sec = statistics.median(ROWS / r["throughput"] for r in off)
single = [json.load(open(f"{B}/tx_single_{i}.json")) for i in (1, 2, 3)]
p50 = statistics.median(r["latency_ns"]["p50"] for r in single)
p99 = statistics.median(r["latency_ns"]["p99"] for r in single)
t = json.load(open(f"{B}/tx_torch.json"))
m = single[0].get("machine", {})
sig = m.get("cpu_signature") or {}
print(f"tabular transformer (12 tokens, E 16, 4 heads, one encoder layer); {ROWS:,} x 12 rows; "
      f"{W} workers / threads")
print(f"machine: {m.get('cpu_model', '')} ({sig.get('vendor', '?')} family {sig.get('family', '?')} "
      f"model {sig.get('model', '?')}), {(m.get('stagegate') or {}).get('kernels', '?')} kernels")
print()
print(f"{'batch (median of 3)':44s} {'seconds':>10s} {'vs stagegate':>13s}")
print(f"{'stagegate bench offline, ONNX':44s} {sec:10.3f} {'1.00x':>13s}")
print(f"{'PyTorch 1.13 forward (threads=%d)' % W:44s} {t['torch_batch_s']:10.3f} "
      f"{t['torch_batch_s'] / sec:12.2f}x")
print()
print(f"{'batch 1 (one core, median of 3)':44s} {'p50 us':>10s} {'p99 us':>10s} {'p50 vs sg':>10s}")
print(f"{'stagegate bench single-stream, ONNX':44s} {p50/1e3:10.2f} {p99/1e3:10.2f} {'1.00x':>10s}")
print(f"{'PyTorch forward, one row (1 thread)':44s} {t['torch_one_p50_ns']/1e3:10.2f} "
      f"{t['torch_one_p99_ns']/1e3:10.2f} {t['torch_one_p50_ns'] / p50:9.2f}x")
print()
flops_row = single[0].get("model", {}).get("flops_per_row") or off[0].get("model", {}).get("flops_per_row")
peaks = [json.load(open(f"{B}/tx_peak{s}.json")).get("sgemm_peak_gflops_all") for s in ("_before", "")]
peaks = [p for p in peaks if p]
if flops_row and peaks:
    peak = max(peaks)
    lim = ROWS * flops_row / (peak * 1e9)
    print(f"FLOP limit: {int(flops_row):,} FLOPs/row x {ROWS:,} rows at the all-thread sgemm peak "
          f"measured in this run ({peak:.1f} GFLOP/s) = {lim:.3f} s; stagegate {sec / lim:.1f}x "
          f"it, PyTorch {t['torch_batch_s'] / lim:.1f}x")
PY
